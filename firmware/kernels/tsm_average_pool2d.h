#ifndef TSM_AVERAGE_POOL2D_H
#define TSM_AVERAGE_POOL2D_H

#include "tsm_pool.h"

void tsm_average_pool2d(const tsm_pool_params_t *p, const int8_t *input, int8_t *output);

/* channels >= 4 and filter_h * filter_w <= 256 (int16 lane sums) */
void tsm_average_pool2d_x4(const tsm_pool_params_t *p, const int8_t *input, int8_t *output);

/* channels 1-3: a pixel's window walked once, its channels together */
void tsm_average_pool2d_narrow(const tsm_pool_params_t *p, const int8_t *input, int8_t *output);

#endif
