/* SPDX-License-Identifier: MIT */
/*
 * batch/train_int.h - private to the nightly model's training (trainset.c,
 * calib.c, train.c): the training set's layout and the helpers those files
 * share. The contract is train.h.
 */
#ifndef VIGIL_BATCH_TRAIN_INT_H
#define VIGIL_BATCH_TRAIN_INT_H

#include <stddef.h>
#include <stdint.h>

#include "train.h"

typedef struct train_day {
	int64_t  day;            /* floor(t / VIGIL_MS_PER_DAY) */
	uint64_t legit, fraud;   /* rows added that day */
	uint64_t kept;           /* legitimate rows of that day kept now */
} train_day;

struct batch_trainset {
	uint32_t  nfeat;
	char    **names;          /* nfeat, each its own allocation */
	uint64_t  max_rows;
	size_t    n, cap;         /* slots used / allocated (cap <= max_rows) */
	float    *x;              /* cap * nfeat */
	int64_t  *t;
	uint64_t *key;
	uint64_t *mix;            /* train_mix(key) */
	uint8_t  *fraud;
	uint32_t *heap;           /* slots of the legitimate rows, max-heap; cap entries */
	size_t    nheap;
	uint64_t  nfraud, legit_seen;
	train_day *days;          /* sorted by day */
	size_t    ndays, cap_days;
	float    *tmp;            /* one row: the row being added */
};

/* trainset.c */
/* floor(t / VIGIL_MS_PER_DAY): the UTC day of event time t (ms). */
int64_t train_day_of(int64_t t);
/* Restores the max-heap of the legitimate rows' slots on the remixed key. */
void trainset_heapify(batch_trainset *s);
/* The weight of each kept legitimate row of day d: n_d / k_d. */
double trainset_day_weight(const train_day *d);
/* The slots in canonical order (event time, key, label, feature bytes):
 * *ret_perm (malloc'd, s->n entries); VIGIL_ENOMEM. */
vigil_err trainset_sort_perm(const batch_trainset *s, uint32_t **ret_perm);
/* Moves the rows so that slot i holds the row that was in slot perm[i]
 * (perm is destroyed). */
void trainset_permute(batch_trainset *s, uint32_t *perm);

/* calib.c */
/* The weighted mean of 1 / (1 + e^-(a logit(p) + b)) over p[0..n). */
double train_calib_mean(const float *p, const float *w, size_t n, double a, double b);
/* The b at which train_calib_mean(p, w, n, a, b) is target (in (0, 1)),
 * by bisection from b0. */
double train_calib_match(const float *p, const float *w, size_t n, double a, double b0,
    double target);

#endif
