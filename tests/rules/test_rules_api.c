/* SPDX-License-Identifier: MIT */
/*
 * tests/rules/test_rules_api.c - the public contract of rules.h beyond
 * expression semantics: schema, introspection, decisions and bands, shadow
 * and disabled rules, thresholds and tuned values (per group, global,
 * fallback), list files and the content hash, caps, and explain.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "fixture.h"

static rules_schema *schema;

static int
setup(void **state)
{
	(void)state;
	schema = fx_schema();
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	rules_schema_free(schema);
	return 0;
}

static rules_prog *
compile_ok(const char *src)
{
	rules_prog *prog = NULL;
	rules_diags diags;
	vigil_err   rv = rules_compile("t.rules", src, strlen(src), schema, NULL, &prog, &diags);

	if (rv != VIGIL_OK)
		print_error("compile: %u:%u: %s\n", diags.items[0].line, diags.items[0].col,
		    diags.items[0].msg);
	assert_int_equal(rv, VIGIL_OK);
	assert_non_null(prog);
	return prog;
}

static void
test_schema(void **state)
{
	rules_schema *s = rules_schema_new();

	(void)state;
	assert_int_equal(rules_schema_nslots(s), 0);
	assert_int_equal(rules_schema_add(s, "a", VIGIL_T_NUM, 3), VIGIL_OK);
	assert_int_equal(rules_schema_add(s, "a", VIGIL_T_STR, 4), VIGIL_EEXIST);
	assert_int_equal(rules_schema_add(s, "", VIGIL_T_NUM, 5), VIGIL_EINVAL);
	assert_int_equal(rules_schema_add(s, "b", VIGIL_T_NONE, 5), VIGIL_EINVAL);
	assert_int_equal(rules_schema_add(s, "b", VIGIL_T_LIST, 5), VIGIL_EINVAL);
	assert_int_equal(rules_schema_nslots(s), 4);
	rules_schema_free(s);
	rules_schema_free(NULL);
	rules_prog_free(NULL);
	rules_tvals_free(NULL);
}

/* A diagnostic is common/'s vigil_errinfo: the place as line:col and as the
 * byte offset it came from, the file named in each item, and it formats
 * as the compiler prints it. */
static void
test_diag_errinfo(void **state)
{
	static const char src[] =
	    "version \"1\"\nrule r {\n  when nope > 1\n  score 1\n  reason \"x\"\n}\n";
	rules_prog *prog = NULL;
	rules_diags diags;
	char        buf[400];

	(void)state;
	assert_int_not_equal(rules_compile("t.rules", src, sizeof src - 1, schema, NULL, &prog,
	    &diags), VIGIL_OK);
	assert_null(prog);
	assert_true(diags.count >= 1);
	assert_string_equal(diags.items[0].file, "t.rules");
	assert_int_equal(diags.items[0].line, 3);
	assert_true(diags.items[0].offset != VIGIL_NOPOS);
	assert_memory_equal(src + diags.items[0].offset, "nope", 4);
	assert_int_equal(diags.items[0].col, 8);
	assert_string_equal(diags.items[0].field, "");
	snprintf(buf, sizeof buf, "t.rules:3:%u: %s", diags.items[0].col, diags.items[0].msg);
	assert_string_equal(vigil_errinfo_format(&diags.items[0], buf + 200, 200), buf);
}

static const char program[] =
    "# a small program\n"
    "version \"7.1\"\n"
    "band review = 30\n"
    "band decline = 60\n"
    "threshold big = 100\n"
    "threshold zs = percentile(card.amount_zscore, 99.5) fallback 4 min_samples 1000\n"
    "threshold by_mcc = percentile(amount, 99) by mcc fallback 500\n"
    "threshold by_country = alert_rate(amount, 0.01) by country fallback 1000\n"
    "threshold risky = precision(merchant.fraud_rate_30d, 0.3) fallback 0.05\n"
    "rule large {\n"
    "  when amount > big\n"
    "  score 30\n"
    "  reason \"large amount\"\n"
    "  tags [\"amount\", \"simple\"]\n"
    "}\n"
    "rule mcc_large { when amount > by_mcc score 20 reason \"large for mcc\" }\n"
    "rule country_large { when amount > by_country score 15 reason \"large for country\" }\n"
    "rule risky_merchant { when merchant.fraud_rate_30d >= risky score 40 reason \"risky\" }\n"
    "rule try_new { when card.amount_zscore > zs score 25 reason \"zscore\" mode shadow }\n"
    "rule old { when lat > 0 score 99 reason \"old\" mode disabled }\n"
    "rule trusted { when country == \"GB\" score -5 reason \"home\" }\n";

/* The score (docs/rules.md, "The score"): points clamped to 0..100 without
 * a model; with one, 100 x its probability moved by the points within
 * +-adjust max; 'decide' raises the decision and never the score. */
static const char score_program[] =
    "band review = 40\n"
    "band decline = 80\n"
    "adjust max 10\n"
    "rule large { when amount > 100 score 30 reason \"large\" }\n"
    "rule huge { when amount > 1000 score 90 reason \"huge\" }\n"
    "rule home { when country == \"GB\" score -5 reason \"home\" }\n"
    "rule blocked { when country == \"KP\" decide decline reason \"sanctioned\" }\n"
    "rule watch { when country == \"XX\" score 5 decide review reason \"watch\" }\n"
    "rule watch_shadow { when country == \"XX\" decide decline reason \"w\" mode shadow }\n";

static void
test_score_cold_start_is_points(void **state)
{
	rules_prog  *prog = compile_ok(score_program);
	vigil_value  f[FX_NSLOTS];
	rules_result res;

	(void)state;
	fx_features(f); /* amount 120.5, GB */
	assert_int_equal(rules_prog_adjust_max(prog), 10);
	assert_int_equal(rules_prog_eval(prog, NULL, f, FX_NSLOTS, &res), VIGIL_OK);
	assert_int_equal(res.points, 25);
	assert_true(res.score == 25.0);
	assert_int_equal(res.decision, VIGIL_DECISION_ALLOW);
	/* NaN (no model) leaves the rules' score */
	rules_result_model(prog, NAN, &res);
	assert_true(res.score == 25.0);

	f[FX_AMOUNT] = vigil_value_num(5000); /* 30 + 90 - 5: clamped */
	assert_int_equal(rules_prog_eval(prog, NULL, f, FX_NSLOTS, &res), VIGIL_OK);
	assert_int_equal(res.points, 115);
	assert_true(res.score == 100.0);
	assert_int_equal(res.decision, VIGIL_DECISION_DECLINE);

	f[FX_AMOUNT] = vigil_value_num(10); /* home alone: -5, clamped to 0 */
	assert_int_equal(rules_prog_eval(prog, NULL, f, FX_NSLOTS, &res), VIGIL_OK);
	assert_int_equal(res.points, -5);
	assert_true(res.score == 0.0);
	rules_prog_free(prog);
}

