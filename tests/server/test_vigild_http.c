/* SPDX-License-Identifier: MIT */
/*
 * tests/server/test_vigild_http.c - vigild's admin HTTP API (integration, a
 * real vigild on loopback). Its own answers: /healthz, /readyz, /metrics
 * and /v1/score with what they record, every endpoint against its table,
 * bad input named by field, the body cap. And the answers libevent 2.1
 * writes itself, before any callback of vigild's: a request line or header
 * that does not parse, headers over the cap, an unknown method, an Expect
 * vigild does not meet, a body sent to the probes' listener. Each is the
 * error object (docs/tools.md) with its code, typed application/json, its
 * Content-Length exact, and the connection is closed after it as libevent
 * closes it (common/evconn.h replaces libevent's HTML page). Raw sockets:
 * an HTTP client would not send these.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "harness.h"
#include "db.h"

/* vt_http_raw, failing the test if the connection could not be made or
 * was not closed: every answer here closes it. */
static char *
http_raw(uint16_t port, const char *req, size_t len)
{
	bool closed = false;
	char *resp = vt_http_raw(port, req, len, &closed);

	assert_non_null(resp);
	if (!closed)
		fail_msg("the connection was not closed: %s", resp);
	return resp;
}

/*
 * Checks the answer at *p and moves *p past it: status, Content-Type
 * application/json, a Content-Length that counts the body, and the body
 * {"status": code, "error": {"code": code, "message": msg}} (one line).
 */
static void
reply_expect(const char *what, const char **p, int status, const char *code, const char *msg)
{
	const char *at = *p, *body = NULL;
	char head[4096];
	size_t blen = 0;
	json_t *o, *err;
	int st = 0;

	if (vt_http_next(p, &st, head, sizeof head, &body, &blen) != 0 || st != status ||
	    strstr(head, "\r\nContent-Type: application/json\r\n") == NULL ||
	    blen == 0 || body[blen - 1] != '\n')
		fail_msg("%s: expected %d with JSON, one line: %s", what, status, at);
	o = json_loadb(body, blen, 0, NULL);
	err = json_object_get(o, "error");
	if (o == NULL || !json_is_string(json_object_get(o, "status")) ||
	    strcmp(json_string_value(json_object_get(o, "status")), code) != 0 ||
	    !json_is_string(json_object_get(err, "code")) ||
	    strcmp(json_string_value(json_object_get(err, "code")), code) != 0 ||
	    !json_is_string(json_object_get(err, "message")) ||
	    strcmp(json_string_value(json_object_get(err, "message")), msg) != 0)
		fail_msg("%s: expected %s \"%s\": %s", what, code, msg, at);
	json_decref(o);
}

#define MSG_400 "the request line or a header does not parse, or the headers are too long"
#define MSG_417 "an Expect header other than \"100-continue\""
#define MSG_501 "the method is not one this server answers"

/* Requests libevent answers itself, and its status, code and message. */
typedef struct page_case {
	const char *what;
	const char *req;
	int         status;
	const char *code;
	const char *msg;
} page_case;

static const page_case common_cases[] = {
	{ "a request line that does not parse", "GARBAGE\r\n\r\n", 400, "MALFORMED", MSG_400 },
	{ "a header line without a colon", "GET /healthz HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n",
	  400, "MALFORMED", MSG_400 },
	{ "HTTP/1.0, a header line without a colon", "GET /healthz HTTP/1.0\r\nNoColon\r\n\r\n",
	  400, "MALFORMED", MSG_400 },
	{ "HEAD, a header line without a colon", "HEAD /healthz HTTP/1.1\r\nNoColon\r\n\r\n",
	  400, "MALFORMED", MSG_400 },
	{ "HTTP/2.0", "GET /healthz HTTP/2.0\r\nHost: x\r\n\r\n", 400, "MALFORMED", MSG_400 },
	{ "an unknown method", "FOO /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 501,
	  "METHOD_NOT_ALLOWED", MSG_501 },
	{ "TRACE", "TRACE /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 501, "METHOD_NOT_ALLOWED",
	  MSG_501 },
	/* libevent 2.1 keeps a CONNECT's connection for another request; the
	 * answer says Connection: close, and the GET after it is not answered */
	{ "CONNECT, then a GET on the same connection", "CONNECT 127.0.0.1:80 HTTP/1.1\r\n"
	  "Host: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 501,
	  "METHOD_NOT_ALLOWED", MSG_501 },
};

static void
pages_expect(uint16_t port, const page_case *cases, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char *resp = http_raw(port, cases[i].req, strlen(cases[i].req));
		const char *p = resp;

		reply_expect(cases[i].what, &p, cases[i].status, cases[i].code, cases[i].msg);
		if (*p != '\0')
			fail_msg("%s: more after the answer: %s", cases[i].what, resp);
		free(resp);
	}
}

#define BIG_HEADERS 20000 /* bytes of one header: over both listeners' caps */

