/* SPDX-License-Identifier: MIT */
/*
 * server/cluster_seq.h - which stream messages the cluster's subscription
 * applies (server/cluster.c), kept apart so that tests can drive it.
 *
 * Each message is applied once, by stream sequence: one at or below the
 * last handled is skipped (a redelivery after the ordered consumer
 * reset). The stream lost and created again counts from 1 again, and the
 * subscription is replaced by one from the new stream's start. Before that
 * replacement (the stream is checked every CLUSTER_CHECK_MS), nats.c's
 * ordered consumer may already have re-attached to the new stream, from
 * the old stream's last sequence + 1, and delivered part of it, which the
 * replacement delivers again. Such a re-attachment is a new consumer: its
 * first message has consumer sequence 1. The first message of each
 * consumer is kept (the last sequence before it, its time); when the new
 * stream's creation time is known, the earliest consumer whose first
 * message is not older than the stream started on it, and what it
 * applied, (before, last], is skipped once by the replacement. The last
 * CLUSTER_SEQ_STARTS consumers are remembered: more resets than that
 * between the re-attachment and the check (a few seconds) would forget
 * the first, and what it applied would be applied again.
 *
 * This replica's own subject carries, past the stream's last sequence
 * when this process first subscribed (history), this process's messages
 * only: what its earlier starts published is at or below it (each start
 * ended before the next began), and a stream created again is wholly
 * newer than this process. A message of another process there means
 * another live vigild runs under our replica name.
 */
#ifndef VIGIL_SERVER_CLUSTER_SEQ_H
#define VIGIL_SERVER_CLUSTER_SEQ_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#define CLUSTER_SEQ_STARTS 8 /* consumers remembered (a reconnect makes one) */

typedef struct cluster_seq {
	uint64_t last;               /* the last sequence handled, in this stream */
	uint64_t skip_lo, skip_hi;   /* (lo, hi]: applied before, from this stream */
	struct {
		uint64_t before;     /* last when the consumer's first message came */
		int64_t  time_ns;    /* that message's time in the stream */
	} starts[CLUSTER_SEQ_STARTS]; /* oldest first */
	uint32_t nstarts;
	uint64_t history;            /* at or below: before this process subscribed */
} cluster_seq;

typedef enum cluster_seq_verdict {
	CLUSTER_SEQ_SEEN,    /* at or below the last: nothing to do */
	CLUSTER_SEQ_APPLIED, /* new here, but its content was applied already */
	CLUSTER_SEQ_APPLY,   /* apply it */
} cluster_seq_verdict;

/* A message of the current subscription: stream and consumer sequences,
 * its time in the stream (ns). */
static inline cluster_seq_verdict
cluster_seq_take(cluster_seq *q, uint64_t stream_seq, uint64_t consumer_seq, int64_t time_ns)
{
	if (consumer_seq == 1) {
		if (q->nstarts == CLUSTER_SEQ_STARTS) {
			memmove(&q->starts[0], &q->starts[1], (CLUSTER_SEQ_STARTS - 1) *
			    sizeof q->starts[0]);
			q->nstarts--;
		}
		q->starts[q->nstarts].before = q->last;
		q->starts[q->nstarts].time_ns = time_ns;
		q->nstarts++;
	}
	if (stream_seq <= q->last)
		return CLUSTER_SEQ_SEEN;
	q->last = stream_seq;
	if (stream_seq > q->skip_lo && stream_seq <= q->skip_hi)
		return CLUSTER_SEQ_APPLIED;
	return CLUSTER_SEQ_APPLY;
}

/* The stream was created again at created_ns: sequences count from 1, and
 * what a consumer started on the new stream already applied is skipped. */
static inline void
cluster_seq_new_stream(cluster_seq *q, int64_t created_ns)
{
	q->skip_lo = q->skip_hi = 0;
	for (uint32_t i = 0; i < q->nstarts; i++) {
		if (q->starts[i].time_ns >= created_ns) {
			if (q->last > q->starts[i].before) {
				q->skip_lo = q->starts[i].before;
				q->skip_hi = q->last;
			}
			break;
		}
	}
	q->nstarts = 0;
	q->last = 0;
	q->history = 0;
}

/* Whether a message on this replica's own subject, not published by this
 * process, is another live process's under our name (not an earlier
 * start's, which the local archive has). */
static inline bool
cluster_seq_conflict(const cluster_seq *q, uint64_t stream_seq)
{
	return stream_seq > q->history;
}

/* What cluster_seq_stalled carries from one look at the stream to the next
 * (zeroed at start). */
typedef struct cluster_stall {
	uint64_t behind_seq; /* the stream's last sequence when it was found
	                      * ahead of the last handled (0: none) */
	int64_t  behind_ms;  /* ... and when */
	uint64_t last_from;  /* where the last resubscription started */
	int64_t  wait_ms;    /* how long a message may wait now (0: stall_ms) */
} cluster_stall;

/*
 * Whether the subscription stalled: a message the stream held wait_ms ago
 * or more is not handled yet, and nothing was delivered for stall_ms.
 * JetStream's push consumer can stop delivering without a gap nats.c would
 * see (nats-server 2.9.10, after an update of a replicated stream, or a
 * restart of every node), so the ordered consumer does not reset itself.
 * Called at each look at the stream (msgs, last: its message count and
 * last sequence now; handled: the last sequence handled; last_msg_ms: when
 * the subscription last delivered, or was made, or NATS reconnected).
 * Returns the sequence to subscribe again from, or 0. A resubscription
 * that brought nothing (the next one would start where it did: say the
 * stream's last message was deleted) doubles the wait, up to 64 stall_ms,
 * so a message that cannot come costs a look every ten minutes or so.
 */
static inline uint64_t
cluster_seq_stalled(cluster_stall *st, int64_t now_ms, int64_t stall_ms, uint64_t msgs,
    uint64_t last, uint64_t handled, int64_t last_msg_ms)
{
	uint64_t from = handled + 1;

	if (st->wait_ms == 0)
		st->wait_ms = stall_ms;
	if (msgs == 0 || last <= handled) {
		st->behind_seq = 0; /* nothing waits (what expired unhandled is gone) */
		st->last_from = 0;
		st->wait_ms = stall_ms;
		return 0;
	}
	if (st->behind_seq == 0 || handled >= st->behind_seq) {
		st->behind_seq = last; /* to be handled within wait_ms from now */
		st->behind_ms = now_ms;
		return 0;
	}
	if (now_ms - st->behind_ms < st->wait_ms || now_ms - last_msg_ms < stall_ms)
		return 0; /* not that old yet, or still delivering (a backlog) */
	if (from == st->last_from) {
		if (st->wait_ms < 64 * stall_ms)
			st->wait_ms *= 2;
	} else {
		st->wait_ms = stall_ms;
	}
	st->last_from = from;
	st->behind_seq = 0; /* a new mark at the next look */
	return from;
}

/*
 * Where a subscription made again without a stall starts (the last one
 * failed: a timeout, NATS away): in the stream it read before (the same
 * creation time), at the first sequence not handled, so each retry does
 * not fetch the whole retained stream again only to skip it; a first
 * subscription, one to a stream created again, or one before anything
 * was handled, from the stream's start (0: DeliverAll).
 */
static inline uint64_t
cluster_seq_resume_from(int64_t read_created, int64_t created, uint64_t handled)
{
	return read_created != 0 && created == read_created && handled > 0 ? handled + 1 : 0;
}

#endif /* VIGIL_SERVER_CLUSTER_SEQ_H */
