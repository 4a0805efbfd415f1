/* SPDX-License-Identifier: MIT */
/*
 * server/metrics.c - vigild's counters and their Prometheus text exposition
 * (format 0.0.4) for GET /metrics. Counters are relaxed atomics bumped on
 * the scoring path (no lock, no allocation); rendering reads them and the
 * store's and rules' state on the admin thread. Every metric is listed in
 * docs/vigild.md, "Metrics".
 */
#include <event2/buffer.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "srv.h"

/* Upper bounds of the score latency histogram, in seconds. */
static const double lat_bounds[SRV_LAT_BUCKETS] = {
	0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
	0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
};

static const char *const req_type_names[SRV_REQ_COUNT_] = {
	"score", "label", "health", "rules_info", "unknown",
};

void
srv_metrics_request(srv_metrics *m, srv_req_type type, Vigil__V1__Status status)
{
	unsigned st = (unsigned)status < SRV_STATUS_COUNT ? (unsigned)status : SRV_STATUS_COUNT - 1;

	atomic_fetch_add_explicit(&m->requests[type][st], 1, memory_order_relaxed);
}

void
srv_metrics_latency(srv_metrics *m, uint64_t ns)
{
	double sec = (double)ns / 1e9;
	unsigned i = 0;

	while (i < SRV_LAT_BUCKETS && sec > lat_bounds[i])
		i++;
	atomic_fetch_add_explicit(&m->lat_bucket[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&m->lat_sum_ns, ns, memory_order_relaxed);
	atomic_fetch_add_explicit(&m->lat_count, 1, memory_order_relaxed);
}

/* Label values: backslash, double quote and newline escaped. */
static void
metrics_label(struct evbuffer *out, const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '\\' || *s == '"')
			evbuffer_add_printf(out, "\\%c", *s);
		else if (*s == '\n')
			evbuffer_add_printf(out, "\\n");
		else
			evbuffer_add(out, s, 1);
	}
}

/*
 * The exposition is a table: each row one metric (or one labelled sample of
 * it), read from a snapshot taken once per scrape. Plain rows print
 * "NAME{LABELS} VALUE" from a field of the snapshot; a row with a render
 * function prints its samples itself (per-rule, per-type, histograms). A
 * row without a type continues the metric above it (another label set).
 */
typedef struct metrics_hist {
	const double *le;        /* n upper bounds; the last bucket is +Inf */
	unsigned      n;
	uint64_t      bucket[SRV_LAT_BUCKETS > SRV_CLUSTER_DELAY_BUCKETS ?
	    SRV_LAT_BUCKETS + 1 : SRV_CLUSTER_DELAY_BUCKETS + 1]; /* not cumulative */
	double        sum;
	int           sum_prec;  /* digits after the point */
	uint64_t      count;
} metrics_hist;

/* A gauge that is 1 with a label saying which while something is refused
 * or failing, else 0 without the label. */
typedef struct metrics_flag {
	bool on;
	char label[48];
} metrics_flag;

typedef enum metrics_part {
	MP_ALWAYS,
	MP_STORE,   /* when ready and the store is open */
	MP_CLUSTER, /* when [cluster] runs */
	MP_SHIP,    /* when [store] ship_command runs */
	MP_COUNT_
} metrics_part;

typedef struct metrics_snap {
	srv_server   *s;
	srv_ruleset  *rs;
	bool          part[MP_COUNT_]; /* which parts are shown, read once */
	bool          up, ready;
	uint64_t      uptime_s, duplicates, id_conflicts, dry_runs, queue_depth, queue_capacity, queued;
	metrics_hist  latency;
	char          lasterr[SRV_ERR_MAX];
	double        rules_loaded_s;
	uint64_t      rules_loads, rules_load_failures;
	/* the store: read when ready and open */
	uint64_t      generation, model_generation, model_refusals, generation_refusals;
	double        generation_age_s, generation_switched_s, generation_verify_s, model_age_s;
	double        refresh_running_s;
	bool          generation_verified;
	metrics_flag  generation_refused, model_refused, archive_error;
	store_db_stats   st;
	store_db_health  h;
	/* housekeeping and exposure */
	uint64_t      maint_runs, maint_failures;
	double        maint_ok_s;
	uint64_t      http_requests, nng_connections, http_connections, max_connections,
	              admin_max_connections, nng_conn_refused, http_conn_closed,
	              http_accept_paused, http_unauthorized, queue_timeouts, conn_overloaded,
	              nng_conn_unread, tls_handshake_timeouts;
	/* the cluster: read when it runs */
	srv_cluster_stats cs;
	bool          cluster_degraded;
	metrics_hist  propagation;
	/* archive shipping: read when it runs */
	srv_ship_stats ship;
} metrics_snap;

