#include "tsm_conv2d.h"

#include "tsm_common.h"

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
