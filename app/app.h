/* SPDX-License-Identifier: MIT */
/*
 * app/app.h - what every program on top (vigild, vigil-rebuild, vigil-replay,
 * vigil-rules) needs to join rules/, model/ and store/, written once: THE
 * scoring pipeline (app_score: dedupe, features, model, rules, decision,
 * archived values, commit), the rules schema built from store's feature
 * schema, tuned thresholds and the model bound from a feature generation,
 * and feature vectors from JSON. DESIGN.md: "rules/, model/ and store/ know
 * nothing of each other ... app/ joins them"; this is that join, shared.
 */
#ifndef VIGIL_APP_H
#define VIGIL_APP_H

#include <jansson.h>

#include "model.h"
#include "rules.h"
#include "db.h"
#include "vigil.h"

/* A rules schema with every store feature at its slot. Free with rules_schema_free. */
vigil_err app_rules_schema(rules_schema **ret_schema);

/* Loads and compiles a rule file against the store schema. On error
 * *reterr_diags is filled (print with rules_diags_print). */
vigil_err app_rules_load(const char *path, rules_prog **ret_prog, rules_diags *reterr_diags);

/*
 * Threshold values for prog from a generation's stored values (tuned by
 * vigil-rebuild): every threshold of prog with a stored value for its name
 * gets it (global "" and per group); the rest keep their fallback. db or gen
 * may be NULL (all fallbacks).
 */
vigil_err app_tvals_from_db(const rules_prog *prog, store_db *db, rules_tvals **ret_tv);
vigil_err app_tvals_from_gen(const rules_prog *prog, store_gen *gen, rules_tvals **ret_tv);

/*
 * Overrides slots from a JSON object {"card.count_7d": 3, "vel.card.count_1h": null, ...}:
 * numbers for number features, true/false for bool, strings for string
 * features, null for missing. String values point into obj (keep it alive).
 * VIGIL_ENOTFOUND / VIGIL_ETYPE with errbuf "name: reason" (with a did-you-mean
 * suggestion for unknown names).
 */
vigil_err app_features_from_json(const json_t *obj, vigil_value *features, uint32_t nfeatures,
    char *errbuf, size_t errlen);

/* ====================== The served model ====================== */

/* Names of the generation blobs vigil-rebuild writes: XGBoost's own JSON
 * model (loadable by any XGBoost) and a JSON description of how it was
 * trained (window, counts, validation metrics; docs/model.md). */
#define APP_MODEL_BLOB      "model.json"
#define APP_MODEL_META_BLOB "model.meta"
/* What each tuned threshold value means ({"name": rules_threshold_def}):
 * vigil-rebuild writes it beside the values, app_tvals_from_* bind a value
 * only to a threshold of the same definition. */
#define APP_THRESHOLD_DEFS_BLOB "thresholds.defs"

/* A forest bound to the feature schema: each model input mapped to its
 * store slot. Immutable; share across threads. */
typedef struct app_model app_model;

/*
 * Decodes an XGBoost JSON model (model_forest_decode) and binds its feature
 * names to schema slots. VIGIL_EINVAL if it reads a name that is not a
 * model input of this build (errbuf names it); the model/ errors otherwise,
 * with errbuf "model.json: <where>: <what>". Never logs.
 */
vigil_err app_model_decode(const void *json, size_t len, app_model **ret_model,
    char *errbuf, size_t errlen);
/*
 * The model of the db's current generation, with its calibration (both
 * read from that one generation): VIGIL_OK with *ret_model NULL when the
 * generation has none (cold start, or no generation yet), so rules alone
 * decide. A damaged or unknown model, or a malformed calibration in its
 * "model.meta", is an error (errbuf says which generation and why): the
 * caller keeps serving the model it had.
 * *ret_generation (may be NULL): the generation read, 0 if none.
 */
vigil_err app_model_from_db(store_db *db, app_model **ret_model, uint64_t *ret_generation,
    char *errbuf, size_t errlen);
vigil_err app_model_from_gen(store_gen *gen, app_model **ret_model, char *errbuf, size_t errlen);
void      app_model_free(app_model *m); /* NULL is a no-op */
/*
 * The calibration of m from a generation's "model.meta" JSON (meta NULL:
 * none): "calibration": {"method": "platt", "a": A, "b": B} makes the
 * calibrated probability 1/(1+exp(-(A ln(p/(1-p)) + B))), strictly
 * increasing for A > 0, so it ranks as the model does; no "calibration"
 * (or null) is the identity. VIGIL_EINVAL with errbuf "model.meta:
 * calibration.a: ..." when the meta is not a JSON object or the calibration
 * is malformed (the generation's model is then refused like a damaged one:
 * app_model_from_db/_from_gen read it). Never logs.
 */
vigil_err app_model_calibration(app_model *m, const void *meta, size_t len, char *errbuf,
    size_t errlen);
/* The calibrated probability of the model's p (NaN stays NaN). */
double    app_model_calibrate(const app_model *m, double p);
/* The as-of the model was trained at ("model.meta" as_of_ms), 0 unknown. */
int64_t   app_model_as_of_ms(const app_model *m);
const model_forest *app_model_forest(const app_model *m);
/* The store slot of model input i (< model_forest_nfeatures). */
uint32_t  app_model_slot(const app_model *m, uint32_t i);

/* The model's input vector (store_schema_model_inputs layout) from a
 * feature vector: numbers and booleans as float32, missing as NaN. */
void app_model_vector(const vigil_value *features, float *ret_x, uint32_t n);

/* ====================== Rule files bound for scoring ====================== */

/*
 * A compiled rule file with what scoring derives from it once: the features
 * archived with every scored record (the inputs of its tuned thresholds:
 * feature and group slots, each once, in threshold order; vigil-rebuild
 * tunes from them) and which rules read model.score (their hits carry the
 * model's reasons). Immutable; share across threads.
 */
