/* SPDX-License-Identifier: MIT */
/*
 * tools/rulestool/test.c - vigil-rules test: the regression cases kept next
 * to a rule file (docs/vigil-rules.md, "test"), one JSON object a line,
 * each a transaction, its features and thresholds and what the rules must
 * decide. A case's shape is checked before it runs: a mistake in CASES is
 * exit 2, a case the rules fail is a finding (exit 1).
 */
#include <getopt.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "schema.h"
#include "tool.h"

static const char *test_usage =
    "usage: vigil-rules test [-q | -v] FILE CASES\n"
    "\n"
    "Runs the regression cases in CASES (JSON lines; blank lines and lines\n"
    "starting with # are skipped) against the rule file FILE. One case a line:\n"
    "  {\"name\": \"...\", \"txn\": {...}, \"features\": {...}, \"thresholds\": {...},\n"
    "   \"expect\": {\"decision\": \"review\", \"hits\": [\"rule\", ...],\n"
    "              \"shadow\": [\"rule\", ...], \"points\": 40, \"score\": 40}}\n"
    "\"hits\" and \"shadow\" list exactly the rules that must fire (any order);\n"
    "\"points\" is the sum of the points of the active rules that fired, \"score\"\n"
    "the 0-100 score. Each expect key is optional but \"decision\" or \"hits\"\n"
    "must be given. A case with another key, or a value of the wrong type, is\n"
    "an error in CASES (CASES:LINE: error: FIELD: ..., exit 2); the rest still run.\n"
    "  -q, --quiet     print only failures, no summary line\n"
    "  -v, --verbose   print every case, not only failures\n"
    "\n";

static const char *const tool_case_keys[] = { "name", "txn", "features", "thresholds",
	"expect", NULL };
/* A case's expect keys, in the order checked and listed: the key, whether its
 * value is right (tool_case_check), and what the error says it must be. */
#define TOOL_EXPECT_FIELDS(X) \
	X("decision", tool_is_decision, "allow, review or decline") \
	X("hits",     tool_is_names,    "an array of rule names") \
	X("shadow",   tool_is_names,    "an array of rule names") \
	X("points",   tool_is_integer,  "an integer") \
	X("score",    tool_is_number,   "a number")
#define TOOL_EXPECT_KEY_(key, ok, must) key,
static const char *const tool_expect_keys[] = { TOOL_EXPECT_FIELDS(TOOL_EXPECT_KEY_) NULL };

/* Names of rules idx[0..n) as a sorted-free set check against a JSON array. */
static bool
tool_names_match(const rules_prog *prog, const uint16_t *idx, uint32_t n, const json_t *want,
    char *diff, size_t difflen)
{
	size_t  off = 0;
	bool    ok = true;
	size_t  i;
	json_t *v;

	diff[0] = '\0';
	json_array_foreach(want, i, v) {
		bool found = false;

		for (uint32_t k = 0; k < n && !found; k++) {
			rules_rule_info info;

			rules_prog_rule(prog, idx[k], &info);
			found = json_is_string(v) && strcmp(info.name, json_string_value(v)) == 0;
		}
		if (!found) {
			ok = false;
			if (off < difflen)
				off += (size_t)snprintf(diff + off, difflen - off, " missing %s;",
				    json_is_string(v) ? json_string_value(v) : "(not a string)");
		}
	}
	for (uint32_t k = 0; k < n; k++) {
		rules_rule_info info;
		bool            found = false;

		rules_prog_rule(prog, idx[k], &info);
		json_array_foreach(want, i, v)
			if (json_is_string(v) && strcmp(info.name, json_string_value(v)) == 0)
				found = true;
		if (!found) {
			ok = false;
			if (off < difflen)
				off += (size_t)snprintf(diff + off, difflen - off, " unexpected %s;", info.name);
		}
	}
	return ok;
}

/* The values of the expect keys (TOOL_EXPECT_FIELDS). */
static bool
tool_is_decision(const json_t *v)
{
	vigil_decision d;

	return json_is_string(v) && vigil_decision_parse(json_string_value(v), &d) == VIGIL_OK;
}

/* A JSON array of strings: the rule names of expect.hits and expect.shadow. */
static bool
tool_is_names(const json_t *a)
{
	size_t  i;
	json_t *v;

	if (!json_is_array(a))
		return false;
	json_array_foreach(a, i, v)
		if (!json_is_string(v))
			return false;
	return true;
}

static bool
tool_is_integer(const json_t *v)
{
	return json_is_integer(v);
}

static bool
tool_is_number(const json_t *v)
{
	return json_is_number(v);
}

#define TOOL_EXPECT_ENTRY_(key, ok, must) { key, ok, must },
static const struct tool_expect_field {
	const char *key;
	bool (*ok)(const json_t *v);
	const char *must;
} tool_expect_fields[] = { TOOL_EXPECT_FIELDS(TOOL_EXPECT_ENTRY_) };

