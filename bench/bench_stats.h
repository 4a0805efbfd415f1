/* SPDX-License-Identifier: MIT */
/*
 * bench/bench_stats.h - the median every benchmark program reports
 * (docs/BENCHMARKS.md: figures are the median of several runs). Time
 * itself comes from common/vigil.h (vigil_mono_ns) or the program's own
 * CPU clock.
 */
#ifndef VIGIL_BENCH_STATS_H
#define VIGIL_BENCH_STATS_H

#include <stddef.h>
#include <stdlib.h>

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
