/* SPDX-License-Identifier: MIT */
/*
 * batch/batch.h - the nightly batch recomputer behind vigil-rebuild
 * (DESIGN.md "Contracts" 6, docs/vigil-rebuild.md).
 *
 * batch_rebuild() reads the archive window [as_of - window, as_of) and the
 * labels known at as_of (label time <= as_of), computes the per-card,
 * per-merchant and per-terminal profiles and tunes every batch-tuned
 * threshold of a rule file, then writes feature generation N+1 and makes it
 * current atomically (store_genw_*). It is deterministic (same archive and
 * as_of give byte-identical tables), idempotent (an as_of already current is
 * a no-op unless forced) and failure-safe (any error aborts the generation;
 * CURRENT is untouched).
 *
 * Partitioned runs: with part_count = N > 1 and an out_path, batch_rebuild()
 * computes the key-hash partition part_index of N into a partial file
 * instead of a generation; batch_merge() joins the N partial files into one
 * generation equal to the single-run result.
 *
 * The library never prints; errors come back as vigil_err plus a one-line
 * store_diag naming the place (segment+offset, file, threshold).
 */
#ifndef VIGIL_BATCH_H
#define VIGIL_BATCH_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "gen.h"
#include "vigil.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Caps (every input-driven size has one). */
#define BATCH_MAX_THREADS      64
#define BATCH_MAX_ARCHIVES     256 /* --archive directories of one run */
#define BATCH_MAX_PARTS        4096
#define BATCH_MAX_WINDOW_MS    (3660LL * VIGIL_MS_PER_DAY) /* ten years */
#define BATCH_MAX_GROUPS       100000  /* groups per tuned threshold */
#define BATCH_MAX_THRESHOLDS   256     /* thresholds reported in a summary */

typedef struct batch_opts {
	const char *datadir;      /* required: "<datadir>/archive", "<datadir>/features" */
	/* Archive directories to read instead of <datadir>/archive (narchives
	 * 0): several replicas' archives, merged by event time, each txn_id
	 * once (docs/vigil-rebuild.md, "Several archives"). At most
	 * BATCH_MAX_ARCHIVES; the strings must outlive the run. */
	const char *const *archives;
	uint32_t    narchives;
	int64_t     as_of_ms;     /* exclusive end of the window; default: today 00:00 UTC */
	int64_t     window_ms;    /* default 90 days */
	const char *rules_path;   /* rule file whose thresholds are tuned; NULL: carry
	                           * the current generation's thresholds over unchanged */
	bool        force;        /* rebuild even if as_of is already current */
	uint32_t    part_index, part_count; /* key-hash partition; count 0 or 1 = all */
	const char *out_path;     /* partial file written when part_count > 1 */
	uint32_t    threads;      /* worker threads (in-process partitions); 0 = 1 */
	uint32_t    keep;         /* generations kept by store_genw_commit; 0 = default */
	uint64_t    max_labels;   /* cap on distinct labelled txn_ids; 0 = 64M */
	uint64_t    max_entities; /* cap on distinct cards; 0 = 200M */
	/* The nightly model (docs/model.md): trained on the vectors archived with
	 * the scores of [as_of - label_maturity - train_window, as_of -
	 * label_maturity) and the labels known at as_of; a mature transaction
	 * with no fraud label counts as legitimate unless labelled_only. */
	bool        model_off;         /* train no model (the generation has none) */
	int64_t     train_window_ms;   /* default 28 days */
	int64_t     label_maturity_ms; /* default 7 days */
	bool        labelled_only;     /* train on labelled transactions only */
	uint32_t    model_min_frauds;  /* cold start below this; 0 = default 50 */
	uint64_t    model_max_rows;    /* training rows kept; 0 = default 100,000 */
	/* 0: train every run. Else a single run (not --partition/--merge)
	 * carries the current generation's model over, unchanged, while it was
	 * trained as of less than train_every_ms before as_of_ms (same input
	 * layout) and the training window holds fewer than 1.25 times the
	 * frauds it was trained on; it trains when the model is that old,
	 * absent, of another layout, newer than as_of_ms, or the frauds grew. */
	int64_t     train_every_ms;
	/* Called from one reading thread about every 64k records (never
	 * concurrently; may be NULL): records read so far and an estimate of
	 * the bytes the whole run reads. */
	void      (*progress)(void *arg, uint64_t records, uint64_t bytes_total_est);
	/* Same, with the bytes read so far (for an ETA); called instead of
	 * progress when set. */
	void      (*progress_bytes)(void *arg, uint64_t records, uint64_t bytes_done,
	    uint64_t bytes_total_est);
	void       *progress_arg;
	/* Day aggregates kept between the runs of one process (batch_days_new;
	 * NULL: none): each UTC day of the window is aggregated once and
	 * merged into the windows, and read again only when something it
	 * depends on changed. See batch_days_new. */
	struct batch_days *days;
} batch_opts;

