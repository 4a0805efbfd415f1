/* SPDX-License-Identifier: MIT */
/*
 * tools/replay/metrics.h - detection and service metrics of a replay
 * (docs/vigil-replay.md "Metrics"): confusion matrix at the alert band
 * (review or decline), precision, recall, F1, ROC AUC and average precision
 * of the score, and of the score and of model.score alone over the rows a
 * model scored, card precision in the top k cards per day, per rule hits and
 * precision, per fraud pattern recall, AUC and AP, the score distribution
 * and latency percentiles. Observations are added one transaction at a time
 * in event-time order; memory is bounded by the distinct scores and the
 * distinct labelled cards (32 bytes each) and the ranking bins (METRICS_RANK_SUB
 * per ranking), never by the number of rows.
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
#define METRICS_MAX_SCORES   100000 /* distinct whole-number scores kept (distribution) */
#define METRICS_RANK_SUB     4096   /* ranking bins of a score (metrics_rank_sub) */

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
	double          score;        /* the 0-100 score (rules_result.score) */
	vigil_decision  decision;
	int             label;        /* -1 unknown, 0 legit, 1 fraud */
	const char     *pattern;      /* fraud_pattern or NULL/"" */
	const uint16_t *hits;         /* rule indices that fired (active and shadow) */
	uint32_t        nhits;
	uint32_t        latency_us;   /* 0 = not measured */
	double          model_score;  /* model.score, 0..1; NaN or < 0: no model scored the row */
} metrics_obs;

/*
 * The ranking bin of a probability p (a score is ranked as score / 100):
 * METRICS_RANK_SUB steps of 1/128 over its log-odds in [-16, 16] (p <= 0:
 * 0, p >= 1: the last step; NaN: -1). Monotone in p, and it keeps apart the
 * high scores where the average precision is made (0.995 and 0.999 are 207
 * steps apart; 1024 equal steps of probability made them one tie). The
 * score and model.score are binned alike, so a score that ranks as the
 * model does gets its AUC and AP.
 */
int32_t   metrics_rank_sub(double p);

/* The rankings AUC, AP and card precision are measured on. */
typedef enum metrics_rank {
	METRICS_BY_SCORE = 0,      /* the score, every labelled row */
	METRICS_BY_SCORE_MODELLED, /* the score, the rows a model scored */
	METRICS_BY_MODEL,          /* model.score alone, the rows a model scored */
	METRICS_NRANKS
} metrics_rank;

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

/* ROC AUC and average precision of a ranking (its bins, metrics_rank_sub)
 * over labelled rows: all frauds (pattern NULL) or one pattern's frauds
 * against all legit rows. NaN when a class is empty. Ties (one bin) count
 * half (AUC) and are taken as one threshold step (AP). metrics_auc and
 * metrics_ap: METRICS_BY_SCORE. */
double metrics_auc(const metrics *m, const char *pattern);
double metrics_ap(const metrics *m, const char *pattern);
double metrics_auc_by(const metrics *m, metrics_rank by, const char *pattern);
double metrics_ap_by(const metrics *m, metrics_rank by, const char *pattern);
/* Rows a model scored (model_score given), and the labelled ones among them. */
uint64_t metrics_modelled(const metrics *m, uint64_t *ret_labelled);

/* Mean over days of the card precision in the top k (each card ranked by
 * its highest score of the day); NaN if no day. metrics_card_precision:
 * METRICS_BY_SCORE, every day; _by METRICS_BY_SCORE_MODELLED: the score
 * over the days a model scored some row; METRICS_BY_MODEL: the cards ranked
 * by their highest model.score of the day, over those days. Each ranking
 * leaves out the cards it caught itself (the two over the model's days
 * start from the same first day). */
double   metrics_card_precision(const metrics *m, uint32_t *ret_days);
double   metrics_card_precision_by(const metrics *m, metrics_rank by, uint32_t *ret_days);
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

/* Whole-number scores (floor of the score) in ascending order with their
 * counts by label. */
typedef struct metrics_score_bin {
	int32_t  score;
	uint64_t legit, fraud, unlabelled;
} metrics_score_bin;

uint32_t metrics_nscores(const metrics *m);
void     metrics_get_score(const metrics *m, uint32_t i, metrics_score_bin *ret);
/* Nearest-rank percentile of the score over all rows (p in (0,100]), as
 * a whole number (its floor). */
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
