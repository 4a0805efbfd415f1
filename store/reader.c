/* SPDX-License-Identifier: MIT */
/*
 * store/reader.c - reading the archive: segment names and listing, the
 * per-segment index sidecars, and store_reader, which walks segments in
 * sequence order (plain or zstd-compressed), verifies every frame's CRC,
 * reports each corrupt stretch with segment and byte offset, resynchronises
 * on the next valid frame and goes on. Format: docs/archive.md.
 *
 * A reader told which record types it wants (store_reader_want) passes over
 * the frames of other types by their headers, without checking their CRC
 * (vigil-rebuild's label pass: ~1% of the frames are labels).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ZSTD_d_forceIgnoreChecksum (zstd >= 1.4.7): the salvage of a damaged frame */
#define ZSTD_STATIC_LINKING_ONLY
#include <zstd.h>

#include "archive_int.h"
#include "crc32c.h"
#include "file.h"
#include "vec.h"

#define RD_BUF_INIT      (1u << 20)
#define RD_MAX_SEGMENTS  (1u << 20) /* cap on segment files listed in one directory */
#define RD_SKIM_AHEAD    2048 /* bytes loaded ahead of a skip over frames */
#define RD_ZSTEP         4096 /* input fed at a time when salvaging a damaged frame */

/* ------------------------------------------------------------------ */
/* Segment names                                                       */

void
store_seg_base(int64_t day, uint64_t first_seq, char ret_base[STORE_SEG_BASE_LEN + 1])
{
	time_t t = (time_t)(day * 86400);
	struct tm tm;

	char tmp[96];

	gmtime_r(&t, &tm);
	snprintf(tmp, sizeof tmp, "seg-%04d%02d%02d-%020llu", (tm.tm_year + 1900) % 10000,
	    tm.tm_mon + 1, tm.tm_mday, (unsigned long long)first_seq);
	memcpy(ret_base, tmp, STORE_SEG_BASE_LEN);
	ret_base[STORE_SEG_BASE_LEN] = '\0';
}

static bool
rd_digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

/* Parses "seg-YYYYMMDD-<20 digits>" + suffix; kind 0 log, 1 zst, 2 idx. */
static bool
rd_parse_name(const char *name, store_seg_ent *ret, int *ret_kind)
{
	struct tm tm = { 0 };
	const char *suffix;
	unsigned long long seq;
	int kind;

	if (strncmp(name, "seg-", 4) != 0 || !rd_digits(name + 4, 8) || name[12] != '-' ||
	    !rd_digits(name + 13, 20))
		return false;
	suffix = name + STORE_SEG_BASE_LEN;
	if (strcmp(suffix, ".log") == 0)
		kind = 0;
	else if (strcmp(suffix, ".log.zst") == 0)
		kind = 1;
	else if (strcmp(suffix, ".idx") == 0)
		kind = 2;
	else
		return false;
	tm.tm_year = (name[4] - '0') * 1000 + (name[5] - '0') * 100 + (name[6] - '0') * 10 +
	    (name[7] - '0') - 1900;
	tm.tm_mon  = (name[8] - '0') * 10 + (name[9] - '0') - 1;
	tm.tm_mday = (name[10] - '0') * 10 + (name[11] - '0');
	if (tm.tm_mon < 0 || tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31)
		return false;
	errno = 0;
	seq = strtoull(name + 13, NULL, 10);
	if (errno != 0)
		return false;
	memcpy(ret->base, name, STORE_SEG_BASE_LEN);
	ret->base[STORE_SEG_BASE_LEN] = '\0';
	ret->first_seq = seq;
	ret->day = (int64_t)timegm(&tm) / 86400;
	ret->has_log = ret->has_zst = ret->has_idx = false;
	*ret_kind = kind;
	return true;
}

static int
rd_ent_cmp(const void *a, const void *b)
{
	const store_seg_ent *x = a, *y = b;

	if (x->first_seq != y->first_seq)
		return x->first_seq < y->first_seq ? -1 : 1;
	return strcmp(x->base, y->base);
}

vigil_err
store_seg_list(const char *dir, store_seg_ent **ret_ents, size_t *ret_n, store_diag *reterr)
{
	DIR *d = NULL;
	struct dirent *de;
	store_seg_ent *ents = NULL;
	size_t n = 0, cap = 0, out = 0;
	vigil_err rv = VIGIL_OK;

	d = opendir(dir);
	if (d == NULL) {
		int e = errno;
		rv = vigil_err_from_errno(e);
		store_diag_at(reterr, dir, VIGIL_NOPOS, NULL, "cannot open archive directory: %s",
		    strerror(e));
		goto out;
	}
	while ((de = readdir(d)) != NULL) {
		store_seg_ent e;
		int kind;

		if (!rd_parse_name(de->d_name, &e, &kind))
			continue;
		rv = vigil_array_reserve(&ents, &cap, n + 1, sizeof *ents, 64, RD_MAX_SEGMENTS);
		if (rv == VIGIL_ETOOBIG)
			store_diag_set(reterr, "%s: more than %u segment files", dir, RD_MAX_SEGMENTS);
		if (rv != VIGIL_OK)
			goto out;
		e.has_log = kind == 0;
		e.has_zst = kind == 1;
		e.has_idx = kind == 2;
		ents[n++] = e;
	}
	if (n > 0)
		qsort(ents, n, sizeof *ents, rd_ent_cmp);
	/* Merge the .log/.log.zst/.idx entries of one base name. */
	for (size_t i = 0; i < n; i++) {
		if (out > 0 && strcmp(ents[out - 1].base, ents[i].base) == 0) {
			ents[out - 1].has_log |= ents[i].has_log;
			ents[out - 1].has_zst |= ents[i].has_zst;
			ents[out - 1].has_idx |= ents[i].has_idx;
			continue;
		}
		ents[out++] = ents[i];
	}
	*ret_ents = ents;
	*ret_n = out;
	ents = NULL;
out:
	if (d != NULL)
		closedir(d);
	free(ents);
	return rv;
}

/* ------------------------------------------------------------------ */
/* Index sidecars                                                      */

vigil_err
store_seg_index_read(const char *dir, const char *base, store_seg_index *ret_idx)
{
	char path[PATH_MAX];
	uint8_t b[STORE_IDX_SIZE + 1];
	bool special;
	ssize_t n;
	int fd;

	snprintf(path, sizeof path, "%s/%s.idx", dir, base);
	fd = vigil_open_regular(path, &special, NULL);
	if (fd < 0)
		return special ? VIGIL_ECORRUPT : vigil_err_from_errno(errno);
	do
		n = pread(fd, b, sizeof b, 0);
	while (n < 0 && errno == EINTR);
	close(fd);
	if (n < 0)
		return VIGIL_EIO;
	if (n != STORE_IDX_SIZE || memcmp(b, STORE_IDX_MAGIC, 4) != 0 ||
	    vigil_crc32c(0, b, 64) != store_get_le32(b + 64))
		return VIGIL_ECORRUPT;
	if (store_get_le32(b + 4) != STORE_IDX_VERSION)
		return VIGIL_EVERSION;
	ret_idx->first_seq    = store_get_le64(b + 8);
	ret_idx->last_seq     = store_get_le64(b + 16);
	ret_idx->min_event_ms = (int64_t)store_get_le64(b + 24);
	ret_idx->max_event_ms = (int64_t)store_get_le64(b + 32);
	ret_idx->records      = store_get_le64(b + 40);
	ret_idx->bytes        = store_get_le64(b + 48);
	ret_idx->closed_at_ms = (int64_t)store_get_le64(b + 56);
	return VIGIL_OK;
}


