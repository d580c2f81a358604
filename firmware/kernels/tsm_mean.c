#include "tsm_mean.h"

#include "tsm_common.h"

/* The reference sums raw bytes in int32 and subtracts zero_point * count afterwards,
 * which equals summing (x - zero_point); 255 * H * W stays far below 2^31 for any image
 * that fits a microcontroller. The 1/count is folded into output_multiplier at compile
 * time, exactly as the reference folds it, so one requantization does the division. */
void tsm_mean(const tsm_mean_params_t *p, const int8_t *input, int8_t *output)
{
    const int32_t count = p->input_h * p->input_w;
    int32_t b, i, c;
    for (b = 0; b < p->batches; ++b) {
        const int8_t *in_b = input + b * count * p->channels;
        for (c = 0; c < p->channels; ++c) {
            int32_t acc = 0;
            for (i = 0; i < count; ++i) {
                acc += (int32_t)in_b[i * p->channels + c] - p->input_zero_point;
            }
            acc = tsm_requantize(acc, p->output_multiplier, p->output_shift);
            acc += p->output_zero_point;
            output[b * p->channels + c] = (int8_t)tsm_clamp(acc, -128, 127);
        }
    }
}
