/* SPDX-License-Identifier: MIT */
/*
 * bench/replay/bench_replay.c - offline replay throughput on one core, in
 * three stages so a slowdown can be placed: (1) CSV parsing alone, (2) CSV +
 * scoring (store live state from store_db_new_memory, default rules, commit),
 * (3) the whole offline path of vigil-replay (2 + metrics). The CSV is read
 * into memory first, so disk speed is out of the figure. Each stage runs
 * --runs times; the median is printed (docs/BENCHMARKS.md "Offline replay").
 *
 *   vigil-gen --cards 20000 --days 30 -o /tmp/bench.csv
 *   bench-replay --csv /tmp/bench.csv --rules rules/default.rules --runs 5
 *   perf record bench-replay --csv /tmp/bench.csv --stage 3 --runs 1   (one stage)
 */
#include <errno.h>
#include <getopt.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_stats.h"
#include "app.h"
#include "cli.h"
#include "csv.h"
#include "mask.h"
#include "metrics.h"

static void
usage(FILE *out)
{
	static const char *const exits[VIGIL_EXIT_COUNT_] = {
		"every stage measured", "the CSV file could not be read, or a stage failed",
		"bad command line, or a rule file that does not load", NULL,
	};

	fprintf(out, "usage: bench-replay --csv FILE [--rules FILE] [--runs N] [--stage 1|2|3]\n"
	    "       bench-replay --help | --version\n"
	    "Offline replay throughput by stage (median of N runs, rows/s);\n"
	    "--stage runs one stage only (for profiling).\n");
	vigil_cli_exit_help(out, exits);
}

/* One pass; returns rows per wall second (*ret_cpu: per CPU second), or -1. */
static double
bench_pass(const char *buf, size_t len, const rules_prog *prog, int stage, double *ret_cpu)
{
	static rules_result res;
	static store_scored rec;
	csv_reader *rd = NULL;
	store_db *db = NULL;
	store_ctx *ctx = NULL;
	metrics *m = NULL;
	rules_tvals *tv = NULL;
	vigil_value *feat = NULL;
	uint32_t nfeat = store_schema_nfields();
	store_db_opts dbo;
	store_feature_mask fmask;
	csv_diag diag;
	csv_row row;
	uint64_t n = 0, t0, c0;
	double rate = -1;

	store_db_opts_default(&dbo);
	{
		/* as vigil-replay: only the features the rules read */
		uint32_t nslots;
		const uint32_t *slots = rules_prog_slots_used(prog, &nslots);

		store_feature_mask_none(&fmask);
		for (uint32_t i = 0; i < nslots; i++)
			store_feature_mask_set(&fmask, slots[i]);
	}
	if (csv_reader_open_mem("bench", buf, len, NULL, &rd, &diag) != VIGIL_OK) {
		fprintf(stderr, "bench-replay: %s\n", vigil_errinfo_format(&diag, (char[512]){ 0 }, 512));
		goto out;
	}
	if (stage >= 2) {
		metrics_opts mo = { 0 };
		feat = calloc(nfeat, sizeof *feat);
		if (feat == NULL || store_db_new_memory_masked(&dbo, &fmask, &db) != VIGIL_OK ||
		    (ctx = store_ctx_new(db)) == NULL || app_tvals_from_db(prog, db, &tv) != VIGIL_OK)
			goto out;
		if (stage >= 3 && (m = metrics_new(&mo)) == NULL)
			goto out;
	}
	t0 = vigil_mono_ns();
	c0 = bench_clock_ns(CLOCK_PROCESS_CPUTIME_ID);
	while (csv_reader_next(rd, &row, &diag) == VIGIL_OK) {
		n++;
		if (stage < 2)
			continue;
		if (m != NULL)
			metrics_prefetch(m, row.txn.card_id);
		if (store_score_begin(db, ctx, &row.txn, feat, nfeat, NULL) != VIGIL_OK)
			continue;
		if (rules_prog_eval(prog, tv, feat, nfeat, &res) != VIGIL_OK) {
			store_score_abort(db, ctx);
			goto out;
		}
		rec.txn = row.txn;
		rec.score = res.score;
		rec.decision = res.decision;
		rec.nhits = 0;
		rec.nfeats = 0;
		if (store_score_commit(db, ctx, &rec, NULL) != VIGIL_OK)
			goto out;
		if (m != NULL) {
			metrics_obs ob = { .card_id = row.txn.card_id,
				.event_time_ms = row.txn.event_time_ms, .score = res.score,
				.decision = res.decision, .label = row.label, .pattern = row.fraud_pattern,
				.hits = res.hits, .nhits = res.nhits };
			if (metrics_add(m, &ob) != VIGIL_OK)
				goto out;
		}
	}
	if (m != NULL && metrics_finish(m) != VIGIL_OK)
		goto out;
	rate = (double)n / ((double)(vigil_mono_ns() - t0) / 1e9);
	*ret_cpu = (double)n / ((double)(bench_clock_ns(CLOCK_PROCESS_CPUTIME_ID) - c0) / 1e9);
out:
	metrics_free(m);
	rules_tvals_free(tv);
	store_ctx_free(ctx);
	store_db_close(db);
	free(feat);
	csv_reader_close(rd);
	return rate;
}

