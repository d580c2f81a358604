/* What every generated model exposes, whatever its prefix. */
#ifndef TSM_MODEL_H
#define TSM_MODEL_H

#include <stdint.h>

/* Called after each layer when the model is compiled with TSM_LAYER_HOOKS:
 * data points at that layer's output inside the arena, valid only during the call. */
typedef void (*tsm_layer_hook_t)(void *ctx, int32_t layer, const int8_t *data, int32_t size);

/* Runtimes that set up at boot (TFLite Micro: the interpreter and its arena) provide one:
 * it returns 0 when the model is ready, else a one-line reason the firmware reports over
 * the link instead of hanging. Generated C models need none (the glue passes 0). */
typedef const char *(*tsm_setup_fn_t)(void);
/* Arena bytes the runtime really uses, measured on the device (0: none to report). */
typedef uint32_t (*tsm_arena_used_fn_t)(void);

typedef struct {
    const char *name;
    const char *sha256; /* hex digest of the source .tflite */
    int32_t input_size;
    int32_t output_size;
    int32_t input_rank;
    int32_t input_shape[4];
    int32_t output_rank;
    int32_t output_shape[4];
    float input_scale;
    int32_t input_zero_point;
    float output_scale;
    int32_t output_zero_point;
    int32_t arena_size;
    int32_t num_layers;
    const int32_t *layer_output_sizes; /* 0: the runtime cannot hand out layer outputs */
    const char *const *layer_kinds; /* TFLite operator names, e.g. "CONV_2D" */
} tsm_model_info_t;

#endif
