/* SPDX-License-Identifier: MIT */
/*
 * features/db/lean.c - lean decoding of ArchivedScore payloads (lean.h):
 * the nightly rebuild's fast path, a single in-place walk of the wire
 * bytes that must accept and return exactly what store_scored_decode
 * (store/record.c) does. tests/store_archive/test_record.c checks the two
 * agree.
 */
#include <math.h>
#include <string.h>

#include "lean.h"
#include "pbwire.h"
#include "txnwire.h"

/*
 * store_scored_decode_lean walks the wire bytes once, in place. To accept
 * exactly what store_scored_decode (protobuf-c 1.4 underneath) accepts and
 * to return the same values, it follows protobuf-c's reading rules:
 *   - a tag takes at most 5 bytes, a varint at most 10, a length prefix at
 *     most 5 (its value taken modulo 2^32); a tag whose first byte has no
 *     field bits and wire types 3, 4, 6, 7 are errors; unknown fields of
 *     the other types are skipped, field 0 in a longer tag ("80 00") among
 *     them;
 *   - a known field with the wrong wire type is an error, except bool
 *     fields, which take any type and are true when any byte of the field
 *     (length prefix included) has a non-zero low 7 bits;
 *   - int32, uint32 and enum values are the low 32 bits of the varint;
 *   - a singular field seen twice: the last one wins; a message field seen
 *     twice is merged: strings the latter message sets win, scalars come
 *     from the latter message (even unset, as 0), sub-messages merge;
 *   - a string ends at its first NUL byte (protobuf-c hands out C strings).
 * The one departure: a length prefix whose 32-bit value runs past the
 * buffer only after wrapping around is rejected here (protobuf-c reads out
 * of bounds on it). The framing (vigil_pb_next) is common/pbwire.h's.
 */

static bool
lean_bool(const vigil_pb_field *f)
{
	for (size_t i = 0; i < f->rawlen; i++)
		if ((f->raw[i] & 0x7f) != 0)
			return true;
	return false;
}

static inline store_strview
lean_str(const vigil_pb_field *f)
{
	store_strview v;
	size_t n = 0;

	/* Short strings (codes): a loop beats a call to memchr; ids: memchr. */
	if (f->len <= 8) {
		while (n < f->len && f->data[n] != 0)
			n++;
	} else {
		const uint8_t *z = memchr(f->data, 0, f->len);

		n = z != NULL ? (size_t)(z - f->data) : f->len;
	}
	v.p = f->len > 0 ? (const char *)f->data : "";
	v.len = (uint32_t)n;
	return v;
}

/* Messages whose fields are all strings or skipped: Attribute { string key
 * = 1; string value = 2; }. */
static bool
lean_strings_only(const uint8_t *p, size_t len, uint32_t maxnum)
{
	const uint8_t *end = p + len;
	vigil_pb_field f;

	while (p < end) {
		if (!vigil_pb_next(&p, end, &f))
			return false;
		if (f.num >= 1 && f.num <= maxnum && f.wt != VIGIL_PB_LEN)
			return false;
	}
	return true;
}

/* One occurrence of ArchivedScore.txn, with which strings it set
 * (VIGIL_TXN_S_*, common/txnwire.h). */
typedef struct lean_txn {
	store_strview s[VIGIL_TXN_NSTR];
	bool          set[VIGIL_TXN_NSTR];
	int64_t       event_time_ms, amount_minor;
	uint32_t      mcc;
	int32_t       channel;
	bool          has_location;
	double        lat, lon;
} lean_txn;

