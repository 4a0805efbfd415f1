/* SPDX-License-Identifier: MIT */
/*
 * tests/console/test_console_rules.c - rule editing: back-tests (and their
 * bounds), check and deploy with their guards, the page tools, four eyes
 * (console-api).
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <linux/fs.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "console_test.h"

/* Replaces the first "band review = review_at" of text (rules/default.rules
 * tunes its review band) with "band review = " and value, in place. */
static char *
set_review_band(char *text, const char *value)
{
	static const char from[] = "band review = review_at";
	char *p = strstr(text, from);
	size_t n;

	if (p == NULL)
		return NULL;
	n = strlen("band review = ") + strlen(value);
	memmove(p + n, p + sizeof from - 1, strlen(p + sizeof from - 1) + 1);
	memcpy(p, "band review = ", strlen("band review = "));
	memcpy(p + strlen("band review = "), value, strlen(value));
	return p;
}

/* A back-test of a rules-only change evaluates the edited file on the
 * archived values (vigil-replay --exact) against production's decisions:
 * the unchanged file changes nothing; moving the review band above t2's
 * score lets it through, and the money it caught (a fraud now) is no
 * longer caught. */
void
test_backtest(void **s)
{
	char *text = calloc(1, 1 << 20), *p, *body;
	FILE *f = fopen(rules_path, "r");
	json_t *b, *o, *c0, *m;
	size_t len;

	(void)s;
	assert_non_null(f);
	len = fread(text, 1, (1 << 20) - 1, f);
	fclose(f);
	assert_true(len > 0);
	/* the unchanged file: production's own decisions, nothing changes */
	b = json_pack("{s:s, s:i}", "text", text, "days", 3);
	body = json_dumps(b, 0);
	o = http_ok("POST", "/api/rules/backtest", RITA, body, 200);
	assert_string_equal(json_string_value(json_object_get(o, "mode")), "exact");
	assert_int_equal(json_integer_value(json_object_get(o, "rows")), 3);
	assert_int_equal(json_integer_value(json_object_get(o, "changed")), 0);
	/* vigil-replay's corrupt_stretches: none in this archive */
	assert_true(json_is_integer(json_object_get(o, "unreadable")));
	assert_int_equal(json_integer_value(json_object_get(o, "unreadable")), 0);
	json_decref(o);
	free(body);
	json_decref(b);
	/* a threshold the nightly tunes, changed: the as-of nightly replay */
	p = strstr(text, "percentile(card.amount_zscore, 99.5)");
	assert_non_null(p);
	p[34] = '0'; /* 99.0 */
	b = json_pack("{s:s, s:i}", "text", text, "days", 3);
	body = json_dumps(b, 0);
	o = http_ok("POST", "/api/rules/backtest", RITA, body, 200);
	assert_string_equal(json_string_value(json_object_get(o, "mode")), "nightly");
	assert_non_null(strstr(json_string_value(json_object_get(o, "mode_reason")), "zscore_high"));
	assert_int_equal(json_integer_value(json_object_get(o, "unreadable")), 0);
	json_decref(o);
	free(body);
	json_decref(b);
	p[34] = '5';
	p = set_review_band(text, "60");
	assert_non_null(p);
	/* t2 is card_testing_repeat's (50 points, decide review): without its
	 * decision floor, the higher band allows it */
	p = strstr(text, "  decide review\n");
	assert_non_null(p);
	memcpy(p, "# ", 2);
	b = json_pack("{s:s, s:i}", "text", text, "days", 3);
	body = json_dumps(b, 0);
	json_decref(http_ok("POST", "/api/rules/backtest", ALICE, body, 403));
	o = http_ok("POST", "/api/rules/backtest", RITA, body, 200);
	/* a band and a decision floor: a rules-only change, evaluated exactly */
	assert_string_equal(json_string_value(json_object_get(o, "mode")), "exact");
	assert_int_equal(json_integer_value(json_object_get(o, "rows")), 3);
	assert_int_equal(json_integer_value(json_object_get(o, "changed")), 1);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(o, "transitions"),
	    "review->allow")), 1);
	c0 = json_array_get(json_object_get(o, "cases"), 0);
	assert_string_equal(json_string_value(json_object_get(c0, "txn_id")), "t2");
	assert_string_equal(json_string_value(json_object_get(json_object_get(c0, "before"),
	    "decision")), "review");
	assert_string_equal(json_string_value(json_object_get(json_object_get(c0, "after"),
	    "decision")), "allow");
	assert_string_equal(json_string_value(json_object_get(c0, "label")), "fraud");
	m = json_object_get(o, "money_caught");
	assert_true(json_real_value(json_object_get(json_object_get(m, "current"), "EUR")) == 2.0);
	assert_null(json_object_get(json_object_get(m, "edited"), "EUR"));
	assert_non_null(json_object_get(json_object_get(o, "current"), "alert_rate"));
	json_decref(o);
	/* a text that does not compile is not replayed */
	o = http_ok("POST", "/api/rules/backtest", RITA, "{\"text\": \"rule {\"}", 422);
	json_decref(o);
	free(body);
	json_decref(b);
	free(text);
}

static char *
rules_hash(const char *token)
{
	json_t *o = http_ok("GET", "/api/rules", token, NULL, 200);
	char *h = strdup(json_string_value(json_object_get(o, "hash")));

	json_decref(o);
	return h;
}

static json_t *
deploy_body(const char *text, const char *base)
{
	return json_pack("{s:s, s:s}", "text", text, "base_hash", base);
}

