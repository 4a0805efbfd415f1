/* SPDX-License-Identifier: MIT */
/*
 * tests/batch/test_batch_dump.c - vigil-rebuild --dump card|merchant|
 * terminal ID [--generation GEN] (issue 18): a generation's profile as
 * JSON, its "features" named exactly as features/schema.def's rows of that
 * source, with the values the scoring path reads; the raw "profile"; an
 * older generation by number; and the one-line errors (unknown kind, an id
 * not in the generation, no such generation, a missing ID).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>

#include "fixture.h"
#include "gen.h"
#include "schema.h"

#define A (1772323200000LL) /* 2026-03-01T00:00:00Z */
#define D VIGIL_MS_PER_DAY

static const char *dd;

static int
setup(void **state)
{
	store_archive *ar;
	const fx_txn txns[] = {
		{ "x6", "c1", "m1", NULL, "FR", "EUR", 5000, A - 60 * D, 5411, NULL, 0 },
		{ "x4", "c1", "m1", NULL, "FR", "EUR", 4000, A - 20 * D, 5411, NULL, 0 },
		{ "x3", "c1", "m2", NULL, "DE", "EUR", 3000, A - 3 * D, 5999, NULL, 0 },
		{ "x1", "c1", "m1", "t1", "FR", "EUR", 1000, A - 1 * D, 5411, NULL, 0 },
		{ "y1", "c2", "m1", "t1", "FR", "EUR", 2500, A - 1 * D, 5411, NULL, 0 },
	};
	const char *bin = fx_rebuild_bin();

	(void)state;
	dd = fx_tmpdir(0);
	ar = fx_archive(dd);
	for (size_t i = 0; i < sizeof txns / sizeof txns[0]; i++)
		fx_score(ar, &txns[i]);
	fx_label(ar, "x1", true, A - D / 2);
	store_archive_close(ar);
	{ /* generation 1 as of 02-20 (only x6, x4), generation 2 as of 03-01 */
		const char *g1[] = { bin, "--data", dd, "--as-of", "2026-02-20", "-q", "--no-model", NULL };
		const char *g2[] = { bin, "--data", dd, "--as-of", "2026-03-01", "-q", "--no-model", NULL };
		if (fx_run(g1, NULL, NULL) != 0 || fx_run(g2, NULL, NULL) != 0)
			return -1;
	}
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	fx_rm_rf(dd);
	return 0;
}

/* Runs vigil-rebuild --data dd ARGS...; returns the exit status. */
static int
run(char **out, char **err, const char *a1, const char *a2, const char *a3,
    const char *a4, const char *a5)
{
	const char *argv[] = { fx_rebuild_bin(), "--data", dd, a1, a2, a3, a4, a5, NULL };

	return fx_run(argv, out, err);
}

static json_t *
dump_ok(const char *kind, const char *id, const char *gen)
{
	char *out = NULL, *err = NULL;
	json_error_t je;
	json_t *j;
	int st = gen ? run(&out, &err, "--dump", kind, id, "--generation", gen) :
	    run(&out, &err, "--dump", kind, id, NULL, NULL);

	if (st != 0)
		fail_msg("--dump %s %s: exit %d: %s", kind, id, st, err ? err : "");
	j = json_loads(out, 0, &je);
	if (j == NULL)
		fail_msg("--dump %s %s: not JSON (%s): %s", kind, id, je.text, out);
	free(out);
	free(err);
	return j;
}

/* "features" holds exactly schema.def's names of that source. */
static void
assert_schema_names(json_t *features, store_source src)
{
	uint32_t i, n = 0;

	for (i = 0; i < store_schema_nfields(); i++) {
		const store_field *f = store_schema_field(i);

		if (f->source != src)
			continue;
		if (json_object_get(features, f->name) == NULL)
			fail_msg("feature %s missing from the dump", f->name);
		n++;
	}
	assert_true(n > 0);
	assert_int_equal(json_object_size(features), n);
}

/* "profile" holds every stored field, named by schema.def's PC (card) or
 * PE (merchant, terminal) rows (a TIME without its "_ms"), and for a card
 * the three lists. */
static void
assert_profile_fields(json_t *p, bool card)
{
	static const char *const card_names[] = {
#define PC(ctype, field, since, doc) #field,
#include "schema.def"
#undef PC
	};
	static const char *const ent_names[] = {
#define PE(ctype, field, since, doc) #field,
#include "schema.def"
#undef PE
	};
	const char *const *names = card ? card_names : ent_names;
	size_t n = card ? sizeof card_names / sizeof card_names[0] :
	    sizeof ent_names / sizeof ent_names[0];

	for (size_t i = 0; i < n; i++) {
		char key[64];
		size_t len = strlen(names[i]);

		if (len > 3 && strcmp(names[i] + len - 3, "_ms") == 0)
			len -= 3;
		snprintf(key, sizeof key, "%.*s", (int)len, names[i]);
		if (json_object_get(p, key) == NULL)
			fail_msg("profile: no field %s", key);
	}
	assert_int_equal(json_object_size(p), n + (card ? 3 : 0));
}

