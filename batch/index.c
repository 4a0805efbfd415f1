/* SPDX-License-Identifier: MIT */
/*
 * batch/index.c - the lookup index in front of the per-entity hash tables.
 * uthash keeps chains of up to ten nodes per bucket, and on the per-record
 * path every step of a chain is a cache miss; this open-addressing table of
 * (64-bit hash, node) pairs, at most half full, finds a node with one miss
 * in the slot array (hash and node pointer share a slot) and one in the
 * node. The uthash tables stay the owners
 * (iteration, sorting, deletion); the index only finds.
 */
#include <stdlib.h>
#include <string.h>

#include "int.h"

void
batch_index_fini(batch_index *ix)
{
	free(ix->slots);
	memset(ix, 0, sizeof *ix);
}

static vigil_err
index_grow(batch_index *ix)
{
	size_t ncap = ix->cap ? ix->cap * 2 : 1024;
	batch_index_slot *ns = calloc(ncap, sizeof *ns);

	if (ns == NULL)
		return VIGIL_ENOMEM;
	for (size_t i = 0; i < ix->cap; i++) {
		size_t j;

		if (ix->slots[i].h == 0)
			continue;
		j = batch_index_slot_of(ix->slots[i].h, ncap);
		while (ns[j].h != 0)
			j = (j + 1) & (ncap - 1);
		ns[j] = ix->slots[i];
	}
	free(ix->slots);
	ix->slots = ns;
	ix->cap = ncap;
	return VIGIL_OK;
}


void *
batch_index_peek(const batch_index *ix, uint64_t h)
{
	if (ix->cap == 0)
		return NULL;
	h = h ? h : 1;
	for (size_t j = batch_index_slot_of(h, ix->cap); ix->slots[j].h != 0;
	    j = (j + 1) & (ix->cap - 1))
		if (ix->slots[j].h == h)
			return ix->slots[j].v;
	return NULL;
}

vigil_err
batch_index_put(batch_index *ix, uint64_t h, void *node)
{
	size_t j;
	vigil_err rv;

	if (2 * (ix->n + 1) > ix->cap) {
		rv = index_grow(ix);
		if (rv != VIGIL_OK)
			return rv;
	}
	h = h ? h : 1;
	j = batch_index_slot_of(h, ix->cap);
	while (ix->slots[j].h != 0)
		j = (j + 1) & (ix->cap - 1);
	ix->slots[j].h = h;
	ix->slots[j].v = node;
	ix->n++;
	return VIGIL_OK;
}
