/* SPDX-License-Identifier: MIT */
/*
 * tests/tools/test_metrics.c - replay metrics on small examples computed by
 * hand (the arithmetic is in the comments): confusion matrix, precision,
 * recall, F1, ROC AUC with ties, average precision, card precision in the
 * top k per day with caught cards left out (also against a direct
 * reference on thousands of cards with tied scores), per rule and per pattern
 * figures, score and latency percentiles, and the JSON form.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "metrics.h"
#include "report.h"

/* cmocka 1.1.5 has no double assertion */
#define assert_near(a, b) do { \
	double a_ = (a), b_ = (b); \
	if (!(fabs(a_ - b_) <= 1e-12)) \
		fail_msg("%.15g != %.15g", a_, b_); \
} while (0)

#define DAY 86400000LL
#define T0 (19800 * DAY) /* some day at 00:00 UTC */

static metrics *
example(uint32_t topk)
{
	static const char *const names[] = { "r0", "r1", "r2" };
	metrics_opts opts = { .nrules = 3, .rule_names = names, .topk = topk };
	static const uint16_t h0[] = { 0 }, h1[] = { 1 }, h01[] = { 0, 2 };
	const metrics_obs obs[] = {
		/* day 1 */
		{ "c1", T0 + 1000, 10, VIGIL_DECISION_DECLINE, 1, "x", h01, 2, 100, -1 },  /* A */
		{ "c2", T0 + 2000, 8, VIGIL_DECISION_REVIEW, 0, NULL, h0, 1, 200, -1 },     /* B */
		{ "c3", T0 + 3000, 8, VIGIL_DECISION_REVIEW, 1, "y", h1, 1, 300, -1 },      /* C */
		{ "c3", T0 + 4000, 3, VIGIL_DECISION_ALLOW, 0, NULL, NULL, 0, 400, -1 },    /* D */
		{ "c5", T0 + 5000, 0, VIGIL_DECISION_ALLOW, 0, NULL, NULL, 0, 0, -1 },      /* E */
		/* day 2 */
		{ "c4", T0 + DAY + 1, 0, VIGIL_DECISION_ALLOW, 1, "x", NULL, 0, 0, -1 },   /* F */
		{ "c1", T0 + DAY + 2, 12, VIGIL_DECISION_DECLINE, -1, NULL, NULL, 0, 0, -1 }, /* unlabelled */
		{ "c2", T0 + DAY + 3, 5, VIGIL_DECISION_ALLOW, -1, NULL, NULL, 0, 0, -1 },
	};
	metrics *m = metrics_new(&opts);

	assert_non_null(m);
	for (size_t i = 0; i < sizeof obs / sizeof obs[0]; i++)
		assert_int_equal(metrics_add(m, &obs[i]), VIGIL_OK);
	assert_int_equal(metrics_finish(m), VIGIL_OK);
	return m;
}

static void
test_confusion(void **state)
{
	metrics *m = example(1);
	metrics_confusion c;

	(void)state;
	metrics_get_confusion(m, &c);
	/* alerts: A B C + unlabelled c1 = 4 of 8; declines: A + c1 = 2 */
	assert_int_equal(c.total, 8);
	assert_int_equal(c.labelled, 6);
	assert_int_equal(c.frauds, 3);
	assert_int_equal(c.tp, 2); /* A C */
	assert_int_equal(c.fp, 1); /* B */
	assert_int_equal(c.tn, 2); /* D E */
	assert_int_equal(c.fn, 1); /* F */
	assert_int_equal(c.alerts, 4);
	assert_int_equal(c.declines, 2);
	assert_int_equal(c.decline_tp, 1);
	assert_near(c.precision, 2.0 / 3);
	assert_near(c.recall, 2.0 / 3);
	assert_near(c.f1, 2.0 / 3);
	assert_near(c.alert_rate, 0.5);
	assert_near(c.decline_rate, 0.25);
	metrics_free(m);
}