typedef enum metrics_fmt {
	MF_U64,  /* uint64_t */
	MF_BOOL, /* bool, as 0 or 1 */
	MF_F3,   /* double, 3 digits after the point */
	MF_F6,   /* double, 6 digits */
	MF_FLAG, /* metrics_flag: NAME{LABELS"label"} 1, or NAME 0 */
	MF_HIST, /* metrics_hist */
	MF_FN,   /* the row's render function */
} metrics_fmt;

typedef struct metrics_row {
	const char  *name;
	const char  *type;   /* NULL: another sample of the metric above */
	const char  *help;
	metrics_part part;
	metrics_fmt  fmt;
	size_t       off;    /* of the value in metrics_snap */
	const char  *labels; /* "{k=\"v\"}", or for MF_FLAG "{k=\"" */
	void       (*render)(struct evbuffer *out, const char *name, const metrics_snap *snap);
} metrics_row;

static void
metrics_requests(struct evbuffer *out, const char *name, const metrics_snap *snap)
{
	srv_metrics *m = &snap->s->metrics;

	for (unsigned t = 0; t < SRV_REQ_COUNT_; t++)
		for (unsigned st = 0; st < SRV_STATUS_COUNT; st++) {
			uint64_t v = atomic_load_explicit(&m->requests[t][st], memory_order_relaxed);

			if (v == 0 && st != 0)
				continue;
			evbuffer_add_printf(out, "%s{type=\"%s\",status=\"%s\"} %llu\n", name,
			    req_type_names[t], srv_status_name((Vigil__V1__Status)st),
			    (unsigned long long)v);
		}
}

static void
metrics_decisions(struct evbuffer *out, const char *name, const metrics_snap *snap)
{
	for (unsigned d = VIGIL_DECISION_ALLOW; d <= VIGIL_DECISION_DECLINE; d++)
		evbuffer_add_printf(out, "%s{decision=\"%s\"} %llu\n", name,
		    vigil_decision_name((vigil_decision)d),
		    (unsigned long long)atomic_load(&snap->s->metrics.decisions[d]));
}

static void
metrics_rules_info(struct evbuffer *out, const char *name, const metrics_snap *snap)
{
	if (snap->rs == NULL)
		return;
	evbuffer_add_printf(out, "%s{version=\"", name);
	metrics_label(out, rules_prog_version(snap->rs->rules->prog));
	evbuffer_add_printf(out, "\",hash=\"%s\",path=\"", rules_prog_hash(snap->rs->rules->prog));
	metrics_label(out, snap->rs->rules->path);
	evbuffer_add_printf(out, "\"} 1\n");
}

static void
metrics_rule_hits(struct evbuffer *out, const char *name, const metrics_snap *snap)
{
	if (snap->rs == NULL)
		return;
	for (uint32_t i = 0; i < snap->rs->rules->nrules; i++) {
		rules_rule_info ri;

		rules_prog_rule(snap->rs->rules->prog, i, &ri);
		evbuffer_add_printf(out, "%s{rule=\"", name);
		metrics_label(out, ri.name);
		evbuffer_add_printf(out, "\",mode=\"%s\"} %llu\n", rules_mode_name(ri.mode),
		    (unsigned long long)atomic_load_explicit(snap->rs->rules->hits[i],
		    memory_order_relaxed));
	}
}

static void
metrics_last_error(struct evbuffer *out, const char *name, const metrics_snap *snap)
{
	evbuffer_add_printf(out, "%s{error=\"", name);
	metrics_label(out, snap->lasterr);
	evbuffer_add_printf(out, "\"} %d\n", snap->lasterr[0] != '\0' ? 1 : 0);
}

static void
metrics_tls_expiry(struct evbuffer *out, const char *name, const metrics_snap *snap)
{
	for (int i = 0; i < SRV_TLS_COUNT_; i++) {
		int64_t left;

		if (srv_tls_expiry_left(snap->s, (srv_tls_item)i, vigil_now_ms(), &left))
			evbuffer_add_printf(out, "%s{file=\"%s\"} %lld\n", name,
			    srv_tls_item_name((srv_tls_item)i), (long long)left);
	}
}

#define SNAP(field) offsetof(metrics_snap, field)
#define NNG   "{listener=\"nng\"}"
#define ADMIN "{listener=\"admin\"}"

