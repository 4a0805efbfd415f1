/* SPDX-License-Identifier: MIT */
/*
 * features/db/db.c - store_db, the serving object: the archive (written here, as
 * the write-ahead log of the live state), the current feature generation
 * and the live state, joined into one feature vector per transaction.
 *
 * Design (docs/storage.md, "Live state"): the hot state is in memory only;
 * every scored transaction is in the archive before it is applied, so on
 * open the live state is rebuilt by replaying the archive's last
 * max(14 days, dedupe horizon) of event time (found from the segment
 * indexes), and after any crash it equals
 * a recomputation from the archive. Commit order: card stripe lock (taken
 * in begin) > watermark lock [archive enqueue (sequence number), admit] >
 * archive flush (group write) > apply > unlock > durability wait, so the
 * archive's sequence order is the order in which lateness was decided and
 * a replay decides the same.
 *
 * Generations are switched by pointer under a small mutex plus an epoch
 * counter: a context re-reads the pointer only when the epoch moved (one
 * atomic load per lookup otherwise), and holds a reference on the
 * generation it uses, so an in-flight lookup keeps its generation open
 * until it is done and never fails because of a switch.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <xxhash.h>

#include "gendir.h"
#include "genread.h"
#include "live.h"
#include "slots.h"
#include "db.h"
#include "mask.h"
#include "db_int.h"
#include "vec.h"

#define DB_BUF_INITIAL    (64u << 10)
#define DB_EPOCH_NONE     UINT64_MAX
#define DB_TIME_FLOOR_MS  946684800000LL /* 2000-01-01: no event is older */
/* Stripes of each live table swept per store_db_maintain: every 10 s, a
 * full pass over 4096 stripes takes about 10 minutes. */
#define DB_MAINTAIN_SWEEP_STEPS 64

/* A counted reference on one installed generation (store_db_gen in db.h). */



void
store_db_opts_default(store_db_opts *ret_opts)
{
	memset(ret_opts, 0, sizeof *ret_opts);
	store_archive_opts_default(&ret_opts->archive);
	ret_opts->dedupe_horizon_s = 8 * 86400;
	ret_opts->max_cards = 10000000;
	ret_opts->read_only = false;
}


/* ---------------------------------------------------------------------- */
/* Generation references. */

static db_genref *
genref_new(store_gen *g, bool owned)
{
	db_genref *r = calloc(1, sizeof *r);

	if (r == NULL)
		return NULL;
	r->gen = g;
	r->owned = owned;
	atomic_init(&r->refs, 1);
	return r;
}

static void
genref_release(db_genref *r)
{
	if (r == NULL)
		return;
	if (atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) == 1) {
		if (r->owned)
			store_gen_close(r->gen);
		free(r);
	}
}

/* A new reference on the current generation (NULL if none). */
static db_genref *
db_gen_acquire(store_db *db, uint64_t *ret_epoch)
{
	db_genref *r;

	pthread_mutex_lock(&db->gen_mu);
	r = db->gen;
	if (r != NULL)
		atomic_fetch_add_explicit(&r->refs, 1, memory_order_relaxed);
	if (ret_epoch != NULL)
		*ret_epoch = atomic_load_explicit(&db->gen_epoch, memory_order_relaxed);
	pthread_mutex_unlock(&db->gen_mu);
	return r;
}

/* Makes r current (taking over its reference); the old one is released
 * when its last user lets go. */
static void
db_gen_install(store_db *db, db_genref *r)
{
	db_genref *old;

	pthread_mutex_lock(&db->gen_mu);
	old = db->gen;
	db->gen = r;
	if (r != NULL)
		r->epoch = atomic_load_explicit(&db->gen_epoch, memory_order_relaxed) + 1;
	atomic_fetch_add_explicit(&db->gen_epoch, 1, memory_order_release);
	pthread_mutex_unlock(&db->gen_mu);
	genref_release(old);
}

/* Records that generation n (0: CURRENT itself) was refused for why;
 * sig is gen_files_sig(n) taken before the attempt. */
static void
db_gen_refuse(store_db *db, uint64_t n, const char *why, vigil_err rv, uint64_t sig)
{
	pthread_mutex_lock(&db->gen_mu);
	db->gen_refused = true;
	db->gen_refused_n = n;
	snprintf(db->gen_error, sizeof db->gen_error, "%s", why[0] ? why : vigil_strerror(rv));
	db->gen_refusals++;
	pthread_mutex_unlock(&db->gen_mu);
	db->refused_sig = sig;
	db->refused_retry = rv == VIGIL_ENOMEM || rv == VIGIL_ELIMIT;
}

static void
db_gen_refused_clear(store_db *db)
{
	pthread_mutex_lock(&db->gen_mu);
	db->gen_refused = false;
	db->gen_refused_n = 0;
	db->gen_error[0] = '\0';
	pthread_mutex_unlock(&db->gen_mu);
	db->refused_retry = false;
}

/*
 * Start-up: the generation CURRENT names or, if it is refused (missing,
 * damaged, unreadable), the newest older one that opens, or none (a cold
 * start: rules use their fallbacks); a refusal is kept for
 * store_db_get_health. Fails only for lack of memory.
 */
static vigil_err
db_gen_start(store_db *db)
{
	store_gen *g = NULL;
	db_genref *r;
	store_diag d = { .msg = "" };
	uint64_t   n = 0, sig = 0;
	uint32_t   also = 0;
	vigil_err  rv;

	rv = gen_current_read(db->datadir, &n, &d);
	if (rv == VIGIL_OK && n == 0)
		return VIGIL_OK; /* no generation yet */
	if (rv == VIGIL_OK) {
		sig = gen_files_sig(db->datadir, n);
		rv = store_gen_open(db->datadir, n, &g, &d);
	}
	if (rv == VIGIL_ENOMEM)
		return rv;
	if (rv != VIGIL_OK) {
		db_gen_refuse(db, n, d.msg, rv, sig);
		rv = gen_open_newest_below(db->datadir, n != 0 ? n : UINT64_MAX, &g, &also);
		if (rv == VIGIL_ENOMEM)
			return rv;
		if (rv != VIGIL_OK)
			return VIGIL_OK; /* none opens: serve none, and say so */
	}
	r = genref_new(g, true);
	if (r == NULL) {
		store_gen_close(g);
		return VIGIL_ENOMEM;
	}
	db_gen_install(db, r);
	return VIGIL_OK;
}

