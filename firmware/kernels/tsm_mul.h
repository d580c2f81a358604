#ifndef TSM_MUL_H
#define TSM_MUL_H

#include <stdint.h>

#include "tsm_broadcast.h"

typedef struct {
    tsm_broadcast_t shape;
    int32_t input1_offset, input2_offset; /* -zero_point */
    int32_t output_multiplier, output_shift;
    int32_t output_offset;
    int32_t activation_min, activation_max;
    const int8_t *input1_const;
    const int8_t *input2_const;
} tsm_mul_params_t;

void tsm_mul(const tsm_mul_params_t *p, const int8_t *input1, const int8_t *input2,
             int8_t *output);

#endif
