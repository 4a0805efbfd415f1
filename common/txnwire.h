/* SPDX-License-Identifier: MIT */
/*
 * common/txnwire.h - proto/vigil.proto's Transaction as the in-place
 * decoders read it (server/wire.c's score requests, features/db/lean.c's
 * archived scores), on common/pbwire.h's reader: which field number holds
 * which string of vigil_txn and how long it may be, and the Location
 * message. One table, so that a new string field is added in one place.
 */
#ifndef VIGIL_TXNWIRE_H
#define VIGIL_TXNWIRE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "pbwire.h"
#include "vigil.h"

/* The string fields, in the order the decoders check their lengths. */
enum {
	VIGIL_TXN_S_TXN_ID, VIGIL_TXN_S_CARD_ID, VIGIL_TXN_S_MERCHANT_ID,
	VIGIL_TXN_S_TERMINAL_ID, VIGIL_TXN_S_DEVICE_ID, VIGIL_TXN_S_IP,
	VIGIL_TXN_S_CURRENCY, VIGIL_TXN_S_COUNTRY, VIGIL_TXN_NSTR
};

typedef struct vigil_txn_wire_str {
	uint32_t    num;  /* Transaction field number */
	const char *name; /* its name in the .proto */
	size_t      off;  /* the vigil_txn member it is copied to */
	size_t      cap;  /* that member's size: longest string + 1 */
} vigil_txn_wire_str;

#define VIGIL_TXN_WIRE_STR(num, m) { num, #m, offsetof(vigil_txn, m), sizeof ((vigil_txn *)0)->m }
static const vigil_txn_wire_str vigil_txn_wire_strs[VIGIL_TXN_NSTR] = {
	VIGIL_TXN_WIRE_STR(1, txn_id),       VIGIL_TXN_WIRE_STR(3, card_id),
	VIGIL_TXN_WIRE_STR(4, merchant_id),  VIGIL_TXN_WIRE_STR(5, terminal_id),
	VIGIL_TXN_WIRE_STR(11, device_id),   VIGIL_TXN_WIRE_STR(12, ip),
	VIGIL_TXN_WIRE_STR(7, currency),     VIGIL_TXN_WIRE_STR(9, country),
};
#undef VIGIL_TXN_WIRE_STR

/* The string index (VIGIL_TXN_S_*) of Transaction field num; -1 if it is
 * not a string field. */
static inline int
vigil_txn_wire_str_index(uint32_t num)
{
	switch (num) {
	case 1:  return VIGIL_TXN_S_TXN_ID;
	case 3:  return VIGIL_TXN_S_CARD_ID;
	case 4:  return VIGIL_TXN_S_MERCHANT_ID;
	case 5:  return VIGIL_TXN_S_TERMINAL_ID;
	case 7:  return VIGIL_TXN_S_CURRENCY;
	case 9:  return VIGIL_TXN_S_COUNTRY;
	case 11: return VIGIL_TXN_S_DEVICE_ID;
	case 12: return VIGIL_TXN_S_IP;
	default: return -1;
	}
}

/* Location { double latitude = 1; double longitude = 2; } read as
 * protobuf-c reads it: unknown fields skipped, a field seen twice the last
 * one; 0.0 for one absent. false if malformed (a wrong wire type among). */
static inline bool
vigil_txn_wire_location(const uint8_t *p, size_t len, double *ret_lat, double *ret_lon)
{
	const uint8_t *end = p + len;
	vigil_pb_field f;

	*ret_lat = *ret_lon = 0.0;
	while (p < end) {
		if (!vigil_pb_next(&p, end, &f))
			return false;
		if (f.num == 1 || f.num == 2) {
			if (f.wt != VIGIL_PB_I64)
				return false;
			memcpy(f.num == 1 ? ret_lat : ret_lon, &f.v, sizeof(double));
		}
	}
	return true;
}

#endif /* VIGIL_TXNWIRE_H */