store_db_gen *
store_db_gen_acquire(store_db *db)
{
	return db_gen_acquire(db, NULL);
}

void
store_db_gen_release(store_db_gen *g)
{
	genref_release(g);
}

store_gen *
store_db_gen_get(const store_db_gen *g)
{
	return g != NULL ? g->gen : NULL;
}

uint64_t
store_db_gen_number(const store_db_gen *g)
{
	return g != NULL ? gen_number(g->gen) : 0;
}

void
store_ctx_pin_gen(store_ctx *ctx, store_db_gen *g)
{
	db_genref *old;

	if (ctx->pinned && ctx->gen == g)
		return; /* the common case: one pointer compare per request */
	if (g != NULL)
		atomic_fetch_add_explicit(&g->refs, 1, memory_order_relaxed);
	old = ctx->gen;
	ctx->gen = g;
	ctx->epoch = g != NULL ? g->epoch : DB_EPOCH_NONE;
	ctx->pinned = true;
	genref_release(old);
}

/* The context's generation: the pinned one, or the db's current,
 * refreshed if the epoch moved. */
static store_gen *
ctx_gen(store_ctx *ctx)
{
	store_db *db = ctx->db;
	uint64_t  e;

	if (ctx->pinned)
		return ctx->gen != NULL ? ctx->gen->gen : NULL;
	e = atomic_load_explicit(&db->gen_epoch, memory_order_acquire);

	if (e != ctx->epoch) {
		db_genref *old = ctx->gen;

		ctx->gen = db_gen_acquire(db, &ctx->epoch);
		genref_release(old);
	}
	return ctx->gen != NULL ? ctx->gen->gen : NULL;
}


/* The feature vector's transaction fields and batch profiles (fill.c),
 * from the context's generation when a profile is needed. */
static vigil_err
db_fill(store_ctx *ctx, vigil_value *f, uint32_t n)
{
	return fill_txn_batch(ctx, FILL_READS_BATCH(ctx) ? ctx_gen(ctx) : NULL, f, n);
}

/* A NUL in the field's size bytes. A field whose last byte is NUL (zero
 * filled after the string, as decoders and the CSV reader leave it) needs
 * no scan. */
#define FIELD_TERMINATED(a) ((a)[sizeof(a) - 1] == '\0' || memchr((a), '\0', sizeof(a)) != NULL)

/* The ids the store hashes and keys on must be terminated and non-empty. */
static bool
txn_ids_ok(const vigil_txn *txn)
{
	return txn->txn_id[0] != '\0' && txn->card_id[0] != '\0' && txn->merchant_id[0] != '\0' &&
	    FIELD_TERMINATED(txn->txn_id) && FIELD_TERMINATED(txn->card_id) &&
	    FIELD_TERMINATED(txn->merchant_id) && FIELD_TERMINATED(txn->terminal_id) &&
	    FIELD_TERMINATED(txn->device_id) && FIELD_TERMINATED(txn->ip) &&
	    FIELD_TERMINATED(txn->currency) && FIELD_TERMINATED(txn->country);
}

/* ---------------------------------------------------------------------- */
/* Recovery: replay the archive's tail into a fresh live state. */

typedef struct replay_ctx {
	store_scored *rec;
	int64_t       max_t;
	uint64_t      records;
	uint64_t      last_seq;               /* the archive's, for opts.replay_tick */
	uint64_t      corrupt, corrupt_bytes; /* skipped by the reader, this pass */
	uint64_t      lost;                   /* records known lost (damaged zstd frames) */
	char          first_corrupt[200];
} replay_ctx;

/* The reader skips a corrupt stretch and goes on (archive.md); recovery
 * counts them so store_db_open can say so. */
static void
replay_on_corrupt(void *arg, const char *segment, uint64_t offset, uint64_t skipped_bytes,
    const char *what)
{
	replay_ctx *rc = arg;

	if (rc->corrupt++ == 0)
		snprintf(rc->first_corrupt, sizeof rc->first_corrupt, "archive/%s:%" PRIu64 ": %s",
		    segment, offset, what);
	rc->corrupt_bytes += skipped_bytes;
}

