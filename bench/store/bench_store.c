/* SPDX-License-Identifier: MIT */
/*
 * bench/store/bench_store.c - feature lookup and live update path of
 * store_db (docs/BENCHMARKS.md, "Store").
 *
 *   lookup   store_features_lookup of one transaction: all features, batch
 *            (a populated LMDB generation) and live (a populated live state).
 *            Target < 2 us.
 *   update   store_score_begin + store_score_commit on one thread with the
 *            archive's fsync policy "interval". Target >= 200k txn/s.
 *   memory   the same update path on store_db_new_memory (no archive).
 *   recover  close + reopen: the live state rebuilt from the archive.
 *
 * update and memory time begin + commit only: the transactions are made
 * (six snprintf each) in blocks of 1024 between timed stretches. The
 * threads figure divides by the process's CPU time, generation included.
 *
 * Each figure is the median of --runs runs. Run from a release build:
 *   meson setup build-bench --buildtype=release && ninja -C build-bench
 *   ./build-bench/bench/store/bench-store
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "bench_stats.h"
#include "cli.h"
#include "db.h"

enum { SEC_LOOKUP = 1, SEC_UPDATE = 2, SEC_THREADS = 4, SEC_MEMORY = 8, SEC_RECOVER = 16 };

typedef struct cfg {
	uint32_t cards, merchants, txns, lookups, runs, step_ms, threads;
	uint32_t only; /* SEC_* to run */
	const char *dir;
} cfg;

static void
usage(FILE *out)
{
	static const char *const exits[VIGIL_EXIT_COUNT_] = {
		"every figure measured", "a store error (the message says which)", "", NULL,
	};

	fprintf(out,
	    "usage: bench-store [options]\n"
	    "Measures store_db feature lookups and the live update path.\n"
	    "  --cards N      cards in the generation and the live state (default 100000)\n"
	    "  --merchants N  merchants and terminals (default 10000)\n"
	    "  --txns N       transactions per update run, and to populate (default 200000)\n"
	    "  --lookups N    lookups per lookup run (default 200000)\n"
	    "  --runs N       runs per figure; the median is printed (default 5)\n"
	    "  --threads N    threads for the multi-threaded update figure (default 2, max 16)\n"
	    "  --step-ms N    event time between consecutive transactions (default 200:\n"
	    "                 400k transactions span a day; 1 packs them into minutes)\n"
	    "  --dir PATH     data directory to use (default: a new one under /tmp, removed)\n"
	    "  --only LIST    run only these figures, comma-separated: lookup, update,\n"
	    "                 threads, memory, recover (default: all; for profiles)\n"
	    "  --help         this text\n"
	    "  --version      print the version\n"
	    "The update runs share one live state that only grows: with the defaults\n"
	    "each run adds 11 hours of event time (200k transactions), far less than\n"
	    "the 14 days the live state keeps, so nothing expires; every transaction\n"
	    "adds an IP entity (random IPs) and an idempotency record, and each card\n"
	    "gains 2 events in its 7-day window. Later runs are slower (more memory,\n"
	    "longer card windows); each run's line on stderr gives the state's size,\n"
	    "peak RSS and page faults per transaction. A steady state (expiry keeping\n"
	    "up) needs about 14 days of event time first: --step-ms 6000 makes each\n"
	    "run span 14 days.\n");
	vigil_cli_exit_help(out, exits);
}

/* Minor page faults of the process so far (first touches of new memory);
 * *ret_rss_mb: its peak resident size. */
static uint64_t
minflt(double *ret_rss_mb)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) != 0)
		return 0;
	if (ret_rss_mb != NULL)
		*ret_rss_mb = (double)ru.ru_maxrss / 1024.0;
	return (uint64_t)ru.ru_minflt;
}

