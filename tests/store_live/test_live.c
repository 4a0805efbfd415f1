/* SPDX-License-Identifier: MIT */
/*
 * tests/store_live/test_live.c - the speed layer through store_db in memory
 * mode: window boundaries, event-time ordering, late events, idempotency,
 * distinct sets, distance and speed, other entities, batch features from a
 * generation, per-card cap folding, and exactness under concurrent threads.
 */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <xxhash.h>

#include "helpers.h"

typedef struct fixture {
	store_db   *db;
	store_ctx  *ctx;
	vigil_value f[256];
} fixture;

static int
setup(void **state)
{
	fixture *fx = calloc(1, sizeof *fx);

	assert_non_null(fx);
	assert_int_equal(store_db_new_memory(NULL, &fx->db), VIGIL_OK);
	fx->ctx = store_ctx_new(fx->db);
	assert_non_null(fx->ctx);
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	fixture *fx = *state;

	store_ctx_free(fx->ctx);
	store_db_close(fx->db);
	free(fx);
	return 0;
}

static void
apply(fixture *fx, const char *id, const char *card, const char *merchant, int64_t t,
    int64_t amount_minor)
{
	vigil_txn     x = txn_make(id, card, merchant, t, amount_minor);
	store_outcome prior;

	assert_int_equal(score_one(fx->db, fx->ctx, &x, 0, fx->f, &prior), VIGIL_OK);
}

static void
lookup(fixture *fx, const char *card, int64_t t)
{
	vigil_txn x = txn_make("probe", card, "m-probe", t, 100);

	assert_int_equal(store_features_lookup(fx->db, fx->ctx, &x, fx->f, store_schema_nfields()),
	    VIGIL_OK);
}

/* An event exactly w old is outside window w; 1 ms younger is inside. */
static void
test_window_boundaries(void **state)
{
	fixture *fx = *state;

	apply(fx, "a", "c1", "m1", T0, 1000);
	lookup(fx, "c1", T0);
	assert_true(num_of(fx->f, "vel.card.count_1m") == 1); /* same instant, earlier arrival */
	lookup(fx, "c1", T0 + MIN_MS - 1);
	assert_true(num_of(fx->f, "vel.card.count_1m") == 1);
	lookup(fx, "c1", T0 + MIN_MS);
	assert_true(num_of(fx->f, "vel.card.count_1m") == 0);
	assert_true(num_of(fx->f, "vel.card.count_10m") == 1);
	lookup(fx, "c1", T0 + HOUR_MS - 1);
	assert_true(num_of(fx->f, "vel.card.count_1h") == 1);
	assert_true(num_of(fx->f, "vel.card.sum_1h") == 10.0);
	assert_true(num_of(fx->f, "vel.card.distinct_merchants_1h") == 1);
	lookup(fx, "c1", T0 + HOUR_MS);
	assert_true(num_of(fx->f, "vel.card.count_1h") == 0);
	assert_true(num_of(fx->f, "vel.card.sum_1h") == 0.0);
	assert_true(num_of(fx->f, "vel.card.distinct_merchants_1h") == 0);
	assert_true(num_of(fx->f, "vel.card.count_24h") == 1);
	assert_true(num_of(fx->f, "vel.card.distinct_merchants_24h") == 1);
	lookup(fx, "c1", T0 + DAY_MS);
	assert_true(num_of(fx->f, "vel.card.count_24h") == 0);
	assert_true(num_of(fx->f, "vel.card.count_7d") == 1);
	assert_true(num_of(fx->f, "vel.card.secs_since_last") == 86400.0);
	lookup(fx, "c1", T0 + 7 * DAY_MS - 1);
	assert_true(num_of(fx->f, "vel.card.count_7d") == 1);
	lookup(fx, "c1", T0 + 7 * DAY_MS);
	assert_true(num_of(fx->f, "vel.card.count_7d") == 0);
	/* The previous transaction is looked for within the largest window. */
	assert_false(present_of(fx->f, "vel.card.secs_since_last"));
	/* Before the event: nothing. */
	lookup(fx, "c1", T0 - 1);
	assert_true(num_of(fx->f, "vel.card.count_7d") == 0);
}

/* The previous transaction of the card at the probe's merchant: the newest
 * one before it in event time, within 7 days, other merchants skipped. */
static void
test_secs_since_merchant(void **state)
{
	fixture  *fx = *state;
	vigil_txn x;

	apply(fx, "a", "c1", "m-probe", T0, 100);
	apply(fx, "b", "c1", "m-probe", T0 + HOUR_MS, 100);
	apply(fx, "c", "c1", "m2", T0 + 2 * HOUR_MS, 100);
	lookup(fx, "c1", T0 + 3 * HOUR_MS);
	assert_true(num_of(fx->f, "vel.card.secs_since_merchant") == 2 * 3600.0);
	assert_true(num_of(fx->f, "vel.card.secs_since_last") == 3600.0);
	/* between the two: the first one */
	lookup(fx, "c1", T0 + 30 * MIN_MS);
	assert_true(num_of(fx->f, "vel.card.secs_since_merchant") == 1800.0);
	/* another merchant: none */
	x = txn_make("probe2", "c1", "m3", T0 + 3 * HOUR_MS, 100);
	assert_int_equal(store_features_lookup(fx->db, fx->ctx, &x, fx->f, store_schema_nfields()),
	    VIGIL_OK);
	assert_false(present_of(fx->f, "vel.card.secs_since_merchant"));
	assert_true(present_of(fx->f, "vel.card.secs_since_last"));
	/* older than the live week: none */
	lookup(fx, "c1", T0 + HOUR_MS + 7 * DAY_MS);
	assert_false(present_of(fx->f, "vel.card.secs_since_merchant"));
}

/* The amount against the card's live day and week: the means of the
 * earlier events in each window, this one excluded. */
static void
test_amount_to_mean(void **state)
{
	fixture *fx = *state;

	lookup(fx, "c1", T0);
	assert_false(present_of(fx->f, "vel.card.amount_to_mean_24h"));
	assert_false(present_of(fx->f, "vel.card.amount_to_mean_7d"));
	apply(fx, "a", "c1", "m1", T0, 400);                 /* 4.00, day 0 */
	apply(fx, "b", "c1", "m1", T0 + 2 * DAY_MS, 100);    /* 1.00, day 2 */
	apply(fx, "c", "c1", "m1", T0 + 2 * DAY_MS + 1, 300); /* 3.00, day 2 */
	lookup(fx, "c1", T0 + 2 * DAY_MS + HOUR_MS);          /* the probe: 1.00 */
	assert_true(num_of(fx->f, "vel.card.amount_to_mean_24h") == 0.5);      /* 1 / 2 */
	assert_true(num_of(fx->f, "vel.card.amount_to_mean_7d") == 1.0 / (8.0 / 3.0));
	/* day 4: the day is empty, the week is not */
	lookup(fx, "c1", T0 + 4 * DAY_MS);
	assert_false(present_of(fx->f, "vel.card.amount_to_mean_24h"));
	assert_true(present_of(fx->f, "vel.card.amount_to_mean_7d"));
}

