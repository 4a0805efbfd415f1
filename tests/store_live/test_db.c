/* SPDX-License-Identifier: MIT */
/*
 * tests/store_live/test_db.c - store_db on a data directory: the live state
 * after reopening equals a recomputation from the archive (recent and
 * historic event times), retries after a reopen return the first outcome,
 * labels are archived, read-only opening, generation at open;
 * store_db_close_exiting leaves files a reopen finds clean and complete;
 * a context pinned to a generation (store_ctx_pin_gen) reads it after a
 * switch.
 */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "archive_int.h"
#include "helpers.h"

static store_db *
db_open(const char *dir)
{
	store_db     *db = NULL;
	store_db_opts o;
	store_diag    d;
	vigil_err     rv;

	store_db_opts_default(&o);
	o.archive.fsync = STORE_FSYNC_NEVER;
	rv = store_db_open(dir, &o, &db, NULL, &d);
	if (rv != VIGIL_OK)
		fail_msg("store_db_open: %s: %s", vigil_strerror(rv), d.msg);
	return db;
}

/* Scores n generated transactions; returns the number acknowledged. */
static int
score_many(store_db *db, unsigned seed, int64_t base, int n, int ncards)
{
	store_ctx    *ctx = store_ctx_new(db);
	vigil_value   f[256];
	store_outcome prior;
	int           acked = 0;

	assert_non_null(ctx);
	for (int i = 0; i < n; i++) {
		char      id[32];
		vigil_txn x;

		snprintf(id, sizeof id, "s%u-%d", seed, i);
		x = gen_txn(&seed, id, base, i, ncards);
		if (score_one(db, ctx, &x, i % 90, f, &prior) == VIGIL_OK)
			acked++;
	}
	store_ctx_free(ctx);
	return acked;
}

static void
check_reopen_equals_replay(int64_t base)
{
	char          *dir = tmpdir_new();
	store_db      *db = db_open(dir), *mem = NULL;
	store_db_stats st, st2;
	int64_t        wmax;
	store_ctx     *ctx;
	vigil_value    f[256];
	store_outcome  prior;

	assert_int_equal(score_many(db, 7, base, 1500, 12), 1500);
	store_db_get_stats(db, &st);
	assert_true(st.late_events > 0);
	store_db_close(db);

	db = db_open(dir);
	replay_into_memory(dir, &mem, &wmax);
	assert_same_probes(db, mem, 12, wmax);
	store_db_get_stats(db, &st2);
	assert_int_equal(st2.live_cards, st.live_cards);
	assert_int_equal(st2.live_events, st.live_events);
	assert_int_equal(st2.dedupe_entries, st.dedupe_entries);
	assert_int_equal(st2.live_cards, 12);
	assert_true(st2.live_events > 1000);
	assert_int_equal(st2.dedupe_entries, 1500);
	store_db_get_stats(mem, &st);
	assert_int_equal(st.live_events, st2.live_events);
	assert_int_equal(st.late_events, st2.late_events);

	/* A retry after the restart returns the first outcome. */
	ctx = store_ctx_new(db);
	{
		unsigned  seed = 7;
		vigil_txn x = gen_txn(&seed, "s7-0", base, 0, 12);

		assert_int_equal(store_score_begin(db, ctx, &x, f, store_schema_nfields(), &prior),
		    VIGIL_EEXIST);
		assert_int_equal(prior.score, 0);
		assert_string_equal(prior.rules_version, "test-rules-1");
		/* The fingerprint is rebuilt from the archive too: the same id
		 * for another amount is still a conflict after the restart. */
		x.amount_minor += 1;
		assert_int_equal(store_score_begin(db, ctx, &x, f, store_schema_nfields(), &prior),
		    VIGIL_ECONFLICT);
	}
	/* The reopened db goes on scoring, and still equals a replay. */
	store_ctx_free(ctx);
	assert_int_equal(score_many(db, 8, wmax, 300, 12), 300);
	store_db_close(mem);
	store_db_close(db);
	db = db_open(dir);
	replay_into_memory(dir, &mem, &wmax);
	assert_same_probes(db, mem, 12, wmax);
	store_db_close(mem);
	store_db_close(db);
	tmpdir_free(dir);
}

static void
test_reopen_equals_replay_recent(void **state)
{
	(void)state;
	check_reopen_equals_replay(vigil_now_ms() - HOUR_MS);
}

/* Historic event times (a replayed year-old archive): recovery has to look
 * further back than "now" to find the archive's end. */
