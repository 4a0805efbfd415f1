/* SPDX-License-Identifier: MIT */
/* tests/common/test_common.c - error texts, currencies, validation (field by
 * field), UTC time parsing/formatting and the JSON transaction codec. */
#include <arpa/inet.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "cli.h"
#include "splitmix.h"
#include "vigil.h"
#include "vigil_json.h"

static vigil_txn
good_txn(void)
{
	vigil_txn t;

	memset(&t, 0, sizeof t);
	strcpy(t.txn_id, "t-1");
	strcpy(t.card_id, "c-1");
	strcpy(t.merchant_id, "m-1");
	strcpy(t.currency, "EUR");
	strcpy(t.country, "FR");
	t.event_time_ms = 1763719200000LL; /* 2025-11-21T10:00:00Z */
	t.amount_minor = 1234;
	t.mcc = 5411;
	t.channel = VIGIL_CHANNEL_ECOM;
	return t;
}

static void
test_errors(void **state)
{
	(void)state;
	assert_string_equal(vigil_strerror(VIGIL_OK), "success");
	assert_string_equal(vigil_errname(VIGIL_ECORRUPT), "ECORRUPT");
	assert_string_equal(vigil_strerror((vigil_err)999), "unknown error");
	assert_int_equal(vigil_err_from_errno(2 /* ENOENT */), VIGIL_ENOTFOUND);
	for (int e = 0; e < VIGIL_ERR_COUNT_; e++)
		assert_non_null(vigil_strerror((vigil_err)e));
}

static void
test_currency(void **state)
{
	vigil_txn t = good_txn();

	(void)state;
	assert_int_equal(vigil_currency_exponent("EUR"), 2);
	assert_int_equal(vigil_currency_exponent("JPY"), 0);
	assert_int_equal(vigil_currency_exponent("KWD"), 3);
	assert_int_equal(vigil_currency_exponent("XXX"), -1);
	assert_int_equal(vigil_currency_exponent("EURO"), -1);
	/* first and last of the table, wrong case, short codes */
	assert_int_equal(vigil_currency_exponent("AED"), 2);
	assert_int_equal(vigil_currency_exponent("ZWL"), 2);
	assert_int_equal(vigil_currency_exponent("CLF"), 4);
	assert_int_equal(vigil_currency_exponent("eur"), -1);
	assert_int_equal(vigil_currency_exponent("EU"), -1);
	assert_int_equal(vigil_currency_exponent(""), -1);
	assert_int_equal(vigil_currency_exponent(NULL), -1);
	/* bytes next to the letters, a NUL inside, a fourth byte */
	assert_int_equal(vigil_currency_exponent("@UR"), -1);
	assert_int_equal(vigil_currency_exponent("E[R"), -1);
	assert_int_equal(vigil_currency_exponent("EU`"), -1);
	assert_int_equal(vigil_currency_exponent("EU{"), -1);
	assert_int_equal(vigil_currency_exponent("E\xc3R"), -1);
	assert_int_equal(vigil_currency_exponent("E\0R"), -1);
	assert_int_equal(vigil_currency_exponent("EUR "), -1);
	/* every three-letter code: 158 active ones, by exponent */
	{
		int count[6] = { 0 };
		char code[4] = "AAA";

		for (int a = 0; a < 26; a++)
			for (int b = 0; b < 26; b++)
				for (int c = 0; c < 26; c++) {
					int e;

					code[0] = (char)('A' + a);
					code[1] = (char)('A' + b);
					code[2] = (char)('A' + c);
					e = vigil_currency_exponent(code);
					assert_true(e >= -1 && e <= 4);
					count[e + 1]++;
				}
		assert_int_equal(count[0], 26 * 26 * 26 - 158);
		assert_int_equal(count[1], 17);
		assert_int_equal(count[2], 0);
		assert_int_equal(count[3], 132);
		assert_int_equal(count[4], 7);
		assert_int_equal(count[5], 2);
	}
	assert_int_equal(vigil_currency_exponent("UYW"), 4);
	assert_int_equal(vigil_currency_exponent("BHD"), 3);
	assert_int_equal(vigil_currency_exponent("XPF"), 0);
	assert_int_equal(vigil_currency_exponent("USD"), 2);
	assert_true(fabs(vigil_txn_amount(&t) - 12.34) < 1e-9);
	strcpy(t.currency, "JPY");
	assert_true(fabs(vigil_txn_amount(&t) - 1234.0) < 1e-9);
}

struct bad_case {
	const char *field;
	void (*mutate)(vigil_txn *t);
};

static void m_no_id(vigil_txn *t) { t->txn_id[0] = '\0'; }
static void m_space_id(vigil_txn *t) { strcpy(t->card_id, "c 1"); }
static void m_no_merchant(vigil_txn *t) { t->merchant_id[0] = '\0'; }
static void m_currency(vigil_txn *t) { strcpy(t->currency, "ZZZ"); }
static void m_negative(vigil_txn *t) { t->amount_minor = -1; }
static void m_time(vigil_txn *t) { t->event_time_ms = 0; }
static void m_future(vigil_txn *t) { t->event_time_ms = 4102444800000LL; }
static void m_country(vigil_txn *t) { strcpy(t->country, "fr"); }
static void m_lat(vigil_txn *t) { t->has_location = true; t->lat = 91; }
static void m_lon(vigil_txn *t) { t->has_location = true; t->lon = NAN; }
static void m_mcc(vigil_txn *t) { t->mcc = 10000; }
static void m_ip(vigil_txn *t) { strcpy(t->ip, "999.999.999.999"); }

static void
test_validate(void **state)
{
	static const struct bad_case cases[] = {
		{ "txn_id", m_no_id },        { "card_id", m_space_id },
		{ "merchant_id", m_no_merchant }, { "currency", m_currency },
		{ "amount_minor", m_negative }, { "event_time_ms", m_time },
		{ "event_time_ms", m_future }, { "country", m_country },
		{ "location.latitude", m_lat }, { "location.longitude", m_lon },
		{ "mcc", m_mcc },             { "ip", m_ip },
	};
	vigil_txn t = good_txn();
	vigil_errinfo ei;

	(void)state;
	assert_int_equal(vigil_txn_validate(&t, &ei), VIGIL_OK);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		t = good_txn();
		cases[i].mutate(&t);
		memset(&ei, 'x', sizeof ei);
		assert_int_equal(vigil_txn_validate(&t, &ei), VIGIL_EINVAL);
		assert_string_equal(ei.field, cases[i].field);
		assert_true(strlen(ei.msg) > 0);
		/* a field of a struct, not a place in a text */
		assert_string_equal(ei.file, "");
		assert_int_equal(ei.line, 0);
		assert_int_equal(ei.col, 0);
		assert_true(ei.offset == VIGIL_NOPOS);
	}
	/* a coordinate out of range or not finite: one message for both, the
	 * one the wire decoder returns too (tests/server/test_wire.c) */
	t = good_txn();
	m_lat(&t);
	assert_int_equal(vigil_txn_validate(&t, &ei), VIGIL_EINVAL);
	assert_string_equal(ei.msg, "latitude must be a finite number in [-90, 90]");
	t.lat = NAN;
	assert_int_equal(vigil_txn_validate(&t, &ei), VIGIL_EINVAL);
	assert_string_equal(ei.msg, "latitude must be a finite number in [-90, 90]");
	t = good_txn();
	m_lon(&t);
	assert_int_equal(vigil_txn_validate(&t, &ei), VIGIL_EINVAL);
	assert_string_equal(ei.msg, "longitude must be a finite number in [-180, 180]");
	/* the message says the field's own name first (the replies' wording) */
	t = good_txn();
	strcpy(t.currency, "XXY");
	assert_int_equal(vigil_txn_validate(&t, &ei), VIGIL_EINVAL);
	assert_string_equal(ei.msg, "currency \"XXY\" is not an active ISO 4217 code");
	assert_int_equal(vigil_txn_validate(&t, NULL), VIGIL_EINVAL);
}

