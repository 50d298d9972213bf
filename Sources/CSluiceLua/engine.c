/* The engine: a sandboxed Lua state with memory accounting, instruction budget,
 * event handles, ctx, and protected calls into UDFs. */
#include "internal.h"
#include "patterns.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SL_HOOK_GRANULARITY 1000
#define SL_MAX_MSG (64 * 1024)
#define SL_MAX_MODULE_BYTES (16 * 1024 * 1024)

/* ------------------------------------------------------------------ messages */

static int grow_buf(char **buf, size_t *cap, size_t need) {
    if (need <= *cap) return 1;
    size_t c = *cap ? *cap : 256;
    while (c < need) c *= 2;
    char *p = realloc(*buf, c);
    if (!p) return 0;
    *buf = p;
    *cap = c;
    return 1;
}

void sl_set_error(sl_engine *e, const char *msg, size_t len) {
    if (len > SL_MAX_MSG) len = SL_MAX_MSG;
    if (!grow_buf(&e->err, &e->err_cap, len + 1)) { e->err_len = 0; return; }
    memcpy(e->err, msg, len);
    e->err[len] = 0;
    e->err_len = len;
}

void sl_set_errorf(sl_engine *e, const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0) n = 0;
    if ((size_t)n >= sizeof buf) n = sizeof buf - 1;
    sl_set_error(e, buf, (size_t)n);
}

static void set_trace(sl_engine *e, const char *s, size_t len) {
    if (len > SL_MAX_MSG) len = SL_MAX_MSG;
    if (!grow_buf(&e->trace, &e->trace_cap, len + 1)) { e->trace_len = 0; return; }
    memcpy(e->trace, s, len);
    e->trace_len = len;
}

const char *sl_error(const sl_engine *e, size_t *len) {
    *len = e->err_len;
    return e->err_len ? e->err : "";
}

const char *sl_traceback(const sl_engine *e, size_t *len) {
    *len = e->trace_len;
    return e->trace_len ? e->trace : NULL;
}

/* ------------------------------------------------------------------ memory */

/* Small blocks are recycled through per-size free lists (16-byte classes up to 512 bytes):
 * events create and free the same few shapes over and over, and this is much cheaper than
 * going through malloc/free each time. At most SL_POOL_MAX bytes are kept. */
static inline size_t pool_class(size_t n) { return (n + 15) >> 4; }

static void *pool_get(sl_engine *e, size_t n) {
    if (n <= SL_POOL_LARGEST) {
        size_t c = pool_class(n);
        sl_block *b = e->pool[c];
        if (b) {
            e->pool[c] = b->next;
            e->pool_bytes -= c << 4;
            return b;
        }
        return malloc(c << 4);
    }
    return malloc(n);
}

static void pool_put(sl_engine *e, void *p, size_t n) {
    if (n <= SL_POOL_LARGEST && e->pool_bytes < SL_POOL_MAX) {
        size_t c = pool_class(n);
        sl_block *b = p;
        b->next = e->pool[c];
        e->pool[c] = b;
        e->pool_bytes += c << 4;
        return;
    }
    free(p);
}

static void pool_drain(sl_engine *e) {
    for (size_t c = 0; c <= SL_POOL_CLASSES; c++) {
        while (e->pool[c]) {
            sl_block *b = e->pool[c];
            e->pool[c] = b->next;
            free(b);
        }
    }
    e->pool_bytes = 0;
}

/* Accounts every byte of the state; growth past the limit returns NULL. After a refusal Lua
 * may run an emergency collection and retry the very same request; any refusal that is not
 * followed by a successful identical retry is a real out-of-memory condition and poisons the
 * engine, even if the UDF pcalls the error away (lauxlib buffers, e.g. string.rep, never retry). */
