/* SPDX-License-Identifier: MIT */
/*
 * server/admin.c - the admin HTTP endpoint (libevent evhttp on its own
 * thread, 127.0.0.1:9466 by default): /healthz (alive), /readyz (ready to
 * score), /metrics (Prometheus text), /v1/rules (what is loaded, the last
 * load error) and POST /v1/score (JSON in, JSON out, the same pipeline as
 * the nng socket, for curl users). One request at a time: a score here may
 * wait for an fsync, which delays other admin requests, never nng traffic.
 * Formats: docs/vigild.md, "Admin HTTP".
 */
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "srv.h"
#include "vigil_config.h"
#include "vigil_json.h"

struct srv_admin {
	srv_server        *s;
	struct event_base *base;
	struct evhttp     *http;
	srv_worker        *w;
	pthread_t          thread;
	bool               started;
};

static void
admin_send_json(struct evhttp_request *req, int code, const char *reason, json_t *obj)
{
	struct evbuffer *buf = evbuffer_new();
	char *text = obj != NULL ? json_dumps(obj, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;

	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
	    "application/json");
	if (buf != NULL && text != NULL) {
		evbuffer_add_printf(buf, "%s\n", text);
		evhttp_send_reply(req, code, reason, buf);
	} else {
		evhttp_send_error(req, HTTP_INTERNAL, "out of memory");
	}
	free(text);
	if (buf != NULL)
		evbuffer_free(buf);
	json_decref(obj);
}

