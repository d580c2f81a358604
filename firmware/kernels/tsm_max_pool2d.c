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

/* The max of a window's ny rows of nx taps (ch bytes apart, rows row bytes apart) for the
 * four channels at px; -128 in every lane when the window is empty, as the generic kernel.
 * Windows two and three taps wide (the pools Keras builds) take the unrolled rows. */
static inline uint32_t tsm_max_taps(const int8_t *px, int32_t ny, int32_t nx, int32_t ch,
                                    int32_t row)
{
    uint32_t best = 0x80808080u;
    int32_t y, x;
    if (nx == 3) {
        for (y = 0; y < ny; ++y, px += row) {
            best = tsm_max_s8x4(best, tsm_read_u32(px));
            best = tsm_max_s8x4(best, tsm_read_u32(px + ch));
            best = tsm_max_s8x4(best, tsm_read_u32(px + 2 * ch));
        }
    } else if (nx == 2) {
        for (y = 0; y < ny; ++y, px += row) {
            best = tsm_max_s8x4(best, tsm_read_u32(px));
            best = tsm_max_s8x4(best, tsm_read_u32(px + ch));
        }
    } else {
        for (y = 0; y < ny; ++y, px += row) {
            const int8_t *q = px;
            for (x = 0; x < nx; ++x, q += ch) {
                best = tsm_max_s8x4(best, tsm_read_u32(q));
            }
        }
    }
    return best;
}

/* The 2x2 window at stride 2 without padding (what MaxPooling2D(2) gives): four words per
 * four channels, no clipping. */
static void tsm_max_pool2d_x4_2x2(const tsm_pool_params_t *p, const int8_t *input,
                                  int8_t *output)
{
    const uint32_t lo = tsm_splat_s8(p->activation_min);
    const uint32_t hi = tsm_splat_s8(p->activation_max);
    const int32_t ch = p->channels;
    const int32_t last = ch - 4;
    const int32_t row = p->input_w * ch;
    int32_t b, oy, ox, c;
    for (b = 0; b < p->batches; ++b) {
        const int8_t *in_b = input + b * p->input_h * row;
        for (oy = 0; oy < p->output_h; ++oy) {
            const int8_t *top = in_b + 2 * oy * row;
            for (ox = 0; ox < p->output_w; ++ox, top += 2 * ch, output += ch) {
                for (c = 0; c < ch; c += 4) {
                    const int32_t g = TSM_MIN(c, last);
                    const uint32_t a =
                        tsm_max_s8x4(tsm_read_u32(top + g), tsm_read_u32(top + ch + g));
                    const uint32_t d = tsm_max_s8x4(tsm_read_u32(top + row + g),
                                                    tsm_read_u32(top + row + ch + g));
                    const uint32_t m = tsm_max_s8x4(a, d);
                    tsm_write_u32(output + g, tsm_min_s8x4(tsm_max_s8x4(m, lo), hi));
                }
            }
        }
    }
}

/* channels >= 4: four channels per word (SSUB8 + SEL per tap on a DSP core). When the
 * channels are not a multiple of 4 the last group is the last four channels, overlapping
 * the group before: those lanes are computed twice, to the same bytes. In place this is
 * still safe: window_lead keeps all of pixel P's output below every input byte that P's
 * window and the later ones read, whatever the order of P's writes. */
void tsm_max_pool2d_x4(const tsm_pool_params_t *p, const int8_t *input, int8_t *output)
{
    const uint32_t lo = tsm_splat_s8(p->activation_min);
    const uint32_t hi = tsm_splat_s8(p->activation_max);
    const int32_t ch = p->channels;
    const int32_t last = ch - 4;
    const int32_t row = p->input_w * ch;
    int32_t b, oy, ox, c;
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
            const int32_t ny = TSM_MIN(p->filter_h, p->input_h - y0) - ys;
            for (ox = 0; ox < p->output_w; ++ox, output += ch) {
                const int32_t x0 = ox * p->stride_w - p->pad_w;
                const int32_t xs = TSM_MAX(0, -x0);
                const int32_t nx = TSM_MIN(p->filter_w, p->input_w - x0) - xs;
                const int8_t *win = in_b + (y0 + ys) * row + (x0 + xs) * ch;
                for (c = 0; c < ch; c += 4) {
                    const int32_t g = TSM_MIN(c, last);
                    const uint32_t best = tsm_max_taps(win + g, ny, nx, ch, row);
                    tsm_write_u32(output + g, tsm_min_s8x4(tsm_max_s8x4(best, lo), hi));
                }
            }
        }
    }
}

/* One to three channels (ch, a constant in each copy): each pixel's window walked once,
 * every channel of a tap together, instead of once per channel with the index worked out
 * per tap. A pixel's reads all come before its writes, as window_lead assumes. */
static inline __attribute__((always_inline)) void
tsm_max_pool2d_narrow_ch(const tsm_pool_params_t *p, const int8_t *input, int8_t *output,
                         const int32_t ch)
{
    const int32_t row = p->input_w * ch;
    const int32_t lo = p->activation_min, hi = p->activation_max;
    int32_t b, oy, ox, y, x;
    for (b = 0; b < p->batches; ++b) {
        const int8_t *in_b = input + b * p->input_h * row;
        for (oy = 0; oy < p->output_h; ++oy) {
            const int32_t y0 = oy * p->stride_h - p->pad_h;
            const int32_t ys = TSM_MAX(0, -y0);
            const int32_t ny = TSM_MIN(p->filter_h, p->input_h - y0) - ys;
            for (ox = 0; ox < p->output_w; ++ox, output += ch) {
                const int32_t x0 = ox * p->stride_w - p->pad_w;
                const int32_t xs = TSM_MAX(0, -x0);
                const int32_t nx = TSM_MIN(p->filter_w, p->input_w - x0) - xs;
                const int8_t *r = in_b + (y0 + ys) * row + (x0 + xs) * ch;
                /* -128: what an empty window gives, as the generic kernel */
                int32_t m0 = -128, m1 = -128, m2 = -128;
                for (y = 0; y < ny; ++y, r += row) {
                    const int8_t *q = r;
                    for (x = 0; x < nx; ++x, q += ch) {
                        m0 = TSM_MAX(m0, q[0]);
                        if (ch > 1) {
                            m1 = TSM_MAX(m1, q[1]);
                        }
                        if (ch > 2) {
                            m2 = TSM_MAX(m2, q[2]);
                        }
                    }
                }
                output[0] = (int8_t)tsm_clamp(m0, lo, hi);
                if (ch > 1) {
                    output[1] = (int8_t)tsm_clamp(m1, lo, hi);
                }
                if (ch > 2) {
                    output[2] = (int8_t)tsm_clamp(m2, lo, hi);
                }
            }
        }
    }
}

void tsm_max_pool2d_narrow(const tsm_pool_params_t *p, const int8_t *input, int8_t *output)
{
    if (p->channels == 1) {
        tsm_max_pool2d_narrow_ch(p, input, output, 1);
    } else if (p->channels == 2) {
        tsm_max_pool2d_narrow_ch(p, input, output, 2);
    } else {
        tsm_max_pool2d_narrow_ch(p, input, output, 3);
    }
}
