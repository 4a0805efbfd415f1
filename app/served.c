/* SPDX-License-Identifier: MIT */
/*
 * app/served.c - the served model joined to the store: the forest of a
 * generation's "model.json" blob (model/ decodes and evaluates it) with
 * each of its inputs bound to a feature-schema slot by name, once per
 * generation, so scoring gathers its vector with no string work; and the
 * calibration the nightly fitted (the "calibration" of "model.meta"),
 * which makes the model's probability the 0-100 score (docs/model.md).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "app.h"

struct app_model {
	model_forest *forest;
	uint32_t      nslots;
	uint32_t      slots[MODEL_MAX_FEATURES];
	bool          platt;   /* false: identity */
	double        cal_a, cal_b;
	int64_t       as_of_ms; /* model.meta's: the as-of it was trained at; 0 unknown */
};

/* A member of the calibration that must be a finite number. */
static vigil_err
model_cal_num(const json_t *cal, const char *name, double *ret, char *errbuf, size_t errlen)
{
	const json_t *v = json_object_get(cal, name);

	if (!json_is_number(v) || !isfinite(json_number_value(v))) {
		snprintf(errbuf, errlen, "%s: calibration.%s: %s", APP_MODEL_META_BLOB, name,
		    v == NULL ? "missing (a finite number is required)" : "must be a finite number");
		return VIGIL_EINVAL;
	}
	*ret = json_number_value(v);
	return VIGIL_OK;
}

vigil_err
app_model_calibration(app_model *m, const void *meta, size_t len, char *errbuf, size_t errlen)
{
	json_error_t  jerr;
	json_t       *doc = NULL;
	const json_t *cal, *method, *as_of;
	double        a = 1, b = 0;
	vigil_err     rv = VIGIL_OK;

	m->platt = false;
	m->as_of_ms = 0;
	if (meta == NULL)
		return VIGIL_OK;
	doc = json_loadb(meta, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(doc)) {
		snprintf(errbuf, errlen, "%s: offset %d: %s", APP_MODEL_META_BLOB, doc == NULL ?
		    jerr.position : 0, doc == NULL ? jerr.text : "not a JSON object");
		rv = VIGIL_EINVAL;
		goto out;
	}
	/* informational (vigild's model age): a meta without it is not refused */
	as_of = json_object_get(doc, "as_of_ms");
	if (json_is_integer(as_of) && json_integer_value(as_of) > 0)
		m->as_of_ms = json_integer_value(as_of);
	cal = json_object_get(doc, "calibration");
	if (cal == NULL || json_is_null(cal))
		goto out; /* none fitted: the model's probability as it is */
	if (!json_is_object(cal)) {
		snprintf(errbuf, errlen, "%s: calibration: must be an object", APP_MODEL_META_BLOB);
		rv = VIGIL_EINVAL;
		goto out;
	}
	method = json_object_get(cal, "method");
	if (!json_is_string(method) || strcmp(json_string_value(method), "platt") != 0) {
		snprintf(errbuf, errlen, "%s: calibration.method: must be \"platt\"",
		    APP_MODEL_META_BLOB);
		rv = VIGIL_EINVAL;
		goto out;
	}
	rv = model_cal_num(cal, "a", &a, errbuf, errlen);
	if (rv == VIGIL_OK)
		rv = model_cal_num(cal, "b", &b, errbuf, errlen);
	if (rv == VIGIL_OK && !(a > 0)) {
		/* a <= 0 would reverse or flatten the model's ranking */
		snprintf(errbuf, errlen, "%s: calibration.a: must be above 0 (got %.17g)",
		    APP_MODEL_META_BLOB, a);
		rv = VIGIL_EINVAL;
	}
	if (rv != VIGIL_OK)
		goto out;
	m->platt = true;
	m->cal_a = a;
	m->cal_b = b;
out:
	json_decref(doc);
	return rv;
}

double
app_model_calibrate(const app_model *m, double p)
{
	double z;

	if (!m->platt || isnan(p))
		return p;
	/* Platt on the log-odds; strictly increasing in p for a > 0. The ends
	 * stay ends (logit is infinite there). */
	if (p <= 0)
		return 0;
	if (p >= 1)
		return 1;
	z = m->cal_a * log(p / (1 - p)) + m->cal_b;
	return 1 / (1 + exp(-z));
}

