/* SPDX-License-Identifier: MIT */
/*
 * tests/console/test_console_cases.c - the review queue, a case and its
 * claims, verdicts that reach the archive, search (console-api).
 */
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "console_test.h"
#include "vigil.h"

void
test_auth(void **s)
{
	int st;
	json_t *o;

	(void)s;
	assert_int_equal(http("GET", "/api/queue", NULL, NULL, &st, &o), 0);
	assert_int_equal(st, 401);
	assert_non_null(json_object_get(o, "error"));
	json_decref(o);
	assert_int_equal(http("POST", "/api/cases/t2/label", NULL, "{\"fraud\":true}", &st, &o), 0);
	assert_int_equal(st, 401);
	json_decref(o);
	assert_int_equal(http("POST", "/api/cases/t2/label", "not-a-token-at-all", "{\"fraud\":true}",
	    &st, &o), 0);
	assert_int_equal(st, 401);
	json_decref(o);
	/* health needs no token and tells nothing of the data */
	assert_int_equal(http("GET", "/healthz", NULL, NULL, &st, &o), 0);
	assert_int_equal(st, 200);
	assert_true(json_is_true(json_object_get(o, "ok")));
	assert_null(json_object_get(o, "error")); /* only while the index fails */
	json_decref(o);
	/* a read-only analyst reads, but cannot label or deploy */
	o = http_ok("GET", "/api/me", EVE, NULL, 200);
	assert_string_equal(json_string_value(json_object_get(o, "role")), "read-only");
	json_decref(o);
	json_decref(http_ok("POST", "/api/cases/t2/label", EVE, "{\"fraud\":true}", 403));
	json_decref(http_ok("POST", "/api/rules/deploy", ALICE, "{\"text\":\"\",\"base_hash\":\"x\"}",
	    403));
	/* a token given as its SHA-256 in the file */
	o = http_ok("GET", "/api/me", RITA, NULL, 200);
	assert_string_equal(json_string_value(json_object_get(o, "name")), "rita");
	json_decref(o);
}

void
test_queue(void **s)
{
	json_t *o, *items;

	(void)s;
	o = http_ok("GET", "/api/queue", ALICE, NULL, 200);
	items = json_object_get(o, "items");
	assert_int_equal(json_integer_value(json_object_get(o, "total")), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(items, 0), "txn_id")), "t2");
	assert_string_equal(json_string_value(json_object_get(json_array_get(items, 0), "decision")),
	    "review");
	json_decref(o);
	o = http_ok("GET", "/api/queue?decision=all&sort=score", ALICE, NULL, 200);
	items = json_object_get(o, "items");
	assert_int_equal(json_array_size(items), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(items, 0), "txn_id")), "t3");
	json_decref(o);
	/* the next page by the last row's cursor (`next`, null on the last
	 * page); a cursor of another sort is 400 naming `after` */
	{
		char path[300], next[200];

		o = http_ok("GET", "/api/queue?decision=all&sort=score&limit=1", ALICE, NULL, 200);
		assert_non_null(json_string_value(json_object_get(o, "next")));
		snprintf(next, sizeof next, "%s", json_string_value(json_object_get(o, "next")));
		json_decref(o);
		snprintf(path, sizeof path, "/api/queue?decision=all&sort=score&limit=1&after=%s", next);
		o = http_ok("GET", path, ALICE, NULL, 200);
		items = json_object_get(o, "items");
		assert_int_equal(json_array_size(items), 1);
		assert_string_not_equal(json_string_value(json_object_get(json_array_get(items, 0),
		    "txn_id")), "t3");
		assert_int_equal(json_integer_value(json_object_get(o, "offset")), 1);
		assert_true(json_is_null(json_object_get(o, "next")));
		json_decref(o);
		snprintf(path, sizeof path, "/api/queue?decision=all&sort=time&after=%s", next);
		http_refused("GET", path, ALICE, NULL, 400, "after");
	}
	o = http_ok("GET", "/api/queue?decision=all&card=c1", ALICE, NULL, 200);
	assert_int_equal(json_integer_value(json_object_get(o, "total")), 1);
	json_decref(o);
	o = http_ok("GET", "/api/queue?decision=all&rule=sanctioned_country", ALICE, NULL, 200);
	assert_int_equal(json_integer_value(json_object_get(o, "total")), 1);
	json_decref(o);
	o = http_ok("GET", "/api/queue?decision=all&min_amount=10", ALICE, NULL, 200);
	assert_int_equal(json_integer_value(json_object_get(o, "total")), 1);
	json_decref(o);
	o = http_ok("GET", "/api/queue?decision=all&from=2024-01-02", ALICE, NULL, 200);
	assert_int_equal(json_integer_value(json_object_get(o, "total")), 0);
	json_decref(o);
	/* malformed: the field is named */
	o = http_ok("GET", "/api/queue?sort=amount", ALICE, NULL, 400);
	assert_string_equal(err_field(o), "sort");
	json_decref(o);
	o = http_ok("GET", "/api/queue?colour=red", ALICE, NULL, 400);
	assert_string_equal(err_field(o), "colour");
	json_decref(o);
	o = http_ok("GET", "/api/queue?limit=0", ALICE, NULL, 400);
	assert_string_equal(err_field(o), "limit");
	json_decref(o);
	/* a count in digits only: strtoul alone reads these as 5 (or 2^64 - 1) */
	{
		static const char *const bad[] = {
			"/api/queue?limit=%2B5", "/api/queue?limit=%205", "/api/queue?offset=-1",
			"/api/queue?offset=%2B0", "/api/search?from=2024-01-01&limit=%2B5",
			"/api/entity/card/c1?limit=%2B5",
		};

		for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
			http_refused("GET", bad[i], EVE, NULL, 400,
			    strstr(bad[i], "offset") ? "offset" : "limit");
		}
		json_decref(http_ok("GET", "/api/queue?limit=5&offset=0", EVE, NULL, 200));
	}
}

