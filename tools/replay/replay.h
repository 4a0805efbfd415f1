/* SPDX-License-Identifier: MIT */
/*
 * tools/replay/replay.h - private to vigil-replay: the options, a row and
 * its outcome, the label queue, the input source and the replay's state,
 * shared by its files:
 *
 *   main.c     options, rules, the run from start to exit
 *   source.c   rows from a vigil CSV file or an archive (labels joined)
 *   offline.c  the in-process engine: app_score over an in-memory or real
 *              data directory, the nightly rebuilds (batch_rebuild), the
 *              allocator tuning of the offline loop
 *   remote.c   server mode: vigild replicas through the C client, pacing,
 *              per-card senders, vigil-rebuild between days
 *   labels.c   labels queued until their label time, then archived
 *              (offline) or sent (server)
 *   exact.c    --exact: a rule file on the values archived with each score,
 *              against production's archived outcome
 *   results.c  per-transaction JSON lines and the metrics they feed
 *   summary.c  the progress line, the text and JSON summaries, the report
 *
 * metrics.c and report.c (metrics.h, report.h) compute and draw the
 * measures; they are a library of their own (replay_dep).
 */
#ifndef VIGIL_REPLAY_H
#define VIGIL_REPLAY_H

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "app.h"
#include "batch.h"
#include "csv.h"
#include "hashtab.h"
#include "metrics.h"
#include "report.h"
#include "rules.h"
#include "db.h"
#include "vec.h"
#include "vigil.h"
#include "vigil_client.h"

#define RP_MAX_SERVERS     64
#define RP_MAX_CONCURRENCY 256
#define RP_BATCH           8192
#define RP_MAX_HITS        64
#define RP_MAX_ERRORS_SHOWN 20
#define RP_EXACT_CHANGES_MAX 10000 /* --exact: changes listed in the JSON summary */

typedef struct rp_exact rp_exact;

/* ------------------------------ options ------------------------------ */

typedef struct rp_opts {
	const char *csv, *archive;
	int64_t     from_ms, to_ms;
	const char *rules, *compare;
	const char *servers[RP_MAX_SERVERS];
	size_t      nservers;
	double      rate, speed;
	uint32_t    concurrency;
	int64_t     label_delay_ms;
	bool        force_label_delay;
	bool        assume_legit;
	bool        fraud_labels_only;
	bool        nightly;
	bool        exact;     /* --exact: on archived values (exact.c) */
	const char *data;      /* server mode: the server's data dir, for vigil-rebuild */
	const char *work;      /* offline --nightly: where the data dir goes */
	bool        keep_work;
	const char *rebuild;   /* vigil-rebuild program (server mode) */
	const char *tls_cert, *tls_key, *tls_ca, *tls_server_name; /* server mode, tls+tcp:// */
	const char *results, *json, *report;
	uint32_t    topk;
	bool        quiet, progress;
	bool        json_stdout;     /* -j: the JSON summary on stdout instead of text */
	bool        no_model;        /* offline --nightly: rebuilds train no model */
	const char *train_every;     /* --nightly: --train-every as given (NULL: 1d) */
	int64_t     train_every_ms;  /* the model is retrained once it is this old */
	uint32_t    rebuild_threads; /* --nightly: threads of each rebuild */
	bool        rebuild_threads_set; /* given on the command line (server: passed on) */
	int64_t     measure_from_ms; /* rows before this are scored but not measured */
} rp_opts;

/* ------------------------------ rows ------------------------------ */

typedef struct rp_row {
	vigil_txn txn;
	int       label;       /* -1, 0, 1 */
	int64_t   label_time;  /* 0 = none */
	char      pattern[CSV_PATTERN_MAX + 1];
	/* where it was read, for messages: a CSV line, or an archive segment
	 * (its file name, copied: a batch reports after reading on; "" for CSV) and offset */
	uint64_t    line;
	char        segment[NAME_MAX + 1];
	uint64_t    offset;
} rp_row;

