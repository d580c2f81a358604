/* The face finder's output -> a face box (see tsm_finder.h). The numpy twin is
 * tinysmile/finder/decode.py; tests/test_vision.py holds both to the same numbers. */
#include "tsm_finder.h"

#include <stddef.h>

/* Floor division, as the twin's `//`: a face at the frame's left or top border has a
 * negative corner, where C's `/` (towards zero) and `>>` (implementation-defined) would
 * both disagree with Python. */
static int64_t tsm_finder_floor_div(int64_t a, int64_t b) {
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0))) {
        --q;
    }
    return q;
}

tsm_face_t tsm_finder_decode(const tsm_finder_t *finder, const int8_t *output) {
    tsm_face_t face = {0, 0, 0, 0, 0, 0};
    const size_t cells = (size_t)finder->grid_w * finder->grid_h;
    if (cells == 0) {
        return face;
    }
    /* Strictly greater: on a tie the first cell in row-major order stays, as numpy's
     * argmax, so the twin picks the same cell. */
    size_t best = 0;
    for (size_t i = 1; i < cells; ++i) {
        if (output[4 * i] > output[4 * best]) {
            best = i;
        }
    }
    /* The score is reported even when below the threshold: how close a miss was. */
    face.score = output[4 * best];
    if (face.score < finder->score_threshold) {
        return face;
    }
    const int8_t *cell = output + 4 * best;
    const int64_t gx = (int64_t)(best % finder->grid_w);
    const int64_t gy = (int64_t)(best / finder->grid_w);
    /* 64-bit so that no table a host could write overflows; one decode per frame. */
    const int64_t cx_q4 = gx * finder->cell_w_q4 + finder->offset_x[cell[1] + 128];
    const int64_t cy_q4 = gy * finder->cell_h_q4 + finder->offset_y[cell[2] + 128];
    const int64_t side_q4 = finder->side[cell[3] + 128];
    const int64_t half_q4 = tsm_finder_floor_div(side_q4, 2);
    /* +8 then floor: the nearest frame pixel, halves up, for a Q4 coordinate. */
    int64_t side = tsm_finder_floor_div(side_q4 + 8, 16);
    side = side < 1 ? 1 : side;
    face.found = 1;
    face.x = (int32_t)tsm_finder_floor_div(cx_q4 - half_q4 + 8, 16);
    face.y = (int32_t)tsm_finder_floor_div(cy_q4 - half_q4 + 8, 16);
    face.w = (int32_t)side;
    face.h = (int32_t)side;
    return face;
}