static void
test_score_model_adjust_bounded(void **state)
{
	rules_prog  *prog = compile_ok(score_program);
	vigil_value  f[FX_NSLOTS];
	rules_result res;

	(void)state;
	fx_features(f);
	f[FX_AMOUNT] = vigil_value_num(5000); /* points 115, bounded to +10 */
	assert_int_equal(rules_prog_eval(prog, NULL, f, FX_NSLOTS, &res), VIGIL_OK);
	rules_result_model(prog, 0.2, &res);
	assert_true(fabs(res.score - 30.0) < 1e-9);
	assert_int_equal(res.points, 115);
	assert_int_equal(res.decision, VIGIL_DECISION_ALLOW);
	rules_result_model(prog, 0.95, &res); /* 95 + 10, clamped */
	assert_true(res.score == 100.0);
	assert_int_equal(res.decision, VIGIL_DECISION_DECLINE);

	f[FX_AMOUNT] = vigil_value_num(10); /* home: -5, within the bound */
	assert_int_equal(rules_prog_eval(prog, NULL, f, FX_NSLOTS, &res), VIGIL_OK);
	rules_result_model(prog, 0.5, &res);
	assert_true(fabs(res.score - 45.0) < 1e-9);
	assert_int_equal(res.decision, VIGIL_DECISION_REVIEW);
	rules_result_model(prog, 0.01, &res); /* 1 - 5, clamped */
	assert_true(res.score == 0.0);
	rules_prog_free(prog);

	/* a probability exactly at a band is in it (100 x 0.57 is 56.99999999999999) */
	prog = compile_ok("band review = 57\nband decline = 58\n"
	    "rule large { when amount > 100 score 30 reason \"large\" }\n");
	f[FX_AMOUNT] = vigil_value_num(10);
	assert_int_equal(rules_prog_eval(prog, NULL, f, FX_NSLOTS, &res), VIGIL_OK);
	rules_result_model(prog, 0.57, &res);
	assert_true(res.score < 57.0); /* what makes the case */
	assert_int_equal(res.decision, VIGIL_DECISION_REVIEW);
	rules_result_model(prog, 0.58, &res);
	assert_int_equal(res.decision, VIGIL_DECISION_DECLINE);
	rules_result_model(prog, 0.5699, &res);
	assert_int_equal(res.decision, VIGIL_DECISION_ALLOW);
	rules_prog_free(prog);

	/* without 'adjust' the points do not move the model's score */
	prog = compile_ok("rule large { when amount > 100 score 30 reason \"large\" }\n");
	assert_int_equal(rules_prog_adjust_max(prog), 0);
	f[FX_AMOUNT] = vigil_value_num(500);
	assert_int_equal(rules_prog_eval(prog, NULL, f, FX_NSLOTS, &res), VIGIL_OK);
	assert_true(res.score == 30.0);
	rules_result_model(prog, 0.123, &res);
	assert_true(fabs(res.score - 12.3) < 1e-9);
	assert_int_equal(res.points, 30);
	rules_prog_free(prog);
}

/* A band set by a threshold tuned on the score: its fallback until the
 * tuned value is set, then the tuned value, for the rules' points and the
 * model's score alike; decline never falls below review. */
static void
test_bands_tuned(void **state)
{
	static const char src[] =
	    "threshold review_at = alert_rate(score, 0.005) fallback 40 min_samples 100\n"
	    "threshold decline_at = precision(score, 0.9) fallback 80 min_samples 50\n"
	    "band review = review_at\n"
	    "band decline = decline_at\n"
	    "rule large { when amount > 100 score 30 reason \"large\" }\n";
	rules_prog          *prog = compile_ok(src);
	rules_tvals         *tv = rules_tvals_new(prog);
	rules_threshold_info ti;
	vigil_value          f[FX_NSLOTS];
	rules_result         res;
	double               r, d;

	(void)state;
	assert_non_null(tv);
	rules_prog_threshold(prog, 0, &ti);
	assert_string_equal(ti.feature, "score");
	assert_true(ti.feature_slot == RULES_SLOT_SCORE);
	rules_prog_bands(prog, &r, &d);
	assert_true(r == 40 && d == 80);
	fx_features(f);
	f[FX_AMOUNT] = vigil_value_num(500); /* 30 points */
	assert_int_equal(rules_prog_eval(prog, tv, f, FX_NSLOTS, &res), VIGIL_OK);
	assert_true(res.review_at == 40 && res.decline_at == 80);
	{
		double br, bd;

		rules_prog_bands_in_force(prog, tv, &br, &bd);
		assert_true(br == 40 && bd == 80);
	}
	assert_int_equal(res.decision, VIGIL_DECISION_ALLOW);
	rules_result_model(prog, 0.5, &res);
	assert_int_equal(res.decision, VIGIL_DECISION_REVIEW);
	/* tuned: review from 12.5, decline from 45 */
	assert_int_equal(rules_tvals_set(tv, 0, NULL, 12.5), VIGIL_OK);
	assert_int_equal(rules_tvals_set(tv, 1, NULL, 45), VIGIL_OK);
	assert_int_equal(rules_prog_eval(prog, tv, f, FX_NSLOTS, &res), VIGIL_OK);
	assert_true(res.review_at == 12.5 && res.decline_at == 45);
	{
		double br, bd;

		rules_prog_bands_in_force(prog, tv, &br, &bd);
		assert_true(br == 12.5 && bd == 45);
	}
	assert_int_equal(res.decision, VIGIL_DECISION_REVIEW);
	rules_result_model(prog, 0.12, &res);
	assert_int_equal(res.decision, VIGIL_DECISION_ALLOW);
	rules_result_model(prog, 0.5, &res);
	assert_int_equal(res.decision, VIGIL_DECISION_DECLINE);
	/* a decline tuned below review is review */
	assert_int_equal(rules_tvals_set(tv, 1, NULL, 5), VIGIL_OK);
	assert_int_equal(rules_prog_eval(prog, tv, f, FX_NSLOTS, &res), VIGIL_OK);
	assert_true(res.decline_at == 12.5);
	rules_tvals_free(tv);
	rules_prog_free(prog);
}

/* A tuned band's fallback is reported as the file wrote it, the number
 * evaluation decides with: 50.4, not 50 (a score of 50.2 is allowed). */
