/* SPDX-License-Identifier: MIT */
/*
 * server/admin.c - the admin HTTP endpoint (libevent evhttp on its own
 * thread, 127.0.0.1:9466 by default): /healthz (alive), /readyz (ready to
 * score), /metrics (Prometheus text), /v1/rules (what is loaded, the last
 * load error) and POST /v1/score (JSON in, JSON out, the same pipeline as
 * the nng socket, for curl users). One request at a time: a score here may
 * wait for an fsync, which delays other admin requests, never nng traffic.
 * Formats: docs/vigild.md, "Admin HTTP"; exposure: docs/security.md.
 *
 * Authorisation: the three probes are open; everything else needs
 * "Authorization: Bearer TOKEN" with the token of admin_token_file
 * (compared in constant time, re-read on SIGHUP). Without a token file,
 * only a loopback listener serves more than the probes.
 *
 * Caps (libevent 2.1's evhttp has none of its own; common/evconn.h): at
 * admin_max_connections open connections the listener stops accepting
 * until one closes. A connection stops reading at max_message_bytes +
 * ADMIN_CONN_BUFFER bytes of unparsed input (evhttp holds a body there
 * until all of it has come, so one at the cap must fit): evhttp keeps
 * reading while it writes a reply, so a client that pipelines requests and
 * never reads the replies grew vigild by 400 MB. A body over
 * max_message_bytes is refused unread, 413 TOO_BIG with the error object;
 * libevent's other answers of its own (400, 417, 501) carry the error
 * object too (common/evconn.h replaces its HTML pages). A connection that
 * has not completed a request within ADMIN_IDLE_S of opening or of its
 * previous request is closed (a client sending one header line every 20 s
 * held its slot forever). accept(2) failing (no descriptors: EMFILE,
 * ENFILE) pauses the listener for ADMIN_PAUSE_MS instead of spinning on
 * it, logged once a second at most.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <fcntl.h>
#include <sys/un.h>
#include <math.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "evconn.h"
#include "file.h"
#include "srv.h"
#include "vigil_config.h"
#include "vigil_json.h"

#define ADMIN_CONN_BUFFER (64 * 1024) /* unparsed input per connection */
#define ADMIN_IDLE_S      10          /* to complete a request */
#define ADMIN_PAUSE_MS    250         /* accept paused after an accept error */
#define ADMIN_TOKEN_MIN   16
#define ADMIN_TOKEN_MAX   255         /* sizeof srv_server.admin_token - 1 */
#define HEALTH_MAX_CONNS  64          /* connections of the probes' listener */

struct srv_admin {
	srv_server             *s;
	struct event_base      *base;
	struct evhttp          *http;
	struct evconnlistener  *lev;
	srv_worker             *w;
	pthread_t               thread;
	bool                    started;
	bool                    loopback;  /* bound to 127.0.0.0/8 or ::1 */

	vigil_evconn_set       *conns;     /* count, cap, deadline */
	struct event           *resume;    /* accepting again after an accept error */
	int64_t                 err_log_ms;  /* last accept-error line */
	uint64_t                err_quiet;   /* accept errors since */
	int64_t                 auth_log_ms; /* last failed-authentication line */
	uint64_t                auth_quiet;  /* failed authentications since */

	/* [health] listen: the probes' own listener (admin_health_dispatch) */
	struct evhttp          *hhttp;
	struct evconnlistener  *hlev;
	vigil_evconn_set       *hconns;
};

static void
admin_send_json(struct evhttp_request *req, int code, const char *reason, json_t *obj)
{
	vigil_evconn_send_json(req, code, reason, obj, "{\"status\":\"INTERNAL\",\"error\":"
	    "{\"code\":\"INTERNAL\",\"message\":\"out of memory\"}}\n");
}

static void
admin_send_text(struct evhttp_request *req, int code, const char *reason, const char *ctype,
    struct evbuffer *body)
{
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", ctype);
	vigil_evconn_send_reply(req, code, reason, body);
}

static int
admin_http_code(Vigil__V1__Status st, const char **ret_reason)
{
	switch (st) {
	case VIGIL__V1__STATUS__STATUS_OK:          *ret_reason = "OK"; return 200;
	case VIGIL__V1__STATUS__STATUS_INVALID:
	case VIGIL__V1__STATUS__STATUS_MALFORMED:   *ret_reason = "Bad Request"; return 400;
	case VIGIL__V1__STATUS__STATUS_TOO_BIG:     *ret_reason = "Payload Too Large"; return 413;
	case VIGIL__V1__STATUS__STATUS_UNSUPPORTED: *ret_reason = "Not Found"; return 404;
	case VIGIL__V1__STATUS__STATUS_OVERLOADED:  *ret_reason = "Too Many Requests"; return 429;
	case VIGIL__V1__STATUS__STATUS_UNAVAILABLE: *ret_reason = "Service Unavailable"; return 503;
	default:                                    *ret_reason = "Internal Server Error"; return 500;
	}
}

/* {"status": STATUS, "error": the error object of ei}, or NULL (ENOMEM). */
static json_t *
admin_error_obj(const char *status, const vigil_errinfo *ei)
{
	json_t *err = vigil_error_json(status, ei);

	return err == NULL ? NULL : json_pack("{s:s, s:o}", "status", status, "error", err);
}

/* The error body of every JSON reply (docs/protocol.md, "JSON"; the error
 * object of docs/tools.md): {"status": S, "error": {"code": S, "message":
 * msg, "where": {"field": field}}}, field left out when NULL or "". */
static json_t *
admin_error_json(const char *status, const char *field, const char *msg)
{
	vigil_errinfo ei;

	vigil_errinfo_set(&ei, field, "%s", msg);
	return admin_error_obj(status, &ei);
}

/* The error of /v1/score: admin_error_json, and txn_id when known. */
static void
admin_send_status(struct evhttp_request *req, const srv_wire_err *err, const char *txn_id)
{
	const char *reason;
	int code = admin_http_code(err->status, &reason);
	json_t *o = admin_error_obj(srv_status_name(err->status), &err->info);

	if (o != NULL && txn_id != NULL && txn_id[0] != '\0')
		json_object_set_new(o, "txn_id", json_string(txn_id));
	admin_send_json(req, code, reason, o);
}

/* ms as an RFC 3339 string, or null for 0 (none, unknown). */
static json_t *
admin_time_or_null(int64_t ms)
{
	char when[32];

	if (ms <= 0)
		return json_null();
	vigil_time_format_rfc3339(ms, when, sizeof when);
	return json_string(when);
}

