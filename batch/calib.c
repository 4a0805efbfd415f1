/* SPDX-License-Identifier: MIT */
/*
 * batch/calib.c - the metrics of the nightly model (weighted ROC AUC and
 * average precision) and its Platt calibration (calib.h, docs/model.md
 * "Calibration"); train.c uses them on the validation days.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "calib.h"
#include "train.h"
#include "train_int.h"

/* ---- Metrics ---- */

typedef struct train_scored {
	float  s;
	size_t i;
} train_scored;

/* Highest score first, NaN last; ties in index order (no effect on the
 * results: a tied group is summed whole). */
static int
train_scored_cmp(const void *pa, const void *pb)
{
	const train_scored *a = pa, *b = pb;
	bool na = isnan(a->s), nb = isnan(b->s);

	if (na != nb)
		return na ? 1 : -1;
	if (!na && a->s != b->s)
		return a->s > b->s ? -1 : 1;
	return (a->i > b->i) - (a->i < b->i);
}

static train_scored *
train_scored_sort(const float *score, size_t n)
{
	train_scored *v = malloc((n ? n : 1) * sizeof *v);

	if (v == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		v[i].s = score[i];
		v[i].i = i;
	}
	qsort(v, n, sizeof *v, train_scored_cmp);
	return v;
}

static bool
train_same_score(float a, float b)
{
	return (isnan(a) && isnan(b)) || a == b;
}

double
batch_metric_auc(const float *score, const float *label, const float *w, size_t n)
{
	train_scored *v;
	double ptot = 0, ntot = 0, nabove = 0, sum = 0;

	for (size_t i = 0; i < n; i++) {
		double wi = w ? w[i] : 1.0;

		if (label[i] != 0)
			ptot += wi;
		else
			ntot += wi;
	}
	if (ptot <= 0 || ntot <= 0)
		return NAN;
	v = train_scored_sort(score, n);
	if (v == NULL)
		return NAN;
	for (size_t g = 0; g < n;) {
		double pg = 0, ng = 0;
		size_t e = g;

		for (; e < n && train_same_score(v[e].s, v[g].s); e++) {
			double wi = w ? w[v[e].i] : 1.0;

			if (label[v[e].i] != 0)
				pg += wi;
			else
				ng += wi;
		}
		/* Each positive of the group beats the negatives below it and
		 * ties with the group's own. */
		sum += pg * (ntot - nabove - ng) + 0.5 * pg * ng;
		nabove += ng;
		g = e;
	}
	free(v);
	return sum / (ptot * ntot);
}

double
batch_metric_ap(const float *score, const float *label, const float *w, size_t n)
{
	train_scored *v;
	double ptot = 0, tp = 0, fp = 0, ap = 0;

	for (size_t i = 0; i < n; i++)
		if (label[i] != 0)
			ptot += w ? w[i] : 1.0;
	if (ptot <= 0)
		return NAN;
	v = train_scored_sort(score, n);
	if (v == NULL)
		return NAN;
	for (size_t g = 0; g < n;) {
		double pg = 0;
		size_t e = g;

		for (; e < n && train_same_score(v[e].s, v[g].s); e++) {
			double wi = w ? w[v[e].i] : 1.0;

			if (label[v[e].i] != 0)
				pg += wi;
			else
				fp += wi;
		}
		tp += pg;
		if (pg > 0)
			ap += (pg / ptot) * (tp / (tp + fp));
		g = e;
	}
	free(v);
	return ap;
}

/* ---- Calibration ---- */

/* log(1 + e^m) without overflow. */
static double
train_softplus(double m)
{
	return m > 0 ? m + log1p(exp(-m)) : log1p(exp(m));
}

/* The probability as the consumer turns it into log-odds (calib.h). */
static double
train_logit(float p)
{
	double q = p;

	if (!(q >= BATCH_CALIB_P_MIN)) /* NaN too */
		q = BATCH_CALIB_P_MIN;
	if (q > 1.0 - BATCH_CALIB_P_MIN)
		q = 1.0 - BATCH_CALIB_P_MIN;
	return log(q) - log1p(-q);
}

/* The weighted mean of 1 / (1 + e^-(a logit(p) + b)) over p[0..n). */
double
train_calib_mean(const float *p, const float *w, size_t n, double a, double b)
{
	double sum = 0, wsum = 0;

	for (size_t i = 0; i < n; i++) {
		sum += w[i] / (1 + exp(-(a * train_logit(p[i]) + b)));
		wsum += w[i];
	}
	return sum / wsum;
}

/* The b at which train_calib_mean(p, w, n, a, b) is target (in (0, 1)),
 * by bisection from b0 (the mean rises with b): 200 halvings of a bracket
 * found by doubling steps, which reach the double next to it. */
double
train_calib_match(const float *p, const float *w, size_t n, double a, double b0, double target)
{
	double lo = b0, hi = b0, step = 1;

	while (train_calib_mean(p, w, n, a, lo) > target && step < 1e3) {
		lo -= step;
		step *= 2;
	}
	step = 1;
	while (train_calib_mean(p, w, n, a, hi) < target && step < 1e3) {
		hi += step;
		step *= 2;
	}
	for (int it = 0; it < 200 && lo < hi; it++) {
		double mid = lo + (hi - lo) / 2;

		if (mid <= lo || mid >= hi)
			break;
		if (train_calib_mean(p, w, n, a, mid) < target)
			lo = mid;
		else
			hi = mid;
	}
	return lo + (hi - lo) / 2;
}

