/* SPDX-License-Identifier: MIT */
/*
 * store/live.c - the speed layer: exact live velocity state per card, and
 * counts per merchant, terminal, device and IP (DESIGN.md contract 4).
 *
 * State is in memory; the archive is its write-ahead log (db.c rebuilds it
 * from there on open). Cards live in LIVE_CARD_STRIPES stripes, each a
 * mutex and an open-addressing table keyed by XXH3 of the id: the stripe
 * lock of a card is held by store_score_begin until commit or abort, which
 * is what makes the k-th transaction of a card see exactly the k-1 before
 * it. (Not uthash: a probe here touches one slot line and one object line,
 * where uthash's chains cost a dependent cache miss per element;
 * bench/store/bench-omap, a random lookup among 1M objects: 163 ns against
 * uthash's 243, in 34 MB of slots against 64 MB of buckets and handles,
 * 2026-11-25.) Merchants, terminals, devices and IPs have their own
 * stripes, locked briefly and one at a time (never two at once, and always
 * after the card stripe), so there is no lock-order cycle.
 * Idempotency records (txn_id -> first outcome) are a third striped table
 * (dedupe.c); the objects of all three are in live_view.h (as the velocity
 * features of features/db/ read them) and private/live_obj_int.h.
 *
 * Windows, lateness, retention and what "exact" means: live.h and
 * docs/storage.md.
 */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "live.h"
#include "vec.h"
#include "live_obj_int.h"

/* How long each kind keeps events, relative to the entity's newest event:
 * its largest window. */
static const int64_t ent_retain_ms[ENT_KINDS] = { MS_1H, MS_1H, MS_24H, MS_24H };

/* ---------------------------------------------------------------------- */
/* Helpers. */

static void
card_free(live *lv, live_card *c)
{
	atomic_fetch_sub_explicit(&lv->nevents, c->n, memory_order_relaxed);
	free(c->ev);
	if (c->x != NULL)
		free(c->x->bk);
	free(c->x);
	free(c);
}

static void
ent_free(live *lv, live_ent *e)
{
	(void)lv;
	if (e->ev != e->inl)
		free(e->ev);
	dmap_free(e->dm);
	free(e);
}

/* ---------------------------------------------------------------------- */
/* Lifecycle. */

vigil_err
live_new(const live_opts *opts, live **ret_lv)
{
	live *lv;

	if (opts->dedupe_horizon_ms < LIVE_WINDOW_MAX_MS || opts->max_cards == 0)
		return VIGIL_EINVAL;
	lv = aligned_alloc(64, (sizeof *lv + 63) / 64 * 64);
	if (lv == NULL)
		return VIGIL_ENOMEM;
	memset(lv, 0, sizeof *lv);
	lv->opts = *opts;
	for (int i = 0; i < LIVE_CARD_STRIPES; i++) {
		pthread_mutex_init(&lv->cards[i].mu, NULL);
		lv->cards[i].map.dir = &lv->card_dir[i];
	}
	for (int k = 0; k < ENT_KINDS; k++) {
		for (int i = 0; i < LIVE_ENT_STRIPES; i++) {
			pthread_mutex_init(&lv->ents[k][i].mu, NULL);
			lv->ents[k][i].map.dir = &lv->ent_dir[k][i];
		}
	}
	for (int i = 0; i < LIVE_DEDUPE_STRIPES; i++) {
		pthread_mutex_init(&lv->dd[i].mu, NULL);
		lv->dd[i].map.dir = &lv->dd_dir[i];
	}
	pthread_mutex_init(&lv->wm_mu, NULL);
	pthread_mutex_init(&lv->dd_chunk_mu, NULL);
	pthread_mutex_init(&lv->dd_exp_mu, NULL);
	pthread_mutex_init(&lv->dd_wait_mu, NULL);
	{
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&lv->dd_wait_cv, &ca);
		pthread_condattr_destroy(&ca);
	}
	atomic_store(&lv->wm, INT64_MIN);
	*ret_lv = lv;
	return VIGIL_OK;
}

