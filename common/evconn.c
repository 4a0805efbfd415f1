/* SPDX-License-Identifier: MIT */
/*
 * common/evconn.c - the connection set of evconn.h: each evhttp connection
 * counted from the bufferevent evhttp asks for to its close callback, the
 * listener stopped at the cap, unparsed input capped by a read watermark, an
 * optional whole-request deadline, an optional cap per client address, and
 * libevent's HTML 413 page replaced by the program's JSON one (evconn.h
 * says why that is done on the output buffer). The other trick: libevent
 * 2.1 gives no way to learn
 * which evhttp_connection a bufferevent becomes, except that evhttp sets the
 * connection as the bufferevent's callback argument right after our
 * callback returns; a zero-timeout event, activated in our callback, runs
 * before any I/O on the connection and reads it there (bufferevent_getcb).
 */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "evconn.h"
#include "hashtab.h"

/* Connections open from one IP address (max_per_addr). */
typedef struct evconn_addr {
	struct {
		uint8_t family; /* AF_INET, AF_INET6 */
		uint8_t ip[16];
	} key;
	uint32_t       n;
	UT_hash_handle hh;
} evconn_addr;

/* One open connection, from evhttp's bufferevent callback to its close. */
typedef struct evconn_conn {
	vigil_evconn_set         *set;
	struct bufferevent       *bev;      /* referenced until hooked */
	struct evhttp_connection *evcon;    /* NULL until hooked */
	struct event             *hook;     /* finds evcon once evhttp has made it */
	struct event             *deadline; /* idle_s without a request; NULL: none */
	void                    (*on_close)(void *arg);
	void                     *on_close_arg;
	evconn_addr              *addr;     /* its client's count; NULL: not capped */
	struct evbuffer          *out;      /* the bufferevent's output (too_big) */
	struct evbuffer_cb_entry *outcb;    /* evconn_out_cb on out; NULL: none */
	struct event             *check;    /* evconn_too_big_check; NULL: none */
	struct evconn_conn       *prev, *next;
	UT_hash_handle            hh;       /* in set->by_evcon, keyed by evcon */
} evconn_conn;

struct vigil_evconn_set {
	vigil_evconn_opts      o;
	struct evconnlistener *lev;
	evconn_conn           *list;       /* every open connection */
	evconn_conn           *by_evcon;   /* the hooked ones, by evhttp connection */
	evconn_addr           *addrs;      /* by address (max_per_addr) */
	char                  *too_big;    /* the whole 413 reply (EVCONN_413), sent
	                                    * with the request's HTTP version; NULL: none */
	size_t                 too_big_len;
	uint32_t               n;
	bool                   paused_cap; /* n reached o.max_conns */
	bool                   paused_ext; /* vigil_evconn_pause */
	bool                   stopping;   /* the listener is evhttp_free's */
};

/* The 413 of vigil_evconn_opts.too_big_body: the extra header lines, the
 * body's length, the body. "HTTP/1.1": its last digit is the request's. */
#define EVCONN_413 "HTTP/1.1 413 Payload Too Large\r\nContent-Type: application/json\r\n%s" \
	"Connection: close\r\nContent-Length: %zu\r\n\r\n%s"

static void
evconn_accept_update(vigil_evconn_set *set)
{
	if (set->stopping)
		return;
	if (set->paused_cap || set->paused_ext)
		evconnlistener_disable(set->lev);
	else
		evconnlistener_enable(set->lev);
}

static void
evconn_count(vigil_evconn_set *set)
{
	if (set->o.on_count != NULL)
		set->o.on_count(set->o.arg, set->n);
}

