/* SPDX-License-Identifier: MIT */
/*
 * batch/nightmodel.c - the model step of a rebuild: the nightly training
 * options, the workers' training rows merged and trained (train.c), or the
 * current generation's model carried over (--train-every, or a night whose
 * training makes no model), and the "model.meta" blob beside it.
 */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <xxhash.h>

#include "app.h"
#include "int.h"
#include "rebuild.h"

void
batch_train_opts_nightly(const batch_opts *opts, batch_train_opts *ret)
{
	batch_train_opts_default(ret);
	/* The nightly defaults: a night's training stays a few seconds on two
	 * cores (docs/model.md, "Training": 100k rows, eta 0.2, measured
	 * against 1M rows / eta 0.1 / 300 rounds). */
	ret->max_rows = 100000;
	ret->eta = 0.2;
	/* A leaf of a few frauds (one card's episode) gets a weight of
	 * G / (H + lambda) with H tiny at a 1% fraud rate: lambda 10 keeps it
	 * from memorising the card (docs/DETECTION.md: Sparkov AP). */
	ret->reg_lambda = 10;
	/* Every night the same number of rounds (docs/model.md, "Rounds"):
	 * early stopping on a validation quarter of a few dozen to a few
	 * hundred frauds chose 20 to 199, and the model's confidence followed
	 * (the slope its scoring days needed fell as the rounds rose), so the
	 * scores of different nights did not rank alike. min_rounds =
	 * max_rounds keeps them all, so there is no early stopping; the
	 * validation days still measure the model and fit its calibration. */
	ret->max_rounds = BATCH_NIGHTLY_ROUNDS;
	ret->min_rounds = BATCH_NIGHTLY_ROUNDS;
	ret->early_stop = 0;
	ret->threads = opts->threads > 0 ? opts->threads : 1;
	if (opts->model_min_frauds > 0)
		ret->min_frauds = opts->model_min_frauds;
	if (opts->model_max_rows > 0)
		ret->max_rows = opts->model_max_rows;
}

/*
 * Keeps the current generation's model and meta in r (carry_json,
 * carry_meta) when the carry-over would accept it: both blobs read, its
 * meta says when it was trained (as_of_ms, frauds), not after this as-of,
 * for this build's input layout, and (max_age_ms > 0) less than max_age_ms
 * before this as-of. A model that is not kept is not an error: false.
 */
static bool
model_carry_load(batch_run *r, int64_t max_age_ms)
{
	void *json = NULL, *meta = NULL;
	size_t json_len = 0, meta_len = 0;
	json_t *m = NULL;
	json_int_t as_of;
	const char *layout;
	char want[24];
	bool kept = false;

	if (r->prev == NULL)
		return false;
	if (store_gen_blob(r->prev, APP_MODEL_META_BLOB, &meta, &meta_len) != VIGIL_OK ||
	    store_gen_blob(r->prev, APP_MODEL_BLOB, &json, &json_len) != VIGIL_OK)
		goto out;
	m = json_loadb(meta, meta_len, 0, NULL);
	if (!json_is_integer(json_object_get(m, "as_of_ms")) ||
	    !json_is_integer(json_object_get(m, "frauds")))
		goto out;
	as_of = json_integer_value(json_object_get(m, "as_of_ms"));
	layout = json_string_value(json_object_get(m, "layout"));
	snprintf(want, sizeof want, "%016llx", (unsigned long long)r->layout);
	if (layout == NULL || strcmp(layout, want) != 0 || as_of > r->w.as_of ||
	    (max_age_ms > 0 && r->w.as_of - as_of >= max_age_ms))
		goto out;
	r->carry_json = json;
	r->carry_json_len = json_len;
	r->carry_meta = m;
	r->carry_meta_raw = meta;
	r->carry_meta_len = meta_len;
	json = meta = NULL;
	m = NULL;
	kept = true;
out:
	json_decref(m);
	free(json);
	free(meta);
	return kept;
}

/*
 * train_every_ms: keeps the current model when it is young enough to carry
 * over (model_carry_load); batch_run_train then decides (model_carry_put).
 * A model not kept is trained again, as without the option.
 */
void
batch_model_carry_decide(batch_run *r)
{
	if (r->opts.train_every_ms <= 0 || r->opts.model_off || !r->train_on)
		return;
	if (model_carry_load(r, r->opts.train_every_ms))
		r->frauds_only = !r->full_rows;
}