static void
test_bands_fallback_exact(void **state)
{
	static const char src[] =
	    "threshold review_at = alert_rate(score, 0.005) fallback 50.4 min_samples 100\n"
	    "band review = review_at\n"
	    "rule large { when amount > 100 score 30 reason \"large\" }\n";
	rules_prog  *prog = compile_ok(src);
	vigil_value  f[FX_NSLOTS];
	rules_result res;
	double       r, d;

	(void)state;
	rules_prog_bands(prog, &r, &d);
	assert_true(r == 50.4 && d == 100);
	fx_features(f);
	assert_int_equal(rules_prog_eval(prog, NULL, f, FX_NSLOTS, &res), VIGIL_OK);
	assert_true(res.review_at == r && res.decline_at == d);
	rules_result_model(prog, 0.502, &res);
	assert_int_equal(res.decision, VIGIL_DECISION_ALLOW);
	rules_prog_free(prog);
}

static void
test_score_decide_floor(void **state)
{
	rules_prog     *prog = compile_ok(score_program);
	vigil_value     f[FX_NSLOTS];
	rules_result    res;
	rules_rule_info info;
	uint32_t        i;

	(void)state;
	assert_int_equal(rules_prog_rule_find(prog, "blocked", &i), VIGIL_OK);
	rules_prog_rule(prog, i, &info);
	assert_int_equal(info.decide, VIGIL_DECISION_DECLINE);
	assert_int_equal(info.points, 0);
	assert_int_equal(rules_prog_rule_find(prog, "large", &i), VIGIL_OK);
	rules_prog_rule(prog, i, &info);
	assert_int_equal(info.decide, VIGIL_DECISION_ALLOW);

	fx_features(f);
	f[FX_AMOUNT] = vigil_value_num(10);
	f[FX_COUNTRY] = vigil_value_str("KP", 2);
	assert_int_equal(rules_prog_eval(prog, NULL, f, FX_NSLOTS, &res), VIGIL_OK);
	assert_true(res.score == 0.0); /* the floor does not change the score */
	assert_int_equal(res.floor, VIGIL_DECISION_DECLINE);
	assert_int_equal(res.decision, VIGIL_DECISION_DECLINE);
	rules_result_model(prog, 0.01, &res);
	assert_true(fabs(res.score - 1.0) < 1e-9);
	assert_int_equal(res.decision, VIGIL_DECISION_DECLINE);

	/* review floor: a high score still declines; the shadow one does not decide */
	f[FX_COUNTRY] = vigil_value_str("XX", 2);
	assert_int_equal(rules_prog_eval(prog, NULL, f, FX_NSLOTS, &res), VIGIL_OK);
	assert_int_equal(res.points, 5);
	assert_int_equal(res.floor, VIGIL_DECISION_REVIEW);
	assert_int_equal(res.decision, VIGIL_DECISION_REVIEW);
	rules_result_model(prog, 0.9, &res);
	assert_int_equal(res.decision, VIGIL_DECISION_DECLINE);
	rules_prog_free(prog);
}

static void
test_introspection(void **state)
{
	rules_prog     *prog = compile_ok(program);
	rules_rule_info info;
	uint32_t        i, n;
	double          review, decline;
	const uint32_t *slots;

	(void)state;
	assert_string_equal(rules_prog_version(prog), "7.1");
	assert_int_equal(strlen(rules_prog_hash(prog)), 32);
	assert_int_equal(rules_prog_nrules(prog), 7);
	rules_prog_rule(prog, 0, &info);
	assert_string_equal(info.name, "large");
	assert_string_equal(info.reason, "large amount");
	assert_int_equal(info.points, 30);
	assert_int_equal(info.mode, RULES_MODE_ACTIVE);
	assert_int_equal(info.ntags, 2);
	assert_string_equal(info.tags[1], "simple");
	assert_int_equal(info.line, 10);
	assert_string_equal(rules_prog_rule_condition(prog, 0), "amount > big");
	assert_int_equal(rules_prog_rule_find(prog, "try_new", &i), VIGIL_OK);
	assert_int_equal(i, 4);
	rules_prog_rule(prog, i, &info);
	assert_int_equal(info.mode, RULES_MODE_SHADOW);
	assert_string_equal(rules_mode_name(info.mode), "shadow");
	assert_int_equal(rules_prog_rule_find(prog, "nope", &i), VIGIL_ENOTFOUND);
	rules_prog_bands(prog, &review, &decline);
	assert_true(review == 30 && decline == 60);
	/* lat is read only by the disabled rule: not used */
	slots = rules_prog_slots_used(prog, &n);
	assert_int_equal(n, 5);
	assert_int_equal(slots[0], FX_AMOUNT);
	assert_int_equal(slots[1], FX_COUNTRY);
	assert_int_equal(slots[2], FX_MCC);
	assert_int_equal(slots[3], FX_ZSCORE);
	assert_int_equal(slots[4], FX_MERCHANT_RATE);
	for (uint32_t k = 0; k < n; k++)
		assert_int_not_equal(slots[k], FX_LAT);
	rules_prog_free(prog);
}

static void
test_thresholds_info(void **state)
{
	rules_prog          *prog = compile_ok(program);
	rules_threshold_info ti;

	(void)state;
	assert_int_equal(rules_prog_nthresholds(prog), 5);
	rules_prog_threshold(prog, 0, &ti);
	assert_string_equal(ti.name, "big");
	assert_int_equal(ti.kind, RULES_TUNE_CONST);
	assert_true(ti.fallback == 100);
	assert_null(ti.feature);
	rules_prog_threshold(prog, 1, &ti);
	assert_int_equal(ti.kind, RULES_TUNE_PERCENTILE);
	assert_string_equal(ti.feature, "card.amount_zscore");
	assert_int_equal(ti.feature_slot, FX_ZSCORE);
	assert_true(ti.param == 99.5);
	assert_true(ti.fallback == 4);
	assert_int_equal(ti.min_samples, 1000);
	assert_null(ti.group_by);
	rules_prog_threshold(prog, 2, &ti);
	assert_string_equal(ti.group_by, "mcc");
	assert_int_equal(ti.group_slot, FX_MCC);
	assert_int_equal(ti.group_type, VIGIL_T_NUM);
	rules_prog_threshold(prog, 3, &ti);
	assert_int_equal(ti.kind, RULES_TUNE_ALERT_RATE);
	assert_string_equal(ti.group_by, "country");
	assert_int_equal(ti.group_type, VIGIL_T_STR);
	rules_prog_threshold(prog, 4, &ti);
	assert_int_equal(ti.kind, RULES_TUNE_PRECISION);
	assert_true(ti.param == 0.3);
	rules_prog_free(prog);
}

