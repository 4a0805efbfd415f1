/* SPDX-License-Identifier: MIT */
/*
 * tests/server/test_wire.c - unit tests of vigild's wire stage
 * (server/wire.c): the size cap comes before decoding, malformed bytes and
 * empty envelopes get the right status, and every invalid field is named
 * the way clients see it ("txn.currency", "label.txn_id").
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "pbwire.h"
#include "txn_same.h"
#include "wire.h"

#define T0 1763700000000LL /* 2025-11-21 */

static Vigil__V1__Transaction
good_txn(void)
{
	Vigil__V1__Transaction t = VIGIL__V1__TRANSACTION__INIT;

	t.txn_id = "t-1";
	t.card_id = "card-1";
	t.merchant_id = "m-1";
	t.amount_minor = 1250;
	t.currency = "EUR";
	t.event_time_ms = T0;
	t.channel = VIGIL__V1__CHANNEL__POS;
	return t;
}

/* Packs a score request for t into a malloc'd buffer. */
static uint8_t *
pack_score(Vigil__V1__Transaction *t, size_t *ret_len)
{
	Vigil__V1__Request req = VIGIL__V1__REQUEST__INIT;
	Vigil__V1__ScoreRequest sr = VIGIL__V1__SCORE_REQUEST__INIT;
	uint8_t *buf;

	sr.txn = t;
	req.kind_case = VIGIL__V1__REQUEST__KIND_SCORE;
	req.score = &sr;
	*ret_len = vigil__v1__request__get_packed_size(&req);
	buf = malloc(*ret_len + 1);
	assert_non_null(buf);
	vigil__v1__request__pack(&req, buf);
	return buf;
}

static void
expect_invalid(Vigil__V1__Transaction *t, const char *field)
{
	srv_wire_err err;
	vigil_txn txn;

	assert_int_equal(srv_wire_txn(t, &txn, &err), VIGIL_EINVAL);
	assert_int_equal(err.status, VIGIL__V1__STATUS__STATUS_INVALID);
	assert_string_equal(err.info.field, field);
	assert_true(strlen(err.info.msg) > 0);
	/* a request field, not a place in a text */
	assert_string_equal(err.info.file, "");
	assert_int_equal(err.info.line, 0);
	assert_true(err.info.offset == VIGIL_NOPOS);
}

static void
expect_invalid_msg(Vigil__V1__Transaction *t, const char *field, const char *msg)
{
	srv_wire_err err;
	vigil_txn txn;

	expect_invalid(t, field);
	assert_int_equal(srv_wire_txn(t, &txn, &err), VIGIL_EINVAL);
	assert_string_equal(err.info.msg, msg);
}

static void
test_decode_roundtrip(void **state)
{
	Vigil__V1__Transaction t = good_txn();
	Vigil__V1__Request *req = NULL;
	srv_wire_err err;
	vigil_txn txn;
	size_t len;
	uint8_t *buf = pack_score(&t, &len);

	(void)state;
	assert_int_equal(srv_wire_decode(buf, len, 65536, &req, &err), VIGIL_OK);
	assert_int_equal(req->kind_case, VIGIL__V1__REQUEST__KIND_SCORE);
	assert_int_equal(srv_wire_txn(req->score->txn, &txn, &err), VIGIL_OK);
	assert_string_equal(txn.txn_id, "t-1");
	assert_string_equal(txn.currency, "EUR");
	assert_int_equal(txn.amount_minor, 1250);
	assert_int_equal(txn.channel, VIGIL_CHANNEL_POS);
	assert_false(txn.has_location);
	vigil__v1__request__free_unpacked(req, NULL);
	free(buf);
}

static void
test_decode_size_cap_first(void **state)
{
	Vigil__V1__Request *req = NULL;
	srv_wire_err err;
	uint8_t junk[300];

	(void)state;
	memset(junk, 0xff, sizeof junk); /* would be MALFORMED if decoded */
	assert_int_equal(srv_wire_decode(junk, sizeof junk, 256, &req, &err), VIGIL_ETOOBIG);
	assert_int_equal(err.status, VIGIL__V1__STATUS__STATUS_TOO_BIG);
	assert_null(req);
	assert_non_null(strstr(err.info.msg, "300 bytes"));
}

static void
test_decode_malformed(void **state)
{
	static const uint8_t garbage[] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	Vigil__V1__Transaction t = good_txn();
	Vigil__V1__Request *req = NULL;
	srv_wire_err err;
	size_t len;
	uint8_t *buf = pack_score(&t, &len);

	(void)state;
	assert_int_equal(srv_wire_decode(garbage, sizeof garbage, 65536, &req, &err),
	    VIGIL_EPROTO);
	assert_int_equal(err.status, VIGIL__V1__STATUS__STATUS_MALFORMED);
	/* A truncated message: the txn's length prefix promises more bytes. */
	assert_int_equal(srv_wire_decode(buf, len - 3, 65536, &req, &err), VIGIL_EPROTO);
	assert_int_equal(err.status, VIGIL__V1__STATUS__STATUS_MALFORMED);
	assert_null(req);
	free(buf);
}

static void
test_decode_empty_envelope(void **state)
{
	Vigil__V1__Request *req = NULL;
	srv_wire_err err;

	(void)state;
	assert_int_equal(srv_wire_decode("", 0, 65536, &req, &err), VIGIL_EPROTO);
	assert_int_equal(err.status, VIGIL__V1__STATUS__STATUS_UNSUPPORTED);
	assert_null(req);
	/* An unknown field 9 (a newer client's request kind) is also unsupported. */
	assert_int_equal(srv_wire_decode("\x4a\x00", 2, 65536, &req, &err), VIGIL_EPROTO);
	assert_int_equal(err.status, VIGIL__V1__STATUS__STATUS_UNSUPPORTED);
}