static void
test_reopen_equals_replay_historic(void **state)
{
	(void)state;
	check_reopen_equals_replay(T0 - 300 * DAY_MS);
}

static void
test_label_archived(void **state)
{
	char         *dir = tmpdir_new();
	store_db     *db = db_open(dir);
	store_label   l;
	store_diag    d;
	char          adir[4200];
	store_reader *rd = NULL;
	store_record  r;
	store_label   got;
	int           labels = 0;

	(void)state;
	memset(&l, 0, sizeof l);
	snprintf(l.txn_id, sizeof l.txn_id, "t-42");
	snprintf(l.card_id, sizeof l.card_id, "card-1");
	snprintf(l.source, sizeof l.source, "chargeback");
	l.fraud = true;
	l.label_time_ms = T0;
	l.received_at_ms = T0 + 5;
	assert_int_equal(store_label_record(db, &l, &d), VIGIL_OK);
	store_db_close(db);
	snprintf(adir, sizeof adir, "%s/archive", dir);
	assert_int_equal(store_reader_open(adir, INT64_MIN, INT64_MAX, NULL, NULL, &rd, &d),
	    VIGIL_OK);
	while (store_reader_next(rd, &r, &d) == VIGIL_OK) {
		assert_int_equal(r.type, STORE_REC_LABEL);
		assert_int_equal(r.event_time_ms, T0);
		assert_int_equal(store_label_decode(r.payload, r.len, &got, &d), VIGIL_OK);
		assert_string_equal(got.txn_id, "t-42");
		assert_true(got.fraud);
		labels++;
	}
	assert_int_equal(labels, 1);
	store_reader_close(rd);
	/* Labels do not disturb recovery. */
	db = db_open(dir);
	store_db_close(db);
	tmpdir_free(dir);
}

static void
test_read_only(void **state)
{
	char          *dir = tmpdir_new();
	store_db      *db = db_open(dir);
	store_db_opts  o;
	store_diag     d;
	store_ctx     *ctx;
	vigil_value    f[256];
	store_outcome  prior;
	vigil_txn      x = txn_make("r1", "card-1", "m1", T0, 100);
	store_label    l;

	(void)state;
	ctx = store_ctx_new(db);
	assert_int_equal(score_one(db, ctx, &x, 0, f, &prior), VIGIL_OK);
	store_ctx_free(ctx);
	store_db_close(db);
	store_db_opts_default(&o);
	o.read_only = true;
	assert_int_equal(store_db_open(dir, &o, &db, NULL, &d), VIGIL_OK);
	ctx = store_ctx_new(db);
	assert_non_null(ctx);
	x = txn_make("r2", "card-1", "m1", T0 + 1, 100);
	assert_int_equal(store_features_lookup(db, ctx, &x, f, store_schema_nfields()), VIGIL_OK);
	assert_true(num_of(f, "amount") == 1.0);
	assert_false(present_of(f, "vel.card.count_1m"));
	assert_int_equal(store_score_begin(db, ctx, &x, f, store_schema_nfields(), &prior),
	    VIGIL_EINVAL);
	memset(&l, 0, sizeof l);
	snprintf(l.txn_id, sizeof l.txn_id, "r1");
	assert_int_equal(store_label_record(db, &l, &d), VIGIL_EINVAL);
	assert_string_equal(d.msg, "store_label_record: data directory opened read-only");
	store_ctx_free(ctx);
	store_db_close(db);
	tmpdir_free(dir);
}

/* A memory db opened read-only (vigil-rules explain without --data) has no
 * live state: the transaction's fields, velocity missing, no scoring. */
static void
test_memory_read_only(void **state)
{
	store_db      *db = NULL;
	store_db_opts  o;
	store_ctx     *ctx;
	vigil_value    f[256];
	store_outcome  prior;
	store_db_stats st;
	vigil_txn      x = txn_make("r1", "card-1", "m1", T0, 100);

	(void)state;
	store_db_opts_default(&o);
	o.read_only = true;
	assert_int_equal(store_db_new_memory(&o, &db), VIGIL_OK);
	ctx = store_ctx_new(db);
	assert_non_null(ctx);
	assert_int_equal(store_features_lookup(db, ctx, &x, f, store_schema_nfields()), VIGIL_OK);
	assert_true(num_of(f, "amount") == 1.0);
	assert_false(present_of(f, "vel.card.count_1m"));
	assert_false(present_of(f, "card.count_90d"));
	assert_int_equal(store_score_begin(db, ctx, &x, f, store_schema_nfields(), &prior),
	    VIGIL_EINVAL);
	store_db_get_stats(db, &st);
	assert_int_equal(st.live_cards, 0);
	store_ctx_free(ctx);
	store_db_close(db);
	/* without read_only the same lookup sees an (empty) live state */
	o.read_only = false;
	assert_int_equal(store_db_new_memory(&o, &db), VIGIL_OK);
	ctx = store_ctx_new(db);
	assert_int_equal(store_features_lookup(db, ctx, &x, f, store_schema_nfields()), VIGIL_OK);
	assert_true(present_of(f, "vel.card.count_1m"));
	store_ctx_free(ctx);
	store_db_close(db);
}

