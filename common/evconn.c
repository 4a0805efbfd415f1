/* SPDX-License-Identifier: MIT */
/*
 * common/evconn.c - the connection set of evconn.h: each evhttp connection
 * counted from the bufferevent evhttp asks for to its close callback, the
 * listener stopped at the cap, unparsed input capped by a read watermark, an
 * optional whole-request deadline, an optional cap per client address, and
 * libevent's own HTML error pages replaced by the program's JSON ones
 * (evconn.h says which pages, and why that is done on the output buffer).
 * The other trick: libevent 2.1 gives no way to learn
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

/*
 * libevent 2.1's own error pages (http.c, evhttp_send_error before any
 * callback of ours; evconn.h says when each is sent) and the error code and
 * message of the JSON reply that replaces each. The reason phrase is ours
 * (libevent 2.1 says "Request Entity Too Large" for 413).
 */
static const struct evconn_page {
	int         status;
	const char *reason;
	const char *code;    /* docs/tools.md, "JSON errors" */
	const char *message; /* the program may say better (page_body) */
} evconn_pages[] = {
	{ 400, "Bad Request", "MALFORMED",
	  "the request line or a header does not parse, or the headers are too long" },
	{ 413, "Payload Too Large", "TOO_BIG",
	  "the request body is over the size limit, or its chunks do not parse" },
	{ 417, "Expectation Failed", "INVALID",
	  "an Expect header other than \"100-continue\"" },
	{ 501, "Not Implemented", "METHOD_NOT_ALLOWED",
	  "the method is not one this server answers" },
};

/* evhttp_send_error's page: status, reason, reason (libevent 2.1.12). */
#define EVCONN_PAGE "<HTML><HEAD>\n<TITLE>%d %.*s</TITLE>\n</HEAD><BODY>\n<H1>%.*s</H1>\n" \
	"</BODY></HTML>\n"

/* The reply replacing a page: status, reason, the extra header lines, the
 * body's length, the body. "HTTP/1.1": its last digit is the page's. */
#define EVCONN_REPLY "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n%s" \
	"Connection: close\r\nContent-Length: %zu\r\n\r\n%s\n"

#define EVCONN_PAGE_MAX 1024 /* a page's bytes, headers included, at most */

#define EVCONN_NPAGES ((int)(sizeof evconn_pages / sizeof evconn_pages[0]))

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
	struct evbuffer          *out;      /* the bufferevent's output (pages) */
	struct evbuffer_cb_entry *outcb;    /* evconn_out_cb on out; NULL: none */
	struct event             *check;    /* evconn_page_check; NULL: none */
	bool                      replaced; /* a page replaced: close once sent */
	struct evconn_conn       *prev, *next;
	UT_hash_handle            hh;       /* in set->by_evcon, keyed by evcon */
} evconn_conn;

struct vigil_evconn_set {
	vigil_evconn_opts      o;
	struct evconnlistener *lev;
	evconn_conn           *list;       /* every open connection */
	evconn_conn           *by_evcon;   /* the hooked ones, by evhttp connection */
	evconn_addr           *addrs;      /* by address (max_per_addr) */
	struct {
		char  *text;                /* the whole reply (EVCONN_REPLY) replacing
		                             * evconn_pages[i], sent with the page's HTTP
		                             * version; NULL: none (no page_body) */
		size_t len;
	}                      replies[EVCONN_NPAGES];
	uint32_t               n;
	bool                   paused_cap; /* n reached o.max_conns */
	bool                   paused_ext; /* vigil_evconn_pause */
	bool                   stopping;   /* the listener is evhttp_free's */
};

/* The index in evconn_pages of the status of a response starting at s
 * ("HTTP/1.x NNN ", at least 13 bytes), or -1 if it is none of them. */
static int
evconn_page_find(const char *s)
{
	int status;

	if (memcmp(s, "HTTP/1.", 7) != 0 || s[8] != ' ' || s[12] != ' ')
		return -1;
	for (int k = 9; k < 12; k++)
		if (s[k] < '0' || s[k] > '9')
			return -1;
	status = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
	for (int i = 0; i < EVCONN_NPAGES; i++)
		if (evconn_pages[i].status == status)
			return i;
	return -1;
}

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
 * libevent 2.1's socket bufferevent freezes the start of its output buffer
 * after each write, until the next (it thaws it only while it writes):
 * evbuffer_copyout and evbuffer_drain fail there once a connection has had
 * an answer. Between two writes, on the loop's thread, it may be thawed for
 * a moment: returns whether out was frozen (then thawed), to freeze again
 * with evbuffer_freeze(out, 1). An OpenSSL bufferevent's is never frozen.
 */
