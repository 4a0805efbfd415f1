/* SPDX-License-Identifier: MIT */
/*
 * store/archive.c - the archive writer: one process per directory (flock),
 * many appending threads, rotation by size and UTC day, recovery of a torn
 * tail on open, group commit for fsync=always, a sync thread for
 * fsync=interval, faults that heal (a failed write, sync or segment
 * creation leaves nothing partial, refuses appends for a backoff, then is
 * repaired and retried; store_archive_get_health), and maintenance (zstd
 * compression of closed segments into independent frames, retention, the
 * retry of a failing archive). Guarantees and on-disk format:
 * docs/archive.md.
 *
 * Locking: q_mu guards the queue of records not yet written (it assigns
 * sequence numbers: a record's frame is built and copied there under it);
 * mu orders writes (the open segment, rotation); sync_mu guards the
 * group-commit state; f_mu, a leaf, the fault state. Order is mu, then
 * q_mu or sync_mu, then f_mu. Group write: an
 * appender that finds its record not yet written takes mu and becomes the
 * leader: it takes the whole queue (every record enqueued meanwhile, by any
 * thread) and copies it into the open segment, a preallocated MAP_SHARED
 * mapping of the file (write(2) if the segment could not be preallocated);
 * appenders that queued behind it find their records written when they get
 * mu and return. A record is acknowledged (store_archive_write returns)
 * only once the copy holding it is complete: it is then in the page cache
 * and survives kill -9. With
 * fsync=always the first waiter to find no sync running becomes the sync
 * leader: it fdatasyncs for everyone written so far while later waiters
 * sleep on sync_cv.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <zstd.h>

#include "archive_int.h"
#include "util_int.h"

#define AR_MIN_SEGMENT   4096u
#define AR_ZSTD_LEVEL    3
#define AR_COPY_CHUNK    (1u << 20)
#define AR_QUEUE_INITIAL (64u << 10)
/* Queued bytes beyond which an appender writes the queue before adding to
 * it (callers flush right after enqueueing, so it is rarely reached). */
#define AR_QUEUE_MAX     (64u << 20)
/* The open segment is preallocated in steps of this many bytes and frames
 * are copied into a shared mapping of it (no write(2) per group write). A
 * segment whose size is a multiple of AR_PREALLOC_ALIGN may end in a
 * preallocated zero tail. */
#define AR_PREALLOC_STEP  (4u << 20)
#define AR_PREALLOC_ALIGN 4096u
/* Written pages are unmapped once this many bytes of them are behind the
 * write position (archive.md): the interval thread's fdatasync then finds
 * them unmapped and has no page table entries to write-protect, one TLB
 * shootdown each; one madvise call covers the whole stretch. */
#define AR_RELEASE_STEP   (64u << 10)

/* Fault handling (archive.md, "Errors"): after a failed attempt, appends
 * are refused for a backoff that doubles from AR_BACKOFF_MIN_MS to
 * AR_BACKOFF_MAX_MS, then the next append (or store_archive_maintain)
 * repairs and retries. */
#define AR_BACKOFF_MIN_MS 100u
#define AR_BACKOFF_MAX_MS 5000u
/* Sequence ranges whose records were dropped unwritten, or written but
 * whose sync failed, kept for the threads still waiting on them. */
#define AR_BAD_RING       256u
#define AR_PEND_IDX       8u
/* What the maintenance probe preallocates past the data to test for space. */
#define AR_PROBE_BYTES    (64u << 10)

typedef struct ar_fault {
	int      err;       /* errno */
	char     op[24];    /* what failed */
	char     file[STORE_SEG_NAME_MAX];
	int64_t  since_ms;  /* wall clock: first failure of the episode */
	uint64_t retry_ns;  /* monotonic: no retry before */
	uint32_t backoff_ms;
	bool     sync;      /* a failed sync: healed by a good sync of a new segment */
} ar_fault;

enum { AR_BAD_DROPPED = 1, AR_BAD_UNSYNCED = 2 };

typedef struct ar_bad {
	uint64_t lo, hi; /* seqs (lo, hi]; hi UINT64_MAX while the range is open */
	int      kind;
} ar_bad;

/* A closed segment whose index sidecar could not be written yet. */
typedef struct ar_pend_idx {
	bool            used;
	char            base[STORE_SEG_BASE_LEN + 1];
	store_seg_index idx;
} ar_pend_idx;

/* A queued frame: its bytes follow the previous one's in the queue buffer. */
typedef struct ar_qent {
	uint64_t seq;
	int64_t  event_time_ms;
	uint32_t len; /* header + payload */
} ar_qent;

/* The records enqueued and not yet written, in sequence order. */
typedef struct ar_queue {
	uint8_t *buf;
	size_t   len, cap;
	ar_qent *ent;
	uint32_t n, entcap;
} ar_queue;

struct store_archive {
	char              *dir;
	int                lockfd;
	store_archive_opts opts;
	int64_t          (*now)(void *arg);
	void              *now_arg;

	pthread_mutex_t    mu;         /* write path */
	int                fd;         /* open segment, -1 until the next write creates one */
	char               base[STORE_SEG_BASE_LEN + 1];
	int64_t            seg_day;
	uint64_t           seg_size;
	uint64_t           file_end;   /* bytes of frames in the open segment's file */
	uint8_t           *map;        /* shared mapping of the open segment, or NULL: write(2) */
	size_t             map_len;    /* address space reserved for it */
	uint64_t           alloc_end;  /* preallocated (and mapped) file size */
	uint64_t           map_dropped; /* pages below this were unmapped (MADV_DONTNEED) */
	uint64_t           prealloc_failures; /* segments appended with write(2) instead */
	store_seg_index    seg;        /* what the open segment holds so far */
	int64_t            max_event_ms; /* largest event time in the archive */
	uint64_t           nsegments;
	ar_queue           wq;         /* the leader's batch being written (mu) */

	bool               need_trunc; /* the open segment's file may hold bytes past file_end */
	uint64_t           dropped_hi; /* highest seq dropped unwritten */
	ar_pend_idx        pend[AR_PEND_IDX]; /* index sidecars still to write */

	pthread_mutex_t    q_mu;       /* the queue */
	ar_queue           q;
	uint64_t           next_seq;
	uint64_t           records, bytes;
	atomic_uint_least64_t written_seq;

	/* Faults (docs/archive.md, "Errors"): f_mu, a leaf lock, guards them;
	 * failing and nbad are also read without it. */
	pthread_mutex_t    f_mu;
	atomic_bool        failing;    /* appends are refused until a retry succeeds */
	ar_fault           fault;      /* why (failing) */
	ar_fault           rot;        /* a rotation postponed (appends go on) */
	atomic_bool        rot_postponed;
	uint64_t           failures, recoveries, refused;
	ar_bad             bad[AR_BAD_RING];
	atomic_uint        nbad;       /* ranges ever added */
	uint64_t           bad_evicted_hi; /* highest seq of a range pushed out of the ring */

	pthread_mutex_t    sync_mu;    /* group commit */
	pthread_cond_t     sync_cv;
	bool               syncing;
	bool               sync_doubt; /* a sync of sync_fd failed: not synced again, rotate */
	char               sync_name[STORE_SEG_NAME_MAX]; /* file name of sync_fd */
	int                sync_fd;    /* == fd, read under sync_mu */
	uint64_t           synced_seq;
	uint64_t           syncs;
	/* alternative group commit (measured in bench/archive): a dedicated
	 * thread syncs while appenders only wait */
	bool               commit_thr_running, commit_stop;
	pthread_t          commit_thr;
	pthread_cond_t     commit_cv;
	uint64_t           commit_want;

	pthread_mutex_t    thr_mu;     /* interval sync thread */
	pthread_cond_t     thr_cv;
	pthread_t          thr;
	bool               thr_running, stopping;

	pthread_mutex_t    maint_mu;   /* one maintenance pass at a time */
};



