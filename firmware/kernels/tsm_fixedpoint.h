/* gemmlowp-style fixed-point helpers shared by kernels that need a reciprocal (SOFTMAX).
 * Python twin: tinysmile/compiler/fixedpoint.py. A "Qm" value is a raw int32 with m
 * integer bits and 31 - m fractional bits; every step rounds as TFLite's reference code. */
#ifndef TSM_FIXEDPOINT_H
#define TSM_FIXEDPOINT_H

#include <stdint.h>

#include "tsm_common.h"

/* x * 2^exponent (0 < exponent < 31), saturated to the int32 range instead of wrapping. */
static inline int32_t tsm_saturating_shift_left(int32_t x, int32_t exponent)
{
    const int32_t threshold = (int32_t)((1L << (31 - exponent)) - 1);
    if (x > threshold) {
        return INT32_MAX;
    }
    if (x < -threshold) {
        return INT32_MIN;
    }
    return (int32_t)((uint32_t)x << exponent);
}

/* (a + b) / 2 rounded half away from zero; the sum is formed in 64 bits so it cannot
 * overflow. */
static inline int32_t tsm_rounding_half_sum(int32_t a, int32_t b)
{
    const int64_t sum = (int64_t)a + (int64_t)b;
    return (int32_t)((sum + (sum >= 0 ? 1 : -1)) / 2);
}

/* 1 / (1 + a) in Q0 for a in [0, 1) in Q0: Newton-Raphson in Q2 from the 48/17 - 32/17 d
 * initial guess, three steps, as gemmlowp's one_over_one_plus_x_for_x_in_0_1. The Q2
 * intermediates stay within (0, 2], so the plain int32 additions cannot overflow. */
static inline int32_t tsm_one_over_one_plus_x(int32_t a)
{
    const int32_t half_denominator = tsm_rounding_half_sum(a, INT32_MAX);
    const int32_t one_q2 = (int32_t)1 << 29;
    int32_t x = 1515870810 /* 48/17 in Q2 */ +
                tsm_sat_rounding_doubling_high_mul(half_denominator, -1010580540 /* -32/17 */);
    int i;
    for (i = 0; i < 3; ++i) {
        const int32_t half_denominator_times_x =
            tsm_sat_rounding_doubling_high_mul(half_denominator, x);
        const int32_t one_minus = one_q2 - half_denominator_times_x;
        /* Q2 * Q2 is Q4; back to Q2 is a saturating shift by two */
        x += tsm_saturating_shift_left(tsm_sat_rounding_doubling_high_mul(x, one_minus), 2);
    }
    /* x / 2 read as Q1, rescaled to Q0 */
    return tsm_saturating_shift_left(x, 1);
}

static inline int32_t tsm_count_leading_zeros32(uint32_t x)
{
    int32_t n = 0;
    if (x == 0) {
        return 32;
    }
    while ((x & 0x80000000u) == 0) {
        x <<= 1;
        ++n;
    }
    return n;
}

/* 1/x for a positive x in Q(x_integer_bits): x is normalised to [1, 2) by its leading
 * zeros, the reciprocal of that comes back in Q0, and *num_bits_over_unit says how many
 * powers of two the caller must still divide by (TFLite's GetReciprocal). */
static inline int32_t tsm_get_reciprocal(int32_t x, int32_t x_integer_bits,
                                         int32_t *num_bits_over_unit)
{
    const int32_t headroom_plus_one = tsm_count_leading_zeros32((uint32_t)x);
    const uint32_t normalised = (uint32_t)x << headroom_plus_one;
    *num_bits_over_unit = x_integer_bits - headroom_plus_one;
    return tsm_one_over_one_plus_x((int32_t)(normalised - 0x80000000u));
}

#endif
