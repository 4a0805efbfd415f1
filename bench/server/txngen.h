/* SPDX-License-Identifier: MIT */
/*
 * bench/server/txngen.h - the n-th transaction of vigil-loadgen's stream,
 * shared with bench-pipeline so that both score the same traffic: a fresh
 * txn_id per request, the card drawn from a pool of `cards` (a
 * multiplicative hash spreads consecutive requests over it, so the live
 * state sees repeat cards), one of `merchants` merchants with 4 terminals
 * each, consecutive transactions step_us microseconds of event time apart
 * (TXNGEN_STEP_US: 8 a millisecond, so no event of a short run expires;
 * a step of minutes makes the live state expire as fast as it grows, the
 * steady state of a long-running vigild).
 */
#ifndef VIGIL_BENCH_TXNGEN_H
#define VIGIL_BENCH_TXNGEN_H

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>

#define TXNGEN_CURRENCY "EUR"
#define TXNGEN_COUNTRY  "FR"
#define TXNGEN_MCC      5411u
#define TXNGEN_T0_MS    1763700000000LL
#define TXNGEN_STEP_US  125u
#define TXNGEN_STEP_US_MAX 3600000000u /* an hour */

typedef struct txngen {
	char    txn_id[64];
	char    card_id[32];
	char    merchant_id[32];
	char    terminal_id[40];
	int64_t amount_minor;
	int64_t event_time_ms;
} txngen;

/* run: a short tag that makes the ids of one run unique. */
static inline void
txngen_make(txngen *t, const char *run, uint64_t n, uint32_t cards, uint32_t merchants,
    uint32_t step_us)
{
	snprintf(t->txn_id, sizeof t->txn_id, "lg-%s-%" PRIu64, run, n);
	snprintf(t->card_id, sizeof t->card_id, "card-%" PRIu64, (n * 2654435761u) % cards);
	snprintf(t->merchant_id, sizeof t->merchant_id, "m-%" PRIu64, (n * 40503u) % merchants);
	snprintf(t->terminal_id, sizeof t->terminal_id, "t-%s-%" PRIu64, t->merchant_id, n % 4);
	t->amount_minor = 1000 + (int64_t)(n % 50000);
	t->event_time_ms = TXNGEN_T0_MS + (int64_t)(n * step_us / 1000);
}

#endif