static int64_t
ar_default_now(void *arg)
{
	struct timespec ts;

	(void)arg;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t
ar_day(int64_t ms)
{
	return ms >= 0 ? ms / VIGIL_MS_PER_DAY : -((-ms + VIGIL_MS_PER_DAY - 1) / VIGIL_MS_PER_DAY);
}

void
store_archive_set_clock(store_archive *ar, int64_t (*now)(void *arg), void *arg)
{
	pthread_mutex_lock(&ar->mu);
	ar->now = now != NULL ? now : ar_default_now;
	ar->now_arg = now != NULL ? arg : NULL;
	pthread_mutex_unlock(&ar->mu);
}

void
store_archive_opts_default(store_archive_opts *ret_opts)
{
	memset(ret_opts, 0, sizeof *ret_opts);
	ret_opts->fsync             = STORE_FSYNC_INTERVAL;
	ret_opts->fsync_interval_ms = 50;
	ret_opts->segment_max_bytes = 256ull << 20;
	ret_opts->retention_days    = 0;
	ret_opts->compress_closed   = false;
	ret_opts->max_record_bytes  = 1u << 20;
}

vigil_err
store_fsync_parse(const char *s, store_fsync *ret)
{
	if (strcasecmp(s, "always") == 0)
		*ret = STORE_FSYNC_ALWAYS;
	else if (strcasecmp(s, "interval") == 0)
		*ret = STORE_FSYNC_INTERVAL;
	else if (strcasecmp(s, "never") == 0)
		*ret = STORE_FSYNC_NEVER;
	else
		return VIGIL_EINVAL;
	return VIGIL_OK;
}


/* ------------------------------------------------------------------ */
/* Faults                                                              */

/* Notes one failed attempt in f (f_mu held): the first of an episode
 * starts it, later ones double the backoff. */
static void
ar_fault_note(ar_fault *f, bool active, int err, const char *op, const char *file)
{
	if (!active) {
		f->since_ms = vigil_now_ms();
		f->backoff_ms = AR_BACKOFF_MIN_MS;
	} else if (f->backoff_ms < AR_BACKOFF_MAX_MS) {
		f->backoff_ms = f->backoff_ms * 2 < AR_BACKOFF_MAX_MS ? f->backoff_ms * 2 :
		    AR_BACKOFF_MAX_MS;
	}
	f->err = err != 0 ? err : EIO;
	snprintf(f->op, sizeof f->op, "%s", op);
	snprintf(f->file, sizeof f->file, "%s", file != NULL ? file : "");
	f->retry_ns = vigil_mono_ns() + (uint64_t)f->backoff_ms * 1000000u;
}

/* A failed write, sync, segment creation or truncation: appends are
 * refused until the backoff is over (any lock may be held: f_mu is a leaf).
 * sync: the failure was a sync, healed by a good sync of a new segment;
 * otherwise by a good write. */
static void
ar_fail(store_archive *ar, int err, const char *op, const char *file, bool sync)
{
	pthread_mutex_lock(&ar->f_mu);
	ar_fault_note(&ar->fault, atomic_load(&ar->failing), err, op, file);
	ar->fault.sync = sync;
	ar->failures++;
	atomic_store(&ar->failing, true);
	pthread_mutex_unlock(&ar->f_mu);
}

/* A write (sync false) or a sync (true) succeeded: ends the episode if
 * that is what its last failure needs; force ends it whatever it was. */
static void
ar_heal(store_archive *ar, bool sync, bool force)
{
	if (!atomic_load(&ar->failing))
		return;
	pthread_mutex_lock(&ar->f_mu);
	if (atomic_load(&ar->failing) && (force || ar->fault.sync == sync)) {
		atomic_store(&ar->failing, false);
		ar->recoveries++;
	}
	pthread_mutex_unlock(&ar->f_mu);
}

/* True while appends are refused: failing, and the backoff not over. */
static bool
ar_refusing(store_archive *ar)
{
	bool r;

	if (!atomic_load(&ar->failing))
		return false;
	pthread_mutex_lock(&ar->f_mu);
	r = atomic_load(&ar->failing) && vigil_mono_ns() < ar->fault.retry_ns;
	pthread_mutex_unlock(&ar->f_mu);
	return r;
}

bool
store_archive_refusing(store_archive *ar)
{
	return ar_refusing(ar);
}

/* A rotation could not create the next segment: appends go on in the open
 * one, and the rotation is tried again after a backoff. */
static void
ar_postpone(store_archive *ar, int err, const char *op, const char *file)
{
	pthread_mutex_lock(&ar->f_mu);
	ar_fault_note(&ar->rot, atomic_load(&ar->rot_postponed), err, op, file);
	ar->failures++;
	atomic_store(&ar->rot_postponed, true);
	pthread_mutex_unlock(&ar->f_mu);
}

static bool
ar_rot_due(store_archive *ar)
{
	bool due;

	if (!atomic_load(&ar->rot_postponed))
		return true;
	pthread_mutex_lock(&ar->f_mu);
	due = vigil_mono_ns() >= ar->rot.retry_ns;
	pthread_mutex_unlock(&ar->f_mu);
	return due;
}

static void
ar_rot_done(store_archive *ar)
{
	if (!atomic_load(&ar->rot_postponed))
		return;
	pthread_mutex_lock(&ar->f_mu);
	atomic_store(&ar->rot_postponed, false);
	ar->recoveries++;
	pthread_mutex_unlock(&ar->f_mu);
}

/* Remembers that the records (lo, hi] were dropped unwritten
 * (AR_BAD_DROPPED) or written but not synced (AR_BAD_UNSYNCED; hi
 * UINT64_MAX until the segment is rotated), for the threads waiting on
 * them. The ring keeps the last AR_BAD_RING ranges: a sequence number at
 * or below one pushed out counts as lost (a thread would have to wait
 * through 256 failed attempts to ask). */
static void
ar_bad_add(store_archive *ar, uint64_t lo, uint64_t hi, int kind)
{
	unsigned n;

	pthread_mutex_lock(&ar->f_mu);
	n = atomic_load(&ar->nbad);
	if (n >= AR_BAD_RING && ar->bad[n % AR_BAD_RING].hi > ar->bad_evicted_hi)
		ar->bad_evicted_hi = ar->bad[n % AR_BAD_RING].hi;
	ar->bad[n % AR_BAD_RING] = (ar_bad){ .lo = lo, .hi = hi, .kind = kind };
	atomic_store(&ar->nbad, n + 1);
	pthread_mutex_unlock(&ar->f_mu);
}

/* Ends the open AR_BAD_UNSYNCED range at hi (its segment is closed). */
static void
ar_bad_close(store_archive *ar, uint64_t hi)
{
	unsigned n;

	pthread_mutex_lock(&ar->f_mu);
	n = atomic_load(&ar->nbad);
	for (unsigned i = n > AR_BAD_RING ? n - AR_BAD_RING : 0; i < n; i++) {
		ar_bad *b = &ar->bad[i % AR_BAD_RING];

		if (b->kind == AR_BAD_UNSYNCED && b->hi == UINT64_MAX)
			b->hi = hi;
	}
	pthread_mutex_unlock(&ar->f_mu);
}

static bool
ar_bad_has(store_archive *ar, uint64_t seq, int kind)
{
	unsigned n = atomic_load(&ar->nbad);
	bool r = false;

	if (n == 0)
		return false;
	pthread_mutex_lock(&ar->f_mu);
	if (seq <= ar->bad_evicted_hi)
		r = true;
	for (unsigned i = n > AR_BAD_RING ? n - AR_BAD_RING : 0; !r && i < n; i++) {
		const ar_bad *b = &ar->bad[i % AR_BAD_RING];

		r = b->kind == kind && seq > b->lo && seq <= b->hi;
	}
	pthread_mutex_unlock(&ar->f_mu);
	return r;
}

void
store_archive_get_health(store_archive *ar, store_archive_health *ret)
{
	uint64_t now = vigil_mono_ns();
	const ar_fault *f = NULL;

	memset(ret, 0, sizeof *ret);
	pthread_mutex_lock(&ar->f_mu);
	ret->failing = atomic_load(&ar->failing);
	ret->degraded = atomic_load(&ar->rot_postponed);
	f = ret->failing ? &ar->fault : ret->degraded ? &ar->rot : NULL;
	if (f != NULL) {
		ret->err = f->err;
		snprintf(ret->op, sizeof ret->op, "%s", f->op);
		snprintf(ret->file, sizeof ret->file, "%s", f->file);
		ret->since_ms = f->since_ms;
		ret->retry_in_ms = f->retry_ns > now ? (int64_t)((f->retry_ns - now) / 1000000u) : 0;
	}
	ret->failures = ar->failures;
	ret->recoveries = ar->recoveries;
	ret->refused = ar->refused;
	pthread_mutex_unlock(&ar->f_mu);
}

/* ------------------------------------------------------------------ */
/* Group commit                                                        */

/* One fdatasync on behalf of everyone written so far (sync_mu held, released
 * during the call). */
static void
ar_sync_once(store_archive *ar)
{
	uint64_t target, lo;
	int fd, rc = 0, e = 0;

	/* everything written so far is in the file behind fd (rotation swaps
	 * fd under both locks after syncing the old one) */
	ar->syncing = true;
	fd = ar->sync_fd;
	lo = ar->synced_seq;
	target = atomic_load(&ar->written_seq);
	pthread_mutex_unlock(&ar->sync_mu);
	if (fd >= 0 && fdatasync(fd) != 0) {
		rc = -1;
		e = errno;
	}
	pthread_mutex_lock(&ar->sync_mu);
	ar->syncing = false;
	ar->syncs++;
	if (rc == 0) {
		if (target > ar->synced_seq)
			ar->synced_seq = target;
		ar_heal(ar, true, false);
	} else if (!ar->sync_doubt) {
		/* After a failed fdatasync the state of the unsynced pages is
		 * unknown (the kernel may have dropped them), and a later sync of
		 * the same file may succeed without having written them: every
		 * record after the last good sync fails its wait, the file is not
		 * synced again, and the next write starts a new segment. */
		ar->sync_doubt = true;
		ar_bad_add(ar, lo, UINT64_MAX, AR_BAD_UNSYNCED);
		ar_fail(ar, e, "sync", ar->sync_name, true);
	}
	pthread_cond_broadcast(&ar->sync_cv);
}

static void *
ar_commit_main(void *arg)
{
	store_archive *ar = arg;

	pthread_mutex_lock(&ar->sync_mu);
	while (!ar->commit_stop) {
		if (ar->synced_seq >= ar->commit_want || ar->syncing || ar->sync_doubt) {
			pthread_cond_wait(&ar->commit_cv, &ar->sync_mu);
			continue;
		}
		ar_sync_once(ar);
	}
	pthread_mutex_unlock(&ar->sync_mu);
	return NULL;
}

vigil_err
store_archive_use_sync_thread(store_archive *ar)
{
	if (ar->commit_thr_running)
		return VIGIL_OK;
	if (pthread_create(&ar->commit_thr, NULL, ar_commit_main, ar) != 0)
		return VIGIL_ENOMEM;
	ar->commit_thr_running = true;
	return VIGIL_OK;
}

/* Returns once record seq is synced: VIGIL_OK, or VIGIL_EIO if the sync
 * that was to cover it failed. */
static vigil_err
ar_sync_upto(store_archive *ar, uint64_t seq)
{
	vigil_err rv = VIGIL_OK;

	pthread_mutex_lock(&ar->sync_mu);
	for (;;) {
		if (ar_bad_has(ar, seq, AR_BAD_UNSYNCED)) {
			rv = VIGIL_EIO;
			break;
		}
		if (ar->synced_seq >= seq)
			break;
		if (ar->sync_doubt) {
			rv = VIGIL_EIO;
			break;
		}
		if (!ar->commit_thr_running)
			break;
		if (seq > ar->commit_want)
			ar->commit_want = seq;
		pthread_cond_signal(&ar->commit_cv);
		pthread_cond_wait(&ar->sync_cv, &ar->sync_mu);
	}
	while (rv == VIGIL_OK && ar->synced_seq < seq) {
		if (ar_bad_has(ar, seq, AR_BAD_UNSYNCED) || ar->sync_doubt) {
			rv = VIGIL_EIO;
			break;
		}
		if (ar->syncing) {
			pthread_cond_wait(&ar->sync_cv, &ar->sync_mu);
			continue;
		}
		ar_sync_once(ar); /* leader */
	}
	pthread_mutex_unlock(&ar->sync_mu);
	return rv;
}

static void *
ar_interval_main(void *arg)
{
	store_archive *ar = arg;
	struct timespec ts;

	pthread_mutex_lock(&ar->thr_mu);
	while (!ar->stopping) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += ar->opts.fsync_interval_ms / 1000;
		ts.tv_nsec += (long)(ar->opts.fsync_interval_ms % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		while (!ar->stopping &&
		    pthread_cond_timedwait(&ar->thr_cv, &ar->thr_mu, &ts) != ETIMEDOUT)
			;
		if (ar->stopping)
			break;
		pthread_mutex_unlock(&ar->thr_mu);
		(void)ar_sync_upto(ar, atomic_load(&ar->written_seq));
		pthread_mutex_lock(&ar->thr_mu);
	}
	pthread_mutex_unlock(&ar->thr_mu);
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Segments                                                            */

/* Unmaps the open segment and cuts its file back to the frames in it (mu
 * held): the preallocated zero tail goes. */
static vigil_err
ar_map_drop(store_archive *ar)
{
	if (ar->map == NULL)
		return VIGIL_OK;
	munmap(ar->map, ar->map_len);
	ar->map = NULL;
	ar->map_len = 0;
	ar->alloc_end = 0;
	ar->map_dropped = 0;
	return ftruncate(ar->fd, (off_t)ar->file_end) == 0 ? VIGIL_OK : VIGIL_EIO;
}

/* Preallocates the mapped segment to at least end bytes, in whole steps
 * (mu held). False if that does not fit the mapping or the file system
 * refuses (ENOSPC, EFBIG): the caller goes back to write(2) for the segment.
 * Frames are only ever copied below alloc_end, so no store can SIGBUS. */
/* Appends never touch the pages before file_end's again: unmaps them (mu
 * held; they stay in the page cache, dirty ones still to be written back)
 * so the process's resident size does not grow with the segment. */
static void
ar_map_release(store_archive *ar)
{
	long     pg = sysconf(_SC_PAGESIZE);
	uint64_t done = pg > 0 ? ar->file_end / (uint64_t)pg * (uint64_t)pg : 0;

	if (done > ar->map_dropped) {
		(void)madvise(ar->map + ar->map_dropped, (size_t)(done - ar->map_dropped),
		    MADV_DONTNEED);
		ar->map_dropped = done;
	}
}

static bool
ar_map_grow(store_archive *ar, uint64_t end)
{
	uint64_t nend = (end + AR_PREALLOC_STEP - 1) / AR_PREALLOC_STEP * AR_PREALLOC_STEP;

	ar_map_release(ar);
	if (nend > ar->map_len)
		nend = ar->map_len;
	if (end > nend)
		return false;
	if (posix_fallocate(ar->fd, (off_t)ar->alloc_end, (off_t)(nend - ar->alloc_end)) != 0)
		return false;
	ar->alloc_end = nend;
	return true;
}

/* Maps the open segment (mu held; its file holds file_end bytes of frames)
 * for appends by memcpy: address space for the largest segment it can
 * become, file space in steps. If that fails the segment is appended with
 * write(2), as all were before, and prealloc_failures counts it. */
static void
ar_map_open(store_archive *ar)
{
	uint64_t top = ar->file_end > ar->opts.segment_max_bytes ? ar->file_end :
	    ar->opts.segment_max_bytes;
	uint64_t len = top + STORE_FRAME_HDR + ar->opts.max_record_bytes;
	void *p;

	len = (len + AR_PREALLOC_ALIGN - 1) / AR_PREALLOC_ALIGN * AR_PREALLOC_ALIGN;
	if (len > SIZE_MAX / 2)
		goto fail;
	p = mmap(NULL, (size_t)len, PROT_READ | PROT_WRITE, MAP_SHARED, ar->fd, 0);
	if (p == MAP_FAILED)
		goto fail;
	ar->map = p;
	ar->map_len = (size_t)len;
	ar->alloc_end = ar->file_end;
	if (!ar_map_grow(ar, ar->file_end + 1)) {
		(void)ar_map_drop(ar);
		goto fail;
	}
	return;
fail:
	ar->prealloc_failures++;
}

uint64_t
store_archive_prealloc_failures(store_archive *ar)
{
	uint64_t n;

	pthread_mutex_lock(&ar->mu);
	n = ar->prealloc_failures;
	pthread_mutex_unlock(&ar->mu);
	return n;
}

/* An index sidecar that could not be written (ENOSPC, EMFILE) is kept
 * here (mu held) and written by the next repair or maintenance; if the
 * process ends first, the next open rebuilds it by scanning the segment. */
static void
ar_pend_add(store_archive *ar, const char *base, const store_seg_index *idx)
{
	ar_pend_idx *p = &ar->pend[0];

	for (uint32_t i = 0; i < AR_PEND_IDX; i++) {
		if (!ar->pend[i].used) {
			p = &ar->pend[i];
			break;
		}
	}
	p->used = true;
	memcpy(p->base, base, sizeof p->base);
	p->idx = *idx;
}

static void
ar_pend_retry(store_archive *ar)
{
	bool sync = ar->opts.fsync != STORE_FSYNC_NEVER;

	for (uint32_t i = 0; i < AR_PEND_IDX; i++)
		if (ar->pend[i].used &&
		    store_seg_index_write(ar->dir, ar->pend[i].base, &ar->pend[i].idx, sync) == VIGIL_OK)
			ar->pend[i].used = false;
}

/*
 * First half of closing the open segment (mu held): cuts the file to its
 * frames and syncs it (unless a sync of it already failed). A failed sync
 * is a sync fault (its records fail their durability wait), but closing
 * goes on. VIGIL_EIO only if the file cannot be cut to its frames: then it
 * stays open, so no reader ever sees a closed segment ending in zeros.
 * Until ar_seg_finish the segment may still be appended to (remapped).
 */
static vigil_err
ar_seg_cut(store_archive *ar)
{
	char name[STORE_SEG_NAME_MAX];
	bool sync = ar->opts.fsync != STORE_FSYNC_NEVER;
	uint64_t w;
	int e;

	snprintf(name, sizeof name, "%s.log", ar->base);
	if (ar_map_drop(ar) != VIGIL_OK ||
	    (ar->need_trunc && ftruncate(ar->fd, (off_t)ar->file_end) != 0)) {
		e = errno;
		ar->need_trunc = true;
		ar_fail(ar, e, "truncate", name, false);
		return VIGIL_EIO;
	}
	ar->need_trunc = false;
	pthread_mutex_lock(&ar->sync_mu);
	while (ar->syncing)
		pthread_cond_wait(&ar->sync_cv, &ar->sync_mu);
	w = atomic_load(&ar->written_seq);
	if (!ar->sync_doubt && sync && fdatasync(ar->fd) != 0) {
		e = errno;
		ar->sync_doubt = true;
		ar_bad_add(ar, ar->synced_seq, UINT64_MAX, AR_BAD_UNSYNCED);
		ar_fail(ar, e, "sync", name, true);
	}
	if (!ar->sync_doubt && w > ar->synced_seq)
		ar->synced_seq = w; /* nothing of the segment is left to sync */
	pthread_mutex_unlock(&ar->sync_mu);
	return VIGIL_OK;
}

/* Second half (mu held, after ar_seg_cut): writes the index sidecar (an
 * empty segment is removed instead; an index that cannot be written is
 * kept for later, ar_pend_add) and closes the file. Records whose sync
 * failed end with this segment. */
static void
ar_seg_finish(store_archive *ar)
{
	char path[PATH_MAX];
	bool sync = ar->opts.fsync != STORE_FSYNC_NEVER;

	pthread_mutex_lock(&ar->sync_mu);
	while (ar->syncing)
		pthread_cond_wait(&ar->sync_cv, &ar->sync_mu);
	if (ar->sync_doubt) {
		ar_bad_close(ar, atomic_load(&ar->written_seq));
		ar->sync_doubt = false;
	}
	ar->sync_fd = -1;
	ar->sync_name[0] = '\0';
	pthread_cond_broadcast(&ar->sync_cv);
	pthread_cond_signal(&ar->commit_cv);
	pthread_mutex_unlock(&ar->sync_mu);
	close(ar->fd);
	ar->fd = -1;
	if (ar->seg.records == 0) {
		snprintf(path, sizeof path, "%s/%s.log", ar->dir, ar->base);
		if (unlink(path) == 0 && ar->nsegments > 0)
			ar->nsegments--;
	} else {
		ar->seg.bytes = ar->file_end;
		ar->seg.closed_at_ms = ar->now(ar->now_arg);
		if (store_seg_index_write(ar->dir, ar->base, &ar->seg, sync) != VIGIL_OK)
			ar_pend_add(ar, ar->base, &ar->seg);
	}
	ar->base[0] = '\0';
}

/* Closes the open segment (mu held): ar_seg_cut, then ar_seg_finish.
 * Sequence numbers are unaffected. VIGIL_EIO (the segment stays open) if
 * it cannot be cut to its frames. */
static vigil_err
ar_segment_close(store_archive *ar)
{
	vigil_err rv;

	if (ar->fd < 0)
		return VIGIL_OK;
	rv = ar_seg_cut(ar);
	if (rv == VIGIL_OK)
		ar_seg_finish(ar);
	return rv;
}

/* Creates the file of the segment whose first record is first_seq, and
 * makes its name durable (policies always and interval). On failure
 * *ret_errno and *ret_op say what failed and nothing is left behind. */
static vigil_err
ar_seg_file_new(store_archive *ar, int64_t day, uint64_t first_seq,
    char ret_base[STORE_SEG_BASE_LEN + 1], int *ret_fd, int *ret_errno, const char **ret_op)
{
	char path[PATH_MAX];
	int fd;

	store_seg_base(day, first_seq, ret_base);
	snprintf(path, sizeof path, "%s/%s.log", ar->dir, ret_base);
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0640);
	if (fd < 0) {
		*ret_errno = errno;
		*ret_op = "create segment";
		return VIGIL_EIO;
	}
	if (ar->opts.fsync != STORE_FSYNC_NEVER && store_fsync_dir(ar->dir) != VIGIL_OK) {
		*ret_errno = errno;
		*ret_op = "sync directory";
		close(fd);
		unlink(path);
		return VIGIL_EIO;
	}
	*ret_fd = fd;
	return VIGIL_OK;
}

/* Makes fd (a new, empty segment file) the open segment (mu held). */
static void
ar_seg_install(store_archive *ar, int fd, const char *base, int64_t day)
{
	ar->fd = fd;
	memcpy(ar->base, base, sizeof ar->base);
	ar->seg_day = day;
	ar->seg_size = 0;
	ar->file_end = 0;
	ar->need_trunc = false;
	ar_map_open(ar);
	memset(&ar->seg, 0, sizeof ar->seg);
	ar->nsegments++;
	pthread_mutex_lock(&ar->sync_mu);
	ar->sync_fd = fd;
	snprintf(ar->sync_name, sizeof ar->sync_name, "%s.log", base);
	pthread_mutex_unlock(&ar->sync_mu);
}

/* Creates the segment whose first record is first_seq (mu held; no segment
 * open). A failure is a fault: appends are refused for the backoff. */
static vigil_err
ar_segment_create(store_archive *ar, int64_t now, uint64_t first_seq)
{
	char base[STORE_SEG_BASE_LEN + 1], name[STORE_SEG_NAME_MAX];
	const char *op = "";
	int fd = -1, e = 0;

	if (ar_seg_file_new(ar, ar_day(now), first_seq, base, &fd, &e, &op) != VIGIL_OK) {
		snprintf(name, sizeof name, "%s.log", base);
		ar_fail(ar, e, op, name, false);
		return VIGIL_EIO;
	}
	ar_seg_install(ar, fd, base, ar_day(now));
	ar_rot_done(ar); /* a rotation postponed before is done now */
	return VIGIL_OK;
}

/*
 * Rotation (mu held). The open segment is cut to its frames and synced
 * first, so a newer segment never exists beside an older one that still
 * has its preallocated tail (a crash at any point leaves what recovery
 * expects); then the next segment is created before the open one is
 * closed, so that when it cannot be (EMFILE, ENOSPC, ...) appends go on in
 * the open segment (mapped again), past segment_max_bytes or its day, and
 * the rotation is tried again after a backoff: postponed, not a failure
 * (store_archive_health.degraded). VIGIL_EIO only if the open segment
 * cannot be cut (ar_seg_cut).
 */
static vigil_err
ar_rotate(store_archive *ar, int64_t now, uint64_t first_seq)
{
	char base[STORE_SEG_BASE_LEN + 1], name[STORE_SEG_NAME_MAX];
	const char *op = "";
	int fd = -1, e = 0;
	vigil_err rv;

	if (!ar_rot_due(ar))
		return VIGIL_OK;
	rv = ar_seg_cut(ar);
	if (rv != VIGIL_OK)
		return rv;
	if (ar_seg_file_new(ar, ar_day(now), first_seq, base, &fd, &e, &op) != VIGIL_OK) {
		snprintf(name, sizeof name, "%s.log", base);
		ar_postpone(ar, e, op, name);
		ar_map_open(ar);
		return VIGIL_OK;
	}
	ar_seg_finish(ar);
	ar_seg_install(ar, fd, base, ar_day(now));
	ar_rot_done(ar);
	return VIGIL_OK;
}

/* ------------------------------------------------------------------ */
/* Appending                                                           */

static vigil_err
ar_writev_all(int fd, struct iovec *iov, int iovcnt)
{
	while (iovcnt > 0) {
		ssize_t n = writev(fd, iov, iovcnt);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return VIGIL_EIO;
		}
		while (iovcnt > 0 && (size_t)n >= iov->iov_len) {
			n -= (ssize_t)iov->iov_len;
			iov++;
			iovcnt--;
		}
		if (iovcnt > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + n;
			iov->iov_len -= (size_t)n;
		}
	}
	return VIGIL_OK;
}

