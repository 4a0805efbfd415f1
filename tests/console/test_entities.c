/* SPDX-License-Identifier: MIT */
/*
 * tests/console/test_entities.c - the entity index (console/entities.c)
 * and the search it answers (console/scan.c) on archives of many segments
 * written by the store's own writer: a search by card, merchant, terminal,
 * device or ip returns exactly what a full scan of the archive returns,
 * plain or compressed segments; a restart reuses the index (nothing read
 * again); a damaged index is rebuilt; retention drops the entries of the
 * segments it deleted; a record damaged on disk, plain or compressed, is
 * passed over by both searches, which say where.
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

#include <cmocka.h>

#include "console.h"
#include "entities.h"
#include "segment.h"

#define NREC   2000
#define PERSEG 50 /* records a segment: 40 segments */
#define NCARDS 30

static char tmp[64], datadir[128], archive[160], ixdir[160], entsdir[160];
static const int64_t t0 = 1704067200000; /* 2024-01-01 */
static con_app app;

static void
rm_rf(const char *dir)
{
	char cmd[300];

	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

static void
put_scored(store_archive *ar, uint32_t i)
{
	store_scored *s = calloc(1, sizeof *s);
	uint8_t buf[8192];
	size_t len;

	assert_non_null(s);
	snprintf(s->txn.txn_id, sizeof s->txn.txn_id, "t%05u", i);
	snprintf(s->txn.card_id, sizeof s->txn.card_id, "c%02u", (i * 7u) % NCARDS);
	snprintf(s->txn.merchant_id, sizeof s->txn.merchant_id, "m%u", i % 5u);
	snprintf(s->txn.terminal_id, sizeof s->txn.terminal_id, "m%u-t%u", i % 5u, (i / 5u) % 3u);
	if (i % 4 == 0)
		snprintf(s->txn.device_id, sizeof s->txn.device_id, "d%u", i % 11u);
	if (i % 3 == 0)
		snprintf(s->txn.ip, sizeof s->txn.ip, "10.0.0.%u", i % 13u);
	memcpy(s->txn.currency, "EUR", 4);
	/* a minute apart, every 9th an hour late (archive order is not time order) */
	s->txn.event_time_ms = t0 + (int64_t)i * 60000 - (i % 9 == 0 ? 3600000 : 0);
	s->txn.amount_minor = 100 + (int64_t)(i * 37u % 20000u);
	s->score = (float)(i % 100u);
	s->decision = i % 100 >= 90 ? VIGIL_DECISION_DECLINE : i % 100 >= 60 ?
	    VIGIL_DECISION_REVIEW : VIGIL_DECISION_ALLOW;
	assert_int_equal(store_scored_encode(s, buf, sizeof buf, &len), VIGIL_OK);
	assert_int_equal(store_archive_append(ar, STORE_REC_SCORE, s->txn.event_time_ms, buf, len,
	    NULL), VIGIL_OK);
	free(s);
}

static void
put_label(store_archive *ar, uint32_t i)
{
	store_label l = { .fraud = true, .label_time_ms = t0, .received_at_ms = t0 };
	uint8_t buf[512];
	size_t len;

	snprintf(l.txn_id, sizeof l.txn_id, "t%05u", i);
	snprintf(l.source, sizeof l.source, "chargeback");
	assert_int_equal(store_label_encode(&l, buf, sizeof buf, &len), VIGIL_OK);
	assert_int_equal(store_archive_append(ar, STORE_REC_LABEL, t0 + (int64_t)i * 60000, buf, len,
	    NULL), VIGIL_OK);
}

/* Records [from, to) of the sequence, a segment every PERSEG. */
static void
write_archive(uint32_t from, uint32_t to, bool compress)
{
	store_archive_opts o;
	store_archive *ar = NULL;
	store_diag d;

	store_archive_opts_default(&o);
	o.fsync = STORE_FSYNC_NEVER;
	o.compress_closed = compress;
	assert_int_equal(store_archive_open(archive, &o, &ar, NULL, &d), VIGIL_OK);
	for (uint32_t i = from; i < to; i++) {
		if (i > from && i % PERSEG == 0)
			assert_int_equal(store_archive_rotate(ar, &d), VIGIL_OK);
		put_scored(ar, i);
		if (i % 17 == 0)
			put_label(ar, i);
	}
	if (compress)
		assert_int_equal(store_archive_maintain(ar, &d), VIGIL_OK);
	store_archive_close(ar);
}

static con_ents *
ents_open(char *note, size_t notelen)
{
	con_ents *e = NULL;
	char err[256];

	assert_int_equal(con_ents_open(entsdir, 1, &e, note, notelen, err, sizeof err), VIGIL_OK);
	return e;
}

static uint64_t
ents_ingest_all(con_ents *e)
{
	char err[256];
	uint32_t n;
	uint64_t total = 0;
	bool more = true;

	while (more) {
		assert_int_equal(con_ents_ingest(e, archive, 333, &n, &more, err, sizeof err),
		    VIGIL_OK);
		total += n;
	}
	return total;
}

static void
index_ingest_all(void)
{
	char err[256];
	uint32_t n;
	bool more = true;

	while (more)
		assert_int_equal(con_index_ingest(app.ix, archive, 1000, &n, &more, err, sizeof err),
		    VIGIL_OK);
}

static int
setup(void **state)
{
	(void)state;
	snprintf(tmp, sizeof tmp, "/tmp/vigil-console-ents-XXXXXX");
	assert_non_null(mkdtemp(tmp));
	snprintf(datadir, sizeof datadir, "%s/data", tmp);
	snprintf(archive, sizeof archive, "%s/archive", datadir);
	snprintf(ixdir, sizeof ixdir, "%s/index", tmp);
	snprintf(entsdir, sizeof entsdir, "%s/entities", tmp);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	rm_rf(tmp);
	return 0;
}

/* Each test: a fresh archive, queue index and entity index. */
static void
fresh(bool compress)
{
	char err[256], note[512];

	rm_rf(datadir);
	rm_rf(ixdir);
	rm_rf(entsdir);
	mkdir(datadir, 0755);
	write_archive(0, NREC, compress);
	memset(&app, 0, sizeof app);
	snprintf(app.archive_dir, sizeof app.archive_dir, "%s", archive);
	assert_int_equal(con_index_open(ixdir, 1, &app.ix, err, sizeof err), VIGIL_OK);
	index_ingest_all();
	app.ents = ents_open(note, sizeof note);
	assert_string_equal(note, "");
}

static void
done(void)
{
	con_ents_close(app.ents);
	con_index_close(app.ix);
	app.ents = NULL;
	app.ix = NULL;
}

/* The archive's segment files ending in suffix (".log" or ".log.zst"), in
 * sequence order (store_seg_list; strdup'd into names[0..256)); how many. */
static size_t
seg_names(char **names, const char *suffix)
{
	store_seg_ent *ents = NULL;
	store_diag d;
	size_t ne = 0, n = 0;
	bool zst = strcmp(suffix, ".log.zst") == 0;
	char name[STORE_SEG_BASE_LEN + 16];

	assert_int_equal(store_seg_list(archive, &ents, &ne, &d), VIGIL_OK);
	for (size_t i = 0; i < ne && n < 256; i++) {
		if (!(zst ? ents[i].has_zst : ents[i].has_log))
			continue;
		snprintf(name, sizeof name, "%s%s", ents[i].base, suffix);
		names[n++] = strdup(name);
	}
	free(ents);
	return n;
}

static void
free_names(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
}

/* A fresh archive (compressed or not) with both indexes caught up; its
 * segment files into names (seg_names), at least 30 of them. */
static size_t
fresh_segs(bool compress, char **names)
{
	size_t n;

	fresh(compress);
	ents_ingest_all(app.ents);
	n = seg_names(names, compress ? ".log.zst" : ".log");
	assert_true(n >= 30);
	return n;
}

/* Flips one bit of the byte at off of the archive's file name; off < 0:
 * the middle of the file. */
static void
flip_byte(const char *name, off_t off)
{
	char path[400];
	struct stat st;
	uint8_t b;
	int fd;

	snprintf(path, sizeof path, "%s/%s", archive, name);
	fd = open(path, O_RDWR);
	assert_true(fd >= 0 && fstat(fd, &st) == 0 && st.st_size > 64);
	if (off < 0)
		off = st.st_size / 2;
	assert_int_equal(pread(fd, &b, 1, off), 1);
	b ^= 0x40;
	assert_int_equal(pwrite(fd, &b, 1, off), 1);
	close(fd);
}

/* ---- the reference: every record of the archive, filtered here ---- */

typedef struct ref_ctx {
	const con_search_q *q;
	json_t             *ids;
} ref_ctx;

static bool
ref_each(void *arg, const store_scored *s)
{
	ref_ctx *c = arg;
	const con_search_q *q = c->q;
	const vigil_txn *t = &s->txn;
	double amount = vigil_txn_amount(t);

	if ((q->card[0] && strcmp(q->card, t->card_id) != 0) ||
	    (q->merchant[0] && strcmp(q->merchant, t->merchant_id) != 0) ||
	    (q->terminal[0] && strcmp(q->terminal, t->terminal_id) != 0) ||
	    (q->device[0] && strcmp(q->device, t->device_id) != 0) ||
	    (q->ip[0] && strcmp(q->ip, t->ip) != 0) ||
	    (q->decision != 0 && (int)s->decision != q->decision) ||
	    (q->min_amount >= 0 && amount < q->min_amount) ||
	    (q->max_amount >= 0 && amount > q->max_amount) ||
	    (q->label != -2 && con_index_label_of(app.ix, t->txn_id) != q->label))
		return true;
	json_array_append_new(c->ids, json_string(t->txn_id));
	return true;
}

static void
q_init(con_search_q *q)
{
	memset(q, 0, sizeof *q);
	q->min_amount = q->max_amount = -1;
	q->label = -2;
	q->limit = 200;
	q->from_ms = INT64_MIN;
	q->to_ms = INT64_MAX;
}

/* q by the entity index equals the full scan's first q->limit records,
 * and reads no more records than the entity has; returns the matches. */
static size_t
check_search(const con_search_q *q)
{
	static store_scored s;
	ref_ctx rc = { q, json_array() };
	json_t *items = json_array();
	uint64_t scanned = 0;
	con_damage dmg = { 0 };
	bool more = false;
	char err[600];
	size_t want;

	assert_true(con_search_by_index(&app, q));
	assert_int_equal(con_search_scan(&app, q->from_ms, q->to_ms, NULL, &s, ref_each, &rc,
	    &scanned, &dmg, err, sizeof err), VIGIL_OK);
	assert_int_equal(con_search_run(&app, q, items, &more, &scanned, &dmg, err, sizeof err),
	    VIGIL_OK);
	assert_int_equal(dmg.n, 0);
	want = json_array_size(rc.ids) < q->limit ? json_array_size(rc.ids) : q->limit;
	assert_int_equal(json_array_size(items), want);
	assert_int_equal(more, json_array_size(rc.ids) > q->limit);
	for (size_t i = 0; i < want; i++)
		assert_string_equal(json_string_value(json_object_get(json_array_get(items, i),
		    "txn_id")), json_string_value(json_array_get(rc.ids, i)));
	/* only the entity's records were read, not the archive */
	assert_true(scanned <= NREC / 4);
	json_decref(items);
	json_decref(rc.ids);
	return want;
}

static void
check_all_kinds(void)
{
	con_search_q q;
	size_t found = 0;

	for (int c = 0; c < NCARDS; c++) {
		q_init(&q);
		snprintf(q.card, sizeof q.card, "c%02d", c);
		found += check_search(&q);
	}
	assert_true(found > 0);
	q_init(&q);
	snprintf(q.merchant, sizeof q.merchant, "m3");
	assert_int_equal(check_search(&q), 200); /* 400 records: the first 200, more */
	q.decision = VIGIL_DECISION_REVIEW;
	q.min_amount = 50;
	q.max_amount = 150;
	check_search(&q);
	q_init(&q);
	snprintf(q.terminal, sizeof q.terminal, "m2-t1");
	/* t00307 (m2-t1) is 1 ms before from, in from's second: out */
	q.from_ms = t0 + 307 * 60000 + 1;
	q.to_ms = t0 + 907 * 60000 + 1; /* t00907 (m2-t1) in */
	assert_true(check_search(&q) > 0);
	q_init(&q);
	snprintf(q.device, sizeof q.device, "d7");
	assert_true(check_search(&q) > 0);
	q_init(&q);
	snprintf(q.ip, sizeof q.ip, "10.0.0.5");
	q.label = 1;
	check_search(&q);
	q.label = -1;
	assert_true(check_search(&q) > 0);
	/* two ids: the rarer's positions, both filters */
	q_init(&q);
	snprintf(q.card, sizeof q.card, "c07");
	snprintf(q.merchant, sizeof q.merchant, "m1");
	check_search(&q);
	/* an id nobody has: nothing, nothing read */
	q_init(&q);
	snprintf(q.card, sizeof q.card, "nobody");
	assert_int_equal(check_search(&q), 0);
}

static void
test_search_exact_plain(void **state)
{
	con_ents_stats st;

	(void)state;
	fresh(false);
	/* not caught up yet: the search scans (bounded) */
	con_search_q q;
	q_init(&q);
	snprintf(q.card, sizeof q.card, "c01");
	assert_false(con_search_by_index(&app, &q));
	assert_int_equal(ents_ingest_all(app.ents), NREC + (NREC + 16) / 17);
	con_ents_get_stats(app.ents, &st);
	assert_int_equal(st.origin, CON_ENTS_NEW);
	assert_true(st.ready);
	assert_int_equal(st.records, NREC);
	assert_int_equal(st.entries, NREC * 3 + NREC / 4 + (NREC + 2) / 3);
	check_all_kinds();
	done();
}

static void
test_search_exact_compressed(void **state)
{
	char *names[256];
	size_t zst;

	(void)state;
	fresh(true);
	zst = seg_names(names, ".log.zst");
	free_names(names, zst);
	assert_true(zst >= 30);
	ents_ingest_all(app.ents);
	check_all_kinds();
	done();
}

/* A restart resumes from the committed position: nothing read again. */
static void
test_restart_reuses(void **state)
{
	con_ents_stats st;
	char note[512];
	con_search_q q;

	(void)state;
	fresh(false);
	ents_ingest_all(app.ents);
	con_ents_close(app.ents);
	write_archive(NREC, NREC + 100, false);
	index_ingest_all();
	app.ents = ents_open(note, sizeof note);
	assert_string_equal(note, "");
	con_ents_get_stats(app.ents, &st);
	assert_int_equal(st.origin, CON_ENTS_REUSED);
	assert_int_equal(st.records, NREC);
	assert_int_equal(ents_ingest_all(app.ents), 100 + 6); /* the new records only */
	con_ents_get_stats(app.ents, &st);
	assert_int_equal(st.ingested, 106);
	assert_int_equal(st.records, NREC + 100);
	q_init(&q);
	snprintf(q.card, sizeof q.card, "c%02u", (NREC * 7u) % NCARDS); /* has a new record */
	check_search(&q);
	done();
}

/* A damaged environment is removed and built again, with a note. */
static void
test_damaged_rebuilt(void **state)
{
	con_ents_stats st;
	char note[512], path[300], junk[8192];
	int fd;

	(void)state;
	fresh(false);
	ents_ingest_all(app.ents);
	con_ents_close(app.ents);
	app.ents = NULL;
	snprintf(path, sizeof path, "%s/data.mdb", entsdir);
	memset(junk, 0x5a, sizeof junk);
	fd = open(path, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, junk, sizeof junk, 0), (ssize_t)sizeof junk);
	close(fd);
	app.ents = ents_open(note, sizeof note);
	assert_non_null(strstr(note, "rebuilt from the archive"));
	assert_non_null(strstr(note, entsdir));
	con_ents_get_stats(app.ents, &st);
	assert_int_equal(st.origin, CON_ENTS_REBUILT);
	assert_int_equal(st.records, 0);
	ents_ingest_all(app.ents);
	check_all_kinds();
	done();
}

