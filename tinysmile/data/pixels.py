"""Pixels are integers end to end: the numpy twin of firmware/vision/tsm_image.c.

The board, the host reference (through ctypes, `tinysmile.device.visionlib`), the Pi and the
training crops all resize and frame with these integer rules, so every platform decides on
the same bytes; tests/test_vision.py holds this twin and the C to equal results.
`rotated_square` (the aligned crop, `face_crop: blazeface-aligned`) serves the Pi and
training only: the board has no eye keypoints.
"""

from __future__ import annotations

import math

import numpy as np

from tinysmile.errors import TinysmileError

Q16 = 1 << 16
EXACT_FLOAT64 = 1 << 53  # every integer up to this is a float64
MAX_SUBSAMPLES = 8  # rotated_square: samples per output pixel along each axis, at most


def _overlap_weights(src_len: int, dst_len: int) -> np.ndarray:
    """int64 (dst_len, src_len): how much of output pixel i source pixel j covers.

    Measured in a common scale where a source pixel is dst_len long and an output pixel
    src_len long, so every overlap is an integer and each row sums to src_len.
    """
    i = np.arange(dst_len, dtype=np.int64)[:, None]
    j = np.arange(src_len, dtype=np.int64)[None, :]
    lo = np.maximum(i * src_len, j * dst_len)
    hi = np.minimum((i + 1) * src_len, (j + 1) * dst_len)
    return np.maximum(hi - lo, 0)