void
test_rules_check_and_deploy(void **s)
{
	char *base = rules_hash(RITA), *text = NULL, *body, *v0 = vigild_hash(), *v1;
	json_t *o, *e, *b;
	size_t len;
	FILE *f = fopen(rules_path, "r");

	(void)s;
	assert_non_null(f);
	assert_non_null(v0);
	text = calloc(1, 1 << 20);
	len = fread(text, 1, (1 << 20) - 1, f);
	fclose(f);
	assert_true(len > 0);
	/* check: errors at line:col, with the source line */
	o = http_ok("POST", "/api/rules/check", ALICE,
	    "{\"text\": \"version \\\"x\\\"\\nrule r {\\n  when amount > > 5\\n  score 1\\n}\\n\"}", 422);
	e = json_array_get(json_object_get(o, "errors"), 0);
	assert_int_equal(json_integer_value(json_object_get(e, "line")), 3);
	assert_int_equal(json_integer_value(json_object_get(e, "col")), 17);
	/* the error object: what, and the first error's place in the text */
	assert_string_equal(err_msg(o), "expected an expression, found '>'");
	assert_string_equal(err_field(o), "text");
	e = json_object_get(json_object_get(o, "error"), "where");
	assert_int_equal(json_integer_value(json_object_get(e, "line")), 3);
	assert_int_equal(json_integer_value(json_object_get(e, "column")), 17);
	json_decref(o);
	/* a stale base hash is refused, whatever the text */
	b = deploy_body(text, "0123456789abcdef0123456789abcdef");
	body = json_dumps(b, 0);
	o = http_ok("POST", "/api/rules/deploy", RITA, body, 409);
	assert_string_equal(err_field(o), "base_hash");
	assert_string_equal(json_string_value(json_object_get(o, "current_hash")), base);
	json_decref(o);
	free(body);
	json_decref(b);
	/* a file that does not compile is never deployed */
	char *bad = strdup(text), *p = set_review_band(bad, "??");
	assert_non_null(p);
	b = deploy_body(bad, base);
	body = json_dumps(b, 0);
	o = http_ok("POST", "/api/rules/deploy", RITA, body, 422);
	e = json_array_get(json_object_get(o, "errors"), 0);
	{
		int line = 1;

		for (const char *q = bad; q < p; q++)
			line += *q == '\n';
		assert_int_equal(json_integer_value(json_object_get(e, "line")), line);
	}
	assert_int_equal(json_integer_value(json_object_get(e, "col")), 15);
	json_decref(o);
	free(body);
	json_decref(b);
	free(bad);
	{
		char *now = rules_hash(RITA);
		assert_string_equal(now, base); /* untouched */
		free(now);
	}
	/* a good edit deploys; vigild reloads it */
	char *good = strdup(text);
	p = set_review_band(good, "45");
	assert_non_null(p);
	b = deploy_body(good, base);
	body = json_dumps(b, 0);
	o = http_ok("POST", "/api/rules/deploy", RITA, body, 200);
	assert_true(json_is_true(json_object_get(o, "changed")));
	int version = (int)json_integer_value(json_object_get(o, "version"));
	assert_true(version >= 2);
	json_decref(o);
	free(body);
	json_decref(b);
	v1 = wait_vigild_hash_change(v0);
	assert_non_null(v1);
	/* the same base again is stale now */
	b = deploy_body(text, base);
	body = json_dumps(b, 0);
	json_decref(http_ok("POST", "/api/rules/deploy", RITA, body, 409));
	free(body);
	json_decref(b);
	/* roll back to version 1 (the file as found) */
	char *cur = rules_hash(RITA);
	char rb[200];
	snprintf(rb, sizeof rb, "{\"version\": 1, \"base_hash\": \"%s\"}", cur);
	o = http_ok("POST", "/api/rules/rollback", RITA, rb, 200);
	json_decref(o);
	free(cur);
	cur = rules_hash(RITA);
	assert_string_equal(cur, base);
	char *v2 = wait_vigild_hash_change(v1);
	assert_non_null(v2);
	assert_string_equal(v2, v0);
	/* versions and the audit log hold all of it */
	o = http_ok("GET", "/api/rules/versions", RITA, NULL, 200);
	assert_true(json_array_size(json_object_get(o, "versions")) >= 3);
	json_decref(o);
	/* a version that is no number names no version: 404, as an unknown one */
	{
		static const char *const none[] = { "abc", "+1", "01", "0", "999999" };

		for (size_t i = 0; i < sizeof none / sizeof none[0]; i++) {
			char path[64];

			snprintf(path, sizeof path, "/api/rules/versions/%s", none[i]);
			http_refused("GET", path, RITA, NULL, 404, "version");
		}
		json_decref(http_ok("GET", "/api/rules/versions/1", RITA, NULL, 200));
	}
	o = http_ok("GET", "/api/audit", RITA, NULL, 200);
	char *dump = json_dumps(o, 0);
	assert_non_null(strstr(dump, "\"deploy_rules\""));
	assert_non_null(strstr(dump, "\"rollback_rules\""));
	assert_non_null(strstr(dump, "band review = 45"));
	free(dump);
	json_decref(o);
	free(cur);
	free(v0);
	free(v1);
	free(v2);
	free(good);
	free(text);
	free(base);
}

/* The current rule file's text (malloc'd). */
static char *
rules_text_now(void)
{
	json_t *o = http_ok("GET", "/api/rules", RITA, NULL, 200);
	char *t = strdup(json_string_value(json_object_get(o, "text")));

	json_decref(o);
	return t;
}

/* Whether the JSON array of strings arr has one equal to s. */
static bool
json_strings_have(const json_t *arr, const char *s)
{
	size_t i;
	json_t *v;

	json_array_foreach(arr, i, v)
		if (json_is_string(v) && strcmp(json_string_value(v), s) == 0)
			return true;
	return false;
}

/* The 1-based line of text on which the first needle starts (0: absent). */
static int
line_of(const char *text, const char *needle)
{
	const char *p = strstr(text, needle);
	int line = 1;

	if (p == NULL)
		return 0;
	for (const char *q = text; q < p; q++)
		line += *q == '\n';
	return line;
}

/*
 * The rules page's tools: each rule names the thresholds it compares
 * against with their declaration and the value in force (the fallback,
 * and why, when no generation tuned it); a mode toggle rewrites the rule's
 * `mode` clause (added, or the word replaced: promoting a shadow rule);
 * the diff against the deployed file, as the server computes it.
 */
void
test_rules_page_tools(void **s)
{
	char *text = rules_text_now(), *body;
	json_t *o, *r, *t, *b;
	size_t i;
	bool seen = false;

	(void)s;
	o = http_ok("GET", "/api/rules", EVE, NULL, 200);
	assert_int_equal(json_integer_value(json_object_get(o, "approvers")), 1);
	assert_true(json_is_null(json_object_get(o, "proposal")));
	json_array_foreach(json_object_get(o, "rules"), i, r) {
		size_t k;
		json_array_foreach(json_object_get(r, "thresholds"), k, t) {
			if (strcmp(json_string_value(json_object_get(t, "name")), "zscore_high") != 0)
				continue;
			seen = true;
			assert_string_equal(json_string_value(json_object_get(t, "kind")), "percentile");
			assert_string_equal(json_string_value(json_object_get(t, "feature")),
			    "card.amount_zscore");
			assert_true(json_real_value(json_object_get(t, "fallback")) == 4.0);
			assert_true(json_real_value(json_object_get(t, "value")) == 4.0);
			assert_true(json_is_false(json_object_get(t, "tuned")));
			assert_non_null(strstr(json_string_value(json_object_get(t, "why")),
			    "the fallback is in force"));
		}
	}
	assert_true(seen);
	json_decref(o);

	/* shadow an active rule: a mode clause is added before its brace */
	b = json_pack("{s:s, s:s, s:s}", "text", text, "rule", "card_testing_repeat", "mode",
	    "shadow");
	body = json_dumps(b, 0);
	o = http_ok("POST", "/api/rules/mode", EVE, body, 200);
	assert_non_null(strstr(json_string_value(json_object_get(o, "text")),
	    "  tags [\"card-testing\", \"velocity\"]\n  mode shadow\n}"));
	{
		/* the clause goes on the line of the rule's closing brace */
		char want[64];
		int line = line_of(text, "rule card_testing_repeat {");

		assert_true(line > 0);
		line += line_of(strstr(text, "rule card_testing_repeat {"), "\n}");
		snprintf(want, sizeof want, "+%d:   mode shadow", line);
		assert_true(json_strings_have(json_object_get(o, "diff"), want));
	}
	assert_int_equal(json_array_size(json_object_get(o, "diff")), 1);
	json_decref(o);
	free(body);
	json_decref(b);
	/* promote a shadow rule: the word is replaced */
	b = json_pack("{s:s, s:s, s:s}", "text", text, "rule", "resale_goods_second_merchant",
	    "mode", "active");
	body = json_dumps(b, 0);
	o = http_ok("POST", "/api/rules/mode", EVE, body, 200);
	{
		/* the rule's own mode line */
		const char *rr = strstr(text, "rule resale_goods_second_merchant {");
		char want[64];
		int line;

		assert_non_null(rr);
		line = line_of(text, "rule resale_goods_second_merchant {") - 1 +
		    line_of(rr, "  mode shadow\n");
		snprintf(want, sizeof want, "-%d:   mode shadow", line);
		assert_true(json_strings_have(json_object_get(o, "diff"), want));
		snprintf(want, sizeof want, "+%d:   mode active", line);
		assert_true(json_strings_have(json_object_get(o, "diff"), want));
	}
	{
		/* the result compiles, with the rule active */
		json_t *c = json_pack("{s:O}", "text", json_object_get(o, "text"));
		char *cb = json_dumps(c, 0);
		json_decref(http_ok("POST", "/api/rules/check", EVE, cb, 200));
		free(cb);
		json_decref(c);
	}
	json_decref(o);
	free(body);
	json_decref(b);
	/* bad requests name the field */
	b = json_pack("{s:s, s:s, s:s}", "text", text, "rule", "no_such_rule", "mode", "shadow");
	body = json_dumps(b, 0);
	o = http_ok("POST", "/api/rules/mode", EVE, body, 404);
	assert_string_equal(err_field(o), "rule");
	json_decref(o);
	free(body);
	json_decref(b);
	b = json_pack("{s:s, s:s, s:s}", "text", text, "rule", "card_testing_repeat", "mode", "off");
	body = json_dumps(b, 0);
	o = http_ok("POST", "/api/rules/mode", EVE, body, 400);
	assert_string_equal(err_field(o), "mode");
	json_decref(o);
	free(body);
	json_decref(b);

	/* the diff before deploy */
	char *edited = strdup(text), want[64];
	int line = line_of(edited, "band review = review_at");

	assert_true(line > 0);
	set_review_band(edited, "45");
	b = json_pack("{s:s}", "text", edited);
	body = json_dumps(b, 0);
	o = http_ok("POST", "/api/rules/diff", EVE, body, 200);
	assert_true(json_is_true(json_object_get(o, "changed")));
	assert_int_equal(json_integer_value(json_object_get(o, "added")), 1);
	assert_int_equal(json_integer_value(json_object_get(o, "removed")), 1);
	snprintf(want, sizeof want, "-%d: band review = review_at", line);
	assert_true(json_strings_have(json_object_get(o, "diff"), want));
	snprintf(want, sizeof want, "+%d: band review = 45", line);
	assert_true(json_strings_have(json_object_get(o, "diff"), want));
	json_decref(o);
	free(body);
	json_decref(b);
	free(edited);
	free(text);
}

