#include "tsm_fully_connected.h"

#include "tsm_common.h"
#include "tsm_dsp.h"

void tsm_fully_connected(const tsm_fully_connected_params_t *p, const int8_t *input,
                         int8_t *output)
{
    int32_t b, o, i;
    for (b = 0; b < p->batches; ++b) {
        const int8_t *x = input + b * p->input_depth;
        for (o = 0; o < p->output_depth; ++o) {
            const int8_t *w = p->filter + o * p->input_depth;
            const int32_t c = p->per_channel ? o : 0;
            int32_t acc = 0;
            /* int32 holds 65536 products of 255 * 128 before it could overflow */
            for (i = 0; i < p->input_depth; ++i) {
                acc += ((int32_t)x[i] + p->input_offset) * (int32_t)w[i];
            }
            if (p->bias) {
                acc += p->bias[o];
            }
            acc = tsm_requantize_single(acc, p->output_multiplier[c], p->output_shift[c]);
            acc += p->output_offset;
            output[b * p->output_depth + o] =
                (int8_t)tsm_clamp(acc, p->activation_min, p->activation_max);
        }
    }
}

static inline int8_t tsm_fc_out(int32_t acc, int32_t mult, int32_t shift, int32_t offset,
                                int32_t lo, int32_t hi)
{
    return (int8_t)tsm_clamp(tsm_requantize_single(acc, mult, shift) + offset, lo, hi);
}

#if TSM_ASM
/* Four output units (acc[0..3]) over the input words [x, xend), the block's weights at
 * *wp (each word of row 0, 1, 2, 3 in turn), written out so that every load advances its
 * own pointer: 25 instructions for 16 MACs, where gcc made 27 of the C loop (a reload of
 * the loop end and a move). Single LDRs, not LDRD: the weight arrays are int8, with no
 * alignment promised, and only LDR takes an unaligned address. */
static inline __attribute__((always_inline)) void
tsm_fc_block4(const int8_t *x, const int8_t *xend, const int8_t **wp, int32_t *acc)
{
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    const int8_t *w = *wp;
    uint32_t xv, xa, wa, wb, t;
#define TSM_FC_ROWS2_ASM(r0, r1)                                                                \
    "ldr %[wa], [%[w]], #4\n\t"                                                               \
    "ldr %[wb], [%[w]], #4\n\t"                                                               \
    "sxtb16 %[t], %[wa]\n\t"                                                                  \
    "smlad %[" r0 "], %[xa], %[t], %[" r0 "]\n\t"                                             \
    "sxtb16 %[t], %[wa], ror #8\n\t"                                                          \
    "smlad %[" r0 "], %[xv], %[t], %[" r0 "]\n\t"                                             \
    "sxtb16 %[t], %[wb]\n\t"                                                                  \
    "smlad %[" r1 "], %[xa], %[t], %[" r1 "]\n\t"                                             \
    "sxtb16 %[t], %[wb], ror #8\n\t"                                                          \
    "smlad %[" r1 "], %[xv], %[t], %[" r1 "]\n\t"
    __asm__ volatile("1:\n\t"
                     "ldr %[xv], [%[x]], #4\n\t"
                     "sxtb16 %[xa], %[xv]\n\t"
                     "sxtb16 %[xv], %[xv], ror #8\n\t" TSM_FC_ROWS2_ASM("a0", "a1")
                         TSM_FC_ROWS2_ASM("a2", "a3") "cmp %[x], %[xend]\n\t"
                                                      "bne 1b"
                     : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [x] "+r"(x),
                       [w] "+r"(w), [xv] "=&r"(xv), [xa] "=&r"(xa), [wa] "=&r"(wa),
                       [wb] "=&r"(wb), [t] "=&r"(t)
                     : [xend] "r"(xend), "m"(*(const int8_t(*)[])x), "m"(*(const int8_t(*)[])w)
                     : "cc");
#undef TSM_FC_ROWS2_ASM
    *wp = w;
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}
#endif

