#include "tsm_conv2d.h"

#include "tsm_common.h"
#include "tsm_dsp.h"

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

/* n int8 values to int16. With DSP: SXTB16 splits a word into its even and odd bytes, and
 * two packs restore the order, 4 values in 7 instructions instead of 8 loads and stores. */
static inline void tsm_widen(const int8_t *src, int16_t *dst, int32_t n)
{
    int32_t i = 0;
#if TSM_DSP
    for (; i + 4 <= n; i += 4) {
        const uint32_t w = tsm_read_u32(src + i);
        const uint32_t even = tsm_sxtb16(w);
        const uint32_t odd = tsm_sxtb16_ror8(w);
        tsm_write_u32(dst + i, (even & 0xFFFFu) | (odd << 16));
        tsm_write_u32(dst + i + 2, (even >> 16) | (odd & 0xFFFF0000u));
    }
#endif
    for (; i < n; ++i) {
        dst[i] = src[i];
    }
}

/* The window of output pixel (oy, ox) as one int16 column: taps outside the input hold
 * the input zero point (the folded bias cancels them exactly, as the reference skips
 * them). The tail past filter_h * filter_w * input_c is zeroed once per call by the
 * caller (its weights are zero too). */
static inline void tsm_conv2d_gather(const tsm_conv2d_tiled_params_t *p, const int8_t *in_b,
                                     int32_t oy, int32_t ox, int16_t *col)
{
    const int32_t c = p->input_c;
    const int32_t row_len = p->filter_w * c;
    const int32_t in_row = p->input_w * c;
    const int16_t pad = (int16_t)p->input_zero_point;
    const int32_t iy0 = oy * p->stride_h - p->pad_h;
    const int32_t ix0 = ox * p->stride_w - p->pad_w;
    const int32_t x_inside = ix0 >= 0 && ix0 + p->filter_w <= p->input_w;
    int16_t *dst = col;
    int32_t ky, kx, i;
    if (x_inside && iy0 >= 0 && iy0 + p->filter_h <= p->input_h) {
        /* interior: each row of the window is row_len contiguous input bytes */
        const int8_t *src = in_b + iy0 * in_row + ix0 * c;
        for (ky = 0; ky < p->filter_h; ++ky, dst += row_len, src += in_row) {
            tsm_widen(src, dst, row_len);
        }
        return;
    }
    for (ky = 0; ky < p->filter_h; ++ky, dst += row_len) {
        const int32_t iy = iy0 + ky;
        if (iy < 0 || iy >= p->input_h) {
            for (i = 0; i < row_len; ++i) {
                dst[i] = pad;
            }
        } else if (x_inside) {
            tsm_widen(in_b + iy * in_row + ix0 * c, dst, row_len);
        } else {
            for (kx = 0; kx < p->filter_w; ++kx) {
                const int32_t ix = ix0 + kx;
                if (ix < 0 || ix >= p->input_w) {
                    for (i = 0; i < c; ++i) {
                        dst[kx * c + i] = pad;
                    }
                } else {
                    tsm_widen(in_b + iy * in_row + ix * c, dst + kx * c, c);
                }
            }
        }
    }
}

static inline int8_t tsm_conv2d_tiled_out(const tsm_conv2d_tiled_params_t *p, int32_t acc,
                                          int32_t oc)
{
    acc = tsm_requantize_q31(acc, p->output_multiplier[oc], p->output_shift[oc]);
    acc += p->output_offset;
    acc = TSM_MAX(acc, p->activation_min);
    return (int8_t)TSM_MIN(acc, p->activation_max);
}

/* Pixels go in pairs in raster order and every read of a pair comes before its writes,
 * which is what the planner's in-place proof assumes. An odd last pixel (or channel) is
 * computed twice from the same column and stored once. */
void tsm_conv2d_tiled(const tsm_conv2d_tiled_params_t *p, const int8_t *input, int8_t *output,
                      int16_t *scratch)
{
    const int32_t pixels = p->output_h * p->output_w;
    const int32_t depth = p->depth;
    int16_t *const col0 = scratch;
    int16_t *const col1 = scratch + depth;
    int32_t b, px, oc, k;
    for (k = p->filter_h * p->filter_w * p->input_c; k < depth; ++k) {
        col0[k] = 0;
        col1[k] = 0;
    }
    for (b = 0; b < p->batches; ++b) {
        const int8_t *in_b = input + b * p->input_h * p->input_w * p->input_c;
        int8_t *out_b = output + b * pixels * p->output_c;
        int32_t oy = 0, ox = 0;
        for (px = 0; px < pixels; px += 2) {
            const int32_t two = px + 1 < pixels;
            const int16_t *x1 = two ? col1 : col0;
            int8_t *o0 = out_b + px * p->output_c;
            int8_t *o1 = o0 + p->output_c;
            tsm_conv2d_gather(p, in_b, oy, ox, col0);
            if (++ox == p->output_w) {
                ox = 0;
                ++oy;
            }
            if (two) {
                tsm_conv2d_gather(p, in_b, oy, ox, col1);
                if (++ox == p->output_w) {
                    ox = 0;
                    ++oy;
                }
            }
            for (oc = 0; oc < p->output_c; oc += 2) {
                const int32_t pair = oc + 1 < p->output_c;
                const int8_t *wa = p->filter + oc * depth;
                const int8_t *wb = pair ? wa + depth : wa;
                int32_t a00 = p->bias[oc];
                int32_t a01 = a00;
                int32_t a10 = p->bias[oc + pair];
                int32_t a11 = a10;
                for (k = 0; k < depth; k += 4) {
                    /* taps stored w0 w2 w1 w3: SXTB16 gives (w0, w1), with ROR 8 (w2, w3),
                     * the order of the int16 column's words */
                    const uint32_t wa_raw = tsm_read_u32(wa + k);
                    const uint32_t wb_raw = tsm_read_u32(wb + k);
                    const uint32_t wa01 = tsm_sxtb16(wa_raw);
                    const uint32_t wa23 = tsm_sxtb16_ror8(wa_raw);
                    const uint32_t wb01 = tsm_sxtb16(wb_raw);
                    const uint32_t wb23 = tsm_sxtb16_ror8(wb_raw);
                    uint32_t x01 = tsm_read_u32(col0 + k);
                    uint32_t x23 = tsm_read_u32(col0 + k + 2);
                    a00 = tsm_smlad(wa01, x01, a00);
                    a00 = tsm_smlad(wa23, x23, a00);
                    a10 = tsm_smlad(wb01, x01, a10);
                    a10 = tsm_smlad(wb23, x23, a10);
                    x01 = tsm_read_u32(x1 + k);
                    x23 = tsm_read_u32(x1 + k + 2);
                    a01 = tsm_smlad(wa01, x01, a01);
                    a01 = tsm_smlad(wa23, x23, a01);
                    a11 = tsm_smlad(wb01, x01, a11);
                    a11 = tsm_smlad(wb23, x23, a11);
                }
                o0[oc] = tsm_conv2d_tiled_out(p, a00, oc);
                if (pair) {
                    o0[oc + 1] = tsm_conv2d_tiled_out(p, a10, oc + 1);
                }
                if (two) {
                    o1[oc] = tsm_conv2d_tiled_out(p, a01, oc);
                    if (pair) {
                        o1[oc + 1] = tsm_conv2d_tiled_out(p, a11, oc + 1);
                    }
                }
            }
        }
    }
}
