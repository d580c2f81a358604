#include "tsm_average_pool2d.h"

#include "tsm_common.h"

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
