/* SPDX-License-Identifier: MIT */
/*
 * model/model.h - the served model: an XGBoost forest decoded from its JSON
 * form (what batch/ trains every night and stores in a generation) into a
 * compact flat node array, evaluated natively in about a microsecond, with
 * per-feature contributions for the reasons of a decision.
 *
 * The component depends on common/ (vigil_err) and jansson only; it never
 * links libxgboost. It knows nothing of store/ or rules/: it evaluates a
 * vector of float32 feature values in the order of its own feature names,
 * and app/ maps store slots onto that order once per model (DESIGN.md).
 * docs/model.md, "Serving: the native evaluator", describes the semantics
 * and the checks against XGBoost.
 */
#ifndef VIGIL_MODEL_H
#define VIGIL_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "vigil.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Caps on everything the model JSON controls, checked while decoding; going
 * over one is VIGIL_ETOOBIG, never an allocation of that size.
 */
#define MODEL_MAX_JSON       (32u << 20) /* bytes of JSON text (jansson holds ~10x) */
#define MODEL_MAX_TREES      4096u       /* trees in the forest */
#define MODEL_MAX_TREE_NODES 65536u      /* nodes in one tree, deleted ones included */
#define MODEL_MAX_NODES      (1u << 21)  /* nodes in all trees together */
#define MODEL_MAX_FEATURES   256u        /* input features (learner.feature_names) */
#define MODEL_MAX_DEPTH      64u         /* splits on the path from a root to a leaf */
#define MODEL_MAX_NAME       64u         /* bytes of one feature name */
#define MODEL_MAX_TERMS      (1u << 23)  /* contribution terms: for each leaf, the distinct
                                            features on its path, all leaves together */
#define MODEL_TOP_MAX        8u          /* reasons model_forest_top can return */
/* |leaf value| and |node mean| bound (real ones are below 100): with it every
 * margin and contribution sum stays far from float32 overflow. */
#define MODEL_MAX_VALUE      1e18f

/* A decoded forest: immutable, so one may be shared by any number of threads
 * without locks. Free with model_forest_free(). */
typedef struct model_forest model_forest;

/*
 * Why a decode failed, in common's vigil_errinfo shape:
 *   field   the JSON path of the value at fault, from the document root
 *           ("learner.gradient_booster.model.trees[3].left_children[17]");
 *           "" when the error is about no one value (JSON syntax, size, memory)
 *   offset  for a JSON syntax error, the byte offset in the input where the
 *           parser stopped (just past the offending token; the input's length
 *           at a premature end); VIGIL_NOPOS otherwise
 *   msg     one line of UTF-8: "path: what is wrong" (the path first, as it is
 *           printed), or "JSON: line L, column C: ..." for a syntax error
 *   file, line, col: not filled (the decoder is given bytes, not a file).
 * Print it with vigil_errinfo_format().
 */
typedef vigil_errinfo model_diag;

/*
 * Decodes json[0..len), an XGBoost model as XGBoosterSaveModelToBuffer with
 * {"format":"json"} writes it (version 1.7.x): a "gbtree" booster, objective
 * "binary:logistic", one output group, numerical splits only. The feature
 * names (learner.feature_names) are required: they are how a caller maps its
 * values onto the model's inputs. Every tree is checked: children in range,
 * every node reached exactly once from the root (no cycle, no shared child;
 * the unreached ones are exactly the num_deleted deleted nodes), features in
 * range, thresholds finite float32, leaf values and node means (from
 * sum_hessian) within MODEL_MAX_VALUE, depth and sizes within the MODEL_MAX_*
 * caps. Trees are evaluated in the order of their "id". So a decoded forest
 * gives a finite margin and finite contributions for every input.
 *
 * json need not be NUL-terminated and is not retained.
 * VIGIL_OK: *ret_forest set (free with model_forest_free()).
 * On error *ret_forest is untouched and reterr_diag (if not NULL) says what
 * and where:
 *   VIGIL_ECORRUPT  not JSON, or a required field missing or of the wrong
 *                   type, or an inconsistent tree (child out of range,
 *                   cycle, NaN or infinite threshold (XGBoost writes NaN and
 *                   Infinity tokens; they are read as such), array lengths
 *                   differ, ...)
 *   VIGIL_EVERSION  "version" is not 1.7.x
 *   VIGIL_EINVAL    a valid model this evaluator does not serve (another
 *                   objective or booster, multi-class, categorical splits,
 *                   vector leaves, no feature names, duplicate names)
 *   VIGIL_ETOOBIG   over a MODEL_MAX_* cap
 *   VIGIL_ENOMEM    out of memory
 * Never logs.
 */
