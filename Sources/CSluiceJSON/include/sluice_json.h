#pragma once
/*
 * sluice_json: byte-level JSON scanning for Sluice's hot path.
 *
 *  - sj_validate: strict RFC 8259 validation of one JSON text (iterative, depth-capped,
 *    UTF-8 checked), with an error code, a human message and the byte offset.
 *  - sj_find / sj_paths_* + sj_find_many: look up dotted paths inside an object and
 *    return the raw byte span of each value, skipping everything else.
 *  - helpers to compare / decode JSON string spans and to parse number spans.
 *
 * The lookup functions expect input that sj_validate accepted. On other input they
 * never read outside [p, p+n) and never crash, but their answers are unspecified.
 * Duplicate keys: the last occurrence wins (as in jq, JavaScript, Python, lua-cjson).
 */
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------- validation ---------- */

enum {
    SJ_OK = 0,
    SJ_ERR_EOF = 1,            /* unexpected end of input */
    SJ_ERR_CHAR = 2,           /* unexpected character 'x' / unexpected byte 0xNN */
    SJ_ERR_UNTERMINATED = 3,   /* unterminated string */
    SJ_ERR_ESCAPE = 4,         /* invalid escape / invalid \u escape / lone surrogate */
    SJ_ERR_CONTROL = 5,        /* control character in string */
    SJ_ERR_UTF8 = 6,           /* invalid UTF-8 */
    SJ_ERR_NUMBER = 7,         /* leading zero / missing digits in a number */
    SJ_ERR_DEPTH = 8,          /* nesting deeper than N */
    SJ_ERR_TRAILING = 9,       /* trailing characters */
    SJ_ERR_NOT_OBJECT = 10     /* expected a JSON object (SJ_REQUIRE_OBJECT) */
};

/* Flags for sj_validate. */
#define SJ_REQUIRE_OBJECT 1u

/* Hard upper bound for max_depth (larger values are clamped). */
#define SJ_MAX_DEPTH_LIMIT 4096
#define SJ_DEFAULT_DEPTH 128

typedef struct {
    int code;           /* SJ_OK or SJ_ERR_* */
    size_t offset;      /* byte offset of the problem */
    char message[80];   /* NUL-terminated human message, empty when code == SJ_OK */
} sj_result;

/* Validates p[0..n) as exactly one JSON text (whitespace allowed around it).
 * max_depth <= 0 means SJ_DEFAULT_DEPTH. res may be NULL. Returns res->code.
 * Strings must be valid UTF-8 (no overlongs, no surrogates, <= U+10FFFF); \u escapes
 * must not encode unpaired surrogates (rejected: they cannot be decoded to UTF-8). */
int sj_validate(const uint8_t *p, size_t n, int max_depth, unsigned flags, sj_result *res);

/* ---------- lookup ---------- */

enum {
    SJ_MISSING = 0,
    SJ_NULL = 1,
    SJ_BOOL = 2,     /* span is "true" or "false" */
    SJ_NUMBER = 3,
    SJ_STRING = 4,   /* span includes the quotes; contents still escaped */
    SJ_ARRAY = 5,
    SJ_OBJECT = 6
};

typedef struct {
    int32_t type;    /* SJ_MISSING .. SJ_OBJECT */
    uint32_t _pad;
    size_t off;      /* start of the raw value inside the input */
    size_t len;      /* raw length in bytes */
} sj_value;

/* Finds a dotted path ("client.os") inside the top-level object p[0..n).
 * Segments are split on '.'; keys are compared by decoded value. Returns out->type. */
int sj_find(const uint8_t *p, size_t n, const char *path, size_t path_len, sj_value *out);

/* A compiled set of paths (a trie) found together in one pass by sj_find_many.
 * Immutable after the last sj_paths_add; may then be shared between threads. */
typedef struct sj_paths sj_paths;

sj_paths *sj_paths_new(void);
void sj_paths_free(sj_paths *t);
/* Longest path accepted by sj_paths_add. */
#define SJ_MAX_PATH_SEGMENTS 64

/* Adds a path given as nseg segments (raw UTF-8, not escaped). Returns its slot
 * (an identical path returns the same slot), or -1 on allocation failure, nseg == 0 or
 * nseg > SJ_MAX_PATH_SEGMENTS. */
int sj_paths_add(sj_paths *t, const uint8_t *const *segs, const size_t *seg_lens, size_t nseg);
/* Number of distinct slots (size of the `out` array for sj_find_many). */
size_t sj_paths_count(const sj_paths *t);
/* Finds every path of t in the top-level object p[0..n) in one pass. out[slot] gets
 * each value (SJ_MISSING if absent or if a parent is not an object). */
void sj_find_many(const sj_paths *t, const uint8_t *p, size_t n, sj_value *out);
/* sj_find_many for input whose objects are known to have distinct keys (e.g. written by the Lua
 * encoder from a table): stops after the last path is found instead of scanning to the end for a
 * later duplicate. On input with duplicate keys it may return an earlier one. */
void sj_find_many_distinct(const sj_paths *t, const uint8_t *p, size_t n, sj_value *out);

/* sj_validate and sj_find_many in one pass: validates p[0..n) like sj_validate and, while
 * doing so, finds every path of t (out as for sj_find_many). out is meaningful only when the
 * result is SJ_OK. t == NULL behaves as sj_validate. */
int sj_validate_find(const sj_paths *t, const uint8_t *p, size_t n, int max_depth, unsigned flags,
                     sj_result *res, sj_value *out);

/* ---------- strings ---------- */

/* raw/raw_len: a JSON string span including quotes (as returned in sj_value).
 * s/s_len: plain UTF-8 bytes. Compare by decoded value. */
int sj_string_eq(const uint8_t *raw, size_t raw_len, const uint8_t *s, size_t s_len);
/* Bytewise comparison of the decoded value with s: <0, 0, >0. */
int sj_string_cmp(const uint8_t *raw, size_t raw_len, const uint8_t *s, size_t s_len);
/* Decodes a string span into out (capacity cap). The decoded length never exceeds
 * raw_len - 2. Returns the decoded length, or (size_t)-1 if cap is too small or the
 * span is not a well-formed string. */
size_t sj_string_decode(const uint8_t *raw, size_t raw_len, uint8_t *out, size_t cap);

/* ---------- numbers ---------- */

enum { SJ_NUM_INVALID = 0, SJ_NUM_INT = 1, SJ_NUM_DOUBLE = 2 };
/* Parses a JSON number span. An integer literal (no fraction/exponent) that fits int64
 * gives SJ_NUM_INT with *iv set (and *dv = (double)*iv); anything else SJ_NUM_DOUBLE
 * with *dv (correctly rounded). */
int sj_parse_number(const uint8_t *p, size_t n, int64_t *iv, double *dv);

#ifdef __cplusplus
}
#endif
