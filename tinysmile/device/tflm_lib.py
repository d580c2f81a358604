"""A local copy of TensorFlow Lite Micro, used in place through PlatformIO.

Two layouts of the library are taken:
- the TFLite Micro Arduino library (`tflite-micro-arduino-examples`, whose last export is
  of 2023): `ROOT/src/tensorflow/...`, `.cpp` files, one include root (`src/`), its
  version in `library.properties`;
- a TFLite Micro source tree made by TFLM's own `create_tflm_tree.py` (the way to get the
  current TFLite Micro for a board of one's own; ours is made for `cortex_m_generic` with
  the CMSIS-NN kernels): `ROOT/tensorflow/...` and `ROOT/third_party/...`, `.cc` files,
  the include roots TFLM's Makefile uses (the top, flatbuffers, gemmlowp, ruy, kissfft,
  CMSIS-NN, CMSIS Core).

Offline, PlatformIO will not take either folder as it stands (the Arduino library's
`library.properties` names dependencies the library manager then fetches, and its Arduino
builder compiles all of `src/`; the tree has no manifest at all). What works is small
manifests of our own, `library.json`, whose `build.srcDir`/`includeDir` point at the
library's sources, whose flags name its other include roots, and whose `build.srcFilter`
lists only the files a model needs: the interpreter core, the kernels of its ops, and the
CMSIS-NN sources those kernels call. Nothing is copied; PlatformIO compiles the files where
they are.

The manifests are split into parts (the core; one per kernel) written once per library
under tinysmile's cache folder, and the projects name them: a part's objects then have the
same path and command line in every project, so PlatformIO's build cache
(`build_cache_dir`) hands them to the next model instead of compiling them again.

The file selection follows the library's own structure rather than a hand-kept list per op,
the same way in both layouts:
- the core is every source under `tensorflow/` outside the kernels folder, less what the
  firmware replaces or never runs (`_NOT_CORE`), plus the kernels' shared `kernel_util`;
- each op's kernel is the file defining the `Register_<OP>()` its resolver method calls
  (`micro_mutable_op_resolver.h`), plus that kernel's `<name>_common` file when it has one,
  and the `_common` files defining the constants those use;
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

from tinysmile.device.budget import TFLM_CODE_BYTES
from tinysmile.errors import TinysmileError

ENV_VAR = "TINYSMILE_TFLM_LIB"
LIBRARY_NAME = "tinysmile-tflm"  # the generated manifests' names: tinysmile-tflm-<part>
CXX_FLAGS = ["-std=c++17", "-fno-rtti", "-fno-exceptions", "-fno-threadsafe-statics"]
# The library is not clean under -Wextra (unused parameters): our strict flags stay on our
# own sources, and these quiet the library's few warnings at its default level.
LIB_FLAGS = ["-O2", "-Wno-unused-parameter"]
CACHE_ENV_VAR = "TINYSMILE_CACHE_DIR"

_MICRO = "tensorflow/lite/micro"
_KERNELS = f"{_MICRO}/kernels"
_CMSIS_NN = "third_party/cmsis_nn/Source"
# The defines TFLite Micro's headers are compiled with change its structs' layouts: every
# file that includes them (the library's and ours) gets exactly these.
_DEFINES = ("TF_LITE_STATIC_MEMORY", "TF_LITE_STRIP_ERROR_STRINGS", "CMSIS_NN", "NDEBUG")


@dataclass(frozen=True)
class Layout:
    """Where a layout keeps its sources, and how they are compiled."""

    name: str  # for messages
    src: str  # the folder under the root that holds tensorflow/ and third_party/
    ext: str  # the suffix of its C++ sources
    includes: tuple[str, ...]  # include roots under src; the first is the manifests' includeDir
    defines: tuple[str, ...]
    code_bytes: int  # flash its code takes in a firmware, estimated for the budget


# ARDUINO because the export replaced some guards with `#ifndef ARDUINO` (kernel_util.cpp
# does not compile under TF_LITE_STATIC_MEMORY without it); the library's own
# `src/peripherals/`, which needs the Arduino core, is never selected.
ARDUINO_LIBRARY = Layout(
    "the TFLite Micro Arduino library",
    "src",
    ".cpp",
    ("",),
    (*_DEFINES, "ARDUINO"),
    TFLM_CODE_BYTES,
)
SOURCE_TREE = Layout(
    "a TFLite Micro source tree (create_tflm_tree.py)",
    "",
    ".cc",
    (
        "",
        "third_party/flatbuffers/include",
        "third_party/gemmlowp",
        "third_party/ruy",
        "third_party/kissfft",
        "third_party/cmsis_nn",
        "third_party/cmsis_nn/Include",
        "third_party/cmsis/CMSIS/Core/Include",
    ),
    _DEFINES,
    # Its CMSIS-NN kernels link their int4 and int16 paths too (chosen at run time): on the
    # emulated board the bundled model's harness takes 89 KiB of code, xception's and
    # sww's (benchmark models, six and five kinds of op) 109 KiB.
    128 * 1024,
)
LAYOUTS = (ARDUINO_LIBRARY, SOURCE_TREE)

# Sources under tensorflow/ that are not the core, by file name (without suffix): what the
# firmware provides itself (debug_log: firmware/tflm/tsm_tflm.cpp keeps TFLM's log for its
# error replies; system_setup: the port sets the board up; micro_time, micro_profiler: the
# harness times operators through the profiler interface over its own counter), what would
# pull every kernel in (all_ops_resolver), the host's allocation report (recording_*) and test
# or debugging helpers. By folder: the kernels (chosen per op), the Arduino library's audio
# front end and a tree's target port (cortex_m_generic: its DebugLog formats with newlib's
# vsnprintf, which links malloc; the firmware has no heap).
_NOT_CORE = {
    "all_ops_resolver",
    "debug_log",
    "system_setup",
    "micro_time",
    "micro_profiler",
    "recording_micro_allocator",
    "recording_single_arena_buffer_allocator",
    "fake_micro_context",
    "mock_micro_graph",
    "test_helpers",
    "test_helper_custom_ops",
    "hexdump",
}
_NOT_CORE_DIRS = (f"{_KERNELS}/", "tensorflow/lite/experimental/", f"{_MICRO}/cortex_m_generic/")
_KERNEL_CORE = f"{_KERNELS}/kernel_util"  # the kernels' shared helpers


@dataclass(frozen=True)
class TflmLibrary:
    root: Path  # the folder named by --tflm-lib
    layout: Layout = ARDUINO_LIBRARY

    @property
    def src(self) -> Path:
        return self.root / self.layout.src if self.layout.src else self.root

    @property
    def include_dirs(self) -> list[Path]:
        """Every include root, in order: the library's files and ours are compiled with
        these (the first is the manifests' includeDir)."""
        return [self.src / d if d else self.src for d in self.layout.includes]

    @property
    def defines(self) -> list[str]:
        return list(self.layout.defines)

    @property
    def version(self) -> str:
        """The Arduino library's version; a source tree carries none ("0.0.0")."""
        props = self.root / "library.properties"
        if props.is_file():
            for line in props.read_text(errors="replace").splitlines():
                if line.startswith("version="):
                    return line.split("=", 1)[1].strip()
        return "0.0.0"

    @property
    def code_bytes(self) -> int:
        return self.layout.code_bytes

    @property
    def key(self) -> str:
        """Names this library in the parts' folders and in the firmware's tag."""
        return hashlib.sha256(f"{self.root}:{self.version}".encode()).hexdigest()[:12]

    def sources(self, methods: list[str]) -> list[str]:
        """Files (relative to src) a resolver with these Add* methods needs."""
        return sorted({f for files in self.parts(methods).values() for f in files})

    def parts(self, methods: list[str]) -> dict[str, list[str]]:
        """The needed files as PlatformIO libraries: the interpreter core, and one part per
        kernel (its files and the CMSIS-NN sources it calls). A part is the same files for
        every model that needs it, so its objects are shared between models."""
        return _parts(self, tuple(sorted(methods)))

    def manifests(self, methods: list[str], into: Path) -> list[Path]:
        """Write each part's library.json under `into` (one folder per library and part,
        the same for every model: PlatformIO's build cache keys objects by their path);
        returns the part folders."""
        folders = []
        for name, files in self.parts(methods).items():
            folder = Path(into) / f"tflm-{self.key}" / name
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
        top, *others = self.include_dirs
        return {
            "name": f"{LIBRARY_NAME}-{name}",
            "version": _semver(self.version),
            "description": f"TFLite Micro from {self.root}: {name}, compiled in place",
            "frameworks": "*",
            "platforms": "*",
            "build": {
                "srcDir": str(self.src),
                "includeDir": str(top),
                "srcFilter": ["-<*>", *[f"+<{f}>" for f in files]],
                "flags": [*LIB_FLAGS, *[f"-I{d}" for d in others]],
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


_MARKER = f"{_MICRO}/micro_interpreter.h"


def locate(path: str | Path | None = None) -> TflmLibrary | None:
    """The library named by --tflm-lib or $TINYSMILE_TFLM_LIB, checked; None when neither."""
    given = path if path is not None else os.environ.get(ENV_VAR) or None
    if given is None:
        return None
    root = Path(given).expanduser().resolve()
    where = "--tflm-lib" if path is not None else f"${ENV_VAR}"
    for layout in LAYOUTS:
        lib = TflmLibrary(root, layout)
        if (lib.src / _MARKER).is_file():
            missing = [d for d in lib.include_dirs if not d.is_dir()]
            if missing:
                raise TinysmileError(
                    f"{where} {root} looks like {layout.name} but has no {missing[0]} "
                    "(made without the CMSIS-NN kernels?)"
                )
            return lib
    raise TinysmileError(
        f"{where} {root} is neither the TFLite Micro Arduino library (src/{_MARKER}) nor a "
        f"TFLite Micro source tree ({_MARKER})"
    )


def _files(lib: TflmLibrary, folder: str, recursive: bool = False) -> list[Path]:
    base = lib.src / folder
    found = base.rglob(f"*{lib.layout.ext}") if recursive else base.glob(f"*{lib.layout.ext}")
    return sorted(p for p in found if p.is_file())


def _rel(lib: TflmLibrary, path: Path) -> str:
    return path.relative_to(lib.src).as_posix()


def _core(lib: TflmLibrary) -> list[str]:
    every = [_rel(lib, p) for p in _files(lib, "tensorflow", recursive=True)]
    out = [f for f in every if Path(f).stem not in _NOT_CORE and not f.startswith(_NOT_CORE_DIRS)]
    rel = _KERNEL_CORE + lib.layout.ext
    if not (lib.src / rel).is_file():
        raise TinysmileError(f"{lib.root}: no {rel} (not {lib.layout.name} as expected)")
    out.append(rel)
    if not any(f.startswith(f"{_MICRO}/micro_interpreter") for f in out):
        raise TinysmileError(f"{lib.root}: no interpreter sources (not {lib.layout.name}?)")
    return sorted(dict.fromkeys(out))


@lru_cache(maxsize=8)
def _parts(lib: TflmLibrary, methods: tuple[str, ...]) -> dict[str, list[str]]:
    out = {"core": _core(lib)}
    for method in methods:
        kernels = _kernel_files(lib, method)
        name = Path(kernels[0]).stem  # pooling serves MAX_POOL_2D and AVERAGE_POOL_2D
        out[name] = sorted(kernels + _cmsis_closure(lib, kernels))
    return out


@lru_cache(maxsize=4)
def _resolver_registrations(lib: TflmLibrary) -> dict[str, str]:
    """Add* method -> the Register_* function it defaults to, from the resolver's header."""
    text = (lib.src / _MICRO / "micro_mutable_op_resolver.h").read_text(errors="replace")
    out: dict[str, str] = {}
    # Each method's body (its default argument, in newer libraries) runs up to the next
    # method; its first Register_ call is its kernel.
    for m in re.finditer(r"TfLiteStatus (Add\w+)\((.*?)(?=TfLiteStatus Add|\Z)", text, re.DOTALL):
        reg = re.search(r"Register_(\w+)\(\)", m.group(2))
        if reg:
            out[m.group(1)] = reg.group(1)
    return out


@lru_cache(maxsize=4)
def _registration_files(lib: TflmLibrary) -> dict[str, str]:
    """Register_* name -> the kernel file defining it."""
    out: dict[str, str] = {}
    for path in _files(lib, _KERNELS, recursive=True):
        text = path.read_text(errors="replace")
        for name in re.findall(r"\bRegister_(\w+)\(\)\s*\{", text):
            out.setdefault(name, _rel(lib, path))
    return out


def _kernel_files(lib: TflmLibrary, method: str) -> list[str]:
    reg = _resolver_registrations(lib).get(method)
    path = _registration_files(lib).get(reg or "")
    if reg is None or path is None:
        raise TinysmileError(
            f"the TFLite Micro library in {lib.root} has no kernel for {method} "
            "(an older or newer library than tinysmile knows?)"
        )
    files = [path]
    common = f"{_KERNELS}/{Path(path).stem}_common{lib.layout.ext}"
    if (lib.src / common).is_file():
        files.append(common)
    # a common file may use another kernel's constants (depthwise_conv_common takes conv's
    # tensor indices, defined in conv_common): add the files defining them
    shared = _shared_constants(lib)
    for f in files:
        for name in _CONSTANT.findall((lib.src / f).read_text(errors="replace")):
            owner = shared.get(name)
            if owner and owner not in files:
                files.append(owner)
    return files


_CONSTANT = re.compile(r"\b(k[A-Z]\w*)\b")


@lru_cache(maxsize=4)
def _shared_constants(lib: TflmLibrary) -> dict[str, str]:
    """`const int kName = ...;` at the top level of a kernel's _common file -> that file."""
    out: dict[str, str] = {}
    for path in _files(lib, _KERNELS):
        if not path.stem.endswith("_common"):
            continue
        for name in re.findall(
            r"^const int (k\w+)\s*=", path.read_text(errors="replace"), re.MULTILINE
        ):
            out.setdefault(name, _rel(lib, path))
    return out


_CALL = re.compile(r"\b(arm_\w+)\s*\(")


@lru_cache(maxsize=4)
def _cmsis_index(lib: TflmLibrary) -> dict[str, str]:
    """CMSIS-NN function -> the file defining it (a definition starts at column 0)."""
    out: dict[str, str] = {}
    for path in sorted((lib.src / _CMSIS_NN).rglob("*.c")):
        rel = _rel(lib, path)
        out.setdefault(path.stem, rel)
        for line in path.read_text(errors="replace").splitlines():
            if line[:1].isalpha() and not line.rstrip().endswith(";"):
                for name in _CALL.findall(line):
                    out.setdefault(name, rel)
    return out


def _cmsis_closure(lib: TflmLibrary, kernels: list[str]) -> list[str]:
    index = _cmsis_index(lib)
    seen: set[str] = set()
    todo = list(kernels)
    while todo:
        text = (lib.src / todo.pop()).read_text(errors="replace")
        for name in _CALL.findall(text):
            rel = index.get(name)
            if rel and rel not in seen:
                seen.add(rel)
                todo.append(rel)
    return sorted(seen)


# Where TFLite Micro is known to give other bytes than LiteRT's reference kernels, which
# `verify` holds every runtime to (tests/test_device_tflm.py pins each one to a model, on the
# emulated board).
# - The Arduino library reporting 2.4.0-ALPHA is the 2023-02 export (the copy in ../shared):
#   its CMSIS-NN FULLY_CONNECTED is per tensor only, and its int8 MEAN rounds differently.
# - A source tree of current TFLite Micro has both fixed, but its CMSIS-NN FULLY_CONNECTED
#   requantizes per-channel outputs with two roundings (a rounding doubling high multiply,
#   then a rounding shift), where LiteRT's reference per-channel kernel rounds once (a 64-bit
#   product, one shift); per-tensor FULLY_CONNECTED and the convolutions round twice in both.
# - Every TFLite Micro clamps int8 RELU6 without rescaling.
# A library from a registry is only held to what every version does.
ARDUINO_EXPORT_2023 = "2.4.0-ALPHA"


def is_arduino_export_2023(library: TflmLibrary | None) -> bool:
    return (
        library is not None
        and library.layout == ARDUINO_LIBRARY
        and library.version == ARDUINO_EXPORT_2023
    )


def known_differences(graph: Any, library: TflmLibrary | None) -> list[str]:
    """One line per operator of `graph` (the compiler's parsed model) on which TFLite Micro
    (this local library, or a registry one when None) is known not to match LiteRT byte
    for byte."""
    old = is_arduino_export_2023(library)
    tree = library is not None and library.layout == SOURCE_TREE
    notes = []
    for op in graph.ops:
        ins = graph.op_inputs(op)
        if op.kind == "FULLY_CONNECTED" and (old or tree):
            weights = ins[1] if len(ins) > 1 else None
            if weights is not None and weights.quant is not None and weights.quant.per_channel:
                notes.append(
                    f"{op.describe()} has per-channel weight scales; this library's "
                    + (
                        "FULLY_CONNECTED requantizes every output with the first channel's"
                        if old
                        else "FULLY_CONNECTED (CMSIS-NN) rounds them twice where LiteRT "
                        "rounds once: some outputs land one step away"
                    )
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
