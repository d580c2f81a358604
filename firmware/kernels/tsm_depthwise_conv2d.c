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
                            const int32_t in_y = in_y0 + ky;
                            if (in_y < 0 || in_y >= p->input_h) {
                                continue;
                            }
                            for (kx = 0; kx < p->filter_w; ++kx) {
                                const int32_t in_x = in_x0 + kx;
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

/* Requantize, offset, clamp, from locals (through the params pointer every int8 store,
 * which may alias anything, would force reloads). */
static inline int8_t tsm_dw_out(int32_t acc, int32_t multiplier, int32_t shift, int32_t offset,
                                int32_t lo, int32_t hi)
{
    acc = tsm_requantize_q31(acc, multiplier, shift) + offset;
    acc = TSM_MAX(acc, lo);
    return (int8_t)TSM_MIN(acc, hi);
}

/* Halfwords lo(a), lo(b) and hi(a), hi(b) (PKHBT / PKHTB). */
static inline uint32_t tsm_pack_lo(uint32_t a, uint32_t b)
{
    return (a & 0xFFFFu) | (b << 16);
}

static inline uint32_t tsm_pack_hi(uint32_t a, uint32_t b)
{
    return (a >> 16) | (b & 0xFFFF0000u);
}

/* Taps (a, b) of 4 channels into 4 accumulators: SXTB16 splits each word into channels
 * (0, 2) and (1, 3), the packs pair tap a with tap b per channel for SMLAD. */
static inline void tsm_dw_pair(const int8_t *ta, const int8_t *tb, const uint32_t *w, int32_t *a0,
                               int32_t *a1, int32_t *a2, int32_t *a3)
{
    const uint32_t va = tsm_read_u32(ta), vb = tsm_read_u32(tb);
    const uint32_t a02 = tsm_sxtb16(va), a13 = tsm_sxtb16_ror8(va);
    const uint32_t b02 = tsm_sxtb16(vb), b13 = tsm_sxtb16_ror8(vb);
    *a0 = tsm_smlad(tsm_pack_lo(a02, b02), w[0], *a0);
    *a1 = tsm_smlad(tsm_pack_lo(a13, b13), w[1], *a1);
    *a2 = tsm_smlad(tsm_pack_hi(a02, b02), w[2], *a2);
    *a3 = tsm_smlad(tsm_pack_hi(a13, b13), w[3], *a3);
}

/* One interior pixel: s0, s1, s2 point at channel 0 of the window's three rows. */
static inline void tsm_dw3x3_interior(const tsm_depthwise_conv2d_3x3_params_t *p,
                                      const int8_t *s0, const int8_t *s1, const int8_t *s2,
                                      int8_t *out)
{
    const int32_t ch = p->channels;
    const int32_t c4 = ch & ~3;
    const int32_t offset = p->output_offset;
    const int32_t lo = p->activation_min;
    const int32_t hi = p->activation_max;
    const int32_t *const bias = p->bias;
    const int32_t *const mult = p->output_multiplier;
    const int32_t *const shift = p->output_shift;
    const uint32_t *w = p->filter_words;
    int32_t c, t;
    for (c = 0; c < c4; c += 4, w += 18) {
        const int8_t *r0 = s0 + c, *r1 = s1 + c, *r2 = s2 + c;
        int32_t a0 = bias[c], a1 = bias[c + 1], a2 = bias[c + 2], a3 = bias[c + 3];
        uint32_t x02, x13;
        tsm_dw_pair(r0, r0 + ch, w, &a0, &a1, &a2, &a3);
        tsm_dw_pair(r0 + 2 * ch, r1, w + 4, &a0, &a1, &a2, &a3);
        tsm_dw_pair(r1 + ch, r1 + 2 * ch, w + 8, &a0, &a1, &a2, &a3);
        tsm_dw_pair(r2, r2 + ch, w + 12, &a0, &a1, &a2, &a3);
        x02 = tsm_read_u32(r2 + 2 * ch);
        x13 = tsm_sxtb16_ror8(x02);
        x02 = tsm_sxtb16(x02);
        a0 = tsm_smlabb(x02, w[16], a0);
        a2 = tsm_smlatt(x02, w[16], a2);
        a1 = tsm_smlabb(x13, w[17], a1);
        a3 = tsm_smlatt(x13, w[17], a3);
        out[c] = tsm_dw_out(a0, mult[c], shift[c], offset, lo, hi);
        out[c + 1] = tsm_dw_out(a1, mult[c + 1], shift[c + 1], offset, lo, hi);
        out[c + 2] = tsm_dw_out(a2, mult[c + 2], shift[c + 2], offset, lo, hi);
        out[c + 3] = tsm_dw_out(a3, mult[c + 3], shift[c + 3], offset, lo, hi);
    }
    for (; c < ch; ++c) {
        const int8_t *f = p->filter + c * 9;
        int32_t acc = bias[c];
        for (t = 0; t < 3; ++t) {
            acc += s0[c + t * ch] * f[t] + s1[c + t * ch] * f[3 + t] + s2[c + t * ch] * f[6 + t];
        }
        out[c] = tsm_dw_out(acc, mult[c], shift[c], offset, lo, hi);
    }
}

/* A window crossing the border, copied into `window` (rows of 3 * channels bytes) with
 * the input zero point outside the input: the folded bias cancels those taps exactly, as
 * the reference skips them, and the interior code does the rest. */
static void tsm_dw3x3_border(const tsm_depthwise_conv2d_3x3_params_t *p, const int8_t *in_b,
                             int32_t iy0, int32_t ix0, int8_t *window, int8_t *out)
{
    const int32_t ch = p->channels;
    const int32_t row = p->input_w * ch;
    const int32_t kx0 = TSM_MAX(0, -ix0);
    const int32_t kx1 = TSM_MIN(3, p->input_w - ix0);
    const int8_t pad = (int8_t)(-p->input_offset);
    int32_t ky;
    for (ky = 0; ky < 3; ++ky) {
        const int32_t iy = iy0 + ky;
        int8_t *dst = window + ky * 3 * ch;
        if (iy < 0 || iy >= p->input_h || kx1 <= kx0) {
            memset(dst, pad, (size_t)(3 * ch));
            continue;
        }
        memset(dst, pad, (size_t)(kx0 * ch));
        memcpy(dst + kx0 * ch, in_b + iy * row + (ix0 + kx0) * ch, (size_t)((kx1 - kx0) * ch));
        memset(dst + kx1 * ch, pad, (size_t)((3 - kx1) * ch));
    }
    tsm_dw3x3_interior(p, window, window + 3 * ch, window + 6 * ch, out);
}

/* Pixels in raster order, all channels of a pixel after its reads of them: the order the
 * planner's in-place proof assumes. */
void tsm_depthwise_conv2d_3x3(const tsm_depthwise_conv2d_3x3_params_t *p, const int8_t *input,
                              int8_t *output, int8_t *scratch)
{
    const int32_t ch = p->channels;
    const int32_t row = p->input_w * ch;
    int32_t b, oy, ox;
    for (b = 0; b < p->batches; ++b) {
        const int8_t *in_b = input + b * p->input_h * row;
        for (oy = 0; oy < p->output_h; ++oy) {
            const int32_t iy0 = oy * p->stride_h - p->pad_h;
            const int32_t y_inside = iy0 >= 0 && iy0 + 3 <= p->input_h;
            for (ox = 0; ox < p->output_w; ++ox, output += ch) {
                const int32_t ix0 = ox * p->stride_w - p->pad_w;
                if (y_inside && ix0 >= 0 && ix0 + 3 <= p->input_w) {
                    const int8_t *s0 = in_b + iy0 * row + ix0 * ch;
                    tsm_dw3x3_interior(p, s0, s0 + row, s0 + 2 * row, output);
                } else {
                    tsm_dw3x3_border(p, in_b, iy0, ix0, scratch, output);
                }
            }
        }
    }
}