/*
 * Four eyes (--deploy-approvers 2): a deploy is a proposal (202, the file
 * untouched); its author cannot approve it, an analyst without the role
 * cannot either; another rule-editor's or admin's approval deploys it
 * (vigild reloads), audited with the proposer, the approver and the
 * before/after hashes exactly; a proposal can be rejected.
 */
void
test_rules_four_eyes(void **s)
{
	char *text = rules_text_now(), *base = rules_hash(RITA), *v0 = vigild_hash(), *v1, *body;
	char *edited = strdup(text), *p = set_review_band(edited, "45"), hash[33], ab[100];
	json_t *o, *b, *e;

	(void)s;
	assert_non_null(p);
	console_restart_with("--deploy-approvers", "2", NULL);
	b = json_pack("{s:s, s:s, s:s}", "text", edited, "base_hash", base, "message", "review at 45");
	body = json_dumps(b, 0);
	o = http_ok("POST", "/api/rules/deploy", RITA, body, 202);
	assert_true(json_is_true(json_object_get(o, "pending")));
	snprintf(hash, sizeof hash, "%s",
	    json_string_value(json_object_get(json_object_get(o, "proposal"), "hash")));
	{
		char want[64];

		snprintf(want, sizeof want, "+%d: band review = 45",
		    line_of(text, "band review = review_at"));
		assert_true(json_strings_have(json_object_get(json_object_get(o, "proposal"),
		    "diff"), want));
	}
	json_decref(o);
	{
		char *now = rules_hash(RITA);
		assert_string_equal(now, base); /* not deployed yet */
		free(now);
	}
	e = audit_newest();
	assert_string_equal(json_string_value(json_object_get(e, "action")), "propose_rules");
	assert_string_equal(json_string_value(json_object_get(json_object_get(e, "before"), "hash")),
	    base);
	assert_true(json_is_null(json_object_get(json_object_get(e, "before"), "proposal")));
	assert_string_equal(json_string_value(json_object_get(json_object_get(e, "after"), "hash")),
	    hash);
	assert_string_equal(json_string_value(json_object_get(json_object_get(e, "after"),
	    "proposed_by")), "rita");
	json_decref(e);
	/* the page shows it */
	o = http_ok("GET", "/api/rules", EVE, NULL, 200);
	assert_int_equal(json_integer_value(json_object_get(o, "approvers")), 2);
	assert_string_equal(json_string_value(json_object_get(json_object_get(o, "proposal"),
	    "proposed_by")), "rita");
	json_decref(o);
	/* the author cannot approve; an analyst has not the role */
	snprintf(ab, sizeof ab, "{\"hash\": \"%s\"}", hash);
	o = http_ok("POST", "/api/rules/approve", RITA, ab, 403);
	assert_string_equal(err_msg(o), "rita proposed this change: a different analyst must "
	    "approve it");
	json_decref(o);
	json_decref(http_ok("POST", "/api/rules/approve", ALICE, ab, 403));
	o = http_ok("POST", "/api/rules/approve", ADAM, "{\"hash\": \"0123\"}", 404);
	assert_string_equal(err_field(o), "hash");
	json_decref(o);
	/* another analyst with the role approves: deployed, vigild reloads */
	o = http_ok("POST", "/api/rules/approve", ADAM, ab, 200);
	assert_true(json_is_true(json_object_get(o, "changed")));
	assert_string_equal(json_string_value(json_object_get(o, "hash")), hash);
	json_decref(o);
	v1 = wait_vigild_hash_change(v0);
	assert_non_null(v1);
	e = audit_newest();
	assert_string_equal(json_string_value(json_object_get(e, "action")), "deploy_rules");
	assert_string_equal(json_string_value(json_object_get(e, "who")), "adam");
	assert_string_equal(json_string_value(json_object_get(json_object_get(e, "before"), "hash")),
	    base);
	assert_string_equal(json_string_value(json_object_get(json_object_get(e, "after"), "hash")),
	    hash);
	assert_string_equal(json_string_value(json_object_get(json_object_get(e, "after"),
	    "proposed_by")), "rita");
	assert_string_equal(json_string_value(json_object_get(json_object_get(e, "after"),
	    "approved_by")), "adam");
	json_decref(e);
	/* it is gone once deployed */
	json_decref(http_ok("POST", "/api/rules/approve", ADAM, ab, 404));
	/* a proposal rejected: audited, the file untouched */
	json_decref(b);
	free(body);
	b = json_pack("{s:s, s:s}", "text", text, "base_hash", hash);
	body = json_dumps(b, 0);
	o = http_ok("POST", "/api/rules/deploy", RITA, body, 202);
	json_decref(o);
	/* a message that is not a string: 400 naming it, the proposal kept */
	snprintf(ab, sizeof ab, "{\"hash\": \"%s\", \"message\": 5}", base);
	o = http_ok("POST", "/api/rules/reject", RITA, ab, 400);
	assert_string_equal(err_field(o), "message");
	json_decref(o);
	snprintf(ab, sizeof ab, "{\"hash\": \"%s\"}", base);
	json_decref(http_ok("POST", "/api/rules/reject", RITA, ab, 200));
	e = audit_newest();
	assert_string_equal(json_string_value(json_object_get(e, "action")), "reject_rules");
	assert_string_equal(json_string_value(json_object_get(json_object_get(e, "before"), "hash")),
	    base);
	json_decref(e);
	{
		char *now = rules_hash(RITA);
		assert_string_equal(now, hash);
		free(now);
	}
	/* a proposal over the file as it is now, left pending: the roll back
	 * below makes it stale */
	json_decref(http_ok("POST", "/api/rules/deploy", RITA, body, 202));
	/* roll back (one analyst's action): the file as it was */
	{
		char rb[200];
		json_t *vs = http_ok("GET", "/api/rules/versions", RITA, NULL, 200);
		size_t i;
		json_t *v;
		int ver = 0;

		json_array_foreach(json_object_get(vs, "versions"), i, v)
			if (strcmp(json_string_value(json_object_get(v, "hash")), base) == 0)
				ver = (int)json_integer_value(json_object_get(v, "version"));
		json_decref(vs);
		assert_true(ver > 0);
		snprintf(rb, sizeof rb, "{\"version\": %d, \"base_hash\": \"%s\"}", ver, hash);
		json_decref(http_ok("POST", "/api/rules/rollback", RITA, rb, 200));
		char *now = rules_hash(RITA);
		assert_string_equal(now, base);
		free(now);
	}
	/* its approval now: 409, and the stale proposal goes with an audit line */
	snprintf(ab, sizeof ab, "{\"hash\": \"%s\"}", base);
	json_decref(http_ok("POST", "/api/rules/approve", ADAM, ab, 409));
	e = audit_newest();
	assert_string_equal(json_string_value(json_object_get(e, "action")), "drop_proposal");
	assert_string_equal(json_string_value(json_object_get(e, "who")), "adam");
	assert_string_equal(json_string_value(json_object_get(json_object_get(e, "before"), "hash")),
	    base);
	assert_string_equal(json_string_value(json_object_get(json_object_get(e, "after"), "hash")),
	    base);
	json_decref(e);
	json_decref(http_ok("POST", "/api/rules/approve", ADAM, ab, 404));
	console_restart_with(NULL);
	json_decref(b);
	free(body);
	free(v0);
	free(v1);
	free(edited);
	free(text);
	free(base);
}


