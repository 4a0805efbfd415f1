/* SPDX-License-Identifier: MIT */
/*
 * store/archive.h - the archive (DESIGN.md contract 2): append-only,
 * checksummed segment files under "<datadir>/archive", and the records in
 * them. Four parts, one file each:
 *   - the writer (archive.c, archive_open.c, archive_maint.c): recovery at
 *     open, appends with group commit, rotation, compression, retention,
 *     faults that heal;
 *   - the reader (reader.c): records in segment order, corrupt stretches
 *     reported and skipped;
 *   - the frame codec (frame.c): one record's header, length and CRC32C;
 *   - the record codecs (record.c, declared in record.h, which this header
 *     includes): payload <-> store_scored / store_label
 *     (vigil.v1.ArchivedScore / ArchivedLabel) and the model vector.
 * The on-disk format and its guarantees: docs/archive.md.
 *
 * Thread safety: a store_archive may be used by any number of threads at
 * once, except store_archive_close. A store_reader is used by one thread at
 * a time; any number of readers may run at once, also while a writer
 * appends. The codecs are pure functions. Errors are vigil_err, with a
 * one-line store_diag (schema.h) where a function takes one.
 */
#ifndef VIGIL_STORE_ARCHIVE_H
#define VIGIL_STORE_ARCHIVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "diag.h"
#include "record.h"
#include "schema.h"
#include "vigil.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ========================= Writing ========================= */

typedef enum store_fsync {
	STORE_FSYNC_ALWAYS = 0, /* ack after fdatasync; concurrent appends share one sync (group commit) */
	STORE_FSYNC_INTERVAL,   /* ack after write(2); fdatasync every interval_ms */
	STORE_FSYNC_NEVER,      /* ack after write(2); the kernel flushes when it likes */
} store_fsync;

/* "always" | "interval" | "never" (any case): VIGIL_OK with *ret set;
 * VIGIL_EINVAL (*ret untouched) for anything else. */
vigil_err store_fsync_parse(const char *s, store_fsync *ret);

typedef struct store_archive_opts {
	store_fsync fsync;             /* default STORE_FSYNC_INTERVAL */
	uint32_t    fsync_interval_ms; /* default 50 */
	uint64_t    segment_max_bytes; /* rotate above this; default 256 MiB */
	uint32_t    retention_days;    /* delete closed segments older; 0 = keep forever */
	bool        compress_closed;   /* zstd-compress segments once closed */
	uint32_t    max_record_bytes;  /* default 1 MiB */
} store_archive_opts;

/* Fills *ret_opts with the defaults above. */
void store_archive_opts_default(store_archive_opts *ret_opts);

typedef enum store_rec_type {
	STORE_REC_SCORE = 1, /* payload: vigil.v1.ArchivedScore */
	STORE_REC_LABEL = 2, /* payload: vigil.v1.ArchivedLabel */
} store_rec_type;

/* What recovery found when an archive was opened for writing. */
typedef struct store_recovery {
	uint64_t torn_records;   /* incomplete records truncated at the tail */
	uint64_t torn_bytes;
	uint64_t last_seq;       /* highest sequence number on disk */
	uint32_t segments;       /* segment files found */
	uint64_t journal_records; /* acknowledged records the open segment's file lacked,
	                             written from the journal (archive.md, "The journal") */
} store_recovery;

typedef struct store_archive store_archive;

/*
 * Opens (creates) the archive under dir ("<datadir>/archive"; the parent
 * must exist), for writing: one writer per directory (an flock on dir/LOCK;
 * VIGIL_EBUSY if held, even by this process). opts NULL = defaults.
 * Recovers a torn tail of the open segment and reports it in *ret_recovery
 * (may be NULL); corruption followed by valid records is left alone (readers
 * report it). On VIGIL_OK *ret_ar is set: close it with store_archive_close.
 * Errors (*ret_ar untouched): VIGIL_EINVAL (opts out of range), VIGIL_EBUSY,
 * VIGIL_EIO and errno-mapped codes with reterr naming the file, VIGIL_ENOMEM.
 */
vigil_err store_archive_open(const char *dir, const store_archive_opts *opts,
    store_archive **ret_ar, store_recovery *ret_recovery, store_diag *reterr);
/* Syncs the open segment (whatever the policy) and closes; the segment
 * stays open on disk and the next open continues it. No other call may run
 * concurrently. NULL is a no-op. */
void      store_archive_close(store_archive *ar);

/*
 * Appends one record (thread-safe; many threads may append at once). When
 * it returns VIGIL_OK the record is in the archive (survives kill -9): in
 * the open segment's file, or with policies interval and never in the
 * journal, from which it reaches the file within fsync_interval_ms (readers
 * see it then; store_archive_drain sooner) or at the next open after a
 * crash (docs/archive.md, "The journal"); with STORE_FSYNC_ALWAYS it is in
 * the file and synced; *ret_seq (may be NULL) is its
 * sequence number (increasing in file order: 1, 2, ... with a gap only
 * where appends failed). VIGIL_ETOOBIG over max_record_bytes, VIGIL_EINVAL
 * for an unknown type, VIGIL_EIO on write or sync failure, VIGIL_EAGAIN
 * while the archive is failing and waits before trying again (nothing was
 * written; store_archive_get_health says why). The payload is copied to
 * the file before the call returns (the caller keeps ownership).
 */
