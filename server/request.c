/* SPDX-License-Identifier: MIT */
/*
 * server/request.c - one request, start to finish, on a worker thread:
 * decode and validate (wire.c), then for a score the clock-skew guard (an
 * event time too far ahead of our clock) and the one scoring pipeline,
 * app_score (dedupe, features, model, rules, decision, archive, live
 * update; app/score.c), with the current ruleset, then the reply; a dry
 * run runs the same pipeline with nothing recorded; a label goes to the
 * archive. All per-request memory is in the
 * srv_worker, allocated once, the decoded request included: protobuf-c
 * decodes into the worker's arena, reset in srv_request_done.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "srv.h"
#include "stages.h"
#include "vigil_config.h"

#define SCORE_MAX_HITS (2 * RULES_MAX_RULES)
/* The decoded request lives here (a typical one takes under 2 KiB); what
 * does not fit is malloc'd, so any request the size cap admits decodes. */
#define SCORE_ARENA_BYTES (16u << 10)

struct srv_worker {
	srv_server         *s;
	app_work           *aw;       /* made on the first score after ready */
	srv_outcome         out;

	/* the request being answered and its reply */
	ProtobufCAllocator  arena;    /* bump allocator over abuf, reset per request */
	uint8_t            *abuf;
	size_t              aused;
	bool                aheap;    /* the arena overflowed into malloc this request */
	Vigil__V1__Request *req;
	srv_ruleset        *rs;
	srv_wire_err        err;
	Vigil__V1__Reply    reply;
	Vigil__V1__ScoreReply score;
	Vigil__V1__LabelReply label;
	Vigil__V1__HealthReply health;
	Vigil__V1__RulesInfoReply rinfo;
	Vigil__V1__Hit      hitv[SCORE_MAX_HITS];
	Vigil__V1__Hit     *hitp[SCORE_MAX_HITS];
	Vigil__V1__ModelOutcome model;
	Vigil__V1__ModelReason reasonv[APP_REASONS_MAX];
	Vigil__V1__ModelReason *reasonp[APP_REASONS_MAX];
	Vigil__V1__RuleInfo *infov;   /* rules_info only; freed in _done */
	Vigil__V1__RuleInfo **infop;
	char                txn_id[VIGIL_ID_MAX + 1];
	char                health_err[SRV_ERR_MAX];
	char                rinfo_err[SRV_ERR_MAX];
	char                version[64];
	char                hash[SRV_RULES_ID_MAX];
};

static void *
score_arena_alloc(void *data, size_t size)
{
	srv_worker *w = data;
	size_t n = (size + 15) & ~(size_t)15; /* malloc's alignment */

	if (n >= size && n <= SCORE_ARENA_BYTES - w->aused) {
		void *p = w->abuf + w->aused;

		w->aused += n;
		return p;
	}
	w->aheap = true;
	return malloc(size);
}

static void
score_arena_free(void *data, void *p)
{
	srv_worker *w = data;
	uintptr_t a = (uintptr_t)p, lo = (uintptr_t)w->abuf;

	if (a >= lo && a < lo + SCORE_ARENA_BYTES)
		return; /* reclaimed all at once in srv_request_done */
	free(p);
}

/* Bounded string copy (truncates like snprintf "%s", without its cost). */
static void
score_strcpy(char *dst, size_t cap, const char *src)
{
	size_t n = strnlen(src, cap - 1);

	memcpy(dst, src, n);
	dst[n] = '\0';
}

srv_worker *
srv_worker_new(srv_server *s)
{
	srv_worker *w = calloc(1, sizeof *w);

	if (w == NULL)
		return NULL;
	w->s = s;
	w->abuf = malloc(SCORE_ARENA_BYTES);
	if (w->abuf == NULL) {
		free(w);
		return NULL;
	}
	w->arena.alloc = score_arena_alloc;
	w->arena.free = score_arena_free;
	w->arena.allocator_data = w;
	for (uint32_t i = 0; i < SCORE_MAX_HITS; i++)
		w->hitp[i] = &w->hitv[i];
	for (uint32_t i = 0; i < APP_REASONS_MAX; i++)
		w->reasonp[i] = &w->reasonv[i];
	snprintf(w->version, sizeof w->version, "vigild %s", VIGIL_VERSION);
	return w;
}

