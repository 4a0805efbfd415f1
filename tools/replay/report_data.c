/* SPDX-License-Identifier: MIT */
/*
 * tools/replay/report_data.c - what the report shows beyond the metrics
 * (report.h): counts and amounts per UTC day, the money totals, the top
 * alerted rows by score and, with --compare, the decision transitions and
 * the changed rows that matter most (frauds first, then the largest score
 * change). Fixed memory: days up to REPORT_MAX_DAYS, REPORT_TOP rows per
 * list; a row's rule names are looked up only when it enters a list.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report_int.h"

report_data *
report_data_new(const char *(*rule_name)(void *arg, uint16_t idx), void *arg)
{
	report_data *d = calloc(1, sizeof *d);

	if (d == NULL)
		return NULL;
	d->days = calloc(REPORT_MAX_DAYS, sizeof *d->days);
	if (d->days == NULL) {
		free(d);
		return NULL;
	}
	d->rule_name = rule_name;
	d->arg = arg;
	d->top_min = d->diff_min = -INFINITY;
	return d;
}

void
report_data_free(report_data *d)
{
	if (d == NULL)
		return;
	free(d->days);
	free(d);
}

static report_day *
rd_day(report_data *d, int64_t t)
{
	int64_t day = t >= 0 ? t / VIGIL_MS_PER_DAY : (t - VIGIL_MS_PER_DAY + 1) / VIGIL_MS_PER_DAY;

	/* rows come in event-time order: the last day, or a new one */
	for (uint32_t i = d->ndays; i-- > 0;) {
		if (d->days[i].day == day)
			return &d->days[i];
		if (d->days[i].day < day)
			break;
	}
	if (d->ndays > 0 && d->days[d->ndays - 1].day > day)
		return NULL; /* an older day not seen before: counted in the totals only */
	if (d->ndays == REPORT_MAX_DAYS)
		return NULL;
	d->days[d->ndays].day = day;
	return &d->days[d->ndays++];
}

static void
rd_fill(report_data *d, report_row *r, const report_obs *o, double key)
{
	uint32_t n = 0;

	memset(r, 0, sizeof *r);
	r->key = key;
	snprintf(r->txn_id, sizeof r->txn_id, "%s", o->txn_id ? o->txn_id : "");
	snprintf(r->card_id, sizeof r->card_id, "%s", o->card_id ? o->card_id : "");
	snprintf(r->currency, sizeof r->currency, "%s", o->currency ? o->currency : "");
	snprintf(r->pattern, sizeof r->pattern, "%s", o->pattern ? o->pattern : "");
	r->t = o->event_time_ms;
	r->amount = o->amount;
	r->score = o->score;
	r->decision = o->decision;
	r->score2 = o->score2;
	r->decision2 = o->has_cmp ? o->decision2 : VIGIL_DECISION_NONE;
	r->label = o->label;
	r->model_score = o->model_score;
	for (uint32_t i = 0; i < o->nhits + o->nshadow && n < REPORT_MAX_HITS; i++) {
		const char *name = d->rule_name != NULL ? d->rule_name(d->arg, o->hits[i]) : NULL;

		snprintf(r->names[n], sizeof r->names[n], "%s", name ? name : "?");
		r->shadow[n] = i >= o->nhits;
		n++;
	}
	r->nnames = n;
	r->nmore = o->nhits + o->nshadow - n;
}

/* Keeps the REPORT_TOP rows of largest key in rows[0..*n). */
static void
rd_keep(report_data *d, report_row *rows, uint32_t *n, double *min, const report_obs *o,
    double key)
{
	uint32_t at = *n;

	if (*n == REPORT_TOP) {
		if (key <= *min)
			return;
		at = 0;
		for (uint32_t i = 1; i < *n; i++)
			if (rows[i].key < rows[at].key)
				at = i;
	} else {
		(*n)++;
	}
	rd_fill(d, &rows[at], o, key);
	if (*n == REPORT_TOP) {
		*min = rows[0].key;
		for (uint32_t i = 1; i < *n; i++)
			if (rows[i].key < *min)
				*min = rows[i].key;
	}
}

void
report_data_add(report_data *d, const report_obs *o)
{
	report_day *day = rd_day(d, o->event_time_ms);
	bool alert = o->decision == VIGIL_DECISION_REVIEW || o->decision == VIGIL_DECISION_DECLINE;
	bool decline = o->decision == VIGIL_DECISION_DECLINE;
	double amt = isfinite(o->amount) && o->amount > 0 ? o->amount : 0.0;

	if (o->currency != NULL && o->currency[0] != '\0') {
		if (d->currency[0] == '\0')
			snprintf(d->currency, sizeof d->currency, "%s", o->currency);
		else if (strcmp(d->currency, o->currency) != 0)
			d->mixed_currency = true;
	}
	d->rows++;
	if (day != NULL) {
		day->rows++;
		day->alerts += alert;
		day->declines += decline;
	}
	if (o->label == 1) {
		d->fraud_rows++;
		d->fraud_amount += amt;
		if (alert)
			d->fraud_caught += amt;
		if (decline)
			d->fraud_declined += amt;
		if (day != NULL) {
			day->labelled++;
			day->frauds++;
			day->tp += alert;
			day->fraud_amount += amt;
			day->fraud_caught += alert ? amt : 0.0;
		}
	} else if (o->label == 0) {
		d->legit_rows++;
		d->legit_amount += amt;
		if (decline) {
			d->legit_declined += amt;
			d->legit_declined_rows++;
		} else if (alert) {
			d->legit_reviewed += amt;
			d->legit_reviewed_rows++;
		}
		if (day != NULL) {
			day->labelled++;
			day->fp += alert;
			day->legit_alerted += alert ? amt : 0.0;
		}
	}
	if (alert) {
		rd_keep(d, d->top, &d->ntop, &d->top_min, o, o->score);
	}
	if (o->has_cmp) {
		int lc = o->label == 1 ? 1 : o->label == 0 ? 0 : 2;

		d->has_cmp = true;
		d->trans[o->decision & 3][o->decision2 & 3][lc]++;
		if (o->decision != o->decision2)
			rd_keep(d, d->diff, &d->ndiff, &d->diff_min, o,
			    (o->label == 1 ? 1e9 : 0.0) + fabs((double)o->score2 - (double)o->score));
	}
}
