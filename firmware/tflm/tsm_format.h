/* printf-style formatting into a buffer, for TFLite Micro's log (current TFLite Micro
 * leaves formatting its messages to the target; firmware/tflm/tsm_tflm.cpp). No heap and
 * no stdio: newlib's vsnprintf links malloc, which the firmware does not have. */
#ifndef TSM_FORMAT_H
#define TSM_FORMAT_H

#include <stdarg.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* vsnprintf's contract: writes at most size bytes, the last a NUL (when size > 0), and
 * returns the length the whole text has. Conversions: d i u x X c s p % and f; flags '-'
 * and '0'; a width (digits or '*'); lengths hh h l ll z t j; a precision for s and f only.
 * As the C library prints them, except: f has at most 9 decimals and rounds a tie up (the
 * C library: to even, on the double's exact value), magnitudes from 1e18 print as "inf";
 * p prints "0x0" for a null pointer. Any other conversion is copied as written. TFLite
 * Micro's messages use d, u, s and a few f. */
int tsm_vformat(char *dst, size_t size, const char *format, va_list args);

#ifdef __cplusplus
}
#endif

#endif
