/* SPDX-License-Identifier: MIT */
/*
 * features/db/velocity.c - the live velocity features of a lookup
 * (vel_features, velocity.h): a card's aggregates over its windows, an
 * entity's counts and distinct cards, the plan of which a feature mask
 * needs, and the prefetches that start the lookup's cache misses early.
 * On the live state's objects as store/live_view.h shows them, read-only
 * but for the distinct-card maps of entities, which move with the window;
 * store/live.c applies, undoes and expires.
 */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "live_view.h"
#include "slots.h"
#include "velocity.h"
#include "velset.h"

#define SMALL_AMOUNT  5.0   /* vel.card.small_count_10m: amount < 5.00 major units */

/* A thread's scratch: its distinct-count set (velset.h). */
struct vel_scratch {
	vel_set set;
};

vel_scratch *
vel_scratch_new(void)
{
	return calloc(1, sizeof(vel_scratch));
}

void
vel_scratch_free(vel_scratch *sc)
{
	free(sc);
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

typedef struct card_agg {
	uint32_t count[5];
	double   sum[5];
	uint32_t small_10m;
	uint32_t dm_1h, dm_24h;
	ccset    cc_24h, cc_7d;
	bool     country_seen, merchant_seen, device_seen;
	bool     has_prev, has_prev_loc;
	int64_t  prev_t, prev_loc_t;
	int64_t  prev_merchant_t; /* the newest event at this merchant (merchant_seen) */
	double   prev_lat, prev_lon;
} card_agg;

static const int64_t card_windows[5] = { MS_1M, MS_10M, MS_1H, MS_24H, MS_7D };

static void
card_aggregate(const live_card *c, vel_scratch *sc, const vigil_txn *txn, uint64_t mh,
    uint32_t dh, uint32_t plan, card_agg *a)
{
	int64_t  t = txn->event_time_ms;
	int      my_cc = txn->country[0] ? country_index(txn->country) : -1;
	bool     dm_1h_done = false;
	bool     want_dm = (plan & VEL_F_CARD_DM) != 0, want_cc = (plan & VEL_F_CARD_CC) != 0;
	uint32_t idx;

	memset(a, 0, sizeof *a);
	if (c == NULL) {
		vel_set_reset(&sc->set, 0);
		return;
	}
	idx = card_upper(c, t);
	vel_set_reset(&sc->set, want_dm ? idx : 0);
	for (uint32_t i = idx; i-- > 0;) {
		const live_event *e = &c->ev[c->head + i];
		int64_t           age = t - e->t;
		int               ci;

		if (age >= MS_7D)
			break;
		if (!a->has_prev) {
			a->has_prev = true;
			a->prev_t = e->t;
		}
		if (e->has_loc && !a->has_prev_loc) {
			a->has_prev_loc = true;
			a->prev_loc_t = e->t;
			a->prev_lat = e->lat;
			a->prev_lon = e->lon;
		}
		for (int w = 0; w < 5; w++) {
			if (age < card_windows[w]) {
				a->count[w]++;
				a->sum[w] += e->amount;
			}
		}
		if (age < MS_10M && e->amount < SMALL_AMOUNT)
			a->small_10m++;
		if (age >= MS_1H && !dm_1h_done) {
			a->dm_1h = vel_set_size(&sc->set);
			dm_1h_done = true;
		}
		if (want_dm && age < MS_24H)
			vel_set_add(&sc->set, e->mh);
		if (want_cc) {
			ci = country_index(e->cc);
			if (age < MS_24H)
				ccset_add(&a->cc_24h, ci);
			ccset_add(&a->cc_7d, ci);
			if (ci >= 0 && ci == my_cc)
				a->country_seen = true;
		}
		if (e->mh == mh && !a->merchant_seen) {
			a->merchant_seen = true;
			a->prev_merchant_t = e->t;
		}
		if (dh != 0 && e->dh == dh)
			a->device_seen = true;
	}
	if (!dm_1h_done)
		a->dm_1h = vel_set_size(&sc->set);
	a->dm_24h = vel_set_size(&sc->set);
	/* Folded minutes of a card over the cap: counts and sums only. */
	for (uint32_t j = c->nbk; j-- > 0;) {
		const live_bucket *b = &c->x->bk[j];
		int64_t            age = t - b->last_ms;

		if (b->last_ms > t)
			continue;
		if (age >= MS_7D)
			break;
		if (!a->has_prev || b->last_ms > a->prev_t) {
			a->has_prev = true;
			a->prev_t = b->last_ms;
		}
		for (int w = 0; w < 5; w++) {
			if (age < card_windows[w]) {
				a->count[w] += b->count;
				a->sum[w] += b->sum;
			}
		}
	}
}

/* Entity aggregation: count within w1 and w2, distinct cards within wd. */
typedef struct ent_agg {
	uint32_t c1, c2, distinct;
} ent_agg;

/* t - w, clamped (event times are not validated against overflow here). */
static int64_t
time_minus(int64_t t, int64_t w)
{
	return t < INT64_MIN + w ? INT64_MIN : t - w;
}

/* Events in (a, b] (a < b): indices [ent_upper(a), ent_upper(b)). */
static uint32_t
ent_count_range(const live_ent *e, int64_t a, int64_t b)
{
	return ent_upper(e, b) - ent_upper(e, a);
}

/* Adds (sign > 0) or removes the events with time in (a, b] to/from m. */
static vigil_err
dmap_range(ent_dmap *m, const live_ent *e, int64_t a, int64_t b, int sign)
{
	uint32_t i, end;

	if (a >= b)
		return VIGIL_OK;
	end = ent_upper(e, b);
	for (i = ent_upper(e, a); i < end; i++) {
		uint64_t ch = e->ev[e->head + i].ch;

		if (sign < 0) {
			dmap_sub(m, ch);
		} else {
			vigil_err rv = dmap_add(m, ch);

			if (rv != VIGIL_OK)
				return rv;
		}
	}
	return VIGIL_OK;
}

/* Moves e's distinct map to (lo, hi] (creating it if needed). VIGIL_ENOMEM:
 * the map is dropped (the caller scans instead; the next lookup retries). */
static vigil_err
ent_dmap_move(live_ent *e, int64_t lo, int64_t hi)
{
	ent_dmap *m = e->dm;
	vigil_err rv = VIGIL_OK;

	if (m != NULL && (lo >= m->hi || hi <= m->lo)) {
		/* Disjoint from the range held: start over. */
		if (m->sl != NULL)
			memset(m->sl, 0, ((size_t)m->mask + 1) * sizeof *m->sl);
		m->ndistinct = 0;
		m->lo = m->hi = lo;
	}
	if (m == NULL) {
		m = calloc(1, sizeof *m);
		if (m == NULL)
			return VIGIL_ENOMEM;
		m->lo = m->hi = lo;
		e->dm = m;
	}
	/* Grow first, then shrink, so (lo, hi] is always covered. */
	if (hi > m->hi) {
		rv = dmap_range(m, e, m->hi, hi, +1);
		m->hi = hi;
	}
	if (rv == VIGIL_OK && lo < m->lo) {
		rv = dmap_range(m, e, lo, m->lo, +1);
		m->lo = lo;
	}
	if (rv != VIGIL_OK) {
		dmap_free(m);
		e->dm = NULL;
		return rv;
	}
	if (hi < m->hi) {
		(void)dmap_range(m, e, hi, m->hi, -1);
		m->hi = hi;
	}
	if (lo > m->lo) {
		(void)dmap_range(m, e, m->lo, lo, -1);
		m->lo = lo;
	}
	return VIGIL_OK;
}

/* Distinct cards among e's events with time in (t - wd, t]. */
static uint32_t
ent_distinct(live_ent *e, vel_scratch *sc, int64_t t, int64_t wd)
{
	int64_t  lo = time_minus(t, wd);
	uint32_t a = ent_upper(e, lo), b = ent_upper(e, t);

	if (e->dm == NULL && b - a <= ENT_SCAN_MAX) {
		vel_set_reset(&sc->set, b - a);
		for (uint32_t i = a; i < b; i++)
			vel_set_add(&sc->set, e->ev[e->head + i].ch);
		return vel_set_size(&sc->set);
	}
	if (ent_dmap_move(e, lo, t) == VIGIL_OK)
		return e->dm->ndistinct;
	vel_set_reset(&sc->set, b - a); /* out of memory: scan (saturates, storage.md) */
	for (uint32_t i = a; i < b; i++)
		vel_set_add(&sc->set, e->ev[e->head + i].ch);
	return vel_set_size(&sc->set);
}

/* Counts are two binary searches in the time-ordered events; the distinct
 * count is kept by the entity's map: O(log n) per lookup however busy the
 * entity (amortized, for traffic roughly in event-time order). */
static void
ent_aggregate(live *lv, vel_scratch *sc, int kind, const char *id, size_t len, uint64_t h,
    int64_t t, int64_t w1, int64_t w2, int64_t wd, ent_agg *a)
{
	ent_stripe *s = &lv->ents[kind][h & (LIVE_ENT_STRIPES - 1)];
	live_ent   *e;
	okey       *k;

	memset(a, 0, sizeof *a);
	pthread_mutex_lock(&s->mu);
	k = omap_find(&s->map, h, id, len, offsetof(live_ent, k));
	e = k != NULL ? ENT_OF(k) : NULL;
	if (e != NULL && e->n > 0) {
		if (w1 > 0)
			a->c1 = ent_count_range(e, time_minus(t, w1), t);
		if (w2 > 0)
			a->c2 = ent_count_range(e, time_minus(t, w2), t);
		if (wd > 0)
			a->distinct = ent_distinct(e, sc, t, wd);
	}
	pthread_mutex_unlock(&s->mu);
}

/* Prefetches the slot where h's probe starts. Reads the table's array and
 * mask without its lock (relaxed atomics; they may be stale): the address
 * is only prefetched, never dereferenced, so a stale one costs nothing. */
static inline void
omap_prefetch(omap_dir *m, uint64_t h)
{
	oslot   *sl = __atomic_load_n(&m->sl, __ATOMIC_RELAXED);
	uint32_t mask = __atomic_load_n(&m->mask, __ATOMIC_RELAXED);

	if (sl != NULL)
		__builtin_prefetch(&sl[(uint32_t)(okey_slot_hash(h) >> 32) & mask]);
}

static void
ent_prefetch_slot(live *lv, int kind, uint64_t h)
{
	uint32_t i = (uint32_t)h & (LIVE_ENT_STRIPES - 1);

	__builtin_prefetch(&lv->ents[kind][i], 1);
	omap_prefetch(&lv->ent_dir[kind][i], h);
}

void
vel_prefetch(live *lv, const live_keys *k)
{
	/* Kinds not kept have empty tables: reading their stripe would be a
	 * miss for nothing. Each stripe's own line (its lock, taken next) is
	 * only prefetched. */
	uint32_t skip = lv->opts.skip_kinds;
	uint32_t d = dd_stripe_of(k->txn), c = (uint32_t)k->card & (LIVE_CARD_STRIPES - 1);

	__builtin_prefetch(&lv->dd[d], 1);
	__builtin_prefetch(&lv->cards[c], 1);
	omap_prefetch(&lv->dd_dir[d], k->txn);
	omap_prefetch(&lv->card_dir[c], k->card);
	if (!(skip & LIVE_KIND_MERCHANT))
		ent_prefetch_slot(lv, ENT_MERCHANT, k->merchant);
	if (k->lterminal != 0 && !(skip & LIVE_KIND_TERMINAL))
		ent_prefetch_slot(lv, ENT_TERMINAL, k->terminal);
	if (k->ldevice != 0 && !(skip & LIVE_KIND_DEVICE))
		ent_prefetch_slot(lv, ENT_DEVICE, k->device);
	if (k->lip != 0 && !(skip & LIVE_KIND_IP))
		ent_prefetch_slot(lv, ENT_IP, k->ip);
}

uint32_t
vel_plan(const store_feature_mask *m)
{
	static const struct {
		uint32_t first, last, flag;
	} groups[] = {
		{ STORE_SLOT_VEL_CARD_COUNT_1M, STORE_SLOT_VEL_CARD_SMALL_COUNT_10M, VEL_F_CARD },
		{ STORE_SLOT_VEL_CARD_DISTINCT_MERCHANTS_1H, STORE_SLOT_VEL_CARD_DISTINCT_MERCHANTS_24H,
		  VEL_F_CARD | VEL_F_CARD_DM },
		{ STORE_SLOT_VEL_CARD_DISTINCT_COUNTRIES_24H, STORE_SLOT_VEL_CARD_COUNTRY_SEEN_7D,
		  VEL_F_CARD | VEL_F_CARD_CC },
		{ STORE_SLOT_VEL_CARD_MERCHANT_SEEN_7D, STORE_SLOT_VEL_CARD_AMOUNT_TO_MEAN_7D,
		  VEL_F_CARD },
		{ STORE_SLOT_VEL_MERCHANT_COUNT_1M, STORE_SLOT_VEL_MERCHANT_COUNT_1H, VEL_F_MERCHANT },
		{ STORE_SLOT_VEL_TERMINAL_COUNT_10M, STORE_SLOT_VEL_TERMINAL_COUNT_10M, VEL_F_TERMINAL },
		{ STORE_SLOT_VEL_TERMINAL_DISTINCT_CARDS_1H, STORE_SLOT_VEL_TERMINAL_DISTINCT_CARDS_1H,
		  VEL_F_TERMINAL_D },
		{ STORE_SLOT_VEL_DEVICE_COUNT_1H, STORE_SLOT_VEL_DEVICE_COUNT_1H, VEL_F_DEVICE },
		{ STORE_SLOT_VEL_DEVICE_DISTINCT_CARDS_24H, STORE_SLOT_VEL_DEVICE_DISTINCT_CARDS_24H,
		  VEL_F_DEVICE_D },
		{ STORE_SLOT_VEL_IP_COUNT_1H, STORE_SLOT_VEL_IP_COUNT_1H, VEL_F_IP },
		{ STORE_SLOT_VEL_IP_DISTINCT_CARDS_24H, STORE_SLOT_VEL_IP_DISTINCT_CARDS_24H,
		  VEL_F_IP_D },
	};
	uint32_t plan = 0;

	_Static_assert(STORE_SLOT_VEL_IP_DISTINCT_CARDS_24H + 1 == STORE_SLOT_HOUR, /* last vel.* row */
	    "a new vel.* slot needs a vel_plan group");
	for (size_t g = 0; g < sizeof groups / sizeof groups[0]; g++)
		for (uint32_t i = groups[g].first; i <= groups[g].last; i++)
			if (store_feature_mask_has(m, i))
				plan |= groups[g].flag;
	return plan;
}

uint32_t
vel_plan_kinds(uint32_t plan)
{
	return ((plan & VEL_F_MERCHANT) ? LIVE_KIND_MERCHANT : 0) |
	    ((plan & (VEL_F_TERMINAL | VEL_F_TERMINAL_D)) ? LIVE_KIND_TERMINAL : 0) |
	    ((plan & (VEL_F_DEVICE | VEL_F_DEVICE_D)) ? LIVE_KIND_DEVICE : 0) |
	    ((plan & (VEL_F_IP | VEL_F_IP_D)) ? LIVE_KIND_IP : 0);
}

/* Under m's lock: prefetches the first nlines lines of every object whose
 * slot hash matches h (back: offset of the okey in the object). The probe
 * reads slots only, whose line vel_prefetch requested. */
static void
omap_prefetch_objects(const omap *m, uint64_t h, size_t back, int nlines)
{
	uint64_t x = okey_slot_hash(h);

	if (m->sl == NULL)
		return;
	for (uint32_t i = omap_home(m, x); m->sl[i].h != 0; i = (i + 1) & m->mask) {
		if (m->sl[i].h == x) {
			const char *o = (const char *)m->sl[i].v - back;

			for (int l = 0; l < nlines; l++)
				__builtin_prefetch(o + 64 * l);
		}
	}
}

static void
ent_prefetch_object(live *lv, int kind, uint64_t h)
{
	ent_stripe *s = &lv->ents[kind][h & (LIVE_ENT_STRIPES - 1)];

	pthread_mutex_lock(&s->mu);
	omap_prefetch_objects(&s->map, h, offsetof(live_ent, k),
	    ENT_HAS_B(kind) ? ENT_B_LINES : ENT_LINES);
	pthread_mutex_unlock(&s->mu);
}

void
vel_prefetch_card(live *lv, const live_keys *k)
{
	omap_prefetch_objects(&lv->cards[live_card_stripe_k(k)].map, k->card,
	    offsetof(live_card, k), 2);
}

void
vel_prefetch_objects(live *lv, const live_keys *k, uint32_t plan)
{
	uint32_t kinds = vel_plan_kinds(plan) & ~lv->opts.skip_kinds;

	if (kinds & LIVE_KIND_MERCHANT)
		ent_prefetch_object(lv, ENT_MERCHANT, k->merchant);
	if ((kinds & LIVE_KIND_TERMINAL) && k->lterminal != 0)
		ent_prefetch_object(lv, ENT_TERMINAL, k->terminal);
	if ((kinds & LIVE_KIND_DEVICE) && k->ldevice != 0)
		ent_prefetch_object(lv, ENT_DEVICE, k->device);
	if ((kinds & LIVE_KIND_IP) && k->lip != 0)
		ent_prefetch_object(lv, ENT_IP, k->ip);
}

/* vel.card.secs_since_merchant: a card back at a merchant it used within
 * the week (a regular) against one that never was there; the seconds also
 * separate a repeat at the same till (a retry, a split) from a weekly
 * habit. Missing when no live event of the card is at this merchant. */
static void
card_features_merchant(const card_agg *a, int64_t t, vigil_value *f)
{
	f[STORE_SLOT_VEL_CARD_SECS_SINCE_MERCHANT] = a->merchant_seen
	    ? vigil_value_num((double)(t - a->prev_merchant_t) / 1000.0) : vigil_value_missing();
}

/* vel.card.amount_to_mean_24h, _7d: this amount against the card's own
 * recent mean (a cash-out after small tests, a first large purchase on a
 * stolen card), fresher than the nightly card.amount_to_mean_30d. Missing
 * without an earlier transaction in the window or with a mean of 0. */
static void
card_features_amount(const card_agg *a, double amount, vigil_value *f)
{
	static const struct {
		uint32_t slot;
		int      w;
	} win[] = { { STORE_SLOT_VEL_CARD_AMOUNT_TO_MEAN_24H, 3 },
		{ STORE_SLOT_VEL_CARD_AMOUNT_TO_MEAN_7D, 4 } };

	for (size_t i = 0; i < sizeof win / sizeof win[0]; i++) {
		uint32_t n = a->count[win[i].w];
		double   mean = n > 0 ? a->sum[win[i].w] / n : 0.0;

		f[win[i].slot] = mean > 0.0 ? vigil_value_num(amount / mean) : vigil_value_missing();
	}
}

/* The vel.card.* slots of card c (NULL: none yet). */
static void
card_features(const live_card *c, vel_scratch *sc, const vigil_txn *txn, const live_keys *k,
    vigil_value *f, uint32_t plan)
{
	card_agg   a;
	int64_t    t = txn->event_time_ms;

	card_aggregate(c, sc, txn, k->merchant, live_device_tag(k), plan, &a);
	for (int w = 0; w < 5; w++) {
		f[STORE_SLOT_VEL_CARD_COUNT_1M + w] = vigil_value_num(a.count[w]);
		f[STORE_SLOT_VEL_CARD_SUM_1M + w] = vigil_value_num(a.sum[w]);
	}
	f[STORE_SLOT_VEL_CARD_SMALL_COUNT_10M] = vigil_value_num(a.small_10m);
	f[STORE_SLOT_VEL_CARD_DISTINCT_MERCHANTS_1H] = vigil_value_num(a.dm_1h);
	f[STORE_SLOT_VEL_CARD_DISTINCT_MERCHANTS_24H] = vigil_value_num(a.dm_24h);
	f[STORE_SLOT_VEL_CARD_DISTINCT_COUNTRIES_24H] = vigil_value_num(ccset_count(&a.cc_24h));
	f[STORE_SLOT_VEL_CARD_DISTINCT_COUNTRIES_7D] = vigil_value_num(ccset_count(&a.cc_7d));
	f[STORE_SLOT_VEL_CARD_COUNTRY_SEEN_7D] = txn->country[0]
	    ? vigil_value_bool(a.country_seen) : vigil_value_missing();
	f[STORE_SLOT_VEL_CARD_MERCHANT_SEEN_7D] = vigil_value_bool(a.merchant_seen);
	f[STORE_SLOT_VEL_CARD_DEVICE_SEEN_7D] = k->ldevice != 0
	    ? vigil_value_bool(a.device_seen) : vigil_value_missing();
	f[STORE_SLOT_VEL_CARD_SECS_SINCE_LAST] = a.has_prev
	    ? vigil_value_num((double)(t - a.prev_t) / 1000.0) : vigil_value_missing();
	if (a.has_prev_loc && txn->has_location) {
		double km = vigil_haversine_km(a.prev_lat, a.prev_lon, txn->lat, txn->lon);
		int64_t dt = t - a.prev_loc_t;

		/* Same-second events: speed over one second, not a division by 0. */
		if (dt < 1000)
			dt = 1000;
		f[STORE_SLOT_VEL_CARD_KM_FROM_LAST] = vigil_value_num(km);
		f[STORE_SLOT_VEL_CARD_KMH_FROM_LAST] = vigil_value_num(km / ((double)dt / 3600000.0));
	} else {
		f[STORE_SLOT_VEL_CARD_KM_FROM_LAST] = vigil_value_missing();
		f[STORE_SLOT_VEL_CARD_KMH_FROM_LAST] = vigil_value_missing();
	}
	card_features_merchant(&a, t, f);
	card_features_amount(&a, vigil_txn_amount(txn), f);
}

/* What vel_features below writes, kind by kind: keep the two in step. */
void
vel_plan_slots(uint32_t plan, store_feature_mask *m)
{
	static const struct {
		uint32_t flags, first, last;
	} kinds[] = {
		{ VEL_F_CARD | VEL_F_CARD_DM | VEL_F_CARD_CC,
		  STORE_SLOT_VEL_CARD_COUNT_1M, STORE_SLOT_VEL_CARD_AMOUNT_TO_MEAN_7D },
		{ VEL_F_MERCHANT, STORE_SLOT_VEL_MERCHANT_COUNT_1M, STORE_SLOT_VEL_MERCHANT_COUNT_1H },
		{ VEL_F_TERMINAL | VEL_F_TERMINAL_D,
		  STORE_SLOT_VEL_TERMINAL_COUNT_10M, STORE_SLOT_VEL_TERMINAL_DISTINCT_CARDS_1H },
		{ VEL_F_DEVICE | VEL_F_DEVICE_D,
		  STORE_SLOT_VEL_DEVICE_COUNT_1H, STORE_SLOT_VEL_DEVICE_DISTINCT_CARDS_24H },
		{ VEL_F_IP | VEL_F_IP_D,
		  STORE_SLOT_VEL_IP_COUNT_1H, STORE_SLOT_VEL_IP_DISTINCT_CARDS_24H },
	};

	_Static_assert(STORE_SLOT_VEL_IP_DISTINCT_CARDS_24H + 1 == STORE_SLOT_HOUR, /* last vel.* row */
	    "a new vel.* slot needs a place in vel_plan_slots");
	for (size_t g = 0; g < sizeof kinds / sizeof kinds[0]; g++)
		if (plan & kinds[g].flags)
			for (uint32_t i = kinds[g].first; i <= kinds[g].last; i++)
				store_feature_mask_set(m, i);
}

void
vel_features(live *lv, vel_scratch *sc, const vigil_txn *txn, const live_keys *k,
    vigil_value *f, uint32_t plan)
{
	ent_agg    e;
	int64_t    t = txn->event_time_ms;
	live_card *c = NULL;

	/* The card's newest events are requested first and arrive while the
	 * entities (prefetched by vel_prefetch_objects) are aggregated. */
	if (plan & VEL_F_CARD) {
		c = card_find(lv, live_card_stripe_k(k), txn->card_id, k->lcard, k->card);
		if (c != NULL && c->n > 0) {
			const char *p = (const char *)&c->ev[c->head + c->n - 1];

			__builtin_prefetch(p);
			__builtin_prefetch(p - 64);
		}
	}
	if (plan & VEL_F_MERCHANT) {
		ent_aggregate(lv, sc, ENT_MERCHANT, txn->merchant_id, k->lmerchant, k->merchant, t,
		    MS_1M, MS_1H, 0, &e);
		f[STORE_SLOT_VEL_MERCHANT_COUNT_1M] = vigil_value_num(e.c1);
		f[STORE_SLOT_VEL_MERCHANT_COUNT_1H] = vigil_value_num(e.c2);
	}
	if ((plan & (VEL_F_TERMINAL | VEL_F_TERMINAL_D)) == 0) {
		/* not asked for */
	} else if (txn->terminal_id[0] != '\0') {
		ent_aggregate(lv, sc, ENT_TERMINAL, txn->terminal_id, k->lterminal, k->terminal, t,
		    (plan & VEL_F_TERMINAL) ? MS_10M : 0, 0,
		    (plan & VEL_F_TERMINAL_D) ? MS_1H : 0, &e);
		f[STORE_SLOT_VEL_TERMINAL_COUNT_10M] = vigil_value_num(e.c1);
		f[STORE_SLOT_VEL_TERMINAL_DISTINCT_CARDS_1H] = vigil_value_num(e.distinct);
	} else {
		f[STORE_SLOT_VEL_TERMINAL_COUNT_10M] = vigil_value_missing();
		f[STORE_SLOT_VEL_TERMINAL_DISTINCT_CARDS_1H] = vigil_value_missing();
	}
	if ((plan & (VEL_F_DEVICE | VEL_F_DEVICE_D)) == 0) {
		/* not asked for */
	} else if (txn->device_id[0] != '\0') {
		ent_aggregate(lv, sc, ENT_DEVICE, txn->device_id, k->ldevice, k->device, t,
		    (plan & VEL_F_DEVICE) ? MS_1H : 0, 0,
		    (plan & VEL_F_DEVICE_D) ? MS_24H : 0, &e);
		f[STORE_SLOT_VEL_DEVICE_COUNT_1H] = vigil_value_num(e.c1);
		f[STORE_SLOT_VEL_DEVICE_DISTINCT_CARDS_24H] = vigil_value_num(e.distinct);
	} else {
		f[STORE_SLOT_VEL_DEVICE_COUNT_1H] = vigil_value_missing();
		f[STORE_SLOT_VEL_DEVICE_DISTINCT_CARDS_24H] = vigil_value_missing();
	}
	if ((plan & (VEL_F_IP | VEL_F_IP_D)) == 0) {
		/* not asked for */
	} else if (txn->ip[0] != '\0') {
		ent_aggregate(lv, sc, ENT_IP, txn->ip, k->lip, k->ip, t,
		    (plan & VEL_F_IP) ? MS_1H : 0, 0,
		    (plan & VEL_F_IP_D) ? MS_24H : 0, &e);
		f[STORE_SLOT_VEL_IP_COUNT_1H] = vigil_value_num(e.c1);
		f[STORE_SLOT_VEL_IP_DISTINCT_CARDS_24H] = vigil_value_num(e.distinct);
	} else {
		f[STORE_SLOT_VEL_IP_COUNT_1H] = vigil_value_missing();
		f[STORE_SLOT_VEL_IP_DISTINCT_CARDS_24H] = vigil_value_missing();
	}
	if (plan & VEL_F_CARD)
		card_features(c, sc, txn, k, f, plan);
}