static void
test_auc_ap(void **state)
{
	metrics *m = example(1);

	(void)state;
	/* frauds 10, 8, 0 vs legit 8, 3, 0: 3 + (0.5 + 2) + 0.5 = 6 of 9 pairs */
	assert_near(metrics_auc(m, NULL), 6.0 / 9);
	/* thresholds 10: R 1/3 P 1; 8: R 2/3 P 2/3; 3: no recall step; 0: R 1 P 1/2
	 * AP = 1/3 + 1/3 * 2/3 + 1/3 * 1/2 = 13/18 */
	assert_near(metrics_ap(m, NULL), 13.0 / 18);
	/* pattern x: frauds 10 and 0 vs legit 8, 3, 0: (3 + 0.5) / 6 */
	assert_near(metrics_auc(m, "x"), 3.5 / 6);
	/* pattern x AP: 10: R 1/2 P 1; 8: P 1/2 no step; 3: none; 0: R 1 P 2/5
	 * = 1/2 + 1/2 * 2/5 = 0.7 */
	assert_near(metrics_ap(m, "x"), 0.7);
	assert_true(isnan(metrics_auc(m, "nosuch")));
	metrics_free(m);
}

static void
test_card_precision(void **state)
{
	metrics *m;
	uint32_t days;

	(void)state;
	/* k = 1. Day 1: c1 (10, fraud) c2 (8) c3 (8, fraud) c5 (0): top c1 -> 1,
	 * c1 caught. Day 2 (labelled only): c4 (0, fraud): top c4 -> 1. Mean 1. */
	m = example(1);
	assert_near(metrics_card_precision(m, &days), 1.0);
	assert_int_equal(days, 2);
	assert_near(metrics_card_precision_best(m), 1.0);
	metrics_free(m);
	/* k = 2. Day 1: c1 10 fraud, then c2 8 vs c3 8: tie broken by id -> c2
	 * (legit): 1/2. Day 2: only c4 -> 1/1. Mean 0.75. */
	m = example(2);
	assert_near(metrics_card_precision(m, &days), 0.75);
	/* best: day 1 has two fraud cards (c1, c3) -> 2/2; day 2 one of one */
	assert_near(metrics_card_precision_best(m), 1.0);
	metrics_free(m);
}

static void
test_caught_cards_left_out(void **state)
{
	static const char *const names[] = { "r" };
	metrics_opts opts = { .nrules = 1, .rule_names = names, .topk = 1 };
	const metrics_obs obs[] = {
		{ "c1", T0, 9, VIGIL_DECISION_DECLINE, 1, NULL, NULL, 0, 0, -1 },
		{ "c2", T0 + 1, 1, VIGIL_DECISION_ALLOW, 0, NULL, NULL, 0, 0, -1 },
		/* day 2: c1 is caught: its 9 is left out, so c2 (legit) is the top */
		{ "c1", T0 + DAY, 9, VIGIL_DECISION_DECLINE, 1, NULL, NULL, 0, 0, -1 },
		{ "c2", T0 + DAY + 1, 5, VIGIL_DECISION_ALLOW, 0, NULL, NULL, 0, 0, -1 },
	};
	metrics *m = metrics_new(&opts);
	uint32_t days;

	(void)state;
	for (size_t i = 0; i < sizeof obs / sizeof obs[0]; i++)
		assert_int_equal(metrics_add(m, &obs[i]), VIGIL_OK);
	assert_int_equal(metrics_finish(m), VIGIL_OK);
	assert_near(metrics_card_precision(m, &days), 0.5);
	assert_int_equal(days, 2);
	/* day 1: c1 is a fraud card (1/1); day 2: only c2 (legit) competes: 0/1 */
	assert_near(metrics_card_precision_best(m), 0.5);
	metrics_free(m);
}

/* ---- card precision against a direct reference (many cards, ties) ---- */

#define REF_CARDS 6000
#define REF_DAYS  5
#define REF_ROWS  2500 /* per day */
#define REF_K     50

typedef struct ref_card {
	char     id[40];
	int64_t  day;
	int32_t  max;
	bool     fraud, caught;
} ref_card;

static ref_card ref_cards[REF_CARDS];

static int
ref_cmp(const void *a, const void *b)
{
	const ref_card *x = *(ref_card *const *)a, *y = *(ref_card *const *)b;

	if (x->max != y->max)
		return x->max > y->max ? -1 : 1;
	return strcmp(x->id, y->id);
}