/* Ids and ip at their caps, one byte over (no NUL in the array), bad bytes. */
/* Each value, written into the string field at offset off of a good
 * transaction, is refused and blamed on that field. */
static void
expect_rejected(size_t off, const char *name, const char *const *values)
{
	for (; *values != NULL; values++) {
		vigil_txn     t = good_txn();
		vigil_errinfo ei;

		strcpy((char *)&t + off, *values);
		assert_int_equal(vigil_txn_validate(&t, &ei), VIGIL_EINVAL);
		assert_string_equal(ei.field, name);
	}
}

static void
test_validate_ids(void **state)
{
	vigil_txn t = good_txn();
	vigil_errinfo ei;

	(void)state;
	memset(t.card_id, 'c', VIGIL_ID_MAX);
	t.card_id[VIGIL_ID_MAX] = '\0';
	strcpy(t.ip, "2001:DB8:0:0:0:0:0:1");
	assert_int_equal(vigil_txn_validate(&t, &ei), VIGIL_OK);
	memset(t.card_id, 'c', sizeof t.card_id);
	assert_int_equal(vigil_txn_validate(&t, &ei), VIGIL_EINVAL);
	assert_string_equal(ei.field, "card_id");

	t = good_txn();
	strcpy(t.ip, "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255");
	assert_int_equal(strlen(t.ip), VIGIL_IP_MAX);
	assert_int_equal(vigil_txn_validate(&t, &ei), VIGIL_OK);
	memset(t.ip, 'f', sizeof t.ip);
	assert_int_equal(vigil_txn_validate(&t, &ei), VIGIL_EINVAL);
	assert_string_equal(ei.field, "ip");

	/* optional ids may be empty, never hold a quote, backslash, comma or DEL */
	expect_rejected(offsetof(vigil_txn, device_id), "device_id", (const char *const[]){ "d\"1",
	    "d\\1", "d,1", "d\x7f", "d\t", NULL });
	t = good_txn();
	strcpy(t.terminal_id, "~!#$%&'()*+-./:;<=>?@[]^_`{|}");
	assert_int_equal(vigil_txn_validate(&t, &ei), VIGIL_OK);

	/* every byte in an id, against the documented charset; in an ip, as
	 * the last group of "::x" */
	for (int c = 1; c < 256; c++) {
		bool id = c > 0x20 && c < 0x7f && c != '"' && c != ',' && c != '\\';
		bool ip = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
		    (c >= 'A' && c <= 'F');

		char b[3] = { 'd', (char)c, 'e' };

		assert_int_equal(vigil_id_chars_ok(b, 3), id);
		assert_true(vigil_id_chars_ok(b, 1));
		t = good_txn();
		t.device_id[0] = 'd';
		t.device_id[1] = (char)c;
		t.device_id[2] = '\0';
		assert_int_equal(vigil_txn_validate(&t, NULL), id ? VIGIL_OK : VIGIL_EINVAL);
		t = good_txn();
		memcpy(t.ip, (char[]){ ':', ':', (char)c, '\0' }, 4);
		assert_int_equal(vigil_txn_validate(&t, NULL), ip ? VIGIL_OK : VIGIL_EINVAL);
	}

	/* every byte at every place of ids of every length up to the cap (the
	 * check goes eight bytes at a time) */
	for (size_t len = 1; len <= VIGIL_ID_MAX; len++) {
		for (size_t pos = 0; pos < len; pos++) {
			for (int c = 1; c < 256; c++) {
				bool id = c > 0x20 && c < 0x7f && c != '"' && c != ',' && c != '\\';
				char b[VIGIL_ID_MAX + 1];

				memset(b, 'a' + (int)(pos % 26), len);
				b[pos] = (char)c;
				assert_int_equal(vigil_id_chars_ok(b, len), id);
				if (len < 3 || pos != len - 1)
					continue;
				t = good_txn();
				memcpy(t.card_id, b, len);
				t.card_id[len] = '\0';
				assert_int_equal(vigil_txn_validate(&t, NULL),
				    id ? VIGIL_OK : VIGIL_EINVAL);
			}
		}
	}
}

/* Every spelling of one address is stored as one text, so that velocity
 * counts it as one entity; anything inet_pton does not read is refused. */
