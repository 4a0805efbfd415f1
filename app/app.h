/* SPDX-License-Identifier: MIT */
/*
 * app/app.h - what every program on top (vigild, vigil-rebuild, vigil-replay,
 * vigil-rules) needs to join rules/ and store/, written once: the rules
 * schema built from store's feature schema, tuned thresholds bound from a
 * feature generation into rules_tvals, and feature vectors from JSON.
 * DESIGN.md: "rules/ and store/ know nothing of each other ... the program
 * on top joins the two"; this is that join, shared.
 */
#ifndef VIGIL_APP_H
#define VIGIL_APP_H

#include <jansson.h>

#include "rules.h"
#include "store.h"
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

#endif
