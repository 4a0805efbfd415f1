/* SPDX-License-Identifier: MIT */
/*
 * tests/tools/test_replay.c - vigil-replay offline: the same input gives the
 * same results file (with and without nightly rebuilds); as-of correctness
 * (a label is used by a rebuild only once its label time has passed); the
 * --compare summary, also with a file reading features the main one does
 * not (feature masks); archive input; a damaged archive's stretches and
 * bad CSV rows reported and counted;
 * usage errors.
 * argv: vigil-replay vigil-gen SOURCE_ROOT.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "archive.h"
#include "segment.h"
#include "tmpdir.h"
#include "run.h"

static const char *replay, *gen, *srcroot;
static char tmp[] = "/tmp/vigil-test-replay-XXXXXX";
static char csv[256], rules_default[512], rules_asof[512], csv_asof[512];

static char *
path(const char *name)
{
	static char buf[8][256];
	static int slot;
	char *p = buf[slot++ & 7];

	snprintf(p, 256, "%s/%s", tmp, name);
	return p;
}

/* Occurrences of needle in hay. */
static int
count_of(const char *hay, const char *needle)
{
	int n = 0;

	for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
		n++;
	return n;
}

static void
test_offline_deterministic(void **state)
{
	const char *a = path("a.jsonl"), *b = path("b.jsonl");
	const char *argv_a[] = { replay, "--csv", csv, "--rules", rules_default, "--results", a, "-q", NULL };
	const char *argv_b[] = { replay, "--csv", csv, "--rules", rules_default, "--results", b, "-q", NULL };
	size_t la, lb;
	char *x, *y;

	(void)state;
	assert_int_equal(tr_run(argv_a, NULL, NULL), 0);
	assert_int_equal(tr_run(argv_b, NULL, NULL), 0);
	x = tr_slurp(a, &la);
	y = tr_slurp(b, &lb);
	assert_non_null(x);
	assert_non_null(y);
	assert_true(la > 1000);
	assert_int_equal(la, lb);
	assert_memory_equal(x, y, la);
	assert_non_null(strstr(x, "{\"txn_id\":\"t0000000001\",\"score\":"));
	free(x);
	free(y);
}

static void
test_nightly_deterministic(void **state)
{
	const char *a = path("na.jsonl"), *b = path("nb.jsonl"), *j = path("n.json");
	const char *argv_a[] = { replay, "--csv", csv, "--rules", rules_default, "--nightly",
		"--results", a, "--summary", j, "-q", NULL };
	const char *argv_b[] = { replay, "--csv", csv, "--rules", rules_default, "--nightly",
		"--results", b, "-q", NULL };
	json_error_t jerr;
	json_t *sum;
	size_t la, lb;
	char *x, *y;

	(void)state;
	assert_int_equal(tr_run(argv_a, NULL, NULL), 0);
	assert_int_equal(tr_run(argv_b, NULL, NULL), 0);
	x = tr_slurp(a, &la);
	y = tr_slurp(b, &lb);
	assert_non_null(x);
	assert_non_null(y);
	assert_int_equal(la, lb);
	assert_memory_equal(x, y, la);
	free(x);
	free(y);
	sum = json_load_file(j, 0, &jerr);
	assert_non_null(sum);
	/* 12 days of traffic: a rebuild before each of days 2..12 */
	assert_int_equal(json_integer_value(json_object_get(sum, "nightly_rebuilds")), 11);
	assert_true(json_integer_value(json_object_get(sum, "labels_sent")) > 0);
	assert_int_equal(json_integer_value(json_object_get(sum, "bad_rows")), 0);
	json_decref(sum);
}

