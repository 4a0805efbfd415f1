/* SPDX-License-Identifier: MIT */
/*
 * store/archive.c - the archive writer: one process per directory (flock),
 * many appending threads, rotation by size and UTC day, group commit for
 * fsync=always, a sync thread for fsync=interval, faults that heal (a
 * failed write, sync or segment creation leaves nothing partial, refuses
 * appends for a backoff, then is repaired and retried;
 * store_archive_get_health). Opening and recovery of a torn tail are in
 * archive_open.c, compression and retention in archive_maint.c, the object
 * they share in private/archive_w_int.h. Guarantees and on-disk format:
 * docs/archive.md.
 *
 * Locking: q_mu guards the queue of records not yet written (it assigns
 * sequence numbers: a record's frame is built and copied there under it);
 * mu orders writes (the open segment, rotation); sync_mu guards the
 * group-commit state; f_mu, a leaf, the fault state. Order is mu, then
 * q_mu or sync_mu, then f_mu. Group write: an
 * appender that finds its record not yet written takes mu and becomes the
 * leader: it takes the whole queue (every record enqueued meanwhile, by any
 * thread) and copies it into the journal, a shared mapping drained into the
 * open segment with pwrite(2) ("Segments" below; pwrite(2) at once with
 * fsync=always, or if the segment could not be preallocated); appenders
 * that queued behind it find their records written when they get mu and
 * return. A record is acknowledged (store_archive_write returns) only once
 * the copy holding it is complete: it is then in the page cache and
 * survives kill -9. With
 * fsync=always the first waiter to find no sync running becomes the sync
 * leader: it fdatasyncs for everyone written so far while later waiters
 * sleep on sync_cv.
 */
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
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "archive_w_int.h"
#include "file.h"
#include "vec.h"