/*
 * Day aggregates, kept in memory between the nightly runs of one process
 * (vigil-replay --nightly). A run with opts.days aggregates each UTC day of
 * its window on its own (cards, merchants, terminals, threshold sketches,
 * training rows) and merges the days into the 7/30/90-day windows. A day is
 * read from the archive again only when the run cannot reuse it: its
 * records may have changed (it has records in a segment still open, or the
 * closed segments holding it are not the ones it was read from), a label of
 * one of its transactions changed, it entered the training window or the
 * label maturity, or the run's settings (rule file, window, model options,
 * threads) differ. The result equals a run without it up to the rounding
 * of the amount sums (docs/vigil-rebuild.md, "Day aggregates"). Runs whose
 * as-of, window, maturity or training window are not whole UTC days, and
 * partitioned or several-archive runs, read everything as without it.
 * Not thread-safe: one run at a time.
 */
typedef struct batch_days batch_days;

batch_days *batch_days_new(void);      /* NULL on ENOMEM */
void        batch_days_free(batch_days *d); /* NULL is a no-op */

/* Fills *ret with the defaults above (datadir NULL, as_of = today 00:00 UTC). */
void batch_opts_default(batch_opts *ret);

/*
 * For a program that trains (vigil-rebuild, vigil-replay --nightly,
 * bench-train): call first in main. XGBoost's OpenMP threads spin for
 * 300,000 rounds before they sleep unless OMP_WAIT_POLICY=passive, and
 * libgomp reads that only when it is loaded, before main: with two
 * trainings side by side on 2 cores (or one beside vigild) 70% of the CPU
 * went to libgomp's spin loop and a nightly replay ran ~5x slower;
 * bench-train alone spends 71.4 CPU-s against 44.9 (docs/model.md,
 * "Measurements"). So when OMP_WAIT_POLICY is unset, this sets it to
 * passive and executes /proc/self/exe again with the same argv and
 * environment. A policy the user set (active too) is kept, and so is a
 * GOMP_SPINCOUNT (GOMP_SPINCOUNT=300000 gives libgomp's default back). If
 * the re-execution fails (no /proc), the program goes on with libgomp's
 * default.
 */
void batch_omp_passive(char **argv);

typedef struct batch_thresh_summary {
	char            name[129];
	const char     *kind;        /* "percentile", "alert_rate", "precision" (static) */
	uint32_t        groups;      /* group values stored (tuned groups) */
	uint32_t        groups_fallback; /* groups with too few samples (use the global) */
	double          old_value;   /* global value in the previous generation (NaN: none) */
	double          new_value;   /* global value stored now */
	uint64_t        samples;     /* data behind the global value */
	bool            tuned;       /* false: fallback kept (why says why) */
	char            why[256];    /* not tuned: "too few samples: 40 of 1000", ... */
} batch_thresh_summary;