static void
admin_send_text(struct evhttp_request *req, int code, const char *reason, const char *ctype,
    struct evbuffer *body)
{
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", ctype);
	evhttp_send_reply(req, code, reason, body);
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

static void
admin_send_status(struct evhttp_request *req, const srv_wire_err *err)
{
	const char *reason;
	int code = admin_http_code(err->status, &reason);
	json_t *o = json_pack("{s:s, s:s}", "status", srv_status_name(err->status),
	    "message", err->msg);

	if (o != NULL && err->field[0] != '\0')
		json_object_set_new(o, "field", json_string(err->field));
	admin_send_json(req, code, reason, o);
}

static json_t *
admin_health_json(srv_server *s)
{
	Vigil__V1__HealthReply h = VIGIL__V1__HEALTH_REPLY__INIT;
	char err[SRV_ERR_MAX], hash[80], why[512];
	store_db_health dh;
	json_t *o;

	srv_health_fill(s, &h, err, sizeof err, hash, sizeof hash);
	o = json_pack("{s:b, s:s, s:I, s:s, s:I, s:s, s:I, s:b}",
	    "ready", h.ready, "server_version", "vigild " VIGIL_VERSION,
	    "uptime_s", (json_int_t)h.uptime_s, "rules_version", h.rules_version,
	    "features_generation", (json_int_t)h.features_generation,
	    "rules_last_error", h.rules_last_error,
	    "rules_load_failures", (json_int_t)h.rules_load_failures,
	    "draining", h.draining);
	/* An archive that refuses appends (full disk, no descriptors, I/O
	 * errors) cannot acknowledge a score: not ready until it heals. */
	if (o != NULL && atomic_load(&s->ready) && s->db != NULL) {
		store_db_get_health(s->db, &dh);
		if (!dh.ok) {
			snprintf(why, sizeof why, "archive failing: %s %s: %s (%s) for %lld s; retrying",
			    dh.archive.op, dh.archive.file, strerror(dh.archive.err),
			    strerrorname_np(dh.archive.err) ? strerrorname_np(dh.archive.err) : "?",
			    (long long)((vigil_now_ms() - dh.archive.since_ms) / 1000));
			json_object_set_new(o, "ready", json_false());
			json_object_set_new(o, "reason", json_string(why));
		}
	}
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
		evhttp_send_error(req, HTTP_INTERNAL, "out of memory");
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
		int32_t review_at, decline_at;

		vigil_time_format_rfc3339(rs->rules->loaded_at_ms, when, sizeof when);
		rules_prog_bands(p, &review_at, &decline_at);
		json_object_set_new(o, "version", json_string(rules_prog_version(p)));
		json_object_set_new(o, "content_hash", json_string(rules_prog_hash(p)));
		json_object_set_new(o, "path", json_string(rs->rules->path));
		json_object_set_new(o, "loaded_at", json_string(when));
		json_object_set_new(o, "loaded_at_ms", json_integer(rs->rules->loaded_at_ms));
		json_object_set_new(o, "features_generation", json_integer((json_int_t)rs->generation));
		json_object_set_new(o, "review_at", json_integer(review_at));
		json_object_set_new(o, "decline_at", json_integer(decline_at));
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
			    (json_int_t)atomic_load(&rs->rules->hits[i])));
		}
		json_object_set_new(o, "rules", rules);
	}
	srv_ruleset_release(rs);
	admin_send_json(req, 200, "OK", o);
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
	char msg[240];
	const char *bad = NULL;
	bool dry_run = false;
	size_t len;
	uint64_t t0 = vigil_mono_ns();

	/* Nothing is read from a query string: "?dry_run=true" must not score
	 * and record as if it were absent. */
	if (evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req)) != NULL) {
		srv_wire_err_set(&err, VIGIL__V1__STATUS__STATUS_INVALID, "",
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
	body = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (body == NULL) {
		srv_wire_err_set(&err, VIGIL__V1__STATUS__STATUS_MALFORMED, "",
		    "JSON at line %d column %d: %s", jerr.line, jerr.column, jerr.text);
		goto fail;
	}
	/* Either {"txn": {...}, "dry_run": true} or the transaction itself. */
	txnobj = json_object_get(body, "txn");
	if (txnobj == NULL) {
		txnobj = body;
	} else {
		/* The envelope has two keys: any other is a typo ("dryrun") whose
		 * meaning would be lost, the transaction scored and recorded. */
		const char *key;
		json_t *val;

		json_object_foreach(body, key, val) {
			if (strcmp(key, "txn") != 0 && strcmp(key, "dry_run") != 0) {
				srv_wire_err_set(&err, VIGIL__V1__STATUS__STATUS_INVALID, key,
				    "%s: not a key of the request envelope (txn, dry_run)", key);
				goto fail;
			}
		}
	}
	/* Anything but a boolean (or null) is refused: "dry_run": "true" must
	 * not be read as false and recorded. */
	jdry = json_object_get(body, "dry_run");
	if (jdry != NULL && !json_is_boolean(jdry) && !json_is_null(jdry)) {
		srv_wire_err_set(&err, VIGIL__V1__STATUS__STATUS_INVALID, "dry_run",
		    "dry_run: must be true or false");
		goto fail;
	}
	dry_run = json_is_true(jdry);
	if (vigil_txn_from_json(txnobj, &txn, msg, sizeof msg) != VIGIL_OK) {
		char field[48];
		const char *colon = strchr(msg, ':');
		int flen = colon != NULL ? (int)(colon - msg) : 0;

		snprintf(field, sizeof field, "txn%s%.*s", flen > 0 && strncmp(msg, "txn", 3) != 0 ?
		    "." : "", strncmp(msg, "txn", 3) == 0 ? 0 : flen, msg);
		srv_wire_err_set(&err, VIGIL__V1__STATUS__STATUS_INVALID, field, "%s", msg);
		goto fail;
	}
	if (vigil_txn_validate(&txn, &bad, msg, sizeof msg) != VIGIL_OK) {
		char field[48];

		snprintf(field, sizeof field, "txn.%s", bad != NULL ? bad : "");
		srv_wire_err_set(&err, VIGIL__V1__STATUS__STATUS_INVALID, field, "%s", msg);
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
		goto fail;
	}
	hits = json_array();
	for (uint32_t i = 0; hits != NULL && i < out->nhits; i++)
		json_array_append_new(hits, json_pack("{s:s, s:i, s:s, s:b}",
		    "rule", out->hits[i].rule, "points", (int)out->hits[i].points,
		    "reason", out->hits[i].reason != NULL ? out->hits[i].reason : "",
		    "shadow", out->hits[i].shadow));
	o = json_pack("{s:s, s:s, s:s, s:i, s:s, s:o, s:s, s:I, s:I, s:b, s:b}",
	    "status", "OK", "message", "ok", "txn_id", txn.txn_id, "score", (int)out->score,
	    "decision", vigil_decision_name(out->decision), "hits", hits != NULL ? hits :
	    json_array(), "rules_version", out->rules_version,
	    "features_generation", (json_int_t)out->generation,
	    "latency_us", (json_int_t)((vigil_mono_ns() - t0) / 1000),
	    "duplicate", out->duplicate, "dry_run", out->dry_run);
	srv_metrics_request(&s->metrics, SRV_REQ_SCORE, VIGIL__V1__STATUS__STATUS_OK);
	srv_metrics_latency(&s->metrics, vigil_mono_ns() - t0);
	srv_ruleset_release(rs);
	admin_send_json(req, 200, "OK", o);
	goto out;
fail:
	srv_ruleset_release(rs);
	srv_metrics_request(&s->metrics, SRV_REQ_SCORE, err.status);
	admin_send_status(req, &err);
out:
	free(out);
	free(text);
	json_decref(body);
}

static void
admin_dispatch(struct evhttp_request *req, void *arg)
{
	srv_admin *a = arg;
	const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	bool get = cmd == EVHTTP_REQ_GET || cmd == EVHTTP_REQ_HEAD;

	atomic_fetch_add_explicit(&a->s->metrics.http_requests, 1, memory_order_relaxed);
	if (path == NULL)
		path = "/";
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
	else if (strcmp(path, "/healthz") == 0 || strcmp(path, "/readyz") == 0 ||
	    strcmp(path, "/metrics") == 0 || strcmp(path, "/v1/rules") == 0 ||
	    strcmp(path, "/v1/score") == 0)
		evhttp_send_error(req, 405, "Method Not Allowed");
	else
		evhttp_send_error(req, HTTP_NOTFOUND, "no such endpoint: try /healthz, /readyz, "
		    "/metrics, /v1/rules, POST /v1/score");
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
	if (a->http != NULL)
		evhttp_free(a->http);
	if (a->base != NULL)
		event_base_free(a->base);
	srv_worker_free(a->w);
	free(a);
}

vigil_err
srv_admin_start(srv_server *s, srv_admin **ret_admin, char *errbuf, size_t errlen)
{
	srv_admin *a;
	char host[64];
	uint16_t port;
	vigil_err rv = VIGIL_OK;
	int prv;

	if (srv_config_hostport(s->cfg.admin, host, sizeof host, &port) != VIGIL_OK) {
		snprintf(errbuf, errlen, "admin: \"%s\" is not HOST:PORT", s->cfg.admin);
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
	evhttp_set_max_body_size(a->http, s->cfg.max_message_bytes + 1);
	evhttp_set_max_headers_size(a->http, 16384);
	evhttp_set_timeout(a->http, 30);
	evhttp_set_allowed_methods(a->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST);
	evhttp_set_gencb(a->http, admin_dispatch, a);
	if (evhttp_bind_socket_with_handle(a->http, host, port) == NULL) {
		snprintf(errbuf, errlen, "admin: cannot listen on %s (address in use or not local?)",
		    s->cfg.admin);
		rv = VIGIL_EBUSY;
		goto out;
	}
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
