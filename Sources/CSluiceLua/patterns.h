#pragma once
/* Private to CSluiceLua: the sandbox's bounded string functions (patterns.c). */
#include <stdint.h>
#include <lua5.4/lua.h>

/* Replaces find, match, gmatch and gsub of the string library table at `string_table` with
 * matchers whose steps are charged to the instruction budget, and wraps rep. */
void sl_install_bounded_strings(lua_State *L, int string_table);

/* Charges `n` instructions to the current call (budget.c); raises "instruction limit exceeded"
 * once the budget is spent. Only from C functions called by Lua. */
void sl_charge_instructions(lua_State *L, int64_t n);
