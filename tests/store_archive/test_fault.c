/* SPDX-License-Identifier: MIT */
/*
 * tests/store_archive/test_fault.c - faults that heal (docs/archive.md,
 * "Errors"): a full file system (RLIMIT_FSIZE, and a real 6 MiB tmpfs when
 * a mount namespace can be had) under concurrent appenders, descriptor
 * exhaustion at a rotation and at a segment's creation (RLIMIT_NOFILE), and
 * a failing fdatasync (the LD_PRELOAD shim fault_shim.c, which meson
 * preloads for this test). Each time: appends are refused while failing,
 * succeed again once the cause is gone without reopening, every
 * acknowledged record is read back, no unacknowledged one is (except a
 * record whose sync failed: written, and said to have failed), and no
 * reader reports corruption.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "tmpdir.h"
#include "archive_int.h"
#include "archive_w_int.h" /* the fault backoff, skipped */
#include "archive.h"

#define T0 1700000000000LL

typedef struct fx {
	char dir[256];   /* the archive */
	char fault[256]; /* VIGIL_FAULT_DIR of the shim */
} fx;

static void
rm_rf(const char *dir)
{
	vt_tmpdir_remove(dir);
}

static int
setup(void **state)
{
	fx *f = calloc(1, sizeof *f);
	const char *tmp = getenv("TMPDIR");
	char base[200];

	snprintf(base, sizeof base, "%s/vigil-fault-XXXXXX", tmp ? tmp : "/tmp");
	if (f == NULL || mkdtemp(base) == NULL)
		return -1;
	snprintf(f->dir, sizeof f->dir, "%s/archive", base);
	snprintf(f->fault, sizeof f->fault, "%s/fault", base);
	if (mkdir(f->fault, 0700) != 0)
		return -1;
	setenv("VIGIL_FAULT_DIR", f->fault, 1);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	fx *f = *state;
	char base[256];

	unsetenv("VIGIL_FAULT_DIR");
	snprintf(base, sizeof base, "%s", f->dir);
	*strrchr(base, '/') = '\0';
	rm_rf(base);
	free(f);
	return 0;
}

static void
flag(fx *f, const char *name, bool on)
{
	char p[512];

	snprintf(p, sizeof p, "%s/%s", f->fault, name);
	if (on) {
		int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		assert_true(fd >= 0);
		close(fd);
	} else {
		unlink(p);
	}
}

/* Whether the shim is preloaded (it is, from meson; not when run by hand). */
static bool
shim_loaded(void)
{
	const char *p = getenv("LD_PRELOAD");

	return p != NULL && strstr(p, "fault-shim") != NULL;
}

static store_archive *
open_ar(const char *dir, const store_archive_opts *o, store_recovery *rec)
{
	store_archive *ar = NULL;
	store_diag d = { .msg = "" };
	vigil_err rv = store_archive_open(dir, o, &ar, rec, &d);

	if (rv != VIGIL_OK)
		fail_msg("open %s: %s: %s", dir, vigil_strerror(rv), d.msg);
	return ar;
}

static store_archive_opts
opts(store_fsync policy)
{
	store_archive_opts o;

	store_archive_opts_default(&o);
	o.fsync = policy;
	o.fsync_interval_ms = 5;
	return o;
}

/* The payload of the index-th record of a thread: recognisable, of a
 * length that varies. */
static size_t
payload(uint32_t thread, uint32_t index, uint8_t *buf)
{
	size_t len = 24 + (size_t)((index * 13u + thread) % 400);

	memset(buf, 0, len);
	memcpy(buf, &thread, 4);
	memcpy(buf + 4, &index, 4);
	for (size_t k = 8; k < len; k++)
		buf[k] = (uint8_t)(index * 31 + thread * 7 + k);
	return len;
}

typedef struct seen {
	unsigned corrupt;
	char     first[200];
} seen;

static void
on_corrupt(void *arg, const char *segment, uint64_t offset, uint64_t skipped, const char *what)
{
	seen *s = arg;

	if (s->corrupt++ == 0)
		snprintf(s->first, sizeof s->first, "%s:%llu (+%llu): %s", segment,
		    (unsigned long long)offset, (unsigned long long)skipped, what);
}

/* Reads the whole archive: every record's payload must be one of ours
 * (thread, index); fills got[seq] = 1 for each; returns the count. */
