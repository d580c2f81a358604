"""Engines: the int8 model input -> its int8 output.

- `litert`: LiteRT's interpreter with TFLite's reference kernels (the oracle the compiler
  is bit-exact with), through `tinysmile.train.infer.Runner`.
- `native`: the model compiled to C by tinysmile, built by the machine's `cc` into a shared
  library and called through ctypes: the bytes a microcontroller running the same C gives.

Both share the Runner's quantization and threshold, so only the arithmetic differs, and the
contract is that it does not.
"""

from __future__ import annotations

import ctypes
import hashlib
from pathlib import Path

import numpy as np

from tinysmile.errors import TinysmileError
from tinysmile.train.infer import Runner

ENGINES = ("litert", "native")
PREFIX = "tsmpi"


class Engine:
    name = ""

    def run(self, x: np.ndarray) -> np.ndarray:
        """int8 (H, W, 1) -> the flat int8 output."""
        raise NotImplementedError


class LiteRTEngine(Engine):
    name = "litert"

    def __init__(self, runner: Runner) -> None:
        self.runner = runner

    def run(self, x: np.ndarray) -> np.ndarray:
        return self.runner.run_int8(x)


def _cache_dir() -> Path:
    from tinysmile.device.emulator import state_dir

    return state_dir() / "pi-native"


def build_shared_library(model: bytes, workdir: Path | None = None) -> Path:
    """Compile the model to C and build it as a shared library (cached by model hash)."""
    from tinysmile.compiler.api import compile_model
    from tinysmile.compiler.hostrun import SHARED_FLAGS, link_shared

    key = hashlib.sha256(model).hexdigest()[:16]
    work = workdir or _cache_dir() / key
    lib = work / f"lib{PREFIX}_{key}.so"
    if lib.is_file():
        return lib
    compiled = compile_model(model, work / "src", prefix=PREFIX)
    sources = [compiled.c_path, *compiled.sources]
    return link_shared(lib, sources, compiled.include_dirs, SHARED_FLAGS, "the generated C")


class NativeEngine(Engine):
    name = "native"

    def __init__(self, runner: Runner, workdir: Path | None = None) -> None:
        lib_path = build_shared_library(runner.bundle.model_bytes(), workdir)
        self.lib = ctypes.CDLL(str(lib_path))
        self.invoke = getattr(self.lib, f"{PREFIX}_invoke")
        self.invoke.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        self.invoke.restype = None
        self.in_size = int(np.prod(runner.input["shape"]))
        self.out = np.zeros(int(np.prod(runner.output["shape"])), dtype=np.int8)

    def run(self, x: np.ndarray) -> np.ndarray:
        data = np.ascontiguousarray(x, dtype=np.int8).reshape(-1)
        if data.size != self.in_size:
            raise TinysmileError(
                f"native engine: {data.size} input values, expected {self.in_size}"
            )
        self.invoke(data.ctypes.data, self.out.ctypes.data)
        return self.out.copy()


def make_engine(name: str, runner: Runner) -> Engine:
    if name == "litert":
        return LiteRTEngine(runner)
    if name == "native":
        return NativeEngine(runner)
    raise TinysmileError(f"engine {name!r}: choose one of {', '.join(ENGINES)}")
