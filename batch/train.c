/* SPDX-License-Identifier: MIT */
/*
 * batch/train.c - the nightly model's training with libxgboost (train.h,
 * docs/model.md "Training"), on a training set (trainset.c) with the
 * metrics and calibration of calib.c.
 *
 * Training permutes the slots into the canonical order (event time, key,
 * label, feature bytes), so XGBoost sees the same matrix whatever the
 * history of the set, splits it at a day boundary (the rows of the last days
 * are a suffix of the sorted slots: no copy) and boosts one round at a time,
 * asking XGBoost for the validation figures after each (it keeps the
 * validation predictions cached, so a round costs one tree's worth).
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <xgboost/c_api.h>

#include "batch.h"
#include "train.h"
#include "train_int.h"

void
batch_train_opts_default(batch_train_opts *ret)
{
	memset(ret, 0, sizeof *ret);
	ret->threads = 1;
	ret->max_rounds = 300;
	ret->early_stop = 30;
	ret->stop_metric = BATCH_TRAIN_STOP_LOGLOSS;
	ret->min_rounds = 20;
	ret->max_depth = 6;
	ret->eta = 0.1;
	ret->min_child_weight = 5.0;
	ret->reg_lambda = 1.0;
	ret->max_bin = 256;
	ret->scale_pos_weight = 1.0;
	ret->min_frauds = 50;
	ret->max_rows = 1000000;
	ret->valid_share = 0.25;
	ret->refit = true;
	ret->balanced_bins = true;
	ret->calib_trust = 0.25;
}

/* ---- Training ---- */

static void
train_fmt_day(char *buf, size_t len, int64_t day)
{
	time_t    secs = (time_t)(day * (VIGIL_MS_PER_DAY / 1000));
	struct tm tm;

	if (gmtime_r(&secs, &tm) == NULL || strftime(buf, len, "%Y-%m-%d", &tm) == 0)
		snprintf(buf, len, "day %lld", (long long)day);
}

static vigil_err
train_check_opts(const batch_train_opts *o, store_diag *reterr)
{
	if (o->threads > BATCH_MAX_THREADS) {
		store_diag_set(reterr, "training: threads %u (at most %d)", o->threads,
		    BATCH_MAX_THREADS);
		return VIGIL_EINVAL;
	}
	if (o->max_rounds == 0 || o->max_rounds > BATCH_TRAIN_MAX_ROUNDS) {
		store_diag_set(reterr, "training: max_rounds %u (1 to %d)", o->max_rounds,
		    BATCH_TRAIN_MAX_ROUNDS);
		return VIGIL_EINVAL;
	}
	if (o->min_rounds > o->max_rounds) {
		store_diag_set(reterr, "training: min_rounds %u above max_rounds %u", o->min_rounds,
		    o->max_rounds);
		return VIGIL_EINVAL;
	}
	if (o->max_depth == 0 || o->max_depth > BATCH_TRAIN_MAX_DEPTH) {
		store_diag_set(reterr, "training: max_depth %u (1 to %d)", o->max_depth,
		    BATCH_TRAIN_MAX_DEPTH);
		return VIGIL_EINVAL;
	}
	if (!(o->eta > 0 && o->eta <= 1)) {
		store_diag_set(reterr, "training: eta %g (over 0, at most 1)", o->eta);
		return VIGIL_EINVAL;
	}
	if (!(o->min_child_weight >= 0 && isfinite(o->min_child_weight))) {
		store_diag_set(reterr, "training: min_child_weight %g", o->min_child_weight);
		return VIGIL_EINVAL;
	}
	if (!(o->reg_lambda >= 0 && isfinite(o->reg_lambda))) {
		store_diag_set(reterr, "training: reg_lambda %g", o->reg_lambda);
		return VIGIL_EINVAL;
	}
	if (o->max_bin < 2 || o->max_bin > 65536) {
		store_diag_set(reterr, "training: max_bin %u (2 to 65536)", o->max_bin);
		return VIGIL_EINVAL;
	}
	if (!(o->scale_pos_weight > 0 && isfinite(o->scale_pos_weight))) {
		store_diag_set(reterr, "training: scale_pos_weight %g", o->scale_pos_weight);
		return VIGIL_EINVAL;
	}
	if (!(o->calib_trust >= 0 && o->calib_trust <= 1)) {
		store_diag_set(reterr, "training: calib_trust %g (0 to 1)", o->calib_trust);
		return VIGIL_EINVAL;
	}
	if (!(o->valid_share > 0 && o->valid_share < 1)) {
		store_diag_set(reterr, "training: valid_share %g (between 0 and 1)", o->valid_share);
		return VIGIL_EINVAL;
	}
	if (o->stop_metric != BATCH_TRAIN_STOP_AP && o->stop_metric != BATCH_TRAIN_STOP_LOGLOSS) {
		store_diag_set(reterr, "training: stop_metric %d", (int)o->stop_metric);
		return VIGIL_EINVAL;
	}
	return VIGIL_OK;
}

