/* SPDX-License-Identifier: MIT */
/*
 * tests/store_live/test_sweep.c - expiry of the live state (store/live.c,
 * through its private header): cards, entities and idempotency records
 * older than the retention are dropped, everything younger is still found
 * with its exact values (this also exercises deletion from the
 * open-addressing tables, which shifts entries).
 */
#include <inttypes.h>
#include <pthread.h>

#include "helpers.h"
#include "live.h"
#include "live_obj_int.h"
#include "velocity.h"

/* A live state of an 8-day dedupe horizon, as every test here uses. */
#define HORIZON_MS (8 * DAY_MS)

static live *
live_8d(void)
{
	live_opts lo = { .dedupe_horizon_ms = HORIZON_MS, .max_cards = 1000000 };
	live     *lv = NULL;

	assert_int_equal(live_new(&lo, &lv), VIGIL_OK);
	return lv;
}

/* Records o as the first outcome of x, with its model part (what a commit
 * records; a second put keeps the first). */
static vigil_err
live_dedupe_put(live *lv, const vigil_txn *x, const store_outcome *o)
{
	live_keys k;

	live_keys_compute(&k, x);
	return dd_put(lv, NULL, x->txn_id, k.ltxn, k.txn, k.fp, x->event_time_ms, o->score,
	    o->decision, o->features_gen, o->rules_version, o->hits, o->nhits, &o->model,
	    o->late, DD_DURABLE, DD_KEEP_FIRST);
}

static void
apply_txn(live *lv, const vigil_txn *x)
{
	store_outcome o;
	live_keys     k;
	uint32_t      stripe;
	bool          admit;

	memset(&o, 0, sizeof o);
	o.score = 1;
	live_keys_compute(&k, x);
	stripe = live_card_stripe_k(&k);
	live_card_lock(lv, stripe);
	assert_int_equal(live_card_reserve(lv, x, &k), VIGIL_OK);
	live_wm_lock(lv);
	admit = live_wm_admit_locked(lv, x->event_time_ms);
	live_wm_unlock(lv);
	if (admit)
		live_apply(lv, x, &k);
	live_card_unlock(lv, stripe);
	assert_int_equal(live_dedupe_put(lv, x, &o), VIGIL_OK);
}

static void
test_sweep_expires_old_keeps_young(void **state)
{
	live         *lv = live_8d();
	vel_scratch *sc = vel_scratch_new();
	live_stats    st;
	vigil_value   f[256];
	store_outcome prior;
	live_keys     k;
	const int     n_old = 6000, n_new = 4000;

	(void)state;
	assert_non_null(sc);
	for (int i = 0; i < n_old + n_new; i++) {
		char      id[32], card[32], term[32];
		bool      old = i < n_old;
		vigil_txn x;

		snprintf(id, sizeof id, "t%d", i);
		snprintf(card, sizeof card, "card-%d", i);
		snprintf(term, sizeof term, "term-%d", i);
		x = txn_make(id, card, "m", old ? T0 + i : T0 + 15 * DAY_MS + i, 100);
		snprintf(x.terminal_id, sizeof x.terminal_id, "%s", term);
		apply_txn(lv, &x);
	}
	live_get_stats(lv, &st);
	assert_int_equal(st.cards, n_old + n_new);
	assert_int_equal(st.dedupe_entries, n_old + n_new);
	live_sweep_all(lv);
	live_get_stats(lv, &st);
	/* W = T0 + 15d + n: cards and entities whose newest event is 14 days
	 * or more behind W are gone, idempotency records 8 days or more. */
	assert_int_equal(st.cards, n_new);
	assert_int_equal(st.events, n_new);
	assert_int_equal(st.entities, 1 + n_new); /* merchant "m" and the new terminals */
	assert_int_equal(st.dedupe_entries, n_new);
	for (int i = 0; i < n_old + n_new; i++) {
		char      card[32], id[32];
		bool      old = i < n_old;
		int64_t   t = old ? T0 + i : T0 + 15 * DAY_MS + i;
		vigil_txn x;

		snprintf(card, sizeof card, "card-%d", i);
		snprintf(id, sizeof id, "t%d", i);
		x = txn_make("probe", card, "m", t + 1, 100);
		snprintf(x.terminal_id, sizeof x.terminal_id, "term-%d", i);
		store_features_from_txn(&x, f, store_schema_nfields());
		live_keys_compute(&k, &x);
		vel_features(lv, sc, &x, &k, f, VEL_F_ALL);
		assert_true(num_of(f, "vel.card.count_1m") == (old ? 0 : 1));
		assert_true(num_of(f, "vel.terminal.count_10m") == (old ? 0 : 1));
		x = txn_make(id, card, "m", t + 1, 100); /* a retry: the same terminal */
		snprintf(x.terminal_id, sizeof x.terminal_id, "term-%d", i);
		live_keys_compute(&k, &x);
		assert_int_equal(live_dedupe_find(lv, id, &k, &prior),
		    old ? VIGIL_ENOTFOUND : VIGIL_EEXIST);
	}
	vel_scratch_free(sc);
	live_free(lv);
}

