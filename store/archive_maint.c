/* SPDX-License-Identifier: MIT */
/*
 * store/archive_maint.c - the archive's maintenance (store_archive_maintain,
 * store_archive_rotate): zstd compression of closed segments into
 * independent frames, retention, and the repair and retry of a failing
 * archive (docs/archive.md, "Errors").
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
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "archive_w_int.h"
#include "file.h"
#include "vec.h"

/* ------------------------------------------------------------------ */
/* Maintenance                                                         */

/* What ar_zfill reads at least, when it reads: a whole frame's target and
 * the header after it, so a frame costs one or two reads, not two per
 * record (a pread per header and per body was about 0.4 us a record). */
#define AR_ZREAD (STORE_ZFRAME_TARGET + STORE_FRAME_HDR)

/* Makes in[0..*have) hold at least need bytes of the file from off (fewer
 * at its end), growing in; when it has to read, it reads ahead up to
 * AR_ZREAD bytes from off. */
static vigil_err
ar_zfill(int fd, uint8_t **in, size_t *incap, size_t *have, uint64_t off, size_t need,
    uint64_t fsize)
{
	size_t want;

	if (need > fsize - off)
		need = (size_t)(fsize - off);
	if (*have >= need)
		return VIGIL_OK;
	want = need > AR_ZREAD ? need : AR_ZREAD;
	if (want > fsize - off)
		want = (size_t)(fsize - off);
	if (vigil_buf_reserve(in, incap, want) != VIGIL_OK)
		return VIGIL_ENOMEM;
	while (*have < need) {
		ssize_t n = pread(fd, *in + *have, want - *have, (off_t)(off + *have));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return VIGIL_EIO;
		*have += (size_t)n;
	}
	return VIGIL_OK;
}

/* The length of the next zstd frame's input at in[0..) (file offset off):
 * whole records, about STORE_ZFRAME_TARGET bytes (at least one record), and
 * *ret_records of them. Where the bytes are not records (damage in a
 * closed segment: kept as it is) the frame runs to the next plausible
 * record header, so the frames after it are record-aligned again. */
static vigil_err
ar_zchunk(int fd, uint8_t **in, size_t *incap, size_t *have, uint64_t off, uint64_t fsize,
    size_t *ret_len, uint32_t *ret_records)
{
	size_t len = 0;
	uint32_t recs = 0;
	vigil_err rv;

	for (;;) {
		uint64_t rest = fsize - off - len;
		size_t flen;

		if (rest == 0)
			break;
		rv = ar_zfill(fd, in, incap, have, off, len + STORE_FRAME_HDR, fsize);
		if (rv != VIGIL_OK)
			return rv;
		if (rest < STORE_FRAME_HDR || !store_frame_plausible(*in + len) ||
		    (flen = STORE_FRAME_HDR + store_get_le32(*in + len + 8)) > rest) {
			if (len > 0)
				break;
			/* Not a record here: raw bytes up to the next plausible header. */
			rv = ar_zfill(fd, in, incap, have, off, STORE_ZFRAME_TARGET + STORE_FRAME_HDR, fsize);
			if (rv != VIGIL_OK)
				return rv;
			for (len = 1; len < *have && len < STORE_ZFRAME_TARGET; len++) {
				if (*have - len >= STORE_FRAME_HDR && store_frame_plausible(*in + len) &&
				    STORE_FRAME_HDR + store_get_le32(*in + len + 8) <= fsize - off - len)
					break;
			}
			break;
		}
		if (len > 0 && len + flen > STORE_ZFRAME_TARGET)
			break;
		rv = ar_zfill(fd, in, incap, have, off, len + flen, fsize);
		if (rv != VIGIL_OK)
			return rv;
		len += flen;
		recs++;
	}
	*ret_len = len;
	*ret_records = recs;
	return VIGIL_OK;
}

/*
 * base.log -> base.log.zst: compress to a .tmp, sync, rename, then remove
 * the original. A crash at any point leaves one complete readable form.
 * The file is a sequence of independent zstd frames and a frame table
 * (archive_int.h, docs/archive.md "Compressed segments"), so that damage
 * costs the records of one frame, not the rest of the segment.
 */
