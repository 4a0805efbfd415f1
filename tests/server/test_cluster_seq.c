/* SPDX-License-Identifier: MIT */
/*
 * tests/server/test_cluster_seq.c - which stream messages the cluster's
 * subscription applies (server/cluster_seq.h): each once, redeliveries
 * skipped, and when the stream is created again, what the old
 * subscription's re-attached consumer applied from the new stream is not
 * applied a second time by the subscription that replaces it, while the
 * rest of the new stream is; and which messages on this replica's own
 * subject are another live process's; and when a subscription stalled.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "cluster_seq.h"

#define S 1000000000LL /* ns */

/* Delivers stream sequences [from, to] as consumer sequences from cfirst,
 * at times t0 + sequence seconds; returns how many were applied. */
static int
deliver(cluster_seq *q, uint64_t from, uint64_t to, uint64_t cfirst, int64_t t0)
{
	int applied = 0;

	for (uint64_t s = from; s <= to; s++)
		applied += cluster_seq_take(q, s, cfirst + (s - from), t0 + (int64_t)s * S) ==
		    CLUSTER_SEQ_APPLY;
	return applied;
}

/* Each message once: a consumer reset redelivers what was handled. */
static void
test_each_message_once(void **state)
{
	cluster_seq q;

	(void)state;
	memset(&q, 0, sizeof q);
	assert_int_equal(deliver(&q, 1, 10, 1, 0), 10);
	assert_int_equal(deliver(&q, 6, 14, 1, 0), 4); /* a reset from 6: 11..14 new */
	assert_int_equal(cluster_seq_take(&q, 14, 10, 14 * S), CLUSTER_SEQ_SEEN);
	assert_int_equal(q.last, 14);
}

/* The stream lost at second 100 and created again at 200; the old
 * subscription's ordered consumer re-attaches to it from 11 (after its
 * last, 10) and applies 11..15 before the check replaces it: the
 * replacement applies 1..10 and 16.. of the new stream, not 11..15. */
static void
test_new_stream_after_a_reattached_consumer(void **state)
{
	const int64_t created = 200 * S;
	cluster_seq q;

	(void)state;
	memset(&q, 0, sizeof q);
	assert_int_equal(deliver(&q, 1, 10, 1, 0), 10);            /* old stream */
	assert_int_equal(deliver(&q, 11, 15, 1, created), 5);      /* re-attached */
	cluster_seq_new_stream(&q, created);
	assert_int_equal(q.last, 0);
	assert_int_equal(deliver(&q, 1, 10, 1, created), 10);      /* the replacement */
	assert_int_equal(deliver(&q, 11, 15, 11, created), 0);     /* applied before */
	assert_int_equal(deliver(&q, 16, 20, 16, created), 5);
	/* a reset of the replacement later redelivers; nothing twice */
	assert_int_equal(deliver(&q, 12, 22, 1, created), 2);
}

/* Without a re-attached consumer (the check came first, or the consumer
 * reconnected only to the old stream before it was lost) the whole new
 * stream is applied. */
static void
test_new_stream_without_reattachment(void **state)
{
	const int64_t created = 200 * S;
	cluster_seq q;

	(void)state;
	memset(&q, 0, sizeof q);
	assert_int_equal(deliver(&q, 1, 4, 1, 0), 4);
	assert_int_equal(deliver(&q, 5, 10, 1, 0), 6);  /* a reconnect, old stream */
	cluster_seq_new_stream(&q, created);
	assert_int_equal(deliver(&q, 1, 12, 1, created), 12);
	/* and again: the stream lost twice, the second time with a consumer
	 * re-attached to the third stream that applied its 13: the
	 * replacement applies 1..12 of it */
	assert_int_equal(deliver(&q, 13, 13, 1, 2 * created), 1);
	cluster_seq_new_stream(&q, 2 * created);
	assert_int_equal(deliver(&q, 1, 13, 1, 2 * created), 12);
}

/* A re-attached consumer that itself reset (a reconnect) on the new
 * stream: the earliest start on the new stream bounds what was applied. */
static void
test_reattached_consumer_that_reset(void **state)
{
	const int64_t created = 200 * S;
	cluster_seq q;

	(void)state;
	memset(&q, 0, sizeof q);
	assert_int_equal(deliver(&q, 1, 10, 1, 0), 10);
	for (int i = 1; i < CLUSTER_SEQ_STARTS - 1; i++) /* the old stream's resets */
		assert_int_equal(deliver(&q, 10, 10, 1, 0), 0);
	assert_int_equal(deliver(&q, 11, 13, 1, created), 3);
	assert_int_equal(deliver(&q, 14, 16, 1, created), 3);
	cluster_seq_new_stream(&q, created);
	/* 1..10 and 17..20 of the new stream, not 11..16 */
	assert_int_equal(deliver(&q, 1, 20, 1, created), 14);
}