/* The definition, with a full sort per day. */
static void
ref_day_close(ref_card **today, size_t n, double *sum, double *best, uint32_t *days)
{
	size_t k = n < REF_K ? n : REF_K, hits = 0, nfraud = 0;

	if (n == 0)
		return;
	for (size_t i = 0; i < n; i++)
		nfraud += today[i]->fraud;
	qsort(today, n, sizeof *today, ref_cmp);
	for (size_t i = 0; i < k; i++) {
		if (today[i]->fraud) {
			hits++;
			today[i]->caught = true;
		}
	}
	*sum += (double)hits / (double)k;
	*best += (double)(nfraud < k ? nfraud : k) / (double)k;
	(*days)++;
}

static void
test_card_precision_reference(void **state)
{
	static const char *const names[] = { "r" };
	static ref_card *today[REF_CARDS];
	metrics_opts opts = { .nrules = 1, .rule_names = names, .topk = REF_K };
	metrics *m = metrics_new(&opts);
	double sum = 0, best = 0;
	uint32_t days = 0, mdays, seed = 12345;
	size_t ntoday = 0;

	(void)state;
	assert_non_null(m);
	/* short ids (kept in the entry) and long ones (kept in the pool) */
	for (int i = 0; i < REF_CARDS; i++) {
		if (i % 3 == 0)
			snprintf(ref_cards[i].id, sizeof ref_cards[i].id, "long-card-token-%06d", i);
		else
			snprintf(ref_cards[i].id, sizeof ref_cards[i].id, "c%d", i);
		ref_cards[i].day = -1;
	}
	for (int d = 0; d < REF_DAYS; d++) {
		for (int r = 0; r < REF_ROWS; r++) {
			uint32_t x, card;
			int label;
			int32_t score;
			metrics_obs o = { 0 };

			seed = seed * 1103515245u + 12345u;
			x = seed >> 8;
			card = x % REF_CARDS;
			score = (int32_t)((x >> 13) % 6); /* many ties */
			label = (x >> 17) % 20 == 0 ? 1 : (x >> 17) % 20 == 1 ? -1 : 0;
			o.card_id = ref_cards[card].id;
			o.event_time_ms = T0 + d * DAY + r;
			o.score = score;
			o.decision = VIGIL_DECISION_ALLOW;
			o.label = label;
			assert_int_equal(metrics_add(m, &o), VIGIL_OK);
			if (label == -1 || ref_cards[card].caught)
				continue;
			if (ref_cards[card].day != d) {
				ref_cards[card].day = d;
				ref_cards[card].max = score;
				ref_cards[card].fraud = false;
				today[ntoday++] = &ref_cards[card];
			}
			if (score > ref_cards[card].max)
				ref_cards[card].max = score;
			if (label == 1)
				ref_cards[card].fraud = true;
		}
		ref_day_close(today, ntoday, &sum, &best, &days);
		ntoday = 0;
	}
	assert_int_equal(metrics_finish(m), VIGIL_OK);
	assert_near(metrics_card_precision(m, &mdays), sum / days);
	assert_int_equal(mdays, days);
	assert_near(metrics_card_precision_best(m), best / days);
	metrics_free(m);
}

