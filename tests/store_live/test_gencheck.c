/* SPDX-License-Identifier: MIT */
/*
 * tests/store_live/test_gencheck.c - generations verified before use
 * (docs/storage.md, "Verification"): the CHECKSUM a commit writes, damaged,
 * truncated and missing files refused with a line naming the generation,
 * generations written before checksums, store_db's fall-back at open and
 * the refusal kept (not retried every tick) at refresh.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <xxhash.h>

#include "gendir.h"
#include "genread.h"
#include "helpers.h"

#define NCARDS 2000 /* a generation of some 150 pages, branch pages included */

/* Writes and commits one generation whose cards all have count_7d = mark. */
static uint64_t
gen_write(const char *datadir, uint32_t mark)
{
	store_genw        *w = NULL;
	store_diag         d;
	store_card_profile cp;
	store_gen_meta     meta;
	uint64_t           gen;
	char               id[32];

	memset(&cp, 0, sizeof cp);
	cp.count_7d = mark;
	cp.count_90d = 90;
	assert_int_equal(store_genw_begin(datadir, &w, &d), VIGIL_OK);
	gen = store_genw_generation(w);
	assert_int_equal(store_genw_put_card(w, "c1", &cp), VIGIL_OK);
	for (int i = 0; i < NCARDS; i++) {
		snprintf(id, sizeof id, "card-%05d", i);
		assert_int_equal(store_genw_put_card(w, id, &cp), VIGIL_OK);
	}
	memset(&meta, 0, sizeof meta);
	meta.as_of_ms = T0;
	meta.window_ms = 90 * DAY_MS;
	meta.built_at_ms = T0 + HOUR_MS;
	assert_int_equal(store_genw_commit(w, &meta, 10, &d), VIGIL_OK);
	assert_string_equal(d.msg, "");
	return gen;
}

static void
gen_path(char *buf, size_t len, const char *dir, uint64_t gen, const char *file)
{
	snprintf(buf, len, "%s/features/gen-%06llu%s%s", dir, (unsigned long long)gen,
	    file[0] ? "/" : "", file);
}

static uint8_t *
file_read(const char *path, size_t *ret_len)
{
	FILE    *f = fopen(path, "rb");
	uint8_t *buf;
	long     n;

	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n >= 0);
	rewind(f);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*ret_len = (size_t)n;
	return buf;
}