vigil_err
store_seg_index_write(const char *dir, const char *base, const store_seg_index *idx, bool sync)
{
	char tmp[PATH_MAX], path[PATH_MAX];
	uint8_t b[STORE_IDX_SIZE];
	vigil_err rv = VIGIL_OK;
	ssize_t n;
	int fd;

	memcpy(b, STORE_IDX_MAGIC, 4);
	store_put_le32(b + 4, STORE_IDX_VERSION);
	store_put_le64(b + 8, idx->first_seq);
	store_put_le64(b + 16, idx->last_seq);
	store_put_le64(b + 24, (uint64_t)idx->min_event_ms);
	store_put_le64(b + 32, (uint64_t)idx->max_event_ms);
	store_put_le64(b + 40, idx->records);
	store_put_le64(b + 48, idx->bytes);
	store_put_le64(b + 56, (uint64_t)idx->closed_at_ms);
	store_put_le32(b + 64, vigil_crc32c(0, b, 64));
	snprintf(tmp, sizeof tmp, "%s/%s.idx.tmp", dir, base);
	snprintf(path, sizeof path, "%s/%s.idx", dir, base);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd < 0)
		return vigil_err_from_errno(errno);
	do
		n = write(fd, b, sizeof b);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)sizeof b || (sync && fdatasync(fd) != 0))
		rv = VIGIL_EIO;
	if (close(fd) != 0 && rv == VIGIL_OK)
		rv = VIGIL_EIO;
	if (rv == VIGIL_OK && rename(tmp, path) != 0)
		rv = vigil_err_from_errno(errno);
	if (rv != VIGIL_OK) {
		unlink(tmp);
		return rv;
	}
	return sync ? vigil_fsync_dir(dir) : VIGIL_OK;
}

/* ------------------------------------------------------------------ */
/* Reader                                                              */

struct store_reader {
	/* directory mode: segments to visit; single-segment mode: nsegs == 0 */
	char          *dir;
	store_seg_ent *segs;
	size_t         nsegs, next_seg;
	int64_t        from_ms, to_ms;
	store_corrupt_fn on_corrupt;
	void          *arg;

	/* the open segment */
	int            fd;
	bool           file_only; /* never the journal (store_seg_scan) */
	uint8_t       *jbuf;      /* a frame from the journal (rd_journal_frame) */
	size_t         jcap;
	bool           open;
	bool           growing; /* may still be appended to: a partial frame at EOF is not damage */
	char           segname[NAME_MAX + 1]; /* file name only */
	char           path[PATH_MAX];
	ZSTD_DStream  *zds;
	uint8_t       *zin;
	size_t         zin_cap, zin_pos, zin_len;
	bool           zin_eof;
	size_t         zlast; /* the stream decoder's last hint: 0 between frames */
	char           zmsg[160]; /* a report made while decoding, held (rd_defer) */
	bool           zpend;
	uint64_t       zpend_off, zpend_len;
	/* a .log.zst with a frame table (archive_int.h): read frame by frame */
	store_zent    *zt;
	uint32_t       nz, zi; /* frames, next frame */
	bool           zcut;   /* the buffer ends at a damaged frame's end or salvage */
	size_t         zcap;   /* store_zent capacity */
	uint8_t       *zf;           /* one frame's compressed bytes */
	size_t         zf_cap;

	/* decoded bytes of the segment: buf[start..end) is at segment offset base_off + start */
	uint8_t       *buf;
	size_t         cap, start, end;
	uint64_t       base_off;
	bool           eof, paged; /* paged: read a page at a time (rd_read_fd) */

	/* store_reader_want: types returned (bit per type; 0 all). The frames
	 * skipped unchecked begin at buf[skim_from] (skimmed); before segment
	 * offset check_end every frame is checked (a skip ran into trouble
	 * there). last_seq: sequence number of the last frame checked or
	 * skipped in this segment (seq_known). */
	uint32_t       want;
	bool           skimmed, seq_known;
	size_t         skim_from;
	uint64_t       check_end, last_seq, skim_seq;

	/* resynchronisation after a corrupt frame */
	bool           resync;
	uint64_t       bad_off;
	const char    *bad_what;
	bool           bad_tail; /* the stretch began with a frame cut short by EOF */
	bool           bad_zero; /* ... or with zeros where a growing segment's next frame goes */
	uint64_t       idx_end, idx_last_seq; /* a closed segment's, by its index (0: none) */

	store_reader_stats st;
};

static void
rd_seg_close(store_reader *rd)
{
	if (rd->fd >= 0)
		close(rd->fd);
	rd->fd = -1;
	rd->open = false;
	rd->start = rd->end = 0;
	rd->base_off = 0;
	rd->eof = false;
	rd->resync = false;
	rd->skimmed = rd->seq_known = false;
	rd->check_end = 0;
	rd->zin_pos = rd->zin_len = 0;
	rd->zin_eof = rd->zpend = rd->zcut = false;
	rd->nz = rd->zi = 0;
}

/*
 * Reads the frame table at the end of a compressed segment (archive_int.h)
 * into rd->zt. False if there is none (a file of one zstd frame, written
 * before tables) or it does not hold together (its CRC, sizes that do not
 * add up to the file): the file is then read as one stream.
 */
static bool
rd_ztab_load(store_reader *rd, uint64_t fsize)
{
	uint8_t tail[STORE_ZTAB_TAIL], *t = NULL;
	uint32_t n;
	size_t len;
	bool ok = false;

	if (fsize < STORE_ZTAB_TAIL ||
	    pread(rd->fd, tail, sizeof tail, (off_t)(fsize - sizeof tail)) != (ssize_t)sizeof tail ||
	    (n = store_ztab_frames(tail)) == 0 || (len = STORE_ZTAB_LEN(n)) > fsize)
		return false;
	t = malloc(len);
	ok = t != NULL && pread(rd->fd, t, len, (off_t)(fsize - len)) == (ssize_t)len &&
	    vigil_array_reserve(&rd->zt, &rd->zcap, n, sizeof *rd->zt, n, STORE_ZTAB_MAX) == VIGIL_OK &&
	    store_ztab_decode(t, n, fsize, rd->zt);
	rd->nz = ok ? n : 0;
	rd->zi = 0;
	free(t);
	return ok;
}

