/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_archive.c - arbitrary bytes as an archive segment: the
 * frame decoder walked over the input with resynchronisation, every framed
 * payload (and the raw input) through the ArchivedScore / ArchivedLabel
 * decoders, decoded records re-encoded and decoded again (must agree), and
 * the segment reader over the bytes as a file, plain and as zstd, as a
 * .log.zst of independent frames with a frame table whose frames are
 * damaged where the input says (the salvage of damaged frames), and as
 * the writer's journal beside an empty open segment. Must never
 * crash, hang, leak or read out of bounds.
 */
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zstd.h>

#include "tmpdir.h"
#include "archive_int.h"
#include "archive.h"
#include "segment.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static store_scored sc, sc2;
static uint8_t      enc[1 << 16];

static void
fuzz_payload(store_rec_type type, const void *p, size_t len)
{
	store_diag d;
	size_t elen;

	if (type == STORE_REC_SCORE) {
		if (store_scored_decode(p, len, &sc, &d) != VIGIL_OK)
			return;
		/* what decodes must encode and decode to the same thing */
		if (store_scored_encode(&sc, enc, sizeof enc, &elen) != VIGIL_OK)
			abort();
		if (store_scored_decode(enc, elen, &sc2, &d) != VIGIL_OK)
			abort();
		if (sc2.nhits != sc.nhits || sc2.nfeats != sc.nfeats ||
		    strcmp(sc2.txn.txn_id, sc.txn.txn_id) != 0)
			abort();
	} else {
		store_label l;
		if (store_label_decode(p, len, &l, &d) == VIGIL_OK &&
		    store_label_encode(&l, enc, sizeof enc, &elen) != VIGIL_OK)
			abort();
	}
}

static char fuzz_dir[64];

static void
fuzz_cleanup(void)
{
	vt_tmpdir_remove(fuzz_dir);
}

/* Where the last record or reported stretch of the segment ended: the
 * reader gives both in file order, never overlapping (docs/archive.md,
 * READING). A stretch is never empty (only a zstd note may be) and its
 * length never wraps. */
static uint64_t fuzz_end;
/* What a read gave, stretches and records, mixed into one number: an
 * undamaged compressed segment must read as its plain bytes do. */
static uint64_t fuzz_trace;

static void
fuzz_mix(uint64_t a, uint64_t b)
{
	fuzz_trace = (fuzz_trace ^ a) * 0x100000001b3ull;
	fuzz_trace = (fuzz_trace ^ b) * 0x100000001b3ull;
}

static void
fuzz_corrupt(void *arg, const char *segment, uint64_t offset, uint64_t skipped, const char *what)
{
	(void)arg;
	(void)segment;
	if (offset < fuzz_end || offset + skipped < offset ||
	    (skipped == 0 && strstr(what, "zstd") == NULL))
		abort();
	fuzz_end = offset + skipped;
	if (strstr(what, "zstd") == NULL)
		fuzz_mix(offset, skipped);
}

static uint64_t
fuzz_reader(const uint8_t *data, size_t size, const char *suffix, bool closed)
{
	char path[128], idx[128];
	store_reader *rd = NULL;
	store_record r;
	FILE *f;

	if (fuzz_dir[0] == '\0') {
		const char *tmp = getenv("TMPDIR");
		snprintf(fuzz_dir, sizeof fuzz_dir, "%s/vigil-fuzz-archive-XXXXXX",
		    tmp != NULL && strlen(tmp) < 32 ? tmp : "/tmp");
		if (mkdtemp(fuzz_dir) == NULL)
			abort();
		atexit(fuzz_cleanup);
	}
	snprintf(path, sizeof path, "%s/seg%s", fuzz_dir, suffix);
	snprintf(idx, sizeof idx, "%s/seg.idx", fuzz_dir);
	if (closed && (f = fopen(idx, "wb")) != NULL) /* an index beside it: a closed segment */
		fclose(f);
	f = fopen(path, "wb");
	if (f == NULL)
		abort();
	if (size > 0 && fwrite(data, 1, size, f) != size)
		abort();
	fclose(f);
	fuzz_end = 0;
	fuzz_trace = 0;
	if (store_reader_open_segment(path, fuzz_corrupt, NULL, &rd, NULL) == VIGIL_OK) {
		int fd = strcmp(suffix, ".log") == 0 ? open(path, O_RDONLY) : -1;
		uint8_t *buf = NULL;
		size_t cap = 0;
		uint64_t n = 0;

		while (store_reader_next(rd, &r, NULL) == VIGIL_OK) {
			store_record at;

			if (r.offset + r.len > (uint64_t)1 << 40 || ++n > size || r.offset < fuzz_end)
				abort(); /* more records than bytes (a loop), or out of order */
			fuzz_end = r.offset + STORE_FRAME_HDR + r.len;
			fuzz_mix(r.offset, r.seq);
			/* a plain segment's record read by its position is the one
			 * the reader found there */
			if (fd >= 0 && (store_frame_at(fd, path, r.offset, r.seq, &buf, &cap, &at) !=
			    VIGIL_OK || at.offset != r.offset || at.len != r.len ||
			    memcmp(at.payload, r.payload, r.len) != 0))
				abort();
		}
		store_reader_close(rd);
		free(buf);
		if (fd >= 0)
			close(fd);
	}
	unlink(path);
	unlink(idx);
	return fuzz_trace;
}