static void
test_validate_ip(void **state)
{
	static const struct {
		const char *in, *canon;
	} same[] = {
		{ "", "" },
		{ "10.0.0.1", "10.0.0.1" },
		{ "::ffff:10.0.0.1", "10.0.0.1" },
		{ "::FFFF:10.0.0.1", "10.0.0.1" },
		{ "0:0:0:0:0:ffff:a00:1", "10.0.0.1" },
		{ "2001:db8::1", "2001:db8::1" },
		{ "2001:DB8::1", "2001:db8::1" },
		{ "2001:db8:0:0:0:0:0:1", "2001:db8::1" },
		{ "2001:0DB8:0000:0000:0000:0000:0000:0001", "2001:db8::1" },
		{ "2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1" },
		{ "2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1" },
		{ "::", "::" },
		{ "::1", "::1" },
		{ "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255",
		    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff" },
	};
	static const char *const bad[] = {
		"999.999.999.999", "01.02.03.04", "1.2.3", "1.2.3.4.5", "1.2.3.256",
		"fe80::1%eth0", "1.2.3.4 ", " 1.2.3.4", "1.2.3.4; rm", "1.2.3.g", "::G",
		"1/2", "ip1", "1::2::3", "12345::", "::ffff:1.2.3.256", ":::", ".", NULL,
	};
	vigil_txn t;
	vigil_errinfo ei;

	(void)state;
	for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
		t = good_txn();
		strcpy(t.ip, same[i].in);
		assert_int_equal(vigil_txn_validate(&t, &ei), VIGIL_OK);
		assert_string_equal(t.ip, same[i].canon);
	}
	expect_rejected(offsetof(vigil_txn, ip), "ip", bad);
	t = good_txn();
	strcpy(t.ip, "999.1.1.1");
	assert_int_equal(vigil_txn_validate(&t, &ei), VIGIL_EINVAL);
	assert_string_equal(ei.msg, "ip \"999.1.1.1\" is not an IPv4 or IPv6 address");
	/* against inet_ntop: addresses of zero and non-zero groups (every
	 * run of zeros), spelt in full upper-case hex */
	for (uint32_t i = 0; i < 70000; i++) {
		uint8_t a[16];
		uint32_t x = i * 2654435761u;
		char want[INET6_ADDRSTRLEN], in[sizeof t.ip];

		for (int g = 0; g < 8; g++) {
			unsigned v = (i >> (2 * g) & 3) == 0 ? 0 : (i >> (2 * g) & 3) == 1 ?
			    (x >> (4 * g) & 0xf) + 1 : (unsigned)((x >> g) & 0xffff);

			a[2 * g] = (uint8_t)(v >> 8);
			a[2 * g + 1] = (uint8_t)v;
		}
		if (i % 7 == 0) /* IPv4-mapped: the IPv4 */
			memcpy(a, (const uint8_t[12]){ [10] = 0xff, [11] = 0xff }, 12);
		t = good_txn();
		snprintf(t.ip, sizeof t.ip, "%X:%X:%X:%X:%X:%X:%X:%X", a[0] << 8 | a[1],
		    a[2] << 8 | a[3], a[4] << 8 | a[5], a[6] << 8 | a[7], a[8] << 8 | a[9],
		    a[10] << 8 | a[11], a[12] << 8 | a[13], a[14] << 8 | a[15]);
		if (i % 7 == 0)
			assert_non_null(inet_ntop(AF_INET, a + 12, want, sizeof want));
		else
			assert_non_null(inet_ntop(AF_INET6, a, want, sizeof want));
		memcpy(in, t.ip, sizeof in);
		assert_int_equal(vigil_txn_validate(&t, &ei), VIGIL_OK);
		if (strcmp(t.ip, want) != 0)
			fail_msg("%s: %s, inet_ntop %s", in, t.ip, want);
	}
	/* refused for another field: the ip is left as it came */
	t = good_txn();
	strcpy(t.ip, "::ffff:10.0.0.1");
	strcpy(t.currency, "XXY");
	assert_int_equal(vigil_txn_validate(&t, &ei), VIGIL_EINVAL);
	assert_string_equal(t.ip, "::ffff:10.0.0.1");
}

static void
test_time(void **state)
{
	int64_t ms;
	char buf[40];

	(void)state;
	assert_int_equal(vigil_date_parse("1970-01-01", &ms), VIGIL_OK);
	assert_int_equal(ms, 0);
	assert_int_equal(vigil_date_parse("2024-02-29", &ms), VIGIL_OK);
	assert_int_equal(ms, 1709164800000LL);
	assert_int_equal(vigil_date_parse("2023-02-29", &ms), VIGIL_EINVAL);
	assert_int_equal(vigil_date_parse("2023-13-01", &ms), VIGIL_EINVAL);
	assert_int_equal(vigil_date_parse("2023-01-01x", &ms), VIGIL_EINVAL);
	assert_int_equal(vigil_time_parse_rfc3339("2025-11-21T10:00:00Z", &ms), VIGIL_OK);
	assert_int_equal(ms, 1763719200000LL);
	assert_int_equal(vigil_time_parse_rfc3339("2025-11-21T10:00:00.5Z", &ms), VIGIL_OK);
	assert_int_equal(ms, 1763719200500LL);
	assert_int_equal(vigil_time_parse_rfc3339("2025-11-21T11:30:00+01:30", &ms), VIGIL_OK);
	assert_int_equal(ms, 1763719200000LL);
	assert_int_equal(vigil_time_parse_rfc3339("2025-11-21T10:00:00", &ms), VIGIL_EINVAL);
	assert_int_equal(vigil_time_parse_rfc3339("2025-11-21T25:00:00Z", &ms), VIGIL_EINVAL);
	vigil_time_format_rfc3339(1763719200123LL, buf, sizeof buf);
	assert_string_equal(buf, "2025-11-21T10:00:00.123Z");
	vigil_time_format_rfc3339(-1, buf, sizeof buf);
	assert_string_equal(buf, "1969-12-31T23:59:59.999Z");
	vigil_date_format(1709164800000LL + 5, buf, sizeof buf);
	assert_string_equal(buf, "2024-02-29");
}

static void
test_haversine(void **state)
{
	(void)state;
	/* Paris - London is about 344 km. */
	double d = vigil_haversine_km(48.8566, 2.3522, 51.5074, -0.1278);
	assert_true(d > 340 && d < 348);
	assert_true(vigil_haversine_km(10, 10, 10, 10) == 0.0);
}

/* vigil_txn_from_json with its message copied to err (errlen bytes; most
 * checks here are of the message). */
static vigil_err
from_json_msg(const json_t *o, vigil_txn *t, char *err, size_t errlen)
{
	vigil_errinfo ei;
	vigil_err rv;

	memset(&ei, 0x5a, sizeof ei); /* filled whole on error, not left as found */
	rv = vigil_txn_from_json(o, t, &ei);
	if (rv == VIGIL_OK)
		err[0] = '\0';
	else
		vigil_errinfo_format(&ei, err, errlen); /* "field: what" */
	return rv;
}

/* Attributes at vigild's limits are read (and not kept: vigil_txn has
 * none); one past any limit is refused with vigild's field. */
