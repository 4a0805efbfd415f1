/* SPDX-License-Identifier: MIT */
/*
 * bench/archive/bench_archive.c - archive throughput (docs/BENCHMARKS.md):
 *   1. append rate, fsync=never, one thread, ~300-byte ArchivedScore payloads;
 *   2. group-commit rate, fsync=always, at 1, 4 and 16 threads (plus the
 *      number of fdatasync calls, i.e. how many appends shared each one);
 *   3. append rate, fsync=interval (50 ms), one thread; then fsync=never
 *      and interval with 4 threads (concurrent appends share one copy into
 *      the journal);
 *   4. reader throughput over what phase 1 wrote: frames with CRC check,
 *      then frames + store_scored_decode; then the same after zstd
 *      compression of the closed segments.
 * Each phase is bounded by --seconds and --records. Prints one line per
 * figure. Exit status as docs/tools.md: 0 done, 1 an archive error, 2 usage.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "archive_int.h"
#include "cli.h"
#include "archive.h"

typedef struct bench {
	const char *dir;
	double      seconds;
	uint64_t    max_records;
	uint8_t     payload[1024];
	size_t      plen;
} bench;

static void
usage(FILE *f)
{
	static const char *const exits[VIGIL_EXIT_COUNT_] = {
		"every phase ran", "an archive error (the message says which phase)", "", NULL,
	};

	fprintf(f,
	    "usage: bench-archive [--dir DIR] [--seconds S] [--records N]\n"
	    "Measures archive append (fsync never/always/interval) and read throughput.\n"
	    "  --dir DIR      scratch directory on the filesystem to measure (default\n"
	    "                 $TMPDIR or /var/tmp); a fresh subdirectory is created and removed\n"
	    "  --seconds S    time bound per phase (default 2)\n"
	    "  --records N    record bound per phase (default 500000; ~330 bytes each on disk)\n"
	    "  --help         this text\n"
	    "  --version      print the version\n");
	vigil_cli_exit_help(f, exits);
}

static void
rm_rf(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char p[4096];

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
		unlink(p);
	}
	closedir(d);
	rmdir(dir);
}

/* A representative scored transaction: 2 hits, 5 features, ~300 bytes. */
static void
make_payload(bench *b)
{
	static store_scored s;
	static const char *names[] = { "vel.card.count_1h", "vel.card.amount_sum_24h",
		"card.amount_mean_90d", "merchant.fraud_rate_30d", "country" };

	memset(&s, 0, sizeof s);
	strcpy(s.txn.txn_id, "txn-000000012345678");
	strcpy(s.txn.card_id, "tok_4b1f9c0e7d2a5b38");
	strcpy(s.txn.merchant_id, "merch_000123456");
	strcpy(s.txn.terminal_id, "term_98765");
	strcpy(s.txn.currency, "EUR");
	strcpy(s.txn.country, "FR");
	strcpy(s.txn.ip, "203.0.113.77");
	s.txn.event_time_ms = 1763700000000LL;
	s.txn.amount_minor = 129999;
	s.txn.mcc = 5732;
	s.txn.channel = VIGIL_CHANNEL_ECOM;
	s.txn.has_location = true;
	s.txn.lat = 48.85;
	s.txn.lon = 2.35;
	s.score = 55;
	s.decision = VIGIL_DECISION_REVIEW;
	s.nhits = 2;
	for (int i = 0; i < 2; i++) {
		snprintf(s.hits[i].rule, sizeof s.hits[i].rule, "rule_%d_velocity", i);
		s.hits[i].points = 10 + i;
	}
	strcpy(s.rules_version, "sha256:9d4e1f0a7c3b");
	s.features_gen = 42;
	s.scored_at_ms = 1763700000003LL;
	s.nfeats = 5;
	for (int i = 0; i < 5; i++) {
		snprintf(s.feats[i].name, sizeof s.feats[i].name, "%s", names[i]);
		s.feats[i].val = i == 4 ? vigil_value_str("FR", 2) : vigil_value_num(i * 1.5);
	}
	if (store_scored_encode(&s, b->payload, sizeof b->payload, &b->plen) != VIGIL_OK) {
		fprintf(stderr, "bench-archive: cannot encode the sample record\n");
		exit(VIGIL_EXIT_FAIL);
	}
}

