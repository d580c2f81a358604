"""firmware/vision built by the host's `cc` as a shared library and called through ctypes:
the resize, the framing and the finder decode a board runs, on the host.

The library is cached under the state directory, keyed by the sources and the flags, as
`tinysmile.pi.engine` caches a compiled model. `sanitize=True` builds it with the ASan/UBSan
flags of `tinysmile.compiler.hostrun`; such a library loads only into a process that has the
sanitizer runtimes preloaded (`sanitizer_preload()` names them for LD_PRELOAD).
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import subprocess
from pathlib import Path

import numpy as np

from tinysmile.errors import TinysmileError
from tinysmile.finder.decode import FinderTables
from tinysmile.resources import firmware_dir

MAX_WIDTH = 256  # TSM_IMAGE_MAX_WIDTH: the C's row accumulator lives on the stack


class Square(ctypes.Structure):
    _fields_ = [("x", ctypes.c_int32), ("y", ctypes.c_int32), ("side", ctypes.c_int32)]


class Framing(ctypes.Structure):
    _fields_ = [("side_q16", ctypes.c_int32), ("shift_q16", ctypes.c_int32)]


class Finder(ctypes.Structure):
    _fields_ = [
        ("grid_w", ctypes.c_uint32),
        ("grid_h", ctypes.c_uint32),
        ("score_threshold", ctypes.c_int32),
        ("offset_x", ctypes.POINTER(ctypes.c_int32)),
        ("offset_y", ctypes.POINTER(ctypes.c_int32)),
        ("side", ctypes.POINTER(ctypes.c_int32)),
        ("cell_w_q4", ctypes.c_int32),
        ("cell_h_q4", ctypes.c_int32),
    ]


class Face(ctypes.Structure):
    _fields_ = [(name, ctypes.c_int32) for name in ("found", "score", "x", "y", "w", "h")]


def vision_sources() -> list[Path]:
    return sorted((firmware_dir() / "vision").glob("*.c"))


def _flags(sanitize: bool) -> list[str]:
    from tinysmile.compiler.hostrun import SANITIZE, SHARED_FLAGS

    return SHARED_FLAGS + (SANITIZE if sanitize else [])


def _cache_dir() -> Path:
    from tinysmile.device.emulator import state_dir

    return state_dir() / "vision"


def build_vision_library(sanitize: bool = False, workdir: Path | None = None) -> Path:
    """Build firmware/vision/*.c as a shared library (cached by sources and flags)."""
    from tinysmile.compiler.hostrun import link_shared

    sources = vision_sources()
    if not sources:
        raise TinysmileError(f"{firmware_dir() / 'vision'}: no C sources")
    flags = _flags(sanitize)
    digest = hashlib.sha256(" ".join(flags).encode())
    for src in sources + sorted((firmware_dir() / "vision").glob("*.h")):
        digest.update(src.name.encode() + b"\0" + src.read_bytes())
    key = digest.hexdigest()[:16]
    work = workdir or _cache_dir() / key
    lib = work / f"libtsmvision_{key}.so"
    if lib.is_file():
        return lib
    return link_shared(lib, sources, [], flags, "firmware/vision")


def sanitizer_preload() -> str:
    """LD_PRELOAD value that lets a process load a `sanitize=True` library."""
    from tinysmile.compiler.hostrun import host_compiler

    libs = []
    for name in ("libasan.so", "libubsan.so"):
        proc = subprocess.run(
            [host_compiler(), f"-print-file-name={name}"],
            capture_output=True,
            text=True,
            check=False,
        )
        path = proc.stdout.strip()
        if proc.returncode != 0 or not os.path.isabs(path):
            raise TinysmileError(f"the host compiler has no {name} (install its sanitizers)")
        libs.append(path)
    return ":".join(libs)


@functools.lru_cache(maxsize=2)
def load_vision_library(sanitize: bool = False) -> ctypes.CDLL:
    lib = ctypes.CDLL(str(build_vision_library(sanitize)))
    lib.tsm_image_resize_area.argtypes = [
        ctypes.c_void_p,
        ctypes.c_uint32,
        ctypes.c_uint32,
        ctypes.c_uint32,
        ctypes.c_void_p,
        ctypes.c_uint32,
        ctypes.c_uint32,
    ]
    lib.tsm_image_resize_area.restype = None
    lib.tsm_image_frame_square.argtypes = [ctypes.c_int32] * 4 + [
        ctypes.c_uint32,
        ctypes.c_uint32,
        ctypes.POINTER(Framing),
    ]
    lib.tsm_image_frame_square.restype = Square
    lib.tsm_finder_decode.argtypes = [ctypes.POINTER(Finder), ctypes.c_void_p]
    lib.tsm_finder_decode.restype = Face
    return lib


def c_resize_area(src: np.ndarray, dw: int, dh: int, *, sanitize: bool = False) -> np.ndarray:
    """`tsm_image_resize_area` on uint8 (h, w) pixels -> uint8 (dh, dw). `src` may be a
    window into a larger frame (a slice): its row pitch is passed as the C's stride, and the
    C reads nothing outside the window."""
    a = np.asarray(src)
    if a.dtype != np.uint8 or a.ndim != 2:
        raise TinysmileError(f"c_resize_area takes uint8 (h, w) pixels, got {a.dtype} {a.shape}")
    sh, sw = a.shape
    if a.strides[1] != 1 or a.strides[0] < sw:
        a = np.ascontiguousarray(a)
    if min(sh, sw) < 1 or not 1 <= dw <= MAX_WIDTH or dh < 1:
        raise TinysmileError(f"c_resize_area: cannot resize {sw}x{sh} to {dw}x{dh}")
    if 255 * sw * sh >= 1 << 32:
        raise TinysmileError(f"c_resize_area: a {sw}x{sh} window overflows the uint32 sums")
    out = np.zeros((dh, dw), dtype=np.uint8)
    load_vision_library(sanitize).tsm_image_resize_area(
        a.ctypes.data, a.strides[0], sw, sh, out.ctypes.data, dw, dh
    )
    return out


def c_frame_square(
    box: tuple[int, int, int, int],
    fw: int,
    fh: int,
    side_q16: int,
    shift_q16: int,
    *,
    sanitize: bool = False,
) -> tuple[int, int, int]:
    """`tsm_image_frame_square` -> (x, y, side)."""
    framing = Framing(side_q16, shift_q16)
    x, y, w, h = (int(v) for v in box)
    sq = load_vision_library(sanitize).tsm_image_frame_square(
        x, y, w, h, fw, fh, ctypes.byref(framing)
    )
    return sq.x, sq.y, sq.side


def c_finder_decode(
    tables: FinderTables, output: np.ndarray, *, sanitize: bool = False
) -> tuple[int, int, int, int, int] | None:
    """`tsm_finder_decode` -> (x, y, w, h, score), or None when no face was found."""
    cells = tables.grid_w * tables.grid_h
    out = np.ascontiguousarray(output)
    if out.dtype != np.int8 or out.size != 4 * cells or cells == 0:
        raise TinysmileError(
            f"finder output: expected {4 * cells} int8 values, got {out.size} {out.dtype}"
        )
    arrays = []
    for name in ("offset_x", "offset_y", "side"):
        t = np.ascontiguousarray(getattr(tables, name), dtype=np.int32)
        if t.shape != (256,):
            raise TinysmileError(f"finder tables: {name} has shape {t.shape}, not (256,)")
        arrays.append(t)  # kept alive here for the call
    p = [t.ctypes.data_as(ctypes.POINTER(ctypes.c_int32)) for t in arrays]
    finder = Finder(
        tables.grid_w,
        tables.grid_h,
        tables.score_threshold,
        p[0],
        p[1],
        p[2],
        tables.cell_w_q4,
        tables.cell_h_q4,
    )
    face = load_vision_library(sanitize).tsm_finder_decode(ctypes.byref(finder), out.ctypes.data)
    if not face.found:
        return None
    return face.x, face.y, face.w, face.h, face.score
