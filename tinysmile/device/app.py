"""The smiling-bot app mode: the numbers its firmware needs (decided here, from the bundles
and the board file) and the host side of its FRAME exchange (layouts: firmware/app/tsm_app.h).

The device maps a gray pixel to the model's int8 input through a 256-entry table built by
the bundle's own `to_int8`, so a frame sent over serial becomes exactly the input the host
computes; it decides smile when the smile output is >= the bundle's int8 threshold. With a
face finder linked, a whole camera frame goes through firmware/app/tsm_bot.c (the same C
the host runs as its reference, `tinysmile.device.bot.HostBot`).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from tinysmile import __version__
from tinysmile.boards import Board
from tinysmile.bundle import Bundle
from tinysmile.compiler.clits import CArray, c_string
from tinysmile.data.preprocess import PreprocessSpec, to_int8
from tinysmile.errors import TinysmileError
from tinysmile.templating import render_to

MSG_FRAME = 0x06  # twin of TSM_MSG_FRAME in firmware/app/tsm_app.h
MSG_FRAME_DATA = 0x07
MSG_APP_EVENT = 0x71
ERR_RANGE = 7  # TSM_ERR_RANGE: a chunk past the frame's end
ERR_BAD_FRAME = 8  # TSM_ERR_BAD_FRAME: the frame buffer's CRC differs from FRAME's
FACE_NONE, FACE_FOUND, FACE_GIVEN = 0, 1, 2  # TSM_BOT_FACE_* in firmware/app/tsm_bot.h
# led, smile, crc, face, score, box x y w h, square x y side, stage stamps
_REPLY_HEAD = struct.Struct("<BBIBb7h3I")
_CHUNK_HEAD = struct.Struct("<I")
_CHUNK_REPLY = struct.Struct("<III")
_CAPTURE_HEAD = struct.Struct("<BBII")


@dataclass(frozen=True)
class AppTables:
    pixel_to_input: list[int]  # 256 int8 values
    width: int
    height: int
    channels: int
    smile_index: int
    smile_threshold: int
    camera_width: int  # 0: no camera frame (only model-size frames over serial)
    camera_height: int
    side_q16: int  # the smile bundle's framing rule, as tsm_framing_t
    shift_q16: int


def pixel_table(bundle: Bundle, scale: float, zero_point: int) -> np.ndarray:
    """int8 model input of every gray level, through the bundle's preprocessing."""
    spec = PreprocessSpec.from_dict(bundle.preprocess)
    return to_int8(spec, np.arange(256, dtype=np.uint8), scale, zero_point)


def smile_threshold(bundle: Bundle, out_scale: float, out_zero_point: int) -> int:
    """The bundle's int8 decision threshold; from its probability threshold (default 0.5)
    as the smallest int8 output whose dequantized value reaches it, when not recorded."""
    meta = bundle.meta
    if "threshold_int8" in meta:
        return int(meta["threshold_int8"])
    p = 0.5 if bundle.threshold is None else float(bundle.threshold)
    q = np.arange(-128, 128)
    ok = np.flatnonzero((q - out_zero_point) * out_scale >= p)
    return int(q[ok[0]]) if ok.size else 128  # 128: never a smile


def smile_index(bundle: Bundle, output_size: int) -> int:
    """Which output holds the smile score: the only one, or the label named smile."""
    if output_size == 1:
        return 0
    labels = bundle.labels
    if "smile" in labels and labels.index("smile") < output_size:
        return labels.index("smile")
    raise TinysmileError(
        f"{bundle.name}: {output_size} outputs and no 'smile' label among {labels}: "
        "the app cannot tell which output is the smile"
    )


def camera_frame(board: Board) -> tuple[int, int] | None:
    """(width, height) of the board's camera frame, or None: a board with no camera table.
    A camera table without a driver (the emulated board) takes its frames over serial."""
    cam = board.camera
    return (int(cam["width"]), int(cam["height"])) if cam else None


def framing(bundle: Bundle) -> tuple[int, int]:
    """(side_q16, shift_q16): the smile bundle's framing rule as the fixed point the C takes."""
    from tinysmile.data.pixels import framing_q16

    spec = PreprocessSpec.from_dict(bundle.preprocess)
    return framing_q16(spec.crop_margin, spec.crop_shift_y)


