/* SPDX-License-Identifier: MIT */
/*
 * server/rep.c - the nng side of vigild: one REP socket listening on every
 * configured URL and a fixed set of asynchronous contexts (nng_ctx +
 * nng_aio) that receive requests. Where a request is scored depends on
 * whether scoring can wait on a disk:
 *
 * inline (fsync interval or never): the archive append is a write(2) into
 *   the page cache and the durability wait returns at once, so the aio
 *   callback runs the whole pipeline on the nng thread it was called on and
 *   sends the reply. No queue, no hand-off to another thread: the hand-off
 *   (a futex wake-up and two context switches per request) was most of
 *   vigild's cost next to a bare echo. Each nng thread gets its own
 *   srv_worker (scratch memory) the first time it runs a request.
 *
 * queued (fsync always): a reply waits for fdatasync, which nng's threads
 *   must never do, so a callback only moves the message into a bounded work
 *   queue served by `workers` threads, and starts the next receive once its
 *   reply is sent. A request that waited in the queue longer than
 *   request_timeout_ms is answered OVERLOADED without being scored.
 *
 * Backpressure, both modes: at most max_inflight requests are accepted at
 * once (queued, being scored, or having their reply sent); one more is
 * answered STATUS_OVERLOADED from the callback. There are max_inflight +
 * REP_SPARE_CTX contexts, so the spare contexts are what answers
 * OVERLOADED; clients beyond that wait in their connection (bounded by the
 * transport).
 *
 * Shutdown (srv_rep_stop): new requests get STATUS_UNAVAILABLE, accepted
 * ones are scored and answered, then the socket closes. A transaction is
 * acknowledged only by its reply, which is sent after store_score_commit, so
 * draining never loses an acknowledged transaction. The accepted count and
 * the draining flag are sequentially consistent atomics, entered before the
 * flag is read, so either a callback sees the flag or the drain sees its
 * request.
 */
#include <errno.h>
#include <sched.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "srv.h"

#define REP_SPARE_CTX 64
#define REP_SPIN      64 /* sched_yield rounds before a worker sleeps */
#define REP_CLOSE_WAIT_MS 3000

typedef enum rep_state {
	REP_IDLE = 0, /* not armed (closed) */
	REP_RECV,
	REP_WORK,     /* queued or on a worker */
	REP_SEND,
} rep_state;

typedef struct rep_conn {
	srv_rep  *rep;
	nng_ctx   ctx;
	nng_aio  *aio;
	rep_state state;
	nng_msg  *msg;
	uint64_t  enq_ns;
	bool      work;   /* this reply ends an accepted request (drain accounting) */
	bool      opened; /* ctx opened */
} rep_conn;

/* A worker made for an nng thread (inline mode), kept for freeing. */
typedef struct rep_tworker {
	srv_worker          *w;
	struct rep_tworker  *next;
} rep_tworker;

struct srv_rep {
	srv_server     *s;
	nng_socket      sock;
	bool            sock_open;
	nng_listener    listeners[SRV_MAX_LISTEN];
	uint32_t        nlisteners;
	rep_conn       *conns;
	uint32_t        nconns;

	uint64_t        id;          /* unique per process, never 0 */
	bool            inline_mode; /* score in the nng callback (no fsync wait) */
	uint32_t        max_inflight;
	_Atomic uint32_t pending;    /* accepted: queued + scoring + sending their reply */
	atomic_bool     draining;    /* new requests get UNAVAILABLE */

	pthread_mutex_t mu;
	pthread_cond_t  work_cv;  /* queue not empty, or closing */
	pthread_cond_t  drain_cv; /* pending reached 0 while draining */
	rep_conn      **ring;
	uint32_t        cap, head, len;
	_Atomic uint32_t qlen;    /* len, readable without mu (spinning workers) */
	uint32_t        nsleep;   /* workers waiting on work_cv */
	bool            closing;  /* workers exit when the queue is empty */
	atomic_bool     closed;   /* the socket is closed: do not re-arm */
	rep_tworker    *tworkers; /* inline mode: one per nng thread; under mu */

	pthread_t      *threads;
	srv_worker    **workers;
	uint32_t        nthreads;

	uint8_t        *overloaded; /* pre-encoded replies, answered from callbacks */
	size_t          overloaded_len;
	uint8_t        *unavailable;
	size_t          unavailable_len;
	uint8_t        *timedout;
	size_t          timedout_len;
};

