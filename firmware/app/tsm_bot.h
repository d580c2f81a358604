/* The smiling bot's whole-frame pipeline as one pure function (no port, no protocol), so the
 * board and the host reference (tinysmile/device/bot.py: this C built for the host and
 * called through ctypes) decide on the same bytes:
 *
 *   camera frame -> area resize to the finder's input -> finder pixel table -> finder
 *   -> best cell decoded into a face box (tsm_finder_decode) -> the smile bundle's framing
 *   rule (tsm_image_frame_square) -> that square area-resized to the smile model's input
 *   -> smile pixel table -> smile model -> decision.
 *
 * No face: no smile inference, the smile model's input and output buffers keep the last
 * decision's bytes. No finder linked (--detector none): the frame's centre square, the same
 * resize. */
#ifndef TSM_BOT_H
#define TSM_BOT_H

#include <stdint.h>

#include "tsm_app.h"
#include "tsm_image.h"

#define TSM_BOT_FACE_NONE 0  /* the finder found no face: LED off, no smile inference */
#define TSM_BOT_FACE_FOUND 1 /* the finder's box, framed */
#define TSM_BOT_FACE_GIVEN 2 /* no finder ran: the centre square (or a model-size frame) */

/* A clock for the stage stamps (the app passes tsm_port_ticks after restarting it; the host
 * passes 0 and gets zeros). */
typedef uint64_t (*tsm_bot_clock_fn_t)(void);

typedef struct {
    int32_t face;      /* TSM_BOT_FACE_* */
    int32_t score;     /* the finder's best cell score (int8); 0 without a finder */
    int32_t x;         /* face box in frame pixels; all 0 without a face */
    int32_t y;
    int32_t w;
    int32_t h;
    tsm_square_t square; /* what the smile model saw, in frame pixels; side 0 without a face */
    int32_t smile;     /* 1: smile (LED on); 0 otherwise, and always without a face */
    /* Clock readings after detect (resize, finder, decode), crop (square, resize, pixel
     * table) and classify (the smile model), low 32 bits. */
    uint32_t stamps[3];
} tsm_bot_result_t;

/* The whole pipeline on an m->camera_width x m->camera_height frame (row major, gray u8);
 * the model input it decided on stays in m->input, its output in m->output. clock may be 0.
 * Returns r->smile. */
int32_t tsm_bot_decide_frame(const tsm_app_model_t *m, const uint8_t *frame,
                             tsm_bot_result_t *r, tsm_bot_clock_fn_t clock);

/* A frame already at the smile model's input size (serial FRAME of width x height): the
 * pixel table and the model, nothing resized; r->face is TSM_BOT_FACE_GIVEN. */
int32_t tsm_bot_decide_pixels(const tsm_app_model_t *m, const uint8_t *pixels,
                              tsm_bot_result_t *r, tsm_bot_clock_fn_t clock);

#endif