static void
test_json_attributes(void)
{
	json_t *o = json_pack("{s:s, s:s}", "txn_id", "t", "currency", "EUR");
	json_t *a = json_object();
	char key[VIGIL_ATTR_KEY_MAX + 2], val[VIGIL_ATTR_VALUE_MAX + 2];
	vigil_errinfo ei;
	vigil_txn t, plain;

	assert_int_equal(vigil_txn_from_json(o, &plain, &ei), VIGIL_OK);
	memset(key, 'k', sizeof key);
	memset(val, 'v', sizeof val);
	key[VIGIL_ATTR_KEY_MAX] = val[VIGIL_ATTR_VALUE_MAX] = '\0';
	for (int i = 0; i < VIGIL_ATTR_MAX; i++) {
		key[0] = (char)('0' + i / 10);
		key[1] = (char)('0' + i % 10);
		json_object_set_new(a, key, json_string(val));
	}
	json_object_set(o, "attributes", a);
	assert_int_equal(vigil_txn_from_json(o, &t, &ei), VIGIL_OK);
	assert_memory_equal(&t, &plain, sizeof t);
	json_object_set_new(a, "one-more", json_string(""));
	assert_int_equal(vigil_txn_from_json(o, &t, &ei), VIGIL_EINVAL);
	assert_string_equal(ei.field, "attributes");
	assert_string_equal(ei.msg, "65 attributes, the limit is 64");
	json_object_clear(a);
	key[VIGIL_ATTR_KEY_MAX] = 'k';
	key[VIGIL_ATTR_KEY_MAX + 1] = '\0';
	json_object_set_new(a, key, json_string(""));
	assert_int_equal(vigil_txn_from_json(o, &t, &ei), VIGIL_EINVAL);
	assert_string_equal(ei.field, "attributes.key");
	json_object_clear(a);
	val[VIGIL_ATTR_VALUE_MAX] = 'v';
	val[VIGIL_ATTR_VALUE_MAX + 1] = '\0';
	json_object_set_new(a, "k", json_string(val));
	assert_int_equal(vigil_txn_from_json(o, &t, &ei), VIGIL_EINVAL);
	assert_string_equal(ei.field, "attributes.value");
	assert_string_equal(ei.msg, "\"k\": value is 257 bytes, the limit is 256");
	/* a key with a NUL (jansson's parser refuses one; its API makes one) */
	json_object_clear(a);
	json_object_setn_new(a, "k\0b", 3, json_string("v"));
	assert_int_equal(vigil_txn_from_json(o, &t, &ei), VIGIL_EINVAL);
	assert_string_equal(ei.field, "attributes.key");
	assert_string_equal(ei.msg, "\"k\": contains a NUL byte");
	json_decref(a);
	json_decref(o);
}

/* The error detail names the field apart from the message, so no caller
 * parses the message for it (vigild's /v1/score did, with strchr, and
 * named "txn" for a bad "txn_id"). */
static void
test_json_errinfo(void **state)
{
	static const struct {
		const char *json, *field, *msg;
	} cases[] = {
		{ "{\"txn_id\":7}", "txn_id", "must be a string" },
		{ "{\"mcc\":\"x\"}", "mcc", "\"x\" is not an integer" },
		{ "{\"mcc\":true}", "mcc",
		  "must be an integer (a JSON number or a string of digits)" },
		{ "{\"location\":{\"latitude\":\"n\"}}", "location.latitude",
		  "\"n\" is not a number" },
		{ "{\"location\":{\"latitude\":[1]}}", "location.latitude",
		  "must be a number (a JSON number or a string holding one)" },
		{ "{\"currency\":\"EUR\",\"amount\":true}", "amount",
		  "must be a decimal number or string in major units" },
		{ "{\"amount\":\"1.00\"}", "currency", "required to read amount (its minor units)" },
		{ "{\"location\":{\"latitude\":1,\"longitude\":2,\"alt\":3}}", "location.alt",
		  "unknown key (location holds latitude and longitude)" },
		{ "[1]", "", "the transaction must be a JSON object" },
		/* attributes: vigild's checks of Transaction.attributes */
		{ "{\"attributes\":[\"k\"]}", "attributes",
		  "must be an object of strings ({\"key\": \"value\"})" },
		{ "{\"attributes\":{\"\":\"v\"}}", "attributes.key", "\"\": key must be 1-64 bytes" },
		{ "{\"attributes\":{\"k\":1}}", "attributes.value", "\"k\": value must be a string" },
		{ "{\"attributes\":{\"k\":\"a\\u0000b\"}}", "attributes.value",
		  "\"k\": contains a NUL byte" },
	};
	json_error_t jerr;
	vigil_errinfo ei;
	vigil_txn t;
	char buf[400];

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		json_t *o = json_loads(cases[i].json, JSON_ALLOW_NUL, &jerr);
		char want[400];

		assert_non_null(o);
		assert_int_equal(vigil_txn_from_json(o, &t, &ei), VIGIL_EINVAL);
		assert_string_equal(ei.field, cases[i].field);
		/* the message says what, never where: that is the field's */
		assert_string_equal(ei.msg, cases[i].msg);
		assert_string_equal(ei.file, "");
		assert_int_equal(ei.line, 0);
		assert_true(ei.offset == VIGIL_NOPOS);
		snprintf(want, sizeof want, "%s%s%s", cases[i].field, cases[i].field[0] ? ": " : "",
		    cases[i].msg);
		assert_string_equal(vigil_errinfo_format(&ei, buf, sizeof buf), want);
		json_decref(o);
	}
	test_json_attributes();
	/* The positions format as compilers print them. */
	vigil_errinfo_set(&ei, "amount", "bad %s", "value");
	snprintf(ei.file, sizeof ei.file, "in.csv");
	ei.line = 3;
	assert_string_equal(vigil_errinfo_format(&ei, buf, sizeof buf), "in.csv:3: amount: bad value");
	ei.col = 7;
	assert_string_equal(vigil_errinfo_format(&ei, buf, sizeof buf), "in.csv:3:7: amount: bad value");
	ei.line = ei.col = 0;
	ei.offset = 4096;
	assert_string_equal(vigil_errinfo_format(&ei, buf, sizeof buf), "in.csv:4096: amount: bad value");
	vigil_errinfo_set(&ei, NULL, "two\nlines");
	assert_string_equal(ei.msg, "two?lines");
	assert_string_equal(ei.field, "");
}

/* The one unknown-key check of every JSON reader: the first key not listed,
 * and the list for the message. */
static void
test_json_unknown_key(void **state)
{
	static const char *const keys[] = { "txn", "dry_run", NULL }, *const none[] = { NULL };
	json_error_t jerr;
	json_t *o = json_loads("{\"txn\":1,\"dryrun\":true}", 0, &jerr);
	json_t *ok = json_loads("{\"txn\":1,\"dry_run\":true}", 0, &jerr);
	json_t *one = json_loads("{\"txn\":1}", 0, &jerr);
	char known[32] = "untouched", tiny[8];

	(void)state;
	assert_non_null(o);
	assert_non_null(ok);
	assert_string_equal(vigil_json_unknown_key(o, keys, known, sizeof known), "dryrun");
	assert_string_equal(known, "txn, dry_run");
	assert_null(vigil_json_unknown_key(ok, keys, known, sizeof known));
	assert_string_equal(vigil_json_unknown_key(one, none, NULL, 0), "txn");
	assert_string_equal(vigil_json_unknown_key(one, NULL, known, sizeof known), "txn");
	assert_string_equal(known, ""); /* no key is known */
	assert_string_equal(vigil_json_unknown_key(o, keys, tiny, sizeof tiny), "dryrun");
	assert_string_equal(tiny, "txn, dr"); /* cut, still a string */
	assert_null(vigil_json_unknown_key(json_array_get(NULL, 0), keys, NULL, 0));
	json_decref(o);
	json_decref(ok);
	json_decref(one);
}

