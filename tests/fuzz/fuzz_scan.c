/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_scan.c - libFuzzer target for vigil-rebuild's fast scans
 * of archived scores (batch/scan.c batch_scan_card_id and
 * batch_scan_txn_id): bytes -> both scans; where the full decoder
 * (store_scored_decode) accepts the bytes, a scan that finds an id must
 * find the decoder's, and one that finds none must mean the decoder's is
 * empty. Must never crash, read out of bounds or hang.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static store_scored s;

static void
check(vigil_err rv, const char *p, size_t len, bool decoded, const char *want)
{
	if (rv != VIGIL_OK && rv != VIGIL_ENOTFOUND && rv != VIGIL_EPROTO)
		abort();
	if (rv == VIGIL_OK && (p == NULL || (len > 0 && memchr(p, 0, len) != NULL)))
		abort();
	if (!decoded)
		return;
	if (rv == VIGIL_EPROTO) /* the decoder accepted what the scan calls malformed */
		abort();
	if (rv == VIGIL_ENOTFOUND && want[0] != '\0')
		abort();
	if (rv == VIGIL_OK && strlen(want) <= 64 && (strlen(want) != len || memcmp(want, p, len) != 0))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	store_diag d;
	const char *p = NULL;
	size_t len = 0;
	bool decoded = store_scored_decode(data, size, &s, &d) == VIGIL_OK;
	vigil_err rv;

	rv = batch_scan_txn_id(data, size, &p, &len);
	check(rv, p, len, decoded, s.txn.txn_id);
	p = NULL;
	rv = batch_scan_card_id(data, size, &p, &len);
	check(rv, p, len, decoded, s.txn.card_id);
	return 0;
}
