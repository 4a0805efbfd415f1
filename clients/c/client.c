/* SPDX-License-Identifier: MIT */
/*
 * clients/c/client.c - libvigil-client: replicas, routing, the call state
 * machine, retries and failover (vigil_client.h has the contract). The
 * request checks and encoding and the reply decoding are in codec.c; the
 * objects both share, in vc_int.h.
 *
 * One nng REQ socket per replica, dialled in the background so it reconnects
 * by itself; a pipe-notify callback keeps each replica's live connection
 * count, so routing can skip a replica that is down, and calls waiting on a
 * replica whose connection drops are cancelled at once and retried on the
 * next one instead of waiting for their timeout.
 *
 * A call is a pooled object holding one nng_aio, one REQ context per replica
 * (opened on first use) and the encoded request bytes, which are re-sent
 * unchanged on every attempt (the server de-duplicates by txn_id). The same
 * state machine (call_run) drives synchronous calls, which wait on an aio
 * without callback in the caller's thread, and asynchronous calls, whose aio
 * callback runs it on nng's threads.
 *
 * Locking: one client mutex guards the call pool, the per-replica in-flight
 * lists and connection counts, and the closing flag. It is never held while
 * waiting on an aio or running a user callback; nng functions called under it
 * (nng_aio_cancel) never call back into this file synchronously.
 */
#include <errno.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/tls/tls.h>
#include <nng/supplemental/util/platform.h>

/* common/: cli.h header-only (vigil_cli_url_ok, inline); file.c compiled in */
#include "../../common/cli.h"
#include "../../common/file.h"
#include "client_int.h"
#include "ring.h"
#include "vc_int.h"
#include "vigil.pb-c.h"
#include "vigil_client.h"

/* ---- errors and names ---- */

/* Each error's name (vigil_client_errname) and text (vigil_client_strerror). */
static const struct { const char *name, *text; } vc_err[VIGIL_CLIENT_ERR_COUNT_] = {
#define VC_ERR(name, text) [VIGIL_CLIENT_##name] = { #name, text },
#include "client_err.def"
#undef VC_ERR
};

/* client_err.def has a row for each code of the public enum, in its order
 * (the enum, written out in vigil_client_types.h, holds the ABI values). */