/* Our own subject: what the stream held when this process subscribed is
 * earlier starts' history; past it, or anywhere in a stream created again
 * since, a message not of this process is another live process's. */
static void
test_own_subject_history(void **state)
{
	cluster_seq q;

	(void)state;
	memset(&q, 0, sizeof q);
	q.history = 10;
	assert_int_equal(deliver(&q, 1, 12, 1, 0), 12);
	assert_false(cluster_seq_conflict(&q, 10));
	assert_true(cluster_seq_conflict(&q, 11));
	cluster_seq_new_stream(&q, 200 * S);
	assert_true(cluster_seq_conflict(&q, 1));
}

/* A stalled subscription: a message waiting 10 s with nothing delivered
 * meanwhile; not a backlog being delivered, nor a message just stored. */
static void
test_stalled(void **state)
{
	cluster_stall st;

	(void)state;
	memset(&st, 0, sizeof st);
	/* all handled, or the stream empty: nothing waits */
	assert_int_equal(cluster_seq_stalled(&st, 1000, 10000, 5, 5, 5, 0), 0);
	assert_int_equal(cluster_seq_stalled(&st, 1000, 10000, 0, 9, 5, 0), 0);
	assert_int_equal(st.behind_seq, 0);
	/* 9 stored, 5 handled: marked at 2000 ... */
	assert_int_equal(cluster_seq_stalled(&st, 2000, 10000, 9, 9, 5, 0), 0);
	assert_int_equal(st.behind_seq, 9);
	/* ... not stalled before 12000, nor while messages come */
	assert_int_equal(cluster_seq_stalled(&st, 11999, 10000, 9, 9, 5, 0), 0);
	assert_int_equal(cluster_seq_stalled(&st, 12000, 10000, 9, 12, 7, 11000), 0);
	/* stalled: 9 waits since 2000, nothing delivered since 1000 */
	assert_int_equal(cluster_seq_stalled(&st, 12000, 10000, 9, 12, 7, 1000), 8);
	assert_int_equal(st.behind_seq, 0); /* marked anew at the next look */
	/* that brought 8..9; 20 stored since: marked at 13000, stalled at 23000 */
	assert_int_equal(cluster_seq_stalled(&st, 13000, 10000, 20, 20, 9, 12500), 0);
	assert_int_equal(st.behind_seq, 20);
	assert_int_equal(cluster_seq_stalled(&st, 23000, 10000, 20, 20, 19, 12500), 20);
	/* caught up: the mark goes */
	assert_int_equal(cluster_seq_stalled(&st, 24000, 10000, 20, 20, 20, 23500), 0);
	assert_int_equal(st.behind_seq, 0);
}

/* A message that never comes (the stream's last, deleted): each
 * resubscription from the same place waits twice as long, up to 64 x. */
static void
test_stalled_backs_off(void **state)
{
	cluster_stall st;
	int64_t now = 0, waits[9];
	int n = 0;

	(void)state;
	memset(&st, 0, sizeof st);
	while (n < 9) {
		int64_t marked;

		assert_int_equal(cluster_seq_stalled(&st, now, 10000, 7, 30, 29, 0), 0); /* mark */
		marked = now;
		while (cluster_seq_stalled(&st, now, 10000, 7, 30, 29, 0) == 0)
			now += 1000;
		waits[n++] = now - marked;
	}
	/* the second resubscription finds the first brought nothing */
	for (int i = 0; i < 9; i++)
		assert_true(waits[i] == 10000LL << (i < 1 ? 0 : i - 1 < 6 ? i - 1 : 6));
	/* progress: the wait is 10 s again */
	assert_int_equal(cluster_seq_stalled(&st, now, 10000, 7, 30, 30, now), 0);
	assert_true(st.wait_ms == 10000);
}

/* A subscription made again after a failed one resumes where the stream
 * it read was handled to; a first one, or one to a stream created again,
 * or one before anything was handled, reads from the start. */
static void
test_resume_from(void **state)
{
	(void)state;
	assert_int_equal(cluster_seq_resume_from(5000, 5000, 41), 42);
	assert_int_equal(cluster_seq_resume_from(0, 5000, 41), 0);    /* the first */
	assert_int_equal(cluster_seq_resume_from(5000, 7000, 41), 0); /* created again */
	assert_int_equal(cluster_seq_resume_from(5000, 5000, 0), 0);  /* nothing handled */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_each_message_once),
		cmocka_unit_test(test_new_stream_after_a_reattached_consumer),
		cmocka_unit_test(test_new_stream_without_reattachment),
		cmocka_unit_test(test_reattached_consumer_that_reset),
		cmocka_unit_test(test_own_subject_history),
		cmocka_unit_test(test_stalled),
		cmocka_unit_test(test_stalled_backs_off),
		cmocka_unit_test(test_resume_from),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
