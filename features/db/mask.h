/* SPDX-License-Identifier: MIT */
/*
 * features/db/mask.h - feature masks: computing only some slots. Part of store_db's
 * interface for one optimisation: vigil-replay computes only the slots its
 * rules read (through app_work_set_features); vigild always computes every
 * slot.
 *
 * Bit s set = schema slot s is needed. A lookup under a mask fills the
 * needed slots exactly as an unmasked lookup would and sets every other
 * slot missing; it skips the batch reads and live aggregates that no
 * needed slot depends on. Build one with store_feature_mask_none() and
 * store_feature_mask_set() per slot (e.g. from rules_prog_slots_used());
 * store_feature_mask_all() is the default everywhere. The mask functions
 * and their type are in features/schema.h, the rest in db.c.
 */
#ifndef VIGIL_STORE_MASK_H
#define VIGIL_STORE_MASK_H

#include <stdbool.h>
#include <stdint.h>

#include "db.h"
#include "schema.h"

/*
 * store_db_new_memory serving only the slots of features (NULL: all). Its
 * contexts start with this mask, and the live state keeps no merchant,
 * terminal, device or IP windows of a kind none of whose vel.* slots is in
 * it (card windows, idempotency records and max_cards are kept as always).
 * A data directory (store_db_open) always serves every slot.
 */
vigil_err store_db_new_memory_masked(const store_db_opts *opts,
    const store_feature_mask *features, store_db **ret_db);

/* The slots store_score_begin and store_features_lookup fill on ctx from now
 * on (others missing). NULL = the db's mask. VIGIL_EINVAL (ctx unchanged)
 * if m asks for a slot outside the db's mask or a begin is open on ctx.
 * Applying (commit) is not affected. */
vigil_err store_ctx_set_features(store_ctx *ctx, const store_feature_mask *m);

#endif /* VIGIL_STORE_MASK_H */