void
live_free(live *lv)
{
	if (lv == NULL)
		return;
	for (int i = 0; i < LIVE_CARD_STRIPES; i++) {
		omap *m = &lv->cards[i].map;

		for (uint64_t j = 0; m->sl != NULL && j <= m->mask; j++)
			if (m->sl[j].h != 0)
				card_free(lv, CARD_OF(m->sl[j].v));
		omap_fini(m);
		pthread_mutex_destroy(&lv->cards[i].mu);
	}
	for (int k = 0; k < ENT_KINDS; k++) {
		for (int i = 0; i < LIVE_ENT_STRIPES; i++) {
			omap *m = &lv->ents[k][i].map;

			for (uint64_t j = 0; m->sl != NULL && j <= m->mask; j++)
				if (m->sl[j].h != 0)
					ent_free(lv, ENT_OF(m->sl[j].v));
			omap_fini(m);
			pthread_mutex_destroy(&lv->ents[k][i].mu);
		}
	}
	for (int i = 0; i < LIVE_DEDUPE_STRIPES; i++) {
		omap *m = &lv->dd[i].map;

		for (uint64_t j = 0; m->sl != NULL && j <= m->mask; j++)
			if (m->sl[j].h != 0 && DD_OF(m->sl[j].v)->state != DD_CLAIM)
				dd_release(lv, DD_OF(m->sl[j].v));
		omap_fini(m);
		pthread_mutex_destroy(&lv->dd[i].mu);
	}
	dd_chunks_free(lv);
	dd_strs_free(lv);
	pthread_mutex_destroy(&lv->dd_chunk_mu);
	pthread_mutex_destroy(&lv->dd_exp_mu);
	pthread_mutex_destroy(&lv->dd_wait_mu);
	pthread_cond_destroy(&lv->dd_wait_cv);
	pthread_mutex_destroy(&lv->wm_mu);
	free(lv);
}

void
live_card_lock(live *lv, uint32_t stripe)
{
	pthread_mutex_lock(&lv->cards[stripe].mu);
}

void
live_card_unlock(live *lv, uint32_t stripe)
{
	pthread_mutex_unlock(&lv->cards[stripe].mu);
}

/* ---------------------------------------------------------------------- */
/* Watermark. */

void
live_wm_lock(live *lv)
{
	pthread_mutex_lock(&lv->wm_mu);
}

void
live_wm_unlock(live *lv)
{
	pthread_mutex_unlock(&lv->wm_mu);
}

bool
live_wm_admit_locked(live *lv, int64_t t)
{
	int64_t w = atomic_load_explicit(&lv->wm, memory_order_relaxed);

	/* t <= W - 7d, written so it cannot overflow. */
	if (w != INT64_MIN && t <= w - MS_7D) {
		atomic_fetch_add_explicit(&lv->nlate, 1, memory_order_relaxed);
		return false;
	}
	if (t > w)
		atomic_store_explicit(&lv->wm, t, memory_order_release);
	return true;
}

bool
live_wm_is_late(live *lv, int64_t t)
{
	int64_t w = atomic_load_explicit(&lv->wm, memory_order_acquire);

	return w != INT64_MIN && t <= w - MS_7D;
}

bool
live_wm_past_horizon(live *lv, int64_t t)
{
	int64_t w = atomic_load_explicit(&lv->wm, memory_order_acquire);

	/* dd_live's test, negated: t <= W - horizon (no overflow: W is an event
	 * time, the horizon at most 2^32 s) */
	return w != INT64_MIN && t <= w - lv->opts.dedupe_horizon_ms;
}

int64_t
live_watermark(live *lv)
{
	return live_wm_load(lv);
}

/* Events with time <= cutoff are unobservable by any transaction that is
 * not late (docs/storage.md); INT64_MIN before the first event. */
static int64_t
live_cutoff(live *lv)
{
	int64_t w = live_watermark(lv);

	return w == INT64_MIN ? INT64_MIN : w - LIVE_RETAIN_MS;
}

/* ---------------------------------------------------------------------- */
/* Cards: reserve, apply. */