/* A request whose headers are over BIG_HEADERS bytes, in req. */
static size_t
big_headers(char req[static BIG_HEADERS + 64])
{
	int k = snprintf(req, 64, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: ");

	memset(req + k, 'a', BIG_HEADERS);
	memcpy(req + k + BIG_HEADERS, "\r\n\r\n", 4);
	return (size_t)k + BIG_HEADERS + 4;
}

static void
test_admin_libevent_pages(void **state)
{
	static const page_case cases[] = {
		{ "an Expect other than 100-continue", "POST /v1/score HTTP/1.1\r\nHost: x\r\n"
		  "Expect: something\r\nContent-Length: 2\r\n\r\n{}", 417, "INVALID", MSG_417 },
		{ "a Content-Length that is no number", "POST /v1/score HTTP/1.1\r\nHost: x\r\n"
		  "Content-Length: 12x\r\n\r\n", 400, "MALFORMED", MSG_400 },
	};
	/* after vigild's own answer on the connection (libevent 2.1 keeps the
	 * start of its output buffer frozen from then on) */
	static const page_case after[] = {
		{ "GARBAGE after GET /healthz", "GARBAGE\r\n\r\n", 400, "MALFORMED", MSG_400 },
		{ "a body over the cap after GET /healthz", "POST /v1/score HTTP/1.1\r\nHost: x\r\n"
		  "Content-Length: 65537\r\n\r\n", 413, "TOO_BIG",
		  "the request body is over max_message_bytes (65536 bytes)" },
	};
	static char big[BIG_HEADERS + 64];
	vt_server s = { 0 };
	char *resp;
	const char *p;

	(void)state;
	assert_int_equal(vt_server_start(&s, NULL, NULL), 0);
	pages_expect(s.admin_port, common_cases, sizeof common_cases / sizeof common_cases[0]);
	pages_expect(s.admin_port, cases, sizeof cases / sizeof cases[0]);
	/* headers over the admin listener's 16 KiB */
	resp = http_raw(s.admin_port, big, big_headers(big));
	p = resp;
	reply_expect("headers over 16 KiB", &p, 400, "MALFORMED", MSG_400);
	free(resp);
	for (size_t i = 0; i < sizeof after / sizeof after[0]; i++) {
		char two[256];

		snprintf(two, sizeof two, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n%s", after[i].req);
		resp = http_raw(s.admin_port, two, strlen(two));
		if (strncmp(resp, "HTTP/1.1 200 OK\r\n", 17) != 0 ||
		    (p = strstr(resp, "\r\n\r\n{\"ready\":true,")) == NULL ||
		    (p = strstr(p, "}\nHTTP/1.1 ")) == NULL)
			fail_msg("%s: %s", after[i].what, resp);
		p += 2;
		reply_expect(after[i].what, &p, after[i].status, after[i].code, after[i].msg);
		free(resp);
	}
	assert_int_equal(vt_server_stop(&s), 0);
	vt_server_cleanup(&s);
}

/* The probes' listener ([health] listen) takes no body at all. */
static void
test_health_libevent_pages(void **state)
{
	static const char nobody[] = "this listener takes no request body";
	static const page_case cases[] = {
		{ "GET with a body", "GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n"
		  "hello", 413, "TOO_BIG", nobody },
		{ "HTTP/1.0 GET with a body", "GET /readyz HTTP/1.0\r\nContent-Length: 2\r\n\r\n{}",
		  413, "TOO_BIG", nobody },
		{ "POST with a chunked body", "POST /livez HTTP/1.1\r\nHost: x\r\n"
		  "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 413, "TOO_BIG", nobody },
		{ "a body to an unknown path", "PUT /nope HTTP/1.1\r\nHost: x\r\n"
		  "Content-Length: 2\r\n\r\n{}", 413, "TOO_BIG", nobody },
		/* vigild's own answers there, for comparison */
		{ "an unknown path", "GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 404,
		  "NOT_FOUND", "this listener answers only /healthz, /readyz and /livez" },
		{ "POST without a body", "POST /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
		  "\r\n", 405, "METHOD_NOT_ALLOWED", "this endpoint answers GET and HEAD" },
	};
	static char big[BIG_HEADERS + 64];
	vt_server s = { 0 };
	uint16_t port = vt_free_port();
	char hl[32], *resp;
	const char *args[] = { "--health-listen", hl, NULL }, *p;

	(void)state;
	assert_true(port != 0);
	snprintf(hl, sizeof hl, "127.0.0.1:%u", port);
	assert_int_equal(vt_server_start(&s, NULL, args), 0);
	pages_expect(port, common_cases, sizeof common_cases / sizeof common_cases[0]);
	pages_expect(port, cases, sizeof cases / sizeof cases[0]);
	resp = http_raw(port, big, big_headers(big)); /* the probes' listener: 8 KiB */
	p = resp;
	reply_expect("headers over 8 KiB", &p, 400, "MALFORMED", MSG_400);
	free(resp);
	assert_int_equal(vt_server_stop(&s), 0);
	vt_server_cleanup(&s);
}


/* ---- the admin API's own answers (moved from test_vigild.c) ---- */

#define T0 1763700000000LL /* 2025-11-21T04:40:00Z */

static const char *
velocity_rules(void)
{
	return vt_src_path("tests/server/rules/velocity.rules");
}

/* What /v1/score archived is the outcome it answered (h-1: a decline). */
static void
http_archive_expect(const char *datadir)
{
	store_scored *sc = malloc(sizeof *sc);
	store_reader *rd = NULL;
	store_record rec;
	store_diag diag;
	char dir[512];
	size_t n = 0;
	vigil_err rv;

	assert_non_null(sc);
	snprintf(dir, sizeof dir, "%s/archive", datadir);
	assert_int_equal(store_reader_open(dir, INT64_MIN, INT64_MAX, NULL, NULL, &rd, &diag),
	    VIGIL_OK);
	while ((rv = store_reader_next(rd, &rec, &diag)) == VIGIL_OK) {
		assert_int_equal(rec.type, STORE_REC_SCORE);
		assert_int_equal(store_scored_decode(rec.payload, rec.len, sc, &diag), VIGIL_OK);
		assert_string_equal(sc->txn.txn_id, "h-1");
		assert_int_equal(sc->decision, VIGIL_DECISION_DECLINE);
		assert_true(sc->score >= 100);
		assert_true(sc->nhits >= 1);
		assert_string_equal(sc->hits[0].rule, "big_amount");
		assert_int_equal(strlen(sc->rules_version), 32);
		n++;
	}
	assert_int_equal(rv, VIGIL_ENOTFOUND);
	store_reader_close(rd);
	free(sc);
	assert_int_equal(n, 1);
}

static void
test_http(void **state)
{
	vt_server s = { 0 };
	char *body = NULL;
	int code = 0;

	(void)state;
	assert_int_equal(vt_server_start(&s, velocity_rules(), NULL), 0);

	assert_int_equal(vt_http_get(s.admin_port, "/healthz", &code, &body), 0);
	assert_int_equal(code, 200);
	assert_non_null(strstr(body, "\"ready\":true"));
	free(body);
	assert_int_equal(vt_http_get(s.admin_port, "/readyz", &code, &body), 0);
	assert_int_equal(code, 200);
	free(body);

	assert_int_equal(vt_http_post(s.admin_port, "/v1/score",
	    "{\"txn\": {\"txn_id\": \"h-1\", \"card_id\": \"card-h\", \"merchant_id\": \"m-1\","
	    " \"amount\": 1500.00, \"currency\": \"EUR\", \"event_time\": \"2025-11-21T04:40:00Z\"}}",
	    &code, &body), 0);
	assert_int_equal(code, 200);
	assert_non_null(strstr(body, "\"decision\":\"decline\""));
	assert_non_null(strstr(body, "\"big_amount\""));
	free(body);
	assert_int_equal(vt_http_post(s.admin_port, "/v1/score",
	    "{\"txn_id\": \"h-2\", \"card_id\": \"card-h\", \"merchant_id\": \"m-1\","
	    " \"amount_minor\": 100, \"currency\": \"EUX\", \"event_time_ms\": 1763700000000}",
	    &code, &body), 0);
	assert_int_equal(code, 400);
	assert_non_null(strstr(body, "\"field\":\"txn.currency\""));
	free(body);
	assert_int_equal(vt_http_post(s.admin_port, "/v1/score", "{not json", &code, &body), 0);
	assert_int_equal(code, 400);
	assert_non_null(strstr(body, "MALFORMED"));
	free(body);

	assert_int_equal(vt_http_get(s.admin_port, "/metrics", &code, &body), 0);
	assert_int_equal(code, 200);
	assert_non_null(strstr(body, "vigil_requests_total{type=\"score\",status=\"OK\"} 1\n"));
	assert_non_null(strstr(body, "vigil_requests_total{type=\"score\",status=\"INVALID\"} 1\n"));
	assert_non_null(strstr(body, "vigil_rule_hits_total{rule=\"big_amount\",mode=\"active\"} 1\n"));
	assert_non_null(strstr(body, "vigil_decisions_total{decision=\"decline\"} 1\n"));
	assert_non_null(strstr(body, "vigil_rules_info{version=\"test-velocity-1\""));
	assert_non_null(strstr(body, "vigil_rules_load_failures_total 0\n"));
	assert_non_null(strstr(body, "vigil_score_latency_seconds_count 1\n"));
	assert_non_null(strstr(body, "vigil_archive_records_total"));
	assert_non_null(strstr(body, "vigil_live_cards"));
	free(body);

	assert_int_equal(vt_http_get(s.admin_port, "/v1/rules", &code, &body), 0);
	assert_int_equal(code, 200);
	assert_non_null(strstr(body, "\"version\":\"test-velocity-1\""));
	assert_non_null(strstr(body, "\"name\":\"repeat_card\""));
	free(body);

	assert_int_equal(vt_server_stop(&s), 0);
	http_archive_expect(s.datadir);
	vt_server_cleanup(&s);
}

/*
 * /v1/score refuses what it cannot honour exactly: a dry_run that is not a
 * boolean (a client meaning "do not record this" must not get a recorded
 * score; a query string such as ?dry_run=true is not read, so it is refused
 * too), and names nested fields the way the protobuf path does.
 */
/* POSTs json to path and expects HTTP code with want in the reply body. */
static void
post_expect(uint16_t port, const char *path, const char *json, int code, const char *want)
{
	char *body = NULL;
	int got = 0;

	assert_int_equal(vt_http_post(port, path, json, &got, &body), 0);
	if (got != code || strstr(body, want) == NULL)
		fail_msg("POST %s %s: HTTP %d %s (expected %d with %s)", path, json, got, body,
		    code, want);
	free(body);
}

/*
 * POSTs /v1/score with a body of len bytes (body: NULL for 'x's), as
 * Content-Length or, chunked, in chunks of 16 KiB; reads the answer even
 * when vigild closes before the body is all sent (as it does refusing one).
 * Returns the whole answer, headers included (malloc'd), *ret_status its
 * status.
 */
static char *
admin_post_sized(uint16_t port, const char *body, size_t len, bool chunked, int *ret_status)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	size_t cap = len + len / 16384 * 16 + 512, n, off = 0;
	char *req = malloc(cap), *resp = calloc(1, 8192);
	ssize_t r;
	int fd;

	assert_true(req != NULL && resp != NULL);
	n = (size_t)snprintf(req, cap, "POST /v1/score HTTP/1.1\r\nHost: 127.0.0.1\r\n"
	    "Connection: close\r\nContent-Type: application/json\r\n");
	if (chunked)
		n += (size_t)snprintf(req + n, cap - n, "Transfer-Encoding: chunked\r\n\r\n");
	else
		n += (size_t)snprintf(req + n, cap - n, "Content-Length: %zu\r\n\r\n", len);
	for (size_t done = 0; done < len;) {
		size_t k = chunked && len - done > 16384 ? 16384 : len - done;

		if (chunked)
			n += (size_t)snprintf(req + n, cap - n, "%zx\r\n", k);
		if (body != NULL)
			memcpy(req + n, body + done, k);
		else
			memset(req + n, 'x', k);
		n += k;
		done += k;
		if (chunked)
			n += (size_t)snprintf(req + n, cap - n, "\r\n");
	}
	if (chunked)
		n += (size_t)snprintf(req + n, cap - n, "0\r\n\r\n");
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
	while (off < n && (r = send(fd, req + off, n - off, MSG_NOSIGNAL)) > 0)
		off += (size_t)r;
	free(req);
	n = 0;
	while (n + 1 < 8192 && (r = read(fd, resp + n, 8191 - n)) > 0)
		n += (size_t)r;
	close(fd);
	*ret_status = 0;
	sscanf(resp, "HTTP/1.%*d %d", ret_status);
	return resp;
}


/*
 * The admin API's body cap (max_message_bytes, 128 KiB here, over the
 * default): a body over it is refused unread with the error object,
 * TOO_BIG, as JSON, whether it is over by one byte or by far, or chunked;
 * a body at the cap is read (it was held at 64 KiB of unparsed input and
 * dropped when the request timed out).
 */
static void
test_http_body_cap(void **state)
{
	static const char txn[] = "{\"txn\": {\"txn_id\": \"cap-1\", \"card_id\": \"card-cap\","
	    " \"merchant_id\": \"m-1\", \"amount_minor\": 100, \"currency\": \"EUR\","
	    " \"event_time_ms\": 1763700000000}}";
	const size_t max = 128 * 1024;
	static const struct { size_t len; bool chunked; } over[] = {
		{ 128 * 1024 + 1, false }, { 1024 * 1024, false }, { 128 * 1024 + 1, true },
		{ 1024 * 1024, true } };
	char ini[] = "/tmp/vigil-bodycap-XXXXXX";
	const char *args[] = { "--config", ini, NULL };
	vt_server s = { 0 };
	char *resp, *body;
	int code = 0;

	(void)state;
	assert_int_equal(vt_file_temp(ini, "[server]\nmax_message_bytes = 131072\n"), 0);
	assert_int_equal(vt_server_start(&s, velocity_rules(), args), 0);
	for (size_t i = 0; i < sizeof over / sizeof over[0]; i++) {
		resp = admin_post_sized(s.admin_port, NULL, over[i].len, over[i].chunked, &code);
		if (code != 413 || strstr(resp, "\r\nContent-Type: application/json\r\n") == NULL ||
		    strstr(resp, "{\"status\":\"TOO_BIG\",\"error\":{\"code\":\"TOO_BIG\"") == NULL)
			fail_msg("%zu bytes%s: %s", over[i].len, over[i].chunked ? " chunked" : "", resp);
		free(resp);
	}
	/* at the cap: a transaction padded with spaces to max bytes is scored */
	body = malloc(max);
	assert_non_null(body);
	memset(body, ' ', max);
	memcpy(body, txn, sizeof txn - 1);
	for (int chunked = 0; chunked < 2; chunked++) {
		resp = admin_post_sized(s.admin_port, body, max, chunked, &code);
		if (code != 200 || strstr(resp, "\"txn_id\":\"cap-1\"") == NULL)
			fail_msg("%zu bytes%s: %s", max, chunked ? " chunked" : "", resp);
		free(resp);
	}
	free(body);
	assert_int_equal(vt_server_stop(&s), 0);
	vt_server_cleanup(&s);
	unlink(ini);
}

/*
 * The endpoints of docs/vigild.md, "ADMIN HTTP", one row each: the status
 * and error code GET, HEAD and POST {} get (405 with the endpoint's Allow,
 * 404 for a path that is none); a HEAD has GET's status and no body (it
 * had the body, which a keep-alive client read as its next answer).
 */
static void
test_http_endpoints(void **state)
{
	static const struct {
		const char *path;
		int         get;  /* and HEAD */
		const char *gerr; /* in GET's body */
		int         post; /* with {} */
		const char *perr;
	} eps[] = {
		{ "/healthz", 200, "", 405, "METHOD_NOT_ALLOWED" },
		{ "/readyz", 200, "", 405, "METHOD_NOT_ALLOWED" },
		{ "/metrics", 200, "", 405, "METHOD_NOT_ALLOWED" },
		{ "/v1/rules", 200, "", 405, "METHOD_NOT_ALLOWED" },
		/* {}: the JSON reader's required amount comes before validation's txn_id */
		{ "/v1/score", 405, "METHOD_NOT_ALLOWED", 400, "\"field\":\"txn.amount_minor\"" },
		{ "/v1/generations/current", 405, "METHOD_NOT_ALLOWED", 400, "\"field\":\"generation\"" },
		{ "/livez", 404, "NOT_FOUND", 404, "NOT_FOUND" }, /* the probes' listener's only */
		{ "/nope", 404, "NOT_FOUND", 404, "NOT_FOUND" } };
	static const char *const methods[] = { "GET", "HEAD", "POST" };
	vt_server s = { 0 };
	char *body = NULL;
	int code = 0;

	(void)state;
	assert_int_equal(vt_server_start(&s, velocity_rules(), NULL), 0);
	for (size_t i = 0; i < sizeof eps / sizeof eps[0]; i++) {
		for (size_t m = 0; m < 3; m++) {
			int want = m < 2 ? eps[i].get : eps[i].post;
			const char *err = m == 1 ? "" : m == 0 ? eps[i].gerr : eps[i].perr;

			assert_int_equal(vt_http(s.admin_port, methods[m], eps[i].path, NULL,
			    m == 2 ? "{}" : NULL, &code, &body), 0);
			if (code != want || (m == 1 && body[0] != '\0') || strstr(body, err) == NULL)
				fail_msg("%s %s: HTTP %d %s (expected %d %s)", methods[m], eps[i].path,
				    code, body, want, err);
			free(body);
		}
	}
	assert_int_equal(vt_server_stop(&s), 0);
	vt_server_cleanup(&s);
}

/* A good transaction body of card-hb at merchant m-1, txn_id id. */
#define HB_TXN(id) "{\"txn_id\": \"" id "\", \"card_id\": \"card-hb\", \"merchant_id\": \"m-1\"," \
	" \"amount_minor\": 100, \"currency\": \"EUR\", \"event_time_ms\": 1763700000000"
#define HB_NEW "\"duplicate\":false"

static void
test_http_bad_input(void **state)
{
	static const char *const dry[] = { "\"true\"", "1", "\"yes\"", "{}" };
	vt_server s = { 0 };
	char json[400], *body = NULL;
	int code = 0;

	(void)state;
	assert_int_equal(vt_server_start(&s, velocity_rules(), NULL), 0);
	for (size_t i = 0; i < sizeof dry / sizeof dry[0]; i++) {
		snprintf(json, sizeof json, "{\"txn\": " HB_TXN("hb-1") "}, \"dry_run\": %s}", dry[i]);
		post_expect(s.admin_port, "/v1/score", json, 400, "\"field\":\"dry_run\"");
	}
	/* Nothing was recorded: the same txn_id scores as new. */
	post_expect(s.admin_port, "/v1/score", "{\"txn\": " HB_TXN("hb-1") "}, \"dry_run\": false}",
	    200, HB_NEW);

	/* An envelope key other than txn and dry_run is a typo, refused and not
	 * scored as if absent (the refused one recorded nothing). */
	post_expect(s.admin_port, "/v1/score", "{\"txn\": " HB_TXN("hb-5") "}, \"dryrun\": true}",
	    400, "\"field\":\"dryrun\"");
	post_expect(s.admin_port, "/v1/score", "{\"txn\": " HB_TXN("hb-5") "}, \"dry_run\": false}",
	    200, HB_NEW);

	/* A query string is not read: refused, not scored as if absent. */
	post_expect(s.admin_port, "/v1/score?dry_run=true", HB_TXN("hb-4") "}", 400,
	    "query string; dry_run goes in the JSON body\",\"where\":{\"field\":\"dry_run\"}");
	post_expect(s.admin_port, "/v1/score?dry%5Frun", HB_TXN("hb-4") "}", 400,
	    "\"where\":{\"field\":\"dry_run\"}");
	post_expect(s.admin_port, "/v1/score", HB_TXN("hb-4") "}", 200, HB_NEW);
	/* No amount (absent or null) is refused, not scored and archived as
	 * 0.00, which would also take the txn_id from its real amount. */
	post_expect(s.admin_port, "/v1/score", "{\"txn_id\": \"hb-6\", \"card_id\": \"c\", "
	    "\"merchant_id\": \"m-1\", \"currency\": \"EUR\", \"amount\": null}", 400,
	    "\"where\":{\"field\":\"txn.amount_minor\"}");
	post_expect(s.admin_port, "/v1/score", HB_TXN("hb-6") "}", 200, HB_NEW);
	/* GET endpoints do not mind one (a scraper's cache buster). */
	assert_int_equal(vt_http_get(s.admin_port, "/healthz?x=1", &code, &body), 0);
	assert_int_equal(code, 200);
	free(body);

	/* A refusal quoting part of a non-ASCII value is still a JSON reply
	 * (the quote cut in the middle of a character was a 500). */
	post_expect(s.admin_port, "/v1/score", "{\"txn_id\": \"hb-6\","
	    " \"card_id\": \"card-hb\", \"merchant_id\": \"m-1\", \"currency\": \"EUR\","
	    " \"event_time_ms\": 1763700000000, \"amount\":"
	    " \"12\u20ac\u20ac\u20ac\u20ac\u20ac\u20ac\u20ac\u20ac\u20ac\u20ac\u20ac\u20ac\u20ac\u20ac\"}",
	    400, "\"field\":\"txn.amount\"");
	/* A NUL byte in a string is INVALID on its field, as over nng
	 * (docs/protocol.md), not jansson's MALFORMED; a number holding one is
	 * not read up to it (12 EUR), and nothing is recorded. */
	post_expect(s.admin_port, "/v1/score", HB_TXN("hb-10") ", \"device_id\": \"d\\u0000x\"}",
	    400, "{\"status\":\"INVALID\",\"error\":{\"code\":\"INVALID\",\"message\":"
	    "\"contains a NUL byte\",\"where\":{\"field\":\"txn.device_id\"}}}");
	post_expect(s.admin_port, "/v1/score", "{\"txn\": {\"txn_id\": \"hb-10\", \"card_id\":"
	    " \"card-hb\", \"merchant_id\": \"m-1\", \"currency\": \"EUR\", \"amount\":"
	    " \"12\\u000034\"}}",
	    400, "\"where\":{\"field\":\"txn.amount\"}");
	post_expect(s.admin_port, "/v1/score", HB_TXN("hb-10") ", \"location\": {\"latitude\": 1,"
	    " \"longitude\": \"2\\u00003\"}}", 400, "\"where\":{\"field\":\"txn.location.longitude\"}");
	post_expect(s.admin_port, "/v1/score", HB_TXN("hb-10") "}", 200, HB_NEW);
	/* a number in a string is read as every number is (issue 18); one
	 * that is not a number is refused naming its path */
	post_expect(s.admin_port, "/v1/score", HB_TXN("hb-2")
	    ", \"location\": {\"latitude\": \"48.8x\", \"longitude\": 2.3}}",
	    400, "\"field\":\"txn.location.latitude\"");
	post_expect(s.admin_port, "/v1/score", HB_TXN("hb-3")
	    ", \"location\": {\"latitude\": 48.8, \"longitude\": 200}}",
	    400, "\"field\":\"txn.location.longitude\"");
	/* The field comes from the decoder, not from the message: a bad txn_id
	 * was named "txn" when the field was read up to the message's colon
	 * and any name starting with "txn" taken for the object. */
	post_expect(s.admin_port, "/v1/score", "{\"txn\": {\"txn_id\": 7}}",
	    400, "\"field\":\"txn.txn_id\"");
	post_expect(s.admin_port, "/v1/score", "{\"txn\": [1]}", 400, "\"field\":\"txn\"");
	/* the one error object of docs/tools.md: status, then error with code,
	 * message and where; txn_id when the transaction was read */
	post_expect(s.admin_port, "/v1/score", "{\"txn_id\": \"hb-7\", \"card_id\": \"card-hb\","
	    " \"merchant_id\": \"m-1\", \"amount_minor\": 100, \"currency\": \"EUX\","
	    " \"event_time_ms\": 1763700000000}", 400,
	    "{\"status\":\"INVALID\",\"error\":{\"code\":\"INVALID\",\"message\":\"currency "
	    "\\\"EUX\\\" is not an active ISO 4217 code\",\"where\":{\"field\":\"txn.currency\"}},"
	    "\"txn_id\":\"hb-7\"}");
	/* not JSON: the place in where (line, column), not in the message */
	post_expect(s.admin_port, "/v1/score", "{not json", 400,
	    "{\"status\":\"MALFORMED\",\"error\":{\"code\":\"MALFORMED\",\"message\":\"string or "
	    "'}' expected near 'not'\",\"where\":{\"line\":1,\"column\":");
	post_expect(s.admin_port, "/v1/generations/current", "{\"generation\": 1,", 400,
	    "\"code\":\"MALFORMED\",\"message\":\"string or '}' expected near end of file\","
	    "\"where\":{\"line\":1,\"column\":17}");
	post_expect(s.admin_port, "/v1/generations/current?force=1", "{\"generation\": 1}", 400,
	    "{\"status\":\"INVALID\",\"error\":{\"code\":\"INVALID\",\"message\":\"this endpoint "
	    "takes no query string\",\"where\":{\"field\":\"force\"}}}");
	post_expect(s.admin_port, "/v1/generations/current", "{\"generation\": 5}", 404,
	    "{\"status\":\"NOT_FOUND\",\"error\":{\"code\":\"NOT_FOUND\",\"message\":\"no "
	    "generation 5 in features/\",\"where\":{\"field\":\"generation\"}}}");
	/* JSON but no object, a number as an array: INVALID, not MALFORMED */
	for (int i = 0; i < 2; i++)
		post_expect(s.admin_port, "/v1/generations/current", i == 0 ? "[1]" : "5", 400,
		    "{\"status\":\"INVALID\",\"error\":{\"code\":\"INVALID\",\"message\":\"the body "
		    "must be a JSON object");
	post_expect(s.admin_port, "/v1/score", "5", 400, "\"code\":\"INVALID\"");
	/* the event-time rule (docs/protocol.md): a JSON transaction without
	 * event_time is stamped on arrival, as vigil-score and the Python
	 * client do; an explicit 0 is still refused */
	post_expect(s.admin_port, "/v1/score", "{\"txn_id\": \"hb-8\", \"card_id\": \"card-hb8\","
	    " \"merchant_id\": \"m-1\", \"amount_minor\": 100, \"currency\": \"EUR\"}", 200, HB_NEW);
	post_expect(s.admin_port, "/v1/score", "{\"txn_id\": \"hb-9\", \"card_id\": \"card-hb8\","
	    " \"merchant_id\": \"m-1\", \"amount_minor\": 100, \"currency\": \"EUR\","
	    " \"event_time_ms\": 0}", 400, "\"field\":\"txn.event_time_ms\"");
	assert_int_equal(vt_server_stop(&s), 0);
	vt_server_cleanup(&s);
}

/* An mcc or a channel number out of range, an ip that is no address, is
 * refused in the same words over nng and over HTTP (the JSON reader said
 * "must be in [0, 9999]"). http_msg: msg as a JSON string, if it differs. */
static void
test_range_words_agree(void **state)
{
	static const struct {
		const char *json, *field, *msg, *http_msg;
		uint32_t    mcc, channel;
		char       *ip;
	} c[] = {
		{ "\"mcc\": 10000", "txn.mcc", "mcc 10000 is not a 4-digit merchant category code",
		  NULL, 10000, 0, "" },
		{ "\"channel\": 7", "txn.channel", "channel 7 is not a known channel (0-4)", NULL,
		  0, 7, "" },
		{ "\"ip\": \"999.1.1.1\"", "txn.ip", "ip \"999.1.1.1\" is not an IPv4 or IPv6 address",
		  "ip \\\"999.1.1.1\\\" is not an IPv4 or IPv6 address", 0, 0, "999.1.1.1" },
		{ "\"ip\": \"fe80::1%eth0\"", "txn.ip",
		  "ip \"fe80::1%eth0\" is not an IPv4 or IPv6 address",
		  "ip \\\"fe80::1%eth0\\\" is not an IPv4 or IPv6 address", 0, 0, "fe80::1%eth0" },
	};
	vt_server s = { 0 };

	(void)state;
	assert_int_equal(vt_server_start(&s, velocity_rules(), NULL), 0);
	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
		Vigil__V1__Transaction *t = vt_txn(0, "w-1", "card-w", 100, vigil_now_ms());
		Vigil__V1__Reply *r;
		char body[512], want[256], *got = NULL;
		int code = 0;

		t->mcc = c[i].mcc;
		t->channel = c[i].channel;
		t->ip = c[i].ip;
		r = vt_score(s.url, t, true);
		assert_non_null(r);
		assert_int_equal(r->status, VIGIL__V1__STATUS__STATUS_INVALID);
		assert_string_equal(r->field, c[i].field);
		assert_string_equal(r->message, c[i].msg);
		vigil__v1__reply__free_unpacked(r, NULL);
		snprintf(body, sizeof body, "{\"txn_id\": \"w-1\", \"card_id\": \"card-w\", "
		    "\"merchant_id\": \"m-1\", \"amount_minor\": 100, \"currency\": \"EUR\", %s}",
		    c[i].json);
		assert_int_equal(vt_http_post(s.admin_port, "/v1/score", body, &code, &got), 0);
		assert_int_equal(code, 400);
		snprintf(want, sizeof want, "\"message\":\"%s\",\"where\":{\"field\":\"%s\"}",
		    c[i].http_msg != NULL ? c[i].http_msg : c[i].msg, c[i].field);
		if (strstr(got, want) == NULL)
			fail_msg("%s over HTTP: %s (want %s)", c[i].json, got, want);
		free(got);
	}
	assert_int_equal(vt_server_stop(&s), 0);
	vt_server_cleanup(&s);
}

/* Whether the reply's hits name rule. */
static bool
ip_hit(const Vigil__V1__Reply *r, const char *rule)
{
	assert_int_equal(r->status, VIGIL__V1__STATUS__STATUS_OK);
	for (size_t i = 0; i < r->score->n_hits; i++)
		if (strcmp(r->score->hits[i]->rule, rule) == 0)
			return true;
	return false;
}

/*
 * One address in three spellings, over nng and over /v1/score, is one IP
 * entity (vel.ip.count_1h) and is archived in one text: respelling the
 * address does not split its velocity.
 */
static void
test_ip_spellings_one_entity(void **state)
{
	static const char rules[] = "version \"ip-1\"\nband review = 30\nband decline = 60\n"
	    "rule ip_third {\n  when vel.ip.count_1h >= 2\n  score 10\n  reason \"ip\"\n}\n";
	char dir[] = "/tmp/vigil-ip-XXXXXX", path[64], arch[300], json[320], *body = NULL;
	vt_server s = { 0 };
	Vigil__V1__Transaction *t;
	Vigil__V1__Reply *r;
	store_scored *sc = malloc(sizeof *sc);
	store_reader *rd = NULL;
	store_record rec;
	store_diag diag;
	size_t n = 0;
	int code = 0;
	FILE *f;

	(void)state;
	assert_non_null(sc);
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/ip.rules", dir);
	assert_non_null(f = fopen(path, "w"));
	fputs(rules, f);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(vt_server_start(&s, path, NULL), 0);

	t = vt_txn(0, "ip-1", "card-ip-1", 100, vigil_now_ms());
	t->ip = "10.0.0.1";
	assert_non_null(r = vt_score(s.url, t, false));
	assert_false(ip_hit(r, "ip_third"));
	vigil__v1__reply__free_unpacked(r, NULL);
	snprintf(json, sizeof json, "{\"txn_id\": \"ip-2\", \"card_id\": \"card-ip-2\","
	    " \"merchant_id\": \"m-1\", \"amount_minor\": 100, \"currency\": \"EUR\","
	    " \"event_time_ms\": %lld, \"ip\": \"::ffff:10.0.0.1\"}", (long long)vigil_now_ms());
	assert_int_equal(vt_http_post(s.admin_port, "/v1/score", json, &code, &body), 0);
	assert_int_equal(code, 200);
	assert_null(strstr(body, "ip_third"));
	free(body);
	t = vt_txn(0, "ip-3", "card-ip-3", 100, vigil_now_ms());
	t->ip = "0:0:0:0:0:FFFF:a00:1";
	assert_non_null(r = vt_score(s.url, t, false));
	if (!ip_hit(r, "ip_third"))
		fail_msg("the third spelling of 10.0.0.1 did not see the first two");
	vigil__v1__reply__free_unpacked(r, NULL);
	assert_int_equal(vt_server_stop(&s), 0);

	snprintf(arch, sizeof arch, "%s/archive", s.datadir);
	assert_int_equal(store_reader_open(arch, INT64_MIN, INT64_MAX, NULL, NULL, &rd, &diag),
	    VIGIL_OK);
	while (store_reader_next(rd, &rec, &diag) == VIGIL_OK) {
		assert_int_equal(store_scored_decode(rec.payload, rec.len, sc, &diag), VIGIL_OK);
		assert_string_equal(sc->txn.ip, "10.0.0.1");
		n++;
	}
	assert_int_equal(n, 3);
	store_reader_close(rd);
	free(sc);
	vt_server_cleanup(&s);
	unlink(path);
	rmdir(dir);
}

/* Writes text to path (the rule file vigild watches). */
static void
hits_rules(const char *path, const char *version, bool big)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fprintf(f, "version \"%s\"\nband review = 30\nband decline = 60\n%s"
	    "rule any {\n  when amount >= 0\n  score 1\n  reason \"any\"\n}\n", version,
	    big ? "rule big {\n  when amount >= 1000\n  score 70\n  reason \"big\"\n}\n" : "");
	assert_int_equal(fclose(f), 0);
}

