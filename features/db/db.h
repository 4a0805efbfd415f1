/* SPDX-License-Identifier: MIT */
/*
 * features/db/db.h - store_db, the serving object (DESIGN.md contracts 2-4): one
 * data directory's archive writer (archive.h), its current feature
 * generation (gen.h) and the speed layer, the exact live velocity state
 * rebuilt from the archive at open. Scoring goes begin -> commit/abort per
 * transaction, so that the k-th transaction of a card sees exactly the k-1
 * acknowledged before it under any concurrency, and a retried txn_id gets
 * the first outcome. db.c joins the parts, fill.c assembles the feature
 * vector and velocity.c computes its live velocity features; store/ keeps
 * the live state (live.h: live.c, dedupe.c; docs/storage.md, "Live state"
 * and "Idempotency").
 *
 * Thread safety: every store_db_* and store_score_* function may be called
 * from any number of threads at once, each with its own store_ctx (a ctx is
 * used by one thread at a time), except store_db_close,
 * store_db_close_exiting and store_db_abandon. Errors are vigil_err, with a
 * one-line store_diag (schema.h) where a function takes one. The library
 * never logs.
 */
#ifndef VIGIL_STORE_DB_H
#define VIGIL_STORE_DB_H

#include <stdbool.h>
#include <stdint.h>

#include "archive.h"
#include "diag.h"
#include "gen.h"
#include "genread.h"
#include "live.h"
#include "observe.h"
#include "schema.h"
#include "vigil.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Called by store_db_open after each scored record it replays into the live
 * state: seq is the record's, last_seq the archive's highest. false stops the
 * replay between two records (store_db_open returns VIGIL_ECLOSED). */
typedef bool (*store_db_replay_fn)(void *arg, uint64_t seq, uint64_t last_seq);

typedef struct store_db_opts {
	store_archive_opts archive;
	uint32_t dedupe_horizon_s; /* >= largest window; default 8 days */
	uint32_t max_cards;        /* cap on live entities; default 10M */
	bool     read_only;        /* tools: no archive writer, no live state */
	store_db_replay_fn replay_tick; /* NULL (default): the replay runs to its end */
	void    *replay_arg;
} store_db_opts;

/* Fills *ret_opts with the defaults above (archive: store_archive_opts_default). */
void store_db_opts_default(store_db_opts *ret_opts);

typedef struct store_db store_db;

/*
 * Opens a data directory: the archive for writing, the current feature
 * generation (if any) and the live state, rebuilt from the archive (so after
 * any crash it equals a recomputation from the archive). opts NULL =
 * defaults; *ret_recovery may be NULL. On VIGIL_OK *ret_db is set (close
 * it with store_db_close) and reterr->msg is empty unless the replay
 * skipped corrupt archive records (then it says how many and where the
 * first was: log it). The generation CURRENT names is verified
 * (store_gen_open); if it is refused (missing, damaged, of an unknown
 * layout, CURRENT malformed), the newest older generation that opens is
 * served instead, or none, and store_db_get_health says which and why: a
 * damaged generation never stops the open. Errors (*ret_db untouched): the
 * archive's (VIGIL_EBUSY, VIGIL_EIO, ...), a scored record that does not
 * decode (VIGIL_EPROTO, reterr names segment:offset), VIGIL_EINVAL for
 * options (dedupe_horizon_s below 7 days, max_cards 0), VIGIL_ETOOBIG (path
 * too long), VIGIL_ENOMEM, VIGIL_ECLOSED (opts->replay_tick said stop: the
 * archive is closed as store_db_close does, the live state, in memory only,
 * dropped).
 */
vigil_err store_db_open(const char *datadir, const store_db_opts *opts, store_db **ret_db,
    store_recovery *ret_recovery, store_diag *reterr);
/* Flushes and syncs the archive, closes the generation, frees the live
 * state. No other call on db (or its contexts' lookups) may run; free the
 * contexts first. NULL is a no-op. */
