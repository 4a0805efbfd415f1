/* SPDX-License-Identifier: MIT */
/*
 * tests/store_archive/test_record.c - archive payload codec: store_scored and
 * store_label round trips, caps enforced on both sides, malformed payloads
 * rejected with VIGIL_EPROTO and the offending field named; the lean decoder
 * (store_scored_decode_lean) agreeing with the full one on every payload,
 * valid, odd (repeated messages, odd wire types) or mutated.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "pbwire.h"
#include "slots.h"
#include "archive.h"
#include "fill.h"
#include "lean.h"
#include "vigil.pb-c.h"

static void
fill_scored(store_scored *s)
{
	memset(s, 0, sizeof *s);
	strcpy(s->txn.txn_id, "t-000001");
	strcpy(s->txn.card_id, "card-42");
	strcpy(s->txn.merchant_id, "m-7");
	strcpy(s->txn.terminal_id, "term-1");
	strcpy(s->txn.device_id, "dev-9");
	strcpy(s->txn.ip, "2001:db8::1");
	strcpy(s->txn.currency, "EUR");
	strcpy(s->txn.country, "FR");
	s->txn.event_time_ms = 1763700000123LL;
	s->txn.amount_minor = 12345;
	s->txn.mcc = 5411;
	s->txn.channel = VIGIL_CHANNEL_ECOM;
	s->txn.has_location = true;
	s->txn.lat = 48.8566;
	s->txn.lon = 2.3522;
	s->score = 70;
	s->decision = VIGIL_DECISION_REVIEW;
	s->nhits = 2;
	strcpy(s->hits[0].rule, "velocity_1h");
	s->hits[0].points = 50;
	strcpy(s->hits[1].rule, "new_country");
	s->hits[1].points = 20;
	s->hits[1].shadow = true;
	strcpy(s->rules_version, "sha256:abcdef");
	s->features_gen = 17;
	s->scored_at_ms = 1763700000200LL;
	s->nfeats = 3;
	strcpy(s->feats[0].name, "vel.card.count_1h");
	s->feats[0].val = vigil_value_num(4);
	strcpy(s->feats[1].name, "country");
	s->feats[1].val = vigil_value_str("FRx", 2);
	strcpy(s->feats[2].name, "card.count_7d");
	s->feats[2].val = vigil_value_missing();
}

static void
test_scored_round_trip(void **state)
{
	static store_scored in, out;
	uint8_t buf[4096];
	size_t len;
	store_diag d;

	(void)state;
	fill_scored(&in);
	assert_int_equal(store_scored_encode(&in, buf, sizeof buf, &len), VIGIL_OK);
	memset(&out, 0xA5, sizeof out);
	assert_int_equal(store_scored_decode(buf, len, &out, &d), VIGIL_OK);
	assert_memory_equal(&in.txn.txn_id, &out.txn.txn_id, strlen(in.txn.txn_id) + 1);
	assert_string_equal(out.txn.card_id, "card-42");
	assert_string_equal(out.txn.merchant_id, "m-7");
	assert_string_equal(out.txn.terminal_id, "term-1");
	assert_string_equal(out.txn.device_id, "dev-9");
	assert_string_equal(out.txn.ip, "2001:db8::1");
	assert_string_equal(out.txn.currency, "EUR");
	assert_string_equal(out.txn.country, "FR");
	assert_int_equal(out.txn.event_time_ms, in.txn.event_time_ms);
	assert_int_equal(out.txn.amount_minor, 12345);
	assert_int_equal(out.txn.mcc, 5411);
	assert_int_equal(out.txn.channel, VIGIL_CHANNEL_ECOM);
	assert_true(out.txn.has_location);
	assert_true(out.txn.lat == 48.8566 && out.txn.lon == 2.3522);
	assert_int_equal(out.score, 70);
	assert_int_equal(out.decision, VIGIL_DECISION_REVIEW);
	assert_int_equal(out.nhits, 2);
	assert_string_equal(out.hits[0].rule, "velocity_1h");
	assert_int_equal(out.hits[0].points, 50);
	assert_false(out.hits[0].shadow);
	assert_string_equal(out.hits[1].rule, "new_country");
	assert_true(out.hits[1].shadow);
	assert_string_equal(out.rules_version, "sha256:abcdef");
	assert_int_equal(out.features_gen, 17);
	assert_int_equal(out.scored_at_ms, in.scored_at_ms);
	assert_int_equal(out.nfeats, 3);
	assert_string_equal(out.feats[0].name, "vel.card.count_1h");
	assert_true(out.feats[0].val.present && out.feats[0].val.num == 4.0);
	assert_string_equal(out.feats[1].name, "country");
	assert_true(out.feats[1].val.present);
	assert_int_equal(out.feats[1].val.len, 2);
	assert_memory_equal(out.feats[1].val.str, "FR", 2);
	assert_true(out.feats[1].val.str >= out.strbuf &&
	    out.feats[1].val.str < out.strbuf + sizeof out.strbuf);
	assert_false(out.feats[2].val.present);
}

static void
test_scored_without_location(void **state)
{
	static store_scored in, out;
	uint8_t buf[4096];
	size_t len;

	(void)state;
	fill_scored(&in);
	in.txn.has_location = false;
	in.nhits = 0;
	in.nfeats = 0;
	assert_int_equal(store_scored_encode(&in, buf, sizeof buf, &len), VIGIL_OK);
	assert_int_equal(store_scored_decode(buf, len, &out, NULL), VIGIL_OK);
	assert_false(out.txn.has_location);
	assert_int_equal(out.nhits, 0);
	assert_int_equal(out.nfeats, 0);
}

static void
test_scored_encode_caps(void **state)
{
	static store_scored in;
	uint8_t buf[4096];
	size_t len = 12345;

	(void)state;
	fill_scored(&in);
	assert_int_equal(store_scored_encode(&in, buf, 20, &len), VIGIL_ETOOBIG);
	assert_int_equal(len, 12345);
	in.nhits = STORE_MAX_HITS + 1;
	assert_int_equal(store_scored_encode(&in, buf, sizeof buf, &len), VIGIL_EINVAL);
	fill_scored(&in);
	memset(in.txn.card_id, 'x', sizeof in.txn.card_id); /* unterminated */
	assert_int_equal(store_scored_encode(&in, buf, sizeof buf, &len), VIGIL_EINVAL);
}

