/* SPDX-License-Identifier: MIT */
/*
 * batch/train.h - private to batch/: the nightly model's training set and
 * its training with libxgboost (DESIGN.md "Contracts" 7, docs/model.md
 * "Training").
 *
 * The rebuild adds one row per scored transaction of a mature day
 * (the float vector vigild scored with, the label known at as-of, the event
 * time and xxh64(txn_id)) to a batch_trainset; batch_train_run() sorts the
 * kept rows canonically, splits them by time, trains a binary:logistic
 * gradient-boosted forest with early stopping on the later days and returns
 * XGBoost's JSON model. Everything that decides the model depends only on
 * the multiset of rows added, never on the order they were added in or on
 * how they were partitioned (batch_trainset_merge), so the same archive and
 * as-of give a byte-identical model (with libxgboost 1.7.4 whatever the
 * thread count too: measured, and checked for 1 against 2 threads by the
 * unit test, since XGBoost does not promise it).
 *
 * A set is used by one thread at a time (give each worker its own and merge
 * them). Nothing here logs (XGBoost is told verbosity 0); errors come back
 * as vigil_err with a one-line store_diag (every reterr may be NULL).
 *
 * The metrics and the calibration the training reports with are declared
 * in calib.h, included here.
 */
#ifndef VIGIL_BATCH_TRAIN_H
#define VIGIL_BATCH_TRAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "diag.h"
#include "schema.h"
#include "vigil.h"

#include "calib.h" /* batch_calib_platt, batch_metric_auc / _ap */

/* Caps (every input-driven size has one). */
#define BATCH_TRAIN_MAX_FEATURES  1024
#define BATCH_TRAIN_MAX_NAME      128        /* bytes of a feature name */
#define BATCH_TRAIN_MAX_ROWS      50000000ULL /* largest allowed max_rows */
#define BATCH_TRAIN_MAX_DAYS      4096       /* distinct UTC days in one set */
#define BATCH_TRAIN_MAX_ROUNDS    10000
#define BATCH_TRAIN_MAX_DEPTH     16

/* Which validation figure early stopping follows. */
typedef enum batch_train_stop {
	BATCH_TRAIN_STOP_AP = 0, /* XGBoost's weighted "aucpr": higher is better */
	BATCH_TRAIN_STOP_LOGLOSS, /* weighted "logloss": lower is better (default) */
} batch_train_stop;

typedef struct batch_train_opts {
	uint32_t threads;       /* XGBoost nthread, at most BATCH_MAX_THREADS; 0 = 1.
	                         * Measured not to change the bytes (docs/model.md) */
	uint32_t max_rounds;    /* boosting rounds at most; default 300 */
	uint32_t early_stop;    /* stop after this many rounds without a better
	                         * validation figure; 0 = never; default 30 */
	uint32_t min_rounds;    /* the model keeps at least this many rounds (at
	                         * most max_rounds): early stopping neither stops
	                         * nor chooses before; default 20 */
	batch_train_stop stop_metric; /* default BATCH_TRAIN_STOP_LOGLOSS: every
	                         * row's probability counts, where AP rests on
	                         * the ranks of the few validation frauds
	                         * (docs/model.md, "Early stopping") */
	uint32_t max_depth;     /* default 6 */
	double   eta;           /* learning rate, default 0.1 */
	double   min_child_weight; /* in weighted hessian; default 5 (docs/model.md) */
	double   reg_lambda;    /* XGBoost's lambda, L2 penalty on leaf weights;
	                         * default 1 (XGBoost's), the nightly rebuild 10
	                         * (docs/model.md) */
	uint32_t max_bin;       /* hist bins per feature, default 256 */
	double   scale_pos_weight; /* default 1 (measured: see docs/model.md) */
	uint32_t min_frauds;    /* cold start: fewer frauds in train + valid, no
	                         * model; default 50 (at least 2 is enforced) */
	uint64_t max_rows;      /* rows kept at most (frauds + sampled legitimate);
	                         * default 1,000,000; at most BATCH_TRAIN_MAX_ROWS.
	                         * Read by batch_trainset_new only */
	double   valid_share;   /* share of the days (UTC, first to last day with
	                         * a row) validated on: the last
	                         * max(1, round(share * days)) days; default 0.25 */
	bool     refit;         /* default true: once early stopping has chosen the
	                         * number of rounds on the validation days, train
	                         * that many rounds again on every row, validation
	                         * days included (the freshest mature labels); the
	                         * report's validation figures stay those of the
	                         * model that never saw those days */
	bool     balanced_bins; /* default true: the histogram bins are cut from
	                         * a sketch in which frauds and legitimate rows
	                         * weigh the same in all (the trees are still
	                         * fitted with the real weights); false cuts them
	                         * by the training weights, where a fraud group
	                         * beyond every legitimate value of a feature
	                         * shares a bin with the legitimate tail and no
	                         * split can isolate it (docs/model.md, "Bins") */
	double   calib_trust;   /* in [0, 1], default 0.25: how far the saved
	                         * calibration goes from the prior's centre (a 1,
	                         * b -ln(scale_pos_weight)) toward the one fitted
	                         * on the validation days: a = 1 + trust (a_fit -
	                         * 1), b likewise. A night's fit follows its
	                         * validation days, which differ from the next
	                         * days, and calibrations that differ from night to
	                         * night reorder the rows of different nights
	                         * (docs/model.md, "Calibration"); 0 serves the
	                         * model's own probability */
} batch_train_opts;

