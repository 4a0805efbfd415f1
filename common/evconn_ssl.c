/* SPDX-License-Identifier: MIT */
/*
 * common/evconn_ssl.c - the HTTPS bufferevent of evconn.h, in a library of
 * its own (vigil_evconn_ssl_dep) so that only a program serving HTTPS links
 * libevent_openssl and OpenSSL (vigil-console; vigild does not).
 */
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/ssl.h>

#include "evconn.h"

struct bufferevent *
vigil_evconn_ssl_bev(struct event_base *base, void *ssl_ctx)
{
	SSL *ssl = SSL_new(ssl_ctx);
	struct bufferevent *bev;

	if (ssl == NULL)
		return NULL;
	/* evhttp sets the socket later (bufferevent_setfd); the bufferevent
	 * owns ssl and frees it with the connection */
	bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
	    BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL)
		SSL_free(ssl);
	return bev;
}
