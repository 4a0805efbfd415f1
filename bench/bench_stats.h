/* SPDX-License-Identifier: MIT */
/*
 * bench/bench_stats.h - the clocks the benchmark programs read and the
 * median every one of them reports (docs/BENCHMARKS.md: figures are the
 * median of several runs).
 */
#ifndef VIGIL_BENCH_STATS_H
#define VIGIL_BENCH_STATS_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

/* Clock clk in nanoseconds: CLOCK_MONOTONIC for wall time, or the CPU time
 * of the calling thread (CLOCK_THREAD_CPUTIME_ID) or of the whole process
 * (CLOCK_PROCESS_CPUTIME_ID, every thread, user and system), the figure
 * that does not depend on what other tenants of a shared machine run. */
static inline uint64_t
bench_clock_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The same in seconds. */
static inline double
bench_clock_s(clockid_t clk)
{
	return (double)bench_clock_ns(clk) / 1e9;
}

static inline int
bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Sorts v[0..n) (n > 0) and returns its median: the middle value, or the
 * mean of the two middle ones. */
static inline double
bench_median(double *v, size_t n)
{
	qsort(v, n, sizeof *v, bench_cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

#endif /* VIGIL_BENCH_STATS_H */