/* Sets the first byte of marker inside buf (a packed message) to NUL. */
static void
poke_nul(uint8_t *buf, size_t len, const char *marker)
{
	size_t ml = strlen(marker);

	for (size_t i = 0; i + ml <= len; i++)
		if (memcmp(buf + i, marker, ml) == 0) {
			buf[i] = 0;
			return;
		}
	fail_msg("marker %s not in the packed message", marker);
}

static void
expect_nul_refused(uint8_t *buf, size_t len, const char *field)
{
	Vigil__V1__Request *req = NULL;
	srv_wire_err err;

	assert_int_equal(srv_wire_decode(buf, len, 65536, &req, &err), VIGIL_EINVAL);
	assert_null(req);
	assert_int_equal(err.status, VIGIL__V1__STATUS__STATUS_INVALID);
	assert_string_equal(err.info.field, field);
	assert_non_null(strstr(err.info.msg, "NUL"));
}

/*
 * A string with a NUL byte is refused, naming the field: protobuf-c hands
 * over a C string, which would end at the NUL, so "t-1\0XY" would be
 * scored (and deduplicated) as "t-1", another transaction's id.
 */
static void
test_decode_nul_in_string(void **state)
{
	Vigil__V1__Transaction t = good_txn();
	Vigil__V1__Attribute a = VIGIL__V1__ATTRIBUTE__INIT, *ap = &a;
	Vigil__V1__Location loc = VIGIL__V1__LOCATION__INIT;
	Vigil__V1__Request req = VIGIL__V1__REQUEST__INIT, *out = NULL;
	Vigil__V1__LabelRequest lr = VIGIL__V1__LABEL_REQUEST__INIT;
	Vigil__V1__Label l = VIGIL__V1__LABEL__INIT;
	srv_wire_err err;
	vigil_txn txn;
	uint8_t *buf;
	size_t len;

	(void)state;
	t.txn_id = "t-1@XY";
	buf = pack_score(&t, &len);
	poke_nul(buf, len, "@XY");
	expect_nul_refused(buf, len, "txn.txn_id");
	free(buf);

	t = good_txn();
	t.merchant_id = "m-1@";
	buf = pack_score(&t, &len);
	poke_nul(buf, len, "@");
	expect_nul_refused(buf, len, "txn.merchant_id");
	free(buf);

	t = good_txn();
	a.key = "k@ey";
	a.value = "v";
	t.attributes = &ap;
	t.n_attributes = 1;
	buf = pack_score(&t, &len);
	poke_nul(buf, len, "@ey");
	expect_nul_refused(buf, len, "txn.attributes.key");
	free(buf);

	l.txn_id = "t-1";
	l.source = "chargeback@";
	lr.label = &l;
	req.kind_case = VIGIL__V1__REQUEST__KIND_LABEL;
	req.label = &lr;
	len = vigil__v1__request__get_packed_size(&req);
	buf = malloc(len);
	assert_non_null(buf);
	vigil__v1__request__pack(&req, buf);
	poke_nul(buf, len, "@");
	expect_nul_refused(buf, len, "label.source");
	free(buf);

	/* Zero bytes elsewhere (a double with zero bytes, an empty message) are fine. */
	t = good_txn();
	loc.latitude = 2.0;
	loc.longitude = 0.5;
	t.location = &loc;
	buf = pack_score(&t, &len);
	assert_non_null(memchr(buf, 0, len));
	assert_int_equal(srv_wire_decode(buf, len, 65536, &out, &err), VIGIL_OK);
	assert_int_equal(srv_wire_txn(out->score->txn, &txn, &err), VIGIL_OK);
	assert_true(txn.lat == 2.0);
	vigil__v1__request__free_unpacked(out, NULL);
	free(buf);
	assert_int_equal(srv_wire_decode("\x1a\x00", 2, 65536, &out, &err), VIGIL_OK);
	assert_int_equal(out->kind_case, VIGIL__V1__REQUEST__KIND_HEALTH);
	vigil__v1__request__free_unpacked(out, NULL);
}

/*
 * Field 0 in a two-byte tag ("80 00"), which protobuf-c 1.4 reads as an
 * unknown field and skips, does not hide a NUL from the check: ahead of
 * the request's score or inside its Transaction, txn_id "ab\0cd" is still
 * refused, naming the field (the check's walk used to stop at that tag and
 * let "ab" through). Without a NUL such a request decodes, as protobuf-c
 * decodes it.
 */
static void
test_decode_nul_after_field_zero(void **state)
{
	/* Request { score = ScoreRequest { txn = Transaction { txn_id } } } */
	static const uint8_t ahead[] = { 0x80, 0x00, 0x01, 0x0a, 0x09, 0x0a, 0x07, 0x0a, 0x05,
		'a', 'b', 0x00, 'c', 'd' };
	static const uint8_t inside[] = { 0x0a, 0x0c, 0x0a, 0x0a, 0x80, 0x00, 0x01, 0x0a, 0x05,
		'a', 'b', 0x00, 'c', 'd' };
	uint8_t clean[sizeof ahead];
	Vigil__V1__Request *out = NULL;
	srv_wire_err err;

	(void)state;
	expect_nul_refused((uint8_t *)ahead, sizeof ahead, "txn.txn_id");
	expect_nul_refused((uint8_t *)inside, sizeof inside, "txn.txn_id");
	memcpy(clean, ahead, sizeof ahead);
	clean[11] = 'X';
	assert_int_equal(srv_wire_decode(clean, sizeof clean, 65536, &out, &err), VIGIL_OK);
	assert_int_equal(out->kind_case, VIGIL__V1__REQUEST__KIND_SCORE);
	assert_string_equal(out->score->txn->txn_id, "abXcd");
	vigil__v1__request__free_unpacked(out, NULL);
}

/* Strict UTF-8 (no overlongs, surrogates or code points over U+10FFFF), no
 * control characters: what a proto3 string or a JSON string may carry. */