static void
test_bad_options(void **state)
{
	char         *dir = tmpdir_new();
	store_db     *db = NULL;
	store_db_opts o;
	store_diag    d;

	(void)state;
	store_db_opts_default(&o);
	o.dedupe_horizon_s = 3600;
	assert_int_equal(store_db_open(dir, &o, &db, NULL, &d), VIGIL_EINVAL);
	assert_null(db);
	assert_string_equal(d.msg, "dedupe_horizon_s: 3600 is below the largest window (604800 s)");
	assert_int_equal(store_db_new_memory(&o, &db), VIGIL_EINVAL);
	tmpdir_free(dir);
}

/* A scored record whose frame is sound but whose payload does not decode
 * stops the live-state replay at open: the diag names the segment and the
 * record's offset as parts (info.file, info.offset) and in the line. */
static void
test_undecodable_record_place(void **state)
{
	char          *dir = tmpdir_new();
	char           adir[600], want[1200], line[1200];
	store_archive *ar = NULL;
	store_reader  *rd = NULL;
	store_record   r;
	store_db      *db = NULL;
	store_db_opts  o;
	store_diag     d;
	int64_t        t = vigil_now_ms() - 60000;

	(void)state;
	snprintf(adir, sizeof adir, "%s/archive", dir);
	assert_int_equal(store_archive_open(adir, NULL, &ar, NULL, &d), VIGIL_OK);
	/* first a label (the replay passes labels over), so the bad record
	 * is not at offset 0 */
	assert_int_equal(store_archive_append(ar, STORE_REC_LABEL, t, "x", 1, NULL), VIGIL_OK);
	assert_int_equal(store_archive_append(ar, STORE_REC_SCORE, t, "\xff\xff", 2, NULL),
	    VIGIL_OK);
	store_archive_close(ar);
	assert_int_equal(store_reader_open(adir, INT64_MIN, INT64_MAX, NULL, NULL, &rd, &d),
	    VIGIL_OK);
	assert_int_equal(store_reader_next(rd, &r, &d), VIGIL_OK);
	assert_int_equal(store_reader_next(rd, &r, &d), VIGIL_OK);
	assert_int_equal(r.type, STORE_REC_SCORE);

	store_db_opts_default(&o);
	assert_int_not_equal(store_db_open(dir, &o, &db, NULL, &d), VIGIL_OK);
	assert_null(db);
	snprintf(want, sizeof want, "archive/%s", r.segment);
	assert_string_equal(d.info.file, want);
	assert_int_equal(d.info.offset, r.offset);
	assert_true(r.offset > 0);
	assert_string_equal(d.info.field, "");
	assert_string_equal(d.info.msg, "scored record does not decode: ArchivedScore: 2 bytes "
	    "are not a valid protobuf message");
	snprintf(want, sizeof want, "archive/%s:%" PRIu64 ": %s", r.segment, r.offset,
	    d.info.msg);
	assert_string_equal(d.msg, want);
	snprintf(want, sizeof want, "archive/%s:%" PRIu64 ": %s", r.segment, r.offset,
	    d.info.msg);
	assert_string_equal(vigil_errinfo_format(&d.info, line, sizeof line), want);
	store_reader_close(rd);
	rd = NULL;

	/* a segment that cannot be opened: the file, no offset */
	snprintf(want, sizeof want, "%s/none.log", adir);
	assert_int_equal(store_reader_open_segment(want, NULL, NULL, &rd, &d), VIGIL_ENOTFOUND);
	assert_string_equal(d.info.file, want);
	assert_true(d.info.offset == VIGIL_NOPOS);
	assert_string_equal(d.info.msg, "cannot open segment: No such file or directory");
	assert_string_equal(vigil_errinfo_format(&d.info, line, sizeof line), d.msg);
	tmpdir_free(dir);
}

/* A corrupt record in the middle of the archive is skipped by recovery,
 * and store_db_open says so (count and place) while succeeding. */