enum {
#define VC_ERR(name, text) VC_ERR_ROW_##name,
#include "client_err.def"
#undef VC_ERR
	VC_ERR_ROWS_
};
#define VC_ERR(name, text) \
	_Static_assert((int) VC_ERR_ROW_##name == (int) VIGIL_CLIENT_##name, \
	    "client_err.def: " #name " out of the enum's order");
#include "client_err.def"
#undef VC_ERR
_Static_assert((int) VC_ERR_ROWS_ == (int) VIGIL_CLIENT_ERR_COUNT_,
    "client_err.def: a row per code");

const char *
vigil_client_strerror(vigil_client_err err)
{
	if ((unsigned) err >= VIGIL_CLIENT_ERR_COUNT_)
		return "unknown error";
	return vc_err[err].text;
}

const char *
vigil_client_errname(vigil_client_err err)
{
	if ((unsigned) err >= VIGIL_CLIENT_ERR_COUNT_)
		return "EUNKNOWN";
	return vc_err[err].name;
}

const char *
vigil_client_errinfo_format(const vigil_client_errinfo *info, char *buf, size_t cap)
{
	int flen = (int)strnlen(info->field, sizeof info->field);

	if (cap == 0)
		return buf;
	snprintf(buf, cap, "%.*s%s%.*s", flen, info->field, flen > 0 ? ": " : "",
	    (int)strnlen(info->message, sizeof info->message), info->message);
	return buf;
}

const char *
vigil_client_decision_name(vigil_client_decision d)
{
	switch (d) {
	case VIGIL_CLIENT_DECISION_ALLOW:
		return "allow";
	case VIGIL_CLIENT_DECISION_REVIEW:
		return "review";
	case VIGIL_CLIENT_DECISION_DECLINE:
		return "decline";
	default:
		return "none";
	}
}

void
vc_info_set(vigil_client_errinfo *info, vigil_client_err code, const char *field,
    const char *fmt, ...)
{
	va_list ap;
	int     n;

	if (info == NULL)
		return;
	info->code = code;
	info->attempts = 0; /* a call's own count is set when it finishes */
	snprintf(info->field, sizeof info->field, "%s", field != NULL ? field : "");
	va_start(ap, fmt);
	n = vsnprintf(info->message, sizeof info->message, fmt, ap);
	va_end(ap);
	if (n >= (int) sizeof info->message) {
		/* cut: drop a character the cut split (UTF-8 lead and
		 * continuation bytes at the end) */
		size_t len = sizeof info->message - 1, k = len;

		while (k > 0 && ((unsigned char) info->message[k - 1] & 0xc0) == 0x80)
			k--;
		if (k > 0 && (unsigned char) info->message[k - 1] >= 0xc0) {
			unsigned char lead = (unsigned char) info->message[k - 1];
			size_t        need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : 2;

			if (len - (k - 1) < need)
				info->message[k - 1] = '\0';
		}
	}
	/* one line: the server's message is not ours to trust */
	for (char *p = info->message; *p != '\0'; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
}

static vigil_client_err
vc_from_nng(int rv)
{
	switch (rv) {
	case NNG_ENOMEM:
		return VIGIL_CLIENT_ENOMEM;
	case NNG_ETIMEDOUT:
		return VIGIL_CLIENT_ETIMEDOUT;
	case NNG_ECONNREFUSED:
	case NNG_ECONNRESET:
	case NNG_ECONNSHUT:
	case NNG_EADDRINVAL:
	case NNG_EUNREACHABLE:
		return VIGIL_CLIENT_EUNREACHABLE;
	case NNG_ECLOSED:
		return VIGIL_CLIENT_ECLOSED;
	default:
		return VIGIL_CLIENT_ETRANSPORT;
	}
}

/* ---- results ---- */

void
vigil_client_result_fini(vigil_client_result *res)
{
	if (res == NULL)
		return;
	free(res->block_);
	memset(res, 0, sizeof *res);
}

void
vigil_client_result_move(vigil_client_result *dst, vigil_client_result *src)
{
	*dst = *src;
	memset(src, 0, sizeof *src);
}

/* ---- the decoding arena: protobuf-c allocations served from the call ---- */

void *
vc_arena_alloc(void *data, size_t size)
{
	vc_call *call = data;
	size_t   off = (call->arena_used + 15) & ~(size_t) 15;

	if (size <= sizeof call->arena && off <= sizeof call->arena - size) {
		call->arena_used = off + size;
		return call->arena + off;
	}
	return malloc(size);
}

void
vc_arena_free(void *data, void *ptr)
{
	vc_call *call = data;
	unsigned char *p = ptr;

	if (p >= call->arena && p < call->arena + sizeof call->arena)
		return;
	free(ptr);
}

/* ---- replicas and connections ---- */

static void
vc_pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	vc_replica   *r = arg;
	vigil_client *c = r->c;

	(void) p;
	pthread_mutex_lock(&c->mtx);
	if (ev == NNG_PIPE_EV_ADD_POST) {
		r->npipes++;
		r->answers = 0;
		pthread_cond_broadcast(&c->cv);
	} else if (ev == NNG_PIPE_EV_REM_POST) {
		if (r->npipes > 0)
			r->npipes--;
		if (r->npipes == 0) {
			r->down_since = nng_clock();
			/* the requests waiting here will not be answered: fail over now */
			for (vc_call *call = r->inflight; call != NULL; call = call->next_rep) {
				call->disc = true;
				nng_aio_cancel(call->aio);
				nng_aio_cancel(call->aio_sleep);
			}
		}
	}
	pthread_mutex_unlock(&c->mtx);
}

static bool
vc_set(const char *s)
{
	return s != NULL && s[0] != '\0';
}

/*
 * A whole PEM file as a NUL-terminated string (malloc'd), read once: nng
 * is given this text, not the name. NULL with why (for "PATH: WHY") set:
 * the open's or read's error, or "not a regular file" for a FIFO, device
 * or directory in the file's place, refused, not waited on.
 */
static char *
vc_read_pem(const char *path, char *why, size_t wlen)
{
	bool special = false;
	char *buf;
	size_t n;

	if (vigil_read_regular(path, VC_PEM_MAX, &buf, &n, &special) != 0) {
		snprintf(why, wlen, "%s", special ? "not a regular file" : strerror(errno));
		return NULL;
	}
	return buf;
}

/*
 * The dialer of a tls+tcp:// replica: TLS 1.2, the server's certificate
 * verified against tls_ca for tls_server_name (or the URL's host), and our
 * certificate if given. Not started.
 */
static vigil_client_err
vc_tls_dialer(vigil_client *c, vc_replica *r, nng_dialer *ret_d,
    vigil_client_errinfo *reterr_info)
{
	const vigil_client_opts *o = &c->opts;
	nng_tls_config *cfg = NULL;
	nng_url *u = NULL;
	char *cert = NULL, *key = NULL, why[128];
	const char *what = "";
	vigil_client_err err = VIGIL_CLIENT_ETRANSPORT;
	int rv;

	if (!vc_set(o->tls_ca)) {
		vc_info_set(reterr_info, VIGIL_CLIENT_EINVAL, NULL, "%s: a tls+tcp:// URL needs "
		    "opts.tls_ca (the CA that signed the server's certificate)", r->url);
		return VIGIL_CLIENT_EINVAL;
	}
	if (vc_set(o->tls_cert) != vc_set(o->tls_key)) {
		vc_info_set(reterr_info, VIGIL_CLIENT_EINVAL, NULL, "%s: opts.tls_cert and "
		    "opts.tls_key go together", r->url);
		return VIGIL_CLIENT_EINVAL;
	}
	if ((rv = nng_url_parse(&u, r->url)) != 0 ||
	    (rv = nng_dialer_create(ret_d, r->sock, r->url)) != 0 ||
	    (rv = nng_tls_config_alloc(&cfg, NNG_TLS_MODE_CLIENT)) != 0 ||
	    (rv = nng_tls_config_version(cfg, NNG_TLS_1_2, NNG_TLS_1_2)) != 0)
		goto fail;
	what = o->tls_ca;
	if ((cert = vc_read_pem(o->tls_ca, why, sizeof why)) == NULL) {
		vc_info_set(reterr_info, VIGIL_CLIENT_EINVAL, NULL, "%s: %s: %s", r->url, what, why);
		err = VIGIL_CLIENT_EINVAL;
		goto out;
	}
	rv = nng_tls_config_ca_chain(cfg, cert, NULL);
	free(cert);
	cert = NULL;
	if (rv != 0) {
		err = VIGIL_CLIENT_EINVAL;
		goto fail;
	}
	if (vc_set(o->tls_cert)) {
		what = (cert = vc_read_pem(o->tls_cert, why, sizeof why)) == NULL ? o->tls_cert :
		    o->tls_key;
		if (cert == NULL || (key = vc_read_pem(o->tls_key, why, sizeof why)) == NULL) {
			vc_info_set(reterr_info, VIGIL_CLIENT_EINVAL, NULL, "%s: %s: %s", r->url, what,
			    why);
			err = VIGIL_CLIENT_EINVAL;
			goto out;
		}
		what = o->tls_cert;
		if ((rv = nng_tls_config_own_cert(cfg, cert, key, NULL)) != 0) {
			err = VIGIL_CLIENT_EINVAL;
			goto fail;
		}
	}
	what = "";
	if ((rv = nng_tls_config_server_name(cfg, vc_set(o->tls_server_name) ?
	    o->tls_server_name : u->u_hostname)) != 0 ||
	    (rv = nng_tls_config_auth_mode(cfg, NNG_TLS_AUTH_MODE_REQUIRED)) != 0 ||
	    (rv = nng_dialer_set_ptr(*ret_d, NNG_OPT_TLS_CONFIG, cfg)) != 0)
		goto fail;
	err = VIGIL_CLIENT_OK;
	goto out;
fail:
	if (rv == NNG_ENOMEM)
		err = VIGIL_CLIENT_ENOMEM;
	/* the TLS library's refusal of a file, said as what is wrong with it */
	vc_info_set(reterr_info, err, NULL, "%s: %s%s%s", r->url, what, what[0] ? ": " : "",
	    rv != NNG_ECRYPTO || what[0] == '\0' ? nng_strerror(rv) : what == o->tls_ca
	    ? "not a PEM X.509 certificate" : "not a PEM X.509 certificate and its private key");
out:
	if (key != NULL) {
		memset(key, 0, strlen(key));
		free(key);
	}
	free(cert);
	if (cfg != NULL)
		nng_tls_config_free(cfg); /* the dialer holds its own reference */
	if (u != NULL)
		nng_url_free(u);
	return err;
}

/* Starts r's dialer (in the background: it reconnects by itself). */
static vigil_client_err
vc_replica_dial(vigil_client *c, vc_replica *r, vigil_client_errinfo *reterr_info)
{
	nng_dialer d;
	int        rv;

	if (strncmp(r->url, "tls+", 4) == 0) {
		vigil_client_err err = vc_tls_dialer(c, r, &d, reterr_info);

		if (err != VIGIL_CLIENT_OK)
			return err;
		rv = nng_dialer_start(d, NNG_FLAG_NONBLOCK);
		if (rv != 0)
			nng_dialer_close(d);
	} else {
		rv = nng_dial(r->sock, r->url, &d, NNG_FLAG_NONBLOCK);
	}
	if (rv != 0) {
		vc_info_set(reterr_info, rv == NNG_ENOMEM ? VIGIL_CLIENT_ENOMEM :
		    VIGIL_CLIENT_ETRANSPORT, NULL, "%s: %s", r->url, nng_strerror(rv));
		return rv == NNG_ENOMEM ? VIGIL_CLIENT_ENOMEM : VIGIL_CLIENT_ETRANSPORT;
	}
	pthread_mutex_lock(&c->mtx);
	r->dialer = d;
	r->down_since = nng_clock();
	pthread_mutex_unlock(&c->mtx);
	return VIGIL_CLIENT_OK;
}

/*
 * The stall watch, after an attempt on r timed out (answered: false) or got
 * a reply (true). nng 1.5.2 can leave a replica's dialer waiting forever on
 * a connection that never completes its handshake: over ipc://, a vigild
 * killed during connection setup again and again left the client's stream
 * established to a peer that no longer existed, bytes unread, no pipe ever
 * added and no redial (issue 28, row 0). A likely path, from nng's source:
 * in 1.5.2 a handshake that fails with NNG_ECLOSED hands that code to the
 * dialer, whose connect callback then takes "no further action" and never
 * dials again (nng fixed the handshake's code after 1.5.2, commit 9248ed74,
 * nng issue 1518). A peer that accepts and never speaks holds a replica
 * for nng's 10 s negotiation timeout. After
 * VC_REDIAL_AFTER timeouts in a row on a replica with no connection, or
 * whose connection has not answered once since it was added, its dialer is
 * closed (with whatever half-made pipe it holds) and a new one started. A
 * connection that has answered is never dropped here: a slow vigild is not
 * a dead one.
 */
static void
vc_replica_stall(vigil_client *c, vc_replica *r, bool answered)
{
	vigil_client_errinfo info;
	nng_dialer old;

	pthread_mutex_lock(&c->mtx);
	if (answered) {
		r->stalls = 0;
		r->answers++;
		pthread_mutex_unlock(&c->mtx);
		return;
	}
	if (++r->stalls < VC_REDIAL_AFTER || (r->npipes > 0 && r->answers > 0) ||
	    r->redialing || c->closing) {
		pthread_mutex_unlock(&c->mtx);
		return;
	}
	r->stalls = 0;
	r->redialing = true;
	r->redials++;
	old = r->dialer;
	pthread_mutex_unlock(&c->mtx);
	/* not under c->mtx: closing the dialer runs our pipe callback */
	nng_dialer_close(old);
	(void) vc_replica_dial(c, r, &info); /* failing, the next stall tries again */
	pthread_mutex_lock(&c->mtx);
	r->redialing = false;
	pthread_mutex_unlock(&c->mtx);
}

/*
 * The same replacement for replicas no call tries: with other replicas
 * connected, calls go there, so a stuck dialer of a replica that is down
 * would never time out a call and never be replaced (its vigild back, the
 * client still without it). Any replica with no connection for
 * VC_REDIAL_IDLE_MS gets a new dialer, at most once per that time. Called
 * without c->mtx, from each call's replica choice and from
 * vigil_client_replica_connected.
 */
static void
vc_replica_watch(vigil_client *c)
{
	nng_time now = nng_clock();

	for (size_t i = 0; i < c->nrep; i++) {
		vc_replica *r = &c->reps[i];
		vigil_client_errinfo info;
		nng_dialer old;

		pthread_mutex_lock(&c->mtx);
		if (r->npipes > 0 || r->redialing || c->closing || !r->sock_open ||
		    now - r->down_since < VC_REDIAL_IDLE_MS) {
			pthread_mutex_unlock(&c->mtx);
			continue;
		}
		r->redialing = true;
		r->redials++;
		old = r->dialer;
		pthread_mutex_unlock(&c->mtx);
		nng_dialer_close(old);
		(void) vc_replica_dial(c, r, &info); /* sets down_since: the next try is later */
		pthread_mutex_lock(&c->mtx);
		r->redialing = false;
		pthread_mutex_unlock(&c->mtx);
	}
}

static vigil_client_err
vc_replica_open(vigil_client *c, vc_replica *r, vigil_client_errinfo *reterr_info)
{
	int        rv;

	rv = nng_req0_open(&r->sock);
	if (rv != 0)
		goto fail;
	r->sock_open = true;
	/* our attempts and failover replace REQ's own resend timer */
	rv = nng_socket_set_ms(r->sock, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
	if (rv == 0)
		rv = nng_socket_set_size(r->sock, NNG_OPT_RECVMAXSZ, c->opts.max_reply_bytes);
	if (rv == 0)
		rv = nng_socket_set_ms(r->sock, NNG_OPT_RECONNMINT, 50);
	if (rv == 0)
		rv = nng_socket_set_ms(r->sock, NNG_OPT_RECONNMAXT, 1000);
	if (rv == 0)
		rv = nng_pipe_notify(r->sock, NNG_PIPE_EV_ADD_POST, vc_pipe_cb, r);
	if (rv == 0)
		rv = nng_pipe_notify(r->sock, NNG_PIPE_EV_REM_POST, vc_pipe_cb, r);
	if (rv != 0)
		goto fail;
	return vc_replica_dial(c, r, reterr_info);
fail:
	vc_info_set(reterr_info, rv == NNG_ENOMEM ? VIGIL_CLIENT_ENOMEM : VIGIL_CLIENT_ETRANSPORT,
	    NULL, "%s: %s", r->url, nng_strerror(rv));
	return rv == NNG_ENOMEM ? VIGIL_CLIENT_ENOMEM : VIGIL_CLIENT_ETRANSPORT;
}

static void
vc_opts_defaults(vigil_client_opts *o)
{
	if (o->timeout_ms <= 0)
		o->timeout_ms = 1000;
	if (o->max_attempts == 0)
		o->max_attempts = 3;
	if (o->connect_wait_ms == 0)
		o->connect_wait_ms = 1000;
	if (o->backoff_ms <= 0)
		o->backoff_ms = 20;
	if (o->vnodes == 0)
		o->vnodes = 160;
	if (o->vnodes > 4096)
		o->vnodes = 4096;
	if (o->max_inflight == 0)
		o->max_inflight = 4096;
	if (o->max_reply_bytes == 0)
		o->max_reply_bytes = 1u << 20;
	if (o->max_attempts > 100)
		o->max_attempts = 100;
}

static void vc_call_destroy(vc_call *call);

static void
vc_client_free(vigil_client *c)
{
	for (size_t i = 0; i < c->nrep; i++)
		if (c->reps[i].sock_open)
			nng_close(c->reps[i].sock); /* closes the contexts too */
	while (c->all != NULL) {
		vc_call *call = c->all;

		c->all = call->next_all;
		vc_call_destroy(call);
	}
	for (size_t i = 0; i < c->nrep; i++)
		free(c->reps[i].url);
	free(c->reps);
	vc_ring_free(c->ring);
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->mtx);
	free(c);
}

vigil_client_err
vigil_client_open(const char *const *urls, size_t nurls, const vigil_client_opts *opts,
    vigil_client **ret_client, vigil_client_errinfo *reterr_info)
{
	vigil_client    *c = NULL;
	vigil_client_err rv;

	if (ret_client == NULL) {
		vc_info_set(reterr_info, VIGIL_CLIENT_EINVAL, NULL, "NULL ret_client");
		return VIGIL_CLIENT_EINVAL;
	}
	if (urls == NULL || nurls == 0 || nurls > VC_MAX_REPLICAS) {
		vc_info_set(reterr_info, VIGIL_CLIENT_EINVAL, NULL,
		    "need 1 to %d server URLs, got %zu", VC_MAX_REPLICAS, nurls);
		return VIGIL_CLIENT_EINVAL;
	}
	for (size_t i = 0; i < nurls; i++) {
		if (urls[i] == NULL || urls[i][0] == '\0' || strlen(urls[i]) > VC_MAX_URL) {
			vc_info_set(reterr_info, VIGIL_CLIENT_EINVAL, NULL,
			    "server URL %zu: empty or longer than %d bytes", i + 1, VC_MAX_URL);
			return VIGIL_CLIENT_EINVAL;
		}
		if (!vigil_cli_url_ok(urls[i])) {
			vc_info_set(reterr_info, VIGIL_CLIENT_EINVAL, NULL, "%s: not a URL: write "
			    VIGIL_CLI_URL_FORMS, urls[i]);
			return VIGIL_CLIENT_EINVAL;
		}
		for (size_t j = 0; j < i; j++) {
			if (strcmp(urls[i], urls[j]) == 0) {
				vc_info_set(reterr_info, VIGIL_CLIENT_EINVAL, NULL,
				    "%s: server URL given twice", urls[i]);
				return VIGIL_CLIENT_EINVAL;
			}
		}
	}

	c = calloc(1, sizeof *c);
	if (c == NULL)
		goto nomem;
	if (opts != NULL)
		c->opts = *opts;
	vc_opts_defaults(&c->opts);
	pthread_mutex_init(&c->mtx, NULL);
	{
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&c->cv, &ca);
		pthread_condattr_destroy(&ca);
	}
	c->reps = calloc(nurls, sizeof *c->reps);
	if (c->reps == NULL)
		goto nomem;
	c->nrep = nurls;
	for (size_t i = 0; i < nurls; i++) {
		c->reps[i].c = c;
		c->reps[i].url = strdup(urls[i]);
		if (c->reps[i].url == NULL)
			goto nomem;
	}
	c->ring = vc_ring_new(urls, nurls, c->opts.vnodes);
	if (c->ring == NULL)
		goto nomem;
	for (size_t i = 0; i < nurls; i++) {
		rv = vc_replica_open(c, &c->reps[i], reterr_info);
		if (rv != VIGIL_CLIENT_OK)
			goto out;
	}
	/* borrowed for the open only */
	c->opts.tls_cert = c->opts.tls_key = c->opts.tls_ca = c->opts.tls_server_name = NULL;

	if (c->opts.connect_wait_ms > 0) {
		/* the pipe callback broadcasts c->cv on every new connection */
		struct timespec until;

		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_sec  += c->opts.connect_wait_ms / 1000;
		until.tv_nsec += (long) (c->opts.connect_wait_ms % 1000) * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		pthread_mutex_lock(&c->mtx);
		for (;;) {
			size_t up = 0;

			for (size_t i = 0; i < c->nrep; i++)
				up += c->reps[i].npipes > 0;
			if (up == c->nrep || pthread_cond_timedwait(&c->cv, &c->mtx, &until) == ETIMEDOUT)
				break;
		}
		pthread_mutex_unlock(&c->mtx);
	}
	*ret_client = c;
	c = NULL;
	rv = VIGIL_CLIENT_OK;
	goto out;
nomem:
	rv = VIGIL_CLIENT_ENOMEM;
	vc_info_set(reterr_info, rv, NULL, "out of memory opening the client");
out:
	if (c != NULL)
		vc_client_free(c);
	return rv;
}

