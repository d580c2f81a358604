#include "tsm_depthwise_conv2d.h"

#include "tsm_common.h"
#include "tsm_dsp.h"

#include <string.h>

/* Portable reference path: output channel oc = ic * depth_multiplier + m reads input
 * channel ic, as TFLite lays out depthwise filters. Out-of-bounds taps are skipped. */
void tsm_depthwise_conv2d(const tsm_depthwise_conv2d_params_t *p, const int8_t *input,
                          int8_t *output)
{
    int32_t b, oy, ox, ic, m, ky, kx;
    for (b = 0; b < p->batches; ++b) {
        const int8_t *in_b = input + b * p->input_h * p->input_w * p->input_c;
        for (oy = 0; oy < p->output_h; ++oy) {
            const int32_t in_y0 = oy * p->stride_h - p->pad_h;
            for (ox = 0; ox < p->output_w; ++ox) {
                const int32_t in_x0 = ox * p->stride_w - p->pad_w;
                for (ic = 0; ic < p->input_c; ++ic) {
                    for (m = 0; m < p->depth_multiplier; ++m) {
                        const int32_t oc = ic * p->depth_multiplier + m;
                        int32_t acc = 0;
                        for (ky = 0; ky < p->filter_h; ++ky) {
                            const int32_t in_y = in_y0 + ky * p->dilation_h;
                            if (in_y < 0 || in_y >= p->input_h) {
                                continue;
                            }
                            for (kx = 0; kx < p->filter_w; ++kx) {
                                const int32_t in_x = in_x0 + kx * p->dilation_w;
                                int32_t x;
                                int32_t w;
                                if (in_x < 0 || in_x >= p->input_w) {
                                    continue;
                                }
                                x = in_b[(in_y * p->input_w + in_x) * p->input_c + ic];
                                w = p->filter[(ky * p->filter_w + kx) * p->output_c + oc];
                                acc += (x + p->input_offset) * w;
                            }
                        }
                        if (p->bias) {
                            acc += p->bias[oc];
                        }
                        acc = tsm_requantize(acc, p->output_multiplier[oc], p->output_shift[oc]);
                        acc += p->output_offset;
                        output[((b * p->output_h + oy) * p->output_w + ox) * p->output_c + oc] =
                            (int8_t)tsm_clamp(acc, p->activation_min, p->activation_max);
                    }
                }
            }
        }
    }
}

/* Requantize (q: see channel_params), offset, clamp. */
static inline int8_t tsm_dw_out(int32_t acc, const int32_t *q, int32_t offset, int32_t lo,
                                int32_t hi)
{
    acc = q[3] ? tsm_requantize_rs(acc, q[1], q[2], q[3])
               : tsm_requantize_q31(acc, q[1], q[2]) + offset;
    acc = TSM_MAX(acc, lo);
    return (int8_t)TSM_MIN(acc, hi);
}

/* One tap of 4 channels: SXTB16 splits the input word into channels (0, 2) and (1, 3),
 * which meet the filter's int16 pairs (w0, w2) and (w1, w3) in SMLABB / SMLATT. No
 * repacking, one multiply per instruction, and few registers live. */
#define TSM_DW_TAP(src, wp)                                                                     \
    do {                                                                                        \
        const uint32_t x_ = tsm_read_u32(src);                                                 \
        const uint32_t x02_ = tsm_sxtb16(x_), x13_ = tsm_sxtb16_ror8(x_);                      \
        const uint32_t w02_ = (wp)[0], w13_ = (wp)[1];                                         \
        a0 = tsm_smlabb(x02_, w02_, a0);                                                       \
        a2 = tsm_smlatt(x02_, w02_, a2);                                                       \
        a1 = tsm_smlabb(x13_, w13_, a1);                                                       \
        a3 = tsm_smlatt(x13_, w13_, a3);                                                       \
    } while (0)

#if TSM_ASM
/* One tap of 4 channels in asm (TSM_DW_TAP's instructions): the input word at addr split
 * by SXTB16 into channels (0, 2) and (1, 3), against the next two filter words. */
#define TSM_DW_TAP_ASM(addr)                                                                    \
    "ldr %[x], " addr "\n\t"                                                                    \
    "ldrd %[w02], %[w13], [%[w]], #8\n\t"                                                       \
    "sxtb16 %[x02], %[x]\n\t"                                                                   \
    "sxtb16 %[x], %[x], ror #8\n\t"                                                             \
    "smlabb %[a0], %[x02], %[w02], %[a0]\n\t"                                                   \
    "smlatt %[a2], %[x02], %[w02], %[a2]\n\t"                                                   \
    "smlabb %[a1], %[x], %[w13], %[a1]\n\t"                                                     \
    "smlatt %[a3], %[x], %[w13], %[a3]\n\t"
/* The 3 taps of a window row at %[s] (the others ch bytes on). */
#define TSM_DW_ROW_ASM TSM_DW_TAP_ASM("[%[s]]") TSM_DW_TAP_ASM("[%[s], %[ch]]")                  \
    TSM_DW_TAP_ASM("[%[s], %[ch], lsl #1]")
#endif

/* The 9 taps of 4 channels into a0..a3; *w moves past the group's 18 words. r0 points at
 * the window's first row and first tap column, the other rows row bytes apart, the other
 * columns ch bytes apart. */