static void
test_new_card_defaults(void **state)
{
	fixture *fx = *state;

	lookup(fx, "fresh", T0);
	assert_true(num_of(fx->f, "vel.card.count_1h") == 0);
	assert_true(num_of(fx->f, "vel.card.sum_7d") == 0);
	assert_true(num_of(fx->f, "vel.card.distinct_countries_7d") == 0);
	assert_true(num_of(fx->f, "vel.card.country_seen_7d") == 0);
	assert_true(num_of(fx->f, "vel.card.merchant_seen_7d") == 0);
	assert_false(present_of(fx->f, "vel.card.secs_since_last"));
	assert_false(present_of(fx->f, "vel.card.secs_since_merchant"));
	assert_false(present_of(fx->f, "vel.card.km_from_last"));
	assert_false(present_of(fx->f, "vel.card.kmh_from_last"));
	assert_true(num_of(fx->f, "vel.merchant.count_1h") == 0);
	assert_false(present_of(fx->f, "vel.terminal.count_10m"));
	assert_false(present_of(fx->f, "vel.device.count_1h"));
	assert_false(present_of(fx->f, "vel.ip.distinct_cards_24h"));
	/* No generation: batch features missing, transaction fields present. */
	assert_false(present_of(fx->f, "card.count_7d"));
	assert_false(present_of(fx->f, "merchant.fraud_rate_30d"));
	assert_true(num_of(fx->f, "amount") == 1.0);
	assert_int_equal(fx->f[slot_of("card_id")].len, 5);
	assert_memory_equal(fx->f[slot_of("card_id")].str, "fresh", 5);
}

/* Out-of-order events are placed by event time; each transaction sees only
 * the events before it in event time. */
static void
test_out_of_order(void **state)
{
	fixture      *fx = *state;
	vigil_txn     x;
	store_outcome prior;

	apply(fx, "a", "c1", "m1", T0, 100);                  /* 10:00 */
	apply(fx, "b", "c1", "m2", T0 + 30 * MIN_MS, 200);    /* 10:30 */
	/* 10:15 arrives last: it sees 10:00 only. */
	x = txn_make("c", "c1", "m3", T0 + 15 * MIN_MS, 400);
	assert_int_equal(store_score_begin(fx->db, fx->ctx, &x, fx->f, store_schema_nfields(),
	    &prior), VIGIL_OK);
	assert_true(num_of(fx->f, "vel.card.count_1h") == 1);
	assert_true(num_of(fx->f, "vel.card.sum_1h") == 1.0);
	assert_true(num_of(fx->f, "vel.card.secs_since_last") == 900.0);
	store_score_abort(fx->db, fx->ctx);
	assert_int_equal(score_one(fx->db, fx->ctx, &x, 0, fx->f, &prior), VIGIL_OK);
	/* 10:20 sees 10:00 and 10:15, not 10:30. */
	lookup(fx, "c1", T0 + 20 * MIN_MS);
	assert_true(num_of(fx->f, "vel.card.count_1h") == 2);
	assert_true(num_of(fx->f, "vel.card.sum_1h") == 5.0);
	assert_true(num_of(fx->f, "vel.card.secs_since_last") == 300.0);
	assert_true(num_of(fx->f, "vel.card.count_10m") == 1);
	/* 10:31 sees all three. */
	lookup(fx, "c1", T0 + 31 * MIN_MS);
	assert_true(num_of(fx->f, "vel.card.count_1h") == 3);
	assert_true(num_of(fx->f, "vel.card.sum_1h") == 7.0);
	assert_true(num_of(fx->f, "vel.card.distinct_merchants_1h") == 3);
	assert_true(num_of(fx->f, "vel.card.secs_since_last") == 60.0);
}

/* Older than the largest window behind the newest event: late, counted,
 * not applied; 1 ms younger is applied. */
static void
test_late_events(void **state)
{
	fixture       *fx = *state;
	store_db_stats st;

	apply(fx, "new", "c1", "m1", T0 + 7 * DAY_MS, 100);
	apply(fx, "late", "c2", "m1", T0, 100);           /* exactly 7d behind W */
	apply(fx, "ok", "c2", "m1", T0 + 1, 200);        /* 1 ms less */
	store_db_get_stats(fx->db, &st);
	assert_int_equal(st.late_events, 1);
	lookup(fx, "c2", T0 + 2);
	assert_true(num_of(fx->f, "vel.card.count_7d") == 1);
	assert_true(num_of(fx->f, "vel.card.sum_7d") == 2.0);
	/* The late one is still recorded for retries. */
	{
		vigil_txn     x = txn_make("late", "c2", "m1", T0, 100);
		store_outcome prior;

		assert_int_equal(store_score_begin(fx->db, fx->ctx, &x, fx->f,
		    store_schema_nfields(), &prior), VIGIL_EEXIST);
	}
}

static store_commit_info
apply_info(fixture *fx, const char *id, const char *card, int64_t t)
{
	store_commit_info ci;

	apply(fx, id, card, "m1", t, 100);
	store_ctx_commit_info(fx->ctx, &ci);
	return ci;
}

/* What a commit says of its transaction (store_ctx_commit_info; replies
 * carry it): late at exactly W - 7 d, not 1 ms later; past the dedupe
 * horizon (default 8 d) at exactly W - 8 d, not 1 ms later; a lookup
 * gives the same estimate; an error clears it. */
static void
test_commit_info(void **state)
{
	fixture          *fx = *state;
	store_commit_info ci;
	vigil_txn         x;
	store_outcome     prior;
	const int64_t     W = T0 + 30 * DAY_MS;

	ci = apply_info(fx, "first", "c1", W);
	assert_false(ci.late);
	assert_false(ci.past_dedupe_horizon);
	ci = apply_info(fx, "6d", "c2", W - 6 * DAY_MS);
	assert_false(ci.late);
	assert_false(ci.past_dedupe_horizon);
	ci = apply_info(fx, "7d-1", "c2", W - 7 * DAY_MS + 1);
	assert_false(ci.late);
	ci = apply_info(fx, "7d", "c2", W - 7 * DAY_MS);
	assert_true(ci.late);
	assert_false(ci.past_dedupe_horizon);
	ci = apply_info(fx, "8d-1", "c3", W - 8 * DAY_MS + 1);
	assert_true(ci.late);
	assert_false(ci.past_dedupe_horizon);
	ci = apply_info(fx, "8d", "c3", W - 8 * DAY_MS);
	assert_true(ci.late);
	assert_true(ci.past_dedupe_horizon);
	/* Not remembered: the same id again is scored again, flagged again. */
	ci = apply_info(fx, "8d", "c3", W - 8 * DAY_MS);
	assert_true(ci.past_dedupe_horizon);
	/* The one inside the horizon is remembered: a retry. */
	x = txn_make("8d-1", "c3", "m1", W - 8 * DAY_MS + 1, 100);
	assert_int_equal(store_score_begin(fx->db, fx->ctx, &x, fx->f, store_schema_nfields(),
	    &prior), VIGIL_EEXIST);
	store_ctx_commit_info(fx->ctx, &ci);
	assert_false(ci.late);
	assert_false(ci.past_dedupe_horizon);
	/* A lookup's estimate. */
	x = txn_make("probe", "c4", "m1", W - 10 * DAY_MS, 100);
	assert_int_equal(store_features_lookup(fx->db, fx->ctx, &x, fx->f,
	    store_schema_nfields()), VIGIL_OK);
	store_ctx_commit_info(fx->ctx, &ci);
	assert_true(ci.late);
	assert_true(ci.past_dedupe_horizon);
	x = txn_make("probe", "c4", "m1", W, 100);
	assert_int_equal(store_features_lookup(fx->db, fx->ctx, &x, fx->f,
	    store_schema_nfields()), VIGIL_OK);
	store_ctx_commit_info(fx->ctx, &ci);
	assert_false(ci.late);
	assert_false(ci.past_dedupe_horizon);
}