/* Idempotency records are carved out of shared chunks, freed when their
 * last record goes: outcomes of different sizes (0..3 hits), put, expired,
 * swept, replaced when found expired, and put again, each read back with
 * exactly its own score, decision, hits and rules version; a second put
 * keeps the first outcome. (ASan reports any overlap or use after free.) */
static void
outcome_make(store_outcome *o, int i, int round)
{
	memset(o, 0, sizeof *o);
	o->score = i * 10 + round;
	o->decision = (vigil_decision)(i % 3);
	o->features_gen = (uint64_t)i * 7 + (uint64_t)round;
	snprintf(o->rules_version, sizeof o->rules_version, "rv-%d-%d", i, round);
	o->nhits = (uint32_t)(i % 4);
	for (uint32_t j = 0; j < o->nhits; j++) {
		snprintf(o->hits[j].rule, sizeof o->hits[j].rule, "rule-%d-%u-%d", i, j, round);
		o->hits[j].points = i + (int32_t)j;
		o->hits[j].shadow = (j & 1) != 0;
	}
}

static void
outcome_check(live *lv, const char *id, int64_t t, int i, int round)
{
	store_outcome want, got;
	vigil_txn     x = txn_make(id, "c", "m", t, 100);
	live_keys     k;

	outcome_make(&want, i, round);
	live_keys_compute(&k, &x);
	assert_int_equal(live_dedupe_find(lv, id, &k, &got), VIGIL_EEXIST);
	assert_int_equal(got.score, want.score);
	assert_int_equal(got.decision, want.decision);
	assert_int_equal(got.features_gen, want.features_gen);
	assert_string_equal(got.rules_version, want.rules_version);
	assert_int_equal(got.nhits, want.nhits);
	for (uint32_t j = 0; j < want.nhits; j++) {
		assert_string_equal(got.hits[j].rule, want.hits[j].rule);
		assert_int_equal(got.hits[j].points, want.hits[j].points);
		assert_int_equal(got.hits[j].shadow, want.hits[j].shadow);
	}
}

static void
test_dedupe_slots_recycled(void **state)
{
	live         *lv = live_8d();
	live_stats    st;
	store_outcome o;
	const int     n = 5000;
	char          id[32];

	(void)state;
	for (int round = 0; round < 4; round++) {
		int64_t t0 = T0 + round * 10 * DAY_MS;

		for (int i = 0; i < n; i++) {
			vigil_txn x;
			bool      admit;

			snprintf(id, sizeof id, "t%d", round == 1 ? i : i + round * n);
			x = txn_make(id, "c", "m", t0 + i, 100);
			live_wm_lock(lv);
			admit = live_wm_admit_locked(lv, x.event_time_ms);
			live_wm_unlock(lv);
			assert_true(admit);
			outcome_make(&o, i, round);
			assert_int_equal(live_dedupe_put(lv, &x, &o), VIGIL_OK);
			outcome_make(&o, i, round + 100); /* a second put keeps the first */
			assert_int_equal(live_dedupe_put(lv, &x, &o), VIGIL_OK);
		}
		for (int i = 0; i < n; i++) {
			snprintf(id, sizeof id, "t%d", round == 1 ? i : i + round * n);
			outcome_check(lv, id, t0 + n, i, round);
		}
		/* Round 1 reused round 0's ids after they expired, unswept
		 * (round 0's chunks go as they are replaced); round 2's sweep
		 * empties round 1's chunks. */
		live_get_stats(lv, &st);
		assert_int_equal(st.dedupe_entries, round == 0 ? n : round == 1 ? n : 2 * n);
		live_sweep_all(lv);
		live_get_stats(lv, &st);
		assert_int_equal(st.dedupe_entries, n);
	}
	live_free(lv);
}

