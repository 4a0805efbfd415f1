/* SPDX-License-Identifier: MIT */
/*
 * tests/store_live/test_store_gen.c - LMDB feature generations: write, commit,
 * read back, abort, the rebuild lock, unknown value versions, mdb_stat,
 * pruning, roll-back, and switching generations under running readers.
 * Checksums and damaged generations: test_gencheck.c.
 */
#include <dirent.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <xxhash.h>

#include "gendir.h"
#include "genread.h"
#include "helpers.h"

static store_card_profile
card_profile(uint32_t count_7d)
{
	store_card_profile p;

	memset(&p, 0, sizeof p);
	p.count_7d = count_7d;
	p.count_30d = 30;
	p.count_90d = 90;
	p.amount_sum_90d = 900.0;
	p.amount_mean_90d = 10.0;
	p.amount_std_90d = 2.0;
	p.amount_p99_90d = 42.5;
	p.first_seen_ms = T0 - 10 * DAY_MS;
	p.fraud_count_90d = 1;
	p.top_merchant_share_90d = 0.75;
	p.hour_hist[9] = 6;
	p.hour_hist[10] = 2;
	p.hour_hist[11] = 2;
	p.hour_hist[20] = 10;
	p.ncountries = 2;
	memcpy(p.countries[0], "FR", 2);
	memcpy(p.countries[1], "DE", 2);
	p.nmerchants = 1;
	p.merchants[0] = XXH64("m1", 2, 0);
	return p;
}

/* Writes and commits one generation whose card "c1" has count_7d = mark,
 * and whose merchant "m1" and terminal "t1" have fraud_count_30d = mark. */
static uint64_t
gen_write(const char *datadir, uint32_t mark, uint32_t keep)
{
	store_genw          *w = NULL;
	store_diag           d;
	store_card_profile   cp = card_profile(mark);
	store_entity_profile ep;
	store_threshold_val  tv = { .value = 100.0 + mark, .previous = 90.0, .samples = 7, .tuned = true };
	store_gen_meta       meta;
	uint64_t             gen;
	char                 id[32];

	memset(&ep, 0, sizeof ep);
	ep.count_7d = 70;
	ep.count_30d = 300;
	ep.amount_mean_30d = 12.5;
	ep.fraud_count_30d = mark;
	ep.fraud_rate_7d = 0.01;
	ep.fraud_rate_30d = 0.02;
	ep.fraud_rate_90d = 0.03;
	assert_int_equal(store_genw_begin(datadir, &w, &d), VIGIL_OK);
	gen = store_genw_generation(w);
	assert_int_equal(store_genw_put_card(w, "c1", &cp), VIGIL_OK);
	for (int i = 0; i < 50; i++) {
		snprintf(id, sizeof id, "card-%03d", i);
		assert_int_equal(store_genw_put_card(w, id, &cp), VIGIL_OK);
	}
	assert_int_equal(store_genw_put_merchant(w, "m1", &ep), VIGIL_OK);
	assert_int_equal(store_genw_put_terminal(w, "t1", &ep), VIGIL_OK);
	assert_int_equal(store_genw_put_threshold(w, "amount_high", "", &tv), VIGIL_OK);
	assert_int_equal(store_genw_put_threshold(w, "amount_high", "5411", &tv), VIGIL_OK);
	memset(&meta, 0, sizeof meta);
	meta.as_of_ms = T0;
	meta.window_ms = 90 * DAY_MS;
	meta.first_seq = 1;
	meta.last_seq = 1000;
	meta.schema_version = 1;
	meta.built_at_ms = T0 + HOUR_MS;
	snprintf(meta.summary_json, sizeof meta.summary_json, "{\"cards\":51}");
	assert_int_equal(store_genw_commit(w, &meta, keep, &d), VIGIL_OK);
	assert_string_equal(d.msg, "");
	return gen;
}

static bool
path_exists(const char *dir, const char *name)
{
	char        p[4200];
	struct stat st;

	snprintf(p, sizeof p, "%s/%s", dir, name);
	return stat(p, &st) == 0;
}

