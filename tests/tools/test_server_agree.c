/* SPDX-License-Identifier: MIT */
/*
 * tests/tools/test_server_agree.c - server mode and offline mode of
 * vigil-replay give the same decisions for the same input: a real vigild
 * (tests/lib/harness.h) scores a vigil-gen stream sent by vigil-replay
 * --server, and vigil-replay scores it again offline; the two results files
 * must be byte-identical. Also with --concurrency 4 when the rule file reads
 * only per-card state (per-card order is kept by the sender; senders with
 * uneven work stay within an hour of event time of each other), and with
 * nightly rebuilds (vigil-rebuild between days vs batch_rebuild in process);
 * the latency section appears in server mode only, and the summary counts
 * no row failed, refused, unsent, late or past the idempotency horizon. A
 * row the server refuses, or that gets no answer, is counted apart and its
 * label is not sent; one of an archive is named by its SEGMENT:OFFSET. argv:
 * vigil-replay vigil-gen [fault-shim].
 */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <jansson.h>
#include <xxhash.h>

#include "tmpdir.h"
#include "archive.h"
#include "harness.h"
#include "run.h"

static const char *replay, *gen, *shim;
static char tmp[] = "/tmp/vigil-test-agree-XXXXXX";
static char csv[256];

/* An RFC 3339 time of Unix ms t, as vigil-replay's CSV wants it. */
static const char *
rfc3339(int64_t t, char *buf, size_t len)
{
	time_t s = (time_t)(t / 1000);
	struct tm tm;

	gmtime_r(&s, &tm);
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
	    tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(t % 1000));
	return buf;
}

/* vigil-replay --server and offline on input: byte-identical results. */
static void
agree_on(const char *input, const char *rules, const char *conc, bool nightly, const char *pace,
    const char *pace_arg)
{
	char a[300], b[300], j[300];
	const char *rp = vt_src_path(rules);
	char rules_path[512];
	vt_server s;
	size_t la = 0, lb = 0;
	char *x, *y;
	json_error_t jerr;
	json_t *sum;

	snprintf(rules_path, sizeof rules_path, "%s", rp);
	snprintf(a, sizeof a, "%s/server-%s-%d-%s.jsonl", tmp, conc, nightly, pace ? pace + 2 : "");
	snprintf(b, sizeof b, "%s/offline-%s-%d-%s.jsonl", tmp, conc, nightly, pace ? pace + 2 : "");
	snprintf(j, sizeof j, "%s/server-%s-%d-%s.json", tmp, conc, nightly, pace ? pace + 2 : "");
	memset(&s, 0, sizeof s);
	assert_int_equal(vt_server_start(&s, rules_path, NULL), 0);
	{
		const char *argv[] = { replay, "--csv", input, "--server", s.url, "--rules", rules_path,
			"--concurrency", conc, "--results", a, "--summary", j, "-q",
			/* no pacing: a harmless repeat of -q fills the two slots */
			pace != NULL ? pace : "--quiet", pace != NULL ? pace_arg : "--quiet",
			nightly ? "--nightly" : NULL, "--data", s.datadir, NULL };
		int rc = tr_run(argv, NULL, NULL);
		assert_int_equal(vt_server_stop(&s), 0);
		vt_server_cleanup(&s);
		assert_int_equal(rc, 0);
	}
	{
		const char *argv[] = { replay, "--csv", input, "--rules", rules_path, "--results", b,
			"-q", nightly ? "--nightly" : NULL, NULL };
		assert_int_equal(tr_run(argv, NULL, NULL), 0);
	}
	sum = json_load_file(j, 0, &jerr);
	assert_non_null(sum);
	assert_string_equal(json_string_value(json_object_get(sum, "mode")), "server");
	/* Every row sent, answered and counted: a row the live state took
	 * as late or past the idempotency horizon would be counted in no
	 * window (as senders drifting apart once made them). */
	{
		static const char *const zero[] = { "failed", "refused", "not_sent", "late",
			"past_dedupe_horizon", "labels_refused", "labels_failed" };
		for (size_t i = 0; i < sizeof zero / sizeof zero[0]; i++) {
			json_t *v = json_object_get(sum, zero[i]);
			if (!json_is_integer(v) || json_integer_value(v) != 0)
				fail_msg("summary %s: %lld%s, not 0", zero[i],
				    (long long)json_integer_value(v), json_is_integer(v) ? "" : " (absent)");
		}
	}
	assert_true(json_integer_value(json_object_get(json_object_get(json_object_get(sum,
	    "metrics"), "latency_us"), "count")) > 0);
	x = tr_slurp(a, &la);
	y = tr_slurp(b, &lb);
	assert_non_null(x);
	assert_non_null(y);
	assert_true(la > 1000);
	if (la != lb || memcmp(x, y, la) != 0) {
		size_t i = 0, line = 1;
		while (i < la && i < lb && x[i] == y[i])
			if (x[i++] == '\n')
				line++;
		fail_msg("server and offline results differ at line %zu", line);
	}
	free(x);
	free(y);
	json_decref(sum);
}

