/* SPDX-License-Identifier: MIT */
/*
 * clients/c/codec.c - libvigil-client's wire side: the checks of a
 * request's fields, its encoding into the call's vigil.v1.Request bytes,
 * and the decoding of a reply into the call's result (or error), without
 * malloc (the call's arena). client.c (vigil_client.h has the contract)
 * runs the calls; vc_int.h has what the two share.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_int.h"
#include "vc_int.h"
#include "vigil.pb-c.h"
#include "vigil_client.h"

/* ---- request encoding ---- */

static const char *
vc_str(const char *s)
{
	return s != NULL ? s : "";
}

static bool
vc_empty(const char *s)
{
	return s == NULL || s[0] == '\0';
}

/* Only what the client needs: required fields present, ids within the cap
 * (the server checks everything else and answers SINVALID). */
static vigil_client_err
vc_id_check(const char *field, const char *v, bool required, vigil_client_errinfo *reterr_info)
{
	if (required && vc_empty(v)) {
		vc_info_set(reterr_info, VIGIL_CLIENT_EINVAL, field, "required");
		return VIGIL_CLIENT_EINVAL;
	}
	if (v != NULL && strlen(v) > VC_ID_MAX) {
		vc_info_set(reterr_info, VIGIL_CLIENT_EINVAL, field, "longer than %d bytes",
		    VC_ID_MAX);
		return VIGIL_CLIENT_EINVAL;
	}
	return VIGIL_CLIENT_OK;
}

static vigil_client_err
vc_txn_check(const vigil_client_txn *txn, vigil_client_errinfo *reterr_info)
{
	vigil_client_err rv;

	if ((rv = vc_id_check("txn.txn_id", txn->txn_id, true, reterr_info)) != VIGIL_CLIENT_OK ||
	    (rv = vc_id_check("txn.card_id", txn->card_id, true, reterr_info)) != VIGIL_CLIENT_OK ||
	    (rv = vc_id_check("txn.merchant_id", txn->merchant_id, true, reterr_info)) != VIGIL_CLIENT_OK ||
	    (rv = vc_id_check("txn.terminal_id", txn->terminal_id, false, reterr_info)) != VIGIL_CLIENT_OK ||
	    (rv = vc_id_check("txn.device_id", txn->device_id, false, reterr_info)) != VIGIL_CLIENT_OK)
		return rv;
	if (vc_empty(txn->currency)) {
		vc_info_set(reterr_info, VIGIL_CLIENT_EINVAL, "txn.currency", "required");
		return VIGIL_CLIENT_EINVAL;
	}
	if (txn->event_time_ms <= 0) {
		vc_info_set(reterr_info, VIGIL_CLIENT_EINVAL, "txn.event_time_ms",
		    "required (Unix milliseconds > 0)");
		return VIGIL_CLIENT_EINVAL;
	}
	if (txn->nattrs > VC_MAX_ATTRS || (txn->nattrs > 0 && txn->attrs == NULL)) {
		vc_info_set(reterr_info, VIGIL_CLIENT_EINVAL, "txn.attributes",
		    "%zu given, at most %d", txn->nattrs, VC_MAX_ATTRS);
		return VIGIL_CLIENT_EINVAL;
	}
	return VIGIL_CLIENT_OK;
}

static vigil_client_err
vc_label_check(const vigil_client_label_req *label, vigil_client_errinfo *reterr_info)
{
	vigil_client_err rv;

	if ((rv = vc_id_check("label.txn_id", label->txn_id, true, reterr_info)) != VIGIL_CLIENT_OK ||
	    (rv = vc_id_check("label.card_id", label->card_id, false, reterr_info)) != VIGIL_CLIENT_OK)
		return rv;
	return VIGIL_CLIENT_OK;
}