/* xorshift64, one state per thread. */
static _Thread_local uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t
rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static void
make_txn(vigil_txn *x, const cfg *c, uint64_t serial, int64_t t)
{
	memset(x, 0, sizeof *x);
	snprintf(x->txn_id, sizeof x->txn_id, "bench-%llu", (unsigned long long)serial);
	snprintf(x->card_id, sizeof x->card_id, "card-%08llu", (unsigned long long)(rng() % c->cards));
	snprintf(x->merchant_id, sizeof x->merchant_id, "merchant-%06llu",
	    (unsigned long long)(rng() % c->merchants));
	snprintf(x->terminal_id, sizeof x->terminal_id, "term-%06llu",
	    (unsigned long long)(rng() % c->merchants));
	snprintf(x->device_id, sizeof x->device_id, "dev-%08llu", (unsigned long long)(rng() % c->cards));
	snprintf(x->ip, sizeof x->ip, "10.%u.%u.%u", (unsigned)(rng() % 256), (unsigned)(rng() % 256),
	    (unsigned)(rng() % 256));
	memcpy(x->currency, "EUR", 4);
	memcpy(x->country, (rng() & 7) ? "FR" : "DE", 3);
	x->event_time_ms = t;
	x->amount_minor = (int64_t)(rng() % 100000);
	x->mcc = 5411;
	x->channel = VIGIL_CHANNEL_POS;
	x->has_location = true;
	x->lat = 48.0 + (double)(rng() % 1000) / 1000.0;
	x->lon = 2.0 + (double)(rng() % 1000) / 1000.0;
}

static int
write_generation(const cfg *c)
{
	store_genw          *w = NULL;
	store_diag           d;
	store_card_profile   cp;
	store_entity_profile ep;
	store_gen_meta       meta;
	char                 id[64];
	vigil_err            rv;

	rv = store_genw_begin(c->dir, &w, &d);
	if (rv != VIGIL_OK) {
		fprintf(stderr, "bench-store: %s\n", d.msg);
		return 1;
	}
	memset(&cp, 0, sizeof cp);
	memset(&ep, 0, sizeof ep);
	for (uint32_t i = 0; i < c->cards; i++) {
		cp.count_90d = 50 + i % 50;
		cp.amount_mean_90d = 40.0;
		cp.amount_std_90d = 12.0;
		cp.first_seen_ms = vigil_now_ms() - 200 * VIGIL_MS_PER_DAY;
		cp.hour_hist[i % 24] = 10;
		cp.ncountries = 2;
		memcpy(cp.countries[0], "FR", 2);
		memcpy(cp.countries[1], "BE", 2);
		cp.nmerchants = 8;
		for (int k = 0; k < 8; k++) {
			snprintf(id, sizeof id, "merchant-%06u", (i * 7 + (uint32_t)k) % c->merchants);
			cp.merchants[k] = XXH64(id, strlen(id), 0);
		}
		snprintf(id, sizeof id, "card-%08u", i);
		if ((rv = store_genw_put_card(w, id, &cp)) != VIGIL_OK)
			goto fail;
	}
	for (uint32_t i = 0; i < c->merchants; i++) {
		ep.count_30d = 1000 + i;
		ep.fraud_rate_30d = 0.001;
		snprintf(id, sizeof id, "merchant-%06u", i);
		if ((rv = store_genw_put_merchant(w, id, &ep)) != VIGIL_OK)
			goto fail;
		snprintf(id, sizeof id, "term-%06u", i);
		if ((rv = store_genw_put_terminal(w, id, &ep)) != VIGIL_OK)
			goto fail;
	}
	memset(&meta, 0, sizeof meta);
	meta.as_of_ms = vigil_now_ms();
	rv = store_genw_commit(w, &meta, 0, &d);
	if (rv != VIGIL_OK) {
		fprintf(stderr, "bench-store: commit: %s\n", d.msg);
		return 1;
	}
	return 0;
fail:
	fprintf(stderr, "bench-store: writing generation: %s\n", vigil_strerror(rv));
	store_genw_abort(w);
	return 1;
}

