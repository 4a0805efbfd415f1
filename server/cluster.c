/* SPDX-License-Identifier: MIT */
/*
 * server/cluster.c - cross-card state shared between vigild replicas through
 * NATS JetStream (docs/operations.md, "Running a cluster").
 *
 * Publishing: a scoring thread queues the observation of each committed,
 * applied transaction (srv_cluster_publish: a copy into a bounded ring under
 * a mutex; full = dropped and counted, scoring never waits on NATS). The
 * publisher thread takes up to SRV_OBS_BATCH_MAX of them, encodes one
 * message (obs.h) and publishes it on vigil.<cluster>.obs.<replica> with
 * js_Publish, waiting for JetStream's acknowledgement; on failure it keeps
 * the batch and retries it unchanged with the same Nats-Msg-Id, so a batch
 * stored before its acknowledgement was lost is not stored twice within the
 * stream's duplicate window, and not applied twice after it.
 *
 * Applying: an ordered push consumer of the whole stream, from its first
 * message (the stream keeps retain_hours, at least the entity windows):
 * after a restart the local archive rebuilt the local part of the live
 * state, and the replay of the stream brings the others' part back. Each
 * message is handled once, by stream sequence (the ordered consumer
 * resumes after the last delivered one when NATS comes back; a sequence
 * at or below the last handled is skipped), and each batch once, by its
 * message id (a batch stored twice: cluster_dup.h); this replica's own messages
 * are skipped (its archive has them). Another process's message on our
 * subject, newer than this process (cluster_seq.h), means another live
 * vigild uses our replica name: its observations are skipped too, so it
 * is logged once, counted, and degraded for a day. Observations go to store_db_observe,
 * but for one further ahead of this replica's clock than
 * max_future_skew_ms: refused, as a transaction would be.
 *
 * The stream lost (every NATS node's store gone): a publish finds no
 * stream, and the publisher thread checks the stream every few seconds
 * anyway (a replica with no traffic publishes nothing). Missing, it is
 * created again; created again (another creation time), the subscription
 * is replaced by one from the new stream's start, its sequences counted
 * from 0 again; the old one's messages are ignored from then on (its
 * epoch). What was applied stays applied, and what the old subscription
 * applied from the new stream before it was replaced is not applied again
 * (cluster_seq.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <nats/nats.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cluster_dup.h"
#include "cluster_seq.h"
#include "obs.h"
#include "srv.h"

#define CLUSTER_MAX_URLS      16
#define CLUSTER_RETRY_MS      250
#define CLUSTER_PUB_WAIT_MS   2000
#define CLUSTER_STOP_FLUSH_MS 2000
#define CLUSTER_LINGER_US     2000 /* the oldest of a short batch waits this long */
#define CLUSTER_DROP_WINDOW_MS (24 * 3600 * 1000LL) /* the longest entity window */
#define CLUSTER_CHECK_MS      2000 /* is the stream still the one subscribed to? */
#define CLUSTER_STALL_MS      10000 /* a message this old not delivered, none since: stalled */
#define CLUSTER_CLOCK_SLACK_MS 1000 /* the future guard: a replica's and NATS's clocks apart */

const double srv_cluster_delay_le[SRV_CLUSTER_DELAY_BUCKETS] = {
	0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
	2.5, 10, 60, 600,
};

/* One subscription's callback argument: its epoch, to ignore what a
 * replaced subscription still delivers. Freed at stop (nats.c may call a
 * replaced subscription's callback until then). */
typedef struct cluster_subarg {
	struct srv_cluster     *c;
	uint64_t                epoch;
	struct cluster_subarg  *next;
} cluster_subarg;

struct srv_cluster {
	srv_server      *s;
	char             subject[96];  /* ours: vigil.<cluster>.obs.<replica> */
	char             filter[96];   /* every replica's: vigil.<cluster>.obs.> */
	char             stream[64];   /* VIGIL_<cluster> */
	char             nonce[24];    /* this process's, in message ids */
	char             idprefix[72]; /* ours: <replica>-<nonce>- */
	char            *urlbuf;
	const char      *urls[CLUSTER_MAX_URLS];
	int              nurls;

	natsConnection  *nc;
	jsCtx           *js;
	natsSubscription *sub;
	int64_t          stream_created; /* creation time (ns) of the stream
	                                  * subscribed to, or last tried, and
	                                  * that last_seq counts in (publisher) */
	cluster_stall    stall;          /* is the subscription stalled? */
	_Atomic uint64_t resubscribed;   /* stalled subscriptions replaced */
	cluster_subarg  *subargs;        /* every subscription's, newest first */

	/* the queue: ring of cap observations, head = oldest */
	pthread_mutex_t  mu;
	pthread_cond_t   cv;
	srv_obs         *ring;
	uint32_t         cap, head, n;
	bool             stop;
	pthread_t        thread;
	bool             thread_started;

