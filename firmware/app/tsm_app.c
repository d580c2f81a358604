#include "tsm_app.h"

#include "tsm_bot.h"
#include "tsm_hello.h"
#include "tsm_port.h"
#include "tsm_protocol.h"

static tsm_parser_t tsm_app_parser;
/* The last decision, for CAPTURE (its input stays in m->input, its output in m->output). */
static uint32_t tsm_app_frames;
static uint32_t tsm_app_last_crc;
static int32_t tsm_app_last_smile;
static int32_t tsm_app_setup_failed; /* the model could not be set up: every FRAME is refused */

static void tsm_app_put_u32(uint8_t *b, uint32_t v)
{
    b[0] = (uint8_t)v;
    b[1] = (uint8_t)(v >> 8);
    b[2] = (uint8_t)(v >> 16);
    b[3] = (uint8_t)(v >> 24);
}

static void tsm_app_put_i16(uint8_t *b, int32_t v)
{
    b[0] = (uint8_t)((uint32_t)v & 0xFFu);
    b[1] = (uint8_t)(((uint32_t)v >> 8) & 0xFFu);
}

static uint32_t tsm_app_get_u32(const uint8_t *b)
{
    return (uint32_t)b[0] | ((uint32_t)b[1] << 8) | ((uint32_t)b[2] << 16) |
           ((uint32_t)b[3] << 24);
}

/* FRAME's reply and EVENT (layout in tsm_app.h). */
#define TSM_APP_REPLY_HEAD 34u

static void tsm_app_report(const tsm_app_model_t *m, uint8_t type, uint8_t seq,
                           const tsm_bot_result_t *r, uint32_t crc)
{
    uint8_t head[TSM_APP_REPLY_HEAD];
    head[0] = (uint8_t)r->smile; /* the LED follows the decision */
    head[1] = (uint8_t)r->smile;
    tsm_app_put_u32(head + 2, crc);
    head[6] = (uint8_t)r->face;
    head[7] = (uint8_t)(int8_t)r->score;
    tsm_app_put_i16(head + 8, r->x);
    tsm_app_put_i16(head + 10, r->y);
    tsm_app_put_i16(head + 12, r->w);
    tsm_app_put_i16(head + 14, r->h);
    tsm_app_put_i16(head + 16, r->square.x);
    tsm_app_put_i16(head + 18, r->square.y);
    tsm_app_put_i16(head + 20, r->square.side);
    tsm_app_put_u32(head + 22, r->stamps[0]);
    tsm_app_put_u32(head + 26, r->stamps[1]);
    tsm_app_put_u32(head + 30, r->stamps[2]);
    uint32_t out = (uint32_t)m->info->output_size;
    tsm_frame_writer_t w;
    tsm_frame_begin(&w, tsm_port_uart_write, type, seq, (uint16_t)(sizeof(head) + out));
    tsm_frame_write(&w, head, sizeof(head));
    tsm_frame_write(&w, (const uint8_t *)m->output, out);
    tsm_frame_end(&w);
}

static void tsm_app_send_error(uint8_t seq, uint8_t code, const char *text)
{
    uint32_t n = 0u;
    while (text[n] != '\0') {
        n++;
    }
    uint8_t b[1];
    b[0] = code;
    tsm_frame_writer_t w;
    tsm_frame_begin(&w, tsm_port_uart_write, TSM_MSG_ERROR | TSM_MSG_REPLY, seq,
                    (uint16_t)(1u + n));
    tsm_frame_write(&w, b, 1u);
    tsm_frame_write(&w, (const uint8_t *)text, n);
    tsm_frame_end(&w);
}

/* A decision the smile model made (a frame without a face is none: CAPTURE keeps the last). */
static void tsm_app_decided(const tsm_bot_result_t *r, uint32_t crc)
{
    tsm_port_led(r->smile);
    if (r->face == TSM_BOT_FACE_NONE) {
        return;
    }
    tsm_app_frames++;
    tsm_app_last_crc = crc;
    tsm_app_last_smile = r->smile;
}

static void tsm_app_send_capture(const tsm_app_model_t *m, uint8_t seq)
{
    if (tsm_app_frames == 0u) {
        tsm_app_send_error(seq, TSM_ERR_NO_INPUT, "no decision since reset");
        return;
    }
    uint8_t head[10];
    head[0] = (uint8_t)tsm_app_last_smile; /* the LED shows the last decision */
    head[1] = (uint8_t)tsm_app_last_smile;
    tsm_app_put_u32(head + 2, tsm_app_last_crc);
    tsm_app_put_u32(head + 6, tsm_app_frames);
    uint32_t out = (uint32_t)m->info->output_size;
    uint32_t in = (uint32_t)m->info->input_size;
    tsm_frame_writer_t w;
    tsm_frame_begin(&w, tsm_port_uart_write, TSM_MSG_CAPTURE | TSM_MSG_REPLY, seq,
                    (uint16_t)(sizeof(head) + out + in));
    tsm_frame_write(&w, head, sizeof(head));
    tsm_frame_write(&w, (const uint8_t *)m->output, out);
    tsm_frame_write(&w, (const uint8_t *)m->input, in);
    tsm_frame_end(&w);
}