/* Transaction (proto/vigil.proto), into a zeroed *t. */
static bool
lean_txn_parse(const uint8_t *p, size_t len, lean_txn *t)
{
	const uint8_t *end = p + len;
	vigil_pb_field f;
	int si;

	while (p < end) {
		if (!vigil_pb_next(&p, end, &f))
			return false;
		si = vigil_txn_wire_str_index(f.num);
		if (si >= 0) {
			if (f.wt != VIGIL_PB_LEN)
				return false;
			t->s[si] = lean_str(&f);
			t->set[si] = true;
			continue;
		}
		switch (f.num) {
		case 2: case 6: case 8: case 10:
			if (f.wt != VIGIL_PB_VARINT)
				return false;
			if (f.num == 2)
				t->event_time_ms = (int64_t)f.v;
			else if (f.num == 6)
				t->amount_minor = (int64_t)f.v;
			else if (f.num == 8)
				t->mcc = (uint32_t)f.v;
			else
				t->channel = (int32_t)(uint32_t)f.v;
			break;
		case 13:
			/* A second location merges into the first: its scalars win. */
			if (f.wt != VIGIL_PB_LEN ||
			    !vigil_txn_wire_location(f.data, f.len, &t->lat, &t->lon))
				return false;
			t->has_location = true;
			break;
		case 14:
			if (f.wt != VIGIL_PB_LEN || !lean_strings_only(f.data, f.len, 2))
				return false;
			break;
		default:
			break;
		}
	}
	return true;
}

/* protobuf-c's merge of an earlier occurrence into a later one (latter). */
static void
lean_txn_merge(const lean_txn *earlier, lean_txn *latter)
{
	for (int i = 0; i < VIGIL_TXN_NSTR; i++) {
		if (!latter->set[i] && earlier->set[i]) {
			latter->s[i] = earlier->s[i];
			latter->set[i] = true;
		}
	}
	if (!latter->has_location && earlier->has_location) {
		latter->has_location = true;
		latter->lat = earlier->lat;
		latter->lon = earlier->lon;
	}
}

/* Hit { string rule = 1; int32 points = 2; string reason = 3; bool shadow = 4; } */
static bool
lean_hit(const uint8_t *p, size_t len, uint32_t *ret_rule_len)
{
	const uint8_t *end = p + len;
	vigil_pb_field f;

	*ret_rule_len = 0;
	while (p < end) {
		if (!vigil_pb_next(&p, end, &f))
			return false;
		if ((f.num == 1 || f.num == 3) && f.wt != VIGIL_PB_LEN)
			return false;
		if (f.num == 2 && f.wt != VIGIL_PB_VARINT)
			return false;
		if (f.num == 1)
			*ret_rule_len = lean_str(&f).len;
	}
	return true;
}

/* FeatureValue { string name = 1; double num = 2; string str = 3; bool present = 4;
 * fixed32 name_id = 5; }: a name archived by its id is store_schema_name_of's. */
static bool
lean_feat(const uint8_t *p, size_t len, store_lean_feat *ret)
{
	const uint8_t *end = p + len;
	store_strview str = { "", 0 };
	vigil_pb_field f;
	uint32_t id = 0;

	ret->name.p = "";
	ret->name.len = 0;
	ret->val.num = 0.0;
	ret->val.present = false;
	while (p < end) {
		if (!vigil_pb_next(&p, end, &f))
			return false;
		switch (f.num) {
		case 1: case 3:
			if (f.wt != VIGIL_PB_LEN)
				return false;
			if (f.num == 1)
				ret->name = lean_str(&f);
			else
				str = lean_str(&f);
			break;
		case 2:
			if (f.wt != VIGIL_PB_I64)
				return false;
			memcpy(&ret->val.num, &f.v, 8);
			break;
		case 4:
			ret->val.present = lean_bool(&f);
			break;
		case 5:
			if (f.wt != VIGIL_PB_I32)
				return false;
			id = (uint32_t)f.v;
			break;
		default:
			break;
		}
	}
	if (ret->name.len == 0 && id != 0) {
		ret->name.p = store_schema_name_of(id, ret->unknown);
		ret->name.len = (uint32_t)strlen(ret->name.p);
	}
	ret->val.str = str.len > 0 ? str.p : NULL;
	ret->val.len = str.len;
	return true;
}

static vigil_err
lean_check_len(uint32_t len, size_t cap, const char *field, store_diag *reterr)
{
	if (len >= cap) {
		store_diag_set(reterr, "%s: %u bytes, max %zu", field, len, cap - 1);
		return VIGIL_EPROTO;
	}
	return VIGIL_OK;
}

