/* SPDX-License-Identifier: MIT */
/*
 * features/db/genread.c - reading batch feature generations from LMDB into
 * profiles (DESIGN.md contract 3; store/ writes them, genw.c).
 *
 * A generation is one LMDB environment "<datadir>/features/gen-NNNNNN/" with
 * the named databases card, merchant, terminal, threshold and meta. It is
 * written by vigil-rebuild in "features/.tmp-gen-NNNNNN/", synced, renamed
 * into place and only then named by the CURRENT file, which is replaced by
 * write-temp + fsync + rename + fsync(dir). Readers therefore never see a
 * half-built generation, and a crashed rebuild leaves only a .tmp directory
 * that the next rebuild removes. Values are packed little-endian layouts that
 * start with a uint16 layout version; codec.c is their only codec
 * (docs/storage.md).
 *
 * Before the rename the commit writes CHECKSUM, the XXH3-128 of data.mdb;
 * a reader reads the whole file and compares before LMDB maps any of it, so
 * a damaged or truncated generation is refused with a line naming it
 * instead of faulting (SIGBUS) in the first mdb_get ("Checksums" below).
 *
 * Readers open a committed generation with MDB_RDONLY | MDB_NOLOCK: nothing
 * ever opens it for writing again (the writer closed it before the rename),
 * so the reader lock table, whose job is to protect readers from a
 * concurrent writer reusing pages, has nothing to protect and is skipped;
 * this also lets a read-only data directory be served. Read transactions are
 * pooled per generation and recycled with mdb_txn_reset/renew.
 *
 * This file reads generations; directories, CURRENT, the rebuild lock and
 * the table keys are in gendir.c, writing in genw.c, the checksums in
 * gencheck.c (what they share: store/gendir.h).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <lmdb.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "codec.h"
#include "gen.h"
#include "gendir.h"
#include "genread.h"

struct store_gen {
	MDB_env        *env;
	MDB_dbi         dbi[GEN_NDBI];
	store_gen_meta  meta;
	char            name[32]; /* "gen-000042" for messages */
	store_gen_check check;    /* how data.mdb was verified at open */
	pthread_mutex_t pool_mu;
	MDB_txn        *pool[GEN_POOL_MAX];
	int             npool;
	/* Containment of a file changed under the mapping (gen_guard_arm,
	 * gen_intact): the map's address range, what LMDB needs of data.mdb
	 * and its identity when verified, and whether a read faulted. */
	uintptr_t       map_lo, map_hi;
	uint64_t        need_bytes;
	struct stat     st;
	atomic_bool     faulted;
};

/* An LMDB error while opening a generation: the generation is unreadable
 * (VIGIL_ECORRUPT) unless it is this process's memory or descriptors. */
static vigil_err
gen_open_err(int rc)
{
	switch (rc) {
	case ENOMEM: return VIGIL_ENOMEM;
	case EMFILE: case ENFILE: return VIGIL_ELIMIT;
	case MDB_VERSION_MISMATCH: return VIGIL_EVERSION;
	default: return VIGIL_ECORRUPT;
	}
}

/* ---------------------------------------------------------------------- */
/* Reading a generation. */

gen_session *
gen_session_begin(store_gen *g)
{
	MDB_txn *txn = NULL;
	int      rc;

	pthread_mutex_lock(&g->pool_mu);
	if (g->npool > 0)
		txn = g->pool[--g->npool];
	pthread_mutex_unlock(&g->pool_mu);
	if (txn != NULL) {
		rc = mdb_txn_renew(txn);
		if (rc == 0)
			return (gen_session *)txn;
		mdb_txn_abort(txn);
		txn = NULL;
	}
	rc = mdb_txn_begin(g->env, NULL, MDB_RDONLY, &txn);
	return rc == 0 ? (gen_session *)txn : NULL;
}

void
gen_session_end(store_gen *g, gen_session *s)
{
	MDB_txn *txn = (MDB_txn *)s;

	if (txn == NULL)
		return;
	mdb_txn_reset(txn);
	pthread_mutex_lock(&g->pool_mu);
	if (g->npool < GEN_POOL_MAX) {
		g->pool[g->npool++] = txn;
		txn = NULL;
	}
	pthread_mutex_unlock(&g->pool_mu);
	if (txn != NULL)
		mdb_txn_abort(txn);
}