static inline __attribute__((always_inline)) void
tsm_dw3x3_taps(const int8_t *r0, int32_t row, int32_t ch, const uint32_t **wp, int32_t *a)
{
    int32_t a0 = a[0], a1 = a[1], a2 = a[2], a3 = a[3];
    const uint32_t *w = *wp;
#if TSM_ASM
    /* written out: gcc hoists the loads of C taps and spills the accumulators; here 8
     * instructions per tap of 4 channels (LDR, LDRD, 2 SXTB16, 4 SMLAxx) in 12 registers,
     * the rows reached by stepping a copy of r0. The memory clobber keeps the previous
     * group's output stores (in place, they may share bytes with the input) ahead of
     * these reads. */
    const int8_t *s = r0;
    uint32_t x, x02, w02, w13;
    __asm__(TSM_DW_ROW_ASM "add %[s], %[s], %[row]\n\t" TSM_DW_ROW_ASM
                           "add %[s], %[s], %[row]\n\t" TSM_DW_ROW_ASM
            : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [w] "+r"(w),
              [x] "=&r"(x), [x02] "=&r"(x02), [w02] "=&r"(w02), [w13] "=&r"(w13), [s] "+r"(s)
            : [row] "r"(row), [ch] "r"(ch)
            : "memory");
#else
    TSM_DW_TAP(r0, w);
    TSM_DW_TAP(r0 + ch, w + 2);
    TSM_DW_TAP(r0 + 2 * ch, w + 4);
    TSM_DW_TAP(r0 + row, w + 6);
    TSM_DW_TAP(r0 + row + ch, w + 8);
    TSM_DW_TAP(r0 + row + 2 * ch, w + 10);
    TSM_DW_TAP(r0 + 2 * row, w + 12);
    TSM_DW_TAP(r0 + 2 * row + ch, w + 14);
    TSM_DW_TAP(r0 + 2 * row + 2 * ch, w + 16);
    w += 18;
#endif
    *wp = w;
    a[0] = a0;
    a[1] = a1;
    a[2] = a2;
    a[3] = a3;
}

#if TSM_ASM
/* Every group of 4 channels of one interior-shaped pixel (rows `row` bytes apart from s0),
 * where every group takes tsm_requantize_rs: the taps (as tsm_dw3x3_taps) and the
 * epilogue (as tsm_dw3x3_pixel's) written out in one loop, so that no live value is
 * spilled between them. The window's rows are reached by stepping s back and forth by
 * `row` (one register instead of two more); the layer's constants are read from the
 * stack. */
static inline __attribute__((always_inline)) void
tsm_dw3x3_groups_rs(const int8_t *s0, int32_t row, int32_t ch, const uint32_t *w,
                    const int32_t *q, int8_t *out, int32_t c4, uint32_t lo4, uint32_t hi4)
{
    struct {
        const int8_t *end;
        uint32_t lo4, hi4;
    } k = {s0 + c4, lo4, hi4};
    const int8_t *s = s0;
    int8_t *o = out;
    int32_t a0, a1, a2, a3;
    uint32_t x, x02, w02, w13;
/* Four requantized channels (a0..a3) saturated to int8, packed into one word, clamped to the
 * activation range bytewise (max with lo4, min with hi4: SSUB8 sets the GE flags SEL reads)
 * and stored at o, which steps a word: the epilogue the 3x3 and kxk written-out loops share. */
#define TSM_DW_STORE4_ASM                                                                       \
    "ssat %[a0], #8, %[a0]\n\t"                                                                 \
    "ssat %[a1], #8, %[a1]\n\t"                                                                 \
    "ssat %[a2], #8, %[a2]\n\t"                                                                 \
    "ssat %[a3], #8, %[a3]\n\t"                                                                 \
    "bfi %[a0], %[a1], #8, #8\n\t"                                                              \
    "bfi %[a0], %[a2], #16, #8\n\t"                                                             \
    "bfi %[a0], %[a3], #24, #8\n\t"                                                             \
    "ldr %[x], %[klo]\n\t"                                                                      \
    "ssub8 %[x02], %[a0], %[x]\n\t"                                                             \
    "sel %[a0], %[a0], %[x]\n\t"                                                                \
    "ldr %[x], %[khi]\n\t"                                                                      \
    "ssub8 %[x02], %[a0], %[x]\n\t"                                                             \
    "sel %[a0], %[x], %[a0]\n\t"                                                                \
    "str %[a0], [%[o]], #4\n\t"

/* channel n's [multiplier, add, e] (q[4n + 1..3]) into acc: tsm_requantize_rs */
#define TSM_DW_RS_ASM(acc, n)                                                                   \
    "ldrd %[x02], %[w02], [%[q], #" #n "*16+4]\n\t"                                              \
    "ldr %[w13], [%[q], #" #n "*16+12]\n\t"                                                      \
    "lsl %[" acc "], %[" acc "], #1\n\t"                                                        \
    "smmulr %[" acc "], %[" acc "], %[x02]\n\t"                                                 \
    "add %[" acc "], %[" acc "], %[" acc "], asr #31\n\t"                                        \
    "add %[" acc "], %[" acc "], %[w02]\n\t"                                                    \
    "asr %[" acc "], %[" acc "], %[w13]\n\t"
    __asm__ volatile("1:\n\t"
                     "ldr %[a0], [%[q]]\n\t" /* the folded biases */
                     "ldr %[a1], [%[q], #16]\n\t"
                     "ldr %[a2], [%[q], #32]\n\t"
                     "ldr %[a3], [%[q], #48]\n\t" TSM_DW_ROW_ASM "add %[s], %[s], %[row]\n\t"
                     TSM_DW_ROW_ASM "add %[s], %[s], %[row]\n\t" TSM_DW_ROW_ASM
                     "sub %[s], %[s], %[row], lsl #1\n\t"
                     "add %[s], %[s], #4\n\t" TSM_DW_RS_ASM("a0", 0) TSM_DW_RS_ASM("a1", 1)
                         TSM_DW_RS_ASM("a2", 2) TSM_DW_RS_ASM("a3", 3)
                     "add %[q], %[q], #64\n\t"
                     TSM_DW_STORE4_ASM
                     "ldr %[x], %[kend]\n\t"
                     "cmp %[s], %[x]\n\t"
                     "blo 1b"
                     : [a0] "=&r"(a0), [a1] "=&r"(a1), [a2] "=&r"(a2), [a3] "=&r"(a3),
                       [x] "=&r"(x), [x02] "=&r"(x02), [w02] "=&r"(w02), [w13] "=&r"(w13),
                       [s] "+r"(s), [w] "+r"(w), [q] "+r"(q), [o] "+r"(o)
                     : [row] "r"(row), [ch] "r"(ch), [kend] "m"(k.end), [klo] "m"(k.lo4),
                       [khi] "m"(k.hi4)
                     : "cc", "memory");
#undef TSM_DW_RS_ASM
}
#endif

