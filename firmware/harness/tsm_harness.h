/* The verification harness: answers HELLO / INFER / LAYER / PROFILE over the serial link.
 * The generated glue (templates/pio/tsm_glue.c.j2) provides the model binding below and
 * buffers sized for that model, so the harness itself does not depend on any model. */
#ifndef TSM_HARNESS_H
#define TSM_HARNESS_H

#include <stdint.h>

#include "tsm_model.h"

typedef void (*tsm_invoke_fn_t)(const int8_t *input, int8_t *output);
typedef void (*tsm_invoke_hooked_fn_t)(const int8_t *input, int8_t *output, tsm_layer_hook_t hook,
                                       void *ctx);

typedef struct {
    const tsm_model_info_t *info;
    tsm_invoke_fn_t invoke;
    tsm_invoke_hooked_fn_t invoke_hooked;
    const char *board;
    int8_t *input;        /* info->input_size bytes: the last input, kept for LAYER/PROFILE */
    int8_t *output;       /* info->output_size bytes */
    uint64_t *layer_ticks; /* info->num_layers entries */
    uint32_t stack_size;   /* reported by HELLO so the host can print RAM use */
    tsm_setup_fn_t setup;  /* 0: nothing to set up */
    tsm_arena_used_fn_t arena_used; /* 0: the arena is used whole (a static plan) */
} tsm_harness_model_t;

extern const tsm_harness_model_t tsm_harness_model;

/* Never returns. */
void tsm_harness_run(void);

#endif
