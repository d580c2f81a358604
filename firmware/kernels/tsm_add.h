#ifndef TSM_ADD_H
#define TSM_ADD_H

#include <stdint.h>

#include "tsm_broadcast.h"

typedef struct {
    tsm_broadcast_t shape;
    int32_t left_shift;
    int32_t input1_offset, input2_offset; /* -zero_point */
    int32_t input1_multiplier, input1_shift;
    int32_t input2_multiplier, input2_shift;
    int32_t output_multiplier, output_shift;
    int32_t output_offset;
    int32_t activation_min, activation_max;
    const int8_t *input1_const; /* non-NULL when that operand is a constant */
    const int8_t *input2_const;
    /* the "table" variant only: each operand's rescaled value for its 256 int8 codes,
     * computed by the compiler; flat when neither operand is broadcast */
    const int32_t *input1_table;
    const int32_t *input2_table;
    int32_t flat;
} tsm_add_params_t;

void tsm_add(const tsm_add_params_t *p, const int8_t *input1, const int8_t *input2,
             int8_t *output);

void tsm_add_table(const tsm_add_params_t *p, const int8_t *input1, const int8_t *input2,
                   int8_t *output);

#endif
