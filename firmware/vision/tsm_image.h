/* Pixels are integers end to end: the one resize that every platform runs (the board, the
 * host reference through ctypes, the Pi and the training crops through its numpy twin in
 * tinysmile/data/pixels.py, checked equal in tests), so that all of them decide on the same
 * bytes. Floating-point resizes differ between x86 and aarch64; this does not. */
#ifndef TSM_IMAGE_H
#define TSM_IMAGE_H

#include <stdint.h>

/* Widest destination row tsm_image_resize_area takes (its row accumulator is on the stack). */
#define TSM_IMAGE_MAX_WIDTH 256u

/* A square inside a frame: top-left corner and side, in frame pixels. */
typedef struct {
    int32_t x;
    int32_t y;
    int32_t side;
} tsm_square_t;

/* The framing rule as fixed point (Q16), decided on the host from the smile bundle's spec:
 * side_q16 = round((1 + 2 * crop_margin) * 65536), shift_q16 = round(2 * crop_shift_y * 65536). */
typedef struct {
    int32_t side_q16;
    int32_t shift_q16;
} tsm_framing_t;

/* Exact area resize of a sw x sh window (row pitch `stride` bytes) to dw x dh: each output
 * pixel is the mean of the source area it covers, every source pixel weighted by its
 * overlap, rounded half up: (sum + sw * sh / 2) / (sw * sh). Down- and upscaling alike.
 * Needs dw <= TSM_IMAGE_MAX_WIDTH and 255 * sw * sh < 2^32. */
void tsm_image_resize_area(const uint8_t *src, uint32_t stride, uint32_t sw, uint32_t sh,
                           uint8_t *dst, uint32_t dw, uint32_t dh);

/* The square taken from an fw x fh frame around a face box (x, y, w, h), as
 * tinysmile.data.preprocess.framed_crop frames it:
 *   side = clamp((max(w, h) * side_q16 + 2^15) >> 16, 1, min(fw, fh))
 *   cx2 = 2x + w, cy2 = 2y + h + floor((h * shift_q16 + 2^15) / 2^16)
 *   x = clamp(floor((cx2 - side) / 2), 0, fw - side), y likewise: the square slides back
 *   inside the frame, it never shrinks. */
tsm_square_t tsm_image_frame_square(int32_t x, int32_t y, int32_t w, int32_t h, uint32_t fw,
                                    uint32_t fh, const tsm_framing_t *framing);

#endif
