/* SPDX-License-Identifier: MIT */
/* tools/replay/report_int.h - report_data's layout, shared by the collector
 * (report_data.c) and the page (report.c); private to them. */
#ifndef VIGIL_REPORT_INT_H
#define VIGIL_REPORT_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "report.h"

typedef struct report_day {
	int64_t  day; /* UTC day number (Unix ms / 86400000) */
	uint64_t rows, alerts, declines, labelled, frauds, tp, fp;
	double   fraud_amount, fraud_caught, legit_alerted;
} report_day;

typedef struct report_row {
	double         key; /* what the list keeps the largest of */
	char           txn_id[REPORT_ID_MAX + 1], card_id[REPORT_ID_MAX + 1];
	char           currency[4], pattern[33];
	int64_t        t;
	double         amount, model_score;
	double         score, score2;
	vigil_decision decision, decision2;
	int            label;
	uint32_t       nnames, nmore;
	char           names[REPORT_MAX_HITS][48];
	bool           shadow[REPORT_MAX_HITS];
} report_row;

struct report_data {
	const char *(*rule_name)(void *arg, uint16_t idx);
	void        *arg;
	report_day  *days; /* REPORT_MAX_DAYS, ascending */
	uint32_t     ndays;
	uint64_t     rows, fraud_rows, legit_rows, legit_declined_rows, legit_reviewed_rows;
	double       fraud_amount, fraud_caught, fraud_declined;
	double       legit_amount, legit_declined, legit_reviewed;
	char         currency[4];
	bool         mixed_currency;
	report_row   top[REPORT_TOP];
	uint32_t     ntop;
	double       top_min;
	bool         has_cmp;
	uint64_t     trans[4][4][3]; /* [base decision][compare decision][legit, fraud, unknown] */
	report_row   diff[REPORT_TOP];
	uint32_t     ndiff;
	double       diff_min;
};

#endif