static void
test_asof_future_label_unused(void **state)
{
	const char *res = path("asof.jsonl");
	const char *argv[] = { replay, "--csv", csv_asof, "--rules", rules_asof, "--nightly",
		"--results", res, "-q", NULL };
	char *x;

	(void)state;
	assert_int_equal(tr_run(argv, NULL, NULL), 0);
	x = tr_slurp(res, NULL);
	assert_non_null(x);
	/* the fraud of day 1 is labelled on day 5 at 12:00: the rebuilds as of
	 * days 2..5 must not know it, the one as of day 6 must */
	for (int d = 1; d <= 5; d++) {
		char want[128];
		snprintf(want, sizeof want, "{\"txn_id\":\"c1-d%d\",\"score\":0,\"decision\":\"allow\",\"hits\":[]}\n", d);
		if (strstr(x, want) == NULL)
			fail_msg("day %d: expected no hit, results:\n%s", d, x);
	}
	for (int d = 6; d <= 8; d++) {
		char want[128];
		snprintf(want, sizeof want, "{\"txn_id\":\"c1-d%d\",\"score\":10,\"decision\":\"review\","
		    "\"hits\":[{\"rule\":\"known_fraud_card\",\"points\":10,\"shadow\":false}]}\n", d);
		if (strstr(x, want) == NULL)
			fail_msg("day %d: expected the hit, results:\n%s", d, x);
	}
	free(x);
}

static void
test_compare(void **state)
{
	const char *j = path("cmp.json"), *other = path("cmp.rules");
	const char *argv[] = { replay, "--csv", csv_asof, "--rules", rules_asof, "--compare",
		other, "--nightly", "--summary", j, "-q", NULL };
	json_error_t jerr;
	json_t *sum, *cmp;
	FILE *f = fopen(other, "w");

	(void)state;
	/* the same rule, needing two known frauds: never fires here */
	assert_non_null(f);
	fputs("version \"cmp\"\nband review = 10\nband decline = 100\n"
	    "rule known_fraud_card {\n  when card.fraud_count_90d >= 2\n  score 10\n"
	    "  reason \"card has two known frauds\"\n}\n", f);
	fclose(f);
	assert_int_equal(tr_run(argv, NULL, NULL), 0);
	sum = json_load_file(j, 0, &jerr);
	assert_non_null(sum);
	cmp = json_object_get(sum, "compare");
	assert_non_null(cmp);
	assert_string_equal(json_string_value(json_object_get(cmp, "rules")), other);
	/* asof.rules reviews c1-d6..d8; the other file allows them */
	assert_int_equal(json_integer_value(json_object_get(cmp, "changed")), 3);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(cmp, "transitions"),
	    "review->allow")), 3);
	assert_non_null(json_object_get(json_object_get(cmp, "metrics"), "recall"));
	json_decref(sum);
}

/* --compare counts a decision change out of the rows both files scored: a
 * refused row (its txn_id reused for another transaction) has a decision
 * under neither, and is counted on its own; text and JSON agree. */
static void
test_compare_counts_scored_rows(void **state)
{
	const char *in = path("cmpref.csv"), *other = path("cmpref.rules");
	const char *out = path("cmpref.out"), *j = path("cmpref.json");
	const char *argv[] = { replay, "--csv", in, "--rules", rules_asof, "--compare", other,
		"--summary", j, NULL };
	FILE *f = fopen(in, "w");
	json_error_t jerr;
	json_t *sum, *cmp;
	char *o;

	(void)state;
	assert_non_null(f);
	fputs("txn_id,event_time,card_id,merchant_id,amount\n"
	    "t1,2024-03-01T10:00:00Z,c1,m1,1.00\n"
	    "t1,2024-03-01T10:00:09Z,c1,m1,900.00\n"
	    "t2,2024-03-01T10:00:10Z,c1,m1,2.00\n"
	    "t3,2024-03-01T10:00:11Z,c1,m1,3.00\n", f);
	fclose(f);
	f = fopen(other, "w");
	assert_non_null(f);
	fputs("version \"cmp\"\nband review = 10\nband decline = 100\n"
	    "rule any {\n  when amount >= 2\n  score 10\n  reason \"two or more\"\n}\n", f);
	fclose(f);
	assert_int_equal(tr_run(argv, out, NULL), 1); /* a row refused */
	o = tr_slurp(out, NULL);
	assert_non_null(o);
	if (strstr(o, "  decisions changed: 2 of 3 compared; 1 rows refused, scored by "
	    "neither\n") == NULL)
		fail_msg("summary:\n%s", o);
	sum = json_load_file(j, 0, &jerr);
	assert_non_null(sum);
	cmp = json_object_get(sum, "compare");
	assert_int_equal(json_integer_value(json_object_get(cmp, "changed")), 2);
	assert_int_equal(json_integer_value(json_object_get(cmp, "rows")), 3);
	assert_int_equal(json_integer_value(json_object_get(cmp, "refused")), 1);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(cmp, "metrics"),
	    "rows")), 3);
	json_decref(sum);
	free(o);
}