void
vigil_client_close(vigil_client *c)
{
	if (c == NULL)
		return;
	pthread_mutex_lock(&c->mtx);
	c->closing = true;
	for (size_t i = 0; i < c->nrep; i++)
		for (vc_call *call = c->reps[i].inflight; call != NULL; call = call->next_rep) {
			nng_aio_cancel(call->aio);
			nng_aio_cancel(call->aio_sleep);
		}
	while (c->nactive > 0)
		pthread_cond_wait(&c->cv, &c->mtx);
	pthread_mutex_unlock(&c->mtx);
	vc_client_free(c);
}

size_t
vigil_client_nreplicas(const vigil_client *c)
{
	return c->nrep;
}

const char *
vigil_client_replica_url(const vigil_client *c, size_t i)
{
	return i < c->nrep ? c->reps[i].url : NULL;
}

size_t
vigil_client_route(const vigil_client *c, const char *key)
{
	return vc_ring_owner(c->ring, key, strlen(key));
}

bool
vigil_client_replica_connected(vigil_client *c, size_t i)
{
	bool up;

	if (i >= c->nrep)
		return false;
	vc_replica_watch(c);
	pthread_mutex_lock(&c->mtx);
	up = c->reps[i].npipes > 0;
	pthread_mutex_unlock(&c->mtx);
	return up;
}

