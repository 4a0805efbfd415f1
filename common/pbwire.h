/* SPDX-License-Identifier: MIT */
/*
 * common/pbwire.h - the one protobuf wire writer and reader of the project.
 * The writer is for the encoders that write proto3 messages directly
 * instead of going through protobuf-c's descriptor walk (server/wire.c's
 * Reply, store/record.c's ArchivedScore). The reader (vigil_pb_next, at the
 * end) walks wire bytes in place by protobuf-c 1.4's framing rules, for
 * store/record.c's lean decoder, batch/scan.c's card-id scan and
 * server/wire.c's NUL check. Each field helper writes what protobuf-c writes for a
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
	VIGIL_PB_I32    = 5,
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
	if (field >= 16)
		return vigil_pb_varint(p, (uint64_t)field << 3 | wiretype);
	*p = (uint8_t)(field << 3 | wiretype);
	return p + 1;
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
	return vigil_pb_varint(vigil_pb_tag(p, field, VIGIL_PB_LEN), n);
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
	return v == 0 ? p : vigil_pb_varint(vigil_pb_tag(p, field, VIGIL_PB_VARINT), v);
}

static inline size_t
vigil_pb_bool_size(uint32_t field, bool v)
{
	return v ? vigil_pb_tag_size(field) + 1 : 0;
}

static inline uint8_t *
vigil_pb_bool(uint8_t *p, uint32_t field, bool v)
{
	return v ? vigil_pb_num(p, field, 1) : p;
}

/* The tag and n bytes of v, little-endian (wire types I64 and I32). */
static inline uint8_t *
vigil_pb_fixed(uint8_t *p, uint32_t field, unsigned wt, uint64_t v, int n)
{
	p = vigil_pb_tag(p, field, wt);
	for (int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
	return p + n;
}

/* A fixed32: left out when 0. */
static inline size_t
vigil_pb_fixed32_size(uint32_t field, uint32_t v)
{
	return v == 0 ? 0 : vigil_pb_tag_size(field) + 4;
}

static inline uint8_t *
vigil_pb_fixed32(uint8_t *p, uint32_t field, uint32_t v)
{
	return v == 0 ? p : vigil_pb_fixed(p, field, VIGIL_PB_I32, v, 4);
}

/* A double: left out when it compares equal to 0 (so -0.0 too, as
 * protobuf-c does; NaN is written). */
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
	memcpy(&u, &v, sizeof u);
	return vigil_pb_fixed(p, field, VIGIL_PB_I64, u, 8);
}

/* ---- Reading ----
 * protobuf-c 1.4's framing: a tag takes at most 5 bytes; one whose first
 * byte has no field bits is an error, field 0 in a longer tag ("80 00") an
 * unknown field (num 0) to skip; a varint takes at most 10 bytes; a length
 * prefix at most 5, its value modulo 2^32 (one that runs past the buffer is
 * an error, also after wrapping around); wire types 3, 4, 6, 7 are errors. */

typedef struct vigil_pb_field {
	uint32_t       num;
	unsigned       wt;
	const uint8_t *raw;  /* bytes after the tag, length prefix included */
	size_t         rawlen;
	const uint8_t *data; /* wire type 2: the contents */
	size_t         len;
	uint64_t       v;    /* wire type 0: the value; 1 and 5: the bits */
} vigil_pb_field;

static inline bool
vigil_pb_read_varint(const uint8_t *p, const uint8_t *end, size_t *ret_used, uint64_t *ret_v)
{
	size_t max = (size_t)(end - p) < 10 ? (size_t)(end - p) : 10;
	uint64_t v = 0;

	for (size_t i = 0; i < max; i++) {
		v |= (uint64_t)(p[i] & 0x7f) << (7 * i);
		if ((p[i] & 0x80) == 0) {
			*ret_used = i + 1;
			*ret_v = v;
			return true;
		}
	}
	return false;
}

/* Reads the field at *pp (< end) and moves *pp past it; false if malformed.
 * Inlined: it is most of the per-record work of store_scored_decode_lean. */
static inline __attribute__((always_inline)) bool
vigil_pb_next(const uint8_t **pp, const uint8_t *end, vigil_pb_field *f)
{
	const uint8_t *p = *pp;
	size_t max = (size_t)(end - p) < 5 ? (size_t)(end - p) : 5, i, used;
	uint32_t tag = (uint32_t)(p[0] & 0x7f) >> 3, val = 0;
	unsigned shift = 4;

	if ((p[0] & 0xf8) == 0) /* protobuf-c's test, not tag == 0 (above) */
		return false;
	*f = (vigil_pb_field){ .wt = p[0] & 7u }; /* no value, no data yet */
	if ((p[0] & 0x80) != 0) {
		for (i = 1; i < max && (p[i] & 0x80) != 0; i++) {
			tag |= (uint32_t)(p[i] & 0x7f) << shift;
			shift += 7;
		}
		if (i == max)
			return false;
		tag |= (uint32_t)p[i] << shift;
		p += i + 1;
	} else {
		p++;
	}
	f->num = tag; /* 0 only from a tag of two bytes or more: an unknown field */
	f->raw = p;
	switch (f->wt) {
	case VIGIL_PB_VARINT:
		if (p < end && p[0] < 0x80) { /* the common one-byte value */
			f->v = p[0];
			f->rawlen = 1;
			break;
		}
		if (!vigil_pb_read_varint(p, end, &used, &f->v))
			return false;
		f->rawlen = used;
		break;
	case VIGIL_PB_I64:
		if (end - p < 8)
			return false;
		memcpy(&f->v, p, 8); /* little-endian hosts only, as protobuf-c's wire copy */
		f->rawlen = 8;
		break;
	case VIGIL_PB_I32:
		if (end - p < 4)
			return false;
		f->v = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
		    (uint32_t)p[3] << 24;
		f->rawlen = 4;
		break;
	case VIGIL_PB_LEN:
		if (p < end && p[0] < 0x80) { /* the common one-byte length */
			if ((size_t)p[0] >= (size_t)(end - p))
				return false;
			f->data = p + 1;
			f->len = p[0];
			f->rawlen = 1 + (size_t)p[0];
			break;
		}
		max = (size_t)(end - p) < 5 ? (size_t)(end - p) : 5;
		shift = 0;
		for (i = 0; i < max; i++) {
			val |= (uint32_t)(p[i] & 0x7f) << shift;
			shift += 7;
			if ((p[i] & 0x80) == 0)
				break;
		}
		if (i == max || (uint64_t)(i + 1) + val > (uint64_t)(end - p))
			return false;
		f->data = p + i + 1;
		f->len = val;
		f->rawlen = i + 1 + (size_t)val;
		break;
	default:
		return false;
	}
	*pp = p + f->rawlen;
	return true;
}

#endif /* VIGIL_PBWIRE_H */