void
srv_worker_free(srv_worker *w)
{
	if (w == NULL)
		return;
	srv_request_done(w);
	app_work_free(w->aw);
	free(w->abuf);
	free(w);
}

#define score_fail(out, status, ...) srv_wire_err_set(&(out)->err, (status), "", __VA_ARGS__)

/* A model rule's reason with the features that pushed the score up:
 * "model score is high (amount=912.3 +1.42, hour=2 +0.87)". */
static const char *
score_model_reason(srv_outcome *out, const char *reason)
{
	size_t n, cap = sizeof out->model_reason;
	int k;

	if (out->nreasons == 0)
		return reason;
	k = snprintf(out->model_reason, cap, "%s (", reason != NULL ? reason : "model");
	n = k > 0 ? (size_t)k : 0;
	for (uint32_t i = 0; i < out->nreasons && n < cap; i++) {
		const app_reason *r = &out->reasons[i];

		k = snprintf(out->model_reason + n, cap - n, "%s%s=%.6g %+.2f", i ? ", " : "",
		    r->feature, r->value.num, (double)r->contrib);
		n += k > 0 ? (size_t)k : 0;
	}
	if (n < cap)
		snprintf(out->model_reason + n, cap - n, ")");
	vigil_utf8_line(out->model_reason);
	return out->model_reason;
}

/* Hits of a fresh evaluation: active, then shadow, names from the prog. */
static void
score_hits_from_result(srv_outcome *out, const srv_ruleset *rs, const rules_result *res)
{
	const rules_prog *prog = rs->rules->prog;
	rules_rule_info ri;

	out->nhits = 0;
	for (uint32_t i = 0; i < res->nhits; i++) {
		const char *reason;

		rules_prog_rule(prog, res->hits[i], &ri);
		reason = rs->rules->ar->reads_model[res->hits[i]] ?
		    score_model_reason(out, ri.reason) : ri.reason;
		out->hits[out->nhits++] = (srv_hitv){ ri.name, reason, ri.points, false };
	}
	for (uint32_t i = 0; i < res->nshadow; i++) {
		rules_prog_rule(prog, res->shadow[i], &ri);
		out->hits[out->nhits++] = (srv_hitv){ ri.name, ri.reason, ri.points, true };
	}
}

static void
score_count_hits(const srv_ruleset *rs, const rules_result *res)
{
	for (uint32_t i = 0; i < res->nhits; i++)
		atomic_fetch_add_explicit(rs->rules->hits[res->hits[i]], 1, memory_order_relaxed);
	for (uint32_t i = 0; i < res->nshadow; i++)
		atomic_fetch_add_explicit(rs->rules->hits[res->shadow[i]], 1, memory_order_relaxed);
}

/* A retry: the first outcome, as stored, the model's score and top features
 * included (kept with the txn_id by the process that scored it; after a
 * restart the archive gives no model part). Rule reasons are not stored;
 * they come from the current rules when the rule still exists, with the
 * model's features for a rule that reads model.score, as the first reply. */
static void
score_from_prior(srv_outcome *out, const srv_ruleset *rs)
{
	const store_outcome *p = &out->prior;

	out->score = p->score;
	out->points = p->points;
	out->decision = p->decision;
	out->generation = p->features_gen;
	/* the dedupe record keeps the rules_hash (its field is named
	 * rules_version); the declared version is the loaded one's when the
	 * same rules decided, else unknown */
	out->rules_hash = p->rules_version;
	out->rules_version = rs != NULL && strcmp(p->rules_version,
	    rules_prog_hash(rs->rules->prog)) == 0 ? rules_prog_version(rs->rules->prog) : "";
	out->duplicate = true;
	out->nhits = 0;
	out->model_score = p->model.present ? p->model.score : NAN;
	out->nreasons = 0;
	for (uint32_t i = 0; p->model.present && i < p->model.nreasons && i < APP_REASONS_MAX;
	    i++) {
		const store_field *f = store_schema_field(p->model.reasons[i].slot);

		if (f == NULL)
			break;
		out->reasons[i].feature = f->name;
		out->reasons[i].slot = p->model.reasons[i].slot;
		out->reasons[i].value = vigil_value_num(p->model.reasons[i].value);
		out->reasons[i].contrib = p->model.reasons[i].contrib;
		out->nreasons = i + 1;
	}
	for (uint32_t i = 0; i < p->nhits && i < STORE_MAX_HITS; i++) {
		const char *reason = "";
		rules_rule_info ri;
		uint32_t idx;

		if (rules_prog_rule_find(rs->rules->prog, p->hits[i].rule, &idx) == VIGIL_OK) {
			rules_prog_rule(rs->rules->prog, idx, &ri);
			reason = ri.reason != NULL ? ri.reason : "";
			if (!p->hits[i].shadow && rs->rules->ar->reads_model[idx])
				reason = score_model_reason(out, ri.reason);
		}
		out->hits[out->nhits++] = (srv_hitv){ p->hits[i].rule, reason, p->hits[i].points,
		    p->hits[i].shadow };
	}
}