/* Every metric, in exposition order; docs/vigild.md, "Metrics", lists them. */
static const metrics_row metrics_rows[] = {
	{ "vigil_up", "gauge", "1 when rules are compiled and the store is open",
	  MP_ALWAYS, MF_BOOL, SNAP(up), "", NULL },
	{ "vigil_ready", "gauge", "1 when /readyz answers 200 (not starting, draining, failing "
	  "to archive, or serving a refused generation or model unless [health] "
	  "ready_when_degraded)", MP_ALWAYS, MF_BOOL, SNAP(ready), "", NULL },
	{ "vigil_uptime_seconds", "gauge", "seconds since vigild started",
	  MP_ALWAYS, MF_U64, SNAP(uptime_s), "", NULL },
	{ "vigil_requests_total", "counter", "requests answered, by request type and reply status",
	  MP_ALWAYS, MF_FN, 0, "", metrics_requests },
	{ "vigil_decisions_total", "counter",
	  "scored transactions (not dry runs, not duplicates), by decision",
	  MP_ALWAYS, MF_FN, 0, "", metrics_decisions },
	{ "vigil_duplicates_total", "counter",
	  "score requests answered with the first outcome of an earlier txn_id",
	  MP_ALWAYS, MF_U64, SNAP(duplicates), "", NULL },
	{ "vigil_txn_id_conflicts_total", "counter",
	  "score requests refused because their txn_id was scored for a different transaction",
	  MP_ALWAYS, MF_U64, SNAP(id_conflicts), "", NULL },
	{ "vigil_dry_runs_total", "counter", "dry-run score requests",
	  MP_ALWAYS, MF_U64, SNAP(dry_runs), "", NULL },
	{ "vigil_score_latency_seconds", "histogram",
	  "server-side latency of successful score requests, decode to reply",
	  MP_ALWAYS, MF_HIST, SNAP(latency), "", NULL },
	{ "vigil_queue_depth", "gauge", "requests waiting for a worker",
	  MP_ALWAYS, MF_U64, SNAP(queue_depth), "", NULL },
	{ "vigil_queue_capacity", "gauge", "[server] max_inflight",
	  MP_ALWAYS, MF_U64, SNAP(queue_capacity), "", NULL },
	{ "vigil_queued_total", "counter",
	  "requests that waited in the work queue (fsync always, or every inline slot busy)",
	  MP_ALWAYS, MF_U64, SNAP(queued), "", NULL },

	/* rules */
	{ "vigil_rules_info", "gauge",
	  "the loaded rule file: declared version and content hash (value 1)",
	  MP_ALWAYS, MF_FN, 0, "", metrics_rules_info },
	{ "vigil_rule_hits_total", "counter",
	  "transactions each rule fired on (active and shadow), scored and archived",
	  MP_ALWAYS, MF_FN, 0, "", metrics_rule_hits },
	{ "vigil_rules_loaded_timestamp_seconds", "gauge",
	  "when the serving rule file was loaded (Unix seconds)",
	  MP_ALWAYS, MF_F3, SNAP(rules_loaded_s), "", NULL },
	{ "vigil_rules_loads_total", "counter", "rule files loaded successfully",
	  MP_ALWAYS, MF_U64, SNAP(rules_loads), "", NULL },
	{ "vigil_rules_load_failures_total", "counter",
	  "rule files rejected (the previous rules kept serving)",
	  MP_ALWAYS, MF_U64, SNAP(rules_load_failures), "", NULL },
	{ "vigil_rules_last_load_error", "gauge",
	  "1 with the error of the last load attempt if it failed, else 0",
	  MP_ALWAYS, MF_FN, 0, "", metrics_last_error },

	/* features, model and store (docs/storage.md, "Verification") */
	{ "vigil_features_generation", "gauge", "batch feature generation being read (0 = none yet)",
	  MP_STORE, MF_U64, SNAP(generation), "", NULL },
	{ "vigil_features_generation_age_seconds", "gauge",
	  "seconds since the as-of time of the batch generation being read",
	  MP_STORE, MF_F3, SNAP(generation_age_s), "", NULL },
	{ "vigil_features_generation_switched_timestamp_seconds", "gauge",
	  "when vigild last switched to a new generation (Unix seconds)",
	  MP_STORE, MF_F3, SNAP(generation_switched_s), "", NULL },
	{ "vigil_features_generation_verified", "gauge",
	  "1 if the generation being read matched its CHECKSUM, 0 if none is read or it was "
	  "written before checksums", MP_STORE, MF_BOOL, SNAP(generation_verified), "", NULL },
	{ "vigil_features_generation_verify_seconds", "gauge",
	  "time spent reading and hashing the generation being read before it was mapped",
	  MP_STORE, MF_F6, SNAP(generation_verify_s), "", NULL },
	{ "vigil_features_refresh_running_seconds", "gauge",
	  "how long the check of CURRENT running now has taken (reading and hashing a new "
	  "generation), 0 when none runs: one that keeps growing is a read that does not end",
	  MP_STORE, MF_F3, SNAP(refresh_running_s), "", NULL },
	{ "vigil_features_generation_refused", "gauge",
	  "1 while the generation CURRENT names is refused (damaged, missing, unreadable; "
	  "label: its number, 0 for a malformed CURRENT) and another or none is read",
	  MP_STORE, MF_FLAG, SNAP(generation_refused), "{generation=\"", NULL },
	{ "vigil_model_generation", "gauge",
	  "generation whose model is serving (0: none, rules alone decide)",
	  MP_STORE, MF_U64, SNAP(model_generation), "", NULL },
	{ "vigil_model_age_seconds", "gauge",
	  "seconds since the as-of time the serving model was trained at (a model carried "
	  "over keeps its own; 0: no model or no as_of_ms)",
	  MP_STORE, MF_F3, SNAP(model_age_s), "", NULL },
	{ "vigil_model_refused", "gauge",
	  "1 while the current generation's model is refused (damaged, unknown version or "
	  "feature; label: the generation) and the previous one or none serves",
	  MP_STORE, MF_FLAG, SNAP(model_refused), "{generation=\"", NULL },
	{ "vigil_model_refusals_total", "counter",
	  "models refused since start (each attempt: start-up, switches, rule reloads)",
	  MP_STORE, MF_U64, SNAP(model_refusals), "", NULL },
	{ "vigil_features_generation_refusals_total", "counter",
	  "generations refused since start (at start-up and at switches)",
	  MP_STORE, MF_U64, SNAP(generation_refusals), "", NULL },
	{ "vigil_archive_records_total", "counter", "records appended to the archive",
	  MP_STORE, MF_U64, SNAP(st.archive.records), "", NULL },
	{ "vigil_archive_bytes_total", "counter", "bytes appended to the archive",
	  MP_STORE, MF_U64, SNAP(st.archive.bytes), "", NULL },
	{ "vigil_archive_segments", "gauge", "archive segment files",
	  MP_STORE, MF_U64, SNAP(st.archive.segments), "", NULL },
	{ "vigil_archive_syncs_total", "counter", "fdatasync calls on the archive",
	  MP_STORE, MF_U64, SNAP(st.archive.syncs), "", NULL },
	{ "vigil_archive_last_seq", "gauge", "sequence number of the last record",
	  MP_STORE, MF_U64, SNAP(st.archive.last_seq), "", NULL },
	{ "vigil_archive_error", "gauge",
	  "1 while the archive refuses appends after a failed write, sync or segment creation "
	  "(label: the errno), 0 when healthy",
	  MP_STORE, MF_FLAG, SNAP(archive_error), "{errno=\"", NULL },
	{ "vigil_archive_rotation_postponed", "gauge",
	  "1 while a segment rotation is postponed (the next segment could not be created; "
	  "appends go on in the open one)",
	  MP_STORE, MF_BOOL, SNAP(h.archive.degraded), "", NULL },
	{ "vigil_archive_failures_total", "counter",
	  "failed archive writes, syncs, segment creations and truncations, retries included",
	  MP_STORE, MF_U64, SNAP(h.archive.failures), "", NULL },
	{ "vigil_archive_refused_total", "counter",
	  "appends refused or dropped unwritten while the archive was failing",
	  MP_STORE, MF_U64, SNAP(h.archive.refused), "", NULL },
	{ "vigil_archive_corrupt_stretches_total", "counter",
	  "damaged stretches of the archive skipped by the live-state recovery at start",
	  MP_STORE, MF_U64, SNAP(h.archive_corrupt_stretches), "", NULL },
	{ "vigil_archive_corrupt_records_total", "counter",
	  "archive records known lost in damaged zstd frames (by their frame tables), found by "
	  "the live-state recovery at start",
	  MP_STORE, MF_U64, SNAP(h.archive_lost_records), "", NULL },
	{ "vigil_live_cards", "gauge", "cards in the live velocity state",
	  MP_STORE, MF_U64, SNAP(st.live_cards), "", NULL },
	{ "vigil_live_entities", "gauge",
	  "entities (cards, merchants, terminals, devices, IPs) in the live state",
	  MP_STORE, MF_U64, SNAP(st.live_entities), "", NULL },
	{ "vigil_live_events", "gauge", "events held in live windows",
	  MP_STORE, MF_U64, SNAP(st.live_events), "", NULL },
	{ "vigil_dedupe_entries", "gauge", "txn_ids remembered for retries",
	  MP_STORE, MF_U64, SNAP(st.dedupe_entries), "", NULL },
	{ "vigil_late_events_total", "counter",
	  "events older than the largest live window (archived, not applied)",
	  MP_STORE, MF_U64, SNAP(st.late_events), "", NULL },

	/* housekeeping */
	{ "vigil_maintenance_runs_total", "counter",
	  "store housekeeping passes (archive rotation, compression, retention; live sweep)",
	  MP_ALWAYS, MF_U64, SNAP(maint_runs), "", NULL },
	{ "vigil_maintenance_failures_total", "counter",
	  "housekeeping passes that failed (the error is logged)",
	  MP_ALWAYS, MF_U64, SNAP(maint_failures), "", NULL },
	{ "vigil_maintenance_last_success_timestamp_seconds", "gauge",
	  "when housekeeping last succeeded (Unix seconds; 0 = not yet)",
	  MP_ALWAYS, MF_F3, SNAP(maint_ok_s), "", NULL },
	{ "vigil_http_requests_total", "counter", "admin HTTP requests",
	  MP_ALWAYS, MF_U64, SNAP(http_requests), "", NULL },

	/* exposure (docs/security.md) */
	{ "vigil_connections", "gauge", "open connections per listener",
	  MP_ALWAYS, MF_U64, SNAP(nng_connections), NNG, NULL },
	{ "vigil_connections", NULL, NULL, MP_ALWAYS, MF_U64, SNAP(http_connections), ADMIN, NULL },
	{ "vigil_connections_max", "gauge", "[server] max_connections and admin_max_connections",
	  MP_ALWAYS, MF_U64, SNAP(max_connections), NNG, NULL },
	{ "vigil_connections_max", NULL, NULL,
	  MP_ALWAYS, MF_U64, SNAP(admin_max_connections), ADMIN, NULL },
	{ "vigil_connections_refused_total", "counter",
	  "nng connections closed at once: max_connections were open, or no memory to count one",
	  MP_ALWAYS, MF_U64, SNAP(nng_conn_refused), NNG, NULL },
	{ "vigil_http_connections_closed_total", "counter",
	  "admin connections closed by vigild: no complete request within 10 s, or "
	  "admin_max_connections_per_address open from its address",
	  MP_ALWAYS, MF_U64, SNAP(http_conn_closed), "", NULL },
	{ "vigil_http_accept_pauses_total", "counter",
	  "admin listener paused: admin_max_connections reached, or accept failed (no "
	  "descriptors)", MP_ALWAYS, MF_U64, SNAP(http_accept_paused), "", NULL },
	{ "vigil_http_unauthorized_total", "counter",
	  "admin requests refused: no or wrong bearer token (401), or no token and not "
	  "loopback (403)", MP_ALWAYS, MF_U64, SNAP(http_unauthorized), "", NULL },
	{ "vigil_queue_timeouts_total", "counter",
	  "requests answered OVERLOADED after waiting longer than queue_timeout_ms",
	  MP_ALWAYS, MF_U64, SNAP(queue_timeouts), "", NULL },
	{ "vigil_connection_overloaded_total", "counter",
	  "requests answered OVERLOADED because their connection had "
	  "max_inflight_per_connection requests in flight",
	  MP_ALWAYS, MF_U64, SNAP(conn_overloaded), "", NULL },
	{ "vigil_connections_closed_total", "counter",
	  "nng connections closed by vigild: twice max_inflight_per_connection requests and "
	  "replies held, the peer not reading its replies",
	  MP_ALWAYS, MF_U64, SNAP(nng_conn_unread), NNG, NULL },
	{ "vigil_tls_handshake_timeouts_total", "counter",
	  "connections to a tls+tcp listener closed by vigild: the TLS handshake not complete "
	  "within [tls] handshake_timeout_ms", MP_ALWAYS, MF_U64, SNAP(tls_handshake_timeouts), "",
	  NULL },
	{ "vigil_tls_expiry_seconds", "gauge",
	  "seconds until the loaded [tls] file stops working: cert and ca at the end of their "
	  "validity, crl at its next update (negative: past it, clients are refused)",
	  MP_ALWAYS, MF_FN, 0, "", metrics_tls_expiry },

	/* [cluster]: cross-card observations between replicas (cluster.c) */
	{ "vigil_cluster_connected", "gauge", "1 while NATS is connected",
	  MP_CLUSTER, MF_BOOL, SNAP(cs.connected), "", NULL },
	{ "vigil_cluster_degraded", "gauge", "1 while cross-card features lack other replicas' "
	  "traffic: NATS unreachable, publishing failing, another process using this replica's "
	  "name or observations dropped in the last 24 h, or catching up (/healthz says why)",
	  MP_CLUSTER, MF_BOOL, SNAP(cluster_degraded), "", NULL },
	{ "vigil_cluster_published_total", "counter",
	  "observations of this replica's transactions stored by JetStream",
	  MP_CLUSTER, MF_U64, SNAP(cs.published), "", NULL },
	{ "vigil_cluster_applied_total", "counter",
	  "observations of other replicas' transactions applied to the entity state",
	  MP_CLUSTER, MF_U64, SNAP(cs.applied), "", NULL },
	{ "vigil_cluster_dropped_total", "counter", "observations not published: the queue was full",
	  MP_CLUSTER, MF_U64, SNAP(cs.dropped), "", NULL },
	{ "vigil_cluster_publish_failures_total", "counter",
	  "publish attempts that failed (the batch is retried)",
	  MP_CLUSTER, MF_U64, SNAP(cs.publish_failures), "", NULL },
	{ "vigil_cluster_bad_messages_total", "counter",
	  "messages on the cluster's subjects that did not decode (skipped)",
	  MP_CLUSTER, MF_U64, SNAP(cs.bad_messages), "", NULL },
	{ "vigil_cluster_refused_total", "counter", "observations of other replicas refused: "
	  "their event time more than max_future_skew_ms ahead of this replica's clock",
	  MP_CLUSTER, MF_U64, SNAP(cs.refused), "", NULL },
	{ "vigil_cluster_duplicates_total", "counter", "messages of other replicas skipped as a "
	  "second copy of a batch applied already (stored twice; the first 100 logged)",
	  MP_CLUSTER, MF_U64, SNAP(cs.duplicates), "", NULL },
	{ "vigil_cluster_resubscribed_total", "counter", "subscriptions to the stream that "
	  "stalled (a message waiting 10 s, none delivered) and were made again from the first "
	  "sequence not handled (each logged)", MP_CLUSTER, MF_U64, SNAP(cs.resubscribed), "", NULL },
	{ "vigil_cluster_replica_conflict_total", "counter", "messages on this replica's subject "
	  "from another process using its replica name (skipped as its own; the first logged)",
	  MP_CLUSTER, MF_U64, SNAP(cs.replica_conflicts), "", NULL },
	{ "vigil_cluster_queue_depth", "gauge", "observations waiting to be published",
	  MP_CLUSTER, MF_U64, SNAP(cs.queued), "", NULL },
	{ "vigil_cluster_lag_messages", "gauge", "messages of the stream not yet delivered to this "
	  "replica, as of the last one delivered", MP_CLUSTER, MF_U64, SNAP(cs.lag), "", NULL },
	{ "vigil_cluster_last_sequence", "gauge", "stream sequence of the last message handled",
	  MP_CLUSTER, MF_U64, SNAP(cs.last_seq), "", NULL },
	{ "vigil_cluster_propagation_seconds", "histogram", "from the commit on another replica to "
	  "the observation applied here (two machines' wall clocks)",
	  MP_CLUSTER, MF_HIST, SNAP(propagation), "", NULL },

	/* [store] ship_command: archive shipping (ship.c) */
	{ "vigil_archive_unshipped_segments", "gauge", "sealed archive segments not shipped yet",
	  MP_SHIP, MF_U64, SNAP(ship.unshipped_segments), "", NULL },
	{ "vigil_archive_unshipped_bytes", "gauge",
	  "bytes of the sealed archive segments not shipped yet",
	  MP_SHIP, MF_U64, SNAP(ship.unshipped_bytes), "", NULL },
	{ "vigil_archive_shipped_segments_total", "counter", "archive segments shipped since start",
	  MP_SHIP, MF_U64, SNAP(ship.shipped), "", NULL },
	{ "vigil_archive_ship_failures_total", "counter",
	  "ship_command runs that failed (each retried)",
	  MP_SHIP, MF_U64, SNAP(ship.failures), "", NULL },
	{ "vigil_archive_ship_failing", "gauge", "1 while the last ship_command run failed",
	  MP_SHIP, MF_BOOL, SNAP(ship.failing), "", NULL },
	{ "vigil_archive_shipped_through", "gauge", "sequence number of the last segment shipped",
	  MP_SHIP, MF_U64, SNAP(ship.shipped_through), "", NULL },
};