static void
agree(const char *rules, const char *conc, bool nightly, const char *pace, const char *pace_arg)
{
	agree_on(csv, rules, conc, nightly, pace, pace_arg);
}

static void
test_default_rules_sequential(void **state)
{
	(void)state;
	agree("rules/default.rules", "1", false, NULL, NULL);
}

/* Paced sending (--rate, --speed) changes when, not what. */
static void
test_paced(void **state)
{
	(void)state;
	agree("rules/default.rules", "1", false, "--rate", "50000");
	agree("tests/tools/data/card_only.rules", "2", false, "--speed", "2000000");
}

/* Nightly rebuilds: vigil-rebuild on the server's data directory between
 * days vs batch_rebuild in process: same generations, same decisions. */
static void
test_default_rules_nightly(void **state)
{
	(void)state;
	agree("rules/default.rules", "1", true, NULL, NULL);
}

static void
test_card_rules_concurrent(void **state)
{
	(void)state;
	agree("tests/tools/data/card_only.rules", "4", false, NULL, NULL);
}

/* The first card id "PREFIX-N" (N from *next) that vigil-replay's
 * --concurrency 4 gives to sender want (tools/replay/remote.c). */
static void
card_for_sender(const char *prefix, unsigned *next, unsigned want, char *buf, size_t len)
{
	for (;; (*next)++) {
		snprintf(buf, len, "%s-%u", prefix, *next);
		if (XXH3_64bits(buf, strlen(buf)) % 4 == want) {
			(*next)++;
			return;
		}
	}
}

/*
 * Senders whose work is uneven: 20 cards of sender 0 pay every minute, 100
 * times each, one card after the other, from the start of day 1 (each
 * payment after a card's first is a burst: two within 10 minutes); one
 * card of sender 1 pays at the start and 9 days later. Left to run freely,
 * sender 1 sent its day-10 row at once, vigild's live state then took
 * sender 0's day-1 rows as 7 days late (1,999 of them) and counted none,
 * and 8 bursts fired where offline 1,960 do.
 * vigil-replay now keeps its senders within an hour of event time of each
 * other.
 */
static void
test_card_rules_uneven_senders(void **state)
{
	char in[300], heavy[20][32], light[32], ts[96];
	unsigned next = 0;
	const int64_t t0 = 1704067200000LL; /* 2024-01-01T00:00:00Z */
	FILE *f;

	(void)state;
	for (int c = 0; c < 20; c++)
		card_for_sender("heavy", &next, 0, heavy[c], sizeof heavy[c]);
	next = 0;
	card_for_sender("light", &next, 1, light, sizeof light);
	snprintf(in, sizeof in, "%s/uneven.csv", tmp);
	f = fopen(in, "w");
	assert_non_null(f);
	fprintf(f, "txn_id,event_time,card_id,merchant_id,amount,currency\n");
	fprintf(f, "u-light-1,%s,%s,m-1,5.00,EUR\n", rfc3339(t0, ts, sizeof ts), light);
	for (int i = 0; i < 2000; i++)
		fprintf(f, "u-%d,%s,%s,m-1,5.00,EUR\n", i,
		    rfc3339(t0 + 1000 + (int64_t)i * 60000, ts, sizeof ts), heavy[i / 100]);
	fprintf(f, "u-light-2,%s,%s,m-1,5.00,EUR\n",
	    rfc3339(t0 + (int64_t)9 * 86400000, ts, sizeof ts), light);
	assert_int_equal(fclose(f), 0);
	agree_on(in, "tests/tools/data/card_only.rules", "4", false, NULL, NULL);
}