vigil_client_err
vc_call_reserve(vc_call *call, size_t len, vigil_client_errinfo *reterr_info)
{
	if (len > VC_MAX_REQUEST) {
		vc_info_set(reterr_info, VIGIL_CLIENT_EINVAL, NULL,
		    "request is %zu bytes, over the %d-byte cap", len, VC_MAX_REQUEST);
		return VIGIL_CLIENT_EINVAL;
	}
	if (len > call->cap) {
		size_t   cap = len < 512 ? 512 : len;
		uint8_t *b = realloc(call->buf, cap);

		if (b == NULL) {
			vc_info_set(reterr_info, VIGIL_CLIENT_ENOMEM, NULL, "out of memory encoding");
			return VIGIL_CLIENT_ENOMEM;
		}
		call->buf = b;
		call->cap = cap;
	}
	call->len = len;
	return VIGIL_CLIENT_OK;
}

vigil_client_err
vc_encode_score(vc_call *call, const vigil_client_txn *txn, bool dry_run,
    vigil_client_errinfo *reterr_info)
{
	Vigil__V1__Transaction  t   = VIGIL__V1__TRANSACTION__INIT;
	Vigil__V1__Location     loc = VIGIL__V1__LOCATION__INIT;
	Vigil__V1__ScoreRequest sr  = VIGIL__V1__SCORE_REQUEST__INIT;
	Vigil__V1__Request      rq  = VIGIL__V1__REQUEST__INIT;
	Vigil__V1__Attribute    attrs[VC_MAX_ATTRS];
	Vigil__V1__Attribute   *attrp[VC_MAX_ATTRS];
	vigil_client_err        rv;

	rv = vc_txn_check(txn, reterr_info);
	if (rv != VIGIL_CLIENT_OK)
		return rv;
	t.txn_id        = (char *) txn->txn_id;
	t.card_id       = (char *) txn->card_id;
	t.merchant_id   = (char *) txn->merchant_id;
	t.terminal_id   = (char *) vc_str(txn->terminal_id);
	t.currency      = (char *) txn->currency;
	t.country       = (char *) vc_str(txn->country);
	t.device_id     = (char *) vc_str(txn->device_id);
	t.ip            = (char *) vc_str(txn->ip);
	t.event_time_ms = txn->event_time_ms;
	t.amount_minor  = txn->amount_minor;
	t.mcc           = txn->mcc;
	t.channel       = (Vigil__V1__Channel) txn->channel;
	if (txn->has_location) {
		loc.latitude  = txn->latitude;
		loc.longitude = txn->longitude;
		t.location    = &loc;
	}
	for (size_t i = 0; i < txn->nattrs; i++) {
		vigil__v1__attribute__init(&attrs[i]);
		attrs[i].key   = (char *) vc_str(txn->attrs[i].key);
		attrs[i].value = (char *) vc_str(txn->attrs[i].value);
		attrp[i] = &attrs[i];
	}
	t.n_attributes = txn->nattrs;
	t.attributes   = txn->nattrs > 0 ? attrp : NULL;
	sr.txn     = &t;
	sr.dry_run = dry_run;
	rq.kind_case = VIGIL__V1__REQUEST__KIND_SCORE;
	rq.score     = &sr;

	rv = vc_call_reserve(call, vigil__v1__request__get_packed_size(&rq), reterr_info);
	if (rv != VIGIL_CLIENT_OK)
		return rv;
	vigil__v1__request__pack(&rq, call->buf);
	call->kind = VC_KIND_SCORE;
	snprintf(call->txn_id, sizeof call->txn_id, "%s", txn->txn_id);
	return VIGIL_CLIENT_OK;
}