/* ---- call objects ---- */

static void vc_aio_cb(void *arg);

static void
vc_call_destroy(vc_call *call)
{
	if (call->aio != NULL)
		nng_aio_free(call->aio);
	if (call->aio_sleep != NULL)
		nng_aio_free(call->aio_sleep);
	free(call->ctx);
	free(call->ctx_open);
	free(call->order);
	free(call->buf);
	free(call);
}

/* A call object from the pool (or a new one, up to max_inflight). */
static vigil_client_err
vc_call_get(vigil_client *c, bool async, vc_call **ret_call, vigil_client_errinfo *reterr_info)
{
	vc_call        **freelist = async ? &c->free_async : &c->free_sync;
	vc_call         *call, *retired = NULL;
	vigil_client_err rv = VIGIL_CLIENT_OK;

	pthread_mutex_lock(&c->mtx);
	if (c->closing) {
		rv = VIGIL_CLIENT_ECLOSED;
		vc_info_set(reterr_info, rv, NULL, "client is closing");
		goto out;
	}
	if ((call = *freelist) != NULL) {
		*freelist = call->next_free;
		c->nactive++;
		*ret_call = call;
		goto out;
	}
	if (c->ncalls - c->ndelivering >= c->opts.max_inflight) {
		vc_call **other = async ? &c->free_sync : &c->free_async;

		if (*other == NULL) {
			rv = VIGIL_CLIENT_ELIMIT;
			vc_info_set(reterr_info, rv, NULL, "%u calls already in flight",
			    c->opts.max_inflight);
			goto out;
		}
		/* the cap is on calls in flight: retire an idle object of the
		 * other kind (sync and async objects differ in their aios) */
		retired = *other;
		*other = retired->next_free;
		for (vc_call **pp = &c->all; *pp != NULL; pp = &(*pp)->next_all) {
			if (*pp == retired) {
				*pp = retired->next_all;
				break;
			}
		}
		c->ncalls--;
	}
	c->ncalls++;
	c->nactive++;
	pthread_mutex_unlock(&c->mtx);
	if (retired != NULL) {
		/* waits for the callback that recycled it, if still running: never
		 * this thread's, since only sync calls retire async objects */
		for (size_t i = 0; i < c->nrep; i++)
			if (retired->ctx_open[i])
				nng_ctx_close(retired->ctx[i]);
		vc_call_destroy(retired);
	}

	call = calloc(1, sizeof *call);
	if (call != NULL) {
		call->c        = c;
		call->async    = async;
		call->ctx      = calloc(c->nrep, sizeof *call->ctx);
		call->ctx_open = calloc(c->nrep, sizeof *call->ctx_open);
		call->order    = calloc(c->nrep, sizeof *call->order);
		call->alloc.alloc          = vc_arena_alloc;
		call->alloc.free           = vc_arena_free;
		call->alloc.allocator_data = call;
	}
	if (call == NULL || call->ctx == NULL || call->ctx_open == NULL || call->order == NULL ||
	    nng_aio_alloc(&call->aio, async ? vc_aio_cb : NULL, call) != 0 ||
	    nng_aio_alloc(&call->aio_sleep, async ? vc_aio_cb : NULL, call) != 0) {
		if (call != NULL)
			vc_call_destroy(call);
		pthread_mutex_lock(&c->mtx);
		c->ncalls--;
		c->nactive--;
		pthread_cond_broadcast(&c->cv);
		rv = VIGIL_CLIENT_ENOMEM;
		vc_info_set(reterr_info, rv, NULL, "out of memory starting a call");
		goto out;
	}
	pthread_mutex_lock(&c->mtx);
	call->next_all = c->all;
	c->all = call;
	*ret_call = call;
out:
	pthread_mutex_unlock(&c->mtx);
	return rv;
}

