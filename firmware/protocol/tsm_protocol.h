/* Serial framing shared by the device harness and the host (tinysmile/device/protocol.py).
 *
 * A frame on the wire:
 *   0xA5 0x5A  type  seq  len_lo len_hi  hcrc_lo hcrc_hi  payload[len]  crc32[4, little endian]
 * hcrc is CRC-16/CCITT-FALSE over (type, seq, len): a corrupted length is rejected before
 * the parser commits to waiting for a payload that never comes. crc32 (IEEE, as zlib) covers
 * everything after the start marker, header CRC included.
 * The parser keeps the candidate frame in one buffer; on any failure it drops bytes up to
 * the next start marker inside what it already holds and rescans, so a truncated frame
 * does not swallow the frame that follows it. */
#ifndef TSM_PROTOCOL_H
#define TSM_PROTOCOL_H

#include <stdint.h>

#define TSM_PROTO_VERSION 1u
#define TSM_PROTO_SOF0 0xA5u
#define TSM_PROTO_SOF1 0x5Au
#define TSM_PROTO_HEADER_SIZE 8u
#define TSM_PROTO_TRAILER_SIZE 4u

/* The device only ever receives requests, the largest being INFER's input tensor; the
 * generated project sets this from the model so RAM is not wasted. */
#ifndef TSM_PROTO_MAX_PAYLOAD
#define TSM_PROTO_MAX_PAYLOAD 4096u
#endif

#define TSM_PROTO_BUFFER_SIZE (TSM_PROTO_HEADER_SIZE + TSM_PROTO_MAX_PAYLOAD + TSM_PROTO_TRAILER_SIZE)

/* Requests; a reply has the request's type with TSM_MSG_REPLY set and echoes its seq. */
#define TSM_MSG_HELLO 0x01u
#define TSM_MSG_INFER 0x02u
#define TSM_MSG_LAYER 0x03u
#define TSM_MSG_PROFILE 0x04u
#define TSM_MSG_CAPTURE 0x05u
#define TSM_MSG_BOOT 0x70u  /* unsolicited, after reset: the host knows state was lost */
#define TSM_MSG_ERROR 0x7Fu /* reply to any request that failed: u8 code, text */
#define TSM_MSG_REPLY 0x80u

#define TSM_ERR_UNKNOWN_TYPE 1u
#define TSM_ERR_BAD_LENGTH 2u
#define TSM_ERR_NO_INPUT 3u
#define TSM_ERR_BAD_LAYER 4u
#define TSM_ERR_UNSUPPORTED 5u
#define TSM_ERR_SETUP 6u /* the model could not be set up (TFLM: schema, ops, arena) */

typedef struct {
    uint8_t type;
    uint8_t seq;
    uint16_t length;
    const uint8_t *payload; /* points into the parser: valid until its next call */
} tsm_frame_t;

typedef struct {
    uint8_t buf[TSM_PROTO_BUFFER_SIZE];
    uint32_t fill;
    uint32_t consumed;    /* bytes of a frame already handed out, dropped on the next call */
    uint32_t frames;      /* valid frames delivered */
    uint32_t dropped;     /* bytes skipped while resynchronising */
    uint32_t bad_crc;     /* candidates rejected by either CRC */
    uint32_t bad_length;  /* candidates whose length exceeds TSM_PROTO_MAX_PAYLOAD */
} tsm_parser_t;

uint16_t tsm_crc16(uint16_t crc, const uint8_t *data, uint32_t n);
/* Running CRC-32: start with 0, feed chunks, the result equals zlib.crc32 of the whole. */
uint32_t tsm_crc32(uint32_t crc, const uint8_t *data, uint32_t n);

void tsm_parser_init(tsm_parser_t *p);
/* Append one received byte. */
void tsm_parser_push(tsm_parser_t *p, uint8_t byte);
/* 1 and *frame when a valid frame is complete; call again until 0 (several may be buffered). */
int tsm_parser_next(tsm_parser_t *p, tsm_frame_t *frame);

/* Streaming writer: a reply's payload is sent in pieces (headers, then tensor data
 * straight from the model's buffers) without assembling it in RAM. */
typedef void (*tsm_write_fn_t)(const uint8_t *data, uint32_t n);

typedef struct {
    tsm_write_fn_t write;
    uint32_t crc;
    uint32_t remaining; /* payload bytes still owed; end() pads with zeros if a caller fell short */
} tsm_frame_writer_t;

void tsm_frame_begin(tsm_frame_writer_t *w, tsm_write_fn_t write, uint8_t type, uint8_t seq,
                     uint16_t length);
void tsm_frame_write(tsm_frame_writer_t *w, const uint8_t *data, uint32_t n);
void tsm_frame_end(tsm_frame_writer_t *w);

#endif
