/* The memory of an engine's Lua state: accounting against its limit, and a pool of small blocks. */
#include "internal.h"
#include <stdlib.h>
#include <string.h>

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

void pool_drain(sl_engine *e) {
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
void *sl_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
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
