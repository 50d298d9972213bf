/* JSON bytes <-> Lua values, straight from bytes into tables and back. */
#include "internal.h"
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

char sl_null_tag;

/* Byte classes inside a JSON string: 0 plain, 1 quote, 2 backslash, 3 control, 4 non-ASCII. */
static const uint8_t str_cls[256] = {
    [0 ... 0x1f] = 3, ['"'] = 1, ['\\'] = 2, [0x80 ... 0xff] = 4,
};

/* Length of the valid UTF-8 sequence at p (1..4), or 0 if invalid (overlong, surrogate,
 * above U+10FFFF, truncated). */
static int utf8_len(const uint8_t *p, const uint8_t *end) {
    uint8_t c = p[0];
    if (c < 0x80) return 1;
    if (c < 0xC2) return 0;
    if (c < 0xE0) {
        if (end - p < 2 || (p[1] & 0xC0) != 0x80) return 0;
        return 2;
    }
    if (c < 0xF0) {
        if (end - p < 3) return 0;
        uint8_t lo = 0x80, hi = 0xBF;
        if (c == 0xE0) lo = 0xA0;
        else if (c == 0xED) hi = 0x9F;
        if (p[1] < lo || p[1] > hi || (p[2] & 0xC0) != 0x80) return 0;
        return 3;
    }
    if (c < 0xF5) {
        if (end - p < 4) return 0;
        uint8_t lo = 0x80, hi = 0xBF;
        if (c == 0xF0) lo = 0x90;
        else if (c == 0xF4) hi = 0x8F;
        if (p[1] < lo || p[1] > hi || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80) return 0;
        return 4;
    }
    return 0;
}

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

/* Skips bytes that need no attention inside a string (not '"', '\\', control or non-ASCII). */
static inline const uint8_t *scan_plain(const uint8_t *p, const uint8_t *end) {
#if defined(__SSE2__)
    const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\'), space = _mm_set1_epi8(0x20);
    while (end - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)p);
        /* signed compare: control bytes and bytes >= 0x80 (negative) are both < 0x20 */
        __m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash)),
                                 _mm_cmplt_epi8(v, space));
        int mask = _mm_movemask_epi8(m);
        if (mask) return p + __builtin_ctz((unsigned)mask);
        p += 16;
    }
#endif
    while (p < end && str_cls[*p] == 0) p++;
    return p;
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
        memcpy(&a, s, 8);
        memcpy(&b, s + n - 8, 8);
    } else {
        memcpy(&a, s, n);
    }
    uint64_t x = (a ^ (b * 0x9E3779B97F4A7C15ull) ^ n) * 0xFF51AFD7ED558CCDull;
    uint32_t h = (uint32_t)(x >> 40) & (SL_KEY_CACHE - 1);
    sl_key *k = &j->e->keys[h];
    j->p = p + 1;
    if (k->len == n && memcmp(k->bytes, s, n) == 0) {
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

/* Called under lua_pcall with no arguments; input in e->dbytes/dlen/dtext.
 * Returns the value, or nothing with e->dfailed set and the reason in e->err. */
int sl_decode_fn(lua_State *L) {
    sl_engine *e = sl_E(L);
    if (e->dtext) {
        lua_pushlstring(L, (const char *)e->dbytes, e->dlen);
        return 1;
    }
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

/* ------------------------------------------------------------------ copy */

static void copy_value(lua_State *L, int idx, int depth) {
    if (lua_type(L, idx) != LUA_TTABLE) { lua_pushvalue(L, idx); return; }
    if (depth >= SL_MAX_DEPTH) luaL_error(L, "cannot copy: nesting deeper than 128 levels (or a cycle)");
    luaL_checkstack(L, 8, "copy");
    int narr = (int)lua_rawlen(L, idx), total = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) { lua_pop(L, 1); total++; }
    lua_createtable(L, narr, total > narr ? total - narr : 0);
    int dst = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        int v = lua_gettop(L);
        lua_pushvalue(L, v - 1);
        copy_value(L, v, depth + 1);
        lua_rawset(L, dst);
        lua_pop(L, 1);
    }
    if (lua_getmetatable(L, idx)) lua_setmetatable(L, dst);
    lua_pushvalue(L, idx);
    if (lua_rawget(L, lua_upvalueindex(2)) != LUA_TNIL) {
        /* The null-key set is never modified after decode, so copies can share it. */
        lua_pushvalue(L, dst);
        lua_insert(L, -2);
        lua_rawset(L, lua_upvalueindex(2));
    } else {
        lua_pop(L, 1);
    }
}

int sl_copy_fn(lua_State *L) {
    copy_value(L, 1, 0);
    return 1;
}

/* ------------------------------------------------------------------ encode */

