/* SPDX-License-Identifier: MIT */
/*
 * console/tail.c - follows the archive (tail.h). Segment names are
 * "seg-YYYYMMDD-S.log[.zst]" with S the first sequence number (docs/
 * archive.md); the open segment is the one without an ".idx" beside it; its
 * file ends at its last frame written out, and the frames after it are in
 * the writer's journal until the writer writes them (store_journal_frame;
 * segments of older writers end in preallocated zeros). A frame is taken
 * only once its CRC checks, so a write in progress is simply not seen yet.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "segment.h"
#include "tail.h"
#include "vec.h"

#define TAIL_CHUNK   (4u << 20)
#define TAIL_MAX_REC ((16u << 20) + 64u)

struct con_tail {
	char          dir[4096];
	uint64_t      last_seq;
	uint64_t      seg;       /* segment being read (first seq); 0 none */
	bool          resume;    /* seg/off come from the committed position */
	uint64_t      resume_off;
	/* pread mode (.log) */
	int           fd;
	uint64_t      off;       /* next frame */
	uint8_t      *buf;
	size_t        cap, blen;
	bool          short_read; /* the last pread reached the end of the file */
	uint8_t      *jbuf;      /* a frame from the writer's journal (tail_journal) */
	size_t        jcap;
	uint64_t      boff;      /* file offset of buf[0] */
	/* reader mode (.log.zst, or a damaged .log) */
	store_reader *rd;
	uint64_t      corrupt;
	bool          quiet;     /* count corrupt stretches, print nothing */
};

static void
tail_on_corrupt(void *arg, const char *segment, uint64_t offset, uint64_t skipped,
    const char *what)
{
	con_tail *t = arg;
	char w[600];

	t->corrupt++;
	if (t->quiet)
		return;
	fprintf(stderr, "vigil-console: archive %s\n",
	    store_corrupt_text(w, sizeof w, segment, offset, skipped, what));
}

vigil_err
con_tail_new(const char *archive_dir, uint64_t last_seq, uint64_t seg_first, uint64_t seg_off,
    con_tail **ret_t)
{
	con_tail *t = calloc(1, sizeof *t);

	if (t == NULL)
		return VIGIL_ENOMEM;
	snprintf(t->dir, sizeof t->dir, "%s", archive_dir);
	t->last_seq = last_seq;
	t->seg = seg_first;
	t->resume = seg_first != 0;
	t->resume_off = seg_off;
	t->fd = -1;
	*ret_t = t;
	return VIGIL_OK;
}

static void
tail_close_seg(con_tail *t)
{
	if (t->fd >= 0)
		close(t->fd);
	t->fd = -1;
	t->blen = 0;
	store_reader_close(t->rd);
	t->rd = NULL;
}

void
con_tail_free(con_tail *t)
{
	if (t == NULL)
		return;
	tail_close_seg(t);
	free(t->buf);
	free(t->jbuf);
	free(t);
}

uint64_t
con_tail_take_corrupt(con_tail *t)
{
	uint64_t n = t->corrupt;

	t->corrupt = 0;
	return n;
}

/* The segment with the smallest S > after (or == after when exact), its
 * name's stem "seg-YYYYMMDD-S" and whether it is compressed. */
static bool
tail_find(con_tail *t, uint64_t after, bool exact, uint64_t *ret_s, char *stem, size_t stemlen,
    bool *ret_zst)
{
	DIR *d = opendir(t->dir);
	struct dirent *e;
	bool found = false;
	uint64_t best = 0;

	if (d == NULL)
		return false;
	while ((e = readdir(d)) != NULL) {
		char date[16], rest[32];
		unsigned long long s;
		int used = 0;

		if (strncmp(e->d_name, "seg-", 4) != 0)
			continue;
		if (sscanf(e->d_name, "seg-%8[0-9]-%20llu%n", date, &s, &used) != 2)
			continue;
		snprintf(rest, sizeof rest, "%s", e->d_name + used);
		bool zst = strcmp(rest, ".log.zst") == 0;
		if (!zst && strcmp(rest, ".log") != 0)
			continue;
		if (exact ? s != after : s <= after)
			continue;
		if (!found || s < best || (s == best && !zst)) {
			best = s;
			found = true;
			*ret_zst = zst;
			snprintf(stem, stemlen, "seg-%s-%020llu", date, s);
		}
	}
	closedir(d);
	*ret_s = best;
	return found;
}

static bool
tail_closed(con_tail *t, const char *stem)
{
	char p[4200];
	struct stat st;

	snprintf(p, sizeof p, "%s/%s.idx", t->dir, stem);
	return stat(p, &st) == 0;
}