/* Transactions are made (snprintf of six ids) in blocks outside the timed
 * stretches: the figures are the store's, not the generator's. */
#define BENCH_BLOCK 1024

/* n begin+commit; returns the timed ns (> 0) or 0 on error. */
static uint64_t
run_updates(store_db *db, store_ctx *ctx, const cfg *c, uint64_t *serial, int64_t *t,
    uint32_t n, uint64_t *ret_cpu)
{
	static _Thread_local store_scored s;
	static _Thread_local vigil_txn xs[BENCH_BLOCK];
	vigil_value         f[256];
	store_outcome       prior;
	store_diag          d;
	uint64_t            cpu = 0, ns = 0;

	s.score = 10;
	s.decision = VIGIL_DECISION_ALLOW;
	snprintf(s.rules_version, sizeof s.rules_version, "bench");
	for (uint32_t done = 0; done < n;) {
		uint32_t m = n - done < BENCH_BLOCK ? n - done : BENCH_BLOCK;
		uint64_t c0, t0;

		for (uint32_t i = 0; i < m; i++) {
			make_txn(&xs[i], c, (*serial)++, *t);
			*t += c->step_ms;
		}
		c0 = bench_clock_ns(CLOCK_THREAD_CPUTIME_ID);
		t0 = vigil_mono_ns();
		for (uint32_t i = 0; i < m; i++) {
			vigil_err rv;

			rv = store_score_begin(db, ctx, &xs[i], f, store_schema_nfields(), &prior);
			if (rv == VIGIL_EEXIST)
				continue;
			if (rv != VIGIL_OK) {
				fprintf(stderr, "bench-store: begin: %s\n", vigil_strerror(rv));
				return 0;
			}
			s.txn = xs[i];
			rv = store_score_commit(db, ctx, &s, &d);
			if (rv != VIGIL_OK) {
				fprintf(stderr, "bench-store: commit: %s\n", d.msg);
				return 0;
			}
		}
		ns += vigil_mono_ns() - t0;
		cpu += bench_clock_ns(CLOCK_THREAD_CPUTIME_ID) - c0;
		done += m;
	}
	if (ret_cpu != NULL)
		*ret_cpu = cpu;
	return ns > 0 ? ns : 1;
}

/* --threads: N threads scoring distinct transactions on one db. */
typedef struct thr_arg {
	store_db   *db;
	const cfg  *c;
	uint64_t    serial;
	int64_t     t;
	uint32_t    n;
	uint64_t    ns;
} thr_arg;

static void *
thr_main(void *p)
{
	thr_arg   *a = p;
	store_ctx *ctx = store_ctx_new(a->db);

	rng_state ^= a->serial * 0x9e3779b97f4a7c15ULL;
	a->ns = ctx != NULL ? run_updates(a->db, ctx, a->c, &a->serial, &a->t, a->n, NULL) : 0;
	store_ctx_free(ctx);
	return NULL;
}

/* Wall-clock throughput of nthreads threads doing c->txns updates in all;
 * *ret_cpu_rate: the same per second of process CPU time. */
static double
run_threads(store_db *db, const cfg *c, uint32_t nthreads, uint64_t *serial, int64_t *t,
    double *ret_cpu_rate)
{
	thr_arg   a[16];
	pthread_t th[16];
	uint64_t  t0 = vigil_mono_ns(), c0 = bench_clock_ns(CLOCK_PROCESS_CPUTIME_ID), ns;

	for (uint32_t i = 0; i < nthreads; i++) {
		a[i] = (thr_arg){ .db = db, .c = c, .serial = *serial + (uint64_t)i * c->txns,
			.t = *t, .n = c->txns / nthreads };
		if (pthread_create(&th[i], NULL, thr_main, &a[i]) != 0)
			return 0;
	}
	for (uint32_t i = 0; i < nthreads; i++)
		pthread_join(th[i], NULL);
	ns = vigil_mono_ns() - t0;
	*ret_cpu_rate = (double)(c->txns / nthreads * nthreads) /
	    ((double)(bench_clock_ns(CLOCK_PROCESS_CPUTIME_ID) - c0) / 1e9);
	for (uint32_t i = 0; i < nthreads; i++)
		if (a[i].ns == 0)
			return 0;
	*serial += (uint64_t)nthreads * c->txns;
	*t += (int64_t)c->step_ms * c->txns / nthreads;
	return (double)(c->txns / nthreads * nthreads) / ((double)ns / 1e9);
}

