/* SPDX-License-Identifier: MIT */
/*
 * tests/console/test_console_ops.c - blocking a card, malformed requests,
 * the route table, the connection cap, usage, mutual TLS to vigild, the
 * tokens file and the audit log reopened on SIGHUP, a restart that resumes
 * (console-api).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "console_test.h"
#include "vigil.h"

void
test_block_card(void **s)
{
	char path[400], *v0 = vigild_hash(), *v1, buf[4096] = "", body[256], later[32];
	json_t *o, *e;
	FILE *f;

	(void)s;
	/* t3's card listed until an hour from now by a list edit: Block card
	 * makes it for good (the end date would unblock it), with its who and
	 * why, and audits the record it replaced */
	vigil_time_format_rfc3339(vigil_now_ms() + 3600000, later, sizeof later);
	snprintf(body, sizeof body, "{\"value\":\"c2\",\"reason\":\"an hour\","
	    "\"expires\":\"%s\"}", later);
	json_decref(http_ok("POST", "/api/lists/blocked_cards/add", BOB, body, 200));
	o = http_ok("POST", "/api/cases/t3/block", ALICE, NULL, 200);
	assert_false(json_is_true(json_object_get(o, "added"))); /* already in the file */
	json_decref(o);
	e = list_entry("blocked_cards", "c2");
	assert_non_null(e);
	assert_null(json_object_get(e, "expires"));
	assert_string_equal(json_string_value(json_object_get(e, "who")), "alice");
	assert_string_equal(json_string_value(json_object_get(e, "reason")), "blocked from case t3");
	json_decref(e);
	e = audit_newest();
	assert_string_equal(json_string_value(json_object_get(e, "action")), "block_card");
	assert_string_equal(json_string_value(json_object_get(json_object_get(json_object_get(e,
	    "before"), "entry"), "who")), "bob");
	json_decref(e);
	/* once listed for good, a second block keeps the record */
	o = http_ok("POST", "/api/cases/t3/block", BOB, NULL, 200);
	assert_false(json_is_true(json_object_get(o, "added")));
	json_decref(o);
	e = list_entry("blocked_cards", "c2");
	assert_string_equal(json_string_value(json_object_get(e, "who")), "alice");
	json_decref(e);
	/* a card not listed yet: added, with its record */
	json_decref(http_ok("POST", "/api/lists/blocked_cards/remove", BOB,
	    "{\"value\":\"c2\",\"reason\":\"again by Block card\"}", 200));
	o = http_ok("POST", "/api/cases/t3/block", ALICE, NULL, 200);
	assert_true(json_is_true(json_object_get(o, "added")));
	json_decref(o);
	e = list_entry("blocked_cards", "c2");
	assert_string_equal(json_string_value(json_object_get(e, "who")), "alice");
	json_decref(e);
	snprintf(path, sizeof path, "%s/blocked_cards.txt", rules_dir);
	f = fopen(path, "r");
	assert_non_null(f);
	assert_true(fread(buf, 1, sizeof buf - 1, f) > 0);
	fclose(f);
	assert_non_null(strstr(buf, "\nc2\n"));
	/* vigild reloads the list: its content hash covers list files */
	v1 = wait_vigild_hash_change(v0);
	assert_non_null(v1);
	free(v0);
	free(v1);

	/* --blocked-list naming a prefix list: refused, the list file as it
	 * was (an entry would block every card beginning with the card id) */
	{
		char bins[400], *was = NULL, *now = NULL;
		size_t wl = 0, nl = 0;

		snprintf(bins, sizeof bins, "%s/test_bins.txt", rules_dir);
		read_bytes(bins, &was, &wl);
		console_restart_with("--blocked-list", "test_bins", NULL);
		o = http_ok("POST", "/api/cases/t3/block", ALICE, NULL, 409);
		assert_non_null(strstr(err_msg(o), "test_bins is a prefix list"));
		json_decref(o);
		read_bytes(bins, &now, &nl);
		assert_int_equal(nl, wl);
		assert_memory_equal(now, was, wl);
		free(was);
		free(now);
		console_restart_with(NULL);
	}
}

/* A console that reaches vigild over tls+tcp:// with its client
 * certificate: its verdict is archived like any other. */
void
test_tls_verdict(void **s)
{
	pid_t pid0 = console_pid;
	uint16_t port0 = console_port;
	char source[64] = "";
	json_t *o;

	(void)s;
	console_tls = true;
	console_start();
	console_tls = false;
	wait_indexed(last_seq_scored);
	o = http_ok("POST", "/api/cases/t3/label", ALICE, "{\"fraud\": false}", 200);
	json_decref(o);
	assert_int_equal(archive_label("t3", source, sizeof source), 0);
	assert_string_equal(source, "analyst:alice");
	console_stop();
	console_pid = pid0;
	console_port = port0;
}

