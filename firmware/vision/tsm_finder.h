/* The face finder's output decoded into a face box, in integers (tables decided on the host
 * from the finder's output quantization, see tinysmile/finder/decode.py, its numpy twin).
 *
 * The finder is a centroid grid: its int8 output is (1, grid_h, grid_w, 4), per cell
 * channel 0 the face score (a sigmoid), 1 and 2 the face centre's x and y inside the cell,
 * 3 the face's size. The face is the cell with the highest score (the first in row-major
 * order on a tie), when that score reaches the threshold. */
#ifndef TSM_FINDER_H
#define TSM_FINDER_H

#include <stdint.h>

typedef struct {
    uint32_t grid_w;
    uint32_t grid_h;
    int32_t score_threshold;    /* int8: a face when the best cell's score >= this */
    /* int8 value + 128 -> the centre's offset from the cell's top-left corner, and the box
     * side, both in frame pixels x 16 (Q4), for the frame the finder's input came from. */
    const int32_t *offset_x;    /* 256 entries */
    const int32_t *offset_y;    /* 256 entries */
    const int32_t *side;        /* 256 entries */
    /* Cell pitch in frame pixels x 16 (Q4), along x and y. */
    int32_t cell_w_q4;
    int32_t cell_h_q4;
} tsm_finder_t;

typedef struct {
    int32_t found;  /* 0: no face (the box is all zero) */
    int32_t score;  /* the best cell's score, int8 */
    int32_t x;      /* Haar-style face box in frame pixels */
    int32_t y;
    int32_t w;
    int32_t h;
} tsm_face_t;

/* Decode: best cell (gx, gy); centre_q4 = (g * cell_q4 + offset[q + 128]);
 * side_q4 = side[q + 128]; x = floor((centre_x_q4 - floor(side_q4 / 2) + 8) / 16), y
 * likewise, w = h = max(1, floor((side_q4 + 8) / 16)). Every division floors (a face at the
 * frame's border has a negative corner), as the twin's `//`. No face: found = 0, the box
 * all zero, score still the best cell's (0 for an empty grid). */
tsm_face_t tsm_finder_decode(const tsm_finder_t *finder, const int8_t *output);

#endif
