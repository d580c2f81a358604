"""A local copy of the TFLite Micro Arduino library, used in place through PlatformIO.

Offline, PlatformIO will not take the library folder as it stands (its
`library.properties` names dependencies the library manager then fetches, and its Arduino
builder compiles all of `src/`). What works is small manifests of our own, `library.json`,
whose `build.srcDir`/`includeDir` point at the library's `src/` and whose `build.srcFilter`
lists only the files a model needs: the interpreter core, the kernels of its ops, and the
CMSIS-NN sources those kernels call. Nothing is copied; PlatformIO compiles the files where
they are.

The manifests are split into parts (the core; one per kernel) written once per library
under tinysmile's state folder, and the projects name them: a part's objects then have the
same path and command line in every project, so PlatformIO's build cache
(`build_cache_dir`) hands them to the next model instead of compiling them again.

The file selection follows the library's own structure rather than a hand-kept list per op:
- each op's kernel is the file defining the `Register_<OP>()` its resolver method calls
  (`micro_mutable_op_resolver.h`), plus that kernel's `<name>_common.cpp` when it has one;
- the CMSIS-NN sources are the closure of the `arm_*` functions those kernels call, through
  CMSIS-NN's one-function-per-file layout.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from tinysmile.errors import TinysmileError

ENV_VAR = "TINYSMILE_TFLM_LIB"
LIBRARY_NAME = "tinysmile-tflm"  # the generated manifests' names: tinysmile-tflm-<part>
# The defines TFLite Micro's headers are compiled with change its structs' layouts: every
# file that includes them (the library's and ours) gets exactly these. ARDUINO because the
# export replaced some guards with `#ifndef ARDUINO` (kernel_util.cpp does not compile under
# TF_LITE_STATIC_MEMORY without it); the library's own `src/peripherals/`, which needs the
# Arduino core, is never selected.
DEFINES = ["TF_LITE_STATIC_MEMORY", "TF_LITE_STRIP_ERROR_STRINGS", "CMSIS_NN", "NDEBUG", "ARDUINO"]
CXX_FLAGS = ["-std=c++17", "-fno-rtti", "-fno-exceptions", "-fno-threadsafe-statics"]
# The library is not clean under -Wextra (unused parameters): our strict flags stay on our
# own sources, and these quiet the library's few warnings at its default level.
LIB_FLAGS = ["-O2", "-Wno-unused-parameter"]

_MICRO = "tensorflow/lite/micro"
# The interpreter, allocator, planner, flatbuffer reader and the shared kernel helpers.
# Left out: micro_time.cpp (the Arduino core's clock), micro_profiler.cpp (tinysmile's
# harness implements the profiler interface over its own counter), debug_log.cpp and
# system_setup.cpp (the firmware provides DebugLog; the port sets the board up), test helpers,
# all_ops_resolver.cpp (it would pull every kernel in).
CORE = [
    f"{_MICRO}/flatbuffer_utils.cpp",
    f"{_MICRO}/memory_helpers.cpp",
    f"{_MICRO}/micro_allocation_info.cpp",
    f"{_MICRO}/micro_allocator.cpp",
    f"{_MICRO}/micro_context.cpp",
    f"{_MICRO}/micro_graph.cpp",
    f"{_MICRO}/micro_interpreter.cpp",
    f"{_MICRO}/micro_log.cpp",
    f"{_MICRO}/micro_resource_variable.cpp",
    f"{_MICRO}/micro_string.cpp",
    f"{_MICRO}/micro_utils.cpp",
    f"{_MICRO}/arena_allocator/*.cpp",
    f"{_MICRO}/memory_planner/*.cpp",
    f"{_MICRO}/tflite_bridge/*.cpp",
    f"{_MICRO}/kernels/kernel_util.cpp",
    "tensorflow/lite/core/api/*.cpp",
    "tensorflow/lite/core/c/*.cpp",
    "tensorflow/lite/kernels/kernel_util.cpp",
    "tensorflow/lite/kernels/internal/*.cpp",
    "tensorflow/lite/kernels/internal/reference/*.cpp",
    "tensorflow/lite/schema/schema_utils.cpp",
]
CACHE_ENV_VAR = "TINYSMILE_CACHE_DIR"
_CMSIS_NN = "third_party/cmsis_nn/Source"
_MARKER = f"{_MICRO}/micro_interpreter.h"


@dataclass(frozen=True)
class TflmLibrary:
    root: Path  # the library folder (holding src/)

    @property
    def src(self) -> Path:
        return self.root / "src"

    @property
    def version(self) -> str:
        props = self.root / "library.properties"
        if props.is_file():
            for line in props.read_text(errors="replace").splitlines():
                if line.startswith("version="):
                    return line.split("=", 1)[1].strip()
        return "0.0.0"

    def sources(self, methods: list[str]) -> list[str]:
        """Files (relative to src/) a resolver with these Add* methods needs."""
        return sorted({f for files in self.parts(methods).values() for f in files})

    def parts(self, methods: list[str]) -> dict[str, list[str]]:
        """The needed files as PlatformIO libraries: the interpreter core, and one part per
        kernel (its files and the CMSIS-NN sources it calls). A part is the same files for
        every model that needs it, so its objects are shared between models."""
        return _parts(self.src, tuple(sorted(methods)))

    def manifests(self, methods: list[str], into: Path) -> list[Path]:
        """Write each part's library.json under `into` (one folder per library and part,
        the same for every model: PlatformIO's build cache keys objects by their path);
        returns the part folders."""
        key = hashlib.sha256(f"{self.root}:{self.version}".encode()).hexdigest()[:12]
        folders = []
        for name, files in self.parts(methods).items():
            folder = Path(into) / f"tflm-{key}" / name
            text = json.dumps(self._manifest(name, files), indent=2) + "\n"
            path = folder / "library.json"
            if not path.is_file() or path.read_text() != text:
                folder.mkdir(parents=True, exist_ok=True)
                # Write then rename: a concurrent build never reads half a manifest.
                tmp = folder / f".library.json.{os.getpid()}"
                tmp.write_text(text)
                tmp.replace(path)
            folders.append(folder)
        return folders

    def _manifest(self, name: str, files: list[str]) -> dict:
        return {
            "name": f"{LIBRARY_NAME}-{name}",
            "version": _semver(self.version),
            "description": f"TFLite Micro from {self.root}: {name}, compiled in place",
            "frameworks": "*",
            "platforms": "*",
            "build": {
                "srcDir": str(self.src),
                "includeDir": str(self.src),
                "srcFilter": ["-<*>", *[f"+<{f}>" for f in files]],
                "flags": list(LIB_FLAGS),
                "libArchive": True,
                "libLDFMode": "off",
            },
        }


def cache_dir() -> Path:
    """Where the library parts' manifests and PlatformIO's build cache live: kept across
    runs and projects (unlike the state folder a test session makes its own), since a
    part's objects are only reused when its manifest stays at the same path."""
    d = os.environ.get(CACHE_ENV_VAR)
    return Path(d) if d else Path.home() / ".cache" / "tinysmile"


