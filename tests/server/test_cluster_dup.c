/* SPDX-License-Identifier: MIT */
/*
 * tests/server/test_cluster_dup.c - which stream messages are a second copy
 * of a batch already applied (server/cluster_dup.h): a batch of one
 * process stored twice is applied once, a stream delivered out of order
 * is applied whole, another process's batch of the
 * same number is its own, ids not of a vigild are applied as they come,
 * and past CLUSTER_DUP_MAX processes the one seen longest ago is
 * forgotten.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "cluster_dup.h"

/* A batch stored twice (its first acknowledgement lost, the retry after
 * the window), then the next: the copy is skipped, the next applied. */
static void
test_copy_skipped(void **state)
{
	cluster_dup d;

	(void)state;
	memset(&d, 0, sizeof d);
	assert_int_equal(cluster_dup_take(&d, "b-18ab3f-0"), CLUSTER_DUP_NEW);
	assert_int_equal(cluster_dup_take(&d, "b-18ab3f-1"), CLUSTER_DUP_NEW);
	assert_int_equal(cluster_dup_take(&d, "b-18ab3f-1"), CLUSTER_DUP_COPY);
	assert_int_equal(cluster_dup_take(&d, "b-18ab3f-2"), CLUSTER_DUP_NEW);
	assert_int_equal(d.n, 1);
	cluster_dup_free(&d);
}

/* A stream created again is delivered out of order once: its end (batches
 * 10..12) by the consumer re-attached to it, then its start (7..9) by the
 * new subscription. Those are no copies: applied, and the last stays 12. */
static void
test_out_of_order_applied(void **state)
{
	cluster_dup d;

	(void)state;
	memset(&d, 0, sizeof d);
	assert_int_equal(cluster_dup_take(&d, "b-18ab3f-10"), CLUSTER_DUP_NEW);
	assert_int_equal(cluster_dup_take(&d, "b-18ab3f-11"), CLUSTER_DUP_NEW);
	assert_int_equal(cluster_dup_take(&d, "b-18ab3f-12"), CLUSTER_DUP_NEW);
	assert_int_equal(cluster_dup_take(&d, "b-18ab3f-7"), CLUSTER_DUP_NEW);
	assert_int_equal(cluster_dup_take(&d, "b-18ab3f-8"), CLUSTER_DUP_NEW);
	assert_int_equal(cluster_dup_take(&d, "b-18ab3f-9"), CLUSTER_DUP_NEW);
	assert_int_equal(cluster_dup_take(&d, "b-18ab3f-13"), CLUSTER_DUP_NEW);
	assert_int_equal(cluster_dup_take(&d, "b-18ab3f-13"), CLUSTER_DUP_COPY);
	cluster_dup_free(&d);
}

/* Each process counts its batches from 0: a restarted replica (another
 * nonce) and another replica are told apart from it; a replica name may
 * hold '-'. */
static void
test_processes_apart(void **state)
{
	cluster_dup d;

	(void)state;
	memset(&d, 0, sizeof d);
	assert_int_equal(cluster_dup_take(&d, "b-18ab3f-5"), CLUSTER_DUP_NEW);
	assert_int_equal(cluster_dup_take(&d, "b-18ab40-0"), CLUSTER_DUP_NEW);
	assert_int_equal(cluster_dup_take(&d, "c-18ab3f-5"), CLUSTER_DUP_NEW);
	assert_int_equal(cluster_dup_take(&d, "eu-west-1-18ab3f-5"), CLUSTER_DUP_NEW);
	assert_int_equal(cluster_dup_take(&d, "eu-west-1-18ab3f-5"), CLUSTER_DUP_COPY);
	assert_int_equal(cluster_dup_take(&d, "b-18ab40-0"), CLUSTER_DUP_COPY);
	assert_int_equal(d.n, 4);
	cluster_dup_free(&d);
}

/* Not a vigild's id: applied every time, nothing remembered. */
static void
test_foreign_ids(void **state)
{
	static const char *ids[] = {
		"", "-", "abc", "abc-", "-12", "b-12", "b--12", "b-x-1a", "b-x-", "b-x-+1",
		"b-x-99999999999999999999", /* over UINT64_MAX */
		"r123456789012345678901234567890-n1234567890123456789012345678901-1", /* key too long */
	};
	cluster_dup d;
	char key[CLUSTER_DUP_KEY];
	uint64_t b;

	(void)state;
	memset(&d, 0, sizeof d);
	assert_int_equal(cluster_dup_take(&d, NULL), CLUSTER_DUP_ANY);
	for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
		assert_false(cluster_dup_parse(ids[i], key, &b));
		assert_int_equal(cluster_dup_take(&d, ids[i]), CLUSTER_DUP_ANY);
		assert_int_equal(cluster_dup_take(&d, ids[i]), CLUSTER_DUP_ANY);
	}
	assert_int_equal(d.n, 0);
	assert_true(cluster_dup_parse("b-x-18446744073709551615", key, &b));
	assert_true(b == UINT64_MAX);
	assert_string_equal(key, "b-x");
}

/* Full: a new process makes room by forgetting the one seen longest ago;
 * one seen again lately stays. */
static void
test_bounded(void **state)
{
	cluster_dup d;
	char id[64];

	(void)state;
	memset(&d, 0, sizeof d);
	for (unsigned i = 0; i < CLUSTER_DUP_MAX; i++) {
		snprintf(id, sizeof id, "r-%x-3", i);
		assert_int_equal(cluster_dup_take(&d, id), CLUSTER_DUP_NEW);
	}
	assert_int_equal(d.n, CLUSTER_DUP_MAX);
	assert_int_equal(cluster_dup_take(&d, "r-0-4"), CLUSTER_DUP_NEW); /* r-0 seen again */
	assert_int_equal(cluster_dup_take(&d, "s-1-0"), CLUSTER_DUP_NEW); /* r-1 forgotten */
	assert_int_equal(d.n, CLUSTER_DUP_MAX);
	assert_int_equal(cluster_dup_take(&d, "r-0-4"), CLUSTER_DUP_COPY);
	assert_int_equal(cluster_dup_take(&d, "r-2-3"), CLUSTER_DUP_COPY);
	assert_int_equal(cluster_dup_take(&d, "r-1-3"), CLUSTER_DUP_NEW); /* forgotten: anew */
	cluster_dup_free(&d);
	assert_int_equal(d.n, 0);
	assert_null(d.by_key);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_copy_skipped),
		cmocka_unit_test(test_out_of_order_applied),
		cmocka_unit_test(test_processes_apart),
		cmocka_unit_test(test_foreign_ids),
		cmocka_unit_test(test_bounded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