static json_t *
admin_health_json(srv_server *s)
{
	Vigil__V1__HealthReply h = VIGIL__V1__HEALTH_REPLY__INIT;
	char err[SRV_ERR_MAX], hash[SRV_RULES_ID_MAX], why[SRV_ERR_MAX + 640], merr[SRV_ERR_MAX];
	store_db_health dh;
	uint64_t mref;
	bool cdeg = false;
	json_t *o;

	srv_health_fill(s, &h, err, sizeof err, hash, sizeof hash);
	h.ready = srv_ready(s, why, sizeof why); /* again, for the reason */
	o = json_pack("{s:b, s:s, s:I, s:s, s:s, s:I, s:s, s:I, s:b}",
	    "ready", h.ready, "server_version", "vigild " VIGIL_VERSION,
	    "uptime_s", (json_int_t)h.uptime_s, "rules_version", h.rules_version,
	    "rules_hash", h.rules_hash,
	    "features_generation", (json_int_t)h.features_generation,
	    "rules_last_error", h.rules_last_error,
	    "rules_load_failures", (json_int_t)h.rules_load_failures,
	    "draining", h.draining);
	if (o != NULL && atomic_load(&s->ready) && s->db != NULL) {
		store_db_get_health(s->db, &dh);
		/* A refused generation or model, or a rule file that did not
		 * compile: vigild scores on what it kept or fell back to (or none:
		 * the rules' fallbacks) and says so as "degraded". A refused
		 * generation or model also makes it not ready (DESIGN contract 8)
		 * unless [health] ready_when_degraded (docs/security.md,
		 * "Readiness": card-routed fleets keep a replica's cards on it). */
		mref = srv_model_refused(s, merr, sizeof merr);
		/* Cross-card state without the other replicas' traffic: degraded,
		 * still ready (each card is scored by its replica whatever NATS does). */
		if (s->cluster != NULL) {
			srv_cluster_stats cs;
			char cwhy[512];

			cdeg = srv_cluster_degraded(s->cluster, cwhy, sizeof cwhy);
			srv_cluster_get_stats(s->cluster, &cs);
			json_object_set_new(o, "cluster", json_pack("{s:s, s:s, s:b, s:b, s:s, s:I, "
			    "s:I, s:I, s:I, s:I}", "name", s->cfg.cluster_name, "replica",
			    s->cfg.cluster_replica, "connected", cs.connected, "degraded", cdeg,
			    "reason", cwhy, "published", (json_int_t)cs.published,
			    "applied", (json_int_t)cs.applied, "dropped", (json_int_t)cs.dropped,
			    "queued", (json_int_t)cs.queued, "lag", (json_int_t)cs.lag));
		}
		/* Archive shipping failing does not touch scoring: reported, not degraded. */
		if (s->ship != NULL) {
			srv_ship_stats ss;

			srv_ship_get_stats(s->ship, &ss);
			json_object_set_new(o, "archive_ship", json_pack("{s:I, s:I, s:I, s:b, s:s}",
			    "unshipped_segments", (json_int_t)ss.unshipped_segments,
			    "unshipped_bytes", (json_int_t)ss.unshipped_bytes,
			    "shipped_through", (json_int_t)ss.shipped_through,
			    "failing", ss.failing, "last_error", ss.last_error));
		}
		json_object_set_new(o, "generation_verified", json_boolean(dh.generation_verified));
		json_object_set_new(o, "generation_refused",
		    json_integer((json_int_t)(dh.generation_refused ? dh.refused_generation : 0)));
		json_object_set_new(o, "generation_error", json_string(dh.generation_error));
		json_object_set_new(o, "model_generation",
		    json_integer((json_int_t)atomic_load(&s->model_generation)));
		json_object_set_new(o, "model_trained_as_of", admin_time_or_null(
		    atomic_load(&s->model_generation) != 0 ? atomic_load(&s->model_as_of_ms) : 0));
		json_object_set_new(o, "model_refused", json_integer((json_int_t)mref));
		json_object_set_new(o, "model_error", json_string(merr));
		json_object_set_new(o, "degraded", json_boolean(dh.generation_refused || mref != 0 ||
		    h.rules_last_error[0] != '\0' || cdeg));
		json_object_set_new(o, "ready_when_degraded",
		    json_boolean(s->cfg.ready_when_degraded));
		/* damage the start-up recovery skipped in the archive (it does
		 * not change readiness: what is lost is history) */
		json_object_set_new(o, "archive_corrupt_stretches",
		    json_integer((json_int_t)dh.archive_corrupt_stretches));
		json_object_set_new(o, "archive_corrupt_records",
		    json_integer((json_int_t)dh.archive_lost_records));
		json_object_set_new(o, "archive_corrupt_first", json_string(dh.archive_corrupt_first));
	}
	/* the TLS material's dates (tls_expiry.c): "tls": {"cert":
	 * {"expires_in_s": N}, "ca": ..., "crl": ..., "expired": bool}, when
	 * any is configured; an expired one also makes it not ready */
	if (o != NULL) {
		json_t *tls = json_object();
		bool any = false, expired = false;

		for (int i = 0; tls != NULL && i < SRV_TLS_COUNT_; i++) {
			int64_t left;

			if (!srv_tls_expiry_left(s, (srv_tls_item)i, vigil_now_ms(), &left))
				continue;
			any = true;
			expired = expired || left < 0;
			json_object_set_new(tls, srv_tls_item_name((srv_tls_item)i),
			    json_pack("{s:I}", "expires_in_s", (json_int_t)left));
		}
		if (any) {
			json_object_set_new(tls, "expired", json_boolean(expired));
			json_object_set_new(o, "tls", tls);
		} else {
			json_decref(tls);
		}
	}
	/* why not ready, from the same srv_ready as "ready" above (archive
	 * failing, refused generation or model, starting, draining, TLS
	 * material expired) */
	if (o != NULL && !h.ready)
		json_object_set_new(o, "reason", json_string(why));
	return o;
}

static void
admin_healthz(srv_admin *a, struct evhttp_request *req)
{
	admin_send_json(req, 200, "OK", admin_health_json(a->s));
}

static void
admin_readyz(srv_admin *a, struct evhttp_request *req)
{
	json_t *o = admin_health_json(a->s);
	bool ready = o != NULL && json_is_true(json_object_get(o, "ready"));

	admin_send_json(req, ready ? 200 : 503, ready ? "OK" : "Service Unavailable", o);
}

static void
admin_metrics(srv_admin *a, struct evhttp_request *req)
{
	struct evbuffer *buf = evbuffer_new();

	if (buf == NULL) {
		admin_send_json(req, 500, NULL, NULL);
		return;
	}
	srv_metrics_render(a->s, buf);
	admin_send_text(req, 200, "OK", "text/plain; version=0.0.4", buf);
	evbuffer_free(buf);
}