/* Retention deleted the oldest segments: their entries go. */
static void
test_retention(void **state)
{
	con_ents_stats st;
	char *names[256], path[400];
	size_t n;
	uint64_t entries, del, total = 0;
	con_search_q q;
	bool fin = false;

	(void)state;
	fresh(false);
	ents_ingest_all(app.ents);
	con_ents_get_stats(app.ents, &st);
	entries = st.entries;
	/* nothing gone: nothing to do */
	assert_int_equal(con_ents_prune(app.ents, archive, 100, &fin, &del), VIGIL_OK);
	assert_true(fin);
	assert_int_equal(del, 0);
	n = seg_names(names, ".log");
	assert_true(n >= 40);
	/* the 10 oldest segments: 500 records */
	for (size_t i = 0; i < 10; i++) {
		snprintf(path, sizeof path, "%s/%s", archive, names[i]);
		assert_int_equal(unlink(path), 0);
		strcpy(strstr(path, ".log"), ".idx");
		(void)unlink(path);
	}
	free_names(names, n);
	/* a few keys a call: the sweep resumes where it stopped */
	fin = false;
	for (int i = 0; i < 100 && !fin; i++) {
		assert_int_equal(con_ents_prune(app.ents, archive, 7, &fin, &del), VIGIL_OK);
		total += del;
	}
	assert_true(fin);
	/* records 0..499: 3 ids each, a device every 4th, an ip every 3rd */
	assert_int_equal(total, 500 * 3 + 125 + 167);
	con_ents_get_stats(app.ents, &st);
	assert_int_equal(st.entries, entries - total);
	assert_int_equal(st.pruned, total);
	q_init(&q);
	snprintf(q.card, sizeof q.card, "c00");
	assert_true(con_ents_count(app.ents, CON_ENT_CARD, "c00") < NREC / NCARDS);
	check_all_kinds();
	/* a second sweep finds nothing new */
	assert_int_equal(con_ents_prune(app.ents, archive, 100, &fin, &del), VIGIL_OK);
	assert_true(fin);
	assert_int_equal(del, 0);
	done();
}