/* FRAME_DATA: one chunk of the camera frame into the frame buffer, bounds checked. */
static void tsm_app_frame_data(const tsm_app_model_t *m, const tsm_frame_t *f)
{
    uint32_t size = m->camera_width * m->camera_height;
    if (f->length < 5u || size == 0u) {
        tsm_app_send_error(f->seq, TSM_ERR_BAD_LENGTH,
                           size == 0u ? "no camera frame on this board" : "empty chunk");
        return;
    }
    uint32_t offset = tsm_app_get_u32(f->payload);
    uint32_t n = (uint32_t)f->length - 4u;
    /* offset alone may be anything a host sends: compare without overflowing. */
    if (offset > size || n > size - offset) {
        tsm_app_send_error(f->seq, TSM_ERR_RANGE, "chunk past the frame's end");
        return;
    }
    const uint8_t *data = f->payload + 4;
    for (uint32_t i = 0; i < n; ++i) {
        m->camera_frame[offset + i] = data[i];
    }
    uint8_t b[12];
    tsm_app_put_u32(b, offset);
    tsm_app_put_u32(b + 4, n);
    tsm_app_put_u32(b + 8, tsm_crc32(0, data, n));
    tsm_frame_writer_t w;
    tsm_frame_begin(&w, tsm_port_uart_write, TSM_MSG_FRAME_DATA | TSM_MSG_REPLY, f->seq,
                    sizeof(b));
    tsm_frame_write(&w, b, sizeof(b));
    tsm_frame_end(&w);
}

static void tsm_app_frame(const tsm_app_model_t *m, const tsm_frame_t *f)
{
    tsm_bot_result_t r;
    uint32_t size = m->camera_width * m->camera_height;
    uint32_t crc;
    if ((uint32_t)f->length == m->width * m->height) {
        crc = tsm_crc32(0, f->payload, f->length);
        tsm_port_ticks_restart();
        tsm_bot_decide_pixels(m, f->payload, &r, tsm_port_ticks);
    } else if (f->length == 4u && size != 0u) {
        crc = tsm_app_get_u32(f->payload);
        if (tsm_crc32(0, m->camera_frame, size) != crc) {
            tsm_app_send_error(f->seq, TSM_ERR_BAD_FRAME,
                               "the frame buffer's CRC differs: a chunk was lost or corrupt");
            return;
        }
        tsm_port_ticks_restart();
        tsm_bot_decide_frame(m, m->camera_frame, &r, tsm_port_ticks);
    } else {
        tsm_app_send_error(f->seq, TSM_ERR_BAD_LENGTH,
                           "neither a frame's CRC nor a frame of the model's input size");
        return;
    }
    tsm_app_decided(&r, crc);
    tsm_app_report(m, TSM_MSG_FRAME | TSM_MSG_REPLY, f->seq, &r, crc);
}

static void tsm_app_dispatch(const tsm_app_model_t *m, const tsm_frame_t *f)
{
    if (tsm_app_setup_failed) {
        tsm_app_send_error(f->seq, TSM_ERR_SETUP, "model setup failed");
        return;
    }
    if (f->type == TSM_MSG_HELLO) {
        const tsm_hello_app_t app = {m->camera_width, m->camera_height,
                                     m->finder ? m->finder->info->sha256 : ""};
        tsm_hello_send(tsm_port_uart_write, f->seq, m->info, m->board, m->stack_size,
                       tsm_port_tick_hz(), (uint32_t)m->info->arena_size, &app);
    } else if (f->type == TSM_MSG_CAPTURE) {
        tsm_app_send_capture(m, f->seq);
    } else if (f->type == TSM_MSG_FRAME_DATA) {
        tsm_app_frame_data(m, f);
    } else if (f->type == TSM_MSG_FRAME) {
        tsm_app_frame(m, f);
    } else {
        tsm_app_send_error(f->seq, TSM_ERR_UNKNOWN_TYPE, "unknown request type");
    }
}

static void tsm_app_capture(const tsm_app_model_t *m)
{
    uint32_t size = m->camera_width * m->camera_height;
    if (size == 0u || tsm_port_camera_capture(m->camera_frame, size) != (int32_t)size) {
        return;
    }
    tsm_bot_result_t r;
    tsm_port_ticks_restart();
    tsm_bot_decide_frame(m, m->camera_frame, &r, tsm_port_ticks);
    uint32_t crc = tsm_crc32(0, m->camera_frame, size);
    tsm_app_decided(&r, crc);
    tsm_app_report(m, TSM_MSG_APP_EVENT, 0u, &r, crc);
}

void tsm_app_run(void)
{
    const tsm_app_model_t *m = &tsm_app_model;
    tsm_parser_init(&tsm_app_parser);
    tsm_app_setup_failed = m->setup != 0 && m->setup() != 0;
    tsm_port_led(0);
    uint8_t boot[2] = {(uint8_t)TSM_PROTO_VERSION, (uint8_t)(TSM_PROTO_VERSION >> 8)};
    tsm_frame_writer_t w;
    tsm_frame_begin(&w, tsm_port_uart_write, TSM_MSG_BOOT, 0u, sizeof(boot));
    tsm_frame_write(&w, boot, sizeof(boot));
    tsm_frame_end(&w);
    int32_t was_pressed = 0;
    for (;;) {
        /* The nose button acts on its press, not while held. */
        int32_t pressed = tsm_port_button();
        if (pressed && !was_pressed && !tsm_app_setup_failed) {
            tsm_app_capture(m);
        }
        was_pressed = pressed;
        int32_t c = tsm_port_uart_getc();
        if (c < 0) {
            continue;
        }
        tsm_parser_push(&tsm_app_parser, (uint8_t)c);
        tsm_frame_t f;
        while (tsm_parser_next(&tsm_app_parser, &f)) {
            tsm_app_dispatch(m, &f);
        }
    }
}