static void
test_json(void **state)
{
	json_error_t jerr;
	json_t *o;
	vigil_txn t;
	char err[160];

	(void)state;
	o = json_loads("{\"txn_id\":\"a\",\"card_id\":\"c\",\"merchant_id\":\"m\","
	    "\"currency\":\"EUR\",\"amount\":\"12.30\",\"event_time\":\"2025-11-21T10:00:00Z\","
	    "\"channel\":\"pos\",\"location\":{\"latitude\":1.5,\"longitude\":2.5},\"mcc\":5999}",
	    0, &jerr);
	assert_non_null(o);
	assert_int_equal(from_json_msg(o, &t, err, sizeof err), VIGIL_OK);
	assert_int_equal(t.amount_minor, 1230);
	assert_int_equal(t.event_time_ms, 1763719200000LL);
	assert_int_equal(t.channel, VIGIL_CHANNEL_POS);
	assert_true(t.has_location);
	assert_int_equal(t.mcc, 5999);
	assert_int_equal(vigil_txn_validate(&t, NULL), VIGIL_OK);
	{
		json_t *back = vigil_txn_to_json(&t);
		vigil_txn t2;
		assert_int_equal(from_json_msg(back, &t2, err, sizeof err), VIGIL_OK);
		assert_memory_equal(&t, &t2, sizeof t);
		json_decref(back);
	}
	json_decref(o);

	/* Errors name the field. */
	o = json_loads("{\"currency\":\"EUR\",\"amount\":\"1.234\"}", 0, &jerr);
	assert_int_equal(from_json_msg(o, &t, err, sizeof err), VIGIL_EINVAL);
	assert_string_equal(err, "amount: \"1.234\" is not a non-negative decimal with at most 2 decimals");
	json_decref(o);
	o = json_loads("{\"card_id\":7}", 0, &jerr);
	assert_int_equal(from_json_msg(o, &t, err, sizeof err), VIGIL_EINVAL);
	assert_string_equal(err, "card_id: must be a string");
	json_decref(o);
	/* a misspelt key is refused by name, not read as an absent field */
	o = json_loads("{\"card_id\":\"c\",\"channnel\":\"ecom\"}", 0, &jerr);
	assert_int_equal(from_json_msg(o, &t, err, sizeof err), VIGIL_EINVAL);
	assert_string_equal(err, "channnel: unknown key (docs/protocol.md lists a transaction's)");
	json_decref(o);
	o = json_loads("{\"lat\":1}", 0, &jerr);
	assert_int_equal(from_json_msg(o, &t, err, sizeof err), VIGIL_EINVAL);
	assert_string_equal(err, "location: latitude and longitude go together");
	json_decref(o);
	o = json_loads("[1]", 0, &jerr);
	assert_int_equal(from_json_msg(o, &t, err, sizeof err), VIGIL_EINVAL);
	json_decref(o);
}

/*
 * Numbers given as strings are read the same way for every numeric field
 * (issue 18: lat "60.2" was refused while amount "12.5" was accepted): the
 * whole string in JSON's number syntax, accepted; anything else in it,
 * refused, for every field alike.
 */
static void
test_json_number_strings(void **state)
{
	static const char *const good =
	    "{\"txn_id\":\"a\",\"card_id\":\"c\",\"merchant_id\":\"m\",\"currency\":\"EUR\","
	    "\"amount\":\"12.5\",\"amount_minor\":\"1250\",\"event_time_ms\":\"1763719200000\","
	    "\"mcc\":\"0742\",\"channel\":\"2\",\"lat\":\"60.2\",\"lon\":\"-1.5e1\"}";
	static const struct {
		const char *key, *value, *field;
	} bad[] = {
		{ "amount_minor", "\"12.5\"", "amount_minor" },
		{ "amount_minor", "\" 12\"", "amount_minor" },
		{ "amount_minor", "\"+12\"", "amount_minor" },
		{ "event_time_ms", "\"1e12\"", "event_time_ms" },
		{ "event_time_ms", "\"99999999999999999999\"", "event_time_ms" },
		{ "mcc", "\"0x10\"", "mcc" },
		{ "mcc", "\"\"", "mcc" },
		{ "lat", "\"60.2x\"", "lat" },
		{ "lat", "\"inf\"", "lat" },
		{ "lat", "\"nan\"", "lat" },
		{ "lat", "\".5\"", "lat" },
		{ "lat", "\"1e999\"", "lat" },
		{ "amount", "\"12.\"", "amount" },
		{ "amount", "\"1e1\"", "amount" },
		{ "amount", "\" 12.5\"", "amount" },
	};
	json_error_t jerr;
	vigil_errinfo ei;
	vigil_txn t;
	json_t *o;

	(void)state;
	o = json_loads(good, 0, &jerr);
	assert_non_null(o);
	assert_int_equal(vigil_txn_from_json(o, &t, &ei), VIGIL_OK);
	assert_int_equal(t.amount_minor, 1250);
	assert_int_equal(t.event_time_ms, 1763719200000LL);
	assert_int_equal(t.mcc, 742);
	assert_int_equal(t.channel, VIGIL_CHANNEL_ECOM);
	assert_true(t.has_location);
	assert_true(t.lat == 60.2);
	assert_true(t.lon == -15.0);
	assert_int_equal(vigil_txn_validate(&t, NULL), VIGIL_OK);
	json_decref(o);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char text[512];

		snprintf(text, sizeof text, "{\"currency\":\"EUR\",\"lat\":1,\"lon\":1,\"%s\":%s}",
		    bad[i].key, bad[i].value);
		if (strcmp(bad[i].key, "lat") == 0)
			snprintf(text, sizeof text, "{\"lon\":1,\"lat\":%s}", bad[i].value);
		o = json_loads(text, 0, &jerr);
		assert_non_null(o);
		assert_int_equal(vigil_txn_from_json(o, &t, &ei), VIGIL_EINVAL);
		assert_string_equal(ei.field, bad[i].field);
		json_decref(o);
	}
}

/*
 * The input conveniences are second spellings of a field: when both are
 * given they must agree, or the transaction is refused rather than scored
 * with one of them picked silently (duplicate keys are refused the same way).
 */