/* One pixel's channels from c (a multiple of 4) on: s0, s1, s2 point at channel 0 of the
 * window's three rows (tap columns ch bytes apart). A group of 4 outputs is saturated to
 * int8, packed into a word and clamped to the activation bytewise (lo4, hi4: the bounds
 * in every lane): one store. */
__attribute__((noinline)) static void
tsm_dw3x3_pixel_from(const tsm_depthwise_conv2d_3x3_params_t *p, const int8_t *s0,
                     const int8_t *s1, const int8_t *s2, int32_t ch, uint32_t lo4, uint32_t hi4,
                     int8_t *out, int32_t c)
{
    const int32_t c4 = ch & ~3;
    const uint32_t *w = p->filter_words + (c >> 2) * 18;
    const int32_t *q = p->channel_params + 4 * c;
    int32_t t;
    for (; c < c4; c += 4, q += 16) {
        int32_t a[4];
        uint32_t y;
        a[0] = q[0];
        a[1] = q[4];
        a[2] = q[8];
        a[3] = q[12];
        tsm_dw3x3_taps(s0 + c, (int32_t)(s1 - s0), ch, &w, a);
        if (!TSM_LIKELY(q[3] != 0)) {
            const int32_t offset = p->output_offset;
            const int32_t lo = p->activation_min, hi = p->activation_max;
            out[c] = tsm_dw_out(a[0], q, offset, lo, hi);
            out[c + 1] = tsm_dw_out(a[1], q + 4, offset, lo, hi);
            out[c + 2] = tsm_dw_out(a[2], q + 8, offset, lo, hi);
            out[c + 3] = tsm_dw_out(a[3], q + 12, offset, lo, hi);
            continue;
        }
        y = tsm_pack_s8x4(tsm_ssat8(tsm_requantize_rs(a[0], q[1], q[2], q[3])),
                          tsm_ssat8(tsm_requantize_rs(a[1], q[5], q[6], q[7])),
                          tsm_ssat8(tsm_requantize_rs(a[2], q[9], q[10], q[11])),
                          tsm_ssat8(tsm_requantize_rs(a[3], q[13], q[14], q[15])));
        tsm_write_u32(out + c, tsm_min_s8x4(tsm_max_s8x4(y, lo4), hi4));
    }
    for (; c < ch; ++c, q += 4) {
        const int8_t *f = p->filter + c * 9;
        int32_t acc = q[0];
        for (t = 0; t < 3; ++t) {
            acc += s0[c + t * ch] * f[t] + s1[c + t * ch] * f[3 + t] + s2[c + t * ch] * f[6 + t];
        }
        out[c] = tsm_dw_out(acc, q, p->output_offset, p->activation_min, p->activation_max);
    }
}

/* One pixel: on a DSP core, where every group takes the short requantization, its groups
 * in the written-out loop (inlined into each caller), and the channels past the last
 * group of 4 (or every group, otherwise) in tsm_dw3x3_pixel_from, kept out of line so that
 * the code stays small. */
static inline __attribute__((always_inline)) void
tsm_dw3x3_pixel(const tsm_depthwise_conv2d_3x3_params_t *p, const int8_t *s0, const int8_t *s1,
                const int8_t *s2, int32_t ch, uint32_t lo4, uint32_t hi4, int8_t *out,
                int rs_all)
{
    int32_t c = 0;
#if TSM_ASM
    const int32_t c4 = ch & ~3;
    if (rs_all && c4) {
        tsm_dw3x3_groups_rs(s0, (int32_t)(s1 - s0), ch, p->filter_words, p->channel_params, out,
                            c4, lo4, hi4);
        c = c4;
    }
#else
    (void)rs_all;
#endif
    if (c < ch) {
        tsm_dw3x3_pixel_from(p, s0, s1, s2, ch, lo4, hi4, out, c);
    }
}

