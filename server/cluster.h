/* SPDX-License-Identifier: MIT */
/*
 * server/cluster.h - private to server/: cross-card observations between
 * replicas through NATS JetStream (cluster.c), and the counters /metrics
 * shows of them.
 */
#ifndef VIGIL_SERVER_CLUSTER_H
#define VIGIL_SERVER_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vigil.h"

struct srv_server;

/*
 * Cross-card state between replicas through NATS JetStream (docs/operations.md,
 * "Running a cluster"). srv_cluster_start connects in the background (an
 * unreachable NATS is not an error: the replica scores with its own view and
 * says it is degraded) and starts the publisher thread. srv_cluster_publish
 * is called by a scoring thread after a commit that applied txn: it only
 * queues (a bounded queue; full: the observation is dropped and counted).
 * Received observations of other replicas go to store_db_observe, each
 * JetStream message once.
 */
typedef struct srv_cluster srv_cluster;

#define SRV_CLUSTER_DELAY_BUCKETS 17

typedef struct srv_cluster_stats {
	uint64_t published;       /* observations acknowledged by JetStream */
	uint64_t applied;         /* observations of other replicas applied */
	uint64_t dropped;         /* not published: the queue was full */
	uint64_t publish_failures; /* publish attempts that failed (retried) */
	uint64_t bad_messages;    /* messages that did not decode (skipped, logged) */
	uint64_t refused;         /* observations too far ahead (max_future_skew_ms) */
	uint64_t duplicates;      /* messages a second copy of a batch applied (skipped) */
	uint64_t resubscribed;    /* stalled subscriptions replaced */
	uint64_t replica_conflicts; /* messages of another process on our subject */
	uint64_t queued;          /* waiting to be published */
	uint64_t lag;             /* messages of the stream not yet delivered here */
	uint64_t last_seq;        /* last stream sequence handled */
	bool     connected;
	uint64_t delay_bucket[SRV_CLUSTER_DELAY_BUCKETS + 1]; /* last: +Inf */
	double   delay_sum_s;
	uint64_t delay_count;
} srv_cluster_stats;

/* The histogram's upper bounds, seconds. */
extern const double srv_cluster_delay_le[SRV_CLUSTER_DELAY_BUCKETS];

vigil_err srv_cluster_start(struct srv_server *s, srv_cluster **ret_c, char *errbuf,
    size_t errlen);
/* Publishes what is queued (up to 2 s), then disconnects. NULL: no-op. */
void      srv_cluster_stop(srv_cluster *c);
void      srv_cluster_publish(srv_cluster *c, const vigil_txn *txn);
void      srv_cluster_get_stats(srv_cluster *c, srv_cluster_stats *ret_stats);
/* Whether the cross-card features lack other replicas' traffic now: NATS
 * unreachable, publishing failing, another process using this replica's
 * name or observations dropped in the last 24 hours (the longest entity
 * window), or the start-up replay not at the end
 * of the stream yet. why: one line. */
bool      srv_cluster_degraded(srv_cluster *c, char *why, size_t len);

#endif /* VIGIL_SERVER_CLUSTER_H */
