/* SPDX-License-Identifier: MIT */
/*
 * bench/server/pipeline.c - bench-pipeline: the CPU of one score in the
 * scoring pipeline alone (app_score: dedupe, features, model, rules,
 * reasons, archive record, commit), on one thread, with no transport:
 * what vigild's CPU per score costs beyond nng's request and reply
 * (docs/BENCHMARKS.md, "CPU per score"). The transactions are
 * vigil-loadgen's (txngen.h), scored against a data directory as vigild
 * would score them (the rules' thresholds and the model of its current
 * generation, fsync interval), so the figure sits next to cpu.sh's
 * "vigild - echo" for the same traffic.
 *
 *   bench-pipeline --data DIR --rules FILE [--txns N] [--runs R] ...
 *
 * DIR is written to (the archive grows, the live state with it): pass a
 * copy (bench/server/cpu.sh PIPELINE=1 does). Each run scores --txns
 * transactions, after --warmup untimed ones; a figure is the process's
 * CPU time (the archive's sync thread included) over the run, per score;
 * the median of --runs runs is printed last, with the share of scores
 * that alerted and that computed reasons. --dry-run times dry runs after a
 * warm-up that scores for real: features, model, rules and reasons on the
 * same state, without the commit (dedupe, archive, live update).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_stats.h"
#include "app.h"
#include "cli.h"
#include "txngen.h"

#define PL_PROG     "bench-pipeline"
#define PL_MAX_RUNS 101

#define PL_OPTIONS(X) \
	X(OPT_HELP,      "help",      no_argument,       'h') \
	X(OPT_VERSION,   "version",   no_argument,       'V') \
	X(OPT_DATA,      "data",      required_argument, 'd') \
	X(OPT_RULES,     "rules",     required_argument, 'r') \
	X(OPT_JSON,      "json",      no_argument,       'j') \
	X(OPT_TXNS,      "txns",      required_argument, 0) \
	X(OPT_RUNS,      "runs",      required_argument, 0) \
	X(OPT_WARMUP,    "warmup",    required_argument, 0) \
	X(OPT_CARDS,     "cards",     required_argument, 0) \
	X(OPT_MERCHANTS, "merchants", required_argument, 0) \
	X(OPT_STEP_US,   "step-us",   required_argument, 0) \
	X(OPT_ALERT_EVERY, "alert-every", required_argument, 0) \
	X(OPT_DRY_RUN,   "dry-run",   no_argument,       0)
VIGIL_CLI_OPT_ENUM(PL_OPTIONS);
static const struct option opts[] = {
	PL_OPTIONS(VIGIL_CLI_OPT_ENTRY) { NULL, 0, NULL, 0 },
};

static void
usage(FILE *out)
{
	static const char *const exits[VIGIL_EXIT_COUNT_] = {
		"every transaction scored", "a transaction failed to score, or DIR did not open",
		"", NULL,
	};

	fputs("usage: " PL_PROG " --data DIR --rules FILE [--txns N] [--runs R] [--warmup N]\n"
	    "                      [--cards N] [--merchants N] [--step-us N]\n"
	    "                      [--alert-every N] [--dry-run] [--json]\n"
	    "CPU per score of the scoring pipeline (app_score) on one thread, no transport,\n"
	    "over vigil-loadgen's transactions.\n"
	    "  -d, --data DIR     data directory to score against; it is WRITTEN to (archive,\n"
	    "                     live state): pass a copy\n"
	    "  -r, --rules FILE   rule file\n"
	    "      --txns N       scored transactions per timed run (default 100000)\n"
	    "      --runs R       timed runs; the median is printed (default 5, max 101)\n"
	    "      --warmup N     untimed transactions first (default 100000)\n"
	    "      --cards N      card pool, as vigil-loadgen's (default 10000)\n"
	    "      --merchants N  merchant pool, 4 terminals each (default 1000)\n"
	    "      --step-us N    event time between transactions, as vigil-loadgen's\n"
	    "                     (default 125)\n"
	    "      --alert-every N  every N-th transaction from a sanctioned country, as\n"
	    "                     vigil-loadgen's (default 0: none)\n"
	    "      --dry-run      time dry runs: features, model, rules and reasons; no\n"
	    "                     dedupe, archive or live update (the warm-up still scores,\n"
	    "                     so they read the state a scored run would: the commit's\n"
	    "                     cost is the difference)\n"
	    "  -j, --json         one JSON object on stdout instead of text\n"
	    "  -h, --help         this text\n"
	    "  -V, --version      print the version\n", out);
	vigil_cli_exit_help(out, exits);
}

typedef struct pl_counts {
	uint64_t scored, alerts, reasons;
} pl_counts;

/* Transactions [from, from + n) of the stream, made before a run so that
 * the run times scoring alone. */