/*
 * The shape of one case, before it runs: keys known, each of the type it
 * must have. A case that fails here is a mistake in CASES (exit 2), not a
 * finding about the rules: a misspelt expect key would make the case pass
 * whatever the rules decide. err gets "FIELD: WHAT".
 */
static int
tool_case_check(const json_t *obj, char *err, size_t errlen)
{
	const json_t *exp, *v;

	if (!json_is_object(obj)) {
		snprintf(err, errlen, "a case must be a JSON object with \"txn\" and \"expect\"");
		return -1;
	}
	if (tool_keys_check(obj, tool_case_keys, NULL, err, errlen) != 0)
		return -1;
	if ((v = json_object_get(obj, "name")) != NULL && !json_is_string(v)) {
		snprintf(err, errlen, "name: must be a string");
		return -1;
	}
	if (!json_is_object(json_object_get(obj, "txn"))) {
		snprintf(err, errlen, "txn: %s", json_object_get(obj, "txn") == NULL ?
		    "missing (the transaction object)" : "must be an object");
		return -1;
	}
	exp = json_object_get(obj, "expect");
	if (!json_is_object(exp)) {
		snprintf(err, errlen, "expect: %s", exp == NULL ? "missing (an object with "
		    "\"decision\" or \"hits\")" : "must be an object");
		return -1;
	}
	if (tool_keys_check(exp, tool_expect_keys, "expect", err, errlen) != 0)
		return -1;
	if (json_object_get(exp, "decision") == NULL && json_object_get(exp, "hits") == NULL) {
		snprintf(err, errlen, "expect: \"decision\" or \"hits\" is required");
		return -1;
	}
	for (size_t i = 0; i < sizeof tool_expect_fields / sizeof tool_expect_fields[0]; i++) {
		const struct tool_expect_field *f = &tool_expect_fields[i];

		if ((v = json_object_get(exp, f->key)) != NULL && !f->ok(v)) {
			snprintf(err, errlen, "expect.%s: must be %s", f->key, f->must);
			return -1;
		}
	}
	return 0;
}

