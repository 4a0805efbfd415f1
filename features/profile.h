/* SPDX-License-Identifier: MIT */
/*
 * features/profile.h - the batch profiles of a feature generation: the
 * card and entity (merchant, terminal) structs, made from schema.def's PC
 * and PE rows, and what they give as features (profile.c): the fills of
 * the FP rows (a stored field read as a feature), the DERIVED card slots
 * computed from a profile and the request, a profile's JSON, and the
 * entry that caches one in the live state. The value codecs are codec.h's;
 * the LMDB tables that hold them are store/'s (gen.h).
 * Pure functions: no state, thread-safe, nothing allocated except the
 * JSON the caller owns.
 */
#ifndef VIGIL_FEATURES_PROFILE_H
#define VIGIL_FEATURES_PROFILE_H

#include <stdbool.h>
#include <stdint.h>

#include "schema.h"
#include "vigil.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Value layouts (little-endian, packed, each starting with a uint16 layout
 * version; docs/storage.md). A reader refuses a version newer than its own
 * with VIGIL_EVERSION; a profile of an older layout reads with the fields
 * added since zero (schema.def, SINCE).
 */
#define STORE_CARD_MAX_COUNTRIES 16
#define STORE_CARD_MAX_MERCHANTS 32

/* C types of schema.def's CTYPE column. */
#define STORE_CTYPE_U32  uint32_t
#define STORE_CTYPE_F64  double
#define STORE_CTYPE_I64  int64_t
#define STORE_CTYPE_TIME int64_t /* Unix ms, 0 = unknown */

/* The fields are schema.def's PC rows (card) and PE rows (merchants and
 * terminals), in row order. */
typedef struct store_card_profile {
#define PC(ctype, field, since, doc) STORE_CTYPE_##ctype field;
#include "schema.def"
#undef PC
	uint32_t hour_hist[24]; /* transactions per UTC hour of day, 90d */
	uint8_t  ncountries;    /* most frequent countries, 90d */
	char     countries[STORE_CARD_MAX_COUNTRIES][2];
	uint8_t  nmerchants;    /* xxh64 of most frequent merchant ids, 90d */
	uint64_t merchants[STORE_CARD_MAX_MERCHANTS];
} store_card_profile;

typedef struct store_entity_profile { /* merchants and terminals */
#define PE(ctype, field, since, doc) STORE_CTYPE_##ctype field;
#include "schema.def"
#undef PE
} store_entity_profile;

/* A batch profile as the live state caches it beside its card (live_card_x)
 * or entity (live_ent_b; store/live_view.h), read and written by
 * features/db/fill.c: tag is the db's generation epoch + 1 it was read
 * under (0: nothing cached), rv what the read returned (VIGIL_OK: p holds
 * the profile; VIGIL_ENOTFOUND: the generation has no such id).
 * Generations are immutable, so an entry whose tag is the caller's current
 * one is what LMDB would return. */
typedef struct profile_card_cache {
	uint64_t           tag;
	vigil_err          rv;
	store_card_profile p;
} profile_card_cache;

typedef struct profile_entity_cache {
	uint64_t             tag;
	vigil_err            rv;
	store_entity_profile p;
} profile_entity_cache;

/* Sets the FP slots of one source from p; other slots are untouched. */
void profile_fill_card(const store_card_profile *p, vigil_value *f);
void profile_fill_merchant(const store_entity_profile *p, vigil_value *f);
void profile_fill_terminal(const store_entity_profile *p, vigil_value *f);
/* profile_fill_card and the DERIVED card slots (z-score, age, hour share,
 * country and merchant seen, amount to the 30-day mean), which need the
 * request txn. */
void profile_fill_card_txn(const vigil_txn *txn, const store_card_profile *p, vigil_value *f);

/* The batch features one stored profile gives, named as the rules read them
 * (schema.def): sets every slot of f[0..store_schema_nfields()) whose source
 * is src, from profile (a store_card_profile for STORE_SRC_CARD, a
 * store_entity_profile for _MERCHANT and _TERMINAL), by the code the
 * scoring path uses; other slots are untouched. For inspection (vigil-rebuild
 * --dump). VIGIL_EINVAL for another source. Thread-safe (no state). */
vigil_err store_profile_features(store_source src, const void *profile, vigil_value *f);
/* A stored profile as JSON (jansson; the caller owns the reference): every
 * field of schema.def's PC rows (card) or PE rows (merchant, terminal) by
 * its name, numbers as stored, a TIME as RFC 3339 (null if unknown) under
 * its name without "_ms", and a card's hour_hist, countries and
 * merchant_hashes. What vigil-rebuild --dump and the console print. NULL
 * for another source or on ENOMEM. Thread-safe (no state). */
struct json_t *store_profile_json(store_source src, const void *profile);

#ifdef __cplusplus
}
#endif

#endif /* VIGIL_FEATURES_PROFILE_H */
