/* SPDX-License-Identifier: MIT */
/*
 * store/features_int.h - private to store/: what db.c needs of a feature
 * generation beyond store.h. A lookup session borrows one read transaction
 * from the generation's pool (reset/renew, no allocation after warm-up) and
 * reads card, merchant and terminal under it; values are decoded (copied
 * out) before the session ends.
 */
#ifndef VIGIL_STORE_FEATURES_INT_H
#define VIGIL_STORE_FEATURES_INT_H

#include "store.h"

/* Value layout versions this build writes and reads (docs/storage.md). */
#define STORE_CARD_LAYOUT      1
#define STORE_ENTITY_LAYOUT    1
#define STORE_THRESHOLD_LAYOUT 1
#define STORE_META_LAYOUT      1

/* Caps on what a generation may hold (input-driven sizes). */
#define STORE_THRESHOLD_NAME_MAX 128 /* name and group, bytes each */
#define STORE_GEN_MAP_BYTES      (64ULL << 30) /* LMDB map size (virtual) */

typedef struct gen_session gen_session;

/* Borrows a read transaction of g. NULL on failure (ENOMEM / LMDB error). */
gen_session *gen_session_begin(store_gen *g);
/* Returns the transaction to g's pool. NULL is a no-op. */
void         gen_session_end(store_gen *g, gen_session *s);
/* Lookups inside a session; VIGIL_ENOTFOUND if absent, VIGIL_EVERSION or
 * VIGIL_ECORRUPT for a value this build cannot read. */
vigil_err    gen_session_card(store_gen *g, gen_session *s, const char *card_id,
    store_card_profile *ret_p);
vigil_err    gen_session_merchant(store_gen *g, gen_session *s, const char *merchant_id,
    store_entity_profile *ret_p);
vigil_err    gen_session_terminal(store_gen *g, gen_session *s, const char *terminal_id,
    store_entity_profile *ret_p);

/* Number and as-of of an open generation (cached at open). */
uint64_t gen_number(const store_gen *g);
int64_t  gen_as_of(const store_gen *g);

/* "<datadir>/features/CURRENT" (tests and db.c's cheap change check). */
vigil_err gen_current_path(const char *datadir, char *buf, size_t buflen);

#endif
