/* The smiling bot: nose button -> capture -> find the face -> crop -> infer -> smile LED. A
 * board with a camera captures on the button; any board also takes frames over the serial
 * link (FRAME), which is how boards without a capture driver, and the tests on the emulated
 * board, drive it. The pipeline itself is tsm_bot.h.
 *
 * HELLO      as the harness answers it (tsm_hello.h): board, model name and hash, shapes,
 *            max_payload (the largest request the app takes), so a host (the Pi's --mcu
 *            offload) hands frames only to a board running its model.
 * FRAME_DATA request: u32 offset, bytes[n]: n bytes of the camera frame (camera_width x
 *            camera_height gray u8, row major) written at `offset` into its frame buffer.
 *            A camera frame is larger than one request can be (the length field is 16 bits
 *            and the receive buffer is bounded): the host sends it in chunks of at most
 *            HELLO's max_payload - 4 bytes, in any order, then FRAME with its CRC.
 *            reply:   u32 offset, u32 n, u32 crc32(bytes)   (the host checks the echo)
 *            Error BAD_LENGTH when the payload is under 5 bytes or the board has no frame
 *            buffer, RANGE when offset + n passes the frame's end; nothing is written then.
 * FRAME      request, either
 *              u32 crc32(camera frame): run the pipeline on the frame buffer the chunks
 *                filled. Error BAD_FRAME (nothing decided, LED unchanged) when the buffer's
 *                CRC differs: a chunk lost, corrupt or not sent;
 *              or the frame at the model's input size, width x height gray u8 (no finder,
 *                no resize: what the Pi's offload sends as its crop).
 *            Any other length: error BAD_LENGTH. After an error the app keeps running.
 *            reply:   u8 led, u8 smile, u32 crc32(frame), u8 face (TSM_BOT_FACE_*: 0 none,
 *                     1 found, 2 no finder ran), i8 finder score, i16 box x, y, w, h,
 *                     i16 square x, y, side (what the model saw, frame pixels),
 *                     u32 detect, crop, classify (tick counter at the end of each stage,
 *                     restarted at the frame's start; see tsm_port.h), output[output_size]
 *                     (int8; the last decision's when no face was found: no inference ran)
 * CAPTURE    request: empty
 *            reply:   u8 led, u8 smile, u32 crc32(frame), u32 frames decided since boot,
 *                     output[output_size], input[input_size]: the last decision the smile
 *                     model made and the int8 model input it was made on (what the model
 *                     saw, from serial or camera; kept in the input buffer the model reads,
 *                     so it costs no RAM). A frame without a face runs no inference and
 *                     leaves this unchanged. Error NO_INPUT before the first decision.
 * EVENT      unsolicited after a button-triggered capture: the same layout as FRAME's reply
 *            with the crc of the camera frame.
 * The LED state is what the app last commanded (tsm_port_led); the host compares the
 * decision with its own on the same pixels. */
#ifndef TSM_APP_H
#define TSM_APP_H

#include <stdint.h>

#include "tsm_finder.h"
#include "tsm_image.h"
#include "tsm_model.h"

#define TSM_MSG_FRAME 0x06u
#define TSM_MSG_FRAME_DATA 0x07u
#define TSM_MSG_APP_EVENT 0x71u

/* The app's own error codes (after tsm_protocol.h's). */
#define TSM_ERR_RANGE 7u     /* FRAME_DATA past the frame's end */
#define TSM_ERR_BAD_FRAME 8u /* FRAME's CRC differs from the frame buffer's */

typedef void (*tsm_app_invoke_fn_t)(const int8_t *input, int8_t *output);

/* The face finder, always the generated C (native kernels) whatever runs the smile model. */
typedef struct {
    const tsm_model_info_t *info;
    tsm_app_invoke_fn_t invoke;
    int8_t *input;                /* info->input_size bytes */
    int8_t *output;               /* info->output_size bytes */
    const int8_t *pixel_to_input; /* 256 entries: the finder bundle's preprocessing */
    uint32_t width;               /* finder input width and height (one channel) */
    uint32_t height;
    tsm_finder_t decode;          /* grid, threshold and Q4 tables for this frame size */
} tsm_app_finder_t;

/* Filled by the generated glue (templates/<template>/tsm_app_glue.c.j2): every number here
 * is decided on the host from the model bundles and the board file. */
typedef struct {
    const tsm_model_info_t *info;
    tsm_app_invoke_fn_t invoke;
    const char *board;          /* reported by HELLO */
    uint32_t stack_size;        /* reported by HELLO */
    int8_t *input;              /* info->input_size bytes */
    int8_t *output;             /* info->output_size bytes */
    const int8_t *pixel_to_input; /* 256 entries: gray pixel -> int8 model input */
    uint32_t width;             /* model input width, height and channels */
    uint32_t height;
    uint32_t channels;
    uint32_t smile_index;       /* output element holding the smile score */
    int32_t smile_threshold;    /* smile when output[smile_index] >= this */
    /* The camera frame (camera_width == 0: the app takes only model-size frames): filled by
     * the capture driver or by FRAME_DATA. */
    uint8_t *camera_frame;      /* camera_width * camera_height bytes */
    uint32_t camera_width;
    uint32_t camera_height;
    const tsm_app_finder_t *finder; /* 0: no finder (--detector none): the centre square */
    tsm_framing_t framing;      /* the smile bundle's framing rule (crop_margin, crop_shift_y) */
    uint8_t *pixels;            /* resize scratch: max(finder, model) width x height bytes */
    tsm_setup_fn_t setup;       /* 0: nothing to set up */
} tsm_app_model_t;

extern const tsm_app_model_t tsm_app_model;

/* Never returns. */
void tsm_app_run(void);

#endif