static void
test_label_round_trip(void **state)
{
	store_label in = { .fraud = true, .label_time_ms = 1763000000000LL,
		.received_at_ms = 1763000000500LL }, out;
	uint8_t buf[512];
	size_t len;

	(void)state;
	strcpy(in.txn_id, "t-9");
	strcpy(in.card_id, "card-1");
	strcpy(in.source, "chargeback");
	assert_int_equal(store_label_encode(&in, buf, sizeof buf, &len), VIGIL_OK);
	memset(&out, 0x5A, sizeof out);
	assert_int_equal(store_label_decode(buf, len, &out, NULL), VIGIL_OK);
	assert_string_equal(out.txn_id, "t-9");
	assert_string_equal(out.card_id, "card-1");
	assert_string_equal(out.source, "chargeback");
	assert_true(out.fraud);
	assert_int_equal(out.label_time_ms, in.label_time_ms);
	assert_int_equal(out.received_at_ms, in.received_at_ms);
	assert_int_equal(store_label_encode(&in, buf, 5, &len), VIGIL_ETOOBIG);
}

/* Packs an ArchivedScore built by the test, bypassing our encoder's caps. */
static size_t
pack_raw(Vigil__V1__ArchivedScore *m, uint8_t *buf, size_t cap)
{
	assert_true(vigil__v1__archived_score__get_packed_size(m) <= cap);
	return vigil__v1__archived_score__pack(m, buf);
}

static void
test_scored_decode_rejects(void **state)
{
	static store_scored out;
	static uint8_t buf[65536];
	Vigil__V1__ArchivedScore m = VIGIL__V1__ARCHIVED_SCORE__INIT;
	Vigil__V1__Transaction t = VIGIL__V1__TRANSACTION__INIT;
	static Vigil__V1__Hit hits[STORE_MAX_HITS + 1];
	static Vigil__V1__Hit *hitp[STORE_MAX_HITS + 1];
	char longid[100];
	store_diag d;
	size_t len;

	(void)state;
	/* not protobuf at all */
	memset(buf, 0xFF, 16);
	assert_int_equal(store_scored_decode(buf, 16, &out, &d), VIGIL_EPROTO);
	assert_string_equal(d.msg, "ArchivedScore: 16 bytes are not a valid protobuf message");
	/* no transaction */
	len = pack_raw(&m, buf, sizeof buf);
	assert_int_equal(store_scored_decode(buf, len, &out, &d), VIGIL_EPROTO);
	assert_string_equal(d.msg, "ArchivedScore.txn: missing");
	/* an id over its cap */
	memset(longid, 'a', sizeof longid - 1);
	longid[sizeof longid - 1] = '\0';
	m.txn = &t;
	t.card_id = longid;
	len = pack_raw(&m, buf, sizeof buf);
	assert_int_equal(store_scored_decode(buf, len, &out, &d), VIGIL_EPROTO);
	assert_string_equal(d.msg, "ArchivedScore.txn.card_id: 99 bytes, max 64");
	t.card_id = (char *)"c";
	/* unknown decision */
	m.decision = 9;
	len = pack_raw(&m, buf, sizeof buf);
	assert_int_equal(store_scored_decode(buf, len, &out, &d), VIGIL_EPROTO);
	assert_string_equal(d.msg, "ArchivedScore.decision: unknown value 9");
	m.decision = 1;
	/* too many hits */
	for (size_t i = 0; i < STORE_MAX_HITS + 1; i++) {
		vigil__v1__hit__init(&hits[i]);
		hits[i].rule = (char *)"r";
		hitp[i] = &hits[i];
	}
	m.n_hits = STORE_MAX_HITS + 1;
	m.hits = hitp;
	len = pack_raw(&m, buf, sizeof buf);
	assert_int_equal(store_scored_decode(buf, len, &out, &d), VIGIL_EPROTO);
	assert_string_equal(d.msg, "ArchivedScore.hits: 65 entries, max 64");
	/* a hit's rule name over its cap */
	m.n_hits = 3;
	hits[2].rule = longid;
	len = pack_raw(&m, buf, sizeof buf);
	assert_int_equal(store_scored_decode(buf, len, &out, &d), VIGIL_EPROTO);
	assert_string_equal(d.msg, "ArchivedScore.hits[2].rule: 99 bytes, max 63");
	/* unknown channel */
	m.n_hits = 0;
	t.channel = 12;
	len = pack_raw(&m, buf, sizeof buf);
	assert_int_equal(store_scored_decode(buf, len, &out, &d), VIGIL_EPROTO);
	assert_string_equal(d.msg, "ArchivedScore.txn.channel: unknown value 12");
	/* a truncated valid message */
	t.channel = 1;
	len = pack_raw(&m, buf, sizeof buf);
	assert_int_equal(store_scored_decode(buf, len - 1, &out, &d), VIGIL_EPROTO);
}

/* A record written before the score was 0-100 (no score_present, its score
 * in field 2) reads with its points as the score, clamped to 0-100; a
 * current one with its own score, 0 included; both decoders agree. */
static void
test_scored_old_record_score(void **state)
{
	static store_scored out;
	static store_scored_lean lean;
	static uint8_t buf[4096];
	Vigil__V1__ArchivedScore m = VIGIL__V1__ARCHIVED_SCORE__INIT;
	Vigil__V1__Transaction t = VIGIL__V1__TRANSACTION__INIT;
	static const struct {
		int32_t points;
		bool    present;
		double  score, want;
	} cases[] = {
		{ 45, false, 0, 45 },     /* old: the points */
		{ 130, false, 0, 100 },   /* old: clamped */
		{ -10, false, 0, 0 },
		{ 45, true, 12.5, 12.5 }, /* current: its score, whatever the points */
		{ 45, true, 0, 0 },       /* current, 0: not taken for an old one */
	};
	size_t len;

	(void)state;
	t.txn_id = (char *)"t-old";
	m.txn = &t;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		m.points = cases[i].points;
		m.score = cases[i].score;
		m.score_present = cases[i].present;
		len = vigil__v1__archived_score__pack(&m, buf);
		assert_int_equal(store_scored_decode(buf, len, &out, NULL), VIGIL_OK);
		assert_int_equal(out.points, cases[i].points);
		assert_true(out.score == cases[i].want);
		assert_int_equal(store_scored_decode_lean(buf, len, &lean, NULL), VIGIL_OK);
		assert_true(lean.score == cases[i].want);
		assert_int_equal(lean.points, cases[i].points);
	}
}

