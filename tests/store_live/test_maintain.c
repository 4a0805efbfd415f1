/* SPDX-License-Identifier: MIT */
/*
 * tests/store_live/test_maintain.c - store_db_maintain on a running db:
 * retention removes an old closed segment while another thread keeps
 * scoring (and every record it scored is still read back), compression of
 * closed segments leaves the archive readable and a reopen recovers the
 * same live state; memory dbs make it a no-op.
 */
#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>

#include "archive_int.h"
#include "helpers.h"

static int64_t
clock_fixed(void *arg)
{
	return *(const int64_t *)arg;
}

static bool
file_exists(const char *dir, const char *base, const char *sfx)
{
	char        path[4400];
	struct stat st;

	snprintf(path, sizeof path, "%s/%s%s", dir, base, sfx);
	return stat(path, &st) == 0;
}

/* Files of dir ending in sfx. */
static int
count_suffix(const char *dir, const char *sfx)
{
	DIR           *d = opendir(dir);
	struct dirent *de;
	size_t         ls = strlen(sfx);
	int            n = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		size_t l = strlen(de->d_name);

		if (strncmp(de->d_name, "seg-", 4) == 0 && l > ls &&
		    strcmp(de->d_name + l - ls, sfx) == 0)
			n++;
	}
	closedir(d);
	return n;
}

/* Reads the whole archive: number of scored records; fails on corruption. */
static uint64_t
archive_count(const char *archdir, uint64_t *ret_last_seq)
{
	store_reader      *rd = NULL;
	store_record       r;
	store_diag         d;
	store_reader_stats st;
	uint64_t           n = 0, last = 0;
	vigil_err          rv;

	assert_int_equal(store_reader_open(archdir, INT64_MIN, INT64_MAX, NULL, NULL, &rd, &d),
	    VIGIL_OK);
	while ((rv = store_reader_next(rd, &r, &d)) == VIGIL_OK) {
		assert_true(r.seq > last); /* in sequence order, no repeats */
		last = r.seq;
		if (r.type == STORE_REC_SCORE)
			n++;
	}
	assert_int_equal(rv, VIGIL_ENOTFOUND);
	store_reader_get_stats(rd, &st);
	assert_int_equal(st.corrupt_records, 0);
	store_reader_close(rd);
	if (ret_last_seq != NULL)
		*ret_last_seq = last;
	return n;
}

typedef struct scorer {
	store_db    *db;
	int64_t      t0;
	int          n;
	atomic_bool  done;
	atomic_int   ok;
} scorer;

static void *
scorer_main(void *arg)
{
	scorer       *sc = arg;
	store_ctx    *ctx = store_ctx_new(sc->db);
	vigil_value   f[256];
	store_outcome prior;

	for (int i = 0; ctx != NULL && i < sc->n; i++) {
		char      id[32], card[32];
		vigil_txn x;

		snprintf(id, sizeof id, "live-%d", i);
		snprintf(card, sizeof card, "card-%d", i % 50);
		x = txn_make(id, card, "shop", sc->t0 + i, 100 + i);
		if (score_one(sc->db, ctx, &x, 0, f, &prior) == VIGIL_OK)
			atomic_fetch_add(&sc->ok, 1);
	}
	store_ctx_free(ctx);
	atomic_store(&sc->done, true);
	return NULL;
}