/* Ensures room for one more event at the end of ev[] (compacting first). */
static vigil_err
card_make_room(live_card *c)
{
	if (c->head + c->n < c->cap)
		return VIGIL_OK;
	if (c->head > 0) {
		memmove(c->ev, c->ev + c->head, c->n * sizeof c->ev[0]);
		c->head = 0;
		if (c->n < c->cap)
			return VIGIL_OK;
	}
	/* The capacities are uint32_t, in every card and entity object:
	 * vigil_array_grown's policy, kept in fields half a size_t. */
	size_t ncap = vigil_array_grown(c->cap, (size_t)c->cap + 1, 4, LIVE_CARD_CAP + 1);

	if (ncap == 0)
		return VIGIL_OK; /* full size; apply folds before inserting */
	if (vigil_array_resize(&c->ev, ncap, sizeof *c->ev) != VIGIL_OK)
		return VIGIL_ENOMEM;
	c->cap = (uint32_t)ncap;
	return VIGIL_OK;
}

#define CARD_PREFETCH_EVENTS 32

vigil_err
live_card_reserve(live *lv, const vigil_txn *txn, const live_keys *k)
{
	size_t     len = k->lcard;
	uint64_t   h = k->card;
	uint32_t   stripe = (uint32_t)h & (LIVE_CARD_STRIPES - 1);
	live_card *c = card_find(lv, stripe, txn->card_id, len, h);

	if (c == NULL) {
		if (atomic_load_explicit(&lv->ncards, memory_order_relaxed) >= lv->opts.max_cards)
			return VIGIL_ELIMIT;
		vigil_err rv;

		c = obj_alloc(sizeof *c);
		if (c == NULL)
			return VIGIL_ENOMEM;
		okey_set(&c->k, h, txn->card_id, len);
		c->newest = INT64_MIN;
		rv = omap_insert(&lv->cards[stripe].map, &c->k);
		if (rv != VIGIL_OK) {
			free(c);
			return rv;
		}
		atomic_fetch_add_explicit(&lv->ncards, 1, memory_order_relaxed);
	}
	/* begin's batch read comes next: the cached profile's lines
	 * (live_card_bcache) are requested together rather than missed one
	 * after the other. */
	if (c->x != NULL) {
		for (size_t off = 0; off < sizeof *c->x; off += 64)
			__builtin_prefetch((const char *)c->x + off);
	}
	/* Folding needs one bucket at most; reserve it too. */
	if (c->n >= LIVE_CARD_CAP && (c->x == NULL || c->nbk == c->x->capbk)) {
		size_t ncap;

		if (c->x == NULL && (c->x = calloc(1, sizeof *c->x)) == NULL)
			return VIGIL_ENOMEM;
		ncap = vigil_array_grown(c->x->capbk, (size_t)c->x->capbk + 1, 16, UINT32_MAX);
		if (ncap == 0 || vigil_array_resize(&c->x->bk, ncap, sizeof *c->x->bk) != VIGIL_OK)
			return VIGIL_ENOMEM;
		c->x->capbk = (uint32_t)ncap;
	}
	/* The lookup that follows scans back from the newest event over the
	 * last 7 days (begin does the LMDB reads in between): its newest
	 * CARD_PREFETCH_EVENTS events are requested now, so their misses
	 * overlap instead of following each other. */
	if (c->n > 0) {
		const char *p = (const char *)&c->ev[c->head + c->n - 1];
		uint32_t    m = c->n < CARD_PREFETCH_EVENTS ? c->n : CARD_PREFETCH_EVENTS;
		const char *stop = (const char *)&c->ev[c->head + c->n - m];

		for (size_t off = 0; off < (size_t)(p - stop); off += 64)
			__builtin_prefetch(p - off);
		__builtin_prefetch(stop);
		/* commit's apply first looks at the oldest one (card_evict) */
		__builtin_prefetch(&c->ev[c->head]);
	}
	return card_make_room(c);
}

profile_card_cache *
live_card_bcache(live *lv, const vigil_txn *txn, const live_keys *k)
{
	live_card *c = card_find(lv, live_card_stripe_k(k), txn->card_id, k->lcard, k->card);

	if (c == NULL)
		return NULL;
	if (c->x == NULL && (c->x = calloc(1, sizeof *c->x)) == NULL)
		return NULL;
	return &c->x->bc;
}

static void
card_evict(live *lv, live_card *c, int64_t cutoff)
{
	uint32_t k = 0, j = 0;

	while (k < c->n && c->ev[c->head + k].t <= cutoff)
		k++;
	if (k > 0) {
		c->head += k;
		c->n -= k;
		atomic_fetch_sub_explicit(&lv->nevents, k, memory_order_relaxed);
		if (c->n == 0)
			c->head = 0;
	}
	while (j < c->nbk && c->x->bk[j].last_ms <= cutoff)
		j++;
	if (j > 0) {
		memmove(c->x->bk, c->x->bk + j, (c->nbk - j) * sizeof c->x->bk[0]);
		c->nbk -= j;
	}
}

