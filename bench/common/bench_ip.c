/* SPDX-License-Identifier: MIT */
/*
 * bench/common/bench_ip.c - cost of putting an IPv6 address in its one
 * spelling (vigil_ip_canonical, common/txn.c, run by vigil_txn_validate on
 * every transaction that carries an ip), next to the same steps with
 * glibc's inet_ntop as the formatter, and to the inet_pton both share, all
 * in the same run on the same addresses (docs/BENCHMARKS.md, "Common").
 *
 * The addresses (a pool of 4096, fixed seed) are what clients send: global
 * unicast in a few /32s, half with a random interface id (privacy
 * addresses: eight groups), a quarter with a zero run before a small host
 * part (2001:db8:1:2::1f), a quarter with one zero group in the interface id;
 * half spelt as inet_ntop writes them, half in full upper-case hex with
 * leading zeros. Each measure runs --runs times, the measures taking turns
 * within a round; the median thread CPU ns per address is reported, with
 * the median of the rounds' own differences to vigil_ip_canonical. Before
 * timing, both formatters must give the same text for every address.
 */
#include <arpa/inet.h>
#include <getopt.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "bench_stats.h"
#include "cli.h"
#include "splitmix.h"
#include "vigil.h"

#define POOL     4096
#define MAX_RUNS 64

static const char *usage =
    "usage: bench-ip [--iterations N] [--runs R]\n"
    "\n"
    "Measures vigil_ip_canonical on IPv6 addresses against the same steps with\n"
    "glibc's inet_ntop as the formatter, and inet_pton alone: thread CPU ns per\n"
    "address, the median of R runs, and the median of the runs' own differences.\n"
    "  --iterations N   addresses per measure and run (default 2000000)\n"
    "  --runs R         runs (default 7, max 64)\n"
    "  --help           this text\n"
    "  --version        print the version\n";

static void
print_usage(FILE *out)
{
	static const char *const exits[VIGIL_EXIT_COUNT_] = {
		"every figure measured", "the two formatters disagree on an address", "", NULL,
	};

	fputs(usage, out);
	vigil_cli_exit_help(out, exits);
}

static char pool[POOL][VIGIL_IP_MAX + 1];

/* vigil_ip_canonical with inet_ntop for the IPv6 text: what the library
 * would cost on the same path. */
static bool
canonical_ntop(const char *s, char *ret_canon)
{
	struct in6_addr a;
	size_t n = strnlen(s, VIGIL_IP_MAX + 1);

	if (n > VIGIL_IP_MAX)
		return false;
	if (n == 0 || inet_pton(AF_INET, s, &a) == 1) {
		memcpy(ret_canon, s, n + 1);
		return true;
	}
	if (inet_pton(AF_INET6, s, &a) != 1)
		return false;
	if (IN6_IS_ADDR_V4MAPPED(&a))
		return inet_ntop(AF_INET, &a.s6_addr[12], ret_canon, VIGIL_IP_MAX + 1) != NULL;
	return inet_ntop(AF_INET6, &a, ret_canon, VIGIL_IP_MAX + 1) != NULL;
}

/* The parse both share: the IPv4 attempt, then IPv6. */
static bool
parse_only(const char *s, char *ret_canon)
{
	struct in6_addr a;

	if (inet_pton(AF_INET, s, &a) == 1 || inet_pton(AF_INET6, s, &a) != 1)
		return false;
	ret_canon[0] = (char)a.s6_addr[15];
	return true;
}

static void
make_pool(void)
{
	static const uint16_t nets[][2] = {
		{ 0x2001, 0x0db8 }, { 0x2a02, 0x0810 }, { 0x2607, 0xf8b0 }, { 0x2400, 0xcb00 },
	};
	uint64_t st = 0x5eed;

	for (int i = 0; i < POOL; i++) {
		uint64_t r = vigil_splitmix64(&st), id = vigil_splitmix64(&st);
		struct in6_addr a;
		uint16_t g[8];

		g[0] = nets[r & 3][0];
		g[1] = nets[r & 3][1];
		g[2] = (uint16_t)(r >> 8);
		g[3] = (uint16_t)(r >> 24);
		for (int k = 0; k < 4; k++)
			g[4 + k] = (uint16_t)(id >> (16 * k));
		switch (r >> 62) {
		case 0: /* a zero run, then a small host part */
			g[4] = g[5] = g[6] = 0;
			g[7] &= 0xff;
			break;
		case 1: /* one zero group in the interface id */
			g[5] = 0;
			g[4] &= 0x0fff;
			break;
		default: /* a privacy address */
			break;
		}
		for (int k = 0; k < 8; k++) {
			a.s6_addr[2 * k] = (uint8_t)(g[k] >> 8);
			a.s6_addr[2 * k + 1] = (uint8_t)g[k];
		}
		if (r >> 40 & 1)
			snprintf(pool[i], sizeof pool[i], "%04X:%04X:%04X:%04X:%04X:%04X:%04X:%04X",
			    g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7]);
		else
			inet_ntop(AF_INET6, &a, pool[i], sizeof pool[i]);
	}
}