static vigil_err
rd_seg_open(store_reader *rd, const char *path, const char *name, bool zst, bool growing,
    store_diag *reterr)
{
	struct stat st;
	bool special;

	/* A FIFO would block the open until a writer came, a device could
	 * feed bytes for ever: refused before open(2). */
	rd->fd = vigil_open_regular(path, &special, &st);
	if (rd->fd < 0 && special) {
		store_diag_at(reterr, path, VIGIL_NOPOS, NULL, "not a regular file");
		return VIGIL_EINVAL;
	}
	if (rd->fd < 0) {
		int e = errno;
		store_diag_at(reterr, path, VIGIL_NOPOS, NULL,
		    "cannot open segment: %s", strerror(e));
		return vigil_err_from_errno(e);
	}
	if (zst) {
		if (rd->zds == NULL) {
			rd->zds = ZSTD_createDStream();
			rd->zin_cap = ZSTD_DStreamInSize();
			rd->zin = malloc(rd->zin_cap);
			if (rd->zds == NULL || rd->zin == NULL) {
				close(rd->fd);
				rd->fd = -1;
				return VIGIL_ENOMEM;
			}
		}
		ZSTD_DCtx_reset(rd->zds, ZSTD_reset_session_only);
		rd->zlast = 1; /* nothing decoded yet: an empty file is cut short too */
		(void)rd_ztab_load(rd, (uint64_t)st.st_size);
	}
	snprintf(rd->segname, sizeof rd->segname, "%s", name);
	snprintf(rd->path, sizeof rd->path, "%s", path);
	rd->open = true;
	rd->growing = growing && !zst;
	rd->zin_pos = rd->zin_len = 0;
	rd->zin_eof = !zst; /* unused for plain files */
	rd->st.segments++;
	return VIGIL_OK;
}

static void rd_report(store_reader *rd, uint64_t off, uint64_t skipped, const char *what);

/* Makes the report held by rd_defer if it comes before off. */
static void
rd_flush(store_reader *rd, uint64_t off)
{
	if (rd->zpend && off >= rd->zpend_off) {
		rd->zpend = false;
		rd_report(rd, rd->zpend_off, rd->zpend_len, rd->zmsg);
	}
}

static void
rd_report(store_reader *rd, uint64_t off, uint64_t skipped, const char *what)
{
	if (rd->zpend && off < rd->zpend_off && rd->zpend_off < off + skipped) {
		/* a held report inside this stretch (a frame's end): the part before it first */
		rd_report(rd, off, rd->zpend_off - off, what);
		skipped -= rd->zpend_off - off;
		off = rd->zpend_off;
	}
	rd_flush(rd, off); /* reports come in file order */
	rd->st.corrupt_records++;
	rd->st.corrupt_bytes += skipped;
	if (rd->on_corrupt != NULL)
		rd->on_corrupt(rd->arg, rd->segname, off, skipped, what);
}

/* A report made while decoding, of the bytes at [off, off + len), held until the
 * parser has reported what comes before it (file order); its text goes into the
 * buffer returned. */
static char *
rd_defer(store_reader *rd, uint64_t off, uint64_t len)
{
	if (rd->zpend && rd->resync && rd->bad_off < rd->zpend_off) {
		/* a stretch open across the held report's frame: its part before that first */
		rd_report(rd, rd->bad_off, rd->zpend_off - rd->bad_off, rd->bad_what);
		rd->bad_off = rd->zpend_off;
	}
	rd_flush(rd, UINT64_MAX);
	rd->zpend = true;
	rd->zpend_off = off;
	rd->zpend_len = len;
	return rd->zmsg;
}

/* Reads up to n bytes of the segment into p; after an EIO (a bad sector), a page at
 * a time, so what precedes the bad page is read. -1 on failure, reterr set. */
static ssize_t
rd_read_fd(store_reader *rd, void *p, size_t n, store_diag *reterr)
{
	ssize_t r;

	for (;;) {
		if (rd->paged && n > 4096)
			n = 4096;
		do
			r = read(rd->fd, p, n);
		while (r < 0 && errno == EINTR);
		if (r >= 0 || errno != EIO || n <= 4096)
			break;
		rd->paged = true;
	}
	if (r < 0)
		store_diag_at(reterr, rd->path, VIGIL_NOPOS, NULL, "read: %s", strerror(errno));
	return r;
}

/* The next frame starts at segment offset uoff but the buffer does not end
 * there (a damaged frame came before it): a resynchronisation in progress
 * ends at the damage, reported, then the damaged frame's report; the buffer
 * starts afresh at uoff. */
static void
rd_zgap(store_reader *rd, uint64_t uoff, uint64_t lost_at)
{
	if (rd->resync) {
		if (lost_at > rd->bad_off)
			rd_report(rd, rd->bad_off, lost_at - rd->bad_off, rd->bad_what);
		rd->resync = false;
	}
	rd_flush(rd, UINT64_MAX);
	rd->start = rd->end = 0;
	rd->base_off = uoff;
}

/* Decodes a damaged frame (n bytes) again: decoded whole, zstd gives no output on an
 * error. Its checksum ignored (each record has its own CRC) and its input fed a little
 * at a time, zstd streams out every block before one it cannot decode. */
static void
rd_zsalvage(store_reader *rd, ZSTD_inBuffer *in, ZSTD_outBuffer *out, size_t n)
{
	size_t r;

	ZSTD_DCtx_reset(rd->zds, ZSTD_reset_session_only);
	(void)ZSTD_DCtx_setParameter(rd->zds, ZSTD_d_forceIgnoreChecksum, ZSTD_d_ignoreChecksum);
	in->pos = 0;
	in->size = n < RD_ZSTEP ? n : RD_ZSTEP;
	out->pos = 0;
	for (;;) {
		size_t ip = in->pos, op = out->pos;

		r = ZSTD_decompressStream(rd->zds, out, in);
		if (ZSTD_isError(r) || r == 0)
			break;
		if (in->pos == in->size && in->size < n)
			in->size = n - in->size < RD_ZSTEP ? n : in->size + RD_ZSTEP;
		else if (in->pos == ip && out->pos == op)
			break; /* input cut short, or output full */
	}
	(void)ZSTD_DCtx_setParameter(rd->zds, ZSTD_d_forceIgnoreChecksum, ZSTD_d_validateChecksum);
}

/* Decodes the next zstd frame of a compressed segment with a frame table
 * and appends it to the buffer. A damaged frame (zstd error, checksum, size)
 * costs only its records that did not come out whole (below); the rest of
 * the frame is reported once, with how many of its records are lost (from
 * the table), and reading goes on at the next frame's exact offset. */