/* ---- back-tests within bounds (issue 28, row 4) ---- */

static char wrap_marks[400], wrap_mode[400];
static int  console_nice; /* the nice value the replays must have */

/* Lines of the wrapper's marks file: "PID PGRP NICE IONICE..." */
static int
wrap_lines(char lines[][160], int cap)
{
	FILE *f = fopen(wrap_marks, "r");
	int n = 0;

	if (f == NULL)
		return 0;
	while (n < cap && fgets(lines[n], 160, f) != NULL)
		n++;
	fclose(f);
	return n;
}

static void
wrap_set_mode(const char *mode)
{
	FILE *f = fopen(wrap_mode, "w");

	assert_non_null(f);
	fprintf(f, "%s\n", mode);
	fclose(f);
	unlink(wrap_marks);
}

/* Every process the marks name is gone (reaped by the console), and the
 * console's STATE/tmp holds no back-test directory: bounded wait. */
static void
wrap_wait_cleaned(const char *stage)
{
	char lines[8][160], dir[400];
	int n = 0, alive = 0, dirs = 0;

	snprintf(dir, sizeof dir, "%s/tmp", state);
	for (int i = 0; i < 200; i++) {
		n = wrap_lines(lines, 8);
		alive = 0;
		dirs = 0;
		DIR *dp;
		struct dirent *de;

		for (int k = 0; k < n; k++) {
			int pid = atoi(lines[k]);
			char path[64];
			struct stat st;
			snprintf(path, sizeof path, "/proc/%d", pid);
			alive += pid > 0 && stat(path, &st) == 0;
		}
		if ((dp = opendir(dir)) != NULL) {
			while ((de = readdir(dp)) != NULL)
				dirs += strncmp(de->d_name, "backtest-", 9) == 0;
			closedir(dp);
		}
		if (n == 2 && alive == 0 && dirs == 0)
			return;
		usleep(50000);
	}
	fail_msg("%s: the back-test's processes (%d of %d alive) or directory (%d) are still there", stage,
	    alive, n, dirs);
}

/* The default rule file with the review band moved, as a back-test body. */
static char *
backtest_body(void)
{
	char *text = calloc(1, 1 << 20), *body;
	FILE *f = fopen(rules_path, "r");
	json_t *b;

	assert_non_null(f);
	assert_true(fread(text, 1, (1 << 20) - 1, f) > 0);
	fclose(f);
	set_review_band(text, "60");
	/* the as-of nightly replay: two children, a work directory that grows */
	b = json_pack("{s:s, s:i, s:b}", "text", text, "days", 3, "nightly", 1);
	body = json_dumps(b, 0);
	json_decref(b);
	free(text);
	return body;
}

/*
 * vigil-replay runs at a lower CPU and I/O priority (nice 10, best effort
 * 7) in a process group of its own; a back-test whose work directory
 * outgrows --backtest-disk-mib is stopped (507), its processes killed and
 * its directory removed; so is one whose client goes away; and none starts
 * when the filesystem has less than --backtest-reserve-mib free. The replay
 * is the real one behind a wrapper that records its priority and, for the
 * faults, fills the directory (a nightly work directory growing) or stalls.
 */