def _semver(version: str) -> str:
    m = re.match(r"(\d+)\.(\d+)\.(\d+)", version)
    return ".".join(m.groups()) if m else "0.0.0"


def locate(path: str | Path | None = None) -> TflmLibrary | None:
    """The library named by --tflm-lib or $TINYSMILE_TFLM_LIB, checked; None when neither."""
    given = path if path is not None else os.environ.get(ENV_VAR) or None
    if given is None:
        return None
    root = Path(given).expanduser().resolve()
    if not (root / "src" / _MARKER).is_file():
        where = "--tflm-lib" if path is not None else f"${ENV_VAR}"
        raise TinysmileError(
            f"{where} {root} is not the TFLite Micro Arduino library (no src/{_MARKER})"
        )
    return TflmLibrary(root)


def _glob(src: Path, pattern: str) -> list[str]:
    found = sorted(p.relative_to(src).as_posix() for p in src.glob(pattern) if p.is_file())
    if not found:
        raise TinysmileError(f"{src.parent}: no {pattern} (not the expected TFLite Micro layout)")
    return found


@lru_cache(maxsize=8)
def _parts(src: Path, methods: tuple[str, ...]) -> dict[str, list[str]]:
    core: list[str] = []
    for pattern in CORE:
        core += _glob(src, pattern)
    out = {"core": sorted(dict.fromkeys(core))}
    for method in methods:
        kernels = _kernel_files(src, method)
        name = Path(kernels[0]).stem  # pooling.cpp serves MAX_POOL_2D and AVERAGE_POOL_2D
        out[name] = sorted(kernels + _cmsis_closure(src, kernels))
    return out


@lru_cache(maxsize=4)
def _resolver_registrations(src: Path) -> dict[str, str]:
    """Add* method -> the Register_* function it defaults to, from the resolver's header."""
    text = (src / _MICRO / "micro_mutable_op_resolver.h").read_text(errors="replace")
    out: dict[str, str] = {}
    # Each method's body runs up to the next method; its first Register_ call is its kernel.
    for m in re.finditer(r"TfLiteStatus (Add\w+)\((.*?)(?=TfLiteStatus Add|\Z)", text, re.DOTALL):
        reg = re.search(r"Register_(\w+)\(\)", m.group(2))
        if reg:
            out[m.group(1)] = reg.group(1)
    return out


