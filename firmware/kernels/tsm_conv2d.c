#include "tsm_conv2d.h"

#include "tsm_common.h"
#include "tsm_dsp.h"

#include <string.h>

/* Portable reference path. Taps outside the input are skipped, which equals padding with
 * the input zero point; the accumulator is int32 as in TFLite (a 5x5x64 int8 window sums
 * at most 1600 * 255 * 128 in magnitude, far from overflow). */
void tsm_conv2d(const tsm_conv2d_params_t *p, const int8_t *input, int8_t *output)
{
    int32_t b, oy, ox, oc, ky, kx, ic;
    for (b = 0; b < p->batches; ++b) {
        const int8_t *in_b = input + (int32_t)b * p->input_h * p->input_w * p->input_c;
        for (oy = 0; oy < p->output_h; ++oy) {
            const int32_t in_y0 = oy * p->stride_h - p->pad_h;
            for (ox = 0; ox < p->output_w; ++ox) {
                const int32_t in_x0 = ox * p->stride_w - p->pad_w;
                for (oc = 0; oc < p->output_c; ++oc) {
                    const int8_t *f = p->filter + oc * p->filter_h * p->filter_w * p->input_c;
                    int32_t acc = 0;
                    for (ky = 0; ky < p->filter_h; ++ky) {
                        const int32_t in_y = in_y0 + ky;
                        if (in_y < 0 || in_y >= p->input_h) {
                            continue;
                        }
                        for (kx = 0; kx < p->filter_w; ++kx) {
                            const int32_t in_x = in_x0 + kx;
                            const int8_t *x;
                            const int8_t *w;
                            if (in_x < 0 || in_x >= p->input_w) {
                                continue;
                            }
                            x = in_b + (in_y * p->input_w + in_x) * p->input_c;
                            w = f + (ky * p->filter_w + kx) * p->input_c;
                            for (ic = 0; ic < p->input_c; ++ic) {
                                acc += ((int32_t)x[ic] + p->input_offset) * (int32_t)w[ic];
                            }
                        }
                    }
                    if (p->bias) {
                        acc += p->bias[oc];
                    }
                    acc = tsm_requantize(acc, p->output_multiplier[oc], p->output_shift[oc]);
                    acc += p->output_offset;
                    *output++ = (int8_t)tsm_clamp(acc, p->activation_min, p->activation_max);
                }
            }
        }
    }
}

/* ---- tiled variant ---------------------------------------------------------------------- */

/* The two pixels' int16 columns are interleaved word by word, so that one LDM fetches
 * what a group of 4 column taps needs for both: for taps 4g..4g+3 the words are
 * [pixel 0 taps 0-1, pixel 1 taps 0-1, pixel 0 taps 2-3, pixel 1 taps 2-3]. */
static inline void tsm_col_put(uint32_t *col, int32_t slot, int32_t tap, int16_t value)
{
    int16_t *half = (int16_t *)(void *)(col + (tap >> 2) * 4 + ((tap >> 1) & 1) * 2 + slot);
    memcpy(half + (tap & 1), &value, sizeof value);
}

/* n int8 window values (n a multiple of 4) into column taps [tap, tap + n), tap a
 * multiple of 4, a word at a time: SXTB16 gives bytes 0 and 2, with ROR 8 bytes 1 and 3,
 * stored as they come. So a group of 4 window values x0..x3 sits in the column as
 * x0 x2 x1 x3 (the compiler orders the filter so). */
static inline void tsm_col_widen(uint32_t *col, int32_t slot, int32_t tap, const int8_t *src,
                                 int32_t n)
{
    uint32_t *dst = col + tap + slot;
    int32_t i;
    for (i = 0; i < n; i += 4, dst += 4) {
        const uint32_t w = tsm_read_u32(src + i);
        dst[0] = tsm_sxtb16(w);
        dst[2] = tsm_sxtb16_ror8(w);
    }
}

/* A window (top-left at src, rows in_row apart) into column `slot`. Each row's first
 * row_len & ~3 values come in row order, a word at a time (each 4 as x0 x2 x1 x3, see
 * tsm_col_widen); the rows' remainders follow all of them in order (a 5x5 single-channel
 * window: 5 runs of 4, then the 5 last taps). The compiler orders the filter the same way
 * (ops/conv2d.py, tap_order). Inlined with literal sizes for the common first-layer
 * window, so that gcc unrolls it. */
