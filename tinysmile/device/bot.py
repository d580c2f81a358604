"""The smiling bot's whole-frame pipeline on the host: the board's own C, built here.

`HostBot(smile_bundle, finder_bundle | None, frame_w, frame_h)` compiles both models with
tinysmile's compiler, renders the app's glue (`templates/app/tsm_app_glue.c.j2`, the same
tables the firmware gets), and builds them with `firmware/app/tsm_bot.c`,
`firmware/vision/*.c` and the kernels into a shared library with the host's `cc`, cached
under the state dir by the models' hashes, the bundles' settings and the C sources. Its
`decide(frame)` runs `tsm_bot_decide_frame` through ctypes: camera frame -> finder -> face
box -> framing rule -> crop -> smile model, the bytes the board gives. No TensorFlow.

    bot = HostBot(load_bundle(None), load_bundle("tinysmile/models/face_finder"), 320, 240)
    r = bot.decide(gray_320x240_uint8)
    r.face        # (x, y, w, h) in frame pixels, or None (no face: no smile inference)
    r.square      # (x, y, side): the square the smile model saw
    r.input_int8  # the smile model's input (None without a face); r.output_int8, r.smile

`to_camera_frame(image, w, h)` turns any image into a camera frame (grayscale, then
letterboxed with the integer area resize), so device and host get the same bytes.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tinysmile import __version__
from tinysmile.boards import Board
from tinysmile.bundle import Bundle, load_bundle
from tinysmile.errors import TinysmileError
from tinysmile.resources import firmware_dir, models_dir, templates_dir

SMILE_PREFIX = "tsmbot_smile"
FINDER_PREFIX = "tsmbot_finder"
DETECTORS = "BUNDLE (a finder bundle folder), bundled or none"
FACE_NONE, FACE_FOUND, FACE_GIVEN = 0, 1, 2  # TSM_BOT_FACE_* (firmware/app/tsm_bot.h)


class _Square(ctypes.Structure):
    _fields_ = [("x", ctypes.c_int32), ("y", ctypes.c_int32), ("side", ctypes.c_int32)]


class _Result(ctypes.Structure):
    """tsm_bot_result_t; its size is checked against the C's sizeof at load."""

    _fields_ = [
        ("face", ctypes.c_int32),
        ("score", ctypes.c_int32),
        ("x", ctypes.c_int32),
        ("y", ctypes.c_int32),
        ("w", ctypes.c_int32),
        ("h", ctypes.c_int32),
        ("square", _Square),
        ("smile", ctypes.c_int32),
        ("stamps", ctypes.c_uint32 * 3),
    ]


@dataclass(frozen=True)
class BotResult:
    face_kind: int  # FACE_NONE, FACE_FOUND, FACE_GIVEN (no finder: the centre square)
    face: tuple[int, int, int, int] | None  # (x, y, w, h) in frame pixels; None: no face
    score: int  # the finder's best cell score (int8); 0 without a finder
    square: tuple[int, int, int] | None  # (x, y, side) the smile model saw; None: no face
    input_int8: np.ndarray | None  # the smile model's input; None: no face, no inference
    output_int8: np.ndarray | None
    smile: bool  # the LED: always False without a face


def resolve_detector(detector: str | None, board: Board | None = None) -> Bundle | None:
    """The face finder a command links: a bundle folder, `bundled` (the shipped finder),
    `none`, or None for the default: the bundled finder on boards with a camera frame (the
    centre square where the finder is missing from this installation)."""
    shipped = models_dir() / "face_finder"
    if detector is None:
        if board is None or board.camera is None or not (shipped / "bundle.json").is_file():
            return None
        detector = "bundled"
    if detector == "none":
        return None
    if detector == "bundled":
        if not (shipped / "bundle.json").is_file():
            raise TinysmileError(
                f"no bundled face finder in this tinysmile ({shipped}): pass --detector "
                "BUNDLE (a finder bundle folder) or --detector none"
            )
        path: str | Path = shipped
    else:
        path = detector
    finder = load_bundle(str(path))
    if finder.meta.get("task") != "finder":
        raise TinysmileError(
            f"--detector {detector}: {finder.name} is not a face finder bundle (its task is "
            f"{finder.meta.get('task')!r}); give {DETECTORS}"
        )
    return finder