#define SL_MAX_OUTPUT ((size_t)1 << 30)

static int out_reserve(sl_engine *e, size_t extra) {
    if (e->out_cap - e->out_len >= extra) return 1;
    size_t need = e->out_len + extra;
    if (need > SL_MAX_OUTPUT || need < e->out_len) return 0;
    size_t cap = e->out_cap ? e->out_cap : 4096;
    while (cap < need) cap *= 2;
    uint8_t *p = realloc(e->out, cap);
    if (!p) return 0;
    e->out = p;
    e->out_cap = cap;
    return 1;
}

static const char digit_pairs[201] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

static size_t fmt_int(int64_t v, char *buf) {
    char tmp[24];
    char *t = tmp + sizeof tmp;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    while (u >= 100) {
        unsigned d = (unsigned)(u % 100) * 2;
        u /= 100;
        *--t = digit_pairs[d + 1];
        *--t = digit_pairs[d];
    }
    if (u >= 10) {
        unsigned d = (unsigned)u * 2;
        *--t = digit_pairs[d + 1];
        *--t = digit_pairs[d];
    } else {
        *--t = (char)('0' + u);
    }
    if (v < 0) *--t = '-';
    size_t len = (size_t)(tmp + sizeof tmp - t);
    memcpy(buf, t, len);
    buf[len] = 0;
    return len;
}

/* Shortest of %.15g/%.16g/%.17g that reads back exactly; always has '.' or an exponent. */
static size_t fmt_double(double d, char *buf) {
    int n = 0;
    for (int prec = 15; prec <= 17; prec++) {
        n = snprintf(buf, 40, "%.*g", prec, d);
        if (prec == 17 || strtod(buf, NULL) == d) break;
    }
    int has_mark = 0;
    for (int i = 0; i < n; i++) {
        char c = buf[i];
        if (c == 'e' || c == 'E') has_mark = 1;
        else if (!(c >= '0' && c <= '9') && c != '-' && c != '+') { buf[i] = '.'; has_mark = 1; }
    }
    if (!has_mark) { buf[n++] = '.'; buf[n++] = '0'; buf[n] = 0; }
    return (size_t)n;
}

static int enc_fail(sl_engine *e, int depth, const char *what) {
    char path[512];
    size_t pl = 0;
    path[0] = 0;
    for (int i = 1; i <= depth && i <= SL_MAX_DEPTH && pl < sizeof path - 40; i++) {
        sl_path *s = &e->path[i];
        int w;
        if (s->kind == 2) {
            w = snprintf(path + pl, sizeof path - pl, "[%lld]", (long long)s->i);
        } else if (s->kind == 1) {
            w = snprintf(path + pl, sizeof path - pl, "%s%lld", pl ? "." : "", (long long)s->i);
        } else {
            int kl = s->klen > 100 ? 100 : (int)s->klen;
            w = snprintf(path + pl, sizeof path - pl, "%s%.*s", pl ? "." : "", kl, s->k);
        }
        if (w < 0) break;
        pl += (size_t)w;
        if (pl >= sizeof path) { pl = sizeof path - 1; break; }
    }
    if (pl) sl_set_errorf(e, "%s at '%s'", what, path);
    else sl_set_errorf(e, "%s", what);
    return -1;
}

/* Writes a JSON string; with validate, invalid UTF-8 fails. */
static int enc_string(sl_engine *e, const char *s, size_t n, int depth) {
    static const char hex[] = "0123456789abcdef";
    if (n > SL_MAX_OUTPUT / 6 || !out_reserve(e, n * 6 + 2)) return enc_fail(e, depth, "output too large");
    uint8_t *o = e->out + e->out_len;
    const uint8_t *p = (const uint8_t *)s, *end = p + n;
    *o++ = '"';
    while (p < end) {
        const uint8_t *run = p;
        p = scan_plain(p, end);
        if (p > run) { memcpy(o, run, (size_t)(p - run)); o += p - run; }
        if (p >= end) break;
        uint8_t c = *p, k = str_cls[c];
        if (k == 4) {
            int l = utf8_len(p, end);
            if (!l) return enc_fail(e, depth, "invalid UTF-8 in string");
            memcpy(o, p, (size_t)l);
            o += l; p += l;
            continue;
        }
        *o++ = '\\';
        switch (c) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '\n': *o++ = 'n'; break;
        case '\r': *o++ = 'r'; break;
        case '\t': *o++ = 't'; break;
        case '\b': *o++ = 'b'; break;
        case '\f': *o++ = 'f'; break;
        default:
            *o++ = 'u'; *o++ = '0'; *o++ = '0';
            *o++ = (uint8_t)hex[c >> 4]; *o++ = (uint8_t)hex[c & 15];
        }
        p++;
    }
    *o++ = '"';
    e->out_len = (size_t)(o - e->out);
    return 0;
}