static uint64_t
read_back(const char *dir, uint8_t *got, uint64_t maxseq, seen *s)
{
	store_reader *rd = NULL;
	store_record rec;
	store_diag d;
	uint64_t n = 0;
	uint8_t buf[512];
	vigil_err rv;

	assert_int_equal(store_reader_open(dir, INT64_MIN, INT64_MAX, on_corrupt, s, &rd, &d),
	    VIGIL_OK);
	while ((rv = store_reader_next(rd, &rec, &d)) == VIGIL_OK) {
		uint32_t thread, index;

		assert_true(rec.len >= 8);
		memcpy(&thread, rec.payload, 4);
		memcpy(&index, (const uint8_t *)rec.payload + 4, 4);
		assert_int_equal(rec.len, payload(thread, index, buf));
		assert_memory_equal(rec.payload, buf, rec.len);
		assert_true(rec.seq <= maxseq);
		if (got != NULL) {
			assert_int_equal(got[rec.seq], 0);
			got[rec.seq] = 1;
		}
		n++;
	}
	assert_int_equal(rv, VIGIL_ENOTFOUND);
	store_reader_close(rd);
	return n;
}

static vigil_err
append_one(store_archive *ar, uint32_t thread, uint32_t index, uint64_t *ret_seq)
{
	uint8_t buf[512];
	size_t len = payload(thread, index, buf);

	return store_archive_append(ar, STORE_REC_SCORE, T0 + index, buf, len, ret_seq);
}

/* ------------------------------------------------------------------ */
/* A full file system under concurrent appenders (RLIMIT_FSIZE)        */

#define CT_THREADS 4
#define CT_ACKS    3000 /* acknowledged records each thread wants */
#define CT_MAXSEQ  200000

typedef struct ct_thr {
	store_archive *ar;
	uint32_t       id;
	uint64_t      *acked; /* CT_ACKS seqs */
	uint32_t       nacked;
	uint32_t       eio, eagain, other;
	atomic_uint   *failures_seen;
} ct_thr;

static void *
ct_main(void *p)
{
	ct_thr *t = p;

	for (uint32_t i = 0; t->nacked < CT_ACKS && i < 10 * CT_MAXSEQ; i++) {
		uint64_t seq = 0;
		vigil_err rv = append_one(t->ar, t->id, i, &seq);

		if (rv == VIGIL_OK) {
			t->acked[t->nacked++] = seq;
		} else {
			if (rv == VIGIL_EIO)
				t->eio++;
			else if (rv == VIGIL_EAGAIN)
				t->eagain++;
			else
				t->other++;
			atomic_fetch_add(t->failures_seen, 1);
			usleep(200);
		}
	}
	return NULL;
}

static void
test_full_disk_concurrent_heals(void **state)
{
	/* Four threads append while the file size limit is hit: the writes
	 * that fail take whole batches of other threads' records with them;
	 * no thread may get VIGIL_OK for a record that is not in the file,
	 * nor a failure for one that is. The limit is lifted while they go
	 * on: the archive heals by itself (appends after the backoff). */
	fx *f = *state;
	store_archive_opts o = opts(STORE_FSYNC_NEVER);
	store_archive *ar;
	store_archive_health h;
	store_recovery rec;
	struct rlimit old, lim;
	void (*oldsig)(int);
	ct_thr th[CT_THREADS];
	pthread_t tid[CT_THREADS];
	atomic_uint fails = 0;
	uint8_t *got = calloc(CT_MAXSEQ + 1, 1);
	uint64_t total = 0, read;
	seen s = { 0 };

	assert_non_null(got);
	o.segment_max_bytes = 1u << 20;
	ar = open_ar(f->dir, &o, NULL);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	oldsig = signal(SIGXFSZ, SIG_IGN);
	lim = old;
	lim.rlim_cur = 200000;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	for (uint32_t i = 0; i < CT_THREADS; i++) {
		th[i] = (ct_thr){ .ar = ar, .id = i, .failures_seen = &fails };
		th[i].acked = calloc(CT_ACKS, sizeof *th[i].acked);
		assert_int_equal(pthread_create(&tid[i], NULL, ct_main, &th[i]), 0);
	}
	/* let them run into the limit a while */
	while (atomic_load(&fails) < 200)
		usleep(1000);
	store_archive_get_health(ar, &h);
	assert_true(h.failing || h.recoveries > 0);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	for (uint32_t i = 0; i < CT_THREADS; i++)
		assert_int_equal(pthread_join(tid[i], NULL), 0);
	signal(SIGXFSZ, oldsig);
	store_archive_get_health(ar, &h);
	assert_false(h.failing);
	assert_true(h.failures >= 1);
	assert_true(h.recoveries >= 1);
	assert_true(h.refused >= 1);
	store_archive_close(ar);

	ar = open_ar(f->dir, &o, &rec);
	assert_int_equal(rec.torn_records, 0);
	store_archive_close(ar);
	read = read_back(f->dir, got, CT_MAXSEQ, &s);
	if (s.corrupt != 0)
		fail_msg("%u corrupt stretch(es), first %s", s.corrupt, s.first);
	for (uint32_t i = 0; i < CT_THREADS; i++) {
		assert_int_equal(th[i].nacked, CT_ACKS);
		assert_int_equal(th[i].other, 0);
		for (uint32_t k = 0; k < th[i].nacked; k++) {
			if (got[th[i].acked[k]] != 1)
				fail_msg("acknowledged seq %llu is not in the archive",
				    (unsigned long long)th[i].acked[k]);
			got[th[i].acked[k]] = 2;
		}
		total += th[i].nacked;
		free(th[i].acked);
	}
	/* nothing unacknowledged is there */
	assert_int_equal(read, total);
	free(got);
}