def to_camera_frame(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Any image -> a width x height gray uint8 camera frame: grayscale, then (unless it is
    that size already) area-resized to fit and letterboxed, centred, on black."""
    from tinysmile.data.pixels import letterbox
    from tinysmile.data.preprocess import to_gray

    gray = np.ascontiguousarray(to_gray(np.asarray(image)), dtype=np.uint8)
    return letterbox(gray, width, height)[0]


def _c_sources() -> list[Path]:
    fw = firmware_dir()
    return sorted(
        [
            fw / "app" / "tsm_bot.c",
            fw / "app" / "tsm_bot.h",
            fw / "app" / "tsm_app.h",
            fw / "tsm_model.h",
            *(fw / "vision").glob("*.[ch]"),
            *(fw / "kernels").glob("*.[ch]"),
            templates_dir() / "app" / "tsm_app_glue.c.j2",
            templates_dir() / "host" / "tsm_bot_host.c.j2",
        ]
    )


def library_key(smile: Bundle, finder: Bundle | None, frame_w: int, frame_h: int) -> str:
    """What the shared library is cached under: both models, the bundles' settings the glue
    is made from, the frame size, the C sources, the flags."""
    h = hashlib.sha256()
    for part in (
        smile.model_hash(),
        json.dumps(smile.meta, sort_keys=True, default=str),
        finder.model_hash() if finder else "-",
        json.dumps(finder.meta, sort_keys=True, default=str) if finder else "-",
        f"{frame_w}x{frame_h}",
        __version__,
        " ".join(_shared_flags()),
    ):
        h.update(part.encode() + b"\0")
    for path in _c_sources():
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


def _shared_flags() -> list[str]:
    from tinysmile.compiler.hostrun import SHARED_FLAGS

    return SHARED_FLAGS


def _cache_dir() -> Path:
    from tinysmile.device.emulator import state_dir

    return state_dir() / "host-bot"


def write_bot_sources(
    smile: Bundle, finder: Bundle | None, frame_w: int, frame_h: int, work: Path
) -> tuple[list[Path], list[Path]]:
    """Both models' C, the glue and the host entry in `work`: (sources, include dirs)."""
    from tinysmile.compiler.api import compile_model
    from tinysmile.device.app import FinderGlue, glue_context
    from tinysmile.templating import render_to

    compiled = compile_model(smile.model_path, work / "smile", prefix=SMILE_PREFIX)
    parts = [compiled]
    fglue = None
    if finder is not None:
        fcomp = compile_model(finder.model_path, work / "finder", prefix=FINDER_PREFIX)
        parts.append(fcomp)
        fglue = FinderGlue(finder, fcomp.report, FINDER_PREFIX)
    glue = work / "tsm_app_glue.c"
    render_to(
        glue,
        "app/tsm_app_glue.c.j2",
        **glue_context(
            smile,
            compiled.report,
            (frame_w, frame_h),
            f"{SMILE_PREFIX}_model.h",
            f"{SMILE_PREFIX}_info",
            f"{SMILE_PREFIX}_invoke",
            finder=fglue,
        ),
    )
    entry = work / "tsm_bot_host.c"
    render_to(entry, "host/tsm_bot_host.c.j2", version=__version__)
    fw = firmware_dir()
    kernels = sorted({s for c in parts for s in c.sources})
    sources = [glue, entry, fw / "app" / "tsm_bot.c", *sorted((fw / "vision").glob("*.c"))]
    sources += [c.c_path for c in parts] + kernels
    includes = [fw / "app", fw / "vision", *parts[0].include_dirs]
    includes += [c.c_path.parent for c in parts[1:]]
    return sources, includes


def build_bot_library(
    smile: Bundle, finder: Bundle | None, frame_w: int, frame_h: int, workdir: Path | None = None
) -> Path:
    """The pipeline as a shared library (cached: see library_key)."""
    from tinysmile.compiler.hostrun import link_shared

    key = library_key(smile, finder, frame_w, frame_h)
    work = workdir or _cache_dir() / key
    lib = work / f"libtsmbot_{key}.so"
    if lib.is_file():
        return lib
    sources, includes = write_bot_sources(smile, finder, frame_w, frame_h, work / "src")
    return link_shared(lib, sources, includes, _shared_flags(), "the bot's C")


class HostBot:
    """The board's pipeline on the host (see the module docstring). Not thread-safe: the
    models' buffers are the library's statics, as on the board."""

    def __init__(
        self,
        smile: Bundle,
        finder: Bundle | None,
        frame_w: int,
        frame_h: int,
        workdir: Path | None = None,
    ) -> None:
        if frame_w < 1 or frame_h < 1:
            raise TinysmileError(f"HostBot: bad frame size {frame_w}x{frame_h}")
        self.smile, self.finder = smile, finder
        self.frame_w, self.frame_h = frame_w, frame_h
        self.library = build_bot_library(smile, finder, frame_w, frame_h, workdir)
        self.lib = ctypes.CDLL(str(self.library))
        size = self.lib.tsm_bot_host_result_size
        size.restype = ctypes.c_uint32
        if size() != ctypes.sizeof(_Result):
            raise TinysmileError("tsm_bot_result_t differs from tinysmile.device.bot._Result")
        for name in ("tsm_bot_host_input_size", "tsm_bot_host_output_size"):
            getattr(self.lib, name).restype = ctypes.c_uint32
        self.input_size = int(self.lib.tsm_bot_host_input_size())
        self.output_size = int(self.lib.tsm_bot_host_output_size())
        self._decide = self.lib.tsm_bot_host_decide
        self._decide.argtypes = [ctypes.c_void_p] * 4
        self._decide.restype = ctypes.c_int32

    def decide(self, frame: np.ndarray) -> BotResult:
        """uint8 (frame_h, frame_w) gray camera frame -> the bot's decision."""
        data = np.ascontiguousarray(frame)
        if data.dtype != np.uint8 or data.shape != (self.frame_h, self.frame_w):
            raise TinysmileError(
                f"HostBot takes uint8 ({self.frame_h}, {self.frame_w}) frames, got "
                f"{data.dtype} {data.shape}"
            )
        r = _Result()
        x = np.zeros(self.input_size, dtype=np.int8)
        y = np.zeros(self.output_size, dtype=np.int8)
        self._decide(data.ctypes.data, ctypes.addressof(r), x.ctypes.data, y.ctypes.data)
        if r.face == FACE_NONE:
            return BotResult(FACE_NONE, None, int(r.score), None, None, None, False)
        return BotResult(
            int(r.face),
            (int(r.x), int(r.y), int(r.w), int(r.h)),
            int(r.score),
            (int(r.square.x), int(r.square.y), int(r.square.side)),
            x,
            y,
            bool(r.smile),
        )


def describe(result: BotResult) -> dict[str, Any]:
    """A BotResult as JSON-friendly values."""
    return {
        "face": None if result.face is None else list(result.face),
        "score": result.score,
        "square": None if result.square is None else list(result.square),
        "smile": result.smile,
        "output_int8": None if result.output_int8 is None else result.output_int8.tolist(),
    }
