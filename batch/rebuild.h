/* SPDX-License-Identifier: MIT */
/*
 * batch/rebuild.h - private to batch/: the state of one run shared by
 * rebuild.c (the steps of a night), pass.c (the archive passes, workers),
 * tune.c (thresholds), write.c (merging, writing), nightmodel.c (the model
 * step) and part.c (partial files and their merge, batch_merge).
 */
#ifndef VIGIL_BATCH_REBUILD_H
#define VIGIL_BATCH_REBUILD_H

#include <pthread.h>
#include <stdatomic.h>

#include "int.h"
#include "vec.h"
#include "genread.h"
#include "lean.h"
#include "fill.h"
#include "train.h"
#include "days.h"

#define BATCH_GROUP_MAX 128 /* bytes of one group key; longer values are not grouped */

/* One tuned threshold, from the rule file (or from a partial file). */
typedef struct batch_plan {
	char            name[129];
	rules_tune_kind kind;
	double          param, fallback;
	uint64_t        min_samples;
	/* How to read the values (only with a rule file; strings live in prog). */
	const char     *feature;
	uint32_t        feature_len, group_by_len;
	uint32_t        feat_slot;
	bool            feat_txn;
	bool            feat_score; /* the archived score itself (RULES_SLOT_SCORE) */
	/* Rows a tuning leaves out (docs/vigil-rebuild.md, "Thresholds"): a
	 * band on the score reads the scores the model gave, not the cold
	 * start's rule points; a precision target reads mature labels only. */
	bool            model_only, mature_only, grouped;
	const char     *group_by;
	uint32_t        group_slot;
	bool            group_txn;
	vigil_type      group_type;
	char            def[320];   /* rules_threshold_def; "" without a rule file */
} batch_plan;

typedef struct batch_group {
	UT_hash_handle hh;
	batch_sketch  *sk;
	char           key[];
} batch_group;

typedef struct batch_tstate {
	batch_sketch *global;
	batch_group  *groups;
	batch_index   group_ix;
	uint32_t      ngroups;
	uint32_t      feat_hint, group_hint; /* where the names were last found */
	uint32_t      model_hint;
	uint64_t      left_no_model;  /* rows left out: scored without a model */
	uint64_t      left_immature;  /* rows left out: labels not mature at as-of */
} batch_tstate;

void      batch_tstate_fini(batch_tstate *t);
vigil_err batch_tstate_group(batch_tstate *t, const char *key, size_t len, const char *tname,
    batch_sketch **ret_sk, store_diag *reterr);

/* A labelled transaction, in the run's label pool (no per-label malloc
 * or hash handle: pass 1 adds one per labelled transaction of the window,
 * and uthash's inserts and table doublings were half of that pass). */
typedef struct batch_label {
	int64_t        time;
	bool           fraud;
	atomic_bool    used;
	char           txn_id[];
} batch_label;

/* Index keys (batch_index_find) of a label and a card. */
static inline const char *batch_label_keyof(const void *n) { return ((const batch_label *)n)->txn_id; }
static inline const char *batch_card_keyof(const void *n) { return ((const batch_card *)n)->key; }

typedef struct batch_reader_ctx {
	uint64_t corrupt;
	char     where[256];
} batch_reader_ctx;

typedef struct batch_run batch_run;

/* Records decoded ahead so their cache misses overlap (pass.c). */
#define BATCH_PIPE 8

typedef struct batch_pending {
	uint64_t seq;
	/* xxh64 of the card, txn, merchant and terminal ids: partition, index
	 * lookups, kept samples and usual merchants all use these. */
	uint64_t ch, lh, mh, th;
} batch_pending;

/* One tuned threshold's input from one pending record. */
typedef struct batch_pval {
	double        v;
	batch_sketch *gsk;     /* the record's group's sketch, or NULL */
	int32_t       key;     /* batch_sketch_key(v), if finite */
	bool          present; /* the record has a numeric value */
	bool          finite;
} batch_pval;

/* A pipeline slot's copy of the record's payload: the lean decoding points
 * into it, and the reader's buffer moves on before the slot is applied. */
typedef struct batch_payload {
	uint8_t *p;
	size_t   cap;
} batch_payload;

/*
 * With several workers one reader (the calling thread) reads the archive
 * once, routes each score record by the hash of its card id and appends it
 * to a chunk of its worker; full chunks go to the worker through a small
 * queue (BATCH_FEED_DEPTH chunks per worker in flight) and come back empty.
 */
#define BATCH_CHUNK_BYTES (256u << 10)
#define BATCH_FEED_DEPTH  4