static void
admin_rules(srv_admin *a, struct evhttp_request *req)
{
	srv_ruleset *rs = srv_ruleset_acquire(a->s);
	char err[SRV_ERR_MAX];
	json_t *o, *rules;

	srv_rules_last_error(a->s, err, sizeof err);
	o = json_pack("{s:s, s:I}", "last_error", err, "load_failures",
	    (json_int_t)atomic_load(&a->s->load_failures));
	if (o != NULL && rs != NULL) {
		const rules_prog *p = rs->rules->prog;
		char when[32];
		double review_at, decline_at, band_review, band_decline;

		vigil_time_format_rfc3339(rs->rules->loaded_at_ms, when, sizeof when);
		rules_prog_bands(p, &review_at, &decline_at);
		json_object_set_new(o, "version", json_string(rules_prog_version(p)));
		json_object_set_new(o, "content_hash", json_string(rules_prog_hash(p)));
		json_object_set_new(o, "path", json_string(rs->rules->path));
		json_object_set_new(o, "loaded_at", json_string(when));
		json_object_set_new(o, "loaded_at_ms", json_integer(rs->rules->loaded_at_ms));
		json_object_set_new(o, "features_generation", json_integer((json_int_t)rs->generation));
		/* the bands in force: a band named by a threshold is its tuned
		 * value (the file's fallback until a generation tunes it) */
		rules_prog_bands_in_force(p, rs->tv, &band_review, &band_decline);
		json_object_set_new(o, "review_at", json_real(band_review));
		json_object_set_new(o, "decline_at", json_real(band_decline));
		json_object_set_new(o, "file_review_at", json_real(review_at));
		json_object_set_new(o, "file_decline_at", json_real(decline_at));
		rules = json_array();
		for (uint32_t i = 0; rules != NULL && i < rs->rules->nrules; i++) {
			rules_rule_info ri;
			json_t *tags = json_array();

			rules_prog_rule(p, i, &ri);
			for (uint32_t t = 0; tags != NULL && t < ri.ntags; t++)
				json_array_append_new(tags, json_string(ri.tags[t]));
			json_array_append_new(rules, json_pack("{s:s, s:i, s:s, s:s, s:o, s:i, s:I}",
			    "name", ri.name, "points", (int)ri.points, "mode", rules_mode_name(ri.mode),
			    "reason", ri.reason != NULL ? ri.reason : "", "tags", tags != NULL ? tags :
			    json_array(), "line", (int)ri.line, "hits",
			    (json_int_t)atomic_load(rs->rules->hits[i])));
		}
		json_object_set_new(o, "rules", rules);
	}
	srv_ruleset_release(rs);
	admin_send_json(req, 200, "OK", o);
}

/*
 * The first string of the transaction obj (its members, and location's)
 * that holds a NUL byte, its field path in ret_field ("txn.card_id");
 * NULL if none. The reader takes strings as C strings: "12\u000034" would
 * be read as 12, the way a NUL byte ends an id early, so they are refused
 * as on the wire (docs/protocol.md); attributes the reader checks itself.
 */
static const char *
admin_json_nul(const json_t *obj, char *ret_field, size_t cap)
{
	const char *key, *k2;
	const json_t *v, *v2;

	json_object_foreach((json_t *)obj, key, v) {
		if (json_is_string(v) && memchr(json_string_value(v), '\0',
		    json_string_length(v)) != NULL) {
			snprintf(ret_field, cap, "txn.%s", key);
			return ret_field;
		}
		if (strcmp(key, "location") != 0 || !json_is_object(v))
			continue;
		json_object_foreach((json_t *)v, k2, v2) {
			if (json_is_string(v2) && memchr(json_string_value(v2), '\0',
			    json_string_length(v2)) != NULL) {
				snprintf(ret_field, cap, "txn.location.%s", k2);
				return ret_field;
			}
		}
	}
	return NULL;
}

/* The body as a NUL-terminated string, at most max bytes; NULL if bigger. */
static char *
admin_body(struct evhttp_request *req, size_t max, size_t *ret_len)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t n = evbuffer_get_length(in);
	char *buf;

	*ret_len = n;
	if (n > max)
		return NULL;
	buf = malloc(n + 1);
	if (buf == NULL)
		return NULL;
	evbuffer_remove(in, buf, n);
	buf[n] = '\0';
	return buf;
}

static void
admin_score(srv_admin *a, struct evhttp_request *req)
{
	srv_server *s = a->s;
	srv_wire_err err;
	srv_ruleset *rs = NULL;
	srv_outcome *out = NULL;
	json_t *body = NULL, *txnobj, *jdry, *o = NULL, *hits;
	json_error_t jerr;
	vigil_txn txn;
	char *text = NULL;
	vigil_errinfo ei;
	bool dry_run = false, have_txn = false;
	size_t len;
	uint64_t t0 = vigil_mono_ns();
	char qkey[sizeof err.info.field];

	/* Shutting down: new work is refused in the words nng refuses it
	 * with (rep.c); the drain waits only for what was accepted before. */
	if (atomic_load(&s->draining)) {
		srv_wire_err_set(&err, VIGIL__V1__STATUS__STATUS_UNAVAILABLE, "", SRV_MSG_DRAINING);
		goto fail;
	}
	/* Nothing is read from a query string: "?dry_run=true" must not score
	 * and record as if it were absent. The where: its first parameter. */
	if (vigil_evconn_query(req, qkey, sizeof qkey) != NULL) {
		srv_wire_err_set(&err, VIGIL__V1__STATUS__STATUS_INVALID, qkey,
		    "/v1/score takes no query string; dry_run goes in the JSON body");
		goto fail;
	}
	text = admin_body(req, s->cfg.max_message_bytes, &len);
	if (text == NULL) {
		srv_wire_err_set(&err, len > s->cfg.max_message_bytes ?
		    VIGIL__V1__STATUS__STATUS_TOO_BIG : VIGIL__V1__STATUS__STATUS_INTERNAL, "",
		    "body of %zu bytes: over the %u-byte limit or out of memory", len,
		    s->cfg.max_message_bytes);
		goto fail;
	}
	/* JSON_DECODE_ANY: a body that is JSON but not an object ("5") is
	 * INVALID as [1] is, not MALFORMED (docs/vigild.md, ADMIN HTTP).
	 * JSON_ALLOW_NUL: a "\u0000" in a value is the reader's INVALID on
	 * that field, as over nng (docs/protocol.md), not jansson's MALFORMED. */
	body = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_ALLOW_NUL,
	    &jerr);
	if (body == NULL) {
		/* the place is where's (docs/tools.md), the message jansson's reason */
		srv_wire_err_set(&err, VIGIL__V1__STATUS__STATUS_MALFORMED, "", "%s", jerr.text);
		err.info.line = jerr.line > 0 ? (uint32_t)jerr.line : 0;
		err.info.col = jerr.line > 0 && jerr.column > 0 ? (uint32_t)jerr.column : 0;
		goto fail;
	}
	/* Either {"txn": {...}, "dry_run": true} or the transaction itself. */
	txnobj = json_object_get(body, "txn");
	if (txnobj == NULL) {
		txnobj = body;
	} else {
		/* The envelope has two keys: any other is a typo ("dryrun") whose
		 * meaning would be lost, the transaction scored and recorded. */
		static const char *const keys[] = { "txn", "dry_run", NULL };
		char known[32];
		const char *key = vigil_json_unknown_key(body, keys, known, sizeof known);

		if (key != NULL) {
			srv_wire_err_set(&err, VIGIL__V1__STATUS__STATUS_INVALID, key,
			    "unknown key (one of %s)", known);
			goto fail;
		}
	}
	/* Anything but a boolean (or null) is refused: "dry_run": "true" must
	 * not be read as false and recorded. */
	jdry = json_object_get(body, "dry_run");
	if (jdry != NULL && !json_is_boolean(jdry) && !json_is_null(jdry)) {
		srv_wire_err_set(&err, VIGIL__V1__STATUS__STATUS_INVALID, "dry_run",
		    "must be true or false");
		goto fail;
	}
	dry_run = json_is_true(jdry);
	if (json_is_object(txnobj) && admin_json_nul(txnobj, qkey, sizeof qkey) != NULL) {
		srv_wire_err_set(&err, VIGIL__V1__STATUS__STATUS_INVALID, qkey,
		    "contains a NUL byte");
		goto fail;
	}
	/* without event_time: the time of arrival (docs/protocol.md), as
	 * vigil-score and the Python client do */
	if (vigil_txn_from_json_now(txnobj, vigil_now_ms(), &txn, &ei) != VIGIL_OK) {
		char field[sizeof err.info.field];

		snprintf(field, sizeof field, "txn%s%.40s", ei.field[0] != '\0' ? "." : "", ei.field);
		srv_wire_err_set(&err, VIGIL__V1__STATUS__STATUS_INVALID, field, "%s", ei.msg);
		goto fail;
	}
	have_txn = true;
	if (vigil_txn_validate(&txn, &ei) != VIGIL_OK) {
		char field[sizeof err.info.field];

		/* "event_time" when that is what was sent, not event_time_ms */
		snprintf(field, sizeof field, "txn.%.40s", vigil_txn_json_key(txnobj, ei.field));
		srv_wire_err_set(&err, VIGIL__V1__STATUS__STATUS_INVALID, field, "%s", ei.msg);
		goto fail;
	}
	out = malloc(sizeof *out);
	if (out == NULL) {
		srv_wire_err_set(&err, VIGIL__V1__STATUS__STATUS_INTERNAL, "", "out of memory");
		goto fail;
	}
	rs = srv_ruleset_acquire(s);
	srv_score_txn(s, a->w, rs, &txn, dry_run, out);
	if (out->err.status != VIGIL__V1__STATUS__STATUS_OK) {
		err = out->err;
		/* the wire's field names the spelling this body used (an event
		 * time too far ahead, given as "event_time") */
		if (strncmp(err.info.field, "txn.", 4) == 0) {
			const char *key = vigil_txn_json_key(txnobj, err.info.field + 4);

			if (key != err.info.field + 4)
				snprintf(err.info.field, sizeof err.info.field, "txn.%s", key);
		}
		goto fail;
	}
	hits = json_array();
	for (uint32_t i = 0; hits != NULL && i < out->nhits; i++)
		json_array_append_new(hits, json_pack("{s:s, s:i, s:s, s:b}",
		    "rule", out->hits[i].rule, "points", (int)out->hits[i].points,
		    "reason", out->hits[i].reason != NULL ? out->hits[i].reason : "",
		    "shadow", out->hits[i].shadow));
	o = json_pack("{s:s, s:s, s:s, s:f, s:i, s:s, s:o, s:s, s:s, s:I, s:I, s:b, s:b, s:b, s:b}",
	    "status", "OK", "message", "ok", "txn_id", txn.txn_id, "score", out->score,
	    "points", (int)out->points,
	    "decision", vigil_decision_name(out->decision), "hits", hits != NULL ? hits :
	    json_array(), "rules_version", out->rules_version, "rules_hash", out->rules_hash,
	    "features_generation", (json_int_t)out->generation,
	    "latency_us", (json_int_t)((vigil_mono_ns() - t0) / 1000),
	    "duplicate", out->duplicate, "dry_run", out->dry_run, "late", out->late,
	    "past_dedupe_horizon", out->past_dedupe_horizon);
	if (o != NULL && !isnan(out->model_score)) {
		/* the same shape as vigil-score's and vigil-replay's "model" */
		json_t *m = json_object(), *rsn = json_array();

		for (uint32_t i = 0; i < out->nreasons; i++)
			json_array_append_new(rsn, json_pack("{s:s, s:f, s:f}",
			    "feature", out->reasons[i].feature, "value", out->reasons[i].value.num,
			    "contribution", (double)out->reasons[i].contrib));
		json_object_set_new(m, "score", json_real(out->model_score));
		json_object_set_new(m, "reasons", rsn);
		json_object_set_new(o, "model", m);
	}
	srv_metrics_request(&s->metrics, SRV_REQ_SCORE, VIGIL__V1__STATUS__STATUS_OK);
	srv_metrics_latency(&s->metrics, vigil_mono_ns() - t0);
	srv_ruleset_release(rs);
	admin_send_json(req, 200, "OK", o);
	goto out;
