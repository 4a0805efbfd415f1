/* SPDX-License-Identifier: MIT */
/*
 * tests/tools/test_csv.c - the CSV interchange format (docs/csv.md): good
 * rows, exact amounts, locations converted as strtod does, files read in
 * blocks as in memory, every error text down to the line number, caps, the
 * header rules and the writer's round trip.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "csv.h"

#define HDR "txn_id,event_time,card_id,merchant_id,amount"

static csv_reader *
open_text(const char *text, const csv_opts *opts)
{
	csv_reader *rd = NULL;
	csv_diag diag = { .msg = "" };

	if (csv_reader_open_mem("t.csv", text, strlen(text), opts, &rd, &diag) != VIGIL_OK)
		fail_msg("open failed: %s", vigil_errinfo_format(&diag, (char[512]){ 0 }, 512));
	return rd;
}

/* Reads every record; collects the error lines joined by '\n' into errs.
 * Each error's parts (vigil_errinfo) are checked: the file and line, and
 * the reason in msg without them, led by the column (field) when there is
 * one; errs holds what vigil_errinfo_format prints, "FILE:LINE: reason". */
static uint64_t
read_all(csv_reader *rd, char *errs, size_t errlen)
{
	csv_row row;
	csv_diag diag;
	vigil_err rv;
	uint64_t good = 0;
	size_t n = 0;

	errs[0] = '\0';
	while ((rv = csv_reader_next(rd, &row, &diag)) != VIGIL_ENOTFOUND) {
		if (rv == VIGIL_OK) {
			good++;
			continue;
		}
		assert_true(rv == VIGIL_EINVAL || rv == VIGIL_ETOOBIG);
		{
			char want[256], line[sizeof diag.file + sizeof diag.msg + 32];

			/* a column's reason does not repeat the column; the record's
			 * says it is about the record */
			snprintf(want, sizeof want, "%s: ", diag.field[0] != '\0' ? diag.field :
			    "record");
			if (diag.line == 0 || strcmp(diag.file, "t.csv") != 0 ||
			    (strncmp(diag.msg, want, strlen(want)) == 0) != (diag.field[0] == '\0'))
				fail_msg("detail %s:%u (%s) does not match the reason %s", diag.file,
				    diag.line, want, diag.msg);
			n += (size_t)snprintf(errs + n, errlen - n, "%s\n",
			    vigil_errinfo_format(&diag, line, sizeof line));
		}
	}
	return good;
}

static void
test_good_rows(void **state)
{
	const char *text = "txn_id,event_time,card_id,merchant_id,terminal_id,amount,currency,mcc,"
	    "country,channel,device_id,ip,lat,lon,label,label_time,fraud_pattern\n"
	    "t1,2024-03-01T10:00:00.250Z,c1,m1,m1-t1,12.5,EUR,5411,FR,pos,,,48.85,2.35,0,,\n"
	    "t2,2024-03-01T12:00:00+02:00,c2,\"m2\",,1250,jpy,,JP,ecom,d1,10.0.0.1,,,1,"
	    "2024-03-08T00:00:00Z,card_testing\n";
	csv_reader *rd = open_text(text, NULL);
	csv_row row;
	csv_diag diag;

	(void)state;
	assert_null(csv_reader_warning(rd));
	assert_true(csv_reader_has_col(rd, CSV_COL_FRAUD_PATTERN));
	assert_int_equal(csv_reader_next(rd, &row, &diag), VIGIL_OK);
	assert_string_equal(row.txn.txn_id, "t1");
	assert_int_equal(row.txn.event_time_ms, 1709287200250LL);
	assert_int_equal(row.txn.amount_minor, 1250);
	assert_string_equal(row.txn.currency, "EUR");
	assert_int_equal(row.txn.mcc, 5411);
	assert_int_equal(row.txn.channel, VIGIL_CHANNEL_POS);
	assert_true(row.txn.has_location);
	assert_int_equal(row.label, CSV_LABEL_LEGIT);
	assert_int_equal(row.line, 2);
	assert_int_equal(csv_reader_next(rd, &row, &diag), VIGIL_OK);
	assert_string_equal(row.txn.merchant_id, "m2");
	assert_int_equal(row.txn.event_time_ms, 1709287200000LL);
	assert_string_equal(row.txn.currency, "JPY");
	assert_int_equal(row.txn.amount_minor, 1250);
	assert_false(row.txn.has_location);
	assert_int_equal(row.label, CSV_LABEL_FRAUD);
	assert_int_equal(row.label_time_ms, 1709856000000LL);
	assert_string_equal(row.fraud_pattern, "card_testing");
	assert_int_equal(csv_reader_next(rd, &row, &diag), VIGIL_ENOTFOUND);
	csv_reader_close(rd);
}

