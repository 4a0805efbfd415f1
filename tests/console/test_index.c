/* SPDX-License-Identifier: MIT */
/*
 * tests/console/test_index.c - the console's archive tail and index
 * (console/tail.c, console/index.c) on archives written by the store's own
 * writer: records appended while the tail follows the open segment, a
 * rotation, a compressed segment, a restart from the committed position
 * (nothing counted twice), a label before its record, damage in a closed
 * segment (reported, skipped, the rest indexed), and the queue's filters
 * and orders.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>

#include <cmocka.h>

#include "console.h"

static char tmp[64], datadir[128], archive[160], ixdir[160];
static int64_t t0 = 1704067200000; /* 2024-01-01 */

static void
rm_rf(const char *dir)
{
	char cmd[300];

	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

static store_archive *
archive_open(bool compress)
{
	store_archive_opts o;
	store_archive *ar = NULL;
	store_diag d;

	store_archive_opts_default(&o);
	o.fsync = STORE_FSYNC_NEVER;
	o.compress_closed = compress;
	assert_int_equal(store_archive_open(archive, &o, &ar, NULL, &d), VIGIL_OK);
	return ar;
}

static void
put_scored(store_archive *ar, const char *txn, const char *card, int32_t score, int64_t t,
    const char *rule)
{
	store_scored *s = calloc(1, sizeof *s);
	uint8_t buf[8192];
	size_t len;

	snprintf(s->txn.txn_id, sizeof s->txn.txn_id, "%s", txn);
	snprintf(s->txn.card_id, sizeof s->txn.card_id, "%s", card);
	snprintf(s->txn.merchant_id, sizeof s->txn.merchant_id, "m1");
	memcpy(s->txn.currency, "EUR", 4);
	s->txn.event_time_ms = t;
	s->txn.amount_minor = 1000 + score;
	s->score = score;
	s->decision = score >= 80 ? VIGIL_DECISION_DECLINE : score >= 40 ? VIGIL_DECISION_REVIEW :
	    VIGIL_DECISION_ALLOW;
	if (rule != NULL) {
		s->nhits = 1;
		snprintf(s->hits[0].rule, sizeof s->hits[0].rule, "%s", rule);
		s->hits[0].points = score;
	}
	assert_int_equal(store_scored_encode(s, buf, sizeof buf, &len), VIGIL_OK);
	assert_int_equal(store_archive_append(ar, STORE_REC_SCORE, t, buf, len, NULL), VIGIL_OK);
	free(s);
}

static void
put_label(store_archive *ar, const char *txn, bool fraud, int64_t t)
{
	store_label l = { .fraud = fraud, .label_time_ms = t, .received_at_ms = t };
	uint8_t buf[512];
	size_t len;

	snprintf(l.txn_id, sizeof l.txn_id, "%s", txn);
	snprintf(l.source, sizeof l.source, "chargeback");
	assert_int_equal(store_label_encode(&l, buf, sizeof buf, &len), VIGIL_OK);
	assert_int_equal(store_archive_append(ar, STORE_REC_LABEL, t, buf, len, NULL), VIGIL_OK);
}

static uint32_t
ingest_all(con_index *ix)
{
	char err[256];
	uint32_t n, total = 0;
	bool more = true;

	while (more) {
		assert_int_equal(con_index_ingest(ix, archive, 3, &n, &more, err, sizeof err), VIGIL_OK);
		total += n;
	}
	return total;
}

static con_index *
index_open(void)
{
	con_index *ix = NULL;
	char err[256];

	assert_int_equal(con_index_open(ixdir, 1, &ix, err, sizeof err), VIGIL_OK);
	return ix;
}

static uint64_t
queue_total(con_index *ix, int decision, int status, const char *rule)
{
	con_query q;
	con_case page[50];
	uint32_t n;
	uint64_t total;

	memset(&q, 0, sizeof q);
	q.decision = decision;
	q.status = status;
	q.min_amount = -1;
	q.from_ms = INT64_MIN;
	q.to_ms = INT64_MAX;
	q.limit = 50;
	if (rule != NULL)
		snprintf(q.rule, sizeof q.rule, "%s", rule);
	assert_int_equal(con_index_query(ix, &q, page, 50, &n, &total, NULL), VIGIL_OK);
	return total;
}

static int
setup(void **state)
{
	(void)state;
	snprintf(tmp, sizeof tmp, "/tmp/vigil-console-ix-XXXXXX");
	assert_non_null(mkdtemp(tmp));
	snprintf(datadir, sizeof datadir, "%s/data", tmp);
	snprintf(archive, sizeof archive, "%s/archive", datadir);
	snprintf(ixdir, sizeof ixdir, "%s/index", tmp);
	mkdir(datadir, 0755);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	rm_rf(tmp);
	return 0;
}

static void
test_follow_rotate_restart(void **state)
{
	store_archive *ar = archive_open(true);
	con_index *ix = index_open();
	con_tailpos p;
	store_diag d;

	(void)state;
	/* nothing yet: not an error */
	assert_int_equal(ingest_all(ix), 0);
	put_scored(ar, "a1", "c1", 10, t0, "small");
	put_scored(ar, "a2", "c1", 50, t0 + 1000, "big");
	put_label(ar, "b1", true, t0 + 1500); /* before its record */
	assert_int_equal(ingest_all(ix), 3);
	assert_int_equal(queue_total(ix, VIGIL_DECISION_REVIEW, 0, NULL), 1);
	/* the open segment grows: only the new records are read */
	put_scored(ar, "b1", "c2", 90, t0 + 2000, "big");
	put_scored(ar, "a3", "c1", 60, t0 + 3000, "other");
	assert_int_equal(ingest_all(ix), 2);
	assert_int_equal(queue_total(ix, 0, 2, NULL), 3);
	/* the early label is on the case */
	con_case c;
	assert_int_equal(con_index_case(ix, "b1", &c), VIGIL_OK);
	assert_int_equal(c.label, 1);
	assert_int_equal(queue_total(ix, 0, 0, NULL), 2); /* open: a2, a3 */
	/* rotation, then compression of the closed segment */
	assert_int_equal(store_archive_rotate(ar, &d), VIGIL_OK);
	put_scored(ar, "a4", "c3", 45, t0 + 4000, "big");
	put_label(ar, "a2", false, t0 + 5000);
	assert_int_equal(ingest_all(ix), 2);
	assert_int_equal(store_archive_maintain(ar, &d), VIGIL_OK);
	assert_int_equal(con_index_case(ix, "a2", &c), VIGIL_OK);
	assert_int_equal(c.label, 0);
	assert_string_equal(c.label_source, "chargeback");
	/* a restart resumes: nothing read twice */
	con_index_pos(ix, &p);
	uint64_t scored = p.scored, last = p.last_seq;
	con_index_close(ix);
	put_scored(ar, "a5", "c3", 70, t0 + 6000, "big");
	ix = index_open();
	assert_int_equal(ingest_all(ix), 1);
	con_index_pos(ix, &p);
	assert_int_equal(p.scored, scored + 1);
	assert_int_equal(p.last_seq, last + 1);
	/* per-rule stats: "big" hit a2, b1, a4, a5; b1 fraud, a2 legitimate */
	assert_int_equal(queue_total(ix, 0, 2, "big"), 4);
	/* card history, newest first */
	con_card_txn h[10];
	uint32_t nh;
	assert_int_equal(con_index_card_history(ix, "c1", h, 10, &nh), VIGIL_OK);
	assert_int_equal(nh, 3);
	assert_string_equal(h[0].txn_id, "a3");
	assert_string_equal(h[2].txn_id, "a1");
	/* sort by score */
	con_query q;
	con_case page[10];
	uint32_t n;
	uint64_t total;
	memset(&q, 0, sizeof q);
	q.status = 2;
	q.by_score = true;
	q.min_amount = -1;
	q.from_ms = INT64_MIN;
	q.to_ms = INT64_MAX;
	q.limit = 2;
	assert_int_equal(con_index_query(ix, &q, page, 10, &n, &total, NULL), VIGIL_OK);
	assert_int_equal(total, 5);
	assert_int_equal(n, 2);
	assert_string_equal(page[0].txn_id, "b1");
	assert_string_equal(page[1].txn_id, "a5");
	q.offset = 4;
	assert_int_equal(con_index_query(ix, &q, page, 10, &n, &total, NULL), VIGIL_OK);
	assert_int_equal(n, 1);
	assert_string_equal(page[0].txn_id, "a4");
	/* time window [from, to) */
	q.offset = 0;
	q.by_score = false;
	q.from_ms = t0 + 2000;
	q.to_ms = t0 + 4000;
	assert_int_equal(con_index_query(ix, &q, page, 10, &n, &total, NULL), VIGIL_OK);
	assert_int_equal(total, 2);
	assert_string_equal(page[0].txn_id, "a3");
	assert_string_equal(page[1].txn_id, "b1");
	con_index_close(ix);
	/* a fresh index reads the compressed segment too */
	DIR *dir = opendir(archive);
	struct dirent *e;
	bool zst = false;
	while ((e = readdir(dir)) != NULL)
		zst = zst || strstr(e->d_name, ".log.zst") != NULL;
	closedir(dir);
	assert_true(zst);
	rm_rf(ixdir);
	ix = index_open();
	assert_int_equal(ingest_all(ix), 8); /* 6 scored, 2 labels */
	assert_int_equal(queue_total(ix, 0, 2, NULL), 5);
	con_index_close(ix);
	store_archive_close(ar);
}

/* A closed segment with a damaged record in the middle: reported, skipped,
 * and every other record indexed. */
static void
test_damage_in_closed_segment(void **state)
{
	store_archive *ar;
	con_index *ix;
	store_diag d;
	con_tailpos p;
	char seg[600] = "";
	DIR *dir;
	struct dirent *e;

	(void)state;
	rm_rf(datadir);
	rm_rf(ixdir);
	mkdir(datadir, 0755);
	ar = archive_open(false);
	for (int i = 0; i < 10; i++) {
		char id[16];
		snprintf(id, sizeof id, "d%d", i);
		put_scored(ar, id, "c9", 50, t0 + i * 1000, "big");
	}
	assert_int_equal(store_archive_rotate(ar, &d), VIGIL_OK);
	put_scored(ar, "d10", "c9", 50, t0 + 10000, "big");
	store_archive_close(ar);
	dir = opendir(archive);
	while ((e = readdir(dir)) != NULL)
		if (strstr(e->d_name, "-00000000000000000001.log") != NULL)
			snprintf(seg, sizeof seg, "%s/%s", archive, e->d_name);
	closedir(dir);
	assert_true(seg[0] != '\0');
	/* flip a payload byte of the fifth record */
	struct stat st;
	assert_int_equal(stat(seg, &st), 0);
	int fd = open(seg, O_RDWR);
	off_t off = st.st_size / 2;
	unsigned char b;
	assert_int_equal(pread(fd, &b, 1, off), 1);
	b ^= 0xff;
	assert_int_equal(pwrite(fd, &b, 1, off), 1);
	close(fd);
	ix = index_open();
	uint32_t n = ingest_all(ix);
	con_index_pos(ix, &p);
	assert_int_equal(n, 10); /* 11 written, one damaged */
	assert_true(p.corrupt >= 1);
	assert_int_equal(queue_total(ix, 0, 2, NULL), 10);
	con_case c;
	assert_int_equal(con_index_case(ix, "d10", &c), VIGIL_OK);
	con_index_close(ix);
}

/* Retention: hits of transactions older than keep_days (before the newest
 * one indexed) go; the rest, and the cases, stay. */
static void
test_prune(void **state)
{
	store_archive *ar;
	con_index *ix;
	bool done = false;
	uint64_t deleted = 0, total = 0;
	con_case c;

	(void)state;
	rm_rf(datadir);
	rm_rf(ixdir);
	mkdir(datadir, 0755);
	ar = archive_open(false);
	for (int i = 0; i < 7; i++) {
		char id[16];
		snprintf(id, sizeof id, "p%d", i);
		put_scored(ar, id, "c7", i == 3 ? 50 : 10, t0 + i * 1000, "old");
		put_label(ar, id, true, t0 + i * 1000 + 1);
	}
	put_scored(ar, "p7", "c7", 10, t0 + 200 * VIGIL_MS_PER_DAY, "new");
	put_label(ar, "p7", true, t0 + 200 * VIGIL_MS_PER_DAY + 1);
	/* allowed with no rule hit, labelled (a chargeback) on the newest day:
	 * its label-only entry stays */
	put_scored(ar, "q1", "c8", 0, t0 + 199 * VIGIL_MS_PER_DAY, NULL);
	put_label(ar, "q1", true, t0 + 200 * VIGIL_MS_PER_DAY + 2);
	/* a new entry whose id sorts first: a sweep that started over from
	 * the first key instead of resuming would never get past p7 */
	put_scored(ar, "a0", "c9", 10, t0 + 200 * VIGIL_MS_PER_DAY + 3, "new");
	put_label(ar, "a0", false, t0 + 200 * VIGIL_MS_PER_DAY + 4);
	store_archive_close(ar);
	ix = index_open();
	assert_int_equal(ingest_all(ix), 20);
	assert_int_equal(con_index_label_of(ix, "p0"), 1);
	assert_int_equal(con_index_label_of(ix, "p6"), 1);
	/* two entries per call: the sweep resumes where it stopped */
	for (int i = 0; i < 20 && !done; i++) {
		assert_int_equal(con_index_prune(ix, 180, vigil_now_ms(), 2, &done, &deleted), VIGIL_OK);
		total += deleted;
	}
	assert_true(done);
	assert_int_equal(total, 7);
	for (int i = 0; i < 7; i++) {
		char id[16];
		snprintf(id, sizeof id, "p%d", i);
		assert_int_equal(con_index_label_of(ix, id), -1);
	}
	assert_int_equal(con_index_label_of(ix, "p7"), 1);
	assert_int_equal(con_index_label_of(ix, "q1"), 1);
	assert_int_equal(con_index_label_of(ix, "a0"), 0);
	assert_int_equal(con_index_case(ix, "p3", &c), VIGIL_OK); /* cases stay */
	/* nothing more to do */
	assert_int_equal(con_index_prune(ix, 180, vigil_now_ms(), 100, &done, &deleted), VIGIL_OK);
	assert_true(done);
	assert_int_equal(deleted, 0);
	con_index_close(ix);
}

/* The query of the queue's reviews, every time, 3 a page. */
static void
reviews_query(con_query *q, bool by_score)
{
	memset(q, 0, sizeof *q);
	q->decision = VIGIL_DECISION_REVIEW;
	q->by_score = by_score;
	q->min_amount = -1;
	q->from_ms = INT64_MIN;
	q->to_ms = INT64_MAX;
	q->limit = 3;
}

/* The queue's open reviews, limit 3, after cursor ("" none), into page. */
static uint32_t
queue_page(con_index *ix, bool by_score, const char *after, con_case *page, con_page *ret_pg,
    uint64_t *ret_total)
{
	con_query q;
	uint32_t n = 0;

	reviews_query(&q, by_score);
	snprintf(q.after, sizeof q.after, "%s", after);
	assert_int_equal(con_index_query_page(ix, &q, page, 3, &n, ret_total, NULL, ret_pg),
	    VIGIL_OK);
	return n;
}

/*
 * Pages by score over more cases than a page, scores tied in groups: walked
 * by cursor, every case comes once, in order (score down, newest first on a
 * tie); a page by offset is the same stretch of that walk (the query keeps
 * offset + limit of them in a heap, not every match).
 */
static void
test_queue_by_score_pages(void **state)
{
	enum { N = 120 };
	store_archive *ar;
	con_index *ix;
	con_case p[3];
	con_page pg;
	con_query q;
	uint64_t total;
	uint32_t n, seen = 0;
	char after[CON_CURSOR_MAX] = "", walk[N][16];
	double prev_s = 1e9;
	int64_t prev_t = INT64_MAX;

	(void)state;
	rm_rf(datadir);
	rm_rf(ixdir);
	mkdir(datadir, 0755);
	ar = archive_open(false);
	for (int i = 0; i < N; i++) {
		char id[16];
		snprintf(id, sizeof id, "s%d", i);
		put_scored(ar, id, "c1", 40 + (i * 37) % 23, t0 + i * 1000, "big");
	}
	ix = index_open();
	assert_int_equal(ingest_all(ix), N);
	do {
		n = queue_page(ix, true, after, p, &pg, &total);
		assert_int_equal(total, N);
		assert_int_equal(pg.offset, seen);
		for (uint32_t i = 0; i < n; i++) {
			assert_true(p[i].score < prev_s ||
			    (p[i].score == prev_s && p[i].event_time_ms < prev_t));
			prev_s = p[i].score;
			prev_t = p[i].event_time_ms;
			assert_true(seen < N);
			snprintf(walk[seen++], sizeof walk[0], "%s", p[i].txn_id);
		}
		snprintf(after, sizeof after, "%s", pg.next);
	} while (after[0] != '\0');
	assert_int_equal(seen, N);
	reviews_query(&q, true);
	q.offset = 61;
	assert_int_equal(con_index_query_page(ix, &q, p, 3, &n, &total, NULL, &pg), VIGIL_OK);
	assert_int_equal(n, 3);
	assert_int_equal(pg.offset, 61);
	for (uint32_t i = 0; i < n; i++)
		assert_string_equal(p[i].txn_id, walk[61 + i]);
	q.offset = N + 5; /* past the end: nothing, the offset where the rows end */
	assert_int_equal(con_index_query_page(ix, &q, p, 3, &n, &total, NULL, &pg), VIGIL_OK);
	assert_int_equal(n, 0);
	assert_int_equal(pg.offset, N);
	con_index_close(ix);
	store_archive_close(ar);
}

/*
 * Keyset pages: the page after page 1's `next` starts at the row after
 * page 1's last, whatever came or went above it meanwhile (a new case
 * newer than all, a case labelled out of the open queue), where an offset
 * shows a row twice or skips one; its offset says where it is now. A
 * cursor of the other order, or no cursor at all, is refused.
 */
static void
test_queue_cursor(void **state)
{
	store_archive *ar;
	con_index *ix;
	con_case p[3];
	con_page pg, pg2;
	uint64_t total;
	con_query q;
	uint32_t n;
	char next[CON_CURSOR_MAX];

	(void)state;
	rm_rf(datadir);
	rm_rf(ixdir);
	mkdir(datadir, 0755);
	ar = archive_open(false);
	for (int i = 0; i < 6; i++) {
		char id[16];
		snprintf(id, sizeof id, "k%d", i);
		put_scored(ar, id, "c1", 50 + i, t0 + i * 1000, "big");
	}
	ix = index_open();
	assert_int_equal(ingest_all(ix), 6);
	/* newest first: k5 k4 k3, then a newer case comes: k2 k1 k0 */
	assert_int_equal(queue_page(ix, false, "", p, &pg, &total), 3);
	assert_string_equal(p[2].txn_id, "k3");
	assert_int_equal(pg.offset, 0);
	assert_true(pg.next[0] == 't');
	snprintf(next, sizeof next, "%s", pg.next);
	put_scored(ar, "k6", "c1", 56, t0 + 6000, "big");
	assert_int_equal(ingest_all(ix), 1);
	assert_int_equal(queue_page(ix, false, next, p, &pg2, &total), 3);
	assert_string_equal(p[0].txn_id, "k2");
	assert_string_equal(p[2].txn_id, "k0");
	assert_int_equal(pg2.offset, 4);
	assert_int_equal(total, 7);
	assert_string_equal(pg2.next, ""); /* the last page */
	/* by score: k6 k5 k4, then k5 is labelled (it leaves): k3 k2 k1, k0 */
	assert_int_equal(queue_page(ix, true, "", p, &pg, &total), 3);
	assert_string_equal(p[2].txn_id, "k4");
	assert_true(pg.next[0] == 's');
	snprintf(next, sizeof next, "%s", pg.next);
	assert_int_equal(con_index_case_label(ix, "k5", true, "analyst:alice", t0 + 7000),
	    VIGIL_OK);
	assert_int_equal(queue_page(ix, true, next, p, &pg2, &total), 3);
	assert_string_equal(p[0].txn_id, "k3");
	assert_string_equal(p[2].txn_id, "k1");
	assert_int_equal(pg2.offset, 2);
	assert_int_equal(total, 6);
	assert_int_equal(queue_page(ix, true, pg2.next, p, &pg, &total), 1);
	assert_string_equal(p[0].txn_id, "k0");
	assert_string_equal(pg.next, "");
	/* a cursor of the other order, or not a cursor */
	memset(&q, 0, sizeof q);
	q.min_amount = -1;
	q.from_ms = INT64_MIN;
	q.to_ms = INT64_MAX;
	q.limit = 3;
	snprintf(q.after, sizeof q.after, "%s", next);
	assert_int_equal(con_index_query_page(ix, &q, p, 3, &n, &total, NULL, &pg),
	    VIGIL_EINVAL);
	snprintf(q.after, sizeof q.after, "t00zz");
	assert_int_equal(con_index_query_page(ix, &q, p, 3, &n, &total, NULL, &pg),
	    VIGIL_EINVAL);
	con_index_close(ix);
	store_archive_close(ar);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_follow_rotate_restart),
		cmocka_unit_test(test_damage_in_closed_segment),
		cmocka_unit_test(test_prune),
		cmocka_unit_test(test_queue_cursor),
		cmocka_unit_test(test_queue_by_score_pages),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