/* ------------------------------------------------------------------ */
/* A real full file system: a 6 MiB tmpfs in a mount namespace         */

#define CHILD_CHECK(c, code) do { if (!(c)) { \
	fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c); \
	_exit(code); } } while (0)

/* In a child: the archive on a tmpfs that fills up, with a 1 MiB file
 * beside it that is removed to make room. Exit 0: passed; 77: no mount
 * namespace here (skip); other: a check failed (stderr says which). */
static void
tmpfs_child(const char *mnt)
{
	store_archive_opts o = opts(STORE_FSYNC_INTERVAL);
	store_archive *ar = NULL;
	store_archive_health h;
	store_diag d;
	char dir[600], filler[600];
	uint8_t zero[65536] = { 0 };
	uint64_t seq, acked = 0, last_ok = 0;
	uint32_t i;
	vigil_err rv = VIGIL_OK;
	int fd;

	if (unshare(CLONE_NEWNS) != 0 &&
	    unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0)
		_exit(77);
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
	    mount("vigil-test", mnt, "tmpfs", 0, "size=6m,mode=0700") != 0)
		_exit(77);
	snprintf(filler, sizeof filler, "%s/filler", mnt);
	fd = open(filler, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHILD_CHECK(fd >= 0, 10);
	for (int k = 0; k < 16; k++)
		CHILD_CHECK(write(fd, zero, sizeof zero) == (ssize_t)sizeof zero, 11);
	close(fd);
	snprintf(dir, sizeof dir, "%s/archive", mnt);
	CHILD_CHECK(store_archive_open(dir, &o, &ar, NULL, &d) == VIGIL_OK, 12);
	/* fills the first 4 MiB mapped step, then the disk */
	for (i = 0; i < 100000; i++) {
		rv = append_one(ar, 0, i, &seq);
		if (rv != VIGIL_OK)
			break;
		acked++;
		last_ok = seq;
	}
	CHILD_CHECK(rv == VIGIL_EIO, 13);
	CHILD_CHECK(acked > 10000, 14); /* past the first mapped step */
	store_archive_get_health(ar, &h);
	CHILD_CHECK(h.failing, 15);
	CHILD_CHECK(h.err == ENOSPC, 16);
	CHILD_CHECK(strcmp(strerror(h.err), "No space left on device") == 0, 17);
	CHILD_CHECK(strcmp(h.op, "write") == 0, 18);
	CHILD_CHECK(append_one(ar, 0, i, &seq) == VIGIL_EAGAIN, 19);
	/* still full: maintenance's probe fails, the fault stays */
	CHILD_CHECK(store_archive_maintain(ar, &d) == VIGIL_OK, 20);
	store_archive_get_health(ar, &h);
	CHILD_CHECK(h.failing && h.err == ENOSPC && h.failures >= 2, 21);
	/* room again */
	CHILD_CHECK(unlink(filler) == 0, 22);
	CHILD_CHECK(store_archive_maintain(ar, &d) == VIGIL_OK, 23);
	store_archive_get_health(ar, &h);
	CHILD_CHECK(!h.failing && h.recoveries == 1, 24);
	for (uint32_t k = 0; k < 100; k++) {
		CHILD_CHECK(append_one(ar, 1, k, &seq) == VIGIL_OK, 25);
		CHILD_CHECK(seq > last_ok, 26);
		acked++;
	}
	store_archive_close(ar);
	/* everything acknowledged, nothing else, nothing corrupt */
	{
		store_recovery rec;
		store_reader *rd = NULL;
		store_record r;
		seen s = { 0 };
		uint64_t n = 0;

		CHILD_CHECK(store_archive_open(dir, &o, &ar, &rec, &d) == VIGIL_OK, 27);
		CHILD_CHECK(rec.torn_records == 0, 28);
		store_archive_close(ar);
		CHILD_CHECK(store_reader_open(dir, INT64_MIN, INT64_MAX, on_corrupt, &s, &rd, &d) ==
		    VIGIL_OK, 29);
		while (store_reader_next(rd, &r, &d) == VIGIL_OK)
			n++;
		store_reader_close(rd);
		if (s.corrupt != 0)
			fprintf(stderr, "corrupt: %s\n", s.first);
		CHILD_CHECK(s.corrupt == 0, 30);
		CHILD_CHECK(n == acked, 31);
	}
	_exit(0);
}

