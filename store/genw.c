/* SPDX-License-Identifier: MIT */
/*
 * store/genw.c - writing a feature generation (store_genw, gen.h): built in
 * "features/.tmp-gen-NNNNNN/", synced, checksummed, renamed into place and
 * named by CURRENT (features/db/genread.c says why readers never see half of one).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <lmdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codec.h"
#include "file.h"
#include "gen.h"
#include "gendir.h"

struct store_genw {
	char     fdir[GEN_PATH_MAX]; /* <datadir>/features */
	char     tmp[GEN_PATH_MAX];  /* <fdir>/.tmp-gen-NNNNNN */
	uint64_t gen;
	int      lockfd;
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi  dbi[GEN_NDBI];
	uint32_t pending;
	vigil_err failed; /* first put error; commit refuses after one */
};

/* ---------------------------------------------------------------------- */
/* Writing a generation. */

static vigil_err
genw_txn(store_genw *w)
{
	int rc;

	if (w->failed != VIGIL_OK)
		return w->failed;
	if (w->txn != NULL)
		return VIGIL_OK;
	rc = mdb_txn_begin(w->env, NULL, 0, &w->txn);
	if (rc != 0) {
		w->txn = NULL;
		w->failed = gen_err_from_mdb(rc);
	}
	return w->failed;
}

static vigil_err
genw_flush(store_genw *w)
{
	int rc;

	if (w->txn == NULL)
		return w->failed;
	rc = mdb_txn_commit(w->txn);
	w->txn = NULL;
	w->pending = 0;
	if (rc != 0 && w->failed == VIGIL_OK)
		w->failed = gen_err_from_mdb(rc);
	return w->failed;
}

static vigil_err
genw_put_raw(store_genw *w, int dbi, const void *key, size_t klen, const void *val,
    size_t vlen)
{
	MDB_val   k = { .mv_size = klen, .mv_data = (void *)key };
	MDB_val   v = { .mv_size = vlen, .mv_data = (void *)val };
	vigil_err rv;
	int       rc;

	rv = genw_txn(w);
	if (rv != VIGIL_OK)
		return rv;
	rc = mdb_put(w->txn, w->dbi[dbi], &k, &v, 0);
	if (rc != 0) {
		/* A failed LMDB transaction is aborted, never reused. */
		mdb_txn_abort(w->txn);
		w->txn = NULL;
		w->failed = gen_err_from_mdb(rc);
		return w->failed;
	}
	if (++w->pending >= GEN_TXN_PUTS)
		return genw_flush(w);
	return VIGIL_OK;
}

static vigil_err
genw_put(store_genw *w, int dbi, const void *key, size_t klen, const wbuf *val)
{
	return genw_put_raw(w, dbi, key, klen, val->buf, val->len);
}

