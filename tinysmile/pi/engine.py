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
import subprocess
from pathlib import Path

import numpy as np

from tinysmile.errors import TinysmileError
from tinysmile.train.infer import Runner

ENGINES = ("litert", "native")
PREFIX = "tsmpi"
# -O2 without sanitizers: this is the production path; host parity tests build the same
# C with ASan/UBSan (tinysmile.compiler.hostrun).
SHARED_FLAGS = ["-std=c99", "-O2", "-fPIC", "-shared", "-Wall", "-Wextra", "-Werror"]


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
    from tinysmile.compiler.hostrun import host_compiler

    key = hashlib.sha256(model).hexdigest()[:16]
    work = workdir or _cache_dir() / key
    lib = work / f"lib{PREFIX}_{key}.so"
    if lib.is_file():
        return lib
    compiled = compile_model(model, work / "src", prefix=PREFIX)
    cmd = [host_compiler(), *SHARED_FLAGS, *[f"-I{d}" for d in compiled.include_dirs]]
    tmp = lib.with_name(lib.name + ".part")
    cmd += [str(compiled.c_path), *map(str, compiled.sources), "-o", str(tmp), "-lm"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise TinysmileError(
            "the generated C does not build as a shared library: " + proc.stderr.strip()[-2000:]
        )
    tmp.replace(lib)  # a half-built library never looks like a cached one
    return lib


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