/* The prog owns every string it exposes: programs on top free the schema
 * right after compiling (app_rules_load does), then read threshold infos. */
static void
test_thresholds_outlive_schema(void **state)
{
	rules_schema        *own = fx_schema();
	rules_prog          *prog = NULL;
	rules_diags          diags;
	rules_threshold_info ti;

	(void)state;
	assert_int_equal(rules_compile("t.rules", program, strlen(program), own, NULL, &prog,
	    &diags), VIGIL_OK);
	rules_schema_free(own);
	rules_prog_threshold(prog, 1, &ti);
	assert_string_equal(ti.feature, "card.amount_zscore");
	rules_prog_threshold(prog, 2, &ti);
	assert_string_equal(ti.group_by, "mcc");
	rules_prog_threshold(prog, 3, &ti);
	assert_string_equal(ti.group_by, "country");
	rules_prog_free(prog);
}

static bool
hit(const rules_prog *prog, const uint16_t *idx, uint32_t n, const char *name)
{
	for (uint32_t i = 0; i < n; i++) {
		rules_rule_info info;

		rules_prog_rule(prog, idx[i], &info);
		if (strcmp(info.name, name) == 0)
			return true;
	}
	return false;
}

static void
test_eval_decisions(void **state)
{
	rules_prog  *prog = compile_ok(program);
	vigil_value  f[FX_NSLOTS];
	rules_result res;

	(void)state;
	fx_features(f); /* amount 120.5 GB, zscore 2.5, merchant rate 0.04, lat set */
	assert_int_equal(rules_prog_eval(prog, NULL, f, FX_NSLOTS, &res), VIGIL_OK);
	/* large (30) + trusted (-5); the disabled rule would add 99 */
	assert_int_equal(res.score, 25);
	assert_int_equal(res.nhits, 2);
	assert_true(hit(prog, res.hits, res.nhits, "large"));
	assert_true(hit(prog, res.hits, res.nhits, "trusted"));
	assert_int_equal(res.decision, VIGIL_DECISION_ALLOW);
	assert_int_equal(res.nshadow, 0);

	f[FX_ZSCORE] = vigil_value_num(5);
	f[FX_MERCHANT_RATE] = vigil_value_num(0.06);
	assert_int_equal(rules_prog_eval(prog, NULL, f, FX_NSLOTS, &res), VIGIL_OK);
	assert_int_equal(res.score, 65); /* 30 + 40 - 5 */
	assert_int_equal(res.decision, VIGIL_DECISION_DECLINE);
	/* the shadow rule is reported apart and does not count */
	assert_int_equal(res.nshadow, 1);
	assert_int_equal(res.shadow_score, 25);
	assert_true(hit(prog, res.shadow, res.nshadow, "try_new"));
	assert_false(hit(prog, res.hits, res.nhits, "try_new"));

	f[FX_MERCHANT_RATE] = vigil_value_missing();
	f[FX_COUNTRY] = vigil_value_str("US", 2);
	assert_int_equal(rules_prog_eval(prog, NULL, f, FX_NSLOTS, &res), VIGIL_OK);
	assert_int_equal(res.score, 30);
	assert_int_equal(res.decision, VIGIL_DECISION_REVIEW); /* exactly at the band */

	/* a short vector is refused, never read past */
	assert_int_equal(rules_prog_eval(prog, NULL, f, FX_NSLOTS - 1, &res), VIGIL_EINVAL);
	rules_prog_free(prog);
}

static void
test_default_bands(void **state)
{
	rules_prog *prog = compile_ok("rule a { when true score 1 reason \"x\" }\n");
	double      review, decline;

	(void)state;
	rules_prog_bands(prog, &review, &decline);
	assert_true(review == 50 && decline == 100);
	assert_string_equal(rules_prog_version(prog), "");
	rules_prog_free(prog);
}

static void
test_tvals(void **state)
{
	rules_prog    *prog = compile_ok(program), *other = compile_ok(program);
	rules_tvals   *tv = rules_tvals_new(prog);
	vigil_value    f[FX_NSLOTS], g;
	rules_result   res;
	double         v;
	rules_tval_src src;

	(void)state;
	assert_non_null(tv);
	fx_features(f);
	/* fresh: every threshold is its fallback */
	assert_int_equal(rules_tvals_value(prog, tv, 2, f, FX_NSLOTS, &v, &src), VIGIL_OK);
	assert_true(v == 500);
	assert_int_equal(src, RULES_TVAL_FALLBACK);
	/* per group (mcc is a number) */
	g = vigil_value_num(5411);
	assert_int_equal(rules_tvals_set(tv, 2, &g, 100), VIGIL_OK);
	g = vigil_value_num(7995);
	assert_int_equal(rules_tvals_set(tv, 2, &g, 50), VIGIL_OK);
	assert_int_equal(rules_tvals_value(prog, tv, 2, f, FX_NSLOTS, &v, &src), VIGIL_OK);
	assert_true(v == 100);
	assert_int_equal(src, RULES_TVAL_GROUP);
	assert_int_equal(rules_prog_eval(prog, tv, f, FX_NSLOTS, &res), VIGIL_OK);
	assert_true(hit(prog, res.hits, res.nhits, "mcc_large"));
	/* unknown group: global when set, else fallback */
	f[FX_MCC] = vigil_value_num(1234);
	assert_int_equal(rules_tvals_value(prog, tv, 2, f, FX_NSLOTS, &v, &src), VIGIL_OK);
	assert_int_equal(src, RULES_TVAL_FALLBACK);
	assert_int_equal(rules_tvals_set(tv, 2, NULL, 110), VIGIL_OK);
	assert_int_equal(rules_tvals_value(prog, tv, 2, f, FX_NSLOTS, &v, &src), VIGIL_OK);
	assert_true(v == 110);
	assert_int_equal(src, RULES_TVAL_GLOBAL);
	/* missing group value: global */
	f[FX_MCC] = vigil_value_missing();
	assert_int_equal(rules_tvals_value(prog, tv, 2, f, FX_NSLOTS, &v, &src), VIGIL_OK);
	assert_int_equal(src, RULES_TVAL_GLOBAL);
	/* string groups, many of them (the table grows) */
	for (int k = 0; k < 1000; k++) {
		char key[16];
		int  n = snprintf(key, sizeof key, "C%03d", k);

		g = vigil_value_str(key, (uint32_t)n);
		assert_int_equal(rules_tvals_set(tv, 3, &g, k), VIGIL_OK);
	}
	g = vigil_value_str("GB", 2);
	assert_int_equal(rules_tvals_set(tv, 3, &g, 120), VIGIL_OK);
	assert_int_equal(rules_tvals_set(tv, 3, &g, 119), VIGIL_OK); /* replaces */
	assert_int_equal(rules_tvals_value(prog, tv, 3, f, FX_NSLOTS, &v, &src), VIGIL_OK);
	assert_true(v == 119);
	f[FX_COUNTRY] = vigil_value_str("C500", 4);
	assert_int_equal(rules_tvals_value(prog, tv, 3, f, FX_NSLOTS, &v, &src), VIGIL_OK);
	assert_true(v == 500);
	/* constants stay constant; bad calls are refused */
	assert_int_equal(rules_tvals_set(tv, 0, NULL, 1), VIGIL_OK);
	assert_int_equal(rules_tvals_value(prog, tv, 0, f, FX_NSLOTS, &v, &src), VIGIL_OK);
	assert_true(v == 100);
	g = vigil_value_num(1);
	assert_int_equal(rules_tvals_set(tv, 1, &g, 1), VIGIL_EINVAL); /* ungrouped */
	g = vigil_value_missing();
	assert_int_equal(rules_tvals_set(tv, 2, &g, 1), VIGIL_EINVAL);
	assert_int_equal(rules_tvals_set(tv, 99, NULL, 1), VIGIL_EINVAL);
	assert_int_equal(rules_tvals_set(tv, 2, NULL, 0.0 / 0.0), VIGIL_EINVAL);
	/* tvals belong to one prog */
	assert_int_equal(rules_prog_eval(other, tv, f, FX_NSLOTS, &res), VIGIL_EINVAL);
	rules_tvals_free(tv);
	rules_prog_free(prog);
	rules_prog_free(other);
}