void
test_restart_resumes(void **s)
{
	int64_t scored;
	json_t *o, *e;

	(void)s;
	console_stop();
	score(1, "t4", "c3", 150, base_ms + 300000, NULL, VIGIL__V1__DECISION__ALLOW);
	score(1, "t5", "c3", 250, base_ms + 360000, NULL, VIGIL__V1__DECISION__REVIEW);
	console_start();
	for (int i = 0; i < 100 && status_field("scored") < 5; i++)
		usleep(50000);
	/* every scored record counted once: resumed, not re-read */
	scored = status_field("scored");
	assert_int_equal(scored, 5);
	/* the entity index too: reused, only the two new records read */
	o = http_ok("GET", "/api/status", RITA, NULL, 200);
	e = json_object_get(o, "entities");
	assert_string_equal(json_string_value(json_object_get(e, "origin")), "reused");
	assert_int_equal(json_integer_value(json_object_get(e, "ingested")), 2);
	assert_int_equal(json_integer_value(json_object_get(e, "records")), 5);
	json_decref(o);
	o = http_ok("GET", "/api/queue", ALICE, NULL, 200);
	assert_int_equal(json_integer_value(json_object_get(o, "total")), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(
	    json_object_get(o, "items"), 0), "txn_id")), "t5");
	json_decref(o);
	/* and the claim made before the restart is still held */
	o = http_ok("POST", "/api/cases/t5/claim", BOB, NULL, 200);
	json_decref(o);
}