static inline __attribute__((always_inline)) void
tsm_conv2d_gather_inside(const int8_t *src, int32_t in_row, uint32_t *col, int32_t slot,
                         const int32_t filter_h, const int32_t row_len)
{
    const int32_t row4 = row_len & ~3;
    const int32_t rem = row_len - row4;
    int32_t tail = filter_h * row4;
    int32_t ky, i;
    /* unrolled where the sizes are literals, so that the tail taps' column places are
     * constants */
#pragma GCC unroll 5
    for (ky = 0; ky < filter_h; ++ky, src += in_row) {
        tsm_col_widen(col, slot, ky * row4, src, row4);
        for (i = 0; i < rem; ++i) {
            tsm_col_put(col, slot, tail++, src[row4 + i]);
        }
    }
}

/* A whole window (rows in_row bytes apart from src) into column `slot`: the common
 * shapes with literal sizes, so that their rows unroll, and the others generically. */
static inline __attribute__((always_inline)) void
tsm_conv2d_gather_window(const tsm_conv2d_tiled_params_t *p, const int8_t *src, int32_t in_row,
                         uint32_t *col, int32_t slot)
{
    if (p->input_c == 1 && p->filter_h == 5 && p->filter_w == 5) {
        tsm_conv2d_gather_inside(src, in_row, col, slot, 5, 5);
    } else if (p->input_c == 1 && p->filter_h == 3 && p->window_row == 4) {
        tsm_conv2d_gather_inside(src, in_row, col, slot, 3, 4);
    } else if (p->filter_h == 3 && p->window_row == 24) {
        tsm_conv2d_gather_inside(src, in_row, col, slot, 3, 24); /* 3x3, 8 channels */
    } else {
        tsm_conv2d_gather_inside(src, in_row, col, slot, p->filter_h, p->window_row);
    }
}

/* n bytes (a multiple of 4) of pad (pad4: the pad byte in every lane) at dst. */
static inline void tsm_conv2d_pad4(int8_t *dst, uint32_t pad4, int32_t n)
{
    int32_t i;
    for (i = 0; i < n; i += 4) {
        tsm_write_u32(dst + i, pad4);
    }
}

/* A window crossing the border: copied first, rows of window_row bytes, into `window`
 * with the input zero point outside the input and past the filter's row (the folded bias
 * cancels those taps exactly, as the reference skips them; the extra tap's weight is
 * zero), then gathered like an interior one. A row inside the input is its inside taps
 * [a, e) between pad runs, the same for every row of the window. With channels a
 * multiple of 4 every run is whole words and goes a word at a time; otherwise byte by
 * byte (the runs are then a few bytes; a library call each cost more than the copy). */
TSM_NO_LIBCALLS static void tsm_conv2d_gather_border(const tsm_conv2d_tiled_params_t *p, const int8_t *in_b,
                                     int32_t iy0, int32_t ix0, uint32_t *col, int32_t slot,
                                     int8_t *window)
{
    const int32_t c = p->input_c;
    const int32_t row_len = p->window_row;
    const int32_t in_row = p->input_w * c;
    const int8_t pad = (int8_t)p->input_zero_point;
    const int32_t kx0 = TSM_MAX(0, -ix0);
    const int32_t kx1 = TSM_MIN(p->filter_w, p->input_w - ix0);
    int32_t ky, i;
    if ((c & 3) == 0) {
        const uint32_t pad4 = (uint32_t)(uint8_t)pad * 0x01010101u;
        const int32_t a = kx0 * c;
        const int32_t e = TSM_MAX(a, kx1 * c);
        int8_t *dst = window;
        for (ky = 0; ky < p->filter_h; ++ky, dst += row_len) {
            const int32_t iy = iy0 + ky;
            const int32_t base = iy * in_row + ix0 * c; /* the first tap may be outside */
            if (iy < 0 || iy >= p->input_h) {
                tsm_conv2d_pad4(dst, pad4, row_len);
                continue;
            }
            tsm_conv2d_pad4(dst, pad4, a);
            for (i = a; i < e; i += 4) {
                tsm_write_u32(dst + i, tsm_read_u32(in_b + base + i));
            }
            tsm_conv2d_pad4(dst + e, pad4, row_len - e);
        }
    } else {
        for (ky = 0; ky < p->filter_h; ++ky) {
            const int32_t iy = iy0 + ky;
            int8_t *dst = window + ky * row_len;
            const int32_t a = iy < 0 || iy >= p->input_h ? row_len : kx0 * c;
            const int32_t e = iy < 0 || iy >= p->input_h ? row_len : TSM_MAX(a, kx1 * c);
            for (i = 0; i < a; ++i) {
                dst[i] = pad;
            }
            for (; i < e; ++i) {
                dst[i] = in_b[iy * in_row + ix0 * c + i];
            }
            for (; i < row_len; ++i) {
                dst[i] = pad;
            }
        }
    }
    tsm_conv2d_gather_window(p, window, row_len, col, slot);
}

