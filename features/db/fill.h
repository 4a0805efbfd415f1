/* SPDX-License-Identifier: MIT */
/*
 * features/db/fill.h - the fills of a feature vector that serve outside
 * store_db (fill.c): the transaction's own slots of a record decoded by
 * lean.h, for the nightly rebuild's bulk passes (batch/pass.c).
 */
#ifndef VIGIL_FEATURES_DB_FILL_H
#define VIGIL_FEATURES_DB_FILL_H

#include <stdint.h>

#include "lean.h"
#include "vigil.h"

/* The transaction's own fields are schema slots 0 .. STORE_LEAN_TXN_SLOTS - 1
 * (amount .. event_time, schema.def's txn rows; fill.c checks it). */
#define STORE_LEAN_TXN_SLOTS 14

/* store_features_from_txn's transaction fields for a lean record: the same
 * values (string values are views into the payload) in features[0..n),
 * n = min(nfeatures, STORE_LEAN_TXN_SLOTS): a caller needing the first few
 * slots asks for those, and nothing past the transaction's own fields is
 * written (features may hold just STORE_LEAN_TXN_SLOTS values). */
void      store_lean_features_from_txn(const store_scored_lean *s, vigil_value *features,
    uint32_t nfeatures);

#endif /* VIGIL_FEATURES_DB_FILL_H */