static void
evconn_conn_gone(evconn_conn *c)
{
	vigil_evconn_set *set = c->set;

	if (c->evcon != NULL)
		HASH_DELETE(hh, set->by_evcon, c);
	if (c->addr != NULL && --c->addr->n == 0) {
		HASH_DELETE(hh, set->addrs, c->addr);
		free(c->addr);
	}
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		set->list = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	if (c->outcb != NULL)
		evbuffer_remove_cb_entry(c->out, c->outcb);
	if (c->check != NULL)
		event_free(c->check);
	if (c->bev != NULL)
		bufferevent_decref(c->bev);
	if (c->hook != NULL)
		event_free(c->hook);
	if (c->deadline != NULL)
		event_free(c->deadline);
	free(c);
	set->n--;
	evconn_count(set);
	if (set->paused_cap && set->n < set->o.max_conns) {
		set->paused_cap = false;
		evconn_accept_update(set);
	}
}

static void
evconn_conn_closed(struct evhttp_connection *evcon, void *arg)
{
	evconn_conn *c = arg;

	(void)evcon;
	if (c->on_close != NULL)
		c->on_close(c->on_close_arg);
	evconn_conn_gone(c);
}

static void
evconn_conn_deadline(evutil_socket_t fd, short what, void *arg)
{
	evconn_conn *c = arg;
	vigil_evconn_set *set = c->set;

	(void)fd;
	(void)what;
	if (set->o.on_idle != NULL)
		set->o.on_idle(set->o.arg);
	evhttp_connection_free(c->evcon); /* runs evconn_conn_closed: c is gone */
}

/*
 * Counts c against its client's address. False if that address already has
 * max_per_addr connections open (c is then not counted against it). An
 * address we cannot read, a local socket, or no memory: not capped.
 */
static bool
evconn_addr_take(evconn_conn *c)
{
	vigil_evconn_set *set = c->set;
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	evconn_addr k, *a = NULL;
	evutil_socket_t fd = bufferevent_getfd(evhttp_connection_get_bufferevent(c->evcon));

	if (set->o.max_per_addr == 0 || fd < 0 ||
	    getpeername(fd, (struct sockaddr *)&ss, &len) != 0)
		return true;
	memset(&k, 0, sizeof k);
	if (ss.ss_family == AF_INET) {
		k.key.family = AF_INET;
		memcpy(k.key.ip, &((struct sockaddr_in *)&ss)->sin_addr, 4);
	} else if (ss.ss_family == AF_INET6) {
		k.key.family = AF_INET6;
		memcpy(k.key.ip, &((struct sockaddr_in6 *)&ss)->sin6_addr, 16);
	} else {
		return true;
	}
	HASH_FIND(hh, set->addrs, &k.key, sizeof k.key, a);
	if (a != NULL && a->n >= set->o.max_per_addr)
		return false;
	if (a == NULL) {
		a = calloc(1, sizeof *a);
		if (a == NULL)
			return true;
		a->key = k.key;
		HASH_ADD(hh, set->addrs, key, sizeof a->key, a);
		if (!VIGIL_HASH_ADDED(a)) {
			free(a);
			return true; /* not counted, as when the calloc fails */
		}
	}
	a->n++;
	c->addr = a;
	return true;
}

/*
 * Runs right after evhttp's accept callback, before any I/O on the
 * connection: evhttp has made the evhttp_connection and set it as the
 * bufferevent's callback argument. If evhttp freed it already (out of
 * memory), the callbacks were cleared: nothing to hook.
 */
static void
evconn_conn_hook(evutil_socket_t fd, short what, void *arg)
{
	evconn_conn *c = arg;
	vigil_evconn_set *set = c->set;
	struct timeval idle = { (time_t)set->o.idle_s, 0 };
	void *cbarg = NULL;

	(void)fd;
	(void)what;
	bufferevent_getcb(c->bev, NULL, NULL, NULL, &cbarg);
	if (cbarg == NULL ||
	    evhttp_connection_get_bufferevent((struct evhttp_connection *)cbarg) != c->bev) {
		evconn_conn_gone(c);
		return;
	}
	c->evcon = cbarg;
	HASH_ADD_PTR(set->by_evcon, evcon, c);
	if (!VIGIL_HASH_ADDED(c)) { /* no memory to track it: closed */
		c->evcon = NULL;
		evconn_conn_gone(c);
		evhttp_connection_free(cbarg);
		return;
	}
	bufferevent_decref(c->bev);
	c->bev = NULL;
	evhttp_connection_set_closecb(c->evcon, evconn_conn_closed, c);
	if (!evconn_addr_take(c)) {
		char *host = NULL;
		ev_uint16_t port = 0;

		evhttp_connection_get_peer(c->evcon, &host, &port);
		if (set->o.on_addr_cap != NULL)
			set->o.on_addr_cap(set->o.arg, host != NULL ? host : "?");
		evhttp_connection_free(c->evcon); /* runs evconn_conn_closed: c is gone */
		return;
	}
	if (c->deadline != NULL)
		event_add(c->deadline, &idle);
}

