/* sluice_json: validation, path lookup and span helpers. See sluice_json.h. */
#include "sluice_json.h"

#include <limits.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static inline const uint8_t *skip_ws(const uint8_t *p, const uint8_t *end) {
    /* Compact JSON has no whitespace between tokens: test the first byte before looping. */
    if (LIKELY(p < end && *p > ' ')) return p;
    while (p < end && k_ws[*p]) p++;
    return p;
}

/* ================================================================ errors */

static int fail(sj_result *res, int code, const uint8_t *base, const uint8_t *at, const char *msg) {
    if (res) {
        res->code = code;
        res->offset = (size_t)(at - base);
        snprintf(res->message, sizeof res->message, "%s", msg);
    }
    return code;
}

/* "unexpected character 'x'" or, at the end, "unexpected end of input". */
static int fail_char(sj_result *res, const uint8_t *base, const uint8_t *at, const uint8_t *end) {
    if (at >= end) return fail(res, SJ_ERR_EOF, base, end, "unexpected end of input");
    if (res) {
        uint8_t c = *at;
        res->code = SJ_ERR_CHAR;
        res->offset = (size_t)(at - base);
        if (c >= 0x21 && c < 0x7f)
            snprintf(res->message, sizeof res->message, "unexpected character '%c'", c);
        else
            snprintf(res->message, sizeof res->message, "unexpected byte 0x%02x", c);
    }
    return SJ_ERR_CHAR;
}

/* ================================================================ validation */

static inline int hexval(uint8_t c) {
    if (c >= '0' && c <= '9') return c - '0';
    c |= 0x20;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

static int read_hex4(const uint8_t *p, const uint8_t *end, unsigned *cp) {
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

/* p points just past the opening quote. Returns pointer past the closing quote, or NULL
 * after filling res. */
static inline const uint8_t *validate_string(const uint8_t *p, const uint8_t *end, const uint8_t *base,
                                             const uint8_t *open, sj_result *res, int *esc) {
    for (;;) {
        while (end - p >= 8) {
            uint64_t w = load64(p);
            uint64_t m = (w & HIGHS) | has_less(w, 0x20) | has_byte(w, '"') | has_byte(w, '\\');
            if (m) {
#ifdef SJ_LITTLE_ENDIAN
                p += SJ_FIRST_BYTE(m);
#endif
                break;
            }
            p += 8;
        }
        while (p < end && k_str_class[*p] == 0) p++;
        if (UNLIKELY(p >= end)) {
            fail(res, SJ_ERR_UNTERMINATED, base, open, "unterminated string");
            return NULL;
        }
        switch (k_str_class[*p]) {
        case 1:
            return p + 1;
        case 2: {
            *esc = 1;
            if (end - p < 2) {
                fail(res, SJ_ERR_UNTERMINATED, base, open, "unterminated string");
                return NULL;
            }
            uint8_t e = p[1];
            switch (e) {
            case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
                p += 2;
                break;
            case 'u': {
                unsigned cp;
                if (!read_hex4(p + 2, end, &cp)) {
                    fail(res, SJ_ERR_ESCAPE, base, p, "invalid \\u escape");
                    return NULL;
                }
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    unsigned lo;
                    if (end - p < 12 || p[6] != '\\' || p[7] != 'u' || !read_hex4(p + 8, end, &lo) ||
                        lo < 0xDC00 || lo > 0xDFFF) {
                        fail(res, SJ_ERR_ESCAPE, base, p, "lone surrogate in \\u escape");
                        return NULL;
                    }
                    p += 12;
                } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                    fail(res, SJ_ERR_ESCAPE, base, p, "lone surrogate in \\u escape");
                    return NULL;
                } else {
                    p += 6;
                }
                break;
            }
            default:
                fail(res, SJ_ERR_ESCAPE, base, p, "invalid escape");
                return NULL;
            }
            break;
        }
        case 3:
            fail(res, SJ_ERR_CONTROL, base, p, "control character in string");
            return NULL;
        default: {
            int k = utf8_seq(p, end);
            if (UNLIKELY(k == 0)) {
                fail(res, SJ_ERR_UTF8, base, p, "invalid UTF-8");
                return NULL;
            }
            p += k;
            break;
        }
        }
    }
}

