#pragma once
/*
 * Sluice Lua bridge: one sandboxed Lua 5.4 state per engine, JSON <-> Lua tables,
 * per-state memory accounting and a per-call instruction budget.
 *
 * Every function here is called from the owning thread only. No function raises a
 * Lua error into its caller: all Lua errors are caught in C frames and reported as
 * a status code plus a message (sl_error) and, for UDF errors, a traceback.
 */
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sl_engine sl_engine;
/* The fields of an event a UDF reads (see sl_decode_fields). Immutable once built. */
typedef struct sl_fields sl_fields;

/* Status codes returned by the functions below. */
enum {
    SL_OK = 0,
    SL_RUNTIME = 1,       /* a Lua error; sl_error has the message, sl_traceback the stack */
    SL_INSTRUCTIONS = 2,  /* the per-call instruction budget was spent */
    SL_MEMORY = 3,        /* the state went over its memory limit (engine is now poisoned) */
    SL_BAD_RETURN = 4,    /* a UDF returned something of the wrong type */
    SL_ENCODE = 5,        /* a value cannot be written as JSON */
    SL_DECODE = 6,        /* input bytes are not valid JSON / UTF-8 */
    SL_LOAD = 7,          /* a module or expression failed to load */
    SL_BAD_HANDLE = 8,    /* an event handle or function id that is not live */
    SL_SUSPENDED = 9      /* a suspendable call is waiting for a lookup answer (sl_call_start) */
};

/* What sl_call does with the UDF's return value. MERGE: nil, one event or a list of events
 * (a join's merge); REDUCE: the new state table (an aggregate's reduce). */
enum { SL_MODE_TEST = 0, SL_MODE_MAP = 1, SL_MODE_FLATMAP = 2, SL_MODE_MERGE = 3, SL_MODE_REDUCE = 4 };

/* An argument of sl_call_keyed that is nil. */
#define SL_NIL_HANDLE (-1)

typedef void (*sl_log_fn)(void *ctx, const char *level, size_t level_len, const char *msg, size_t msg_len);
/* ctx.lookup's host callback: the row of table `name` under `key`. Returns JSON bytes allocated
 * with malloc (the engine frees them) and sets *status:
 *   SL_LOOKUP_OK       the row (NULL = nil: an unknown key);
 *   SL_LOOKUP_UNKNOWN  there is no table `name`;
 *   SL_LOOKUP_PENDING  (only when can_suspend) the answer comes later: *token names it, the call
 *                      suspends and the host resumes it with sl_call_resume;
 *   SL_LOOKUP_FAILED   the lookup failed: the bytes are the message ctx.lookup raises.
 * Must not raise or longjmp. */
enum { SL_LOOKUP_OK = 0, SL_LOOKUP_UNKNOWN = 1, SL_LOOKUP_PENDING = 2, SL_LOOKUP_FAILED = 3 };
typedef uint8_t *(*sl_lookup_fn)(void *ctx, const char *name, size_t name_len, const char *key, size_t key_len,
                                 int can_suspend, size_t *out_len, int *status, int64_t *token);
typedef void (*sl_counter_fn)(void *ctx, const char *name, size_t name_len, int64_t value);

/* Event metadata for one call. Byte fields are (offset, length) into `blob`.
 * `headers` holds 4 numbers per header: name_off, name_len, value_off, value_len. */
typedef struct sl_meta {
    const uint8_t *blob;
    const size_t *headers;
    size_t n_headers;
    size_t key_off, key_len, topic_off, topic_len;
    int64_t timestamp, partition, offset;
    int has_key, has_timestamp, has_topic, has_partition, has_offset;
} sl_meta;

/* Creates an engine. `*out` is always set (unless allocation of the engine itself fails):
 * on error read sl_error(*out) and then sl_engine_free(*out). `display_dir` prefixes
 * chunk names ("udfs" -> "udfs/enrich.lua:12: ..."). */
int sl_engine_new(const char *udf_dir, const char *display_dir, int64_t memory_limit,
                  int64_t instruction_limit, int64_t version, sl_log_fn log, void *log_ctx,
                  sl_engine **out);
void sl_engine_free(sl_engine *e);
/* Installs ctx.lookup's callback (lookup.c); `ctx` must outlive the engine. */
void sl_set_lookup(sl_engine *e, sl_lookup_fn fn, void *ctx);

/* Last error message / traceback (not NUL-terminated; traceback may be NULL). */
const char *sl_error(const sl_engine *e, size_t *len);
const char *sl_traceback(const sl_engine *e, size_t *len);

/* Sandboxed require of udf_dir/<module>.lua, then its field `name`, which must be a function. */
int sl_function(sl_engine *e, const char *module, const char *name, int32_t *out_id);
/* Compiles `return function(event, ctx) return (<src>) end`, chunk name `label`. */
int sl_expression(sl_engine *e, const char *src, size_t len, const char *label, int32_t *out_id);

