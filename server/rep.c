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
 *   At most inline_max requests are scored on nng's threads at once (one
 *   fewer than nng's pool): the others go to the work queue below. Without
 *   that limit every nng thread could be busy scoring, nothing would read
 *   the sockets, and the backlog would wait in the kernel where no limit of
 *   ours sees it (4,000 requests in flight gave p50 112 ms and not one
 *   OVERLOADED): with a thread free to read, the excess reaches the queue,
 *   whose length and waiting time are bounded. The threads scoring inline
 *   drain that queue themselves when they finish (rep_inline_drain), so an
 *   overflowing request wakes no worker: the workers wait, as a fallback,
 *   for what an nng thread without scratch memory could not score.
 *
 * queued (fsync always): a reply waits for fdatasync, which nng's threads
 *   must never do, so a callback only moves the message into a bounded work
 *   queue served by `workers` threads, and starts the next receive once its
 *   reply is sent.
 *
 * Backpressure, both modes: at most max_inflight requests are accepted at
 * once (queued, being scored, or having their reply sent); one more is
 * answered STATUS_OVERLOADED from the callback. A request that waited in
 * the queue longer than queue_timeout_ms (or request_timeout_ms, if
 * shorter) is answered OVERLOADED without being scored: its client has
 * likely given up and retried elsewhere.
 *
 * Before our callback sees a request it may also have waited in nng's own
 * task queue (one FIFO for every socket and timer callback of the process),
 * where nothing of ours can time it: when every thread is busy scoring, or
 * the process was stalled (no CPU, swapping, SIGSTOP), received requests
 * pile up there. A probe measures that wait: every 10 ms a thread of ours
 * completes an aio whose callback runs through the same FIFO (not an nng
 * sleep: nng 1.5's timer thread spins through the last millisecond of
 * every sleep it times, 10% of vigild's CPU under load with a 10 ms one). While the probe is overdue by more
 * than the queue limit, the request a callback is handed was queued before
 * the probe's completion, so it waited at least that long; and after a probe
 * ran that late, requests are refused until a probe comes back in time (the
 * refusals are cheap, so the backlog drains within a few probes). There are max_inflight +
 * REP_SPARE_CTX contexts, so the spare contexts are what answers
 * OVERLOADED; clients beyond that wait in their connection (bounded by the
 * transport).
 *
 * Parked contexts: nng's REP hands a request to the context that has
 * waited longest, so with every context armed the requests would cycle
 * through all max_inflight + REP_SPARE_CTX of them (1,088 by default), each
 * one's context, aio and rep_conn cold in the cache again. Only 32 to 64
 * wait armed (REP_ARM_LOW, REP_ARM_HIGH); a context whose reply went out
 * while 64 wait is parked on a stack, and each request that leaves fewer
 * than 32 waiting arms the context parked last. A burst arms one more per
 * request it brings, up to every context, as before; in steady load the
 * contexts in use stay few and warm.
 *
 * Per connection: a request counts against its pipe from receipt until its
 * reply (a refusal too) is handed to the pipe; over
 * max_inflight_per_connection it is answered OVERLOADED, so one client
 * cannot take the queue and the contexts every client shares. nng's REP
 * keeps a reply on its context until the pipe takes it, so a peer that
 * never reads would hold every context: once a second (from the probe) a
 * pipe over the cap that took no reply for a second is closed
 * (rep_pipe_sweep).
 *
 * Connections: nng 1.5 has no connection limit, so a pipe callback counts
 * them (all listeners together) and closes a new one over max_connections
 * before it is added to the socket. tls+tcp:// listeners get one TLS
 * configuration (certificate, key; with a CA, a client certificate signed
 * by it is required); ipc:// sockets are created 0660, in ipc_group if set.
 * The files that configuration names are checked, and the TLS configuration
 * made from them, in rep_check.c. A connection to a tls+tcp:// listener
 * that is no pipe [tls] handshake_timeout_ms after it was first seen is
 * shut down (handshake.c, from the probe once a second).
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
#include <grp.h>
#include <netinet/in.h>
#include <sched.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/supplemental/tls/tls.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "handshake.h"
#include "hashtab.h"
#include "srv.h"
#include "stages.h"

#define REP_SPARE_CTX 64
/* Contexts waiting for a request (armed): at least REP_ARM_LOW, and one
 * whose reply went out is parked instead of re-armed while REP_ARM_HIGH
 * wait (see "Parked contexts" above). */
#define REP_ARM_LOW   32
#define REP_ARM_HIGH  64
#define REP_INLINE_MAX 15 /* nng 1.5.2's pool is 2 x CPUs threads, at most 16 */
#define REP_SPIN      64 /* sched_yield rounds before a worker sleeps */
#define REP_CLOSE_WAIT_MS 3000
#define REP_UNREAD_MS 1000 /* over the per-connection cap with no reply taken: closed */

typedef enum rep_state {
	REP_IDLE = 0, /* not armed (closed) */
	REP_RECV,
	REP_WORK,     /* queued or on a worker */
	REP_SEND,
	REP_PARKED,   /* no receive posted: on the parked stack */
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
	bool      held;   /* counted in its connection's rep_pipe.held */
	uint32_t  pipe_id; /* the connection the request came on, when held */
} rep_conn;

/* A connection counted against max_connections (by nng pipe id), and
 * its requests: received and not yet answered (being scored, queued, or
 * their reply, a refusal included, waiting to be written). */
typedef struct rep_pipe {
	uint32_t       id;
	nng_pipe       pipe;
	uint32_t       held;
	uint64_t       sent;        /* replies handed over (counted, not timed: a clock
	                             * read a request costs more than the sweep needs) */
	uint64_t       swept_sent;  /* sent at the last sweep that found it changed */
	int64_t        progress_ms; /* that sweep's time (or when it opened), mono ms */
	bool           closing;     /* closed for not reading its replies */
	bool           hs_known;    /* peer given to srv_hs_pipe_add */
	nng_sockaddr   peer;
	UT_hash_handle hh;
} rep_pipe;

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
	uint32_t        inline_max;  /* inline mode: at most this many on nng's threads */
	_Atomic uint32_t inline_busy;
	uint32_t        max_inflight;
	uint32_t        conn_max;    /* max_inflight_per_connection; 0: no cap */
	uint64_t        queue_timeout_ns;
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
	uint8_t        *conn_over;
	size_t          conn_over_len;

	nng_aio        *probe;        /* nng's queue delay (see above) */
	pthread_t       probe_thr;    /* completes probe when due (rep_probe_main) */
	bool            probe_thr_running;
	pthread_mutex_t probe_mu;     /* guards probe_idle, probe_stop */
	pthread_cond_t  probe_cv;     /* CLOCK_MONOTONIC */
	bool            probe_idle;   /* the last probe's callback ran: the next is due */
	bool            probe_stop;
	_Atomic int64_t probe_due_ns; /* when the pending probe should run */
	_Atomic int64_t probe_lag_ns; /* how late the last one ran */

	_Atomic uint32_t armed;      /* contexts with a receive posted, not yet called back */
	pthread_mutex_t park_mu;     /* guards parked, nparked */
	rep_conn      **parked;      /* a stack: the context parked last is armed first */
	uint32_t        nparked;

	pthread_mutex_t pipe_mu;     /* guards pipes, npipes, refused_* */
	rep_pipe       *pipes;
	uint32_t        npipes;
	int64_t         refused_log_ms; /* last "connection refused" line */
	uint64_t        refused_quiet;  /* refused since that line */
	int64_t         sweep_due_ns;   /* next rep_pipe_sweep (probe callback only) */
	srv_hs         *hs;             /* tls+tcp listeners, handshake_timeout_ms > 0 */
};