void      store_db_close(store_db *db);
/* store_db_close for a process that exits next: the archive and the
 * generation are closed the same way, but the live state's memory (one
 * free per card, entity and idempotency record: tens of milliseconds for
 * millions) is left to the exit. A build checked for leaks (sanitizers)
 * calls store_db_close instead. */
void      store_db_close_exiting(store_db *db);
/* For a process that _exits next while a thread is still inside
 * store_db_refresh (a verification whose read does not end: a hung mount):
 * closes the archive as store_db_close does (every record appended is
 * written and synced, its lock released) and leaves the rest, which that
 * thread may still be using, to the exit. No other call on db but that
 * refresh may run, nor any after. NULL is a no-op. */
void      store_db_abandon(store_db *db);

/* Checks CURRENT and switches to the generation it names if that is not
 * the one served. Cheap (a stat) unless CURRENT changed: then the new
 * generation is verified (store_gen_open reads it whole); call it from a
 * timer, not per request (concurrent calls are serialised). In-flight
 * lookups keep the generation they started with. *ret_changed may be
 * NULL; it is set whatever the result (a refusal may change what is
 * served, below). If the generation CURRENT names is refused (VIGIL_ECORRUPT,
 * VIGIL_EVERSION, ...; a malformed CURRENT too), the error and reterr are
 * returned once, the served generation stays, and store_db_get_health
 * reports the refusal; later calls return VIGIL_OK without trying again
 * until CURRENT or that generation's files change (after VIGIL_ENOMEM or
 * VIGIL_ELIMIT: at the next call). The served generation is checked too,
 * by an fstat: if its data.mdb was truncated or modified since it was
 * verified, or a lookup's read of it faulted (SIGBUS, contained: the
 * lookup failed with VIGIL_ECORRUPT), it is refused the same way (once,
 * VIGIL_ECORRUPT and reterr) and the newest older generation that
 * verifies is served instead, or none (*ret_changed true). */
vigil_err store_db_refresh(store_db *db, bool *ret_changed, store_diag *reterr);
/*
 * Housekeeping for a long-running owner (vigild calls it from a timer, e.g.
 * every 10 s): closes the archive segment at the UTC day boundary,
 * compresses closed segments and applies retention (store_archive_maintain),
 * and sweeps expired live state. Cheap when there is nothing to do. Never
 * blocks scoring for long. VIGIL_OK, or an error with *reterr filled; the
 * db stays usable either way.
 */
vigil_err store_db_maintain(store_db *db, store_diag *reterr);
/* Closes the archive's open segment now (writing its index) instead of at
 * the UTC day boundary (store_archive_rotate): vigil-replay --nightly does
 * it each replayed night, so its segments hold one event day each, as
 * vigild's do. No-op for an in-memory db. */
vigil_err store_db_rotate(store_db *db, store_diag *reterr);
/* The generation served and its as-of time (0 / 0 when none). */
uint64_t  store_db_generation(store_db *db);
int64_t   store_db_generation_as_of(store_db *db);
/* store_gen_blob on the current generation (*ret_data malloc'd: free it);
 * *ret_generation (may be NULL) is the generation it came from.
 * VIGIL_ENOTFOUND without a generation; otherwise store_gen_blob's errors. */
vigil_err store_db_blob(store_db *db, const char *name, void **ret_data, size_t *ret_len,
    uint64_t *ret_generation);
/* store_gen_thresholds_each on the current generation; VIGIL_OK (fn never
 * called) without one. */
vigil_err store_db_thresholds_each(store_db *db,
    void (*fn)(void *arg, const char *name, const char *group, const store_threshold_val *v),
    void *arg);

/* Per-thread scratch for scoring; holds strings the feature vector points
 * to. store_ctx_new: NULL on ENOMEM. store_ctx_free aborts an open begin;
 * NULL is a no-op. Free every ctx before closing its db. */
