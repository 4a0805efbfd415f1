/* SPDX-License-Identifier: MIT */
/*
 * store/dedupe.c - idempotency records of the live state (txn_id -> first
 * outcome; DESIGN.md contract 4): a striped table beside the cards' and
 * entities' (live.c), carved out of chunks, expired by the sweep after the
 * dedupe horizon (docs/storage.md, "Idempotency").
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "hashtab.h"

#include "live.h"
#include "live_obj_int.h"

/* A string the records share (rules versions, rule names), in
 * live.dd_strs (keyed by its bytes up to the NUL). Kept until live_free:
 * one per string the live state has seen. Under dd_chunk_mu. */
struct dd_str {
	UT_hash_handle hh;
	char           s[DD_VERSION_LEN]; /* the longest: a rule name is < 64 */
};

/* Idempotency records are carved in arrival order out of DD_CHUNK-byte
 * chunks (aligned to their size, so an entry finds its chunk by masking
 * its address); a chunk counts its live entries, plus one while it is
 * being filled and one while it is on the list of chunks (live.dd_head),
 * and is freed when the count reaches 0. Records expire in about the
 * order they came, so a put and the expiry cost no malloc/free, and
 * consecutive records share cache lines.
 *
 * Expiry (dd_expire) walks the records in the order they were carved,
 * from a cursor in the oldest chunk on the list: a record past the
 * horizon is removed from its table, under its stripe's lock; a record
 * already gone (replaced, or removed by a begin) is stepped over; the
 * first record still within the horizon ends the walk, since those
 * carved after it came later. A record of an event time ahead of the
 * watermark (max_future_skew_ms 0) is stepped over instead, left to the
 * stripe sweep (dd_sweep_stripe), so that one such record does not hold
 * every later one. A chunk the cursor has left (not the one being
 * filled) leaves the list. Each record's size, stripe and event time are
 * written as it is carved, under dd_chunk_mu, and never change, so the
 * cursor reads them having taken dd_chunk_mu once for the chunk's fill
 * level. */
#define DD_CHUNK ((size_t)64 * 1024)

struct dd_chunk {
	_Atomic uint32_t nlive;
	uint32_t         used; /* bytes from the chunk's start, header included */
	dd_chunk        *next; /* the next newer chunk on the list, under dd_chunk_mu */
};

_Static_assert(DD_SIZE(VIGIL_ID_MAX, STORE_MAX_HITS) + DD_MODEL_BYTES(STORE_MAX_REASONS) +
    sizeof(dd_chunk) <= DD_CHUNK,
    "a dedupe entry must fit a chunk");
_Static_assert(DD_CHUNK <= 65536 && LIVE_DEDUPE_STRIPES <= 65536,
    "an entry's size and stripe fit its 16-bit fields");

static uint8_t *
dd_model_at(dd_entry *d)
{
	return (uint8_t *)d + DD_SIZE(d->k.len, d->nhits);
}

static void
dd_model_put(dd_entry *d, const store_model_outcome *mo)
{
	uint8_t *p;

	d->model = 0;
	if (mo == NULL || !mo->present)
		return;
	d->model = (uint8_t)(DD_MODEL | mo->nreasons);
	p = dd_model_at(d);
	memcpy(p, &mo->score, 8);
	p += 8;
	for (uint32_t i = 0; i < mo->nreasons; i++, p += DD_REASON_BYTES) {
		memcpy(p, &mo->reasons[i].slot, 4);
		memcpy(p + 4, &mo->reasons[i].contrib, 4);
		memcpy(p + 8, &mo->reasons[i].value, 8);
	}
}

static void
dd_model_get(dd_entry *d, store_model_outcome *ret)
{
	const uint8_t *p;

	memset(ret, 0, sizeof *ret);
	if (!(d->model & DD_MODEL))
		return;
	ret->present = true;
	ret->nreasons = DD_NREASONS(d->model);
	p = dd_model_at(d);
	memcpy(&ret->score, p, 8);
	p += 8;
	for (uint32_t i = 0; i < ret->nreasons; i++, p += DD_REASON_BYTES) {
		memcpy(&ret->reasons[i].slot, p, 4);
		memcpy(&ret->reasons[i].contrib, p + 4, 4);
		memcpy(&ret->reasons[i].value, p + 8, 8);
	}
}