typedef struct batch_summary {
	int64_t  as_of_ms, window_ms;
	uint64_t records_read;     /* score records in the window */
	uint64_t records_bad;      /* undecodable payloads, skipped (first in bad_where) */
	uint64_t corrupt_records;  /* corrupt stretches the archive reader skipped */
	uint64_t labels_read;      /* transactions with a label known at as_of (label time
	                            * <= as_of; one however many labels it has) */
	uint64_t labels_used;      /* matched to a transaction of the window */
	uint64_t labels_unmatched; /* no transaction of the window has that txn_id (0 in a partial) */
	uint64_t labels_future;    /* label time > as_of: ignored */
	uint64_t cards, merchants, terminals; /* rows written */
	uint64_t first_seen_carried; /* cards whose first_seen came from the previous generation */
	char     first_seen_note[256]; /* why carrying stopped early ("" if it did not) */
	uint64_t first_seq, last_seq;         /* archive sequence range read */
	uint32_t archives;         /* archive directories read */
	uint64_t duplicates;       /* several archives: score records of a txn_id already read
	                            * (a failover retry archived by two replicas), dropped */
	uint32_t nthresholds;
	batch_thresh_summary thresholds[BATCH_MAX_THRESHOLDS];
	uint64_t generation;       /* written (or the current one when skipped) */
	bool     skipped;          /* as_of already current: nothing done */
	bool     partial;          /* a --partition run: out_path written, no generation */
	uint32_t part_index, part_count;
	char     rules_hash[72];   /* content hash of the rule file ("" if none) */
	char     bad_where[256];   /* place + reason of the first bad record */
	char     warning[512];     /* built, but something is amiss: an empty window,
	                            * CURRENT named a missing generation (nothing
	                            * carried over), or pruning an old one failed;
	                            * "" if not */
	double   duration_s;
	uint32_t days_read;        /* opts.days: days read from the archive this run */
	uint32_t days_reused;      /* ... and days merged from the earlier runs' */
	uint64_t peak_state_bytes; /* aggregation state at its largest (estimate) */
	/* The nightly model. */
	struct {
		bool     trained;       /* the generation has a model */
		bool     carried;       /* ... the previous generation's, carried over
		                         * (train_every_ms, or this night could not
		                         * train: why_not); the figures are its meta's */
		uint64_t carried_from;  /* that generation */
		bool     read_again;    /* a model to carry, but its window's frauds had
		                         * grown: the window was read twice (the first
		                         * time for the fraud rows alone) */
		int64_t  trained_as_of_ms; /* the as-of the model was trained at */
		char     why_not[200];  /* why not trained: cold start, turned off, ... */
		uint64_t rows, frauds;  /* training + validation rows kept, frauds among them */
		uint64_t rows_seen;     /* mature rows of the training window read */
		uint64_t rows_other_layout; /* vectors of another build's layout, not used */
		uint64_t rows_no_vector;    /* scores archived without a vector (older vigild) */
		uint64_t valid_rows, valid_frauds;
		uint32_t rounds, best_round, features;
		double   valid_auc, valid_ap, train_auc;
		int64_t  train_from_ms, train_to_ms; /* the mature window read */
		double   seconds;
		uint64_t json_bytes;
	} model;
} batch_summary;

/*
 * Runs one rebuild (or one partition of it) as opts says. VIGIL_OK:
 * *ret_summary filled (skipped = true for a no-op). Errors: VIGIL_EINVAL
 * (options), VIGIL_EBUSY (another rebuild holds the lock), VIGIL_ESYNTAX /
 * VIGIL_ETYPE (rule file; reterr holds "file:line:col: message"),
 * VIGIL_EIO / VIGIL_ECORRUPT / VIGIL_EVERSION (store), VIGIL_ETOOBIG (a cap),
 * VIGIL_ENOMEM; *reterr filled, no generation made current.
 */
vigil_err batch_rebuild(const batch_opts *opts, batch_summary *ret_summary,
    store_diag *reterr);

/*
 * Joins the partial files paths[0..n) written by batch_rebuild with
 * part_count = n (each index 0..n-1 exactly once, same as_of, window and
 * rule file) into generation N+1 of opts->datadir. opts->force and
 * opts->rules_path (must hash like the partials' rule file) apply as for
 * batch_rebuild; the window, as_of and partition fields are taken from the
 * files, and so are the model's (train_window_ms, label_maturity_ms,
 * labelled_only, model_min_frauds, model_max_rows): the partitions' training
 * rows, merged, train the model a single run would (model_off drops it,
 * threads trains it). VIGIL_ECORRUPT / VIGIL_EVERSION / VIGIL_EINVAL name
 * the file.
 */
