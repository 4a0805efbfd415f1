/* SPDX-License-Identifier: MIT */
/*
 * tests/batch/test_batch_math.c - the pure parts of vigil-rebuild on
 * synthetic data: the threshold sketch (percentile, alert rate, precision,
 * merge), the card and entity accumulators against hand-computed answers,
 * the card-id scan, and the option parsers.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "days.h"
#include "int.h"
#include "lean.h"

/* cmocka 1.1 has no assert_double_equal. */
#define assert_near(a, b, eps) assert_true(fabs((double)(a) - (double)(b)) <= (eps))

static void
test_percentile_exact_small(void **state)
{
	batch_sketch *sk = batch_sketch_new();
	double v;

	(void)state;
	assert_non_null(sk);
	assert_int_equal(batch_sketch_percentile(sk, 50, &v), VIGIL_ENOTFOUND);
	/* 10, 20, 30, 40, 50 in scrambled order; nearest rank. */
	assert_int_equal(batch_sketch_add(sk, 30, -1), VIGIL_OK);
	assert_int_equal(batch_sketch_add(sk, 10, -1), VIGIL_OK);
	assert_int_equal(batch_sketch_add(sk, 50, -1), VIGIL_OK);
	assert_int_equal(batch_sketch_add(sk, 20, -1), VIGIL_OK);
	assert_int_equal(batch_sketch_add(sk, 40, -1), VIGIL_OK);
	assert_int_equal(batch_sketch_add(sk, NAN, -1), VIGIL_OK); /* ignored */
	assert_int_equal(batch_sketch_count(sk), 5);
	assert_int_equal(batch_sketch_percentile(sk, 50, &v), VIGIL_OK);
	assert_true(v == 30.0);   /* rank ceil(2.5) = 3 */
	assert_int_equal(batch_sketch_percentile(sk, 20, &v), VIGIL_OK);
	assert_true(v == 10.0);   /* rank 1 */
	assert_int_equal(batch_sketch_percentile(sk, 21, &v), VIGIL_OK);
	assert_true(v == 20.0);   /* rank ceil(1.05) = 2 */
	assert_int_equal(batch_sketch_percentile(sk, 100, &v), VIGIL_OK);
	assert_true(v == 50.0);
	assert_int_equal(batch_sketch_percentile(sk, 0, &v), VIGIL_EINVAL);
	assert_int_equal(batch_sketch_percentile(sk, 101, &v), VIGIL_EINVAL);
	batch_sketch_free(sk);
}

static void
test_percentile_negative_and_zero(void **state)
{
	batch_sketch *sk = batch_sketch_new();
	double v;

	(void)state;
	assert_int_equal(batch_sketch_add(sk, -5, -1), VIGIL_OK);
	assert_int_equal(batch_sketch_add(sk, -0.0, -1), VIGIL_OK);
	assert_int_equal(batch_sketch_add(sk, 0.0, -1), VIGIL_OK);
	assert_int_equal(batch_sketch_add(sk, -1000, -1), VIGIL_OK);
	assert_int_equal(batch_sketch_add(sk, 2.5, -1), VIGIL_OK);
	/* sorted: -1000 -5 0 0 2.5 */
	assert_int_equal(batch_sketch_percentile(sk, 20, &v), VIGIL_OK);
	assert_true(v == -1000.0);
	assert_int_equal(batch_sketch_percentile(sk, 40, &v), VIGIL_OK);
	assert_true(v == -5.0);
	assert_int_equal(batch_sketch_percentile(sk, 60, &v), VIGIL_OK);
	assert_true(v == 0.0);
	assert_int_equal(batch_sketch_percentile(sk, 100, &v), VIGIL_OK);
	assert_true(v == 2.5);
	batch_sketch_free(sk);
}

/* The 99th percentile of 1..100000 within the stated relative accuracy. */
static void
test_percentile_large_within_alpha(void **state)
{
	batch_sketch *sk = batch_sketch_new();
	double v;

	(void)state;
	for (int i = 100000; i >= 1; i--)
		assert_int_equal(batch_sketch_add(sk, i, -1), VIGIL_OK);
	assert_int_equal(batch_sketch_percentile(sk, 99, &v), VIGIL_OK);
	assert_true(fabs(v - 99000.0) / 99000.0 <= 2 * BATCH_SKETCH_ALPHA);
	assert_true(v >= 99000.0); /* the bucket's max: never below the true value */
	assert_true(batch_sketch_nbuckets(sk) < 20000);
	batch_sketch_free(sk);
}

static uint64_t
count_ge(const double *v, size_t n, double x)
{
	uint64_t c = 0;

	for (size_t i = 0; i < n; i++)
		c += v[i] >= x;
	return c;
}

/* Alert-rate tuning on a synthetic skewed set hits its target: the achieved
 * alert rate is at most the target and within 10% of it (stated tolerance). */
