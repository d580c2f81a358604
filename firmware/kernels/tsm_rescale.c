#include "tsm_rescale.h"

#include "tsm_common.h"

/* In-place safe: element i is read before it is written. */
void tsm_rescale(const tsm_rescale_params_t *p, const int8_t *input, int8_t *output)
{
    int32_t i;
    for (i = 0; i < p->size; ++i) {
        const int32_t x = (int32_t)input[i] - p->input_zero_point;
        const int32_t y = p->output_zero_point +
                          tsm_requantize(x, p->output_multiplier, p->output_shift);
        output[i] = (int8_t)tsm_clamp(y, p->activation_min, p->activation_max);
    }
}