/*
 * The start of a response on c's connection (evhttp writes one at a time,
 * into an empty buffer): one whose first line says 413 is checked once
 * evhttp has written all of it, in c->check, before the loop polls the
 * socket for writing.
 */
static void
evconn_out_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
	evconn_conn *c = arg;
	char head[13];

	if (info->orig_size != 0 || info->n_added < sizeof head ||
	    evbuffer_copyout(buf, head, sizeof head) != (ev_ssize_t)sizeof head)
		return;
	if (memcmp(head, "HTTP/1.", 7) == 0 && memcmp(head + 8, " 413 ", 5) == 0)
		event_active(c->check, 0, 0);
}

/*
 * If c's output buffer holds exactly libevent's 413 page (evhttp_send_error:
 * "HTTP/1.x 413 ...", Content-Type text/html, Content-Length bytes of HTML,
 * Connection: close) and nothing else, replaces it with the set's reply,
 * keeping the HTTP version. Anything else is left as it is.
 */
static void
evconn_too_big_check(evutil_socket_t fd, short what, void *arg)
{
	evconn_conn *c = arg;
	vigil_evconn_set *set = c->set;
	struct evbuffer_ptr end;
	char head[1024], *cl, *e;
	size_t hlen, len = evbuffer_get_length(c->out);
	unsigned long long blen;

	(void)fd;
	(void)what;
	end = evbuffer_search(c->out, "\r\n\r\n", 4, NULL);
	if (end.pos < 0 || (size_t)end.pos + 4 >= sizeof head)
		return;
	hlen = (size_t)end.pos + 4;
	if (evbuffer_copyout(c->out, head, hlen) != (ev_ssize_t)hlen)
		return;
	head[hlen] = '\0';
	if (memcmp(head, "HTTP/1.", 7) != 0 || memcmp(head + 8, " 413 ", 5) != 0 ||
	    strstr(head, "\r\nContent-Type: text/html\r\n") == NULL ||
	    strstr(head, "\r\nConnection: close\r\n") == NULL)
		return;
	cl = strstr(head, "\r\nContent-Length: ");
	if (cl == NULL)
		return;
	blen = strtoull(cl + 18, &e, 10);
	if (e == cl + 18 || *e != '\r' || len != hlen + blen)
		return; /* not all of it there, or more */
	if (evbuffer_drain(c->out, len) != 0)
		return;
	evbuffer_add(c->out, head, 8); /* "HTTP/1.x" */
	evbuffer_add(c->out, set->too_big + 8, set->too_big_len - 8);
}

/* evhttp's bufferevent for a new connection: capped input, counted. A
 * connection we cannot count (out of memory) is served uncounted rather
 * than refused, and without the JSON 413. */
