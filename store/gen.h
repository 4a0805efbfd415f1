/* SPDX-License-Identifier: MIT */
/*
 * store/gen.h - batch feature generations (DESIGN.md contract 3): numbered
 * LMDB environments under "<datadir>/features/gen-NNNNNN", written by
 * vigil-rebuild (store_genw), checksummed, switched atomically by renaming
 * CURRENT, and read by store_db and the tools (store_gen). A generation
 * holds card, merchant and terminal profiles, tuned thresholds and opaque
 * named blobs (the model). store/ writes them (genw.c, gendir.c,
 * gencheck.c); reading them into profiles is above store/, in
 * features/db/genread.h. The layouts, the checksums and the switch are
 * documented in docs/storage.md.
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
/* The profiles and thresholds: store_genw_put_card and the others in
 * features/db/genread.h, which encode them (features/codec.h) and put the
 * bytes (gendir.h: store_genw_put). */
/*
 * Opaque named blobs (the model, in app/'s format; store/ never looks
 * inside). name: 1..STORE_BLOB_NAME_MAX bytes of [a-z0-9_.-]; a second put
 * of a name replaces the first; data is copied. VIGIL_EINVAL for a bad
 * name, VIGIL_ETOOBIG over STORE_BLOB_MAX_BYTES; otherwise as store_genw_put.
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

/* A generation open for reading: features/db/genread.h (store_gen_open and
 * the lookups) reads it into profiles, above store/. */
typedef struct store_gen store_gen;

/* How an open generation was checked by store_gen_open. */
typedef struct store_gen_check {
	bool     verified;  /* data.mdb matched CHECKSUM; false: written before checksums */
	uint64_t bytes;     /* size of data.mdb */
	uint64_t verify_us; /* time spent reading and hashing it */
} store_gen_check;

/* ===================== CURRENT ===================== */

/* Reads CURRENT: the generation number it names, 0 if there is none.
 * VIGIL_ECORRUPT if it is malformed; VIGIL_ETOOBIG if the path is too long. */
vigil_err store_gen_current(const char *datadir, uint64_t *ret_generation);

#ifdef __cplusplus
}
#endif

#endif /* VIGIL_STORE_GEN_H */