@lru_cache(maxsize=4)
def _registration_files(src: Path) -> dict[str, str]:
    """Register_* name -> the kernel file defining it."""
    out: dict[str, str] = {}
    kdir = src / _MICRO / "kernels"
    for path in sorted(kdir.rglob("*.cpp")):
        text = path.read_text(errors="replace")
        for name in re.findall(r"\bRegister_(\w+)\(\)\s*\{", text):
            out.setdefault(name, path.relative_to(src).as_posix())
    return out


def _kernel_files(src: Path, method: str) -> list[str]:
    reg = _resolver_registrations(src).get(method)
    path = _registration_files(src).get(reg or "")
    if reg is None or path is None:
        raise TinysmileError(
            f"the TFLite Micro library in {src.parent} has no kernel for {method} "
            "(an older or newer library than tinysmile knows?)"
        )
    files = [path]
    stem = Path(path).stem
    common = src / _MICRO / "kernels" / f"{stem}_common.cpp"
    if common.is_file():
        files.append(common.relative_to(src).as_posix())
    # a common file may use another kernel's constants (depthwise_conv_common.cpp takes
    # conv's tensor indices, defined in conv_common.cpp): add the files defining them
    shared = _shared_constants(src)
    for f in files:
        for name in _CONSTANT.findall((src / f).read_text(errors="replace")):
            owner = shared.get(name)
            if owner and owner not in files:
                files.append(owner)
    return files


_CONSTANT = re.compile(r"\b(k[A-Z]\w*)\b")


@lru_cache(maxsize=4)
def _shared_constants(src: Path) -> dict[str, str]:
    """`const int kName = ...;` at the top level of a kernel's _common.cpp -> that file."""
    out: dict[str, str] = {}
    for path in sorted((src / _MICRO / "kernels").glob("*_common.cpp")):
        for name in re.findall(
            r"^const int (k\w+)\s*=", path.read_text(errors="replace"), re.MULTILINE
        ):
            out.setdefault(name, path.relative_to(src).as_posix())
    return out


_CALL = re.compile(r"\b(arm_\w+)\s*\(")


@lru_cache(maxsize=4)
def _cmsis_index(src: Path) -> dict[str, str]:
    """CMSIS-NN function -> the file defining it (a definition starts at column 0)."""
    out: dict[str, str] = {}
    for path in sorted((src / _CMSIS_NN).rglob("*.c")):
        rel = path.relative_to(src).as_posix()
        out.setdefault(path.stem, rel)
        for line in path.read_text(errors="replace").splitlines():
            if line[:1].isalpha() and not line.rstrip().endswith(";"):
                for name in _CALL.findall(line):
                    out.setdefault(name, rel)
    return out


def _cmsis_closure(src: Path, kernels: list[str]) -> list[str]:
    index = _cmsis_index(src)
    seen: set[str] = set()
    todo = list(kernels)
    while todo:
        text = (src / todo.pop()).read_text(errors="replace")
        for name in _CALL.findall(text):
            rel = index.get(name)
            if rel and rel not in seen:
                seen.add(rel)
                todo.append(rel)
    return sorted(seen)


# Where TFLite Micro is known to give other bytes than LiteRT's reference kernels, which
# `verify` holds every runtime to (tests/test_device_tflm.py pins each one to a model).
# The Arduino export reporting 2.4.0-ALPHA is the 2023-02 sync (the copy in ../shared);
# the tflite-micro on PyPI has the first two fixed. A library of another version, or one
# from a registry, is only held to what every version does.
ARDUINO_EXPORT_2023 = "2.4.0-ALPHA"


def known_differences(graph: Any, library: TflmLibrary | None) -> list[str]:
    """One line per operator of `graph` (the compiler's parsed model) on which TFLite Micro
    (this local library, or a registry one when None) is known not to match LiteRT byte
    for byte."""
    old = library is not None and library.version == ARDUINO_EXPORT_2023
    notes = []
    for op in graph.ops:
        ins = graph.op_inputs(op)
        if op.kind == "FULLY_CONNECTED" and old:
            weights = ins[1] if len(ins) > 1 else None
            if weights is not None and weights.quant is not None and weights.quant.per_channel:
                notes.append(
                    f"{op.describe()} has per-channel weight scales; this library's "
                    "FULLY_CONNECTED requantizes every output with the first channel's"
                )
        elif op.kind == "MEAN" and old:
            notes.append(
                f"{op.describe()}: this library's int8 MEAN rounds some outputs one step "
                "away from LiteRT's"
            )
        elif op.kind == "RELU6":
            out = graph.op_output(op)
            src = ins[0]
            quantized = src is not None and src.quant is not None and out.quant is not None
            if quantized and (src.scale, src.zero_point) != (out.scale, out.zero_point):
                notes.append(
                    f"{op.describe()}: input and output quantization differ, and TFLite "
                    "Micro's int8 RELU6 clamps without rescaling"
                )
    return notes
