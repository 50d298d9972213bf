/* Bounded Lua string functions for the sandbox.
 *
 * Lua's own string.find / match / gmatch / gsub run their pattern matcher in C, outside the
 * instruction hook: a pattern such as ("a*"):rep(30) .. "c" against ("a"):rep(30) .. "b"
 * backtracks for minutes and the per-call instruction limit never fires. This file is a
 * separate implementation of Lua 5.4 pattern matching (same syntax, same results, same error
 * messages) whose every matcher step is charged to the instruction budget, so such a call ends
 * with "instruction limit exceeded" like any other runaway UDF. string.rep is wrapped to refuse
 * results larger than the state's memory headroom before allocating (a memory-limit failure, as
 * if the allocator had refused) and to charge for the bytes it writes.
 *
 * Errors are raised with luaL_error (a longjmp): nothing here owns memory outside the Lua stack.
 */
#define _GNU_SOURCE   /* memmem */
#include <ctype.h>
#include <string.h>
#include "internal.h"
#include "patterns.h"

#define PM_MAX_CAPTURES 32       /* LUA_MAXCAPTURES of stock lstrlib */
#define PM_MAX_DEPTH 200          /* recursion depth of the matcher ("pattern too complex") */
#define PM_CHARGE_EVERY 256       /* steps batched before charging the instruction budget */
#define PM_UNCLOSED (-1)          /* capture opened, not yet closed */
#define PM_POSITION (-2)          /* position capture "()" */
#define PM_SPECIALS "^$*+?.([%-"  /* a find pattern without these is searched as plain text */

typedef struct {
    const char *subject, *subject_end, *pattern_end;
    lua_State *L;
    int64_t steps;                /* not yet charged */
    int depth, ncaptures;
    struct { const char *start; ptrdiff_t len; } captures[PM_MAX_CAPTURES];
} pm_state;

static void pm_step(pm_state *m) {
    if (++m->steps >= PM_CHARGE_EVERY) {
        int64_t n = m->steps;
        m->steps = 0;
        sl_charge_instructions(m->L, n);
    }
}

static void pm_settle(pm_state *m) {
    int64_t n = m->steps;
    m->steps = 0;
    if (n) sl_charge_instructions(m->L, n);
}

static void pm_begin(pm_state *m, lua_State *L, const char *s, size_t ls, const char *p, size_t lp) {
    m->L = L;
    m->subject = s; m->subject_end = s + ls;
    m->pattern_end = p + lp;
    m->steps = 0;
    m->depth = 0;
    m->ncaptures = 0;
}

static void pm_reset(pm_state *m) {
    m->depth = 0;
    m->ncaptures = 0;
}

/* One character class letter (after '%'): a, c, d, g, l, p, s, u, w, x; upper case negates. */
static int pm_class(int c, int letter) {
    int yes;
    switch (tolower(letter)) {
    case 'a': yes = isalpha(c); break;
    case 'c': yes = iscntrl(c); break;
    case 'd': yes = isdigit(c); break;
    case 'g': yes = isgraph(c); break;
    case 'l': yes = islower(c); break;
    case 'p': yes = ispunct(c); break;
    case 's': yes = isspace(c); break;
    case 'u': yes = isupper(c); break;
    case 'w': yes = isalnum(c); break;
    case 'x': yes = isxdigit(c); break;
    case 'z': yes = c == 0; break;   /* deprecated in 5.2, still accepted by 5.4 */
    default: return letter == c;   /* %. %% %[ ...: the character itself */
    }
    if (isupper(letter)) yes = !yes;
    return yes != 0;
}

/* Where the single-character item at p ends (p points at '%', '[' or a plain character). */
static const char *pm_item_end(pm_state *m, const char *p) {
    if (*p == '%') {
        if (p + 1 >= m->pattern_end) luaL_error(m->L, "malformed pattern (ends with '%%')");
        return p + 2;
    }
    if (*p == '[') {
        const char *q = p + 1;
        if (q < m->pattern_end && *q == '^') q++;
        /* the first character of the set may be ']' itself */
        for (int first = 1;; first = 0) {
            if (q >= m->pattern_end) luaL_error(m->L, "malformed pattern (missing ']')");
            if (*q == ']' && !first) return q + 1;
            if (*q == '%') {
                q++;
                if (q >= m->pattern_end) luaL_error(m->L, "malformed pattern (missing ']')");
            }
            q++;
        }
    }
    return p + 1;
}

