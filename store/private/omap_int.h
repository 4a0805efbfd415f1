/* SPDX-License-Identifier: MIT */
/*
 * store/private/omap_int.h - private to the live state (live.c, dedupe.c):
 * the writes of the keyed tables of cards, entities and idempotency
 * records (their layout and probe: table_view.h). Inline: on the scoring
 * path.
 */
#ifndef VIGIL_STORE_OMAP_INT_H
#define VIGIL_STORE_OMAP_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "table_view.h"
#include "vigil.h"

/* h: the slot hash of k (okey_slot_hash(k->h)); k itself is not read, so
 * a rehash does not touch every object. */
static inline void
omap_place(omap *m, uint64_t h, okey *k)
{
	uint32_t i = omap_home(m, h);

	while (m->sl[i].h != 0)
		i = (i + 1) & m->mask;
	m->sl[i].h = h;
	m->sl[i].v = k;
}

/* Inserts k (not present); grows at 3/4 load. VIGIL_ENOMEM leaves m as is. */
static inline vigil_err
omap_insert(omap *m, okey *k)
{
	if (m->sl == NULL || (uint64_t)(m->n + 1) * 4 > (uint64_t)(m->mask + 1) * 3) {
		uint64_t ncap = m->sl != NULL ? ((uint64_t)m->mask + 1) * 2 : 16;
		omap     nm = { 0 };

		if (ncap > (1ULL << 31))
			return VIGIL_ELIMIT;
		nm.sl = calloc(ncap, sizeof *nm.sl);
		if (nm.sl == NULL)
			return VIGIL_ENOMEM;
		nm.mask = (uint32_t)(ncap - 1);
		if (m->sl != NULL) {
			for (uint64_t i = 0; i <= m->mask; i++)
				if (m->sl[i].h != 0)
					omap_place(&nm, m->sl[i].h, m->sl[i].v);
		}
		nm.n = m->n;
		free(m->sl);
		/* Atomic stores: vel_prefetch reads these two without the lock. */
		__atomic_store_n(&m->sl, nm.sl, __ATOMIC_RELAXED);
		__atomic_store_n(&m->mask, nm.mask, __ATOMIC_RELAXED);
		if (m->dir != NULL) {
			__atomic_store_n(&m->dir->sl, nm.sl, __ATOMIC_RELAXED);
			__atomic_store_n(&m->dir->mask, nm.mask, __ATOMIC_RELAXED);
		}
		m->n = nm.n;
	}
	omap_place(m, okey_slot_hash(k->h), k);
	m->n++;
	return VIGIL_OK;
}

/* Empties slot i, shifting later members of its cluster back (no tombstones). */
static inline void
omap_remove_at(omap *m, uint32_t i)
{
	uint32_t j = i;

	for (;;) {
		uint32_t k;
		bool     stays;

		j = (j + 1) & m->mask;
		if (m->sl[j].h == 0)
			break;
		k = omap_home(m, m->sl[j].h);
		/* Member j stays if its home lies cyclically in (i, j]. */
		stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
		if (!stays) {
			m->sl[i].h = m->sl[j].h;
			m->sl[i].v = m->sl[j].v;
			i = j;
		}
	}
	m->sl[i].h = 0;
	m->sl[i].v = NULL;
	m->n--;
}

static inline void
omap_remove(omap *m, const okey *k)
{
	for (uint32_t i = omap_home(m, okey_slot_hash(k->h));; i = (i + 1) & m->mask) {
		if (m->sl[i].v == k) {
			omap_remove_at(m, i);
			return;
		}
		if (m->sl[i].h == 0)
			return;
	}
}

static inline void
omap_fini(omap *m)
{
	free(m->sl);
	if (m->dir != NULL)
		memset(m->dir, 0, sizeof *m->dir);
	memset(m, 0, sizeof *m);
}

static inline void
okey_set(okey *k, uint64_t h, const char *id, size_t len)
{
	k->h = h;
	k->len = (uint8_t)len;
	memcpy(k->id, id, len);
	k->id[len] = '\0';
}

#endif /* VIGIL_STORE_OMAP_INT_H */