/* The window of output pixel (oy, ox) into column `slot`. A window row wider than the
 * filter's (window_row) must also end inside the input row to be read in place. */
static inline void tsm_conv2d_gather(const tsm_conv2d_tiled_params_t *p, const int8_t *in_b,
                                     int32_t oy, int32_t ox, uint32_t *col, int32_t slot,
                                     int8_t *window)
{
    const int32_t iy0 = oy * p->stride_h - p->pad_h;
    const int32_t ix0 = ox * p->stride_w - p->pad_w;
    if (ix0 >= 0 && (ix0 * p->input_c + p->window_row <= p->input_w * p->input_c) &&
        iy0 >= 0 && iy0 + p->filter_h <= p->input_h) {
        const int32_t in_row = p->input_w * p->input_c;
        tsm_conv2d_gather_window(p, in_b + iy0 * in_row + ix0 * p->input_c, in_row, col, slot);
        return;
    }
    tsm_conv2d_gather_border(p, in_b, iy0, ix0, col, slot, window);
}

/* Requantize, offset, clamp. The kernels pass the parameters as locals: through the
 * params pointer every int8 store (which may alias anything) would force reloads. */
static inline int8_t tsm_out_s8(int32_t acc, int32_t multiplier, int32_t shift, int32_t offset,
                                int32_t lo, int32_t hi)
{
    acc = tsm_requantize_q31(acc, multiplier, shift) + offset;
    acc = TSM_MAX(acc, lo);
    return (int8_t)TSM_MIN(acc, hi);
}

/* Two channels' outputs of one pixel (tsm_requantize_rs, the offset in it), saturated,
 * packed and clamped bytewise (lo4, hi4: the bounds in every lane) into one halfword. */
static inline void tsm_out_rs_x2(int8_t *out, int32_t a0, int32_t a1, int32_t m0, int32_t d0,
                                 int32_t e0, int32_t m1, int32_t d1, int32_t e1, uint32_t lo4,
                                 uint32_t hi4)
{
    const uint32_t y = tsm_pack_s8x2(tsm_ssat8(tsm_requantize_rs(a0, m0, d0, e0)),
                                     tsm_ssat8(tsm_requantize_rs(a1, m1, d1, e1)));
    tsm_write_u16(out, (uint16_t)tsm_min_s8x4(tsm_max_s8x4(y, lo4), hi4));
}

static inline int8_t tsm_out_rs(int32_t acc, int32_t m, int32_t d, int32_t e, int32_t lo,
                                int32_t hi)
{
    acc = tsm_requantize_rs(acc, m, d, e);
    acc = TSM_MAX(acc, lo);
    return (int8_t)TSM_MIN(acc, hi);
}

#if TSM_ASM
/* One group of 4 taps of the tile (see tsm_tile_2x2), for the written-out loops below. */
#define TSM_TILE_GROUP                                                                          \
    "ldrd %[xa], %[xb], [%[x]], #8\n\t"                                                       \
    "ldrd %[wa], %[wb], [%[w]], #8\n\t"                                                       \
    "sxtb16 %[t], %[wa]\n\t"                                                                  \
    "smlad %[c00], %[t], %[xa], %[c00]\n\t"                                                   \
    "smlad %[c01], %[t], %[xb], %[c01]\n\t"                                                   \
    "sxtb16 %[t], %[wb]\n\t"                                                                  \
    "smlad %[c10], %[t], %[xa], %[c10]\n\t"                                                   \
    "smlad %[c11], %[t], %[xb], %[c11]\n\t"                                                   \
    "ldrd %[xa], %[xb], [%[x]], #8\n\t"                                                       \
    "sxtb16 %[t], %[wa], ror #8\n\t"                                                          \
    "smlad %[c00], %[t], %[xa], %[c00]\n\t"                                                   \
    "smlad %[c01], %[t], %[xb], %[c01]\n\t"                                                   \
    "sxtb16 %[t], %[wb], ror #8\n\t"                                                          \
    "smlad %[c10], %[t], %[xa], %[c10]\n\t"                                                   \
    "smlad %[c11], %[t], %[xb], %[c11]\n\t"
