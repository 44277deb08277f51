/*
 * glibc238-compat: the GLIBC_2.38 symbols that Debian trixie/sid builds of
 * bpftrace and its libraries (LLVM, clang, libbpf, libbcc, libstdc++, ...)
 * need, implemented on top of bookworm's glibc 2.36.
 *
 * Used by scripts/install-toolchains for the private bpftrace 0.23 / 0.27
 * roots only (LD_PRELOAD in their wrappers), after the GLIBC_2.38 version
 * requirements in those ELF files were renamed to GLIBC_2.2.5
 * (scripts/lib/elf-glibc-compat.py), the version these functions are
 * exported under here (glibc238-compat.map).  Never installed system-wide.
 *
 * glibc 2.38 added, for C23/_GNU_SOURCE builds:
 *   - __isoc23_strto*, __isoc23_wcsto*: like strto* but base 0 and 2 also
 *     accept a "0b"/"0B" prefix.  Implemented below, with that prefix.
 *   - __isoc23_*scanf: like the C99 scanf family plus "%b" and "0b" input
 *     for %i.  Mapped to the __isoc99_* functions (no "%b": nothing in these
 *     programs' format strings uses it).
 *   - fmod, fmodf @GLIBC_2.38: the same functions without the obsolete SVID
 *     error handling; not here: the renamed requirement binds to libm's
 *     fmod@@GLIBC_2.2.5 directly.
 *
 * Build: cc -std=c11 -O2 -fPIC -shared -Wl,--version-script=VERSIONS -o X.so
 * with VERSIONS = glibc238-compat.map.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <wchar.h>
#include <wctype.h>

extern int __isoc99_vfscanf(FILE *, const char *, va_list);
extern int __isoc99_vsscanf(const char *, const char *, va_list);
extern int __isoc99_vscanf(const char *, va_list);
extern int __isoc99_vfwscanf(FILE *, const wchar_t *, va_list);
extern int __isoc99_vswscanf(const wchar_t *, const wchar_t *, va_list);
extern int __isoc99_vwscanf(const wchar_t *, va_list);

#define EXPORT __attribute__((visibility("default")))

/* ---- scanf family ---- */
EXPORT int __isoc23_sscanf(const char *s, const char *fmt, ...)
{ va_list ap; va_start(ap, fmt); int r = __isoc99_vsscanf(s, fmt, ap); va_end(ap); return r; }
EXPORT int __isoc23_fscanf(FILE *f, const char *fmt, ...)
{ va_list ap; va_start(ap, fmt); int r = __isoc99_vfscanf(f, fmt, ap); va_end(ap); return r; }
EXPORT int __isoc23_scanf(const char *fmt, ...)
{ va_list ap; va_start(ap, fmt); int r = __isoc99_vscanf(fmt, ap); va_end(ap); return r; }
EXPORT int __isoc23_vsscanf(const char *s, const char *fmt, va_list ap) { return __isoc99_vsscanf(s, fmt, ap); }
EXPORT int __isoc23_vfscanf(FILE *f, const char *fmt, va_list ap) { return __isoc99_vfscanf(f, fmt, ap); }
EXPORT int __isoc23_vscanf(const char *fmt, va_list ap) { return __isoc99_vscanf(fmt, ap); }
EXPORT int __isoc23_swscanf(const wchar_t *s, const wchar_t *fmt, ...)
{ va_list ap; va_start(ap, fmt); int r = __isoc99_vswscanf(s, fmt, ap); va_end(ap); return r; }
EXPORT int __isoc23_fwscanf(FILE *f, const wchar_t *fmt, ...)
{ va_list ap; va_start(ap, fmt); int r = __isoc99_vfwscanf(f, fmt, ap); va_end(ap); return r; }
EXPORT int __isoc23_wscanf(const wchar_t *fmt, ...)
{ va_list ap; va_start(ap, fmt); int r = __isoc99_vwscanf(fmt, ap); va_end(ap); return r; }
EXPORT int __isoc23_vswscanf(const wchar_t *s, const wchar_t *fmt, va_list ap) { return __isoc99_vswscanf(s, fmt, ap); }
EXPORT int __isoc23_vfwscanf(FILE *f, const wchar_t *fmt, va_list ap) { return __isoc99_vfwscanf(f, fmt, ap); }
EXPORT int __isoc23_vwscanf(const wchar_t *fmt, va_list ap) { return __isoc99_vwscanf(fmt, ap); }

