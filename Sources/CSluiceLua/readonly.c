/* Read-only views of events for tests (filter UDFs and `when` conditions): a test may read
 * everything but change nothing, so sibling stages never see a test's edits while sinks write
 * the original bytes. A view is a small proxy table; nested tables are wrapped when read. */
#include "internal.h"

static char ro_target_key;   /* light userdata key of the wrapped table inside a proxy */
static const char *RO_META = "sluice.readonly";

static void push_view(lua_State *L, int idx);

static int ro_index(lua_State *L) {
    lua_pushlightuserdata(L, &ro_target_key);
    lua_rawget(L, 1);
    lua_pushvalue(L, 2);
    lua_gettable(L, -2);
    if (lua_type(L, -1) == LUA_TTABLE) push_view(L, lua_gettop(L));
    return 1;
}

static int ro_newindex(lua_State *L) {
    return luaL_error(L, "the event is read-only in a filter or a 'when' condition (change it in a map)");
}

static int ro_len(lua_State *L) {
    lua_pushlightuserdata(L, &ro_target_key);
    lua_rawget(L, 1);
    lua_pushinteger(L, (lua_Integer)lua_rawlen(L, -1));
    return 1;
}

/* next over the wrapped table, wrapping table values */
static int ro_next(lua_State *L) {
    lua_settop(L, 2);
    lua_pushlightuserdata(L, &ro_target_key);
    lua_rawget(L, 1);
    lua_pushvalue(L, 2);
    if (!lua_next(L, 3)) { lua_pushnil(L); return 1; }
    if (lua_type(L, -1) == LUA_TTABLE) {
        push_view(L, lua_gettop(L));
        lua_replace(L, -2);   /* key, view */
    }
    return 2;
}

static int ro_pairs(lua_State *L) {
    lua_pushcfunction(L, ro_next);
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    return 3;
}

/* Pushes a view of the table at idx (absolute or relative). */
static void push_view(lua_State *L, int idx) {
    idx = lua_absindex(L, idx);
    lua_createtable(L, 0, 1);
    lua_pushlightuserdata(L, &ro_target_key);
    lua_pushvalue(L, idx);
    lua_rawset(L, -3);
    if (luaL_newmetatable(L, RO_META)) {
        lua_pushcfunction(L, ro_index); lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, ro_newindex); lua_setfield(L, -2, "__newindex");
        lua_pushcfunction(L, ro_len); lua_setfield(L, -2, "__len");
        lua_pushcfunction(L, ro_pairs); lua_setfield(L, -2, "__pairs");
        lua_pushboolean(L, 0); lua_setfield(L, -2, "__metatable");
    }
    lua_setmetatable(L, -2);
}

static char ro_cached_key;   /* registry key of the view reused for the top-level event */

/* (fn, event, ctx) -> fn(view of event, ctx). Runs inside the caller's protected call. The
 * top-level view is one table reused from call to call (valid for the call only); nested
 * tables get fresh views when read. */
static int ro_done(lua_State *L, int status, lua_KContext k) {
    (void)L; (void)status; (void)k;
    return 1;
}

int sl_readonly_call(lua_State *L) {
    if (lua_type(L, 2) == LUA_TTABLE) {
        if (sl_E(L)->running == L) {
            /* A suspendable call: the view must survive a suspension while other calls run. */
            push_view(L, 2);
        } else {
            lua_pushlightuserdata(L, &ro_cached_key);
            if (lua_rawget(L, LUA_REGISTRYINDEX) != LUA_TTABLE) {
                lua_pop(L, 1);
                push_view(L, 2);
                lua_pushlightuserdata(L, &ro_cached_key);
                lua_pushvalue(L, -2);
                lua_rawset(L, LUA_REGISTRYINDEX);
            } else {
                lua_pushlightuserdata(L, &ro_target_key);
                lua_pushvalue(L, 2);
                lua_rawset(L, -3);
            }
        }
        lua_replace(L, 2);
    }
    lua_callk(L, 2, 1, 0, ro_done);
    return 1;
}
