/* SPDX-License-Identifier: MIT */
/*
 * tests/app/test_app_score.c - the 0-100 score app_score makes (DESIGN.md
 * contract 7, docs/rules.md "The score"): with a model, 100 x its calibrated
 * probability, ranking exactly as model.score; a `decide` rule raises the
 * decision and leaves the score; points move it within `adjust max`; with no
 * model the points alone. And the calibration of a generation's
 * "model.meta": absent is the identity, Platt is read, a malformed one
 * refuses the generation's model with the field named. A missing input is
 * never a reason, whatever it contributed. The model is a
 * hand-made forest of stumps on amount (app_model_decode), the store an
 * in-memory one (dry runs: nothing recorded).
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

#include "app.h"
#include "gen.h"
#include "tmpdir.h"

/* Six stumps on amount: x < t_i ? -w_i : w_i, so p rises with amount in
 * seven steps (base score 0.5: margin 0). */
static char *
stumps_model(size_t *ret_len)
{
	static const double thr[] = { 10, 30, 100, 300, 1000, 3000 };
	static const double w[] = { 0.3, 0.5, 0.7, 0.9, 1.1, 1.3 };
	size_t cap = 8192, off = 0;
	char *s = malloc(cap);

	assert_non_null(s);
	off += (size_t)snprintf(s + off, cap - off, "{\"version\":[1,7,4],\"learner\":{"
	    "\"objective\":{\"name\":\"binary:logistic\"},\"learner_model_param\":{\"base_score\":"
	    "\"5E-1\",\"num_class\":\"0\",\"num_feature\":\"1\"},\"feature_names\":[\"amount\"],"
	    "\"gradient_booster\":{\"name\":\"gbtree\",\"model\":{\"gbtree_model_param\":"
	    "{\"num_trees\":\"6\"},\"tree_info\":[0,0,0,0,0,0],\"trees\":[");
	for (int i = 0; i < 6; i++)
		off += (size_t)snprintf(s + off, cap - off,
		    "%s{\"id\":%d,\"tree_param\":{\"num_nodes\":\"3\",\"num_deleted\":\"0\"},"
		    "\"left_children\":[1,-1,-1],\"right_children\":[2,-1,-1],"
		    "\"split_indices\":[0,0,0],\"split_conditions\":[%g,%g,%g],"
		    "\"default_left\":[true,false,false],\"sum_hessian\":[2,1,1]}",
		    i ? "," : "", i, thr[i], -w[i], w[i]);
	off += (size_t)snprintf(s + off, cap - off, "]}}}}");
	*ret_len = off;
	return s;
}

static app_model *
model_with(const char *meta)
{
	size_t len;
	char *json = stumps_model(&len), err[256] = "";
	app_model *m = NULL;

	assert_int_equal(app_model_decode(json, len, &m, err, sizeof err), VIGIL_OK);
	free(json);
	if (meta != NULL)
		assert_int_equal(app_model_calibration(m, meta, strlen(meta), err, sizeof err),
		    VIGIL_OK);
	return m;
}

static app_rules *
rules_of(const char *src)
{
	rules_schema *schema = NULL;
	rules_prog *prog = NULL;
	rules_diags diags;
	app_rules *r = NULL;
	char err[256];

	assert_int_equal(app_rules_schema(&schema), VIGIL_OK);
	if (rules_compile("t.rules", src, strlen(src), schema, NULL, &prog, &diags) != VIGIL_OK)
		fail_msg("t.rules:%u:%u: %s", diags.items[0].line, diags.items[0].col,
		    diags.items[0].msg);
	rules_schema_free(schema);
	assert_int_equal(app_rules_new(prog, &r, err, sizeof err), VIGIL_OK);
	return r;
}

typedef struct fixture {
	store_db *db;
	app_work *w;
} fixture;

static int
setup(void **state)
{
	fixture *f = calloc(1, sizeof *f);
	store_db_opts o;

	store_db_opts_default(&o);
	if (f == NULL || store_db_new_memory(&o, &f->db) != VIGIL_OK)
		return -1;
	f->w = app_work_new(f->db);
	*state = f;
	return f->w == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	fixture *f = *state;

	app_work_free(f->w);
	store_db_close(f->db);
	free(f);
	return 0;
}

