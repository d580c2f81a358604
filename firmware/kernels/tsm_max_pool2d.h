#ifndef TSM_MAX_POOL2D_H
#define TSM_MAX_POOL2D_H

#include "tsm_pool.h"

void tsm_max_pool2d(const tsm_pool_params_t *p, const int8_t *input, int8_t *output);

/* channels >= 4: four channels per word (the last group overlapping the one before when
 * channels % 4 != 0), SSUB8 + SEL per tap on a DSP core */
void tsm_max_pool2d_x4(const tsm_pool_params_t *p, const int8_t *input, int8_t *output);

/* channels 1-3: a pixel's window walked once, its channels together */
void tsm_max_pool2d_narrow(const tsm_pool_params_t *p, const int8_t *input, int8_t *output);

#endif
