/* SPDX-License-Identifier: MIT */
/*
 * tests/store_archive/test_archive_crash.c - kill -9 crash test of the archive
 * writer. A child process appends from several threads (and compresses
 * closed segments from another) and reports every acknowledged record
 * (seq, thread, index) to the parent through a pipe. The parent SIGKILLs it
 * at a random moment, then reopens the archive and checks: the torn tail (if
 * any) was truncated, every acknowledged record is there with its payload,
 * sequence numbers run 1..last without a gap, and the archive reads clean.
 * Payloads up to 12 KiB span pages, so a kill can interrupt a write(2) and
 * leave a real torn tail. Repeated for ROUNDS rounds over the same archive,
 * cycling fsync policies.
 * Seed: VIGIL_CRASH_SEED (printed, so a failure can be replayed).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "tmpdir.h"
#include "archive.h"

#define ROUNDS        20
#define THREADS       4
#define PER_THREAD    20000 /* bound on one child's work */
#define MAX_RECORDS   (ROUNDS * THREADS * PER_THREAD + 1)

typedef struct ack {
	uint64_t seq;
	uint32_t round;
	uint16_t thread;
	uint16_t pad;
	uint32_t index;
	uint32_t pad2;
} ack;

typedef struct child_thr {
	store_archive *ar;
	int fd, round, id;
} child_thr;

#define PAYLOAD_MAX 12288

/* Sizes from ~40 bytes to 12 KiB: big records span pages, so a kill can
 * land in the middle of the write(2) and leave a torn tail. */
static int
payload(char *buf, size_t cap, uint32_t round, uint16_t thread, uint32_t index)
{
	int n = snprintf(buf, cap, "round %u thread %u record %u ", round, thread, index);
	size_t want = index % 7 == 0 ? (index * 2654435761u) % (PAYLOAD_MAX - 64) : 40;

	for (size_t i = (size_t)n; i < want && i < cap; i++, n++)
		buf[i] = (char)('a' + (i + index) % 26);
	return n;
}

static void *
child_append(void *p)
{
	child_thr *t = p;
	static _Thread_local char buf[PAYLOAD_MAX];

	for (uint32_t i = 0; i < PER_THREAD; i++) {
		ack a = { .round = (uint32_t)t->round, .thread = (uint16_t)t->id, .index = i };
		int len = payload(buf, sizeof buf, a.round, a.thread, i);
		if (store_archive_append(t->ar, i % 5 == 0 ? STORE_REC_LABEL : STORE_REC_SCORE,
		    1700000000000LL + i, buf, (size_t)len, &a.seq) != VIGIL_OK)
			_exit(3);
		/* sizeof(ack) < PIPE_BUF: the write is atomic */
		if (write(t->fd, &a, sizeof a) != (ssize_t)sizeof a)
			_exit(4);
	}
	return NULL;
}

static void *
child_maintain(void *p)
{
	child_thr *t = p;

	for (;;) {
		if (store_archive_maintain(t->ar, NULL) != VIGIL_OK)
			_exit(5);
		usleep(2000);
	}
	return NULL;
}

static void
child_main(const char *dir, int fd, int round)
{
	store_archive_opts o;
	store_archive *ar;
	child_thr th[THREADS + 1];
	pthread_t tid[THREADS + 1];

	store_archive_opts_default(&o);
	o.fsync = (store_fsync)(round % 3);
	o.fsync_interval_ms = 2;
	o.segment_max_bytes = 64 * 1024;
	o.compress_closed = true;
	if (store_archive_open(dir, &o, &ar, NULL, NULL) != VIGIL_OK)
		_exit(2);
	for (int i = 0; i <= THREADS; i++) {
		th[i] = (child_thr){ ar, fd, round, i };
		pthread_create(&tid[i], NULL, i < THREADS ? child_append : child_maintain, &th[i]);
	}
	for (int i = 0; i < THREADS; i++)
		pthread_join(tid[i], NULL);
	for (;;)
		pause(); /* done: wait for the kill */
}

typedef struct expect {
	uint32_t round;
	uint16_t thread;
	uint32_t index;
	bool     acked;
} expect;

static unsigned corrupt_reports;

static void
on_corrupt(void *arg, const char *segment, uint64_t offset, uint64_t skipped, const char *what)
{
	(void)arg;
	fprintf(stderr, "corrupt: %s offset %llu (%llu bytes): %s\n", segment,
	    (unsigned long long)offset, (unsigned long long)skipped, what);
	corrupt_reports++;
}

static void
rm_rf(const char *dir)
{
	vt_tmpdir_remove(dir);
}