static void
ar_queue_fini(ar_queue *q)
{
	free(q->buf);
	free(q->ent);
	memset(q, 0, sizeof *q);
}

/* Room for one more frame of flen bytes (q_mu held). */
static vigil_err
ar_queue_reserve(ar_queue *q, size_t flen)
{
	if (q->len + flen > q->cap) {
		size_t   ncap = q->cap ? q->cap : AR_QUEUE_INITIAL;
		uint8_t *nb;

		while (ncap < q->len + flen)
			ncap *= 2;
		nb = realloc(q->buf, ncap);
		if (nb == NULL)
			return VIGIL_ENOMEM;
		q->buf = nb;
		q->cap = ncap;
	}
	if (q->n == q->entcap) {
		uint32_t ncap = q->entcap ? q->entcap * 2 : 256;
		ar_qent *ne = realloc(q->ent, ncap * sizeof *ne);

		if (ne == NULL)
			return VIGIL_ENOMEM;
		q->ent = ne;
		q->entcap = ncap;
	}
	return VIGIL_OK;
}

/* Copies frames ent[0..n) (bytes src[0..)) into the mapping at dst. Each
 * frame's magic is stored last, so a reader of the file (read(2) sees the
 * same page cache) finds either a complete frame or zeros where it starts;
 * kill -9 mid-copy leaves the same: a frame without magic is the torn tail. */
