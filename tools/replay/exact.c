/* SPDX-License-Identifier: MIT */
/*
 * tools/replay/exact.c - vigil-replay --exact: a rule file evaluated on the
 * values production archived with each score, against production's own
 * outcome (docs/vigil-replay.md, "Exact back-test").
 *
 * Per archived score record: the feature vector is rebuilt from what the
 * record holds - the request fields (the transaction), the model's input
 * vector (float32, when its layout is this build's) and the named values of
 * the features the tuned thresholds read (double; they win over the
 * vector's) - and the record's generation gives the tuned thresholds and
 * the model with its calibration. The model scores the vector (model.score),
 * and the file is evaluated and composed as app/score.c does: 100 x the
 * calibrated probability + the points clamped to adjust max, the bands, the
 * floors of `decide`. The unchanged file reproduces production's decisions.
 * A feature the file reads that the record does not hold makes the row
 * inexact (counted, by feature); a row whose generation is gone is not
 * evaluated: it keeps production's outcome and counts as inexact.
 */
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen.h"
#include "replay.h"

/* A generation's tuned values for the file and its model (NULL: none). */
typedef struct rp_exact_gen {
	uint64_t     gen;
	bool         loaded;
	bool         missing;  /* its model could not be read */
	bool         gone;     /* not on disk any more: its rows are not evaluated */
	rules_tvals *tv;
	app_model   *model;
} rp_exact_gen;

struct rp_exact {
	rp_exact_gen  g;
	vigil_value  *f;
	bool         *have;    /* per slot: the record gave a value (or its absence) */
	uint32_t      nfeat, model_slot;
	float         xm[MODEL_MAX_FEATURES];
	float         xl[STORE_MODEL_MAX_INPUTS];
	uint64_t      missing_counts[128];
	rules_result  res;
};

static void
rp_exact_gen_clear(rp_exact_gen *g)
{
	rules_tvals_free(g->tv);
	app_model_free(g->model);
	memset(g, 0, sizeof *g);
}

/* The generation's thresholds and model (none when it is gone). */
static vigil_err
rp_exact_gen_load(rp *r, uint64_t gen)
{
	rp_exact_gen *g = &r->ex->g;
	store_gen *sg = NULL;
	store_diag diag;
	char err[512];
	vigil_err rv;

	if (g->loaded && g->gen == gen)
		return VIGIL_OK;
	rp_exact_gen_clear(g);
	g->gen = gen;
	g->loaded = true;
	if (gen == 0) {
		/* scored before the first rebuild: fallbacks, no model */
		g->tv = rules_tvals_new(r->prog);
		return g->tv != NULL ? VIGIL_OK : VIGIL_ENOMEM;
	}
	rv = store_gen_open(r->o.archive, gen, &sg, &diag);
	if (rv != VIGIL_OK) {
		/* Its thresholds and model are not archived anywhere else: any
		 * other generation's would change decisions the file did not.
		 * Its rows keep production's outcome and count as inexact. */
		g->gone = true;
		if (r->gens_missing++ == 0)
			fprintf(stderr, "vigil-replay: generation %" PRIu64 " is gone (%s): its rows "
			    "keep production's decisions and count as inexact\n", gen, diag.msg);
		return VIGIL_OK;
	}
	rv = app_tvals_from_gen(r->prog, sg, &g->tv);
	if (rv != VIGIL_OK) {
		fprintf(stderr, "vigil-replay: %s: generation %" PRIu64 ": thresholds: %s\n",
		    r->o.archive, gen, vigil_strerror(rv));
		store_gen_close(sg);
		return rv;
	}
	if (app_model_from_gen(sg, &g->model, err, sizeof err) != VIGIL_OK) {
		/* vigild kept the model it had: which one is not archived */
		fprintf(stderr, "vigil-replay: %s: %s; its rows are scored without a model\n",
		    r->o.archive, err);
		g->model = NULL;
		g->missing = true;
	}
	store_gen_close(sg);
	return VIGIL_OK;
}

vigil_err
rp_exact_open(rp *r)
{
	rp_exact *ex = calloc(1, sizeof *ex);

	if (ex == NULL)
		return VIGIL_ENOMEM;
	r->ex = ex;
	ex->nfeat = store_schema_nfields();
	ex->f = calloc(ex->nfeat, sizeof *ex->f);
	ex->have = calloc(ex->nfeat, sizeof *ex->have);
	r->changes = json_array();
	if (ex->f == NULL || ex->have == NULL || r->changes == NULL ||
	    store_schema_find("model.score", &ex->model_slot) != VIGIL_OK)
		return VIGIL_ENOMEM;
	return VIGIL_OK;
}

