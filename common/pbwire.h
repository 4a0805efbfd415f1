/* SPDX-License-Identifier: MIT */
/*
 * common/pbwire.h - the one protobuf wire writer of the project, for the
 * encoders that write proto3 messages directly instead of going through
 * protobuf-c's descriptor walk (server/wire.c's Reply, store/record.c's
 * ArchivedScore). Each field helper writes what protobuf-c writes for a
 * proto3 field without presence: nothing when the value is zero ("", 0,
 * false, 0.0 and -0.0), else the tag and the value; an int32 or enum is
 * sign-extended to 64 bits first (10 bytes when negative). A _size helper
 * returns the bytes its writer adds. Writers do no bounds checks: the caller
 * sizes the whole message first and checks it against its buffer.
 */
#ifndef VIGIL_PBWIRE_H
#define VIGIL_PBWIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

enum {
	VIGIL_PB_VARINT = 0,
	VIGIL_PB_I64    = 1,
	VIGIL_PB_LEN    = 2,
};

/* Bytes of v as a base-128 varint (1 to 10). */
static inline size_t
vigil_pb_varint_size(uint64_t v)
{
	return (size_t)(70 - __builtin_clzll(v | 1)) / 7;
}

static inline uint8_t *
vigil_pb_varint(uint8_t *p, uint64_t v)
{
	while (v >= 0x80) {
		*p++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*p++ = (uint8_t)v;
	return p;
}

/* An int32 or enum travels sign-extended to 64 bits. */
static inline uint64_t
vigil_pb_int32(int32_t v)
{
	return (uint64_t)(int64_t)v;
}

static inline size_t
vigil_pb_tag_size(uint32_t field)
{
	return field < 16 ? 1 : vigil_pb_varint_size((uint64_t)field << 3);
}

static inline uint8_t *
vigil_pb_tag(uint8_t *p, uint32_t field, unsigned wiretype)
{
	if (field < 16) {
		*p++ = (uint8_t)(field << 3 | wiretype);
		return p;
	}
	return vigil_pb_varint(p, (uint64_t)field << 3 | wiretype);
}

/* A length-delimited field of n bytes, always written (a nested message). */
static inline size_t
vigil_pb_len_size(uint32_t field, size_t n)
{
	return vigil_pb_tag_size(field) + vigil_pb_varint_size(n) + n;
}

/* The tag and length of a length-delimited field; its n bytes follow. */
static inline uint8_t *
vigil_pb_len(uint8_t *p, uint32_t field, size_t n)
{
	p = vigil_pb_tag(p, field, VIGIL_PB_LEN);
	return vigil_pb_varint(p, n);
}

/* A string of n bytes (left out when n is 0). */
static inline size_t
vigil_pb_str_size(uint32_t field, size_t n)
{
	return n == 0 ? 0 : vigil_pb_len_size(field, n);
}

static inline uint8_t *
vigil_pb_str(uint8_t *p, uint32_t field, const void *s, size_t n)
{
	if (n == 0)
		return p;
	p = vigil_pb_len(p, field, n);
	memcpy(p, s, n);
	return p + n;
}

/* A NUL-terminated string; NULL is left out like "". */
static inline size_t
vigil_pb_cstr_size(uint32_t field, const char *s)
{
	return s == NULL ? 0 : vigil_pb_str_size(field, strlen(s));
}

static inline uint8_t *
vigil_pb_cstr(uint8_t *p, uint32_t field, const char *s)
{
	return s == NULL ? p : vigil_pb_str(p, field, s, strlen(s));
}

/* A varint field: uint32/64, int64 as its two's complement, int32 and
 * enums through vigil_pb_int32. */
static inline size_t
vigil_pb_num_size(uint32_t field, uint64_t v)
{
	return v == 0 ? 0 : vigil_pb_tag_size(field) + vigil_pb_varint_size(v);
}

static inline uint8_t *
vigil_pb_num(uint8_t *p, uint32_t field, uint64_t v)
{
	if (v == 0)
		return p;
	p = vigil_pb_tag(p, field, VIGIL_PB_VARINT);
	return vigil_pb_varint(p, v);
}

static inline size_t
vigil_pb_bool_size(uint32_t field, bool v)
{
	return v ? vigil_pb_tag_size(field) + 1 : 0;
}

static inline uint8_t *
vigil_pb_bool(uint8_t *p, uint32_t field, bool v)
{
	if (!v)
		return p;
	p = vigil_pb_tag(p, field, VIGIL_PB_VARINT);
	*p++ = 1;
	return p;
}

/* A double: 8 bytes little-endian; left out when it compares equal to 0
 * (so -0.0 too, as protobuf-c does; NaN is written). */
static inline size_t
vigil_pb_double_size(uint32_t field, double v)
{
	return v == 0 ? 0 : vigil_pb_tag_size(field) + 8;
}

static inline uint8_t *
vigil_pb_double(uint8_t *p, uint32_t field, double v)
{
	uint64_t u;

	if (v == 0)
		return p;
	p = vigil_pb_tag(p, field, VIGIL_PB_I64);
	memcpy(&u, &v, sizeof u);
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(u >> (8 * i));
	return p + 8;
}

#endif /* VIGIL_PBWIRE_H */
