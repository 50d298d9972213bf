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

/* One entry of a node's child table; child < 0 marks an empty entry. */
typedef struct {
    uint32_t sig;
    int32_t child;
} sj_slot;

/* Bytes of zero padding after the trie's key bytes, so keys can be compared 8 bytes at a time. */
#define SJ_KEY_PAD 16

struct sj_paths {
    sj_node *nodes;
    size_t nnodes, cap_nodes;
    uint8_t *keys;
    size_t nkeys, cap_keys;
    int nslots;
    /* Child index (rebuilt after each add): node i's children are in the open-addressed
     * table slots[tstart[i] .. tstart[i] + tmask[i]], keyed by key_sig. Valid when
     * indexed == nnodes; otherwise the sibling lists are used. */
    sj_slot *slots;
    uint32_t *tstart, *tmask;
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

static inline uint32_t sig_hash(uint32_t sig) { return (sig * 0x9E3779B1u) >> 16; }

/* Compares a trie key a (padded, see SJ_KEY_PAD) with n input bytes at b, where the input
 * ends at bend. */
static inline int same_key(const uint8_t *a, const uint8_t *b, size_t n, const uint8_t *bend) {
    if (n <= 8 && bend - b >= 8) {
        if (n == 0) return 1;
        return ((load64(a) ^ load64(b)) << (64 - 8 * n)) == 0;
    }
    if (n > 8 && n <= 16) return load64(a) == load64(b) && load64(a + n - 8) == load64(b + n - 8);
    return memcmp(a, b, n) == 0;
}

/* The child of node whose key is the input bytes [k, k + klen) (still escaped if esc), or -1.
 * bend is the end of the input. */
static inline int32_t match_child(const sj_paths *t, int32_t node, const uint8_t *k, size_t klen, int esc,
                                  const uint8_t *bend) {
    if (LIKELY(!esc && t->indexed == t->nnodes)) {
        uint32_t sig = key_sig(k, klen);
        const sj_slot *tab = t->slots + t->tstart[node];
        uint32_t mask = t->tmask[node];
        for (uint32_t h = sig_hash(sig) & mask;; h = (h + 1) & mask) {
            int32_t c = tab[h].child;
            if (c < 0) return -1;
            if (tab[h].sig == sig) {
                const sj_node *nd = &t->nodes[c];
                if (nd->key_len == klen && same_key(t->keys + nd->key_off, k, klen, bend)) return c;
            }
        }
    }
    for (int32_t c = t->nodes[node].first_child; c >= 0; c = t->nodes[c].next_sibling) {
        const sj_node *nd = &t->nodes[c];
        if (LIKELY(!esc)) {
            if (nd->key_len == klen && memcmp(t->keys + nd->key_off, k, klen) == 0) return c;
        } else {
            /* k..k+klen is the contents; include the quotes for the span helper. */
            if (nd->key_len <= klen && sj_string_eq(k - 1, klen + 2, t->keys + nd->key_off, nd->key_len))
                return c;
        }
    }
    return -1;
}