static bool
evconn_out_thaw(struct evbuffer *out)
{
	char b;

	if (evbuffer_get_length(out) == 0 || evbuffer_copyout(out, &b, 1) == 1)
		return false;
	evbuffer_unfreeze(out, 1);
	return true;
}

/*
 * The start of a response on c's connection (evhttp writes one at a time,
 * into an empty buffer): one whose first line has the status of one of
 * libevent's pages is checked once evhttp has written all of it, in
 * c->check, before the loop polls the socket for writing.
 */
static void
evconn_out_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
	evconn_conn *c = arg;
	char head[13];
	bool frozen;
	ev_ssize_t n;

	if (c->replaced) {
		if (info->n_deleted > 0 && evbuffer_get_length(buf) == 0)
			event_active(c->check, 0, 0); /* sent: close (evconn_page_check) */
		return;
	}
	if (info->orig_size != 0 || info->n_added < sizeof head)
		return;
	frozen = evconn_out_thaw(buf);
	n = evbuffer_copyout(buf, head, sizeof head);
	if (frozen)
		evbuffer_freeze(buf, 1);
	if (n == (ev_ssize_t)sizeof head && evconn_page_find(head) >= 0)
		event_active(c->check, 0, 0);
}

/*
 * If c's output buffer holds exactly one of libevent's pages and nothing
 * else (evhttp_send_error: "HTTP/1.x STATUS REASON", Content-Type
 * text/html, Connection: close, a Content-Length if any that counts the
 * body, the body EVCONN_PAGE of that status and reason), replaces it with
 * the set's reply for the status, keeping the HTTP version. Anything else
 * (part of a page, a program's own reply) is left as it is.
 *
 * Once a replaced reply is sent, the connection is closed, as its
 * Connection: close says: libevent 2.1 closes it itself after every page
 * but a CONNECT's (evhttp_is_request_connection_close), whose connection
 * it keeps for the next request. For the others it closes first, in its
 * write callback, which runs before this event and frees it.
 */
static void
evconn_page_check(evutil_socket_t fd, short what, void *arg)
{
	evconn_conn *c = arg;
	vigil_evconn_set *set = c->set;
	char resp[EVCONN_PAGE_MAX + 1], page[EVCONN_PAGE_MAX], *end, *eol, *cl, *e;
	size_t hlen, len = evbuffer_get_length(c->out);
	bool frozen;
	int i, rlen, plen;

	(void)fd;
	(void)what;
	if (c->replaced) {
		if (len == 0 && c->evcon != NULL)
			evhttp_connection_free(c->evcon); /* runs evconn_conn_closed: c is gone */
		return;
	}
	frozen = evconn_out_thaw(c->out);
	if (len < 13 || len > EVCONN_PAGE_MAX ||
	    evbuffer_copyout(c->out, resp, len) != (ev_ssize_t)len)
		goto out;
	resp[len] = '\0';
	i = evconn_page_find(resp);
	end = strstr(resp, "\r\n\r\n");
	if (i < 0 || set->replies[i].text == NULL || end == NULL)
		goto out;
	hlen = (size_t)(end - resp) + 4;
	end[2] = '\0'; /* the headers, each line ending "\r\n" */
	if (strstr(resp, "\r\nContent-Type: text/html\r\n") == NULL ||
	    strstr(resp, "\r\nConnection: close\r\n") == NULL)
		goto out;
	eol = strstr(resp, "\r\n");
	rlen = (int)(eol - (resp + 13));
	plen = snprintf(page, sizeof page, EVCONN_PAGE, evconn_pages[i].status, rlen, resp + 13,
	    rlen, resp + 13);
	if (plen < 0 || (size_t)plen >= sizeof page || len != hlen + (size_t)plen ||
	    memcmp(resp + hlen, page, (size_t)plen) != 0)
		goto out; /* not all of it there, more, or another body */
	cl = strstr(resp, "\r\nContent-Length: ");
	if (cl != NULL && (strtoull(cl + 18, &e, 10) != (unsigned long long)plen ||
	    e == cl + 18 || *e != '\r'))
		goto out;
	if (evbuffer_drain(c->out, len) != 0)
		goto out;
	evbuffer_add(c->out, resp, 8); /* "HTTP/1.x" */
	evbuffer_add(c->out, set->replies[i].text + 8, set->replies[i].len - 8);
	c->replaced = true;
out:
	if (frozen)
		evbuffer_freeze(c->out, 1);
}