int64_t
ar_default_now(void *arg)
{
	struct timespec ts;

	(void)arg;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
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
bool
store_archive_refusing(store_archive *ar)
{
	bool r;

	if (!atomic_load(&ar->failing))
		return false;
	pthread_mutex_lock(&ar->f_mu);
	r = atomic_load(&ar->failing) && vigil_mono_ns() < ar->fault.retry_ns;
	pthread_mutex_unlock(&ar->f_mu);
	return r;
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

/* ar_bad_add with f_mu held, for a closed range. */
static void
ar_bad_ring_add(store_archive *ar, uint64_t lo, uint64_t hi, int kind)
{
	unsigned n = atomic_load(&ar->nbad);

	if (n >= AR_BAD_RING && ar->bad[n % AR_BAD_RING].hi > ar->bad_evicted_hi)
		ar->bad_evicted_hi = ar->bad[n % AR_BAD_RING].hi;
	ar->bad[n % AR_BAD_RING] = (ar_bad){ .lo = lo, .hi = hi, .kind = kind };
	atomic_store(&ar->nbad, n + 1);
}

/* Remembers that the records (lo, hi] were dropped unwritten
 * (AR_BAD_DROPPED) or written but not synced (AR_BAD_UNSYNCED; hi
 * UINT64_MAX until the segment is rotated: kept apart, as bad_open, until
 * then), for the threads waiting on them. The ring keeps the last
 * AR_BAD_RING closed ranges: a sequence number at or below one pushed out
 * counts as lost (a thread would have to wait through 256 failed attempts
 * to ask). */
static void
ar_bad_add(store_archive *ar, uint64_t lo, uint64_t hi, int kind)
{
	pthread_mutex_lock(&ar->f_mu);
	if (kind == AR_BAD_UNSYNCED && hi == UINT64_MAX) {
		if (!atomic_load(&ar->bad_open) || lo < ar->bad_open_lo)
			ar->bad_open_lo = lo;
		atomic_store(&ar->bad_open, true);
	} else {
		ar_bad_ring_add(ar, lo, hi, kind);
	}
	pthread_mutex_unlock(&ar->f_mu);
}

/* Ends the open AR_BAD_UNSYNCED range at hi (its segment is closed). */
static void
ar_bad_close(store_archive *ar, uint64_t hi)
{
	pthread_mutex_lock(&ar->f_mu);
	if (atomic_load(&ar->bad_open)) {
		ar_bad_ring_add(ar, ar->bad_open_lo, hi, AR_BAD_UNSYNCED);
		atomic_store(&ar->bad_open, false);
	}
	pthread_mutex_unlock(&ar->f_mu);
}

static bool
ar_bad_has(store_archive *ar, uint64_t seq, int kind)
{
	unsigned n = atomic_load(&ar->nbad);
	bool r = false;

	if (n == 0 && !atomic_load(&ar->bad_open))
		return false;
	pthread_mutex_lock(&ar->f_mu);
	if (seq <= ar->bad_evicted_hi)
		r = true;
	if (kind == AR_BAD_UNSYNCED && atomic_load(&ar->bad_open) && seq > ar->bad_open_lo)
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
	target = atomic_load(&ar->disk_seq);
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

/* Returns once record seq is synced: VIGIL_OK, or VIGIL_EIO if the sync
 * that was to cover it failed. */
static vigil_err
ar_sync_upto(store_archive *ar, uint64_t seq)
{
	vigil_err rv = VIGIL_OK;

	pthread_mutex_lock(&ar->sync_mu);
	if (ar_bad_has(ar, seq, AR_BAD_UNSYNCED)) /* even if later syncs passed it */
		rv = VIGIL_EIO;
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

/* The interval thread: every fsync_interval_ms, writes the journal out
 * (ar_jr_drain) and, with fsync=interval, fdatasyncs what is in the file.
 * With fsync=never it only drains, so readers see every record within an
 * interval. */
void *
ar_interval_main(void *arg)
{
	store_archive *ar = arg;
	struct timespec ts;
	uint32_t ms = ar->opts.fsync_interval_ms ? ar->opts.fsync_interval_ms : 50;

	pthread_mutex_lock(&ar->thr_mu);
	while (!ar->stopping) {
		vigil_deadline_after(CLOCK_MONOTONIC, &ts, ms);
		while (!ar->stopping &&
		    pthread_cond_timedwait(&ar->thr_cv, &ar->thr_mu, &ts) != ETIMEDOUT)
			;
		if (ar->stopping)
			break;
		pthread_mutex_unlock(&ar->thr_mu);
		pthread_mutex_lock(&ar->mu);
		if (ar->seg_jr && !atomic_load(&ar->failing))
			(void)ar_jr_drain(ar);
		pthread_mutex_unlock(&ar->mu);
		if (ar->opts.fsync == STORE_FSYNC_INTERVAL)
			(void)ar_sync_upto(ar, atomic_load(&ar->disk_seq));
		pthread_mutex_lock(&ar->thr_mu);
	}
	pthread_mutex_unlock(&ar->thr_mu);
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Segments                                                            */

/* The journal (docs/archive.md, "The journal"). Frames are copied into a
 * shared mapping of dir/JOURNAL, mapped once, at the open segment's offset
 * modulo its size, and written into the segment file from there with
 * pwrite(2), in runs of AR_JOURNAL_DRAIN bytes or at every interval. The
 * copy is what acknowledges a record: the journal is in the page cache,
 * so kill -9 loses nothing, and the next open writes what the segment
 * lacks (archive_open.c, ar_jr_recover). Its pages stay mapped: a store
 * into a page mapped for the first time, as every page of a growing
 * mapping of the segment was, costs a page fault, and several
 * microseconds on a virtual machine. */

/* Maps the journal (after recovery read it): jr_len bytes, at least two of
 * the largest frames. Not with fsync=always, where every commit waits for
 * the disk anyway, or if it cannot be made: segments are then written
 * with pwrite(2) at once. */
void
ar_jr_open(store_archive *ar)
{
	char path[PATH_MAX];
	size_t len = 2 * ((size_t)STORE_FRAME_HDR + ar->opts.max_record_bytes);
	struct stat st;
	void *p;
	int fd;

	if (ar->opts.fsync == STORE_FSYNC_ALWAYS)
		return;
	if (len < AR_JOURNAL_MIN)
		len = AR_JOURNAL_MIN;
	len = (len + AR_PREALLOC_ALIGN - 1) / AR_PREALLOC_ALIGN * AR_PREALLOC_ALIGN;
	snprintf(path, sizeof path, "%s/%s", ar->dir, STORE_JOURNAL_NAME);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
	if (fd < 0)
		return;
	/* Its blocks are allocated before it is mapped: a store into a page
	 * of a full file system with none would be SIGBUS. */
	if (fstat(fd, &st) != 0 || ((uint64_t)st.st_size != len && ftruncate(fd, (off_t)len) != 0) ||
	    posix_fallocate(fd, 0, (off_t)len) != 0) {
		close(fd);
		return;
	}
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (p == MAP_FAILED)
		return;
	ar->jr = p;
	ar->jr_len = len;
}

/* Preallocates the open segment past its data to at least end, in whole
 * steps (mu held), keeping its size. False if the file system refuses
 * (ENOSPC, EFBIG, no support) or the process's file size limit
 * (RLIMIT_FSIZE, which fallocate does not apply) is below the step: the
 * drain of what the journal holds must not fail for want of room. */
static bool
ar_prealloc(store_archive *ar, uint64_t end)
{
	uint64_t nend = (end + AR_PREALLOC_STEP - 1) / AR_PREALLOC_STEP * AR_PREALLOC_STEP;
	struct rlimit rl;

	if (nend <= ar->alloc_end)
		return true;
	if (getrlimit(RLIMIT_FSIZE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    nend > (uint64_t)rl.rlim_cur)
		return false;
	if (fallocate(ar->fd, FALLOC_FL_KEEP_SIZE, (off_t)ar->alloc_end,
	    (off_t)(nend - ar->alloc_end)) != 0)
		return false;
	ar->alloc_end = nend;
	return true;
}

/* The open segment (its file holds file_end bytes of frames) is journaled
 * if there is a journal and its file could be preallocated (mu held);
 * otherwise it is written with pwrite(2) as it goes, and
 * prealloc_failures counts it. */
void
ar_jr_seg_open(store_archive *ar)
{
	ar->disk_end = ar->file_end;
	ar->alloc_end = ar->file_end;
	ar->seg_jr = false;
	if (ar->jr == NULL)
		return;
	if (ar_prealloc(ar, ar->file_end + 1))
		ar->seg_jr = true;
	else
		ar->prealloc_failures++;
}

/* Writes the journal's frames of the open segment into its file (mu held):
 * one pwrite(2) per contiguous run, at disk_end. The file was preallocated
 * past them, so this takes no new block; its size grows as the bytes land,
 * so a reader sees a frame cut short by the end of the file, never a frame
 * with a hole (reader.c). A failure is a fault: the part written is cut
 * off again and the frames stay in the journal, acknowledged, for the next
 * drain (after the backoff, ar_repair) or the next open. */
vigil_err
ar_jr_drain(store_archive *ar)
{
	uint64_t off = ar->disk_end;
	char name[STORE_SEG_NAME_MAX];
	int e;

	while (off < ar->file_end) {
		size_t pos = (size_t)(off % ar->jr_len);
		size_t k = ar->jr_len - pos;

		if (k > ar->file_end - off)
			k = (size_t)(ar->file_end - off);
		if (ar_pwrite_all(ar->fd, ar->jr + pos, k, off) != VIGIL_OK) {
			e = errno;
			if (ftruncate(ar->fd, (off_t)ar->disk_end) != 0)
				ar->need_trunc = true;
			else /* the truncation gave the preallocated blocks back */
				ar->alloc_end = ar->disk_end;
			snprintf(name, sizeof name, "%s.log", ar->base);
			ar_fail(ar, e, "write", name, false);
			return VIGIL_EIO;
		}
		off += k;
	}
	if (off > ar->disk_end) {
		ar->disk_end = off;
		atomic_store(&ar->disk_seq, ar->jr_seq);
	}
	return VIGIL_OK;
}

/* Ends the open segment's journaling (mu held): drains it and gives back
 * the preallocated blocks past its frames (ftruncate to its own size does
 * that). VIGIL_EIO if the drain fails; the segment stays as it was. */
vigil_err
ar_jr_seg_drop(store_archive *ar)
{
	if (!ar->seg_jr)
		return VIGIL_OK;
	if (ar_jr_drain(ar) != VIGIL_OK)
		return VIGIL_EIO;
	ar->seg_jr = false;
	if (ftruncate(ar->fd, (off_t)ar->file_end) != 0)
		ar->need_trunc = true;
	ar->alloc_end = ar->file_end;
	return VIGIL_OK;
}

/* Copies frames ent[0..n) (bytes src[0..)) into the journal at the open
 * segment's offset off, wrapping at its end. Each frame's magic is stored
 * last, so that the journal holds, where a frame starts, either all of it
 * or not its magic: kill -9 mid-copy leaves a frame the next open does not
 * take (ar_jr_recover). */
static void
ar_jr_copy(store_archive *ar, uint64_t off, const uint8_t *src, const ar_qent *ent, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		uint32_t flen = ent[i].len;
		size_t pos = (size_t)(off % ar->jr_len), first = ar->jr_len - pos;

		if (first >= flen) {
			memcpy(ar->jr + pos + 4, src + 4, flen - 4);
		} else if (first > 4) {
			memcpy(ar->jr + pos + 4, src + 4, first - 4);
			memcpy(ar->jr, src + first, flen - first);
		} else {
			/* the magic itself wraps: bytes 4.. all go to the start */
			memcpy(ar->jr + (4 - first), src + 4, flen - 4);
		}
		atomic_thread_fence(memory_order_release);
		for (size_t j = 0; j < 4; j++)
			ar->jr[(pos + j) % ar->jr_len] = src[j];
		off += flen;
		src += flen;
	}
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

void
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
	if (ar_jr_seg_drop(ar) != VIGIL_OK)
		return VIGIL_EIO; /* the drain failed, and said so */
	if (ar->need_trunc && ftruncate(ar->fd, (off_t)ar->file_end) != 0) {
		e = errno;
		ar->need_trunc = true;
		ar_fail(ar, e, "truncate", name, false);
		return VIGIL_EIO;
	}
	ar->need_trunc = false;
	pthread_mutex_lock(&ar->sync_mu);
	while (ar->syncing)
		pthread_cond_wait(&ar->sync_cv, &ar->sync_mu);
	w = atomic_load(&ar->disk_seq);
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
vigil_err
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
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	if (fd < 0) {
		*ret_errno = errno;
		*ret_op = "create segment";
		return VIGIL_EIO;
	}
	if (ar->opts.fsync != STORE_FSYNC_NEVER && vigil_fsync_dir(ar->dir) != VIGIL_OK) {
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
	ar_jr_seg_open(ar);
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
		ar_jr_seg_open(ar);
		return VIGIL_OK;
	}
	ar_seg_finish(ar);
	ar_seg_install(ar, fd, base, ar_day(now));
	ar_rot_done(ar);
	return VIGIL_OK;
}

/* ------------------------------------------------------------------ */
/* Appending                                                           */

/* Writes p[0..len) at offset off of fd, however many calls it takes. The
 * open segment is written only this way (and through its mapping), at
 * file_end, never by the descriptor's offset: it is not opened O_APPEND,
 * with which Linux's pwrite would ignore off. */
vigil_err
ar_pwrite_all(int fd, const void *p, size_t len, uint64_t off)
{
	const uint8_t *b = p;

	while (len > 0) {
		ssize_t n = pwrite(fd, b, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return VIGIL_EIO;
		b += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return VIGIL_OK;
}

void
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
	vigil_err rv = vigil_array_reserve(&q->buf, &q->cap, q->len + flen, 1, AR_QUEUE_INITIAL,
	    SIZE_MAX);

	if (rv != VIGIL_OK)
		return rv;
	return vigil_array_reserve(&q->ent, &q->entcap, (size_t)q->n + 1, sizeof *q->ent, 256,
	    UINT32_MAX);
}

/* Accounts for frames ent[0..n) (len bytes), now at the open segment's
 * file_end (mu held). */
static void
ar_account(store_archive *ar, const ar_qent *ent, uint32_t n, size_t len)
{
	ar->file_end += len;
	for (uint32_t i = 0; i < n; i++) {
		store_seg_index_add(&ar->seg, ent[i].seq, ent[i].event_time_ms);
		if (ent[i].event_time_ms > ar->max_event_ms)
			ar->max_event_ms = ent[i].event_time_ms;
	}
	ar->records += n;
	ar->bytes += len;
}

/* Copies frames ent[0..n) (bytes p[0..)) into the journal (mu held),
 * draining it first whenever the next frame would overwrite frames not in
 * the file yet, and after them once AR_JOURNAL_DRAIN bytes wait. A frame
 * is at most half the journal, so it always fits after a drain. VIGIL_EIO
 * if a drain that made room failed: the frames copied before it are
 * acknowledged (written_seq), the rest are not. */
static vigil_err
ar_jr_write(store_archive *ar, const uint8_t *p, const ar_qent *ent, uint32_t n)
{
	uint32_t i0 = 0;
	size_t   run = 0;

	for (uint32_t i = 0; i <= n; i++) {
		uint32_t flen = i < n ? ent[i].len : 0;

		if (i == n || ar->file_end + run + flen - ar->disk_end > ar->jr_len) {
			if (i > i0) {
				ar_jr_copy(ar, ar->file_end, p, ent + i0, i - i0);
				ar_account(ar, ent + i0, i - i0, run);
				ar->jr_seq = ent[i - 1].seq;
				atomic_store(&ar->written_seq, ar->jr_seq);
				p += run;
			}
			run = 0;
			i0 = i;
			if (i < n && ar_jr_drain(ar) != VIGIL_OK)
				return VIGIL_EIO;
		}
		run += flen;
	}
	if (ar->file_end - ar->disk_end >= AR_JOURNAL_DRAIN)
		(void)ar_jr_drain(ar); /* a failure is a fault; the frames stay */
	return VIGIL_OK;
}

/* Writes frames ent[0..n) (bytes p[0..len)) to the open segment and
 * accounts for them (mu held): into the journal if the segment is
 * journaled, else with pwrite(2). A failed write(2) is a fault and leaves
 * the file as it was: what part of it reached the file is cut off again
 * (or, if that fails too, by the repair before the next write), so no
 * reader ever finds a partial frame there that more frames follow. */
static vigil_err
ar_write_chunk(store_archive *ar, const uint8_t *p, size_t len, const ar_qent *ent, uint32_t n)
{
	char name[STORE_SEG_NAME_MAX];
	int e;

	if (n == 0)
		return VIGIL_OK;
	if (ar->seg_jr && ar->file_end + len > ar->alloc_end &&
	    !ar_prealloc(ar, ar->file_end + len)) {
		/* No room to preallocate: the journal is written out and the
		 * rest of the segment is written as it goes, so that a full disk
		 * fails an append, never a drain of acknowledged records. */
		ar->prealloc_failures++;
		if (ar_jr_seg_drop(ar) != VIGIL_OK)
			return VIGIL_EIO;
	}
	if (ar->seg_jr)
		return ar_jr_write(ar, p, ent, n);
	if (ar_pwrite_all(ar->fd, p, len, ar->file_end) != VIGIL_OK) {
		e = errno;
		if (ftruncate(ar->fd, (off_t)ar->file_end) != 0)
			ar->need_trunc = true;
		snprintf(name, sizeof name, "%s.log", ar->base);
		ar_fail(ar, e, "write", name, false);
		return VIGIL_EIO;
	}
	ar_account(ar, ent, n, len);
	ar->disk_end = ar->file_end;
	atomic_store(&ar->disk_seq, ent[n - 1].seq);
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
vigil_err
ar_repair(store_archive *ar)
{
	char name[STORE_SEG_NAME_MAX];
	bool doubt;

	ar_pend_retry(ar);
	if (ar->fd >= 0 && ar->need_trunc) {
		if (ftruncate(ar->fd, (off_t)ar->disk_end) != 0) {
			int e = errno;

			snprintf(name, sizeof name, "%s.log", ar->base);
			ar_fail(ar, e, "truncate", name, false);
			return VIGIL_EIO;
		}
		ar->need_trunc = false;
		if (ar->seg_jr)
			ar->alloc_end = ar->disk_end; /* the truncation gave them back */
	}
	/* acknowledged frames a failed drain left in the journal */
	if (ar->fd >= 0 && ar->seg_jr && ar_jr_drain(ar) != VIGIL_OK)
		return VIGIL_EIO;
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
void
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
	keep = ar->disk_end; /* the journal was drained by the repair */
	rc = posix_fallocate(ar->fd, (off_t)keep, AR_PROBE_BYTES);
	if (rc == EOPNOTSUPP || rc == EINVAL) {
		/* no preallocation here: write zeros instead (one page) */
		static const uint8_t zeros[4096];

		rc = pwrite(ar->fd, zeros, sizeof zeros, (off_t)keep) == (ssize_t)sizeof zeros ? 0 :
		    errno;
	}
	if (ftruncate(ar->fd, (off_t)keep) != 0)
		ar->need_trunc = true;
	ar->alloc_end = keep; /* the preallocation went with the cut */
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
vigil_err
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
		if (store_archive_refusing(ar)) {
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
		if (store_archive_refusing(ar)) {
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
store_archive_drain(store_archive *ar)
{
	vigil_err rv = VIGIL_OK;

	pthread_mutex_lock(&ar->mu);
	if (ar->seg_jr && ar->disk_end < ar->file_end)
		rv = ar_jr_drain(ar);
	pthread_mutex_unlock(&ar->mu);
	return rv;
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