/* n bytes (a multiple of 4) of src to dst, or of the pad word: a word at a time, no
 * library call (the windows are a few dozen bytes). On a DSP core, with both ends word
 * aligned (the planner aligns every tensor, and the channels are a multiple of 4 here),
 * four words a turn by LDM/STM first. */
static inline void tsm_dw_copy4(int8_t *dst, const int8_t *src, int32_t n)
{
    int32_t i = 0;
#if TSM_ASM
    if (n >= 16 && ((uint32_t)(uintptr_t)dst & 3u) == 0 && ((uint32_t)(uintptr_t)src & 3u) == 0) {
        const int8_t *s = src;
        int8_t *d = dst;
        int32_t k = n >> 4;
        __asm__ volatile("1:\n\t"
                         "ldmia %[s]!, {r4, r5, r6, r8}\n\t"
                         "stmia %[d]!, {r4, r5, r6, r8}\n\t"
                         "subs %[k], %[k], #1\n\t"
                         "bne 1b"
                         : [s] "+r"(s), [d] "+r"(d), [k] "+r"(k)
                         :
                         : "r4", "r5", "r6", "r8", "cc", "memory");
        i = n & ~15;
    }
#endif
    for (; i < n; i += 4) {
        tsm_write_u32(dst + i, tsm_read_u32(src + i));
    }
}

static inline void tsm_dw_set4(int8_t *dst, uint32_t pad4, int32_t n)
{
    int32_t i = 0;
#if TSM_ASM
    if (n >= 16 && ((uint32_t)(uintptr_t)dst & 3u) == 0) {
        int8_t *d = dst;
        int32_t k = n >> 4;
        __asm__ volatile("mov r4, %[v]\n\t"
                         "mov r5, %[v]\n\t"
                         "mov r6, %[v]\n\t"
                         "mov r8, %[v]\n\t"
                         "1:\n\t"
                         "stmia %[d]!, {r4, r5, r6, r8}\n\t"
                         "subs %[k], %[k], #1\n\t"
                         "bne 1b"
                         : [d] "+r"(d), [k] "+r"(k)
                         : [v] "r"(pad4)
                         : "r4", "r5", "r6", "r8", "cc", "memory");
        i = n & ~15;
    }
#endif
    for (; i < n; i += 4) {
        tsm_write_u32(dst + i, pad4);
    }
}

/* n bytes, any n: the words of tsm_dw_copy4 / tsm_dw_set4 (unaligned ones are single
 * loads and stores on Cortex-M3 and up), then the 1-3 bytes past them. */
static inline void tsm_dw_copy(int8_t *dst, const int8_t *src, int32_t n)
{
    const int32_t n4 = n & ~3;
    int32_t i;
    tsm_dw_copy4(dst, src, n4);
    for (i = n4; i < n; ++i) {
        dst[i] = src[i];
    }
}

static inline void tsm_dw_set(int8_t *dst, uint32_t pad4, int32_t n)
{
    const int32_t n4 = n & ~3;
    int32_t i;
    tsm_dw_set4(dst, pad4, n4);
    for (i = n4; i < n; ++i) {
        dst[i] = (int8_t)pad4;
    }
}

/* A window crossing the border, copied into `window` (rows of 3 * channels bytes) with
 * the input zero point outside the input: the folded bias cancels those taps exactly, as
 * the reference skips them, and the interior code does the rest. A row inside the input
 * is one run of its inside taps between pad runs. */
static void tsm_dw3x3_border(const tsm_depthwise_conv2d_3x3_params_t *p, const int8_t *in_b,
                             int32_t iy0, int32_t ix0, int8_t *window, uint32_t lo4,
                             uint32_t hi4, int8_t *out, int rs_all)
{
    const int32_t ch = p->channels;
    const int32_t kx0 = TSM_MAX(0, -ix0);
    const int32_t kx1 = TSM_MIN(3, p->input_w - ix0);
    const uint32_t pad4 = (uint32_t)(uint8_t)(int8_t)(-p->input_offset) * 0x01010101u;
    int32_t ky, i;
    for (ky = 0; ky < 3; ++ky) {
        const int32_t iy = iy0 + ky;
        int8_t *dst = window + ky * 3 * ch;
        const int inside = iy >= 0 && iy < p->input_h && kx1 > kx0;
        if ((ch & 3) == 0) {
            if (!inside) {
                tsm_dw_set4(dst, pad4, 3 * ch);
                continue;
            }
            tsm_dw_set4(dst, pad4, kx0 * ch);
            tsm_dw_copy4(dst + kx0 * ch, in_b + (iy * p->input_w + ix0 + kx0) * ch,
                         (kx1 - kx0) * ch);
            tsm_dw_set4(dst + kx1 * ch, pad4, (3 - kx1) * ch);
            continue;
        }
        for (i = 0; i < 3 * ch; ++i) {
            const int32_t kx = i / ch;
            dst[i] = inside && kx >= kx0 && kx < kx1
                         ? in_b[(iy * p->input_w + ix0) * ch + i]
                         : (int8_t)(-p->input_offset);
        }
    }
    tsm_dw3x3_pixel(p, window, window + 3 * ch, window + 6 * ch, ch, lo4, hi4, out, rs_all);
}

/* Pixels in raster order, all channels of a pixel after its reads of them: the order the
 * planner's in-place proof assumes. A row's interior pixels (whole window inside) run in
 * one loop without checks, its border pixels take the copied window. */
