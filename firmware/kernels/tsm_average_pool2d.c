#include "tsm_average_pool2d.h"

#include "tsm_common.h"
#include "tsm_dsp.h"

/* Averages over the part of the window inside the input, rounding half away from zero
 * with integer division as TFLite's reference does (input and output share quantization,
 * so no rescaling is needed). */
void tsm_average_pool2d(const tsm_pool_params_t *p, const int8_t *input, int8_t *output)
{
    int32_t b, oy, ox, c, y, x;
    for (b = 0; b < p->batches; ++b) {
        const int8_t *in_b = input + b * p->input_h * p->input_w * p->channels;
        for (oy = 0; oy < p->output_h; ++oy) {
            const int32_t y0 = oy * p->stride_h - p->pad_h;
            const int32_t ys = TSM_MAX(0, -y0);
            const int32_t ye = TSM_MIN(p->filter_h, p->input_h - y0);
            for (ox = 0; ox < p->output_w; ++ox) {
                const int32_t x0 = ox * p->stride_w - p->pad_w;
                const int32_t xs = TSM_MAX(0, -x0);
                const int32_t xe = TSM_MIN(p->filter_w, p->input_w - x0);
                const int32_t count = (ye - ys) * (xe - xs);
                for (c = 0; c < p->channels; ++c) {
                    int32_t acc = 0;
                    for (y = ys; y < ye; ++y) {
                        for (x = xs; x < xe; ++x) {
                            acc += in_b[((y0 + y) * p->input_w + (x0 + x)) * p->channels + c];
                        }
                    }
                    if (count > 0) {
                        acc = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
                    }
                    *output++ = (int8_t)tsm_clamp(acc, p->activation_min, p->activation_max);
                }
            }
        }
    }
}

/* acc / count rounded half away from zero, as the reference divides. */
static inline int32_t tsm_avg_div(int32_t acc, int32_t count)
{
    return acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
}

/* The "x4" variant (at least 4 channels, at most 256 taps per window): 4 channels per
 * word, summed two per register as int16 halves (SXTAB16; |sum| <= 128 * 256 fits), then
 * divided per lane and stored as one word. When the channels are not a multiple of 4 the
 * last group is the last four channels, overlapping the group before (those lanes are
 * computed twice, to the same bytes). In place this is safe: window_lead keeps all of
 * pixel P's output below every input byte that P's window and the later ones read,
 * whatever the order of P's writes. Windows two and three taps wide (the pools Keras
 * builds) take unrolled rows. */
void tsm_average_pool2d_x4(const tsm_pool_params_t *p, const int8_t *input, int8_t *output)
{
    const int32_t ch = p->channels;
    const int32_t last = ch - 4;
    const int32_t row = p->input_w * ch;
    const uint32_t lo4 = (uint32_t)(uint8_t)(int8_t)p->activation_min * 0x01010101u;
    const uint32_t hi4 = (uint32_t)(uint8_t)(int8_t)p->activation_max * 0x01010101u;
    int32_t b, oy, ox, c, y, x;
    for (b = 0; b < p->batches; ++b) {
        const int8_t *in_b = input + b * p->input_h * row;
        for (oy = 0; oy < p->output_h; ++oy) {
            const int32_t y0 = oy * p->stride_h - p->pad_h;
            const int32_t ys = TSM_MAX(0, -y0);
            const int32_t ny = TSM_MIN(p->filter_h, p->input_h - y0) - ys;
            for (ox = 0; ox < p->output_w; ++ox, output += ch) {
                const int32_t x0 = ox * p->stride_w - p->pad_w;
                const int32_t xs = TSM_MAX(0, -x0);
                const int32_t nx = TSM_MIN(p->filter_w, p->input_w - x0) - xs;
                const int32_t count = ny * nx;
                const int8_t *win = in_b + (y0 + ys) * row + (x0 + xs) * ch;
                for (c = 0; c < ch; c += 4) {
                    const int32_t g = TSM_MIN(c, last);
                    uint32_t s02 = 0, s13 = 0, v, w;
                    const int8_t *r = win + g;
                    if (nx == 3) {
                        for (y = 0; y < ny; ++y, r += row) {
                            w = tsm_read_u32(r);
                            s02 = tsm_sxtab16(s02, w);
                            s13 = tsm_sxtab16_ror8(s13, w);
                            w = tsm_read_u32(r + ch);
                            s02 = tsm_sxtab16(s02, w);
                            s13 = tsm_sxtab16_ror8(s13, w);
                            w = tsm_read_u32(r + 2 * ch);
                            s02 = tsm_sxtab16(s02, w);
                            s13 = tsm_sxtab16_ror8(s13, w);
                        }
                    } else if (nx == 2) {
                        for (y = 0; y < ny; ++y, r += row) {
                            w = tsm_read_u32(r);
                            s02 = tsm_sxtab16(s02, w);
                            s13 = tsm_sxtab16_ror8(s13, w);
                            w = tsm_read_u32(r + ch);
                            s02 = tsm_sxtab16(s02, w);
                            s13 = tsm_sxtab16_ror8(s13, w);
                        }
                    } else {
                        for (y = 0; y < ny; ++y, r += row) {
                            const int8_t *px = r;
                            for (x = 0; x < nx; ++x, px += ch) {
                                w = tsm_read_u32(px);
                                s02 = tsm_sxtab16(s02, w);
                                s13 = tsm_sxtab16_ror8(s13, w);
                            }
                        }
                    }
                    if (count > 0) {
                        v = tsm_pack_s8x4(tsm_avg_div((int16_t)(s02 & 0xFFFFu), count),
                                          tsm_avg_div((int16_t)(s13 & 0xFFFFu), count),
                                          tsm_avg_div((int16_t)(s02 >> 16), count),
                                          tsm_avg_div((int16_t)(s13 >> 16), count));
                    } else {
                        v = 0;
                    }
                    tsm_write_u32(output + g, tsm_min_s8x4(tsm_max_s8x4(v, lo4), hi4));
                }
            }
        }
    }
}