vigil_err model_forest_decode(const void *json, size_t len, model_forest **ret_forest,
    model_diag *reterr_diag);

/* Frees f and everything it owns. NULL is a no-op. */
void model_forest_free(model_forest *f);

/* Number of input features, >= 1: the length of every x below. */
uint32_t model_forest_nfeatures(const model_forest *f);

/* Name of feature i: NUL-terminated, valid as long as f; NULL if
 * i >= nfeatures. */
const char *model_forest_feature(const model_forest *f, uint32_t i);

/* Number of trees (0 is possible: the prediction is then the base score). */
uint32_t model_forest_ntrees(const model_forest *f);

/*
 * The following take x[0..nfeatures): float32 values in the order of the
 * feature names, NaN meaning missing (it follows each split's default
 * direction, as in XGBoost). A split sends x left iff x < threshold in
 * float32. None of them allocates, locks or fails; all are safe to call
 * concurrently on one forest. Stack: about 2 KiB (predict, margin) and 3 KiB
 * (contrib, top).
 */

/* The margin (log-odds): base margin + the sum of the trees' leaf values,
 * added in float32 in tree order, as XGBoost adds them. */
double model_forest_margin(const model_forest *f, const float *x);

/* P(positive) in [0, 1]: the logistic of the margin, as XGBoost computes it
 * (in float32); equal to XGBoost's prediction within 1e-6. */
double model_forest_predict(const model_forest *f, const float *x);

/*
 * Per-feature contributions on the margin scale (Saabas: along each tree's
 * path, the change of the node mean value, hessian-weighted, is credited to
 * the split feature), as XGBoost's pred_contribs with approx_contribs=True.
 * ret_contrib[0..nfeatures]: one per feature, then the bias (expected
 * margin, base margin included) last. Their sum equals the margin up to
 * float32 rounding.
 */
void model_forest_contrib(const model_forest *f, const float *x, float *ret_contrib);

/*
 * The leaf each tree reached for one vector (padding trees included):
 * filled by model_forest_predict_path, read by model_forest_top_path, so a
 * caller that predicts and then wants the reasons walks the trees once.
 * 16 KiB: keep it in a per-thread work area, not on the stack.
 */
typedef struct model_leaves {
	uint32_t leaf[MODEL_MAX_TREES];
} model_leaves;

/* model_forest_predict, bit for bit, also filling *ret_path with x's leaves
 * (valid for f only). */
double model_forest_predict_path(const model_forest *f, const float *x, model_leaves *ret_path);

/* One reason for a score: a feature and its contribution (margin scale). */
typedef struct model_reason {
	uint32_t feature; /* index into the feature names */
	float    contrib; /* > 0: pushes towards positive (fraud) */
} model_reason;

/*
 * The up to k features (k capped at MODEL_TOP_MAX) with the largest positive
 * contributions, in descending order (ties: lower feature index first), in
 * ret[0..n). Returns n: fewer than k when fewer contributions are > 0. The
 * bias is never a reason.
 */
uint32_t model_forest_top(const model_forest *f, const float *x, uint32_t k,
    model_reason *ret);

/* model_forest_top of the vector whose leaves model_forest_predict_path put in
 * *path (same f), bit for bit, without walking the trees again. */
uint32_t model_forest_top_path(const model_forest *f, const model_leaves *path, uint32_t k,
    model_reason *ret);

#ifdef __cplusplus
}
#endif

#endif
