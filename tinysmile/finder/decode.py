"""The finder's int8 output -> a face box, in integers: the numpy twin of
firmware/vision/tsm_finder.c.

Every float in the decoding (dequantizing, the exponent of the size, the frame's scale) is
folded on the host into three 256-entry tables indexed by the int8 value, in frame pixels
x 16 (Q4); the board then only looks up, multiplies and adds integers, and this twin gives
the same box byte for byte (tests/test_vision.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tinysmile.errors import TinysmileError

Q4 = 16
# Clip of the size output v (log2 of side / size_base): a side of 1/16 to 64 size bases
# covers anything a trained finder says and keeps side * 16 far inside int32.
LOG2_SIDE_RANGE = (-4.0, 6.0)


@dataclass(frozen=True)
class FinderTables:
    """The C struct `tsm_finder_t`'s twin: the grid and the tables, for one frame size."""

    grid_w: int
    grid_h: int
    score_threshold: int  # int8: a face when the best cell's score >= this
    offset_x: np.ndarray  # int32 (256,): int8 value + 128 -> centre x in its cell, Q4 px
    offset_y: np.ndarray  # int32 (256,): likewise for y
    side: np.ndarray  # int32 (256,): int8 value + 128 -> the box side, Q4 frame px
    cell_w_q4: int  # cell pitch in Q4 frame pixels
    cell_h_q4: int


def _field(meta: dict[str, Any], section: str, name: str) -> Any:
    try:
        return meta[section][name]
    except (KeyError, TypeError):
        raise TinysmileError(f"finder bundle: bundle.json has no {section}.{name}") from None


def finder_tables(meta: dict[str, Any], frame_w: int, frame_h: int) -> FinderTables:
    """The decoding tables for a finder bundle (its bundle.json dict) whose input is an
    fw x fh frame area-resized to the finder's input size."""
    scale = float(_field(meta, "output", "scale"))
    zero_point = int(_field(meta, "output", "zero_point"))
    shape = list(_field(meta, "output", "shape"))
    if len(shape) != 4 or shape[0] != 1 or shape[3] != 4 or min(shape) < 1:
        raise TinysmileError(f"finder bundle: output shape {shape} is not [1, rows, cols, 4]")
    in_w = int(_field(meta, "preprocess", "width"))
    in_h = int(_field(meta, "preprocess", "height"))
    stride = float(_field(meta, "finder", "stride"))
    size_base = float(_field(meta, "finder", "size_base"))
    threshold = int(_field(meta, "finder", "score_threshold_int8"))
    # The network's outputs for the centre and the size are these multiples of the
    # fractions and log2 sides (so that they span the score's range and keep their
    # precision in the one int8 scale the output tensor has); absent: 1.
    offset_scale = float(meta["finder"].get("offset_scale", 1.0))
    size_scale = float(meta["finder"].get("size_scale", 1.0))
    if frame_w < 1 or frame_h < 1 or in_w < 1 or in_h < 1:
        raise TinysmileError(f"finder: bad frame {frame_w}x{frame_h} or input {in_w}x{in_h}")
    if not (scale > 0 and stride > 0 and size_base > 0 and offset_scale > 0 and size_scale > 0):
        raise TinysmileError(
            "finder bundle: output scale, stride, size_base, offset_scale and size_scale must "
            "be > 0"
        )
    sx = frame_w / in_w  # frame pixels per finder-input pixel
    sy = frame_h / in_h
    v = (np.arange(-128, 128, dtype=np.float64) - zero_point) * scale
    # Where the centre may lie from the winning cell, in cells: within it ([0, 1], the first
    # finders) or anywhere in its neighbourhood ([-1, 2]).
    lo, hi = (float(r) for r in meta["finder"].get("offset_range", (0.0, 1.0)))
    inside = np.clip(v / offset_scale, lo, hi)
    log2_side = np.clip(v / size_scale, *LOG2_SIDE_RANGE)

    def table(values: np.ndarray) -> np.ndarray:
        return np.rint(values).astype(np.int32)

    return FinderTables(
        grid_w=int(shape[2]),
        grid_h=int(shape[1]),
        score_threshold=threshold,
        offset_x=table(inside * stride * sx * Q4),
        offset_y=table(inside * stride * sy * Q4),
        # Square boxes, measured along x: the smile crop is square anyway.
        side=table(size_base * np.exp2(log2_side) * sx * Q4),
        cell_w_q4=round(stride * sx * Q4),
        cell_h_q4=round(stride * sy * Q4),
    )


def decode(tables: FinderTables, output: np.ndarray) -> tuple[int, int, int, int, int] | None:
    """The finder's int8 output ((1,) grid_h, grid_w, 4) -> (x, y, w, h, score) of the face
    in frame pixels, or None when the best cell's score is below the threshold. Equal to
    `tsm_finder_decode`."""
    out = np.asarray(output)
    cells = tables.grid_w * tables.grid_h
    if out.dtype != np.int8 or out.size != 4 * cells or cells == 0:
        raise TinysmileError(
            f"finder output: expected {4 * cells} int8 values ({tables.grid_h}x"
            f"{tables.grid_w}x4), got {out.size} {out.dtype}"
        )
    grid = out.reshape(cells, 4).astype(np.int64)
    best = int(np.argmax(grid[:, 0]))  # the first of equal maxima, as the C's strict >
    score = int(grid[best, 0])
    if score < tables.score_threshold:
        return None
    gy, gx = divmod(best, tables.grid_w)
    qx, qy, qs = (int(q) + 128 for q in grid[best, 1:])
    cx_q4 = gx * tables.cell_w_q4 + int(tables.offset_x[qx])
    cy_q4 = gy * tables.cell_h_q4 + int(tables.offset_y[qy])
    side_q4 = int(tables.side[qs])
    half_q4 = side_q4 // 2
    # +8 then floor: the nearest frame pixel, halves up; a border face's corner is negative.
    side = max(1, (side_q4 + Q4 // 2) // Q4)
    x = (cx_q4 - half_q4 + Q4 // 2) // Q4
    y = (cy_q4 - half_q4 + Q4 // 2) // Q4
    return x, y, side, side, score
