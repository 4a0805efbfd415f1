/* SPDX-License-Identifier: MIT */
/*
 * features/schema.h - the feature schema: every feature's name, type,
 * source and slot, the model's input layout, the request-derived slots,
 * and feature masks (sets of slots). The base of features/'s headers
 * (profile.h: the batch profiles; slots.h: the slot numbers).
 *
 * The schema is made from one table, features/schema.def (schema.c); the
 * meaning of each feature is in docs/features.md. Nothing here allocates or
 * locks after the first call; every function is thread-safe.
 * Depends on common/ only.
 */
#ifndef VIGIL_FEATURES_SCHEMA_H
#define VIGIL_FEATURES_SCHEMA_H

#include <stdbool.h>
#include <stdint.h>

#include "vigil.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ======================= Feature schema ======================= */

/*
 * The feature vector is fixed at build time: transaction fields, batch
 * profile features (card.*, merchant.*, terminal.*), derived features, live
 * velocity features (vel.*) and scoring steps' outputs (model.*). A slot is
 * a feature's index in the vector, 0 .. store_schema_nfields() - 1.
 */
/* Where a feature's value comes from (schema.def's SOURCE column). */
typedef enum store_source {
	STORE_SRC_TXN = 0,  /* a request field */
	STORE_SRC_CARD,     /* the card's batch profile (current generation) */
	STORE_SRC_MERCHANT, /* the merchant's batch profile */
	STORE_SRC_TERMINAL, /* the terminal's batch profile */
	STORE_SRC_DERIVED,  /* computed from the request and a profile */
	STORE_SRC_LIVE,     /* the speed layer */
	STORE_SRC_SCORE,    /* a scoring step (the model), filled by app/ */
} store_source;

typedef struct store_field {
	const char  *name;
	vigil_type   type;
	const char  *doc; /* one line */
	store_source source;
	bool         model_input; /* part of the model's input vector */
} store_field;

/* "txn", "card", "merchant", "terminal", "derived", "live", "score";
 * "?" for a value outside the enum. Static strings. */
const char *store_source_name(store_source src);

/* The number of slots (at most 128). */
uint32_t           store_schema_nfields(void);
/* The field of a slot: static, never freed; NULL if slot is out of range. */
const store_field *store_schema_field(uint32_t slot);
/* The slot of a feature by its exact name: VIGIL_OK with *ret_slot set;
 * VIGIL_ENOTFOUND (*ret_slot untouched) if there is no such feature. */
vigil_err          store_schema_find(const char *name, uint32_t *ret_slot);

/*
 * A feature's name id: XXH32 of its name (seed 0), never 0, distinct within
 * the schema (tests/store_archive/test_record.c). A scored record archives the
 * id in place of the name (docs/archive.md); a reader resolves it by its own
 * schema, so a name stays readable as long as schema.def has the row.
 * store_schema_name_id: 0 for a slot out of range.
 * store_schema_find_id: VIGIL_OK with *ret_slot set, or VIGIL_ENOTFOUND.
 */
uint32_t           store_schema_name_id(uint32_t slot);
vigil_err          store_schema_find_id(uint32_t id, uint32_t *ret_slot);
/* The name an id stands for: the schema's (static), or "#" and 8 hex digits
 * written into buf for an id it does not have (a row removed since). */
#define STORE_UNKNOWN_NAME_LEN 10
const char        *store_schema_name_of(uint32_t id, char buf[STORE_UNKNOWN_NAME_LEN]);

/*
 * The model's input layout: the slots marked model_input, in slot order.
 * Every scored record archives its vector in this layout (as float32,
 * missing = NaN) whether or not a model is loaded, so the nightly rebuild
 * trains on exactly what was served. Returns the number of slots;
 * *ret_slots points to a static array.
 */
#define STORE_MODEL_MAX_INPUTS 128
uint32_t           store_schema_model_inputs(const uint32_t **ret_slots);
/* XXH64 of the layout's names joined by '\n': archived with each vector;
 * a vector of another layout (another build) is not read as this one. */
uint64_t           store_schema_model_layout(void);

/* Fills the request slots (amount .. event_time, hour) of
 * features[0..nfeatures) from txn and marks every other slot missing; a
 * short vector gets the same prefix. String values point into txn (valid
 * while txn is). Never fails. */
void               store_features_from_txn(const vigil_txn *txn, vigil_value *features,
    uint32_t nfeatures);

/* Hour of day (UTC, 0-23) of a Unix time in ms, also before 1970: the
 * `hour` feature, and the hour card.hour_share looks up. */
uint32_t           store_hour_of(int64_t ms);

/* ======================= Feature masks ======================= */

/*
 * A set of schema slots: bit s set = slot s is needed (features/db/mask.h says
 * how a lookup uses one).
 */
#define STORE_FEATURE_MASK_WORDS 2 /* slots 0..127 (store_schema_nfields() <= 128) */

typedef struct store_feature_mask {
	uint64_t w[STORE_FEATURE_MASK_WORDS];
} store_feature_mask;

void store_feature_mask_all(store_feature_mask *ret_m);  /* every schema slot */
void store_feature_mask_none(store_feature_mask *ret_m);
/* Slots >= store_schema_nfields() are ignored (set) or absent (has). */
void store_feature_mask_set(store_feature_mask *m, uint32_t slot);
bool store_feature_mask_has(const store_feature_mask *m, uint32_t slot);

#ifdef __cplusplus
}
#endif

#endif /* VIGIL_FEATURES_SCHEMA_H */