/* Starts vigild on a fresh data directory with the fault shim preloaded
 * and its archive then failing (ENOSPC on every write): every score is
 * answered UNAVAILABLE and nothing is acknowledged. name: the fault
 * directory under tmp. */
static void
start_failing(vt_server *s, const char *rules_path, const char *name)
{
	char fault[300], flag[340];
	FILE *f;
	int rc;

	snprintf(fault, sizeof fault, "%s/fault-%s", tmp, name);
	assert_int_equal(mkdir(fault, 0700), 0);
	/* the archive appends with write(2), which the shim fails on demand */
	snprintf(flag, sizeof flag, "%s/no-fallocate", fault);
	f = fopen(flag, "w");
	assert_non_null(f);
	fclose(f);
	memset(s, 0, sizeof *s);
	setenv("VIGIL_FAULT_DIR", fault, 1);
	setenv("LD_PRELOAD", shim, 1);
	rc = vt_server_start(s, rules_path, NULL);
	unsetenv("LD_PRELOAD");
	unsetenv("VIGIL_FAULT_DIR");
	assert_int_equal(rc, 0);
	snprintf(flag, sizeof flag, "%s/write-enospc", fault);
	f = fopen(flag, "w");
	assert_non_null(f);
	fclose(f);
}

/* What one vigil-replay --server run left: its exit status, stdout, stderr
 * and JSON summary (NULL when it wrote none); agree_out_free frees them. */
typedef struct agree_out {
	int     rc;
	char   *out, *err;
	json_t *sum;
} agree_out;

/*
 * Writes text as TAG.csv and replays it with vigil-replay --server against
 * the started vigild s, with the option opt (and its argument, NULL if
 * none) when not NULL; then stops s, killed when kill (a vigild whose
 * archive fails cannot drain).
 */
static void
agree_server_run(vt_server *s, bool kill, const char *tag, const char *text,
    const char *rules_path, const char *opt, const char *optarg, agree_out *ret)
{
	char in[300], j[300], out[300], err[300];
	json_error_t jerr;
	FILE *f;

	snprintf(in, sizeof in, "%s/%s.csv", tmp, tag);
	snprintf(j, sizeof j, "%s/%s.json", tmp, tag);
	snprintf(out, sizeof out, "%s/%s.out", tmp, tag);
	snprintf(err, sizeof err, "%s/%s.err", tmp, tag);
	f = fopen(in, "w");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
	{
		const char *argv[] = { replay, "--csv", in, "--server", s->url, "--rules", rules_path,
			"--summary", j, opt, optarg, NULL };
		ret->rc = tr_run(argv, out, err);
	}
	if (kill)
		vt_server_kill(s);
	else
		assert_int_equal(vt_server_stop(s), 0);
	vt_server_cleanup(s);
	ret->out = tr_slurp(out, NULL);
	ret->err = tr_slurp(err, NULL);
	assert_non_null(ret->out);
	assert_non_null(ret->err);
	ret->sum = json_load_file(j, 0, &jerr);
}

static void
agree_out_free(agree_out *o)
{
	free(o->out);
	free(o->err);
	json_decref(o->sum);
}

static json_int_t
sum_int(const agree_out *o, const char *key)
{
	return json_integer_value(json_object_get(o->sum, key));
}

static json_int_t
sum_rows_scored(const agree_out *o)
{
	return json_integer_value(json_object_get(json_object_get(o->sum, "metrics"), "rows"));
}

/* The CSV rows' event times: seconds ago, ISO 8601 in UTC. */
static void
agree_time_ago(int secs, char *buf, size_t len)
{
	time_t t = time(NULL) - secs;

	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
}

/* A row the server refuses was never scored nor archived, and its label is
 * not sent (it would land on the first transaction of that txn_id, or on
 * none). A txn_id reused for another transaction (INVALID on txn.txn_id)
 * is counted in txn_id_conflicts, as offline mode counts it; any other
 * refusal (here INVALID on txn.event_time_ms, past --max-past-skew) as
 * refused; neither as failed. */