static vigil_err
rd_zread(store_reader *rd, store_diag *reterr)
{
	const store_zent *z;
	ZSTD_inBuffer in;
	ZSTD_outBuffer out;
	size_t r = 0, err, salvaged = 0;
	uint32_t recs = 0;
	uint64_t lost_at;
	ssize_t n;
	bool whole;

	if (rd->zi == rd->nz) {
		rd->eof = true;
		return VIGIL_OK;
	}
	z = &rd->zt[rd->zi];
	if (rd->base_off + rd->end != z->uoff)
		rd_zgap(rd, z->uoff, rd->base_off + rd->end);
	/* room for the whole frame after what the buffer holds */
	if (rd->start > 0) {
		memmove(rd->buf, rd->buf + rd->start, rd->end - rd->start);
		rd->base_off += rd->start;
		rd->end -= rd->start;
		rd->start = 0;
	}
	if (vigil_buf_reserve(&rd->buf, &rd->cap, rd->end + z->usize) != VIGIL_OK ||
	    vigil_buf_reserve(&rd->zf, &rd->zf_cap, z->csize) != VIGIL_OK)
		return VIGIL_ENOMEM;
	do
		n = pread(rd->fd, rd->zf, z->csize, (off_t)z->coff);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		store_diag_at(reterr, rd->path, VIGIL_NOPOS, NULL, "read: %s", strerror(errno));
		return VIGIL_EIO;
	}
	rd->zi++;
	ZSTD_DCtx_reset(rd->zds, ZSTD_reset_session_only);
	in = (ZSTD_inBuffer){ rd->zf, (size_t)n, 0 };
	out = (ZSTD_outBuffer){ rd->buf + rd->end, z->usize, 0 };
	for (;;) {
		size_t ip = in.pos, op = out.pos;

		r = ZSTD_decompressStream(rd->zds, &out, &in);
		if (ZSTD_isError(r) || r == 0 || (in.pos == ip && out.pos == op))
			break; /* done, damaged, or stuck (input cut short, output full) */
	}
	whole = !ZSTD_isError(r) && r == 0 && out.pos == z->usize && in.pos == in.size;
	rd->zcut = !whole;
	if (whole) {
		rd->end += z->usize;
		return VIGIL_OK;
	}
	err = r;
	rd_zsalvage(rd, &in, &out, (size_t)n);
	/* Damaged. Keep every record of the output whose own CRC holds, not only
	 * those before the first bad byte (a garbled literal leaves the records
	 * after it whole). Scanned from the first byte the parser has not taken,
	 * as the parser will, to the end of the last record that decodes: that
	 * much is appended (the parser reports the bad stretches inside it);
	 * what is after it (garbled, or never decoded) is this frame's loss,
	 * reported once the parser has reported what is before it (rd_defer). */
	{
		size_t base = rd->start, stop = rd->end + out.pos, p = base, keep = rd->end;
		bool known = rd->seq_known;
		uint64_t last = rd->last_seq;

		while (p < stop) {
			store_record rec;
			size_t used;

			/* in sequence, as the parser takes them (store_reader_next) */
			if (store_frame_decode(rd->buf + p, stop - p, &rec, &used) == VIGIL_OK &&
			    (!known || rec.seq > last)) {
				if (p >= rd->end)
					recs++;
				known = true;
				last = rec.seq;
				p += used;
				keep = p > keep ? p : keep; /* the part before end is the buffer's */
			} else {
				p++;
			}
		}
		salvaged = keep - rd->end;
	}
	lost_at = z->uoff + salvaged;
	if (salvaged == 0) {
		/* Nothing kept: a bad stretch open before this frame ends where
		 * it begins; a record of the frame before that this one was to
		 * complete is part of the loss. */
		if (rd->resync && lost_at > rd->bad_off)
			rd_report(rd, rd->bad_off, lost_at - rd->bad_off, rd->bad_what);
		else if (!rd->resync && rd->end > rd->start)
			lost_at = rd->base_off + rd->start;
		rd->resync = false;
		rd->start = rd->end;
	}
	snprintf(rd_defer(rd, lost_at, z->uoff + z->usize - lost_at), sizeof rd->zmsg,
	    "damaged zstd frame %u (%s): %u of its %u records lost", rd->zi - 1,
	    ZSTD_isError(err) ? ZSTD_getErrorName(err) : "truncated",
	    z->records > recs ? z->records - recs : 0, z->records);
	rd->st.lost_records += z->records > recs ? z->records - recs : 0;
	rd->end += salvaged;
	return VIGIL_OK;
}

/* Appends decoded bytes to buf[end..cap); sets eof at the end of the segment. */
static vigil_err
rd_read_more(store_reader *rd, store_diag *reterr)
{
	if (rd->nz > 0)
		return rd_zread(rd, reterr);
	if (rd->zds == NULL || rd->zin_eof) {
		ssize_t r = rd_read_fd(rd, rd->buf + rd->end, rd->cap - rd->end, reterr);
		if (r < 0)
			return VIGIL_EIO;
		if (r == 0)
			rd->eof = true;
		rd->end += (size_t)r;
		return VIGIL_OK;
	}
	/* zstd: decompress until some output is produced or the input ends */
	for (;;) {
		ZSTD_inBuffer  in  = { rd->zin, rd->zin_len, rd->zin_pos };
		ZSTD_outBuffer out = { rd->buf + rd->end, rd->cap - rd->end, 0 };
		size_t z;

		if (rd->zin_pos == rd->zin_len) {
			ssize_t r = rd_read_fd(rd, rd->zin, rd->zin_cap, reterr);
			if (r < 0)
				return VIGIL_EIO;
			if (r == 0) {
				/* Compressed input ended: no more bytes. In the middle of
				 * a frame, the file was cut short: the rest is lost. */
				if (rd->zlast != 0)
					snprintf(rd_defer(rd, rd->base_off + rd->end, 0), sizeof rd->zmsg,
					    "zstd: compressed segment cut short; rest of segment unreadable");
				rd->eof = true;
				rd->idx_end = rd->zlast != 0 ? 0 : rd->idx_end; /* reported: not by size */
				return VIGIL_OK;
			}
			rd->zin_len = (size_t)r;
			rd->zin_pos = 0;
			in.size = rd->zin_len;
			in.pos = 0;
		}
		z = ZSTD_decompressStream(rd->zds, &out, &in);
		rd->zin_pos = in.pos;
		rd->zlast = ZSTD_isError(z) ? 0 : z;
		if (ZSTD_isError(z)) {
			/* The rest of this segment cannot be decoded: report, go on. */
			snprintf(rd_defer(rd, rd->base_off + rd->end, 0), sizeof rd->zmsg,
			    "zstd: %s; rest of segment unreadable", ZSTD_getErrorName(z));
			rd->eof = true;
			rd->idx_end = 0;
			return VIGIL_OK;
		}
		rd->end += out.pos;
		if (out.pos > 0)
			return VIGIL_OK;
	}
}

/* Does the buffer end where a damaged frame (or its salvage) did, before the next
 * frame? Records do not cross frames, so one reaching past that point is a bad
 * stretch: fetching the next frame would drop the records salvaged after it
 * unseen, and the frame's report, at its end, would fall inside the record. */
static bool
rd_at_cut(const store_reader *rd)
{
	return rd->zcut && rd->zi < rd->nz && rd->end > rd->start;
}