static inline int out_lit(sl_engine *e, const char *s, size_t n) {
    if (!out_reserve(e, n)) return 0;
    memcpy(e->out + e->out_len, s, n);
    e->out_len += n;
    return 1;
}

static inline int out_byte(sl_engine *e, uint8_t c) {
    if (e->out_len == e->out_cap && !out_reserve(e, 1)) return 0;
    e->out[e->out_len++] = c;
    return 1;
}

static int enc_value(sl_engine *e, lua_State *L, int idx, int depth);

static int ents_reserve(sl_engine *e) {
    if (e->ents_top < e->ents_cap) return 1;
    size_t cap = e->ents_cap ? e->ents_cap * 2 : 64;
    sl_ent *p = realloc(e->ents, cap * sizeof *p);
    if (!p) return 0;
    e->ents = p;
    e->ents_cap = cap;
    return 1;
}

static inline uint64_t key_prefix(const char *k, size_t n) {
    uint8_t b[8] = {0};
    memcpy(b, k, n < 8 ? n : 8);
    return ((uint64_t)b[0] << 56) | ((uint64_t)b[1] << 48) | ((uint64_t)b[2] << 40) | ((uint64_t)b[3] << 32) |
           ((uint64_t)b[4] << 24) | ((uint64_t)b[5] << 16) | ((uint64_t)b[6] << 8) | (uint64_t)b[7];
}

static int ent_cmp(const void *a, const void *b) {
    const sl_ent *x = a, *y = b;
    if (x->prefix != y->prefix) return x->prefix < y->prefix ? -1 : 1;
    const char *kx = x->is_int ? x->ibuf : x->k, *ky = y->is_int ? y->ibuf : y->k;
    size_t n = x->klen < y->klen ? x->klen : y->klen;
    int c = memcmp(kx, ky, n);
    if (c) return c;
    return x->klen < y->klen ? -1 : x->klen > y->klen;
}

static void sort_ents(sl_ent *a, size_t n) {
    if (n > 24) { qsort(a, n, sizeof *a, ent_cmp); return; }
    for (size_t i = 1; i < n; i++) {
        sl_ent tmp = a[i];
        size_t j = i;
        while (j > 0 && ent_cmp(&a[j - 1], &tmp) > 0) { a[j] = a[j - 1]; j--; }
        a[j] = tmp;
    }
}

static int enc_array(sl_engine *e, lua_State *L, int idx, int depth, lua_Integer n) {
    int top = lua_gettop(L);
    if (!out_byte(e, '[')) return enc_fail(e, depth, "output too large");
    for (lua_Integer i = 1; i <= n; i++) {
        if (i > 1 && !out_byte(e, ',')) return enc_fail(e, depth, "output too large");
        sl_path *ps = &e->path[depth + 1];
        ps->kind = 2; ps->i = i;
        lua_rawgeti(L, idx, i);
        if (enc_value(e, L, top + 1, depth + 1)) return -1;
        lua_settop(L, top);
    }
    if (!out_byte(e, ']')) return enc_fail(e, depth, "output too large");
    return 0;
}