/* A CSV out of day order (a late arrival, as an export in arrival order
 * has): each row is scored as it comes and the rows behind are counted, in
 * the text and the JSON summary, so a back-test never passes one off as
 * scored in its own day. */
static void
test_rows_behind_counted(void **state)
{
	const char *in = path("behind.csv"), *out = path("behind.out"), *j = path("behind.json");
	const char *argv[] = { replay, "--csv", in, "--rules", rules_asof, "--summary", j, NULL };
	FILE *f = fopen(in, "w");
	json_error_t jerr;
	json_t *sum;
	char *o;

	(void)state;
	assert_non_null(f);
	fputs("txn_id,event_time,card_id,merchant_id,amount\n"
	    "t1,2024-03-01T10:00:00Z,c1,m1,1.00\n"
	    "t2,2024-03-03T10:00:00Z,c1,m1,2.00\n"
	    "t3,2024-03-02T23:59:59Z,c2,m1,3.00\n"
	    "t4,2024-03-03T09:00:00Z,c2,m1,4.00\n"
	    "t5,2024-03-01T00:00:00Z,c3,m1,5.00\n", f);
	fclose(f);
	assert_int_equal(tr_run(argv, out, NULL), 0);
	o = tr_slurp(out, NULL);
	assert_non_null(o);
	if (strstr(o, "\norder         2 rows of a UTC day before one already replayed: ") ==
	    NULL)
		fail_msg("summary:\n%s", o);
	sum = json_load_file(j, 0, &jerr);
	assert_non_null(sum);
	assert_int_equal(json_integer_value(json_object_get(sum, "rows")), 5);
	assert_int_equal(json_integer_value(json_object_get(sum, "rows_behind")), 2);
	json_decref(sum);
	free(o);
}

/* Offline scoring computes only the features the rule files read (a store
 * feature mask): a --compare file that reads features the main file does
 * not (merchant and terminal velocity, card counts) decides as it does when
 * replayed alone, where the mask is its own. */
static void
test_compare_reads_other_features(void **state)
{
	const char *j1 = path("cmpf1.json"), *j2 = path("cmpf2.json"), *other = path("cmpf.rules");
	const char *argv1[] = { replay, "--csv", csv, "--rules", rules_default, "--compare",
		other, "--summary", j1, "-q", NULL };
	const char *argv2[] = { replay, "--csv", csv, "--rules", other, "--summary", j2, "-q", NULL };
	json_error_t jerr;
	json_t *s1, *s2, *m1, *m2;
	FILE *f = fopen(other, "w");

	(void)state;
	assert_non_null(f);
	fputs("version \"cmpf\"\nband review = 10\nband decline = 30\n"
	    "rule busy_merchant {\n  when vel.merchant.count_1m >= 2 or vel.merchant.count_1h >= 40\n"
	    "  score 10\n  reason \"busy merchant\"\n}\n"
	    "rule busy_terminal {\n  when vel.terminal.count_10m >= 2\n  score 10\n"
	    "  reason \"busy terminal\"\n}\n"
	    "rule card_cards {\n  when vel.terminal.distinct_cards_1h >= 3 and vel.card.count_10m >= 1\n"
	    "  score 20\n  reason \"terminal with many cards\"\n}\n"
	    "rule ip_busy {\n  when vel.ip.count_1h >= 3 or vel.card.distinct_countries_7d >= 2\n"
	    "  score 10\n  reason \"busy ip\"\n}\n", f);
	fclose(f);
	assert_int_equal(tr_run(argv1, NULL, NULL), 0);
	assert_int_equal(tr_run(argv2, NULL, NULL), 0);
	s1 = json_load_file(j1, 0, &jerr);
	s2 = json_load_file(j2, 0, &jerr);
	assert_non_null(s1);
	assert_non_null(s2);
	m1 = json_object_get(json_object_get(s1, "compare"), "metrics");
	m2 = json_object_get(s2, "metrics");
	assert_non_null(m1);
	assert_non_null(m2);
	/* the file fires on this traffic, and the same way in both runs */
	assert_true(json_integer_value(json_object_get(m2, "alerts")) > 0);
	assert_true(json_equal(m1, m2));
	json_decref(s1);
	json_decref(s2);
}

