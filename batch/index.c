/* SPDX-License-Identifier: MIT */
/*
 * batch/index.c - the lookup index in front of the per-entity hash tables.
 * uthash keeps chains of up to ten nodes per bucket, and on the per-record
 * path every step of a chain is a cache miss; this open-addressing table of
 * (64-bit hash, node) pairs, at most half full, finds a node with one miss
 * in the slot array and one in the node. The uthash tables stay the owners
 * (iteration, sorting, deletion); the index only finds.
 */
#include <stdlib.h>
#include <string.h>

#include "int.h"

void
batch_index_fini(batch_index *ix)
{
	free(ix->hs);
	free(ix->vs);
	memset(ix, 0, sizeof *ix);
}

static vigil_err
index_grow(batch_index *ix)
{
	size_t ncap = ix->cap ? ix->cap * 2 : 1024;
	uint64_t *hs = calloc(ncap, sizeof *hs);
	void **vs = malloc(ncap * sizeof *vs);

	if (hs == NULL || vs == NULL) {
		free(hs);
		free(vs);
		return VIGIL_ENOMEM;
	}
	for (size_t i = 0; i < ix->cap; i++) {
		size_t j;

		if (ix->hs[i] == 0)
			continue;
		j = (size_t)ix->hs[i] & (ncap - 1);
		while (hs[j] != 0)
			j = (j + 1) & (ncap - 1);
		hs[j] = ix->hs[i];
		vs[j] = ix->vs[i];
	}
	free(ix->hs);
	free(ix->vs);
	ix->hs = hs;
	ix->vs = vs;
	ix->cap = ncap;
	return VIGIL_OK;
}

void *
batch_index_find(const batch_index *ix, uint64_t h, const char *key, size_t len,
    const char *(*keyof)(const void *node))
{
	size_t j;

	if (ix->cap == 0)
		return NULL;
	h = h ? h : 1;
	for (j = (size_t)h & (ix->cap - 1); ix->hs[j] != 0; j = (j + 1) & (ix->cap - 1)) {
		if (ix->hs[j] == h) {
			const char *k = keyof(ix->vs[j]);

			if (memcmp(k, key, len) == 0 && k[len] == '\0')
				return ix->vs[j];
		}
	}
	return NULL;
}

void *
batch_index_peek(const batch_index *ix, uint64_t h)
{
	if (ix->cap == 0)
		return NULL;
	h = h ? h : 1;
	for (size_t j = (size_t)h & (ix->cap - 1); ix->hs[j] != 0; j = (j + 1) & (ix->cap - 1))
		if (ix->hs[j] == h)
			return ix->vs[j];
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
	j = (size_t)h & (ix->cap - 1);
	while (ix->hs[j] != 0)
		j = (j + 1) & (ix->cap - 1);
	ix->hs[j] = h;
	ix->vs[j] = node;
	ix->n++;
	return VIGIL_OK;
}