static int enc_table(sl_engine *e, lua_State *L, int idx, int depth) {
    if (depth >= SL_MAX_DEPTH) return enc_fail(e, depth, "nesting deeper than 128 levels (or a cycle)");
    if (!lua_checkstack(L, 8)) return enc_fail(e, depth, "Lua stack exhausted");
    int top = lua_gettop(L);
    if (lua_getmetatable(L, idx)) {
        int is_array = lua_rawequal(L, -1, S_ARRAY_MT);
        lua_settop(L, top);
        if (is_array) return enc_array(e, L, idx, depth, (lua_Integer)lua_rawlen(L, idx));
    }
    int ns = 0;
    if (e->has_nulls) {
        lua_pushvalue(L, idx);
        if (lua_rawget(L, S_NULLS) == LUA_TTABLE) ns = top + 1;
        else lua_pop(L, 1);
    }
    size_t eb = e->ents_top, cnt = 0;
    int all_int = 1;
    lua_Integer maxk = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        /* stack: ..., key, value; the value stays, a copy of the key continues the walk */
        if ((cnt & 7) == 0 && !lua_checkstack(L, 20)) return enc_fail(e, depth, "table too large to encode");
        if (!ents_reserve(e)) return enc_fail(e, depth, "out of memory");
        sl_ent *en = &e->ents[e->ents_top++];
        int kt = lua_type(L, -2);
        if (kt == LUA_TSTRING) {
            en->k = lua_tolstring(L, -2, &en->klen);
            en->is_int = 0;
            all_int = 0;
        } else if (kt == LUA_TNUMBER && lua_isinteger(L, -2)) {
            lua_Integer k = lua_tointeger(L, -2);
            en->is_int = 1;
            en->k = NULL;
            en->klen = fmt_int(k, en->ibuf);
            if (k < 1) all_int = 0;
            else if (k > maxk) maxk = k;
        } else {
            char what[80];
            snprintf(what, sizeof what, "cannot encode a table key of type %s",
                     kt == LUA_TNUMBER ? "float" : lua_typename(L, kt));
            return enc_fail(e, depth, what);
        }
        en->prefix = key_prefix(en->is_int ? en->ibuf : en->k, en->klen);
        en->vidx = lua_gettop(L);
        lua_pushvalue(L, -2);
        cnt++;
    }
    if (cnt > 0 && all_int && !ns && (size_t)maxk == cnt) {
        /* keys are exactly 1..n: a sequence */
        e->ents_top = eb;
        lua_settop(L, top);
        return enc_array(e, L, idx, depth, maxk);
    }
    if (ns) {
        /* input fields that were null and that the UDF did not assign */
        lua_pushnil(L);
        while (lua_next(L, ns)) {
            lua_pop(L, 1);
            if (lua_type(L, -1) != LUA_TSTRING) continue;
            lua_pushvalue(L, -1);
            int absent = lua_rawget(L, idx) == LUA_TNIL;
            lua_pop(L, 1);
            if (!absent) continue;
            if (!ents_reserve(e)) return enc_fail(e, depth, "out of memory");
            sl_ent *en = &e->ents[e->ents_top++];
            en->k = lua_tolstring(L, -1, &en->klen);
            en->is_int = 0;
            en->prefix = key_prefix(en->k, en->klen);
            en->vidx = 0;
        }
    }
    size_t n = e->ents_top - eb;
    sort_ents(e->ents + eb, n);
    if (!out_byte(e, '{')) return enc_fail(e, depth, "output too large");
    for (size_t i = 0; i < n; i++) {
        sl_ent *en = &e->ents[eb + i];
        if (i && !out_byte(e, ',')) return enc_fail(e, depth, "output too large");
        sl_path *ps = &e->path[depth + 1];
        if (en->is_int) { ps->kind = 1; ps->i = strtoll(en->ibuf, NULL, 10); }
        else { ps->kind = 0; ps->k = en->k; ps->klen = en->klen; }
        if (enc_string(e, en->is_int ? en->ibuf : en->k, en->klen, depth + 1)) return -1;
        if (!out_byte(e, ':')) return enc_fail(e, depth, "output too large");
        int vidx = en->vidx; /* en may move when nested tables grow e->ents */
        if (vidx == 0) {
            if (!out_lit(e, "null", 4)) return enc_fail(e, depth, "output too large");
        } else if (enc_value(e, L, vidx, depth + 1)) {
            return -1;
        }
    }
    if (!out_byte(e, '}')) return enc_fail(e, depth, "output too large");
    e->ents_top = eb;
    lua_settop(L, top);
    return 0;
}

static int enc_value(sl_engine *e, lua_State *L, int idx, int depth) {
    char buf[48];
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        if (!out_lit(e, "null", 4)) return enc_fail(e, depth, "output too large");
        return 0;
    case LUA_TBOOLEAN: {
        int b = lua_toboolean(L, idx);
        if (!out_lit(e, b ? "true" : "false", b ? 4 : 5)) return enc_fail(e, depth, "output too large");
        return 0;
    }
    case LUA_TNUMBER: {
        size_t n;
        if (lua_isinteger(L, idx)) {
            n = fmt_int((int64_t)lua_tointeger(L, idx), buf);
        } else {
            double d = (double)lua_tonumber(L, idx);
            if (isnan(d)) return enc_fail(e, depth, "cannot encode NaN");
            if (isinf(d)) return enc_fail(e, depth, "cannot encode infinity");
            n = fmt_double(d, buf);
        }
        if (!out_lit(e, buf, n)) return enc_fail(e, depth, "output too large");
        return 0;
    }
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        return enc_string(e, s, n, depth);
    }
    case LUA_TTABLE:
        return enc_table(e, L, idx, depth);
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == SL_NULL) {
            if (!out_lit(e, "null", 4)) return enc_fail(e, depth, "output too large");
            return 0;
        }
        return enc_fail(e, depth, "cannot encode a userdata value");
    default: {
        char what[64];
        snprintf(what, sizeof what, "cannot encode a %s value", lua_typename(L, lua_type(L, idx)));
        return enc_fail(e, depth, what);
    }
    }
}

int sl_encode_value(sl_engine *e, int idx) {
    e->ents_top = 0;
    int top = lua_gettop(e->L);
    int r = enc_value(e, e->L, idx, 0);
    lua_settop(e->L, top);
    return r;
}