static void
test_recovery_loses_one_compressed_frame(void **state)
{
	/* Four bytes flipped in the middle of a closed, compressed segment of
	 * several MiB: on reopening, only records of the damaged zstd frame
	 * are lost, and the note says how many; a retry of one of them is
	 * scored again (nothing recorded), of any other still a duplicate. */
	char          *dir = tmpdir_new();
	store_db      *db = NULL;
	store_db_opts  o;
	store_db_stats st;
	store_diag     d;
	store_ctx     *ctx;
	store_reader  *rd = NULL;
	store_record   r;
	store_scored  *s = malloc(sizeof *s);
	store_outcome  prior;
	vigil_value    f[256];
	char           adir[4200], path[4400], zname[256] = "", want[64];
	DIR           *dd;
	struct dirent *de;
	uint8_t       *seen;
	int            fd, n = 30000, got = 0, lost_one = -1, kept_one = -1;
	int64_t        base = vigil_now_ms() - HOUR_MS;
	struct stat    sb;

	(void)state;
	store_db_opts_default(&o);
	o.archive.fsync = STORE_FSYNC_NEVER;
	o.archive.segment_max_bytes = 3u << 20;
	o.archive.compress_closed = true;
	/* every record within the horizon, so every readable one is
	 * remembered: gen_txn's late ones are 8 days and some hours back, at
	 * the default horizon's edge, and which of them stay readable depends
	 * on where the record sizes put the damaged frame */
	o.dedupe_horizon_s = 40 * 86400;
	assert_int_equal(store_db_open(dir, &o, &db, NULL, &d), VIGIL_OK);
	assert_int_equal(score_many(db, 7, base, n, 50), n);
	assert_int_equal(store_db_maintain(db, &d), VIGIL_OK);
	store_db_close(db);
	snprintf(adir, sizeof adir, "%s/archive", dir);
	dd = opendir(adir);
	assert_non_null(dd);
	while ((de = readdir(dd)) != NULL) {
		size_t l = strlen(de->d_name);

		if (l > 8 && strcmp(de->d_name + l - 8, ".log.zst") == 0 && zname[0] == '\0')
			snprintf(zname, sizeof zname, "%s", de->d_name);
	}
	closedir(dd);
	assert_true(zname[0] != '\0');
	snprintf(path, sizeof path, "%s/%s", adir, zname);
	fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &sb), 0);
	assert_true(sb.st_size > (256 << 10)); /* 3 MiB of records, 12 frames */
	{
		unsigned char b[4];

		assert_int_equal(pread(fd, b, 4, sb.st_size / 2), 4);
		for (int i = 0; i < 4; i++)
			b[i] ^= 0xa5;
		assert_int_equal(pwrite(fd, b, 4, sb.st_size / 2), 4);
	}
	close(fd);
	/* which transactions are still readable */
	seen = calloc((size_t)n, 1);
	assert_int_equal(store_reader_open(adir, INT64_MIN, INT64_MAX, NULL, NULL, &rd, &d),
	    VIGIL_OK);
	while (store_reader_next(rd, &r, &d) == VIGIL_OK) {
		int i;

		assert_int_equal(store_scored_decode(r.payload, r.len, s, &d), VIGIL_OK);
		assert_int_equal(sscanf(s->txn.txn_id, "s%*u-%d", &i), 1); /* score_many's ids */
		seen[i] = 1;
		got++;
	}
	store_reader_close(rd);
	assert_true(got < n);
	{
		/* one frame of ~256 KiB lost, not the segment's 3 MiB */
		store_seg_index idx;
		char            base_name[64];

		snprintf(base_name, sizeof base_name, "%.*s", (int)(strlen(zname) - 8), zname);
		assert_int_equal(store_seg_index_read(adir, base_name, &idx), VIGIL_OK);
		assert_true(idx.bytes > (2u << 20));
		assert_true((uint64_t)(n - got) < idx.records / 2);
		/* at most the records of one frame, by the file's frame table */
		{
			uint8_t    tail[STORE_ZTAB_TAIL], *t;
			store_zent zt[64];
			uint32_t   nf, most = 0;

			fd = open(path, O_RDONLY);
			assert_int_equal(pread(fd, tail, sizeof tail, sb.st_size - (off_t)sizeof tail),
			    sizeof tail);
			nf = store_ztab_frames(tail);
			assert_true(nf >= 3 && nf <= 64);
			t = malloc(STORE_ZTAB_LEN(nf));
			assert_int_equal(pread(fd, t, STORE_ZTAB_LEN(nf),
			    sb.st_size - (off_t)STORE_ZTAB_LEN(nf)), STORE_ZTAB_LEN(nf));
			assert_true(store_ztab_decode(t, nf, (uint64_t)sb.st_size, zt));
			free(t);
			for (uint32_t k = 0; k < nf; k++)
				if (zt[k].records > most)
					most = zt[k].records;
			close(fd);
			if ((uint64_t)(n - got) > most)
				fail_msg("%d of %d records unreadable, more than the %u of the largest "
				    "of %s's %u frames (%llu records, %lld bytes, 4 bytes flipped at %lld)",
				    n - got, n, most, zname, nf, (unsigned long long)idx.records,
				    (long long)sb.st_size, (long long)sb.st_size / 2);
		}
	}
	for (int i = 0; i < n; i++) {
		if (!seen[i] && lost_one < 0)
			lost_one = i;
		if (seen[i] && lost_one >= 0 && kept_one < 0)
			kept_one = i;
	}
	assert_int_equal(store_db_open(dir, &o, &db, NULL, &d), VIGIL_OK);
	/* the frame, and the garbled stretches of its salvaged output */
	{
		unsigned stretches = 0;

		assert_int_equal(sscanf(d.msg, "live-state recovery skipped %u corrupt stretch(es)",
		    &stretches), 1);
		assert_true(stretches >= 1);
	}
	snprintf(want, sizeof want, ", %d record(s) lost", n - got);
	assert_non_null(strstr(d.msg, want));
	/* the first stretch in file order: inside the damaged frame, which may be
	 * one of its garbled stretches or the frame's own report */
	assert_non_null(strstr(d.msg, zname));
	store_db_get_stats(db, &st);
	/* Every record read is remembered, except some of gen_txn's late ones
	 * (2%, 8 days behind: at the dedupe horizon, remembered or not by the
	 * watermark the records before them set, which the lost ones move). */
	assert_true(st.dedupe_entries <= (uint64_t)got);
	assert_true(st.dedupe_entries >= (uint64_t)got * 97 / 100);
	/* a retry: of a lost transaction scored again, of a kept one answered */
	ctx = store_ctx_new(db);
	{
		unsigned  seed = 7;
		vigil_txn x;
		char      id[32];

		for (int i = 0; i <= kept_one; i++) { /* score_many's transactions again */
			snprintf(id, sizeof id, "s%u-%d", seed, i);
			x = gen_txn(&seed, id, base, i, 50);
			if (i == lost_one) {
				assert_int_equal(store_score_begin(db, ctx, &x, f, store_schema_nfields(),
				    &prior), VIGIL_OK);
				store_score_abort(db, ctx);
			}
		}
		assert_int_equal(store_score_begin(db, ctx, &x, f, store_schema_nfields(), &prior),
		    VIGIL_EEXIST);
	}
	store_ctx_free(ctx);
	store_db_close(db);
	free(seen);
	free(s);
	tmpdir_free(dir);
}