void tsm_depthwise_conv2d_3x3(const tsm_depthwise_conv2d_3x3_params_t *p, const int8_t *input,
                              int8_t *output, int8_t *scratch)
{
    const int32_t ch = p->channels;
    const int32_t row = p->input_w * ch;
    const int32_t sw = p->stride_w;
    const int32_t step = sw * ch;
    const uint32_t lo4 = (uint32_t)(uint8_t)(int8_t)p->activation_min * 0x01010101u;
    const uint32_t hi4 = (uint32_t)(uint8_t)(int8_t)p->activation_max * 0x01010101u;
    /* interior columns: ox * sw - pad_w >= 0 and ox * sw - pad_w + 3 <= input_w */
    const int32_t last = p->input_w - 3 + p->pad_w; /* ox * sw <= last */
    const int32_t ox_lo = TSM_MIN((p->pad_w + sw - 1) / sw, p->output_w);
    const int32_t ox_hi = last < 0 ? ox_lo : TSM_MAX(ox_lo, TSM_MIN(p->output_w, last / sw + 1));
    /* whether every group of 4 channels takes tsm_requantize_rs (e != 0) */
    int rs_all = 1;
    int32_t b, oy, ox, c;
    for (c = 0; c < (ch & ~3); c += 4) {
        rs_all &= p->channel_params[4 * c + 3] != 0;
    }
    for (b = 0; b < p->batches; ++b) {
        const int8_t *in_b = input + b * p->input_h * row;
        for (oy = 0; oy < p->output_h; ++oy) {
            const int32_t iy0 = oy * p->stride_h - p->pad_h;
            if (iy0 < 0 || iy0 + 3 > p->input_h) {
                for (ox = 0; ox < p->output_w; ++ox, output += ch) {
                    tsm_dw3x3_border(p, in_b, iy0, ox * sw - p->pad_w, scratch, lo4, hi4, output,
                                     rs_all);
                }
                continue;
            }
            for (ox = 0; ox < ox_lo; ++ox, output += ch) {
                tsm_dw3x3_border(p, in_b, iy0, ox * sw - p->pad_w, scratch, lo4, hi4, output,
                                 rs_all);
            }
            {
                const int8_t *s0 = in_b + iy0 * row + (ox_lo * sw - p->pad_w) * ch;
                for (; ox < ox_hi; ++ox, output += ch, s0 += step) {
                    tsm_dw3x3_pixel(p, s0, s0 + row, s0 + 2 * row, ch, lo4, hi4, output,
                                    rs_all);
                }
            }
            for (; ox < p->output_w; ++ox, output += ch) {
                tsm_dw3x3_border(p, in_b, iy0, ox * sw - p->pad_w, scratch, lo4, hi4, output,
                                 rs_all);
            }
        }
    }
}

/* ---- kxk variant ------------------------------------------------------------------------ */

/* A pixel's window as runs of taps: `runs` runs of `len` taps `step` bytes apart, each
 * run's end `skip` bytes before the next one's start (an Nx1 filter is one run down the
 * rows, any other a run per row), for window rows row_step bytes apart and the taps of a
 * row tap_step bytes apart (the dilation's multiples of the input's, or a copied
 * window's). */
typedef struct {
    int32_t len, runs, step, skip;
} tsm_dwk_runs_t;

static inline tsm_dwk_runs_t tsm_dwk_runs(const tsm_depthwise_conv2d_kxk_params_t *p,
                                          int32_t row_step, int32_t tap_step)
{
    tsm_dwk_runs_t r;
    const int column = p->filter_w == 1;
    r.len = column ? p->filter_h : p->filter_w;
    r.runs = column ? 1 : p->filter_h;
    r.step = column ? row_step : tap_step;
    r.skip = column ? 0 : row_step - p->filter_w * tap_step;
    return r;
}

#if TSM_ASM
/* Every group of 4 channels of one pixel, where every group takes tsm_requantize_rs: the
 * taps (8 instructions per tap of 4 channels, TSM_DW_TAP_ASM, two taps a turn, an odd
 * run's first tap alone) and the epilogue written out in one loop, so that no live value
 * is spilled between them. A run ends when w has passed its taps' words, the window when
 * w reaches the group's end; the geometry, the bounds and the group's end are read from
 * (and written to) the stack, so that 14 registers do. A group's channel_params are
 * [bias0..3, then multiplier, add, e per channel]. The memory clobber keeps the previous
 * group's output stores (in place, they may share bytes with the input) ahead of the
 * reads. */
