/* Reset and vector table for the Cortex-M4F of mps2-an386. Symbols come from link.ld. */
#include <stdint.h>

extern uint32_t __etext_data;  /* load address of .data in flash */
extern uint32_t __data_start__;
extern uint32_t __data_end__;
extern uint32_t __bss_start__;
extern uint32_t __bss_end__;
extern uint32_t __stack_top__;
typedef void (*tsm_init_fn_t)(void);
extern tsm_init_fn_t __init_array_start[];
extern tsm_init_fn_t __init_array_end[];

int main(void);
void Reset_Handler(void);
void Default_Handler(void);
void SysTick_Handler(void);

#define TSM_SCB_CPACR (*(volatile uint32_t *)0xE000ED88u)
#define TSM_SCB_VTOR (*(volatile uint32_t *)0xE000ED08u)

void Default_Handler(void)
{
    /* A fault here means a bug: stop where a debugger can see it rather than reboot and
     * let the host mistake the silence for a slow reply (it times out instead). */
    for (;;) {
    }
}

void NMI_Handler(void) __attribute__((weak, alias("Default_Handler")));
void HardFault_Handler(void) __attribute__((weak, alias("Default_Handler")));
void MemManage_Handler(void) __attribute__((weak, alias("Default_Handler")));
void BusFault_Handler(void) __attribute__((weak, alias("Default_Handler")));
void UsageFault_Handler(void) __attribute__((weak, alias("Default_Handler")));
void SVC_Handler(void) __attribute__((weak, alias("Default_Handler")));
void PendSV_Handler(void) __attribute__((weak, alias("Default_Handler")));

typedef void (*tsm_vector_t)(void);

__attribute__((section(".isr_vector"), used)) const tsm_vector_t tsm_vectors[16] = {
    (tsm_vector_t)(uintptr_t)&__stack_top__,
    Reset_Handler,
    NMI_Handler,
    HardFault_Handler,
    MemManage_Handler,
    BusFault_Handler,
    UsageFault_Handler,
    0,
    0,
    0,
    0,
    SVC_Handler,
    0,
    0,
    PendSV_Handler,
    SysTick_Handler,
};

void Reset_Handler(void)
{
    uint32_t *src = &__etext_data;
    for (uint32_t *dst = &__data_start__; dst < &__data_end__;) {
        *dst++ = *src++;
    }
    for (uint32_t *dst = &__bss_start__; dst < &__bss_end__;) {
        *dst++ = 0;
    }
    TSM_SCB_VTOR = (uint32_t)(uintptr_t)tsm_vectors;
    /* Full access to CP10/CP11: gcc may use FPU registers with -mfloat-abi=hard even in
     * integer code (spills, memcpy), which would fault with the FPU off. */
    TSM_SCB_CPACR |= (0xFu << 20);
    __asm volatile("dsb\n\tisb" ::: "memory");
    for (tsm_init_fn_t *fn = __init_array_start; fn < __init_array_end; ++fn) {
        (*fn)();
    }
    (void)main();
    for (;;) {
    }
}