static vigil_txn
txn_of(const char *id, double amount, const char *country)
{
	vigil_txn t;

	memset(&t, 0, sizeof t);
	snprintf(t.txn_id, sizeof t.txn_id, "%s", id);
	snprintf(t.card_id, sizeof t.card_id, "card-1");
	snprintf(t.merchant_id, sizeof t.merchant_id, "m-1");
	memcpy(t.currency, "EUR", 4);
	snprintf(t.country, sizeof t.country, "%s", country);
	t.event_time_ms = 1795185000000LL;
	t.amount_minor = (int64_t)llround(amount * 100);
	t.mcc = 5411;
	return t;
}

/* Scores t (dry run): the outcome, its score and decision. */
static void
score(fixture *f, const app_rules *r, const app_model *m, const vigil_txn *t, app_outcome *ret)
{
	app_scorer sc = { .rules = r, .model = m };

	assert_int_equal(app_score(f->db, f->w, &sc, t, APP_DRY_RUN | APP_NO_ARCHIVE, 0, ret),
	    VIGIL_OK);
	assert_non_null(ret->res);
}

static double
platt(double a, double b, double p)
{
	return 1 / (1 + exp(-(a * log(p / (1 - p)) + b)));
}

/* The score is 100 x the calibrated probability and ranks as model.score,
 * with and without a calibration; the default-file shape (adjust max 0)
 * adds no points though a rule fires. */
static void
test_score_ranks_as_model(void **state)
{
	fixture *f = *state;
	app_rules *r = rules_of("band review = 40\nband decline = 80\nadjust max 0\n"
	    "rule big { when amount > 2000 score 50 reason \"big\" }\n");
	const char *metas[] = { NULL, "{\"rounds\": 3}",
		"{\"calibration\": {\"method\": \"platt\", \"a\": 2, \"b\": -1}}" };
	enum { N = 40 };

	for (size_t k = 0; k < sizeof metas / sizeof metas[0]; k++) {
		app_model *m = model_with(metas[k]);
		double p[N], s[N];

		for (int i = 0; i < N; i++) {
			vigil_txn t = txn_of("t", 5 * pow(1.25, i), "FR");
			app_outcome o;
			double want;

			score(f, r, m, &t, &o);
			p[i] = o.model_score;
			s[i] = o.res->score;
			want = k < 2 ? p[i] : platt(2, -1, p[i]);
			assert_true(fabs(o.model_cal - want) < 1e-12);
			assert_true(fabs(s[i] - 100 * want) < 1e-9);
			if (t.amount_minor > 200000)
				assert_int_equal(o.res->points, 50); /* fired, moved nothing */
		}
		for (int i = 0; i < N; i++)
			for (int j = 0; j < N; j++)
				assert_int_equal((p[i] > p[j]) - (p[i] < p[j]), (s[i] > s[j]) - (s[i] < s[j]));
		assert_true(p[N - 1] > p[0]);
		app_model_free(m);
	}
	app_rules_free(r);
}

/* Two stumps: vel.device.count_1h < 0.5 (a missing value goes left: +2)
 * and amount < 100 (-0.5 / +0.5). Without a device the first input is
 * missing and pushes the margin up most; with one it is present. */
static app_model *
missing_input_model(void)
{
	static const char json[] = "{\"version\":[1,7,4],\"learner\":{"
	    "\"objective\":{\"name\":\"binary:logistic\"},\"learner_model_param\":{\"base_score\":"
	    "\"5E-1\",\"num_class\":\"0\",\"num_feature\":\"2\"},"
	    "\"feature_names\":[\"amount\",\"vel.device.count_1h\"],"
	    "\"gradient_booster\":{\"name\":\"gbtree\",\"model\":{\"gbtree_model_param\":"
	    "{\"num_trees\":\"2\"},\"tree_info\":[0,0],\"trees\":["
	    "{\"id\":0,\"tree_param\":{\"num_nodes\":\"3\",\"num_deleted\":\"0\"},"
	    "\"left_children\":[1,-1,-1],\"right_children\":[2,-1,-1],"
	    "\"split_indices\":[1,0,0],\"split_conditions\":[0.5,2,-1],"
	    "\"default_left\":[true,false,false],\"sum_hessian\":[2,1,1]},"
	    "{\"id\":1,\"tree_param\":{\"num_nodes\":\"3\",\"num_deleted\":\"0\"},"
	    "\"left_children\":[1,-1,-1],\"right_children\":[2,-1,-1],"
	    "\"split_indices\":[0,0,0],\"split_conditions\":[100,-0.5,0.5],"
	    "\"default_left\":[true,false,false],\"sum_hessian\":[2,1,1]}]}}}}";
	char err[256] = "";
	app_model *m = NULL;

	assert_int_equal(app_model_decode(json, sizeof json - 1, &m, err, sizeof err), VIGIL_OK);
	return m;
}