static inline __attribute__((always_inline)) void
tsm_dwk_groups_rs(const int8_t *s, tsm_dwk_runs_t r, const uint32_t *w, const int32_t *q,
                  int8_t *out, int32_t c4, uint32_t lo4, uint32_t hi4)
{
    struct {
        int32_t run_bytes, skip, window_bytes, back;
        const int8_t *end;
        uint32_t lo4, hi4;
        const uint32_t *window_end;
    } k = {r.len * 8, r.skip, r.len * r.runs * 8, r.runs * (r.len * r.step + r.skip) - 4,
           out + c4, lo4, hi4, w};
    int8_t *o = out;
    const int32_t step = r.step;
    int32_t a0, a1, a2, a3;
    uint32_t x, x02, w02, w13, e;
/* channel n's multiplier, add and e (the next 3 words at q) into acc: tsm_requantize_rs */
#define TSM_DWK_RS_ASM(acc)                                                                     \
    "ldrd %[x02], %[w02], [%[q]], #8\n\t"                                                       \
    "ldr %[w13], [%[q]], #4\n\t"                                                                \
    "lsl %[" acc "], %[" acc "], #1\n\t"                                                        \
    "smmulr %[" acc "], %[" acc "], %[x02]\n\t"                                                 \
    "add %[" acc "], %[" acc "], %[" acc "], asr #31\n\t"                                        \
    "add %[" acc "], %[" acc "], %[w02]\n\t"                                                    \
    "asr %[" acc "], %[" acc "], %[w13]\n\t"
    __asm__ volatile("1:\n\t"
                     "ldrd %[a0], %[a1], [%[q]], #8\n\t" /* the folded biases */
                     "ldrd %[a2], %[a3], [%[q]], #8\n\t"
                     "ldr %[x], %[kwin]\n\t"
                     "add %[x], %[w], %[x]\n\t"
                     "str %[x], %[kwend]\n\t"
                     "2:\n\t" /* a run */
                     "ldr %[e], %[krun]\n\t"
                     "tst %[e], #8\n\t"
                     "add %[e], %[w], %[e]\n\t" /* the run's end in w (ADD sets no flags) */
                     "beq 3f\n\t" TSM_DW_TAP_ASM("[%[s]]") "add %[s], %[s], %[step]\n\t"
                     "3:\n\t"
                     "cmp %[w], %[e]\n\t"
                     "beq 5f\n\t"
                     "4:\n\t" TSM_DW_TAP_ASM("[%[s]]") TSM_DW_TAP_ASM("[%[s], %[step]]")
                     "add %[s], %[s], %[step], lsl #1\n\t"
                     "cmp %[w], %[e]\n\t"
                     "bne 4b\n\t"
                     "5:\n\t"
                     "ldr %[x], %[kskip]\n\t"
                     "add %[s], %[s], %[x]\n\t"
                     "ldr %[x], %[kwend]\n\t"
                     "cmp %[w], %[x]\n\t"
                     "bne 2b\n\t"
                     "ldr %[x], %[kback]\n\t" /* to the next group's first tap */
                     "sub %[s], %[s], %[x]\n\t" TSM_DWK_RS_ASM("a0") TSM_DWK_RS_ASM("a1")
                         TSM_DWK_RS_ASM("a2") TSM_DWK_RS_ASM("a3")
                     TSM_DW_STORE4_ASM
                     "ldr %[x], %[kend]\n\t"
                     "cmp %[o], %[x]\n\t"
                     "blo 1b"
                     : [a0] "=&r"(a0), [a1] "=&r"(a1), [a2] "=&r"(a2), [a3] "=&r"(a3),
                       [x] "=&r"(x), [x02] "=&r"(x02), [w02] "=&r"(w02), [w13] "=&r"(w13),
                       [e] "=&r"(e), [s] "+r"(s), [w] "+r"(w), [q] "+r"(q), [o] "+r"(o),
                       [kwend] "+m"(k.window_end)
                     : [step] "r"(step), [krun] "m"(k.run_bytes), [kskip] "m"(k.skip),
                       [kwin] "m"(k.window_bytes), [kback] "m"(k.back), [kend] "m"(k.end),
                       [klo] "m"(k.lo4), [khi] "m"(k.hi4)
                     : "cc", "memory");
#undef TSM_DWK_RS_ASM
}
#endif

/* The taps of one group of 4 channels into a[0..3], from s (channel c of the window's
 * first tap); *wp moves past the group's 2 * runs * len words. */
static inline void tsm_dwk_taps(const int8_t *s, tsm_dwk_runs_t r, const uint32_t **wp,
                                int32_t *a)
{
    int32_t a0 = a[0], a1 = a[1], a2 = a[2], a3 = a[3];
    const uint32_t *w = *wp;
    int32_t i, t;
    for (i = 0; i < r.runs; ++i, s += r.skip) {
        for (t = 0; t < r.len; ++t, s += r.step, w += 2) {
            TSM_DW_TAP(s, w);
        }
    }
    *wp = w;
    a[0] = a0;
    a[1] = a1;
    a[2] = a2;
    a[3] = a3;
}

/* One pixel, every channel: s0 points at channel 0 of the window's first tap, its rows
 * row_step bytes apart, the taps of a row tap_step bytes apart. On a DSP core, where every group takes the short requantization, the
 * groups go to the written-out loop; otherwise, and for the channels past the last group
 * of 4, C. A group taking tsm_requantize_rs is saturated, packed and clamped bytewise
 * (lo4, hi4) into one word store. */
