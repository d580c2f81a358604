#include "tsm_add.h"

#include "tsm_common.h"

/* TFLite's int8 ADD: both operands are brought to a common scale with 20 bits of
 * headroom (left_shift), added in int32, then rescaled to the output. The inputs are at
 * most 255 in magnitude after the offset, so << 20 stays far inside int32. Reading
 * input1[i] before writing output[i] keeps the kernel correct in place. */
void tsm_add(const tsm_add_params_t *p, const int8_t *input1, const int8_t *input2,
             int8_t *output)
{
    const int8_t *a = p->input1_const ? p->input1_const : input1;
    const int8_t *b = p->input2_const ? p->input2_const : input2;
    const tsm_broadcast_t *s = &p->shape;
    int32_t i0, i1, i2, i3;
    int32_t o = 0;
    for (i0 = 0; i0 < s->dims[0]; ++i0) {
        for (i1 = 0; i1 < s->dims[1]; ++i1) {
            for (i2 = 0; i2 < s->dims[2]; ++i2) {
                for (i3 = 0; i3 < s->dims[3]; ++i3) {
                    const int32_t ia = tsm_broadcast_offset(s->input1_strides, i0, i1, i2, i3);
                    const int32_t ib = tsm_broadcast_offset(s->input2_strides, i0, i1, i2, i3);
                    const int32_t x1 = ((int32_t)a[ia] + p->input1_offset) * (1 << p->left_shift);
                    const int32_t x2 = ((int32_t)b[ib] + p->input2_offset) * (1 << p->left_shift);
                    const int32_t s1 = tsm_requantize(x1, p->input1_multiplier, p->input1_shift);
                    const int32_t s2 = tsm_requantize(x2, p->input2_multiplier, p->input2_shift);
                    int32_t y = tsm_requantize(s1 + s2, p->output_multiplier, p->output_shift);
                    y += p->output_offset;
                    output[o++] = (int8_t)tsm_clamp(y, p->activation_min, p->activation_max);
                }
            }
        }
    }
}

/* Parameters as locals: through the params pointer every int8 store (which may alias
 * anything) would force reloads. */
typedef struct {
    int32_t multiplier, shift, offset, lo, hi;
} tsm_add_out_t;

static inline int8_t tsm_add_out(const tsm_add_out_t q, int32_t sum)
{
    int32_t y = tsm_requantize_q31(sum, q.multiplier, q.shift) + q.offset;
    y = TSM_MAX(y, q.lo);
    return (int8_t)TSM_MIN(y, q.hi);
}

/* The first two of ADD's three requantizations depend on one int8 each: the compiler
 * tabulates them (the same function, evaluated in Python), which leaves one per element. */
void tsm_add_table(const tsm_add_params_t *p, const int8_t *input1, const int8_t *input2,
                   int8_t *output)
{
    const int8_t *a = p->input1_const ? p->input1_const : input1;
    const int8_t *b = p->input2_const ? p->input2_const : input2;
    const int32_t *t1 = p->input1_table + 128;
    const int32_t *t2 = p->input2_table + 128;
    const tsm_broadcast_t *s = &p->shape;
    const tsm_add_out_t q = {p->output_multiplier, p->output_shift, p->output_offset,
                             p->activation_min, p->activation_max};
    int32_t i0, i1, i2, i3;
    int32_t o = 0;
    if (p->flat) {
        const int32_t n = s->dims[0] * s->dims[1] * s->dims[2] * s->dims[3];
        for (o = 0; o < n; ++o) {
            output[o] = tsm_add_out(q, t1[a[o]] + t2[b[o]]);
        }
        return;
    }
    for (i0 = 0; i0 < s->dims[0]; ++i0) {
        for (i1 = 0; i1 < s->dims[1]; ++i1) {
            for (i2 = 0; i2 < s->dims[2]; ++i2) {
                for (i3 = 0; i3 < s->dims[3]; ++i3) {
                    const int32_t ia = tsm_broadcast_offset(s->input1_strides, i0, i1, i2, i3);
                    const int32_t ib = tsm_broadcast_offset(s->input2_strides, i0, i1, i2, i3);
                    output[o++] = tsm_add_out(q, t1[a[ia]] + t2[b[ib]]);
                }
            }
        }
    }
}