vigil_err
store_genw_begin(const char *datadir, store_genw **ret_w, store_diag *reterr)
{
	store_genw *w = NULL;
	uint64_t   *gens = NULL, cur = 0, next;
	size_t      n = 0;
	char        name[32];
	MDB_txn    *txn = NULL;
	vigil_err   rv;
	int         rc;

	w = calloc(1, sizeof *w);
	if (w == NULL)
		return VIGIL_ENOMEM;
	w->lockfd = -1;
	if (gen_path_join(w->fdir, sizeof w->fdir, datadir, "features") != VIGIL_OK) {
		rv = VIGIL_ETOOBIG;
		store_diag_set(reterr, "%s: path too long", datadir);
		goto out;
	}
	rv = gen_lock_take(w->fdir, &w->lockfd, reterr);
	if (rv != VIGIL_OK)
		goto out;
	rv = gen_list(w->fdir, true, &gens, &n);
	if (rv != VIGIL_OK) {
		store_diag_set(reterr, "%s: listing generations: %s", w->fdir, vigil_strerror(rv));
		goto out;
	}
	rv = gen_cur_read(w->fdir, &cur, reterr);
	if (rv != VIGIL_OK)
		goto out;
	next = (n > 0 ? gens[0] : 0);
	if (cur > next)
		next = cur;
	if (++next > GEN_MAX_NUMBER) {
		rv = VIGIL_ELIMIT;
		store_diag_set(reterr, "%s: generation numbers exhausted", w->fdir);
		goto out;
	}
	w->gen = next;
	gen_pending_settle(w->fdir, cur);
	snprintf(name, sizeof name, ".tmp-gen-%06" PRIu64, w->gen);
	if (gen_path_join(w->tmp, sizeof w->tmp, w->fdir, name) != VIGIL_OK) {
		rv = VIGIL_ETOOBIG;
		store_diag_set(reterr, "%s: path too long", w->fdir);
		goto out;
	}
	if (mkdir(w->tmp, 0755) != 0) {
		rv = vigil_err_from_errno(errno);
		store_diag_set(reterr, "%s: mkdir: %s", w->tmp, strerror(errno));
		goto out;
	}
	if ((rc = mdb_env_create(&w->env)) != 0 ||
	    (rc = mdb_env_set_maxdbs(w->env, GEN_NDBI)) != 0 ||
	    (rc = mdb_env_set_mapsize(w->env, STORE_GEN_MAP_BYTES)) != 0 ||
	    /* Commits need not sync: the whole environment is synced once in
	     * store_genw_commit before it can become visible. */
	    (rc = mdb_env_open(w->env, w->tmp, MDB_NOSYNC | MDB_NOMETASYNC, 0644)) != 0 ||
	    (rc = mdb_txn_begin(w->env, NULL, 0, &txn)) != 0) {
		rv = gen_err_from_mdb(rc);
		store_diag_set(reterr, "%s: LMDB: %s", w->tmp, mdb_strerror(rc));
		goto out;
	}
	for (int i = 0; i < GEN_NDBI; i++) {
		rc = mdb_dbi_open(txn, gen_dbi_names[i], MDB_CREATE, &w->dbi[i]);
		if (rc != 0) {
			rv = gen_err_from_mdb(rc);
			store_diag_set(reterr, "%s: LMDB open %s: %s", w->tmp, gen_dbi_names[i],
			    mdb_strerror(rc));
			goto out;
		}
	}
	rc = mdb_txn_commit(txn);
	txn = NULL;
	if (rc != 0) {
		rv = gen_err_from_mdb(rc);
		store_diag_set(reterr, "%s: LMDB: %s", w->tmp, mdb_strerror(rc));
		goto out;
	}
	*ret_w = w;
	w = NULL;
	rv = VIGIL_OK;
out:
	if (txn != NULL)
		mdb_txn_abort(txn);
	free(gens);
	store_genw_abort(w);
	return rv;
}

uint64_t
store_genw_generation(const store_genw *w)
{
	return w->gen;
}

vigil_err
store_genw_put(store_genw *w, int dbi, const void *key, size_t klen, const void *val, size_t vlen)
{
	size_t max = dbi == DBI_THRESHOLD ? 2 * STORE_THRESHOLD_NAME_MAX + 1 : VIGIL_ID_MAX;

	if (dbi < DBI_CARD || dbi > DBI_THRESHOLD || klen == 0 || klen > max)
		return VIGIL_EINVAL;
	return genw_put_raw(w, dbi, key, klen, val, vlen);
}

vigil_err
store_genw_put_blob(store_genw *w, const char *name, const void *data, size_t len)
{
	char      key[sizeof GEN_BLOB_PREFIX + STORE_BLOB_NAME_MAX];
	size_t    klen;
	vigil_err rv;

	if (len > STORE_BLOB_MAX_BYTES || (data == NULL && len > 0))
		return len > STORE_BLOB_MAX_BYTES ? VIGIL_ETOOBIG : VIGIL_EINVAL;
	rv = gen_blob_key(name, key, sizeof key, &klen);
	if (rv != VIGIL_OK)
		return rv;
	return genw_put_raw(w, DBI_META, key, klen, data != NULL ? data : "", len);
}

