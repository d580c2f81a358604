/* Parameters shared by the pooling kernels. */
#ifndef TSM_POOL_H
#define TSM_POOL_H

#include <stdint.h>

typedef struct {
    int32_t batches;
    int32_t input_h, input_w, channels;
    int32_t output_h, output_w;
    int32_t filter_h, filter_w;
    int32_t stride_h, stride_w;
    int32_t pad_h, pad_w;
    int32_t activation_min, activation_max;
} tsm_pool_params_t;

#endif