typedef struct rp_outcome {
	double         score;       /* 0-100 */
	vigil_decision decision;
	uint32_t       nhits, nshadow;
	uint16_t       hits[RP_MAX_HITS];  /* active, then shadow */
	uint32_t       latency_us;
	uint64_t       generation;
	bool           failed;
	bool           refused; /* not scored: a reused txn_id (offline), or the server refused it */
	bool           late;    /* server: the reply said late (in no velocity window) */
	bool           past_horizon; /* server: past the dedupe horizon (a repeat is not detected) */
	double         model_score; /* NaN: no model */
	uint32_t       nreasons;    /* the model's top features (a model rule fired) */
	struct {
		const char *feature; /* static schema name */
		double      value;
		float       contrib;
	} reasons[APP_REASONS_MAX];
} rp_outcome;

/* ------------------------------ labels ------------------------------ */

/* A label waiting for its time t (labels.c). */
typedef struct rp_label {
	int64_t t;
	bool    fraud;
	char    txn_id[VIGIL_ID_MAX + 1];
	char    card_id[VIGIL_ID_MAX + 1];
} rp_label;

/* Labels waiting for their time: a min-heap on t (labels.c). The cap is
 * far above what a replay holds (a week of labels of a large issuer). */
#define RP_MAX_LABELS 100000000u

typedef struct rp_label_heap {
	vigil_vec v; /* of rp_label, heap-ordered on t */
} rp_label_heap;

/* ------------------------------ input ------------------------------ */

typedef struct rp_archlabel {
	char           txn_id[VIGIL_ID_MAX + 1];
	bool           fraud;
	int64_t        label_time;
	UT_hash_handle hh;
} rp_archlabel;

typedef struct rp_source {
	const char    *name;
	csv_reader    *csv;
	store_reader  *ar;
	store_scored  *scored;   /* archive decode buffer */
	rp_archlabel  *labels;   /* archive: txn_id -> label */
	struct rp_seen *seen;    /* archive: the stretches reported (source.c) */
	uint64_t       bad, corrupt;
	char           corrupt_first[256]; /* "SEGMENT:OFFSET: what" of the first */
	bool           has_patterns, has_labels, end_said; /* end_said: bad rows counted */
} rp_source;

/* ------------------------------ rule names ------------------------------ */

/* Rule index by name for server replies (hits come back as names). */
typedef struct rp_names {
	pthread_mutex_t mu;
	char           *names[METRICS_MAX_RULES];
	int32_t         points[METRICS_MAX_RULES]; /* as the first reply gave them */
	uint32_t        n;
} rp_names;

/* ------------------------------ the replay ------------------------------ */

typedef struct rp {
	rp_opts       o;
	rp_source     src;
	/* rules (offline always; server mode when --rules is given, for names) */
	rules_prog   *prog, *prog2;
	rules_tvals  *tv, *tv2;
	rp_names      names;
	/* offline engine: the one pipeline (app_score) over an in-memory or
	 * real data directory */
	store_db     *db;
	app_rules    *ar;     /* owns prog once the offline engine is open */
	app_model    *model;  /* the current generation's (--nightly), or NULL */
	uint64_t      model_gen;
	uint32_t      models_loaded; /* nights whose generation brought a model */
	json_t       *nights;        /* per nightly rebuild: the model's figures */
	char          first_model_day[16];
	app_work     *aw;
	char          workdir[PATH_MAX];
	bool          own_workdir;
	batch_days   *days;         /* --nightly: the rebuilds' day aggregates */
	/* --exact (exact.c) */
	rp_exact     *ex;
	json_t       *changes;      /* [{txn_id, before, after, exact}] */
	uint64_t      inexact, gens_missing;
	/* server engine */
	vigil_client *client;
	/* labels */
	rp_label_heap labels;
	uint64_t      labels_sent, labels_refused, labels_failed; /* server: said no, no answer */
	/* state */
	int64_t       day;          /* current UTC day number, INT64_MIN before the first row */
	uint32_t      nightly_runs;
	uint64_t      night_ns, last_generation; /* night_ns: in nightly rebuilds, not scoring */
	uint64_t      behind;       /* rows of a UTC day before one already replayed */
	/* outputs */
	FILE         *results;
	metrics      *m, *m2;
	report_data  *rd;           /* --report: what the page shows beyond the metrics */
	uint64_t      rows, failed, not_sent, changed, trans[4][4]; /* not_sent: server, gave up */
	uint64_t      compared;     /* --compare, --exact: rows both sides scored and measured */
	uint64_t      conflicts, refused; /* rows refused: offline a reused txn_id, or the server */
	uint64_t      late, past_horizon; /* server: replies that said so (backfill) */
	uint64_t      t_start_ns;
	int64_t       first_event;
} rp;

