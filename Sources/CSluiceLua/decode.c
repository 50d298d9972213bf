/* JSON bytes -> Lua values, straight from bytes into tables (keys interned through a cache). */
#include "internal.h"
#include "utf8.h"
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char sl_null_tag;

/* ------------------------------------------------------------------ decode */

typedef struct {
    const uint8_t *p, *end, *start;
    sl_engine *e;
    const char *err;
    const uint8_t *err_at;
} jp;

#define JP_NULL 1  /* parse_value: JSON null, nothing pushed */

static int jp_fail(jp *j, const char *why) {
    if (!j->err) { j->err = why; j->err_at = j->p; }
    return -1;
}

static inline void skip_ws(jp *j) {
    const uint8_t *p = j->p, *end = j->end;
    if (p < end && *p > ' ') return; /* the common case: no whitespace */
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) p++;
    j->p = p;
}

static int hex4(const uint8_t *p, const uint8_t *end, uint32_t *out) {
    if (end - p < 4) return 0;
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        uint8_t c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (uint32_t)(c - 'A' + 10);
        else return 0;
    }
    *out = v;
    return 1;
}

static uint8_t *put_utf8(uint8_t *o, uint32_t cp) {
    if (cp < 0x80) { *o++ = (uint8_t)cp; }
    else if (cp < 0x800) { *o++ = (uint8_t)(0xC0 | (cp >> 6)); *o++ = (uint8_t)(0x80 | (cp & 0x3F)); }
    else if (cp < 0x10000) {
        *o++ = (uint8_t)(0xE0 | (cp >> 12)); *o++ = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        *o++ = (uint8_t)(0x80 | (cp & 0x3F));
    } else {
        *o++ = (uint8_t)(0xF0 | (cp >> 18)); *o++ = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
        *o++ = (uint8_t)(0x80 | ((cp >> 6) & 0x3F)); *o++ = (uint8_t)(0x80 | (cp & 0x3F));
    }
    return o;
}

static int reserve_sbuf(sl_engine *e, size_t need) {
    if (need <= e->sbuf_cap) return 1;
    size_t cap = e->sbuf_cap ? e->sbuf_cap : 256;
    while (cap < need) cap *= 2;
    uint8_t *p = realloc(e->sbuf, cap);
    if (!p) return 0;
    e->sbuf = p;
    e->sbuf_cap = cap;
    return 1;
}

/* j->p at the opening quote; pushes the string. */
static int parse_string(lua_State *L, jp *j) {
    const uint8_t *p = j->p + 1, *end = j->end, *s = p;
    for (;;) {
        p = scan_plain(p, end);
        if (p >= end) { j->p = p; return jp_fail(j, "unterminated string"); }
        uint8_t k = str_cls[*p];
        if (k == 0) { p++; continue; }
        if (k == 1) {
            lua_pushlstring(L, (const char *)s, (size_t)(p - s));
            j->p = p + 1;
            return 0;
        }
        if (k == 4) {
            int n = utf8_len(p, end);
            if (!n) { j->p = p; return jp_fail(j, "invalid UTF-8 in string"); }
            p += n;
            continue;
        }
        if (k == 3) { j->p = p; return jp_fail(j, "unescaped control character in string"); }
        break; /* backslash: unescape into the scratch buffer */
    }
    /* Unescaped output is never longer than its input. */
    if (!reserve_sbuf(j->e, (size_t)(end - s))) return jp_fail(j, "out of memory");
    uint8_t *buf = j->e->sbuf, *o = buf;
    memcpy(o, s, (size_t)(p - s));
    o += p - s;
    for (;;) {
        if (p >= end) { j->p = p; return jp_fail(j, "unterminated string"); }
        uint8_t c = *p, k = str_cls[c];
        if (k == 0) { *o++ = c; p++; continue; }
        if (k == 1) {
            lua_pushlstring(L, (const char *)buf, (size_t)(o - buf));
            j->p = p + 1;
            return 0;
        }
        if (k == 4) {
            int n = utf8_len(p, end);
            if (!n) { j->p = p; return jp_fail(j, "invalid UTF-8 in string"); }
            memcpy(o, p, (size_t)n);
            o += n; p += n;
            continue;
        }
        if (k == 3) { j->p = p; return jp_fail(j, "unescaped control character in string"); }
        if (end - p < 2) { j->p = p; return jp_fail(j, "unterminated string"); }
        c = p[1];
        j->p = p;
        p += 2;
        switch (c) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '/': *o++ = '/'; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u': {
            uint32_t cp, lo;
            if (!hex4(p, end, &cp)) return jp_fail(j, "invalid \\u escape");
            p += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (end - p >= 6 && p[0] == '\\' && p[1] == 'u' && hex4(p + 2, end, &lo) &&
                    lo >= 0xDC00 && lo <= 0xDFFF) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    p += 6;
                } else {
                    return jp_fail(j, "lone UTF-16 surrogate in \\u escape");
                }
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                return jp_fail(j, "lone UTF-16 surrogate in \\u escape");
            }
            o = put_utf8(o, cp);
            break;
        }
        default:
            return jp_fail(j, "invalid escape in string");
        }
    }
}

