/* The instruction budget of a call: the count hook, and charges made outside it. */
#include "internal.h"

/* ------------------------------------------------------------------ instructions */

static void make_sticky(lua_State *L, sl_engine *e) {
    lua_sethook(L, sl_hook, LUA_MASKCOUNT, 1);
    if (L != e->L) lua_sethook(e->L, sl_hook, LUA_MASKCOUNT, 1);
}

void sl_hook(lua_State *L, lua_Debug *ar) {
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
void charge(lua_State *L, sl_engine *e, int64_t n) {
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

void resume_budget(sl_engine *e, lua_State *co, int64_t used) {
    e->instr_used = used;
    e->sticky = 0;
    e->instr_hit = 0;
    lua_sethook(co, sl_hook, LUA_MASKCOUNT, e->instr_gran);
}
