#include "tsm_app.h"

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

void tsm_app_input_from_pixels(const tsm_app_model_t *m, const uint8_t *pixels)
{
    uint32_t n = m->width * m->height;
    for (uint32_t i = 0; i < n; ++i) {
        int8_t v = m->pixel_to_input[pixels[i]];
        for (uint32_t c = 0; c < m->channels; ++c) {
            m->input[i * m->channels + c] = v;
        }
    }
}

void tsm_app_input_from_camera(const tsm_app_model_t *m, const uint8_t *frame)
{
    for (uint32_t y = 0; y < m->height; ++y) {
        const uint8_t *row = frame + (uint32_t)m->camera_rows[y] * m->camera_width;
        for (uint32_t x = 0; x < m->width; ++x) {
            int8_t v = m->pixel_to_input[row[m->camera_cols[x]]];
            uint32_t i = y * m->width + x;
            for (uint32_t c = 0; c < m->channels; ++c) {
                m->input[i * m->channels + c] = v;
            }
        }
    }
}

int32_t tsm_app_decide(const tsm_app_model_t *m)
{
    m->invoke(m->input, m->output);
    return (int32_t)m->output[m->smile_index] >= m->smile_threshold ? 1 : 0;
}

static void tsm_app_report(const tsm_app_model_t *m, uint8_t type, uint8_t seq, int32_t led,
                           int32_t smile, uint32_t crc)
{
    uint8_t head[6];
    head[0] = (uint8_t)led;
    head[1] = (uint8_t)smile;
    tsm_app_put_u32(head + 2, crc);
    uint32_t out = (uint32_t)m->info->output_size;
    tsm_frame_writer_t w;
    tsm_frame_begin(&w, tsm_port_uart_write, type, seq, (uint16_t)(sizeof(head) + out));
    tsm_frame_write(&w, head, sizeof(head));
    tsm_frame_write(&w, (const uint8_t *)m->output, out);
    tsm_frame_end(&w);
}

static void tsm_app_send_error(uint8_t seq, uint8_t code)
{
    uint8_t b[1];
    b[0] = code;
    tsm_frame_writer_t w;
    tsm_frame_begin(&w, tsm_port_uart_write, TSM_MSG_ERROR | TSM_MSG_REPLY, seq, 1u);
    tsm_frame_write(&w, b, 1u);
    tsm_frame_end(&w);
}

static void tsm_app_decided(int32_t smile, uint32_t crc)
{
    tsm_app_frames++;
    tsm_app_last_crc = crc;
    tsm_app_last_smile = smile;
}

static void tsm_app_send_capture(const tsm_app_model_t *m, uint8_t seq)
{
    if (tsm_app_frames == 0u) {
        tsm_app_send_error(seq, TSM_ERR_NO_INPUT);
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

static void tsm_app_dispatch(const tsm_app_model_t *m, const tsm_frame_t *f)
{
    if (tsm_app_setup_failed) {
        tsm_app_send_error(f->seq, TSM_ERR_SETUP);
        return;
    }
    if (f->type == TSM_MSG_HELLO) {
        tsm_hello_send(tsm_port_uart_write, f->seq, m->info, m->board, m->stack_size,
                       tsm_port_tick_hz(), (uint32_t)m->info->arena_size);
        return;
    }
    if (f->type == TSM_MSG_CAPTURE) {
        tsm_app_send_capture(m, f->seq);
        return;
    }
    if (f->type != TSM_MSG_FRAME) {
        tsm_app_send_error(f->seq, TSM_ERR_UNKNOWN_TYPE);
        return;
    }
    if ((uint32_t)f->length != m->width * m->height) {
        tsm_app_send_error(f->seq, TSM_ERR_BAD_LENGTH);
        return;
    }
    uint32_t crc = tsm_crc32(0, f->payload, f->length);
    tsm_app_input_from_pixels(m, f->payload);
    int32_t smile = tsm_app_decide(m);
    tsm_port_led(smile);
    tsm_app_decided(smile, crc);
    tsm_app_report(m, TSM_MSG_FRAME | TSM_MSG_REPLY, f->seq, smile, smile, crc);
}

static void tsm_app_capture(const tsm_app_model_t *m)
{
    uint32_t size = m->camera_width * m->camera_height;
    if (size == 0u || tsm_port_camera_capture(m->camera_frame, size) != (int32_t)size) {
        return;
    }
    tsm_app_input_from_camera(m, m->camera_frame);
    int32_t smile = tsm_app_decide(m);
    tsm_port_led(smile);
    uint32_t crc = tsm_crc32(0, m->camera_frame, size);
    tsm_app_decided(smile, crc);
    tsm_app_report(m, TSM_MSG_APP_EVENT, 0u, smile, smile, crc);
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
