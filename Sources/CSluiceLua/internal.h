#pragma once
/* Private to CSluiceLua: the engine struct and the helpers its files share. */
#include <lua5.4/lua.h>
#include <lua5.4/lauxlib.h>
#include <lua5.4/lualib.h>
#include "sluice_lua.h"

#define SL_MAX_DEPTH 128
#define SL_HINT_CAP 64

/* Fixed slots at the bottom of the main thread's stack. Only valid in top-level C code
 * (not inside C functions called from Lua, whose indices are frame-relative). */
enum {
    S_HANDLES = 1,  /* handle slot -> event table/string */
    S_FUNCS,        /* function id -> function */
    S_MSGH,         /* message handler (records traceback) */
    S_CTX,          /* the ctx table passed to every UDF */
    S_ARRAY_MT,     /* shared metatable marking JSON arrays */
    S_NULLS,        /* weak-keyed: decoded table -> set of keys that were null in the input */
    S_DECODE,       /* decode closure (upvalues: array_mt, nulls, key cache strings) */
    S_COPY,         /* deep-copy closure */
    S_EMITS,        /* list of events passed to ctx.emit during the current call */
    S_COUNTERS,     /* metric -> integer */
    S_LOADER,       /* (funcs, module, name) -> id */
    S_EXPR,         /* (funcs, source, label) -> id */
    S_GROW,         /* (old handles, newcap) -> new handles table */
    S_CALLS,        /* suspended calls (suspend.c): id -> coroutine, -id -> its ctx.emit values */
    S_NSLOTS = S_CALLS
};

#define SL_KEY_CACHE 256
/* Most fields one sl_fields set holds (paths and their prefixes). */
#define SL_MAX_FIELDS 64
/* Field sets whose decoded tables an engine keeps for reuse. */
#define SL_REUSE_SLOTS 4
#define SL_KEY_CACHE_LEN 32

/* A decoded object key remembered with its interned Lua string (slot in the keys table). */
typedef struct {
    uint32_t len;
    uint8_t bytes[SL_KEY_CACHE_LEN];
} sl_key;

#define SL_POOL_CLASSES 32
#define SL_POOL_LARGEST (SL_POOL_CLASSES * 16)
#define SL_POOL_MAX (4u << 20)

typedef struct sl_block { struct sl_block *next; } sl_block;

/* One key/value entry while encoding an object (keys are sorted before writing). */
typedef struct {
    const char *k;
    size_t klen;
    uint64_t prefix; /* first 8 key bytes, big-endian, zero-padded: most comparisons stop here */
    int vidx;        /* stack index of the value; 0 = write null (null kept from the input) */
    int is_int;
    char ibuf[24];   /* decimal text of an integer key */
} sl_ent;

/* One step of the path to the value being encoded, for error messages. */
typedef struct {
    const char *k;
    size_t klen;
    int64_t i;
    int kind;        /* 0 string key, 1 integer key, 2 array index */
} sl_path;

/* One suspendable call (suspend.c). Its coroutine is S_CALLS[id]. */
typedef struct {
    int state;                 /* 0 free, 1 suspended */
    int has_thread;            /* S_CALLS[id] holds this record's coroutine (reused once finished) */
    int mode;
    int n_emit;
    int64_t instr_used;
    int64_t token;
} sl_call_rec;

