/* SPDX-License-Identifier: MIT */
/*
 * common/evconn.h - a cap on an evhttp server's connections (DESIGN.md
 * contract 8: every listener is capped), for vigild's admin endpoint and
 * vigil-console. libevent 2.1's evhttp has no cap of its own, so a
 * connection set counts each connection from the bufferevent evhttp asks
 * for (evhttp_set_bevcb) to the evhttp_connection's close callback; at
 * max_conns it stops the evconnlistener, and the next clients wait in the
 * kernel's accept queue until one closes. Each bufferevent stops reading at
 * max_input bytes of unparsed input (evhttp keeps reading while it writes a
 * reply: a client that pipelines and never reads would grow us without
 * end). Optionally a connection that has not sent a complete request within
 * idle_s of opening or of its previous request is closed, whether it is
 * idle or slow (one that drips a header line every few seconds would hold
 * its slot forever: evhttp's own timeout restarts at every byte), and at
 * most max_per_addr connections come from one IP address (a connection
 * over it is closed before evhttp reads a byte of it): one client cannot
 * hold every slot.
 *
 * libevent 2.1 answers some requests itself, before any callback of ours
 * sees them, with evhttp_send_error's HTML page and Connection: close; 2.1
 * has no error callback (evhttp_set_errorcb is 2.2) and no hook on a server
 * request before its body (evhttp_set_newreqcb is 2.2). Its pages (http.c
 * of 2.1.12): 400 for a request line or header that does not parse (a
 * first line that is not "METHOD URI HTTP/1.x", a header line without a
 * colon, a Content-Length that is no number) or headers over
 * evhttp_set_max_headers_size; 413 for a body over the cap (a
 * Content-Length over it as soon as the headers are read, a chunked body as
 * soon as its chunks pass it: memory stays bounded) or chunks or a trailer
 * that do not parse; 417 for an Expect other than 100-continue on a request
 * with a body; 501 for a method outside evhttp_set_allowed_methods, or one
 * libevent does not know ("FOO"); (a 404 too, but only without a generic
 * callback). With page_body the set replaces each with a JSON reply of the
 * same status: it watches each connection's output buffer, and a response
 * that starts "HTTP/1.x STATUS " with one of those statuses is checked in a
 * zero-timeout event, which runs before the socket is written; if it is
 * exactly libevent's page (Content-Type text/html, Connection: close, the
 * page's HTML, complete, nothing of it sent) it is replaced by the
 * program's body (page_body) with Content-Type application/json,
 * page_headers, Connection: close as libevent's had and a Content-Length,
 * and the connection is closed once it is sent (libevent closes it itself
 * after every page but a CONNECT's, whose connection it would keep for
 * another request). A response that
 * does not match is left alone (at worst libevent's page, never a broken
 * one). The error codes (docs/tools.md): 400 MALFORMED, 413 TOO_BIG, 417
 * INVALID, 501 METHOD_NOT_ALLOWED.
 *
 * A separate library (vigil_evconn_dep; vigil_evconn_ssl_dep adds HTTPS),
 * so that common's core does not depend on libevent and a program that
 * serves plain HTTP does not link libevent_openssl.
 *
 * Everything runs on the thread of the evhttp's event_base; nothing here
 * locks. Library code: nothing is logged, except that a program's main may
 * route libevent's own messages (vigil_evconn_log_to_stderr).
 *
 *     vigil_evconn_opts o = { .max_conns = 64, .max_input = 64 << 10 };
 *     evhttp_set_gencb(http, dispatch, app);        // dispatch calls
 *     bound = vigil_evconn_bind(base, http, ...);   // vigil_evconn_seen
 *     rv = vigil_evconn_set_new(http, evhttp_bound_socket_get_listener(bound),
 *         &o, &set);
 *     ...
 *     vigil_evconn_set_stop(set);
 *     evhttp_free(http);
 *     vigil_evconn_set_free(set);
 */
#ifndef VIGIL_EVCONN_H
#define VIGIL_EVCONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "vigil.h"