int
main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "cards", required_argument, NULL, 'c' },
		{ "merchants", required_argument, NULL, 'm' },
		{ "txns", required_argument, NULL, 't' },
		{ "lookups", required_argument, NULL, 'l' },
		{ "runs", required_argument, NULL, 'r' },
		{ "dir", required_argument, NULL, 'd' },
		{ "step-ms", required_argument, NULL, 's' },
		{ "threads", required_argument, NULL, 'T' },
		{ "only", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		VIGIL_CLI_VERSION,
		{ NULL, 0, NULL, 0 },
	};
	cfg            c = { .cards = 100000, .merchants = 10000, .txns = 200000,
		.lookups = 200000, .runs = 5, .step_ms = 200, .threads = 2, .only = 31 };
	char           tmpl[] = "/tmp/vigil-bench-store-XXXXXX";
	bool           own_dir = false;
	store_db      *db = NULL, *mem = NULL;
	store_ctx     *ctx = NULL, *mctx = NULL;
	store_db_opts  o;
	store_diag     d;
	store_db_stats st;
	double        *v = NULL, *vc = NULL;
	uint64_t       cpu = 0;
	uint64_t       serial = 0, ns;
	int64_t        t, t_mem;
	vigil_value    f[256];
	int            opt, status = 1;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, "hV", lopts, NULL)) != -1) {
		char *end = NULL;
		unsigned long val = 0;

		if (opt == 'h') {
			usage(stdout);
			return 0;
		}
		if (opt == 'V') {
			vigil_cli_version(stdout, "bench-store");
			return 0;
		}
		if (opt == 'd') {
			c.dir = optarg;
			continue;
		}
		if (opt == '?')
			return vigil_cli_bad_option("bench-store", argv);
		if (opt == 'o') {
			static const char *const names[] = { "lookup", "update", "threads", "memory",
				"recover" };
			char *save = NULL;

			c.only = 0;
			for (char *w = strtok_r(optarg, ",", &save); w != NULL;
			     w = strtok_r(NULL, ",", &save)) {
				uint32_t bit = 0;

				for (int k = 0; k < 5; k++)
					if (strcmp(w, names[k]) == 0)
						bit = 1u << k;
				if (bit == 0)
					return vigil_cli_usage_error("bench-store",
					    "--only: unknown figure \"%s\"", w);
				c.only |= bit;
			}
			if (c.only == 0)
				return vigil_cli_usage_error("bench-store", "--only: no figure named");
			continue;
		}
		errno = 0;
		val = strtoul(optarg, &end, 10);
		if (errno != 0 || end == optarg || *end != '\0' || optarg[0] == '-' || val == 0 ||
		    val > 100000000UL)
			return vigil_cli_usage_error("bench-store",
			    "--%s: expected a number in 1..100000000, got \"%s\"",
			    opt == 'c' ? "cards" : opt == 'm' ? "merchants" : opt == 't' ? "txns"
			    : opt == 'l' ? "lookups" : opt == 's' ? "step-ms" : opt == 'T' ? "threads"
			    : "runs", optarg);
		switch (opt) {
		case 'c': c.cards = (uint32_t)val; break;
		case 'm': c.merchants = (uint32_t)val; break;
		case 't': c.txns = (uint32_t)val; break;
		case 'l': c.lookups = (uint32_t)val; break;
		case 'r': c.runs = (uint32_t)val; break;
		case 's': c.step_ms = (uint32_t)val; break;
		case 'T': c.threads = (uint32_t)val; break;
		}
	}
	if (optind != argc)
		return vigil_cli_usage_error("bench-store", "%s: unexpected argument", argv[optind]);
	if (c.threads > 16)
		return vigil_cli_usage_error("bench-store", "--threads: %u: at most 16", c.threads);
	if (c.dir == NULL) {
		c.dir = mkdtemp(tmpl);
		if (c.dir == NULL) {
			perror("bench-store: mkdtemp");
			return 1;
		}
		own_dir = true;
	}
	/* The stream ends about now, so recovery reads it in one pass. */
	t = vigil_now_ms() - (int64_t)c.step_ms * c.txns * ((int64_t)c.runs + 1);
	v = calloc(c.runs, sizeof *v);
	vc = calloc(c.runs, sizeof *vc);
	if (v == NULL || vc == NULL)
		goto out;

	fprintf(stderr, "bench-store: writing a generation of %u cards, %u merchants...\n",
	    c.cards, c.merchants);
	if (write_generation(&c) != 0)
		goto out;
	store_db_opts_default(&o);
	o.archive.fsync = STORE_FSYNC_INTERVAL;
	if (store_db_open(c.dir, &o, &db, NULL, &d) != VIGIL_OK) {
		fprintf(stderr, "bench-store: open: %s\n", d.msg);
		goto out;
	}
	ctx = store_ctx_new(db);
	if (ctx == NULL)
		goto out;
	fprintf(stderr, "bench-store: populating the live state with %u transactions...\n", c.txns);
	if (run_updates(db, ctx, &c, &serial, &t, c.txns, NULL) == 0)
		goto out;

	/* Lookup: all features of one transaction. */
	for (uint32_t r = 0; r < c.runs && (c.only & SEC_LOOKUP); r++) {
		vigil_txn *xs = malloc(sizeof *xs * 1024);
		uint64_t   t0;

		if (xs == NULL)
			goto out;
		for (int i = 0; i < 1024; i++)
			make_txn(&xs[i], &c, serial + (uint64_t)i, t);
		t0 = vigil_mono_ns();
		cpu = bench_clock_ns(CLOCK_THREAD_CPUTIME_ID);
		for (uint32_t i = 0; i < c.lookups; i++) {
			if (store_features_lookup(db, ctx, &xs[i & 1023], f, store_schema_nfields()) !=
			    VIGIL_OK) {
				free(xs);
				goto out;
			}
		}
		v[r] = (double)(vigil_mono_ns() - t0) / c.lookups;
		vc[r] = (double)(bench_clock_ns(CLOCK_THREAD_CPUTIME_ID) - cpu) / c.lookups;
		free(xs);
		fprintf(stderr, "  lookup run %u: %.0f ns wall, %.0f ns cpu\n", r + 1, v[r], vc[r]);
	}
	if (c.only & SEC_LOOKUP)
		printf("lookup (all %u features, batch + live): median %.0f ns wall, %.0f ns cpu "
		    "per transaction\n", store_schema_nfields(), bench_median(v, c.runs), bench_median(vc, c.runs));

	/* Update path, fsync=interval, one thread. */
	for (uint32_t r = 0; r < c.runs && (c.only & SEC_UPDATE); r++) {
		uint64_t flt = minflt(NULL);
		double   rss = 0;

		ns = run_updates(db, ctx, &c, &serial, &t, c.txns, &cpu);
		if (ns == 0)
			goto out;
		v[r] = (double)c.txns / ((double)ns / 1e9);
		vc[r] = (double)c.txns / ((double)cpu / 1e9);
		store_db_get_stats(db, &st);
		flt = minflt(&rss) - flt;
		fprintf(stderr, "  update run %u: %.0f txn/s wall, %.0f txn/s cpu; %.2f page faults "
		    "per txn, peak RSS %.0f MB; live: %llu cards, %llu entities, %llu events, %llu "
		    "idempotency records\n", r + 1, v[r], vc[r], (double)flt / c.txns, rss,
		    (unsigned long long)st.live_cards, (unsigned long long)st.live_entities,
		    (unsigned long long)st.live_events, (unsigned long long)st.dedupe_entries);
	}
	if (c.only & SEC_UPDATE)
		printf("update (begin+commit, archive fsync=interval, 1 thread): median %.0f txn/s "
		    "wall, %.0f txn/s per cpu-second\n", bench_median(v, c.runs), bench_median(vc, c.runs));

	/* The same with several threads (the server's workers). */
	for (uint32_t r = 0; r < c.runs && (c.only & SEC_THREADS); r++) {
		v[r] = run_threads(db, &c, c.threads, &serial, &t, &vc[r]);
		if (v[r] == 0)
			goto out;
		fprintf(stderr, "  update x%u run %u: %.0f txn/s wall, %.0f txn/s per process "
		    "cpu-second\n", c.threads, r + 1, v[r], vc[r]);
	}
	if (c.only & SEC_THREADS)
		printf("update (begin+commit, archive fsync=interval, %u threads): median %.0f txn/s "
		    "wall, %.0f txn/s per process cpu-second\n", c.threads, bench_median(v, c.runs),
		    bench_median(vc, c.runs));

	/* Update path without archive (offline/replay mode). */
	if (store_db_new_memory(NULL, &mem) != VIGIL_OK || (mctx = store_ctx_new(mem)) == NULL)
		goto out;
	t_mem = t;
	for (uint32_t r = 0; r < c.runs && (c.only & SEC_MEMORY); r++) {
		ns = run_updates(mem, mctx, &c, &serial, &t_mem, c.txns, &cpu);
		if (ns == 0)
			goto out;
		v[r] = (double)c.txns / ((double)ns / 1e9);
		vc[r] = (double)c.txns / ((double)cpu / 1e9);
		fprintf(stderr, "  memory run %u: %.0f txn/s wall, %.0f txn/s cpu\n", r + 1, v[r],
		    vc[r]);
	}
	if (c.only & SEC_MEMORY)
		printf("update (begin+commit, memory mode, 1 thread): median %.0f txn/s wall, "
		    "%.0f txn/s per cpu-second\n", bench_median(v, c.runs), bench_median(vc, c.runs));

	/* Recovery: reopen replays the archive into a new live state. */
	store_db_get_stats(db, &st);
	store_ctx_free(ctx);
	ctx = NULL;
	store_db_close(db);
	db = NULL;
	for (uint32_t r = 0; r < c.runs && (c.only & SEC_RECOVER); r++) {
		uint64_t t0 = vigil_mono_ns();

		if (store_db_open(c.dir, &o, &db, NULL, &d) != VIGIL_OK) {
			fprintf(stderr, "bench-store: reopen: %s\n", d.msg);
			goto out;
		}
		v[r] = (double)(vigil_mono_ns() - t0) / 1e9;
		store_db_close(db);
		db = NULL;
		fprintf(stderr, "  recover run %u: %.2f s\n", r + 1, v[r]);
	}
	if (c.only & SEC_RECOVER)
		printf("recover (reopen, %llu archived records, %llu live events): median %.2f s "
		    "(%.0f records/s)\n", (unsigned long long)st.archive.records,
		    (unsigned long long)st.live_events, bench_median(v, c.runs),
		    (double)st.archive.records / bench_median(v, c.runs));
	status = 0;
out:
	store_ctx_free(ctx);
	store_ctx_free(mctx);
	store_db_close(db);
	store_db_close(mem);
	free(v);
	free(vc);
	if (own_dir) {
		char cmd[256];

		snprintf(cmd, sizeof cmd, "rm -rf '%s'", c.dir);
		if (system(cmd) != 0)
			fprintf(stderr, "bench-store: could not remove %s\n", c.dir);
	}
	return status;
}