typedef struct store_ctx store_ctx;
store_ctx *store_ctx_new(store_db *db);
void       store_ctx_free(store_ctx *ctx);

/*
 * A counted reference on the generation the db serves, so that a caller
 * can bind what it derives from a generation (thresholds, the model) to
 * the features its lookups read: vigild builds its next rule set from one
 * reference and pins its scoring contexts to it, so that a generation
 * switch changes features, thresholds and model in one swap
 * (docs/vigild.md, "Feature generations").
 * store_db_gen_acquire: a new reference on the current generation, NULL if
 * none is served. store_db_gen_release: NULL is a no-op; the generation is
 * closed when its last reference (the db's included) goes. Release every
 * reference before store_db_close. store_db_gen_get: the generation, valid
 * while the reference is held (NULL for NULL); store_db_gen_number: its
 * number (0 for NULL). Thread-safe.
 */
typedef struct store_db_gen store_db_gen;
store_db_gen *store_db_gen_acquire(store_db *db);
void          store_db_gen_release(store_db_gen *g);
store_gen    *store_db_gen_get(const store_db_gen *g);
uint64_t      store_db_gen_number(const store_db_gen *g);
/*
 * From the next begin or lookup on, ctx reads batch features from g (NULL:
 * none, the rules' fallbacks) instead of following the db's current
 * generation; ctx holds its own reference until it is pinned to another
 * generation or freed. Cheap when g is already pinned (a compare). A ctx
 * once pinned stays pinned.
 */
void       store_ctx_pin_gen(store_ctx *ctx, store_db_gen *g);

/*
 * Scoring, in three steps so the live state is exact under concurrency:
 *
 * store_score_begin: if txn->txn_id was seen within the horizon, returns
 *   VIGIL_EEXIST with *ret_prior filled and nothing locked: a retry (the
 *   same card, merchant, terminal, amount and currency as the recorded
 *   transaction); or VIGIL_ECONFLICT, *ret_prior filled and nothing locked,
 *   if any of those differ: the id was reused for another transaction,
 *   which must be refused, not answered with the first outcome. The id is
 *   claimed from begin to commit/abort: a begin of it for another card
 *   meanwhile gets VIGIL_ECONFLICT with *ret_prior zeroed, so concurrent
 *   uses of one id are scored once. With fsync always a transaction is a
 *   retry only once its record is durable: a retry while its sync runs
 *   waits for it, and one after the sync failed is scored again (begin
 *   returns VIGIL_OK; commit writes the record again, not applying it
 *   twice). Otherwise locks
 *   the card's live entry and fills features[0..store_schema_nfields()) with
 *   the transaction fields, the batch profile and the live velocity as of
 *   txn->event_time_ms (the transaction itself excluded). The strings in
 *   features stay valid until the next call on ctx.
 * store_score_commit: archives the scored record (store_archive_write),
 *   applies it to the live state, records the outcome for dedupe, unlocks,
 *   then waits for durability per the fsync policy. On error nothing is
 *   applied and the lock is released; the one exception is a failure of
 *   the durability wait itself (its error is returned after the record was
 *   written and applied; the transaction is then not a duplicate for a
 *   retry, which writes it again). VIGIL_EINVAL (with
 *   reterr) if rec is not for the begun txn_id/card_id/event time. The
 *   diag of an archive error names what failed with the errno's text.
 *   Errors of begin: VIGIL_EINVAL (nfeatures < store_schema_nfields(),
 *   empty or unterminated ids, a begin already open on ctx, a read-only
 *   db), VIGIL_ELIMIT (a new card over max_cards), VIGIL_EAGAIN (the
 *   archive is failing and refuses appends for now: store_db_get_health),
 *   VIGIL_ECORRUPT (a read of the generation faulted: its data.mdb changed
 *   under the mapping; store_db_refresh then stops serving it),
 *   VIGIL_ENOMEM.
 * store_score_abort: unlocks without applying.
 * Exactly one of commit/abort must follow a VIGIL_OK begin on the same ctx.
 */