static void *sl_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
    sl_engine *e = ud;
    size_t old = ptr ? osize : 0;
    if (nsize == 0) {
        if (ptr) { e->mem_used -= old; pool_put(e, ptr, old); }
        return NULL;
    }
    if (!ptr && nsize <= SL_POOL_LARGEST && !e->pend_set && !e->poisoned &&
        nsize <= e->mem_limit - e->mem_used) {
        /* fast path: a new small block from the pool */
        size_t c = pool_class(nsize);
        sl_block *b = e->pool[c];
        if (b) {
            e->pool[c] = b->next;
            e->pool_bytes -= c << 4;
            e->mem_used += nsize;
            return b;
        }
    }
    int same = e->pend_set && e->pend_ptr == ptr && e->pend_osize == osize && e->pend_nsize == nsize;
    if (nsize > old && (e->poisoned || nsize - old > e->mem_limit - e->mem_used)) {
        if (e->pend_set) { e->poisoned = 1; e->pend_set = 0; }
        if (!same) {
            e->pend_set = 1;
            e->pend_ptr = ptr;
            e->pend_osize = osize;
            e->pend_nsize = nsize;
        }
        return NULL;
    }
    void *p;
    if (!ptr) {
        p = pool_get(e, nsize);
    } else if (old <= SL_POOL_LARGEST || nsize <= SL_POOL_LARGEST) {
        if (old <= SL_POOL_LARGEST && nsize <= SL_POOL_LARGEST && pool_class(old) == pool_class(nsize)) {
            p = ptr;
        } else {
            p = pool_get(e, nsize);
            if (p) {
                memcpy(p, ptr, old < nsize ? old : nsize);
                pool_put(e, ptr, old);
            }
        }
    } else {
        p = realloc(ptr, nsize);
    }
    if (!p) {
        if (nsize > old) e->poisoned = 1;
        return NULL;
    }
    e->mem_used = e->mem_used - old + nsize;
    if (nsize > old && e->pend_set) {
        if (!same) e->poisoned = 1;
        e->pend_set = 0;
    }
    return p;
}

/* ------------------------------------------------------------------ instructions */

static void sl_hook(lua_State *L, lua_Debug *ar);

static void make_sticky(lua_State *L, sl_engine *e) {
    lua_sethook(L, sl_hook, LUA_MASKCOUNT, 1);
    if (L != e->L) lua_sethook(e->L, sl_hook, LUA_MASKCOUNT, 1);
}

static void sl_hook(lua_State *L, lua_Debug *ar) {
    (void)ar;
    sl_engine *e = sl_E(L);
    int c = lua_gethookcount(L);
    if (!e->sticky) {
        e->instr_used += c;
        if (e->instr_used < e->instr_limit) {
            /* a coroutine left sticky (or with another count) by an earlier call */
            if (c != e->instr_gran) lua_sethook(L, sl_hook, LUA_MASKCOUNT, e->instr_gran);
            return;
        }
        e->sticky = 1;
    }
    e->instr_hit = 1;
    make_sticky(L, e);
    luaL_error(L, "instruction limit exceeded (%I instructions)", (lua_Integer)e->instr_limit);
}

/* Charges `n` instructions outside the hook (coroutine creation). */
static void charge(lua_State *L, sl_engine *e, int64_t n) {
    e->instr_used += n;
    if (e->sticky || e->instr_used >= e->instr_limit) {
        e->sticky = 1;
        e->instr_hit = 1;
        make_sticky(L, e);
        luaL_error(L, "instruction limit exceeded (%I instructions)", (lua_Integer)e->instr_limit);
    }
}

/* For C library replacements (patterns.c): charges `n` and raises once the budget is spent. */
void sl_charge_instructions(lua_State *L, int64_t n) { charge(L, sl_E(L), n); }

void begin_budget(sl_engine *e) {
    e->instr_used = 0;
    e->sticky = 0;
    e->instr_hit = 0;
    e->instr_gran = e->instr_limit < SL_HOOK_GRANULARITY ? (int)e->instr_limit : SL_HOOK_GRANULARITY;
    if (e->instr_gran < 1) e->instr_gran = 1;
    lua_sethook(e->L, sl_hook, LUA_MASKCOUNT, e->instr_gran);
}

void resume_budget(sl_engine *e, lua_State *co, int64_t used) {
    e->instr_used = used;
    e->sticky = 0;
    e->instr_hit = 0;
    lua_sethook(co, sl_hook, LUA_MASKCOUNT, e->instr_gran);
}

/* ------------------------------------------------------------------ sandbox functions */

