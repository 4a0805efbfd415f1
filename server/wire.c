/* SPDX-License-Identifier: MIT */
/*
 * server/wire.c - the first stage of every request: the size cap, protobuf
 * decoding of the vigil.v1.Request envelope, conversion of a wire
 * Transaction or Label to its flat C form with every field checked, and the
 * error reply that names the offending field (docs/protocol.md, "Status
 * codes"). Nothing here touches the store or the rules; it is the part of
 * vigild that sees untrusted bytes, so it is what fuzz_wire.c exercises.
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "pbwire.h"
#include "txnwire.h"
#include "wire.h"

const char *
srv_status_name(Vigil__V1__Status status)
{
	switch (status) {
	case VIGIL__V1__STATUS__STATUS_OK:          return "OK";
	case VIGIL__V1__STATUS__STATUS_INVALID:     return "INVALID";
	case VIGIL__V1__STATUS__STATUS_MALFORMED:   return "MALFORMED";
	case VIGIL__V1__STATUS__STATUS_TOO_BIG:     return "TOO_BIG";
	case VIGIL__V1__STATUS__STATUS_UNSUPPORTED: return "UNSUPPORTED";
	case VIGIL__V1__STATUS__STATUS_OVERLOADED:  return "OVERLOADED";
	case VIGIL__V1__STATUS__STATUS_UNAVAILABLE: return "UNAVAILABLE";
	case VIGIL__V1__STATUS__STATUS_INTERNAL:    return "INTERNAL";
	default:                                    return "UNKNOWN";
	}
}

void
srv_wire_err_set(srv_wire_err *err, Vigil__V1__Status status, const char *field,
    const char *fmt, ...)
{
	va_list ap;

	_Static_assert(SRV_WIRE_MSG_MAX <= sizeof err->info.msg, "reply message cap");
	err->status = status;
	vigil_errinfo_clear(&err->info);
	snprintf(err->info.field, sizeof err->info.field, "%s", field != NULL ? field : "");
	va_start(ap, fmt);
	vsnprintf(err->info.msg, SRV_WIRE_MSG_MAX, fmt, ap);
	va_end(ap);
	vigil_utf8_line(err->info.msg);
}

vigil_err
srv_wire_decode(const void *buf, size_t len, size_t max_bytes,
    Vigil__V1__Request **ret_req, srv_wire_err *reterr)
{
	return srv_wire_decode_with(buf, len, max_bytes, NULL, ret_req, reterr);
}

/*
 * Whether a string field of the message d encoded in p[0..len) holds a NUL
 * byte: 1, and its path goes to field ("txn.txn_id": the names below the
 * envelope's kind); 0 if none does; -1 if the bytes cannot be walked.
 * protobuf-c gives strings as C strings, which would end at the NUL and
 * silently become another value. Only called on bytes protobuf-c decoded,
 * whose framing vigil_pb_next follows, so -1 means the two disagree: the
 * caller refuses the request rather than pass bytes it could not check.
 */
static int
wire_nul_scan(const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t len, int depth,
    char *field, size_t fieldlen)
{
	const uint8_t *end = p + len;
	vigil_pb_field w;

	while (p < end) {
		const ProtobufCFieldDescriptor *f;
		int r;

		if (!vigil_pb_next(&p, end, &w))
			return -1;
		if (w.data == NULL)
			continue;
		f = protobuf_c_message_descriptor_get_field(d, w.num);
		if (f != NULL && f->type == PROTOBUF_C_TYPE_STRING && memchr(w.data, 0, w.len) != NULL) {
			snprintf(field, fieldlen, "%s", f->name);
			return 1;
		}
		if (f == NULL || f->type != PROTOBUF_C_TYPE_MESSAGE || depth >= 8)
			continue;
		if ((r = wire_nul_scan(f->descriptor, w.data, w.len, depth + 1, field, fieldlen)) != 0) {
			/* Prefix the parent's name, except the envelope's kind. */
			size_t nl = strlen(f->name), fl = strlen(field);

			if (r > 0 && depth > 0 && nl + 1 + fl < fieldlen) {
				memmove(field + nl + 1, field, fl + 1);
				memcpy(field, f->name, nl);
				field[nl] = '.';
			}
			return r;
		}
	}
	return 0;
}

