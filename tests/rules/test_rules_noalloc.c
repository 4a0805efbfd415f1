/* SPDX-License-Identifier: MIT */
/*
 * tests/rules/test_rules_noalloc.c - evaluation allocates nothing: malloc,
 * calloc, realloc and free are wrapped at link time (tests/lib/noalloc.h) and
 * counted around rules_prog_eval over rules/default.rules-like programs
 * with lists, tuned per-group thresholds and every built-in.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "noalloc.h"

#include "fixture.h"

static const char program[] =
    "list cl = [\"GB\", \"US\", \"FR\"]\n"
    "list bins = prefix [\"4111\", \"5500\", \"37\"]\n"
    "list nums = [5411, 5812]\n"
    "threshold by_mcc = percentile(amount, 99) by mcc fallback 500\n"
    "threshold by_country = alert_rate(amount, 0.01) by country fallback 1000\n"
    "rule a { when amount > by_mcc and country in cl score 10 reason \"a\" }\n"
    "rule b { when card_id in bins or starts_with(card_id, \"9\") score 10 reason \"b\" }\n"
    "rule c { when mcc in nums and amount < by_country score 10 reason \"c\" }\n"
    "rule d { when haversine(lat, lon, vel.card.last_lat, vel.card.last_lon) > 100 score 5 reason \"d\" }\n"
    "rule e { when hour(event_time) between 9 and 17 and weekday(event_time) < 6 score 5 reason \"e\" }\n"
    "rule f { when coalesce(card.count_7d, 0) == 0 and not present(device_id) score 5 reason \"f\" }\n"
    "rule g { when log(amount) + sqrt(amount) > min(3, abs(-4), max(1, 2)) score 5 reason \"g\" mode shadow }\n"
    "rule h { when country != \"DE\" and card.amount_zscore / 0 is missing score 1 reason \"h\" }\n";

static void
test_eval_allocates_nothing(void **state)
{
	rules_schema *schema = fx_schema();
	rules_prog   *prog = NULL;
	rules_tvals  *tv;
	vigil_value   f[FX_NSLOTS], g;
	rules_result *res = malloc(sizeof *res);
	unsigned long before;

	(void)state;
	assert_int_equal(rules_compile("n", program, sizeof program - 1, schema, NULL, &prog, NULL), VIGIL_OK);
	tv = rules_tvals_new(prog);
	g = vigil_value_num(5411);
	assert_int_equal(rules_tvals_set(tv, 0, &g, 100), VIGIL_OK);
	g = vigil_value_str("GB", 2);
	assert_int_equal(rules_tvals_set(tv, 1, &g, 1000), VIGIL_OK);
	fx_features(f);
	before = vt_allocs();
	for (int i = 0; i < 1000; i++) {
		f[FX_AMOUNT] = vigil_value_num(i);
		assert_int_equal(rules_prog_eval(prog, tv, f, FX_NSLOTS, res), VIGIL_OK);
	}
	assert_int_equal(vt_allocs() - before, 0);
	/* the counter works: compiling does allocate */
	rules_tvals_free(tv);
	rules_prog_free(prog);
	assert_true(vt_allocs() > before);
	free(res);
	rules_schema_free(schema);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_eval_allocates_nothing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
