/* Suspendable UDF calls: the UDF runs as a coroutine that ctx.lookup suspends while its answer
 * is pending (an HTTP lookup), so the worker goes on with other events and resumes the call when
 * the answer arrives. Each suspended call keeps its own ctx.emit values and instruction budget;
 * the memory limit is the state's, shared by all. Coroutines of calls that finished are reused. */
#include <stdlib.h>
#include <string.h>
#include "internal.h"

/* (calls, id) -> a new coroutine, stored at calls[id]. */
static int new_thread_fn(lua_State *L) {
    lua_newthread(L);
    lua_pushvalue(L, -1);
    lua_rawseti(L, 1, lua_tointeger(L, 2));
    return 1;
}

/* (calls, emits, id, n): moves emits[1..n] into a new table calls[-id]. */
static int save_emits_fn(lua_State *L) {
    lua_Integer id = lua_tointeger(L, 3), n = lua_tointeger(L, 4);
    lua_createtable(L, (int)n, 0);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, 2, i);
        lua_rawseti(L, -2, i);
    }
    lua_rawseti(L, 1, -id);
    return 0;
}

/* (calls, emits, id, n): puts calls[-id][1..n] back into emits. */
static int restore_emits_fn(lua_State *L) {
    lua_Integer id = lua_tointeger(L, 3), n = lua_tointeger(L, 4);
    lua_rawgeti(L, 1, -id);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, -1, i);
        lua_rawseti(L, 2, i);
    }
    lua_pushnil(L);
    lua_rawseti(L, 1, -id);
    return 0;
}

/* Runs one of the helpers above in protected mode. */
static int protected_helper(sl_engine *e, lua_CFunction f, int32_t id, lua_Integer n, int nres) {
    lua_State *L = e->L;
    lua_pushcfunction(L, f);
    lua_pushvalue(L, S_CALLS);
    if (f == new_thread_fn) {
        lua_pushinteger(L, id);
    } else {
        lua_pushvalue(L, S_EMITS);
        lua_pushinteger(L, id);
        lua_pushinteger(L, n);
    }
    int st = lua_pcall(L, f == new_thread_fn ? 2 : 4, nres, 0);
    if (st != LUA_OK || e->poisoned) {
        int rc = classify(e, st);
        lua_settop(L, S_NSLOTS);
        return rc == SL_OK ? SL_RUNTIME : rc;
    }
    return SL_OK;
}

static void free_record(sl_engine *e, int32_t id, int keep_thread) {
    sl_call_rec *r = &e->calls[id - 1];
    lua_State *L = e->L;
    if (!keep_thread && r->has_thread) {
        lua_pushnil(L);
        lua_rawseti(L, S_CALLS, id);
        r->has_thread = 0;
    }
    if (r->n_emit) {
        lua_pushnil(L);
        lua_rawseti(L, S_CALLS, -id);
        r->n_emit = 0;
    }
    r->state = 0;
    if (e->nfree_calls == e->capfree_calls) {
        int32_t cap = e->capfree_calls ? e->capfree_calls * 2 : 64;
        int32_t *p = realloc(e->free_calls, (size_t)cap * sizeof *p);
        if (!p) return;   /* the record leaks rather than being reused twice */
        e->free_calls = p;
        e->capfree_calls = cap;
    }
    e->free_calls[e->nfree_calls++] = id;
}

/* A free record and its coroutine (a reused one, or a new one). */
static int take_record(sl_engine *e, int32_t *out_id, lua_State **out_co) {
    lua_State *L = e->L;
    int32_t id;
    if (e->nfree_calls) {
        id = e->free_calls[--e->nfree_calls];
    } else {
        if (e->ncalls == e->capcalls) {
            int32_t cap = e->capcalls ? e->capcalls * 2 : 64;
            sl_call_rec *p = realloc(e->calls, (size_t)cap * sizeof *p);
            if (!p) { sl_set_errorf(e, "out of memory"); return SL_RUNTIME; }
            e->calls = p;
            e->capcalls = cap;
        }
        id = ++e->ncalls;
        memset(&e->calls[id - 1], 0, sizeof e->calls[id - 1]);
    }
    sl_call_rec *r = &e->calls[id - 1];
    if (!r->has_thread) {
        int rc = protected_helper(e, new_thread_fn, id, 0, 1);
        if (rc != SL_OK) { free_record(e, id, 0); return rc; }
        lua_pop(L, 1);
        r->has_thread = 1;
    }
    lua_rawgeti(L, S_CALLS, id);
    *out_co = lua_tothread(L, -1);
    lua_pop(L, 1);
    lua_settop(*out_co, 0);
    *out_id = id;
    return SL_OK;
}