/* The card of the first scored record of segment name (the 4th of the
 * archive) and where that record is: [*ret_off, *ret_next). */
static void
first_record(const char *name, char *card, size_t cardlen, uint64_t *ret_off,
    uint64_t *ret_next)
{
	static store_scored s;
	store_reader *rd = NULL;
	store_record r;
	store_diag d;
	char path[400];
	bool have = false;

	snprintf(path, sizeof path, "%s/%s", archive, name);
	assert_int_equal(store_reader_open_segment(path, NULL, NULL, &rd, &d), VIGIL_OK);
	*ret_next = 0;
	while (*ret_next == 0 && store_reader_next(rd, &r, &d) == VIGIL_OK) {
		if (have) {
			*ret_next = r.offset;
		} else if (r.type == STORE_REC_SCORE) {
			assert_int_equal(store_scored_decode(r.payload, r.len, &s, &d), VIGIL_OK);
			snprintf(card, cardlen, "%s", s.txn.card_id);
			*ret_off = r.offset;
			have = true;
		}
	}
	store_reader_close(rd);
	assert_true(have && *ret_next > *ret_off + 64);
}

/* q's search by the entity index and the full scan it is checked against
 * (check_search): the same records; each pass's count of what it passed
 * over in *ret_run and *ret_scan, the first of each in run_first. */
