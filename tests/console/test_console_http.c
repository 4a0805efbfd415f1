/* SPDX-License-Identifier: MIT */
/*
 * tests/console/test_console_http.c - the answers libevent 2.1 writes
 * itself, before any callback of vigil-console's (integration, a real
 * vigil-console on loopback, no vigild needed): a request line or header
 * that does not parse, headers over 16 KiB, an unknown method, an Expect it
 * does not meet, a body over 2 MiB, also after an answer of the console's
 * own on the same connection. Each is the error object (docs/tools.md) with
 * its code, typed application/json with the console's security headers,
 * its Content-Length exact, and the connection is closed after it as
 * libevent closes it (common/evconn.h replaces libevent's HTML page). Raw
 * sockets: an HTTP client would not send these. And a static file whose
 * place holds a FIFO: refused with 500, not waited on by the one event
 * loop.
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
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "tmpdir.h"

static char     tmp[256];
static pid_t    console_pid;
static uint16_t console_port;

/* vt_http_raw, failing the test if the connection could not be made or
 * was not closed: every answer here closes it. */
static char *
http_raw(const char *req, size_t len)
{
	bool closed = false;
	char *resp = vt_http_raw(console_port, req, len, &closed);

	assert_non_null(resp);
	if (!closed)
		fail_msg("the connection was not closed: %s", resp);
	return resp;
}

/*
 * Checks the answer at *p and moves *p past it: status, Content-Type
 * application/json, the console's headers, a Content-Length that counts
 * the body, and the body {"error": {"code": code, "message": msg}} (one
 * line).
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
	    strstr(head, "\r\nX-Content-Type-Options: nosniff\r\n") == NULL ||
	    strstr(head, "\r\nContent-Security-Policy: default-src 'self'") == NULL ||
	    blen == 0 || body[blen - 1] != '\n')
		fail_msg("%s: expected %d with JSON and the console's headers, one line: %s", what,
		    status, at);
	o = json_loadb(body, blen, 0, NULL);
	err = json_object_get(o, "error");
	if (o == NULL || json_object_size(o) != 1 ||
	    !json_is_string(json_object_get(err, "code")) ||
	    strcmp(json_string_value(json_object_get(err, "code")), code) != 0 ||
	    !json_is_string(json_object_get(err, "message")) ||
	    strcmp(json_string_value(json_object_get(err, "message")), msg) != 0)
		fail_msg("%s: expected %s \"%s\": %s", what, code, msg, at);
	json_decref(o);
}

#define MSG_400 "the request line or a header does not parse, or the headers are too long"
#define MSG_413 "the request body is over the 2097152-byte limit (2 MiB)"
#define MSG_417 "an Expect header other than \"100-continue\""
#define MSG_501 "the method is not one this server answers"

static int
setup(void **state)
{
	char data[300], st[300], tokens[300], listen[32], log[300], www[300], cjs[300], p[400];
	FILE *f;

	(void)state;
	if (vt_tmpdir_make("vigil-console-http", tmp, sizeof tmp) != 0)
		return -1;
	snprintf(data, sizeof data, "%s/data", tmp);
	snprintf(st, sizeof st, "%s/state", tmp);
	snprintf(tokens, sizeof tokens, "%s/tokens", tmp);
	snprintf(log, sizeof log, "%s/console.log", tmp);
	mkdir(data, 0755);
	/* the UI's files, but a FIFO for style.css and for Chart.js */
	snprintf(www, sizeof www, "%s/www", tmp);
	snprintf(cjs, sizeof cjs, "%s/chartjs", tmp);
	if (mkdir(www, 0755) != 0 || mkdir(cjs, 0755) != 0)
		return -1;
	snprintf(p, sizeof p, "%s/index.html", www);
	if (symlink(vt_src_path("console/www/index.html"), p) != 0)
		return -1;
	snprintf(p, sizeof p, "%s/style.css", www);
	if (mkfifo(p, 0644) != 0)
		return -1;
	snprintf(p, sizeof p, "%s/chart.umd.js", cjs);
	if (mkfifo(p, 0644) != 0)
		return -1;
	f = fopen(tokens, "w");
	if (f == NULL)
		return -1;
	fputs("alice analyst alice-analyst-token-0001\n", f);
	fclose(f);
	chmod(tokens, 0600);
	console_port = vt_free_port();
	if (console_port == 0)
		return -1;
	snprintf(listen, sizeof listen, "127.0.0.1:%u", console_port);
	fflush(NULL);
	console_pid = fork();
	if (console_pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);

		dup2(fd, 2);
		execl(vt_build_path("console/vigil-console"), "vigil-console", "--data", data,
		    "--rules", vt_src_path("rules/default.rules"), "--tokens", tokens, "--state", st,
		    "--listen", listen, "--www", www, "--chartjs", cjs, (char *)NULL);
		_exit(127);
	}
	if (console_pid < 0)
		return -1;
	for (int i = 0; i < 300; i++) {
		int code = 0;
		char *body = NULL;

		if (vt_http_get(console_port, "/healthz", &code, &body) == 0 && code == 200) {
			free(body);
			return 0;
		}
		free(body);
		usleep(50000);
	}
	fprintf(stderr, "vigil-console did not answer within 15 s (log: %s)\n", log);
	return -1;
}