/* Resumes the coroutine of `id` with `nargs` values on its stack and settles the outcome. */
static int run(sl_engine *e, int32_t id, lua_State *co, int nargs, int *truthy, const int32_t **outs,
               size_t *n_outs, int32_t *call, int64_t *token) {
    lua_State *L = e->L;
    sl_call_rec *r = &e->calls[id - 1];
    int mode = r->mode;
    e->running = co;
    e->lookup_yield = 0;
    int nres = 0;
    int st = lua_resume(co, L, nargs, &nres);
    e->running = NULL;
    e->mode = -1;
    e->meta = NULL;
    lua_settop(L, S_NSLOTS);
    if (st == LUA_YIELD && e->lookup_yield && !e->poisoned && !e->pend_set) {
        lua_pop(co, nres);
        r->instr_used = e->instr_used;
        r->token = e->pending_token;
        r->n_emit = 0;
        if (e->n_emit) {
            int rc = protected_helper(e, save_emits_fn, id, e->n_emit, 0);
            if (rc != SL_OK) { clear_emits(e); free_record(e, id, 0); return rc; }
            r->n_emit = e->n_emit;
            clear_emits(e);
        }
        *call = id;
        *token = r->token;
        return SL_SUSPENDED;
    }
    if (st == LUA_YIELD) {
        free_record(e, id, 0);   /* a yield of the UDF's own at the top of the call: the coroutine is dropped */
        if (e->poisoned || e->pend_set) return finish_call(e, mode, classify(e, LUA_ERRMEM), truthy, outs, n_outs);
        sl_set_errorf(e, "attempt to yield from outside a coroutine");
        return finish_call(e, mode, SL_RUNTIME, truthy, outs, n_outs);
    }
    if (st == LUA_OK) {
        if (nres == 0) lua_pushnil(L);
        else {
            lua_pop(co, nres - 1);
            lua_xmove(co, L, 1);
        }
        lua_settop(co, 0);
        free_record(e, id, 1);
        return finish_call(e, mode, classify(e, LUA_OK), truthy, outs, n_outs);
    }
    lua_xmove(co, L, 1);   /* the error object */
    free_record(e, id, 0);
    int rc = classify(e, st);
    return finish_call(e, mode, rc == SL_OK ? SL_RUNTIME : rc, truthy, outs, n_outs);
}

int sl_call_start(sl_engine *e, int32_t fn, int32_t h, const sl_meta *meta, int mode,
                  int *truthy, const int32_t **outs, size_t *n_outs, int32_t *call, int64_t *token) {
    lua_State *L = e->L;
    int rc = begin_call(e, fn, h, outs, n_outs);
    if (rc != SL_OK) return rc;
    if (mode != SL_MODE_TEST && mode != SL_MODE_MAP && mode != SL_MODE_FLATMAP) {
        sl_set_errorf(e, "mode %d cannot suspend", mode);
        return SL_BAD_HANDLE;
    }
    if (lua_rawgeti(L, S_HANDLES, h) == LUA_TNIL) {
        lua_settop(L, S_NSLOTS);
        sl_set_errorf(e, "event handle %d is not live", (int)h);
        return SL_BAD_HANDLE;
    }
    lua_pop(L, 1);
    int32_t id;
    lua_State *co;
    rc = take_record(e, &id, &co);
    if (rc != SL_OK) return rc;
    int view = needs_view(e, mode, h);
    if (view) lua_pushcfunction(co, sl_readonly_call);
    lua_rawgeti(L, S_FUNCS, fn);
    lua_rawgeti(L, S_HANDLES, h);
    lua_pushvalue(L, S_CTX);
    lua_xmove(L, co, 3);
    sl_call_rec *r = &e->calls[id - 1];
    r->state = 1;
    r->mode = mode;
    enter_call(e, mode, meta);
    resume_budget(e, co, 0);
    return run(e, id, co, view ? 3 : 2, truthy, outs, n_outs, call, token);
}

int sl_call_resume(sl_engine *e, int32_t id, int kind, const uint8_t *bytes, size_t len, const sl_meta *meta,
                   int *truthy, const int32_t **outs, size_t *n_outs, int64_t *token) {
    lua_State *L = e->L;
    e->n_outs = 0;
    *n_outs = 0;
    *outs = e->outs;
    e->trace_len = 0;
    if (id < 1 || id > e->ncalls || e->calls[id - 1].state != 1) {
        sl_set_errorf(e, "call %d is not suspended", (int)id);
        return SL_BAD_HANDLE;
    }
    sl_call_rec *r = &e->calls[id - 1];
    if (e->poisoned) { free_record(e, id, 0); return fail_memory(e); }
    if (r->n_emit) {
        int rc = protected_helper(e, restore_emits_fn, id, r->n_emit, 0);
        if (rc != SL_OK) { clear_emits(e); free_record(e, id, 0); return rc; }
    }
    e->n_emit = r->n_emit;
    r->n_emit = 0;
    lua_rawgeti(L, S_CALLS, id);
    lua_State *co = lua_tothread(L, -1);
    lua_pop(L, 1);
    e->mode = r->mode;
    e->meta = meta;
    e->call_gen++;
    e->resume_kind = kind;
    e->resume_bytes = bytes ? bytes : (const uint8_t *)"";
    e->resume_len = bytes ? len : 0;
    resume_budget(e, co, r->instr_used);
    int32_t again = 0;
    return run(e, id, co, 0, truthy, outs, n_outs, &again, token);
}

void sl_call_abandon(sl_engine *e, int32_t id) {
    if (id < 1 || id > e->ncalls || e->calls[id - 1].state != 1) return;
    free_record(e, id, 0);
}

int32_t sl_suspended_calls(const sl_engine *e) {
    int32_t n = 0;
    for (int32_t i = 0; i < e->ncalls; i++) n += e->calls[i].state == 1;
    return n;
}