vigil_client_err
vc_encode_label(vc_call *call, const vigil_client_label_req *label,
    vigil_client_errinfo *reterr_info)
{
	Vigil__V1__Label        l  = VIGIL__V1__LABEL__INIT;
	Vigil__V1__LabelRequest lr = VIGIL__V1__LABEL_REQUEST__INIT;
	Vigil__V1__Request      rq = VIGIL__V1__REQUEST__INIT;
	vigil_client_err        rv;

	rv = vc_label_check(label, reterr_info);
	if (rv != VIGIL_CLIENT_OK)
		return rv;
	l.txn_id        = (char *) label->txn_id;
	l.fraud         = label->fraud;
	l.label_time_ms = label->label_time_ms;
	l.source        = (char *) vc_str(label->source);
	l.card_id       = (char *) vc_str(label->card_id);
	lr.label = &l;
	rq.kind_case = VIGIL__V1__REQUEST__KIND_LABEL;
	rq.label     = &lr;
	rv = vc_call_reserve(call, vigil__v1__request__get_packed_size(&rq), reterr_info);
	if (rv != VIGIL_CLIENT_OK)
		return rv;
	vigil__v1__request__pack(&rq, call->buf);
	call->kind = VC_KIND_LABEL;
	snprintf(call->txn_id, sizeof call->txn_id, "%s", label->txn_id);
	return VIGIL_CLIENT_OK;
}

/* ---- reply decoding ---- */

bool
vc_retryable(vigil_client_err e)
{
	switch (e) {
	case VIGIL_CLIENT_ETIMEDOUT:
	case VIGIL_CLIENT_EUNREACHABLE:
	case VIGIL_CLIENT_ETRANSPORT:
	case VIGIL_CLIENT_EPROTO:
	case VIGIL_CLIENT_ENOMEM:
	case VIGIL_CLIENT_SOVERLOADED:
	case VIGIL_CLIENT_SUNAVAILABLE:
	case VIGIL_CLIENT_SINTERNAL:
		return true;
	default:
		return false;
	}
}

/* Records the outcome of one attempt in call->err / call->info. */
void
vc_call_fail(vc_call *call, vigil_client_err code, const char *field, const char *detail)
{
	call->err = code;
	vc_info_set(&call->info, code, field, "%s: %s", call->c->reps[call->rep].url, detail);
}

static vigil_client_err
vc_result_build(vc_call *call, const Vigil__V1__ScoreReply *sr)
{
	const char *url = call->c->reps[call->rep].url;
	/* a reply may leave txn_id out (only another one is refused) */
	const char *txn_id = sr->txn_id[0] != '\0' ? sr->txn_id : call->txn_id;
	size_t      nreasons = sr->model != NULL ? sr->model->n_reasons : 0;
	size_t      size = sizeof(vigil_client_hit) * sr->n_hits +
	    sizeof(vigil_client_model_reason) * nreasons;
	char       *block, *p;
	vigil_client_hit *hits;
	vigil_client_model_reason *reasons;

	size += strlen(txn_id) + 1 + strlen(sr->rules_version) + 1 + strlen(sr->rules_hash) + 1 +
	    strlen(url) + 1;
	for (size_t i = 0; i < sr->n_hits; i++)
		size += strlen(sr->hits[i]->rule) + 1 + strlen(sr->hits[i]->reason) + 1;
	for (size_t i = 0; i < nreasons; i++)
		size += strlen(sr->model->reasons[i]->feature) + 1;
	block = malloc(size);
	if (block == NULL)
		return VIGIL_CLIENT_ENOMEM;
	hits = (vigil_client_hit *) (void *) block;
	reasons = (vigil_client_model_reason *) (void *) (block +
	    sizeof(vigil_client_hit) * sr->n_hits);
	p = block + sizeof(vigil_client_hit) * sr->n_hits +
	    sizeof(vigil_client_model_reason) * nreasons;
#define VC_COPY(dst, s) do { size_t n_ = strlen(s) + 1; memcpy(p, (s), n_); (dst) = p; p += n_; } while (0)
	for (size_t i = 0; i < sr->n_hits; i++) {
		VC_COPY(hits[i].rule, sr->hits[i]->rule);
		VC_COPY(hits[i].reason, sr->hits[i]->reason);
		hits[i].points = sr->hits[i]->points;
		hits[i].shadow = sr->hits[i]->shadow;
	}
	VC_COPY(call->res.txn_id, txn_id);
	VC_COPY(call->res.rules_version, sr->rules_version);
	VC_COPY(call->res.rules_hash, sr->rules_hash);
	VC_COPY(call->res.replica, url);
	for (size_t i = 0; i < nreasons; i++) {
		VC_COPY(reasons[i].feature, sr->model->reasons[i]->feature);
		reasons[i].value = sr->model->reasons[i]->value;
		reasons[i].contribution = sr->model->reasons[i]->contribution;
	}
#undef VC_COPY
	call->res.has_model           = sr->model != NULL;
	call->res.model_score         = sr->model != NULL ? sr->model->score : 0.0;
	call->res.model_reasons       = nreasons > 0 ? reasons : NULL;
	call->res.nmodel_reasons      = nreasons;
	call->res.hits                = hits;
	call->res.nhits               = sr->n_hits;
	call->res.points              = sr->points;
	call->res.score               = sr->score;
	/* a server from before ScoreReply.score (13) sent its score, the
	 * points, in field 2: a 0 score with positive points is only that
	 * (a current server's score is at least the points' clamp before the
	 * first model, and a model's probability is never exactly 0) */
	if (sr->score == 0 && sr->points > 0)
		call->res.score = sr->points > 100 ? 100 : sr->points;
	call->res.decision            = (vigil_client_decision) sr->decision;
	call->res.features_generation = sr->features_generation;
	call->res.latency_us          = sr->latency_us;
	call->res.duplicate           = sr->duplicate;
	call->res.dry_run             = sr->dry_run;
	call->res.late                = sr->late;
	call->res.past_dedupe_horizon = sr->past_dedupe_horizon;
	call->res.block_              = block;
	return VIGIL_CLIENT_OK;
}

