/* SPDX-License-Identifier: MIT */
/*
 * bench/batch/bench_batch.c - how fast vigil-rebuild aggregates: generates
 * an archive of N scored transactions (plus 1% labels) shaped like vigild's
 * (four archived features each), then times batch_rebuild() with 1 and 2
 * worker threads over it, several runs each (forced, same as-of), and
 * prints the median wall-clock records/s, the records per CPU-second (the
 * per-core rate, robust to other load on a shared machine), and the
 * aggregation state per card. A whole run includes both passes (labels,
 * then transactions), writing every table and committing. Figures go to docs/BENCHMARKS.md ("vigil-rebuild").
 */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench_stats.h"
#include "batch.h"
#include "archive.h"
#include "cli.h"

#define AS_OF 1772323200000LL /* 2026-03-01 */

static const char rules_text[] =
    "version \"bench\"\n"
    "threshold amount_p99 = percentile(amount, 99) by mcc fallback 2000 min_samples 200\n"
    "threshold zscore_high = percentile(card.amount_zscore, 99.5) fallback 4 min_samples 1000\n"
    "threshold hourly = alert_rate(vel.card.count_1h, 0.001) fallback 8 min_samples 10000\n"
    "threshold risky = precision(merchant.fraud_rate_30d, 0.3) fallback 0.02 min_samples 500\n"
    "rule r {\n"
    "  when amount > amount_p99 and card.amount_zscore > zscore_high\n"
    "    and vel.card.count_1h > hourly and merchant.fraud_rate_30d > risky\n"
    "  score 10\n"
    "  reason \"bench\"\n"
    "}\n";

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t
next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static int
rm_one(const char *p, const struct stat *sb, int f, struct FTW *ftw)
{
	(void)sb; (void)f; (void)ftw;
	return remove(p);
}

static int
generate(const char *dir, uint64_t n, uint64_t ncards)
{
	store_archive_opts o;
	store_archive *ar = NULL;
	store_diag d;
	static store_scored s;
	store_label l;
	uint8_t buf[4096];
	char adir[600];
	size_t len;
	uint64_t t0 = vigil_mono_ns();
	static const char *const cc[] = { "FR", "DE", "ES", "IT", "NL", "US", "GB", "PL" };
	static const uint32_t mccs[] = { 5411, 5999, 5812, 4111, 5732, 7995, 5541, 5311 };

	snprintf(adir, sizeof adir, "%s/archive", dir);
	store_archive_opts_default(&o);
	o.fsync = STORE_FSYNC_NEVER;
	if (store_archive_open(adir, &o, &ar, NULL, &d) != VIGIL_OK) {
		fprintf(stderr, "bench-batch: %s\n", d.msg);
		return -1;
	}
	for (uint64_t i = 0; i < n; i++) {
		uint64_t r = next_rand(), card = r % ncards;
		int64_t t = AS_OF - 90 * VIGIL_MS_PER_DAY + (int64_t)(i * (90 * VIGIL_MS_PER_DAY / n));

		memset(&s.txn, 0, sizeof s.txn);
		snprintf(s.txn.txn_id, sizeof s.txn.txn_id, "txn-%012llu", (unsigned long long)i);
		snprintf(s.txn.card_id, sizeof s.txn.card_id, "card-%08llu", (unsigned long long)card);
		snprintf(s.txn.merchant_id, sizeof s.txn.merchant_id, "merchant-%05llu",
		    (unsigned long long)((r >> 20) % 5000));
		snprintf(s.txn.terminal_id, sizeof s.txn.terminal_id, "term-%06llu",
		    (unsigned long long)((r >> 33) % 20000));
		snprintf(s.txn.currency, sizeof s.txn.currency, "EUR");
		snprintf(s.txn.country, sizeof s.txn.country, "%s", cc[(card >> 3) % 8]);
		s.txn.event_time_ms = t;
		s.txn.amount_minor = 100 + (int64_t)((r >> 40) % 20000);
		s.txn.mcc = mccs[(r >> 50) % 8];
		s.txn.channel = VIGIL_CHANNEL_ECOM;
		s.decision = VIGIL_DECISION_ALLOW;
		snprintf(s.rules_version, sizeof s.rules_version, "bench");
		s.scored_at_ms = t;
		s.nfeats = 4;
		snprintf(s.feats[0].name, sizeof s.feats[0].name, "vel.card.count_1h");
		s.feats[0].val = vigil_value_num((double)(r % 13));
		snprintf(s.feats[1].name, sizeof s.feats[1].name, "card.amount_zscore");
		s.feats[1].val = vigil_value_num((double)((int64_t)(r % 2001) - 1000) / 250.0);
		snprintf(s.feats[2].name, sizeof s.feats[2].name, "merchant.fraud_rate_30d");
		s.feats[2].val = vigil_value_num((double)(r % 1000) / 10000.0);
		snprintf(s.feats[3].name, sizeof s.feats[3].name, "vel.card.sum_24h");
		s.feats[3].val = vigil_value_num((double)(r % 100000) / 100.0);
		if (store_scored_encode(&s, buf, sizeof buf, &len) != VIGIL_OK ||
		    store_archive_append(ar, STORE_REC_SCORE, t, buf, len, NULL) != VIGIL_OK)
			goto fail;
		if (i % 100 == 0) {
			memset(&l, 0, sizeof l);
			memcpy(l.txn_id, s.txn.txn_id, sizeof l.txn_id);
			snprintf(l.source, sizeof l.source, "chargeback");
			l.fraud = (r >> 7) % 3 == 0;
			l.label_time_ms = t + VIGIL_MS_PER_DAY;
			if (store_label_encode(&l, buf, sizeof buf, &len) != VIGIL_OK ||
			    store_archive_append(ar, STORE_REC_LABEL, l.label_time_ms, buf, len,
			    NULL) != VIGIL_OK)
				goto fail;
		}
	}
	store_archive_close(ar);
	fprintf(stderr, "bench-batch: generated %llu records in %.1f s\n", (unsigned long long)n,
	    (double)(vigil_mono_ns() - t0) / 1e9);
	return 0;
fail:
	fprintf(stderr, "bench-batch: writing the archive failed\n");
	store_archive_close(ar);
	return -1;
}