/* Makes at least need bytes available at buf[start..) unless the segment ends first. */
static vigil_err
rd_fill(store_reader *rd, size_t need, store_diag *reterr)
{
	vigil_err rv;

	rv = vigil_array_reserve(&rd->buf, &rd->cap, need, 1, need,
	    STORE_FRAME_HDR + STORE_FRAME_MAX_PAYLOAD);
	if (rv != VIGIL_OK)
		return rv;
	if (rd->start > 0 && rd->cap - rd->start < need + (rd->cap >> 2)) {
		memmove(rd->buf, rd->buf + rd->start, rd->end - rd->start);
		rd->base_off += rd->start;
		rd->end -= rd->start;
		rd->start = 0;
	}
	/* not past a damaged frame: what is before its end is read first (rd_at_cut) */
	while (!rd->eof && rd->end - rd->start < need && rd->end < rd->cap && !rd_at_cut(rd)) {
		rv = rd_read_more(rd, reterr);
		if (rv != VIGIL_OK)
			return rv;
	}
	return VIGIL_OK;
}

/* Opens the next segment of the directory that may hold records in range. */
static vigil_err
rd_next_segment(store_reader *rd, bool *ret_done, store_diag *reterr)
{
	while (rd->next_seg < rd->nsegs) {
		store_seg_ent *e = &rd->segs[rd->next_seg++];
		bool last = rd->next_seg == rd->nsegs;
		store_seg_index idx = { 0 };
		char path[PATH_MAX], name[STORE_SEG_NAME_MAX];
		vigil_err rv;

		if (e->has_idx) {
			rv = store_seg_index_read(rd->dir, e->base, &idx);
			if (rv == VIGIL_OK) {
				if (idx.records == 0 || idx.max_event_ms < rd->from_ms ||
				    idx.min_event_ms >= rd->to_ms)
					continue;
			} else if (rv != VIGIL_ENOTFOUND) {
				/* A damaged index costs a scan, not records; say so. */
				snprintf(name, sizeof name, "%s.idx", e->base);
				if (rd->on_corrupt != NULL)
					rd->on_corrupt(rd->arg, name, 0, 0,
					    "unreadable segment index; scanning the segment");
				e->has_idx = false;
			} else {
				e->has_idx = false; /* removed by retention since listing */
			}
		}
		/* Prefer the original: both exist only mid-compression. */
		for (int z = 0; z < 2; z++) {
			bool zst = z == 1;
			if (zst ? !e->has_zst && !e->has_log : !e->has_log)
				continue;
			snprintf(name, sizeof name, "%s%s", e->base, zst ? ".log.zst" : ".log");
			snprintf(path, sizeof path, "%s/%s", rd->dir, name);
			rv = rd_seg_open(rd, path, name, zst, last && !e->has_idx, reterr);
			if (rv == VIGIL_OK) {
				rd->idx_end = idx.bytes;
				rd->idx_last_seq = idx.last_seq;
				*ret_done = false;
				return VIGIL_OK;
			}
			if (rv != VIGIL_ENOTFOUND)
				return rv;
			/* Compressed (or deleted by retention) since we listed: try the other form. */
		}
	}
	*ret_done = true;
	return VIGIL_OK;
}

static vigil_err
rd_alloc(int64_t from_ms, int64_t to_ms, store_corrupt_fn on_corrupt, void *arg,
    store_reader **ret_rd)
{
	store_reader *rd = calloc(1, sizeof *rd);

	if (rd == NULL)
		return VIGIL_ENOMEM;
	rd->fd = -1;
	rd->cap = RD_BUF_INIT;
	rd->buf = malloc(rd->cap);
	if (rd->buf == NULL) {
		free(rd);
		return VIGIL_ENOMEM;
	}
	rd->from_ms = from_ms;
	rd->to_ms = to_ms;
	rd->on_corrupt = on_corrupt;
	rd->arg = arg;
	*ret_rd = rd;
	return VIGIL_OK;
}

vigil_err
store_reader_open(const char *dir, int64_t from_ms, int64_t to_ms, store_corrupt_fn on_corrupt,
    void *arg, store_reader **ret_rd, store_diag *reterr)
{
	store_reader *rd = NULL;
	vigil_err rv;

	rv = rd_alloc(from_ms, to_ms, on_corrupt, arg, &rd);
	if (rv != VIGIL_OK)
		return rv;
	rv = (rd->dir = strdup(dir)) == NULL ? VIGIL_ENOMEM
	    : store_seg_list(dir, &rd->segs, &rd->nsegs, reterr);
	if (rv == VIGIL_OK)
		*ret_rd = rd;
	else
		store_reader_close(rd);
	return rv;
}

static vigil_err
rd_open_one(const char *path, bool growing, store_corrupt_fn on_corrupt, void *arg,
    store_reader **ret_rd, store_diag *reterr)
{
	store_reader *rd = NULL;
	const char *name = strrchr(path, '/');
	size_t plen = strlen(path);
	bool zst = plen > 4 && strcmp(path + plen - 4, ".zst") == 0;
	vigil_err rv;

	name = name != NULL ? name + 1 : path;
	if (plen >= PATH_MAX || strlen(name) > NAME_MAX) {
		store_diag_at(reterr, path, VIGIL_NOPOS, NULL, "segment path too long");
		return VIGIL_EINVAL;
	}
	rv = rd_alloc(INT64_MIN, INT64_MAX, on_corrupt, arg, &rd);
	if (rv == VIGIL_OK && (rv = rd_seg_open(rd, path, name, zst, growing, reterr)) == VIGIL_OK)
		*ret_rd = rd;
	else
		store_reader_close(rd);
	return rv;
}

vigil_err
store_reader_open_segment(const char *path, store_corrupt_fn on_corrupt, void *arg,
    store_reader **ret_rd, store_diag *reterr)
{
	char idx[PATH_MAX];
	size_t plen = strlen(path);
	bool growing = true;

	/* A segment with an index sidecar beside it is closed: a partial frame
	 * at its end is damage, not a write in progress. */
	if (plen >= 4 && plen < sizeof idx) {
		size_t base = strcmp(path + plen - 4, ".log") == 0 ? plen - 4 :
		    plen >= 8 && strcmp(path + plen - 8, ".log.zst") == 0 ? plen - 8 : 0;
		if (base > 0) {
			snprintf(idx, sizeof idx, "%.*s.idx", (int)base, path);
			growing = access(idx, F_OK) != 0;
		}
	}
	return rd_open_one(path, growing, on_corrupt, arg, ret_rd, reterr);
}

/*
 * A frame start that a growing segment's writer may still be storing: its
 * magic, stored last (archive.c, ar_copy_frames), is not all there yet.
 * Each of the (up to 4) bytes is zero or the magic's byte, and at least one
 * is zero: zeros where the next frame goes, or a magic seen half stored (a
 * store that straddles a cache line, or a read that took the bytes before
 * and after it).
 */
static bool
rd_in_progress(const uint8_t *p, size_t n)
{
	bool zero = n < 4;

	for (size_t i = 0; i < n && i < 4; i++) {
		if (p[i] == 0)
			zero = true;
		else if (p[i] != (uint8_t)STORE_FRAME_MAGIC[i])
			return false;
	}
	return zero;
}

