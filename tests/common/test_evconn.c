/* SPDX-License-Identifier: MIT */
/* tests/common/test_evconn.c - the connection set of common/evconn.h on a
 * real event_base and evhttp, with clients on loopback sockets in the same
 * thread: N+1 clients against a cap of N (the last is served only once one
 * closes), the external pause combined with the cap's, the idle deadline
 * closing a silent connection, the cap per client address (127.0.0.1 and
 * 127.0.0.2), the on-close hook, and the count back to 0; the JSON reply
 * (out of memory too) and the query's first parameter.
 * No timing is asserted: each wait is a bounded loop on a condition. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>

#include "evconn.h"

#define FX_CLIENTS 8
#define PUMP_MAX   3000 /* loop iterations of at most 10 ms: a bound, not a figure */
#define PUMP_IDLE  20   /* iterations in which something must NOT happen */

typedef struct fx {
	struct event_base     *base;
	struct evhttp         *http;
	struct event          *tick;
	struct evconnlistener *lev;
	vigil_evconn_set      *set;
	uint16_t               port;
	uint32_t               served;  /* requests answered */
	uint32_t               idle;    /* on_idle calls */
	uint32_t               caps;    /* on_cap calls */
	uint32_t               counted; /* last n from on_count */
	uint32_t               closed;  /* on-close hooks run */
	uint32_t               addr_caps; /* on_addr_cap calls */
	char                   addr_capped[64]; /* the last one's address */
	char                   err[160]; /* vigil_evconn_bind's */
	bool                   hook;    /* hook each request's connection */
	int                    cl[FX_CLIENTS];
	const char            *query;   /* /q: vigil_evconn_query's answer */
	char                   qkey[16];
} fx;

#define FX_OOM "{\"error\":{\"code\":\"INTERNAL\",\"message\":\"out of memory\"}}\n"

static void
fx_on_count(void *arg, uint32_t n)
{
	((fx *)arg)->counted = n;
}

static void
fx_on_cap(void *arg)
{
	((fx *)arg)->caps++;
}

static void
fx_on_idle(void *arg)
{
	((fx *)arg)->idle++;
}

static void
fx_on_addr_cap(void *arg, const char *addr)
{
	fx *f = arg;

	f->addr_caps++;
	snprintf(f->addr_capped, sizeof f->addr_capped, "%s", addr);
}

static void
fx_closed(void *arg)
{
	((fx *)arg)->closed++;
}

static void
fx_request(struct evhttp_request *req, void *arg)
{
	fx *f = arg;
	struct evbuffer *b = evbuffer_new();

	const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));

	vigil_evconn_seen(f->set, req);
	if (f->hook)
		assert_int_equal(vigil_evconn_on_close(f->set, evhttp_request_get_connection(req),
		    fx_closed, f), VIGIL_OK);
	f->served++;
	if (strcmp(path, "/json") == 0 || strcmp(path, "/oom") == 0) {
		evbuffer_free(b);
		vigil_evconn_send_json(req, 201, NULL, path[1] == 'j' ? json_pack("{s:i}", "n", 1) :
		    NULL, FX_OOM);
		return;
	}
	if (strcmp(path, "/q") == 0) {
		memset(f->qkey, 'X', sizeof f->qkey);
		f->query = vigil_evconn_query(req, f->qkey, sizeof f->qkey);
	}
	evbuffer_add_printf(b, "ok\n");
	evhttp_send_reply(req, 200, "OK", b);
	evbuffer_free(b);
}

static void
fx_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}

/* One turn of the loop: whatever is ready, or 10 ms of nothing. */
static void
fx_pump(fx *f)
{
	const struct timeval tv = { 0, 10000 };

	evtimer_add(f->tick, &tv);
	event_base_loop(f->base, EVLOOP_ONCE);
}

#define PUMP_UNTIL(f, cond)                                       \
	do {                                                      \
		for (int i_ = 0; i_ < PUMP_MAX && !(cond); i_++)  \
			fx_pump(f);                               \
		assert_true(cond);                                \
	} while (0)

static void
fx_start(fx *f, const vigil_evconn_opts *opts)
{
	struct evhttp_bound_socket *bound;
	struct sockaddr_in sin;
	socklen_t len = sizeof sin;
	vigil_evconn_opts o = *opts;

	memset(f, 0, sizeof *f);
	for (int i = 0; i < FX_CLIENTS; i++)
		f->cl[i] = -1;
	f->base = event_base_new();
	assert_non_null(f->base);
	f->tick = evtimer_new(f->base, fx_tick, NULL);
	assert_non_null(f->tick);
	f->http = evhttp_new(f->base);
	assert_non_null(f->http);
	evhttp_set_gencb(f->http, fx_request, f);
	bound = vigil_evconn_bind(f->base, f->http, "127.0.0.1", 0, f->err, sizeof f->err);
	assert_non_null(bound);
	assert_int_equal(getsockname(evhttp_bound_socket_get_fd(bound), (struct sockaddr *)&sin,
	    &len), 0);
	f->port = ntohs(sin.sin_port);
	o.on_count = fx_on_count;
	o.on_cap = fx_on_cap;
	o.on_idle = fx_on_idle;
	o.on_addr_cap = fx_on_addr_cap;
	o.arg = f;
	f->lev = evhttp_bound_socket_get_listener(bound);
	assert_int_equal(vigil_evconn_set_new(f->http, f->lev, &o, &f->set), VIGIL_OK);
	assert_int_equal(vigil_evconn_count(f->set), 0);
}