static void
test_reads(void **state)
{
	rules_prog *prog = compile_ok("threshold t = 3\n"
	                              "rule a { when amount > t and (amount < 10 * t or mcc == 5411) score 1 "
	                              "reason \"x\" }\n");
	rules_read  reads[8];
	uint32_t    n;

	(void)state;
	n = rules_prog_rule_reads(prog, 0, reads, 8);
	assert_int_equal(n, 3);
	assert_string_equal(reads[0].name, "amount");
	assert_false(reads[0].threshold);
	assert_int_equal(reads[0].index, FX_AMOUNT);
	assert_string_equal(reads[1].name, "t");
	assert_true(reads[1].threshold);
	assert_string_equal(reads[2].name, "mcc");
	rules_prog_free(prog);
	/* conditions are shown on one line, canonically spaced */
	prog = compile_ok("rule a {\n  when - amount < - 3\n    and min( 1,amount ) >= 2 # c\n"
	                  "    or country in [ \"GB\" ]\n  score 1 reason \"x\" }\n");
	assert_string_equal(rules_prog_rule_condition(prog, 0),
	    "-amount < -3 and min(1, amount) >= 2 or country in [\"GB\"]");
	rules_prog_free(prog);
	prog = compile_ok("threshold t = 3\n"
	                  "rule a { when amount > t and (amount < 10 * t or mcc == 5411) score 1 "
	                  "reason \"x\" }\n");
	/* a short array still gets the true total */
	assert_int_equal(rules_prog_rule_reads(prog, 0, reads, 1), 3);
	assert_int_equal(rules_prog_rule_reads(prog, 5, reads, 8), 0);
	rules_prog_free(prog);
	/* every argument of min() and max() is read, not only the first:
	 * explain must show the missing one that made the rule unknown */
	prog = compile_ok("threshold t = 3\n"
	                  "rule a { when min(amount, card.count_7d) > 1 or "
	                  "max(t, card.amount_zscore, amount, mcc) > 0 score 1 reason \"x\" }\n");
	n = rules_prog_rule_reads(prog, 0, reads, 8);
	assert_int_equal(n, 5);
	assert_string_equal(reads[0].name, "amount");
	assert_string_equal(reads[1].name, "card.count_7d");
	assert_string_equal(reads[2].name, "t");
	assert_true(reads[2].threshold);
	assert_string_equal(reads[3].name, "card.amount_zscore");
	assert_string_equal(reads[4].name, "mcc");
	rules_prog_free(prog);
}

static void
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

