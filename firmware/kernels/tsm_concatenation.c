#include "tsm_concatenation.h"

void tsm_concatenation(const tsm_concatenation_params_t *p, const int8_t *input,
                       int8_t *output)
{
    int32_t o, i;
    for (o = 0; o < p->outer; ++o) {
        int8_t *dst = output + o * p->output_chunk + p->output_offset;
        const int8_t *src = input + o * p->input_chunk;
        for (i = 0; i < p->input_chunk; ++i) {
            dst[i] = src[i];
        }
    }
}
