/* SPDX-License-Identifier: MIT */
/*
 * tests/store_live/test_live_crash.c - kill -9 of a process scoring under load,
 * many times (bounded rounds). A child opens the data directory (recovering
 * the live state from the archive), scores generated transactions from two
 * threads and reports each acknowledged txn_id on a pipe; the parent kills
 * it with SIGKILL after a random delay. After every kill the parent reopens
 * the directory and checks that
 *   - every acknowledged transaction is known (a retry returns EEXIST), and
 *   - the live state equals a fresh in-memory replay of the archive
 *     (full feature vectors of probe transactions compared slot by slot).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>

#include "helpers.h"

#define ROUNDS   16
#define NCARDS   10
#define PER_CHILD 200000 /* bound; the kill comes long before */

typedef struct child_arg {
	store_db *db;
	int       fd;
	int       round, thread;
	int64_t   base;
} child_arg;

static void *
child_thread(void *p)
{
	child_arg    *a = p;
	store_ctx    *ctx = store_ctx_new(a->db);
	vigil_value   f[256];
	store_outcome prior;
	store_scored *s = malloc(sizeof *s);
	unsigned      seed = (unsigned)(a->round * 1000 + a->thread);
	store_diag    d;

	if (ctx == NULL || s == NULL)
		_exit(3);
	for (int i = 0; i < PER_CHILD; i++) {
		char      id[48];
		vigil_txn x;
		uint32_t  tag;
		vigil_err rv;

		snprintf(id, sizeof id, "r%d-t%d-%d", a->round, a->thread, i);
		x = gen_txn(&seed, id, a->base, i, NCARDS);
		rv = store_score_begin(a->db, ctx, &x, f, store_schema_nfields(), &prior);
		if (rv != VIGIL_OK)
			_exit(4);
		scored_make(s, &x, i % 100);
		if (store_score_commit(a->db, ctx, s, &d) != VIGIL_OK)
			_exit(5);
		/* Acknowledged: tell the parent (round, thread, i). */
		tag = (uint32_t)a->round << 24 | (uint32_t)a->thread << 20 | (uint32_t)i;
		if (write(a->fd, &tag, sizeof tag) != sizeof tag)
			_exit(6);
	}
	_exit(0);
}

static void
child_main(const char *dir, int fd, int round, int64_t base)
{
	store_db     *db = NULL;
	store_db_opts o;
	store_diag    d;
	pthread_t     th[2];
	child_arg     a[2];

	store_db_opts_default(&o);
	o.archive.fsync = STORE_FSYNC_INTERVAL;
	o.archive.fsync_interval_ms = 5;
	o.archive.segment_max_bytes = 256 << 10; /* rotate often */
	if (store_db_open(dir, &o, &db, NULL, &d) != VIGIL_OK) {
		fprintf(stderr, "child: store_db_open: %s\n", d.msg);
		_exit(2);
	}
	for (int t = 0; t < 2; t++) {
		a[t] = (child_arg){ .db = db, .fd = fd, .round = round, .thread = t, .base = base };
		if (pthread_create(&th[t], NULL, child_thread, &a[t]) != 0)
			_exit(7);
	}
	pthread_join(th[0], NULL);
	_exit(0);
}

static void
test_kill9_recovery(void **state)
{
	char    *dir = tmpdir_new();
	int64_t  base = vigil_now_ms() - 2 * HOUR_MS;
	unsigned seed = 12345;
	uint64_t total_acked = 0, checked = 0;

	(void)state;
	for (int round = 0; round < ROUNDS; round++) {
		int        p[2];
		pid_t      pid;
		int        status;
		uint32_t  *acked = NULL;
		size_t     nacked = 0, cap = 0;
		uint32_t   tag;
		ssize_t    n;
		store_db  *db = NULL, *mem = NULL;
		store_ctx *ctx;
		store_db_opts o;
		store_diag d;
		int64_t    wmax;
		vigil_err  rv;

		assert_int_equal(pipe(p), 0);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			close(p[0]);
			child_main(dir, p[1], round, base + round * 400000LL);
		}
		close(p[1]);
		/* Let it recover and score for 30-230 ms, then kill it. */
		usleep(30000 + (useconds_t)(rand_r(&seed) % 200000));
		assert_int_equal(kill(pid, SIGKILL), 0);
		assert_int_equal(waitpid(pid, &status, 0), pid);
		if (!WIFSIGNALED(status))
			fail_msg("round %d: child exited with status %d before the kill", round,
			    WEXITSTATUS(status));
		while ((n = read(p[0], &tag, sizeof tag)) == sizeof tag) {
			if (nacked == cap) {
				cap = cap ? cap * 2 : 1024;
				acked = realloc(acked, cap * sizeof *acked);
				assert_non_null(acked);
			}
			acked[nacked++] = tag;
		}
		close(p[0]);
		total_acked += nacked;

		store_db_opts_default(&o);
		o.archive.fsync = STORE_FSYNC_NEVER;
		rv = store_db_open(dir, &o, &db, NULL, &d);
		if (rv != VIGIL_OK)
			fail_msg("round %d: reopen: %s: %s", round, vigil_strerror(rv), d.msg);
		replay_into_memory(dir, &mem, &wmax);
		/* No acknowledged transaction is missing (within the dedupe
		 * horizon: 8 days of event time behind the newest). */
		ctx = store_ctx_new(db);
		assert_non_null(ctx);
		for (int t = 0; t < 2; t++) {
			unsigned s2 = (unsigned)(round * 1000 + t);
			int      j = 0;
			char     id[48];
			vigil_txn x;

			/* Acks of one thread arrive in its order: regenerate along. */
			for (size_t i = 0; i < nacked; i++) {
				int           k = (int)(acked[i] & 0xfffff);
				vigil_value   f[256];
				store_outcome prior;

				if ((int)(acked[i] >> 20 & 0xf) != t)
					continue;
				assert_true(k >= j);
				for (; j <= k; j++) {
					snprintf(id, sizeof id, "r%d-t%d-%d", round, t, j);
					x = gen_txn(&s2, id, base + round * 400000LL, j, NCARDS);
				}
				if (x.event_time_ms <= wmax - 8 * DAY_MS)
					continue;
				rv = store_score_begin(db, ctx, &x, f, store_schema_nfields(), &prior);
				if (rv != VIGIL_EEXIST)
					fail_msg("round %d: acknowledged %s not found after kill -9 (%s)",
					    round, x.txn_id, vigil_strerror(rv));
				assert_int_equal(prior.score, k % 100);
				checked++;
			}
		}
		store_ctx_free(ctx);
		/* Live state equals the recomputation from the archive. */
		if (wmax != INT64_MIN)
			assert_same_probes(db, mem, NCARDS, wmax);
		store_db_close(mem);
		store_db_close(db);
		free(acked);
	}
	/* The test must have exercised something. */
	assert_true(total_acked > 100);
	assert_true(checked > total_acked / 2);
	fprintf(stderr, "%d rounds: %llu acknowledged, %llu checked after kill -9\n", ROUNDS,
	    (unsigned long long)total_acked, (unsigned long long)checked);
	tmpdir_free(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kill9_recovery),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
