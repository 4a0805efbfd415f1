/* SPDX-License-Identifier: MIT */
/*
 * bench/batch/bench_train.c - how long the nightly model takes to train
 * (batch/train.c): fills a training set with N synthetic rows of F float
 * features over D days (fraud a nonlinear function of a dozen features plus
 * noise, about 0.5% of the rows; some features missing), then runs
 * batch_train_run() on it several times and prints, per run, the seconds
 * (wall and CPU: the CPU time is the figure to compare on a shared
 * machine), rounds and validation figures, then the medians, the peak RSS of
 * the process and the xxh64 of the model bytes (equal across runs: the
 * model is deterministic; compare it across --threads to see whether the
 * thread count changes the bytes). Figures go to docs/model.md "Training".
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <xxhash.h>

#include "batch.h"
#include "bench_stats.h"
#include "cli.h"
#include "rebuild.h"
#include "train.h"

#define T0 (20454LL * VIGIL_MS_PER_DAY) /* 2026-01-01 */
#define MAX_FEAT 1024
#define MAX_RUNS 1000

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t
next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static double
unif(void)
{
	return (double)(next_rand() >> 11) / 9007199254740992.0;
}

/* Roughly normal: the sum of four uniforms, centred and scaled. */
static double
gauss(void)
{
	return (unif() + unif() + unif() + unif() - 2.0) * 1.7320508;
}

static uint64_t
mix64(uint64_t k)
{
	k = (k ^ (k >> 30)) * 0xbf58476d1ce4e5b9ull;
	k = (k ^ (k >> 27)) * 0x94d049bb133111ebull;
	return k ^ (k >> 31);
}

/* One row: x[0..nf) and its label. Columns by j % 4: normal, log-normal
 * "amount", small count "velocity", uniform; columns 40.. are missing 10%
 * of the time. The label uses columns 0..11 only. */
static bool
gen_row(float *x, uint32_t nf)
{
	double logit;

	for (uint32_t j = 0; j < nf; j++) {
		switch (j % 4) {
		case 0: x[j] = (float)gauss(); break;
		case 1: x[j] = (float)exp(3.0 + gauss()); break;
		case 2: x[j] = (float)floor(-log(unif() + 1e-12) * 2.0); break;
		default: x[j] = (float)unif(); break;
		}
		if (j >= 40 && unif() < 0.1)
			x[j] = NAN;
	}
	logit = -8.2;
	logit += nf > 0 ? 0.9 * x[0] : 0;
	logit += nf > 1 ? 0.6 * (log(x[1]) - 3.0) : 0;
	logit += nf > 2 ? (x[2] > 5 ? 1.5 : 0) : 0;
	logit += nf > 4 ? 0.7 * x[4] * (nf > 3 ? x[3] : 0) : 0;
	logit += nf > 6 ? 0.4 * x[6] : 0;
	logit += nf > 8 ? 0.8 * sin(2.0 * x[8]) : 0;
	logit += nf > 11 ? (x[11] < 0.05 ? 1.2 : 0) : 0;
	logit += nf > 10 ? 0.3 * x[10] : 0;
	logit += 0.5 * gauss(); /* what no feature explains */
	return unif() < 1.0 / (1.0 + exp(-logit));
}

static double
cpu_seconds(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) != 0)
		return 0;
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	    (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static double
peak_rss_mb(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) != 0)
		return 0;
	return (double)ru.ru_maxrss / 1024.0;
}