static void rep_cb(void *arg);
static void rep_leave_unlocked(srv_rep *rep);

static vigil_err
rep_encode_static(Vigil__V1__Status status, const char *msg, uint8_t **ret, size_t *ret_len)
{
	Vigil__V1__Reply r;
	srv_wire_err e;
	uint8_t *buf;
	size_t n;

	srv_wire_err_set(&e, status, "", "%s", msg);
	srv_wire_error_reply(&e, &r);
	n = vigil__v1__reply__get_packed_size(&r);
	buf = malloc(n > 0 ? n : 1);
	if (buf == NULL)
		return VIGIL_ENOMEM;
	vigil__v1__reply__pack(&r, buf);
	*ret = buf;
	*ret_len = n;
	return VIGIL_OK;
}

static void
rep_recv(rep_conn *c)
{
	if (atomic_load(&c->rep->closed)) {
		c->state = REP_IDLE;
		return;
	}
	c->state = REP_RECV;
	nng_ctx_recv(c->ctx, c->aio);
}

static void
rep_send(rep_conn *c)
{
	c->state = REP_SEND;
	nng_aio_set_msg(c->aio, c->msg);
	c->msg = NULL;
	nng_ctx_send(c->ctx, c->aio);
}

/* Replaces the message body with a pre-encoded reply and sends it. */
static void
rep_send_static(rep_conn *c, const uint8_t *buf, size_t len)
{
	nng_msg_clear(c->msg);
	if (nng_msg_append(c->msg, buf, len) != 0) {
		/* No memory for even a tiny reply: drop it; the client times out. */
		nng_msg_free(c->msg);
		c->msg = NULL;
		rep_recv(c);
		return;
	}
	rep_send(c);
}

/*
 * Accepts one request into the drain accounting: false if draining (the
 * caller answers UNAVAILABLE). Entering before reading the flag pairs with
 * srv_rep_stop, which sets the flag before reading the count.
 */
static bool
rep_enter(srv_rep *rep)
{
	atomic_fetch_add(&rep->pending, 1);
	if (!atomic_load(&rep->draining))
		return true;
	rep_leave_unlocked(rep);
	return false;
}

/* Ends an accepted request (its reply was sent, or it was dropped). */
static void
rep_leave_unlocked(srv_rep *rep)
{
	if (atomic_fetch_sub(&rep->pending, 1) == 1 && atomic_load(&rep->draining)) {
		pthread_mutex_lock(&rep->mu);
		pthread_cond_broadcast(&rep->drain_cv);
		pthread_mutex_unlock(&rep->mu);
	}
}

/* Refuses a received request from the callback with a pre-encoded reply. */
static void
rep_refuse(rep_conn *c, Vigil__V1__Status status)
{
	srv_rep *rep = c->rep;

	srv_metrics_request(&rep->s->metrics, SRV_REQ_UNKNOWN, status);
	c->work = false;
	if (status == VIGIL__V1__STATUS__STATUS_UNAVAILABLE)
		rep_send_static(c, rep->unavailable, rep->unavailable_len);
	else
		rep_send_static(c, rep->overloaded, rep->overloaded_len);
}

static void rep_reply(srv_rep *rep, rep_conn *c, srv_worker *w, const Vigil__V1__Reply *reply);
static srv_worker *rep_thread_worker(srv_rep *rep);

