/* SPDX-License-Identifier: MIT */
/*
 * tests/rules/test_rules_eval.c - the expression semantics table: every
 * operator and built-in, with present and missing operands, evaluated as a
 * rule condition over the fixture's standard transaction. Each row states
 * the three-valued outcome (docs/rules.md, "Missing values"); a rule fires
 * exactly when the outcome is true.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <stdint.h>

#include <cmocka.h>

#include "fixture.h"

#define T RULES_OUTCOME_TRUE
#define F RULES_OUTCOME_FALSE
#define U RULES_OUTCOME_UNKNOWN

static const char prelude[] =
    "list cl = [\"GB\", \"US\"]\n"
    "list bins = prefix [\"4111\", \"5500\", \"37\"]\n"
    "list nums = [1, 2.5, -3]\n"
    "list empty = []\n"
    "threshold t10 = 10\n"
    "threshold tuned = percentile(amount, 99) fallback 150\n";

static const struct {
	const char   *expr;
	rules_outcome want;
} table[] = {
	/* constants and comparisons */
	{ "true", T },
	{ "false", F },
	{ "amount > 100", T },
	{ "amount >= 120.5", T },
	{ "amount < 120.5", F },
	{ "amount <= 120.5", T },
	{ "amount != 120.5", F },
	{ "1e3 == 1000", T },
	{ "country == \"GB\"", T },
	{ "country != \"GB\"", F },
	{ "country == \"G\"", F },
	{ "country == \"GBR\"", F },
	{ "card.country_seen == false", T },
	{ "card.country_seen", F },
	{ "not card.country_seen", T },
	{ "not not card.country_seen", F },
	/* arithmetic, precedence, associativity */
	{ "amount + 10 == 130.5", T },
	{ "amount * 2 - 1 == 240", T },
	{ "-amount < 0", T },
	{ "- -amount == amount", T },
	{ "2 + 3 * 4 == 14", T },
	{ "(2 + 3) * 4 == 20", T },
	{ "10 - 4 - 3 == 3", T },
	{ "24 / 4 / 2 == 3", T },
	{ "amount % 100 == 20.5", T },
	{ "amount / 0 > 0", U },
	{ "amount / 0 is missing", T },
	{ "7 % 0 is missing", T },
	{ "1e308 * 10 is missing", T },
	{ "not true or true", T },
	{ "true or false and false", T },
	{ "(true or false) and false", F },
	/* missing values: Kleene logic */
	{ "card.count_7d > 3", U },
	{ "card.count_7d <= 3", U },
	{ "card.count_7d == card.count_7d", U },
	{ "not (card.count_7d > 3)", U },
	{ "card.count_7d > 3 or amount > 100", T },
	{ "amount > 100 or card.count_7d > 3", T },
	{ "card.count_7d > 3 or amount < 100", U },
	{ "card.count_7d > 3 and amount < 100", F },
	{ "amount < 100 and card.count_7d > 3", F },
	{ "card.count_7d > 3 and amount > 100", U },
	/* negations of and / or / coalesce (the evaluator's TRUE / FALSE tests) */
	{ "not (card.count_7d > 3 and amount > 100)", U },
	{ "not (card.count_7d > 3 and amount < 100)", T },
	{ "not (amount < 100 and card.count_7d > 3)", T },
	{ "not (card.count_7d > 3 or amount > 100)", F },
	{ "not (card.count_7d > 3 or amount < 100)", U },
	{ "not (amount < 100 or amount < 50)", T },
	{ "not not (card.count_7d > 3)", U },
	{ "not not (amount > 100)", T },
	{ "not (amount > 100 and not (card.count_7d > 3))", U },
	{ "not (amount > 100 and not (amount < 50))", F },
	{ "not (amount <= 100)", T },
	{ "not (amount >= 100)", F },
	{ "not (amount < 100)", T },
	{ "not (card.count_7d < 1)", U },
	{ "not coalesce(card.count_7d > 3, false)", T },
	{ "not coalesce(card.count_7d > 3, true)", F },
	{ "not coalesce(card.count_7d > 3, card.count_7d > 3)", U },
	{ "not coalesce(amount > 100, false)", F },
	{ "not coalesce(amount < 100, true)", T },
	{ "(card.count_7d > 3 or amount > 100) and not (card.count_7d > 3 and amount < 100)", T },
	{ "not (1 / 0 > 1)", U },
	{ "card.count_7d + 1 is missing", T },
	{ "-card.count_7d is missing", T },
	{ "card.count_7d is missing", T },
	{ "card.count_7d is not missing", F },
	{ "amount is missing", F },
	{ "present(card.count_7d)", F },
	{ "present(amount)", T },
	{ "present(device_id)", F },
	{ "coalesce(card.count_7d, 0) == 0", T },
	{ "coalesce(amount, 0) == 120.5", T },
	{ "coalesce(device_id, \"none\") == \"none\"", T },
	{ "coalesce(card.count_7d, card.count_7d) is missing", T },
	{ "device_id == \"x\"", U },
	{ "device_id != \"x\"", U },
	{ "device_id in [\"x\"]", U },
	{ "device_id not in [\"x\"]", U },
	{ "starts_with(device_id, \"x\")", U },
	{ "starts_with(device_id, bins)", U },
	{ "card.count_7d between 1 and 5", U },
	{ "amount between card.count_7d and 200", U },
	{ "min(amount, card.count_7d) is missing", T },
	{ "abs(card.count_7d) is missing", T },
	{ "hour(card.count_7d) is missing", T },
	{ "haversine(lat, lon, card.count_7d, 0) is missing", T },
	/* lists */
	{ "country in [\"GB\", \"US\"]", T },
	{ "country in [\"FR\"]", F },
	{ "country not in [\"FR\"]", T },
	{ "country not in cl", F },
	{ "country in cl", T },
	{ "country in empty", F },
	{ "mcc in [5411, 5812]", T },
	{ "mcc in [5812]", F },
	{ "-3 in nums", T },
	{ "2.5 in nums", T },
	{ "0 in nums", F },
	{ "card_id in bins", T },
	{ "card_id in cl", F },
	{ "\"37\" in bins", T },
	{ "\"3\" in bins", F },
	{ "\"\" in bins", F },
	{ "starts_with(card_id, \"4111\")", T },
	{ "starts_with(card_id, \"41\")", T }, /* "" is refused (errors.test) */
	{ "starts_with(card_id, \"5\")", F },
	{ "starts_with(card_id, \"411111abcd\")", F },
	{ "starts_with(card_id, bins)", T },
	{ "starts_with(card_id, cl)", F },
	{ "starts_with(\"GBR\", cl)", T },
	{ "starts_with(card_id, [\"5\", \"4111\"])", T },
	{ "starts_with(card_id, [\"5\", \"37\"])", F },
	{ "starts_with(device_id, [\"x\"])", U },
	/* between */
	{ "amount between 100 and 200", T },
	{ "amount between 120.5 and 120.5", T },
	{ "amount between 121 and 200", F },
	{ "amount between 200 and 100", F },
	/* built-ins */
	{ "min(3, 1, 2) == 1", T },
	{ "max(3, 1, 2) == 3", T },
	{ "max(amount, 1000) == 1000", T },
	{ "abs(-2.5) == 2.5", T },
	{ "log(1) == 0", T },
	{ "log(0) is missing", T },
	{ "log(-1) is missing", T },
	{ "sqrt(16) == 4", T },
	{ "sqrt(-1) is missing", T },
	{ "floor(2.7) == 2", T },
	{ "floor(-2.5) == -3", T },
	{ "hour(event_time) == 14", T },
	{ "weekday(event_time) == 5", T },
	{ "weekday(0) == 4", T },
	{ "weekday(-1) == 3", T },
	{ "hour(-1) == 23", T },
	{ "hour(0) == 0", T },
	{ "haversine(lat, lon, vel.card.last_lat, vel.card.last_lon) between 343 and 344", T },
	{ "haversine(lat, lon, lat, lon) == 0", T },
	{ "haversine(lat, lon, 91, 0) is missing", T },
	/* thresholds */
	{ "amount > t10", T },
	{ "amount > tuned", F },
	{ "amount * 2 > tuned", T },
};