	/* what the subscription callback touches, under apply_mu */
	pthread_mutex_t  apply_mu;
	bool             closing;
	srv_obs         *rx;           /* decode scratch, SRV_OBS_BATCH_MAX */
	cluster_seq      seq;           /* what is applied, by stream sequence */
	cluster_dup      dup;           /* and by batch, of each process */
	uint64_t         epoch;         /* the current subscription's */

	_Atomic uint64_t published, applied, dropped, pub_failures, bad_messages, refused;
	_Atomic uint64_t duplicates;    /* batches stored twice, skipped */
	_Atomic uint64_t conflicts;     /* another process's messages on our subject */
	_Atomic int64_t  last_conflict_ms; /* 0: never */
	char             conflict_nonce[24]; /* the last one's, under mu */
	_Atomic uint64_t lag, last_seq_pub;
	_Atomic int64_t  last_msg_ms;   /* when the subscription last delivered */
	_Atomic uint32_t inflight;      /* the publisher's batch, out of the queue */
	atomic_bool      closing_conn;  /* srv_cluster_stop: a disconnection is ours */
	_Atomic int64_t  last_drop_ms;  /* 0: never */
	atomic_bool      connected, pub_failing, ready_js;
	atomic_bool      caught_up;     /* the start-up replay reached the end once */
	_Atomic int64_t  down_since_ms; /* when NATS became unreachable; 0: connected */
	_Atomic uint64_t delay_bucket[SRV_CLUSTER_DELAY_BUCKETS + 1];
	_Atomic uint64_t delay_sum_us, delay_count;
	char             pub_error[160]; /* under mu */
};

static int64_t
cluster_wall_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ------------------------------------------------------------------ */
/* Connection state (nats.c's callbacks, on its threads). */

static void
cluster_on_disconnected(natsConnection *nc, void *arg)
{
	srv_cluster *c = arg;

	(void)nc;
	if (atomic_exchange(&c->connected, false) && !atomic_load(&c->closing_conn))
		srv_log("cluster: NATS disconnected; scoring goes on with this replica's own "
		    "view of cross-card features (degraded), observations queue up to %u",
		    c->s->cfg.cluster_queue);
	atomic_store(&c->down_since_ms, vigil_now_ms());
}

static void
cluster_on_connected(natsConnection *nc, void *arg)
{
	srv_cluster *c = arg;
	char url[256] = "";

	natsConnection_GetConnectedUrl(nc, url, sizeof url);
	atomic_store(&c->connected, true);
	atomic_store(&c->down_since_ms, 0);
	/* nothing could be delivered while disconnected: no stall before now */
	atomic_store(&c->last_msg_ms, vigil_now_ms());
	srv_log("cluster: connected to NATS %s", url);
}

/* ------------------------------------------------------------------ */
/* Applying the others' observations. */

/* A message on our subject: none of this process's (its id is not ours),
 * past what the stream held when this process subscribed. apply_mu held. */
static void
cluster_conflict(srv_cluster *c, natsMsg *msg, uint64_t stream_seq)
{
	const char *id = NULL;
	char        nonce[24] = "none";
	size_t      rl = strlen(c->s->cfg.cluster_replica);

	if (natsMsgHeader_Get(msg, "Nats-Msg-Id", &id) == NATS_OK && id != NULL &&
	    strncmp(id, c->idprefix, strlen(c->idprefix)) == 0)
		return; /* ours */
	if (!cluster_seq_conflict(&c->seq, stream_seq))
		return; /* an earlier start's, before this process subscribed */
	if (id != NULL && strncmp(id, c->s->cfg.cluster_replica, rl) == 0 && id[rl] == '-')
		snprintf(nonce, sizeof nonce, "%.*s", (int)strcspn(id + rl + 1, "-"), id + rl + 1);
	pthread_mutex_lock(&c->mu);
	snprintf(c->conflict_nonce, sizeof c->conflict_nonce, "%s", nonce);
	pthread_mutex_unlock(&c->mu);
	atomic_store(&c->last_conflict_ms, vigil_now_ms());
	if (atomic_fetch_add(&c->conflicts, 1) == 0)
		srv_log("cluster: %s sequence %" PRIu64 ": another process publishes on this "
		    "replica's subject (nonce %s, this process's %s): two vigild run as replica "
		    "%s, and each skips the other's observations as its own (cross-card features "
		    "undercount on both; counted in vigil_cluster_replica_conflict_total); give "
		    "each its own --replica", c->subject, stream_seq, nonce, c->nonce,
		    c->s->cfg.cluster_replica);
}