/* ---- source.c ---- */

/* Opens --csv or --archive (an archive's labels are read first: a
 * transaction's label may be archived long after it). Messages printed. */
vigil_err rp_source_open(rp_source *src, const rp_opts *o);
void      rp_source_close(rp_source *src);
/* VIGIL_OK: a row; VIGIL_ENOTFOUND: end; other: fatal (message printed).
 * Bad rows are counted in src->bad and skipped. */
vigil_err rp_source_next(rp_source *src, rp_row *row);

/* ---- offline.c ---- */

/* Grows the main thread's heap in populated steps (call first in main). */
void      rp_heap_setup(void);
/* Takes r->prog into r->ar, opens the live state (in memory, or with
 * --nightly a data directory: --work or a temporary one) and binds the
 * thresholds. Messages printed. */
vigil_err rp_offline_open(rp *r);
vigil_err rp_run_offline(rp *r);
/* Closes the live state, removes a temporary data dir; safe if never opened. */
void      rp_offline_close(rp *r);

/* ---- exact.c ---- */

vigil_err rp_exact_open(rp *r);
/* Each archived score: r->m gets production's outcome, r->m2 the file's. */
vigil_err rp_run_exact(rp *r);
void      rp_exact_close(rp *r);
/* The JSON summary's "exact" object and the text summary's lines. */
json_t   *rp_exact_json(rp *r);
void      rp_exact_print(rp *r, FILE *out);

/* ---- remote.c ---- */

/* Index of rule name in t (added with its points when new); -1: t is full. */
int       rp_names_index(rp_names *t, const char *name, int32_t points);
/* Connects to --server replicas; fails when none is reachable within 3 s. */
vigil_err rp_server_open(rp *r);
vigil_err rp_run_server(rp *r);
/* The server answered e: it refused the request (not scored, nor kept). */
bool      rp_refusal(vigil_client_err e);

/* ---- labels.c ---- */

void      rp_labels_init(rp *r);
/* Queues the row's label for when it becomes known. VIGIL_ETOOBIG (message
 * printed) past RP_MAX_LABELS waiting, VIGIL_ENOMEM. */
vigil_err rp_label_queue(rp *r, const rp_row *row);
/* Sends every queued label whose time is <= t. */
vigil_err rp_labels_due(rp *r, int64_t t);
void      rp_labels_fini(rp *r);

/* ---- results.c ---- */

/* Opens --results (fully buffered) and, with --report, r->rd (freed by
 * main); rp_results_close reports a failed write. Messages printed. */
vigil_err rp_results_open(rp *r);
vigil_err rp_results_close(rp *r);
/* Writes the row's result line and adds it to the metrics (and to the
 * --compare metrics with out2). Failed and refused rows are skipped. */
vigil_err rp_observe(rp *r, const rp_row *row, const rp_outcome *out, const rp_outcome *out2);
/* A rule index of an outcome's hits by name (report_data's callback; arg is
 * the rp). */
const char *rp_rule_name_cb(void *arg, uint16_t idx);
/* Metrics named after prog's rules (NULL: none). */
vigil_err rp_metrics_new(rp *r, const rules_prog *prog, metrics **ret);
/* Server mode: room for every rule, named as replies bring them. */
vigil_err rp_metrics_server(rp *r, metrics **ret);

/* ---- summary.c ---- */

/* The progress line on standard error (only with r->o.progress). */
void      rp_progress(rp *r, const rp_row *row, bool final);
void      rp_summary_print(rp *r, double secs);
/* The JSON summary to path ("-" = stdout: --json; a file: --summary FILE);
 * VIGIL_EIO (message printed) when it cannot be written. */
vigil_err rp_summary_write_json(rp *r, double secs, const char *path);
/* --report FILE.html; VIGIL_EIO (message printed). */
vigil_err rp_report_write(rp *r, double secs);

#endif /* VIGIL_REPLAY_H */