/* An ip is read in the one spelling vigild keeps (docs/protocol.md), so a
 * replay counts an address as vigild did; no address: the row is refused. */
static void
test_ip_one_spelling(void **state)
{
	const char *text = HDR ",ip\n"
	    "t1,2024-03-01T10:00:00Z,c1,m1,1,::FFFF:10.0.0.1\n"
	    "t2,2024-03-01T10:00:00Z,c1,m1,1,2001:DB8:0:0:0:0:0:1\n"
	    "t3,2024-03-01T10:00:00Z,c1,m1,1,999.1.1.1\n"
	    "t4,2024-03-01T10:00:00Z,c1,m1,1,fe80::1%eth0\n";
	csv_reader *rd = open_text(text, NULL);
	csv_row row;
	csv_diag diag;
	char line[512];

	(void)state;
	assert_int_equal(csv_reader_next(rd, &row, &diag), VIGIL_OK);
	assert_string_equal(row.txn.ip, "10.0.0.1");
	assert_int_equal(csv_reader_next(rd, &row, &diag), VIGIL_OK);
	assert_string_equal(row.txn.ip, "2001:db8::1");
	assert_int_equal(csv_reader_next(rd, &row, &diag), VIGIL_EINVAL);
	assert_string_equal(vigil_errinfo_format(&diag, line, sizeof line),
	    "t.csv:4: ip: ip \"999.1.1.1\" is not an IPv4 or IPv6 address");
	assert_int_equal(csv_reader_next(rd, &row, &diag), VIGIL_EINVAL);
	assert_string_equal(diag.field, "ip");
	assert_int_equal(csv_reader_next(rd, &row, &diag), VIGIL_ENOTFOUND);
	csv_reader_close(rd);
}

/* The old conversion: strtod, whole field, finite, in range. */
static bool
like_strtod(const char *s, double lo, double hi, double *ret)
{
	char *end;
	double v;

	if (*s == '\0')
		return false;
	errno = 0;
	v = strtod(s, &end);
	if (*end != '\0' || errno != 0 || !isfinite(v) || v < lo || v > hi)
		return false;
	*ret = v;
	return true;
}

/* lat/lon: the short decimal path gives strtod's double, bit for bit, and
 * the same accept/reject decisions on odd forms. */
static void
test_location_like_strtod(void **state)
{
	static const char *const fixed[] = {
		"0", "-0", "-0.0", "0.1", "48.85", "2.35", "-33.86785", "89.999999999999",
		"90", "90.000000000001", "-90", "-90.5", "12.3456789012345", "12.34567890123456",
		"1.", ".5", "-.5", "+1.5", "1e1", "0x10", " 1", "1 ", "inf", "nan", "1..2",
		"--1", "-", "00000000000000012.5", "7.00000000000000000000001",
		"45.123456789012345678901234567890",
	};
	uint32_t seed = 7;
	char text[256], v[64];
	csv_row row;
	csv_diag diag;

	(void)state;
	for (int i = 0; i < 20000 + (int)(sizeof fixed / sizeof fixed[0]); i++) {
		double want = 0;
		bool ok;
		csv_reader *rd;
		vigil_err rv;

		if (i < (int)(sizeof fixed / sizeof fixed[0])) {
			snprintf(v, sizeof v, "%s", fixed[i]);
		} else {
			/* random digits, 0 to 17 places: both sides of the 15-digit limit */
			int n, places;
			seed = seed * 1103515245u + 12345u;
			places = (int)((seed >> 8) % 18);
			n = snprintf(v, sizeof v, "%s%u", (seed >> 20) & 1 ? "-" : "",
			    (seed >> 12) % 91);
			if (places > 0)
				v[n++] = '.';
			for (int k = 0; k < places; k++) {
				seed = seed * 1103515245u + 12345u;
				v[n++] = (char)('0' + (seed >> 16) % 10);
			}
			v[n] = '\0';
		}
		ok = like_strtod(v, -90.0, 90.0, &want);
		snprintf(text, sizeof text, HDR ",lat,lon\nt1,2024-03-01T10:00:00Z,c1,m1,1,%s,1.5\n", v);
		rd = open_text(text, NULL);
		rv = csv_reader_next(rd, &row, &diag);
		if (ok) {
			if (rv != VIGIL_OK)
				fail_msg("lat \"%s\": %s", v,
				    vigil_errinfo_format(&diag, (char[512]){ 0 }, 512));
			if (memcmp(&row.txn.lat, &want, sizeof want) != 0)
				fail_msg("lat \"%s\": %.17g, strtod %.17g", v, row.txn.lat, want);
		} else if (rv != VIGIL_EINVAL) {
			fail_msg("lat \"%s\" accepted (%.17g), strtod refuses it", v, row.txn.lat);
		}
		csv_reader_close(rd);
	}
}

