/* Calls for keyed transforms: merge(lefts, right, ctx) of a join and reduce(state, event, ctx)
 * of an aggregate, with ctx.state bound to the key's own table for the duration of the call. */
#include <string.h>
#include "internal.h"

/* (handles, array_mt) -> list of handles[e->list_hs[i]] */
static int list_fn(lua_State *L) {
    sl_engine *e = sl_E(L);
    lua_createtable(L, (int)(e->list_n < 1024 ? e->list_n : 1024), 0);
    for (size_t i = 0; i < e->list_n; i++) {
        lua_rawgeti(L, 1, e->list_hs[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_pushvalue(L, 2);
    lua_setmetatable(L, -2);
    return 1;
}

static int table_fn(lua_State *L) {
    lua_createtable(L, 0, 4);
    return 1;
}

/* Runs a table-building C function under pcall and stores its result in a new handle. */
static int build(sl_engine *e, lua_CFunction fn, int32_t *out) {
    if (e->poisoned) return fail_memory(e);
    int rc = reserve_handles(e, 1);
    if (rc) return rc;
    lua_State *L = e->L;
    lua_pushcfunction(L, fn);
    lua_pushvalue(L, S_HANDLES);
    lua_pushvalue(L, S_ARRAY_MT);
    return pcall_into_handle(e, 2, out);
}

int sl_list(sl_engine *e, const int32_t *handles, size_t n, int32_t *out) {
    for (size_t i = 0; i < n; i++)
        if (!valid_handle(e, handles[i])) { sl_set_errorf(e, "event handle %d is not live", (int)handles[i]); return SL_BAD_HANDLE; }
    for (size_t i = 0; i < n; i++) reuse_release(e, handles[i], 1);
    e->list_hs = handles;
    e->list_n = n;
    int rc = build(e, list_fn, out);
    e->list_hs = NULL;
    e->list_n = 0;
    return rc;
}

int sl_new_table(sl_engine *e, int32_t *out) { return build(e, table_fn, out); }

int sl_is_empty(sl_engine *e, int32_t h) {
    if (!valid_handle(e, h)) return 0;
    lua_State *L = e->L;
    int empty = 0;
    if (lua_rawgeti(L, S_HANDLES, h) == LUA_TTABLE) {
        lua_pushnil(L);
        empty = lua_next(L, -2) == 0;
    }
    lua_settop(L, S_NSLOTS);
    return empty;
}

/* Sets (or clears, with h == 0) the `state` field of ctx's method table. Top-level only. */
static void bind_state(sl_engine *e, int32_t h) {
    lua_State *L = e->L;
    if (!lua_getmetatable(L, S_CTX)) return;
    lua_getfield(L, -1, "__index");
    if (h > 0) lua_rawgeti(L, S_HANDLES, h); else lua_pushnil(L);
    lua_setfield(L, -2, "state");
    lua_settop(L, S_NSLOTS);
}

/* A list result: a table with the array metatable, or whose [1] is a table. */
static int is_list(lua_State *L, int idx) {
    if (lua_getmetatable(L, idx)) {
        int arr = lua_rawequal(L, -1, S_ARRAY_MT);
        lua_pop(L, 1);
        if (arr) return 1;
    }
    int t = lua_rawgeti(L, idx, 1);
    lua_pop(L, 1);
    return t == LUA_TTABLE;
}

int sl_call_keyed(sl_engine *e, int32_t fn, const int32_t *args, size_t nargs, int32_t state,
                  const sl_meta *meta, int mode, const int32_t **outs, size_t *n_outs) {
    lua_State *L = e->L;
    e->n_outs = 0;
    *n_outs = 0;
    *outs = e->outs;
    e->trace_len = 0;
    if (e->poisoned) return fail_memory(e);
    if (fn < 1 || fn > e->nfuncs) { sl_set_errorf(e, "function id %d is not loaded", (int)fn); return SL_BAD_HANDLE; }
    if (nargs > 8 || (mode != SL_MODE_MERGE && mode != SL_MODE_REDUCE)) { sl_set_errorf(e, "bad keyed call"); return SL_BAD_HANDLE; }
    for (size_t i = 0; i < nargs; i++)
        if (args[i] != SL_NIL_HANDLE && !valid_handle(e, args[i])) { sl_set_errorf(e, "event handle %d is not live", (int)args[i]); return SL_BAD_HANDLE; }
    if (state && !valid_handle(e, state)) { sl_set_errorf(e, "state handle %d is not live", (int)state); return SL_BAD_HANDLE; }
    for (size_t i = 0; i < nargs; i++) reuse_release(e, args[i], 1);
    if (!lua_checkstack(L, (int)nargs + 8)) { sl_set_errorf(e, "stack overflow"); return SL_RUNTIME; }
    bind_state(e, state);
    lua_rawgeti(L, S_FUNCS, fn);
    for (size_t i = 0; i < nargs; i++) {
        if (args[i] == SL_NIL_HANDLE) lua_pushnil(L); else lua_rawgeti(L, S_HANDLES, args[i]);
    }
    lua_pushvalue(L, S_CTX);
    enter_call(e, mode, meta);
    int st = lua_pcall(L, (int)nargs + 1, 1, S_MSGH);
    e->mode = -1;
    e->meta = NULL;
    int rc = classify(e, st);
    if (rc != SL_OK) {
        clear_emits(e);
        lua_settop(L, S_NSLOTS);
        bind_state(e, 0);
        return rc;
    }
    int res = S_NSLOTS + 1;
    int rt = lua_type(L, res);
    size_t nlist = 0;
    int list = 0;
    if (mode == SL_MODE_REDUCE) {
        if (rt != LUA_TTABLE) {
            sl_set_errorf(e, "reduce must return the state (a table), got %s", lua_typename(L, rt));
            rc = SL_BAD_RETURN;
        } else {
            nlist = 1;
        }
    } else if (rt == LUA_TTABLE) {
        list = is_list(L, res);
        if (!list) {
            nlist = 1;
        } else {
            nlist = lua_rawlen(L, res);
            for (size_t i = 1; i <= nlist && rc == SL_OK; i++) {
                int et = lua_rawgeti(L, res, (lua_Integer)i);
                if (et != LUA_TTABLE) {
                    sl_set_errorf(e, "merge result [%zu] must be an event (table), got %s", i, lua_typename(L, et));
                    rc = SL_BAD_RETURN;
                }
                lua_pop(L, 1);
            }
        }
    } else if (rt != LUA_TNIL) {
        sl_set_errorf(e, "merge must return an event, a list of events or nil, got %s", lua_typename(L, rt));
        rc = SL_BAD_RETURN;
    }
    int r = take_outputs(e, rc, res, list ? (int64_t)nlist : -1, nlist, outs, n_outs);
    bind_state(e, 0);
    return r;
}