/*
 * A rule's hit counter is one counter for the server's life, by name: it
 * never goes down. Before, each reload copied the counts of the rules it
 * kept, so a rule taken out by one edit and put back by the next started
 * again from 0 (a Prometheus counter reset), and what requests holding the
 * old rules counted after the copy was lost.
 */
static void
test_rule_hits_across_reloads(void **state)
{
	char dir[] = "/tmp/vigil-hits-XXXXXX", path[64], *body = NULL;
	vt_server s = { 0 };
	int code = 0;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/hits.rules", dir);
	hits_rules(path, "hits-1", true);
	assert_int_equal(vt_server_start(&s, path, NULL), 0);
	assert_int_equal(vt_http_post(s.admin_port, "/v1/score",
	    "{\"txn_id\": \"k-1\", \"card_id\": \"card-k\", \"merchant_id\": \"m-1\","
	    " \"amount\": 1500.00, \"currency\": \"EUR\"}", &code, &body), 0);
	assert_int_equal(code, 200);
	free(body);
	/* an edit takes big out (the watch reloads it), the next puts it back */
	hits_rules(path, "hits-2", false);
	assert_true(vt_log_wait(&s, "rules: loaded", 2, 10000));
	hits_rules(path, "hits-three", true);
	assert_true(vt_log_wait(&s, "rules: loaded", 3, 10000));
	assert_int_equal(vt_http_get(s.admin_port, "/metrics", &code, &body), 0);
	assert_int_equal(code, 200);
	if (strstr(body, "vigil_rules_info{version=\"hits-three\"") == NULL ||
	    strstr(body, "vigil_rule_hits_total{rule=\"big\",mode=\"active\"} 1\n") == NULL ||
	    strstr(body, "vigil_rule_hits_total{rule=\"any\",mode=\"active\"} 1\n") == NULL)
		fail_msg("big's and any's hits after two reloads:\n%s", body);
	free(body);
	assert_int_equal(vt_server_stop(&s), 0);
	vt_server_cleanup(&s);
	unlink(path);
	rmdir(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_http),
		cmocka_unit_test(test_http_bad_input),
		cmocka_unit_test(test_http_endpoints),
		cmocka_unit_test(test_http_body_cap),
		cmocka_unit_test(test_rule_hits_across_reloads),
		cmocka_unit_test(test_range_words_agree),
		cmocka_unit_test(test_ip_spellings_one_entity),
		cmocka_unit_test(test_admin_libevent_pages),
		cmocka_unit_test(test_health_libevent_pages),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