fail:
	srv_ruleset_release(rs);
	srv_metrics_request(&s->metrics, SRV_REQ_SCORE, err.status);
	admin_send_status(req, &err, have_txn ? txn.txn_id : NULL);
out:
	free(out);
	free(text);
	json_decref(body);
}

static void admin_send_error(struct evhttp_request *req, int code, const char *reason,
    const char *status, const char *msg);

/* admin_error_json(status, field, msg) with code. */
static void
admin_send_field_error(struct evhttp_request *req, int code, const char *reason,
    const char *status, const char *field, const char *msg)
{
	admin_send_json(req, code, reason, admin_error_json(status, field, msg));
}

/* An integer member of o of at least min, or 0 (absent: *ret_absent). */
static bool
admin_json_gen(const json_t *o, const char *key, json_int_t min, uint64_t *ret,
    bool *ret_absent)
{
	const json_t *v = json_object_get(o, key);

	*ret = 0;
	*ret_absent = v == NULL;
	if (v == NULL)
		return true;
	if (!json_is_integer(v) || json_integer_value(v) < min)
		return false;
	*ret = (uint64_t)json_integer_value(v);
	return true;
}

/*
 * POST /v1/generations/current {"generation": N, "expect_current": M}:
 * points CURRENT at generation N, an operator's roll-back (or forward)
 * from the admin endpoint: what `vigil-rebuild --rollback --generation N`
 * does, for a caller that may not write the data directory itself (the
 * console). N must verify (store_gen_set_current opens it, under the
 * rebuild lock, after settling features/PENDING as the next rebuild would); with expect_current the change is made only if CURRENT
 * still names M, 0 for none (a stale page is refused, 409). vigild's
 * refresh then switches to it within 200 ms, features, thresholds and
 * model together.
 * Reads the whole generation to verify it, on the admin thread (0.1-0.2 s
 * for 200 MB). docs/vigild.md, ADMIN HTTP.
 */
