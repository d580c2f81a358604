/* The few SIMD operations the specialised kernels are written in. On a core with the DSP
 * extension (__ARM_FEATURE_DSP: Cortex-M4/M7/M33) each is one instruction; elsewhere
 * (Cortex-M0+, the host) a plain C function with the same result, so that one kernel
 * source serves every target and the host tests run the very arithmetic the board does. */
#ifndef TSM_DSP_H
#define TSM_DSP_H

#include <stdint.h>
#include <string.h>

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#include <arm_acle.h>
#define TSM_DSP 1
#else
#define TSM_DSP 0
#endif

/* The kernels' written-out loops (inline asm holding a dozen values in registers) need
 * gcc's register allocator at work: without optimization it keeps a frame pointer and
 * every value on the stack, and refuses those constraints or does not finish. There the
 * kernels use their C twins, which compute the same bytes. */
#if TSM_DSP && defined(__OPTIMIZE__)
#define TSM_ASM 1
#else
#define TSM_ASM 0
#endif

/* A 32-bit word from any address. Cortex-M3 and up load unaligned words in hardware and
 * gcc turns this memcpy into one LDR; elsewhere memcpy keeps it legal. */
static inline uint32_t tsm_read_u32(const void *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void tsm_write_u32(void *p, uint32_t v)
{
    memcpy(p, &v, sizeof v);
}

static inline void tsm_write_u16(void *p, uint16_t v)
{
    memcpy(p, &v, sizeof v);
}

/* Bytes 0 and 2 of x, sign-extended into the low and high halfwords (SXTB16). */
static inline uint32_t tsm_sxtb16(uint32_t x)
{
#if TSM_DSP
    return __sxtb16(x);
#else
    const uint32_t lo = (uint32_t)(int32_t)(int8_t)(x & 0xFFu) & 0xFFFFu;
    const uint32_t hi = (uint32_t)(int32_t)(int8_t)((x >> 16) & 0xFFu) & 0xFFFFu;
    return lo | (hi << 16);
#endif
}

/* Bytes 1 and 3 of x, sign-extended (SXTB16 with ROR #8; ACLE has no intrinsic for it). */
static inline uint32_t tsm_sxtb16_ror8(uint32_t x)
{
#if TSM_DSP
    uint32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
#else
    return tsm_sxtb16((x >> 8) | (x << 24));
#endif
}

/* acc + bytes 0 and 2 of x sign-extended, per halfword, wrapping (SXTAB16); and with x
 * rotated by 8, bytes 1 and 3. */
static inline uint32_t tsm_sxtab16(uint32_t acc, uint32_t x)
{
#if TSM_DSP
    return __sxtab16(acc, x);
#else
    const uint32_t e = tsm_sxtb16(x);
    return ((acc + e) & 0xFFFFu) | (((acc >> 16) + (e >> 16)) << 16);
#endif
}

static inline uint32_t tsm_sxtab16_ror8(uint32_t acc, uint32_t x)
{
#if TSM_DSP
    uint32_t r;
    __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(acc), "r"(x));
    return r;
#else
    return tsm_sxtab16(acc, (x >> 8) | (x << 24));
#endif
}

/* acc + lo(a) * lo(b) + hi(a) * hi(b) on signed halfwords (SMLAD). The sum wraps modulo
 * 2^32 like the instruction; callers only rely on the final sum, which fits in int32
 * whenever the reference kernel's int32 accumulator does. */
static inline int32_t tsm_smlad(uint32_t a, uint32_t b, int32_t acc)
{
#if TSM_DSP
    return __smlad(a, b, acc);
#else
    const int32_t lo = (int32_t)(int16_t)(a & 0xFFFFu) * (int32_t)(int16_t)(b & 0xFFFFu);
    const int32_t hi = (int32_t)(int16_t)(a >> 16) * (int32_t)(int16_t)(b >> 16);
    return (int32_t)((uint32_t)acc + (uint32_t)lo + (uint32_t)hi);
#endif
}

/* acc + lo(a) * lo(b) (SMLABB) and acc + hi(a) * hi(b) (SMLATT), signed halfwords. */
static inline int32_t tsm_smlabb(uint32_t a, uint32_t b, int32_t acc)
{
#if TSM_DSP
    return __smlabb(a, b, acc);
#else
    return (int32_t)((uint32_t)acc + (uint32_t)((int32_t)(int16_t)(a & 0xFFFFu) *
                                                (int32_t)(int16_t)(b & 0xFFFFu)));
#endif
}

