/* sluice_json: number parsing. See sluice_json.h. */
#include "scan.h"

#include <limits.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ================================================================ numbers */

static const double k_pow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                 1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

static double slow_strtod(const uint8_t *p, size_t n) {
    char stackbuf[128];
    char *buf = n < sizeof stackbuf ? stackbuf : malloc(n + 1);
    if (!buf) return NAN;
    memcpy(buf, p, n);
    buf[n] = 0;
    /* strtod honours LC_NUMERIC; adapt the decimal point if a locale changed it. */
    const struct lconv *lc = localeconv();
    if (lc && lc->decimal_point && lc->decimal_point[0] && lc->decimal_point[0] != '.' &&
        lc->decimal_point[1] == 0) {
        for (size_t i = 0; i < n; i++)
            if (buf[i] == '.') buf[i] = lc->decimal_point[0];
    }
    double d = strtod(buf, NULL);
    if (buf != stackbuf) free(buf);
    return d;
}

int sj_parse_number(const uint8_t *p, size_t n, int64_t *iv, double *dv) {
    if (!p || n == 0) return SJ_NUM_INVALID;
    const uint8_t *q = p, *end = p + n;
    int neg = 0;
    if (*q == '-') { neg = 1; q++; }
    if (q >= end || (unsigned)(*q - '0') > 9) return SJ_NUM_INVALID;
    uint64_t mant = 0;
    int digits = 0;      /* significant digits accumulated in mant */
    int dropped = 0;     /* integer digits beyond 19 (not in mant) */
    int exp10 = 0;
    int is_int = 1;
    const uint8_t *int_start = q;
    while (q < end && (unsigned)(*q - '0') <= 9) {
        if (digits < 19) {
            mant = mant * 10 + (uint64_t)(*q - '0');
            if (mant) digits++;
        } else {
            dropped++;
        }
        q++;
    }
    size_t int_len = (size_t)(q - int_start);
    if (q < end && *q == '.') {
        is_int = 0;
        q++;
        const uint8_t *fs = q;
        while (q < end && (unsigned)(*q - '0') <= 9) {
            if (digits < 19) {
                mant = mant * 10 + (uint64_t)(*q - '0');
                if (mant) digits++;
                exp10--;
            }
            q++;
        }
        if (q == fs) return SJ_NUM_INVALID;
    }
    if (q < end && (*q | 0x20) == 'e') {
        is_int = 0;
        q++;
        int eneg = 0;
        if (q < end && (*q == '+' || *q == '-')) { eneg = *q == '-'; q++; }
        const uint8_t *es = q;
        long e = 0;
        while (q < end && (unsigned)(*q - '0') <= 9) {
            if (e < 100000) e = e * 10 + (*q - '0');
            q++;
        }
        if (q == es) return SJ_NUM_INVALID;
        exp10 += (int)(eneg ? -e : e);
    }
    if (q != end) return SJ_NUM_INVALID;

    if (is_int && dropped == 0 && int_len <= 19) {
        /* mant holds the whole integer (<= 19 digits, < 10^19 < 2^64). */
        if (!neg && mant <= (uint64_t)INT64_MAX) {
            *iv = (int64_t)mant;
            *dv = (double)*iv;
            return SJ_NUM_INT;
        }
        if (neg && mant <= (uint64_t)INT64_MAX + 1) {
            *iv = mant == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mant;
            *dv = (double)*iv;
            return SJ_NUM_INT;
        }
    }
    exp10 += dropped;
    /* Clinger's fast path: exact when the mantissa and the power of ten are exact doubles. */
    if (dropped == 0 && mant <= (1ULL << 53) && exp10 >= -22 && exp10 <= 22) {
        double d = (double)mant;
        d = exp10 < 0 ? d / k_pow10[-exp10] : d * k_pow10[exp10];
        *dv = neg ? -d : d;
        return SJ_NUM_DOUBLE;
    }
    *dv = slow_strtod(p, n);
    return SJ_NUM_DOUBLE;
}