/* p at '-' or a digit. Returns pointer past the number or NULL after filling res. */
static const uint8_t *validate_number(const uint8_t *p, const uint8_t *end, const uint8_t *base,
                                      sj_result *res) {
    const uint8_t *start = p;
    if (*p == '-') p++;
    if (p >= end || (unsigned)(*p - '0') > 9) {
        fail_char(res, base, p, end);
        return NULL;
    }
    if (*p == '0') {
        p++;
        if (p < end && (unsigned)(*p - '0') <= 9) {
            fail(res, SJ_ERR_NUMBER, base, start, "leading zero in number");
            return NULL;
        }
    } else {
        while (p < end && (unsigned)(*p - '0') <= 9) p++;
    }
    if (p < end && *p == '.') {
        p++;
        if (p >= end || (unsigned)(*p - '0') > 9) {
            if (p >= end) fail_char(res, base, p, end);
            else fail(res, SJ_ERR_NUMBER, base, p, "expected a digit after '.' in number");
            return NULL;
        }
        while (p < end && (unsigned)(*p - '0') <= 9) p++;
    }
    if (p < end && (*p | 0x20) == 'e') {
        p++;
        if (p < end && (*p == '+' || *p == '-')) p++;
        if (p >= end || (unsigned)(*p - '0') > 9) {
            if (p >= end) fail_char(res, base, p, end);
            else fail(res, SJ_ERR_NUMBER, base, p, "expected a digit in number exponent");
            return NULL;
        }
        while (p < end && (unsigned)(*p - '0') <= 9) p++;
    }
    return p;
}

