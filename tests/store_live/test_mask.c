/* SPDX-License-Identifier: MIT */
/*
 * tests/store_live/test_mask.c - feature masks (store_feature_mask): a
 * lookup under a mask gives exactly the unmasked values for the slots it
 * asks for and missing for every other one, whether the mask is a
 * context's (store_ctx_set_features) or a memory db's (which then keeps no
 * windows of the entity kinds it does not need). Checked slot by slot over
 * a random workload with out-of-order times, absent terminals, devices and
 * IPs, retries and a batch generation; plus the API's refusals.
 */
#include "helpers.h"
#include "mask.h"

#define NTXN   6000
#define NCARDS 300

static uint64_t rng_s = 0x2545f4914f6cdd1dULL;

static uint64_t
rnd(void)
{
	rng_s ^= rng_s << 13;
	rng_s ^= rng_s >> 7;
	rng_s ^= rng_s << 17;
	return rng_s;
}

/* A generation with a card, merchant and terminal profile for some ids. */
static void
gen_write_small(const char *dir)
{
	store_genw          *w = NULL;
	store_diag           d;
	store_card_profile   cp;
	store_entity_profile ep;
	store_gen_meta       meta;
	char                 id[32];

	assert_int_equal(store_genw_begin(dir, &w, &d), VIGIL_OK);
	memset(&cp, 0, sizeof cp);
	memset(&ep, 0, sizeof ep);
	for (int i = 0; i < NCARDS; i += 2) {
		cp.count_7d = (uint32_t)i;
		cp.count_90d = 10 + (uint32_t)i;
		cp.amount_mean_90d = 20.0 + i;
		cp.amount_std_90d = 3.0;
		cp.hour_hist[i % 24] = 5;
		cp.ncountries = 1;
		memcpy(cp.countries[0], "FR", 2);
		snprintf(id, sizeof id, "c%d", i);
		assert_int_equal(store_genw_put_card(w, id, &cp), VIGIL_OK);
	}
	for (int i = 0; i < 20; i += 3) {
		ep.count_30d = 100 + (uint32_t)i;
		ep.fraud_rate_30d = 0.01 * i;
		snprintf(id, sizeof id, "m%d", i);
		assert_int_equal(store_genw_put_merchant(w, id, &ep), VIGIL_OK);
		snprintf(id, sizeof id, "t%d", i);
		assert_int_equal(store_genw_put_terminal(w, id, &ep), VIGIL_OK);
	}
	memset(&meta, 0, sizeof meta);
	meta.as_of_ms = T0;
	assert_int_equal(store_genw_commit(w, &meta, 0, &d), VIGIL_OK);
}

static vigil_txn
txn_random(int i, int64_t *t)
{
	char      id[32], card[32], merchant[32];
	vigil_txn x;

	/* Mostly forward, sometimes back by up to an hour; a few retries. */
	*t += (int64_t)(rnd() % 40000);
	snprintf(id, sizeof id, "x%d", (rnd() % 50) == 0 && i > 10 ? i - 1 - (int)(rnd() % 10) : i);
	snprintf(card, sizeof card, "c%d", (int)(rnd() % NCARDS));
	snprintf(merchant, sizeof merchant, "m%d", (int)(rnd() % 20));
	x = txn_make(id, card, merchant, *t - ((rnd() % 8) == 0 ? (int64_t)(rnd() % HOUR_MS) : 0),
	    (int64_t)(rnd() % 20000));
	if (rnd() % 4 != 0)
		snprintf(x.terminal_id, sizeof x.terminal_id, "t%d", (int)(rnd() % 20));
	if (rnd() % 3 != 0)
		snprintf(x.device_id, sizeof x.device_id, "d%d", (int)(rnd() % 40));
	if (rnd() % 3 != 0)
		snprintf(x.ip, sizeof x.ip, "10.0.0.%d", (int)(rnd() % 30));
	if (rnd() % 5 == 0)
		memcpy(x.country, (rnd() & 1) ? "DE" : "BE", 3);
	if (rnd() % 6 == 0)
		x.country[0] = '\0';
	if (rnd() % 2 == 0) {
		x.has_location = true;
		x.lat = 48.0 + (double)(rnd() % 100) / 10.0;
		x.lon = 2.0 + (double)(rnd() % 100) / 10.0;
	}
	x.mcc = (rnd() % 3) ? 5411 : 0;
	return x;
}

/* fm under mask m against the full vector ff: asked slots equal, the
 * others missing. */