vigil_err
app_model_decode(const void *json, size_t len, app_model **ret_model, char *errbuf,
    size_t errlen)
{
	app_model *m = calloc(1, sizeof *m);
	model_diag diag;
	char why[sizeof diag.file + sizeof diag.msg + 32];
	vigil_err rv;

	if (m == NULL)
		return VIGIL_ENOMEM;
	vigil_errinfo_clear(&diag);
	rv = model_forest_decode(json, len, &m->forest, &diag);
	if (rv != VIGIL_OK) {
		snprintf(errbuf, errlen, "%s: %s", APP_MODEL_BLOB, diag.msg[0] ?
		    vigil_errinfo_format(&diag, why, sizeof why) : vigil_strerror(rv));
		goto out;
	}
	m->nslots = model_forest_nfeatures(m->forest);
	for (uint32_t i = 0; i < m->nslots; i++) {
		const char *name = model_forest_feature(m->forest, i);
		const store_field *f;
		uint32_t slot;

		if (store_schema_find(name, &slot) != VIGIL_OK ||
		    !(f = store_schema_field(slot))->model_input) {
			snprintf(errbuf, errlen, "%s: learner.feature_names[%u]: \"%s\" is not a model "
			    "input of this build (docs/features.md)", APP_MODEL_BLOB, i, name);
			rv = VIGIL_EINVAL;
			goto out;
		}
		m->slots[i] = slot;
	}
	*ret_model = m;
	m = NULL;
out:
	app_model_free(m);
	return rv;
}

/* The model of gen (named gen_name in errors), with its calibration. */
static vigil_err
model_from_gen(store_gen *gen, const char *gen_name, app_model **ret_model, char *errbuf,
    size_t errlen)
{
	void *data = NULL, *meta = NULL;
	size_t len = 0, mlen = 0;
	app_model *m = NULL;
	char why[512];
	vigil_err rv;

	rv = store_gen_blob(gen, APP_MODEL_BLOB, &data, &len);
	if (rv == VIGIL_ENOTFOUND) {
		*ret_model = NULL; /* a generation without a model: rules alone */
		return VIGIL_OK;
	}
	if (rv != VIGIL_OK) {
		snprintf(errbuf, errlen, "%s: reading %s: %s", gen_name, APP_MODEL_BLOB,
		    vigil_strerror(rv));
		return rv;
	}
	why[0] = '\0';
	rv = app_model_decode(data, len, &m, why, sizeof why);
	if (rv != VIGIL_OK)
		goto out;
	rv = store_gen_blob(gen, APP_MODEL_META_BLOB, &meta, &mlen);
	if (rv == VIGIL_ENOTFOUND) {
		rv = VIGIL_OK; /* no meta: no calibration */
	} else if (rv != VIGIL_OK) {
		snprintf(why, sizeof why, "reading %s: %s", APP_MODEL_META_BLOB, vigil_strerror(rv));
		goto out;
	} else {
		rv = app_model_calibration(m, meta, mlen, why, sizeof why);
		if (rv != VIGIL_OK)
			goto out;
	}
	*ret_model = m;
	m = NULL;
out:
	if (rv != VIGIL_OK)
		snprintf(errbuf, errlen, "%s: %s", gen_name, why);
	app_model_free(m);
	free(data);
	free(meta);
	return rv;
}

vigil_err
app_model_from_db(store_db *db, app_model **ret_model, uint64_t *ret_generation, char *errbuf,
    size_t errlen)
{
	store_db_gen *g = store_db_gen_acquire(db);
	uint64_t gen = g != NULL ? store_db_gen_number(g) : 0;
	char name[40];
	vigil_err rv;

	if (ret_generation != NULL)
		*ret_generation = gen;
	if (g == NULL) {
		*ret_model = NULL; /* no generation yet */
		return VIGIL_OK;
	}
	/* the model and its meta from one generation, whatever CURRENT does meanwhile */
	snprintf(name, sizeof name, "generation %llu", (unsigned long long)gen);
	rv = model_from_gen(store_db_gen_get(g), name, ret_model, errbuf, errlen);
	store_db_gen_release(g);
	return rv;
}

vigil_err
app_model_from_gen(store_gen *gen, app_model **ret_model, char *errbuf, size_t errlen)
{
	store_gen_meta meta;
	char name[40];
	vigil_err rv;

	rv = store_gen_meta_get(gen, &meta);
	snprintf(name, sizeof name, "generation %llu",
	    rv == VIGIL_OK ? (unsigned long long)meta.generation : 0ULL);
	return model_from_gen(gen, name, ret_model, errbuf, errlen);
}

void
app_model_free(app_model *m)
{
	if (m == NULL)
		return;
	model_forest_free(m->forest);
	free(m);
}

int64_t
app_model_as_of_ms(const app_model *m)
{
	return m->as_of_ms;
}

const model_forest *
app_model_forest(const app_model *m)
{
	return m->forest;
}

uint32_t
app_model_slot(const app_model *m, uint32_t i)
{
	return m->slots[i];
}