/* Decodes bytes into a new handle: JSON (text == 0) or a Lua string (text != 0). */
int sl_decode(sl_engine *e, const uint8_t *bytes, size_t len, int text, int32_t *out_handle);

/* A field set: paths of object keys (segments of raw UTF-8). sl_fields_add returns 0, or -1
 * when the set is full (64 fields with their prefixes) or out of memory. */
sl_fields *sl_fields_new(void);
void sl_fields_free(sl_fields *f);
int sl_fields_add(sl_fields *f, const uint8_t *const *segs, const size_t *seg_lens, size_t nseg);
/* sl_decode of a JSON object that puts only f's fields in the table (each decoded whole; objects
 * on the way to a deeper one hold just the fields below them). The whole event is validated as
 * by sl_decode; an invalid one, or one that is not an object, is decoded in full instead (same
 * answer and message as sl_decode). For UDFs that read nothing else (LuaFieldAccess). */
int sl_decode_fields(sl_engine *e, const sl_fields *f, const uint8_t *bytes, size_t len, int32_t *out_handle);

/* The Lua source a function was loaded from (valid while the engine lives) and the lines it
 * spans, as Lua counts them. SL_BAD_HANDLE if there is none (a C function, an unknown id). */
int sl_function_source(sl_engine *e, int32_t fn, const char **src, size_t *len, int *first_line, int *last_line);
/* Encodes a handle; the bytes stay valid until the next call on this engine.
 * text != 0: a string value is written raw, anything else as JSON. */
int sl_encode(sl_engine *e, int32_t handle, int text, const uint8_t **out, size_t *out_len);
/* Deep copy into a new handle. */
int sl_copy(sl_engine *e, int32_t handle, int32_t *out_handle);
/* Frees a handle's slot (no-op for a handle that is not live). */
void sl_release(sl_engine *e, int32_t handle);
/* Number of live handles. */
int64_t sl_live_handles(const sl_engine *e);

/* Calls function `fn` with (event, ctx). TEST sets *truthy; MAP and FLATMAP set outs and n_outs
 * to the new handles (valid until the next call). `meta` may be NULL and need only live
 * for the duration of the call. */
int sl_call(sl_engine *e, int32_t fn, int32_t handle, const sl_meta *meta, int mode,
            int *truthy, const int32_t **outs, size_t *n_outs);

/* Like sl_call, but runs the UDF as a coroutine that ctx.lookup may suspend while an answer is
 * pending. Returns what sl_call returns, or SL_SUSPENDED with *call and *token set: the call keeps
 * its event, emits and remaining instruction budget until sl_call_resume finishes it. The event
 * handle must stay live until then. */
int sl_call_start(sl_engine *e, int32_t fn, int32_t handle, const sl_meta *meta, int mode,
                  int *truthy, const int32_t **outs, size_t *n_outs, int32_t *call, int64_t *token);
/* The answer to a suspended call's lookup. */
enum { SL_ANSWER_ROW = 0, SL_ANSWER_NIL = 1, SL_ANSWER_FAILED = 2 };
/* Resumes `call` with the answer (bytes: the row's JSON, or the failure message); results as
 * for sl_call, or SL_SUSPENDED again (a further lookup) with a new *token. `meta` is the
 * event's metadata again (it need only live for this call). */
int sl_call_resume(sl_engine *e, int32_t call, int kind, const uint8_t *bytes, size_t len, const sl_meta *meta,
                   int *truthy, const int32_t **outs, size_t *n_outs, int64_t *token);
/* Drops a suspended call without finishing it. */
void sl_call_abandon(sl_engine *e, int32_t call);
/* Number of suspended calls. */
int32_t sl_suspended_calls(const sl_engine *e);

/* Calls fn(args[0], ..., args[nargs-1], ctx) for keyed transforms (merge, reduce). An argument
 * SL_NIL_HANDLE is nil. `state` (0 = none) is the handle of the key's table, seen as ctx.state
 * during the call. Modes MERGE and REDUCE only; outputs as for sl_call. */
int sl_call_keyed(sl_engine *e, int32_t fn, const int32_t *args, size_t nargs, int32_t state,
                  const sl_meta *meta, int mode, const int32_t **outs, size_t *n_outs);
/* A new handle holding a list (a JSON array) of the values of `handles`. */
int sl_list(sl_engine *e, const int32_t *handles, size_t n, int32_t *out);
/* A new handle holding an empty table (an object). */
int sl_new_table(sl_engine *e, int32_t *out);
/* 1 if the handle holds a table with no entries. */
int sl_is_empty(sl_engine *e, int32_t handle);

int sl_poisoned(const sl_engine *e);
size_t sl_memory(const sl_engine *e);
/* Reports and clears the counters accumulated by ctx.count. */
void sl_take_counters(sl_engine *e, sl_counter_fn fn, void *ctx);

#ifdef __cplusplus
}
#endif