static void
rep_cb(void *arg)
{
	rep_conn *c = arg;
	srv_rep *rep = c->rep;
	int rv = nng_aio_result(c->aio);

	switch (c->state) {
	case REP_RECV:
		if (rv != 0) {
			if (rv == NNG_ECLOSED || rv == NNG_ECANCELED) {
				c->state = REP_IDLE;
				return;
			}
			rep_recv(c); /* a transient receive error: keep serving */
			return;
		}
		c->msg = nng_aio_get_msg(c->aio);
		nng_aio_set_msg(c->aio, NULL);
		if (!rep_enter(rep)) {
			rep_refuse(c, VIGIL__V1__STATUS__STATUS_UNAVAILABLE);
			return;
		}
		if (rep->inline_mode) {
			srv_worker *w;

			/* pending counts this request: more than max_inflight is overload
			 * (the same test as in queued mode below). */
			if (atomic_load_explicit(&rep->pending, memory_order_relaxed) >
			    rep->max_inflight || (w = rep_thread_worker(rep)) == NULL) {
				rep_leave_unlocked(rep);
				rep_refuse(c, VIGIL__V1__STATUS__STATUS_OVERLOADED);
				return;
			}
			c->state = REP_WORK;
			c->work = true;
			rep_reply(rep, c, w, srv_request_handle(rep->s, w, nng_msg_body(c->msg),
			    nng_msg_len(c->msg)));
			return;
		}
		pthread_mutex_lock(&rep->mu);
		if (rep->len == rep->cap || atomic_load_explicit(&rep->pending,
		    memory_order_relaxed) > rep->max_inflight) {
			pthread_mutex_unlock(&rep->mu);
			rep_leave_unlocked(rep);
			rep_refuse(c, VIGIL__V1__STATUS__STATUS_OVERLOADED);
			return;
		}
		c->state = REP_WORK;
		c->work = true;
		c->enq_ns = vigil_mono_ns();
		rep->ring[(rep->head + rep->len) % rep->cap] = c;
		rep->len++;
		atomic_store_explicit(&rep->qlen, rep->len, memory_order_relaxed);
		atomic_store_explicit(&rep->s->metrics.queue_depth, rep->len, memory_order_relaxed);
		if (rep->nsleep > 0) /* spinning workers see qlen without a wake-up */
			pthread_cond_signal(&rep->work_cv);
		pthread_mutex_unlock(&rep->mu);
		return;
	case REP_SEND:
		if (rv != 0) {
			nng_msg *m = nng_aio_get_msg(c->aio);

			nng_aio_set_msg(c->aio, NULL);
			nng_msg_free(m);
		}
		if (c->work) {
			c->work = false;
			rep_leave_unlocked(rep);
		}
		if (rv == NNG_ECLOSED) {
			c->state = REP_IDLE;
			return;
		}
		rep_recv(c);
		return;
	default:
		return;
	}
}

/* Ends an accepted request without a reply (no memory, or the socket closed). */
static void
rep_drop(srv_rep *rep, rep_conn *c)
{
	nng_msg_free(c->msg);
	c->msg = NULL;
	c->work = false;
	rep_leave_unlocked(rep);
	rep_recv(c);
}

/* Packs reply into c->msg (reusing the request's buffer), releases the
 * worker's request and sends. The worker is free again before the send, so
 * a send that completes at once cannot find it busy. */
static void
rep_reply(srv_rep *rep, rep_conn *c, srv_worker *w, const Vigil__V1__Reply *reply)
{
	size_t n = srv_wire_reply_size(reply);

	nng_msg_clear(c->msg);
	if (nng_msg_realloc(c->msg, n) != 0) {
		srv_request_done(w);
		srv_log("nng: no memory for a %zu-byte reply; request dropped", n);
		rep_drop(rep, c);
		return;
	}
	srv_wire_reply_pack(reply, nng_msg_body(c->msg));
	srv_request_done(w);
	rep_send(c);
}

/*
 * Inline mode: the calling nng thread's worker, made on its first request.
 * nng's threads live as long as the process and serve one socket here, so a
 * thread-local pointer suffices; the owner check keeps a worker from an
 * earlier srv_rep (tests) from being used. NULL on ENOMEM.
 */
static _Atomic uint64_t rep_ids;  /* srv_rep instances made, for rep->id */
static _Thread_local srv_worker *rep_tls_worker;
static _Thread_local uint64_t rep_tls_owner; /* the rep->id rep_tls_worker belongs to */

static srv_worker *
rep_thread_worker(srv_rep *rep)
{
	rep_tworker *tw;

	if (rep_tls_owner == rep->id)
		return rep_tls_worker;
	tw = malloc(sizeof *tw);
	if (tw == NULL)
		return NULL;
	tw->w = srv_worker_new(rep->s);
	if (tw->w == NULL) {
		free(tw);
		return NULL;
	}
	pthread_mutex_lock(&rep->mu);
	tw->next = rep->tworkers;
	rep->tworkers = tw;
	pthread_mutex_unlock(&rep->mu);
	rep_tls_worker = tw->w;
	rep_tls_owner = rep->id;
	return tw->w;
}

typedef struct rep_thread_arg {
	srv_rep    *rep;
	srv_worker *w;
} rep_thread_arg;