/* Records of ids of every length (1 to the cap), 0 to STORE_MAX_HITS hits
 * and three rules versions in turn (one of them a full 71 bytes) each give
 * back their own outcome on a retry. */

/* The name of hit i of the record of an id of len bytes: distinct per
 * record, of the longest length a hit's name has (63) for some. */
static void
hit_name(uint32_t len, uint32_t i, char out[64])
{
	if (i == 0 && len % 5 == 0) {
		int n = snprintf(out, 64, "long-%u-", len);

		memset(out + n, 'x', (size_t)(63 - n));
		out[63] = '\0';
		return;
	}
	snprintf(out, 64, "rule-%u-%u", len, i);
}
static void
test_idempotency_sizes(void **state)
{
	fixture             *fx = *state;
	static store_scored  sc;
	static store_outcome prior;
	char                 vers[3][72];
	store_diag           d;

	snprintf(vers[0], sizeof vers[0], "v-one");
	snprintf(vers[1], sizeof vers[1], "v-two");
	memset(vers[2], 'z', sizeof vers[2] - 1);
	vers[2][sizeof vers[2] - 1] = '\0';
	for (int pass = 0; pass < 2; pass++) {
		for (uint32_t len = 1; len <= VIGIL_ID_MAX; len++) {
			char      id[VIGIL_ID_MAX + 1];
			vigil_txn x;
			uint32_t  nh = len % (STORE_MAX_HITS + 1);

			memset(id, 'a' + (int)(len % 26), len);
			id[len] = '\0';
			id[0] = 'k';
			x = txn_make(id, "c1", "m1", T0 + len, 100);
			if (pass == 1) {
				memset(&prior, 0, sizeof prior);
				assert_int_equal(store_score_begin(fx->db, fx->ctx, &x, fx->f,
				    store_schema_nfields(), &prior), VIGIL_EEXIST);
				assert_int_equal(prior.score, (int32_t)len);
				assert_true(prior.features_gen == 1000 + len);
				assert_string_equal(prior.rules_version, vers[len % 3]);
				assert_int_equal(prior.nhits, nh);
				for (uint32_t i = 0; i < nh; i++) {
					char want[64];

					hit_name(len, i, want);
					assert_string_equal(prior.hits[i].rule, want);
					assert_int_equal(prior.hits[i].points, (int32_t)(len * 100 + i));
					assert_int_equal(prior.hits[i].shadow, i % 2 == 1);
				}
				continue;
			}
			assert_int_equal(store_score_begin(fx->db, fx->ctx, &x, fx->f,
			    store_schema_nfields(), &prior), VIGIL_OK);
			memset(&sc, 0, sizeof sc);
			sc.txn = x;
			sc.score = (int32_t)len;
			sc.decision = VIGIL_DECISION_REVIEW;
			sc.features_gen = 1000 + len;
			memcpy(sc.rules_version, vers[len % 3], sizeof sc.rules_version);
			sc.scored_at_ms = x.event_time_ms;
			sc.nhits = nh;
			for (uint32_t i = 0; i < nh; i++) {
				hit_name(len, i, sc.hits[i].rule);
				sc.hits[i].points = (int32_t)(len * 100 + i);
				sc.hits[i].shadow = i % 2 == 1;
			}
			assert_int_equal(store_score_commit(fx->db, fx->ctx, &sc, &d), VIGIL_OK);
		}
	}
}

/* A hit whose name fills its 64 bytes without a NUL is kept as its first
 * 63, and the bytes after the array (points, shadow) are not read as more
 * of the name. */
static void
test_idempotency_full_rule_name(void **state)
{
	fixture      *fx = *state;
	vigil_txn     x = txn_make("t-full-name", "c1", "m1", T0, 500);
	store_outcome prior;
	store_scored  sc;
	store_diag    d;
	char          want[64];

	assert_int_equal(store_score_begin(fx->db, fx->ctx, &x, fx->f, store_schema_nfields(),
	    &prior), VIGIL_OK);
	memset(&sc, 0, sizeof sc);
	sc.txn = x;
	sc.score = 40;
	sc.decision = VIGIL_DECISION_REVIEW;
	sc.scored_at_ms = x.event_time_ms;
	snprintf(sc.rules_version, sizeof sc.rules_version, "%s", "v-full");
	sc.nhits = 2;
	memset(sc.hits[0].rule, 'y', sizeof sc.hits[0].rule); /* no NUL */
	sc.hits[0].points = 0x41414141;
	snprintf(sc.hits[1].rule, sizeof sc.hits[1].rule, "%s", "second");
	sc.hits[1].points = 7;
	assert_int_equal(store_score_commit(fx->db, fx->ctx, &sc, &d), VIGIL_OK);
	assert_int_equal(store_score_begin(fx->db, fx->ctx, &x, fx->f, store_schema_nfields(),
	    &prior), VIGIL_EEXIST);
	memset(want, 'y', 63);
	want[63] = '\0';
	assert_int_equal(prior.nhits, 2);
	assert_string_equal(prior.hits[0].rule, want);
	assert_int_equal(prior.hits[0].points, 0x41414141);
	assert_string_equal(prior.hits[1].rule, "second");
	assert_string_equal(prior.rules_version, "v-full");
}

/* A retried txn_id returns the first outcome and is not counted twice. */
static void
test_idempotency(void **state)
{
	fixture      *fx = *state;
	vigil_txn     x = txn_make("t-1", "c1", "m1", T0, 500);
	store_outcome prior;
	store_db_stats st;

	assert_int_equal(score_one(fx->db, fx->ctx, &x, 70, fx->f, &prior), VIGIL_OK);
	memset(&prior, 0, sizeof prior);
	/* A retry returns the first outcome, even with its event time, device,
	 * IP or location changed (a re-sent message may carry new ones). */
	x.event_time_ms += 1500;
	snprintf(x.device_id, sizeof x.device_id, "%s", "dev-retry");
	snprintf(x.ip, sizeof x.ip, "%s", "192.0.2.7");
	x.has_location = true;
	x.lat = 48.85;
	x.lon = 2.35;
	assert_int_equal(score_one(fx->db, fx->ctx, &x, 10, fx->f, &prior), VIGIL_EEXIST);
	assert_int_equal(prior.score, 70);
	assert_int_equal(prior.decision, VIGIL_DECISION_DECLINE);
	assert_int_equal(prior.nhits, 1);
	assert_string_equal(prior.hits[0].rule, "r70");
	assert_string_equal(prior.rules_version, "test-rules-1");
	/* Nothing is locked after EEXIST: the same ctx can go on. */
	lookup(fx, "c1", T0 + 1);
	assert_true(num_of(fx->f, "vel.card.count_1m") == 1);
	assert_true(num_of(fx->f, "vel.card.sum_1m") == 5.0);
	store_db_get_stats(fx->db, &st);
	assert_int_equal(st.dedupe_entries, 1);
	/* Nothing is locked after EEXIST: the same ctx can go on. */
	/* The same txn_id for another transaction (another amount, currency,
	 * card, merchant or terminal) is a conflict, not a retry: refused with
	 * the first outcome in prior, nothing locked, recorded or counted. */
	for (int v = 0; v < 5; v++) {
		vigil_txn y = txn_make("t-1", "c1", "m1", T0, 500);

		switch (v) {
		case 0: y.amount_minor = 501; break;
		case 1: snprintf(y.currency, sizeof y.currency, "%s", "USD"); break;
		case 2: snprintf(y.card_id, sizeof y.card_id, "%s", "c2"); break;
		case 3: snprintf(y.merchant_id, sizeof y.merchant_id, "%s", "m2"); break;
		default: snprintf(y.terminal_id, sizeof y.terminal_id, "%s", "term-9"); break;
		}
		memset(&prior, 0, sizeof prior);
		assert_int_equal(score_one(fx->db, fx->ctx, &y, 10, fx->f, &prior),
		    VIGIL_ECONFLICT);
		assert_int_equal(prior.score, 70);
	}
	lookup(fx, "c1", T0 + 1);
	assert_true(num_of(fx->f, "vel.card.count_1m") == 1);
	lookup(fx, "c2", T0 + 1);
	assert_true(num_of(fx->f, "vel.card.count_1m") == 0);
	store_db_get_stats(fx->db, &st);
	assert_int_equal(st.dedupe_entries, 1);
	/* An aborted attempt leaves no outcome: the next try is scored. */
	x = txn_make("t-2", "c1", "m1", T0 + 5, 100);
	assert_int_equal(store_score_begin(fx->db, fx->ctx, &x, fx->f, store_schema_nfields(),
	    &prior), VIGIL_OK);
	store_score_abort(fx->db, fx->ctx);
	assert_int_equal(score_one(fx->db, fx->ctx, &x, 0, fx->f, &prior), VIGIL_OK);
	assert_true(num_of(fx->f, "vel.card.count_1m") == 1);
}