static void
test_scored_decode_string_budget(void **state)
{
	static store_scored out;
	static uint8_t buf[65536];
	Vigil__V1__ArchivedScore m = VIGIL__V1__ARCHIVED_SCORE__INIT;
	Vigil__V1__Transaction t = VIGIL__V1__TRANSACTION__INIT;
	Vigil__V1__FeatureValue fv[STORE_MAX_FEATS];
	Vigil__V1__FeatureValue *fvp[STORE_MAX_FEATS];
	char big[200];
	store_diag d;
	size_t len;

	(void)state;
	memset(big, 's', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	m.txn = &t;
	for (size_t i = 0; i < 6; i++) {
		vigil__v1__feature_value__init(&fv[i]);
		fv[i].name = (char *)"f";
		fv[i].str = big;
		fv[i].present = 1;
		fvp[i] = &fv[i];
	}
	m.features = fvp;
	m.n_features = 5; /* 5 * 200 = 1000 bytes with terminators: fits 1024 */
	len = pack_raw(&m, buf, sizeof buf);
	assert_int_equal(store_scored_decode(buf, len, &out, &d), VIGIL_OK);
	assert_int_equal(out.feats[4].val.len, 199);
	m.n_features = 6;
	len = pack_raw(&m, buf, sizeof buf);
	assert_int_equal(store_scored_decode(buf, len, &out, &d), VIGIL_EPROTO);
	assert_string_equal(d.msg,
	    "ArchivedScore.features: 1200 bytes of string values, max 1024");
}

static void
test_scored_decode_large_message_spills(void **state)
{
	/* A message whose unpacked form exceeds the stack arena (many
	 * attributes, which are ignored) still decodes and frees cleanly. */
	static store_scored out;
	static uint8_t buf[1 << 20];
	static Vigil__V1__Attribute attrs[2000];
	static Vigil__V1__Attribute *attrp[2000];
	Vigil__V1__ArchivedScore m = VIGIL__V1__ARCHIVED_SCORE__INIT;
	Vigil__V1__Transaction t = VIGIL__V1__TRANSACTION__INIT;
	size_t len;

	(void)state;
	for (size_t i = 0; i < 2000; i++) {
		vigil__v1__attribute__init(&attrs[i]);
		attrs[i].key = (char *)"some-attribute-key";
		attrs[i].value = (char *)"some attribute value that takes space";
		attrp[i] = &attrs[i];
	}
	t.n_attributes = 2000;
	t.attributes = attrp;
	t.txn_id = (char *)"t-big";
	m.txn = &t;
	len = pack_raw(&m, buf, sizeof buf);
	assert_int_equal(store_scored_decode(buf, len, &out, NULL), VIGIL_OK);
	assert_string_equal(out.txn.txn_id, "t-big");
}

static void
test_label_decode_rejects(void **state)
{
	Vigil__V1__ArchivedLabel m = VIGIL__V1__ARCHIVED_LABEL__INIT;
	Vigil__V1__Label l = VIGIL__V1__LABEL__INIT;
	store_label out;
	uint8_t buf[1024];
	store_diag d;
	size_t len;

	(void)state;
	len = vigil__v1__archived_label__pack(&m, buf);
	assert_int_equal(store_label_decode(buf, len, &out, &d), VIGIL_EPROTO);
	assert_string_equal(d.msg, "ArchivedLabel.label: missing");
	m.label = &l;
	l.source = (char *)"a-source-name-that-is-way-too-long-for-the-field";
	len = vigil__v1__archived_label__pack(&m, buf);
	assert_int_equal(store_label_decode(buf, len, &out, &d), VIGIL_EPROTO);
	assert_string_equal(d.msg, "ArchivedLabel.label.source: 48 bytes, max 31");
	assert_int_equal(store_label_decode("\x0a\xff", 2, &out, &d), VIGIL_EPROTO);
}


/* ---- Lean decoding: must agree with store_scored_decode ---- */

static void
assert_view_eq(store_strview v, const char *want)
{
	assert_int_equal(v.len, strlen(want));
	assert_memory_equal(v.p, want, v.len);
}

static void
assert_value_eq(const vigil_value *a, const vigil_value *b)
{
	assert_int_equal(a->present, b->present);
	assert_memory_equal(&a->num, &b->num, sizeof a->num);
	assert_int_equal(a->len, b->len);
	assert_int_equal(a->str == NULL, b->str == NULL);
	if (a->str != NULL)
		assert_memory_equal(a->str, b->str, a->len);
}

/* Decodes buf both ways: same verdict, and the same values when accepted.
 * Returns the verdict. */
static vigil_err
lean_agrees(const void *buf, size_t len)
{
	static store_scored full;
	static store_scored_lean lean;
	vigil_value ff[16], lf[16];
	store_diag d1, d2;
	vigil_err r1, r2;

	r1 = store_scored_decode(buf, len, &full, &d1);
	r2 = store_scored_decode_lean(buf, len, &lean, &d2);
	if (r1 != r2) {
		/* Name the payload, so a disagreement can be replayed. */
		print_message("full %d (%s), lean %d (%s) on %zu bytes:", r1, d1.msg, r2, d2.msg,
		    len);
		for (size_t i = 0; i < len; i++)
			print_message(" %02x", ((const uint8_t *)buf)[i]);
		print_message("\n");
	}
	assert_int_equal(r1, r2);
	if (r1 != VIGIL_OK) {
		assert_int_equal(r2, VIGIL_EPROTO);
		return r1;
	}
	assert_view_eq(lean.txn_id, full.txn.txn_id);
	assert_view_eq(lean.card_id, full.txn.card_id);
	assert_view_eq(lean.merchant_id, full.txn.merchant_id);
	assert_view_eq(lean.terminal_id, full.txn.terminal_id);
	assert_view_eq(lean.device_id, full.txn.device_id);
	assert_view_eq(lean.ip, full.txn.ip);
	assert_string_equal(lean.currency, full.txn.currency);
	assert_string_equal(lean.country, full.txn.country);
	assert_true(lean.event_time_ms == full.txn.event_time_ms);
	assert_true(lean.amount_minor == full.txn.amount_minor);
	assert_int_equal(lean.mcc, full.txn.mcc);
	assert_int_equal(lean.channel, full.txn.channel);
	assert_int_equal(lean.has_location, full.txn.has_location);
	assert_memory_equal(&lean.lat, &full.txn.lat, sizeof lean.lat);
	assert_memory_equal(&lean.lon, &full.txn.lon, sizeof lean.lon);
	assert_memory_equal(&lean.score, &full.score, sizeof lean.score);
	assert_int_equal(lean.points, full.points);
	assert_int_equal(lean.decision, full.decision);
	assert_true(lean.features_gen == full.features_gen);
	assert_true(lean.scored_at_ms == full.scored_at_ms);
	assert_int_equal(lean.nfeats, full.nfeats);
	for (uint32_t i = 0; i < full.nfeats; i++) {
		assert_view_eq(lean.feats[i].name, full.feats[i].name);
		assert_value_eq(&lean.feats[i].val, &full.feats[i].val);
	}
	store_features_from_txn(&full.txn, ff, 16);
	/* the transaction's fields, and nothing written past them */
	for (int i = 0; i < 16; i++)
		lf[i] = vigil_value_num(-1);
	store_lean_features_from_txn(&lean, lf, 16);
	for (int i = 0; i < STORE_LEAN_TXN_SLOTS; i++)
		assert_value_eq(&lf[i], &ff[i]);
	for (int i = STORE_LEAN_TXN_SLOTS; i < 16; i++)
		assert_true(lf[i].present && lf[i].num == -1);
	return r1;
}

/* Every slot after the transaction's own is missing, whatever the vector
 * held before; a short vector gets the prefix and nothing past its end. */
static void
test_features_from_txn_rest_missing(void **state)
{
	static store_scored s;
	vigil_value f[STORE_SLOT_COUNT_ + 5], full[STORE_SLOT_COUNT_ + 5];
	const vigil_value miss = vigil_value_missing();
	uint32_t n = STORE_SLOT_COUNT_ + 4;

	(void)state;
	fill_scored(&s);
	memset(f, 0xa5, sizeof f);
	store_features_from_txn(&s.txn, f, n);
	assert_true(f[STORE_SLOT_AMOUNT].present);
	assert_true(f[STORE_SLOT_EVENT_TIME].present);
	assert_memory_equal(f[STORE_SLOT_CURRENCY].str, "EUR", 3);
	for (uint32_t i = STORE_SLOT_EVENT_TIME + 1; i < n; i++)
		if (i != STORE_SLOT_HOUR) /* request-derived, filled too */
			assert_value_eq(&f[i], &miss);
	assert_true(f[STORE_SLOT_HOUR].present);
	assert_int_equal(((const unsigned char *)&f[n])[0], 0xa5);
	memcpy(full, f, sizeof full);
	for (uint32_t k = 0; k <= STORE_SLOT_EVENT_TIME + 2; k++) {
		memset(f, 0xa5, sizeof f);
		store_features_from_txn(&s.txn, f, k);
		for (uint32_t i = 0; i < k; i++)
			assert_value_eq(&f[i], &full[i]);
		assert_int_equal(((const unsigned char *)&f[k])[0], 0xa5);
	}
}

/* Every schema feature has a distinct, non-zero name id that finds its
 * slot again; a record archives the ids in place of the names, and both
 * decoders give the names back (an id the schema lacks as "#" + hex). */
static void
test_feature_name_ids(void **state)
{
	static store_scored in, out, plain;
	static store_scored_lean lean;
	static uint8_t buf[4096], pbuf[4096];
	uint32_t n = store_schema_nfields(), slot, unknown = 0x12345678;
	size_t len = 0, plen = 0;
	char want[16];

	(void)state;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t id = store_schema_name_id(i);

		assert_int_not_equal(id, 0);
		for (uint32_t j = 0; j < i; j++)
			assert_int_not_equal(id, store_schema_name_id(j));
		assert_int_equal(store_schema_find_id(id, &slot), VIGIL_OK);
		assert_int_equal(slot, i);
	}
	assert_int_equal(store_schema_name_id(n), 0);
	assert_int_equal(store_schema_find_id(0, &slot), VIGIL_ENOTFOUND);
	while (store_schema_find_id(unknown, &slot) == VIGIL_OK)
		unknown++;

	fill_scored(&plain);
	assert_int_equal(store_scored_encode(&plain, pbuf, sizeof pbuf, &plen), VIGIL_OK);
	fill_scored(&in);
	for (uint32_t i = 0; i < 2; i++) {
		assert_int_equal(store_schema_find(in.feats[i].name, &slot), VIGIL_OK);
		in.feats[i].name_id = store_schema_name_id(slot);
	}
	in.feats[2].name_id = unknown;
	assert_int_equal(store_scored_encode(&in, buf, sizeof buf, &len), VIGIL_OK);
	/* 5 bytes an id in place of 2 + the name's */
	assert_int_equal(len, plen - (2 + strlen("vel.card.count_1h")) - (2 + strlen("country")) -
	    (2 + strlen("card.count_7d")) + 3 * 5);
	assert_null(memmem(buf, len, "vel.card.count_1h", strlen("vel.card.count_1h")));

	snprintf(want, sizeof want, "#%08x", unknown);
	assert_int_equal(store_scored_decode(buf, len, &out, NULL), VIGIL_OK);
	assert_int_equal(out.nfeats, 3);
	assert_string_equal(out.feats[0].name, "vel.card.count_1h");
	assert_string_equal(out.feats[1].name, "country");
	assert_string_equal(out.feats[2].name, want);
	for (uint32_t i = 0; i < 3; i++)
		assert_int_equal(out.feats[i].name_id, in.feats[i].name_id);
	assert_true(out.feats[0].val.present && out.feats[0].val.num == 4.0);
	assert_int_equal(store_scored_decode_lean(buf, len, &lean, NULL), VIGIL_OK);
	assert_view_eq(lean.feats[0].name, "vel.card.count_1h");
	assert_view_eq(lean.feats[1].name, "country");
	assert_view_eq(lean.feats[2].name, want);
	assert_int_equal(lean_agrees(buf, len), VIGIL_OK);
	/* a record written with names still reads with them, and no ids */
	assert_int_equal(store_scored_decode(pbuf, plen, &out, NULL), VIGIL_OK);
	assert_string_equal(out.feats[0].name, "vel.card.count_1h");
	assert_int_equal(out.feats[0].name_id, 0);
}