/* Does c belong to the set [ ... ] that starts at open ('[') and ends at close (']')? */
static int pm_in_set(int c, const char *open, const char *close) {
    const char *q = open + 1;
    int negate = 0;
    if (*q == '^') { negate = 1; q++; }
    int found = 0;
    while (q < close && !found) {
        if (*q == '%' && q + 1 < close) {
            found = pm_class(c, (unsigned char)q[1]);
            q += 2;
        } else if (q + 2 < close && q[1] == '-') {
            found = (unsigned char)q[0] <= c && c <= (unsigned char)q[2];
            q += 3;
        } else {
            found = (unsigned char)*q == c;
            q++;
        }
    }
    return negate ? !found : found;
}

/* Does the item [p, ep) match the subject character at s? */
static int pm_single(pm_state *m, const char *s, const char *p, const char *ep) {
    if (s >= m->subject_end) return 0;
    int c = (unsigned char)*s;
    switch (*p) {
    case '.': return 1;
    case '%': return pm_class(c, (unsigned char)p[1]);
    case '[': return pm_in_set(c, p, ep - 1);
    default: return (unsigned char)*p == c;
    }
}

static const char *pm_match(pm_state *m, const char *s, const char *p);

/* item* (or item+ after its first character): longest run first, then give back one at a time. */
static const char *pm_greedy(pm_state *m, const char *s, const char *p, const char *ep) {
    ptrdiff_t n = 0;
    while (pm_single(m, s + n, p, ep)) { n++; pm_step(m); }
    for (; n >= 0; n--) {
        const char *r = pm_match(m, s + n, ep + 1);
        if (r) return r;
        pm_step(m);
    }
    return NULL;
}

/* item-: shortest run first, one more character at a time. */
static const char *pm_lazy(pm_state *m, const char *s, const char *p, const char *ep) {
    for (;;) {
        const char *r = pm_match(m, s, ep + 1);
        if (r) return r;
        if (!pm_single(m, s, p, ep)) return NULL;
        s++;
        pm_step(m);
    }
}

static const char *pm_open_capture(pm_state *m, const char *s, const char *p, ptrdiff_t what) {
    if (m->ncaptures >= PM_MAX_CAPTURES) luaL_error(m->L, "too many captures");
    int i = m->ncaptures++;
    m->captures[i].start = s;
    m->captures[i].len = what;
    const char *r = pm_match(m, s, p);
    if (!r) m->ncaptures--;
    return r;
}

static const char *pm_close_capture(pm_state *m, const char *s, const char *p) {
    int i = m->ncaptures - 1;
    while (i >= 0 && m->captures[i].len != PM_UNCLOSED) i--;
    if (i < 0) luaL_error(m->L, "invalid pattern capture");
    m->captures[i].len = s - m->captures[i].start;
    const char *r = pm_match(m, s, p);
    if (!r) m->captures[i].len = PM_UNCLOSED;
    return r;
}

/* %bxy: a balanced run from x to its matching y. */
static const char *pm_balanced(pm_state *m, const char *s, const char *p) {
    if (p + 1 >= m->pattern_end) luaL_error(m->L, "malformed pattern (missing arguments to '%%b')");
    if (s >= m->subject_end || *s != *p) return NULL;
    char open = p[0], close = p[1];
    int level = 1;
    while (++s < m->subject_end) {
        pm_step(m);
        if (*s == close) { if (--level == 0) return s + 1; }
        else if (*s == open) level++;
    }
    return NULL;
}

/* %1..%9 refer to a closed capture. */
static int pm_backref_index(pm_state *m, int digit) {
    int i = digit - '1';
    if (i < 0 || i >= m->ncaptures || m->captures[i].len == PM_UNCLOSED)
        return luaL_error(m->L, "invalid capture index %%%d", i + 1);
    return i;
}