static void
search_damaged(const con_search_q *q, uint64_t *ret_run, uint64_t *ret_scan,
    char *run_first, size_t firstlen)
{
	static store_scored s;
	ref_ctx rc = { q, json_array() };
	json_t *items = json_array();
	con_damage rd = { 0 }, sd = { 0 };
	uint64_t scanned = 0;
	bool more = false;
	char err[600];

	assert_int_equal(con_search_scan(&app, q->from_ms, q->to_ms, NULL, &s, ref_each, &rc,
	    &scanned, &sd, err, sizeof err), VIGIL_OK);
	assert_int_equal(con_search_run(&app, q, items, &more, &scanned, &rd, err, sizeof err),
	    VIGIL_OK);
	assert_int_equal(json_array_size(items), json_array_size(rc.ids));
	for (size_t i = 0; i < json_array_size(items); i++)
		assert_string_equal(json_string_value(json_object_get(json_array_get(items, i),
		    "txn_id")), json_string_value(json_array_get(rc.ids, i)));
	*ret_run = rd.n;
	*ret_scan = sd.n;
	snprintf(run_first, firstlen, "%s", rd.first);
	json_decref(items);
	json_decref(rc.ids);
}

/*
 * A record damaged on disk: a search by the entity index passes over it as
 * the full scan does, and both say so, naming the segment and the offset
 * (they passed it over silently: a search looked complete when it was
 * not). A search that does not reach it reports nothing.
 */
