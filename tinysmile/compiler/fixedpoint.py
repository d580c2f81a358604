"""gemmlowp-style fixed-point math: the Python twin of firmware/kernels/tsm_fixedpoint.h.

Values are raw int32 integers held in int64 numpy arrays (or Python ints); a "Qm" value
has m integer bits and 31 - m fractional bits. Every function rounds exactly as the
scalar gemmlowp code that TFLite's reference SOFTMAX uses, so results match to the bit.
Helpers that only build compile-time tables (exp of a scaled difference) work on plain
Python ints.
"""

from __future__ import annotations

import numpy as np

from tinysmile.compiler.quant import (
    INT32_MAX,
    INT32_MIN,
    rounding_divide_by_pot,
    saturating_rounding_doubling_high_mul,
)

# Q0 constants of gemmlowp's exp and reciprocal (their real values in the comments).
EXP_MINUS_ONE_EIGHTH = 1895147668  # exp(-1/8)
ONE_THIRD = 715827883  # 1/3
# exp(-2^k) for k = -2 .. 4, applied by the barrel shifter of exp_on_negative_values
EXP_BARREL = [1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242]
Q2_48_OVER_17 = 1515870810  # 48/17 in Q2
Q2_NEG_32_OVER_17 = -1010580540  # -32/17 in Q2


def srdhm(a: int, b: int) -> int:
    """Scalar SaturatingRoundingDoublingHighMul."""
    return int(saturating_rounding_doubling_high_mul(np.int64(a), np.int64(b)))


def rdbp(x: int, exponent: int) -> int:
    """Scalar RoundingDivideByPOT."""
    return int(rounding_divide_by_pot(np.int64(x), exponent))


def saturating_shift_left(x: np.ndarray | int, exponent: int) -> np.ndarray:
    """SaturatingRoundingMultiplyByPOT for a positive exponent: x * 2^e, saturated."""
    x = np.asarray(x, dtype=np.int64)
    threshold = (1 << (31 - exponent)) - 1
    out = x << exponent
    out = np.where(x > threshold, INT32_MAX, out)
    return np.where(x < -threshold, INT32_MIN, out)


def _exp_on_quarter_interval(a: int) -> int:
    """exp(a) for a in [-1/4, 0), a in Q0: Taylor expansion around -1/8."""
    x = a + (1 << 28)  # a + 1/8
    x2 = srdhm(x, x)
    x3 = srdhm(x2, x)
    x4 = srdhm(x2, x2)
    x4_over_4 = rdbp(x4, 2)
    poly = rdbp(srdhm(x4_over_4 + x3, ONE_THIRD) + x2, 1)
    return EXP_MINUS_ONE_EIGHTH + srdhm(EXP_MINUS_ONE_EIGHTH, x + poly)


def exp_on_negative_values(a: int, integer_bits: int) -> int:
    """exp(a) in Q0 for a <= 0 given in Q(integer_bits), as gemmlowp computes it."""
    fractional_bits = 31 - integer_bits
    one_quarter = 1 << (fractional_bits - 2)
    mask = one_quarter - 1
    a_mod_quarter_minus_one_quarter = (a & mask) - one_quarter
    result = _exp_on_quarter_interval(
        int(saturating_shift_left(a_mod_quarter_minus_one_quarter, integer_bits))
    )
    remainder = a_mod_quarter_minus_one_quarter - a
    for k, multiplier in zip(range(-2, 5), EXP_BARREL, strict=True):
        if integer_bits > k and remainder & (1 << (fractional_bits + k)):
            result = srdhm(result, multiplier)
    if integer_bits > 5 and a < -(1 << (36 - integer_bits)):
        result = 0  # below -32 everything underflows
    if a == 0:
        result = INT32_MAX
    return result


def rounding_half_sum(a: np.ndarray, b: np.ndarray | int) -> np.ndarray:
    """(a + b) / 2 rounded half away from zero (C division truncates toward zero)."""
    s = np.asarray(a, dtype=np.int64) + np.asarray(b, dtype=np.int64)
    sign = np.where(s >= 0, 1, -1)
    t = s + sign
    return np.where(t >= 0, t // 2, -((-t) // 2))


def one_over_one_plus_x_for_x_in_0_1(a: np.ndarray) -> np.ndarray:
    """1 / (1 + a) in Q0 for a in [0, 1) in Q0: three Newton-Raphson steps in Q2."""
    half_denominator = rounding_half_sum(a, INT32_MAX)
    x = Q2_48_OVER_17 + saturating_rounding_doubling_high_mul(half_denominator, Q2_NEG_32_OVER_17)
    one_q2 = 1 << 29
    for _ in range(3):
        half_denominator_times_x = saturating_rounding_doubling_high_mul(half_denominator, x)
        one_minus = one_q2 - half_denominator_times_x
        x = x + saturating_shift_left(saturating_rounding_doubling_high_mul(x, one_minus), 2)
    # x / 2 seen as Q1, rescaled to Q0
    return saturating_shift_left(x, 1)


def count_leading_zeros32(x: np.ndarray) -> np.ndarray:
    """Leading zero bits of x as a uint32 (x >= 0 here); 32 for zero."""
    x = np.asarray(x, dtype=np.int64)
    _, exp = np.frexp(x.astype(np.float64))  # exact: x < 2^53
    return np.where(x == 0, 32, 32 - exp).astype(np.int64)


def get_reciprocal(x: np.ndarray, x_integer_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """(1/x scaled into Q0, num_bits_over_unit) for positive x in Q(x_integer_bits)."""
    x = np.asarray(x, dtype=np.int64)
    headroom_plus_one = count_leading_zeros32(x)
    num_bits_over_unit = x_integer_bits - headroom_plus_one
    shifted = ((x << headroom_plus_one) & 0xFFFFFFFF) - (1 << 31)
    # shifted is in [0, 2^31): the normalised x minus one, as a Q0 fraction
    return one_over_one_plus_x_for_x_in_0_1(shifted), num_bits_over_unit