typedef struct batch_chunk {
	struct batch_chunk *next;
	uint8_t            *buf;
	size_t              cap, used;
} batch_chunk;

/* One record in a chunk; its payload follows, the next entry is 8-aligned.
 * The reader's card-id scan rides along: the id's place in the payload and
 * its hash (cid_len BATCH_NO_CID when the scan found none), so that the
 * worker, once its decoder has seen the same id, does not hash it again. */
typedef struct batch_entry {
	uint64_t    seq, offset;
	const char *segment; /* a name in the feed's list: lives as long as the run */
	uint64_t    ch;
	uint32_t    len, cid_off, cid_len;
} batch_entry;

#define BATCH_NO_CID UINT32_MAX

typedef struct batch_segname {
	struct batch_segname *next;
	UT_hash_handle        hh;  /* in batch_feed.by_name */
	char                  name[];
} batch_segname;

typedef struct batch_feed {
	pthread_mutex_t mu;
	pthread_cond_t  not_empty, not_full;
	bool            done;     /* the reader has queued everything */
	batch_segname  *names;    /* segment names seen, newest first */
	batch_segname  *by_name;  /* the same, by name (several archives interleave) */
} batch_feed;

typedef struct batch_worker {
	batch_run      *run;
	uint32_t        index;
	uint64_t        part; /* hash % nparts_total that this worker owns */
	pthread_t       tid;
	vigil_vec       cards;  /* batch_card *: every card of this worker, in creation order */
	batch_pool      pool;   /* the cards' memory */
	batch_ent_node *merchants, *terminals;
	batch_index     card_ix, merchant_ix, terminal_ix;
	batch_tstate   *ts;
	uint32_t        nts;
	store_scored_lean *lean; /* BATCH_PIPE decoded records */
	batch_payload   payload[BATCH_PIPE];
	batch_pending   pend[BATCH_PIPE];
	char            cur_currency[4]; /* the last currency seen, and its exponent */
	int             cur_exp;
	/* Fed mode (batch_feed): the chunk being filled by the reader, full ones
	 * queued for this worker (head..tail), empty ones to reuse; all but
	 * `filling` under feed.mu. */
	batch_chunk    *filling, *q_head, *q_tail, *free_chunks;
	uint32_t        queued;
	batch_pval     *pvals;  /* BATCH_PIPE x nplans */
	uint32_t        npend;
	uint64_t        records, bad, labels_used, corrupt;
	uint64_t        first_seq, last_seq;
	char            bad_where[256], corrupt_where[256];
	vigil_vec       ids, idh; /* collect_ids: txn_ids (NUL-ended) and their xxh64 */
	uint64_t        label_digest; /* collect_ids: sum of batch_label_mix of the labelled */
	batch_trainset *train;  /* this worker's training rows (NULL: no model) */
	uint64_t        train_seen, train_other_layout, train_no_vector;
	vigil_err       rv;
	store_diag      diag;
} batch_worker;

struct batch_run {
	batch_opts     opts;
	batch_windows  w;
	char           archive_dir[4096]; /* <datadir>/archive */
	const char    *archive_dirs[BATCH_MAX_ARCHIVES]; /* what is read, sorted by path */
	uint32_t       narchive_dirs;
	uint64_t       t0;
	rules_prog    *prog;
	batch_plan    *plans;
	uint32_t       nplans;
	uint32_t       ntxn; /* transaction-field slots: 0 .. ntxn-1 */
	uint32_t       ntxn_used; /* slots 0 .. ntxn_used-1 cover every plan's txn fields */
	store_gen     *prev; /* current generation before this run, or NULL */
	store_gen_cards *prev_cards; /* its cards, for first_seen (batch_card_put) */
	bool           prev_cards_off; /* not readable: carry nothing more */
	store_genw    *gw;
	batch_pool     label_pool; /* the batch_label nodes (batch_labels_free) */
	batch_index    label_ix;
	uint64_t       nlabels, max_labels, max_entities;
	atomic_uint_fast64_t entities;
	atomic_bool    stop;
	uint64_t       nparts_total;
	batch_worker  *workers;
	uint32_t       nworkers;
	batch_feed     feed;
	bool           feed_ready;
	uint64_t       bytes_est, pass1_records, pass1_bytes;
	double         prior;
	batch_reported reported; /* cards with a fraud known at as-of (batch_card_put) */
	/* the nightly model: training rows have event time in [train_from, train_to) */
	bool           train_on;
	/* the current generation's model and meta, carried over instead of
	 * training (train_every_ms), or when training makes none */
	void          *carry_json, *carry_meta_raw;
	size_t         carry_json_len, carry_meta_len;
	json_t        *carry_meta; /* carry_meta_raw decoded */
	/* With a model to carry, the workers keep only the fraud rows: the
	 * carry needs their count alone (model_carry_put). If it retrains
	 * after all, rescan is set and batch_rebuild reads the window again
	 * with every row (full_rows). */
	bool           frauds_only, full_rows, rescan;
	int64_t        train_from, train_to;
	uint64_t       layout;
	batch_train_opts topts;
	batch_trainset *train;  /* the workers' sets merged (batch_run_train) */
	batch_summary  sum;
	bool           collect_ids; /* days.c: workers keep their txn_ids */
};

