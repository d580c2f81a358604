#include "tsm_protocol.h"

#include <string.h>

uint16_t tsm_crc16(uint16_t crc, const uint8_t *data, uint32_t n)
{
    /* Bitwise rather than table-driven: 512 bytes of table are not worth it for a header. */
    for (uint32_t i = 0; i < n; ++i) {
        crc ^= (uint16_t)((uint16_t)data[i] << 8);
        for (int b = 0; b < 8; ++b) {
            crc = (crc & 0x8000u) ? (uint16_t)((crc << 1) ^ 0x1021u) : (uint16_t)(crc << 1);
        }
    }
    return crc;
}

uint32_t tsm_crc32(uint32_t crc, const uint8_t *data, uint32_t n)
{
    crc = ~crc;
    for (uint32_t i = 0; i < n; ++i) {
        crc ^= data[i];
        for (int b = 0; b < 8; ++b) {
            crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
        }
    }
    return ~crc;
}

void tsm_parser_init(tsm_parser_t *p)
{
    memset(p, 0, sizeof(*p));
}

static uint32_t tsm_get_u16(const uint8_t *b)
{
    return (uint32_t)b[0] | ((uint32_t)b[1] << 8);
}

static uint32_t tsm_get_u32(const uint8_t *b)
{
    return (uint32_t)b[0] | ((uint32_t)b[1] << 8) | ((uint32_t)b[2] << 16) | ((uint32_t)b[3] << 24);
}

/* Drop the candidate at buf[0] and everything up to the next possible start marker. */
static void tsm_parser_skip(tsm_parser_t *p)
{
    uint32_t k = 1;
    while (k < p->fill && p->buf[k] != TSM_PROTO_SOF0) {
        ++k;
    }
    p->dropped += k;
    memmove(p->buf, p->buf + k, p->fill - k);
    p->fill -= k;
}

static void tsm_parser_release(tsm_parser_t *p)
{
    if (p->consumed > 0) {
        memmove(p->buf, p->buf + p->consumed, p->fill - p->consumed);
        p->fill -= p->consumed;
        p->consumed = 0;
    }
}

void tsm_parser_push(tsm_parser_t *p, uint8_t byte)
{
    tsm_parser_release(p);
    if (p->fill == TSM_PROTO_BUFFER_SIZE) {
        /* Only reachable when the caller pushes without calling next(): the candidate
         * cannot be longer than the buffer, so the oldest bytes are garbage. */
        tsm_parser_skip(p);
    }
    p->buf[p->fill++] = byte;
}

int tsm_parser_next(tsm_parser_t *p, tsm_frame_t *frame)
{
    tsm_parser_release(p);
    for (;;) {
        if (p->fill == 0) {
            return 0;
        }
        if (p->buf[0] != TSM_PROTO_SOF0 || (p->fill >= 2 && p->buf[1] != TSM_PROTO_SOF1)) {
            tsm_parser_skip(p);
            continue;
        }
        if (p->fill < TSM_PROTO_HEADER_SIZE) {
            return 0;
        }
        uint32_t length = tsm_get_u16(p->buf + 4);
        if (tsm_crc16(0xFFFFu, p->buf + 2, 4) != tsm_get_u16(p->buf + 6)) {
            ++p->bad_crc;
            tsm_parser_skip(p);
            continue;
        }
        if (length > TSM_PROTO_MAX_PAYLOAD) {
            ++p->bad_length;
            tsm_parser_skip(p);
            continue;
        }
        uint32_t total = TSM_PROTO_HEADER_SIZE + length + TSM_PROTO_TRAILER_SIZE;
        if (p->fill < total) {
            return 0;
        }
        uint32_t crc = tsm_crc32(0, p->buf + 2, TSM_PROTO_HEADER_SIZE - 2 + length);
        if (crc != tsm_get_u32(p->buf + TSM_PROTO_HEADER_SIZE + length)) {
            ++p->bad_crc;
            tsm_parser_skip(p);
            continue;
        }
        frame->type = p->buf[2];
        frame->seq = p->buf[3];
        frame->length = (uint16_t)length;
        frame->payload = p->buf + TSM_PROTO_HEADER_SIZE;
        p->consumed = total;
        ++p->frames;
        return 1;
    }
}

void tsm_frame_begin(tsm_frame_writer_t *w, tsm_write_fn_t write, uint8_t type, uint8_t seq,
                     uint16_t length)
{
    uint8_t header[TSM_PROTO_HEADER_SIZE];
    header[0] = TSM_PROTO_SOF0;
    header[1] = TSM_PROTO_SOF1;
    header[2] = type;
    header[3] = seq;
    header[4] = (uint8_t)(length & 0xFFu);
    header[5] = (uint8_t)(length >> 8);
    uint16_t hcrc = tsm_crc16(0xFFFFu, header + 2, 4);
    header[6] = (uint8_t)(hcrc & 0xFFu);
    header[7] = (uint8_t)(hcrc >> 8);
    w->write = write;
    w->remaining = length;
    w->crc = tsm_crc32(0, header + 2, TSM_PROTO_HEADER_SIZE - 2);
    write(header, TSM_PROTO_HEADER_SIZE);
}

void tsm_frame_write(tsm_frame_writer_t *w, const uint8_t *data, uint32_t n)
{
    /* Never send more than the header promised: the receiver would misparse the excess. */
    if (n > w->remaining) {
        n = w->remaining;
    }
    w->crc = tsm_crc32(w->crc, data, n);
    w->remaining -= n;
    w->write(data, n);
}

void tsm_frame_end(tsm_frame_writer_t *w)
{
    static const uint8_t zeros[16] = {0};
    while (w->remaining > 0) {
        tsm_frame_write(w, zeros, w->remaining < sizeof(zeros) ? w->remaining : (uint32_t)sizeof(zeros));
    }
    uint8_t trailer[4] = {(uint8_t)w->crc, (uint8_t)(w->crc >> 8), (uint8_t)(w->crc >> 16),
                          (uint8_t)(w->crc >> 24)};
    w->write(trailer, 4);
}