static void
assert_masked(const store_feature_mask *m, const vigil_value *ff, const vigil_value *fm,
    const char *what, int i)
{
	for (uint32_t s = 0; s < store_schema_nfields(); s++) {
		const store_field *fd = store_schema_field(s);

		if (!store_feature_mask_has(m, s)) {
			if (fm[s].present)
				fail_msg("%s, txn %d: %s not asked for but present", what, i, fd->name);
			continue;
		}
		if (ff[s].present != fm[s].present)
			fail_msg("%s, txn %d: %s present %d, full %d", what, i, fd->name,
			    fm[s].present, ff[s].present);
		if (!ff[s].present)
			continue;
		if (fd->type == VIGIL_T_STR) {
			if (ff[s].len != fm[s].len || memcmp(ff[s].str, fm[s].str, ff[s].len) != 0)
				fail_msg("%s, txn %d: %s differs", what, i, fd->name);
		} else if (memcmp(&ff[s].num, &fm[s].num, sizeof ff[s].num) != 0) {
			fail_msg("%s, txn %d: %s = %.17g, full %.17g", what, i, fd->name, fm[s].num,
			    ff[s].num);
		}
	}
}

/* The masks under test: one per live aggregate and batch table, the
 * transaction fields alone, nothing, and random ones. */
#define NMASKS 24

static void
masks_make(store_feature_mask *m)
{
	static const char *const single[] = {
		"vel.card.count_1h", "vel.card.distinct_merchants_24h",
		"vel.card.country_seen_7d", "vel.card.kmh_from_last", "vel.merchant.count_1m",
		"vel.terminal.count_10m", "vel.terminal.distinct_cards_1h", "vel.device.count_1h",
		"vel.device.distinct_cards_24h", "vel.ip.count_1h", "vel.ip.distinct_cards_24h",
		"card.amount_zscore", "merchant.fraud_rate_30d", "terminal.count_30d",
	};
	int k = 0;

	for (size_t j = 0; j < sizeof single / sizeof single[0]; j++, k++) {
		store_feature_mask_none(&m[k]);
		store_feature_mask_set(&m[k], slot_of(single[j]));
	}
	store_feature_mask_none(&m[k]);
	for (uint32_t s = 0; s <= slot_of("event_time"); s++)
		store_feature_mask_set(&m[k], s);
	k++;
	store_feature_mask_none(&m[k++]);
	for (; k < NMASKS; k++) {
		store_feature_mask_none(&m[k]);
		for (uint32_t s = 0; s < store_schema_nfields(); s++)
			if (rnd() % (2 + (uint64_t)k % 4) == 0)
				store_feature_mask_set(&m[k], s);
	}
}

/*
 * One full memory db, and per mask a memory db created with it and a
 * context with it on the full db. Every transaction is scored into all of
 * them (begin compared slot by slot with the full db's begin), and a probe
 * lookup at a random earlier time is compared too.
 */