static vigil_err
ar_compress(const char *dir, const char *base, store_diag *reterr)
{
	char src[PATH_MAX], tmp[PATH_MAX], dst[PATH_MAX];
	ZSTD_CCtx *cc = NULL;
	uint8_t *in = NULL, *outb = NULL;
	store_zent *zt = NULL;
	size_t incap = 0, have = 0, outcap = 0, ztcap = 0;
	uint32_t nframes = 0;
	uint64_t off = 0, opos = 0, fsize;
	struct stat st;
	bool special = false;
	int ifd = -1, ofd = -1;
	vigil_err rv = VIGIL_OK;

	snprintf(src, sizeof src, "%s/%s.log", dir, base);
	snprintf(tmp, sizeof tmp, "%s/%s.log.zst.tmp", dir, base);
	snprintf(dst, sizeof dst, "%s/%s.log.zst", dir, base);
	cc = ZSTD_createCCtx();
	if (cc == NULL) {
		rv = VIGIL_ENOMEM;
		goto out;
	}
	ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel, AR_ZSTD_LEVEL);
	ZSTD_CCtx_setParameter(cc, ZSTD_c_checksumFlag, 1);
	ZSTD_CCtx_setParameter(cc, ZSTD_c_contentSizeFlag, 1);
	ifd = vigil_open_regular(src, &special, &st);
	if (ifd < 0) {
		rv = special ? VIGIL_EINVAL : vigil_err_from_errno(errno);
		store_diag_set(reterr, "%s: cannot open for compression: %s", src, special ?
		    "not a regular file" : strerror(errno));
		goto out;
	}
	fsize = (uint64_t)st.st_size;
	ofd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (ofd < 0) {
		rv = vigil_err_from_errno(errno);
		store_diag_set(reterr, "%s: cannot create: %s", tmp, strerror(errno));
		goto out;
	}
	while (off < fsize) {
		size_t len, csize, bound;
		uint32_t recs;

		rv = ar_zchunk(ifd, &in, &incap, &have, off, fsize, &len, &recs);
		if (rv != VIGIL_OK) {
			store_diag_set(reterr, "%s: read: %s", src, rv == VIGIL_ENOMEM ? "out of memory" :
			    strerror(errno));
			goto out;
		}
		bound = ZSTD_compressBound(len);
		rv = vigil_buf_reserve(&outb, &outcap, bound);
		if (rv != VIGIL_OK)
			goto out;
		csize = ZSTD_compress2(cc, outb, outcap, in, len);
		if (ZSTD_isError(csize)) {
			rv = VIGIL_EINTERNAL;
			store_diag_set(reterr, "%s: zstd: %s", src, ZSTD_getErrorName(csize));
			goto out;
		}
		if (ar_pwrite_all(ofd, outb, csize, opos) != VIGIL_OK) {
			rv = VIGIL_EIO;
			store_diag_set(reterr, "%s: write: %s", tmp, strerror(errno));
			goto out;
		}
		opos += csize;
		rv = vigil_array_reserve(&zt, &ztcap, nframes + 1, sizeof *zt, 256, STORE_ZTAB_MAX);
		if (rv != VIGIL_OK)
			goto out;
		zt[nframes++] = (store_zent){ .csize = (uint32_t)csize, .usize = (uint32_t)len,
		    .records = recs };
		memmove(in, in + len, have - len);
		have -= len;
		off += len;
	}
	if (nframes > 0) {
		rv = vigil_buf_reserve(&outb, &outcap, STORE_ZTAB_LEN(nframes));
		if (rv != VIGIL_OK)
			goto out;
		store_ztab_encode(zt, nframes, outb);
		if (ar_pwrite_all(ofd, outb, STORE_ZTAB_LEN(nframes), opos) != VIGIL_OK) {
			rv = VIGIL_EIO;
			store_diag_set(reterr, "%s: write: %s", tmp, strerror(errno));
			goto out;
		}
	}
	if (fdatasync(ofd) != 0 || close(ofd) != 0) {
		ofd = -1;
		rv = VIGIL_EIO;
		store_diag_set(reterr, "%s: sync: %s", tmp, strerror(errno));
		goto out;
	}
	ofd = -1;
	if (rename(tmp, dst) != 0 || vigil_fsync_dir(dir) != VIGIL_OK) {
		rv = VIGIL_EIO;
		store_diag_set(reterr, "%s: cannot rename into place: %s", dst, strerror(errno));
		goto out;
	}
	if (unlink(src) != 0 || vigil_fsync_dir(dir) != VIGIL_OK) {
		rv = VIGIL_EIO;
		store_diag_set(reterr, "%s: cannot remove after compression: %s", src, strerror(errno));
		goto out;
	}