void
test_malformed(void **s)
{
	json_t *o;
	int st = 0;
	char *big;

	(void)s;
	/* JSON that is no object, an array or a number ("5" was MALFORMED):
	 * the one error object of docs/tools.md */
	for (int i = 0; i < 2; i++) {
		o = http_ok("POST", "/api/rules/check", RITA, i == 0 ? "[1, 2]" : "5", 400);
		assert_string_equal(json_string_value(json_object_get(json_object_get(o, "error"),
		    "code")), "INVALID");
		assert_string_equal(err_msg(o), "body: must be a JSON object");
		json_decref(o);
	}
	o = http_ok("POST", "/api/rules/check", RITA, "{\"text\": 1}", 400);
	assert_string_equal(err_field(o), "text");
	json_decref(o);
	o = http_ok("POST", "/api/rules/check", RITA, "{\"text\": \"\", \"txt\": 1}", 400);
	assert_string_equal(err_field(o), "txt");
	json_decref(o);
	o = http_ok("POST", "/api/rules/backtest", RITA, "{\"text\": \"\", \"days\": 0}", 400);
	assert_string_equal(err_field(o), "days");
	json_decref(o);
	o = http_ok("POST", "/api/rules/deploy", RITA, "{\"text\": \"\"}", 400);
	assert_string_equal(err_field(o), "base_hash");
	json_decref(o);
	o = http_ok("POST", "/api/rules/rollback", RITA, "{\"version\": \"1\", \"base_hash\": \"x\"}",
	    400);
	assert_string_equal(json_string_value(json_object_get(json_object_get(json_object_get(o,
	    "error"), "where"), "field")), "version");
	json_decref(o);
	/* not JSON: MALFORMED, the place in where (docs/tools.md), not the message */
	o = http_ok("POST", "/api/rules/check", RITA, "{\"text\": \"x\"", 400);
	assert_string_equal(json_string_value(json_object_get(json_object_get(o, "error"), "code")),
	    "MALFORMED");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(json_object_get(o,
	    "error"), "where"), "line")), 1);
	assert_null(strstr(json_string_value(json_object_get(json_object_get(o, "error"),
	    "message")), "line"));
	json_decref(o);
	/* a key an endpoint does not take is refused by name, also where none is
	 * taken: a misspelt key must not pass for an absent one */
	o = http_ok("POST", "/api/cases/t2/label", ALICE, "{\"fraud\": true, \"bogus\": 1}", 400);
	assert_string_equal(err_field(o), "bogus");
	json_decref(o);
	o = http_ok("POST", "/api/cases/t2/claim", ALICE, "{\"minutes\": 5}", 400);
	assert_string_equal(err_field(o), "minutes");
	json_decref(o);
	o = http_ok("POST", "/api/lists/blocked_cards/add", ALICE,
	    "{\"value\": \"c9\", \"reason\": \"x\", \"expiry\": \"2030-01-01\"}", 400);
	assert_string_equal(err_field(o), "expiry");
	json_decref(o);
	json_decref(http_ok("GET", "/api/cases/a%2Fb", ALICE, NULL, 404));
	json_decref(http_ok("GET", "/api/cases/t2/label", ALICE, NULL, 405));
	/* a POST not typed JSON: 415 INVALID (a POST to a GET-only endpoint: 405) */
	http_ctype = "";
	o = http_ok("POST", "/api/cases/t2/claim", ALICE, NULL, 415);
	assert_string_equal(json_string_value(json_object_get(json_object_get(o, "error"), "code")),
	    "INVALID");
	json_decref(o);
	json_decref(http_ok("POST", "/api/status", ALICE, NULL, 405));
	http_ctype = "Content-Type: application/json\r\n";
	/* a query string where none is read is refused, not ignored */
	json_decref(http_ok("GET", "/api/me?x=1", ALICE, NULL, 400));
	json_decref(http_ok("GET", "/api/generations?force=1", ALICE, NULL, 400));
	o = http_ok("GET", "/api/rules?bogus=1", ALICE, NULL, 400);
	assert_string_equal(err_field(o), "bogus");
	json_decref(o);
	json_decref(http_ok("GET", "/api/rules?days=3", ALICE, NULL, 200));
	json_decref(http_ok("GET", "/api/rules?days=+3", ALICE, NULL, 400));
	/* a parameter given twice: one of the two would go unread */
	{
		static const char *const twice[] = {
			"/api/queue?limit=1&limit=2", "/api/search?card=a&limit=5&card=b",
			"/api/overview?from=2026-11-01&from=2026-11-02", "/api/rules?days=3&days=4",
			"/api/entity/card/c1?limit=1&limit=2",
		};

		for (size_t i = 0; i < sizeof twice / sizeof twice[0]; i++) {
			o = http_ok("GET", twice[i], ALICE, NULL, 400);
			assert_string_equal(err_msg(o), "given twice");
			assert_true(strcmp(err_field(o), "limit") == 0 || strcmp(err_field(o), "card") == 0 ||
			    strcmp(err_field(o), "from") == 0 || strcmp(err_field(o), "days") == 0);
			json_decref(o);
		}
	}
	/* an inverted range is a mistake, not an empty answer */
	o = http_ok("GET", "/api/queue?from=2026-12-01&to=2026-01-01", ALICE, NULL, 400);
	assert_string_equal(err_field(o), "to");
	json_decref(o);
	o = http_ok("GET", "/api/search?from=2026-12-01&to=2026-11-01", ALICE, NULL, 400);
	assert_non_null(strstr(err_msg(o), "the range [from, to) is empty"));
	json_decref(o);
	o = http_ok("GET", "/api/search?min_amount=100&max_amount=1", ALICE, NULL, 400);
	assert_string_equal(err_field(o), "max_amount");
	json_decref(o);
	o = http_ok("GET", "/api/search?min_amount=inf", ALICE, NULL, 400); /* as the queue */
	assert_string_equal(err_field(o), "min_amount");
	json_decref(o);
	/* a wrong method on an endpoint is 405 JSON, never 404 or libevent's 501 */
	json_decref(http_ok("POST", "/api/status", ALICE, "{}", 405));
	json_decref(http_ok("DELETE", "/api/me", ALICE, NULL, 405));
	json_decref(http_ok("PUT", "/api/cases/t2/claim", ALICE, NULL, 405));
	json_decref(http_ok("POST", "/healthz", NULL, "{}", 405));
	json_decref(http_ok("DELETE", "/api/nothing", ALICE, NULL, 404));
	json_decref(http_ok("POST", "/api/cases/t2/explode", ALICE, NULL, 404));
	json_decref(http_ok("GET", "/api/nothing", ALICE, NULL, 404));
	/* outside /api/ too: the error object, never an HTML page */
	o = http_ok("GET", "/nothing.html", NULL, NULL, 404);
	assert_string_equal(json_string_value(json_object_get(json_object_get(o, "error"),
	    "code")), "NOT_FOUND");
	assert_non_null(strstr(err_msg(o), "/nothing.html"));
	json_decref(o);
	o = http_ok("POST", "/app.js", NULL, "{}", 405);
	assert_string_equal(http_allow, "GET, HEAD");
	assert_string_equal(json_string_value(json_object_get(json_object_get(o, "error"),
	    "code")), "METHOD_NOT_ALLOWED");
	json_decref(o);
	/* over the body cap (2 MiB): refused before it is read, with the error
	 * object (TOO_BIG) and not libevent's HTML page, whether by one byte,
	 * by far, or in chunks; at the cap it is read */
	big = malloc((3u << 20) + 1);
	assert_non_null(big);
	for (size_t i = 0; i < 2; i++) {
		size_t n = i == 0 ? (2u << 20) + 1 : 3u << 20;

		memset(big, 'x', n);
		big[n] = '\0';
		o = http_ok("POST", "/api/rules/check", RITA, big, 413);
		assert_string_equal(json_string_value(json_object_get(json_object_get(o, "error"),
		    "code")), "TOO_BIG");
		json_decref(o);
	}
	assert_int_equal(http_chunked("/api/rules/check", RITA, (2u << 20) + 4096, 65536, &st, &o),
	    0);
	assert_int_equal(st, 413);
	assert_non_null(o);
	assert_string_equal(json_string_value(json_object_get(json_object_get(o, "error"), "code")),
	    "TOO_BIG");
	json_decref(o);
	memset(big, ' ', 2u << 20);
	big[2u << 20] = '\0';
	{
		static const char small[] = "{\"value\": \"\", \"reason\": \"x\"}";

		memcpy(big, small, sizeof small - 1); /* padded with spaces to the cap */
	}
	o = http_ok("POST", "/api/lists/blocked_cards/add", ALICE, big, 400);
	assert_string_equal(err_field(o), "value");
	json_decref(o);
	free(big);
	/* a few hundred random requests (fixed seed): every answer is JSON with
	 * a status below 500, and the console is still there */
	static const char *const paths[] = { "/api/queue?", "/api/rules?", "/api/rules/check",
		"/api/rules/deploy", "/api/rules/rollback", "/api/rules/backtest",
		"/api/cases/t2/label", "/api/cases/t2/claim", "/api/rules/versions/" };
	static const char *const vals[] = { "\"\"", "1", "-1", "1e308", "null", "true", "[]", "{}",
		"\"\\u0000\"", "\"x\"", "99999999999999999999" };
	static const char *const keys[] = { "text", "base_hash", "days", "fraud", "version",
		"nightly", "message", "sort", "decision", "limit", "from", "min_amount" };
	unsigned seed = 12345;
	for (int i = 0; i < 300; i++) {
		char url[512], bodyb[512];
		const char *path = paths[(seed = seed * 1103515245u + 12345u) >> 16 & 7];
		size_t n = 0;
		bool get = path[strlen(path) - 1] == '?' || path[strlen(path) - 1] == '/';
		int k = (int)((seed >> 8) % 12), v = (int)((seed >> 4) % 11);
		if (get) {
			snprintf(url, sizeof url, "%s%s%s=%%%02X%s", path, path[strlen(path) - 1] == '/' ?
			    "" : "", path[strlen(path) - 1] == '/' ? "" : keys[k], (seed >> 3) & 0xff,
			    vals[v]);
			/* the version path takes the value itself */
			if (path[strlen(path) - 1] == '/')
				snprintf(url, sizeof url, "%s%u", path, seed % 1000);
		} else {
			n = (size_t)snprintf(bodyb, sizeof bodyb, "{\"%s\": %s, \"%s\": %s}", keys[k],
			    vals[v], keys[(k + 1 + (int)(seed % 5)) % 12], vals[(v + 3) % 11]);
			if (seed % 7 == 0 && n > 3)
				bodyb[seed % n] = (char)(seed >> 9); /* and some not even JSON */
			snprintf(url, sizeof url, "%s", path);
		}
		assert_int_equal(http(get ? "GET" : "POST", url, RITA, get ? NULL : bodyb, &st, &o), 0);
		if (st >= 500 || o == NULL)
			fail_msg("%s %s %s: status %d, %s", get ? "GET" : "POST", url, get ? "" : bodyb, st,
			    o ? "JSON" : "not JSON");
		json_decref(o);
	}
	/* the console is still there */
	json_decref(http_ok("GET", "/api/me", ALICE, NULL, 200));
}