/* The bytes as a compressed segment with a frame table (docs/archive.md,
 * "Compressed segments"): cut into three frames (their records counted
 * as the compressor counts them, whole frames from the start), each
 * compressed with its checksum; then the input's last 8 bytes pick two
 * bytes of the compressed frames to change, so that the reader salvages
 * damaged frames. Nothing it returns may be more records than bytes.
 * Before the change it must read as its plain bytes did (plain: their trace). */
static void
fuzz_framed(const uint8_t *data, size_t size, uint64_t plain)
{
	store_zent zt[3];
	uint8_t *z;
	size_t cut[4], zlen = 0, cap;
	uint32_t flips[2];

	if (size < 16)
		return;
	memcpy(flips, data + size - 8, 8);
	cut[0] = 0;
	cut[1] = size / 3;
	cut[2] = 2 * size / 3;
	cut[3] = size;
	cap = 3 * ZSTD_compressBound(size) + STORE_ZTAB_LEN(3);
	z = malloc(cap);
	if (z == NULL)
		abort();
	for (int i = 0; i < 3; i++) {
		ZSTD_CCtx *cc = ZSTD_createCCtx();
		size_t n, off = 0;
		uint32_t recs = 0;

		if (cc == NULL)
			abort();
		ZSTD_CCtx_setParameter(cc, ZSTD_c_checksumFlag, 1);
		ZSTD_CCtx_setParameter(cc, ZSTD_c_contentSizeFlag, 1);
		n = ZSTD_compress2(cc, z + zlen, cap - zlen, data + cut[i], cut[i + 1] - cut[i]);
		ZSTD_freeCCtx(cc);
		if (ZSTD_isError(n))
			abort();
		for (;;) {
			store_record r;
			size_t used;

			if (store_frame_decode(data + cut[i] + off, cut[i + 1] - cut[i] - off, &r,
			    &used) != VIGIL_OK)
				break;
			off += used;
			recs++;
		}
		zt[i] = (store_zent){ .csize = (uint32_t)n, .usize = (uint32_t)(cut[i + 1] - cut[i]),
		    .records = recs };
		zlen += n;
	}
	store_ztab_encode(zt, 3, z + zlen);
	if (fuzz_reader(z, zlen + STORE_ZTAB_LEN(3), ".log.zst", true) != plain)
		abort();
	for (int i = 0; i < 2; i++)
		z[flips[i] % zlen] ^= (uint8_t)(1u << (flips[i] >> 29));
	(void)fuzz_reader(z, zlen + STORE_ZTAB_LEN(3), ".log.zst", false);
	free(z);
}

/* The bytes as the writer's journal beside an empty open segment: a
 * reader at its end takes the journal's frames (store_journal_frame:
 * wrapping, lengths, sequence numbers); and store_journal_frame at an
 * offset taken from the input, past the journal's size. */
static void
fuzz_journal(const uint8_t *data, size_t size)
{
	char seg[160], jp[160];
	store_reader *rd = NULL;
	store_record r;
	uint8_t *buf = NULL;
	size_t cap = 0, used;
	FILE *f;

	snprintf(seg, sizeof seg, "%s/seg-20261124-00000000000000000001.log", fuzz_dir);
	snprintf(jp, sizeof jp, "%s/JOURNAL", fuzz_dir);
	f = fopen(seg, "wb");
	if (f == NULL)
		abort();
	fclose(f);
	f = fopen(jp, "wb");
	if (f == NULL)
		abort();
	if (size > 0 && fwrite(data, 1, size, f) != size)
		abort();
	fclose(f);
	if (store_reader_open_segment(seg, NULL, NULL, &rd, NULL) == VIGIL_OK) {
		uint64_t n = 0;
		while (store_reader_next(rd, &r, NULL) == VIGIL_OK)
			if (++n > size)
				abort(); /* more records than bytes: a loop */
		store_reader_close(rd);
	}
	if (size >= 8) {
		uint64_t off;
		int fd;

		memcpy(&off, data, 8);
		if (store_journal_frame(seg, off, off >> 7, &buf, &cap, &r, &used) == VIGIL_OK &&
		    (used > cap || r.len + 32 != used))
			abort();
		/* the segment's file is empty: by position, a record can only
		 * come from the journal, whole, at the offset asked */
		fd = open(seg, O_RDONLY);
		if (fd < 0)
			abort();
		if (store_frame_at(fd, seg, off, 0, &buf, &cap, &r) == VIGIL_OK &&
		    (r.offset != off || r.len + 32 > cap))
			abort();
		close(fd);
	}
	free(buf);
	unlink(jp);
	unlink(seg);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t off = 0;
	uint64_t plain;

	while (off < size) {
		store_record rec;
		size_t used;
		vigil_err rv = store_frame_decode(data + off, size - off, &rec, &used);

		/* the size the header says: the bytes a whole frame takes */
		if (rv == VIGIL_OK) {
			if (used > size - off || rec.len + 32 != used ||
			    store_frame_size(data + off, size - off) != used)
				abort();
			fuzz_payload(rec.type, rec.payload, rec.len);
			off += used;
		} else if (rv == VIGIL_ECORRUPT) {
			off++;
		} else {
			/* wants more: a plausible header says how much, beyond what is here */
			if (size - off >= 32 && store_frame_size(data + off, size - off) <= size - off)
				abort();
			break;
		}
	}
	fuzz_payload(STORE_REC_SCORE, data, size);
	fuzz_payload(STORE_REC_LABEL, data, size);
	(void)fuzz_reader(data, size, ".log", false);
	plain = fuzz_reader(data, size, ".log", true);
	(void)fuzz_reader(data, size, ".log.zst", false);
	fuzz_framed(data, size, plain);
	fuzz_journal(data, size);
	return 0;
}
