/* SPDX-License-Identifier: MIT */
/*
 * common/stages.h - where a request's time goes inside a server, for
 * bench/server/stages.sh: with -Dstage_timing=true, VIGIL_STAGE(i) stamps
 * mark i of the calling thread (the TSC on x86-64) and VIGIL_STAGE_DONE
 * adds each interval between consecutive marks to process-wide sums; the
 * means are printed on stderr at exit. Off (the default), both expand to
 * nothing. An interval longer than 100 µs (the thread was preempted in
 * it) or with a mark missing is left out.
 *
 * Marks (an interval is named after the mark it starts at):
 *   VIGIL_ST_RECV .. VIGIL_ST_END: one request scored inline by vigild
 *   (server/rep.c, server/request.c; VIGIL_STAGE_BEGIN clears the marks a
 *   request queued and drained on the same thread left), and the echo's
 *   send (bench/server);
 *   VIGIL_ST_APP, VIGIL_ST_APP_END: app_score alone;
 *   VIGIL_ST_SENT_CB, VIGIL_ST_SENT_CB_END: the callback of a finished send.
 */
#ifndef VIGIL_STAGES_H
#define VIGIL_STAGES_H

#include <stdint.h>

#include "vigil_config.h"

/* tests/common/test_stages.c compiles the timer in whatever the build's
 * option says */
#ifdef VIGIL_STAGE_TIMING_TEST
#undef VIGIL_STAGE_TIMING
#define VIGIL_STAGE_TIMING 1
#endif

enum {
	VIGIL_ST_RECV,     /* admit: the connection's cap, max_inflight, a slot */
	VIGIL_ST_HANDLE,   /* into the handler */
	VIGIL_ST_DECODE,   /* decode and check the request */
	VIGIL_ST_RULESET,  /* take the rule set */
	VIGIL_ST_SCORE,    /* srv_score_txn */
	VIGIL_ST_FILL,     /* the reply's fields and the metrics */
	VIGIL_ST_PACK,     /* size the reply, grow nng's buffer, pack */
	VIGIL_ST_RELEASE,  /* release the request's worker state */
	VIGIL_ST_SEND,     /* nng_ctx_send (its sendmsg wakes the peer) */
	VIGIL_ST_END,
	VIGIL_ST_APP = 12, /* app_score */
	VIGIL_ST_APP_END,
	VIGIL_ST_SENT_CB = 14, /* a finished send: release, receive again */
	VIGIL_ST_SENT_CB_END,
	VIGIL_ST_COUNT
};

#if VIGIL_STAGE_TIMING
extern _Thread_local uint64_t vigil_stage_at[VIGIL_ST_COUNT];
uint64_t vigil_stage_now(void);
void     vigil_stage_done(int first, int last);
/* Interval i's count and mean in ticks so far; ticks over 100 µs (the cap
 * on an interval): for tests and the report. */
uint64_t vigil_stage_count(int i, double *ret_mean_ticks);
uint64_t vigil_stage_cap_ticks(void);
void     vigil_stage_begin(int first, int last);
#define VIGIL_STAGE(i)           (vigil_stage_at[(i)] = vigil_stage_now())
/* Clears marks first .. last, then stamps first. */
#define VIGIL_STAGE_BEGIN(first, last) vigil_stage_begin((first), (last))
#define VIGIL_STAGE_DONE(first, last) vigil_stage_done((first), (last))
#else
#define VIGIL_STAGE(i)           ((void)0)
#define VIGIL_STAGE_BEGIN(first, last) ((void)0)
#define VIGIL_STAGE_DONE(first, last) ((void)0)
#endif

#endif