typedef struct app_rules {
	rules_prog *prog;
	uint32_t    arch[STORE_MAX_FEATS];
	uint32_t    narch;
	bool        reads_model[RULES_MAX_RULES];
	bool        any_model;
} app_rules;

/* Takes prog (freed by app_rules_free, also on error). VIGIL_ETOOBIG with
 * errbuf if the tuned thresholds read more than STORE_MAX_FEATS features. */
vigil_err app_rules_new(rules_prog *prog, app_rules **ret_rules, char *errbuf, size_t errlen);
void      app_rules_free(app_rules *r); /* NULL is a no-op; frees prog */

/* ====================== The scoring pipeline ====================== */

/* What one scoring reads: a rule file, its thresholds tuned for the current
 * generation, that generation's model (NULL: none), and optionally a second
 * rule file evaluated on the same features (vigil-replay --compare). The
 * caller keeps all of it alive during app_score.
 * amend (NULL when scoring): what-if values for a dry run (vigil-rules
 * explain's "features"): called with the feature vector once the store has
 * filled it, before the model reads it; it may set any slot (model.score
 * is then the model's if there is one). An error it returns stops the
 * scoring at APP_STEP_FEATURES with that error. */
typedef struct app_scorer {
	const app_rules   *rules;
	const rules_tvals *tv;
	const app_model   *model;
	const rules_prog  *prog2; /* NULL: none */
	const rules_tvals *tv2;
	vigil_err        (*amend)(void *arg, vigil_value *features, uint32_t nfeatures);
	void              *amend_arg;
	/* pin_gen: the features come from gen (NULL: none), the generation tv
	 * and model were built from (store_ctx_pin_gen), not from the db's
	 * current one, which may have moved on (vigild). false: the db's. */
	bool               pin_gen;
	store_db_gen      *gen;
} app_scorer;

/* Per-thread scratch: the store context, the feature vector, the record
 * being written. Allocated once; app_score allocates nothing. */
typedef struct app_work app_work;

app_work *app_work_new(store_db *db); /* NULL on ENOMEM */
void      app_work_free(app_work *w); /* NULL is a no-op */
/* The slots lookups compute (store_ctx_set_features, features/db/mask.h: an
 * offline optimisation); NULL = all. */
typedef struct store_feature_mask store_feature_mask;
vigil_err app_work_set_features(app_work *w, const store_feature_mask *m);

#define APP_REASONS_MAX 3

/* A feature that pushed the model's score up: of the features with a value
 * (a missing input has none to show), the largest positive contributions,
 * descending (model_forest_top). */
typedef struct app_reason {
	const char *feature;  /* schema name (static) */
	uint32_t    slot;     /* its schema slot */
	vigil_value value;    /* as scored (str points into the work's vector) */
	float       contrib;  /* on the log-odds scale, > 0 */
} app_reason;

typedef enum app_step {
	APP_STEP_FEATURES = 1, /* dedupe + batch + live features (store_score_begin) */
	APP_STEP_MODEL,
	APP_STEP_RULES,
	APP_STEP_ARCHIVE,      /* store_score_commit */
} app_step;

typedef struct app_outcome {
	/*
	 * VIGIL_OK: scored (and recorded unless a dry run): res is the
	 * evaluation. VIGIL_EEXIST: a retry, prior is the first outcome;
	 * VIGIL_ECONFLICT: the id was used for another transaction (prior
	 * filled); neither recorded anything. Any other: failed at step (diag
	 * says why for APP_STEP_ARCHIVE), nothing applied.
	 */
	vigil_err           rv;
	app_step            step;
	store_outcome       prior;
	const rules_result *res;   /* valid until the next app_score on the work */
	const rules_result *res2;  /* scorer's prog2, or NULL */
	uint64_t            generation;
	double              model_score; /* NaN: no model */
	/* the calibrated probability res->score was made from (NaN: none, the
	 * points alone decided) */
	double              model_cal;
	/* > 0 only for a decision above allow, or an active hit that read
	 * model.score (or APP_ALL_REASONS) */
	uint32_t            nreasons;
	app_reason          reasons[APP_REASONS_MAX];
	const vigil_value  *features;    /* the vector scored, valid as res */
	/* VIGIL_OK only (store_ctx_commit_info): the transaction was late (not
	 * applied to velocity) / its id past the dedupe horizon (a repeat is
	 * scored again); for a dry run, what a commit would decide now. */
	bool                late;
	bool                past_dedupe_horizon;
	store_diag          diag;
} app_outcome;

#define APP_DRY_RUN      0x1u /* features (no dedupe, nothing locked) and evaluation only */
#define APP_NO_ARCHIVE   0x2u /* the db archives nothing (in-memory replay): skip the
                               * archived values and the model vector */
#define APP_ALL_REASONS  0x4u /* reasons whenever there is a model score (explain) */

/*
 * Scores txn, the one pipeline every program runs: dedupe and features
 * (store_score_begin, the card locked; store_features_lookup for a dry run)
 * -> the model (model.score) -> the rules (and prog2) -> the score (res->score: the
 * model's calibrated probability x 100 when there is a model, rules_result_model)
 * -> decision and hits
 * -> the archived record (hits, the tuned thresholds' inputs, the model's
 * input vector; scored_at_ms as given) -> store_score_commit (archive,
 * live state, dedupe; durable per the fsync policy). Fills *ret; the return
 * value is ret->rv.
 */
vigil_err app_score(store_db *db, app_work *w, const app_scorer *sc, const vigil_txn *txn,
    unsigned flags, int64_t scored_at_ms, app_outcome *ret);

#endif