static void
test_alert_rate_hits_target(void **state)
{
	enum { N = 50000 };
	static double vals[N];
	batch_sketch *sk = batch_sketch_new();
	uint64_t x = 88172645463325252ull;
	const double rates[] = { 0.001, 0.01, 0.05, 0.2 };
	double v;

	(void)state;
	for (size_t i = 0; i < N; i++) {
		/* xorshift64: deterministic; exponential-ish amounts in cents */
		x ^= x << 13; x ^= x >> 7; x ^= x << 17;
		vals[i] = round(-log((double)(x >> 11) / 9007199254740992.0 + 1e-12) * 5000.0) / 100.0;
		assert_int_equal(batch_sketch_add(sk, vals[i], -1), VIGIL_OK);
	}
	for (size_t k = 0; k < sizeof rates / sizeof rates[0]; k++) {
		double achieved;

		assert_int_equal(batch_sketch_alert_rate(sk, rates[k], &v), VIGIL_OK);
		achieved = (double)count_ge(vals, N, v) / N;
		assert_true(achieved <= rates[k]);
		assert_true(achieved >= rates[k] * 0.9);
	}
	batch_sketch_free(sk);
}

static void
test_alert_rate_exact_and_edges(void **state)
{
	batch_sketch *sk = batch_sketch_new();
	double v;

	(void)state;
	for (int i = 1; i <= 10; i++)
		assert_int_equal(batch_sketch_add(sk, i, -1), VIGIL_OK);
	assert_int_equal(batch_sketch_alert_rate(sk, 0.2, &v), VIGIL_OK);
	assert_true(v == 9.0);   /* 9 and 10 = 20% */
	assert_int_equal(batch_sketch_alert_rate(sk, 0.25, &v), VIGIL_OK);
	assert_true(v == 9.0);   /* 8.. would be 30% */
	assert_int_equal(batch_sketch_alert_rate(sk, 1.0, &v), VIGIL_OK);
	assert_true(v == 1.0);
	assert_int_equal(batch_sketch_alert_rate(sk, 0.05, &v), VIGIL_OK);
	assert_true(v > 10.0);   /* even the top value alone is 10% */
	assert_int_equal(batch_sketch_alert_rate(sk, 1.5, &v), VIGIL_EINVAL);
	batch_sketch_free(sk);
}

static void
test_precision(void **state)
{
	batch_sketch *sk = batch_sketch_new();
	double v;

	(void)state;
	/* values 1..10; 8, 9, 10 fraud; 5, 6, 7 legit; others unlabelled */
	for (int i = 1; i <= 10; i++)
		assert_int_equal(batch_sketch_add(sk, i, i >= 8 ? 1 : i >= 5 ? 0 : -1), VIGIL_OK);
	assert_int_equal(batch_sketch_labelled(sk), 6);
	/* Unlabelled transactions count as legitimate (docs/rules.md):
	 * precision(>= 8) = 1, (>= 7) = 3/4, (>= 6) = 3/5, (>= 5) = 3/6,
	 * (>= 4) = 3/7, ..., (>= 1) = 3/10. */
	assert_int_equal(batch_sketch_precision(sk, 0.75, 1, &v), VIGIL_OK);
	assert_true(v == 7.0);
	assert_int_equal(batch_sketch_precision(sk, 0.5, 1, &v), VIGIL_OK);
	assert_true(v == 5.0);
	assert_int_equal(batch_sketch_precision(sk, 0.3, 1, &v), VIGIL_OK);
	assert_true(v == 1.0);
	assert_int_equal(batch_sketch_precision(sk, 0.9, 1, &v), VIGIL_OK);
	assert_true(v == 8.0);
	/* needing 4 alerted transactions rules out >= 8 (3 of them) */
	assert_int_equal(batch_sketch_precision(sk, 0.9, 4, &v), VIGIL_ENOTFOUND);
	{
		/* why: with 4 or more alerts the best is >= 7, 3/4; 3 frauds */
		double best = 0;
		uint64_t frauds = 0;

		assert_int_equal(batch_sketch_precision_best(sk, 4, &best, &frauds), VIGIL_OK);
		assert_true(best == 0.75);
		assert_int_equal(frauds, 3);
		assert_int_equal(batch_sketch_precision_best(sk, 11, &best, &frauds), VIGIL_OK);
		assert_true(isnan(best)); /* no v has 11 alerts */
	}
	batch_sketch_free(sk);

	/* Chargeback-style labels: only frauds are labelled. Precision must
	 * still fall as v goes down (it used to be 1 everywhere, tuning v to
	 * the minimum and alerting on everything). */
	sk = batch_sketch_new();
	for (int i = 1; i <= 10; i++)
		assert_int_equal(batch_sketch_add(sk, i, i >= 8 ? 1 : -1), VIGIL_OK);
	assert_int_equal(batch_sketch_precision(sk, 0.35, 1, &v), VIGIL_OK);
	assert_true(v == 3.0); /* (>= 3) = 3/8; (>= 2) = 3/9 < 0.35 */
	assert_int_equal(batch_sketch_precision(sk, 0.6, 1, &v), VIGIL_OK);
	assert_true(v == 6.0); /* (>= 6) = 3/5 */
	batch_sketch_free(sk);
}