static void
test_dedupe_horizon_expires(void **state)
{
	fixture      *fx = *state;
	vigil_txn     x = txn_make("t-1", "c1", "m1", T0, 500);
	store_outcome prior;

	assert_int_equal(score_one(fx->db, fx->ctx, &x, 1, fx->f, &prior), VIGIL_OK);
	/* Default horizon 8 days: still known after 8d - 1 ms of event time. */
	apply(fx, "adv1", "c9", "m1", T0 + 8 * DAY_MS - 1, 100);
	assert_int_equal(store_score_begin(fx->db, fx->ctx, &x, fx->f, store_schema_nfields(),
	    &prior), VIGIL_EEXIST);
	apply(fx, "adv2", "c9", "m1", T0 + 8 * DAY_MS, 100);
	x.event_time_ms = T0 + 8 * DAY_MS; /* a reuse of the id, long after */
	assert_int_equal(store_score_begin(fx->db, fx->ctx, &x, fx->f, store_schema_nfields(),
	    &prior), VIGIL_OK);
	store_score_abort(fx->db, fx->ctx);
}

static void
test_distinct_and_seen(void **state)
{
	fixture  *fx = *state;
	vigil_txn x;
	store_outcome prior;
	const char *cc[] = { "FR", "DE", "DE", "IT", "" };

	for (int i = 0; i < 5; i++) {
		char id[8], m[8];

		snprintf(id, sizeof id, "d%d", i);
		snprintf(m, sizeof m, "m%d", i % 3);
		x = txn_make(id, "c1", m, T0 + i * 10 * HOUR_MS, 100 * (i + 1));
		memcpy(x.country, cc[i], strlen(cc[i]) + 1);
		assert_int_equal(score_one(fx->db, fx->ctx, &x, 0, fx->f, &prior), VIGIL_OK);
	}
	/* Events at 0h, 10h, 20h, 30h, 40h. At 40h30: 24h window = 20h, 30h, 40h. */
	x = txn_make("q", "c1", "m0", T0 + 40 * HOUR_MS + 30 * MIN_MS, 100);
	memcpy(x.country, "FR", 3);
	assert_int_equal(store_features_lookup(fx->db, fx->ctx, &x, fx->f, store_schema_nfields()),
	    VIGIL_OK);
	assert_true(num_of(fx->f, "vel.card.count_24h") == 3);
	assert_true(num_of(fx->f, "vel.card.distinct_merchants_24h") == 3); /* m2, m0, m1 */
	assert_true(num_of(fx->f, "vel.card.distinct_merchants_1h") == 1);
	assert_true(num_of(fx->f, "vel.card.distinct_countries_24h") == 2); /* DE, IT */
	assert_true(num_of(fx->f, "vel.card.distinct_countries_7d") == 3);
	assert_true(num_of(fx->f, "vel.card.country_seen_7d") == 1);
	assert_true(num_of(fx->f, "vel.card.merchant_seen_7d") == 1);
	assert_true(num_of(fx->f, "vel.card.small_count_10m") == 0);
	memcpy(x.country, "US", 3);
	snprintf(x.merchant_id, sizeof x.merchant_id, "never");
	assert_int_equal(store_features_lookup(fx->db, fx->ctx, &x, fx->f, store_schema_nfields()),
	    VIGIL_OK);
	assert_true(num_of(fx->f, "vel.card.country_seen_7d") == 0);
	assert_true(num_of(fx->f, "vel.card.merchant_seen_7d") == 0);
	x.country[0] = '\0';
	assert_int_equal(store_features_lookup(fx->db, fx->ctx, &x, fx->f, store_schema_nfields()),
	    VIGIL_OK);
	assert_false(present_of(fx->f, "vel.card.country_seen_7d"));
}

/* vel.card.device_seen_7d: this device among the card's earlier events of
 * the last 7 days (another card's use of it does not count); missing when
 * the transaction has no device. */
static void
test_device_seen(void **state)
{
	fixture      *fx = *state;
	vigil_txn     x;
	store_outcome prior;

	x = txn_make("e1", "c1", "m1", T0, 100);
	snprintf(x.device_id, sizeof x.device_id, "%s", "phone-a");
	assert_int_equal(score_one(fx->db, fx->ctx, &x, 0, fx->f, &prior), VIGIL_OK);
	assert_true(num_of(fx->f, "vel.card.device_seen_7d") == 0); /* its first use */
	x = txn_make("e2", "c2", "m1", T0 + HOUR_MS, 100);
	snprintf(x.device_id, sizeof x.device_id, "%s", "laptop-b");
	assert_int_equal(score_one(fx->db, fx->ctx, &x, 0, fx->f, &prior), VIGIL_OK);
	x = txn_make("e3", "c1", "m2", T0 + 2 * HOUR_MS, 100); /* no device */
	assert_int_equal(score_one(fx->db, fx->ctx, &x, 0, fx->f, &prior), VIGIL_OK);
	assert_false(present_of(fx->f, "vel.card.device_seen_7d"));

	x = txn_make("q", "c1", "m3", T0 + 3 * HOUR_MS, 100);
	snprintf(x.device_id, sizeof x.device_id, "%s", "phone-a");
	assert_int_equal(store_features_lookup(fx->db, fx->ctx, &x, fx->f, store_schema_nfields()),
	    VIGIL_OK);
	assert_true(present_of(fx->f, "vel.card.device_seen_7d"));
	assert_true(num_of(fx->f, "vel.card.device_seen_7d") == 1);
	snprintf(x.device_id, sizeof x.device_id, "%s", "laptop-b"); /* c2's, not c1's */
	assert_int_equal(store_features_lookup(fx->db, fx->ctx, &x, fx->f, store_schema_nfields()),
	    VIGIL_OK);
	assert_true(num_of(fx->f, "vel.card.device_seen_7d") == 0);
	/* Seen 7 days - 1 ms ago: still in the window; 7 days ago: out of it. */
	snprintf(x.device_id, sizeof x.device_id, "%s", "phone-a");
	x.event_time_ms = T0 + 7 * DAY_MS - 1;
	assert_int_equal(store_features_lookup(fx->db, fx->ctx, &x, fx->f, store_schema_nfields()),
	    VIGIL_OK);
	assert_true(num_of(fx->f, "vel.card.device_seen_7d") == 1);
	x.event_time_ms = T0 + 7 * DAY_MS;
	assert_int_equal(store_features_lookup(fx->db, fx->ctx, &x, fx->f, store_schema_nfields()),
	    VIGIL_OK);
	assert_true(num_of(fx->f, "vel.card.device_seen_7d") == 0);
}