static vigil_err
session_get(store_gen *g, gen_session *s, int dbi, const void *key, size_t klen,
    MDB_val *ret_v)
{
	MDB_val k = { .mv_size = klen, .mv_data = (void *)key };
	int     rc;

	if (klen == 0 || klen > VIGIL_ID_MAX + 1 + 2 * STORE_THRESHOLD_NAME_MAX)
		return VIGIL_ENOTFOUND;
	rc = mdb_get((MDB_txn *)s, g->dbi[dbi], &k, ret_v);
	return gen_err_from_mdb(rc);
}

vigil_err
gen_session_card(store_gen *g, gen_session *s, const char *card_id, store_card_profile *ret_p)
{
	MDB_val   v;
	vigil_err rv = session_get(g, s, DBI_CARD, card_id, strlen(card_id), &v);

	return rv != VIGIL_OK ? rv : gen_card_decode(v.mv_data, v.mv_size, ret_p);
}

vigil_err
gen_session_merchant(store_gen *g, gen_session *s, const char *merchant_id,
    store_entity_profile *ret_p)
{
	MDB_val   v;
	vigil_err rv = session_get(g, s, DBI_MERCHANT, merchant_id, strlen(merchant_id), &v);

	return rv != VIGIL_OK ? rv : gen_entity_decode(v.mv_data, v.mv_size, ret_p);
}

vigil_err
gen_session_terminal(store_gen *g, gen_session *s, const char *terminal_id,
    store_entity_profile *ret_p)
{
	MDB_val   v;
	vigil_err rv = session_get(g, s, DBI_TERMINAL, terminal_id, strlen(terminal_id), &v);

	return rv != VIGIL_OK ? rv : gen_entity_decode(v.mv_data, v.mv_size, ret_p);
}

uint64_t
gen_number(const store_gen *g)
{
	return g->meta.generation;
}

int64_t
gen_as_of(const store_gen *g)
{
	return g->meta.as_of_ms;
}

/* Checks the first value of a table has a layout this build reads, so an
 * unknown version is refused at open with the table and key named. */
static vigil_err
gen_check_table(store_gen *g, MDB_txn *txn, int dbi, uint16_t want, store_diag *reterr)
{
	MDB_cursor *cur = NULL;
	MDB_val     k, v;
	uint16_t    ver;
	vigil_err   rv = VIGIL_OK;
	int         rc;

	rc = mdb_cursor_open(txn, g->dbi[dbi], &cur);
	if (rc == 0)
		rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	if (rc == MDB_NOTFOUND)
		goto out;
	if (rc != 0) {
		rv = gen_open_err(rc);
		GEN_DIAG(reterr, g->name, NULL, "table %s: %s", gen_dbi_names[dbi],
		    mdb_strerror(rc));
		goto out;
	}
	ver = gen_val_version(v.mv_data, v.mv_size);
	if (ver < 1 || ver > want) { /* older profile layouts read as before */
		char key[65];

		snprintf(key, sizeof key, "%.*s", (int)(k.mv_size > 64 ? 64 : k.mv_size),
		    (const char *)k.mv_data);
		rv = VIGIL_EVERSION;
		/* no field: the message names the table and the key */
		GEN_DIAG(reterr, g->name, NULL, "table %s, key \"%s\": value layout version %u is "
		    "not known (this build reads version %u)", gen_dbi_names[dbi], key, ver, want);
	}
out:
	if (cur != NULL)
		mdb_cursor_close(cur);
	return rv;
}

/* ---------------------------------------------------------------------- */
/* Containment of a generation changed under its mapping.
 *
 * A generation is verified whole before it is mapped, but nothing stops a
 * process of the same user from truncating or overwriting data.mdb
 * afterwards (`truncate -s 64K`, `cp` over it): a read of a page past the
 * new end of the file is then a SIGBUS. A lookup arms a per-thread guard
 * (gen_guard_arm) around its reads; the process-wide handler, installed
 * with the first generation opened, jumps back to the lookup when the
 * faulting address lies in the armed generation's map, and the lookup
 * fails (VIGIL_ECORRUPT) and marks the generation faulted. Any other
 * SIGBUS goes to the disposition found at installation (by default: the
 * process dies, as before). */

