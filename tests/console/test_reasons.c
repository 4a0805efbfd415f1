/* SPDX-License-Identifier: MIT */
/*
 * tests/console/test_reasons.c - the model's reasons as the case page shows
 * them (console/fetch.c, con_reasons_json): the largest pushes up, then the
 * largest pushes down, each in words from the feature table's doc (the
 * amount against the card's 90-day mean), an
 * integer shown as an integer, a boolean as yes/no, a missing value as
 * missing, a ratio of amounts without a currency; features that push
 * neither way are left out.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "console.h"

static void
test_up_and_down_in_words(void **state)
{
	static const char *const names[] = { "amount", "vel.card.count_1h", "card.country_seen",
		"not.a.feature", "card.amount_mean_90d" };
	const float x[] = { 220.5f, 3.0f, 0.0f, NAN, 90.0f };
	const float contrib[] = { 1.5f, 0.25f, 4.0f, -0.5f, -2.0f, 0.1f /* bias */ };
	json_t *r, *e;

	(void)state;
	r = con_reasons_json(names, x, contrib, 5, 2, 2, "EUR");
	assert_int_equal(json_array_size(r), 4);
	/* up: card.country_seen (4.0), then amount (1.5); count_1h is third: left out */
	e = json_array_get(r, 0);
	assert_string_equal(json_string_value(json_object_get(e, "feature")), "card.country_seen");
	assert_string_equal(json_string_value(json_object_get(e, "push")), "up");
	assert_string_equal(json_string_value(json_object_get(e, "text")),
	    "this country among the card's usual countries (batch): no (raises the risk)");
	e = json_array_get(r, 1);
	assert_string_equal(json_string_value(json_object_get(e, "feature")), "amount");
	assert_true(json_is_real(json_object_get(e, "value")));
	assert_string_equal(json_string_value(json_object_get(e, "text")),
	    "amount 220.50 EUR, 2.5x the card's 90-day mean (90 EUR) (raises the risk)");
	/* down: card.amount_mean_90d (-2.0), then the unknown feature (-0.5) */
	e = json_array_get(r, 2);
	assert_string_equal(json_string_value(json_object_get(e, "feature")), "card.amount_mean_90d");
	assert_string_equal(json_string_value(json_object_get(e, "push")), "down");
	assert_true(json_is_integer(json_object_get(e, "value")));
	assert_int_equal(json_integer_value(json_object_get(e, "value")), 90);
	assert_non_null(strstr(json_string_value(json_object_get(e, "text")),
	    ": 90 EUR (lowers the risk)"));
	e = json_array_get(r, 3);
	assert_string_equal(json_string_value(json_object_get(e, "feature")), "not.a.feature");
	assert_true(json_is_null(json_object_get(e, "value")));
	assert_string_equal(json_string_value(json_object_get(e, "text")),
	    "not.a.feature: missing (lowers the risk)");
	json_decref(r);
}

/* A ratio of amounts is no amount (no currency), a z-score neither; a
 * doc's "(missing: when)" is said only of a missing value. */
static void
test_ratio_and_missing_note(void **state)
{
	static const char *const names[] = { "card.amount_to_mean_30d", "card.amount_zscore",
		"card.amount_std_30d", "vel.card.amount_to_mean_24h" };
	const float x[] = { 4.89f, 3.75f, 12.5f, NAN };
	const float contrib[] = { 0.66f, 0.5f, 0.25f, 0.1f, 0.0f };
	json_t *r;

	(void)state;
	r = con_reasons_json(names, x, contrib, 4, 4, 0, "EUR");
	assert_int_equal(json_array_size(r), 4);
	assert_string_equal(json_string_value(json_object_get(json_array_get(r, 0), "text")),
	    "amount / card.amount_mean_30d: 4.89 (raises the risk)");
	assert_string_equal(json_string_value(json_object_get(json_array_get(r, 1), "text")),
	    "(amount - mean_90d) / std_90d of this card: 3.75 (raises the risk)");
	assert_non_null(strstr(json_string_value(json_object_get(json_array_get(r, 2), "text")),
	    ": 12.50 EUR (raises the risk)"));
	assert_string_equal(json_string_value(json_object_get(json_array_get(r, 3), "text")),
	    "amount / the card's mean amount of the last 24 hours (missing: none): missing "
	    "(raises the risk)");
	json_decref(r);
}

/* A day's count against the card's daily average over 90 days; a count
 * stays an integer, a mean of a count keeps its decimals. */
static void
test_usual_counts(void **state)
{
	static const char *const names[] = { "vel.card.count_24h", "card.count_90d",
		"vel.card.sum_24h", "card.amount_sum_90d" };
	const float x[] = { 12.0f, 45.0f, 1250.0f, 4500.0f };
	const float contrib[] = { 2.0f, -0.1f, 1.0f, 0.0f };
	json_t *r, *e;

	(void)state;
	r = con_reasons_json(names, x, contrib, 4, 5, 1, "USD");
	assert_int_equal(json_array_size(r), 3);
	e = json_array_get(r, 0);
	assert_non_null(strstr(json_string_value(json_object_get(e, "text")),
	    ": 12, 24.0x the card's daily average over 90 days (0.5) (raises the risk)"));
	e = json_array_get(r, 1);
	assert_non_null(strstr(json_string_value(json_object_get(e, "text")),
	    ": 1250 USD, 25.0x the card's daily average over 90 days (50 USD) (raises the risk)"));
	e = json_array_get(r, 2);
	assert_string_equal(json_string_value(json_object_get(e, "push")), "down");
	assert_non_null(strstr(json_string_value(json_object_get(e, "text")), ": 45 (lowers the risk)"));
	json_decref(r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_up_and_down_in_words),
		cmocka_unit_test(test_ratio_and_missing_note),
		cmocka_unit_test(test_usual_counts),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