/* A missing input is never a reason (app/score.c, score_reasons): it has no
 * value to show, though its default branch moved the score most; the
 * reasons are the next contributions of inputs that have one. The same
 * input with a value is a reason. */
static void
test_reasons_skip_missing_inputs(void **state)
{
	fixture *f = *state;
	app_rules *r = rules_of("band review = 40\nband decline = 80\nadjust max 0\n");
	app_model *m = missing_input_model();
	app_scorer sc = { .rules = r, .model = m };
	vigil_txn t = txn_of("no-device", 500, "FR");
	app_outcome o;
	uint32_t dev;

	assert_int_equal(store_schema_find("vel.device.count_1h", &dev), VIGIL_OK);
	assert_int_equal(app_score(f->db, f->w, &sc, &t, APP_DRY_RUN | APP_NO_ARCHIVE |
	    APP_ALL_REASONS, 0, &o), VIGIL_OK);
	/* the missing input's +1.5 is in the margin: 0.5 + 1.5 + 0.5 */
	assert_false(o.features[dev].present);
	assert_true(fabs(o.model_score - 1 / (1 + exp(-2.5))) < 1e-6);
	assert_int_equal(o.nreasons, 1);
	assert_string_equal(o.reasons[0].feature, "amount");
	assert_true(fabs(o.reasons[0].contrib - 0.5) < 1e-6);

	/* with a device the same input has a value (0 before this one: +1.5) */
	snprintf(t.txn_id, sizeof t.txn_id, "with-device");
	snprintf(t.device_id, sizeof t.device_id, "dev-1");
	assert_int_equal(app_score(f->db, f->w, &sc, &t, APP_DRY_RUN | APP_NO_ARCHIVE |
	    APP_ALL_REASONS, 0, &o), VIGIL_OK);
	assert_true(o.features[dev].present);
	assert_int_equal(o.nreasons, 2);
	assert_string_equal(o.reasons[0].feature, "vel.device.count_1h");
	assert_true(fabs(o.reasons[0].contrib - 1.5) < 1e-6);
	assert_string_equal(o.reasons[1].feature, "amount");
	app_model_free(m);
	app_rules_free(r);
}

/* A `decide decline` rule declines whatever the model says and leaves the
 * score the model's; a `decide review` one reviews a low score and lets a
 * high one decline. */
static void
test_hard_decision_overrides_score(void **state)
{
	fixture *f = *state;
	app_rules *r = rules_of("band review = 40\nband decline = 80\n"
	    "rule sanctioned { when country == \"KP\" decide decline reason \"sanctioned\" }\n"
	    "rule watch { when country == \"CU\" score 30 decide review reason \"watch\" }\n");
	app_model *m = model_with(NULL);
	vigil_txn t = txn_of("t", 50, "KP"); /* two stumps push up, four down */
	app_outcome o;

	score(f, r, m, &t, &o);
	assert_true(o.model_score < 0.1);
	assert_true(fabs(o.res->score - 100 * o.model_score) < 1e-9);
	assert_int_equal(o.res->decision, VIGIL_DECISION_DECLINE);
	assert_int_equal(o.res->floor, VIGIL_DECISION_DECLINE);
	assert_int_equal(o.nreasons, 0); /* amount pushed the model's score down */

	t = txn_of("t", 5, "CU");
	score(f, r, m, &t, &o);
	assert_int_equal(o.res->decision, VIGIL_DECISION_REVIEW);
	assert_true(fabs(o.res->score - 100 * o.model_score) < 1e-9); /* adjust max 0 */
	t = txn_of("t", 9000, "CU");
	score(f, r, m, &t, &o);
	assert_true(o.res->score >= 80);
	assert_int_equal(o.res->decision, VIGIL_DECISION_DECLINE);
	/* the model's reasons come with an alert (no rule reads model.score) */
	assert_int_equal(o.nreasons, 1);
	assert_string_equal(o.reasons[0].feature, "amount");

	/* no rule fired, same low score: allowed */
	t = txn_of("t", 5, "FR");
	score(f, r, m, &t, &o);
	assert_int_equal(o.res->decision, VIGIL_DECISION_ALLOW);
	assert_int_equal(o.nreasons, 0);
	app_model_free(m);
	app_rules_free(r);
}

