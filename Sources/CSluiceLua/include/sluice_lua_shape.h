#pragma once
/* What kind of JSON value an event handle would encode as (see sl_encode's rules). */
#include <stdint.h>
#include "sluice_lua.h"

#ifdef __cplusplus
extern "C" {
#endif

enum {
    SL_SHAPE_OBJECT = 0,   /* a table written as a JSON object (including the empty table) */
    SL_SHAPE_ARRAY = 1,    /* an array-marked table, or one whose keys are exactly 1..n */
    SL_SHAPE_STRING = 2,   /* a Lua string (a text event) */
    SL_SHAPE_OTHER = 3,    /* anything else */
    SL_SHAPE_BAD_HANDLE = -1
};

/* The shape of the value held by `handle`. Costs O(1) for tables with a named key first in
 * traversal order (every decoded object); O(n) only for tables with integer keys. */
int sl_event_shape(sl_engine *e, int32_t handle);

#ifdef __cplusplus
}
#endif