vigil_err
srv_wire_decode_with(const void *buf, size_t len, size_t max_bytes,
    ProtobufCAllocator *alloc, Vigil__V1__Request **ret_req, srv_wire_err *reterr)
{
	Vigil__V1__Request *req;
	char field[sizeof reterr->info.field];
	int nul;

	if (len > max_bytes) {
		srv_wire_err_set(reterr, VIGIL__V1__STATUS__STATUS_TOO_BIG, "",
		    "message of %zu bytes is over the %zu-byte limit", len, max_bytes);
		return VIGIL_ETOOBIG;
	}
	/* protobuf-c's unpack reads only buf[0..len) and allocates at most a
	 * small multiple of len, which the cap above bounds. */
	req = vigil__v1__request__unpack(alloc, len, buf);
	if (req == NULL) {
		srv_wire_err_set(reterr, VIGIL__V1__STATUS__STATUS_MALFORMED, "",
		    "%zu bytes are not a vigil.v1.Request protobuf message", len);
		return VIGIL_EPROTO;
	}
	switch (req->kind_case) {
	case VIGIL__V1__REQUEST__KIND_SCORE:
	case VIGIL__V1__REQUEST__KIND_LABEL:
	case VIGIL__V1__REQUEST__KIND_HEALTH:
	case VIGIL__V1__REQUEST__KIND_RULES_INFO:
		break;
	default:
		vigil__v1__request__free_unpacked(req, alloc);
		srv_wire_err_set(reterr, VIGIL__V1__STATUS__STATUS_UNSUPPORTED, "",
		    "empty request envelope or unknown request kind "
		    "(expected one of score, label, health, rules_info)");
		return VIGIL_EPROTO;
	}
	/* Most requests have no zero byte at all: one memchr, no scan. */
	nul = memchr(buf, 0, len) != NULL ?
	    wire_nul_scan(&vigil__v1__request__descriptor, buf, len, 0, field, sizeof field) : 0;
	if (nul > 0) {
		vigil__v1__request__free_unpacked(req, alloc);
		srv_wire_err_set(reterr, VIGIL__V1__STATUS__STATUS_INVALID, field,
		    "%s contains a NUL byte", field);
		return VIGIL_EINVAL;
	}
	if (nul < 0) {
		vigil__v1__request__free_unpacked(req, alloc);
		srv_wire_err_set(reterr, VIGIL__V1__STATUS__STATUS_MALFORMED, "",
		    "%zu bytes decode as a vigil.v1.Request but their strings cannot be "
		    "checked for NUL bytes", len);
		return VIGIL_EPROTO;
	}
	*ret_req = req;
	return VIGIL_OK;
}

/* Copies a wire string into a fixed C buffer, refusing (not truncating) one
 * that does not fit so that the id the client sent is the id we archive. */
static vigil_err
wire_copy(char *dst, size_t cap, const char *src, const char *field, srv_wire_err *err)
{
	size_t n = src != NULL ? strlen(src) : 0;

	if (n >= cap) {
		srv_wire_err_set(err, VIGIL__V1__STATUS__STATUS_INVALID, field,
		    "%s is %zu bytes long, the limit is %zu", field, n, cap - 1);
		return VIGIL_EINVAL;
	}
	memcpy(dst, n > 0 ? src : "", n);
	dst[n] = '\0';
	return VIGIL_OK;
}

