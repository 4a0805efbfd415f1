/* SPDX-License-Identifier: MIT */
/*
 * common/crc32c.c - CRC32C (common/crc32c.h).
 */
#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include "crc32c.h"

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
vigil_crc32c(uint32_t crc, const void *buf, size_t len)
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