static void
admin_generation_set(srv_admin *a, struct evhttp_request *req)
{
	srv_server *s = a->s;
	json_t *body = NULL;
	json_error_t jerr;
	static const char *const keys[] = { "generation", "expect_current", NULL };
	char *text = NULL, msg[640], known[40];
	const char *key;
	size_t len;
	uint64_t want = 0, expect = 0, cur = 0;
	bool absent, no_expect;
	store_diag d;
	vigil_err rv;

	if (!atomic_load(&s->ready) || s->db == NULL) {
		admin_send_error(req, 503, "Service Unavailable", "UNAVAILABLE",
		    "not ready: store still loading");
		goto out;
	}
	text = admin_body(req, 4096, &len);
	if (text == NULL) {
		admin_send_error(req, 413, "Payload Too Large", "TOO_BIG",
		    "body over 4096 bytes (or out of memory)");
		goto out;
	}
	body = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
	if (body == NULL) { /* not JSON; "5" or [1] is, and INVALID below */
		vigil_errinfo ei;

		vigil_errinfo_set(&ei, NULL, "%s", jerr.text);
		ei.line = jerr.line > 0 ? (uint32_t)jerr.line : 0;
		ei.col = jerr.line > 0 && jerr.column > 0 ? (uint32_t)jerr.column : 0;
		admin_send_json(req, 400, "Bad Request", admin_error_obj("MALFORMED", &ei));
		goto out;
	}
	if (!json_is_object(body)) { /* JSON, but not a request */
		admin_send_error(req, 400, "Bad Request", "INVALID", "the body must be a JSON object "
		    "({\"generation\": N})");
		goto out;
	}
	if ((key = vigil_json_unknown_key(body, keys, known, sizeof known)) != NULL) {
		snprintf(msg, sizeof msg, "unknown key (one of %s)", known);
		admin_send_field_error(req, 400, "Bad Request", "INVALID", key, msg);
		goto out;
	}
	if (!admin_json_gen(body, "generation", 1, &want, &absent) || absent) {
		admin_send_field_error(req, 400, "Bad Request", "INVALID", "generation",
		    "a generation number (a positive integer) is required");
		goto out;
	}
	if (!admin_json_gen(body, "expect_current", 0, &expect, &no_expect)) {
		admin_send_field_error(req, 400, "Bad Request", "INVALID", "expect_current",
		    "the generation CURRENT is expected to name (an integer, 0 for none)");
		goto out;
	}
	rv = store_gen_current(s->cfg.data_dir, &cur);
	if (rv != VIGIL_OK) {
		snprintf(msg, sizeof msg, "features/CURRENT: %s", vigil_strerror(rv));
		admin_send_error(req, 500, "Internal Server Error", "INTERNAL", msg);
		goto out;
	}
	if (!no_expect && cur != expect) {
		snprintf(msg, sizeof msg, "CURRENT names generation %llu, not %llu: reload and try "
		    "again", (unsigned long long)cur, (unsigned long long)expect);
		admin_send_field_error(req, 409, "Conflict", "CONFLICT", "expect_current", msg);
		goto out;
	}
	if (cur == want) {
		snprintf(msg, sizeof msg, "generation %llu is already current",
		    (unsigned long long)want);
		admin_send_field_error(req, 409, "Conflict", "CONFLICT", "generation", msg);
		goto out;
	}
	d.msg[0] = '\0';
	rv = store_gen_set_current(s->cfg.data_dir, want, &d);
	if (rv != VIGIL_OK) {
		int code = rv == VIGIL_ENOTFOUND ? 404 : rv == VIGIL_EBUSY ? 409 : 422;

		/* a missing one is said plainly, without the server's paths; a
		 * damaged one keeps the store's reason (which file, what) */
		if (rv == VIGIL_ENOTFOUND)
			snprintf(msg, sizeof msg, "no generation %llu in features/",
			    (unsigned long long)want);
		else
			snprintf(msg, sizeof msg, "generation %llu: %s%s%s", (unsigned long long)want,
			    rv == VIGIL_EBUSY ? "a rebuild is running; try again when it ends" :
			    vigil_strerror(rv), d.msg[0] != '\0' ? ": " : "", d.msg);
		admin_send_field_error(req, code, code == 404 ? "Not Found" : code == 409 ?
		    "Conflict" : "Unprocessable Entity", code == 404 ? "NOT_FOUND" : code == 409 ?
		    "CONFLICT" : "REFUSED", "generation", msg);
		goto out;
	}
	srv_log("features: CURRENT set to generation %llu (was %llu) through the admin endpoint "
	    "(POST /v1/generations/current)", (unsigned long long)want, (unsigned long long)cur);
	snprintf(msg, sizeof msg, "CURRENT names generation %llu (was %llu); vigild switches to it "
	    "within a second", (unsigned long long)want, (unsigned long long)cur);
	admin_send_json(req, 200, "OK", json_pack("{s:s, s:s, s:I, s:I}", "status", "OK",
	    "message", msg, "previous", (json_int_t)cur, "current", (json_int_t)want));
out:
	free(text);
	json_decref(body);
}

/* admin_error_json(status, NULL, msg) with code. */
static void
admin_send_error(struct evhttp_request *req, int code, const char *reason, const char *status,
    const char *msg)
{
	admin_send_json(req, code, reason, admin_error_json(status, NULL, msg));
}

/* Equal in time that depends on the lengths only, not on where they differ. */
static bool
admin_token_equal(const char *got, size_t glen, const char *want, size_t wlen)
{
	volatile unsigned char d = glen != wlen;

	for (size_t i = 0; i < wlen; i++)
		d |= (unsigned char)want[i] ^ (unsigned char)(i < glen ? got[i] : 0);
	return d == 0;
}

/*
 * A refused request, logged with the peer's address and the path: one line
 * a second at most (a client guessing tokens would otherwise fill the log),
 * saying how many more were refused since the last line. The path is cut
 * at 64 bytes and anything but printable ASCII in it shown as '?'.
 */
static void
admin_auth_log(srv_admin *a, struct evhttp_request *req, int code, const char *why)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
	int64_t now = vigil_mono_ns() / 1000000;
	char *addr = NULL, peer[80], p[65];
	ev_uint16_t port = 0;
	size_t n = 0;

	if (a->auth_log_ms != 0 && now - a->auth_log_ms < 1000) {
		a->auth_quiet++;
		return;
	}
	if (evcon != NULL)
		evhttp_connection_get_peer(evcon, &addr, &port);
	if (addr == NULL || addr[0] == '\0')
		snprintf(peer, sizeof peer, "the local socket");
	else if (strchr(addr, ':') != NULL)
		snprintf(peer, sizeof peer, "[%s]:%u", addr, (unsigned)port);
	else
		snprintf(peer, sizeof peer, "%s:%u", addr, (unsigned)port);
	for (; path != NULL && path[n] != '\0' && n < sizeof p - 1; n++)
		p[n] = path[n] > ' ' && path[n] <= '~' ? path[n] : '?';
	p[n] = '\0';
	if (a->auth_quiet > 0)
		srv_log("admin: %d for %s from %s: %s (%llu more refused since the last such "
		    "line; at most one a second)", code, p, peer, why,
		    (unsigned long long)a->auth_quiet);
	else
		srv_log("admin: %d for %s from %s: %s", code, p, peer, why);
	a->auth_log_ms = now;
	a->auth_quiet = 0;
}

/*
 * Whether req may go beyond the probes; answers it (401 or 403) if not.
 * Every refusal is logged (admin_auth_log).
 * With a token: "Authorization: Bearer TOKEN". Without one: a loopback
 * listener serves everything (the warning at start says so), any other
 * serves only the probes.
 */
