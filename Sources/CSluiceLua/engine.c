/* The engine: a Lua state with its messages, event handles, and the decode, encode and copy
 * entry points. memory.c, budget.c, sandbox.c, ctx.c and call.c hold the rest. */
#include "internal.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SL_MAX_MSG (64 * 1024)

/* ------------------------------------------------------------------ messages */

static int grow_buf(char **buf, size_t *cap, size_t need) {
    if (need <= *cap) return 1;
    size_t c = *cap ? *cap : 256;
    while (c < need) c *= 2;
    char *p = realloc(*buf, c);
    if (!p) return 0;
    *buf = p;
    *cap = c;
    return 1;
}

void sl_set_error(sl_engine *e, const char *msg, size_t len) {
    if (len > SL_MAX_MSG) len = SL_MAX_MSG;
    if (!grow_buf(&e->err, &e->err_cap, len + 1)) { e->err_len = 0; return; }
    memcpy(e->err, msg, len);
    e->err[len] = 0;
    e->err_len = len;
}

void sl_set_errorf(sl_engine *e, const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0) n = 0;
    if ((size_t)n >= sizeof buf) n = sizeof buf - 1;
    sl_set_error(e, buf, (size_t)n);
}

void sl_set_trace(sl_engine *e, const char *s, size_t len) {
    if (len > SL_MAX_MSG) len = SL_MAX_MSG;
    if (!grow_buf(&e->trace, &e->trace_cap, len + 1)) { e->trace_len = 0; return; }
    memcpy(e->trace, s, len);
    e->trace_len = len;
}

const char *sl_error(const sl_engine *e, size_t *len) {
    *len = e->err_len;
    return e->err_len ? e->err : "";
}

const char *sl_traceback(const sl_engine *e, size_t *len) {
    *len = e->trace_len;
    return e->trace_len ? e->trace : NULL;
}

/* ------------------------------------------------------------------ handles table */

/* (old handles, count, newcap) -> new handles table with the first `count` slots copied. */
int grow_fn(lua_State *L) {
    lua_Integer count = lua_tointeger(L, 2), cap = lua_tointeger(L, 3);
    lua_createtable(L, (int)cap, 0);
    for (lua_Integer i = 1; i <= count; i++) {
        lua_rawgeti(L, 1, i);
        lua_rawseti(L, -2, i);
    }
    return 1;
}

/* ------------------------------------------------------------------ engine */

int fail_memory(sl_engine *e) {
    e->poisoned = 1;
    sl_set_errorf(e, "memory limit exceeded (%zu bytes)", e->mem_limit);
    return SL_MEMORY;
}

/* Classifies a finished protected call; on error the message is at the top of the stack. */
int classify(sl_engine *e, int st) {
    lua_State *L = e->L;
    if (e->pend_set) { e->poisoned = 1; e->pend_set = 0; } /* a refusal that was never retried */
    if (e->poisoned || st == LUA_ERRMEM) { e->trace_len = 0; return fail_memory(e); }
    if (e->instr_hit) {
        sl_set_errorf(e, "instruction limit exceeded (%lld instructions)", (long long)e->instr_limit);
        return SL_INSTRUCTIONS;
    }
    if (st == LUA_OK) return SL_OK;
    size_t n = 0;
    const char *s = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &n) : NULL;
    if (s) sl_set_error(e, s, n);
    else if (st == LUA_ERRERR) sl_set_errorf(e, "error in error handling");
    else sl_set_errorf(e, "unknown error");
    return SL_RUNTIME;
}

