/* SPDX-License-Identifier: MIT */
/*
 * store/genread.h - what store_db (features/db/db.c) needs of a feature
 * generation beyond gen.h. A lookup session borrows one read transaction
 * from the generation's pool (reset/renew, no allocation after warm-up) and
 * reads card, merchant and terminal under it; values are decoded (copied
 * out) before the session ends.
 */
#ifndef VIGIL_STORE_GENREAD_H
#define VIGIL_STORE_GENREAD_H

#include <setjmp.h>

#include "codec.h"
#include "gen.h"

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

/*
 * Containment of a data.mdb changed under its mapping (features.c): a
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

/* "<datadir>/features/CURRENT" (tests and db.c's cheap change check). */
vigil_err gen_current_path(const char *datadir, char *buf, size_t buflen);
/* Reads CURRENT (0 if there is none), with the diag store_gen_current
 * does not give: VIGIL_ECORRUPT for a malformed one. */
vigil_err gen_current_read(const char *datadir, uint64_t *ret_gen, store_diag *reterr);

/*
 * Generation checks (docs/storage.md, "Verification").
 * gen_checksum_write: (re)writes gendir/CHECKSUM for gendir/data.mdb
 * (store_genw_commit; tests that edit a generation in place, as a newer
 * build would have written it, reseal it with it).
 * gen_open_newest_below: opens the newest generation numbered below `below`
 * (UINT64_MAX: any) that store_gen_open accepts; VIGIL_ENOTFOUND if none
 * does; *ret_refused counts those refused on the way (their diags are not
 * kept). VIGIL_ENOMEM stops the search.
 * gen_files_sig: a fingerprint of the stat(2) of generation n's directory,
 * data.mdb, CHECKSUM and features/CHECKSUMS_FROM (absent ones included), so
 * a refused generation is tried again only once one of them changed.
 */
vigil_err gen_checksum_write(const char *gendir, store_diag *reterr);
vigil_err gen_open_newest_below(const char *datadir, uint64_t below, store_gen **ret_g,
    uint32_t *ret_refused);
uint64_t  gen_files_sig(const char *datadir, uint64_t generation);

#endif
