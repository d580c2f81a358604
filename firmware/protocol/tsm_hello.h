/* HELLO's reply, shared by every firmware that answers it (the verification harness and the
 * smiling-bot app), so the host identifies a board and its model the same way whatever it
 * runs. Layout (little endian), decoded by tinysmile/device/protocol.py:
 *   u16 version, u32 max_payload, u32 tick_hz, u32 stack_size, u32 arena_size,
 *   u32 input_size, u32 output_size, u8 input_rank, u32 input_shape[4],
 *   u8 output_rank, u32 output_shape[4], f32 input_scale, i32 input_zero_point,
 *   f32 output_scale, i32 output_zero_point, u16 num_layers,
 *   str board, str model name, str sha256   (str = u8 length + bytes),
 *   u32 arena_used (bytes the runtime measured in use; older hosts stop before it),
 * then, from the smiling-bot app only (the harness stops before it):
 *   u16 camera_width, u16 camera_height (0 x 0: the app takes model-size frames only),
 *   str finder sha256 (empty: no face finder, the centre square), so a host knows whether
 *   to send whole camera frames (FRAME_DATA) or its own crops. */
#ifndef TSM_HELLO_H
#define TSM_HELLO_H

#include <stdint.h>

#include "tsm_model.h"
#include "tsm_protocol.h"

/* What the app adds to HELLO: its camera frame and its face finder. */
typedef struct {
    uint32_t camera_width;
    uint32_t camera_height;
    const char *finder_sha256; /* "" or 0: no finder */
} tsm_hello_app_t;

/* app: 0 for the harness. */
void tsm_hello_send(tsm_write_fn_t write, uint8_t seq, const tsm_model_info_t *info,
                    const char *board, uint32_t stack_size, uint32_t tick_hz,
                    uint32_t arena_used, const tsm_hello_app_t *app);

#endif
