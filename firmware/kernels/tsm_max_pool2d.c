#include "tsm_max_pool2d.h"

#include "tsm_common.h"
#include "tsm_dsp.h"

/* The window is clipped to the input: padding never wins the max. */
void tsm_max_pool2d(const tsm_pool_params_t *p, const int8_t *input, int8_t *output)
{
    int32_t b, oy, ox, c, y, x;
    for (b = 0; b < p->batches; ++b) {
        const int8_t *in_b = input + b * p->input_h * p->input_w * p->channels;
        for (oy = 0; oy < p->output_h; ++oy) {
            const int32_t y0 = oy * p->stride_h - p->pad_h;
            const int32_t ys = TSM_MAX(0, -y0);
            const int32_t ye = TSM_MIN(p->filter_h, p->input_h - y0);
            for (ox = 0; ox < p->output_w; ++ox) {
                const int32_t x0 = ox * p->stride_w - p->pad_w;
                const int32_t xs = TSM_MAX(0, -x0);
                const int32_t xe = TSM_MIN(p->filter_w, p->input_w - x0);
                for (c = 0; c < p->channels; ++c) {
                    int32_t best = -128;
                    for (y = ys; y < ye; ++y) {
                        for (x = xs; x < xe; ++x) {
                            const int32_t v =
                                in_b[((y0 + y) * p->input_w + (x0 + x)) * p->channels + c];
                            best = TSM_MAX(best, v);
                        }
                    }
                    *output++ = (int8_t)tsm_clamp(best, p->activation_min, p->activation_max);
                }
            }
        }
    }
}

static uint32_t tsm_splat_s8(int32_t v)
{
    return (uint32_t)(uint8_t)(int8_t)v * 0x01010101u;
}

/* The 2x2 window at stride 2 without padding (what MaxPooling2D(2) gives): four words per
 * four channels, no clipping. */
static void tsm_max_pool2d_x4_2x2(const tsm_pool_params_t *p, const int8_t *input,
                                  int8_t *output)
{
    const uint32_t lo = tsm_splat_s8(p->activation_min);
    const uint32_t hi = tsm_splat_s8(p->activation_max);
    const int32_t ch = p->channels;
    const int32_t row = p->input_w * ch;
    int32_t b, oy, ox, c;
    for (b = 0; b < p->batches; ++b) {
        const int8_t *in_b = input + b * p->input_h * row;
        for (oy = 0; oy < p->output_h; ++oy) {
            const int8_t *top = in_b + 2 * oy * row;
            for (ox = 0; ox < p->output_w; ++ox, top += 2 * ch) {
                for (c = 0; c < ch; c += 4, output += 4) {
                    const uint32_t a =
                        tsm_max_s8x4(tsm_read_u32(top + c), tsm_read_u32(top + ch + c));
                    const uint32_t d = tsm_max_s8x4(tsm_read_u32(top + row + c),
                                                    tsm_read_u32(top + row + ch + c));
                    const uint32_t m = tsm_max_s8x4(a, d);
                    tsm_write_u32(output, tsm_min_s8x4(tsm_max_s8x4(m, lo), hi));
                }
            }
        }
    }
}

void tsm_max_pool2d_x4(const tsm_pool_params_t *p, const int8_t *input, int8_t *output)
{
    const uint32_t lo = tsm_splat_s8(p->activation_min);
    const uint32_t hi = tsm_splat_s8(p->activation_max);
    const int32_t row = p->input_w * p->channels;
    int32_t b, oy, ox, c, y, x;
    if (p->filter_h == 2 && p->filter_w == 2 && p->stride_h == 2 && p->stride_w == 2 &&
        p->pad_h == 0 && p->pad_w == 0 && 2 * p->output_h <= p->input_h &&
        2 * p->output_w <= p->input_w) {
        tsm_max_pool2d_x4_2x2(p, input, output);
        return;
    }
    for (b = 0; b < p->batches; ++b) {
        const int8_t *in_b = input + b * p->input_h * row;
        for (oy = 0; oy < p->output_h; ++oy) {
            const int32_t y0 = oy * p->stride_h - p->pad_h;
            const int32_t ys = TSM_MAX(0, -y0);
            const int32_t ye = TSM_MIN(p->filter_h, p->input_h - y0);
            for (ox = 0; ox < p->output_w; ++ox) {
                const int32_t x0 = ox * p->stride_w - p->pad_w;
                const int32_t xs = TSM_MAX(0, -x0);
                const int32_t xe = TSM_MIN(p->filter_w, p->input_w - x0);
                const int32_t corner = (y0 * p->input_w + x0) * p->channels;
                for (c = 0; c < p->channels; c += 4) {
                    /* -128 in every lane: what an empty window gives, as the generic kernel */
                    uint32_t best = 0x80808080u;
                    for (y = ys; y < ye; ++y) {
                        for (x = xs; x < xe; ++x) {
                            best = tsm_max_s8x4(
                                best, tsm_read_u32(in_b + corner + y * row + x * p->channels + c));
                        }
                    }
                    tsm_write_u32(output, tsm_min_s8x4(tsm_max_s8x4(best, lo), hi));
                    output += 4;
                }
            }
        }
    }
}