/* The same group with the weights stored as int16 pairs (the "tiled16" variant): no
 * SXTB16, 12 instructions for 16 MACs. */
#define TSM_TILE_GROUP16                                                                        \
    "ldrd %[xa], %[xb], [%[x]], #8\n\t"                                                       \
    "ldrd %[wa], %[wb], [%[w]], #8\n\t"                                                       \
    "smlad %[c00], %[wa], %[xa], %[c00]\n\t"                                                  \
    "smlad %[c01], %[wa], %[xb], %[c01]\n\t"                                                  \
    "smlad %[c10], %[wb], %[xa], %[c10]\n\t"                                                  \
    "smlad %[c11], %[wb], %[xb], %[c11]\n\t"                                                  \
    "ldrd %[xa], %[xb], [%[x]], #8\n\t"                                                       \
    "ldrd %[wa], %[wb], [%[w]], #8\n\t"                                                       \
    "smlad %[c00], %[wa], %[xa], %[c00]\n\t"                                                  \
    "smlad %[c01], %[wa], %[xb], %[c01]\n\t"                                                  \
    "smlad %[c10], %[wb], %[xa], %[c10]\n\t"                                                  \
    "smlad %[c11], %[wb], %[xb], %[c11]\n\t"
#endif

/* The tile's inner loop over the column: 4 taps of 2 channels (w0 w2 w1 w3 each: SXTB16
 * gives (w0, w1), with ROR 8 (w2, w3)) times 4 taps of 2 pixels, 16 MACs in 8 SMLADs, per
 * group of 4 taps, from x to end; *w moves past the pair's weights. On a DSP core it is
 * written out, so that the loads advance their own pointers (gcc adds them separately),
 * two groups a turn: 16 instructions a group instead of 19. The sums are the same in
 * either form. */
