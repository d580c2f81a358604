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