/* The points of a recorded outcome: its active hits' (not kept apart). */
static int32_t
dd_points(const store_hit *hits, uint32_t n)
{
	int32_t points = 0;

	for (uint32_t i = 0; i < n; i++)
		if (!hits[i].shadow)
			points += hits[i].points;
	return points;
}

static dd_hit *
dd_hits(dd_entry *d)
{
	return (dd_hit *)(void *)((char *)d + DD_KEY_END(d->k.len));
}

/* Under dd_chunk_mu: the shared, zero-padded copy of str's n bytes (n <
 * DD_VERSION_LEN), hv their uthash hash, taken before the lock. NULL on ENOMEM. */
static const char *
dd_intern_locked(live *lv, const char *str, size_t n, unsigned hv)
{
	dd_str *r;

	HASH_FIND_BYHASHVALUE(hh, lv->dd_strs, str, n, hv, r);
	if (r != NULL)
		return r->s;
	if ((r = calloc(1, sizeof *r)) == NULL)
		return NULL;
	memcpy(r->s, str, n);
	HASH_ADD_BYHASHVALUE(hh, lv->dd_strs, s, n, hv, r);
	if (!VIGIL_HASH_ADDED(r)) {
		free(r);
		return NULL;
	}
	return r->s;
}

void
dd_strs_free(live *lv)
{
	dd_str *r, *tmp;

	HASH_ITER(hh, lv->dd_strs, r, tmp) {
		HASH_DEL(lv->dd_strs, r);
		free(r);
	}
}

/* The outcome d records. */
static void
dd_outcome_get(dd_entry *d, store_outcome *ret)
{
	memset(ret, 0, sizeof *ret);
	ret->score = d->score;
	ret->decision = (vigil_decision)d->decision;
	ret->features_gen = d->features_gen;
	ret->nhits = d->nhits;
	for (uint32_t i = 0; i < d->nhits; i++) {
		const dd_hit *h = &dd_hits(d)[i];

		memcpy(ret->hits[i].rule, h->rule, strlen(h->rule) + 1);
		ret->hits[i].points = h->points;
		ret->hits[i].shadow = h->shadow != 0;
	}
	ret->points = dd_points(ret->hits, d->nhits);
	memcpy(ret->rules_version, d->rules_version, DD_VERSION_LEN);
	dd_model_get(d, &ret->model);
	ret->late = (d->model & DD_LATE) != 0;
}

/* ---------------------------------------------------------------------- */
/* Idempotency. */

static bool
dd_live(live *lv, const dd_entry *d)
{
	int64_t w = live_wm_load(lv);

	return w == INT64_MIN || d->t > w - lv->opts.dedupe_horizon_ms;
}

vigil_err
live_dedupe_find(live *lv, const char *txn_id, const live_keys *k, store_outcome *ret_prior)
{
	size_t    len = k->ltxn;
	uint64_t  h = k->txn;
	dd_stripe *s = &lv->dd[dd_stripe_of(h)];
	dd_entry  *d;
	okey      *ok;
	vigil_err  rv = VIGIL_ENOTFOUND;

	if (len == 0 || len > VIGIL_ID_MAX)
		return VIGIL_ENOTFOUND;
	pthread_mutex_lock(&s->mu);
	ok = omap_find(&s->map, h, txn_id, len, offsetof(dd_entry, k));
	d = ok != NULL ? DD_OF(ok) : NULL;
	if (d != NULL && d->state != DD_CLAIM && dd_live(lv, d)) {
		dd_outcome_get(d, ret_prior);
		rv = d->fp == k->fp ? VIGIL_EEXIST : VIGIL_ECONFLICT;
	}
	pthread_mutex_unlock(&s->mu);
	return rv;
}

/* A new chunk, its pages present, counted for being filled and for the
 * list it joins once it is; or NULL. */
static dd_chunk *
dd_chunk_new(void)
{
	dd_chunk *c = aligned_alloc(DD_CHUNK, DD_CHUNK);

	if (c == NULL)
		return NULL;
	(void)vigil_mem_populate(c, DD_CHUNK);
	atomic_init(&c->nlive, 2);
	c->used = sizeof *c;
	c->next = NULL;
	return c;
}

/* Drops one of c's counts; the last frees it. */
static void
dd_chunk_unref(dd_chunk *c)
{
	if (atomic_fetch_sub_explicit(&c->nlive, 1, memory_order_acq_rel) == 1)
		free(c);
}