/* Decodes a reply body into call->res or call->err. */
void
vc_call_decode(vc_call *call, const uint8_t *body, size_t len)
{
	Vigil__V1__Reply *rep;
	char              detail[200];

	call->arena_used = 0;
	rep = vigil__v1__reply__unpack(&call->alloc, len, body);
	if (rep == NULL) {
		snprintf(detail, sizeof detail, "reply is not a vigil.v1.Reply (%zu bytes)", len);
		vc_call_fail(call, VIGIL_CLIENT_EPROTO, NULL, detail);
		return;
	}
	if (rep->status != VIGIL__V1__STATUS__STATUS_OK) {
		vigil_client_err code;

		switch (rep->status) {
		case VIGIL__V1__STATUS__STATUS_INVALID:     code = VIGIL_CLIENT_SINVALID; break;
		case VIGIL__V1__STATUS__STATUS_MALFORMED:   code = VIGIL_CLIENT_SMALFORMED; break;
		case VIGIL__V1__STATUS__STATUS_TOO_BIG:     code = VIGIL_CLIENT_STOOBIG; break;
		case VIGIL__V1__STATUS__STATUS_UNSUPPORTED: code = VIGIL_CLIENT_SUNSUPPORTED; break;
		case VIGIL__V1__STATUS__STATUS_OVERLOADED:  code = VIGIL_CLIENT_SOVERLOADED; break;
		case VIGIL__V1__STATUS__STATUS_UNAVAILABLE: code = VIGIL_CLIENT_SUNAVAILABLE; break;
		case VIGIL__V1__STATUS__STATUS_INTERNAL:    code = VIGIL_CLIENT_SINTERNAL; break;
		default:                                    code = VIGIL_CLIENT_EPROTO; break;
		}
		if (code == VIGIL_CLIENT_EPROTO) {
			snprintf(detail, sizeof detail, "reply has unknown status %d", (int) rep->status);
			vc_call_fail(call, code, rep->field, detail);
		} else {
			/* straight into info.message, cut there on a character */
			vc_call_fail(call, code, rep->field, rep->message[0] != '\0' ?
			    rep->message : vigil_client_strerror(code));
		}
		goto out;
	}
	if (call->kind == VC_KIND_SCORE) {
		if (rep->kind_case != VIGIL__V1__REPLY__KIND_SCORE || rep->score == NULL) {
			snprintf(detail, sizeof detail, "reply to a score carries no score (kind %d)",
			    (int) rep->kind_case);
			vc_call_fail(call, VIGIL_CLIENT_EPROTO, NULL, detail);
			goto out;
		}
		if (rep->score->txn_id[0] != '\0' && strcmp(rep->score->txn_id, call->txn_id) != 0) {
			snprintf(detail, sizeof detail, "reply is for txn_id \"%.64s\", not \"%s\"",
			    rep->score->txn_id, call->txn_id);
			vc_call_fail(call, VIGIL_CLIENT_EPROTO, NULL, detail);
			goto out;
		}
		if (rep->score->decision < VIGIL__V1__DECISION__ALLOW ||
		    rep->score->decision > VIGIL__V1__DECISION__DECLINE) {
			/* nothing a caller could act on: never hand it out as a decision */
			if (rep->score->decision == VIGIL__V1__DECISION__DECISION_UNSPECIFIED)
				snprintf(detail, sizeof detail, "reply to a score carries no decision");
			else
				snprintf(detail, sizeof detail, "reply has unknown decision %d",
				    (int) rep->score->decision);
			vc_call_fail(call, VIGIL_CLIENT_EPROTO, NULL, detail);
			goto out;
		}
		if (vc_result_build(call, rep->score) != VIGIL_CLIENT_OK) {
			vc_call_fail(call, VIGIL_CLIENT_ENOMEM, NULL, "out of memory decoding the reply");
			goto out;
		}
	} else if (call->kind == VC_KIND_HEALTH) {
		if (rep->kind_case != VIGIL__V1__REPLY__KIND_HEALTH || rep->health == NULL) {
			snprintf(detail, sizeof detail, "reply to a health request carries no health (kind %d)",
			    (int) rep->kind_case);
			vc_call_fail(call, VIGIL_CLIENT_EPROTO, NULL, detail);
			goto out;
		}
		memset(&call->health, 0, sizeof call->health);
		call->health.ready = rep->health->ready;
		snprintf(call->health.server_version, sizeof call->health.server_version, "%s",
		    rep->health->server_version);
		call->health.uptime_s = rep->health->uptime_s;
		snprintf(call->health.rules_version, sizeof call->health.rules_version, "%s",
		    rep->health->rules_version);
		snprintf(call->health.rules_hash, sizeof call->health.rules_hash, "%s",
		    rep->health->rules_hash);
		call->health.features_generation = rep->health->features_generation;
	} else if (rep->kind_case != VIGIL__V1__REPLY__KIND_LABEL) {
		snprintf(detail, sizeof detail, "reply to a label carries no label (kind %d)",
		    (int) rep->kind_case);
		vc_call_fail(call, VIGIL_CLIENT_EPROTO, NULL, detail);
		goto out;
	}
	call->err = VIGIL_CLIENT_OK;
	memset(&call->info, 0, sizeof call->info);
out:
	vigil__v1__reply__free_unpacked(rep, &call->alloc);
	call->arena_used = 0;
}

