/* SPDX-License-Identifier: MIT */
/*
 * tests/model/test_model_xgboost.c - the native evaluator against XGBoost
 * itself (DESIGN.md contract 7: equal to XGBoost's prediction to 1e-6).
 * Each test trains a binary:logistic model through libxgboost's C API on
 * synthetic data (deterministic: fixed seeds, one thread), saves it as JSON,
 * decodes it with model_forest_decode and compares, on 100,000 fresh rows
 * with ~10% missing values and integer-valued columns (whose values fall
 * exactly on split thresholds), model_forest_predict with XGBoost's
 * prediction, model_forest_margin with its margin, and model_forest_contrib
 * with its approximate contributions (predict type 3), and the one-walk
 * pair model_forest_predict_path / model_forest_top_path with predict and
 * top bit for bit. The maximum
 * differences are printed. Shapes covered: the default size (300 trees of
 * depth 6), stumps, depth 2 with a non-default base_score and sampling, deep
 * loss-guided trees, pruned trees (deleted nodes), single-leaf trees, and an
 * untrained model.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <xgboost/c_api.h>

#include "model.h"

#define NF       24      /* features */
#define NTRAIN   20000   /* training rows */
#define NEVAL    100000  /* rows compared */
#define NCONTRIB 20000   /* rows whose contributions are compared */