int sl_engine_new(const char *udf_dir, const char *display_dir, int64_t memory_limit,
                  int64_t instruction_limit, int64_t version, sl_log_fn log, void *log_ctx,
                  sl_engine **out) {
    sl_engine *e = calloc(1, sizeof *e);
    *out = e;
    if (!e) return SL_MEMORY;
    e->mem_limit = memory_limit > 0 ? (size_t)memory_limit : SIZE_MAX;
    e->instr_limit = instruction_limit > 0 ? instruction_limit : INT64_MAX;
    e->version = version;
    e->log_fn = log;
    e->log_ctx = log_ctx;
    e->mode = -1;
    e->dreuse = -1;
    for (int i = 0; i < SL_KEY_CACHE; i++) e->keys[i].len = UINT32_MAX; /* no key cached yet */
    e->udf_dir = strdup(udf_dir ? udf_dir : ".");
    e->display_dir = strdup(display_dir ? display_dir : ".");
    e->plain = calloc(1024 + 1, 1);   /* one flag per handle slot, as the handles table grows */
    if (!e->udf_dir || !e->display_dir || !e->plain) return fail_memory(e);
    lua_State *L = lua_newstate(sl_alloc, e);
    if (!L) return fail_memory(e);
    e->L = L;
    *(sl_engine **)lua_getextraspace(L) = e;
    lua_gc(L, LUA_GCINC, 0, 0, 0); /* incremental (the default, most exercised mode); generational measured no faster */
    if (!lua_checkstack(L, S_NSLOTS + 40)) return fail_memory(e);
    begin_budget(e);
    lua_pushcfunction(L, setup_fn);
    int st = lua_pcall(L, 0, S_NSLOTS, 0);
    if (st != LUA_OK) {
        int rc = classify(e, st);
        lua_settop(L, 0);
        return rc == SL_OK ? SL_RUNTIME : rc;
    }
    e->hcap = 1024;
    return SL_OK;
}

void sl_engine_free(sl_engine *e) {
    if (!e) return;
    if (e->L) lua_close(e->L);
    pool_drain(e);
    free(e->udf_dir);
    free(e->display_dir);
    free(e->free_slots);
    free(e->plain);
    free(e->outs);
    free(e->out);
    free(e->ents);
    free(e->sbuf);
    free(e->err);
    free(e->trace);
    free(e->calls);
    free(e->free_calls);
    free(e);
}

int sl_poisoned(const sl_engine *e) { return e->poisoned; }
size_t sl_memory(const sl_engine *e) { return e->mem_used; }
int64_t sl_live_handles(const sl_engine *e) { return (int64_t)e->hcount - (int64_t)e->n_free; }

/* Makes sure `need` handle slots can be assigned without allocating in Lua. */
int reserve_handles(sl_engine *e, size_t need) {
    if (e->n_free + (size_t)(e->hcap - e->hcount) >= need) return SL_OK;
    lua_State *L = e->L;
    size_t cap = (size_t)e->hcap * 2;
    while (e->n_free + (cap - (size_t)e->hcount) < need) cap *= 2;
    if (cap > INT32_MAX) { sl_set_errorf(e, "too many live event handles"); return SL_RUNTIME; }
    uint8_t *plain = realloc(e->plain, cap + 1);
    if (!plain) { sl_set_errorf(e, "out of memory"); return SL_RUNTIME; }
    memset(plain + e->hcap + 1, 0, cap - (size_t)e->hcap);
    e->plain = plain;
    lua_pushvalue(L, S_GROW);
    lua_pushvalue(L, S_HANDLES);
    lua_pushinteger(L, e->hcount);
    lua_pushinteger(L, (lua_Integer)cap);
    int st = lua_pcall(L, 3, 1, 0);
    if (st != LUA_OK) {
        int rc = classify(e, st);
        lua_settop(L, S_NSLOTS);
        return rc == SL_OK ? SL_RUNTIME : rc;
    }
    lua_replace(L, S_HANDLES);
    e->hcap = (int32_t)cap;
    return SL_OK;
}

void sl_release(sl_engine *e, int32_t h) {
    if (!valid_handle(e, h)) return;
    lua_State *L = e->L;
    if (lua_rawgeti(L, S_HANDLES, h) == LUA_TNIL) { lua_pop(L, 1); return; }
    lua_pop(L, 1);
    if (e->n_free == e->cap_free) {
        size_t cap = e->cap_free ? e->cap_free * 2 : 1024;
        int32_t *p = realloc(e->free_slots, cap * sizeof *p);
        if (!p) return; /* keep the value; the slot leaks rather than corrupting the free list */
        e->free_slots = p;
        e->cap_free = cap;
    }
    lua_pushnil(L);
    lua_rawseti(L, S_HANDLES, h);
    e->free_slots[e->n_free++] = h;
    reuse_release(e, h, 0);
}

