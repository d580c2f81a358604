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

#endif
