#pragma once
/* Private to CSluiceJSON: byte tables, word-at-a-time helpers, escapes and UTF-8, and skipping
 * over values already known to be valid; shared by validate.c, paths.c and strings.c. */
#include "sluice_json.h"

#include <stddef.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)

/* ================================================================ tables */

/* Inside strings: 0 plain ASCII, 1 quote, 2 backslash, 3 control, 4 non-ASCII. */
static const uint8_t k_str_class[256] = {
    [0x00 ... 0x1f] = 3,
    ['"'] = 1,
    ['\\'] = 2,
    [0x80 ... 0xff] = 4,
};

static const uint8_t k_ws[256] = { [' '] = 1, ['\t'] = 1, ['\n'] = 1, ['\r'] = 1 };

/* Bytes that may appear in a number literal (used when skipping). */
static const uint8_t k_numchar[256] = {
    ['0' ... '9'] = 1, ['-'] = 1, ['+'] = 1, ['.'] = 1, ['e'] = 1, ['E'] = 1,
};

/* ================================================================ SWAR */

#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

static inline uint64_t load64(const uint8_t *p) {
    uint64_t w;
    memcpy(&w, p, 8);
    return w;
}
/* Nonzero iff some byte of w equals b. */
static inline uint64_t has_byte(uint64_t w, uint8_t b) {
    uint64_t x = w ^ (ONES * b);
    return (x - ONES) & ~x & HIGHS;
}
/* Nonzero iff some byte of w is < n (n <= 128). */
static inline uint64_t has_less(uint64_t w, uint8_t n) {
    return (w - ONES * n) & ~w & HIGHS;
}

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
/* The lowest flagged byte of a has_byte/has_less mask is exact (borrows only move upward),
 * so on little-endian machines its index is the first matching byte. */
#define SJ_FIRST_BYTE(mask) ((size_t)(__builtin_ctzll(mask) >> 3))
#define SJ_LITTLE_ENDIAN 1
#endif

#ifdef __SSE2__
/* Bit i set iff byte i of the 16 at p is a quote, a backslash, a control character or
 * non-ASCII: the bytes that end a plain run inside a string. SSE2 is in every x86-64. */
static inline unsigned string_stops16(const uint8_t *p) {
    __m128i v = _mm_loadu_si128((const __m128i *)p);
    __m128i stop = _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')), _mm_cmpeq_epi8(v, _mm_set1_epi8('\\')));
    /* signed: control bytes and bytes >= 0x80 (negative) are both below 0x20 */
    stop = _mm_or_si128(stop, _mm_cmplt_epi8(v, _mm_set1_epi8(0x20)));
    return (unsigned)_mm_movemask_epi8(stop);
}
#endif

/* Nonzero iff some byte of w is not an ASCII digit; on little-endian machines the lowest
 * flagged byte is the first non-digit (a carry out of a non-digit byte only moves upward). */
static inline uint64_t non_digits(uint64_t w) {
    uint64_t x = ((w & (ONES * 0xF0)) ^ (ONES * 0x30)) | (((w + ONES * 0x06) & (ONES * 0xF0)) ^ (ONES * 0x30));
    return (((x & ~HIGHS) + ~HIGHS) | x) & HIGHS;
}

/* p at a byte; returns the first byte at or after p that is not an ASCII digit (or end). */
static inline const uint8_t *skip_digits(const uint8_t *p, const uint8_t *end) {
#ifdef SJ_LITTLE_ENDIAN
    while (end - p >= 8) {
        uint64_t m = non_digits(load64(p));
        if (m) return p + SJ_FIRST_BYTE(m);
        p += 8;
    }
#endif
    while (p < end && (unsigned)(*p - '0') <= 9) p++;
    return p;
}

static inline const uint8_t *skip_ws(const uint8_t *p, const uint8_t *end) {
    /* Compact JSON has no whitespace between tokens: test the first byte before looping. */
    if (LIKELY(p < end && *p > ' ')) return p;
    while (p < end && k_ws[*p]) p++;
    return p;
}

/* ================================================================ escapes and UTF-8 */

