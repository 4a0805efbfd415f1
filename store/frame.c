/* SPDX-License-Identifier: MIT */
/*
 * store/frame.c - the archive record frame: a 32-byte header (magic,
 * version, type, flags, length, CRC32C, sequence, event time) followed by
 * the protobuf payload (layout in archive_int.h and docs/archive.md), and
 * the CRC32C (Castagnoli) it is checked with; and the frame table of a
 * compressed segment (archive_int.h).
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <zstd.h>

#include "archive_int.h"

/* CRC32C: no Debian C library provides it, so here is a small one: SSE4.2
 * crc32 instructions when the CPU has them, a byte table otherwise. */
#define CRC32C_POLY 0x82F63B78u /* reflected Castagnoli polynomial */

static uint32_t        crc_table[256];
static pthread_once_t  crc_once = PTHREAD_ONCE_INIT;
static bool            crc_hw;

static void
crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ CRC32C_POLY : c >> 1;
		crc_table[i] = c;
	}
#if defined(__x86_64__) && defined(__GNUC__)
	__builtin_cpu_init();
	crc_hw = __builtin_cpu_supports("sse4.2");
#endif
}

static uint32_t
crc_sw(uint32_t crc, const uint8_t *p, size_t len)
{
	while (len-- > 0)
		crc = crc_table[(crc ^ *p++) & 0xFF] ^ (crc >> 8);
	return crc;
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <nmmintrin.h>

__attribute__((target("sse4.2"))) static uint32_t
crc_hw_run(uint32_t crc, const uint8_t *p, size_t len)
{
	uint64_t c = crc;

	while (len > 0 && ((uintptr_t)p & 7) != 0) {
		c = _mm_crc32_u8((uint32_t)c, *p++);
		len--;
	}
	while (len >= 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		c = _mm_crc32_u64(c, w);
		p += 8;
		len -= 8;
	}
	while (len-- > 0)
		c = _mm_crc32_u8((uint32_t)c, *p++);
	return (uint32_t)c;
}
#endif

uint32_t
store_crc32c(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	pthread_once(&crc_once, crc_init);
	crc = ~crc;
#if defined(__x86_64__) && defined(__GNUC__)
	if (crc_hw)
		return ~crc_hw_run(crc, p, len);
#endif
	return ~crc_sw(crc, p, len);
}

/* CRC of the header fields (bytes 4..12 and 16..32) followed by the payload. */
static uint32_t
frame_crc(const uint8_t *hdr, const void *payload, size_t len)
{
	uint32_t crc = store_crc32c(0, hdr + 4, 8);

	crc = store_crc32c(crc, hdr + 16, 16);
	return store_crc32c(crc, payload, len);
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
	store_put_le32(t + 8, store_crc32c(0, out + 8, (size_t)(t + 8 - (out + 8))));
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
	    store_crc32c(0, t + 8, len - 16) != store_get_le32(t + len - 8))
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