void
test_case_view(void **s)
{
	json_t *o, *hits, *hist;

	(void)s;
	o = http_ok("GET", "/api/cases/t2", ALICE, NULL, 200);
	hits = json_object_get(o, "hits");
	assert_true(json_array_size(hits) >= 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(hits, 0), "rule")),
	    "card_testing_repeat");
	assert_string_equal(json_string_value(json_object_get(json_array_get(hits, 0), "reason")),
	    "second small amount within 10 minutes (card testing)");
	hist = json_object_get(o, "card_history");
	assert_int_equal(json_array_size(hist), 2); /* t2 and t1, newest first */
	assert_string_equal(json_string_value(json_object_get(json_array_get(hist, 1), "txn_id")), "t1");
	assert_non_null(json_object_get(o, "features"));
	/* the archived content hash, under the name replies give it */
	assert_int_equal(strlen(json_string_value(json_object_get(o, "rules_hash"))), 32);
	assert_null(json_object_get(o, "rules_version"));
	assert_true(json_is_object(json_object_get(o, "txn")));
	json_decref(o);
	json_decref(http_ok("GET", "/api/cases/t1", ALICE, NULL, 404)); /* allowed: not a case */
	json_decref(http_ok("GET", "/api/cases/nope", ALICE, NULL, 404));
}

/* Claims: a conflict is 409; only the holder or an admin releases a claim
 * (409 otherwise); the audit log records each claim's before and after
 * exactly, a renewal included. */