static void
ar_copy_frames(uint8_t *dst, const uint8_t *src, const ar_qent *ent, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		uint32_t flen = ent[i].len;

		memcpy(dst + 4, src + 4, flen - 4);
		atomic_thread_fence(memory_order_release);
		memcpy(dst, src, 4);
		dst += flen;
		src += flen;
	}
}

/* Writes frames ent[0..n) (bytes p[0..len)) to the open segment and
 * accounts for them (mu held). A failure is a fault, and leaves the file
 * as it was: what part of a write(2) reached it is cut off again (or, if
 * that fails too, by the repair before the next write), so no reader ever
 * finds a partial frame there that more frames follow. */
static vigil_err
ar_write_chunk(store_archive *ar, const uint8_t *p, size_t len, const ar_qent *ent, uint32_t n)
{
	struct iovec iov = { (void *)(uintptr_t)p, len };
	char name[STORE_SEG_NAME_MAX];
	int e;

	if (n == 0)
		return VIGIL_OK;
	if (ar->map != NULL && ar->file_end + len > ar->alloc_end &&
	    !ar_map_grow(ar, ar->file_end + len)) {
		ar->prealloc_failures++;
		if (ar_map_drop(ar) != VIGIL_OK) {
			e = errno;
			ar->need_trunc = true;
			snprintf(name, sizeof name, "%s.log", ar->base);
			ar_fail(ar, e, "truncate", name, false);
			return VIGIL_EIO;
		}
	}
	if (ar->map != NULL) {
		ar_copy_frames(ar->map + ar->file_end, p, ent, n);
	} else if (ar_writev_all(ar->fd, &iov, 1) != VIGIL_OK) {
		e = errno;
		if (ftruncate(ar->fd, (off_t)ar->file_end) != 0)
			ar->need_trunc = true;
		snprintf(name, sizeof name, "%s.log", ar->base);
		ar_fail(ar, e, "write", name, false);
		return VIGIL_EIO;
	}
	ar->file_end += len;
	if (ar->map != NULL && ar->file_end - ar->map_dropped >= AR_RELEASE_STEP)
		ar_map_release(ar);
	for (uint32_t i = 0; i < n; i++) {
		int64_t t = ent[i].event_time_ms;

		if (ar->seg.records == 0) {
			ar->seg.first_seq = ent[i].seq;
			ar->seg.min_event_ms = ar->seg.max_event_ms = t;
		}
		ar->seg.last_seq = ent[i].seq;
		if (t < ar->seg.min_event_ms)
			ar->seg.min_event_ms = t;
		if (t > ar->seg.max_event_ms)
			ar->seg.max_event_ms = t;
		ar->seg.records++;
		if (t > ar->max_event_ms)
			ar->max_event_ms = t;
	}
	ar->records += n;
	ar->bytes += len;
	atomic_store(&ar->written_seq, ent[n - 1].seq);
	return VIGIL_OK;
}

/* Writes a batch taken from the queue, rotating by size and day between
 * frames as single appends would (mu held). On failure the frames written
 * before it stay (written_seq says which). */