static void tsm_dwk_pixel(const tsm_depthwise_conv2d_kxk_params_t *p, const int8_t *s0,
                          int32_t row_step, int32_t tap_step, uint32_t lo4, uint32_t hi4,
                          int8_t *out, int rs_all)
{
    const int32_t ch = p->channels;
    const int32_t fh = p->filter_h, fw = p->filter_w;
    const tsm_dwk_runs_t r = tsm_dwk_runs(p, row_step, tap_step);
    const int32_t c4 = ch & ~3;
    const uint32_t *w = p->filter_words;
    const int32_t *q = p->channel_params;
    int32_t c = 0, ky, kx;
#if TSM_ASM
    if (rs_all && c4) {
        tsm_dwk_groups_rs(s0, r, w, q, out, c4, lo4, hi4);
        c = c4;
        q += 4 * c4;
    }
#else
    (void)rs_all;
#endif
    for (; c < c4; c += 4, q += 16) {
        int32_t a[4];
        uint32_t y;
        a[0] = q[0];
        a[1] = q[1];
        a[2] = q[2];
        a[3] = q[3];
        tsm_dwk_taps(s0 + c, r, &w, a);
        if (!TSM_LIKELY(q[6] != 0)) {
            const int32_t offset = p->output_offset;
            const int32_t lo = p->activation_min, hi = p->activation_max;
            int32_t n;
            for (n = 0; n < 4; ++n) {
                const int32_t acc = tsm_requantize_q31(a[n], q[4 + 3 * n], q[5 + 3 * n]) + offset;
                out[c + n] = (int8_t)TSM_MIN(TSM_MAX(acc, lo), hi);
            }
            continue;
        }
        y = tsm_pack_s8x4(tsm_ssat8(tsm_requantize_rs(a[0], q[4], q[5], q[6])),
                          tsm_ssat8(tsm_requantize_rs(a[1], q[7], q[8], q[9])),
                          tsm_ssat8(tsm_requantize_rs(a[2], q[10], q[11], q[12])),
                          tsm_ssat8(tsm_requantize_rs(a[3], q[13], q[14], q[15])));
        tsm_write_u32(out + c, tsm_min_s8x4(tsm_max_s8x4(y, lo4), hi4));
    }
    for (; c < ch; ++c, q += 4) {
        const int8_t *f = p->filter + c * fh * fw;
        int32_t acc = q[0];
        for (ky = 0; ky < fh; ++ky) {
            for (kx = 0; kx < fw; ++kx) {
                acc += s0[ky * row_step + kx * tap_step + c] * f[ky * fw + kx];
            }
        }
        out[c] = tsm_dw_out(acc, q, p->output_offset, p->activation_min, p->activation_max);
    }
}

/* With a depth multiplier M, output channel c reads input channel c / M: every window is
 * copied into `window` as a multiplier-1 layer would see it, each input byte M times
 * (rows of filter_w * channels bytes, the zero point outside the input), and the
 * multiplier-1 code runs on that. An input byte's M copies are stores of the byte
 * repeated in a word: a halfword (and a byte) below 4, else words, the last one ending
 * at the M-th byte (overlapping the one before when 4 does not divide M). */
TSM_NO_LIBCALLS static void tsm_dwk_expand(const tsm_depthwise_conv2d_kxk_params_t *p,
                                           const int8_t *in_b, int32_t iy0, int32_t ix0,
                                           int8_t *window)
{
    const int32_t m = p->depth_multiplier;
    const int32_t in_c = p->channels / m;
    const uint32_t pad4 = (uint32_t)(uint8_t)(int8_t)(-p->input_offset) * 0x01010101u;
    int32_t ky, kx, c, k;
    int8_t *dst = window;
    for (ky = 0; ky < p->filter_h; ++ky) {
        const int32_t iy = iy0 + ky * p->dilation_h;
        for (kx = 0; kx < p->filter_w; ++kx, dst += p->channels) {
            const int32_t ix = ix0 + kx * p->dilation_w;
            const int8_t *src;
            int8_t *d = dst;
            if (iy < 0 || iy >= p->input_h || ix < 0 || ix >= p->input_w) {
                tsm_dw_set(dst, pad4, p->channels);
                continue;
            }
            src = in_b + (iy * p->input_w + ix) * in_c;
            if (m >= 4) {
                for (c = 0; c < in_c; ++c, d += m) {
                    const uint32_t v4 = (uint32_t)(uint8_t)src[c] * 0x01010101u;
                    for (k = 0; k < m - 4; k += 4) {
                        tsm_write_u32(d + k, v4);
                    }
                    tsm_write_u32(d + m - 4, v4);
                }
            } else if (m == 2) {
                for (c = 0; c < in_c; ++c, d += 2) {
                    tsm_write_u16(d, (uint16_t)((uint32_t)(uint8_t)src[c] * 0x0101u));
                }
            } else {
                for (c = 0; c < in_c; ++c, d += m) {
                    tsm_write_u16(d, (uint16_t)((uint32_t)(uint8_t)src[c] * 0x0101u));
                    d[m - 1] = src[c];
                }
            }
        }
    }
}

/* A window crossing the border, copied into `window` (rows of filter_w * channels bytes,
 * its taps side by side whatever the dilation) with the input zero point outside the
 * input, which the folded bias cancels exactly, as the reference skips those taps. A row
 * inside the input is its inside taps [kx0, kx1) between pad runs: one run of bytes
 * without a dilation, else a tap at a time; words, then (channels not a multiple of 4) the
 * bytes past the last word. */