/* Merging split sketches gives exactly the whole: the partition property. */
static void
test_merge_equals_whole(void **state)
{
	batch_sketch *whole = batch_sketch_new(), *a = batch_sketch_new(),
	    *b = batch_sketch_new(), *m = batch_sketch_new();
	batch_bucket *bw, *bm;
	size_t nw, nm;

	(void)state;
	for (int i = 0; i < 20000; i++) {
		double v = (double)((i * 7919) % 10007) / 3.0;
		int lab = i % 13 == 0 ? 1 : i % 5 == 0 ? 0 : -1;

		assert_int_equal(batch_sketch_add(whole, v, lab), VIGIL_OK);
		assert_int_equal(batch_sketch_add(i % 3 ? a : b, v, lab), VIGIL_OK);
	}
	assert_int_equal(batch_sketch_merge(m, b), VIGIL_OK);
	assert_int_equal(batch_sketch_merge(m, a), VIGIL_OK);
	assert_int_equal(batch_sketch_sorted(whole, &bw, &nw), VIGIL_OK);
	assert_int_equal(batch_sketch_sorted(m, &bm, &nm), VIGIL_OK);
	assert_int_equal(nw, nm);
	for (size_t i = 0; i < nw; i++) { /* field by field: the struct has padding */
		assert_int_equal(bw[i].key, bm[i].key);
		assert_int_equal(bw[i].n, bm[i].n);
		assert_int_equal(bw[i].labelled, bm[i].labelled);
		assert_int_equal(bw[i].fraud, bm[i].fraud);
		assert_true(bw[i].min == bm[i].min && bw[i].max == bm[i].max);
	}
	free(bw);
	free(bm);
	batch_sketch_free(whole);
	batch_sketch_free(a);
	batch_sketch_free(b);
	batch_sketch_free(m);
}

static void
test_bucket_validation(void **state)
{
	batch_sketch *sk = batch_sketch_new();
	batch_bucket b = { .key = 0, .n = 1, .labelled = 2, .fraud = 0, .min = 0, .max = 0 };

	(void)state;
	assert_int_equal(batch_sketch_add_bucket(sk, &b), VIGIL_ECORRUPT); /* labelled > n */
	b.labelled = 0;
	b.max = 5; /* 5 is not in bucket 0 */
	assert_int_equal(batch_sketch_add_bucket(sk, &b), VIGIL_ECORRUPT);
	b.max = 0;
	assert_int_equal(batch_sketch_add_bucket(sk, &b), VIGIL_OK);
	assert_int_equal(batch_sketch_count(sk), 1);
	batch_sketch_free(sk);
}

#define A (1772323200000LL) /* 2026-03-01T00:00:00Z */
#define D VIGIL_MS_PER_DAY

static batch_event
ev(int64_t t, double amount, uint64_t th, uint64_t mh, const char *cc, int label)
{
	batch_event e = { .t = t, .amount = amount, .amount_milli = (int64_t)llround(amount * 1000),
	    .txn_h = th, .merch_h = mh, .country = cc, .label = label };
	return e;
}

/* The card profile of five transactions, computed by hand. */
static void
test_card_profile_by_hand(void **state)
{
	batch_windows w;
	batch_card *c = batch_card_new(NULL, "c1", 2);
	store_card_profile p;
	batch_event evs[] = {
		ev(A - 1, 10, 1, 100, "FR", 1),           /* 23:59:59.999 */
		ev(A - 2 * D, 20, 2, 200, "DE", -1),      /* 00:00 */
		ev(A - 10 * D + 3 * 3600000, 30, 3, 100, "FR", 0),
		ev(A - 40 * D, 40, 4, 100, "FR", -1),
		ev(A - 90 * D, 50, 5, 300, "US", 1),      /* first ms of the window */
	};

	(void)state;
	batch_windows_init(&w, A, 90 * D);
	for (size_t i = 0; i < sizeof evs / sizeof evs[0]; i++)
		assert_int_equal(batch_card_add(c, &w, &evs[i]), VIGIL_OK);
	batch_card_profile(c, &p);
	assert_int_equal(p.count_7d, 2);
	assert_int_equal(p.count_30d, 3);
	assert_int_equal(p.count_90d, 5);
	assert_true(p.amount_sum_7d == 30.0);
	assert_true(p.amount_sum_30d == 60.0);
	assert_true(p.amount_sum_90d == 150.0);
	assert_true(p.amount_mean_7d == 15.0);
	assert_true(p.amount_mean_30d == 20.0);
	assert_true(p.amount_mean_90d == 30.0);
	assert_near(p.amount_std_30d, sqrt(200.0 / 3.0), 1e-12);
	assert_near(p.amount_std_90d, sqrt(200.0), 1e-12);
	assert_true(p.amount_p50_90d == 30.0);
	assert_true(p.amount_p95_90d == 50.0);
	assert_true(p.amount_p99_90d == 50.0);
	assert_true(p.amount_max_90d == 50.0);
	assert_int_equal(p.distinct_merchants_90d, 3);
	assert_int_equal(p.distinct_countries_90d, 3);
	assert_int_equal(p.first_seen_ms, A - 90 * D);
	assert_int_equal(p.fraud_count_90d, 2);
	assert_int_equal(p.hour_hist[0], 3);
	assert_int_equal(p.hour_hist[3], 1);
	assert_int_equal(p.hour_hist[23], 1);
	assert_int_equal(p.ncountries, 3);
	assert_memory_equal(p.countries[0], "FR", 2);
	assert_memory_equal(p.countries[1], "DE", 2);
	assert_memory_equal(p.countries[2], "US", 2);
	assert_int_equal(p.nmerchants, 3);
	assert_int_equal(p.merchants[0], 100); /* 3 times */
	assert_int_equal(p.merchants[1], 200); /* once each, hash order */
	assert_int_equal(p.merchants[2], 300);
	assert_true(p.top_merchant_share_90d == 3.0 / 5.0); /* merchant 100: 3 of 5 */
	batch_card_free(c);

	/* A card with nothing in its window has no top merchant: 0, not NaN. */
	c = batch_card_new(NULL, "c2", 2);
	assert_int_equal(batch_card_add(c, &w, &evs[0]), VIGIL_OK);
	batch_card_profile(c, &p);
	assert_true(p.top_merchant_share_90d == 1.0);
	batch_card_free(c);
	c = batch_card_new(NULL, "c3", 2);
	batch_card_profile(c, &p);
	assert_true(p.top_merchant_share_90d == 0.0);
	batch_card_free(c);
}