static void
test_small_count(void **state)
{
	fixture *fx = *state;

	apply(fx, "s1", "c1", "m1", T0, 499);  /* 4.99: small */
	apply(fx, "s2", "c1", "m1", T0 + 1, 500); /* 5.00: not small */
	apply(fx, "s3", "c1", "m1", T0 + 2, 1);
	lookup(fx, "c1", T0 + 10 * MIN_MS - 1);
	assert_true(num_of(fx->f, "vel.card.small_count_10m") == 2);
	lookup(fx, "c1", T0 + 10 * MIN_MS);
	assert_true(num_of(fx->f, "vel.card.small_count_10m") == 2 - 1);
}

static void
test_distance_and_speed(void **state)
{
	fixture      *fx = *state;
	vigil_txn     x;
	store_outcome prior;
	double        km;

	x = txn_make("p1", "c1", "m1", T0, 100);
	x.has_location = true;
	x.lat = 48.8566; /* Paris */
	x.lon = 2.3522;
	assert_int_equal(score_one(fx->db, fx->ctx, &x, 0, fx->f, &prior), VIGIL_OK);
	/* An unlocated event in between does not hide the located one. */
	apply(fx, "p2", "c1", "m1", T0 + 10 * MIN_MS, 100);
	x = txn_make("p3", "c1", "m1", T0 + 2 * HOUR_MS, 100);
	x.has_location = true;
	x.lat = 40.7128; /* New York */
	x.lon = -74.0060;
	assert_int_equal(store_features_lookup(fx->db, fx->ctx, &x, fx->f, store_schema_nfields()),
	    VIGIL_OK);
	km = vigil_haversine_km(48.8566, 2.3522, 40.7128, -74.0060);
	assert_true(km > 5800 && km < 5900);
	assert_true(fabs(num_of(fx->f, "vel.card.km_from_last") - km) < 1e-9);
	assert_true(fabs(num_of(fx->f, "vel.card.kmh_from_last") - km / 2.0) < 1e-9);
	assert_true(num_of(fx->f, "vel.card.secs_since_last") == 110 * 60.0);
	/* Unlocated transaction: distance missing. */
	lookup(fx, "c1", T0 + 3 * HOUR_MS);
	assert_false(present_of(fx->f, "vel.card.km_from_last"));
	/* Same millisecond: speed over one second, not infinite. */
	x.event_time_ms = T0;
	assert_int_equal(store_features_lookup(fx->db, fx->ctx, &x, fx->f, store_schema_nfields()),
	    VIGIL_OK);
	assert_true(fabs(num_of(fx->f, "vel.card.kmh_from_last") - km * 3600.0) < 1e-6);
}

static void
test_other_entities(void **state)
{
	fixture      *fx = *state;
	vigil_txn     x;
	store_outcome prior;

	for (int i = 0; i < 6; i++) {
		char id[8], card[8];

		snprintf(id, sizeof id, "e%d", i);
		snprintf(card, sizeof card, "k%d", i % 3);
		x = txn_make(id, card, "shop", T0 + i * 20 * MIN_MS, 100);
		snprintf(x.terminal_id, sizeof x.terminal_id, "term");
		snprintf(x.device_id, sizeof x.device_id, "dev");
		snprintf(x.ip, sizeof x.ip, "192.0.2.7");
		assert_int_equal(score_one(fx->db, fx->ctx, &x, 0, fx->f, &prior), VIGIL_OK);
	}
	/* Events at 0, 20, 40, 60, 80, 100 min. At 100 min + 30 s: */
	x = txn_make("q", "k9", "shop", T0 + 100 * MIN_MS + 30000, 100);
	snprintf(x.terminal_id, sizeof x.terminal_id, "term");
	snprintf(x.device_id, sizeof x.device_id, "dev");
	snprintf(x.ip, sizeof x.ip, "192.0.2.7");
	assert_int_equal(store_features_lookup(fx->db, fx->ctx, &x, fx->f, store_schema_nfields()),
	    VIGIL_OK);
	assert_true(num_of(fx->f, "vel.merchant.count_1m") == 1);
	assert_true(num_of(fx->f, "vel.merchant.count_1h") == 3);   /* 60, 80, 100 */
	assert_true(num_of(fx->f, "vel.terminal.count_10m") == 1);
	assert_true(num_of(fx->f, "vel.terminal.distinct_cards_1h") == 3);
	assert_true(num_of(fx->f, "vel.device.count_1h") == 3);
	assert_true(num_of(fx->f, "vel.device.distinct_cards_24h") == 3);
	assert_true(num_of(fx->f, "vel.ip.count_1h") == 3);
	assert_true(num_of(fx->f, "vel.ip.distinct_cards_24h") == 3);
	snprintf(x.ip, sizeof x.ip, "198.51.100.1");
	assert_int_equal(store_features_lookup(fx->db, fx->ctx, &x, fx->f, store_schema_nfields()),
	    VIGIL_OK);
	assert_true(num_of(fx->f, "vel.ip.count_1h") == 0);
	/* Out of order, at 90 min (10 min behind the newest event, 100): a
	 * merchant keeps its events after 100 - 60 = 40 min, so its hour
	 * (30, 90] counts 60 and 80, not 40; a device keeps 24 h: all three. */
	x.event_time_ms = T0 + 90 * MIN_MS;
	snprintf(x.ip, sizeof x.ip, "192.0.2.7");
	assert_int_equal(store_features_lookup(fx->db, fx->ctx, &x, fx->f, store_schema_nfields()),
	    VIGIL_OK);
	assert_true(num_of(fx->f, "vel.merchant.count_1h") == 2);
	assert_true(num_of(fx->f, "vel.terminal.distinct_cards_1h") == 2);
	assert_true(num_of(fx->f, "vel.device.count_1h") == 3);
	assert_true(num_of(fx->f, "vel.ip.count_1h") == 3);
}

/* Another replica's transactions as observations (store_db_observe): the
 * entity features equal those of a db that scored them itself, applied in
 * any order; the card's own state and the watermark are untouched. */