static void
test_recovery_reports_corruption(void **state)
{
	char          *dir = tmpdir_new();
	store_db      *db = NULL, *mem = NULL;
	store_db_opts  o;
	store_diag     d;
	char           adir[4200], path[4400], first[256] = "";
	DIR           *dd;
	struct dirent *de;
	int            fd;
	int64_t        wmax;
	int64_t        base = vigil_now_ms() - HOUR_MS;

	(void)state;
	store_db_opts_default(&o);
	o.archive.fsync = STORE_FSYNC_NEVER;
	o.archive.segment_max_bytes = 16 << 10; /* several segments */
	assert_int_equal(store_db_open(dir, &o, &db, NULL, &d), VIGIL_OK);
	assert_string_equal(d.msg, "");
	assert_int_equal(score_many(db, 3, base, 300, 5), 300);
	store_db_close(db);
	db = NULL;
	/* Flip a byte inside the first record's payload of the first segment. */
	snprintf(adir, sizeof adir, "%s/archive", dir);
	dd = opendir(adir);
	assert_non_null(dd);
	while ((de = readdir(dd)) != NULL) {
		size_t n = strlen(de->d_name);

		if (n > 4 && strcmp(de->d_name + n - 4, ".log") == 0 &&
		    (first[0] == '\0' || strcmp(de->d_name, first) < 0))
			snprintf(first, sizeof first, "%s", de->d_name);
	}
	closedir(dd);
	assert_true(first[0] != '\0');
	snprintf(path, sizeof path, "%s/%s", adir, first);
	fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	{
		unsigned char b;

		assert_int_equal(pread(fd, &b, 1, 100), 1);
		b ^= 0x5a;
		assert_int_equal(pwrite(fd, &b, 1, 100), 1);
	}
	close(fd);
	assert_int_equal(store_db_open(dir, &o, &db, NULL, &d), VIGIL_OK);
	print_message("%s\n", d.msg);
	assert_non_null(strstr(d.msg, "live-state recovery skipped 1 corrupt stretch(es)"));
	assert_non_null(strstr(d.msg, first));
	/* The rest is there, and equals a replay of what is readable. */
	replay_into_memory(dir, &mem, &wmax);
	assert_same_probes(db, mem, 5, wmax);
	store_db_close(mem);
	store_db_close(db);
	tmpdir_free(dir);
}

