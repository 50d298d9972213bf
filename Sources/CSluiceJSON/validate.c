/* sluice_json: validation, optionally finding the paths of a trie in the same pass. See sluice_json.h. */
#include "paths.h"

#include <limits.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* p points just past the opening quote. Returns pointer past the closing quote, or NULL
 * after filling res. The general case: escapes, non-ASCII, long strings, the end of input. */
static __attribute__((noinline)) const uint8_t *validate_string_rest(const uint8_t *p, const uint8_t *end,
                                                                     const uint8_t *base, const uint8_t *open,
                                                                     sj_result *res, int *esc) {
    for (;;) {
#ifdef __SSE2__
        while (end - p >= 16) {
            unsigned m = string_stops16(p);
            if (m) {
                p += __builtin_ctz(m);
                goto stop;
            }
            p += 16;
        }
#endif
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
    stop:
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

/* validate_string_rest with the common case inline: a plain ASCII string that ends within
 * the next 16 bytes. */
static inline __attribute__((always_inline)) const uint8_t *validate_string(const uint8_t *p, const uint8_t *end,
                                                                            const uint8_t *base, const uint8_t *open,
                                                                            sj_result *res, int *esc) {
#ifdef __SSE2__
    unsigned m = 0;
    if (LIKELY(end - p >= 16)) m = string_stops16(p);
    else if (end - base >= 16) m = string_stops16(end - 16) >> (16 - (end - p)); /* the last 16 bytes */
    if (LIKELY(m)) {
        const uint8_t *q = p + __builtin_ctz(m);
        if (LIKELY(*q == '"')) return q + 1;
        p = q;
    }
#endif
    return validate_string_rest(p, end, base, open, res, esc);
}

/* p at '-' or a digit. Returns pointer past the number or NULL after filling res. */
static __attribute__((noinline)) const uint8_t *validate_number_rest(const uint8_t *p, const uint8_t *end, const uint8_t *base,
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
        p = skip_digits(p, end);
    }
    if (p < end && *p == '.') {
        p++;
        if (p >= end || (unsigned)(*p - '0') > 9) {
            if (p >= end) fail_char(res, base, p, end);
            else fail(res, SJ_ERR_NUMBER, base, p, "expected a digit after '.' in number");
            return NULL;
        }
        p = skip_digits(p, end);
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

/* validate_number_rest with the common case inline: a positive integer without a leading zero. */
static inline __attribute__((always_inline)) const uint8_t *validate_number(const uint8_t *p, const uint8_t *end,
                                                                            const uint8_t *base, sj_result *res) {
    if (LIKELY((unsigned)(*p - '1') <= 8)) {
        const uint8_t *q = skip_digits(p + 1, end);
        if (LIKELY(q < end && *q != '.' && (*q | 0x20) != 'e')) return q;
    }
    return validate_number_rest(p, end, base, res);
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
    int top_obj = 0; /* the innermost open container is an object */
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
/* After a container closed: the enclosing one is on top again. */
#define POP() do { depth--; top_obj = depth > 0 ? (int)TOP_IS_OBJECT() : 0; } while (0)
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
        top_obj = (isobj);                                                              \
    } while (0)
/* Called right after a scalar value [v, p) ends. */
#define SCALAR_DONE(v, type)                                                            \
    do {                                                                                \
        if (t && pend > 0) {                                                            \
            int32_t s_ = t->nodes[pend].slot;                                           \
            if (t->nodes[pend].first_child >= 0) clear_subtree(t, pend, out);           \
            if (s_ >= 0) out[s_] = (sj_value){(type), 0, (size_t)((v) - base),          \
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
            POP();
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
            POP();
            goto after;
        }
        goto value;
    }
    case '"': {
        const uint8_t *v = p;
        int esc = 0;
        p = validate_string(p + 1, end, base, p, res, &esc);
        if (!p) return res ? res->code : SJ_ERR_UNTERMINATED;
        SCALAR_DONE(v, SJ_STRING);
        goto after;
    }
    case '-': case '0': case '1': case '2': case '3': case '4':
    case '5': case '6': case '7': case '8': case '9': {
        const uint8_t *v = p;
        p = validate_number(p, end, base, res);
        if (!p) return res ? res->code : SJ_ERR_NUMBER;
        SCALAR_DONE(v, SJ_NUMBER);
        goto after;
    }
    case 't': case 'f': case 'n': {
        const uint8_t *v = p;
        const char *word = *p == 't' ? "true" : *p == 'f' ? "false" : "null";
        p = validate_literal(p, end, base, word, *p == 'f' ? 5 : 4, res);
        if (!p) return res ? res->code : SJ_ERR_CHAR;
        SCALAR_DONE(v, *v == 'n' ? SJ_NULL : SJ_BOOL);
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
            pend = match_child(t, tnode[tracked - 1], open + 1, (size_t)(p - 1 - (open + 1)), esc, end);
    }
    if (LIKELY(p < end && *p == ':')) {
        p++;   /* compact JSON: no whitespace around ':' */
    } else {
        p = skip_ws(p, end);
        if (UNLIKELY(p >= end || *p != ':')) return fail_char(res, base, p, end);
        p++;
    }
    p = skip_ws(p, end);
    goto value;

after:
    if (LIKELY(p < end && depth > 0)) {
        uint8_t c = *p;
        if (c == ',') {
            p = skip_ws(p + 1, end);
            if (top_obj) goto key;
            goto value;
        }
        if (c == (top_obj ? '}' : ']')) {
            p++;
            CONTAINER_CLOSED(top_obj);
            POP();
            goto after;
        }
        if (k_ws[c]) {   /* whitespace (none in compact JSON): look again past it */
            p = skip_ws(p, end);
            goto after;
        }
        return fail_char(res, base, p, end);
    }
    p = skip_ws(p, end);
    if (depth > 0) return fail_char(res, base, p, end);
    if (p != end) return fail(res, SJ_ERR_TRAILING, base, p, "trailing characters");
    return SJ_OK;
#undef PUSH
#undef TOP_IS_OBJECT
#undef POP
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