static void rep_cb(void *arg);
static void rep_leave_unlocked(srv_rep *rep);
static void rep_pipe_sweep(srv_rep *rep);

#define REP_PROBE_MS 10

static void
rep_probe_cb(void *arg)
{
	srv_rep *rep = arg;
	int64_t now, due;

	if (nng_aio_result(rep->probe) != 0) /* stopped */
		return;
	now = (int64_t)vigil_mono_ns();
	due = atomic_load_explicit(&rep->probe_due_ns, memory_order_relaxed);
	atomic_store_explicit(&rep->probe_lag_ns, now > due ? now - due : 0,
	    memory_order_relaxed);
	if (atomic_load(&rep->closed))
		return;
	if ((rep->conn_max > 0 || rep->hs != NULL) && now >= rep->sweep_due_ns) {
		uint32_t n;

		rep->sweep_due_ns = now + 1000000000LL;
		if (rep->conn_max > 0)
			rep_pipe_sweep(rep);
		if (rep->hs != NULL && (n = srv_hs_sweep(rep->hs, now / 1000000)) > 0) {
			atomic_fetch_add_explicit(&rep->s->metrics.tls_handshake_timeouts, n,
			    memory_order_relaxed);
			srv_log("tls: closed %u connection(s) that did not complete the TLS handshake "
			    "within %u ms", n, rep->s->cfg.tls_handshake_timeout_ms);
		}
	}
	atomic_store_explicit(&rep->probe_due_ns, now + REP_PROBE_MS * 1000000LL,
	    memory_order_relaxed);
	pthread_mutex_lock(&rep->probe_mu);
	rep->probe_idle = true;
	pthread_cond_signal(&rep->probe_cv);
	pthread_mutex_unlock(&rep->probe_mu);
}

/* The probe's timer: once the last probe's callback has run, waits until
 * the next is due and completes the aio, which queues its callback behind
 * whatever nng's task queue holds. Ends on probe_stop, or when the aio is
 * stopped. */
static void *
rep_probe_main(void *arg)
{
	srv_rep *rep = arg;

	pthread_mutex_lock(&rep->probe_mu);
	for (;;) {
		int64_t due;
		struct timespec ts;

		while (!rep->probe_stop && !rep->probe_idle)
			pthread_cond_wait(&rep->probe_cv, &rep->probe_mu);
		if (rep->probe_stop)
			break;
		due = atomic_load_explicit(&rep->probe_due_ns, memory_order_relaxed);
		ts.tv_sec = (time_t)(due / 1000000000LL);
		ts.tv_nsec = (long)(due % 1000000000LL);
		while (!rep->probe_stop &&
		    pthread_cond_timedwait(&rep->probe_cv, &rep->probe_mu, &ts) != ETIMEDOUT)
			;
		if (rep->probe_stop)
			break;
		rep->probe_idle = false;
		pthread_mutex_unlock(&rep->probe_mu);
		if (!nng_aio_begin(rep->probe)) /* stopped */
			return NULL;
		nng_aio_finish(rep->probe, 0);
		pthread_mutex_lock(&rep->probe_mu);
	}
	pthread_mutex_unlock(&rep->probe_mu);
	return NULL;
}

/* Ends rep_probe_main (before the probe aio is stopped). Idempotent. */
static void
rep_probe_thread_stop(srv_rep *rep)
{
	if (!rep->probe_thr_running)
		return;
	pthread_mutex_lock(&rep->probe_mu);
	rep->probe_stop = true;
	pthread_cond_signal(&rep->probe_cv);
	pthread_mutex_unlock(&rep->probe_mu);
	pthread_join(rep->probe_thr, NULL);
	rep->probe_thr_running = false;
}

/* How long requests now leaving nng's queue waited in it, at least (an
 * overdue probe), or recently (the last probe's delay). */
static int64_t
rep_nng_lag_ns(srv_rep *rep)
{
	int64_t now = (int64_t)vigil_mono_ns();
	int64_t due = atomic_load_explicit(&rep->probe_due_ns, memory_order_relaxed);
	int64_t lag = atomic_load_explicit(&rep->probe_lag_ns, memory_order_relaxed);

	return due != 0 && now - due > lag ? now - due : lag;
}

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

