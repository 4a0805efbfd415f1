/* SPDX-License-Identifier: MIT */
/*
 * common/crc32c.h - CRC32C (Castagnoli, RFC 3720), the checksum of the
 * archive's records, segment indexes and frame tables (docs/archive.md).
 */
#ifndef VIGIL_CRC32C_H
#define VIGIL_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* CRC32C of buf[0..len), continuing from crc (0 to start). Thread-safe. */
uint32_t vigil_crc32c(uint32_t crc, const void *buf, size_t len);

#endif /* VIGIL_CRC32C_H */