static void
test_tmpfs_enospc_heals(void **state)
{
	fx *f = *state;
	char mnt[300];
	pid_t pid;
	int status;

	snprintf(mnt, sizeof mnt, "%s", f->dir); /* .../archive: the mount point */
	assert_int_equal(mkdir(mnt, 0700), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		tmpfs_child(mnt);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) == 77) {
		print_message("(no mount namespace here: tmpfs case skipped; "
		    "RLIMIT_FSIZE cases ran)\n");
		skip();
	}
	assert_int_equal(WEXITSTATUS(status), 0);
}

/* ------------------------------------------------------------------ */
/* Descriptor exhaustion (RLIMIT_NOFILE)                               */

typedef struct fd_hog {
	struct rlimit old;
	int           fds[256];
	int           n;
} fd_hog;

/* Lowers the descriptor limit to what is open now plus a few, then takes
 * every descriptor left. */
static void
hog_start(fd_hog *g)
{
	struct rlimit lim;
	int used = 0;
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			used++;
	closedir(d);
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &g->old), 0);
	lim = g->old;
	lim.rlim_cur = (rlim_t)used + 16;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &lim), 0);
	for (g->n = 0; g->n < 256; g->n++) {
		g->fds[g->n] = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (g->fds[g->n] < 0)
			break;
	}
	assert_int_equal(errno, EMFILE);
}

static void
hog_stop(fd_hog *g)
{
	for (int i = 0; i < g->n; i++)
		close(g->fds[i]);
	g->n = 0;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &g->old), 0);
}

static unsigned
count_suffix(const char *dir, const char *suffix)
{
	store_seg_ent *ents = NULL;
	size_t n = 0;
	unsigned c = 0;

	assert_int_equal(store_seg_list(dir, &ents, &n, NULL), VIGIL_OK);
	for (size_t i = 0; i < n; i++)
		c += strcmp(suffix, ".idx") == 0 ? ents[i].has_idx : ents[i].has_log;
	free(ents);
	return c;
}