/* Over the sample cap the kept amounts are those with the smallest txn
 * hashes, whatever the order they came in. */
static void
test_card_samples_order_independent(void **state)
{
	batch_windows w;
	batch_card *c1 = batch_card_new(NULL, "a", 1), *c2 = batch_card_new(NULL, "a", 1);
	store_card_profile p1, p2;
	const int n = 3 * BATCH_CARD_MAX_SAMPLES;

	(void)state;
	batch_windows_init(&w, A, 90 * D);
	for (int i = 0; i < n; i++) {
		batch_event e1 = ev(A - D, (double)i, (uint64_t)i * 2654435761u, 1, "FR", -1);
		batch_event e2 = ev(A - D, (double)(n - 1 - i),
		    (uint64_t)(n - 1 - i) * 2654435761u, 1, "FR", -1);
		assert_int_equal(batch_card_add(c1, &w, &e1), VIGIL_OK);
		assert_int_equal(batch_card_add(c2, &w, &e2), VIGIL_OK);
	}
	assert_int_equal(c1->nsamples, BATCH_CARD_MAX_SAMPLES);
	batch_card_profile(c1, &p1);
	batch_card_profile(c2, &p2);
	assert_true(p1.amount_p50_90d == p2.amount_p50_90d);
	assert_true(p1.amount_p95_90d == p2.amount_p95_90d);
	assert_true(p1.amount_max_90d == (double)(n - 1));
	/* smallest hashes = smallest i: the kept samples are 0..cap-1 */
	assert_true(p1.amount_p99_90d <= (double)BATCH_CARD_MAX_SAMPLES);
	batch_card_free(c1);
	batch_card_free(c2);
}


/* Cards from a pool (the workers') aggregate exactly like malloc'd ones,
 * through every array size up to the caps, and reuse freed arrays. */
static void
test_card_pool(void **state)
{
	batch_pool pool;
	batch_windows w;
	batch_card *cp, *cm, *c3;
	store_card_profile pp, pm;
	const int n = 2 * BATCH_CARD_MAX_MERCH;
	void *samples;

	(void)state;
	memset(&pool, 0, sizeof pool);
	batch_windows_init(&w, A, 90 * D);
	cp = batch_card_new(&pool, "pooled", 6);
	cm = batch_card_new(NULL, "pooled", 6);
	assert_non_null(cp);
	assert_non_null(cm);
	assert_string_equal(cp->key, "pooled");
	for (int i = 0; i < n; i++) {
		/* FR and DE, and from the 200th record 80 more countries, past
		 * the ones the node holds and past the cap. */
		char cc[3] = { (char)('A' + i % 26), (char)('A' + i / 26 % 4), '\0' };
		batch_event e = ev(A - D - i * 60000, (double)(i % 97), (uint64_t)i * 0x9e3779b97f4a7c15ull,
		    (uint64_t)i * 7919, i < 200 || i % 3 ? (i % 2 ? "FR" : "DE") : cc, i % 5 == 0);

		assert_int_equal(batch_card_add(cp, &w, &e), VIGIL_OK);
		assert_int_equal(batch_card_add(cm, &w, &e), VIGIL_OK);
		if (i == 199)
			assert_ptr_equal(cp->country, cp->country_inline);
	}
	assert_int_equal(cp->nmerch, BATCH_CARD_MAX_MERCH);
	assert_int_equal(cp->cap_samples, BATCH_CARD_MAX_SAMPLES);
	assert_int_equal(cp->ncountry, BATCH_CARD_MAX_COUNTRY);
	assert_int_equal(cm->ncountry, BATCH_CARD_MAX_COUNTRY);
	assert_true(cp->country != cp->country_inline && cm->country != cm->country_inline);
	batch_card_profile(cp, &pp);
	batch_card_profile(cm, &pm);
	assert_memory_equal(&pp, &pm, sizeof pp);
	/* A freed card's arrays go to the next card of the pool. */
	samples = cp->samples;
	batch_card_free(cp);
	c3 = batch_card_new(&pool, "next", 4);
	assert_non_null(c3);
	for (int i = 0; i < BATCH_CARD_MAX_SAMPLES; i++) {
		batch_event e = ev(A - D, 1.0, (uint64_t)i, 1, "FR", -1);

		assert_int_equal(batch_card_add(c3, &w, &e), VIGIL_OK);
	}
	assert_ptr_equal(c3->samples, samples);
	batch_card_free(c3);
	batch_card_free(cm);
	batch_pool_fini(&pool);
	assert_null(pool.slabs);
}

