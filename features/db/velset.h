/* SPDX-License-Identifier: MIT */
/*
 * features/db/velset.h - the distinct-count set of the velocity features
 * (velocity.c): how many distinct merchants a card paid in the last hour and
 * day, how many distinct cards an entity saw in a window. One set per
 * scoring thread is reused by every count of a score: a slot is in the
 * current set when its stamp is the current one, so starting a new set
 * costs nothing; only the first 2n slots (n = events that may be added) are
 * used, so a small set stays in L1.
 *
 * Hand-written rather than uthash, the project's hash table (common/
 * hashtab.h), by this figure: a count over 64 events drawn from 24 distinct
 * keys takes 0.38 us here against 1.20 us in uthash (a malloc per distinct
 * key, then a HASH_DEL and a free each); 7.3 against 41.5 us over 1,024
 * events of 600 keys (bench-omap --set-events N --set-keys K, release,
 * median of 7, 2026-11-26; docs/BENCHMARKS.md).
 *
 * Keys are 64-bit hashes (xxh3 of the id); equal hashes count once.
 */
#ifndef VIGIL_FEATURES_DB_VELSET_H
#define VIGIL_FEATURES_DB_VELSET_H

#include <stdint.h>

#define VEL_SET_SLOTS 16384 /* saturates at 3/4: distinct counts cap at 12288 */

typedef struct vel_set {
	struct {
		uint64_t key;
		uint32_t stamp;
	} slot[VEL_SET_SLOTS];
	uint32_t cur, size, mask;
} vel_set;

/* Starts an empty set for at most n additions (a zeroed set is valid). */
static inline void
vel_set_reset(vel_set *s, uint32_t n)
{
	uint32_t cap = 64;

	while (cap < VEL_SET_SLOTS && cap < 2 * (uint64_t)n)
		cap *= 2;
	s->mask = cap - 1;
	if (++s->cur == 0) {
		for (uint32_t i = 0; i < VEL_SET_SLOTS; i++)
			s->slot[i].stamp = 0;
		s->cur = 1;
	}
	s->size = 0;
}

/* Adds k; the set saturates at 3/4 of its slots. */
static inline void
vel_set_add(vel_set *s, uint64_t k)
{
	uint32_t i = (uint32_t)(k ^ (k >> 29)) & s->mask;

	if (s->size >= (s->mask + 1) / 4 * 3)
		return;
	while (s->slot[i].stamp == s->cur) {
		if (s->slot[i].key == k)
			return;
		i = (i + 1) & s->mask;
	}
	s->slot[i].stamp = s->cur;
	s->slot[i].key = k;
	s->size++;
}

/* The distinct keys added since the last reset. */
static inline uint32_t
vel_set_size(const vel_set *s)
{
	return s->size;
}

#endif