static void
metrics_hist_render(struct evbuffer *out, const char *name, const metrics_hist *hg)
{
	uint64_t cum = 0;

	for (unsigned i = 0; i <= hg->n; i++) {
		cum += hg->bucket[i];
		if (i < hg->n)
			evbuffer_add_printf(out, "%s_bucket{le=\"%g\"} %llu\n", name, hg->le[i],
			    (unsigned long long)cum);
		else
			evbuffer_add_printf(out, "%s_bucket{le=\"+Inf\"} %llu\n", name,
			    (unsigned long long)cum);
	}
	evbuffer_add_printf(out, "%s_sum %.*f\n", name, hg->sum_prec, hg->sum);
	evbuffer_add_printf(out, "%s_count %llu\n", name, (unsigned long long)hg->count);
}

static void
metrics_row_render(struct evbuffer *out, const metrics_row *r, const metrics_snap *snap)
{
	const void *v = (const char *)snap + r->off;

	if (r->type != NULL)
		evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", r->name, r->help, r->name,
		    r->type);
	switch (r->fmt) {
	case MF_U64:
		evbuffer_add_printf(out, "%s%s %llu\n", r->name, r->labels,
		    (unsigned long long)*(const uint64_t *)v);
		break;
	case MF_BOOL:
		evbuffer_add_printf(out, "%s%s %d\n", r->name, r->labels, *(const bool *)v ? 1 : 0);
		break;
	case MF_F3:
	case MF_F6:
		evbuffer_add_printf(out, "%s%s %.*f\n", r->name, r->labels, r->fmt == MF_F3 ? 3 : 6,
		    *(const double *)v);
		break;
	case MF_FLAG: {
		const metrics_flag *f = v;

		if (f->on) {
			evbuffer_add_printf(out, "%s%s", r->name, r->labels);
			metrics_label(out, f->label);
			evbuffer_add_printf(out, "\"} 1\n");
		} else {
			evbuffer_add_printf(out, "%s 0\n", r->name);
		}
		break;
	}
	case MF_HIST:
		metrics_hist_render(out, r->name, v);
		break;
	case MF_FN:
		r->render(out, r->name, snap);
		break;
	}
}