static void
test_lean_round_trip(void **state)
{
	static store_scored s;
	static store_scored_lean lean;
	uint8_t buf[4096];
	store_diag d;
	size_t len;

	(void)state;
	fill_scored(&s);
	assert_int_equal(store_scored_encode(&s, buf, sizeof buf, &len), VIGIL_OK);
	assert_int_equal(lean_agrees(buf, len), VIGIL_OK);
	assert_int_equal(store_scored_decode_lean(buf, len, &lean, &d), VIGIL_OK);
	assert_view_eq(lean.card_id, "card-42");
	assert_string_equal(lean.currency, "EUR");
	assert_int_equal(lean.nfeats, 3);
	assert_view_eq(lean.feats[1].name, "country");
	assert_int_equal(lean.feats[1].val.len, 2);
	assert_memory_equal(lean.feats[1].val.str, "FR", 2);
	assert_null(lean.feats[2].val.str);
	assert_false(lean.feats[2].val.present);
	/* without location, hits or features */
	s.txn.has_location = false;
	s.nhits = 0;
	s.nfeats = 0;
	s.txn.terminal_id[0] = '\0';
	assert_int_equal(store_scored_encode(&s, buf, sizeof buf, &len), VIGIL_OK);
	assert_int_equal(lean_agrees(buf, len), VIGIL_OK);
	assert_int_equal(store_scored_decode_lean(buf, len, &lean, &d), VIGIL_OK);
	assert_int_equal(lean.terminal_id.len, 0);
	assert_non_null(lean.terminal_id.p);
}

