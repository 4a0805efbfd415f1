/* SPDX-License-Identifier: MIT */
/*
 * app/app.c - the join of rules/ and store/ that every program on top
 * shares: the rules schema from store's feature schema, tuned threshold
 * values bound from a generation, and feature values read from JSON.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"

vigil_err
app_rules_schema(rules_schema **ret_schema)
{
	rules_schema *schema = rules_schema_new();
	vigil_err rv = VIGIL_OK;

	if (schema == NULL)
		return VIGIL_ENOMEM;
	for (uint32_t i = 0; i < store_schema_nfields(); i++) {
		const store_field *f = store_schema_field(i);
		rv = rules_schema_add(schema, f->name, f->type, i);
		if (rv != VIGIL_OK)
			goto out;
	}
	*ret_schema = schema;
	schema = NULL;
out:
	rules_schema_free(schema);
	return rv;
}

vigil_err
app_rules_load(const char *path, rules_prog **ret_prog, rules_diags *reterr_diags)
{
	rules_schema *schema = NULL;
	vigil_err rv;

	rv = app_rules_schema(&schema);
	if (rv != VIGIL_OK) {
		memset(reterr_diags, 0, sizeof *reterr_diags);
		snprintf(reterr_diags->file, sizeof reterr_diags->file, "%s", path);
		reterr_diags->count = 1;
		snprintf(reterr_diags->items[0].msg, sizeof reterr_diags->items[0].msg,
		    "cannot build the feature schema: %s", vigil_strerror(rv));
		return rv;
	}
	rv = rules_load_file(path, schema, NULL, ret_prog, reterr_diags);
	rules_schema_free(schema);
	return rv;
}

struct bind_ctx {
	const rules_prog *prog;
	rules_tvals      *tv;
	json_t           *defs; /* APP_THRESHOLD_DEFS_BLOB, or NULL (bound by name) */
	vigil_err         rv;
};

/* One stored (name, group, value): find the threshold by name, convert the
 * stored group text to the threshold's group type, set it. Values stored for
 * thresholds the rule file no longer declares are ignored. */
static void
bind_one(void *arg, const char *name, const char *group, const store_threshold_val *v)
{
	struct bind_ctx *c = arg;
	uint32_t n = rules_prog_nthresholds(c->prog);

	if (c->rv != VIGIL_OK || !v->tuned)
		return;
	for (uint32_t i = 0; i < n; i++) {
		rules_threshold_info info;
		vigil_value gv;
		vigil_err rv;

		rules_prog_threshold(c->prog, i, &info);
		if (strcmp(info.name, name) != 0 || info.kind == RULES_TUNE_CONST)
			continue;
		/* tuned for another definition (another feature, percentile,
		 * kind or group): its fallback until the next rebuild */
		if (c->defs != NULL) {
			const char *d = json_string_value(json_object_get(c->defs, name));
			char def[320];

			rules_threshold_def(&info, def, sizeof def);
			if (d != NULL && strcmp(d, def) != 0)
				return;
		}
		if (group == NULL || group[0] == '\0') {
			rv = rules_tvals_set(c->tv, i, NULL, v->value);
		} else if (info.group_by == NULL) {
			return; /* a per-group value for a now-global threshold: stale */
		} else if (info.group_type == VIGIL_T_NUM) {
			char *end;
			errno = 0;
			gv = vigil_value_num(strtod(group, &end));
			if (errno != 0 || *end != '\0')
				return; /* not a number: written for another group type */
			rv = rules_tvals_set(c->tv, i, &gv, v->value);
		} else if (info.group_type == VIGIL_T_BOOL) {
			gv = vigil_value_bool(strcmp(group, "true") == 0 || strcmp(group, "1") == 0);
			rv = rules_tvals_set(c->tv, i, &gv, v->value);
		} else {
			gv = vigil_value_str(group, (uint32_t)strlen(group));
			rv = rules_tvals_set(c->tv, i, &gv, v->value);
		}
		if (rv != VIGIL_OK)
			c->rv = rv;
		return;
	}
}