static void
test_json_two_spellings(void **state)
{
	static const struct {
		const char *extra, *err;
	} bad[] = {
		{ "\"amount_minor\":100,\"amount\":\"15.00\"", "amount: " },
		{ "\"amount_minor\":100,\"amount\":15", "amount: " },
		{ "\"event_time_ms\":1763719200000,\"event_time\":\"2025-11-21T11:00:00Z\"",
		    "event_time: " },
		{ "\"event_time_ms\":1763719200000,\"event_time\":\"yesterday\"", "event_time: " },
		{ "\"location\":{\"latitude\":1.5,\"longitude\":2.5},\"lat\":1.5,\"lon\":3",
		    "location: " },
		{ "\"location\":{\"latitude\":1.5,\"longitude\":2.5},\"lat\":1.5",
		    "location: " },
	};
	static const char *const good[] = {
		"\"amount_minor\":1500,\"amount\":\"15.00\"",
		"\"amount_minor\":1500,\"amount\":15",
		"\"event_time_ms\":1763719200000,\"event_time\":\"2025-11-21T10:00:00Z\"",
		"\"location\":{\"latitude\":1.5,\"longitude\":2.5},\"lat\":1.5,\"lon\":2.5",
	};
	json_error_t jerr;
	char text[300], err[160];
	vigil_txn t;

	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		json_t *o;

		snprintf(text, sizeof text, "{\"currency\":\"EUR\",%s}", bad[i].extra);
		o = json_loads(text, 0, &jerr);
		assert_non_null(o);
		err[0] = '\0';
		if (from_json_msg(o, &t, err, sizeof err) != VIGIL_EINVAL ||
		    strncmp(err, bad[i].err, strlen(bad[i].err)) != 0)
			fail_msg("%s: accepted or wrong error: %s", text, err);
		json_decref(o);
	}
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		json_t *o;

		snprintf(text, sizeof text, "{\"currency\":\"EUR\",%s}", good[i]);
		o = json_loads(text, 0, &jerr);
		assert_non_null(o);
		if (from_json_msg(o, &t, err, sizeof err) != VIGIL_OK)
			fail_msg("%s: %s", text, err);
		json_decref(o);
	}
}

/* A check made after reading (vigil_txn_validate, the server's event-time
 * window) names the key the sender wrote: "event_time" or "amount" when
 * only the second spelling was given, the first one otherwise. */
static void
test_json_key_named(void **state)
{
	static const struct {
		const char *text, *field, *want;
	} cases[] = {
		{ "{\"event_time\":\"2025-11-21T10:00:00Z\"}", "event_time_ms", "event_time" },
		{ "{\"event_time_ms\":1}", "event_time_ms", "event_time_ms" },
		{ "{\"event_time_ms\":1,\"event_time\":\"x\"}", "event_time_ms", "event_time_ms" },
		{ "{\"amount\":\"1.00\"}", "amount_minor", "amount" },
		{ "{\"amount_minor\":100}", "amount_minor", "amount_minor" },
		{ "{\"amount\":\"1.00\"}", "currency", "currency" },
		{ "{}", "event_time_ms", "event_time_ms" },
	};
	json_error_t jerr;

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		json_t *o = json_loads(cases[i].text, 0, &jerr);

		assert_non_null(o);
		if (strcmp(vigil_txn_json_key(o, cases[i].field), cases[i].want) != 0)
			fail_msg("%s, %s: named %s, not %s", cases[i].text, cases[i].field,
			    vigil_txn_json_key(o, cases[i].field), cases[i].want);
		json_decref(o);
	}
}

/* A decimal amount too large for int64 minor units is refused with the
 * amount's own message, not wrapped around (CLF and UYW have 4 decimals:
 * 10^15 whole units would be 10^19 minor units). */
static void
test_json_amount_overflow(void **state)
{
	static const char *const amounts[] = {
		"\"1000000000000000\"", "\"922337203685478\"", "\"999999999999999.9999\"",
		"1000000000000000",
	};
	json_error_t jerr;
	char text[200], err[160];
	vigil_txn t;

	(void)state;
	for (size_t i = 0; i < sizeof amounts / sizeof amounts[0]; i++) {
		json_t *o;

		snprintf(text, sizeof text, "{\"currency\":\"CLF\",\"amount\":%s}", amounts[i]);
		o = json_loads(text, 0, &jerr);
		assert_non_null(o);
		assert_int_equal(from_json_msg(o, &t, err, sizeof err), VIGIL_EINVAL);
		assert_memory_equal(err, "amount: ", 8);
		json_decref(o);
	}
	/* The largest the validation accepts still converts exactly. */
	{
		json_t *o = json_loads("{\"currency\":\"CLF\",\"amount\":\"99999999999.9999\"}",
		    0, &jerr);

		assert_int_equal(from_json_msg(o, &t, err, sizeof err), VIGIL_OK);
		assert_int_equal(t.amount_minor, 999999999999999LL);
		json_decref(o);
	}
}

/* An amount string is read whole: a digit past the 63rd byte is not cut off
 * (1.00 followed by 70 zeros and a 5 has more decimals than EUR has). */
static void
test_json_amount_long(void **state)
{
	json_error_t jerr;
	char text[300], err[160];
	vigil_txn t;
	json_t *o;
	int n;

	(void)state;
	n = snprintf(text, sizeof text, "{\"currency\":\"EUR\",\"amount\":\"1.");
	for (int i = 0; i < 70; i++)
		text[n++] = '0';
	snprintf(text + n, sizeof text - (size_t)n, "5\"}");
	o = json_loads(text, 0, &jerr);
	assert_non_null(o);
	assert_int_equal(from_json_msg(o, &t, err, sizeof err), VIGIL_EINVAL);
	assert_memory_equal(err, "amount: ", 8);
	json_decref(o);
	/* Trailing zeros alone are still fine, however many. */
	text[n] = '\0';
	snprintf(text + n, sizeof text - (size_t)n, "\"}");
	o = json_loads(text, 0, &jerr);
	assert_non_null(o);
	assert_int_equal(from_json_msg(o, &t, err, sizeof err), VIGIL_OK);
	assert_int_equal(t.amount_minor, 100);
	json_decref(o);
}

/* A JSON number amount: binary representation error is rounded away (12.34,
 * 0.07, 1e12 EUR), but more decimals than the currency has are refused as
 * in a string (12.345 EUR, 0.001 EUR, 1.5 JPY), not rounded to an amount
 * the client did not send. */
