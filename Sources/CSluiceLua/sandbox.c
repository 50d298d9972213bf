/* The sandbox: replacements for unsafe base functions, require inside the UDF directory, loading
 * UDFs and expressions, and the setup that builds the environment and the S_* slots. */
#include "internal.h"
#include "patterns.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SL_MAX_MODULE_BYTES (16 * 1024 * 1024)

/* ------------------------------------------------------------------ sandbox functions */

int msgh(lua_State *L) {
    sl_engine *e = sl_E(L);
    if (lua_type(L, 1) != LUA_TSTRING) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) {
            lua_replace(L, 1);
        } else {
            lua_settop(L, 1);
            lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
            lua_replace(L, 1);
        }
    }
    lua_settop(L, 1);
    if (!e->poisoned) {
        luaL_traceback(L, L, NULL, 1);
        size_t n;
        const char *s = lua_tolstring(L, -1, &n);
        sl_set_trace(e, s, n);
        lua_pop(L, 1);
    }
    return 1;
}

static int sb_print(lua_State *L) {
    sl_engine *e = sl_E(L);
    int n = lua_gettop(L);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int i = 1; i <= n; i++) {
        if (i > 1) luaL_addchar(&b, '\t');
        luaL_tolstring(L, i, NULL);
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    size_t len;
    const char *s = lua_tolstring(L, -1, &len);
    if (e->log_fn) e->log_fn(e->log_ctx, "info", 4, s, len);
    return 0;
}

/* load(chunk [, chunkname [, mode [, env]]]): text chunks only; env defaults to the sandbox. */
static int sb_load(lua_State *L) {
    int st, has_env = !lua_isnone(L, 4);
    size_t len;
    int t = lua_type(L, 1);
    if (t == LUA_TSTRING) {
        const char *s = lua_tolstring(L, 1, &len);
        const char *name = luaL_optstring(L, 2, s);
        st = luaL_loadbufferx(L, s, len, name, "t");
    } else if (t == LUA_TFUNCTION) {
        const char *name = luaL_optstring(L, 2, "=(load)");
        luaL_Buffer b;
        luaL_buffinit(L, &b);
        for (;;) {
            lua_pushvalue(L, 1);
            lua_call(L, 0, 1);
            if (lua_isnil(L, -1)) { lua_pop(L, 1); break; }
            if (lua_type(L, -1) != LUA_TSTRING) return luaL_error(L, "reader function must return a string");
            if (lua_rawlen(L, -1) == 0) { lua_pop(L, 1); break; }
            luaL_addvalue(&b);
        }
        luaL_pushresult(&b);
        const char *s = lua_tolstring(L, -1, &len);
        st = luaL_loadbufferx(L, s, len, name, "t");
    } else {
        return luaL_typeerror(L, 1, "string");
    }
    if (st != LUA_OK) {
        lua_pushnil(L);
        lua_insert(L, -2);
        return 2;
    }
    if (has_env) lua_pushvalue(L, 4);
    else lua_pushvalue(L, lua_upvalueindex(1));
    if (!lua_setupvalue(L, -2, 1)) lua_pop(L, 1);
    return 1;
}

/* xpcall(f, handler, ...): the handler runs after the error has unwound, not inside the
 * raise. Lua runs message handlers with hooks disabled when the error comes from a hook, so
 * a looping handler would escape the instruction limit. (Not yieldable across the call.) */
static int sb_xpcall(lua_State *L) {
    int n = lua_gettop(L);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_pushboolean(L, 1);
    lua_pushvalue(L, 1);
    for (int i = 3; i <= n; i++) lua_pushvalue(L, i);
    if (lua_pcall(L, n - 2 < 0 ? 0 : n - 2, LUA_MULTRET, 0) == LUA_OK) return lua_gettop(L) - n;
    lua_pushvalue(L, 2);
    lua_insert(L, -2);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
        sl_engine *e = sl_E(L);
        if (e->instr_hit || e->poisoned) return lua_error(L);
    }
    lua_pushboolean(L, 0);
    lua_insert(L, -2);
    return 2;
}

static int sb_collectgarbage(lua_State *L) {
    const char *opt = luaL_optstring(L, 1, "collect");
    if (strcmp(opt, "count") == 0) {
        int kb = lua_gc(L, LUA_GCCOUNT), b = lua_gc(L, LUA_GCCOUNTB);
        lua_pushnumber(L, (lua_Number)kb + (lua_Number)b / 1024.0);
        return 1;
    }
    lua_pushinteger(L, 0); /* everything else is a no-op inside the sandbox */
    return 1;
}

