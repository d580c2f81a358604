/* Host fuzzing of the device's frame parser (firmware/protocol/tsm_protocol.c).
 *
 * Two entry points over the same checks:
 *  - LLVMFuzzerTestOneInput (clang -fsanitize=fuzzer): the input is fed raw, then used as
 *    the seed of a structured stream (below).
 *  - main() unless TSM_LIBFUZZER: a seeded random driver, `tsm_protocol_fuzz ITER SEED`.
 * A structured stream mixes intact frames with corrupted ones (bit flip, truncation, bad
 * header CRC, oversized length) and garbage, fed in random chunks, then flushed with zeros.
 * The contract checked: frames come out in order, each byte-equal to one that was sent; a
 * corrupted frame is never delivered; an intact frame is never lost, except right after a
 * truncated one whose missing tail the next bytes happen to complete exactly (then it is
 * the truncated frame, whole again, that comes out: still a frame that was sent). And no
 * out-of-bounds access (ASan/UBSan watch that). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tsm_protocol.h"

#define TSM_FUZZ_MAX_FRAMES 64
#define TSM_FUZZ_STREAM (64 * (TSM_PROTO_BUFFER_SIZE + 64) + TSM_PROTO_BUFFER_SIZE)

typedef struct {
    uint64_t s;
} tsm_rng_t;

static uint32_t tsm_rng_next(tsm_rng_t *r)
{
    /* xorshift64*: plenty for choosing mutations, and reproducible from the seed. */
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return (uint32_t)((r->s * 0x2545F4914F6CDD1DULL) >> 32);
}

static uint32_t tsm_rng_below(tsm_rng_t *r, uint32_t n)
{
    return n ? tsm_rng_next(r) % n : 0;
}

/* The frame writer streams into this sink. */
static uint8_t *tsm_sink;
static uint32_t tsm_sink_len;

static void tsm_sink_write(const uint8_t *data, uint32_t n)
{
    memcpy(tsm_sink + tsm_sink_len, data, n);
    tsm_sink_len += n;
}

#define TSM_KIND_INTACT 5u
#define TSM_KIND_TRUNCATED 2u

typedef struct {
    uint8_t type;
    uint8_t seq;
    uint16_t length;
    uint32_t kind;
    int32_t after_truncated;
    uint8_t payload[TSM_PROTO_MAX_PAYLOAD];
} tsm_fuzz_frame_t;

static tsm_fuzz_frame_t tsm_expected[TSM_FUZZ_MAX_FRAMES];
static uint8_t tsm_stream[TSM_FUZZ_STREAM];
static tsm_parser_t tsm_parser;
static unsigned long long tsm_total_frames;
static unsigned long long tsm_total_bytes;

static void tsm_fail(const char *what, uint64_t seed)
{
    fprintf(stderr, "tsm_protocol_fuzz: %s (seed %llu)\n", what, (unsigned long long)seed);
    abort();
}

/* Feed a stream the way the device does (one byte, then drain), check what comes out. */
static void tsm_check_raw(const uint8_t *data, size_t n)
{
    tsm_parser_init(&tsm_parser);
    tsm_frame_t f;
    for (size_t i = 0; i < n; ++i) {
        tsm_parser_push(&tsm_parser, data[i]);
        while (tsm_parser_next(&tsm_parser, &f)) {
            if (f.length > TSM_PROTO_MAX_PAYLOAD) {
                tsm_fail("frame longer than the bound", 0);
            }
            if (f.payload < tsm_parser.buf ||
                f.payload + f.length > tsm_parser.buf + TSM_PROTO_BUFFER_SIZE) {
                tsm_fail("payload outside the parser buffer", 0);
            }
            ++tsm_total_frames;
        }
    }
    tsm_total_bytes += n;
}

