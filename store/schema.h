/* SPDX-License-Identifier: MIT */
/*
 * store/schema.h - the feature schema, and store_diag, the error detail of
 * every store/ call. The base of store/'s headers (archive.h, gen.h and
 * db.h include it):
 *
 *   schema.h   feature names, types, sources, slots; the model's input layout
 *   archive.h  the append-only archive: writer, reader, frames, record codecs
 *   gen.h      feature generations in LMDB: writing, reading, blobs, checksums
 *   db.h       store_db, the serving object: generation + live state + archive
 *
 * The schema is made from one table, features/schema.def (schema.c); the
 * meaning of each feature is in docs/features.md. Nothing here allocates or
 * locks after the first call; every function is thread-safe.
 * Depends on common/ only.
 */
#ifndef VIGIL_STORE_SCHEMA_H
#define VIGIL_STORE_SCHEMA_H

#include <stdbool.h>
#include <stdint.h>

#include "vigil.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ========================= Errors ========================= */

/*
 * The detail of an error: msg, the one line to print (where and what, as it
 * has always read), and info, the same error in common's vigil_errinfo
 * parts, so that no caller cuts msg to find the place:
 *   archive damage       info.file the segment ("archive/NAME.log" or its
 *                        path), info.offset the record's byte offset in it
 *                        (VIGIL_NOPOS: the whole segment)
 *   feature-table damage info.file the generation ("features/gen-NNNNNN"),
 *                        info.field the LMDB key when one is at fault
 *                        ("c1"; the table is named in info.msg)
 *   anything else        no place: info.file "" and info.msg = msg
 * info.msg is what is wrong without the file (and offset) before it, so
 * vigil_errinfo_format(&d.info) prints msg again, except that an offset
 * is written FILE@OFFSET there and FILE:OFFSET in msg (the notation of
 * vigil-archive's damage lines). A zero-initialised diag has no place.
 * Functions that take a `store_diag *reterr` fill it when they return an
 * error (and say so where they fill it on success); reterr may be NULL.
 * The library never logs: the caller prints the message, once.
 */
typedef struct store_diag {
	char          msg[512];
	vigil_errinfo info;
} store_diag;

/* Formats a one-line message into d (nothing if d is NULL), about no
 * place. batch/ and the tools use it to report in the same shape. */
void store_diag_set(store_diag *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* About a file (a segment, a generation's directory or file) and, unless
 * offset is VIGIL_NOPOS, a byte offset in it; field: the key or NULL.
 * msg: "FILE: what" or "FILE:OFFSET: what" (what: fmt). */
void store_diag_at(store_diag *d, const char *file, uint64_t offset, const char *field,
    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

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

#ifdef __cplusplus
}
#endif

#endif /* VIGIL_STORE_SCHEMA_H */