static void
test_damaged_record(void **state)
{
	char *names[256], card[VIGIL_ID_MAX + 1], where[128], first[256];
	uint64_t off = 0, next = 0, run, scan;
	size_t n;
	con_search_q q;

	(void)state;
	n = fresh_segs(false, names);
	first_record(names[3], card, sizeof card, &off, &next);
	q_init(&q);
	snprintf(q.card, sizeof q.card, "%s", card);
	search_damaged(&q, &run, &scan, first, sizeof first);
	assert_int_equal(run, 0);
	assert_int_equal(scan, 0);
	/* one byte of its payload flipped: its CRC fails */
	flip_byte(names[3], (off_t)((off + next) / 2));
	search_damaged(&q, &run, &scan, first, sizeof first);
	assert_int_equal(run, 1);
	assert_int_equal(scan, 1);
	snprintf(where, sizeof where, "%s:%llu: ", names[3], (unsigned long long)off);
	if (strncmp(first, where, strlen(where)) != 0)
		fail_msg("first unreadable: \"%s\", want it to start \"%s\"", first, where);
	/* a card none of whose records is in that stretch: nothing passed over */
	snprintf(q.card, sizeof q.card, "c%02u", (unsigned)(strcmp(card, "c00") == 0 ? 1 : 0));
	search_damaged(&q, &run, &scan, first, sizeof first);
	assert_int_equal(run, 0);
	assert_int_equal(scan, 1); /* the scan reads the whole archive */
	free_names(names, n);
	done();
}

