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

/* The "3x3" variant (3x3 filter, depth multiplier 1): four channels per word, taps paired
 * (t, t+1) into int16 pairs for SMLAD against compile-time packed weights, the input zero
 * point folded into the bias. A border pixel's window is first copied to scratch with the
 * zero point outside the input. Channels past the last multiple of 4 take a scalar loop. */
typedef struct {
    int32_t batches;
    int32_t input_h, input_w, channels;
    int32_t output_h, output_w;
    int32_t stride_h, stride_w;
    int32_t pad_h, pad_w;
    int32_t input_offset; /* -input_zero_point */
    int32_t output_offset;
    int32_t activation_min, activation_max;
    /* per group of 4 channels: for each tap pair (0,1) (2,3) (4,5) (6,7), channel 0..3's
     * int16 pair (w_t, w_t+1); then tap 8 as (ch0, ch2) and (ch1, ch3) int16 pairs */
    const uint32_t *filter_words;
    const int8_t *filter; /* [channels][9], taps row by row */
    const int32_t *bias;  /* bias + input_offset * sum(filter[c]) */
    const int32_t *output_multiplier;
    const int32_t *output_shift;
} tsm_depthwise_conv2d_3x3_params_t;

/* scratch: 9 * channels bytes (a border window), placed by the memory planner */
void tsm_depthwise_conv2d_3x3(const tsm_depthwise_conv2d_3x3_params_t *p, const int8_t *input,
                              int8_t *output, int8_t *scratch);

#endif
