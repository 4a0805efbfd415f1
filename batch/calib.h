/* SPDX-License-Identifier: MIT */
/*
 * batch/calib.h - private to batch/: the metrics the nightly model is
 * judged by (weighted ROC AUC, average precision) and its Platt calibration
 * (batch/calib.c, docs/model.md "Calibration"). train.h includes it, so
 * users of train.h see these too.
 */
#ifndef VIGIL_BATCH_CALIB_H
#define VIGIL_BATCH_CALIB_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Platt calibration of probabilities p[0..n) against labels (label > 0.5:
 * fraud) with weights w (NULL: all 1): the a and b that maximise the
 * weighted likelihood of P(fraud) = 1 / (1 + exp(-(a * logit(p) + b))),
 * logit(p) = ln(p / (1 - p)) with p clamped into [BATCH_CALIB_P_MIN,
 * 1 - BATCH_CALIB_P_MIN] (float32 probabilities reach 0 and 1), against
 * Platt's targets (N1 + 1) / (N1 + 2) for frauds and 1 / (N0 + 2) for the
 * rest (N1, N0 their weights), which keep a finite when the scores separate
 * the classes. Newton steps from a = 1, b = 0, each halved until the
 * objective does not rise; deterministic (sums in row order). With prior
 * (NULL: none), the maximum a posteriori instead: the objective adds
 * (a - prior->a)^2 / (2 sd_a^2) + (b - prior->b)^2 / (2 sd_b^2), and the
 * steps start from the prior's centre; a prior whose centre is not finite
 * or whose sd is not a positive finite number is refused.
 *
 * true: *ret_a > 0 and *ret_b set. false (*ret_a, *ret_b untouched; why
 * says why in one line): a bad prior, a negative, NaN or infinite weight, no weight on
 * one side, predictions that do not vary, no convergence in
 * BATCH_CALIB_MAX_ITER steps, or a <= 0 (the scores rank frauds below the
 * rest: a calibration must keep the order strictly).
 */
#define BATCH_CALIB_P_MIN    5.9604644775390625e-08 /* 2^-24 */
#define BATCH_CALIB_MAX_ITER 100
typedef struct batch_calib_prior {
	double a, sd_a; /* a ~ Normal(a, sd_a^2) */
	double b, sd_b; /* b ~ Normal(b, sd_b^2) */
} batch_calib_prior;
/* The nightly's prior: a within about 0.25 of 1, b within about 1 of its
 * centre (docs/model.md, "Calibration"). */
#define BATCH_CALIB_PRIOR_SD_A 0.25
#define BATCH_CALIB_PRIOR_SD_B 1.0
bool batch_calib_platt(const float *p, const float *label, const float *w, size_t n,
    const batch_calib_prior *prior, double *ret_a, double *ret_b, char *why, size_t whylen);

/*
 * ROC AUC of scores against labels (label != 0: positive) with weights
 * (NULL: all 1), tied scores counting one half; NaN scores rank lowest.
 * NaN if there is no positive or no negative weight, or on ENOMEM.
 */
double batch_metric_auc(const float *score, const float *label, const float *w, size_t n);

/*
 * Average precision: sum over distinct scores, highest first, of the
 * recall gained at that score times the precision there (a tied group is
 * one step, as scikit-learn's average_precision_score), weighted as above.
 * NaN if there is no positive weight, or on ENOMEM.
 */
double batch_metric_ap(const float *score, const float *label, const float *w, size_t n);

#endif