static void
usage(FILE *f)
{
	static const char *const exits[VIGIL_EXIT_COUNT_] = {
		"every run trained a model, the same bytes each time",
		"training failed, or the model bytes differed across runs", "", NULL,
	};

	fprintf(f, "usage: bench-train [--nightly] [--rows N (1000000)] [--features F (60)] [--days D (30)]\n"
	    "  [--threads T (2)] [--runs R (3)] [--max-rows N (1000000)] [--max-rounds N (300)]\n"
	    "  [--early-stop N (30)] [--stop ap|logloss] [--scale-pos-weight W (1)]\n"
	    "  [--min-child-weight W (5)] [--max-bin N (256)] [--eta E (0.1)] [--max-depth N (6)]\n"
	    "  [--lambda L (1)] [--no-refit] [--plain-bins] [--out FILE (the model of the last run)]\n"
	    "       bench-train --help | --version\n"
	    "--nightly starts from vigil-rebuild's nightly options (batch_train_opts_nightly:\n"
	    "100,000 rows, eta 0.2, lambda 10, a fixed number of rounds) instead of the\n"
	    "library's defaults; the other flags change them, in any order.\n");
	vigil_cli_exit_help(f, exits);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "nightly", no_argument, NULL, 'N' },
		{ "rows", required_argument, NULL, 'n' },
		{ "features", required_argument, NULL, 'f' },
		{ "days", required_argument, NULL, 'd' },
		{ "threads", required_argument, NULL, 't' },
		{ "runs", required_argument, NULL, 'r' },
		{ "max-rows", required_argument, NULL, 'm' },
		{ "max-rounds", required_argument, NULL, 'R' },
		{ "early-stop", required_argument, NULL, 'e' },
		{ "stop", required_argument, NULL, 's' },
		{ "scale-pos-weight", required_argument, NULL, 'p' },
		{ "min-child-weight", required_argument, NULL, 'c' },
		{ "max-bin", required_argument, NULL, 'b' },
		{ "eta", required_argument, NULL, 'E' },
		{ "max-depth", required_argument, NULL, 'D' },
		{ "lambda", required_argument, NULL, 'L' },
		{ "no-refit", no_argument, NULL, 'F' },
		{ "plain-bins", no_argument, NULL, 'P' },
		{ "out", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		VIGIL_CLI_VERSION,
		{ NULL, 0, NULL, 0 },
	};
	uint64_t rows = 1000000, first_hash = 0;
	uint32_t nf = 60, days = 30, runs = 3;
	const char *out = NULL;
	batch_train_opts o;
	batch_trainset *s = NULL;
	batch_trainset_stats st;
	store_diag d;
	char **names = NULL;
	float *x = NULL;
	double *secs = NULL, *cpus = NULL, t_add;
	uint64_t t0;
	bool same = true;
	int c, ret = 1;

	batch_omp_passive(argv); /* as vigil-rebuild: passive unless set */
	batch_train_opts_default(&o);
	for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
		if (strcmp(argv[i], "--nightly") == 0) {
			batch_opts bo;

			batch_opts_default(&bo);
			batch_train_opts_nightly(&bo, &o);
		}
	o.threads = 2;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "hV", longopts, NULL)) != -1) {
		int u = VIGIL_EXIT_OK;

		switch (c) {
		case 'N': break; /* applied before the others */
		case 'n':
			u = vigil_cli_parse_u64("bench-train", "rows", optarg,
			    1, UINT64_MAX, &rows);
			break;
		case 'f':
			u = vigil_cli_parse_u32("bench-train", "features", optarg,
			    1, MAX_FEAT, &nf);
			break;
		case 'd':
			u = vigil_cli_parse_u32("bench-train", "days", optarg,
			    2, BATCH_TRAIN_MAX_DAYS, &days);
			break;
		case 't':
			u = vigil_cli_parse_u32("bench-train", "threads", optarg,
			    0, BATCH_MAX_THREADS, &o.threads);
			break;
		case 'r':
			u = vigil_cli_parse_u32("bench-train", "runs", optarg, 1, MAX_RUNS, &runs);
			break;
		case 'm':
			u = vigil_cli_parse_u64("bench-train", "max-rows", optarg,
			    2, BATCH_TRAIN_MAX_ROWS, &o.max_rows);
			break;
		case 'R':
			u = vigil_cli_parse_u32("bench-train", "max-rounds", optarg,
			    1, BATCH_TRAIN_MAX_ROUNDS, &o.max_rounds);
			break;
		case 'e':
			u = vigil_cli_parse_u32("bench-train", "early-stop", optarg,
			    0, UINT32_MAX, &o.early_stop);
			break;
		case 's':
			if (strcmp(optarg, "ap") == 0)
				o.stop_metric = BATCH_TRAIN_STOP_AP;
			else if (strcmp(optarg, "logloss") == 0)
				o.stop_metric = BATCH_TRAIN_STOP_LOGLOSS;
			else
				return vigil_cli_usage_error("bench-train",
				    "--stop: ap or logloss, not \"%s\"", optarg);
			break;
		case 'p':
			u = vigil_cli_parse_double("bench-train", "scale-pos-weight", optarg,
			    0, true, HUGE_VAL, &o.scale_pos_weight);
			break;
		case 'c':
			u = vigil_cli_parse_double("bench-train", "min-child-weight", optarg,
			    0, false, HUGE_VAL, &o.min_child_weight);
			break;
		case 'b':
			u = vigil_cli_parse_u32("bench-train", "max-bin", optarg,
			    2, 65536, &o.max_bin);
			break;
		case 'E':
			u = vigil_cli_parse_double("bench-train", "eta", optarg,
			    0, true, 1, &o.eta);
			break;
		case 'D':
			u = vigil_cli_parse_u32("bench-train", "max-depth", optarg,
			    1, BATCH_TRAIN_MAX_DEPTH, &o.max_depth);
			break;
		case 'L':
			u = vigil_cli_parse_double("bench-train", "lambda", optarg,
			    0, false, HUGE_VAL, &o.reg_lambda);
			break;
		case 'F': o.refit = false; break;
		case 'P': o.balanced_bins = false; break;
		case 'o': out = optarg; break;
		case 'h': usage(stdout); return VIGIL_EXIT_OK;
		case 'V': vigil_cli_version(stdout, "bench-train"); return VIGIL_EXIT_OK;
		default: return vigil_cli_bad_option("bench-train", argv);
		}
		if (u != VIGIL_EXIT_OK)
			return u;
	}
	if (optind != argc)
		return vigil_cli_usage_error("bench-train", "%s: unexpected argument", argv[optind]);
	if (o.min_rounds > o.max_rounds)
		return vigil_cli_usage_error("bench-train", "--max-rounds: %u: below the %u rounds "
		    "the model keeps at least", o.max_rounds, o.min_rounds);
	names = calloc(nf, sizeof *names);
	x = malloc(nf * sizeof *x);
	secs = calloc(runs, sizeof *secs);
	cpus = calloc(runs, sizeof *cpus);
	if (names == NULL || x == NULL || secs == NULL || cpus == NULL)
		goto out;
	for (uint32_t j = 0; j < nf; j++) {
		names[j] = malloc(16);
		if (names[j] == NULL)
			goto out;
		snprintf(names[j], 16, "f%u", j);
	}
	if (batch_trainset_new(nf, (const char *const *)names, &o, &s, &d) != VIGIL_OK) {
		fprintf(stderr, "bench-train: %s\n", d.msg);
		goto out;
	}
	t0 = vigil_mono_ns();
	for (uint64_t i = 0; i < rows; i++) {
		bool    fraud = gen_row(x, nf);
		int64_t t = T0 + (int64_t)(i * days / rows) * VIGIL_MS_PER_DAY +
		    (int64_t)(next_rand() % VIGIL_MS_PER_DAY);
		vigil_err rv = batch_trainset_add(s, x, fraud, t, mix64(i + 1));

		if (rv != VIGIL_OK) {
			fprintf(stderr, "bench-train: add row %llu: %s\n", (unsigned long long)i,
			    vigil_strerror(rv));
			goto out;
		}
	}
	t_add = (double)(vigil_mono_ns() - t0) / 1e9;
	batch_trainset_stats_get(s, &st);
	printf("rows %llu x %u features over %u days generated and added in %.2f s "
	    "(generation included); kept %llu (frauds %llu, legitimate %llu of %llu)\n",
	    (unsigned long long)rows, nf, days, t_add, (unsigned long long)st.rows,
	    (unsigned long long)st.frauds, (unsigned long long)st.legit_kept,
	    (unsigned long long)st.legit_seen);
	printf("threads %u, rounds %u to %u, early_stop %u on %s, max_depth %u, eta %g, "
	    "max_bin %u (%s), min_child_weight %g, lambda %g, scale_pos_weight %g\n", o.threads,
	    o.min_rounds, o.max_rounds, o.early_stop, o.stop_metric == BATCH_TRAIN_STOP_AP ? "ap" : "logloss",
	    o.max_depth, o.eta, o.max_bin, o.balanced_bins ? "balanced" : "plain",
	    o.min_child_weight, o.reg_lambda, o.scale_pos_weight);
	for (uint32_t r = 0; r < runs; r++) {
		batch_model_report rep;
		char    *json = NULL;
		size_t   len = 0;
		uint64_t h;
		double   cpu0 = cpu_seconds(), cpu;
		vigil_err rv = batch_train_run(s, &o, &json, &len, &rep, &d);

		cpu = cpu_seconds() - cpu0;
		if (rv != VIGIL_OK) {
			fprintf(stderr, "bench-train: %s: %s\n", vigil_strerror(rv), d.msg);
			goto out;
		}
		if (!rep.trained) {
			fprintf(stderr, "bench-train: no model: %s\n", rep.why_not);
			goto out;
		}
		h = XXH64(json, len, 0);
		if (r == 0)
			first_hash = h;
		same = same && h == first_hash;
		secs[r] = rep.seconds;
		cpus[r] = cpu;
		printf("run %u: %.2f s (CPU %.2f s), rounds %u (best %u), train %llu rows / %llu frauds, "
		    "valid %llu / %llu: AUC %.4f AP %.4f logloss %.5f (train AUC %.4f), "
		    "calibration a %.4f b %.4f, model %zu bytes xxh64 %016llx\n", r + 1, rep.seconds, cpu, rep.rounds,
		    rep.best_round, (unsigned long long)rep.train_rows,
		    (unsigned long long)rep.train_frauds, (unsigned long long)rep.valid_rows,
		    (unsigned long long)rep.valid_frauds, rep.valid_auc, rep.valid_ap,
		    rep.valid_logloss, rep.train_auc, rep.calib_a, rep.calib_b, len,
		    (unsigned long long)h);
		fflush(stdout);
		if (out != NULL && r + 1 == runs) {
			FILE *f = fopen(out, "w");

			if (f == NULL || fwrite(json, 1, len, f) != len || fclose(f) != 0) {
				fprintf(stderr, "bench-train: cannot write %s\n", out);
				free(json);
				goto out;
			}
		}
		free(json);
	}
	qsort(secs, runs, sizeof *secs, bench_cmp_double);
	qsort(cpus, runs, sizeof *cpus, bench_cmp_double);
	printf("median %.2f s to train, CPU %.2f s (of %u runs), peak RSS %.0f MB, model bytes %s "
	    "across runs\n", secs[runs / 2], cpus[runs / 2], runs, peak_rss_mb(),
	    same ? "identical" : "DIFFERENT");
	ret = same ? 0 : 1;
out:
	batch_trainset_free(s);
	if (names != NULL)
		for (uint32_t j = 0; j < nf; j++)
			free(names[j]);
	free(names);
	free(x);
	free(secs);
	free(cpus);
	return ret;
}