/* Points move a model's score by at most `adjust max`, either way. */
static void
test_adjustment_bound(void **state)
{
	fixture *f = *state;
	app_rules *r = rules_of("adjust max 5\n"
	    "rule big { when amount > 2000 score 50 reason \"big\" }\n"
	    "rule home { when country == \"FR\" score -3 reason \"home\" }\n"
	    "rule away { when country == \"US\" score -40 reason \"away\" }\n");
	app_model *m = model_with(NULL);
	vigil_txn t = txn_of("t", 2500, "DE");
	app_outcome o;

	score(f, r, m, &t, &o);
	assert_int_equal(o.res->points, 50);
	assert_true(fabs(o.res->score - (100 * o.model_score + 5)) < 1e-9);
	t = txn_of("t", 2500, "FR");
	score(f, r, m, &t, &o);
	assert_int_equal(o.res->points, 47);
	assert_true(fabs(o.res->score - (100 * o.model_score + 5)) < 1e-9);
	t = txn_of("t", 50, "FR");
	score(f, r, m, &t, &o);
	assert_true(fabs(o.res->score - (100 * o.model_score - 3)) < 1e-9);
	t = txn_of("t", 300, "US"); /* p about 0.5: -40 points move it by 5 */
	score(f, r, m, &t, &o);
	assert_true(fabs(o.res->score - (100 * o.model_score - 5)) < 1e-9);
	t = txn_of("t", 5, "US"); /* p < 0.05: clamped at 0 */
	score(f, r, m, &t, &o);
	assert_true(100 * o.model_score < 5);
	assert_true(o.res->score == 0);
	app_model_free(m);
	app_rules_free(r);
}

/* No model (cold start, a generation without one): the points are the
 * score, clamped to 0-100, and the bands decide on them. */
static void
test_cold_start_is_points(void **state)
{
	fixture *f = *state;
	app_rules *r = rules_of("band review = 40\nband decline = 80\nadjust max 5\n"
	    "rule big { when amount > 2000 score 50 reason \"big\" }\n"
	    "rule huge { when amount > 8000 score 70 reason \"huge\" }\n");
	vigil_txn t = txn_of("t", 2500, "DE");
	app_outcome o;

	score(f, r, NULL, &t, &o);
	assert_true(isnan(o.model_score));
	assert_true(isnan(o.model_cal));
	assert_true(o.res->score == 50);
	assert_int_equal(o.res->decision, VIGIL_DECISION_REVIEW);
	t = txn_of("t", 9000, "DE");
	score(f, r, NULL, &t, &o);
	assert_int_equal(o.res->points, 120);
	assert_true(o.res->score == 100);
	assert_int_equal(o.res->decision, VIGIL_DECISION_DECLINE);
	app_rules_free(r);
}

