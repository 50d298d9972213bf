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

/* One entry of a node's child table: the key's length and first 8 bytes (zero-padded), which
 * decide a key of up to 8 bytes alone; child < 0 marks an empty entry. */
typedef struct {
    uint64_t head;
    uint32_t len;
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
     * table slots[tstart[i] .. tstart[i] + tmask[i]], keyed by key_head. Valid when
     * indexed == nnodes; otherwise the sibling lists are used. */
    sj_slot *slots;
    uint32_t *tstart, *tmask;
    size_t indexed;
};

/* The first min(klen, 8) bytes of a key as a little-endian word, the rest zero; end bounds
 * the readable input. */
static inline uint64_t key_head(const uint8_t *k, size_t klen, const uint8_t *end) {
    if (klen >= 8) return load64(k);
    if (klen == 0) return 0;
    if (end - k >= 8) return load64(k) & (~0ULL >> (64 - 8 * klen));
    uint64_t w = 0;
    memcpy(&w, k, klen);
    return w;
}

static inline uint32_t head_hash(uint64_t head, size_t klen) {
    return (uint32_t)(((head ^ klen) * 0x9E3779B97F4A7C15ULL) >> 40);
}

static inline void clear_subtree(const sj_paths *t, int32_t node, sj_value *out) {
    for (int32_t c = t->nodes[node].first_child; c >= 0; c = t->nodes[c].next_sibling) {
        if (t->nodes[c].slot >= 0) out[t->nodes[c].slot].type = SJ_MISSING;
        if (t->nodes[c].first_child >= 0) clear_subtree(t, c, out);
    }
}

/* Key bytes past the first 8 (n > 0 of them): trie key a against input b. The loads may reach
 * back into the first 8 bytes, which are already known to be equal. */
static inline int same_tail(const uint8_t *a, const uint8_t *b, size_t n) {
    if (n <= 8) return load64(a + n - 8) == load64(b + n - 8);
    if (n <= 16) return load64(a) == load64(b) && load64(a + n - 8) == load64(b + n - 8);
    return memcmp(a, b, n) == 0;
}

/* The child of node whose key is the input bytes [k, k + klen) (still escaped if esc), or -1.
 * bend is the end of the input. */
static inline int32_t match_child(const sj_paths *t, int32_t node, const uint8_t *k, size_t klen, int esc,
                                  const uint8_t *bend) {
    if (LIKELY(!esc && t->indexed == t->nnodes)) {
        uint64_t head = key_head(k, klen, bend);
        const sj_slot *tab = t->slots + t->tstart[node];
        uint32_t mask = t->tmask[node];
        for (uint32_t h = head_hash(head, klen) & mask;; h = (h + 1) & mask) {
            int32_t c = tab[h].child;
            if (c < 0) return -1;
            if (tab[h].head == head && tab[h].len == klen) {
                if (klen <= 8) return c;
                const sj_node *nd = &t->nodes[c];
                if (same_tail(t->keys + nd->key_off + 8, k + 8, klen - 8)) return c;
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