static void *
rep_thread(void *arg)
{
	rep_thread_arg *ta = arg;
	srv_rep *rep = ta->rep;
	srv_worker *w = ta->w;
	uint64_t timeout_ns = (uint64_t)rep->s->cfg.request_timeout_ms * 1000000u;

	free(ta);
	for (;;) {
		rep_conn *c;

		/* A short yield-spin before sleeping: a worker that sleeps pays a
		 * futex wake-up on the next request, most of the reply time at
		 * moderate load. Bounded, and it yields the core meanwhile. */
		for (int spin = 0; spin < REP_SPIN && atomic_load_explicit(&rep->qlen,
		    memory_order_relaxed) == 0 && !atomic_load(&rep->closed); spin++)
			sched_yield();
		pthread_mutex_lock(&rep->mu);
		while (rep->len == 0 && !rep->closing) {
			rep->nsleep++;
			pthread_cond_wait(&rep->work_cv, &rep->mu);
			rep->nsleep--;
		}
		if (rep->len == 0) {
			pthread_mutex_unlock(&rep->mu);
			break;
		}
		c = rep->ring[rep->head];
		rep->head = (rep->head + 1) % rep->cap;
		rep->len--;
		atomic_store_explicit(&rep->qlen, rep->len, memory_order_relaxed);
		atomic_store_explicit(&rep->s->metrics.queue_depth, rep->len, memory_order_relaxed);
		pthread_mutex_unlock(&rep->mu);

		if (atomic_load(&rep->closed)) { /* drain timed out: nobody to answer */
			rep_drop(rep, c);
			continue;
		}
		if (vigil_mono_ns() - c->enq_ns > timeout_ns) {
			srv_metrics_request(&rep->s->metrics, SRV_REQ_UNKNOWN,
			    VIGIL__V1__STATUS__STATUS_OVERLOADED);
			nng_msg_clear(c->msg);
			if (nng_msg_append(c->msg, rep->timedout, rep->timedout_len) == 0)
				rep_send(c);
			else
				rep_drop(rep, c);
			continue;
		}
		rep_reply(rep, c, w, srv_request_handle(rep->s, w, nng_msg_body(c->msg),
		    nng_msg_len(c->msg)));
	}
	return NULL;
}

static void
rep_free(srv_rep *rep)
{
	if (rep->sock_open) {
		nng_close(rep->sock);
		rep->sock_open = false;
	}
	for (uint32_t i = 0; i < rep->nconns; i++) {
		if (rep->conns[i].aio != NULL) {
			nng_aio_stop(rep->conns[i].aio);
			nng_aio_free(rep->conns[i].aio);
		}
		if (rep->conns[i].msg != NULL)
			nng_msg_free(rep->conns[i].msg);
	}
	for (uint32_t i = 0; rep->workers != NULL && i < rep->s->cfg.workers; i++)
		srv_worker_free(rep->workers[i]);
	while (rep->tworkers != NULL) {
		rep_tworker *tw = rep->tworkers;

		rep->tworkers = tw->next;
		srv_worker_free(tw->w);
		free(tw);
	}
	free(rep->workers);
	free(rep->threads);
	free(rep->conns);
	free(rep->ring);
	free(rep->overloaded);
	free(rep->unavailable);
	free(rep->timedout);
	pthread_mutex_destroy(&rep->mu);
	pthread_cond_destroy(&rep->work_cv);
	pthread_cond_destroy(&rep->drain_cv);
	free(rep);
}