/* console/routes.def, as the test walks it. */
typedef struct route_row {
	const char *method, *path, *role;
	bool        query;
} route_row;

static const route_row routes[] = {
#define ROUTE(m, path, role, query, fn) { #m, path, #role, query },
#define ROUTE_ARGS(m, path, role, query, fn) { #m, path, #role, query },
#include "routes.def"
#undef ROUTE
#undef ROUTE_ARGS
};

/* A route's path with its {name} segments filled: with bad for the one
 * named bad_name (NULL: none), a fixture's value for the others. */
static void
route_path(const char *pat, const char *bad_name, const char *bad, char *out, size_t len)
{
	static const char *const vals[][2] = { { "txn_id", "t2" }, { "list", "blocked_cards" },
		{ "kind", "card" }, { "id", "c1" }, { "version", "1" } };
	size_t n = 0;

	for (const char *p = pat; *p != '\0' && n + 1 < len;) {
		const char *e;
		const char *v = NULL;

		if (*p != '{') {
			out[n++] = *p++;
			continue;
		}
		e = strchr(p, '}');
		assert_non_null(e);
		if (bad_name != NULL && strncmp(p + 1, bad_name, (size_t)(e - p - 1)) == 0 &&
		    bad_name[e - p - 1] == '\0')
			v = bad;
		for (size_t i = 0; v == NULL && i < sizeof vals / sizeof vals[0]; i++)
			if (strncmp(p + 1, vals[i][0], (size_t)(e - p - 1)) == 0 &&
			    vals[i][0][e - p - 1] == '\0')
				v = vals[i][1];
		if (v == NULL)
			fail_msg("%s: no test value for this parameter", pat);
		n += (size_t)snprintf(out + n, len - n, "%s", v);
		p = e + 1;
	}
	out[n < len ? n : len - 1] = '\0';
}

