/* SPDX-License-Identifier: MIT */
/*
 * tests/batch/test_batch_rebuild.c - batch_rebuild() and vigil-rebuild on
 * archives built in the test with the real archive writer:
 *   - every feature of a small archive checked against hand-computed values,
 *     including the window boundaries (a record at as_of - 1 ms is in, one
 *     at as_of is out) and a label after as_of that must be ignored;
 *   - threshold tuning (percentile per group with fallback, alert rate
 *     within its stated tolerance, fallback kept with too little data);
 *   - idempotency, --force, determinism (mdb_dump of the tables);
 *   - 3 partitions merged == 2 threads == a single run (mdb_dump);
 *   - the nightly model: 2 and 3 partitions merged give the single run's
 *     model.json byte for byte (every row kept, and sampled), older partial
 *     files without training rows merge with no model and say why, a
 *     damaged training section is refused naming the file and offset;
 *   - the lock (VIGIL_EBUSY, exit code 3), rule-file errors, the CLI;
 *   - card.first_seen carried across generations (plain and merged runs),
 *     and a damaged previous card value noted without failing the rebuild.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <jansson.h>
#include <lmdb.h>
#include <xxhash.h>

#include "app.h"
#include "batch.h"
#include "explain.h" /* rules_tvals_value */
#include "genread.h"
#include "gendir.h" /* gen_checksum_write */
#include "pbwire.h"
#include "fixture.h"
#include "int.h" /* batch_ent: a partial file's merchant counters */

#define assert_near(a, b, eps) assert_true(fabs((double)(a) - (double)(b)) <= (eps))

#define A (1772323200000LL) /* 2026-03-01T00:00:00Z */
#define D VIGIL_MS_PER_DAY

static void
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

static const char small_rules[] =
    "version \"batch-test\"\n"
    "threshold big = percentile(amount, 50) fallback 100 min_samples 3\n"
    "threshold big_by_country = percentile(amount, 50) by country fallback 100 min_samples 2\n"
    "threshold scarce = alert_rate(amount, 0.1) fallback 7 min_samples 1000\n"
    "rule big_amount {\n"
    "  when amount > big and amount > big_by_country and amount > scarce\n"
    "  score 10\n"
    "  reason \"big\"\n"
    "}\n";

/*
 * The small archive (as_of A = 2026-03-01, window 90 days):
 *   c1: x1 A-1ms 10 EUR m1 t1 FR   (fraud, label at A: known)
 *       x2 A-2d  20 EUR m2    DE   (fraud, label at A+1ms: future, ignored)
 *       x3 A-10d+3h 30 EUR m1 FR   (legit, label at A-5d)
 *       x4 A-40d 40 EUR m1    FR
 *       x6 A-90d 50 EUR m3    US   (first ms of the window: in)
 *       x5 A     1000 EUR m1  FR   (at as_of: out)
 *       x7 A-90d-1ms 70 EUR m1 FR  (before the window: out)
 *   c2: y1 A-1d  500 JPY m2 t2     (no country)
 *   label for x5 at A: read, but its transaction is out: unmatched.
 */
static void
build_small(const char *datadir)
{
	store_archive *ar = fx_archive(datadir);
	const fx_txn txns[] = {
		{ "x7", "c1", "m1", NULL, "FR", "EUR", 7000, A - 90 * D - 1, 5411, NULL, 0 },
		{ "x6", "c1", "m3", NULL, "US", "EUR", 5000, A - 90 * D, 5411, NULL, 0 },
		{ "x4", "c1", "m1", NULL, "FR", "EUR", 4000, A - 40 * D, 5411, NULL, 0 },
		{ "x3", "c1", "m1", NULL, "FR", "EUR", 3000, A - 10 * D + 3 * 3600000, 5411, NULL, 0 },
		{ "y1", "c2", "m2", "t2", NULL, "JPY", 500, A - 1 * D, 5999, NULL, 0 },
		{ "x2", "c1", "m2", NULL, "DE", "EUR", 2000, A - 2 * D, 5999, NULL, 0 },
		{ "x1", "c1", "m1", "t1", "FR", "EUR", 1000, A - 1, 5411, NULL, 0 },
		{ "x5", "c1", "m1", NULL, "FR", "EUR", 100000, A, 5411, NULL, 0 },
	};

	for (size_t i = 0; i < sizeof txns / sizeof txns[0]; i++)
		fx_score(ar, &txns[i]);
	fx_label(ar, "x3", false, A - 5 * D);
	fx_label(ar, "x1", true, A);
	fx_label(ar, "x5", true, A);
	fx_label(ar, "x2", true, A + 1);
	store_archive_close(ar);
}

static void
opts_for(batch_opts *o, const char *datadir, const char *rules)
{
	batch_opts_default(o);
	o->datadir = datadir;
	o->as_of_ms = A;
	o->window_ms = 90 * D;
	o->rules_path = rules;
}

static void
test_small_archive_by_hand(void **state)
{
	const char *dd = fx_tmpdir(0);
	char rules[512];
	batch_opts o;
	batch_summary *s = calloc(1, sizeof *s);
	store_diag d;
	store_gen *g = NULL;
	store_gen_meta meta;
	store_card_profile cp;
	store_entity_profile ep;
	store_threshold_val tv;
	double prior = 1.0 / 6.0;
	vigil_err rv;

	(void)state;
	build_small(dd);
	snprintf(rules, sizeof rules, "%s/test.rules", dd);
	write_file(rules, small_rules);
	opts_for(&o, dd, rules);
	rv = batch_rebuild(&o, s, &d);
	if (rv != VIGIL_OK)
		fail_msg("batch_rebuild: %s: %s", vigil_strerror(rv), d.msg);
	assert_false(s->skipped);
	assert_int_equal(s->records_read, 6);
	assert_int_equal(s->labels_read, 3);
	assert_int_equal(s->labels_used, 2);
	assert_int_equal(s->labels_unmatched, 1);
	assert_int_equal(s->cards, 2);
	assert_int_equal(s->merchants, 3);
	assert_int_equal(s->terminals, 2);
	assert_int_equal(s->nthresholds, 3);

	assert_int_equal(store_gen_open_current(dd, &g, &d), VIGIL_OK);
	assert_int_equal(store_gen_meta_get(g, &meta), VIGIL_OK);
	assert_int_equal(meta.generation, s->generation);
	assert_int_equal(meta.as_of_ms, A);
	assert_int_equal(meta.window_ms, 90 * D);
	assert_non_null(strstr(meta.summary_json, "\"records_read\":6"));

	assert_int_equal(store_gen_card(g, "c1", &cp), VIGIL_OK);
	assert_int_equal(cp.count_7d, 2);      /* x1 (A-1ms), x2; not x5 (at A) */
	assert_int_equal(cp.count_30d, 3);
	assert_int_equal(cp.count_90d, 5);     /* x6 at A-90d in; x7 out */
	assert_near(cp.amount_sum_7d, 30.0, 1e-9);
	assert_near(cp.amount_sum_90d, 150.0, 1e-9);
	assert_near(cp.amount_mean_30d, 20.0, 1e-9);
	assert_near(cp.amount_std_30d, sqrt(200.0 / 3.0), 1e-9);
	assert_near(cp.amount_std_90d, sqrt(200.0), 1e-9);
	assert_near(cp.amount_p50_90d, 30.0, 1e-9);
	assert_near(cp.amount_p95_90d, 50.0, 1e-9);
	assert_near(cp.amount_max_90d, 50.0, 1e-9);
	assert_int_equal(cp.distinct_merchants_90d, 3);
	assert_int_equal(cp.distinct_countries_90d, 3);
	assert_int_equal(cp.first_seen_ms, A - 90 * D);
	assert_int_equal(cp.fraud_count_90d, 1); /* x1; x2's label is from the future */
	assert_int_equal(cp.hour_hist[0], 3);
	assert_int_equal(cp.hour_hist[3], 1);
	assert_int_equal(cp.hour_hist[23], 1);
	assert_int_equal(cp.ncountries, 3);
	assert_memory_equal(cp.countries[0], "FR", 2);

	assert_int_equal(store_gen_card(g, "c2", &cp), VIGIL_OK);
	assert_int_equal(cp.count_7d, 1);
	assert_near(cp.amount_sum_7d, 500.0, 1e-9); /* JPY has no minor unit */
	assert_int_equal(cp.distinct_countries_90d, 0);

	assert_int_equal(store_gen_merchant(g, "m1", &ep), VIGIL_OK);
	assert_int_equal(ep.count_7d, 1);
	assert_int_equal(ep.count_30d, 2);
	assert_int_equal(ep.count_90d, 3);
	assert_near(ep.amount_mean_30d, 20.0, 1e-9);
	assert_int_equal(ep.fraud_count_7d, 1);
	assert_int_equal(ep.labeled_30d, 2);
	assert_near(ep.fraud_rate_7d, (1 + 100 * prior) / 101, 1e-12);
	assert_near(ep.fraud_rate_90d, (1 + 100 * prior) / 103, 1e-12);
	assert_int_equal(store_gen_merchant(g, "m2", &ep), VIGIL_OK);
	assert_int_equal(ep.count_7d, 2);
	assert_near(ep.amount_mean_30d, 260.0, 1e-9);
	assert_int_equal(ep.fraud_count_90d, 0);
	assert_near(ep.fraud_rate_30d, (0 + 100 * prior) / 102, 1e-12);
	assert_int_equal(store_gen_merchant(g, "m3", &ep), VIGIL_OK);
	assert_int_equal(ep.count_30d, 0);
	assert_int_equal(ep.count_90d, 1);
	assert_int_equal(store_gen_terminal(g, "t1", &ep), VIGIL_OK);
	assert_int_equal(ep.count_7d, 1);
	assert_int_equal(ep.fraud_count_7d, 1);
	assert_int_equal(store_gen_terminal(g, "t3", &ep), VIGIL_ENOTFOUND);

	/* amounts 10 20 30 40 50 500: nearest-rank median = 30 */
	assert_int_equal(store_gen_threshold(g, "big", "", &tv), VIGIL_OK);
	assert_near(tv.value, 30.0, 0);
	assert_true(tv.tuned);
	assert_int_equal(tv.samples, 6);
	assert_true(isnan(tv.previous));
	assert_int_equal(store_gen_threshold(g, "big_by_country", "FR", &tv), VIGIL_OK);
	assert_near(tv.value, 30.0, 0); /* 10 30 40 */
	assert_int_equal(tv.samples, 3);
	/* DE and US have one sample each (< 2): they use the global value */
	assert_int_equal(store_gen_threshold(g, "big_by_country", "DE", &tv), VIGIL_ENOTFOUND);
	assert_int_equal(s->thresholds[1].groups, 1);
	assert_int_equal(s->thresholds[1].groups_fallback, 2);
	assert_int_equal(store_gen_threshold(g, "scarce", "", &tv), VIGIL_OK);
	assert_false(tv.tuned);
	assert_near(tv.value, 7.0, 0);
	assert_int_equal(tv.samples, 6);
	/* the summary says which tuned, and why the others did not */
	assert_true(s->thresholds[0].tuned);
	assert_string_equal(s->thresholds[0].why, "");
	assert_string_equal(s->thresholds[2].name, "scarce");
	assert_false(s->thresholds[2].tuned);
	assert_string_equal(s->thresholds[2].why, "too few samples: 6 of min_samples 1000");
	{
		json_t *js = batch_summary_json(s), *th;

		assert_non_null(js);
		th = json_object_get(js, "thresholds");
		assert_true(json_is_null(json_object_get(json_array_get(th, 0), "why")));
		assert_string_equal(json_string_value(json_object_get(json_array_get(th, 2), "why")),
		    "too few samples: 6 of min_samples 1000");
		json_decref(js);
	}
	store_gen_close(g);
	g = NULL;

	/* Idempotent: the same as-of again is a no-op. */
	memset(s, 0, sizeof *s);
	assert_int_equal(batch_rebuild(&o, s, &d), VIGIL_OK);
	assert_true(s->skipped);
	assert_int_equal(s->generation, meta.generation);
	/* --force rebuilds; the previous value is the one it replaces. */
	o.force = true;
	memset(s, 0, sizeof *s);
	assert_int_equal(batch_rebuild(&o, s, &d), VIGIL_OK);
	assert_false(s->skipped);
	assert_int_equal(s->generation, meta.generation + 1);
	assert_int_equal(store_gen_open_current(dd, &g, &d), VIGIL_OK);
	assert_int_equal(store_gen_threshold(g, "big", "", &tv), VIGIL_OK);
	assert_near(tv.previous, 30.0, 0);
	assert_near(s->thresholds[0].old_value, 30.0, 0);
	store_gen_close(g);

	/* Without a rule file the thresholds carry over unchanged. */
	o.rules_path = NULL;
	memset(s, 0, sizeof *s);
	assert_int_equal(batch_rebuild(&o, s, &d), VIGIL_OK);
	assert_int_equal(s->nthresholds, 0);
	assert_int_equal(store_gen_open_current(dd, &g, &d), VIGIL_OK);
	assert_int_equal(store_gen_threshold(g, "big", "", &tv), VIGIL_OK);
	assert_near(tv.value, 30.0, 0);
	assert_near(tv.previous, 30.0, 0);
	assert_true(tv.tuned);
	assert_int_equal(tv.samples, 6);
	assert_int_equal(store_gen_threshold(g, "big_by_country", "FR", &tv), VIGIL_OK);
	assert_int_equal(store_gen_threshold(g, "scarce", "", &tv), VIGIL_OK);
	assert_false(tv.tuned);
	store_gen_close(g);
	o.rules_path = rules;

	/* Rolling back makes the previous generation current again. */
	{
		uint64_t from = 0, to = 0, cur = 0;

		assert_int_equal(batch_rollback(dd, 0, &from, &to, &d), VIGIL_OK);
		assert_int_equal(from, meta.generation + 2);
		assert_int_equal(to, meta.generation + 1);
		assert_int_equal(store_gen_current(dd, &cur), VIGIL_OK);
		assert_int_equal(cur, meta.generation + 1);
		assert_int_equal(batch_rollback(dd, meta.generation, &from, &to, &d), VIGIL_OK);
		assert_int_equal(store_gen_current(dd, &cur), VIGIL_OK);
		assert_int_equal(cur, meta.generation);
		assert_int_equal(batch_rollback(dd, meta.generation, &from, &to, &d), VIGIL_EINVAL);
	}
	free(s);
	fx_rm_rf(dd);
}

/* A label after as_of flips the answer once as_of moves past it. */
/*
 * The decision bands tuned from the archived score: 2,000 rows over 20
 * days scored 0..99 evenly, the rows scored 90 or more fraud (and nothing
 * else): review at the top 5% of the scores (95), decline where 90% of
 * the alerts are fraud (90: every row from there is fraud), and a band
 * whose min_samples no night reaches keeps its fallback, saying why.
 */
static void
test_bands_tuned_from_score(void **state)
{
	static const char src[] =
	    "threshold review_at = alert_rate(score, 0.05) fallback 40 min_samples 1000\n"
	    "threshold decline_at = precision(score, 0.9) fallback 80 min_samples 20\n"
	    "threshold out_of_reach = alert_rate(score, 0.05) fallback 40 min_samples 5000\n"
	    "band review = review_at\n"
	    "band decline = decline_at\n";
	const char *dd = fx_tmpdir(0);
	char rules[512], id[32];
	batch_opts o;
	batch_summary *s = calloc(1, sizeof *s);
	store_archive *ar = fx_archive(dd);
	store_gen *g = NULL;
	store_threshold_val tv;
	store_diag d;
	vigil_err rv;

	(void)state;
	assert_non_null(s);
	for (int i = 0; i < 2000; i++) {
		fx_txn t = { id, "c1", "m1", NULL, "FR", "EUR", 1000, A - 20 * D + i * (10 * D / 1000),
			5411, NULL, 0 };

		snprintf(id, sizeof id, "s%d", i);
		fx_score_at(ar, &t, (double)(i % 100));
		fx_label(ar, id, i % 100 >= 90, t.t + 1);
	}
	store_archive_close(ar);
	snprintf(rules, sizeof rules, "%s/bands.rules", dd);
	write_file(rules, src);
	opts_for(&o, dd, rules);
	rv = batch_rebuild(&o, s, &d);
	if (rv != VIGIL_OK)
		fail_msg("batch_rebuild: %s: %s", vigil_strerror(rv), d.msg);
	assert_int_equal(s->nthresholds, 3);
	assert_int_equal(store_gen_open_current(dd, &g, &d), VIGIL_OK);
	assert_int_equal(store_gen_threshold(g, "review_at", "", &tv), VIGIL_OK);
	assert_true(tv.tuned);
	assert_int_equal(tv.samples, 2000);
	assert_near(tv.value, 95, 1);
	assert_int_equal(store_gen_threshold(g, "decline_at", "", &tv), VIGIL_OK);
	assert_true(tv.tuned);
	assert_near(tv.value, 90, 1);
	assert_int_equal(store_gen_threshold(g, "out_of_reach", "", &tv), VIGIL_OK);
	assert_false(tv.tuned);
	assert_near(tv.value, 40, 0);
	assert_true(s->thresholds[0].tuned && s->thresholds[1].tuned);
	assert_string_equal(s->thresholds[2].why, "too few samples: 2000 of min_samples 5000");
	store_gen_close(g);
	free(s);
}

