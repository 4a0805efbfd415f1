/* SPDX-License-Identifier: MIT */
/*
 * tests/store_archive/test_record.c - archive payload codec: store_scored and
 * store_label round trips, caps enforced on both sides, malformed payloads
 * rejected with VIGIL_EPROTO and the offending field named.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "store.h"
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

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scored_round_trip),
		cmocka_unit_test(test_scored_without_location),
		cmocka_unit_test(test_scored_encode_caps),
		cmocka_unit_test(test_label_round_trip),
		cmocka_unit_test(test_scored_decode_rejects),
		cmocka_unit_test(test_scored_decode_string_budget),
		cmocka_unit_test(test_scored_decode_large_message_spills),
		cmocka_unit_test(test_label_decode_rejects),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