static vigil_err
ar_write_batch(store_archive *ar, const ar_queue *b)
{
	int64_t   now = ar->now(ar->now_arg);
	size_t    off = 0, start = 0;
	uint32_t  i0 = 0;
	vigil_err rv = VIGIL_OK;

	for (uint32_t i = 0; i < b->n; i++) {
		uint32_t flen = b->ent[i].len;

		if (ar->fd >= 0 &&
		    ((ar->seg_size > 0 && ar->seg_size + flen > ar->opts.segment_max_bytes) ||
		    ar_day(now) > ar->seg_day) && ar_rot_due(ar)) {
			rv = ar_write_chunk(ar, b->buf + start, off - start, b->ent + i0, i - i0);
			if (rv != VIGIL_OK)
				goto out;
			start = off;
			i0 = i;
			rv = ar_rotate(ar, now, b->ent[i].seq);
			if (rv != VIGIL_OK)
				goto out;
		}
		if (ar->fd < 0) {
			rv = ar_segment_create(ar, now, b->ent[i].seq);
			if (rv != VIGIL_OK)
				goto out;
		}
		ar->seg_size += flen;
		off += flen;
	}
	rv = ar_write_chunk(ar, b->buf + start, off - start, b->ent + i0, b->n - i0);
out:
	if (rv != VIGIL_OK && ar->fd >= 0)
		ar->seg_size = ar->file_end;
	return rv;
}

/* Drops every record enqueued and not written (mu held): after a failed
 * write, or while appends are refused. Their threads' flush fails
 * (AR_BAD_DROPPED); the sequence numbers are not reused. Returns the next
 * sequence number. */
static uint64_t
ar_drop_pending(store_archive *ar)
{
	uint64_t lo = atomic_load(&ar->written_seq), next;
	uint64_t n;

	if (ar->dropped_hi > lo)
		lo = ar->dropped_hi;
	pthread_mutex_lock(&ar->q_mu);
	next = ar->next_seq;
	n = (uint64_t)ar->q.n + ar->wq.n;
	if (next - 1 > lo) {
		ar_bad_add(ar, lo, next - 1, AR_BAD_DROPPED);
		ar->dropped_hi = next - 1;
	}
	ar->q.len = 0;
	ar->q.n = 0;
	pthread_mutex_unlock(&ar->q_mu);
	ar->wq.len = 0;
	ar->wq.n = 0;
	if (n > 0) {
		pthread_mutex_lock(&ar->f_mu);
		ar->refused += n;
		pthread_mutex_unlock(&ar->f_mu);
	}
	return next;
}

/* Repairs what a fault left behind (mu held), before the next write: a
 * tail past the frames of the open segment is cut, a segment whose sync
 * failed is closed (the next write starts a new one), index sidecars not
 * written are written. The fault itself stays until a write (or sync)
 * succeeds. */
static vigil_err
ar_repair(store_archive *ar)
{
	char name[STORE_SEG_NAME_MAX];
	bool doubt;

	ar_pend_retry(ar);
	if (ar->fd >= 0 && ar->need_trunc) {
		if (ftruncate(ar->fd, (off_t)ar->file_end) != 0) {
			int e = errno;

			snprintf(name, sizeof name, "%s.log", ar->base);
			ar_fail(ar, e, "truncate", name, false);
			return VIGIL_EIO;
		}
		ar->need_trunc = false;
	}
	pthread_mutex_lock(&ar->sync_mu);
	doubt = ar->sync_doubt;
	pthread_mutex_unlock(&ar->sync_mu);
	if (ar->fd >= 0 && doubt)
		return ar_segment_close(ar);
	return VIGIL_OK;
}

/*
 * Maintenance of a failing archive (mu held): repairs, then tries what
 * failed without a record, so that an idle server heals too: creates the
 * next segment if none is open, syncs it after a sync fault, and checks
 * that the file system has room for AR_PROBE_BYTES more of it
 * (posix_fallocate past the data, then cut back). Success ends the fault.
 */
static void
ar_probe(store_archive *ar, int64_t now)
{
	char name[STORE_SEG_NAME_MAX];
	uint64_t keep, next;
	bool sync_fault;
	int rc;

	if (ar_repair(ar) != VIGIL_OK)
		return;
	if (ar->fd < 0) {
		pthread_mutex_lock(&ar->q_mu);
		next = ar->next_seq;
		pthread_mutex_unlock(&ar->q_mu);
		if (ar_segment_create(ar, now, next) != VIGIL_OK)
			return;
	}
	snprintf(name, sizeof name, "%s.log", ar->base);
	pthread_mutex_lock(&ar->f_mu);
	sync_fault = ar->fault.sync;
	pthread_mutex_unlock(&ar->f_mu);
	if (sync_fault && ar->opts.fsync != STORE_FSYNC_NEVER && fdatasync(ar->fd) != 0) {
		int e = errno;

		pthread_mutex_lock(&ar->sync_mu);
		ar->sync_doubt = true; /* nothing in it yet: no range to add */
		pthread_mutex_unlock(&ar->sync_mu);
		ar_fail(ar, e, "sync", name, true);
		return;
	}
	keep = ar->map != NULL ? ar->alloc_end : ar->file_end;
	rc = posix_fallocate(ar->fd, (off_t)keep, AR_PROBE_BYTES);
	if (rc == EOPNOTSUPP || rc == EINVAL) {
		/* no preallocation here: write zeros instead (one page) */
		static const uint8_t zeros[4096];

		rc = pwrite(ar->fd, zeros, sizeof zeros, (off_t)keep) == (ssize_t)sizeof zeros ? 0 :
		    errno;
	}
	if (ftruncate(ar->fd, (off_t)keep) != 0 && ar->map == NULL)
		ar->need_trunc = true;
	if (rc != 0) {
		ar_fail(ar, rc, "write", name, false);
		return;
	}
	ar_heal(ar, false, true);
}

/* Returns once record seq is in the file (VIGIL_OK): as the leader
 * (writing the whole queue) or after one did. VIGIL_EIO if it was dropped
 * by a failed write, VIGIL_EAGAIN if dropped unwritten while appends were
 * refused, VIGIL_EINVAL if seq was never enqueued. */
static vigil_err
ar_flush_upto(store_archive *ar, uint64_t seq)
{
	vigil_err rv = VIGIL_OK;

	if (atomic_load(&ar->written_seq) >= seq && !ar_bad_has(ar, seq, AR_BAD_DROPPED))
		return VIGIL_OK;
	pthread_mutex_lock(&ar->mu);
	for (;;) {
		ar_queue tmp;

		if (ar_bad_has(ar, seq, AR_BAD_DROPPED)) {
			if (rv == VIGIL_OK)
				rv = VIGIL_EIO;
			break;
		}
		if (atomic_load(&ar->written_seq) >= seq) {
			rv = VIGIL_OK;
			break;
		}
		if (ar_refusing(ar)) {
			/* Within the backoff nothing is tried. */
			rv = seq < ar_drop_pending(ar) ? VIGIL_EAGAIN : VIGIL_EINVAL;
			if (rv == VIGIL_EINVAL)
				break;
			continue;
		}
		/* Take the queue; the emptied batch buffer becomes the queue. */
		pthread_mutex_lock(&ar->q_mu);
		tmp = ar->q;
		ar->q = ar->wq;
		ar->q.len = 0;
		ar->q.n = 0;
		pthread_mutex_unlock(&ar->q_mu);
		ar->wq = tmp;
		if (ar->wq.n == 0) {
			rv = VIGIL_EINVAL; /* seq was never enqueued */
			break;
		}
		rv = atomic_load(&ar->failing) ? ar_repair(ar) : VIGIL_OK;
		if (rv == VIGIL_OK)
			rv = ar_write_batch(ar, &ar->wq);
		if (rv == VIGIL_OK) {
			ar->wq.len = 0;
			ar->wq.n = 0;
			ar_heal(ar, false, false);
			continue;
		}
		/* Whatever of the batch was not written goes, with the queue. */
		(void)ar_drop_pending(ar);
		rv = VIGIL_EIO;
	}
	pthread_mutex_unlock(&ar->mu);
	return rv;
}

vigil_err
store_archive_enqueue(store_archive *ar, store_rec_type type, int64_t event_time_ms,
    const void *payload, size_t len, uint64_t *ret_seq)
{
	size_t    flen = STORE_FRAME_HDR + len;
	uint64_t  seq;
	vigil_err rv;

	if (type != STORE_REC_SCORE && type != STORE_REC_LABEL)
		return VIGIL_EINVAL;
	if (len > ar->opts.max_record_bytes)
		return VIGIL_ETOOBIG;
	if (len > 0 && payload == NULL)
		return VIGIL_EINVAL;
	for (;;) {
		if (ar_refusing(ar)) {
			pthread_mutex_lock(&ar->f_mu);
			ar->refused++;
			pthread_mutex_unlock(&ar->f_mu);
			return VIGIL_EAGAIN;
		}
		pthread_mutex_lock(&ar->q_mu);
		if (ar->q.len == 0 || ar->q.len + flen <= AR_QUEUE_MAX)
			break;
		/* Over the cap: write what is queued first (mu before q_mu). */
		seq = ar->next_seq - 1;
		pthread_mutex_unlock(&ar->q_mu);
		rv = ar_flush_upto(ar, seq);
		if (rv != VIGIL_OK)
			return rv;
	}
	rv = ar_queue_reserve(&ar->q, flen);
	if (rv == VIGIL_OK) {
		uint8_t *p = ar->q.buf + ar->q.len;

		seq = ar->next_seq++;
		store_frame_header(p, type, seq, event_time_ms, payload, len);
		if (len > 0)
			memcpy(p + STORE_FRAME_HDR, payload, len);
		ar->q.ent[ar->q.n++] = (ar_qent){ .seq = seq, .event_time_ms = event_time_ms,
			.len = (uint32_t)flen };
		ar->q.len += flen;
		if (ret_seq != NULL)
			*ret_seq = seq;
	}
	pthread_mutex_unlock(&ar->q_mu);
	return rv;
}

vigil_err
store_archive_flush(store_archive *ar, uint64_t seq)
{
	return ar_flush_upto(ar, seq);
}

