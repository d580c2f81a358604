/* 4-D broadcasting for binary elementwise kernels: an input dimension of size 1 that the
 * output repeats gets stride 0, so one loop nest serves every broadcast pattern. */
#ifndef TSM_BROADCAST_H
#define TSM_BROADCAST_H

#include <stdint.h>

typedef struct {
    int32_t dims[4];           /* output shape, NHWC, padded with leading ones */
    int32_t input1_strides[4]; /* 0 where input1 is broadcast */
    int32_t input2_strides[4];
} tsm_broadcast_t;

/* Where output element (i0, i1, i2, i3) reads an input with these strides. */
static inline int32_t tsm_broadcast_offset(const int32_t strides[4], int32_t i0, int32_t i1,
                                           int32_t i2, int32_t i3)
{
    return i0 * strides[0] + i1 * strides[1] + i2 * strides[2] + i3 * strides[3];
}

#endif
