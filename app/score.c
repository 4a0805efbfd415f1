/* SPDX-License-Identifier: MIT */
/*
 * app/score.c - the one scoring pipeline (app.h, app_score) that vigild's
 * nng path, its admin /v1/score, vigil-replay (offline and --nightly) and
 * vigil-rules explain all run: dedupe and features -> the model ->
 * the rules -> the decision -> the archived record -> commit. The callers
 * keep transport, threads, replies, reading and reporting; a step added
 * here appears in all of them. Rule files bound for scoring (app_rules:
 * archived features, model rules) are made here too, once per load.
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "mask.h"

/* ---------------------------------------------------------------------- */
/* Rule files bound for scoring. */

static vigil_err
rules_arch_add(app_rules *r, uint32_t slot, char *errbuf, size_t errlen)
{
	if (store_schema_field(slot) == NULL)
		return VIGIL_OK;
	for (uint32_t i = 0; i < r->narch; i++)
		if (r->arch[i] == slot)
			return VIGIL_OK;
	if (r->narch == STORE_MAX_FEATS) {
		snprintf(errbuf, errlen, "tuned thresholds read more than %d distinct features "
		    "(the archive record's limit)", STORE_MAX_FEATS);
		return VIGIL_ETOOBIG;
	}
	r->arch[r->narch++] = slot;
	return VIGIL_OK;
}

vigil_err
app_rules_new(rules_prog *prog, app_rules **ret_rules, char *errbuf, size_t errlen)
{
	app_rules *r = calloc(1, sizeof *r);
	uint32_t mslot;
	vigil_err rv = VIGIL_OK;

	if (r == NULL) {
		rules_prog_free(prog);
		snprintf(errbuf, errlen, "out of memory");
		return VIGIL_ENOMEM;
	}
	r->prog = prog;
	if (store_schema_find("model.score", &mslot) != VIGIL_OK)
		mslot = UINT32_MAX;
	/* The features vigil-rebuild tunes the thresholds from (feature and
	 * group), archived with every score by name. The score itself is
	 * archived anyway; beside it model.score, present or missing, tells
	 * the rebuild which scores the model gave (it tunes a band on those
	 * alone, not on the cold start's rule points). */
	for (uint32_t i = 0; i < rules_prog_nthresholds(prog) && rv == VIGIL_OK; i++) {
		rules_threshold_info ti;

		rules_prog_threshold(prog, i, &ti);
		if (ti.kind == RULES_TUNE_CONST)
			continue;
		if (ti.feature_slot != RULES_SLOT_SCORE)
			rv = rules_arch_add(r, ti.feature_slot, errbuf, errlen);
		else if (mslot != UINT32_MAX)
			rv = rules_arch_add(r, mslot, errbuf, errlen);
		if (rv == VIGIL_OK && ti.group_by != NULL)
			rv = rules_arch_add(r, ti.group_slot, errbuf, errlen);
	}
	if (rv != VIGIL_OK) {
		app_rules_free(r);
		return rv;
	}
	for (uint32_t i = 0; i < rules_prog_nrules(prog) && i < RULES_MAX_RULES; i++) {
		rules_read reads[64];
		uint32_t n = rules_prog_rule_reads(prog, i, reads, 64);

		for (uint32_t k = 0; k < n && k < 64; k++)
			if (!reads[k].threshold && reads[k].index == mslot)
				r->reads_model[i] = true;
		r->any_model |= r->reads_model[i];
	}
	*ret_rules = r;
	return VIGIL_OK;
}

void
app_rules_free(app_rules *r)
{
	if (r == NULL)
		return;
	rules_prog_free(r->prog);
	free(r);
}

/* ---------------------------------------------------------------------- */
/* Per-thread work. */

struct app_work {
	store_db     *db;
	store_ctx    *ctx;
	uint32_t      nfeat;
	uint32_t      model_slot; /* "model.score" */
	vigil_value  *features;
	rules_result  res, res2;
	store_scored  rec;
	float         xm[MODEL_MAX_FEATURES];      /* the model's inputs, its order */
	model_leaves  path;                        /* xm's leaves, for the reasons */
	float         xl[STORE_MODEL_MAX_INPUTS];  /* the archived layout */
};

app_work *
app_work_new(store_db *db)
{
	app_work *w = calloc(1, sizeof *w);

	if (w == NULL)
		return NULL;
	w->db = db;
	w->nfeat = store_schema_nfields();
	if (store_schema_find("model.score", &w->model_slot) != VIGIL_OK) {
		free(w);
		return NULL;
	}
	w->features = calloc(w->nfeat, sizeof *w->features);
	w->ctx = store_ctx_new(db);
	if (w->features == NULL || w->ctx == NULL) {
		app_work_free(w);
		return NULL;
	}
	return w;
}

void
app_work_free(app_work *w)
{
	if (w == NULL)
		return;
	store_ctx_free(w->ctx);
	free(w->features);
	free(w);
}