static void
test_rules_patterns_scores_latency(void **state)
{
	metrics *m = example(1);
	metrics_rule r;
	metrics_pattern p;
	metrics_score_bin b;

	(void)state;
	metrics_get_rule(m, 0, &r); /* A (fraud), B (legit) */
	assert_string_equal(r.name, "r0");
	assert_int_equal(r.hits, 2);
	assert_near(r.precision, 0.5);
	metrics_get_rule(m, 1, &r); /* C */
	assert_int_equal(r.hits, 1);
	assert_near(r.precision, 1.0);
	metrics_get_rule(m, 2, &r); /* A */
	assert_int_equal(r.fraud_hits, 1);

	assert_int_equal(metrics_npatterns(m), 2);
	metrics_get_pattern(m, 0, &p);
	assert_string_equal(p.name, "x");
	assert_int_equal(p.rows, 2);
	assert_int_equal(p.alerts, 1);
	assert_near(p.recall, 0.5);
	assert_near(p.precision_vs_legit, 0.5); /* 1 / (1 + fp 1) */
	metrics_get_pattern(m, 1, &p);
	assert_string_equal(p.name, "y");
	assert_near(p.recall, 1.0);

	/* scores: 0 0 3 5 8 8 10 12 */
	assert_int_equal(metrics_nscores(m), 6);
	metrics_get_score(m, 0, &b);
	assert_int_equal(b.score, 0);
	assert_int_equal(b.legit, 1);
	assert_int_equal(b.fraud, 1);
	assert_int_equal(metrics_score_percentile(m, 50), 5);
	assert_int_equal(metrics_score_percentile(m, 100), 12);
	assert_int_equal(metrics_score_percentile(m, 1), 0);

	/* latency: 100 200 300 400 (exact in their buckets) */
	assert_int_equal(metrics_latency_count(m), 4);
	assert_int_equal(metrics_latency_percentile(m, 50), 200);
	assert_int_equal(metrics_latency_percentile(m, 75), 300);
	assert_int_equal(metrics_latency_percentile(m, 100), 400);
	assert_int_equal(metrics_latency_max(m), 400);
	metrics_free(m);
}

static void
test_json_and_undefined(void **state)
{
	metrics_opts opts = { 0 };
	metrics *m = example(1), *e = metrics_new(&opts);
	metrics_confusion c;
	json_t *j;

	(void)state;
	j = metrics_to_json(m);
	assert_non_null(j);
	assert_int_equal(json_integer_value(json_object_get(j, "rows")), 8);
	assert_near(json_real_value(json_object_get(j, "roc_auc")), 6.0 / 9);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "confusion"), "fn")), 1);
	assert_int_equal(json_array_size(json_object_get(j, "rules")), 3);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "latency_us"), "p50")), 200);
	json_decref(j);
	metrics_free(m);

	/* no rows: every ratio is undefined, shown as null */
	assert_int_equal(metrics_finish(e), VIGIL_OK);
	metrics_get_confusion(e, &c);
	assert_true(isnan(c.precision) && isnan(c.recall) && isnan(c.f1));
	assert_true(isnan(metrics_auc(e, NULL)));
	j = metrics_to_json(e);
	assert_true(json_is_null(json_object_get(j, "precision")));
	assert_null(json_object_get(j, "latency_us"));
	json_decref(j);
	metrics_free(e);
}

static const char *
hostile_rule_name(void *arg, uint16_t idx)
{
	(void)arg;
	return idx == 0 ? "<b>r0</b>" : "r1";
}

/* The HTML report escapes every input-derived text and stays self-contained. */
static void
test_report_escapes(void **state)
{
	metrics *m = example(1);
	report_info ri = { .title = "t <b>", .input = "/tmp/<script>x.csv", .rules = "a&b.rules",
		.mode = "offline", .seconds = 1, .throughput = 8, .compare = "c\"d.rules" };
	report_data *d = report_data_new(hostile_rule_name, NULL);
	const uint16_t hits[] = { 0, 1 };
	const report_obs o = { .txn_id = "<i>t1", .card_id = "c&1", .currency = "EUR",
		.pattern = "p<1>", .event_time_ms = 1772323200000LL, .amount = 12.5, .score = 90,
		.decision = VIGIL_DECISION_DECLINE, .label = 1, .model_score = NAN, .hits = hits,
		.nhits = 1, .nshadow = 1, .has_cmp = true, .score2 = 10,
		.decision2 = VIGIL_DECISION_ALLOW };
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	(void)state;
	assert_non_null(f);
	assert_non_null(d);
	report_data_add(d, &o);
	assert_int_equal(report_write_html(f, &ri, m, m, d), VIGIL_OK);
	fclose(f);
	/* the listed row and its reasons, escaped; the shadow hit marked */
	assert_non_null(strstr(buf, "&lt;i&gt;t1"));
	assert_non_null(strstr(buf, "c&amp;1"));
	assert_non_null(strstr(buf, "&lt;b&gt;r0&lt;/b&gt;"));
	assert_non_null(strstr(buf, "r1 (shadow)"));
	assert_non_null(strstr(buf, "p&lt;1&gt;"));
	assert_non_null(strstr(buf, "c&quot;d.rules"));
	assert_null(strstr(buf, "<i>"));
	assert_non_null(strstr(buf, "id=\"top-alerts\""));
	assert_non_null(strstr(buf, "id=\"compare-diff\""));
	assert_non_null(strstr(buf, "id=\"money\""));
	report_data_free(d);
	assert_non_null(strstr(buf, "<code>/tmp/&lt;script&gt;x.csv</code>"));
	assert_non_null(strstr(buf, "<code>a&amp;b.rules</code>"));
	assert_non_null(strstr(buf, "<title>t &lt;b&gt;</title>"));
	assert_null(strstr(buf, "<script"));
	assert_null(strstr(buf, "src="));
	assert_non_null(strstr(buf, "<svg"));
	assert_non_null(strstr(buf, "Latency histogram")); /* the example has latencies */
	assert_non_null(strstr(buf, "</html>"));
	free(buf);
	metrics_free(m);
}