static void
pl_make(vigil_txn *txns, uint64_t from, uint32_t n, const txngen_opts *o)
{
	txngen g;

	for (uint32_t i = 0; i < n; i++) {
		vigil_txn *t = &txns[i];

		memset(t, 0, sizeof *t);
		txngen_make(&g, "pl", from + i, o);
		snprintf(t->txn_id, sizeof t->txn_id, "%s", g.txn_id);
		snprintf(t->card_id, sizeof t->card_id, "%s", g.card_id);
		snprintf(t->merchant_id, sizeof t->merchant_id, "%s", g.merchant_id);
		snprintf(t->terminal_id, sizeof t->terminal_id, "%s", g.terminal_id);
		memcpy(t->currency, TXNGEN_CURRENCY, sizeof TXNGEN_CURRENCY);
		snprintf(t->country, sizeof t->country, "%s", g.country);
		t->mcc = TXNGEN_MCC;
		t->channel = VIGIL_CHANNEL_ECOM;
		t->amount_minor = g.amount_minor;
		t->event_time_ms = g.event_time_ms;
	}
}

/* Scores txns[0..n); false (and a line on stderr) if one fails. */
static bool
pl_score(store_db *db, app_work *w, const app_scorer *sc, unsigned flags,
    const vigil_txn *txns, uint32_t n, pl_counts *cnt)
{
	app_outcome out;

	for (uint32_t i = 0; i < n; i++) {
		if (app_score(db, w, sc, &txns[i], flags, vigil_now_ms(), &out) != VIGIL_OK) {
			fprintf(stderr, PL_PROG ": transaction %s: %s at step %d%s%s\n",
			    txns[i].txn_id, vigil_strerror(out.rv), (int)out.step,
			    out.diag.msg[0] ? ": " : "", out.diag.msg);
			return false;
		}
		cnt->scored++;
		cnt->alerts += out.res->decision > VIGIL_DECISION_ALLOW;
		cnt->reasons += out.nreasons > 0;
	}
	return true;
}