/* Reads what the store part shows (ready and the store open). */
static void
metrics_snap_store(srv_server *s, metrics_snap *snap)
{
	srv_ruleset *rs = snap->rs;
	store_gen_meta meta;
	char merr[SRV_ERR_MAX];
	uint64_t mref;
	int64_t mas_of;
	/* the generation scoring reads: the serving rule set's (reload.c) */
	int64_t as_of = rs != NULL && rs->gen != NULL &&
	    store_gen_meta_get(store_db_gen_get(rs->gen), &meta) == VIGIL_OK ? meta.as_of_ms : 0;

	snap->generation = rs != NULL ? rs->generation : 0;
	snap->generation_age_s = snap->generation != 0 && as_of > 0 ?
	    (double)(vigil_now_ms() - as_of) / 1000.0 : 0.0;
	snap->generation_switched_s = (double)atomic_load(&s->gen_switched_ms) / 1000.0;
	store_db_get_health(s->db, &snap->h);
	store_db_get_stats(s->db, &snap->st);
	snap->generation_verified = snap->h.generation_verified;
	snap->generation_verify_s = (double)snap->h.generation_verify_us / 1e6;
	snap->refresh_running_s = (double)srv_refresh_running_ms(s) / 1000.0;
	snap->generation_refused.on = snap->h.generation_refused;
	snprintf(snap->generation_refused.label, sizeof snap->generation_refused.label, "%llu",
	    (unsigned long long)snap->h.refused_generation);
	snap->generation_refusals = snap->h.generation_refusals;
	mref = srv_model_refused(s, merr, sizeof merr);
	snap->model_generation = atomic_load(&s->model_generation);
	mas_of = atomic_load(&s->model_as_of_ms);
	snap->model_age_s = snap->model_generation != 0 && mas_of > 0 ?
	    (double)(vigil_now_ms() - mas_of) / 1000.0 : 0.0;
	snap->model_refused.on = mref != 0;
	snprintf(snap->model_refused.label, sizeof snap->model_refused.label, "%llu",
	    (unsigned long long)mref);
	snap->model_refusals = atomic_load(&s->model_failures);
	snap->archive_error.on = snap->h.archive.failing;
	snprintf(snap->archive_error.label, sizeof snap->archive_error.label, "%s",
	    strerrorname_np(snap->h.archive.err) != NULL ? strerrorname_np(snap->h.archive.err) :
	    "EUNKNOWN");
}