/*
 * A band on the score tunes on the scores the model gave, and a precision
 * target on mature labels only. Over 20 days before as-of: 700 rows of a
 * cold start (rule points 95, model.score archived missing, legitimate),
 * then 1,000 rows the model scored 0..99 (the rows from 90 fraud; every
 * tenth archived without model.score, as an older vigild wrote them: the
 * model's), then 700 rows of the last 7 days scored 90..99 whose labels
 * have not arrived. Counted as the rebuild used to, the cold start's 95s
 * and the unreported last week made precision 0.9 out of reach (100
 * frauds in 1,500 alerts): decline stayed at its fallback.
 */
static void
test_bands_tune_on_model_rows_mature(void **state)
{
	static const char src[] =
	    "threshold review_at = alert_rate(score, 0.05) fallback 40 min_samples 100\n"
	    "threshold decline_at = precision(score, 0.9) fallback 80 min_samples 20\n"
	    "threshold out_of_reach = precision(score, 0.9) fallback 80 min_samples 5000\n"
	    "band review = review_at\n"
	    "band decline = decline_at\n";
	const char *dd = fx_tmpdir(0);
	char rules[512], id[32];
	batch_opts o;
	batch_summary *s = calloc(1, sizeof *s);
	store_archive *ar = fx_archive(dd);
	store_gen *g = NULL;
	store_threshold_val tv;
	store_diag d;
	vigil_err rv;

	(void)state;
	assert_non_null(s);
	for (int i = 0; i < 2400; i++) {
		fx_txn t = { id, "c1", "m1", NULL, "FR", "EUR", 1000, 0, 5411, "model.score", 0 };
		double score;

		snprintf(id, sizeof id, "s%d", i);
		if (i < 700) {                  /* cold start: rule points, no model */
			t.t = A - 20 * D + i * (7 * D / 700);
			t.feat_val = NAN;
			score = 95;
		} else if (i < 1700) {          /* the model's, labels mature */
			t.t = A - 13 * D + (i - 700) * (6 * D / 1000);
			score = (double)(i % 100);
			t.feat_val = score / 100;
			if (i % 10 == 0)
				t.feat = NULL;
		} else {                        /* the last 7 days: labels to come */
			t.t = A - 7 * D + (i - 1700) * (7 * D / 700);
			score = 90 + (double)(i % 10);
			t.feat_val = score / 100;
		}
		fx_score_at(ar, &t, score);
		if (i < 1700)
			fx_label(ar, id, i >= 700 && i % 100 >= 90, t.t + 1);
	}
	store_archive_close(ar);
	snprintf(rules, sizeof rules, "%s/bands.rules", dd);
	write_file(rules, src);
	opts_for(&o, dd, rules);
	rv = batch_rebuild(&o, s, &d);
	if (rv != VIGIL_OK)
		fail_msg("batch_rebuild: %s: %s", vigil_strerror(rv), d.msg);
	assert_int_equal(s->nthresholds, 3);
	assert_int_equal(store_gen_open_current(dd, &g, &d), VIGIL_OK);
	/* alert_rate reads no label: every score the model gave, recent too */
	assert_int_equal(store_gen_threshold(g, "review_at", "", &tv), VIGIL_OK);
	assert_true(tv.tuned);
	assert_int_equal(tv.samples, 1700);
	assert_int_equal(store_gen_threshold(g, "decline_at", "", &tv), VIGIL_OK);
	assert_true(tv.tuned);
	assert_int_equal(tv.samples, 1000);
	assert_near(tv.value, 90, 1);
	assert_int_equal(store_gen_threshold(g, "out_of_reach", "", &tv), VIGIL_OK);
	assert_false(tv.tuned);
	assert_string_equal(s->thresholds[2].why, "too few samples: 1000 of min_samples 5000; "
	    "left out: 700 scored before a model, 700 not mature");
	store_gen_close(g);
	free(s);
	fx_rm_rf(dd);
}

static void
test_label_time_respected(void **state)
{
	const char *dd = fx_tmpdir(0);
	batch_opts o;
	batch_summary *s = calloc(1, sizeof *s);
	store_diag d;
	store_gen *g = NULL;
	store_card_profile cp;

	(void)state;
	build_small(dd);
	opts_for(&o, dd, NULL);
	o.as_of_ms = A + 1; /* x2's label (A+1ms) is known; x5 (at A) in, x6 (A-90d) out */
	assert_int_equal(batch_rebuild(&o, s, &d), VIGIL_OK);
	assert_int_equal(s->records_read, 6);
	assert_int_equal(store_gen_open_current(dd, &g, &d), VIGIL_OK);
	assert_int_equal(store_gen_card(g, "c1", &cp), VIGIL_OK);
	assert_int_equal(cp.fraud_count_90d, 3); /* x1, x2, x5 */
	assert_int_equal(cp.count_7d, 3);
	store_gen_close(g);
	free(s);
	fx_rm_rf(dd);
}

/*
 * Amounts in currencies with four decimals (CLF, UYW): a merchant's mean is
 * in major units, as the card's is (docs/vigil-rebuild.md, "Amounts"). It
 * took them as two-decimal amounts: 12.3456 CLF counted as 1234.56.
 */
static void
test_four_decimal_currency_mean(void **state)
{
	const char *dd = fx_tmpdir(0);
	batch_opts o;
	batch_summary *s = calloc(1, sizeof *s);
	store_diag d;
	store_gen *g = NULL;
	store_card_profile cp;
	store_entity_profile ep;
	store_archive *ar;
	const fx_txn txns[] = {
		{ "u1", "c7", "m7", "t7", "CL", "CLF", 123456, A - 5 * D, 5411, NULL, 0 },
		{ "u2", "c7", "m7", "t7", "CL", "CLF", 20001, A - 4 * D, 5411, NULL, 0 },
		{ "u3", "c6", "m7", NULL, "UY", "UYW", 5, A - 3 * D, 5411, NULL, 0 },
	};

	(void)state;
	assert_non_null(s);
	ar = fx_archive(dd);
	for (size_t i = 0; i < sizeof txns / sizeof txns[0]; i++)
		fx_score(ar, &txns[i]);
	store_archive_close(ar);
	opts_for(&o, dd, NULL);
	assert_int_equal(batch_rebuild(&o, s, &d), VIGIL_OK);
	assert_int_equal(store_gen_open_current(dd, &g, &d), VIGIL_OK);
	assert_int_equal(store_gen_card(g, "c7", &cp), VIGIL_OK);
	assert_near(cp.amount_mean_30d, (12.3456 + 2.0001) / 2, 1e-9);
	/* thousandths, rounded: 12.346 + 2.000 + 0.001 */
	assert_int_equal(store_gen_merchant(g, "m7", &ep), VIGIL_OK);
	assert_near(ep.amount_mean_30d, (12.346 + 2.0 + 0.001) / 3, 1e-9);
	assert_int_equal(store_gen_terminal(g, "t7", &ep), VIGIL_OK);
	assert_near(ep.amount_mean_30d, (12.346 + 2.0) / 2, 1e-9);
	store_gen_close(g);
	free(s);
	fx_rm_rf(dd);
}

/*
 * A merchant's 30-day sum of amounts near the largest vigil_txn_validate
 * accepts (amount_minor < 10^15) in a currency with no decimals: each is
 * about 10^18 thousandths, so ten of them passed INT64_MAX and the mean
 * came out negative. The card's sums are doubles and were right.
 */
static void
test_large_amounts_mean(void **state)
{
	const char *dd = fx_tmpdir(0);
	const int64_t big = 999999999999999LL; /* 10^15 - 1 JPY */
	const int n = 24;
	batch_opts o;
	batch_summary *s = calloc(1, sizeof *s);
	store_diag d;
	store_gen *g = NULL;
	store_card_profile cp;
	store_entity_profile ep;
	store_archive *ar;
	char id[16];

	(void)state;
	assert_non_null(s);
	ar = fx_archive(dd);
	for (int i = 0; i < n; i++) {
		fx_txn t = { id, "cj", "mj", "tj", "JP", "JPY", big, A - (i + 1) * 3600000LL,
		    5411, NULL, 0 };

		snprintf(id, sizeof id, "j%d", i);
		if (i % 2) /* 12 large ones: 1.2 * 10^19 thousandths */
			t.amount_minor = 1000;
		fx_score(ar, &t);
	}
	store_archive_close(ar);
	opts_for(&o, dd, NULL);
	assert_int_equal(batch_rebuild(&o, s, &d), VIGIL_OK);
	assert_int_equal(store_gen_open_current(dd, &g, &d), VIGIL_OK);
	assert_int_equal(store_gen_card(g, "cj", &cp), VIGIL_OK);
	assert_int_equal(cp.count_30d, n);
	assert_near(cp.amount_mean_30d, (big + 1000) / 2.0, 1.0);
	assert_int_equal(store_gen_merchant(g, "mj", &ep), VIGIL_OK);
	assert_int_equal(ep.count_30d, n);
	/* within a few ulps of 5 * 10^14 (a double's ulp there is 1/16) */
	assert_near(ep.amount_mean_30d, (big + 1000) / 2.0, 1.0);
	assert_int_equal(store_gen_terminal(g, "tj", &ep), VIGIL_OK);
	assert_near(ep.amount_mean_30d, (big + 1000) / 2.0, 1.0);
	store_gen_close(g);
	free(s);
	fx_rm_rf(dd);
}

/*
 * Labels that arrive twice for the same transaction (the same chargeback
 * sent again, or a fraud label later withdrawn) are one labelled
 * transaction: the latest wins and the summary does not count the earlier
 * one as "unmatched". Same in a merge of partitions. A partition alone
 * cannot tell a label unmatched from one of another partition's cards:
 * its JSON says null, not a count (it said 3 and 1 here, for 1).
 */
static void
test_label_twice_not_unmatched(void **state)
{
	const char *dd = fx_tmpdir(0);
	char p0[600], p1[600];
	const char *parts[2] = { p0, p1 };
	batch_opts o;
	batch_summary *s = calloc(1, sizeof *s);
	store_diag d;
	store_gen *g = NULL;
	store_card_profile cp;
	store_archive *ar;
	json_t *js;
	const fx_txn txns[] = {
		{ "z1", "c9", "m1", NULL, "FR", "EUR", 1000, A - 5 * D, 5411, NULL, 0 },
		{ "z2", "c9", "m1", NULL, "FR", "EUR", 2000, A - 4 * D, 5411, NULL, 0 },
		{ "z3", "c8", "m1", NULL, "FR", "EUR", 3000, A - 4 * D, 5411, NULL, 0 },
	};

	(void)state;
	assert_non_null(s);
	ar = fx_archive(dd);
	for (size_t i = 0; i < sizeof txns / sizeof txns[0]; i++)
		fx_score(ar, &txns[i]);
	fx_label(ar, "z1", true, A - 3 * D);
	fx_label(ar, "z2", true, A - 3 * D);
	fx_label(ar, "z1", false, A - 2 * D);  /* withdrawn: z1 is legit */
	fx_label(ar, "z2", true, A - 1 * D);   /* the same chargeback again */
	fx_label(ar, "nope", true, A - 1 * D); /* no such transaction */
	store_archive_close(ar);

	opts_for(&o, dd, NULL);
	assert_int_equal(batch_rebuild(&o, s, &d), VIGIL_OK);
	assert_int_equal(s->labels_read, 3);
	assert_int_equal(s->labels_used, 2);
	assert_int_equal(s->labels_unmatched, 1);
	assert_int_equal(store_gen_open_current(dd, &g, &d), VIGIL_OK);
	assert_int_equal(store_gen_card(g, "c9", &cp), VIGIL_OK);
	assert_int_equal(cp.fraud_count_90d, 1); /* z2 only */
	store_gen_close(g);

	for (uint32_t i = 0; i < 2; i++) {
		opts_for(&o, dd, NULL);
		o.part_index = i;
		o.part_count = 2;
		snprintf((char *)parts[i], sizeof p0, "%s/p%u.vpart", dd, i);
		o.out_path = parts[i];
		memset(s, 0, sizeof *s);
		assert_int_equal(batch_rebuild(&o, s, &d), VIGIL_OK);
		js = batch_summary_json(s);
		assert_non_null(js);
		assert_true(json_is_null(json_object_get(json_object_get(js, "labels"),
		    "unmatched")));
		assert_int_equal(json_integer_value(json_object_get(json_object_get(js, "labels"),
		    "read")), 3);
		json_decref(js);
	}
	opts_for(&o, dd, NULL);
	o.force = true;
	memset(s, 0, sizeof *s);
	assert_int_equal(batch_merge(&o, parts, 2, s, &d), VIGIL_OK);
	js = batch_summary_json(s);
	assert_non_null(js);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(js, "labels"),
	    "unmatched")), 1);
	json_decref(js);
	assert_int_equal(s->labels_read, 3);
	assert_int_equal(s->labels_used, 2);
	assert_int_equal(s->labels_unmatched, 1);
	free(s);
	fx_rm_rf(dd);
}

/*
 * A bigger synthetic archive: 3000 transactions of 200 cards at 20
 * merchants, 40 terminals, 4 countries; every 7th labelled (every 21st
 * fraud); an archived feature vel.card.count_1h uniform in 0..999.
 */
static const char big_rules[] =
    "version \"batch-big\"\n"
    "threshold p90 = percentile(amount, 90) by mcc fallback 100 min_samples 50\n"
    "threshold vel_alert = alert_rate(vel.card.count_1h, 0.05) fallback 99 min_samples 100\n"
    "threshold vel_prec = precision(vel.card.count_1h, 0.5) fallback 98 min_samples 10\n"
    "rule r1 {\n"
    "  when amount > p90 and vel.card.count_1h >= vel_alert and vel.card.count_1h >= vel_prec\n"
    "  score 10\n"
    "  reason \"r1\"\n"
    "}\n";

#define BIG_N 3000

static double
big_feat(int i)
{
	return (double)((i * 37) % 1000);
}

static void
build_big(const char *datadir)
{
	store_archive *ar = fx_archive(datadir);
	static const char *const cc[] = { "FR", "DE", "ES", "IT" };
	char tid[32], card[32], merch[32], term[32];

	for (int i = 0; i < BIG_N; i++) {
		fx_txn t = { 0 };

		snprintf(tid, sizeof tid, "txn-%05d", i);
		snprintf(card, sizeof card, "card-%03d", (i * 7) % 200);
		snprintf(merch, sizeof merch, "merchant-%02d", i % 20);
		snprintf(term, sizeof term, "term-%02d", i % 40);
		t.txn_id = tid;
		t.card = card;
		t.merchant = merch;
		t.terminal = i % 3 ? term : NULL;
		t.country = cc[i % 4];
		t.currency = "EUR";
		t.amount_minor = 100 + (i * 7919) % 50000;
		t.t = A - 80 * D + (int64_t)i * (80 * D / BIG_N);
		t.mcc = i % 2 ? 5411 : 5999;
		t.feat = "vel.card.count_1h";
		t.feat_val = big_feat(i);
		fx_score(ar, &t);
		if (i % 7 == 0)
			fx_label(ar, tid, i % 21 == 0, t.t + D);
	}
	store_archive_close(ar);
}

/* Writes dir's 3 partitions (2 threads inside partition 1) into paths[i] =
 * dir/tag-i.vpart, pp[i] = paths[i]. */
static void
big_partitions(const char *dir, const char *rules, const char *tag, char paths[][600],
    const char **pp)
{
	batch_opts o;
	batch_summary ps;
	store_diag d;

	for (uint32_t i = 0; i < 3; i++) {
		snprintf(paths[i], 600, "%s/%s-%u.vpart", dir, tag, i);
		pp[i] = paths[i];
		opts_for(&o, dir, rules);
		o.part_index = i;
		o.part_count = 3;
		o.out_path = paths[i];
		o.threads = i == 1 ? 2 : 1; /* threads inside a partition too */
		if (batch_rebuild(&o, &ps, &d) != VIGIL_OK)
			fail_msg("partition %u: %s", i, d.msg);
		assert_true(ps.partial);
		assert_true(access(paths[i], R_OK) == 0);
	}
}

static char *
dump_db(const char *datadir, uint64_t gen, const char *db)
{
	char dir[600];
	const char *argv[] = { "/usr/bin/mdb_dump", "-s", db, dir, NULL };
	char *out = NULL, *err = NULL;
	int rc;

	snprintf(dir, sizeof dir, "%s/features/gen-%06llu", datadir, (unsigned long long)gen);
	rc = fx_run(argv, &out, &err);
	if (rc != 0)
		fail_msg("mdb_dump -s %s %s: exit %d: %s", db, dir, rc, err ? err : "");
	free(err);
	return out;
}