static void
vc_call_put(vc_call *call)
{
	vigil_client *c = call->c;

	vigil_client_result_fini(&call->res);
	pthread_mutex_lock(&c->mtx);
	if (call->delivering) {
		call->delivering = false;
		c->ndelivering--;
	}
	if (call->async) {
		call->next_free = c->free_async;
		c->free_async = call;
	} else {
		call->next_free = c->free_sync;
		c->free_sync = call;
	}
	c->nactive--;
	if (c->nactive == 0)
		pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mtx);
}

/* Prepares call for its first attempt: options and the ring order of key. */
static void
vc_call_prepare(vc_call *call, const vigil_client_callopts *opts, const char *key)
{
	vigil_client *c = call->c;

	call->timeout_ms   = opts != NULL && opts->timeout_ms > 0 ? opts->timeout_ms : c->opts.timeout_ms;
	call->max_attempts = opts != NULL && opts->max_attempts > 0 ? opts->max_attempts : c->opts.max_attempts;
	if (call->max_attempts > 100)
		call->max_attempts = 100;
	call->norder   = vc_ring_order(c->ring, key, strlen(key), call->order);
	call->state    = VC_IDLE;
	call->attempts = 0;
	call->tried    = 0;
	call->err      = VIGIL_CLIENT_EUNREACHABLE;
	memset(&call->info, 0, sizeof call->info);
	snprintf(call->info.message, sizeof call->info.message, "no attempt was made");
	memset(&call->res, 0, sizeof call->res);
}