/* A file read in 64 KiB blocks gives the rows the memory reader gives, with
 * fields, quotes and line ends across block boundaries. */
static void
test_blocks_like_memory(void **state)
{
	char path[] = "/tmp/test-csv-blocks-XXXXXX";
	size_t cap = 1 << 20, len = 0;
	char *text = malloc(cap);
	csv_reader *a = NULL, *b = NULL;
	csv_row ra, rb;
	csv_diag da, db;
	vigil_err va, vb;
	uint64_t rows = 0;
	FILE *f;
	int fd;

	(void)state;
	assert_non_null(text);
	len += (size_t)snprintf(text, cap, HDR ",fraud_pattern\n");
	for (int i = 0; len + 200 < cap && i < 6000; i++) {
		/* ids of varying length, some quoted, some CRLF, a bad row now and then */
		len += (size_t)snprintf(text + len, cap - len,
		    i % 7 == 0 ? "\"t%d\",2024-03-01T10:00:%02dZ,card-%0*d,\"m,%d\",%d.%02d,p%d\r\n"
		               : i % 101 == 0 ? "t%d,2024-03-01T10:00:%02dZ,c\"%0*d,m%d,%d.%02d,p%d\n"
		                              : "t%d,2024-03-01T10:00:%02dZ,card-%0*d,m%d,%d.%02d,p%d\n",
		    i, i % 60, 1 + i % 23, i, i % 50, i % 1000, i % 100, i % 5);
	}
	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, len, f), len);
	fclose(f);
	assert_int_equal(csv_reader_open(path, NULL, &a, &da), VIGIL_OK);
	assert_int_equal(csv_reader_open_mem("m", text, len, NULL, &b, &db), VIGIL_OK);
	assert_true(len > 3 * 65536);
	do {
		va = csv_reader_next(a, &ra, &da);
		vb = csv_reader_next(b, &rb, &db);
		assert_int_equal(va, vb);
		if (va == VIGIL_OK) {
			rows++;
			assert_int_equal(ra.line, rb.line);
			assert_string_equal(ra.txn.txn_id, rb.txn.txn_id);
			assert_string_equal(ra.txn.card_id, rb.txn.card_id);
			assert_string_equal(ra.txn.merchant_id, rb.txn.merchant_id);
			assert_int_equal(ra.txn.amount_minor, rb.txn.amount_minor);
			assert_int_equal(ra.txn.event_time_ms, rb.txn.event_time_ms);
			assert_string_equal(ra.fraud_pattern, rb.fraud_pattern);
		} else if (va != VIGIL_ENOTFOUND) {
			/* same line and reason; only the file differs */
			assert_int_equal(da.line, db.line);
			assert_string_equal(da.msg, db.msg);
			assert_string_equal(da.field, db.field);
		}
	} while (va != VIGIL_ENOTFOUND);
	assert_true(rows > 5000);
	{
		csv_stats sa, sb;
		csv_reader_get_stats(a, &sa);
		csv_reader_get_stats(b, &sb);
		assert_int_equal(sa.rows, sb.rows);
		assert_int_equal(sa.bad_rows, sb.bad_rows);
		assert_int_equal(sa.lines, sb.lines);
		assert_int_equal(sa.bytes, sb.bytes);
		assert_int_equal(sa.bytes, len);
	}
	csv_reader_close(a);
	csv_reader_close(b);
	unlink(path);
	free(text);
}