/* An entry for an id of len bytes (hash h) of event time t and the nhits
 * hits (<= STORE_MAX_HITS), its rules version, hits, size, stripe and t
 * set; NULL on ENOMEM. dd_chunk_mu serves every scoring thread, so the
 * hashes and a new chunk (16 pages first written, 10-19 us each on a VM)
 * are made before it; one made in vain is freed. Called with h's stripe
 * locked (dd_put), so dd_expire, which takes that lock before it reads
 * more than size, stripe and t, finds the record complete or gone. */
static dd_entry *
dd_alloc(live *lv, size_t len, uint64_t h, int64_t t, const store_hit *hits, uint32_t nhits,
    size_t extra, const char *version)
{
	size_t      size = DD_SIZE(len, nhits) + extra, nv, nh[STORE_MAX_HITS];
	const char *ver, *names[STORE_MAX_HITS];
	unsigned    hv, hvh[STORE_MAX_HITS];
	dd_chunk   *c, *spare = NULL;
	dd_hit     *dh;
	dd_entry   *d;

	nv = strnlen(version, DD_VERSION_LEN - 1); /* a full array is cut, not read past */
	HASH_VALUE(version, nv, hv);
	for (uint32_t i = 0; i < nhits; i++) {
		nh[i] = strnlen(hits[i].rule, sizeof hits[i].rule - 1);
		HASH_VALUE(hits[i].rule, nh[i], hvh[i]);
	}
	for (;;) {
		pthread_mutex_lock(&lv->dd_chunk_mu);
		c = lv->dd_cur;
		if (c != NULL && c->used + size <= DD_CHUNK)
			break;
		if (spare != NULL) { /* the chunk left loses its count for being filled */
			lv->dd_cur = spare;
			if (lv->dd_tail != NULL)
				lv->dd_tail->next = spare;
			else
				lv->dd_head = spare;
			lv->dd_tail = spare;
			if (c != NULL)
				dd_chunk_unref(c);
			c = spare;
			spare = NULL;
			break;
		}
		pthread_mutex_unlock(&lv->dd_chunk_mu);
		if ((spare = dd_chunk_new()) == NULL)
			return NULL;
	}
	ver = dd_intern_locked(lv, version, nv, hv);
	for (uint32_t i = 0; i < nhits && ver != NULL; i++)
		if ((names[i] = dd_intern_locked(lv, hits[i].rule, nh[i], hvh[i])) == NULL)
			ver = NULL;
	if (ver == NULL) {
		pthread_mutex_unlock(&lv->dd_chunk_mu);
		free(spare);
		return NULL;
	}
	d = (dd_entry *)(void *)((char *)c + c->used);
	d->size = (uint16_t)size;
	d->stripe = (uint16_t)dd_stripe_of(h);
	d->t = t;
	c->used += (uint32_t)size;
	atomic_fetch_add_explicit(&c->nlive, 1, memory_order_relaxed);
	pthread_mutex_unlock(&lv->dd_chunk_mu);
	free(spare);
	d->rules_version = ver;
	dh = (dd_hit *)(void *)((char *)d + DD_KEY_END(len));
	for (uint32_t i = 0; i < nhits; i++) {
		dh[i].rule = names[i];
		dh[i].points = hits[i].points;
		dh[i].shadow = hits[i].shadow;
	}
	return d;
}

/* Gives d back (no longer in its map; its stripe locked). */
void
dd_release(live *lv, dd_entry *d)
{
	(void)lv;
	d->state = DD_GONE;
	dd_chunk_unref((dd_chunk *)(void *)((uintptr_t)d & ~(uintptr_t)(DD_CHUNK - 1)));
}

/* Replaces the map's pointer to old's okey by nk's (same id, so the same
 * slot hash): a claim becomes a record, a record its successor, in place. */
static void
omap_swap(omap *m, const okey *old, okey *nk)
{
	for (uint32_t i = omap_home(m, okey_slot_hash(old->h));; i = (i + 1) & m->mask) {
		if (m->sl[i].v == old) {
			m->sl[i].v = nk;
			return;
		}
		if (m->sl[i].h == 0)
			return;
	}
}

/* Records an outcome (the fields of a store_outcome, passed apart so a
 * scored record is not first copied into a 4.7 KB store_outcome), in
 * state: replacing the claim c if it is held, an expired record always,
 * and a live one as mode says. */
