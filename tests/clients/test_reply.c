/* SPDX-License-Identifier: MIT */
/*
 * tests/clients/test_reply.c - reply decoding of libvigil-client, white box
 * (client_int.h), on the saved fuzz corpus: each input gets exactly the
 * outcome and error text a caller would see.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "client_int.h"

typedef struct input {
	bool    label;
	uint8_t *data;
	size_t  len;
} input;

static input
load(const char *name)
{
	char  path[1024];
	FILE *f;
	input in = { 0 };
	long  n;

	snprintf(path, sizeof path, "%s/tests/fuzz/corpus/reply/%s",
	    getenv("VIGIL_SOURCE_ROOT"), name);
	f = fopen(path, "rb");
	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n >= 1);
	rewind(f);
	in.data = malloc((size_t) n);
	assert_non_null(in.data);
	assert_int_equal(fread(in.data, 1, (size_t) n, f), (size_t) n);
	fclose(f);
	in.label = in.data[0] & 1;
	in.len = (size_t) n;
	return in;
}

static vigil_client_err
decode(const char *name, vigil_client_result *res, vigil_client_errinfo *info)
{
	input            in = load(name);
	vigil_client_err rv;

	memset(info, 0, sizeof *info);
	rv = vc_reply_decode_test(in.data + 1, in.len - 1, in.label, "t-1", res, info);
	free(in.data);
	return rv;
}

static void
test_reply_ok(void **state)
{
	vigil_client_result  r = { 0 };
	vigil_client_errinfo info;

	(void) state;
	assert_int_equal(decode("score_ok", &r, &info), VIGIL_CLIENT_OK);
	assert_string_equal(r.txn_id, "t-1");
	/* a reply of a server from before ScoreReply.score: its field 2 */
	assert_int_equal(r.points, 60);
	assert_true(r.score == 60.0);
	assert_int_equal(r.decision, VIGIL_CLIENT_DECISION_REVIEW);
	assert_int_equal(r.nhits, 2);
	assert_string_equal(r.hits[1].rule, "watch");
	assert_true(r.hits[1].shadow);
	assert_string_equal(r.rules_version, "41d64137bb8ed3d2ef74cf05a8ad7e0c");
	assert_int_equal(r.features_generation, 3);
	assert_int_equal(r.latency_us, 12);
	assert_int_equal(r.server_latency_us, 12); /* the name before issue 18 */
	assert_string_equal(r.replica, "fuzz://replica");
	vigil_client_result_fini(&r);

	assert_int_equal(decode("score_dup", &r, &info), VIGIL_CLIENT_OK);
	assert_true(r.duplicate);
	vigil_client_result_fini(&r);
	/* a reply without txn_id is accepted (only a different one is refused);
	 * the result still names the transaction, the request's */
	assert_int_equal(decode("score_no_txn_id", &r, &info), VIGIL_CLIENT_OK);
	assert_string_equal(r.txn_id, "t-1");
	vigil_client_result_fini(&r);
	assert_int_equal(decode("label_ok", &r, &info), VIGIL_CLIENT_OK);

	/* 100 hits of 200 bytes: over the call's 8 KiB decoding arena */
	assert_int_equal(decode("many_hits_over_arena", &r, &info), VIGIL_CLIENT_OK);
	assert_int_equal(r.nhits, 100);
	assert_string_equal(r.hits[99].rule, "r99");
	assert_int_equal(strlen(r.hits[99].reason), 200);
	vigil_client_result_fini(&r);
}

static void
test_reply_errors(void **state)
{
	static const struct {
		const char      *name;
		vigil_client_err err;
		const char      *message;
		const char      *field;
	} cases[] = {
		{ "score_empty", VIGIL_CLIENT_EPROTO,
		  "fuzz://replica: reply to a score carries no score (kind 0)", "" },
		{ "score_label_kind", VIGIL_CLIENT_EPROTO,
		  "fuzz://replica: reply to a score carries no score (kind 5)", "" },
		{ "health_kind", VIGIL_CLIENT_EPROTO,
		  "fuzz://replica: reply to a score carries no score (kind 6)", "" },
		{ "label_score_kind", VIGIL_CLIENT_EPROTO,
		  "fuzz://replica: reply to a label carries no label (kind 4)", "" },
		{ "score_wrong_txn", VIGIL_CLIENT_EPROTO,
		  "fuzz://replica: reply is for txn_id \"t-2\", not \"t-1\"", "" },
		{ "status_invalid", VIGIL_CLIENT_SINVALID,
		  "fuzz://replica: currency: unknown second line", "txn.currency" },
		{ "status_overloaded", VIGIL_CLIENT_SOVERLOADED, "fuzz://replica: queue full", "" },
		{ "status_unknown", VIGIL_CLIENT_EPROTO, "fuzz://replica: reply has unknown status 42", "" },
		/* a score needs a decision the caller can act on: ALLOW, REVIEW or DECLINE */
		{ "score_no_decision", VIGIL_CLIENT_EPROTO,
		  "fuzz://replica: reply to a score carries no decision", "" },
		{ "score_unknown_decision", VIGIL_CLIENT_EPROTO,
		  "fuzz://replica: reply has unknown decision 7", "" },
		{ "garbage", VIGIL_CLIENT_EPROTO,
		  "fuzz://replica: reply is not a vigil.v1.Reply (9 bytes)", "" },
		{ "truncated", VIGIL_CLIENT_EPROTO,
		  "fuzz://replica: reply is not a vigil.v1.Reply (101 bytes)", "" },
	};

	(void) state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		vigil_client_result  r = { 0 };
		vigil_client_errinfo info;

		assert_int_equal(decode(cases[i].name, &r, &info), cases[i].err);
		assert_int_equal(info.code, cases[i].err);
		assert_string_equal(info.message, cases[i].message);
		assert_string_equal(info.field, cases[i].field);
		assert_null(r.block_);
	}
}

/* A long message is cut to info.message on a character boundary: a
 * caller printing it as UTF-8 (JSON, logs) never gets half a character. */
static void
test_reply_long_message_cut_whole(void **state)
{
	vigil_client_result  r = { 0 };
	vigil_client_errinfo info;
	char                 want[256];
	size_t               n;

	(void) state;
	assert_int_equal(decode("status_long_utf8", &r, &info), VIGIL_CLIENT_SINVALID);
	n = (size_t) snprintf(want, sizeof want, "fuzz://replica: ");
	while (n + 2 < sizeof want) {
		memcpy(want + n, "\xc3\xa9", 2);
		n += 2;
	}
	want[n] = '\0';
	assert_string_equal(info.message, want);
	assert_string_equal(info.field, "txn.country");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reply_ok),
		cmocka_unit_test(test_reply_errors),
		cmocka_unit_test(test_reply_long_message_cut_whole),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