def app_tables(
    bundle: Bundle, report: dict[str, Any], board: Board | tuple[int, int] | None
) -> AppTables:
    """The smile model's side of the glue; board: a board file, or the camera frame's
    (width, height) (None: no camera frame)."""
    shape = [int(d) for d in report["input"]["shape"]]
    if len(shape) != 4 or shape[0] != 1:
        raise TinysmileError(f"the app needs an image input (1, H, W, C), not {shape}")
    _, h, w, c = shape
    if w * h == 4:
        # FRAME's 4-byte payload is the camera frame's CRC (firmware/app/tsm_app.h).
        raise TinysmileError("the app cannot take a model of 4 input pixels")
    out_size = int(np.prod(report["output"]["shape"]))
    lut = pixel_table(bundle, float(report["input"]["scale"]), int(report["input"]["zero_point"]))
    frame = camera_frame(board) if isinstance(board, Board) else board
    cw, ch = frame or (0, 0)
    side_q16, shift_q16 = framing(bundle)
    return AppTables(
        pixel_to_input=[int(v) for v in lut],
        width=w,
        height=h,
        channels=c,
        smile_index=smile_index(bundle, out_size),
        smile_threshold=smile_threshold(
            bundle, float(report["output"]["scale"]), int(report["output"]["zero_point"])
        ),
        camera_width=cw,
        camera_height=ch,
        side_q16=side_q16,
        shift_q16=shift_q16,
    )


@dataclass(frozen=True)
class AppReply:
    led: int
    smile: int
    crc: int  # of the frame decided on (echoed)
    face: int  # FACE_NONE, FACE_FOUND or FACE_GIVEN (no finder ran)
    score: int  # the finder's best cell score, int8
    box: tuple[int, int, int, int]  # x, y, w, h in frame pixels
    square: tuple[int, int, int]  # x, y, side: what the smile model saw
    stamps: tuple[int, int, int]  # tick counter after detect, crop, classify
    output: np.ndarray  # int8 (the last decision's when no face was found)

    @property
    def found(self) -> bool:
        return self.face != FACE_NONE


def decode_app_reply(payload: bytes, output_size: int) -> AppReply:
    if len(payload) != _REPLY_HEAD.size + output_size:
        raise TinysmileError(
            f"app reply of {len(payload)} bytes, expected {_REPLY_HEAD.size + output_size}"
            " (a board flashed by another tinysmile? flash it again)"
        )
    led, smile, crc, face, score, *rest = _REPLY_HEAD.unpack_from(payload)
    box, square, stamps = tuple(rest[:4]), tuple(rest[4:7]), tuple(rest[7:])
    out = np.frombuffer(payload[_REPLY_HEAD.size :], dtype=np.int8).copy()
    return AppReply(led, smile, crc, face, score, box, square, stamps, out)  # type: ignore[arg-type]


def reply_bytes(output_size: int) -> int:
    return _REPLY_HEAD.size + output_size


def send_frame(client: Any, pixels: np.ndarray, output_size: int) -> AppReply:
    """One frame (uint8, the model's H x W) to a device running the app; its decision back.
    The echoed CRC proves the decision was made on these pixels."""
    data = np.ascontiguousarray(pixels, dtype=np.uint8).tobytes()
    reply = decode_app_reply(
        client.request(MSG_FRAME, data, reply_bytes=reply_bytes(output_size)), output_size
    )
    if reply.crc != zlib.crc32(data):
        raise TinysmileError("the app answered for another frame (CRC differs)")
    return reply


def chunk_bytes(client: Any) -> int:
    """Frame bytes per FRAME_DATA: what the device's receive buffer takes (HELLO's
    max_payload) less the offset."""
    hello = client.hello or client.handshake()
    n = int(hello.max_payload) - _CHUNK_HEAD.size
    if n < 1:
        raise TinysmileError(f"the device takes requests of {hello.max_payload} bytes only")
    return n


