/* SPDX-License-Identifier: MIT */
/*
 * bench/model/bench_model.c - cost of the served model per row (docs/model.md,
 * "Serving: the native evaluator"): model_forest_predict, model_forest_top
 * (k = 3, which computes every contribution) and model_forest_contrib, a
 * score with its reasons as two walks (predict, then top) and as one
 * (predict_path, then top_path, what app/score.c does), next
 * to XGBoost's own single-row prediction (XGBoosterPredictFromDense, in-place,
 * one row per call, one thread) and its in-place batch prediction (4096 rows
 * per call, one thread) as the baselines, all in the same run on the same rows. The model is trained here
 * through libxgboost's C API on synthetic data (default: 250 trees of depth
 * 6 over 60 features, fixed seed) or read from a JSON file (--model).
 * Each measurement runs --runs times; the median thread CPU ns per row, the
 * median wall ns per row and the fastest run's CPU ns per row are reported;
 * then predict and top-3 are timed one call at a time (--iterations calls)
 * for the p50 and p99 wall latency of a call. The rows (a pool of 4096, ~10%
 * missing) are cycled so that, as in vigild, consecutive rows differ.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <xgboost/c_api.h>

#include "bench_stats.h"
#include "cli.h"
#include "model.h"
#include "splitmix.h"
#include "vigil.h"

#define POOL     4096
#define MAX_RUNS 64 /* measure()'s arrays */

static const char *usage =
    "usage: bench-model [--trees N] [--depth D] [--features F] [--train-rows R]\n"
    "                   [--iterations N] [--runs R] [--model FILE]\n"
    "\n"
    "Measures the native evaluator (model/) and XGBoost's own prediction per row,\n"
    "thread CPU ns and wall ns (median of R runs) and the best run's CPU ns,\n"
    "on a model trained here\n"
    "(binary:logistic, hist, eta 0.1, seed 1, one thread) or read from FILE.\n"
    "  --trees N        boosting rounds (default 250)\n"
    "  --depth D        max_depth (default 6)\n"
    "  --features F     features (default 60)\n"
    "  --train-rows R   training rows (default 20000)\n"
    "  --iterations N   rows per run for the native evaluator (default 200000;\n"
    "                   XGBoost single-row: N / 20)\n"
    "  --runs R         runs per measurement (default 7, max 64)\n"
    "  --model FILE     an XGBoost 1.7 JSON model instead of training one\n"
    "  --help           this text\n"
    "  --version        print the version\n";

