/* SPDX-License-Identifier: MIT */
/*
 * tests/rules/test_rules_fmt.c - canonical formatting: a messy file gives
 * the exact canonical text, comments survive, fmt of fmt is identical (also
 * for rules/default.rules, which must already be canonical), and a file
 * that does not parse is refused with its errors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "fixture.h"

static char *
fmt(const char *src, size_t len)
{
	char       *out = NULL;
	size_t      olen = 0;
	rules_diags diags;

	assert_int_equal(rules_format("f", src, len, &out, &olen, &diags), VIGIL_OK);
	assert_int_equal(strlen(out), olen);
	return out;
}

static void
test_canonical(void **state)
{
	static const char messy[] =
	    "# header comment\n"
	    "version   \"1\"\n"
	    "\n\n\n"
	    "threshold   t=percentile( amount,99 )by mcc fallback -5 min_samples 10\n"
	    "list l=prefix[ \"a\",\"b\" ]  # trailing\n"
	    "rule   r{when amount>-t and( country in l or not present(x))score -10 reason \"r\"\n"
	    "tags[\"a\",\"b\"] mode shadow}\n"
	    "rule s {\n"
	    "    # why this rule exists\n"
	    "    when amount > 1\n"
	    "         and mcc == 5411   # grocery\n"
	    "    score 1\n"
	    "    reason \"s\"\n"
	    "    # closing remark\n"
	    "}\n"
	    "list m = [\n"
	    "    1,\n"
	    "    2\n"
	    "  ]\n";
	static const char want[] =
	    "# header comment\n"
	    "version \"1\"\n"
	    "\n"
	    "threshold t = percentile(amount, 99) by mcc fallback -5 min_samples 10\n"
	    "list l = prefix [\"a\", \"b\"] # trailing\n"
	    "rule r {\n"
	    "  when amount > -t and (country in l or not present(x))\n"
	    "  score -10\n"
	    "  reason \"r\"\n"
	    "  tags [\"a\", \"b\"]\n"
	    "  mode shadow\n"
	    "}\n"
	    "rule s {\n"
	    "  # why this rule exists\n"
	    "  when amount > 1\n"
	    "    and mcc == 5411 # grocery\n"
	    "  score 1\n"
	    "  reason \"s\"\n"
	    "  # closing remark\n"
	    "}\n"
	    "list m = [\n"
	    "  1,\n"
	    "  2\n"
	    "]\n";
	char *once = fmt(messy, sizeof messy - 1);
	char *twice;

	(void)state;
	if (strcmp(once, want) != 0)
		print_error("--- got\n%s--- want\n%s", once, want);
	assert_string_equal(once, want);
	twice = fmt(once, strlen(once));
	assert_string_equal(twice, once);
	free(once);
	free(twice);
}

static void
test_default_rules_canonical(void **state)
{
	size_t len = 0;
	char  *src = fx_read_source("rules/default.rules", &len);
	char  *out;

	(void)state;
	assert_non_null(src);
	out = fmt(src, len);
	/* `vigil-rules fmt --check rules/default.rules` must pass */
	assert_string_equal(out, src);
	free(out);
	free(src);
}

/* Idempotence over inputs with odd spacing, comments everywhere and CRLF. */
static void
test_idempotent(void **state)
{
	static const char *inputs[] = {
		"",
		"# only a comment",
		"rule a{when(1>2)score 1 reason\"x\"}#c",
		"rule a {\r\n  when amount > 1 # c1\r\n  # c2\r\n  score 1\r\n  reason \"x\"\r\n}\r\n",
		"list l = [ # open\n  \"a\", # first\n\n  \"b\"\n] # close\n",
		"rule a { when min(1,2,-3) < - 4 and - amount < 2 * -1 score -1 reason \"x\" }",
		"threshold t = -1\n\n\n\n# gap\nband review = 5\n",
	};

	(void)state;
	for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
		char *once = fmt(inputs[i], strlen(inputs[i]));
		char *twice = fmt(once, strlen(once));

		if (strcmp(once, twice) != 0)
			print_error("input %zu:\n--- once\n%s--- twice\n%s", i, once, twice);
		assert_string_equal(once, twice);
		free(once);
		free(twice);
	}
}

static void
test_refuses_broken(void **state)
{
	static const char src[] = "rule a {\n  when amount > > 1\n  score 1 reason \"x\"\n}\n";
	char             *out = NULL;
	size_t            olen = 0;
	rules_diags       diags;

	(void)state;
	assert_int_equal(rules_format("b.rules", src, sizeof src - 1, &out, &olen, &diags), VIGIL_ESYNTAX);
	assert_null(out);
	assert_int_equal(diags.count, 1);
	assert_string_equal(diags.file, "b.rules");
	assert_int_equal(diags.items[0].line, 2);
	assert_int_equal(diags.items[0].col, 17);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_canonical),
		cmocka_unit_test(test_default_rules_canonical),
		cmocka_unit_test(test_idempotent),
		cmocka_unit_test(test_refuses_broken),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