/* msg names file as FILE:OFFSET: (docs/tools.md, a place in a binary input). */
static bool
names_offset(const char *msg, const char *file)
{
	const char *p = strstr(msg, file);
	size_t n = 0;

	if (p == NULL)
		return false;
	p += strlen(file);
	if (*p++ != ':')
		return false;
	while (p[n] >= '0' && p[n] <= '9')
		n++;
	return n > 0 && p[n] == ':' && p[n + 1] == ' ';
}

static void
assert_same_tables(const char *d1, uint64_t g1, const char *d2, uint64_t g2, bool thresholds)
{
	static const char *const dbs[] = { "card", "merchant", "terminal", "threshold" };

	for (size_t i = 0; i < (thresholds ? 4u : 3u); i++) {
		char *a = dump_db(d1, g1, dbs[i]), *b = dump_db(d2, g2, dbs[i]);

		assert_non_null(a);
		assert_non_null(b);
		assert_true(strlen(a) > 100); /* not trivially empty */
		if (strcmp(a, b) != 0)
			fail_msg("table %s differs between %s gen %llu and %s gen %llu", dbs[i],
			    d1, (unsigned long long)g1, d2, (unsigned long long)g2);
		free(a);
		free(b);
	}
}

static void
test_partitions_threads_single_agree(void **state)
{
	const char *single = fx_tmpdir(0), *threads = fx_tmpdir(1), *parts = fx_tmpdir(2);
	char rules[512], paths[3][600];
	const char *pp[3];
	batch_opts o;
	batch_summary *s = calloc(1, sizeof *s), *st = calloc(1, sizeof *st),
	    *sp = calloc(1, sizeof *sp);
	store_diag d;
	store_gen *g = NULL;
	store_threshold_val tv;
	uint64_t ge = 0, gs, gt, gp;
	vigil_err rv;

	(void)state;
	build_big(single);
	fx_copy_archive(single, threads);
	fx_copy_archive(single, parts);
	snprintf(rules, sizeof rules, "%s/big.rules", single);
	write_file(rules, big_rules);

	opts_for(&o, single, rules);
	o.threads = 1;
	rv = batch_rebuild(&o, s, &d);
	if (rv != VIGIL_OK)
		fail_msg("single: %s", d.msg);
	gs = s->generation;
	assert_int_equal(s->records_read, BIG_N);
	assert_int_equal(s->cards, 200);
	assert_int_equal(s->merchants, 20);
	assert_int_equal(s->terminals, 40);

	opts_for(&o, threads, rules);
	o.threads = 2;
	rv = batch_rebuild(&o, st, &d);
	if (rv != VIGIL_OK)
		fail_msg("threads: %s", d.msg);
	gt = st->generation;
	assert_int_equal(st->records_read, BIG_N);
	assert_int_equal(st->labels_used, s->labels_used);

	big_partitions(parts, rules, "part", paths, pp);
	/* No generation until the merge. */
	assert_int_equal(store_gen_current(parts, &ge), VIGIL_OK);
	assert_int_equal(ge, 0);
	/* Merging the wrong set is refused with the file named. */
	{
		const char *dup[3] = { paths[0], paths[0], paths[2] };

		opts_for(&o, parts, NULL);
		assert_int_equal(batch_merge(&o, dup, 3, sp, &d), VIGIL_EINVAL);
		assert_non_null(strstr(d.msg, "both partition 0"));
		assert_int_equal(batch_merge(&o, pp, 2, sp, &d), VIGIL_EINVAL);
	}
	/* A damaged partial file is refused, naming the file and the offset. */
	{
		char bad[640], cmd[1400];
		const char *bp[3] = { paths[0], bad, paths[2] };
		FILE *f;
		long size;

		snprintf(bad, sizeof bad, "%s/damaged.vpart", parts);
		snprintf(cmd, sizeof cmd, "cp '%s' '%s'", paths[1], bad);
		assert_int_equal(system(cmd), 0);
		f = fopen(bad, "r+b");
		assert_non_null(f);
		assert_int_equal(fseek(f, 0, SEEK_END), 0);
		size = ftell(f);
		assert_int_equal(fseek(f, size / 2, SEEK_SET), 0);
		assert_int_equal(fputc(0x5a ^ 0xff, f) != EOF, 1);
		assert_int_equal(fclose(f), 0);
		opts_for(&o, parts, NULL);
		assert_int_not_equal(batch_merge(&o, bp, 3, sp, &d), VIGIL_OK);
		assert_true(names_offset(d.msg, "damaged.vpart"));
		assert_int_equal(truncate(bad, size - 3), 0);
		assert_int_not_equal(batch_merge(&o, bp, 3, sp, &d), VIGIL_OK);
		assert_true(names_offset(d.msg, "damaged.vpart"));
		assert_int_equal(store_gen_current(parts, &ge), VIGIL_OK);
		assert_int_equal(ge, 0);
	}
	opts_for(&o, parts, NULL);
	rv = batch_merge(&o, pp, 3, sp, &d);
	if (rv != VIGIL_OK)
		fail_msg("merge: %s", d.msg);
	gp = sp->generation;
	assert_int_equal(sp->records_read, BIG_N);
	assert_int_equal(sp->cards, 200);
	assert_int_equal(sp->labels_used, s->labels_used);

	assert_same_tables(single, gs, threads, gt, true);
	assert_same_tables(single, gs, parts, gp, true);

	/* Alert rate: the achieved share of vel.card.count_1h >= v is at most 5%
	 * and within 10% of it (stated tolerance). */
	assert_int_equal(store_gen_open_current(single, &g, &d), VIGIL_OK);
	assert_int_equal(store_gen_threshold(g, "vel_alert", "", &tv), VIGIL_OK);
	if (!tv.tuned)
		fail_msg("vel_alert not tuned: %llu samples", (unsigned long long)tv.samples);
	{
		int over = 0;

		for (int i = 0; i < BIG_N; i++)
			over += big_feat(i) >= tv.value;
		assert_true((double)over / BIG_N <= 0.05);
		assert_true((double)over / BIG_N >= 0.045);
	}
	/* Per-group percentile: both mcc groups have 1500 samples. */
	assert_int_equal(store_gen_threshold(g, "p90", "5411", &tv), VIGIL_OK);
	assert_true(tv.tuned);
	assert_int_equal(tv.samples, BIG_N / 2);
	assert_int_equal(store_gen_threshold(g, "p90", "5999", &tv), VIGIL_OK);
	assert_int_equal(store_gen_threshold(g, "vel_prec", "", &tv), VIGIL_OK);
	{
		uint64_t known = 0; /* labels whose label time (t + 1 day) is <= as_of */
		uint64_t mature = 0;

		for (int i = 0; i < BIG_N; i += 7)
			known += A - 80 * D + (int64_t)i * (80 * D / BIG_N) + D <= A;
		for (int i = 0; i < BIG_N; i++)
			mature += A - 80 * D + (int64_t)i * (80 * D / BIG_N) < A - 7 * D;
		/* precision's samples are the transactions whose labels are
		 * mature (older than the 7-day label maturity; unlabelled =
		 * legit) */
		assert_int_equal(tv.samples, mature);
		assert_true(known < (BIG_N + 6) / 7); /* some labels are from the future */
	}
	store_gen_close(g);

	/* Same datadir, forced: card/merchant/terminal tables are byte-identical. */
	opts_for(&o, single, rules);
	o.force = true;
	assert_int_equal(batch_rebuild(&o, s, &d), VIGIL_OK);
	assert_same_tables(single, gs, single, s->generation, false);

	free(s);
	free(st);
	free(sp);
	fx_rm_rf(single);
	fx_rm_rf(threads);
	fx_rm_rf(parts);
}



/*
 * Several replicas' archives (docs/vigil-rebuild.md, "Several archives"):
 * r1 holds transactions i % 3 != 2, r2 those i % 3 != 0, so i % 3 == 1 is
 * in both (a failover retry; r2's copy has another amount and feature
 * value, and must lose: same event time, r1 sorts first). Labels are split
 * between the two. A third data directory gets one archive with the union
 * in the merge's order (smallest event time first, ties to r1, each
 * txn_id's first score only). Then the rebuild of r2 + r1 (given in that
 * order), 3 partitions of them merged, and vigil-rebuild --archive on a
 * directory of both give the union's tables, meta and model bytes.
 */
#define MA_N 1500

static char *gen_blob(const char *datadir, uint64_t gen, const char *name);

typedef struct ma_rec {
	bool    label, fraud;
	int     i;
	int64_t t;
	bool    second; /* r2's copy of a transaction r1 has too */
} ma_rec;

static void
ma_put(store_archive *ar, const ma_rec *r)
{
	static const char *const cc[] = { "FR", "DE", "ES", "IT" };
	char tid[32], card[32], merch[32], term[32];
	fx_txn t = { 0 };

	snprintf(tid, sizeof tid, "txn-%05d", r->i);
	if (r->label) {
		fx_label(ar, tid, r->fraud, r->t);
		return;
	}
	snprintf(card, sizeof card, "card-%03d", (r->i * 7) % 150);
	snprintf(merch, sizeof merch, "merchant-%02d", r->i % 20);
	snprintf(term, sizeof term, "term-%02d", r->i % 40);
	t.txn_id = tid;
	t.card = card;
	t.merchant = merch;
	t.terminal = r->i % 3 ? term : NULL;
	t.country = cc[r->i % 4];
	t.currency = "EUR";
	t.amount_minor = 100 + (r->i * 7919) % 50000 + (r->second ? 77 : 0);
	t.t = r->t;
	t.mcc = r->i % 2 ? 5411 : 5999;
	t.feat = "vel.card.count_1h";
	t.feat_val = big_feat(r->i) + (r->second ? 1000 : 0);
	fx_score(ar, &t);
}

/* r's records in archive order: scores, each i % 7 == 0 one's label
 * (label time t + 1 day) right after it, as vigild writes them. */
static size_t
ma_list(int replica, ma_rec *out)
{
	size_t n = 0;

	for (int i = 0; i < MA_N; i++) {
		int64_t t = A - 80 * D + (int64_t)i * (80 * D / MA_N);

		if ((replica == 1 && i % 3 == 2) || (replica == 2 && i % 3 == 0))
			continue;
		out[n++] = (ma_rec){ .i = i, .t = t, .second = replica == 2 && i % 3 == 1 };
		if (i % 7 == 0 && (i / 7) % 2 == replica - 1)
			out[n++] = (ma_rec){ .label = true, .fraud = i % 21 == 0, .i = i, .t = t + D };
	}
	return n;
}

static void
test_several_archives_union(void **state)
{
	const char *reps = fx_tmpdir(0), *uni = fx_tmpdir(1), *out = fx_tmpdir(2);
	static ma_rec l1[2 * MA_N], l2[2 * MA_N];
	char dir1[600], dir2[600], arch1[640], arch2[640], paths[3][600], rules[600];
	char cmd[4096], ship[700], gen[32], asof[32], dd[3][700];
	static bool seen[MA_N];
	size_t n1, n2, a = 0, b = 0, dups = 0;
	batch_summary *su = calloc(1, sizeof *su), *sm = calloc(1, sizeof *sm), ps;
	const char *archives[2];
	store_archive *ar;
	batch_opts o;
	store_diag d;
	vigil_err rv;

	(void)state;
	assert_non_null(su);
	assert_non_null(sm);
	snprintf(dir1, sizeof dir1, "%s/r1", reps);
	snprintf(dir2, sizeof dir2, "%s/r2", reps);
	n1 = ma_list(1, l1);
	n2 = ma_list(2, l2);
	ar = fx_archive(dir1);
	for (size_t i = 0; i < n1; i++)
		ma_put(ar, &l1[i]);
	store_archive_close(ar);
	ar = fx_archive(dir2);
	for (size_t i = 0; i < n2; i++)
		ma_put(ar, &l2[i]);
	store_archive_close(ar);

	/* The union, in the merge's order. */
	ar = fx_archive(uni);
	memset(seen, 0, sizeof seen);
	while (a < n1 || b < n2) {
		const ma_rec *r = b >= n2 || (a < n1 && l1[a].t <= l2[b].t) ? &l1[a++] : &l2[b++];

		if (!r->label && seen[r->i]) {
			dups++;
			continue;
		}
		if (!r->label)
			seen[r->i] = true;
		ma_put(ar, r);
	}
	store_archive_close(ar);
	assert_int_equal(dups, MA_N / 3);

	snprintf(rules, sizeof rules, "%s/big.rules", out);
	write_file(rules, big_rules);
	opts_for(&o, uni, rules);
	o.threads = 1;
	rv = batch_rebuild(&o, su, &d);
	if (rv != VIGIL_OK)
		fail_msg("union: %s", d.msg);
	assert_int_equal(su->records_read, MA_N);

	/* Given r2 first: sorted by path, r1 wins the ties all the same. */
	snprintf(arch1, sizeof arch1, "%s/archive", dir1);
	snprintf(arch2, sizeof arch2, "%s/archive", dir2);
	archives[0] = arch2;
	archives[1] = arch1;
	opts_for(&o, out, rules);
	o.threads = 1;
	o.archives = archives;
	o.narchives = 2;
	rv = batch_rebuild(&o, sm, &d);
	if (rv != VIGIL_OK)
		fail_msg("two archives: %s", d.msg);
	assert_int_equal(sm->records_read, MA_N);
	assert_int_equal(sm->archives, 2);
	assert_int_equal(sm->duplicates, MA_N / 3);
	assert_int_equal(sm->labels_used, su->labels_used);
	assert_int_equal(sm->first_seq, su->first_seq);
	assert_int_equal(sm->last_seq, su->last_seq);
	assert_same_tables(uni, su->generation, out, sm->generation, true);
	{
		char *x = gen_blob(uni, su->generation, "model.json");
		char *y = gen_blob(out, sm->generation, "model.json");

		assert_true((x == NULL) == (y == NULL));
		if (x != NULL)
			assert_string_equal(x, y);
		free(x);
		free(y);
	}

	/* Fed mode (2 threads) reads the same stream. Each run below writes
	 * into a data directory of its own: a generation records the previous
	 * one's thresholds, so only first generations compare byte for byte. */
	snprintf(dd[0], sizeof dd[0], "%s/fed", out);
	snprintf(dd[1], sizeof dd[1], "%s/parts", out);
	assert_int_equal(mkdir(dd[0], 0755), 0);
	assert_int_equal(mkdir(dd[1], 0755), 0);
	opts_for(&o, dd[0], rules);
	o.threads = 2;
	o.archives = archives;
	o.narchives = 2;
	rv = batch_rebuild(&o, sm, &d);
	if (rv != VIGIL_OK)
		fail_msg("two archives, 2 threads: %s", d.msg);
	assert_int_equal(sm->duplicates, MA_N / 3);
	assert_same_tables(uni, su->generation, dd[0], sm->generation, true);

	/* 3 partitions of the two archives, merged. */
	for (uint32_t i = 0; i < 3; i++) {
		const char *pp[3] = { paths[0], paths[1], paths[2] };

		snprintf(paths[i], sizeof paths[i], "%s/p-%u.vpart", out, i);
		opts_for(&o, dd[1], rules);
		o.part_index = i;
		o.part_count = 3;
		o.out_path = paths[i];
		o.threads = 1;
		o.archives = archives;
		o.narchives = 2;
		if (batch_rebuild(&o, &ps, &d) != VIGIL_OK)
			fail_msg("partition %u: %s", i, d.msg);
		if (i == 2) {
			opts_for(&o, dd[1], NULL);
			if (batch_merge(&o, pp, 3, sm, &d) != VIGIL_OK)
				fail_msg("merge: %s", d.msg);
		}
	}
	assert_int_equal(sm->records_read, MA_N);
	assert_same_tables(uni, su->generation, dd[1], sm->generation, true);

	/* The CLI on a directory of replica archives (a shipped location). */
	snprintf(ship, sizeof ship, "%s/shipped", reps);
	snprintf(dd[2], sizeof dd[2], "%s/cli", out);
	assert_int_equal(mkdir(dd[2], 0755), 0);
	snprintf(cmd, sizeof cmd, "mkdir -p '%s' && cp -r '%s' '%s/r1' && cp -r '%s' '%s/r2'",
	    ship, arch1, ship, arch2, ship);
	assert_int_equal(system(cmd), 0);
	vigil_date_format(A, asof, sizeof asof);
	{
		const char *argv[] = { fx_rebuild_bin(), "--data", dd[2], "--archive", ship,
			"--as-of", asof, "--window", "90d", "--rules", rules, "--threads", "1",
			"--json", "--quiet", NULL };
		char *sout = NULL, *serr = NULL;
		json_t *j;

		if (fx_run(argv, &sout, &serr) != 0)
			fail_msg("vigil-rebuild --archive: %s", serr ? serr : "");
		j = json_loads(sout, 0, NULL);
		assert_non_null(j);
		assert_int_equal(json_integer_value(json_object_get(j, "archives")), 2);
		assert_int_equal(json_integer_value(json_object_get(j, "duplicates")), MA_N / 3);
		snprintf(gen, sizeof gen, "%lld",
		    (long long)json_integer_value(json_object_get(j, "generation")));
		assert_same_tables(uni, su->generation, dd[2], strtoull(gen, NULL, 10), true);
		json_decref(j);
		free(sout);
		free(serr);
	}
	{
		const char *argv[] = { fx_rebuild_bin(), "--data", out, "--archive", "/nonexistent-x",
			"--as-of", asof, NULL };
		char *serr = NULL;

		assert_int_equal(fx_run(argv, NULL, &serr), 2);
		assert_non_null(strstr(serr, "--archive /nonexistent-x: No such file"));
		free(serr);
	}
	free(su);
	free(sm);
	fx_rm_rf(reps);
	fx_rm_rf(uni);
	fx_rm_rf(out);
}