static int
teardown(void **state)
{
	int st = 0, rv = 0;

	(void)state;
	if (console_pid > 0) {
		kill(console_pid, SIGTERM);
		waitpid(console_pid, &st, 0);
		/* a clean stop: under ASan a leak or an error would make it non-zero */
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			fprintf(stderr, "vigil-console did not stop cleanly (status %d; log %s/console.log)\n",
			    st, tmp);
			rv = -1;
		}
	}
	if (rv == 0 && getenv("VIGIL_KEEP_TMP") == NULL)
		vt_tmpdir_remove(tmp);
	return rv;
}

/* Requests libevent answers itself, and its status, code and message. */
typedef struct page_case {
	const char *what;
	const char *req;
	int         status;
	const char *code;
	const char *msg;
} page_case;

static void
test_libevent_pages(void **state)
{
	static const page_case cases[] = {
		{ "a request line that does not parse", "GARBAGE\r\n\r\n", 400, "MALFORMED",
		  MSG_400 },
		{ "a header line without a colon", "GET /healthz HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n",
		  400, "MALFORMED", MSG_400 },
		{ "HTTP/1.0, a header line without a colon", "GET /api/queue HTTP/1.0\r\nNoColon\r\n"
		  "\r\n", 400, "MALFORMED", MSG_400 },
		{ "HEAD, a header line without a colon", "HEAD / HTTP/1.1\r\nNoColon\r\n\r\n",
		  400, "MALFORMED", MSG_400 },
		{ "HTTP/2.0", "GET /healthz HTTP/2.0\r\nHost: x\r\n\r\n", 400, "MALFORMED", MSG_400 },
		{ "a Content-Length that is no number", "POST /api/lists HTTP/1.1\r\nHost: x\r\n"
		  "Content-Length: 12x\r\n\r\n", 400, "MALFORMED", MSG_400 },
		{ "an unknown method", "FOO /api/queue HTTP/1.1\r\nHost: x\r\n\r\n", 501,
		  "METHOD_NOT_ALLOWED", MSG_501 },
		{ "TRACE", "TRACE / HTTP/1.1\r\nHost: x\r\n\r\n", 501, "METHOD_NOT_ALLOWED",
		  MSG_501 },
		/* libevent 2.1 keeps a CONNECT's connection: closed by evconn */
		{ "CONNECT, then a GET on the same connection", "CONNECT 127.0.0.1:80 HTTP/1.1\r\n"
		  "Host: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", 501,
		  "METHOD_NOT_ALLOWED", MSG_501 },
		{ "an Expect other than 100-continue", "POST /api/lists HTTP/1.1\r\nHost: x\r\n"
		  "Expect: something\r\nContent-Length: 2\r\n\r\n{}", 417, "INVALID", MSG_417 },
		{ "a Content-Length over 2 MiB", "POST /api/lists HTTP/1.1\r\nHost: x\r\n"
		  "Content-Length: 2097153\r\n\r\n", 413, "TOO_BIG", MSG_413 },
	};
	static char big[20000 + 64];
	char *resp, two[256];
	const char *p;
	int k;

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		/* alone on a connection, then after the console's own answer
		 * (libevent 2.1 keeps the start of its output buffer frozen from
		 * then on) */
		resp = http_raw(cases[i].req, strlen(cases[i].req));
		p = resp;
		reply_expect(cases[i].what, &p, cases[i].status, cases[i].code, cases[i].msg);
		if (*p != '\0')
			fail_msg("%s: more after the answer: %s", cases[i].what, resp);
		free(resp);
		snprintf(two, sizeof two, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n%s", cases[i].req);
		resp = http_raw(two, strlen(two));
		if (strncmp(resp, "HTTP/1.1 200 OK\r\n", 17) != 0 ||
		    (p = strstr(resp, "\r\n\r\n{\"ok\":true,")) == NULL ||
		    (p = strstr(p, "}\nHTTP/1.1 ")) == NULL)
			fail_msg("%s after GET /healthz: %s", cases[i].what, resp);
		p += 2;
		reply_expect(cases[i].what, &p, cases[i].status, cases[i].code, cases[i].msg);
		free(resp);
	}
	/* headers over 16 KiB */
	k = snprintf(big, 64, "GET /api/queue HTTP/1.1\r\nHost: x\r\nX-Pad: ");
	memset(big + k, 'a', 20000);
	memcpy(big + k + 20000, "\r\n\r\n", 4);
	resp = http_raw(big, (size_t)k + 20004);
	p = resp;
	reply_expect("headers over 16 KiB", &p, 400, "MALFORMED", MSG_400);
	free(resp);
}

/* A static file that is a FIFO gets 500 at once (an open(2) would wait
 * for a writer with the whole console); a regular one is served. */
static void
test_static_fifo(void **state)
{
	static const char *const fifos[] = { "/style.css", "/js/chart.js" };
	char *body = NULL;
	int code = 0;

	(void)state;
	for (size_t i = 0; i < sizeof fifos / sizeof fifos[0]; i++) {
		assert_int_equal(vt_http_get(console_port, fifos[i], &code, &body), 0);
		if (code != 500 || strstr(body, "is not a regular file") == NULL)
			fail_msg("GET %s (a FIFO): %d %s", fifos[i], code, body);
		free(body);
		body = NULL;
	}
	assert_int_equal(vt_http_get(console_port, "/index.html", &code, &body), 0);
	if (code != 200 || strstr(body, "<html") == NULL)
		fail_msg("GET /index.html: %d %.200s", code, body);
	free(body);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_libevent_pages),
		cmocka_unit_test(test_static_fifo),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, setup, teardown);
}
