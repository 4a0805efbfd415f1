/* SPDX-License-Identifier: MIT */
/*
 * server/metrics.h - private to server/: vigild's counters, bumped on the
 * scoring path as relaxed atomics (no lock, no allocation), and their
 * Prometheus text exposition (metrics.c).
 */
#ifndef VIGIL_SERVER_METRICS_H
#define VIGIL_SERVER_METRICS_H

#include <stdatomic.h>
#include <stdint.h>

#include "vigil.pb-c.h"

typedef enum srv_req_type {
	SRV_REQ_SCORE = 0,
	SRV_REQ_LABEL,
	SRV_REQ_HEALTH,
	SRV_REQ_RULES_INFO,
	SRV_REQ_UNKNOWN, /* not decoded: malformed, too big, empty */
	SRV_REQ_COUNT_
} srv_req_type;

#define SRV_STATUS_COUNT 8
#define SRV_LAT_BUCKETS  16

typedef struct srv_metrics {
	_Atomic uint64_t requests[SRV_REQ_COUNT_][SRV_STATUS_COUNT];
	_Atomic uint64_t decisions[4];        /* vigil_decision */
	_Atomic uint64_t duplicates;
	_Atomic uint64_t id_conflicts; /* a txn_id reused for another transaction */
	_Atomic uint64_t dry_runs;
	_Atomic uint64_t lat_bucket[SRV_LAT_BUCKETS + 1]; /* score, last = +Inf */
	_Atomic uint64_t lat_sum_ns;
	_Atomic uint64_t lat_count;
	_Atomic uint64_t http_requests;
	_Atomic uint64_t queue_depth;
	_Atomic uint64_t queued;                /* requests that waited in the work queue */
	/* exposure: connections and refusals per listener (rep.c, admin.c) */
	_Atomic uint64_t nng_connections;       /* gauge */
	_Atomic uint64_t nng_conn_refused;      /* over max_connections */
	_Atomic uint64_t http_connections;      /* gauge */
	_Atomic uint64_t http_conn_closed;      /* closed by vigild: request deadline, buffer cap */
	_Atomic uint64_t http_accept_paused;    /* accept paused: cap reached or no descriptors */
	_Atomic uint64_t http_unauthorized;     /* 401 answers */
	_Atomic uint64_t queue_timeouts;        /* waited longer than queue_timeout_ms */
	_Atomic uint64_t conn_overloaded;       /* over max_inflight_per_connection */
	_Atomic uint64_t nng_conn_unread;       /* closed: twice that, replies unread */
	_Atomic uint64_t tls_handshake_timeouts; /* closed: no pipe by handshake_timeout_ms */
} srv_metrics;

struct srv_server;
struct evbuffer;

void srv_metrics_request(srv_metrics *m, srv_req_type type, Vigil__V1__Status status);
void srv_metrics_latency(srv_metrics *m, uint64_t ns);
/* Appends the Prometheus text exposition of everything to out. */
void srv_metrics_render(struct srv_server *s, struct evbuffer *out);

#endif /* VIGIL_SERVER_METRICS_H */