static void
test_observations(void **state)
{
	fixture          *fx = *state;
	store_db         *other;
	store_ctx        *octx;
	store_observation obs[6];
	vigil_value       f2[256];
	vigil_txn         x;
	store_outcome     prior;
	static const char *const ent[] = { "vel.merchant.count_1m", "vel.merchant.count_1h",
		"vel.terminal.count_10m", "vel.terminal.distinct_cards_1h", "vel.device.count_1h",
		"vel.device.distinct_cards_24h", "vel.ip.count_1h", "vel.ip.distinct_cards_24h" };

	assert_int_equal(store_db_new_memory(NULL, &other), VIGIL_OK);
	octx = store_ctx_new(other);
	assert_non_null(octx);
	for (int i = 0; i < 6; i++) {
		char id[8], card[8];

		snprintf(id, sizeof id, "e%d", i);
		snprintf(card, sizeof card, "k%d", i % 3);
		x = txn_make(id, card, "shop", T0 + i * 20 * MIN_MS, 100);
		snprintf(x.terminal_id, sizeof x.terminal_id, "term");
		snprintf(x.device_id, sizeof x.device_id, "dev");
		snprintf(x.ip, sizeof x.ip, "192.0.2.7");
		assert_int_equal(score_one(fx->db, fx->ctx, &x, 0, fx->f, &prior), VIGIL_OK);
		store_observation_from_txn(&x, &obs[i]);
		assert_true(obs[i].card_hash == store_card_hash(card));
	}
	for (int i = 5; i >= 0; i--) /* newest first: placed by event time */
		assert_int_equal(store_db_observe(other, &obs[i]), VIGIL_OK);

	x = txn_make("q", "k0", "shop", T0 + 100 * MIN_MS + 30000, 100);
	snprintf(x.terminal_id, sizeof x.terminal_id, "term");
	snprintf(x.device_id, sizeof x.device_id, "dev");
	snprintf(x.ip, sizeof x.ip, "192.0.2.7");
	assert_int_equal(store_features_lookup(fx->db, fx->ctx, &x, fx->f, store_schema_nfields()),
	    VIGIL_OK);
	assert_int_equal(store_features_lookup(other, octx, &x, f2, store_schema_nfields()),
	    VIGIL_OK);
	for (size_t i = 0; i < sizeof ent / sizeof ent[0]; i++) {
		print_message("%s: scored %g, observed %g\n", ent[i], num_of(fx->f, ent[i]),
		    num_of(f2, ent[i]));
		assert_true(num_of(fx->f, ent[i]) == num_of(f2, ent[i]));
	}
	assert_true(num_of(f2, "vel.device.distinct_cards_24h") == 3);
	/* the card's state is its own replica's: nothing observed */
	assert_true(num_of(fx->f, "vel.card.count_24h") == 2);
	assert_true(num_of(f2, "vel.card.count_24h") == 0);

	/* bad observations are refused, nothing applied */
	obs[0].merchant_id[0] = '\0';
	assert_int_equal(store_db_observe(other, &obs[0]), VIGIL_EINVAL);
	store_observation_from_txn(&x, &obs[0]);
	memset(obs[0].device_id, 'd', sizeof obs[0].device_id); /* unterminated */
	assert_int_equal(store_db_observe(other, &obs[0]), VIGIL_EINVAL);
	assert_int_equal(store_features_lookup(other, octx, &x, f2, store_schema_nfields()),
	    VIGIL_OK);
	assert_true(num_of(f2, "vel.merchant.count_1h") == 3);

	store_ctx_free(octx);
	store_db_close(other);
}

/* A card over the per-card cap keeps exact short windows and exact 7-day
 * counts and sums (folded minutes), within the documented approximation. */
static void
test_card_cap_folding(void **state)
{
	fixture       *fx = *state;
	const int      n = 5000; /* over LIVE_CARD_CAP = 4096 */
	store_db_stats st;
	char           id[16];

	for (int i = 0; i < n; i++) {
		snprintf(id, sizeof id, "f%d", i);
		apply(fx, id, "busy", i % 2 ? "m1" : "m2", T0 + (int64_t)i * 60000, 100);
	}
	store_db_get_stats(fx->db, &st);
	assert_true(st.live_events <= 4096);
	lookup(fx, "busy", T0 + (int64_t)(n - 1) * 60000 + 30000);
	assert_true(num_of(fx->f, "vel.card.count_1m") == 1);
	assert_true(num_of(fx->f, "vel.card.count_1h") == 60);
	assert_true(num_of(fx->f, "vel.card.count_24h") == 1440);
	assert_true(num_of(fx->f, "vel.card.count_7d") == n);
	assert_true(num_of(fx->f, "vel.card.sum_7d") == n * 1.0);
	assert_true(num_of(fx->f, "vel.card.distinct_merchants_24h") == 2);
}

/* ---- exactness under concurrency ---- */

#define EX_THREADS 4
#define EX_CARDS   6
#define EX_PER     300

typedef struct ex_arg {
	store_db  *db;
	int        id;
	atomic_int seen[EX_CARDS][EX_THREADS * EX_PER];
} ex_arg;

typedef struct ex_thread {
	ex_arg *a;
	int     id;
} ex_thread;

static void *
ex_main(void *p)
{
	ex_thread    *t = p;
	store_ctx    *ctx = store_ctx_new(t->a->db);
	vigil_value   f[256];
	store_outcome prior;
	uint32_t      slot = 0;
	static _Thread_local store_scored s;

	store_schema_find("vel.card.count_1m", &slot);
	for (int i = 0; i < EX_PER * EX_CARDS; i++) {
		char      id[32], card[16];
		vigil_txn x;
		int       c = (i + t->id) % EX_CARDS;
		store_diag d;

		snprintf(id, sizeof id, "x-%d-%d", t->id, i);
		snprintf(card, sizeof card, "hot-%d", c);
		/* Same event time for all: ties are ordered by arrival, so the
		 * k-th committed transaction must see exactly k-1. */
		x = txn_make(id, card, "m", T0, 100);
		if (i % EX_CARDS >= EX_CARDS / 2 + 1)
			continue; /* each thread touches a subset; totals differ per card */
		if (store_score_begin(t->a->db, ctx, &x, f, store_schema_nfields(), &prior) != VIGIL_OK)
			abort();
		atomic_fetch_add(&t->a->seen[c][(int)f[slot].num], 1);
		scored_make(&s, &x, 0);
		if (store_score_commit(t->a->db, ctx, &s, &d) != VIGIL_OK)
			abort();
	}
	store_ctx_free(ctx);
	return NULL;
}

static void
test_concurrent_exactness(void **state)
{
	fixture  *fx = *state;
	ex_arg   *a = calloc(1, sizeof *a);
	ex_thread th[EX_THREADS];
	pthread_t tid[EX_THREADS];

	assert_non_null(a);
	a->db = fx->db;
	for (int i = 0; i < EX_THREADS; i++) {
		th[i].a = a;
		th[i].id = i;
		assert_int_equal(pthread_create(&tid[i], NULL, ex_main, &th[i]), 0);
	}
	for (int i = 0; i < EX_THREADS; i++)
		pthread_join(tid[i], NULL);
	for (int c = 0; c < EX_CARDS; c++) {
		int  total = 0, k;
		char card[16];

		for (k = 0; k < EX_THREADS * EX_PER; k++)
			total += atomic_load(&a->seen[c][k]);
		/* Every count 0 .. total-1 was seen exactly once. */
		for (k = 0; k < total; k++)
			assert_int_equal(atomic_load(&a->seen[c][k]), 1);
		snprintf(card, sizeof card, "hot-%d", c);
		lookup(fx, card, T0);
		assert_true(num_of(fx->f, "vel.card.count_1m") == total);
		assert_true(total > 0);
	}
	free(a);
}

/* ---- batch features from a generation ---- */