int sl_decode(sl_engine *e, const uint8_t *bytes, size_t len, int text, int32_t *out) {
    if (e->poisoned) return fail_memory(e);
    int rc = reserve_handles(e, 1);
    if (rc) return rc;
    lua_State *L = e->L;
    e->dbytes = bytes;
    e->dlen = len;
    e->dtext = text;
    e->dfailed = 0;
    e->dplain = 0;
    e->dreuse = -1;
    lua_pushvalue(L, S_DECODE);
    int st = lua_pcall(L, 0, 1, 0);
    e->dbytes = NULL;
    if (st != LUA_OK || e->poisoned) {
        rc = classify(e, st);
        lua_settop(L, S_NSLOTS);
        return rc == SL_OK ? SL_RUNTIME : rc;
    }
    if (e->dfailed) { lua_settop(L, S_NSLOTS); return SL_DECODE; }
    *out = put_handle(e);
    e->plain[*out] = (uint8_t)e->dplain;
    if (e->dreuse >= 0) e->reuse[e->dreuse].holder = *out;
    return SL_OK;
}

int sl_decode_fields(sl_engine *e, const sl_fields *f, const uint8_t *bytes, size_t len, int32_t *out) {
    e->dfields = f;
    int rc = sl_decode(e, bytes, len, 0, out);
    e->dfields = NULL;
    return rc;
}

int sl_function_source(sl_engine *e, int32_t fn, const char **src, size_t *len, int *first, int *last) {
    lua_State *L = e->L;
    *src = NULL; *len = 0; *first = *last = 0;
    int rc = SL_BAD_HANDLE;
    if (fn > 0 && fn <= e->nfuncs && lua_rawgeti(L, S_FUNCS, fn) == LUA_TFUNCTION) {
        lua_Debug ar;
        if (lua_getinfo(L, ">S", &ar) && ar.what && strcmp(ar.what, "Lua") == 0 && ar.source &&
            sl_chunk_source(L, ar.source) == LUA_TSTRING) {
            *src = lua_tolstring(L, -1, len);   /* held by the sources table */
            *first = ar.linedefined;
            *last = ar.lastlinedefined;
            rc = SL_OK;
        }
    }
    lua_settop(L, S_NSLOTS);
    return rc;
}

int sl_encode(sl_engine *e, int32_t h, int text, const uint8_t **out, size_t *out_len) {
    lua_State *L = e->L;
    if (e->out_cap > (8u << 20)) { free(e->out); e->out = NULL; e->out_cap = 0; } /* after one huge event */
    e->out_len = 0;
    *out = NULL;
    *out_len = 0;
    int t = valid_handle(e, h) ? lua_rawgeti(L, S_HANDLES, h) : (lua_pushnil(L), LUA_TNIL);
    int rc = SL_OK;
    if (t == LUA_TNIL) {
        sl_set_errorf(e, "event handle %d is not live", (int)h);
        rc = SL_BAD_HANDLE;
    } else if (text && t == LUA_TSTRING) {
        size_t n;
        const char *s = lua_tolstring(L, -1, &n);
        e->out_len = 0;
        if (n > e->out_cap) {
            uint8_t *p = realloc(e->out, n);
            if (!p) { sl_set_errorf(e, "output too large"); rc = SL_ENCODE; }
            else { e->out = p; e->out_cap = n; }
        }
        if (rc == SL_OK) { memcpy(e->out, s, n); e->out_len = n; }
    } else if (sl_encode_value(e, lua_gettop(L)) != 0) {
        rc = SL_ENCODE;
    }
    lua_settop(L, S_NSLOTS);
    if (rc == SL_OK) { *out = e->out ? e->out : (const uint8_t *)""; *out_len = e->out_len; }
    return rc;
}

int sl_copy(sl_engine *e, int32_t h, int32_t *out) {
    if (e->poisoned) return fail_memory(e);
    if (!valid_handle(e, h)) { sl_set_errorf(e, "event handle %d is not live", (int)h); return SL_BAD_HANDLE; }
    int rc = reserve_handles(e, 1);
    if (rc) return rc;
    lua_State *L = e->L;
    lua_pushvalue(L, S_COPY);
    if (lua_rawgeti(L, S_HANDLES, h) == LUA_TNIL) {
        lua_settop(L, S_NSLOTS);
        sl_set_errorf(e, "event handle %d is not live", (int)h);
        return SL_BAD_HANDLE;
    }
    return pcall_into_handle(e, 1, out);
}

int pcall_into_handle(sl_engine *e, int nargs, int32_t *out) {
    lua_State *L = e->L;
    int st = lua_pcall(L, nargs, 1, 0);
    if (st != LUA_OK || e->poisoned) {
        int rc = classify(e, st);
        lua_settop(L, S_NSLOTS);
        return rc == SL_OK ? SL_RUNTIME : rc;
    }
    *out = put_handle(e);
    return SL_OK;
}
