/* SPDX-License-Identifier: MIT */
/*
 * bench/store/bench_gencheck.c - what verifying a feature generation before
 * it is mapped costs (docs/storage.md, "Verification").
 *
 * Writes one generation of --cards cards (600000: about 200 MB of data.mdb)
 * with store_genw, then times, each the median of --runs runs:
 *   commit    the CHECKSUM a commit writes (gen_checksum_write: read + hash)
 *   hash      XXH3-128 over the same bytes already in memory (the CPU part)
 *   warm      store_gen_open with data.mdb in the page cache (a switch just
 *             after vigil-rebuild wrote it: the usual case)
 *   cold      store_gen_open after posix_fadvise(DONTNEED) on data.mdb only
 *             (a start-up after a reboot; the disk decides)
 *   legacy    store_gen_open of the same file without CHECKSUM (what the
 *             open costs without verification), warm
 * Run from a release build:
 *   meson setup build-bench --buildtype=release && ninja -C build-bench
 *   ./build-bench/bench/store/bench-gencheck
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "bench_stats.h"
#include "cli.h"
#include "gendir.h"
#include "genread.h"
#include "gen.h"

static void
usage(FILE *out)
{
	static const char *const exits[VIGIL_EXIT_COUNT_] = {
		"every figure measured", "a store or I/O error (the message says which)", "", NULL,
	};

	fprintf(out, "usage: bench-gencheck [--cards N (600000)] [--runs N (5, max 64)] "
	    "[--dir EMPTY_DIR]\n       bench-gencheck --help | --version\nTimes the verification of a feature generation "
	    "before it is mapped (docs/storage.md).\n");
	vigil_cli_exit_help(out, exits);
}

static void
die(const char *what, vigil_err rv, const store_diag *d)
{
	fprintf(stderr, "bench-gencheck: %s: %s: %s\n", what, vigil_strerror(rv), d ? d->msg : "");
	exit(1);
}

static void
drop_cache(const char *path)
{
	int fd = open(path, O_RDONLY);

	if (fd < 0 || fdatasync(fd) != 0 || posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) != 0) {
		perror(path);
		exit(1);
	}
	close(fd);
}

static double
time_open(const char *dir, bool cold, const char *data)
{
	store_gen *g = NULL;
	store_diag d;
	vigil_err  rv;
	double     t;

	if (cold)
		drop_cache(data);
	t = bench_clock_s(CLOCK_MONOTONIC);
	rv = store_gen_open(dir, 1, &g, &d);
	t = bench_clock_s(CLOCK_MONOTONIC) - t;
	if (rv != VIGIL_OK)
		die("store_gen_open", rv, &d);
	store_gen_close(g);
	return t;
}

int
main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "cards", required_argument, NULL, 'c' }, { "runs", required_argument, NULL, 'r' },
		{ "dir", required_argument, NULL, 'd' }, { "help", no_argument, NULL, 'h' },
		VIGIL_CLI_VERSION,
		{ NULL, 0, NULL, 0 },
	};
	uint32_t           cards = 600000, runs = 5;
	const char        *dirarg = NULL;
	char               tmpl[] = "/tmp/vigil-bench-gencheck-XXXXXX", gendir[4200], data[4300];
	char               sum[4300], cmd[4400], id[32];
	const char        *dir;
	store_genw        *w = NULL;
	store_card_profile cp;
	store_gen_meta     meta;
	store_diag         d;
	struct stat        st;
	double             t[64], tc, th, tw, tcold, tl, mb;
	uint8_t           *buf;
	FILE              *f;
	vigil_err          rv;
	int                o;

	opterr = 0;
	while ((o = getopt_long(argc, argv, "hV", lo, NULL)) != -1) {
		int u = VIGIL_EXIT_OK;

		switch (o) {
		case 'c': u = vigil_cli_parse_u32("bench-gencheck", "cards", optarg,
		    1, UINT32_MAX, &cards); break;
		case 'r': u = vigil_cli_parse_u32("bench-gencheck", "runs", optarg,
		    1, 64, &runs); break;
		case 'd': dirarg = optarg; break;
		case 'h': usage(stdout); return VIGIL_EXIT_OK;
		case 'V': vigil_cli_version(stdout, "bench-gencheck"); return VIGIL_EXIT_OK;
		default: return vigil_cli_bad_option("bench-gencheck", argv);
		}
		if (u != VIGIL_EXIT_OK)
			return u;
	}
	if (optind != argc)
		return vigil_cli_usage_error("bench-gencheck", "%s: unexpected argument", argv[optind]);
	dir = dirarg != NULL ? dirarg : mkdtemp(tmpl);
	if (dir == NULL) {
		perror("mkdtemp");
		return 1;
	}
	fprintf(stderr, "writing a generation of %u cards in %s ...\n", cards, dir);
	if ((rv = store_genw_begin(dir, &w, &d)) != VIGIL_OK)
		die("store_genw_begin", rv, &d);
	memset(&cp, 0, sizeof cp);
	cp.count_90d = 90;
	cp.nmerchants = 8;
	cp.ncountries = 2;
	for (uint32_t i = 0; i < cards; i++) {
		snprintf(id, sizeof id, "card-%09u", i);
		cp.count_7d = i;
		if ((rv = store_genw_put_card(w, id, &cp)) != VIGIL_OK)
			die("store_genw_put_card", rv, NULL);
	}
	memset(&meta, 0, sizeof meta);
	if ((rv = store_genw_commit(w, &meta, 0, &d)) != VIGIL_OK)
		die("store_genw_commit", rv, &d);
	snprintf(gendir, sizeof gendir, "%s/features/gen-000001", dir);
	snprintf(data, sizeof data, "%s/data.mdb", gendir);
	snprintf(sum, sizeof sum, "%s/CHECKSUM", gendir);
	if (stat(data, &st) != 0) {
		perror(data);
		return 1;
	}
	mb = (double)st.st_size / 1e6;

	for (uint32_t r = 0; r < runs; r++) {
		double t0 = bench_clock_s(CLOCK_MONOTONIC);

		if ((rv = gen_checksum_write(gendir, &d)) != VIGIL_OK)
			die("gen_checksum_write", rv, &d);
		t[r] = bench_clock_s(CLOCK_MONOTONIC) - t0;
	}
	tc = bench_median(t, (int)runs);
	buf = malloc((size_t)st.st_size);
	f = fopen(data, "rb");
	if (buf == NULL || f == NULL || fread(buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
		perror(data);
		return 1;
	}
	fclose(f);
	for (uint32_t r = 0; r < runs; r++) {
		double         t0 = bench_clock_s(CLOCK_MONOTONIC);
		XXH128_hash_t  h = XXH3_128bits(buf, (size_t)st.st_size);

		t[r] = bench_clock_s(CLOCK_MONOTONIC) - t0;
		if (h.low64 == 42) /* keep the call */
			fputc(' ', stderr);
	}
	th = bench_median(t, (int)runs);
	free(buf);
	for (uint32_t r = 0; r < runs; r++)
		t[r] = time_open(dir, false, data);
	tw = bench_median(t, (int)runs);
	for (uint32_t r = 0; r < runs; r++)
		t[r] = time_open(dir, true, data);
	tcold = bench_median(t, (int)runs);
	/* the same file as a generation from before checksums */
	if (unlink(sum) != 0) {
		perror(sum);
		return 1;
	}
	snprintf(cmd, sizeof cmd, "%s/features/CHECKSUMS_FROM", dir);
	unlink(cmd);
	for (uint32_t r = 0; r < runs; r++)
		t[r] = time_open(dir, false, data);
	tl = bench_median(t, (int)runs);

	printf("generation: %u cards, data.mdb %.1f MB; median of %u runs\n", cards, mb, runs);
	printf("  commit  CHECKSUM written        %8.1f ms  %6.2f GB/s\n", tc * 1e3, mb / 1e3 / tc);
	printf("  hash    XXH3-128 in memory      %8.1f ms  %6.2f GB/s\n", th * 1e3, mb / 1e3 / th);
	printf("  warm    store_gen_open          %8.1f ms  %6.2f GB/s\n", tw * 1e3, mb / 1e3 / tw);
	printf("  cold    store_gen_open          %8.1f ms  %6.2f GB/s\n", tcold * 1e3,
	    mb / 1e3 / tcold);
	printf("  legacy  store_gen_open (no CHECKSUM) %5.2f ms\n", tl * 1e3);
	if (dirarg == NULL) {
		snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "bench-gencheck: could not remove %s\n", dir);
	}
	return 0;
}
