/* printf-style formatting for TFLite Micro's log: see tsm_format.h. */
#include "tsm_format.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* Where the text goes: what fits is written, the rest only counted. */
typedef struct {
    char *dst;
    size_t size;
    size_t n;
} tsm_sink_t;

static void tsm_sink_put(tsm_sink_t *out, char c)
{
    if (out->n + 1 < out->size) {
        out->dst[out->n] = c;
    }
    ++out->n;
}

static void tsm_sink_field(tsm_sink_t *out, const char *s, size_t len, int width, bool left,
                           char pad)
{
    size_t fill = width > 0 && (size_t)width > len ? (size_t)width - len : 0;
    if (pad == '0' && len > 0 && s[0] == '-') { /* the sign goes before the zeros */
        tsm_sink_put(out, '-');
        ++s;
        --len;
    }
    for (; !left && fill > 0; --fill) {
        tsm_sink_put(out, pad);
    }
    for (size_t i = 0; i < len; ++i) {
        tsm_sink_put(out, s[i]);
    }
    for (; fill > 0; --fill) {
        tsm_sink_put(out, ' ');
    }
}

/* v's digits in base 10 or 16, written backwards from end; returns where they start. */
static char *tsm_digits(char *end, unsigned long long v, unsigned base, bool upper)
{
    const char *set = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    char *p = end;
    do {
        *--p = set[v % base];
        v /= base;
    } while (v != 0);
    return p;
}

/* A double in fixed point with `decimals` digits after the point (at most 9), rounded half
 * up on the digit after the last; "inf", "nan" and magnitudes from 1e18 up as "inf". */
static char *tsm_fixed(char *end, double v, int decimals)
{
    char *p = end;
    bool negative = v < 0;
    v = negative ? -v : v;
    if (!(v < 1e18)) {
        p -= 3;
        memcpy(p, v == v ? "inf" : "nan", 3);
    } else {
        unsigned long long scale = 1;
        for (int i = 0; i < decimals; ++i) {
            scale *= 10;
        }
        unsigned long long whole = (unsigned long long)v;
        unsigned long long frac =
            (unsigned long long)((v - (double)whole) * (double)scale + 0.5);
        if (frac >= scale) {
            whole += 1;
            frac -= scale;
        }
        for (int i = 0; i < decimals; ++i, frac /= 10) {
            *--p = (char)('0' + frac % 10);
        }
        if (decimals > 0) {
            *--p = '.';
        }
        p = tsm_digits(p, whole, 10, false);
    }
    if (negative) {
        *--p = '-';
    }
    return p;
}

static int tsm_number(const char **f, va_list *args)
{
    int n = 0;
    if (**f == '*') {
        ++*f;
        return va_arg(*args, int);
    }
    for (; **f >= '0' && **f <= '9'; ++*f) {
        n = n * 10 + (**f - '0');
    }
    return n;
}

int tsm_vformat(char *dst, size_t size, const char *format, va_list args)
{
    tsm_sink_t out = {dst, size, 0};
    va_list ap;
    va_copy(ap, args);
    for (const char *f = format; *f != '\0'; ++f) {
        if (*f != '%') {
            tsm_sink_put(&out, *f);
            continue;
        }
        const char *start = f++;
        bool left = false;
        char pad = ' ';
        for (; *f == '-' || *f == '0'; ++f) {
            left = left || *f == '-';
            pad = *f == '0' ? '0' : pad;
        }
        int width = tsm_number(&f, &ap);
        if (width < 0) { /* a negative '*' width is the '-' flag */
            left = true;
            width = -width;
        }
        int precision = -1;
        if (*f == '.') {
            ++f;
            precision = tsm_number(&f, &ap);
        }
        size_t arg = sizeof(int); /* the argument's size, as the length modifier says */
        int narrow = 0;           /* h: short, hh: char (passed as int, printed narrowed) */
        for (int ls = 0;; ++f) {
            if (*f == 'h') {
                ++narrow;
            } else if (*f == 'l') {
                arg = ++ls == 1 ? sizeof(long) : sizeof(long long);
            } else if (*f == 'z') {
                arg = sizeof(size_t);
            } else if (*f == 't') {
                arg = sizeof(ptrdiff_t);
            } else if (*f == 'j') {
                arg = sizeof(intmax_t);
            } else {
                break;
            }
        }
        char buf[48];
        char *end = buf + sizeof(buf);
        char *p = end;
        pad = left || *f == 's' || *f == 'c' ? ' ' : pad;
        switch (*f) {
        case 'd':
        case 'i': {
            long long v = arg > sizeof(long)  ? va_arg(ap, long long)
                          : arg > sizeof(int) ? va_arg(ap, long)
                                              : va_arg(ap, int);
            v = narrow == 1 ? (short)v : narrow > 1 ? (signed char)v : v;
            unsigned long long mag = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
            p = tsm_digits(end, mag, 10, false);
            if (v < 0) {
                *--p = '-';
            }
            break;
        }
        case 'u':
        case 'x':
        case 'X': {
            unsigned long long v = arg > sizeof(long)  ? va_arg(ap, unsigned long long)
                                   : arg > sizeof(int) ? va_arg(ap, unsigned long)
                                                       : va_arg(ap, unsigned);
            v = narrow == 1 ? (unsigned short)v : narrow > 1 ? (unsigned char)v : v;
            p = tsm_digits(end, v, *f == 'u' ? 10 : 16, *f == 'X');
            break;
        }
        case 'p':
            p = tsm_digits(end, (uintptr_t)va_arg(ap, void *), 16, false);
            *--p = 'x';
            *--p = '0';
            break;
        case 'c':
            *--p = (char)va_arg(ap, int);
            break;
        case 's': {
            const char *s = va_arg(ap, const char *);
            s = s != NULL ? s : "(null)";
            size_t len = strlen(s);
            if (precision >= 0 && (size_t)precision < len) {
                len = (size_t)precision;
            }
            tsm_sink_field(&out, s, len, width, left, ' ');
            continue;
        }
        case 'f':
            p = tsm_fixed(end, va_arg(ap, double), precision < 0 ? 6 : precision > 9 ? 9 : precision);
            break;
        case '%':
            *--p = '%';
            break;
        default: /* not one TFLite Micro uses (or the format ends): copied as written */
            for (; start < f; ++start) {
                tsm_sink_put(&out, *start);
            }
            if (*f == '\0') {
                --f; /* the loop stops on the terminator */
            } else {
                tsm_sink_put(&out, *f);
            }
            continue;
        }
        tsm_sink_field(&out, p, (size_t)(end - p), width, left, pad);
    }
    va_end(ap);
    if (size > 0) {
        dst[out.n < size ? out.n : size - 1] = '\0';
    }
    return (int)out.n;
}