vigil_err
store_scored_decode_lean(const void *payload, size_t len, store_scored_lean *ret,
    store_diag *reterr)
{
	const uint8_t *p = payload, *end = p + len;
	lean_txn t, occ;
	vigil_pb_field f;
	bool have_txn = false;
	int32_t decision = 0;
	uint32_t rule_len, rv_len = 0, bad_hit_len = 0, bad_feat_len = 0;
	size_t nhits = 0, nfeats = 0, bad_hit = SIZE_MAX, bad_feat = SIZE_MAX, strused = 0;
	size_t model_in_len = 0; /* the last model_input's size (checked last, as decode does) */
	double score = 0;
	bool score_present = false;
	vigil_err rv;

	memset(&t, 0, sizeof t);
	ret->score = 0;
	ret->points = 0;
	ret->features_gen = 0;
	ret->scored_at_ms = 0;
	ret->model_layout = 0;
	ret->model_in.p = "";
	ret->model_in.len = 0;
	while (p < end) {
		if (!vigil_pb_next(&p, end, &f))
			goto malformed;
		switch (f.num) {
		case 1: /* txn */
			if (f.wt != VIGIL_PB_LEN)
				goto malformed;
			memset(&occ, 0, sizeof occ);
			if (!lean_txn_parse(f.data, f.len, &occ))
				goto malformed;
			if (have_txn)
				lean_txn_merge(&t, &occ);
			t = occ;
			have_txn = true;
			break;
		case 2: case 3: case 6: case 7:
			if (f.wt != VIGIL_PB_VARINT)
				goto malformed;
			if (f.num == 2)
				ret->points = (int32_t)(uint32_t)f.v;
			else if (f.num == 3)
				decision = (int32_t)(uint32_t)f.v;
			else if (f.num == 6)
				ret->features_gen = f.v;
			else
				ret->scored_at_ms = (int64_t)f.v;
			break;
		case 4: /* hits */
			if (f.wt != VIGIL_PB_LEN || !lean_hit(f.data, f.len, &rule_len))
				goto malformed;
			if (rule_len >= sizeof ((store_hit *)0)->rule && bad_hit == SIZE_MAX) {
				bad_hit = nhits;
				bad_hit_len = rule_len;
			}
			nhits++;
			break;
		case 5: /* rules_hash */
			if (f.wt != VIGIL_PB_LEN)
				goto malformed;
			rv_len = lean_str(&f).len;
			break;
		case 8: { /* features */
			store_lean_feat tmp, *d = nfeats < STORE_MAX_FEATS ? &ret->feats[nfeats] : &tmp;

			if (f.wt != VIGIL_PB_LEN || !lean_feat(f.data, f.len, d))
				goto malformed;
			if (d->name.len >= sizeof ((store_featval *)0)->name && bad_feat == SIZE_MAX) {
				bad_feat = nfeats;
				bad_feat_len = d->name.len;
			}
			if (d->val.len > 0)
				strused += (size_t)d->val.len + 1;
			nfeats++;
			break;
		}
		case 9: /* model_input: bytes, the last one wins */
			if (f.wt != VIGIL_PB_LEN)
				goto malformed;
			model_in_len = f.len;
			ret->model_in.p = f.len > 0 ? (const char *)f.data : "";
			ret->model_in.len = (uint32_t)f.len;
			break;
		case 10:
			if (f.wt != VIGIL_PB_VARINT)
				goto malformed;
			ret->model_layout = f.v;
			break;
		case 11: /* score */
			if (f.wt != VIGIL_PB_I64)
				goto malformed;
			memcpy(&score, &f.v, sizeof score);
			break;
		case 12: /* score_present: any wire type, as protobuf-c reads a bool */
			score_present = lean_bool(&f);
			break;
		default:
			break;
		}
	}

	/* The checks of rec_scored_check, in its order and with its messages. */
	if (!have_txn) {
		store_diag_set(reterr, "ArchivedScore.txn: missing");
		return VIGIL_EPROTO;
	}
	for (int i = 0; i < VIGIL_TXN_NSTR; i++) {
		const vigil_txn_wire_str *w = &vigil_txn_wire_strs[i];

		if (t.s[i].len >= w->cap) {
			store_diag_set(reterr, "ArchivedScore.txn.%s: %u bytes, max %zu", w->name,
			    t.s[i].len, w->cap - 1);
			return VIGIL_EPROTO;
		}
	}
	if ((unsigned)t.channel >= VIGIL_CHANNEL_COUNT_) {
		store_diag_set(reterr, "ArchivedScore.txn.channel: unknown value %d", (int)t.channel);
		return VIGIL_EPROTO;
	}
	if ((unsigned)decision > VIGIL_DECISION_DECLINE) {
		store_diag_set(reterr, "ArchivedScore.decision: unknown value %d", (int)decision);
		return VIGIL_EPROTO;
	}
	if (nhits > STORE_MAX_HITS) {
		store_diag_set(reterr, "ArchivedScore.hits: %zu entries, max %d", nhits, STORE_MAX_HITS);
		return VIGIL_EPROTO;
	}
	if (bad_hit != SIZE_MAX) {
		store_diag_set(reterr, "ArchivedScore.hits[%zu].rule: %u bytes, max %zu", bad_hit,
		    bad_hit_len, sizeof ((store_hit *)0)->rule - 1);
		return VIGIL_EPROTO;
	}
	rv = lean_check_len(rv_len, sizeof ((store_scored *)0)->rules_version,
	    "ArchivedScore.rules_hash", reterr);
	if (rv != VIGIL_OK)
		return rv;
	if (nfeats > STORE_MAX_FEATS) {
		store_diag_set(reterr, "ArchivedScore.features: %zu entries, max %d", nfeats,
		    STORE_MAX_FEATS);
		return VIGIL_EPROTO;
	}
	if (bad_feat != SIZE_MAX) {
		store_diag_set(reterr, "ArchivedScore.features[%zu].name: %u bytes, max %zu", bad_feat,
		    bad_feat_len, sizeof ((store_featval *)0)->name - 1);
		return VIGIL_EPROTO;
	}
	if (strused > sizeof ((store_scored *)0)->strbuf) {
		store_diag_set(reterr, "ArchivedScore.features: %zu bytes of string values, max %zu",
		    strused, sizeof ((store_scored *)0)->strbuf);
		return VIGIL_EPROTO;
	}
	if (model_in_len > STORE_MODEL_IN_MAX_BYTES) {
		store_diag_set(reterr, "ArchivedScore.model_input: %zu bytes, max %d", model_in_len,
		    STORE_MODEL_IN_MAX_BYTES);
		return VIGIL_EPROTO;
	}

	for (int i = 0; i < VIGIL_TXN_NSTR; i++) {
		if (t.s[i].p == NULL) {
			t.s[i].p = "";
			t.s[i].len = 0;
		}
	}
	ret->score = store_scored_score_of(ret->points, score_present, score);
	ret->txn_id = t.s[VIGIL_TXN_S_TXN_ID];
	ret->card_id = t.s[VIGIL_TXN_S_CARD_ID];
	ret->merchant_id = t.s[VIGIL_TXN_S_MERCHANT_ID];
	ret->terminal_id = t.s[VIGIL_TXN_S_TERMINAL_ID];
	ret->device_id = t.s[VIGIL_TXN_S_DEVICE_ID];
	ret->ip = t.s[VIGIL_TXN_S_IP];
	/* Zero-padded: callers may compare the whole arrays. */
	memset(ret->currency, 0, sizeof ret->currency);
	memcpy(ret->currency, t.s[VIGIL_TXN_S_CURRENCY].p, t.s[VIGIL_TXN_S_CURRENCY].len);
	memset(ret->country, 0, sizeof ret->country);
	memcpy(ret->country, t.s[VIGIL_TXN_S_COUNTRY].p, t.s[VIGIL_TXN_S_COUNTRY].len);
	ret->event_time_ms = t.event_time_ms;
	ret->amount_minor = t.amount_minor;
	ret->mcc = t.mcc;
	ret->channel = (uint8_t)t.channel;
	ret->has_location = t.has_location;
	ret->lat = t.has_location ? t.lat : 0.0;
	ret->lon = t.has_location ? t.lon : 0.0;
	ret->decision = (vigil_decision)decision;
	ret->nfeats = (uint32_t)nfeats;
	return VIGIL_OK;
malformed:
	store_diag_set(reterr, "ArchivedScore: %zu bytes are not a valid protobuf message", len);
	return VIGIL_EPROTO;
}