static void
test_batch_features(void **state)
{
	fixture             *fx = *state;
	char                *dir = tmpdir_new();
	store_genw          *w = NULL;
	store_gen           *g = NULL;
	store_diag           d;
	store_card_profile   cp;
	store_entity_profile ep;
	store_gen_meta       meta;
	vigil_txn            x;

	memset(&cp, 0, sizeof cp);
	cp.count_90d = 10;
	cp.amount_mean_90d = 20.0;
	cp.amount_std_90d = 5.0;
	cp.first_seen_ms = T0 - 30 * DAY_MS;
	cp.hour_hist[9] = 1;
	cp.hour_hist[10] = 4;
	cp.hour_hist[11] = 3;
	cp.hour_hist[22] = 2;
	cp.ncountries = 1;
	memcpy(cp.countries[0], "FR", 2);
	cp.nmerchants = 1;
	cp.merchants[0] = XXH64("m1", 2, 0);
	memset(&ep, 0, sizeof ep);
	ep.count_7d = 5;
	ep.fraud_rate_30d = 0.25;
	memset(&meta, 0, sizeof meta);
	meta.as_of_ms = T0;
	assert_int_equal(store_genw_begin(dir, &w, &d), VIGIL_OK);
	assert_int_equal(store_genw_put_card(w, "c1", &cp), VIGIL_OK);
	assert_int_equal(store_genw_put_merchant(w, "m1", &ep), VIGIL_OK);
	assert_int_equal(store_genw_commit(w, &meta, 0, &d), VIGIL_OK);
	assert_int_equal(store_gen_open_current(dir, &g, &d), VIGIL_OK);
	store_db_set_gen(fx->db, g);
	assert_int_equal(store_db_generation(fx->db), 1);

	x = txn_make("b1", "c1", "m1", T0 + 10 * HOUR_MS + 5 * MIN_MS, 3000); /* 10:05 UTC, 30.00 */
	assert_int_equal(store_features_lookup(fx->db, fx->ctx, &x, fx->f, store_schema_nfields()),
	    VIGIL_OK);
	assert_true(num_of(fx->f, "card.count_90d") == 10);
	assert_true(num_of(fx->f, "card.amount_zscore") == 2.0);
	assert_true(num_of(fx->f, "card.age_days") > 30.4 && num_of(fx->f, "card.age_days") < 30.5);
	assert_true(num_of(fx->f, "card.first_seen") == (double)(T0 - 30 * DAY_MS) / 1000.0);
	assert_true(num_of(fx->f, "card.hour_share") == 0.8); /* (1 + 4 + 3) / 10 */
	/* 23:30 UTC the day before 1970: hour 23 for both (hours 22, 23, 0: 2 / 10) */
	x = txn_make("b0", "c1", "m1", -30 * MIN_MS, 3000);
	assert_int_equal(store_features_lookup(fx->db, fx->ctx, &x, fx->f, store_schema_nfields()),
	    VIGIL_OK);
	assert_true(num_of(fx->f, "hour") == 23);
	assert_true(num_of(fx->f, "card.hour_share") == 0.2);
	x = txn_make("b1", "c1", "m1", T0 + 10 * HOUR_MS + 5 * MIN_MS, 3000);
	assert_int_equal(store_features_lookup(fx->db, fx->ctx, &x, fx->f, store_schema_nfields()),
	    VIGIL_OK);
	assert_true(num_of(fx->f, "card.country_seen") == 1);
	assert_true(num_of(fx->f, "card.merchant_seen") == 1);
	/* count_30d 0: no month to compare with; its mean is served as 0 */
	assert_false(present_of(fx->f, "card.amount_to_mean_30d"));
	assert_true(num_of(fx->f, "card.amount_mean_30d") == 0.0);
	assert_true(num_of(fx->f, "merchant.count_7d") == 5);
	assert_true(num_of(fx->f, "merchant.fraud_rate_30d") == 0.25);
	assert_false(present_of(fx->f, "terminal.count_30d"));
	/* Unknown card: batch card features missing. */
	x = txn_make("b2", "other", "m9", T0, 3000);
	assert_int_equal(store_features_lookup(fx->db, fx->ctx, &x, fx->f, store_schema_nfields()),
	    VIGIL_OK);
	assert_false(present_of(fx->f, "card.count_90d"));
	assert_false(present_of(fx->f, "card.amount_zscore"));
	assert_false(present_of(fx->f, "card.country_seen"));
	assert_false(present_of(fx->f, "merchant.count_7d"));
	assert_false(present_of(fx->f, "card.amount_to_mean_30d"));
	store_db_set_gen(fx->db, NULL);
	assert_int_equal(store_db_generation(fx->db), 0);
	store_gen_close(g);
	/* A card with a month: 30.00 against a mean of 12.00 */
	cp.count_30d = 4;
	cp.amount_mean_30d = 12.0;
	assert_int_equal(store_genw_begin(dir, &w, &d), VIGIL_OK);
	assert_int_equal(store_genw_put_card(w, "c1", &cp), VIGIL_OK);
	assert_int_equal(store_genw_commit(w, &meta, 0, &d), VIGIL_OK);
	assert_int_equal(store_gen_open_current(dir, &g, &d), VIGIL_OK);
	store_db_set_gen(fx->db, g);
	x = txn_make("b3", "c1", "m1", T0 + HOUR_MS, 3000);
	assert_int_equal(store_features_lookup(fx->db, fx->ctx, &x, fx->f, store_schema_nfields()),
	    VIGIL_OK);
	assert_true(num_of(fx->f, "card.amount_to_mean_30d") == 2.5);
	store_db_set_gen(fx->db, NULL);
	store_gen_close(g);
	tmpdir_free(dir);
}

/* A live card, merchant or terminal keeps the batch profile last read for
 * it (db.c, fill_txn_batch): every switch of generation, to another one,
 * to none, or back to an earlier one, must show the current generation's
 * values, for entities cached as present and as absent. */
static store_gen *
gen_with(const char *dir, const char *card, uint32_t card_90d, uint32_t merchant_7d,
    uint32_t terminal_30d)
{
	store_genw           *w = NULL;
	store_gen            *g = NULL;
	store_diag            d;
	store_card_profile    cp;
	store_entity_profile  ep;
	store_gen_meta        meta;

	memset(&cp, 0, sizeof cp);
	cp.count_90d = card_90d;
	memset(&meta, 0, sizeof meta);
	meta.as_of_ms = T0;
	assert_int_equal(store_genw_begin(dir, &w, &d), VIGIL_OK);
	assert_int_equal(store_genw_put_card(w, card, &cp), VIGIL_OK);
	memset(&ep, 0, sizeof ep);
	ep.count_7d = merchant_7d;
	assert_int_equal(store_genw_put_merchant(w, "m1", &ep), VIGIL_OK);
	if (terminal_30d > 0) {
		memset(&ep, 0, sizeof ep);
		ep.count_30d = terminal_30d;
		assert_int_equal(store_genw_put_terminal(w, "t1", &ep), VIGIL_OK);
	}
	assert_int_equal(store_genw_commit(w, &meta, 0, &d), VIGIL_OK);
	assert_int_equal(store_gen_open_current(dir, &g, &d), VIGIL_OK);
	return g;
}

/* Scores (id != NULL) or looks up (id == NULL) a transaction of card on
 * merchant m1, terminal t1; checks the three batch counts (0: missing). */
