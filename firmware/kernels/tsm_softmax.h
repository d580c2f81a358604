#ifndef TSM_SOFTMAX_H
#define TSM_SOFTMAX_H

#include <stdint.h>

typedef struct {
    int32_t rows;               /* product of all dimensions but the last */
    int32_t depth;              /* last dimension, the one normalised (at most 511) */
    const int32_t *exp_table;   /* [256] exp(beta * input_scale * -d) in Q0 for d = max - x;
                                   0 below the reference's diff_min */
} tsm_softmax_params_t;

/* Output scale 1/256, zero point -128. A row's maximum and sum are taken before any of it
 * is written, and each value is read before its output is stored, so input and output
 * may be the same buffer. */
void tsm_softmax(const tsm_softmax_params_t *p, const int8_t *input, int8_t *output);

#endif