static void
test_write_read_roundtrip(void **state)
{
	char                *dir = tmpdir_new();
	store_gen           *g = NULL;
	store_diag           d;
	store_card_profile   cp, want = card_profile(7);
	store_entity_profile ep;
	store_threshold_val  tv;
	store_gen_meta       meta;
	uint64_t             cur = 99;

	(void)state;
	assert_int_equal(store_gen_current(dir, &cur), VIGIL_OK);
	assert_int_equal(cur, 0);
	assert_int_equal(store_gen_open_current(dir, &g, &d), VIGIL_ENOTFOUND);
	assert_int_equal(gen_write(dir, 7, 0), 1);
	assert_int_equal(store_gen_current(dir, &cur), VIGIL_OK);
	assert_int_equal(cur, 1);
	assert_true(path_exists(dir, "features/gen-000001/data.mdb"));

	assert_int_equal(store_gen_open_current(dir, &g, &d), VIGIL_OK);
	assert_int_equal(store_gen_card(g, "c1", &cp), VIGIL_OK);
	assert_memory_equal(&cp, &want, offsetof(store_card_profile, ncountries));
	assert_int_equal(cp.ncountries, 2);
	assert_memory_equal(cp.countries[1], "DE", 2);
	assert_int_equal(cp.nmerchants, 1);
	assert_true(cp.merchants[0] == want.merchants[0]);
	assert_int_equal(store_gen_card(g, "nope", &cp), VIGIL_ENOTFOUND);
	assert_int_equal(store_gen_merchant(g, "m1", &ep), VIGIL_OK);
	assert_int_equal(ep.count_30d, 300);
	assert_true(ep.fraud_rate_90d == 0.03);
	assert_int_equal(store_gen_terminal(g, "t1", &ep), VIGIL_OK);
	assert_int_equal(store_gen_terminal(g, "m1", &ep), VIGIL_ENOTFOUND);
	assert_int_equal(store_gen_threshold(g, "amount_high", "5411", &tv), VIGIL_OK);
	assert_true(tv.value == 107.0 && tv.previous == 90.0 && tv.samples == 7 && tv.tuned);
	assert_int_equal(store_gen_threshold(g, "amount_high", "9999", &tv), VIGIL_ENOTFOUND);
	assert_int_equal(store_gen_meta_get(g, &meta), VIGIL_OK);
	assert_int_equal(meta.generation, 1);
	assert_int_equal(meta.as_of_ms, T0);
	assert_int_equal(meta.last_seq, 1000);
	assert_string_equal(meta.summary_json, "{\"cards\":51}");
	store_gen_close(g);
	tmpdir_free(dir);
}

typedef struct th_seen {
	int  n;
	char groups[4][16];
} th_seen;

static void
th_each(void *arg, const char *name, const char *group, const store_threshold_val *v)
{
	th_seen *s = arg;

	assert_string_equal(name, "amount_high");
	assert_true(v->value == 101.0);
	snprintf(s->groups[s->n++ & 3], sizeof s->groups[0], "%s", group);
}

static void
test_thresholds_each(void **state)
{
	char      *dir = tmpdir_new();
	store_gen *g = NULL;
	store_diag d;
	th_seen    s = { 0 };

	(void)state;
	gen_write(dir, 1, 0);
	assert_int_equal(store_gen_open(dir, 1, &g, &d), VIGIL_OK);
	assert_int_equal(store_gen_thresholds_each(g, th_each, &s), VIGIL_OK);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.groups[0], ""); /* "" sorts before "5411" */
	assert_string_equal(s.groups[1], "5411");
	store_gen_close(g);
	tmpdir_free(dir);
}

static void
test_abort_leaves_current(void **state)
{
	char               *dir = tmpdir_new();
	store_genw         *w = NULL;
	store_diag          d;
	store_card_profile  cp = card_profile(99);
	uint64_t            cur = 0;
	store_gen          *g = NULL;
	DIR                *dd;
	struct dirent      *de;
	char                fdir[4200];

	(void)state;
	gen_write(dir, 1, 0);
	assert_int_equal(store_genw_begin(dir, &w, &d), VIGIL_OK);
	assert_int_equal(store_genw_generation(w), 2);
	assert_true(path_exists(dir, "features/.tmp-gen-000002"));
	assert_int_equal(store_genw_put_card(w, "c1", &cp), VIGIL_OK);
	store_genw_abort(w);
	assert_false(path_exists(dir, "features/.tmp-gen-000002"));
	assert_false(path_exists(dir, "features/gen-000002"));
	assert_int_equal(store_gen_current(dir, &cur), VIGIL_OK);
	assert_int_equal(cur, 1);
	assert_int_equal(store_gen_open_current(dir, &g, &d), VIGIL_OK);
	assert_int_equal(store_gen_card(g, "c1", &cp), VIGIL_OK);
	assert_int_equal(cp.count_7d, 1);
	store_gen_close(g);
	/* Nothing but CURRENT, LOCK, CHECKSUMS_FROM and gen-000001 is left. */
	snprintf(fdir, sizeof fdir, "%s/features", dir);
	dd = opendir(fdir);
	assert_non_null(dd);
	while ((de = readdir(dd)) != NULL) {
		if (de->d_name[0] == '.' && (de->d_name[1] == '\0' || strcmp(de->d_name, "..") == 0))
			continue;
		if (strcmp(de->d_name, "CURRENT") != 0 && strcmp(de->d_name, "LOCK") != 0 &&
		    strcmp(de->d_name, "CHECKSUMS_FROM") != 0 &&
		    strcmp(de->d_name, "gen-000001") != 0)
			fail_msg("unexpected entry %s", de->d_name);
	}
	closedir(dd);
	tmpdir_free(dir);
}

