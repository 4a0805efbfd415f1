/* SPDX-License-Identifier: MIT */
/*
 * server/metrics.c - vigild's counters and their Prometheus text exposition
 * (format 0.0.4) for GET /metrics. Counters are relaxed atomics bumped on
 * the scoring path (no lock, no allocation); rendering reads them and the
 * store's and rules' state on the admin thread. Every metric is listed in
 * docs/vigild.md, "Metrics".
 */
#include <event2/buffer.h>
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

static void
metrics_head(struct evbuffer *out, const char *name, const char *type, const char *help)
{
	evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* [store] ship_command: archive shipping (ship.c). */
static void
metrics_ship(srv_server *s, struct evbuffer *out)
{
	srv_ship_stats st;

	srv_ship_get_stats(s->ship, &st);
	metrics_head(out, "vigil_archive_unshipped_segments", "gauge",
	    "sealed archive segments not shipped yet");
	evbuffer_add_printf(out, "vigil_archive_unshipped_segments %llu\n",
	    (unsigned long long)st.unshipped_segments);
	metrics_head(out, "vigil_archive_unshipped_bytes", "gauge",
	    "bytes of the sealed archive segments not shipped yet");
	evbuffer_add_printf(out, "vigil_archive_unshipped_bytes %llu\n",
	    (unsigned long long)st.unshipped_bytes);
	metrics_head(out, "vigil_archive_shipped_segments_total", "counter",
	    "archive segments shipped since start");
	evbuffer_add_printf(out, "vigil_archive_shipped_segments_total %llu\n",
	    (unsigned long long)st.shipped);
	metrics_head(out, "vigil_archive_ship_failures_total", "counter",
	    "ship_command runs that failed (each retried)");
	evbuffer_add_printf(out, "vigil_archive_ship_failures_total %llu\n",
	    (unsigned long long)st.failures);
	metrics_head(out, "vigil_archive_ship_failing", "gauge",
	    "1 while the last ship_command run failed");
	evbuffer_add_printf(out, "vigil_archive_ship_failing %d\n", st.failing ? 1 : 0);
	metrics_head(out, "vigil_archive_shipped_through", "gauge",
	    "sequence number of the last segment shipped");
	evbuffer_add_printf(out, "vigil_archive_shipped_through %llu\n",
	    (unsigned long long)st.shipped_through);
}

/* [cluster]: cross-card observations between replicas (cluster.c). */
static void
metrics_cluster(srv_server *s, struct evbuffer *out)
{
	srv_cluster_stats cs;
	char why[512];
	uint64_t cum = 0;
	bool deg = srv_cluster_degraded(s->cluster, why, sizeof why);

	srv_cluster_get_stats(s->cluster, &cs);
	metrics_head(out, "vigil_cluster_connected", "gauge", "1 while NATS is connected");
	evbuffer_add_printf(out, "vigil_cluster_connected %d\n", cs.connected ? 1 : 0);
	metrics_head(out, "vigil_cluster_degraded", "gauge", "1 while cross-card features lack "
	    "other replicas' traffic: NATS unreachable, publishing failing, observations dropped "
	    "in the last 24 h, or catching up (/healthz says why)");
	evbuffer_add_printf(out, "vigil_cluster_degraded %d\n", deg ? 1 : 0);
	metrics_head(out, "vigil_cluster_published_total", "counter",
	    "observations of this replica's transactions stored by JetStream");
	evbuffer_add_printf(out, "vigil_cluster_published_total %llu\n",
	    (unsigned long long)cs.published);
	metrics_head(out, "vigil_cluster_applied_total", "counter",
	    "observations of other replicas' transactions applied to the entity state");
	evbuffer_add_printf(out, "vigil_cluster_applied_total %llu\n",
	    (unsigned long long)cs.applied);
	metrics_head(out, "vigil_cluster_dropped_total", "counter",
	    "observations not published: the queue was full");
	evbuffer_add_printf(out, "vigil_cluster_dropped_total %llu\n",
	    (unsigned long long)cs.dropped);
	metrics_head(out, "vigil_cluster_publish_failures_total", "counter",
	    "publish attempts that failed (the batch is retried)");
	evbuffer_add_printf(out, "vigil_cluster_publish_failures_total %llu\n",
	    (unsigned long long)cs.publish_failures);
	metrics_head(out, "vigil_cluster_bad_messages_total", "counter",
	    "messages on the cluster's subjects that did not decode (skipped)");
	evbuffer_add_printf(out, "vigil_cluster_bad_messages_total %llu\n",
	    (unsigned long long)cs.bad_messages);
	metrics_head(out, "vigil_cluster_queue_depth", "gauge", "observations waiting to be "
	    "published");
	evbuffer_add_printf(out, "vigil_cluster_queue_depth %llu\n",
	    (unsigned long long)cs.queued);
	metrics_head(out, "vigil_cluster_lag_messages", "gauge", "messages of the stream not yet "
	    "delivered to this replica, as of the last one delivered");
	evbuffer_add_printf(out, "vigil_cluster_lag_messages %llu\n", (unsigned long long)cs.lag);
	metrics_head(out, "vigil_cluster_last_sequence", "gauge", "stream sequence of the last "
	    "message handled");
	evbuffer_add_printf(out, "vigil_cluster_last_sequence %llu\n",
	    (unsigned long long)cs.last_seq);
	metrics_head(out, "vigil_cluster_propagation_seconds", "histogram", "from the commit on "
	    "another replica to the observation applied here (two machines' wall clocks)");
	for (uint32_t i = 0; i <= SRV_CLUSTER_DELAY_BUCKETS; i++) {
		cum += cs.delay_bucket[i];
		if (i < SRV_CLUSTER_DELAY_BUCKETS)
			evbuffer_add_printf(out, "vigil_cluster_propagation_seconds_bucket{le=\"%g\"} "
			    "%llu\n", srv_cluster_delay_le[i], (unsigned long long)cum);
		else
			evbuffer_add_printf(out, "vigil_cluster_propagation_seconds_bucket{le=\"+Inf\"} "
			    "%llu\n", (unsigned long long)cum);
	}
	evbuffer_add_printf(out, "vigil_cluster_propagation_seconds_sum %.6f\n", cs.delay_sum_s);
	evbuffer_add_printf(out, "vigil_cluster_propagation_seconds_count %llu\n",
	    (unsigned long long)cs.delay_count);
}

void
srv_metrics_render(srv_server *s, struct evbuffer *out)
{
	srv_metrics *m = &s->metrics;
	srv_ruleset *rs = srv_ruleset_acquire(s);
	char lasterr[SRV_ERR_MAX];
	uint64_t cum = 0;
	bool ready = atomic_load(&s->ready);

	metrics_head(out, "vigil_up", "gauge", "1 when rules are compiled and the store is open");
	evbuffer_add_printf(out, "vigil_up %d\n", ready && rs != NULL ? 1 : 0);
	metrics_head(out, "vigil_ready", "gauge", "1 when /readyz answers 200 (not starting, "
	    "draining, failing to archive, or serving a refused generation or model unless "
	    "[health] ready_when_degraded)");
	evbuffer_add_printf(out, "vigil_ready %d\n", srv_ready(s, lasterr, sizeof lasterr) ? 1 : 0);
	metrics_head(out, "vigil_uptime_seconds", "gauge", "seconds since vigild started");
	evbuffer_add_printf(out, "vigil_uptime_seconds %lld\n",
	    (long long)((vigil_now_ms() - s->started_ms) / 1000));

	metrics_head(out, "vigil_requests_total", "counter",
	    "requests answered, by request type and reply status");
	for (unsigned t = 0; t < SRV_REQ_COUNT_; t++)
		for (unsigned st = 0; st < SRV_STATUS_COUNT; st++) {
			uint64_t v = atomic_load_explicit(&m->requests[t][st], memory_order_relaxed);

			if (v == 0 && st != 0)
				continue;
			evbuffer_add_printf(out, "vigil_requests_total{type=\"%s\",status=\"%s\"} %llu\n",
			    req_type_names[t], srv_status_name((Vigil__V1__Status)st),
			    (unsigned long long)v);
		}
	metrics_head(out, "vigil_decisions_total", "counter",
	    "scored transactions (not dry runs, not duplicates), by decision");
	for (unsigned d = VIGIL_DECISION_ALLOW; d <= VIGIL_DECISION_DECLINE; d++)
		evbuffer_add_printf(out, "vigil_decisions_total{decision=\"%s\"} %llu\n",
		    vigil_decision_name((vigil_decision)d),
		    (unsigned long long)atomic_load(&m->decisions[d]));
	metrics_head(out, "vigil_duplicates_total", "counter",
	    "score requests answered with the first outcome of an earlier txn_id");
	evbuffer_add_printf(out, "vigil_duplicates_total %llu\n",
	    (unsigned long long)atomic_load(&m->duplicates));
	metrics_head(out, "vigil_txn_id_conflicts_total", "counter",
	    "score requests refused because their txn_id was scored for a different transaction");
	evbuffer_add_printf(out, "vigil_txn_id_conflicts_total %llu\n",
	    (unsigned long long)atomic_load(&m->id_conflicts));
	metrics_head(out, "vigil_dry_runs_total", "counter", "dry-run score requests");
	evbuffer_add_printf(out, "vigil_dry_runs_total %llu\n",
	    (unsigned long long)atomic_load(&m->dry_runs));

	metrics_head(out, "vigil_score_latency_seconds", "histogram",
	    "server-side latency of successful score requests, decode to reply");
	for (unsigned i = 0; i <= SRV_LAT_BUCKETS; i++) {
		cum += atomic_load_explicit(&m->lat_bucket[i], memory_order_relaxed);
		if (i < SRV_LAT_BUCKETS)
			evbuffer_add_printf(out, "vigil_score_latency_seconds_bucket{le=\"%g\"} %llu\n",
			    lat_bounds[i], (unsigned long long)cum);
		else
			evbuffer_add_printf(out, "vigil_score_latency_seconds_bucket{le=\"+Inf\"} %llu\n",
			    (unsigned long long)cum);
	}
	evbuffer_add_printf(out, "vigil_score_latency_seconds_sum %.9f\n",
	    (double)atomic_load(&m->lat_sum_ns) / 1e9);
	evbuffer_add_printf(out, "vigil_score_latency_seconds_count %llu\n",
	    (unsigned long long)cum);
	metrics_head(out, "vigil_queue_depth", "gauge", "requests waiting for a worker");
	evbuffer_add_printf(out, "vigil_queue_depth %llu\n",
	    (unsigned long long)atomic_load(&m->queue_depth));
	metrics_head(out, "vigil_queue_capacity", "gauge", "[server] max_inflight");
	evbuffer_add_printf(out, "vigil_queue_capacity %u\n", s->cfg.max_inflight);

	/* Rules. */
	metrics_head(out, "vigil_rules_info", "gauge",
	    "the loaded rule file: declared version and content hash (value 1)");
	metrics_head(out, "vigil_rule_hits_total", "counter",
	    "transactions each rule fired on (active and shadow), scored and archived");
	if (rs != NULL) {
		evbuffer_add_printf(out, "vigil_rules_info{version=\"");
		metrics_label(out, rules_prog_version(rs->rules->prog));
		evbuffer_add_printf(out, "\",hash=\"%s\",path=\"", rules_prog_hash(rs->rules->prog));
		metrics_label(out, rs->rules->path);
		evbuffer_add_printf(out, "\"} 1\n");
		for (uint32_t i = 0; i < rs->rules->nrules; i++) {
			rules_rule_info ri;

			rules_prog_rule(rs->rules->prog, i, &ri);
			evbuffer_add_printf(out, "vigil_rule_hits_total{rule=\"");
			metrics_label(out, ri.name);
			evbuffer_add_printf(out, "\",mode=\"%s\"} %llu\n", rules_mode_name(ri.mode),
			    (unsigned long long)atomic_load_explicit(&rs->rules->hits[i],
			    memory_order_relaxed));
		}
	}
	metrics_head(out, "vigil_rules_loaded_timestamp_seconds", "gauge",
	    "when the serving rule file was loaded (Unix seconds)");
	evbuffer_add_printf(out, "vigil_rules_loaded_timestamp_seconds %.3f\n",
	    rs != NULL ? (double)rs->rules->loaded_at_ms / 1000.0 : 0.0);
	metrics_head(out, "vigil_rules_loads_total", "counter", "rule files loaded successfully");
	evbuffer_add_printf(out, "vigil_rules_loads_total %llu\n",
	    (unsigned long long)atomic_load(&s->loads));
	metrics_head(out, "vigil_rules_load_failures_total", "counter",
	    "rule files rejected (the previous rules kept serving)");
	evbuffer_add_printf(out, "vigil_rules_load_failures_total %llu\n",
	    (unsigned long long)atomic_load(&s->load_failures));
	srv_rules_last_error(s, lasterr, sizeof lasterr);
	metrics_head(out, "vigil_rules_last_load_error", "gauge",
	    "1 with the error of the last load attempt if it failed, else 0");
	evbuffer_add_printf(out, "vigil_rules_last_load_error{error=\"");
	metrics_label(out, lasterr);
	evbuffer_add_printf(out, "\"} %d\n", lasterr[0] != '\0' ? 1 : 0);

	/* Features and store. */
	if (ready && s->db != NULL) {
		store_db_stats st;
		store_db_health h;
		/* the generation scoring reads: the serving rule set's (reload.c) */
		uint64_t gen = rs != NULL ? rs->generation : 0;
		store_gen_meta meta;
		int64_t as_of = rs != NULL && rs->gen != NULL &&
		    store_gen_meta_get(store_db_gen_get(rs->gen), &meta) == VIGIL_OK ?
		    meta.as_of_ms : 0;

		metrics_head(out, "vigil_features_generation", "gauge",
		    "batch feature generation being read (0 = none yet)");
		evbuffer_add_printf(out, "vigil_features_generation %llu\n", (unsigned long long)gen);
		metrics_head(out, "vigil_features_generation_age_seconds", "gauge",
		    "seconds since the as-of time of the batch generation being read");
		evbuffer_add_printf(out, "vigil_features_generation_age_seconds %.3f\n",
		    gen != 0 && as_of > 0 ? (double)(vigil_now_ms() - as_of) / 1000.0 : 0.0);
		metrics_head(out, "vigil_features_generation_switched_timestamp_seconds", "gauge",
		    "when vigild last switched to a new generation (Unix seconds)");
		evbuffer_add_printf(out, "vigil_features_generation_switched_timestamp_seconds %.3f\n",
		    (double)atomic_load(&s->gen_switched_ms) / 1000.0);
		/* Verification (docs/storage.md, "Verification"). */
		store_db_get_health(s->db, &h);
		metrics_head(out, "vigil_features_generation_verified", "gauge",
		    "1 if the generation being read matched its CHECKSUM, 0 if none is read or it "
		    "was written before checksums");
		evbuffer_add_printf(out, "vigil_features_generation_verified %d\n",
		    h.generation_verified ? 1 : 0);
		metrics_head(out, "vigil_features_generation_verify_seconds", "gauge",
		    "time spent reading and hashing the generation being read before it was mapped");
		evbuffer_add_printf(out, "vigil_features_generation_verify_seconds %.6f\n",
		    (double)h.generation_verify_us / 1e6);
		metrics_head(out, "vigil_features_generation_refused", "gauge",
		    "1 while the generation CURRENT names is refused (damaged, missing, unreadable; "
		    "label: its number, 0 for a malformed CURRENT) and another or none is read");
		if (h.generation_refused)
			evbuffer_add_printf(out, "vigil_features_generation_refused{generation=\"%llu\"} 1\n",
			    (unsigned long long)h.refused_generation);
		else
			evbuffer_add_printf(out, "vigil_features_generation_refused 0\n");
		{
			char merr[SRV_ERR_MAX];
			uint64_t mref = srv_model_refused(s, merr, sizeof merr);

			metrics_head(out, "vigil_model_generation", "gauge",
			    "generation whose model is serving (0: none, rules alone decide)");
			evbuffer_add_printf(out, "vigil_model_generation %llu\n",
			    (unsigned long long)atomic_load(&s->model_generation));
			metrics_head(out, "vigil_model_refused", "gauge",
			    "1 while the current generation's model is refused (damaged, unknown "
			    "version or feature; label: the generation) and the previous one or none "
			    "serves");
			if (mref != 0)
				evbuffer_add_printf(out, "vigil_model_refused{generation=\"%llu\"} 1\n",
				    (unsigned long long)mref);
			else
				evbuffer_add_printf(out, "vigil_model_refused 0\n");
			metrics_head(out, "vigil_model_refusals_total", "counter",
			    "models refused since start (each attempt: start-up, switches, rule "
			    "reloads)");
			evbuffer_add_printf(out, "vigil_model_refusals_total %llu\n",
			    (unsigned long long)atomic_load(&s->model_failures));
		}
		metrics_head(out, "vigil_features_generation_refusals_total", "counter",
		    "generations refused since start (at start-up and at switches)");
		evbuffer_add_printf(out, "vigil_features_generation_refusals_total %llu\n",
		    (unsigned long long)h.generation_refusals);

		store_db_get_stats(s->db, &st);
		metrics_head(out, "vigil_archive_records_total", "counter", "records appended to the archive");
		evbuffer_add_printf(out, "vigil_archive_records_total %llu\n",
		    (unsigned long long)st.archive.records);
		metrics_head(out, "vigil_archive_bytes_total", "counter", "bytes appended to the archive");
		evbuffer_add_printf(out, "vigil_archive_bytes_total %llu\n",
		    (unsigned long long)st.archive.bytes);
		metrics_head(out, "vigil_archive_segments", "gauge", "archive segment files");
		evbuffer_add_printf(out, "vigil_archive_segments %llu\n",
		    (unsigned long long)st.archive.segments);
		metrics_head(out, "vigil_archive_syncs_total", "counter", "fdatasync calls on the archive");
		evbuffer_add_printf(out, "vigil_archive_syncs_total %llu\n",
		    (unsigned long long)st.archive.syncs);
		metrics_head(out, "vigil_archive_last_seq", "gauge", "sequence number of the last record");
		evbuffer_add_printf(out, "vigil_archive_last_seq %llu\n",
		    (unsigned long long)st.archive.last_seq);
		metrics_head(out, "vigil_archive_error", "gauge",
		    "1 while the archive refuses appends after a failed write, sync or segment "
		    "creation (label: the errno), 0 when healthy");
		if (h.archive.failing)
			evbuffer_add_printf(out, "vigil_archive_error{errno=\"%s\"} 1\n",
			    strerrorname_np(h.archive.err) ? strerrorname_np(h.archive.err) : "EUNKNOWN");
		else
			evbuffer_add_printf(out, "vigil_archive_error 0\n");
		metrics_head(out, "vigil_archive_rotation_postponed", "gauge",
		    "1 while a segment rotation is postponed (the next segment could not be created; "
		    "appends go on in the open one)");
		evbuffer_add_printf(out, "vigil_archive_rotation_postponed %d\n", h.archive.degraded);
		metrics_head(out, "vigil_archive_failures_total", "counter",
		    "failed archive writes, syncs, segment creations and truncations, retries included");
		evbuffer_add_printf(out, "vigil_archive_failures_total %llu\n",
		    (unsigned long long)h.archive.failures);
		metrics_head(out, "vigil_archive_refused_total", "counter",
		    "appends refused or dropped unwritten while the archive was failing");
		evbuffer_add_printf(out, "vigil_archive_refused_total %llu\n",
		    (unsigned long long)h.archive.refused);
		metrics_head(out, "vigil_archive_corrupt_stretches_total", "counter",
		    "damaged stretches of the archive skipped by the live-state recovery at start");
		evbuffer_add_printf(out, "vigil_archive_corrupt_stretches_total %llu\n",
		    (unsigned long long)h.archive_corrupt_stretches);
		metrics_head(out, "vigil_archive_corrupt_records_total", "counter",
		    "archive records known lost in damaged zstd frames (by their frame tables), "
		    "found by the live-state recovery at start");
		evbuffer_add_printf(out, "vigil_archive_corrupt_records_total %llu\n",
		    (unsigned long long)h.archive_lost_records);
		metrics_head(out, "vigil_live_cards", "gauge", "cards in the live velocity state");
		evbuffer_add_printf(out, "vigil_live_cards %llu\n", (unsigned long long)st.live_cards);
		metrics_head(out, "vigil_live_entities", "gauge",
		    "entities (cards, merchants, terminals, devices, IPs) in the live state");
		evbuffer_add_printf(out, "vigil_live_entities %llu\n",
		    (unsigned long long)st.live_entities);
		metrics_head(out, "vigil_live_events", "gauge", "events held in live windows");
		evbuffer_add_printf(out, "vigil_live_events %llu\n", (unsigned long long)st.live_events);
		metrics_head(out, "vigil_dedupe_entries", "gauge", "txn_ids remembered for retries");
		evbuffer_add_printf(out, "vigil_dedupe_entries %llu\n",
		    (unsigned long long)st.dedupe_entries);
		metrics_head(out, "vigil_late_events_total", "counter",
		    "events older than the largest live window (archived, not applied)");
		evbuffer_add_printf(out, "vigil_late_events_total %llu\n",
		    (unsigned long long)st.late_events);
	}
	metrics_head(out, "vigil_maintenance_runs_total", "counter",
	    "store housekeeping passes (archive rotation, compression, retention; live sweep)");
	evbuffer_add_printf(out, "vigil_maintenance_runs_total %llu\n",
	    (unsigned long long)atomic_load(&s->maint_runs));
	metrics_head(out, "vigil_maintenance_failures_total", "counter",
	    "housekeeping passes that failed (the error is logged)");
	evbuffer_add_printf(out, "vigil_maintenance_failures_total %llu\n",
	    (unsigned long long)atomic_load(&s->maint_failures));
	metrics_head(out, "vigil_maintenance_last_success_timestamp_seconds", "gauge",
	    "when housekeeping last succeeded (Unix seconds; 0 = not yet)");
	evbuffer_add_printf(out, "vigil_maintenance_last_success_timestamp_seconds %.3f\n",
	    (double)atomic_load(&s->maint_ok_ms) / 1000.0);
	metrics_head(out, "vigil_http_requests_total", "counter", "admin HTTP requests");
	evbuffer_add_printf(out, "vigil_http_requests_total %llu\n",
	    (unsigned long long)atomic_load(&m->http_requests));
	/* exposure (docs/security.md) */
	metrics_head(out, "vigil_connections", "gauge", "open connections per listener");
	evbuffer_add_printf(out, "vigil_connections{listener=\"nng\"} %llu\n",
	    (unsigned long long)atomic_load(&m->nng_connections));
	evbuffer_add_printf(out, "vigil_connections{listener=\"admin\"} %llu\n",
	    (unsigned long long)atomic_load(&m->http_connections));
	metrics_head(out, "vigil_connections_max", "gauge",
	    "[server] max_connections and admin_max_connections");
	evbuffer_add_printf(out, "vigil_connections_max{listener=\"nng\"} %u\n",
	    s->cfg.max_connections);
	evbuffer_add_printf(out, "vigil_connections_max{listener=\"admin\"} %u\n",
	    s->cfg.admin_max_connections);
	metrics_head(out, "vigil_connections_refused_total", "counter",
	    "nng connections closed at once: max_connections were open");
	evbuffer_add_printf(out, "vigil_connections_refused_total{listener=\"nng\"} %llu\n",
	    (unsigned long long)atomic_load(&m->nng_conn_refused));
	metrics_head(out, "vigil_http_connections_closed_total", "counter",
	    "admin connections closed by vigild: no complete request within 10 s, or "
	    "admin_max_connections_per_address open from its address");
	evbuffer_add_printf(out, "vigil_http_connections_closed_total %llu\n",
	    (unsigned long long)atomic_load(&m->http_conn_closed));
	metrics_head(out, "vigil_http_accept_pauses_total", "counter",
	    "admin listener paused: admin_max_connections reached, or accept failed "
	    "(no descriptors)");
	evbuffer_add_printf(out, "vigil_http_accept_pauses_total %llu\n",
	    (unsigned long long)atomic_load(&m->http_accept_paused));
	metrics_head(out, "vigil_http_unauthorized_total", "counter",
	    "admin requests refused: no or wrong bearer token (401), or no token and not "
	    "loopback (403)");
	evbuffer_add_printf(out, "vigil_http_unauthorized_total %llu\n",
	    (unsigned long long)atomic_load(&m->http_unauthorized));
	metrics_head(out, "vigil_queue_timeouts_total", "counter",
	    "requests answered OVERLOADED after waiting longer than queue_timeout_ms");
	evbuffer_add_printf(out, "vigil_queue_timeouts_total %llu\n",
	    (unsigned long long)atomic_load(&m->queue_timeouts));
	metrics_head(out, "vigil_connection_overloaded_total", "counter",
	    "requests answered OVERLOADED because their connection had "
	    "max_inflight_per_connection requests in flight");
	evbuffer_add_printf(out, "vigil_connection_overloaded_total %llu\n",
	    (unsigned long long)atomic_load(&m->conn_overloaded));
	metrics_head(out, "vigil_connections_closed_total", "counter",
	    "nng connections closed by vigild: twice max_inflight_per_connection requests "
	    "and replies held, the peer not reading its replies");
	evbuffer_add_printf(out, "vigil_connections_closed_total{listener=\"nng\"} %llu\n",
	    (unsigned long long)atomic_load(&m->nng_conn_unread));
	metrics_head(out, "vigil_tls_expiry_seconds", "gauge",
	    "seconds until the loaded [tls] file stops working: cert and ca at the end of "
	    "their validity, crl at its next update (negative: past it, clients are refused)");
	for (int i = 0; i < SRV_TLS_COUNT_; i++) {
		int64_t left;

		if (srv_tls_expiry_left(s, (srv_tls_item)i, vigil_now_ms(), &left))
			evbuffer_add_printf(out, "vigil_tls_expiry_seconds{file=\"%s\"} %lld\n",
			    srv_tls_item_name((srv_tls_item)i), (long long)left);
	}
	if (s->cluster != NULL)
		metrics_cluster(s, out);
	if (s->ship != NULL)
		metrics_ship(s, out);
	srv_ruleset_release(rs);
}