static void
test_entity_profile_by_hand(void **state)
{
	batch_windows w;
	batch_ent a = { 0 }, b = { 0 }, m = { 0 };
	store_entity_profile p;
	double prior = 1.0 / 6.0;
	batch_event e1 = ev(A - 1, 10, 1, 1, "FR", 1);
	batch_event e2 = ev(A - 10 * D, 30, 2, 1, "FR", 0);
	batch_event e3 = ev(A - 40 * D, 40, 3, 1, "FR", -1);

	(void)state;
	batch_windows_init(&w, A, 90 * D);
	batch_ent_add(&a, &w, &e1);
	batch_ent_add(&b, &w, &e2);
	batch_ent_add(&b, &w, &e3);
	batch_ent_merge(&m, &a);
	batch_ent_merge(&m, &b);
	batch_ent_profile(&m, prior, NULL, &p);
	assert_int_equal(p.count_7d, 1);
	assert_int_equal(p.count_30d, 2);
	assert_int_equal(p.count_90d, 3);
	assert_true(p.amount_mean_30d == 20.0);
	assert_int_equal(p.fraud_count_7d, 1);
	assert_int_equal(p.fraud_count_30d, 1);
	assert_int_equal(p.fraud_count_90d, 1);
	assert_int_equal(p.labeled_7d, 1);
	assert_int_equal(p.labeled_30d, 2);
	assert_int_equal(p.labeled_90d, 2);
	/* (frauds + 100 * prior) / (count + 100) */
	assert_near(p.fraud_rate_7d, (1 + 100.0 / 6) / 101, 1e-12);
	assert_near(p.fraud_rate_30d, (1 + 100.0 / 6) / 102, 1e-12);
	assert_near(p.fraud_rate_90d, (1 + 100.0 / 6) / 103, 1e-12);
}

/*
 * Amounts near the largest vigil_txn_validate accepts (10^15 - 1 in a
 * currency with no decimals: about 10^18 thousandths each): eight per
 * partial or day fit in 64 bits, sixteen merged do not. The mean of the
 * merged partials and of the merged days is the amount.
 */
static void
test_entity_large_sum_merge(void **state)
{
	const double big = 999999999999999.0;
	batch_windows w;
	batch_ent a = { 0 }, b = { 0 }, d1 = { 0 }, d2 = { 0 }, m = { 0 }, md = { 0 };
	store_entity_profile p;

	(void)state;
	batch_windows_init(&w, A, 90 * D);
	for (int i = 0; i < 8; i++) {
		batch_event e = ev(A - 2 * D + i, big, (uint64_t)i, 1, "JP", -1);

		e.amount_milli = 999999999999999000LL; /* exact, as pass.c makes it */
		batch_ent_add(&a, &w, &e);
		batch_ent_add(&d1, &w, &e);
		e.t -= D;
		batch_ent_add(&b, &w, &e);
		batch_ent_add(&d2, &w, &e);
	}
	batch_ent_merge(&m, &a);
	batch_ent_merge(&m, &b);
	batch_ent_profile(&m, 0.01, NULL, &p);
	assert_int_equal(p.count_30d, 16);
	assert_true(p.amount_mean_30d == big);
	batch_ent_merge_day(&md, &w, A - 3 * D, &d2);
	batch_ent_merge_day(&md, &w, A - 2 * D, &d1);
	batch_ent_profile(&md, 0.01, NULL, &p);
	assert_int_equal(p.count_30d, 16);
	assert_true(p.amount_mean_30d == big);
}

/* The mature windows end at as-of - maturity: with a 7-day maturity the
 * frauds of the last 7 days (labels not final) are out, the ones of days
 * [as_of - 14d, as_of - 7d) are in the mature 7 days, and days
 * [as_of - 37d, as_of - 7d) in the mature 30; merged partials give the
 * same counts as one accumulator. */