static vigil_err
db_replay_pass(store_db *db, int64_t from, replay_ctx *rc, store_diag *reterr)
{
	char          dir[DB_PATH_MAX];
	store_reader *rd = NULL;
	store_record  r;
	live_keys     k;
	vigil_err     rv;

	if (snprintf(dir, sizeof dir, "%.4000s/archive", db->datadir) >= (int)sizeof dir) {
		rv = VIGIL_ETOOBIG;
		goto out;
	}
	rv = store_reader_open(dir, from, INT64_MAX, replay_on_corrupt, rc, &rd, reterr);
	if (rv != VIGIL_OK)
		goto out;
	for (;;) {
		rv = store_reader_next(rd, &r, reterr);
		if (rv == VIGIL_ENOTFOUND) {
			rv = VIGIL_OK;
			break;
		}
		if (rv != VIGIL_OK)
			goto out;
		if (r.type != STORE_REC_SCORE)
			continue;
		rv = store_scored_decode(r.payload, r.len, rc->rec, reterr);
		if (rv != VIGIL_OK) {
			char why[sizeof reterr->msg], seg[sizeof reterr->info.file];

			snprintf(why, sizeof why, "%s", reterr ? reterr->msg : "");
			snprintf(seg, sizeof seg, "archive/%s", r.segment);
			store_diag_at(reterr, seg, r.offset, NULL,
			    "scored record does not decode: %s",
			    why);
			goto out;
		}
		live_keys_compute(&k, &rc->rec->txn);
		vel_prefetch(db->lv, &k);
		rv = live_replay(db->lv, rc->rec, &k);
		if (rv != VIGIL_OK) {
			char seg[sizeof reterr->info.file];

			snprintf(seg, sizeof seg, "archive/%s", r.segment);
			store_diag_at(reterr, seg, r.offset, NULL, "replaying into live state: %s",
			    vigil_strerror(rv));
			goto out;
		}
		if (rc->rec->txn.event_time_ms > rc->max_t)
			rc->max_t = rc->rec->txn.event_time_ms;
		rc->records++;
		if (db->opts.replay_tick != NULL &&
		    !db->opts.replay_tick(db->opts.replay_arg, r.seq, rc->last_seq)) {
			store_diag_set(reterr, "replay stopped at archive record %" PRIu64 " of %"
			    PRIu64, r.seq, rc->last_seq);
			rv = VIGIL_ECLOSED;
			goto out;
		}
	}
out:
	if (rd != NULL) {
		store_reader_stats st;

		store_reader_get_stats(rd, &st);
		rc->lost += st.lost_records;
	}
	store_reader_close(rd);
	return rv;
}

static vigil_err
db_live_fresh(store_db *db)
{
	live_opts lo = {
		.dedupe_horizon_ms = (int64_t)db->opts.dedupe_horizon_s * 1000,
		.max_cards = db->opts.max_cards,
		.skip_kinds = LIVE_KIND_ALL & ~vel_plan_kinds(db->plan),
	};

	live_free(db->lv);
	db->lv = NULL;
	return live_new(&lo, &db->lv);
}

/* t - d, clamped at INT64_MIN (d >= 0). */
static int64_t
db_time_minus(int64_t t, int64_t d)
{
	return t < INT64_MIN + d ? INT64_MIN : t - d;
}

/*
 * The live state depends only on scored records with event time > E - R,
 * where E is the largest event time of a scored record and R =
 * max(LIVE_RETAIN_MS, dedupe horizon) (live.h). The archive's segment
 * indexes give E' >= E, the largest event time of any record (labels
 * included), without reading it: read from E' - R, which is one pass unless
 * labels are newer than every scored record. If that pass found scored
 * records but started after E - R, the largest time found is E itself
 * (everything unread is older), so one more pass from E - R is exact; if it
 * found none, look back four times further each pass.
 * *ret_note (may be NULL) gets a line if the reader skipped corrupt records.
 */
static vigil_err
db_recover(store_db *db, uint64_t last_seq, store_diag *reterr, char *ret_note, size_t notelen)
{
	int64_t    R = (int64_t)db->opts.dedupe_horizon_s * 1000;
	int64_t    base = store_archive_max_event_ms(db->ar), span, from;
	replay_ctx rc = { .last_seq = last_seq };
	vigil_err  rv;

	if (R < LIVE_RETAIN_MS)
		R = LIVE_RETAIN_MS;
	rv = db_live_fresh(db);
	if (rv != VIGIL_OK || base == INT64_MIN)
		return rv; /* an empty archive: nothing to replay */
	span = R;
	from = db_time_minus(base, span);
	rc.rec = malloc(sizeof *rc.rec);
	if (rc.rec == NULL)
		return VIGIL_ENOMEM;
	for (;;) {
		rc.max_t = INT64_MIN;
		rc.records = 0;
		rc.corrupt = rc.corrupt_bytes = rc.lost = 0;
		rv = db_live_fresh(db);
		if (rv != VIGIL_OK)
			goto out;
		rv = db_replay_pass(db, from, &rc, reterr);
		if (rv != VIGIL_OK)
			goto out;
		if (rc.max_t != INT64_MIN) {
			if (from == INT64_MIN || db_time_minus(rc.max_t, R) >= from)
				break;
			from = db_time_minus(rc.max_t, R);
			continue;
		}
		if (from == INT64_MIN)
			break; /* no scored record at all */
		span = span > INT64_MAX / 4 ? INT64_MAX : span * 4;
		from = db_time_minus(base, span);
		if (from < DB_TIME_FLOOR_MS)
			from = INT64_MIN;
	}
	db->recov_corrupt = rc.corrupt;
	db->recov_corrupt_bytes = rc.corrupt_bytes;
	db->recov_lost = rc.lost;
	snprintf(db->recov_first, sizeof db->recov_first, "%s", rc.corrupt > 0 ? rc.first_corrupt : "");
	if (ret_note != NULL && rc.corrupt > 0) {
		char lost[64] = "";

		if (rc.lost > 0)
			snprintf(lost, sizeof lost, ", %" PRIu64 " record(s) lost", rc.lost);
		snprintf(ret_note, notelen, "live-state recovery skipped %" PRIu64 " corrupt "
		    "stretch(es) of the archive, %" PRIu64 " bytes%s; first: %s", rc.corrupt,
		    rc.corrupt_bytes, lost, rc.first_corrupt);
	}
	rv = VIGIL_OK;
out:
	free(rc.rec);
	return rv;
}

/* ---------------------------------------------------------------------- */
/* Open / close. */

static vigil_err
db_alloc(const store_db_opts *opts, const store_feature_mask *features, store_db **ret_db)
{
	store_db *db = calloc(1, sizeof *db);

	if (db == NULL)
		return VIGIL_ENOMEM;
	if (opts != NULL)
		db->opts = *opts;
	else
		store_db_opts_default(&db->opts);
	{
		store_feature_mask all;

		store_feature_mask_all(&all);
		db->features = features != NULL ? *features : all;
		db->plan = fill_mask_subset(&all, &db->features) ? VEL_F_ALL
		    : vel_plan(&db->features);
	}
	pthread_mutex_init(&db->gen_mu, NULL);
	pthread_mutex_init(&db->refresh_mu, NULL);
	atomic_init(&db->gen_epoch, 0);
	*ret_db = db;
	return VIGIL_OK;
}

