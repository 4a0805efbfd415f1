/* SPDX-License-Identifier: MIT */
/*
 * batch/scan.c - finds the card id of an archived score without unpacking
 * the whole message. Partitioned and multi-threaded rebuilds read every
 * record but fully decode only those of their own cards; this walks the
 * protobuf wire format (ArchivedScore.txn = 1, Transaction.card_id = 3,
 * proto/vigil.proto) with every length checked against the buffer. Any
 * doubt (malformed bytes) is reported, and the caller then decodes the
 * record with protobuf-c to get the exact error.
 */
#include <string.h>

#include "int.h"

static inline vigil_err
scan_varint(const uint8_t **pp, const uint8_t *end, uint64_t *ret)
{
	const uint8_t *p = *pp;
	uint64_t v = 0;

	if (p < end && *p < 0x80) { /* one byte: tags and short lengths */
		*ret = *p;
		*pp = p + 1;
		return VIGIL_OK;
	}

	for (int shift = 0; shift < 64; shift += 7) {
		if (p >= end)
			return VIGIL_EPROTO;
		v |= (uint64_t)(*p & 0x7f) << shift;
		if ((*p++ & 0x80) == 0) {
			*pp = p;
			*ret = v;
			return VIGIL_OK;
		}
	}
	return VIGIL_EPROTO;
}

/* Reads the field at *pp (< end): its number and, for a length-delimited
 * field, its contents (*ret_data NULL otherwise); moves *pp past it. */
static inline __attribute__((always_inline)) vigil_err
scan_next(const uint8_t **pp, const uint8_t *end, uint64_t *ret_num, const uint8_t **ret_data,
    size_t *ret_len)
{
	const uint8_t *p = *pp;
	uint64_t tag, v;

	*ret_data = NULL;
	if (scan_varint(&p, end, &tag) != VIGIL_OK)
		return VIGIL_EPROTO;
	switch (tag & 7) {
	case 0: /* varint */
		if (scan_varint(&p, end, &v) != VIGIL_OK)
			return VIGIL_EPROTO;
		break;
	case 1: /* 64-bit */
		if (end - p < 8)
			return VIGIL_EPROTO;
		p += 8;
		break;
	case 2: /* length-delimited */
		if (scan_varint(&p, end, &v) != VIGIL_OK || v > (uint64_t)(end - p))
			return VIGIL_EPROTO;
		*ret_data = p;
		*ret_len = (size_t)v;
		p += v;
		break;
	case 5: /* 32-bit */
		if (end - p < 4)
			return VIGIL_EPROTO;
		p += 4;
		break;
	default:
		return VIGIL_EPROTO;
	}
	*ret_num = tag >> 3;
	*pp = p;
	return VIGIL_OK;
}

/*
 * The card id as the decoder sees it, so that a record goes to the worker
 * that will aggregate it: protobuf-c merges repeated occurrences of
 * ArchivedScore.txn, keeping the last card_id any of them sets, and hands
 * strings out up to their first NUL byte.
 */
vigil_err
batch_scan_card_id(const void *payload, size_t len, const char **ret_p, size_t *ret_len)
{
	const uint8_t *p = payload, *end = p + len, *found = NULL, *txn, *q, *d, *nul;
	size_t tlen, dlen, flen = 0;
	uint64_t num;

	while (p < end) {
		if (scan_next(&p, end, &num, &txn, &tlen) != VIGIL_OK)
			return VIGIL_EPROTO;
		if (num != 1 || txn == NULL)
			continue;
		for (q = txn; q < txn + tlen;) {
			if (scan_next(&q, txn + tlen, &num, &d, &dlen) != VIGIL_OK)
				return VIGIL_EPROTO;
			if (num == 3 && d != NULL) {
				found = d;
				flen = dlen;
			}
		}
	}
	if (found == NULL)
		return VIGIL_ENOTFOUND;
	nul = memchr(found, 0, flen);
	*ret_p = (const char *)found;
	*ret_len = nul != NULL ? (size_t)(nul - found) : flen;
	return VIGIL_OK;
}