static void
cluster_delay_observe(srv_cluster *c, int64_t delay_us)
{
	double   d;
	uint32_t i;

	if (delay_us < 0)
		delay_us = 0; /* clocks of two machines: a negative delay is skew */
	d = (double)delay_us / 1e6;
	for (i = 0; i < SRV_CLUSTER_DELAY_BUCKETS && d > srv_cluster_delay_le[i]; i++)
		;
	atomic_fetch_add_explicit(&c->delay_bucket[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&c->delay_sum_us, (uint64_t)delay_us, memory_order_relaxed);
	atomic_fetch_add_explicit(&c->delay_count, 1, memory_order_relaxed);
}

static void
cluster_on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *arg)
{
	cluster_subarg *sa = arg;
	srv_cluster   *c = sa->c;
	jsMsgMetaData *meta = NULL;
	const char    *subj = natsMsg_GetSubject(msg), *id = NULL;
	size_t         sl = strlen(subj), ol = strlen(c->subject);
	uint32_t       n = 0;
	int64_t        stored_ms;
	cluster_seq_verdict v;
	bool           delivered = false;
	char           err[192];

	(void)nc;
	(void)sub;
	if (natsMsg_GetMetaData(&meta, msg) != NATS_OK) {
		natsMsg_Destroy(msg);
		return; /* not a JetStream message (a flow control reply is handled by nats.c) */
	}
	pthread_mutex_lock(&c->apply_mu);
	if (c->closing || sa->epoch != c->epoch)
		goto out; /* a replaced subscription's (the stream was created again) */
	delivered = true;
	v = cluster_seq_take(&c->seq, meta->Sequence.Stream, meta->Sequence.Consumer,
	    meta->Timestamp);
	if (v == CLUSTER_SEQ_SEEN)
		goto out; /* redelivered after a consumer reset: handled already */
	atomic_store(&c->last_seq_pub, c->seq.last);
	atomic_store(&c->lag, meta->NumPending);
	if (meta->NumPending == 0)
		atomic_store(&c->caught_up, true);
	/* ours: the local archive has them (unless another process shares
	 * our name); or applied from this stream by the subscription this
	 * one replaced */
	if (sl == ol && memcmp(subj, c->subject, sl) == 0) {
		cluster_conflict(c, msg, meta->Sequence.Stream);
		goto out;
	}
	if (v == CLUSTER_SEQ_APPLIED)
		goto out;
	/* a batch stored twice (cluster_dup.h) */
	if (natsMsgHeader_Get(msg, "Nats-Msg-Id", &id) != NATS_OK)
		id = NULL;
	if (cluster_dup_take(&c->dup, id) == CLUSTER_DUP_COPY) {
		if (atomic_fetch_add(&c->duplicates, 1) < 100)
			srv_log("cluster: %s sequence %" PRIu64 ": batch %s was applied already "
			    "(stored twice: an attempt whose acknowledgement was lost, retried "
			    "after the stream's duplicate window); skipped", subj,
			    meta->Sequence.Stream, id);
		goto out;
	}
	if (srv_obs_decode(natsMsg_GetData(msg), (size_t)natsMsg_GetDataLength(msg), c->rx, &n,
	    err, sizeof err) != VIGIL_OK) {
		/* one line per bad message: another program on our subjects */
		if (atomic_fetch_add(&c->bad_messages, 1) < 100)
			srv_log("cluster: %s sequence %" PRIu64 ": %s; skipped", subj,
			    meta->Sequence.Stream, err);
		goto out;
	}
	stored_ms = meta->Timestamp / 1000000; /* JetStream's, in ns */
	for (uint32_t i = 0; i < n; i++) {
		vigil_txn t;
		srv_wire_err werr;

		/* A transaction's clock-skew guard, future side only (a
		 * replica's past is history): one observation from the future
		 * would empty its entities' windows on every replica, for as
		 * long as it is ahead. Against when the stream stored it, not
		 * this replica's clock now: every replica, live or replaying
		 * the stream after a restart, decides alike (srv_wire_obs_window). */
		t.event_time_ms = c->rx[i].obs.event_time_ms;
		if (t.event_time_ms < VIGIL_TIME_MIN_MS || t.event_time_ms >= VIGIL_TIME_MAX_MS) {
			/* outside what a transaction may have (vigil_txn_validate):
			 * not from a vigild, and the windows' arithmetic would overflow */
			srv_wire_err_set(&werr, VIGIL__V1__STATUS__STATUS_INVALID, "event_time_ms",
			    "event_time_ms %lld is outside [2000-01-01, 2100-01-01)",
			    (long long)t.event_time_ms);
		} else if (srv_wire_obs_window(t.event_time_ms, stored_ms, c->s->cfg.max_future_skew_ms,
		    CLUSTER_CLOCK_SLACK_MS, &werr) == VIGIL_OK) {
			if (store_db_observe(c->s->db, &c->rx[i].obs) != VIGIL_OK)
				continue;
			atomic_fetch_add_explicit(&c->applied, 1, memory_order_relaxed);
			/* the delay of a plausible commit time only (the sum would overflow) */
			if (c->rx[i].committed_us >= VIGIL_TIME_MIN_MS * 1000 &&
			    c->rx[i].committed_us < VIGIL_TIME_MAX_MS * 1000)
				cluster_delay_observe(c, cluster_wall_us() - c->rx[i].committed_us);
			continue;
		}
		if (atomic_fetch_add(&c->refused, 1) < 100)
			srv_log("cluster: %s sequence %" PRIu64 ": observation %u: %s; refused",
			    subj, meta->Sequence.Stream, i + 1, werr.info.msg);
	}
out:
	if (delivered) /* at the end: a long callback is no stall */
		atomic_store(&c->last_msg_ms, vigil_now_ms());
	pthread_mutex_unlock(&c->apply_mu);
	jsMsgMetaData_Destroy(meta);
	natsMsg_Destroy(msg);
}