static vigil_err
db_check_opts(const store_db_opts *o, store_diag *reterr)
{
	if ((int64_t)o->dedupe_horizon_s * 1000 < LIVE_WINDOW_MAX_MS) {
		store_diag_set(reterr, "dedupe_horizon_s: %" PRIu32 " is below the largest window "
		    "(604800 s)", o->dedupe_horizon_s);
		return VIGIL_EINVAL;
	}
	if (o->max_cards == 0) {
		store_diag_set(reterr, "max_cards: must be at least 1");
		return VIGIL_EINVAL;
	}
	return VIGIL_OK;
}

vigil_err
store_db_open(const char *datadir, const store_db_opts *opts, store_db **ret_db,
    store_recovery *ret_recovery, store_diag *reterr)
{
	store_db      *db = NULL;
	char           dir[DB_PATH_MAX];
	store_recovery rec;
	char           note[sizeof reterr->msg] = "";
	vigil_err      rv;

	memset(&rec, 0, sizeof rec);
	rv = db_alloc(opts, NULL, &db);
	if (rv != VIGIL_OK)
		return rv;
	rv = db_check_opts(&db->opts, reterr);
	if (rv != VIGIL_OK)
		goto out;
	if (snprintf(db->datadir, sizeof db->datadir, "%s", datadir) >= (int)sizeof db->datadir ||
	    snprintf(dir, sizeof dir, "%s/archive", datadir) >= (int)sizeof dir) {
		rv = VIGIL_ETOOBIG;
		store_diag_set(reterr, "%s: path too long", datadir);
		goto out;
	}
	if (!db->opts.read_only) {
		if (mkdir(datadir, 0750) != 0 && errno != EEXIST) {
			rv = vigil_err_from_errno(errno);
			store_diag_set(reterr, "%s: mkdir: %s", datadir, strerror(errno));
			goto out;
		}
		rv = store_archive_open(dir, &db->opts.archive, &db->ar, &rec, reterr);
		if (rv != VIGIL_OK)
			goto out;
	}
	{
		char        cpath[DB_PATH_MAX];
		struct stat st;

		/* Before reading it: a CURRENT replaced meanwhile is read again
		 * by the first refresh. */
		if (gen_current_path(datadir, cpath, sizeof cpath) == VIGIL_OK &&
		    stat(cpath, &st) == 0) {
			db->cur_st = st;
			db->cur_st_valid = true;
		}
	}
	rv = db_gen_start(db);
	if (rv != VIGIL_OK) {
		store_diag_set(reterr, "%s/features: %s", datadir, vigil_strerror(rv));
		goto out;
	}
	if (!db->opts.read_only) {
		rv = db_recover(db, rec.last_seq, reterr, note, sizeof note);
		if (rv != VIGIL_OK)
			goto out;
	}
	if (ret_recovery != NULL)
		*ret_recovery = rec;
	if (reterr != NULL && note[0] != '\0')
		store_diag_set(reterr, "%s", note);
	else if (reterr != NULL)
		reterr->msg[0] = '\0';
	*ret_db = db;
	db = NULL;
	rv = VIGIL_OK;
out:
	store_db_close(db);
	return rv;
}

vigil_err
store_db_new_memory(const store_db_opts *opts, store_db **ret_db)
{
	return store_db_new_memory_masked(opts, NULL, ret_db);
}

vigil_err
store_db_new_memory_masked(const store_db_opts *opts, const store_feature_mask *features,
    store_db **ret_db)
{
	store_db *db = NULL;
	vigil_err rv;

	rv = db_alloc(opts, features, &db);
	if (rv != VIGIL_OK)
		return rv;
	db->memory = true;
	rv = db_check_opts(&db->opts, NULL);
	if (rv == VIGIL_OK && !db->opts.read_only)
		rv = db_live_fresh(db);
	if (rv != VIGIL_OK) {
		store_db_close(db);
		return rv;
	}
	*ret_db = db;
	return VIGIL_OK;
}

void
store_db_set_gen(store_db *db, store_gen *gen)
{
	db_genref *r = NULL;

	if (gen != NULL) {
		r = genref_new(gen, false);
		if (r == NULL)
			return; /* ENOMEM: keep the previous one */
	}
	db_gen_install(db, r);
}

static void
db_close(store_db *db, bool free_live)
{
	if (db == NULL)
		return;
	store_archive_close(db->ar);
	if (free_live)
		live_free(db->lv);
	genref_release(db->gen);
	pthread_mutex_destroy(&db->gen_mu);
	pthread_mutex_destroy(&db->refresh_mu);
	free(db);
}

void
store_db_close(store_db *db)
{
	db_close(db, true);
}

void
store_db_close_exiting(store_db *db)
{
	db_close(db, false);
}

void
store_db_abandon(store_db *db)
{
	if (db == NULL)
		return;
	store_archive_close(db->ar); /* store_db_refresh never touches the archive */
	db->ar = NULL;
}

/* ---------------------------------------------------------------------- */
/* Generations. */

/*
 * The served generation's data.mdb changed under its mapping (a read
 * faulted, or an fstat shows it shorter than LMDB needs or modified since
 * verified): it is refused as a damaged one is at a switch, and the newest
 * older generation that verifies is served instead, or none (start-up's
 * fall-back). *ret_changed is set when the served generation changed.
 * VIGIL_ECORRUPT with *reterr (once, when it is found); VIGIL_ENOMEM.
 * Under refresh_mu.
 */