void
srv_score_txn(srv_server *s, srv_worker *w, const srv_ruleset *rs, const vigil_txn *txn,
    bool dry_run, srv_outcome *out)
{
	app_scorer sc;
	app_outcome ao;
	vigil_err rv;
	int64_t now = vigil_now_ms(); /* one clock read for the window and the score */

	out->err.status = VIGIL__V1__STATUS__STATUS_OK;
	out->err.info.field[0] = '\0';
	memcpy(out->err.info.msg, "ok", 3);
	out->duplicate = false;
	out->dry_run = dry_run;
	out->late = false;
	out->past_dedupe_horizon = false;
	out->nhits = 0;
	out->nreasons = 0;
	out->model_score = NAN;
	/* Before readiness, so the answer to a bad time never depends on it. */
	if (srv_wire_txn_window(txn, now, s->cfg.max_future_skew_ms,
	    s->cfg.max_past_skew_ms, &out->err) !=
	    VIGIL_OK)
		return;
	if (!atomic_load(&s->ready) || rs == NULL) {
		score_fail(out, VIGIL__V1__STATUS__STATUS_UNAVAILABLE, "%s",
		    "not ready: rules or store still loading");
		return;
	}
	if (w->aw == NULL && (w->aw = app_work_new(s->db)) == NULL) {
		score_fail(out, VIGIL__V1__STATUS__STATUS_INTERNAL, "%s", "out of memory");
		return;
	}
	out->rules_version = rules_prog_version(rs->rules->prog);
	out->rules_hash = rules_prog_hash(rs->rules->prog);
	/* features from the generation the thresholds and model came from:
	 * a generation switch is one rule-set swap (reload.c) */
	sc = (app_scorer){ .rules = rs->rules->ar, .tv = rs->tv,
		.model = rs->model != NULL ? rs->model->m : NULL, .pin_gen = true,
		.gen = rs->gen };
	VIGIL_STAGE(VIGIL_ST_APP);
	rv = app_score(s->db, w->aw, &sc, txn, dry_run ? APP_DRY_RUN : 0, now, &ao);
	VIGIL_STAGE(VIGIL_ST_APP_END);
	VIGIL_STAGE_DONE(VIGIL_ST_APP, VIGIL_ST_APP_END);
	switch (rv) {
	case VIGIL_OK:
		break;
	case VIGIL_EEXIST:
		out->prior = ao.prior;
		out->late = ao.prior.late;
		score_from_prior(out, rs);
		atomic_fetch_add(&s->metrics.duplicates, 1);
		return;
	case VIGIL_ECONFLICT:
		/* Not a retry: answering with the first outcome would hand another
		 * transaction's decision to one that was never scored. */
		srv_wire_err_set(&out->err, VIGIL__V1__STATUS__STATUS_INVALID, "txn.txn_id",
		    "already scored for a different transaction (card, merchant, "
		    "terminal, amount or currency differ); a retry must resend the same "
		    "transaction, a new one needs a new txn_id");
		atomic_fetch_add(&s->metrics.id_conflicts, 1);
		return;
	case VIGIL_ELIMIT:
		if (ao.step == APP_STEP_FEATURES) {
			score_fail(out, VIGIL__V1__STATUS__STATUS_OVERLOADED, "live state: %s",
			    vigil_strerror(rv));
			return;
		}
		/* fall through */
	case VIGIL_EAGAIN:
		/* The archive refuses appends while it retries a fault (ENOSPC,
		 * EMFILE, EIO): not ready, nothing acknowledged; main.c logs the
		 * state change once, not per request. */
		score_fail(out, VIGIL__V1__STATUS__STATUS_UNAVAILABLE, "not ready: archive: %s",
		    ao.diag.msg[0] ? ao.diag.msg : "failing, retrying");
		return;
	default:
		if (ao.step == APP_STEP_ARCHIVE) {
			/* Not acknowledged: the client retries with the same txn_id. */
			srv_log("archive: %s: %s", vigil_strerror(rv), ao.diag.msg);
			score_fail(out, VIGIL__V1__STATUS__STATUS_INTERNAL, "archive: %s",
			    ao.diag.msg[0] ? ao.diag.msg : vigil_strerror(rv));
		} else {
			score_fail(out, VIGIL__V1__STATUS__STATUS_INTERNAL, "%s: %s",
			    ao.step == APP_STEP_RULES ? "rule evaluation" : "feature lookup",
			    vigil_strerror(rv));
		}
		return;
	}
	out->score = ao.res->score;
	out->points = ao.res->points;
	out->decision = ao.res->decision;
	out->generation = ao.generation;
	out->model_score = ao.model_score;
	out->late = ao.late;
	out->past_dedupe_horizon = ao.past_dedupe_horizon;
	out->nreasons = ao.nreasons;
	memcpy(out->reasons, ao.reasons, sizeof ao.reasons);
	score_hits_from_result(out, rs, ao.res);
	if (dry_run) {
		atomic_fetch_add(&s->metrics.dry_runs, 1);
		return;
	}
	score_count_hits(rs, ao.res);
	/* applied here: the other replicas' entity features count it too */
	if (s->cluster != NULL && !ao.late)
		srv_cluster_publish(s->cluster, txn);
	if ((unsigned)out->decision < 4)
		atomic_fetch_add_explicit(&s->metrics.decisions[out->decision], 1,
		    memory_order_relaxed);
}

