/* SPDX-License-Identifier: MIT */
/*
 * store/gen.h - batch feature generations (DESIGN.md contract 3): numbered
 * LMDB environments under "<datadir>/features/gen-NNNNNN", written by
 * vigil-rebuild (store_genw), checksummed, switched atomically by renaming
 * CURRENT, and read by store_db and the tools (store_gen). A generation
 * holds card, merchant and terminal profiles, tuned thresholds and opaque
 * named blobs (the model). features.c implements all of it; the layouts,
 * the checksums and the switch are documented in docs/storage.md.
 *
 * Thread safety: a store_gen may be read by any number of threads at once
 * (lookups borrow a read transaction from its pool); close it after the
 * last lookup. A store_genw and a store_gen_cards are used by one thread.
 * Errors are vigil_err, with a one-line store_diag (schema.h) where a
 * function takes one.
 */
#ifndef VIGIL_STORE_GEN_H
#define VIGIL_STORE_GEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "diag.h"
#include "profile.h"
#include "schema.h"
#include "vigil.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The card and entity profiles (store_card_profile, store_entity_profile)
 * and their layouts are in features/profile.h. */

/* The values a generation holds (profiles, thresholds, meta) and their
 * layouts are features/'s: profile.h and codec.h. */

/* ===================== Writing a generation (batch/) ===================== */

typedef struct store_genw store_genw;

/*
 * Starts generation N+1 under "<datadir>/features/" in a temporary directory
 * invisible to readers. Takes the rebuild lock. VIGIL_OK: *ret_w set; finish
 * with store_genw_commit or store_genw_abort (each frees it). Errors, with
 * reterr: VIGIL_EBUSY (another rebuild holds the lock), VIGIL_ETOOBIG (path
 * too long), VIGIL_EIO and errno-mapped codes, VIGIL_ENOMEM.
 */
vigil_err store_genw_begin(const char *datadir, store_genw **ret_w, store_diag *reterr);
/* The number the generation will have (N+1). */
uint64_t  store_genw_generation(const store_genw *w);
/*
 * Puts a profile or threshold (a second put of a key replaces the first).
 * VIGIL_EINVAL for an empty or over-long id or name, or counts over the
 * struct's caps (nothing written; w stays usable). An LMDB failure
 * (VIGIL_EIO, VIGIL_ENOMEM, VIGIL_ELIMIT for a full map) is sticky: every
 * later put and the commit return it; abort.
 */
vigil_err store_genw_put_card(store_genw *w, const char *card_id, const store_card_profile *p);
vigil_err store_genw_put_merchant(store_genw *w, const char *merchant_id, const store_entity_profile *p);
vigil_err store_genw_put_terminal(store_genw *w, const char *terminal_id, const store_entity_profile *p);
/* group "" = the global value. */
vigil_err store_genw_put_threshold(store_genw *w, const char *name, const char *group,
    const store_threshold_val *v);
/*
 * Opaque named blobs (the model, in app/'s format; store/ never looks
 * inside). name: 1..STORE_BLOB_NAME_MAX bytes of [a-z0-9_.-]; a second put
 * of a name replaces the first; data is copied. VIGIL_EINVAL for a bad
 * name, VIGIL_ETOOBIG over STORE_BLOB_MAX_BYTES; otherwise as the other puts.
 */
#define STORE_BLOB_NAME_MAX  32
#define STORE_BLOB_MAX_BYTES (256u << 20)
vigil_err store_genw_put_blob(store_genw *w, const char *name, const void *data, size_t len);
/* Writes meta, syncs, writes the CHECKSUM of data.mdb (synced), renames
 * into place, creates features/CHECKSUMS_FROM if there is none, switches
 * CURRENT atomically, prunes old generations beyond keep (0 = default 3).
 * Frees w, whatever it returns; on error CURRENT is untouched.
 * meta->generation is ignored (the generation number of w is stored).
 * VIGIL_OK with reterr->msg non-empty: committed, but pruning an old
 * generation failed (the message says which). */
vigil_err store_genw_commit(store_genw *w, const store_gen_meta *meta, uint32_t keep,
    store_diag *reterr);
/* Discards everything; CURRENT untouched. Frees w. NULL is a no-op. */
void      store_genw_abort(store_genw *w);

/* ===================== Reading a generation ===================== */

typedef struct store_gen store_gen;

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

/* How an open generation was checked by store_gen_open. */
typedef struct store_gen_check {
	bool     verified;  /* data.mdb matched CHECKSUM; false: written before checksums */
	uint64_t bytes;     /* size of data.mdb */
	uint64_t verify_us; /* time spent reading and hashing it */
} store_gen_check;
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

/* ===================== CURRENT ===================== */

/* Reads CURRENT: the generation number it names, 0 if there is none.
 * VIGIL_ECORRUPT if it is malformed; VIGIL_ETOOBIG if the path is too long. */
vigil_err store_gen_current(const char *datadir, uint64_t *ret_generation);
/* Points CURRENT at an existing generation (operators' roll-back), under
 * the rebuild lock, only if store_gen_open accepts it; its errors (with
 * reterr), or VIGIL_EBUSY while a rebuild runs. */
vigil_err store_gen_set_current(const char *datadir, uint64_t generation, store_diag *reterr);

#ifdef __cplusplus
}
#endif

#endif /* VIGIL_STORE_GEN_H */