vigil_err
store_archive_write(store_archive *ar, store_rec_type type, int64_t event_time_ms,
    const void *payload, size_t len, uint64_t *ret_seq)
{
	uint64_t  seq = 0;
	vigil_err rv;

	rv = store_archive_enqueue(ar, type, event_time_ms, payload, len, &seq);
	if (rv != VIGIL_OK)
		return rv;
	rv = ar_flush_upto(ar, seq);
	if (rv == VIGIL_OK && ret_seq != NULL)
		*ret_seq = seq;
	return rv;
}

vigil_err
store_archive_wait_durable(store_archive *ar, uint64_t seq)
{
	if (ar->opts.fsync != STORE_FSYNC_ALWAYS)
		return VIGIL_OK;
	if (seq > atomic_load(&ar->written_seq))
		return VIGIL_EINVAL;
	if (ar_bad_has(ar, seq, AR_BAD_DROPPED))
		return VIGIL_EIO;
	return ar_sync_upto(ar, seq);
}

vigil_err
store_archive_append(store_archive *ar, store_rec_type type, int64_t event_time_ms,
    const void *payload, size_t len, uint64_t *ret_seq)
{
	uint64_t seq;
	vigil_err rv;

	rv = store_archive_write(ar, type, event_time_ms, payload, len, &seq);
	if (rv != VIGIL_OK)
		return rv;
	rv = store_archive_wait_durable(ar, seq);
	if (rv == VIGIL_OK && ret_seq != NULL)
		*ret_seq = seq;
	return rv;
}

/* ------------------------------------------------------------------ */
/* Opening and recovery                                                */

/* Counts frame starts in the torn tail [from, to) of a segment (at least 1). */
static uint64_t
ar_count_torn(int fd, uint64_t from, uint64_t to)
{
	uint8_t buf[65536 + 3];
	uint64_t count = 0, off = from;
	size_t carry = 0;

	while (off < to) {
		size_t want = to - off < 65536 ? (size_t)(to - off) : 65536;
		ssize_t n = pread(fd, buf + carry, want, (off_t)off);
		size_t have;

		if (n <= 0)
			break;
		have = carry + (size_t)n;
		for (size_t i = 0; i + 4 <= have; i++)
			if (memcmp(buf + i, STORE_FRAME_MAGIC, 4) == 0)
				count++;
		off += (uint64_t)n;
		carry = have < 3 ? have : 3;
		memmove(buf, buf + have - carry, carry);
	}
	return count > 0 ? count : 1;
}

/* The end of the last non-zero byte of [from, to) of a segment (from if
 * there is none): where the data before a preallocated zero tail ends. */
static uint64_t
ar_data_end(int fd, uint64_t from, uint64_t to)
{
	uint8_t buf[65536];

	while (to > from) {
		size_t want = to - from < sizeof buf ? (size_t)(to - from) : sizeof buf;
		ssize_t n = pread(fd, buf, want, (off_t)(to - want));

		if (n != (ssize_t)want)
			return to; /* cannot tell: all of it counts as torn */
		for (size_t i = want; i > 0; i--)
			if (buf[i - 1] != 0)
				return to - want + i;
		to -= want;
	}
	return from;
}

/* Removes leftovers of interrupted operations: *.tmp files, and a .log.zst
 * beside its .log (compression was interrupted after the rename; the
 * original is kept and compression redone later). */
static vigil_err
ar_cleanup(const char *dir, store_diag *reterr)
{
	store_seg_ent *ents = NULL;
	char path[PATH_MAX];
	size_t n = 0;
	vigil_err rv;
	static const char *tmps[] = { ".idx.tmp", ".log.zst.tmp" };

	rv = store_seg_list(dir, &ents, &n, reterr);
	if (rv != VIGIL_OK)
		return rv;
	for (size_t i = 0; i < n; i++) {
		for (size_t k = 0; k < 2; k++) {
			snprintf(path, sizeof path, "%s/%s%s", dir, ents[i].base, tmps[k]);
			if (unlink(path) != 0 && errno != ENOENT) {
				store_diag_at(reterr, path, VIGIL_NOPOS, NULL,
				    "cannot remove: %s", strerror(errno));
				rv = VIGIL_EIO;
				goto out;
			}
		}
		if (ents[i].has_log && ents[i].has_zst) {
			snprintf(path, sizeof path, "%s/%s.log.zst", dir, ents[i].base);
			if (unlink(path) != 0 && errno != ENOENT) {
				store_diag_at(reterr, path, VIGIL_NOPOS, NULL,
				    "cannot remove: %s", strerror(errno));
				rv = VIGIL_EIO;
				goto out;
			}
		}
	}
out:
	free(ents);
	return rv;
}

/* A .tmp of a segment that never got a .log/.idx entry is still a leftover. */
static void
ar_cleanup_orphans(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char path[PATH_MAX];

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		size_t l = strlen(de->d_name);
		if (strncmp(de->d_name, "seg-", 4) == 0 && l > 4 &&
		    strcmp(de->d_name + l - 4, ".tmp") == 0) {
			snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
			unlink(path);
		}
	}
	closedir(d);
}

static vigil_err
ar_recover(store_archive *ar, store_recovery *rec, store_diag *reterr)
{
	store_seg_ent *ents = NULL;
	store_seg_index idx;
	char path[PATH_MAX];
	uint64_t last_seq = 0, valid_end;
	size_t n = 0;
	vigil_err rv;

	ar_cleanup_orphans(ar->dir);
	rv = ar_cleanup(ar->dir, reterr);
	if (rv != VIGIL_OK)
		goto out;
	rv = store_seg_list(ar->dir, &ents, &n, reterr);
	if (rv != VIGIL_OK)
		goto out;
	rec->segments = (uint32_t)n;
	ar->nsegments = n;
	for (size_t i = 0; i < n; i++) {
		store_seg_ent *e = &ents[i];
		bool last = i + 1 == n;
		bool have_idx = e->has_idx &&
		    store_seg_index_read(ar->dir, e->base, &idx) == VIGIL_OK;

		if (!e->has_log && !e->has_zst)
			continue; /* an index whose segment is gone (retention interrupted) */
		snprintf(path, sizeof path, "%s/%s%s", ar->dir, e->base,
		    e->has_log ? ".log" : ".log.zst");
		if (have_idx) {
			/* closed segment */
			if (idx.last_seq > last_seq)
				last_seq = idx.last_seq;
			if (idx.records > 0 && idx.max_event_ms > ar->max_event_ms)
				ar->max_event_ms = idx.max_event_ms;
			continue;
		}
		if (!last || !e->has_log) {
			/* Closed but its index was never written (crash during
			 * rotation): rebuild the index. */
			rv = store_seg_scan(path, &idx, &valid_end, reterr);
			if (rv != VIGIL_OK)
				goto out;
			idx.closed_at_ms = ar->now(ar->now_arg);
			if (idx.last_seq > last_seq)
				last_seq = idx.last_seq;
			if (idx.records > 0 && idx.max_event_ms > ar->max_event_ms)
				ar->max_event_ms = idx.max_event_ms;
			rv = store_seg_index_write(ar->dir, e->base, &idx, true);
			if (rv != VIGIL_OK) {
				store_diag_set(reterr, "%s/%s.idx: cannot write segment index: %s", ar->dir,
				    e->base, vigil_strerror(rv));
				goto out;
			}
			continue;
		}
		/* The open segment: find the end of its last valid frame; what
		 * follows is a torn tail (no valid frame after it) and goes. */
		{
			struct stat st;
			int fd;

			rv = store_seg_scan(path, &idx, &valid_end, reterr);
			if (rv != VIGIL_OK)
				goto out;
			fd = open(path, O_RDWR | O_APPEND | O_CLOEXEC);
			if (fd < 0 || fstat(fd, &st) != 0) {
				rv = vigil_err_from_errno(errno);
				store_diag_at(reterr, path, VIGIL_NOPOS, NULL,
				    "cannot open segment: %s", strerror(errno));
				if (fd >= 0)
					close(fd);
				goto out;
			}
			if ((uint64_t)st.st_size > valid_end) {
				uint64_t data_end = (uint64_t)st.st_size;

				/* zeros at the end of a preallocated segment are not data */
				if (data_end % AR_PREALLOC_ALIGN == 0)
					data_end = ar_data_end(fd, valid_end, data_end);
				if (data_end > valid_end) {
					rec->torn_bytes = data_end - valid_end;
					rec->torn_records = ar_count_torn(fd, valid_end, data_end);
				}
				if (ftruncate(fd, (off_t)valid_end) != 0 || fdatasync(fd) != 0) {
					store_diag_at(reterr, path, VIGIL_NOPOS, NULL,
					    "cannot truncate torn tail at offset %llu: %s",
					    (unsigned long long)valid_end, strerror(errno));
					close(fd);
					rv = VIGIL_EIO;
					goto out;
				}
			}
			if (idx.records > 0 && idx.last_seq > last_seq)
				last_seq = idx.last_seq;
			if (idx.records > 0 && idx.max_event_ms > ar->max_event_ms)
				ar->max_event_ms = idx.max_event_ms;
			if (e->first_seq > 0 && e->first_seq - 1 > last_seq)
				last_seq = e->first_seq - 1;
			ar->fd = fd;
			ar->sync_fd = fd;
			snprintf(ar->sync_name, sizeof ar->sync_name, "%s.log", e->base);
			memcpy(ar->base, e->base, sizeof ar->base);
			ar->seg_day = e->day;
			ar->seg_size = valid_end;
			ar->file_end = valid_end;
			ar->seg = idx;
			ar_map_open(ar);
		}
	}
	ar->next_seq = last_seq + 1;
	atomic_store(&ar->written_seq, last_seq);
	ar->synced_seq = last_seq;
	rec->last_seq = last_seq;
out:
	free(ents);
	return rv;
}

