/* The smiling bot: nose button -> capture -> infer -> smile LED. A board with a camera
 * captures on the button; any board also takes frames over the serial link (FRAME), which
 * is how boards without a camera, and the tests on the emulated board, drive it.
 *
 * HELLO   as the harness answers it (tsm_hello.h): board, model name and hash, shapes, so a
 *         host (the Pi's --mcu offload) hands frames only to a board running its model.
 * FRAME   request: the frame, model input width x height gray pixels (u8, row major)
 *         reply:   u8 led, u8 smile, u32 crc32(frame), output[output_size] (int8)
 * CAPTURE request: empty
 *         reply:   u8 led, u8 smile, u32 crc32(frame), u32 frames decided since boot,
 *                  output[output_size], input[input_size]: the last decision and the int8
 *                  model input it was made on (what the model saw, from serial or camera;
 *                  kept in the input buffer the model reads, so it costs no RAM).
 *                  Error NO_INPUT before the first decision.
 * EVENT   unsolicited after a button-triggered capture: the same layout as FRAME's reply
 *         with the crc of the camera frame.
 * The LED state is what the app last commanded (tsm_port_led); the host compares the
 * decision with its own on the same pixels. */
#ifndef TSM_APP_H
#define TSM_APP_H

#include <stdint.h>

#include "tsm_model.h"

#define TSM_MSG_FRAME 0x06u
#define TSM_MSG_APP_EVENT 0x71u

typedef void (*tsm_app_invoke_fn_t)(const int8_t *input, int8_t *output);

/* Filled by the generated glue (templates/<template>/tsm_app_glue.c.j2): every number here
 * is decided on the host from the model bundle and the board file. */
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
    /* Camera frames (camera_width == 0: no camera): nearest-neighbour source column of each
     * input column and source row of each input row, inside a centred square crop. */
    uint8_t *camera_frame;      /* camera_width * camera_height bytes */
    uint32_t camera_width;
    uint32_t camera_height;
    const uint16_t *camera_cols; /* width entries */
    const uint16_t *camera_rows; /* height entries */
    tsm_setup_fn_t setup;       /* 0: nothing to set up */
} tsm_app_model_t;

extern const tsm_app_model_t tsm_app_model;

/* Model input from a frame already at the model's size (serial frames). */
void tsm_app_input_from_pixels(const tsm_app_model_t *m, const uint8_t *pixels);
/* Model input from a camera frame: crop and resample through the glue's tables. */
void tsm_app_input_from_camera(const tsm_app_model_t *m, const uint8_t *frame);
/* Runs the model on m->input; returns 1 for a smile. */
int32_t tsm_app_decide(const tsm_app_model_t *m);

/* Never returns. */
void tsm_app_run(void);

#endif