static void
test_rebuild_lock(void **state)
{
	char       *dir = tmpdir_new();
	store_genw *w1 = NULL, *w2 = NULL;
	store_diag  d;

	(void)state;
	assert_int_equal(store_genw_begin(dir, &w1, &d), VIGIL_OK);
	assert_int_equal(store_genw_begin(dir, &w2, &d), VIGIL_EBUSY);
	assert_null(w2);
	assert_non_null(strstr(d.msg, "features/LOCK: another rebuild holds the lock"));
	assert_int_equal(store_gen_set_current(dir, 1, &d), VIGIL_EBUSY);
	store_genw_abort(w1);
	assert_int_equal(store_genw_begin(dir, &w2, &d), VIGIL_OK);
	store_genw_abort(w2);
	tmpdir_free(dir);
}

/* Rewrites the version bytes of card c1's value (as a future build would). */
static void
card_set_version(const char *dir, uint64_t gen, uint16_t version)
{
	char     path[4200];
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi  dbi;
	MDB_val  k = { .mv_size = 2, .mv_data = "c1" }, v;
	uint8_t  buf[1024];

	snprintf(path, sizeof path, "%s/features/gen-%06llu", dir, (unsigned long long)gen);
	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_set_maxdbs(env, 8), 0);
	assert_int_equal(mdb_env_open(env, path, 0, 0644), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, "card", 0, &dbi), 0);
	assert_int_equal(mdb_get(txn, dbi, &k, &v), 0);
	assert_true(v.mv_size <= sizeof buf);
	memcpy(buf, v.mv_data, v.mv_size);
	buf[0] = (uint8_t)version;
	buf[1] = (uint8_t)(version >> 8);
	v.mv_data = buf;
	assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
	/* As a build writing that version would have: with a CHECKSUM. */
	assert_int_equal(gen_checksum_write(path, NULL), VIGIL_OK);
}

/* Rewrites generation gen as a build of entity layout 1 wrote it: the
 * merchant and terminal values cut to layout 1's 70 bytes, and meta's
 * entity layout 1 (offset 56). */
static void
entity_set_layout1(const char *dir, uint64_t gen)
{
	static const char *const tables[] = { "merchant", "terminal" };
	static const char *const keys[] = { "m1", "t1" };
	char     path[4200];
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi  dbi;
	MDB_val  k, v;
	uint8_t  buf[4096];

	snprintf(path, sizeof path, "%s/features/gen-%06llu", dir, (unsigned long long)gen);
	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_set_maxdbs(env, 8), 0);
	assert_int_equal(mdb_env_open(env, path, 0, 0644), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	for (int i = 0; i < 2; i++) {
		k.mv_size = 2;
		k.mv_data = (void *)keys[i];
		assert_int_equal(mdb_dbi_open(txn, tables[i], 0, &dbi), 0);
		assert_int_equal(mdb_get(txn, dbi, &k, &v), 0);
		assert_true(v.mv_size > 70);
		memcpy(buf, v.mv_data, 70);
		buf[0] = 1;
		buf[1] = 0;
		v.mv_data = buf;
		v.mv_size = 70;
		assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
	}
	k.mv_size = 4;
	k.mv_data = (void *)"meta";
	assert_int_equal(mdb_dbi_open(txn, "meta", 0, &dbi), 0);
	assert_int_equal(mdb_get(txn, dbi, &k, &v), 0);
	assert_true(v.mv_size <= sizeof buf && v.mv_size > 58);
	memcpy(buf, v.mv_data, v.mv_size);
	assert_int_equal(buf[56] | buf[57] << 8, STORE_ENTITY_LAYOUT);
	buf[56] = 1;
	buf[57] = 0;
	v.mv_data = buf;
	assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
	assert_int_equal(gen_checksum_write(path, NULL), VIGIL_OK);
}