/*
 * Ends c's request in its connection's count (no-op if it holds none).
 * sent: its reply was handed to the connection, which therefore took the
 * one before it: the peer reads (rep_pipe_sweep).
 */
static void
rep_pipe_release(rep_conn *c, bool sent)
{
	srv_rep *rep = c->rep;
	rep_pipe *e;

	if (!c->held)
		return;
	c->held = false;
	pthread_mutex_lock(&rep->pipe_mu);
	HASH_FIND(hh, rep->pipes, &c->pipe_id, sizeof c->pipe_id, e);
	if (e != NULL) {
		if (e->held > 0)
			e->held--;
		if (sent)
			e->sent++;
	}
	pthread_mutex_unlock(&rep->pipe_mu);
}

/*
 * Counts a received request against its connection (the message's pipe):
 * false if the connection is over max_inflight_per_connection (the caller
 * answers OVERLOADED). Refusals count too until their reply is handed to
 * the connection. A pipe not in the table (already gone) is not capped.
 */
static bool
rep_pipe_admit(rep_conn *c)
{
	srv_rep *rep = c->rep;
	nng_pipe p = nng_msg_get_pipe(c->msg);
	uint32_t id = (uint32_t)nng_pipe_id(p);
	bool ok = true;
	rep_pipe *e;

	if (rep->conn_max == 0 || nng_pipe_id(p) <= 0)
		return true;
	pthread_mutex_lock(&rep->pipe_mu);
	HASH_FIND(hh, rep->pipes, &id, sizeof id, e);
	if (e != NULL) {
		c->held = true;
		c->pipe_id = id;
		ok = ++e->held <= rep->conn_max;
	}
	pthread_mutex_unlock(&rep->pipe_mu);
	return ok;
}

/*
 * Once a second (from the probe): closes every connection that holds more
 * than max_inflight_per_connection requests and replies while none of its
 * replies was handed over for REP_UNREAD_MS. Such a peer sends without
 * reading: its replies wait for socket buffers that never drain, each
 * holding one of the max_inflight + 64 contexts, until it holds them all
 * and nobody else gets an answer. A slow vigild is not mistaken for it:
 * the refusals over the cap are answered at once. Closing drops the queued
 * replies (nng finishes their sends) and so frees the contexts. Progress is
 * the count of replies handed over, timed by the sweep that finds it
 * changed, so a connection goes 1-2 s after its last reply, as when each
 * reply read the clock.
 */
static void
rep_pipe_sweep(srv_rep *rep)
{
	nng_pipe shut[16];
	uint32_t nshut = 0, held = 0;
	int64_t now = (int64_t)(vigil_mono_ns() / 1000000);
	rep_pipe *e, *tmp;

	pthread_mutex_lock(&rep->pipe_mu);
	HASH_ITER(hh, rep->pipes, e, tmp) {
		if (nshut == sizeof shut / sizeof shut[0])
			break; /* the rest next second */
		if (e->sent != e->swept_sent) {
			e->swept_sent = e->sent;
			e->progress_ms = now;
		}
		if (!e->closing && e->held > rep->conn_max &&
		    now - e->progress_ms >= REP_UNREAD_MS) {
			e->closing = true;
			held = e->held;
			shut[nshut++] = e->pipe;
		}
	}
	pthread_mutex_unlock(&rep->pipe_mu);
	for (uint32_t i = 0; i < nshut; i++)
		nng_pipe_close(shut[i]);
	if (nshut > 0) {
		atomic_fetch_add_explicit(&rep->s->metrics.nng_conn_unread, nshut,
		    memory_order_relaxed);
		srv_log("nng: closed %u connection(s) not reading their replies (one held %u "
		    "requests and replies, over max_inflight_per_connection %u, none taken for "
		    "%d ms)", nshut, held, rep->conn_max, REP_UNREAD_MS);
	}
}

static void
rep_arm(rep_conn *c)
{
	c->state = REP_RECV;
	atomic_fetch_add_explicit(&c->rep->armed, 1, memory_order_relaxed);
	nng_ctx_recv(c->ctx, c->aio);
}

/* The context is ready for its next request: armed, or parked if enough
 * others wait already. */
static void
rep_recv(rep_conn *c)
{
	srv_rep *rep = c->rep;

	rep_pipe_release(c, false);
	if (atomic_load(&rep->closed)) {
		c->state = REP_IDLE;
		return;
	}
	if (atomic_load_explicit(&rep->armed, memory_order_relaxed) >= REP_ARM_HIGH) {
		pthread_mutex_lock(&rep->park_mu);
		c->state = REP_PARKED;
		rep->parked[rep->nparked++] = c;
		pthread_mutex_unlock(&rep->park_mu);
		return;
	}
	rep_arm(c);
}

/* A context took a request: under REP_ARM_LOW still armed, the context
 * parked last is armed (a burst arms one per request it brings). */
