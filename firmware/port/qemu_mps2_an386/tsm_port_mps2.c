/* Port for QEMU's mps2-an386 (Cortex-M4F): CMSDK APB UART0, SysTick, FPGA I/O LEDs/buttons. */
#include <stdint.h>

#include "tsm_port.h"

#define TSM_REG(addr) (*(volatile uint32_t *)(addr))

/* CMSDK APB UART (ARM DDI 0479) */
#define TSM_UART0_BASE 0x40004000u
#define TSM_UART_DATA TSM_REG(TSM_UART0_BASE + 0x00u)
#define TSM_UART_STATE TSM_REG(TSM_UART0_BASE + 0x04u)
#define TSM_UART_CTRL TSM_REG(TSM_UART0_BASE + 0x08u)
#define TSM_UART_BAUDDIV TSM_REG(TSM_UART0_BASE + 0x10u)
#define TSM_UART_STATE_TXFULL 0x1u
#define TSM_UART_STATE_RXFULL 0x2u
#define TSM_UART_CTRL_TXEN 0x1u
#define TSM_UART_CTRL_RXEN 0x2u

/* SysTick (ARMv7-M ARM B3.3) */
#define TSM_SYST_CSR TSM_REG(0xE000E010u)
#define TSM_SYST_RVR TSM_REG(0xE000E014u)
#define TSM_SYST_CVR TSM_REG(0xE000E018u)
#define TSM_SYST_CSR_ENABLE 0x1u
#define TSM_SYST_CSR_TICKINT 0x2u
#define TSM_SYST_CSR_CLKSOURCE 0x4u
#define TSM_SYST_CSR_COUNTFLAG 0x10000u
#define TSM_SYST_RELOAD 0x00FFFFFFu

/* MPS2 FPGA system control (AN386 application note) */
#define TSM_FPGAIO_LED TSM_REG(0x40028000u)
#define TSM_FPGAIO_BUTTON TSM_REG(0x40028008u)

#ifndef TSM_PORT_CPU_HZ
#define TSM_PORT_CPU_HZ 25000000u
#endif
#ifndef TSM_PORT_BAUD
#define TSM_PORT_BAUD 115200u
#endif

static volatile uint32_t tsm_systick_wraps;

void SysTick_Handler(void);
void SysTick_Handler(void)
{
    ++tsm_systick_wraps;
}

void tsm_port_init(void)
{
    /* QEMU ignores the divider but a real AN386 FPGA image would not. */
    TSM_UART_BAUDDIV = TSM_PORT_CPU_HZ / TSM_PORT_BAUD;
    TSM_UART_CTRL = TSM_UART_CTRL_TXEN | TSM_UART_CTRL_RXEN;
    tsm_port_ticks_restart();
}

int32_t tsm_port_uart_getc(void)
{
    if (TSM_UART_STATE & TSM_UART_STATE_RXFULL) {
        return (int32_t)(TSM_UART_DATA & 0xFFu);
    }
    return -1;
}

void tsm_port_uart_write(const uint8_t *data, uint32_t n)
{
    for (uint32_t i = 0; i < n; ++i) {
        while (TSM_UART_STATE & TSM_UART_STATE_TXFULL) {
        }
        TSM_UART_DATA = data[i];
    }
}

void tsm_port_ticks_restart(void)
{
    TSM_SYST_CSR = 0;
    TSM_SYST_RVR = TSM_SYST_RELOAD;
    TSM_SYST_CVR = 0; /* any write clears the counter and COUNTFLAG */
    tsm_systick_wraps = 0;
    TSM_SYST_CSR = TSM_SYST_CSR_ENABLE | TSM_SYST_CSR_TICKINT | TSM_SYST_CSR_CLKSOURCE;
}

uint64_t tsm_port_ticks(void)
{
    /* The counter counts down and the wrap count is bumped by an interrupt: read the wrap
     * count on both sides of the counter and retry if a wrap slipped in between, so a
     * wrap is never counted twice or missed. */
    uint32_t wraps;
    uint32_t value;
    do {
        wraps = tsm_systick_wraps;
        value = TSM_SYST_CVR;
    } while (wraps != tsm_systick_wraps);
    /* The counter reads 0 right after restart and at each wrap (whose interrupt has then
     * already counted it); otherwise the tick that loaded RELOAD was itself one tick. */
    uint32_t elapsed = value == 0u ? 0u : TSM_SYST_RELOAD - value + 1u;
    return (uint64_t)wraps * (TSM_SYST_RELOAD + 1u) + elapsed;
}

uint32_t tsm_port_tick_hz(void)
{
    return TSM_PORT_CPU_HZ;
}

void tsm_port_led(int32_t on)
{
    TSM_FPGAIO_LED = on ? 1u : 0u;
}

int32_t tsm_port_button(void)
{
    return (int32_t)(TSM_FPGAIO_BUTTON & 1u);
}

int32_t tsm_port_camera_capture(uint8_t *buf, uint32_t size)
{
    (void)buf;
    (void)size;
    return -1;
}