vigil_err store_archive_append(store_archive *ar, store_rec_type type,
    int64_t event_time_ms, const void *payload, size_t len, uint64_t *ret_seq);

/*
 * Split append for callers that must order the write under their own lock
 * but wait for durability outside it: _write puts the record in the file
 * and returns its seq (errors as for append); _wait_durable(seq) returns once
 * the fsync policy is satisfied for it (immediately for interval/never):
 * VIGIL_EIO if a sync failed, VIGIL_EINVAL for a seq not yet written.
 * Thread-safe.
 */
vigil_err store_archive_write(store_archive *ar, store_rec_type type,
    int64_t event_time_ms, const void *payload, size_t len, uint64_t *ret_seq);
vigil_err store_archive_wait_durable(store_archive *ar, uint64_t seq);

/* Writes every record appended so far from the journal into the open
 * segment's file, so that readers see them now rather than within
 * fsync_interval_ms (a no-op without a journal). VIGIL_EIO if the write
 * failed (a fault, as a failed append's: the records stay in the journal).
 * Thread-safe. */
vigil_err store_archive_drain(store_archive *ar);

/* Periodic upkeep, called by the owner (e.g. every minute); cheap if nothing
 * to do: closes the open segment if its UTC day is over (even with no
 * appends), zstd-compresses closed segments (compress_closed) and deletes
 * closed segments older than retention_days. Never touches the open
 * segment. Runs outside the append lock: appends go on meanwhile; two
 * maintenance calls are serialised. Errors: VIGIL_EIO and errno-mapped
 * codes, with reterr naming the file; the archive stays usable. */
vigil_err store_archive_maintain(store_archive *ar, store_diag *reterr);
/* Closes the open segment now (syncs it, writes its index); the next append
 * starts a new one. For tools, tests and an operator's "rotate" command.
 * Thread-safe; errors as for store_archive_maintain. */
vigil_err store_archive_rotate(store_archive *ar, store_diag *reterr);

typedef struct store_archive_stats {
	uint64_t records, bytes, segments, syncs, last_seq;
} store_archive_stats;
/* A snapshot of the counters since open (thread-safe, cheap). */
void store_archive_get_stats(store_archive *ar, store_archive_stats *ret_stats);

/*
 * Faults that heal (docs/archive.md, "Errors"). A failed write, sync,
 * segment creation or truncation (ENOSPC, EFBIG, EMFILE, EIO, ...) leaves
 * no partial frame in the file and makes the archive *failing*: appends
 * are refused at once (VIGIL_EAGAIN) for a backoff that doubles from
 * 100 ms to 5 s, then the next append (or store_archive_maintain) repairs
 * and retries; a write that succeeds (after a failed sync: a sync of a new
 * segment) ends the episode, without reopening. A rotation that cannot
 * create the next segment is *degraded* only: appends go on in the open
 * segment and the rotation is retried. Records whose append failed are
 * not in the archive, except records whose sync failed (policy always):
 * they are written, not known to be durable, and their append fails.
 */
typedef struct store_archive_health {
	bool     failing;      /* appends are refused until a retry succeeds */
	bool     degraded;     /* appends work; a rotation is postponed by err */
	int      err;          /* errno of the fault (failing, else degraded); 0 if neither */
	char     op[24];       /* "write", "sync", "create segment", "sync directory", "truncate" */
	char     file[64];     /* the segment file concerned ("" if none) */
	int64_t  since_ms;     /* wall clock of the episode's first failure */
	int64_t  retry_in_ms;  /* until appends are tried again (0: the next one) */
	uint64_t failures;     /* failed attempts since open */
	uint64_t recoveries;   /* episodes ended since open */
	uint64_t refused;      /* appends refused or dropped unwritten since open */
} store_archive_health;
/* A snapshot of the fault state (thread-safe, cheap). */
void store_archive_get_health(store_archive *ar, store_archive_health *ret_health);

/* ========================= Reading ========================= */

typedef struct store_reader store_reader;

typedef struct store_record {
	store_rec_type type;
	uint64_t       seq;
	int64_t        event_time_ms;
	const void    *payload; /* valid until the next store_reader_next/close */
	size_t         len;
	const char    *segment; /* file name of the segment it came from */
	uint64_t       offset;  /* byte offset of the record in the (uncompressed) segment */
} store_record;

/* Called for every corrupt stretch a reader skips; the reader goes on. The
 * stretches and records of a segment come in file order, never overlapping. */
typedef void (*store_corrupt_fn)(void *arg, const char *segment,
    uint64_t offset, uint64_t skipped_bytes, const char *what);
/* The one spelling of such a stretch, "SEGMENT:OFFSET: WHAT (N bytes
 * skipped)", into buf[0..len) (cut to fit); returns buf. */
char *store_corrupt_text(char *buf, size_t len, const char *segment, uint64_t offset,
    uint64_t skipped_bytes, const char *what);