def send_frame_data(client: Any, data: bytes, offset: int) -> None:
    """One FRAME_DATA chunk; checks the device's echo (offset, length, CRC)."""
    payload = client.request(MSG_FRAME_DATA, _CHUNK_HEAD.pack(offset) + data, reply_bytes=12)
    if len(payload) != _CHUNK_REPLY.size:
        raise TinysmileError(f"FRAME_DATA reply of {len(payload)} bytes, expected 12")
    if _CHUNK_REPLY.unpack(payload) != (offset, len(data), zlib.crc32(data)):
        raise TinysmileError(f"the app stored another chunk at {offset} (its echo differs)")


def send_camera_frame(client: Any, frame: np.ndarray, output_size: int) -> AppReply:
    """A whole camera frame (uint8 H x W, the board's camera size) to the app: FRAME_DATA
    chunks, then FRAME with the frame's CRC, which runs the pipeline (tsm_bot.c) on it."""
    data = np.ascontiguousarray(frame, dtype=np.uint8).tobytes()
    step = chunk_bytes(client)
    for offset in range(0, len(data), step):
        send_frame_data(client, data[offset : offset + step], offset)
    crc = zlib.crc32(data)
    payload = client.request(
        MSG_FRAME, struct.pack("<I", crc), reply_bytes=reply_bytes(output_size)
    )
    reply = decode_app_reply(payload, output_size)
    if reply.crc != crc:
        raise TinysmileError("the app answered for another frame (CRC differs)")
    return reply


@dataclass(frozen=True)
class AppCapture:
    led: int
    smile: int
    crc: int  # of the frame the decision was made on (serial frame or camera frame)
    frames: int  # decisions since the board booted
    output: np.ndarray  # int8
    input: np.ndarray  # int8: the model input the decision was made on


def request_capture(client: Any, input_size: int, output_size: int) -> AppCapture:
    """CAPTURE: the app's last decision and the int8 input it was made on."""
    from tinysmile.device.protocol import MSG_CAPTURE

    want = _CAPTURE_HEAD.size + output_size + input_size
    payload = client.request(MSG_CAPTURE, reply_bytes=want)
    if len(payload) != want:
        raise TinysmileError(f"CAPTURE reply of {len(payload)} bytes, expected {want}")
    led, smile, crc, frames = _CAPTURE_HEAD.unpack_from(payload)
    body = np.frombuffer(payload[_CAPTURE_HEAD.size :], dtype=np.int8)
    return AppCapture(led, smile, crc, frames, body[:output_size].copy(), body[output_size:].copy())


def pixels_from_input(table: np.ndarray, x: np.ndarray) -> np.ndarray | None:
    """Gray pixels back from an int8 model input through the app's pixel table, when the
    table is one to one (each int8 value from exactly one gray level); else None."""
    table = np.asarray(table, dtype=np.int8)
    if len(np.unique(table)) != 256:
        return None
    inverse = np.zeros(256, dtype=np.uint8)
    inverse[table.astype(np.int16) + 128] = np.arange(256, dtype=np.uint8)
    hit = np.zeros(256, dtype=bool)
    hit[table.astype(np.int16) + 128] = True
    idx = np.asarray(x, dtype=np.int16) + 128
    if not hit[idx].all():
        return None
    return inverse[idx]


@dataclass(frozen=True)
class FinderGlue:
    """The finder's side of the glue: its compiled model's symbols and the tables decided
    from its bundle for one camera frame size."""

    bundle: Bundle
    report: dict[str, Any]  # its compile report
    prefix: str  # its generated C's symbol prefix


def finder_context(f: FinderGlue, frame: tuple[int, int]) -> dict[str, Any]:
    from tinysmile.finder.decode import finder_tables

    shape = [int(d) for d in f.report["input"]["shape"]]
    if len(shape) != 4 or shape[0] != 1 or shape[3] != 1:
        raise TinysmileError(f"{f.bundle.name}: a finder takes (1, H, W, 1) input, not {shape}")
    _, h, w, _ = shape
    t = finder_tables(f.bundle.meta, frame[0], frame[1])
    lut = pixel_table(
        f.bundle, float(f.report["input"]["scale"]), int(f.report["input"]["zero_point"])
    )
    return {
        "header": f"{f.prefix}_model.h",
        "info_symbol": f"{f.prefix}_info",
        "invoke_symbol": f"{f.prefix}_invoke",
        "name": f.bundle.name,
        "input_size": w * h,
        "output_size": int(np.prod(f.report["output"]["shape"])),
        "width": w,
        "height": h,
        "pixels": CArray("finder_pixels", np.asarray(lut, dtype=np.int8)),
        "offset_x": CArray("offset_x", np.asarray(t.offset_x, dtype=np.int32)),
        "offset_y": CArray("offset_y", np.asarray(t.offset_y, dtype=np.int32)),
        "side": CArray("side", np.asarray(t.side, dtype=np.int32)),
        "grid_w": t.grid_w,
        "grid_h": t.grid_h,
        "score_threshold": t.score_threshold,
        "cell_w_q4": t.cell_w_q4,
        "cell_h_q4": t.cell_h_q4,
    }


