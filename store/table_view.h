/* SPDX-License-Identifier: MIT */
/*
 * store/table_view.h - the live state's two kinds of hash table as a
 * lookup uses them (live_view.h says for whom): the keyed tables' probe
 * (cards, entities, idempotency records; inserts and removals are in
 * private/omap_int.h) and an entity's distinct-cards map, which a lookup
 * moves to its window and live.c keeps in step with the events applied
 * and dropped. Inline: each is on the scoring path.
 */
#ifndef VIGIL_STORE_TABLE_VIEW_H
#define VIGIL_STORE_TABLE_VIEW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vigil.h"

/* ---------------------------------------------------------------------- */
/* Keyed tables: linear probing over (hash, object) slots. Every keyed object
 * holds an okey (cards and entities first, idempotency records last, cut
 * after the id's NUL), so a probe compares 8-byte hashes in one contiguous
 * array and touches an object only on a full 64-bit hash match. Only h,
 * len and id[0..len] of an okey are ever read. Inserts and removals:
 * private/omap_int.h. */

typedef struct okey {
	uint64_t h; /* XXH3 of the id */
	uint8_t  len;
	char     id[VIGIL_ID_MAX + 1];
} okey;

typedef struct oslot {
	uint64_t h; /* slot hash, 0 = empty */
	okey    *v;
} oslot;

/* A copy of a table's array and mask, kept in a dense array per table
 * kind (16 bytes a stripe, not a stripe's 64) for vel_prefetch (features/db/velocity.c), which
 * reads it without the lock: fewer lines to miss on before the slot
 * prefetches can start. */
typedef struct omap_dir {
	oslot   *sl;
	uint32_t mask;
} omap_dir;

typedef struct omap {
	oslot   *sl; /* hash and object side by side: one cache line per probe */
	uint32_t mask, n;
	omap_dir *dir; /* kept equal to sl and mask */
} omap;

static inline uint64_t
okey_slot_hash(uint64_t h)
{
	return h ? h : 1;
}

/* Stripes are chosen by the low bits; slots use the high half. */
static inline uint32_t
omap_home(const omap *m, uint64_t h)
{
	return (uint32_t)(h >> 32) & m->mask;
}

/* back: offset of the okey in its object. On a hash match the object's
 * first line (its hot fields) is prefetched before the key line is read,
 * so the two misses overlap. */
static inline okey *
omap_find(const omap *m, uint64_t h, const char *id, size_t len, size_t back)
{
	if (m->sl == NULL)
		return NULL;
	h = okey_slot_hash(h);
	for (uint32_t i = omap_home(m, h);; i = (i + 1) & m->mask) {
		uint64_t x = m->sl[i].h;

		if (x == 0)
			return NULL;
		if (x == h) {
			okey *k = m->sl[i].v;

			__builtin_prefetch((char *)k - back);
			__asm__ volatile("" ::: "memory"); /* issue it before the key load */
			if (k->len == len && memcmp(k->id, id, len) == 0)
				return k;
		}
	}
}

/* ---------------------------------------------------------------------- */
/* Distinct cards of an entity. */

/*
 * Distinct cards among the entity's stored events with time in (lo, hi]:
 * a count per card hash (open addressing, a slot is empty when cnt is 0,
 * deletion by backward shift). A lookup at t moves the range to
 * (t - window, t] by adding and removing only the events that cross a
 * bound (found by binary search in the time-ordered array); applying an
 * event inside the range adds it, dropping one removes it. For traffic in
 * event-time order each event crosses each bound once. (Not uthash: its
 * table of counts, a malloc'd entry per distinct card, takes 517 ns an
 * event to this map's 242 in bench/store/bench-omap, 100 busy entities of
 * 20,000 events each, and 761 against 161 with 1,000 entities of 1,000,
 * 2026-11-26.)
 */
typedef struct dm_slot {
	uint64_t ch;
	uint32_t cnt;
} dm_slot;

typedef struct ent_dmap {
	int64_t  lo, hi;
	dm_slot *sl;
	uint32_t mask, ndistinct;
} ent_dmap;

static inline void
dmap_free(ent_dmap *m)
{
	if (m == NULL)
		return;
	free(m->sl);
	free(m);
}

static inline uint32_t
dmap_home(const ent_dmap *m, uint64_t ch)
{
	return (uint32_t)(ch ^ (ch >> 32)) & m->mask;
}

static inline vigil_err
dmap_grow(ent_dmap *m)
{
	uint64_t ncap = m->sl != NULL ? ((uint64_t)m->mask + 1) * 2 : 64;
	dm_slot *old = m->sl;
	uint32_t omask = m->mask;

	if (ncap > (1u << 24))
		return VIGIL_ELIMIT;
	m->sl = calloc(ncap, sizeof *m->sl);
	if (m->sl == NULL) {
		m->sl = old;
		return VIGIL_ENOMEM;
	}
	m->mask = (uint32_t)(ncap - 1);
	for (uint64_t i = 0; old != NULL && i <= omask; i++) {
		if (old[i].cnt != 0) {
			uint32_t j = dmap_home(m, old[i].ch);

			while (m->sl[j].cnt != 0)
				j = (j + 1) & m->mask;
			m->sl[j] = old[i];
		}
	}
	free(old);
	return VIGIL_OK;
}

/* One more event of card ch in the range. */
static inline vigil_err
dmap_add(ent_dmap *m, uint64_t ch)
{
	uint32_t i;

	if (m->sl == NULL || (uint64_t)(m->ndistinct + 1) * 4 > ((uint64_t)m->mask + 1) * 3) {
		vigil_err rv = dmap_grow(m);

		if (rv != VIGIL_OK)
			return rv;
	}
	for (i = dmap_home(m, ch); m->sl[i].cnt != 0; i = (i + 1) & m->mask) {
		if (m->sl[i].ch == ch) {
			m->sl[i].cnt++;
			return VIGIL_OK;
		}
	}
	m->sl[i].ch = ch;
	m->sl[i].cnt = 1;
	m->ndistinct++;
	return VIGIL_OK;
}

/* One event of card ch fewer in the range (it was counted). */
static inline void
dmap_sub(ent_dmap *m, uint64_t ch)
{
	uint32_t i, j;

	for (i = dmap_home(m, ch); m->sl[i].cnt != 0; i = (i + 1) & m->mask)
		if (m->sl[i].ch == ch)
			break;
	if (m->sl[i].cnt == 0)
		return; /* not counted: cannot happen while the map is consistent */
	if (--m->sl[i].cnt > 0)
		return;
	m->ndistinct--;
	/* Backward-shift deletion, as omap_remove_at. */
	for (j = i;;) {
		uint32_t k;
		bool     stays;

		j = (j + 1) & m->mask;
		if (m->sl[j].cnt == 0)
			break;
		k = dmap_home(m, m->sl[j].ch);
		stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
		if (!stays) {
			m->sl[i] = m->sl[j];
			i = j;
		}
	}
	m->sl[i].cnt = 0;
}

#endif /* VIGIL_STORE_TABLE_VIEW_H */
