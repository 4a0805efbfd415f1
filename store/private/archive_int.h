/* SPDX-License-Identifier: MIT */
/*
 * store/private/archive_int.h - private to the archive files of store/ (frame.c,
 * archive.c, reader.c) and their tests: the on-disk frame header, segment
 * names, the per-segment index sidecar and the test clock hook. The format
 * is documented in docs/archive.md; every constant here is part of it.
 */
#ifndef VIGIL_STORE_ARCHIVE_INT_H
#define VIGIL_STORE_ARCHIVE_INT_H

#include <stddef.h>
#include <stdint.h>

#include "archive.h"
#include "segment.h"

static inline void
store_put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}

static inline void
store_put_le64(uint8_t *p, uint64_t v)
{
	store_put_le32(p, (uint32_t)v);
	store_put_le32(p + 4, (uint32_t)(v >> 32));
}

static inline uint32_t
store_get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t
store_get_le64(const uint8_t *p)
{
	return (uint64_t)store_get_le32(p) | (uint64_t)store_get_le32(p + 4) << 32;
}

/*
 * Frame header, 32 bytes, little-endian:
 *   0  magic "VGLR"
 *   4  u8  format version (1)
 *   5  u8  record type (store_rec_type)
 *   6  u16 flags (0; reserved)
 *   8  u32 payload length
 *  12  u32 CRC32C over bytes 4..12, 16..32 and the payload
 *  16  u64 sequence number
 *  24  i64 event time, Unix ms
 */
/* The writer's journal in the archive directory (archive.md, "The journal"). */
#define STORE_JOURNAL_NAME "JOURNAL"
#define STORE_FRAME_MAGIC "VGLR"
#define STORE_FRAME_VERSION 1
#define STORE_FRAME_HDR 32
/* Hard cap on a payload, whatever max_record_bytes says: a reader never
 * buffers more than this for one record. */
#define STORE_FRAME_MAX_PAYLOAD (16u << 20)

/* Writes the header of a frame for payload[0..len) into hdr. */
void store_frame_header(uint8_t hdr[STORE_FRAME_HDR], store_rec_type type, uint64_t seq,
    int64_t event_time_ms, const void *payload, size_t len);

/* True if buf[0..STORE_FRAME_HDR) looks like a header (magic, version,
 * type, flags, length cap); the CRC is not checked. */
bool store_frame_plausible(const uint8_t *buf);
/* The whole frame at position off modulo jlen of a journal of jlen bytes
 * (fd), wrapping at its end: VIGIL_OK with its bytes in (*buf)[0..*ret_used)
 * (*buf grown as needed) and *ret_rec decoded from them; VIGIL_ENOTFOUND if
 * none is whole there; VIGIL_ENOMEM. Which sequence number may follow is
 * the caller's rule (store_journal_frame, the writer's recovery). */
vigil_err store_journal_take(int fd, uint64_t jlen, uint64_t off, uint8_t **buf, size_t *cap,
    store_record *ret_rec, size_t *ret_used);

/* Folds a record (seq, event time) into a segment's index counts. */
static inline void
store_seg_index_add(store_seg_index *idx, uint64_t seq, int64_t event_time_ms)
{
	if (idx->records == 0) {
		idx->first_seq = seq;
		idx->min_event_ms = idx->max_event_ms = event_time_ms;
	}
	idx->last_seq = seq;
	if (event_time_ms < idx->min_event_ms)
		idx->min_event_ms = event_time_ms;
	if (event_time_ms > idx->max_event_ms)
		idx->max_event_ms = event_time_ms;
	idx->records++;
}

/*
 * Compressed segments (".log.zst", docs/archive.md): independent zstd
 * frames, each of about STORE_ZFRAME_TARGET bytes of the segment cut at
 * record boundaries (a larger record gets a frame of its own), with the
 * zstd content size and checksum; then the frame table, a zstd skippable
 * frame (store_ztab_encode; byte by byte in docs/archive.md), so `zstd -d`
 * still gives the exact .log. A file without the table (one zstd frame,
 * written before) is read as a stream.
 */
#define STORE_ZFRAME_TARGET (256u << 10)
#define STORE_ZFRAME_MAX    (STORE_FRAME_HDR + STORE_FRAME_MAX_PAYLOAD) /* largest frame's input */
#define STORE_ZTAB_MAGIC    0x184D2A5Au /* ZSTD_MAGIC_SKIPPABLE_START + 10 */
#define STORE_ZTAB_TAG      "VGLZ"
#define STORE_ZTAB_VERSION  1u
#define STORE_ZTAB_ENTRY    12u
#define STORE_ZTAB_TAIL     16u /* frames, version, CRC, tag */
#define STORE_ZTAB_MAX      (1u << 22) /* frames in one table, at most */
#define STORE_ZTAB_LEN(n)   (8 + (size_t)(n) * STORE_ZTAB_ENTRY + STORE_ZTAB_TAIL)
/* A frame: where its bytes are in the file and in the segment, its sizes, its records. */
typedef struct store_zent {
	uint64_t coff, uoff;
	uint32_t csize, usize, records;
} store_zent;
/* Writes the table of frames e[0..n) (csize, usize, records) to out[0..STORE_ZTAB_LEN(n)). */
void store_ztab_encode(const store_zent *e, uint32_t n, uint8_t *out);
/* The frames a table claims, from its last STORE_ZTAB_TAIL bytes; 0: not a table. */
uint32_t store_ztab_frames(const uint8_t *tail);
/* Reads the table t[0..STORE_ZTAB_LEN(n)), the end of a file of fsize bytes, into
 * ret[0..n): false if it does not hold together (CRC, sizes, the file's length). */
bool store_ztab_decode(const uint8_t *t, uint32_t n, uint64_t fsize, store_zent *ret);

/* Index sidecar: written when a segment closes (tmp + rename; synced when
 * sync is true); read by store_seg_index_read (segment.h). */
#define STORE_IDX_MAGIC "VGLI"
#define STORE_IDX_VERSION 1
#define STORE_IDX_SIZE 68
vigil_err store_seg_index_write(const char *dir, const char *base, const store_seg_index *idx,
    bool sync);

/* Segments appended with write(2) because their file could not be
 * preallocated and mapped (docs/archive.md, "WRITER"). */
uint64_t store_archive_prealloc_failures(store_archive *ar);

/* Test hook: the clock used for rotation by day, index closed_at and
 * retention (default vigil_now_ms). now == NULL restores the default. */
void store_archive_set_clock(store_archive *ar, int64_t (*now)(void *arg), void *arg);

#endif /* VIGIL_STORE_ARCHIVE_INT_H */