void
rp_exact_close(rp *r)
{
	if (r->ex == NULL)
		return;
	rp_exact_gen_clear(&r->ex->g);
	free(r->ex->f);
	free(r->ex->have);
	free(r->ex);
	r->ex = NULL;
}

/* A model input as app/score.c makes it: numbers as float32, the rest NaN. */
static float
rp_value_float(const vigil_value *v)
{
	if (!v->present || v->str != NULL || !(fabs(v->num) <= FLT_MAX))
		return NAN;
	return (float)v->num;
}

/* The feature vector of the record s; ex->have marks what it holds. */
static void
rp_exact_features(rp_exact *ex, const store_scored *s)
{
	const uint32_t *slots;
	uint32_t n = store_schema_model_inputs(&slots), nx = 0;

	store_features_from_txn(&s->txn, ex->f, ex->nfeat);
	for (uint32_t i = 0; i < ex->nfeat; i++)
		ex->have[i] = store_schema_field(i)->source == STORE_SRC_TXN;
	if (s->model_in_len > 0 && s->model_layout == store_schema_model_layout() &&
	    store_model_vec_decode(s->model_in, s->model_in_len, ex->xl, STORE_MODEL_MAX_INPUTS,
	    &nx) == VIGIL_OK) {
		for (uint32_t i = 0; i < nx && i < n; i++) {
			uint32_t slot = slots[i];

			if (ex->have[slot])
				continue; /* the request's own value, exact */
			ex->have[slot] = true;
			if (isnan(ex->xl[i]))
				continue;
			ex->f[slot] = store_schema_field(slot)->type == VIGIL_T_BOOL
			    ? vigil_value_bool(ex->xl[i] != 0) : vigil_value_num(ex->xl[i]);
		}
	}
	for (uint32_t i = 0; i < s->nfeats; i++) {
		uint32_t slot;

		if (store_schema_find(s->feats[i].name, &slot) != VIGIL_OK ||
		    store_schema_field(slot)->source == STORE_SRC_TXN)
			continue;
		ex->have[slot] = true;
		ex->f[slot] = s->feats[i].val;
	}
}

/* Production's outcome as archived, its hits numbered as the file's rules
 * (a rule the file does not have is left out of the per-rule measures). */
static void
rp_exact_archived(rp *r, const store_scored *s, rp_outcome *out)
{
	uint32_t n = 0, idx;

	memset(out, 0, sizeof *out);
	out->score = s->score;
	out->decision = s->decision;
	out->model_score = NAN;
	out->generation = s->features_gen;
	for (int shadow = 0; shadow < 2; shadow++)
		for (uint32_t i = 0; i < s->nhits && n < RP_MAX_HITS; i++)
			if (s->hits[i].shadow == (shadow == 1) &&
			    rules_prog_rule_find(r->prog, s->hits[i].rule, &idx) == VIGIL_OK) {
				out->hits[n++] = (uint16_t)idx;
				if (!shadow)
					out->nhits++;
			}
	out->nshadow = n - out->nhits;
}

/* The file's outcome on the record's values. */
static vigil_err
rp_exact_eval(rp *r, const store_scored *s, rp_outcome *out, bool *ret_exact)
{
	rp_exact *ex = r->ex;
	const rp_exact_gen *g = &ex->g;
	const uint32_t *used;
	uint32_t nused;
	double p = NAN;
	vigil_err rv;

	rp_exact_features(ex, s);
	memset(out, 0, sizeof *out);
	out->model_score = NAN;
	out->generation = s->features_gen;
	if (g->model != NULL) {
		const model_forest *mf = app_model_forest(g->model);
		uint32_t n = model_forest_nfeatures(mf);

		for (uint32_t i = 0; i < n; i++)
			ex->xm[i] = rp_value_float(&ex->f[app_model_slot(g->model, i)]);
		out->model_score = model_forest_predict(mf, ex->xm);
		ex->f[ex->model_slot] = vigil_value_num(out->model_score);
		p = app_model_calibrate(g->model, out->model_score);
	}
	ex->have[ex->model_slot] = true;
	*ret_exact = !g->missing;
	used = rules_prog_slots_used(r->prog, &nused);
	for (uint32_t i = 0; i < nused; i++)
		if (used[i] < ex->nfeat && !ex->have[used[i]]) {
			*ret_exact = false;
			if (used[i] < 128)
				ex->missing_counts[used[i]]++;
		}
	rv = rules_prog_eval(r->prog, g->tv, ex->f, ex->nfeat, &ex->res);
	if (rv != VIGIL_OK) {
		fprintf(stderr, "vigil-replay: %s: rules: %s\n", s->txn.txn_id, vigil_strerror(rv));
		return rv;
	}
	rules_result_model(r->prog, p, &ex->res);
	out->score = ex->res.score;
	out->decision = ex->res.decision;
	for (uint32_t i = 0; i < ex->res.nhits && out->nhits < RP_MAX_HITS; i++)
		out->hits[out->nhits++] = ex->res.hits[i];
	for (uint32_t i = 0; i < ex->res.nshadow && out->nhits + out->nshadow < RP_MAX_HITS; i++)
		out->hits[out->nhits + out->nshadow++] = ex->res.shadow[i];
	return VIGIL_OK;
}