/* ---- the state machine ---- */

static bool
vc_closing(vigil_client *c)
{
	bool closing;

	pthread_mutex_lock(&c->mtx);
	closing = c->closing;
	pthread_mutex_unlock(&c->mtx);
	return closing;
}

static void
vc_call_register(vc_call *call)
{
	vigil_client *c = call->c;
	vc_replica   *r = &c->reps[call->rep];

	pthread_mutex_lock(&c->mtx);
	call->prev_rep = NULL;
	call->next_rep = r->inflight;
	if (r->inflight != NULL)
		r->inflight->prev_rep = call;
	r->inflight = call;
	call->registered    = true;
	call->disc          = false;
	call->was_connected = r->npipes > 0;
	pthread_mutex_unlock(&c->mtx);
}

static void
vc_call_unregister(vc_call *call)
{
	vigil_client *c = call->c;
	vc_replica   *r = &c->reps[call->rep];

	pthread_mutex_lock(&c->mtx);
	if (call->registered) {
		if (call->prev_rep != NULL)
			call->prev_rep->next_rep = call->next_rep;
		else
			r->inflight = call->next_rep;
		if (call->next_rep != NULL)
			call->next_rep->prev_rep = call->prev_rep;
		call->registered = false;
	}
	pthread_mutex_unlock(&c->mtx);
}

/* After issuing an aio operation: a disconnect or close that raced with the
 * issue could not cancel it, so cancel it here. */
static void
vc_call_recheck(vc_call *call)
{
	vigil_client *c = call->c;

	pthread_mutex_lock(&c->mtx);
	if (call->disc || c->closing) {
		nng_aio_cancel(call->aio);
		nng_aio_cancel(call->aio_sleep);
	}
	pthread_mutex_unlock(&c->mtx);
}

/*
 * Picks the replica for the next attempt: the first untried connected
 * replica in ring order; else a connected one already tried (with backoff);
 * else, with nothing connected, the first untried one or the owner, and the
 * request waits there for a connection within its timeout.
 */
static size_t
vc_call_pick(vc_call *call, bool *ret_backoff)
{
	vigil_client *c = call->c;
	size_t        pick = SIZE_MAX;
	bool          backoff = false;

	pthread_mutex_lock(&c->mtx);
	for (size_t i = 0; i < call->norder && pick == SIZE_MAX; i++) {
		size_t r = call->order[i];

		if (!(call->tried & (UINT64_C(1) << r)) && c->reps[r].npipes > 0)
			pick = r;
	}
	for (size_t i = 0; i < call->norder && pick == SIZE_MAX; i++) {
		size_t r = call->order[(i + call->attempts) % call->norder];

		if (c->reps[r].npipes > 0) {
			pick = r;
			backoff = true;
		}
	}
	for (size_t i = 0; i < call->norder && pick == SIZE_MAX; i++) {
		size_t r = call->order[i];

		if (!(call->tried & (UINT64_C(1) << r)))
			pick = r;
	}
	if (pick == SIZE_MAX) {
		pick = call->order[call->attempts % call->norder];
		backoff = true;
	}
	pthread_mutex_unlock(&c->mtx);
	vc_replica_watch(c);
	*ret_backoff = backoff;
	return pick;
}

/* Sends the request bytes on the current replica. false: not issued (the
 * attempt failed at once, call->err says why). */
static bool
vc_call_send(vc_call *call)
{
	vigil_client *c = call->c;
	vc_replica   *r = &c->reps[call->rep];
	nng_msg      *msg;
	int           rv;

	if (!call->ctx_open[call->rep]) {
		rv = nng_ctx_open(&call->ctx[call->rep], r->sock);
		if (rv != 0) {
			vc_call_fail(call, vc_from_nng(rv), NULL, nng_strerror(rv));
			return false;
		}
		call->ctx_open[call->rep] = true;
	}
	rv = nng_msg_alloc(&msg, call->len);
	if (rv != 0) {
		vc_call_fail(call, VIGIL_CLIENT_ENOMEM, NULL, nng_strerror(rv));
		return false;
	}
	memcpy(nng_msg_body(msg), call->buf, call->len);
	call->deadline = nng_clock() + (nng_time) call->timeout_ms;
	call->state = VC_SEND;
	nng_aio_set_msg(call->aio, msg);
	nng_aio_set_timeout(call->aio, call->timeout_ms);
	nng_ctx_send(call->ctx[call->rep], call->aio);
	vc_call_recheck(call);
	return true;
}

