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
    int32_t dilation_h, dilation_w; /* tap k of a window is k * dilation from its first */
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

/* The "3x3" variant (3x3 filter, depth multiplier 1): four channels per word, each tap's
 * input word split by SXTB16 into channels (0, 2) and (1, 3) and multiplied against
 * compile-time int16 pairs (SMLABB / SMLATT), the input zero point folded into the bias
 * and the output offset into the requantization (tsm_requantize_rs). A border pixel's
 * window is first copied to scratch with the zero point outside the input. Channels past
 * the last multiple of 4 take a scalar loop. */
typedef struct {
    int32_t batches;
    int32_t input_h, input_w, channels;
    int32_t output_h, output_w;
    int32_t stride_h, stride_w;
    int32_t pad_h, pad_w;
    int32_t input_offset; /* -input_zero_point */
    int32_t output_offset;
    int32_t activation_min, activation_max;
    /* per group of 4 channels, for each tap 0..8 (row by row): the int16 pairs
     * (w_c0, w_c2) and (w_c1, w_c3) */
    const uint32_t *filter_words;
    const int8_t *filter; /* [channels][9], taps row by row */
    /* per channel: bias + input_offset * sum(filter[c]), output_multiplier, then either
     * 2^(e-1) + output_offset * 2^e and e >= 1 (tsm_requantize_rs, the same for all 4
     * channels of a group), or the signed shift and 0 (tsm_requantize_q31 + offset) */
    const int32_t *channel_params;
} tsm_depthwise_conv2d_3x3_params_t;

/* scratch: 9 * channels bytes (a border window), placed by the memory planner */
void tsm_depthwise_conv2d_3x3(const tsm_depthwise_conv2d_3x3_params_t *p, const int8_t *input,
                              int8_t *output, int8_t *scratch);

/* The "kxk" variant: any other filter (5x5, 7x7, 1xN, Nx1, 10x8, ...) or a dilated one,
 * or a depth multiplier above 1 (each window then copied with every input byte repeated
 * for its output channels); the 3x3 variant's arithmetic (4 channels per word, SXTB16 and
 * SMLABB / SMLATT against compile-time int16 pairs, the input zero point folded into the
 * bias, tsm_requantize_rs where it applies) over a window walked as runs of taps: a row of
 * filter_w taps channels bytes apart, or for an Nx1 filter one run of its filter_h taps a
 * row apart. Border windows are copied to scratch, zero-point padded, first. */
typedef struct {
    int32_t batches;
    int32_t input_h, input_w, channels; /* channels: the output's */
    int32_t output_h, output_w;
    int32_t filter_h, filter_w;
    int32_t dilation_h, dilation_w;
    int32_t depth_multiplier; /* the input has channels / depth_multiplier */
    int32_t stride_h, stride_w;
    int32_t pad_h, pad_w;
    int32_t input_offset; /* -input_zero_point */
    int32_t output_offset;
    int32_t activation_min, activation_max;
    /* per group of 4 channels, for each tap (row by row): the int16 pairs (w_c0, w_c2)
     * and (w_c1, w_c3) */
    const uint32_t *filter_words;
    const int8_t *filter; /* [channels][filter_h * filter_w], taps row by row */
    /* as the 3x3 variant's (folded bias, multiplier, then 2^(e-1) + output_offset * 2^e
     * and e >= 1, or the signed shift and 0), laid out per group of 4 channels as [bias0..3,
     * then multiplier, add, e of each], then per channel past the last group [bias,
     * multiplier, add, e] */
    const int32_t *channel_params;
} tsm_depthwise_conv2d_kxk_params_t;

/* scratch: filter_h * filter_w * channels bytes (a copied window), placed by the planner */
void tsm_depthwise_conv2d_kxk(const tsm_depthwise_conv2d_kxk_params_t *p, const int8_t *input,
                              int8_t *output, int8_t *scratch);

#endif
