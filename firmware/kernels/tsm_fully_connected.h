#ifndef TSM_FULLY_CONNECTED_H
#define TSM_FULLY_CONNECTED_H

#include <stdint.h>

typedef struct {
    int32_t batches;
    int32_t input_depth;
    int32_t output_depth;
    int32_t input_offset;
    int32_t output_offset;
    int32_t activation_min, activation_max;
    int32_t per_channel; /* 1: one multiplier per output unit, 0: one for all */
    const int8_t *filter; /* [output_depth][input_depth] */
    const int32_t *bias;
    const int32_t *output_multiplier;
    const int32_t *output_shift;
} tsm_fully_connected_params_t;

void tsm_fully_connected(const tsm_fully_connected_params_t *p, const int8_t *input,
                         int8_t *output);

#endif