static void
test_refused_row_label_not_sent(void **state)
{
	const char *extra[] = { "--max-past-skew", "86400000", NULL };
	char rules_path[512], now[3][32], text[400];
	vt_server s;
	agree_out o;

	(void)state;
	snprintf(rules_path, sizeof rules_path, "%s", vt_src_path("rules/default.rules"));
	for (int k = 0; k < 3; k++)
		agree_time_ago(60 - 9 * k, now[k], sizeof now[k]);
	snprintf(text, sizeof text, "txn_id,event_time,card_id,merchant_id,amount,label\n"
	    "t1,%s,c1,m1,1.00,0\n"
	    "t1,%s,c1,m1,900.00,1\n"
	    "t2,%s,c1,m1,2.00,0\n"
	    "t3,2024-03-01T10:00:10Z,c1,m1,3.00,1\n", now[0], now[1], now[2]);
	memset(&s, 0, sizeof s);
	assert_int_equal(vt_server_start(&s, rules_path, extra), 0);
	agree_server_run(&s, false, "refused", text, rules_path, "--label-delay", "30m", &o);
	assert_int_equal(o.rc, 1); /* rows refused */
	if (strstr(o.out, "refused       1 rows reused the txn_id of a different transaction "
	    "(vigild refuses them)\n") == NULL ||
	    strstr(o.out, "refused       1 rows the server refused: not scored, their labels not "
	    "sent\n") == NULL || strstr(o.out, "failed ") != NULL)
		fail_msg("summary:\n%s\nstderr:\n%s", o.out, o.err);
	if (strstr(o.err, "refused.csv:3: txn_id \"t1\": txn.txn_id: ") == NULL ||
	    strstr(o.err, "already scored for a different transaction") == NULL)
		fail_msg("stderr:\n%s", o.err);
	assert_non_null(o.sum);
	assert_int_equal(sum_int(&o, "rows"), 4);
	assert_int_equal(sum_int(&o, "txn_id_conflicts"), 1);
	assert_int_equal(sum_int(&o, "refused"), 1);
	assert_int_equal(sum_int(&o, "failed"), 0);
	assert_int_equal(sum_int(&o, "labels_sent"), 2);
	assert_int_equal(sum_int(&o, "not_sent"), 0);
	assert_int_equal(sum_rows_scored(&o), 2);
	agree_out_free(&o);
}

/* A row that got no answer (here vigild's archive fails with ENOSPC from
 * the fault shim, tests/store_archive/fault_shim.c, so every score is
 * answered UNAVAILABLE, retried, and not acknowledged) is counted as
 * failed, and its label is not sent: vigild would record it for a
 * transaction it never scored. */
static void
test_failed_row_label_not_sent(void **state)
{
	char rules_path[512];
	vt_server s;
	agree_out o;

	(void)state;
	if (shim == NULL)
		skip();
	snprintf(rules_path, sizeof rules_path, "%s", vt_src_path("rules/default.rules"));
	start_failing(&s, rules_path, "failed");
	agree_server_run(&s, true, "failed", "txn_id,event_time,card_id,merchant_id,amount,label\n"
	    "f1,2024-03-01T10:00:00Z,c1,m1,1.00,0\n"
	    "f2,2024-03-01T10:00:09Z,c1,m1,900.00,1\n"
	    "f3,2024-03-01T10:00:10Z,c2,m1,2.00,0\n", rules_path, NULL, NULL, &o);
	assert_int_equal(o.rc, 1); /* rows failed */
	if (strstr(o.out, "failed        3 transactions got no answer from the server: not "
	    "acknowledged, their labels not sent\n") == NULL ||
	    strstr(o.out, "0 labels sent\n") == NULL)
		fail_msg("summary:\n%s\nstderr:\n%s", o.out, o.err);
	assert_non_null(o.sum);
	assert_int_equal(sum_int(&o, "rows"), 3);
	assert_int_equal(sum_int(&o, "failed"), 3);
	assert_int_equal(sum_int(&o, "refused"), 0);
	assert_int_equal(sum_int(&o, "labels_sent"), 0);
	assert_int_equal(sum_rows_scored(&o), 0);
	agree_out_free(&o);
}

/* After 50 failures in a row vigil-replay gives up sending; the rest of
 * the input is read and counted as not_sent, so the summary accounts for
 * every row: rows = scored + failed + refused + txn_id_conflicts +
 * not_sent. */