typedef bool (*canon_fn)(const char *, char *);

static volatile unsigned sink;

/* Thread CPU ns per address of n calls of fn over the pool. */
static double
measure(canon_fn fn, uint32_t n)
{
	char out[VIGIL_IP_MAX + 1];
	unsigned acc = 0;
	uint64_t t0 = bench_clock_ns(CLOCK_THREAD_CPUTIME_ID);

	for (uint32_t i = 0; i < n; i++) {
		acc += fn(pool[i % POOL], out);
		acc += (unsigned char)out[1];
	}
	sink = acc;
	return (double)(bench_clock_ns(CLOCK_THREAD_CPUTIME_ID) - t0) / n;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "iterations", required_argument, NULL, 'i' },
		{ "runs", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		VIGIL_CLI_VERSION,
		{ NULL, 0, NULL, 0 },
	};
	static const struct {
		const char *name;
		canon_fn    fn;
	} m[] = {
		{ "vigil_ip_canonical (ip6_format)", vigil_ip_canonical },
		{ "the same with inet_ntop", canonical_ntop },
		{ "inet_pton alone (both parse so)", parse_only },
	};
	enum { NM = sizeof m / sizeof m[0] };
	uint32_t iters = 2000000, runs = 7;
	double ns[NM][MAX_RUNS], diff[NM][MAX_RUNS];
	int o;

	opterr = 0;
	while ((o = getopt_long(argc, argv, "hV", opts, NULL)) != -1) {
		int u = VIGIL_EXIT_OK;

		switch (o) {
		case 'i': u = vigil_cli_parse_u32("bench-ip", "iterations", optarg,
		    1, UINT32_MAX, &iters); break;
		case 'r': u = vigil_cli_parse_u32("bench-ip", "runs", optarg,
		    1, MAX_RUNS, &runs); break;
		case 'h': print_usage(stdout); return VIGIL_EXIT_OK;
		case 'V': vigil_cli_version(stdout, "bench-ip"); return VIGIL_EXIT_OK;
		default: return vigil_cli_bad_option("bench-ip", argv);
		}
		if (u != VIGIL_EXIT_OK)
			return u;
	}
	if (optind != argc)
		return vigil_cli_usage_error("bench-ip", "%s: unexpected argument", argv[optind]);

	make_pool();
	for (int i = 0; i < POOL; i++) {
		char a[VIGIL_IP_MAX + 1], b[VIGIL_IP_MAX + 1];

		if (!vigil_ip_canonical(pool[i], a) || !canonical_ntop(pool[i], b) ||
		    strcmp(a, b) != 0) {
			fprintf(stderr, "bench-ip: %s: vigil_ip_canonical \"%s\", inet_ntop \"%s\"\n",
			    pool[i], a, b);
			return VIGIL_EXIT_FAIL;
		}
	}
	(void)measure(vigil_ip_canonical, iters / 4 + 1); /* warm-up */
	for (uint32_t r = 0; r < runs; r++) {
		for (int k = 0; k < NM; k++)
			ns[k][r] = measure(m[k].fn, iters);
		for (int k = 0; k < NM; k++)
			diff[k][r] = ns[k][r] - ns[0][r];
	}
	printf("%u IPv6 addresses (a pool of %d) per measure, %u runs; "
	    "thread CPU ns per address, median (min-max); minus the first, the median "
	    "of the runs' differences\n", iters, POOL, runs);
	for (int k = 0; k < NM; k++) {
		double lo = ns[k][0], hi = ns[k][0], med, dmed;

		for (uint32_t r = 1; r < runs; r++) {
			lo = ns[k][r] < lo ? ns[k][r] : lo;
			hi = ns[k][r] > hi ? ns[k][r] : hi;
		}
		med = bench_median(ns[k], runs);
		dmed = bench_median(diff[k], runs);
		printf("  %-34s %7.1f ns (%.1f-%.1f)", m[k].name, med, lo, hi);
		if (k > 0)
			printf("  %+7.1f ns", dmed);
		printf("\n");
	}
	return vigil_cli_stdout_status("bench-ip", VIGIL_EXIT_OK);
}
