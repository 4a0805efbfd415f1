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
/* The open segment is preallocated in steps of this many bytes and frames
 * are copied into a shared mapping of it (no write(2) per group write). A
 * segment whose size is a multiple of AR_PREALLOC_ALIGN may end in a
 * preallocated zero tail. */
#define AR_PREALLOC_STEP  (4u << 20)
#define AR_PREALLOC_ALIGN 4096u
/* The preallocated tail is written with zeros (pwrite) up to this many
 * bytes ahead of the frames, topped up once half of it is used
 * (archive.md): a store into a page that pwrite put in the page cache over
 * allocated blocks costs a small fraction of one into a fallocated
 * (unwritten) block, which the first store must read as zeros, allocate
 * and map. At most this much of the file is written twice. */
#define AR_ZERO_AHEAD     (256u << 10)

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
	uint64_t           zero_end;   /* [file_end, zero_end) was written with zeros (map only) */
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
vigil_err ar_map_drop(store_archive *ar);
void ar_map_open(store_archive *ar);
void ar_pend_retry(store_archive *ar);
vigil_err ar_segment_close(store_archive *ar);
vigil_err ar_pwrite_all(int fd, const void *p, size_t len, uint64_t off);
void ar_queue_fini(ar_queue *q);
vigil_err ar_repair(store_archive *ar);
void ar_probe(store_archive *ar, int64_t now);
vigil_err ar_flush_upto(store_archive *ar, uint64_t seq);

#endif