/* One to three channels (ch, a constant in each copy): each pixel's window walked once,
 * every channel of a tap summed together, instead of once per channel with the index
 * worked out per tap. A pixel's reads all come before its writes, as window_lead
 * assumes. */
static inline __attribute__((always_inline)) void
tsm_average_pool2d_narrow_ch(const tsm_pool_params_t *p, const int8_t *input, int8_t *output,
                             const int32_t ch)
{
    const int32_t row = p->input_w * ch;
    const int32_t lo = p->activation_min, hi = p->activation_max;
    int32_t b, oy, ox, y, x;
    for (b = 0; b < p->batches; ++b) {
        const int8_t *in_b = input + b * p->input_h * row;
        for (oy = 0; oy < p->output_h; ++oy) {
            const int32_t y0 = oy * p->stride_h - p->pad_h;
            const int32_t ys = TSM_MAX(0, -y0);
            const int32_t ny = TSM_MIN(p->filter_h, p->input_h - y0) - ys;
            for (ox = 0; ox < p->output_w; ++ox, output += ch) {
                const int32_t x0 = ox * p->stride_w - p->pad_w;
                const int32_t xs = TSM_MAX(0, -x0);
                const int32_t nx = TSM_MIN(p->filter_w, p->input_w - x0) - xs;
                const int32_t count = ny * nx;
                const int8_t *r = in_b + (y0 + ys) * row + (x0 + xs) * ch;
                int32_t s0 = 0, s1 = 0, s2 = 0;
                for (y = 0; y < ny; ++y, r += row) {
                    const int8_t *q = r;
                    for (x = 0; x < nx; ++x, q += ch) {
                        s0 += q[0];
                        if (ch > 1) {
                            s1 += q[1];
                        }
                        if (ch > 2) {
                            s2 += q[2];
                        }
                    }
                }
                if (count > 0) {
                    s0 = tsm_avg_div(s0, count);
                    s1 = tsm_avg_div(s1, count);
                    s2 = tsm_avg_div(s2, count);
                }
                output[0] = (int8_t)tsm_clamp(s0, lo, hi);
                if (ch > 1) {
                    output[1] = (int8_t)tsm_clamp(s1, lo, hi);
                }
                if (ch > 2) {
                    output[2] = (int8_t)tsm_clamp(s2, lo, hi);
                }
            }
        }
    }
}

void tsm_average_pool2d_narrow(const tsm_pool_params_t *p, const int8_t *input, int8_t *output)
{
    if (p->channels == 1) {
        tsm_average_pool2d_narrow_ch(p, input, output, 1);
    } else if (p->channels == 2) {
        tsm_average_pool2d_narrow_ch(p, input, output, 2);
    } else {
        tsm_average_pool2d_narrow_ch(p, input, output, 3);
    }
}
