/* SPDX-License-Identifier: MIT */
/*
 * tests/server/test_vigild_http.c - the answers libevent 2.1 writes itself,
 * before any callback of vigild's (integration, a real vigild on loopback):
 * a request line or header that does not parse, headers over the cap, an
 * unknown method, an Expect vigild does not meet, a body sent to the
 * probes' listener. Each is the error object (docs/tools.md) with its code,
 * typed application/json, its Content-Length exact, and the connection is
 * closed after it as libevent closes it (common/evconn.h replaces
 * libevent's HTML page). Raw sockets: an HTTP client would not send these.
 * (Not in test_vigild.c, which is past 1,500 lines already.)
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
	const char *end = strstr(*p, "\r\n\r\n"), *cl;
	char head[4096];
	size_t hlen, blen;
	json_error_t jerr;
	json_t *o;
	int st = 0;

	if (end == NULL || (size_t)(end - *p) + 2 >= sizeof head)
		fail_msg("%s: no answer: %s", what, *p);
	hlen = (size_t)(end - *p) + 2;
	memcpy(head, *p, hlen);
	head[hlen] = '\0';
	if (sscanf(head, "HTTP/1.%*d %d ", &st) != 1 || st != status ||
	    strstr(head, "\r\nContent-Type: application/json\r\n") == NULL ||
	    (cl = strstr(head, "\r\nContent-Length: ")) == NULL)
		fail_msg("%s: expected %d with JSON: %s", what, status, *p);
	blen = strtoul(cl + 18, NULL, 10);
	if (strlen(end + 4) < blen)
		fail_msg("%s: a body shorter than its Content-Length: %s", what, *p);
	o = json_loadb(end + 4, blen, 0, &jerr);
	if (o == NULL || !json_is_string(json_object_get(o, "status")) ||
	    strcmp(json_string_value(json_object_get(o, "status")), code) != 0 ||
	    !json_is_string(json_object_get(json_object_get(o, "error"), "code")) ||
	    strcmp(json_string_value(json_object_get(json_object_get(o, "error"), "code")),
	    code) != 0 ||
	    !json_is_string(json_object_get(json_object_get(o, "error"), "message")) ||
	    strcmp(json_string_value(json_object_get(json_object_get(o, "error"), "message")),
	    msg) != 0 || end[4 + blen - 1] != '\n')
		fail_msg("%s: expected %s \"%s\": %s", what, code, msg, *p);
	json_decref(o);
	*p = end + 4 + blen;
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

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_admin_libevent_pages),
		cmocka_unit_test(test_health_libevent_pages),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
