#ifndef TSM_RESCALE_H
#define TSM_RESCALE_H

#include <stdint.h>

/* y = clamp(output_zero_point + (x - input_zero_point) * multiplier * 2^shift): RELU and
 * RELU6 (a clamp at the quantized 0 and 6) and int8 -> int8 QUANTIZE. */
typedef struct {
    int32_t size;
    int32_t input_zero_point;
    int32_t output_zero_point;
    int32_t output_multiplier, output_shift;
    int32_t activation_min, activation_max;
} tsm_rescale_params_t;

void tsm_rescale(const tsm_rescale_params_t *p, const int8_t *input, int8_t *output);

#endif