vigil_err
srv_wire_txn(const Vigil__V1__Transaction *in, vigil_txn *ret_txn, srv_wire_err *reterr)
{
	vigil_txn t;
	vigil_err rv;
	vigil_errinfo ei;

	if (in == NULL) {
		srv_wire_err_set(reterr, VIGIL__V1__STATUS__STATUS_INVALID, "txn",
		    "txn is required in a score request");
		return VIGIL_EINVAL;
	}
	memset(&t, 0, sizeof t);

#define COPY(name)                                                              \
	if ((rv = wire_copy(t.name, sizeof t.name, in->name, "txn." #name,       \
	    reterr)) != VIGIL_OK)                                               \
		return rv;
	COPY(txn_id)
	COPY(card_id)
	COPY(merchant_id)
	COPY(terminal_id)
	COPY(device_id)
	COPY(ip)
	COPY(currency)
	COPY(country)
#undef COPY

	t.event_time_ms = in->event_time_ms;
	t.amount_minor = in->amount_minor;
	t.mcc = in->mcc;
	/* proto3 keeps unknown enum numbers; C's uint8_t would not. */
	if ((int)in->channel < 0 || (int)in->channel >= VIGIL_CHANNEL_COUNT_) {
		srv_wire_err_set(reterr, VIGIL__V1__STATUS__STATUS_INVALID, "txn.channel",
		    "channel %d is not a known channel (0-%d)", (int)in->channel,
		    VIGIL_CHANNEL_COUNT_ - 1);
		return VIGIL_EINVAL;
	}
	t.channel = (uint8_t)in->channel;
	if (in->location != NULL) { /* range and finiteness: vigil_txn_validate, below */
		t.has_location = true;
		t.lat = in->location->latitude;
		t.lon = in->location->longitude;
	}
	rv = vigil_txn_attrs_count_check(in->n_attributes, &ei);
	for (size_t i = 0; rv == VIGIL_OK && i < in->n_attributes; i++) {
		const Vigil__V1__Attribute *a = in->attributes[i];
		const char *k = a->key != NULL ? a->key : "", *v = a->value != NULL ? a->value : "";

		rv = vigil_txn_attr_check(k, strlen(k), v, strlen(v), &ei);
	}
	if (rv == VIGIL_OK)
		rv = vigil_txn_validate(&t, &ei);
	if (rv != VIGIL_OK) {
		char field[sizeof reterr->info.field];

		/* validate names wire fields ("location.latitude") below the txn */
		snprintf(field, sizeof field, "txn.%.40s", ei.field);
		srv_wire_err_set(reterr, VIGIL__V1__STATUS__STATUS_INVALID, field, "%s", ei.msg);
		return VIGIL_EINVAL;
	}
	*ret_txn = t;
	return VIGIL_OK;
}

/* A string field into its vigil_txn member (common/txnwire.h): false (the
 * protobuf-c path then decides) if it does not fit or holds a NUL, which
 * that path refuses. */
static inline bool
lean_str(vigil_txn *t, int si, const vigil_pb_field *f)
{
	const vigil_txn_wire_str *w = &vigil_txn_wire_strs[si];
	char *dst = (char *)t + w->off;

	if (f->len >= w->cap || memchr(f->data, 0, f->len) != NULL)
		return false;
	memcpy(dst, f->data, f->len);
	dst[f->len] = '\0';
	return true;
}

static bool
lean_txn(const uint8_t *p, const uint8_t *end, vigil_txn *t)
{
	uint32_t seen = 0;
	vigil_pb_field f;
	vigil_errinfo ei;
	int si;

	memset(t, 0, sizeof *t);
	while (p < end) {
		if (!vigil_pb_next(&p, end, &f) || f.num == 0 || f.num > 13 ||
		    (seen & (1u << f.num)) != 0)
			return false;
		seen |= 1u << f.num;
		if ((si = vigil_txn_wire_str_index(f.num)) >= 0) {
			if (f.wt != VIGIL_PB_LEN || !lean_str(t, si, &f))
				return false;
		} else if (f.num == 13) { /* vigil_txn_validate refuses non-finite coordinates */
			if (f.wt != VIGIL_PB_LEN ||
			    !vigil_txn_wire_location(f.data, f.len, &t->lat, &t->lon))
				return false;
			t->has_location = true;
		} else if (f.wt != VIGIL_PB_VARINT) {
			return false;
		} else if (f.num == 2) {
			t->event_time_ms = (int64_t)f.v;
		} else if (f.num == 6) {
			t->amount_minor = (int64_t)f.v;
		} else if (f.num == 8) { /* protobuf-c keeps the low 32 bits: only values that fit */
			if (f.v > UINT32_MAX)
				return false;
			t->mcc = (uint32_t)f.v;
		} else { /* 10, the channel: range-checked before it is narrowed */
			if (f.v >= VIGIL_CHANNEL_COUNT_)
				return false;
			t->channel = (uint8_t)f.v;
		}
	}
	return vigil_txn_validate(t, &ei) == VIGIL_OK;
}

