#include "tsm_harness.h"

#include <string.h>

#include "tsm_hello.h"
#include "tsm_port.h"
#include "tsm_protocol.h"

/* Reply layouts (all integers little endian) are decoded by tinysmile/device/protocol.py:
 * HELLO   see tsm_hello.h (shared with the app); ends with u32 arena_used
 * INFER   u32 crc32(input), u64 start, u64 end, output[output_size]
 * LAYER   u16 layer, u32 crc32(input), u32 size, data[size]
 * PROFILE u32 crc32(input), u64 start, u64 end, u16 num_layers, u64 end_of_layer[n]
 * Tick stamps count from the counter's restart just before the run, not from each other:
 * under QEMU -icount a tick is 1.6 instructions, and only a stamp taken from the restart
 * (an instruction boundary) maps back to an exact instruction count; a difference of two
 * stamps would carry both stamps' rounding.
 * The input's CRC is echoed so the host can tell the reply was computed on the input it
 * sent (a device reset in between would otherwise answer LAYER from stale memory). */

static tsm_parser_t tsm_parser;
static uint32_t tsm_input_crc;
static int32_t tsm_have_input;
static const char *tsm_setup_error; /* set when the model could not be set up */

typedef struct {
    int32_t wanted;
    tsm_frame_writer_t *writer;
    uint64_t start;
} tsm_hook_ctx_t;

static void tsm_put_u16(uint8_t *b, uint32_t v)
{
    b[0] = (uint8_t)v;
    b[1] = (uint8_t)(v >> 8);
}

static void tsm_put_u32(uint8_t *b, uint32_t v)
{
    b[0] = (uint8_t)v;
    b[1] = (uint8_t)(v >> 8);
    b[2] = (uint8_t)(v >> 16);
    b[3] = (uint8_t)(v >> 24);
}

static void tsm_put_u64(uint8_t *b, uint64_t v)
{
    tsm_put_u32(b, (uint32_t)v);
    tsm_put_u32(b + 4, (uint32_t)(v >> 32));
}

static void tsm_send(uint8_t type, uint8_t seq, const uint8_t *payload, uint32_t n)
{
    tsm_frame_writer_t w;
    tsm_frame_begin(&w, tsm_port_uart_write, type, seq, (uint16_t)n);
    tsm_frame_write(&w, payload, n);
    tsm_frame_end(&w);
}

static void tsm_send_error(uint8_t seq, uint8_t code, const char *text)
{
    uint8_t b[160];
    b[0] = code;
    uint32_t n = (uint32_t)strlen(text);
    if (n > sizeof(b) - 1u) {
        n = sizeof(b) - 1u;
    }
    memcpy(b + 1, text, n);
    tsm_send(TSM_MSG_ERROR | TSM_MSG_REPLY, seq, b, n + 1u);
}

static void tsm_handle_hello(uint8_t seq)
{
    uint32_t used = tsm_harness_model.arena_used ? tsm_harness_model.arena_used()
                                                 : (uint32_t)tsm_harness_model.info->arena_size;
    tsm_hello_send(tsm_port_uart_write, seq, tsm_harness_model.info, tsm_harness_model.board,
                   tsm_harness_model.stack_size, tsm_port_tick_hz(), used, 0);
}

static void tsm_handle_infer(uint8_t seq, const tsm_frame_t *f)
{
    const tsm_model_info_t *info = tsm_harness_model.info;
    if (f->length != (uint32_t)info->input_size) {
        tsm_send_error(seq, TSM_ERR_BAD_LENGTH, "input size differs from the model's");
        return;
    }
    memcpy(tsm_harness_model.input, f->payload, f->length);
    tsm_input_crc = tsm_crc32(0, f->payload, f->length);
    tsm_have_input = 1;

    tsm_port_ticks_restart();
    uint64_t start = tsm_port_ticks();
    tsm_harness_model.invoke(tsm_harness_model.input, tsm_harness_model.output);
    uint64_t end = tsm_port_ticks();

    uint8_t head[20];
    tsm_put_u32(head, tsm_input_crc);
    tsm_put_u64(head + 4, start);
    tsm_put_u64(head + 12, end);
    tsm_frame_writer_t w;
    tsm_frame_begin(&w, tsm_port_uart_write, TSM_MSG_INFER | TSM_MSG_REPLY, seq,
                    (uint16_t)(sizeof(head) + (uint32_t)info->output_size));
    tsm_frame_write(&w, head, sizeof(head));
    tsm_frame_write(&w, (const uint8_t *)tsm_harness_model.output, (uint32_t)info->output_size);
    tsm_frame_end(&w);
}

static void tsm_layer_hook(void *ctx, int32_t layer, const int8_t *data, int32_t size)
{
    tsm_hook_ctx_t *c = (tsm_hook_ctx_t *)ctx;
    if (layer == c->wanted && size > 0) {
        tsm_frame_write(c->writer, (const uint8_t *)data, (uint32_t)size);
    }
}

