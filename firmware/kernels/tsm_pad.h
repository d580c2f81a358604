#ifndef TSM_PAD_H
#define TSM_PAD_H

#include <stdint.h>

typedef struct {
    int32_t input_dims[4];  /* padded with leading ones */
    int32_t output_dims[4];
    int32_t pad_before[4];
    int32_t pad_value; /* the output zero point: padding reads as real 0 */
} tsm_pad_params_t;

void tsm_pad(const tsm_pad_params_t *p, const int8_t *input, int8_t *output);

#endif