static void
test_amount_exact(void **state)
{
	static const struct { const char *s; int exp; int64_t want; const char *err; } cases[] = {
		{ "0.07", 2, 7, NULL },
		{ "19.99", 2, 1999, NULL },
		{ "12", 2, 1200, NULL },
		{ "12.", 2, 1200, NULL },
		{ ".5", 2, 50, NULL },
		{ "12.500", 2, 1250, NULL },
		{ "0.125", 3, 125, NULL },
		{ "1250", 0, 1250, NULL },
		{ "9999999999999.99", 2, 999999999999999LL, NULL },
		{ "10000000000000.00", 2, 0, "too large (at most 10^15 minor units)" },
		{ "12.345", 2, 0, "more decimal places than the currency has" },
		{ "1.5", 0, 0, "this currency has no decimal places" },
		{ "-1", 2, 0, "negative amounts are not allowed" },
		{ "1e3", 2, 0, "not a decimal number" },
		{ "12,50", 2, 0, "not a decimal number" },
		{ ".", 2, 0, "not a decimal number" },
		{ "", 2, 0, "required field is empty" },
		{ " 1", 2, 0, "not a decimal number" },
		{ "99999999999999999999999", 2, 0, "too large (at most 10^15 minor units)" },
	};
	char buf[32];

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int64_t v = -1;
		const char *why = NULL;
		vigil_err rv = csv_amount_parse(cases[i].s, strlen(cases[i].s), cases[i].exp, &v, &why);
		if (cases[i].err == NULL) {
			assert_int_equal(rv, VIGIL_OK);
			assert_int_equal(v, cases[i].want);
		} else {
			assert_int_equal(rv, VIGIL_EINVAL);
			assert_string_equal(why, cases[i].err);
			assert_int_equal(v, -1);
		}
	}
	csv_amount_format(1999, 2, buf, sizeof buf);
	assert_string_equal(buf, "19.99");
	csv_amount_format(7, 3, buf, sizeof buf);
	assert_string_equal(buf, "0.007");
	csv_amount_format(1250, 0, buf, sizeof buf);
	assert_string_equal(buf, "1250");
}

static void
test_row_errors_exact(void **state)
{
	const char *text =
	    "txn_id,event_time,card_id,merchant_id,amount,currency,mcc,country,channel,lat,lon,label,label_time\n"
	    "t1,2024-03-01T10:00:00Z,c1,m1,1.234,,,,,,,,\n"              /* 2 */
	    "t2,2024-13-01T10:00:00Z,c1,m1,1,,,,,,,,\n"                  /* 3 */
	    ",2024-03-01T10:00:00Z,c1,m1,1,,,,,,,,\n"                    /* 4 */
	    "t4,2024-03-01T10:00:00Z,c 1,m1,1,,,,,,,,\n"                 /* 5 */
	    "t5,2024-03-01T10:00:00Z,c1,m1,1,EURO,,,,,,,\n"              /* 6 */
	    "t6,2024-03-01T10:00:00Z,c1,m1,1,,54111,,,,,,\n"             /* 7 */
	    "t7,2024-03-01T10:00:00Z,c1,m1,1,,,fr,,,,,\n"                /* 8 */
	    "t8,2024-03-01T10:00:00Z,c1,m1,1,,,,web,,,,\n"               /* 9 */
	    "t9,2024-03-01T10:00:00Z,c1,m1,1,,,,,91,2,,\n"               /* 10 */
	    "t10,2024-03-01T10:00:00Z,c1,m1,1,,,,,45,,,\n"               /* 11 */
	    "t11,2024-03-01T10:00:00Z,c1,m1,1,,,,,,,yes,\n"              /* 12 */
	    "t12,2024-03-01T10:00:00Z,c1,m1,1,,,,,,,1,2024-02-01T00:00:00Z\n" /* 13 */
	    "t13,2024-03-01T10:00:00Z,c1,m1,1,,,,,,,,2024-04-01T00:00:00Z\n"  /* 14 */
	    "t14,2024-03-01T10:00:00Z,c1,m1,1\n"                         /* 15 */
	    "t15,2024-03-01T10:00:00Z,c1,m\"1,1,,,,,,,,\n"               /* 16 */
	    "\"t16\"x,2024-03-01T10:00:00Z,c1,m1,1,,,,,,,,\n"            /* 17 */
	    "t17,2024-03-01T10:00:00Z,c1,\"m1\",1,,,,,,,,\n"             /* 18: good */
	    "t18,1999-03-01T10:00:00Z,c1,m1,1,,,,,,,,\n"                 /* 19 */
	    "t19,2024-03-01T10:00:00Z,c1,m1,1,,,,,,,,\n"                 /* 20: good */
	    "t20,2024-03-01T10:00:00Z,c1,m1,\"1";                        /* 21: unterminated */
	csv_reader *rd = open_text(text, NULL);
	char errs[4096];
	csv_stats st;
	uint64_t good;

	(void)state;
	good = read_all(rd, errs, sizeof errs);
	assert_int_equal(good, 2);
	const char *expect =
	    "t.csv:2: amount: \"1.234\": more decimal places than the currency has (EUR has 2)\n"
	    "t.csv:3: event_time: \"2024-13-01T10:00:00Z\" is not an RFC 3339 time\n"
	    "t.csv:4: txn_id: required field is empty\n"
	    "t.csv:5: card_id: contains a space, quote, comma, backslash or non-printable byte\n"
	    "t.csv:6: currency: \"EURO\" is not an ISO 4217 code\n"
	    "t.csv:7: mcc: \"54111\" is not an integer in 0..9999\n"
	    "t.csv:8: country: \"fr\" is not two upper-case letters (ISO 3166-1 alpha-2)\n"
	    "t.csv:9: channel: \"web\" is not one of pos, ecom, atm, moto, unknown\n"
	    "t.csv:10: lat: \"91\" is not a number in [-90, 90]\n"
	    "t.csv:11: lon: required when lat is given\n"
	    "t.csv:12: label: \"yes\" is not 1, 0 or empty\n"
	    "t.csv:13: label_time: earlier than event_time\n"
	    "t.csv:14: label_time: given without a label\n"
	    "t.csv:15: record: 5 fields, the header has 13\n"
	    "t.csv:16: record: quote inside an unquoted field\n"
	    "t.csv:17: record: text after a closing quote\n"
	    "t.csv:19: event_time: \"1999-03-01T10:00:00Z\" is outside [2000-01-01, 2100-01-01)\n"
	    "t.csv:21: record: unterminated quoted field\n";
	if (strcmp(errs, expect) != 0)
		fail_msg("got:\n%s", errs);
	csv_reader_get_stats(rd, &st);
	assert_int_equal(st.rows, 2);
	assert_int_equal(st.bad_rows, 18);
	csv_reader_close(rd);
}