static _Thread_local sigjmp_buf *volatile gen_guard_jb;
static _Thread_local volatile uintptr_t   gen_guard_lo, gen_guard_hi;
static struct sigaction                   gen_guard_prev;
static pthread_mutex_t                    gen_guard_mu = PTHREAD_MUTEX_INITIALIZER;

static void
gen_guard_handler(int sig, siginfo_t *si, void *uc)
{
	uintptr_t a = (uintptr_t)si->si_addr;

	if (gen_guard_jb != NULL && a >= gen_guard_lo && a < gen_guard_hi) {
		sigset_t m;

		/* The jump keeps the mask (sigsetjmp(jb, 0)): SIGBUS must not
		 * stay blocked, or the next fault kills the process. SA_NODEFER
		 * sees to it unless a runtime wrapping handlers (ThreadSanitizer's)
		 * installed its own without it. */
		sigemptyset(&m);
		sigaddset(&m, SIGBUS);
		(void)pthread_sigmask(SIG_UNBLOCK, &m, NULL);
		siglongjmp(*gen_guard_jb, 1);
	}
	if ((gen_guard_prev.sa_flags & SA_SIGINFO) != 0 && gen_guard_prev.sa_sigaction != NULL) {
		gen_guard_prev.sa_sigaction(sig, si, uc);
		return;
	}
	if (gen_guard_prev.sa_handler != SIG_DFL && gen_guard_prev.sa_handler != SIG_IGN) {
		gen_guard_prev.sa_handler(sig);
		return;
	}
	/* Not a generation's page: returning re-runs the faulting access,
	 * which now gets the default action. */
	signal(sig, SIG_DFL);
}

/* Installs the handler unless it is the one in place (checked at every
 * generation open: a program, or a test harness, may have set its own
 * since; that one is then what the handler passes other faults to). */
static void
gen_guard_install(void)
{
	struct sigaction sa, cur;

	pthread_mutex_lock(&gen_guard_mu);
	if (sigaction(SIGBUS, NULL, &cur) == 0 && (cur.sa_flags & SA_SIGINFO) != 0 &&
	    cur.sa_sigaction == gen_guard_handler) {
		pthread_mutex_unlock(&gen_guard_mu);
		return;
	}
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = gen_guard_handler;
	/* SA_NODEFER: the jump out of the handler leaves SIGBUS unblocked. */
	sa.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK;
	sigemptyset(&sa.sa_mask);
	(void)sigaction(SIGBUS, &sa, &gen_guard_prev);
	pthread_mutex_unlock(&gen_guard_mu);
}

void
gen_guard_arm(store_gen *g, sigjmp_buf *jb)
{
	gen_guard_lo = g->map_lo;
	gen_guard_hi = g->map_hi;
	gen_guard_jb = jb;
}

void
gen_guard_disarm(void)
{
	gen_guard_jb = NULL;
}

void
gen_session_discard(store_gen *g, gen_session *s)
{
	(void)g;
	if (s != NULL)
		mdb_txn_abort((MDB_txn *)s);
}

void
gen_fault_set(store_gen *g)
{
	atomic_store(&g->faulted, true);
}

vigil_err
gen_intact(store_gen *g, store_diag *reterr)
{
	struct stat st;
	int         fd;

	if (atomic_load(&g->faulted)) {
		GEN_DIAG(reterr, g->name, NULL, GEN_DATA_FILE " changed under the mapping: a read "
		    "faulted (SIGBUS)");
		return VIGIL_ECORRUPT;
	}
	if (mdb_env_get_fd(g->env, &fd) != 0 || fstat(fd, &st) != 0)
		return VIGIL_OK; /* cannot tell: the next read will */
	if ((uint64_t)st.st_size < g->need_bytes) {
		GEN_DIAG(reterr, g->name, NULL, GEN_DATA_FILE " was truncated while served: %llu "
		    "bytes, LMDB needs %llu", (unsigned long long)st.st_size,
		    (unsigned long long)g->need_bytes);
		return VIGIL_ECORRUPT;
	}
	if (st.st_size != g->st.st_size || st.st_mtim.tv_sec != g->st.st_mtim.tv_sec ||
	    st.st_mtim.tv_nsec != g->st.st_mtim.tv_nsec) {
		GEN_DIAG(reterr, g->name, NULL, GEN_DATA_FILE " was modified while served (%llu "
		    "bytes, verified at %llu)", (unsigned long long)st.st_size,
		    (unsigned long long)g->st.st_size);
		return VIGIL_ECORRUPT;
	}
	return VIGIL_OK;
}