void
srv_label_txn(srv_server *s, const store_label *label, srv_wire_err *err)
{
	store_diag diag;
	vigil_err rv;

	srv_wire_err_set(err, VIGIL__V1__STATUS__STATUS_OK, "", "ok");
	if (!atomic_load(&s->ready)) {
		srv_wire_err_set(err, VIGIL__V1__STATUS__STATUS_UNAVAILABLE, "",
		    "not ready: store still loading");
		return;
	}
	diag.msg[0] = '\0';
	rv = store_label_record(s->db, label, &diag);
	if (rv == VIGIL_EAGAIN) {
		/* the archive is failing and retrying: not ready, not a bug (main.c
		 * logs the state change once) */
		srv_wire_err_set(err, VIGIL__V1__STATUS__STATUS_UNAVAILABLE, "",
		    "not ready: archive: %s", diag.msg[0] ? diag.msg : vigil_strerror(rv));
	} else if (rv != VIGIL_OK) {
		srv_log("archive: label %s: %s: %s", label->txn_id, vigil_strerror(rv), diag.msg);
		srv_wire_err_set(err, VIGIL__V1__STATUS__STATUS_INTERNAL, "", "archive: %s",
		    diag.msg[0] ? diag.msg : vigil_strerror(rv));
	}
}

bool
srv_ready(srv_server *s, char *why, size_t len)
{
	srv_ruleset *rs = srv_ruleset_acquire(s);
	store_db_health dh;
	char merr[SRV_ERR_MAX];
	uint64_t mref;
	bool ready = false;

	if (!atomic_load(&s->ready) || rs == NULL) {
		snprintf(why, len, "starting: rules or store still loading");
		goto out;
	}
	if (atomic_load(&s->draining)) {
		snprintf(why, len, "draining: shutting down");
		goto out;
	}
	if (s->db == NULL) {
		snprintf(why, len, "starting: store still loading");
		goto out;
	}
	store_db_get_health(s->db, &dh);
	if (!dh.ok) {
		/* a failing archive acknowledges nothing */
		snprintf(why, len, "archive failing: %s %s: %s (%s) for %lld s; retrying",
		    dh.archive.op, dh.archive.file, strerror(dh.archive.err),
		    strerrorname_np(dh.archive.err) ? strerrorname_np(dh.archive.err) : "?",
		    (long long)((vigil_now_ms() - dh.archive.since_ms) / 1000));
		goto out;
	}
	if (!s->cfg.ready_when_degraded && dh.generation_refused) {
		char refused[48], serving[48];

		if (dh.refused_generation != 0)
			snprintf(refused, sizeof refused, "generation %llu",
			    (unsigned long long)dh.refused_generation);
		else
			snprintf(refused, sizeof refused, "CURRENT");
		if (dh.generation != 0)
			snprintf(serving, sizeof serving, "generation %llu",
			    (unsigned long long)dh.generation);
		else
			snprintf(serving, sizeof serving, "no generation");
		snprintf(why, len, "%s refused: %s; serving %s ([health] ready_when_degraded = "
		    "false)", refused, dh.generation_error, serving);
		goto out;
	}
	/* an expired certificate, CA or CRL refuses every mutual-TLS client:
	 * not ready, whatever ready_when_degraded says (tls_expiry.c) */
	if (srv_tls_expired(s, why, len))
		goto out;
	mref = srv_model_refused(s, merr, sizeof merr);
	if (!s->cfg.ready_when_degraded && mref != 0) {
		uint64_t mg = atomic_load(&s->model_generation);

		/* merr names the generation: "generation N: model.json: ..." */
		if (mg != 0)
			snprintf(why, len, "model refused: %s; serving the model of generation %llu "
			    "([health] ready_when_degraded = false)", merr, (unsigned long long)mg);
		else
			snprintf(why, len, "model refused: %s; rules alone decide ([health] "
			    "ready_when_degraded = false)", merr);
		goto out;
	}
	why[0] = '\0';
	ready = true;
out:
	srv_ruleset_release(rs);
	return ready;
}