/* Appends an ArchivedScore whose txn comes twice: ids1 (n1 bytes of
 * Transaction fields) first, then event time t and amount_minor (protobuf-c
 * merges them: strings of the first stay, scalars come from the second). */
static void
append_split_score(store_archive *ar, const uint8_t *ids1, size_t n1, int64_t t,
    uint64_t amount)
{
	uint8_t t2[64], rec[512], *q;

	assert_true(n1 < 256);
	q = vigil_pb_num(vigil_pb_num(t2, 2, (uint64_t)t), 6, amount);
	q = vigil_pb_str(vigil_pb_str(rec, 1, ids1, n1), 1, t2, (size_t)(q - t2));
	assert_int_equal(store_archive_append(ar, STORE_REC_SCORE, t, rec, (size_t)(q - rec), NULL),
	    VIGIL_OK);
}

/* A merged score (append_split_score) whose card id carries a NUL and a
 * tail. */
static void
append_merged_score(store_archive *ar, const char *card, int i, int64_t t)
{
	uint8_t t1[256], cid[80], *q;
	char tid[32];
	size_t cl = strlen(card);

	snprintf(tid, sizeof tid, "odd-%d", i);
	memcpy(cid, card, cl);
	memcpy(cid + cl, "\0tail", 5);
	q = vigil_pb_str(t1, 1, tid, strlen(tid));
	q = vigil_pb_str(q, 3, cid, cl + 5);
	q = vigil_pb_str(q, 4, "merchant-00", 11);
	q = vigil_pb_str(q, 7, "EUR", 3);
	append_split_score(ar, t1, (size_t)(q - t1), t, 1000 + (uint64_t)i);
}

/* A rebuild of dir with rules on `threads` threads (forced over a night
 * already built when force) that must succeed; its summary in s. */
static void
rebuild_ok(const char *dir, const char *rules, uint32_t threads, bool force, batch_summary *s)
{
	batch_opts o;
	store_diag d;

	opts_for(&o, dir, rules);
	o.threads = threads;
	o.force = force;
	if (batch_rebuild(&o, s, &d) != VIGIL_OK)
		fail_msg("%u thread(s): %s", threads, d.msg);
}

/* With several threads one reader feeds the workers: an error in a worker
 * (here the card cap) stops the reader and the other workers, is reported
 * once, and leaves no generation; bad records and their place are counted
 * once whatever the thread count, the same as a single-threaded run. */
static void
test_threads_errors_and_bad_records(void **state)
{
	const char *dir = fx_tmpdir(0);
	char rules[512];
	static const uint8_t junk[] = { 0x0a, 0x05, 0x1a, 0x09, 'x' };
	batch_opts o;
	batch_summary *s = calloc(1, sizeof *s), *s1 = calloc(1, sizeof *s1);
	store_archive *ar;
	store_diag d;
	uint64_t ge = 0;

	(void)state;
	assert_non_null(s);
	assert_non_null(s1);
	build_big(dir);
	ar = fx_archive(dir);
	assert_int_equal(store_archive_append(ar, STORE_REC_SCORE, A - 2 * D, junk, sizeof junk,
	    NULL), VIGIL_OK);
	/* Odd but valid records must reach the worker of the card the decoder
	 * reads (a scan that disagreed used to lose them with threads). */
	for (int i = 0; i < 12; i++) {
		char card[32];

		snprintf(card, sizeof card, "card-%03d", (i * 37) % 200);
		append_merged_score(ar, card, i, A - 3 * D + i);
	}
	store_archive_close(ar);
	snprintf(rules, sizeof rules, "%s/big.rules", dir);
	write_file(rules, big_rules);

	for (uint32_t t = 2; t <= 4; t += 2) {
		opts_for(&o, dir, rules);
		o.threads = t;
		o.max_entities = 50;
		assert_int_equal(batch_rebuild(&o, s, &d), VIGIL_ETOOBIG);
		assert_non_null(strstr(d.msg, "more than 50 cards"));
		assert_int_equal(store_gen_current(dir, &ge), VIGIL_OK);
		assert_int_equal(ge, 0);
	}

	rebuild_ok(dir, rules, 1, false, s1);
	assert_int_equal(s1->records_read, BIG_N + 12);
	assert_int_equal(s1->records_bad, 1);
	assert_non_null(strstr(s1->bad_where, "not a valid protobuf message"));
	assert_non_null(strstr(s1->bad_where, ".log:")); /* SEGMENT:OFFSET: WHAT */
	for (uint32_t t = 2; t <= 3; t++) {
		rebuild_ok(dir, rules, t, true, s);
		assert_int_equal(s->records_read, BIG_N + 12);
		assert_int_equal(s->records_bad, 1);
		assert_string_equal(s->bad_where, s1->bad_where);
		assert_int_equal(s->labels_used, s1->labels_used);
		assert_int_equal(s->cards, s1->cards);
		assert_true(s->first_seq == s1->first_seq && s->last_seq == s1->last_seq);
	}
	free(s);
	free(s1);
}


static void rebuild_merged(const char *dir, int64_t as_of, int64_t window, uint32_t n,
    batch_summary *s);

/* Where the value of threshold name that vigild would bind from dd's
 * current generation under the rule file text comes from, and the value. */
static rules_tval_src
bound(const char *dd, const char *text, const char *name, double *ret_value)
{
	static vigil_value f[4096]; /* all missing: only a group reads them */
	char path[600];
	rules_prog *p = NULL;
	rules_diags dg;
	rules_tvals *tv = NULL;
	store_gen *g = NULL;
	store_diag d;
	rules_tval_src src = RULES_TVAL_FALLBACK;
	uint32_t i, n;

	snprintf(path, sizeof path, "%s/bound.rules", dd);
	write_file(path, text);
	assert_int_equal(app_rules_load(path, &p, &dg), VIGIL_OK);
	assert_int_equal(store_gen_open_current(dd, &g, &d), VIGIL_OK);
	assert_int_equal(app_tvals_from_gen(p, g, &tv), VIGIL_OK);
	n = rules_prog_nthresholds(p);
	for (i = 0; i < n; i++) {
		rules_threshold_info ti;

		rules_prog_threshold(p, i, &ti);
		if (strcmp(ti.name, name) == 0)
			break;
	}
	assert_true(i < n);
	assert_int_equal(rules_tvals_value(p, tv, i, f, 4096, ret_value, &src), VIGIL_OK);
	rules_tvals_free(tv);
	store_gen_close(g);
	rules_prog_free(p);
	return src;
}

/*
 * A tuned value is bound only to a threshold of the definition it was tuned
 * for: the same file binds it; the threshold redefined (another percentile,
 * another feature) takes its fallback, not the old number on another scale;
 * a night without the rule file carries the values and their definitions
 * over alike.
 */
static void
test_threshold_redefined_falls_back(void **state)
{
	const char *dd = fx_tmpdir(0);
	char rules[512];
	batch_summary *s = calloc(1, sizeof *s);
	batch_opts o;
	store_diag d;
	double v;
	char *other_pct = strdup(small_rules), *other_feat = strdup(small_rules), *q;

	(void)state;
	assert_true(s != NULL && other_pct != NULL && other_feat != NULL);
	q = strstr(other_pct, "threshold big = percentile(amount, 50)");
	assert_non_null(q);
	memcpy(q, "threshold big = percentile(amount, 90)", 38);
	q = strstr(other_feat, "threshold big = percentile(amount, 50)");
	assert_non_null(q);
	memcpy(q, "threshold big = percentile(mcc   , 50)", 38);
	build_small(dd);
	snprintf(rules, sizeof rules, "%s/test.rules", dd);
	write_file(rules, small_rules);
	opts_for(&o, dd, rules);
	if (batch_rebuild(&o, s, &d) != VIGIL_OK)
		fail_msg("batch_rebuild: %s", d.msg);
	assert_int_equal(bound(dd, small_rules, "big", &v), RULES_TVAL_GLOBAL);
	assert_true(v != 100.0); /* tuned, not the fallback */
	assert_int_equal(bound(dd, other_pct, "big", &v), RULES_TVAL_FALLBACK);
	assert_true(v == 100.0);
	assert_int_equal(bound(dd, other_feat, "big", &v), RULES_TVAL_FALLBACK);
	/* the next night without a rule file: carried over with what they mean */
	opts_for(&o, dd, NULL);
	o.as_of_ms = A + D;
	if (batch_rebuild(&o, s, &d) != VIGIL_OK)
		fail_msg("batch_rebuild without rules: %s", d.msg);
	assert_int_equal(bound(dd, small_rules, "big", &v), RULES_TVAL_GLOBAL);
	assert_int_equal(bound(dd, other_pct, "big", &v), RULES_TVAL_FALLBACK);
	free(other_pct);
	free(other_feat);
	free(s);
}

/* A score record of card whose transaction (and so its card id) reads, but
 * whose features (field 8) hold a varint cut short: the card routes it,
 * the decoder refuses it. */
static void
append_undecodable_score(store_archive *ar, const char *card, int64_t t)
{
	static store_scored sc;
	uint8_t buf[16384];
	size_t len;

	memset(&sc, 0, sizeof sc);
	snprintf(sc.txn.txn_id, sizeof sc.txn.txn_id, "bad-%s", card);
	snprintf(sc.txn.card_id, sizeof sc.txn.card_id, "%s", card);
	snprintf(sc.txn.merchant_id, sizeof sc.txn.merchant_id, "m1");
	snprintf(sc.txn.currency, sizeof sc.txn.currency, "EUR");
	sc.txn.amount_minor = 500;
	sc.txn.event_time_ms = t;
	sc.txn.mcc = 5411;
	sc.decision = VIGIL_DECISION_ALLOW;
	snprintf(sc.rules_version, sizeof sc.rules_version, "test");
	sc.scored_at_ms = t;
	assert_int_equal(store_scored_encode(&sc, buf, sizeof buf - 5, &len), VIGIL_OK);
	buf[len++] = (8 << 3) | 2;
	buf[len++] = 3;
	buf[len++] = 0x08;
	buf[len++] = 0xff;
	buf[len++] = 0xff;
	assert_int_equal(store_archive_append(ar, STORE_REC_SCORE, t, buf, len, NULL), VIGIL_OK);
}

/* A card id whose hash falls in part want of n (a worker of --threads n,
 * or a partition of n). */
static void
card_in_part(char *buf, size_t cap, uint32_t want, uint32_t n)
{
	for (int i = 0; i < 1000; i++) {
		snprintf(buf, cap, "pc-%d", i);
		if (XXH64(buf, strlen(buf), 0) % n == want)
			return;
	}
	fail_msg("no card in part %u of %u", want, n);
}

/*
 * Records whose card id reads but which do not decode are counted and the
 * first named alike by a single run, 2 threads and 2 partitions merged: the
 * first in the archive belongs to worker (and partition) 1, the second to
 * 0. A partition other than 0 used to drop its own undecodable records
 * uncounted, and with threads the first worker's first won over the
 * archive's first.
 */
static void
test_undecodable_counted_whatever_split(void **state)
{
	const char *dir = fx_tmpdir(0);
	char c0[32], c1[32];
	batch_summary *s = calloc(1, sizeof *s), *s1 = calloc(1, sizeof *s1);
	batch_summary *sm = calloc(1, sizeof *sm);
	batch_opts o;
	store_diag d;
	store_archive *ar;

	(void)state;
	assert_true(s != NULL && s1 != NULL && sm != NULL);
	build_small(dir);
	card_in_part(c1, sizeof c1, 1, 2);
	card_in_part(c0, sizeof c0, 0, 2);
	ar = fx_archive(dir);
	append_undecodable_score(ar, c1, A - 3 * D);
	append_undecodable_score(ar, c0, A - 3 * D + 1);
	store_archive_close(ar);

	/* the merge first: a night built already is skipped without --force */
	rebuild_merged(dir, A, 90 * D, 2, sm);
	opts_for(&o, dir, NULL);
	o.threads = 1;
	o.force = true;
	if (batch_rebuild(&o, s1, &d) != VIGIL_OK)
		fail_msg("single: %s", d.msg);
	assert_int_equal(s1->records_bad, 2);
	assert_non_null(strstr(s1->bad_where, "not a valid protobuf message"));
	assert_int_equal(sm->records_bad, 2);
	assert_string_equal(sm->bad_where, s1->bad_where);

	opts_for(&o, dir, NULL);
	o.threads = 2;
	o.force = true;
	if (batch_rebuild(&o, s, &d) != VIGIL_OK)
		fail_msg("2 threads: %s", d.msg);
	assert_int_equal(s->records_bad, 2);
	assert_string_equal(s->bad_where, s1->bad_where);
	free(sm);
	free(s);
	free(s1);
}

/* A valid score record whose transaction has no card_id (card false) or no
 * merchant_id (card true): vigild never archives one, and it has no key. */
static void
append_keyless_score(store_archive *ar, bool card, int64_t t)
{
	uint8_t t1[128], *q;

	q = vigil_pb_str(t1, 1, card ? "keyless-m" : "keyless-c", 9);
	q = card ? vigil_pb_str(q, 3, "card-001", 8) : vigil_pb_str(q, 4, "merchant-00", 11);
	q = vigil_pb_str(q, 7, "EUR", 3);
	append_split_score(ar, t1, (size_t)(q - t1), t, 1234);
}

/* Records without a card or a merchant are counted bad, the first one
 * named with its place and which key it lacks, alike with one thread and
 * with several, and the rest of the night is built. */
static void
test_keyless_records(void **state)
{
	const char *dir = fx_tmpdir(0);
	char rules[512];
	batch_summary *s = calloc(1, sizeof *s), *s1 = calloc(1, sizeof *s1);
	store_archive *ar;

	(void)state;
	assert_true(s != NULL && s1 != NULL);
	build_big(dir);
	ar = fx_archive(dir);
	append_keyless_score(ar, false, A - 3 * D);
	append_keyless_score(ar, true, A - 3 * D + 1);
	store_archive_close(ar);
	snprintf(rules, sizeof rules, "%s/big.rules", dir);
	write_file(rules, big_rules);

	rebuild_ok(dir, rules, 1, false, s1);
	assert_int_equal(s1->records_read, BIG_N); /* the two are not read into the night */
	assert_int_equal(s1->records_bad, 2);
	assert_non_null(strstr(s1->bad_where, "txn.card_id is empty"));
	assert_non_null(strstr(s1->bad_where, ".log:")); /* SEGMENT:OFFSET: WHAT */
	rebuild_ok(dir, rules, 3, true, s);
	assert_int_equal(s->records_bad, 2);
	assert_string_equal(s->bad_where, s1->bad_where);
	assert_int_equal(s->cards, s1->cards);
	free(s);
	free(s1);
}

/* A corrupt stretch in the middle of a segment is reported once, whatever
 * the thread count (both passes read it; only one may count it), in the
 * open segment and in a closed one (mapped; the label pass skips its
 * transaction frames unchecked). */