int
cmd_test(int argc, char **argv, const rules_schema *schema)
{
	static const struct option longopts[] = {
		VIGIL_CLI_VERBOSE, VIGIL_CLI_QUIET, VIGIL_CLI_HELP, { NULL, 0, NULL, 0 },
	};
	bool          verbose = false, quiet = false;
	int           c, status = 0;
	rules_prog   *prog = NULL;
	rules_diags   diags;
	rules_result *res = NULL;
	char         *src = NULL, *cases = NULL;
	size_t        len = 0, clen = 0, pos = 0;
	vigil_value  *features = NULL;
	uint32_t      nfeatures = rules_schema_nslots(schema), lineno = 0, ncases = 0, nfail = 0,
	              nbad = 0;
	uint32_t      mslot = UINT32_MAX;

	while ((c = getopt_long(argc, argv, "vqh", longopts, NULL)) != -1) {
		switch (c) {
		case 'v': verbose = true; break;
		case 'q': quiet = true; break;
		case 'h': return tool_help(test_usage);
		default: return vigil_cli_bad_option("vigil-rules test", argv);
		}
	}
	if (optind + 2 != argc)
		return vigil_cli_usage_error("vigil-rules test", "give FILE and CASES");
	if (verbose && quiet)
		return vigil_cli_usage_error("vigil-rules test", "--quiet and --verbose exclude "
		    "each other");
	status = tool_compile(argv[optind], schema, &prog, &diags, &src, &len);
	if (status == TOOL_BAD_RULES) {
		rules_diags_print(&diags, src, len, stderr);
		status = EXIT_USAGE;
	}
	if (status != 0)
		goto out;
	cases = tool_read(argv[optind + 1], &clen);
	if (store_schema_find("model.score", &mslot) != VIGIL_OK)
		mslot = UINT32_MAX;
	features = calloc(nfeatures + 1, sizeof *features);
	res = malloc(sizeof *res);
	if (cases == NULL || features == NULL || res == NULL) {
		status = EXIT_USAGE;
		goto out;
	}
	while (pos < clen) {
		const char  *line = cases + pos, *nl = memchr(line, '\n', clen - pos);
		size_t       ll = nl != NULL ? (size_t)(nl - line) : clen - pos;
		json_t      *obj = NULL, *exp;
		json_error_t jerr;
		rules_tvals *tv = NULL;
		vigil_txn    txn;
		char         err[1024], diff[512], name[128];
		bool         ok = true;
		size_t       k = 0;

		pos += ll + (nl != NULL);
		lineno++;
		while (k < ll && (line[k] == ' ' || line[k] == '\t' || line[k] == '\r'))
			k++;
		if (k == ll || line[k] == '#')
			continue;
		ncases++;
		snprintf(name, sizeof name, "line %u", lineno);
		/* a key given twice would be read as its last value: refused, as vigil-score does */
		obj = json_loadb(line, ll, JSON_REJECT_DUPLICATES, &jerr);
		if (obj == NULL) { /* a cases file that does not parse: exit 2, the rest still run */
			fprintf(stderr, "%s:%u:%d: error: %s\n", argv[optind + 1], lineno, jerr.column, jerr.text);
			nfail++;
			nbad++;
			continue;
		}
		tv = rules_tvals_new(prog);
		if (tv == NULL) {
			json_decref(obj);
			status = EXIT_USAGE;
			goto out;
		}
		/* a case that cannot run as written: exit 2, the rest still run */
		if (tool_case_check(obj, err, sizeof err) != 0 ||
		    tool_input(obj, prog, &txn, features, nfeatures, tv, err, sizeof err) != 0) {
			fprintf(stderr, "%s:%u: error: %s\n", argv[optind + 1], lineno, err);
			nfail++;
			nbad++;
			rules_tvals_free(tv);
			json_decref(obj);
			continue;
		}
		if (json_is_string(json_object_get(obj, "name")))
			snprintf(name, sizeof name, "%s", json_string_value(json_object_get(obj, "name")));
		exp = json_object_get(obj, "expect");
		if (rules_prog_eval(prog, tv, features, nfeatures, res) != VIGIL_OK) {
			snprintf(err, sizeof err, "evaluation failed");
			ok = false;
		} else {
			const json_t  *jd = json_object_get(exp, "decision"), *jh = json_object_get(exp, "hits");
			const json_t  *js = json_object_get(exp, "shadow"), *jsc = json_object_get(exp, "score");
			const json_t  *jp = json_object_get(exp, "points");
			vigil_decision want = VIGIL_DECISION_ALLOW;
			size_t         off = 0;

			/* a model.score given is the model's calibrated probability:
			 * the score is the model's, as app_score makes it */
			if (mslot < nfeatures && features[mslot].present && features[mslot].str == NULL)
				rules_result_model(prog, features[mslot].num, res);
			err[0] = '\0';
			/* tool_case_check made sure of each one's type */
			if (jd != NULL)
				(void)vigil_decision_parse(json_string_value(jd), &want);
			if (jd != NULL && want != res->decision) {
				off += (size_t)snprintf(err + off, sizeof err - off,
				    "decision %s, expected %s (score %.6g); ", vigil_decision_name(res->decision),
				    vigil_decision_name(want), res->score);
				ok = false;
			}
			if (jsc != NULL && off < sizeof err &&
			    fabs(json_number_value(jsc) - res->score) > 1e-9) {
				off += (size_t)snprintf(err + off, sizeof err - off, "score %.6g, expected %.6g; ",
				    res->score, json_number_value(jsc));
				ok = false;
			}
			if (jp != NULL && off < sizeof err && json_integer_value(jp) != res->points) {
				off += (size_t)snprintf(err + off, sizeof err - off, "points %d, expected %lld; ",
				    res->points, (long long)json_integer_value(jp));
				ok = false;
			}
			if (jh != NULL && off < sizeof err &&
			    !tool_names_match(prog, res->hits, res->nhits, jh, diff, sizeof diff)) {
				off += (size_t)snprintf(err + off, sizeof err - off, "hits:%s ", diff);
				ok = false;
			}
			if (js != NULL && off < sizeof err &&
			    !tool_names_match(prog, res->shadow, res->nshadow, js, diff, sizeof diff)) {
				snprintf(err + off, sizeof err - off, "shadow:%s", diff);
				ok = false;
			}
		}
		if (!ok) {
			nfail++;
			fprintf(stderr, "%s:%u: FAIL %s: %s\n", argv[optind + 1], lineno, name, err);
		} else if (verbose) {
			printf("%s:%u: ok   %s (%s, score %.6g)\n", argv[optind + 1], lineno, name,
			    vigil_decision_name(res->decision), res->score);
		}
		rules_tvals_free(tv);
		json_decref(obj);
	}
	if (!quiet)
		printf("%s: %u cases, %u passed, %u failed\n", argv[optind + 1], ncases,
		    ncases - nfail, nfail);
	if (ncases == 0) {
		fprintf(stderr, "vigil-rules: %s: no cases\n", argv[optind + 1]);
		status = EXIT_USAGE;
	} else if (nbad > 0) {
		status = EXIT_USAGE;
	} else if (nfail > 0) {
		status = EXIT_FINDINGS;
	}
out:
	free(res);
	free(features);
	free(cases);
	rules_prog_free(prog);
	free(src);
	return status;
}