TSM_NO_LIBCALLS static void tsm_dwk_border(const tsm_depthwise_conv2d_kxk_params_t *p,
                                           const int8_t *in_b, int32_t iy0, int32_t ix0,
                                           int8_t *window, uint32_t lo4, uint32_t hi4,
                                           int8_t *out, int rs_all)
{
    const int32_t ch = p->channels;
    if (p->depth_multiplier > 1) {
        tsm_dwk_expand(p, in_b, iy0, ix0, window);
        tsm_dwk_pixel(p, window, p->filter_w * ch, ch, lo4, hi4, out, rs_all);
        return;
    }
    const int32_t fw = p->filter_w;
    const int32_t dw = p->dilation_w;
    const int32_t wrow = fw * ch;
    /* the taps kx with 0 <= ix0 + kx * dw < input_w */
    const int32_t kx0 = ix0 >= 0 ? 0 : TSM_MIN(fw, (dw - 1 - ix0) / dw);
    const int32_t kx1 = p->input_w <= ix0 ? 0 : TSM_MIN(fw, (p->input_w - ix0 + dw - 1) / dw);
    const uint32_t pad4 = (uint32_t)(uint8_t)(int8_t)(-p->input_offset) * 0x01010101u;
    const int words = (ch & 3) == 0; /* no bytes past the words: the shorter loops */
    int32_t ky, kx;
    for (ky = 0; ky < p->filter_h; ++ky) {
        const int32_t iy = iy0 + ky * p->dilation_h;
        int8_t *dst = window + ky * wrow;
        const int inside = iy >= 0 && iy < p->input_h && kx1 > kx0;
        const int32_t a = inside ? kx0 * ch : wrow;
        const int32_t e = inside ? kx1 * ch : wrow;
        const int32_t base = (iy * p->input_w + ix0) * ch; /* tap 0 may be outside */
        if (words) {
            tsm_dw_set4(dst, pad4, a);
            tsm_dw_set4(dst + e, pad4, wrow - e);
        } else {
            tsm_dw_set(dst, pad4, a);
            tsm_dw_set(dst + e, pad4, wrow - e);
        }
        if (e <= a) {
            continue;
        }
        if (dw == 1) {
            if (words) {
                tsm_dw_copy4(dst + a, in_b + (base + a), e - a);
            } else {
                tsm_dw_copy(dst + a, in_b + (base + a), e - a);
            }
            continue;
        }
        for (kx = kx0; kx < kx1; ++kx) {
            if (words) {
                tsm_dw_copy4(dst + kx * ch, in_b + (base + kx * dw * ch), ch);
            } else {
                tsm_dw_copy(dst + kx * ch, in_b + (base + kx * dw * ch), ch);
            }
        }
    }
    tsm_dwk_pixel(p, window, wrow, ch, lo4, hi4, out, rs_all);
}

/* Pixels in raster order, all channels of a pixel after its reads of them (the planner's
 * in-place proof); a row's interior pixels (whole window inside) without checks, its
 * border pixels through the copied window. */
void tsm_depthwise_conv2d_kxk(const tsm_depthwise_conv2d_kxk_params_t *p, const int8_t *input,
                              int8_t *output, int8_t *scratch)
{
    const int32_t ch = p->channels;
    const int32_t in_c = ch / p->depth_multiplier;
    const int32_t row = p->input_w * in_c;
    const int32_t sw = p->stride_w;
    const int32_t step = sw * in_c;
    const uint32_t lo4 = (uint32_t)(uint8_t)(int8_t)p->activation_min * 0x01010101u;
    const uint32_t hi4 = (uint32_t)(uint8_t)(int8_t)p->activation_max * 0x01010101u;
    /* the window's extent in input pixels, dilated */
    const int32_t span_h = (p->filter_h - 1) * p->dilation_h + 1;
    const int32_t span_w = (p->filter_w - 1) * p->dilation_w + 1;
    /* interior columns: ox * sw - pad_w >= 0 and ox * sw - pad_w + span_w <= input_w */
    const int32_t last = p->input_w - span_w + p->pad_w; /* ox * sw <= last */
    const int32_t ox_lo = TSM_MIN((p->pad_w + sw - 1) / sw, p->output_w);
    const int32_t ox_hi = last < 0 ? ox_lo : TSM_MAX(ox_lo, TSM_MIN(p->output_w, last / sw + 1));
    /* whether every group of 4 channels takes tsm_requantize_rs (e != 0) */
    int rs_all = 1;
    int32_t b, oy, ox, c;
    for (c = 0; c < (ch & ~3); c += 4) {
        rs_all &= p->channel_params[4 * c + 6] != 0;
    }
    for (b = 0; b < p->batches; ++b) {
        const int8_t *in_b = input + b * p->input_h * row;
        for (oy = 0; oy < p->output_h; ++oy) {
            const int32_t iy0 = oy * p->stride_h - p->pad_h;
            /* with a multiplier, every window goes through the expanding copy */
            const int rows_inside =
                iy0 >= 0 && iy0 + span_h <= p->input_h && p->depth_multiplier == 1;
            const int32_t lo = rows_inside ? ox_lo : p->output_w;
            const int32_t hi = rows_inside ? ox_hi : p->output_w;
            for (ox = 0; ox < lo; ++ox, output += ch) {
                tsm_dwk_border(p, in_b, iy0, ox * sw - p->pad_w, scratch, lo4, hi4, output,
                               rs_all);
            }
            if (ox < hi) {
                const int8_t *s0 = in_b + iy0 * row + (ox * sw - p->pad_w) * in_c;
                const int32_t row_step = p->dilation_h * row, tap_step = p->dilation_w * in_c;
                for (; ox < hi; ++ox, output += ch, s0 += step) {
                    tsm_dwk_pixel(p, s0, row_step, tap_step, lo4, hi4, output, rs_all);
                }
            }
            for (; ox < p->output_w; ++ox, output += ch) {
                tsm_dwk_border(p, in_b, iy0, ox * sw - p->pad_w, scratch, lo4, hi4, output,
                               rs_all);
            }
        }
    }
}