static vigil_err
db_gen_check_served(store_db *db, bool *ret_changed, store_diag *reterr)
{
	db_genref *cur = db_gen_acquire(db, NULL), *r = NULL;
	store_gen *g = NULL;
	uint64_t   n;
	uint32_t   also = 0;
	vigil_err  rv = VIGIL_OK;

	if (cur == NULL || !cur->owned || gen_intact(cur->gen, reterr) == VIGIL_OK)
		goto out;
	n = gen_number(cur->gen);
	db_gen_refuse(db, n, reterr->msg, VIGIL_ECORRUPT, gen_files_sig(db->datadir, n));
	rv = gen_open_newest_below(db->datadir, n, &g, &also);
	if (rv == VIGIL_ENOMEM)
		goto out;
	if (rv == VIGIL_OK && (r = genref_new(g, true)) == NULL) {
		store_gen_close(g);
		rv = VIGIL_ENOMEM;
		goto out;
	}
	/* CURRENT still names n: not opened again until its files change
	 * (refused_sig) or CURRENT does. */
	db_gen_install(db, r);
	*ret_changed = true;
	rv = VIGIL_ECORRUPT;
out:
	genref_release(cur);
	return rv;
}

vigil_err
store_db_refresh(store_db *db, bool *ret_changed, store_diag *reterr)
{
	char        cpath[DB_PATH_MAX];
	struct stat st;
	uint64_t    n = 0, have, sig;
	store_gen  *g = NULL;
	db_genref  *r;
	store_diag  d = { .msg = "" };
	vigil_err   rv = VIGIL_OK;
	bool        changed = false, same;

	if (db->memory)
		goto done;
	pthread_mutex_lock(&db->refresh_mu);
	rv = db_gen_check_served(db, &changed, &d);
	if (rv != VIGIL_OK)
		goto out;
	if (gen_current_path(db->datadir, cpath, sizeof cpath) != VIGIL_OK ||
	    stat(cpath, &st) != 0)
		goto out; /* no CURRENT yet: nothing to switch to */
	same = db->cur_st_valid && st.st_ino == db->cur_st.st_ino &&
	    st.st_mtim.tv_sec == db->cur_st.st_mtim.tv_sec &&
	    st.st_mtim.tv_nsec == db->cur_st.st_mtim.tv_nsec && st.st_size == db->cur_st.st_size;
	/* CURRENT unchanged: nothing to do, unless the generation it names
	 * was refused and its files changed since (or the refusal was for
	 * lack of memory or descriptors). A refused generation is not read
	 * again every tick: verifying it reads it whole. */
	if (same && (!db->gen_refused || db->gen_refused_n == 0 ||
	    (!db->refused_retry && gen_files_sig(db->datadir, db->gen_refused_n) == db->refused_sig)))
		goto out;
	db->cur_st = st;
	db->cur_st_valid = true;
	rv = gen_current_read(db->datadir, &n, &d);
	if (rv != VIGIL_OK) {
		db_gen_refuse(db, 0, d.msg, rv, 0);
		goto out; /* tried again once CURRENT changes */
	}
	have = store_db_generation(db);
	if (n == 0 || n == have) {
		db_gen_refused_clear(db);
		goto out;
	}
	sig = gen_files_sig(db->datadir, n);
	rv = store_gen_open(db->datadir, n, &g, &d);
	if (rv != VIGIL_OK) {
		/* Keep serving the one we have. */
		db_gen_refuse(db, n, d.msg, rv, sig);
		goto out;
	}
	r = genref_new(g, true);
	if (r == NULL) {
		rv = VIGIL_ENOMEM;
		store_diag_set(&d, "features/gen-%06" PRIu64 ": out of memory", n);
		db_gen_refuse(db, n, d.msg, rv, sig); /* retried next time */
		goto out;
	}
	g = NULL;
	db_gen_install(db, r);
	db_gen_refused_clear(db);
	changed = true;
out:
	pthread_mutex_unlock(&db->refresh_mu);
	store_gen_close(g);
	if (rv != VIGIL_OK && reterr != NULL)
		*reterr = d;
done:
	if (ret_changed != NULL)
		*ret_changed = changed;
	return rv;
}

/* Maintenance runs beside scoring: the archive's own pass takes its append
 * lock only to close a finished day's segment; compression and retention
 * work on closed segments outside it. The live state is swept a few stripes
 * per call (commits also sweep, one stripe per 512), so an idle server
 * still returns memory, and no call holds a stripe lock for long. */
vigil_err
store_db_maintain(store_db *db, store_diag *reterr)
{
	vigil_err rv;

	if (reterr != NULL)
		reterr->msg[0] = '\0';
	if (db->memory || db->ar == NULL || db->lv == NULL)
		return VIGIL_OK;
	rv = store_archive_maintain(db->ar, reterr);
	live_sweep_steps(db->lv, DB_MAINTAIN_SWEEP_STEPS);
	return rv;
}

vigil_err
store_db_rotate(store_db *db, store_diag *reterr)
{
	if (reterr != NULL)
		reterr->msg[0] = '\0';
	if (db->memory || db->ar == NULL)
		return VIGIL_OK;
	return store_archive_rotate(db->ar, reterr);
}

uint64_t
store_db_generation(store_db *db)
{
	db_genref *r = db_gen_acquire(db, NULL);
	uint64_t   n = r != NULL ? gen_number(r->gen) : 0;

	genref_release(r);
	return n;
}

int64_t
store_db_generation_as_of(store_db *db)
{
	db_genref *r = db_gen_acquire(db, NULL);
	int64_t    t = r != NULL ? gen_as_of(r->gen) : 0;

	genref_release(r);
	return t;
}

