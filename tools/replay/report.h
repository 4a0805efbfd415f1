/* SPDX-License-Identifier: MIT */
/*
 * tools/replay/report.h - the replay's HTML report: one self-contained
 * page (inline CSS and SVG, no script, no network) with the summary figures,
 * the score histogram by label, the precision-recall curve, per rule
 * precision, per fraud pattern recall and the latency histogram.
 */
#ifndef VIGIL_REPORT_H
#define VIGIL_REPORT_H

#include <stdio.h>

#include "metrics.h"

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
} report_info;

/* Writes the page for m (finished) to out. VIGIL_EIO if a write fails,
 * VIGIL_ENOMEM. cmp may be NULL (no comparison section). */
vigil_err report_write_html(FILE *out, const report_info *info, const metrics *m,
    const metrics *cmp);

#endif