static void
test_emfile_at_rotation_postponed(void **state)
{
	/* No descriptor left when a segment is full: the rotation cannot
	 * create the next segment, so it is postponed: appends go on in the
	 * open segment (degraded, not failing), and once descriptors are back
	 * the next append after the backoff rotates. */
	fx *f = *state;
	store_archive_opts o = opts(STORE_FSYNC_INTERVAL);
	store_archive *ar;
	store_archive_health h;
	fd_hog g;
	uint64_t seq, maxseq = 0;
	uint32_t i;
	seen s = { 0 };

	o.segment_max_bytes = 64 * 1024;
	ar = open_ar(f->dir, &o, NULL);
	for (i = 0; i < 100; i++)
		assert_int_equal(append_one(ar, 0, i, &seq), VIGIL_OK);
	hog_start(&g);
	/* ~3 segments' worth: every rotation meanwhile is postponed */
	for (; i < 1000; i++) {
		assert_int_equal(append_one(ar, 0, i, &seq), VIGIL_OK);
		maxseq = seq;
	}
	store_archive_get_health(ar, &h);
	assert_false(h.failing);
	assert_true(h.degraded);
	assert_int_equal(h.err, EMFILE);
	assert_string_equal(h.op, "create segment");
	hog_stop(&g);
	assert_int_equal(count_suffix(f->dir, ".log"), 1);
	usleep((useconds_t)(h.retry_in_ms + 20) * 1000);
	for (; i < 1100; i++) {
		assert_int_equal(append_one(ar, 0, i, &seq), VIGIL_OK);
		maxseq = seq;
	}
	store_archive_get_health(ar, &h);
	assert_false(h.degraded);
	assert_true(h.recoveries >= 1);
	assert_true(count_suffix(f->dir, ".idx") >= 1);
	store_archive_close(ar);
	assert_int_equal(read_back(f->dir, NULL, maxseq, &s), 1100);
	assert_int_equal(s.corrupt, 0);
	assert_int_equal(maxseq, 1100);
}

static void
test_emfile_at_create_heals(void **state)
{
	/* No segment open (closed by an operator's rotate) and no descriptor
	 * left: the append fails (EMFILE, failing), the next ones are refused
	 * during the backoff, and maintenance heals it once descriptors are
	 * back, without reopening. */
	fx *f = *state;
	store_archive_opts o = opts(STORE_FSYNC_ALWAYS);
	store_archive *ar;
	store_archive_health h;
	store_diag d;
	fd_hog g;
	uint64_t seq;
	seen s = { 0 };

	ar = open_ar(f->dir, &o, NULL);
	for (uint32_t i = 0; i < 10; i++)
		assert_int_equal(append_one(ar, 0, i, &seq), VIGIL_OK);
	assert_int_equal(store_archive_rotate(ar, &d), VIGIL_OK);
	hog_start(&g);
	assert_int_equal(append_one(ar, 0, 10, &seq), VIGIL_EIO);
	store_archive_get_health(ar, &h);
	assert_true(h.failing);
	assert_int_equal(h.err, EMFILE);
	assert_string_equal(h.op, "create segment");
	assert_int_equal(append_one(ar, 0, 11, &seq), VIGIL_EAGAIN);
	/* still no descriptor: maintenance's retry fails too */
	assert_int_equal(store_archive_maintain(ar, &d), VIGIL_OK);
	store_archive_get_health(ar, &h);
	assert_true(h.failing);
	assert_int_equal(h.failures, 2);
	hog_stop(&g);
	assert_int_equal(store_archive_maintain(ar, &d), VIGIL_OK);
	store_archive_get_health(ar, &h);
	assert_false(h.failing);
	assert_int_equal(h.recoveries, 1);
	for (uint32_t i = 12; i < 20; i++)
		assert_int_equal(append_one(ar, 0, i, &seq), VIGIL_OK);
	store_archive_close(ar);
	assert_int_equal(read_back(f->dir, NULL, UINT64_MAX, &s), 18);
	assert_int_equal(s.corrupt, 0);
}

/* ------------------------------------------------------------------ */
/* fdatasync fails (EIO): the LD_PRELOAD shim                          */

