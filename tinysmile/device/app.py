"""The smiling-bot app mode: the numbers its firmware needs (decided here, from the bundle
and the board file) and the host side of its FRAME exchange.

The device maps a gray pixel to the model's int8 input through a 256-entry table built by
the bundle's own `to_int8`, so a frame sent over serial becomes exactly the input the host
computes; it decides smile when the smile output is >= the bundle's int8 threshold.
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
MSG_APP_EVENT = 0x71
_REPLY_HEAD = struct.Struct("<BBI")
_CAPTURE_HEAD = struct.Struct("<BBII")


@dataclass(frozen=True)
class AppTables:
    pixel_to_input: list[int]  # 256 int8 values
    width: int
    height: int
    channels: int
    smile_index: int
    smile_threshold: int
    camera_width: int  # 0: no camera
    camera_height: int
    camera_cols: list[int]
    camera_rows: list[int]


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


def centre_crop_maps(src_w: int, src_h: int, dst_w: int, dst_h: int) -> tuple[list[int], list[int]]:
    """Nearest-neighbour source column/row for each destination column/row, inside the
    centred square crop (the preprocessing's crop when no face detector runs)."""
    side = min(src_w, src_h)
    x0, y0 = (src_w - side) // 2, (src_h - side) // 2
    # Sample at pixel centres: (2i + 1) * side / (2 dst), in integers.
    cols = [x0 + (2 * i + 1) * side // (2 * dst_w) for i in range(dst_w)]
    rows = [y0 + (2 * i + 1) * side // (2 * dst_h) for i in range(dst_h)]
    return cols, rows


def app_tables(bundle: Bundle, report: dict[str, Any], board: Board) -> AppTables:
    shape = [int(d) for d in report["input"]["shape"]]
    if len(shape) != 4 or shape[0] != 1:
        raise TinysmileError(f"the app needs an image input (1, H, W, C), not {shape}")
    _, h, w, c = shape
    out_size = int(np.prod(report["output"]["shape"]))
    lut = pixel_table(bundle, float(report["input"]["scale"]), int(report["input"]["zero_point"]))
    cam = board.camera
    cw, ch = (int(cam["width"]), int(cam["height"])) if cam else (0, 0)
    cols, rows = centre_crop_maps(cw, ch, w, h) if cam else ([0] * w, [0] * h)
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
        camera_cols=cols,
        camera_rows=rows,
    )


@dataclass(frozen=True)
class AppReply:
    led: int
    smile: int
    crc: int
    output: np.ndarray  # int8


def decode_app_reply(payload: bytes, output_size: int) -> AppReply:
    if len(payload) != _REPLY_HEAD.size + output_size:
        raise TinysmileError(
            f"app reply of {len(payload)} bytes, expected {_REPLY_HEAD.size + output_size}"
        )
    led, smile, crc = _REPLY_HEAD.unpack_from(payload)
    out = np.frombuffer(payload[_REPLY_HEAD.size :], dtype=np.int8).copy()
    return AppReply(led, smile, crc, out)


def send_frame(client: Any, pixels: np.ndarray, output_size: int) -> AppReply:
    """One frame (uint8, the model's H x W) to a device running the app; its decision back.
    The echoed CRC proves the decision was made on these pixels."""
    data = np.ascontiguousarray(pixels, dtype=np.uint8).tobytes()
    reply = decode_app_reply(
        client.request(MSG_FRAME, data, reply_bytes=_REPLY_HEAD.size + output_size), output_size
    )
    if reply.crc != zlib.crc32(data):
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


def app_glue_context(
    bundle: Bundle,
    report: dict[str, Any],
    board: Board,
    model_header: str,
    info_symbol: str,
    invoke_symbol: str,
    setup: str = "0",
) -> dict[str, Any]:
    """What templates/app/tsm_app_glue.c.j2 needs: the app's model binding and every table
    it runs on. setup: the runtime's setup function, "0" when it has none."""
    t = app_tables(bundle, report, board)
    cam = board.camera
    return {
        "version": __version__,
        "model_name": report["model"],
        "board_id": board.id,
        "model_header": model_header,
        "board_name": c_string(board.id),
        "stack_size": int(board["stack_bytes"]),
        "info_symbol": info_symbol,
        "invoke_symbol": invoke_symbol,
        "setup": setup,
        "input_size": t.width * t.height * t.channels,
        "output_size": int(np.prod(report["output"]["shape"])),
        "pixels": CArray("pixels", np.array(t.pixel_to_input, dtype=np.int8)),
        # One byte when there is no camera: C has no empty arrays.
        "camera_buffer": max(1, t.camera_width * t.camera_height),
        "camera_note": (
            f"{cam['driver']}, {t.camera_width}x{t.camera_height}, centre square resampled"
            if cam
            else "none (frames arrive over serial)"
        ),
        "cols": CArray("cols", np.array(t.camera_cols, dtype=np.int32)),
        "rows": CArray("rows", np.array(t.camera_rows, dtype=np.int32)),
        "width": t.width,
        "height": t.height,
        "channels": t.channels,
        "smile_index": t.smile_index,
        "smile_threshold": t.smile_threshold,
        "camera_width": t.camera_width,
        "camera_height": t.camera_height,
    }


def render_app_glue(path: Any, *args: Any, **kwargs: Any) -> None:
    """src/tsm/tsm_app_glue.c from app_glue_context(*args, **kwargs)."""
    render_to(path, "app/tsm_app_glue.c.j2", **app_glue_context(*args, **kwargs))