/* ---- strto* / wcsto* with the C23 "0b" prefix ---- */
#define BIN_PREFIX(CHAR, ISSPACE)                                              \
    /* returns pointer to the first binary digit, or NULL */                  \
    static const CHAR *bin_digits_##CHAR(const CHAR *s, int base, int *neg)  \
    {                                                                          \
        if (base != 0 && base != 2) return NULL;                               \
        while (ISSPACE(*s)) s++;                                               \
        *neg = 0;                                                              \
        if (*s == '-' || *s == '+') { *neg = (*s == '-'); s++; }               \
        if (s[0] == '0' && (s[1] == 'b' || s[1] == 'B') &&                     \
            (s[2] == '0' || s[2] == '1'))                                      \
            return s + 2;                                                      \
        return NULL;                                                           \
    }
static int isspace_c(int c) { return c == ' ' || (c >= '\t' && c <= '\r'); }
BIN_PREFIX(char, isspace_c)
BIN_PREFIX(wchar_t, iswspace)

/* unsigned: strtoumax-style magnitude, C negation for '-' */
#define STRTO_U(NAME, CHAR, TYPE, MAX, BASEFN, UFN)                            \
    EXPORT TYPE NAME(const CHAR *restrict s, CHAR **restrict end, int base)   \
    {                                                                          \
        int neg; const CHAR *d = bin_digits_##CHAR(s, base, &neg);             \
        if (!d) return BASEFN(s, end, base);                                   \
        int saved = errno; errno = 0;                                          \
        uintmax_t u = UFN(d, end, 2);                                          \
        if (errno == ERANGE || u > (uintmax_t)(MAX)) { errno = ERANGE; return MAX; } \
        errno = saved;                                                         \
        return neg ? (TYPE)-(TYPE)u : (TYPE)u;                                 \
    }
/* signed: clamp to [MIN, MAX] */
#define STRTO_S(NAME, CHAR, TYPE, MIN, MAX, BASEFN, UFN)                       \
    EXPORT TYPE NAME(const CHAR *restrict s, CHAR **restrict end, int base)   \
    {                                                                          \
        int neg; const CHAR *d = bin_digits_##CHAR(s, base, &neg);             \
        if (!d) return BASEFN(s, end, base);                                   \
        int saved = errno; errno = 0;                                          \
        uintmax_t u = UFN(d, end, 2);                                          \
        int range = (errno == ERANGE);                                         \
        errno = saved;                                                         \
        if (neg) {                                                             \
            if (range || u > (uintmax_t)(MAX) + 1) { errno = ERANGE; return MIN; } \
            return u == (uintmax_t)(MAX) + 1 ? (MIN) : -(TYPE)u;               \
        }                                                                      \
        if (range || u > (uintmax_t)(MAX)) { errno = ERANGE; return MAX; }     \
        return (TYPE)u;                                                        \
    }

STRTO_S(__isoc23_strtol,    char, long,               LONG_MIN,  LONG_MAX,  strtol,   strtoumax)
STRTO_S(__isoc23_strtoll,   char, long long,          LLONG_MIN, LLONG_MAX, strtoll,  strtoumax)
STRTO_S(__isoc23_strtoimax, char, intmax_t,           INTMAX_MIN, INTMAX_MAX, strtoimax, strtoumax)
STRTO_U(__isoc23_strtoul,   char, unsigned long,      ULONG_MAX,  strtoul,  strtoumax)
STRTO_U(__isoc23_strtoull,  char, unsigned long long, ULLONG_MAX, strtoull, strtoumax)
STRTO_U(__isoc23_strtoumax, char, uintmax_t,          UINTMAX_MAX, strtoumax, strtoumax)
STRTO_S(__isoc23_wcstol,    wchar_t, long,            LONG_MIN,  LONG_MAX,  wcstol,   wcstoumax)
STRTO_S(__isoc23_wcstoll,   wchar_t, long long,       LLONG_MIN, LLONG_MAX, wcstoll,  wcstoumax)
STRTO_S(__isoc23_wcstoimax, wchar_t, intmax_t,        INTMAX_MIN, INTMAX_MAX, wcstoimax, wcstoumax)
STRTO_U(__isoc23_wcstoul,   wchar_t, unsigned long,   ULONG_MAX,  wcstoul,  wcstoumax)
STRTO_U(__isoc23_wcstoull,  wchar_t, unsigned long long, ULLONG_MAX, wcstoull, wcstoumax)
STRTO_U(__isoc23_wcstoumax, wchar_t, uintmax_t,       UINTMAX_MAX, wcstoumax, wcstoumax)
