#include "tsm_fully_connected.h"

#include "tsm_common.h"

void tsm_fully_connected(const tsm_fully_connected_params_t *p, const int8_t *input,
                         int8_t *output)
{
    int32_t b, o, i;
    for (b = 0; b < p->batches; ++b) {
        const int8_t *x = input + b * p->input_depth;
        for (o = 0; o < p->output_depth; ++o) {
            const int8_t *w = p->filter + o * p->input_depth;
            const int32_t c = p->per_channel ? o : 0;
            int32_t acc = 0;
            /* int32 holds 65536 products of 255 * 128 before it could overflow */
            for (i = 0; i < p->input_depth; ++i) {
                acc += ((int32_t)x[i] + p->input_offset) * (int32_t)w[i];
            }
            if (p->bias) {
                acc += p->bias[o];
            }
            acc = tsm_requantize_single(acc, p->output_multiplier[c], p->output_shift[c]);
            acc += p->output_offset;
            output[b * p->output_depth + o] =
                (int8_t)tsm_clamp(acc, p->activation_min, p->activation_max);
        }
    }
}
