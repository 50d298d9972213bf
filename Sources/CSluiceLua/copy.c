/* A deep copy of a Lua value, keeping array marks and null-key sets. */
#include "internal.h"

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
