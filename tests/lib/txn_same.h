/* SPDX-License-Identifier: MIT */
/*
 * tests/lib/txn_same.h - whether two vigil_txn hold the same transaction,
 * field by field (strings as C strings, coordinates bit for bit when
 * present): for the tests and fuzz targets that check two decoders agree.
 */
#ifndef VIGIL_TEST_TXN_SAME_H
#define VIGIL_TEST_TXN_SAME_H

#include <stdbool.h>
#include <string.h>

#include "vigil.h"

static inline bool
vt_txn_same(const vigil_txn *a, const vigil_txn *b)
{
	return strcmp(a->txn_id, b->txn_id) == 0 && strcmp(a->card_id, b->card_id) == 0 &&
	    strcmp(a->merchant_id, b->merchant_id) == 0 &&
	    strcmp(a->terminal_id, b->terminal_id) == 0 &&
	    strcmp(a->device_id, b->device_id) == 0 && strcmp(a->ip, b->ip) == 0 &&
	    strcmp(a->currency, b->currency) == 0 && strcmp(a->country, b->country) == 0 &&
	    a->event_time_ms == b->event_time_ms && a->amount_minor == b->amount_minor &&
	    a->mcc == b->mcc && a->channel == b->channel && a->has_location == b->has_location &&
	    (!a->has_location || (memcmp(&a->lat, &b->lat, sizeof a->lat) == 0 &&
	    memcmp(&a->lon, &b->lon, sizeof a->lon) == 0));
}

#endif /* VIGIL_TEST_TXN_SAME_H */
