/* SPDX-License-Identifier: MIT */
/*
 * store/frame.c - the archive record frame: a 32-byte header (magic,
 * version, type, flags, length, CRC32C, sequence, event time) followed by
 * the protobuf payload (layout in archive_int.h and docs/archive.md),
 * checked with CRC32C (common/crc32c.h); and the frame table of a
 * compressed segment (archive_int.h).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <zstd.h>

#include "archive_int.h"
#include "crc32c.h"

/* CRC of the header fields (bytes 4..12 and 16..32) followed by the payload. */
static uint32_t
frame_crc(const uint8_t *hdr, const void *payload, size_t len)
{
	uint32_t crc = vigil_crc32c(0, hdr + 4, 8);

	crc = vigil_crc32c(crc, hdr + 16, 16);
	return vigil_crc32c(crc, payload, len);
}

void
store_frame_header(uint8_t hdr[STORE_FRAME_HDR], store_rec_type type, uint64_t seq,
    int64_t event_time_ms, const void *payload, size_t len)
{
	memcpy(hdr, STORE_FRAME_MAGIC, 4);
	hdr[4] = STORE_FRAME_VERSION;
	hdr[5] = (uint8_t)type;
	hdr[6] = 0;
	hdr[7] = 0;
	store_put_le32(hdr + 8, (uint32_t)len);
	store_put_le64(hdr + 16, seq);
	store_put_le64(hdr + 24, (uint64_t)event_time_ms);
	store_put_le32(hdr + 12, frame_crc(hdr, payload, len));
}

bool
store_frame_plausible(const uint8_t *buf)
{
	return memcmp(buf, STORE_FRAME_MAGIC, 4) == 0 && buf[4] == STORE_FRAME_VERSION &&
	    (buf[5] == STORE_REC_SCORE || buf[5] == STORE_REC_LABEL) && buf[6] == 0 &&
	    buf[7] == 0 && store_get_le32(buf + 8) <= STORE_FRAME_MAX_PAYLOAD;
}

char *
store_corrupt_text(char *buf, size_t len, const char *segment, uint64_t offset,
    uint64_t skipped_bytes, const char *what)
{
	snprintf(buf, len, "%s:%" PRIu64 ": %s (%" PRIu64 " bytes skipped)", segment, offset, what,
	    skipped_bytes);
	return buf;
}

size_t
store_frame_size(const void *buf, size_t len)
{
	return len < 12 ? 0 : STORE_FRAME_HDR + (size_t)store_get_le32((const uint8_t *)buf + 8);
}

vigil_err
store_frame_decode(const void *buf, size_t len, store_record *ret_rec, size_t *ret_used)
{
	const uint8_t *p = buf;
	uint32_t plen;

	if (len == 0)
		return VIGIL_EAGAIN;
	if (len < STORE_FRAME_HDR) {
		/* A prefix that already disagrees with the magic cannot become a frame. */
		if (memcmp(p, STORE_FRAME_MAGIC, len < 4 ? len : 4) != 0)
			return VIGIL_ECORRUPT;
		return VIGIL_EAGAIN;
	}
	if (!store_frame_plausible(p))
		return VIGIL_ECORRUPT;
	plen = store_get_le32(p + 8);
	if (len - STORE_FRAME_HDR < plen)
		return VIGIL_EAGAIN;
	if (frame_crc(p, p + STORE_FRAME_HDR, plen) != store_get_le32(p + 12))
		return VIGIL_ECORRUPT;
	ret_rec->type          = (store_rec_type)p[5];
	ret_rec->seq           = store_get_le64(p + 16);
	ret_rec->event_time_ms = (int64_t)store_get_le64(p + 24);
	ret_rec->payload       = p + STORE_FRAME_HDR;
	ret_rec->len           = plen;
	ret_rec->segment       = NULL;
	ret_rec->offset        = 0;
	*ret_used = STORE_FRAME_HDR + (size_t)plen;
	return VIGIL_OK;
}

void
store_ztab_encode(const store_zent *e, uint32_t n, uint8_t *out)
{
	uint8_t *t = out + 8 + (size_t)n * STORE_ZTAB_ENTRY;

	store_put_le32(out, STORE_ZTAB_MAGIC);
	store_put_le32(out + 4, (uint32_t)(STORE_ZTAB_LEN(n) - 8));
	for (uint32_t i = 0; i < n; i++) {
		store_put_le32(out + 8 + (size_t)i * STORE_ZTAB_ENTRY, e[i].csize);
		store_put_le32(out + 12 + (size_t)i * STORE_ZTAB_ENTRY, e[i].usize);
		store_put_le32(out + 16 + (size_t)i * STORE_ZTAB_ENTRY, e[i].records);
	}
	store_put_le32(t, n);
	store_put_le32(t + 4, STORE_ZTAB_VERSION);
	store_put_le32(t + 8, vigil_crc32c(0, out + 8, (size_t)(t + 8 - (out + 8))));
	memcpy(t + 12, STORE_ZTAB_TAG, 4);
}

uint32_t
store_ztab_frames(const uint8_t *tail)
{
	uint32_t n = store_get_le32(tail);

	if (memcmp(tail + 12, STORE_ZTAB_TAG, 4) != 0 ||
	    store_get_le32(tail + 4) != STORE_ZTAB_VERSION || n > STORE_ZTAB_MAX)
		return 0;
	return n;
}

bool
store_ztab_decode(const uint8_t *t, uint32_t n, uint64_t fsize, store_zent *ret)
{
	size_t len = STORE_ZTAB_LEN(n);
	uint64_t coff = 0, uoff = 0;

	if (n == 0 || len > fsize || store_get_le32(t) != STORE_ZTAB_MAGIC ||
	    store_get_le32(t + 4) != len - 8 || store_ztab_frames(t + len - STORE_ZTAB_TAIL) != n ||
	    vigil_crc32c(0, t + 8, len - 16) != store_get_le32(t + len - 8))
		return false;
	for (uint32_t i = 0; i < n; i++, t += STORE_ZTAB_ENTRY) {
		store_zent *z = &ret[i];

		*z = (store_zent){ coff, uoff, store_get_le32(t + 8), store_get_le32(t + 12),
		    store_get_le32(t + 16) };
		if (z->csize == 0 || z->usize == 0 || z->usize > STORE_ZFRAME_MAX ||
		    z->csize > ZSTD_compressBound(z->usize))
			return false;
		coff += z->csize;
		uoff += z->usize;
	}
	return coff + len == fsize;
}
