/* SPDX-License-Identifier: MIT */
/*
 * common/stages.c - the request stage timer (stages.h): per-thread marks,
 * process-wide sums, the means on stderr at exit.
 */
#include "stages.h"
#include "vigil.h"

#if VIGIL_STAGE_TIMING
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>
#if defined(__x86_64__)
#include <x86intrin.h>
#endif

_Thread_local uint64_t vigil_stage_at[VIGIL_ST_COUNT];

static _Atomic uint64_t st_sum[VIGIL_ST_COUNT], st_n[VIGIL_ST_COUNT];
static uint64_t st_tick0, st_ns0, st_cap;

static const char *const st_name[VIGIL_ST_COUNT] = {
	[VIGIL_ST_RECV] = "admit",
	[VIGIL_ST_HANDLE] = "into the handler",
	[VIGIL_ST_DECODE] = "decode",
	[VIGIL_ST_RULESET] = "rule set",
	[VIGIL_ST_SCORE] = "score (srv_score_txn)",
	[VIGIL_ST_FILL] = "reply fields, metrics",
	[VIGIL_ST_PACK] = "reply size, buffer, pack",
	[VIGIL_ST_RELEASE] = "release",
	[VIGIL_ST_SEND] = "send (nng_ctx_send)",
	[VIGIL_ST_APP] = "app_score",
	[VIGIL_ST_SENT_CB] = "send finished",
};

uint64_t
vigil_stage_now(void)
{
#if defined(__x86_64__)
	return __rdtsc();
#else
	return vigil_mono_ns();
#endif
}

/* The tick rate over 2 ms at start: the cap on an interval, in ticks. */
__attribute__((constructor)) static void
st_start(void)
{
	struct timespec d = { 0, 2000000 };
	uint64_t ns;

	st_tick0 = vigil_stage_now();
	st_ns0 = vigil_mono_ns();
	nanosleep(&d, NULL);
	ns = vigil_mono_ns() - st_ns0;
	st_cap = (uint64_t)(100000.0 * (double)(vigil_stage_now() - st_tick0) /
	    (double)(ns > 0 ? ns : 1));
}

/* Clears this thread's marks first .. last. */
static void
st_clear(int first, int last)
{
	for (int i = first; i <= last; i++)
		vigil_stage_at[i] = 0;
}

void
vigil_stage_begin(int first, int last)
{
	st_clear(first + 1, last);
	vigil_stage_at[first] = vigil_stage_now();
}

void
vigil_stage_done(int first, int last)
{
	uint64_t cap = st_cap;

	for (int i = first; i < last; i++) {
		uint64_t a = vigil_stage_at[i], b = vigil_stage_at[i + 1];

		if (a == 0 || b < a || b - a > cap)
			continue;
		atomic_fetch_add_explicit(&st_sum[i], b - a, memory_order_relaxed);
		atomic_fetch_add_explicit(&st_n[i], 1, memory_order_relaxed);
	}
	st_clear(first, last);
}

uint64_t
vigil_stage_count(int i, double *ret_mean_ticks)
{
	uint64_t n = atomic_load(&st_n[i]);

	*ret_mean_ticks = n > 0 ? (double)atomic_load(&st_sum[i]) / (double)n : 0.0;
	return n;
}

uint64_t
vigil_stage_cap_ticks(void)
{
	return st_cap;
}

__attribute__((destructor)) static void
st_report(void)
{
	uint64_t ns = vigil_mono_ns() - st_ns0;
	double per_ns = ns > 0 ? (double)(vigil_stage_now() - st_tick0) / (double)ns : 1.0;

	for (int i = 0; i < VIGIL_ST_COUNT; i++)
		if (st_n[i] > 0)
			fprintf(stderr, "stage %-26s %8.3f us  (n=%llu)\n", st_name[i],
			    (double)st_sum[i] / (double)st_n[i] / per_ns / 1000.0,
			    (unsigned long long)st_n[i]);
}
#else
typedef int vigil_stages_off; /* ISO C: not an empty translation unit */
#endif
