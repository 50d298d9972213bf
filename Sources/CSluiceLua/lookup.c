/* ctx.lookup(name, key): a row of a lookup table, decoded from the JSON bytes the host returns. */
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <math.h>
#include "internal.h"

void sl_set_lookup(sl_engine *e, sl_lookup_fn fn, void *ctx) {
    e->lookup_fn = fn;
    e->lookup_ctx = ctx;
}

/* upvalue 1: the engine's JSON decode closure (the one behind S_DECODE, sharing its key cache). */
int sl_ctx_lookup(lua_State *L) {
    sl_engine *e = sl_E(L);
    size_t nlen, klen;
    const char *name = luaL_checklstring(L, 1, &nlen);
    char num[32];
    const char *key;
    /* Keys compare as strings: 7, 7.0 and "7" are one key. */
    if (lua_type(L, 2) == LUA_TSTRING) {
        key = lua_tolstring(L, 2, &klen);
    } else if (lua_isinteger(L, 2)) {
        klen = (size_t)snprintf(num, sizeof num, "%lld", (long long)lua_tointeger(L, 2));
        key = num;
    } else if (lua_type(L, 2) == LUA_TNUMBER) {
        lua_Number d = lua_tonumber(L, 2);
        if (d == floor(d) && d >= -9.2e18 && d <= 9.2e18) klen = (size_t)snprintf(num, sizeof num, "%lld", (long long)d);
        else klen = (size_t)snprintf(num, sizeof num, "%.17g", (double)d);
        key = num;
    } else {
        return luaL_typeerror(L, 2, "string or number");
    }
    if (!e->lookup_fn) return luaL_error(L, "ctx.lookup: the pipeline has no lookups (add 'lookups:' to the spec)");
    size_t len = 0;
    int status = 0;
    uint8_t *bytes = e->lookup_fn(e->lookup_ctx, name, nlen, key, klen, &len, &status);
    if (status == SL_LOOKUP_UNKNOWN) {
        free(bytes);
        return luaL_error(L, "ctx.lookup: no lookup named '%s'", name);
    }
    if (!bytes) { lua_pushnil(L); return 1; }
    /* Copy into Lua first so that no C allocation leaks if decoding raises (memory limit). */
    lua_pushlstring(L, (const char *)bytes, len);
    free(bytes);
    int row = lua_gettop(L);
    const uint8_t *sb = e->dbytes;
    size_t sl = e->dlen;
    int st = e->dtext, sf = e->dfailed;
    e->dbytes = (const uint8_t *)lua_tostring(L, row);
    e->dlen = len;
    e->dtext = 0;
    e->dfailed = 0;
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_call(L, 0, 1);
    int failed = e->dfailed;
    e->dbytes = sb; e->dlen = sl; e->dtext = st; e->dfailed = sf;
    if (failed) return luaL_error(L, "ctx.lookup: row of '%s' is not valid JSON", name);
    return 1;
}