/* "name:value" in XGBoost's evaluation line, NaN if absent. */
static double
train_eval_value(const char *line, const char *name)
{
	const char *p = strstr(line, name);

	return p != NULL ? strtod(p + strlen(name), NULL) : NAN;
}

/* XGBoost's last error, first line only (a stack trace may follow). */
static void
train_xgb_err(store_diag *reterr, const char *what)
{
	const char *e = XGBGetLastError();

	store_diag_set(reterr, "training: xgboost %s: %.*s", what, (int)strcspn(e, "\r\n"), e);
}

/* Calls XGBoost; on failure sets rv and *reterr and leaves through out. */
#define XGB(call, what)                                                        \
	do {                                                                   \
		if ((call) != 0) {                                             \
			train_xgb_err(reterr, (what));                         \
			rv = VIGIL_EINTERNAL;                                  \
			goto out;                                              \
		}                                                              \
	} while (0)

/*
 * XGBoost's training matrix for rows [at, at + rows) of s: a quantile
 * matrix, which keeps only each value's histogram bin (a byte for up to 256
 * bins) where a plain one copies every value with its column index (8 bytes;
 * 1.0 GB peak against 0.55 for the bench's million rows of 60 features).
 * It is fed by a callback, TRAIN_BATCH rows at a time (a fixed size: the
 * bins depend on the batches).
 */
#define TRAIN_BATCH 65536

typedef struct train_iter {
	DMatrixHandle proxy;
	const float  *x, *label, *weight;
	size_t        nfeat, rows, at;
	bool          failed;
} train_iter;

static void
train_iter_reset(DataIterHandle h)
{
	((train_iter *)h)->at = 0;
}

static int
train_iter_next(DataIterHandle h)
{
	train_iter *it = h;
	size_t m = it->rows - it->at < TRAIN_BATCH ? it->rows - it->at : TRAIN_BATCH;
	char   js[192];

	if (m == 0 || it->failed)
		return 0;
	snprintf(js, sizeof js, "{\"data\": [%llu, true], \"shape\": [%zu, %zu], "
	    "\"typestr\": \"<f4\", \"version\": 3}",
	    (unsigned long long)(uintptr_t)&it->x[it->at * it->nfeat], m, it->nfeat);
	if (XGProxyDMatrixSetDataDense(it->proxy, js) != 0 ||
	    XGDMatrixSetFloatInfo(it->proxy, "label", &it->label[it->at], m) != 0 ||
	    XGDMatrixSetFloatInfo(it->proxy, "weight", &it->weight[it->at], m) != 0) {
		it->failed = true;
		return 0;
	}
	it->at += m;
	return 1;
}

