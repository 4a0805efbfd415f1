/* SPDX-License-Identifier: MIT */
/*
 * store/record.c - archive payloads: store_scored <-> vigil.v1.ArchivedScore
 * and store_label <-> vigil.v1.ArchivedLabel (proto/vigil.proto).
 *
 * Decoding is on the nightly batch's hot path (1M records/s/core), so
 * protobuf-c unpacks into a bump arena on the caller's stack through its
 * allocator hook: no malloc per field, nothing to free unless a message is
 * unusually large (the arena then falls back to malloc). Every string and
 * repeated field is checked against the caps of the C structs before
 * anything is written to the output, which is left untouched on error.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"
#include "vigil.pb-c.h"

#define REC_ARENA_BYTES 32768

typedef struct rec_arena {
	uint8_t *buf;
	size_t   cap, used;
	unsigned heap; /* allocations that did not fit and went to malloc */
} rec_arena;

static void *
rec_arena_alloc(void *data, size_t size)
{
	rec_arena *a = data;
	size_t off = (a->used + 15) & ~(size_t)15;

	if (size <= a->cap && off <= a->cap - size) {
		a->used = off + size;
		return a->buf + off;
	}
	a->heap++;
	return malloc(size);
}

static void
rec_arena_free(void *data, void *p)
{
	rec_arena *a = data;

	if ((uint8_t *)p >= a->buf && (uint8_t *)p < a->buf + a->cap)
		return;
	free(p);
}