/* The archive ends with labels 60 days newer than every scored record:
 * recovery starts from the newest event time of the archive (a label's),
 * finds no scored record there, and must still rebuild the whole state. */
static void
test_recovery_labels_newer_than_scores(void **state)
{
	char          *dir = tmpdir_new();
	store_db      *db = db_open(dir), *mem = NULL;
	store_db_stats st, st2;
	store_label    l;
	store_diag     d;
	int64_t        base = T0 - 100 * DAY_MS, wmax;

	(void)state;
	assert_int_equal(score_many(db, 11, base, 600, 8), 600);
	store_db_get_stats(db, &st);
	memset(&l, 0, sizeof l);
	snprintf(l.txn_id, sizeof l.txn_id, "s11-3");
	snprintf(l.card_id, sizeof l.card_id, "card-1");
	snprintf(l.source, sizeof l.source, "chargeback");
	l.fraud = true;
	l.label_time_ms = base + 60 * DAY_MS;
	assert_int_equal(store_label_record(db, &l, &d), VIGIL_OK);
	store_db_close(db);

	db = db_open(dir);
	store_db_get_stats(db, &st2);
	assert_int_equal(st2.live_events, st.live_events);
	assert_int_equal(st2.dedupe_entries, 600);
	assert_int_equal(st2.late_events, st.late_events);
	replay_into_memory(dir, &mem, &wmax);
	assert_same_probes(db, mem, 8, wmax);
	store_db_close(mem);
	store_db_close(db);
	tmpdir_free(dir);
}

/* ---- store_db_close_exiting (vigil-replay's close) ---- */

#define EXIT_N 400

static uint64_t pin_write_gen(const char *dir, uint32_t count);

/*
 * The child: a process that opens the store, scores, labels and exits right
 * after store_db_close_exiting, as vigil-replay does. No cmocka here (a
 * failed assertion would go on running the suite in the child): the status
 * says what failed. _exit: no atexit handler (LeakSanitizer's among them,
 * which would report the live state deliberately left) and no stdio flush,
 * so only what close_exiting itself did reaches the files.
 */
static void
exit_child(const char *dir, uint64_t gen)
{
	static store_scored s;
	store_db     *db = NULL;
	store_db_opts o;
	store_ctx    *ctx;
	store_label   l;
	store_diag    d;
	vigil_value   f[256];
	store_outcome prior;
	unsigned      seed = 11;

	store_db_opts_default(&o);
	o.archive.fsync = STORE_FSYNC_INTERVAL; /* its flusher thread must stop too */
	if (store_db_open(dir, &o, &db, NULL, &d) != VIGIL_OK || store_db_generation(db) != gen)
		_exit(10);
	ctx = store_ctx_new(db);
	if (ctx == NULL)
		_exit(11);
	for (int i = 0; i < EXIT_N; i++) {
		char      id[32];
		vigil_txn x;

		snprintf(id, sizeof id, "x-%d", i);
		x = gen_txn(&seed, id, T0 - HOUR_MS, i, 6);
		if (store_score_begin(db, ctx, &x, f, store_schema_nfields(), &prior) != VIGIL_OK)
			_exit(12);
		scored_make(&s, &x, i % 90);
		if (store_score_commit(db, ctx, &s, &d) != VIGIL_OK)
			_exit(13);
	}
	memset(&l, 0, sizeof l);
	snprintf(l.txn_id, sizeof l.txn_id, "x-0");
	snprintf(l.card_id, sizeof l.card_id, "card-0");
	snprintf(l.source, sizeof l.source, "chargeback");
	l.fraud = true;
	l.label_time_ms = T0;
	l.received_at_ms = T0 + 5;
	if (store_label_record(db, &l, &d) != VIGIL_OK)
		_exit(14);
	store_ctx_free(ctx);
	store_db_close_exiting(db);
	_exit(0);
}