static void
rep_unpark(srv_rep *rep)
{
	rep_conn *c = NULL;

	if (atomic_fetch_sub_explicit(&rep->armed, 1, memory_order_relaxed) > REP_ARM_LOW)
		return;
	pthread_mutex_lock(&rep->park_mu);
	if (rep->nparked > 0 && !atomic_load(&rep->closed))
		c = rep->parked[--rep->nparked];
	pthread_mutex_unlock(&rep->park_mu);
	if (c != NULL)
		rep_arm(c);
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
 * Accepts one request into the drain accounting, under max_inflight: false
 * if draining (*ret_over false: the caller answers UNAVAILABLE) or if
 * max_inflight requests are already accepted (*ret_over true: OVERLOADED).
 * The count grows only by a compare-and-swap below the limit, so callbacks
 * racing on a burst never count one another's refusals: a request is
 * refused only at the limit. Entering before reading the flag pairs with
 * srv_rep_stop, which sets the flag before reading the count.
 */
static bool
rep_enter(srv_rep *rep, bool *ret_over)
{
	uint32_t p = atomic_load(&rep->pending);

	*ret_over = false;
	do {
		if (p >= rep->max_inflight) {
			*ret_over = !atomic_load(&rep->draining);
			return false;
		}
	} while (!atomic_compare_exchange_weak(&rep->pending, &p, p + 1));
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
static bool rep_slot_take(srv_rep *rep);
static void rep_inline_drain(srv_rep *rep, srv_worker *w);
static void rep_inline_help(srv_rep *rep);

static void
rep_cb(void *arg)
{
	rep_conn *c = arg;
	srv_rep *rep = c->rep;
	int rv = nng_aio_result(c->aio);
	bool admit, over, wake = false;

	switch (c->state) {
	case REP_RECV:
		rep_unpark(rep);
		if (rv != 0) {
			if (rv == NNG_ECLOSED || rv == NNG_ECANCELED) {
				c->state = REP_IDLE;
				return;
			}
			rep_recv(c); /* a transient receive error: keep serving */
			return;
		}
		c->msg = nng_aio_get_msg(c->aio);
		VIGIL_STAGE_BEGIN(VIGIL_ST_RECV, VIGIL_ST_END);
		nng_aio_set_msg(c->aio, NULL);
		admit = rep_pipe_admit(c);
		if (!admit) {
			if (atomic_load(&rep->draining)) {
				rep_refuse(c, VIGIL__V1__STATUS__STATUS_UNAVAILABLE);
				return;
			}
			atomic_fetch_add_explicit(&rep->s->metrics.conn_overloaded, 1,
			    memory_order_relaxed);
			srv_metrics_request(&rep->s->metrics, SRV_REQ_UNKNOWN,
			    VIGIL__V1__STATUS__STATUS_OVERLOADED);
			c->work = false;
			rep_send_static(c, rep->conn_over, rep->conn_over_len);
			return;
		}
		if (!rep_enter(rep, &over)) {
			rep_refuse(c, over ? VIGIL__V1__STATUS__STATUS_OVERLOADED :
			    VIGIL__V1__STATUS__STATUS_UNAVAILABLE);
			return;
		}
		if ((uint64_t)rep_nng_lag_ns(rep) > rep->queue_timeout_ns) {
			rep_leave_unlocked(rep);
			atomic_fetch_add_explicit(&rep->s->metrics.queue_timeouts, 1,
			    memory_order_relaxed);
			srv_metrics_request(&rep->s->metrics, SRV_REQ_UNKNOWN,
			    VIGIL__V1__STATUS__STATUS_OVERLOADED);
			c->work = false;
			rep_send_static(c, rep->timedout, rep->timedout_len);
			return;
		}
		if (rep->inline_mode && rep_slot_take(rep)) {
			srv_worker *w = rep_thread_worker(rep);

			if (w != NULL) {
				const Vigil__V1__Reply *reply;

				c->state = REP_WORK;
				c->work = true;
				VIGIL_STAGE(VIGIL_ST_HANDLE);
				reply = srv_request_handle(rep->s, w, nng_msg_body(c->msg),
				    nng_msg_len(c->msg));
				VIGIL_STAGE(VIGIL_ST_PACK);
				rep_reply(rep, c, w, reply);
				VIGIL_STAGE_DONE(VIGIL_ST_RECV, VIGIL_ST_END);
				rep_inline_drain(rep, w);
				return;
			}
			/* no memory for a worker: the worker threads take it */
			atomic_fetch_sub(&rep->inline_busy, 1);
			wake = true;
		}
		pthread_mutex_lock(&rep->mu);
		if (rep->len == rep->cap) {
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
		atomic_store(&rep->qlen, rep->len); /* before the slot test: rep_inline_drain */
		atomic_fetch_add_explicit(&rep->s->metrics.queued, 1, memory_order_relaxed);
		atomic_store_explicit(&rep->s->metrics.queue_depth, rep->len, memory_order_relaxed);
		if ((!rep->inline_mode || wake) && rep->nsleep > 0)
			pthread_cond_signal(&rep->work_cv); /* spinning workers see qlen */
		pthread_mutex_unlock(&rep->mu);
		if (rep->inline_mode && !wake)
			rep_inline_help(rep);
		return;
	case REP_SEND:
		VIGIL_STAGE(VIGIL_ST_SENT_CB);
		if (rv != 0) {
			nng_msg *m = nng_aio_get_msg(c->aio);

			nng_aio_set_msg(c->aio, NULL);
			nng_msg_free(m);
		}
		if (c->work) {
			c->work = false;
			rep_leave_unlocked(rep);
		}
		rep_pipe_release(c, rv == 0);
		if (rv == NNG_ECLOSED) {
			c->state = REP_IDLE;
			return;
		}
		rep_recv(c);
		VIGIL_STAGE(VIGIL_ST_SENT_CB_END);
		VIGIL_STAGE_DONE(VIGIL_ST_SENT_CB, VIGIL_ST_SENT_CB_END);
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
	VIGIL_STAGE(VIGIL_ST_RELEASE);
	srv_request_done(w);
	VIGIL_STAGE(VIGIL_ST_SEND);
	rep_send(c);
	VIGIL_STAGE(VIGIL_ST_END);
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

/* Answers a request taken from the queue, on w: dropped once the socket
 * closed (a drain that timed out: nobody to answer), OVERLOADED unscored if
 * it waited longer than the queue timeout, else scored. */
static void
rep_run_queued(srv_rep *rep, rep_conn *c, srv_worker *w)
{
	if (atomic_load(&rep->closed)) {
		rep_drop(rep, c);
		return;
	}
	if (vigil_mono_ns() - c->enq_ns > rep->queue_timeout_ns) {
		srv_metrics_request(&rep->s->metrics, SRV_REQ_UNKNOWN,
		    VIGIL__V1__STATUS__STATUS_OVERLOADED);
		atomic_fetch_add_explicit(&rep->s->metrics.queue_timeouts, 1,
		    memory_order_relaxed);
		nng_msg_clear(c->msg);
		if (nng_msg_append(c->msg, rep->timedout, rep->timedout_len) == 0)
			rep_send(c);
		else
			rep_drop(rep, c);
		return;
	}
	rep_reply(rep, c, w, srv_request_handle(rep->s, w, nng_msg_body(c->msg),
	    nng_msg_len(c->msg)));
}

/* Takes the queue's oldest request (mu held, the queue not empty). */
static rep_conn *
rep_pop_locked(srv_rep *rep)
{
	rep_conn *c = rep->ring[rep->head];

	rep->head = (rep->head + 1) % rep->cap;
	rep->len--;
	atomic_store_explicit(&rep->qlen, rep->len, memory_order_relaxed);
	atomic_store_explicit(&rep->s->metrics.queue_depth, rep->len, memory_order_relaxed);
	return c;
}

/* The queue's oldest request, or NULL if it is empty. */
static rep_conn *
rep_pop(srv_rep *rep)
{
	rep_conn *c = NULL;

	if (atomic_load_explicit(&rep->qlen, memory_order_relaxed) == 0)
		return NULL;
	pthread_mutex_lock(&rep->mu);
	if (rep->len > 0)
		c = rep_pop_locked(rep);
	pthread_mutex_unlock(&rep->mu);
	return c;
}

/* Inline mode: one of the inline_max slots on nng's threads, if one is free. */
static bool
rep_slot_take(srv_rep *rep)
{
	uint32_t n = atomic_load(&rep->inline_busy);

	while (n < rep->inline_max)
		if (atomic_compare_exchange_weak(&rep->inline_busy, &n, n + 1))
			return true;
	return false;
}

/*
 * Inline mode, holding a slot and the thread's worker w: scores what the
 * queue holds, gives the slot back, and takes one again while the queue is
 * not empty. A request is queued only when every slot was taken, and is
 * left to the slots' holders, with no thread woken: each holder looks at
 * the queue after giving its slot back, and the queueing thread looks at
 * the slots after queueing (rep_inline_help), both with sequentially
 * consistent operations, so one of the two sees the other and nothing is
 * left queued with every slot free. A worker thread woken per queued
 * request cost a futex wake-up and two context switches each.
 */
static void
rep_inline_drain(srv_rep *rep, srv_worker *w)
{
	do {
		rep_conn *c;

		while ((c = rep_pop(rep)) != NULL)
			rep_run_queued(rep, c, w);
		atomic_fetch_sub(&rep->inline_busy, 1);
	} while (atomic_load(&rep->qlen) > 0 && rep_slot_take(rep));
}

/* Inline mode, after queueing a request: drains the queue if a slot is free
 * (its holders may all have looked before the request was queued). */
static void
rep_inline_help(srv_rep *rep)
{
	srv_worker *w;

	if (!rep_slot_take(rep))
		return;
	if ((w = rep_thread_worker(rep)) != NULL) {
		rep_inline_drain(rep, w);
		return;
	}
	atomic_fetch_sub(&rep->inline_busy, 1);
	pthread_mutex_lock(&rep->mu); /* no memory for a worker: wake a worker thread */
	if (rep->nsleep > 0)
		pthread_cond_signal(&rep->work_cv);
	pthread_mutex_unlock(&rep->mu);
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
	int spins = rep->inline_mode ? 0 : REP_SPIN;

	free(ta);
	for (;;) {
		rep_conn *c;

		/* A short yield-spin before sleeping: a worker that sleeps pays a
		 * futex wake-up on the next request, most of the reply time at
		 * moderate load. Bounded, and it yields the core meanwhile.
		 * Queued mode only: in inline mode the queue takes only the
		 * overflow of nng's threads, so a worker that spins yields to
		 * the threads scoring inline, a context switch each round. */
		for (int spin = 0; spin < spins && atomic_load_explicit(&rep->qlen,
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
		c = rep_pop_locked(rep);
		pthread_mutex_unlock(&rep->mu);

		rep_run_queued(rep, c, w);
	}
	return NULL;
}

static void
rep_free(srv_rep *rep)
{
	rep_probe_thread_stop(rep);
	if (rep->sock_open) {
		nng_close(rep->sock);
		rep->sock_open = false;
	}
	if (rep->probe != NULL) {
		nng_aio_stop(rep->probe);
		nng_aio_free(rep->probe);
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
	free(rep->conn_over);
	while (rep->pipes != NULL) {
		rep_pipe *p = rep->pipes;

		HASH_DEL(rep->pipes, p);
		free(p);
	}
	pthread_mutex_destroy(&rep->pipe_mu);
	free(rep->parked);
	pthread_mutex_destroy(&rep->park_mu);
	srv_hs_free(rep->hs);
	pthread_mutex_destroy(&rep->probe_mu);
	pthread_cond_destroy(&rep->probe_cv);
	pthread_mutex_destroy(&rep->mu);
	pthread_cond_destroy(&rep->work_cv);
	pthread_cond_destroy(&rep->drain_cv);
	free(rep);
}

static uint32_t
rep_inline_max(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	/* nng's pool minus one thread kept free to read and queue (or refuse) */
	if (n < 1)
		n = 1;
	return n * 2 - 1 > REP_INLINE_MAX ? REP_INLINE_MAX : (uint32_t)(n * 2 - 1);
}

/*
 * Counts connections (all listeners) and closes one over max_connections
 * before the socket sees it (ADD_PRE). Pipes are remembered by id, so a
 * REM_POST for a pipe that was refused (or never counted) changes nothing.
 * A connection there is no memory to count is closed too: untracked, it
 * would escape max_connections and max_inflight_per_connection. Refusals
 * are logged at most once a second, with how many were refused.
 */
static void
rep_pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	srv_rep *rep = arg;
	uint32_t id = (uint32_t)nng_pipe_id(p);
	rep_pipe *e = NULL;
	bool refuse = false, nomem = false;
	uint64_t quiet = 0;
	bool log = false;
	nng_sockaddr peer;
	bool has_peer = false;

	if (ev == NNG_PIPE_EV_ADD_PRE && atomic_load(&rep->draining)) {
		nng_pipe_close(p); /* shutting down: the client goes to another replica */
		return;
	}
	if (ev == NNG_PIPE_EV_ADD_PRE && rep->hs != NULL)
		has_peer = nng_pipe_get_addr(p, NNG_OPT_REMADDR, &peer) == 0;
	pthread_mutex_lock(&rep->pipe_mu);
	if (ev == NNG_PIPE_EV_ADD_PRE) {
		if (rep->npipes < rep->s->cfg.max_connections &&
		    (e = malloc(sizeof *e)) != NULL) {
			e->id = id;
			e->pipe = p;
			e->held = 0;
			e->sent = e->swept_sent = 0;
			e->progress_ms = (int64_t)(vigil_mono_ns() / 1000000);
			e->closing = false;
			e->hs_known = has_peer;
			if (has_peer)
				e->peer = peer;
			HASH_ADD(hh, rep->pipes, id, sizeof e->id, e);
			if (VIGIL_HASH_ADDED(e) && (!has_peer || srv_hs_pipe_add(rep->hs, &peer))) {
				rep->npipes++;
			} else {
				if (VIGIL_HASH_ADDED(e))
					HASH_DEL(rep->pipes, e);
				free(e);
				e = NULL;
			}
		}
		if (e == NULL) {
			int64_t now = vigil_mono_ns() / 1000000;

			refuse = true;
			nomem = rep->npipes < rep->s->cfg.max_connections;
			rep->refused_quiet++;
			if (rep->refused_log_ms == 0 || now - rep->refused_log_ms >= 1000) {
				log = true;
				quiet = rep->refused_quiet;
				rep->refused_quiet = 0;
				rep->refused_log_ms = now;
			}
		}
	} else if (ev == NNG_PIPE_EV_REM_POST) {
		HASH_FIND(hh, rep->pipes, &id, sizeof id, e);
		if (e != NULL) {
			if (e->hs_known)
				srv_hs_pipe_remove(rep->hs, &e->peer);
			HASH_DEL(rep->pipes, e);
			free(e);
			rep->npipes--;
		}
	}
	atomic_store_explicit(&rep->s->metrics.nng_connections, rep->npipes,
	    memory_order_relaxed);
	pthread_mutex_unlock(&rep->pipe_mu);
	if (refuse) {
		atomic_fetch_add_explicit(&rep->s->metrics.nng_conn_refused, 1,
		    memory_order_relaxed);
		nng_pipe_close(p);
		if (log && nomem)
			srv_log("nng: refused %llu connection(s), the last with no memory to "
			    "count it; next note in 1 s at the earliest", (unsigned long long)quiet);
		else if (log)
			srv_log("nng: refused %llu connection(s): %u open (max_connections); "
			    "next note in 1 s at the earliest", (unsigned long long)quiet,
			    rep->s->cfg.max_connections);
	}
}

/* Creates, configures and starts one listener. */
static vigil_err
rep_listen(srv_rep *rep, const char *url, nng_tls_config *tls, nng_listener *ret_l,
    char *errbuf, size_t errlen)
{
	const srv_config *cfg = &rep->s->cfg;
	bool ipc = strncmp(url, "ipc://", 6) == 0;
	nng_listener l;
	int nrv;

	if ((nrv = nng_listener_create(&l, rep->sock, url)) != 0) {
		snprintf(errbuf, errlen, "nng: cannot listen on %s: %s%s", url, nng_strerror(nrv),
		    nrv == NNG_ENOTSUP ? " (this libnng has no such transport)" : "");
		return VIGIL_EIO;
	}
	if (tls != NULL && srv_config_url_tls(url) &&
	    (nrv = nng_listener_set_ptr(l, NNG_OPT_TLS_CONFIG, tls)) != 0) {
		snprintf(errbuf, errlen, "nng: %s: cannot set the TLS configuration: %s", url,
		    nng_strerror(nrv));
		nng_listener_close(l);
		return VIGIL_EIO;
	}
	/* rw for owner and group: clients run in ipc_group (or as vigild's user) */
	if (ipc && (nrv = nng_listener_set_int(l, NNG_OPT_IPC_PERMISSIONS, 0660)) != 0) {
		snprintf(errbuf, errlen, "nng: %s: cannot set permissions: %s", url,
		    nng_strerror(nrv));
		nng_listener_close(l);
		return VIGIL_EIO;
	}
	if ((nrv = nng_listener_start(l, 0)) != 0) {
		snprintf(errbuf, errlen, "nng: cannot listen on %s: %s", url, nng_strerror(nrv));
		nng_listener_close(l);
		return nrv == NNG_EADDRINUSE ? VIGIL_EBUSY : VIGIL_EIO;
	}
	if (ipc && cfg->ipc_group[0] != '\0') {
		struct group *g = getgrnam(cfg->ipc_group);
		char *end;
		unsigned long gid = g != NULL ? (unsigned long)g->gr_gid :
		    strtoul(cfg->ipc_group, &end, 10);

		if ((g == NULL && (*end != '\0' || end == cfg->ipc_group)) ||
		    chown(url + 6, (uid_t)-1, (gid_t)gid) != 0) {
			snprintf(errbuf, errlen, "nng: %s: cannot give the socket to group %s: %s", url,
			    cfg->ipc_group, g == NULL && (*end != '\0' || end == cfg->ipc_group) ?
			    "no such group" : strerror(errno));
			nng_listener_close(l);
			return VIGIL_EIO;
		}
	}
	*ret_l = l;
	return VIGIL_OK;
}

/*
 * nng keeps one accept posted on a listener, and its TLS connection object
 * is made with the configuration of the moment it was posted: after a
 * replacement, the next connection would still get the previous
 * certificate. A TCP connection of our own, closed at once, takes that
 * accept (its handshake fails on EOF; no pipe, no log) and nng posts the
 * next with the new configuration. Best effort: a client that connects in
 * the same instant may be the one to get the previous certificate.
 */
static void
rep_tls_poke(nng_listener l)
{
	nng_sockaddr sa;
	struct sockaddr_storage ss;
	socklen_t len;
	int fd;

	if (nng_listener_get_addr(l, NNG_OPT_LOCADDR, &sa) != 0)
		return;
	memset(&ss, 0, sizeof ss);
	if (sa.s_family == NNG_AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;

		in->sin_family = AF_INET;
		in->sin_port = sa.s_in.sa_port;         /* both in network order */
		in->sin_addr.s_addr = sa.s_in.sa_addr;
		len = sizeof *in;
	} else if (sa.s_family == NNG_AF_INET6) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

		in6->sin6_family = AF_INET6;
		in6->sin6_port = sa.s_in6.sa_port;
		memcpy(&in6->sin6_addr, sa.s_in6.sa_addr, sizeof in6->sin6_addr);
		in6->sin6_scope_id = sa.s_in6.sa_scope;
		len = sizeof *in6;
	} else {
		return;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	/* a wildcard address (0.0.0.0, ::) connects to the host itself */
	(void)connect(fd, (struct sockaddr *)&ss, len);
	close(fd);
}

vigil_err
srv_rep_tls_reload(srv_rep *rep, char *errbuf, size_t errlen)
{
	const srv_config *cfg;
	nng_tls_config *tls = NULL;
	vigil_err rv = VIGIL_OK;
	uint32_t n = 0;
	int nrv;

	errbuf[0] = '\0';
	if (rep == NULL)
		return VIGIL_ENOTFOUND;
	cfg = &rep->s->cfg;
	for (uint32_t i = 0; i < rep->nlisteners; i++)
		n += srv_config_url_tls(cfg->listen[i]);
	if (n == 0)
		return VIGIL_ENOTFOUND;
	/* The checks of start-up (readable PEM, the key is the certificate's,
	 * valid now) on the text nng is then given: nng would take a
	 * mismatched pair and fail every handshake. Expiry warnings go to the
	 * log. */
	rv = srv_rep_tls_config(cfg, stderr, &tls, errbuf, errlen);
	if (rv != VIGIL_OK)
		goto out;
	/* nng 1.5.2 replaces a started listener's TLS configuration under its
	 * lock: each accepted connection holds the configuration it was
	 * accepted with, so connections already open are not touched. */
	for (uint32_t i = 0; i < rep->nlisteners; i++) {
		if (!srv_config_url_tls(cfg->listen[i]))
			continue;
		nrv = nng_listener_set_ptr(rep->listeners[i], NNG_OPT_TLS_CONFIG, tls);
		if (nrv != 0) {
			snprintf(errbuf, errlen, "tls: %s: cannot replace the TLS configuration: %s",
			    cfg->listen[i], nng_strerror(nrv));
			rv = VIGIL_EIO;
			goto out;
		}
		rep_tls_poke(rep->listeners[i]);
	}
out:
	if (tls != NULL)
		nng_tls_config_free(tls); /* the listeners hold their own reference */
	return rv;
}

vigil_err
srv_rep_start(srv_server *s, srv_rep **ret_rep, char *errbuf, size_t errlen)
{
	const srv_config *cfg = &s->cfg;
	srv_rep *rep;
	nng_tls_config *tls = NULL;
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
	pthread_mutex_init(&rep->pipe_mu, NULL);
	pthread_mutex_init(&rep->park_mu, NULL);
	pthread_mutex_init(&rep->probe_mu, NULL);
	{
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* probe_due_ns's clock */
		pthread_cond_init(&rep->probe_cv, &ca);
		pthread_condattr_destroy(&ca);
	}
	pthread_cond_init(&rep->work_cv, NULL);
	pthread_cond_init(&rep->drain_cv, NULL);
	atomic_init(&rep->closed, false);
	atomic_init(&rep->draining, false);
	atomic_init(&rep->pending, 0);
	rep->id = atomic_fetch_add(&rep_ids, 1) + 1;
	rep->inline_mode = cfg->fsync != STORE_FSYNC_ALWAYS;
	rep->inline_max = rep_inline_max();
	atomic_init(&rep->inline_busy, 0);
	rep->max_inflight = cfg->max_inflight;
	rep->conn_max = cfg->max_inflight_per_connection;
	rep->queue_timeout_ns = (uint64_t)(cfg->queue_timeout_ms < cfg->request_timeout_ms ?
	    cfg->queue_timeout_ms : cfg->request_timeout_ms) * 1000000u;
	rep->cap = cfg->max_inflight;
	rep->nconns = cfg->max_inflight + REP_SPARE_CTX;
	rep->ring = calloc(rep->cap, sizeof *rep->ring);
	rep->conns = calloc(rep->nconns, sizeof *rep->conns);
	rep->parked = calloc(rep->nconns, sizeof *rep->parked);
	rep->threads = calloc(cfg->workers, sizeof *rep->threads);
	rep->workers = calloc(cfg->workers, sizeof *rep->workers);
	if (rep->ring == NULL || rep->conns == NULL || rep->parked == NULL || rep->threads == NULL ||
	    rep->workers == NULL) {
		snprintf(errbuf, errlen, "nng: out of memory for %u contexts", rep->nconns);
		rv = VIGIL_ENOMEM;
		goto out;
	}
	if (rep_encode_static(VIGIL__V1__STATUS__STATUS_OVERLOADED,
	    "server busy: work queue full, retry later (same txn_id is safe)",
	    &rep->overloaded, &rep->overloaded_len) != VIGIL_OK ||
	    rep_encode_static(VIGIL__V1__STATUS__STATUS_UNAVAILABLE,
	    SRV_MSG_DRAINING, &rep->unavailable, &rep->unavailable_len) != VIGIL_OK ||
	    rep_encode_static(VIGIL__V1__STATUS__STATUS_OVERLOADED,
	    "server busy: request waited longer than queue_timeout_ms; retry (same txn_id "
	    "is safe)",
	    &rep->timedout, &rep->timedout_len) != VIGIL_OK ||
	    rep_encode_static(VIGIL__V1__STATUS__STATUS_OVERLOADED,
	    "server busy: this connection has max_inflight_per_connection requests in flight; "
	    "wait for replies or spread the load over more connections (same txn_id is safe)",
	    &rep->conn_over, &rep->conn_over_len) != VIGIL_OK) {
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

	if ((nrv = nng_pipe_notify(rep->sock, NNG_PIPE_EV_ADD_PRE, rep_pipe_cb, rep)) != 0 ||
	    (nrv = nng_pipe_notify(rep->sock, NNG_PIPE_EV_REM_POST, rep_pipe_cb, rep)) != 0) {
		snprintf(errbuf, errlen, "nng: cannot watch connections: %s", nng_strerror(nrv));
		rv = VIGIL_EIO;
		goto out;
	}

	/* Workers in both modes: inline mode queues what its nng threads cannot take. */
	for (uint32_t i = 0; i < cfg->workers; i++) {
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
	for (uint32_t i = 0; i < cfg->nlisten && rep->hs == NULL; i++)
		if (srv_config_url_tls(cfg->listen[i]) && cfg->tls_handshake_timeout_ms > 0 &&
		    (rv = srv_hs_new(cfg->tls_handshake_timeout_ms, &rep->hs, errbuf, errlen)) !=
		    VIGIL_OK)
			goto out;
	for (uint32_t i = 0; i < cfg->nlisten; i++) {
		if (srv_config_url_tls(cfg->listen[i]) && tls == NULL &&
		    (rv = srv_rep_tls_config(cfg, NULL, &tls, errbuf, errlen)) != VIGIL_OK)
			goto out;
		rv = rep_listen(rep, cfg->listen[i], tls, &rep->listeners[i], errbuf, errlen);
		if (rv != VIGIL_OK)
			goto out;
		rep->nlisteners++;
		if (rep->hs != NULL && srv_config_url_tls(cfg->listen[i]) &&
		    (rv = srv_hs_listener_add(rep->hs, rep->listeners[i])) != VIGIL_OK) {
			snprintf(errbuf, errlen, "tls: %s: cannot read the bound address of the "
			    "listener for handshake_timeout_ms", cfg->listen[i]);
			goto out;
		}
	}
	if ((nrv = nng_aio_alloc(&rep->probe, rep_probe_cb, rep)) != 0) {
		snprintf(errbuf, errlen, "nng: %s", nng_strerror(nrv));
		rv = VIGIL_ENOMEM;
		goto out;
	}
	atomic_store(&rep->probe_due_ns, (int64_t)vigil_mono_ns() + REP_PROBE_MS * 1000000LL);
	rep->probe_idle = true;
	if (pthread_create(&rep->probe_thr, NULL, rep_probe_main, rep) != 0) {
		snprintf(errbuf, errlen, "cannot start the queue probe's thread");
		rv = VIGIL_ENOMEM;
		goto out;
	}
	rep->probe_thr_running = true;
	for (uint32_t i = 0; i < rep->nconns; i++)
		rep_recv(&rep->conns[i]);
	*ret_rep = rep;
	rep = NULL;
out:
	if (tls != NULL)
		nng_tls_config_free(tls); /* the listeners hold their own reference */
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

/*
 * The nng half of shutdown, on a helper thread waited for at most
 * REP_CLOSE_WAIT_MS (vigil_call_bounded):
 * every aio stopped (its callback has returned and will not run again),
 * every context closed, then the socket. nng 1.5 can wait forever in
 * nng_aio_stop (a context's aio, seen once in CI under ASan with clients
 * still sending) or in nng_close (a pipe that never finishes closing);
 * everything acknowledged is in the store by then, so the caller may
 * finish without it.
 */
static void
rep_close_all(void *arg)
{
	srv_rep *rep = arg;

	nng_aio_stop(rep->probe);
	for (uint32_t i = 0; i < rep->nconns; i++)
		nng_aio_stop(rep->conns[i].aio);
	for (uint32_t i = 0; i < rep->nconns; i++)
		if (rep->conns[i].opened) {
			nng_ctx_close(rep->conns[i].ctx);
			rep->conns[i].opened = false;
		}
	nng_close(rep->sock);
}

bool
srv_rep_stop(srv_rep *rep, uint32_t timeout_ms)
{
	struct timespec deadline;
	bool timed_out = false;
	uint32_t left;

	if (rep == NULL)
		return true;
	/* The listeners stay open: closing one closes every connection it
	 * made, and the replies drained below would go nowhere. A connection
	 * made from here on is closed as it comes (rep_pipe_cb), a request on
	 * an open one is answered UNAVAILABLE (rep_cb). */
	vigil_deadline_after(CLOCK_REALTIME, &deadline, timeout_ms);
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
	rep_probe_thread_stop(rep);
	if (!vigil_call_bounded(rep_close_all, rep, REP_CLOSE_WAIT_MS)) {
		/* everything acknowledged is already in the store: the caller
		 * finishes without nng (and leaks rep) */
		srv_log("shutdown: stopping nng's operations and closing its socket did not "
		    "finish within %d ms; exiting without it", REP_CLOSE_WAIT_MS);
		return false;
	}
	rep->sock_open = false;
	rep_free(rep);
	return true;
}
