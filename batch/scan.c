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
#include "pbwire.h"

/*
 * A string field of ArchivedScore.txn (= 1) as protobuf-c would decode it:
 * repeated occurrences of txn merge, so the last occurrence of the field any
 * of them sets wins, and strings are handed out up to their first NUL byte.
 * VIGIL_ENOTFOUND: none; VIGIL_EPROTO: malformed (the caller leaves the
 * record to the decoder).
 */
static vigil_err
scan_txn_string(const void *payload, size_t len, uint32_t num, const char **ret_p,
    size_t *ret_len)
{
	const uint8_t *p = payload, *end = p + len, *found = NULL, *q, *nul;
	vigil_pb_field txn, f;
	size_t flen = 0;

	while (p < end) {
		if (!vigil_pb_next(&p, end, &txn))
			return VIGIL_EPROTO;
		if (txn.num != 1 || txn.data == NULL)
			continue;
		for (q = txn.data; q < txn.data + txn.len;) {
			if (!vigil_pb_next(&q, txn.data + txn.len, &f))
				return VIGIL_EPROTO;
			if (f.num == num && f.data != NULL) {
				found = f.data;
				flen = f.len;
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

/* The card id (Transaction.card_id = 3), so that a record goes to the
 * worker that will aggregate it. */
vigil_err
batch_scan_card_id(const void *payload, size_t len, const char **ret_p, size_t *ret_len)
{
	return scan_txn_string(payload, len, 3, ret_p, ret_len);
}

/* The txn id (Transaction.txn_id = 1): batch/src.c keeps each once. */
vigil_err
batch_scan_txn_id(const void *payload, size_t len, const char **ret_p, size_t *ret_len)
{
	return scan_txn_string(payload, len, 1, ret_p, ret_len);
}