static void
corrupt_counted_once(bool closed)
{
	const char *dd = fx_tmpdir(0);
	char archive[512], seg[768] = "";
	batch_summary *s = calloc(1, sizeof *s);
	batch_opts o;
	store_diag d;
	DIR *dir;
	struct dirent *de;
	FILE *f;
	long size;

	assert_non_null(s);
	build_small(dd);
	if (closed) {
		store_archive *ar = fx_archive(dd);

		if (store_archive_rotate(ar, &d) != VIGIL_OK)
			fail_msg("rotate: %s", d.msg);
		store_archive_close(ar);
	}
	snprintf(archive, sizeof archive, "%s/archive", dd);
	dir = opendir(archive);
	assert_non_null(dir);
	while ((de = readdir(dir)) != NULL)
		if (strncmp(de->d_name, "seg-", 4) == 0 && strstr(de->d_name, ".log") != NULL &&
		    strstr(de->d_name, ".idx") == NULL)
			snprintf(seg, sizeof seg, "%s/%s", archive, de->d_name);
	closedir(dir);
	assert_true(seg[0] != '\0');
	/* Overwrite 4 bytes in the middle: records after it stay valid. */
	f = fopen(seg, "r+b");
	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	size = ftell(f);
	assert_true(size > 400);
	assert_int_equal(fseek(f, size / 2, SEEK_SET), 0);
	assert_int_equal(fwrite("\xde\xad\xbe\xef", 1, 4, f), 4);
	assert_int_equal(fclose(f), 0);

	for (uint32_t t = 1; t <= 2; t++) {
		opts_for(&o, dd, NULL);
		o.threads = t;
		o.force = true;
		if (batch_rebuild(&o, s, &d) != VIGIL_OK)
			fail_msg("%u threads: %s", t, d.msg);
		assert_int_equal(s->corrupt_records, 1);
		assert_non_null(strstr(s->bad_where, "bytes skipped"));
		assert_non_null(strstr(s->bad_where, strrchr(seg, '/') + 1));
	}
	free(s);
	fx_rm_rf(dd);
}

static void
test_corrupt_counted_once(void **state)
{
	(void)state;
	corrupt_counted_once(false);
	corrupt_counted_once(true);
}

/* Rebuilds dir as n (<= 4) partitions for as_of and window, then merges
 * them; *s is the merge's summary. */
static void
rebuild_merged(const char *dir, int64_t as_of, int64_t window, uint32_t n, batch_summary *s)
{
	char paths[4][600];
	const char *pp[4];
	batch_opts o;
	store_diag d;

	assert_true(n <= 4);
	for (uint32_t i = 0; i < n; i++) {
		snprintf(paths[i], sizeof paths[i], "%s/part-%u-of-%u.vpart", dir, i, n);
		pp[i] = paths[i];
		opts_for(&o, dir, NULL);
		o.as_of_ms = as_of;
		o.window_ms = window;
		o.part_index = i;
		o.part_count = n;
		o.out_path = paths[i];
		if (batch_rebuild(&o, s, &d) != VIGIL_OK)
			fail_msg("partition %u: %s", i, d.msg);
	}
	opts_for(&o, dir, NULL);
	if (batch_merge(&o, pp, n, s, &d) != VIGIL_OK)
		fail_msg("merge: %s", d.msg);
}

/* Partial files list their cards in strcmp order, which the merge checks:
 * ids longer than the 16 bytes the sort compares first, sharing them, and
 * ids that are prefixes of others. */
static void
test_partition_long_card_ids(void **state)
{
	const char *dir = fx_tmpdir(0);
	static const char *const ids[] = {
		"customer-card-0000000000000002", "customer-card-0000000000000001",
		"customer-card-000000000000000", "customer-card-00", "customer-card-0",
		"customer-card-0000000000000010", "customer-card-0000000000000001x",
		"customer-card-000", "c", "customer-card-0000",
	};
	const size_t nids = sizeof ids / sizeof ids[0];
	char tid[32];
	store_archive *ar = fx_archive(dir);
	batch_summary *s = calloc(1, sizeof *s);

	(void)state;
	assert_non_null(s);
	for (int i = 0; i < 400; i++) {
		fx_txn t = { 0 };

		snprintf(tid, sizeof tid, "lt-%04d", i);
		t.txn_id = tid;
		t.card = ids[(size_t)i % nids];
		t.merchant = "m-1";
		t.country = "FR";
		t.currency = "EUR";
		t.amount_minor = 100 + i;
		t.t = A - 10 * D + i * 60000;
		t.mcc = 5411;
		fx_score(ar, &t);
	}
	store_archive_close(ar);
	rebuild_merged(dir, A, 90 * D, 2, s);
	assert_int_equal(s->cards, nids);
	assert_int_equal(s->records_read, 400);
	free(s);
}

static void
test_lock_busy(void **state)
{
	const char *dd = fx_tmpdir(0);
	store_genw *w = NULL;
	batch_opts o;
	batch_summary *s = calloc(1, sizeof *s);
	store_diag d;
	char *out = NULL, *err = NULL;
	const char *argv[] = { fx_rebuild_bin(), "--data", dd, "--as-of", "2026-03-01", NULL };
	uint64_t cur = 0;

	(void)state;
	build_small(dd);
	assert_int_equal(store_genw_begin(dd, &w, &d), VIGIL_OK);
	opts_for(&o, dd, NULL);
	assert_int_equal(batch_rebuild(&o, s, &d), VIGIL_EBUSY);
	assert_int_equal(fx_run(argv, &out, &err), 3);
	assert_non_null(strstr(err, "another rebuild is running"));
	free(out);
	free(err);
	store_genw_abort(w);
	assert_int_equal(fx_run(argv, &out, &err), 0);
	assert_int_equal(store_gen_current(dd, &cur), VIGIL_OK);
	assert_true(cur > 0);
	free(out);
	free(err);
	free(s);
	fx_rm_rf(dd);
}

static void
test_rules_error_named(void **state)
{
	const char *dd = fx_tmpdir(0);
	char rules[512];
	batch_opts o;
	batch_summary *s = calloc(1, sizeof *s);
	store_diag d;
	uint64_t cur = 1;

	(void)state;
	build_small(dd);
	snprintf(rules, sizeof rules, "%s/bad.rules", dd);
	write_file(rules, "threshold t = percentile(amount, 50)\n");
	opts_for(&o, dd, rules);
	assert_int_not_equal(batch_rebuild(&o, s, &d), VIGIL_OK);
	assert_non_null(strstr(d.msg, "bad.rules:"));
	assert_int_equal(store_gen_current(dd, &cur), VIGIL_OK);
	assert_int_equal(cur, 0);
	free(s);
	fx_rm_rf(dd);
}

/* Appends the n scored transactions t to dd's archive. */
static void
write_txns(const char *dd, const fx_txn *t, size_t n)
{
	store_archive *ar = fx_archive(dd);

	for (size_t i = 0; i < n; i++)
		fx_score(ar, &t[i]);
	store_archive_close(ar);
}

/* first_seen of card id in the current generation of dd; -1 if absent. */
static int64_t
first_seen_of(const char *dd, const char *id)
{
	store_gen *g = NULL;
	store_card_profile cp;
	store_diag d;
	vigil_err rv;

	assert_int_equal(store_gen_open_current(dd, &g, &d), VIGIL_OK);
	rv = store_gen_card(g, id, &cp);
	store_gen_close(g);
	if (rv == VIGIL_ENOTFOUND)
		return -1;
	assert_int_equal(rv, VIGIL_OK);
	return cp.first_seen_ms;
}

static void
rebuild_at(const char *dd, int64_t as_of, int64_t window, batch_summary *s)
{
	batch_opts o;
	store_diag d;
	vigil_err rv;

	opts_for(&o, dd, NULL);
	o.as_of_ms = as_of;
	o.window_ms = window;
	rv = batch_rebuild(&o, s, &d);
	if (rv != VIGIL_OK)
		fail_msg("rebuild at %lld: %s: %s", (long long)as_of, vigil_strerror(rv), d.msg);
	assert_false(s->skipped);
}

/*
 * c1 transacts in every window: its first_seen stays at its first
 * transaction ever, 100 days before A, through windows that no longer hold
 * it. c2 is silent for a whole window and starts afresh; c3 is new.
 */
static void
test_first_seen_carried(void **state)
{
	const char *dd = fx_tmpdir(0), *pd = fx_tmpdir(1);
	batch_summary *s = calloc(1, sizeof *s);
	const fx_txn txns[] = {
		{ "f1", "c1", "m1", NULL, "FR", "EUR", 1000, A - 100 * D, 5411, NULL, 0 },
		{ "f2", "c2", "m1", NULL, "FR", "EUR", 1000, A - 99 * D, 5411, NULL, 0 },
		{ "f3", "c1", "m1", NULL, "FR", "EUR", 1000, A - 10 * D, 5411, NULL, 0 },
		{ "f4", "c3", "m1", NULL, "FR", "EUR", 1000, A - 5 * D, 5411, NULL, 0 },
		{ "f5", "c1", "m1", NULL, "FR", "EUR", 1000, A + 20 * D, 5411, NULL, 0 },
		{ "f6", "c2", "m1", NULL, "FR", "EUR", 1000, A + 30 * D, 5411, NULL, 0 },
	};

	(void)state;
	assert_non_null(s);
	write_txns(dd, txns, sizeof txns / sizeof txns[0]);
	fx_copy_archive(dd, pd);

	/* Generation 1: [A-140d, A-50d) holds f1 and f2; nothing to carry. */
	rebuild_at(dd, A - 50 * D, 90 * D, s);
	assert_int_equal(s->cards, 2);
	assert_int_equal(s->first_seen_carried, 0);
	assert_int_equal(first_seen_of(dd, "c1"), A - 100 * D);
	assert_int_equal(first_seen_of(dd, "c2"), A - 99 * D);

	/* Generation 2: [A-30d, A) holds f3 and f4 only. */
	rebuild_at(dd, A, 30 * D, s);
	assert_int_equal(s->cards, 2);
	assert_int_equal(s->first_seen_carried, 1);
	assert_string_equal(s->first_seen_note, "");
	assert_int_equal(first_seen_of(dd, "c1"), A - 100 * D); /* not A - 10d */
	assert_int_equal(first_seen_of(dd, "c3"), A - 5 * D);
	assert_int_equal(first_seen_of(dd, "c2"), -1);

	/* Generation 3: [A+10d, A+40d): c1 through generation 2; c2 afresh. */
	rebuild_at(dd, A + 40 * D, 30 * D, s);
	assert_int_equal(s->first_seen_carried, 1);
	assert_int_equal(first_seen_of(dd, "c1"), A - 100 * D);
	assert_int_equal(first_seen_of(dd, "c2"), A + 30 * D);
	assert_int_equal(first_seen_of(dd, "c3"), -1);

	/* A forced rebuild of the same window carries its own values: unchanged. */
	{
		batch_opts o;
		store_diag d;

		opts_for(&o, dd, NULL);
		o.as_of_ms = A + 40 * D;
		o.window_ms = 30 * D;
		o.force = true;
		assert_int_equal(batch_rebuild(&o, s, &d), VIGIL_OK);
		assert_int_equal(first_seen_of(dd, "c1"), A - 100 * D);
		assert_int_equal(first_seen_of(dd, "c2"), A + 30 * D);
	}

	/* The same through partitions and a merge. */
	rebuild_at(pd, A - 50 * D, 90 * D, s);
	rebuild_merged(pd, A, 30 * D, 2, s);
	assert_int_equal(s->cards, 2);
	assert_int_equal(s->first_seen_carried, 1);
	assert_int_equal(first_seen_of(pd, "c1"), A - 100 * D);
	assert_int_equal(first_seen_of(pd, "c3"), A - 5 * D);
	free(s);
	fx_rm_rf(dd);
	fx_rm_rf(pd);
}

/* Replaces card id's value in generation gen of dd with 3 bytes of junk. */
static void
damage_card(const char *dd, uint64_t gen, const char *id)
{
	char dir[700];
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val k = { .mv_size = strlen(id), .mv_data = (void *)id };
	MDB_val v = { .mv_size = 3, .mv_data = (void *)"bad" };

	snprintf(dir, sizeof dir, "%s/features/gen-%06llu", dd, (unsigned long long)gen);
	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_set_maxdbs(env, 8), 0);
	assert_int_equal(mdb_env_open(env, dir, 0, 0644), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, "card", 0, &dbi), 0);
	assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
	/* A value the writer put there (its CHECKSUM matches), not damage on
	 * disk, which the checksum refuses before any value is read. */
	assert_int_equal(gen_checksum_write(dir, NULL), VIGIL_OK);
}

/* A previous card value that does not decode: the rebuild still succeeds,
 * says where carrying stopped, and carries nothing from that card on. */
static void
test_first_seen_damaged_previous(void **state)
{
	const char *dd = fx_tmpdir(0);
	batch_summary *s = calloc(1, sizeof *s);
	json_t *js;
	const fx_txn txns[] = {
		{ "a1", "ca", "m1", NULL, "FR", "EUR", 1000, A - 60 * D, 5411, NULL, 0 },
		{ "b1", "cb", "m1", NULL, "FR", "EUR", 1000, A - 60 * D, 5411, NULL, 0 },
		{ "a2", "ca", "m1", NULL, "FR", "EUR", 1000, A - 5 * D, 5411, NULL, 0 },
		{ "b2", "cb", "m1", NULL, "FR", "EUR", 1000, A - 5 * D, 5411, NULL, 0 },
	};

	(void)state;
	assert_non_null(s);
	write_txns(dd, txns, sizeof txns / sizeof txns[0]);
	rebuild_at(dd, A - 30 * D, 90 * D, s);
	/* Not the first card: opening a generation checks the first value of
	 * each table, and refuses the whole generation if that one is bad. */
	damage_card(dd, s->generation, "cb");

	rebuild_at(dd, A, 30 * D, s);
	assert_int_equal(s->cards, 2);
	assert_int_equal(s->first_seen_carried, 1); /* ca, before cb */
	assert_non_null(strstr(s->first_seen_note, "previous generation 1: card cb: "));
	assert_int_equal(first_seen_of(dd, "ca"), A - 60 * D);
	assert_int_equal(first_seen_of(dd, "cb"), A - 5 * D);
	js = batch_summary_json(s);
	assert_non_null(js);
	assert_non_null(json_object_get(js, "first_seen_note"));
	assert_int_equal(json_integer_value(json_object_get(js, "first_seen_carried")), 1);
	json_decref(js);
	free(s);
	fx_rm_rf(dd);
}

/*
 * A generation that cannot be pruned after the commit (here: a directory
 * inside it that the pruning does not remove) does not fail the run, which
 * did commit, but it is not silent either: the summary carries a warning,
 * vigil-rebuild prints it on standard error and in the JSON.
 */
static void
test_prune_failure_reported(void **state)
{
	const char *dd = fx_tmpdir(0);
	const char *bin = fx_rebuild_bin();
	char path[600], *out = NULL, *err = NULL;
	batch_opts o;
	batch_summary *s = calloc(1, sizeof *s);
	store_diag d;
	json_t *j;
	json_error_t je;
	uint64_t cur = 0;

	(void)state;
	assert_non_null(s);
	build_small(dd);
	opts_for(&o, dd, NULL);
	assert_int_equal(batch_rebuild(&o, s, &d), VIGIL_OK);
	assert_string_equal(s->warning, "");
	snprintf(path, sizeof path, "%s/features/gen-%06llu/stuck", dd,
	    (unsigned long long)s->generation);
	assert_int_equal(mkdir(path, 0755), 0);

	o.force = true;
	o.keep = 1;
	memset(s, 0, sizeof *s);
	assert_int_equal(batch_rebuild(&o, s, &d), VIGIL_OK);
	assert_non_null(strstr(s->warning, "gen-000001"));
	assert_int_equal(store_gen_current(dd, &cur), VIGIL_OK);
	assert_int_equal(cur, 2);

	{
		const char *argv[] = { bin, "--data", dd, "--as-of", "2026-03-01", "--force",
			"--keep", "1", "--json", NULL };
		assert_int_equal(fx_run(argv, &out, &err), 0);
		j = json_loads(out, 0, &je);
		if (j == NULL)
			fail_msg("--json output is not JSON (%s): %s", je.text, out);
		assert_non_null(strstr(json_string_value(json_object_get(j, "warning")),
		    "gen-000001"));
		json_decref(j);
		assert_non_null(strstr(err, "vigil-rebuild: warning: "));
		assert_non_null(strstr(err, "gen-000001"));
		/* one line */
		assert_non_null(strchr(err, '\n'));
		assert_null(strchr(strchr(err, '\n') + 1, '\n'));
		free(out);
		free(err);
	}
	{
		const char *argv[] = { bin, "--data", dd, "--as-of", "2026-03-01", "--force",
			"--keep", "1", NULL };
		assert_int_equal(fx_run(argv, &out, &err), 0);
		assert_non_null(strstr(err, "vigil-rebuild: warning: "));
		free(out);
		free(err);
	}
	free(s);
	fx_rm_rf(dd);
}

/*
 * CURRENT names a generation whose directory is gone: the rebuild makes a
 * new one (it is what repairs the data directory), but it cannot carry the
 * thresholds and first_seen over, and it says so instead of passing it off
 * as a first run.
 */
