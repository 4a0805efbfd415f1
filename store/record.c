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
 * The rebuild's in-place decoder of the same payloads is features/db/lean.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pbwire.h"
#include "slots.h"
#include "archive.h"
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



/* Checks that s (NUL-terminated, from protobuf-c) fits a char[cap]. */
static vigil_err
rec_check_str(const char *s, size_t cap, const char *field, store_diag *reterr)
{
	if (strnlen(s, cap) == cap) {
		store_diag_set(reterr, "%s: %zu bytes, max %zu", field, strlen(s), cap - 1);
		return VIGIL_EPROTO;
	}
	return VIGIL_OK;
}

/* ------------------------------------------------------------------ */
/* Encoding                                                            */

/*
 * store_scored_encode writes ArchivedScore directly from the C struct: the
 * bytes protobuf-c's pack writes for the same message (proto3: zero values
 * left out, fields in number order, nested messages length-prefixed), without
 * its descriptor walk and its size pass per nested message. One pass checks
 * every input and sizes the nested messages, keeping the string lengths; the
 * second writes. tests/store_archive/test_record.c compares the bytes with
 * vigil__v1__archived_score__pack over thousands of generated records.
 */

/* The C strings of a vigil_txn, in field order, with their field numbers. */
#define REC_TXN_NSTR 8

typedef struct rec_sizes {
	size_t txn;                     /* Transaction body */
	size_t loc;                     /* Location body (has_location) */
	size_t str[REC_TXN_NSTR];       /* strlen of txn_id, card_id, ... */
	size_t rv;                      /* strlen of rules_version */
	size_t hit[STORE_MAX_HITS];     /* Hit body */
	size_t rule[STORE_MAX_HITS];    /* strlen of hits[].rule */
	size_t feat[STORE_MAX_FEATS];   /* FeatureValue body */
	size_t name[STORE_MAX_FEATS];   /* strlen of feats[].name */
	size_t fstr[STORE_MAX_FEATS];   /* bytes of feats[].val.str written */
	size_t total;
} rec_sizes;

/* strnlen, and whether s is terminated within its cap bytes. */
static bool
rec_len(const char *s, size_t cap, size_t *ret_len)
{
	*ret_len = strnlen(s, cap);
	return *ret_len < cap;
}