static void
test_dump_card(void **state)
{
	json_t *j = dump_ok("card", "c1", NULL), *f, *p;

	(void)state;
	assert_string_equal(json_string_value(json_object_get(j, "kind")), "card");
	assert_string_equal(json_string_value(json_object_get(j, "id")), "c1");
	assert_int_equal(json_integer_value(json_object_get(j, "generation")), 2);
	assert_string_equal(json_string_value(json_object_get(j, "as_of")), "2026-03-01");
	f = json_object_get(j, "features");
	p = json_object_get(j, "profile");
	assert_schema_names(f, STORE_SRC_CARD);
	assert_int_equal(json_integer_value(json_object_get(f, "card.count_90d")), 4);
	assert_int_equal(json_integer_value(json_object_get(f, "card.count_7d")), 2);
	assert_int_equal(json_integer_value(json_object_get(f, "card.amount_sum_7d")), 40);
	assert_int_equal(json_integer_value(json_object_get(f, "card.fraud_count_90d")), 1);
	assert_int_equal(json_integer_value(json_object_get(f, "card.distinct_countries_90d")), 2);
	/* the raw record: same counts, and what no feature reads */
	assert_int_equal(json_integer_value(json_object_get(p, "count_90d")), 4);
	assert_int_equal(json_array_size(json_object_get(p, "hour_hist")), 24);
	assert_true(json_array_size(json_object_get(p, "countries")) >= 1);
	assert_string_equal(json_string_value(json_array_get(json_object_get(p, "countries"), 0)),
	    "FR");
	assert_profile_fields(p, true);
	assert_string_equal(json_string_value(json_object_get(p, "first_seen")),
	    "2025-12-31T00:00:00.000Z");
	json_decref(j);
}

static void
test_dump_merchant_terminal(void **state)
{
	json_t *j = dump_ok("merchant", "m1", NULL), *f;

	(void)state;
	f = json_object_get(j, "features");
	assert_schema_names(f, STORE_SRC_MERCHANT);
	assert_int_equal(json_integer_value(json_object_get(f, "merchant.count_30d")), 3);
	assert_int_equal(json_integer_value(json_object_get(f, "merchant.fraud_count_30d")), 1);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "profile"),
	    "count_90d")), 4);
	assert_profile_fields(json_object_get(j, "profile"), false);
	/* the fraud of x1 (a day old) is not in the mature 30 days (7-day
	 * maturity): x4 is, legitimate */
	assert_int_equal(json_integer_value(json_object_get(f, "merchant.fraud_count_mature_30d")),
	    0);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "profile"),
	    "count_mature_30d")), 1);
	/* c1 (reported) and c2 in the 30 days: half the cards */
	assert_true(json_real_value(json_object_get(f, "merchant.reported_card_share_30d")) == 0.5);
	json_decref(j);
	j = dump_ok("terminal", "t1", NULL);
	f = json_object_get(j, "features");
	assert_schema_names(f, STORE_SRC_TERMINAL);
	assert_int_equal(json_integer_value(json_object_get(f, "terminal.count_30d")), 2);
	assert_true(json_real_value(json_object_get(f, "terminal.reported_card_share_30d")) == 0.5);
	assert_profile_fields(json_object_get(j, "profile"), false);
	json_decref(j);
}

static void
test_dump_older_generation(void **state)
{
	json_t *j = dump_ok("card", "c1", "1"), *f;

	(void)state;
	assert_int_equal(json_integer_value(json_object_get(j, "generation")), 1);
	assert_string_equal(json_string_value(json_object_get(j, "as_of")), "2026-02-20");
	f = json_object_get(j, "features");
	assert_int_equal(json_integer_value(json_object_get(f, "card.count_90d")), 2);
	json_decref(j);
}

static void
test_dump_errors(void **state)
{
	char *out = NULL, *err = NULL;

	(void)state;
	assert_int_equal(run(&out, &err, "--dump", "account", "c1", NULL, NULL), 2);
	assert_non_null(strstr(err, "--dump: 'account' is not card, merchant or terminal"));
	free(out);
	free(err);
	assert_int_equal(run(&out, &err, "--dump", "card", "nobody", NULL, NULL), 1);
	assert_non_null(strstr(err, "card 'nobody' is not in generation 2"));
	assert_string_equal(out, "");
	free(out);
	free(err);
	/* c2 first appears after generation 1's window */
	assert_int_equal(run(&out, &err, "--dump", "card", "c2", "--generation", "1"), 1);
	assert_non_null(strstr(err, "card 'c2' is not in generation 1"));
	free(out);
	free(err);
	assert_int_equal(run(&out, &err, "--dump", "card", "c1", "--generation", "99"), 1);
	assert_non_null(strstr(err, "gen-000099"));
	free(out);
	free(err);
	assert_int_equal(run(&out, &err, "--dump", "card", NULL, NULL, NULL), 2);
	assert_non_null(strstr(err, "--dump KIND needs one ID"));
	free(out);
	free(err);
	assert_int_equal(run(&out, &err, "--generation", "1", NULL, NULL, NULL), 2);
	assert_non_null(strstr(err, "--generation only goes with --dump"));
	free(out);
	free(err);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dump_card),
		cmocka_unit_test(test_dump_merchant_terminal),
		cmocka_unit_test(test_dump_older_generation),
		cmocka_unit_test(test_dump_errors),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