void
test_claim_conflict(void **s)
{
	json_t *o, *e;

	(void)s;
	o = http_ok("POST", "/api/cases/t2/claim", ALICE, NULL, 200);
	assert_string_equal(json_string_value(json_object_get(o, "claimed_by")), "alice");
	json_decref(o);
	o = http_ok("POST", "/api/cases/t2/claim", BOB, NULL, 409);
	assert_string_equal(json_string_value(json_object_get(o, "claimed_by")), "alice");
	assert_non_null(json_object_get(o, "until"));
	json_decref(o);
	/* bob cannot decide alice's case either */
	json_decref(http_ok("POST", "/api/cases/t2/label", BOB, "{\"fraud\":true}", 409));
	/* the queue shows who holds it */
	o = http_ok("GET", "/api/queue", BOB, NULL, 200);
	assert_string_equal(json_string_value(json_object_get(json_object_get(json_array_get(
	    json_object_get(o, "items"), 0), "claim"), "who")), "alice");
	json_decref(o);

	/* bob cannot release alice's claim: 409 naming her, nothing audited */
	o = http_ok("POST", "/api/cases/t2/unclaim", BOB, NULL, 409);
	assert_string_equal(json_string_value(json_object_get(o, "claimed_by")), "alice");
	json_decref(o);
	e = audit_newest();
	assert_string_equal(json_string_value(json_object_get(e, "action")), "claim");
	assert_string_equal(json_string_value(json_object_get(e, "who")), "alice");
	assert_true(json_is_null(json_object_get(e, "before")));
	json_decref(e);
	o = http_ok("GET", "/api/cases/t2", BOB, NULL, 200);
	assert_string_equal(json_string_value(json_object_get(json_object_get(o, "claim"), "who")),
	    "alice");
	json_decref(o);
	/* alice renews: the audit has her claim before and after */
	json_decref(http_ok("POST", "/api/cases/t2/claim", ALICE, NULL, 200));
	e = audit_newest();
	assert_string_equal(json_string_value(json_object_get(e, "action")), "claim");
	assert_string_equal(json_string_value(json_object_get(json_object_get(e, "before"), "who")),
	    "alice");
	assert_non_null(json_object_get(json_object_get(e, "before"), "until"));
	assert_string_equal(json_string_value(json_object_get(json_object_get(e, "after"), "who")),
	    "alice");
	json_decref(e);
	/* an admin may release it: before is alice's claim, after null */
	o = http_ok("POST", "/api/cases/t2/unclaim", ADAM, NULL, 200);
	assert_true(json_is_true(json_object_get(o, "released")));
	json_decref(o);
	e = audit_newest();
	assert_string_equal(json_string_value(json_object_get(e, "action")), "unclaim");
	assert_string_equal(json_string_value(json_object_get(e, "who")), "adam");
	assert_string_equal(json_string_value(json_object_get(json_object_get(e, "before"), "who")),
	    "alice");
	assert_true(json_is_null(json_object_get(e, "after")));
	json_decref(e);
	/* nothing left to release: 200, released false, before null */
	o = http_ok("POST", "/api/cases/t2/unclaim", BOB, NULL, 200);
	assert_true(json_is_false(json_object_get(o, "released")));
	json_decref(o);
	e = audit_newest();
	assert_true(json_is_null(json_object_get(e, "before")));
	json_decref(e);
	/* alice claims it again (a new claim: before null) */
	json_decref(http_ok("POST", "/api/cases/t2/claim", ALICE, NULL, 200));
	e = audit_newest();
	assert_true(json_is_null(json_object_get(e, "before")));
	assert_string_equal(json_string_value(json_object_get(json_object_get(e, "after"), "who")),
	    "alice");
	json_decref(e);
}

/*
 * Case work: notes, status and assignee on a case, shown in the case view,
 * audited (a status change with its before and after), kept across a
 * restart (STATE/casework, not the index); bad input named by field.
 */