int
main(int argc, char **argv)
{
	const char *data = NULL, *rules = NULL;
	uint32_t ntxn = 100000, runs = 5, warmup = 100000;
	txngen_opts tg = TXNGEN_OPTS_DEFAULT;
	bool json = false, dry = false;
	double ns[PL_MAX_RUNS], wall[PL_MAX_RUNS];
	store_db_opts dbo;
	store_db *db = NULL;
	store_diag diag = { 0 };
	rules_prog *prog = NULL;
	rules_diags rd;
	app_rules *ar = NULL;
	rules_tvals *tv = NULL;
	app_model *model = NULL;
	app_work *w = NULL;
	vigil_txn *txns = NULL;
	app_scorer sc;
	pl_counts cnt = { 0 };
	uint64_t gen = 0, next = 0;
	char err[512];
	int o, rc = VIGIL_EXIT_FAIL;

	opterr = 0;
	while ((o = getopt_long(argc, argv, "hVd:r:j", opts, NULL)) != -1) {
		int u = VIGIL_EXIT_OK;

		switch (o) {
		case OPT_HELP: usage(stdout); return VIGIL_EXIT_OK;
		case OPT_VERSION: vigil_cli_version(stdout, PL_PROG); return VIGIL_EXIT_OK;
		case OPT_DATA: data = optarg; break;
		case OPT_RULES: rules = optarg; break;
		case OPT_JSON: json = true; break;
		case OPT_DRY_RUN: dry = true; break;
		case OPT_TXNS: u = vigil_cli_parse_u32(PL_PROG, "txns", optarg,
		    1, 100000000, &ntxn); break;
		case OPT_RUNS: u = vigil_cli_parse_u32(PL_PROG, "runs", optarg,
		    1, PL_MAX_RUNS, &runs); break;
		case OPT_WARMUP: u = vigil_cli_parse_u32(PL_PROG, "warmup", optarg,
		    0, 100000000, &warmup); break;
		case OPT_CARDS: u = vigil_cli_parse_u32(PL_PROG, "cards", optarg,
		    1, UINT32_MAX, &tg.cards); break;
		case OPT_MERCHANTS: u = vigil_cli_parse_u32(PL_PROG, "merchants", optarg,
		    1, UINT32_MAX, &tg.merchants); break;
		case OPT_STEP_US: u = vigil_cli_parse_u32(PL_PROG, "step-us", optarg,
		    1, TXNGEN_STEP_US_MAX, &tg.step_us); break;
		case OPT_ALERT_EVERY: u = vigil_cli_parse_u32(PL_PROG, "alert-every", optarg,
		    0, UINT32_MAX, &tg.alert_every); break;
		default: return vigil_cli_bad_option(PL_PROG, argv);
		}
		if (u != VIGIL_EXIT_OK)
			return u;
	}
	if (optind != argc)
		return vigil_cli_usage_error(PL_PROG, "%s: unexpected argument", argv[optind]);
	if (data == NULL || rules == NULL)
		return vigil_cli_usage_error(PL_PROG, "--data and --rules are required");

	if (app_rules_load(rules, &prog, &rd) != VIGIL_OK) {
		rules_diags_print(&rd, NULL, 0, stderr);
		return VIGIL_EXIT_USAGE;
	}
	if (app_rules_new(prog, &ar, err, sizeof err) != VIGIL_OK) { /* takes prog */
		fprintf(stderr, PL_PROG ": %s: %s\n", rules, err);
		return VIGIL_EXIT_USAGE;
	}
	store_db_opts_default(&dbo);
	dbo.archive.fsync = STORE_FSYNC_INTERVAL;
	if (store_db_open(data, &dbo, &db, NULL, &diag) != VIGIL_OK) {
		fprintf(stderr, PL_PROG ": %s: cannot open: %s\n", data, diag.msg);
		goto out;
	}
	if (app_tvals_from_db(ar->prog, db, &tv) != VIGIL_OK ||
	    app_model_from_db(db, &model, &gen, err, sizeof err) != VIGIL_OK) {
		fprintf(stderr, PL_PROG ": %s: thresholds or model: %s\n", data, err);
		goto out;
	}
	if ((w = app_work_new(db)) == NULL) {
		fprintf(stderr, PL_PROG ": out of memory\n");
		goto out;
	}
	sc = (app_scorer){ .rules = ar, .tv = tv, .model = model };
	if (!json)
		fprintf(stderr, PL_PROG ": %s, generation %llu, %s; %u warm-up, %u runs of %u\n",
		    data, (unsigned long long)gen, model != NULL ? "a model" : "no model", warmup,
		    runs, ntxn);
	txns = malloc(sizeof *txns * (warmup > ntxn ? warmup : ntxn));
	if (txns == NULL) {
		fprintf(stderr, PL_PROG ": out of memory for %u transactions\n",
		    warmup > ntxn ? warmup : ntxn);
		goto out;
	}
	pl_make(txns, next, warmup, &tg);
	if (!pl_score(db, w, &sc, 0, txns, warmup, &cnt))
		goto out;
	next += warmup;
	memset(&cnt, 0, sizeof cnt);
	for (uint32_t r = 0; r < runs; r++) {
		double c0;
		uint64_t w0;

		pl_make(txns, next, ntxn, &tg);
		c0 = bench_clock_s(CLOCK_PROCESS_CPUTIME_ID);
		w0 = vigil_mono_ns();
		if (!pl_score(db, w, &sc, dry ? APP_DRY_RUN : 0, txns, ntxn, &cnt))
			goto out;
		ns[r] = (bench_clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0) * 1e9 / ntxn;
		wall[r] = (double)(vigil_mono_ns() - w0) / ntxn;
		next += ntxn;
		if (!json)
			fprintf(stderr, "run %u: %.0f ns CPU, %.0f ns wall per score\n", r + 1, ns[r],
			    wall[r]);
	}
	qsort(ns, runs, sizeof ns[0], bench_cmp_double);
	qsort(wall, runs, sizeof wall[0], bench_cmp_double);
	if (json)
		printf("{\"cpu_ns\":%.0f,\"wall_ns\":%.0f,\"runs\":%u,\"txns\":%u,\"model\":%s,"
		    "\"dry_run\":%s,\"alert_share\":%.4f,\"reasons_share\":%.4f}\n",
		    ns[runs / 2], wall[runs / 2], runs, ntxn, model != NULL ? "true" : "false",
		    dry ? "true" : "false", (double)cnt.alerts / (double)cnt.scored,
		    (double)cnt.reasons / (double)cnt.scored);
	else
		printf("pipeline %s: %.0f ns CPU per score (median of %u runs, wall %.0f); "
		    "%.1f%% alerted, %.1f%% with reasons\n", dry ? "dry run" : "scored",
		    ns[runs / 2], runs, wall[runs / 2], 100.0 * (double)cnt.alerts /
		    (double)cnt.scored, 100.0 * (double)cnt.reasons / (double)cnt.scored);
	rc = VIGIL_EXIT_OK;
out:
	free(txns);
	app_work_free(w);
	app_model_free(model);
	rules_tvals_free(tv);
	store_db_close(db);
	app_rules_free(ar);
	return rc;
}
