#include "tsm_depthwise_conv2d.h"

#include "tsm_common.h"

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

static inline int8_t tsm_depthwise_out(const tsm_depthwise_conv2d_params_t *p, int32_t acc,
                                       int32_t c)
{
    acc = tsm_requantize_q31(acc, p->output_multiplier[c], p->output_shift[c]);
    acc += p->output_offset;
    acc = TSM_MAX(acc, p->activation_min);
    return (int8_t)TSM_MIN(acc, p->activation_max);
}

/* Pixels in raster order, all channels of a pixel after its reads of them: the order the
 * planner's in-place proof assumes. */
void tsm_depthwise_conv2d_3x3(const tsm_depthwise_conv2d_params_t *p, const int8_t *input,
                              int8_t *output)
{
    const int32_t ch = p->input_c;
    const int32_t ch2 = 2 * ch;
    const int32_t row = p->input_w * ch;
    const int32_t zero_point = -p->input_offset;
    int32_t b, oy, ox, c, ky, kx;
    for (b = 0; b < p->batches; ++b) {
        const int8_t *in_b = input + b * p->input_h * row;
        for (oy = 0; oy < p->output_h; ++oy) {
            const int32_t iy0 = oy * p->stride_h - p->pad_h;
            const int32_t y_inside = iy0 >= 0 && iy0 + 3 <= p->input_h;
            for (ox = 0; ox < p->output_w; ++ox) {
                const int32_t ix0 = ox * p->stride_w - p->pad_w;
                const int8_t *w = p->filter;
                if (y_inside && ix0 >= 0 && ix0 + 3 <= p->input_w) {
                    const int8_t *s0 = in_b + iy0 * row + ix0 * ch;
                    const int8_t *s1 = s0 + row;
                    const int8_t *s2 = s1 + row;
                    for (c = 0; c < ch; ++c, w += 9) {
                        int32_t acc = p->bias[c];
                        acc += s0[c] * w[0] + s0[c + ch] * w[1] + s0[c + ch2] * w[2];
                        acc += s1[c] * w[3] + s1[c + ch] * w[4] + s1[c + ch2] * w[5];
                        acc += s2[c] * w[6] + s2[c + ch] * w[7] + s2[c + ch2] * w[8];
                        *output++ = tsm_depthwise_out(p, acc, c);
                    }
                    continue;
                }
                /* border: a tap outside the input reads the zero point, which the folded
                 * bias cancels, as the reference skips it */
                for (c = 0; c < ch; ++c, w += 9) {
                    int32_t acc = p->bias[c];
                    for (ky = 0; ky < 3; ++ky) {
                        const int32_t iy = iy0 + ky;
                        for (kx = 0; kx < 3; ++kx) {
                            const int32_t ix = ix0 + kx;
                            const int32_t x = (iy < 0 || iy >= p->input_h || ix < 0 ||
                                               ix >= p->input_w)
                                                  ? zero_point
                                                  : in_b[iy * row + ix * ch + c];
                            acc += x * w[ky * 3 + kx];
                        }
                    }
                    *output++ = tsm_depthwise_out(p, acc, c);
                }
            }
        }
    }
}
