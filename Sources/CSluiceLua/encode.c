/* Lua values -> JSON bytes, written straight into the engine's output buffer. */
#include "internal.h"
#include "utf8.h"
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* Writes a JSON string; invalid UTF-8 fails. */
static int enc_string(sl_engine *e, const char *s, size_t n, int depth) {
    static const char hex[] = "0123456789abcdef";
    if (n > SL_MAX_OUTPUT / 6 || !out_reserve(e, n * 6 + 2)) return enc_fail(e, depth, "output too large");
    uint8_t *o = e->out + e->out_len;
    const uint8_t *p = (const uint8_t *)s, *end = p + n;
    *o++ = '"';
    /* The common short string (keys, ids, codes): two overlapping words, no byte loop. */
    if (n >= 8 && n <= 16) {
        uint64_t a = load64(p), b = load64(end - 8);
        if (!(word_needs_care(a) | word_needs_care(b))) {
            memcpy(o, &a, 8);
            memcpy(o + n - 8, &b, 8);
            goto plain;
        }
    } else if (n >= 4 && n < 8) {
        uint32_t a = load32(p), b = load32(end - 4);
        /* both overlapping halves checked as one word */
        if (!word_needs_care(((uint64_t)b << 32) | a)) {
            memcpy(o, &a, 4);
            memcpy(o + n - 4, &b, 4);
            goto plain;
        }
    }
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
plain:
    o[n] = '"';
    e->out_len = (size_t)(o + n + 1 - e->out);
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