static vigil_err
tail_open(con_tail *t, uint64_t s, const char *stem, bool zst, uint64_t off, char *errbuf,
    size_t errlen)
{
	char p[4200];
	store_diag d;
	vigil_err rv;

	tail_close_seg(t);
	t->seg = s;
	if (zst) {
		snprintf(p, sizeof p, "%s/%s.log.zst", t->dir, stem);
		rv = store_reader_open_segment(p, tail_on_corrupt, t, &t->rd, &d);
		if (rv != VIGIL_OK)
			snprintf(errbuf, errlen, "%s", d.msg);
		return rv;
	}
	snprintf(p, sizeof p, "%s/%s.log", t->dir, stem);
	t->fd = open(p, O_RDONLY | O_CLOEXEC);
	if (t->fd < 0) {
		snprintf(errbuf, errlen, "%s: %s", p, strerror(errno));
		return vigil_err_from_errno(errno);
	}
	t->off = off;
	t->blen = 0;
	return VIGIL_OK;
}

/* Reread the current .log segment through the store's reader (a damaged
 * stretch: it reports and resynchronises). */
static vigil_err
tail_to_reader(con_tail *t, char *errbuf, size_t errlen)
{
	char stem[64], p[4200];
	store_diag d;
	uint64_t s;
	bool zst;
	vigil_err rv;

	if (!tail_find(t, t->seg, true, &s, stem, sizeof stem, &zst))
		return VIGIL_EAGAIN;
	tail_close_seg(t);
	t->seg = s;
	snprintf(p, sizeof p, "%s/%s.log%s", t->dir, stem, zst ? ".zst" : "");
	rv = store_reader_open_segment(p, tail_on_corrupt, t, &t->rd, &d);
	if (rv != VIGIL_OK)
		snprintf(errbuf, errlen, "%s", d.msg);
	return rv;
}

/* One frame at t->off of the .log: VIGIL_OK, VIGIL_EAGAIN (no whole frame
 * yet: end of data, zeros, or a write in progress), VIGIL_ECORRUPT. */
static vigil_err
tail_frame(con_tail *t, store_record *ret_rec, size_t *ret_used)
{
	for (int tries = 0; tries < 3; tries++) {
		if (t->off >= t->boff && t->off - t->boff < t->blen) {
			const uint8_t *p = t->buf + (t->off - t->boff);
			size_t avail = t->blen - (size_t)(t->off - t->boff);
			vigil_err rv;

			if (avail >= 4 && p[0] == 0 && p[1] == 0 && p[2] == 0 && p[3] == 0) {
				t->blen = 0; /* read again next time: the writer goes on */
				return VIGIL_EAGAIN; /* preallocated zeros: the end for now */
			}
			rv = store_frame_decode(p, avail, ret_rec, ret_used);
			if (rv != VIGIL_EAGAIN)
				return rv;
			if (tries > 0 && t->short_read) {
				t->blen = 0;
				return VIGIL_EAGAIN; /* the file ends there, for now */
			}
		}
		/* refill at off, big enough for the frame */
		size_t want = TAIL_CHUNK;
		if (t->off >= t->boff && t->off - t->boff < t->blen) {
			size_t fs = store_frame_size(t->buf + (t->off - t->boff),
			    t->blen - (size_t)(t->off - t->boff));
			if (fs > want)
				want = fs;
			if (want > TAIL_MAX_REC)
				return VIGIL_ECORRUPT;
		}
		if (vigil_buf_reserve(&t->buf, &t->cap, want) != VIGIL_OK)
			return VIGIL_ENOMEM;
		ssize_t r;
		do
			r = pread(t->fd, t->buf, want, (off_t)t->off);
		while (r < 0 && errno == EINTR);
		if (r < 0)
			return VIGIL_EIO;
		t->boff = t->off;
		t->blen = (size_t)r;
		t->short_read = (size_t)r < want;
		if (r == 0)
			return VIGIL_EAGAIN;
	}
	t->blen = 0;
	return VIGIL_EAGAIN;
}

/* The open segment's frame at t->off from the writer's journal: the next
 * sequence number (the segment's first at its start). */
static vigil_err
tail_journal(con_tail *t, const char *stem, store_record *ret_rec)
{
	char p[4200];
	size_t used;
	vigil_err rv;

	snprintf(p, sizeof p, "%s/%s.log", t->dir, stem);
	rv = store_journal_frame(p, t->off, t->off == 0 ? t->seg : t->last_seq + 1, &t->jbuf,
	    &t->jcap, ret_rec, &used);
	if (rv != VIGIL_OK)
		return rv;
	ret_rec->offset = t->off;
	t->off += used;
	t->blen = 0;
	return VIGIL_OK;
}