static void rec_fail(store_diag *reterr, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
rec_fail(store_diag *reterr, const char *fmt, ...)
{
	va_list ap;

	if (reterr == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(reterr->msg, sizeof reterr->msg, fmt, ap);
	va_end(ap);
}

/* Checks that s (NUL-terminated, from protobuf-c) fits a char[cap]. */
static vigil_err
rec_check_str(const char *s, size_t cap, const char *field, store_diag *reterr)
{
	if (strnlen(s, cap) == cap) {
		rec_fail(reterr, "%s: %zu bytes, max %zu", field, strlen(s), cap - 1);
		return VIGIL_EPROTO;
	}
	return VIGIL_OK;
}

/* src was checked to fit dst (rec_check_str): one pass copies it. */
static void
rec_copy(char *dst, const char *src)
{
	strcpy(dst, src);
}

/* ------------------------------------------------------------------ */
/* Encoding                                                            */

/* The C strings of a vigil_txn are char arrays; protobuf-c wants char *. */
#define REC_S(x) ((char *)(x))

static void
rec_txn_to_msg(const vigil_txn *t, Vigil__V1__Transaction *m, Vigil__V1__Location *loc)
{
	m->txn_id        = REC_S(t->txn_id);
	m->event_time_ms = t->event_time_ms;
	m->card_id       = REC_S(t->card_id);
	m->merchant_id   = REC_S(t->merchant_id);
	m->terminal_id   = REC_S(t->terminal_id);
	m->amount_minor  = t->amount_minor;
	m->currency      = REC_S(t->currency);
	m->mcc           = t->mcc;
	m->country       = REC_S(t->country);
	m->channel       = (Vigil__V1__Channel)t->channel;
	m->device_id     = REC_S(t->device_id);
	m->ip            = REC_S(t->ip);
	if (t->has_location) {
		loc->latitude  = t->lat;
		loc->longitude = t->lon;
		m->location    = loc;
	}
}

/* The C string fields of a vigil_txn must be terminated within their arrays. */
static vigil_err
rec_txn_check_terminated(const vigil_txn *t)
{
	if (memchr(t->txn_id, 0, sizeof t->txn_id) == NULL ||
	    memchr(t->card_id, 0, sizeof t->card_id) == NULL ||
	    memchr(t->merchant_id, 0, sizeof t->merchant_id) == NULL ||
	    memchr(t->terminal_id, 0, sizeof t->terminal_id) == NULL ||
	    memchr(t->device_id, 0, sizeof t->device_id) == NULL ||
	    memchr(t->ip, 0, sizeof t->ip) == NULL ||
	    memchr(t->currency, 0, sizeof t->currency) == NULL ||
	    memchr(t->country, 0, sizeof t->country) == NULL)
		return VIGIL_EINVAL;
	return VIGIL_OK;
}

vigil_err
store_scored_encode(const store_scored *s, void *buf, size_t cap, size_t *ret_len)
{
	Vigil__V1__ArchivedScore  msg = VIGIL__V1__ARCHIVED_SCORE__INIT;
	Vigil__V1__Transaction    txn = VIGIL__V1__TRANSACTION__INIT;
	Vigil__V1__Location       loc = VIGIL__V1__LOCATION__INIT;
	Vigil__V1__Hit            hits[STORE_MAX_HITS];
	Vigil__V1__Hit           *hitp[STORE_MAX_HITS];
	Vigil__V1__FeatureValue   fv[STORE_MAX_FEATS];
	Vigil__V1__FeatureValue  *fvp[STORE_MAX_FEATS];
	char                      strs[sizeof s->strbuf];
	size_t                    strused = 0, need;

	if (s->nhits > STORE_MAX_HITS || s->nfeats > STORE_MAX_FEATS)
		return VIGIL_EINVAL;
	if (rec_txn_check_terminated(&s->txn) != VIGIL_OK ||
	    memchr(s->rules_version, 0, sizeof s->rules_version) == NULL)
		return VIGIL_EINVAL;
	rec_txn_to_msg(&s->txn, &txn, &loc);
	msg.txn      = &txn;
	msg.score    = s->score;
	msg.decision = (Vigil__V1__Decision)s->decision;
	for (uint32_t i = 0; i < s->nhits; i++) {
		if (memchr(s->hits[i].rule, 0, sizeof s->hits[i].rule) == NULL)
			return VIGIL_EINVAL;
		vigil__v1__hit__init(&hits[i]);
		hits[i].rule   = REC_S(s->hits[i].rule);
		hits[i].points = s->hits[i].points;
		hits[i].shadow = s->hits[i].shadow;
		hitp[i] = &hits[i];
	}
	msg.n_hits              = s->nhits;
	msg.hits                = hitp;
	msg.rules_version       = REC_S(s->rules_version);
	msg.features_generation = s->features_gen;
	msg.scored_at_ms        = s->scored_at_ms;
	for (uint32_t i = 0; i < s->nfeats; i++) {
		const store_featval *f = &s->feats[i];

		if (memchr(f->name, 0, sizeof f->name) == NULL)
			return VIGIL_EINVAL;
		vigil__v1__feature_value__init(&fv[i]);
		fv[i].name    = REC_S(f->name);
		fv[i].num     = f->val.num;
		fv[i].present = f->val.present;
		if (f->val.str != NULL && f->val.len > 0) {
			/* Same cap as decoding (strbuf, NUL-terminated), so what we
			 * write can always be read back. */
			if (f->val.len >= sizeof strs - strused ||
			    memchr(f->val.str, 0, f->val.len) != NULL)
				return VIGIL_EINVAL;
			memcpy(strs + strused, f->val.str, f->val.len);
			strs[strused + f->val.len] = '\0';
			fv[i].str = strs + strused;
			strused += f->val.len + 1;
		}
		fvp[i] = &fv[i];
	}
	msg.n_features = s->nfeats;
	msg.features   = fvp;
	need = vigil__v1__archived_score__get_packed_size(&msg);
	if (need > cap)
		return VIGIL_ETOOBIG;
	*ret_len = vigil__v1__archived_score__pack(&msg, buf);
	return VIGIL_OK;
}

vigil_err
store_label_encode(const store_label *l, void *buf, size_t cap, size_t *ret_len)
{
	Vigil__V1__ArchivedLabel msg = VIGIL__V1__ARCHIVED_LABEL__INIT;
	Vigil__V1__Label         lab = VIGIL__V1__LABEL__INIT;
	size_t need;

	if (memchr(l->txn_id, 0, sizeof l->txn_id) == NULL ||
	    memchr(l->card_id, 0, sizeof l->card_id) == NULL ||
	    memchr(l->source, 0, sizeof l->source) == NULL)
		return VIGIL_EINVAL;
	lab.txn_id        = REC_S(l->txn_id);
	lab.fraud         = l->fraud;
	lab.label_time_ms = l->label_time_ms;
	lab.source        = REC_S(l->source);
	lab.card_id       = REC_S(l->card_id);
	msg.label          = &lab;
	msg.received_at_ms = l->received_at_ms;
	need = vigil__v1__archived_label__get_packed_size(&msg);
	if (need > cap)
		return VIGIL_ETOOBIG;
	*ret_len = vigil__v1__archived_label__pack(&msg, buf);
	return VIGIL_OK;
}

/* ------------------------------------------------------------------ */
/* Decoding                                                            */

static vigil_err
rec_txn_check(const Vigil__V1__Transaction *m, store_diag *reterr)
{
	static const struct {
		size_t off, cap;
		const char *field;
	} strs[] = {
		{ offsetof(Vigil__V1__Transaction, txn_id), VIGIL_ID_MAX + 1, "ArchivedScore.txn.txn_id" },
		{ offsetof(Vigil__V1__Transaction, card_id), VIGIL_ID_MAX + 1, "ArchivedScore.txn.card_id" },
		{ offsetof(Vigil__V1__Transaction, merchant_id), VIGIL_ID_MAX + 1, "ArchivedScore.txn.merchant_id" },
		{ offsetof(Vigil__V1__Transaction, terminal_id), VIGIL_ID_MAX + 1, "ArchivedScore.txn.terminal_id" },
		{ offsetof(Vigil__V1__Transaction, device_id), VIGIL_ID_MAX + 1, "ArchivedScore.txn.device_id" },
		{ offsetof(Vigil__V1__Transaction, ip), VIGIL_IP_MAX + 1, "ArchivedScore.txn.ip" },
		{ offsetof(Vigil__V1__Transaction, currency), 4, "ArchivedScore.txn.currency" },
		{ offsetof(Vigil__V1__Transaction, country), 3, "ArchivedScore.txn.country" },
	};
	vigil_err rv;

	for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
		const char *s = *(char *const *)((const char *)m + strs[i].off);
		rv = rec_check_str(s, strs[i].cap, strs[i].field, reterr);
		if (rv != VIGIL_OK)
			return rv;
	}
	if ((unsigned)m->channel >= VIGIL_CHANNEL_COUNT_) {
		rec_fail(reterr, "ArchivedScore.txn.channel: unknown value %d", (int)m->channel);
		return VIGIL_EPROTO;
	}
	return VIGIL_OK;
}

static void
rec_txn_from_msg(const Vigil__V1__Transaction *m, vigil_txn *t)
{
	rec_copy(t->txn_id, m->txn_id);
	rec_copy(t->card_id, m->card_id);
	rec_copy(t->merchant_id, m->merchant_id);
	rec_copy(t->terminal_id, m->terminal_id);
	rec_copy(t->device_id, m->device_id);
	rec_copy(t->ip, m->ip);
	rec_copy(t->currency, m->currency);
	rec_copy(t->country, m->country);
	t->event_time_ms = m->event_time_ms;
	t->amount_minor  = m->amount_minor;
	t->mcc           = m->mcc;
	t->channel       = (uint8_t)m->channel;
	t->has_location  = m->location != NULL;
	t->lat           = m->location != NULL ? m->location->latitude : 0.0;
	t->lon           = m->location != NULL ? m->location->longitude : 0.0;
}

/* Validates every cap of store_scored; writes nothing. */
static vigil_err
rec_scored_check(const Vigil__V1__ArchivedScore *m, store_diag *reterr)
{
	char field[64];
	size_t strused = 0;
	vigil_err rv;

	if (m->txn == NULL) {
		rec_fail(reterr, "ArchivedScore.txn: missing");
		return VIGIL_EPROTO;
	}
	rv = rec_txn_check(m->txn, reterr);
	if (rv != VIGIL_OK)
		return rv;
	if ((unsigned)m->decision > VIGIL_DECISION_DECLINE) {
		rec_fail(reterr, "ArchivedScore.decision: unknown value %d", (int)m->decision);
		return VIGIL_EPROTO;
	}
	if (m->n_hits > STORE_MAX_HITS) {
		rec_fail(reterr, "ArchivedScore.hits: %zu entries, max %d", m->n_hits, STORE_MAX_HITS);
		return VIGIL_EPROTO;
	}
	for (size_t i = 0; i < m->n_hits; i++) {
		if (strlen(m->hits[i]->rule) < sizeof ((store_hit *)0)->rule)
			continue;
		/* the field name is formatted only on the error path */
		snprintf(field, sizeof field, "ArchivedScore.hits[%zu].rule", i);
		return rec_check_str(m->hits[i]->rule, sizeof ((store_hit *)0)->rule, field, reterr);
	}
	rv = rec_check_str(m->rules_version, sizeof ((store_scored *)0)->rules_version,
	    "ArchivedScore.rules_version", reterr);
	if (rv != VIGIL_OK)
		return rv;
	if (m->n_features > STORE_MAX_FEATS) {
		rec_fail(reterr, "ArchivedScore.features: %zu entries, max %d", m->n_features,
		    STORE_MAX_FEATS);
		return VIGIL_EPROTO;
	}
	for (size_t i = 0; i < m->n_features; i++) {
		if (strlen(m->features[i]->name) >= sizeof ((store_featval *)0)->name) {
			snprintf(field, sizeof field, "ArchivedScore.features[%zu].name", i);
			return rec_check_str(m->features[i]->name, sizeof ((store_featval *)0)->name,
			    field, reterr);
		}
		if (m->features[i]->str[0] != '\0')
			strused += strlen(m->features[i]->str) + 1;
	}
	if (strused > sizeof ((store_scored *)0)->strbuf) {
		rec_fail(reterr, "ArchivedScore.features: %zu bytes of string values, max %zu",
		    strused, sizeof ((store_scored *)0)->strbuf);
		return VIGIL_EPROTO;
	}
	return VIGIL_OK;
}

static void
rec_scored_fill(const Vigil__V1__ArchivedScore *m, store_scored *s)
{
	size_t strused = 0;

	rec_txn_from_msg(m->txn, &s->txn);
	s->score    = m->score;
	s->decision = (vigil_decision)m->decision;
	s->nhits    = (uint32_t)m->n_hits;
	for (size_t i = 0; i < m->n_hits; i++) {
		rec_copy(s->hits[i].rule, m->hits[i]->rule);
		s->hits[i].points = m->hits[i]->points;
		s->hits[i].shadow = m->hits[i]->shadow;
	}
	rec_copy(s->rules_version, m->rules_version);
	s->features_gen = m->features_generation;
	s->scored_at_ms = m->scored_at_ms;
	s->nfeats       = (uint32_t)m->n_features;
	for (size_t i = 0; i < m->n_features; i++) {
		const Vigil__V1__FeatureValue *f = m->features[i];
		store_featval *d = &s->feats[i];
		size_t n = strlen(f->str);

		rec_copy(d->name, f->name);
		d->val.num     = f->num;
		d->val.present = f->present;
		d->val.str     = NULL;
		d->val.len     = 0;
		if (n > 0) {
			memcpy(s->strbuf + strused, f->str, n + 1);
			d->val.str = s->strbuf + strused;
			d->val.len = (uint32_t)n;
			strused += n + 1;
		}
	}
}

vigil_err
store_scored_decode(const void *payload, size_t len, store_scored *ret, store_diag *reterr)
{
	_Alignas(16) uint8_t arena_buf[REC_ARENA_BYTES];
	rec_arena arena = { .buf = arena_buf, .cap = sizeof arena_buf };
	ProtobufCAllocator alloc = { rec_arena_alloc, rec_arena_free, &arena };
	Vigil__V1__ArchivedScore *m;
	vigil_err rv;

	m = vigil__v1__archived_score__unpack(&alloc, len, payload);
	if (m == NULL) {
		rec_fail(reterr, "ArchivedScore: %zu bytes are not a valid protobuf message", len);
		rv = VIGIL_EPROTO;
		goto out;
	}
	rv = rec_scored_check(m, reterr);
	if (rv != VIGIL_OK)
		goto out;
	rec_scored_fill(m, ret);
out:
	/* Everything in the arena goes with the stack frame; only spilled
	 * allocations need protobuf-c's walk to free them. */
	if (m != NULL && arena.heap > 0)
		vigil__v1__archived_score__free_unpacked(m, &alloc);
	return rv;
}

vigil_err
store_label_decode(const void *payload, size_t len, store_label *ret, store_diag *reterr)
{
	_Alignas(16) uint8_t arena_buf[4096];
	rec_arena arena = { .buf = arena_buf, .cap = sizeof arena_buf };
	ProtobufCAllocator alloc = { rec_arena_alloc, rec_arena_free, &arena };
	Vigil__V1__ArchivedLabel *m;
	vigil_err rv;

	m = vigil__v1__archived_label__unpack(&alloc, len, payload);
	if (m == NULL) {
		rec_fail(reterr, "ArchivedLabel: %zu bytes are not a valid protobuf message", len);
		rv = VIGIL_EPROTO;
		goto out;
	}
	if (m->label == NULL) {
		rec_fail(reterr, "ArchivedLabel.label: missing");
		rv = VIGIL_EPROTO;
		goto out;
	}
	rv = rec_check_str(m->label->txn_id, sizeof ret->txn_id, "ArchivedLabel.label.txn_id", reterr);
	if (rv != VIGIL_OK)
		goto out;
	rv = rec_check_str(m->label->card_id, sizeof ret->card_id, "ArchivedLabel.label.card_id",
	    reterr);
	if (rv != VIGIL_OK)
		goto out;
	rv = rec_check_str(m->label->source, sizeof ret->source, "ArchivedLabel.label.source", reterr);
	if (rv != VIGIL_OK)
		goto out;
	rec_copy(ret->txn_id, m->label->txn_id);
	rec_copy(ret->card_id, m->label->card_id);
	rec_copy(ret->source, m->label->source);
	ret->fraud          = m->label->fraud;
	ret->label_time_ms  = m->label->label_time_ms;
	ret->received_at_ms = m->received_at_ms;
out:
	if (m != NULL && arena.heap > 0)
		vigil__v1__archived_label__free_unpacked(m, &alloc);
	return rv;
}