static struct bufferevent *
evconn_bev(struct event_base *base, void *arg)
{
	vigil_evconn_set *set = arg;
	struct bufferevent *bev;
	evconn_conn *c;

	if (set->o.bev_new != NULL)
		bev = set->o.bev_new(base, set->o.bev_arg);
	else
		bev = bufferevent_socket_new(base, -1, 0);
	if (bev == NULL)
		return NULL;
	if (set->o.max_input > 0)
		bufferevent_setwatermark(bev, EV_READ, 0, set->o.max_input);
	c = calloc(1, sizeof *c);
	if (c == NULL)
		return bev;
	c->set = set;
	c->hook = event_new(base, -1, 0, evconn_conn_hook, c);
	if (set->o.idle_s > 0)
		c->deadline = evtimer_new(base, evconn_conn_deadline, c);
	if (set->too_big != NULL) {
		c->out = bufferevent_get_output(bev);
		c->check = event_new(base, -1, 0, evconn_too_big_check, c);
		if (c->check != NULL)
			c->outcb = evbuffer_add_cb(c->out, evconn_out_cb, c);
	}
	if (c->hook == NULL || (set->o.idle_s > 0 && c->deadline == NULL) ||
	    (set->too_big != NULL && c->outcb == NULL)) {
		if (c->outcb != NULL)
			evbuffer_remove_cb_entry(c->out, c->outcb);
		if (c->hook != NULL)
			event_free(c->hook);
		if (c->deadline != NULL)
			event_free(c->deadline);
		if (c->check != NULL)
			event_free(c->check);
		free(c);
		return bev;
	}
	bufferevent_incref(bev);
	c->bev = bev;
	c->next = set->list;
	if (set->list != NULL)
		set->list->prev = c;
	set->list = c;
	set->n++;
	evconn_count(set);
	if (set->n >= set->o.max_conns && !set->paused_cap) {
		set->paused_cap = true;
		if (set->o.on_cap != NULL)
			set->o.on_cap(set->o.arg);
		evconn_accept_update(set);
	}
	event_active(c->hook, 0, 0);
	return bev;
}

vigil_err
vigil_evconn_set_new(struct evhttp *http, struct evconnlistener *lev,
    const vigil_evconn_opts *opts, vigil_evconn_set **ret_set)
{
	vigil_evconn_set *set;

	if (http == NULL || lev == NULL || opts == NULL || ret_set == NULL ||
	    opts->max_conns == 0 || (opts->too_big_body != NULL && opts->max_body == 0))
		return VIGIL_EINVAL;
	set = calloc(1, sizeof *set);
	if (set == NULL)
		return VIGIL_ENOMEM;
	set->o = *opts;
	set->o.too_big_body = NULL;
	set->o.too_big_headers = NULL;
	set->lev = lev;
	if (opts->too_big_body != NULL) {
		const char *hdrs = opts->too_big_headers != NULL ? opts->too_big_headers : "";
		size_t blen = strlen(opts->too_big_body);
		int n = snprintf(NULL, 0, EVCONN_413, hdrs, blen, opts->too_big_body);

		set->too_big = n > 0 ? malloc((size_t)n + 1) : NULL;
		if (set->too_big == NULL) {
			free(set);
			return VIGIL_ENOMEM;
		}
		snprintf(set->too_big, (size_t)n + 1, EVCONN_413, hdrs, blen, opts->too_big_body);
		set->too_big_len = (size_t)n;
	}
	if (opts->max_body > 0)
		evhttp_set_max_body_size(http, (ev_ssize_t)opts->max_body);
	evhttp_set_bevcb(http, evconn_bev, set);
	*ret_set = set;
	return VIGIL_OK;
}

void
vigil_evconn_set_stop(vigil_evconn_set *set)
{
	if (set == NULL)
		return;
	set->stopping = true;
	set->lev = NULL;
}

void
vigil_evconn_set_free(vigil_evconn_set *set)
{
	if (set == NULL)
		return;
	set->stopping = true;
	set->lev = NULL;
	while (set->list != NULL) /* the ones evhttp_free did not close: unhooked */
		evconn_conn_gone(set->list);
	free(set->too_big);
	free(set);
}

uint32_t
vigil_evconn_count(const vigil_evconn_set *set)
{
	return set != NULL ? set->n : 0;
}