static bool
admin_authorized(srv_admin *a, struct evhttp_request *req)
{
	srv_server *s = a->s;
	const char *h = evhttp_find_header(evhttp_request_get_input_headers(req),
	    "Authorization");
	bool ok;

	pthread_mutex_lock(&s->token_lock);
	if (s->admin_token_len == 0) {
		pthread_mutex_unlock(&s->token_lock);
		if (a->loopback)
			return true;
		atomic_fetch_add_explicit(&s->metrics.http_unauthorized, 1, memory_order_relaxed);
		admin_auth_log(a, req, 403, "no admin_token_file and the listener is not loopback");
		admin_send_error(req, 403, "Forbidden", "FORBIDDEN", s->cfg.metrics_need_token ?
		    "no admin_token_file is configured and the admin listener is not loopback: "
		    "only /healthz and /readyz are served" : "no admin_token_file is "
		    "configured and the admin listener is not loopback: only /healthz, /readyz "
		    "and /metrics are served");
		return false;
	}
	if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0) {
		pthread_mutex_unlock(&s->token_lock);
		atomic_fetch_add_explicit(&s->metrics.http_unauthorized, 1, memory_order_relaxed);
		admin_auth_log(a, req, 401, "no bearer token");
		evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
		    "Bearer realm=\"vigild\"");
		admin_send_error(req, 401, "Unauthorized", "UNAUTHENTICATED", "this endpoint "
		    "needs an \"Authorization: Bearer TOKEN\" header (admin_token_file)");
		return false;
	}
	for (h += 7; *h == ' '; h++)
		;
	ok = admin_token_equal(h, strlen(h), s->admin_token, s->admin_token_len);
	pthread_mutex_unlock(&s->token_lock);
	if (!ok) {
		atomic_fetch_add_explicit(&s->metrics.http_unauthorized, 1, memory_order_relaxed);
		admin_auth_log(a, req, 401, "wrong bearer token");
		evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
		    "Bearer realm=\"vigild\", error=\"invalid_token\"");
		admin_send_error(req, 401, "Unauthorized", "UNAUTHENTICATED",
		    "wrong bearer token");
		return false;
	}
	return true;
}

static void
admin_dispatch(struct evhttp_request *req, void *arg)
{
	srv_admin *a = arg;
	const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	bool get = cmd == EVHTTP_REQ_GET || cmd == EVHTTP_REQ_HEAD;
	bool probe;
	char qkey[sizeof ((vigil_errinfo *)0)->field];

	atomic_fetch_add_explicit(&a->s->metrics.http_requests, 1, memory_order_relaxed);
	vigil_evconn_seen(a->conns, req); /* its deadline starts again */
	if (path == NULL)
		path = "/";
	/* /metrics lists the rule names, their hits and the rules path:
	 * [server] metrics_need_token keeps it behind the token */
	probe = strcmp(path, "/healthz") == 0 || strcmp(path, "/readyz") == 0 ||
	    (strcmp(path, "/metrics") == 0 && !a->s->cfg.metrics_need_token);
	if (!(probe && get) && !admin_authorized(a, req))
		return;
	/* none of the API's endpoints reads a query string: a parameter such
	 * as ?force=1 would be ignored, so it is refused (/v1/score says so
	 * itself; the probes and /metrics are left to their callers) */
	if ((strcmp(path, "/v1/rules") == 0 || strcmp(path, "/v1/generations/current") == 0) &&
	    vigil_evconn_query(req, qkey, sizeof qkey) != NULL) {
		admin_send_json(req, 400, "Bad Request", admin_error_json("INVALID", qkey,
		    "this endpoint takes no query string"));
		return;
	}
	if (strcmp(path, "/healthz") == 0 && get)
		admin_healthz(a, req);
	else if (strcmp(path, "/readyz") == 0 && get)
		admin_readyz(a, req);
	else if (strcmp(path, "/metrics") == 0 && get)
		admin_metrics(a, req);
	else if (strcmp(path, "/v1/rules") == 0 && get)
		admin_rules(a, req);
	else if (strcmp(path, "/v1/score") == 0 && cmd == EVHTTP_REQ_POST)
		admin_score(a, req);
	else if (strcmp(path, "/v1/generations/current") == 0 && cmd == EVHTTP_REQ_POST)
		admin_generation_set(a, req);
	else if (probe || strcmp(path, "/v1/rules") == 0 || strcmp(path, "/metrics") == 0) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
		admin_send_error(req, 405, "Method Not Allowed", "METHOD_NOT_ALLOWED",
		    "this endpoint answers GET and HEAD");
	} else if (strcmp(path, "/v1/score") == 0 ||
	    strcmp(path, "/v1/generations/current") == 0) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "POST");
		admin_send_error(req, 405, "Method Not Allowed", "METHOD_NOT_ALLOWED",
		    "this endpoint answers POST");
	} else {
		admin_send_error(req, 404, "Not Found", "NOT_FOUND", "no such endpoint: try "
		    "/healthz, /readyz, /metrics, /v1/rules, POST /v1/score, POST "
		    "/v1/generations/current");
	}
}

/*
 * [health] listen: the probes' own listener. Read-only, no token, three
 * paths; its own connection cap, so that connections held open on the
 * admin port (300 slow clients took every admin slot and /readyz with
 * them) cannot take the load balancer's probes away.
 */
static void
admin_health_dispatch(struct evhttp_request *req, void *arg)
{
	srv_admin *a = arg;
	const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);

	atomic_fetch_add_explicit(&a->s->metrics.http_requests, 1, memory_order_relaxed);
	vigil_evconn_seen(a->hconns, req);
	if (path == NULL)
		path = "/";
	if (strcmp(path, "/healthz") != 0 && strcmp(path, "/readyz") != 0 &&
	    strcmp(path, "/livez") != 0) {
		admin_send_error(req, 404, "Not Found", "NOT_FOUND", "this listener answers "
		    "only /healthz, /readyz and /livez");
	} else if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
		admin_send_error(req, 405, "Method Not Allowed", "METHOD_NOT_ALLOWED",
		    "this endpoint answers GET and HEAD");
	} else if (strcmp(path, "/healthz") == 0) {
		admin_healthz(a, req);
	} else if (strcmp(path, "/readyz") == 0) {
		admin_readyz(a, req);
	} else {
		/* alive: the admin thread answers; nothing else is looked at */
		admin_send_json(req, 200, "OK", json_pack("{s:b}", "alive", 1));
	}
}

/* ---- connections: count, cap, deadline (common/evconn.h) ---- */

/* libevent hands the listener's error callback the accept callback's
 * argument, which evhttp set to itself, not to us: vigild has one admin
 * endpoint, found here (set and cleared on the main thread while the admin
 * thread is not running). */
static srv_admin *admin_instance;

static void
admin_conn_count(void *arg, uint32_t n)
{
	srv_admin *a = arg;

	atomic_store_explicit(&a->s->metrics.http_connections, n, memory_order_relaxed);
}

static void
admin_conn_cap(void *arg)
{
	srv_admin *a = arg;

	atomic_fetch_add_explicit(&a->s->metrics.http_accept_paused, 1, memory_order_relaxed);
}

static void
admin_conn_idle(void *arg)
{
	srv_admin *a = arg;

	atomic_fetch_add_explicit(&a->s->metrics.http_conn_closed, 1, memory_order_relaxed);
}

static void
admin_conn_addr_cap(void *arg, const char *addr)
{
	srv_admin *a = arg;

	(void)addr;
	atomic_fetch_add_explicit(&a->s->metrics.http_conn_closed, 1, memory_order_relaxed);
}

static void
admin_accept_resume(evutil_socket_t fd, short what, void *arg)
{
	srv_admin *a = arg;

	(void)fd;
	(void)what;
	vigil_evconn_pause(a->conns, false);
	vigil_evconn_pause(a->hconns, false);
}

/*
 * accept(2) failed with something other than "try again" (libevent's
 * listener would log and retry at once, forever: 408 MB of log in 25 s when
 * descriptors ran out). Pause, retry in ADMIN_PAUSE_MS; one line a second.
 */
