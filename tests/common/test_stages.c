/* SPDX-License-Identifier: MIT */
/*
 * tests/common/test_stages.c - the request stage timer (common/stages.h),
 * compiled in here whatever -Dstage_timing says: intervals are summed
 * between consecutive marks, one with a mark missing or over the cap is
 * left out, the marks are cleared for the next request, and a begin clears
 * what an unfinished request (one queued and drained) left.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "stages.h"

static void
test_stage_intervals(void **state)
{
	double mean;

	(void)state;
	assert_true(vigil_stage_cap_ticks() > 0);
	assert_int_equal(vigil_stage_count(VIGIL_ST_RECV, &mean), 0);
	VIGIL_STAGE(VIGIL_ST_RECV);
	VIGIL_STAGE(VIGIL_ST_HANDLE);
	VIGIL_STAGE(VIGIL_ST_DECODE);
	VIGIL_STAGE_DONE(VIGIL_ST_RECV, VIGIL_ST_DECODE);
	assert_int_equal(vigil_stage_count(VIGIL_ST_RECV, &mean), 1);
	assert_true(mean >= 0.0);
	assert_int_equal(vigil_stage_count(VIGIL_ST_HANDLE, &mean), 1);
	/* cleared: a DONE without new marks adds nothing */
	for (int i = VIGIL_ST_RECV; i <= VIGIL_ST_DECODE; i++)
		assert_int_equal(vigil_stage_at[i], 0);
	VIGIL_STAGE_DONE(VIGIL_ST_RECV, VIGIL_ST_DECODE);
	assert_int_equal(vigil_stage_count(VIGIL_ST_RECV, &mean), 1);
}

static void
test_stage_left_out(void **state)
{
	double mean;
	uint64_t cap = vigil_stage_cap_ticks();

	(void)state;
	/* a missing mark: RULESET never stamped, so RULESET and DECODE's
	 * intervals (DECODE -> RULESET, RULESET -> SCORE) are not counted */
	VIGIL_STAGE(VIGIL_ST_DECODE);
	VIGIL_STAGE(VIGIL_ST_SCORE);
	VIGIL_STAGE(VIGIL_ST_FILL);
	VIGIL_STAGE_DONE(VIGIL_ST_DECODE, VIGIL_ST_FILL);
	assert_int_equal(vigil_stage_count(VIGIL_ST_DECODE, &mean), 0);
	assert_int_equal(vigil_stage_count(VIGIL_ST_RULESET, &mean), 0);
	assert_int_equal(vigil_stage_count(VIGIL_ST_SCORE, &mean), 1);
	/* over the cap (a preempted thread), and running backwards */
	vigil_stage_at[VIGIL_ST_APP] = 1000;
	vigil_stage_at[VIGIL_ST_APP_END] = 1000 + cap + 1;
	VIGIL_STAGE_DONE(VIGIL_ST_APP, VIGIL_ST_APP_END);
	vigil_stage_at[VIGIL_ST_SENT_CB] = 5000;
	vigil_stage_at[VIGIL_ST_SENT_CB_END] = 4000;
	VIGIL_STAGE_DONE(VIGIL_ST_SENT_CB, VIGIL_ST_SENT_CB_END);
	assert_int_equal(vigil_stage_count(VIGIL_ST_APP, &mean), 0);
	assert_int_equal(vigil_stage_count(VIGIL_ST_SENT_CB, &mean), 0);
	/* at the cap: counted, with its exact length */
	vigil_stage_at[VIGIL_ST_APP] = 1000;
	vigil_stage_at[VIGIL_ST_APP_END] = 1000 + cap;
	VIGIL_STAGE_DONE(VIGIL_ST_APP, VIGIL_ST_APP_END);
	assert_int_equal(vigil_stage_count(VIGIL_ST_APP, &mean), 1);
	assert_true(mean == (double)cap);
}

static void
test_stage_begin_clears(void **state)
{
	double mean;

	(void)state;
	/* a drained request stamped FILL and PACK and was never done */
	VIGIL_STAGE(VIGIL_ST_FILL);
	VIGIL_STAGE(VIGIL_ST_PACK);
	/* the next request marks RECV .. DECODE only: the stale FILL -> PACK
	 * interval must not be counted again */
	VIGIL_STAGE_BEGIN(VIGIL_ST_RECV, VIGIL_ST_END);
	assert_int_equal(vigil_stage_at[VIGIL_ST_FILL], 0);
	assert_int_equal(vigil_stage_at[VIGIL_ST_PACK], 0);
	assert_true(vigil_stage_at[VIGIL_ST_RECV] != 0);
	VIGIL_STAGE(VIGIL_ST_HANDLE);
	VIGIL_STAGE_DONE(VIGIL_ST_RECV, VIGIL_ST_END);
	assert_int_equal(vigil_stage_count(VIGIL_ST_FILL, &mean), 0);
	assert_int_equal(vigil_stage_count(VIGIL_ST_RECV, &mean), 2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stage_intervals),
		cmocka_unit_test(test_stage_left_out),
		cmocka_unit_test(test_stage_begin_clears),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