/* The n bytes at a and b are equal (n <= SL_KEY_CACHE_LEN; a is a cache entry, readable to its
 * end; b has at least 8 bytes readable when n < 8). Word compares instead of a memcmp call. */
static inline int key_bytes_eq(const uint8_t *a, const uint8_t *b, size_t n, uint64_t b_head) {
    if (n < 8) return n == 0 || ((load64(a) ^ b_head) << (64 - 8 * n)) == 0;
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        if (load64(a + i) != load64(b + i)) return 0;
    return i == n || load64(a + n - 8) == load64(b + n - 8);
}

/* An object key: plain keys up to SL_KEY_CACHE_LEN bytes come from a small direct-mapped
 * cache of interned Lua strings (upvalue 3) instead of being hashed and interned again. */
static int parse_key(lua_State *L, jp *j) {
    const uint8_t *s = j->p + 1, *end = j->end;
    const uint8_t *p = scan_plain(s, end);
    if (p >= end || *p != '"' || p - s > SL_KEY_CACHE_LEN) return parse_string(L, j);
    size_t n = (size_t)(p - s);
    /* hash of the length and the first and last 8 bytes (keys are short) */
    uint64_t a = 0, b = 0;
    if (n >= 8) {
        a = load64(s);
        b = load64(s + n - 8);
    } else if (end - s >= 8) {
        a = n ? load64(s) & (~0ull >> (64 - 8 * n)) : 0; /* a key is followed by more input */
    } else {
        memcpy(&a, s, n);
    }
    uint64_t x = (a ^ (b * 0x9E3779B97F4A7C15ull) ^ n) * 0xFF51AFD7ED558CCDull;
    uint32_t h = (uint32_t)(x >> 40) & (SL_KEY_CACHE - 1);
    sl_key *k = &j->e->keys[h];
    j->p = p + 1;
    if (k->len == n && key_bytes_eq(k->bytes, s, n, a)) {
        lua_rawgeti(L, lua_upvalueindex(3), (lua_Integer)h + 1);
        return 0;
    }
    lua_pushlstring(L, (const char *)s, n);
    lua_pushvalue(L, -1);
    lua_rawseti(L, lua_upvalueindex(3), (lua_Integer)h + 1);
    memcpy(k->bytes, s, n);
    k->len = (uint32_t)n;
    return 0;
}