/* ------------------------------------------------------------------ */
/* The stream and the subscription, once NATS answers (publisher thread). */

/* Retires the subscription: what it still delivers is ignored. Publisher
 * thread. */
static void
cluster_unsubscribe(srv_cluster *c)
{
	if (c->sub == NULL)
		return;
	pthread_mutex_lock(&c->apply_mu);
	c->epoch++;
	pthread_mutex_unlock(&c->apply_mu);
	natsSubscription_Unsubscribe(c->sub);
	natsSubscription_Destroy(c->sub);
	c->sub = NULL;
}

/* cluster_seq_stalled on this subscription, logged. Publisher thread. */
static uint64_t
cluster_stalled(srv_cluster *c, uint64_t msgs, uint64_t last)
{
	/* handled first: a message delivered in between is not a stall */
	uint64_t handled = atomic_load(&c->last_seq_pub), behind = c->stall.behind_seq, from;
	int64_t  now = vigil_now_ms(), last_msg = atomic_load(&c->last_msg_ms);

	from = cluster_seq_stalled(&c->stall, now, CLUSTER_STALL_MS, msgs, last, handled, last_msg);
	if (from == 0)
		return 0;
	srv_log("cluster: stream %s: nothing delivered for %lld s though sequence %" PRIu64
	    " waits (the last handled %" PRIu64 "): the subscription stalled; subscribing again "
	    "from %" PRIu64 "%s", c->stream, (long long)((now - last_msg) / 1000), behind,
	    handled, from, c->stall.wait_ms > CLUSTER_STALL_MS ? " (the last time brought "
	    "nothing: looking less often)" : "");
	atomic_fetch_add(&c->resubscribed, 1);
	return from;
}

/*
 * Makes sure the stream exists (creating it if missing) and that the
 * subscription reads the stream as it is now: none yet, or the stream was
 * created again since (lost, then created by this replica or another),
 * subscribes from its start; one that stalled (cluster_stalled), from the
 * first sequence not handled. Publisher thread; at start-up and every
 * CLUSTER_CHECK_MS after.
 */