static inline __attribute__((always_inline)) void
tsm_tile_2x2(const uint32_t *x, const uint32_t *end, const uint32_t **w, int32_t *a00,
             int32_t *a01, int32_t *a10, int32_t *a11, const int wide)
{
#if TSM_ASM
    const uint32_t *wp = *w;
    int32_t c00 = *a00, c01 = *a01, c10 = *a10, c11 = *a11;
    uint32_t xa, xb, wa, wb, t;
    /* an odd group count (16 bytes of column a group) takes one group first; then two
     * groups a turn */
#define TSM_TILE_ASM(group)                                                                     \
    __asm__ volatile("sub %[t], %[end], %[x]\n\t"                                               \
                     "tst %[t], #16\n\t"                                                        \
                     "beq 2f\n\t" group "cmp %[x], %[end]\n\t"                                   \
                     "bhs 3f\n\t"                                                               \
                     "2:\n\t" group group "cmp %[x], %[end]\n\t"                                  \
                     "blo 2b\n\t"                                                               \
                     "3:"                                                                       \
                     : [c00] "+r"(c00), [c01] "+r"(c01), [c10] "+r"(c10), [c11] "+r"(c11),      \
                       [x] "+r"(x), [w] "+r"(wp), [xa] "=&r"(xa), [xb] "=&r"(xb),               \
                       [wa] "=&r"(wa), [wb] "=&r"(wb), [t] "=&r"(t)                             \
                     : [end] "r"(end), "m"(*(const uint32_t(*)[])x),                             \
                       "m"(*(const uint32_t(*)[])wp)                                            \
                     : "cc")
    if (wide) {
        TSM_TILE_ASM(TSM_TILE_GROUP16);
    } else {
        TSM_TILE_ASM(TSM_TILE_GROUP);
    }
#undef TSM_TILE_ASM
    *w = wp;
    *a00 = c00;
    *a01 = c01;
    *a10 = c10;
    *a11 = c11;
#else
    const uint32_t *wp = *w;
    int32_t c00 = *a00, c01 = *a01, c10 = *a10, c11 = *a11;
    if (wide) {
        /* int16 pairs: [channel 0 taps 0-1, channel 1 taps 0-1, channel 0 taps 2-3,
         * channel 1 taps 2-3] a group */
        do {
            c00 = tsm_smlad(wp[0], x[0], c00);
            c01 = tsm_smlad(wp[0], x[1], c01);
            c10 = tsm_smlad(wp[1], x[0], c10);
            c11 = tsm_smlad(wp[1], x[1], c11);
            c00 = tsm_smlad(wp[2], x[2], c00);
            c01 = tsm_smlad(wp[2], x[3], c01);
            c10 = tsm_smlad(wp[3], x[2], c10);
            c11 = tsm_smlad(wp[3], x[3], c11);
            x += 4;
            wp += 4;
        } while (x < end);
        *w = wp;
        *a00 = c00;
        *a01 = c01;
        *a10 = c10;
        *a11 = c11;
        return;
    }
    do {
        const uint32_t x0_01 = x[0];
        const uint32_t x1_01 = x[1];
        const uint32_t x0_23 = x[2];
        const uint32_t x1_23 = x[3];
        uint32_t w01 = tsm_sxtb16(wp[0]);
        uint32_t w23 = tsm_sxtb16_ror8(wp[0]);
        c00 = tsm_smlad(w01, x0_01, c00);
        c00 = tsm_smlad(w23, x0_23, c00);
        c01 = tsm_smlad(w01, x1_01, c01);
        c01 = tsm_smlad(w23, x1_23, c01);
        w01 = tsm_sxtb16(wp[1]);
        w23 = tsm_sxtb16_ror8(wp[1]);
        c10 = tsm_smlad(w01, x0_01, c10);
        c10 = tsm_smlad(w23, x0_23, c10);
        c11 = tsm_smlad(w01, x1_01, c11);
        c11 = tsm_smlad(w23, x1_23, c11);
        x += 4;
        wp += 2;
    } while (x < end);
    *w = wp;
    *a00 = c00;
    *a01 = c01;
    *a10 = c10;
    *a11 = c11;
#endif
}

#if TSM_ASM
/* Every pair of output channels of two pixels at once, where the requantization is
 * tsm_requantize_rs (the compiler's pairs words): the tile's loop (tsm_tile_2x2), then
 * its epilogue (tsm_out_rs_x2 for both pixels), written out in one piece. In C, gcc
 * spills the tile's 13 live values around each pair's epilogue; here they stay in
 * registers and the layer's constants are read from the stack. *w and *pp move past the
 * pairs; o0 gets pixel 0's bytes [o0, o_end), o0 + out_c pixel 1's. */