vigil_err
store_archive_open(const char *dir, const store_archive_opts *opts, store_archive **ret_ar,
    store_recovery *ret_recovery, store_diag *reterr)
{
	store_archive *ar = NULL;
	store_recovery rec = { 0 };
	char path[PATH_MAX];
	vigil_err rv;

	ar = calloc(1, sizeof *ar);
	if (ar == NULL)
		return VIGIL_ENOMEM;
	ar->fd = ar->sync_fd = ar->lockfd = -1;
	ar->max_event_ms = INT64_MIN;
	ar->now = ar_default_now;
	pthread_mutex_init(&ar->mu, NULL);
	pthread_mutex_init(&ar->q_mu, NULL);
	pthread_mutex_init(&ar->sync_mu, NULL);
	pthread_cond_init(&ar->sync_cv, NULL);
	pthread_cond_init(&ar->commit_cv, NULL);
	pthread_mutex_init(&ar->thr_mu, NULL);
	{
		pthread_condattr_t ca;
		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&ar->thr_cv, &ca);
		pthread_condattr_destroy(&ca);
	}
	pthread_mutex_init(&ar->maint_mu, NULL);
	pthread_mutex_init(&ar->f_mu, NULL);
	if (opts != NULL)
		ar->opts = *opts;
	else
		store_archive_opts_default(&ar->opts);
	if (ar->opts.fsync > STORE_FSYNC_NEVER ||
	    (ar->opts.fsync == STORE_FSYNC_INTERVAL && ar->opts.fsync_interval_ms == 0)) {
		store_diag_set(reterr, "archive options: fsync policy %d / interval %u ms is invalid",
		    (int)ar->opts.fsync, ar->opts.fsync_interval_ms);
		rv = VIGIL_EINVAL;
		goto out;
	}
	if (ar->opts.max_record_bytes == 0 || ar->opts.max_record_bytes > STORE_FRAME_MAX_PAYLOAD) {
		store_diag_set(reterr, "archive options: max_record_bytes %u not in [1, %u]",
		    ar->opts.max_record_bytes, STORE_FRAME_MAX_PAYLOAD);
		rv = VIGIL_EINVAL;
		goto out;
	}
	if (ar->opts.segment_max_bytes < AR_MIN_SEGMENT) {
		store_diag_set(reterr, "archive options: segment_max_bytes %llu below %u",
		    (unsigned long long)ar->opts.segment_max_bytes, AR_MIN_SEGMENT);
		rv = VIGIL_EINVAL;
		goto out;
	}
	ar->dir = strdup(dir);
	if (ar->dir == NULL) {
		rv = VIGIL_ENOMEM;
		goto out;
	}
	if (mkdir(dir, 0750) != 0 && errno != EEXIST) {
		rv = vigil_err_from_errno(errno);
		store_diag_set(reterr, "%s: cannot create archive directory: %s", dir, strerror(errno));
		goto out;
	}
	snprintf(path, sizeof path, "%s/LOCK", dir);
	ar->lockfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
	if (ar->lockfd < 0) {
		rv = vigil_err_from_errno(errno);
		store_diag_at(reterr, path, VIGIL_NOPOS, NULL, "cannot open: %s", strerror(errno));
		goto out;
	}
	if (flock(ar->lockfd, LOCK_EX | LOCK_NB) != 0) {
		rv = errno == EWOULDBLOCK ? VIGIL_EBUSY : vigil_err_from_errno(errno);
		store_diag_at(reterr, path, VIGIL_NOPOS, NULL,
		    "archive is locked by another writer");
		goto out;
	}
	rv = ar_recover(ar, &rec, reterr);
	if (rv != VIGIL_OK)
		goto out;
	if (ar->opts.fsync == STORE_FSYNC_INTERVAL) {
		if (pthread_create(&ar->thr, NULL, ar_interval_main, ar) != 0) {
			rv = VIGIL_ENOMEM;
			store_diag_set(reterr, "%s: cannot start the archive sync thread", dir);
			goto out;
		}
		ar->thr_running = true;
	}
	if (ret_recovery != NULL)
		*ret_recovery = rec;
	*ret_ar = ar;
	ar = NULL;
out:
	store_archive_close(ar);
	return rv;
}

void
store_archive_close(store_archive *ar)
{
	if (ar == NULL)
		return;
	if (ar->thr_running) {
		pthread_mutex_lock(&ar->thr_mu);
		ar->stopping = true;
		pthread_cond_signal(&ar->thr_cv);
		pthread_mutex_unlock(&ar->thr_mu);
		pthread_join(ar->thr, NULL);
	}
	if (ar->commit_thr_running) {
		pthread_mutex_lock(&ar->sync_mu);
		ar->commit_stop = true;
		pthread_cond_signal(&ar->commit_cv);
		pthread_mutex_unlock(&ar->sync_mu);
		pthread_join(ar->commit_thr, NULL);
	}
	/* Records enqueued and never flushed (no caller does that): write them. */
	if (ar->q.n > 0 && !atomic_load(&ar->failing))
		(void)ar_flush_upto(ar, ar->q.ent[ar->q.n - 1].seq);
	if (ar->fd >= 0) {
		/* The segment stays open (no index): the next open continues it. */
		if (ar_map_drop(ar) != VIGIL_OK || ar->need_trunc)
			(void)ftruncate(ar->fd, (off_t)ar->file_end);
		(void)fdatasync(ar->fd);
		close(ar->fd);
	}
	/* Index sidecars not written yet: the next open rebuilds what fails. */
	ar_pend_retry(ar);
	if (ar->lockfd >= 0)
		close(ar->lockfd); /* releases the flock */
	pthread_mutex_destroy(&ar->mu);
	pthread_mutex_destroy(&ar->q_mu);
	pthread_mutex_destroy(&ar->sync_mu);
	pthread_cond_destroy(&ar->sync_cv);
	pthread_cond_destroy(&ar->commit_cv);
	pthread_mutex_destroy(&ar->thr_mu);
	pthread_cond_destroy(&ar->thr_cv);
	pthread_mutex_destroy(&ar->maint_mu);
	pthread_mutex_destroy(&ar->f_mu);
	ar_queue_fini(&ar->q);
	ar_queue_fini(&ar->wq);
	free(ar->dir);
	free(ar);
}

int64_t
store_archive_max_event_ms(store_archive *ar)
{
	int64_t t;

	pthread_mutex_lock(&ar->mu);
	t = ar->max_event_ms;
	pthread_mutex_unlock(&ar->mu);
	return t;
}

void
store_archive_get_stats(store_archive *ar, store_archive_stats *ret_stats)
{
	pthread_mutex_lock(&ar->mu);
	ret_stats->records  = ar->records;
	ret_stats->bytes    = ar->bytes;
	ret_stats->segments = ar->nsegments;
	pthread_mutex_unlock(&ar->mu);
	pthread_mutex_lock(&ar->q_mu);
	ret_stats->last_seq = ar->next_seq - 1;
	pthread_mutex_unlock(&ar->q_mu);
	pthread_mutex_lock(&ar->sync_mu);
	ret_stats->syncs = ar->syncs;
	pthread_mutex_unlock(&ar->sync_mu);
}

/* ------------------------------------------------------------------ */
/* Maintenance                                                         */

/* Makes in[0..*have) hold at least need bytes of the file from off (fewer
 * at its end), growing in. */
static vigil_err
ar_zfill(int fd, uint8_t **in, size_t *incap, size_t *have, uint64_t off, size_t need,
    uint64_t fsize)
{
	if (need > fsize - off)
		need = (size_t)(fsize - off);
	if (need > *incap) {
		uint8_t *nb = realloc(*in, need);

		if (nb == NULL)
			return VIGIL_ENOMEM;
		*in = nb;
		*incap = need;
	}
	while (*have < need) {
		ssize_t n = pread(fd, *in + *have, need - *have, (off_t)(off + *have));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return VIGIL_EIO;
		*have += (size_t)n;
	}
	return VIGIL_OK;
}

/* The length of the next zstd frame's input at in[0..) (file offset off):
 * whole records, about STORE_ZFRAME_TARGET bytes (at least one record), and
 * *ret_records of them. Where the bytes are not records (damage in a
 * closed segment: kept as it is) the frame runs to the next plausible
 * record header, so the frames after it are record-aligned again. */
static vigil_err
ar_zchunk(int fd, uint8_t **in, size_t *incap, size_t *have, uint64_t off, uint64_t fsize,
    size_t *ret_len, uint32_t *ret_records)
{
	size_t len = 0;
	uint32_t recs = 0;
	vigil_err rv;

	for (;;) {
		uint64_t rest = fsize - off - len;
		size_t flen;

		if (rest == 0)
			break;
		rv = ar_zfill(fd, in, incap, have, off, len + STORE_FRAME_HDR, fsize);
		if (rv != VIGIL_OK)
			return rv;
		if (rest < STORE_FRAME_HDR || !store_frame_plausible(*in + len) ||
		    (flen = STORE_FRAME_HDR + store_get_le32(*in + len + 8)) > rest) {
			if (len > 0)
				break;
			/* Not a record here: raw bytes up to the next plausible header. */
			rv = ar_zfill(fd, in, incap, have, off, STORE_ZFRAME_TARGET + STORE_FRAME_HDR, fsize);
			if (rv != VIGIL_OK)
				return rv;
			for (len = 1; len < *have && len < STORE_ZFRAME_TARGET; len++) {
				if (*have - len >= STORE_FRAME_HDR && store_frame_plausible(*in + len) &&
				    STORE_FRAME_HDR + store_get_le32(*in + len + 8) <= fsize - off - len)
					break;
			}
			break;
		}
		if (len > 0 && len + flen > STORE_ZFRAME_TARGET)
			break;
		rv = ar_zfill(fd, in, incap, have, off, len + flen, fsize);
		if (rv != VIGIL_OK)
			return rv;
		len += flen;
		recs++;
	}
	*ret_len = len;
	*ret_records = recs;
	return VIGIL_OK;
}