static const uint8_t *validate_literal(const uint8_t *p, const uint8_t *end, const uint8_t *base,
                                       const char *lit, size_t len, sj_result *res) {
    for (size_t i = 0; i < len; i++) {
        if (p + i >= end || p[i] != (uint8_t)lit[i]) {
            fail_char(res, base, p + i, end);
            return NULL;
        }
    }
    return p + len;
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
static const uint8_t *skip_container(const uint8_t *p, const uint8_t *end) {
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

/* ================================================================ path trie */

typedef struct {
    uint32_t key_off, key_len;
    int32_t first_child;
    int32_t next_sibling;
    int32_t slot; /* -1 if no path ends here */
} sj_node;

struct sj_paths {
    sj_node *nodes;
    size_t nnodes, cap_nodes;
    uint8_t *keys;
    size_t nkeys, cap_keys;
    int nslots;
    /* Flat child index (rebuilt after each add): the children of node i are
     * cid[cstart[i] .. cstart[i] + ccount[i]), with signatures csig. Valid when
     * indexed == nnodes; otherwise the sibling lists are used. */
    uint32_t *csig;
    int32_t *cid;
    uint32_t *cstart, *ccount;
    size_t indexed;
};

static inline uint32_t key_sig(const uint8_t *k, size_t klen) {
    uint32_t len = klen > 0xFFFF ? 0xFFFF : (uint32_t)klen;
    return (len << 16) | (klen ? ((uint32_t)k[0] << 8) | k[klen - 1] : 0);
}

static void rebuild_index(sj_paths *t) {
    free(t->csig); free(t->cid); free(t->cstart); free(t->ccount);
    t->csig = NULL; t->cid = NULL; t->cstart = NULL; t->ccount = NULL;
    t->indexed = 0;
    size_t n = t->nnodes;
    uint32_t *csig = malloc(n * sizeof *csig);
    int32_t *cid = malloc(n * sizeof *cid);
    uint32_t *cstart = malloc(n * sizeof *cstart);
    uint32_t *ccount = malloc(n * sizeof *ccount);
    if (!csig || !cid || !cstart || !ccount) {
        free(csig); free(cid); free(cstart); free(ccount);
        return;
    }
    uint32_t k = 0;
    for (size_t i = 0; i < n; i++) {
        cstart[i] = k;
        ccount[i] = 0;
        for (int32_t c = t->nodes[i].first_child; c >= 0; c = t->nodes[c].next_sibling) {
            csig[k] = key_sig(t->keys + t->nodes[c].key_off, t->nodes[c].key_len);
            cid[k] = c;
            k++;
            ccount[i]++;
        }
    }
    t->csig = csig; t->cid = cid; t->cstart = cstart; t->ccount = ccount;
    t->indexed = n;
}

sj_paths *sj_paths_new(void) {
    sj_paths *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->cap_nodes = 8;
    t->nodes = malloc(t->cap_nodes * sizeof *t->nodes);
    if (!t->nodes) { free(t); return NULL; }
    t->nodes[0] = (sj_node){0, 0, -1, -1, -1}; /* root = the top-level object */
    t->nnodes = 1;
    return t;
}

void sj_paths_free(sj_paths *t) {
    if (!t) return;
    free(t->csig); free(t->cid); free(t->cstart); free(t->ccount);
    free(t->nodes);
    free(t->keys);
    free(t);
}

size_t sj_paths_count(const sj_paths *t) { return t ? (size_t)t->nslots : 0; }

static int32_t add_child(sj_paths *t, int32_t parent, const uint8_t *k, size_t klen) {
    for (int32_t c = t->nodes[parent].first_child; c >= 0; c = t->nodes[c].next_sibling) {
        const sj_node *nd = &t->nodes[c];
        if (nd->key_len == klen && (klen == 0 || memcmp(t->keys + nd->key_off, k, klen) == 0)) return c;
    }
    if (klen > UINT32_MAX || t->nkeys + klen > UINT32_MAX) return -1;
    if (t->nnodes == t->cap_nodes) {
        size_t nc = t->cap_nodes * 2;
        sj_node *nn = realloc(t->nodes, nc * sizeof *nn);
        if (!nn) return -1;
        t->nodes = nn;
        t->cap_nodes = nc;
    }
    if (t->nkeys + klen > t->cap_keys) {
        size_t nc = t->cap_keys ? t->cap_keys : 64;
        while (nc < t->nkeys + klen) nc *= 2;
        uint8_t *nk = realloc(t->keys, nc);
        if (!nk) return -1;
        t->keys = nk;
        t->cap_keys = nc;
    }
    if (klen) memcpy(t->keys + t->nkeys, k, klen);
    int32_t id = (int32_t)t->nnodes++;
    t->nodes[id] = (sj_node){(uint32_t)t->nkeys, (uint32_t)klen, -1, -1, -1};
    t->nkeys += klen;
    /* Append at the end of the sibling list (keeps insertion order). */
    int32_t *link = &t->nodes[parent].first_child;
    while (*link >= 0) link = &t->nodes[*link].next_sibling;
    *link = id;
    return id;
}

int sj_paths_add(sj_paths *t, const uint8_t *const *segs, const size_t *seg_lens, size_t nseg) {
    if (!t || nseg == 0 || nseg > SJ_MAX_PATH_SEGMENTS) return -1;
    int32_t node = 0;
    for (size_t i = 0; i < nseg; i++) {
        node = add_child(t, node, segs[i], seg_lens[i]);
        if (node < 0) return -1;
    }
    if (t->nodes[node].slot < 0) t->nodes[node].slot = t->nslots++;
    rebuild_index(t);
    return t->nodes[node].slot;
}

static void clear_subtree(const sj_paths *t, int32_t node, sj_value *out) {
    for (int32_t c = t->nodes[node].first_child; c >= 0; c = t->nodes[c].next_sibling) {
        if (t->nodes[c].slot >= 0) out[t->nodes[c].slot].type = SJ_MISSING;
        if (t->nodes[c].first_child >= 0) clear_subtree(t, c, out);
    }
}

static inline int same_bytes(const uint8_t *a, const uint8_t *b, size_t n) {
    while (n >= 8) {
        if (load64(a) != load64(b)) return 0;
        a += 8; b += 8; n -= 8;
    }
    while (n--) if (*a++ != *b++) return 0;
    return 1;
}

static inline int32_t match_child(const sj_paths *t, int32_t node, const uint8_t *k, size_t klen, int esc) {
    if (LIKELY(!esc && t->indexed == t->nnodes)) {
        uint32_t sig = key_sig(k, klen);
        const uint32_t *cs = t->csig + t->cstart[node];
        uint32_t cnt = t->ccount[node];
        for (uint32_t i = 0; i < cnt; i++) {
            if (cs[i] == sig) {
                int32_t c = t->cid[t->cstart[node] + i];
                const sj_node *nd = &t->nodes[c];
                if (nd->key_len == klen && same_bytes(t->keys + nd->key_off, k, klen)) return c;
            }
        }
        return -1;
    }
    for (int32_t c = t->nodes[node].first_child; c >= 0; c = t->nodes[c].next_sibling) {
        const sj_node *nd = &t->nodes[c];
        if (LIKELY(!esc)) {
            if (nd->key_len == klen && same_bytes(t->keys + nd->key_off, k, klen)) return c;
        } else {
            /* k..k+klen is the contents; include the quotes for the span helper. */
            if (nd->key_len <= klen && sj_string_eq(k - 1, klen + 2, t->keys + nd->key_off, nd->key_len))
                return c;
        }
    }
    return -1;
}

/* p at '{'. Fills slots of node's subtree. Returns pointer past the object (or end).
 * Recursion depth is bounded by the trie's depth, not by the input. */
static const uint8_t *find_in_object(const sj_paths *t, int32_t node, const uint8_t *base, const uint8_t *p,
                                     const uint8_t *end, sj_value *out) {
    p = skip_ws(p + 1, end);
    if (p >= end) return end;
    if (*p == '}') return p + 1;
    for (;;) {
        if (p >= end || *p != '"') return end;
        int esc = 0;
        const uint8_t *k = p + 1;
        p = skip_string(k, end, &esc);
        if (p - 1 < k) return end;
        size_t klen = (size_t)(p - 1 - k);
        p = skip_ws(p, end);
        if (p >= end || *p != ':') return end;
        p = skip_ws(p + 1, end);
        if (p >= end) return end;
        int32_t child = match_child(t, node, k, klen, esc);
        if (child < 0) {
            p = skip_value(p, end);
        } else {
            const sj_node *nd = &t->nodes[child];
            const uint8_t *v = p;
            int ty = type_of(*v);
            if (nd->first_child >= 0) {
                clear_subtree(t, child, out); /* a later duplicate key replaces an earlier one */
                if (ty == SJ_OBJECT) p = find_in_object(t, child, base, v, end, out);
                else p = skip_value(v, end);
            } else {
                p = skip_value(v, end);
            }
            if (nd->slot >= 0) {
                sj_value *o = &out[nd->slot];
                o->type = ty;
                o->off = (size_t)(v - base);
                o->len = (size_t)(p - v);
            }
        }
        p = skip_ws(p, end);
        if (p >= end) return end;
        if (*p == ',') {
            p = skip_ws(p + 1, end);
            continue;
        }
        if (*p == '}') return p + 1;
        return end;
    }
}

void sj_find_many(const sj_paths *t, const uint8_t *p, size_t n, sj_value *out) {
    if (!t) return;
    for (int i = 0; i < t->nslots; i++) out[i] = (sj_value){SJ_MISSING, 0, 0, 0};
    if (!p) return;
    const uint8_t *end = p + n;
    const uint8_t *q = skip_ws(p, end);
    if (q >= end || *q != '{') return;
    find_in_object(t, 0, p, q, end, out);
}

/* Finds the last member named key in the object at p ('{'). */
static int find_member(const uint8_t *base, const uint8_t *p, const uint8_t *end, const uint8_t *key,
                       size_t key_len, sj_value *out) {
    out->type = SJ_MISSING;
    p = skip_ws(p + 1, end);
    if (p >= end || *p == '}') return SJ_MISSING;
    for (;;) {
        if (p >= end || *p != '"') break;
        int esc = 0;
        const uint8_t *k = p + 1;
        p = skip_string(k, end, &esc);
        if (p - 1 < k) break;
        size_t klen = (size_t)(p - 1 - k);
        p = skip_ws(p, end);
        if (p >= end || *p != ':') break;
        p = skip_ws(p + 1, end);
        if (p >= end) break;
        const uint8_t *v = p;
        p = skip_value(p, end);
        int hit = esc ? sj_string_eq(k - 1, klen + 2, key, key_len)
                      : (klen == key_len && (klen == 0 || memcmp(k, key, klen) == 0));
        if (hit) {
            out->type = type_of(*v);
            out->off = (size_t)(v - base);
            out->len = (size_t)(p - v);
        }
        p = skip_ws(p, end);
        if (p >= end || *p != ',') break;
        p = skip_ws(p + 1, end);
    }
    return out->type;
}

int sj_find(const uint8_t *p, size_t n, const char *path, size_t path_len, sj_value *out) {
    sj_value v = {SJ_MISSING, 0, 0, 0};
    if (out) *out = v;
    if (!p || !out || !path) return SJ_MISSING;
    const uint8_t *end = p + n;
    const uint8_t *q = skip_ws(p, end);
    if (q >= end || *q != '{') return SJ_MISSING;
    const uint8_t *seg = (const uint8_t *)path, *pend = (const uint8_t *)path + path_len;
    for (;;) {
        const uint8_t *dot = memchr(seg, '.', (size_t)(pend - seg));
        const uint8_t *segend = dot ? dot : pend;
        if (find_member(p, q, end, seg, (size_t)(segend - seg), &v) == SJ_MISSING) return SJ_MISSING;
        if (!dot) break;
        if (v.type != SJ_OBJECT) return SJ_MISSING;
        q = p + v.off;
        seg = dot + 1;
    }
    *out = v;
    return v.type;
}

/* ================================================================ validation (+ fused lookup) */

/* The validator, optionally finding the paths of t while it runs (t != NULL).
 * Tracking: `tracked` objects, one per trie level, are open along the current path; keys are
 * only compared in the innermost tracked object. A matched container that is not descended
 * into is "captured" until it closes, to record its end. */
static inline __attribute__((always_inline)) int validate_core(const uint8_t *base, size_t n, int max_depth,
                                                               unsigned flags, sj_result *res,
                                                               const sj_paths *t, sj_value *out) {
    const uint8_t *p = base, *end = base + n;
    /* One bit per open container: 1 = object, 0 = array. */
    uint64_t stack[SJ_MAX_DEPTH_LIMIT / 64];
    int depth = 0;
    /* Fused lookup state (used only when t != NULL). */
    int32_t tnode[SJ_MAX_PATH_SEGMENTS + 1];   /* trie node of each tracked object */
    int32_t tslot[SJ_MAX_PATH_SEGMENTS + 1];   /* its slot (or -1) */
    size_t tstart[SJ_MAX_PATH_SEGMENTS + 1];   /* its start offset */
    int tracked = 0;                           /* tracked objects are at depths 1..tracked */
    int32_t pend = -1;                         /* trie node matched by the last key */
    int cap_depth = 0;                         /* depth of a captured container, 0 = none */
    int32_t cap_slot = -1;
    size_t cap_start = 0;

    if (max_depth <= 0) max_depth = SJ_DEFAULT_DEPTH;
    if (max_depth > SJ_MAX_DEPTH_LIMIT) max_depth = SJ_MAX_DEPTH_LIMIT;
    if (res) {
        res->code = SJ_OK;
        res->offset = 0;
        res->message[0] = 0;
    }
    if (t) for (int i = 0; i < t->nslots; i++) out[i] = (sj_value){SJ_MISSING, 0, 0, 0};
    if (UNLIKELY(base == NULL && n > 0)) return fail(res, SJ_ERR_EOF, base, base, "unexpected end of input");

    p = skip_ws(p, end);
    if (p >= end) return fail(res, SJ_ERR_EOF, base, p, "unexpected end of input");
    if ((flags & SJ_REQUIRE_OBJECT) && *p != '{')
        return fail(res, SJ_ERR_NOT_OBJECT, base, p, "expected a JSON object");
    if (t && *p == '{') pend = 0; /* the top-level object is the trie root */

#define TOP_IS_OBJECT() ((stack[(depth - 1) >> 6] >> ((depth - 1) & 63)) & 1)
#define PUSH(isobj)                                                                     \
    do {                                                                                \
        if (UNLIKELY(depth >= max_depth)) {                                             \
            char m_[64];                                                                \
            snprintf(m_, sizeof m_, "nesting deeper than %d", max_depth);               \
            return fail(res, SJ_ERR_DEPTH, base, p, m_);                                \
        }                                                                               \
        uint64_t bit_ = 1ULL << (depth & 63);                                           \
        if (isobj) stack[depth >> 6] |= bit_; else stack[depth >> 6] &= ~bit_;          \
        depth++;                                                                        \
    } while (0)
/* Called right after a scalar value [v, p) ends. */
#define SCALAR_DONE(v)                                                                  \
    do {                                                                                \
        if (t && pend > 0) {                                                            \
            int32_t s_ = t->nodes[pend].slot;                                           \
            if (t->nodes[pend].first_child >= 0) clear_subtree(t, pend, out);           \
            if (s_ >= 0) out[s_] = (sj_value){type_of(*(v)), 0, (size_t)((v) - base),   \
                                              (size_t)(p - (v))};                       \
        }                                                                               \
        pend = -1;                                                                      \
    } while (0)
/* Called right after the opening bracket at v was pushed (depth already incremented). */
#define CONTAINER_OPENED(v, isobj)                                                      \
    do {                                                                                \
        if (t && pend >= 0) {                                                           \
            const sj_node *nd_ = &t->nodes[pend];                                       \
            if (pend > 0 && nd_->first_child >= 0) clear_subtree(t, pend, out);         \
            if ((isobj) && nd_->first_child >= 0 && depth == tracked + 1) {             \
                tnode[tracked] = pend;                                                  \
                tslot[tracked] = pend > 0 ? nd_->slot : -1;                             \
                tstart[tracked] = (size_t)((v) - base);                                 \
                tracked++;                                                              \
            } else if (pend > 0 && nd_->slot >= 0) {                                    \
                cap_depth = depth;                                                      \
                cap_slot = nd_->slot;                                                   \
                cap_start = (size_t)((v) - base);                                       \
            }                                                                           \
        }                                                                               \
        pend = -1;                                                                      \
    } while (0)
/* Called right after the closing bracket (p past it), before depth is decremented. */
#define CONTAINER_CLOSED(isobj)                                                         \
    do {                                                                                \
        if (t) {                                                                        \
            if (depth == cap_depth) {                                                   \
                out[cap_slot] = (sj_value){(isobj) ? SJ_OBJECT : SJ_ARRAY, 0, cap_start,    \
                                           (size_t)(p - base) - cap_start};             \
                cap_depth = 0;                                                          \
            } else if (depth == tracked && (isobj)) {                                   \
                tracked--;                                                              \
                if (tslot[tracked] >= 0)                                                \
                    out[tslot[tracked]] = (sj_value){SJ_OBJECT, 0, tstart[tracked],     \
                                                     (size_t)(p - base) - tstart[tracked]}; \
            }                                                                           \
        }                                                                               \
    } while (0)

value:
    if (UNLIKELY(p >= end)) return fail_char(res, base, p, end);
    switch (*p) {
    case '{': {
        const uint8_t *v = p;
        PUSH(1);
        CONTAINER_OPENED(v, 1);
        p = skip_ws(p + 1, end);
        if (p < end && *p == '}') {
            p++;
            CONTAINER_CLOSED(1);
            depth--;
            goto after;
        }
        goto key;
    }
    case '[': {
        const uint8_t *v = p;
        PUSH(0);
        CONTAINER_OPENED(v, 0);
        p = skip_ws(p + 1, end);
        if (p < end && *p == ']') {
            p++;
            CONTAINER_CLOSED(0);
            depth--;
            goto after;
        }
        goto value;
    }
    case '"': {
        const uint8_t *v = p;
        int esc = 0;
        p = validate_string(p + 1, end, base, p, res, &esc);
        if (!p) return res ? res->code : SJ_ERR_UNTERMINATED;
        SCALAR_DONE(v);
        goto after;
    }
    case '-': case '0': case '1': case '2': case '3': case '4':
    case '5': case '6': case '7': case '8': case '9': {
        const uint8_t *v = p;
        p = validate_number(p, end, base, res);
        if (!p) return res ? res->code : SJ_ERR_NUMBER;
        SCALAR_DONE(v);
        goto after;
    }
    case 't': case 'f': case 'n': {
        const uint8_t *v = p;
        const char *word = *p == 't' ? "true" : *p == 'f' ? "false" : "null";
        p = validate_literal(p, end, base, word, *p == 'f' ? 5 : 4, res);
        if (!p) return res ? res->code : SJ_ERR_CHAR;
        SCALAR_DONE(v);
        goto after;
    }
    default:
        return fail_char(res, base, p, end);
    }

key:
    if (UNLIKELY(p >= end || *p != '"')) return fail_char(res, base, p, end);
    {
        const uint8_t *open = p;
        int esc = 0;
        p = validate_string(p + 1, end, base, open, res, &esc);
        if (!p) return res ? res->code : SJ_ERR_UNTERMINATED;
        if (t && depth == tracked && cap_depth == 0)
            pend = match_child(t, tnode[tracked - 1], open + 1, (size_t)(p - 1 - (open + 1)), esc);
    }
    p = skip_ws(p, end);
    if (UNLIKELY(p >= end || *p != ':')) return fail_char(res, base, p, end);
    p = skip_ws(p + 1, end);
    goto value;

after:
    if (depth == 0) {
        p = skip_ws(p, end);
        if (p != end) return fail(res, SJ_ERR_TRAILING, base, p, "trailing characters");
        return SJ_OK;
    }
    p = skip_ws(p, end);
    if (UNLIKELY(p >= end)) return fail_char(res, base, p, end);
    {
        uint8_t c = *p;
        int obj = (int)TOP_IS_OBJECT();
        if (c == ',') {
            p = skip_ws(p + 1, end);
            if (obj) goto key;
            goto value;
        }
        if ((obj && c == '}') || (!obj && c == ']')) {
            p++;
            CONTAINER_CLOSED(obj);
            depth--;
            goto after;
        }
        return fail_char(res, base, p, end);
    }
#undef PUSH
#undef TOP_IS_OBJECT
#undef SCALAR_DONE
#undef CONTAINER_OPENED
#undef CONTAINER_CLOSED
}

int sj_validate(const uint8_t *base, size_t n, int max_depth, unsigned flags, sj_result *res) {
    return validate_core(base, n, max_depth, flags, res, NULL, NULL);
}

int sj_validate_find(const sj_paths *t, const uint8_t *base, size_t n, int max_depth, unsigned flags,
                     sj_result *res, sj_value *out) {
    if (!t) return validate_core(base, n, max_depth, flags, res, NULL, NULL);
    return validate_core(base, n, max_depth, flags, res, t, out);
}