static bool
utf8_line_ok(const char *str)
{
	const unsigned char *s = (const unsigned char *)str;

	while (*s != 0) {
		uint32_t c;
		int n;

		if (*s < 0x20 || *s == 0x7f)
			return false;
		if (*s < 0x80) {
			s++;
			continue;
		}
		if (*s >= 0xc2 && *s <= 0xdf)
			n = 1, c = *s & 0x1f;
		else if (*s >= 0xe0 && *s <= 0xef)
			n = 2, c = *s & 0x0f;
		else if (*s >= 0xf0 && *s <= 0xf4)
			n = 3, c = *s & 0x07;
		else
			return false;
		for (int i = 1; i <= n; i++) {
			if ((s[i] & 0xc0) != 0x80)
				return false;
			c = c << 6 | (s[i] & 0x3f);
		}
		if ((n == 2 && c < 0x800) || (n == 3 && (c < 0x10000 || c > 0x10ffff)) ||
		    (c >= 0xd800 && c <= 0xdfff))
			return false;
		s += n + 1;
	}
	return true;
}

/*
 * An error message is one line of valid UTF-8 whatever the client sent: a
 * reply string that is not UTF-8 is refused by other languages' protobuf
 * decoders (and by JSON encoders); quoted input cut mid-character or raw
 * bytes from an attribute key must not get through.
 */