struct sl_engine {
    lua_State *L;
    /* memory */
    size_t mem_used, mem_limit;
    int poisoned;
    sl_block *pool[SL_POOL_CLASSES + 1];
    size_t pool_bytes;
    int pend_set;
    void *pend_ptr;
    size_t pend_osize, pend_nsize;
    /* instructions */
    int64_t instr_limit, instr_used;
    int instr_gran, sticky, instr_hit;
    /* context */
    int64_t version;
    sl_log_fn log_fn;
    void *log_ctx;
    sl_lookup_fn lookup_fn;   /* ctx.lookup's host callback (lookup.c); NULL = no lookups */
    void *lookup_ctx;
    char *udf_dir, *display_dir;
    int mode;                 /* SL_MODE_* during a call, -1 otherwise */
    int n_emit;
    const sl_meta *meta;
    uint64_t call_gen, meta_gen;
    /* handles */
    int32_t *free_slots;
    size_t n_free, cap_free;
    int32_t hcount, hcap;
    /* By handle slot (hcap + 1 entries): 1 for a table decoded with only the fields its UDFs read
     * and no table among them. Those UDFs can only read it (LuaFieldAccess), so a test needs no
     * read-only view of it. 0 for every other value. */
    uint8_t *plain;
    int32_t nfuncs;
    /* outputs of the last call */
    int32_t *outs;
    size_t n_outs, cap_outs;
    /* encode */
    uint8_t *out;
    size_t out_len, out_cap;
    sl_ent *ents;
    size_t ents_top, ents_cap;
    sl_path path[SL_MAX_DEPTH + 2];
    /* decode */
    int has_nulls;           /* some decoded table had null fields (S_NULLS is not empty) */
    const uint8_t *dbytes;
    size_t dlen;
    int dtext, dfailed;
    const struct sl_fields *dfields; /* decode only these fields (sl_decode_fields), or NULL */
    int dplain;                      /* the last field decode holds no table (see `plain`) */
    /* Tables of field decodes kept for the next event (see fields.c): per slot, the set they
     * belong to, the one live handle holding the event table (0 = none), the entries set in
     * them, and whether the slot's tables must be made anew. */
    struct { uint64_t id; int32_t holder; uint64_t set; int fresh; const void *table; } reuse[SL_REUSE_SLOTS];
    int dreuse;                      /* reuse slot the last field decode filled, or -1 */
    uint8_t *sbuf;
    size_t sbuf_cap;
    int ohint[SL_MAX_DEPTH + 2], ahint[SL_MAX_DEPTH + 2];
    sl_key keys[SL_KEY_CACHE];
    /* handles of the list sl_list is building */
    const int32_t *list_hs;
    size_t list_n;
    /* arguments of the loader running under pcall */
    const char *load_a, *load_b;
    size_t load_alen;
    /* suspendable calls (suspend.c) */
    sl_call_rec *calls;
    int32_t ncalls, capcalls;
    int32_t *free_calls;       /* ids of free records */
    int32_t nfree_calls, capfree_calls;
    lua_State *running;        /* the call coroutine being resumed, NULL outside one */
    int lookup_yield;          /* set by ctx.lookup when it yields for a pending answer */
    int64_t pending_token;
    int resume_kind;           /* the answer being handed to a resumed ctx.lookup: SL_ANSWER_* */
    const uint8_t *resume_bytes;
    size_t resume_len;
    /* messages */
    char *err;
    size_t err_len, err_cap;
    char *trace;
    size_t trace_len, trace_cap;
};

static inline sl_engine *sl_E(lua_State *L) { return *(sl_engine **)lua_getextraspace(L); }

/* The `null` sentinel (a light userdata). */
extern char sl_null_tag;
#define SL_NULL ((void *)&sl_null_tag)