/* Folds the oldest exact event into its minute bucket (room reserved). */
static void
card_fold_oldest(live *lv, live_card *c)
{
	const live_event *e = &c->ev[c->head];
	int64_t           minute = e->t >= 0 ? e->t / MS_1M : -((-e->t + MS_1M - 1) / MS_1M);
	uint32_t          i = c->nbk;

	while (i > 0 && c->x->bk[i - 1].minute > minute)
		i--;
	if (i > 0 && c->x->bk[i - 1].minute == minute) {
		live_bucket *b = &c->x->bk[i - 1];

		b->count++;
		b->sum += e->amount;
		if (e->t > b->last_ms)
			b->last_ms = e->t;
	} else if (c->x != NULL && c->nbk < c->x->capbk) {
		memmove(c->x->bk + i + 1, c->x->bk + i, (c->nbk - i) * sizeof c->x->bk[0]);
		c->x->bk[i] = (live_bucket){ .minute = minute, .last_ms = e->t, .count = 1,
			.sum = e->amount };
		c->nbk++;
	} /* else: no bucket room (allocation failed in reserve): the event is dropped */
	c->head++;
	c->n--;
	atomic_fetch_sub_explicit(&lv->nevents, 1, memory_order_relaxed);
}

static void
card_apply(live *lv, const vigil_txn *txn, const live_keys *k)
{
	uint32_t   stripe = (uint32_t)k->card & (LIVE_CARD_STRIPES - 1);
	live_card *c = card_find(lv, stripe, txn->card_id, k->lcard, k->card);
	live_event ev;
	uint32_t   pos;

	if (c == NULL || card_make_room(c) != VIGIL_OK)
		return; /* reserve failed; the caller did not admit */
	card_evict(lv, c, live_cutoff(lv));
	if (c->n >= LIVE_CARD_CAP) {
		card_fold_oldest(lv, c);
		if (card_make_room(c) != VIGIL_OK)
			return;
	}
	if (c->head + c->n >= c->cap)
		return;
	memset(&ev, 0, sizeof ev);
	ev.t = txn->event_time_ms;
	ev.amount = vigil_txn_amount(txn);
	ev.mh = k->merchant;
	ev.dh = live_device_tag(k);
	if (txn->country[0] != '\0') {
		ev.cc[0] = txn->country[0];
		ev.cc[1] = txn->country[1];
	}
	ev.has_loc = txn->has_location;
	if (txn->has_location) {
		ev.lat = txn->lat;
		ev.lon = txn->lon;
	}
	/* After every event with time <= t: ties are ordered by arrival. */
	pos = card_upper(c, ev.t);
	memmove(&c->ev[c->head + pos + 1], &c->ev[c->head + pos],
	    (c->n - pos) * sizeof c->ev[0]);
	c->ev[c->head + pos] = ev;
	c->n++;
	if (ev.t > c->newest)
		c->newest = ev.t;
	atomic_fetch_add_explicit(&lv->nevents, 1, memory_order_relaxed);
}

/* ---------------------------------------------------------------------- */
/* Entities: apply. */