static void
test_error_message_utf8(void **state)
{
	Vigil__V1__Transaction t = good_txn();
	Vigil__V1__Attribute a = VIGIL__V1__ATTRIBUTE__INIT, *ap = &a;
	char big[VIGIL_ATTR_VALUE_MAX + 2];
	srv_wire_err err;
	vigil_txn txn;

	(void)state;
	memset(big, 'v', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	a.key = "k\xff\xfe\n\xe2\x82";
	a.value = big;
	t.attributes = &ap;
	t.n_attributes = 1;
	assert_int_equal(srv_wire_txn(&t, &txn, &err), VIGIL_EINVAL);
	assert_string_equal(err.info.field, "txn.attributes.value");
	if (!utf8_line_ok(err.info.msg))
		fail_msg("not one line of UTF-8: %s", err.info.msg);
	t = good_txn();
	t.currency = "\xc3\xa9\xff";
	assert_int_equal(srv_wire_txn(&t, &txn, &err), VIGIL_EINVAL);
	assert_string_equal(err.info.field, "txn.currency");
	if (!utf8_line_ok(err.info.msg))
		fail_msg("not one line of UTF-8: %s", err.info.msg);
	/* Valid UTF-8 is kept as it is; a character cut by the size cap is not. */
	srv_wire_err_set(&err, VIGIL__V1__STATUS__STATUS_INVALID, "x", "caf\xc3\xa9 \xe2\x82\xac");
	assert_string_equal(err.info.msg, "caf\xc3\xa9 \xe2\x82\xac");
	memset(big, 'a', sizeof big);
	snprintf(big + SRV_WIRE_MSG_MAX - 3, 5, "\xe2\x82\xac");
	srv_wire_err_set(&err, VIGIL__V1__STATUS__STATUS_INVALID, "x", "%s", big);
	assert_true(utf8_line_ok(err.info.msg));
	assert_int_equal(strlen(err.info.msg), SRV_WIRE_MSG_MAX - 1);
}

static void
test_txn_fields_named(void **state)
{
	Vigil__V1__Transaction t;
	Vigil__V1__Location loc = VIGIL__V1__LOCATION__INIT;
	char longid[100];

	(void)state;
	expect_invalid(NULL, "txn");
	t = good_txn(); t.txn_id = "";            expect_invalid(&t, "txn.txn_id");
	t = good_txn(); t.card_id = "";           expect_invalid(&t, "txn.card_id");
	t = good_txn(); t.card_id = "has space";  expect_invalid(&t, "txn.card_id");
	t = good_txn(); t.merchant_id = "";       expect_invalid(&t, "txn.merchant_id");
	t = good_txn(); t.currency = "XQZ";       expect_invalid(&t, "txn.currency");
	t = good_txn(); t.currency = "EURO";      expect_invalid(&t, "txn.currency");
	t = good_txn(); t.currency = "";          expect_invalid(&t, "txn.currency");
	t = good_txn(); t.amount_minor = -1;      expect_invalid(&t, "txn.amount_minor");
	t = good_txn(); t.event_time_ms = 0;      expect_invalid(&t, "txn.event_time_ms");
	t = good_txn(); t.country = "fr";         expect_invalid(&t, "txn.country");
	t = good_txn(); t.mcc = 123456;           expect_invalid(&t, "txn.mcc");
	t = good_txn(); t.channel = 42;           expect_invalid(&t, "txn.channel");
	memset(longid, 'x', sizeof longid - 1);
	longid[sizeof longid - 1] = '\0';
	t = good_txn(); t.txn_id = longid;        expect_invalid(&t, "txn.txn_id");
	/* out of range and not finite: one message, vigil_txn_validate's, as
	 * every other interface gives it (tests/common/test_common.c) */
	{
		static const double bad_lat[] = { 91, -90.5, NAN, INFINITY, -INFINITY };
		static const double bad_lon[] = { 180.5, NAN, INFINITY };
		srv_wire_err err;
		vigil_txn txn;

		t = good_txn();
		t.location = &loc;
		for (size_t i = 0; i < sizeof bad_lat / sizeof bad_lat[0]; i++) {
			loc.latitude = bad_lat[i];
			loc.longitude = 0;
			expect_invalid(&t, "txn.location.latitude");
			assert_int_equal(srv_wire_txn(&t, &txn, &err), VIGIL_EINVAL);
			assert_string_equal(err.info.msg, "latitude must be a finite number in [-90, 90]");
		}
		for (size_t i = 0; i < sizeof bad_lon / sizeof bad_lon[0]; i++) {
			loc.latitude = 0;
			loc.longitude = bad_lon[i];
			expect_invalid(&t, "txn.location.longitude");
			assert_int_equal(srv_wire_txn(&t, &txn, &err), VIGIL_EINVAL);
			assert_string_equal(err.info.msg,
			    "longitude must be a finite number in [-180, 180]");
		}
	}
}

static void
test_txn_attribute_caps(void **state)
{
	Vigil__V1__Transaction t = good_txn();
	Vigil__V1__Attribute a = VIGIL__V1__ATTRIBUTE__INIT;
	Vigil__V1__Attribute *many[VIGIL_ATTR_MAX + 1];
	char big[VIGIL_ATTR_VALUE_MAX + 2];

	(void)state;
	for (int i = 0; i <= VIGIL_ATTR_MAX; i++)
		many[i] = &a;
	a.key = "k";
	a.value = "v";
	t.attributes = many;
	t.n_attributes = VIGIL_ATTR_MAX;
	{
		srv_wire_err err;
		vigil_txn txn;
		assert_int_equal(srv_wire_txn(&t, &txn, &err), VIGIL_OK);
	}
	t.n_attributes = VIGIL_ATTR_MAX + 1;
	expect_invalid_msg(&t, "txn.attributes", "65 attributes, the limit is 64");
	t.n_attributes = 1;
	memset(big, 'v', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	a.value = big;
	/* the words of every JSON reader (common's vigil_txn_attr_check) */
	expect_invalid_msg(&t, "txn.attributes.value",
	    "\"k\": value is 257 bytes, the limit is 256");
	a.value = "v";
	a.key = "";
	expect_invalid_msg(&t, "txn.attributes.key", "\"\": key must be 1-64 bytes");
	a.key = NULL; /* protobuf-c leaves an absent string NULL */
	expect_invalid_msg(&t, "txn.attributes.key", "\"\": key must be 1-64 bytes");
	a.key = "k";
	a.value = NULL;
	{
		srv_wire_err err;
		vigil_txn txn;
		assert_int_equal(srv_wire_txn(&t, &txn, &err), VIGIL_OK);
	}
}

/* The clock-skew guard: the future beyond the limit is refused, with how far
 * and the limit; the past and the limit itself are fine; 0 turns it off. */
static void
test_txn_time_future_skew(void **state)
{
	const int64_t now = T0;
	Vigil__V1__Transaction t = good_txn();
	srv_wire_err err;
	vigil_txn txn;

	(void)state;
	assert_int_equal(srv_wire_txn(&t, &txn, &err), VIGIL_OK);
	txn.event_time_ms = now + 300000;
	assert_int_equal(srv_wire_txn_window(&txn, now, 300000, 0, &err), VIGIL_OK);
	txn.event_time_ms = now - 400LL * VIGIL_MS_PER_DAY; /* history: a replay */
	assert_int_equal(srv_wire_txn_window(&txn, now, 300000, 0, &err), VIGIL_OK);

	txn.event_time_ms = now + 300001;
	assert_int_equal(srv_wire_txn_window(&txn, now, 300000, 0, &err), VIGIL_EINVAL);
	assert_int_equal(err.status, VIGIL__V1__STATUS__STATUS_INVALID);
	assert_string_equal(err.info.field, "txn.event_time_ms");
	assert_string_equal(err.info.msg, "event_time_ms 1763700300001 is 300001 ms (5.0 min) "
	    "ahead of the server clock; the limit is 300000 ms (max_future_skew_ms)");

	/* The year-2099 event that used to freeze every card's velocity. */
	txn.event_time_ms = 4070908800000LL; /* 2099-01-01 */
	assert_int_equal(srv_wire_txn_window(&txn, now, 300000, 0, &err), VIGIL_EINVAL);
	assert_string_equal(err.info.msg, "event_time_ms 4070908800000 is 2307208800000 ms "
	    "(26703.8 d) ahead of the server clock; the limit is 300000 ms (max_future_skew_ms)");
	txn.event_time_ms = now + 2 * 3600000;
	assert_int_equal(srv_wire_txn_window(&txn, now, 60000, 0, &err), VIGIL_EINVAL);
	assert_non_null(strstr(err.info.msg, "is 7200000 ms (2.0 h) ahead"));
	assert_non_null(strstr(err.info.msg, "the limit is 60000 ms"));

	/* 0 disables the guard. */
	txn.event_time_ms = 4070908800000LL;
	assert_int_equal(srv_wire_txn_window(&txn, now, 0, 0, &err), VIGIL_OK);
}

/*
 * A replicated observation's guard: against when the stream stored it, the
 * limit and the clocks' slack allowed, one past both refused with how far
 * ahead; at or before the stored time, or with the guard off, fine.
 */
static void
test_obs_time_future_skew(void **state)
{
	const int64_t stored = T0;
	srv_wire_err err;

	(void)state;
	assert_int_equal(srv_wire_obs_window(stored + 301000, stored, 300000, 1000, &err),
	    VIGIL_OK);
	assert_int_equal(srv_wire_obs_window(stored - 400LL * VIGIL_MS_PER_DAY, stored, 300000,
	    1000, &err), VIGIL_OK);
	assert_int_equal(srv_wire_obs_window(stored + 301001, stored, 300000, 1000, &err),
	    VIGIL_EINVAL);
	assert_int_equal(err.status, VIGIL__V1__STATUS__STATUS_INVALID);
	assert_string_equal(err.info.field, "event_time_ms");
	assert_string_equal(err.info.msg, "event_time_ms 1763700301001 is 301001 ms (5.0 min) "
	    "ahead of when the stream stored it; the limit is 300000 ms (max_future_skew_ms) and "
	    "1000 ms for the clocks");
	assert_int_equal(srv_wire_obs_window(INT64_MAX, INT64_MIN, 300000, 1000, &err),
	    VIGIL_EINVAL);
	assert_non_null(strstr(err.info.msg, "is 18446744073709551615 ms"));
	assert_int_equal(srv_wire_obs_window(INT64_MAX, stored, 0, 1000, &err), VIGIL_OK);
}

/*
 * max_past_skew_ms: an event older than the limit is refused with how far
 * behind it is; the limit itself is fine; 0 (the default) accepts any past
 * time.
 */
static void
test_txn_time_past_skew(void **state)
{
	const int64_t now = T0;
	Vigil__V1__Transaction t = good_txn();
	srv_wire_err err;
	vigil_txn txn;

	(void)state;
	assert_int_equal(srv_wire_txn(&t, &txn, &err), VIGIL_OK);
	txn.event_time_ms = now - VIGIL_MS_PER_DAY;
	assert_int_equal(srv_wire_txn_window(&txn, now, 300000, VIGIL_MS_PER_DAY, &err), VIGIL_OK);
	txn.event_time_ms = now - 7 * VIGIL_MS_PER_DAY - 1;
	assert_int_equal(srv_wire_txn_window(&txn, now, 300000, VIGIL_MS_PER_DAY, &err),
	    VIGIL_EINVAL);
	assert_int_equal(err.status, VIGIL__V1__STATUS__STATUS_INVALID);
	assert_string_equal(err.info.field, "txn.event_time_ms");
	assert_string_equal(err.info.msg, "event_time_ms 1763095199999 is 604800001 ms (7.0 d) "
	    "behind the server clock; the limit is 86400000 ms (max_past_skew_ms)");
	/* the future limit still applies, and each is off with 0 */
	txn.event_time_ms = now + 300001;
	assert_int_equal(srv_wire_txn_window(&txn, now, 300000, VIGIL_MS_PER_DAY, &err),
	    VIGIL_EINVAL);
	assert_non_null(strstr(err.info.msg, "ahead of the server clock"));
	txn.event_time_ms = now - 400LL * VIGIL_MS_PER_DAY;
	assert_int_equal(srv_wire_txn_window(&txn, now, 300000, 0, &err), VIGIL_OK);
	assert_int_equal(srv_wire_txn_window(&txn, now, 300000, 3600000, &err), VIGIL_EINVAL);
	assert_non_null(strstr(err.info.msg, "(400.0 d) behind the server clock; the limit is "
	    "3600000 ms (max_past_skew_ms)"));
}

static void
test_label(void **state)
{
	Vigil__V1__Label l = VIGIL__V1__LABEL__INIT;
	srv_wire_err err;
	store_label out;

	(void)state;
	assert_int_equal(srv_wire_label(NULL, T0, &out, &err), VIGIL_EINVAL);
	assert_string_equal(err.info.field, "label");
	assert_int_equal(srv_wire_label(&l, T0, &out, &err), VIGIL_EINVAL);
	assert_string_equal(err.info.field, "label.txn_id");
	l.txn_id = "t-1";
	l.fraud = true;
	l.source = "chargeback";
	assert_int_equal(srv_wire_label(&l, T0, &out, &err), VIGIL_OK);
	assert_int_equal(out.label_time_ms, T0); /* 0 = the server's now */
	assert_int_equal(out.received_at_ms, T0);
	assert_true(out.fraud);
	assert_string_equal(out.source, "chargeback");
	l.label_time_ms = 5;
	assert_int_equal(srv_wire_label(&l, T0, &out, &err), VIGIL_EINVAL);
	assert_string_equal(err.info.field, "label.label_time_ms");
	/* a label dated 2099 would never be used by a rebuild: refused */
	l.label_time_ms = 4070908800000LL; /* 2099-01-01 */
	assert_int_equal(srv_wire_label(&l, T0, &out, &err), VIGIL_EINVAL);
	assert_string_equal(err.info.field, "label.label_time_ms");
	assert_non_null(strstr(err.info.msg, "in the future"));
	l.label_time_ms = T0 + 3600000; /* an hour ahead: clocks differ, accepted */
	assert_int_equal(srv_wire_label(&l, T0, &out, &err), VIGIL_OK);
	l.label_time_ms = 0;
	l.source = "a source with spaces";
	assert_int_equal(srv_wire_label(&l, T0, &out, &err), VIGIL_EINVAL);
	assert_string_equal(err.info.field, "label.source");
}

static void
test_error_reply_roundtrip(void **state)
{
	Vigil__V1__Reply r, *back;
	srv_wire_err err;
	uint8_t buf[512];
	size_t n;

	(void)state;
	srv_wire_err_set(&err, VIGIL__V1__STATUS__STATUS_INVALID, "txn.currency",
	    "currency \"%s\" is not an active ISO 4217 code", "XQZ");
	srv_wire_error_reply(&err, &r);
	n = vigil__v1__reply__pack(&r, buf);
	back = vigil__v1__reply__unpack(NULL, n, buf);
	assert_non_null(back);
	assert_int_equal(back->status, VIGIL__V1__STATUS__STATUS_INVALID);
	assert_string_equal(back->field, "txn.currency");
	assert_string_equal(back->message, "currency \"XQZ\" is not an active ISO 4217 code");
	assert_int_equal(back->kind_case, VIGIL__V1__REPLY__KIND__NOT_SET);
	vigil__v1__reply__free_unpacked(back, NULL);
	assert_string_equal(srv_status_name(VIGIL__V1__STATUS__STATUS_OVERLOADED), "OVERLOADED");
}

/* Small deterministic generator for the reply cases below. */
static uint64_t
rnd(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

/* A string of 0, short, or long (over 127 bytes: a two-byte length). */
static char *
rnd_str(uint64_t *x, char *buf, size_t cap)
{
	static const size_t lens[] = { 0, 1, 5, 40, 127, 128, 300 };
	size_t n = lens[rnd(x) % (sizeof lens / sizeof lens[0])];

	if (n >= cap)
		n = cap - 1;
	for (size_t i = 0; i < n; i++)
		buf[i] = (char)('a' + rnd(x) % 26);
	buf[n] = '\0';
	return rnd(x) % 8 == 0 ? NULL : buf;
}

static int32_t
rnd_i32(uint64_t *x)
{
	static const int32_t v[] = { 0, 1, -1, 63, 64, 127, 128, -128, 300, -300, 16384,
	    INT32_MAX, INT32_MIN };

	return v[rnd(x) % (sizeof v / sizeof v[0])];
}

static uint64_t
rnd_u64(uint64_t *x)
{
	static const uint64_t v[] = { 0, 1, 127, 128, 16383, 16384, UINT32_MAX, UINT64_MAX,
	    1ull << 35 };

	return v[rnd(x) % (sizeof v / sizeof v[0])];
}

static void
expect_same_bytes(const Vigil__V1__Reply *r)
{
	size_t want = vigil__v1__reply__get_packed_size(r);
	uint8_t *a = malloc(want + 1), *b = malloc(want + 16);

	assert_non_null(a);
	assert_non_null(b);
	assert_int_equal(srv_wire_reply_size(r), want);
	assert_int_equal(vigil__v1__reply__pack(r, a), want);
	memset(b, 0xa5, want + 16);
	assert_int_equal(srv_wire_reply_pack(r, b), want);
	assert_memory_equal(a, b, want);
	assert_int_equal(b[want], 0xa5); /* nothing written past the size */
	free(a);
	free(b);
}

/* The direct reply encoder writes exactly what protobuf-c writes: error
 * replies and score replies over defaults, negative int32s, long strings,
 * NULL and empty strings, empty and full hit lists. */
static void
test_reply_pack_matches_protobuf_c(void **state)
{
	char s[8][400];
	uint64_t x = 0x9e3779b97f4a7c15ull;

	(void)state;
	for (int round = 0; round < 3000; round++) {
		Vigil__V1__Reply r = VIGIL__V1__REPLY__INIT;
		Vigil__V1__ScoreReply sr = VIGIL__V1__SCORE_REPLY__INIT;
		Vigil__V1__Hit hv[6], *hp[6];
		char hs[6][2][64];

		r.status = (Vigil__V1__Status)(rnd(&x) % 8);
		r.message = rnd_str(&x, s[0], sizeof s[0]);
		r.field = rnd_str(&x, s[1], sizeof s[1]);
		if (rnd(&x) % 4 != 0) {
			r.kind_case = VIGIL__V1__REPLY__KIND_SCORE;
			r.score = &sr;
			sr.txn_id = rnd_str(&x, s[2], sizeof s[2]);
			sr.score = rnd_i32(&x);
			sr.decision = (Vigil__V1__Decision)(rnd(&x) % 4);
			sr.rules_version = rnd_str(&x, s[3], sizeof s[3]);
			sr.rules_hash = rnd_str(&x, s[4], sizeof s[4]);
			sr.features_generation = rnd_u64(&x);
			sr.latency_us = (uint32_t)rnd_u64(&x);
			sr.duplicate = rnd(&x) % 2;
			sr.dry_run = rnd(&x) % 2;
			sr.late = rnd(&x) % 2;
			sr.past_dedupe_horizon = rnd(&x) % 2;
			sr.n_hits = rnd(&x) % 7;
			sr.hits = hp;
			for (size_t i = 0; i < sr.n_hits; i++) {
				vigil__v1__hit__init(&hv[i]);
				hv[i].rule = rnd_str(&x, hs[i][0], sizeof hs[i][0]);
				hv[i].points = rnd_i32(&x);
				hv[i].reason = rnd_str(&x, hs[i][1], sizeof hs[i][1]);
				hv[i].shadow = rnd(&x) % 2;
				hp[i] = &hv[i];
			}
		}
		expect_same_bytes(&r);
	}
}

/* Other kinds go through protobuf-c: still the same bytes. */
static void
test_reply_pack_other_kinds(void **state)
{
	Vigil__V1__Reply r = VIGIL__V1__REPLY__INIT;
	Vigil__V1__LabelReply lr = VIGIL__V1__LABEL_REPLY__INIT;
	Vigil__V1__HealthReply hr = VIGIL__V1__HEALTH_REPLY__INIT;

	(void)state;
	r.message = (char *)"ok";
	r.kind_case = VIGIL__V1__REPLY__KIND_LABEL;
	r.label = &lr;
	lr.txn_id = (char *)"t-1";
	expect_same_bytes(&r);
	r.kind_case = VIGIL__V1__REPLY__KIND_HEALTH;
	r.health = &hr;
	hr.ready = 1;
	hr.server_version = (char *)"vigild test";
	hr.uptime_s = 12345;
	expect_same_bytes(&r);
}

/* ---- The lean decoder (srv_wire_score_lean) ---- */

/* Request{score: ScoreRequest{txn: body + extra_txn, then extra_sr}} in buf. */
static size_t
wrap_score(uint8_t *buf, const uint8_t *body, size_t n, const uint8_t *extra_txn, size_t ne,
    const uint8_t *extra_sr, size_t nsr)
{
	uint8_t sr[2048], *p = sr;

	p = vigil_pb_len(p, 1, n + ne);
	memcpy(p, body, n);
	p += n;
	if (ne > 0)
		memcpy(p, extra_txn, ne);
	p += ne;
	if (nsr > 0)
		memcpy(p, extra_sr, nsr);
	p += nsr;
	return (size_t)(vigil_pb_str(buf, 1, sr, (size_t)(p - sr)) - buf);
}

static size_t
txn_body(Vigil__V1__Transaction *t, uint8_t *body)
{
	size_t n = vigil__v1__transaction__get_packed_size(t);

	assert_true(n < 1024);
	vigil__v1__transaction__pack(t, body);
	return n;
}

/* What protobuf-c's path gives: true and *txn, *dry on a valid score request. */
static bool
slow_score(const uint8_t *buf, size_t len, vigil_txn *txn, bool *dry)
{
	Vigil__V1__Request *req = NULL;
	srv_wire_err err;
	bool ok;

	if (srv_wire_decode(buf, len, 64 * 1024, &req, &err) != VIGIL_OK)
		return false;
	ok = req->kind_case == VIGIL__V1__REQUEST__KIND_SCORE &&
	    srv_wire_txn(req->score->txn, txn, &err) == VIGIL_OK;
	if (ok)
		*dry = req->score->dry_run != 0;
	vigil__v1__request__free_unpacked(req, NULL);
	return ok;
}

static Vigil__V1__Transaction
full_txn(Vigil__V1__Location *loc)
{
	Vigil__V1__Transaction t = good_txn();

	t.terminal_id = "term-7";
	t.device_id = "dev-3";
	t.ip = "203.0.113.9";
	t.country = "FR";
	t.mcc = 5411;
	t.channel = VIGIL__V1__CHANNEL__ECOM;
	loc->latitude = 48.85;
	loc->longitude = -2.35;
	t.location = loc;
	return t;
}

static void
test_lean_takes_what_clients_send(void **state)
{
	Vigil__V1__Location loc = VIGIL__V1__LOCATION__INIT;
	Vigil__V1__Transaction t = full_txn(&loc), m = good_txn();
	static const uint8_t dry_true[] = { 0x10, 0x01 };
	uint8_t body[1024], buf[2048];
	vigil_txn lean, slow;
	bool dl = true, ds = false;
	size_t n = txn_body(&t, body), len = wrap_score(buf, body, n, NULL, 0, NULL, 0);

	(void)state;
	assert_true(srv_wire_score_lean(buf, len, 64 * 1024, &lean, &dl));
	assert_true(slow_score(buf, len, &slow, &ds));
	assert_true(vt_txn_same(&lean, &slow));
	assert_false(dl);
	assert_false(ds);
	assert_true(lean.has_location);
	assert_int_equal(lean.mcc, 5411);
	assert_string_equal(lean.ip, "203.0.113.9");

	/* dry_run, and the fewest fields a valid request has */
	len = wrap_score(buf, body, n, NULL, 0, dry_true, sizeof dry_true);
	assert_true(srv_wire_score_lean(buf, len, 64 * 1024, &lean, &dl));
	assert_true(slow_score(buf, len, &slow, &ds));
	assert_true(dl);
	assert_true(ds);
	n = txn_body(&m, body);
	len = wrap_score(buf, body, n, NULL, 0, NULL, 0);
	assert_true(srv_wire_score_lean(buf, len, 64 * 1024, &lean, &dl));
	assert_true(slow_score(buf, len, &slow, &ds));
	assert_true(vt_txn_same(&lean, &slow));
	assert_false(lean.has_location);

	/* both keep an ip in its one spelling, neither takes a non-address */
	t.ip = "2001:DB8:0:0:0:0:0:1";
	n = txn_body(&t, body);
	len = wrap_score(buf, body, n, NULL, 0, NULL, 0);
	assert_true(srv_wire_score_lean(buf, len, 64 * 1024, &lean, &dl));
	assert_true(slow_score(buf, len, &slow, &ds));
	assert_string_equal(lean.ip, "2001:db8::1");
	assert_true(vt_txn_same(&lean, &slow));
	t.ip = "999.1.1.1";
	n = txn_body(&t, body);
	len = wrap_score(buf, body, n, NULL, 0, NULL, 0);
	assert_false(srv_wire_score_lean(buf, len, 64 * 1024, &lean, &dl));
	assert_false(slow_score(buf, len, &slow, &ds));
}

/* A Location is read as protobuf-c reads it (common/txnwire.h): a field
 * seen twice is the last one, an unknown one skipped, an empty one 0, 0. */
static void
test_lean_location_as_protobuf_c(void **state)
{
	static const struct {
		const char *what;
		uint8_t     loc[24];
		size_t      n;
		double      lat, lon;
	} cases[] = {
		{ "latitude twice", { 0x6a, 0x12, 0x09, 0, 0, 0, 0, 0, 0, 0x24, 0x40, 0x09, 0, 0, 0, 0,
		    0, 0, 0x34, 0x40 }, 20, 20.0, 0.0 },
		{ "an unknown field", { 0x6a, 0x0b, 0x18, 0x07, 0x11, 0, 0, 0, 0, 0, 0, 0x24, 0x40 },
		    13, 0.0, 10.0 },
		{ "empty", { 0x6a, 0x00 }, 2, 0.0, 0.0 },
	};
	Vigil__V1__Transaction t = good_txn();
	uint8_t body[1024], buf[2048];
	size_t n = txn_body(&t, body);

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		size_t len = wrap_score(buf, body, n, cases[i].loc, cases[i].n, NULL, 0);
		vigil_txn lean, slow;
		bool dl, ds;

		if (!srv_wire_score_lean(buf, len, 64 * 1024, &lean, &dl))
			fail_msg("the lean decoder left a location with %s", cases[i].what);
		assert_true(slow_score(buf, len, &slow, &ds));
		assert_true(vt_txn_same(&lean, &slow));
		assert_true(lean.has_location);
		assert_true(lean.lat == cases[i].lat && lean.lon == cases[i].lon);
	}
}

/* Each is left to protobuf-c, valid or not. */
static void
test_lean_leaves_the_rest(void **state)
{
	static const struct {
		const char *what;
		uint8_t     txn[24];
		size_t      nt;
		uint8_t     sr[8];
		size_t      nsr;
		bool        valid;
	} cases[] = {
		{ "an attribute", { 0x72, 0x06, 0x0a, 0x01, 'k', 0x12, 0x01, 'v' }, 8, { 0 }, 0, true },
		{ "a field this version does not know", { 0x78, 0x01 }, 2, { 0 }, 0, true },
		{ "txn_id twice", { 0x0a, 0x03, 't', '-', '2' }, 5, { 0 }, 0, true },
		{ "dry_run twice", { 0 }, 0, { 0x10, 0x01, 0x10, 0x00 }, 4, true },
		{ "dry_run in two bytes", { 0 }, 0, { 0x10, 0x81, 0x00 }, 3, true },
		{ "a string field as a number", { 0x58, 0x05 }, 2, { 0 }, 0, false },
		{ "channel 9", { 0x50, 0x09 }, 2, { 0 }, 0, false },
		{ "mcc over 32 bits", { 0x40, 0x80, 0x80, 0x80, 0x80, 0x10 }, 6, { 0 }, 0, true },
		{ "a NUL in device_id", { 0x5a, 0x03, 'd', 0, 'x' }, 5, { 0 }, 0, false },
		{ "latitude NaN", { 0x6a, 0x09, 0x09, 0, 0, 0, 0, 0, 0, 0xf8, 0x7f }, 11, { 0 }, 0, false },
		{ "location twice", { 0x6a, 0x00, 0x6a, 0x00 }, 4, { 0 }, 0, true },
		{ "an unknown field in the envelope's score", { 0 }, 0, { 0x18, 0x01 }, 2, true },
	};
	Vigil__V1__Transaction t = good_txn();
	uint8_t body[1024], buf[2048];
	size_t n = txn_body(&t, body);

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		size_t len = wrap_score(buf, body, n, cases[i].txn, cases[i].nt, cases[i].sr,
		    cases[i].nsr);
		vigil_txn lean, slow;
		bool dl, ds;

		if (srv_wire_score_lean(buf, len, 64 * 1024, &lean, &dl))
			fail_msg("the lean decoder took %s", cases[i].what);
		if (slow_score(buf, len, &slow, &ds) != cases[i].valid)
			fail_msg("%s: protobuf-c's path says %s", cases[i].what,
			    cases[i].valid ? "invalid" : "valid");
	}
}

/* The envelope: another kind, no txn, over the cap, bytes after it. */
static void
test_lean_envelope(void **state)
{
	Vigil__V1__Transaction t = good_txn();
	static const uint8_t health[] = { 0x1a, 0x00 }, empty_score[] = { 0x0a, 0x00 };
	uint8_t body[1024], buf[2048];
	size_t n = txn_body(&t, body), len = wrap_score(buf, body, n, NULL, 0, NULL, 0);
	vigil_txn lean;
	bool dry;

	(void)state;
	assert_false(srv_wire_score_lean(health, sizeof health, 64 * 1024, &lean, &dry));
	assert_false(srv_wire_score_lean(empty_score, sizeof empty_score, 64 * 1024, &lean, &dry));
	assert_false(srv_wire_score_lean(buf, 0, 64 * 1024, &lean, &dry));
	assert_false(srv_wire_score_lean(buf, len, len - 1, &lean, &dry));
	assert_true(srv_wire_score_lean(buf, len, len, &lean, &dry));
	memcpy(buf + len, health, sizeof health); /* a second kind after the score */
	assert_false(srv_wire_score_lean(buf, len + sizeof health, 64 * 1024, &lean, &dry));
	for (size_t cut = 1; cut < len; cut++) /* every truncation */
		assert_false(srv_wire_score_lean(buf, cut, 64 * 1024, &lean, &dry));
}

/* Random edits of a full request (fixed seed): whatever the lean decoder
 * takes, protobuf-c's path takes too, with the same transaction. */
static void
test_lean_agrees_under_mutation(void **state)
{
	Vigil__V1__Location loc = VIGIL__V1__LOCATION__INIT;
	Vigil__V1__Transaction t = full_txn(&loc);
	uint8_t body[1024], base[2048], buf[2048];
	size_t n = txn_body(&t, body), len = wrap_score(base, body, n, NULL, 0, NULL, 0);
	uint64_t x = 0x9e3779b97f4a7c15u;
	unsigned took = 0, left = 0;

	(void)state;
	for (int it = 0; it < 200000; it++) {
		vigil_txn lean, slow;
		bool dl, ds;
		size_t m = len;

		memcpy(buf, base, len);
		for (int e = 0; e < 1 + it % 3; e++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			buf[(x >> 8) % len] = (uint8_t)(x >> 40);
		}
		if (it % 7 == 0)
			m = (size_t)(x >> 20) % len + 1;
		if (!srv_wire_score_lean(buf, m, 64 * 1024, &lean, &dl)) {
			left++;
			continue;
		}
		took++;
		if (!slow_score(buf, m, &slow, &ds))
			fail_msg("edit %d: the lean decoder took what protobuf-c's path refuses", it);
		assert_true(vt_txn_same(&lean, &slow));
		assert_int_equal(dl, ds);
	}
	/* both sides were exercised */
	assert_true(took > 1000);
	assert_true(left > 1000);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decode_roundtrip),
		cmocka_unit_test(test_lean_takes_what_clients_send),
		cmocka_unit_test(test_lean_leaves_the_rest),
		cmocka_unit_test(test_lean_location_as_protobuf_c),
		cmocka_unit_test(test_lean_envelope),
		cmocka_unit_test(test_lean_agrees_under_mutation),
		cmocka_unit_test(test_decode_size_cap_first),
		cmocka_unit_test(test_decode_malformed),
		cmocka_unit_test(test_decode_empty_envelope),
		cmocka_unit_test(test_decode_nul_in_string),
		cmocka_unit_test(test_decode_nul_after_field_zero),
		cmocka_unit_test(test_error_message_utf8),
		cmocka_unit_test(test_txn_fields_named),
		cmocka_unit_test(test_txn_attribute_caps),
		cmocka_unit_test(test_txn_time_future_skew),
		cmocka_unit_test(test_txn_time_past_skew),
		cmocka_unit_test(test_obs_time_future_skew),
		cmocka_unit_test(test_label),
		cmocka_unit_test(test_error_reply_roundtrip),
		cmocka_unit_test(test_reply_pack_matches_protobuf_c),
		cmocka_unit_test(test_reply_pack_other_kinds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