/* The calibration read from model.meta: the errors name the field. */
static void
test_calibration_parse(void **state)
{
	static const struct {
		const char *meta;
		const char *err; /* NULL: accepted */
	} cases[] = {
		{ "{}", NULL },
		{ "{\"calibration\": null}", NULL },
		{ "{\"calibration\": {\"method\": \"platt\", \"a\": 1.5, \"b\": 0.25}}", NULL },
		{ "{\"calibration\": 3}", "model.meta: calibration: must be an object" },
		{ "{\"calibration\": {\"method\": \"isotonic\", \"a\": 1, \"b\": 0}}",
		  "model.meta: calibration.method: must be \"platt\"" },
		{ "{\"calibration\": {\"method\": \"platt\", \"b\": 0}}",
		  "model.meta: calibration.a: missing (a finite number is required)" },
		{ "{\"calibration\": {\"method\": \"platt\", \"a\": 1, \"b\": \"x\"}}",
		  "model.meta: calibration.b: must be a finite number" },
		{ "{\"calibration\": {\"method\": \"platt\", \"a\": -1, \"b\": 0}}",
		  "model.meta: calibration.a: must be above 0 (got -1)" },
		{ "{\"calibration\": {\"method\": \"platt\", \"a\": 0, \"b\": 0}}",
		  "model.meta: calibration.a: must be above 0 (got 0)" },
		{ "[1]", "model.meta: offset 0: not a JSON object" },
		{ "{\"calibration\": ", "model.meta: offset 16: unexpected token near end of file" },
	};
	app_model *m = model_with(NULL);

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char err[256] = "";
		vigil_err rv = app_model_calibration(m, cases[i].meta, strlen(cases[i].meta), err,
		    sizeof err);

		if (cases[i].err == NULL) {
			assert_int_equal(rv, VIGIL_OK);
		} else {
			assert_int_equal(rv, VIGIL_EINVAL);
			if (strcmp(err, cases[i].err) != 0)
				fail_msg("case %zu: \"%s\", want \"%s\"", i, err, cases[i].err);
			/* a refused calibration leaves the identity, not half a one */
			assert_true(app_model_calibrate(m, 0.3) == 0.3);
		}
	}
	assert_int_equal(app_model_calibration(m, cases[2].meta, strlen(cases[2].meta), NULL, 0),
	    VIGIL_OK);
	assert_true(fabs(app_model_calibrate(m, 0.3) - platt(1.5, 0.25, 0.3)) < 1e-15);
	assert_true(app_model_calibrate(m, 0) == 0);
	assert_true(app_model_calibrate(m, 1) == 1);
	assert_true(isnan(app_model_calibrate(m, NAN)));
	assert_int_equal(app_model_calibration(m, NULL, 0, NULL, 0), VIGIL_OK);
	assert_true(app_model_calibrate(m, 0.3) == 0.3);
	app_model_free(m);
}

/* model.meta's as_of_ms, read with the calibration: only a positive integer
 * counts; anything else is no as-of (0), and the model is not refused for it
 * (vigild's model age is informational). */
static void
test_as_of_parse(void **state)
{
	static const struct {
		const char *meta;
		int64_t     as_of_ms;
	} cases[] = {
		{ "{\"as_of_ms\": 1795185000000}", 1795185000000LL },
		{ "{\"as_of_ms\": 1795185000000, \"calibration\": {\"method\": \"platt\", "
		  "\"a\": 1.5, \"b\": 0.25}}", 1795185000000LL },
		{ "{}", 0 },
		{ "{\"as_of_ms\": null}", 0 },
		{ "{\"as_of_ms\": \"2026-11-20T00:00:00Z\"}", 0 },
		{ "{\"as_of_ms\": 1795185000000.5}", 0 },
		{ "{\"as_of_ms\": true}", 0 },
		{ "{\"as_of_ms\": -1}", 0 },
		{ "{\"as_of_ms\": 0}", 0 },
	};
	app_model *m = model_with(NULL);

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char err[256] = "";

		/* the previous case's as-of does not linger */
		assert_int_equal(app_model_calibration(m, cases[0].meta, strlen(cases[0].meta),
		    NULL, 0), VIGIL_OK);
		if (app_model_calibration(m, cases[i].meta, strlen(cases[i].meta), err,
		    sizeof err) != VIGIL_OK)
			fail_msg("case %zu: refused: %s", i, err);
		if (app_model_as_of_ms(m) != cases[i].as_of_ms)
			fail_msg("case %zu: as_of_ms %lld, want %lld", i,
			    (long long)app_model_as_of_ms(m), (long long)cases[i].as_of_ms);
	}
	assert_int_equal(app_model_calibration(m, NULL, 0, NULL, 0), VIGIL_OK);
	assert_int_equal(app_model_as_of_ms(m), 0);
	app_model_free(m);
}

/* Commits a generation with model.json and, unless meta is NULL, model.meta. */
static uint64_t
gen_write(const char *dir, const char *meta)
{
	store_genw *w = NULL;
	store_gen_meta gm;
	store_diag d;
	size_t len;
	char *json = stumps_model(&len);
	uint64_t g;

	if (store_genw_begin(dir, &w, &d) != VIGIL_OK)
		fail_msg("store_genw_begin: %s", d.msg);
	g = store_genw_generation(w);
	assert_int_equal(store_genw_put_blob(w, APP_MODEL_BLOB, json, len), VIGIL_OK);
	if (meta != NULL)
		assert_int_equal(store_genw_put_blob(w, APP_MODEL_META_BLOB, meta, strlen(meta)),
		    VIGIL_OK);
	memset(&gm, 0, sizeof gm);
	gm.as_of_ms = 1795185000000LL;
	gm.window_ms = 90 * 86400000LL;
	snprintf(gm.summary_json, sizeof gm.summary_json, "{\"test\": \"calibration\"}");
	if (store_genw_commit(w, &gm, 10, &d) != VIGIL_OK)
		fail_msg("store_genw_commit: %s", d.msg);
	free(json);
	return g;
}

