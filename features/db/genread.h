/* SPDX-License-Identifier: MIT */
/*
 * features/db/genread.h - reading a feature generation into profiles
 * (genread.c): opening one (verified), lookups, thresholds and blobs, and
 * what store_db (db.c) needs beyond them; and writing the profiles and
 * thresholds into one (genwrite.c; the rest of writing: store/gen.h). A lookup session borrows one read transaction
 * from the generation's pool (reset/renew, no allocation after warm-up) and
 * reads card, merchant and terminal under it; values are decoded (copied
 * out) before the session ends.
 */
#ifndef VIGIL_FEATURES_GENREAD_H
#define VIGIL_FEATURES_GENREAD_H

#include <setjmp.h>

#include "codec.h"
#include "gen.h"

/*
 * Puts a profile or threshold into the generation w is building (a second
 * put of a key replaces the first). VIGIL_EINVAL for an empty or over-long
 * id or name, or counts over the struct's caps (nothing written; w stays
 * usable). An LMDB failure (VIGIL_EIO, VIGIL_ENOMEM, VIGIL_ELIMIT for a
 * full map) is sticky: every later put and the commit return it; abort.
 */
vigil_err store_genw_put_card(store_genw *w, const char *card_id, const store_card_profile *p);
vigil_err store_genw_put_merchant(store_genw *w, const char *merchant_id, const store_entity_profile *p);
vigil_err store_genw_put_terminal(store_genw *w, const char *terminal_id, const store_entity_profile *p);
/* group "" = the global value. */
vigil_err store_genw_put_threshold(store_genw *w, const char *name, const char *group,
    const store_threshold_val *v);
/* The threshold table's key of name and group into buf (at least
 * 2 * STORE_THRESHOLD_NAME_MAX + 1 bytes): VIGIL_EINVAL for an empty or
 * over-long name, or an over-long group. */
vigil_err gen_threshold_key(const char *name, const char *group, char *buf, size_t *ret_len);

/*
 * Opens generation n read-only, verified before anything is mapped
 * (docs/storage.md, "Verification"): data.mdb is read whole (1 MiB at a
 * time) and its XXH3-128 compared with the generation's CHECKSUM file, then
 * LMDB maps that file and no more. A generation written before checksums
 * (no CHECKSUM, numbered below features/CHECKSUMS_FROM or with no such
 * file) is opened unverified: store_gen_check_get says so.
 * VIGIL_OK: *ret_g set; close it with store_gen_close.
 * Errors, each with a one-line *reterr naming "features/gen-NNNNNN" and why:
 * VIGIL_ENOTFOUND (no such generation directory), VIGIL_ECORRUPT (data.mdb
 * missing, damaged, truncated or replaced while verified; CHECKSUM missing
 * where one is required, or malformed; any LMDB error at open; a table or
 * the meta value missing or malformed), VIGIL_EVERSION (a value layout this
 * build does not read), VIGIL_ENOMEM, VIGIL_ELIMIT (no descriptors), and
 * errno codes for a permission error. Nothing is left mapped on error.
 * store_gen_open_current opens the generation CURRENT names (VIGIL_ENOTFOUND
 * if there is no CURRENT yet, VIGIL_ECORRUPT if it is malformed).
 */
vigil_err store_gen_open_current(const char *datadir, store_gen **ret_g, store_diag *reterr);
vigil_err store_gen_open(const char *datadir, uint64_t generation, store_gen **ret_g, store_diag *reterr);
/* Unmaps. No lookup may be running and no store_gen_cards open. NULL is a
 * no-op. */
void      store_gen_close(store_gen *g);
/* The meta value read at open (a copy). Always VIGIL_OK. */
vigil_err store_gen_meta_get(store_gen *g, store_gen_meta *ret_meta);

void      store_gen_check_get(const store_gen *g, store_gen_check *ret_check);

/* Lookups by id (the profile is copied out into *ret_p). VIGIL_ENOTFOUND
 * if the key is absent; VIGIL_EVERSION or VIGIL_ECORRUPT for a value this
 * build cannot read; VIGIL_EIO if no read transaction could be had. */
vigil_err store_gen_card(store_gen *g, const char *card_id, store_card_profile *ret_p);
vigil_err store_gen_merchant(store_gen *g, const char *merchant_id, store_entity_profile *ret_p);
vigil_err store_gen_terminal(store_gen *g, const char *terminal_id, store_entity_profile *ret_p);
/* Many card lookups, fastest in ascending id order (vigil-rebuild reads the
 * previous generation's cards this way): one read transaction for all of
 * them. open: VIGIL_ENOMEM, VIGIL_EIO. get: VIGIL_ENOTFOUND if absent,
 * VIGIL_ECORRUPT if the value does not decode. One thread at a time; close
 * before store_gen_close; NULL is a no-op. */