/* The failure of an aio operation as a client error, in call->err. */
static void
vc_call_aio_failed(vc_call *call, int rv)
{
	vigil_client *c = call->c;
	char          detail[160];
	bool          up, closing;

	pthread_mutex_lock(&c->mtx);
	up = c->reps[call->rep].npipes > 0;
	closing = c->closing;
	pthread_mutex_unlock(&c->mtx);
	if (closing && (rv == NNG_ECANCELED || rv == NNG_ECLOSED)) {
		vc_call_fail(call, VIGIL_CLIENT_ECLOSED, NULL, "client closed during the call");
	} else if ((rv == NNG_ECANCELED && call->disc) || rv == NNG_ECONNRESET ||
	    rv == NNG_ECONNSHUT || rv == NNG_ECONNABORTED) {
		/* our pipe callback cancelled it, or nng failed it first */
		vc_call_fail(call, VIGIL_CLIENT_EUNREACHABLE, NULL, "connection lost");
	} else if (rv == NNG_ETIMEDOUT && !up && !call->was_connected) {
		vc_replica_stall(c, &c->reps[call->rep], false);
		snprintf(detail, sizeof detail, "not connected within %d ms (is vigild running there?)",
		    (int) call->timeout_ms);
		vc_call_fail(call, VIGIL_CLIENT_EUNREACHABLE, NULL, detail);
	} else if (rv == NNG_ETIMEDOUT) {
		vc_replica_stall(c, &c->reps[call->rep], false);
		snprintf(detail, sizeof detail, "no reply within %d ms", (int) call->timeout_ms);
		vc_call_fail(call, VIGIL_CLIENT_ETIMEDOUT, NULL, detail);
	} else {
		vc_call_fail(call, vc_from_nng(rv), NULL, nng_strerror(rv));
	}
}

/*
 * Runs the call after its aio completed (or at the start, state VC_IDLE).
 * Returns true when the call is finished (call->err, call->res, call->info
 * final), false when an aio operation is in flight.
 */
static bool
vc_call_run(vc_call *call)
{
	vigil_client *c = call->c;
	nng_msg      *msg;
	int           rv;

	for (;;) {
		switch (call->state) {
		case VC_IDLE: {
			bool backoff;

			if (call->err == VIGIL_CLIENT_OK || !vc_retryable(call->err) ||
			    call->attempts >= call->max_attempts)
				return true;
			if (vc_closing(c)) {
				call->err = VIGIL_CLIENT_ECLOSED;
				vc_info_set(&call->info, call->err, NULL, "client closed during the call");
				return true;
			}
			call->rep = vc_call_pick(call, &backoff);
			call->attempts++;
			call->tried |= UINT64_C(1) << call->rep;
			vc_call_register(call);
			if (backoff && c->opts.backoff_ms > 0) {
				call->state = VC_BACKOFF;
				nng_sleep_aio(c->opts.backoff_ms, call->aio_sleep);
				vc_call_recheck(call);
				return false;
			}
			if (vc_call_send(call))
				return false;
			vc_call_unregister(call);
			break;
		}
		case VC_BACKOFF:
			rv = nng_aio_result(call->aio_sleep);
			if (rv != 0) {
				vc_call_aio_failed(call, rv);
				vc_call_unregister(call);
				call->state = VC_IDLE;
				break;
			}
			if (vc_call_send(call))
				return false;
			vc_call_unregister(call);
			call->state = VC_IDLE;
			break;
		case VC_SEND:
			rv = nng_aio_result(call->aio);
			if (rv != 0) {
				nng_msg_free(nng_aio_get_msg(call->aio));
				nng_aio_set_msg(call->aio, NULL);
				vc_call_aio_failed(call, rv);
				vc_call_unregister(call);
				call->state = VC_IDLE;
				break;
			}
			call->state = VC_RECV;
			{
				nng_time now = nng_clock();
				nng_duration left = now >= call->deadline ? 1 :
				    (nng_duration) (call->deadline - now);

				nng_aio_set_timeout(call->aio, left);
			}
			nng_ctx_recv(call->ctx[call->rep], call->aio);
			vc_call_recheck(call);
			return false;
		case VC_RECV:
			rv = nng_aio_result(call->aio);
			vc_call_unregister(call);
			call->state = VC_IDLE;
			if (rv != 0) {
				vc_call_aio_failed(call, rv);
				break;
			}
			vc_replica_stall(c, &c->reps[call->rep], true);
			msg = nng_aio_get_msg(call->aio);
			nng_aio_set_msg(call->aio, NULL);
			vc_call_decode(call, nng_msg_body(msg), nng_msg_len(msg));
			nng_msg_free(msg);
			break;
		case VC_FINISH:
			return true;
		}
	}
}

static void
vc_call_finish_info(vc_call *call)
{
	call->info.code     = call->err;
	call->info.attempts = call->attempts;
	call->res.attempts  = call->attempts;
}

/* Async completion: deliver to the user and recycle the call. */
static void
vc_call_deliver(vc_call *call)
{
	vigil_client *c = call->c;

	vc_call_finish_info(call);
	pthread_mutex_lock(&c->mtx);
	call->delivering = true;
	c->ndelivering++;
	pthread_mutex_unlock(&c->mtx);
	if (call->err == VIGIL_CLIENT_OK)
		call->cb(call->cb_arg, call->err, &call->res, NULL);
	else
		call->cb(call->cb_arg, call->err, NULL, &call->info);
	vc_call_put(call);
}

