/* SPDX-License-Identifier: MIT */
/*
 * tests/batch/test_batch_live.c - integration: a running vigild, with a
 * thread scoring transactions without pause, switches to the generation
 * vigil-rebuild writes, with no restart and no failed request; then a
 * rollback switches it back, the same way.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "harness.h"
#include "vigil.h"

typedef struct traffic {
	const char      *url;
	atomic_bool      stop;
	atomic_uint_fast64_t sent, failed, last_gen;
	char             first_error[256];
} traffic;

static void *
traffic_main(void *arg)
{
	traffic *t = arg;
	char tid[64], card[32];
	uint64_t i = 0;

	while (!atomic_load(&t->stop)) {
		Vigil__V1__Reply *r;

		snprintf(tid, sizeof tid, "live-%llu", (unsigned long long)i);
		snprintf(card, sizeof card, "card-%llu", (unsigned long long)(i % 50));
		r = vt_score(t->url, vt_txn(1, tid, card, 1000 + (int64_t)(i % 700) * 10,
		    vigil_now_ms() - 60000), false);
		atomic_fetch_add(&t->sent, 1);
		if (r == NULL || r->status != VIGIL__V1__STATUS__STATUS_OK || r->score == NULL) {
			if (atomic_fetch_add(&t->failed, 1) == 0)
				snprintf(t->first_error, sizeof t->first_error, "request %llu: %s",
				    (unsigned long long)i, r == NULL ? "no reply" : r->message);
		} else {
			atomic_store(&t->last_gen, r->score->features_generation);
		}
		if (r != NULL)
			vigil__v1__reply__free_unpacked(r, NULL);
		i++;
	}
	return NULL;
}

/* Waits up to ~45 s for the traffic to report generation gen (longer than
 * one request may wait for its reply, the harness's 30 s); if it does
 * not, says what the traffic did meanwhile (requests sent, failed, the
 * first failure), so a stalled client tells itself from a vigild that did
 * not switch. */
static bool
wait_generation(traffic *t, uint64_t gen)
{
	uint64_t sent0 = atomic_load(&t->sent);

	for (int i = 0; i < 4500; i++) {
		struct timespec ts = { 0, 10000000 };

		if (atomic_load(&t->last_gen) == gen)
			return true;
		nanosleep(&ts, NULL);
	}
	fprintf(stderr, "traffic while waiting for generation %llu: %llu request(s) sent "
	    "(%llu before), %llu failed%s%s\n", (unsigned long long)gen,
	    (unsigned long long)(atomic_load(&t->sent) - sent0), (unsigned long long)sent0,
	    (unsigned long long)atomic_load(&t->failed), atomic_load(&t->failed) ? "; first: " : "",
	    t->first_error);
	return false;
}

static void
run_rebuild(const char *const *argv, const char *what)
{
	char *out = NULL;
	int rc = vt_run(argv, &out);

	if (rc != 0)
		fail_msg("%s exited %d: %s", what, rc, out ? out : "");
	free(out);
}

static void
test_switch_under_traffic(void **state)
{
	vt_server s;
	traffic t;
	pthread_t th;
	char asof[16];
	uint64_t sent_before;
	const char *rules = vt_src_path("rules/default.rules");
	char rules_copy[512];

	(void)state;
	memset(&s, 0, sizeof s);
	memset(&t, 0, sizeof t);
	snprintf(rules_copy, sizeof rules_copy, "%s", rules);
	if (vt_server_start(&s, NULL, NULL) != 0)
		fail_msg("vigild did not start");
	t.url = s.url;
	assert_int_equal(pthread_create(&th, NULL, traffic_main, &t), 0);
	/* Some archived traffic first, on generation 0 (no batch features). */
	while (atomic_load(&t.sent) < 200)
		sched_yield();
	assert_int_equal(atomic_load(&t.last_gen), 0);

	/* As of tomorrow 00:00 UTC: today's traffic is inside the window. */
	vigil_date_format(vigil_now_ms() + VIGIL_MS_PER_DAY, asof, sizeof asof);
	{
		const char *argv[] = { "batch/vigil-rebuild", "--data", s.datadir, "--as-of", asof,
		    "--rules", rules_copy, "--quiet", NULL };
		run_rebuild(argv, "vigil-rebuild");
	}
	if (!wait_generation(&t, 1))
		fail_msg("vigild did not switch to generation 1 (last seen %llu)",
		    (unsigned long long)atomic_load(&t.last_gen));
	sent_before = atomic_load(&t.sent);

	/* A forced rebuild makes generation 2; rolling back returns to 1. */
	{
		const char *argv[] = { "batch/vigil-rebuild", "--data", s.datadir, "--as-of", asof,
		    "--rules", rules_copy, "--force", "--quiet", NULL };
		run_rebuild(argv, "vigil-rebuild --force");
	}
	if (!wait_generation(&t, 2))
		fail_msg("vigild did not switch to generation 2");
	{
		const char *argv[] = { "batch/vigil-rebuild", "--data", s.datadir, "--rollback",
		    "--quiet", NULL };
		run_rebuild(argv, "vigil-rebuild --rollback");
	}
	if (!wait_generation(&t, 1))
		fail_msg("vigild did not switch back to generation 1 after the rollback");

	atomic_store(&t.stop, true);
	pthread_join(th, NULL);
	assert_true(atomic_load(&t.sent) > sent_before);
	if (atomic_load(&t.failed) != 0)
		fail_msg("%llu of %llu requests failed; first: %s",
		    (unsigned long long)atomic_load(&t.failed),
		    (unsigned long long)atomic_load(&t.sent), t.first_error);
	assert_true(vt_server_alive(&s));
	assert_int_equal(vt_server_stop(&s), 0);
	vt_server_cleanup(&s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_switch_under_traffic),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