/*
 * Opens a reader over records with event time in [from_ms, to_ms) (use
 * INT64_MIN/INT64_MAX for all), in segment order, using each segment's index
 * to skip segments outside the range. Read-only; safe while a writer appends
 * (it sees records written before it reached them). on_corrupt may be NULL;
 * it is called from store_reader_next (segment and what valid during the
 * call only). VIGIL_OK: *ret_rd set, close it with store_reader_close.
 * VIGIL_ENOTFOUND if dir does not exist; VIGIL_EIO and errno-mapped codes
 * with reterr naming the file; VIGIL_ENOMEM.
 */
vigil_err store_reader_open(const char *dir, int64_t from_ms, int64_t to_ms,
    store_corrupt_fn on_corrupt, void *arg, store_reader **ret_rd, store_diag *reterr);
/* Reads one segment file only, "*.log" or "*.log.zst" (tools, fuzzing). A
 * partial record at its end is reported as corruption only if the segment
 * has an index beside it (is closed). Errors as for store_reader_open. */
vigil_err store_reader_open_segment(const char *path, store_corrupt_fn on_corrupt,
    void *arg, store_reader **ret_rd, store_diag *reterr);
/* VIGIL_OK with *ret_rec filled (payload and segment valid until the next
 * call or close); VIGIL_ENOTFOUND at the end; VIGIL_EIO (reterr names the
 * file), VIGIL_ENOMEM. Corrupt stretches are reported and skipped, not
 * returned as errors. */
vigil_err store_reader_next(store_reader *rd, store_record *ret_rec, store_diag *reterr);
/*
 * Returns only records whose type's bit (1u << type) is in type_mask (0:
 * every type, the default); call before the first store_reader_next.
 * Frames of other types are passed over by their headers without checking
 * their CRC, so damage inside their payload goes unseen; a stretch that
 * breaks the frame sequence (header, length, sequence number) is still
 * found and reported as by a reader checking every frame, and the records
 * returned are the same. For a reader that only wants the few labels.
 */
void store_reader_want(store_reader *rd, uint32_t type_mask);
typedef struct store_reader_stats {
	uint64_t records, bytes, corrupt_records, corrupt_bytes, segments;
	uint64_t skipped_bytes; /* frames of unwanted types passed over (store_reader_want) */
	/* records known lost in damaged zstd frames of compressed segments
	 * (from their frame tables; corrupt_records counts stretches) */
	uint64_t lost_records;
	/* records of a growing segment read from the writer's journal: appended,
	 * not yet in the file (archive.md, "The journal") */
	uint64_t journal_records;
} store_reader_stats;
/* The counters so far. */
void store_reader_get_stats(const store_reader *rd, store_reader_stats *ret_stats);
void store_reader_close(store_reader *rd); /* NULL is a no-op */

/* Frame codec (exposed for the fuzz target and tests): parses one record at
 * buf[0..len). VIGIL_OK: *ret_rec filled (payload points into buf),
 * *ret_used = bytes consumed. VIGIL_EAGAIN: need more bytes.
 * VIGIL_ECORRUPT: bad header or CRC. */
vigil_err store_frame_decode(const void *buf, size_t len, store_record *ret_rec,
    size_t *ret_used);
/* The bytes the frame starting at buf takes, header and payload, as its
 * header says (0 while buf[0..len) is too short to say): how much to read
 * when store_frame_decode wants more. Checks nothing (decode does). */
size_t store_frame_size(const void *buf, size_t len);

/*
 * store_archive_write in two halves, for a caller that orders records under
 * its own lock but should not hold it across the write (store_db: the
 * watermark lock): _enqueue assigns the record's sequence number and copies
 * its frame into the archive's queue (cheap; errors as for write, plus
 * VIGIL_ENOMEM); _flush(seq) returns once every record up to seq is in the
 * file, writing the whole queue (other threads' records too) in one go if
 * no other thread is doing so. A record is acknowledged only
 * after its _flush returned VIGIL_OK (VIGIL_EIO: the write failed and the
 * record was dropped, not written; VIGIL_EAGAIN: dropped unwritten because
 * the archive is failing; VIGIL_EINVAL: seq was never enqueued). _enqueue
 * refuses with VIGIL_EAGAIN while the archive is failing.
 */
vigil_err store_archive_enqueue(store_archive *ar, store_rec_type type, int64_t event_time_ms,
    const void *payload, size_t len, uint64_t *ret_seq);
vigil_err store_archive_flush(store_archive *ar, uint64_t seq);

/* True while the archive is failing and an append would be refused now
 * (VIGIL_EAGAIN): store_db fails a begin early instead of scoring for
 * nothing. Cheap (one atomic load when healthy). */
bool store_archive_refusing(store_archive *ar);

/* The largest event time of any record in the archive (scored or label),
 * from the segment indexes read at open and the records written since;
 * INT64_MIN if the archive is empty. Segments deleted by retention since
 * open may still count. */
int64_t store_archive_max_event_ms(store_archive *ar);

#ifdef __cplusplus
}
#endif

#endif /* VIGIL_STORE_ARCHIVE_H */