static void
test_header_errors(void **state)
{
	static const struct { const char *text; vigil_err rv; const char *msg; } cases[] = {
		{ "", VIGIL_ESYNTAX, "h.csv:1: header: empty file (a header row is required)" },
		{ "txn_id,event_time,card_id,merchant_id\n", VIGIL_ESYNTAX,
		  "h.csv:1: amount: required column missing from the header" },
		{ HDR ",Card_ID\n", VIGIL_ESYNTAX, "h.csv:1: card_id: the header names this column twice" },
		{ "txn_id,\"a\"b\n", VIGIL_ESYNTAX, "h.csv:1: header: text after a closing quote" },
	};

	char line[1024];

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		csv_reader *rd = NULL;
		csv_diag diag = { .msg = "" };
		assert_int_equal(csv_reader_open_mem("h.csv", cases[i].text, strlen(cases[i].text),
		    NULL, &rd, &diag), cases[i].rv);
		assert_null(rd);
		/* printed: the message; apart: file, line 1, the column, the reason */
		assert_string_equal(vigil_errinfo_format(&diag, line, sizeof line), cases[i].msg);
		assert_string_equal(diag.file, "h.csv");
		assert_int_equal(diag.line, 1);
		if (strncmp(cases[i].msg, "h.csv:1: header: ", 17) == 0) {
			assert_string_equal(diag.field, "");
			assert_string_equal(diag.msg, cases[i].msg + strlen("h.csv:1: "));
		} else {
			size_t nf = strlen(diag.field);

			assert_true(nf > 0);
			assert_memory_equal(cases[i].msg + 9, diag.field, nf);
			assert_string_equal(diag.msg, cases[i].msg + 9 + nf + 2);
		}
	}
}