vigil_err
store_gen_open(const char *datadir, uint64_t generation, store_gen **ret_g, store_diag *reterr)
{
	store_gen   *g = NULL;
	char         fdir[GEN_PATH_MAX], path[GEN_PATH_MAX];
	struct stat  st, vst = { 0 }, ost;
	MDB_txn     *txn = NULL;
	MDB_val      k = { .mv_size = sizeof GEN_META_KEY - 1, .mv_data = (void *)GEN_META_KEY };
	MDB_val      v;
	MDB_envinfo  info;
	MDB_stat     ms;
	meta_layouts lay;
	vigil_err    rv;
	int          rc, fd;

	g = calloc(1, sizeof *g);
	if (g == NULL)
		return VIGIL_ENOMEM;
	pthread_mutex_init(&g->pool_mu, NULL);
	gen_name(generation, g->name, sizeof g->name);
	if (gen_path_join(fdir, sizeof fdir, datadir, "features") != VIGIL_OK ||
	    gen_path_join(path, sizeof path, fdir, g->name) != VIGIL_OK) {
		rv = VIGIL_ETOOBIG;
		store_diag_set(reterr, "%s: path too long", datadir);
		goto out;
	}
	if (generation == 0 || stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
		rv = VIGIL_ENOTFOUND;
		GEN_DIAG(reterr, g->name, NULL, "no such generation (%s)", path);
		goto out;
	}
	/* Every byte LMDB could map is checked first: a damaged page is
	 * refused here, never dereferenced (a SIGBUS or garbage later). */
	rv = gen_verify(fdir, path, g->name, generation, &g->check, &vst, reterr);
	if (rv != VIGIL_OK)
		goto out;
	if ((rc = mdb_env_create(&g->env)) != 0 ||
	    (rc = mdb_env_set_maxdbs(g->env, GEN_NDBI)) != 0 ||
	    /* Map the file verified and no more: a page number past its end
	     * is then refused by LMDB (MDB_PAGE_NOTFOUND), not a fault. */
	    (rc = mdb_env_set_mapsize(g->env, (size_t)vst.st_size)) != 0 ||
	    /* Immutable once committed: no writer exists, so no lock table
	     * (MDB_NOLOCK); transactions are reset/renewed by any thread
	     * (MDB_NOTLS); lookups are random (MDB_NORDAHEAD). */
	    (rc = mdb_env_open(g->env, path,
	        MDB_RDONLY | MDB_NOLOCK | MDB_NOTLS | MDB_NORDAHEAD, 0644)) != 0) {
		rv = gen_open_err(rc);
		GEN_DIAG(reterr, g->name, NULL, "LMDB: %s", mdb_strerror(rc));
		goto out;
	}
	/* The file LMDB opened must be the one verified, and hold every page
	 * its meta page counts (a legacy generation was not verified). */
	if (mdb_env_get_fd(g->env, &fd) != 0 || fstat(fd, &ost) != 0 ||
	    ost.st_dev != vst.st_dev || ost.st_ino != vst.st_ino || ost.st_size != vst.st_size) {
		rv = VIGIL_ECORRUPT;
		GEN_DIAG(reterr, g->name, NULL, GEN_DATA_FILE " was replaced while it was "
		    "verified");
		goto out;
	}
	if (mdb_env_info(g->env, &info) != 0 || mdb_env_stat(g->env, &ms) != 0 ||
	    ((uint64_t)info.me_last_pgno + 1) * ms.ms_psize > (uint64_t)vst.st_size) {
		rv = VIGIL_ECORRUPT;
		GEN_DIAG(reterr, g->name, NULL, GEN_DATA_FILE " is truncated: %llu bytes, "
		    "its meta page counts %llu pages of %u", (unsigned long long)vst.st_size,
		    (unsigned long long)info.me_last_pgno + 1, ms.ms_psize);
		goto out;
	}
	rc = mdb_txn_begin(g->env, NULL, MDB_RDONLY, &txn);
	if (rc != 0) {
		rv = gen_open_err(rc);
		GEN_DIAG(reterr, g->name, NULL, "LMDB: %s", mdb_strerror(rc));
		goto out;
	}
	for (int i = 0; i < GEN_NDBI; i++) {
		rc = mdb_dbi_open(txn, gen_dbi_names[i], 0, &g->dbi[i]);
		if (rc != 0) {
			rv = gen_open_err(rc);
			GEN_DIAG(reterr, g->name, NULL, "table %s: %s", gen_dbi_names[i],
			    mdb_strerror(rc));
			goto out;
		}
	}
	rc = mdb_get(txn, g->dbi[DBI_META], &k, &v);
	if (rc != 0) {
		rv = gen_open_err(rc);
		GEN_DIAG(reterr, g->name, "meta", "table meta, key \"meta\": %s",
		    mdb_strerror(rc));
		goto out;
	}
	rv = gen_meta_decode(v.mv_data, v.mv_size, &g->meta, &lay);
	if (rv == VIGIL_EVERSION) {
		GEN_DIAG(reterr, g->name, NULL, "table meta: value layout version %u is not known "
		    "(this build reads version %u)", gen_val_version(v.mv_data, v.mv_size),
		    STORE_META_LAYOUT);
		goto out;
	}
	if (rv != VIGIL_OK) {
		GEN_DIAG(reterr, g->name, NULL, "table meta: malformed value (%zu bytes)",
		    v.mv_size);
		goto out;
	}
	if (lay.card < 1 || lay.card > STORE_CARD_LAYOUT || lay.entity < 1 ||
	    lay.entity > STORE_ENTITY_LAYOUT || lay.threshold != STORE_THRESHOLD_LAYOUT) {
		rv = VIGIL_EVERSION;
		GEN_DIAG(reterr, g->name, NULL, "value layouts card %u, entity %u, threshold %u "
		    "are not known (this build reads %u, %u, %u)", lay.card, lay.entity,
		    lay.threshold, STORE_CARD_LAYOUT, STORE_ENTITY_LAYOUT, STORE_THRESHOLD_LAYOUT);
		goto out;
	}
	if (g->meta.generation != generation) {
		rv = VIGIL_ECORRUPT;
		GEN_DIAG(reterr, g->name, NULL, "meta names generation %" PRIu64,
		    g->meta.generation);
		goto out;
	}
	if ((rv = gen_check_table(g, txn, DBI_CARD, STORE_CARD_LAYOUT, reterr)) != VIGIL_OK ||
	    (rv = gen_check_table(g, txn, DBI_MERCHANT, STORE_ENTITY_LAYOUT, reterr)) != VIGIL_OK ||
	    (rv = gen_check_table(g, txn, DBI_TERMINAL, STORE_ENTITY_LAYOUT, reterr)) != VIGIL_OK ||
	    (rv = gen_check_table(g, txn, DBI_THRESHOLD, STORE_THRESHOLD_LAYOUT, reterr)) != VIGIL_OK)
		goto out;
	/* Commit, not abort: the DBI handles stay open for the env's life. */
	rc = mdb_txn_commit(txn);
	txn = NULL;
	if (rc != 0) {
		rv = gen_open_err(rc);
		GEN_DIAG(reterr, g->name, NULL, "LMDB: %s", mdb_strerror(rc));
		goto out;
	}
	/* The map's address: LMDB does not say (me_mapaddr is only set with
	 * MDB_FIXEDMAP), but the meta value read above lies in it, and the
	 * map is me_mapsize bytes long. */
	g->map_lo = (uintptr_t)v.mv_data > info.me_mapsize ?
	    (uintptr_t)v.mv_data - info.me_mapsize : 0;
	g->map_hi = (uintptr_t)v.mv_data + info.me_mapsize;
	g->need_bytes = ((uint64_t)info.me_last_pgno + 1) * ms.ms_psize;
	g->st = ost;
	gen_guard_install();
	*ret_g = g;
	g = NULL;
	rv = VIGIL_OK;
out:
	if (txn != NULL)
		mdb_txn_abort(txn);
	store_gen_close(g);
	return rv;
}

