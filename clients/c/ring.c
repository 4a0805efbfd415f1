/* SPDX-License-Identifier: MIT */
/*
 * clients/c/ring.c - consistent hashing with virtual nodes (see ring.h).
 * The points are sorted once at construction; a lookup is one XXH3 of the
 * key and a binary search. Equal point values (astronomically rare) are
 * ordered by node index so every client builds the same ring.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "ring.h"

typedef struct vc_point {
	uint64_t hash;
	uint32_t node;
} vc_point;

struct vc_ring {
	size_t   nnodes;
	size_t   npoints;
	vc_point points[];
};

static int
ring_point_cmp(const void *a, const void *b)
{
	const vc_point *x = a, *y = b;

	if (x->hash != y->hash)
		return x->hash < y->hash ? -1 : 1;
	return x->node < y->node ? -1 : x->node > y->node;
}

vc_ring *
vc_ring_new(const char *const *names, size_t n, uint32_t vnodes)
{
	vc_ring *r;
	size_t   k = 0;

	if (names == NULL || n == 0 || n > VC_RING_MAX_NODES || vnodes == 0 || vnodes > 4096)
		return NULL;
	r = malloc(sizeof *r + n * vnodes * sizeof(vc_point));
	if (r == NULL)
		return NULL;
	r->nnodes  = n;
	r->npoints = n * vnodes;
	for (size_t i = 0; i < n; i++) {
		for (uint32_t v = 0; v < vnodes; v++) {
			char buf[1100];
			int  len = snprintf(buf, sizeof buf, "%s#%u", names[i], v);

			if (len < 0 || (size_t) len >= sizeof buf) {
				free(r);
				return NULL;
			}
			r->points[k].hash   = XXH3_64bits(buf, (size_t) len);
			r->points[k++].node = (uint32_t) i;
		}
	}
	qsort(r->points, r->npoints, sizeof(vc_point), ring_point_cmp);
	return r;
}

void
vc_ring_free(vc_ring *r)
{
	free(r);
}

/* Index of the first point with hash >= h, wrapping to 0. */
static size_t
ring_search(const vc_ring *r, uint64_t h)
{
	size_t lo = 0, hi = r->npoints;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (r->points[mid].hash < h)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo == r->npoints ? 0 : lo;
}

size_t
vc_ring_owner(const vc_ring *r, const void *key, size_t len)
{
	return r->points[ring_search(r, XXH3_64bits(key, len))].node;
}

size_t
vc_ring_order(const vc_ring *r, const void *key, size_t len, uint8_t *ret_order)
{
	uint64_t seen = 0;
	size_t   found = 0;
	size_t   i = ring_search(r, XXH3_64bits(key, len));

	for (size_t step = 0; step < r->npoints && found < r->nnodes; step++) {
		uint32_t node = r->points[i].node;

		if (!(seen & (UINT64_C(1) << node))) {
			seen |= UINT64_C(1) << node;
			ret_order[found++] = (uint8_t) node;
		}
		if (++i == r->npoints)
			i = 0;
	}
	return found;
}