static void
test_entity_mature_windows(void **state)
{
	batch_windows w;
	batch_ent a = { 0 }, b = { 0 }, m = { 0 };
	store_entity_profile p;
	double prior = 0.01;
	const batch_event evs[] = {
		ev(A - 1, 10, 1, 1, "FR", 1),          /* fresh: not mature */
		ev(A - 6 * D, 10, 2, 1, "FR", 1),      /* fresh */
		ev(A - 8 * D, 10, 3, 1, "FR", 1),      /* mature 7 and 30 */
		ev(A - 13 * D, 10, 4, 1, "FR", 0),     /* mature 7 and 30 */
		ev(A - 20 * D, 10, 5, 1, "FR", 1),     /* mature 30 */
		ev(A - 36 * D, 10, 6, 1, "FR", -1),    /* mature 30 */
		ev(A - 38 * D, 10, 7, 1, "FR", 1),     /* before the mature 30 */
	};

	(void)state;
	batch_windows_init(&w, A, 90 * D);
	batch_windows_mature(&w, 7 * D);
	for (size_t i = 0; i < sizeof evs / sizeof evs[0]; i++)
		batch_ent_add(i % 2 ? &a : &b, &w, &evs[i]);
	batch_ent_merge(&m, &a);
	batch_ent_merge(&m, &b);
	batch_ent_profile(&m, prior, NULL, &p);
	assert_int_equal(p.count_mature_7d, 2);
	assert_int_equal(p.fraud_count_mature_7d, 1);
	assert_int_equal(p.count_mature_30d, 4);
	assert_int_equal(p.fraud_count_mature_30d, 2);
	assert_near(p.fraud_rate_mature_7d, (1 + 100 * prior) / 102, 1e-12);
	assert_near(p.fraud_rate_mature_30d, (2 + 100 * prior) / 104, 1e-12);
	/* the unshifted 7 days count the two fresh frauds */
	assert_int_equal(p.fraud_count_7d, 2);
	/* no maturity: the mature windows are the plain 7 and 30 days */
	batch_windows_mature(&w, 0);
	memset(&m, 0, sizeof m);
	for (size_t i = 0; i < sizeof evs / sizeof evs[0]; i++)
		batch_ent_add(&m, &w, &evs[i]);
	batch_ent_profile(&m, prior, NULL, &p);
	assert_int_equal(p.count_mature_7d, p.count_7d);
	assert_int_equal(p.fraud_count_mature_30d, p.fraud_count_30d);
	/* a maturity past the window start clips to it */
	batch_windows_init(&w, A, 10 * D);
	batch_windows_mature(&w, 7 * D);
	assert_true(w.mature_start[BATCH_M30] == A - 10 * D && w.mature_to == A - 7 * D);
}

/* The card sample of a merchant or terminal: the BATCH_ENT_CARD_SAMPLE
 * smallest distinct card hashes of the 30 days, whatever the order and the
 * split between partial accumulators; the share is of the sampled cards
 * found among the reported ones. */
static void
test_entity_reported_cards(void **state)
{
	batch_windows w;
	static batch_ent a, b, m, one;
	batch_reported rep;
	store_entity_profile p;
	const uint32_t n = 3 * BATCH_ENT_CARD_SAMPLE;

	(void)state;
	memset(&rep, 0, sizeof rep);
	batch_windows_init(&w, A, 90 * D);
	for (uint32_t i = 0; i < n; i++) {
		/* cards 1000 .. 1000 + n - 1, each seen twice, in a scrambled order;
		 * card 1 (the smallest hash) only 40 days ago: not in the sample */
		uint32_t k = (i * 37) % n;
		batch_event e = ev(A - D, 10, i, 1, "FR", -1);

		e.card_h = 1000 + k;
		batch_ent_add(k % 2 ? &a : &b, &w, &e);
		batch_ent_add(&one, &w, &e);
		batch_ent_add(k % 3 ? &b : &a, &w, &e);
		batch_ent_add(&one, &w, &e);
	}
	{
		batch_event old = ev(A - 40 * D, 10, 1, 1, "FR", 1);

		old.card_h = 1;
		batch_ent_add(&a, &w, &old);
		batch_ent_add(&one, &w, &old);
	}
	batch_ent_merge(&m, &a);
	batch_ent_merge(&m, &b);
	assert_int_equal(m.ncards, BATCH_ENT_CARD_SAMPLE);
	assert_int_equal(one.ncards, BATCH_ENT_CARD_SAMPLE);
	for (uint32_t i = 0; i < BATCH_ENT_CARD_SAMPLE; i++) {
		assert_true(m.cards[i] == 1000 + i);
		assert_true(one.cards[i] == 1000 + i);
	}
	/* reported: every fourth card of the sample, one card outside it, and
	 * card 1 */
	for (uint32_t i = 0; i < BATCH_ENT_CARD_SAMPLE; i += 4)
		assert_int_equal(batch_reported_add(&rep, 1000 + i), VIGIL_OK);
	assert_int_equal(batch_reported_add(&rep, 1000 + n - 1), VIGIL_OK);
	assert_int_equal(batch_reported_add(&rep, 1), VIGIL_OK);
	batch_reported_sort(&rep);
	assert_true(batch_reported_has(&rep, 1000 + n - 1));
	assert_false(batch_reported_has(&rep, 1001));
	/* the filter before the search never hides a reported card */
	for (uint32_t i = 0; i < n; i++)
		assert_int_equal(batch_reported_has(&rep, 1000 + i),
		    (i % 4 == 0 && i < BATCH_ENT_CARD_SAMPLE) || i == n - 1);
	batch_ent_profile(&m, 0.01, &rep, &p);
	assert_int_equal(p.cards_sampled_30d, BATCH_ENT_CARD_SAMPLE);
	assert_int_equal(p.cards_reported_30d, BATCH_ENT_CARD_SAMPLE / 4);
	assert_true(p.reported_card_share_30d == 0.25);
	/* no reported set: 0; no card: a share of 0 */
	batch_ent_profile(&m, 0.01, NULL, &p);
	assert_int_equal(p.cards_reported_30d, 0);
	memset(&m, 0, sizeof m);
	batch_ent_profile(&m, 0.01, &rep, &p);
	assert_int_equal(p.cards_sampled_30d, 0);
	assert_true(p.reported_card_share_30d == 0.0);
	batch_reported_fini(&rep);
}

