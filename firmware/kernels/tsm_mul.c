#include "tsm_mul.h"

#include "tsm_common.h"

/* The product of two offset int8 values is at most 255 * 255: no overflow before the
 * requantization. In-place safe on input1 (each output reads its own inputs first). */
void tsm_mul(const tsm_mul_params_t *p, const int8_t *input1, const int8_t *input2,
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
                    const int32_t prod = ((int32_t)a[ia] + p->input1_offset) *
                                         ((int32_t)b[ib] + p->input2_offset);
                    int32_t y = tsm_requantize(prod, p->output_multiplier, p->output_shift);
                    y += p->output_offset;
                    output[o++] = (int8_t)tsm_clamp(y, p->activation_min, p->activation_max);
                }
            }
        }
    }
}