vigil_err
dd_put(live *lv, live_claim *c, const char *txn_id, size_t len, uint64_t h, uint64_t fp,
    int64_t event_time_ms, double score, vigil_decision decision, uint64_t features_gen,
    const char *rules_version, const store_hit *hits, uint32_t nhits,
    const store_model_outcome *mo, bool late, uint8_t state, int mode)
{
	dd_stripe *s;
	dd_entry  *d = NULL, *old = NULL;
	okey      *k;
	vigil_err  rv = VIGIL_OK;

	if (nhits > STORE_MAX_HITS)
		nhits = STORE_MAX_HITS;
	if (len == 0 || len > VIGIL_ID_MAX)
		return VIGIL_EINVAL;
	s = &lv->dd[dd_stripe_of(h)];

	pthread_mutex_lock(&s->mu);
	k = omap_find(&s->map, h, txn_id, len, offsetof(dd_entry, k));
	old = k != NULL ? DD_OF(k) : NULL;
	if (old != NULL && old->state == DD_CLAIM && (c == NULL || old != &c->d))
		goto out; /* another begin's claim (a misuse): leave it */
	if (old != NULL && old->state != DD_CLAIM && dd_live(lv, old) &&
	    (mode == DD_KEEP_FIRST || (mode == DD_REPLACE_FAILED && old->state != DD_FAILED)))
		goto out; /* the first outcome stays */
	if (mo != NULL && mo->nreasons > STORE_MAX_REASONS)
		mo = NULL; /* not from app_score: keep no model part rather than a wrong one */
	d = dd_alloc(lv, len, h, event_time_ms, hits, nhits,
	    mo != NULL && mo->present ? DD_MODEL_BYTES(mo->nreasons) : 0, rules_version);
	if (d == NULL) {
		rv = VIGIL_ENOMEM;
		goto out;
	}
	okey_set(&d->k, h, txn_id, len);
	d->fp = fp;
	d->score = score;
	d->decision = (uint8_t)decision;
	d->nhits = (uint8_t)nhits;
	d->state = state;
	d->features_gen = features_gen;
	dd_model_put(d, mo);
	if (late)
		d->model |= DD_LATE;
	if (old != NULL) {
		omap_swap(&s->map, &old->k, &d->k);
		if (old->state == DD_CLAIM)
			atomic_fetch_add_explicit(&lv->ndd, 1, memory_order_relaxed);
		else
			dd_release(lv, old);
		old = NULL;
	} else {
		rv = omap_insert(&s->map, &d->k);
		if (rv != VIGIL_OK)
			dd_release(lv, d);
		else
			atomic_fetch_add_explicit(&lv->ndd, 1, memory_order_relaxed);
	}
out:
	/* A claim not turned into a record (ENOMEM, kept first) goes. */
	if (c != NULL && c->held && old == &c->d)
		omap_remove(&s->map, &c->d.k);
	if (c != NULL)
		c->held = false;
	pthread_mutex_unlock(&s->mu);
	return rv;
}

vigil_err
live_dedupe_put_scored(live *lv, const store_scored *rec, const live_keys *k, bool late)
{
	live_keys rk;

	if (k == NULL) {
		live_keys_compute(&rk, &rec->txn);
		k = &rk;
	}
	return dd_put(lv, NULL, rec->txn.txn_id, k->ltxn, k->txn, k->fp, rec->txn.event_time_ms,
	    rec->score, rec->decision, rec->features_gen, rec->rules_version, rec->hits,
	    rec->nhits, NULL, late, DD_DURABLE, DD_KEEP_FIRST); /* from the archive: no model part */
}

live_claim *
live_claim_new(void)
{
	return calloc(1, sizeof(live_claim));
}

void
live_claim_free(live_claim *c)
{
	free(c);
}