/* "model.meta": how the generation's model was made (docs/model.md). */
static char *
train_meta_json(const batch_run *r, const batch_model_report *rep)
{
	const uint32_t *slots;
	uint32_t n = store_schema_model_inputs(&slots);
	json_t *o = json_object(), *names = json_array();
	char layout[24], *txt = NULL;

	if (o == NULL || names == NULL)
		goto out;
	for (uint32_t i = 0; i < n; i++)
		json_array_append_new(names, json_string(store_schema_field(slots[i])->name));
	snprintf(layout, sizeof layout, "%016llx", (unsigned long long)r->layout);
	json_object_set_new(o, "format", json_integer(1));
	json_object_set_new(o, "layout", json_string(layout));
	json_object_set_new(o, "features", names);
	names = NULL;
	json_object_set_new(o, "as_of_ms", json_integer(r->w.as_of));
	json_object_set_new(o, "train_from_ms", json_integer(r->train_from));
	json_object_set_new(o, "train_to_ms", json_integer(r->train_to));
	json_object_set_new(o, "label_maturity_ms", json_integer(r->opts.label_maturity_ms));
	json_object_set_new(o, "labelled_only", json_boolean(r->opts.labelled_only));
	json_object_set_new(o, "rows", json_integer((json_int_t)rep->rows));
	json_object_set_new(o, "frauds", json_integer((json_int_t)rep->frauds));
	json_object_set_new(o, "train_rows", json_integer((json_int_t)rep->train_rows));
	json_object_set_new(o, "valid_rows", json_integer((json_int_t)rep->valid_rows));
	json_object_set_new(o, "valid_frauds", json_integer((json_int_t)rep->valid_frauds));
	json_object_set_new(o, "valid_from_ms", json_integer(rep->valid_from_ms));
	json_object_set_new(o, "rounds", json_integer(rep->rounds));
	json_object_set_new(o, "best_round", json_integer(rep->best_round));
	json_object_set_new(o, "valid_auc", json_real(rep->valid_auc));
	json_object_set_new(o, "valid_ap", json_real(rep->valid_ap));
	json_object_set_new(o, "train_auc", json_real(rep->train_auc));
	json_object_set_new(o, "threads", json_integer(r->topts.threads));
	/* p_cal = 1 / (1 + exp(-(a * ln(p / (1 - p)) + b))) (docs/model.md). */
	if (rep->calibrated) {
		json_object_set_new(o, "calibration", json_pack("{s:s, s:f, s:f}", "method", "platt",
		    "a", rep->calib_a, "b", rep->calib_b));
	} else {
		json_object_set_new(o, "calibration", json_pack("{s:s}", "method", "none"));
		json_object_set_new(o, "calibration_why_not", json_string(rep->calib_why_not));
	}
	txt = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
out:
	json_decref(names);
	json_decref(o);
	return txt;
}

/* Merges the workers' training sets into r->train and adds their counts to
 * the summary; the workers keep neither, so a second call adds nothing. */
vigil_err
batch_train_collect(batch_run *r, store_diag *reterr)
{
	vigil_err rv;

	for (uint32_t i = 0; i < r->nworkers; i++) {
		batch_worker *wk = &r->workers[i];

		r->sum.model.rows_seen += wk->train_seen;
		r->sum.model.rows_other_layout += wk->train_other_layout;
		r->sum.model.rows_no_vector += wk->train_no_vector;
		wk->train_seen = wk->train_other_layout = wk->train_no_vector = 0;
		if (wk->train == NULL)
			continue;
		if (r->train == NULL) {
			r->train = wk->train; /* the first worker's set becomes the whole */
			wk->train = NULL;
			continue;
		}
		rv = batch_trainset_merge(r->train, wk->train, reterr);
		if (rv != VIGIL_OK)
			return rv;
		batch_trainset_free(wk->train);
		wk->train = NULL;
	}
	return VIGIL_OK;
}

/*
 * The model model_carry_load kept is carried over unless the training
 * window now holds BATCH_RETRAIN_GROWTH times the frauds it was trained on
 * or more (a young deployment's models are retrained as their labels
 * grow); any_count (a night that could not train: batch_run_train)
 * carries it whatever the count. *ret_carried: whether it was; its blobs
 * then go into the new generation as they are, and the summary's figures
 * are its meta's.
 */
#define BATCH_RETRAIN_GROWTH 1.25