/*
 * Every route of console/routes.def keeps the table's contract, refused
 * before its handler runs: another method is 405 naming the route's in
 * Allow, a POST not typed JSON 415, a query string on a GET that reads none
 * 400, a user below the route's role 403, a {name} segment that is no id
 * 404 naming it.
 */
void
test_routes(void **s)
{
	static const struct { const char *role, *below; } roles[] = {
		{ "ANALYST", EVE }, { "EDITOR", ALICE }, { "ADMIN", RITA } };
	char path[256], url[300];
	json_t *o;

	(void)s;
	/* a static file's HEAD: its GET's headers, no body */
	{
		int st = 0;

		assert_int_equal(http("GET", "/app.js", NULL, NULL, &st, NULL), 0);
		assert_int_equal(st, 200);
		assert_true(http_body_len > 0);
		assert_int_equal(http("HEAD", "/app.js", NULL, NULL, &st, NULL), 0);
		assert_int_equal(st, 200);
		assert_int_equal(http_body_len, 0);
	}
	for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
		const route_row *r = &routes[i];
		bool get = strcmp(r->method, "GET") == 0;
		const char *allow = get ? "GET, HEAD" : "POST";

		assert_true(get || strcmp(r->method, "POST") == 0);
		route_path(r->path, NULL, NULL, path, sizeof path);
		/* HEAD: a GET's answer without its body (it had the body) */
		if (get) {
			int st = 0;

			assert_int_equal(http("HEAD", path, ADAM, NULL, &st, &o), 0);
			if (st == 0 || o != NULL)
				fail_msg("HEAD %s: status %d, a body", path, st);
		}
		/* another method: 405 with the route's in Allow */
		json_decref(http_ok(get ? "POST" : "GET", path, ADAM, get ? "{}" : NULL, 405));
		assert_string_equal(http_allow, allow);
		json_decref(http_ok(get ? "DELETE" : "PUT", path, ADAM, NULL, 405));
		assert_string_equal(http_allow, allow);
		/* a POST not typed JSON */
		if (!get) {
			http_ctype = "";
			o = http_ok("POST", path, ADAM, "{}", 415);
			http_ctype = "Content-Type: application/json\r\n";
			assert_string_equal(json_string_value(json_object_get(json_object_get(o, "error"),
			    "code")), "INVALID");
			json_decref(o);
		}
		/* a query string where none is read */
		snprintf(url, sizeof url, "%s?x=1", path);
		if (!r->query) { /* a POST too: ?force=1 must not look honoured */
			o = http_ok(r->method, url, ADAM, get ? NULL : "{}", 400);
			assert_non_null(strstr(err_msg(o), "takes no query string"));
			assert_string_equal(json_string_value(json_object_get(json_object_get(
			    json_object_get(o, "error"), "where"), "field")), "x");
			json_decref(o);
		} else if (get) { /* read: x is the page's own to refuse */
			o = http_ok("GET", url, ADAM, NULL, 400);
			assert_null(strstr(err_msg(o), "takes no query string"));
			json_decref(o);
		}
		/* below the role */
		for (size_t k = 0; k < sizeof roles / sizeof roles[0]; k++) {
			if (strcmp(r->role, roles[k].role) != 0)
				continue;
			o = http_ok(r->method, path, roles[k].below, get ? NULL : "{}", 403);
			assert_string_equal(json_string_value(json_object_get(json_object_get(o, "error"),
			    "code")), "FORBIDDEN");
			json_decref(o);
		}
		/* a parameter that is no id */
		for (const char *p = strchr(r->path, '{'); p != NULL; p = strchr(p + 1, '{')) {
			char name[32];

			snprintf(name, sizeof name, "%.*s", (int)(strchr(p, '}') - p - 1), p + 1);
			route_path(r->path, name, "a%20b", path, sizeof path);
			o = http_ok(r->method, path, ADAM, get ? NULL : "{}", 404);
			assert_string_equal(err_field(o), name);
			json_decref(o);
		}
	}
}