/* ---- The direct encoder against protobuf-c's pack ---- */

/* The protobuf-c encoder store_scored_encode replaced, kept as the
 * reference: same checks, same return values, bytes by
 * vigil__v1__archived_score__pack. */
#define REF_S(x) ((char *)(x))

static vigil_err
ref_scored_encode(const store_scored *s, void *buf, size_t cap, size_t *ret_len)
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
	const vigil_txn          *t = &s->txn;

	if (s->nhits > STORE_MAX_HITS || s->nfeats > STORE_MAX_FEATS)
		return VIGIL_EINVAL;
	if (memchr(t->txn_id, 0, sizeof t->txn_id) == NULL ||
	    memchr(t->card_id, 0, sizeof t->card_id) == NULL ||
	    memchr(t->merchant_id, 0, sizeof t->merchant_id) == NULL ||
	    memchr(t->terminal_id, 0, sizeof t->terminal_id) == NULL ||
	    memchr(t->device_id, 0, sizeof t->device_id) == NULL ||
	    memchr(t->ip, 0, sizeof t->ip) == NULL ||
	    memchr(t->currency, 0, sizeof t->currency) == NULL ||
	    memchr(t->country, 0, sizeof t->country) == NULL ||
	    memchr(s->rules_version, 0, sizeof s->rules_version) == NULL)
		return VIGIL_EINVAL;
	txn.txn_id        = REF_S(t->txn_id);
	txn.event_time_ms = t->event_time_ms;
	txn.card_id       = REF_S(t->card_id);
	txn.merchant_id   = REF_S(t->merchant_id);
	txn.terminal_id   = REF_S(t->terminal_id);
	txn.amount_minor  = t->amount_minor;
	txn.currency      = REF_S(t->currency);
	txn.mcc           = t->mcc;
	txn.country       = REF_S(t->country);
	txn.channel       = (Vigil__V1__Channel)t->channel;
	txn.device_id     = REF_S(t->device_id);
	txn.ip            = REF_S(t->ip);
	if (t->has_location) {
		loc.latitude  = t->lat;
		loc.longitude = t->lon;
		txn.location  = &loc;
	}
	msg.txn      = &txn;
	msg.points   = s->points;
	msg.score    = s->score;
	msg.score_present = true;
	msg.decision = (Vigil__V1__Decision)s->decision;
	for (uint32_t i = 0; i < s->nhits; i++) {
		if (memchr(s->hits[i].rule, 0, sizeof s->hits[i].rule) == NULL)
			return VIGIL_EINVAL;
		vigil__v1__hit__init(&hits[i]);
		hits[i].rule   = REF_S(s->hits[i].rule);
		hits[i].points = s->hits[i].points;
		hits[i].shadow = s->hits[i].shadow;
		hitp[i] = &hits[i];
	}
	msg.n_hits              = s->nhits;
	msg.hits                = hitp;
	msg.rules_hash          = REF_S(s->rules_version);
	msg.features_generation = s->features_gen;
	msg.scored_at_ms        = s->scored_at_ms;
	for (uint32_t i = 0; i < s->nfeats; i++) {
		const store_featval *f = &s->feats[i];

		if (memchr(f->name, 0, sizeof f->name) == NULL)
			return VIGIL_EINVAL;
		vigil__v1__feature_value__init(&fv[i]);
		fv[i].name    = f->name_id != 0 ? (char *)"" : REF_S(f->name);
		fv[i].name_id = f->name_id;
		fv[i].num     = f->val.num;
		fv[i].present = f->val.present;
		if (f->val.str != NULL && f->val.len > 0) {
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

static uint64_t gen_rng = 0x9e3779b97f4a7c15ull;

static uint64_t
gen_next(void)
{
	gen_rng ^= gen_rng << 13;
	gen_rng ^= gen_rng >> 7;
	gen_rng ^= gen_rng << 17;
	return gen_rng;
}

static uint64_t
gen_below(uint64_t n)
{
	return gen_next() % n;
}

/* A string in a char[cap]: every length from empty to full, printable bytes;
 * one time in 400 unterminated. */
static void
gen_str(char *dst, size_t cap)
{
	size_t n;

	if (gen_below(400) == 0) {
		memset(dst, 'u', cap);
		return;
	}
	switch (gen_below(4)) {
	case 0:  n = 0; break;
	case 1:  n = cap - 1; break;
	default: n = (size_t)gen_below(cap); break;
	}
	for (size_t i = 0; i < n; i++)
		dst[i] = (char)(0x21 + gen_below(94));
	memset(dst + n, 0, cap - n);
}

/* Integers around every varint boundary, both signs, and the extremes. */
static uint64_t
gen_int(void)
{
	switch (gen_below(6)) {
	case 0:  return 0;
	case 1:  return gen_below(2) ? UINT64_MAX : (uint64_t)INT64_MIN;
	case 2:  return (uint64_t)1 << gen_below(64);
	case 3:  return ((uint64_t)1 << gen_below(64)) - 1;
	case 4:  return (uint64_t)-(int64_t)gen_below(1000);
	default: return gen_next() >> gen_below(64);
	}
}

static double
gen_double(void)
{
	static const double odd[] = { 0.0, -0.0, 1.0, -1.5, 1e300, -1e-310, 48.8566 };
	uint64_t u;
	double d;

	switch (gen_below(5)) {
	case 0:  return odd[gen_below(sizeof odd / sizeof odd[0])];
	case 1:  return gen_below(2) ? (double)INFINITY : -(double)INFINITY;
	case 2:  return gen_below(2) ? (double)NAN : -(double)NAN;
	case 3:  return (double)(int64_t)gen_int();
	default:
		u = gen_next();
		memcpy(&d, &u, sizeof d);
		return d;
	}
}

/* A record with every field drawn; mostly valid, sometimes over a cap. */
static void
gen_scored(store_scored *s, char *strpool, size_t poolcap)
{
	vigil_txn *t = &s->txn;
	size_t pool = 0;

	memset(s, 0, sizeof *s);
	gen_str(t->txn_id, sizeof t->txn_id);
	gen_str(t->card_id, sizeof t->card_id);
	gen_str(t->merchant_id, sizeof t->merchant_id);
	gen_str(t->terminal_id, sizeof t->terminal_id);
	gen_str(t->device_id, sizeof t->device_id);
	gen_str(t->ip, sizeof t->ip);
	gen_str(t->currency, sizeof t->currency);
	gen_str(t->country, sizeof t->country);
	t->event_time_ms = (int64_t)gen_int();
	t->amount_minor = (int64_t)gen_int();
	t->mcc = (uint32_t)gen_int();
	t->channel = (uint8_t)gen_below(VIGIL_CHANNEL_COUNT_);
	t->has_location = gen_below(3) != 0;
	t->lat = gen_double();
	t->lon = gen_double();
	s->points = (int32_t)gen_int();
	s->score = gen_below(5) == 0 ? 0.0 : (double)gen_below(1000001) / 10000.0;
	s->decision = (vigil_decision)gen_below(VIGIL_DECISION_DECLINE + 1);
	s->nhits = (uint32_t)(gen_below(8) == 0 ? STORE_MAX_HITS : gen_below(STORE_MAX_HITS + 1));
	if (gen_below(200) == 0)
		s->nhits = STORE_MAX_HITS + 1;
	for (uint32_t i = 0; i < s->nhits && i < STORE_MAX_HITS; i++) {
		gen_str(s->hits[i].rule, sizeof s->hits[i].rule);
		s->hits[i].points = (int32_t)gen_int();
		s->hits[i].shadow = gen_below(2) != 0;
	}
	gen_str(s->rules_version, sizeof s->rules_version);
	s->features_gen = gen_int();
	s->scored_at_ms = (int64_t)gen_int();
	s->nfeats = (uint32_t)(gen_below(8) == 0 ? STORE_MAX_FEATS : gen_below(STORE_MAX_FEATS + 1));
	if (gen_below(200) == 0)
		s->nfeats = STORE_MAX_FEATS + 1;
	for (uint32_t i = 0; i < s->nfeats && i < STORE_MAX_FEATS; i++) {
		store_featval *f = &s->feats[i];
		uint32_t len = (uint32_t)gen_below(gen_below(4) == 0 ? 300 : 40);

		gen_str(f->name, sizeof f->name);
		switch (gen_below(6)) { /* archived by id: one the schema has, or not */
		case 0:  f->name_id = store_schema_name_id((uint32_t)gen_below(store_schema_nfields())); break;
		case 1:  f->name_id = (uint32_t)gen_next(); break;
		default: f->name_id = 0; break;
		}
		f->val.num = gen_double();
		f->val.present = gen_below(4) != 0;
		if (gen_below(3) == 0 || pool + len > poolcap)
			continue; /* no string */
		for (uint32_t k = 0; k < len; k++)
			strpool[pool + k] = (char)(0x20 + gen_below(95));
		if (len > 0 && gen_below(500) == 0)
			strpool[pool + gen_below(len)] = '\0';
		f->val.str = gen_below(50) == 0 ? NULL : strpool + pool;
		f->val.len = len;
		pool += len;
	}
}

/* Every generated record: the same verdict and bytes as protobuf-c, ETOOBIG
 * one byte short without touching the buffer, and a round trip through both
 * decoders that re-encodes to the same bytes. */
static void
test_scored_encode_matches_protobuf_c(void **state)
{
	static store_scored in, out;
	static char pool[4096];
	static uint8_t want[32768], got[32768];
	unsigned ok = 0, einval = 0, full = 0;

	(void)state;
	for (int r = 0; r < 6000; r++) {
		size_t wlen = 0, glen = 0, len2 = 0;
		vigil_err wv, gv;

		gen_scored(&in, pool, sizeof pool);
		memset(got, 0xEE, sizeof got);
		wv = ref_scored_encode(&in, want, sizeof want, &wlen);
		gv = store_scored_encode(&in, got, sizeof got, &glen);
		assert_int_equal(gv, wv);
		if (wv != VIGIL_OK) {
			assert_int_equal(wv, VIGIL_EINVAL);
			einval++;
			continue;
		}
		ok++;
		full += in.nhits == STORE_MAX_HITS || in.nfeats == STORE_MAX_FEATS;
		assert_int_equal(glen, wlen);
		assert_memory_equal(got, want, wlen);
		assert_int_equal(got[glen], 0xEE);
		/* exactly enough, then one byte short */
		assert_int_equal(store_scored_encode(&in, got, wlen, &glen), VIGIL_OK);
		assert_int_equal(glen, wlen);
		memset(got, 0xEE, wlen);
		glen = 12345;
		if (wlen > 0) {
			assert_int_equal(store_scored_encode(&in, got, wlen - 1, &glen), VIGIL_ETOOBIG);
			assert_int_equal(glen, 12345);
			for (size_t i = 0; i < wlen; i++)
				assert_int_equal(got[i], 0xEE);
		}
		/* round trip: both decoders accept it, and it encodes back the same */
		assert_int_equal(lean_agrees(want, wlen), VIGIL_OK);
		assert_int_equal(store_scored_decode(want, wlen, &out, NULL), VIGIL_OK);
		assert_string_equal(out.txn.txn_id, in.txn.txn_id);
		assert_string_equal(out.txn.ip, in.txn.ip);
		assert_true(out.txn.amount_minor == in.txn.amount_minor);
		assert_int_equal(out.nhits, in.nhits);
		assert_int_equal(out.nfeats, in.nfeats);
		assert_int_equal(store_scored_encode(&out, got, sizeof got, &len2), VIGIL_OK);
		assert_int_equal(len2, wlen);
		assert_memory_equal(got, want, wlen);
	}
	/* The generator must reach both verdicts and the caps. */
	assert_true(ok > 3000 && einval > 50 && full > 300);
}

/* Raw wire helpers for payloads protobuf-c's packer would never write. */
static size_t
w_varint(uint8_t *p, uint64_t v)
{
	return (size_t)(vigil_pb_varint(p, v) - p);
}

static size_t
w_tag(uint8_t *p, uint32_t num, unsigned wt)
{
	return w_varint(p, (uint64_t)num << 3 | wt);
}

static size_t
w_bytes(uint8_t *p, uint32_t num, const void *b, size_t n)
{
	size_t k = w_tag(p, num, 2);

	k += w_varint(p + k, n);
	memcpy(p + k, b, n);
	return k + n;
}

static size_t
w_str(uint8_t *p, uint32_t num, const char *s)
{
	return w_bytes(p, num, s, strlen(s));
}

static size_t
w_u64(uint8_t *p, uint32_t num, uint64_t v)
{
	size_t k = w_tag(p, num, 0);

	return k + w_varint(p + k, v);
}

static size_t
w_f64(uint8_t *p, uint32_t num, double v)
{
	size_t k = w_tag(p, num, 1);

	memcpy(p + k, &v, 8);
	return k + 8;
}

/* A txn's fields every test payload here starts with: txn_id, event time
 * 1000, card-a, m-a, EUR. */
static size_t
w_txn_core(uint8_t *p, const char *txn_id)
{
	size_t n = 0;

	n += w_str(p + n, 1, txn_id);
	n += w_u64(p + n, 2, 1000);
	n += w_str(p + n, 3, "card-a");
	n += w_str(p + n, 4, "m-a");
	n += w_str(p + n, 7, "EUR");
	return n;
}

static void
test_lean_protobuf_c_rules(void **state)
{
	static store_scored_lean lean;
	uint8_t txn1[256], txn2[256], loc[64], fv[128], buf[1024];
	size_t n1 = 0, n2 = 0, nl = 0, nf = 0, n = 0;
	store_diag d;

	(void)state;
	/* Two occurrences of txn: strings the second sets win, the others stay;
	 * scalars come from the second (event_time unset there: 0); the
	 * location of the first survives; a string cut at its NUL. */
	nl += w_f64(loc + nl, 1, 10.5);
	nl += w_f64(loc + nl, 2, -3.25);
	n1 = w_txn_core(txn1, "t-1");
	n1 += w_bytes(txn1 + n1, 13, loc, nl);
	n2 += w_bytes(txn2 + n2, 3, "card-b\0tail", 11);
	n2 += w_u64(txn2 + n2, 6, 250);
	n2 += w_u64(txn2 + n2, 8, 5411);
	n2 += w_str(txn2 + n2, 9, "");
	/* present as a 32-bit field holding 0x100: protobuf-c reads it true */
	nf += w_str(fv + nf, 1, "f");
	nf += w_f64(fv + nf, 2, 2.5);
	nf += w_tag(fv + nf, 4, 5);
	memcpy(fv + nf, "\x00\x01\x00\x00", 4);
	nf += 4;
	nf += w_str(fv + nf, 3, "x\0y");
	n += w_bytes(buf + n, 1, txn1, n1);
	n += w_u64(buf + n, 99, 7);           /* unknown field */
	n += w_bytes(buf + n, 1, txn2, n2);
	n += w_bytes(buf + n, 8, fv, nf);
	n += w_u64(buf + n, 2, 0xffffffff00000005ull); /* int32: low 32 bits */
	assert_int_equal(lean_agrees(buf, n), VIGIL_OK);
	assert_int_equal(store_scored_decode_lean(buf, n, &lean, &d), VIGIL_OK);
	assert_view_eq(lean.txn_id, "t-1");
	assert_view_eq(lean.card_id, "card-b");
	assert_view_eq(lean.merchant_id, "m-a");
	assert_true(lean.event_time_ms == 0);
	assert_true(lean.amount_minor == 250);
	assert_true(lean.has_location);
	assert_true(lean.lat == 10.5);
	assert_int_equal(lean.score, 5);
	assert_true(lean.feats[0].val.present);
	assert_int_equal(lean.feats[0].val.len, 1);

	/* A bool carried as a 2-byte varint whose low bits are all zero. */
	nf = 0;
	nf += w_str(fv + nf, 1, "g");
	nf += w_tag(fv + nf, 4, 0);
	memcpy(fv + nf, "\x80\x00", 2);
	nf += 2;
	n = w_bytes(buf, 1, txn1, n1);
	n += w_bytes(buf + n, 8, fv, nf);
	assert_int_equal(lean_agrees(buf, n), VIGIL_OK);

	/* Inside a Location, a field seen twice is the last one; a second
	 * Location in the same txn merges into the first and its scalars win,
	 * those it leaves out included (proto3: no presence, so 0). */
	nl = 0;
	nl += w_f64(loc + nl, 1, 10.5);
	nl += w_f64(loc + nl, 2, -3.25);
	nl += w_f64(loc + nl, 1, 20.25);
	n1 = w_txn_core(txn1, "t-2");
	n1 += w_bytes(txn1 + n1, 13, loc, nl);
	n = w_bytes(buf, 1, txn1, n1);
	assert_int_equal(lean_agrees(buf, n), VIGIL_OK);
	assert_int_equal(store_scored_decode_lean(buf, n, &lean, &d), VIGIL_OK);
	assert_true(lean.has_location);
	assert_true(lean.lat == 20.25 && lean.lon == -3.25);
	nl = w_f64(loc, 1, 45.0);
	n1 += w_bytes(txn1 + n1, 13, loc, nl);
	n = w_bytes(buf, 1, txn1, n1);
	assert_int_equal(lean_agrees(buf, n), VIGIL_OK);
	assert_int_equal(store_scored_decode_lean(buf, n, &lean, &d), VIGIL_OK);
	assert_true(lean.lat == 45.0 && lean.lon == 0.0);
}

static void
test_lean_rejects(void **state)
{
	static store_scored_lean lean;
	uint8_t txn[256], buf[1024];
	size_t nt = 0, n;
	store_diag d;

	(void)state;
	nt += w_str(txn + nt, 1, "t-1");
	nt += w_str(txn + nt, 3, "card-a");
	/* event_time as a 64-bit field: wrong wire type */
	n = w_bytes(buf, 1, txn, nt);
	n += w_bytes(buf + n, 1, "\x11\x01\x02\x03\x04\x05\x06\x07\x08", 9);
	assert_int_equal(lean_agrees(buf, n), VIGIL_EPROTO);
	assert_int_equal(store_scored_decode_lean(buf, n, &lean, &d), VIGIL_EPROTO);
	assert_string_equal(d.msg, "ArchivedScore: 26 bytes are not a valid protobuf message");
	/* a group (wire type 3) in an unknown field */
	n = w_bytes(buf, 1, txn, nt);
	n += w_tag(buf + n, 20, 3);
	assert_int_equal(lean_agrees(buf, n), VIGIL_EPROTO);
	/* field 0 in a two-byte tag: an unknown field protobuf-c skips, at the
	 * top and inside the transaction (the fuzzer's 0a 00 80 00 5d); in a
	 * one-byte tag, an error */
	n = w_bytes(buf, 1, txn, nt);
	memcpy(buf + n, "\x80\x00\x5d", 3);
	assert_int_equal(lean_agrees(buf, n + 3), VIGIL_OK);
	memcpy(txn + nt, "\x80\x00\x01", 3);
	n = w_bytes(buf, 1, txn, nt + 3);
	assert_int_equal(lean_agrees(buf, n), VIGIL_OK);
	memcpy(buf + n, "\x00\x01", 2);
	assert_int_equal(lean_agrees(buf, n + 2), VIGIL_EPROTO);
	/* no transaction */
	n = w_u64(buf, 2, 5);
	assert_int_equal(lean_agrees(buf, n), VIGIL_EPROTO);
	assert_int_equal(store_scored_decode_lean(buf, n, &lean, &d), VIGIL_EPROTO);
	assert_string_equal(d.msg, "ArchivedScore.txn: missing");
	/* an id over its cap, and a currency over its cap */
	n = w_bytes(buf, 1, txn, nt);
	n += w_bytes(buf + n, 1, "\x22\x41" "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 67);
	assert_int_equal(lean_agrees(buf, n), VIGIL_EPROTO);
	assert_int_equal(store_scored_decode_lean(buf, n, &lean, &d), VIGIL_EPROTO);
	assert_string_equal(d.msg, "ArchivedScore.txn.merchant_id: 65 bytes, max 64");
	n = w_bytes(buf, 1, txn, nt);
	n += w_bytes(buf + n, 1, "\x3a\x04" "EURO", 6);
	assert_int_equal(lean_agrees(buf, n), VIGIL_EPROTO);
	/* unknown channel; unknown decision */
	n = w_bytes(buf, 1, txn, nt);
	n += w_bytes(buf + n, 1, "\x50\x09", 2);
	assert_int_equal(lean_agrees(buf, n), VIGIL_EPROTO);
	n = w_bytes(buf, 1, txn, nt);
	n += w_u64(buf + n, 3, 7);
	assert_int_equal(lean_agrees(buf, n), VIGIL_EPROTO);
	assert_int_equal(store_scored_decode_lean(buf, n, &lean, &d), VIGIL_EPROTO);
	assert_string_equal(d.msg, "ArchivedScore.decision: unknown value 7");
	/* too many features; a feature name over its cap */
	n = w_bytes(buf, 1, txn, nt);
	for (int i = 0; i < STORE_MAX_FEATS + 1; i++)
		n += w_bytes(buf + n, 8, "\x0a\x01" "f", 3);
	assert_int_equal(lean_agrees(buf, n), VIGIL_EPROTO);
	assert_int_equal(store_scored_decode_lean(buf, n, &lean, &d), VIGIL_EPROTO);
	assert_string_equal(d.msg, "ArchivedScore.features: 33 entries, max 32");
	/* truncated: a length running past the end, a varint without its end */
	n = w_bytes(buf, 1, txn, nt);
	assert_int_equal(lean_agrees(buf, n - 1), VIGIL_EPROTO);
	buf[n] = 0x10;
	buf[n + 1] = 0x80;
	assert_int_equal(lean_agrees(buf, n + 2), VIGIL_EPROTO);
	/* a 5-byte tag still continuing */
	memcpy(buf + n, "\x80\x80\x80\x80\x80\x01", 6);
	assert_int_equal(lean_agrees(buf, n + 6), VIGIL_EPROTO);
}

/* Every single-byte change, and some truncations and insertions, of real
 * payloads: the two decoders agree on each. */
static void
test_lean_mutations(void **state)
{
	static store_scored s;
	static uint8_t base[4096], m[4200];
	uint64_t rng = 0x2545f4914f6cdd1dull;
	size_t len;
	unsigned ok = 0;

	(void)state;
	fill_scored(&s);
	s.feats[2].val = vigil_value_num(-0.5);
	assert_int_equal(store_scored_encode(&s, base, sizeof base, &len), VIGIL_OK);
	for (size_t i = 0; i < len; i++) {
		static const uint8_t vals[] = { 0x00, 0x01, 0x02, 0x05, 0x07, 0x08, 0x0a, 0x12,
			0x1a, 0x3f, 0x40, 0x7f, 0x80, 0xff };

		for (size_t k = 0; k < sizeof vals; k++) {
			memcpy(m, base, len);
			m[i] = vals[k];
			ok += lean_agrees(m, len) == VIGIL_OK;
			m[i] = base[i] ^ (uint8_t)(1u << (k % 8));
			ok += lean_agrees(m, len) == VIGIL_OK;
		}
		ok += lean_agrees(base, i) == VIGIL_OK;
		memcpy(m, base, i);
		m[i] = (uint8_t)(0x08 * (i % 16) + (i % 6));
		memcpy(m + i + 1, base + i, len - i);
		ok += lean_agrees(m, len + 1) == VIGIL_OK;
	}
	for (int r = 0; r < 20000; r++) {
		size_t at, nb;

		rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
		memcpy(m, base, len);
		nb = 1 + rng % 3;
		for (size_t j = 0; j < nb; j++) {
			at = (size_t)(rng >> (8 + 16 * j)) % len;
			m[at] = (uint8_t)(rng >> (4 + 8 * j));
		}
		ok += lean_agrees(m, len) == VIGIL_OK;
	}
	/* Some mutations must have survived, or the test proves nothing. */
	assert_true(ok > 100);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scored_round_trip),
		cmocka_unit_test(test_scored_without_location),
		cmocka_unit_test(test_scored_encode_caps),
		cmocka_unit_test(test_label_round_trip),
		cmocka_unit_test(test_scored_old_record_score),
		cmocka_unit_test(test_scored_decode_rejects),
		cmocka_unit_test(test_scored_decode_string_budget),
		cmocka_unit_test(test_scored_decode_large_message_spills),
		cmocka_unit_test(test_label_decode_rejects),
		cmocka_unit_test(test_features_from_txn_rest_missing),
		cmocka_unit_test(test_lean_round_trip),
		cmocka_unit_test(test_feature_name_ids),
		cmocka_unit_test(test_lean_protobuf_c_rules),
		cmocka_unit_test(test_lean_rejects),
		cmocka_unit_test(test_lean_mutations),
		cmocka_unit_test(test_scored_encode_matches_protobuf_c),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