vigil_client_err
vc_reply_decode_test(const uint8_t *data, size_t len, bool label, const char *txn_id,
    vigil_client_result *ret_result, vigil_client_errinfo *reterr_info)
{
	char             url[] = "fuzz://replica";
	vc_replica       r = { .url = url };
	vigil_client     c = { .reps = &r, .nrep = 1 };
	vc_call         *call = calloc(1, sizeof *call);
	vigil_client_err rv;

	if (call == NULL)
		return VIGIL_CLIENT_ENOMEM;
	call->c    = &c;
	call->rep  = 0;
	call->kind = label ? VC_KIND_LABEL : VC_KIND_SCORE;
	call->alloc.alloc          = vc_arena_alloc;
	call->alloc.free           = vc_arena_free;
	call->alloc.allocator_data = call;
	snprintf(call->txn_id, sizeof call->txn_id, "%s", txn_id);
	vc_call_decode(call, data, len);
	rv = call->err;
	if (rv == VIGIL_CLIENT_OK && !label && ret_result != NULL)
		vigil_client_result_move(ret_result, &call->res);
	else if (rv != VIGIL_CLIENT_OK && reterr_info != NULL)
		*reterr_info = call->info;
	vigil_client_result_fini(&call->res);
	free(call);
	return rv;
}
