/* SPDX-License-Identifier: MIT */
/*
 * tests/store_archive/test_group.c - group write (store/archive.c): records
 * enqueued are not in the file until a flush; one flush writes every
 * queued record (other threads' too) in one batch, rotating by size inside
 * the batch exactly as single appends would; a flush of a sequence number
 * never enqueued is refused; threads that enqueue under their own lock and
 * flush outside it get every record written once, in sequence order.
 */
#include <dirent.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "tmpdir.h"
#include "archive_int.h"
#include "db.h"

#define T0 (20000 * VIGIL_MS_PER_DAY)

typedef struct fx {
	char       dir[256];
	atomic_int clock_calls; /* the writer reads the clock once per batch */
} fx;

static int64_t
fx_clock(void *arg)
{
	atomic_fetch_add(&((fx *)arg)->clock_calls, 1);
	return T0 + 3600000;
}

static int
setup(void **state)
{
	fx *f = calloc(1, sizeof *f);

	if (f == NULL || vt_tmpdir_make("vigil-group", f->dir, sizeof f->dir) != 0)
		return -1;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	fx *f = *state;

	vt_tmpdir_remove(f->dir);
	free(f);
	return 0;
}

static store_archive *
open_ar(fx *f, uint64_t segment_max)
{
	store_archive_opts o;
	store_archive     *ar = NULL;
	store_diag         d = { .msg = "" };

	store_archive_opts_default(&o);
	o.fsync = STORE_FSYNC_NEVER;
	o.segment_max_bytes = segment_max;
	if (store_archive_open(f->dir, &o, &ar, NULL, &d) != VIGIL_OK)
		fail_msg("open: %s", d.msg);
	store_archive_set_clock(ar, fx_clock, f);
	return ar;
}

static size_t
payload_for(uint64_t i, uint8_t *buf)
{
	size_t len = 20 + (size_t)(i * 7 % 300);

	for (size_t k = 0; k < len; k++)
		buf[k] = (uint8_t)(i * 31 + k);
	return len;
}

/* Reads everything back: count; checks seqs are 1, 2, ... and payloads. */
static uint64_t
read_back(const char *dir)
{
	store_reader      *rd = NULL;
	store_record       r;
	store_reader_stats st;
	uint8_t            buf[512];
	uint64_t           n = 0;
	vigil_err          rv;

	assert_int_equal(store_reader_open(dir, INT64_MIN, INT64_MAX, NULL, NULL, &rd, NULL),
	    VIGIL_OK);
	while ((rv = store_reader_next(rd, &r, NULL)) == VIGIL_OK) {
		size_t len = payload_for(r.seq, buf);

		assert_int_equal(r.seq, n + 1);
		assert_int_equal(r.len, len);
		assert_memory_equal(r.payload, buf, len);
		assert_int_equal(r.event_time_ms, T0 + (int64_t)r.seq);
		n++;
	}
	assert_int_equal(rv, VIGIL_ENOTFOUND);
	store_reader_get_stats(rd, &st);
	assert_int_equal(st.corrupt_records, 0);
	store_reader_close(rd);
	return n;
}