bool
srv_wire_score_lean(const void *buf, size_t len, size_t max_bytes, vigil_txn *ret_txn,
    bool *ret_dry_run)
{
	const uint8_t *p = buf, *end = p + len;
	bool txn = false, dry = false;
	vigil_pb_field f;

	/* The envelope: field 1 (score) alone. */
	if (len == 0 || len > max_bytes || !vigil_pb_next(&p, end, &f) || f.num != 1 ||
	    f.wt != VIGIL_PB_LEN || p != end)
		return false;
	p = f.data;
	end = p + f.len;
	while (p < end) { /* ScoreRequest: txn (1), dry_run (2), each at most once */
		if (!vigil_pb_next(&p, end, &f))
			return false;
		if (f.num == 1 && f.wt == VIGIL_PB_LEN && !txn) {
			if (!lean_txn(f.data, f.data + f.len, ret_txn))
				return false;
			txn = true;
		} else if (f.num == 2 && f.wt == VIGIL_PB_VARINT && f.rawlen == 1 && !dry) {
			/* one byte: protobuf-c reads any non-zero bit as true */
			*ret_dry_run = f.v != 0;
			dry = true;
		} else {
			return false;
		}
	}
	if (!dry)
		*ret_dry_run = false;
	return txn;
}

/* "1.5 d", "3.2 h", "12.0 min", "45.1 s": how far, for a person reading the reply. */
static void
wire_duration(int64_t ms, char *buf, size_t len)
{
	if (ms >= VIGIL_MS_PER_DAY)
		snprintf(buf, len, "%.1f d", (double)ms / (double)VIGIL_MS_PER_DAY);
	else if (ms >= 3600000)
		snprintf(buf, len, "%.1f h", (double)ms / 3600000.0);
	else if (ms >= 60000)
		snprintf(buf, len, "%.1f min", (double)ms / 60000.0);
	else
		snprintf(buf, len, "%.1f s", (double)ms / 1000.0);
}

vigil_err
srv_wire_obs_window(int64_t event_time_ms, int64_t stored_ms, uint64_t max_future_ms,
    uint64_t slack_ms, srv_wire_err *reterr)
{
	uint64_t off;
	char human[32];

	if (max_future_ms == 0 || event_time_ms <= stored_ms)
		return VIGIL_OK;
	/* Exact in unsigned arithmetic for any event_time_ms > stored_ms. */
	off = (uint64_t)event_time_ms - (uint64_t)stored_ms;
	if (off <= max_future_ms || off - max_future_ms <= slack_ms)
		return VIGIL_OK;
	wire_duration(off > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)off, human, sizeof human);
	srv_wire_err_set(reterr, VIGIL__V1__STATUS__STATUS_INVALID, "event_time_ms",
	    "event_time_ms %lld is %llu ms (%s) ahead of when the stream stored it; the limit is "
	    "%llu ms (max_future_skew_ms) and %llu ms for the clocks", (long long)event_time_ms,
	    (unsigned long long)off, human, (unsigned long long)max_future_ms,
	    (unsigned long long)slack_ms);
	return VIGIL_EINVAL;
}