/*
 * store_db_close_exiting leaves only the live state's memory to the exit:
 * the archive is closed as store_db_close closes it (every acknowledged
 * record on disk, the open segment cut back to its frames, the lock
 * released) and so is the generation. Reopening finds a clean archive: no
 * torn tail, no corrupt record, every score and the label, a live state
 * equal to a recomputation from the archive, retries answered with the
 * first outcome, the same generation.
 */
static void
test_close_exiting_leaves_files_consistent(void **state)
{
	char          *dir = tmpdir_new();
	char           adir[4200], seg[4300], lastseg[256] = "";
	uint64_t       gen = pin_write_gen(dir, 7), segend = 0;
	store_db      *db = NULL, *mem = NULL;
	store_gen     *g = NULL;
	store_db_opts  o;
	store_recovery rec;
	store_diag     d;
	store_reader  *rd = NULL;
	store_record   r;
	store_db_stats st;
	struct stat    sb;
	int64_t        wmax;
	int            scores = 0, labels = 0, status;
	pid_t          pid;
	vigil_err      rv;

	(void)state;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		exit_child(dir, gen);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("child: status %d (exit %d)", status, WIFEXITED(status) ?
		    WEXITSTATUS(status) : -1);

	/* Before anything reopens (and recovers) it: every record is there,
	 * and each segment file ends at its last frame (no preallocated tail). */
	snprintf(adir, sizeof adir, "%s/archive", dir);
	assert_int_equal(store_reader_open(adir, INT64_MIN, INT64_MAX, NULL, NULL, &rd, &d),
	    VIGIL_OK);
	while ((rv = store_reader_next(rd, &r, &d)) == VIGIL_OK) {
		if (strcmp(r.segment, lastseg) != 0) {
			if (lastseg[0] != '\0') {
				snprintf(seg, sizeof seg, "%s/%s", adir, lastseg);
				assert_int_equal(stat(seg, &sb), 0);
				assert_int_equal((uint64_t)sb.st_size, segend);
			}
			snprintf(lastseg, sizeof lastseg, "%s", r.segment);
		}
		segend = r.offset + 32 + r.len;
		scores += r.type == STORE_REC_SCORE;
		labels += r.type == STORE_REC_LABEL;
	}
	if (rv != VIGIL_ENOTFOUND)
		fail_msg("reader: %s: %s", vigil_strerror(rv), d.msg);
	store_reader_close(rd);
	assert_int_equal(scores, EXIT_N);
	assert_int_equal(labels, 1);
	assert_true(lastseg[0] != '\0');
	snprintf(seg, sizeof seg, "%s/%s", adir, lastseg);
	assert_int_equal(stat(seg, &sb), 0);
	assert_int_equal((uint64_t)sb.st_size, segend);

	/* Reopening: nothing to recover, and the state is the archive's. */
	store_db_opts_default(&o);
	o.archive.fsync = STORE_FSYNC_NEVER;
	memset(&rec, 0, sizeof rec);
	d.msg[0] = '\0';
	rv = store_db_open(dir, &o, &db, &rec, &d);
	if (rv != VIGIL_OK)
		fail_msg("store_db_open: %s: %s", vigil_strerror(rv), d.msg);
	assert_string_equal(d.msg, "");
	assert_int_equal(rec.torn_records, 0);
	assert_int_equal(rec.torn_bytes, 0);
	assert_int_equal(rec.last_seq, EXIT_N + 1);
	assert_int_equal(store_db_generation(db), gen);
	store_db_get_stats(db, &st);
	assert_int_equal(st.dedupe_entries, EXIT_N);
	replay_into_memory(dir, &mem, &wmax);
	assert_int_equal(store_gen_open(dir, gen, &g, &d), VIGIL_OK);
	store_db_set_gen(mem, g); /* batch features from the same generation */
	assert_same_probes(db, mem, 6, wmax);
	{
		store_ctx    *ctx = store_ctx_new(db);
		unsigned      seed = 11;
		vigil_txn     x = gen_txn(&seed, "x-0", T0 - HOUR_MS, 0, 6);
		vigil_value   f[256];
		store_outcome prior;

		assert_non_null(ctx);
		assert_int_equal(store_score_begin(db, ctx, &x, f, store_schema_nfields(), &prior),
		    VIGIL_EEXIST);
		assert_int_equal(prior.score, 0);
		store_ctx_free(ctx);
	}
	store_db_close(mem);
	store_gen_close(g);
	store_db_close(db);
	tmpdir_free(dir);
}

/* ---- store_ctx_pin_gen (vigild's generation switch) ---- */

