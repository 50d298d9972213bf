/* sluice_json: the path trie and path lookup on valid input. See sluice_json.h. */
#include "paths.h"

#include <limits.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ================================================================ path trie */

static void free_index(sj_paths *t) {
    free(t->slots); free(t->tstart); free(t->tmask);
    t->slots = NULL; t->tstart = NULL; t->tmask = NULL;
    t->indexed = 0;
}

/* Builds every node's child table: a power of two at least twice its children (so a lookup
 * that misses stops at an empty entry soon). Without memory the sibling lists still work. */
static void rebuild_index(sj_paths *t) {
    free_index(t);
    size_t n = t->nnodes, total = 0;
    uint32_t *tstart = malloc(n * sizeof *tstart);
    uint32_t *tmask = malloc(n * sizeof *tmask);
    if (!tstart || !tmask) {
        free(tstart); free(tmask);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        size_t cnt = 0;
        for (int32_t c = t->nodes[i].first_child; c >= 0; c = t->nodes[c].next_sibling) cnt++;
        size_t size = 4;
        while (size < 2 * cnt) size *= 2;
        tstart[i] = (uint32_t)total;
        tmask[i] = (uint32_t)(size - 1);
        total += size;
    }
    sj_slot *slots = malloc(total * sizeof *slots);
    if (!slots) {
        free(tstart); free(tmask);
        return;
    }
    for (size_t i = 0; i < total; i++) slots[i] = (sj_slot){0, 0, -1};
    for (size_t i = 0; i < n; i++) {
        sj_slot *tab = slots + tstart[i];
        for (int32_t c = t->nodes[i].first_child; c >= 0; c = t->nodes[c].next_sibling) {
            const uint8_t *k = t->keys + t->nodes[c].key_off;
            size_t klen = t->nodes[c].key_len;
            uint64_t head = key_head(k, klen, k + klen + SJ_KEY_PAD);
            uint32_t h = head_hash(head, klen) & tmask[i];
            while (tab[h].child >= 0) h = (h + 1) & tmask[i];
            tab[h] = (sj_slot){head, (uint32_t)klen, c};
        }
    }
    t->slots = slots; t->tstart = tstart; t->tmask = tmask;
    t->indexed = n;
}

sj_paths *sj_paths_new(void) {
    sj_paths *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->cap_nodes = 8;
    t->nodes = malloc(t->cap_nodes * sizeof *t->nodes);
    if (!t->nodes) { free(t); return NULL; }
    t->nodes[0] = (sj_node){0, 0, -1, -1, -1}; /* root = the top-level object */
    t->nnodes = 1;
    return t;
}

void sj_paths_free(sj_paths *t) {
    if (!t) return;
    free_index(t);
    free(t->nodes);
    free(t->keys);
    free(t);
}

size_t sj_paths_count(const sj_paths *t) { return t ? (size_t)t->nslots : 0; }

static int32_t add_child(sj_paths *t, int32_t parent, const uint8_t *k, size_t klen) {
    for (int32_t c = t->nodes[parent].first_child; c >= 0; c = t->nodes[c].next_sibling) {
        const sj_node *nd = &t->nodes[c];
        if (nd->key_len == klen && (klen == 0 || memcmp(t->keys + nd->key_off, k, klen) == 0)) return c;
    }
    if (klen > UINT32_MAX || t->nkeys + klen > UINT32_MAX) return -1;
    if (t->nnodes == t->cap_nodes) {
        size_t nc = t->cap_nodes * 2;
        sj_node *nn = realloc(t->nodes, nc * sizeof *nn);
        if (!nn) return -1;
        t->nodes = nn;
        t->cap_nodes = nc;
    }
    if (t->nkeys + klen + SJ_KEY_PAD > t->cap_keys) {
        size_t nc = t->cap_keys ? t->cap_keys : 64;
        while (nc < t->nkeys + klen + SJ_KEY_PAD) nc *= 2;
        uint8_t *nk = realloc(t->keys, nc);
        if (!nk) return -1;
        memset(nk + t->cap_keys, 0, nc - t->cap_keys);
        t->keys = nk;
        t->cap_keys = nc;
    }
    if (klen) memcpy(t->keys + t->nkeys, k, klen);
    int32_t id = (int32_t)t->nnodes++;
    t->nodes[id] = (sj_node){(uint32_t)t->nkeys, (uint32_t)klen, -1, -1, -1};
    t->nkeys += klen;
    /* Append at the end of the sibling list (keeps insertion order). */
    int32_t *link = &t->nodes[parent].first_child;
    while (*link >= 0) link = &t->nodes[*link].next_sibling;
    *link = id;
    return id;
}

int sj_paths_add(sj_paths *t, const uint8_t *const *segs, const size_t *seg_lens, size_t nseg) {
    if (!t || nseg == 0 || nseg > SJ_MAX_PATH_SEGMENTS) return -1;
    int32_t node = 0;
    for (size_t i = 0; i < nseg; i++) {
        node = add_child(t, node, segs[i], seg_lens[i]);
        if (node < 0) return -1;
    }
    if (t->nodes[node].slot < 0) t->nodes[node].slot = t->nslots++;
    rebuild_index(t);
    return t->nodes[node].slot;
}