vigil_err
srv_wire_txn_window(const vigil_txn *txn, int64_t now_ms, uint64_t max_future_ms,
    uint64_t max_past_ms, srv_wire_err *reterr)
{
	uint64_t off;
	char human[32];

	if (txn->event_time_ms > now_ms) {
		/* Exact in unsigned arithmetic for any event_time_ms > now_ms. */
		off = (uint64_t)txn->event_time_ms - (uint64_t)now_ms;
		if (max_future_ms == 0 || off <= max_future_ms)
			return VIGIL_OK;
		wire_duration(off > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)off, human,
		    sizeof human);
		srv_wire_err_set(reterr, VIGIL__V1__STATUS__STATUS_INVALID, "txn.event_time_ms",
		    "event_time_ms %lld is %llu ms (%s) ahead of the server clock; the limit is "
		    "%llu ms (max_future_skew_ms)", (long long)txn->event_time_ms,
		    (unsigned long long)off, human, (unsigned long long)max_future_ms);
		return VIGIL_EINVAL;
	}
	off = (uint64_t)now_ms - (uint64_t)txn->event_time_ms;
	if (max_past_ms == 0 || off <= max_past_ms)
		return VIGIL_OK;
	wire_duration(off > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)off, human, sizeof human);
	srv_wire_err_set(reterr, VIGIL__V1__STATUS__STATUS_INVALID, "txn.event_time_ms",
	    "event_time_ms %lld is %llu ms (%s) behind the server clock; the limit is "
	    "%llu ms (max_past_skew_ms)", (long long)txn->event_time_ms,
	    (unsigned long long)off, human, (unsigned long long)max_past_ms);
	return VIGIL_EINVAL;
}


/* Same charset as ids in vigil_txn_validate: printable ASCII, no space. */
static bool
wire_id_ok(const char *s)
{
	for (; *s != '\0'; s++)
		if (*s <= ' ' || *s > '~' || *s == '"' || *s == ',' || *s == '\\')
			return false;
	return true;
}

vigil_err
srv_wire_label(const Vigil__V1__Label *in, int64_t now_ms, store_label *ret_label,
    srv_wire_err *reterr)
{
	store_label l;
	vigil_err rv;

	if (in == NULL) {
		srv_wire_err_set(reterr, VIGIL__V1__STATUS__STATUS_INVALID, "label",
		    "label is required in a label request");
		return VIGIL_EINVAL;
	}
	memset(&l, 0, sizeof l);
	if ((rv = wire_copy(l.txn_id, sizeof l.txn_id, in->txn_id, "label.txn_id", reterr)) != VIGIL_OK)
		return rv;
	if ((rv = wire_copy(l.card_id, sizeof l.card_id, in->card_id, "label.card_id", reterr)) != VIGIL_OK)
		return rv;
	if ((rv = wire_copy(l.source, sizeof l.source, in->source, "label.source", reterr)) != VIGIL_OK)
		return rv;
	if (l.txn_id[0] == '\0') {
		srv_wire_err_set(reterr, VIGIL__V1__STATUS__STATUS_INVALID, "label.txn_id",
		    "label.txn_id is required");
		return VIGIL_EINVAL;
	}
	if (!wire_id_ok(l.txn_id)) {
		srv_wire_err_set(reterr, VIGIL__V1__STATUS__STATUS_INVALID, "label.txn_id",
		    "label.txn_id must be printable ASCII without spaces, quotes, commas or backslashes");
		return VIGIL_EINVAL;
	}
	if (!wire_id_ok(l.card_id)) {
		srv_wire_err_set(reterr, VIGIL__V1__STATUS__STATUS_INVALID, "label.card_id",
		    "label.card_id must be printable ASCII without spaces, quotes, commas or backslashes");
		return VIGIL_EINVAL;
	}
	if (!wire_id_ok(l.source)) {
		srv_wire_err_set(reterr, VIGIL__V1__STATUS__STATUS_INVALID, "label.source",
		    "label.source must be printable ASCII without spaces (\"chargeback\")");
		return VIGIL_EINVAL;
	}
	l.fraud = in->fraud != 0;
	l.label_time_ms = in->label_time_ms != 0 ? in->label_time_ms : now_ms;
	/* Same plausible range as event times (vigil.h). */
	if (l.label_time_ms < VIGIL_TIME_MIN_MS || l.label_time_ms >= VIGIL_TIME_MAX_MS) {
		srv_wire_err_set(reterr, VIGIL__V1__STATUS__STATUS_INVALID, "label.label_time_ms",
		    "label_time_ms %lld is outside [2000-01-01, 2100-01-01)",
		    (long long)l.label_time_ms);
		return VIGIL_EINVAL;
	}
	/* A verdict cannot be known before it is made: a label time ahead of
	 * the clock (a wrong unit, a typo'd year) would never be used by a
	 * rebuild and is refused (a day of slack for clocks and time zones). */
	if (l.label_time_ms > now_ms + VIGIL_MS_PER_DAY) {
		srv_wire_err_set(reterr, VIGIL__V1__STATUS__STATUS_INVALID, "label.label_time_ms",
		    "label_time_ms %lld is in the future (more than a day ahead of the server "
		    "clock): a label is known when it is sent", (long long)l.label_time_ms);
		return VIGIL_EINVAL;
	}
	l.received_at_ms = now_ms;
	*ret_label = l;
	return VIGIL_OK;
}