vigil_err
store_gen_open_current(const char *datadir, store_gen **ret_g, store_diag *reterr)
{
	char      fdir[GEN_PATH_MAX];
	uint64_t  cur = 0;
	vigil_err rv;

	if (gen_path_join(fdir, sizeof fdir, datadir, "features") != VIGIL_OK) {
		store_diag_set(reterr, "%s: path too long", datadir);
		return VIGIL_ETOOBIG;
	}
	rv = gen_cur_read(fdir, &cur, reterr);
	if (rv != VIGIL_OK)
		return rv;
	if (cur == 0) {
		store_diag_set(reterr, "%s/CURRENT: no feature generation yet", fdir);
		return VIGIL_ENOTFOUND;
	}
	return store_gen_open(datadir, cur, ret_g, reterr);
}

void
store_gen_close(store_gen *g)
{
	if (g == NULL)
		return;
	for (int i = 0; i < g->npool; i++)
		mdb_txn_abort(g->pool[i]);
	if (g->env != NULL)
		mdb_env_close(g->env);
	pthread_mutex_destroy(&g->pool_mu);
	free(g);
}

vigil_err
store_gen_meta_get(store_gen *g, store_gen_meta *ret_meta)
{
	*ret_meta = g->meta;
	return VIGIL_OK;
}