vigil_err
app_work_set_features(app_work *w, const store_feature_mask *m)
{
	return store_ctx_set_features(w->ctx, m);
}

/* ---------------------------------------------------------------------- */
/* The pipeline. */

/* Bounded string copy (truncates like snprintf "%s", without its cost). */
static void
score_strcpy(char *dst, size_t cap, const char *src)
{
	size_t n = strnlen(src, cap - 1);

	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* A model input: numbers and booleans as float32; missing, strings and
 * anything not finite (XGBoost cannot train on infinities, so the rebuild
 * stores them as missing: serving must see the same) as NaN. */
static float
value_float(const vigil_value *v)
{
	if (!v->present || v->str != NULL)
		return NAN;
	/* out of float's range (infinities included; the cast would be undefined) */
	if (!(fabs(v->num) <= FLT_MAX))
		return NAN;
	return (float)v->num;
}

void
app_model_vector(const vigil_value *features, float *ret_x, uint32_t n)
{
	const uint32_t *slots;
	uint32_t nl = store_schema_model_inputs(&slots);

	for (uint32_t i = 0; i < n && i < nl; i++)
		ret_x[i] = value_float(&features[slots[i]]);
}

/* model.score, and the top reasons when asked. */
static void
score_model(app_work *w, const app_model *m, app_outcome *out)
{
	const model_forest *f = app_model_forest(m);
	uint32_t n = model_forest_nfeatures(f);
	double p;

	for (uint32_t i = 0; i < n; i++)
		w->xm[i] = value_float(&w->features[app_model_slot(m, i)]);
	p = model_forest_predict_path(f, w->xm, &w->path);
	out->model_score = p;
	w->features[w->model_slot] = vigil_value_num(p);
}

/*
 * The reasons: the features with the largest positive contributions that
 * have a value. A missing input can push the score up too (its split's
 * default branch), but a reason shows "feature=value", and a missing one
 * has none to show: it was shown as 0 (vel.device.distinct_cards_24h=0
 * for a transaction with no device), which is false. So the top
 * MODEL_TOP_MAX are asked for and the first APP_REASONS_MAX present kept.
 */
static void
score_reasons(app_work *w, const app_model *m, app_outcome *out)
{
	model_reason top[MODEL_TOP_MAX];
	uint32_t n = model_forest_top_path(app_model_forest(m), &w->path, MODEL_TOP_MAX, top);
	uint32_t k = 0;

	for (uint32_t i = 0; i < n && k < APP_REASONS_MAX; i++) {
		uint32_t slot = app_model_slot(m, top[i].feature);

		if (isnan(w->xm[top[i].feature]))
			continue;
		out->reasons[k].feature = store_schema_field(slot)->name;
		out->reasons[k].slot = slot;
		out->reasons[k].value = w->features[slot];
		out->reasons[k].contrib = top[i].contrib;
		k++;
	}
	out->nreasons = k;
}

/* The model's part of the outcome, kept with the txn_id (not archived) so a
 * retry's reply has it too. */
static void
score_record_model(store_scored *rec, const app_outcome *out)
{
	store_model_outcome *mo = &rec->model;

	memset(mo, 0, sizeof *mo);
	if (isnan(out->model_score))
		return;
	mo->present = true;
	mo->score = out->model_score;
	for (uint32_t i = 0; i < out->nreasons && i < STORE_MAX_REASONS; i++) {
		mo->reasons[i].slot = out->reasons[i].slot;
		mo->reasons[i].contrib = out->reasons[i].contrib;
		mo->reasons[i].value = out->reasons[i].value.num;
	}
	mo->nreasons = out->nreasons < STORE_MAX_REASONS ? out->nreasons : STORE_MAX_REASONS;
}

/* The archived record: outcome, hits (active first, capped), the values of
 * the features the tuned thresholds read, the model's input vector. */
static void
score_record_fill(app_work *w, const app_scorer *sc, const vigil_txn *txn, uint64_t gen,
    int64_t scored_at_ms, unsigned flags)
{
	const rules_prog *prog = sc->rules->prog;
	const rules_result *res = &w->res;
	store_scored *rec = &w->rec;
	rules_rule_info ri;
	size_t len = 0;

	rec->txn = *txn;
	rec->score = res->score;
	rec->points = res->points;
	rec->decision = res->decision;
	rec->nhits = 0;
	for (uint32_t i = 0; i < res->nhits + res->nshadow && rec->nhits < STORE_MAX_HITS; i++) {
		bool shadow = i >= res->nhits;
		store_hit *h = &rec->hits[rec->nhits++];

		rules_prog_rule(prog, shadow ? res->shadow[i - res->nhits] : res->hits[i], &ri);
		score_strcpy(h->rule, sizeof h->rule, ri.name);
		h->points = ri.points;
		h->shadow = shadow;
	}
	score_strcpy(rec->rules_version, sizeof rec->rules_version, rules_prog_hash(prog));
	rec->features_gen = gen;
	rec->scored_at_ms = scored_at_ms;
	rec->nfeats = 0;
	rec->model_layout = 0;
	rec->model_in_len = 0;
	if (flags & APP_NO_ARCHIVE)
		return;
	for (uint32_t i = 0; i < sc->rules->narch; i++) {
		store_featval *f = &rec->feats[rec->nfeats++];
		uint32_t slot = sc->rules->arch[i];

		f->name[0] = '\0'; /* archived as its id: readers get the name back */
		f->name_id = store_schema_name_id(slot);
		f->val = w->features[slot];
	}
	{
		const uint32_t *slots;
		uint32_t n = store_schema_model_inputs(&slots);

		app_model_vector(w->features, w->xl, n);
		if (store_model_vec_encode(w->xl, n, rec->model_in, sizeof rec->model_in, &len) ==
		    VIGIL_OK) {
			rec->model_in_len = (uint32_t)len;
			rec->model_layout = store_schema_model_layout();
		}
	}
}

vigil_err
app_score(store_db *db, app_work *w, const app_scorer *sc, const vigil_txn *txn,
    unsigned flags, int64_t scored_at_ms, app_outcome *out)
{
	const rules_prog *prog = sc->rules->prog;
	bool dry = (flags & APP_DRY_RUN) != 0, locked = false;
	double p;
	vigil_err rv;

	out->step = APP_STEP_FEATURES;
	out->res = NULL;
	out->res2 = NULL;
	out->model_score = NAN;
	out->model_cal = NAN;
	out->nreasons = 0;
	out->features = w->features;
	out->late = false;
	out->past_dedupe_horizon = false;
	out->diag.msg[0] = '\0';
	if (sc->pin_gen) {
		store_ctx_pin_gen(w->ctx, sc->gen);
		out->generation = store_db_gen_number(sc->gen);
	} else {
		out->generation = store_db_generation(db);
	}

	if (dry) {
		rv = store_features_lookup(db, w->ctx, txn, w->features, w->nfeat);
	} else {
		rv = store_score_begin(db, w->ctx, txn, w->features, w->nfeat, &out->prior);
		locked = rv == VIGIL_OK;
	}
	if (rv == VIGIL_OK && sc->amend != NULL)
		rv = sc->amend(sc->amend_arg, w->features, w->nfeat);
	if (rv != VIGIL_OK)
		goto out;

	if (sc->model != NULL) {
		out->step = APP_STEP_MODEL;
		score_model(w, sc->model, out);
	}

	out->step = APP_STEP_RULES;
	/* The score: the model's calibrated probability when there is one
	 * (model.score given by amend counts as calibrated), the points alone
	 * before the first model (rules_result_model, DESIGN.md contract 7). */
	p = sc->model != NULL ? app_model_calibrate(sc->model, out->model_score)
	    : w->features[w->model_slot].present && w->features[w->model_slot].str == NULL
	    ? w->features[w->model_slot].num : NAN;
	out->model_cal = p;
	rv = rules_prog_eval(prog, sc->tv, w->features, w->nfeat, &w->res);
	if (rv != VIGIL_OK)
		goto out;
	rules_result_model(prog, p, &w->res);
	out->res = &w->res;
	if (sc->prog2 != NULL) {
		rv = rules_prog_eval(sc->prog2, sc->tv2, w->features, w->nfeat, &w->res2);
		if (rv != VIGIL_OK)
			goto out;
		rules_result_model(sc->prog2, p, &w->res2);
		out->res2 = &w->res2;
	}
	if (sc->model != NULL) {
		/* why the model scored high: for every alert, and for a hit of a
		 * rule that read model.score */
		bool want = (flags & APP_ALL_REASONS) != 0 ||
		    w->res.decision > VIGIL_DECISION_ALLOW;

		for (uint32_t i = 0; i < w->res.nhits && !want; i++)
			want = sc->rules->reads_model[w->res.hits[i]];
		if (want)
			score_reasons(w, sc->model, out);
	}
	if (dry)
		goto out;

	out->step = APP_STEP_ARCHIVE;
	score_record_fill(w, sc, txn, out->generation, scored_at_ms, flags);
	score_record_model(&w->rec, out);
	locked = false; /* commit unlocks, whatever it returns */
	rv = store_score_commit(db, w->ctx, &w->rec, &out->diag);
out:
	if (locked && rv != VIGIL_OK)
		store_score_abort(db, w->ctx);
	if (rv != VIGIL_OK) {
		out->res = NULL;
		out->res2 = NULL;
	} else {
		store_commit_info ci;

		store_ctx_commit_info(w->ctx, &ci);
		out->late = ci.late;
		out->past_dedupe_horizon = ci.past_dedupe_horizon;
	}
	out->rv = rv;
	return rv;
}
