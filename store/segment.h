/* SPDX-License-Identifier: MIT */
/*
 * store/segment.h - the segment files of an archive directory, as the
 * archive's operators' tools see them (vigil-archive verify and stats):
 * names, listing, the index sidecar and a full scan; and a record read by
 * its position (the console's indexes). Implemented in reader.c; the
 * format is in docs/archive.md.
 */
#ifndef VIGIL_STORE_SEGMENT_H
#define VIGIL_STORE_SEGMENT_H

#include <stdbool.h>
#include <stdint.h>

#include "archive.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Segment files: "seg-YYYYMMDD-SSSSSSSSSSSSSSSSSSSS.log" where the date is
 * the UTC day the segment was created (write time) and S the zero-padded
 * sequence number of its first record; ".log.zst" once compressed;
 * ".idx" the index sidecar written when the segment closes.
 */
#define STORE_SEG_BASE_LEN 33 /* "seg-" 8 "-" 20 */
#define STORE_SEG_NAME_MAX 48

typedef struct store_seg_index {
	uint64_t first_seq, last_seq;
	int64_t  min_event_ms, max_event_ms;
	uint64_t records;
	uint64_t bytes;        /* uncompressed segment size */
	int64_t  closed_at_ms; /* write-clock time the segment was closed */
} store_seg_index;

typedef struct store_seg_ent {
	char     base[STORE_SEG_BASE_LEN + 1];
	uint64_t first_seq;
	int64_t  day; /* days since the epoch, from the name */
	bool     has_log, has_zst, has_idx;
} store_seg_ent;

/* Builds a segment base name ("seg-20261121-00000000000000000001"). */
void store_seg_base(int64_t day, uint64_t first_seq, char ret_base[STORE_SEG_BASE_LEN + 1]);

/* Lists the segments of dir sorted by first sequence number. *ret_ents is
 * malloc'd (free it); VIGIL_ENOTFOUND if dir does not exist. Temporary files
 * and unrelated names are ignored. */
vigil_err store_seg_list(const char *dir, store_seg_ent **ret_ents, size_t *ret_n,
    store_diag *reterr);

/* Index sidecar (".idx", written when a segment closes): VIGIL_ENOTFOUND
 * absent, VIGIL_ECORRUPT bad CRC or size, VIGIL_EVERSION unknown version. */
vigil_err store_seg_index_read(const char *dir, const char *base, store_seg_index *ret_idx);

/* Scans a segment completely (through a reader) and returns its index; the
 * reader's notion of the last valid record is *ret_valid_end (bytes of the
 * segment up to the end of its last valid record). */
vigil_err store_seg_scan(const char *path, store_seg_index *ret_idx, uint64_t *ret_valid_end,
    store_diag *reterr);

/*
 * Records by position, for readers that keep a record's segment and offset
 * and read it back with reads of their own (vigil-console's indexes).
 *
 * store_journal_frame: the frame at offset off of the open segment seg_path
 * (a ".log" without an index) that an append put in the writer's journal
 * and not yet in the file (docs/archive.md, "The journal"), if it is whole
 * and its sequence number is want_seq (0: any, then only while the file
 * does not hold all of it): VIGIL_OK with its bytes in (*buf)[0..*ret_used)
 * (*buf grown as needed, *cap its size) and *ret_rec decoded from them
 * (segment and offset not set); VIGIL_ENOTFOUND otherwise (for want_seq 0,
 * read the file again); VIGIL_ENOMEM.
 */
vigil_err store_journal_frame(const char *seg_path, uint64_t off, uint64_t want_seq,
    uint8_t **buf, size_t *cap, store_record *ret_rec, size_t *ret_used);
/*
 * store_frame_at: the record at offset off of the plain segment seg_path,
 * open as fd, with sequence number want_seq (0: any). Read from the file;
 * if the file does not hold all of it yet, from the writer's journal
 * (store_journal_frame); failing that from the file again, which a drain
 * may have written meanwhile. VIGIL_OK: *ret_rec (payload in *buf, grown as
 * for store_journal_frame; offset set, segment not); VIGIL_ENOTFOUND: no
 * whole record there (in the journal, none numbered want_seq);
 * VIGIL_ECORRUPT: the file's bytes there fail the frame's check, or its
 * record there is not numbered want_seq; VIGIL_ENOMEM; errno-mapped codes
 * from pread.
 */
vigil_err store_frame_at(int fd, const char *seg_path, uint64_t off, uint64_t want_seq,
    uint8_t **buf, size_t *cap, store_record *ret_rec);

#ifdef __cplusplus
}
#endif

#endif /* VIGIL_STORE_SEGMENT_H */
