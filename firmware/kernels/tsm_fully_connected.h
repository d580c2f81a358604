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
 * and 2, and with ROR 8 bytes 1 and 3, pair up as they are) into two SMLADs, for four
 * output units at a time: each input word is loaded and widened once for the four. The
 * input zero point is folded into the bias at compile time, and the weights are stored in
 * the order the kernel reads them (interleave_rows in compiler/ops/fully_connected.py):
 * per block of four output units, each four-column word of the four rows in turn, then
 * the block's last input_depth % 4 columns row after row; then, when two or three units
 * are left, the first two as a block of two, the same way; the last unit as it is. */
typedef struct {
    int32_t batches;
    int32_t input_depth;
    int32_t output_depth;
    int32_t output_offset;
    int32_t activation_min, activation_max;
    int32_t per_channel;
    const int8_t *filter; /* output_depth * input_depth, in the order above */
    const int32_t *bias;  /* bias - input_zero_point * sum(filter[o]), per output unit */
    const int32_t *output_multiplier;
    const int32_t *output_shift;
} tsm_fully_connected_x4_params_t;

void tsm_fully_connected_x4(const tsm_fully_connected_x4_params_t *p, const int8_t *input,
                            int8_t *output);

#endif