typedef struct worker {
	bench         *b;
	store_archive *ar;
	atomic_bool   *stop;
	_Atomic uint64_t n; /* read by the main thread while appending */
	vigil_err      err;
} worker;

static void *
worker_main(void *p)
{
	worker *w = p;

	while (!atomic_load(w->stop)) {
		vigil_err rv = store_archive_append(w->ar, STORE_REC_SCORE, 1763700000000LL,
		    w->b->payload, w->b->plen, NULL);
		if (rv != VIGIL_OK) {
			w->err = rv;
			break;
		}
		atomic_fetch_add_explicit(&w->n, 1, memory_order_relaxed);
	}
	return NULL;
}

/* Appends from nthreads threads for up to seconds / max_records. */
static int
phase_append(bench *b, const char *sub, store_fsync policy, int nthreads, bool keep)
{
	char dir[4096];
	store_archive_opts o;
	store_archive *ar = NULL;
	store_archive_stats st;
	store_diag d;
	worker w[64];
	pthread_t th[64];
	atomic_bool stop = false;
	uint64_t t0, t1, total = 0;
	struct timespec c0, c1;
	vigil_err rv;

	snprintf(dir, sizeof dir, "%s/%s", b->dir, sub);
	store_archive_opts_default(&o);
	o.fsync = policy;
	o.segment_max_bytes = 64ull << 20;
	rv = store_archive_open(dir, &o, &ar, NULL, &d);
	if (rv != VIGIL_OK) {
		fprintf(stderr, "bench-archive: %s\n", d.msg);
		return VIGIL_EXIT_FAIL;
	}
	t0 = vigil_mono_ns();
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
	for (int i = 0; i < nthreads; i++) {
		w[i].b = b;
		w[i].ar = ar;
		w[i].stop = &stop;
		w[i].err = VIGIL_OK;
		atomic_init(&w[i].n, 0);
		pthread_create(&th[i], NULL, worker_main, &w[i]);
	}
	for (;;) {
		uint64_t n = 0;
		usleep(2000);
		for (int i = 0; i < nthreads; i++)
			n += atomic_load_explicit(&w[i].n, memory_order_relaxed);
		if (n >= b->max_records || (vigil_mono_ns() - t0) / 1e9 >= b->seconds)
			break;
	}
	atomic_store(&stop, true);
	for (int i = 0; i < nthreads; i++) {
		pthread_join(th[i], NULL);
		total += atomic_load(&w[i].n);
		if (w[i].err != VIGIL_OK) {
			fprintf(stderr, "bench-archive: append: %s\n", vigil_strerror(w[i].err));
			return VIGIL_EXIT_FAIL;
		}
	}
	t1 = vigil_mono_ns();
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
	store_archive_get_stats(ar, &st);
	if (store_archive_prealloc_failures(ar) > 0)
		printf("note: %llu segment(s) could not be preallocated and mapped: appended with write(2)\n",
		    (unsigned long long)store_archive_prealloc_failures(ar));
	store_archive_close(ar);
	{
		double secs = (double)(t1 - t0) / 1e9;
		double cpu = (double)(c1.tv_sec - c0.tv_sec) + (double)(c1.tv_nsec - c0.tv_nsec) / 1e9;
		printf("append fsync=%-8s %-11s threads=%-2d %10.0f records/s  %7.1f MB/s  %9llu records  %7llu syncs  (%.1f appends/sync, %.0f records per CPU-second)\n",
		    policy == STORE_FSYNC_ALWAYS ? "always" : policy == STORE_FSYNC_NEVER ? "never" : "interval",
		    policy != STORE_FSYNC_ALWAYS ? "" : "leader",
		    nthreads, (double)total / secs, (double)st.bytes / secs / 1e6,
		    (unsigned long long)total, (unsigned long long)st.syncs,
		    st.syncs ? (double)total / (double)st.syncs : 0.0, cpu > 0 ? (double)total / cpu : 0.0);
		fflush(stdout);
	}
	if (!keep)
		rm_rf(dir);
	return 0;
}