static void
ent_apply(live *lv, int kind, const char *id, size_t len, uint64_t h, int64_t t,
    uint64_t card_h)
{
	ent_stripe *s = &lv->ents[kind][h & (LIVE_ENT_STRIPES - 1)];
	live_ent   *e;
	okey       *k;
	uint32_t    drop = 0, pos;
	int64_t     cut;

	pthread_mutex_lock(&s->mu);
	k = omap_find(&s->map, h, id, len, offsetof(live_ent, k));
	e = k != NULL ? ENT_OF(k) : NULL;
	if (e == NULL) {
		if (atomic_load_explicit(&lv->nents, memory_order_relaxed) >=
		    lv->opts.max_cards * ENT_KINDS)
			goto out;
		e = obj_alloc(ENT_HAS_B(kind) ? sizeof(live_ent_b) : sizeof *e);
		if (e == NULL)
			goto out;
		okey_set(&e->k, h, id, len);
		e->newest = INT64_MIN;
		e->ev = e->inl;
		e->cap = ENT_INLINE;
		if (omap_insert(&s->map, &e->k) != VIGIL_OK) {
			free(e);
			goto out;
		}
		atomic_fetch_add_explicit(&lv->nents, 1, memory_order_relaxed);
	}
	if (t > e->newest)
		e->newest = t;
	/* Keep the kind's largest window behind the entity's newest event. */
	cut = e->newest - ent_retain_ms[kind];
	if (t <= cut)
		goto out;
	while (drop < e->n && e->ev[e->head + drop].t <= cut)
		drop++;
	/* Saturated: the oldest event makes room (docs/storage.md). */
	if (drop == 0 && e->n == LIVE_ENT_CAP)
		drop = 1;
	if (e->dm != NULL) {
		for (uint32_t i = 0; i < drop; i++) {
			const ent_event *x = &e->ev[e->head + i];

			if (x->t > e->dm->lo && x->t <= e->dm->hi)
				dmap_sub(e->dm, x->ch);
		}
	}
	e->head += drop;
	e->n -= drop;
	if (e->n == 0)
		e->head = 0;
	if (e->head + e->n >= e->cap) {
		/* Compact only when that frees at least half the array, else grow
		 * (up to twice the cap): a busy entity at steady state, dropping
		 * one event per event added, moves O(1) events per apply. */
		if (e->head > 0 && (e->n <= e->cap / 2 || e->cap >= 2 * LIVE_ENT_CAP)) {
			memmove(e->ev, e->ev + e->head, e->n * sizeof e->ev[0]);
			e->head = 0;
		} else {
			size_t ncap = vigil_array_grown(e->cap, (size_t)e->cap + 1, 4, 2 * LIVE_ENT_CAP);

			/* On ENOMEM the event is not recorded (storage.md). At the
			 * cap (which the drop above keeps n under, so it is not
			 * reached) the same: growing to the same size would write
			 * past the array. */
			if (ncap == 0)
				goto out;
			if (e->ev == e->inl) {
				ent_event *ne = malloc(ncap * sizeof *ne);

				if (ne == NULL)
					goto out;
				memcpy(ne, e->inl + e->head, e->n * sizeof *ne);
				e->ev = ne;
			} else {
				if (e->head > 0) {
					memmove(e->ev, e->ev + e->head, e->n * sizeof e->ev[0]);
					e->head = 0;
				}
				if (vigil_array_resize(&e->ev, ncap, sizeof *e->ev) != VIGIL_OK)
					goto out;
			}
			e->head = 0;
			e->cap = (uint32_t)ncap;
		}
	}
	pos = ent_upper(e, t);
	memmove(&e->ev[e->head + pos + 1], &e->ev[e->head + pos], (e->n - pos) * sizeof e->ev[0]);
	e->ev[e->head + pos] = (ent_event){ .t = t, .ch = card_h };
	e->n++;
	if (e->dm != NULL && t > e->dm->lo && t <= e->dm->hi &&
	    dmap_add(e->dm, card_h) != VIGIL_OK) {
		dmap_free(e->dm); /* rebuilt by the next lookup */
		e->dm = NULL;
	}
out:
	pthread_mutex_unlock(&s->mu);
}

/* What an entity event of a transaction does (ent_apply, ent_unapply). */
typedef void ent_op(live *lv, int kind, const char *id, size_t len, uint64_t h, int64_t t,
    uint64_t card_h);

/* op on each of txn's merchant, terminal, device and IP of a kind kept
 * (inlined: op is a constant at each call). */
static inline void
ents_each(live *lv, const vigil_txn *txn, const live_keys *k, ent_op *op)
{
	int64_t  t = txn->event_time_ms;
	uint32_t skip = lv->opts.skip_kinds;

	if ((skip & LIVE_KIND_MERCHANT) == 0)
		op(lv, ENT_MERCHANT, txn->merchant_id, k->lmerchant, k->merchant, t, k->card);
	if ((skip & LIVE_KIND_TERMINAL) == 0 && k->lterminal != 0)
		op(lv, ENT_TERMINAL, txn->terminal_id, k->lterminal, k->terminal, t, k->card);
	if ((skip & LIVE_KIND_DEVICE) == 0 && k->ldevice != 0)
		op(lv, ENT_DEVICE, txn->device_id, k->ldevice, k->device, t, k->card);
	if ((skip & LIVE_KIND_IP) == 0 && k->lip != 0)
		op(lv, ENT_IP, txn->ip, k->lip, k->ip, t, k->card);
}

