/* SPDX-License-Identifier: MIT */
/*
 * store/private/archive_w_int.h - private to store/: the archive writer's
 * object (struct store_archive) and what its three files share: archive.c
 * (appends, group commit, faults, segments), archive_open.c (recovery,
 * open, close) and archive_maint.c (compression, retention, repair). The
 * locking order is described at the top of archive.c.
 */
#ifndef VIGIL_STORE_ARCHIVE_W_INT_H
#define VIGIL_STORE_ARCHIVE_W_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "archive_int.h"

#define AR_MIN_SEGMENT   4096u
#define AR_ZSTD_LEVEL    3
#define AR_COPY_CHUNK    (1u << 20)
#define AR_QUEUE_INITIAL (64u << 10)
/* Queued bytes beyond which an appender writes the queue before adding to
 * it (callers flush right after enqueueing, so it is rarely reached). */
#define AR_QUEUE_MAX     (64u << 20)
/* The open segment is preallocated in steps of this many bytes past its
 * end (fallocate FALLOC_FL_KEEP_SIZE: the file's size stays that of its
 * frames), so that writing out the journal never needs a new block. */
#define AR_PREALLOC_STEP  (4u << 20)
#define AR_PREALLOC_ALIGN 4096u
/* The journal (archive.md, "The journal"): a file of the archive directory,
 * mapped once, that appends copy frames into at the open segment's offset
 * modulo its size; the frames reach the segment file with one pwrite(2)
 * per AR_JOURNAL_DRAIN bytes, by the appender that crosses it, and at
 * every interval. At least AR_JOURNAL_MIN, and two of the largest frames. */
#define AR_JOURNAL_MIN    (1u << 20)
#define AR_JOURNAL_DRAIN  (256u << 10)

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
	uint32_t n;
	size_t   entcap;
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
	uint64_t           disk_end;   /* of those, in the file; [disk_end, file_end) only in
	                                  the journal, at offset % jr_len */
	uint64_t           alloc_end;  /* preallocated past the data (seg_jr only) */
	bool               seg_jr;     /* the open segment goes through the journal */
	uint8_t           *jr;         /* the journal's shared mapping, or NULL: write(2) */
	size_t             jr_len;
	uint64_t           jr_seq;     /* last sequence number copied into it */
	uint64_t           prealloc_failures; /* segments written with write(2): no preallocation */
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
	atomic_uint_least64_t written_seq; /* in the file or the journal: acknowledged */
	atomic_uint_least64_t disk_seq;    /* in the file: what a sync covers */

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
	/* the open segment's unsynced range (lo, its end], kept out of the
	 * ring until the segment closes: pushed out while open, it would make
	 * every later sequence number count as lost */
	atomic_bool        bad_open;   /* written under f_mu, read without it too */
	uint64_t           bad_open_lo;

	pthread_mutex_t    sync_mu;    /* group commit */
	pthread_cond_t     sync_cv;
	bool               syncing;
	bool               sync_doubt; /* a sync of sync_fd failed: not synced again, rotate */
	char               sync_name[STORE_SEG_NAME_MAX]; /* file name of sync_fd */
	int                sync_fd;    /* == fd, read under sync_mu */
	uint64_t           synced_seq;
	uint64_t           syncs;

	pthread_mutex_t    thr_mu;     /* interval sync thread */
	pthread_cond_t     thr_cv;
	pthread_t          thr;
	bool               thr_running, stopping;

	pthread_mutex_t    maint_mu;   /* one maintenance pass at a time */
};

/* Shared between the writer's files (definitions in archive.c). */
int64_t ar_default_now(void *arg);
int64_t ar_day(int64_t ms);
void * ar_interval_main(void *arg);
vigil_err ar_jr_seg_drop(store_archive *ar);
void ar_jr_seg_open(store_archive *ar);
void ar_jr_open(store_archive *ar);
vigil_err ar_jr_drain(store_archive *ar);
void ar_pend_retry(store_archive *ar);
vigil_err ar_segment_close(store_archive *ar);
vigil_err ar_pwrite_all(int fd, const void *p, size_t len, uint64_t off);
void ar_queue_fini(ar_queue *q);
vigil_err ar_repair(store_archive *ar);
void ar_probe(store_archive *ar, int64_t now);
vigil_err ar_flush_upto(store_archive *ar, uint64_t seq);

#endif
