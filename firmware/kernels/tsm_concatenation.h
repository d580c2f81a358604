#ifndef TSM_CONCATENATION_H
#define TSM_CONCATENATION_H

#include <stdint.h>

/* One call per input: copies that input's slices into their place in the output. */
typedef struct {
    int32_t outer;         /* product of the dimensions before the axis */
    int32_t input_chunk;   /* this input's elements per outer index */
    int32_t output_chunk;  /* the output's elements per outer index */
    int32_t output_offset; /* where this input's chunk starts inside the output's */
} tsm_concatenation_params_t;

void tsm_concatenation(const tsm_concatenation_params_t *p, const int8_t *input,
                       int8_t *output);

#endif