void
live_apply(live *lv, const vigil_txn *txn, const live_keys *k)
{
	card_apply(lv, txn, k);
	ents_each(lv, txn, k, ent_apply);
}

/* Another replica's transaction: its entity events only (store_db_observe). */
void
live_observe(live *lv, const store_observation *o)
{
	int64_t  t = o->event_time_ms;
	uint32_t skip = lv->opts.skip_kinds;
	size_t   l;

	if ((skip & LIVE_KIND_MERCHANT) == 0) {
		l = strnlen(o->merchant_id, sizeof o->merchant_id);
		ent_apply(lv, ENT_MERCHANT, o->merchant_id, l, id_hash(o->merchant_id, l), t,
		    o->card_hash);
	}
	if ((skip & LIVE_KIND_TERMINAL) == 0 && o->terminal_id[0] != '\0') {
		l = strnlen(o->terminal_id, sizeof o->terminal_id);
		ent_apply(lv, ENT_TERMINAL, o->terminal_id, l, id_hash(o->terminal_id, l), t,
		    o->card_hash);
	}
	if ((skip & LIVE_KIND_DEVICE) == 0 && o->device_id[0] != '\0') {
		l = strnlen(o->device_id, sizeof o->device_id);
		ent_apply(lv, ENT_DEVICE, o->device_id, l, id_hash(o->device_id, l), t,
		    o->card_hash);
	}
	if ((skip & LIVE_KIND_IP) == 0 && o->ip[0] != '\0') {
		l = strnlen(o->ip, sizeof o->ip);
		ent_apply(lv, ENT_IP, o->ip, l, id_hash(o->ip, l), t, o->card_hash);
	}
}

/* ---------------------------------------------------------------------- */
/* Undo (a commit whose durability wait failed). */

/* Removes one event of txn from its card: the newest exact event equal to
 * it (time, amount, merchant, device), or else one count of the minute
 * bucket it was folded into. */
static void
card_unapply(live *lv, const vigil_txn *txn, const live_keys *k)
{
	uint32_t   stripe = (uint32_t)k->card & (LIVE_CARD_STRIPES - 1);
	live_card *c = card_find(lv, stripe, txn->card_id, k->lcard, k->card);
	int64_t    t = txn->event_time_ms;
	double     amount = vigil_txn_amount(txn);
	uint32_t   dh = live_device_tag(k);
	uint32_t   i;

	if (c == NULL)
		return;
	for (i = card_upper(c, t); i > 0 && c->ev[c->head + i - 1].t == t; i--) {
		const live_event *e = &c->ev[c->head + i - 1];

		if (e->amount == amount && e->mh == k->merchant && e->dh == dh) {
			memmove(&c->ev[c->head + i - 1], &c->ev[c->head + i],
			    (c->n - i) * sizeof c->ev[0]);
			c->n--;
			if (c->n == 0)
				c->head = 0;
			atomic_fetch_sub_explicit(&lv->nevents, 1, memory_order_relaxed);
			return;
		}
	}
	{
		int64_t minute = t >= 0 ? t / MS_1M : -((-t + MS_1M - 1) / MS_1M);

		for (i = 0; i < c->nbk; i++) {
			live_bucket *b = &c->x->bk[i];

			if (b->minute == minute && b->count > 0) {
				b->count--;
				b->sum -= amount;
				return;
			}
		}
	}
}

/* Removes one event of card card_h at time t from an entity. */
static void
ent_unapply(live *lv, int kind, const char *id, size_t len, uint64_t h, int64_t t,
    uint64_t card_h)
{
	ent_stripe *s = &lv->ents[kind][h & (LIVE_ENT_STRIPES - 1)];
	live_ent   *e;
	okey       *k;
	uint32_t    i;

	pthread_mutex_lock(&s->mu);
	k = omap_find(&s->map, h, id, len, offsetof(live_ent, k));
	e = k != NULL ? ENT_OF(k) : NULL;
	if (e == NULL)
		goto out;
	for (i = ent_upper(e, t); i > 0 && e->ev[e->head + i - 1].t == t; i--) {
		if (e->ev[e->head + i - 1].ch != card_h)
			continue;
		if (e->dm != NULL && t > e->dm->lo && t <= e->dm->hi)
			dmap_sub(e->dm, card_h);
		memmove(&e->ev[e->head + i - 1], &e->ev[e->head + i],
		    (e->n - i) * sizeof e->ev[0]);
		e->n--;
		if (e->n == 0)
			e->head = 0;
		break;
	}
out:
	pthread_mutex_unlock(&s->mu);
}