void
test_case_work(void **s)
{
	json_t *o, *e, *n;

	(void)s;
	o = http_ok("GET", "/api/cases/t3", EVE, NULL, 200);
	assert_string_equal(json_string_value(json_object_get(o, "status")), "open");
	assert_true(json_is_null(json_object_get(o, "assignee")));
	assert_int_equal(json_array_size(json_object_get(o, "notes")), 0);
	json_decref(o);
	json_decref(http_ok("POST", "/api/cases/t3/note", EVE, "{\"text\":\"x\"}", 403));
	o = http_ok("POST", "/api/cases/t3/note", ALICE,
	    "{\"text\":\"called the cardholder: not them\"}", 200);
	assert_string_equal(json_string_value(json_object_get(json_object_get(o, "note"), "who")),
	    "alice");
	json_decref(o);
	e = audit_newest();
	assert_string_equal(json_string_value(json_object_get(e, "action")), "note");
	assert_string_equal(json_string_value(json_object_get(json_object_get(e, "after"), "text")),
	    "called the cardholder: not them");
	json_decref(e);
	o = http_ok("POST", "/api/cases/t3/status", ALICE,
	    "{\"status\":\"investigating\",\"assignee\":\"bob\"}", 200);
	json_decref(o);
	e = audit_newest();
	assert_string_equal(json_string_value(json_object_get(e, "action")), "case_status");
	assert_string_equal(json_string_value(json_object_get(json_object_get(e, "before"),
	    "status")), "open");
	assert_true(json_is_null(json_object_get(json_object_get(e, "before"), "assignee")));
	assert_string_equal(json_string_value(json_object_get(json_object_get(e, "after"),
	    "status")), "investigating");
	assert_string_equal(json_string_value(json_object_get(json_object_get(e, "after"),
	    "assignee")), "bob");
	json_decref(e);
	/* bad input, by field */
	o = http_ok("POST", "/api/cases/t3/status", ALICE, "{\"status\":\"done\"}", 400);
	assert_string_equal(err_field(o), "status");
	json_decref(o);
	o = http_ok("POST", "/api/cases/t3/status", ALICE, "{\"assignee\":\"eve\"}", 400);
	assert_string_equal(err_field(o), "assignee");
	json_decref(o);
	http_refused("POST", "/api/cases/t3/status", ALICE, "{\"assignee\":\"nobody\"}", 400,
	    "assignee");
	http_refused("POST", "/api/cases/t3/status", ALICE, "{}", 400, "status"); /* neither */
	o = http_ok("POST", "/api/cases/t3/note", ALICE, "{\"text\":\"\"}", 400);
	assert_string_equal(err_field(o), "text");
	json_decref(o);
	/* kept across a restart */
	console_stop();
	console_start();
	o = http_ok("GET", "/api/cases/t3", EVE, NULL, 200);
	assert_string_equal(json_string_value(json_object_get(o, "status")), "investigating");
	assert_string_equal(json_string_value(json_object_get(o, "assignee")), "bob");
	n = json_array_get(json_object_get(o, "notes"), 0);
	assert_string_equal(json_string_value(json_object_get(n, "text")),
	    "called the cardholder: not them");
	assert_non_null(json_object_get(n, "ts"));
	json_decref(o);
	/* unassign, close */
	json_decref(http_ok("POST", "/api/cases/t3/status", BOB,
	    "{\"status\":\"closed\",\"assignee\":null}", 200));
	o = http_ok("GET", "/api/cases/t3", EVE, NULL, 200);
	assert_string_equal(json_string_value(json_object_get(o, "status")), "closed");
	assert_true(json_is_null(json_object_get(o, "assignee")));
	json_decref(o);
}

void
test_label_reaches_archive(void **s)
{
	json_t *o, *e;
	char source[64] = "", msg[160];
	int64_t labels0 = status_field("labels");

	(void)s;
	o = http_ok("POST", "/api/cases/t2/label", ALICE, "{\"fraud\": \"yes\"}", 400);
	assert_string_equal(err_field(o), "fraud");
	json_decref(o);
	json_decref(http_ok("POST", "/api/cases/t2/label", ALICE, "{\"fraud\": tru", 400));
	o = http_ok("POST", "/api/cases/t2/label", ALICE, "{\"fraud\": true}", 200);
	assert_string_equal(json_string_value(json_object_get(o, "source")), "analyst:alice");
	json_decref(o);
	assert_int_equal(archive_label("t2", source, sizeof source), 1);
	assert_string_equal(source, "analyst:alice");
	/* the console reads it back from the archive too */
	for (int i = 0; i < 100 && status_field("labels") <= labels0; i++)
		usleep(50000);
	assert_true(status_field("labels") > labels0);
	/* labelled: out of the open queue */
	o = http_ok("GET", "/api/queue", ALICE, NULL, 200);
	assert_int_equal(json_integer_value(json_object_get(o, "total")), 0);
	json_decref(o);
	o = http_ok("GET", "/api/cases/t2", ALICE, NULL, 200);
	assert_string_equal(json_string_value(json_object_get(o, "label")), "fraud");
	json_decref(o);

	/* bob, whose page showed t2 unlabelled (or legit): 409 naming
	 * expected, with alice's label, who and when; nothing sent, nothing
	 * audited. Seeing her label, he may confirm or change it. */
	o = http_ok("POST", "/api/cases/t2/label", BOB, "{\"fraud\": false, \"expected\": null}",
	    409);
	assert_string_equal(err_field(o), "expected");
	assert_string_equal(json_string_value(json_object_get(o, "label")), "fraud");
	assert_string_equal(json_string_value(json_object_get(o, "label_source")), "analyst:alice");
	assert_non_null(json_string_value(json_object_get(o, "label_time")));
	snprintf(msg, sizeof msg, "labelled fraud by analyst:alice at %s meanwhile",
	    json_string_value(json_object_get(o, "label_time")));
	assert_string_equal(err_msg(o), msg);
	json_decref(o);
	http_refused("POST", "/api/cases/t2/label", BOB, "{\"fraud\": false, \"expected\": "
	    "\"legit\"}", 409, "expected");
	http_refused("POST", "/api/cases/t2/label", BOB, "{\"fraud\": false, \"expected\": "
	    "\"unlabelled\"}", 400, "expected");
	http_refused("POST", "/api/cases/t2/label", BOB, "{\"fraud\": false, \"expected\": 0}",
	    400, "expected");
	assert_int_equal(archive_label("t2", source, sizeof source), 1);
	assert_string_equal(source, "analyst:alice");
	e = audit_newest();
	assert_string_equal(json_string_value(json_object_get(e, "action")), "label");
	assert_string_equal(json_string_value(json_object_get(e, "who")), "alice");
	json_decref(e);
	o = http_ok("POST", "/api/cases/t2/label", BOB, "{\"fraud\": true, \"expected\": "
	    "\"fraud\"}", 200);
	assert_string_equal(json_string_value(json_object_get(o, "source")), "analyst:bob");
	json_decref(o);
	e = audit_newest();
	assert_string_equal(json_string_value(json_object_get(e, "who")), "bob");
	assert_string_equal(json_string_value(json_object_get(json_object_get(e, "before"),
	    "label")), "fraud");
	json_decref(e);
}