static void
test_list_files_and_hash(void **state)
{
	char        dir[] = "/tmp/vigil-rules-test-XXXXXX";
	char        rpath[256], lpath[256], npath[256], hash1[33];
	rules_prog *prog = NULL;
	rules_diags diags;
	vigil_value f[FX_NSLOTS];
	rules_outcome o;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(rpath, sizeof rpath, "%s/r.rules", dir);
	snprintf(lpath, sizeof lpath, "%s/bins.txt", dir);
	snprintf(npath, sizeof npath, "%s/mccs.txt", dir);
	write_file(rpath, "list bins = prefix file \"bins.txt\"\n"
	                  "list mccs = number file \"mccs.txt\"\n"
	                  "rule a { when card_id in bins and mcc in mccs score 1 reason \"x\" }\n");
	write_file(lpath, "# test ranges\n\n  411111  \n5500\n411111\n");
	write_file(npath, "5411\n7995 \n");
	assert_int_equal(rules_load_file(rpath, schema, NULL, &prog, &diags), VIGIL_OK);
	fx_features(f);
	assert_int_equal(rules_prog_rule_eval(prog, NULL, f, FX_NSLOTS, 0, &o), VIGIL_OK);
	assert_int_equal(o, RULES_OUTCOME_TRUE);
	snprintf(hash1, sizeof hash1, "%s", rules_prog_hash(prog));
	/* the files read, as opened, for vigild's watch */
	assert_int_equal(rules_prog_nlist_files(prog), 2);
	assert_string_equal(rules_prog_list_file(prog, 0), lpath);
	assert_string_equal(rules_prog_list_file(prog, 1), npath);
	assert_null(rules_prog_list_file(prog, 2));
	rules_prog_free(prog);
	prog = NULL;
	/* inline lists read no file; an explicit base_dir is where files are opened */
	{
		static const char inl[] = "list l = [\"a\"]\n"
		    "rule a { when card_id in l score 1 reason \"x\" }\n";
		static const char fil[] = "list l = file \"bins.txt\"\n"
		    "rule a { when card_id in l score 1 reason \"x\" }\n";
		rules_opts opts = { .base_dir = dir };

		assert_int_equal(rules_compile("i.rules", inl, sizeof inl - 1, schema, NULL, &prog,
		    &diags), VIGIL_OK);
		assert_int_equal(rules_prog_nlist_files(prog), 0);
		assert_null(rules_prog_list_file(prog, 0));
		rules_prog_free(prog);
		prog = NULL;
		assert_int_equal(rules_compile("f.rules", fil, sizeof fil - 1, schema, &opts, &prog,
		    &diags), VIGIL_OK);
		assert_int_equal(rules_prog_nlist_files(prog), 1);
		assert_string_equal(rules_prog_list_file(prog, 0), lpath);
		rules_prog_free(prog);
		prog = NULL;
	}

	/* same bytes, same hash; a list file change changes it */
	assert_int_equal(rules_load_file(rpath, schema, NULL, &prog, &diags), VIGIL_OK);
	assert_string_equal(rules_prog_hash(prog), hash1);
	rules_prog_free(prog);
	prog = NULL;
	write_file(lpath, "411112\n");
	assert_int_equal(rules_load_file(rpath, schema, NULL, &prog, &diags), VIGIL_OK);
	assert_string_not_equal(rules_prog_hash(prog), hash1);
	assert_int_equal(rules_prog_rule_eval(prog, NULL, f, FX_NSLOTS, 0, &o), VIGIL_OK);
	assert_int_equal(o, RULES_OUTCOME_FALSE);
	rules_prog_free(prog);
	prog = NULL;
	/* a line moved from one list file to the next: the same bytes in a
	 * row, not the same lists, nor the same hash */
	write_file(lpath, "411111\n5411\n");
	write_file(npath, "7995\n");
	assert_int_equal(rules_load_file(rpath, schema, NULL, &prog, &diags), VIGIL_OK);
	snprintf(hash1, sizeof hash1, "%s", rules_prog_hash(prog));
	rules_prog_free(prog);
	prog = NULL;
	write_file(lpath, "411111\n");
	write_file(npath, "5411\n7995\n");
	assert_int_equal(rules_load_file(rpath, schema, NULL, &prog, &diags), VIGIL_OK);
	assert_string_not_equal(rules_prog_hash(prog), hash1);
	rules_prog_free(prog);
	prog = NULL;

	/* a bad number in a number list is reported with the file's line */
	write_file(npath, "5411\nabc\n");
	assert_int_equal(rules_load_file(rpath, schema, NULL, &prog, &diags), VIGIL_ESYNTAX);
	assert_null(prog);
	assert_int_equal(diags.count, 1);
	assert_int_equal(diags.items[0].line, 2);
	assert_int_equal(diags.items[0].col, 25);
	assert_string_equal(diags.items[0].msg, "list file 'mccs.txt': line 2: not a number");
	/* decimal, as in the rule file: strtod's hex, "5." and ".5" are not */
	write_file(npath, "5411\n-2.5e1\n0x10\n");
	assert_int_equal(rules_load_file(rpath, schema, NULL, &prog, &diags), VIGIL_ESYNTAX);
	assert_null(prog);
	assert_string_equal(diags.items[0].msg, "list file 'mccs.txt': line 3: not a number");
	write_file(npath, "5.\n");
	assert_int_equal(rules_load_file(rpath, schema, NULL, &prog, &diags), VIGIL_ESYNTAX);
	write_file(npath, ".5\n");
	assert_int_equal(rules_load_file(rpath, schema, NULL, &prog, &diags), VIGIL_ESYNTAX);

	/* too many items */
	{
		rules_opts opts = { .max_list_items = 1 };

		write_file(npath, "1\n2\n");
		assert_int_equal(rules_load_file(rpath, schema, &opts, &prog, &diags), VIGIL_ETOOBIG);
		assert_string_equal(diags.items[0].msg, "list file 'mccs.txt': more than 1 items (line 2)");
	}

	/* a byte order mark (an editor's UTF-8 mark) would make the first item
	 * "\xef\xbb\xbf411111", a prefix no card has: refused, not kept */
	write_file(npath, "5411\n");
	write_file(lpath, "\xef\xbb\xbf" "411111\n5500\n");
	assert_int_equal(rules_load_file(rpath, schema, NULL, &prog, &diags), VIGIL_ESYNTAX);
	assert_null(prog);
	assert_int_equal(diags.count, 1);
	assert_string_equal(diags.items[0].msg, "list file 'bins.txt': line 1: starts with a UTF-8 "
	    "byte order mark (save the file without it)");
	/* items are UTF-8 (they reach JSON): a Latin-1 byte is named with its line */
	write_file(lpath, "411111\ncaf\xe9\n");
	assert_int_equal(rules_load_file(rpath, schema, NULL, &prog, &diags), VIGIL_ESYNTAX);
	assert_null(prog);
	assert_string_equal(diags.items[0].msg, "list file 'bins.txt': line 2: byte 0xe9 is not "
	    "UTF-8 (save the file as UTF-8)");
	write_file(lpath, "411111\ncaf\xc3\xa9\n");
	assert_int_equal(rules_load_file(rpath, schema, NULL, &prog, &diags), VIGIL_OK);
	rules_prog_free(prog);
	prog = NULL;

	/* a FIFO (nobody writes) as a list file or as the rule file is
	 * refused, not waited on: vigild's reload would hang on it */
	unlink(npath);
	assert_int_equal(mkfifo(npath, 0600), 0);
	assert_int_equal(rules_load_file(rpath, schema, NULL, &prog, &diags), VIGIL_EIO);
	assert_string_equal(diags.items[0].msg, "list file 'mccs.txt' is not a regular file");
	unlink(rpath);
	assert_int_equal(mkfifo(rpath, 0600), 0);
	assert_int_equal(rules_load_file(rpath, schema, NULL, &prog, &diags), VIGIL_EIO);
	assert_int_equal(diags.items[0].line, 0);
	assert_string_equal(diags.items[0].msg, "not a regular file");

	/* a missing rule file is a whole-file diagnostic */
	unlink(lpath);
	unlink(npath);
	unlink(rpath);
	assert_int_equal(rules_load_file(rpath, schema, NULL, &prog, &diags), VIGIL_ENOTFOUND);
	assert_int_equal(diags.items[0].line, 0);
	assert_string_equal(diags.file, rpath);
	rmdir(dir);
}

/* Messages are valid UTF-8 whatever the file holds: they quote source bytes,
 * and vigil-rules --json and vigild's /v1/rules put them in JSON, which
 * refuses (drops) a string that is not UTF-8. */