static vigil_err
rec_scored_size(const store_scored *s, rec_sizes *z)
{
	const vigil_txn *t = &s->txn;
	const struct {
		const char *s;
		size_t cap;
		uint32_t field;
	} strs[REC_TXN_NSTR] = {
		{ t->txn_id, sizeof t->txn_id, 1 },
		{ t->card_id, sizeof t->card_id, 3 },
		{ t->merchant_id, sizeof t->merchant_id, 4 },
		{ t->terminal_id, sizeof t->terminal_id, 5 },
		{ t->currency, sizeof t->currency, 7 },
		{ t->country, sizeof t->country, 9 },
		{ t->device_id, sizeof t->device_id, 11 },
		{ t->ip, sizeof t->ip, 12 },
	};
	size_t n, strused = 0;

	if (s->nhits > STORE_MAX_HITS || s->nfeats > STORE_MAX_FEATS)
		return VIGIL_EINVAL;
	n = vigil_pb_num_size(2, (uint64_t)t->event_time_ms) +
	    vigil_pb_num_size(6, (uint64_t)t->amount_minor) + vigil_pb_num_size(8, t->mcc) +
	    vigil_pb_num_size(10, vigil_pb_int32(t->channel));
	for (int i = 0; i < REC_TXN_NSTR; i++) {
		if (!rec_len(strs[i].s, strs[i].cap, &z->str[i]))
			return VIGIL_EINVAL;
		n += vigil_pb_str_size(strs[i].field, z->str[i]);
	}
	z->loc = 0;
	if (t->has_location) {
		z->loc = vigil_pb_double_size(1, t->lat) + vigil_pb_double_size(2, t->lon);
		n += vigil_pb_len_size(13, z->loc);
	}
	z->txn = n;
	if (!rec_len(s->rules_version, sizeof s->rules_version, &z->rv))
		return VIGIL_EINVAL;
	n = vigil_pb_len_size(1, z->txn) + vigil_pb_num_size(2, vigil_pb_int32(s->points)) +
	    vigil_pb_double_size(11, s->score) + vigil_pb_bool_size(12, true) +
	    vigil_pb_num_size(3, vigil_pb_int32((int32_t)s->decision)) +
	    vigil_pb_str_size(5, z->rv) + vigil_pb_num_size(6, s->features_gen) +
	    vigil_pb_num_size(7, (uint64_t)s->scored_at_ms);
	for (uint32_t i = 0; i < s->nhits; i++) {
		const store_hit *h = &s->hits[i];

		if (!rec_len(h->rule, sizeof h->rule, &z->rule[i]))
			return VIGIL_EINVAL;
		z->hit[i] = vigil_pb_str_size(1, z->rule[i]) +
		    vigil_pb_num_size(2, vigil_pb_int32(h->points)) + vigil_pb_bool_size(4, h->shadow);
		n += vigil_pb_len_size(4, z->hit[i]);
	}
	for (uint32_t i = 0; i < s->nfeats; i++) {
		const store_featval *f = &s->feats[i];

		if (!rec_len(f->name, sizeof f->name, &z->name[i]))
			return VIGIL_EINVAL;
		if (f->name_id != 0)
			z->name[i] = 0; /* the id travels instead */
		z->fstr[i] = 0;
		if (f->val.str != NULL && f->val.len > 0) {
			/* Same cap as decoding (strbuf, NUL-terminated), so what we
			 * write can always be read back. */
			if (f->val.len >= sizeof s->strbuf - strused ||
			    memchr(f->val.str, 0, f->val.len) != NULL)
				return VIGIL_EINVAL;
			strused += f->val.len + 1;
			z->fstr[i] = f->val.len;
		}
		z->feat[i] = vigil_pb_str_size(1, z->name[i]) + vigil_pb_double_size(2, f->val.num) +
		    vigil_pb_str_size(3, z->fstr[i]) + vigil_pb_bool_size(4, f->val.present) +
		    vigil_pb_fixed32_size(5, f->name_id);
		n += vigil_pb_len_size(8, z->feat[i]);
	}
	if (s->model_in_len > sizeof s->model_in)
		return VIGIL_EINVAL;
	n += vigil_pb_str_size(9, s->model_in_len) + vigil_pb_num_size(10, s->model_layout);
	z->total = n;
	return VIGIL_OK;
}

static uint8_t *
rec_txn_write(uint8_t *p, const vigil_txn *t, const rec_sizes *z)
{
	p = vigil_pb_len(p, 1, z->txn);
	p = vigil_pb_str(p, 1, t->txn_id, z->str[0]);
	p = vigil_pb_num(p, 2, (uint64_t)t->event_time_ms);
	p = vigil_pb_str(p, 3, t->card_id, z->str[1]);
	p = vigil_pb_str(p, 4, t->merchant_id, z->str[2]);
	p = vigil_pb_str(p, 5, t->terminal_id, z->str[3]);
	p = vigil_pb_num(p, 6, (uint64_t)t->amount_minor);
	p = vigil_pb_str(p, 7, t->currency, z->str[4]);
	p = vigil_pb_num(p, 8, t->mcc);
	p = vigil_pb_str(p, 9, t->country, z->str[5]);
	p = vigil_pb_num(p, 10, vigil_pb_int32(t->channel));
	p = vigil_pb_str(p, 11, t->device_id, z->str[6]);
	p = vigil_pb_str(p, 12, t->ip, z->str[7]);
	if (t->has_location) {
		p = vigil_pb_len(p, 13, z->loc);
		p = vigil_pb_double(p, 1, t->lat);
		p = vigil_pb_double(p, 2, t->lon);
	}
	return p;
}

/* The score of a record: its own, or for one written before the score was
 * 0-100 (no score_present), its points clamped to 0-100, which is what its
 * score was then. */
double
store_scored_score_of(int32_t points, bool present, double score)
{
	if (present)
		return score;
	return points < 0 ? 0 : points > 100 ? 100 : points;
}