void
store_gen_check_get(const store_gen *g, store_gen_check *ret_check)
{
	*ret_check = g->check;
}

#define GEN_LOOKUP(fn, type, sessfn)                                              \
	vigil_err                                                                 \
	fn(store_gen *g, const char *id, type *ret_p)                             \
	{                                                                         \
		gen_session *s = gen_session_begin(g);                            \
		vigil_err    rv;                                                  \
                                                                                  \
		if (s == NULL)                                                    \
			return VIGIL_EIO;                                         \
		rv = sessfn(g, s, id, ret_p);                                     \
		gen_session_end(g, s);                                            \
		return rv;                                                        \
	}

GEN_LOOKUP(store_gen_card, store_card_profile, gen_session_card)
GEN_LOOKUP(store_gen_merchant, store_entity_profile, gen_session_merchant)
GEN_LOOKUP(store_gen_terminal, store_entity_profile, gen_session_terminal)

/* Card lookups in ascending id order: one read transaction and one cursor,
 * so LMDB finds a key on the cursor's current leaf page without descending
 * from the root again. */
struct store_gen_cards {
	store_gen   *g;
	gen_session *s;
	MDB_cursor  *cur;
};

vigil_err
store_gen_cards_open(store_gen *g, store_gen_cards **ret_c)
{
	store_gen_cards *c = calloc(1, sizeof *c);
	int rc;

	*ret_c = NULL;
	if (c == NULL)
		return VIGIL_ENOMEM;
	c->g = g;
	c->s = gen_session_begin(g);
	if (c->s == NULL) {
		free(c);
		return VIGIL_EIO;
	}
	rc = mdb_cursor_open((MDB_txn *)c->s, g->dbi[DBI_CARD], &c->cur);
	if (rc != 0) {
		gen_session_end(g, c->s);
		free(c);
		return gen_err_from_mdb(rc);
	}
	*ret_c = c;
	return VIGIL_OK;
}

vigil_err
store_gen_cards_get(store_gen_cards *c, const char *card_id, store_card_profile *ret_p)
{
	size_t  len = strlen(card_id);
	MDB_val k = { .mv_size = len, .mv_data = (void *)card_id }, v;
	int     rc;

	if (len == 0 || len > VIGIL_ID_MAX)
		return VIGIL_ENOTFOUND;
	rc = mdb_cursor_get(c->cur, &k, &v, MDB_SET_KEY);
	if (rc != 0)
		return gen_err_from_mdb(rc);
	return gen_card_decode(v.mv_data, v.mv_size, ret_p);
}

void
store_gen_cards_close(store_gen_cards *c)
{
	if (c == NULL)
		return;
	mdb_cursor_close(c->cur);
	gen_session_end(c->g, c->s);
	free(c);
}