out:
	if (ofd >= 0) {
		close(ofd);
		unlink(tmp);
	} else if (rv != VIGIL_OK) {
		unlink(tmp);
	}
	if (ifd >= 0)
		close(ifd);
	ZSTD_freeCCtx(cc);
	free(in);
	free(outb);
	free(zt);
	return rv;
}

static vigil_err
ar_remove_segment(store_archive *ar, const char *base, store_diag *reterr)
{
	static const char *sfx[] = { ".log", ".log.zst", ".idx" }; /* index last */
	char path[PATH_MAX];

	for (size_t k = 0; k < 3; k++) {
		snprintf(path, sizeof path, "%s/%s%s", ar->dir, base, sfx[k]);
		if (unlink(path) != 0 && errno != ENOENT) {
			store_diag_at(reterr, path, VIGIL_NOPOS, NULL,
			    "cannot remove: %s", strerror(errno));
			return VIGIL_EIO;
		}
	}
	pthread_mutex_lock(&ar->mu);
	if (ar->nsegments > 0)
		ar->nsegments--;
	pthread_mutex_unlock(&ar->mu);
	return VIGIL_OK;
}

vigil_err
store_archive_rotate(store_archive *ar, store_diag *reterr)
{
	vigil_err rv;

	pthread_mutex_lock(&ar->mu);
	rv = atomic_load(&ar->failing) ? ar_repair(ar) : VIGIL_OK;
	if (rv == VIGIL_OK)
		rv = ar_segment_close(ar);
	if (rv != VIGIL_OK) {
		store_archive_health h;

		store_archive_get_health(ar, &h);
		store_diag_set(reterr, "%s: closing segment %s: %s %s: %s", ar->dir, ar->base, h.op,
		    h.file, strerror(h.err));
	}
	pthread_mutex_unlock(&ar->mu);
	return rv;
}

vigil_err
store_archive_maintain(store_archive *ar, store_diag *reterr)
{
	store_seg_ent *ents = NULL;
	char open_base[STORE_SEG_BASE_LEN + 1];
	size_t n = 0;
	uint64_t newest = 0;
	int64_t now;
	vigil_err rv = VIGIL_OK;

	pthread_mutex_lock(&ar->maint_mu);
	pthread_mutex_lock(&ar->mu);
	now = ar->now(ar->now_arg);
	/* A failing archive is repaired and probed here too, so that an idle
	 * server heals; faults are reported by store_archive_get_health, not
	 * by this call's result. */
	if (atomic_load(&ar->failing))
		ar_probe(ar, now);
	else
		ar_pend_retry(ar);
	/* The day's segment is closed; the next append creates the next one
	 * (a failure to close is a fault, reported as above). */
	if (!atomic_load(&ar->failing) && ar->fd >= 0 && ar_day(now) > ar->seg_day)
		(void)ar_segment_close(ar);
	memcpy(open_base, ar->base, sizeof open_base);
	pthread_mutex_unlock(&ar->mu);
	if (!ar->opts.compress_closed && ar->opts.retention_days == 0)
		goto out;
	rv = store_seg_list(ar->dir, &ents, &n, reterr);
	if (rv != VIGIL_OK)
		goto out;
	for (size_t i = 0; i < n; i++)
		if (ents[i].first_seq > newest)
			newest = ents[i].first_seq;
	for (size_t i = 0; i < n; i++) {
		store_seg_ent *e = &ents[i];
		store_seg_index idx;

		/* Only closed segments (they have an index); never the open one. */
		if (!e->has_idx || strcmp(e->base, open_base) == 0)
			continue;
		/* Nor the newest while it is the last (no traffic since the day
		 * it closed): the sequence numbers go on from it at the next
		 * open, and would start again at 1 without it, under numbers the
		 * nightly and the shipped copies have already seen. */
		if (ar->opts.retention_days > 0 && e->first_seq != newest &&
		    store_seg_index_read(ar->dir, e->base, &idx) == VIGIL_OK &&
		    idx.closed_at_ms < now - (int64_t)ar->opts.retention_days * VIGIL_MS_PER_DAY) {
			rv = ar_remove_segment(ar, e->base, reterr);
			if (rv != VIGIL_OK)
				goto out;
			continue;
		}
		if (ar->opts.compress_closed && e->has_log) {
			rv = ar_compress(ar->dir, e->base, reterr);
			if (rv != VIGIL_OK)
				goto out;
		}
	}
out:
	pthread_mutex_unlock(&ar->maint_mu);
	free(ents);
	return rv;
}