static void
vc_aio_cb(void *arg)
{
	vc_call *call = arg;

	if (vc_call_run(call))
		vc_call_deliver(call);
}

/* Runs a prepared call to its end in the calling thread. */
static void
vc_call_run_sync(vc_call *call)
{
	while (!vc_call_run(call))
		nng_aio_wait(call->state == VC_BACKOFF ? call->aio_sleep : call->aio);
	vc_call_finish_info(call);
}

/* Starts a prepared async call; its callback will run on an nng thread. */
static void
vc_call_start_async(vc_call *call)
{
	if (vc_call_run(call)) {
		/* finished without any I/O: still deliver from an nng thread */
		call->state = VC_FINISH;
		nng_sleep_aio(0, call->aio_sleep);
	}
}

/* ---- public calls ---- */

vigil_client_err
vigil_client_score(vigil_client *c, const vigil_client_txn *txn,
    const vigil_client_callopts *opts, vigil_client_result *ret_result,
    vigil_client_errinfo *reterr_info)
{
	vc_call         *call = NULL;
	vigil_client_err rv;

	if (c == NULL || txn == NULL || ret_result == NULL) {
		vc_info_set(reterr_info, VIGIL_CLIENT_EINVAL, NULL, "NULL client, txn or result");
		return VIGIL_CLIENT_EINVAL;
	}
	rv = vc_call_get(c, false, &call, reterr_info);
	if (rv != VIGIL_CLIENT_OK)
		return rv;
	rv = vc_encode_score(call, txn, opts != NULL && opts->dry_run, reterr_info);
	if (rv != VIGIL_CLIENT_OK)
		goto out;
	vc_call_prepare(call, opts, txn->card_id);
	vc_call_run_sync(call);
	rv = call->err;
	if (rv == VIGIL_CLIENT_OK)
		vigil_client_result_move(ret_result, &call->res);
	else if (reterr_info != NULL)
		*reterr_info = call->info;
out:
	vc_call_put(call);
	return rv;
}

vigil_client_err
vigil_client_score_async(vigil_client *c, const vigil_client_txn *txn,
    const vigil_client_callopts *opts, vigil_client_score_cb cb, void *arg,
    vigil_client_errinfo *reterr_info)
{
	vc_call         *call = NULL;
	vigil_client_err rv;

	if (c == NULL || txn == NULL || cb == NULL) {
		vc_info_set(reterr_info, VIGIL_CLIENT_EINVAL, NULL, "NULL client, txn or callback");
		return VIGIL_CLIENT_EINVAL;
	}
	rv = vc_call_get(c, true, &call, reterr_info);
	if (rv != VIGIL_CLIENT_OK)
		return rv;
	rv = vc_encode_score(call, txn, opts != NULL && opts->dry_run, reterr_info);
	if (rv != VIGIL_CLIENT_OK) {
		vc_call_put(call);
		return rv;
	}
	vc_call_prepare(call, opts, txn->card_id);
	call->cb     = cb;
	call->cb_arg = arg;
	vc_call_start_async(call);
	return VIGIL_CLIENT_OK;
}

vigil_client_err
vigil_client_label(vigil_client *c, const vigil_client_label_req *label,
    const vigil_client_callopts *opts, vigil_client_errinfo *reterr_info)
{
	vc_call         *call = NULL;
	vigil_client_err rv;

	if (c == NULL || label == NULL) {
		vc_info_set(reterr_info, VIGIL_CLIENT_EINVAL, NULL, "NULL client or label");
		return VIGIL_CLIENT_EINVAL;
	}
	rv = vc_call_get(c, false, &call, reterr_info);
	if (rv != VIGIL_CLIENT_OK)
		return rv;
	rv = vc_encode_label(call, label, reterr_info);
	if (rv != VIGIL_CLIENT_OK)
		goto out;
	vc_call_prepare(call, opts, label->card_id != NULL && label->card_id[0] != '\0' ?
	    label->card_id : label->txn_id);
	vc_call_run_sync(call);
	rv = call->err;
	if (rv != VIGIL_CLIENT_OK && reterr_info != NULL)
		*reterr_info = call->info;
out:
	vc_call_put(call);
	return rv;
}

vigil_client_err
vigil_client_replica_health(vigil_client *c, size_t i, const vigil_client_callopts *opts,
    vigil_client_health *ret_health, vigil_client_errinfo *reterr_info)
{
	Vigil__V1__HealthRequest hr = VIGIL__V1__HEALTH_REQUEST__INIT;
	Vigil__V1__Request       rq = VIGIL__V1__REQUEST__INIT;
	vc_call                 *call = NULL;
	vigil_client_err         rv;

	if (c == NULL || ret_health == NULL || i >= c->nrep) {
		vc_info_set(reterr_info, VIGIL_CLIENT_EINVAL, NULL, "NULL client or result, or no replica %zu", i);
		return VIGIL_CLIENT_EINVAL;
	}
	rv = vc_call_get(c, false, &call, reterr_info);
	if (rv != VIGIL_CLIENT_OK)
		return rv;
	rq.kind_case = VIGIL__V1__REQUEST__KIND_HEALTH;
	rq.health    = &hr;
	rv = vc_call_reserve(call, vigil__v1__request__get_packed_size(&rq), reterr_info);
	if (rv != VIGIL_CLIENT_OK)
		goto out;
	vigil__v1__request__pack(&rq, call->buf);
	call->kind = VC_KIND_HEALTH;
	call->txn_id[0] = '\0';
	vc_call_prepare(call, opts, "");
	/* this replica only */
	call->order[0] = (uint8_t) i;
	call->norder   = 1;
	vc_call_run_sync(call);
	rv = call->err;
	if (rv == VIGIL_CLIENT_OK)
		*ret_health = call->health;
	else if (reterr_info != NULL)
		*reterr_info = call->info;
out:
	vc_call_put(call);
	return rv;
}