static vigil_err
model_carry_put(batch_run *r, bool any_count, bool *ret_carried, store_diag *reterr)
{
	json_t *m = r->carry_meta;
	batch_trainset_stats st;
	store_gen_meta gm;
	uint64_t frauds = (uint64_t)json_integer_value(json_object_get(m, "frauds"));
	vigil_err rv;

	*ret_carried = false;
	memset(&st, 0, sizeof st);
	if (r->train != NULL)
		batch_trainset_stats_get(r->train, &st);
	if ((!any_count && (double)st.frauds >= BATCH_RETRAIN_GROWTH * (double)frauds) ||
	    store_gen_meta_get(r->prev, &gm) != VIGIL_OK)
		return VIGIL_OK;
	rv = store_genw_put_blob(r->gw, APP_MODEL_BLOB, r->carry_json, r->carry_json_len);
	if (rv == VIGIL_OK)
		rv = store_genw_put_blob(r->gw, APP_MODEL_META_BLOB, r->carry_meta_raw,
		    r->carry_meta_len);
	if (rv != VIGIL_OK) {
		store_diag_set(reterr, "%s/features: generation %llu: writing the model: %s",
		    r->opts.datadir, (unsigned long long)store_genw_generation(r->gw),
		    vigil_strerror(rv));
		return rv;
	}
	*ret_carried = true;
	r->sum.model.trained = true;
	r->sum.model.carried = true;
	r->sum.model.carried_from = gm.generation;
	r->sum.model.trained_as_of_ms = json_integer_value(json_object_get(m, "as_of_ms"));
	r->sum.model.train_from_ms = json_integer_value(json_object_get(m, "train_from_ms"));
	r->sum.model.train_to_ms = json_integer_value(json_object_get(m, "train_to_ms"));
	r->sum.model.rows = (uint64_t)json_integer_value(json_object_get(m, "rows"));
	r->sum.model.frauds = frauds;
	r->sum.model.valid_rows = (uint64_t)json_integer_value(json_object_get(m, "valid_rows"));
	r->sum.model.valid_frauds =
	    (uint64_t)json_integer_value(json_object_get(m, "valid_frauds"));
	r->sum.model.rounds = (uint32_t)json_integer_value(json_object_get(m, "rounds"));
	r->sum.model.best_round = (uint32_t)json_integer_value(json_object_get(m, "best_round"));
	r->sum.model.valid_auc = json_number_value(json_object_get(m, "valid_auc"));
	r->sum.model.valid_ap = json_number_value(json_object_get(m, "valid_ap"));
	r->sum.model.train_auc = json_number_value(json_object_get(m, "train_auc"));
	r->sum.model.features = store_schema_model_inputs(&(const uint32_t *){ NULL });
	r->sum.model.json_bytes = r->carry_json_len;
	return VIGIL_OK;
}

vigil_err
batch_run_train(batch_run *r, store_diag *reterr)
{
	batch_model_report rep;
	char *json = NULL, *meta = NULL;
	size_t len = 0;
	vigil_err rv = VIGIL_OK;

	rv = batch_train_collect(r, reterr);
	if (rv != VIGIL_OK)
		return rv;
	if (r->carry_json != NULL) {
		bool carried;

		rv = model_carry_put(r, false, &carried, reterr);
		if (rv != VIGIL_OK || carried)
			return rv;
		if (r->frauds_only) {
			/* the legitimate rows were not kept: read again */
			r->rescan = true;
			return VIGIL_OK;
		}
	}
	if (r->train == NULL)
		return VIGIL_OK; /* turned off, or no mature day: why_not says so */
	memset(&rep, 0, sizeof rep);
	rv = batch_train_run(r->train, &r->topts, &json, &len, &rep, reterr);
	if (rv != VIGIL_OK) {
		char why[sizeof reterr->msg];

		snprintf(why, sizeof why, "%s", reterr->msg);
		store_diag_set(reterr, "nightly model: %s", why);
		return rv;
	}
	r->sum.model.rows = rep.rows;
	r->sum.model.frauds = rep.frauds;
	r->sum.model.valid_rows = rep.valid_rows;
	r->sum.model.valid_frauds = rep.valid_frauds;
	r->sum.model.rounds = rep.rounds;
	r->sum.model.best_round = rep.best_round;
	r->sum.model.valid_auc = rep.valid_auc;
	r->sum.model.valid_ap = rep.valid_ap;
	r->sum.model.train_auc = rep.train_auc;
	r->sum.model.seconds = rep.seconds;
	r->sum.model.features = store_schema_model_inputs(&(const uint32_t *){ NULL });
	if (!rep.trained) {
		bool carried;

		/* Missing or odd input (docs/model.md, "No model is made")
		 * leaves the current model in force rather than rules alone;
		 * why_not still says why this night did not train. */
		snprintf(r->sum.model.why_not, sizeof r->sum.model.why_not, "%s", rep.why_not);
		if (r->carry_json == NULL && !model_carry_load(r, 0))
			return VIGIL_OK;
		return model_carry_put(r, true, &carried, reterr);
	}
	meta = train_meta_json(r, &rep);
	if (meta == NULL) {
		rv = VIGIL_ENOMEM;
		goto out;
	}
	rv = store_genw_put_blob(r->gw, APP_MODEL_BLOB, json, len);
	if (rv == VIGIL_OK)
		rv = store_genw_put_blob(r->gw, APP_MODEL_META_BLOB, meta, strlen(meta));
	if (rv != VIGIL_OK) {
		store_diag_set(reterr, "%s/features: generation %llu: writing the model: %s",
		    r->opts.datadir, (unsigned long long)store_genw_generation(r->gw),
		    vigil_strerror(rv));
		goto out;
	}
	r->sum.model.trained = true;
	r->sum.model.why_not[0] = '\0';
	r->sum.model.json_bytes = len;
	r->sum.model.trained_as_of_ms = r->w.as_of;
out:
	free(json);
	free(meta);
	return rv;
}