typedef struct store_gen_cards store_gen_cards;
vigil_err store_gen_cards_open(store_gen *g, store_gen_cards **ret_c);
vigil_err store_gen_cards_get(store_gen_cards *c, const char *card_id, store_card_profile *ret_p);
void      store_gen_cards_close(store_gen_cards *c);
/* A threshold by name and group ("" = global). VIGIL_ENOTFOUND if absent
 * (or the name or group is invalid), VIGIL_EVERSION, VIGIL_ECORRUPT,
 * VIGIL_EIO as for the lookups. */
vigil_err store_gen_threshold(store_gen *g, const char *name, const char *group,
    store_threshold_val *ret_v);
/* A blob written by store_genw_put_blob: *ret_data is a malloc'd copy (free
 * it), valid after the generation is closed. VIGIL_ENOTFOUND if the
 * generation has none of that name (or the name is invalid), VIGIL_ECORRUPT
 * if its stored size is over the cap, VIGIL_ENOMEM, VIGIL_EIO. */
vigil_err store_gen_blob(store_gen *g, const char *name, void **ret_data, size_t *ret_len);
/* Calls fn for every stored threshold value (name, group, value; valid
 * during the call only), in key order. VIGIL_EIO; VIGIL_EVERSION or
 * VIGIL_ECORRUPT at a value that does not decode (fn was called for the
 * ones before it). */
vigil_err store_gen_thresholds_each(store_gen *g,
    void (*fn)(void *arg, const char *name, const char *group, const store_threshold_val *v),
    void *arg);

/* Points CURRENT at an existing generation (operators' roll-back), under
 * the rebuild lock, only if store_gen_open accepts it, after settling
 * features/PENDING as the next rebuild would (a generation CURRENT named
 * kept, one it never named removed); its errors (with reterr), or
 * VIGIL_EBUSY while a rebuild runs. */
vigil_err store_gen_set_current(const char *datadir, uint64_t generation, store_diag *reterr);

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

/*
 * Containment of a data.mdb changed under its mapping (genread.c): a
 * read that faults (SIGBUS) jumps back to the sigsetjmp of the lookup
 * that armed the guard. Usage, in the function that reads:
 *   sigjmp_buf jb;
 *   if (sigsetjmp(jb, 0) != 0) { gen_guard_disarm(); gen_session_discard(g, s);
 *       gen_fault_set(g); ...fail with VIGIL_ECORRUPT... }
 *   gen_guard_arm(g, &jb); ...session reads...; gen_guard_disarm();
 * (locals changed between the two must be volatile). The handler is
 * installed by the first store_gen_open. gen_session_discard drops a
 * session instead of pooling it. gen_intact: VIGIL_ECORRUPT with reterr
 * when g faulted, or when its data.mdb is now shorter than LMDB needs or
 * was modified since it was verified (an fstat: cheap enough for a
 * timer); VIGIL_OK otherwise.
 */
void      gen_guard_arm(store_gen *g, sigjmp_buf *jb);
void      gen_guard_disarm(void);
void      gen_session_discard(store_gen *g, gen_session *s);
void      gen_fault_set(store_gen *g);
vigil_err gen_intact(store_gen *g, store_diag *reterr);

/* Number and as-of of an open generation (cached at open). */
uint64_t gen_number(const store_gen *g);
int64_t  gen_as_of(const store_gen *g);

/*
 * Generation checks (docs/storage.md, "Verification").
 * gen_open_newest_below: opens the newest generation numbered below `below`
 * (UINT64_MAX: any) that store_gen_open accepts; VIGIL_ENOTFOUND if none
 * does; *ret_refused counts those refused on the way (their diags are not
 * kept). VIGIL_ENOMEM stops the search.
 * gen_files_sig: a fingerprint of the stat(2) of generation n's directory,
 * data.mdb, CHECKSUM and features/CHECKSUMS_FROM (absent ones included), so
 * a refused generation is tried again only once one of them changed.
 */
vigil_err gen_open_newest_below(const char *datadir, uint64_t below, store_gen **ret_g,
    uint32_t *ret_refused);
uint64_t  gen_files_sig(const char *datadir, uint64_t generation);

#endif