static void
test_sync_eio_heals(void **state)
{
	/* fsync always: a record whose fdatasync failed is not acknowledged
	 * (it is in the file, its append says it failed); the segment whose
	 * sync failed is never synced again but closed, and the next write
	 * goes to a new segment, whose good sync heals the archive. */
	fx *f = *state;
	store_archive_opts o = opts(STORE_FSYNC_ALWAYS);
	store_archive *ar;
	store_archive_health h;
	store_diag d;
	uint64_t seq, bad;
	seen s = { 0 };

	if (!shim_loaded())
		skip();
	ar = open_ar(f->dir, &o, NULL);
	for (uint32_t i = 0; i < 3; i++)
		assert_int_equal(append_one(ar, 0, i, &seq), VIGIL_OK);
	flag(f, "fdatasync-eio", true);
	assert_int_equal(store_archive_write(ar, STORE_REC_SCORE, T0, "abcdefgh", 8, &bad),
	    VIGIL_OK);
	assert_int_equal(store_archive_wait_durable(ar, bad), VIGIL_EIO);
	assert_int_equal(store_archive_wait_durable(ar, bad), VIGIL_EIO); /* never OK later */
	store_archive_get_health(ar, &h);
	assert_true(h.failing);
	assert_int_equal(h.err, EIO);
	assert_string_equal(h.op, "sync");
	assert_int_equal(append_one(ar, 0, 3, &seq), VIGIL_EAGAIN);
	flag(f, "fdatasync-eio", false);
	assert_int_equal(store_archive_maintain(ar, &d), VIGIL_OK);
	store_archive_get_health(ar, &h);
	assert_false(h.failing);
	for (uint32_t i = 4; i < 8; i++)
		assert_int_equal(append_one(ar, 0, i, &seq), VIGIL_OK);
	assert_int_equal(store_archive_wait_durable(ar, bad), VIGIL_EIO);
	assert_int_equal(store_archive_wait_durable(ar, seq), VIGIL_OK);
	store_archive_close(ar);
	assert_int_equal(count_suffix(f->dir, ".log"), 2);
	assert_int_equal(count_suffix(f->dir, ".idx"), 1);
	{
		/* the unacknowledged record is in the first segment; it is not
		 * one of read_back's, so count by hand */
		store_reader *rd = NULL;
		store_record r;
		uint64_t n = 0;

		assert_int_equal(store_reader_open(f->dir, INT64_MIN, INT64_MAX, on_corrupt, &s, &rd,
		    &d), VIGIL_OK);
		while (store_reader_next(rd, &r, &d) == VIGIL_OK)
			n++;
		store_reader_close(rd);
		assert_int_equal(n, 3 + 1 + 4);
		assert_int_equal(s.corrupt, 0);
	}
}

static void
test_drain_failure_gives_blocks_back(void **state)
{
	/* A drain that fails truncates the file back to what is on disk, which
	 * gives back the blocks reserved past it: once healed, the writer
	 * reserves again before it writes (the journal's frames are drained
	 * into blocks a full disk cannot take away), rather than believing it
	 * still holds the 4 MiB it had. */
	fx *f = *state;
	store_archive_opts o = opts(STORE_FSYNC_INTERVAL);
	store_archive *ar;
	store_archive_health h;
	store_seg_ent *ents = NULL;
	struct stat st;
	char p[600];
	size_t n = 0;
	uint64_t seq;

	if (!shim_loaded())
		skip();
	o.fsync_interval_ms = 60000; /* drained when asked */
	ar = open_ar(f->dir, &o, NULL);
	for (uint32_t i = 0; i < 100; i++)
		assert_int_equal(append_one(ar, 0, i, &seq), VIGIL_OK);
	flag(f, "write-enospc", true);
	assert_int_equal(store_archive_drain(ar), VIGIL_EIO);
	flag(f, "write-enospc", false);
	/* the next append past the backoff (100 ms at first) repairs */
	for (int i = 0; i < 500 && append_one(ar, 0, 100, &seq) == VIGIL_EAGAIN; i++)
		usleep(10000);
	store_archive_get_health(ar, &h);
	assert_false(h.failing);
	for (uint32_t i = 101; i < 1100; i++)
		assert_int_equal(append_one(ar, 0, i, &seq), VIGIL_OK);
	assert_int_equal(store_archive_drain(ar), VIGIL_OK);
	assert_int_equal(store_seg_list(f->dir, &ents, &n, NULL), VIGIL_OK);
	assert_int_equal(n, 1);
	snprintf(p, sizeof p, "%s/%s.log", f->dir, ents[0].base);
	free(ents);
	assert_int_equal(stat(p, &st), 0);
	assert_true((uint64_t)st.st_size < (1u << 20));
	assert_true((uint64_t)st.st_blocks * 512 >= (4u << 20)); /* reserved again */
	store_archive_close(ar);
}