static int
phase_read(bench *b, const char *sub, bool decode, const char *label)
{
	char dir[4096];
	static store_scored s;
	store_reader *rd = NULL;
	store_record r;
	store_reader_stats rs;
	store_diag d;
	uint64_t t0, n = 0;
	struct timespec c0, c1;
	vigil_err rv;
	double secs, cpu;

	snprintf(dir, sizeof dir, "%s/%s", b->dir, sub);
	t0 = vigil_mono_ns();
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
	rv = store_reader_open(dir, INT64_MIN, INT64_MAX, NULL, NULL, &rd, &d);
	if (rv != VIGIL_OK) {
		fprintf(stderr, "bench-archive: %s\n", d.msg);
		return VIGIL_EXIT_FAIL;
	}
	while ((rv = store_reader_next(rd, &r, &d)) == VIGIL_OK) {
		if (decode && store_scored_decode(r.payload, r.len, &s, &d) != VIGIL_OK) {
			fprintf(stderr, "bench-archive: %s offset %llu: %s\n", r.segment,
			    (unsigned long long)r.offset, d.msg);
			store_reader_close(rd);
			return VIGIL_EXIT_FAIL;
		}
		n++;
	}
	store_reader_get_stats(rd, &rs);
	store_reader_close(rd);
	if (rv != VIGIL_ENOTFOUND) {
		fprintf(stderr, "bench-archive: read: %s\n", d.msg);
		return VIGIL_EXIT_FAIL;
	}
	secs = (double)(vigil_mono_ns() - t0) / 1e9;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1);
	cpu = (double)(c1.tv_sec - c0.tv_sec) + (double)(c1.tv_nsec - c0.tv_nsec) / 1e9;
	/* per CPU-second too: on a shared machine wall time includes waiting for a core */
	printf("read %-28s %10.0f records/s  %7.1f MB/s  %9llu records  %llu corrupt  (%.0f records per CPU-second)\n",
	    label, (double)n / secs, (double)rs.bytes / secs / 1e6, (unsigned long long)n,
	    (unsigned long long)rs.corrupt_records, cpu > 0 ? (double)n / cpu : 0.0);
	fflush(stdout);
	return 0;
}

/* Bytes of dir's segment files of one form (".log" or ".log.zst"). */
static uint64_t
dir_bytes(const char *dir, const char *suffix)
{
	store_seg_ent *ents;
	size_t nents;
	uint64_t n = 0;
	bool zst = strcmp(suffix, ".log.zst") == 0;

	if (store_seg_list(dir, &ents, &nents, NULL) != VIGIL_OK)
		return 0;
	for (size_t i = 0; i < nents; i++) {
		char p[4200];
		struct stat st;

		if (!(zst ? ents[i].has_zst : ents[i].has_log))
			continue;
		snprintf(p, sizeof p, "%s/%s%s", dir, ents[i].base, suffix);
		if (stat(p, &st) == 0)
			n += (uint64_t)st.st_size;
	}
	free(ents);
	return n;
}