static void
test_kill9_loses_no_acknowledged_record(void **state)
{
	static expect exp[MAX_RECORDS];
	char dir[256];
	const char *tmp = getenv("TMPDIR"), *seed_env = getenv("VIGIL_CRASH_SEED");
	unsigned seed = seed_env ? (unsigned)strtoul(seed_env, NULL, 10) : (unsigned)time(NULL);
	uint64_t total_acked = 0, torn_total = 0;

	(void)state;
	fprintf(stderr, "crash test seed %u (VIGIL_CRASH_SEED to replay)\n", seed);
	srand(seed);
	snprintf(dir, sizeof dir, "%s/vigil-crash-XXXXXX", tmp ? tmp : "/tmp");
	assert_non_null(mkdtemp(dir));

	for (int round = 0; round < ROUNDS; round++) {
		int pfd[2];
		pid_t pid;
		ack a;
		ssize_t n;
		int status;
		long kill_after_us = 2000 + rand() % 60000;
		uint64_t t_start;
		struct timespec ts;
		store_archive *ar;
		store_recovery rec;
		store_reader *rd;
		store_record r;
		store_diag d;
		uint64_t want = 1;
		vigil_err rv;

		assert_int_equal(pipe(pfd), 0);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			close(pfd[0]);
			child_main(dir, pfd[1], round);
			_exit(0);
		}
		close(pfd[1]);
		/* read acks for a random while, then kill -9 */
		clock_gettime(CLOCK_MONOTONIC, &ts);
		t_start = (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
		fcntl(pfd[0], F_SETFL, O_NONBLOCK);
		for (;;) {
			uint64_t now;
			n = read(pfd[0], &a, sizeof a);
			if (n == (ssize_t)sizeof a) {
				assert_true(a.seq > 0 && a.seq < MAX_RECORDS);
				exp[a.seq] = (expect){ a.round, a.thread, a.index, true };
				total_acked++;
				continue;
			}
			assert_true(n < 0 && errno == EAGAIN);
			clock_gettime(CLOCK_MONOTONIC, &ts);
			now = (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
			if (now - t_start >= (uint64_t)kill_after_us)
				break;
			usleep(200);
		}
		kill(pid, SIGKILL);
		assert_int_equal(waitpid(pid, &status, 0), pid);
		/* a child that failed on its own (exit code) is a failure */
		assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
		/* acks still in the pipe were sent before the kill */
		fcntl(pfd[0], F_SETFL, 0);
		while ((n = read(pfd[0], &a, sizeof a)) == (ssize_t)sizeof a) {
			assert_true(a.seq > 0 && a.seq < MAX_RECORDS);
			exp[a.seq] = (expect){ a.round, a.thread, a.index, true };
			total_acked++;
		}
		assert_int_equal(n, 0);
		close(pfd[0]);

		/* recovery */
		rv = store_archive_open(dir, NULL, &ar, &rec, &d);
		if (rv != VIGIL_OK)
			fail_msg("round %d: reopen: %s: %s", round, vigil_strerror(rv), d.msg);
		torn_total += rec.torn_records;
		store_archive_close(ar);

		/* everything reads clean, seqs 1..last without a gap, and each
		 * acknowledged record carries the payload its thread wrote */
		corrupt_reports = 0;
		assert_int_equal(store_reader_open(dir, INT64_MIN, INT64_MAX, on_corrupt, NULL, &rd,
		    &d), VIGIL_OK);
		while ((rv = store_reader_next(rd, &r, &d)) == VIGIL_OK) {
			assert_int_equal(r.seq, want);
			if (exp[r.seq].acked) {
				static char buf[PAYLOAD_MAX];
				int len = payload(buf, sizeof buf, exp[r.seq].round, exp[r.seq].thread,
				    exp[r.seq].index);
				assert_int_equal(r.len, (size_t)len);
				assert_memory_equal(r.payload, buf, (size_t)len);
			}
			want++;
		}
		assert_int_equal(rv, VIGIL_ENOTFOUND);
		store_reader_close(rd);
		assert_int_equal(corrupt_reports, 0);
		assert_int_equal(want - 1, rec.last_seq);
		for (uint64_t s = want; s < MAX_RECORDS && s < want + THREADS * PER_THREAD; s++)
			if (exp[s].acked)
				fail_msg("round %d: acknowledged seq %llu missing (last on disk %llu)",
				    round, (unsigned long long)s, (unsigned long long)(want - 1));
		/* seqs above last were never acknowledged: forget any stale state */
		for (uint64_t s = want; s < MAX_RECORDS && s < want + THREADS * PER_THREAD; s++)
			exp[s].acked = false;
		fprintf(stderr, "round %2d: fsync=%d killed after %5ld us, last seq %llu, torn %llu\n",
		    round, round % 3, kill_after_us, (unsigned long long)rec.last_seq,
		    (unsigned long long)rec.torn_records);
	}
	fprintf(stderr, "%llu acknowledged records checked, %llu torn tails truncated\n",
	    (unsigned long long)total_acked, (unsigned long long)torn_total);
	assert_true(total_acked > 0);
	rm_rf(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kill9_loses_no_acknowledged_record),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