static inline __attribute__((always_inline)) void
tsm_tile_pairs_rs(const uint32_t *col, const uint32_t *end, const uint32_t **w,
                  const int32_t **pp, int8_t *o0, int32_t out_c, const int8_t *o_end,
                  uint32_t lo4, uint32_t hi4, const int wide)
{
    struct {
        const uint32_t *col;
        int32_t out_c;
        const int8_t *o_end;
        uint32_t lo4, hi4;
    } k = {col, out_c, o_end, lo4, hi4};
    const uint32_t *wp = *w;
    const int32_t *q = *pp;
    int8_t *o = o0;
    const uint32_t *x;
    int32_t c00, c01, c10, c11;
    uint32_t xa, xb, wa, wb, t;
/* acc = (SMMULR(2 acc, m) + its sign + add) >> e: tsm_requantize_rs */
#define TSM_RS(acc, m, add, e)                                                                  \
    "lsl %[" acc "], %[" acc "], #1\n\t"                                                       \
    "smmulr %[" acc "], %[" acc "], %[" m "]\n\t"                                              \
    "add %[" acc "], %[" acc "], %[" acc "], asr #31\n\t"                                       \
    "add %[" acc "], %[" acc "], %[" add "]\n\t"                                                \
    "asr %[" acc "], %[" acc "], %[" e "]\n\t"
/* the pairs loop around one of the tile loops below (TSM_TILE_EVEN / TSM_TILE_ODD) */
#define TSM_PAIRS_ASM(tile_loop)                                                                \
    __asm__ volatile(                                                                           \
        "4:\n\t"                                                                                \
        "ldr %[x], %[kcol]\n\t"                                                                 \
        "ldrd %[c00], %[c10], [%[q]], #8\n\t" /* bias0, bias1 */                                \
        "mov %[c01], %[c00]\n\t"                                                                \
        "mov %[c11], %[c10]\n\t"                                                                \
        tile_loop                                                                               \
        "ldrd %[xa], %[xb], [%[q]], #8\n\t" /* m0, m1 */                                        \
        "ldrd %[wa], %[wb], [%[q]], #8\n\t" /* add0, add1 */                                    \
        "ldrd %[t], %[x], [%[q]], #8\n\t"   /* e0, e1 */                                        \
        TSM_RS("c00", "xa", "wa", "t") TSM_RS("c01", "xa", "wa", "t")                           \
        TSM_RS("c10", "xb", "wb", "x") TSM_RS("c11", "xb", "wb", "x")                           \
        "ssat %[c00], #8, %[c00]\n\t"                                                           \
        "ssat %[c10], #8, %[c10]\n\t"                                                           \
        "ssat %[c01], #8, %[c01]\n\t"                                                           \
        "ssat %[c11], #8, %[c11]\n\t"                                                           \
        "bfi %[c00], %[c10], #8, #8\n\t" /* pixel 0: channels 0, 1 */                           \
        "bfi %[c01], %[c11], #8, #8\n\t" /* pixel 1 */                                          \
        "ldr %[t], %[klo]\n\t"           /* bytewise max with lo4: SSUB8, SEL */                \
        "ssub8 %[xa], %[c00], %[t]\n\t"                                                         \
        "sel %[c00], %[c00], %[t]\n\t"                                                          \
        "ssub8 %[xa], %[c01], %[t]\n\t"                                                         \
        "sel %[c01], %[c01], %[t]\n\t"                                                          \
        "ldr %[t], %[khi]\n\t" /* bytewise min with hi4 */                                      \
        "ssub8 %[xa], %[c00], %[t]\n\t"                                                         \
        "sel %[c00], %[t], %[c00]\n\t"                                                          \
        "ssub8 %[xa], %[c01], %[t]\n\t"                                                         \
        "sel %[c01], %[t], %[c01]\n\t"                                                          \
        "ldr %[xb], %[koutc]\n\t"                                                               \
        "strh %[c01], [%[o], %[xb]]\n\t"                                                        \
        "strh %[c00], [%[o]], #2\n\t"                                                           \
        "ldr %[t], %[koend]\n\t"                                                                \
        "cmp %[o], %[t]\n\t"                                                                    \
        "blo 4b"                                                                                \
        : [c00] "=&r"(c00), [c01] "=&r"(c01), [c10] "=&r"(c10), [c11] "=&r"(c11),               \
          [x] "=&r"(x), [w] "+r"(wp), [q] "+r"(q), [o] "+r"(o), [xa] "=&r"(xa),                 \
          [xb] "=&r"(xb), [wa] "=&r"(wa), [wb] "=&r"(wb), [t] "=&r"(t)                          \
        : [end] "r"(end), [kcol] "m"(k.col), [koutc] "m"(k.out_c), [koend] "m"(k.o_end),        \
          [klo] "m"(k.lo4), [khi] "m"(k.hi4)                                                    \
        : "cc", "memory")
/* even group count: two groups a turn; odd: one group first. The count is the layer's, so
 * it is tested once per pixel pair here, not once per tile. */
#define TSM_TILE_EVEN(group)                                                                    \
    "2:\n\t" group group "cmp %[x], %[end]\n\t"                                                  \
    "blo 2b\n\t"
#define TSM_TILE_ODD(group)                                                                     \
    group "cmp %[x], %[end]\n\t"                                                               \
    "bhs 3f\n\t" TSM_TILE_EVEN(group) "3:\n\t"
    if (wide) {
        if (((end - col) >> 2) & 1) {
            TSM_PAIRS_ASM(TSM_TILE_ODD(TSM_TILE_GROUP16));
        } else {
            TSM_PAIRS_ASM(TSM_TILE_EVEN(TSM_TILE_GROUP16));
        }
    } else if (((end - col) >> 2) & 1) {
        TSM_PAIRS_ASM(TSM_TILE_ODD(TSM_TILE_GROUP));
    } else {
        TSM_PAIRS_ASM(TSM_TILE_EVEN(TSM_TILE_GROUP));
    }
#undef TSM_TILE_ODD
#undef TSM_TILE_EVEN
#undef TSM_PAIRS_ASM
#undef TSM_RS
    *w = wp;
    *pp = q;
}
#endif

