#ifndef TSM_MEAN_H
#define TSM_MEAN_H

#include <stdint.h>

typedef struct {
    int32_t batches;
    int32_t input_h, input_w, channels;
    int32_t input_zero_point;
    int32_t output_zero_point;
    int32_t output_multiplier; /* input_scale / output_scale / (input_h * input_w), Q31 */
    int32_t output_shift;
} tsm_mean_params_t;

/* Mean over H and W of an NHWC tensor; output [batches][channels]. */
void tsm_mean(const tsm_mean_params_t *p, const int8_t *input, int8_t *output);

#endif