vigil_err
store_db_blob(store_db *db, const char *name, void **ret_data, size_t *ret_len,
    uint64_t *ret_generation)
{
	db_genref *r = db_gen_acquire(db, NULL);
	vigil_err  rv = VIGIL_ENOTFOUND;

	if (r != NULL) {
		rv = store_gen_blob(r->gen, name, ret_data, ret_len);
		if (rv == VIGIL_OK && ret_generation != NULL)
			*ret_generation = gen_number(r->gen);
	}
	genref_release(r);
	return rv;
}

vigil_err
store_db_thresholds_each(store_db *db,
    void (*fn)(void *arg, const char *name, const char *group, const store_threshold_val *v),
    void *arg)
{
	db_genref *r = db_gen_acquire(db, NULL);
	vigil_err  rv = VIGIL_OK;

	if (r != NULL)
		rv = store_gen_thresholds_each(r->gen, fn, arg);
	genref_release(r);
	return rv;
}

/* ---------------------------------------------------------------------- */
/* Contexts and scoring. */

store_ctx *
store_ctx_new(store_db *db)
{
	store_ctx *ctx = calloc(1, sizeof *ctx);

	if (ctx == NULL)
		return NULL;
	ctx->db = db;
	ctx->epoch = DB_EPOCH_NONE;
	(void)store_ctx_set_features(ctx, NULL);
	ctx->sc = vel_scratch_new();
	ctx->claim = live_claim_new();
	ctx->bufcap = DB_BUF_INITIAL;
	ctx->buf = malloc(ctx->bufcap);
	if (ctx->sc == NULL || ctx->claim == NULL || ctx->buf == NULL) {
		store_ctx_free(ctx);
		return NULL;
	}
	return ctx;
}

void
store_ctx_free(store_ctx *ctx)
{
	if (ctx == NULL)
		return;
	if (ctx->begun)
		store_score_abort(ctx->db, ctx);
	genref_release(ctx->gen);
	vel_scratch_free(ctx->sc);
	live_claim_free(ctx->claim);
	free(ctx->buf);
	free(ctx);
}

vigil_err
store_ctx_set_features(store_ctx *ctx, const store_feature_mask *m)
{
	const store_feature_mask *dbm = &ctx->db->features;

	if (ctx->begun)
		return VIGIL_EINVAL;
	if (m == NULL)
		m = dbm;
	else if (!fill_mask_subset(m, dbm))
		return VIGIL_EINVAL;
	store_feature_mask_none(&ctx->need);
	for (uint32_t i = 0; i < STORE_SLOT_COUNT_; i++)
		if (store_feature_mask_has(m, i))
			store_feature_mask_set(&ctx->need, i);
	fill_plan(ctx);
	return VIGIL_OK;
}

vigil_err
store_db_observe(store_db *db, const store_observation *obs)
{
	if (db->lv == NULL || obs->merchant_id[0] == '\0' ||
	    memchr(obs->merchant_id, '\0', sizeof obs->merchant_id) == NULL ||
	    memchr(obs->terminal_id, '\0', sizeof obs->terminal_id) == NULL ||
	    memchr(obs->device_id, '\0', sizeof obs->device_id) == NULL ||
	    memchr(obs->ip, '\0', sizeof obs->ip) == NULL)
		return VIGIL_EINVAL;
	live_observe(db->lv, obs);
	return VIGIL_OK;
}

vigil_err
store_features_lookup(store_db *db, store_ctx *ctx, const vigil_txn *txn,
    vigil_value *features, uint32_t nfeatures)
{
	uint32_t  stripe;
	vigil_err rv;

	memset(&ctx->info, 0, sizeof ctx->info);
	if (ctx->begun || nfeatures < STORE_SLOT_COUNT_ || !txn_ids_ok(txn))
		return VIGIL_EINVAL;
	ctx->txn = *txn;
	if (db->lv == NULL) {
		rv = db_fill(ctx, features, nfeatures);
		fill_mask_apply(ctx, features);
		return rv; /* read-only: velocity stays missing */
	}
	/* As begin: the live state's misses are started first and overlap
	 * the LMDB reads, done with the card locked (as in begin). */
	live_keys_compute(&ctx->keys, &ctx->txn);
	vel_prefetch(db->lv, &ctx->keys);
	stripe = live_card_stripe_k(&ctx->keys);
	live_card_lock(db->lv, stripe);
	vel_prefetch_card(db->lv, &ctx->keys);
	vel_prefetch_objects(db->lv, &ctx->keys, ctx->plan);
	rv = db_fill(ctx, features, nfeatures);
	if (rv != VIGIL_OK) {
		live_card_unlock(db->lv, stripe);
		return rv;
	}
	vel_features(db->lv, ctx->sc, &ctx->txn, &ctx->keys, features, ctx->plan);
	live_card_unlock(db->lv, stripe);
	fill_mask_apply(ctx, features);
	ctx->info.late = live_wm_is_late(db->lv, txn->event_time_ms);
	ctx->info.past_dedupe_horizon = live_wm_past_horizon(db->lv, txn->event_time_ms);
	return VIGIL_OK;
}