static void
test_unknown_columns_warn_once(void **state)
{
	csv_reader *rd = open_text("\xEF\xBB\xBFtxn_id,score,event_time,card_id,merchant_id,amount,note\n"
	    "t1,5,2024-03-01T10:00:00Z,c1,m1,1,\"x,\ny\"\n"
	    "t2,5,2024-03-01T10:00:00Z,c1,m1,1,\"\"\"\"\n", NULL);
	csv_row row;
	csv_diag diag;
	char errs[256];

	(void)state;
	assert_string_equal(csv_reader_warning(rd),
	    "t.csv:1: header: ignoring 2 unknown columns: score, note");
	assert_false(csv_reader_has_col(rd, CSV_COL_LABEL));
	assert_int_equal(csv_reader_next(rd, &row, &diag), VIGIL_OK);
	assert_int_equal(row.line, 2);
	assert_int_equal(row.label, CSV_LABEL_NONE);
	assert_int_equal(read_all(rd, errs, sizeof errs), 1);
	assert_string_equal(errs, "");
	csv_reader_close(rd);
}

/* A byte order mark before a quoted first column name (spreadsheets quote
 * every header field): the mark is skipped, the name is a quoted field. */
static void
test_bom_before_quoted_header(void **state)
{
	csv_reader *rd = open_text("\xEF\xBB\xBF\"txn_id\",\"event_time\",card_id,merchant_id,amount\r\n"
	    "t1,2024-03-01T10:00:00Z,c1,m1,1\r\n", NULL);
	csv_row row;
	csv_diag diag;

	(void)state;
	assert_null(csv_reader_warning(rd));
	assert_int_equal(csv_reader_next(rd, &row, &diag), VIGIL_OK);
	assert_string_equal(row.txn.txn_id, "t1");
	assert_int_equal(row.line, 2);
	assert_int_equal(csv_reader_next(rd, &row, &diag), VIGIL_ENOTFOUND);
	csv_reader_close(rd);
}

static void
test_caps(void **state)
{
	csv_opts opts = { .max_record_bytes = 64, .max_fields = 8 };
	char text[1024];
	char errs[1024];
	csv_reader *rd;

	(void)state;
	snprintf(text, sizeof text, HDR "\n"
	    "t1,2024-03-01T10:00:00Z,c1,m1,1\n"
	    "t2,2024-03-01T10:00:00Z,c1,m1234567890123456789012345678901234567890,1\n"
	    "t3,2024-03-01T10:00:00Z,c1,m1,1,a,b,c,d,e\n"
	    "t4,2024-03-01T10:00:00Z,c1,m1,2\n");
	rd = open_text(text, &opts);
	assert_int_equal(read_all(rd, errs, sizeof errs), 2);
	assert_string_equal(errs,
	    "t.csv:3: record: longer than 64 bytes\n"
	    "t.csv:4: record: more than 8 fields\n");
	csv_reader_close(rd);
}

/* The byte cap counts the record as read (docs/csv.md, Caps): commas and
 * quotes too, not the line ending. 64 bytes pass, 65 do not, with or
 * without quotes, though the fields alone (61 and 51 bytes) are within it. */
static void
test_cap_counts_record_bytes(void **state)
{
	csv_opts opts = { .max_record_bytes = 64, .max_fields = 8 };
	char errs[1024], line[512];
	csv_diag diag;
	csv_reader *rd;

	(void)state;
	rd = open_text(HDR "\n"
	    "t1,2024-03-01T10:00:00Z,c1,mxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx,1\n"
	    "t2,2024-03-01T10:00:00Z,c1,mxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx,1\n"
	    "\"t3\",\"2024-03-01T10:00:00Z\",\"c1\",\"myyyyyyyyyyyyyyyyyyyyyyyy\",\"1\"\r\n"
	    "\"t4\",\"2024-03-01T10:00:00Z\",\"c1\",\"myyyyyyyyyyyyyyyyyyyyyyyyy\",\"1\"\n"
	    "t5,2024-03-01T10:00:00Z,c1,m1,1\n", &opts);
	assert_int_equal(read_all(rd, errs, sizeof errs), 3);
	assert_string_equal(errs,
	    "t.csv:3: record: longer than 64 bytes\n"
	    "t.csv:5: record: longer than 64 bytes\n");
	csv_reader_close(rd);
	/* the header too: 65 bytes with its quotes, 53 without */
	rd = NULL;
	snprintf(line, sizeof line, "\"txn_id\",\"event_time\",\"card_id\",\"merchant_id\","
	    "\"amount\",\"xxxxxxxx\"\n");
	assert_int_equal(strlen(line), 65 + 1);
	assert_int_equal(csv_reader_open_mem("t.csv", line, strlen(line), &opts, &rd, &diag),
	    VIGIL_ETOOBIG);
	assert_null(rd);
	assert_string_equal(vigil_errinfo_format(&diag, line, sizeof line),
	    "t.csv:1: header: longer than 64 bytes");
}