/*
 * The resync of a growing segment found a valid frame after a frame start
 * that looked in progress (bad_zero). The bytes of the buffer were read at
 * different times, so that frame may have been completed since: the writer
 * stores a frame's magic before any byte of the next frame, so once a later
 * frame has been seen whole, the file holds the earlier magic too unless it
 * is damaged. Reads the magic again from the file; if it is there now, the
 * buffer is dropped and reading resumes at that frame (true). Otherwise it
 * is damage, reported by the caller (false).
 */
static bool
rd_rewind_if_written(store_reader *rd)
{
	uint8_t m[4];

	if (!rd->growing || !rd->bad_zero || rd->zds != NULL ||
	    pread(rd->fd, m, sizeof m, (off_t)rd->bad_off) != (ssize_t)sizeof m ||
	    memcmp(m, STORE_FRAME_MAGIC, 4) != 0 ||
	    lseek(rd->fd, (off_t)rd->bad_off, SEEK_SET) != (off_t)rd->bad_off)
		return false;
	rd->base_off = rd->bad_off;
	rd->start = rd->end = 0;
	rd->eof = false;
	rd->resync = false;
	rd->bad_zero = false;
	rd->bad_tail = false;
	return true;
}

/* One step of resynchronisation: looks for the next valid frame at or after
 * start. *ret_found true when buf[start..) holds one; *ret_end true when the
 * segment ended first (the stretch has been reported either way). */
static vigil_err
rd_resync_step(store_reader *rd, bool *ret_found, bool *ret_end, store_diag *reterr)
{
	store_record rec;
	size_t used;
	vigil_err rv;

	*ret_found = *ret_end = false;
	for (;;) {
		uint8_t *p = rd->buf + rd->start;
		size_t avail = rd->end - rd->start;
		uint8_t *m = avail >= 4 ? memmem(p, avail, STORE_FRAME_MAGIC, 4) : NULL;

		if (m == NULL) {
			/* Keep the last 3 bytes: they may start a magic (not at a cut). */
			size_t keep = rd->zcut ? 0 : avail < 3 ? avail : 3;
			if (rd->eof) {
				uint64_t endoff = rd->base_off + rd->end;
				/* A partial frame at the end of a segment still being
				 * written is a write in progress (or, after a crash, the
				 * torn tail the writer truncates): not damage. */
				if (!(rd->growing && (rd->bad_tail || rd->bad_zero)))
					rd_report(rd, rd->bad_off, endoff - rd->bad_off, rd->bad_what);
				rd->resync = false;
				*ret_end = true;
				return VIGIL_OK;
			}
			rd->start = rd->end - keep;
			rv = rd_fill(rd, keep + 1, reterr);
			if (rv != VIGIL_OK || !rd->resync)
				return rv; /* !resync: it ended, reported, at a damaged frame (rd_zread) */
			continue;
		}
		rd->start = (size_t)(m - rd->buf);
		rv = store_frame_decode(m, rd->end - rd->start, &rec, &used);
		if (rv == VIGIL_OK) {
			uint64_t off = rd->base_off + rd->start;

			if (rd_rewind_if_written(rd)) {
				*ret_found = true;
				return VIGIL_OK;
			}
			rd_report(rd, rd->bad_off, off - rd->bad_off,
			    rd->bad_tail ? "bad record length" : rd->bad_what);
			rd->resync = false;
			*ret_found = true;
			return VIGIL_OK;
		}
		if (rv == VIGIL_EAGAIN && !rd->eof && !rd_at_cut(rd)) {
			size_t need = rd->end - rd->start < STORE_FRAME_HDR ? STORE_FRAME_HDR :
			    STORE_FRAME_HDR + store_get_le32(m + 8);
			rv = rd_fill(rd, need, reterr);
			if (rv != VIGIL_OK || !rd->resync)
				return rv;
			continue;
		}
		rd->start++; /* not a frame after all (or one cut short by the end) */
	}
}

void
store_reader_want(store_reader *rd, uint32_t type_mask)
{
	rd->want = type_mask;
}

/* Whole frame (by its length field) at buf[s..end)? */
static bool
rd_whole(const store_reader *rd, size_t s)
{
	return rd->end - s >= STORE_FRAME_HDR &&
	    rd->end - s - STORE_FRAME_HDR >= store_get_le32(rd->buf + s + 8);
}

/*
 * Passes over the frames at buf[start..) whose type is not wanted, by their
 * headers alone (no CRC). A frame is passed over only if its header looks
 * right, carries the next sequence number (they are consecutive in a
 * segment: a damaged length that happens to lead to another frame's start
 * is caught by them) and the frame after it is whole in the buffer: that
 * one, where the skip stops, is then checked (store_reader_next), and if
 * it is damaged or out of sequence the skipped frames are read again,
 * checking each, before the buffer moves on.
 */
static void
rd_skim(store_reader *rd)
{
	size_t s = rd->start, pf = rd->start;
	uint64_t seq = rd->last_seq;

	if (!rd->seq_known)
		return; /* the segment's first frame is checked */
	while (rd_whole(rd, s)) {
		const uint8_t *p = rd->buf + s;
		size_t next = s + STORE_FRAME_HDR + store_get_le32(p + 8);

		/* Where the next header is depends on this one: each would wait
		 * for memory. Load the lines ahead instead, as a stream. */
		if (pf < s)
			pf = s;
		for (; pf < s + RD_SKIM_AHEAD && pf < rd->end; pf += 64)
			__builtin_prefetch(rd->buf + pf);
		if (!store_frame_plausible(p) || (rd->want & (1u << p[5])) != 0 ||
		    store_get_le64(p + 16) != seq + 1 || !rd_whole(rd, next))
			break;
		s = next;
		seq++;
	}
	if (s == rd->start)
		return;
	rd->skim_from = rd->start;
	rd->skim_seq = rd->last_seq;
	rd->skimmed = true;
	rd->st.skipped_bytes += s - rd->start;
	rd->start = s;
	rd->last_seq = seq;
}

/* Reads n bytes of a journal of jlen bytes (fd) from position pos,
 * wrapping at its end. */
static bool
rd_journal_read(int fd, uint64_t jlen, uint64_t pos, uint8_t *buf, size_t n)
{
	while (n > 0) {
		size_t k = jlen - pos < n ? (size_t)(jlen - pos) : n;

		if (pread(fd, buf, k, (off_t)pos) != (ssize_t)k)
			return false;
		buf += k;
		n -= k;
		pos = (pos + k) % jlen;
	}
	return true;
}

vigil_err
store_journal_take(int fd, uint64_t jlen, uint64_t off, uint8_t **buf, size_t *cap,
    store_record *ret_rec, size_t *ret_used)
{
	uint8_t hdr[STORE_FRAME_HDR];
	size_t blen, used;

	if (jlen < 2 * STORE_FRAME_HDR || !rd_journal_read(fd, jlen, off % jlen, hdr, sizeof hdr) ||
	    memcmp(hdr, STORE_FRAME_MAGIC, 4) != 0)
		return VIGIL_ENOTFOUND;
	blen = STORE_FRAME_HDR + (size_t)store_get_le32(hdr + 8);
	if (blen - STORE_FRAME_HDR > STORE_FRAME_MAX_PAYLOAD || blen > jlen / 2)
		return VIGIL_ENOTFOUND;
	if (vigil_buf_reserve(buf, cap, blen) != VIGIL_OK)
		return VIGIL_ENOMEM;
	if (!rd_journal_read(fd, jlen, off % jlen, *buf, blen) ||
	    store_frame_decode(*buf, blen, ret_rec, &used) != VIGIL_OK || used != blen)
		return VIGIL_ENOTFOUND;
	*ret_used = blen;
	return VIGIL_OK;
}