/* Matches pattern p at subject position s; returns the end of the match or NULL. */
static const char *pm_match(pm_state *m, const char *s, const char *p) {
    if (++m->depth > PM_MAX_DEPTH) luaL_error(m->L, "pattern too complex");
    const char *result = NULL;
    for (;;) {
        pm_step(m);
        if (p >= m->pattern_end) { result = s; break; }
        if (*p == '(') {
            result = p + 1 < m->pattern_end && p[1] == ')' ? pm_open_capture(m, s, p + 2, PM_POSITION)
                                                            : pm_open_capture(m, s, p + 1, PM_UNCLOSED);
            break;
        }
        if (*p == ')') { result = pm_close_capture(m, s, p + 1); break; }
        if (*p == '$' && p + 1 == m->pattern_end) { result = s == m->subject_end ? s : NULL; break; }
        if (*p == '%' && p + 1 < m->pattern_end) {
            char k = p[1];
            if (k == 'b') {
                s = pm_balanced(m, s, p + 2);
                if (!s) break;
                p += 4;
                continue;
            }
            if (k == 'f') {
                p += 2;
                if (p >= m->pattern_end || *p != '[') luaL_error(m->L, "missing '[' after '%%f' in pattern");
                const char *ep = pm_item_end(m, p);
                int before = s == m->subject ? 0 : (unsigned char)s[-1];
                int here = s < m->subject_end ? (unsigned char)*s : 0;
                if (pm_in_set(before, p, ep - 1) || !pm_in_set(here, p, ep - 1)) break;
                p = ep;
                continue;
            }
            if (k >= '0' && k <= '9') {
                int i = pm_backref_index(m, k);
                size_t len = (size_t)m->captures[i].len;
                if ((size_t)(m->subject_end - s) < len || memcmp(m->captures[i].start, s, len) != 0) break;
                s += len;
                p += 2;
                continue;
            }
        }
        /* a single-character item, possibly followed by a quantifier */
        const char *ep = pm_item_end(m, p);
        char q = ep < m->pattern_end ? *ep : '\0';
        if (!pm_single(m, s, p, ep)) {
            if (q == '*' || q == '?' || q == '-') { p = ep + 1; continue; }   /* zero repetitions */
            break;
        }
        if (q == '?') {
            const char *r = pm_match(m, s + 1, ep + 1);
            if (r) { result = r; break; }
            p = ep + 1;
            continue;
        }
        if (q == '+') { result = pm_greedy(m, s + 1, p, ep); break; }
        if (q == '*') { result = pm_greedy(m, s, p, ep); break; }
        if (q == '-') { result = pm_lazy(m, s, p, ep); break; }
        s++;
        p = ep;
    }
    m->depth--;
    return result;
}

/* Pushes capture i of the match [s, e) (the whole match when there are no captures and i == 0). */
static void pm_push_capture(pm_state *m, int i, const char *s, const char *e) {
    if (i >= m->ncaptures) {
        if (i != 0) { luaL_error(m->L, "invalid capture index %%%d", i + 1); return; }
        lua_pushlstring(m->L, s, (size_t)(e - s));
        return;
    }
    ptrdiff_t len = m->captures[i].len;
    if (len == PM_UNCLOSED) luaL_error(m->L, "unfinished capture");
    else if (len == PM_POSITION) lua_pushinteger(m->L, (m->captures[i].start - m->subject) + 1);
    else lua_pushlstring(m->L, m->captures[i].start, (size_t)len);
}

/* Pushes every capture (or the whole match if there are none and `whole`); returns how many. */
static int pm_push_captures(pm_state *m, const char *s, const char *e, int whole) {
    int n = m->ncaptures == 0 && whole ? 1 : m->ncaptures;
    luaL_checkstack(m->L, n, "too many captures");
    for (int i = 0; i < n; i++) pm_push_capture(m, i, s, e);
    return n;
}

/* Lua 5.4's rule for a start position: negative counts from the end, clamped to 1. */
static size_t pm_start(lua_Integer pos, size_t len) {
    if (pos > 0) return (size_t)pos;
    if (pos == 0) return 1;
    if (pos < -(lua_Integer)len) return 1;
    return len + (size_t)pos + 1;
}