static void
test_long_fault_heals(void **state)
{
	/* A sync that failed leaves the open segment's range unsynced until
	 * it closes; a disk that then stays full makes every retry add a range
	 * of dropped records. Past 256 of them (about 21 minutes of 5 s
	 * retries; the backoff is skipped here) the open range used to be
	 * pushed out of the ring as "everything from lo on is lost", and every
	 * append failed for good once the disk healed, the archive saying it
	 * was healthy. */
	fx *f = *state;
	store_archive_opts o = opts(STORE_FSYNC_INTERVAL);
	store_archive *ar;
	store_archive_health h;
	store_diag d;
	uint64_t seq;
	vigil_err rv = VIGIL_OK;
	int i;

	if (!shim_loaded())
		skip();
	o.fsync_interval_ms = 200;
	ar = open_ar(f->dir, &o, NULL);
	assert_int_equal(append_one(ar, 0, 0, &seq), VIGIL_OK);
	usleep(400000); /* synced */
	{
		/* the next sync slow, then failing: appends meanwhile stay in the
		 * journal, to be drained into the segment whose sync failed */
		char p[600];
		FILE *fp;

		snprintf(p, sizeof p, "%s/fdatasync-delay", f->fault);
		fp = fopen(p, "w");
		assert_non_null(fp);
		fputs("300", fp);
		assert_int_equal(fclose(fp), 0);
	}
	flag(f, "fdatasync-eio", true);
	for (i = 0; i < 20000 && (rv = append_one(ar, 0, 1, &seq)) != VIGIL_EAGAIN; i++)
		usleep(1000); /* until the interval's sync fails */
	flag(f, "fdatasync-delay", false);
	assert_int_equal(rv, VIGIL_EAGAIN);
	flag(f, "write-enospc", true);
	for (i = 0; i < 300; i++) {
		pthread_mutex_lock(&ar->f_mu);
		ar->fault.retry_ns = 0;
		pthread_mutex_unlock(&ar->f_mu);
		assert_int_not_equal(append_one(ar, 0, 2, &seq), VIGIL_OK);
	}
	flag(f, "write-enospc", false);
	flag(f, "fdatasync-eio", false);
	for (i = 0; i < 3; i++) {
		pthread_mutex_lock(&ar->f_mu);
		ar->fault.retry_ns = 0;
		pthread_mutex_unlock(&ar->f_mu);
		(void)store_archive_maintain(ar, &d);
		assert_int_equal(append_one(ar, 0, 3 + (uint32_t)i, &seq), VIGIL_OK);
		store_archive_get_health(ar, &h);
		assert_false(h.failing);
	}
	assert_int_equal(store_archive_drain(ar), VIGIL_OK);
	store_archive_close(ar);
}

typedef struct sw_thr {
	store_archive *ar;
	uint32_t       id;
	vigil_err      rv;
	uint64_t       seq;
} sw_thr;

static void *
sw_main(void *p)
{
	sw_thr *t = p;

	t->rv = append_one(t->ar, t->id, 0, &t->seq);
	return NULL;
}

static void
test_sync_eio_fails_every_waiter(void **state)
{
	/* Eight appenders wait on one slow fdatasync that fails: none of
	 * them may be told its record is durable. */
	fx *f = *state;
	store_archive_opts o = opts(STORE_FSYNC_ALWAYS);
	store_archive *ar;
	sw_thr th[8];
	pthread_t tid[8];
	char p[512];
	FILE *fp;
	unsigned ok = 0;

	if (!shim_loaded())
		skip();
	ar = open_ar(f->dir, &o, NULL);
	snprintf(p, sizeof p, "%s/fdatasync-delay", f->fault);
	fp = fopen(p, "w");
	assert_non_null(fp);
	fprintf(fp, "100\n");
	fclose(fp);
	flag(f, "fdatasync-eio", true);
	for (uint32_t i = 0; i < 8; i++) {
		th[i] = (sw_thr){ .ar = ar, .id = i };
		assert_int_equal(pthread_create(&tid[i], NULL, sw_main, &th[i]), 0);
	}
	for (uint32_t i = 0; i < 8; i++) {
		assert_int_equal(pthread_join(tid[i], NULL), 0);
		if (th[i].rv == VIGIL_OK)
			ok++;
		else
			assert_true(th[i].rv == VIGIL_EIO || th[i].rv == VIGIL_EAGAIN);
	}
	assert_int_equal(ok, 0);
	flag(f, "fdatasync-eio", false);
	unlink(p);
	store_archive_close(ar);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_full_disk_concurrent_heals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tmpfs_enospc_heals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_emfile_at_rotation_postponed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_emfile_at_create_heals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sync_eio_heals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_drain_failure_gives_blocks_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_long_fault_heals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sync_eio_fails_every_waiter, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
