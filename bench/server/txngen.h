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
 * steady state of a long-running vigild), and, with alert_every N, every
 * N-th transaction from a sanctioned country (TXNGEN_ALERT_COUNTRY, on the
 * sanctioned_countries list of rules/default.rules: a hard-stop decline,
 * so about 1/N of the scores alert and give reasons, as production's
 * review and decline share does; 0: none).
 */
#ifndef VIGIL_BENCH_TXNGEN_H
#define VIGIL_BENCH_TXNGEN_H

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>

#define TXNGEN_CURRENCY "EUR"
#define TXNGEN_COUNTRY  "FR"
#define TXNGEN_ALERT_COUNTRY "IR"
#define TXNGEN_MCC      5411u
#define TXNGEN_T0_MS    1763700000000LL
#define TXNGEN_STEP_US  125u
#define TXNGEN_STEP_US_MAX 3600000000u /* an hour */

/* The stream's shape: pools, event time step, alert share. */
typedef struct txngen_opts {
	uint32_t cards;       /* card pool (vigil-loadgen's default 10000) */
	uint32_t merchants;   /* merchant pool, 4 terminals each (1000) */
	uint32_t step_us;     /* event time between transactions (TXNGEN_STEP_US) */
	uint32_t alert_every; /* every N-th from TXNGEN_ALERT_COUNTRY; 0: none */
} txngen_opts;

#define TXNGEN_OPTS_DEFAULT { 10000u, 1000u, TXNGEN_STEP_US, 0u }

typedef struct txngen {
	char    txn_id[64];
	char    card_id[32];
	char    merchant_id[32];
	char    terminal_id[40];
	int64_t amount_minor;
	int64_t event_time_ms;
	const char *country;
} txngen;

/* run: a short tag that makes the ids of one run unique. */
static inline void
txngen_make(txngen *t, const char *run, uint64_t n, const txngen_opts *o)
{
	snprintf(t->txn_id, sizeof t->txn_id, "lg-%s-%" PRIu64, run, n);
	snprintf(t->card_id, sizeof t->card_id, "card-%" PRIu64, (n * 2654435761u) % o->cards);
	snprintf(t->merchant_id, sizeof t->merchant_id, "m-%" PRIu64, (n * 40503u) % o->merchants);
	snprintf(t->terminal_id, sizeof t->terminal_id, "t-%s-%" PRIu64, t->merchant_id, n % 4);
	t->amount_minor = 1000 + (int64_t)(n % 50000);
	t->event_time_ms = TXNGEN_T0_MS + (int64_t)(n * o->step_us / 1000);
	t->country = o->alert_every > 0 && n % o->alert_every == o->alert_every - 1
	    ? TXNGEN_ALERT_COUNTRY : TXNGEN_COUNTRY;
}

#endif