static int pm_find_or_match(lua_State *L, int find) {
    size_t ls, lp;
    const char *s = luaL_checklstring(L, 1, &ls);
    const char *p = luaL_checklstring(L, 2, &lp);
    size_t init = pm_start(luaL_optinteger(L, 3, 1), ls);
    if (init > ls + 1) { luaL_pushfail(L); return 1; }
    if (find) {
        /* plain search (glibc's memmem is linear) when asked for, or when nothing in p is special */
        int plain = lua_toboolean(L, 4);
        if (!plain) {
            plain = 1;
            for (size_t i = 0; i < lp; i++) if (p[i] && strchr(PM_SPECIALS, p[i])) { plain = 0; break; }
        }
        if (plain) {
            sl_charge_instructions(L, (int64_t)((ls - init + 1) / 64 + 1));
            const char *hit = lp == 0 ? s + init - 1 : memmem(s + init - 1, ls - init + 1, p, lp);
            if (!hit) { luaL_pushfail(L); return 1; }
            lua_pushinteger(L, (hit - s) + 1);
            lua_pushinteger(L, (lua_Integer)((hit - s) + lp));
            return 2;
        }
    }
    pm_state m;
    pm_begin(&m, L, s, ls, p, lp);
    int anchored = lp > 0 && *p == '^';
    const char *pat = anchored ? p + 1 : p;
    const char *at = s + init - 1;
    for (;;) {
        pm_reset(&m);
        const char *e = pm_match(&m, at, pat);
        if (e) {
            pm_settle(&m);
            if (find) {
                lua_pushinteger(L, (at - s) + 1);
                lua_pushinteger(L, e - s);
                return 2 + pm_push_captures(&m, NULL, NULL, 0);
            }
            return pm_push_captures(&m, at, e, 1);
        }
        if (anchored || at >= m.subject_end) break;
        at++;
    }
    pm_settle(&m);
    luaL_pushfail(L);
    return 1;
}

static int sb_find(lua_State *L) { return pm_find_or_match(L, 1); }
static int sb_match(lua_State *L) { return pm_find_or_match(L, 0); }

/* gmatch iterator. Upvalues: subject, pattern, next offset, end offset of the last match (-1). */
static int sb_gmatch_next(lua_State *L) {
    size_t ls, lp;
    const char *s = lua_tolstring(L, lua_upvalueindex(1), &ls);
    const char *p = lua_tolstring(L, lua_upvalueindex(2), &lp);
    lua_Integer pos = lua_tointeger(L, lua_upvalueindex(3));
    lua_Integer last = lua_tointeger(L, lua_upvalueindex(4));
    pm_state m;
    pm_begin(&m, L, s, ls, p, lp);
    for (const char *at = s + pos; at <= m.subject_end; at++) {
        pm_reset(&m);
        const char *e = pm_match(&m, at, p);
        if (e && (e - s) != last) {
            pm_settle(&m);
            lua_pushinteger(L, e - s); lua_replace(L, lua_upvalueindex(3));
            lua_pushinteger(L, e - s); lua_replace(L, lua_upvalueindex(4));
            return pm_push_captures(&m, at, e, 1);
        }
    }
    pm_settle(&m);
    return 0;
}

static int sb_gmatch(lua_State *L) {
    size_t ls;
    luaL_checklstring(L, 1, &ls);
    luaL_checkstring(L, 2);
    size_t init = pm_start(luaL_optinteger(L, 3, 1), ls);
    lua_settop(L, 2);
    /* an offset past the end (ls + 1) leaves nothing to try, not even an empty match at the end */
    lua_pushinteger(L, init > ls + 1 ? (lua_Integer)ls + 1 : (lua_Integer)init - 1);
    lua_pushinteger(L, -1);
    lua_pushcclosure(L, sb_gmatch_next, 4);
    return 1;
}

/* Appends the replacement for the match [s, e) to b; `repl` is at stack index 3. */
static void pm_add_replacement(pm_state *m, luaL_Buffer *b, const char *s, const char *e, int kind) {
    lua_State *L = m->L;
    if (kind == LUA_TSTRING || kind == LUA_TNUMBER) {
        size_t lr;
        const char *r = lua_tolstring(L, 3, &lr);
        sl_charge_instructions(L, (int64_t)(lr / 16 + 1));
        for (size_t i = 0; i < lr; i++) {
            if (r[i] != '%') { luaL_addchar(b, r[i]); continue; }
            i++;
            char d = i < lr ? r[i] : '\0';
            if (d == '%') luaL_addchar(b, '%');
            else if (d >= '0' && d <= '9') {
                if (d == '0') luaL_addlstring(b, s, (size_t)(e - s));
                else {
                    pm_push_capture(m, d - '1', s, e);
                    luaL_tolstring(L, -1, NULL);
                    lua_remove(L, -2);
                    luaL_addvalue(b);
                }
            } else {
                luaL_error(L, "invalid use of '%%' in replacement string");
            }
        }
        return;
    }
    if (kind == LUA_TFUNCTION) {
        lua_pushvalue(L, 3);
        int n = pm_push_captures(m, s, e, 1);
        lua_call(L, n, 1);
    } else {   /* table */
        pm_push_capture(m, 0, s, e);
        lua_gettable(L, 3);
    }
    if (!lua_toboolean(L, -1)) {   /* nil or false: keep the original text */
        lua_pop(L, 1);
        luaL_addlstring(b, s, (size_t)(e - s));
    } else if (!lua_isstring(L, -1)) {
        luaL_error(L, "invalid replacement value (a %s)", luaL_typename(L, -1));
    } else {
        luaL_addvalue(b);
    }
}