/* evhttp's bufferevent for a new connection: capped input, counted. A
 * connection we cannot count (out of memory) is served uncounted rather
 * than refused, and with libevent's own pages. */
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
	if (set->o.page_body != NULL) {
		c->out = bufferevent_get_output(bev);
		c->check = event_new(base, -1, 0, evconn_page_check, c);
		if (c->check != NULL)
			c->outcb = evbuffer_add_cb(c->out, evconn_out_cb, c);
	}
	if (c->hook == NULL || (set->o.idle_s > 0 && c->deadline == NULL) ||
	    (set->o.page_body != NULL && c->outcb == NULL)) {
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

/* The set's reply for each of libevent's pages, its body page_body's
 * object as one line: VIGIL_OK, or VIGIL_ENOMEM. */
static vigil_err
evconn_replies_make(vigil_evconn_set *set, const char *hdrs)
{
	for (int i = 0; i < EVCONN_NPAGES; i++) {
		const struct evconn_page *p = &evconn_pages[i];
		json_t *o = set->o.page_body(set->o.arg, p->status, p->code, p->message);
		char *body = o != NULL ? json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
		size_t blen = body != NULL ? strlen(body) + 1 : 0; /* and "\n" */
		int n = body != NULL ? snprintf(NULL, 0, EVCONN_REPLY, p->status, p->reason, hdrs,
		    blen, body) : -1;

		json_decref(o);
		set->replies[i].text = n > 0 ? malloc((size_t)n + 1) : NULL;
		if (set->replies[i].text != NULL) {
			snprintf(set->replies[i].text, (size_t)n + 1, EVCONN_REPLY, p->status,
			    p->reason, hdrs, blen, body);
			set->replies[i].len = (size_t)n;
		}
		free(body);
		if (set->replies[i].text == NULL)
			return VIGIL_ENOMEM;
	}
	return VIGIL_OK;
}

static void
evconn_replies_free(vigil_evconn_set *set)
{
	for (int i = 0; i < EVCONN_NPAGES; i++)
		free(set->replies[i].text);
}

vigil_err
vigil_evconn_set_new(struct evhttp *http, struct evconnlistener *lev,
    const vigil_evconn_opts *opts, vigil_evconn_set **ret_set)
{
	vigil_evconn_set *set;

	if (http == NULL || lev == NULL || opts == NULL || ret_set == NULL ||
	    opts->max_conns == 0)
		return VIGIL_EINVAL;
	set = calloc(1, sizeof *set);
	if (set == NULL)
		return VIGIL_ENOMEM;
	set->o = *opts;
	set->o.page_headers = NULL;
	set->lev = lev;
	if (opts->page_body != NULL &&
	    evconn_replies_make(set, opts->page_headers != NULL ? opts->page_headers : "") !=
	    VIGIL_OK) {
		evconn_replies_free(set);
		free(set);
		return VIGIL_ENOMEM;
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
	evconn_replies_free(set);
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
vigil_evconn_send_json(struct evhttp_request *req, int code, const char *reason, json_t *obj,
    const char *oom_body)
{
	struct evbuffer *buf = evbuffer_new();
	char *text = obj != NULL ? json_dumps(obj, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;

	json_decref(obj);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
	    "application/json");
	if (buf != NULL && text != NULL && evbuffer_add_printf(buf, "%s\n", text) > 0) {
		vigil_evconn_send_reply(req, code, reason, buf);
	} else {
		if (buf != NULL)
			evbuffer_drain(buf, evbuffer_get_length(buf));
		if (buf != NULL && evbuffer_add_reference(buf, oom_body, strlen(oom_body), NULL,
		    NULL) != 0) {
			evbuffer_free(buf);
			buf = NULL;
		}
		vigil_evconn_send_reply(req, 500, "Internal Server Error", buf);
	}
	free(text);
	if (buf != NULL)
		evbuffer_free(buf);
}

const char *
vigil_evconn_query(struct evhttp_request *req, char *ret_key, size_t len)
{
	const char *q = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
	size_t n = q != NULL ? strcspn(q, "=&;") : 0;
	char raw[128], *key;

	ret_key[0] = '\0';
	if (q == NULL)
		return NULL;
	snprintf(raw, sizeof raw, "%.*s", (int)(n < sizeof raw ? n : sizeof raw - 1), q);
	key = evhttp_uridecode(raw, 1, NULL);
	snprintf(ret_key, len, "%s", key != NULL ? key : raw);
	free(key);
	return q;
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
