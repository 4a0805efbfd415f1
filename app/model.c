/* SPDX-License-Identifier: MIT */
/*
 * app/model.c - the served model joined to the store: the forest of a
 * generation's "model.json" blob (model/ decodes and evaluates it) with
 * each of its inputs bound to a feature-schema slot by name, once per
 * generation, so scoring gathers its vector with no string work.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"

struct app_model {
	model_forest *forest;
	uint32_t      nslots;
	uint32_t      slots[MODEL_MAX_FEATURES];
};

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

static vigil_err
model_from_blob(vigil_err rv, void *data, size_t len, const char *gen_name,
    app_model **ret_model, char *errbuf, size_t errlen)
{
	char why[512];

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
	rv = app_model_decode(data, len, ret_model, why, sizeof why);
	free(data);
	if (rv != VIGIL_OK)
		snprintf(errbuf, errlen, "%s: %s", gen_name, why);
	return rv;
}

vigil_err
app_model_from_db(store_db *db, app_model **ret_model, uint64_t *ret_generation, char *errbuf,
    size_t errlen)
{
	void *data = NULL;
	size_t len = 0;
	uint64_t gen = 0;
	char name[40];
	vigil_err rv;

	rv = store_db_blob(db, APP_MODEL_BLOB, &data, &len, &gen);
	if (ret_generation != NULL)
		*ret_generation = rv == VIGIL_ENOTFOUND ? store_db_generation(db) : gen;
	snprintf(name, sizeof name, "generation %llu", (unsigned long long)gen);
	return model_from_blob(rv, data, len, name, ret_model, errbuf, errlen);
}

vigil_err
app_model_from_gen(store_gen *gen, app_model **ret_model, char *errbuf, size_t errlen)
{
	store_gen_meta meta;
	void *data = NULL;
	size_t len = 0;
	char name[40];
	vigil_err rv;

	rv = store_gen_meta_get(gen, &meta);
	snprintf(name, sizeof name, "generation %llu",
	    rv == VIGIL_OK ? (unsigned long long)meta.generation : 0ULL);
	rv = store_gen_blob(gen, APP_MODEL_BLOB, &data, &len);
	return model_from_blob(rv, data, len, name, ret_model, errbuf, errlen);
}

void
app_model_free(app_model *m)
{
	if (m == NULL)
		return;
	model_forest_free(m->forest);
	free(m);
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