static void
test_semantics_table(void **state)
{
	rules_schema *schema = fx_schema();
	vigil_value   f[FX_NSLOTS];
	rules_result  res;
	char          src[2048];
	int           failures = 0;

	(void)state;
	fx_features(f);
	for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
		rules_prog   *prog = NULL;
		rules_diags   diags;
		rules_outcome got = RULES_OUTCOME_FALSE;
		int           n = snprintf(src, sizeof src, "%srule r {\n  when %s\n  score 7\n  reason \"r\"\n}\n",
		    prelude, table[i].expr);
		vigil_err rv = rules_compile("table", src, (size_t)n, schema, NULL, &prog, &diags);

		if (rv != VIGIL_OK) {
			print_error("row %zu `%s`: compile failed: %u:%u: %s\n", i, table[i].expr,
			    diags.items[0].line, diags.items[0].col, diags.items[0].msg);
			failures++;
			continue;
		}
		assert_int_equal(rules_prog_rule_eval(prog, NULL, f, FX_NSLOTS, 0, &got), VIGIL_OK);
		assert_int_equal(rules_prog_eval(prog, NULL, f, FX_NSLOTS, &res), VIGIL_OK);
		if (got != table[i].want) {
			print_error("row %zu `%s`: got %s, want %s\n", i, table[i].expr, rules_outcome_name(got),
			    rules_outcome_name(table[i].want));
			failures++;
		}
		/* the rule fires exactly when the condition is true */
		if ((res.nhits == 1) != (table[i].want == T) || res.points != (table[i].want == T ? 7 : 0)) {
			print_error("row %zu `%s`: fired=%u score=%d\n", i, table[i].expr, res.nhits, res.points);
			failures++;
		}
		rules_prog_free(prog);
	}
	rules_schema_free(schema);
	assert_int_equal(failures, 0);
}

