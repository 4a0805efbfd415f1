/* SPDX-License-Identifier: MIT */
/*
 * store/record.h - the archive's record payloads (record.c): store_scored
 * and store_label <-> vigil.v1.ArchivedScore / ArchivedLabel
 * (proto/vigil.proto). A score's model input vector is archived as the
 * bytes of store_model_vec_encode (features/codec.h). Included by
 * archive.h. The codecs are pure functions; errors are vigil_err with a
 * one-line store_diag (schema.h) where a function takes one.
 */
#ifndef VIGIL_STORE_RECORD_H
#define VIGIL_STORE_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "diag.h"
#include "schema.h"
#include "vigil.h"

#ifdef __cplusplus
extern "C" {
#endif

#define STORE_MAX_HITS 64
#define STORE_MAX_FEATS 32
#define STORE_MODEL_IN_MAX_BYTES (3 + STORE_MODEL_MAX_INPUTS / 8 + 4 * STORE_MODEL_MAX_INPUTS)

typedef struct store_hit {
	char    rule[64];
	int32_t points;
	bool    shadow;
} store_hit;

/* The model's part of a first outcome, kept with its txn_id so that a
 * retry gets the same reply (not archived: after a restart a retry's reply
 * has no model part). present false (zeroed): no model score. */
#define STORE_MAX_REASONS 3
typedef struct store_reason {
	uint32_t slot;    /* schema slot of the feature (store_schema_field) */
	float    contrib; /* log-odds contribution */
	double   value;   /* the feature's value as scored */
} store_reason;

typedef struct store_model_outcome {
	bool         present;
	uint32_t     nreasons; /* <= STORE_MAX_REASONS */
	double       score;
	store_reason reasons[STORE_MAX_REASONS];
} store_model_outcome;

/* A feature's value as archived. name_id (store_schema_name_id), when not
 * 0, is written in place of the name; decoding fills name from it
 * (store_schema_name_of). */
typedef struct store_featval {
	char        name[48];
	uint32_t    name_id;
	vigil_value val; /* str points into the record's storage */
} store_featval;

/* A scored transaction as archived. Self-contained (no pointers out):
 * copy it with memcpy; feats[].val.str point into its own strbuf. */
typedef struct store_scored {
	vigil_txn      txn;
	double         score;  /* 0-100 (rules_result.score); an older record: points clamped */
	int32_t        points; /* sum of points of the active rules that fired */
	vigil_decision decision;
	uint32_t       nhits;
	store_hit      hits[STORE_MAX_HITS];
	char           rules_version[72];
	uint64_t       features_gen;
	int64_t        scored_at_ms;
	uint32_t       nfeats;
	store_featval  feats[STORE_MAX_FEATS];
	char           strbuf[1024]; /* backing bytes for feats[].val.str */
	uint64_t       model_layout; /* store_schema_model_layout() when scored; 0: no vector */
	uint32_t       model_in_len; /* bytes of model_in used (0: no vector) */
	uint8_t        model_in[STORE_MODEL_IN_MAX_BYTES]; /* store_model_vec_encode */
	store_model_outcome model; /* not archived: kept for retries (zeroed: none) */
} store_scored;

typedef struct store_label {
	char    txn_id[VIGIL_ID_MAX + 1];
	char    card_id[VIGIL_ID_MAX + 1];
	char    source[32];
	bool    fraud;
	int64_t label_time_ms;
	int64_t received_at_ms;
} store_label;

/* Encode into buf (cap bytes); *ret_len = encoded size; VIGIL_ETOOBIG if it
 * does not fit; VIGIL_EINVAL if a string of the struct is unterminated
 * within its array or a count is over its cap. */
vigil_err store_scored_encode(const store_scored *s, void *buf, size_t cap, size_t *ret_len);
vigil_err store_label_encode(const store_label *l, void *buf, size_t cap, size_t *ret_len);
/* Decode a payload; VIGIL_EPROTO if malformed or over a cap of the struct
 * (reterr says which field); *ret is written only on VIGIL_OK. Decoding
 * allocates only for unusually large messages (freed before return). */
vigil_err store_scored_decode(const void *payload, size_t len, store_scored *ret, store_diag *reterr);
/* The score of a decoded record: score if the record says it has one
 * (score_present), else, for a record written before the score was 0-100,
 * its points clamped to 0-100 (what its score was then). */
double    store_scored_score_of(int32_t points, bool present, double score);
vigil_err store_label_decode(const void *payload, size_t len, store_label *ret, store_diag *reterr);

/* The first outcome of a transaction, kept by the live state for retries
 * (live.h) and returned by store_score_begin (features/db/db.h). */
typedef struct store_outcome {
	double         score;  /* 0-100 */
	int32_t        points; /* sum of points of the active hits */
	vigil_decision decision;
	uint64_t       features_gen;
	uint32_t       nhits;
	store_hit      hits[STORE_MAX_HITS];
	char           rules_version[72];
	store_model_outcome model; /* present only within the process that scored it */
	bool           late;  /* the transaction was late when scored (store_commit_info:
	                       * the first commit's judgement, or the archive replay's
	                       * after a restart), so a retry's reply says it too */
} store_outcome;

#ifdef __cplusplus
}
#endif

#endif /* VIGIL_STORE_RECORD_H */