void
srv_health_fill(srv_server *s, Vigil__V1__HealthReply *h, char *errbuf, size_t errlen,
    char *hashbuf, size_t hashlen)
{
	srv_ruleset *rs = srv_ruleset_acquire(s);
	bool draining = atomic_load(&s->draining);

	/* the same answer as /readyz (srv_ready): a failing archive, or a
	 * refused generation or model unless [health] ready_when_degraded */
	h->ready = srv_ready(s, errbuf, errlen);
	h->uptime_s = (uint64_t)((vigil_now_ms() - s->started_ms) / 1000);
	srv_rules_last_error(s, errbuf, errlen);
	h->rules_last_error = errbuf;
	h->rules_load_failures = atomic_load(&s->load_failures);
	h->draining = draining;
	h->features_generation = atomic_load(&s->ready) && rs != NULL ? rs->generation : 0;
	h->rules_version = (char *)"";
	h->rules_hash = (char *)"";
	if (rs != NULL) { /* copies: rs may be freed once released */
		size_t n;

		snprintf(hashbuf, hashlen, "%s", rules_prog_hash(rs->rules->prog));
		h->rules_hash = hashbuf;
		n = strlen(hashbuf) + 1;
		if (n < hashlen) {
			snprintf(hashbuf + n, hashlen - n, "%s", rules_prog_version(rs->rules->prog));
			h->rules_version = hashbuf + n;
		}
	}
	srv_ruleset_release(rs);
}

static void
reply_error(srv_worker *w)
{
	srv_wire_error_reply(&w->err, &w->reply);
}