static void
test_give_up_counts_every_row(void **state)
{
	char rules_path[512], text[4096];
	size_t off;
	vt_server s;
	agree_out o;

	(void)state;
	if (shim == NULL)
		skip();
	snprintf(rules_path, sizeof rules_path, "%s", vt_src_path("rules/default.rules"));
	off = (size_t)snprintf(text, sizeof text,
	    "txn_id,event_time,card_id,merchant_id,amount,label\n");
	for (int k = 0; k < 60; k++)
		off += (size_t)snprintf(text + off, sizeof text - off,
		    "g%d,2024-03-01T10:%02d:00Z,c%d,m1,1.00,%d\n", k, k, k % 7, k % 2);
	assert_true(off < sizeof text);
	start_failing(&s, rules_path, "giveup");
	agree_server_run(&s, true, "giveup", text, rules_path, NULL, NULL, &o);
	assert_int_equal(o.rc, 1);
	if (strstr(o.err, "vigil-replay: 50 failures in a row: giving up\n") == NULL)
		fail_msg("stderr:\n%s", o.err);
	if (strstr(o.out, "failed        50 transactions got no answer") == NULL ||
	    strstr(o.out, "not sent      10 rows after giving up (no server answering): not "
	    "scored, their labels and those still waiting not sent\n") == NULL)
		fail_msg("summary:\n%s", o.out);
	assert_non_null(o.sum);
	assert_int_equal(sum_int(&o, "rows"), 60);
	assert_int_equal(sum_int(&o, "failed"), 50);
	assert_int_equal(sum_int(&o, "not_sent"), 10);
	assert_int_equal(sum_int(&o, "labels_sent"), 0);
	assert_int_equal(sum_int(&o, "rows"), sum_rows_scored(&o) + sum_int(&o, "failed") +
	    sum_int(&o, "refused") + sum_int(&o, "txn_id_conflicts") + sum_int(&o, "not_sent"));
	agree_out_free(&o);
}

/* A label the server refuses is counted and the run goes on: rows of the
 * last minute with the default --label-delay (7 days) have label times a
 * week ahead of vigild's clock, which it refuses (a label is known when it
 * is sent). Both rows are scored, the summary is written and says so, and
 * the run exits 1 (faults). */
static void
test_refused_labels_counted(void **state)
{
	char rules_path[512], now[2][32], text[300];
	vt_server s;
	agree_out o;

	(void)state;
	snprintf(rules_path, sizeof rules_path, "%s", vt_src_path("rules/default.rules"));
	for (int k = 0; k < 2; k++)
		agree_time_ago(60 - 9 * k, now[k], sizeof now[k]);
	snprintf(text, sizeof text, "txn_id,event_time,card_id,merchant_id,amount,label\n"
	    "l1,%s,c1,m1,1.00,0\n"
	    "l2,%s,c1,m1,900.00,1\n", now[0], now[1]);
	memset(&s, 0, sizeof s);
	assert_int_equal(vt_server_start(&s, rules_path, NULL), 0);
	agree_server_run(&s, false, "labels", text, rules_path, NULL, NULL, &o);
	if (o.rc != 1 || strstr(o.err, "vigil-replay: label l1: ") == NULL ||
	    strstr(o.err, "in the future") == NULL)
		fail_msg("exit %d, stderr:\n%s", o.rc, o.err);
	if (strstr(o.out, "labels        2 refused by the server, 0 got no answer: not recorded "
	    "there\n") == NULL || strstr(o.out, "0 labels sent\n") == NULL)
		fail_msg("summary:\n%s", o.out);
	assert_non_null(o.sum);
	assert_int_equal(sum_int(&o, "labels_refused"), 2);
	assert_int_equal(sum_int(&o, "labels_failed"), 0);
	assert_int_equal(sum_int(&o, "labels_sent"), 0);
	assert_int_equal(sum_rows_scored(&o), 2);
	agree_out_free(&o);
}

/* The place (SEGMENT:OFFSET) of txn_id's score record in the archive dir,
 * into buf. */
static void
archived_place(const char *dir, const char *txn_id, char *buf, size_t len)
{
	static store_scored sc;
	store_reader *rd = NULL;
	store_record rec;

	buf[0] = '\0';
	assert_int_equal(store_reader_open(dir, INT64_MIN, INT64_MAX, NULL, NULL, &rd, NULL),
	    VIGIL_OK);
	while (store_reader_next(rd, &rec, NULL) == VIGIL_OK)
		if (rec.type == STORE_REC_SCORE &&
		    store_scored_decode(rec.payload, rec.len, &sc, NULL) == VIGIL_OK &&
		    strcmp(sc.txn.txn_id, txn_id) == 0)
			snprintf(buf, len, "%s:%" PRIu64, rec.segment, rec.offset);
	store_reader_close(rd);
	assert_true(buf[0] != '\0');
}