static int
phase_compress(bench *b, const char *sub)
{
	char dir[4096];
	store_archive_opts o;
	store_archive *ar = NULL;
	store_diag d;
	struct timespec c0, c1;
	uint64_t t0, in, out;
	double cpu;
	vigil_err rv;

	snprintf(dir, sizeof dir, "%s/%s", b->dir, sub);
	store_archive_opts_default(&o);
	o.fsync = STORE_FSYNC_NEVER;
	o.compress_closed = true;
	rv = store_archive_open(dir, &o, &ar, NULL, &d);
	if (rv == VIGIL_OK)
		rv = store_archive_rotate(ar, &d);
	in = dir_bytes(dir, ".log");
	t0 = vigil_mono_ns();
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
	if (rv == VIGIL_OK)
		rv = store_archive_maintain(ar, &d);
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1);
	store_archive_close(ar);
	if (rv != VIGIL_OK) {
		fprintf(stderr, "bench-archive: compress: %s\n", d.msg);
		return VIGIL_EXIT_FAIL;
	}
	out = dir_bytes(dir, ".log.zst");
	cpu = (double)(c1.tv_sec - c0.tv_sec) + (double)(c1.tv_nsec - c0.tv_nsec) / 1e9;
	printf("compress closed segments (zstd -3)  %.2f s  %.1f MB -> %.1f MB  (%.0f MB per CPU-second)\n",
	    (double)(vigil_mono_ns() - t0) / 1e9, (double)in / 1e6, (double)out / 1e6,
	    cpu > 0 ? (double)in / 1e6 / cpu : 0.0);
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "seconds", required_argument, NULL, 's' },
		{ "records", required_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		VIGIL_CLI_VERSION,
		{ NULL, 0, NULL, 0 },
	};
	static bench b;
	char root[4096];
	const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/var/tmp";
	struct statfs sfs;
	int c, u = VIGIL_EXIT_OK, rc = 0;

	opterr = 0;
	b.seconds = 2;
	b.max_records = 500000;
	while ((c = getopt_long(argc, argv, "hV", longopts, NULL)) != -1) {
		switch (c) {
		case 'd': base = optarg; break;
		case 's':
			u = vigil_cli_parse_double("bench-archive", "seconds", optarg, 0, true, 1e6,
			    &b.seconds);
			break;
		case 'n':
			u = vigil_cli_parse_u64("bench-archive", "records", optarg, 1, UINT64_MAX,
			    &b.max_records);
			break;
		case 'h': usage(stdout); return VIGIL_EXIT_OK;
		case 'V': vigil_cli_version(stdout, "bench-archive"); return VIGIL_EXIT_OK;
		default: return vigil_cli_bad_option("bench-archive", argv);
		}
		if (u != VIGIL_EXIT_OK)
			return u;
	}
	if (optind != argc)
		return vigil_cli_usage_error("bench-archive", "%s: unexpected argument", argv[optind]);
	snprintf(root, sizeof root, "%s/vigil-bench-archive-XXXXXX", base);
	if (mkdtemp(root) == NULL) {
		fprintf(stderr, "bench-archive: %s: cannot create scratch directory: %s\n", root,
		    strerror(errno));
		return VIGIL_EXIT_FAIL;
	}
	b.dir = root;
	make_payload(&b);
	statfs(root, &sfs);
	printf("scratch %s (statfs type 0x%lx), payload %zu bytes (+32 header)\n", root,
	    (unsigned long)sfs.f_type, b.plen);
	rc = phase_append(&b, "never", STORE_FSYNC_NEVER, 1, true);
	for (int k = 0; k < 3 && rc == 0; k++) {
		static const int nthr[] = { 1, 4, 16 };

		rc = phase_append(&b, "always", STORE_FSYNC_ALWAYS, nthr[k], false);
	}
	if (rc == 0)
		rc = phase_append(&b, "interval", STORE_FSYNC_INTERVAL, 1, false);
	/* Concurrent appenders share one copy into the segment (group write). */
	if (rc == 0)
		rc = phase_append(&b, "never-mt", STORE_FSYNC_NEVER, 4, false);
	if (rc == 0)
		rc = phase_append(&b, "interval-mt", STORE_FSYNC_INTERVAL, 4, false);
	if (rc == 0)
		rc = phase_read(&b, "never", false, "frames (CRC checked)");
	if (rc == 0)
		rc = phase_read(&b, "never", true, "frames + scored decode");
	if (rc == 0)
		rc = phase_compress(&b, "never");
	if (rc == 0)
		rc = phase_read(&b, "never", false, "zstd frames (CRC checked)");
	if (rc == 0)
		rc = phase_read(&b, "never", true, "zstd frames + scored decode");
	{
		char p[4200];
		snprintf(p, sizeof p, "%s/never", root);
		rm_rf(p);
	}
	rmdir(root);
	return rc;
}
