/* SPDX-License-Identifier: MIT */
/*
 * features/db/lean.h - lean decoding of scored records: the bulk readers'
 * fast path (vigil-rebuild's passes, whose features fill.h fills from it,
 * and the console's scans). An optimisation of store_scored_decode
 * (store/record.c), with which it must agree byte for byte:
 * tests/store_archive/test_record.c decodes every payload both ways.
 *
 * store_scored_decode_lean reads an ArchivedScore payload in place, without
 * protobuf-c, filling only what aggregation needs. Strings are views into
 * the payload (NOT NUL-terminated; valid as long as the payload bytes are),
 * except currency and country, which are copied. It accepts exactly the
 * payloads store_scored_decode accepts (same caps, same protobuf-c merge
 * rules for repeated singular fields) and, for those, every field below
 * equals the one store_scored_decode gives; hits and rules_version are
 * validated but not returned. VIGIL_EPROTO if malformed (reterr says why);
 * *ret is then unspecified. Never allocates; thread-safe.
 */
#ifndef VIGIL_FEATURES_DB_LEAN_H
#define VIGIL_FEATURES_DB_LEAN_H

#include <stdbool.h>
#include <stdint.h>

#include "archive.h"

typedef struct store_strview {
	const char *p;   /* not NUL-terminated; never NULL ("" when empty) */
	uint32_t    len; /* bytes before the first NUL of the wire string */
} store_strview;

typedef struct store_lean_feat {
	store_strview name; /* in the payload, or store_schema_name_of's for a name_id */
	vigil_value   val;  /* val.str/len: a view into the payload, or NULL/0 */
	char          unknown[STORE_UNKNOWN_NAME_LEN]; /* store_schema_name_of's */
} store_lean_feat;

typedef struct store_scored_lean {
	store_strview  txn_id, card_id, merchant_id, terminal_id, device_id, ip;
	char           currency[4], country[3]; /* NUL-padded to the end */
	int64_t        event_time_ms, amount_minor;
	uint32_t       mcc;
	uint8_t        channel;
	bool           has_location;
	double         lat, lon;
	double         score;  /* store_scored.score */
	int32_t        points;
	vigil_decision decision;
	uint64_t       features_gen;
	int64_t        scored_at_ms;
	uint32_t       nfeats;
	store_lean_feat feats[STORE_MAX_FEATS];
	uint64_t       model_layout;
	store_strview  model_in;   /* bytes (store_model_vec_decode); len 0: none */
} store_scored_lean;

vigil_err store_scored_decode_lean(const void *payload, size_t len, store_scored_lean *ret,
    store_diag *reterr);

#endif /* VIGIL_FEATURES_DB_LEAN_H */
