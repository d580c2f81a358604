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

/* The "tiled" variant: each output pixel's window is gathered into an int16 column
 * (padding holds the input zero point, whose effect the compiler folded into the bias),
 * then 2 pixels x 2 output channels are accumulated together, two MACs per SMLAD on a
 * DSP core. The compiler lays the filter out for it. */
typedef struct {
    int32_t batches;
    int32_t input_h, input_w, input_c;
    int32_t output_h, output_w, output_c;
    int32_t filter_h, filter_w;
    int32_t stride_h, stride_w;
    int32_t pad_h, pad_w;
    int32_t depth; /* filter_h * window_row rounded up to a multiple of 4 */
    /* bytes per gathered window row: filter_w * input_c, or one more for a single-channel
     * row of 3 (7, ...) taps, read as whole words against a zero weight */
    int32_t window_row;
    int32_t input_zero_point;
    int32_t output_offset;
    int32_t activation_min, activation_max;
    /* words: for each pair of output channels, for each group of 4 taps, channel oc's 4
     * bytes then oc + 1's (zero for an odd last channel), each stored w0 w2 w1 w3 */
    const uint32_t *filter;
    const int32_t *bias;  /* bias - input_zero_point * sum(filter[oc]) */
    const int32_t *output_multiplier;
    const int32_t *output_shift;
    /* NULL, or where tsm_requantize_rs applies to every channel (right shifts 1..22, an
     * accumulator below 2^30): per pair of output channels (the odd last one repeated)
     * [bias0, bias1, multiplier0, multiplier1, add0, add1, e0, e1], add = 2^(e-1) +
     * output_offset * 2^e, read instead of bias / output_multiplier / output_shift */
    const int32_t *output_add;
} tsm_conv2d_tiled_params_t;

/* scratch: depth words (two interleaved int16 columns), then filter_h * window_row bytes
 * (a border window), placed by the memory planner */
void tsm_conv2d_tiled(const tsm_conv2d_tiled_params_t *p, const int8_t *input, int8_t *output,
                      uint32_t *scratch);

/* The "tiled16" variant: the same, with the filter stored as int16 pairs (twice the
 * flash, no SXTB16 in the inner loop): for each pair of output channels and group of 4
 * taps, [channel 0 taps 0-1, channel 1 taps 0-1, channel 0 taps 2-3, channel 1 taps 2-3]. */
void tsm_conv2d_tiled16(const tsm_conv2d_tiled_params_t *p, const int8_t *input,
                        int8_t *output, uint32_t *scratch);

#endif
