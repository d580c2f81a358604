#include "tsm_fully_connected.h"

#include "tsm_common.h"
#include "tsm_dsp.h"

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

void tsm_fully_connected_x4(const tsm_fully_connected_x4_params_t *p, const int8_t *input,
                            int8_t *output)
{
    /* the parameters as locals: through p, every int8 store (which may alias anything)
     * would force them to be loaded again */
    const int32_t depth = p->input_depth;
    const int32_t d4 = depth & ~3;
    const int32_t out_depth = p->output_depth;
    const int32_t offset = p->output_offset;
    const int32_t lo = p->activation_min, hi = p->activation_max;
    const int32_t step = p->per_channel ? 1 : 0;
    const int32_t *const bias = p->bias;
    const int32_t *const mult = p->output_multiplier;
    const int32_t *const shift = p->output_shift;
    int32_t b, o, i;
    for (b = 0; b < p->batches; ++b) {
        const int8_t *x = input + b * depth;
        const int8_t *w = p->filter;
        int8_t *out = output + b * out_depth;
        for (o = 0; o < out_depth; ++o, w += depth) {
            const int32_t c = o * step;
            int32_t acc = bias[o];
            for (i = 0; i < d4; i += 4) {
                const uint32_t xv = tsm_read_u32(x + i);
                const uint32_t wv = tsm_read_u32(w + i);
                acc = tsm_smlad(tsm_sxtb16(xv), tsm_sxtb16(wv), acc);
                acc = tsm_smlad(tsm_sxtb16_ror8(xv), tsm_sxtb16_ror8(wv), acc);
            }
            for (; i < depth; ++i) {
                acc += (int32_t)x[i] * (int32_t)w[i];
            }
            acc = tsm_requantize_single(acc, mult[c], shift[c]) + offset;
            out[o] = (int8_t)tsm_clamp(acc, lo, hi);
        }
    }
}