static void
test_missing_current_generation_reported(void **state)
{
	const char *dd = fx_tmpdir(0);
	char path[600];
	batch_opts o;
	batch_summary *s = calloc(1, sizeof *s);
	store_diag d;
	uint64_t cur = 0;

	(void)state;
	assert_non_null(s);
	build_small(dd);
	opts_for(&o, dd, NULL);
	assert_int_equal(batch_rebuild(&o, s, &d), VIGIL_OK);
	assert_string_equal(s->warning, "");
	snprintf(path, sizeof path, "%s/features/gen-%06llu", dd,
	    (unsigned long long)s->generation);
	fx_rm_rf(path);

	o.as_of_ms = A + D;
	memset(s, 0, sizeof *s);
	assert_int_equal(batch_rebuild(&o, s, &d), VIGIL_OK);
	if (strstr(s->warning, "generation 1") == NULL || strstr(s->warning, "missing") == NULL)
		fail_msg("no warning about the missing generation: '%s'", s->warning);
	assert_int_equal(store_gen_current(dd, &cur), VIGIL_OK);
	assert_int_equal(cur, 2);
	/* A normal run after it has nothing to warn about. */
	o.as_of_ms = A + 2 * D;
	memset(s, 0, sizeof *s);
	assert_int_equal(batch_rebuild(&o, s, &d), VIGIL_OK);
	assert_string_equal(s->warning, "");
	free(s);
	fx_rm_rf(dd);
}

/*
 * A window without a single transaction (an as-of typed wrong, an archive
 * that is not the one vigild writes) still makes a generation, an empty
 * one: vigild then sees every card as new and the tuned thresholds at their
 * fallbacks. That must not pass as a normal night.
 */
static void
test_empty_window_warned(void **state)
{
	const char *dd = fx_tmpdir(0);
	const char *bin = fx_rebuild_bin();
	char *out = NULL, *err = NULL;
	batch_opts o;
	batch_summary *s = calloc(1, sizeof *s);
	store_diag d;

	(void)state;
	assert_non_null(s);
	build_small(dd);
	opts_for(&o, dd, NULL);
	assert_int_equal(batch_rebuild(&o, s, &d), VIGIL_OK);
	assert_string_equal(s->warning, "");
	o.as_of_ms = A + 400 * D; /* the window ends 310 days after the last record */
	memset(s, 0, sizeof *s);
	assert_int_equal(batch_rebuild(&o, s, &d), VIGIL_OK);
	assert_int_equal(s->records_read, 0);
	assert_int_equal(s->cards, 0);
	if (strstr(s->warning, "no transaction") == NULL)
		fail_msg("no warning for an empty window: '%s'", s->warning);
	{
		/* --force: the test archive's dates run past the clock */
		const char *argv[] = { bin, "--data", dd, "--as-of", "2027-06-01", "--force", "-q",
		    NULL };

		assert_int_equal(fx_run(argv, &out, &err), 0);
		assert_non_null(strstr(err, "vigil-rebuild: warning: "));
		assert_non_null(strstr(err, "no transaction"));
		free(out);
		free(err);
	}
	free(s);
	fx_rm_rf(dd);
}

/*
 * An undecodable label record is counted once by a run of N partitions
 * merged, as by a single run (each partition reads every label).
 */
static void
test_bad_label_counted_once_in_merge(void **state)
{
	const char *dd = fx_tmpdir(0);
	static const uint8_t junk[] = { 0x0a, 0x05, 0x1a, 0x09, 'x' };
	char p[3][600];
	const char *parts[3] = { p[0], p[1], p[2] };
	batch_opts o;
	batch_summary *s = calloc(1, sizeof *s), *s1 = calloc(1, sizeof *s1);
	store_archive *ar;
	store_diag d;

	(void)state;
	assert_non_null(s);
	assert_non_null(s1);
	build_small(dd);
	ar = fx_archive(dd);
	assert_int_equal(store_archive_append(ar, STORE_REC_LABEL, A - D, junk, sizeof junk,
	    NULL), VIGIL_OK);
	assert_int_equal(store_archive_append(ar, STORE_REC_SCORE, A - D, junk, sizeof junk,
	    NULL), VIGIL_OK);
	store_archive_close(ar);

	opts_for(&o, dd, NULL);
	assert_int_equal(batch_rebuild(&o, s1, &d), VIGIL_OK);
	assert_int_equal(s1->records_bad, 2);
	for (uint32_t i = 0; i < 3; i++) {
		opts_for(&o, dd, NULL);
		o.part_index = i;
		o.part_count = 3;
		snprintf(p[i], sizeof p[i], "%s/p%u.vpart", dd, i);
		o.out_path = p[i];
		memset(s, 0, sizeof *s);
		assert_int_equal(batch_rebuild(&o, s, &d), VIGIL_OK);
	}
	opts_for(&o, dd, NULL);
	o.force = true;
	memset(s, 0, sizeof *s);
	assert_int_equal(batch_merge(&o, parts, 3, s, &d), VIGIL_OK);
	assert_int_equal(s->records_bad, s1->records_bad);
	assert_string_equal(s->bad_where, s1->bad_where);
	assert_int_equal(s->labels_read, s1->labels_read);
	free(s);
	free(s1);
	fx_rm_rf(dd);
}

/*
 * --rollback on a data directory whose CURRENT is damaged, or that has no
 * generation yet: one line that says where, never stray bytes.
 */
static void
test_rollback_errors_named(void **state)
{
	const char *dd = fx_tmpdir(0);
	const char *bin = fx_rebuild_bin();
	char path[600], *out = NULL, *err = NULL;
	const char *argv[] = { bin, "--data", dd, "--rollback", NULL };
	uint64_t from = 0, to = 0;
	store_diag d;

	(void)state;
	snprintf(path, sizeof path, "%s/features", dd);
	assert_int_equal(mkdir(path, 0755), 0);
	assert_int_equal(fx_run(argv, &out, &err), 1);
	if (strstr(err, "no feature generation") == NULL)
		fail_msg("rollback without a generation: %s", err);
	assert_null(strchr(err, '\n') == NULL ? "" : strchr(strchr(err, '\n') + 1, '\n'));
	free(out);
	free(err);

	snprintf(path, sizeof path, "%s/features/CURRENT", dd);
	write_file(path, "garbage");
	assert_int_equal(fx_run(argv, &out, &err), 1);
	if (strstr(err, path) == NULL)
		fail_msg("rollback with a damaged CURRENT: %s", err);
	assert_null(strchr(err, '\n') == NULL ? "" : strchr(strchr(err, '\n') + 1, '\n'));
	free(out);
	free(err);
	memset(&d, 0x55, sizeof d);
	d.msg[sizeof d.msg - 1] = '\0';
	assert_int_not_equal(batch_rollback(dd, 0, &from, &to, &d), VIGIL_OK);
	assert_non_null(strstr(d.msg, path));
	fx_rm_rf(dd);
}

/*
 * A generation built before its as-of (an as-of in the future, or today's
 * run by hand with tomorrow's date) has not seen the end of its window: the
 * same as-of again must rebuild it, not call it "already built" (the
 * nightly run at that as-of would otherwise keep the incomplete one).
 */
static void
test_future_as_of_not_final(void **state)
{
	const char *dd = fx_tmpdir(0);
	batch_opts o;
	batch_summary *s = calloc(1, sizeof *s);
	store_diag d;
	int64_t now = vigil_now_ms();
	uint64_t g1;

	(void)state;
	assert_non_null(s);
	build_small(dd);
	opts_for(&o, dd, NULL);
	o.as_of_ms = now - now % D + D; /* tomorrow 00:00 UTC */
	assert_int_equal(batch_rebuild(&o, s, &d), VIGIL_OK);
	g1 = s->generation;
	memset(s, 0, sizeof *s);
	assert_int_equal(batch_rebuild(&o, s, &d), VIGIL_OK);
	assert_false(s->skipped);
	assert_int_equal(s->generation, g1 + 1);
	/* Going back to a past as-of needs --force (it would replace newer
	 * tables by older ones); refused without, with the two dates named. */
	o.as_of_ms = A;
	memset(s, 0, sizeof *s);
	assert_int_equal(batch_rebuild(&o, s, &d), VIGIL_EINVAL);
	assert_non_null(strstr(d.msg, "is before the current generation"));
	assert_non_null(strstr(d.msg, "needs --force"));
	o.force = true;
	memset(s, 0, sizeof *s);
	assert_int_equal(batch_rebuild(&o, s, &d), VIGIL_OK);
	/* A past as-of is final: the same again is a no-op. */
	o.force = false;
	memset(s, 0, sizeof *s);
	assert_int_equal(batch_rebuild(&o, s, &d), VIGIL_OK);
	assert_true(s->skipped);
	free(s);
	fx_rm_rf(dd);
}

/*
 * Ids are bytes: vigild does not require UTF-8. A note that quotes such an
 * id (here a damaged previous value of card "c\xff") must neither fail the
 * rebuild (its summary goes into the generation's meta as JSON) nor make
 * --json print something that is not JSON.
 */
static void
test_summary_json_non_utf8_id(void **state)
{
	const char *dd = fx_tmpdir(0);
	batch_summary *s = calloc(1, sizeof *s);
	json_t *js, *back;
	json_error_t je;
	char *txt;
	const fx_txn txns[] = {
		{ "a1", "ca", "m1", NULL, "FR", "EUR", 1000, A - 60 * D, 5411, NULL, 0 },
		{ "b1", "c\xff", "m1", NULL, "FR", "EUR", 1000, A - 60 * D, 5411, NULL, 0 },
		{ "a2", "ca", "m1", NULL, "FR", "EUR", 1000, A - 5 * D, 5411, NULL, 0 },
		{ "b2", "c\xff", "m1", NULL, "FR", "EUR", 1000, A - 5 * D, 5411, NULL, 0 },
	};

	(void)state;
	assert_non_null(s);
	write_txns(dd, txns, sizeof txns / sizeof txns[0]);
	rebuild_at(dd, A - 30 * D, 90 * D, s);
	damage_card(dd, s->generation, "c\xff");
	rebuild_at(dd, A, 30 * D, s);
	assert_int_equal(s->cards, 2);
	assert_non_null(strstr(s->first_seen_note, "card c\xff: "));
	js = batch_summary_json(s);
	assert_non_null(js);
	txt = json_dumps(js, JSON_COMPACT);
	assert_non_null(txt);
	back = json_loads(txt, 0, &je);
	if (back == NULL)
		fail_msg("summary is not JSON (%s): %s", je.text, txt);
	assert_non_null(strstr(json_string_value(json_object_get(back, "first_seen_note")),
	    "card c?: "));
	json_decref(back);
	free(txt);
	json_decref(js);
	free(s);
	fx_rm_rf(dd);
}

static void
test_cli(void **state)
{
	const char *dd = fx_tmpdir(0);
	const char *bin = fx_rebuild_bin();
	char *out = NULL, *err = NULL;
	json_t *j;
	json_error_t je;
	uint64_t gen;

	(void)state;
	build_small(dd);
	{
		const char *argv[] = { bin, "--help", NULL };
		assert_int_equal(fx_run(argv, &out, NULL), 0);
		assert_non_null(strstr(out, "--partition"));
		free(out);
	}
	{
		const char *argv[] = { bin, "--as-of", "2026-03-01", NULL };
		assert_int_equal(fx_run(argv, NULL, &err), 2);
		assert_non_null(strstr(err, "--data DIR is required"));
		free(err);
	}
	{
		const char *argv[] = { bin, "--data", dd, "--window", "ninety", NULL };
		assert_int_equal(fx_run(argv, NULL, &err), 2);
		assert_non_null(strstr(err, "--window: 'ninety'"));
		free(err);
	}
	{
		const char *argv[] = { bin, "--data", dd, "--as-of", "2026-02-30x", NULL };
		assert_int_equal(fx_run(argv, NULL, &err), 2);
		free(err);
	}
	{
		const char *argv[] = { bin, "--data", dd, "--as-of", "2026-03-01", "--json", NULL };
		assert_int_equal(fx_run(argv, &out, &err), 0);
		j = json_loads(out, 0, &je);
		if (j == NULL)
			fail_msg("--json output is not JSON (%s): %s", je.text, out);
		assert_int_equal(json_integer_value(json_object_get(j, "records_read")), 6);
		assert_false(json_is_true(json_object_get(j, "skipped")));
		gen = (uint64_t)json_integer_value(json_object_get(j, "generation"));
		assert_true(gen > 0);
		json_decref(j);
		free(out);
		free(err);
	}
	{
		const char *argv[] = { bin, "--data", dd, "--as-of", "2026-03-01", NULL };
		assert_int_equal(fx_run(argv, &out, &err), 0);
		assert_non_null(strstr(out, "already built"));
		free(out);
		free(err);
	}
	{
		const char *argv[] = { bin, "--data", dd, "--as-of", "2026-03-01", "--force", "-q", NULL };
		assert_int_equal(fx_run(argv, &out, &err), 0);
		assert_string_equal(out, "");
		free(out);
		free(err);
	}
	{
		const char *argv[] = { bin, "--data", dd, "--rollback", "--json", NULL };
		assert_int_equal(fx_run(argv, &out, &err), 0);
		assert_non_null(strstr(out, "\"current\""));
		free(out);
		free(err);
		assert_int_equal(store_gen_current(dd, &gen), VIGIL_OK);
	}
	{
		const char *argv[] = { bin, "--data", dd, "--rollback", "--generation", "999", NULL };
		assert_int_equal(fx_run(argv, &out, &err), 1);
		assert_non_null(strstr(err, "rollback failed"));
		free(out);
		free(err);
	}
	{
		/* --out: the deprecated spelling of --output (docs/tools.md) */
		const char *argv[] = { bin, "--data", dd, "--out", "/tmp/x.vpart", NULL };
		assert_int_equal(fx_run(argv, NULL, &err), 2);
		assert_non_null(strstr(err, "--output only goes with --partition"));
		free(err);
	}
	{
		const char *argv[] = { bin, "--data", dd, "--partition", "1/2", NULL };
		assert_int_equal(fx_run(argv, NULL, &err), 2);
		assert_non_null(strstr(err, "--output FILE"));
		free(err);
	}
	{
		/* A window that would start before 1970 is a bad value (2), not a
		 * failure of the run (1). */
		const char *argv[] = { bin, "--data", dd, "--as-of", "1970-01-05", NULL };

		out = err = NULL;
		assert_int_equal(fx_run(argv, &out, &err), 2);
		assert_non_null(strstr(err, "--as-of"));
		free(out);
		free(err);
	}
	{
		/* Numbers past 2^32 must not wrap into range (4294967297 is 1). */
		static const char *const bad[][2] = {
			{ "--threads", "4294967297" }, { "--threads", "18446744073709551617" },
			{ "--keep", "4294967298" }, { "--to", "18446744073709551617" },
		};

		for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
			const char *argv[8] = { bin, "--data", dd };
			int k = 3;

			if (strcmp(bad[i][0], "--to") == 0) {
				argv[k++] = "--rollback";
			} else {
				argv[k++] = "--as-of";
				argv[k++] = "2026-03-02";
			}
			argv[k++] = bad[i][0];
			argv[k++] = bad[i][1];
			argv[k] = NULL;
			out = err = NULL;
			assert_int_equal(fx_run(argv, &out, &err), 2);
			/* --to is the deprecated spelling of --generation */
			assert_non_null(strstr(err, strcmp(bad[i][0], "--to") == 0 ? "--generation" :
			    bad[i][0]));
			free(out);
			free(err);
		}
	}
	fx_rm_rf(dd);
}

/* ---- The nightly model through --partition / --merge ---- */

/*
 * An archive for the model: MODEL_DAYS days before A of MODEL_PER_DAY
 * scores a day over 60 cards, each with the model input vector vigild
 * archives (store_model_vec_encode, this build's layout): input 0 carries
 * the signal (fraud 70% of the time above 0.85, 2% below: a high fraud
 * rate), input 1 is noise, input 2 missing one time in four, the others
 * missing. Frauds are labelled a day later, one legitimate transaction in
 * ten too. Every 50th score has no vector (an older vigild), every 77th
 * another build's layout. With the defaults (7 days of label maturity, 28
 * days of training) the rows of [A - 35d, A - 7d) train: about 2500, 300 of
 * them frauds.
 */
#define MODEL_DAYS    36
#define MODEL_PER_DAY 90

static void
score_vec(store_archive *ar, const char *tid, const char *card, int64_t t, int64_t amount,
    const float *x, uint32_t n, uint64_t layout)
{
	static store_scored s;
	uint8_t buf[16384];
	size_t len;

	memset(&s, 0, sizeof s);
	snprintf(s.txn.txn_id, sizeof s.txn.txn_id, "%s", tid);
	snprintf(s.txn.card_id, sizeof s.txn.card_id, "%s", card);
	snprintf(s.txn.merchant_id, sizeof s.txn.merchant_id, "m-%lld", (long long)(amount % 7));
	snprintf(s.txn.currency, sizeof s.txn.currency, "EUR");
	snprintf(s.txn.country, sizeof s.txn.country, "FR");
	s.txn.amount_minor = amount;
	s.txn.event_time_ms = t;
	s.txn.mcc = 5411;
	s.txn.channel = VIGIL_CHANNEL_ECOM;
	s.decision = VIGIL_DECISION_ALLOW;
	snprintf(s.rules_version, sizeof s.rules_version, "test");
	s.scored_at_ms = t;
	if (x != NULL) {
		assert_int_equal(store_model_vec_encode(x, n, s.model_in, sizeof s.model_in, &len),
		    VIGIL_OK);
		s.model_in_len = (uint32_t)len;
		s.model_layout = layout;
	}
	assert_int_equal(store_scored_encode(&s, buf, sizeof buf, &len), VIGIL_OK);
	assert_int_equal(store_archive_append(ar, STORE_REC_SCORE, t, buf, len, NULL), VIGIL_OK);
}