/* A generation whose card-0 has count_90d = count; returns its number. */
static uint64_t
pin_write_gen(const char *dir, uint32_t count)
{
	store_genw        *w = NULL;
	store_gen_meta     meta;
	store_card_profile cp;
	store_diag         d;

	assert_int_equal(store_genw_begin(dir, &w, &d), VIGIL_OK);
	memset(&cp, 0, sizeof cp);
	cp.count_90d = count;
	assert_int_equal(store_genw_put_card(w, "card-0", &cp), VIGIL_OK);
	memset(&meta, 0, sizeof meta);
	meta.generation = store_genw_generation(w);
	meta.as_of_ms = T0;
	meta.window_ms = 90 * DAY_MS;
	meta.built_at_ms = vigil_now_ms();
	if (store_genw_commit(w, &meta, 0, &d) != VIGIL_OK)
		fail_msg("genw commit: %s", d.msg);
	return meta.generation;
}

/* card.count_90d of card-0 as ctx looks it up (-1: missing). */
static double
pin_lookup(store_db *db, store_ctx *ctx)
{
	static vigil_value f[256];
	vigil_txn x = txn_make("p-1", "card-0", "m-1", T0 + HOUR_MS, 500);

	assert_int_equal(store_features_lookup(db, ctx, &x, f, store_schema_nfields()),
	    VIGIL_OK);
	return present_of(f, "card.count_90d") ? num_of(f, "card.count_90d") : -1.0;
}

/*
 * A context pinned to a generation reads it after the db has switched to
 * a newer one (vigild scores with the generation its thresholds and model
 * came from until the rule set built from the new one is swapped in); an
 * unpinned one follows the db. The per-card batch cache is tagged per
 * generation: a pinned lookup after an unpinned one of the same card does
 * not get the other generation's profile.
 */
static void
test_ctx_pinned_generation(void **state)
{
	char         *dir = tmpdir_new();
	store_db     *db;
	store_db_gen *g1, *g2;
	store_ctx    *follow, *pinned;
	bool          changed = false;
	store_diag    d;

	(void)state;
	assert_int_equal(pin_write_gen(dir, 7), 1);
	db = db_open(dir);
	g1 = store_db_gen_acquire(db);
	assert_non_null(g1);
	assert_int_equal(store_db_gen_number(g1), 1);
	assert_non_null(store_db_gen_get(g1));
	assert_int_equal(pin_write_gen(dir, 8), 2);
	assert_int_equal(store_db_refresh(db, &changed, &d), VIGIL_OK);
	assert_true(changed);
	assert_int_equal(store_db_generation(db), 2);

	follow = store_ctx_new(db);
	pinned = store_ctx_new(db);
	assert_non_null(follow);
	assert_non_null(pinned);
	assert_true(pin_lookup(db, follow) == 8.0);
	store_ctx_pin_gen(pinned, g1);
	assert_true(pin_lookup(db, pinned) == 7.0);
	assert_true(pin_lookup(db, follow) == 8.0);
	store_ctx_pin_gen(pinned, NULL); /* none: the card profile is missing */
	assert_true(pin_lookup(db, pinned) == -1.0);
	g2 = store_db_gen_acquire(db);
	assert_int_equal(store_db_gen_number(g2), 2);
	store_ctx_pin_gen(pinned, g2);
	assert_true(pin_lookup(db, pinned) == 8.0);
	store_ctx_pin_gen(pinned, g1);
	assert_true(pin_lookup(db, pinned) == 7.0);
	/* the ctx holds its own reference: g1 outlives the caller's */
	store_db_gen_release(g1);
	assert_true(pin_lookup(db, pinned) == 7.0);
	store_db_gen_release(g2);
	store_db_gen_release(NULL);
	assert_int_equal(store_db_gen_number(NULL), 0);
	store_ctx_free(follow);
	store_ctx_free(pinned);
	store_db_close(db);
	tmpdir_free(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_undecodable_record_place),
		cmocka_unit_test(test_reopen_equals_replay_recent),
		cmocka_unit_test(test_reopen_equals_replay_historic),
		cmocka_unit_test(test_label_archived),
		cmocka_unit_test(test_read_only),
		cmocka_unit_test(test_memory_read_only),
		cmocka_unit_test(test_bad_options),
		cmocka_unit_test(test_recovery_reports_corruption),
		cmocka_unit_test(test_recovery_loses_one_compressed_frame),
		cmocka_unit_test(test_recovery_labels_newer_than_scores),
		cmocka_unit_test(test_close_exiting_leaves_files_consistent),
		cmocka_unit_test(test_ctx_pinned_generation),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