static vigil_err
tvals_build(const rules_prog *prog, store_db *db, store_gen *gen, rules_tvals **ret_tv)
{
	struct bind_ctx c = { .prog = prog, .rv = VIGIL_OK };
	vigil_err rv = VIGIL_OK;

	c.tv = rules_tvals_new(prog);
	if (c.tv == NULL)
		return VIGIL_ENOMEM;
	{
		void *blob = NULL;
		size_t len = 0;
		vigil_err brv = VIGIL_ENOTFOUND;

		if (db != NULL)
			brv = store_db_blob(db, APP_THRESHOLD_DEFS_BLOB, &blob, &len, NULL);
		else if (gen != NULL)
			brv = store_gen_blob(gen, APP_THRESHOLD_DEFS_BLOB, &blob, &len);
		/* none (a generation from before, or a merge without the rule
		 * file): bound by name; one that is not an object: nothing known */
		if (brv == VIGIL_OK) {
			c.defs = json_loadb(blob, len, 0, NULL);
			if (!json_is_object(c.defs)) {
				json_decref(c.defs);
				c.defs = json_object();
			}
		}
		free(blob);
	}
	if (db != NULL)
		rv = store_db_thresholds_each(db, bind_one, &c);
	else if (gen != NULL)
		rv = store_gen_thresholds_each(gen, bind_one, &c);
	json_decref(c.defs);
	if (rv == VIGIL_ENOTFOUND) /* no generation yet: fallbacks */
		rv = VIGIL_OK;
	if (rv == VIGIL_OK)
		rv = c.rv;
	if (rv != VIGIL_OK) {
		rules_tvals_free(c.tv);
		return rv;
	}
	*ret_tv = c.tv;
	return VIGIL_OK;
}

vigil_err
app_tvals_from_db(const rules_prog *prog, store_db *db, rules_tvals **ret_tv)
{
	return tvals_build(prog, db, NULL, ret_tv);
}

vigil_err
app_tvals_from_gen(const rules_prog *prog, store_gen *gen, rules_tvals **ret_tv)
{
	return tvals_build(prog, NULL, gen, ret_tv);
}

/* "Did you mean" for a JSON feature name: rules' one rule (rules_suggest),
 * within 3 edits. Out of memory, the message only loses its suggestion. */
static const char *
closest_feature(const char *name)
{
	uint32_t n = store_schema_nfields();
	const char **cands = malloc((n + 1) * sizeof *cands);
	const char *best;

	if (cands == NULL)
		return NULL;
	for (uint32_t i = 0; i < n; i++)
		cands[i] = store_schema_field(i)->name;
	best = rules_suggest(name, strlen(name), cands, n, 3);
	free(cands);
	return best;
}

vigil_err
app_features_from_json(const json_t *obj, vigil_value *features, uint32_t nfeatures,
    char *errbuf, size_t errlen)
{
	const char *key;
	json_t *v;

	if (!json_is_object(obj)) {
		snprintf(errbuf, errlen, "features: must be a JSON object of name -> value");
		return VIGIL_EINVAL;
	}
	json_object_foreach((json_t *)obj, key, v) {
		uint32_t slot;
		const store_field *f;

		if (store_schema_find(key, &slot) != VIGIL_OK || slot >= nfeatures) {
			const char *s = closest_feature(key);
			if (s != NULL)
				snprintf(errbuf, errlen, "%s: unknown feature; did you mean '%s'?", key, s);
			else
				snprintf(errbuf, errlen, "%s: unknown feature", key);
			return VIGIL_ENOTFOUND;
		}
		f = store_schema_field(slot);
		if (json_is_null(v)) {
			features[slot] = vigil_value_missing();
		} else if (f->type == VIGIL_T_NUM && json_is_number(v)) {
			features[slot] = vigil_value_num(json_number_value(v));
		} else if (f->type == VIGIL_T_BOOL && json_is_boolean(v)) {
			features[slot] = vigil_value_bool(json_is_true(v));
		} else if (f->type == VIGIL_T_STR && json_is_string(v)) {
			features[slot] = vigil_value_str(json_string_value(v),
			    (uint32_t)json_string_length(v));
		} else {
			snprintf(errbuf, errlen, "%s: must be a %s or null", key,
			    vigil_type_name(f->type));
			return VIGIL_ETYPE;
		}
	}
	return VIGIL_OK;
}