/* Fills *ret with the defaults above (threads 1). */
void batch_train_opts_default(batch_train_opts *ret);

/*
 * A growing, bounded set of training rows.
 *
 * Sampling: every fraud is kept. Of the legitimate rows the set keeps the
 * ones with the smallest mix(key) (a fixed bijective remix of the row key),
 * as many as max_rows minus the frauds leaves room for (a bottom-k sketch),
 * and counts every legitimate row per UTC day. At training time a kept
 * legitimate row of day d weighs n_d / k_d (n_d legitimate rows added that
 * day, k_d kept), so the weights of a day sum to its legitimate count
 * exactly; frauds weigh 1. The kept rows and the weights are a function of
 * the multiset of rows added: any order, any split into sets merged with
 * batch_trainset_merge, gives the same ones.
 */
typedef struct batch_trainset batch_trainset;

/*
 * A new empty set for rows of nfeat floats named names[0..nfeat) (copied;
 * non-empty, at most BATCH_TRAIN_MAX_NAME bytes, no two alike), keeping at
 * most o->max_rows rows. VIGIL_OK: *ret_s set, free with
 * batch_trainset_free(). VIGIL_EINVAL (names, nfeat or max_rows out of range;
 * *reterr says which), VIGIL_ENOMEM; *ret_s untouched. reterr may be NULL.
 * Memory grows with the rows kept, up to about max_rows * (4 * nfeat + 29)
 * bytes.
 */
vigil_err batch_trainset_new(uint32_t nfeat, const char *const *names,
    const batch_train_opts *o, batch_trainset **ret_s, store_diag *reterr);

/*
 * Adds one row: x[0..nfeat) (copied; NaN = missing, and +-inf is stored as
 * missing too, so the served model must treat a non-finite input as
 * missing), its label, event time and key (xxh64 of the txn_id). The row
 * may be dropped or later evicted by the sampling above. VIGIL_ETOOBIG:
 * more than max_rows frauds (every fraud is kept, so they no longer fit),
 * or rows on more than BATCH_TRAIN_MAX_DAYS distinct days; VIGIL_ENOMEM.
 * On an error the set is unchanged.
 */
vigil_err batch_trainset_add(batch_trainset *s, const float *x, bool fraud,
    int64_t event_time_ms, uint64_t key);

/*
 * Adds every row src holds and every count it made into dst, as if dst had
 * been given src's rows too (for partitioned reads: merging the sets of any
 * partition gives the set one reader makes). src is unchanged. Both must
 * have the same feature names in the same order and the same max_rows
 * (VIGIL_EINVAL, *reterr says which); VIGIL_ETOOBIG and VIGIL_ENOMEM as for
 * add, after which dst is in an unspecified but valid state (free it).
 */
vigil_err batch_trainset_merge(batch_trainset *dst, const batch_trainset *src,
    store_diag *reterr);

void batch_trainset_free(batch_trainset *s); /* NULL is a no-op */

/*
 * The set as bytes, for a partial file of `vigil-rebuild --partition`
 * (batch/part.c, docs/vigil-rebuild.md "Partitions"). Little-endian
 * whatever the machine:
 *   u32 version (BATCH_TRAINSET_VERSION) | u32 nfeat | u64 max_rows
 *   nfeat x (u8 name length 1..BATCH_TRAIN_MAX_NAME, name bytes)
 *   u32 ndays | ndays x (i64 day, u64 legitimate rows added, u64 frauds added),
 *       days strictly ascending (day = floor(event time / 1 day))
 *   u64 nrows | nrows x (i64 event time ms, u64 key, u8 fraud 0/1,
 *       nfeat x f32, NaN = missing), in the canonical order
 * Rows go out in the canonical order of batch_train_run, so the bytes are a
 * function of what the set holds (the rows kept and the per-day counts),
 * not of the order rows were added or sets merged in.
 */
#define BATCH_TRAINSET_VERSION 1

/*
 * Encodes s into a new buffer: *ret_buf (malloc'd, caller frees) of
 * *ret_len bytes, about 17 + 4 * nfeat bytes a row. s is not changed.
 * VIGIL_ENOMEM (*reterr says so); *ret_buf untouched on error.
 */
vigil_err batch_trainset_encode(const batch_trainset *s, uint8_t **ret_buf, size_t *ret_len,
    store_diag *reterr);