/*
 * rules_prog_eval walks each rule's top-level "and" as terms (slot against a
 * constant or constant threshold, either side; not coalesce(bool slot,
 * constant); anything else as a tree, tuned thresholds included; slot terms
 * first, trees after, each in source order). It fires
 * a rule exactly when the three-valued evaluation (rules_prog_rule_eval)
 * says TRUE, for every mix of present, missing, true and false operands
 * below (strings in a list, not in it, missing), with the tuned threshold
 * at its fallback and at a tuned value.
 */
static void
test_terms_match_tree(void **state)
{
	static const char *const conds[] = {
		"not coalesce(card.country_seen, false)",
		"not coalesce(card.country_seen, true)",
		"3 < amount", "120.5 <= amount", "120.5 >= amount", "200 > amount",
		"t10 > card.count_7d", "card.count_7d >= t10", "amount > tuned", "tuned < amount",
		"amount <= tuned", "amount >= tuned and card.count_7d < tuned",
		"card.count_7d > 3 and amount < tuned",
		"card.count_7d >= 1 and not coalesce(card.country_seen, false)",
		"amount > t10 and amount < 1000 and not coalesce(card.country_seen, true) and country in cl",
		"not coalesce(card.country_seen, false) and (card.count_7d > 3 or amount > 100)",
		"card.count_7d < 5 and amount between 100 and 200 and 1 <= card.count_7d",
		"amount != 120.5 and 3 < amount", "amount == 120.5 and card.count_7d <= 0",
		"card.country_seen and amount > 1", "not card.country_seen and 1 < amount",
		/* tree terms ahead of slot terms (evaluated after them) */
		"amount > tuned and card.count_7d >= 1",
		"country in cl and not coalesce(card.country_seen, false) and amount < 200",
		"card.count_7d > tuned and 3 < amount and card.country_seen and card.count_7d <= 10",
		/* lists of each kind and thresholds on either side, as terms */
		"card.count_7d in nums", "card.count_7d not in nums and amount > 1",
		"country in cl and card_id in bins", "country not in cl", "card_id not in bins",
		"device_id in empty or country in cl", "tuned > amount", "t10 <= card.count_7d and tuned >= amount",
		"card_id in bins and amount > tuned and card.count_7d < 5",
	};
	rules_schema *schema = fx_schema();
	char          src[8192];
	size_t        n;
	rules_prog   *prog = NULL;
	rules_tvals  *tv, *tv_tuned;
	rules_diags   diags;

	(void)state;
	n = (size_t)snprintf(src, sizeof src, "%s", prelude);
	for (size_t i = 0; i < sizeof conds / sizeof conds[0]; i++)
		n += (size_t)snprintf(src + n, sizeof src - n, "rule r%zu { when %s score 1 reason \"r\" }\n",
		    i, conds[i]);
	if (rules_compile("terms", src, n, schema, NULL, &prog, &diags) != VIGIL_OK)
		fail_msg("compile: %u:%u: %s", diags.items[0].line, diags.items[0].col, diags.items[0].msg);
	tv_tuned = rules_tvals_new(prog);
	assert_non_null(tv_tuned);
	{
		uint32_t ti;

		for (ti = 0; ti < rules_prog_nthresholds(prog); ti++) {
			rules_threshold_info info;

			rules_prog_threshold(prog, ti, &info);
			if (strcmp(info.name, "tuned") == 0)
				break;
		}
		assert_int_equal(rules_tvals_set(tv_tuned, ti, NULL, 120.5), VIGIL_OK);
	}
	for (int v = 0; v < 162; v++) {
		static const double amounts[] = { 120.5, 3, 0 };
		static const double counts[] = { 0, 10, 1 };
		vigil_value  f[FX_NSLOTS];
		rules_result res;
		uint32_t     hit = 0;

		fx_features(f);
		/* card.country_seen false / true / missing, card.count_7d missing /
		 * 10 / 1, amount 120.5 / 3 / missing */
		f[FX_SEEN] = v % 3 == 2 ? vigil_value_missing() : vigil_value_bool(v % 3 == 1);
		f[FX_COUNT_7D] = v / 3 % 3 == 0 ? vigil_value_missing()
		                                : vigil_value_num(counts[v / 3 % 3]);
		f[FX_AMOUNT] = v / 9 % 3 == 2 ? vigil_value_missing() : vigil_value_num(amounts[v / 9 % 3]);
		/* the tuned threshold at its fallback (150), then tuned to 120.5 */
		tv = v / 27 % 2 == 0 ? NULL : tv_tuned;
		/* country and card_id: in the lists, not in them, missing */
		if (v / 54 == 1) {
			f[FX_COUNTRY] = vigil_value_str("FR", 2);
			f[FX_CARD_ID] = vigil_value_str("3", 1);
		} else if (v / 54 == 2) {
			f[FX_COUNTRY] = vigil_value_missing();
			f[FX_CARD_ID] = vigil_value_missing();
		}
		assert_int_equal(rules_prog_eval(prog, tv, f, FX_NSLOTS, &res), VIGIL_OK);
		for (uint32_t r = 0; r < rules_prog_nrules(prog); r++) {
			rules_outcome o;
			bool fired = hit < res.nhits && res.hits[hit] == r;

			hit += fired;
			assert_int_equal(rules_prog_rule_eval(prog, tv, f, FX_NSLOTS, r, &o), VIGIL_OK);
			if (fired != (o == RULES_OUTCOME_TRUE))
				fail_msg("variant %d, `%s`: fired %d, outcome %s", v, conds[r], fired,
				    rules_outcome_name(o));
		}
		assert_int_equal(hit, res.nhits);
	}
	rules_tvals_free(tv_tuned);
	rules_prog_free(prog);
	rules_schema_free(schema);
}

