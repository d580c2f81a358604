#ifndef TSM_LOGISTIC_H
#define TSM_LOGISTIC_H

#include <stdint.h>

typedef struct {
    int32_t size;        /* elements */
    const int8_t *table; /* [256] sigmoid output for input byte + 128, built on the host */
} tsm_logistic_params_t;

/* Elementwise, so input and output may be the same buffer. */
void tsm_logistic(const tsm_logistic_params_t *p, const int8_t *input, int8_t *output);

#endif