def glue_context(
    bundle: Bundle,
    report: dict[str, Any],
    frame: tuple[int, int] | None,
    model_header: str,
    info_symbol: str,
    invoke_symbol: str,
    setup: str = "0",
    finder: FinderGlue | None = None,
    board_id: str = "host",
    stack_size: int = 0,
    camera_note: str = "",
) -> dict[str, Any]:
    """What templates/app/tsm_app_glue.c.j2 needs, for a camera frame of `frame` (width,
    height; None: only model-size frames) with or without a finder."""
    if finder is not None and frame is None:
        raise TinysmileError(
            f"board {board_id} has no camera frame: a face finder needs one (--detector none)"
        )
    t = app_tables(bundle, report, frame)
    fctx = finder_context(finder, frame) if finder is not None and frame is not None else None
    return {
        "version": __version__,
        "model_name": report["model"],
        "board_id": board_id,
        "model_header": model_header,
        "board_name": c_string(board_id),
        "stack_size": stack_size,
        "info_symbol": info_symbol,
        "invoke_symbol": invoke_symbol,
        "setup": setup,
        "input_size": t.width * t.height * t.channels,
        "output_size": int(np.prod(report["output"]["shape"])),
        "pixels": CArray("pixels", np.array(t.pixel_to_input, dtype=np.int8)),
        # One byte when there is no camera: C has no empty arrays.
        "camera_buffer": max(1, t.camera_width * t.camera_height),
        "camera_note": camera_note
        or (f"{t.camera_width}x{t.camera_height}" if frame else "none (model-size frames only)"),
        "scratch_size": max(t.width * t.height, fctx["input_size"] if fctx else 0),
        "finder": fctx,
        "finder_pointer": "&tsm_app_finder" if fctx else "0",
        "finder_note": (
            f"{fctx['name']}, {fctx['width']}x{fctx['height']} input, threshold "
            f"{fctx['score_threshold']}"
            if fctx
            else "none: the frame's centre square"
        ),
        "width": t.width,
        "height": t.height,
        "channels": t.channels,
        "smile_index": t.smile_index,
        "smile_threshold": t.smile_threshold,
        "camera_width": t.camera_width,
        "camera_height": t.camera_height,
        "side_q16": t.side_q16,
        "shift_q16": t.shift_q16,
    }


def app_glue_context(
    bundle: Bundle,
    report: dict[str, Any],
    board: Board,
    model_header: str,
    info_symbol: str,
    invoke_symbol: str,
    setup: str = "0",
    finder: FinderGlue | None = None,
) -> dict[str, Any]:
    """The glue for a board: its camera frame, name and stack. setup: the runtime's setup
    function, "0" when it has none."""
    cam = board.camera
    note = ""
    if cam:
        source = f"{cam['driver']} capture" if cam.get("driver") else "no capture driver"
        note = f"{cam['width']}x{cam['height']}, {source}; FRAME_DATA over serial"
    return glue_context(
        bundle,
        report,
        camera_frame(board),
        model_header,
        info_symbol,
        invoke_symbol,
        setup,
        finder,
        board.id,
        int(board["stack_bytes"]),
        note,
    )


def render_app_glue(path: Any, *args: Any, **kwargs: Any) -> None:
    """src/tsm/tsm_app_glue.c from app_glue_context(*args, **kwargs)."""
    render_to(path, "app/tsm_app_glue.c.j2", **app_glue_context(*args, **kwargs))