/* Puts a record of id "t<i>" at event time t (admitted to the watermark
 * if admit), then counts the commit, as store_score_commit does. */
static void
put_commit(live *lv, int i, int64_t t, bool admit)
{
	store_outcome o;
	vigil_txn     x;
	char          id[32];

	memset(&o, 0, sizeof o);
	snprintf(id, sizeof id, "t%d", i);
	x = txn_make(id, "c", "m", t, 100);
	if (admit) {
		live_wm_lock(lv);
		assert_true(live_wm_admit_locked(lv, x.event_time_ms));
		live_wm_unlock(lv);
	}
	assert_int_equal(live_dedupe_put(lv, &x, &o), VIGIL_OK);
	live_sweep_maybe(lv);
}

/* Commits ids [from, to), per_day a day from T0; the most idempotency
 * records held after any commit. */
static uint64_t
stream_most(live *lv, int from, int to, int per_day)
{
	live_stats st;
	uint64_t   most = 0;

	for (int i = from; i < to; i++) {
		put_commit(lv, i, T0 + (int64_t)i * (DAY_MS / per_day), true);
		live_get_stats(lv, &st);
		if (st.dedupe_entries > most)
			most = st.dedupe_entries;
	}
	return most;
}

/* The commit path's expiry (live_sweep_maybe after each put) keeps the
 * idempotency records at the horizon's worth, whatever the rate: 40 days
 * of 2,000 a day, 8-day horizon, so 16,000 live at the end and never more
 * than that plus one walk's interval. (Scanning one stripe of 4096 per
 * 512 commits swept 156 stripes in these 80,000 commits and kept nearly
 * all 80,000 records; scanning 4 map slots a commit kept up to 33,270.) */
static void
test_commit_sweep_keeps_up(void **state)
{
	live         *lv = live_8d();
	live_stats    st;
	const int     per_day = 2000, days = 40;
	uint64_t      most;

	(void)state;
	most = stream_most(lv, 0, per_day * days, per_day);
	if (most > 8 * (uint64_t)per_day + LIVE_DD_EXPIRE_EVERY + 1)
		fail_msg("%" PRIu64 " idempotency records at most, %d within the horizon", most,
		    8 * per_day);
	live_sweep_all(lv);
	live_get_stats(lv, &st);
	assert_int_equal(st.dedupe_entries, 8 * per_day);
	live_free(lv);
}

/* A record whose event time is ahead of the watermark (a transaction from
 * the future, max_future_skew_ms 0) is stepped over: it stays, found, and
 * every record after it still expires on time; the stripe sweep takes it
 * once the watermark has passed it by the horizon. */
static void
test_expiry_steps_over_the_future(void **state)
{
	live         *lv = live_8d();
	live_stats    st;
	store_outcome got;
	const int     per_day = 2000, days = 20;
	const int64_t future = T0 + 30 * DAY_MS;
	uint64_t      most;
	vigil_txn     x;
	live_keys     k;

	(void)state;
	put_commit(lv, 0, T0, true);
	put_commit(lv, -1, future, false); /* carved second, not admitted */
	most = stream_most(lv, 1, per_day * days, per_day);
	if (most > 8 * (uint64_t)per_day + LIVE_DD_EXPIRE_EVERY + 2)
		fail_msg("%" PRIu64 " records at most: the future one held the rest", most);
	x = txn_make("t-1", "c", "m", future, 100);
	live_keys_compute(&k, &x);
	assert_int_equal(live_dedupe_find(lv, "t-1", &k, &got), VIGIL_EEXIST);
	x = txn_make("t0", "c", "m", T0, 100);
	live_keys_compute(&k, &x);
	assert_int_equal(live_dedupe_find(lv, "t0", &k, &got), VIGIL_ENOTFOUND);
	/* 20 days of traffic: the watermark is 10 days short of the future
	 * record, which is live and stays past a full sweep */
	live_sweep_all(lv);
	live_get_stats(lv, &st);
	assert_int_equal(st.dedupe_entries, 8 * per_day + 1);
	/* 19 days later it is past the horizon: the stripe sweep frees it */
	for (int i = 0; i < 100; i++)
		put_commit(lv, per_day * days + i, future + 9 * DAY_MS + i, true);
	live_sweep_all(lv);
	live_get_stats(lv, &st);
	assert_int_equal(st.dedupe_entries, 100);
	live_free(lv);
}