/* Constant subtrees are folded at compile time and give the same answers. */
static void
test_fold_matches_eval(void **state)
{
	rules_schema *schema = fx_schema();
	vigil_value   f[FX_NSLOTS];
	const char   *exprs[] = { "2 + 3 * 4 == 14", "min(3, 1, 2) == 1", "\"37\" in bins",
		  "not (1 > 2)", "abs(-2) + sqrt(4) == 4" };

	(void)state;
	fx_features(f);
	for (size_t i = 0; i < sizeof exprs / sizeof exprs[0]; i++) {
		char          src[1024];
		rules_prog   *prog = NULL;
		rules_outcome o;
		int n = snprintf(src, sizeof src, "%srule r { when %s score 1 reason \"r\" }\n", prelude, exprs[i]);

		assert_int_equal(rules_compile("fold", src, (size_t)n, schema, NULL, &prog, NULL), VIGIL_OK);
		/* folded to a constant: no feature vector needed at all */
		assert_int_equal(rules_prog_rule_eval(prog, NULL, f, FX_NSLOTS, 0, &o), VIGIL_OK);
		assert_int_equal(o, RULES_OUTCOME_TRUE);
		{
			uint32_t n_used;

			rules_prog_slots_used(prog, &n_used);
			assert_int_equal(n_used, 0);
		}
		rules_prog_free(prog);
	}
	rules_schema_free(schema);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_semantics_table),
		cmocka_unit_test(test_fold_matches_eval),
		cmocka_unit_test(test_terms_match_tree),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