static void
test_diag_utf8(void **state)
{
	static const char esc[] = "rule a { when country == \"\\\xc3\xa9\" score 1 reason \"x\" }";
	rules_prog *prog = NULL;
	rules_diags diags;

	(void)state;
	assert_int_equal(rules_compile("t.rules", esc, sizeof esc - 1, schema, NULL, &prog, &diags),
	    VIGIL_ESYNTAX);
	assert_int_equal(diags.count, 1);
	assert_int_equal(diags.items[0].col, 27);
	assert_string_equal(diags.items[0].msg,
	    "unknown escape '\\?' in string (use \\\" \\\\ \\n \\t)");
}

static void
test_caps(void **state)
{
	rules_prog *prog = NULL;
	rules_diags diags;
	rules_opts  opts = { 0 };
	char        src[8192];
	size_t      n = 0;

	(void)state;
	/* file size */
	opts.max_file_bytes = 10;
	assert_int_equal(rules_compile("c", "rule a { when true score 1 reason \"x\" }", 40, schema, &opts,
	    &prog, &diags), VIGIL_ETOOBIG);
	assert_string_equal(diags.items[0].msg, "file is 40 bytes, over the limit of 10");
	/* rule count */
	opts.max_file_bytes = 0;
	opts.max_rules = 2;
	for (int i = 0; i < 3; i++)
		n += (size_t)snprintf(src + n, sizeof src - n, "rule r%d { when true score 1 reason \"x\" }\n", i);
	assert_int_equal(rules_compile("c", src, n, schema, &opts, &prog, &diags), VIGIL_ESYNTAX);
	assert_int_equal(diags.items[0].line, 3);
	assert_string_equal(diags.items[0].msg, "more than 2 rules");
	/* expression depth */
	opts.max_rules = 0;
	opts.max_depth = 8;
	n = (size_t)snprintf(src, sizeof src, "rule a { when (((((amount > 1))))) score 1 reason \"x\" }\n");
	assert_int_equal(rules_compile("c", src, n, schema, &opts, &prog, &diags), VIGIL_OK);
	rules_prog_free(prog);
	prog = NULL;
	n = (size_t)snprintf(src, sizeof src, "rule a { when ((((((((((amount > 1)))))))))) score 1 reason \"x\" }\n");
	assert_int_equal(rules_compile("c", src, n, schema, &opts, &prog, &diags), VIGIL_ETOOBIG);
	assert_int_equal(diags.items[0].col, 23);
	n = (size_t)snprintf(src, sizeof src, "rule a { when 1+1+1+1+1+1+1+1+1+1 > 1 score 1 reason \"x\" }\n");
	assert_int_equal(rules_compile("c", src, n, schema, &opts, &prog, &diags), VIGIL_ETOOBIG);
	assert_string_equal(diags.items[0].msg, "expression nested deeper than 8 levels");
	n = (size_t)snprintf(src, sizeof src, "rule a { when not not not not not not not not not true score 1 reason \"x\" }\n");
	assert_int_equal(rules_compile("c", src, n, schema, &opts, &prog, &diags), VIGIL_ETOOBIG);
	/* the parser's own recursion is bounded too: 100,000 '(' or 'not' or '-' */
	{
		static const char *unit[] = { "(", "not ", "-" };

		for (int k = 0; k < 3; k++) {
			size_t ul = strlen(unit[k]), total = 100000 * ul + 64;
			char  *deep = malloc(total), *q = deep;

			assert_non_null(deep);
			q += sprintf(q, "rule a { when ");
			for (int j = 0; j < 100000; j++, q += ul)
				memcpy(q, unit[k], ul);
			q += sprintf(q, "1");
			opts.max_depth = 0;
			assert_int_equal(rules_compile("c", deep, (size_t)(q - deep), schema, NULL, &prog, &diags),
			    VIGIL_ETOOBIG);
			assert_string_equal(diags.items[0].msg, "expression nested deeper than 64 levels");
			free(deep);
		}
	}
	/* inline list items */
	opts.max_depth = 0;
	opts.max_list_items = 2;
	n = (size_t)snprintf(src, sizeof src, "list l = [1, 2, 3]\n");
	assert_int_equal(rules_compile("c", src, n, schema, &opts, &prog, &diags), VIGIL_ESYNTAX);
	assert_int_equal(diags.items[0].col, 17);
	assert_string_equal(diags.items[0].msg, "list has more than 2 items");
	assert_null(prog);
}

/* Errors past RULES_MAX_DIAGS are counted, not lost silently. */
static void
test_many_errors(void **state)
{
	char        src[16384];
	size_t      n = 0;
	rules_prog *prog = NULL;
	rules_diags diags;

	(void)state;
	for (int i = 0; i < 40; i++)
		n += (size_t)snprintf(src + n, sizeof src - n, "rule r%d { when > score 1 reason \"x\" }\n", i);
	assert_int_equal(rules_compile("m", src, n, schema, NULL, &prog, &diags), VIGIL_ESYNTAX);
	assert_int_equal(diags.count, RULES_MAX_DIAGS);
	assert_int_equal(diags.dropped, 40 - RULES_MAX_DIAGS);
	assert_int_equal(diags.items[RULES_MAX_DIAGS - 1].line, RULES_MAX_DIAGS);
}

static void
test_explain_print(void **state)
{
	rules_prog *prog = compile_ok(program);
	vigil_value f[FX_NSLOTS];
	char       *buf = NULL;
	size_t      len = 0;
	FILE       *out = open_memstream(&buf, &len);

	(void)state;
	fx_features(f);
	f[FX_MERCHANT_RATE] = vigil_value_missing();
	rules_explain_print(prog, NULL, f, FX_NSLOTS, out);
	fclose(out);
	assert_non_null(strstr(buf, "decision: allow  score: 25"));
	assert_non_null(strstr(buf, "FIRED   large  (+30, active)\n        reason: large amount\n"
	                            "        when amount > big\n          amount = 120.5\n"
	                            "          big = 100 (threshold, fallback)\n"));
	assert_non_null(strstr(buf, "unknown risky_merchant"));
	assert_non_null(strstr(buf, "merchant.fraud_rate_30d = missing"));
	free(buf);
	rules_prog_free(prog);
}

/* Empty input and comment-only files compile to an empty program. */
static void
test_empty(void **state)
{
	rules_prog  *prog = NULL;
	vigil_value  f[FX_NSLOTS];
	rules_result res;

	(void)state;
	fx_features(f);
	assert_int_equal(rules_compile("e", NULL, 0, schema, NULL, &prog, NULL), VIGIL_OK);
	assert_int_equal(rules_prog_nrules(prog), 0);
	assert_int_equal(rules_prog_eval(prog, NULL, f, FX_NSLOTS, &res), VIGIL_OK);
	assert_int_equal(res.decision, VIGIL_DECISION_ALLOW);
	rules_prog_free(prog);
	prog = compile_ok("# nothing\n\n# here\n");
	rules_prog_free(prog);
}