/* The score, and the score and model.score over the rows a model scored,
 * are three rankings: AUC, AP and card precision of each. */
static void
test_rank_by_score_and_model(void **state)
{
	const metrics_opts opts = { .topk = 1 };
	const metrics_obs obs[] = {
		/* card, time, score, decision, label, pattern, hits, nhits, latency, model */
		{ "a", T0, 80, VIGIL_DECISION_DECLINE, 1, NULL, NULL, 0, 0, 0.5 },
		{ "b", T0 + 1, 40, VIGIL_DECISION_REVIEW, 0, NULL, NULL, 0, 0, 0.99 },
		{ "c", T0 + 2, 0, VIGIL_DECISION_ALLOW, 0, NULL, NULL, 0, 0, NAN }, /* no model */
		{ "d", T0 + 3, 10, VIGIL_DECISION_ALLOW, 1, NULL, NULL, 0, 0, 0.9 },
	};
	metrics *m = metrics_new(&opts);
	uint64_t lab = 0;
	uint32_t days = 0;

	(void)state;
	assert_non_null(m);
	for (size_t i = 0; i < sizeof obs / sizeof obs[0]; i++)
		assert_int_equal(metrics_add(m, &obs[i]), VIGIL_OK);
	assert_int_equal(metrics_finish(m), VIGIL_OK);
	assert_int_equal(metrics_modelled(m, &lab), 3);
	assert_int_equal(lab, 3);
	/* score, all rows: a80F b40L d10F c0L: a above 2, d above 1 of 4 pairs;
	 * AP: a R 1/2 P 1, d R 1 P 2/3 */
	assert_near(metrics_auc(m, NULL), 0.75);
	assert_near(metrics_ap(m, NULL), 0.5 + 0.5 * 2.0 / 3);
	assert_near(metrics_auc_by(m, METRICS_BY_SCORE, NULL), 0.75);
	/* score, modelled rows: a80F b40L d10F */
	assert_near(metrics_auc_by(m, METRICS_BY_SCORE_MODELLED, NULL), 0.5);
	assert_near(metrics_ap_by(m, METRICS_BY_SCORE_MODELLED, NULL), 0.5 + 0.5 * 2.0 / 3);
	/* model.score: b.99L d.9F a.5F: no fraud above b; AP d R 1/2 P 1/2,
	 * a R 1 P 2/3 */
	assert_near(metrics_auc_by(m, METRICS_BY_MODEL, NULL), 0.0);
	assert_near(metrics_ap_by(m, METRICS_BY_MODEL, NULL), 0.25 + 0.5 * 2.0 / 3);
	/* top 1 card of the day: a (fraud) by score, b (legit) by model.score */
	assert_near(metrics_card_precision(m, &days), 1.0);
	assert_int_equal(days, 1);
	assert_near(metrics_card_precision_by(m, METRICS_BY_SCORE_MODELLED, &days), 1.0);
	assert_int_equal(days, 1);
	assert_near(metrics_card_precision_by(m, METRICS_BY_MODEL, &days), 0.0);
	assert_int_equal(days, 1);
	metrics_free(m);
}

/* A 0-100 score is ranked by its value, not its whole number: 40.9 above
 * 40.1 counts as ranked; the distribution is by whole number. */