static vigil_err
cluster_setup_js(srv_cluster *c, char *err, size_t errlen)
{
	jsStreamInfo  *si = NULL;
	jsStreamConfig sc;
	jsSubOptions   so;
	jsErrCode      jerr = 0;
	const char    *subjects[1] = { c->filter };
	cluster_subarg *sa;
	int64_t        created = 0;
	uint64_t       msgs = 0, last = 0, from = 0;
	bool           made = false, again;
	natsStatus     st;

	st = js_GetStreamInfo(&si, c->js, c->stream, NULL, &jerr);
	if (st == NATS_NOT_FOUND || jerr == JSStreamNotFoundErr) {
		/* nothing the old subscription delivers from now on is of the
		 * stream it read, whoever creates the next one */
		cluster_unsubscribe(c);
		jsStreamConfig_Init(&sc);
		sc.Name = c->stream;
		sc.Subjects = subjects;
		sc.SubjectsLen = 1;
		sc.Storage = js_FileStorage;
		sc.Replicas = c->s->cfg.cluster_stream_replicas;
		sc.MaxAge = (int64_t)c->s->cfg.cluster_retain_hours * 3600 * 1000000000LL;
		sc.Duplicates = 120LL * 1000000000LL; /* a retried batch's id window */
		jerr = 0;
		st = js_AddStream(&si, c->js, &sc, NULL, &jerr);
		made = st == NATS_OK;
		if (st != NATS_OK && jerr == JSStreamNameExistErr) {
			jerr = 0; /* another replica made it meanwhile */
			st = js_GetStreamInfo(&si, c->js, c->stream, NULL, &jerr);
		}
	}
	if (st == NATS_OK && si != NULL) {
		created = si->Created;
		msgs = si->State.Msgs;
		last = si->State.LastSeq;
		/* the first subscription of this process: what the stream
		 * holds already is history (earlier starts' included) */
		if (c->stream_created == 0) {
			pthread_mutex_lock(&c->apply_mu);
			c->seq.history = si->State.LastSeq;
			pthread_mutex_unlock(&c->apply_mu);
		}
	}
	jsStreamInfo_Destroy(si);
	if (st != NATS_OK) {
		snprintf(err, errlen, "stream %s: %s (%s, JetStream error %d)", c->stream,
		    natsStatus_GetText(st), nats_GetLastError(NULL), (int)jerr);
		return VIGIL_EIO;
	}
	if (c->sub != NULL && created == c->stream_created &&
	    (from = cluster_stalled(c, msgs, last)) == 0)
		return VIGIL_OK;
	cluster_unsubscribe(c);
	if (from == 0)
		from = cluster_seq_resume_from(c->stream_created, created,
		    atomic_load(&c->last_seq_pub));
	/* Sequences count again from 1 only in another stream: a subscription
	 * made again to the same one (the last attempt failed, maybe after
	 * delivering part of it) skips what was applied. */
	again = c->stream_created != 0 && created != c->stream_created;
	c->stream_created = created;
	if (again) {
		pthread_mutex_lock(&c->apply_mu);
		cluster_seq_new_stream(&c->seq, created); /* it counts from 1 */
		atomic_store(&c->last_seq_pub, 0);
		pthread_mutex_unlock(&c->apply_mu);
		memset(&c->stall, 0, sizeof c->stall);
		srv_log("cluster: stream %s was created again%s (what it held is lost): applying "
		    "the new one from its start; what was applied stays", c->stream,
		    made ? " by this replica" : "");
	}
	sa = calloc(1, sizeof *sa);
	if (sa == NULL) {
		snprintf(err, errlen, "subscribe %s: out of memory", c->filter);
		return VIGIL_ENOMEM;
	}
	pthread_mutex_lock(&c->apply_mu);
	sa->c = c;
	sa->epoch = c->epoch;
	sa->next = c->subargs;
	c->subargs = sa;
	pthread_mutex_unlock(&c->apply_mu);
	jsSubOptions_Init(&so);
	so.Stream = c->stream;
	so.Ordered = true;
	so.Config.DeliverPolicy = from > 0 ? js_DeliverByStartSequence : js_DeliverAll;
	so.Config.OptStartSeq = from;
	atomic_store(&c->last_msg_ms, vigil_now_ms());
	jerr = 0;
	st = js_Subscribe(&c->sub, c->js, c->filter, cluster_on_msg, sa, NULL, &so, &jerr);
	if (st != NATS_OK) {
		/* A failed subscribe may have been half made (its consumer created,
		 * then a timeout) and delivered part of the stream, and nats.c may
		 * still call it back: what it delivers from now on is ignored, and
		 * sa stays allocated until stop. */
		c->sub = NULL;
		pthread_mutex_lock(&c->apply_mu);
		c->epoch++;
		pthread_mutex_unlock(&c->apply_mu);
		snprintf(err, errlen, "subscribe %s: %s (%s, JetStream error %d)", c->filter,
		    natsStatus_GetText(st), nats_GetLastError(NULL), (int)jerr);
		return VIGIL_EIO;
	}
	/* a big backlog after a restart: let nats.c hold it, the callback keeps up */
	natsSubscription_SetPendingLimits(c->sub, -1, -1);
	if (from > 0)
		srv_log("cluster: applying %s from sequence %" PRIu64 " of stream %s", c->filter,
		    from, c->stream);
	else
		srv_log("cluster: replica %s of cluster %s: publishing on %s, applying %s from the "
		    "start of stream %s", c->s->cfg.cluster_replica, c->s->cfg.cluster_name,
		    c->subject, c->filter, c->stream);
	return VIGIL_OK;
}

/* ------------------------------------------------------------------ */
/* Publishing. */