static void
test_crlf_and_blank_lines(void **state)
{
	csv_reader *rd = open_text(HDR "\r\n\r\nt1,2024-03-01T10:00:00Z,c1,m1,1\r\n\n"
	    "t2,2024-03-01T10:00:00Z,c1,m1,2", NULL);
	csv_row row;
	csv_diag diag;

	(void)state;
	assert_int_equal(csv_reader_next(rd, &row, &diag), VIGIL_OK);
	assert_int_equal(row.line, 3);
	assert_int_equal(csv_reader_next(rd, &row, &diag), VIGIL_OK);
	assert_int_equal(row.line, 5);
	assert_int_equal(row.txn.amount_minor, 200);
	assert_int_equal(csv_reader_next(rd, &row, &diag), VIGIL_ENOTFOUND);
	csv_reader_close(rd);
}

static void
test_format_roundtrip(void **state)
{
	csv_row row = { .label = CSV_LABEL_FRAUD };
	char line[1024], text[2048];
	csv_reader *rd;
	csv_row back;
	csv_diag diag;
	size_t n;

	(void)state;
	strcpy(row.txn.txn_id, "t1");
	strcpy(row.txn.card_id, "c1");
	strcpy(row.txn.merchant_id, "m1");
	strcpy(row.fraud_pattern, "skimmed_card");
	strcpy(row.txn.currency, "KWD");
	strcpy(row.txn.country, "KW");
	row.txn.event_time_ms = 1709287200123LL;
	row.txn.amount_minor = 12345;
	row.txn.mcc = 5732;
	row.txn.channel = VIGIL_CHANNEL_ATM;
	row.txn.has_location = true;
	row.txn.lat = 29.375;
	row.txn.lon = 47.98;
	row.label_time_ms = 1709287300000LL;
	strcpy(row.fraud_pattern, "skimmed_card");
	n = csv_row_format(&row, line, sizeof line);
	assert_string_equal(line, "t1,2024-03-01T10:00:00.123Z,c1,m1,,12.345,KWD,5732,KW,"
	    "atm,,,29.37500,47.98000,1,2024-03-01T10:01:40.000Z,skimmed_card\n");
	assert_int_equal(n, strlen(line));
	assert_int_equal(csv_row_format(&row, line, 10), 0);
	snprintf(text, sizeof text, "%s%s", csv_header_line(), line);
	rd = open_text(text, NULL);
	assert_int_equal(csv_reader_next(rd, &back, &diag), VIGIL_OK);
	assert_string_equal(back.txn.txn_id, "t1");
	assert_string_equal(back.txn.merchant_id, "m1");
	assert_int_equal(back.txn.amount_minor, 12345);
	assert_int_equal(back.txn.channel, VIGIL_CHANNEL_ATM);
	assert_int_equal(back.label_time_ms, row.label_time_ms);
	assert_string_equal(back.fraud_pattern, "skimmed_card");
	csv_reader_close(rd);
}

static void
test_open_missing_file(void **state)
{
	csv_reader *rd = NULL;
	csv_diag diag;

	(void)state;
	assert_int_equal(csv_reader_open("/nonexistent/x.csv", NULL, &rd, &diag), VIGIL_ENOTFOUND);
	assert_null(rd);
	assert_string_equal(diag.msg, "cannot open: No such file or directory");
	assert_string_equal(diag.file, "/nonexistent/x.csv");
	assert_int_equal(diag.line, 0);
	assert_string_equal(vigil_errinfo_format(&diag, (char[512]){ 0 }, 512),
	    "/nonexistent/x.csv: cannot open: No such file or directory");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_rows), cmocka_unit_test(test_ip_one_spelling),
		cmocka_unit_test(test_location_like_strtod),
		cmocka_unit_test(test_blocks_like_memory),
		cmocka_unit_test(test_amount_exact),
		cmocka_unit_test(test_row_errors_exact),
		cmocka_unit_test(test_header_errors),
		cmocka_unit_test(test_unknown_columns_warn_once),
		cmocka_unit_test(test_bom_before_quoted_header),
		cmocka_unit_test(test_caps),
		cmocka_unit_test(test_cap_counts_record_bytes),
		cmocka_unit_test(test_crlf_and_blank_lines),
		cmocka_unit_test(test_format_roundtrip),
		cmocka_unit_test(test_open_missing_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