vigil_err
store_journal_frame(const char *seg_path, uint64_t off, uint64_t want_seq, uint8_t **buf,
    size_t *cap, store_record *ret_rec, size_t *ret_used)
{
	const char *slash = strrchr(seg_path, '/');
	size_t dlen = slash != NULL ? (size_t)(slash - seg_path) : 0, plen = strlen(seg_path);
	char jpath[PATH_MAX], idx[PATH_MAX];
	struct stat st;
	vigil_err rv = VIGIL_ENOTFOUND;
	bool special;
	int fd;

	if (plen < 4 || strcmp(seg_path + plen - 4, ".log") != 0)
		return VIGIL_ENOTFOUND;
	snprintf(jpath, sizeof jpath, "%.*s%s" STORE_JOURNAL_NAME, (int)dlen, seg_path,
	    dlen > 0 ? "/" : "");
	fd = vigil_open_regular(jpath, &special, &st);
	if (fd < 0)
		return VIGIL_ENOTFOUND;
	rv = store_journal_take(fd, (uint64_t)st.st_size, off, buf, cap, ret_rec, ret_used);
	/* read after the frame: the segment still has no index, so the
	 * journal held its frames, not yet the next segment's */
	snprintf(idx, sizeof idx, "%.*s.idx", (int)(plen - 4), seg_path);
	if (rv == VIGIL_OK && ((want_seq != 0 && ret_rec->seq != want_seq) ||
	    access(idx, F_OK) == 0))
		rv = VIGIL_ENOTFOUND;
	/* any sequence number: the frame is off's only if it was not yet
	 * written into the file when the journal was read (the writer reuses
	 * a frame's place in the journal only once the file holds it) */
	if (rv == VIGIL_OK && want_seq == 0 &&
	    (stat(seg_path, &st) != 0 || (uint64_t)st.st_size >= off + *ret_used))
		rv = VIGIL_ENOTFOUND;
	close(fd);
	return rv;
}

/* The first read of a frame by position: most records fit it. */
#define RD_AT_FIRST_READ 8192u

/* The frame at off of fd, read whole: VIGIL_OK; VIGIL_EAGAIN if the file
 * holds only its start, or nothing there; VIGIL_ECORRUPT; VIGIL_ENOMEM;
 * errno-mapped codes from pread. */
static vigil_err
rd_frame_pread(int fd, uint64_t off, uint8_t **buf, size_t *cap, store_record *ret_rec)
{
	size_t want = RD_AT_FIRST_READ, used;
	vigil_err rv;
	ssize_t n;

	for (;;) {
		if (vigil_buf_reserve(buf, cap, want) != VIGIL_OK)
			return VIGIL_ENOMEM;
		do
			n = pread(fd, *buf, want, (off_t)off);
		while (n < 0 && errno == EINTR);
		if (n < 0)
			return vigil_err_from_errno(errno);
		rv = store_frame_decode(*buf, (size_t)n, ret_rec, &used);
		/* a read short of what was asked ends at the end of the file */
		if (rv != VIGIL_EAGAIN || (size_t)n < want || want > RD_AT_FIRST_READ)
			return rv;
		/* filled the first read: the header, plausible, says how long */
		want = STORE_FRAME_HDR + (size_t)store_get_le32(*buf + 8);
	}
}

vigil_err
store_frame_at(int fd, const char *seg_path, uint64_t off, uint64_t want_seq, uint8_t **buf,
    size_t *cap, store_record *ret_rec)
{
	size_t used;
	vigil_err rv;

	rv = rd_frame_pread(fd, off, buf, cap, ret_rec);
	/* not all in the file yet: the journal, then the file again (a drain
	 * may have written it between the two reads) */
	if (rv == VIGIL_EAGAIN &&
	    (rv = store_journal_frame(seg_path, off, want_seq, buf, cap, ret_rec, &used)) ==
	    VIGIL_ENOTFOUND)
		rv = rd_frame_pread(fd, off, buf, cap, ret_rec);
	if (rv == VIGIL_EAGAIN)
		return VIGIL_ENOTFOUND;
	if (rv != VIGIL_OK)
		return rv;
	if (want_seq != 0 && ret_rec->seq != want_seq)
		return VIGIL_ECORRUPT;
	ret_rec->offset = off;
	return VIGIL_OK;
}

/* At the end of a growing segment's file, or at a frame it holds only the
 * start of (a drain writing it): the next frame from the writer's journal
 * (store_journal_frame), the last sequence number read plus one (the
 * segment's first for an empty one), if it begins with the bytes the file
 * holds of it. Its bytes replace the buffer's, as if
 * read from the file, which is read on after them. False (the buffer as it
 * was): the end, for now. */
static bool
rd_journal_frame(store_reader *rd)
{
	uint64_t off = rd->base_off + rd->start, want;
	store_seg_ent e;
	store_record r;
	size_t used;
	int kind;

	if (rd->seq_known)
		want = rd->last_seq + 1;
	else if (off == 0 && rd_parse_name(rd->segname, &e, &kind) && kind == 0)
		want = e.first_seq;
	else
		return false;
	if (store_journal_frame(rd->path, off, want, &rd->jbuf, &rd->jcap, &r, &used) != VIGIL_OK)
		return false;
	/* the bytes of it the file holds are its start (a drain writing it),
	 * not damage the journal would paper over */
	if (rd->end - rd->start > used ||
	    memcmp(rd->buf + rd->start, rd->jbuf, rd->end - rd->start) != 0)
		return false;
	if (vigil_buf_reserve(&rd->buf, &rd->cap, used) != VIGIL_OK)
		return false;
	if (lseek(rd->fd, (off_t)(off + used), SEEK_SET) < 0)
		return false;
	memcpy(rd->buf, rd->jbuf, used);
	rd->start = 0;
	rd->end = used;
	rd->base_off = off;
	rd->eof = false;
	rd->st.journal_records++;
	return true;
}

/* The growing segment's file holds more than was read (a drain since the
 * read that found its end, whose frames the journal no longer holds):
 * read on. */
static bool
rd_file_grew(store_reader *rd)
{
	struct stat st;

	if (fstat(rd->fd, &st) != 0 || (uint64_t)st.st_size <= rd->base_off + rd->end)
		return false;
	rd->eof = false;
	return true;
}

/* The end of the open segment: one shorter than its index lost whole records, cut
 * where no torn frame shows it (a frame table accounts for its frames itself). */