void
srv_wire_error_reply(const srv_wire_err *err, Vigil__V1__Reply *ret_reply)
{
	vigil__v1__reply__init(ret_reply);
	ret_reply->status = err->status;
	ret_reply->message = (char *)err->info.msg;
	ret_reply->field = (char *)err->info.field;
}

/* ============================ reply encoding ============================ */

static size_t
wire_hit_size(const Vigil__V1__Hit *h)
{
	return vigil_pb_cstr_size(1, h->rule) + vigil_pb_num_size(2, vigil_pb_int32(h->points)) +
	    vigil_pb_cstr_size(3, h->reason) + vigil_pb_bool_size(4, h->shadow);
}

static size_t
wire_reason_size(const Vigil__V1__ModelReason *mr)
{
	return vigil_pb_cstr_size(1, mr->feature) + vigil_pb_double_size(2, mr->value) +
	    vigil_pb_double_size(3, mr->contribution);
}

static size_t
wire_model_size(const Vigil__V1__ModelOutcome *m)
{
	size_t n = vigil_pb_double_size(1, m->score);

	for (size_t i = 0; i < m->n_reasons; i++)
		n += vigil_pb_len_size(2, wire_reason_size(m->reasons[i]));
	return n;
}

static size_t
wire_score_size(const Vigil__V1__ScoreReply *sr)
{
	size_t n = vigil_pb_cstr_size(1, sr->txn_id) +
	    vigil_pb_num_size(2, vigil_pb_int32(sr->points)) +
	    vigil_pb_num_size(3, vigil_pb_int32((int32_t)sr->decision));

	for (size_t i = 0; i < sr->n_hits; i++)
		n += vigil_pb_len_size(4, wire_hit_size(sr->hits[i]));
	return n + vigil_pb_cstr_size(5, sr->rules_version) +
	    vigil_pb_num_size(6, sr->features_generation) + vigil_pb_num_size(7, sr->latency_us) +
	    vigil_pb_bool_size(8, sr->duplicate) + vigil_pb_bool_size(9, sr->dry_run) +
	    (sr->model != NULL ? vigil_pb_len_size(10, wire_model_size(sr->model)) : 0) +
	    vigil_pb_bool_size(11, sr->late) + vigil_pb_bool_size(12, sr->past_dedupe_horizon) +
	    vigil_pb_cstr_size(13, sr->rules_hash) + vigil_pb_double_size(14, sr->score);
}