#define XGB_OK(call) \
	do { \
		if ((call) != 0) \
			fail_msg("%s: %s", #call, XGBGetLastError()); \
	} while (0)

static uint64_t rng_state;

static uint64_t
rng(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static double
urand(void)
{
	return (double)(rng() >> 11) / 9007199254740992.0;
}

static double
nrand(void)
{
	double u = urand(), v = urand();

	return sqrt(-2.0 * log(u + 1e-300)) * cos(6.283185307179586 * v);
}

/*
 * Rows of NF columns: 0-7 normal, 8-13 integers 0..9 (and 14 a 0/1 flag),
 * 15-19 log-normal "amounts" rounded to cents, 20-23 uniform; each value
 * missing with probability 0.1, and one row in 500 entirely missing. The
 * label depends on a few columns, missing ones included.
 */
static void
make_rows(uint64_t seed, uint32_t n, float *x, float *y)
{
	rng_state = seed;
	for (uint32_t r = 0; r < n; r++) {
		float *row = x + (size_t)r * NF;
		double z;
		int all_missing = rng() % 500 == 0;

		for (uint32_t c = 0; c < NF; c++) {
			double v;

			if (c < 8)
				v = nrand();
			else if (c < 14)
				v = (double)(rng() % 10);
			else if (c == 14)
				v = (double)(rng() % 2);
			else if (c < 20)
				v = round(exp(3.0 + 1.5 * nrand()) * 100.0) / 100.0;
			else
				v = urand();
			row[c] = all_missing || urand() < 0.1 ? NAN : (float)v;
		}
		z = -2.0 + 1.2 * (isnan(row[0]) ? 0.5 : row[0]) - 0.8 * (isnan(row[1]) ? -1.0 : row[1]) +
		    0.3 * (isnan(row[8]) ? 4.0 : row[8]) - 0.6 * (isnan(row[9]) ? 0.0 : row[9] > 6) +
		    (isnan(row[14]) ? 1.0 : row[14]) +
		    0.5 * (isnan(row[15]) ? 0.0 : log(row[15] + 1.0) > 4.0) +
		    (isnan(row[20]) ? 0.0 : sin(6.0 * row[20])) + 0.7 * nrand();
		if (y != NULL)
			y[r] = urand() < 1.0 / (1.0 + exp(-z)) ? 1.0f : 0.0f;
	}
}

static float *train_x, *train_y, *eval_x;
static DMatrixHandle dtrain, deval;
static const char *names[NF];

static int
setup(void **state)
{
	static char names_buf[NF][16];

	(void)state;
	train_x = malloc(sizeof(float) * NTRAIN * NF);
	train_y = malloc(sizeof(float) * NTRAIN);
	eval_x = malloc(sizeof(float) * NEVAL * NF);
	if (train_x == NULL || train_y == NULL || eval_x == NULL)
		return -1;
	make_rows(1, NTRAIN, train_x, train_y);
	make_rows(2, NEVAL, eval_x, NULL);
	for (int i = 0; i < NF; i++) {
		snprintf(names_buf[i], sizeof names_buf[i], "feat_%02d", i);
		names[i] = names_buf[i];
	}
	if (XGDMatrixCreateFromMat(train_x, NTRAIN, NF, NAN, &dtrain) != 0 ||
	    XGDMatrixSetFloatInfo(dtrain, "label", train_y, NTRAIN) != 0 ||
	    XGDMatrixSetStrFeatureInfo(dtrain, "feature_name", names, NF) != 0 ||
	    XGDMatrixCreateFromMat(eval_x, NEVAL, NF, NAN, &deval) != 0 ||
	    XGDMatrixSetStrFeatureInfo(deval, "feature_name", names, NF) != 0) {
		fprintf(stderr, "xgboost: %s\n", XGBGetLastError());
		return -1;
	}
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	XGDMatrixFree(dtrain);
	XGDMatrixFree(deval);
	free(train_x);
	free(train_y);
	free(eval_x);
	return 0;
}

/* Trains rounds iterations with params (NULL-terminated key, value pairs). */
static BoosterHandle
train(const char *const *params, int rounds)
{
	BoosterHandle b;

	XGB_OK(XGBoosterCreate(&dtrain, 1, &b));
	XGB_OK(XGBoosterSetParam(b, "objective", "binary:logistic"));
	XGB_OK(XGBoosterSetParam(b, "tree_method", "hist"));
	XGB_OK(XGBoosterSetParam(b, "seed", "7"));
	XGB_OK(XGBoosterSetParam(b, "nthread", "1"));
	XGB_OK(XGBoosterSetParam(b, "verbosity", "0"));
	for (; params != NULL && params[0] != NULL; params += 2)
		XGB_OK(XGBoosterSetParam(b, params[0], params[1]));
	/* the booster does not take the names from the DMatrix (Python's
	 * Booster sets them the same way) */
	XGB_OK(XGBoosterSetStrFeatureInfo(b, "feature_name", names, NF));
	for (int i = 0; i < rounds; i++)
		XGB_OK(XGBoosterUpdateOneIter(b, i, dtrain));
	return b;
}

/* What the model really holds, read from its JSON independently of model/:
 * the deepest leaf and the deleted nodes (so each test proves it covers the
 * shape it claims to). */
struct shape {
	int max_depth;
	long deleted;
};

static int
json_depth(json_t *left, json_t *right, json_int_t node)
{
	json_int_t l = json_integer_value(json_array_get(left, (size_t)node));
	json_int_t r = json_integer_value(json_array_get(right, (size_t)node));
	int dl, dr;

	if (l == -1)
		return 0;
	dl = json_depth(left, right, l);
	dr = json_depth(left, right, r);
	return 1 + (dl > dr ? dl : dr);
}

static struct shape
json_shape(const char *buf, size_t len)
{
	struct shape sh = { 0, 0 };
	json_error_t jerr;
	json_t *root = json_loadb(buf, len, 0, &jerr), *trees;
	size_t i;

	assert_non_null(root);
	trees = json_object_get(json_object_get(json_object_get(json_object_get(root, "learner"),
	    "gradient_booster"), "model"), "trees");
	for (i = 0; i < json_array_size(trees); i++) {
		json_t *t = json_array_get(trees, i);
		int d = json_depth(json_object_get(t, "left_children"),
		    json_object_get(t, "right_children"), 0);

		sh.max_depth = d > sh.max_depth ? d : sh.max_depth;
		sh.deleted += atol(json_string_value(json_object_get(json_object_get(t, "tree_param"),
		    "num_deleted")));
	}
	json_decref(root);
	return sh;
}

static model_forest *
decode_booster(BoosterHandle b, struct shape *ret_shape)
{
	bst_ulong len;
	const char *buf;
	model_forest *f = NULL;
	model_diag diag;
	vigil_err rv;

	XGB_OK(XGBoosterSaveModelToBuffer(b, "{\"format\": \"json\"}", &len, &buf));
	if (ret_shape != NULL)
		*ret_shape = json_shape(buf, len);
	rv = model_forest_decode(buf, len, &f, &diag);
	if (rv != VIGIL_OK)
		fail_msg("model_forest_decode: %s: %s", vigil_errname(rv),
		    vigil_errinfo_format(&diag, (char[512]){ 0 }, 512));
	return f;
}

static const float *
xgb_predict(BoosterHandle b, int type, bst_ulong want_cols)
{
	char config[160];
	const bst_ulong *shape;
	bst_ulong dim, cols;
	const float *out;

	snprintf(config, sizeof config,
	    "{\"type\": %d, \"training\": false, \"iteration_begin\": 0, \"iteration_end\": 0, "
	    "\"strict_shape\": false}", type);
	XGB_OK(XGBoosterPredictFromDMatrix(b, deval, config, &shape, &dim, &out));
	cols = dim == 1 ? 1 : shape[1];
	assert_int_equal(shape[0], NEVAL);
	assert_int_equal(cols, want_cols);
	return out;
}

/*
 * The one-walk pair, predict_path then top_path (what app/ scores with),
 * against predict and top walking x themselves: bit for bit, every k, so a
 * reply's score and reasons do not depend on which is used.
 */
static void
compare_path(const model_forest *f, const float *x, model_leaves *path)
{
	model_reason want[MODEL_TOP_MAX], got[MODEL_TOP_MAX];
	double p = model_forest_predict(f, x), pp;

	memset(path, 0xa5, sizeof *path);
	pp = model_forest_predict_path(f, x, path);
	assert_memory_equal(&pp, &p, sizeof p);
	for (uint32_t k = 0; k <= MODEL_TOP_MAX + 1; k++) {
		uint32_t n = model_forest_top(f, x, k, want);

		assert_int_equal(model_forest_top_path(f, path, k, got), n);
		for (uint32_t i = 0; i < n; i++) {
			assert_int_equal(got[i].feature, want[i].feature);
			assert_memory_equal(&got[i].contrib, &want[i].contrib, sizeof got[i].contrib);
		}
	}
}

/*
 * The comparisons. Returns nothing; fails the test on a difference over the
 * tolerance and prints the maxima either way.
 */
static struct shape
compare(const char *what, BoosterHandle b, uint32_t want_trees)
{
	struct shape sh;
	model_forest *f = decode_booster(b, &sh);
	const float *xp, *xm, *xc;
	double dp = 0, dm = 0, dc = 0, dsum = 0;
	uint32_t exact_p = 0, exact_m = 0;
	float contrib[NF + 1];
	model_leaves *path = malloc(sizeof *path);

	assert_non_null(path);
	assert_non_null(f);
	assert_int_equal(model_forest_nfeatures(f), NF);
	assert_string_equal(model_forest_feature(f, 3), "feat_03");
	assert_int_equal(model_forest_ntrees(f), want_trees);

	xp = xgb_predict(b, 0, 1);
	for (uint32_t r = 0; r < NEVAL; r++) {
		double p = model_forest_predict(f, eval_x + (size_t)r * NF);
		double d = fabs(p - (double)xp[r]);

		assert_true(p >= 0.0 && p <= 1.0);
		dp = d > dp ? d : dp;
		exact_p += (float)p == xp[r];
	}
	xm = xgb_predict(b, 1, 1);
	for (uint32_t r = 0; r < NEVAL; r++) {
		double m = model_forest_margin(f, eval_x + (size_t)r * NF);
		double d = fabs(m - (double)xm[r]);

		dm = d > dm ? d : dm;
		exact_m += (float)m == xm[r];
	}
	xc = xgb_predict(b, 3, NF + 1);
	for (uint32_t r = 0; r < NCONTRIB; r++) {
		const float *x = eval_x + (size_t)r * NF;
		double sum = 0, m = model_forest_margin(f, x), d;

		model_forest_contrib(f, x, contrib);
		for (uint32_t c = 0; c <= NF; c++) {
			d = fabs((double)contrib[c] - (double)xc[(size_t)r * (NF + 1) + c]);
			dc = d > dc ? d : dc;
			sum += contrib[c];
		}
		d = fabs(sum - m) / (fabs(m) > 1.0 ? fabs(m) : 1.0);
		dsum = d > dsum ? d : dsum;
		compare_path(f, x, path);
	}
	printf("%-22s trees %4u depth %2d deleted %3ld  max|p - xgb| %.3g (%u/%u bit-equal)  max|margin - xgb| %.3g "
	    "(%u/%u)  max|contrib - xgb| %.3g  max|sum(contrib) - margin| rel %.3g\n",
	    what, model_forest_ntrees(f), sh.max_depth, sh.deleted, dp, exact_p, NEVAL, dm, exact_m, NEVAL, dc, dsum);
	assert_true(dp <= 1e-6);
	assert_true(dm <= 1e-5);
	assert_true(dc <= 1e-5);
	assert_true(dsum <= 1e-5);
	model_forest_free(f);
	free(path);
	return sh;
}

static void
test_default_size(void **state)
{
	static const char *const params[] = { "max_depth", "6", "eta", "0.1", NULL };
	BoosterHandle b = train(params, 300);

	(void)state;
	assert_int_equal(compare("depth 6, 300 trees", b, 300).max_depth, 6);
	XGBoosterFree(b);
}

static void
test_stumps(void **state)
{
	static const char *const params[] = { "max_depth", "1", "eta", "0.3", NULL };
	BoosterHandle b = train(params, 61);

	(void)state;
	assert_int_equal(compare("depth 1, 61 trees", b, 61).max_depth, 1);
	XGBoosterFree(b);
}

static void
test_depth2_base_score_sampling(void **state)
{
	static const char *const params[] = { "max_depth", "2", "eta", "0.2", "base_score", "0.1",
		"subsample", "0.8", "colsample_bytree", "0.7", "min_child_weight", "0", NULL };
	BoosterHandle b = train(params, 100);

	(void)state;
	assert_int_equal(compare("depth 2, base 0.1", b, 100).max_depth, 2);
	XGBoosterFree(b);
}

static void
test_deep_lossguide(void **state)
{
	static const char *const params[] = { "grow_policy", "lossguide", "max_depth", "0",
		"max_leaves", "255", "min_child_weight", "0.5", "eta", "0.3", NULL };
	BoosterHandle b = train(params, 20);

	(void)state;
	/* deeper than the 8 trees of a block, unbalanced */
	assert_true(compare("lossguide, 255 leaves", b, 20).max_depth > 8);
	XGBoosterFree(b);
}

static void
test_exact_pruned(void **state)
{
	static const char *const params[] = { "tree_method", "exact", "max_depth", "5",
		"gamma", "3", NULL };
	BoosterHandle b = train(params, 30);

	(void)state;
	assert_true(compare("exact, pruned", b, 30).deleted > 0);
	XGBoosterFree(b);
}

static void
test_single_leaf_trees(void **state)
{
	static const char *const params[] = { "max_depth", "3", "gamma", "1e9", NULL };
	BoosterHandle b = train(params, 11);

	(void)state;
	assert_int_equal(compare("single leaves", b, 11).max_depth, 0);
	XGBoosterFree(b);
}

static void
test_untrained(void **state)
{
	BoosterHandle b = train(NULL, 0);
	model_forest *f;
	float x[NF], c[NF + 1];

	(void)state;
	/* XGBoost needs a configured booster to save: one prediction does it */
	(void)xgb_predict(b, 0, 1);
	f = decode_booster(b, NULL);
	assert_int_equal(model_forest_ntrees(f), 0);
	for (int i = 0; i < NF; i++)
		x[i] = (float)i;
	assert_true(model_forest_margin(f, x) == 0.0);
	assert_true(model_forest_predict(f, x) == 0.5);
	model_forest_contrib(f, x, c);
	assert_true(c[NF] == 0.0f);
	model_forest_free(f);
	XGBoosterFree(b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_default_size),
		cmocka_unit_test(test_stumps),
		cmocka_unit_test(test_depth2_base_score_sampling),
		cmocka_unit_test(test_deep_lossguide),
		cmocka_unit_test(test_exact_pruned),
		cmocka_unit_test(test_single_leaf_trees),
		cmocka_unit_test(test_untrained),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