static int parse_number(lua_State *L, jp *j) {
    const uint8_t *p = j->p, *end = j->end, *s = p;
    int neg = 0, isfloat = 0, overflow = 0;
    uint64_t u = 0;
    if (*p == '-') { neg = 1; p++; }
    if (p >= end) { j->p = p; return jp_fail(j, "invalid number"); }
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        const uint8_t *digits = p;
        while (p < end && *p >= '0' && *p <= '9') p++;
        /* up to 19 digits always fit in uint64; more is beyond int64 anyway (no leading zeros) */
        if (p - digits <= 19) {
            for (const uint8_t *q = digits; q < p; q++) u = u * 10 + (uint64_t)(*q - '0');
        } else {
            overflow = 1;
        }
    } else {
        j->p = p;
        return jp_fail(j, "invalid number");
    }
    if (p < end && *p == '.') {
        isfloat = 1;
        p++;
        if (p >= end || *p < '0' || *p > '9') { j->p = p; return jp_fail(j, "invalid number"); }
        while (p < end && *p >= '0' && *p <= '9') p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        isfloat = 1;
        p++;
        if (p < end && (*p == '+' || *p == '-')) p++;
        if (p >= end || *p < '0' || *p > '9') { j->p = p; return jp_fail(j, "invalid number"); }
        while (p < end && *p >= '0' && *p <= '9') p++;
    }
    j->p = p;
    if (!isfloat && !overflow) {
        if (!neg && u <= (uint64_t)INT64_MAX) { lua_pushinteger(L, (lua_Integer)u); return 0; }
        if (neg && u <= (uint64_t)INT64_MAX + 1) { lua_pushinteger(L, (lua_Integer)(0 - u)); return 0; }
    }
    /* A float (or an integer beyond int64): strtod on a NUL-terminated copy. */
    size_t n = (size_t)(p - s);
    char local[64], *buf = local;
    if (n >= sizeof local) {
        if (!reserve_sbuf(j->e, n + 1)) return jp_fail(j, "out of memory");
        buf = (char *)j->e->sbuf;
    }
    memcpy(buf, s, n);
    buf[n] = 0;
    /* strtod follows LC_NUMERIC; JSON always uses '.'. */
    struct lconv *lc = localeconv();
    if (lc && lc->decimal_point && lc->decimal_point[0] != '.' && lc->decimal_point[0]) {
        char *dot = memchr(buf, '.', n);
        if (dot) *dot = lc->decimal_point[0];
    }
    /* A number beyond the double range (1e400) is valid JSON, as for the declarative path: it
     * reads as +-math.huge; an event carrying it passes through byte for byte, and encoding it
     * after a change fails with "cannot encode infinity" (a dead letter with that reason). */
    double d = strtod(buf, NULL);
    lua_pushnumber(L, (lua_Number)d);
    return 0;
}

static int parse_value(lua_State *L, jp *j, int depth);

static int parse_object(lua_State *L, jp *j, int depth) {
    sl_engine *e = j->e;
    if (depth > SL_MAX_DEPTH) return jp_fail(j, "nesting deeper than 128 levels");
    if (!lua_checkstack(L, 6)) return jp_fail(j, "Lua stack exhausted");
    lua_createtable(L, 0, e->ohint[depth]);
    int t = lua_gettop(L), ns = 0, n = 0;
    j->p++;
    skip_ws(j);
    if (j->p < j->end && *j->p == '}') { j->p++; return 0; }
    for (;;) {
        if (j->p >= j->end || *j->p != '"') return jp_fail(j, "expected a string key");
        if (parse_key(L, j) < 0) return -1;
        skip_ws(j);
        if (j->p >= j->end || *j->p != ':') return jp_fail(j, "expected ':'");
        j->p++;
        skip_ws(j);
        int r = parse_value(L, j, depth);
        if (r < 0) return -1;
        if (r == JP_NULL) {
            if (!ns) { lua_createtable(L, 0, 2); lua_insert(L, -2); ns = t + 1; }
            lua_pushboolean(L, 1);
            lua_rawset(L, ns);
        } else {
            lua_rawset(L, t);
            n++;
        }
        skip_ws(j);
        if (j->p >= j->end) return jp_fail(j, "unexpected end of input in object");
        if (*j->p == ',') { j->p++; skip_ws(j); continue; }
        if (*j->p == '}') { j->p++; break; }
        return jp_fail(j, "expected ',' or '}'");
    }
    e->ohint[depth] = n < SL_HINT_CAP ? n : SL_HINT_CAP;
    if (ns) {
        e->has_nulls = 1;
        lua_pushvalue(L, t);
        lua_pushvalue(L, ns);
        lua_rawset(L, lua_upvalueindex(2));
        lua_settop(L, t);
    }
    return 0;
}

