/* Protected calls into UDFs and what they return: validation of the result, the handles of the
 * outputs and of the ctx.emit events. */
#include "internal.h"
#include <stdlib.h>

void clear_emits(sl_engine *e) {
    lua_State *L = e->L;
    for (int i = 1; i <= e->n_emit; i++) {
        lua_pushnil(L);
        lua_rawseti(L, S_EMITS, i);
    }
    e->n_emit = 0;
}

int outs_reserve(sl_engine *e, size_t n) {
    if (n <= e->cap_outs) return 1;
    size_t cap = e->cap_outs ? e->cap_outs : 16;
    while (cap < n) cap *= 2;
    int32_t *p = realloc(e->outs, cap * sizeof *p);
    if (!p) return 0;
    e->outs = p;
    e->cap_outs = cap;
    return 1;
}

static int is_event_value(int t) { return t == LUA_TTABLE || t == LUA_TSTRING; }

int begin_call(sl_engine *e, int32_t fn, int32_t h, const int32_t **outs, size_t *n_outs) {
    e->n_outs = 0;
    *n_outs = 0;
    *outs = e->outs;
    e->trace_len = 0;
    if (e->poisoned) return fail_memory(e);
    if (fn < 1 || fn > e->nfuncs) { sl_set_errorf(e, "function id %d is not loaded", (int)fn); return SL_BAD_HANDLE; }
    if (!valid_handle(e, h)) { sl_set_errorf(e, "event handle %d is not live", (int)h); return SL_BAD_HANDLE; }
    return SL_OK;
}

int sl_call(sl_engine *e, int32_t fn, int32_t h, const sl_meta *meta, int mode,
            int *truthy, const int32_t **outs, size_t *n_outs) {
    lua_State *L = e->L;
    int rc = begin_call(e, fn, h, outs, n_outs);
    if (rc != SL_OK) return rc;
    /* A test (filter, `when`) sees a read-only view: it cannot change what later stages see. */
    int view = needs_view(e, mode, h);
    if (view) lua_pushcfunction(L, sl_readonly_call);
    lua_rawgeti(L, S_FUNCS, fn);
    if (lua_rawgeti(L, S_HANDLES, h) == LUA_TNIL) {
        lua_settop(L, S_NSLOTS);
        sl_set_errorf(e, "event handle %d is not live", (int)h);
        return SL_BAD_HANDLE;
    }
    lua_pushvalue(L, S_CTX);
    enter_call(e, mode, meta);
    int st = lua_pcall(L, view ? 3 : 2, 1, S_MSGH);
    e->mode = -1;
    e->meta = NULL;
    return finish_call(e, mode, classify(e, st), truthy, outs, n_outs);
}

int finish_call(sl_engine *e, int mode, int rc, int *truthy, const int32_t **outs, size_t *n_outs) {
    lua_State *L = e->L;
    if (rc != SL_OK) {
        clear_emits(e);
        lua_settop(L, S_NSLOTS);
        return rc;
    }
    int res = S_NSLOTS + 1;
    if (mode == SL_MODE_TEST) {
        *truthy = lua_toboolean(L, res);
        clear_emits(e);
        lua_settop(L, S_NSLOTS);
        return SL_OK;
    }
    /* validate everything before taking any handle */
    int rt = lua_type(L, res);
    size_t nlist = 0;
    if (mode == SL_MODE_MAP) {
        if (rt != LUA_TNIL && !is_event_value(rt)) {
            sl_set_errorf(e, "map must return an event (table) or nil, got %s", lua_typename(L, rt));
            rc = SL_BAD_RETURN;
        } else if (rt != LUA_TNIL) {
            nlist = 1;
        }
    } else if (rt != LUA_TNIL) {
        if (rt != LUA_TTABLE) {
            sl_set_errorf(e, "flat_map must return a list of events or nil, got %s", lua_typename(L, rt));
            rc = SL_BAD_RETURN;
        } else {
            nlist = lua_rawlen(L, res);
            size_t nkeys = 0;   /* a hash ({a = 1}) or a list with named keys is not a list */
            lua_pushnil(L);
            while (lua_next(L, res) && nkeys <= nlist) { lua_pop(L, 1); nkeys++; }
            lua_settop(L, res);
            if (nkeys != nlist) {
                sl_set_errorf(e, "flat_map must return a list of events or nil, got a table with non-list keys");
                rc = SL_BAD_RETURN;
            }
            for (size_t i = 1; i <= nlist && rc == SL_OK; i++) {
                int et = lua_rawgeti(L, res, (lua_Integer)i);
                if (!is_event_value(et)) {
                    sl_set_errorf(e, "flat_map result [%zu] must be an event (table), got %s", i, lua_typename(L, et));
                    rc = SL_BAD_RETURN;
                }
                lua_pop(L, 1);
            }
        }
    }
    return take_outputs(e, rc, res, mode == SL_MODE_MAP ? -1 : (int64_t)nlist, nlist, outs, n_outs);
}

int take_outputs(sl_engine *e, int rc, int res, int64_t list_len, size_t nlist, const int32_t **outs, size_t *n_outs) {
    lua_State *L = e->L;
    size_t total = nlist + (size_t)e->n_emit;
    if (rc == SL_OK && total) {
        rc = reserve_handles(e, total);
        if (rc == SL_OK && !outs_reserve(e, total)) { sl_set_errorf(e, "out of memory"); rc = SL_RUNTIME; }
    }
    if (rc != SL_OK) {
        clear_emits(e);
        lua_settop(L, S_NSLOTS);
        return rc;
    }
    if (list_len < 0) {
        if (nlist) { lua_pushvalue(L, res); reuse_escaped(e, lua_topointer(L, -1)); e->outs[e->n_outs++] = put_handle(e); }
    } else {
        for (int64_t i = 1; i <= list_len; i++) {
            lua_rawgeti(L, res, (lua_Integer)i);
            reuse_escaped(e, lua_topointer(L, -1));
            e->outs[e->n_outs++] = put_handle(e);
        }
    }
    for (int i = 1; i <= e->n_emit; i++) {
        lua_rawgeti(L, S_EMITS, i);
        reuse_escaped(e, lua_topointer(L, -1));
        e->outs[e->n_outs++] = put_handle(e);
    }
    clear_emits(e);
    lua_settop(L, S_NSLOTS);
    *outs = e->outs;
    *n_outs = e->n_outs;
    return SL_OK;
}