static void
batch_check(fixture *fx, store_ctx *ctx, const char *id, const char *card, int64_t t,
    uint32_t card_90d, uint32_t merchant_7d, uint32_t terminal_30d)
{
	vigil_txn     x = txn_make(id != NULL ? id : "probe", card, "m1", t, 100);
	store_outcome prior;

	snprintf(x.terminal_id, sizeof x.terminal_id, "t1");
	if (id != NULL)
		assert_int_equal(score_one(fx->db, ctx, &x, 0, fx->f, &prior), VIGIL_OK);
	else
		assert_int_equal(store_features_lookup(fx->db, ctx, &x, fx->f,
		    store_schema_nfields()), VIGIL_OK);
	if (card_90d > 0)
		assert_true(num_of(fx->f, "card.count_90d") == card_90d);
	else
		assert_false(present_of(fx->f, "card.count_90d"));
	if (merchant_7d > 0)
		assert_true(num_of(fx->f, "merchant.count_7d") == merchant_7d);
	else
		assert_false(present_of(fx->f, "merchant.count_7d"));
	if (terminal_30d > 0)
		assert_true(num_of(fx->f, "terminal.count_30d") == terminal_30d);
	else
		assert_false(present_of(fx->f, "terminal.count_30d"));
}

static void
test_batch_cache_follows_generation(void **state)
{
	fixture   *fx = *state;
	char      *dir = tmpdir_new();
	store_gen *g1 = gen_with(dir, "c1", 10, 5, 0);
	store_gen *g2 = gen_with(dir, "c2", 20, 6, 7);
	store_ctx *other = store_ctx_new(fx->db);

	assert_non_null(other);
	store_db_set_gen(fx->db, g1);
	/* Everything live and cached under g1: c2 and t1 as absent. */
	batch_check(fx, fx->ctx, "a1", "c1", T0, 10, 5, 0);
	batch_check(fx, fx->ctx, "a2", "c2", T0 + 1, 0, 5, 0);
	batch_check(fx, fx->ctx, NULL, "c1", T0 + 2, 10, 5, 0);
	batch_check(fx, fx->ctx, NULL, "c2", T0 + 2, 0, 5, 0);
	store_db_set_gen(fx->db, g2);
	batch_check(fx, fx->ctx, NULL, "c1", T0 + 3, 0, 6, 7);
	batch_check(fx, fx->ctx, "a3", "c2", T0 + 4, 20, 6, 7);
	batch_check(fx, other, NULL, "c2", T0 + 5, 20, 6, 7);
	batch_check(fx, other, NULL, "c2", T0 + 5, 20, 6, 7);
	store_db_set_gen(fx->db, NULL);
	batch_check(fx, fx->ctx, NULL, "c2", T0 + 6, 0, 0, 0);
	/* Back to g1 (the same store_gen as before, a new switch). */
	store_db_set_gen(fx->db, g1);
	batch_check(fx, fx->ctx, "a4", "c1", T0 + 7, 10, 5, 0);
	batch_check(fx, other, NULL, "c2", T0 + 8, 0, 5, 0);
	batch_check(fx, fx->ctx, NULL, "c1", T0 + 8, 10, 5, 0);
	store_db_set_gen(fx->db, NULL);
	store_ctx_free(other);
	store_gen_close(g1);
	store_gen_close(g2);
	tmpdir_free(dir);
}

static void
test_misuse_refused(void **state)
{
	fixture      *fx = *state;
	vigil_txn     x = txn_make("u1", "c1", "m1", T0, 100);
	store_outcome prior;
	store_scored  s;
	store_diag    d;

	assert_int_equal(store_score_begin(fx->db, fx->ctx, &x, fx->f, 10, &prior), VIGIL_EINVAL);
	x.card_id[0] = '\0';
	assert_int_equal(store_score_begin(fx->db, fx->ctx, &x, fx->f, store_schema_nfields(),
	    &prior), VIGIL_EINVAL);
	x = txn_make("u1", "c1", "m1", T0, 100);
	scored_make(&s, &x, 0);
	assert_int_equal(store_score_commit(fx->db, fx->ctx, &s, &d), VIGIL_EINVAL);
	assert_int_equal(store_score_begin(fx->db, fx->ctx, &x, fx->f, store_schema_nfields(),
	    &prior), VIGIL_OK);
	assert_int_equal(store_features_lookup(fx->db, fx->ctx, &x, fx->f, store_schema_nfields()),
	    VIGIL_EINVAL);
	snprintf(s.txn.txn_id, sizeof s.txn.txn_id, "other");
	assert_int_equal(store_score_commit(fx->db, fx->ctx, &s, &d), VIGIL_EINVAL);
	assert_string_equal(d.msg, "store_score_commit: record is for txn_id \"other\", begun "
	    "with \"u1\"");
	/* The failed commit released the card: nothing was applied. */
	lookup(fx, "c1", T0 + 1);
	assert_true(num_of(fx->f, "vel.card.count_1m") == 0);
}

/* The live card count is capped: a new card beyond max_cards is refused
 * (backpressure), known cards go on. */
static void
test_max_cards(void **state)
{
	store_db      *db = NULL;
	store_ctx     *ctx;
	store_db_opts  o;
	vigil_value    f[256];
	store_outcome  prior;
	vigil_txn      x;
	store_db_stats st;

	(void)state;
	store_db_opts_default(&o);
	o.max_cards = 2;
	assert_int_equal(store_db_new_memory(&o, &db), VIGIL_OK);
	ctx = store_ctx_new(db);
	assert_non_null(ctx);
	x = txn_make("a", "c1", "m", T0, 100);
	assert_int_equal(score_one(db, ctx, &x, 0, f, &prior), VIGIL_OK);
	x = txn_make("b", "c2", "m", T0, 100);
	assert_int_equal(score_one(db, ctx, &x, 0, f, &prior), VIGIL_OK);
	x = txn_make("c", "c3", "m", T0, 100);
	assert_int_equal(store_score_begin(db, ctx, &x, f, store_schema_nfields(), &prior),
	    VIGIL_ELIMIT);
	x = txn_make("d", "c1", "m", T0 + 1, 100);
	assert_int_equal(score_one(db, ctx, &x, 0, f, &prior), VIGIL_OK);
	assert_true(num_of(f, "vel.card.count_1m") == 1);
	store_db_get_stats(db, &st);
	assert_int_equal(st.live_cards, 2);
	store_ctx_free(ctx);
	store_db_close(db);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_window_boundaries, setup, teardown),
		cmocka_unit_test_setup_teardown(test_secs_since_merchant, setup, teardown),
		cmocka_unit_test_setup_teardown(test_amount_to_mean, setup, teardown),
		cmocka_unit_test_setup_teardown(test_new_card_defaults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_out_of_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_late_events, setup, teardown),
		cmocka_unit_test_setup_teardown(test_commit_info, setup, teardown),
		cmocka_unit_test_setup_teardown(test_idempotency_full_rule_name, setup, teardown),
		cmocka_unit_test_setup_teardown(test_idempotency, setup, teardown),
		cmocka_unit_test_setup_teardown(test_idempotency_sizes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dedupe_horizon_expires, setup, teardown),
		cmocka_unit_test_setup_teardown(test_distinct_and_seen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_device_seen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_small_count, setup, teardown),
		cmocka_unit_test_setup_teardown(test_distance_and_speed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_other_entities, setup, teardown),
		cmocka_unit_test_setup_teardown(test_observations, setup, teardown),
		cmocka_unit_test_setup_teardown(test_card_cap_folding, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_exactness, setup, teardown),
		cmocka_unit_test_setup_teardown(test_batch_features, setup, teardown),
		cmocka_unit_test_setup_teardown(test_batch_cache_follows_generation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_misuse_refused, setup, teardown),
		cmocka_unit_test(test_max_cards),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