static void
reply_score(srv_worker *w, const char *txn_id)
{
	srv_outcome *out = &w->out;
	Vigil__V1__ScoreReply *sr = &w->score;

	vigil__v1__score_reply__init(sr);
	score_strcpy(w->txn_id, sizeof w->txn_id, txn_id);
	sr->txn_id = w->txn_id;
	sr->score = out->score;
	sr->points = out->points;
	sr->decision = (Vigil__V1__Decision)out->decision;
	for (uint32_t i = 0; i < out->nhits; i++) {
		Vigil__V1__Hit *h = &w->hitv[i];

		vigil__v1__hit__init(h);
		h->rule = (char *)out->hits[i].rule;
		h->points = out->hits[i].points;
		h->reason = (char *)(out->hits[i].reason != NULL ? out->hits[i].reason : "");
		h->shadow = out->hits[i].shadow;
	}
	sr->n_hits = out->nhits;
	sr->hits = w->hitp;
	sr->rules_version = (char *)out->rules_version;
	sr->rules_hash = (char *)out->rules_hash;
	sr->features_generation = out->generation;
	sr->duplicate = out->duplicate;
	sr->dry_run = out->dry_run;
	sr->late = out->late;
	sr->past_dedupe_horizon = out->past_dedupe_horizon;
	if (!isnan(out->model_score)) {
		vigil__v1__model_outcome__init(&w->model);
		w->model.score = out->model_score;
		for (uint32_t i = 0; i < out->nreasons; i++) {
			Vigil__V1__ModelReason *mr = &w->reasonv[i];

			vigil__v1__model_reason__init(mr);
			mr->feature = (char *)out->reasons[i].feature;
			mr->value = out->reasons[i].value.num;
			mr->contribution = out->reasons[i].contrib;
		}
		w->model.n_reasons = out->nreasons;
		w->model.reasons = w->reasonp;
		sr->model = &w->model;
	}
	vigil__v1__reply__init(&w->reply);
	w->reply.message = (char *)"ok";
	w->reply.kind_case = VIGIL__V1__REPLY__KIND_SCORE;
	w->reply.score = sr;
}

static void
reply_rules_info(srv_worker *w)
{
	srv_server *s = w->s;
	Vigil__V1__RulesInfoReply *ri = &w->rinfo;
	uint32_t n;

	vigil__v1__rules_info_reply__init(ri);
	srv_rules_last_error(s, w->rinfo_err, sizeof w->rinfo_err);
	ri->last_error = w->rinfo_err;
	vigil__v1__reply__init(&w->reply);
	w->reply.message = (char *)"ok";
	w->reply.kind_case = VIGIL__V1__REPLY__KIND_RULES_INFO;
	w->reply.rules_info = ri;
	w->rs = srv_ruleset_acquire(s);
	if (w->rs == NULL)
		return;
	ri->version = (char *)rules_prog_version(w->rs->rules->prog);
	ri->content_hash = (char *)rules_prog_hash(w->rs->rules->prog);
	ri->path = w->rs->rules->path;
	ri->loaded_at_ms = w->rs->rules->loaded_at_ms;
	n = w->rs->rules->nrules;
	w->infov = calloc(n > 0 ? n : 1, sizeof *w->infov);
	w->infop = calloc(n > 0 ? n : 1, sizeof *w->infop);
	if (w->infov == NULL || w->infop == NULL) {
		srv_wire_err_set(&w->err, VIGIL__V1__STATUS__STATUS_INTERNAL, "", "out of memory");
		reply_error(w);
		return;
	}
	for (uint32_t i = 0; i < n; i++) {
		rules_rule_info info;

		rules_prog_rule(w->rs->rules->prog, i, &info);
		vigil__v1__rule_info__init(&w->infov[i]);
		w->infov[i].name = (char *)info.name;
		w->infov[i].points = info.points;
		w->infov[i].mode = (char *)rules_mode_name(info.mode);
		w->infov[i].reason = (char *)(info.reason != NULL ? info.reason : "");
		w->infop[i] = &w->infov[i];
	}
	ri->n_rules = n;
	ri->rules = w->infop;
}

/* A decoded score request: scored, and its reply (or error) made. */
static void
request_score(srv_server *s, srv_worker *w, const vigil_txn *txn, bool dry_run)
{
	VIGIL_STAGE(VIGIL_ST_RULESET);
	w->rs = srv_ruleset_acquire(s);
	VIGIL_STAGE(VIGIL_ST_SCORE);
	srv_score_txn(s, w, w->rs, txn, dry_run, &w->out);
	VIGIL_STAGE(VIGIL_ST_FILL);
	if (w->out.err.status != VIGIL__V1__STATUS__STATUS_OK) {
		w->err = w->out.err;
		reply_error(w);
		return;
	}
	reply_score(w, txn->txn_id);
}