static int msgh(lua_State *L) {
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
        set_trace(e, s, n);
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

/* ------------------------------------------------------------------ ctx */

static int ctx_emit(lua_State *L) {
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

static int ctx_now(lua_State *L) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    lua_pushinteger(L, (lua_Integer)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
    return 1;
}

static int ctx_log(lua_State *L) {
    sl_engine *e = sl_E(L);
    size_t ll, ml;
    const char *lv = luaL_checklstring(L, 1, &ll);
    const char *m = luaL_tolstring(L, 2, &ml);
    if (e->log_fn) e->log_fn(e->log_ctx, lv, ll, m, ml);
    return 0;
}

static int ctx_count(lua_State *L) {
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
static int ctx_index(lua_State *L) {
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

static int ctx_newindex(lua_State *L) {
    return luaL_error(L, "ctx is read-only");
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
    lua_pushvalue(L, lua_upvalueindex(1));
    if (!lua_setupvalue(L, -2, 1)) lua_pop(L, 1);
    lua_call(L, 0, 1);
    if (!lua_isfunction(L, -1)) return luaL_error(L, "expression did not compile to a function");
    return register_function(L, e);
}

/* (old handles, count, newcap) -> new handles table with the first `count` slots copied. */
static int grow_fn(lua_State *L) {
    lua_Integer count = lua_tointeger(L, 2), cap = lua_tointeger(L, 3);
    lua_createtable(L, (int)cap, 0);
    for (lua_Integer i = 1; i <= count; i++) {
        lua_rawgeti(L, 1, i);
        lua_rawseti(L, -2, i);
    }
    return 1;
}

/* ------------------------------------------------------------------ setup */

static void copy_field(lua_State *L, int from, int to, const char *name) {
    lua_getfield(L, from, name);
    lua_setfield(L, to, name);
}

/* Builds the sandbox and returns the S_* slot values in order. */
static int setup_fn(lua_State *L) {
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

/* ------------------------------------------------------------------ engine */

int fail_memory(sl_engine *e) {
    e->poisoned = 1;
    sl_set_errorf(e, "memory limit exceeded (%zu bytes)", e->mem_limit);
    return SL_MEMORY;
}

/* Classifies a finished protected call; on error the message is at the top of the stack. */
int classify(sl_engine *e, int st) {
    lua_State *L = e->L;
    if (e->pend_set) { e->poisoned = 1; e->pend_set = 0; } /* a refusal that was never retried */
    if (e->poisoned || st == LUA_ERRMEM) { e->trace_len = 0; return fail_memory(e); }
    if (e->instr_hit) {
        sl_set_errorf(e, "instruction limit exceeded (%lld instructions)", (long long)e->instr_limit);
        return SL_INSTRUCTIONS;
    }
    if (st == LUA_OK) return SL_OK;
    size_t n = 0;
    const char *s = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &n) : NULL;
    if (s) sl_set_error(e, s, n);
    else if (st == LUA_ERRERR) sl_set_errorf(e, "error in error handling");
    else sl_set_errorf(e, "unknown error");
    return SL_RUNTIME;
}

int sl_engine_new(const char *udf_dir, const char *display_dir, int64_t memory_limit,
                  int64_t instruction_limit, int64_t version, sl_log_fn log, void *log_ctx,
                  sl_engine **out) {
    sl_engine *e = calloc(1, sizeof *e);
    *out = e;
    if (!e) return SL_MEMORY;
    e->mem_limit = memory_limit > 0 ? (size_t)memory_limit : SIZE_MAX;
    e->instr_limit = instruction_limit > 0 ? instruction_limit : INT64_MAX;
    e->version = version;
    e->log_fn = log;
    e->log_ctx = log_ctx;
    e->mode = -1;
    for (int i = 0; i < SL_KEY_CACHE; i++) e->keys[i].len = UINT32_MAX; /* no key cached yet */
    e->udf_dir = strdup(udf_dir ? udf_dir : ".");
    e->display_dir = strdup(display_dir ? display_dir : ".");
    if (!e->udf_dir || !e->display_dir) return fail_memory(e);
    lua_State *L = lua_newstate(sl_alloc, e);
    if (!L) return fail_memory(e);
    e->L = L;
    *(sl_engine **)lua_getextraspace(L) = e;
    lua_gc(L, LUA_GCINC, 0, 0, 0); /* incremental (the default, most exercised mode); generational measured no faster */
    if (!lua_checkstack(L, S_NSLOTS + 40)) return fail_memory(e);
    begin_budget(e);
    lua_pushcfunction(L, setup_fn);
    int st = lua_pcall(L, 0, S_NSLOTS, 0);
    if (st != LUA_OK) {
        int rc = classify(e, st);
        lua_settop(L, 0);
        return rc == SL_OK ? SL_RUNTIME : rc;
    }
    e->hcap = 1024;
    return SL_OK;
}

void sl_engine_free(sl_engine *e) {
    if (!e) return;
    if (e->L) lua_close(e->L);
    pool_drain(e);
    free(e->udf_dir);
    free(e->display_dir);
    free(e->free_slots);
    free(e->outs);
    free(e->out);
    free(e->ents);
    free(e->sbuf);
    free(e->err);
    free(e->trace);
    free(e->calls);
    free(e->free_calls);
    free(e);
}

int sl_poisoned(const sl_engine *e) { return e->poisoned; }
size_t sl_memory(const sl_engine *e) { return e->mem_used; }
int64_t sl_live_handles(const sl_engine *e) { return (int64_t)e->hcount - (int64_t)e->n_free; }

/* Makes sure `need` handle slots can be assigned without allocating in Lua. */
int reserve_handles(sl_engine *e, size_t need) {
    if (e->n_free + (size_t)(e->hcap - e->hcount) >= need) return SL_OK;
    lua_State *L = e->L;
    size_t cap = (size_t)e->hcap * 2;
    while (e->n_free + (cap - (size_t)e->hcount) < need) cap *= 2;
    if (cap > INT32_MAX) { sl_set_errorf(e, "too many live event handles"); return SL_RUNTIME; }
    lua_pushvalue(L, S_GROW);
    lua_pushvalue(L, S_HANDLES);
    lua_pushinteger(L, e->hcount);
    lua_pushinteger(L, (lua_Integer)cap);
    int st = lua_pcall(L, 3, 1, 0);
    if (st != LUA_OK) {
        int rc = classify(e, st);
        lua_settop(L, S_NSLOTS);
        return rc == SL_OK ? SL_RUNTIME : rc;
    }
    lua_replace(L, S_HANDLES);
    e->hcap = (int32_t)cap;
    return SL_OK;
}

/* Pops the top value into a handle slot (capacity reserved beforehand). */
int32_t put_handle(sl_engine *e) {
    int32_t slot;
    if (e->n_free) slot = e->free_slots[--e->n_free];
    else slot = ++e->hcount;
    lua_rawseti(e->L, S_HANDLES, slot);
    return slot;
}

int valid_handle(const sl_engine *e, int32_t h) { return h >= 1 && h <= e->hcount; }

void sl_release(sl_engine *e, int32_t h) {
    if (!valid_handle(e, h)) return;
    lua_State *L = e->L;
    if (lua_rawgeti(L, S_HANDLES, h) == LUA_TNIL) { lua_pop(L, 1); return; }
    lua_pop(L, 1);
    if (e->n_free == e->cap_free) {
        size_t cap = e->cap_free ? e->cap_free * 2 : 1024;
        int32_t *p = realloc(e->free_slots, cap * sizeof *p);
        if (!p) return; /* keep the value; the slot leaks rather than corrupting the free list */
        e->free_slots = p;
        e->cap_free = cap;
    }
    lua_pushnil(L);
    lua_rawseti(L, S_HANDLES, h);
    e->free_slots[e->n_free++] = h;
}

int sl_decode(sl_engine *e, const uint8_t *bytes, size_t len, int text, int32_t *out) {
    if (e->poisoned) return fail_memory(e);
    int rc = reserve_handles(e, 1);
    if (rc) return rc;
    lua_State *L = e->L;
    e->dbytes = bytes;
    e->dlen = len;
    e->dtext = text;
    e->dfailed = 0;
    lua_pushvalue(L, S_DECODE);
    int st = lua_pcall(L, 0, 1, 0);
    e->dbytes = NULL;
    if (st != LUA_OK || e->poisoned) {
        rc = classify(e, st);
        lua_settop(L, S_NSLOTS);
        return rc == SL_OK ? SL_RUNTIME : rc;
    }
    if (e->dfailed) { lua_settop(L, S_NSLOTS); return SL_DECODE; }
    *out = put_handle(e);
    return SL_OK;
}

int sl_encode(sl_engine *e, int32_t h, int text, const uint8_t **out, size_t *out_len) {
    lua_State *L = e->L;
    if (e->out_cap > (8u << 20)) { free(e->out); e->out = NULL; e->out_cap = 0; } /* after one huge event */
    e->out_len = 0;
    *out = NULL;
    *out_len = 0;
    int t = valid_handle(e, h) ? lua_rawgeti(L, S_HANDLES, h) : (lua_pushnil(L), LUA_TNIL);
    int rc = SL_OK;
    if (t == LUA_TNIL) {
        sl_set_errorf(e, "event handle %d is not live", (int)h);
        rc = SL_BAD_HANDLE;
    } else if (text && t == LUA_TSTRING) {
        size_t n;
        const char *s = lua_tolstring(L, -1, &n);
        e->out_len = 0;
        if (n > e->out_cap) {
            uint8_t *p = realloc(e->out, n);
            if (!p) { sl_set_errorf(e, "output too large"); rc = SL_ENCODE; }
            else { e->out = p; e->out_cap = n; }
        }
        if (rc == SL_OK) { memcpy(e->out, s, n); e->out_len = n; }
    } else if (sl_encode_value(e, lua_gettop(L)) != 0) {
        rc = SL_ENCODE;
    }
    lua_settop(L, S_NSLOTS);
    if (rc == SL_OK) { *out = e->out ? e->out : (const uint8_t *)""; *out_len = e->out_len; }
    return rc;
}

int sl_copy(sl_engine *e, int32_t h, int32_t *out) {
    if (e->poisoned) return fail_memory(e);
    if (!valid_handle(e, h)) { sl_set_errorf(e, "event handle %d is not live", (int)h); return SL_BAD_HANDLE; }
    int rc = reserve_handles(e, 1);
    if (rc) return rc;
    lua_State *L = e->L;
    lua_pushvalue(L, S_COPY);
    if (lua_rawgeti(L, S_HANDLES, h) == LUA_TNIL) {
        lua_settop(L, S_NSLOTS);
        sl_set_errorf(e, "event handle %d is not live", (int)h);
        return SL_BAD_HANDLE;
    }
    return pcall_into_handle(e, 1, out);
}

int pcall_into_handle(sl_engine *e, int nargs, int32_t *out) {
    lua_State *L = e->L;
    int st = lua_pcall(L, nargs, 1, 0);
    if (st != LUA_OK || e->poisoned) {
        int rc = classify(e, st);
        lua_settop(L, S_NSLOTS);
        return rc == SL_OK ? SL_RUNTIME : rc;
    }
    *out = put_handle(e);
    return SL_OK;
}

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

int sl_call(sl_engine *e, int32_t fn, int32_t h, const sl_meta *meta, int mode,
            int *truthy, const int32_t **outs, size_t *n_outs) {
    lua_State *L = e->L;
    e->n_outs = 0;
    *n_outs = 0;
    *outs = e->outs;
    e->trace_len = 0;
    if (e->poisoned) return fail_memory(e);
    if (fn < 1 || fn > e->nfuncs) { sl_set_errorf(e, "function id %d is not loaded", (int)fn); return SL_BAD_HANDLE; }
    if (!valid_handle(e, h)) { sl_set_errorf(e, "event handle %d is not live", (int)h); return SL_BAD_HANDLE; }
    /* A test (filter, `when`) sees a read-only view: it cannot change what later stages see. */
    if (mode == SL_MODE_TEST) lua_pushcfunction(L, sl_readonly_call);
    lua_rawgeti(L, S_FUNCS, fn);
    if (lua_rawgeti(L, S_HANDLES, h) == LUA_TNIL) {
        lua_settop(L, S_NSLOTS);
        sl_set_errorf(e, "event handle %d is not live", (int)h);
        return SL_BAD_HANDLE;
    }
    lua_pushvalue(L, S_CTX);
    e->mode = mode;
    e->meta = meta;
    e->call_gen++;
    e->n_emit = 0;
    begin_budget(e);
    int st = lua_pcall(L, mode == SL_MODE_TEST ? 3 : 2, 1, S_MSGH);
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
        if (nlist) { lua_pushvalue(L, res); e->outs[e->n_outs++] = put_handle(e); }
    } else {
        for (int64_t i = 1; i <= list_len; i++) {
            lua_rawgeti(L, res, (lua_Integer)i);
            e->outs[e->n_outs++] = put_handle(e);
        }
    }
    for (int i = 1; i <= e->n_emit; i++) {
        lua_rawgeti(L, S_EMITS, i);
        e->outs[e->n_outs++] = put_handle(e);
    }
    clear_emits(e);
    lua_settop(L, S_NSLOTS);
    *outs = e->outs;
    *n_outs = e->n_outs;
    return SL_OK;
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