vigil_err
live_dedupe_begin(live *lv, const char *txn_id, const live_keys *k, live_claim *c,
    store_outcome *ret_prior, live_dd_verdict *ret_verdict)
{
	size_t     len = k->ltxn;
	uint64_t   h = k->txn;
	dd_stripe *s = &lv->dd[dd_stripe_of(h)];
	dd_entry  *d;
	okey      *ok;
	vigil_err  rv = VIGIL_OK;

	*ret_verdict = LIVE_DD_NEW;
	if (len == 0 || len > VIGIL_ID_MAX || c->held)
		return VIGIL_EINVAL;
	pthread_mutex_lock(&s->mu);
	ok = omap_find(&s->map, h, txn_id, len, offsetof(dd_entry, k));
	d = ok != NULL ? DD_OF(ok) : NULL;
	if (d != NULL && d->state == DD_CLAIM) {
		/* Another card's begin of this id is in flight (the same card's
		 * would hold the card lock): one of the two is scored. */
		memset(ret_prior, 0, sizeof *ret_prior);
		*ret_verdict = LIVE_DD_CONFLICT;
		goto out;
	}
	if (d != NULL && dd_live(lv, d)) {
		dd_outcome_get(d, ret_prior);
		*ret_verdict = d->fp != k->fp ? LIVE_DD_CONFLICT : d->state == DD_PENDING ?
		    LIVE_DD_WAIT : d->state == DD_FAILED ? LIVE_DD_REDO : LIVE_DD_RETRY;
		goto out;
	}
	if (d != NULL) { /* expired: make room for the claim */
		omap_remove(&s->map, &d->k);
		dd_release(lv, d);
		atomic_fetch_sub_explicit(&lv->ndd, 1, memory_order_relaxed);
	}
	memset(&c->d, 0, offsetof(dd_entry, k));
	okey_set(&c->d.k, h, txn_id, len);
	c->d.fp = k->fp;
	c->d.state = DD_CLAIM;
	rv = omap_insert(&s->map, &c->d.k);
	c->held = rv == VIGIL_OK;
out:
	pthread_mutex_unlock(&s->mu);
	return rv;
}

void
live_dedupe_unclaim(live *lv, live_claim *c)
{
	dd_stripe *s;

	if (c == NULL || !c->held)
		return;
	s = &lv->dd[dd_stripe_of(c->d.k.h)];
	pthread_mutex_lock(&s->mu);
	omap_remove(&s->map, &c->d.k);
	c->held = false;
	pthread_mutex_unlock(&s->mu);
}

vigil_err
live_dedupe_commit(live *lv, live_claim *c, const store_scored *rec, const live_keys *k,
    bool pending, bool late)
{
	return dd_put(lv, c, rec->txn.txn_id, k->ltxn, k->txn, k->fp, rec->txn.event_time_ms,
	    rec->score, rec->decision, rec->features_gen, rec->rules_version, rec->hits,
	    rec->nhits, &rec->model, late, pending ? DD_PENDING : DD_DURABLE, DD_REPLACE_FAILED);
}

/* The state of txn_id's record, -1 if there is none (or only a claim). */
static int
dd_state(live *lv, const char *txn_id, const live_keys *k)
{
	dd_stripe *s = &lv->dd[dd_stripe_of(k->txn)];
	okey      *ok;
	int        st = -1;

	pthread_mutex_lock(&s->mu);
	ok = omap_find(&s->map, k->txn, txn_id, k->ltxn, offsetof(dd_entry, k));
	if (ok != NULL && DD_OF(ok)->state != DD_CLAIM)
		st = DD_OF(ok)->state;
	pthread_mutex_unlock(&s->mu);
	return st;
}

void
live_dedupe_settle(live *lv, const char *txn_id, const live_keys *k, bool durable)
{
	dd_stripe *s = &lv->dd[dd_stripe_of(k->txn)];
	okey      *ok;

	pthread_mutex_lock(&s->mu);
	ok = omap_find(&s->map, k->txn, txn_id, k->ltxn, offsetof(dd_entry, k));
	if (ok != NULL && DD_OF(ok)->state == DD_PENDING)
		DD_OF(ok)->state = durable ? DD_DURABLE : DD_FAILED;
	pthread_mutex_unlock(&s->mu);
	/* A waiter counts itself before it looks (seq_cst): either it sees
	 * the new state or this sees it and wakes it. */
	if (atomic_load(&lv->dd_waiters) > 0) {
		pthread_mutex_lock(&lv->dd_wait_mu);
		pthread_cond_broadcast(&lv->dd_wait_cv);
		pthread_mutex_unlock(&lv->dd_wait_mu);
	}
}