/* A data directory written by --nightly --work is an archive like vigild's:
 * replaying it gives the decisions of the CSV it came from (no batch
 * features in either run) and finds the labels that were archived. */
static void
test_archive_input(void **state)
{
	const char *work = path("work"), *nj = path("w.json"), *aj = path("arch.json");
	const char *ares = path("arch.jsonl"), *cres = path("csv.jsonl");
	const char *a1[] = { replay, "--csv", csv, "--rules", rules_default, "--nightly", "--work",
		work, "--summary", nj, "-q", NULL };
	const char *a2[] = { replay, "--archive", work, "--rules", rules_default, "--results", ares,
		"--summary", aj, "-q", NULL };
	const char *a3[] = { replay, "--csv", csv, "--rules", rules_default, "--results", cres,
		"-q", NULL };
	json_error_t jerr;
	json_t *n, *a;
	size_t la = 0, lc = 0;
	char *x, *y;

	(void)state;
	assert_int_equal(tr_run(a1, NULL, NULL), 0);
	assert_int_equal(tr_run(a2, NULL, NULL), 0);
	assert_int_equal(tr_run(a3, NULL, NULL), 0);
	x = tr_slurp(ares, &la);
	y = tr_slurp(cres, &lc);
	assert_non_null(x);
	assert_non_null(y);
	assert_int_equal(la, lc);
	assert_memory_equal(x, y, la);
	free(x);
	free(y);
	n = json_load_file(nj, 0, &jerr);
	a = json_load_file(aj, 0, &jerr);
	assert_non_null(n);
	assert_non_null(a);
	/* every label archived joins its transaction */
	assert_int_equal(json_integer_value(json_object_get(json_object_get(a, "metrics"), "labelled")),
	    json_integer_value(json_object_get(n, "labels_sent")));
	assert_int_equal(json_integer_value(json_object_get(a, "rows")),
	    json_integer_value(json_object_get(n, "rows")));
	assert_true(json_is_integer(json_object_get(a, "corrupt_stretches")));
	assert_int_equal(json_integer_value(json_object_get(a, "corrupt_stretches")), 0);
	assert_true(json_is_null(json_object_get(a, "corrupt_first")));
	json_decref(n);
	json_decref(a);
}

static void
count_stretch(void *arg, const char *segment, uint64_t offset, uint64_t skipped, const char *what)
{
	(void)segment;
	(void)offset;
	(void)skipped;
	(void)what;
	(*(unsigned *)arg)++;
}

/* An archive with a damaged stretch: the replay goes on past it, names it
 * on stderr, counts it in the summary (text and JSON, with where the first
 * is: the console's back-test shows it) and exits 1. Each stretch once,
 * though the labels and the scores are read in two passes. */