vigil_err store_score_begin(store_db *db, store_ctx *ctx, const vigil_txn *txn,
    vigil_value *features, uint32_t nfeatures, store_outcome *ret_prior);
vigil_err store_score_commit(store_db *db, store_ctx *ctx, const store_scored *rec,
    store_diag *reterr);
void      store_score_abort(store_db *db, store_ctx *ctx);

/*
 * What store_score_commit decided about its transaction beyond the outcome
 * (docs/storage.md, "Late events"; docs/protocol.md, ScoreReply):
 *   late: its event time was at or before W - 7 days (W, the watermark: the
 *     newest event time applied): archived and answered, but not applied
 *     to the live state, so later transactions' velocity does not count it;
 *   past_dedupe_horizon: its event time was at or before W - the dedupe
 *     horizon: the outcome is not remembered for its txn_id, so a repeat of
 *     it is scored (and archived) again instead of being answered as a
 *     retry.
 * store_ctx_commit_info reads them: after a successful store_score_commit
 * on ctx, its decision (taken under the watermark lock, with the sequence
 * number); after store_features_lookup, what a commit would decide now (an
 * estimate: other commits may move W meanwhile); all false after any other
 * call, an error, or on a read-only db (no live state).
 */
typedef struct store_commit_info {
	bool late;
	bool past_dedupe_horizon;
} store_commit_info;
void store_ctx_commit_info(const store_ctx *ctx, store_commit_info *ret_info);

/* Features only, nothing locked or applied (dry runs, replay, explain):
 * fills features[0..store_schema_nfields()) as begin would. VIGIL_EINVAL
 * as for begin (nfeatures short, bad ids, a begin open on ctx), and
 * VIGIL_ECORRUPT as for begin. The
 * strings stay valid until the next call on ctx. */
vigil_err store_features_lookup(store_db *db, store_ctx *ctx, const vigil_txn *txn,
    vigil_value *features, uint32_t nfeatures);

/* Archives a label (durable per policy when it returns). VIGIL_EAGAIN
 * while the archive refuses appends; the diag has the errno's text;
 * VIGIL_EINVAL on a read-only db. A memory db takes it and does nothing
 * (labels have no live effect). */
vigil_err store_label_record(store_db *db, const store_label *label, store_diag *reterr);

/*
 * Offline use (replay, tests): a live state with no archive and no data
 * directory. Same begin/commit/abort API; commit applies without archiving.
 * opts NULL = defaults (archive ignored). With opts->read_only there is no
 * live state either (vigil-rules explain): store_features_lookup fills the
 * transaction's fields and the served generation's features, velocity
 * missing, as on a read-only data directory; store_score_begin returns
 * VIGIL_EINVAL. VIGIL_OK: *ret_db set; VIGIL_EINVAL for options (as
 * store_db_open), VIGIL_ENOMEM.
 * store_db_set_gen serves gen (NULL: no batch features) from the next
 * begin or lookup on; the db does not take ownership: close gen after the
 * db, or after swapping it out. On ENOMEM the previous one stays.
 */
vigil_err store_db_new_memory(const store_db_opts *opts, store_db **ret_db);
void      store_db_set_gen(store_db *db, store_gen *gen);

#ifdef __cplusplus
}
#endif

/* Applies another replica's observation (store/observe.h) to the entity
 * state only, placed by event time as a local transaction's entity events
 * are, to the kinds the served features read. Not archived, does not move
 * the watermark, not idempotent: the caller applies each observation once.
 * VIGIL_OK; VIGIL_EINVAL on a read-only db (no live state), an empty
 * merchant id or an unterminated id. */
vigil_err store_db_observe(store_db *db, const store_observation *obs);

/* What a store_db reports (store_db_get_stats, store_db_get_health). */
#include "health.h"

#endif /* VIGIL_STORE_DB_H */