void
test_backtest_bounds(void **s)
{
	char wrap[400], lines[8][160], *body = backtest_body();
	char req[1 << 16];
	json_t *o;
	FILE *f;
	int fd, n;
	struct sockaddr_in a = { .sin_family = AF_INET };

	(void)s;
	snprintf(wrap, sizeof wrap, "%s/replay-wrap.sh", tmp);
	snprintf(wrap_marks, sizeof wrap_marks, "%s/wrap-marks", tmp);
	snprintf(wrap_mode, sizeof wrap_mode, "%s/wrap-mode", tmp);
	f = fopen(wrap, "w");
	assert_non_null(f);
	fprintf(f, "#!/bin/sh\n"
	    "res=; prev=\n"
	    "for a; do [ \"$prev\" = --results ] && res=$a; prev=$a; done\n"
	    "echo \"$$ $(cut -d' ' -f5 /proc/$$/stat) $(cut -d' ' -f19 /proc/$$/stat) "
	    "$(ionice -p $$)\" >>'%s'\n"
	    "case $(cat '%s') in\n"
	    "sleep) exec sleep 120 ;;\n"
	    "fail) head -c 70000 /dev/zero | tr '\\0' x; echo; echo 'fatal: the wrapper says no'; "
	    "exit 2 ;;\n"
	    "fill) head -c 4194304 /dev/zero >\"${res%%/*}/fill.$$\"; exec sleep 120 ;;\n"
	    "esac\n"
	    "exec '%s' \"$@\"\n", wrap_marks, wrap_mode,
	    vt_build_path("tools/replay/vigil-replay"));
	fclose(f);
	assert_int_equal(chmod(wrap, 0755), 0);
	console_restart_with("--replay", wrap, "--backtest-disk-mib", "2", NULL);

	/* the real replay, at the lower priority, each leading its group */
	wrap_set_mode("real");
	json_decref(http_ok("POST", "/api/rules/backtest", RITA, body, 200));
	n = wrap_lines(lines, 8);
	assert_int_equal(n, 2);
	{
		/* 10 below the console's own (which a niced test run raises) */
		char sp[64], st[1024];
		int cn = 0;
		FILE *pf;

		snprintf(sp, sizeof sp, "/proc/%d/stat", (int)console_pid);
		pf = fopen(sp, "r");
		assert_non_null(pf);
		assert_non_null(fgets(st, sizeof st, pf));
		fclose(pf);
		assert_int_equal(sscanf(strrchr(st, ')') + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u "
		    "%*u %*u %*u %*d %*d %*d %d", &cn), 1);
		console_nice = cn + 10 > 19 ? 19 : cn + 10;
	}
	for (int k = 0; k < n; k++) {
		int pid = 0, pgrp = 0, ni = -1;
		assert_int_equal(sscanf(lines[k], "%d %d %d", &pid, &pgrp, &ni), 3);
		assert_int_equal(pgrp, pid);
		assert_int_equal(ni, console_nice);
		assert_non_null(strstr(lines[k], "best-effort: prio 7"));
	}
	wrap_wait_cleaned("real");

	/* a work directory over the budget: stopped, killed, removed */
	wrap_set_mode("fill");
	o = http_ok("POST", "/api/rules/backtest", RITA, body, 507);
	assert_non_null(strstr(err_msg(o),
	    "over --backtest-disk-mib 2"));
	json_decref(o);
	wrap_wait_cleaned("fill");

	/* a replay that fails after a long log (70 KB): its last line is the
	 * answer */
	wrap_set_mode("fail");
	o = http_ok("POST", "/api/rules/backtest", RITA, body, 500);
	assert_non_null(strstr(err_msg(o), "fatal: the wrapper says no"));
	json_decref(o);
	wrap_wait_cleaned("fail");

	/* the client goes away: stopped, killed, removed */
	wrap_set_mode("sleep");
	a.sin_port = htons(console_port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
	n = snprintf(req, sizeof req, "POST /api/rules/backtest HTTP/1.1\r\nHost: x\r\n"
	    "Authorization: Bearer " RITA "\r\nContent-Type: application/json\r\n"
	    "Content-Length: %zu\r\n\r\n", strlen(body));
	assert_int_equal(write(fd, req, (size_t)n), n);
	assert_int_equal(write(fd, body, strlen(body)), (ssize_t)strlen(body));
	for (int i = 0; i < 200 && wrap_lines(lines, 8) < 2; i++)
		usleep(50000);
	assert_int_equal(wrap_lines(lines, 8), 2);
	close(fd);
	wrap_wait_cleaned("disconnect");
	console_log_wait("'s back-test stopped: the client went away", 1);
	/* and the next one runs */
	wrap_set_mode("real");
	json_decref(http_ok("POST", "/api/rules/backtest", RITA, body, 200));
	wrap_wait_cleaned("next");

	/* not enough free space: not started */
	console_restart_with("--replay", wrap, "--backtest-reserve-mib", "1073741824", NULL);
	wrap_set_mode("real");
	o = http_ok("POST", "/api/rules/backtest", RITA, body, 507);
	assert_non_null(strstr(err_msg(o),
	    "must leave --backtest-reserve-mib 1073741824 free: not started"));
	json_decref(o);
	assert_int_equal(wrap_lines(lines, 8), 0);

	/* a --replay that does not run: the answer names it */
	console_restart_with("--replay", "/nonexistent/vigil-replay", NULL);
	o = http_ok("POST", "/api/rules/backtest", RITA, body, 500);
	assert_non_null(strstr(err_msg(o), "cannot run /nonexistent/vigil-replay: not found or "
	    "not executable (--replay)"));
	json_decref(o);

	console_restart_with(NULL);
	free(body);
}

/* Whether path exists. */
static bool
path_exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

/* The where of the error object of o, asserting its code INTERNAL and file. */
static json_t *
internal_where(json_t *o, const char *file)
{
	json_t *w = json_object_get(json_object_get(o, "error"), "where");

	assert_string_equal(json_string_value(json_object_get(json_object_get(o, "error"),
	    "code")), "INTERNAL");
	assert_string_equal(json_string_value(json_object_get(w, "file")), file);
	return w;
}

/* internal_where's checks on an answer the caller is done with: o freed. */
static void
expect_internal(json_t *o, const char *file)
{
	(void)internal_where(o, file);
	json_decref(o);
}

/*
 * STATE/rules/versions.jsonl that does not load (a garbage line in the
 * middle, the last line cut short) would number the next version from a
 * short history, over a deployed version's file: a deploy and a roll-back
 * are refused (500, the file and line:col), versions.jsonl, the version
 * files and the rule file unchanged, the versions that load listed with
 * `versions_error`, said once in the log. Independently, a file in the
 * way of the next version's number is never replaced: refused, kept.
 */
void
test_rules_versions_unloadable(void **s)
{
	static const char said_text[] = "deploys and roll-backs are refused until it is repaired";
	char vj[400], vf[400], vnext[400], rb[200], *good = NULL, *vlast = NULL, *body;
	char *text = rules_text_now(), *base = rules_hash(RITA), *edited = strdup(text);
	size_t glen = 0, vlen = 0, i;
	int said = console_log_count(said_text), nver, lines = 0, other = 0;
	json_t *o, *w, *b, *v;

	(void)s;
	assert_non_null(set_review_band(edited, "44"));
	snprintf(vj, sizeof vj, "%s/rules/versions.jsonl", state);
	read_bytes(vj, &good, &glen);
	for (i = 0; i < glen; i++)
		lines += good[i] == '\n';
	o = http_ok("GET", "/api/rules/versions", RITA, NULL, 200);
	nver = (int)json_array_size(json_object_get(o, "versions"));
	json_array_foreach(json_object_get(o, "versions"), i, v)
		if (strcmp(json_string_value(json_object_get(v, "hash")), base) != 0)
			other = (int)json_integer_value(json_object_get(v, "version"));
	assert_null(json_object_get(o, "versions_error"));
	json_decref(o);
	assert_int_equal(nver, lines);
	assert_true(nver >= 3 && other > 0);
	snprintf(vf, sizeof vf, "%s/rules/%06d.rules", state, nver);
	snprintf(vnext, sizeof vnext, "%s/rules/%06d.rules", state, nver + 1);
	read_bytes(vf, &vlast, &vlen);
	b = deploy_body(edited, base);
	body = json_dumps(b, 0);
	snprintf(rb, sizeof rb, "{\"version\": %d, \"base_hash\": \"%s\"}", other, base);
	for (int k = 0; k < 2; k++) {
		size_t first = (size_t)(strchr(good, '\n') - good) + 1, blen, nlen;
		char *bad = calloc(1, glen + 9), *now = NULL;

		assert_non_null(bad);
		if (k == 0) { /* a garbage line after the first */
			memcpy(bad, good, first);
			memcpy(bad + first, "garbage\n", 8);
			memcpy(bad + first + 8, good + first, glen - first);
			blen = glen + 8;
		} else { /* the last line cut short, as by a crash in its append */
			blen = glen - 10;
			memcpy(bad, good, blen);
		}
		write_bytes(vj, bad, blen);
		o = http_ok("POST", "/api/rules/deploy", RITA, body, 500);
		w = internal_where(o, vj);
		if (k == 0) {
			assert_string_equal(err_msg(o), "a rule version does not parse: '[' or '{' "
			    "expected near 'garbage'");
			assert_int_equal(json_integer_value(json_object_get(w, "line")), 2);
			assert_int_equal(json_integer_value(json_object_get(w, "column")), 7);
		} else {
			assert_true(strncmp(err_msg(o), "a rule version does not parse: ", 31) == 0);
			assert_int_equal(json_integer_value(json_object_get(w, "line")), lines);
			assert_true(json_integer_value(json_object_get(w, "column")) > 1);
		}
		json_decref(o);
		expect_internal(http_ok("POST", "/api/rules/rollback", RITA, rb, 500), vj);
		/* listed: the versions that load, and why the rest do not */
		o = http_ok("GET", "/api/rules/versions", EVE, NULL, 200);
		assert_int_equal(json_array_size(json_object_get(o, "versions")),
		    k == 0 ? nver : nver - 1);
		assert_string_equal(json_string_value(json_object_get(json_object_get(json_object_get(
		    o, "versions_error"), "where"), "file")), vj);
		json_decref(o);
		o = http_ok("GET", "/api/rules", EVE, NULL, 200);
		assert_non_null(json_object_get(o, "versions_error"));
		json_decref(o);
		/* nothing written */
		read_bytes(vj, &now, &nlen);
		assert_int_equal(nlen, blen);
		assert_memory_equal(now, bad, blen);
		free(now);
		read_bytes(vf, &now, &nlen);
		assert_int_equal(nlen, vlen);
		assert_memory_equal(now, vlast, vlen);
		free(now);
		assert_false(path_exists(vnext));
		now = rules_hash(RITA);
		assert_string_equal(now, base);
		free(now);
		free(bad);
	}
	assert_int_equal(console_log_count(said_text), said + 1);
	write_bytes(vj, good, glen);
	/* a version file in the way of the next number: refused, not replaced */
	write_bytes(vnext, "# kept\n", 7);
	o = http_ok("POST", "/api/rules/deploy", RITA, body, 500);
	internal_where(o, vnext);
	{
		char want[160], *now = NULL;
		size_t nlen;

		snprintf(want, sizeof want, "version %d exists though versions.jsonl does not list "
		    "it: not written over (remove it if it was never deployed, else list it in "
		    "versions.jsonl)", nver + 1);
		assert_string_equal(err_msg(o), want);
		read_bytes(vnext, &now, &nlen);
		assert_int_equal(nlen, 7);
		assert_memory_equal(now, "# kept\n", 7);
		free(now);
		read_bytes(vj, &now, &nlen);
		assert_int_equal(nlen, glen);
		assert_memory_equal(now, good, glen);
		free(now);
		now = rules_hash(RITA);
		assert_string_equal(now, base);
		free(now);
	}
	json_decref(o);
	/* out of the way, the deploy takes that number; roll back after it */
	assert_int_equal(unlink(vnext), 0);
	o = http_ok("POST", "/api/rules/deploy", RITA, body, 200);
	assert_int_equal(json_integer_value(json_object_get(o, "version")), nver + 1);
	snprintf(rb, sizeof rb, "{\"version\": %d, \"base_hash\": \"%s\"}", nver,
	    json_string_value(json_object_get(o, "hash")));
	json_decref(o);
	json_decref(http_ok("POST", "/api/rules/rollback", RITA, rb, 200));
	{
		char *now = rules_hash(RITA);
		assert_string_equal(now, base);
		free(now);
	}
	json_decref(b);
	free(body);
	free(vlast);
	free(good);
	free(edited);
	free(text);
	free(base);
}

/* "# NAME NNNN\n" n times, then text: a longer file, its lines moved down by n. */
static char *
padded(const char *name, int n, const char *text)
{
	size_t tl = strlen(text), pl = strlen(name) + 8;
	char *s = malloc((size_t)n * pl + tl + 1), *p = s;

	assert_non_null(s);
	for (int i = 0; i < n; i++)
		p += snprintf(p, pl + 1, "# %s %04d\n", name, i);
	memcpy(p, text, tl + 1);
	return s;
}

/*
 * The diff of a long file: a change at line 4,000-odd of a deployed
 * 4,100-line file is shown with its line number (the lines both texts
 * start and end with are set aside before the LCS); over 4,000 changed
 * lines, the diff ends with an entry that says where it stops.
 */
void
test_rules_diff_long(void **s)
{
	char *text = rules_text_now(), *base = rules_hash(RITA), *lng = padded("pad", 4100, text);
	char *edited = strdup(lng), *more, want[64], rb[200], *body;
	int line = line_of(lng, "band review = review_at"), nver;
	json_t *o, *b, *d;

	(void)s;
	assert_true(line > 4100);
	o = http_ok("GET", "/api/rules/versions", RITA, NULL, 200);
	nver = (int)json_array_size(json_object_get(o, "versions"));
	json_decref(o);
	b = deploy_body(lng, base);
	body = json_dumps(b, 0);
	o = http_ok("POST", "/api/rules/deploy", RITA, body, 200);
	snprintf(rb, sizeof rb, "{\"version\": %d, \"base_hash\": \"%s\"}", nver,
	    json_string_value(json_object_get(o, "hash")));
	json_decref(o);
	free(body);
	json_decref(b);
	/* a change past line 4,000 */
	assert_non_null(set_review_band(edited, "46"));
	b = json_pack("{s:s}", "text", edited);
	body = json_dumps(b, 0);
	o = http_ok("POST", "/api/rules/diff", EVE, body, 200);
	assert_int_equal(json_integer_value(json_object_get(o, "added")), 1);
	assert_int_equal(json_integer_value(json_object_get(o, "removed")), 1);
	snprintf(want, sizeof want, "+%d: band review = 46", line);
	assert_true(json_strings_have(json_object_get(o, "diff"), want));
	json_decref(o);
	free(body);
	json_decref(b);
	/* 4,100 lines more before it: over the cap, said at the end */
	more = padded("more", 4100, edited);
	b = json_pack("{s:s}", "text", more);
	body = json_dumps(b, 0);
	o = http_ok("POST", "/api/rules/diff", EVE, body, 200);
	d = json_object_get(o, "diff");
	assert_true(json_array_size(d) > 0);
	assert_non_null(strstr(json_string_value(json_array_get(d, json_array_size(d) - 1)),
	    "... lines 4001.. (old) and 4001.. (new) not compared: over 4000 changed lines"));
	json_decref(o);
	free(body);
	json_decref(b);
	json_decref(http_ok("POST", "/api/rules/rollback", RITA, rb, 200));
	more = (free(more), rules_hash(RITA));
	assert_string_equal(more, base);
	free(more);
	free(edited);
	free(lng);
	free(text);
	free(base);
}

/* The rule file with n lines "# " + 120 x ch (a 2-byte UTF-8 character) before it. */
static char *
churned(const char *ch, int n, const char *text)
{
	size_t tl = strlen(text), ll = 2 + 120 * 2 + 1;
	char *s = malloc((size_t)n * ll + tl + 1), *p = s;

	assert_non_null(s);
	for (int i = 0; i < n; i++) {
		*p++ = '#';
		*p++ = ' ';
		for (int k = 0; k < 120; k++, p += 2)
			memcpy(p, ch, 2);
		*p++ = '\n';
	}
	memcpy(p, text, tl + 1);
	return s;
}

/*
 * A deploy whose audit line would pass the audit log's 4 MiB cap (4,000
 * comment lines of accented letters replaced by others: each \uXXXX in the
 * line's diff) is still audited, the diff left out by its size and the
 * hashes kept; it used to be live with no audit line (500 "deployed, but
 * the audit log could not be written").
 */
void
test_rules_deploy_audit_huge(void **s)
{
	char *text = rules_text_now(), *base = rules_hash(RITA), *a = churned("\xc3\xa9", 4000, text);
	char *b = churned("\xc3\xbc", 4000, text), *body, rb[200], *hash;
	json_t *o, *d, *e, *last = NULL;
	size_t i;
	int nver;

	(void)s;
	nver = 0; /* the version of the file as it is: rolled back to at the end */
	o = http_ok("GET", "/api/rules/versions", RITA, NULL, 200);
	json_array_foreach(json_object_get(o, "versions"), i, e)
		if (strcmp(json_string_value(json_object_get(e, "hash")), base) == 0 &&
		    json_integer_value(json_object_get(e, "version")) > nver)
			nver = (int)json_integer_value(json_object_get(e, "version"));
	json_decref(o);
	assert_true(nver > 0);
	d = deploy_body(a, base);
	body = json_dumps(d, 0);
	o = http_ok("POST", "/api/rules/deploy", RITA, body, 200);
	json_decref(d);
	free(body);
	d = deploy_body(b, json_string_value(json_object_get(o, "hash")));
	json_decref(o);
	body = json_dumps(d, 0);
	o = http_ok("POST", "/api/rules/deploy", RITA, body, 200);
	hash = strdup(json_string_value(json_object_get(o, "hash")));
	json_decref(o);
	json_decref(d);
	free(body);
	o = http_ok("GET", "/api/audit", RITA, NULL, 200);
	json_array_foreach(json_object_get(o, "entries"), i, e) {
		const char *h = json_string_value(json_object_get(json_object_get(e, "after"), "hash"));

		if (strcmp(json_string_value(json_object_get(e, "action")), "deploy_rules") == 0 &&
		    h != NULL && strcmp(h, hash) == 0)
			last = e;
	}
	if (last == NULL)
		fail_msg("no audit line for the deploy of %s", hash);
	e = json_object_get(last, "after");
	assert_true(json_integer_value(json_object_get(json_object_get(e, "diff"),
	    "omitted_bytes")) > (4 << 20) / 2);
	json_decref(o);
	snprintf(rb, sizeof rb, "{\"version\": %d, \"base_hash\": \"%s\"}", nver, hash);
	json_decref(http_ok("POST", "/api/rules/rollback", RITA, rb, 200));
	free(hash);
	hash = rules_hash(RITA);
	assert_string_equal(hash, base);
	free(hash);
	free(a);
	free(b);
	free(text);
	free(base);
}

/*
 * A rule file with a byte that is not UTF-8 in a comment (a file saved as
 * Latin-1: vigild takes it) cannot go into the page's JSON: GET /api/rules
 * answers 500 naming the file, the line and the column of that byte, and
 * the page works again once the file is UTF-8.
 */
void
test_rules_not_utf8(void **s)
{
	char *text = rules_text_now(), *base = rules_hash(RITA), *bad, *now;
	size_t len = strlen(text);
	uint32_t lines = 0;
	json_t *o, *w;

	(void)s;
	for (size_t i = 0; i < len; i++)
		lines += text[i] == '\n';
	bad = malloc(len + 16);
	assert_non_null(bad);
	memcpy(bad, text, len);
	memcpy(bad + len, "# Z\xfcrich\n", 10);
	write_bytes(rules_path, bad, len + 10);
	o = http_ok("GET", "/api/rules", RITA, NULL, 500);
	w = internal_where(o, rules_path);
	assert_int_equal(json_integer_value(json_object_get(w, "line")), lines + 1);
	assert_int_equal(json_integer_value(json_object_get(w, "column")), 4);
	assert_non_null(strstr(err_msg(o), "byte 0xFC is not UTF-8"));
	json_decref(o);
	write_bytes(rules_path, text, len);
	o = http_ok("GET", "/api/rules", RITA, NULL, 200);
	assert_string_equal(json_string_value(json_object_get(o, "hash")), base);
	json_decref(o);
	now = rules_hash(RITA);
	assert_string_equal(now, base);
	free(now);
	free(bad);
	free(text);
	free(base);
}

/* SIGHUP: the console reopens its audit log; waits for the line. */
static void
audit_reopen(const char *audit)
{
	char want[600];

	snprintf(want, sizeof want, "vigil-console: audit: reopened %s (SIGHUP)", audit);
	int n = console_log_count(want);
	assert_int_equal(kill(console_pid, SIGHUP), 0);
	console_log_wait(want, n + 1);
}

/*
 * Four eyes: a proposal whose audit line cannot be written is not made,
 * nor is a rejection, and the proposal that was pending stays pending, its
 * bytes as they were (the audit log a symlink to /dev/full, reopened on
 * SIGHUP).
 */
void
test_rules_proposal_kept(void **s)
{
	char *text = rules_text_now(), *base = rules_hash(RITA), *e1 = strdup(text);
	char *e2 = strdup(text), audit[400], moved[420], pj[400], ab[100], h1[40], *body, *was;
	char *now;
	size_t wlen = 0, nlen = 0;
	bool vadmin = console_vadmin;
	json_t *o, *b;

	(void)s;
	assert_non_null(set_review_band(e1, "47"));
	assert_non_null(set_review_band(e2, "48"));
	console_vadmin = false; /* a start with console_extra */
	console_restart_with("--deploy-approvers", "2", NULL);
	b = json_pack("{s:s, s:s}", "text", e1, "base_hash", base);
	body = json_dumps(b, 0);
	o = http_ok("POST", "/api/rules/deploy", RITA, body, 202);
	snprintf(h1, sizeof h1, "%s",
	    json_string_value(json_object_get(json_object_get(o, "proposal"), "hash")));
	snprintf(ab, sizeof ab, "{\"hash\": \"%s\"}", h1);
	json_decref(o);
	json_decref(b);
	free(body);
	snprintf(pj, sizeof pj, "%s/rules/proposal.json", state);
	read_bytes(pj, &was, &wlen);
	snprintf(audit, sizeof audit, "%s/audit.log", state);
	snprintf(moved, sizeof moved, "%s/audit.log.kept", state);
	assert_int_equal(rename(audit, moved), 0);
	assert_int_equal(symlink("/dev/full", audit), 0);
	audit_reopen(audit);
	b = json_pack("{s:s, s:s}", "text", e2, "base_hash", base);
	body = json_dumps(b, 0);
	o = http_ok("POST", "/api/rules/deploy", ADAM, body, 500);
	assert_non_null(strstr(err_msg(o), "not proposed"));
	json_decref(o);
	/* nor rejected: the proposal put back */
	o = http_ok("POST", "/api/rules/reject", ADAM, ab, 500);
	assert_non_null(strstr(err_msg(o), "not rejected"));
	json_decref(o);
	assert_int_equal(unlink(audit), 0);
	assert_int_equal(rename(moved, audit), 0);
	audit_reopen(audit);
	read_bytes(pj, &now, &nlen);
	assert_int_equal(nlen, wlen);
	assert_memory_equal(now, was, wlen);
	o = http_ok("GET", "/api/rules", EVE, NULL, 200);
	assert_string_equal(json_string_value(json_object_get(json_object_get(o, "proposal"),
	    "hash")), h1);
	json_decref(o);
	json_decref(http_ok("POST", "/api/rules/reject", RITA, ab, 200));
	console_vadmin = vadmin;
	console_restart_with(NULL);
	json_decref(b);
	free(body);
	free(now);
	free(was);
	free(e1);
	free(e2);
	free(text);
	free(base);
}

/* Sets or clears the immutable flag of path (a file or a directory): no
 * write to it, no file made in it, root's included. False where the file
 * system or the privileges do not allow it. */
static bool
set_immutable(const char *path, bool on)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), flags = 0;
	bool ok;

	if (fd < 0)
		return false;
	ok = ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0;
	flags = on ? flags | FS_IMMUTABLE_FL : flags & ~FS_IMMUTABLE_FL;
	ok = ok && ioctl(fd, FS_IOC_SETFLAGS, &flags) == 0;
	close(fd);
	return ok;
}

