/* Integer arithmetic shared by every kernel. Python twin: tinysmile/compiler/quant.py. */
#ifndef TSM_COMMON_H
#define TSM_COMMON_H

#include <stdint.h>

#define TSM_MIN(a, b) ((a) < (b) ? (a) : (b))
#define TSM_MAX(a, b) ((a) > (b) ? (a) : (b))

static inline int32_t tsm_clamp(int32_t x, int32_t lo, int32_t hi)
{
    return x < lo ? lo : (x > hi ? hi : x);
}

/* gemmlowp's SaturatingRoundingDoublingHighMul: (a * b * 2) >> 32 rounded half away from
 * zero; the only overflow, INT32_MIN * INT32_MIN, saturates. gemmlowp adds a nudge of 2^30
 * (1 - 2^30 for a negative product) and divides by 2^31 truncating toward zero. For a
 * negative product truncation is a ceiling, and ceil((ab + 1 - 2^30) / 2^31) equals
 * floor((ab + 2^30) / 2^31); for the others it is that floor too. So one add and one
 * arithmetic shift give the same bits as the division, in a few instructions (SMLAL). */
static inline int32_t tsm_sat_rounding_doubling_high_mul(int32_t a, int32_t b)
{
    if (a == b && a == INT32_MIN) {
        return INT32_MAX;
    }
    /* >> on a negative int64 is arithmetic on every compiler we target (gcc, clang). */
    return (int32_t)(((int64_t)a * (int64_t)b + (1LL << 30)) >> 31);
}

/* Division by 2^exponent rounding half away from zero (gemmlowp's RoundingDivideByPOT). */
static inline int32_t tsm_rounding_divide_by_pot(int32_t x, int32_t exponent)
{
    const int32_t mask = (int32_t)((1LL << exponent) - 1);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    /* >> on a negative int32 is arithmetic on every compiler we target (gcc, clang). */
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/* x * multiplier * 2^shift, with multiplier in Q31: TFLite's MultiplyByQuantizedMultiplier
 * with its two-step rounding. The left shift wraps like the reference does on overflow. */
static inline int32_t tsm_requantize(int32_t x, int32_t multiplier, int32_t shift)
{
    const int32_t left_shift = shift > 0 ? shift : 0;
    const int32_t right_shift = shift > 0 ? 0 : -shift;
    const int32_t shifted = (int32_t)((uint32_t)x << left_shift);
    return tsm_rounding_divide_by_pot(tsm_sat_rounding_doubling_high_mul(shifted, multiplier),
                                      right_shift);
}

/* tsm_requantize for the multipliers the compiler makes (0, or in [2^30, 2^31): never
 * INT32_MIN, so the saturating case cannot occur), in fewer instructions. Same bits: for
 * a right shift e >= 1 gemmlowp's rounding is floor((h + 2^(e-1) - [h < 0]) / 2^e) on
 * the high multiply h; with h' = h - [h < 0] that is floor((h' + 2^(e-1)) / 2^e), which
 * is h' >> e plus bit e - 1 of h' (no sum that could overflow). */
#if defined(__GNUC__)
#define TSM_LIKELY(x) __builtin_expect(!!(x), 1)
#else
#define TSM_LIKELY(x) (x)
#endif

/* gcc turns short copy loops back into memset/memcpy calls, which cost more than the few
 * bytes they move; this keeps a function's loops as written. */
#if defined(__GNUC__) && !defined(__clang__)
#define TSM_NO_LIBCALLS __attribute__((optimize("no-tree-loop-distribute-patterns")))
#else
#define TSM_NO_LIBCALLS
#endif

static inline int32_t tsm_requantize_q31(int32_t x, int32_t multiplier, int32_t shift)
{
    /* real multipliers below 1/2 (a right shift) are the rule for conv outputs */
    if (TSM_LIKELY(shift < 0)) {
        const int32_t e = -shift;
        /* >> on a negative int64/int32 is arithmetic on every compiler we target */
        const int32_t h = (int32_t)(((int64_t)x * (int64_t)multiplier + (1LL << 30)) >> 31);
        const int32_t h1 = h + (h >> 31);
        return (h1 >> e) + ((h1 >> (e - 1)) & 1);
    }
    /* no right shift: the high multiply of the left-shifted value (which wraps as the
     * reference's does) is the result */
    return (int32_t)(((int64_t)(int32_t)((uint32_t)x << shift) * (int64_t)multiplier +
                      (1LL << 30)) >>
                     31);
}

/* The same product rounded once, half up, in 64 bits: what LiteRT's reference
 * FULLY_CONNECTED does for int8 (its int64 MultiplyByQuantizedMultiplier). total_shift is
 * 31 - shift, within 1..62 for every multiplier the compiler accepts (-31 <= shift <= 30). */
static inline int32_t tsm_requantize_single(int32_t x, int32_t multiplier, int32_t shift)
{
    const int32_t total_shift = 31 - shift;
    const int64_t round = (int64_t)1 << (total_shift - 1);
    return (int32_t)(((int64_t)x * (int64_t)multiplier + round) >> total_shift);
}

#endif