vigil_err batch_merge(const batch_opts *opts, const char *const *paths, uint32_t n,
    batch_summary *ret_summary, store_diag *reterr);

/*
 * Points CURRENT at the generation before the current one (or at
 * `generation` if non-zero). *ret_from / *ret_to: the old and new current
 * generation. VIGIL_ENOTFOUND if there is nothing to roll back to.
 */
vigil_err batch_rollback(const char *datadir, uint64_t generation, uint64_t *ret_from,
    uint64_t *ret_to, store_diag *reterr);

/* A new JSON object for s (NULL on ENOMEM); stable field names, see
 * docs/vigil-rebuild.md. */
json_t *batch_summary_json(const batch_summary *s);

/* Parses "90d", "12h", "30m", "45s", "1500ms" or a bare number of days into
 * ms; VIGIL_EINVAL for anything else or a value <= 0 or over
 * BATCH_MAX_WINDOW_MS. */
vigil_err batch_duration_parse(const char *s, int64_t *ret_ms);

/* Parses "i/N" (0 <= i < N <= BATCH_MAX_PARTS); VIGIL_EINVAL otherwise. */
vigil_err batch_partition_parse(const char *s, uint32_t *ret_index, uint32_t *ret_count);

/* The partition (0..count-1) a key belongs to: xxh64(key) mod count. */
uint32_t batch_key_partition(const char *key, size_t len, uint32_t count);

/* ---- Threshold math (exposed for tests and the replay tool) ---- */

/*
 * A mergeable, bounded-memory summary of a stream of numbers with their
 * labels: log-spaced buckets of relative width BATCH_SKETCH_ALPHA, each
 * keeping count, labelled and fraud counts, and the exact smallest and
 * largest value it saw. Answers are exact whenever each bucket holds one
 * distinct value, else within BATCH_SKETCH_ALPHA relative (docs).
 */
#define BATCH_SKETCH_ALPHA 0.001
typedef struct batch_sketch batch_sketch;

batch_sketch *batch_sketch_new(void);              /* NULL on ENOMEM */
void          batch_sketch_free(batch_sketch *sk); /* NULL is a no-op */
/* label: -1 none, 0 legit, 1 fraud. NaN and infinities are ignored. */
vigil_err     batch_sketch_add(batch_sketch *sk, double v, int label);
/* Starts loading the bucket v would go to (a hint; no effect on results). */
void          batch_sketch_prefetch(const batch_sketch *sk, double v);
/* Adds every bucket of src into dst (exact, order-independent). */
vigil_err     batch_sketch_merge(batch_sketch *dst, const batch_sketch *src);
uint64_t      batch_sketch_count(const batch_sketch *sk);
uint64_t      batch_sketch_labelled(const batch_sketch *sk);
/* Nearest-rank percentile p in (0,100]: the smallest stored value x with
 * count(<= x) >= ceil(p/100 * n). VIGIL_ENOTFOUND if empty. */
vigil_err     batch_sketch_percentile(const batch_sketch *sk, double p, double *ret_v);
/* Smallest v with count(>= v) / n <= rate (rate in [0,1]). */
vigil_err     batch_sketch_alert_rate(const batch_sketch *sk, double rate, double *ret_v);
/* Smallest v whose precision frauds(>= v) / count(>= v) >= target with
 * count(>= v) >= min_alerts; transactions without a fraud label count as
 * legitimate. VIGIL_ENOTFOUND if no v qualifies. */
vigil_err     batch_sketch_precision(const batch_sketch *sk, double target,
    uint64_t min_alerts, double *ret_v);
/* Why batch_sketch_precision found no v: the highest precision any v with
 * count(>= v) >= min_alerts reaches (*ret_best, NaN if no v has that many)
 * and the frauds in the sketch (*ret_frauds). */
vigil_err     batch_sketch_precision_best(const batch_sketch *sk, uint64_t min_alerts,
    double *ret_best, uint64_t *ret_frauds);

#ifdef __cplusplus
}
#endif

#endif /* VIGIL_BATCH_H */