/* Retention: a segment closed 30 days ago goes, while scoring goes on. */
static void
test_retention_while_scoring(void **state)
{
	char              *dir = tmpdir_new();
	char               archdir[4200], base[STORE_SEG_BASE_LEN + 1];
	store_archive_opts ao;
	store_archive     *ar = NULL;
	store_db_opts      o;
	store_db          *db = NULL;
	store_diag         d;
	store_scored       s;
	uint8_t            buf[4096];
	size_t             len;
	int64_t            now = vigil_now_ms(), old = now - 30 * DAY_MS;
	vigil_txn          x;
	scorer             sc = { 0 };
	pthread_t          thr;
	int                maint_calls = 0;

	(void)state;
	snprintf(archdir, sizeof archdir, "%s/archive", dir);
	/* An old day's segment, closed by a writer whose clock said 30 days ago. */
	store_archive_opts_default(&ao);
	assert_int_equal(store_archive_open(archdir, &ao, &ar, NULL, &d), VIGIL_OK);
	store_archive_set_clock(ar, clock_fixed, &old);
	x = txn_make("old-1", "card-old", "shop", old, 500);
	scored_make(&s, &x, 0);
	assert_int_equal(store_scored_encode(&s, buf, sizeof buf, &len), VIGIL_OK);
	assert_int_equal(store_archive_append(ar, STORE_REC_SCORE, old, buf, len, NULL), VIGIL_OK);
	assert_int_equal(store_archive_rotate(ar, &d), VIGIL_OK);
	store_archive_close(ar);
	store_seg_base(old / DAY_MS, 1, base);
	assert_true(file_exists(archdir, base, ".log"));
	assert_true(file_exists(archdir, base, ".idx"));

	store_db_opts_default(&o);
	o.archive.retention_days = 7;
	assert_int_equal(store_db_open(dir, &o, &db, NULL, &d), VIGIL_OK);
	sc.db = db;
	sc.t0 = now - HOUR_MS;
	sc.n = 3000;
	atomic_init(&sc.done, false);
	atomic_init(&sc.ok, 0);
	assert_int_equal(pthread_create(&thr, NULL, scorer_main, &sc), 0);
	do {
		if (store_db_maintain(db, &d) != VIGIL_OK)
			fail_msg("store_db_maintain: %s", d.msg);
		maint_calls++;
	} while (!atomic_load(&sc.done));
	assert_int_equal(pthread_join(thr, NULL), 0);
	assert_int_equal(store_db_maintain(db, &d), VIGIL_OK);
	assert_true(maint_calls >= 1);
	assert_int_equal(atomic_load(&sc.ok), sc.n);

	/* The old segment and its index are gone; today's is untouched. */
	assert_false(file_exists(archdir, base, ".log"));
	assert_false(file_exists(archdir, base, ".log.zst"));
	assert_false(file_exists(archdir, base, ".idx"));
	assert_int_equal(count_suffix(archdir, ".log"), 1);
	{
		store_ctx  *ctx = store_ctx_new(db);
		vigil_value f[256];

		assert_non_null(ctx);
		x = txn_make("probe", "card-7", "shop", now, 100);
		assert_int_equal(store_features_lookup(db, ctx, &x, f, store_schema_nfields()),
		    VIGIL_OK);
		assert_true(num_of(f, "vel.card.count_24h") == sc.n / 50);
		store_ctx_free(ctx);
	}
	store_db_close(db);
	/* Every record scored meanwhile is in the archive, in order. */
	assert_int_equal(archive_count(archdir, NULL), (uint64_t)sc.n);
	tmpdir_free(dir);
}

/* Full feature vectors of a few probes, to compare across a reopen. */
#define NPROBES 6

static void
probe_vectors(store_db *db, int64_t t, vigil_value out[NPROBES][256])
{
	store_ctx *ctx = store_ctx_new(db);

	assert_non_null(ctx);
	for (int p = 0; p < NPROBES; p++) {
		char      card[32];
		vigil_txn x;

		snprintf(card, sizeof card, "card-%d", p * 7);
		x = txn_make("probe", card, "shop", t, 100);
		snprintf(x.terminal_id, sizeof x.terminal_id, "term-%d", p % 2);
		snprintf(x.device_id, sizeof x.device_id, "dev-%d", p % 3);
		assert_int_equal(store_features_lookup(db, ctx, &x, out[p], store_schema_nfields()),
		    VIGIL_OK);
	}
	store_ctx_free(ctx);
}

/* Compression: closed segments become .log.zst, stay readable, and a
 * reopen rebuilds the same live state from them. */