/* setmetatable without __gc (finalizers would run outside any call's budget). */
static int sb_setmetatable(lua_State *L) {
    int t = lua_type(L, 2);
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_argexpected(L, t == LUA_TNIL || t == LUA_TTABLE, 2, "nil or table");
    if (t == LUA_TTABLE) {
        lua_pushliteral(L, "__gc");
        if (lua_rawget(L, 2) != LUA_TNIL) return luaL_error(L, "__gc metamethods are not allowed");
        lua_pop(L, 1);
    }
    if (luaL_getmetafield(L, 1, "__metatable") != LUA_TNIL) return luaL_error(L, "cannot change a protected metatable");
    lua_settop(L, 2);
    lua_setmetatable(L, 1);
    return 1;
}

static int sb_array(lua_State *L) {
    int n = lua_gettop(L);
    lua_createtable(L, n, 0);
    for (int i = 1; i <= n; i++) {
        lua_pushvalue(L, i);
        lua_rawseti(L, -2, i);
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_setmetatable(L, -2);
    return 1;
}

/* coroutine.create / coroutine.wrap: a new thread starts with a fresh hook count, so
 * creating one is charged a full hook period. */
static int sb_co_new(lua_State *L) {
    sl_engine *e = sl_E(L);
    charge(L, e, e->instr_gran);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
    return 1;
}

static int valid_module_name(const char *s, size_t n) {
    if (n == 0 || n > 200) return 0;
    int seg = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_') {
            seg++;
        } else if (c == '.' && seg > 0) {
            seg = 0;
        } else {
            return 0;
        }
    }
    return seg > 0;
}

static char *read_file(const char *path, size_t *len, int *too_big) {
    *too_big = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (cap - n < 65536) {
            if (cap >= SL_MAX_MODULE_BYTES) { *too_big = 1; free(buf); fclose(f); return NULL; }
            size_t nc = cap ? cap * 2 : 65536;
            char *p = realloc(buf, nc);
            if (!p) { free(buf); fclose(f); return NULL; }
            buf = p;
            cap = nc;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) { free(buf); return NULL; }
    *len = n;
    return buf;
}

static const char sl_loading_tag = 0;
static const char sl_sources_key = 0;

/* Remembers the text a chunk was loaded from, by chunk name (for sl_function_source). */
static void keep_source(lua_State *L, const char *chunkname, const char *src, size_t len) {
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &sl_sources_key) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_rawsetp(L, LUA_REGISTRYINDEX, &sl_sources_key);
    }
    /* Two different texts under one name: neither can be told apart, so neither is kept. */
    size_t old_len;
    int had = lua_getfield(L, -1, chunkname);
    const char *old = had == LUA_TSTRING ? lua_tolstring(L, -1, &old_len) : NULL;
    int same = old && old_len == len && memcmp(old, src, len) == 0;
    lua_pop(L, 1);
    if (had == LUA_TNIL) lua_pushlstring(L, src, len);
    else if (same) { lua_pop(L, 1); return; }
    else lua_pushboolean(L, 0);
    lua_setfield(L, -2, chunkname);
    lua_pop(L, 1);
}

int sl_chunk_source(lua_State *L, const char *chunkname) {
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &sl_sources_key) != LUA_TTABLE) return lua_type(L, -1);
    int t = lua_getfield(L, -1, chunkname);
    lua_remove(L, -2);
    return t;
}

/* require(name): udf_dir/<name with dots as '/'>.lua, text only, sandbox env, cached.
 * upvalues: 1 loaded table, 2 env. */
