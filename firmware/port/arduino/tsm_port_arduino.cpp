/* Port for boards programmed through an Arduino core (PlatformIO framework = arduino):
 * Serial for the link, an LED and a button pin from the board file, and a tick counter:
 * DWT's cycle counter on Cortex-M3/M4/M7 (TSM_PORT_COUNTER_DWT), the core's microsecond
 * timer elsewhere (TSM_PORT_COUNTER_MICROS). tinysmile passes every choice as a -D flag. */
#include <Arduino.h>

extern "C" {
#include "tsm_port.h"
}

#ifndef TSM_PORT_BAUD
#define TSM_PORT_BAUD 115200u
#endif
#ifndef TSM_PORT_CPU_HZ
#define TSM_PORT_CPU_HZ 48000000u
#endif
#ifndef TSM_PORT_LED_PIN
#define TSM_PORT_LED_PIN LED_BUILTIN
#endif
#ifndef TSM_PORT_LED_ON
#define TSM_PORT_LED_ON HIGH
#endif
#ifndef TSM_PORT_BUTTON_PRESSED
#define TSM_PORT_BUTTON_PRESSED LOW
#endif

#if defined(TSM_PORT_COUNTER_DWT)
/* ARMv7-M Architecture Reference Manual, C1.6 (DEMCR) and C1.8 (DWT). */
#define TSM_DEMCR (*(volatile uint32_t *)0xE000EDFCu)
#define TSM_DEMCR_TRCENA (1u << 24)
#define TSM_DWT_CTRL (*(volatile uint32_t *)0xE0001000u)
#define TSM_DWT_CTRL_CYCCNTENA 1u
#define TSM_DWT_CYCCNT (*(volatile uint32_t *)0xE0001004u)
/* Cortex-M7 locks the DWT until this key is written; elsewhere the write is ignored. */
#define TSM_DWT_LAR (*(volatile uint32_t *)0xE0001FB0u)
#define TSM_DWT_LAR_KEY 0xC5ACCE55u

static uint32_t tsm_port_raw_ticks(void)
{
    return TSM_DWT_CYCCNT;
}
#define TSM_PORT_TICK_HZ TSM_PORT_CPU_HZ
#elif defined(TSM_PORT_COUNTER_MICROS)
static uint32_t tsm_port_micros_base;

static uint32_t tsm_port_raw_ticks(void)
{
    return (uint32_t)micros() - tsm_port_micros_base;
}
#define TSM_PORT_TICK_HZ 1000000u
#else
#error "define TSM_PORT_COUNTER_DWT or TSM_PORT_COUNTER_MICROS (tinysmile does, from the board file)"
#endif

/* The 32-bit counter is extended in software: a wrap is seen when a reading is below the
 * previous one, so the harness must read it at least once per wrap (89 s at 48 MHz for DWT,
 * 71 min for micros); it reads it at the start and end of every request. */
static uint32_t tsm_port_last;
static uint64_t tsm_port_high;

void tsm_port_init(void)
{
    Serial.begin(TSM_PORT_BAUD);
    pinMode(TSM_PORT_LED_PIN, OUTPUT);
    digitalWrite(TSM_PORT_LED_PIN, TSM_PORT_LED_ON == HIGH ? LOW : HIGH);
#if defined(TSM_PORT_BUTTON_PIN)
    pinMode(TSM_PORT_BUTTON_PIN, TSM_PORT_BUTTON_PRESSED == LOW ? INPUT_PULLUP : INPUT);
#endif
#if defined(TSM_PORT_COUNTER_DWT)
    TSM_DEMCR |= TSM_DEMCR_TRCENA;
    TSM_DWT_LAR = TSM_DWT_LAR_KEY;
    TSM_DWT_CTRL |= TSM_DWT_CTRL_CYCCNTENA;
#endif
    tsm_port_ticks_restart();
}

int32_t tsm_port_uart_getc(void)
{
    if (Serial.available() > 0) {
        return (int32_t)(Serial.read() & 0xFF);
    }
    return -1;
}

void tsm_port_uart_write(const uint8_t *data, uint32_t n)
{
    while (n > 0u) {
        size_t sent = Serial.write(data, (size_t)n);
        data += sent;
        n -= (uint32_t)sent;
    }
}

void tsm_port_ticks_restart(void)
{
#if defined(TSM_PORT_COUNTER_DWT)
    TSM_DWT_CYCCNT = 0u;
#else
    tsm_port_micros_base = (uint32_t)micros();
#endif
    tsm_port_last = 0u;
    tsm_port_high = 0u;
}

uint64_t tsm_port_ticks(void)
{
    uint32_t now = tsm_port_raw_ticks();
    if (now < tsm_port_last) {
        tsm_port_high += (uint64_t)1u << 32;
    }
    tsm_port_last = now;
    return tsm_port_high | now;
}

uint32_t tsm_port_tick_hz(void)
{
    return TSM_PORT_TICK_HZ;
}

void tsm_port_led(int32_t on)
{
    digitalWrite(TSM_PORT_LED_PIN, on ? TSM_PORT_LED_ON : (TSM_PORT_LED_ON == HIGH ? LOW : HIGH));
}

int32_t tsm_port_button(void)
{
#if defined(TSM_PORT_BUTTON_PIN)
    return digitalRead(TSM_PORT_BUTTON_PIN) == TSM_PORT_BUTTON_PRESSED ? 1 : 0;
#else
    return 0;
#endif
}

#if !defined(TSM_PORT_CAMERA)
int32_t tsm_port_camera_capture(uint8_t *buf, uint32_t size)
{
    (void)buf;
    (void)size;
    return -1;
}
#endif
