/* sl_event_shape: whether an event handle would be written as a JSON object, mirroring the
 * table rules of the encoder in encode.c (array metatable; keys exactly 1..n; otherwise object). */
#include "internal.h"
#include "sluice_lua_shape.h"

static int table_shape(lua_State *L, int idx) {
    if (lua_getmetatable(L, idx)) {
        int is_array = lua_rawequal(L, -1, S_ARRAY_MT);
        lua_pop(L, 1);
        if (is_array) return SL_SHAPE_ARRAY;
    }
    sl_engine *e = sl_E(L);
    if (e->has_nulls) {
        /* a decoded object that had null fields is an object, whatever keys remain */
        lua_pushvalue(L, idx);
        int had_nulls = lua_rawget(L, S_NULLS) == LUA_TTABLE;
        lua_pop(L, 1);
        if (had_nulls) return SL_SHAPE_OBJECT;
    }
    lua_Integer count = 0, maxk = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TNUMBER || !lua_isinteger(L, -1)) { lua_pop(L, 1); return SL_SHAPE_OBJECT; }
        lua_Integer k = lua_tointeger(L, -1);
        if (k < 1) { lua_pop(L, 1); return SL_SHAPE_OBJECT; }
        if (k > maxk) maxk = k;
        count++;
    }
    return count > 0 && maxk == count ? SL_SHAPE_ARRAY : SL_SHAPE_OBJECT;
}

int sl_event_shape(sl_engine *e, int32_t h) {
    lua_State *L = e->L;
    if (h < 1 || h > e->hcount) return SL_SHAPE_BAD_HANDLE;
    if (!lua_checkstack(L, 4)) return SL_SHAPE_OTHER;
    int top = lua_gettop(L);
    int t = lua_rawgeti(L, S_HANDLES, h);
    int shape;
    switch (t) {
    case LUA_TNIL: shape = SL_SHAPE_BAD_HANDLE; break;
    case LUA_TTABLE: shape = table_shape(L, top + 1); break;
    case LUA_TSTRING: shape = SL_SHAPE_STRING; break;
    default: shape = SL_SHAPE_OTHER; break;
    }
    lua_settop(L, top);
    return shape;
}
