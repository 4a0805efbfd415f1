/* SPDX-License-Identifier: MIT */
/*
 * tests/store_live/test_sweep.c - expiry of the live state (store/live.c,
 * through its private header): cards, entities and idempotency records
 * older than the retention are dropped, everything younger is still found
 * with its exact values (this also exercises deletion from the
 * open-addressing tables, which shifts entries).
 */
#include <inttypes.h>

#include "helpers.h"
#include "live.h"
#include "live_obj_int.h"
#include "velocity.h"

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
	live_opts     lo = { .dedupe_horizon_ms = 8 * DAY_MS, .max_cards = 1000000 };
	live         *lv = NULL;
	vel_scratch *sc = vel_scratch_new();
	live_stats    st;
	vigil_value   f[256];
	store_outcome prior;
	live_keys     k;
	const int     n_old = 6000, n_new = 4000;

	(void)state;
	assert_non_null(sc);
	assert_int_equal(live_new(&lo, &lv), VIGIL_OK);
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
	live_opts     lo = { .dedupe_horizon_ms = 8 * DAY_MS, .max_cards = 1000000 };
	live         *lv = NULL;
	live_stats    st;
	store_outcome o;
	const int     n = 5000;
	char          id[32];

	(void)state;
	assert_int_equal(live_new(&lo, &lv), VIGIL_OK);
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

/* The commit path's incremental sweep (live_sweep_maybe after each put)
 * keeps the idempotency records near the horizon's worth, whatever the
 * rate, once they are LIVE_DD_SWEEP_FROM or more: 40 days of 2,000 a
 * day, 8-day horizon, so 16,000 live at the end.
 * One stripe of 4096 per 512 commits (before) swept 156 stripes in these
 * 80,000 commits and kept nearly all 80,000 records. */
static void
test_commit_sweep_keeps_up(void **state)
{
	live_opts     lo = { .dedupe_horizon_ms = 8 * DAY_MS, .max_cards = 1000000 };
	live         *lv = NULL;
	live_stats    st;
	store_outcome o;
	const int     per_day = 2000, days = 40;
	uint64_t      most = 0;
	char          id[32];

	(void)state;
	assert_int_equal(live_new(&lo, &lv), VIGIL_OK);
	memset(&o, 0, sizeof o);
	for (int i = 0; i < per_day * days; i++) {
		vigil_txn x;
		bool      admit;

		snprintf(id, sizeof id, "t%d", i);
		x = txn_make(id, "c", "m", T0 + (int64_t)i * (DAY_MS / per_day), 100);
		live_wm_lock(lv);
		admit = live_wm_admit_locked(lv, x.event_time_ms);
		live_wm_unlock(lv);
		assert_true(admit);
		assert_int_equal(live_dedupe_put(lv, &x, &o), VIGIL_OK);
		live_sweep_maybe(lv);
		live_get_stats(lv, &st);
		if (st.dedupe_entries > most)
			most = st.dedupe_entries;
	}
	/* at most 1.5 times the 16,000 live past the 32,768 from which the
	 * extra sweeping starts (LIVE_DD_SWEEP_FROM; 33,270 measured) */
	if (most > LIVE_DD_SWEEP_FROM + 8 * (uint64_t)per_day / 2)
		fail_msg("%" PRIu64 " idempotency records at most, %d within the horizon", most,
		    8 * per_day);
	live_sweep_all(lv);
	live_get_stats(lv, &st);
	assert_int_equal(st.dedupe_entries, 8 * per_day);
	live_free(lv);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sweep_expires_old_keeps_young),
		cmocka_unit_test(test_dedupe_slots_recycled),
		cmocka_unit_test(test_commit_sweep_keeps_up),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