#ifdef __cplusplus
extern "C" {
#endif

struct bufferevent;
struct event_base;
struct evhttp_bound_socket;
struct evconnlistener;
struct evhttp;
struct evhttp_connection;
struct evhttp_request;
struct evbuffer;

typedef struct vigil_evconn_set vigil_evconn_set;

/* Makes the bufferevent of a new connection (fd -1: evhttp sets it), or
 * returns NULL to refuse the connection. */
typedef struct bufferevent *vigil_evconn_bev_fn(struct event_base *base, void *bev_arg);

typedef struct vigil_evconn_opts {
	uint32_t max_conns; /* >= 1: at this many open connections the listener
	                     * stops accepting, until one closes */
	size_t   max_input; /* read high-watermark of each bufferevent (bytes of
	                     * unparsed input); 0: none */
	uint32_t idle_s;    /* seconds to complete a request, from opening or
	                     * from the previous request; 0: no deadline */
	uint32_t max_per_addr; /* open connections from one IPv4 or IPv6
	                        * address, at most; 0: no cap (local sockets
	                        * are never capped) */
	size_t   max_body;  /* > 0: the set calls evhttp_set_max_body_size(http,
	                     * max_body) (the caller must not set another); 0:
	                     * the caller's cap or evhttp's, untouched */
	/* The body of the JSON reply that replaces libevent's page of status
	 * (400, 413, 417 or 501): a new reference to the program's error
	 * object, with code (docs/tools.md) and message or a better one of its
	 * own, which the set writes as one line; NULL: no memory. Called with
	 * arg by vigil_evconn_set_new only, once per status. NULL: libevent's
	 * HTML pages are left as they are. */
	json_t *(*page_body)(void *arg, int status, const char *code, const char *message);
	const char *page_headers; /* header lines added to those replies, each
	                           * ending "\r\n" (copied); may be NULL */

	/* Optional callbacks (NULL: none), each called with arg, on the event
	 * loop's thread. None may free the set. */
	void (*on_count)(void *arg, uint32_t n);  /* the count changed to n */
	void (*on_cap)(void *arg);                /* the listener stopped at max_conns */
	void (*on_idle)(void *arg);               /* a connection passed idle_s and is
	                                           * about to be closed */
	void (*on_addr_cap)(void *arg, const char *addr); /* a connection over
	                                           * max_per_addr from addr (numeric) is
	                                           * about to be closed */
	void  *arg;

	/* The bufferevent of each connection; NULL: a plain socket one
	 * (bufferevent_socket_new). For HTTPS: vigil_evconn_ssl_bev, bev_arg an
	 * SSL_CTX (vigil_evconn_ssl_dep). The set sets max_input on it. */
	vigil_evconn_bev_fn *bev_new;
	void                *bev_arg;
} vigil_evconn_opts;

/*
 * A connection set for http, whose one listener is lev (from
 * evhttp_bound_socket_get_listener). Takes evhttp's bufferevent callback
 * (evhttp_set_bevcb): the caller must not set its own. The set does not own
 * http or lev. opts is copied.
 *
 * VIGIL_OK: *ret_set set, to free with vigil_evconn_set_free() after
 * evhttp_free(http). VIGIL_EINVAL: a NULL argument or max_conns 0.
 * VIGIL_ENOMEM (page_body returning false included). On error *ret_set is
 * untouched and http is unchanged.
 */
vigil_err vigil_evconn_set_new(struct evhttp *http, struct evconnlistener *lev,
    const vigil_evconn_opts *opts, vigil_evconn_set **ret_set);

/* Call before evhttp_free(http) (which frees the listener): from then on the
 * set never touches the listener, and still counts the connections that
 * evhttp_free closes down (with their on-close hooks). NULL is a no-op. */
void vigil_evconn_set_stop(vigil_evconn_set *set);

/* After evhttp_free(http): frees the set and the connections evhttp had not
 * yet handed over (accepted in this loop iteration), without calling their
 * hooks. NULL is a no-op. */
void vigil_evconn_set_free(vigil_evconn_set *set);

/* Open connections now (0 for a NULL set). */
uint32_t vigil_evconn_count(const vigil_evconn_set *set);

/* A request arrived: the idle deadline of its connection starts again (from
 * evhttp's request callback; a no-op without idle_s or if the connection is
 * not the set's). */
void vigil_evconn_seen(vigil_evconn_set *set, struct evhttp_request *req);

/* The request req is answered later (work that outlives this callback): its
 * connection's deadline stops until vigil_evconn_seen is called for it again,
 * which the caller does when it sends the answer. A no-op where
 * vigil_evconn_seen is. */
void vigil_evconn_hold(vigil_evconn_set *set, struct evhttp_request *req);

/*
 * Calls fn(arg) when evcon closes, before the set forgets it (replacing the
 * hook set before; NULL fn: none). For a request that outlives its
 * connection (an answer computed later must not be sent to a freed one).
 * VIGIL_OK, or VIGIL_ENOTFOUND if evcon is NULL or not one of the set's
 * (a connection counted but not yet handed over by evhttp, or not counted
 * for want of memory: it has no hook).
 */
vigil_err vigil_evconn_on_close(vigil_evconn_set *set, struct evhttp_connection *evcon,
    void (*fn)(void *arg), void *arg);

/*
 * Pauses (true) or resumes (false) accepting for the caller's own reason,
 * typically accept(2) failing with EMFILE (the caller's evconnlistener error
 * callback pauses, a timer resumes). Independent of the pause at max_conns:
 * the listener accepts only when neither holds.
 */
void vigil_evconn_pause(vigil_evconn_set *set, bool paused);

/*
 * Binds http to host:port (host as vigil_cli_hostport leaves it: a name, an
 * IPv4 address or an IPv6 one without brackets; its first address, as
 * evhttp_bind_socket_with_handle takes), listening with a backlog of 128 on
 * a non-blocking, close-on-exec, address-reusing socket. NULL on failure,
 * with the cause in errbuf and nothing printed: "NAME: <resolver error>"
 * when host does not resolve, else the system's reason ("Address already in
 * use", "Cannot assign requested address"). The caller names the address.
 */
struct evhttp_bound_socket *vigil_evconn_bind(struct event_base *base, struct evhttp *http,
    const char *host, uint16_t port, char *errbuf, size_t errlen);

/*
 * evhttp_send_reply(req, code, reason, body), but a HEAD answer carries its
 * GET's headers and Content-Length and never the body (drained): libevent
 * 2.1 writes whatever it is given, and a keep-alive client (a load
 * balancer's HEAD probe) would read the body as its next answer. body may
 * be NULL (no body); reason NULL: the status's standard phrase.
 */
void vigil_evconn_send_reply(struct evhttp_request *req, int code, const char *reason,
    struct evbuffer *body);

/*
 * Sends obj (consumed; may be NULL) as one line of JSON with code and
 * reason (NULL: the standard phrase) through vigil_evconn_send_reply,
 * Content-Type application/json. Out of memory (obj NULL, or no memory to
 * write it): 500 with oom_body, a constant JSON text of the program's
 * error shape, or an empty body if even that cannot be held; never
 * libevent's HTML page.
 */
void vigil_evconn_send_json(struct evhttp_request *req, int code, const char *reason,
    json_t *obj, const char *oom_body);

/*
 * The query string of req's URI, or NULL when it has none; *ret_key (len
 * bytes, len > 0) gets its first parameter's name, percent-decoded and cut
 * to fit ("dry_run" for "?dry_run=true&x=1"; "" for "?" or "?=1"): the
 * where of an endpoint's "takes no query string".
 */
const char *vigil_evconn_query(struct evhttp_request *req, char *ret_key, size_t len);

/*
 * Routes libevent's own warnings and errors to standard error as one line
 * each, "PROG: libevent: MESSAGE" in a single write (debug and message
 * severities dropped), instead of libevent's bare "[warn] ..." lines. For a
 * program's main, before its first libevent call; prog must outlive the
 * process's use of libevent (a string literal). Process-wide.
 */
void vigil_evconn_log_to_stderr(const char *prog);

/*
 * A vigil_evconn_bev_fn for HTTPS: a new OpenSSL bufferevent accepting TLS
 * (BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE) on a new SSL of
 * ssl_ctx, an SSL_CTX * (void * here, so that this header needs no OpenSSL
 * header); the bufferevent owns the SSL. NULL if out of
 * memory. Only in vigil_evconn_ssl_dep (libevent_openssl, OpenSSL).
 */
struct bufferevent *vigil_evconn_ssl_bev(struct event_base *base, void *ssl_ctx);

#ifdef __cplusplus
}
#endif

#endif /* VIGIL_EVCONN_H */