static int
tcp_connect(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(console_port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
	return fd;
}

/* At --max-connections (8 here) the console stops accepting: a ninth
 * client waits in the accept queue, unanswered, until one closes. */
void
test_connection_cap(void **s)
{
	static const char req[] = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
	struct timeval tv = { 1, 0 };
	int idle[8], fd;
	char buf[512];
	ssize_t n;

	(void)s;
	for (int i = 0; i < 8; i++)
		idle[i] = tcp_connect();
	usleep(1000000); /* all eight accepted, even on a slow (sanitized) build */
	fd = tcp_connect(); /* the kernel accepts it; the console does not */
	assert_int_equal(write(fd, req, sizeof req - 1), (ssize_t)(sizeof req - 1));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	n = read(fd, buf, sizeof buf - 1);
	assert_true(n < 0); /* timed out: not served */
	for (int i = 0; i < 8; i++)
		close(idle[i]);
	tv.tv_sec = 10;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	n = read(fd, buf, sizeof buf - 1);
	assert_true(n > 0);
	buf[n] = '\0';
	assert_non_null(strstr(buf, "HTTP/1.1 200"));
	close(fd);
	usleep(200000);
	json_decref(http_ok("GET", "/api/me", ALICE, NULL, 200));
}

void
test_usage(void **s)
{
	const char *argv1[] = { "console/vigil-console", "--help", NULL };
	const char *argv2[] = { "console/vigil-console", "--data", NULL };
	const char *argv3[] = { "console/vigil-console", "--data", "/nonexistent", "--rules", "x",
		"--tokens", "y", "--state", "z", NULL };
	char *out = NULL;

	(void)s;
	assert_int_equal(vt_run(argv1, &out), 0);
	assert_non_null(strstr(out, "usage: vigil-console"));
	free(out);
	out = NULL;
	assert_int_equal(vt_run(argv2, &out), 2);
	free(out);
	out = NULL;
	assert_int_equal(vt_run(argv3, &out), 2); /* a missing input (docs/tools.md) */
	free(out);
}

/* Writes the tokens file whole (a new file renamed over it). */
static void
tokens_write(const char *text)
{
	char t[400];
	FILE *f;

	snprintf(t, sizeof t, "%s.new", tokens);
	f = fopen(t, "w");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(t, 0600), 0);
	assert_int_equal(rename(t, tokens), 0);
}

/*
 * SIGHUP reloads the tokens file without a restart: a replaced token stops
 * working and its successor works, a new analyst gets in; a file that does
 * not load is refused in one line naming FILE:LINE and the tokens in use
 * stay; the reload is in the audit log (names and roles, never tokens).
 */
void
test_tokens_reload(void **s)
{
	char orig[400], cmd[900];
	json_t *o;
	int st;

	(void)s;
	snprintf(orig, sizeof orig, "%s.orig", tokens);
	copy_file(tokens, orig);
	json_decref(http_ok("GET", "/api/me", ALICE, NULL, 200));
	tokens_write("alice analyst alice-rotated-token-0005\nrita rule-editor " RITA "\n"
	    "zoe admin zoe-admin-token-000000006\n");
	assert_int_equal(kill(console_pid, SIGHUP), 0);
	console_log_wait("vigil-console: tokens: reloaded", 1);
	assert_int_equal(console_log_count("tokens: reloaded "), 1);
	assert_int_equal(http("GET", "/api/me", ALICE, NULL, &st, &o), 0);
	assert_int_equal(st, 401);
	json_decref(o);
	o = http_ok("GET", "/api/me", "alice-rotated-token-0005", NULL, 200);
	assert_string_equal(json_string_value(json_object_get(o, "name")), "alice");
	json_decref(o);
	o = http_ok("GET", "/api/me", "zoe-admin-token-000000006", NULL, 200);
	assert_string_equal(json_string_value(json_object_get(o, "role")), "admin");
	json_decref(o);
	assert_int_equal(http("GET", "/api/me", BOB, NULL, &st, &o), 0);
	assert_int_equal(st, 401);
	json_decref(o);
	/* a bad file: one line, the tokens in use stay */
	tokens_write("alice analyst alice-rotated-token-0005\nbob analyst short\n");
	assert_int_equal(kill(console_pid, SIGHUP), 0);
	snprintf(cmd, sizeof cmd, "vigil-console: tokens: %s:2: token shorter than 16 characters; "
	    "the previous tokens stay in use", tokens);
	console_log_wait(cmd, 1);
	o = http_ok("GET", "/api/me", "zoe-admin-token-000000006", NULL, 200);
	json_decref(o);
	/* the audit log has the reload, names and roles before and after */
	o = http_ok("GET", "/api/audit", RITA, NULL, 200);
	{
		char *text = json_dumps(o, JSON_COMPACT);

		assert_non_null(text);
		assert_non_null(strstr(text, "\"action\":\"tokens-reload\""));
		assert_non_null(strstr(text, "\"zoe admin\""));
		assert_non_null(strstr(text, "\"bob analyst\""));
		assert_null(strstr(text, "zoe-admin-token"));
		free(text);
	}
	json_decref(o);
	/* back to the file the other tests use */
	copy_file(orig, tokens);
	assert_int_equal(kill(console_pid, SIGHUP), 0);
	console_log_wait("vigil-console: tokens: reloaded", 2);
	json_decref(http_ok("GET", "/api/me", BOB, NULL, 200));
}