static inline int hexval(uint8_t c) {
    if (c >= '0' && c <= '9') return c - '0';
    c |= 0x20;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

static inline int read_hex4(const uint8_t *p, const uint8_t *end, unsigned *cp) {
    if (end - p < 4) return 0;
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(p[i]);
        if (h < 0) return 0;
        v = (v << 4) | (unsigned)h;
    }
    *cp = v;
    return 1;
}

/* Length of the valid UTF-8 sequence at p (lead byte >= 0x80), or 0 if invalid. */
static inline int utf8_seq(const uint8_t *p, const uint8_t *end) {
    uint8_t c = p[0];
    ptrdiff_t avail = end - p;
    if (c >= 0xC2 && c <= 0xDF) {
        if (avail < 2 || (p[1] & 0xC0) != 0x80) return 0;
        return 2;
    }
    if (c >= 0xE0 && c <= 0xEF) {
        if (avail < 3) return 0;
        uint8_t c1 = p[1];
        if (c == 0xE0) { if (c1 < 0xA0 || c1 > 0xBF) return 0; }
        else if (c == 0xED) { if (c1 < 0x80 || c1 > 0x9F) return 0; }
        else if ((c1 & 0xC0) != 0x80) return 0;
        if ((p[2] & 0xC0) != 0x80) return 0;
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (avail < 4) return 0;
        uint8_t c1 = p[1];
        if (c == 0xF0) { if (c1 < 0x90 || c1 > 0xBF) return 0; }
        else if (c == 0xF4) { if (c1 < 0x80 || c1 > 0x8F) return 0; }
        else if ((c1 & 0xC0) != 0x80) return 0;
        if ((p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80) return 0;
        return 4;
    }
    return 0;
}

/* ================================================================ skipping (for valid input) */

/* p just past an opening quote. Returns pointer past the closing quote (or end). Sets
 * *esc if a backslash was seen. */
static inline const uint8_t *skip_string(const uint8_t *p, const uint8_t *end, int *esc) {
    for (;;) {
        while (end - p >= 8) {
            uint64_t w = load64(p);
            uint64_t m = has_byte(w, '"') | has_byte(w, '\\');
            if (m) {
#ifdef SJ_LITTLE_ENDIAN
                p += SJ_FIRST_BYTE(m);
#endif
                break;
            }
            p += 8;
        }
        while (p < end && *p != '"' && *p != '\\') p++;
        if (p >= end) return end;
        if (*p == '"') return p + 1;
        *esc = 1;
        p += 2;
        if (p > end) return end;
    }
}

/* p at '{' or '['. Returns pointer past the matching close (or end). */
static inline const uint8_t *skip_container(const uint8_t *p, const uint8_t *end) {
    size_t depth = 0;
    int esc = 0;
    for (;;) {
        while (end - p >= 8) {
            uint64_t w = load64(p);
            uint64_t f = w | (ONES * 0x20); /* [ -> {, ] -> } */
            uint64_t m = has_byte(f, '{') | has_byte(f, '}') | has_byte(w, '"');
            if (m) {
#ifdef SJ_LITTLE_ENDIAN
                p += SJ_FIRST_BYTE(m);
#endif
                break;
            }
            p += 8;
        }
        if (p >= end) return end;
        uint8_t c = *p;
        if (c == '"') {
            p = skip_string(p + 1, end, &esc);
            continue;
        }
        if (c == '{' || c == '[') depth++;
        else if (c == '}' || c == ']') {
            if (--depth == 0) return p + 1;
        }
        p++;
    }
}

static inline int type_of(uint8_t c) {
    switch (c) {
    case '"': return SJ_STRING;
    case '{': return SJ_OBJECT;
    case '[': return SJ_ARRAY;
    case 't': case 'f': return SJ_BOOL;
    case 'n': return SJ_NULL;
    default: return SJ_NUMBER;
    }
}

/* p at a value start. Returns pointer past it. */
static inline const uint8_t *skip_value(const uint8_t *p, const uint8_t *end) {
    int esc = 0;
    switch (*p) {
    case '"': return skip_string(p + 1, end, &esc);
    case '{': case '[': return skip_container(p, end);
    case 't': case 'n': return end - p >= 4 ? p + 4 : end;
    case 'f': return end - p >= 5 ? p + 5 : end;
    default:
        p++;
        while (p < end && k_numchar[*p]) p++;
        return p;
    }
}
