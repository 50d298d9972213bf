/* Field decoding: only the fields a UDF reads are built as Lua values (see sl_decode_fields). */
#include "internal.h"
#include "sluice_json.h"
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* One field of the set: a path's last segment under its parent entry (-1 = the event). A
 * container entry is a prefix of a longer path: an object there becomes a table holding its
 * listed children; anything else there is decoded whole (so reading through it fails as it would). */
typedef struct {
    int32_t parent;
    int32_t slot;        /* in the trie's output */
    int depth;           /* objects around its value: 1 for a field of the event itself */
    int container;
    uint8_t *key;
    size_t key_len;
} sl_field;

struct sl_fields {
    uint64_t id;         /* names its interned keys inside each engine (never reused) */
    sj_paths *trie;
    sl_field entries[SL_MAX_FIELDS];
    int n;
    int roots;           /* entries that are fields of the event itself */
};

sl_fields *sl_fields_new(void) {
    sl_fields *f = calloc(1, sizeof *f);
    if (!f) return NULL;
    f->trie = sj_paths_new();
    if (!f->trie) { free(f); return NULL; }
    static _Atomic uint64_t next_id = 1;
    f->id = atomic_fetch_add(&next_id, 1);
    return f;
}

void sl_fields_free(sl_fields *f) {
    if (!f) return;
    for (int i = 0; i < f->n; i++) free(f->entries[i].key);
    sj_paths_free(f->trie);
    free(f);
}

/* The entry for segs[0..depth] under parent, made if missing. */
static int entry(sl_fields *f, int32_t parent, const uint8_t *const *segs, const size_t *lens, size_t depth,
                 int container) {
    for (int i = 0; i < f->n; i++) {
        sl_field *x = &f->entries[i];
        if (x->parent == parent && x->key_len == lens[depth] && memcmp(x->key, segs[depth], lens[depth]) == 0) {
            if (!container) x->container = 0;   /* read whole: a leaf wins over a prefix */
            return i;
        }
    }
    if (f->n == SL_MAX_FIELDS) return -1;
    int slot = sj_paths_add(f->trie, segs, lens, depth + 1);
    if (slot < 0) return -1;
    uint8_t *key = malloc(lens[depth] ? lens[depth] : 1);
    if (!key) return -1;
    memcpy(key, segs[depth], lens[depth]);
    f->entries[f->n] = (sl_field){parent, slot, (int)depth + 1, container, key, lens[depth]};
    f->roots += parent < 0;
    return f->n++;
}

int sl_fields_add(sl_fields *f, const uint8_t *const *segs, const size_t *lens, size_t nseg) {
    if (!f || nseg == 0 || nseg > SL_MAX_DEPTH) return -1;
    int32_t parent = -1;
    for (size_t d = 0; d < nseg; d++) {
        parent = entry(f, parent, segs, lens, d, d + 1 < nseg);
        if (parent < 0) return -1;
    }
    return 0;
}

static const char sl_field_keys_key = 0;

/* Pushes the table of f's keys as interned Lua strings (made once per engine); returns its index. */
static int push_keys(lua_State *L, const sl_fields *f) {
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &sl_field_keys_key) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_rawsetp(L, LUA_REGISTRYINDEX, &sl_field_keys_key);
    }
    if (lua_rawgeti(L, -1, (lua_Integer)f->id) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_createtable(L, f->n, 0);
        for (int i = 0; i < f->n; i++) {
            lua_pushlstring(L, (const char *)f->entries[i].key, f->entries[i].key_len);
            lua_rawseti(L, -2, i + 1);
        }
        lua_pushvalue(L, -1);
        lua_rawseti(L, -3, (lua_Integer)f->id);
    }
    lua_remove(L, -2);
    return lua_gettop(L);
}

/* The common scalars straight from their validated span: a string without escapes, an integer
 * of up to 18 digits, a boolean. Returns 0 (nothing pushed) for anything else. */
static int push_scalar(lua_State *L, const uint8_t *p, size_t n, int type) {
    switch (type) {
    case SJ_STRING:
        if (memchr(p + 1, '\\', n - 2)) return 0;
        lua_pushlstring(L, (const char *)p + 1, n - 2);
        return 1;
    case SJ_NUMBER: {
        size_t i = p[0] == '-';
        if (n - i == 0 || n - i > 18) return 0;
        int64_t v = 0;
        for (size_t k = i; k < n; k++) {
            unsigned d = (unsigned)(p[k] - '0');
            if (d > 9) return 0;   /* a fraction or an exponent: a float */
            v = v * 10 + (int64_t)d;
        }
        lua_pushinteger(L, i ? -v : v);
        return 1;
    }
    case SJ_BOOL:
        lua_pushboolean(L, p[0] == 't');
        return 1;
    default:
        return 0;
    }
}

static const char sl_reuse_key = 0;

/* The reuse slot for f's tables, or -1 when they are still held by a live handle (or every slot
 * is): then the decode makes new tables. Pushes the slot's holder table (its [1] is the event
 * table, its [2 + i] the table of container entry i, made on first use) when it returns a slot. */