static void
test_archive_damaged_reported(void **state)
{
	const char *work = path("dwork"), *sj = path("dmg.json"), *out = path("dmg.out");
	const char *err = path("dmg.err");
	const char *a1[] = { replay, "--csv", csv, "--rules", rules_default, "--nightly",
		"--no-model", "--work", work, "-q", NULL };
	const char *a2[] = { replay, "--archive", work, "--rules", rules_default, "--summary", sj,
		NULL };
	char dir[512], seg[600], *o, *e, *p;
	const char *first, *name;
	unsigned stretches = 0, lines = 0;
	store_reader *rd;
	store_record rec;
	store_seg_ent *ents = NULL;
	store_diag dg;
	size_t ne = 0;
	uint8_t junk[32];
	json_error_t jerr;
	struct stat st;
	json_t *j;
	int fd;

	(void)state;
	assert_int_equal(tr_run(a1, NULL, NULL), 0);
	/* the first segment */
	snprintf(dir, sizeof dir, "%s/archive", work);
	assert_int_equal(store_seg_list(dir, &ents, &ne, &dg), VIGIL_OK);
	assert_true(ne > 0 && ents[0].has_log);
	snprintf(seg, sizeof seg, "%s/%s.log", dir, ents[0].base);
	free(ents);
	name = strrchr(seg, '/') + 1;
	/* 32 bytes in its middle overwritten */
	memset(junk, 0xa5, sizeof junk);
	fd = open(seg, O_WRONLY);
	assert_true(fd >= 0 && fstat(fd, &st) == 0 && st.st_size > 64);
	assert_int_equal(pwrite(fd, junk, sizeof junk, st.st_size / 2), (ssize_t)sizeof junk);
	close(fd);
	assert_int_equal(store_reader_open(dir, INT64_MIN, INT64_MAX, count_stretch, &stretches,
	    &rd, &dg), VIGIL_OK);
	while (store_reader_next(rd, &rec, &dg) == VIGIL_OK)
		;
	store_reader_close(rd);
	assert_true(stretches >= 1);
	assert_int_equal(tr_run(a2, out, err), 1);
	j = json_load_file(sj, 0, &jerr);
	assert_non_null(j);
	assert_int_equal(json_integer_value(json_object_get(j, "corrupt_stretches")), stretches);
	first = json_string_value(json_object_get(j, "corrupt_first"));
	assert_non_null(first);
	/* SEGMENT:OFFSET: what, SEGMENT the file's name */
	assert_int_equal(strncmp(first, name, strlen(name)), 0);
	o = tr_slurp(out, NULL);
	e = tr_slurp(err, NULL);
	assert_non_null(o);
	assert_non_null(e);
	assert_non_null(strstr(o, "corrupt stretches of the archive skipped, the first at "));
	assert_non_null(strstr(o, first));
	for (p = e; (p = strstr(p, "bytes skipped)")) != NULL; p++)
		lines++;
	assert_int_equal(lines, stretches);
	free(o);
	free(e);
	json_decref(j);
}

static void
test_bad_rows_reported(void **state)
{
	const char *in = path("bad.csv"), *err = path("bad.err"), *out = path("bad.out");
	const char *argv[] = { replay, "--csv", in, "--rules", rules_default, NULL };
	FILE *f = fopen(in, "w");
	char *e, *o;

	(void)state;
	assert_non_null(f);
	fputs("txn_id,event_time,card_id,merchant_id,amount,colour\n"
	    "t1,2024-03-01T10:00:00Z,c1,m1,1.00,red\n"
	    "t2,2024-03-01T10:00:01Z,c1,m1,1.001,red\n"
	    "t3,2024-03-01T10:00:02Z,c1,m1,2.00,blue\n", f);
	fclose(f);
	/* the others replayed and summarised; the bad row makes it 1, as in
	 * vigil-score (docs/tools.md) */
	assert_int_equal(tr_run(argv, out, err), 1);
	e = tr_slurp(err, NULL);
	o = tr_slurp(out, NULL);
	assert_non_null(strstr(e, "vigil-replay: warning: "));
	assert_non_null(strstr(e, ":1: header: ignoring 1 unknown column: colour\n"));
	assert_non_null(strstr(e, "bad.csv:3: amount: \"1.001\": more decimal places than the "
	    "currency has (EUR has 2) (row skipped)\n"));
	assert_non_null(strstr(o, "throughput    2 rows in"));
	assert_non_null(strstr(o, "input         1 bad rows skipped"));
	free(e);
	free(o);
}

/* A txn_id seen again: for the same transaction (a retry) the first
 * outcome, as vigild answers; for a different one (another amount) the row
 * is refused, as vigild refuses it: reported, counted, not in the results. */