static void
admin_accept_error(struct evconnlistener *lev, void *arg)
{
	const struct timeval pause = { 0, ADMIN_PAUSE_MS * 1000 };
	srv_admin *a = admin_instance;
	int err = EVUTIL_SOCKET_ERROR();
	int64_t now;

	if (a == NULL || !((a->http == arg && a->lev == lev) || (a->hhttp != NULL &&
	    a->hhttp == arg && a->hlev == lev))) /* not ours: cannot happen */
		return;
	now = vigil_mono_ns() / 1000000;
	vigil_evconn_pause(a->http == arg ? a->conns : a->hconns, true);
	event_add(a->resume, &pause);
	atomic_fetch_add_explicit(&a->s->metrics.http_accept_paused, 1, memory_order_relaxed);
	a->err_quiet++;
	if (a->err_log_ms == 0 || now - a->err_log_ms >= 1000) {
		srv_log("admin: accept: %s; accepting paused for %d ms (%llu time(s) since the "
		    "last note; at most one a second)", strerror(err), ADMIN_PAUSE_MS,
		    (unsigned long long)a->err_quiet);
		a->err_log_ms = now;
		a->err_quiet = 0;
	}
}

/* ---- the token ---- */

vigil_err
srv_admin_token_load(srv_server *s, char *errbuf, size_t errlen)
{
	const char *path = s->cfg.admin_token_file;
	char buf[ADMIN_TOKEN_MAX + 3]; /* the token, CR LF, one byte to tell it is over */
	ssize_t n;
	size_t len;
	int fd;

	if (path[0] == '\0')
		return VIGIL_OK;
	/* a FIFO would hang --check-config and SIGHUP: refused, not waited on */
	if (vigil_secret_open(path, "[server] admin_token_file", &fd, errbuf, errlen) != VIGIL_OK)
		return VIGIL_EINVAL;
	n = read(fd, buf, sizeof buf);
	close(fd);
	if (n < 0) {
		snprintf(errbuf, errlen, "[server] admin_token_file %s: cannot read: %s", path,
		    strerror(errno));
		return VIGIL_EINVAL;
	}
	len = (size_t)n;
	/* the line ending (LF or CR LF) is not the token's: stripped before
	 * the length check; a full buffer means the file holds more */
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		len--;
	if (len > ADMIN_TOKEN_MAX || (size_t)n == sizeof buf) {
		snprintf(errbuf, errlen, "[server] admin_token_file %s: the token is longer than %d bytes",
		    path, ADMIN_TOKEN_MAX);
		explicit_bzero(buf, sizeof buf);
		return VIGIL_EINVAL;
	}
	for (size_t i = 0; i < len; i++) {
		if (buf[i] <= ' ' || buf[i] > '~') {
			snprintf(errbuf, errlen, "[server] admin_token_file %s: byte %zu of the token is not "
			    "printable ASCII (a token is one line, no spaces)", path, i + 1);
			explicit_bzero(buf, sizeof buf);
			return VIGIL_EINVAL;
		}
	}
	if (len < ADMIN_TOKEN_MIN) {
		snprintf(errbuf, errlen, "[server] admin_token_file %s: the token has %zu bytes; at least "
		    "%d are needed (e.g. openssl rand -hex 32)", path, len, ADMIN_TOKEN_MIN);
		explicit_bzero(buf, sizeof buf);
		return VIGIL_EINVAL;
	}
	pthread_mutex_lock(&s->token_lock);
	memcpy(s->admin_token, buf, len);
	memset(s->admin_token + len, 0, sizeof s->admin_token - len);
	s->admin_token_len = len;
	pthread_mutex_unlock(&s->token_lock);
	explicit_bzero(buf, sizeof buf);
	return VIGIL_OK;
}

static void *
admin_thread(void *arg)
{
	srv_admin *a = arg;

	event_base_dispatch(a->base);
	return NULL;
}

void
srv_admin_stop(srv_admin *a)
{
	if (a == NULL)
		return;
	if (a->started) {
		event_base_loopbreak(a->base);
		pthread_join(a->thread, NULL);
	}
	vigil_evconn_set_stop(a->conns);
	vigil_evconn_set_stop(a->hconns);
	a->lev = NULL;
	a->hlev = NULL;
	if (admin_instance == a)
		admin_instance = NULL;
	if (a->http != NULL)
		evhttp_free(a->http); /* closes every connection, counted down */
	vigil_evconn_set_free(a->conns);
	if (a->hhttp != NULL)
		evhttp_free(a->hhttp);
	vigil_evconn_set_free(a->hconns);
	if (a->resume != NULL)
		event_free(a->resume);
	if (a->base != NULL)
		event_base_free(a->base);
	srv_worker_free(a->w);
	free(a);
}

/*
 * admin = unix:/PATH: a local stream socket created 0660 (vigild's umask is
 * 027; the group is vigild's, so an operator's tools reach it by group), a
 * stale socket of a previous run replaced, anything else at PATH refused.
 * Without TCP nobody off the host can reach the endpoint at all: the
 * threat model's way to keep mutating calls local (docs/security.md).
 */
static struct evhttp_bound_socket *
admin_bind_unix(srv_admin *a, struct evhttp *http, const char *path, char *errbuf,
    size_t errlen)
{
	struct sockaddr_un sun;
	struct evconnlistener *lev;
	struct evhttp_bound_socket *bound;
	struct stat st;
	int fd;

	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof sun.sun_path, "%s", path);
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(errbuf, errlen, "admin: %s exists and is not a socket", path);
			return NULL;
		}
		(void)unlink(path); /* a previous run's */
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(errbuf, errlen, "admin: socket: %s", strerror(errno));
		return NULL;
	}
	if (bind(fd, (struct sockaddr *)&sun, sizeof sun) != 0 || chmod(path, 0660) != 0 ||
	    listen(fd, 128) != 0) {
		snprintf(errbuf, errlen, "admin: %s: %s", path, strerror(errno));
		close(fd);
		return NULL;
	}
	lev = evconnlistener_new(a->base, NULL, NULL, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
	    0, fd); /* 0: already listening */
	if (lev == NULL) {
		snprintf(errbuf, errlen, "admin: %s: out of memory", path);
		close(fd);
		return NULL;
	}
	bound = evhttp_bind_listener(http, lev);
	if (bound == NULL) {
		evconnlistener_free(lev);
		snprintf(errbuf, errlen, "admin: %s: out of memory", path);
	}
	return bound;
}

/* The error object replacing libevent's own page (vigil_evconn_opts.page_body). */
static json_t *
admin_page_body(void *arg, int status, const char *code, const char *message)
{
	srv_admin *a = arg;
	char msg[96];

	if (status == 413) {
		snprintf(msg, sizeof msg, "the request body is over max_message_bytes (%u bytes)",
		    (unsigned)a->s->cfg.max_message_bytes);
		message = msg;
	}
	return admin_error_json(code, NULL, message);
}

static json_t *
admin_health_page_body(void *arg, int status, const char *code, const char *message)
{
	(void)arg;
	return admin_error_json(code, NULL, status == 413 ? "this listener takes no request "
	    "body" : message);
}