/* A generation of an older profile layout (written before the build that
 * added fields) opens, and its profiles read with the new fields zero: an
 * upgraded vigild serves it and the next rebuild carries its first_seen. */
static void
test_older_layout_read(void **state)
{
	char                *dir = tmpdir_new();
	store_gen           *g = NULL;
	store_diag           d;
	store_entity_profile ep;

	(void)state;
	gen_write(dir, 1, 0);
	entity_set_layout1(dir, 1);
	assert_int_equal(store_gen_open(dir, 1, &g, &d), VIGIL_OK);
	memset(&ep, 0xff, sizeof ep);
	assert_int_equal(store_gen_merchant(g, "m1", &ep), VIGIL_OK);
	assert_int_equal(ep.count_30d, 300);
	assert_true(ep.fraud_rate_90d == 0.03);
	assert_int_equal(ep.count_mature_30d, 0);
	assert_int_equal(ep.cards_sampled_30d, 0);
	assert_true(ep.reported_card_share_30d == 0.0);
	assert_int_equal(store_gen_terminal(g, "t1", &ep), VIGIL_OK);
	assert_int_equal(ep.count_7d, 70);
	store_gen_close(g);
	tmpdir_free(dir);
}

static void
test_unknown_version_refused(void **state)
{
	char      *dir = tmpdir_new();
	store_gen *g = NULL;
	store_diag d;

	(void)state;
	char want[256];

	gen_write(dir, 1, 0);
	card_set_version(dir, 1, STORE_CARD_LAYOUT + 1);
	assert_int_equal(store_gen_open(dir, 1, &g, &d), VIGIL_EVERSION);
	assert_null(g);
	snprintf(want, sizeof want, "features/gen-000001: table card, key \"c1\": value layout "
	    "version %u is not known (this build reads version %u)", STORE_CARD_LAYOUT + 1,
	    STORE_CARD_LAYOUT);
	assert_string_equal(d.msg, want);
	/* the same in parts: the generation and the rest, which names the key */
	assert_string_equal(d.info.file, "features/gen-000001");
	assert_string_equal(d.info.field, "");
	assert_true(d.info.offset == VIGIL_NOPOS);
	assert_string_equal(d.info.msg, want + strlen("features/gen-000001: "));
	{
		char line[sizeof d.msg];

		assert_string_equal(vigil_errinfo_format(&d.info, line, sizeof line), d.msg);
	}
	/* ... and a roll-back to it is refused too. */
	assert_int_equal(store_gen_set_current(dir, 1, &d), VIGIL_EVERSION);
	tmpdir_free(dir);
}

static void
test_mdb_stat_and_dump_read_generation(void **state)
{
	char  *dir = tmpdir_new();
	char   cmd[4400], line[512];
	FILE  *p;
	bool   saw_card = false, saw_entries = false;

	(void)state;
	gen_write(dir, 1, 0);
	snprintf(cmd, sizeof cmd, "mdb_stat -a '%s/features/gen-000001' 2>&1", dir);
	p = popen(cmd, "r");
	assert_non_null(p);
	while (fgets(line, sizeof line, p) != NULL) {
		if (strstr(line, "Status of card") != NULL)
			saw_card = true;
		if (strstr(line, "Entries: 51") != NULL)
			saw_entries = true;
	}
	assert_int_equal(pclose(p), 0);
	assert_true(saw_card);
	assert_true(saw_entries);
	snprintf(cmd, sizeof cmd, "mdb_dump -s threshold '%s/features/gen-000001' >/dev/null 2>&1",
	    dir);
	assert_int_equal(system(cmd), 0);
	tmpdir_free(dir);
}

static void
test_prune_and_rollback(void **state)
{
	char      *dir = tmpdir_new();
	uint64_t   cur = 0;
	store_diag d;

	(void)state;
	for (uint32_t i = 1; i <= 5; i++)
		assert_int_equal(gen_write(dir, i, 2), i);
	assert_false(path_exists(dir, "features/gen-000001"));
	assert_false(path_exists(dir, "features/gen-000003"));
	assert_true(path_exists(dir, "features/gen-000004"));
	assert_true(path_exists(dir, "features/gen-000005"));
	/* Roll back to 4, then a keep-1 rebuild: 6 becomes current; 4 goes. */
	assert_int_equal(store_gen_set_current(dir, 4, &d), VIGIL_OK);
	assert_int_equal(store_gen_current(dir, &cur), VIGIL_OK);
	assert_int_equal(cur, 4);
	assert_int_equal(store_gen_set_current(dir, 3, &d), VIGIL_ENOTFOUND);
	assert_int_equal(gen_write(dir, 6, 1), 6);
	assert_int_equal(store_gen_current(dir, &cur), VIGIL_OK);
	assert_int_equal(cur, 6);
	assert_false(path_exists(dir, "features/gen-000004"));
	assert_false(path_exists(dir, "features/gen-000005"));
	assert_true(path_exists(dir, "features/gen-000006"));
	tmpdir_free(dir);
}