static void
test_compression_and_reopen(void **state)
{
	char          *dir = tmpdir_new();
	char           archdir[4200];
	store_db_opts  o;
	store_db      *db = NULL;
	store_ctx     *ctx;
	store_diag     d;
	vigil_value    f[256];
	store_outcome  prior;
	int64_t        t0 = vigil_now_ms() - 2 * HOUR_MS;
	const int      n = 1500;
	static vigil_value before[NPROBES][256], after[NPROBES][256];

	(void)state;
	snprintf(archdir, sizeof archdir, "%s/archive", dir);
	store_db_opts_default(&o);
	o.archive.compress_closed = true;
	o.archive.segment_max_bytes = 16384; /* many closed segments */
	assert_int_equal(store_db_open(dir, &o, &db, NULL, &d), VIGIL_OK);
	ctx = store_ctx_new(db);
	assert_non_null(ctx);
	for (int i = 0; i < n; i++) {
		char      id[32], card[32];
		vigil_txn x;

		snprintf(id, sizeof id, "t-%d", i);
		snprintf(card, sizeof card, "card-%d", i % 43);
		x = txn_make(id, card, i % 5 ? "shop" : "kiosk", t0 + (int64_t)i * 3000, 100 + i % 17);
		snprintf(x.terminal_id, sizeof x.terminal_id, "term-%d", i % 2);
		snprintf(x.device_id, sizeof x.device_id, "dev-%d", i % 3);
		assert_int_equal(score_one(db, ctx, &x, i % 60, f, &prior), VIGIL_OK);
		if (i % 500 == 499)
			assert_int_equal(store_db_maintain(db, &d), VIGIL_OK);
	}
	store_ctx_free(ctx);
	assert_int_equal(store_db_maintain(db, &d), VIGIL_OK);
	/* Every closed segment is compressed; only the open one is plain. */
	assert_true(count_suffix(archdir, ".log.zst") >= 5);
	assert_int_equal(count_suffix(archdir, ".log"), 1);
	assert_int_equal(count_suffix(archdir, ".log.zst"), count_suffix(archdir, ".idx"));
	assert_int_equal(archive_count(archdir, NULL), (uint64_t)n);

	probe_vectors(db, t0 + (int64_t)n * 3000, before);
	store_db_close(db);
	db = NULL;
	assert_int_equal(store_db_open(dir, &o, &db, NULL, &d), VIGIL_OK);
	assert_string_equal(d.msg, ""); /* nothing corrupt skipped */
	probe_vectors(db, t0 + (int64_t)n * 3000, after);
	for (int p = 0; p < NPROBES; p++) {
		for (uint32_t i = 0; i < store_schema_nfields(); i++) {
			const char *name = store_schema_field(i)->name;

			if (before[p][i].present != after[p][i].present)
				fail_msg("probe %d: %s present %d, after reopen %d", p, name,
				    before[p][i].present, after[p][i].present);
			if (before[p][i].present && store_schema_field(i)->type != VIGIL_T_STR &&
			    memcmp(&before[p][i].num, &after[p][i].num, sizeof before[p][i].num) != 0)
				fail_msg("probe %d: %s = %g, after reopen %g", p, name,
				    before[p][i].num, after[p][i].num);
		}
		/* Not vacuous: the probes saw the compressed history. */
		assert_true(before[p][slot_of("vel.card.count_24h")].num > 30);
	}
	/* A retry of a transaction from a compressed segment is known. */
	{
		vigil_txn x = txn_make("t-3", "card-3", "shop", t0 + 3 * 3000, 100 + 3);

		ctx = store_ctx_new(db);
		assert_non_null(ctx);
		snprintf(x.terminal_id, sizeof x.terminal_id, "term-1");
		snprintf(x.device_id, sizeof x.device_id, "dev-0");
		assert_int_equal(store_score_begin(db, ctx, &x, f, store_schema_nfields(), &prior),
		    VIGIL_EEXIST);
		assert_int_equal(prior.score, 3);
		store_ctx_free(ctx);
	}
	store_db_close(db);
	tmpdir_free(dir);
}

static void
test_memory_noop(void **state)
{
	store_db  *db = NULL;
	store_diag d;

	(void)state;
	assert_int_equal(store_db_new_memory(NULL, &db), VIGIL_OK);
	memset(&d, 'x', sizeof d);
	assert_int_equal(store_db_maintain(db, &d), VIGIL_OK);
	assert_string_equal(d.msg, "");
	store_db_close(db);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_retention_while_scoring),
		cmocka_unit_test(test_compression_and_reopen),
		cmocka_unit_test(test_memory_noop),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