/* Platt's objective at (a, b): the weighted cross-entropy against targets
 * t1 (frauds) and t0 (the rest). */
static double
calib_loss(const float *p, const float *label, const float *w, size_t n, double t1, double t0,
    const batch_calib_prior *pr, double a, double b)
{
	double f = 0;

	for (size_t i = 0; i < n; i++) {
		double m = a * train_logit(p[i]) + b;

		f += (w ? w[i] : 1.0) * (train_softplus(m) - (label[i] > 0.5f ? t1 : t0) * m);
	}
	if (pr != NULL)
		f += 0.5 * ((a - pr->a) * (a - pr->a) / (pr->sd_a * pr->sd_a) +
		    (b - pr->b) * (b - pr->b) / (pr->sd_b * pr->sd_b));
	return f;
}

bool
batch_calib_platt(const float *p, const float *label, const float *w, size_t n,
    const batch_calib_prior *pr, double *ret_a, double *ret_b, char *why, size_t whylen)
{
	double n1 = 0, n0 = 0, t1, t0, a = pr ? pr->a : 1.0, b = pr ? pr->b : 0.0, f;
	bool   done = false;

	for (size_t i = 0; i < n; i++) {
		double wi = w ? w[i] : 1.0;

		if (!(wi >= 0) || !isfinite(wi)) {
			snprintf(why, whylen, "weight of row %zu is %g", i, wi);
			return false;
		}
		if (label[i] > 0.5f)
			n1 += wi;
		else
			n0 += wi;
	}
	if (pr != NULL && (!isfinite(pr->a) || !isfinite(pr->b) || !(pr->sd_a > 0) ||
	    !(pr->sd_b > 0) || !isfinite(pr->sd_a) || !isfinite(pr->sd_b))) {
		snprintf(why, whylen, "the prior (a %g sd %g, b %g sd %g) is not finite and "
		    "positive", pr->a, pr->sd_a, pr->b, pr->sd_b);
		return false;
	}
	if (!(n1 > 0) || !(n0 > 0)) {
		snprintf(why, whylen, "no %s weight in the validation rows",
		    n1 > 0 ? "legitimate" : "fraud");
		return false;
	}
	/* Platt's targets: a perfectly separated validation set would
	 * otherwise drive a to infinity. */
	t1 = (n1 + 1) / (n1 + 2);
	t0 = 1 / (n0 + 2);
	f = calib_loss(p, label, w, n, t1, t0, pr, a, b);
	for (int it = 0; it < BATCH_CALIB_MAX_ITER && !done; it++) {
		double gz = 0, g1 = 0, hzz = 0, hz = 0, h11 = 0, det, da, db, step, fn = f;

		for (size_t i = 0; i < n; i++) {
			double z = train_logit(p[i]), wi = w ? w[i] : 1.0;
			double q = 1 / (1 + exp(-(a * z + b)));
			double r = wi * (q - (label[i] > 0.5f ? t1 : t0)), h = wi * q * (1 - q);

			gz += r * z;
			g1 += r;
			hzz += h * z * z;
			hz += h * z;
			h11 += h;
		}
		if (pr != NULL) {
			gz += (a - pr->a) / (pr->sd_a * pr->sd_a);
			g1 += (b - pr->b) / (pr->sd_b * pr->sd_b);
			hzz += 1 / (pr->sd_a * pr->sd_a);
			h11 += 1 / (pr->sd_b * pr->sd_b);
		}
		det = hzz * h11 - hz * hz;
		if (!(det > 1e-12 * hzz * h11)) {
			snprintf(why, whylen, "the validation predictions do not vary "
			    "(Newton step %d)", it + 1);
			return false;
		}
		da = (h11 * gz - hz * g1) / det;
		db = (hzz * g1 - hz * gz) / det;
		/* Halve the Newton step until the objective does not rise. */
		for (step = 1.0; step >= 1.0 / 1024; step /= 2) {
			fn = calib_loss(p, label, w, n, t1, t0, pr, a - step * da, b - step * db);
			if (fn <= f)
				break;
		}
		if (step < 1.0 / 1024) {
			done = true; /* no step lowers it: at the minimum to rounding */
			break;
		}
		a -= step * da;
		b -= step * db;
		done = fabs(step * da) < 1e-9 * (1 + fabs(a)) && fabs(step * db) < 1e-9 * (1 + fabs(b));
		f = fn;
	}
	if (!done) {
		snprintf(why, whylen, "no convergence in %d Newton steps (a %g, b %g)",
		    BATCH_CALIB_MAX_ITER, a, b);
		return false;
	}
	if (!isfinite(a) || !isfinite(b)) {
		snprintf(why, whylen, "the fit is not finite (a %g, b %g)", a, b);
		return false;
	}
	if (!(a > 0)) {
		snprintf(why, whylen, "a %g is not positive: the validation frauds do not score "
		    "above the legitimate rows", a);
		return false;
	}
	*ret_a = a;
	*ret_b = b;
	return true;
}