static int sb_gsub(lua_State *L) {
    size_t ls, lp;
    const char *s = luaL_checklstring(L, 1, &ls);
    const char *p = luaL_checklstring(L, 2, &lp);
    int kind = lua_type(L, 3);
    lua_Integer max = luaL_optinteger(L, 4, (lua_Integer)ls + 1);
    luaL_argexpected(L, kind == LUA_TNUMBER || kind == LUA_TSTRING || kind == LUA_TFUNCTION || kind == LUA_TTABLE,
                     3, "string/function/table");
    lua_settop(L, 3);
    int anchored = lp > 0 && *p == '^';
    const char *pat = anchored ? p + 1 : p;
    pm_state m;
    pm_begin(&m, L, s, ls, p, lp);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    const char *at = s, *last = NULL;
    lua_Integer n = 0;
    while (n < max) {
        pm_reset(&m);
        const char *e = pm_match(&m, at, pat);
        if (e && e != last) {
            n++;
            pm_settle(&m);
            pm_add_replacement(&m, &b, at, e, kind);
            at = last = e;
        } else if (at < m.subject_end) {
            luaL_addchar(&b, *at++);
        } else {
            break;
        }
        if (anchored) break;
    }
    pm_settle(&m);
    luaL_addlstring(&b, at, (size_t)(m.subject_end - at));
    luaL_pushresult(&b);
    lua_pushinteger(L, n);
    return 2;
}

/* string.rep with its result size checked against the memory headroom first, and charged. */
static int sb_rep(lua_State *L) {
    size_t l, lsep;
    luaL_checklstring(L, 1, &l);
    lua_Integer n = luaL_checkinteger(L, 2);
    luaL_optlstring(L, 3, "", &lsep);
    if (n > 0) {
        sl_engine *e = sl_E(L);
        size_t headroom = e->mem_limit > e->mem_used ? e->mem_limit - e->mem_used : 0;
        size_t count = (size_t)n, total;
        int over = __builtin_mul_overflow(l, count, &total);
        size_t seps;
        over |= __builtin_mul_overflow(lsep, count - 1, &seps);
        over |= __builtin_add_overflow(total, seps, &total);
        if (over || total > headroom) {
            /* the same outcome as the allocator refusing it (a memory-limit failure even under
             * pcall), decided before anything is allocated or copied */
            e->poisoned = 1;
            return luaL_error(L, "not enough memory: string.rep of more than the %I bytes free", (lua_Integer)headroom);
        }
        sl_charge_instructions(L, (int64_t)(total / 32 + 1));
        /* stock rep loops n times even when every piece is empty: rep("", 2^62) would never end */
        if (total == 0) { lua_pushliteral(L, ""); return 1; }
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
    return 1;
}

void sl_install_bounded_strings(lua_State *L, int string_table) {
    string_table = lua_absindex(L, string_table);
    lua_pushcfunction(L, sb_find); lua_setfield(L, string_table, "find");
    lua_pushcfunction(L, sb_match); lua_setfield(L, string_table, "match");
    lua_pushcfunction(L, sb_gmatch); lua_setfield(L, string_table, "gmatch");
    lua_pushcfunction(L, sb_gsub); lua_setfield(L, string_table, "gsub");
    lua_getfield(L, string_table, "rep");
    lua_pushcclosure(L, sb_rep, 1);
    lua_setfield(L, string_table, "rep");
}