def resize_area(src: np.ndarray, dw: int, dh: int) -> np.ndarray:
    """uint8 (h, w) -> uint8 (dh, dw): each output pixel the overlap-weighted mean of the
    source area it covers, rounded half up. Shrinking and enlarging alike; equal to
    `tsm_image_resize_area` byte for byte."""
    a = np.asarray(src)
    if a.dtype != np.uint8 or a.ndim != 2:
        raise TinysmileError(f"resize_area takes uint8 (h, w) pixels, got {a.dtype} {a.shape}")
    sh, sw = a.shape
    if min(sh, sw) < 1 or dw < 1 or dh < 1:
        raise TinysmileError(f"resize_area: cannot resize {sw}x{sh} to {dw}x{dh}")
    wy = _overlap_weights(sh, dh)
    wx = _overlap_weights(sw, dw)
    area = sw * sh
    if 255 * area < EXACT_FLOAT64:
        # Every product and partial sum is a non-negative integer no larger than the
        # final 255 * area < 2^53, so float64 holds each exactly in any summation order
        # (FMA included) and BLAS gives the integer result ~40x faster than int64 matmul.
        f = wy.astype(np.float64) @ a.astype(np.float64) @ wx.T.astype(np.float64)
        total = f.astype(np.int64)
    else:
        total = wy @ a.astype(np.int64) @ wx.T
    return ((total + area // 2) // area).astype(np.uint8)


def framing_q16(crop_margin: float, crop_shift_y: float) -> tuple[int, int]:
    """(side_q16, shift_q16): a preprocess spec's framing as the fixed point the C takes.

    The host rounds these once (Python's round is fine: the board never computes them), so
    every platform then frames with the same integers.
    """
    return round((1.0 + 2.0 * crop_margin) * Q16), round(2.0 * crop_shift_y * Q16)


def frame_square(
    box: tuple[int, int, int, int], fw: int, fh: int, side_q16: int, shift_q16: int
) -> tuple[int, int, int]:
    """(x, y, side) of the square taken from an fw x fh frame around a face box (x, y, w, h):
    side max(w, h) * side_q16 / 2^16 (rounded half up, at least 1, at most the frame's
    shorter side), centred on the box, shift_q16 / 2^17 box heights lower, and slid (not
    shrunk) back inside the frame. Equal to `tsm_image_frame_square`."""
    x, y, w, h = (int(v) for v in box)
    side = (max(w, h) * side_q16 + Q16 // 2) // Q16
    side = max(1, min(side, fw, fh))
    # Twice the centre keeps the box's half-pixel centres in integers.
    cx2 = 2 * x + w
    cy2 = 2 * y + h + (h * shift_q16 + Q16 // 2) // Q16
    x0 = min(max((cx2 - side) // 2, 0), fw - side)
    y0 = min(max((cy2 - side) // 2, 0), fh - side)
    return x0, y0, side


def letterbox(
    gray: np.ndarray, width: int, height: int
) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """A grey image as a width x height frame: area-resized to the largest size with its
    aspect that fits, centred on black. Returns the frame and where the image lies in it,
    (x, y, w, h); an image of the frame's size is returned as it is."""
    a = np.asarray(gray)
    if a.dtype != np.uint8 or a.ndim != 2:
        raise TinysmileError(f"letterbox takes uint8 (h, w) pixels, got {a.dtype} {a.shape}")
    h, w = a.shape
    if (w, h) == (width, height):
        return a.copy(), (0, 0, w, h)
    # The largest nw x nh with the image's aspect (in integers: nw / nh ~ w / h).
    if w * height >= h * width:
        nw, nh = width, max(1, (h * width + w // 2) // w)
    else:
        nw, nh = max(1, (w * height + h // 2) // h), height
    frame = np.zeros((height, width), dtype=np.uint8)
    x0, y0 = (width - nw) // 2, (height - nh) // 2
    frame[y0 : y0 + nh, x0 : x0 + nw] = resize_area(a, nw, nh)
    return frame, (x0, y0, nw, nh)


def rotated_square(
    gray: np.ndarray,
    centre: tuple[float, float],
    side: float,
    angle: float,
    width: int,
    height: int,
) -> np.ndarray:
    """The square of `side` pixels centred at `centre` (x, y) and turned by `angle` radians
    (its x axis along (cos, sin)), sampled into width x height pixels: each output pixel the
    mean of k x k bilinear samples (k = ceil(side / width), as many as the square has pixels
    per output pixel, so shrinking averages like an area resize; at most MAX_SUBSAMPLES, so
    that a face filling a large photo costs no more than 64 samples an output pixel),
    samples outside the image taking its nearest edge pixel.

    In integers after rounding the four numbers once (Q8 positions, Q14 cosine and sine):
    every platform gives the same bytes, which OpenCV's warpAffine does not promise."""
    a = np.asarray(gray)
    if a.dtype != np.uint8 or a.ndim != 2 or a.size == 0:
        raise TinysmileError(f"rotated_square takes uint8 (h, w) pixels, got {a.dtype} {a.shape}")
    if width < 1 or height < 1 or not side > 0:
        raise TinysmileError(f"rotated_square: bad output {width}x{height} or side {side}")
    h, w = a.shape
    cx, cy = round(centre[0] * 256), round(centre[1] * 256)
    s = max(1, round(side * 256))
    c, sn = round(math.cos(angle) * 16384), round(math.sin(angle) * 16384)
    k = min(MAX_SUBSAMPLES, max(1, -(-round(side) // width)))
    # Sample offsets from the centre along the square's axes, in Q8: the centres of k x k
    # cells of each output pixel, (2j + 1) / (2 n k) of the side less half of it.
    ju = np.arange(width * k, dtype=np.int64)
    jv = np.arange(height * k, dtype=np.int64)
    du = ((2 * ju + 1) * s) // (2 * width * k) - s // 2
    dv = ((2 * jv + 1) * s) // (2 * height * k) - s // 2
    dx, dy = du[None, :], dv[:, None]
    # Rotate (Q8 x Q14 -> Q8, rounded half up) and move to the centre.
    sx = cx + ((c * dx - sn * dy + 8192) >> 14)
    sy = cy + ((sn * dx + c * dy + 8192) >> 14)
    # Bilinear at the sample point; the pixel centres are at +0.5.
    sx, sy = sx - 128, sy - 128
    x0, y0 = sx >> 8, sy >> 8
    fx, fy = sx & 255, sy & 255
    img = a.astype(np.int64)

    def at(yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
        return img[np.clip(yy, 0, h - 1), np.clip(xx, 0, w - 1)]

    top = at(y0, x0) * (256 - fx) + at(y0, x0 + 1) * fx
    bottom = at(y0 + 1, x0) * (256 - fx) + at(y0 + 1, x0 + 1) * fx
    samples = (top * (256 - fy) + bottom * fy + 32768) >> 16
    cells = samples.reshape(height, k, width, k).sum(axis=(1, 3))
    return ((cells + k * k // 2) // (k * k)).astype(np.uint8)