void
srv_cluster_publish(srv_cluster *c, const vigil_txn *txn)
{
	srv_obs *o;

	pthread_mutex_lock(&c->mu);
	if (c->n == c->cap) {
		pthread_mutex_unlock(&c->mu);
		if (atomic_fetch_add(&c->dropped, 1) == 0)
			srv_log("cluster: the queue of %u observations is full: dropping (counted in "
			    "vigil_cluster_dropped_total); other replicas undercount this "
			    "replica's traffic", c->cap);
		atomic_store(&c->last_drop_ms, vigil_now_ms());
		return;
	}
	o = &c->ring[(c->head + c->n) % c->cap];
	store_observation_from_txn(txn, &o->obs);
	o->committed_us = cluster_wall_us();
	if (c->n++ == 0)
		pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

/* Waits on cv up to ms (mu held). */
static void
cluster_wait(srv_cluster *c, uint32_t ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	ts.tv_sec += ms / 1000 + ts.tv_nsec / 1000000000L;
	ts.tv_nsec %= 1000000000L;
	pthread_cond_timedwait(&c->cv, &c->mu, &ts);
}

/* Moves queued observations into the batch (mu held), once the stream is there. */
static void
cluster_take(srv_cluster *c, srv_obs *batch, uint32_t *nb)
{
	while (atomic_load(&c->ready_js) && *nb < SRV_OBS_BATCH_MAX && c->n > 0) {
		batch[(*nb)++] = c->ring[c->head];
		c->head = (c->head + 1) % c->cap;
		c->n--;
	}
	atomic_store(&c->inflight, *nb);
}

static void *
cluster_thread(void *arg)
{
	srv_cluster *c = arg;
	srv_obs     *batch = calloc(SRV_OBS_BATCH_MAX, sizeof *batch);
	uint8_t     *buf = malloc(SRV_OBS_MSG_MAX);
	uint32_t     nb = 0;
	uint64_t     bseq = 0;
	int64_t      stop_at = 0, next_check = 0;
	char         err[320], id[96];
	bool         logged = false;
	/* The batch was offered to JetStream: it is sent again as it was,
	 * under its id, until stored. A first attempt may have been stored
	 * with its ack lost, and the stream drops a repeat of the id as a
	 * duplicate: observations added to the retry would be lost. */
	bool         offered = false;

	if (batch == NULL || buf == NULL) {
		srv_log("cluster: out of memory: the publisher is not running");
		goto out;
	}
	for (;;) {
		jsPubOptions po;
		jsErrCode    jerr = 0;
		natsStatus   st;
		size_t       len;
		bool         stopping; /* c->stop as of this turn (read under mu) */

		pthread_mutex_lock(&c->mu);
		stopping = c->stop;
		if (c->stop && stop_at == 0)
			stop_at = vigil_now_ms() + CLUSTER_STOP_FLUSH_MS;
		if (c->stop && ((nb == 0 && c->n == 0) || vigil_now_ms() >= stop_at ||
		    !atomic_load(&c->connected))) {
			pthread_mutex_unlock(&c->mu);
			break;
		}
		if (nb == 0 && c->n == 0 && atomic_load(&c->ready_js))
			cluster_wait(c, 100);
		/* nothing leaves the queue before the stream is there: the queue
		 * alone is what an unreachable NATS fills */
		if (!offered)
			cluster_take(c, batch, &nb);
		pthread_mutex_unlock(&c->mu);
		/* A short batch waits for company: one publish costs about as much
		 * CPU as scoring a transaction, whatever its size (bench/cluster). */
		if (!offered && nb > 0 && nb < SRV_OBS_BATCH_MAX / 4 && !stopping) {
			int64_t wait_us = batch[0].committed_us + CLUSTER_LINGER_US - cluster_wall_us();

			if (wait_us > 0) {
				struct timespec ts = { 0, (long)(wait_us > CLUSTER_LINGER_US ?
				    CLUSTER_LINGER_US : wait_us) * 1000L };

				nanosleep(&ts, NULL);
				pthread_mutex_lock(&c->mu);
				cluster_take(c, batch, &nb);
				pthread_mutex_unlock(&c->mu);
			}
		}

		if (!atomic_load(&c->ready_js)) {
			if (atomic_load(&c->connected) && cluster_setup_js(c, err, sizeof err) == VIGIL_OK) {
				atomic_store(&c->ready_js, true);
				logged = false;
				next_check = vigil_now_ms() + CLUSTER_CHECK_MS;
			} else {
				if (atomic_load(&c->connected) && !logged) {
					srv_log("cluster: %s; retrying", err);
					logged = true;
				}
				pthread_mutex_lock(&c->mu);
				if (!c->stop)
					cluster_wait(c, CLUSTER_RETRY_MS);
				pthread_mutex_unlock(&c->mu);
				continue;
			}
		}
		/* The stream lost and made again (by this replica: missing here;
		 * by another: created at another time) is subscribed to anew. */
		if (!stopping && atomic_load(&c->connected) && vigil_now_ms() >= next_check) {
			next_check = vigil_now_ms() + CLUSTER_CHECK_MS;
			if (cluster_setup_js(c, err, sizeof err) != VIGIL_OK) {
				if (!logged)
					srv_log("cluster: %s; retrying", err);
				logged = true;
			} else {
				logged = false;
			}
		}
		if (nb == 0)
			continue;
		len = srv_obs_encode(batch, nb, buf);
		jsPubOptions_Init(&po);
		po.MaxWait = CLUSTER_PUB_WAIT_MS;
		snprintf(id, sizeof id, "%s-%s-%" PRIu64, c->s->cfg.cluster_replica, c->nonce, bseq);
		po.MsgId = id;
		st = js_Publish(NULL, c->js, c->subject, buf, (int)len, &po, &jerr);
		if (st == NATS_OK) {
			atomic_fetch_add(&c->published, nb);
			atomic_store(&c->inflight, 0);
			if (atomic_exchange(&c->pub_failing, false))
				srv_log("cluster: publishing again");
			nb = 0;
			bseq++;
			offered = false;
			continue;
		}
		offered = true;
		atomic_fetch_add(&c->pub_failures, 1);
		/* no stream takes the subject: look at it now, not in 2 s */
		if (st == NATS_NO_RESPONDERS || jerr == JSStreamNotFoundErr)
			next_check = 0;
		pthread_mutex_lock(&c->mu);
		snprintf(c->pub_error, sizeof c->pub_error, "%s (JetStream error %d)",
		    natsStatus_GetText(st), (int)jerr);
		pthread_mutex_unlock(&c->mu);
		if (!atomic_exchange(&c->pub_failing, true))
			srv_log("cluster: publish on %s failed: %s (JetStream error %d); retrying the "
			    "batch of %u", c->subject, natsStatus_GetText(st), (int)jerr, nb);
		pthread_mutex_lock(&c->mu);
		if (!c->stop)
			cluster_wait(c, CLUSTER_RETRY_MS);
		pthread_mutex_unlock(&c->mu);
	}
	pthread_mutex_lock(&c->mu);
	nb += c->n;
	pthread_mutex_unlock(&c->mu);
	if (nb > 0)
		srv_log("cluster: stopping with %u observation(s) not published", nb);
out:
	free(batch);
	free(buf);
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Life cycle. */

vigil_err
srv_cluster_start(srv_server *s, srv_cluster **ret_c, char *errbuf, size_t errlen)
{
	const srv_config *cfg = &s->cfg;
	srv_cluster *c;
	natsOptions *opts = NULL;
	natsStatus   st;
	char        *save = NULL, *tok;
	char         name[96];
	vigil_err    rv = VIGIL_ENOMEM;

	c = calloc(1, sizeof *c);
	if (c == NULL) {
		snprintf(errbuf, errlen, "cluster: out of memory");
		return VIGIL_ENOMEM;
	}
	c->s = s;
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	pthread_mutex_init(&c->apply_mu, NULL);
	snprintf(c->subject, sizeof c->subject, "vigil.%s.obs.%s", cfg->cluster_name,
	    cfg->cluster_replica);
	snprintf(c->filter, sizeof c->filter, "vigil.%s.obs.>", cfg->cluster_name);
	snprintf(c->stream, sizeof c->stream, "VIGIL_%s", cfg->cluster_name);
	snprintf(c->nonce, sizeof c->nonce, "%" PRIx64, (uint64_t)cluster_wall_us());
	snprintf(c->idprefix, sizeof c->idprefix, "%s-%s-", cfg->cluster_replica, c->nonce);
	c->cap = cfg->cluster_queue;
	c->ring = calloc(c->cap, sizeof *c->ring);
	c->rx = calloc(SRV_OBS_BATCH_MAX, sizeof *c->rx);
	c->urlbuf = strdup(cfg->cluster_nats);
	if (c->ring == NULL || c->rx == NULL || c->urlbuf == NULL) {
		snprintf(errbuf, errlen, "cluster: out of memory (queue of %u)", c->cap);
		goto fail;
	}
	for (tok = strtok_r(c->urlbuf, ",", &save); tok != NULL && c->nurls < CLUSTER_MAX_URLS;
	    tok = strtok_r(NULL, ",", &save))
		c->urls[c->nurls++] = tok;

	rv = VIGIL_EIO;
	if ((st = nats_Open(-1)) != NATS_OK) {
		snprintf(errbuf, errlen, "cluster: NATS library: %s", natsStatus_GetText(st));
		goto fail;
	}
	snprintf(name, sizeof name, "vigild %s/%s", cfg->cluster_name, cfg->cluster_replica);
	st = natsOptions_Create(&opts);
	if (st == NATS_OK)
		st = natsOptions_SetServers(opts, c->urls, c->nurls);
	if (st == NATS_OK)
		st = natsOptions_SetName(opts, name);
	if (st == NATS_OK)
		st = natsOptions_SetMaxReconnect(opts, -1);
	if (st == NATS_OK)
		st = natsOptions_SetReconnectWait(opts, CLUSTER_RETRY_MS);
	if (st == NATS_OK)
		st = natsOptions_SetDisconnectedCB(opts, cluster_on_disconnected, c);
	if (st == NATS_OK)
		st = natsOptions_SetReconnectedCB(opts, cluster_on_connected, c);
	if (st == NATS_OK)
		st = natsOptions_SetRetryOnFailedConnect(opts, true, cluster_on_connected, c);
	if (st != NATS_OK) {
		snprintf(errbuf, errlen, "cluster: NATS options: %s", natsStatus_GetText(st));
		goto fail;
	}
	st = natsConnection_Connect(&c->nc, opts);
	natsOptions_Destroy(opts);
	opts = NULL;
	if (st == NATS_OK) {
		atomic_store(&c->connected, true);
		srv_log("cluster: connected to NATS %s", c->urls[0]);
	} else if (st == NATS_NOT_YET_CONNECTED) {
		atomic_store(&c->down_since_ms, vigil_now_ms());
		srv_log("cluster: NATS %s unreachable; scoring with this replica's own view of "
		    "cross-card features (degraded) until it answers", cfg->cluster_nats);
	} else {
		snprintf(errbuf, errlen, "cluster: NATS %s: %s", cfg->cluster_nats,
		    natsStatus_GetText(st));
		goto fail;
	}
	if ((st = natsConnection_JetStream(&c->js, c->nc, NULL)) != NATS_OK) {
		snprintf(errbuf, errlen, "cluster: JetStream context: %s", natsStatus_GetText(st));
		goto fail;
	}
	if (pthread_create(&c->thread, NULL, cluster_thread, c) != 0) {
		snprintf(errbuf, errlen, "cluster: cannot start the publisher thread");
		goto fail;
	}
	c->thread_started = true;
	*ret_c = c;
	return VIGIL_OK;
fail:
	natsOptions_Destroy(opts);
	srv_cluster_stop(c);
	return rv;
}

void
srv_cluster_stop(srv_cluster *c)
{
	if (c == NULL)
		return;
	if (c->thread_started) {
		pthread_mutex_lock(&c->mu);
		c->stop = true;
		pthread_cond_signal(&c->cv);
		pthread_mutex_unlock(&c->mu);
		pthread_join(c->thread, NULL);
	}
	atomic_store(&c->closing_conn, true);
	pthread_mutex_lock(&c->apply_mu);
	c->closing = true; /* a callback running now or later applies nothing */
	pthread_mutex_unlock(&c->apply_mu);
	if (c->sub != NULL) {
		natsSubscription_Unsubscribe(c->sub);
		natsSubscription_Destroy(c->sub);
	}
	jsCtx_Destroy(c->js);
	if (c->nc != NULL) {
		natsConnection_Close(c->nc);
		natsConnection_Destroy(c->nc);
	}
	/* nats.c's threads are gone when this returns: nothing calls back */
	nats_CloseAndWait(2000);
	while (c->subargs != NULL) {
		cluster_subarg *next = c->subargs->next;

		free(c->subargs);
		c->subargs = next;
	}
	cluster_dup_free(&c->dup);
	pthread_mutex_destroy(&c->apply_mu);
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->mu);
	free(c->ring);
	free(c->rx);
	free(c->urlbuf);
	free(c);
}

/* ------------------------------------------------------------------ */
/* Health and metrics. */

void
srv_cluster_get_stats(srv_cluster *c, srv_cluster_stats *r)
{
	memset(r, 0, sizeof *r);
	r->published = atomic_load(&c->published);
	r->applied = atomic_load(&c->applied);
	r->dropped = atomic_load(&c->dropped);
	r->publish_failures = atomic_load(&c->pub_failures);
	r->bad_messages = atomic_load(&c->bad_messages);
	r->refused = atomic_load(&c->refused);
	r->duplicates = atomic_load(&c->duplicates);
	r->resubscribed = atomic_load(&c->resubscribed);
	r->replica_conflicts = atomic_load(&c->conflicts);
	pthread_mutex_lock(&c->mu);
	r->queued = c->n + atomic_load(&c->inflight);
	pthread_mutex_unlock(&c->mu);
	r->lag = atomic_load(&c->lag);
	r->last_seq = atomic_load(&c->last_seq_pub);
	r->connected = atomic_load(&c->connected);
	for (uint32_t i = 0; i <= SRV_CLUSTER_DELAY_BUCKETS; i++)
		r->delay_bucket[i] = atomic_load_explicit(&c->delay_bucket[i], memory_order_relaxed);
	r->delay_sum_s = (double)atomic_load(&c->delay_sum_us) / 1e6;
	r->delay_count = atomic_load(&c->delay_count);
}

bool
srv_cluster_degraded(srv_cluster *c, char *why, size_t len)
{
	int64_t now = vigil_now_ms(), down = atomic_load(&c->down_since_ms);
	int64_t drop = atomic_load(&c->last_drop_ms);
	int64_t conflict = atomic_load(&c->last_conflict_ms);
	uint64_t lag = atomic_load(&c->lag);

	if (!atomic_load(&c->connected)) {
		uint32_t queued;

		pthread_mutex_lock(&c->mu);
		queued = c->n + atomic_load(&c->inflight);
		pthread_mutex_unlock(&c->mu);
		snprintf(why, len, "NATS unreachable for %.0f s: cross-card features count this "
		    "replica's traffic only; %u observation(s) queued", down > 0 ?
		    (double)(now - down) / 1000.0 : 0.0, queued);
		return true;
	}
	if (atomic_load(&c->pub_failing)) {
		pthread_mutex_lock(&c->mu);
		snprintf(why, len, "publishing to JetStream fails: %s; retrying", c->pub_error);
		pthread_mutex_unlock(&c->mu);
		return true;
	}
	if (!atomic_load(&c->ready_js)) {
		snprintf(why, len, "JetStream stream %s not set up yet", c->stream);
		return true;
	}
	if (conflict != 0 && now - conflict < CLUSTER_DROP_WINDOW_MS) {
		pthread_mutex_lock(&c->mu);
		snprintf(why, len, "another process runs as replica %s (nonce %s, this process's "
		    "%s), the last message %.0f s ago: each skips the other's observations as its "
		    "own, for 24 h after", c->s->cfg.cluster_replica, c->conflict_nonce, c->nonce,
		    (double)(now - conflict) / 1000.0);
		pthread_mutex_unlock(&c->mu);
		return true;
	}
	if (drop != 0 && now - drop < CLUSTER_DROP_WINDOW_MS) {
		snprintf(why, len, "%" PRIu64 " observation(s) dropped (queue full), the last %.0f s "
		    "ago: other replicas undercount this one's traffic for 24 h after",
		    (uint64_t)atomic_load(&c->dropped), (double)(now - drop) / 1000.0);
		return true;
	}
	/* the start-up replay only: later, a backlog under load is the lag
	 * metric's business, not a state to flap in and out of */
	if (lag > 0 && !atomic_load(&c->caught_up)) {
		snprintf(why, len, "catching up: %" PRIu64 " message(s) of stream %s not applied yet",
		    lag, c->stream);
		return true;
	}
	why[0] = '\0';
	return false;
}