/* The kinds encoded here; anything else (or unknown fields) is protobuf-c's. */
static bool
wire_reply_direct(const Vigil__V1__Reply *r)
{
	if (r->base.n_unknown_fields != 0)
		return false;
	if (r->kind_case == VIGIL__V1__REPLY__KIND__NOT_SET)
		return true;
	if (r->kind_case != VIGIL__V1__REPLY__KIND_SCORE || r->score == NULL ||
	    r->score->base.n_unknown_fields != 0)
		return false;
	for (size_t i = 0; i < r->score->n_hits; i++)
		if (r->score->hits[i]->base.n_unknown_fields != 0)
			return false;
	if (r->score->model != NULL) {
		if (r->score->model->base.n_unknown_fields != 0)
			return false;
		for (size_t i = 0; i < r->score->model->n_reasons; i++)
			if (r->score->model->reasons[i]->base.n_unknown_fields != 0)
				return false;
	}
	return true;
}

static size_t
wire_reply_size(const Vigil__V1__Reply *r)
{
	size_t n = vigil_pb_num_size(1, vigil_pb_int32((int32_t)r->status)) +
	    vigil_pb_cstr_size(2, r->message) + vigil_pb_cstr_size(3, r->field);

	if (r->kind_case == VIGIL__V1__REPLY__KIND_SCORE)
		n += vigil_pb_len_size(4, wire_score_size(r->score));
	return n;
}

size_t
srv_wire_reply_size(const Vigil__V1__Reply *r)
{
	if (!wire_reply_direct(r))
		return vigil__v1__reply__get_packed_size(r);
	return wire_reply_size(r);
}

size_t
srv_wire_reply_pack(const Vigil__V1__Reply *r, uint8_t *out)
{
	const Vigil__V1__ScoreReply *sr = r->score;
	uint8_t *p = out;

	if (!wire_reply_direct(r))
		return vigil__v1__reply__pack(r, out);
	p = vigil_pb_num(p, 1, vigil_pb_int32((int32_t)r->status));
	p = vigil_pb_cstr(p, 2, r->message);
	p = vigil_pb_cstr(p, 3, r->field);
	if (r->kind_case != VIGIL__V1__REPLY__KIND_SCORE)
		return (size_t)(p - out);
	p = vigil_pb_len(p, 4, wire_score_size(sr));
	p = vigil_pb_cstr(p, 1, sr->txn_id);
	p = vigil_pb_num(p, 2, vigil_pb_int32(sr->points));
	p = vigil_pb_num(p, 3, vigil_pb_int32((int32_t)sr->decision));
	for (size_t i = 0; i < sr->n_hits; i++) {
		const Vigil__V1__Hit *h = sr->hits[i];

		p = vigil_pb_len(p, 4, wire_hit_size(h));
		p = vigil_pb_cstr(p, 1, h->rule);
		p = vigil_pb_num(p, 2, vigil_pb_int32(h->points));
		p = vigil_pb_cstr(p, 3, h->reason);
		p = vigil_pb_bool(p, 4, h->shadow);
	}
	p = vigil_pb_cstr(p, 5, sr->rules_version);
	p = vigil_pb_num(p, 6, sr->features_generation);
	p = vigil_pb_num(p, 7, sr->latency_us);
	p = vigil_pb_bool(p, 8, sr->duplicate);
	p = vigil_pb_bool(p, 9, sr->dry_run);
	if (sr->model != NULL) {
		const Vigil__V1__ModelOutcome *m = sr->model;

		/* a present message is written even when empty, as protobuf-c does */
		p = vigil_pb_len(p, 10, wire_model_size(m));
		p = vigil_pb_double(p, 1, m->score);
		for (size_t i = 0; i < m->n_reasons; i++) {
			const Vigil__V1__ModelReason *mr = m->reasons[i];

			p = vigil_pb_len(p, 2, wire_reason_size(mr));
			p = vigil_pb_cstr(p, 1, mr->feature);
			p = vigil_pb_double(p, 2, mr->value);
			p = vigil_pb_double(p, 3, mr->contribution);
		}
	}
	p = vigil_pb_bool(p, 11, sr->late);
	p = vigil_pb_bool(p, 12, sr->past_dedupe_horizon);
	p = vigil_pb_cstr(p, 13, sr->rules_hash);
	p = vigil_pb_double(p, 14, sr->score);
	return (size_t)(p - out);
}