/*
 * Any transaction: a search over the archive (not only the index's cases)
 * finds t1, which vigild allowed, by card, decision and amount; labelling it
 * (a chargeback) reaches vigild's archive with its reason in the audit log;
 * a wrong time is 404, a bad reason or key 400 naming the field.
 */
void
test_search_label_any(void **s)
{
	json_t *o, *it, *e;
	char source[64], body[256], path[256];

	(void)s;
	o = http_ok("GET", "/api/search?card=c1&decision=allow&from=2024-01-01&to=2024-01-02", EVE,
	    NULL, 200);
	assert_int_equal(json_array_size(json_object_get(o, "items")), 1);
	it = json_array_get(json_object_get(o, "items"), 0);
	assert_string_equal(json_string_value(json_object_get(it, "txn_id")), "t1");
	assert_string_equal(json_string_value(json_object_get(it, "decision")), "allow");
	assert_true(json_is_null(json_object_get(it, "label")));
	/* amount and score in the queue's shape: the currency's decimals, 3 for the score */
	assert_string_equal(json_string_value(json_object_get(it, "amount")), "1.00");
	assert_int_equal(json_integer_value(json_object_get(it, "amount_minor")), 100);
	assert_true(json_is_real(json_object_get(it, "score")));
	/* by the card's entries in the entity index, not a scan of the day */
	assert_string_equal(json_string_value(json_object_get(o, "via")), "entity_index");
	assert_int_equal(json_integer_value(json_object_get(o, "scanned")), 2);
	/* nothing passed over (tests/console/test_entities.c damages a record) */
	assert_true(json_is_integer(json_object_get(o, "unreadable")));
	assert_int_equal(json_integer_value(json_object_get(o, "unreadable")), 0);
	assert_true(json_is_null(json_object_get(o, "unreadable_first")));
	snprintf(body, sizeof body, "{\"fraud\":true,\"reason\":\"chargeback\",\"time\":\"%s\"}",
	    json_string_value(json_object_get(it, "time")));
	json_decref(o);
	/* filters: by amount (t1 is 1.00, t2 2.00) and by label */
	o = http_ok("GET", "/api/search?card=c1&min_amount=1.5&from=2024-01-01&to=2024-01-02", EVE,
	    NULL, 200);
	assert_int_equal(json_array_size(json_object_get(o, "items")), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(o,
	    "items"), 0), "txn_id")), "t2");
	json_decref(o);
	o = http_ok("GET", "/api/search?from=2024-01-01&to=2024-01-02&device=nope", EVE, NULL, 200);
	assert_int_equal(json_array_size(json_object_get(o, "items")), 0);
	json_decref(o);
	o = http_ok("GET", "/api/search?colour=red", EVE, NULL, 400);
	assert_string_equal(err_field(o), "colour");
	json_decref(o);
	o = http_ok("GET", "/api/search?from=2024-01-01&to=2024-03-01", EVE, NULL, 400);
	json_decref(o);

	json_decref(http_ok("POST", "/api/txns/t1/label", EVE, body, 403));
	o = http_ok("POST", "/api/txns/t1/label", ALICE,
	    "{\"fraud\":true,\"reason\":\"bored\",\"time\":\"2024-01-01T10:00:00Z\"}", 400);
	assert_string_equal(err_field(o), "reason");
	json_decref(o);
	/* a key left out is the one named (a missing reason was "fraud") */
	o = http_ok("POST", "/api/txns/t1/label", ALICE, "{\"fraud\":true}", 400);
	assert_string_equal(err_field(o), "reason");
	json_decref(o);
	o = http_ok("POST", "/api/txns/t1/label", ALICE, "{\"fraud\":true,\"reason\":\"other\"}",
	    400);
	assert_string_equal(err_field(o), "time");
	json_decref(o);
	json_decref(http_ok("POST", "/api/txns/t1/label", ALICE,
	    "{\"fraud\":true,\"reason\":\"chargeback\",\"time\":\"2024-01-01T10:00:05Z\"}", 404));
	o = http_ok("POST", "/api/txns/t1/label", ALICE, body, 200);
	assert_string_equal(json_string_value(json_object_get(o, "card_id")), "c1");
	json_decref(o);
	assert_int_equal(archive_label("t1", source, sizeof source), 1);
	assert_string_equal(source, "analyst:alice");
	e = audit_newest();
	assert_string_equal(json_string_value(json_object_get(e, "action")), "label");
	assert_string_equal(json_string_value(json_object_get(json_object_get(e, "after"),
	    "reason")), "chargeback");
	assert_string_equal(json_string_value(json_object_get(json_object_get(e, "after"),
	    "decision")), "allow");
	json_decref(e);
	/* the console reads the label back from the archive: the search shows it */
	for (int i = 0; i < 100; i++) {
		o = http_ok("GET", "/api/search?card=c1&label=fraud&from=2024-01-01&to=2024-01-02", EVE,
		    NULL, 200);
		snprintf(path, sizeof path, "%s", json_array_size(json_object_get(o, "items")) > 0 ?
		    json_string_value(json_object_get(json_array_get(json_object_get(o, "items"), 0),
		    "txn_id")) : "");
		json_decref(o);
		if (strcmp(path, "t1") == 0)
			break;
		usleep(50000);
	}
	assert_string_equal(path, "t1");
	/* a row still showing t1 unlabelled: 409, nothing overridden unseen (an
	 * allowed transaction is no case: the label without who and when) */
	o = http_ok("POST", "/api/txns/t1/label", BOB, "{\"fraud\":false,\"reason\":\"other\","
	    "\"time\":\"2024-01-01T10:00:00Z\",\"expected\":null}", 409);
	assert_string_equal(err_field(o), "expected");
	assert_string_equal(json_string_value(json_object_get(o, "label")), "fraud");
	assert_true(json_is_null(json_object_get(o, "label_source")));
	assert_string_equal(json_string_value(json_object_get(json_object_get(o, "error"),
	    "message")), "labelled fraud meanwhile");
	json_decref(o);
	o = http_ok("POST", "/api/txns/t1/label", BOB, "{\"fraud\":false,\"reason\":\"other\","
	    "\"time\":\"2024-01-01T10:00:00Z\",\"expected\":\"none\"}", 400);
	assert_string_equal(err_field(o), "expected");
	json_decref(o);
	assert_int_equal(archive_label("t1", source, sizeof source), 1);
	/* a case another analyst holds: 409 with who and until, as a case's
	 * verdict gets */
	json_decref(http_ok("POST", "/api/cases/t2/claim", ALICE, NULL, 200));
	{
		char when[32];

		vigil_time_format_rfc3339(base_ms + 60000, when, sizeof when);
		snprintf(body, sizeof body, "{\"fraud\":true,\"reason\":\"other\",\"time\":\"%s\"}",
		    when);
	}
	o = http_ok("POST", "/api/txns/t2/label", BOB, body, 409);
	assert_string_equal(json_string_value(json_object_get(o, "claimed_by")), "alice");
	assert_non_null(json_string_value(json_object_get(o, "until")));
	json_decref(o);
	json_decref(http_ok("POST", "/api/cases/t2/unclaim", ALICE, NULL, 200));
}