#if TSM_ASM
/* Two neighbouring pixels of a pointwise layer (n channels each, a multiple of 4, the
 * second n bytes after the first) into the column, as two tsm_conv2d_gather_inside calls
 * would: per group of 4 channels the words [pixel 0 (c0, c2), pixel 1 (c0, c2), pixel 0
 * (c1, c3), pixel 1 (c1, c3)] (what SXTB16 yields, see tsm_col_widen), stored by one STM. */
static inline __attribute__((always_inline)) void tsm_widen_pair(const int8_t *src, int32_t n,
                                                                 uint32_t *col)
{
    const uint32_t *end = col + n;
    __asm__ volatile("1:\n\t"
                     "ldr r5, [%[s], %[n]]\n\t"
                     "ldr r6, [%[s]], #4\n\t"
                     "sxtb16 r4, r6\n\t"
                     "sxtb16 r6, r6, ror #8\n\t"
                     "sxtb16 r8, r5, ror #8\n\t"
                     "sxtb16 r5, r5\n\t"
                     "stmia %[c]!, {r4, r5, r6, r8}\n\t"
                     "cmp %[c], %[e]\n\t"
                     "blo 1b"
                     : [s] "+r"(src), [c] "+r"(col)
                     : [n] "r"(n), [e] "r"(end)
                     : "r4", "r5", "r6", "r8", "cc", "memory");
}
#endif

/* Pixels go in pairs in raster order and every read of a pair comes before its writes,
 * which is what the planner's in-place proof assumes. An odd last pixel (or channel) is
 * computed from a stale (or zero) column and not stored. rs: the requantization is
 * tsm_requantize_rs (a literal at each call, so each copy keeps one epilogue). */
