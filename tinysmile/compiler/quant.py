"""Integer arithmetic shared by every op: the Python twins of firmware/kernels/tsm_common.h.

TFLite's reference kernels requantize with gemmlowp's two-step rounding: a saturating,
rounding doubling high multiply, then a rounding right shift (round half away from zero
in the first step, half up-or-away in the second). The functions below reproduce that
exactly on int64 numpy arrays; the C side is tsm_requantize().
"""

from __future__ import annotations

import math

import numpy as np

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1


def round_half_away(x: float) -> int:
    """C's round() / std::round: halves go away from zero."""
    return math.floor(abs(x) + 0.5) * (1 if x >= 0 else -1)


def quantize_multiplier(real: float) -> tuple[int, int]:
    """A real multiplier as (int32 multiplier in Q31, power-of-two shift), as TFLite does."""
    if real == 0.0:
        return 0, 0
    significand, shift = math.frexp(real)
    q = round_half_away(significand * (1 << 31))
    if q == 1 << 31:
        q //= 2
        shift += 1
    if shift < -31:
        # every bit would be shifted out: TFLite makes the multiplier zero
        return 0, 0
    return q, shift


def quantize_multiplier_array(reals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pairs = [quantize_multiplier(float(r)) for r in np.asarray(reals, dtype=np.float64).ravel()]
    mult = np.array([m for m, _ in pairs], dtype=np.int64)
    shift = np.array([s for _, s in pairs], dtype=np.int64)
    return mult, shift


def _c_div_pow2_31(x: np.ndarray) -> np.ndarray:
    # C integer division truncates toward zero; an arithmetic shift floors.
    return np.where(x >= 0, x >> 31, -((-x) >> 31))


def saturating_rounding_doubling_high_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    ab = a * b  # |a|,|b| <= 2^31, so the product fits in int64
    nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    out = _c_div_pow2_31(ab + nudge)
    overflow = (a == b) & (a == INT32_MIN)
    return np.where(overflow, INT32_MAX, out)


def rounding_divide_by_pot(x: np.ndarray, exponent: np.ndarray | int) -> np.ndarray:
    x = np.asarray(x, dtype=np.int64)
    e = np.asarray(exponent, dtype=np.int64)
    mask = (np.int64(1) << e) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> e) + (remainder > threshold)


def wrap_int32(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.int64)
    return ((x + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def requantize(x: np.ndarray, multiplier: np.ndarray | int, shift: np.ndarray | int) -> np.ndarray:
    """MultiplyByQuantizedMultiplier: x * multiplier * 2^shift with TFLite's rounding."""
    shift = np.asarray(shift, dtype=np.int64)
    left = np.where(shift > 0, shift, 0)
    right = np.where(shift > 0, 0, -shift)
    shifted = wrap_int32(np.asarray(x, dtype=np.int64) << left)
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(shifted, multiplier), right)


def requantize_single(
    x: np.ndarray, multiplier: np.ndarray | int, shift: np.ndarray | int
) -> np.ndarray:
    """x * multiplier * 2^shift rounded once, half up, in 64 bits.

    LiteRT's reference FULLY_CONNECTED for int8 takes this path (the int64-accumulator
    MultiplyByQuantizedMultiplier) rather than the two-step rounding of requantize():
    the two differ when the exact value lies just below a half.
    """
    total = 31 - np.asarray(shift, dtype=np.int64)
    prod = np.asarray(x, dtype=np.int64) * np.asarray(multiplier, dtype=np.int64)
    return (prod + (np.int64(1) << (total - 1))) >> total


def quantize_float(value: float, scale: float, zero_point: int) -> int:
    """zero_point + round(value / scale), the division in float32 as TFLite does it."""
    q = np.float32(value) / np.float32(scale)
    return zero_point + round_half_away(float(q))


def activation_range(activation: str, scale: float, zero_point: int) -> tuple[int, int]:
    """The int8 clamp a fused activation turns into (CalculateActivationRangeQuantized)."""
    qmin, qmax = -128, 127
    if activation in ("NONE", None):
        return qmin, qmax
    if activation == "RELU":
        return max(qmin, quantize_float(0.0, scale, zero_point)), qmax
    if activation == "RELU6":
        lo = max(qmin, quantize_float(0.0, scale, zero_point))
        return lo, min(qmax, quantize_float(6.0, scale, zero_point))
    if activation == "RELU_N1_TO_1":
        lo = max(qmin, quantize_float(-1.0, scale, zero_point))
        return lo, min(qmax, quantize_float(1.0, scale, zero_point))
    raise ValueError(activation)