static uint64_t
model_rng(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static float
model_unif(uint64_t *s)
{
	return (float)(model_rng(s) >> 40) / (float)(1 << 24);
}

static void
build_model_archive(const char *datadir)
{
	store_archive *ar = fx_archive(datadir);
	uint32_t n = store_schema_model_inputs(&(const uint32_t *){ NULL });
	uint64_t rng = 0x9e3779b97f4a7c15ull, layout = store_schema_model_layout();
	float x[STORE_MODEL_MAX_INPUTS];
	char tid[32], card[32];

	assert_true(n >= 3);
	for (int i = 0; i < MODEL_DAYS * MODEL_PER_DAY; i++) {
		int64_t t = A - MODEL_DAYS * D + (int64_t)i * (D / MODEL_PER_DAY) +
		    (int64_t)(model_rng(&rng) % 60000);
		bool fraud;

		for (uint32_t j = 0; j < n; j++)
			x[j] = NAN;
		x[0] = model_unif(&rng);
		x[1] = model_unif(&rng);
		x[2] = model_unif(&rng) < 0.25f ? NAN : model_unif(&rng) * 100.0f;
		fraud = x[0] > 0.85f ? model_unif(&rng) < 0.7f : model_unif(&rng) < 0.02f;
		snprintf(tid, sizeof tid, "mt-%05d", i);
		snprintf(card, sizeof card, "mc-%02d", (int)(model_rng(&rng) % 60));
		score_vec(ar, tid, card, t, 100 + (int64_t)(x[0] * 10000), i % 50 == 7 ? NULL : x, n,
		    i % 77 == 3 ? layout ^ 1 : layout);
		if (fraud)
			fx_label(ar, tid, true, t + D);
		else if (i % 10 == 0)
			fx_label(ar, tid, false, t + D);
	}
	store_archive_close(ar);
}

/* Blob `name` of generation gen of datadir, NUL-terminated (NULL if none). */
static char *
gen_blob(const char *datadir, uint64_t gen, const char *name)
{
	store_gen *g = NULL;
	store_diag d;
	void *data = NULL;
	size_t len = 0;
	char *copy;

	if (store_gen_open(datadir, gen, &g, &d) != VIGIL_OK)
		fail_msg("%s generation %llu: %s", datadir, (unsigned long long)gen, d.msg);
	if (store_gen_blob(g, name, &data, &len) != VIGIL_OK) {
		store_gen_close(g);
		return NULL;
	}
	store_gen_close(g);
	copy = malloc(len + 1);
	assert_non_null(copy);
	memcpy(copy, data, len);
	copy[len] = '\0';
	free(data);
	return copy;
}

/* The summaries' model figures agree (all but the training's seconds). */
static void
assert_same_model_summary(const batch_summary *a, const batch_summary *b)
{
	assert_int_equal(a->model.trained, b->model.trained);
	assert_string_equal(a->model.why_not, b->model.why_not);
	assert_int_equal(a->model.rows, b->model.rows);
	assert_int_equal(a->model.frauds, b->model.frauds);
	assert_int_equal(a->model.rows_seen, b->model.rows_seen);
	assert_int_equal(a->model.rows_other_layout, b->model.rows_other_layout);
	assert_int_equal(a->model.rows_no_vector, b->model.rows_no_vector);
	assert_int_equal(a->model.valid_rows, b->model.valid_rows);
	assert_int_equal(a->model.valid_frauds, b->model.valid_frauds);
	assert_int_equal(a->model.rounds, b->model.rounds);
	assert_int_equal(a->model.best_round, b->model.best_round);
	assert_int_equal(a->model.features, b->model.features);
	assert_true(memcmp(&a->model.valid_auc, &b->model.valid_auc, sizeof(double)) == 0);
	assert_true(memcmp(&a->model.valid_ap, &b->model.valid_ap, sizeof(double)) == 0);
	assert_true(memcmp(&a->model.train_auc, &b->model.train_auc, sizeof(double)) == 0);
	assert_int_equal(a->model.train_from_ms, b->model.train_from_ms);
	assert_int_equal(a->model.train_to_ms, b->model.train_to_ms);
	assert_int_equal(a->model.json_bytes, b->model.json_bytes);
}

/* Writes dir's n partitions (threads inside partition 1) with max_rows
 * (0: default) into paths[i] = dir/tag-i.vpart; s: the last partition's
 * summary. */
static void
model_partitions(const char *dir, const char *tag, uint32_t n, uint64_t max_rows,
    char paths[][600], batch_summary *s)
{
	batch_opts o;
	store_diag d;

	for (uint32_t i = 0; i < n; i++) {
		snprintf(paths[i], 600, "%s/%s-%u.vpart", dir, tag, i);
		opts_for(&o, dir, NULL);
		o.part_index = i;
		o.part_count = n;
		o.out_path = paths[i];
		o.threads = i == 1 ? 2 : 1;
		o.model_max_rows = max_rows;
		memset(s, 0, sizeof *s);
		if (batch_rebuild(&o, s, &d) != VIGIL_OK)
			fail_msg("partition %u/%u: %s", i, n, d.msg);
		assert_true(s->partial);
		assert_false(s->model.trained);
		/* Each partition's set is bounded as a single run's. */
		assert_true(s->model.rows > 0);
		assert_true(s->model.rows <= (max_rows ? max_rows : 100000));
	}
}

/*
 * Contract 7 for partitioned runs: 2 and 3 partitions merged give the
 * single run's model.json and model.meta byte for byte, and the same model
 * figures in the summary, both with every row kept and with the legitimate
 * rows sampled (max_rows under the rows: the merge re-applies the bound).
 */
static void
test_partitions_model_identical(void **state)
{
	const char *single = fx_tmpdir(0), *parts = fx_tmpdir(1);
	static const uint64_t caps[] = { 0, 1000 };
	batch_summary *s = calloc(1, sizeof *s), *sp = calloc(1, sizeof *sp);
	char paths[3][600];
	batch_opts o;
	store_diag d;

	(void)state;
	assert_non_null(s);
	assert_non_null(sp);
	build_model_archive(single);
	fx_copy_archive(single, parts);
	for (size_t c = 0; c < sizeof caps / sizeof caps[0]; c++) {
		char *json, *meta;

		opts_for(&o, single, NULL);
		o.force = true;
		o.threads = 1;
		o.model_max_rows = caps[c];
		if (batch_rebuild(&o, s, &d) != VIGIL_OK)
			fail_msg("single: %s", d.msg);
		if (!s->model.trained)
			fail_msg("single run: no model: %s", s->model.why_not);
		assert_true(s->model.frauds >= 100);
		assert_true(s->model.rows_no_vector > 0);
		assert_true(s->model.rows_other_layout > 0);
		if (caps[c] != 0)
			assert_int_equal(s->model.rows, caps[c]); /* sampled */
		else
			assert_true(s->model.rows > 2000);        /* all kept */
		json = gen_blob(single, s->generation, "model.json");
		meta = gen_blob(single, s->generation, "model.meta");
		assert_non_null(json);
		assert_non_null(meta);

		for (uint32_t n = 2; n <= 3; n++) {
			/* Given in any order: merged in partition order. */
			const char *pp[3] = { paths[n - 1], paths[0], paths[1] };
			char *pjson, *pmeta;

			model_partitions(parts, "m", n, caps[c], paths, sp);
			opts_for(&o, parts, NULL);
			o.force = true;
			o.threads = 1;
			memset(sp, 0, sizeof *sp);
			if (batch_merge(&o, pp, n, sp, &d) != VIGIL_OK)
				fail_msg("merge of %u: %s", n, d.msg);
			assert_same_model_summary(s, sp);
			pjson = gen_blob(parts, sp->generation, "model.json");
			pmeta = gen_blob(parts, sp->generation, "model.meta");
			assert_non_null(pjson);
			assert_non_null(pmeta);
			if (strcmp(json, pjson) != 0)
				fail_msg("max_rows %llu, %u partitions: model.json differs from the "
				    "single run's (%zu and %zu bytes)", (unsigned long long)caps[c], n,
				    strlen(json), strlen(pjson));
			assert_string_equal(meta, pmeta);
			free(pjson);
			free(pmeta);
		}
		free(json);
		free(meta);
	}
	/* The merge trains with its own thread count: the same bytes. */
	{
		const char *pp[3] = { paths[0], paths[1], paths[2] };
		char *a = gen_blob(parts, sp->generation, "model.json"), *b;

		opts_for(&o, parts, NULL);
		o.force = true;
		o.threads = 2;
		assert_int_equal(batch_merge(&o, pp, 3, sp, &d), VIGIL_OK);
		assert_true(sp->model.trained);
		b = gen_blob(parts, sp->generation, "model.json");
		assert_non_null(b);
		assert_string_equal(a, b);
		free(a);
		free(b);
	}
	free(s);
	free(sp);
	fx_rm_rf(single);
	fx_rm_rf(parts);
}

/* Reads a whole file (malloc'd). */
static uint8_t *
slurp(const char *path, size_t *ret_len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *b;
	long n;

	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n > 0);
	assert_int_equal(fseek(f, 0, SEEK_SET), 0);
	b = malloc((size_t)n);
	assert_non_null(b);
	assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*ret_len = (size_t)n;
	return b;
}

/* Where the item tag key (u16 key length in native order, key, then size
 * bytes) is in a partial file b[0..len); fails the test if it is not. */
static size_t
part_item(const uint8_t *b, size_t len, char tag, const char *key, size_t size)
{
	size_t klen = strlen(key);

	for (size_t i = 0; i + 3 + klen + size < len; i++) {
		uint16_t n;

		memcpy(&n, b + i + 1, 2);
		if (b[i] == tag && n == klen && memcmp(b + i + 3, key, n) == 0)
			return i;
	}
	fail_msg("no item %c %s", tag, key);
	return 0;
}

/* Ways to spoil a partition's merchant counters (test_partitions_counters_checked). */
static void
spoil_fraud(batch_ent *x)
{
	x->fraud[BATCH_W90] = x->labelled[BATCH_W90] + 1;
}

static void
spoil_nesting(batch_ent *x)
{
	x->count[BATCH_W7] = x->count[BATCH_W90] + 1;
}

static void
spoil_overflow(batch_ent *x) /* consistent, but past what a sum can hold */
{
	for (int k = 0; k < BATCH_NW; k++)
		x->count[k] = UINT32_MAX;
}

static void
spoil_sample(batch_ent *x)
{
	x->ncards = BATCH_ENT_CARD_SAMPLE + 1;
}

static void
spoil_order(batch_ent *x)
{
	x->ncards = 2;
	x->cards[0] = x->cards[1] = 42;
}

/* Writes b[0..len) to path with the trailer ('E' and the xxh64 of every
 * byte before the digest) recomputed, as a damaged but checksummed file. */