static void
fx_stop(fx *f)
{
	vigil_evconn_set_stop(f->set);
	evhttp_free(f->http); /* closes what is open: counted down */
	assert_int_equal(vigil_evconn_count(f->set), 0);
	vigil_evconn_set_free(f->set);
	event_free(f->tick);
	event_base_free(f->base);
	for (int i = 0; i < FX_CLIENTS; i++)
		if (f->cl[i] >= 0)
			close(f->cl[i]);
}

/* Client i connects from 127.0.0.src (1 or 2) (the kernel completes it from
 * the listen backlog, served or not) and, if req, sends one keep-alive
 * request. */
static void
fx_connect_from(fx *f, int i, bool req, uint8_t src)
{
	static const char get[] = "GET /x HTTP/1.1\r\nHost: test\r\n\r\n";
	struct sockaddr_in sin;
	struct sockaddr_in from = { .sin_family = AF_INET };

	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_port = htons(f->port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	f->cl[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(f->cl[i] >= 0);
	from.sin_addr.s_addr = htonl(0x7f000000u | src);
	assert_int_equal(bind(f->cl[i], (struct sockaddr *)&from, sizeof from), 0);
	assert_int_equal(connect(f->cl[i], (struct sockaddr *)&sin, sizeof sin), 0);
	if (req)
		assert_int_equal(send(f->cl[i], get, sizeof get - 1, MSG_NOSIGNAL),
		    (ssize_t)(sizeof get - 1));
}

static void
fx_connect(fx *f, int i, bool req)
{
	fx_connect_from(f, i, req, 1);
}

static void
fx_close(fx *f, int i)
{
	close(f->cl[i]);
	f->cl[i] = -1;
}

/* The server closed client i's connection: EOF (or a reset) once its
 * replies are read. */
static bool
fx_peer_closed(fx *f, int i)
{
	char buf[4096];
	ssize_t n;

	while ((n = recv(f->cl[i], buf, sizeof buf, MSG_DONTWAIT)) > 0)
		;
	return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

static void
test_cap_holds_the_last_client_until_one_closes(void **state)
{
	const vigil_evconn_opts o = { .max_conns = 3, .max_input = 64 << 10 };
	fx f;

	(void)state;
	fx_start(&f, &o);
	for (int i = 0; i < 4; i++)
		fx_connect(&f, i, true);
	PUMP_UNTIL(&f, f.served == 3);
	assert_int_equal(vigil_evconn_count(f.set), 3);
	assert_int_equal(f.counted, 3);
	assert_int_equal(f.caps, 1);
	/* the fourth waits in the accept queue, its request unread */
	for (int i = 0; i < PUMP_IDLE; i++)
		fx_pump(&f);
	assert_int_equal(f.served, 3);
	assert_int_equal(vigil_evconn_count(f.set), 3);

	fx_close(&f, 1);
	PUMP_UNTIL(&f, f.served == 4);
	assert_int_equal(vigil_evconn_count(f.set), 3);
	assert_int_equal(f.caps, 2); /* at the cap again */

	for (int i = 0; i < 4; i++)
		if (f.cl[i] >= 0)
			fx_close(&f, i);
	PUMP_UNTIL(&f, vigil_evconn_count(f.set) == 0);
	assert_int_equal(f.counted, 0);
	assert_int_equal(f.idle, 0);
	fx_stop(&f);
}

static void
test_external_pause_combines_with_the_cap(void **state)
{
	const vigil_evconn_opts o = { .max_conns = 1 };
	fx f;

	(void)state;
	fx_start(&f, &o);
	vigil_evconn_pause(f.set, true); /* as on EMFILE */
	fx_connect(&f, 0, true);
	for (int i = 0; i < PUMP_IDLE; i++)
		fx_pump(&f);
	assert_int_equal(f.served, 0);
	assert_int_equal(vigil_evconn_count(f.set), 0);

	vigil_evconn_pause(f.set, false);
	PUMP_UNTIL(&f, f.served == 1);
	assert_int_equal(vigil_evconn_count(f.set), 1);

	/* paused by the cap and by the caller: the close lifts the cap's
	 * pause only, and the next client waits for the caller's */
	fx_connect(&f, 1, true);
	vigil_evconn_pause(f.set, true);
	fx_close(&f, 0);
	PUMP_UNTIL(&f, vigil_evconn_count(f.set) == 0);
	for (int i = 0; i < PUMP_IDLE; i++)
		fx_pump(&f);
	assert_int_equal(f.served, 1);
	vigil_evconn_pause(f.set, false);
	PUMP_UNTIL(&f, f.served == 2);
	assert_int_equal(vigil_evconn_count(f.set), 1);
	fx_stop(&f); /* with a connection open */
}

static void
test_idle_deadline_closes_a_silent_connection(void **state)
{
	const vigil_evconn_opts o = { .max_conns = 4, .idle_s = 1 };
	fx f;

	(void)state;
	fx_start(&f, &o);
	fx_connect(&f, 0, false);  /* never says a word */
	fx_connect(&f, 1, true);   /* one request, then silent */
	PUMP_UNTIL(&f, f.served == 1 && vigil_evconn_count(f.set) == 2);
	PUMP_UNTIL(&f, vigil_evconn_count(f.set) == 0);
	assert_int_equal(f.idle, 2);
	assert_int_equal(f.counted, 0);
	assert_true(fx_peer_closed(&f, 0));
	assert_true(fx_peer_closed(&f, 1));
	fx_stop(&f);
}

/* Two connections from 127.0.0.1 at most: the third is closed before it is
 * served (on_addr_cap names the address), 127.0.0.2 is served beside them,
 * and once one of the first two closes 127.0.0.1 is served again. */
static void
test_per_address_cap(void **state)
{
	const vigil_evconn_opts o = { .max_conns = 8, .max_per_addr = 2 };
	fx f;

	(void)state;
	fx_start(&f, &o);
	fx_connect(&f, 0, true);
	fx_connect(&f, 1, true);
	PUMP_UNTIL(&f, f.served == 2);
	fx_connect(&f, 2, true);
	PUMP_UNTIL(&f, fx_peer_closed(&f, 2));
	assert_int_equal(f.served, 2);
	assert_int_equal(f.addr_caps, 1);
	assert_string_equal(f.addr_capped, "127.0.0.1");
	fx_connect_from(&f, 3, true, 2);
	PUMP_UNTIL(&f, f.served == 3);
	assert_int_equal(vigil_evconn_count(f.set), 3);
	fx_close(&f, 0);
	PUMP_UNTIL(&f, vigil_evconn_count(f.set) == 2);
	fx_close(&f, 2);
	fx_connect(&f, 2, true);
	PUMP_UNTIL(&f, f.served == 4);
	assert_int_equal(f.addr_caps, 1);
	fx_stop(&f);
}

static void
test_on_close_hook_runs_once_when_the_client_leaves(void **state)
{
	const vigil_evconn_opts o = { .max_conns = 4 };
	fx f;

	(void)state;
	fx_start(&f, &o);
	f.hook = true;
	fx_connect(&f, 0, true);
	fx_connect(&f, 1, true);
	PUMP_UNTIL(&f, f.served == 2);
	assert_int_equal(f.closed, 0);
	fx_close(&f, 0);
	PUMP_UNTIL(&f, vigil_evconn_count(f.set) == 1);
	assert_int_equal(f.closed, 1);
	fx_stop(&f); /* evhttp_free closes the other: its hook runs too */
	assert_int_equal(f.closed, 2);
}

/* Client i sends request (which asks the server to close) and reads the
 * whole answer into buf. */
static void
fx_exchange(fx *f, int i, const char *request, char *buf, size_t cap)
{
	size_t got = 0;
	ssize_t n = -1;

	fx_connect(f, i, false);
	assert_int_equal(send(f->cl[i], request, strlen(request), MSG_NOSIGNAL),
	    (ssize_t)strlen(request));
	for (int k = 0; k < PUMP_MAX && n != 0; k++) {
		fx_pump(f);
		while (got < cap - 1 &&
		    (n = recv(f->cl[i], buf + got, cap - 1 - got, MSG_DONTWAIT)) > 0)
			got += (size_t)n;
	}
	assert_int_equal(n, 0);
	buf[got] = '\0';
	fx_close(f, i);
}

/* vigil_evconn_send_json: the object as one line; out of memory (no
 * object) the program's constant body with 500, never libevent's HTML. */
static void
test_send_json(void **state)
{
	vigil_evconn_opts o = { .max_conns = 4 };
	char buf[2048];
	fx f;

	(void)state;
	fx_start(&f, &o);
	fx_exchange(&f, 0, "GET /json HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", buf,
	    sizeof buf);
	assert_true(strncmp(buf, "HTTP/1.1 201 Created\r\n", 22) == 0);
	assert_non_null(strstr(buf, "Content-Type: application/json\r\n"));
	assert_non_null(strstr(buf, "Content-Length: 8\r\n"));
	assert_non_null(strstr(buf, "\r\n\r\n{\"n\":1}\n"));
	fx_exchange(&f, 0, "GET /oom HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", buf,
	    sizeof buf);
	assert_true(strncmp(buf, "HTTP/1.1 500 Internal Server Error\r\n", 36) == 0);
	assert_non_null(strstr(buf, "Content-Type: application/json\r\n"));
	assert_string_equal(strstr(buf, "\r\n\r\n") + 4, FX_OOM);
	fx_stop(&f);
}

/* vigil_evconn_query: the query, and its first parameter's name decoded
 * and cut to fit. */
static void
test_query_names_its_first_parameter(void **state)
{
	static const struct {
		const char *target, *key;
		bool query;
	} cases[] = {
		{ "/q", "", false },
		{ "/q?dry_run=true&x=1", "dry_run", true },
		{ "/q?dry%5Frun", "dry_run", true },
		{ "/q?a+b;c", "a b", true },
		{ "/q?=1", "", true },
		{ "/q?averyveryverylongname=1", "averyveryverylo", true },
	};
	vigil_evconn_opts o = { .max_conns = 4 };
	char req[256], buf[2048];
	fx f;

	(void)state;
	fx_start(&f, &o);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
		    cases[i].target);
		f.query = (const char *)&f;
		fx_exchange(&f, 0, req, buf, sizeof buf);
		assert_true(strncmp(buf, "HTTP/1.1 200 OK\r\n", 17) == 0);
		assert_int_equal(f.query != NULL, cases[i].query);
		assert_string_equal(f.qkey, cases[i].key);
	}
	fx_stop(&f);
}

static void
test_arguments(void **state)
{
	const vigil_evconn_opts zero = { .max_conns = 0 };
	const vigil_evconn_opts one = { .max_conns = 1 };
	vigil_evconn_set *set = (vigil_evconn_set *)&set; /* untouched on error */
	vigil_evconn_set *before = set;
	fx f;

	(void)state;
	fx_start(&f, &one);
	assert_int_equal(vigil_evconn_set_new(f.http, NULL, &one, &set), VIGIL_EINVAL);
	assert_ptr_equal(set, before);
	assert_int_equal(vigil_evconn_on_close(f.set, NULL, fx_closed, &f), VIGIL_ENOTFOUND);
	assert_int_equal(vigil_evconn_on_close(f.set, (struct evhttp_connection *)&f, fx_closed,
	    &f), VIGIL_ENOTFOUND);
	assert_int_equal(vigil_evconn_set_new(f.http, f.lev, &zero, &set), VIGIL_EINVAL);
	assert_ptr_equal(set, before);
	assert_int_equal(vigil_evconn_set_new(f.http, f.lev, NULL, &set), VIGIL_EINVAL);
	assert_ptr_equal(set, before);
	fx_stop(&f);
	assert_int_equal(vigil_evconn_count(NULL), 0);
	vigil_evconn_set_stop(NULL);
	vigil_evconn_set_free(NULL);
}

/* A port in use, and an address that is not local, fail with the system's
 * reason in errbuf; the listener bound first keeps serving. (A name that
 * does not resolve is left to the resolver: no test here asks DNS.) */
static void
test_bind_names_its_cause(void **state)
{
	vigil_evconn_opts o = { .max_conns = 4 };
	struct evhttp *h2;
	char err[160];
	fx f;

	(void)state;
	fx_start(&f, &o);
	h2 = evhttp_new(f.base);
	assert_non_null(h2);
	err[0] = '\0';
	assert_null(vigil_evconn_bind(f.base, h2, "127.0.0.1", f.port, err, sizeof err));
	assert_string_equal(err, strerror(EADDRINUSE));
	err[0] = '\0';
	assert_null(vigil_evconn_bind(f.base, h2, "192.0.2.1", f.port, err, sizeof err));
	assert_string_equal(err, strerror(EADDRNOTAVAIL));
	evhttp_free(h2);
	fx_connect(&f, 0, true);
	PUMP_UNTIL(&f, f.served == 1);
	fx_stop(&f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cap_holds_the_last_client_until_one_closes),
		cmocka_unit_test(test_external_pause_combines_with_the_cap),
		cmocka_unit_test(test_idle_deadline_closes_a_silent_connection),
		cmocka_unit_test(test_per_address_cap),
		cmocka_unit_test(test_on_close_hook_runs_once_when_the_client_leaves),
		cmocka_unit_test(test_bind_names_its_cause),
		cmocka_unit_test(test_arguments),
		cmocka_unit_test(test_send_json),
		cmocka_unit_test(test_query_names_its_first_parameter),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
