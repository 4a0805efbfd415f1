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
#include "int.h"

static vigil_err
scan_varint(const uint8_t **pp, const uint8_t *end, uint64_t *ret)
{
	const uint8_t *p = *pp;
	uint64_t v = 0;

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

/* Finds length-delimited field `want` in [p, end); the last one wins, as
 * protobuf merges repeated occurrences of a singular field that way. */
static vigil_err
scan_field(const uint8_t *p, const uint8_t *end, uint32_t want, const uint8_t **ret_p,
    size_t *ret_len)
{
	const uint8_t *found = NULL;
	size_t flen = 0;
	uint64_t tag, v;

	while (p < end) {
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
			if ((tag >> 3) == want) {
				found = p;
				flen = (size_t)v;
			}
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
	}
	if (found == NULL)
		return VIGIL_ENOTFOUND;
	*ret_p = found;
	*ret_len = flen;
	return VIGIL_OK;
}

vigil_err
batch_scan_card_id(const void *payload, size_t len, const char **ret_p, size_t *ret_len)
{
	const uint8_t *p = payload, *txn, *card;
	size_t tlen, clen;
	vigil_err rv;

	rv = scan_field(p, p + len, 1, &txn, &tlen);
	if (rv != VIGIL_OK)
		return rv;
	rv = scan_field(txn, txn + tlen, 3, &card, &clen);
	if (rv != VIGIL_OK)
		return rv;
	*ret_p = (const char *)card;
	*ret_len = clen;
	return VIGIL_OK;
}
