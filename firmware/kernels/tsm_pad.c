#include "tsm_pad.h"

void tsm_pad(const tsm_pad_params_t *p, const int8_t *input, int8_t *output)
{
    int32_t i0, i1, i2, i3;
    for (i0 = 0; i0 < p->output_dims[0]; ++i0) {
        const int32_t j0 = i0 - p->pad_before[0];
        for (i1 = 0; i1 < p->output_dims[1]; ++i1) {
            const int32_t j1 = i1 - p->pad_before[1];
            for (i2 = 0; i2 < p->output_dims[2]; ++i2) {
                const int32_t j2 = i2 - p->pad_before[2];
                for (i3 = 0; i3 < p->output_dims[3]; ++i3) {
                    const int32_t j3 = i3 - p->pad_before[3];
                    const int inside = j0 >= 0 && j0 < p->input_dims[0] && j1 >= 0 &&
                                       j1 < p->input_dims[1] && j2 >= 0 &&
                                       j2 < p->input_dims[2] && j3 >= 0 && j3 < p->input_dims[3];
                    *output++ = inside ? input[((j0 * p->input_dims[1] + j1) * p->input_dims[2] +
                                                j2) * p->input_dims[3] + j3]
                                       : (int8_t)p->pad_value;
                }
            }
        }
    }
}