/* p at '{'. Fills slots of node's subtree. Returns pointer past the object (or end).
 * Recursion depth is bounded by the trie's depth, not by the input. `left` counts the slots
 * still to find when the input's keys are known to be distinct (each slot is then found at most
 * once, so the walk stops at the last one); NULL scans everything (a later duplicate key
 * replaces an earlier one). */
static const uint8_t *find_in_object(const sj_paths *t, int32_t node, const uint8_t *base, const uint8_t *p,
                                     const uint8_t *end, sj_value *out, int *left) {
    p = skip_ws(p + 1, end);
    if (p >= end) return end;
    if (*p == '}') return p + 1;
    for (;;) {
        if (p >= end || *p != '"') return end;
        int esc = 0;
        const uint8_t *k = p + 1;
        p = skip_string(k, end, &esc);
        if (p - 1 < k) return end;
        size_t klen = (size_t)(p - 1 - k);
        p = skip_ws(p, end);
        if (p >= end || *p != ':') return end;
        p = skip_ws(p + 1, end);
        if (p >= end) return end;
        int32_t child = match_child(t, node, k, klen, esc, end);
        if (child < 0) {
            p = skip_value(p, end);
        } else {
            const sj_node *nd = &t->nodes[child];
            const uint8_t *v = p;
            int ty = type_of(*v);
            if (nd->first_child >= 0) {
                clear_subtree(t, child, out); /* a later duplicate key replaces an earlier one */
                if (ty == SJ_OBJECT) p = find_in_object(t, child, base, v, end, out, left);
                else p = skip_value(v, end);
            } else {
                p = skip_value(v, end);
            }
            if (nd->slot >= 0) {
                sj_value *o = &out[nd->slot];
                o->type = ty;
                o->off = (size_t)(v - base);
                o->len = (size_t)(p - v);
                if (left && --*left == 0) return end; /* every slot found: stop the whole walk */
            }
        }
        p = skip_ws(p, end);
        if (p >= end) return end;
        if (*p == ',') {
            p = skip_ws(p + 1, end);
            continue;
        }
        if (*p == '}') return p + 1;
        return end;
    }
}

static void find_many(const sj_paths *t, const uint8_t *p, size_t n, sj_value *out, int *left) {
    if (!t) return;
    for (int i = 0; i < t->nslots; i++) out[i] = (sj_value){SJ_MISSING, 0, 0, 0};
    if (!p || (left && *left == 0)) return;
    const uint8_t *end = p + n;
    const uint8_t *q = skip_ws(p, end);
    if (q >= end || *q != '{') return;
    find_in_object(t, 0, p, q, end, out, left);
}

void sj_find_many(const sj_paths *t, const uint8_t *p, size_t n, sj_value *out) { find_many(t, p, n, out, NULL); }

void sj_find_many_distinct(const sj_paths *t, const uint8_t *p, size_t n, sj_value *out) {
    int left = t ? t->nslots : 0;
    find_many(t, p, n, out, &left);
}

/* Finds the last member named key in the object at p ('{'). */
static int find_member(const uint8_t *base, const uint8_t *p, const uint8_t *end, const uint8_t *key,
                       size_t key_len, sj_value *out) {
    out->type = SJ_MISSING;
    p = skip_ws(p + 1, end);
    if (p >= end || *p == '}') return SJ_MISSING;
    for (;;) {
        if (p >= end || *p != '"') break;
        int esc = 0;
        const uint8_t *k = p + 1;
        p = skip_string(k, end, &esc);
        if (p - 1 < k) break;
        size_t klen = (size_t)(p - 1 - k);
        p = skip_ws(p, end);
        if (p >= end || *p != ':') break;
        p = skip_ws(p + 1, end);
        if (p >= end) break;
        const uint8_t *v = p;
        p = skip_value(p, end);
        int hit = esc ? sj_string_eq(k - 1, klen + 2, key, key_len)
                      : (klen == key_len && (klen == 0 || memcmp(k, key, klen) == 0));
        if (hit) {
            out->type = type_of(*v);
            out->off = (size_t)(v - base);
            out->len = (size_t)(p - v);
        }
        p = skip_ws(p, end);
        if (p >= end || *p != ',') break;
        p = skip_ws(p + 1, end);
    }
    return out->type;
}

int sj_find(const uint8_t *p, size_t n, const char *path, size_t path_len, sj_value *out) {
    sj_value v = {SJ_MISSING, 0, 0, 0};
    if (out) *out = v;
    if (!p || !out || !path) return SJ_MISSING;
    const uint8_t *end = p + n;
    const uint8_t *q = skip_ws(p, end);
    if (q >= end || *q != '{') return SJ_MISSING;
    const uint8_t *seg = (const uint8_t *)path, *pend = (const uint8_t *)path + path_len;
    for (;;) {
        const uint8_t *dot = memchr(seg, '.', (size_t)(pend - seg));
        const uint8_t *segend = dot ? dot : pend;
        if (find_member(p, q, end, seg, (size_t)(segend - seg), &v) == SJ_MISSING) return SJ_MISSING;
        if (!dot) break;
        if (v.type != SJ_OBJECT) return SJ_MISSING;
        q = p + v.off;
        seg = dot + 1;
    }
    *out = v;
    return v.type;
}