static void tsm_handle_layer(uint8_t seq, const tsm_frame_t *f)
{
    const tsm_model_info_t *info = tsm_harness_model.info;
    if (!tsm_have_input) {
        tsm_send_error(seq, TSM_ERR_NO_INPUT, "no inference since reset");
        return;
    }
    if (f->length != 2u) {
        tsm_send_error(seq, TSM_ERR_BAD_LENGTH, "LAYER takes a u16 layer index");
        return;
    }
    if (info->layer_output_sizes == 0) {
        tsm_send_error(seq, TSM_ERR_UNSUPPORTED, "LAYER is not supported by this runtime");
        return;
    }
    uint32_t layer = (uint32_t)f->payload[0] | ((uint32_t)f->payload[1] << 8);
    if (layer >= (uint32_t)info->num_layers) {
        tsm_send_error(seq, TSM_ERR_BAD_LAYER, "layer index out of range");
        return;
    }
    uint32_t size = (uint32_t)info->layer_output_sizes[layer];
    if (size + 10u > 0xFFFFu) {
        tsm_send_error(seq, TSM_ERR_UNSUPPORTED, "layer output larger than one frame");
        return;
    }
    uint8_t head[10];
    tsm_put_u16(head, layer);
    tsm_put_u32(head + 2, tsm_input_crc);
    tsm_put_u32(head + 6, size);
    /* The layer's data is streamed from inside the hook: no copy of the activation. */
    tsm_frame_writer_t w;
    tsm_frame_begin(&w, tsm_port_uart_write, TSM_MSG_LAYER | TSM_MSG_REPLY, seq,
                    (uint16_t)(sizeof(head) + size));
    tsm_frame_write(&w, head, sizeof(head));
    tsm_hook_ctx_t ctx = {(int32_t)layer, &w, 0};
    tsm_harness_model.invoke_hooked(tsm_harness_model.input, tsm_harness_model.output,
                                    tsm_layer_hook, &ctx);
    tsm_frame_end(&w);
}

static void tsm_profile_hook(void *ctx, int32_t layer, const int8_t *data, int32_t size)
{
    (void)ctx;
    (void)data;
    (void)size;
    if (layer >= 0 && layer < tsm_harness_model.info->num_layers) {
        tsm_harness_model.layer_ticks[layer] = tsm_port_ticks();
    }
}

static void tsm_handle_profile(uint8_t seq)
{
    const tsm_model_info_t *info = tsm_harness_model.info;
    if (!tsm_have_input) {
        tsm_send_error(seq, TSM_ERR_NO_INPUT, "no inference since reset");
        return;
    }
    uint32_t n = (uint32_t)info->num_layers;
    if (22u + 8u * n > 0xFFFFu) {
        tsm_send_error(seq, TSM_ERR_UNSUPPORTED, "too many layers for one frame");
        return;
    }
    memset(tsm_harness_model.layer_ticks, 0, n * sizeof(uint64_t));
    tsm_port_ticks_restart();
    tsm_hook_ctx_t ctx = {-1, 0, tsm_port_ticks()};
    tsm_harness_model.invoke_hooked(tsm_harness_model.input, tsm_harness_model.output,
                                    tsm_profile_hook, &ctx);
    uint64_t end = tsm_port_ticks();

    uint8_t head[22];
    tsm_put_u32(head, tsm_input_crc);
    tsm_put_u64(head + 4, ctx.start);
    tsm_put_u64(head + 12, end);
    tsm_put_u16(head + 20, n);
    tsm_frame_writer_t w;
    tsm_frame_begin(&w, tsm_port_uart_write, TSM_MSG_PROFILE | TSM_MSG_REPLY, seq,
                    (uint16_t)(sizeof(head) + 8u * n));
    tsm_frame_write(&w, head, sizeof(head));
    for (uint32_t i = 0; i < n; ++i) {
        uint8_t b[8];
        tsm_put_u64(b, tsm_harness_model.layer_ticks[i]);
        tsm_frame_write(&w, b, sizeof(b));
    }
    tsm_frame_end(&w);
}

static void tsm_dispatch(const tsm_frame_t *f)
{
    if (tsm_setup_error) {
        /* Every request gets the reason: the host reports it instead of timing out. */
        tsm_send_error(f->seq, TSM_ERR_SETUP, tsm_setup_error);
        return;
    }
    switch (f->type) {
    case TSM_MSG_HELLO:
        tsm_handle_hello(f->seq);
        break;
    case TSM_MSG_INFER:
        tsm_handle_infer(f->seq, f);
        break;
    case TSM_MSG_LAYER:
        tsm_handle_layer(f->seq, f);
        break;
    case TSM_MSG_PROFILE:
        tsm_handle_profile(f->seq);
        break;
    default:
        tsm_send_error(f->seq, TSM_ERR_UNKNOWN_TYPE, "unknown request type");
        break;
    }
}

void tsm_harness_run(void)
{
    tsm_parser_init(&tsm_parser);
    tsm_setup_error = tsm_harness_model.setup ? tsm_harness_model.setup() : 0;
    /* Tell a host that may be mid-conversation that this device just (re)started. */
    uint8_t boot[2];
    tsm_put_u16(boot, TSM_PROTO_VERSION);
    tsm_send(TSM_MSG_BOOT, 0, boot, sizeof(boot));
    for (;;) {
        int32_t c = tsm_port_uart_getc();
        if (c < 0) {
            continue;
        }
        tsm_parser_push(&tsm_parser, (uint8_t)c);
        tsm_frame_t f;
        while (tsm_parser_next(&tsm_parser, &f)) {
            tsm_dispatch(&f);
        }
    }
}