vigil_err
store_gen_threshold(store_gen *g, const char *name, const char *group, store_threshold_val *ret_v)
{
	char         key[2 * STORE_THRESHOLD_NAME_MAX + 1];
	size_t       klen;
	MDB_val      v;
	gen_session *s;
	vigil_err    rv;

	rv = gen_threshold_key(name, group, key, &klen);
	if (rv != VIGIL_OK)
		return rv == VIGIL_EINVAL ? VIGIL_ENOTFOUND : rv;
	s = gen_session_begin(g);
	if (s == NULL)
		return VIGIL_EIO;
	rv = session_get(g, s, DBI_THRESHOLD, key, klen, &v);
	if (rv == VIGIL_OK)
		rv = gen_threshold_decode(v.mv_data, v.mv_size, ret_v);
	gen_session_end(g, s);
	return rv;
}

vigil_err
store_gen_blob(store_gen *g, const char *name, void **ret_data, size_t *ret_len)
{
	char         key[sizeof GEN_BLOB_PREFIX + STORE_BLOB_NAME_MAX];
	size_t       klen;
	MDB_val      k, v;
	gen_session *s;
	void        *copy;
	vigil_err    rv;
	int          rc;

	rv = gen_blob_key(name, key, sizeof key, &klen);
	if (rv != VIGIL_OK)
		return VIGIL_ENOTFOUND;
	s = gen_session_begin(g);
	if (s == NULL)
		return VIGIL_EIO;
	k.mv_size = klen;
	k.mv_data = key;
	rc = mdb_get((MDB_txn *)s, g->dbi[DBI_META], &k, &v);
	rv = gen_err_from_mdb(rc);
	if (rv != VIGIL_OK)
		goto out;
	if (v.mv_size > STORE_BLOB_MAX_BYTES) {
		rv = VIGIL_ECORRUPT;
		goto out;
	}
	/* copied out before the read transaction ends (LMDB's rule) */
	copy = malloc(v.mv_size > 0 ? v.mv_size : 1);
	if (copy == NULL) {
		rv = VIGIL_ENOMEM;
		goto out;
	}
	memcpy(copy, v.mv_data, v.mv_size);
	*ret_data = copy;
	*ret_len = v.mv_size;
out:
	gen_session_end(g, s);
	return rv;
}

vigil_err
store_gen_thresholds_each(store_gen *g,
    void (*fn)(void *arg, const char *name, const char *group, const store_threshold_val *v),
    void *arg)
{
	gen_session        *s;
	MDB_cursor         *cur = NULL;
	MDB_val             k, v;
	char                name[STORE_THRESHOLD_NAME_MAX + 1], group[STORE_THRESHOLD_NAME_MAX + 1];
	store_threshold_val tv;
	vigil_err           rv = VIGIL_OK;
	int                 rc;

	s = gen_session_begin(g);
	if (s == NULL)
		return VIGIL_EIO;
	rc = mdb_cursor_open((MDB_txn *)s, g->dbi[DBI_THRESHOLD], &cur);
	if (rc != 0) {
		rv = gen_err_from_mdb(rc);
		goto out;
	}
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		const char *kp = k.mv_data, *nul = memchr(kp, '\0', k.mv_size);
		size_t      nl, gl;

		if (nul == NULL)
			continue; /* not a threshold key; skip rather than fail serving */
		nl = (size_t)(nul - kp);
		gl = k.mv_size - nl - 1;
		if (nl == 0 || nl > STORE_THRESHOLD_NAME_MAX || gl > STORE_THRESHOLD_NAME_MAX)
			continue;
		memcpy(name, kp, nl);
		name[nl] = '\0';
		memcpy(group, nul + 1, gl);
		group[gl] = '\0';
		rv = gen_threshold_decode(v.mv_data, v.mv_size, &tv);
		if (rv != VIGIL_OK)
			goto out;
		fn(arg, name, group, &tv);
	}
	if (rc != MDB_NOTFOUND)
		rv = gen_err_from_mdb(rc);
out:
	if (cur != NULL)
		mdb_cursor_close(cur);
	gen_session_end(g, s);
	return rv;
}

