/* SPDX-License-Identifier: MIT */
/*
 * batch/index.h - private to batch/: the lookup index (index.c) from an
 * entity's key to its accumulator node, an open-addressing table of
 * (hash, node) slots whose find is inline on the per-record path.
 */
#ifndef VIGIL_BATCH_INDEX_H
#define VIGIL_BATCH_INDEX_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <xxhash.h>

#include "vigil.h"

typedef struct batch_index_slot {
	uint64_t h; /* hash of the key; 0 = empty slot (a hash of 0 is kept as 1) */
	void    *v; /* the node, owned elsewhere */
} batch_index_slot;

typedef struct batch_index {
	batch_index_slot *slots;
	size_t            cap, n; /* cap: a power of two, or 0 */
} batch_index;

/* The index hash is xxh64 with seed 0, the hash the outputs already use
 * (card partition, kept samples by txn_id, usual merchants): one hash per
 * key and record serves both. */
static inline uint64_t
batch_index_hash(const char *key, size_t len)
{
	return XXH64(key, len, 0);
}

/* The first slot of h. Fibonacci-mixed: a worker's cards all share
 * h mod T, so the low bits alone would leave slots unused. */
static inline size_t
batch_index_slot_of(uint64_t h, size_t cap)
{
	return (size_t)((h * 0x9e3779b97f4a7c15ull) >> 32) & (cap - 1);
}

/* Starts loading the slot h probes first, so several lookups of one record
 * wait for memory together rather than one after the other. */
static inline void
batch_index_prefetch(const batch_index *ix, uint64_t h)
{
	if (ix->cap != 0)
		__builtin_prefetch(&ix->slots[batch_index_slot_of(h ? h : 1, ix->cap)]);
}

/* The node whose key (keyof(node), NUL-terminated) is key[0..len), or NULL.
 * Inline, so that keyof, a constant at every call, is inlined too. */
static inline void *
batch_index_find(const batch_index *ix, uint64_t h, const char *key, size_t len,
    const char *(*keyof)(const void *node))
{
	size_t j;

	if (ix->cap == 0)
		return NULL;
	h = h ? h : 1;
	for (j = batch_index_slot_of(h, ix->cap); ix->slots[j].h != 0; j = (j + 1) & (ix->cap - 1)) {
		if (ix->slots[j].h == h) {
			const char *k = keyof(ix->slots[j].v);

			if (memcmp(k, key, len) == 0 && k[len] == '\0')
				return ix->slots[j].v;
		}
	}
	return NULL;
}
/* The node of the first slot holding hash h, without touching any node
 * (for prefetching it); NULL if none. */
void     *batch_index_peek(const batch_index *ix, uint64_t h);
/* Adds a node known to be absent. */
vigil_err batch_index_put(batch_index *ix, uint64_t h, void *node);
void      batch_index_fini(batch_index *ix);

#endif /* VIGIL_BATCH_INDEX_H */