vigil_err
srv_rep_start(srv_server *s, srv_rep **ret_rep, char *errbuf, size_t errlen)
{
	const srv_config *cfg = &s->cfg;
	srv_rep *rep;
	vigil_err rv = VIGIL_OK;
	size_t recvmax;
	int nrv;

	rep = calloc(1, sizeof *rep);
	if (rep == NULL) {
		snprintf(errbuf, errlen, "nng: out of memory");
		return VIGIL_ENOMEM;
	}
	rep->s = s;
	pthread_mutex_init(&rep->mu, NULL);
	pthread_cond_init(&rep->work_cv, NULL);
	pthread_cond_init(&rep->drain_cv, NULL);
	atomic_init(&rep->closed, false);
	atomic_init(&rep->draining, false);
	atomic_init(&rep->pending, 0);
	rep->id = atomic_fetch_add(&rep_ids, 1) + 1;
	rep->inline_mode = cfg->fsync != STORE_FSYNC_ALWAYS;
	rep->max_inflight = cfg->max_inflight;
	rep->cap = cfg->max_inflight;
	rep->nconns = cfg->max_inflight + REP_SPARE_CTX;
	rep->ring = calloc(rep->cap, sizeof *rep->ring);
	rep->conns = calloc(rep->nconns, sizeof *rep->conns);
	rep->threads = calloc(cfg->workers, sizeof *rep->threads);
	rep->workers = calloc(cfg->workers, sizeof *rep->workers);
	if (rep->ring == NULL || rep->conns == NULL || rep->threads == NULL ||
	    rep->workers == NULL) {
		snprintf(errbuf, errlen, "nng: out of memory for %u contexts", rep->nconns);
		rv = VIGIL_ENOMEM;
		goto out;
	}
	if (rep_encode_static(VIGIL__V1__STATUS__STATUS_OVERLOADED,
	    "server busy: work queue full, retry later (same txn_id is safe)",
	    &rep->overloaded, &rep->overloaded_len) != VIGIL_OK ||
	    rep_encode_static(VIGIL__V1__STATUS__STATUS_UNAVAILABLE,
	    "server shutting down: retry on another replica (same txn_id is safe)",
	    &rep->unavailable, &rep->unavailable_len) != VIGIL_OK ||
	    rep_encode_static(VIGIL__V1__STATUS__STATUS_OVERLOADED,
	    "server busy: request waited longer than request_timeout_ms in the queue",
	    &rep->timedout, &rep->timedout_len) != VIGIL_OK) {
		snprintf(errbuf, errlen, "nng: out of memory");
		rv = VIGIL_ENOMEM;
		goto out;
	}

	if ((nrv = nng_rep0_open(&rep->sock)) != 0) {
		snprintf(errbuf, errlen, "nng: cannot open REP socket: %s", nng_strerror(nrv));
		rv = VIGIL_EIO;
		goto out;
	}
	rep->sock_open = true;
	/* The transport drops connections whose messages exceed twice the
	 * configured cap; between the two the client gets STATUS_TOO_BIG. */
	recvmax = (size_t)cfg->max_message_bytes * 2;
	if ((nrv = nng_socket_set_size(rep->sock, NNG_OPT_RECVMAXSZ, recvmax)) != 0) {
		snprintf(errbuf, errlen, "nng: cannot set receive limit: %s", nng_strerror(nrv));
		rv = VIGIL_EIO;
		goto out;
	}

	for (uint32_t i = 0; !rep->inline_mode && i < cfg->workers; i++) {
		rep_thread_arg *ta;

		rep->workers[i] = srv_worker_new(s);
		ta = malloc(sizeof *ta);
		if (rep->workers[i] == NULL || ta == NULL) {
			free(ta);
			srv_worker_free(rep->workers[i]);
			rep->workers[i] = NULL;
			snprintf(errbuf, errlen, "workers: out of memory");
			rv = VIGIL_ENOMEM;
			goto out;
		}
		ta->rep = rep;
		ta->w = rep->workers[i];
		if ((nrv = pthread_create(&rep->threads[i], NULL, rep_thread, ta)) != 0) {
			free(ta);
			srv_worker_free(rep->workers[i]);
			rep->workers[i] = NULL;
			snprintf(errbuf, errlen, "workers: cannot start a thread: %s", strerror(nrv));
			rv = VIGIL_EIO;
			goto out;
		}
		rep->nthreads++;
	}

	for (uint32_t i = 0; i < rep->nconns; i++) {
		rep_conn *c = &rep->conns[i];

		c->rep = rep;
		if ((nrv = nng_aio_alloc(&c->aio, rep_cb, c)) != 0 ||
		    (nrv = nng_ctx_open(&c->ctx, rep->sock)) != 0) {
			snprintf(errbuf, errlen, "nng: cannot open context %u: %s", i,
			    nng_strerror(nrv));
			rv = VIGIL_EIO;
			goto out;
		}
		c->opened = true;
	}
	for (uint32_t i = 0; i < cfg->nlisten; i++) {
		if ((nrv = nng_listen(rep->sock, cfg->listen[i], &rep->listeners[i], 0)) != 0) {
			snprintf(errbuf, errlen, "nng: cannot listen on %s: %s", cfg->listen[i],
			    nng_strerror(nrv));
			rv = nrv == NNG_EADDRINUSE ? VIGIL_EBUSY : VIGIL_EIO;
			goto out;
		}
		rep->nlisteners++;
	}
	for (uint32_t i = 0; i < rep->nconns; i++)
		rep_recv(&rep->conns[i]);
	*ret_rep = rep;
	rep = NULL;
out:
	if (rep != NULL) {
		atomic_store(&rep->closed, true);
		pthread_mutex_lock(&rep->mu);
		rep->closing = true;
		pthread_cond_broadcast(&rep->work_cv);
		pthread_mutex_unlock(&rep->mu);
		for (uint32_t i = 0; i < rep->nthreads; i++)
			pthread_join(rep->threads[i], NULL);
		rep_free(rep);
	}
	return rv;
}