static void
rd_seg_end(store_reader *rd)
{
	rd_flush(rd, UINT64_MAX); /* the held report is out: its buffer is free */
	if (rd->nz == 0 && rd->idx_end > rd->base_off + rd->end) {
		snprintf(rd->zmsg, sizeof rd->zmsg, "segment cut short: its index says %llu bytes, "
		    "to sequence %llu; the records after the last read are lost",
		    (unsigned long long)rd->idx_end, (unsigned long long)rd->idx_last_seq);
		rd_report(rd, rd->base_off + rd->end, rd->idx_end - rd->base_off - rd->end, rd->zmsg);
	}
	rd_seg_close(rd);
}

vigil_err
store_reader_next(store_reader *rd, store_record *ret_rec, store_diag *reterr)
{
	store_record rec;
	size_t used, avail;
	bool done, found, end;
	vigil_err rv;

	for (;;) {
		if (!rd->open) {
			if (rd->nsegs == 0)
				return VIGIL_ENOTFOUND;
			rv = rd_next_segment(rd, &done, reterr);
			if (rv != VIGIL_OK)
				return rv;
			if (done)
				return VIGIL_ENOTFOUND;
		}
		if (rd->resync) {
			rv = rd_resync_step(rd, &found, &end, reterr);
			if (rv != VIGIL_OK)
				return rv;
			if (end) {
				rd_seg_end(rd);
				continue;
			}
		}
		if (rd->want != 0 && rd->base_off + rd->start >= rd->check_end)
			rd_skim(rd);
		avail = rd->end - rd->start;
		rv = store_frame_decode(rd->buf + rd->start, avail, &rec, &used);
		/* out of sequence after a skip (go back), or behind the last: a
		 * record copied whole by damage (a garbled zstd match) */
		if (rv == VIGIL_OK && rd->seq_known &&
		    (rd->skimmed ? rec.seq != rd->last_seq + 1 : rec.seq <= rd->last_seq))
			rv = VIGIL_ECORRUPT;
		if (rv == VIGIL_OK) {
			uint64_t off = rd->base_off + rd->start;
			rd->start += used;
			rd->last_seq = rec.seq;
			rd->seq_known = true;
			rd->skimmed = false; /* the frames skipped lead here in sequence */
			if (rd->want != 0 && (rd->want & (1u << rec.type)) == 0) {
				rd->st.skipped_bytes += used;
				continue;
			}
			if (rec.event_time_ms < rd->from_ms || rec.event_time_ms >= rd->to_ms)
				continue;
			rd_flush(rd, off);
			rec.segment = rd->segname;
			rec.offset = off;
			rd->st.records++;
			rd->st.bytes += used;
			*ret_rec = rec;
			return VIGIL_OK;
		}
		if (rv == VIGIL_EAGAIN && rd_at_cut(rd))
			rv = VIGIL_ECORRUPT; /* reaches past a damaged frame's salvage */
		if (rd->skimmed) {
			/* The frame the skip reached is damaged or out of sequence.
			 * The damage may begin among the unchecked frames before it
			 * (a bad length leads the skip astray): read them again,
			 * checking each, so the stretch is found and reported as
			 * without skipping. They are still in the buffer. */
			rd->st.skipped_bytes -= rd->start - rd->skim_from;
			rd->check_end = rd->base_off + rd->start + 1;
			rd->start = rd->skim_from;
			rd->last_seq = rd->skim_seq;
			rd->skimmed = false;
			continue;
		}
		if (rv == VIGIL_EAGAIN) {
			if (!rd->eof) {
				size_t need = avail < STORE_FRAME_HDR ? STORE_FRAME_HDR :
				    STORE_FRAME_HDR + store_get_le32(rd->buf + rd->start + 8);
				rv = rd_fill(rd, need, reterr);
				if (rv != VIGIL_OK)
					return rv;
				continue;
			}
			if (rd->growing && !rd->file_only &&
			    (rd_journal_frame(rd) || rd_file_grew(rd)))
				continue;
			if (avail == 0) {
				rd_seg_end(rd);
				continue;
			}
			/* A frame cut short by the end of the segment: a torn tail
			 * only if no valid frame follows (its length field may be
			 * what is damaged), so look for one. */
			rd->bad_off = rd->base_off + rd->start;
			rd->bad_what = "truncated record at end of segment";
			rd->bad_tail = true;
			rd->bad_zero = false;
			rd->resync = true;
			rd->start++;
			continue;
		}
		/* VIGIL_ECORRUPT */
		rd->bad_tail = false;
		/* Zeros where the next frame of a growing segment goes: the
		 * writer's preallocated tail (or a frame whose magic it has not
		 * stored yet), so the end of the data unless a valid frame follows. */
		rd->bad_zero = rd->growing && rd_in_progress(rd->buf + rd->start, avail);
		rd->bad_off = rd->base_off + rd->start;
		rd->bad_what = avail >= STORE_FRAME_HDR && store_frame_plausible(rd->buf + rd->start) ?
		    "CRC mismatch" : "bad frame header";
		rd->resync = true;
		rd->start++;
	}
}

void
store_reader_get_stats(const store_reader *rd, store_reader_stats *ret_stats)
{
	*ret_stats = rd->st;
}

void
store_reader_close(store_reader *rd)
{
	if (rd == NULL)
		return;
	if (rd->fd >= 0)
		close(rd->fd);
	ZSTD_freeDStream(rd->zds);
	free(rd->zin);
	free(rd->zt);
	free(rd->zf);
	free(rd->buf);
	free(rd->jbuf);
	free(rd->segs);
	free(rd->dir);
	free(rd);
}

vigil_err
store_seg_scan(const char *path, store_seg_index *ret_idx, uint64_t *ret_valid_end,
    store_diag *reterr)
{
	store_reader *rd = NULL;
	store_record rec;
	store_seg_index idx = { .min_event_ms = INT64_MAX, .max_event_ms = INT64_MIN };
	uint64_t valid_end = 0;
	vigil_err rv;

	rv = rd_open_one(path, true, NULL, NULL, &rd, reterr);
	if (rv != VIGIL_OK)
		goto out;
	rd->file_only = true; /* what the file holds: the writer's recovery takes the journal's */
	while ((rv = store_reader_next(rd, &rec, reterr)) == VIGIL_OK) {
		if (idx.records == 0)
			idx.first_seq = rec.seq;
		if (rec.seq > idx.last_seq)
			idx.last_seq = rec.seq;
		if (rec.event_time_ms < idx.min_event_ms)
			idx.min_event_ms = rec.event_time_ms;
		if (rec.event_time_ms > idx.max_event_ms)
			idx.max_event_ms = rec.event_time_ms;
		idx.records++;
		valid_end = rec.offset + STORE_FRAME_HDR + rec.len;
	}
	if (rv != VIGIL_ENOTFOUND)
		goto out;
	rv = VIGIL_OK;
	if (idx.records == 0)
		idx.min_event_ms = idx.max_event_ms = 0;
	idx.bytes = valid_end;
	*ret_idx = idx;
	*ret_valid_end = valid_end;
out:
	store_reader_close(rd);
	return rv;
}