static void
usage(FILE *out)
{
	static const char *const exits[VIGIL_EXIT_COUNT_] = {
		"every run measured", "generating the archive or a rebuild failed", "", NULL,
	};

	fprintf(out, "usage: bench-batch [--records N (1000000)] [--cards N (100000)] "
	    "[--runs R (3)] [--dir DIR [--reuse]] [--threads T]\n"
	    "       bench-batch --help | --version\n"
	    "Generates an archive (in DIR, else a temporary directory removed at "
	    "the end) and times batch_rebuild with 1 and 2 threads (only T with "
	    "--threads). --reuse: DIR already holds the archive of an earlier run "
	    "with the same --records and --cards; do not generate it again.\n");
	vigil_cli_exit_help(out, exits);
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

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "records", required_argument, NULL, 'n' },
		{ "cards", required_argument, NULL, 'c' },
		{ "runs", required_argument, NULL, 'r' },
		{ "dir", required_argument, NULL, 'd' },
		{ "reuse", no_argument, NULL, 'u' },
		{ "threads", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		VIGIL_CLI_VERSION,
		{ NULL, 0, NULL, 0 },
	};
	uint64_t n = 1000000, ncards = 100000;
	int runs = 3, c, rc = 1;
	uint32_t tmin = 1, tmax = 2;
	char dir[512] = "", rules[600], adir[600];
	bool own_dir = true, reuse = false;
	struct stat sb;
	FILE *f;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "n:c:r:d:ut:hV", longopts, NULL)) != -1) {
		uint64_t v = 0;
		int u = VIGIL_EXIT_OK;

		switch (c) {
		case 'n': u = vigil_cli_parse_u64("bench-batch", "records", optarg,
		    1, UINT64_MAX, &n); break;
		case 'c': u = vigil_cli_parse_u64("bench-batch", "cards", optarg,
		    1, UINT64_MAX, &ncards); break;
		case 'r':
			u = vigil_cli_parse_u64("bench-batch", "runs", optarg, 1, 15, &v);
			runs = (int)v;
			break;
		case 'd': snprintf(dir, sizeof dir, "%s", optarg); own_dir = false; break;
		case 'u': reuse = true; break;
		case 't':
			u = vigil_cli_parse_u64("bench-batch", "threads", optarg, 1, 8, &v);
			tmin = tmax = (uint32_t)v;
			break;
		case 'h': usage(stdout); return VIGIL_EXIT_OK;
		case 'V': vigil_cli_version(stdout, "bench-batch"); return VIGIL_EXIT_OK;
		default: return vigil_cli_bad_option("bench-batch", argv);
		}
		if (u != VIGIL_EXIT_OK)
			return u;
	}
	if (optind != argc)
		return vigil_cli_usage_error("bench-batch", "%s: unexpected argument", argv[optind]);
	if (reuse && dir[0] == '\0')
		return vigil_cli_usage_error("bench-batch", "--reuse needs --dir");
	if (dir[0] == '\0') {
		snprintf(dir, sizeof dir, "/tmp/bench-batch-XXXXXX");
		if (mkdtemp(dir) == NULL) {
			perror("bench-batch: mkdtemp");
			return 1;
		}
	} else {
		mkdir(dir, 0755);
	}
	snprintf(rules, sizeof rules, "%s/bench.rules", dir);
	f = fopen(rules, "w");
	if (f == NULL || fputs(rules_text, f) < 0 || fclose(f) != 0) {
		perror("bench-batch: rules");
		goto out;
	}
	snprintf(adir, sizeof adir, "%s/archive", dir);
	if (reuse && stat(adir, &sb) == 0) {
		fprintf(stderr, "bench-batch: reusing %s\n", adir);
	} else if (generate(dir, n, ncards) != 0) {
		goto out;
	}
	printf("records=%llu cards=%llu runs=%d\n", (unsigned long long)n,
	    (unsigned long long)ncards, runs);
	for (uint32_t threads = tmin; threads <= tmax; threads++) {
		double rates[15], cpu_rates[15];
		batch_summary *s = calloc(1, sizeof *s);
		store_diag d;
		uint64_t state = 0, cards = 0;

		if (s == NULL)
			goto out;
		for (int i = 0; i < runs; i++) {
			batch_opts o;
			uint64_t t0;
			double c0;

			batch_opts_default(&o);
			o.datadir = dir;
			o.as_of_ms = AS_OF;
			o.window_ms = 90 * VIGIL_MS_PER_DAY;
			o.rules_path = rules;
			o.force = true;
			o.threads = threads;
			t0 = vigil_mono_ns();
			c0 = cpu_seconds();
			if (batch_rebuild(&o, s, &d) != VIGIL_OK) {
				fprintf(stderr, "bench-batch: %s\n", d.msg);
				free(s);
				goto out;
			}
			rates[i] = (double)s->records_read / ((double)(vigil_mono_ns() - t0) / 1e9);
			/* Per core = per CPU-second used (user + system, all threads):
			 * on a shared machine, wall time also counts other people's work. */
			cpu_rates[i] = (double)s->records_read / (cpu_seconds() - c0);
			state = s->peak_state_bytes;
			cards = s->cards;
		}
		qsort(rates, (size_t)runs, sizeof rates[0], bench_cmp_double);
		qsort(cpu_rates, (size_t)runs, sizeof cpu_rates[0], bench_cmp_double);
		printf("threads=%u wall_records_per_s median=%.0f min=%.0f max=%.0f  "
		    "records_per_cpu_s median=%.0f  state_bytes=%llu bytes_per_card=%.0f\n",
		    threads, rates[runs / 2], rates[0], rates[runs - 1], cpu_rates[runs / 2],
		    (unsigned long long)state, cards ? (double)state / (double)cards : 0.0);
		free(s);
	}
	{
		struct rusage ru;

		if (getrusage(RUSAGE_SELF, &ru) == 0)
			printf("max_rss_kib=%ld\n", ru.ru_maxrss);
	}
	rc = 0;
out:
	if (own_dir)
		nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return rc;
}
