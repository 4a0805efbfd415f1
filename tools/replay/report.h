/* SPDX-License-Identifier: MIT */
/*
 * tools/replay/report.h - the replay's HTML report: one self-contained
 * page (inline CSS and SVG, no script, no network: it renders offline and
 * as a mail attachment) for an analyst: the summary figures; money (fraud
 * amount caught, legitimate amount declined or sent to review); the score
 * histogram with the review and decline bands; the precision-recall curve
 * with the operating point; per rule precision with shadow and
 * negative-points rules marked; per fraud pattern recall; the day-by-day
 * trend across the nightly rebuilds (alert rate, precision, recall, the
 * model's validation figures); the top alerted transactions with their
 * reasons; with --compare, the side-by-side decision diff; latency.
 *
 * report_data collects what the metrics (metrics.h) do not keep: per day
 * counts, amounts, the top alerted rows and the changed decisions. It is
 * bounded: REPORT_MAX_DAYS days, REPORT_TOP rows of each list.
 */
#ifndef VIGIL_REPORT_H
#define VIGIL_REPORT_H

#include <stdio.h>

#include <jansson.h>

#include "metrics.h"

#define REPORT_MAX_DAYS  3660  /* ten years of days; later days are not drawn */
#define REPORT_TOP       25    /* top alerted rows, changed decisions shown */
#define REPORT_MAX_HITS  8     /* rule names kept per listed row */
#define REPORT_ID_MAX    64

/* Per rule, aligned with the metrics' rule indices (report_info.rule_flags). */
enum {
	REPORT_RULE_KNOWN    = 1, /* the flags and points below are set */
	REPORT_RULE_SHADOW   = 2, /* mode shadow: evaluated, adds no points */
	REPORT_RULE_DISABLED = 4,
};

typedef struct report_info {
	const char *title;       /* e.g. "vigil-replay: data.csv with default.rules" */
	const char *input;       /* CSV path or archive directory */
	const char *rules;       /* rule file path */
	const char *mode;        /* "offline" or "server" */
	double      seconds;     /* wall time of the replay */
	double      throughput;  /* transactions per second */
	uint64_t    bad_rows;    /* input rows skipped */
	uint32_t    nightly_runs;/* rebuilds run (0 = none) */
	const char *compare;     /* --compare rule file or NULL */
	uint64_t    changed;     /* decisions that differ under compare */
	/* decision bands of the rule file (score >= review_at: review), or
	 * have_bands false (server mode without --rules) */
	bool        have_bands;
	double      review_at, decline_at;
	/* the bands in force at the end (a tuned band's value as the last
	 * night set it; the rule file's numbers without nightly rebuilds) */
	double      review_in_force, decline_in_force;
	/* per metrics rule index (metrics_nrules of m): REPORT_RULE_* and
	 * points; NULL when unknown */
	const uint8_t *rule_flags;
	const int32_t *rule_points;
	/* vigil-replay's "nights" array (one object per nightly rebuild:
	 * as_of, generation, model_trained, valid_auc, valid_ap, why_not), or
	 * NULL */
	const json_t *nights;
} report_info;

/* ---- the collector ---- */

typedef struct report_data report_data;

/* One measured row, as metrics_add sees it, plus what the report lists. */
typedef struct report_obs {
	const char     *txn_id, *card_id, *currency, *pattern;
	int64_t         event_time_ms;
	double          amount;      /* major units of currency */
	int32_t         score;
	vigil_decision  decision;
	int             label;       /* -1 unknown, 0 legit, 1 fraud */
	double          model_score; /* NaN: none */
	const uint16_t *hits;        /* rule indices: nhits active, then nshadow */
	uint32_t        nhits, nshadow;
	/* --compare: the other rule file's outcome (has_cmp false: none) */
	bool            has_cmp;
	int32_t         score2;
	vigil_decision  decision2;
} report_obs;

/* rule_name(arg, index) names a rule index of obs.hits; called only for
 * rows that enter a listed table. NULL on ENOMEM. */
report_data *report_data_new(const char *(*rule_name)(void *arg, uint16_t idx), void *arg);
void         report_data_free(report_data *d); /* NULL is a no-op */
/* Never fails: past the caps a row is counted but not listed. */
void         report_data_add(report_data *d, const report_obs *o);

/* Writes the page for m (finished) to out. VIGIL_EIO if a write fails,
 * VIGIL_ENOMEM. cmp may be NULL (no comparison section), d may be NULL
 * (no money, trend, top and diff sections). */
vigil_err report_write_html(FILE *out, const report_info *info, const metrics *m,
    const metrics *cmp, const report_data *d);

#endif
