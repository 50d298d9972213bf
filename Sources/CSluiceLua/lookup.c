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

void sl_push_row(lua_State *L, sl_engine *e, const char *name, const uint8_t *bytes, size_t len) {
    const uint8_t *sb = e->dbytes;
    size_t sl = e->dlen;
    int st = e->dtext, sf = e->dfailed;
    e->dbytes = bytes;
    e->dlen = len;
    e->dtext = 0;
    e->dfailed = 0;
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_call(L, 0, 1);
    int failed = e->dfailed;
    e->dbytes = sb; e->dlen = sl; e->dtext = st; e->dfailed = sf;
    if (failed) luaL_error(L, "ctx.lookup: row of '%s' is not valid JSON", name);
}

/* After a suspended ctx.lookup: the host's answer is in e->resume_* (stack: name, key). */
static int lookup_resumed(lua_State *L, int status, lua_KContext k) {
    (void)status; (void)k;
    sl_engine *e = sl_E(L);
    const char *name = lua_tostring(L, 1);
    const char *key = lua_tostring(L, 2);
    switch (e->resume_kind) {
    case SL_ANSWER_NIL:
        lua_pushnil(L);
        return 1;
    case SL_ANSWER_FAILED:
        lua_pushfstring(L, "ctx.lookup('%s', '%s'): ", name ? name : "?", key ? key : "?");
        lua_pushlstring(L, (const char *)e->resume_bytes, e->resume_len);
        lua_concat(L, 2);
        return lua_error(L);
    default: {
        size_t len = e->resume_len;
        lua_pushlstring(L, (const char *)e->resume_bytes, len);
        sl_push_row(L, e, name ? name : "?", (const uint8_t *)lua_tostring(L, -1), len);
        return 1;
    }
    }
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
    /* Only the call coroutine itself may suspend (not a coroutine of the UDF's own, not across
     * a C boundary such as xpcall): elsewhere the host answers synchronously. */
    int can_suspend = e->running == L && lua_isyieldable(L);
    size_t len = 0;
    int status = 0;
    int64_t token = 0;
    uint8_t *bytes = e->lookup_fn(e->lookup_ctx, name, nlen, key, klen, can_suspend, &len, &status, &token);
    if (status == SL_LOOKUP_UNKNOWN) {
        free(bytes);
        return luaL_error(L, "ctx.lookup: no lookup named '%s'", name);
    }
    if (status == SL_LOOKUP_PENDING) {
        free(bytes);
        e->lookup_yield = 1;
        e->pending_token = token;
        return lua_yieldk(L, 0, 0, lookup_resumed);
    }
    if (status == SL_LOOKUP_FAILED) {
        lua_pushfstring(L, "ctx.lookup('%s', '%s'): ", name, key);
        lua_pushlstring(L, (const char *)(bytes ? bytes : (const uint8_t *)""), bytes ? len : 0);
        free(bytes);
        lua_concat(L, 2);
        return lua_error(L);
    }
    if (!bytes) { lua_pushnil(L); return 1; }
    /* Copy into Lua first so that no C allocation leaks if decoding raises (memory limit). */
    lua_pushlstring(L, (const char *)bytes, len);
    free(bytes);
    sl_push_row(L, e, name, (const uint8_t *)lua_tostring(L, -1), len);
    return 1;
}
