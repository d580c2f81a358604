#ifndef TSM_DEPTHWISE_CONV2D_H
#define TSM_DEPTHWISE_CONV2D_H

#include <stdint.h>

typedef struct {
    int32_t batches;
    int32_t input_h, input_w, input_c;
    int32_t output_h, output_w, output_c; /* output_c = input_c * depth_multiplier */
    int32_t filter_h, filter_w;
    int32_t stride_h, stride_w;
    int32_t pad_h, pad_w;
    int32_t depth_multiplier;
    int32_t input_offset;
    int32_t output_offset;
    int32_t activation_min, activation_max;
    const int8_t *filter; /* [filter_h][filter_w][output_c] */
    const int32_t *bias;
    const int32_t *output_multiplier;
    const int32_t *output_shift;
} tsm_depthwise_conv2d_params_t;

void tsm_depthwise_conv2d(const tsm_depthwise_conv2d_params_t *p, const int8_t *input,
                          int8_t *output);

/* The "3x3" variant (3x3 filter, depth multiplier 1), same params with another layout:
 * filter is [channel][9] (taps row by row), bias is bias - input_zero_point * sum(filter)
 * (input_offset still says -input_zero_point: padded taps read the zero point). Interior
 * pixels take a loop without bounds checks. */
void tsm_depthwise_conv2d_3x3(const tsm_depthwise_conv2d_params_t *p, const int8_t *input,
                              int8_t *output);

#endif