static void
test_txn_id_conflict_refused(void **state)
{
	const char *in = path("conf.csv"), *err = path("conf.err"), *out = path("conf.out");
	const char *res = path("conf.res"), *j = path("conf.json");
	const char *argv[] = { replay, "--csv", in, "--rules", rules_default, "--results", res,
		"--summary", j, NULL };
	FILE *f = fopen(in, "w");
	json_error_t jerr;
	json_t *sum;
	char *e, *o, *r;

	(void)state;
	assert_non_null(f);
	fputs("txn_id,event_time,card_id,merchant_id,amount\n"
	    "t1,2024-03-01T10:00:00Z,c1,m1,1.00\n"
	    "t1,2024-03-01T10:00:05Z,c1,m1,1.00\n"
	    "t1,2024-03-01T10:00:09Z,c1,m1,900.00\n"
	    "t2,2024-03-01T10:00:10Z,c1,m1,2.00\n", f);
	fclose(f);
	/* a row refused: the run finishes, and exits 1 (docs/tools.md, txn-conflict) */
	assert_int_equal(tr_run(argv, out, err), 1);
	e = tr_slurp(err, NULL);
	o = tr_slurp(out, NULL);
	r = tr_slurp(res, NULL);
	assert_non_null(strstr(e, "conf.csv:4: txn_id \"t1\": already scored for a different "
	    "transaction"));
	assert_non_null(strstr(o, "refused       1 rows reused the txn_id of a different "
	    "transaction"));
	/* the first t1, its retry and t2; not the conflicting t1 */
	assert_int_equal(count_of(r, "\"txn_id\":\"t1\""), 2);
	assert_int_equal(count_of(r, "\"txn_id\":\"t2\""), 1);
	sum = json_load_file(j, 0, &jerr);
	assert_non_null(sum);
	assert_int_equal(json_integer_value(json_object_get(sum, "txn_id_conflicts")), 1);
	json_decref(sum);
	free(e);
	free(o);
	free(r);
}

/*
 * --train-every 30d: the nightly rebuilds carry the model over (each night
 * a generation: tables and thresholds rebuilt) instead of training every
 * night; a carried night's line in "nights" says so and names the as-of
 * of a night that trained. 300 cards, 20 days, 5% fraud, labels a day
 * later: a model from the second week on.
 */
static void
test_nightly_train_every(void **state)
{
	const char *c = path("te.csv"), *j = path("te.json");
	const char *gargv[] = { gen, "--cards", "300", "--days", "20", "--seed", "1",
		"--fraud-rate", "0.05", "-q", "-o", c, NULL };
	const char *argv[] = { replay, "--csv", c, "--rules", rules_default, "--nightly",
		"--label-delay", "1d", "--force-label-delay", "--train-every", "30d",
		"--summary", j, "-q", NULL };
	json_error_t jerr;
	json_t *sum, *nights, *n;
	size_t i, trained = 0, carried = 0;

	(void)state;
	assert_int_equal(tr_run(gargv, NULL, NULL), 0);
	assert_int_equal(tr_run(argv, NULL, NULL), 0);
	sum = json_load_file(j, 0, &jerr);
	assert_non_null(sum);
	nights = json_object_get(sum, "nights");
	assert_int_equal(json_array_size(nights), 19);
	json_array_foreach(nights, i, n) {
		const char *at = json_string_value(json_object_get(n, "trained_as_of"));

		if (!json_is_true(json_object_get(n, "model_trained")))
			continue;
		if (!json_is_true(json_object_get(n, "model_carried"))) {
			trained++;
			continue;
		}
		carried++;
		assert_non_null(at);
		/* the as-of of an earlier night that trained */
		for (size_t k = 0; k < i; k++) {
			json_t *e = json_array_get(nights, k);

			if (strcmp(json_string_value(json_object_get(e, "as_of")), at) == 0) {
				assert_true(json_is_true(json_object_get(e, "model_trained")));
				assert_null(json_object_get(e, "model_carried"));
				at = NULL;
				break;
			}
		}
		assert_null(at);
	}
	assert_true(trained >= 1);
	assert_true(carried >= 1);
	json_decref(sum);
}

/*
 * A band tuned by the nightly rebuild: each night's line of "nights" has
 * the bands in force after it (the tuned value), and the report shows the
 * band that decided, the rule file's number beside it. The review band is
 * the median amount of the window (tuned from the first night on); the
 * decline band a constant.
 */