vigil_err
store_scored_encode(const store_scored *s, void *buf, size_t cap, size_t *ret_len)
{
	rec_sizes z;
	uint8_t *p = buf;
	vigil_err rv;

	rv = rec_scored_size(s, &z);
	if (rv != VIGIL_OK)
		return rv;
	if (z.total > cap)
		return VIGIL_ETOOBIG;
	p = rec_txn_write(p, &s->txn, &z);
	p = vigil_pb_num(p, 2, vigil_pb_int32(s->points));
	p = vigil_pb_num(p, 3, vigil_pb_int32((int32_t)s->decision));
	for (uint32_t i = 0; i < s->nhits; i++) {
		const store_hit *h = &s->hits[i];

		p = vigil_pb_len(p, 4, z.hit[i]);
		p = vigil_pb_str(p, 1, h->rule, z.rule[i]);
		p = vigil_pb_num(p, 2, vigil_pb_int32(h->points));
		p = vigil_pb_bool(p, 4, h->shadow);
	}
	p = vigil_pb_str(p, 5, s->rules_version, z.rv);
	p = vigil_pb_num(p, 6, s->features_gen);
	p = vigil_pb_num(p, 7, (uint64_t)s->scored_at_ms);
	for (uint32_t i = 0; i < s->nfeats; i++) {
		const store_featval *f = &s->feats[i];

		p = vigil_pb_len(p, 8, z.feat[i]);
		p = vigil_pb_str(p, 1, f->name, z.name[i]);
		p = vigil_pb_double(p, 2, f->val.num);
		p = vigil_pb_str(p, 3, f->val.str, z.fstr[i]);
		p = vigil_pb_bool(p, 4, f->val.present);
		p = vigil_pb_fixed32(p, 5, f->name_id);
	}
	p = vigil_pb_str(p, 9, s->model_in, s->model_in_len);
	p = vigil_pb_num(p, 10, s->model_layout);
	p = vigil_pb_double(p, 11, s->score); /* 0 left out: score_present says it is set */
	p = vigil_pb_bool(p, 12, true);
	*ret_len = (size_t)(p - (uint8_t *)buf);
	return VIGIL_OK;
}

/* The C strings of a label are char arrays; protobuf-c wants char *. */
#define REC_S(x) ((char *)(x))

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
		store_diag_set(reterr, "ArchivedScore.txn.channel: unknown value %d", (int)m->channel);
		return VIGIL_EPROTO;
	}
	return VIGIL_OK;
}

/* The fills copy strings checked to fit (rec_check_str) with strcpy. */
static void
rec_txn_from_msg(const Vigil__V1__Transaction *m, vigil_txn *t)
{
	strcpy(t->txn_id, m->txn_id);
	strcpy(t->card_id, m->card_id);
	strcpy(t->merchant_id, m->merchant_id);
	strcpy(t->terminal_id, m->terminal_id);
	strcpy(t->device_id, m->device_id);
	strcpy(t->ip, m->ip);
	strcpy(t->currency, m->currency);
	strcpy(t->country, m->country);
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
		store_diag_set(reterr, "ArchivedScore.txn: missing");
		return VIGIL_EPROTO;
	}
	rv = rec_txn_check(m->txn, reterr);
	if (rv != VIGIL_OK)
		return rv;
	if ((unsigned)m->decision > VIGIL_DECISION_DECLINE) {
		store_diag_set(reterr, "ArchivedScore.decision: unknown value %d", (int)m->decision);
		return VIGIL_EPROTO;
	}
	if (m->n_hits > STORE_MAX_HITS) {
		store_diag_set(reterr, "ArchivedScore.hits: %zu entries, max %d", m->n_hits, STORE_MAX_HITS);
		return VIGIL_EPROTO;
	}
	for (size_t i = 0; i < m->n_hits; i++) {
		if (strlen(m->hits[i]->rule) < sizeof ((store_hit *)0)->rule)
			continue;
		/* the field name is formatted only on the error path */
		snprintf(field, sizeof field, "ArchivedScore.hits[%zu].rule", i);
		return rec_check_str(m->hits[i]->rule, sizeof ((store_hit *)0)->rule, field, reterr);
	}
	rv = rec_check_str(m->rules_hash, sizeof ((store_scored *)0)->rules_version,
	    "ArchivedScore.rules_hash", reterr);
	if (rv != VIGIL_OK)
		return rv;
	if (m->n_features > STORE_MAX_FEATS) {
		store_diag_set(reterr, "ArchivedScore.features: %zu entries, max %d", m->n_features,
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
		store_diag_set(reterr, "ArchivedScore.features: %zu bytes of string values, max %zu",
		    strused, sizeof ((store_scored *)0)->strbuf);
		return VIGIL_EPROTO;
	}
	if (m->model_input.len > STORE_MODEL_IN_MAX_BYTES) {
		store_diag_set(reterr, "ArchivedScore.model_input: %zu bytes, max %d",
		    m->model_input.len, STORE_MODEL_IN_MAX_BYTES);
		return VIGIL_EPROTO;
	}
	return VIGIL_OK;
}