static void
test_json_amount_real(void **state)
{
	static const struct {
		const char *amount, *currency;
		int64_t     minor; /* -1: refused */
	} cases[] = {
		{ "12.34", "EUR", 1234 }, { "0.07", "EUR", 7 }, { "19.99", "USD", 1999 },
		{ "1e12", "EUR", 100000000000000LL }, { "1500.0", "JPY", 1500 },
		{ "1.2345", "CLF", 12345 }, { "12.345", "EUR", -1 }, { "0.001", "EUR", -1 },
		{ "1.5", "JPY", -1 }, { "0.005", "USD", -1 }, { "1.23456", "CLF", -1 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		json_error_t jerr;
		char text[160], err[200];
		vigil_txn t;
		json_t *o;

		snprintf(text, sizeof text, "{\"currency\":\"%s\",\"amount\":%s}",
		    cases[i].currency, cases[i].amount);
		o = json_loads(text, 0, &jerr);
		assert_non_null(o);
		assert_true(json_is_real(json_object_get(o, "amount")));
		if (cases[i].minor >= 0) {
			if (from_json_msg(o, &t, err, sizeof err) != VIGIL_OK)
				fail_msg("%s: %s", text, err);
			assert_int_equal(t.amount_minor, cases[i].minor);
		} else {
			assert_int_equal(from_json_msg(o, &t, err, sizeof err), VIGIL_EINVAL);
			assert_non_null(strstr(err, "has more decimals than"));
			assert_non_null(strstr(err, cases[i].currency));
		}
		json_decref(o);
	}
}

/* The one error object (docs/tools.md, "JSON errors"): code, message, and
 * where with only the parts the errinfo has. */
static void
test_error_json(void **state)
{
	vigil_errinfo e;
	json_t *o, *err, *where;
	char *text;

	(void) state;
	vigil_errinfo_set(&e, "txn.currency", "currency \"EUX\" is not an active ISO 4217 code");
	o = vigil_error_body(vigil_error_code(VIGIL_EINVAL), &e);
	assert_non_null(o);
	text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	assert_string_equal(text, "{\"error\":{\"code\":\"INVALID\",\"message\":\"currency "
	    "\\\"EUX\\\" is not an active ISO 4217 code\",\"where\":{\"field\":\"txn.currency\"}}}");
	free(text);
	json_decref(o);

	/* a text file: file, line, column; a binary one: file and offset */
	vigil_errinfo_set(&e, "amount", "amount: not a number");
	snprintf(e.file, sizeof e.file, "t.csv");
	e.line = 3;
	e.col = 7;
	err = vigil_error_json("INVALID", &e);
	where = json_object_get(err, "where");
	assert_string_equal(json_string_value(json_object_get(where, "file")), "t.csv");
	assert_int_equal(json_integer_value(json_object_get(where, "line")), 3);
	assert_int_equal(json_integer_value(json_object_get(where, "column")), 7);
	assert_null(json_object_get(where, "offset"));
	json_decref(err);
	vigil_errinfo_set(&e, NULL, "bad frame");
	snprintf(e.file, sizeof e.file, "seg-000003.log");
	e.offset = 40960;
	err = vigil_error_json(vigil_error_code(VIGIL_ECORRUPT), &e);
	where = json_object_get(err, "where");
	assert_int_equal(json_integer_value(json_object_get(where, "offset")), 40960);
	assert_null(json_object_get(where, "line"));
	assert_null(json_object_get(where, "field"));
	json_decref(err);

	/* nothing known: no where; NULL errinfo: an empty message */
	vigil_errinfo_set(&e, NULL, "out of memory");
	err = vigil_error_json(vigil_error_code(VIGIL_ENOMEM), &e);
	assert_string_equal(json_string_value(json_object_get(err, "code")), "INTERNAL");
	assert_null(json_object_get(err, "where"));
	json_decref(err);
	err = vigil_error_json("NOT_FOUND", NULL);
	assert_string_equal(json_string_value(json_object_get(err, "message")), "");
	json_decref(err);
	assert_string_equal(vigil_error_code(VIGIL_ENOTFOUND), "NOT_FOUND");
	assert_string_equal(vigil_error_code(VIGIL_ESYNTAX), "INVALID");
	assert_string_equal(vigil_error_code(VIGIL_EBUSY), "BUSY");
}

/* A vigild address needs its scheme; the one check of the programs' flags
 * and of vigil_client_open (common/cli.h). */
static void
test_cli_url_ok(void **state)
{
	static const char *good[] = { "tcp://127.0.0.1:9465", "tls+tcp://h:1", "ipc:///tmp/v",
		"foo://x" };
	static const char *bad[] = { "127.0.0.1:9465", "localhost", "", "tcp:/h:1", "ipc:/tmp" };

	(void)state;
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
		assert_true(vigil_cli_url_ok(good[i]));
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_false(vigil_cli_url_ok(bad[i]));
}

/* The command-line number parsers: the range, whole strings only, no sign;
 * a refusal is a usage error and leaves *ret as it was. */
static void
test_cli_parse(void **state)
{
	uint64_t u = 7;
	uint32_t w = 7;
	double d = 7;

	(void)state;
	assert_int_equal(vigil_cli_parse_u64("t", "n", "42", 1, 100, &u), VIGIL_EXIT_OK);
	assert_int_equal(u, 42);
	assert_int_equal(vigil_cli_parse_u64("t", "n", "18446744073709551615", 0, UINT64_MAX, &u),
	    VIGIL_EXIT_OK);
	assert_true(u == UINT64_MAX);
	u = 7;
	static const char *bad_u[] = { "", "0", "101", "-1", "+5", " 5", "5x", "1e2",
		"18446744073709551616" };
	for (size_t i = 0; i < sizeof bad_u / sizeof bad_u[0]; i++) {
		assert_int_equal(vigil_cli_parse_u64("t", "n", bad_u[i], 1, 100, &u), VIGIL_EXIT_USAGE);
		assert_int_equal(u, 7);
	}
	assert_int_equal(vigil_cli_parse_u32("t", "n", "4294967295", 1, UINT32_MAX, &w), VIGIL_EXIT_OK);
	assert_true(w == UINT32_MAX);
	w = 7;
	assert_int_equal(vigil_cli_parse_u32("t", "n", "4294967296", 1, UINT32_MAX, &w),
	    VIGIL_EXIT_USAGE);
	assert_int_equal(w, 7);

	assert_int_equal(vigil_cli_parse_double("t", "x", "0.5", 0, true, 1, &d), VIGIL_EXIT_OK);
	assert_true(d == 0.5);
	assert_int_equal(vigil_cli_parse_double("t", "x", "0", 0, false, HUGE_VAL, &d), VIGIL_EXIT_OK);
	assert_true(d == 0);
	d = 7;
	static const char *bad_d[] = { "", "0", "1.5", "x", "0.5s", "nan", "inf" };
	for (size_t i = 0; i < sizeof bad_d / sizeof bad_d[0]; i++) {
		assert_int_equal(vigil_cli_parse_double("t", "x", bad_d[i], 0, true, 1, &d),
		    VIGIL_EXIT_USAGE);
		assert_true(d == 7);
	}
	assert_int_equal(vigil_cli_parse_double("t", "x", "-1", 0, false, HUGE_VAL, &d),
	    VIGIL_EXIT_USAGE);
}

/* vigil_mem_populate: every whole page of the range resident afterwards
 * (mincore), none of the partial pages at its ends, and the bytes kept. */
static void
test_mem_populate(void **state)
{
	long pg = sysconf(_SC_PAGESIZE);
	size_t len = 16 * (size_t)pg, np = len / (size_t)pg;
	unsigned char vec[16];
	uint8_t *m;

	(void)state;
	m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(m != MAP_FAILED);
	assert_int_equal(mincore(m, len, vec), 0);
	for (size_t i = 0; i < np; i++)
		assert_int_equal(vec[i] & 1, 0); /* fresh: nothing present */
	m[2 * pg] = 42;
	/* from the middle of page 1 to the middle of page 14: pages 2-13 */
	assert_true(vigil_mem_populate(m + pg + pg / 2, 13 * (size_t)pg));
	assert_int_equal(mincore(m, len, vec), 0);
	assert_int_equal(vec[0] & 1, 0);
	assert_int_equal(vec[1] & 1, 0);
	for (size_t i = 2; i <= 13; i++)
		assert_int_equal(vec[i] & 1, 1);
	assert_int_equal(vec[14] & 1, 0);
	assert_int_equal(vec[15] & 1, 0);
	assert_int_equal(m[2 * pg], 42);
	assert_int_equal(m[3 * pg], 0);
	assert_true(vigil_mem_populate(m, 10)); /* no whole page: nothing to do */
	assert_false(vigil_mem_populate(NULL, len));
	assert_int_equal(munmap(m, len), 0);
	/* a read-only mapping cannot be populated for writing: refused, no crash */
	m = mmap(NULL, len, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(m != MAP_FAILED);
	assert_false(vigil_mem_populate(m, len));
	assert_int_equal(munmap(m, len), 0);
}

/* vigil_call_bounded: a call that returns is reported done, its effect
 * seen; one that blocks past the bound is reported not done and left to
 * finish alone, and when it does the state is freed by its thread (ASan's
 * leak check and use-after-free detection cover that half). */
typedef struct bounded_arg {
	pthread_mutex_t mu;
	pthread_cond_t  cv;
	bool            release, ran;
} bounded_arg;

static void
bounded_quick(void *p)
{
	((bounded_arg *)p)->ran = true;
}

static void
bounded_blocks(void *p)
{
	bounded_arg *a = p;

	pthread_mutex_lock(&a->mu);
	while (!a->release)
		pthread_cond_wait(&a->cv, &a->mu);
	a->ran = true;
	pthread_cond_broadcast(&a->cv);
	pthread_mutex_unlock(&a->mu);
}

static void
test_call_bounded(void **state)
{
	static bounded_arg a = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, false };

	(void)state;
	assert_true(vigil_call_bounded(bounded_quick, &a, 10000));
	assert_true(a.ran);
	a.ran = false;
	assert_false(vigil_call_bounded(bounded_blocks, &a, 50));
	pthread_mutex_lock(&a.mu);
	assert_false(a.ran);
	a.release = true;
	pthread_cond_broadcast(&a.cv);
	while (!a.ran)
		pthread_cond_wait(&a.cv, &a.mu);
	pthread_mutex_unlock(&a.mu);
	usleep(100000); /* the abandoned thread frees its state and exits */
}

/* vigil_deadline_after: the clock asked for, plus ms, normalised (a sum of
 * nanoseconds past a second carries into the seconds). */
static void
test_deadline_after(void **state)
{
	static const clockid_t clk[] = { CLOCK_REALTIME, CLOCK_MONOTONIC };
	static const uint64_t ms[] = { 0, 1, 999, 1000, 1999, 86400000 };

	(void)state;
	for (size_t c = 0; c < sizeof clk / sizeof clk[0]; c++)
		for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++) {
			struct timespec lo, hi, d;
			int64_t nlo, nhi, nd;

			clock_gettime(clk[c], &lo);
			vigil_deadline_after(clk[c], &d, ms[i]);
			clock_gettime(clk[c], &hi);
			assert_true(d.tv_nsec >= 0 && d.tv_nsec < 1000000000L);
			nlo = (int64_t)lo.tv_sec * 1000000000LL + lo.tv_nsec;
			nhi = (int64_t)hi.tv_sec * 1000000000LL + hi.tv_nsec;
			nd = (int64_t)d.tv_sec * 1000000000LL + d.tv_nsec - (int64_t)ms[i] * 1000000LL;
			assert_true(nd >= nlo && nd <= nhi);
		}
}