static int parse_array(lua_State *L, jp *j, int depth) {
    sl_engine *e = j->e;
    if (depth > SL_MAX_DEPTH) return jp_fail(j, "nesting deeper than 128 levels");
    if (!lua_checkstack(L, 6)) return jp_fail(j, "Lua stack exhausted");
    lua_createtable(L, e->ahint[depth], 0);
    int t = lua_gettop(L);
    lua_Integer n = 0;
    j->p++;
    skip_ws(j);
    if (j->p < j->end && *j->p == ']') {
        j->p++;
    } else {
        for (;;) {
            int r = parse_value(L, j, depth);
            if (r < 0) return -1;
            if (r == JP_NULL) lua_pushlightuserdata(L, SL_NULL);
            lua_rawseti(L, t, ++n);
            skip_ws(j);
            if (j->p >= j->end) return jp_fail(j, "unexpected end of input in array");
            if (*j->p == ',') { j->p++; skip_ws(j); continue; }
            if (*j->p == ']') { j->p++; break; }
            return jp_fail(j, "expected ',' or ']'");
        }
        e->ahint[depth] = n < SL_HINT_CAP ? (int)n : SL_HINT_CAP;
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_setmetatable(L, t);
    return 0;
}

static int literal(jp *j, const char *lit, size_t n) {
    if ((size_t)(j->end - j->p) < n || memcmp(j->p, lit, n) != 0) return 0;
    j->p += n;
    return 1;
}

static int parse_value(lua_State *L, jp *j, int depth) {
    if (j->p >= j->end) return jp_fail(j, "unexpected end of input");
    switch (*j->p) {
    case '{': return parse_object(L, j, depth + 1);
    case '[': return parse_array(L, j, depth + 1);
    case '"': return parse_string(L, j);
    case 't':
        if (literal(j, "true", 4)) { lua_pushboolean(L, 1); return 0; }
        return jp_fail(j, "invalid literal");
    case 'f':
        if (literal(j, "false", 5)) { lua_pushboolean(L, 0); return 0; }
        return jp_fail(j, "invalid literal");
    case 'n':
        if (literal(j, "null", 4)) return JP_NULL;
        return jp_fail(j, "invalid literal");
    case '-': case '0': case '1': case '2': case '3': case '4':
    case '5': case '6': case '7': case '8': case '9':
        return parse_number(L, j);
    default:
        return jp_fail(j, "unexpected character");
    }
}

/* Decodes the one value at [p, end) (validated input) nested `depth` objects deep; pushes it
 * unless it is null (then returns 1 and pushes nothing). -1 if it is malformed after all.
 * For the field decoder (fields.c), inside sl_decode_fn (its upvalues are the decoder's). */
int sl_decode_span(lua_State *L, sl_engine *e, const uint8_t *start, const uint8_t *p, const uint8_t *end, int depth) {
    jp j = { .p = p, .end = end, .start = start, .e = e };
    int r = parse_value(L, &j, depth);
    return r < 0 ? -1 : r;
}

/* Called under lua_pcall with no arguments; input in e->dbytes/dlen/dtext (and e->dfields: only
 * those fields). Returns the value, or nothing with e->dfailed set and the reason in e->err. */
int sl_decode_fn(lua_State *L) {
    sl_engine *e = sl_E(L);
    if (e->dtext) {
        lua_pushlstring(L, (const char *)e->dbytes, e->dlen);
        return 1;
    }
    if (e->dfields && sl_decode_fields_fn(L, e, e->dfields)) return 1;
    jp j = { .p = e->dbytes, .end = e->dbytes + e->dlen, .start = e->dbytes, .e = e };
    skip_ws(&j);
    int r = parse_value(L, &j, 0);
    if (r == JP_NULL) { lua_pushlightuserdata(L, SL_NULL); r = 0; }
    if (r == 0) {
        skip_ws(&j);
        if (j.p != j.end) r = jp_fail(&j, "unexpected data after the JSON value");
    }
    if (r < 0) {
        e->dfailed = 1;
        sl_set_errorf(e, "invalid JSON at byte %zu: %s", (size_t)(j.err_at - j.start), j.err);
        return 0;
    }
    return 1;
}