/* ---- the audit log reopened on SIGHUP ---- */

#define ADAM_UNCLAIM "\"who\":\"adam\",\"role\":\"admin\",\"action\":\"unclaim\",\"target\":\"t3\""
#define RITA_UNCLAIM "\"who\":\"rita\",\"role\":\"rule-editor\",\"action\":\"unclaim\",\"target\":\"t3\""
#define TOKENS_RELOAD "\"action\":\"tokens-reload\""

/* STATE/NAME */
static const char *
state_file(const char *name)
{
	static char p[4][500];
	static int i;

	i = (i + 1) % 4;
	snprintf(p[i], sizeof p[i], "%s/%s", state, name);
	return p[i];
}

/* Lines of path containing needle (-1: no file); *ret_lines, if given, all
 * its lines and *ret_first its first (truncated). */
static int
file_count(const char *path, const char *needle, int *ret_lines, char *ret_first, size_t flen)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;
	int n = 0, lines = 0;

	if (f == NULL)
		return -1;
	while (getline(&line, &cap, f) > 0) {
		if (lines++ == 0 && ret_first != NULL)
			snprintf(ret_first, flen, "%s", line);
		n += strstr(line, needle) != NULL;
	}
	free(line);
	fclose(f);
	if (ret_lines != NULL)
		*ret_lines = lines;
	return n;
}

/* an audited action that changes nothing: unclaiming t3 (a decline) */
static void
audited_unclaim(const char *token)
{
	json_decref(http_ok("POST", "/api/cases/t3/unclaim", token, NULL, 200));
}

/* SIGHUP, then wait until both halves of it are in the console's log:
 * the audit line (want_audit, the n-th of its kind) and the tokens reload. */
static void
hup_and_wait(const char *want_audit, int n)
{
	int reloads = console_log_count("vigil-console: tokens: reloaded ");

	assert_int_equal(kill(console_pid, SIGHUP), 0);
	console_log_wait(want_audit, n);
	console_log_wait("vigil-console: tokens: reloaded ", reloads + 1);
}

/* The newest entry of GET /api/audit: does it contain needle? */
static bool
audit_api_newest_has(const char *needle, size_t *ret_n)
{
	json_t *o = http_ok("GET", "/api/audit", ALICE, NULL, 200);
	json_t *e = json_object_get(o, "entries");
	char *text = json_dumps(json_array_get(e, 0), JSON_COMPACT);
	bool has = text != NULL && strstr(text, needle) != NULL;

	*ret_n = json_array_size(e);
	free(text);
	json_decref(o);
	return has;
}

/*
 * Rotation: mv audit.log audit.log.1, SIGHUP. The console reopens the path
 * (a new file, mode 0640) before it reloads the tokens, so the reload is
 * the new file's first line and the next action goes there, not to the
 * moved file; GET /api/audit reads the new file. Then a path that cannot
 * be opened (a directory there: EISDIR, even for root): one line naming
 * the path, the console goes on, and actions still land in the old file,
 * which GET /api/audit still shows.
 */