/* An archive row the server refuses is named by its record's place,
 * SEGMENT:OFFSET, as offline mode names one: the archive of a first
 * vigild replayed to a second that refuses its old row (past
 * --max-past-skew). Before, the line named the txn_id alone. */
static void
test_refused_archive_row_named(void **state)
{
	char in[300], err[300], arch[300], place[300], now[32];
	const char *rp = vt_src_path("rules/default.rules");
	const char *extra[] = { "--max-past-skew", "86400000", NULL };
	char rules_path[512];
	vt_server a, b;
	time_t t = time(NULL) - 60;
	FILE *f;
	char *o;
	int rc;

	(void)state;
	snprintf(rules_path, sizeof rules_path, "%s", rp);
	snprintf(in, sizeof in, "%s/archrow.csv", tmp);
	snprintf(err, sizeof err, "%s/archrow.err", tmp);
	strftime(now, sizeof now, "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
	f = fopen(in, "w");
	assert_non_null(f);
	fprintf(f, "txn_id,event_time,card_id,merchant_id,amount\n"
	    "new1,%s,c1,m1,1.00\n"
	    "old1,2024-03-01T10:00:10Z,c1,m1,3.00\n", now);
	fclose(f);
	memset(&a, 0, sizeof a);
	assert_int_equal(vt_server_start(&a, rules_path, NULL), 0);
	{
		const char *argv[] = { replay, "--csv", in, "--server", a.url, "--rules", rules_path,
			"-q", NULL };
		rc = tr_run(argv, NULL, NULL);
	}
	assert_int_equal(vt_server_stop(&a), 0);
	assert_int_equal(rc, 0);
	snprintf(arch, sizeof arch, "%s/archive", a.datadir);
	archived_place(arch, "old1", place, sizeof place);
	assert_null(strstr(place, ":0")); /* the second record: an offset of its own */
	memset(&b, 0, sizeof b);
	assert_int_equal(vt_server_start(&b, rules_path, extra), 0);
	{
		const char *argv[] = { replay, "--archive", a.datadir, "--server", b.url, "--rules",
			rules_path, "-q", NULL };
		rc = tr_run(argv, NULL, err);
	}
	assert_int_equal(vt_server_stop(&b), 0);
	vt_server_cleanup(&b);
	vt_server_cleanup(&a);
	assert_int_equal(rc, 1); /* a row refused */
	o = tr_slurp(err, NULL);
	assert_non_null(o);
	{
		char want[400];

		snprintf(want, sizeof want, "vigil-replay: %s: txn_id \"old1\": txn.event_time_ms: ",
		    place);
		if (strstr(o, want) == NULL)
			fail_msg("no line beginning \"%s\"; stderr:\n%s", want, o);
	}
	free(o);
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_default_rules_sequential),
		cmocka_unit_test(test_card_rules_concurrent),
		cmocka_unit_test(test_card_rules_uneven_senders),
		cmocka_unit_test(test_default_rules_nightly),
		cmocka_unit_test(test_paced),
		cmocka_unit_test(test_refused_row_label_not_sent),
		cmocka_unit_test(test_failed_row_label_not_sent),
		cmocka_unit_test(test_give_up_counts_every_row),
		cmocka_unit_test(test_refused_labels_counted),
		cmocka_unit_test(test_refused_archive_row_named),
	};
	const char *g[] = { NULL, "--cards", "200", "--days", "8", "--seed", "11",
		"--fraud-rate", "0.02", "-q", "-o", csv, NULL };
	int rv;

	if (argc != 3 && argc != 4) {
		fprintf(stderr, "usage: test-server-agree VIGIL-REPLAY VIGIL-GEN [FAULT-SHIM]\n");
		return 1;
	}
	replay = argv[1];
	gen = argv[2];
	shim = argc == 4 ? argv[3] : NULL;
	if (mkdtemp(tmp) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(csv, sizeof csv, "%s/gen.csv", tmp);
	g[0] = gen;
	if (tr_run(g, NULL, NULL) != 0) {
		fprintf(stderr, "test-server-agree: %s failed\n", gen);
		return 1;
	}
	rv = cmocka_run_group_tests(tests, NULL, NULL);
	vt_tmpdir_remove(tmp);
	return rv;
}