/* The cases of the segment whose first sequence number is first. */
typedef struct seg_cases {
	uint64_t first;
	con_case c[64];
	size_t   n;
} seg_cases;

static bool
seg_case(void *arg, const con_case *c)
{
	seg_cases *sc = arg;

	if (c->seg_first == sc->first && sc->n < 64)
		sc->c[sc->n++] = *c;
	return true;
}

/* The same in a compressed segment: a byte flipped inside its zstd data
 * loses the records of that zstd frame; both searches pass over them alike
 * and say so (the reader of the segment reports the damaged frame). */
static void
test_damaged_compressed(void **state)
{
	static seg_cases sc;
	static store_scored rec;
	char *names[256], first[256], runfirst[256] = "", err[600];
	uint64_t run, scan, runs = 0;
	size_t lost = 0, n;
	bool trunc;
	con_search_q q;

	(void)state;
	n = fresh_segs(true, names);
	/* seg-YYYYMMDD-FIRST.log.zst: its cases (reviews and declines) */
	memset(&sc, 0, sizeof sc);
	sc.first = strtoull(names[3] + 13, NULL, 10);
	assert_int_equal(con_index_cases_each(app.ix, INT64_MIN, INT64_MAX, NREC, seg_case, &sc,
	    &trunc), VIGIL_OK);
	assert_true(sc.n > 0);
	flip_byte(names[3], -1);
	for (int c = 0; c < NCARDS; c++) {
		q_init(&q);
		snprintf(q.card, sizeof q.card, "c%02d", c);
		search_damaged(&q, &run, &scan, first, sizeof first);
		assert_true(scan >= 1);
		if (run > 0 && runfirst[0] == '\0')
			snprintf(runfirst, sizeof runfirst, "%s", first);
		runs += run;
	}
	/* some card's records are in or past the damaged frame */
	assert_true(runs >= 1);
	if (strncmp(runfirst, names[3], strlen(names[3])) != 0)
		fail_msg("first unreadable: \"%s\", want it in %s", runfirst, names[3]);
	/* a case whose record was lost says the segment is damaged, where */
	for (size_t i = 0; i < sc.n; i++) {
		if (con_archive_fetch(archive, &sc.c[i], &rec, err, sizeof err) == VIGIL_OK)
			continue;
		if (strstr(err, "the segment is damaged") == NULL || strstr(err, names[3]) == NULL)
			fail_msg("case at seq %llu: \"%s\"", (unsigned long long)sc.c[i].seq, err);
		lost++;
	}
	assert_true(lost >= 1);
	free_names(names, n);
	done();
}

