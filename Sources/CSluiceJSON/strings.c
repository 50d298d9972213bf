/* sluice_json: span helpers for JSON strings (decode, compare). See sluice_json.h. */
#include "scan.h"

#include <limits.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ================================================================ string helpers */

static inline void put_utf8(uint8_t **o, unsigned cp) {
    uint8_t *q = *o;
    if (cp < 0x80) *q++ = (uint8_t)cp;
    else if (cp < 0x800) {
        *q++ = (uint8_t)(0xC0 | (cp >> 6));
        *q++ = (uint8_t)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *q++ = (uint8_t)(0xE0 | (cp >> 12));
        *q++ = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        *q++ = (uint8_t)(0x80 | (cp & 0x3F));
    } else {
        *q++ = (uint8_t)(0xF0 | (cp >> 18));
        *q++ = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
        *q++ = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        *q++ = (uint8_t)(0x80 | (cp & 0x3F));
    }
    *o = q;
}

/* Decodes the contents [p, end) (no quotes) into out; out must hold end - p bytes.
 * Returns the length or (size_t)-1 on a malformed escape. */
static size_t decode_contents(const uint8_t *p, const uint8_t *end, uint8_t *out) {
    uint8_t *o = out;
    while (p < end) {
        const uint8_t *bs = memchr(p, '\\', (size_t)(end - p));
        if (!bs) {
            memcpy(o, p, (size_t)(end - p));
            o += end - p;
            break;
        }
        memcpy(o, p, (size_t)(bs - p));
        o += bs - p;
        p = bs;
        if (end - p < 2) return (size_t)-1;
        uint8_t e = p[1];
        switch (e) {
        case '"': *o++ = '"'; p += 2; break;
        case '\\': *o++ = '\\'; p += 2; break;
        case '/': *o++ = '/'; p += 2; break;
        case 'b': *o++ = '\b'; p += 2; break;
        case 'f': *o++ = '\f'; p += 2; break;
        case 'n': *o++ = '\n'; p += 2; break;
        case 'r': *o++ = '\r'; p += 2; break;
        case 't': *o++ = '\t'; p += 2; break;
        case 'u': {
            unsigned cp, lo;
            if (!read_hex4(p + 2, end, &cp)) return (size_t)-1;
            p += 6;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (end - p >= 6 && p[0] == '\\' && p[1] == 'u' && read_hex4(p + 2, end, &lo) &&
                    lo >= 0xDC00 && lo <= 0xDFFF) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    p += 6;
                } else {
                    cp = 0xFFFD;
                }
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                cp = 0xFFFD;
            }
            put_utf8(&o, cp);
            break;
        }
        default:
            return (size_t)-1;
        }
    }
    return (size_t)(o - out);
}

static inline int is_string_span(const uint8_t *raw, size_t raw_len) {
    return raw && raw_len >= 2 && raw[0] == '"' && raw[raw_len - 1] == '"';
}

size_t sj_string_decode(const uint8_t *raw, size_t raw_len, uint8_t *out, size_t cap) {
    if (!is_string_span(raw, raw_len)) return (size_t)-1;
    size_t inner = raw_len - 2;
    if (cap < inner) {
        /* Might still fit once decoded; decode to a temporary. */
        uint8_t *tmp = malloc(inner ? inner : 1);
        if (!tmp) return (size_t)-1;
        size_t k = decode_contents(raw + 1, raw + raw_len - 1, tmp);
        if (k != (size_t)-1) {
            if (k > cap) k = (size_t)-1;
            else memcpy(out, tmp, k);
        }
        free(tmp);
        return k;
    }
    return decode_contents(raw + 1, raw + raw_len - 1, out);
}

static int cmp_bytes(const uint8_t *a, size_t an, const uint8_t *b, size_t bn) {
    size_t m = an < bn ? an : bn;
    int c = m ? memcmp(a, b, m) : 0;
    if (c) return c;
    return an < bn ? -1 : (an > bn ? 1 : 0);
}

/* Compares decoded raw with s. mode 0 = equality only (returns 0 if equal, 1 otherwise). */
static int string_compare(const uint8_t *raw, size_t raw_len, const uint8_t *s, size_t s_len, int order) {
    if (!is_string_span(raw, raw_len)) return order ? -1 : 1;
    const uint8_t *in = raw + 1;
    size_t inner = raw_len - 2;
    if (!memchr(in, '\\', inner)) {
        if (!order) return (inner == s_len && (s_len == 0 || memcmp(in, s, s_len) == 0)) ? 0 : 1;
        return cmp_bytes(in, inner, s, s_len);
    }
    /* Escaped: decoded length <= inner; equality needs decoded == s_len. */
    if (!order && s_len > inner) return 1;
    uint8_t stackbuf[512];
    uint8_t *buf = inner <= sizeof stackbuf ? stackbuf : malloc(inner);
    if (!buf) return order ? -1 : 1;
    size_t k = decode_contents(in, in + inner, buf);
    int r;
    if (k == (size_t)-1) r = order ? -1 : 1;
    else if (!order) r = (k == s_len && (k == 0 || memcmp(buf, s, k) == 0)) ? 0 : 1;
    else r = cmp_bytes(buf, k, s, s_len);
    if (buf != stackbuf) free(buf);
    return r;
}

int sj_string_eq(const uint8_t *raw, size_t raw_len, const uint8_t *s, size_t s_len) {
    return string_compare(raw, raw_len, s, s_len, 0) == 0;
}

int sj_string_cmp(const uint8_t *raw, size_t raw_len, const uint8_t *s, size_t s_len) {
    int c = string_compare(raw, raw_len, s, s_len, 1);
    return c < 0 ? -1 : (c > 0 ? 1 : 0);
}