/*
 * base.log -> base.log.zst: compress to a .tmp, sync, rename, then remove
 * the original. A crash at any point leaves one complete readable form.
 * The file is a sequence of independent zstd frames and a frame table
 * (archive_int.h, docs/archive.md "Compressed segments"), so that damage
 * costs the records of one frame, not the rest of the segment.
 */
static vigil_err
ar_compress(const char *dir, const char *base, store_diag *reterr)
{
	char src[PATH_MAX], tmp[PATH_MAX], dst[PATH_MAX];
	ZSTD_CCtx *cc = NULL;
	uint8_t *in = NULL, *outb = NULL, *tab = NULL;
	size_t incap = 0, have = 0, outcap = 0, tablen = 0, tabcap = 0;
	uint32_t nframes = 0;
	uint64_t off = 0, fsize;
	struct stat st;
	int ifd = -1, ofd = -1;
	vigil_err rv = VIGIL_OK;

	snprintf(src, sizeof src, "%s/%s.log", dir, base);
	snprintf(tmp, sizeof tmp, "%s/%s.log.zst.tmp", dir, base);
	snprintf(dst, sizeof dst, "%s/%s.log.zst", dir, base);
	cc = ZSTD_createCCtx();
	if (cc == NULL) {
		rv = VIGIL_ENOMEM;
		goto out;
	}
	ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel, AR_ZSTD_LEVEL);
	ZSTD_CCtx_setParameter(cc, ZSTD_c_checksumFlag, 1);
	ZSTD_CCtx_setParameter(cc, ZSTD_c_contentSizeFlag, 1);
	ifd = open(src, O_RDONLY | O_CLOEXEC);
	if (ifd < 0 || fstat(ifd, &st) != 0) {
		rv = vigil_err_from_errno(errno);
		store_diag_set(reterr, "%s: cannot open for compression: %s", src, strerror(errno));
		goto out;
	}
	fsize = (uint64_t)st.st_size;
	ofd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (ofd < 0) {
		rv = vigil_err_from_errno(errno);
		store_diag_set(reterr, "%s: cannot create: %s", tmp, strerror(errno));
		goto out;
	}
	while (off < fsize) {
		size_t len, csize, bound;
		uint32_t recs;
		struct iovec iov;

		rv = ar_zchunk(ifd, &in, &incap, &have, off, fsize, &len, &recs);
		if (rv != VIGIL_OK) {
			store_diag_set(reterr, "%s: read: %s", src, rv == VIGIL_ENOMEM ? "out of memory" :
			    strerror(errno));
			goto out;
		}
		bound = ZSTD_compressBound(len);
		if (bound > outcap) {
			uint8_t *nb = realloc(outb, bound);

			if (nb == NULL) {
				rv = VIGIL_ENOMEM;
				goto out;
			}
			outb = nb;
			outcap = bound;
		}
		csize = ZSTD_compress2(cc, outb, outcap, in, len);
		if (ZSTD_isError(csize)) {
			rv = VIGIL_EINTERNAL;
			store_diag_set(reterr, "%s: zstd: %s", src, ZSTD_getErrorName(csize));
			goto out;
		}
		iov = (struct iovec){ outb, csize };
		if (ar_writev_all(ofd, &iov, 1) != VIGIL_OK) {
			rv = VIGIL_EIO;
			store_diag_set(reterr, "%s: write: %s", tmp, strerror(errno));
			goto out;
		}
		if (tablen + STORE_ZTAB_ENTRY + STORE_ZTAB_TAIL + 8 > tabcap) {
			size_t ncap = tabcap ? tabcap * 2 : 4096;
			uint8_t *nb = realloc(tab, ncap);

			if (nb == NULL) {
				rv = VIGIL_ENOMEM;
				goto out;
			}
			tab = nb;
			tabcap = ncap;
			if (tablen == 0)
				tablen = 8; /* the skippable frame's header, filled below */
		}
		store_put_le32(tab + tablen, (uint32_t)csize);
		store_put_le32(tab + tablen + 4, (uint32_t)len);
		store_put_le32(tab + tablen + 8, recs);
		tablen += STORE_ZTAB_ENTRY;
		nframes++;
		memmove(in, in + len, have - len);
		have -= len;
		off += len;
	}
	if (nframes > 0) {
		struct iovec iov;

		store_put_le32(tab + tablen, nframes);
		store_put_le32(tab + tablen + 4, STORE_ZTAB_VERSION);
		store_put_le32(tab + tablen + 8, store_crc32c(0, tab + 8, tablen + 8 - 8));
		memcpy(tab + tablen + 12, STORE_ZTAB_TAG, 4);
		tablen += STORE_ZTAB_TAIL;
		store_put_le32(tab, STORE_ZTAB_MAGIC);
		store_put_le32(tab + 4, (uint32_t)(tablen - 8));
		iov = (struct iovec){ tab, tablen };
		if (ar_writev_all(ofd, &iov, 1) != VIGIL_OK) {
			rv = VIGIL_EIO;
			store_diag_set(reterr, "%s: write: %s", tmp, strerror(errno));
			goto out;
		}
	}
	if (fdatasync(ofd) != 0 || close(ofd) != 0) {
		ofd = -1;
		rv = VIGIL_EIO;
		store_diag_set(reterr, "%s: sync: %s", tmp, strerror(errno));
		goto out;
	}
	ofd = -1;
	if (rename(tmp, dst) != 0 || store_fsync_dir(dir) != VIGIL_OK) {
		rv = VIGIL_EIO;
		store_diag_set(reterr, "%s: cannot rename into place: %s", dst, strerror(errno));
		goto out;
	}
	if (unlink(src) != 0 || store_fsync_dir(dir) != VIGIL_OK) {
		rv = VIGIL_EIO;
		store_diag_set(reterr, "%s: cannot remove after compression: %s", src, strerror(errno));
		goto out;
	}
out:
	if (ofd >= 0) {
		close(ofd);
		unlink(tmp);
	} else if (rv != VIGIL_OK) {
		unlink(tmp);
	}
	if (ifd >= 0)
		close(ifd);
	ZSTD_freeCCtx(cc);
	free(in);
	free(outb);
	free(tab);
	return rv;
}

static vigil_err
ar_remove_segment(store_archive *ar, const char *base, store_diag *reterr)
{
	static const char *sfx[] = { ".log", ".log.zst", ".idx" }; /* index last */
	char path[PATH_MAX];

	for (size_t k = 0; k < 3; k++) {
		snprintf(path, sizeof path, "%s/%s%s", ar->dir, base, sfx[k]);
		if (unlink(path) != 0 && errno != ENOENT) {
			store_diag_at(reterr, path, VIGIL_NOPOS, NULL,
			    "cannot remove: %s", strerror(errno));
			return VIGIL_EIO;
		}
	}
	pthread_mutex_lock(&ar->mu);
	if (ar->nsegments > 0)
		ar->nsegments--;
	pthread_mutex_unlock(&ar->mu);
	return VIGIL_OK;
}

vigil_err
store_archive_rotate(store_archive *ar, store_diag *reterr)
{
	vigil_err rv;

	pthread_mutex_lock(&ar->mu);
	rv = atomic_load(&ar->failing) ? ar_repair(ar) : VIGIL_OK;
	if (rv == VIGIL_OK)
		rv = ar_segment_close(ar);
	if (rv != VIGIL_OK) {
		store_archive_health h;

		store_archive_get_health(ar, &h);
		store_diag_set(reterr, "%s: closing segment %s: %s %s: %s", ar->dir, ar->base, h.op,
		    h.file, strerror(h.err));
	}
	pthread_mutex_unlock(&ar->mu);
	return rv;
}

vigil_err
store_archive_maintain(store_archive *ar, store_diag *reterr)
{
	store_seg_ent *ents = NULL;
	char open_base[STORE_SEG_BASE_LEN + 1];
	size_t n = 0;
	int64_t now;
	vigil_err rv = VIGIL_OK;

	pthread_mutex_lock(&ar->maint_mu);
	pthread_mutex_lock(&ar->mu);
	now = ar->now(ar->now_arg);
	/* A failing archive is repaired and probed here too, so that an idle
	 * server heals; faults are reported by store_archive_get_health, not
	 * by this call's result. */
	if (atomic_load(&ar->failing))
		ar_probe(ar, now);
	else
		ar_pend_retry(ar);
	/* The day's segment is closed; the next append creates the next one
	 * (a failure to close is a fault, reported as above). */
	if (!atomic_load(&ar->failing) && ar->fd >= 0 && ar_day(now) > ar->seg_day)
		(void)ar_segment_close(ar);
	memcpy(open_base, ar->base, sizeof open_base);
	pthread_mutex_unlock(&ar->mu);
	if (!ar->opts.compress_closed && ar->opts.retention_days == 0)
		goto out;
	rv = store_seg_list(ar->dir, &ents, &n, reterr);
	if (rv != VIGIL_OK)
		goto out;
	for (size_t i = 0; i < n; i++) {
		store_seg_ent *e = &ents[i];
		store_seg_index idx;

		/* Only closed segments (they have an index); never the open one. */
		if (!e->has_idx || strcmp(e->base, open_base) == 0)
			continue;
		if (ar->opts.retention_days > 0 &&
		    store_seg_index_read(ar->dir, e->base, &idx) == VIGIL_OK &&
		    idx.closed_at_ms < now - (int64_t)ar->opts.retention_days * VIGIL_MS_PER_DAY) {
			rv = ar_remove_segment(ar, e->base, reterr);
			if (rv != VIGIL_OK)
				goto out;
			continue;
		}
		if (ar->opts.compress_closed && e->has_log) {
			rv = ar_compress(ar->dir, e->base, reterr);
			if (rv != VIGIL_OK)
				goto out;
		}
	}
out:
	pthread_mutex_unlock(&ar->maint_mu);
	free(ents);
	return rv;
}
