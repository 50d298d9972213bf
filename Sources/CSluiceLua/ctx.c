/* ctx, the second argument of every UDF: emit, now, log, count, meta; and the counters it keeps. */
#include "internal.h"
#include <string.h>
#include <time.h>

/* ------------------------------------------------------------------ ctx */

int ctx_emit(lua_State *L) {
    sl_engine *e = sl_E(L);
    if (e->mode != SL_MODE_MAP && e->mode != SL_MODE_FLATMAP && e->mode != SL_MODE_MERGE)
        return luaL_error(L, "ctx.emit is only available in map, flat_map and merge");
    int t = lua_type(L, 1);
    if (t != LUA_TTABLE && t != LUA_TSTRING) return luaL_typeerror(L, 1, "table");
    lua_settop(L, 1);
    lua_rawseti(L, lua_upvalueindex(1), e->n_emit + 1);
    e->n_emit++;
    return 0;
}

int ctx_now(lua_State *L) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    lua_pushinteger(L, (lua_Integer)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
    return 1;
}

int ctx_log(lua_State *L) {
    sl_engine *e = sl_E(L);
    size_t ll, ml;
    const char *lv = luaL_checklstring(L, 1, &ll);
    const char *m = luaL_tolstring(L, 2, &ml);
    if (e->log_fn) e->log_fn(e->log_ctx, lv, ll, m, ml);
    return 0;
}

int ctx_count(lua_State *L) {
    luaL_checkstring(L, 1);
    lua_Integer n = luaL_optinteger(L, 2, 1);
    lua_settop(L, 1);
    lua_pushvalue(L, 1);
    lua_Integer cur = 0;
    if (lua_rawget(L, lua_upvalueindex(1)) == LUA_TNUMBER) cur = lua_tointeger(L, -1);
    lua_pop(L, 1);
    lua_Integer sum;   /* saturate, like the Swift totals: never wrap to a negative count */
    if (__builtin_add_overflow(cur, n, &sum)) sum = n > 0 ? LUA_MAXINTEGER : LUA_MININTEGER;
    lua_pushinteger(L, sum);
    lua_rawset(L, lua_upvalueindex(1));
    return 0;
}

static void set_meta_bytes(lua_State *L, const char *field, const uint8_t *blob, size_t off, size_t len) {
    lua_pushlstring(L, (const char *)blob + off, len);
    lua_setfield(L, -2, field);
}

/* __index of ctx's method table: builds ctx.meta on first access in each call.
 * upvalue 1: the meta table built for the current call. */
int ctx_index(lua_State *L) {
    sl_engine *e = sl_E(L);
    if (lua_type(L, 2) != LUA_TSTRING || strcmp(lua_tostring(L, 2), "meta") != 0) return 0;
    if (e->meta_gen == e->call_gen && lua_istable(L, lua_upvalueindex(1))) {
        lua_pushvalue(L, lua_upvalueindex(1));
        return 1;
    }
    const sl_meta *m = e->mode >= 0 ? e->meta : NULL;
    lua_createtable(L, 0, 6);
    if (m) {
        if (m->has_key) set_meta_bytes(L, "key", m->blob, m->key_off, m->key_len);
        if (m->has_timestamp) { lua_pushinteger(L, m->timestamp); lua_setfield(L, -2, "timestamp"); }
        if (m->has_topic) set_meta_bytes(L, "topic", m->blob, m->topic_off, m->topic_len);
        if (m->has_partition) { lua_pushinteger(L, m->partition); lua_setfield(L, -2, "partition"); }
        if (m->has_offset) { lua_pushinteger(L, m->offset); lua_setfield(L, -2, "offset"); }
        lua_createtable(L, 0, (int)(m->n_headers < 64 ? m->n_headers : 64));
        for (size_t i = 0; i < m->n_headers; i++) {
            const size_t *h = m->headers + 4 * i;
            lua_pushlstring(L, (const char *)m->blob + h[0], h[1]);
            lua_pushlstring(L, (const char *)m->blob + h[2], h[3]);
            lua_rawset(L, -3);
        }
        lua_setfield(L, -2, "headers");
    } else {
        lua_newtable(L);
        lua_setfield(L, -2, "headers");
    }
    lua_pushvalue(L, -1);
    lua_replace(L, lua_upvalueindex(1));
    e->meta_gen = e->call_gen;
    return 1;
}

int ctx_newindex(lua_State *L) {
    return luaL_error(L, "ctx is read-only");
}

void sl_take_counters(sl_engine *e, sl_counter_fn fn, void *ctx) {
    lua_State *L = e->L;
    lua_pushnil(L);
    while (lua_next(L, S_COUNTERS)) {
        size_t n;
        if (lua_type(L, -2) == LUA_TSTRING) {
            const char *k = lua_tolstring(L, -2, &n);
            fn(ctx, k, n, (int64_t)lua_tointeger(L, -1));
        }
        lua_pop(L, 1);
        lua_pushvalue(L, -1);
        lua_pushnil(L);
        lua_rawset(L, S_COUNTERS);
    }
    lua_settop(L, S_NSLOTS);
}