static int push_reuse(lua_State *L, sl_engine *e, const sl_fields *f) {
    int slot = -1;
    for (int i = 0; i < SL_REUSE_SLOTS; i++) {
        if (e->reuse[i].id == f->id) {
            if (e->reuse[i].holder) return -1;
            slot = i;
            break;
        }
    }
    if (slot < 0) {
        for (int i = 0; i < SL_REUSE_SLOTS && slot < 0; i++)
            if (!e->reuse[i].holder) slot = i;
        if (slot < 0) return -1;
        e->reuse[slot].id = f->id;
        e->reuse[slot].fresh = 1;
    }
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &sl_reuse_key) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_createtable(L, SL_REUSE_SLOTS, 0);
        lua_pushvalue(L, -1);
        lua_rawsetp(L, LUA_REGISTRYINDEX, &sl_reuse_key);
    }
    if (e->reuse[slot].fresh || lua_rawgeti(L, -1, slot + 1) != LUA_TTABLE) {
        if (!e->reuse[slot].fresh) lua_pop(L, 1);
        lua_createtable(L, f->n + 1, 0);
        lua_pushvalue(L, -1);
        lua_rawseti(L, -3, slot + 1);
        e->reuse[slot].fresh = 0;
        e->reuse[slot].set = 0;
    }
    lua_remove(L, -2);
    return slot;
}

/* Pushes table [k] of the holder table at `holder`, made (with room for `nrec` fields) if missing. */
static void push_kept(lua_State *L, int holder, int k, int nrec) {
    if (lua_rawgeti(L, holder, k) == LUA_TTABLE) return;
    lua_pop(L, 1);
    lua_createtable(L, 0, nrec);
    lua_pushvalue(L, -1);
    lua_rawseti(L, holder, k);
}

/* Fills the event table with f's fields. The tables are the ones of the last event when no live
 * handle holds them any more: their fields are overwritten, and those missing now are cleared
 * (LuaFieldAccess found that the UDFs only read these tables through field chains, so none of
 * them can be kept by a UDF beyond its event). */
int sl_decode_fields_fn(lua_State *L, sl_engine *e, const sl_fields *f) {
    const uint8_t *b = e->dbytes;
    sj_value values[SL_MAX_FIELDS];
    if (sj_validate_find(f->trie, b, e->dlen, SL_MAX_DEPTH, SJ_REQUIRE_OBJECT, NULL, values) != SJ_OK) return 0;
    if (!lua_checkstack(L, 2 * f->n + 10)) return 0;
    int keys = push_keys(L, f);
    int slot = push_reuse(L, e, f);
    int holder = slot >= 0 ? lua_gettop(L) : 0;
    uint64_t was = 0, now = 0;
    if (slot >= 0) {
        was = e->reuse[slot].set;
        e->reuse[slot].set = ~0ULL;   /* unknown until this decode finishes (an error may stop it) */
        push_kept(L, holder, 1, f->roots);
        e->reuse[slot].table = lua_topointer(L, -1);
    } else {
        lua_createtable(L, 0, f->roots);
    }
    int top = lua_gettop(L);
    int tables[SL_MAX_FIELDS];   /* stack index of the table made for a container entry, or 0 */
    int plain = 1;               /* no value is a table (those made for containers are reached only
                                  * through longer chains, never held by a UDF) */
    for (int i = 0; i < f->n; i++) {
        const sl_field *x = &f->entries[i];
        uint64_t bit = 1ULL << i;
        tables[i] = 0;
        int parent = x->parent < 0 ? top : tables[x->parent];
        if (!parent) { now |= was & bit; continue; }   /* kept in a container not in the event now */
        sj_value v = values[x->slot];
        if (v.type == SJ_MISSING || v.type == SJ_NULL) {
            if (was & bit) {
                lua_rawgeti(L, keys, i + 1);
                lua_pushnil(L);
                lua_rawset(L, parent);
            }
            continue;
        }
        now |= bit;
        lua_rawgeti(L, keys, i + 1);
        if (x->container && v.type == SJ_OBJECT) {
            if (slot >= 0) push_kept(L, holder, i + 2, 4);
            else lua_createtable(L, 0, 4);
            lua_pushvalue(L, -1);
            lua_insert(L, -3);              /* table key table */
            lua_rawset(L, parent);
            tables[i] = lua_gettop(L);
            continue;
        }
        if (push_scalar(L, b + v.off, v.len, v.type)) {
            lua_rawset(L, parent);
            continue;
        }
        if (sl_decode_span(L, e, b, b + v.off, b + v.off + v.len, x->depth) != 0) {
            lua_settop(L, keys - 1);
            return 0;
        }
        if (lua_type(L, -1) == LUA_TTABLE) plain = 0;
        lua_rawset(L, parent);
    }
    lua_settop(L, top);
    lua_replace(L, keys);   /* the event table where the keys were */
    lua_settop(L, keys);
    e->dplain = plain;
    if (slot >= 0) {
        e->reuse[slot].set = now;
        e->dreuse = slot;
    }
    return 1;
}