static void
test_report_bands_in_force(void **state)
{
	const char *r = path("bands.rules"), *j = path("bands.json"), *h = path("bands.html");
	const char *argv[] = { replay, "--csv", csv, "--rules", r, "--nightly", "--summary", j,
		"--report", h, "-q", NULL };
	json_error_t jerr;
	json_t *sum, *nights, *n;
	char want[96], *html;
	double last = 0;
	size_t i;
	FILE *f = fopen(r, "w");

	(void)state;
	assert_non_null(f);
	fputs("version \"bands\"\n"
	    "threshold review_at = percentile(amount, 50) fallback 99 min_samples 10\n"
	    "band review = review_at\nband decline = 100\n"
	    "rule big {\n  when amount > 1000\n  score 10\n  reason \"big\"\n}\n", f);
	fclose(f);
	assert_int_equal(tr_run(argv, NULL, NULL), 0);
	sum = json_load_file(j, 0, &jerr);
	assert_non_null(sum);
	nights = json_object_get(sum, "nights");
	assert_int_equal(json_array_size(nights), 11);
	json_array_foreach(nights, i, n) {
		last = json_number_value(json_object_get(n, "review_at"));
		assert_true(last > 0 && last < 99); /* tuned: the median amount, not 99 */
		assert_true(json_number_value(json_object_get(n, "decline_at")) == 100);
	}
	html = tr_slurp(h, NULL);
	assert_non_null(html);
	snprintf(want, sizeof want, "review at score &#8805; %.4g (file: 99), decline at "
	    "&#8805; 100 (", last);
	if (strstr(html, want) == NULL)
		fail_msg("the report does not say \"%s\"", want);
	snprintf(want, sizeof want, "review &#8805; %.4g (file: 99)</text>", last);
	assert_non_null(strstr(html, want));
	assert_int_equal(count_of(html, "<td class=\"bands\">"), 11);
	free(html);
	json_decref(sum);
}

/* The rebuilds' thread count changes nothing the replay measures: the
 * tables and the model are the same at any count (docs/vigil-rebuild.md),
 * so every row's score and decision are. */
static void
test_nightly_rebuild_threads(void **state)
{
	const char *c = path("rt.csv"), *a = path("rt1.jsonl"), *b = path("rt2.jsonl");
	const char *j = path("rt.json");
	const char *gargv[] = { gen, "--cards", "300", "--days", "12", "--seed", "3",
		"--fraud-rate", "0.05", "-q", "-o", c, NULL };
	const char *argv_a[] = { replay, "--csv", c, "--rules", rules_default, "--nightly",
		"--label-delay", "1d", "--force-label-delay", "--rebuild-threads", "1",
		"--results", a, "-q", NULL };
	const char *argv_b[] = { replay, "--csv", c, "--rules", rules_default, "--nightly",
		"--label-delay", "1d", "--force-label-delay", "--rebuild-threads", "2",
		"--results", b, "--summary", j, "-q", NULL };
	json_error_t jerr;
	json_t *sum, *n;
	size_t la, lb, i, trained = 0;
	char *x, *y;

	(void)state;
	assert_int_equal(tr_run(gargv, NULL, NULL), 0);
	assert_int_equal(tr_run(argv_a, NULL, NULL), 0);
	assert_int_equal(tr_run(argv_b, NULL, NULL), 0);
	x = tr_slurp(a, &la);
	y = tr_slurp(b, &lb);
	assert_non_null(x);
	assert_non_null(y);
	assert_int_equal(la, lb);
	assert_memory_equal(x, y, la);
	free(x);
	free(y);
	sum = json_load_file(j, 0, &jerr);
	assert_non_null(sum);
	json_array_foreach(json_object_get(sum, "nights"), i, n)
		if (json_is_true(json_object_get(n, "model_trained")))
			trained++;
	assert_true(trained >= 1); /* the last day is scored by a model: compared too */
	json_decref(sum);
}

