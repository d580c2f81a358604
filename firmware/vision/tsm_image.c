/* The one integer area resize and the framing rule (see tsm_image.h). The numpy twin is
 * tinysmile/data/pixels.py; tests/test_vision.py holds both to the same bytes. */
#include "tsm_image.h"

#include <stddef.h>
#include <string.h>

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#include <arm_acle.h>
#define TSM_IMAGE_DSP 1
#else
#define TSM_IMAGE_DSP 0
#endif

/* Source row `row` (width sw) resampled to dw columns: out[i] is the overlap-weighted sum
 * of the source pixels under output column i. Both axes are measured in one scale where a
 * source pixel is dw long and an output pixel sw long, so every overlap is an integer and
 * the weights of one output pixel add up to sw exactly. Walking the two sets of boundaries
 * together (instead of computing i * sw / dw) keeps every quantity below max(sw, dw): no
 * product of coordinates can overflow, whatever the frame size. */
static void tsm_image_row_weights(const uint8_t *row, uint32_t sw, uint32_t *out, uint32_t dw,
                                  uint32_t weight) {
    uint32_t j = 0;
    uint32_t left = dw; /* what remains of source pixel j */
    for (uint32_t i = 0; i < dw; ++i) {
        uint32_t need = sw; /* what remains of output pixel i */
        /* The rest of source pixel j (all of it, or what the last output pixel left). */
        uint32_t take = need < left ? need : left;
        uint32_t sum = take * row[j]; /* <= 255 * sw */
        need -= take;
        left -= take;
        if (left == 0) {
            /* j reaches sw only when the last output pixel is complete: no read past. */
            ++j;
            left = dw;
        }
        if (need > 0) {
            /* Source pixel j is whole again here (left == dw): the pixels this output pixel
             * covers entirely all weigh dw, so they are summed plainly and multiplied once
             * (the same sum, a few instructions a pixel fewer when shrinking). */
            uint32_t whole = need / dw;
            uint32_t plain = 0;
            for (uint32_t k = 0; k < whole; ++k) {
                plain += row[j + k];
            }
            sum += dw * plain;
            j += whole;
            need -= whole * dw;
            if (need > 0) {
                sum += need * row[j];
                left -= need;
            }
        }
        /* weight <= sh and sum <= 255 * sw: the product, like the whole accumulator, stays
         * below 255 * sw * sh < 2^32, the contract's limit. */
        out[i] += weight * sum;
    }
}

/* Round half up: q + 1 when the remainder is at least half the area. Not
 * (sum + area / 2) / area: that can pass 2^32 when 255 * area is just under it. */
static uint8_t tsm_image_round(uint32_t sum, uint32_t area) {
    uint32_t q = sum / area;
    uint32_t r = sum - q * area;
    return (uint8_t)(q + (2u * r >= area ? 1u : 0u));
}

/* Whole blocks (a 320x240 camera frame to the finder's 80x60: 4x4): every weight of the
 * general path is then dw * dh, so its sum is dw * dh times the block's plain sum and its
 * area dw * dh times kx * ky; the quotient and the half-up test come out the same, at a
 * tenth of the instructions. With the DSP extension four pixels of a row are summed by one
 * USADA8. */
static void tsm_image_resize_blocks(const uint8_t *src, uint32_t stride, uint32_t kx,
                                    uint32_t ky, uint8_t *dst, uint32_t dw, uint32_t dh) {
    const uint32_t area = kx * ky;
    for (uint32_t oy = 0; oy < dh; ++oy) {
        const uint8_t *top = src + (size_t)oy * ky * stride;
        uint8_t *out = dst + (size_t)oy * dw;
        for (uint32_t ox = 0; ox < dw; ++ox) {
            const uint8_t *p = top + (size_t)ox * kx;
            uint32_t sum = 0;
#if TSM_IMAGE_DSP
            if (kx == 4u) {
                for (uint32_t r = 0; r < ky; ++r, p += stride) {
                    uint32_t word;
                    memcpy(&word, p, sizeof word); /* one LDR: M4 loads unaligned words */
                    sum = __usada8(word, 0u, sum);
                }
                out[ox] = tsm_image_round(sum, area);
                continue;
            }
#endif
            for (uint32_t r = 0; r < ky; ++r, p += stride) {
                for (uint32_t c = 0; c < kx; ++c) {
                    sum += p[c];
                }
            }
            out[ox] = tsm_image_round(sum, area);
        }
    }
}