static vigil_err
train_matrix_pass(train_iter *it, DMatrixHandle ref, const char *cfg, DMatrixHandle *ret_dm,
    store_diag *reterr)
{
	DMatrixHandle dm = NULL;
	bst_ulong n;
	vigil_err rv = VIGIL_OK;

	it->at = 0;
	it->failed = false;
	XGB(XGQuantileDMatrixCreateFromCallback(it, it->proxy, ref, train_iter_reset,
	    train_iter_next, cfg, &dm), "matrix");
	XGB(XGDMatrixNumRow(dm, &n), "matrix rows");
	if (it->failed || n != it->rows) {
		if (it->failed)
			train_xgb_err(reterr, "matrix batch");
		else
			store_diag_set(reterr, "training: xgboost matrix: %llu rows of %zu",
			    (unsigned long long)n, it->rows);
		rv = VIGIL_EINTERNAL;
		goto out;
	}
	*ret_dm = dm;
	dm = NULL;
out:
	if (dm != NULL)
		XGDMatrixFree(dm);
	return rv;
}

/*
 * With sketch_weight (not NULL), the bins are cut from a first matrix whose
 * rows weigh sketch_weight instead of weight, and the training matrix takes
 * its cuts from that one (XGBoost's `ref`). The sketch puts a bin boundary
 * every 1/max_bin of the weight: with the training weights, frauds (under 1%
 * of it) get almost no boundary of their own, and a fraud group beyond
 * every legitimate value of a feature shares its bin with the legitimate
 * tail, so no split can isolate it (docs/model.md, "Bins").
 */
static vigil_err
train_matrix(const batch_trainset *s, size_t at, size_t rows, const float *label,
    const float *weight, const float *sketch_weight, uint32_t threads, uint32_t max_bin,
    DMatrixHandle *ret_dm, store_diag *reterr)
{
	train_iter it = { .x = &s->x[at * s->nfeat], .label = label, .weight = weight,
	    .nfeat = s->nfeat, .rows = rows };
	DMatrixHandle dm = NULL, ref = NULL;
	char cfg[128];
	vigil_err rv = VIGIL_OK;

	snprintf(cfg, sizeof cfg, "{\"missing\": NaN, \"nthread\": %u, \"max_bin\": %u}",
	    threads, max_bin);
	XGB(XGProxyDMatrixCreate(&it.proxy), "proxy matrix");
	if (sketch_weight != NULL) {
		it.weight = sketch_weight;
		rv = train_matrix_pass(&it, NULL, cfg, &ref, reterr);
		if (rv != VIGIL_OK)
			goto out;
		it.weight = weight;
	}
	rv = train_matrix_pass(&it, ref, cfg, &dm, reterr);
	if (rv != VIGIL_OK)
		goto out;
	XGB(XGDMatrixSetStrFeatureInfo(dm, "feature_name", (const char **)s->names, s->nfeat),
	    "feature names");
	*ret_dm = dm;
	dm = NULL;
out:
	if (dm != NULL)
		XGDMatrixFree(dm);
	if (ref != NULL)
		XGDMatrixFree(ref);
	if (it.proxy != NULL)
		XGDMatrixFree(it.proxy);
	return rv;
}

/*
 * Weights for the bins' sketch of rows [0, n): the training weights with the
 * frauds' scaled so that frauds and legitimate rows weigh the same in all.
 * Only where the boundaries fall depends on them; the trees are fitted with
 * the training weights.
 */
static void
train_sketch_weights(const float *label, const float *weight, size_t n, float *ret)
{
	double wl = 0, wf = 0, k;

	for (size_t i = 0; i < n; i++) {
		if (label[i] > 0.5f)
			wf += weight[i];
		else
			wl += weight[i];
	}
	k = wf > 0 && wl > 0 ? wl / wf : 1.0;
	for (size_t i = 0; i < n; i++)
		ret[i] = label[i] > 0.5f ? (float)(weight[i] * k) : weight[i];
}

/* b's probabilities for rows [at, at + rows) of s, predicted in place from
 * the floats (no matrix); *ret_p valid until b's next call. */