static void
test_masked_equals_full(void **state)
{
	char              *dir = tmpdir_new();
	store_gen         *g = NULL;
	store_diag         d;
	store_db_opts      o;
	store_feature_mask m[NMASKS];
	store_db          *full = NULL, *mdb[NMASKS];
	store_ctx         *cfull, *cm[NMASKS], *cctx[NMASKS];
	static store_scored s;
	static vigil_value ff[256], fm[256];
	store_outcome      prior, prior_m;
	store_db_stats     st_full, st;
	int64_t            t = T0 + DAY_MS;

	(void)state;
	gen_write_small(dir);
	assert_int_equal(store_gen_open_current(dir, &g, &d), VIGIL_OK);
	masks_make(m);
	assert_int_equal(store_db_new_memory(NULL, &full), VIGIL_OK);
	store_db_set_gen(full, g);
	cfull = store_ctx_new(full);
	assert_non_null(cfull);
	for (int k = 0; k < NMASKS; k++) {
		store_db_opts_default(&o);
		assert_int_equal(store_db_new_memory_masked(&o, &m[k], &mdb[k]), VIGIL_OK);
		store_db_set_gen(mdb[k], g);
		cm[k] = store_ctx_new(mdb[k]);
		cctx[k] = store_ctx_new(full);
		assert_non_null(cm[k]);
		assert_non_null(cctx[k]);
		assert_int_equal(store_ctx_set_features(cctx[k], &m[k]), VIGIL_OK);
	}
	for (int i = 0; i < NTXN; i++) {
		vigil_txn x = txn_random(i, &t);
		vigil_err rv = store_score_begin(full, cfull, &x, ff, store_schema_nfields(), &prior);

		if (rv == VIGIL_OK) {
			scored_make(&s, &x, (int32_t)(rnd() % 100));
			/* The full db's features stay in ff (strings point into cfull). */
		} else {
			/* a repeated id: a retry, or another transaction reusing it */
			assert_true(rv == VIGIL_EEXIST || rv == VIGIL_ECONFLICT);
		}
		for (int k = 0; k < NMASKS; k++) {
			vigil_err rvm = store_score_begin(mdb[k], cm[k], &x, fm, store_schema_nfields(),
			    &prior_m);

			assert_int_equal(rvm, rv);
			if (rv == VIGIL_EEXIST || rv == VIGIL_ECONFLICT) {
				assert_int_equal(prior_m.score, prior.score);
				continue;
			}
			assert_masked(&m[k], ff, fm, "memory db mask", i);
			assert_int_equal(store_score_commit(mdb[k], cm[k], &s, &d), VIGIL_OK);
		}
		if (rv == VIGIL_OK)
			assert_int_equal(store_score_commit(full, cfull, &s, &d), VIGIL_OK);
		/* Lookups (nothing applied) at an earlier time on every db. */
		if (i % 7 == 0) {
			vigil_txn p = x;

			p.event_time_ms -= (int64_t)(rnd() % (2 * DAY_MS));
			assert_int_equal(store_features_lookup(full, cfull, &p, ff,
			    store_schema_nfields()), VIGIL_OK);
			for (int k = 0; k < NMASKS; k++) {
				assert_int_equal(store_features_lookup(mdb[k], cm[k], &p, fm,
				    store_schema_nfields()), VIGIL_OK);
				assert_masked(&m[k], ff, fm, "memory db mask, lookup", i);
				assert_int_equal(store_features_lookup(full, cctx[k], &p, fm,
				    store_schema_nfields()), VIGIL_OK);
				assert_masked(&m[k], ff, fm, "context mask, lookup", i);
			}
		}
	}
	/* A db that needs no entity feature keeps no entity windows; the
	 * cards and idempotency records are kept as always. */
	store_db_get_stats(full, &st_full);
	assert_true(st_full.live_entities > 0);
	for (int k = 0; k < NMASKS; k++) {
		store_db_get_stats(mdb[k], &st);
		assert_int_equal(st.live_cards, st_full.live_cards);
		assert_int_equal(st.dedupe_entries, st_full.dedupe_entries);
		assert_int_equal(st.late_events, st_full.late_events);
		assert_true(st.live_entities <= st_full.live_entities);
	}
	store_db_get_stats(mdb[0], &st); /* vel.card.count_1h only */
	assert_int_equal(st.live_entities, 0);
	for (int k = 0; k < NMASKS; k++) {
		store_ctx_free(cm[k]);
		store_ctx_free(cctx[k]);
		store_db_close(mdb[k]);
	}
	store_ctx_free(cfull);
	store_db_close(full);
	store_gen_close(g);
	tmpdir_free(dir);
}

/* The refusals: a context cannot ask for more than its db serves, nor
 * change its mask inside a begin. (A data directory serves every feature:
 * store_db_open takes no mask.) */
static void
test_mask_refusals(void **state)
{
	store_db_opts      o;
	store_db          *db = NULL;
	store_ctx         *ctx;
	store_feature_mask m, wide;
	store_outcome      prior;
	vigil_value        f[256];
	vigil_txn          x = txn_make("a", "c1", "m1", T0, 100);

	(void)state;
	store_feature_mask_none(&m);
	store_feature_mask_set(&m, slot_of("vel.card.count_1m"));
	store_feature_mask_set(&m, 100000); /* outside the schema: ignored */
	assert_true(store_feature_mask_has(&m, slot_of("vel.card.count_1m")));
	assert_false(store_feature_mask_has(&m, slot_of("vel.card.count_10m")));
	assert_false(store_feature_mask_has(&m, 100000));
	store_db_opts_default(&o);
	assert_int_equal(store_db_new_memory_masked(&o, &m, &db), VIGIL_OK);
	ctx = store_ctx_new(db);
	assert_non_null(ctx);
	store_feature_mask_all(&wide);
	assert_int_equal(store_ctx_set_features(ctx, &wide), VIGIL_EINVAL);
	assert_int_equal(store_score_begin(db, ctx, &x, f, store_schema_nfields(), &prior),
	    VIGIL_OK);
	assert_true(num_of(f, "vel.card.count_1m") == 0);
	assert_false(present_of(f, "amount"));
	assert_int_equal(store_ctx_set_features(ctx, NULL), VIGIL_EINVAL);
	store_score_abort(db, ctx);
	store_feature_mask_none(&m);
	assert_int_equal(store_ctx_set_features(ctx, &m), VIGIL_OK);
	assert_int_equal(store_features_lookup(db, ctx, &x, f, store_schema_nfields()), VIGIL_OK);
	for (uint32_t s = 0; s < store_schema_nfields(); s++)
		assert_false(f[s].present);
	assert_int_equal(store_ctx_set_features(ctx, NULL), VIGIL_OK);
	assert_int_equal(store_features_lookup(db, ctx, &x, f, store_schema_nfields()), VIGIL_OK);
	assert_true(present_of(f, "vel.card.count_1m"));
	store_ctx_free(ctx);
	store_db_close(db);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_masked_equals_full),
		cmocka_unit_test(test_mask_refusals),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