void
live_dedupe_wait(live *lv, const char *txn_id, const live_keys *k)
{
	atomic_fetch_add(&lv->dd_waiters, 1);
	pthread_mutex_lock(&lv->dd_wait_mu);
	while (dd_state(lv, txn_id, k) == DD_PENDING) {
		struct timespec ts;

		vigil_deadline_after(CLOCK_MONOTONIC, &ts, 100);
		(void)pthread_cond_timedwait(&lv->dd_wait_cv, &lv->dd_wait_mu, &ts);
	}
	pthread_mutex_unlock(&lv->dd_wait_mu);
	atomic_fetch_sub(&lv->dd_waiters, 1);
}

void
dd_sweep_stripe(live *lv, uint32_t i)
{
	dd_stripe *s = &lv->dd[i];
	omap      *m = &s->map;

	pthread_mutex_lock(&s->mu);
	for (uint64_t j = 0; m->sl != NULL && j <= m->mask;) {
		dd_entry *d = m->sl[j].v != NULL ? DD_OF(m->sl[j].v) : NULL;

		if (j + SWEEP_AHEAD <= m->mask && m->sl[j + SWEEP_AHEAD].v != NULL) {
			const dd_entry *n = DD_OF(m->sl[j + SWEEP_AHEAD].v);

			__builtin_prefetch(&n->t);
			/* its chunk's count, which a release decrements */
			__builtin_prefetch((const void *)((uintptr_t)n & ~(uintptr_t)(DD_CHUNK - 1)), 1);
		}

		if (d != NULL && d->state != DD_CLAIM && !dd_live(lv, d)) {
			omap_remove_at(m, (uint32_t)j);
			dd_release(lv, d);
			atomic_fetch_sub_explicit(&lv->ndd, 1, memory_order_relaxed);
			continue;
		}
		j++;
	}
	pthread_mutex_unlock(&s->mu);
}

void
dd_expire(live *lv, uint32_t budget)
{
	int64_t w = live_wm_load(lv), cutoff;

	if (w == INT64_MIN || pthread_mutex_trylock(&lv->dd_exp_mu) != 0)
		return; /* nothing can have expired, or another thread is at it */
	cutoff = w - lv->opts.dedupe_horizon_ms;
	while (budget > 0) {
		dd_chunk *c, *next = NULL;
		uint32_t  used;
		bool      filling;

		pthread_mutex_lock(&lv->dd_chunk_mu);
		c = lv->dd_head;
		used = c != NULL ? c->used : 0;
		filling = c == lv->dd_cur;
		if (c != NULL && lv->dd_exp_off >= used && !filling) { /* left: off the list */
			next = c->next;
			lv->dd_head = next;
			if (next == NULL)
				lv->dd_tail = NULL;
		}
		pthread_mutex_unlock(&lv->dd_chunk_mu);
		if (c == NULL)
			break;
		if (lv->dd_exp_off < sizeof *c)
			lv->dd_exp_off = sizeof *c;
		if (lv->dd_exp_off >= used) {
			if (filling)
				break; /* every record carved so far was seen */
			lv->dd_exp_off = sizeof *c;
			dd_chunk_unref(c); /* its count for being on the list */
			continue;
		}
		for (; lv->dd_exp_off < used && budget > 0; budget--) {
			dd_entry  *d = (dd_entry *)(void *)((char *)c + lv->dd_exp_off);
			dd_stripe *s;

			if (d->t > cutoff && d->t <= w)
				goto out; /* within the horizon: so, about, is every later one */
			if (d->t <= cutoff) {
				s = &lv->dd[d->stripe];
				pthread_mutex_lock(&s->mu);
				if (d->state != DD_GONE && !dd_live(lv, d)) {
					omap_remove(&s->map, &d->k);
					dd_release(lv, d);
					atomic_fetch_sub_explicit(&lv->ndd, 1, memory_order_relaxed);
				}
				pthread_mutex_unlock(&s->mu);
			}
			lv->dd_exp_off += d->size;
		}
	}
out:
	pthread_mutex_unlock(&lv->dd_exp_mu);
}

void
dd_chunks_free(live *lv)
{
	dd_chunk *c = lv->dd_head, *next;

	for (; c != NULL; c = next) {
		next = c->next;
		if (c == lv->dd_cur)
			dd_chunk_unref(c); /* its count for being filled */
		dd_chunk_unref(c);
	}
	lv->dd_head = lv->dd_tail = lv->dd_cur = NULL;
}