/*
 * A deploy that fails after its version was numbered takes the version
 * back: versions.jsonl that cannot be appended to (immutable), or a rule
 * file that cannot be written (its directory immutable), answer 500 and
 * leave versions.jsonl as it was and no version file behind, so the next
 * deploy takes that number and succeeds. Skipped where the immutable flag
 * cannot be set (not root, or a file system without it).
 */
void
test_rules_deploy_taken_back(void **s)
{
	char vj[400], vnext[400], rb[200], *text = rules_text_now(), *base = rules_hash(RITA);
	char *edited = strdup(text), *good = NULL, *body, *now = NULL;
	size_t glen = 0, nlen = 0;
	int nver;
	json_t *o, *b;

	(void)s;
	assert_non_null(set_review_band(edited, "43"));
	snprintf(vj, sizeof vj, "%s/rules/versions.jsonl", state);
	read_bytes(vj, &good, &glen);
	o = http_ok("GET", "/api/rules/versions", RITA, NULL, 200);
	nver = (int)json_array_size(json_object_get(o, "versions"));
	json_decref(o);
	snprintf(vnext, sizeof vnext, "%s/rules/%06d.rules", state, nver + 1);
	b = deploy_body(edited, base);
	body = json_dumps(b, 0);
	if (!set_immutable(vj, true)) {
		json_decref(b);
		free(body);
		free(good);
		free(edited);
		free(text);
		free(base);
		skip();
	}
	o = http_ok("POST", "/api/rules/deploy", RITA, body, 500);
	assert_true(set_immutable(vj, false));
	json_decref(o);
	assert_false(path_exists(vnext));
	assert_true(set_immutable(rules_dir, true));
	o = http_ok("POST", "/api/rules/deploy", RITA, body, 500);
	assert_true(set_immutable(rules_dir, false));
	assert_non_null(strstr(err_msg(o), "deploy: "));
	json_decref(o);
	assert_false(path_exists(vnext));
	read_bytes(vj, &now, &nlen);
	assert_int_equal(nlen, glen);
	assert_memory_equal(now, good, glen);
	free(now);
	now = rules_hash(RITA);
	assert_string_equal(now, base);
	free(now);
	/* nothing in the way: the next deploy takes the number; roll back after it */
	o = http_ok("POST", "/api/rules/deploy", RITA, body, 200);
	assert_int_equal(json_integer_value(json_object_get(o, "version")), nver + 1);
	snprintf(rb, sizeof rb, "{\"version\": %d, \"base_hash\": \"%s\"}", nver,
	    json_string_value(json_object_get(o, "hash")));
	json_decref(o);
	json_decref(http_ok("POST", "/api/rules/rollback", RITA, rb, 200));
	now = rules_hash(RITA);
	assert_string_equal(now, base);
	free(now);
	json_decref(b);
	free(body);
	free(good);
	free(edited);
	free(text);
	free(base);
}