/* vigil_splitmix64: the reference stream of state 0 (Vigna's splitmix64.c),
 * which vigil-gen's seeds and the nightly's training sample depend on; the
 * state advances by the golden-ratio increment; vigil_unit_double maps the
 * top 53 bits onto [0, 1). */
static void
test_splitmix(void **state)
{
	uint64_t s = 0;

	(void)state;
	assert_true(vigil_splitmix64(&s) == 0xe220a8397b1dcdafull);
	assert_true(s == 0x9e3779b97f4a7c15ull);
	assert_true(vigil_splitmix64(&s) == 0x6e789e6aa1b965f4ull);
	assert_true(vigil_splitmix64(&s) == 0x06c45d188009454full);
	assert_true(vigil_unit_double(0) == 0.0);
	assert_true(vigil_unit_double(UINT64_MAX) == 1.0 - 0x1p-53);
	assert_true(vigil_unit_double(1ull << 63) == 0.5);
}

/* One UTF-8 rule for messages (vigil_utf8_line) and rule-file strings
 * (vigil_utf8_seq): each byte of no well-formed sequence is one '?', a
 * good sequence after it is kept; controls become '?'. */
static void
test_utf8(void **state)
{
	char m[] = "caf\xe9 \xc3\xa9\t\xf0\x9f\x92\xb3 \xc0\xaf \xed\xa0\x80 \xc3";

	(void)state;
	assert_int_equal(vigil_utf8_seq("a", 1), 1);
	assert_int_equal(vigil_utf8_seq("\xc3\xa9", 2), 2);
	assert_int_equal(vigil_utf8_seq("\xe2\x82\xac", 3), 3);
	assert_int_equal(vigil_utf8_seq("\xf0\x9f\x92\xb3", 4), 4);
	assert_int_equal(vigil_utf8_seq("\xf0\x9f\x92\xb3", 3), 0); /* cut off by len */
	assert_int_equal(vigil_utf8_seq("\xf4\x90\x80\x80", 4), 0); /* over U+10FFFF */
	assert_int_equal(vigil_utf8_seq("\xe0\x80\x80", 3), 0);     /* overlong */
	assert_int_equal(vigil_utf8_seq("\x80", 1), 0);
	assert_int_equal(vigil_utf8_seq("", 0), 0);
	vigil_utf8_line(m);
	assert_string_equal(m, "caf? \xc3\xa9?\xf0\x9f\x92\xb3 ?? ??? ?");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_errors),   cmocka_unit_test(test_currency),
		cmocka_unit_test(test_validate_ids), cmocka_unit_test(test_validate_ip),
		cmocka_unit_test(test_validate), cmocka_unit_test(test_time),
		cmocka_unit_test(test_haversine), cmocka_unit_test(test_json), cmocka_unit_test(test_json_errinfo),
		cmocka_unit_test(test_json_unknown_key),
		cmocka_unit_test(test_json_amount_overflow), cmocka_unit_test(test_json_amount_long),
		cmocka_unit_test(test_json_two_spellings), cmocka_unit_test(test_json_key_named), cmocka_unit_test(test_json_number_strings), cmocka_unit_test(test_json_amount_real),
		cmocka_unit_test(test_error_json), cmocka_unit_test(test_cli_parse),
		cmocka_unit_test(test_cli_url_ok),
		cmocka_unit_test(test_mem_populate), cmocka_unit_test(test_call_bounded),
		cmocka_unit_test(test_deadline_after), cmocka_unit_test(test_splitmix),
		cmocka_unit_test(test_utf8),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