static void
test_one_flush_writes_the_queue(void **state)
{
	fx                 *f = *state;
	store_archive      *ar = open_ar(f, 8192);
	store_archive_stats st;
	store_recovery      rec;
	store_seg_ent      *ents = NULL;
	store_diag          d;
	uint8_t             buf[512];
	uint64_t            seq = 0;
	size_t              n = 0;
	int                 calls;

	for (uint64_t i = 1; i <= 300; i++) {
		size_t len = payload_for(i, buf);

		assert_int_equal(store_archive_enqueue(ar, STORE_REC_SCORE, T0 + (int64_t)i, buf,
		    len, &seq), VIGIL_OK);
		assert_int_equal(seq, i);
	}
	/* Queued, not written: nothing to read, nothing counted. */
	assert_int_equal(read_back(f->dir), 0);
	store_archive_get_stats(ar, &st);
	assert_int_equal(st.records, 0);
	assert_int_equal(st.last_seq, 300);
	atomic_store(&f->clock_calls, 0);
	assert_int_equal(store_archive_flush(ar, 150), VIGIL_OK);
	calls = atomic_load(&f->clock_calls);
	store_archive_get_stats(ar, &st);
	assert_int_equal(st.records, 300); /* the whole queue, not only up to 150 */
	/* One batch: one clock read, plus one per segment closed inside it. */
	assert_true(st.segments > 5);
	assert_int_equal(calls, 1 + (int)(st.segments - 1));
	assert_int_equal(store_archive_flush(ar, 300), VIGIL_OK);  /* already written */
	assert_int_equal(store_archive_flush(ar, 301), VIGIL_EINVAL); /* never enqueued */
	assert_int_equal(store_archive_drain(ar), VIGIL_OK); /* the open segment's, from the journal */
	assert_int_equal(read_back(f->dir), 300);
	/* Rotation inside the batch: segments within the size, indexes exact. */
	assert_int_equal(store_seg_list(f->dir, &ents, &n, NULL), VIGIL_OK);
	assert_int_equal(n, st.segments);
	for (size_t i = 0; i + 1 < n; i++) {
		store_seg_index idx;
		char            p[512];
		struct stat     sb;

		snprintf(p, sizeof p, "%s/%s.log", f->dir, ents[i].base);
		assert_int_equal(stat(p, &sb), 0);
		assert_true(sb.st_size <= 8192);
		assert_int_equal(store_seg_index_read(f->dir, ents[i].base, &idx), VIGIL_OK);
		assert_int_equal(idx.first_seq, ents[i].first_seq);
		assert_int_equal(idx.last_seq + 1, ents[i + 1].first_seq);
		assert_int_equal(idx.bytes, (uint64_t)sb.st_size);
		assert_int_equal(idx.min_event_ms, T0 + (int64_t)idx.first_seq);
		assert_int_equal(idx.max_event_ms, T0 + (int64_t)idx.last_seq);
	}
	free(ents);
	store_archive_close(ar);
	/* Sequence numbers continue after a reopen. */
	memset(&rec, 0, sizeof rec);
	assert_int_equal(store_archive_open(f->dir, NULL, &ar, &rec, &d), VIGIL_OK);
	assert_int_equal(rec.last_seq, 300);
	assert_int_equal(rec.torn_records, 0);
	store_archive_close(ar);
}

/* close writes what was enqueued and never flushed. */
static void
test_close_writes_queue(void **state)
{
	fx            *f = *state;
	store_archive *ar = open_ar(f, 1 << 20);
	uint8_t        buf[512];

	for (uint64_t i = 1; i <= 5; i++)
		assert_int_equal(store_archive_enqueue(ar, STORE_REC_SCORE, T0 + (int64_t)i, buf,
		    payload_for(i, buf), NULL), VIGIL_OK);
	store_archive_close(ar);
	assert_int_equal(read_back(f->dir), 5);
}

typedef struct thr {
	store_archive   *ar;
	pthread_mutex_t *order; /* the caller's own lock, as store_db's */
	uint64_t         next;  /* shared: the next record number */
	atomic_ulong    *counter;
	int              n;
	int              failed;
} thr;

static void *
thr_main(void *p)
{
	thr    *a = p;
	uint8_t buf[512];

	for (int i = 0; i < a->n; i++) {
		uint64_t seq = 0, want;
		size_t   len;

		pthread_mutex_lock(a->order);
		want = atomic_fetch_add(a->counter, 1) + 1;
		len = payload_for(want, buf);
		if (store_archive_enqueue(a->ar, STORE_REC_SCORE, T0 + (int64_t)want, buf, len,
		    &seq) != VIGIL_OK || seq != want)
			a->failed++;
		pthread_mutex_unlock(a->order);
		if (store_archive_flush(a->ar, seq) != VIGIL_OK)
			a->failed++;
	}
	return NULL;
}

static void
test_threads_enqueue_then_flush(void **state)
{
	fx                 *f = *state;
	store_archive      *ar = open_ar(f, 65536);
	pthread_mutex_t     order = PTHREAD_MUTEX_INITIALIZER;
	atomic_ulong        counter = 0;
	thr                 a[4];
	pthread_t           th[4];
	store_archive_stats st;

	for (int t = 0; t < 4; t++) {
		a[t] = (thr){ .ar = ar, .order = &order, .counter = &counter, .n = 3000 };
		assert_int_equal(pthread_create(&th[t], NULL, thr_main, &a[t]), 0);
	}
	for (int t = 0; t < 4; t++) {
		assert_int_equal(pthread_join(th[t], NULL), 0);
		assert_int_equal(a[t].failed, 0);
	}
	store_archive_get_stats(ar, &st);
	assert_int_equal(st.records, 12000);
	store_archive_close(ar);
	assert_int_equal(read_back(f->dir), 12000);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_one_flush_writes_the_queue, setup, teardown),
		cmocka_unit_test_setup_teardown(test_close_writes_queue, setup, teardown),
		cmocka_unit_test_setup_teardown(test_threads_enqueue_then_flush, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
