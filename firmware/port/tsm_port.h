/* What the harness and the apps need from a board. One implementation per board lives in
 * a sub-folder; the generated project compiles exactly one of them. */
#ifndef TSM_PORT_H
#define TSM_PORT_H

#include <stdint.h>

void tsm_port_init(void);

/* Next received byte, or -1 when none is waiting (never blocks). */
int32_t tsm_port_uart_getc(void);
/* Blocks until every byte is handed to the UART. */
void tsm_port_uart_write(const uint8_t *data, uint32_t n);

/* Free-running 64-bit tick counter (SysTick extended in software). On real boards a tick is
 * a core cycle; under QEMU -icount its relation to instructions is fixed by the board file. */
uint64_t tsm_port_ticks(void);
/* Restart the counter from zero so that a measurement starts at a fixed phase of SysTick:
 * otherwise when its wrap interrupt lands inside a measurement would depend on how long the
 * host took to send the request. */
void tsm_port_ticks_restart(void);
uint32_t tsm_port_tick_hz(void);

void tsm_port_led(int32_t on);
int32_t tsm_port_button(void);
/* Fills buf with a frame; returns bytes written, or -1 when the board has no camera. */
int32_t tsm_port_camera_capture(uint8_t *buf, uint32_t size);

#endif
