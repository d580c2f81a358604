#include "tsm_hello.h"

#include <string.h>

static uint32_t tsm_hello_u16(uint8_t *b, uint32_t v)
{
    b[0] = (uint8_t)v;
    b[1] = (uint8_t)(v >> 8);
    return 2u;
}

static uint32_t tsm_hello_u32(uint8_t *b, uint32_t v)
{
    b[0] = (uint8_t)v;
    b[1] = (uint8_t)(v >> 8);
    b[2] = (uint8_t)(v >> 16);
    b[3] = (uint8_t)(v >> 24);
    return 4u;
}

static uint32_t tsm_hello_str(uint8_t *b, const char *s)
{
    uint32_t n = (uint32_t)strlen(s);
    if (n > 255u) {
        n = 255u;
    }
    b[0] = (uint8_t)n;
    memcpy(b + 1, s, n);
    return n + 1u;
}

void tsm_hello_send(tsm_write_fn_t write, uint8_t seq, const tsm_model_info_t *info,
                    const char *board, uint32_t stack_size, uint32_t tick_hz,
                    uint32_t arena_used, const tsm_hello_app_t *app)
{
    /* 96 bytes of numbers and three strings of at most 255 bytes each. */
    uint8_t b[96 + 3 * 256];
    uint32_t n = 0;
    n += tsm_hello_u16(b + n, TSM_PROTO_VERSION);
    n += tsm_hello_u32(b + n, TSM_PROTO_MAX_PAYLOAD);
    n += tsm_hello_u32(b + n, tick_hz);
    n += tsm_hello_u32(b + n, stack_size);
    n += tsm_hello_u32(b + n, (uint32_t)info->arena_size);
    n += tsm_hello_u32(b + n, (uint32_t)info->input_size);
    n += tsm_hello_u32(b + n, (uint32_t)info->output_size);
    b[n++] = (uint8_t)info->input_rank;
    for (int i = 0; i < 4; ++i) {
        n += tsm_hello_u32(b + n, (uint32_t)info->input_shape[i]);
    }
    b[n++] = (uint8_t)info->output_rank;
    for (int i = 0; i < 4; ++i) {
        n += tsm_hello_u32(b + n, (uint32_t)info->output_shape[i]);
    }
    /* Floats travel as their IEEE bit pattern: no float formatting code on the device. */
    memcpy(b + n, &info->input_scale, 4);
    n += 4;
    n += tsm_hello_u32(b + n, (uint32_t)info->input_zero_point);
    memcpy(b + n, &info->output_scale, 4);
    n += 4;
    n += tsm_hello_u32(b + n, (uint32_t)info->output_zero_point);
    n += tsm_hello_u16(b + n, (uint32_t)info->num_layers);
    n += tsm_hello_str(b + n, board);
    n += tsm_hello_str(b + n, info->name);
    n += tsm_hello_str(b + n, info->sha256);
    n += tsm_hello_u32(b + n, arena_used);
    /* The app's tail: its numbers here, the finder's hash straight from its string. */
    uint8_t tail[5];
    const char *finder = app && app->finder_sha256 ? app->finder_sha256 : "";
    uint32_t finder_n = (uint32_t)strlen(finder);
    if (finder_n > 255u) {
        finder_n = 255u;
    }
    uint32_t t = 0;
    if (app) {
        t += tsm_hello_u16(tail + t, app->camera_width);
        t += tsm_hello_u16(tail + t, app->camera_height);
        tail[t++] = (uint8_t)finder_n;
    }
    tsm_frame_writer_t w;
    tsm_frame_begin(&w, write, TSM_MSG_HELLO | TSM_MSG_REPLY, seq,
                    (uint16_t)(n + t + finder_n));
    tsm_frame_write(&w, b, n);
    if (app) {
        tsm_frame_write(&w, tail, t);
        tsm_frame_write(&w, (const uint8_t *)finder, finder_n);
    }
    tsm_frame_end(&w);
}
