/* SPDX-License-Identifier: MIT */
/*
 * features/db/private/db_int.h - private to features/db/: the serving object and its
 * contexts as db.c (the archive, generations, live state and commit) and
 * fill.c (the feature vector of a lookup) share them.
 */
#ifndef VIGIL_STORE_DB_INT_H
#define VIGIL_STORE_DB_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "db.h"
#include "gen.h"
#include "live.h"
#include "mask.h"
#include "velocity.h"

#define DB_PATH_MAX 4096

typedef struct store_db_gen {
	store_gen       *gen;
	_Atomic uint32_t refs;
	bool             owned;
	uint64_t         epoch; /* db->gen_epoch it was installed with: the bcache tag */
} db_genref;

struct store_db {
	store_db_opts    opts;
	char             datadir[DB_PATH_MAX];
	bool             memory;
	store_archive   *ar; /* NULL in memory and read-only mode */
	live            *lv; /* NULL in read-only mode */
	pthread_mutex_t  gen_mu;
	db_genref       *gen; /* current, NULL if none */
	_Atomic uint64_t gen_epoch;
	pthread_mutex_t  refresh_mu;
	struct stat      cur_st;
	bool             cur_st_valid;
	/* A generation CURRENT names that is not served (docs/storage.md,
	 * "Verification"): under gen_mu, for store_db_get_health ... */
	bool             gen_refused;
	uint64_t         gen_refused_n; /* 0: CURRENT itself is malformed */
	char             gen_error[sizeof ((store_db_health *)0)->generation_error];
	uint64_t         gen_refusals;
	/* ... and under refresh_mu, when to try it again: once its files
	 * change (or CURRENT does), or at once after a resource error. */
	uint64_t         refused_sig;
	bool             refused_retry;
	store_feature_mask features; /* the slots it serves (mask.h) */
	uint32_t         plan; /* vel_plan of features */
	/* What the live-state recovery found damaged in the archive (set at
	 * open, read by store_db_get_health). */
	uint64_t         recov_corrupt, recov_corrupt_bytes, recov_lost;
	char             recov_first[200];
};

struct store_ctx {
	store_db     *db;
	vel_scratch *sc;
	db_genref    *gen;
	uint64_t      epoch;
	bool          pinned; /* store_ctx_pin_gen: gen is the caller's, not the db's current */
	vigil_txn     txn; /* the feature vector's strings point here */
	live_keys     keys; /* of txn */
	bool          begun;
	bool          redo;  /* begun for a record whose sync failed (live.h) */
	store_commit_info info; /* of the last commit or lookup (store_ctx_commit_info) */
	live_claim   *claim; /* on txn.txn_id between begin and commit/abort */
	uint32_t      stripe;
	uint8_t      *buf;
	size_t        bufcap;
	/* Feature mask (store_ctx_set_features): what a lookup computes. */
	store_feature_mask need;
	bool          need_all;   /* need covers every slot: nothing to mask */
	uint32_t      plan;       /* vel_plan(need) */
	bool          need_bcard, need_bmerchant, need_bterminal; /* batch reads */
	/* Slots a lookup may fill that need leaves out: mask_apply clears
	 * these (every other slot stays as store_features_from_txn left it,
	 * missing). */
	store_feature_mask clear;
};

/*
 * fill.c: the feature vector.
 * fill_mask_subset: every slot of a is in b (slots outside the schema do
 * not count). fill_plan: ctx's derived mask state (need_all, plan, the
 * batch reads, clear) from ctx->need. fill_txn_batch: the transaction's
 * fields and its batch profiles from g (NULL: none; only read when ctx
 * needs a batch profile, FILL_READS_BATCH) into f[0..n) (ctx->txn set, ctx->keys too
 * when the db has a live state, whose card stripe is then locked); an
 * absent or unreadable profile leaves its slots missing; VIGIL_ECORRUPT
 * only when the generation faulted under the read. fill_mask_apply: under
 * a partial mask, every slot not asked for is missing.
 */
bool      fill_mask_subset(const store_feature_mask *a, const store_feature_mask *b);
void      fill_plan(store_ctx *ctx);
vigil_err fill_txn_batch(store_ctx *ctx, store_gen *g, vigil_value *f, uint32_t n);
#define FILL_READS_BATCH(ctx) ((ctx)->need_bcard || (ctx)->need_bmerchant || (ctx)->need_bterminal)
void      fill_mask_apply(const store_ctx *ctx, vigil_value *f);

#endif /* VIGIL_STORE_DB_INT_H */