vigil_err
con_tail_next(con_tail *t, store_record *ret_rec, uint64_t *ret_seg, uint64_t *ret_next_off,
    char *errbuf, size_t errlen)
{
	char stem[64];
	uint64_t s;
	bool zst;
	vigil_err rv;

	for (;;) {
		if (t->rd != NULL) {
			store_diag d;

			rv = store_reader_next(t->rd, ret_rec, &d);
			if (rv == VIGIL_OK) {
				if (ret_rec->seq <= t->last_seq)
					continue;
				t->last_seq = ret_rec->seq;
				*ret_seg = t->seg;
				*ret_next_off = ret_rec->offset + 32 + ret_rec->len;
				return VIGIL_OK;
			}
			if (rv != VIGIL_ENOTFOUND) {
				snprintf(errbuf, errlen, "%s", d.msg);
				return rv;
			}
			/* the segment is done (a reader is used on closed ones only) */
			tail_close_seg(t);
		} else if (t->fd >= 0) {
			size_t used;

			rv = tail_frame(t, ret_rec, &used);
			if (rv != VIGIL_OK)
				t->blen = 0; /* read the bytes again next time: a torn tail is rewritten */
			if (rv == VIGIL_OK) {
				ret_rec->offset = t->off;
				t->off += used;
				if (ret_rec->seq <= t->last_seq)
					continue;
				t->last_seq = ret_rec->seq;
				*ret_seg = t->seg;
				*ret_next_off = t->off;
				return VIGIL_OK;
			}
			if (rv == VIGIL_ENOMEM || rv == VIGIL_EIO) {
				snprintf(errbuf, errlen, "archive segment %" PRIu64 ": %s", t->seg,
				    vigil_strerror(rv));
				return rv;
			}
			/* EAGAIN or ECORRUPT: done only if the segment is closed */
			if (!tail_find(t, t->seg, true, &s, stem, sizeof stem, &zst))
				return VIGIL_EAGAIN; /* gone (retention)? the next one, later */
			if (!zst && !tail_closed(t, stem)) {
				/* the open segment: the writer's journal may hold what
				 * its file does not yet (docs/archive.md, "The journal") */
				if (rv == VIGIL_EAGAIN && tail_journal(t, stem, ret_rec) == VIGIL_OK) {
					if (ret_rec->seq <= t->last_seq)
						continue;
					t->last_seq = ret_rec->seq;
					*ret_seg = t->seg;
					*ret_next_off = t->off;
					return VIGIL_OK;
				}
				return VIGIL_EAGAIN; /* wait for more */
			}
			struct stat st;
			if (rv == VIGIL_EAGAIN && fstat(t->fd, &st) == 0 && (uint64_t)st.st_size <= t->off) {
				tail_close_seg(t);
			} else {
				/* damage inside a closed segment: let the store's reader
				 * report and skip it (records <= last_seq are passed over) */
				rv = tail_to_reader(t, errbuf, errlen);
				if (rv == VIGIL_EAGAIN) {
					tail_close_seg(t);
				} else if (rv != VIGIL_OK) {
					return rv;
				}
				continue;
			}
		}
		/* the next segment to read */
		if (t->resume) {
			t->resume = false;
			if (tail_find(t, t->seg, true, &s, stem, sizeof stem, &zst)) {
				rv = tail_open(t, s, stem, zst, zst ? 0 : t->resume_off, errbuf, errlen);
				if (rv != VIGIL_OK)
					return rv;
				continue;
			}
		}
		if (!tail_find(t, t->seg, false, &s, stem, sizeof stem, &zst))
			return VIGIL_EAGAIN;
		rv = tail_open(t, s, stem, zst, 0, errbuf, errlen);
		if (rv != VIGIL_OK)
			return rv;
	}
}

vigil_err
con_tail_each(con_tail *t, uint32_t max,
    vigil_err (*fn)(void *arg, const store_record *r, uint64_t seg, uint64_t next_off),
    void *arg, uint32_t *ret_n, bool *ret_more, char *errbuf, size_t errlen)
{
	uint32_t n = 0;
	vigil_err rv = VIGIL_OK;

	while (n < max) {
		store_record r;
		uint64_t seg, next_off;

		rv = con_tail_next(t, &r, &seg, &next_off, errbuf, errlen);
		if (rv == VIGIL_EAGAIN) {
			rv = VIGIL_OK;
			break;
		}
		if (rv != VIGIL_OK)
			break;
		rv = fn(arg, &r, seg, next_off);
		if (rv != VIGIL_OK)
			break;
		n++;
	}
	*ret_n = n;
	*ret_more = rv == VIGIL_OK && n == max;
	return rv;
}

void
con_tail_set_quiet(con_tail *t, bool quiet)
{
	t->quiet = quiet;
}
