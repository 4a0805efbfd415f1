/* SPDX-License-Identifier: MIT */
/*
 * tools/replay/metrics.h - detection and service metrics of a replay
 * (docs/vigil-replay.md "Metrics"): confusion matrix at the alert band
 * (review or decline), precision, recall, F1, ROC AUC and average precision
 * of the score, card precision in the top k cards per day, per rule hits and
 * precision, per fraud pattern recall, AUC and AP, the score distribution
 * and latency percentiles. Observations are added one transaction at a time
 * in event-time order; memory is bounded by the distinct scores and the
 * distinct labelled cards (under 100 bytes each), never by the number of rows.
 * The library never prints except through metrics_print.
 */
#ifndef VIGIL_METRICS_H
#define VIGIL_METRICS_H

#include <stdio.h>

#include <jansson.h>

#include "vigil.h"

#ifdef __cplusplus
extern "C" {
#endif

#define METRICS_MAX_PATTERNS 16   /* distinct fraud_pattern names tracked; more -> "other" */
#define METRICS_MAX_RULES    1024
#define METRICS_MAX_SCORES   100000 /* distinct score values kept */
#define METRICS_RANK_SUB     4096   /* tie-break steps within one score (rank_sub) */

typedef struct metrics metrics;

typedef struct metrics_opts {
	uint32_t           nrules;     /* rules of the rule file (by index) */
	const char *const *rule_names; /* nrules names, copied */
	uint32_t           topk;       /* cards per day for card precision; 0 = 100 */
} metrics_opts;

/* One scored transaction. */
typedef struct metrics_obs {
	const char     *card_id;
	int64_t         event_time_ms;
	int32_t         score;
	vigil_decision  decision;
	int             label;        /* -1 unknown, 0 legit, 1 fraud */
	const char     *pattern;      /* fraud_pattern or NULL/"" */
	const uint16_t *hits;         /* rule indices that fired (active and shadow) */
	uint32_t        nhits;
	uint32_t        latency_us;   /* 0 = not measured */
	int32_t         rank_sub;     /* ties in score broken by this, 0..METRICS_RANK_SUB-1 (the model's
	                               * score scaled); -1 or 0: none */
} metrics_obs;

/*
 * The model's score p as a rank_sub: METRICS_RANK_SUB steps of 1/128 over
 * its log-odds in [-16, 16] (p <= 0: 0, p >= 1: the last step; NaN: -1, no
 * tie-break). Monotone in p, and it keeps apart the high scores where the
 * average precision is made (0.995 and 0.999 are 207 steps apart; 1024
 * equal steps of probability made them one tie).
 */
int32_t   metrics_rank_sub(double p);

/* NULL on ENOMEM or bad opts (nrules over the cap). */
metrics  *metrics_new(const metrics_opts *opts);
void      metrics_free(metrics *m); /* NULL is a no-op */
/* VIGIL_ENOMEM, or VIGIL_ETOOBIG past METRICS_MAX_SCORES distinct scores. */
vigil_err metrics_add(metrics *m, const metrics_obs *o);
/* Optional hint that a metrics_add for this card follows soon: starts
 * loading its table slot, so the add does not wait for memory. */
void      metrics_prefetch(const metrics *m, const char *card_id);
/* Closes the last day (card precision). Call once, after the last add. */
vigil_err metrics_finish(metrics *m);

typedef struct metrics_confusion {
	uint64_t total, labelled, frauds;
	uint64_t tp, fp, tn, fn;          /* positive = decision review or decline */
	uint64_t alerts, declines;        /* over all rows */
	uint64_t decline_tp;              /* declined frauds */
	double   precision, recall, f1;   /* NaN when undefined (0/0) */
	double   alert_rate, decline_rate;
} metrics_confusion;

void metrics_get_confusion(const metrics *m, metrics_confusion *ret);

/* ROC AUC and average precision of the ranking over labelled rows: all
 * frauds (pattern NULL) or one pattern's frauds against all legit rows.
 * The ranking is the score, ties broken by rank_sub (the model's score).
 * NaN when a class is empty. Remaining ties count half (AUC) and are
 * taken as one threshold step (AP). */
double metrics_auc(const metrics *m, const char *pattern);
double metrics_ap(const metrics *m, const char *pattern);

/* Mean over days of the card precision in the top k; NaN if no day. */
double   metrics_card_precision(const metrics *m, uint32_t *ret_days);
/* The same for a perfect ranking: mean over days of min(fraudulent cards, k)
 * / k. Card precision can never exceed it. */
double   metrics_card_precision_best(const metrics *m);

typedef struct metrics_rule {
	const char *name;
	uint64_t    hits, fraud_hits, legit_hits;
	double      precision; /* fraud_hits / (fraud_hits + legit_hits), NaN if 0/0 */
} metrics_rule;

uint32_t metrics_nrules(const metrics *m);
/* Renames the first n rules (n <= metrics_nrules) and drops the rest: for
 * callers that learn rule names while running (server replies). */
vigil_err metrics_set_rules(metrics *m, uint32_t n, const char *const *names);
void     metrics_get_rule(const metrics *m, uint32_t i, metrics_rule *ret);

typedef struct metrics_pattern {
	const char *name;
	uint64_t    rows, alerts, declines;
	double      recall, precision_vs_legit, auc, ap;
} metrics_pattern;

uint32_t metrics_npatterns(const metrics *m);
void     metrics_get_pattern(const metrics *m, uint32_t i, metrics_pattern *ret);

/* Distinct scores in ascending order with their counts by label. */
typedef struct metrics_score_bin {
	int32_t  score;
	uint64_t legit, fraud, unlabelled;
} metrics_score_bin;

uint32_t metrics_nscores(const metrics *m);
void     metrics_get_score(const metrics *m, uint32_t i, metrics_score_bin *ret);
/* Nearest-rank percentile of the score over all rows (p in (0,100]). */
int32_t  metrics_score_percentile(const metrics *m, double p);

/* Latency (microseconds): nearest-rank percentile, bucketed (relative
 * error <= 1/64); 0 if nothing measured. */
uint64_t metrics_latency_count(const metrics *m);
uint32_t metrics_latency_percentile(const metrics *m, double p);
uint32_t metrics_latency_max(const metrics *m);
/* Buckets for plotting: lower bound (us) and count of bucket i. */
uint32_t metrics_latency_nbuckets(void);
void     metrics_latency_bucket(const metrics *m, uint32_t i, uint32_t *ret_lo, uint64_t *ret_n);

/* Everything above as one JSON object (stable names, docs/vigil-replay.md). */
json_t *metrics_to_json(const metrics *m);
/* The terminal summary. */
void    metrics_print(const metrics *m, FILE *out);

#ifdef __cplusplus
}
#endif

#endif /* VIGIL_METRICS_H */