vigil_err batch_run_init(batch_run *r, const batch_opts *opts, store_diag *reterr);
void      batch_run_fini(batch_run *r);
vigil_err batch_run_begin(batch_run *r, store_diag *reterr);
vigil_err batch_run_aggregate(batch_run *r, store_diag *reterr);
vigil_err batch_run_merge_workers(batch_run *r, store_diag *reterr);
vigil_err batch_run_sorted_cards(batch_run *r, batch_card ***ret_v, size_t *ret_n);
void      batch_run_state_bytes(batch_run *r);
/* Writes one card's profile into the new generation, first_seen carried
 * over from the previous generation when earlier. Cards in ascending id
 * order are cheapest. */
vigil_err batch_card_put(batch_run *r, const char *key, store_card_profile *p);
vigil_err batch_run_finish(batch_run *r, batch_ent_node **merchants,
    batch_ent_node **terminals, batch_tstate *ts, store_diag *reterr);
/* Finds or adds the counters of key in map (and its index ix). */
vigil_err batch_ent_get(batch_ent_node **map, batch_index *ix, const char *key, size_t len,
    batch_ent **ret_a);
/* Same, with h = batch_index_hash(key, len) already computed. */
vigil_err batch_ent_get_h(batch_ent_node **map, batch_index *ix, uint64_t h, const char *key,
    size_t len, batch_ent **ret_a);
void      batch_worker_fini(batch_worker *wk);

/* Merges the workers' rows and trains the nightly model into the new generation
 * ("model.json", "model.meta"), or carries the current one over when training
 * makes none; fills r->sum.model. No model (cold start, off) is not an error. */
vigil_err batch_run_train(batch_run *r, store_diag *reterr);
#define BATCH_NIGHTLY_ROUNDS 80 /* every nightly model's rounds (docs/model.md "Rounds") */
/* The training options a rebuild with opts uses (nightly defaults, then
 * opts' model settings); a test that retrains from the archive uses them. */
void      batch_train_opts_nightly(const batch_opts *opts, batch_train_opts *ret);

/* pass.c: pass 2 over [r->w.from, r->w.as_of) with t workers (t 1: this
 * thread), into new r->workers; run false: only makes the empty workers. */
vigil_err batch_run_workers(batch_run *r, uint32_t t, bool run, store_diag *reterr);
/* pass.c: one label of pass 1 (the latest known at as-of wins). */
vigil_err batch_label_add(batch_run *r, const char *txn_id, int64_t t, bool fraud,
    const char *segment, uint64_t offset, store_diag *reterr);
/* write.c: adds src's sketches (plan i) into dst's. */
vigil_err batch_tstate_merge(batch_run *r, uint32_t i, batch_tstate *dst, const batch_tstate *src,
    store_diag *reterr);

/* pass.c: frees the labels of pass 1; the fed mode's chunks and names. */
void      batch_labels_free(batch_run *r);
void      batch_feed_fini(batch_run *r);
/* tune.c: the plans of the rule file's tuned thresholds (batch_run_init);
 * the thresholds tuned from ts, or carried over without a rule file. */
vigil_err batch_plans_from_prog(batch_run *r, store_diag *reterr);
vigil_err batch_put_thresholds(batch_run *r, batch_tstate *ts, store_diag *reterr);
vigil_err batch_carry_thresholds(batch_run *r, store_diag *reterr);
/* write.c: every worker's cards, in key order, into the new generation. */
vigil_err batch_put_cards(batch_run *r, store_diag *reterr);
/* nightmodel.c: keeps the current model to carry over (--train-every);
 * merges the workers' training rows into r->train (a second call adds
 * nothing). */
void      batch_model_carry_decide(batch_run *r);
vigil_err batch_train_collect(batch_run *r, store_diag *reterr);

/* part.c: writes this partition's share (after batch_run_merge_workers). */
vigil_err batch_part_write(batch_run *r, const char *path, store_diag *reterr);

#endif