static void
test_windows_clip(void **state)
{
	batch_windows w;

	(void)state;
	batch_windows_init(&w, A, 10 * D);
	assert_int_equal(w.from, A - 10 * D);
	assert_int_equal(w.start[BATCH_W7], A - 7 * D);
	assert_int_equal(w.start[BATCH_W30], A - 10 * D);
	assert_int_equal(w.start[BATCH_W90], A - 10 * D);
}

static void
test_scan_card_id(void **state)
{
	store_scored *s = calloc(1, sizeof *s);
	uint8_t buf[4096];
	size_t len, clen, tlen;
	const char *cid, *tid;

	(void)state;
	snprintf(s->txn.txn_id, sizeof s->txn.txn_id, "t1");
	snprintf(s->txn.card_id, sizeof s->txn.card_id, "card-42");
	snprintf(s->txn.merchant_id, sizeof s->txn.merchant_id, "m");
	snprintf(s->txn.currency, sizeof s->txn.currency, "EUR");
	s->txn.event_time_ms = A;
	s->txn.amount_minor = 123;
	s->txn.has_location = true;
	s->txn.lat = 48.8;
	s->nfeats = 1;
	snprintf(s->feats[0].name, sizeof s->feats[0].name, "x");
	s->feats[0].val = vigil_value_num(1.5);
	assert_int_equal(store_scored_encode(s, buf, sizeof buf, &len), VIGIL_OK);
	assert_int_equal(batch_scan_card_id(buf, len, &cid, &clen), VIGIL_OK);
	assert_int_equal(clen, 7);
	assert_memory_equal(cid, "card-42", 7);
	/* the txn id the same way (batch/src.c: one score per txn_id) */
	assert_int_equal(batch_scan_txn_id(buf, len, &tid, &tlen), VIGIL_OK);
	assert_int_equal(tlen, 2);
	assert_memory_equal(tid, "t1", 2);
	for (size_t n = 0; n < len; n++) {
		vigil_err rv = batch_scan_txn_id(buf, n, &tid, &tlen);

		assert_true(rv == VIGIL_EPROTO || rv == VIGIL_ENOTFOUND ||
		    (rv == VIGIL_OK && tlen <= 2));
	}
	{
		store_scored_lean lean;
		store_diag d;

		assert_int_equal(store_scored_decode_lean(buf, len, &lean, &d), VIGIL_OK);
		assert_ptr_equal(lean.card_id.p, cid);
		assert_int_equal(lean.card_id.len, clen);
	}
	/* every truncation is either malformed or lacks the field, never a crash */
	for (size_t n = 0; n < len; n++) {
		vigil_err rv = batch_scan_card_id(buf, n, &cid, &clen);
		assert_true(rv == VIGIL_EPROTO || rv == VIGIL_ENOTFOUND ||
		    (rv == VIGIL_OK && clen <= 7));
	}
	buf[0] = 0x0f; /* wire type 7 */
	assert_int_equal(batch_scan_card_id(buf, len, &cid, &clen), VIGIL_EPROTO);
	assert_int_equal(batch_scan_txn_id(buf, len, &tid, &tlen), VIGIL_EPROTO);
	free(s);

	/* As the decoder merges: txn twice, the second without card_id keeps
	 * the first's; a later card_id wins; a NUL ends the id. */
	{
		static const uint8_t two[] = {
			0x0a, 0x05, 0x1a, 0x03, 'a', 'b', 'c',  /* txn { card_id "abc" } */
			0x0a, 0x03, 0x0a, 0x01, 't',            /* txn { txn_id "t" } */
		};
		static const uint8_t later[] = {
			0x0a, 0x05, 0x1a, 0x03, 'a', 'b', 'c',
			0x0a, 0x06, 0x1a, 0x04, 'x', 'y', 0x00, 'z', /* txn { card_id "xy\0z" } */
		};
		store_scored_lean lean;
		store_diag d;

		assert_int_equal(batch_scan_card_id(two, sizeof two, &cid, &clen), VIGIL_OK);
		assert_int_equal(clen, 3);
		assert_memory_equal(cid, "abc", 3);
		assert_int_equal(store_scored_decode_lean(two, sizeof two, &lean, &d), VIGIL_OK);
		assert_int_equal(lean.card_id.len, 3);
		/* txn_id: "t" from the second txn, as the decoder merges */
		assert_int_equal(batch_scan_txn_id(two, sizeof two, &tid, &tlen), VIGIL_OK);
		assert_int_equal(tlen, 1);
		assert_memory_equal(tid, "t", 1);
		assert_int_equal(batch_scan_txn_id(later, sizeof later, &tid, &tlen), VIGIL_ENOTFOUND);
		assert_int_equal(batch_scan_card_id(later, sizeof later, &cid, &clen), VIGIL_OK);
		assert_int_equal(clen, 2);
		assert_memory_equal(cid, "xy", 2);
		assert_int_equal(store_scored_decode_lean(later, sizeof later, &lean, &d), VIGIL_OK);
		assert_int_equal(lean.card_id.len, 2);
		assert_memory_equal(lean.card_id.p, "xy", 2);
		/* the very bytes the decoder points at: a fed worker then reuses
		 * the reader's hash of them (batch/pass.c worker_stage) */
		assert_ptr_equal(lean.card_id.p, cid);
		assert_int_equal(store_scored_decode_lean(two, sizeof two, &lean, &d), VIGIL_OK);
		assert_int_equal(batch_scan_card_id(two, sizeof two, &cid, &clen), VIGIL_OK);
		assert_ptr_equal(lean.card_id.p, cid);
	}
	/* Field 0 in a two-byte tag is an unknown field to protobuf-c, skipped
	 * at the top and inside the transaction, not a malformed record. */
	{
		static const uint8_t zero[] = {
			0x80, 0x00, 0x01,                                   /* field 0 = 1 */
			0x0a, 0x08, 0x80, 0x00, 0x01, 0x1a, 0x03, 'a', 'b', 'c', /* txn { 0, card_id } */
		};

		assert_int_equal(batch_scan_card_id(zero, sizeof zero, &cid, &clen), VIGIL_OK);
		assert_int_equal(clen, 3);
		assert_memory_equal(cid, "abc", 3);
	}
}