static void
metrics_snap_take(srv_server *s, srv_ruleset *rs, metrics_snap *snap)
{
	srv_metrics *m = &s->metrics;

	memset(snap, 0, sizeof *snap);
	snap->s = s;
	snap->rs = rs;
	snap->part[MP_ALWAYS] = true;
	snap->part[MP_STORE] = atomic_load(&s->ready) && s->db != NULL;
	/* set by the main thread before it stores ready (main.c): read after
	 * loading it, or a scrape during start-up races their setting */
	snap->part[MP_CLUSTER] = atomic_load(&s->ready) && s->cluster != NULL;
	snap->part[MP_SHIP] = atomic_load(&s->ready) && s->ship != NULL;
	snap->up = atomic_load(&s->ready) && rs != NULL;
	snap->ready = srv_ready(s, snap->lasterr, sizeof snap->lasterr);
	snap->uptime_s = (uint64_t)((vigil_now_ms() - s->started_ms) / 1000);
	snap->duplicates = atomic_load(&m->duplicates);
	snap->id_conflicts = atomic_load(&m->id_conflicts);
	snap->dry_runs = atomic_load(&m->dry_runs);
	snap->latency.le = lat_bounds;
	snap->latency.n = SRV_LAT_BUCKETS;
	for (unsigned i = 0; i <= SRV_LAT_BUCKETS; i++) {
		snap->latency.bucket[i] = atomic_load_explicit(&m->lat_bucket[i], memory_order_relaxed);
		snap->latency.count += snap->latency.bucket[i];
	}
	snap->latency.sum = (double)atomic_load(&m->lat_sum_ns) / 1e9;
	snap->latency.sum_prec = 9;
	snap->queue_depth = atomic_load(&m->queue_depth);
	snap->queued = atomic_load(&m->queued);
	snap->queue_capacity = s->cfg.max_inflight;
	snap->rules_loaded_s = rs != NULL ? (double)rs->rules->loaded_at_ms / 1000.0 : 0.0;
	snap->rules_loads = atomic_load(&s->loads);
	snap->rules_load_failures = atomic_load(&s->load_failures);
	srv_rules_last_error(s, snap->lasterr, sizeof snap->lasterr);
	if (snap->part[MP_STORE])
		metrics_snap_store(s, snap);
	snap->maint_runs = atomic_load(&s->maint_runs);
	snap->maint_failures = atomic_load(&s->maint_failures);
	snap->maint_ok_s = (double)atomic_load(&s->maint_ok_ms) / 1000.0;
	snap->http_requests = atomic_load(&m->http_requests);
	snap->nng_connections = atomic_load(&m->nng_connections);
	snap->http_connections = atomic_load(&m->http_connections);
	snap->max_connections = s->cfg.max_connections;
	snap->admin_max_connections = s->cfg.admin_max_connections;
	snap->nng_conn_refused = atomic_load(&m->nng_conn_refused);
	snap->http_conn_closed = atomic_load(&m->http_conn_closed);
	snap->http_accept_paused = atomic_load(&m->http_accept_paused);
	snap->http_unauthorized = atomic_load(&m->http_unauthorized);
	snap->queue_timeouts = atomic_load(&m->queue_timeouts);
	snap->conn_overloaded = atomic_load(&m->conn_overloaded);
	snap->nng_conn_unread = atomic_load(&m->nng_conn_unread);
	snap->tls_handshake_timeouts = atomic_load(&m->tls_handshake_timeouts);
	if (snap->part[MP_CLUSTER]) {
		char why[512];

		srv_cluster_get_stats(s->cluster, &snap->cs);
		snap->cluster_degraded = srv_cluster_degraded(s->cluster, why, sizeof why);
		snap->propagation.le = srv_cluster_delay_le;
		snap->propagation.n = SRV_CLUSTER_DELAY_BUCKETS;
		memcpy(snap->propagation.bucket, snap->cs.delay_bucket, sizeof snap->cs.delay_bucket);
		snap->propagation.sum = snap->cs.delay_sum_s;
		snap->propagation.sum_prec = 6;
		snap->propagation.count = snap->cs.delay_count;
	}
	if (snap->part[MP_SHIP])
		srv_ship_get_stats(s->ship, &snap->ship);
}

void
srv_metrics_render(srv_server *s, struct evbuffer *out)
{
	srv_ruleset *rs = srv_ruleset_acquire(s);
	metrics_snap snap;

	metrics_snap_take(s, rs, &snap);
	for (size_t i = 0; i < sizeof metrics_rows / sizeof metrics_rows[0]; i++)
		if (snap.part[metrics_rows[i].part])
			metrics_row_render(out, &metrics_rows[i], &snap);
	srv_ruleset_release(rs);
}
