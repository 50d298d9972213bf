#pragma once
/* Private to CSluiceJSON: the path trie (paths.c builds it and looks paths up; validate.c matches
 * keys against it while validating). */
#include "scan.h"

typedef struct {
    uint32_t key_off, key_len;
    int32_t first_child;
    int32_t next_sibling;
    int32_t slot; /* -1 if no path ends here */
} sj_node;

struct sj_paths {
    sj_node *nodes;
    size_t nnodes, cap_nodes;
    uint8_t *keys;
    size_t nkeys, cap_keys;
    int nslots;
    /* Flat child index (rebuilt after each add): the children of node i are
     * cid[cstart[i] .. cstart[i] + ccount[i]), with signatures csig. Valid when
     * indexed == nnodes; otherwise the sibling lists are used. */
    uint32_t *csig;
    int32_t *cid;
    uint32_t *cstart, *ccount;
    size_t indexed;
};

static inline uint32_t key_sig(const uint8_t *k, size_t klen) {
    uint32_t len = klen > 0xFFFF ? 0xFFFF : (uint32_t)klen;
    return (len << 16) | (klen ? ((uint32_t)k[0] << 8) | k[klen - 1] : 0);
}

static inline void clear_subtree(const sj_paths *t, int32_t node, sj_value *out) {
    for (int32_t c = t->nodes[node].first_child; c >= 0; c = t->nodes[c].next_sibling) {
        if (t->nodes[c].slot >= 0) out[t->nodes[c].slot].type = SJ_MISSING;
        if (t->nodes[c].first_child >= 0) clear_subtree(t, c, out);
    }
}

static inline int same_bytes(const uint8_t *a, const uint8_t *b, size_t n) {
    while (n >= 8) {
        if (load64(a) != load64(b)) return 0;
        a += 8; b += 8; n -= 8;
    }
    while (n--) if (*a++ != *b++) return 0;
    return 1;
}

static inline int32_t match_child(const sj_paths *t, int32_t node, const uint8_t *k, size_t klen, int esc) {
    if (LIKELY(!esc && t->indexed == t->nnodes)) {
        uint32_t sig = key_sig(k, klen);
        const uint32_t *cs = t->csig + t->cstart[node];
        uint32_t cnt = t->ccount[node];
        for (uint32_t i = 0; i < cnt; i++) {
            if (cs[i] == sig) {
                int32_t c = t->cid[t->cstart[node] + i];
                const sj_node *nd = &t->nodes[c];
                if (nd->key_len == klen && same_bytes(t->keys + nd->key_off, k, klen)) return c;
            }
        }
        return -1;
    }
    for (int32_t c = t->nodes[node].first_child; c >= 0; c = t->nodes[c].next_sibling) {
        const sj_node *nd = &t->nodes[c];
        if (LIKELY(!esc)) {
            if (nd->key_len == klen && same_bytes(t->keys + nd->key_off, k, klen)) return c;
        } else {
            /* k..k+klen is the contents; include the quotes for the span helper. */
            if (nd->key_len <= klen && sj_string_eq(k - 1, klen + 2, t->keys + nd->key_off, nd->key_len))
                return c;
        }
    }
    return -1;
}