/*
 * Decodes buf[0..len) made by batch_trainset_encode into a new set (free
 * with batch_trainset_free), which holds what the encoded one held and
 * behaves the same (add, merge, train). Every count is checked against the
 * caps above and against the bytes left before anything is allocated for
 * it, and the set's invariants are checked: names as batch_trainset_new
 * wants them and free of control bytes, days ascending, every row on one of the days, each day's
 * frauds all present, no more legitimate rows of a day kept than added and,
 * below max_rows, all of them kept; +-inf in a row is stored as missing, as
 * batch_trainset_add does. buf[] must hold exactly one set.
 *
 * VIGIL_OK: *ret_s set. VIGIL_EVERSION (a version this build does not
 * read), VIGIL_ECORRUPT (truncated, trailing bytes, a count or value out of
 * range, a broken invariant): *reterr_off is the offset in buf of the
 * field at fault and *reterr says what, without a file name (the caller
 * adds it); VIGIL_ENOMEM. *ret_s untouched on error. reterr_off and reterr
 * may be NULL.
 */
vigil_err batch_trainset_decode(const void *buf, size_t len, batch_trainset **ret_s,
    uint64_t *reterr_off, store_diag *reterr);

/* What a set holds now. */
typedef struct batch_trainset_stats {
	uint64_t rows;         /* kept: frauds + legit_kept */
	uint64_t frauds;       /* added (all kept) */
	uint64_t legit_seen;   /* legitimate rows added */
	uint64_t legit_kept;
	double   legit_weight; /* sum of the kept legitimate rows' weights (O(rows)) */
	uint32_t days;         /* distinct UTC days with a row */
} batch_trainset_stats;

void batch_trainset_stats_get(const batch_trainset *s, batch_trainset_stats *ret);

typedef struct batch_model_report {
	bool     trained;          /* false: no model (why_not says why), not an error */
	char     why_not[160];
	uint64_t rows, frauds;     /* kept rows and frauds, train + valid */
	uint64_t train_rows, train_frauds, valid_rows, valid_frauds;
	uint32_t rounds;           /* boosted before stopping */
	uint32_t best_round;       /* 1-based: the model holds best_round rounds of trees */
	bool     refit;            /* the saved model was trained again on every row
	                            * (opts.refit); valid_* are the figures of the
	                            * first one, trained on the days before split_ms */
	double   valid_auc, valid_ap; /* batch_metric_*, weighted, of the saved model */
	double   valid_logloss;    /* XGBoost's, at best_round */
	double   train_auc;        /* of the saved model on the rows it was trained on */
	double   base_score;       /* weighted fraud share of the saved model's
	                            * training rows (every row with refit) */
	int64_t  train_from_ms, train_to_ms; /* earliest and latest training row */
	int64_t  valid_from_ms, valid_to_ms; /* same for validation; valid_from_ms
	                                      * is after train_to_ms */
	int64_t  split_ms;         /* 00:00 UTC of the first validation day */
	bool     calibrated;       /* a Platt calibration was fitted (calib_a > 0) */
	double   calib_a, calib_b; /* p_cal = 1 / (1 + exp(-(a * logit(p) + b))),
	                            * of the saved model's p: fitted by
	                            * batch_calib_platt (prior a 1, b
	                            * -ln(scale_pos_weight)) on the validation
	                            * predictions of the model trained before
	                            * split_ms, with the sampling weights; with
	                            * refit, b then moved so that the saved
	                            * model's mean calibrated probability over the
	                            * validation rows is the fitted one's, and
	                            * both then taken calib_trust of the way from
	                            * the prior's centre; NaN when !calibrated */
	char     calib_why_not[160]; /* why not, when trained && !calibrated */
	double   seconds;          /* wall clock of batch_train_run */
} batch_model_report;

/*
 * Trains the model on the rows of s: sorts them canonically in place (event
 * time, key, then label and feature bytes; s stays usable), validates on the
 * last days (o->valid_share), trains binary:logistic with tree_method hist,
 * seed 0, nthread o->threads, base_score the weighted fraud share, and stops
 * after o->early_stop rounds without a better validation figure; the model
 * keeps the best round's trees only and carries the feature names. With
 * o->refit, the saved model is instead trained again for best_round rounds
 * on every row (base_score the fraud share of all of them).
 *
 * VIGIL_OK with *ret_rep filled and either rep.trained and *ret_json /
 * *ret_len the JSON model (malloc'd, NUL-terminated, caller frees), or
 * !rep.trained (fewer than o->min_frauds frauds, a window of one day, no
 * fraud or no legitimate row on one side of the split) and *ret_json NULL.
 * Errors: VIGIL_EINVAL (options out of range), VIGIL_ENOMEM, VIGIL_EINTERNAL
 * (XGBoost failed: *reterr holds its message); *ret_json untouched.
 * Memory on top of the set's: about rows * (nfeat + 8) bytes of training
 * matrix and valid rows * nfeat * 8 of validation matrix (XGBoost's), e.g.
 * 775 MB peak for the process with a million rows of 60 features.
 */
vigil_err batch_train_run(batch_trainset *s, const batch_train_opts *o, char **ret_json,
    size_t *ret_len, batch_model_report *ret_rep, store_diag *reterr);

#endif