static inline int32_t tsm_smlatt(uint32_t a, uint32_t b, int32_t acc)
{
#if TSM_DSP
    return __smlatt(a, b, acc);
#else
    return (int32_t)((uint32_t)acc +
                     (uint32_t)((int32_t)(int16_t)(a >> 16) * (int32_t)(int16_t)(b >> 16)));
#endif
}

/* The high word of a * b rounded: (a * b + 2^31) >> 32 on the signed 64-bit product
 * (SMMULR). */
static inline int32_t tsm_smmulr(int32_t a, int32_t b)
{
#if TSM_DSP
    int32_t r;
    __asm__("smmulr %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
    return r;
#else
    /* >> on a negative int64 is arithmetic on every compiler we target (gcc, clang) */
    return (int32_t)(((int64_t)a * (int64_t)b + 0x80000000LL) >> 32);
#endif
}

/* tsm_requantize_q31 (tsm_common.h) plus the output offset, for a right shift e = -shift
 * in 1..22 and |x| < 2^30, in five instructions on a DSP core; the compiler checks both
 * conditions and passes add = 2^(e-1) + offset * 2^e. (x * m + 2^30) >> 31 is SMMULR of
 * 2x (which cannot overflow below 2^30); then, as in tsm_requantize_q31, h' = h - [h < 0]
 * and the rounding is floor((h' + 2^(e-1)) / 2^e), into which offset * 2^e folds exactly.
 * |h'| < 2^30 and |add| < 2^30 for e <= 22, so the sum cannot overflow. */
static inline int32_t tsm_requantize_rs(int32_t x, int32_t multiplier, int32_t add, int32_t e)
{
    const int32_t h = tsm_smmulr((int32_t)((uint32_t)x << 1), multiplier);
    /* >> on a negative int32 is arithmetic on every compiler we target */
    return (h + (h >> 31) + add) >> e;
}

/* Bytewise signed maximum of four int8 lanes (SSUB8 sets the GE flags, SEL picks). */
static inline uint32_t tsm_max_s8x4(uint32_t a, uint32_t b)
{
#if TSM_DSP
    (void)__ssub8(a, b);
    return __sel(a, b);
#else
    uint32_t r = 0;
    int i;
    for (i = 0; i < 32; i += 8) {
        const int8_t x = (int8_t)((a >> i) & 0xFFu);
        const int8_t y = (int8_t)((b >> i) & 0xFFu);
        r |= (uint32_t)(uint8_t)(x > y ? x : y) << i;
    }
    return r;
#endif
}

/* Bytewise signed minimum of four int8 lanes (SSUB8, then SEL picks b where a >= b). */
static inline uint32_t tsm_min_s8x4(uint32_t a, uint32_t b)
{
#if TSM_DSP
    (void)__ssub8(a, b);
    return __sel(b, a);
#else
    return tsm_max_s8x4(a, b) ^ a ^ b;
#endif
}

/* x saturated to [-128, 127] (SSAT #8). */
static inline int32_t tsm_ssat8(int32_t x)
{
#if TSM_DSP
    return __ssat(x, 8);
#else
    return x < -128 ? -128 : (x > 127 ? 127 : x);
#endif
}

/* Two values in [-128, 127] as the low int8 lanes of a word, y0 lowest (one BFI); the
 * upper lanes hold no meaning. */
static inline uint32_t tsm_pack_s8x2(int32_t y0, int32_t y1)
{
#if TSM_DSP
    uint32_t r = (uint32_t)y0;
    __asm__("bfi %0, %1, #8, #8" : "+r"(r) : "r"(y1));
    return r;
#else
    return (uint32_t)(uint8_t)y0 | ((uint32_t)(uint8_t)y1 << 8);
#endif
}

/* Four values in [-128, 127] as the int8 lanes of a word, y0 lowest (three BFIs). */
static inline uint32_t tsm_pack_s8x4(int32_t y0, int32_t y1, int32_t y2, int32_t y3)
{
#if TSM_DSP
    uint32_t r = (uint32_t)y0;
    __asm__("bfi %0, %1, #8, #8\n\tbfi %0, %2, #16, #8\n\tbfi %0, %3, #24, #8"
            : "+r"(r)
            : "r"(y1), "r"(y2), "r"(y3));
    return r;
#else
    return (uint32_t)(uint8_t)y0 | ((uint32_t)(uint8_t)y1 << 8) | ((uint32_t)(uint8_t)y2 << 16) |
           ((uint32_t)(uint8_t)y3 << 24);
#endif
}

#endif