void
live_unapply(live *lv, const vigil_txn *txn, const live_keys *k)
{
	card_unapply(lv, txn, k);
	ents_each(lv, txn, k, ent_unapply);
}

/* ---------------------------------------------------------------------- */
/* Expiry. */

/* A sweep reads the slots in order and the objects they point to at
 * random: the object SWEEP_AHEAD slots on is requested, and for cards the
 * oldest event of the one SWEEP_AHEAD / 2 on (its object is in by then),
 * so the misses overlap instead of following each other. Slots shifted by
 * a removal only make a request useless. */

static void
sweep_cards(live *lv, uint32_t i, int64_t cutoff)
{
	card_stripe *s = &lv->cards[i];
	omap        *m = &s->map;

	pthread_mutex_lock(&s->mu);
	for (uint64_t j = 0; m->sl != NULL && j <= m->mask;) {
		live_card *c = m->sl[j].v != NULL ? CARD_OF(m->sl[j].v) : NULL;

		if (j + SWEEP_AHEAD <= m->mask && m->sl[j + SWEEP_AHEAD].v != NULL) {
			const char *o = (const char *)CARD_OF(m->sl[j + SWEEP_AHEAD].v);

			__builtin_prefetch(o);
			__builtin_prefetch(o + 64);
		}
		if (j + SWEEP_AHEAD / 2 <= m->mask && m->sl[j + SWEEP_AHEAD / 2].v != NULL) {
			const live_card *n = CARD_OF(m->sl[j + SWEEP_AHEAD / 2].v);

			if (n->n > 0)
				__builtin_prefetch(&n->ev[n->head]);
		}

		if (c != NULL) {
			card_evict(lv, c, cutoff);
			if (c->n == 0 && c->nbk == 0) {
				omap_remove_at(m, (uint32_t)j);
				card_free(lv, c);
				atomic_fetch_sub_explicit(&lv->ncards, 1, memory_order_relaxed);
				continue; /* slot j may now hold a shifted member */
			}
		}
		j++;
	}
	pthread_mutex_unlock(&s->mu);
}

static void
sweep_ents(live *lv, uint32_t i, int64_t cutoff)
{
	for (int k = 0; k < ENT_KINDS; k++) {
		ent_stripe *s = &lv->ents[k][i];
		omap       *m = &s->map;

		pthread_mutex_lock(&s->mu);
		for (uint64_t j = 0; m->sl != NULL && j <= m->mask;) {
			live_ent *e = m->sl[j].v != NULL ? ENT_OF(m->sl[j].v) : NULL;

			if (e != NULL && e->newest <= cutoff) {
				omap_remove_at(m, (uint32_t)j);
				ent_free(lv, e);
				atomic_fetch_sub_explicit(&lv->nents, 1, memory_order_relaxed);
				continue;
			}
			j++;
		}
		pthread_mutex_unlock(&s->mu);
	}
}

/* The next stripe of each table (the cursor is shared by all sweepers). */
static void
sweep_step(live *lv, int64_t cutoff)
{
	uint64_t i = atomic_fetch_add_explicit(&lv->sweep_cursor, 1, memory_order_relaxed);

	sweep_cards(lv, (uint32_t)(i % LIVE_CARD_STRIPES), cutoff);
	sweep_ents(lv, (uint32_t)(i % LIVE_ENT_STRIPES), cutoff);
	dd_sweep_stripe(lv, (uint32_t)(i % LIVE_DEDUPE_STRIPES));
}