void tsm_image_resize_area(const uint8_t *src, uint32_t stride, uint32_t sw, uint32_t sh,
                           uint8_t *dst, uint32_t dw, uint32_t dh) {
    /* Outside the contract there is no meaningful output (and a zero area would divide by
     * zero): nothing is written. The host wrappers refuse such calls before they get here. */
    if (sw == 0 || sh == 0 || dw == 0 || dh == 0 || dw > TSM_IMAGE_MAX_WIDTH) {
        return;
    }
    if (sw % dw == 0u && sh % dh == 0u) {
        tsm_image_resize_blocks(src, stride, sw / dw, sh / dh, dst, dw, dh);
        return;
    }
    const uint32_t area = sw * sh; /* the weights of one output pixel add up to this */
    uint32_t acc[TSM_IMAGE_MAX_WIDTH];
    uint32_t j = 0;
    uint32_t left = dh; /* what remains of source row j, as in tsm_image_row_weights */
    for (uint32_t oy = 0; oy < dh; ++oy) {
        for (uint32_t i = 0; i < dw; ++i) {
            acc[i] = 0;
        }
        uint32_t need = sh;
        while (need > 0) {
            uint32_t take = need < left ? need : left;
            /* The row address is formed only for a row that exists: stepping a pointer one
             * stride past the last row would already be undefined behaviour. */
            tsm_image_row_weights(src + (size_t)j * stride, sw, acc, dw, take);
            need -= take;
            left -= take;
            if (left == 0) {
                ++j;
                left = dh;
            }
        }
        uint8_t *out = dst + (size_t)oy * dw;
        for (uint32_t i = 0; i < dw; ++i) {
            out[i] = tsm_image_round(acc[i], area);
        }
    }
}

/* Division rounding towards minus infinity: C's `/` truncates towards zero and `>>` on a
 * negative number is implementation-defined, and the Python twin uses `//`. */
static int64_t tsm_image_floor_div(int64_t a, int64_t b) {
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0))) {
        --q;
    }
    return q;
}

static int64_t tsm_image_clamp(int64_t v, int64_t lo, int64_t hi) {
    /* Lower bound first, then upper, as the Python twin's min(max(v, lo), hi): the two
     * agree even on a degenerate frame where hi < lo. */
    v = v < lo ? lo : v;
    return v > hi ? hi : v;
}

tsm_square_t tsm_image_frame_square(int32_t x, int32_t y, int32_t w, int32_t h, uint32_t fw,
                                    uint32_t fh, const tsm_framing_t *framing) {
    /* 64-bit throughout: a box side times a Q16 factor passes 2^31 for sides above ~16k,
     * and the Cortex-M4 multiplies 32x32->64 in one instruction. */
    const int64_t big = w > h ? w : h;
    const int64_t frame_min = fw < fh ? (int64_t)fw : (int64_t)fh;
    int64_t side = tsm_image_floor_div(big * framing->side_q16 + 32768, 65536);
    side = side > frame_min ? frame_min : side;
    side = side < 1 ? 1 : side;
    /* Twice the centre keeps the box's half-pixel centres in integers. */
    const int64_t cx2 = 2 * (int64_t)x + w;
    const int64_t cy2 =
        2 * (int64_t)y + h + tsm_image_floor_div((int64_t)h * framing->shift_q16 + 32768, 65536);
    tsm_square_t sq;
    sq.x = (int32_t)tsm_image_clamp(tsm_image_floor_div(cx2 - side, 2), 0, (int64_t)fw - side);
    sq.y = (int32_t)tsm_image_clamp(tsm_image_floor_div(cy2 - side, 2), 0, (int64_t)fh - side);
    sq.side = (int32_t)side;
    return sq;
}