vigil_err
gen_open_newest_below(const char *datadir, uint64_t below, store_gen **ret_g,
    uint32_t *ret_refused)
{
	char      fdir[GEN_PATH_MAX];
	uint64_t *gens = NULL;
	size_t    n = 0;
	uint32_t  refused = 0;
	vigil_err rv;

	if (gen_path_join(fdir, sizeof fdir, datadir, "features") != VIGIL_OK)
		return VIGIL_ETOOBIG;
	rv = gen_list(fdir, false, &gens, &n);
	if (rv != VIGIL_OK)
		goto out;
	rv = VIGIL_ENOTFOUND;
	for (size_t i = 0; i < n; i++) { /* newest first */
		vigil_err r;

		if (gens[i] >= below)
			continue;
		r = store_gen_open(datadir, gens[i], ret_g, NULL);
		if (r == VIGIL_OK) {
			rv = VIGIL_OK;
			break;
		}
		if (r == VIGIL_ENOMEM) {
			rv = r;
			break;
		}
		refused++;
	}
out:
	free(gens);
	*ret_refused = refused;
	return rv;
}

/* Folds one path's stat (or its absence) into a fingerprint. */
static uint64_t
gen_sig_add(uint64_t h, const char *path)
{
	struct stat st;
	int64_t     v[6] = { -1, 0, 0, 0, 0, 0 };

	if (stat(path, &st) == 0) {
		v[0] = (int64_t)st.st_dev;
		v[1] = (int64_t)st.st_ino;
		v[2] = (int64_t)st.st_size;
		v[3] = (int64_t)st.st_mtim.tv_sec;
		v[4] = (int64_t)st.st_mtim.tv_nsec;
		v[5] = (int64_t)st.st_ctim.tv_nsec ^ (int64_t)st.st_ctim.tv_sec;
	}
	return XXH64(v, sizeof v, h);
}

uint64_t
gen_files_sig(const char *datadir, uint64_t generation)
{
	char     name[32], p[GEN_PATH_MAX];
	uint64_t h = generation;

	gen_name(generation, name, sizeof name);
	if (snprintf(p, sizeof p, "%s/features/%s", datadir, name) < (int)sizeof p)
		h = gen_sig_add(h, p);
	if (snprintf(p, sizeof p, "%s/features/%s/" GEN_DATA_FILE, datadir, name) < (int)sizeof p)
		h = gen_sig_add(h, p);
	if (snprintf(p, sizeof p, "%s/features/%s/" GEN_CHECKSUM_FILE, datadir, name) <
	    (int)sizeof p)
		h = gen_sig_add(h, p);
	if (snprintf(p, sizeof p, "%s/features/" GEN_CHECKSUMS_FROM, datadir) < (int)sizeof p)
		h = gen_sig_add(h, p);
	return h;
}

vigil_err
store_gen_set_current(const char *datadir, uint64_t generation, store_diag *reterr)
{
	char       fdir[GEN_PATH_MAX];
	store_gen *g = NULL;
	uint64_t   cur = 0;
	int        lockfd = -1;
	vigil_err  rv;

	if (gen_path_join(fdir, sizeof fdir, datadir, "features") != VIGIL_OK) {
		store_diag_set(reterr, "%s: path too long", datadir);
		return VIGIL_ETOOBIG;
	}
	rv = gen_lock_take(fdir, &lockfd, reterr);
	if (rv != VIGIL_OK)
		goto out;
	/* PENDING settled against the CURRENT it was written beside, as the
	 * next rebuild would: left, that rebuild would remove the generation
	 * rolled back from, and a roll-forward could serve a night whose
	 * commit died. A CURRENT that does not read is what this repairs:
	 * PENDING is then left to the rule of the next rebuild. */
	if (gen_cur_read(fdir, &cur, NULL) == VIGIL_OK)
		gen_pending_settle(fdir, cur);
	/* Only a generation this build can read may become current. */
	rv = store_gen_open(datadir, generation, &g, reterr);
	if (rv != VIGIL_OK)
		goto out;
	rv = gen_cur_write(fdir, generation, reterr);
out:
	store_gen_close(g);
	if (lockfd >= 0)
		close(lockfd);
	return rv;
}