static int sb_require(lua_State *L) {
    sl_engine *e = sl_E(L);
    size_t n;
    const char *name = luaL_checklstring(L, 1, &n);
    if (!valid_module_name(name, n) || strlen(name) != n)
        return luaL_error(L, "invalid module name '%s' (use letters, digits, '_' and '.')", name);
    lua_settop(L, 1);
    lua_pushvalue(L, 1);
    if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL) {
        if (lua_touserdata(L, -1) == (void *)&sl_loading_tag)
            return luaL_error(L, "loop while loading module '%s'", name);
        return 1;
    }
    lua_pop(L, 1);
    char rel[256];
    memcpy(rel, name, n);
    for (size_t i = 0; i < n; i++) if (rel[i] == '.') rel[i] = '/';
    rel[n] = 0;
    lua_pushfstring(L, "%s/%s.lua", e->udf_dir, rel);         /* 2: path */
    lua_pushfstring(L, "@%s/%s.lua", e->display_dir, rel);    /* 3: chunk name */
    size_t len;
    int too_big;
    char *src = read_file(lua_tostring(L, 2), &len, &too_big);
    if (!src) {
        if (too_big) return luaL_error(L, "module '%s' is too large (%s)", name, lua_tostring(L, 3) + 1);
        return luaL_error(L, "module '%s' not found (%s)", name, lua_tostring(L, 3) + 1);
    }
    int st = luaL_loadbufferx(L, src, len, lua_tostring(L, 3), "t");
    if (st == LUA_OK) keep_source(L, lua_tostring(L, 3), src, len);
    free(src);
    if (st != LUA_OK) return lua_error(L);
    lua_pushvalue(L, lua_upvalueindex(2));
    if (!lua_setupvalue(L, -2, 1)) lua_pop(L, 1);                  /* 4: chunk */
    lua_pushvalue(L, 1);
    lua_pushlightuserdata(L, (void *)&sl_loading_tag);
    lua_rawset(L, lua_upvalueindex(1));
    lua_pushvalue(L, 1);
    st = lua_pcall(L, 1, 1, 0);
    if (st != LUA_OK) {
        lua_pushvalue(L, 1);
        lua_pushnil(L);
        lua_rawset(L, lua_upvalueindex(1));
        return lua_error(L);
    }
    if (lua_isnil(L, -1)) { lua_pop(L, 1); lua_pushboolean(L, 1); }
    lua_pushvalue(L, 1);
    lua_pushvalue(L, -2);
    lua_rawset(L, lua_upvalueindex(1));
    return 1;
}

/* ------------------------------------------------------------------ loaders */

/* Stores the function on top of the stack in the funcs table (argument 1); returns its new id. */
static int register_function(lua_State *L, sl_engine *e) {
    int32_t id = e->nfuncs + 1;
    lua_pushvalue(L, -1);
    lua_rawseti(L, 1, id);
    e->nfuncs = id;
    lua_pushinteger(L, id);
    return 1;
}

/* (funcs) -> id, for module e->load_a and function e->load_b. upvalue 1: require. */
static int loader_fn(lua_State *L) {
    sl_engine *e = sl_E(L);
    lua_settop(L, 1);
    const char *module = lua_pushlstring(L, e->load_a, e->load_alen);
    const char *name = lua_pushstring(L, e->load_b);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushvalue(L, 2);
    lua_call(L, 1, 1);
    if (!lua_istable(L, -1))
        return luaL_error(L, "module '%s' must return a table of functions (got %s)", module, luaL_typename(L, -1));
    lua_pushvalue(L, 3);
    lua_rawget(L, -2);
    if (!lua_isfunction(L, -1))
        return luaL_error(L, "'%s' is not a function in module '%s' (got %s)", name, module, luaL_typename(L, -1));
    return register_function(L, e);
}

/* (funcs) -> id, for expression e->load_a labelled e->load_b. upvalue 1: env. */
static int expr_fn(lua_State *L) {
    sl_engine *e = sl_E(L);
    size_t n = e->load_alen;
    const char *src = e->load_a;
    const char *label = e->load_b;
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    luaL_addstring(&b, "return function(event, ctx) return (");
    luaL_addlstring(&b, src, n);
    luaL_addstring(&b, "\n) end");
    luaL_pushresult(&b);
    lua_pushfstring(L, "=%s", label);
    size_t len;
    const char *code = lua_tolstring(L, -2, &len);
    if (luaL_loadbufferx(L, code, len, lua_tostring(L, -1), "t") != LUA_OK) return lua_error(L);
    keep_source(L, lua_tostring(L, -2), code, len);
    lua_pushvalue(L, lua_upvalueindex(1));
    if (!lua_setupvalue(L, -2, 1)) lua_pop(L, 1);
    lua_call(L, 0, 1);
    if (!lua_isfunction(L, -1)) return luaL_error(L, "expression did not compile to a function");
    return register_function(L, e);
}

/* ------------------------------------------------------------------ setup */

static void copy_field(lua_State *L, int from, int to, const char *name) {
    lua_getfield(L, from, name);
    lua_setfield(L, to, name);
}