static void
file_write(const char *path, const void *buf, size_t len)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(buf, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

/*
 * Damages the page headers of data.mdb in place, as the review did: for
 * every page after the two meta pages, the 8 bytes after the page number
 * (flags, lower and upper bounds) are overwritten. Done after the commit,
 * so the CHECKSUM describes the file as it was.
 */
static void
gen_damage_pages(const char *dir, uint64_t gen)
{
	char     path[4200];
	size_t   len;
	uint8_t *buf;
	long     ps = sysconf(_SC_PAGESIZE);

	gen_path(path, sizeof path, dir, gen, "data.mdb");
	buf = file_read(path, &len);
	assert_true(len >= 8 * (size_t)ps);
	for (size_t off = 2 * (size_t)ps; off + 16 <= len; off += (size_t)ps)
		memset(buf + off + 8, 0xA5, 8);
	file_write(path, buf, len);
	free(buf);
}

static vigil_err
gen_open_diag(const char *dir, uint64_t gen, store_diag *d)
{
	store_gen *g = NULL;
	vigil_err  rv;

	d->msg[0] = '\0';
	rv = store_gen_open(dir, gen, &g, d);
	if (rv == VIGIL_OK)
		assert_non_null(g);
	else
		assert_null(g);
	store_gen_close(g);
	return rv;
}

static void
assert_prefix(const char *s, const char *prefix)
{
	if (strncmp(s, prefix, strlen(prefix)) != 0)
		fail_msg("\"%s\" does not start with \"%s\"", s, prefix);
}

/* ---- what a commit writes ---- */

/* CHECKSUM is xxh128sum's line for data.mdb (XXH3-128, canonical hex);
 * CHECKSUMS_FROM names the first generation written with one; the
 * generation opens verified. */
static void
test_checksum_written_and_verified(void **state)
{
	char              *dir = tmpdir_new();
	char               path[4200], want[128];
	size_t             len, clen;
	uint8_t           *data, *sum;
	XXH128_hash_t      h;
	XXH128_canonical_t c;
	store_gen         *g = NULL;
	store_gen_check    chk;
	store_diag         d;
	int                n;

	(void)state;
	assert_int_equal(gen_write(dir, 1), 1);
	gen_path(path, sizeof path, dir, 1, "data.mdb");
	data = file_read(path, &len);
	h = XXH3_128bits(data, len);
	XXH128_canonicalFromHash(&c, h);
	n = 0;
	for (int i = 0; i < 16; i++)
		n += snprintf(want + n, sizeof want - (size_t)n, "%02x", c.digest[i]);
	snprintf(want + n, sizeof want - (size_t)n, "  data.mdb\n");
	gen_path(path, sizeof path, dir, 1, "CHECKSUM");
	sum = file_read(path, &clen);
	sum[clen] = '\0';
	assert_string_equal((char *)sum, want);
	free(sum);
	snprintf(path, sizeof path, "%s/features/CHECKSUMS_FROM", dir);
	sum = file_read(path, &clen);
	sum[clen] = '\0';
	assert_string_equal((char *)sum, "gen-000001\n");
	free(sum);

	assert_int_equal(store_gen_open(dir, 1, &g, &d), VIGIL_OK);
	store_gen_check_get(g, &chk);
	assert_true(chk.verified);
	assert_int_equal(chk.bytes, len);
	store_gen_close(g);
	/* A second generation leaves CHECKSUMS_FROM as it is. */
	assert_int_equal(gen_write(dir, 2), 2);
	sum = file_read(path, &clen);
	sum[clen] = '\0';
	assert_string_equal((char *)sum, "gen-000001\n");
	free(sum);
	free(data);
	tmpdir_free(dir);
}

/* ---- damage refused, never mapped ---- */

static void
test_damaged_pages_refused(void **state)
{
	char      *dir = tmpdir_new();
	char       path[4200], prefix[256];
	struct stat st;
	store_gen *g = NULL;
	store_diag d;

	(void)state;
	gen_write(dir, 1);
	gen_damage_pages(dir, 1);
	gen_path(path, sizeof path, dir, 1, "data.mdb");
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(gen_open_diag(dir, 1, &d), VIGIL_ECORRUPT);
	snprintf(prefix, sizeof prefix, "features/gen-000001: data.mdb (%lld bytes) does not match "
	    "CHECKSUM: xxh128 ", (long long)st.st_size);
	assert_prefix(d.msg, prefix);
	assert_non_null(strstr(d.msg, ", expected "));
	assert_non_null(strstr(d.msg, "; damaged"));
	assert_null(strchr(d.msg, '\n'));
	assert_int_equal(store_gen_open_current(dir, &g, &d), VIGIL_ECORRUPT);
	assert_null(g);
	assert_prefix(d.msg, "features/gen-000001: data.mdb (");
	tmpdir_free(dir);
}

/* One flipped bit anywhere, the last byte included. */
static void
test_one_bit_refused(void **state)
{
	char    *dir = tmpdir_new();
	char     path[4200];
	size_t   len;
	uint8_t *buf;
	store_diag d;

	(void)state;
	gen_write(dir, 1);
	gen_path(path, sizeof path, dir, 1, "data.mdb");
	buf = file_read(path, &len);
	buf[len - 1] ^= 0x01;
	file_write(path, buf, len);
	assert_int_equal(gen_open_diag(dir, 1, &d), VIGIL_ECORRUPT);
	assert_non_null(strstr(d.msg, "does not match CHECKSUM"));
	buf[len - 1] ^= 0x01; /* restored: opens again */
	file_write(path, buf, len);
	assert_int_equal(gen_open_diag(dir, 1, &d), VIGIL_OK);
	free(buf);
	tmpdir_free(dir);
}

static void
test_truncated_refused(void **state)
{
	char      *dir = tmpdir_new();
	char       path[4200];
	struct stat st;
	store_diag d;

	(void)state;
	gen_write(dir, 1);
	gen_path(path, sizeof path, dir, 1, "data.mdb");
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(truncate(path, st.st_size / 2), 0);
	assert_int_equal(gen_open_diag(dir, 1, &d), VIGIL_ECORRUPT);
	{
		char prefix[128];

		snprintf(prefix, sizeof prefix, "features/gen-000001: data.mdb (%lld bytes) does not "
		    "match CHECKSUM", (long long)(st.st_size / 2));
		assert_prefix(d.msg, prefix);
	}
	assert_int_equal(truncate(path, 0), 0);
	assert_int_equal(gen_open_diag(dir, 1, &d), VIGIL_ECORRUPT);
	assert_prefix(d.msg, "features/gen-000001: data.mdb (0 bytes) does not match CHECKSUM");
	tmpdir_free(dir);
}

static void
test_missing_files_refused(void **state)
{
	char      *dir = tmpdir_new();
	char       path[4200];
	store_diag d;

	(void)state;
	gen_write(dir, 1);
	gen_write(dir, 2);
	gen_write(dir, 3);
	/* data.mdb gone */
	gen_path(path, sizeof path, dir, 1, "data.mdb");
	assert_int_equal(unlink(path), 0);
	assert_int_equal(gen_open_diag(dir, 1, &d), VIGIL_ECORRUPT);
	assert_string_equal(d.msg, "features/gen-000001: data.mdb: No such file or directory");
	/* CHECKSUM gone, where CHECKSUMS_FROM says there is one */
	gen_path(path, sizeof path, dir, 2, "CHECKSUM");
	assert_int_equal(unlink(path), 0);
	assert_int_equal(gen_open_diag(dir, 2, &d), VIGIL_ECORRUPT);
	assert_string_equal(d.msg, "features/gen-000002: CHECKSUM is missing (every generation "
	    "from gen-000001 on has one: features/CHECKSUMS_FROM)");
	/* CHECKSUM malformed */
	gen_path(path, sizeof path, dir, 3, "CHECKSUM");
	file_write(path, "abc  data.mdb\n", 14);
	assert_int_equal(gen_open_diag(dir, 3, &d), VIGIL_ECORRUPT);
	assert_string_equal(d.msg, "features/gen-000003: CHECKSUM is malformed: expected "
	    "\"<32 hex digits>  data.mdb\", got \"abc  data.mdb?\"");
	/* no directory at all */
	assert_int_equal(gen_open_diag(dir, 9, &d), VIGIL_ENOTFOUND);
	assert_prefix(d.msg, "features/gen-000009: no such generation (");
	/* a roll-back to a refused generation is refused too */
	assert_int_equal(store_gen_set_current(dir, 2, &d), VIGIL_ECORRUPT);
	tmpdir_free(dir);
}

/* Generations written before checksums (no CHECKSUM, no CHECKSUMS_FROM, or
 * numbered below it) open unverified; a truncated one is still refused,
 * from LMDB's own page count, before any page is read. */
static void
test_legacy_generation_unverified(void **state)
{
	char            *dir = tmpdir_new();
	char             path[4200];
	struct stat      st;
	store_gen       *g = NULL;
	store_gen_check  chk;
	store_card_profile cp;
	store_diag       d;

	(void)state;
	gen_write(dir, 1);
	gen_write(dir, 2);
	gen_path(path, sizeof path, dir, 1, "CHECKSUM");
	assert_int_equal(unlink(path), 0);
	gen_path(path, sizeof path, dir, 2, "CHECKSUM");
	assert_int_equal(unlink(path), 0);
	snprintf(path, sizeof path, "%s/features/CHECKSUMS_FROM", dir);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(store_gen_open(dir, 2, &g, &d), VIGIL_OK);
	store_gen_check_get(g, &chk);
	assert_false(chk.verified);
	assert_true(chk.bytes > 0);
	assert_int_equal(store_gen_card(g, "c1", &cp), VIGIL_OK);
	assert_int_equal(cp.count_7d, 2);
	store_gen_close(g);
	/* The first checksummed commit marks gen 3: 1 and 2 stay legacy. */
	assert_int_equal(gen_write(dir, 3), 3);
	assert_int_equal(gen_open_diag(dir, 1, &d), VIGIL_OK);
	assert_int_equal(gen_open_diag(dir, 2, &d), VIGIL_OK);
	assert_int_equal(store_gen_open(dir, 3, &g, &d), VIGIL_OK);
	store_gen_check_get(g, &chk);
	assert_true(chk.verified);
	store_gen_close(g);
	/* Legacy and truncated: refused, not mapped past its end. */
	gen_path(path, sizeof path, dir, 1, "data.mdb");
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(truncate(path, 4 * sysconf(_SC_PAGESIZE)), 0);
	assert_int_equal(gen_open_diag(dir, 1, &d), VIGIL_ECORRUPT);
	assert_prefix(d.msg, "features/gen-000001: data.mdb is truncated: ");
	tmpdir_free(dir);
}

/* Damage resealed with a matching CHECKSUM (a bug in a writer, say) is
 * past the checksum: LMDB's own checks are then the judge, and a wrong page
 * type is an error of the open (VIGIL_ECORRUPT naming the table), not a
 * fault. (Which error LMDB finds first depends on the page layout.) */
static void
test_resealed_damage_refused_by_lmdb(void **state)
{
	char      *dir = tmpdir_new();
	char       path[4200];
	store_diag d;

	(void)state;
	gen_write(dir, 1);
	gen_damage_pages(dir, 1);
	gen_path(path, sizeof path, dir, 1, "");
	assert_int_equal(gen_checksum_write(path, &d), VIGIL_OK);
	assert_int_equal(gen_open_diag(dir, 1, &d), VIGIL_ECORRUPT);
	assert_prefix(d.msg, "features/gen-000001: table card: MDB_"); /* LMDB's words */
	tmpdir_free(dir);
}

/* ---- store_db: start-up ---- */

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

static double
card_count_7d(store_db *db)
{
	store_ctx  *ctx = store_ctx_new(db);
	vigil_value f[256];
	vigil_txn   x = txn_make("p", "c1", "m1", T0, 100);
	double      v;

	assert_non_null(ctx);
	assert_int_equal(store_features_lookup(db, ctx, &x, f, store_schema_nfields()), VIGIL_OK);
	v = present_of(f, "card.count_7d") ? num_of(f, "card.count_7d") : -1;
	store_ctx_free(ctx);
	return v;
}

/* CURRENT names a damaged generation: the db opens on the newest older one
 * that verifies (skipping a damaged one on the way), or on none, and
 * health says which was refused and why; lookups never fault. */
static void
test_db_open_falls_back(void **state)
{
	char           *dir = tmpdir_new();
	store_db       *db;
	store_db_health h;

	(void)state;
	gen_write(dir, 1);
	gen_write(dir, 2);
	gen_write(dir, 3);
	gen_damage_pages(dir, 3);
	db = db_open(dir);
	assert_int_equal(store_db_generation(db), 2);
	assert_true(card_count_7d(db) == 2);
	store_db_get_health(db, &h);
	assert_true(h.ok);
	assert_int_equal(h.generation, 2);
	assert_true(h.generation_verified);
	assert_true(h.generation_refused);
	assert_int_equal(h.refused_generation, 3);
	assert_int_equal(h.generation_refusals, 1);
	assert_prefix(h.generation_error, "features/gen-000003: data.mdb (");
	store_db_close(db);

	gen_damage_pages(dir, 2);
	db = db_open(dir);
	assert_int_equal(store_db_generation(db), 1);
	assert_true(card_count_7d(db) == 1);
	store_db_get_health(db, &h);
	assert_int_equal(h.refused_generation, 3);
	store_db_close(db);

	/* None verifies: a cold start, said as such. */
	gen_damage_pages(dir, 1);
	db = db_open(dir);
	assert_int_equal(store_db_generation(db), 0);
	assert_true(card_count_7d(db) == -1);
	store_db_get_health(db, &h);
	assert_true(h.ok);
	assert_int_equal(h.generation, 0);
	assert_false(h.generation_verified);
	assert_true(h.generation_refused);
	assert_int_equal(h.refused_generation, 3);
	assert_prefix(h.generation_error, "features/gen-000003: data.mdb (");
	store_db_close(db);
	tmpdir_free(dir);
}

/* CURRENT names a generation that is gone: not a silent generation 0. */
static void
test_db_open_current_missing(void **state)
{
	char           *dir = tmpdir_new();
	char            path[4200], cmd[4300];
	store_db       *db;
	store_db_health h;

	(void)state;
	gen_write(dir, 1);
	gen_write(dir, 2);
	gen_path(path, sizeof path, dir, 2, "");
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
	assert_int_equal(system(cmd), 0);
	db = db_open(dir);
	assert_int_equal(store_db_generation(db), 1);
	assert_true(card_count_7d(db) == 1);
	store_db_get_health(db, &h);
	assert_true(h.generation_refused);
	assert_int_equal(h.refused_generation, 2);
	assert_prefix(h.generation_error, "features/gen-000002: no such generation (");
	store_db_close(db);
	tmpdir_free(dir);
}

/* A malformed CURRENT: the newest generation that verifies, and the line. */
static void
test_db_open_current_malformed(void **state)
{
	char           *dir = tmpdir_new();
	char            path[4200];
	store_db       *db;
	store_db_health h;

	(void)state;
	gen_write(dir, 1);
	gen_write(dir, 2);
	snprintf(path, sizeof path, "%s/features/CURRENT", dir);
	file_write(path, "gen-2\n", 6);
	db = db_open(dir);
	assert_int_equal(store_db_generation(db), 2);
	store_db_get_health(db, &h);
	assert_true(h.generation_refused);
	assert_int_equal(h.refused_generation, 0);
	assert_non_null(strstr(h.generation_error, "features/CURRENT: expected \"gen-NNNNNN\", got \"gen-2\""));
	store_db_close(db);
	tmpdir_free(dir);
}

/*
 * A FIFO (or device, socket, directory) named data.mdb, CHECKSUM or CURRENT
 * is refused before it is opened: opening a FIFO nobody writes waits for
 * ever, and the refresh thread (and a stop joining it) would wait with it.
 * A hang here is the failure: the suite's timeout ends it.
 */
static void
test_special_files_refused(void **state)
{
	char           *dir = tmpdir_new();
	char            path[4200];
	store_db       *db;
	store_db_health h;
	store_diag      d;

	(void)state;
	gen_write(dir, 1);
	gen_write(dir, 2);
	gen_write(dir, 3);
	gen_path(path, sizeof path, dir, 1, "data.mdb");
	assert_int_equal(unlink(path), 0);
	assert_int_equal(mkfifo(path, 0600), 0);
	assert_int_equal(gen_open_diag(dir, 1, &d), VIGIL_ECORRUPT);
	assert_string_equal(d.msg, "features/gen-000001: data.mdb is not a regular file");
	gen_path(path, sizeof path, dir, 2, "CHECKSUM");
	assert_int_equal(unlink(path), 0);
	assert_int_equal(mkfifo(path, 0600), 0);
	assert_int_equal(gen_open_diag(dir, 2, &d), VIGIL_ECORRUPT);
	assert_string_equal(d.msg, "features/gen-000002: CHECKSUM is not a regular file");
	gen_path(path, sizeof path, dir, 3, "CHECKSUM");
	assert_int_equal(unlink(path), 0);
	assert_int_equal(mkdir(path, 0700), 0);
	assert_int_equal(gen_open_diag(dir, 3, &d), VIGIL_ECORRUPT);
	assert_string_equal(d.msg, "features/gen-000003: CHECKSUM is not a regular file");
	/* CURRENT a FIFO: no generation named, so none is served */
	snprintf(path, sizeof path, "%s/features/CURRENT", dir);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(mkfifo(path, 0600), 0);
	db = db_open(dir);
	store_db_get_health(db, &h);
	assert_true(h.generation_refused);
	assert_non_null(strstr(h.generation_error, "features/CURRENT: not a regular file"));
	store_db_close(db);
	tmpdir_free(dir);
}

/* A generation with no CHECKSUM from before checksums is served, and
 * health says it is unverified. */
static void
test_db_open_legacy(void **state)
{
	char           *dir = tmpdir_new();
	char            path[4200];
	store_db       *db;
	store_db_health h;

	(void)state;
	gen_write(dir, 1);
	gen_path(path, sizeof path, dir, 1, "CHECKSUM");
	assert_int_equal(unlink(path), 0);
	snprintf(path, sizeof path, "%s/features/CHECKSUMS_FROM", dir);
	assert_int_equal(unlink(path), 0);
	db = db_open(dir);
	store_db_get_health(db, &h);
	assert_int_equal(h.generation, 1);
	assert_false(h.generation_verified);
	assert_false(h.generation_refused);
	assert_string_equal(h.generation_error, "");
	store_db_close(db);
	tmpdir_free(dir);
}

/* ---- store_db: switching while serving ---- */

/* CURRENT switched to a damaged generation: refused once, the served one
 * kept, not read again each tick; tried again when its files change (here:
 * repaired) or CURRENT does; a later good generation clears the state. */
static void
test_refresh_keeps_served_on_bad_switch(void **state)
{
	char           *dir = tmpdir_new();
	char            path[4200];
	store_db       *db;
	store_db_health h;
	store_diag      d;
	bool            changed = true;
	uint8_t        *good;
	size_t          len;

	(void)state;
	gen_write(dir, 1);
	db = db_open(dir);
	assert_int_equal(store_db_generation(db), 1);
	gen_write(dir, 2);
	gen_path(path, sizeof path, dir, 2, "data.mdb");
	good = file_read(path, &len);
	gen_damage_pages(dir, 2);
	d.msg[0] = '\0';
	assert_int_equal(store_db_refresh(db, &changed, &d), VIGIL_ECORRUPT);
	assert_prefix(d.msg, "features/gen-000002: data.mdb (");
	assert_int_equal(store_db_generation(db), 1);
	assert_true(card_count_7d(db) == 1);
	store_db_get_health(db, &h);
	assert_true(h.ok);
	assert_int_equal(h.generation, 1);
	assert_true(h.generation_refused);
	assert_int_equal(h.refused_generation, 2);
	assert_string_equal(h.generation_error, d.msg);
	assert_int_equal(h.generation_refusals, 1);
	/* Nothing changed: not tried again, nothing returned to log again. */
	for (int i = 0; i < 3; i++) {
		changed = true;
		assert_int_equal(store_db_refresh(db, &changed, &d), VIGIL_OK);
		assert_false(changed);
	}
	store_db_get_health(db, &h);
	assert_int_equal(h.generation_refusals, 1);
	assert_true(h.generation_refused);
	/* Repaired (the file changed): tried again, switched, cleared. */
	file_write(path, good, len);
	assert_int_equal(store_db_refresh(db, &changed, &d), VIGIL_OK);
	assert_true(changed);
	assert_int_equal(store_db_generation(db), 2);
	assert_true(card_count_7d(db) == 2);
	store_db_get_health(db, &h);
	assert_false(h.generation_refused);
	assert_string_equal(h.generation_error, "");
	/* Another bad one, then a good rebuild after it: switched to that. */
	gen_write(dir, 3);
	gen_damage_pages(dir, 3);
	assert_int_equal(store_db_refresh(db, &changed, &d), VIGIL_ECORRUPT);
	assert_int_equal(store_db_generation(db), 2);
	gen_write(dir, 4);
	assert_int_equal(store_db_refresh(db, &changed, &d), VIGIL_OK);
	assert_true(changed);
	assert_int_equal(store_db_generation(db), 4);
	store_db_get_health(db, &h);
	assert_false(h.generation_refused);
	assert_int_equal(h.generation_refusals, 2);
	/* CURRENT malformed while serving: once, then quiet; 4 stays. */
	snprintf(path, sizeof path, "%s/features/CURRENT", dir);
	file_write(path, "junk\n", 5);
	assert_int_equal(store_db_refresh(db, &changed, &d), VIGIL_ECORRUPT);
	assert_non_null(strstr(d.msg, "features/CURRENT: expected"));
	assert_int_equal(store_db_refresh(db, &changed, &d), VIGIL_OK);
	store_db_get_health(db, &h);
	assert_true(h.generation_refused);
	assert_int_equal(h.refused_generation, 0);
	assert_int_equal(store_db_generation(db), 4);
	/* Rolled back to the one served: nothing refused any more. */
	assert_int_equal(store_gen_set_current(dir, 4, &d), VIGIL_OK);
	assert_int_equal(store_db_refresh(db, &changed, &d), VIGIL_OK);
	assert_false(changed);
	store_db_get_health(db, &h);
	assert_false(h.generation_refused);
	free(good);
	store_db_close(db);
	tmpdir_free(dir);
}

/* The fall-back at open, then the refused generation repaired while
 * serving: the next refresh switches to it. */
static void
test_refresh_after_fallback(void **state)
{
	char           *dir = tmpdir_new();
	char            path[4200];
	store_db       *db;
	store_db_health h;
	store_diag      d;
	bool            changed = false;
	uint8_t        *good;
	size_t          len;

	(void)state;
	gen_write(dir, 1);
	gen_write(dir, 2);
	gen_path(path, sizeof path, dir, 2, "data.mdb");
	good = file_read(path, &len);
	gen_damage_pages(dir, 2);
	db = db_open(dir);
	assert_int_equal(store_db_generation(db), 1);
	assert_int_equal(store_db_refresh(db, &changed, &d), VIGIL_OK);
	assert_false(changed);
	file_write(path, good, len);
	assert_int_equal(store_db_refresh(db, &changed, &d), VIGIL_OK);
	assert_true(changed);
	assert_int_equal(store_db_generation(db), 2);
	store_db_get_health(db, &h);
	assert_false(h.generation_refused);
	assert_int_equal(h.generation_refusals, 1);
	free(good);
	store_db_close(db);
	tmpdir_free(dir);
}

/* Issue 28, row 7: data.mdb of the served generation truncated under the
 * mapping (`truncate -s 64K`). Before: the next lookup died of SIGBUS.
 * Now the lookup fails, the next refresh stops serving it (the newest
 * older generation that verifies serves instead) and health says why;
 * truncated without a lookup, the refresh's fstat finds it. */
static void
test_truncated_while_served(void **state)
{
	char           *dir = tmpdir_new();
	char            path[4200];
	store_db       *db;
	store_ctx      *ctx;
	store_db_health h;
	store_diag      d;
	vigil_value     f[256];
	vigil_txn       x = txn_make("p", "card-01999", "m1", T0, 100);
	bool            changed = false;
	struct sigaction sa;
	sigset_t        mask;

	(void)state;
	gen_write(dir, 1);
	gen_write(dir, 2);
	db = db_open(dir);
	ctx = store_ctx_new(db);
	assert_non_null(ctx);
	assert_int_equal(store_db_generation(db), 2);
	assert_int_equal(store_features_lookup(db, ctx, &x, f, store_schema_nfields()), VIGIL_OK);
	assert_true(num_of(f, "card.count_7d") == 2);
	/* The handler as a runtime that wraps handlers installs it (TSan's):
	 * without SA_NODEFER, so SIGBUS is blocked while it runs. */
	assert_int_equal(sigaction(SIGBUS, NULL, &sa), 0);
	sa.sa_flags &= ~SA_NODEFER;
	assert_int_equal(sigaction(SIGBUS, &sa, NULL), 0);
	gen_path(path, sizeof path, dir, 2, "data.mdb");
	assert_int_equal(truncate(path, 64 << 10), 0);
	x = txn_make("p", "card-00007", "m2", T0, 100);
	assert_int_equal(store_features_lookup(db, ctx, &x, f, store_schema_nfields()),
	    VIGIL_ECORRUPT);
	/* the jump back left SIGBUS unblocked: the next fault is caught too */
	assert_int_equal(pthread_sigmask(SIG_BLOCK, NULL, &mask), 0);
	assert_false(sigismember(&mask, SIGBUS));
	d.msg[0] = '\0';
	assert_int_equal(store_db_refresh(db, &changed, &d), VIGIL_ECORRUPT);
	assert_true(changed);
	assert_string_equal(d.msg, "features/gen-000002: data.mdb changed under the mapping: "
	    "a read faulted (SIGBUS)");
	assert_int_equal(store_db_generation(db), 1);
	assert_int_equal(store_features_lookup(db, ctx, &x, f, store_schema_nfields()), VIGIL_OK);
	assert_true(num_of(f, "card.count_7d") == 1);
	store_db_get_health(db, &h);
	assert_true(h.generation_refused);
	assert_int_equal(h.refused_generation, 2);
	assert_string_equal(h.generation_error, d.msg);
	/* quiet until the files change */
	assert_int_equal(store_db_refresh(db, &changed, &d), VIGIL_OK);
	assert_false(changed);

	/* A good rebuild serves; then truncated again, found by the fstat. */
	gen_write(dir, 3);
	assert_int_equal(store_db_refresh(db, &changed, &d), VIGIL_OK);
	assert_int_equal(store_db_generation(db), 3);
	gen_path(path, sizeof path, dir, 3, "data.mdb");
	assert_int_equal(truncate(path, 64 << 10), 0);
	assert_int_equal(store_db_refresh(db, &changed, &d), VIGIL_ECORRUPT);
	assert_prefix(d.msg, "features/gen-000003: data.mdb was truncated while served: 65536 "
	    "bytes, LMDB needs ");
	assert_int_equal(store_db_generation(db), 1); /* 2 no longer verifies */
	store_ctx_free(ctx);
	store_db_close(db);
	tmpdir_free(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_checksum_written_and_verified),
		cmocka_unit_test(test_damaged_pages_refused),
		cmocka_unit_test(test_one_bit_refused),
		cmocka_unit_test(test_truncated_refused),
		cmocka_unit_test(test_missing_files_refused),
		cmocka_unit_test(test_legacy_generation_unverified),
		cmocka_unit_test(test_resealed_damage_refused_by_lmdb),
		cmocka_unit_test(test_db_open_falls_back),
		cmocka_unit_test(test_db_open_current_missing),
		cmocka_unit_test(test_db_open_current_malformed),
		cmocka_unit_test(test_special_files_refused),
		cmocka_unit_test(test_db_open_legacy),
		cmocka_unit_test(test_refresh_keeps_served_on_bad_switch),
		cmocka_unit_test(test_refresh_after_fallback),
		cmocka_unit_test(test_truncated_while_served),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