vigil_err
store_score_begin(store_db *db, store_ctx *ctx, const vigil_txn *txn,
    vigil_value *features, uint32_t nfeatures, store_outcome *ret_prior)
{
	vigil_err rv;

	memset(&ctx->info, 0, sizeof ctx->info);
	if (db->lv == NULL || ctx->begun || nfeatures < STORE_SLOT_COUNT_ || !txn_ids_ok(txn))
		return VIGIL_EINVAL;
	ctx->txn = *txn;
	live_keys_compute(&ctx->keys, &ctx->txn);
	vel_prefetch(db->lv, &ctx->keys);
	ctx->stripe = live_card_stripe_k(&ctx->keys);
	live_card_lock(db->lv, ctx->stripe);
	vel_prefetch_card(db->lv, &ctx->keys);
	vel_prefetch_objects(db->lv, &ctx->keys, ctx->plan);
	ctx->redo = false;
	for (;;) {
		live_dd_verdict v;

		/* Under the card lock, so a retry racing its first attempt waits
		 * for it and then finds its outcome; the claim makes a begin of
		 * the same id for another card (another lock) a conflict. */
		rv = live_dedupe_begin(db->lv, ctx->txn.txn_id, &ctx->keys, ctx->claim, ret_prior, &v);
		if (rv != VIGIL_OK)
			goto fail;
		if (v == LIVE_DD_RETRY || v == LIVE_DD_CONFLICT) {
			rv = v == LIVE_DD_RETRY ? VIGIL_EEXIST : VIGIL_ECONFLICT;
			goto fail;
		}
		if (v != LIVE_DD_WAIT) {
			ctx->redo = v == LIVE_DD_REDO;
			break;
		}
		/* Recorded, not yet durable: its answer depends on the sync. */
		live_card_unlock(db->lv, ctx->stripe);
		live_dedupe_wait(db->lv, ctx->txn.txn_id, &ctx->keys);
		live_card_lock(db->lv, ctx->stripe);
	}
	/* An archive that refuses appends would fail the commit: say so now. */
	if (db->ar != NULL && store_archive_refusing(db->ar)) {
		rv = VIGIL_EAGAIN;
		goto fail;
	}
	rv = live_card_reserve(db->lv, &ctx->txn, &ctx->keys);
	if (rv != VIGIL_OK)
		goto fail;
	rv = db_fill(ctx, features, nfeatures);
	if (rv != VIGIL_OK)
		goto fail;
	vel_features(db->lv, ctx->sc, &ctx->txn, &ctx->keys, features, ctx->plan);
	fill_mask_apply(ctx, features);
	ctx->begun = true;
	return VIGIL_OK;
fail:
	live_dedupe_unclaim(db->lv, ctx->claim);
	live_card_unlock(db->lv, ctx->stripe);
	return rv;
}

void
store_score_abort(store_db *db, store_ctx *ctx)
{
	if (!ctx->begun)
		return;
	ctx->begun = false;
	live_dedupe_unclaim(db->lv, ctx->claim);
	live_card_unlock(db->lv, ctx->stripe);
}

/* The diag of a failed archive write or sync: what failed and its errno
 * text (ENOSPC is "No space left on device", not "input/output error"). */
static void
db_archive_diag(store_db *db, store_diag *reterr, const char *txn_id, const char *what,
    vigil_err rv)
{
	store_archive_health h;

	store_archive_get_health(db->ar, &h);
	if (h.failing)
		store_diag_set(reterr, "txn_id \"%.64s\": %s: %s%s (%s %s)", txn_id, what,
		    rv == VIGIL_EAGAIN ? "archive failing, retrying: " : "", strerror(h.err), h.op,
		    h.file);
	else
		store_diag_set(reterr, "txn_id \"%.64s\": %s: %s", txn_id, what, vigil_strerror(rv));
}

void
store_db_get_health(store_db *db, store_db_health *ret_health)
{
	store_gen_check chk;

	memset(ret_health, 0, sizeof *ret_health);
	if (db->ar != NULL)
		store_archive_get_health(db->ar, &ret_health->archive);
	ret_health->ok = !ret_health->archive.failing;
	ret_health->archive_corrupt_stretches = db->recov_corrupt;
	ret_health->archive_corrupt_bytes = db->recov_corrupt_bytes;
	ret_health->archive_lost_records = db->recov_lost;
	memcpy(ret_health->archive_corrupt_first, db->recov_first, sizeof db->recov_first);
	pthread_mutex_lock(&db->gen_mu);
	if (db->gen != NULL) {
		ret_health->generation = gen_number(db->gen->gen);
		store_gen_check_get(db->gen->gen, &chk);
		ret_health->generation_verified = chk.verified;
		ret_health->generation_bytes = chk.bytes;
		ret_health->generation_verify_us = chk.verify_us;
	}
	ret_health->generation_refused = db->gen_refused;
	ret_health->refused_generation = db->gen_refused_n;
	memcpy(ret_health->generation_error, db->gen_error, sizeof db->gen_error);
	ret_health->generation_refusals = db->gen_refusals;
	pthread_mutex_unlock(&db->gen_mu);
}