static void
test_usage_errors(void **state)
{
	const char *err = path("usage.err");
	const char *a1[] = { replay, NULL };
	const char *a2[] = { replay, "--csv", csv, "--rate", "10", NULL };
	const char *a3[] = { replay, "--csv", "/nonexistent.csv", "--rules", rules_default, NULL };
	const char *a4[] = { replay, "--csv", csv, "--rules", "/nonexistent.rules", NULL };
	const char *a5[] = { replay, "--csv", csv, "--server", "ipc:///nonexistent-vigil/sock", NULL };
	const char *a6[] = { replay, "--csv", csv, "--train-every", "7d", NULL };
	const char *a7[] = { replay, "--csv", csv, "--nightly", "--train-every", "week", NULL };
	const char *a8[] = { replay, "--csv", csv, "--rebuild-threads", "2", NULL };
	const char *a9[] = { replay, "--csv", csv, "--nightly", "--rebuild-threads", "65", NULL };
	char *e;

	(void)state;
	assert_int_equal(tr_run(a1, NULL, err), 2);
	e = tr_slurp(err, NULL);
	assert_string_equal(e, "vigil-replay: give exactly one of --csv FILE or --archive DATADIR (see --help)\n");
	free(e);
	assert_int_equal(tr_run(a2, NULL, err), 2);
	e = tr_slurp(err, NULL);
	assert_string_equal(e, "vigil-replay: --rate, --speed, --concurrency, --data and --rebuild need "
	    "--server (see --help)\n");
	free(e);
	/* an input that cannot be opened: nothing replayed, 2 (docs/tools.md) */
	assert_int_equal(tr_run(a3, NULL, err), 2);
	e = tr_slurp(err, NULL);
	assert_string_equal(e, "vigil-replay: /nonexistent.csv: cannot open: No such file or directory\n");
	free(e);
	/* a rule file that does not load: a usage error, as in vigild (docs/tools.md) */
	assert_int_equal(tr_run(a4, NULL, NULL), 2);
	/* no server: one line after the connect wait, not a time-out per row */
	assert_int_equal(tr_run(a5, NULL, err), 1);
	e = tr_slurp(err, NULL);
	assert_string_equal(e, "vigil-replay: no server reachable at ipc:///nonexistent-vigil/sock "
	    "within 3 s\n");
	free(e);
	assert_int_equal(tr_run(a6, NULL, err), 2);
	e = tr_slurp(err, NULL);
	assert_string_equal(e, "vigil-replay: --train-every goes with --nightly (see --help)\n");
	free(e);
	assert_int_equal(tr_run(a7, NULL, err), 2);
	e = tr_slurp(err, NULL);
	assert_string_equal(e, "vigil-replay: --train-every: not a duration such as 7d, 36h: "
	    "\"week\" (see --help)\n");
	free(e);
	assert_int_equal(tr_run(a8, NULL, err), 2);
	e = tr_slurp(err, NULL);
	assert_string_equal(e, "vigil-replay: --rebuild-threads goes with --nightly (see --help)\n");
	free(e);
	assert_int_equal(tr_run(a9, NULL, err), 2);
	e = tr_slurp(err, NULL);
	assert_string_equal(e, "vigil-replay: --rebuild-threads: not an integer in 1..64: "
	    "\"65\" (see --help)\n");
	free(e);
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_offline_deterministic),
		cmocka_unit_test(test_nightly_deterministic),
		cmocka_unit_test(test_asof_future_label_unused),
		cmocka_unit_test(test_compare),
		cmocka_unit_test(test_compare_reads_other_features),
		cmocka_unit_test(test_compare_counts_scored_rows),
		cmocka_unit_test(test_rows_behind_counted),
		cmocka_unit_test(test_archive_input),
		cmocka_unit_test(test_archive_damaged_reported),
		cmocka_unit_test(test_bad_rows_reported),
		cmocka_unit_test(test_txn_id_conflict_refused),
		cmocka_unit_test(test_nightly_train_every),
		cmocka_unit_test(test_report_bands_in_force),
		cmocka_unit_test(test_nightly_rebuild_threads),
		cmocka_unit_test(test_usage_errors),
	};
	const char *gargv[] = { NULL, "--cards", "300", "--days", "12", "--seed", "5",
		"--fraud-rate", "0.02", "-q", "-o", csv, NULL };
	int rv;

	if (argc != 4) {
		fprintf(stderr, "usage: test-replay VIGIL-REPLAY VIGIL-GEN SOURCE_ROOT\n");
		return 1;
	}
	replay = argv[1];
	gen = argv[2];
	srcroot = argv[3];
	if (mkdtemp(tmp) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(csv, sizeof csv, "%s/gen.csv", tmp);
	snprintf(rules_default, sizeof rules_default, "%s/rules/default.rules", srcroot);
	snprintf(rules_asof, sizeof rules_asof, "%s/tests/tools/data/asof.rules", srcroot);
	snprintf(csv_asof, sizeof csv_asof, "%s/tests/tools/data/asof.csv", srcroot);
	gargv[0] = gen;
	if (tr_run(gargv, NULL, NULL) != 0) {
		fprintf(stderr, "test-replay: %s failed\n", gen);
		return 1;
	}
	rv = cmocka_run_group_tests(tests, NULL, NULL);
	vt_tmpdir_remove(tmp);
	return rv;
}