/* Builds the sandbox and returns the S_* slot values in order. */
int setup_fn(lua_State *L) {
    sl_engine *e = sl_E(L);
    luaL_checkstack(L, 40, "setup");

    /* Real libraries; the real globals are never reachable from the sandbox. */
    lua_pushcfunction(L, luaopen_base); lua_call(L, 0, 1);       /* G */
    int G = lua_gettop(L);
    lua_pushcfunction(L, luaopen_string); lua_call(L, 0, 1);
    int STR = lua_gettop(L);
    lua_pushnil(L); lua_setfield(L, STR, "dump");                 /* also hides ("").dump */
    sl_install_bounded_strings(L, STR);                           /* find/match/gmatch/gsub/rep under the budget */
    lua_pushcfunction(L, luaopen_table); lua_call(L, 0, 1);
    int TBL = lua_gettop(L);
    lua_pushcfunction(L, luaopen_math); lua_call(L, 0, 1);
    int MATH = lua_gettop(L);
    lua_pushcfunction(L, luaopen_utf8); lua_call(L, 0, 1);
    int UTF8 = lua_gettop(L);
    lua_pushcfunction(L, luaopen_coroutine); lua_call(L, 0, 1);
    int CO = lua_gettop(L);
    lua_pushcfunction(L, luaopen_os); lua_call(L, 0, 1);
    int OS = lua_gettop(L);

    lua_newtable(L);                                              /* array metatable */
    int AMT = lua_gettop(L);
    lua_pushliteral(L, "array"); lua_setfield(L, AMT, "__name");

    lua_newtable(L);                                              /* nulls (weak keys) */
    int NULLS = lua_gettop(L);
    lua_newtable(L);
    lua_pushliteral(L, "k"); lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, NULLS);

    lua_createtable(L, 0, 48);                                    /* sandbox env */
    int ENV = lua_gettop(L);
    static const char *base[] = {"assert", "error", "ipairs", "next", "pairs", "pcall",
                                 "rawequal", "rawlen", "rawget", "select", "tonumber", "tostring",
                                 "type", "getmetatable", "_VERSION", NULL};
    for (int i = 0; base[i]; i++) copy_field(L, G, ENV, base[i]);
    lua_pushvalue(L, STR); lua_setfield(L, ENV, "string");
    lua_pushvalue(L, TBL); lua_setfield(L, ENV, "table");
    lua_pushvalue(L, MATH); lua_setfield(L, ENV, "math");
    lua_pushvalue(L, UTF8); lua_setfield(L, ENV, "utf8");
    /* coroutine: a copy with create/wrap charged against the budget */
    lua_newtable(L);
    static const char *co[] = {"close", "isyieldable", "resume", "running", "status", "yield", NULL};
    for (int i = 0; co[i]; i++) copy_field(L, CO, lua_gettop(L), co[i]);
    lua_getfield(L, CO, "create"); lua_pushcclosure(L, sb_co_new, 1); lua_setfield(L, -2, "create");
    lua_getfield(L, CO, "wrap"); lua_pushcclosure(L, sb_co_new, 1); lua_setfield(L, -2, "wrap");
    lua_setfield(L, ENV, "coroutine");
    lua_newtable(L);
    copy_field(L, OS, lua_gettop(L), "time");
    copy_field(L, OS, lua_gettop(L), "clock");
    copy_field(L, OS, lua_gettop(L), "date");
    lua_setfield(L, ENV, "os");
    lua_pushcfunction(L, sb_print); lua_setfield(L, ENV, "print");
    lua_pushcfunction(L, sb_xpcall); lua_setfield(L, ENV, "xpcall");
    lua_pushcfunction(L, sb_collectgarbage); lua_setfield(L, ENV, "collectgarbage");
    lua_pushcfunction(L, sb_setmetatable); lua_setfield(L, ENV, "setmetatable");
    lua_pushvalue(L, ENV); lua_pushcclosure(L, sb_load, 1); lua_setfield(L, ENV, "load");
    lua_pushvalue(L, AMT); lua_pushcclosure(L, sb_array, 1); lua_setfield(L, ENV, "array");
    lua_pushlightuserdata(L, SL_NULL); lua_setfield(L, ENV, "null");
    lua_newtable(L);                                              /* loaded modules */
    int LOADED = lua_gettop(L);
    lua_pushvalue(L, LOADED); lua_pushvalue(L, ENV); lua_pushcclosure(L, sb_require, 2);
    int REQUIRE = lua_gettop(L);
    lua_pushvalue(L, REQUIRE); lua_setfield(L, ENV, "require");
    lua_pushvalue(L, ENV); lua_setfield(L, ENV, "_G");
    lua_newtable(L);
    lua_pushboolean(L, 0); lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, ENV);

    lua_pushvalue(L, AMT); lua_pushvalue(L, NULLS); lua_createtable(L, SL_KEY_CACHE, 0);
    lua_pushcclosure(L, sl_decode_fn, 3);                         /* decode: S_DECODE and ctx.lookup's */
    int DECODE = lua_gettop(L);
    lua_newtable(L); int EMITS = lua_gettop(L);
    lua_newtable(L); int COUNTERS = lua_gettop(L);

    /* ctx: read-only proxy -> methods -> lazily built meta */
    lua_createtable(L, 0, 8);
    int METHODS = lua_gettop(L);
    lua_pushvalue(L, EMITS); lua_pushcclosure(L, ctx_emit, 1); lua_setfield(L, METHODS, "emit");
    lua_pushcfunction(L, ctx_now); lua_setfield(L, METHODS, "now");
    lua_pushcfunction(L, ctx_log); lua_setfield(L, METHODS, "log");
    lua_pushvalue(L, COUNTERS); lua_pushcclosure(L, ctx_count, 1); lua_setfield(L, METHODS, "count");
    lua_pushvalue(L, DECODE); lua_pushcclosure(L, sl_ctx_lookup, 1); lua_setfield(L, METHODS, "lookup");
    lua_pushinteger(L, e->version); lua_setfield(L, METHODS, "version");
    lua_newtable(L);
    lua_pushnil(L); lua_pushcclosure(L, ctx_index, 1); lua_setfield(L, -2, "__index");
    lua_pushboolean(L, 0); lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, METHODS);
    lua_newtable(L);
    int CTX = lua_gettop(L);
    lua_newtable(L);
    lua_pushvalue(L, METHODS); lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, ctx_newindex); lua_setfield(L, -2, "__newindex");
    lua_pushboolean(L, 0); lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, CTX);

    /* results, in S_* order */
    lua_createtable(L, 1024, 0);                                  /* S_HANDLES */
    lua_createtable(L, 64, 0);                                    /* S_FUNCS */
    lua_pushcfunction(L, msgh);                                   /* S_MSGH */
    lua_pushvalue(L, CTX);                                        /* S_CTX */
    lua_pushvalue(L, AMT);                                        /* S_ARRAY_MT */
    lua_pushvalue(L, NULLS);                                      /* S_NULLS */
    lua_pushvalue(L, DECODE);                                     /* S_DECODE */
    lua_pushvalue(L, AMT); lua_pushvalue(L, NULLS); lua_pushcclosure(L, sl_copy_fn, 2);    /* S_COPY */
    lua_pushvalue(L, EMITS);                                      /* S_EMITS */
    lua_pushvalue(L, COUNTERS);                                   /* S_COUNTERS */
    lua_pushvalue(L, REQUIRE); lua_pushcclosure(L, loader_fn, 1); /* S_LOADER */
    lua_pushvalue(L, ENV); lua_pushcclosure(L, expr_fn, 1);       /* S_EXPR */
    lua_pushcfunction(L, grow_fn);                                /* S_GROW */
    lua_newtable(L);                                              /* S_CALLS */
    return S_NSLOTS;
}

/* Runs a loader closure (S_LOADER / S_EXPR) under the budget; its inputs go through the
 * engine so that no Lua allocation happens outside a protected call. */
static int load_common(sl_engine *e, int slot, int32_t *out, const char *a, size_t alen, const char *b) {
    lua_State *L = e->L;
    if (e->poisoned) return fail_memory(e);
    e->trace_len = 0;
    lua_pushvalue(L, slot);
    lua_pushvalue(L, S_FUNCS);
    e->load_a = a;
    e->load_alen = alen;
    e->load_b = b;
    begin_budget(e);
    int st = lua_pcall(L, 1, 1, S_MSGH);
    e->load_a = e->load_b = NULL;
    int rc = classify(e, st);
    if (rc == SL_OK) *out = (int32_t)lua_tointeger(L, -1);
    lua_settop(L, S_NSLOTS);
    return rc == SL_RUNTIME ? SL_LOAD : rc;
}

int sl_function(sl_engine *e, const char *module, const char *name, int32_t *out) {
    return load_common(e, S_LOADER, out, module, strlen(module), name);
}

int sl_expression(sl_engine *e, const char *src, size_t len, const char *label, int32_t *out) {
    return load_common(e, S_EXPR, out, src, len, label);
}