/*
 * A segment that will not open (a directory where its compressed file
 * was: "not a regular file"): every record the entity index puts there is
 * passed over and counted, naming the segment and why, and the search
 * still answers with the rest.
 */
static void
test_unopenable_segment(void **state)
{
	char *names[256], path[700], err[600];
	uint64_t total = 0, scanned, found = 0;
	size_t n;
	bool more;
	con_search_q q;

	(void)state;
	n = fresh_segs(true, names);
	snprintf(path, sizeof path, "%s/%s", archive, names[3]);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(mkdir(path, 0700), 0);
	for (int c = 0; c < NCARDS; c++) {
		json_t *items = json_array();
		con_damage dmg = { 0 };

		q_init(&q);
		snprintf(q.card, sizeof q.card, "c%02d", c);
		assert_true(con_search_by_index(&app, &q));
		assert_int_equal(con_search_run(&app, &q, items, &more, &scanned, &dmg, err,
		    sizeof err), VIGIL_OK);
		found += json_array_size(items);
		total += dmg.n;
		if (dmg.n > 0 && (strncmp(dmg.first, names[3], strlen(names[3])) != 0 ||
		    strstr(dmg.first, "not a regular file") == NULL))
			fail_msg("card c%02d: first unreadable \"%s\", want %s, not a regular file", c,
			    dmg.first, names[3]);
		json_decref(items);
	}
	assert_true(total >= 1);
	assert_true(found >= 1);
	free_names(names, n);
	done();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_search_exact_plain),
		cmocka_unit_test(test_search_exact_compressed),
		cmocka_unit_test(test_restart_reuses),
		cmocka_unit_test(test_damaged_rebuilt),
		cmocka_unit_test(test_retention),
		cmocka_unit_test(test_damaged_record),
		cmocka_unit_test(test_damaged_compressed),
		cmocka_unit_test(test_unopenable_segment),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