int
main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "csv", required_argument, NULL, 'c' },
		{ "rules", required_argument, NULL, 'r' },
		{ "runs", required_argument, NULL, 'n' },
		{ "stage", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		VIGIL_CLI_VERSION,
		{ NULL, 0, NULL, 0 },
	};
	static const char *const stages[] = { "", "csv parse", "csv + score", "csv + score + metrics" };
	const char *csv = NULL, *rules = "rules/default.rules";
	int runs = 5, only = 0, opt, status = 1;
	uint32_t v = 0;
	rules_prog *prog = NULL;
	rules_diags diags;
	char *buf = NULL;
	long len;
	FILE *f;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, "hV", lo, NULL)) != -1) {
		int u = VIGIL_EXIT_OK;

		switch (opt) {
		case 'c': csv = optarg; break;
		case 'r': rules = optarg; break;
		case 'n': u = vigil_cli_parse_u32("bench-replay", "runs", optarg,
		    1, 101, &v); runs = (int)v; break;
		case 's': u = vigil_cli_parse_u32("bench-replay", "stage", optarg,
		    1, 3, &v); only = (int)v; break;
		case 'h': usage(stdout); return VIGIL_EXIT_OK;
		case 'V': vigil_cli_version(stdout, "bench-replay"); return VIGIL_EXIT_OK;
		default: return vigil_cli_bad_option("bench-replay", argv);
		}
		if (u != VIGIL_EXIT_OK)
			return u;
	}
	if (optind != argc)
		return vigil_cli_usage_error("bench-replay", "%s: unexpected argument", argv[optind]);
	if (csv == NULL)
		return vigil_cli_usage_error("bench-replay", "--csv FILE is required");
	f = fopen(csv, "rb");
	if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) <= 0 ||
	    fseek(f, 0, SEEK_SET) != 0 || (buf = malloc((size_t)len)) == NULL ||
	    fread(buf, 1, (size_t)len, f) != (size_t)len) {
		fprintf(stderr, "bench-replay: cannot read %s\n", csv);
		goto out;
	}
	if (app_rules_load(rules, &prog, &diags) != VIGIL_OK) {
		rules_diags_print(&diags, NULL, 0, stderr);
		status = VIGIL_EXIT_USAGE;
		goto out;
	}
	for (int stage = 1; stage <= 3; stage++) {
		double r[101], c[101];

		if (only != 0 && stage != only)
			continue;
		for (int i = 0; i < runs; i++) {
			r[i] = bench_pass(buf, (size_t)len, prog, stage, &c[i]);
			if (r[i] < 0) {
				fprintf(stderr, "bench-replay: stage %s failed\n", stages[stage]);
				goto out;
			}
		}
		qsort(r, (size_t)runs, sizeof r[0], bench_cmp_double);
		qsort(c, (size_t)runs, sizeof c[0], bench_cmp_double);
		printf("%-24s median %9.0f rows/s wall, %9.0f rows/CPU-s  (wall min %.0f, max %.0f; "
		    "%d runs)\n", stages[stage], r[runs / 2], c[runs / 2], r[0], r[runs - 1], runs);
	}
	status = 0;
out:
	if (f != NULL)
		fclose(f);
	free(buf);
	rules_prog_free(prog);
	return status;
}