static void tsm_check_structured(uint64_t seed)
{
    tsm_rng_t r = {seed * 0x9E3779B97F4A7C15ULL + 1u};
    uint32_t len = 0;
    uint32_t expected = 0;
    uint32_t segments = 1u + tsm_rng_below(&r, 12);
    int32_t prev_truncated = 0;
    for (uint32_t s = 0; s < segments && expected < TSM_FUZZ_MAX_FRAMES; ++s) {
        uint32_t kind = tsm_rng_below(&r, 8);
        if (kind > TSM_KIND_INTACT) {
            kind = TSM_KIND_INTACT;
        }
        if (kind == 0) { /* garbage, sometimes rich in start markers */
            prev_truncated = 0;
            uint32_t n = tsm_rng_below(&r, 64);
            for (uint32_t i = 0; i < n; ++i) {
                uint32_t pick = tsm_rng_below(&r, 4);
                tsm_stream[len++] = pick == 0 ? (uint8_t)TSM_PROTO_SOF0
                                    : pick == 1 ? (uint8_t)TSM_PROTO_SOF1
                                                : (uint8_t)tsm_rng_next(&r);
            }
            continue;
        }
        tsm_fuzz_frame_t *fr = &tsm_expected[expected++];
        fr->kind = kind;
        fr->after_truncated = prev_truncated;
        prev_truncated = kind == TSM_KIND_TRUNCATED;
        fr->type = (uint8_t)tsm_rng_next(&r);
        fr->seq = (uint8_t)tsm_rng_next(&r);
        /* Sequence numbers unique within a stream, as a real sender's are: with two frames
         * alike in every byte (say both empty, same type and seq), the check below could
         * not tell the delivered intact one from a corrupted twin sent before it. */
        for (uint32_t k = 0; k + 1u < expected; ++k) {
            if (tsm_expected[k].seq == fr->seq) {
                fr->seq = (uint8_t)(fr->seq + 1u);
                k = (uint32_t)-1; /* recheck from the first */
            }
        }
        /* Lengths cluster at the edges where off-by-ones live. */
        uint32_t pick = tsm_rng_below(&r, 4);
        fr->length = (uint16_t)(pick == 0   ? 0u
                                : pick == 1 ? TSM_PROTO_MAX_PAYLOAD
                                            : tsm_rng_below(&r, TSM_PROTO_MAX_PAYLOAD + 1u));
        for (uint32_t i = 0; i < fr->length; ++i) {
            fr->payload[i] = (uint8_t)tsm_rng_next(&r);
        }
        uint32_t start = len;
        tsm_sink = tsm_stream;
        tsm_sink_len = len;
        tsm_frame_writer_t w;
        tsm_frame_begin(&w, tsm_sink_write, fr->type, fr->seq, fr->length);
        tsm_frame_write(&w, fr->payload, fr->length);
        tsm_frame_end(&w);
        len = tsm_sink_len;
        uint32_t flen = len - start;
        switch (kind) {
        case 1: /* flipped bit anywhere after the start marker */
            tsm_stream[start + 2u + tsm_rng_below(&r, flen - 2u)] ^= (uint8_t)(1u << tsm_rng_below(&r, 8));
            break;
        case 2: /* truncated: cut anywhere */
            len = start + tsm_rng_below(&r, flen);
            break;
        case 3: { /* oversized length with a correct header CRC: must be refused at once */
            uint32_t big = TSM_PROTO_MAX_PAYLOAD + 1u + tsm_rng_below(&r, 0xFFFFu - TSM_PROTO_MAX_PAYLOAD);
            tsm_stream[start + 4] = (uint8_t)big;
            tsm_stream[start + 5] = (uint8_t)(big >> 8);
            uint16_t h = tsm_crc16(0xFFFFu, tsm_stream + start + 2, 4);
            tsm_stream[start + 6] = (uint8_t)h;
            tsm_stream[start + 7] = (uint8_t)(h >> 8);
            break;
        }
        case 4: /* header CRC broken */
            tsm_stream[start + 6] ^= 0x5Au;
            break;
        default: /* intact */
            break;
        }
    }
    /* Zeros complete any candidate still waiting for bytes, which then fails its CRC. */
    uint32_t flush = TSM_PROTO_BUFFER_SIZE;
    memset(tsm_stream + len, 0, flush);
    len += flush;

    tsm_parser_init(&tsm_parser);
    uint32_t got = 0;
    uint32_t pos = 0;
    tsm_frame_t f;
    while (pos < len) {
        uint32_t chunk = 1u + tsm_rng_below(&r, 32);
        for (uint32_t i = 0; i < chunk && pos < len; ++i) {
            tsm_parser_push(&tsm_parser, tsm_stream[pos++]);
            while (tsm_parser_next(&tsm_parser, &f)) {
                for (;;) {
                    if (got >= expected) {
                        tsm_fail("delivered a frame that was never sent", seed);
                    }
                    const tsm_fuzz_frame_t *e = &tsm_expected[got++];
                    if (f.type == e->type && f.seq == e->seq && f.length == e->length &&
                        memcmp(f.payload, e->payload, f.length) == 0) {
                        if (e->kind != TSM_KIND_INTACT && e->kind != TSM_KIND_TRUNCATED) {
                            tsm_fail("delivered a corrupted frame", seed);
                        }
                        break;
                    }
                    if (e->kind == TSM_KIND_INTACT && !e->after_truncated) {
                        tsm_fail("an intact frame was lost", seed);
                    }
                }
            }
        }
    }
    for (; got < expected; ++got) {
        if (tsm_expected[got].kind == TSM_KIND_INTACT && !tsm_expected[got].after_truncated) {
            tsm_fail("an intact frame was lost", seed);
        }
    }
    tsm_total_frames += got;
    tsm_total_bytes += len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tsm_check_raw(data, size);
    uint64_t seed = 0;
    for (size_t i = 0; i < size && i < 8; ++i) {
        seed = (seed << 8) | data[i];
    }
    tsm_check_structured(seed);
    return 0;
}

#ifndef TSM_LIBFUZZER
int main(int argc, char **argv)
{
    unsigned long long iterations = argc > 1 ? strtoull(argv[1], NULL, 10) : 10000ULL;
    unsigned long long seed = argc > 2 ? strtoull(argv[2], NULL, 10) : 1ULL;
    tsm_rng_t r = {seed | 1u};
    static uint8_t raw[2 * TSM_PROTO_BUFFER_SIZE];
    for (unsigned long long it = 0; it < iterations; ++it) {
        /* Raw random bytes, often with start markers and plausible headers in them. */
        uint32_t n = tsm_rng_below(&r, sizeof(raw));
        for (uint32_t i = 0; i < n; ++i) {
            uint32_t pick = tsm_rng_below(&r, 8);
            raw[i] = pick == 0 ? (uint8_t)TSM_PROTO_SOF0 : pick == 1 ? (uint8_t)TSM_PROTO_SOF1 : (uint8_t)tsm_rng_next(&r);
        }
        tsm_check_raw(raw, n);
        tsm_check_structured(seed * 1000003ULL + it);
    }
    printf("inputs %llu frames %llu bytes %llu\n", iterations * 2ULL, tsm_total_frames, tsm_total_bytes);
    return 0;
}
#endif