vigil_err
store_genw_commit(store_genw *w, const store_gen_meta *meta, uint32_t keep, store_diag *reterr)
{
	store_gen_meta m;
	char           name[32], line[40], dst[GEN_PATH_MAX];
	wbuf          *val = NULL;
	vigil_err      rv;
	int            rc;

	if (reterr != NULL)
		reterr->msg[0] = '\0';
	val = malloc(sizeof *val);
	if (val == NULL) {
		rv = VIGIL_ENOMEM;
		goto out;
	}
	m = *meta;
	m.generation = w->gen;
	gen_meta_encode(&m, val);
	rv = genw_put(w, DBI_META, GEN_META_KEY, sizeof GEN_META_KEY - 1, val);
	if (rv == VIGIL_OK)
		rv = genw_flush(w);
	if (rv != VIGIL_OK) {
		store_diag_set(reterr, "%s: writing generation: %s", w->tmp, vigil_strerror(rv));
		goto out;
	}
	rc = mdb_env_sync(w->env, 1);
	if (rc != 0) {
		rv = gen_err_from_mdb(rc);
		store_diag_set(reterr, "%s: LMDB sync: %s", w->tmp, mdb_strerror(rc));
		goto out;
	}
	mdb_env_close(w->env);
	w->env = NULL;
	/* Nothing writes data.mdb from here on: its checksum is final. */
	rv = gen_checksum_write(w->tmp, reterr);
	if (rv != VIGIL_OK)
		goto out;
	rv = vigil_fsync_dir(w->tmp);
	if (rv != VIGIL_OK) {
		store_diag_set(reterr, "%s: fsync: %s", w->tmp, vigil_strerror(rv));
		goto out;
	}
	gen_name(w->gen, name, sizeof name);
	if (gen_path_join(dst, sizeof dst, w->fdir, name) != VIGIL_OK) {
		rv = VIGIL_ETOOBIG;
		goto out;
	}
	snprintf(line, sizeof line, "%s\n", name); /* until CURRENT names it */
	rv = gen_file_replace(w->fdir, GEN_PENDING, line, strlen(line), reterr);
	if (rv != VIGIL_OK)
		goto out;
	if (rename(w->tmp, dst) != 0) {
		rv = vigil_err_from_errno(errno);
		store_diag_set(reterr, "%s: rename to %s: %s", w->tmp, name, strerror(errno));
		goto out;
	}
	w->tmp[0] = '\0'; /* now owned by the features directory */
	rv = vigil_fsync_dir(w->fdir);
	if (rv != VIGIL_OK) {
		store_diag_set(reterr, "%s: fsync: %s", w->fdir, vigil_strerror(rv));
		goto out;
	}
	/* From this generation on a CHECKSUM is required (once, ever). */
	rv = gen_checksums_from_mark(w->fdir, w->gen, reterr);
	if (rv != VIGIL_OK)
		goto out;
	rv = gen_cur_write(w->fdir, w->gen, reterr);
	if (rv != VIGIL_OK)
		goto out;
	if (gen_path_join(dst, sizeof dst, w->fdir, GEN_PENDING) == VIGIL_OK)
		(void)unlink(dst); /* left, the next begin finds CURRENT names it */
	/* The new generation is current; a failed prune is reported in
	 * reterr but does not fail the commit. */
	(void)gen_prune(w->fdir, keep ? keep : GEN_DEFAULT_KEEP, w->gen, reterr);
	rv = VIGIL_OK;
out:
	free(val);
	store_genw_abort(w);
	return rv;
}

void
store_genw_abort(store_genw *w)
{
	if (w == NULL)
		return;
	if (w->txn != NULL)
		mdb_txn_abort(w->txn);
	if (w->env != NULL)
		mdb_env_close(w->env);
	if (w->tmp[0] != '\0')
		(void)gen_dir_remove(w->tmp);
	if (w->lockfd >= 0)
		close(w->lockfd); /* releases the flock */
	free(w);
}