/* [health] listen: binds the probes' listener on a's event base. */
static vigil_err
admin_health_start(srv_admin *a, char *errbuf, size_t errlen)
{
	const char *addr = a->s->cfg.health_listen;
	struct evhttp_bound_socket *bound;
	vigil_evconn_opts o = { 0 };
	char host[64], cause[160];
	uint16_t port = 0;
	vigil_err rv;

	a->hhttp = evhttp_new(a->base);
	if (a->hhttp == NULL) {
		snprintf(errbuf, errlen, "health: out of memory");
		return VIGIL_ENOMEM;
	}
	evhttp_set_max_body_size(a->hhttp, 0);
	evhttp_set_max_headers_size(a->hhttp, 8192);
	evhttp_set_timeout(a->hhttp, 30);
	evhttp_set_allowed_methods(a->hhttp, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
	    EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
	evhttp_set_gencb(a->hhttp, admin_health_dispatch, a);
	if (strncmp(addr, "unix:", 5) == 0) {
		bound = admin_bind_unix(a, a->hhttp, addr + 5, errbuf, errlen);
		if (bound == NULL)
			return VIGIL_EIO;
	} else {
		if (!vigil_cli_hostport(addr, host, sizeof host, &port)) {
			snprintf(errbuf, errlen, "health: \"%s\" is not HOST:PORT or unix:/PATH", addr);
			return VIGIL_EINVAL;
		}
		bound = vigil_evconn_bind(a->base, a->hhttp, host, port, cause, sizeof cause);
		if (bound == NULL) {
			snprintf(errbuf, errlen, "health: cannot listen on %s: %s", addr, cause);
			return VIGIL_EBUSY;
		}
	}
	a->hlev = evhttp_bound_socket_get_listener(bound);
	o.max_conns = HEALTH_MAX_CONNS;
	o.max_input = 16 * 1024;
	o.idle_s = ADMIN_IDLE_S;
	o.on_idle = admin_conn_idle;
	o.page_body = admin_health_page_body; /* a body (none is taken) is 413 */
	o.arg = a;
	rv = vigil_evconn_set_new(a->hhttp, a->hlev, &o, &a->hconns);
	if (rv != VIGIL_OK) {
		snprintf(errbuf, errlen, "health: out of memory");
		return rv;
	}
	evconnlistener_set_error_cb(a->hlev, admin_accept_error);
	return VIGIL_OK;
}

vigil_err
srv_admin_start(srv_server *s, srv_admin **ret_admin, char *errbuf, size_t errlen)
{
	struct evhttp_bound_socket *bound;
	vigil_evconn_opts o = { 0 };
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof ss;
	srv_admin *a;
	char host[64], cause[160];
	uint16_t port;
	vigil_err rv = VIGIL_OK;
	int prv;

	bool unix_path = strncmp(s->cfg.admin, "unix:", 5) == 0;

	if (!unix_path && !vigil_cli_hostport(s->cfg.admin, host, sizeof host, &port)) {
		snprintf(errbuf, errlen, "admin: \"%s\" is not HOST:PORT or unix:/PATH", s->cfg.admin);
		return VIGIL_EINVAL;
	}
	a = calloc(1, sizeof *a);
	if (a == NULL) {
		snprintf(errbuf, errlen, "admin: out of memory");
		return VIGIL_ENOMEM;
	}
	a->s = s;
	a->base = event_base_new();
	a->http = a->base != NULL ? evhttp_new(a->base) : NULL;
	a->w = srv_worker_new(s);
	if (a->http == NULL || a->w == NULL) {
		snprintf(errbuf, errlen, "admin: out of memory");
		rv = VIGIL_ENOMEM;
		goto out;
	}
	a->resume = evtimer_new(a->base, admin_accept_resume, a);
	if (a->resume == NULL) {
		snprintf(errbuf, errlen, "admin: out of memory");
		rv = VIGIL_ENOMEM;
		goto out;
	}
	evhttp_set_max_headers_size(a->http, 16384);
	evhttp_set_timeout(a->http, 30);
	/* Methods we answer 405 (with Allow) to are let through; the rest get
	 * libevent's own 501, made our error object by evconn. */
	evhttp_set_allowed_methods(a->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
	    EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
	evhttp_set_gencb(a->http, admin_dispatch, a);
	if (unix_path)
		bound = admin_bind_unix(a, a->http, s->cfg.admin + 5, errbuf, errlen);
	else
		bound = vigil_evconn_bind(a->base, a->http, host, port, cause, sizeof cause);
	if (bound == NULL && unix_path) {
		rv = VIGIL_EIO;
		goto out;
	}
	if (bound == NULL) {
		snprintf(errbuf, errlen, "admin: cannot listen on %s: %s", s->cfg.admin, cause);
		rv = VIGIL_EBUSY;
		goto out;
	}
	a->lev = evhttp_bound_socket_get_listener(bound);
	o.max_conns = s->cfg.admin_max_connections;
	o.max_input = (size_t)s->cfg.max_message_bytes + ADMIN_CONN_BUFFER;
	o.idle_s = ADMIN_IDLE_S;
	o.max_per_addr = s->cfg.admin_max_per_address;
	o.on_count = admin_conn_count;
	o.on_cap = admin_conn_cap;
	o.on_idle = admin_conn_idle;
	o.on_addr_cap = admin_conn_addr_cap;
	o.arg = a;
	/* a body over max_message_bytes: libevent refuses it unread; its
	 * answers, this one included, are made our error objects (evconn.h) */
	o.max_body = s->cfg.max_message_bytes;
	o.page_body = admin_page_body;
	rv = vigil_evconn_set_new(a->http, a->lev, &o, &a->conns);
	if (rv != VIGIL_OK) {
		snprintf(errbuf, errlen, "admin: %s", rv == VIGIL_ENOMEM ? "out of memory" :
		    "admin_max_connections must be at least 1");
		goto out;
	}
	admin_instance = a;
	evconnlistener_set_error_cb(a->lev, admin_accept_error);
	if (strcmp(s->cfg.health_listen, "off") != 0) {
		rv = admin_health_start(a, errbuf, errlen);
		if (rv != VIGIL_OK)
			goto out;
	}
	if (getsockname(evhttp_bound_socket_get_fd(bound), (struct sockaddr *)&ss, &sslen) == 0) {
		if (ss.ss_family == AF_INET)
			a->loopback = (ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr) >> 24) == 127;
		else if (ss.ss_family == AF_INET6)
			a->loopback = IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)&ss)->sin6_addr);
	}
	if (unix_path)
		a->loopback = true; /* local: reachable through the file's permissions only */
	if (s->admin_token_len == 0 && a->loopback)
		srv_log("warning: admin: no admin_token_file: /v1/score and /v1/rules answer "
		    "anyone who can connect to %s (loopback)", s->cfg.admin);
	else if (s->admin_token_len == 0)
		srv_log("warning: admin: no admin_token_file and %s is not loopback: only "
		    "/healthz, /readyz and /metrics are served", s->cfg.admin);
	if ((prv = pthread_create(&a->thread, NULL, admin_thread, a)) != 0) {
		snprintf(errbuf, errlen, "admin: cannot start thread: %s", strerror(prv));
		rv = VIGIL_EIO;
		goto out;
	}
	a->started = true;
	*ret_admin = a;
	a = NULL;
out:
	srv_admin_stop(a);
	return rv;
}
