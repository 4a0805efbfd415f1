/* SPDX-License-Identifier: MIT */
/*
 * batch/days.h - private to batch/: day aggregates (batch_days, batch.h;
 * days.c), the window-aware merges of a day into a run (agg.c) and the
 * label digest the workers keep for them (pass.c).
 */
#ifndef VIGIL_BATCH_DAYS_H
#define VIGIL_BATCH_DAYS_H

#include <stdbool.h>
#include <stdint.h>

#include "int.h"

typedef struct batch_run batch_run;

/* Adds src, the card's records of one UTC day [day, day + 1 day) added with
 * every window open (days.c), to dst as batch_card_add would have added
 * them under w. Days must be merged in time order (the countries keep
 * first-seen order). The Welford means and the sums differ from adding
 * the records one by one in their last bits; the kept amounts and
 * merchants are the same unless the card saturates BATCH_CARD_MAX_MERCH. */
vigil_err   batch_card_merge_day(batch_card *dst, const batch_windows *w, int64_t day,
    const batch_card *src);
/* batch_card_merge_day for a merchant or terminal: exact (integers). */
void batch_ent_merge_day(batch_ent *dst, const batch_windows *w, int64_t day,
    const batch_ent *src);

/* A labelled transaction's share of a day's label digest (days.c). */
static inline uint64_t
batch_label_mix(uint64_t lh, bool fraud)
{
	return (lh ^ (fraud ? 0x2545f4914f6cdd1dull : 0x9e3779b97f4a7c15ull)) * 0xbf58476d1ce4e5b9ull;
}

/* days.c: whether this run uses opts.days, and its passes 1 and 2 when it
 * does. */
bool      batch_days_usable(const batch_run *r);
vigil_err batch_days_labels(batch_run *r, store_diag *reterr);
vigil_err batch_days_aggregate(batch_run *r, store_diag *reterr);

#endif