/* The current generation is never pruned, even when it is not the newest. */
static void
test_prune_keeps_current(void **state)
{
	char      *dir = tmpdir_new();
	store_diag d;
	store_genw *w = NULL;

	(void)state;
	gen_write(dir, 1, 1);
	gen_write(dir, 2, 1);
	assert_false(path_exists(dir, "features/gen-000001"));
	assert_int_equal(store_gen_set_current(dir, 2, &d), VIGIL_OK);
	/* A stale temp directory from a crashed rebuild is cleaned up. */
	{
		char p[4200];

		snprintf(p, sizeof p, "%s/features/.tmp-gen-000007", dir);
		assert_int_equal(mkdir(p, 0755), 0);
	}
	assert_int_equal(store_genw_begin(dir, &w, &d), VIGIL_OK);
	assert_false(path_exists(dir, "features/.tmp-gen-000007"));
	assert_int_equal(store_genw_generation(w), 3);
	store_genw_abort(w);
	tmpdir_free(dir);
}

static void
test_corrupt_current_reported(void **state)
{
	char      *dir = tmpdir_new();
	char       p[4200];
	FILE      *f;
	store_gen *g = NULL;
	store_diag d;

	(void)state;
	gen_write(dir, 1, 0);
	snprintf(p, sizeof p, "%s/features/CURRENT", dir);
	f = fopen(p, "w");
	assert_non_null(f);
	fputs("generation one\n", f);
	fclose(f);
	assert_int_equal(store_gen_open_current(dir, &g, &d), VIGIL_ECORRUPT);
	assert_non_null(strstr(d.msg, "features/CURRENT: expected \"gen-NNNNNN\", got \"generation one\""));
	tmpdir_free(dir);
}

/* ---- generation switch while readers look up continuously ---- */

typedef struct reader_arg {
	store_db     *db;
	atomic_bool  *stop;
	atomic_ulong  lookups, failures, serial;
	atomic_uint   max_mark_seen;
} reader_arg;

/* The generation mark of f (card, merchant and terminal must agree: one
 * transaction never mixes generations), 0 if absent or mixed. */
static uint32_t
mark_of(const vigil_value *f)
{
	uint32_t c = 0, m = 0, t = 0;

	store_schema_find("card.count_7d", &c);
	store_schema_find("merchant.fraud_count_30d", &m);
	store_schema_find("terminal.fraud_count_30d", &t);
	if (!f[c].present || !f[m].present || !f[t].present || f[c].num != f[m].num ||
	    f[c].num != f[t].num)
		return 0;
	return (uint32_t)f[c].num;
}

static void *
reader_main(void *p)
{
	reader_arg *a = p;
	store_ctx  *ctx = store_ctx_new(a->db);
	vigil_value f[256];
	vigil_txn   txn = txn_make("probe", "c1", "m1", T0 + 9 * HOUR_MS, 1000);
	uint32_t    last = 0;

	/* Odd rounds score (c1, m1 and t1 become live, so their cached
	 * profiles are used and must follow the switches), even ones look up. */
	snprintf(txn.terminal_id, sizeof txn.terminal_id, "t1");

	if (ctx == NULL) {
		atomic_fetch_add(&a->failures, 1);
		return NULL;
	}
	for (unsigned long round = 0; !atomic_load(a->stop); round++) {
		vigil_err rv;
		uint32_t  mark = 0;

		if (round % 2) {
			store_scored  s;
			store_outcome prior;
			store_diag    d;

			snprintf(txn.txn_id, sizeof txn.txn_id, "r-%lu",
			    atomic_fetch_add(&a->serial, 1));
			rv = store_score_begin(a->db, ctx, &txn, f, store_schema_nfields(), &prior);
			if (rv == VIGIL_OK) {
				mark = mark_of(f);
				scored_make(&s, &txn, 0);
				rv = store_score_commit(a->db, ctx, &s, &d);
			}
		} else {
			rv = store_features_lookup(a->db, ctx, &txn, f, store_schema_nfields());
			mark = mark_of(f);
		}
		if (rv != VIGIL_OK || mark == 0) {
			atomic_fetch_add(&a->failures, 1);
			continue;
		}
		/* Generations only move forward for a reader. */
		if (mark < last)
			atomic_fetch_add(&a->failures, 1);
		last = mark;
		atomic_fetch_add(&a->lookups, 1);
	}
	for (unsigned seen = atomic_load(&a->max_mark_seen);
	     last > seen && !atomic_compare_exchange_weak(&a->max_mark_seen, &seen, last);)
		;
	store_ctx_free(ctx);
	return NULL;
}

