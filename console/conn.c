/* SPDX-License-Identifier: MIT */
/*
 * console/conn.c - a cap on the console's HTTP connections (DESIGN.md
 * contract 8: every listener is capped). libevent 2.1's evhttp has none, so,
 * as vigild's admin endpoint does (server/admin.c, where the technique comes
 * from), each connection is counted from the bufferevent evhttp asks us for
 * (evhttp_set_bevcb) to its close callback, and at --max-connections the
 * listener stops accepting until one closes (the next clients wait in the
 * kernel's accept queue). The bufferevent stops reading at CONN_BUFFER bytes
 * of unparsed input. A back-test hooks its own close callback here, since a
 * connection has one. With --https-cert each connection's bufferevent is an
 * OpenSSL one (libevent_openssl), accepting TLS before evhttp reads a byte.
 */
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/listener.h>
#include <openssl/ssl.h>
#include <stdlib.h>

#include "console.h"

#define CONN_BUFFER (4u << 20) /* unparsed input: a 2 MiB body and its headers */

typedef struct con_conn {
	struct con_conns         *cs;
	struct bufferevent       *bev;    /* referenced until hooked */
	struct evhttp_connection *evcon;  /* NULL until hooked */
	struct event             *hook;
	void                    (*on_close)(void *arg);
	void                     *on_close_arg;
	struct con_conn          *prev, *next;
} con_conn;

struct con_conns {
	struct evconnlistener *lev;
	SSL_CTX               *ssl;  /* HTTPS, or NULL */
	con_conn              *list;
	uint32_t               n, max;
	bool                   paused, stopping;
};

static void
conn_update(struct con_conns *cs)
{
	if (cs->lev == NULL || cs->stopping) /* evhttp_free frees the listener */
		return;
	if (cs->paused)
		evconnlistener_disable(cs->lev);
	else
		evconnlistener_enable(cs->lev);
}

static void
conn_gone(con_conn *c)
{
	struct con_conns *cs = c->cs;

	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		cs->list = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	if (c->bev != NULL)
		bufferevent_decref(c->bev);
	if (c->hook != NULL)
		event_free(c->hook);
	free(c);
	cs->n--;
	if (cs->paused && cs->n < cs->max) {
		cs->paused = false;
		conn_update(cs);
	}
}

static void
conn_closed(struct evhttp_connection *evcon, void *arg)
{
	con_conn *c = arg;

	(void)evcon;
	if (c->on_close != NULL)
		c->on_close(c->on_close_arg);
	conn_gone(c);
}

/* Runs right after evhttp's accept callback, before any I/O: evhttp has
 * made the connection and set it as the bufferevent's callback argument,
 * the one way libevent 2.1 lets us find it. */
static void
conn_hook(evutil_socket_t fd, short what, void *arg)
{
	con_conn *c = arg;
	void *cbarg = NULL;

	(void)fd;
	(void)what;
	bufferevent_getcb(c->bev, NULL, NULL, NULL, &cbarg);
	if (cbarg == NULL ||
	    evhttp_connection_get_bufferevent((struct evhttp_connection *)cbarg) != c->bev) {
		conn_gone(c); /* evhttp freed it already */
		return;
	}
	c->evcon = cbarg;
	bufferevent_decref(c->bev);
	c->bev = NULL;
	evhttp_connection_set_closecb(c->evcon, conn_closed, c);
}

static struct bufferevent *
conn_bev(struct event_base *base, void *arg)
{
	struct con_conns *cs = arg;
	struct bufferevent *bev;
	con_conn *c;

	if (cs->ssl != NULL) {
		SSL *ssl = SSL_new(cs->ssl);

		/* evhttp sets the socket later (bufferevent_setfd); the bufferevent
		 * owns ssl and frees it with the connection */
		bev = ssl != NULL ? bufferevent_openssl_socket_new(base, -1, ssl,
		    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE) : NULL;
		if (bev == NULL && ssl != NULL)
			SSL_free(ssl);
	} else {
		bev = bufferevent_socket_new(base, -1, 0);
	}
	if (bev == NULL)
		return NULL;
	bufferevent_setwatermark(bev, EV_READ, 0, CONN_BUFFER);
	c = calloc(1, sizeof *c);
	if (c == NULL)
		return bev; /* served, not counted */
	c->cs = cs;
	c->hook = event_new(base, -1, 0, conn_hook, c);
	if (c->hook == NULL) {
		free(c);
		return bev;
	}
	bufferevent_incref(bev);
	c->bev = bev;
	c->next = cs->list;
	if (cs->list != NULL)
		cs->list->prev = c;
	cs->list = c;
	cs->n++;
	if (cs->n >= cs->max && !cs->paused) {
		cs->paused = true;
		conn_update(cs);
	}
	event_active(c->hook, 0, 0);
	return bev;
}

vigil_err
con_conns_init(con_app *app, struct evhttp_bound_socket *bound, uint32_t max)
{
	struct con_conns *cs = calloc(1, sizeof *cs);

	if (cs == NULL)
		return VIGIL_ENOMEM;
	cs->lev = evhttp_bound_socket_get_listener(bound);
	cs->ssl = app->ssl;
	cs->max = max;
	app->conns = cs;
	evhttp_set_bevcb(app->http, conn_bev, cs);
	return VIGIL_OK;
}

uint32_t
con_conns_count(const con_app *app)
{
	return app->conns != NULL ? app->conns->n : 0;
}

void
con_conns_on_close(con_app *app, struct evhttp_connection *evcon, void (*fn)(void *arg),
    void *arg)
{
	if (app->conns == NULL || evcon == NULL)
		return;
	for (con_conn *c = app->conns->list; c != NULL; c = c->next) {
		if (c->evcon == evcon) {
			c->on_close = fn;
			c->on_close_arg = arg;
			return;
		}
	}
}

void
con_conns_stopping(con_app *app)
{
	if (app->conns != NULL)
		app->conns->stopping = true;
}

void
con_conns_free(con_app *app)
{
	struct con_conns *cs = app->conns;

	if (cs == NULL)
		return;
	cs->stopping = true;
	while (cs->list != NULL) /* the ones evhttp_free did not close: unhooked */
		conn_gone(cs->list);
	free(cs);
	app->conns = NULL;
}

bool
con_conn_peer_cn(struct evhttp_request *req, char *buf, size_t len)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	struct bufferevent *bev = evcon != NULL ? evhttp_connection_get_bufferevent(evcon) : NULL;
	SSL *ssl = bev != NULL ? bufferevent_openssl_get_ssl(bev) : NULL;
	X509 *cert;
	int n;

	buf[0] = '\0';
	if (ssl == NULL)
		return false;
	/* present and verified: with --https-client-ca the handshake refuses a
	 * certificate that does not verify, so one that is here verified */
	cert = SSL_get1_peer_certificate(ssl);
	if (cert == NULL)
		return false;
	n = SSL_get_verify_result(ssl) == X509_V_OK ? X509_NAME_get_text_by_NID(
	    X509_get_subject_name(cert), NID_commonName, buf, (int)len) : -1;
	X509_free(cert);
	if (n <= 0 || (size_t)n >= len || strlen(buf) != (size_t)n) { /* none, cut or NUL inside */
		buf[0] = '\0';
		return false;
	}
	return true;
}