static void
test_rank_double_score(void **state)
{
	const metrics_opts opts = { .topk = 10 };
	const metrics_obs obs[] = {
		{ "a", T0, 40.9, VIGIL_DECISION_REVIEW, 1, NULL, NULL, 0, 0, -1 },
		{ "b", T0 + 1, 40.1, VIGIL_DECISION_REVIEW, 0, NULL, NULL, 0, 0, -1 },
		{ "c", T0 + 2, 0, VIGIL_DECISION_ALLOW, 0, NULL, NULL, 0, 0, -1 },
	};
	metrics *m = metrics_new(&opts);

	(void)state;
	assert_non_null(m);
	for (size_t i = 0; i < sizeof obs / sizeof obs[0]; i++)
		assert_int_equal(metrics_add(m, &obs[i]), VIGIL_OK);
	assert_int_equal(metrics_finish(m), VIGIL_OK);
	assert_float_equal(metrics_auc(m, NULL), 1.0, 1e-12);
	assert_float_equal(metrics_ap(m, NULL), 1.0, 1e-12);
	assert_int_equal(metrics_modelled(m, NULL), 0);
	assert_true(isnan(metrics_auc_by(m, METRICS_BY_MODEL, NULL)));
	assert_int_equal(metrics_nscores(m), 2); /* 40 and 0 */
	metrics_free(m);
}

/* The ranking bins: monotone, NaN none, and high probabilities that 1024
 * equal steps merged (0.995, 0.999) kept apart, so a fraud at 0.999 above a
 * legit row at 0.995 counts as ranked by model.score (their scores tie). */
static void
test_rank_sub_of_model_score(void **state)
{
	const metrics_opts opts = { .topk = 10 };
	const double ps[] = { 0, 1e-6, 1e-4, 0.01, 0.3, 0.5, 0.9, 0.99, 0.995, 0.999, 0.9999, 1 };
	metrics *m = metrics_new(&opts);
	metrics_obs a = { "a", T0, 80, VIGIL_DECISION_DECLINE, 1, NULL, NULL, 0, 0, 0 };
	metrics_obs b = { "b", T0 + 1, 80, VIGIL_DECISION_DECLINE, 0, NULL, NULL, 0, 0, 0 };

	(void)state;
	assert_int_equal(metrics_rank_sub(NAN), -1);
	assert_int_equal(metrics_rank_sub(-1), 0);
	assert_int_equal(metrics_rank_sub(2), METRICS_RANK_SUB - 1);
	assert_int_equal(metrics_rank_sub(0.5), METRICS_RANK_SUB / 2);
	for (size_t i = 1; i < sizeof ps / sizeof ps[0]; i++)
		assert_true(metrics_rank_sub(ps[i]) > metrics_rank_sub(ps[i - 1]));
	assert_true(metrics_rank_sub(0.999) - metrics_rank_sub(0.995) >= 200);
	assert_non_null(m);
	a.model_score = 0.999;
	b.model_score = 0.995;
	assert_int_equal(metrics_add(m, &a), VIGIL_OK);
	assert_int_equal(metrics_add(m, &b), VIGIL_OK);
	assert_int_equal(metrics_finish(m), VIGIL_OK);
	assert_float_equal(metrics_auc_by(m, METRICS_BY_MODEL, NULL), 1.0, 1e-12);
	assert_float_equal(metrics_ap_by(m, METRICS_BY_MODEL, NULL), 1.0, 1e-12);
	assert_float_equal(metrics_auc(m, NULL), 0.5, 1e-12); /* the scores tie */
	metrics_free(m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rank_by_score_and_model),
		cmocka_unit_test(test_rank_double_score),
		cmocka_unit_test(test_rank_sub_of_model_score),
		cmocka_unit_test(test_confusion),
		cmocka_unit_test(test_auc_ap),
		cmocka_unit_test(test_card_precision),
		cmocka_unit_test(test_caught_cards_left_out),
		cmocka_unit_test(test_card_precision_reference),
		cmocka_unit_test(test_rules_patterns_scores_latency),
		cmocka_unit_test(test_json_and_undefined),
		cmocka_unit_test(test_report_escapes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
