/* The TFLite Micro runtime seen through tinysmile's model interface (tsm_model.h), so the
 * harness and the app run on it unchanged. The model's facts are in the generated
 * tsm_tflm_model.c; the interpreter binding is tsm_tflm.cpp. */
#ifndef TSM_TFLM_MODEL_H
#define TSM_TFLM_MODEL_H

#include <stdint.h>

#include "tsm_model.h"

#ifdef __cplusplus
extern "C" {
#endif

extern const tsm_model_info_t tsm_tflm_info;
/* Builds the interpreter in its arena: 0 when ready, else a one-line reason. */
const char *tsm_tflm_setup(void);
/* TFLite Micro's arena_used_bytes(), after setup. */
uint32_t tsm_tflm_arena_used(void);
void tsm_tflm_invoke(const int8_t *input, int8_t *output);
/* As invoke; hook(ctx, i, 0, 0) is called as op i ends (TFLM's profiler interface): TFLM
 * exposes no layer outputs, only their timing. */
void tsm_tflm_invoke_hooked(const int8_t *input, int8_t *output, tsm_layer_hook_t hook,
                            void *ctx);

#ifdef __cplusplus
}
#endif

#endif
