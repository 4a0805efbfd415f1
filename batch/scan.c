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
 * The card id as the decoder sees it, so that a record goes to the worker
 * that will aggregate it: protobuf-c merges repeated occurrences of
 * ArchivedScore.txn, keeping the last card_id any of them sets, and hands
 * strings out up to their first NUL byte.
 */
vigil_err
batch_scan_card_id(const void *payload, size_t len, const char **ret_p, size_t *ret_len)
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
			if (f.num == 3 && f.data != NULL) {
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