/*
 * A STATE/rules/proposal.json that does not load (a draft cut short): the
 * page shows no proposal and says why (`proposal_error`, the file and
 * line:col), approving or rejecting it is refused (500), the log says it
 * once; a new proposal keeps the damaged file as proposal.json.damaged,
 * its bytes as they were, and the audit line and the answer say what it
 * replaced.
 */
void
test_rules_proposal_damaged(void **s)
{
	static const char said_text[] = "a new proposal moves it to proposal.json.damaged";
	static const char cut[] = "{\"hash\": \"0123";
	char pj[400], aside[420], *text = rules_text_now(), *base = rules_hash(RITA);
	char *edited = strdup(text), *body, *now = NULL, ab[100];
	int said = console_log_count(said_text);
	size_t nlen;
	json_t *o, *w, *b, *e;

	(void)s;
	assert_non_null(set_review_band(edited, "46"));
	console_restart_with("--deploy-approvers", "2", NULL);
	snprintf(pj, sizeof pj, "%s/rules/proposal.json", state);
	snprintf(aside, sizeof aside, "%s.damaged", pj);
	write_bytes(pj, cut, sizeof cut - 1);
	for (int k = 0; k < 2; k++) {
		o = http_ok("GET", "/api/rules", EVE, NULL, 200);
		assert_true(json_is_null(json_object_get(o, "proposal")));
		assert_non_null(json_object_get(o, "proposal_error"));
		w = json_object_get(json_object_get(o, "proposal_error"), "where");
		assert_string_equal(json_string_value(json_object_get(w, "file")), pj);
		assert_int_equal(json_integer_value(json_object_get(w, "line")), 1);
		assert_true(strncmp(json_string_value(json_object_get(json_object_get(o,
		    "proposal_error"), "message")), "the pending proposal does not parse: ", 37) == 0);
		json_decref(o);
	}
	expect_internal(http_ok("POST", "/api/rules/approve", ADAM, "{\"hash\": \"0123\"}", 500),
	    pj);
	expect_internal(http_ok("POST", "/api/rules/reject", RITA, "{\"hash\": \"0123\"}", 500),
	    pj);
	assert_int_equal(console_log_count(said_text), said + 1);
	read_bytes(pj, &now, &nlen);
	assert_int_equal(nlen, sizeof cut - 1);
	free(now);
	/* a new proposal: the damaged one kept aside, and said */
	b = deploy_body(edited, base);
	body = json_dumps(b, 0);
	o = http_ok("POST", "/api/rules/deploy", RITA, body, 202);
	assert_string_equal(json_string_value(json_object_get(json_object_get(json_object_get(o,
	    "replaced_error"), "where"), "file")), pj);
	snprintf(ab, sizeof ab, "{\"hash\": \"%s\"}",
	    json_string_value(json_object_get(json_object_get(o, "proposal"), "hash")));
	json_decref(o);
	read_bytes(aside, &now, &nlen);
	assert_int_equal(nlen, sizeof cut - 1);
	assert_memory_equal(now, cut, nlen);
	free(now);
	e = audit_newest();
	assert_string_equal(json_string_value(json_object_get(e, "action")), "propose_rules");
	assert_string_equal(json_string_value(json_object_get(json_object_get(json_object_get(
	    json_object_get(e, "before"), "proposal_error"), "where"), "file")), pj);
	json_decref(e);
	o = http_ok("GET", "/api/rules", EVE, NULL, 200);
	assert_null(json_object_get(o, "proposal_error"));
	json_decref(o);
	json_decref(http_ok("POST", "/api/rules/reject", RITA, ab, 200));
	assert_int_equal(unlink(aside), 0);
	console_restart_with(NULL);
	json_decref(b);
	free(body);
	free(edited);
	free(text);
	free(base);
}