/* Waits until the console's index has read n label records. */
static void
wait_labels(int64_t n)
{
	for (int i = 0; i < 200 && status_field("labels") < n; i++)
		usleep(50000);
	assert_true(status_field("labels") >= n);
}

/* Another writer's label of txn, sent to vigild directly (source "test"). */
static void
vigild_label(const char *txn, bool fraud)
{
	Vigil__V1__Reply *r = vt_label(srv.url, txn, fraud, vigil_now_ms());

	assert_non_null(r);
	assert_int_equal(r->status, VIGIL__V1__STATUS__STATUS_OK);
	vigil__v1__reply__free_unpacked(r, NULL);
}

/*
 * A verdict right after this console's own, before the index reads that
 * label back from the archive: its "expected" is checked against the label
 * the console sent, not the archive's earlier one. The window is held open
 * by construction: with --poll-ms 60000 the index reads the archive once
 * at start (a label sent while the console was down shows that read done)
 * and not again during the requests (its label count unchanged says so).
 * A real conflict stays 409: a label another analyst sent meanwhile, and
 * one another writer sent to vigild after ours was read back. Runs last:
 * it labels t1 again (fraud at the end, as before).
 */
void
test_label_own_write(void **s)
{
	static const char t1[] = "\"time\":\"2024-01-01T10:00:00Z\"";
	char body[200];
	json_t *o;
	int64_t labels0 = status_field("labels");
	bool vadmin = console_vadmin;

	(void)s;
	console_stop();
	vigild_label("t1", true);
	console_vadmin = false; /* a start with console_extra */
	console_restart_with("--poll-ms", "60000", NULL);
	wait_labels(labels0 + 1);
	labels0 = status_field("labels");
	snprintf(body, sizeof body, "{\"fraud\":false,\"reason\":\"other\",%s,"
	    "\"expected\":\"fraud\"}", t1);
	json_decref(http_ok("POST", "/api/txns/t1/label", ALICE, body, 200));
	/* bob saw alice's legit: accepted, though the archive read so far says fraud */
	snprintf(body, sizeof body, "{\"fraud\":true,\"reason\":\"chargeback\",%s,"
	    "\"expected\":\"legit\"}", t1);
	json_decref(http_ok("POST", "/api/txns/t1/label", BOB, body, 200));
	/* alice's page still shows her legit: bob's fraud is a real conflict */
	snprintf(body, sizeof body, "{\"fraud\":false,\"reason\":\"other\",%s,"
	    "\"expected\":\"legit\"}", t1);
	o = http_ok("POST", "/api/txns/t1/label", ALICE, body, 409);
	assert_string_equal(err_field(o), "expected");
	assert_string_equal(json_string_value(json_object_get(o, "label")), "fraud");
	json_decref(o);
	assert_int_equal(status_field("labels"), labels0); /* nothing read back meanwhile */

	/* read back, the console's own label gives way to the archive's: a
	 * label another writer sent to vigild after it is a conflict */
	console_vadmin = vadmin;
	console_restart_with(NULL);
	wait_labels(labels0 + 2);
	snprintf(body, sizeof body, "{\"fraud\":false,\"reason\":\"other\",%s,"
	    "\"expected\":\"fraud\"}", t1);
	json_decref(http_ok("POST", "/api/txns/t1/label", ALICE, body, 200));
	wait_labels(labels0 + 3);
	vigild_label("t1", true);
	wait_labels(labels0 + 4);
	snprintf(body, sizeof body, "{\"fraud\":false,\"reason\":\"other\",%s,"
	    "\"expected\":\"legit\"}", t1);
	o = http_ok("POST", "/api/txns/t1/label", ALICE, body, 409);
	assert_string_equal(json_string_value(json_object_get(o, "label")), "fraud");
	json_decref(o);
}