void
test_audit_reopen(void **s)
{
	char first[256], want[700];
	struct stat st;
	int n0, lines = 0;
	size_t entries = 0;

	(void)s;
	n0 = file_count(state_file("audit.log"), ADAM_UNCLAIM, NULL, NULL, 0);
	assert_true(n0 >= 0);
	audited_unclaim(ADAM);
	assert_int_equal(file_count(state_file("audit.log"), ADAM_UNCLAIM, NULL, NULL, 0), n0 + 1);
	assert_int_equal(rename(state_file("audit.log"), state_file("audit.log.1")), 0);
	snprintf(want, sizeof want, "vigil-console: audit: reopened %s (SIGHUP)",
	    state_file("audit.log"));
	hup_and_wait(want, 1);
	audited_unclaim(RITA);
	/* the moved file: the first action, not the second */
	assert_int_equal(file_count(state_file("audit.log.1"), ADAM_UNCLAIM, NULL, NULL, 0), n0 + 1);
	assert_int_equal(file_count(state_file("audit.log.1"), RITA_UNCLAIM, NULL, NULL, 0), 0);
	/* the new file: 0640, the reload first, then the second action */
	assert_int_equal(stat(state_file("audit.log"), &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0640);
	assert_int_equal(file_count(state_file("audit.log"), RITA_UNCLAIM, &lines, first,
	    sizeof first), 1);
	assert_int_equal(lines, 2);
	assert_non_null(strstr(first, TOKENS_RELOAD));
	assert_int_equal(file_count(state_file("audit.log"), ADAM_UNCLAIM, NULL, NULL, 0), 0);
	assert_true(audit_api_newest_has(RITA_UNCLAIM, &entries));
	assert_int_equal(entries, 2);

	/* the path cannot be opened: the old file stays in use */
	assert_int_equal(rename(state_file("audit.log"), state_file("audit.log.2")), 0);
	assert_int_equal(mkdir(state_file("audit.log"), 0750), 0);
	snprintf(want, sizeof want, "vigil-console: audit: cannot reopen %s: %s; still writing "
	    "to the previous file", state_file("audit.log"), strerror(EISDIR));
	hup_and_wait(want, 1);
	assert_int_equal(kill(console_pid, 0), 0);
	json_decref(http_ok("GET", "/api/me", ALICE, NULL, 200));
	audited_unclaim(ADAM);
	assert_int_equal(file_count(state_file("audit.log.2"), ADAM_UNCLAIM, &lines, NULL, 0), 1);
	assert_int_equal(file_count(state_file("audit.log.2"), TOKENS_RELOAD, NULL, NULL, 0), 2);
	assert_int_equal(lines, 4); /* reload, rita, reload (the failed SIGHUP's), adam */
	assert_true(audit_api_newest_has(ADAM_UNCLAIM, &entries));
	assert_int_equal(entries, 4);

	/* put the file back where the next tests expect it */
	assert_int_equal(rmdir(state_file("audit.log")), 0);
	assert_int_equal(rename(state_file("audit.log.2"), state_file("audit.log")), 0);
	snprintf(want, sizeof want, "vigil-console: audit: reopened %s (SIGHUP)",
	    state_file("audit.log"));
	hup_and_wait(want, 2);
}

/*
 * The same failure from a directory the console may no longer write
 * (chmod 0500 on STATE with audit.log moved away: EACCES). Root ignores
 * modes, so this is skipped as root (CI); test_audit_reopen's EISDIR
 * covers the path there.
 */
void
test_audit_reopen_unwritable(void **s)
{
	char want[700];
	int n0, lines = 0;
	size_t entries = 0;

	(void)s;
	if (geteuid() == 0)
		skip();
	n0 = file_count(state_file("audit.log"), RITA_UNCLAIM, NULL, NULL, 0);
	assert_true(n0 >= 0);
	assert_int_equal(rename(state_file("audit.log"), state_file("audit.log.3")), 0);
	assert_int_equal(chmod(state, 0500), 0);
	snprintf(want, sizeof want, "vigil-console: audit: cannot reopen %s: %s; still writing "
	    "to the previous file", state_file("audit.log"), strerror(EACCES));
	hup_and_wait(want, 1);
	audited_unclaim(RITA);
	assert_int_equal(chmod(state, 0750), 0);
	assert_int_equal(access(state_file("audit.log"), F_OK), -1);
	assert_int_equal(file_count(state_file("audit.log.3"), RITA_UNCLAIM, &lines, NULL, 0),
	    n0 + 1);
	assert_true(audit_api_newest_has(RITA_UNCLAIM, &entries));
	assert_int_equal(entries, lines < 200 ? (size_t)lines : 200); /* the API keeps 200 */
	assert_int_equal(rename(state_file("audit.log.3"), state_file("audit.log")), 0);
}

/*
 * An audit log that grew unrotated past what the API reads (64 MiB) still
 * shows its newest entries: GET /api/audit reads the file's end, not the
 * whole file (it used to give an empty list over 64 MiB). The filler lines
 * are appended the way the console writes (O_APPEND, whole lines), then
 * the file is put back as it was.
 */
void
test_audit_tail_long(void **s)
{
	char line[1024];
	struct stat st;
	size_t entries = 0, len;
	off_t before;
	int fd;

	(void)s;
	assert_int_equal(stat(state_file("audit.log"), &st), 0);
	before = st.st_size;
	fd = open(state_file("audit.log"), O_WRONLY | O_APPEND);
	assert_true(fd >= 0);
	memset(line, 'x', sizeof line);
	len = (size_t)snprintf(line, sizeof line, "{\"who\":\"filler\",\"action\":\"filler\",\"pad\":\"");
	line[len] = 'x';
	memcpy(line + sizeof line - 3, "\"}\n", 3);
	for (int i = 0; i < 66 * 1024; i++) /* 66 MiB of 1 KiB entries */
		assert_int_equal(write(fd, line, sizeof line), (ssize_t)sizeof line);
	assert_int_equal(close(fd), 0);
	audited_unclaim(RITA);
	assert_true(audit_api_newest_has(RITA_UNCLAIM, &entries));
	assert_int_equal(entries, 200); /* the API keeps 200 */
	assert_int_equal(truncate(state_file("audit.log"), before), 0);
}