static json_t *
rp_exact_side(const rp_outcome *o)
{
	return json_pack("{s:s, s:f}", "decision", vigil_decision_name(o->decision), "score",
	    o->score);
}

vigil_err
rp_run_exact(rp *r)
{
	rp_row row;
	rp_outcome prod, file;
	vigil_err rv;
	bool exact;

	while ((rv = rp_source_next(&r->src, &row)) == VIGIL_OK) {
		const store_scored *s = r->src.scored;

		rv = rp_exact_gen_load(r, s->features_gen);
		if (rv != VIGIL_OK)
			return rv;
		rp_exact_archived(r, s, &prod);
		if (r->ex->g.gone) {
			file = prod;
			exact = false;
		} else {
			rv = rp_exact_eval(r, s, &file, &exact);
			if (rv != VIGIL_OK)
				return rv;
		}
		if (!exact)
			r->inexact++;
		if (prod.decision != file.decision &&
		    row.txn.event_time_ms >= r->o.measure_from_ms &&
		    json_array_size(r->changes) < RP_EXACT_CHANGES_MAX)
			json_array_append_new(r->changes, json_pack("{s:s, s:o, s:o, s:b}", "txn_id",
			    row.txn.txn_id, "before", rp_exact_side(&prod), "after",
			    rp_exact_side(&file), "exact", exact));
		rv = rp_observe(r, &row, &prod, &file);
		if (rv != VIGIL_OK) {
			fprintf(stderr, "vigil-replay: metrics: %s\n", vigil_strerror(rv));
			return rv;
		}
		r->rows++;
		if ((r->rows & 0xffff) == 0)
			rp_progress(r, &row, false);
	}
	return rv == VIGIL_ENOTFOUND ? VIGIL_OK : rv;
}

json_t *
rp_exact_json(rp *r)
{
	json_t *o = json_object(), *mf = json_object();

	for (uint32_t i = 0; r->ex != NULL && i < r->ex->nfeat && i < 128; i++)
		if (r->ex->missing_counts[i] > 0)
			json_object_set_new(mf, store_schema_field(i)->name,
			    json_integer((json_int_t)r->ex->missing_counts[i]));
	json_object_set_new(o, "rows_inexact", json_integer((json_int_t)r->inexact));
	json_object_set_new(o, "missing_features", mf);
	json_object_set_new(o, "generations_missing", json_integer((json_int_t)r->gens_missing));
	json_object_set_new(o, "changes", json_incref(r->changes));
	json_object_set_new(o, "changes_truncated",
	    json_boolean(r->changed > json_array_size(r->changes)));
	return o;
}

void
rp_exact_print(rp *r, FILE *out)
{
	size_t i;
	json_t *c;

	fprintf(out, "exact         %" PRIu64 " rows evaluated on archived values; %" PRIu64
	    " inexact (a feature not archived, or a generation gone)\n", r->rows, r->inexact);
	for (uint32_t k = 0; r->ex != NULL && k < r->ex->nfeat && k < 128; k++)
		if (r->ex->missing_counts[k] > 0)
			fprintf(out, "  not archived: %s (%" PRIu64 " rows)\n",
			    store_schema_field(k)->name, r->ex->missing_counts[k]);
	json_array_foreach(r->changes, i, c) {
		if (i == 20) {
			fprintf(out, "  ... (%" PRIu64 " changes in all; --summary lists up to %d)\n",
			    r->changed, RP_EXACT_CHANGES_MAX);
			break;
		}
		fprintf(out, "  %-24s %-8s %6.2f -> %-8s %6.2f\n",
		    json_string_value(json_object_get(c, "txn_id")),
		    json_string_value(json_object_get(json_object_get(c, "before"), "decision")),
		    json_real_value(json_object_get(json_object_get(c, "before"), "score")),
		    json_string_value(json_object_get(json_object_get(c, "after"), "decision")),
		    json_real_value(json_object_get(json_object_get(c, "after"), "score")));
	}
}