void sl_set_error(sl_engine *e, const char *msg, size_t len);
void sl_set_errorf(sl_engine *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* memory.c: the allocator of every engine's Lua state (ud: the engine) */
void *sl_alloc(void *ud, void *ptr, size_t osize, size_t nsize);
void pool_drain(sl_engine *e);

/* budget.c */
#define SL_HOOK_GRANULARITY 1000
void sl_hook(lua_State *L, lua_Debug *ar);
/* Charges `n` instructions outside the hook (coroutine creation). */
void charge(lua_State *L, sl_engine *e, int64_t n);
/* Gives coroutine `co` the instruction hook of the current budget (`used` already spent). */
void resume_budget(sl_engine *e, lua_State *co, int64_t used);
/* Starts the budget of a new call. */
static inline void begin_budget(sl_engine *e) {
    e->instr_used = 0;
    e->sticky = 0;
    e->instr_hit = 0;
    e->instr_gran = e->instr_limit < SL_HOOK_GRANULARITY ? (int)e->instr_limit : SL_HOOK_GRANULARITY;
    if (e->instr_gran < 1) e->instr_gran = 1;
    lua_sethook(e->L, sl_hook, LUA_MASKCOUNT, e->instr_gran);
}

/* sandbox.c */
int msgh(lua_State *L);      /* message handler of UDF calls: records the traceback */
int setup_fn(lua_State *L);  /* builds the sandbox and returns the S_* slot values in order */

/* ctx.c: the functions of ctx (setup_fn builds the table) */
int ctx_emit(lua_State *L);
int ctx_now(lua_State *L);
int ctx_log(lua_State *L);
int ctx_count(lua_State *L);
int ctx_index(lua_State *L);
int ctx_newindex(lua_State *L);

/* engine.c, shared with the other files, keyed.c and suspend.c */
void sl_set_trace(sl_engine *e, const char *s, size_t len);
int grow_fn(lua_State *L);
int fail_memory(sl_engine *e);
int classify(sl_engine *e, int st);
int reserve_handles(sl_engine *e, size_t need);
/* Pops the top value into a handle slot (capacity reserved beforehand). */
static inline int32_t put_handle(sl_engine *e) {
    int32_t slot;
    if (e->n_free) slot = e->free_slots[--e->n_free];
    else slot = ++e->hcount;
    lua_rawseti(e->L, S_HANDLES, slot);
    e->plain[slot] = 0;
    return slot;
}

static inline int valid_handle(const sl_engine *e, int32_t h) { return h >= 1 && h <= e->hcount; }
/* Handle h no longer holds a reused event table (released), or its table was put where it can
 * outlive the handle (a list, a keyed call): then the slot is given up and made anew. */
static inline void reuse_release(sl_engine *e, int32_t h, int give_up) {
    for (int i = 0; i < SL_REUSE_SLOTS; i++)
        if (e->reuse[i].holder == h && h) {
            e->reuse[i].holder = 0;
            if (give_up) e->reuse[i].id = 0;
        }
}

/* A call's result `p` (lua_topointer) is a reused event table: it now has a second holder, so its
 * slot is given up (the next decode makes new tables). LuaFieldAccess keeps such UDFs on the
 * whole decode; this keeps the tables right regardless. */
static inline void reuse_escaped(sl_engine *e, const void *p) {
    for (int i = 0; i < SL_REUSE_SLOTS; i++)
        if (e->reuse[i].id && e->reuse[i].table == p) { e->reuse[i].id = 0; e->reuse[i].holder = 0; }
}

/* A test (filter, `when`) of handle h runs on a read-only view unless h is plain. */
static inline int needs_view(const sl_engine *e, int mode, int32_t h) { return mode == SL_MODE_TEST && !e->plain[h]; }

/* Calls the function below `nargs` arguments (one handle slot reserved beforehand) in protected
 * mode and stores its result in a new handle. */
int pcall_into_handle(sl_engine *e, int nargs, int32_t *out);

/* call.c */
void clear_emits(sl_engine *e);
int outs_reserve(sl_engine *e, size_t n);
/* After a UDF call whose result is at `res`: the result (list_len < 0: `res` itself if nlist is 1;
 * else its items 1..list_len) and the ctx.emit events become new handles in e->outs. On rc != SL_OK
 * only cleans up. Leaves the stack at S_NSLOTS. */
int take_outputs(sl_engine *e, int rc, int res, int64_t list_len, size_t nlist, const int32_t **outs, size_t *n_outs);

/* After a UDF call (stack: result at S_NSLOTS + 1 when rc == SL_OK): validates the result for
 * `mode` and hands out TEST's verdict or the outputs, as sl_call documents. */
int finish_call(sl_engine *e, int mode, int rc, int *truthy, const int32_t **outs, size_t *n_outs);
/* The per-call state a UDF call starts with: its mode and metadata (ctx.meta is rebuilt on first
 * use), no ctx.emit values, a full instruction budget. */
static inline void enter_call(sl_engine *e, int mode, const sl_meta *meta) {
    e->mode = mode;
    e->meta = meta;
    e->call_gen++;
    e->n_emit = 0;
    begin_budget(e);
}

/* call.c: clears the last call's outputs and checks the function and handle of a new call. */
int begin_call(sl_engine *e, int32_t fn, int32_t h, const int32_t **outs, size_t *n_outs);
/* lookup.c: pushes the row (JSON bytes) decoded with the decode closure at upvalue 1 of the
 * running C function; raises on invalid JSON. */
void sl_push_row(lua_State *L, sl_engine *e, const char *name, const uint8_t *bytes, size_t len);

/* readonly.c: (fn, event, ctx) -> fn(read-only view of event, ctx) */
int sl_readonly_call(lua_State *L);

/* decode.c, copy.c, encode.c */
int sl_decode_span(lua_State *L, sl_engine *e, const uint8_t *start, const uint8_t *p, const uint8_t *end, int depth);
/* Pushes the table of f's fields of the event in e->dbytes and returns 1; 0 (nothing pushed)
 * when the whole decode must run instead: not an object, or invalid (for its message). */
int sl_decode_fields_fn(lua_State *L, sl_engine *e, const struct sl_fields *f);
int sl_decode_fn(lua_State *L);
/* Pushes the source text chunk `chunkname` was loaded from (nil if unknown); returns its type. */
int sl_chunk_source(lua_State *L, const char *chunkname);  /* upvalues: array_mt, nulls */
int sl_ctx_lookup(lua_State *L); /* lookup.c; upvalue: the decode closure */
int sl_copy_fn(lua_State *L);    /* upvalues: array_mt, nulls; arg: value */
int sl_encode_value(sl_engine *e, int idx); /* top-level only; result in e->out */
