/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_rules.c - libFuzzer target for the rule language: compiles
 * arbitrary bytes against a small schema; when they compile, evaluates them
 * over two feature vectors (values present, all missing) and runs explain;
 * and checks the formatter's contract on every input that parses: fmt of
 * fmt is identical and the formatted text compiles the same way. Any crash,
 * sanitizer report or broken invariant (abort) is a finding.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { NSLOTS = 8 };

static rules_schema *
fuzz_schema(void)
{
	static rules_schema *schema;

	if (schema == NULL) {
		schema = rules_schema_new();
		if (schema == NULL ||
		    rules_schema_add(schema, "amount", VIGIL_T_NUM, 0) != VIGIL_OK ||
		    rules_schema_add(schema, "country", VIGIL_T_STR, 1) != VIGIL_OK ||
		    rules_schema_add(schema, "mcc", VIGIL_T_NUM, 2) != VIGIL_OK ||
		    rules_schema_add(schema, "card.count_7d", VIGIL_T_NUM, 3) != VIGIL_OK ||
		    rules_schema_add(schema, "card.country_seen", VIGIL_T_BOOL, 4) != VIGIL_OK ||
		    rules_schema_add(schema, "card_id", VIGIL_T_STR, 5) != VIGIL_OK ||
		    rules_schema_add(schema, "event_time", VIGIL_T_NUM, 6) != VIGIL_OK ||
		    rules_schema_add(schema, "vel.card.km_from_last", VIGIL_T_NUM, 7) != VIGIL_OK)
			abort();
	}
	return schema;
}

static void
fuzz_eval(const rules_prog *prog)
{
	vigil_value   f[NSLOTS], none[NSLOTS];
	rules_result *res = malloc(sizeof *res);
	rules_tvals  *tv = rules_tvals_new(prog);
	FILE         *devnull = fopen("/dev/null", "w");

	if (res == NULL || tv == NULL || devnull == NULL)
		abort();
	f[0] = vigil_value_num(123.45);
	f[1] = vigil_value_str("GB", 2);
	f[2] = vigil_value_num(5411);
	f[3] = vigil_value_num(3);
	f[4] = vigil_value_bool(true);
	f[5] = vigil_value_str("411111abc", 9);
	f[6] = vigil_value_num(1795185000);
	f[7] = vigil_value_num(-1e300);
	for (int i = 0; i < NSLOTS; i++)
		none[i] = vigil_value_missing();
	for (uint32_t i = 0; i < rules_prog_nthresholds(prog); i++) {
		vigil_value g = vigil_value_str("GB", 2);

		rules_tvals_set(tv, i, NULL, 7);
		g = vigil_value_num(5411);
		rules_tvals_set(tv, i, &g, 9); /* EINVAL for most: fine */
	}
	if (rules_prog_eval(prog, tv, f, NSLOTS, res) != VIGIL_OK ||
	    rules_prog_eval(prog, NULL, none, NSLOTS, res) != VIGIL_OK)
		abort();
	if (res->nhits + res->nshadow > rules_prog_nrules(prog))
		abort();
	rules_explain_print(prog, tv, f, NSLOTS, devnull);
	fclose(devnull);
	rules_tvals_free(tv);
	free(res);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	rules_prog *prog = NULL;
	rules_diags diags;
	char       *once = NULL, *twice = NULL;
	size_t      n1 = 0, n2 = 0;
	vigil_err   rv;
	FILE       *devnull;

	rv = rules_compile("fuzz", (const char *)data, size, fuzz_schema(), NULL, &prog, &diags);
	if (rv == VIGIL_OK) {
		fuzz_eval(prog);
		rules_prog_free(prog);
		prog = NULL;
	} else {
		if (prog != NULL || diags.count == 0 || diags.count > RULES_MAX_DIAGS)
			abort();
		devnull = fopen("/dev/null", "w");
		if (devnull == NULL)
			abort();
		rules_diags_print(&diags, (const char *)data, size, devnull);
		fclose(devnull);
	}
	if (rules_format("fuzz", (const char *)data, size, &once, &n1, &diags) == VIGIL_OK) {
		vigil_err rv2;

		if (rules_format("fuzz", once, n1, &twice, &n2, &diags) != VIGIL_OK || n1 != n2 ||
		    memcmp(once, twice, n1) != 0)
			abort(); /* fmt must be idempotent */
		/* formatting never changes whether (or how) a file compiles */
		rv2 = rules_compile("fuzz", once, n1, fuzz_schema(), NULL, &prog, &diags);
		if ((rv2 == VIGIL_OK) != (rv == VIGIL_OK))
			abort();
		rules_prog_free(prog);
	}
	free(once);
	free(twice);
	return 0;
}
