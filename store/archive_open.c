/* SPDX-License-Identifier: MIT */
/*
 * store/archive_open.c - the archive writer's open and close (archive.h): the
 * directory lock, recovery of a torn tail (truncated, counted) and of
 * files a crash left half made, the sync thread of fsync=interval, and the
 * counters. Guarantees: docs/archive.md.
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
#include <time.h>
#include <unistd.h>

#include "archive_w_int.h"
#include "file.h"

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

/*
 * The frames of the open segment (fd, path; its valid frames end at *end,
 * the last sequence number on disk is *last_seq) that reached the journal
 * and not the file: a crash between an append's copy, which acknowledged
 * it, and the drain (archive.c, ar_jr_drain). A frame of the segment is in
 * the journal at its offset modulo the journal's size, so they are read
 * from *end on as long as each is whole (its CRC; a frame whose copy was
 * cut short lacks its magic, stored last) and newer than the one before:
 * what an earlier lap left there has a sequence number already on disk.
 * They are appended to the file (and synced, so the journal may be
 * overwritten), *end, *last_seq and idx move past them, and *ret_n counts
 * them.
 */
static vigil_err
ar_jr_recover(store_archive *ar, int fd, const char *path, uint64_t *end, uint64_t *last_seq,
    store_seg_index *idx, uint64_t *ret_n, store_diag *reterr)
{
	char jpath[PATH_MAX];
	uint8_t *buf = NULL;
	size_t cap = 0, used;
	struct stat st;
	store_record r;
	uint64_t n = 0;
	vigil_err rv = VIGIL_OK, took;
	bool special;
	int jfd;

	snprintf(jpath, sizeof jpath, "%s/%s", ar->dir, STORE_JOURNAL_NAME);
	jfd = vigil_open_regular(jpath, &special, &st);
	if (jfd < 0 && special) {
		store_diag_at(reterr, jpath, VIGIL_NOPOS, NULL, "not a regular file");
		return VIGIL_EINVAL;
	}
	if (jfd < 0) {
		*ret_n = 0;
		return VIGIL_OK; /* none: nothing was journaled */
	}
	while ((took = store_journal_take(jfd, (uint64_t)st.st_size, *end, &buf, &cap, &r,
	    &used)) != VIGIL_ENOTFOUND) {
		if (took != VIGIL_OK) {
			rv = took;
			break;
		}
		if (r.seq <= *last_seq)
			break;
		if (ar_pwrite_all(fd, buf, used, *end) != VIGIL_OK) {
			rv = VIGIL_EIO;
			store_diag_at(reterr, path, VIGIL_NOPOS, NULL,
			    "cannot write the journal's records at offset %llu: %s",
			    (unsigned long long)*end, strerror(errno));
			break;
		}
		store_seg_index_add(idx, r.seq, r.event_time_ms);
		*end += used;
		*last_seq = r.seq;
		n++;
	}
	if (rv == VIGIL_OK && n > 0 && fdatasync(fd) != 0) {
		rv = VIGIL_EIO;
		store_diag_at(reterr, path, VIGIL_NOPOS, NULL, "cannot sync the journal's records: %s",
		    strerror(errno));
	}
	*ret_n = n;
	free(buf);
	close(jfd);
	return rv;
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
			fd = open(path, O_RDWR | O_CLOEXEC);
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
			if (e->first_seq > 0 && e->first_seq - 1 > last_seq)
				last_seq = e->first_seq - 1;
			rv = ar_jr_recover(ar, fd, path, &valid_end, &last_seq, &idx,
			    &rec->journal_records, reterr);
			if (rv != VIGIL_OK) {
				close(fd);
				goto out;
			}
			if (idx.records > 0 && idx.max_event_ms > ar->max_event_ms)
				ar->max_event_ms = idx.max_event_ms;
			ar->fd = fd;
			ar->sync_fd = fd;
			snprintf(ar->sync_name, sizeof ar->sync_name, "%s.log", e->base);
			memcpy(ar->base, e->base, sizeof ar->base);
			ar->seg_day = e->day;
			ar->seg_size = valid_end;
			ar->file_end = valid_end;
			ar->seg = idx;
		}
	}
	ar->next_seq = last_seq + 1;
	atomic_store(&ar->written_seq, last_seq);
	atomic_store(&ar->disk_seq, last_seq);
	ar->jr_seq = last_seq;
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
	ar_jr_open(ar);
	if (ar->fd >= 0)
		ar_jr_seg_open(ar);
	if (ar->opts.fsync == STORE_FSYNC_INTERVAL || ar->jr != NULL) {
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
	/* Records enqueued and never flushed (no caller does that): write them. */
	if (ar->q.n > 0 && !atomic_load(&ar->failing))
		(void)ar_flush_upto(ar, ar->q.ent[ar->q.n - 1].seq);
	if (ar->fd >= 0) {
		/* The segment stays open (no index): the next open continues it. */
		if (ar_jr_seg_drop(ar) == VIGIL_OK && ar->need_trunc)
			(void)ftruncate(ar->fd, (off_t)ar->file_end);
		/* if the drain failed, the next open takes the journal's
		 * frames (ar_jr_recover) */
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
	pthread_mutex_destroy(&ar->thr_mu);
	pthread_cond_destroy(&ar->thr_cv);
	pthread_mutex_destroy(&ar->maint_mu);
	pthread_mutex_destroy(&ar->f_mu);
	ar_queue_fini(&ar->q);
	ar_queue_fini(&ar->wq);
	if (ar->jr != NULL)
		munmap(ar->jr, ar->jr_len);
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
