#ifndef TSM_CONV2D_H
#define TSM_CONV2D_H

#include <stdint.h>

typedef struct {
    int32_t batches;
    int32_t input_h, input_w, input_c;
    int32_t output_h, output_w, output_c;
    int32_t filter_h, filter_w;
    int32_t stride_h, stride_w;
    int32_t pad_h, pad_w;
    int32_t input_offset;  /* -input_zero_point */
    int32_t output_offset; /* output_zero_point */
    int32_t activation_min, activation_max;
    const int8_t *filter;  /* [output_c][filter_h][filter_w][input_c] */
    const int32_t *bias;   /* [output_c] */
    const int32_t *output_multiplier; /* per output channel */
    const int32_t *output_shift;
} tsm_conv2d_params_t;

void tsm_conv2d(const tsm_conv2d_params_t *p, const int8_t *input, int8_t *output);

#endif