static void
spill_resummed(const char *path, uint8_t *b, size_t len)
{
	uint64_t digest;
	FILE *f;

	b[len - 9] = 'E';
	digest = XXH64(b, len - 8, 0);
	memcpy(b + len - 8, &digest, 8);
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(b, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

/* Three partitions of build_big's archive, partition 1 to be spoiled one
 * item at a time (test_partitions_counters_checked, _cards_checked). */
typedef struct spoil_fx {
	const char    *dir;
	char           rules[512], paths[3][600], bad[640];
	const char    *pp[3];  /* pp[1] is bad */
	batch_summary *s;
	uint8_t       *valid, *b; /* partition 1 as written; its spoiled copy */
	size_t         len;
} spoil_fx;

static void
spoil_fx_open(spoil_fx *f, const char *tag)
{
	f->dir = fx_tmpdir(0);
	f->s = calloc(1, sizeof *f->s);
	assert_non_null(f->s);
	build_big(f->dir);
	snprintf(f->rules, sizeof f->rules, "%s/big.rules", f->dir);
	write_file(f->rules, big_rules);
	big_partitions(f->dir, f->rules, tag, f->paths, f->pp);
	f->valid = slurp(f->paths[1], &f->len);
	f->b = malloc(f->len);
	assert_non_null(f->b);
	snprintf(f->bad, sizeof f->bad, "%s/bad-1.vpart", f->dir);
	f->pp[1] = f->bad;
}

/* Partition 1 with x[0..size) in place of its bytes at off, checksummed
 * anew, is refused by the merge with the message want (case k). */
static void
spoil_fx_refused(spoil_fx *f, size_t off, const void *x, size_t size, const char *want, size_t k)
{
	batch_opts o;
	store_diag d;

	memcpy(f->b, f->valid, f->len);
	memcpy(f->b + off, x, size);
	spill_resummed(f->bad, f->b, f->len);
	opts_for(&o, f->dir, f->rules);
	assert_int_equal(batch_merge(&o, f->pp, 3, f->s, &d), VIGIL_ECORRUPT);
	if (strcmp(d.msg, want) != 0)
		fail_msg("case %zu: got \"%s\", want \"%s\"", k, d.msg, want);
}

/* No refused merge wrote a generation; the files as written merge. */
static void
spoil_fx_close(spoil_fx *f)
{
	batch_opts o;
	store_diag d;
	uint64_t gen = 0;

	assert_int_equal(store_gen_current(f->dir, &gen), VIGIL_OK);
	assert_int_equal(gen, 0);
	f->pp[1] = f->paths[1];
	opts_for(&o, f->dir, f->rules);
	if (batch_merge(&o, f->pp, 3, f->s, &d) != VIGIL_OK)
		fail_msg("merge: %s", d.msg);
	free(f->valid);
	free(f->b);
	free(f->s);
	fx_rm_rf(f->dir);
}

static uint32_t
le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/*
 * Where a partial file's training section starts: its 'R' tag, followed by
 * u32 version 1 and u32 size of the fixed part, whose last fields are the
 * u64 length of the set and a 200-byte reason; the set runs up to the
 * trailer. *ret_set: the set's first byte.
 */
static size_t
train_section(const uint8_t *b, size_t len, size_t *ret_set)
{
	for (size_t o = len - 9; o-- > 0;) {
		uint64_t set_len;
		uint32_t size;

		if (b[o] != 'R' || o + 9 > len - 9 || le32(b + o + 1) != 1)
			continue;
		size = le32(b + o + 5);
		if (size < 208 || o + 9 + size > len - 9)
			continue;
		memcpy(&set_len, b + o + 9 + size - 208, 8);
		if (o + 9 + size + set_len == len - 9) {
			*ret_set = o + 9 + size;
			return o;
		}
	}
	fail_msg("no training section found");
	return 0;
}

/*
 * Older partial files, written before the training section: they merge
 * (tables as before), and the generation has no model and says which file
 * lacks the rows. Partitions that disagree on the training options are
 * refused, naming both files.
 */
static void
test_partitions_model_old_files(void **state)
{
	const char *dir = fx_tmpdir(0);
	char paths[3][600], old[600], why[700];
	const char *pp[3];
	batch_summary *s = calloc(1, sizeof *s);
	batch_opts o;
	store_diag d;
	uint8_t *b;
	size_t len, set_at, r_at;

	(void)state;
	assert_non_null(s);
	build_model_archive(dir);
	model_partitions(dir, "p", 3, 0, paths, s);
	/* Partition 1 as an older vigil-rebuild wrote it: no 'R' section. */
	b = slurp(paths[1], &len);
	r_at = train_section(b, len, &set_at);
	memmove(b + r_at, b + len - 9, 9);
	snprintf(old, sizeof old, "%s/old-1.vpart", dir);
	spill_resummed(old, b, r_at + 9);
	free(b);
	pp[0] = paths[0];
	pp[1] = old;
	pp[2] = paths[2];
	opts_for(&o, dir, NULL);
	if (batch_merge(&o, pp, 3, s, &d) != VIGIL_OK)
		fail_msg("merge with an older file: %s", d.msg);
	assert_int_equal(s->records_read, MODEL_DAYS * MODEL_PER_DAY);
	assert_false(s->model.trained);
	snprintf(why, sizeof why, "%s has no training rows (an older vigil-rebuild wrote it)", old);
	assert_string_equal(s->model.why_not, why);
	assert_null(gen_blob(dir, s->generation, "model.json"));

	/* --no-model on the merge: none either, and it says so. */
	pp[1] = paths[1];
	opts_for(&o, dir, NULL);
	o.force = true;
	o.model_off = true;
	assert_int_equal(batch_merge(&o, pp, 3, s, &d), VIGIL_OK);
	assert_false(s->model.trained);
	assert_string_equal(s->model.why_not, "turned off (--no-model)");

	/* Partitions run with --no-model: the merge says so too. */
	for (uint32_t i = 0; i < 3; i++) {
		opts_for(&o, dir, NULL);
		o.part_index = i;
		o.part_count = 3;
		o.out_path = paths[i];
		o.model_off = true;
		assert_int_equal(batch_rebuild(&o, s, &d), VIGIL_OK);
	}
	opts_for(&o, dir, NULL);
	o.force = true;
	assert_int_equal(batch_merge(&o, pp, 3, s, &d), VIGIL_OK);
	assert_false(s->model.trained);
	assert_string_equal(s->model.why_not, "turned off (--no-model)");

	/* One partition with other training options: refused, both named. */
	for (uint32_t i = 0; i < 3; i++) {
		opts_for(&o, dir, NULL);
		o.part_index = i;
		o.part_count = 3;
		o.out_path = paths[i];
		o.labelled_only = i == 2;
		assert_int_equal(batch_rebuild(&o, s, &d), VIGIL_OK);
	}
	opts_for(&o, dir, NULL);
	o.force = true;
	assert_int_equal(batch_merge(&o, pp, 3, s, &d), VIGIL_EINVAL);
	assert_non_null(strstr(d.msg, paths[2]));
	assert_non_null(strstr(d.msg, "training options differ from"));
	assert_non_null(strstr(d.msg, paths[0]));
	free(s);
	fx_rm_rf(dir);
}

/*
 * A damaged training section (checksum recomputed, so the structure checks
 * see it) is refused with the file and the offset of the field at fault,
 * and no generation is made. So is a FIFO in a partial file's place.
 */
static void
test_partitions_model_damaged(void **state)
{
	const char *dir = fx_tmpdir(0);
	char paths[3][600], bad[600], want[800];
	const char *pp[3];
	batch_summary *s = calloc(1, sizeof *s);
	batch_opts o;
	store_diag d;
	uint8_t *valid, *b;
	size_t len, set_at, r_at, days_at;
	uint64_t gen = 0;
	uint32_t nfeat;

	(void)state;
	assert_non_null(s);
	build_model_archive(dir);
	model_partitions(dir, "p", 3, 0, paths, s);
	valid = slurp(paths[1], &len);
	r_at = train_section(valid, len, &set_at);
	b = malloc(len);
	assert_non_null(b);
	snprintf(bad, sizeof bad, "%s/damaged-1.vpart", dir);
	pp[0] = paths[0];
	pp[1] = bad;
	pp[2] = paths[2];
	/* The codec's layout (batch/train.h): u32 version, u32 nfeat, u64
	 * max_rows, names (u8 length + bytes), u32 ndays, days (24 bytes),
	 * u64 nrows, rows. */
	nfeat = le32(valid + set_at + 4);
	days_at = set_at + 16;
	for (uint32_t j = 0; j < nfeat; j++)
		days_at += 1 + valid[days_at];

	struct {
		size_t      at;       /* byte changed */
		uint8_t     value;
		size_t      off;      /* offset the message names */
		vigil_err   rv;
		const char *msg;
	} cases[] = {
		{ r_at + 1, 7, r_at + 1, VIGIL_EVERSION,
		  "training section version 7 (this build reads 1)" },
		{ set_at, 2, set_at, VIGIL_EVERSION, "training set: version 2 (this build reads 1)" },
		{ set_at + 4, 0, set_at + 4, VIGIL_ECORRUPT, "training set: 0 features" },
		{ days_at + 1, 0x20, days_at, VIGIL_ECORRUPT, "training set: 8" }, /* 8k+ days */
		{ set_at + 16, 0, set_at + 16, VIGIL_ECORRUPT, "training set: feature 0: name of 0 bytes" },
	};
	for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
		memcpy(b, valid, len);
		b[cases[k].at] = cases[k].value;
		spill_resummed(bad, b, len);
		opts_for(&o, dir, NULL);
		assert_int_equal(batch_merge(&o, pp, 3, s, &d), cases[k].rv);
		snprintf(want, sizeof want, "%s:%zu: %s", bad, cases[k].off, cases[k].msg);
		if (strncmp(d.msg, want, strlen(want)) != 0)
			fail_msg("case %zu: got \"%s\", want \"%s...\"", k, d.msg, want);
	}
	/* Truncated inside the set, the trailer moved up: the set's length no
	 * longer fits the file. */
	memcpy(b, valid, len);
	memmove(b + len - 40 - 9, b + len - 9, 9);
	spill_resummed(bad, b, len - 40);
	assert_int_equal(batch_merge(&o, pp, 3, s, &d), VIGIL_ECORRUPT);
	snprintf(want, sizeof want, "%s:%zu: training section fields out of range", bad,
	    r_at);
	assert_string_equal(d.msg, want);
	/* A FIFO named as a partial file is refused, not waited on. */
	assert_int_equal(unlink(bad), 0);
	assert_int_equal(mkfifo(bad, 0600), 0);
	assert_int_equal(batch_merge(&o, pp, 3, s, &d), VIGIL_EINVAL);
	snprintf(want, sizeof want, "%s: not a regular file", bad);
	assert_string_equal(d.msg, want);
	assert_int_equal(store_gen_current(dir, &gen), VIGIL_OK);
	assert_int_equal(gen, 0);
	/* Undamaged, it merges. */
	pp[1] = paths[1];
	assert_int_equal(batch_merge(&o, pp, 3, s, &d), VIGIL_OK);
	assert_true(s->model.trained);
	free(valid);
	free(b);
	free(s);
	fx_rm_rf(dir);
}

/*
 * A partial file whose merchant counters are wrong but checksummed (a
 * writer's bug, a file made by hand) is refused with the merchant and the
 * offset named, before any sum wraps: a merged count past UINT32_MAX would
 * serve as a small one. No generation is written.
 */
static void
test_partitions_counters_checked(void **state)
{
	static const char key[] = "merchant-05";
	char want[1200];
	spoil_fx f;
	batch_ent e;
	size_t at;

	(void)state;
	spoil_fx_open(&f, "c");
	at = part_item(f.valid, f.len, 'M', key, sizeof e) + 3 + sizeof key - 1;
	memcpy(&e, f.valid + at, sizeof e);
	/* merchant-05 is in partition 0 too: what it adds is already counted */
	assert_true(e.count[BATCH_W90] > 0 && e.count[BATCH_W30] > 0 && e.labelled[BATCH_W90] > 0);

	struct {
		void      (*spoil)(batch_ent *x);
		const char *why;
	} cases[] = {
		{ spoil_fraud, "more frauds than labels or labels than transactions" },
		{ spoil_nesting, "a shorter window counts more than a longer one" },
		{ spoil_overflow, "the merged count overflows" },
		{ spoil_sample, "card sample longer than kept" },
		{ spoil_order, "card sample out of order" },
	};
	for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
		batch_ent x = e;

		cases[k].spoil(&x);
		snprintf(want, sizeof want, "%s:%zu: merchant %s: counters out of range (%s)", f.bad,
		    at - 3 - (sizeof key - 1), key, cases[k].why);
		spoil_fx_refused(&f, at, &x, sizeof x, want, k);
	}
	spoil_fx_close(&f);
}

/* Ways to spoil a partition's card profile (test_partitions_cards_checked). */
static void
spoil_card_nan(store_card_profile *p)
{
	p->amount_mean_30d = NAN;
}

static void
spoil_card_time(store_card_profile *p)
{
	p->first_seen_ms = -1;
}

static void
spoil_card_nesting(store_card_profile *p)
{
	p->count_7d = p->count_90d + 1;
}

static void
spoil_card_fraud(store_card_profile *p)
{
	p->fraud_count_90d = p->count_90d + 1;
}

static void
spoil_card_hours(store_card_profile *p)
{
	p->hour_hist[23] += p->count_90d + 1;
}

static void
spoil_card_share(store_card_profile *p)
{
	p->top_merchant_share_90d = 1.5;
}

static void
spoil_card_countries(store_card_profile *p) /* the encoder would read past countries[] */
{
	p->ncountries = 200;
	p->distinct_countries_90d = 200;
}

static void
spoil_card_merchants(store_card_profile *p)
{
	p->nmerchants = (uint8_t)(p->distinct_merchants_90d + 1);
}

static void
spoil_card_country(store_card_profile *p)
{
	p->countries[0][1] = 'r';
}

/*
 * A partition's card profile that cannot be right (a number that is not
 * finite, windows out of order, more frauds or hours than transactions, a
 * share over 1, more countries or merchants than the profile holds or than
 * were seen, a country that is not two capitals) is refused with the card
 * and the offset named, before it is written: the checksum proves the file
 * is the one written, not that it was written right. No generation is
 * written; the file as written merges.
 */
static void
test_partitions_cards_checked(void **state)
{
	char want[1200], key[32];
	spoil_fx f;
	store_card_profile prof;
	size_t at;
	int c;

	(void)state;
	spoil_fx_open(&f, "k");
	for (c = 0; c < 200; c++) { /* a card of partition 1 */
		snprintf(key, sizeof key, "card-%03d", c);
		if (batch_key_partition(key, strlen(key), 3) == 1)
			break;
	}
	assert_true(c < 200);
	at = part_item(f.valid, f.len, 'C', key, sizeof prof) + 3 + strlen(key);
	memcpy(&prof, f.valid + at, sizeof prof);
	assert_true(prof.count_90d > 0 && prof.ncountries > 0 && prof.nmerchants > 0);

	struct {
		void      (*spoil)(store_card_profile *p);
		const char *why;
	} cases[] = {
		{ spoil_card_nan, "amount_mean_30d is NaN or infinite" },
		{ spoil_card_time, "first_seen_ms is before 1970" },
		{ spoil_card_nesting, "a shorter window counts more than a longer one" },
		{ spoil_card_fraud, "more frauds than transactions" },
		{ spoil_card_hours, "the hour histogram counts more than the 90 days" },
		{ spoil_card_share, "top merchant share outside [0, 1]" },
		{ spoil_card_countries,
		    "more countries kept than there is room for or than were seen" },
		{ spoil_card_merchants,
		    "more merchants kept than there is room for or than were seen" },
		{ spoil_card_country, "a country that is not two capital letters" },
	};
	for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
		store_card_profile x = prof;

		cases[k].spoil(&x);
		snprintf(want, sizeof want, "%s:%zu: card %s: profile out of range (%s)", f.bad,
		    at - 3 - strlen(key), key, cases[k].why);
		spoil_fx_refused(&f, at, &x, sizeof x, want, k);
	}
	spoil_fx_close(&f);
}

/*
 * A night whose training makes no model (docs/model.md, "No model is made":
 * here min_frauds over every fraud there is) keeps the current model, in a
 * single run and in a merge (which trains): model.json and model.meta are
 * the previous generation's byte for byte, the summary says the generation
 * has a model carried from that one, trained as of A, and why_not says why
 * this night did not train. --no-model still drops it, and a night with no
 * model to carry (the current generation has none) has none.
 */
static void
test_model_kept_when_night_cannot_train(void **state)
{
	const char *dir = fx_tmpdir(0);
	batch_summary *s = calloc(1, sizeof *s);
	char paths[3][600], why[200];
	const char *pp[3] = { paths[0], paths[1], paths[2] };
	batch_opts o;
	store_diag d;

	(void)state;
	assert_non_null(s);
	build_model_archive(dir);
	for (int merge = 0; merge <= 1; merge++) {
		char *json, *meta, *cj, *cm;
		uint64_t prev;

		opts_for(&o, dir, NULL);
		o.force = true;
		if (batch_rebuild(&o, s, &d) != VIGIL_OK)
			fail_msg("first night: %s", d.msg);
		if (!s->model.trained)
			fail_msg("first night: no model: %s", s->model.why_not);
		prev = s->generation;
		json = gen_blob(dir, prev, "model.json");
		meta = gen_blob(dir, prev, "model.meta");
		assert_non_null(json);
		assert_non_null(meta);

		for (int cold = 0; cold <= 1; cold++) {
			if (merge) {
				for (uint32_t i = 0; i < 3; i++) {
					snprintf(paths[i], sizeof paths[i], "%s/k-%u.vpart", dir, i);
					opts_for(&o, dir, NULL);
					o.part_index = i;
					o.part_count = 3;
					o.out_path = paths[i];
					o.model_min_frauds = 100000;
					if (batch_rebuild(&o, s, &d) != VIGIL_OK)
						fail_msg("partition %u: %s", i, d.msg);
				}
				opts_for(&o, dir, NULL);
				o.force = true;
				if (batch_merge(&o, pp, 3, s, &d) != VIGIL_OK)
					fail_msg("merge: %s", d.msg);
			} else {
				opts_for(&o, dir, NULL);
				o.force = true;
				o.model_min_frauds = 100000;
				if (batch_rebuild(&o, s, &d) != VIGIL_OK)
					fail_msg("night that cannot train: %s", d.msg);
			}
			snprintf(why, sizeof why, "%llu frauds in the window, fewer than min_frauds "
			    "100000", (unsigned long long)(cold ? s->model.frauds : 0));
			if (cold) { /* the current generation has no model */
				assert_false(s->model.trained);
				assert_false(s->model.carried);
				assert_string_equal(s->model.why_not, why);
				assert_null(gen_blob(dir, s->generation, "model.json"));
				assert_null(gen_blob(dir, s->generation, "model.meta"));
				break;
			}
			if (!s->model.trained || !s->model.carried)
				fail_msg("%s: not carried: %s", merge ? "merge" : "single run",
				    s->model.why_not);
			assert_int_equal(s->model.carried_from, prev);
			assert_int_equal(s->model.trained_as_of_ms, A);
			if (strstr(s->model.why_not, "fewer than min_frauds 100000") == NULL)
				fail_msg("why_not: \"%s\"", s->model.why_not);
			cj = gen_blob(dir, s->generation, "model.json");
			cm = gen_blob(dir, s->generation, "model.meta");
			assert_non_null(cj);
			assert_non_null(cm);
			if (strcmp(json, cj) != 0)
				fail_msg("%s: model.json is not the previous one",
				    merge ? "merge" : "single run");
			assert_string_equal(meta, cm);
			free(cj);
			free(cm);

			/* --no-model: none, whatever the current generation has. */
			opts_for(&o, dir, NULL);
			o.force = true;
			o.model_off = true;
			if (merge)
				assert_int_equal(batch_merge(&o, pp, 3, s, &d), VIGIL_OK);
			else
				assert_int_equal(batch_rebuild(&o, s, &d), VIGIL_OK);
			assert_false(s->model.trained);
			assert_false(s->model.carried);
			assert_string_equal(s->model.why_not, "turned off (--no-model)");
			assert_null(gen_blob(dir, s->generation, "model.json"));
		}
		free(json);
		free(meta);
	}
	free(s);
	fx_rm_rf(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_small_archive_by_hand),
		cmocka_unit_test(test_label_time_respected),
		cmocka_unit_test(test_label_twice_not_unmatched),
		cmocka_unit_test(test_four_decimal_currency_mean),
		cmocka_unit_test(test_large_amounts_mean),
		cmocka_unit_test(test_partitions_threads_single_agree),
		cmocka_unit_test(test_several_archives_union),
		cmocka_unit_test(test_threads_errors_and_bad_records),
		cmocka_unit_test(test_undecodable_counted_whatever_split),
		cmocka_unit_test(test_threshold_redefined_falls_back),
		cmocka_unit_test(test_corrupt_counted_once),
		cmocka_unit_test(test_keyless_records),
		cmocka_unit_test(test_partition_long_card_ids),
		cmocka_unit_test(test_lock_busy),
		cmocka_unit_test(test_rules_error_named),
		cmocka_unit_test(test_first_seen_carried),
		cmocka_unit_test(test_first_seen_damaged_previous),
		cmocka_unit_test(test_prune_failure_reported),
		cmocka_unit_test(test_missing_current_generation_reported),
		cmocka_unit_test(test_empty_window_warned),
		cmocka_unit_test(test_bad_label_counted_once_in_merge),
		cmocka_unit_test(test_rollback_errors_named),
		cmocka_unit_test(test_future_as_of_not_final),
		cmocka_unit_test(test_summary_json_non_utf8_id),
		cmocka_unit_test(test_cli),
		cmocka_unit_test(test_bands_tuned_from_score),
		cmocka_unit_test(test_bands_tune_on_model_rows_mature),
		cmocka_unit_test(test_partitions_model_identical),
		cmocka_unit_test(test_partitions_model_old_files),
		cmocka_unit_test(test_partitions_model_damaged),
		cmocka_unit_test(test_partitions_counters_checked),
		cmocka_unit_test(test_partitions_cards_checked),
		cmocka_unit_test(test_model_kept_when_night_cannot_train),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