vigil_err
store_score_commit(store_db *db, store_ctx *ctx, const store_scored *rec, store_diag *reterr)
{
	uint64_t      seq = 0;
	size_t        len = 0;
	vigil_err     rv;
	bool          admit, same, pending;
	live_keys     settle_keys;

	if (!ctx->begun)
		return VIGIL_EINVAL;
	/* Byte for byte the begun transaction (the usual case: a copy of it),
	 * so the same ids and entities without comparing them one by one. */
	same = memcmp(&rec->txn, &ctx->txn, sizeof rec->txn) == 0;
	if (!same && (strcmp(rec->txn.txn_id, ctx->txn.txn_id) != 0 ||
	    strcmp(rec->txn.card_id, ctx->txn.card_id) != 0 ||
	    rec->txn.event_time_ms != ctx->txn.event_time_ms)) {
		store_diag_set(reterr, "store_score_commit: record is for txn_id \"%.64s\", begun with "
		    "\"%.64s\"", rec->txn.txn_id, ctx->txn.txn_id);
		rv = VIGIL_EINVAL;
		goto fail;
	}
	if (db->ar != NULL) {
		for (;;) {
			rv = store_scored_encode(rec, ctx->buf, ctx->bufcap, &len);
			if (rv != VIGIL_ETOOBIG || ctx->bufcap >= db->opts.archive.max_record_bytes)
				break;
			/* one byte more than it holds: the next doubling */
			rv = vigil_array_reserve(&ctx->buf, &ctx->bufcap, ctx->bufcap + 1, 1, 1,
			    db->opts.archive.max_record_bytes);
			if (rv != VIGIL_OK)
				break;
		}
		if (rv != VIGIL_OK) {
			store_diag_set(reterr, "txn_id \"%.64s\": encoding the archive record: %s",
			    rec->txn.txn_id, vigil_strerror(rv));
			goto fail;
		}
	}
	/* The sequence number and the late decision are taken together under
	 * the watermark lock; the write(2) happens after it, batched with the
	 * records other threads queued meanwhile (archive.c, group write). */
	live_wm_lock(db->lv);
	if (db->ar != NULL) {
		rv = store_archive_enqueue(db->ar, STORE_REC_SCORE, rec->txn.event_time_ms,
		    ctx->buf, len, &seq);
		if (rv != VIGIL_OK) {
			live_wm_unlock(db->lv);
			db_archive_diag(db, reterr, rec->txn.txn_id, "archive write", rv);
			goto fail;
		}
	}
	/* A redo is applied like a first attempt: the first attempt's live
	 * effect was taken back when its sync failed (below). */
	admit = live_wm_admit_locked(db->lv, rec->txn.event_time_ms);
	/* What the reply says (store_ctx_commit_info), decided here with the
	 * sequence number. */
	ctx->info.late = !admit;
	ctx->info.past_dedupe_horizon = live_wm_past_horizon(db->lv, rec->txn.event_time_ms);
	live_wm_unlock(db->lv);
	if (db->ar != NULL) {
		/* Applied only once written. A failed write leaves the record out
		 * of the archive (and W possibly advanced by it: storage.md,
		 * "Known limitations"). */
		rv = store_archive_flush(db->ar, seq);
		if (rv != VIGIL_OK) {
			db_archive_diag(db, reterr, rec->txn.txn_id, "archive write", rv);
			goto fail;
		}
	}
	{
		/* The begun transaction's keys, unless rec differs from it (txn_id
		 * and card are checked equal above): then its own, whose
		 * fingerprint is what the dedupe record must hold. */
		live_keys        rk;
		const live_keys *k = &ctx->keys;

		if (!same) {
			live_keys_compute(&rk, &rec->txn);
			k = &rk;
		}
		if (admit)
			live_apply(db->lv, &rec->txn, k);
		/* Pending until durable (fsync always): a retry meanwhile waits,
		 * and one after a failed sync writes the record again. ENOMEM
		 * here only loses the retry shortcut; the record is archived. */
		pending = db->ar != NULL && db->opts.archive.fsync == STORE_FSYNC_ALWAYS;
		(void)live_dedupe_commit(db->lv, ctx->redo ? NULL : ctx->claim, rec, k, pending,
		    ctx->info.late);
		if (pending) {
			settle_keys = *k;
			ctx->begun = false;
			live_card_unlock(db->lv, ctx->stripe);
			live_sweep_maybe(db->lv);
			rv = store_archive_wait_durable(db->ar, seq);
			if (rv != VIGIL_OK && admit) {
				/* Never acknowledged: a retry (or the card's next
				 * transaction) must not count it. Undone before the
				 * settle, which lets a waiting retry begin. */
				live_card_lock(db->lv, live_card_stripe_k(&settle_keys));
				live_unapply(db->lv, &rec->txn, &settle_keys);
				live_card_unlock(db->lv, live_card_stripe_k(&settle_keys));
			}
			live_dedupe_settle(db->lv, rec->txn.txn_id, &settle_keys, rv == VIGIL_OK);
			if (rv != VIGIL_OK) {
				memset(&ctx->info, 0, sizeof ctx->info);
				db_archive_diag(db, reterr, rec->txn.txn_id, "archive sync", rv);
				return rv;
			}
			return VIGIL_OK;
		}
	}
	ctx->begun = false;
	live_card_unlock(db->lv, ctx->stripe);
	live_sweep_maybe(db->lv);
	return VIGIL_OK;
fail:
	memset(&ctx->info, 0, sizeof ctx->info);
	store_score_abort(db, ctx);
	return rv;
}

void
store_ctx_commit_info(const store_ctx *ctx, store_commit_info *ret_info)
{
	*ret_info = ctx->info;
}

vigil_err
store_label_record(store_db *db, const store_label *label, store_diag *reterr)
{
	uint8_t   buf[1024];
	size_t    len;
	int64_t   t;
	vigil_err rv;

	if (db->memory)
		return VIGIL_OK; /* offline: labels have no live effect */
	if (db->ar == NULL) {
		store_diag_set(reterr, "store_label_record: data directory opened read-only");
		return VIGIL_EINVAL;
	}
	rv = store_label_encode(label, buf, sizeof buf, &len);
	if (rv != VIGIL_OK) {
		store_diag_set(reterr, "label for txn_id \"%.64s\": encoding: %s", label->txn_id,
		    vigil_strerror(rv));
		return rv;
	}
	t = label->label_time_ms ? label->label_time_ms
	    : label->received_at_ms ? label->received_at_ms : vigil_now_ms();
	rv = store_archive_append(db->ar, STORE_REC_LABEL, t, buf, len, NULL);
	if (rv != VIGIL_OK) {
		char what[96];

		snprintf(what, sizeof what, "label: archive append");
		db_archive_diag(db, reterr, label->txn_id, what, rv);
	}
	return rv;
}

void
store_db_get_stats(store_db *db, store_db_stats *ret_stats)
{
	live_stats ls = { 0 };

	memset(ret_stats, 0, sizeof *ret_stats);
	if (db->lv != NULL)
		live_get_stats(db->lv, &ls);
	ret_stats->live_cards = ls.cards;
	ret_stats->live_entities = ls.entities;
	ret_stats->live_events = ls.events;
	ret_stats->dedupe_entries = ls.dedupe_entries;
	ret_stats->late_events = ls.late_events;
	if (db->ar != NULL)
		store_archive_get_stats(db->ar, &ret_stats->archive);
}