static evconn_conn *
evconn_find(vigil_evconn_set *set, struct evhttp_connection *evcon)
{
	evconn_conn *c = NULL;

	if (set == NULL || evcon == NULL)
		return NULL;
	HASH_FIND_PTR(set->by_evcon, &evcon, c);
	return c;
}

void
vigil_evconn_seen(vigil_evconn_set *set, struct evhttp_request *req)
{
	evconn_conn *c = evconn_find(set, evhttp_request_get_connection(req));
	struct timeval idle;

	if (c == NULL || c->deadline == NULL)
		return;
	idle.tv_sec = (time_t)set->o.idle_s;
	idle.tv_usec = 0;
	event_add(c->deadline, &idle);
}

void
vigil_evconn_hold(vigil_evconn_set *set, struct evhttp_request *req)
{
	evconn_conn *c = evconn_find(set, evhttp_request_get_connection(req));

	if (c != NULL && c->deadline != NULL)
		event_del(c->deadline);
}

vigil_err
vigil_evconn_on_close(vigil_evconn_set *set, struct evhttp_connection *evcon,
    void (*fn)(void *arg), void *arg)
{
	evconn_conn *c = evconn_find(set, evcon);

	if (c == NULL)
		return VIGIL_ENOTFOUND;
	c->on_close = fn;
	c->on_close_arg = arg;
	return VIGIL_OK;
}

void
vigil_evconn_pause(vigil_evconn_set *set, bool paused)
{
	if (set == NULL)
		return;
	set->paused_ext = paused;
	evconn_accept_update(set);
}

struct evhttp_bound_socket *
vigil_evconn_bind(struct event_base *base, struct evhttp *http, const char *host,
    uint16_t port, char *errbuf, size_t errlen)
{
	struct addrinfo hints = { 0 }, *ai = NULL;
	struct evhttp_bound_socket *bound;
	struct evconnlistener *lev;
	char serv[8];
	int rv;

	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	snprintf(serv, sizeof serv, "%u", (unsigned)port);
	rv = getaddrinfo(host, serv, &hints, &ai);
	if (rv != 0) {
		snprintf(errbuf, errlen, "%s: %s", host,
		    rv == EAI_SYSTEM ? strerror(errno) : gai_strerror(rv));
		return NULL;
	}
	errno = 0;
	lev = evconnlistener_new_bind(base, NULL, NULL, LEV_OPT_REUSEABLE |
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 128, ai->ai_addr,
	    (int)ai->ai_addrlen);
	rv = errno;
	freeaddrinfo(ai);
	if (lev == NULL) {
		snprintf(errbuf, errlen, "%s", rv != 0 ? strerror(rv) : "cannot bind");
		return NULL;
	}
	bound = evhttp_bind_listener(http, lev);
	if (bound == NULL) {
		evconnlistener_free(lev);
		snprintf(errbuf, errlen, "out of memory");
	}
	return bound;
}

static const char *evconn_log_prog = "vigil";

static void
evconn_log(int severity, const char *msg)
{
	char buf[512];
	int n;

	if (severity < EVENT_LOG_WARN)
		return;
	n = snprintf(buf, sizeof buf, "%s: libevent: %s\n", evconn_log_prog, msg);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof buf) { /* cut: still one line */
		n = sizeof buf - 1;
		buf[n - 1] = '\n';
	}
	if (write(STDERR_FILENO, buf, (size_t)n) < 0)
		return;
}

void
vigil_evconn_log_to_stderr(const char *prog)
{
	evconn_log_prog = prog;
	event_set_log_callback(evconn_log);
}

void
vigil_evconn_send_reply(struct evhttp_request *req, int code, const char *reason,
    struct evbuffer *body)
{
	char len[24];

	if (body != NULL && evhttp_request_get_command(req) == EVHTTP_REQ_HEAD) {
		snprintf(len, sizeof len, "%zu", evbuffer_get_length(body));
		evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Length", len);
		evbuffer_drain(body, evbuffer_get_length(body));
		body = NULL;
	}
	evhttp_send_reply(req, code, reason, body);
}