/* A generation's model with its model.meta: no meta is the identity, a
 * Platt one is read, a malformed one refuses the model like a damaged blob
 * (app_model_from_gen and app_model_from_db, one generation's blobs). */
static void
test_calibration_of_generation(void **state)
{
	char dir[256], want[160], err[320];
	store_gen *g = NULL;
	store_diag d;
	app_model *m = NULL;
	uint64_t n;

	(void)state;
	assert_int_equal(vt_tmpdir_make("vigil-app-cal", dir, sizeof dir), 0);
	n = gen_write(dir, NULL);
	assert_int_equal(store_gen_open(dir, n, &g, &d), VIGIL_OK);
	assert_int_equal(app_model_from_gen(g, &m, err, sizeof err), VIGIL_OK);
	assert_true(app_model_calibrate(m, 0.2) == 0.2);
	app_model_free(m);
	store_gen_close(g);

	n = gen_write(dir, "{\"rounds\": 6, \"as_of_ms\": 1795000000000, \"calibration\": "
	    "{\"method\": \"platt\", \"a\": 0.5, \"b\": 1}}");
	assert_int_equal(store_gen_open(dir, n, &g, &d), VIGIL_OK);
	m = NULL;
	assert_int_equal(app_model_from_gen(g, &m, err, sizeof err), VIGIL_OK);
	assert_true(fabs(app_model_calibrate(m, 0.2) - platt(0.5, 1, 0.2)) < 1e-15);
	assert_int_equal(app_model_as_of_ms(m), 1795000000000LL);
	app_model_free(m);
	store_gen_close(g);

	/* an as_of_ms that is not an integer: no as-of, the model still serves */
	n = gen_write(dir, "{\"as_of_ms\": \"yesterday\", \"calibration\": null}");
	assert_int_equal(store_gen_open(dir, n, &g, &d), VIGIL_OK);
	m = NULL;
	assert_int_equal(app_model_from_gen(g, &m, err, sizeof err), VIGIL_OK);
	assert_int_equal(app_model_as_of_ms(m), 0);
	app_model_free(m);
	store_gen_close(g);

	n = gen_write(dir, "{\"calibration\": {\"method\": \"platt\", \"a\": -1, \"b\": 1}}");
	assert_int_equal(store_gen_open(dir, n, &g, &d), VIGIL_OK);
	m = NULL;
	err[0] = '\0';
	assert_int_equal(app_model_from_gen(g, &m, err, sizeof err), VIGIL_EINVAL);
	assert_null(m);
	snprintf(want, sizeof want, "generation %llu: model.meta: calibration.a: must be above 0 "
	    "(got -1)", (unsigned long long)n);
	assert_string_equal(err, want);
	store_gen_close(g);

	/* the db's current generation (the last one): refused the same way */
	{
		store_db *db = NULL;
		store_db_opts o;
		uint64_t got = 0;

		store_db_opts_default(&o);
		o.read_only = true;
		assert_int_equal(store_db_open(dir, &o, &db, NULL, &d), VIGIL_OK);
		err[0] = '\0';
		assert_int_equal(app_model_from_db(db, &m, &got, err, sizeof err), VIGIL_EINVAL);
		assert_int_equal(got, n);
		assert_string_equal(err, want);
		store_db_close(db);
	}
	assert_int_equal(vt_tmpdir_remove(dir), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_score_ranks_as_model, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hard_decision_overrides_score, setup, teardown),
		cmocka_unit_test_setup_teardown(test_adjustment_bound, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cold_start_is_points, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reasons_skip_missing_inputs, setup, teardown),
		cmocka_unit_test(test_calibration_parse),
		cmocka_unit_test(test_as_of_parse),
		cmocka_unit_test(test_calibration_of_generation),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
