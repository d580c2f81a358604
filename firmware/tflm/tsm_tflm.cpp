/* The TFLite Micro runtime behind tinysmile's model interface: the interpreter over the
 * model's C array, exactly the model's ops (model_ops.h, generated) and an arena of
 * kTsmArenaSize bytes (TFLM's own report on the host plus a stated margin).
 *
 * Setup failures (schema, ops, arena) are returned as one line that the harness or the
 * app sends over the link: a too-small arena is an answer, never a hang. TFLM's own log
 * (DebugLog) is kept in a small buffer so its reason ends up in that line. */
#include <stdint.h>
#include <string.h>

#include <new>

#include "tensorflow/lite/micro/debug_log.h"
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_profiler_interface.h"
#include "tensorflow/lite/schema/schema_generated.h"

/* TFLite Micro's log has two forms. The Arduino library formats each message itself
 * (micro_string.h's MicroVsnprintf) and hands DebugLog the text; current TFLite Micro
 * dropped micro_string and hands DebugLog the format and its arguments, leaving the
 * formatting to the target. The firmware defines the one the library's debug_log.h
 * declares (the compiler checks it against that declaration). */
#if !__has_include("tensorflow/lite/micro/micro_string.h")
#define TSM_TFLM_LOG_FORMATS 1
#include "tsm_format.h"
#endif

#include "model_data.h"
#include "model_ops.h"
#include "tsm_tflm_model.h"

namespace {

alignas(16) uint8_t tsm_tflm_arena[kTsmArenaSize];
tflite::MicroInterpreter *tsm_tflm_interpreter;

char tsm_tflm_log[96];
char tsm_tflm_error[160];

/* TFLM's profiler interface: each op of Invoke() is one event; its end is reported to the
 * harness's hook as layer i, the same way the generated C reports its layers. */
class TsmProfiler : public tflite::MicroProfilerInterface {
public:
    uint32_t BeginEvent(const char *tag) override
    {
        (void)tag;
        return next_++;
    }
    void EndEvent(uint32_t event_handle) override
    {
        if (hook_ != nullptr) {
            hook_(ctx_, static_cast<int32_t>(event_handle), nullptr, 0);
        }
    }
    void Arm(tsm_layer_hook_t hook, void *ctx)
    {
        hook_ = hook;
        ctx_ = ctx;
        next_ = 0;
    }

private:
    tsm_layer_hook_t hook_ = nullptr;
    void *ctx_ = nullptr;
    uint32_t next_ = 0;
};

/* The runtime's objects are built in place in static storage and never destroyed: the
 * firmware never exits, so no destructor is registered (bare metal has no atexit). */
template <typename T> struct TsmStatic {
    alignas(T) uint8_t bytes[sizeof(T)];
};
TsmStatic<TsmProfiler> tsm_tflm_profiler_storage;
TsmStatic<TsmOpResolver> tsm_tflm_resolver_storage;
TsmStatic<tflite::MicroInterpreter> tsm_tflm_interpreter_storage;
TsmProfiler *tsm_tflm_profiler;

void tsm_tflm_append(char *dst, size_t size, const char *src)
{
    size_t n = strlen(dst);
    while (*src != '\0' && n + 1 < size) {
        dst[n++] = *src++;
    }
    dst[n] = '\0';
}

const char *tsm_tflm_fail(const char *what)
{
    tsm_tflm_error[0] = '\0';
    tsm_tflm_append(tsm_tflm_error, sizeof(tsm_tflm_error), what);
    if (tsm_tflm_log[0] != '\0') {
        tsm_tflm_append(tsm_tflm_error, sizeof(tsm_tflm_error), ": ");
        tsm_tflm_append(tsm_tflm_error, sizeof(tsm_tflm_error), tsm_tflm_log);
    }
    return tsm_tflm_error;
}

/* TFLM's log, one call per fragment: the firmware owns the serial link, so the text is
 * kept, last line first, for an error reply. */
void tsm_tflm_keep_log(const char *s)
{
    if (s[0] == '\r' || s[0] == '\n') {
        return;
    }
    tsm_tflm_log[0] = '\0';
    tsm_tflm_append(tsm_tflm_log, sizeof(tsm_tflm_log), s);
}

}  // namespace

#ifdef TSM_TFLM_LOG_FORMATS
extern "C" void DebugLog(const char *format, va_list args)
{
    char line[128];
    tsm_vformat(line, sizeof(line), format, args);
    tsm_tflm_keep_log(line);
}