static vigil_err
train_predict(BoosterHandle b, const batch_trainset *s, size_t at, size_t rows,
    const float **ret_p, store_diag *reterr)
{
	static const char cfg[] = "{\"type\": 0, \"training\": false, \"iteration_begin\": 0, "
	    "\"iteration_end\": 0, \"strict_shape\": false, \"missing\": NaN, \"cache_id\": 0}";
	const bst_ulong *shape;
	bst_ulong dim;
	char      js[192];
	vigil_err rv = VIGIL_OK;

	snprintf(js, sizeof js, "{\"data\": [%llu, true], \"shape\": [%zu, %u], "
	    "\"typestr\": \"<f4\", \"version\": 3}",
	    (unsigned long long)(uintptr_t)&s->x[at * s->nfeat], rows, s->nfeat);
	XGB(XGBoosterPredictFromDense(b, js, cfg, NULL, &shape, &dim, ret_p), "predict");
	if (dim != 1 || shape[0] != rows) {
		store_diag_set(reterr, "training: xgboost predict: %llu values for %zu rows",
		    dim == 1 ? (unsigned long long)shape[0] : 0ULL, rows);
		rv = VIGIL_EINTERNAL;
	}
out:
	return rv;
}

void
batch_omp_passive(char **argv)
{
	if (getenv("OMP_WAIT_POLICY") != NULL || getenv("GOMP_SPINCOUNT") != NULL ||
	    argv == NULL || argv[0] == NULL)
		return;
	if (setenv("OMP_WAIT_POLICY", "passive", 0) != 0)
		return;
	(void)execv("/proc/self/exe", argv);
	/* Not re-executed: this process keeps libgomp's default; the children
	 * it starts get passive. */
}

/* A booster over dms[0..ndm) with the training parameters of o. */
static vigil_err
train_booster_new(DMatrixHandle *dms, bst_ulong ndm, const batch_train_opts *o,
    double base_score, BoosterHandle *ret_b, store_diag *reterr)
{
	BoosterHandle bst = NULL;
	char pbuf[64];
	vigil_err rv = VIGIL_OK;

	XGB(XGBoosterCreate(dms, ndm, &bst), "booster");
	XGB(XGBoosterSetParam(bst, "verbosity", "0"), "verbosity");
	XGB(XGBoosterSetParam(bst, "validate_parameters", "1"), "validate_parameters");
	XGB(XGBoosterSetParam(bst, "objective", "binary:logistic"), "objective");
	XGB(XGBoosterSetParam(bst, "tree_method", "hist"), "tree_method");
	XGB(XGBoosterSetParam(bst, "seed", "0"), "seed");
	/* Only the figures read after each round: aucpr sorts the validation
	 * predictions every round, and is read only to stop on it (the
	 * reported AP is batch_metric_ap's). Metrics do not change the trees. */
	if (o->stop_metric == BATCH_TRAIN_STOP_AP)
		XGB(XGBoosterSetParam(bst, "eval_metric", "aucpr"), "eval_metric");
	XGB(XGBoosterSetParam(bst, "eval_metric", "logloss"), "eval_metric");
#define PARAM(name, fmt, v)                                                    \
	do {                                                                   \
		snprintf(pbuf, sizeof pbuf, fmt, (double)(v));                 \
		XGB(XGBoosterSetParam(bst, (name), pbuf), (name));             \
	} while (0)
	PARAM("nthread", "%.0f", o->threads ? o->threads : 1);
	PARAM("max_depth", "%.0f", o->max_depth);
	PARAM("max_bin", "%.0f", o->max_bin);
	PARAM("eta", "%.17g", o->eta);
	PARAM("min_child_weight", "%.17g", o->min_child_weight);
	PARAM("lambda", "%.17g", o->reg_lambda);
	PARAM("scale_pos_weight", "%.17g", o->scale_pos_weight);
	PARAM("base_score", "%.17g", base_score);
#undef PARAM
	*ret_b = bst;
	bst = NULL;
out:
	if (bst != NULL)
		XGBoosterFree(bst);
	return rv;
}