/* The one "did you mean" rule: Levenshtein within the cap, a missing
 * dotted prefix counts one edit, ties go to the closest length. */
static void
test_suggest(void **state)
{
	static const char *const cands[] = { "card.count_7d", "card.count_30d", "card.count_90d",
		NULL, "mcc", "haversine" };
	const size_t n = sizeof cands / sizeof cands[0];

	(void)state;
	assert_string_equal(rules_suggest("card.count_7", 12, cands, n, RULES_SUGGEST_BY_LENGTH),
	    "card.count_7d");
	assert_string_equal(rules_suggest("count_90d", 9, cands, n, RULES_SUGGEST_BY_LENGTH),
	    "card.count_90d");
	/* one edit from count_7d, one from count_90d: the same length wins */
	assert_string_equal(rules_suggest("card.count_9d", 13, cands, n, 3), "card.count_7d");
	assert_string_equal(rules_suggest("card.count_97d", 14, cands, n, 3), "card.count_90d");
	assert_string_equal(rules_suggest("mcx", 3, cands, n, RULES_SUGGEST_BY_LENGTH), "mcc");
	/* under 6 bytes, one edit at most unless the caller allows more */
	assert_null(rules_suggest("mxx", 3, cands, n, RULES_SUGGEST_BY_LENGTH));
	assert_string_equal(rules_suggest("mxx", 3, cands, n, 2), "mcc");
	assert_string_equal(rules_suggest("haversin", 8, cands, n, 2), "haversine");
	assert_null(rules_suggest("zzzzzzzz", 8, cands, n, 3));
	assert_null(rules_suggest("mcx", 3, cands, 0, 3));
	assert_null(rules_suggest(NULL, 0, cands, n, 3));
}

/* A file of n rules r0..r<n-1>, each one line: "rule rI { when amount > 0
 * or amount > 1 ... (terms terms) score 1 reason "x" }": 3 nodes a term
 * and one per `or`/`and`, so 4 * terms - 1 nodes a rule (the terms in
 * parenthesised groups of 40 joined by `and`, under the nesting limit).
 * malloc'd. */
static char *
rules_of_terms(int n, int terms)
{
	size_t cap = (size_t)n * ((size_t)terms * 24 + 64) + 1, len = 0;
	char  *src = malloc(cap);

	assert_non_null(src);
	for (int i = 0; i < n; i++) {
		len += (size_t)snprintf(src + len, cap - len, "rule r%d { when ", i);
		for (int t = 0; t < terms; t++)
			len += (size_t)snprintf(src + len, cap - len, "%s%samount > %d%s",
			    t == 0 ? "" : t % 40 == 0 ? " and " : " or ", t % 40 == 0 ? "(" : "", t,
			    t % 40 == 39 || t == terms - 1 ? ")" : "");
		len += (size_t)snprintf(src + len, cap - len, " score 1 reason \"x\" }\n");
	}
	return src;
}

static void
test_cost_budget(void **state)
{
	/* Issue 28, row 10: 950 rules of 50 `or` terms passed check and
	 * deploy and made every evaluation 15 times slower. The default rule
	 * file costs 427 nodes, 29 at most in one rule. */
	rules_prog *prog = NULL;
	rules_diags diags;
	rules_opts  o = { 0 };
	char       *src;

	(void)state;
	/* 50 terms: 199 nodes, within a rule's budget (256) */
	src = rules_of_terms(1, 50);
	rules_prog_free(compile_ok(src));
	free(src);
	/* 70 terms: 279 nodes */
	src = rules_of_terms(1, 70);
	assert_int_equal(rules_compile("t.rules", src, strlen(src), schema, NULL, &prog, &diags),
	    VIGIL_ETOOBIG);
	assert_null(prog);
	assert_int_equal(diags.count, 1);
	assert_int_equal(diags.items[0].line, 1);
	assert_int_equal(diags.items[0].col, 6);
	assert_string_equal(diags.items[0].msg, "rule 'r0' costs 279 nodes, over the budget of 256 "
	    "per rule (max_rule_nodes)");
	free(src);
	/* 101 rules of 199 nodes: over the file's 10,000 at the 51st (10,149),
	 * said once, at the rule that goes over */
	src = rules_of_terms(101, 50);
	assert_int_equal(rules_compile("t.rules", src, strlen(src), schema, NULL, &prog, &diags),
	    VIGIL_ETOOBIG);
	assert_null(prog);
	assert_int_equal(diags.count, 1);
	assert_int_equal(diags.items[0].line, 51);
	assert_int_equal(diags.items[0].col, 6);
	assert_string_equal(diags.items[0].msg, "rule 'r50' brings the file to 10149 nodes, over "
	    "the budget of 10000 per file (max_file_nodes)");
	/* a larger budget, chosen by the caller, takes it */
	o.max_file_nodes = 30000;
	assert_int_equal(rules_compile("t.rules", src, strlen(src), schema, &o, &prog, &diags),
	    VIGIL_OK);
	rules_prog_free(prog);
	prog = NULL;
	free(src);
	/* the file: refused, in one line */
	src = rules_of_terms(950, 50);
	assert_int_equal(rules_compile("t.rules", src, strlen(src), schema, NULL, &prog, &diags),
	    VIGIL_ETOOBIG);
	assert_int_equal(diags.count, 1);
	assert_int_equal(diags.items[0].line, 51);
	free(src);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_schema),
		cmocka_unit_test(test_diag_errinfo),
		cmocka_unit_test(test_introspection),
		cmocka_unit_test(test_thresholds_info),
		cmocka_unit_test(test_thresholds_outlive_schema),
		cmocka_unit_test(test_eval_decisions),
		cmocka_unit_test(test_default_bands),
		cmocka_unit_test(test_tvals),
		cmocka_unit_test(test_reads),
		cmocka_unit_test(test_list_files_and_hash),
		cmocka_unit_test(test_caps),
		cmocka_unit_test(test_diag_utf8),
		cmocka_unit_test(test_many_errors),
		cmocka_unit_test(test_explain_print),
		cmocka_unit_test(test_score_cold_start_is_points),
		cmocka_unit_test(test_score_model_adjust_bounded),
		cmocka_unit_test(test_score_decide_floor),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_bands_tuned),
		cmocka_unit_test(test_bands_fallback_exact),
		cmocka_unit_test(test_suggest),
		cmocka_unit_test(test_cost_budget),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
