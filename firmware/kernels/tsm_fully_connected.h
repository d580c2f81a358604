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

/* The "x4" variant: four inputs per word, SXTB16 on the input and weight words (bytes 0
 * and 2, and with ROR 8 bytes 1 and 3, pair up as they are: no reordering) into two
 * SMLADs, the input zero point folded into the bias at compile time. */
typedef struct {
    int32_t batches;
    int32_t input_depth;
    int32_t output_depth;
    int32_t output_offset;
    int32_t activation_min, activation_max;
    int32_t per_channel;
    const int8_t *filter; /* [output_depth][input_depth] */
    const int32_t *bias;  /* bias - input_zero_point * sum(filter[o]), per output unit */
    const int32_t *output_multiplier;
    const int32_t *output_shift;
} tsm_fully_connected_x4_params_t;

void tsm_fully_connected_x4(const tsm_fully_connected_x4_params_t *p, const int8_t *input,
                            int8_t *output);

#endif