vigil_err
batch_train_run(batch_trainset *s, const batch_train_opts *o, char **ret_json,
    size_t *ret_len, batch_model_report *ret_rep, store_diag *reterr)
{
	batch_model_report rep;
	uint64_t t0 = vigil_mono_ns();
	uint32_t *perm = NULL;
	float    *label = NULL, *weight = NULL, *sketch = NULL;
	DMatrixHandle dm[2] = { NULL, NULL };
	BoosterHandle bst = NULL, best = NULL, fit = NULL, saved;
	const char *names[] = { "valid" };
	const char *buf;
	const float *pred;
	bst_ulong blen;
	char     *json = NULL, d0[32], d1[32];
	size_t    ntrain, nvalid, n = s->n;
	int64_t   first, last, span, vdays, split_day;
	uint32_t  min_frauds = o->min_frauds < 2 ? 2 : o->min_frauds;
	double    best_v = NAN, wsum = 0, wfraud = 0;
	batch_calib_prior prior;
	vigil_err rv;

	memset(&rep, 0, sizeof rep);
	rep.valid_auc = rep.valid_ap = rep.valid_logloss = rep.train_auc = NAN;
	rep.calib_a = rep.calib_b = NAN;
	rv = train_check_opts(o, reterr);
	if (rv != VIGIL_OK)
		goto out;
	rep.rows = n;
	rep.frauds = s->nfraud;
	if (s->nfraud < min_frauds) {
		snprintf(rep.why_not, sizeof rep.why_not,
		    "%llu frauds in the window, fewer than min_frauds %u",
		    (unsigned long long)s->nfraud, min_frauds);
		goto done;
	}
	first = s->days[0].day;
	last = s->days[s->ndays - 1].day;
	span = last - first + 1;
	if (span < 2) {
		snprintf(rep.why_not, sizeof rep.why_not,
		    "rows on one day only: nothing to validate on");
		goto done;
	}
	vdays = llround(o->valid_share * (double)span);
	vdays = vdays < 1 ? 1 : vdays > span - 1 ? span - 1 : vdays;
	split_day = last - vdays + 1;
	rep.split_ms = split_day * VIGIL_MS_PER_DAY;

	rv = VIGIL_ENOMEM;
	if (trainset_sort_perm(s, &perm) != VIGIL_OK)
		goto out;
	trainset_permute(s, perm);
	trainset_heapify(s);
	label = malloc((n ? n : 1) * sizeof *label);
	weight = malloc((n ? n : 1) * sizeof *weight);
	if (o->balanced_bins)
		sketch = malloc((n ? n : 1) * sizeof *sketch);
	if (label == NULL || weight == NULL || (o->balanced_bins && sketch == NULL))
		goto out;
	rv = VIGIL_OK;

	ntrain = 0;
	for (size_t i = 0, di = 0; i < n; i++) {
		int64_t day = train_day_of(s->t[i]);

		while (s->days[di].day != day) /* rows and days both ascend */
			di++;
		label[i] = s->fraud[i] ? 1.0f : 0.0f;
		weight[i] = s->fraud[i] ? 1.0f : (float)trainset_day_weight(&s->days[di]);
		if (day < split_day) {
			ntrain = i + 1;
			rep.train_frauds += s->fraud[i];
			wsum += weight[i];
			wfraud += s->fraud[i] ? weight[i] : 0.0;
		} else {
			rep.valid_frauds += s->fraud[i];
		}
	}
	nvalid = n - ntrain;
	rep.train_rows = ntrain;
	rep.valid_rows = nvalid;
	if (ntrain > 0) {
		rep.train_from_ms = s->t[0];
		rep.train_to_ms = s->t[ntrain - 1];
	}
	if (nvalid > 0) {
		rep.valid_from_ms = s->t[ntrain];
		rep.valid_to_ms = s->t[n - 1];
	}
	train_fmt_day(d0, sizeof d0, split_day);
	train_fmt_day(d1, sizeof d1, last);
	if (rep.train_frauds == 0 || rep.train_frauds == ntrain) {
		snprintf(rep.why_not, sizeof rep.why_not, "no %s row before %s",
		    rep.train_frauds == 0 ? "fraud" : "legitimate", d0);
		goto done;
	}
	if (rep.valid_frauds == 0 || rep.valid_frauds == nvalid) {
		snprintf(rep.why_not, sizeof rep.why_not, "no %s row in the validation days %s to %s",
		    rep.valid_frauds == 0 ? "fraud" : "legitimate", d0, d1);
		goto done;
	}
	rep.base_score = wfraud / wsum;

	if (sketch != NULL)
		train_sketch_weights(label, weight, ntrain, sketch);
	rv = train_matrix(s, 0, ntrain, label, weight, sketch, o->threads ? o->threads : 1,
	    o->max_bin, &dm[0], reterr);
	if (rv != VIGIL_OK)
		goto out;
	/* Validation: a plain matrix, from which XGBoost evaluates each round
	 * fast (from a quantile one it looks every value's bin up: 5 times the
	 * whole training's time for the bench). */
	XGB(XGDMatrixCreateFromMat_omp(&s->x[ntrain * s->nfeat], nvalid, s->nfeat, NAN, &dm[1],
	    o->threads ? (int)o->threads : 1), "validation matrix");
	XGB(XGDMatrixSetFloatInfo(dm[1], "label", &label[ntrain], nvalid), "labels");
	XGB(XGDMatrixSetFloatInfo(dm[1], "weight", &weight[ntrain], nvalid), "weights");
	XGB(XGDMatrixSetStrFeatureInfo(dm[1], "feature_name", (const char **)s->names, s->nfeat),
	    "feature names");
	rv = train_booster_new(dm, 2, o, rep.base_score, &bst, reterr);
	if (rv != VIGIL_OK)
		goto out;

	for (uint32_t it = 0; it < o->max_rounds; it++) {
		const char *line;
		double ap, ll, v;
		bool   better;

		XGB(XGBoosterUpdateOneIter(bst, (int)it, dm[0]), "boost");
		XGB(XGBoosterEvalOneIter(bst, (int)it, &dm[1], names, 1, &line), "evaluate");
		ap = train_eval_value(line, "valid-aucpr:");
		ll = train_eval_value(line, "valid-logloss:");
		v = o->stop_metric == BATCH_TRAIN_STOP_AP ? ap : ll;
		better = !isnan(v) && (isnan(best_v) ||
		    (o->stop_metric == BATCH_TRAIN_STOP_AP ? v > best_v : v < best_v));
		rep.rounds = it + 1;
		if (better) {
			best_v = v;
			rep.best_round = it + 1;
			rep.valid_logloss = ll;
		} else if (o->early_stop > 0 && it + 1 - rep.best_round >= o->early_stop &&
		    it + 1 >= o->min_rounds) {
			break;
		}
	}
	/* A validation figure from few frauds may peak by chance in the first
	 * rounds: the model keeps at least min_rounds. */
	if (rep.best_round > 0 && rep.best_round < o->min_rounds)
		rep.best_round = o->min_rounds < rep.rounds ? o->min_rounds : rep.rounds;
	if (rep.best_round == 0) {
		store_diag_set(reterr, "training: xgboost's validation figure is not a number");
		rv = VIGIL_EINTERNAL;
		goto out;
	}
	XGB(XGBoosterSlice(bst, 0, (int)rep.best_round, 1, &best), "slice");
	if (o->refit) {
		/* The same number of rounds again on every row: the validation
		 * days are the freshest mature labels, and a model that skips
		 * them serves fraud a week older than it could know. */
		/* The first booster, its matrices and their caches go first:
		 * the peak stays one training matrix (the slice is a copy). */
		XGBoosterFree(bst);
		bst = NULL;
		for (int k = 0; k < 2; k++) {
			XGDMatrixFree(dm[k]);
			dm[k] = NULL;
		}
		if (sketch != NULL)
			train_sketch_weights(label, weight, n, sketch);
		rv = train_matrix(s, 0, n, label, weight, sketch, o->threads ? o->threads : 1,
		    o->max_bin, &dm[0], reterr);
		if (rv != VIGIL_OK)
			goto out;
		for (size_t i = ntrain; i < n; i++) {
			wsum += weight[i];
			wfraud += s->fraud[i] ? weight[i] : 0.0;
		}
		rep.base_score = wfraud / wsum;
		rv = train_booster_new(&dm[0], 1, o, rep.base_score, &fit, reterr);
		if (rv != VIGIL_OK)
			goto out;
		for (uint32_t it = 0; it < rep.best_round; it++)
			XGB(XGBoosterUpdateOneIter(fit, (int)it, dm[0]), "boost (refit)");
		rep.refit = true;
	}
	saved = fit != NULL ? fit : best;
	/* Slicing (and training) does not carry the names: set on the model. */
	XGB(XGBoosterSetStrFeatureInfo(saved, "feature_name", (const char **)s->names, s->nfeat),
	    "feature names");
	XGB(XGBoosterSaveModelToBuffer(saved, "{\"format\": \"json\"}", &blen, &buf), "save");
	json = malloc(blen + 1);
	if (json == NULL) {
		rv = VIGIL_ENOMEM;
		goto out;
	}
	memcpy(json, buf, blen);
	json[blen] = '\0';

	rv = train_predict(best, s, ntrain, nvalid, &pred, reterr);
	if (rv != VIGIL_OK)
		goto out;
	rep.valid_auc = batch_metric_auc(pred, &label[ntrain], &weight[ntrain], nvalid);
	rep.valid_ap = batch_metric_ap(pred, &label[ntrain], &weight[ntrain], nvalid);
	/* Calibrated on days the model never saw, with the sampling weights:
	 * the legitimate rows count as the traffic they stand for, so the
	 * calibrated probability is a real-world fraud frequency. The prior
	 * is the model as it stands (a 1, b undoing scale_pos_weight): few
	 * validation frauds move it little. */
	prior.a = 1.0;
	prior.b = -log(o->scale_pos_weight);
	prior.sd_a = BATCH_CALIB_PRIOR_SD_A;
	prior.sd_b = BATCH_CALIB_PRIOR_SD_B;
	rep.calibrated = batch_calib_platt(pred, &label[ntrain], &weight[ntrain], nvalid, &prior,
	    &rep.calib_a, &rep.calib_b, rep.calib_why_not, sizeof rep.calib_why_not);
	if (!rep.calibrated) {
		rep.calib_a = rep.calib_b = NAN;
	} else if (rep.refit) {
		/* The fit is of the first booster's log-odds; the saved one
		 * starts from another base_score and was trained on the
		 * validation days too, so its log-odds there are others. The
		 * slope stays; b is moved so that the saved model's mean
		 * calibrated probability over the validation rows is the
		 * fitted one's (the validation days' fraud frequency). */
		double target = train_calib_mean(pred, &weight[ntrain], nvalid, rep.calib_a,
		    rep.calib_b);

		rv = train_predict(saved, s, ntrain, nvalid, &pred, reterr);
		if (rv != VIGIL_OK)
			goto out;
		rep.calib_b = train_calib_match(pred, &weight[ntrain], nvalid, rep.calib_a,
		    rep.calib_b, target);
	}
	if (rep.calibrated) {
		/* Trusted only so far: the served score ranks as the model
		 * across nights as much as within one. */
		rep.calib_a = prior.a + o->calib_trust * (rep.calib_a - prior.a);
		rep.calib_b = prior.b + o->calib_trust * (rep.calib_b - prior.b);
	}
	rv = train_predict(saved, s, 0, rep.refit ? n : ntrain, &pred, reterr);
	if (rv != VIGIL_OK)
		goto out;
	rep.train_auc = batch_metric_auc(pred, label, weight, rep.refit ? n : ntrain);
	rep.trained = true;
done:
	rep.seconds = (double)(vigil_mono_ns() - t0) / 1e9;
	*ret_json = json;
	*ret_len = json ? blen : 0;
	json = NULL;
	*ret_rep = rep;
	rv = VIGIL_OK;
out:
	if (rv == VIGIL_ENOMEM)
		store_diag_set(reterr, "training: out of memory");
	if (fit != NULL)
		XGBoosterFree(fit);
	if (best != NULL)
		XGBoosterFree(best);
	if (bst != NULL)
		XGBoosterFree(bst);
	for (int k = 0; k < 2; k++)
		if (dm[k] != NULL)
			XGDMatrixFree(dm[k]);
	free(json);
	free(perm);
	free(label);
	free(weight);
	free(sketch);
	return rv;
}