static void
rec_scored_fill(const Vigil__V1__ArchivedScore *m, store_scored *s)
{
	size_t strused = 0;

	rec_txn_from_msg(m->txn, &s->txn);
	s->points   = m->points;
	s->score    = store_scored_score_of(m->points, m->score_present, m->score);
	s->decision = (vigil_decision)m->decision;
	s->nhits    = (uint32_t)m->n_hits;
	for (size_t i = 0; i < m->n_hits; i++) {
		strcpy(s->hits[i].rule, m->hits[i]->rule);
		s->hits[i].points = m->hits[i]->points;
		s->hits[i].shadow = m->hits[i]->shadow;
	}
	strcpy(s->rules_version, m->rules_hash);
	s->features_gen = m->features_generation;
	s->scored_at_ms = m->scored_at_ms;
	s->nfeats       = (uint32_t)m->n_features;
	for (size_t i = 0; i < m->n_features; i++) {
		const Vigil__V1__FeatureValue *f = m->features[i];
		store_featval *d = &s->feats[i];
		size_t n = strlen(f->str);
		char unk[STORE_UNKNOWN_NAME_LEN];

		d->name_id = f->name_id;
		if (f->name[0] != '\0' || f->name_id == 0)
			strcpy(d->name, f->name);
		else
			snprintf(d->name, sizeof d->name, "%s", store_schema_name_of(f->name_id, unk));
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
	s->model_layout = m->model_layout;
	s->model_in_len = (uint32_t)m->model_input.len;
	if (m->model_input.len > 0)
		memcpy(s->model_in, m->model_input.data, m->model_input.len);
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
		store_diag_set(reterr, "ArchivedScore: %zu bytes are not a valid protobuf message", len);
		return VIGIL_EPROTO;
	}
	rv = rec_scored_check(m, reterr);
	if (rv == VIGIL_OK)
		rec_scored_fill(m, ret);
	/* Everything in the arena goes with the stack frame; only spilled
	 * allocations need protobuf-c's walk to free them. */
	if (arena.heap > 0)
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
		store_diag_set(reterr, "ArchivedLabel: %zu bytes are not a valid protobuf message", len);
		return VIGIL_EPROTO;
	}
	rv = VIGIL_EPROTO;
	if (m->label == NULL)
		store_diag_set(reterr, "ArchivedLabel.label: missing");
	else if ((rv = rec_check_str(m->label->txn_id, sizeof ret->txn_id,
	    "ArchivedLabel.label.txn_id", reterr)) == VIGIL_OK &&
	    (rv = rec_check_str(m->label->card_id, sizeof ret->card_id,
	    "ArchivedLabel.label.card_id", reterr)) == VIGIL_OK &&
	    (rv = rec_check_str(m->label->source, sizeof ret->source,
	    "ArchivedLabel.label.source", reterr)) == VIGIL_OK) {
		strcpy(ret->txn_id, m->label->txn_id);
		strcpy(ret->card_id, m->label->card_id);
		strcpy(ret->source, m->label->source);
		ret->fraud          = m->label->fraud;
		ret->label_time_ms  = m->label->label_time_ms;
		ret->received_at_ms = m->received_at_ms;
	}
	if (arena.heap > 0)
		vigil__v1__archived_label__free_unpacked(m, &alloc);
	return rv;
}