/*
 * The idempotency records are most of the live state (one per transaction
 * of the dedupe horizon, the cards one per card), so they expire in the
 * order they came (dd_expire, dedupe.c): every LIVE_DD_EXPIRE_EVERY
 * commits, up to LIVE_DD_EXPIRE_BUDGET records each, more than come in
 * meanwhile, so the table holds about the horizon's worth, whatever the
 * rate, and a commit pays for about one record removed, not for a scan of
 * live ones. The stripe sweep's one stripe per step is left for what the
 * walk steps over (records of an event time ahead of the watermark).
 */
void
live_sweep_maybe(live *lv)
{
	uint64_t n = atomic_fetch_add_explicit(&lv->commits, 1, memory_order_relaxed);
	int64_t  cutoff;

	if (n % LIVE_DD_EXPIRE_EVERY == LIVE_DD_EXPIRE_EVERY - 1)
		dd_expire(lv, LIVE_DD_EXPIRE_BUDGET);
	if (n % LIVE_SWEEP_EVERY != LIVE_SWEEP_EVERY - 1)
		return;
	cutoff = live_cutoff(lv);
	if (cutoff == INT64_MIN)
		return;
	sweep_step(lv, cutoff);
}

void
live_sweep_steps(live *lv, uint32_t n)
{
	int64_t cutoff = live_cutoff(lv);

	if (cutoff == INT64_MIN)
		return;
	dd_expire(lv, UINT32_MAX);
	while (n-- > 0)
		sweep_step(lv, cutoff);
}

void
live_sweep_all(live *lv)
{
	int64_t cutoff = live_cutoff(lv);

	if (cutoff == INT64_MIN)
		return;
	for (uint32_t i = 0; i < LIVE_CARD_STRIPES; i++)
		sweep_cards(lv, i, cutoff);
	for (uint32_t i = 0; i < LIVE_ENT_STRIPES; i++)
		sweep_ents(lv, i, cutoff);
	for (uint32_t i = 0; i < LIVE_DEDUPE_STRIPES; i++)
		dd_sweep_stripe(lv, i);
	dd_expire(lv, UINT32_MAX); /* the chunks every record of which is gone */
}

/* ---------------------------------------------------------------------- */
/* Recovery and stats. */

vigil_err
live_replay(live *lv, const store_scored *rec, const live_keys *k)
{
	uint32_t  stripe = live_card_stripe_k(k);
	vigil_err rv;
	bool      admit;

	live_card_lock(lv, stripe);
	/* The same transaction again while its first record is live: written
	 * again by a retry after the first one's sync failed (a live commit
	 * never writes it otherwise: begin answers the retry). It was applied
	 * once, with the first; its outcome is the one acknowledged. */
	{
		store_outcome *prior = &lv->replay_prior;

		if (live_dedupe_find(lv, rec->txn.txn_id, k, prior) == VIGIL_EEXIST) {
			live_card_unlock(lv, stripe);
			return dd_put(lv, NULL, rec->txn.txn_id, k->ltxn, k->txn, k->fp,
			    rec->txn.event_time_ms, rec->score, rec->decision, rec->features_gen,
			    rec->rules_version, rec->hits, rec->nhits, NULL, prior->late, DD_DURABLE,
			    DD_REPLACE);
		}
	}
	rv = live_card_reserve(lv, &rec->txn, k);
	if (rv == VIGIL_ELIMIT)
		rv = VIGIL_OK; /* over max_cards: state cannot hold it, as live */
	if (rv != VIGIL_OK) {
		live_card_unlock(lv, stripe);
		return rv;
	}
	live_wm_lock(lv);
	admit = live_wm_admit_locked(lv, rec->txn.event_time_ms);
	live_wm_unlock(lv);
	if (admit)
		live_apply(lv, &rec->txn, k);
	live_card_unlock(lv, stripe);
	rv = live_dedupe_put_scored(lv, rec, k, !admit);
	live_sweep_maybe(lv);
	return rv;
}

void
live_get_stats(live *lv, live_stats *ret_stats)
{
	ret_stats->cards = atomic_load_explicit(&lv->ncards, memory_order_relaxed);
	ret_stats->entities = atomic_load_explicit(&lv->nents, memory_order_relaxed);
	ret_stats->events = atomic_load_explicit(&lv->nevents, memory_order_relaxed);
	ret_stats->dedupe_entries = atomic_load_explicit(&lv->ndd, memory_order_relaxed);
	ret_stats->late_events = atomic_load_explicit(&lv->nlate, memory_order_relaxed);
}