const Vigil__V1__Reply *
srv_request_handle(srv_server *s, srv_worker *w, const void *buf, size_t len)
{
	uint64_t t0 = vigil_mono_ns();
	srv_req_type type = SRV_REQ_UNKNOWN;
	vigil_txn txn;
	bool dry_run;
	store_label label;

	srv_request_done(w);
	VIGIL_STAGE(VIGIL_ST_DECODE);
	/* A score request as clients send it takes the lean decoder; anything
	 * else, and every error, protobuf-c's (wire.h). */
	if (srv_wire_score_lean(buf, len, s->cfg.max_message_bytes, &txn, &dry_run)) {
		type = SRV_REQ_SCORE;
		request_score(s, w, &txn, dry_run);
		goto out;
	}
	if (srv_wire_decode_with(buf, len, s->cfg.max_message_bytes, &w->arena, &w->req,
	    &w->err) != VIGIL_OK) {
		reply_error(w);
		goto out;
	}
	switch (w->req->kind_case) {
	case VIGIL__V1__REQUEST__KIND_SCORE:
		type = SRV_REQ_SCORE;
		if (srv_wire_txn(w->req->score->txn, &txn, &w->err) != VIGIL_OK) {
			reply_error(w);
			goto out;
		}
		request_score(s, w, &txn, w->req->score->dry_run != 0);
		break;
	case VIGIL__V1__REQUEST__KIND_LABEL:
		type = SRV_REQ_LABEL;
		if (srv_wire_label(w->req->label->label, vigil_now_ms(), &label, &w->err) !=
		    VIGIL_OK) {
			reply_error(w);
			goto out;
		}
		srv_label_txn(s, &label, &w->err);
		if (w->err.status != VIGIL__V1__STATUS__STATUS_OK) {
			reply_error(w);
			goto out;
		}
		vigil__v1__label_reply__init(&w->label);
		snprintf(w->txn_id, sizeof w->txn_id, "%s", label.txn_id);
		w->label.txn_id = w->txn_id;
		vigil__v1__reply__init(&w->reply);
		w->reply.message = (char *)"ok";
		w->reply.kind_case = VIGIL__V1__REPLY__KIND_LABEL;
		w->reply.label = &w->label;
		break;
	case VIGIL__V1__REQUEST__KIND_HEALTH:
		type = SRV_REQ_HEALTH;
		vigil__v1__health_reply__init(&w->health);
		srv_health_fill(s, &w->health, w->health_err, sizeof w->health_err, w->hash,
		    sizeof w->hash);
		w->health.server_version = w->version;
		vigil__v1__reply__init(&w->reply);
		w->reply.message = (char *)"ok";
		w->reply.kind_case = VIGIL__V1__REPLY__KIND_HEALTH;
		w->reply.health = &w->health;
		break;
	case VIGIL__V1__REQUEST__KIND_RULES_INFO:
		type = SRV_REQ_RULES_INFO;
		reply_rules_info(w);
		break;
	default: /* srv_wire_decode refuses other kinds */
		srv_wire_err_set(&w->err, VIGIL__V1__STATUS__STATUS_UNSUPPORTED, "",
		    "unknown request kind");
		reply_error(w);
		break;
	}
out:
	srv_metrics_request(&s->metrics, type, w->reply.status);
	if (type == SRV_REQ_SCORE) {
		uint64_t ns = vigil_mono_ns() - t0;

		if (w->reply.kind_case == VIGIL__V1__REPLY__KIND_SCORE) {
			w->score.latency_us = (uint32_t)(ns / 1000);
			srv_metrics_latency(&s->metrics, ns);
		}
	}
	return &w->reply;
}

void
srv_request_done(srv_worker *w)
{
	/* All in the arena (the usual case): nothing to walk and free. */
	if (w->req != NULL && w->aheap)
		vigil__v1__request__free_unpacked(w->req, &w->arena);
	w->req = NULL;
	w->aheap = false;
	w->aused = 0;
	srv_ruleset_release(w->rs);
	w->rs = NULL;
	free(w->infov);
	free(w->infop);
	w->infov = NULL;
	w->infop = NULL;
}