static void
test_parsers(void **state)
{
	int64_t ms;
	uint32_t i, n;

	(void)state;
	assert_int_equal(batch_duration_parse("90d", &ms), VIGIL_OK);
	assert_int_equal(ms, 90 * D);
	assert_int_equal(batch_duration_parse("36h", &ms), VIGIL_OK);
	assert_int_equal(ms, 36 * 3600000LL);
	assert_int_equal(batch_duration_parse("1500ms", &ms), VIGIL_OK);
	assert_int_equal(ms, 1500);
	assert_int_equal(batch_duration_parse("7", &ms), VIGIL_OK);
	assert_int_equal(ms, 7 * D);
	assert_int_equal(batch_duration_parse("0d", &ms), VIGIL_EINVAL);
	assert_int_equal(batch_duration_parse("-1d", &ms), VIGIL_EINVAL);
	assert_int_equal(batch_duration_parse("9d9", &ms), VIGIL_EINVAL);
	assert_int_equal(batch_duration_parse("3661d", &ms), VIGIL_EINVAL);
	assert_int_equal(batch_duration_parse("99999999999999999999d", &ms), VIGIL_EINVAL);
	assert_int_equal(batch_duration_parse("", &ms), VIGIL_EINVAL);
	assert_int_equal(batch_partition_parse("0/2", &i, &n), VIGIL_OK);
	assert_int_equal(i, 0);
	assert_int_equal(n, 2);
	assert_int_equal(batch_partition_parse("3/4", &i, &n), VIGIL_OK);
	assert_int_equal(batch_partition_parse("4/4", &i, &n), VIGIL_EINVAL);
	assert_int_equal(batch_partition_parse("0/0", &i, &n), VIGIL_EINVAL);
	assert_int_equal(batch_partition_parse("1/", &i, &n), VIGIL_EINVAL);
	assert_int_equal(batch_partition_parse("1/2x", &i, &n), VIGIL_EINVAL);
	assert_int_equal(batch_partition_parse("0/5000", &i, &n), VIGIL_EINVAL);
	assert_int_equal(batch_key_partition("abc", 3, 1), 0);
	assert_true(batch_key_partition("abc", 3, 7) < 7);
}

static void
test_summary_json(void **state)
{
	batch_summary *s = calloc(1, sizeof *s);
	json_t *j;

	(void)state;
	s->as_of_ms = A;
	s->window_ms = 90 * D;
	s->generation = 4;
	s->records_read = 12;
	s->nthresholds = 1;
	snprintf(s->thresholds[0].name, sizeof s->thresholds[0].name, "big");
	s->thresholds[0].kind = "percentile";
	s->thresholds[0].old_value = NAN;
	s->thresholds[0].new_value = 30;
	j = batch_summary_json(s);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "as_of")), "2026-03-01");
	assert_int_equal(json_integer_value(json_object_get(j, "records_read")), 12);
	assert_true(json_is_null(json_object_get(json_array_get(json_object_get(j,
	    "thresholds"), 0), "old")));
	assert_true(json_real_value(json_object_get(json_array_get(json_object_get(j,
	    "thresholds"), 0), "new")) == 30.0);
	json_decref(j);
	free(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_percentile_exact_small),
		cmocka_unit_test(test_percentile_negative_and_zero),
		cmocka_unit_test(test_percentile_large_within_alpha),
		cmocka_unit_test(test_alert_rate_hits_target),
		cmocka_unit_test(test_alert_rate_exact_and_edges),
		cmocka_unit_test(test_precision),
		cmocka_unit_test(test_merge_equals_whole),
		cmocka_unit_test(test_bucket_validation),
		cmocka_unit_test(test_card_profile_by_hand),
		cmocka_unit_test(test_card_samples_order_independent),
		cmocka_unit_test(test_entity_profile_by_hand),
		cmocka_unit_test(test_entity_mature_windows),
		cmocka_unit_test(test_entity_large_sum_merge),
		cmocka_unit_test(test_entity_reported_cards),
		cmocka_unit_test(test_windows_clip),
		cmocka_unit_test(test_scan_card_id),
		cmocka_unit_test(test_parsers),
		cmocka_unit_test(test_summary_json),
		cmocka_unit_test(test_card_pool),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