/* nng_close on a helper thread, waited for at most ms. */
typedef struct rep_closer {
	pthread_mutex_t mu;
	pthread_cond_t  cv;
	nng_socket      sock;
	bool            done;
} rep_closer;

static void *
rep_closer_main(void *arg)
{
	rep_closer *rc = arg;

	nng_close(rc->sock);
	pthread_mutex_lock(&rc->mu);
	rc->done = true;
	pthread_cond_signal(&rc->cv);
	pthread_mutex_unlock(&rc->mu);
	return NULL;
}

static bool
rep_close_bounded(srv_rep *rep, int ms)
{
	static rep_closer rc = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };
	struct timespec deadline;
	pthread_t t;
	bool done;

	rc.sock = rep->sock;
	rc.done = false;
	if (pthread_create(&t, NULL, rep_closer_main, &rc) != 0) {
		nng_close(rep->sock);
		return true;
	}
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += ms / 1000;
	deadline.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&rc.mu);
	while (!rc.done)
		if (pthread_cond_timedwait(&rc.cv, &rc.mu, &deadline) == ETIMEDOUT)
			break;
	done = rc.done;
	pthread_mutex_unlock(&rc.mu);
	if (done)
		pthread_join(t, NULL);
	else
		pthread_detach(t);
	return done;
}

bool
srv_rep_stop(srv_rep *rep, uint32_t timeout_ms)
{
	struct timespec deadline;
	bool timed_out = false;
	uint32_t left;

	if (rep == NULL)
		return true;
	for (uint32_t i = 0; i < rep->nlisteners; i++)
		nng_listener_close(rep->listeners[i]);

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += timeout_ms / 1000;
	deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	atomic_store(&rep->draining, true);
	pthread_mutex_lock(&rep->mu);
	while (atomic_load(&rep->pending) > 0 && !timed_out)
		timed_out = pthread_cond_timedwait(&rep->drain_cv, &rep->mu, &deadline) == ETIMEDOUT;
	left = atomic_load(&rep->pending);
	pthread_mutex_unlock(&rep->mu);
	if (left > 0)
		srv_log("shutdown: %u requests still in flight after %u ms; closing anyway "
		    "(they were not acknowledged)", left, timeout_ms);
	/* The last replies are handed to the transport; give it a moment to
	 * write them before the pipes close. */
	usleep(50 * 1000);

	/* From here nothing is re-armed. Workers drop what is left and exit;
	 * then every aio is stopped (its callback has returned and will not
	 * run again) and every context closed, so the socket close below has
	 * no operation of ours to wait for. */
	atomic_store(&rep->closed, true);
	pthread_mutex_lock(&rep->mu);
	rep->closing = true;
	pthread_cond_broadcast(&rep->work_cv);
	pthread_mutex_unlock(&rep->mu);
	for (uint32_t i = 0; i < rep->nthreads; i++)
		pthread_join(rep->threads[i], NULL);
	rep->nthreads = 0;
	for (uint32_t i = 0; i < rep->nconns; i++)
		nng_aio_stop(rep->conns[i].aio);
	for (uint32_t i = 0; i < rep->nconns; i++)
		if (rep->conns[i].opened) {
			nng_ctx_close(rep->conns[i].ctx);
			rep->conns[i].opened = false;
		}
	if (!rep_close_bounded(rep, REP_CLOSE_WAIT_MS)) {
		/* nng 1.5 can wait forever in nng_close for a pipe that never
		 * finishes closing; everything acknowledged is already in the
		 * store, so the caller finishes without it (and leaks rep). */
		srv_log("shutdown: nng socket close did not finish within %d ms; "
		    "exiting without it", REP_CLOSE_WAIT_MS);
		return false;
	}
	rep->sock_open = false;
	rep_free(rep);
	return true;
}