void tsm_fully_connected_x4(const tsm_fully_connected_x4_params_t *p, const int8_t *input,
                            int8_t *output)
{
    /* the parameters as locals: through p, every int8 store (which may alias anything)
     * would force them to be loaded again */
    const int32_t depth = p->input_depth;
    const int32_t d4 = depth & ~3;
    const int32_t tail = depth - d4;
    const int32_t out_depth = p->output_depth;
    const int32_t offset = p->output_offset;
    const int32_t lo = p->activation_min, hi = p->activation_max;
    const int32_t step = p->per_channel ? 1 : 0;
    const int32_t *const bias = p->bias;
    const int32_t *const mult = p->output_multiplier;
    const int32_t *const shift = p->output_shift;
    int32_t b, o, i;
    for (b = 0; b < p->batches; ++b) {
        const int8_t *x = input + b * depth;
        const int8_t *w = p->filter;
        int8_t *out = output + b * out_depth;
        for (o = 0; o + 4 <= out_depth; o += 4) {
            int32_t acc0 = bias[o], acc1 = bias[o + 1], acc2 = bias[o + 2], acc3 = bias[o + 3];
#if TSM_ASM
            if (d4) {
                int32_t acc[4];
                acc[0] = acc0;
                acc[1] = acc1;
                acc[2] = acc2;
                acc[3] = acc3;
                tsm_fc_block4(x, x + d4, &w, acc);
                acc0 = acc[0];
                acc1 = acc[1];
                acc2 = acc[2];
                acc3 = acc[3];
            }
#else
            for (i = 0; i < d4; i += 4, w += 16) {
                const uint32_t xv = tsm_read_u32(x + i);
                const uint32_t xa = tsm_sxtb16(xv), xb = tsm_sxtb16_ror8(xv);
                uint32_t v = tsm_read_u32(w);
                acc0 = tsm_smlad(xa, tsm_sxtb16(v), acc0);
                acc0 = tsm_smlad(xb, tsm_sxtb16_ror8(v), acc0);
                v = tsm_read_u32(w + 4);
                acc1 = tsm_smlad(xa, tsm_sxtb16(v), acc1);
                acc1 = tsm_smlad(xb, tsm_sxtb16_ror8(v), acc1);
                v = tsm_read_u32(w + 8);
                acc2 = tsm_smlad(xa, tsm_sxtb16(v), acc2);
                acc2 = tsm_smlad(xb, tsm_sxtb16_ror8(v), acc2);
                v = tsm_read_u32(w + 12);
                acc3 = tsm_smlad(xa, tsm_sxtb16(v), acc3);
                acc3 = tsm_smlad(xb, tsm_sxtb16_ror8(v), acc3);
            }
#endif
            for (i = 0; i < tail; ++i) {
                const int32_t xi = x[d4 + i];
                acc0 += xi * (int32_t)w[i];
                acc1 += xi * (int32_t)w[tail + i];
                acc2 += xi * (int32_t)w[2 * tail + i];
                acc3 += xi * (int32_t)w[3 * tail + i];
            }
            w += 4 * tail;
            const int32_t c = o * step;
            out[o] = tsm_fc_out(acc0, mult[c], shift[c], offset, lo, hi);
            out[o + 1] = tsm_fc_out(acc1, mult[c + step], shift[c + step], offset, lo, hi);
            out[o + 2] = tsm_fc_out(acc2, mult[c + 2 * step], shift[c + 2 * step], offset, lo, hi);
            out[o + 3] = tsm_fc_out(acc3, mult[c + 3 * step], shift[c + 3 * step], offset, lo, hi);
        }
        if (o + 2 <= out_depth) {
            /* a pair of units left: its two rows interleaved word by word, as a block's */
            int32_t acc0 = bias[o], acc1 = bias[o + 1];
            for (i = 0; i < d4; i += 4, w += 8) {
                const uint32_t xv = tsm_read_u32(x + i);
                const uint32_t xa = tsm_sxtb16(xv), xb = tsm_sxtb16_ror8(xv);
                uint32_t v = tsm_read_u32(w);
                acc0 = tsm_smlad(xa, tsm_sxtb16(v), acc0);
                acc0 = tsm_smlad(xb, tsm_sxtb16_ror8(v), acc0);
                v = tsm_read_u32(w + 4);
                acc1 = tsm_smlad(xa, tsm_sxtb16(v), acc1);
                acc1 = tsm_smlad(xb, tsm_sxtb16_ror8(v), acc1);
            }
            for (i = 0; i < tail; ++i) {
                const int32_t xi = x[d4 + i];
                acc0 += xi * (int32_t)w[i];
                acc1 += xi * (int32_t)w[tail + i];
            }
            w += 2 * tail;
            out[o] = tsm_fc_out(acc0, mult[o * step], shift[o * step], offset, lo, hi);
            out[o + 1] = tsm_fc_out(acc1, mult[(o + 1) * step], shift[(o + 1) * step], offset,
                                    lo, hi);
            o += 2;
        }
        for (; o < out_depth; ++o, w += depth) {
            int32_t acc = bias[o];
            for (i = 0; i < d4; i += 4) {
                const uint32_t xv = tsm_read_u32(x + i);
                const uint32_t wv = tsm_read_u32(w + i);
                acc = tsm_smlad(tsm_sxtb16(xv), tsm_sxtb16(wv), acc);
                acc = tsm_smlad(tsm_sxtb16_ror8(xv), tsm_sxtb16_ror8(wv), acc);
            }
            for (; i < depth; ++i) {
                acc += (int32_t)x[i] * (int32_t)w[i];
            }
            out[o] = tsm_fc_out(acc, mult[o * step], shift[o * step], offset, lo, hi);
        }
    }
}