/* Expiry beside puts on other threads: four threads each put their own
 * ids at advancing event times and replace every tenth (a retry after a
 * failed outcome: the record it replaces is gone from its chunk) while
 * the commits expire records. Nothing within the horizon is lost, every
 * record past it goes, and ASan sees no chunk used after it is freed. */
#define XT_THREADS 4
#define XT_PER     30000

typedef struct xt_arg {
	live *lv;
	int   id;
	bool  put[XT_PER]; /* admitted by the watermark, so put */
} xt_arg;

static void *
xt_main(void *arg)
{
	xt_arg       *a = arg;
	store_outcome o;
	char          id[32];

	memset(&o, 0, sizeof o);
	for (int i = 0; i < XT_PER; i++) {
		int64_t   t = T0 + (int64_t)i * (DAY_MS / 1000);
		vigil_txn x;
		live_keys k;
		bool      admit;

		snprintf(id, sizeof id, "x%d-%d", a->id, i);
		x = txn_make(id, "c", "m", t, 100);
		live_keys_compute(&k, &x);
		live_wm_lock(a->lv);
		admit = live_wm_admit_locked(a->lv, t);
		live_wm_unlock(a->lv);
		a->put[i] = admit;
		if (!admit)
			continue;
		o.score = i;
		if (dd_put(a->lv, NULL, id, k.ltxn, k.txn, k.fp, t, o.score, o.decision, 0, "rv",
		        NULL, 0, NULL, false, i % 10 == 0 ? DD_FAILED : DD_DURABLE,
		        DD_KEEP_FIRST) != VIGIL_OK)
			return (void *)1;
		if (i % 10 == 0 && dd_put(a->lv, NULL, id, k.ltxn, k.txn, k.fp, t, o.score + 1,
		                       o.decision, 0, "rv", NULL, 0, NULL, false, DD_DURABLE,
		                       DD_REPLACE_FAILED) != VIGIL_OK)
			return (void *)1;
		live_sweep_maybe(a->lv);
	}
	return NULL;
}

static void
test_expiry_beside_puts(void **state)
{
	live         *lv = live_8d();
	live_stats st;
	pthread_t  th[XT_THREADS];
	xt_arg    *a = calloc(XT_THREADS, sizeof *a);
	int64_t    w, horizon_from;
	uint64_t   want = 0;

	(void)state;
	assert_non_null(a);
	for (int j = 0; j < XT_THREADS; j++) {
		a[j].lv = lv;
		a[j].id = j;
		assert_int_equal(pthread_create(&th[j], NULL, xt_main, &a[j]), 0);
	}
	for (int j = 0; j < XT_THREADS; j++) {
		void *rv;

		assert_int_equal(pthread_join(th[j], &rv), 0);
		assert_null(rv);
	}
	live_sweep_all(lv);
	w = live_wm_load(lv);
	horizon_from = w - HORIZON_MS;
	for (int j = 0; j < XT_THREADS; j++) {
		for (int i = 0; i < XT_PER; i++) {
			int64_t       t = T0 + (int64_t)i * (DAY_MS / 1000);
			char          id[32];
			vigil_txn     x;
			live_keys     k;
			store_outcome got;
			vigil_err     rv;

			snprintf(id, sizeof id, "x%d-%d", j, i);
			x = txn_make(id, "c", "m", t, 100);
			live_keys_compute(&k, &x);
			rv = live_dedupe_find(lv, id, &k, &got);
			if (!a[j].put[i]) {
				if (rv != VIGIL_ENOTFOUND)
					fail_msg("%s was refused by the watermark, yet found", id);
			} else if (t > horizon_from) {
				want++;
				if (rv != VIGIL_EEXIST)
					fail_msg("%s (t %" PRId64 ") within the horizon, lost", id, t);
				assert_int_equal(got.score, i % 10 == 0 ? i + 1 : i);
			} else if (rv != VIGIL_ENOTFOUND) {
				fail_msg("%s past the horizon, still found", id);
			}
		}
	}
	live_get_stats(lv, &st);
	assert_int_equal(st.dedupe_entries, want);
	assert_true(want > 0);
	live_free(lv);
	free(a);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sweep_expires_old_keeps_young),
		cmocka_unit_test(test_dedupe_slots_recycled),
		cmocka_unit_test(test_commit_sweep_keeps_up),
		cmocka_unit_test(test_expiry_steps_over_the_future),
		cmocka_unit_test(test_expiry_beside_puts),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