static void
test_switch_under_readers(void **state)
{
	char          *dir = tmpdir_new();
	store_db      *db = NULL;
	store_db_opts  o;
	store_diag     d;
	atomic_bool    stop = false;
	reader_arg     a = { 0 };
	pthread_t      th[3];
	bool           changed = false;
	const uint32_t ngens = 12;

	(void)state;
	gen_write(dir, 1, 2);
	store_db_opts_default(&o);
	o.archive.fsync = STORE_FSYNC_NEVER;
	assert_int_equal(store_db_open(dir, &o, &db, NULL, &d), VIGIL_OK);
	assert_int_equal(store_db_generation(db), 1);
	a.db = db;
	a.stop = &stop;
	for (int i = 0; i < 3; i++)
		assert_int_equal(pthread_create(&th[i], NULL, reader_main, &a), 0);
	for (uint32_t m = 2; m <= ngens; m++) {
		/* keep = 2: generations readers may still hold are deleted on disk. */
		assert_int_equal(gen_write(dir, m, 2), m);
		assert_int_equal(store_db_refresh(db, &changed, &d), VIGIL_OK);
		assert_true(changed);
		assert_int_equal(store_db_generation(db), m);
		assert_int_equal(store_db_generation_as_of(db), T0);
		assert_int_equal(store_db_refresh(db, &changed, &d), VIGIL_OK);
		assert_false(changed);
		/* Let the readers run on this generation a little. */
		for (unsigned long base = atomic_load(&a.lookups);
		     atomic_load(&a.lookups) < base + 50 && atomic_load(&a.failures) == 0;)
			usleep(100);
	}
	atomic_store(&stop, true);
	for (int i = 0; i < 3; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(atomic_load(&a.failures), 0);
	assert_true(atomic_load(&a.lookups) >= 50 * (ngens - 1));
	assert_int_equal(atomic_load(&a.max_mark_seen), ngens);
	store_db_close(db);
	tmpdir_free(dir);
}

/* A refresh onto a generation this build cannot read fails with the reason
 * and keeps serving the current one. */
static void
test_refresh_refuses_bad_generation(void **state)
{
	char          *dir = tmpdir_new();
	store_db      *db = NULL;
	store_db_opts  o;
	store_diag     d;
	bool           changed = true;
	store_ctx     *ctx;
	vigil_value    f[256];
	vigil_txn      x = txn_make("p", "c1", "m1", T0, 100);

	(void)state;
	gen_write(dir, 1, 0);
	store_db_opts_default(&o);
	o.archive.fsync = STORE_FSYNC_NEVER;
	assert_int_equal(store_db_open(dir, &o, &db, NULL, &d), VIGIL_OK);
	gen_write(dir, 2, 0);
	card_set_version(dir, 2, 9);
	assert_int_equal(store_db_refresh(db, &changed, &d), VIGIL_EVERSION);
	assert_non_null(strstr(d.msg, "features/gen-000002: table card"));
	assert_int_equal(store_db_generation(db), 1);
	ctx = store_ctx_new(db);
	assert_non_null(ctx);
	assert_int_equal(store_features_lookup(db, ctx, &x, f, store_schema_nfields()), VIGIL_OK);
	assert_true(num_of(f, "card.count_7d") == 1);
	/* Fixed by a new rebuild: the next refresh switches. */
	gen_write(dir, 3, 0);
	assert_int_equal(store_db_refresh(db, &changed, &d), VIGIL_OK);
	assert_true(changed);
	assert_int_equal(store_db_generation(db), 3);
	assert_int_equal(store_features_lookup(db, ctx, &x, f, store_schema_nfields()), VIGIL_OK);
	assert_true(num_of(f, "card.count_7d") == 3);
	store_ctx_free(ctx);
	store_db_close(db);
	db = NULL;
	/* A db opened while CURRENT names an unreadable generation serves the
	 * newest older one that opens (2 has an unknown layout too), and says
	 * which was refused and why. */
	assert_int_equal(store_gen_set_current(dir, 3, &d), VIGIL_OK);
	card_set_version(dir, 3, 9);
	assert_int_equal(store_db_open(dir, &o, &db, NULL, &d), VIGIL_OK);
	assert_int_equal(store_db_generation(db), 1);
	{
		store_db_health h;

		store_db_get_health(db, &h);
		assert_true(h.ok);
		assert_true(h.generation_refused);
		assert_int_equal(h.refused_generation, 3);
		assert_int_equal(h.generation, 1);
		char want[256];

		snprintf(want, sizeof want, "features/gen-000003: table card, key \"c1\": "
		    "value layout version 9 is not known (this build reads version %u)",
		    STORE_CARD_LAYOUT);
		assert_string_equal(h.generation_error, want);
	}
	store_db_close(db);
	tmpdir_free(dir);
}

/* The bytes of the card profile's fields (schema.def's PC rows) in a value
 * of layout `layout`. */
static size_t
card_fields_bytes(unsigned layout)
{
	enum { B_U32 = 4, B_F64 = 8, B_I64 = 8, B_TIME = 8 };
	size_t n = 0;

#define PC(ctype, field, since, doc) n += (since) <= layout ? B_##ctype : 0;
#include "schema.def"
#undef PC
	return n;
}

/* The value codecs (what the fuzz target drives): encode/decode round trip,
 * and every malformed value refused, not half-read. */
static void
test_value_codecs(void **state)
{
	static gen_value v, back;
	uint8_t buf[8192];
	size_t n;

	(void)state;
	memset(&v, 0, sizeof v);
	v.card = card_profile(7);
	n = gen_value_encode(GEN_VALUE_CARD, &v, buf, sizeof buf);
	/* version, schema.def's PC rows, the hour histogram, 2 countries, 1 merchant */
	assert_int_equal(n, 2 + card_fields_bytes(STORE_CARD_LAYOUT) + 96 + 1 + 4 + 1 + 8);
	assert_int_equal(gen_value_decode(GEN_VALUE_CARD, buf, n, &back), VIGIL_OK);
	assert_memory_equal(&back.card, &v.card, sizeof v.card);
	/* one byte short, one too many, an unknown version, lists over their caps */
	assert_int_equal(gen_value_decode(GEN_VALUE_CARD, buf, n - 1, &back), VIGIL_ECORRUPT);
	assert_int_equal(gen_value_decode(GEN_VALUE_CARD, buf, n + 1, &back), VIGIL_ECORRUPT);
	assert_int_equal(gen_value_decode(GEN_VALUE_CARD, buf, 1, &back), VIGIL_ECORRUPT);
	buf[0] = STORE_CARD_LAYOUT + 1;
	assert_int_equal(gen_value_decode(GEN_VALUE_CARD, buf, n, &back), VIGIL_EVERSION);
	buf[0] = STORE_CARD_LAYOUT;
	buf[n - 14] = STORE_CARD_MAX_COUNTRIES + 1; /* the country count */
	assert_int_equal(gen_value_decode(GEN_VALUE_CARD, buf, n, &back), VIGIL_ECORRUPT);
	buf[n - 14] = 2;
	buf[n - 9] = STORE_CARD_MAX_MERCHANTS + 1; /* the merchant count */
	assert_int_equal(gen_value_decode(GEN_VALUE_CARD, buf, n, &back), VIGIL_ECORRUPT);
	buf[n - 9] = 1;
	/* A value of card layout 1 (before top_merchant_share_90d): the fields
	 * it lacks read zero, the rest and the lists as they were. */
	{
		uint8_t old[8192];
		size_t  f1 = card_fields_bytes(1), fn = card_fields_bytes(STORE_CARD_LAYOUT);

		assert_true(f1 < fn);
		old[0] = 1;
		old[1] = 0;
		memcpy(old + 2, buf + 2, f1);
		memcpy(old + 2 + f1, buf + 2 + fn, n - 2 - fn);
		assert_int_equal(gen_value_decode(GEN_VALUE_CARD, old, n - (fn - f1), &back), VIGIL_OK);
		assert_true(back.card.top_merchant_share_90d == 0.0);
		back.card.top_merchant_share_90d = v.card.top_merchant_share_90d;
		assert_memory_equal(&back.card, &v.card, sizeof v.card);
	}

	v.entity.count_30d = 300;
	v.entity.fraud_rate_90d = 0.03;
	v.entity.fraud_rate_mature_30d = 0.05;
	n = gen_value_encode(GEN_VALUE_ENTITY, &v, buf, sizeof buf);
	assert_int_equal(n, 70 + 16 + 16 + 16);
	assert_int_equal(gen_value_decode(GEN_VALUE_ENTITY, buf, n, &back), VIGIL_OK);
	assert_memory_equal(&back.entity, &v.entity, sizeof v.entity);
	assert_int_equal(gen_value_decode(GEN_VALUE_ENTITY, buf, n - 8, &back), VIGIL_ECORRUPT);
	/* a value of layout 1 (before the mature windows) reads as before,
	 * the fields it lacks zero; layout 1 with layout 2's length does not */
	buf[0] = 1;
	assert_int_equal(gen_value_decode(GEN_VALUE_ENTITY, buf, 70, &back), VIGIL_OK);
	assert_int_equal(back.entity.count_30d, 300);
	assert_true(back.entity.fraud_rate_90d == 0.03);
	assert_true(back.entity.fraud_rate_mature_30d == 0.0);
	assert_int_equal(gen_value_decode(GEN_VALUE_ENTITY, buf, n, &back), VIGIL_ECORRUPT);
	buf[0] = 2; /* layout 2: the mature windows, not the reported cards */
	assert_int_equal(gen_value_decode(GEN_VALUE_ENTITY, buf, 70 + 32, &back), VIGIL_OK);
	assert_true(back.entity.fraud_rate_mature_30d == 0.05);
	assert_int_equal(back.entity.cards_sampled_30d, 0);
	buf[0] = STORE_ENTITY_LAYOUT + 1;
	assert_int_equal(gen_value_decode(GEN_VALUE_ENTITY, buf, n, &back), VIGIL_EVERSION);

	v.threshold = (store_threshold_val){ .value = 107.0, .previous = 90.0, .samples = 7,
	    .tuned = true };
	n = gen_value_encode(GEN_VALUE_THRESHOLD, &v, buf, sizeof buf);
	assert_int_equal(n, 27);
	assert_int_equal(gen_value_decode(GEN_VALUE_THRESHOLD, buf, n, &back), VIGIL_OK);
	assert_true(back.threshold.value == 107.0 && back.threshold.tuned);
	buf[26] = 2; /* tuned is 0 or 1 */
	assert_int_equal(gen_value_decode(GEN_VALUE_THRESHOLD, buf, n, &back), VIGIL_ECORRUPT);

	v.meta.generation = 3;
	v.meta.last_seq = 1000;
	snprintf(v.meta.summary_json, sizeof v.meta.summary_json, "{\"cards\":51}");
	n = gen_value_encode(GEN_VALUE_META, &v, buf, sizeof buf);
	assert_int_equal(n, 64 + 12);
	assert_int_equal(gen_value_decode(GEN_VALUE_META, buf, n, &back), VIGIL_OK);
	assert_int_equal(back.meta.generation, 3);
	assert_int_equal(back.meta_card, STORE_CARD_LAYOUT);
	assert_string_equal(back.meta.summary_json, "{\"cards\":51}");
	assert_int_equal(gen_value_decode(GEN_VALUE_META, buf, n - 1, &back), VIGIL_ECORRUPT);
	buf[60] = 0xff; /* a summary length past its field */
	buf[61] = 0xff;
	assert_int_equal(gen_value_decode(GEN_VALUE_META, buf, n, &back), VIGIL_ECORRUPT);
	/* a buffer too small for the value */
	assert_int_equal(gen_value_encode(GEN_VALUE_META, &v, buf, 10), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_write_read_roundtrip),
		cmocka_unit_test(test_thresholds_each),
		cmocka_unit_test(test_abort_leaves_current),
		cmocka_unit_test(test_rebuild_lock),
		cmocka_unit_test(test_unknown_version_refused),
		cmocka_unit_test(test_older_layout_read),
		cmocka_unit_test(test_mdb_stat_and_dump_read_generation),
		cmocka_unit_test(test_prune_and_rollback),
		cmocka_unit_test(test_prune_keeps_current),
		cmocka_unit_test(test_corrupt_current_reported),
		cmocka_unit_test(test_switch_under_readers),
		cmocka_unit_test(test_refresh_refuses_bad_generation),
		cmocka_unit_test(test_value_codecs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
