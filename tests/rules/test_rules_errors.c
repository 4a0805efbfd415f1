/* SPDX-License-Identifier: MIT */
/*
 * tests/rules/test_rules_errors.c - error texts are part of the interface
 * (jq-style): tests/rules/errors.test holds programs and the exact
 * diagnostics each must produce, "LINE:COL: message", one per line, in
 * order. Blocks:
 *     %% program NAME
 *     <rule file text>
 *     %% errors
 *     <expected diagnostics>
 * Run with --print FILE to show what the compiler says for each program
 * (for writing new cases; the output is then checked by hand).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "fixture.h"

#define MAX_CASES 128

typedef struct ecase {
	char  *name;
	char  *program;
	size_t plen;
	char  *errors; /* expected, "\n"-terminated lines */
} ecase;


static ecase  cases[MAX_CASES];
static size_t ncases;
static char  *data;

static void
append(char **dst, size_t *len, const char *s, size_t n)
{
	char *nb = realloc(*dst, *len + n + 2);

	if (nb == NULL)
		abort();
	memcpy(nb + *len, s, n);
	nb[*len + n] = '\n';
	*len += n + 1;
	nb[*len] = '\0';
	*dst = nb;
}

/* Splits the data file into cases; lines before the first block are comments. */
static int
load_cases(const char *buf)
{
	const char *p = buf;
	ecase      *cur = NULL;
	size_t      elen = 0;
	int         mode = 0; /* 1: program lines, 2: expected errors */

	while (*p != '\0') {
		const char *nl = strchr(p, '\n');
		size_t      ll = nl != NULL ? (size_t)(nl - p) : strlen(p);

		if (ll > 11 && strncmp(p, "%% program ", 11) == 0) {
			if (ncases == MAX_CASES)
				return -1;
			cur = &cases[ncases++];
			cur->name = strndup(p + 11, ll - 11);
			cur->program = strdup("");
			cur->errors = strdup("");
			cur->plen = 0;
			elen = 0;
			mode = 1;
		} else if (ll == 9 && strncmp(p, "%% errors", 9) == 0) {
			mode = 2;
		} else if (mode == 1) {
			append(&cur->program, &cur->plen, p, ll);
		} else if (mode == 2) {
			if (ll == 0)
				mode = 0;
			else
				append(&cur->errors, &elen, p, ll);
		}
		p += ll + (nl != NULL);
	}
	return 0;
}

static void
free_cases(void)
{
	for (size_t i = 0; i < ncases; i++) {
		free(cases[i].name);
		free(cases[i].program);
		free(cases[i].errors);
	}
}

static void
render(const rules_diags *d, char *out, size_t n)
{
	size_t off = 0;

	out[0] = '\0';
	for (uint32_t i = 0; i < d->count && off < n; i++)
		off += (size_t)snprintf(out + off, n - off, "%u:%u: %s\n", d->items[i].line, d->items[i].col,
		    d->items[i].msg);
}

static void
test_error_texts(void **state)
{
	rules_schema *schema = fx_schema();
	int           failures = 0;

	(void)state;
	assert_true(ncases > 20);
	for (size_t i = 0; i < ncases; i++) {
		rules_prog *prog = NULL;
		rules_diags diags;
		char        got[8192], want[8192];
		vigil_err   rv = rules_compile("t.rules", cases[i].program, cases[i].plen, schema, NULL, &prog,
		      &diags);

		if (rv == VIGIL_OK) {
			print_error("case %s: compiled, expected errors\n", cases[i].name);
			rules_prog_free(prog);
			failures++;
			continue;
		}
		assert_null(prog);
		render(&diags, got, sizeof got);
		snprintf(want, sizeof want, "%s", cases[i].errors);
		if (strcmp(got, want) != 0) {
			print_error("case %s:\n--- want\n%s--- got\n%s", cases[i].name, want, got);
			failures++;
		}
	}
	rules_schema_free(schema);
	assert_int_equal(failures, 0);
}

/* The printed form: file:line:col, the source line, a caret under the column. */
static void
test_diags_print(void **state)
{
	static const char src[] = "rule a {\n\twhen amount > > 5\n  score 1\n  reason \"x\"\n}\n";
	rules_schema     *schema = fx_schema();
	rules_prog       *prog = NULL;
	rules_diags       diags;
	char             *buf = NULL;
	size_t            len = 0;
	FILE             *f = open_memstream(&buf, &len);

	(void)state;
	assert_int_equal(rules_compile("x.rules", src, sizeof src - 1, schema, NULL, &prog, &diags),
	    VIGIL_ESYNTAX);
	rules_diags_print(&diags, src, sizeof src - 1, f);
	fclose(f);
	assert_string_equal(buf,
	    "x.rules:2:16: error: expected an expression, found '>'\n"
	    "    \twhen amount > > 5\n"
	    "    \t              ^\n");
	free(buf);

	/* the column counts bytes; the caret is under the character, so a UTF-8
	 * character before it takes one space, not one per byte */
	{
		static const char mb[] = "rule a { reason \"\xc3\xa9\xe2\x82\xac\" when amount > > 1 score 1 }\n";
		char want[256];

		buf = NULL;
		f = open_memstream(&buf, &len);
		assert_int_equal(rules_compile("m.rules", mb, sizeof mb - 1, schema, NULL, &prog, &diags),
		    VIGIL_ESYNTAX);
		rules_diags_print(&diags, mb, sizeof mb - 1, f);
		fclose(f);
		snprintf(want, sizeof want, "m.rules:1:39: error: expected an expression, found '>'\n"
		    "    %.*s\n    %35s^\n", (int)(sizeof mb - 2), mb, "");
		assert_string_equal(buf, want);
		free(buf);
	}
	rules_schema_free(schema);
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_error_texts),
		cmocka_unit_test(test_diags_print),
	};
	size_t len;

	data = fx_read_source("tests/rules/errors.test", &len);
	if (data == NULL || load_cases(data) != 0) {
		fprintf(stderr, "test_rules_errors: cannot read tests/rules/errors.test (set VIGIL_SOURCE_ROOT)\n");
		return 1;
	}
	if (argc > 1 && strcmp(argv[1], "--print") == 0) {
		rules_schema *schema = fx_schema();

		for (size_t i = 0; i < ncases; i++) {
			rules_prog *prog = NULL;
			rules_diags diags;
			char        got[8192];

			if (rules_compile("t.rules", cases[i].program, cases[i].plen, schema, NULL, &prog, &diags) ==
			    VIGIL_OK) {
				printf("== %s: OK\n", cases[i].name);
				rules_prog_free(prog);
				continue;
			}
			render(&diags, got, sizeof got);
			printf("== %s\n%s", cases[i].name, got);
		}
		rules_schema_free(schema);
		free_cases();
		free(data);
		return 0;
	}
	{
		int rc = cmocka_run_group_tests(tests, NULL, NULL);

		free_cases();
		free(data);
		return rc;
	}
}