static inline __attribute__((always_inline)) void
tsm_conv2d_tiled_body(const tsm_conv2d_tiled_params_t *p, const int8_t *input, int8_t *output,
                      uint32_t *scratch, const int rs, const int wide)
{
    /* rs: per pair of output channels [bias0, bias1, m0, m1, add0, add1, e0, e1], one
     * pointer for the epilogue instead of four arrays */
    const int32_t *const pairs = p->output_add;
    const uint32_t lo4 = (uint32_t)(uint8_t)(int8_t)p->activation_min * 0x01010101u;
    const uint32_t hi4 = (uint32_t)(uint8_t)(int8_t)p->activation_max * 0x01010101u;
    const int32_t pixels = p->output_h * p->output_w;
    const int32_t depth = p->depth;
    const int32_t out_c = p->output_c;
    const int32_t offset = p->output_offset;
    const int32_t lo = p->activation_min;
    const int32_t hi = p->activation_max;
    const int32_t *const bias = p->bias;
    const int32_t *const mult = p->output_multiplier;
    const int32_t *const shift = p->output_shift;
    const uint32_t *const col_end = scratch + depth;
    int8_t *const window = (int8_t *)(void *)(scratch + depth);
    /* a 1x1 window at stride 1 without padding is the pixel itself: widened in place, no
     * call and no bounds checks */
    const int pointwise = p->filter_h == 1 && p->filter_w == 1 && p->stride_h == 1 &&
                          p->stride_w == 1 && p->pad_h == 0 && p->pad_w == 0;
    const int32_t in_c = p->input_c;
    int32_t b, px, oc, k;
    /* the zero tail past the window, and a defined second column for an odd last pixel */
    for (k = 0; k < depth; ++k) {
        scratch[k] = 0;
    }
    for (b = 0; b < p->batches; ++b) {
        const int8_t *in_b = input + b * p->input_h * p->input_w * p->input_c;
        int8_t *out_b = output + b * pixels * p->output_c;
        int32_t oy = 0, ox = 0;
        for (px = 0; px < pixels; px += 2) {
            const int32_t two = px + 1 < pixels;
            int8_t *o0 = out_b + px * out_c;
            int8_t *o1 = o0 + out_c;
            const uint32_t *w = p->filter;
            if (pointwise) {
#if TSM_ASM
                if (two && (in_c & 3) == 0) {
                    tsm_widen_pair(in_b + px * in_c, in_c, scratch);
                } else
#endif
                {
                    tsm_conv2d_gather_inside(in_b + px * in_c, 0, scratch, 0, 1, in_c);
                    if (two) {
                        tsm_conv2d_gather_inside(in_b + (px + 1) * in_c, 0, scratch, 1, 1, in_c);
                    }
                }
            } else {
                tsm_conv2d_gather(p, in_b, oy, ox, scratch, 0, window);
                if (++ox == p->output_w) {
                    ox = 0;
                    ++oy;
                }
                if (two) {
                    tsm_conv2d_gather(p, in_b, oy, ox, scratch, 1, window);
                    if (++ox == p->output_w) {
                        ox = 0;
                        ++oy;
                    }
                }
            }
            const int32_t *pp = pairs;
            oc = 0;
#if TSM_ASM
            if (rs && two && out_c >= 2) {
                oc = out_c & ~1;
                tsm_tile_pairs_rs(scratch, col_end, &w, &pp, o0, out_c, o0 + oc, lo4, hi4,
                                  wide);
            }
#endif
            for (; oc < out_c; oc += 2) {
                const int32_t pair = oc + 1 < out_c;
                const uint32_t *x = scratch;
                int32_t a00 = rs ? pp[0] : bias[oc];
                int32_t a01 = a00;
                int32_t a10 = rs ? pp[1] : bias[oc + pair];
                int32_t a11 = a10;
                tsm_tile_2x2(x, col_end, &w, &a00, &a01, &a10, &a11, wide);
                if (rs && pair) {
                    const int32_t m0 = pp[2], m1 = pp[3], d0 = pp[4], d1 = pp[5];
                    const int32_t e0 = pp[6], e1 = pp[7];
                    pp += 8;
                    tsm_out_rs_x2(o0 + oc, a00, a10, m0, d0, e0, m1, d1, e1, lo4, hi4);
                    if (two) {
                        tsm_out_rs_x2(o1 + oc, a01, a11, m0, d0, e0, m1, d1, e1, lo4, hi4);
                    }
                    continue;
                }
                if (rs) {
                    const int32_t m0 = pp[2], d0 = pp[4], e0 = pp[6];
                    pp += 8;
                    o0[oc] = tsm_out_rs(a00, m0, d0, e0, lo, hi);
                    if (two) {
                        o1[oc] = tsm_out_rs(a01, m0, d0, e0, lo, hi);
                    }
                    continue;
                }
                {
                    const int32_t m0 = mult[oc];
                    const int32_t s0 = shift[oc];
                    o0[oc] = tsm_out_s8(a00, m0, s0, offset, lo, hi);
                    if (two) {
                        o1[oc] = tsm_out_s8(a01, m0, s0, offset, lo, hi);
                    }
                }
                if (pair) {
                    const int32_t m1 = mult[oc + 1];
                    const int32_t s1 = shift[oc + 1];
                    o0[oc + 1] = tsm_out_s8(a10, m1, s1, offset, lo, hi);
                    if (two) {
                        o1[oc + 1] = tsm_out_s8(a11, m1, s1, offset, lo, hi);
                    }
                }
            }
        }
    }
}

void tsm_conv2d_tiled(const tsm_conv2d_tiled_params_t *p, const int8_t *input, int8_t *output,
                      uint32_t *scratch)
{
    if (p->output_add) {
        tsm_conv2d_tiled_body(p, input, output, scratch, 1, 0);
    } else {
        tsm_conv2d_tiled_body(p, input, output, scratch, 0, 0);
    }
}

/* A separate function, so that a model links only the variant it uses. */
void tsm_conv2d_tiled16(const tsm_conv2d_tiled_params_t *p, const int8_t *input,
                        int8_t *output, uint32_t *scratch)
{
    if (p->output_add) {
        tsm_conv2d_tiled_body(p, input, output, scratch, 1, 1);
    } else {
        tsm_conv2d_tiled_body(p, input, output, scratch, 0, 1);
    }
}