extern "C" int DebugVsnprintf(char *buffer, size_t buf_size, const char *format,
                              va_list vlist)
{
    return tsm_vformat(buffer, buf_size, format, vlist);
}
#else
/* Weak: where the Arduino library's system_setup.cpp is compiled (it defines DebugLog for a
 * few boards), its definition wins instead of clashing. */
extern "C" __attribute__((weak)) void DebugLog(const char *s)
{
    tsm_tflm_keep_log(s);
}
#endif

/* No heap: TFLite Micro under TF_LITE_STATIC_MEMORY takes all its memory from the arena.
 * The C++ runtime's operator new/delete are still referenced (deleting destructors, an
 * unused path of the library's common.cpp); these keep malloc, and a heap the linker
 * script does not have, out of the firmware. */
void *operator new(size_t size)
{
    (void)size;
    __builtin_trap();
}
void operator delete(void *p) noexcept
{
    (void)p;
}
void operator delete(void *p, size_t size) noexcept
{
    (void)p;
    (void)size;
}

/* TFLITE_ABORT: newlib's abort() raises a signal, whose table it mallocs. Stop here
 * instead, where a debugger sees it (the host times out: a bug, not a model error). */
extern "C" void abort(void)
{
    for (;;) {
    }
}

extern "C" const char *tsm_tflm_setup(void)
{
    /* Not tflite::InitializeTarget(): the port layer has set the board up, and the Arduino
     * library's version would re-open the serial port under the protocol. */
    const tflite::Model *model = tflite::GetModel(TSM_TFLM_MODEL_DATA);
    if (model->version() != TFLITE_SCHEMA_VERSION) {
        return tsm_tflm_fail("TFLM: model schema version differs from the library's");
    }
    tsm_tflm_profiler = new (tsm_tflm_profiler_storage.bytes) TsmProfiler();
    TsmOpResolver *resolver = new (tsm_tflm_resolver_storage.bytes) TsmOpResolver();
    if (tsm_register_ops(*resolver) != kTfLiteOk) {
        return tsm_tflm_fail("TFLM: op registration failed");
    }
    tflite::MicroInterpreter *interpreter = new (tsm_tflm_interpreter_storage.bytes)
        tflite::MicroInterpreter(model, *resolver, tsm_tflm_arena, kTsmArenaSize, nullptr,
                                 tsm_tflm_profiler);
    if (interpreter->AllocateTensors() != kTfLiteOk) {
        return tsm_tflm_fail("TFLM: AllocateTensors failed (kTsmArenaSize too small?)");
    }
    const TfLiteTensor *in = interpreter->input(0);
    const TfLiteTensor *out = interpreter->output(0);
    if (in->type != kTfLiteInt8 || out->type != kTfLiteInt8 ||
        in->bytes != static_cast<size_t>(tsm_tflm_info.input_size) ||
        out->bytes != static_cast<size_t>(tsm_tflm_info.output_size)) {
        return tsm_tflm_fail("TFLM: input/output are not the int8 tensors tinysmile expects");
    }
    tsm_tflm_interpreter = interpreter;
    return nullptr;
}

extern "C" uint32_t tsm_tflm_arena_used(void)
{
    return tsm_tflm_interpreter != nullptr
               ? static_cast<uint32_t>(tsm_tflm_interpreter->arena_used_bytes())
               : 0u;
}

extern "C" void tsm_tflm_invoke_hooked(const int8_t *input, int8_t *output,
                                       tsm_layer_hook_t hook, void *ctx)
{
    const size_t out_size = static_cast<size_t>(tsm_tflm_info.output_size);
    if (tsm_tflm_interpreter == nullptr) {
        memset(output, 0x80, out_size);
        return;
    }
    memcpy(tsm_tflm_interpreter->input(0)->data.int8, input,
           static_cast<size_t>(tsm_tflm_info.input_size));
    tsm_tflm_profiler->Arm(hook, ctx);
    const TfLiteStatus status = tsm_tflm_interpreter->Invoke();
    tsm_tflm_profiler->Arm(nullptr, nullptr);
    if (status != kTfLiteOk) {
        /* The host compares every byte: a failed run must not look like a result. */
        memset(output, 0x80, out_size);
        return;
    }
    memcpy(output, tsm_tflm_interpreter->output(0)->data.int8, out_size);
}

extern "C" void tsm_tflm_invoke(const int8_t *input, int8_t *output)
{
    tsm_tflm_invoke_hooked(input, output, nullptr, nullptr);
}
