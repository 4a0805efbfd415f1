/* SPDX-License-Identifier: MIT */
/*
 * store/private/live_help_int.h - private to the live state: the windows'
 * lengths and the small helpers live.c (apply, expiry) and velocity.c
 * (aggregates, features) share: distinct-count sets, countries, a card's
 * or an entity's window bounds, the card lookup and an entity's distinct
 * cards. Inline: each is on the scoring path.
 */
#ifndef VIGIL_STORE_LIVE_HELP_INT_H
#define VIGIL_STORE_LIVE_HELP_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "live_obj_int.h"

#define MS_1M  60000LL
#define MS_10M (10 * MS_1M)
#define MS_1H  (60 * MS_1M)
#define MS_24H (24 * MS_1H)
#define MS_7D  LIVE_WINDOW_MAX_MS

/* The hash the tables key an id by (keys.c, live_observe). */
static inline uint64_t
id_hash(const char *id, size_t len)
{
	return XXH3_64bits(id, len);
}

/* Starts an empty set for at most n additions. */
static inline void
set_reset(live_scratch *sc, uint32_t n)
{
	uint32_t cap = 64;

	while (cap < LIVE_SET_SLOTS && cap < 2 * (uint64_t)n)
		cap *= 2;
	sc->mask = cap - 1;
	if (++sc->cur == 0) {
		for (uint32_t i = 0; i < LIVE_SET_SLOTS; i++)
			sc->slot[i].stamp = 0;
		sc->cur = 1;
	}
	sc->size = 0;
}

/* Adds k; the set saturates at 3/4 of its slots (distinct counts cap there:
 * 12288 with LIVE_SET_SLOTS slots). */
static inline void
set_add(live_scratch *sc, uint64_t k)
{
	uint32_t i = (uint32_t)(k ^ (k >> 29)) & sc->mask;

	if (sc->size >= (sc->mask + 1) / 4 * 3)
		return;
	while (sc->slot[i].stamp == sc->cur) {
		if (sc->slot[i].key == k)
			return;
		i = (i + 1) & sc->mask;
	}
	sc->slot[i].stamp = sc->cur;
	sc->slot[i].key = k;
	sc->size++;
}

static inline int
country_index(const char cc[2])
{
	if (cc[0] < 'A' || cc[0] > 'Z' || cc[1] < 'A' || cc[1] > 'Z')
		return -1;
	return (cc[0] - 'A') * 26 + (cc[1] - 'A');
}

typedef struct ccset {
	uint64_t w[11]; /* 26 * 26 = 676 bits */
	unsigned n;     /* bits set (counted as set: no popcount call per word) */
} ccset;

static inline void
ccset_add(ccset *s, int idx)
{
	if (idx >= 0) {
		uint64_t b = 1ULL << (idx & 63);

		s->n += (s->w[idx >> 6] & b) == 0;
		s->w[idx >> 6] |= b;
	}
}

static inline unsigned
ccset_count(const ccset *s)
{
	return s->n;
}

/* First index in ev[head .. head+n) whose time is > t (upper bound). */
static inline uint32_t
card_upper(const live_card *c, int64_t t)
{
	uint32_t lo = 0, hi = c->n;

	/* Most lookups and applies are at or after the newest event: one probe
	 * of the newest line instead of a search over cold ones. */
	if (hi == 0 || c->ev[c->head + hi - 1].t <= t)
		return hi;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (c->ev[c->head + mid].t <= t)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static inline uint32_t
ent_upper(const live_ent *e, int64_t t)
{
	uint32_t lo = 0, hi = e->n;

	if (hi == 0 || e->ev[e->head + hi - 1].t <= t)
		return hi;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (e->ev[e->head + mid].t <= t)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static inline live_card *
card_find(live *lv, uint32_t stripe, const char *id, size_t len, uint64_t h)
{
	okey *k = omap_find(&lv->cards[stripe].map, h, id, len, offsetof(live_card, k));

	return k != NULL ? CARD_OF(k) : NULL;
}

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

#endif /* VIGIL_STORE_LIVE_HELP_INT_H */