static void
print_usage(FILE *out)
{
	static const char *const exits[VIGIL_EXIT_COUNT_] = {
		"every figure measured", "training, reading or decoding the model failed", "", NULL,
	};

	fputs(usage, out);
	vigil_cli_exit_help(out, exits);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

/* splitmix64: deterministic, so every run sees the same data */
static uint64_t
rng(void)
{
	return vigil_splitmix64(&rng_state);
}

static double
urand(void)
{
	return vigil_unit_double(rng());
}

static double
nrand(void)
{
	return sqrt(-2.0 * log(urand() + 1e-300)) * cos(6.283185307179586 * urand());
}

/* Plausible fraud features: normals, small counts, amounts, flags; 10% missing. */
static void
make_rows(uint32_t n, uint32_t nf, float *x, float *y)
{
	for (uint32_t r = 0; r < n; r++) {
		float *row = x + (size_t)r * nf;
		double z = -2.5;

		for (uint32_t c = 0; c < nf; c++) {
			double v;

			switch (c % 4) {
			case 0: v = nrand(); break;
			case 1: v = (double)(rng() % 12); break;
			case 2: v = round(exp(3.0 + 1.5 * nrand()) * 100.0) / 100.0; break;
			default: v = (double)(rng() % 2); break;
			}
			row[c] = urand() < 0.1 ? NAN : (float)v;
			if (c < 12 && !isnan(row[c]))
				z += (c % 4 == 2 ? 0.2 * log(v + 1.0) : 0.3 * v) * (c % 3 ? 1 : -1);
		}
		if (y != NULL)
			y[r] = urand() < 1.0 / (1.0 + exp(-(z + nrand()))) ? 1.0f : 0.0f;
	}
}

enum what { W_PREDICT, W_TOP3, W_CONTRIB, W_PRED_TOP3, W_PATH_TOP3, W_XGB_ROW, W_XGB_BATCH };

struct ctx {
	model_forest  *forest;
	model_leaves  *path;        /* W_PATH_TOP3's leaves */
	BoosterHandle  booster;
	DMatrixHandle  dpool;
	uint32_t       nf;
	float         *pool;
	char         (*iface)[160]; /* array interface of each pool row */
	char           iface_pool[160]; /* and of the whole pool */
	volatile double sink;
};

static const char xgb_config[] =
    "{\"type\": 0, \"training\": false, \"iteration_begin\": 0, \"iteration_end\": 0, "
    "\"strict_shape\": false, \"missing\": NaN, \"cache_id\": 0}";

static int
run_once(struct ctx *c, enum what w, uint32_t n)
{
	float contrib[MODEL_MAX_FEATURES + 1];
	model_reason r[3];
	double acc = 0;
	const bst_ulong *shape;
	bst_ulong dim;
	const float *out;

	for (uint32_t i = 0; i < n; i++) {
		const float *x = c->pool + (size_t)(i % POOL) * c->nf;

		switch (w) {
		case W_PREDICT:
			acc += model_forest_predict(c->forest, x);
			break;
		case W_TOP3:
			acc += model_forest_top(c->forest, x, 3, r);
			break;
		case W_CONTRIB:
			model_forest_contrib(c->forest, x, contrib);
			acc += contrib[0];
			break;
		case W_PRED_TOP3: /* a score with reasons, two walks */
			acc += model_forest_predict(c->forest, x);
			acc += model_forest_top(c->forest, x, 3, r);
			break;
		case W_PATH_TOP3: /* the same, one walk (app/score.c) */
			acc += model_forest_predict_path(c->forest, x, c->path);
			acc += model_forest_top_path(c->forest, c->path, 3, r);
			break;
		case W_XGB_ROW:
			if (XGBoosterPredictFromDense(c->booster, c->iface[i % POOL], xgb_config, NULL,
			    &shape, &dim, &out) != 0) {
				fprintf(stderr, "bench-model: XGBoosterPredictFromDense: %s\n",
				    XGBGetLastError());
				return -1;
			}
			acc += out[0];
			break;
		case W_XGB_BATCH:
			/* n / POOL in-place predictions of the whole pool (a DMatrix
			 * would be answered from XGBoost's prediction cache) */
			if (i % POOL == 0) {
				if (XGBoosterPredictFromDense(c->booster, c->iface_pool, xgb_config, NULL,
				    &shape, &dim, &out) != 0) {
					fprintf(stderr, "bench-model: XGBoosterPredictFromDense: %s\n",
					    XGBGetLastError());
					return -1;
				}
				acc += out[0];
			}
			break;
		}
	}
	c->sink = acc;
	return 0;
}

/* Median CPU and wall ns per row over runs of n rows (after one warm-up run),
 * and the fastest run's CPU ns (the least disturbed by other processes). */
static int
measure(struct ctx *c, enum what w, uint32_t n, int runs, double *ret_cpu, double *ret_wall,
    double *ret_best)
{
	double cpu[MAX_RUNS], wall[MAX_RUNS];

	if (runs > MAX_RUNS)
		runs = MAX_RUNS;
	if (run_once(c, w, n < POOL ? n : POOL) != 0)
		return -1;
	for (int r = 0; r < runs; r++) {
		double c0 = (double)bench_clock_ns(CLOCK_THREAD_CPUTIME_ID), w0 = (double)bench_clock_ns(CLOCK_MONOTONIC);

		if (run_once(c, w, n) != 0)
			return -1;
		cpu[r] = ((double)bench_clock_ns(CLOCK_THREAD_CPUTIME_ID) - c0) / n;
		wall[r] = ((double)bench_clock_ns(CLOCK_MONOTONIC) - w0) / n;
	}
	qsort(cpu, (size_t)runs, sizeof cpu[0], bench_cmp_double);
	qsort(wall, (size_t)runs, sizeof wall[0], bench_cmp_double);
	*ret_cpu = cpu[runs / 2];
	*ret_wall = wall[runs / 2];
	*ret_best = cpu[0];
	return 0;
}

/*
 * Per-call wall latency of one row: each call timed alone with
 * CLOCK_MONOTONIC (the clock's own cost, ~20-30 ns, included). The p50 is
 * the figure least affected by other processes: a call of a microsecond is
 * rarely descheduled, so only the tail sees the load.
 */
static int
latency(struct ctx *c, enum what w, uint32_t n, double *ret_p50, double *ret_p99)
{
	double *lat = malloc(sizeof *lat * n);
	float contrib[MODEL_MAX_FEATURES + 1];
	model_reason r[3];
	double acc = 0;

	if (lat == NULL)
		return -1;
	for (uint32_t i = 0; i < n; i++) {
		const float *x = c->pool + (size_t)(i % POOL) * c->nf;
		double t0 = (double)bench_clock_ns(CLOCK_MONOTONIC);

		switch (w) {
		case W_PREDICT: acc += model_forest_predict(c->forest, x); break;
		case W_TOP3: acc += model_forest_top(c->forest, x, 3, r); break;
		default: model_forest_contrib(c->forest, x, contrib); acc += contrib[0]; break;
		}
		lat[i] = (double)bench_clock_ns(CLOCK_MONOTONIC) - t0;
	}
	c->sink = acc;
	qsort(lat, n, sizeof lat[0], bench_cmp_double);
	*ret_p50 = lat[n / 2];
	*ret_p99 = lat[(size_t)n * 99 / 100];
	free(lat);
	return 0;
}

static char *
read_file(const char *path, size_t *ret_len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
	    (buf = malloc((size_t)n + 1)) != NULL && fread(buf, 1, (size_t)n, f) == (size_t)n) {
		*ret_len = (size_t)n;
	} else {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	return buf;
}

#define XGB_CHECK(call) \
	do { \
		if ((call) != 0) { \
			fprintf(stderr, "bench-model: %s: %s\n", #call, XGBGetLastError()); \
			goto out; \
		} \
	} while (0)

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "trees", required_argument, NULL, 't' },
		{ "depth", required_argument, NULL, 'd' },
		{ "features", required_argument, NULL, 'f' },
		{ "train-rows", required_argument, NULL, 'n' },
		{ "iterations", required_argument, NULL, 'i' },
		{ "runs", required_argument, NULL, 'r' },
		{ "model", required_argument, NULL, 'm' },
		{ "help", no_argument, NULL, 'h' },
		VIGIL_CLI_VERSION,
		{ NULL, 0, NULL, 0 },
	};
	uint32_t trees = 250, depth = 6, nf = 60, ntrain = 20000, iters = 200000;
	int runs = 7, o, rc = 1;
	const char *model_file = NULL;
	struct ctx c = { 0 };
	DMatrixHandle dtrain = NULL;
	float *train_x = NULL, *train_y = NULL;
	char *json = NULL, **names = NULL, depth_s[16];
	const char *json_ro;
	size_t json_len = 0;
	bst_ulong blen;
	model_diag diag;
	vigil_err rv;
	double t0, cpu, wall, best, maxdiff = 0;
	const bst_ulong *shape;
	bst_ulong dim;
	const float *xout;

	opterr = 0;
	while ((o = getopt_long(argc, argv, "hV", opts, NULL)) != -1) {
		uint32_t v = 0;
		int u = VIGIL_EXIT_OK;

		switch (o) {
		case 't': u = vigil_cli_parse_u32("bench-model", "trees", optarg,
		    1, MODEL_MAX_TREES, &trees); break;
		case 'd': u = vigil_cli_parse_u32("bench-model", "depth", optarg,
		    1, MODEL_MAX_DEPTH, &depth); break;
		case 'f': u = vigil_cli_parse_u32("bench-model", "features", optarg,
		    1, MODEL_MAX_FEATURES, &nf); break;
		case 'n': u = vigil_cli_parse_u32("bench-model", "train-rows", optarg,
		    10, UINT32_MAX, &ntrain); break;
		case 'i': u = vigil_cli_parse_u32("bench-model", "iterations", optarg,
		    20, UINT32_MAX, &iters); break;
		case 'r': u = vigil_cli_parse_u32("bench-model", "runs", optarg,
		    1, MAX_RUNS, &v); runs = (int)v; break;
		case 'm': model_file = optarg; break;
		case 'h': print_usage(stdout); return VIGIL_EXIT_OK;
		case 'V': vigil_cli_version(stdout, "bench-model"); return VIGIL_EXIT_OK;
		default: return vigil_cli_bad_option("bench-model", argv);
		}
		if (u != VIGIL_EXIT_OK)
			return u;
	}
	if (optind != argc)
		return vigil_cli_usage_error("bench-model", "%s: unexpected argument", argv[optind]);

	if (model_file != NULL) {
		json = read_file(model_file, &json_len);
		if (json == NULL) {
			fprintf(stderr, "bench-model: %s: cannot read\n", model_file);
			return 1;
		}
		XGB_CHECK(XGBoosterCreate(NULL, 0, &c.booster));
		XGB_CHECK(XGBoosterLoadModelFromBuffer(c.booster, json, json_len));
		rv = model_forest_decode(json, json_len, &c.forest, &diag);
		if (rv != VIGIL_OK) {
			fprintf(stderr, "bench-model: %s: %s\n", model_file,
			    vigil_errinfo_format(&diag, (char[512]){ 0 }, 512));
			goto out;
		}
		nf = model_forest_nfeatures(c.forest);
	} else {
		train_x = malloc(sizeof(float) * ntrain * nf);
		train_y = malloc(sizeof(float) * ntrain);
		names = calloc(nf, sizeof *names);
		if (train_x == NULL || train_y == NULL || names == NULL)
			goto out;
		for (uint32_t i = 0; i < nf; i++) {
			names[i] = malloc(16);
			if (names[i] == NULL)
				goto out;
			snprintf(names[i], 16, "f%02u", i);
		}
		make_rows(ntrain, nf, train_x, train_y);
		XGB_CHECK(XGDMatrixCreateFromMat(train_x, ntrain, nf, NAN, &dtrain));
		XGB_CHECK(XGDMatrixSetFloatInfo(dtrain, "label", train_y, ntrain));
		XGB_CHECK(XGBoosterCreate(&dtrain, 1, &c.booster));
		snprintf(depth_s, sizeof depth_s, "%u", depth);
		XGB_CHECK(XGBoosterSetParam(c.booster, "objective", "binary:logistic"));
		XGB_CHECK(XGBoosterSetParam(c.booster, "tree_method", "hist"));
		XGB_CHECK(XGBoosterSetParam(c.booster, "max_depth", depth_s));
		XGB_CHECK(XGBoosterSetParam(c.booster, "eta", "0.1"));
		XGB_CHECK(XGBoosterSetParam(c.booster, "seed", "1"));
		XGB_CHECK(XGBoosterSetParam(c.booster, "verbosity", "0"));
		XGB_CHECK(XGBoosterSetStrFeatureInfo(c.booster, "feature_name",
		    (const char **)names, nf));
		fprintf(stderr, "bench-model: training %u trees of depth %u on %u rows x %u features...\n",
		    trees, depth, ntrain, nf);
		XGB_CHECK(XGBoosterSetParam(c.booster, "nthread", "1"));
		for (uint32_t i = 0; i < trees; i++)
			XGB_CHECK(XGBoosterUpdateOneIter(c.booster, (int)i, dtrain));
		XGB_CHECK(XGBoosterSaveModelToBuffer(c.booster, "{\"format\": \"json\"}", &blen, &json_ro));
		json_len = blen;
		json = malloc(json_len);
		if (json == NULL)
			goto out;
		memcpy(json, json_ro, json_len);
	}
	XGB_CHECK(XGBoosterSetParam(c.booster, "nthread", "1"));

	t0 = (double)bench_clock_ns(CLOCK_MONOTONIC);
	for (int r = 0; r < 5; r++) {
		model_forest_free(c.forest);
		c.forest = NULL;
		rv = model_forest_decode(json, json_len, &c.forest, &diag);
		if (rv != VIGIL_OK) {
			fprintf(stderr, "bench-model: decode: %s\n",
			    vigil_errinfo_format(&diag, (char[512]){ 0 }, 512));
			goto out;
		}
	}
	printf("model: %u trees, %u features, %zu bytes of JSON, decode %.1f ms\n",
	    model_forest_ntrees(c.forest), nf, json_len, ((double)bench_clock_ns(CLOCK_MONOTONIC) - t0) / 5 / 1e6);

	c.nf = nf;
	c.pool = malloc(sizeof(float) * POOL * nf);
	c.iface = malloc(sizeof *c.iface * POOL);
	c.path = malloc(sizeof *c.path);
	if (c.pool == NULL || c.iface == NULL || c.path == NULL)
		goto out;
	rng_state = 42;
	make_rows(POOL, nf, c.pool, NULL);
	for (uint32_t i = 0; i < POOL; i++)
		snprintf(c.iface[i], sizeof c.iface[i],
		    "{\"data\": [%llu, true], \"shape\": [1, %u], \"typestr\": \"<f4\", \"version\": 3}",
		    (unsigned long long)(uintptr_t)(c.pool + (size_t)i * nf), nf);
	snprintf(c.iface_pool, sizeof c.iface_pool,
	    "{\"data\": [%llu, true], \"shape\": [%u, %u], \"typestr\": \"<f4\", \"version\": 3}",
	    (unsigned long long)(uintptr_t)c.pool, POOL, nf);
	XGB_CHECK(XGDMatrixCreateFromMat(c.pool, POOL, nf, NAN, &c.dpool));

	/* the two agree (test_model_xgboost proves it; this checks the bench's own setup) */
	XGB_CHECK(XGBoosterPredictFromDMatrix(c.booster, c.dpool, "{\"type\": 0, \"training\": false, "
	    "\"iteration_begin\": 0, \"iteration_end\": 0, \"strict_shape\": false}", &shape, &dim,
	    &xout));
	for (uint32_t i = 0; i < POOL; i++) {
		double d = fabs(model_forest_predict(c.forest, c.pool + (size_t)i * nf) - xout[i]);

		maxdiff = d > maxdiff ? d : maxdiff;
	}
	printf("max |native - xgboost| over %u rows: %.3g\n", POOL, maxdiff);

	printf("%-40s %12s %12s %12s\n", "per row", "CPU ns", "wall ns", "best CPU ns");
	{
		static const struct {
			enum what w;
			const char *name;
			uint32_t div;
		} m[] = {
			{ W_PREDICT, "model_forest_predict", 1 },
			{ W_TOP3, "model_forest_top (k=3)", 1 },
			{ W_CONTRIB, "model_forest_contrib", 1 },
			{ W_PRED_TOP3, "predict + top (k=3)", 1 },
			{ W_PATH_TOP3, "predict_path + top_path (k=3)", 1 },
			{ W_XGB_ROW, "XGBoosterPredictFromDense (1 row)", 20 },
			{ W_XGB_BATCH, "XGBoosterPredictFromDense (4096 rows)", 1 },
		};

		for (size_t i = 0; i < sizeof m / sizeof m[0]; i++) {
			uint32_t n = iters / m[i].div;

			if (m[i].w == W_XGB_BATCH)
				n = (n + POOL - 1) / POOL * POOL;
			if (measure(&c, m[i].w, n, runs, &cpu, &wall, &best) != 0)
				goto out;
			printf("%-40s %12.0f %12.0f %12.0f\n", m[i].name, cpu, wall, best);
			fflush(stdout);
		}
	}
	printf("%-40s %12s %12s\n", "per call, one row timed at a time", "p50 ns", "p99 ns");
	{
		static const struct {
			enum what w;
			const char *name;
		} m[] = {
			{ W_PREDICT, "model_forest_predict" },
			{ W_TOP3, "model_forest_top (k=3)" },
		};

		for (size_t i = 0; i < sizeof m / sizeof m[0]; i++) {
			double p50, p99;

			if (latency(&c, m[i].w, iters, &p50, &p99) != 0)
				goto out;
			printf("%-40s %12.0f %12.0f\n", m[i].name, p50, p99);
		}
	}
	rc = 0;
out:
	model_forest_free(c.forest);
	if (c.booster != NULL)
		XGBoosterFree(c.booster);
	if (dtrain != NULL)
		XGDMatrixFree(dtrain);
	if (c.dpool != NULL)
		XGDMatrixFree(c.dpool);
	if (names != NULL)
		for (uint32_t i = 0; i < nf; i++)
			free(names[i]);
	free(names);
	free(train_x);
	free(train_y);
	free(json);
	free(c.pool);
	free(c.iface);
	free(c.path);
	return rc;
}
