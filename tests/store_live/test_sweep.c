/* SPDX-License-Identifier: MIT */
/*
 * tests/store_live/test_sweep.c - expiry of the live state (store/live.c,
 * through its private header): cards, entities and idempotency records
 * older than the retention are dropped, everything younger is still found
 * with its exact values (this also exercises deletion from the
 * open-addressing tables, which shifts entries).
 */
#include "helpers.h"
#include "live_int.h"

static void
apply_txn(live *lv, const vigil_txn *x)
{
	uint32_t      stripe = live_card_stripe(x->card_id);
	store_outcome o;
	live_keys     k;
	bool          admit;

	memset(&o, 0, sizeof o);
	o.score = 1;
	live_keys_compute(&k, x);
	assert_int_equal(live_card_stripe_k(&k), stripe);
	live_card_lock(lv, stripe);
	assert_int_equal(live_card_reserve(lv, x, &k), VIGIL_OK);
	live_wm_lock(lv);
	admit = live_wm_admit_locked(lv, x->event_time_ms);
	live_wm_unlock(lv);
	if (admit)
		live_apply(lv, x, &k);
	live_card_unlock(lv, stripe);
	assert_int_equal(live_dedupe_put(lv, x->txn_id, x->event_time_ms, &o), VIGIL_OK);
}

static void
test_sweep_expires_old_keeps_young(void **state)
{
	live_opts     lo = { .dedupe_horizon_ms = 8 * DAY_MS, .max_cards = 1000000 };
	live         *lv = NULL;
	live_scratch *sc = live_scratch_new();
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
		live_features(lv, sc, &x, &k, f, LIVE_F_ALL);
		assert_true(num_of(f, "vel.card.count_1m") == (old ? 0 : 1));
		assert_true(num_of(f, "vel.terminal.count_10m") == (old ? 0 : 1));
		x = txn_make(id, card, "m", t + 1, 100);
		live_keys_compute(&k, &x);
		assert_int_equal(live_dedupe_find(lv, id, &k, &prior),
		    old ? VIGIL_ENOTFOUND : VIGIL_EEXIST);
	}
	live_scratch_free(sc);
	live_free(lv);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sweep_expires_old_keeps_young),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
