/* SPDX-License-Identifier: MIT */
/*
 * batch/tune.c - the tuned thresholds of a rebuild: the plans read from the
 * rule file, the sketches per threshold and group that pass 2 fills, and
 * the values tuned from them (or carried over without a rule file) written
 * into the new generation.
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

static const char *
group_keyof(const void *n)
{
	return ((const batch_group *)n)->key;
}
/* ---- Threshold plans and their sketches ---- */

void
batch_tstate_fini(batch_tstate *t)
{
	batch_group *g, *tmp;

	batch_sketch_free(t->global);
	HASH_ITER(hh, t->groups, g, tmp) {
		HASH_DEL(t->groups, g);
		batch_sketch_free(g->sk);
		free(g);
	}
	batch_index_fini(&t->group_ix);
	memset(t, 0, sizeof *t);
}

vigil_err
batch_tstate_group(batch_tstate *t, const char *key, size_t len, const char *tname,
    batch_sketch **ret_sk, store_diag *reterr)
{
	uint64_t h = batch_index_hash(key, len);
	batch_group *g;
	vigil_err rv;

	g = batch_index_find(&t->group_ix, h, key, len, group_keyof);
	if (g == NULL) {
		if (t->ngroups >= BATCH_MAX_GROUPS) {
			store_diag_set(reterr, "threshold %s: more than %u groups", tname,
			    BATCH_MAX_GROUPS);
			return VIGIL_ETOOBIG;
		}
		g = calloc(1, sizeof *g + len + 1);
		if (g == NULL)
			return VIGIL_ENOMEM;
		g->sk = batch_sketch_new();
		if (g->sk == NULL) {
			free(g);
			return VIGIL_ENOMEM;
		}
		memcpy(g->key, key, len);
		g->key[len] = '\0';
		HASH_ADD_KEYPTR(hh, t->groups, g->key, len, g);
		if (!VIGIL_HASH_ADDED(g)) {
			batch_sketch_free(g->sk);
			free(g);
			return VIGIL_ENOMEM;
		}
		rv = batch_index_put(&t->group_ix, h, g);
		if (rv != VIGIL_OK) {
			HASH_DEL(t->groups, g);
			batch_sketch_free(g->sk);
			free(g);
			return rv;
		}
		t->ngroups++;
	}
	*ret_sk = g->sk;
	return VIGIL_OK;
}

static const char *
kind_name(rules_tune_kind k)
{
	switch (k) {
	case RULES_TUNE_PERCENTILE: return "percentile";
	case RULES_TUNE_ALERT_RATE: return "alert_rate";
	case RULES_TUNE_PRECISION:  return "precision";
	default:                    return "const";
	}
}

/* Builds the plans for prog's tuned thresholds (CONST ones are skipped). */
vigil_err
batch_plans_from_prog(batch_run *r, store_diag *reterr)
{
	uint32_t n = rules_prog_nthresholds(r->prog), ntxn;

	if (store_schema_find("event_time", &ntxn) != VIGIL_OK) {
		store_diag_set(reterr, "feature schema has no event_time field");
		return VIGIL_EINTERNAL;
	}
	r->plans = calloc(n ? n : 1, sizeof *r->plans);
	if (r->plans == NULL)
		return VIGIL_ENOMEM;
	for (uint32_t i = 0; i < n; i++) {
		rules_threshold_info ti;
		batch_plan *p = &r->plans[r->nplans];
		const store_field *f;

		rules_prog_threshold(r->prog, i, &ti);
		if (ti.kind == RULES_TUNE_CONST)
			continue;
		if (r->nplans >= BATCH_MAX_THRESHOLDS) {
			store_diag_set(reterr, "%s: more than %u tuned thresholds",
			    r->opts.rules_path, BATCH_MAX_THRESHOLDS);
			return VIGIL_ETOOBIG;
		}
		if (strlen(ti.name) >= sizeof p->name) {
			store_diag_set(reterr, "%s: threshold name '%.40s...' over %zu bytes",
			    r->opts.rules_path, ti.name, sizeof p->name - 1);
			return VIGIL_ETOOBIG;
		}
		snprintf(p->name, sizeof p->name, "%s", ti.name);
		rules_threshold_def(&ti, p->def, sizeof p->def);
		p->kind = ti.kind;
		p->param = ti.param;
		p->fallback = ti.fallback;
		p->min_samples = ti.min_samples ? ti.min_samples : 1;
		p->model_only = ti.feature_slot == RULES_SLOT_SCORE;
		p->mature_only = ti.kind == RULES_TUNE_PRECISION;
		/* Names come from store's static schema by slot: the rules schema
		 * the prog was compiled against is gone by now (app_rules_load);
		 * the score is each record's own. */
		f = ti.feature_slot == RULES_SLOT_SCORE ? NULL : store_schema_field(ti.feature_slot);
		if (ti.feature_slot == RULES_SLOT_SCORE) {
			p->feature = "score";
			p->feature_len = 5;
			p->feat_score = true;
		} else if (f == NULL || f->type == VIGIL_T_STR) {
			store_diag_set(reterr, "%s: threshold %s: feature slot %u is not a number",
			    r->opts.rules_path, ti.name, ti.feature_slot);
			return VIGIL_ETYPE;
		} else {
			p->feature = f->name;
			p->feature_len = (uint32_t)strlen(f->name);
			p->feat_slot = ti.feature_slot;
			p->feat_txn = ti.feature_slot <= ntxn;
			if (p->feat_txn && ti.feature_slot + 1 > r->ntxn_used)
				r->ntxn_used = ti.feature_slot + 1;
		}
		if (ti.group_by != NULL) {
			f = store_schema_field(ti.group_slot);
			if (f == NULL) {
				store_diag_set(reterr, "%s: threshold %s: group slot %u is unknown",
				    r->opts.rules_path, ti.name, ti.group_slot);
				return VIGIL_EINVAL;
			}
			p->grouped = true;
			p->group_by = f->name;
			p->group_by_len = (uint32_t)strlen(f->name);
			p->group_slot = ti.group_slot;
			p->group_txn = ti.group_slot <= ntxn;
			if (p->group_txn && ti.group_slot + 1 > r->ntxn_used)
				r->ntxn_used = ti.group_slot + 1;
			p->group_type = f->type;
		}
		r->nplans++;
	}
	r->ntxn = ntxn + 1;
	return VIGIL_OK;
}

static int
group_cmp(batch_group *a, batch_group *b)
{
	return strcmp(a->key, b->key);
}

static double
prev_value(batch_run *r, const char *name, const char *group)
{
	store_threshold_val v;

	if (r->prev != NULL && store_gen_threshold(r->prev, name, group, &v) == VIGIL_OK)
		return v.value;
	return NAN;
}

/* Tunes one value from a sketch; false when the data cannot give one, with
 * why (may be NULL) saying so: too few samples, no fraud labels, a precision
 * target no value reaches. */
static bool
tune(const batch_plan *p, const batch_sketch *sk, double *ret_v, uint64_t *ret_samples,
    char *why, size_t whylen)
{
	uint64_t n = batch_sketch_count(sk);
	vigil_err rv;

	*ret_samples = n;
	if (n < p->min_samples) {
		if (why != NULL)
			snprintf(why, whylen, "too few samples: %llu of min_samples %llu",
			    (unsigned long long)n, (unsigned long long)p->min_samples);
		return false;
	}
	switch (p->kind) {
	case RULES_TUNE_PERCENTILE:
		rv = batch_sketch_percentile(sk, p->param, ret_v);
		break;
	case RULES_TUNE_ALERT_RATE:
		rv = batch_sketch_alert_rate(sk, p->param, ret_v);
		break;
	case RULES_TUNE_PRECISION:
		rv = batch_sketch_precision(sk, p->param, p->min_samples, ret_v);
		if (rv == VIGIL_ENOTFOUND && why != NULL) {
			double best = NAN;
			uint64_t frauds = 0;

			if (batch_sketch_precision_best(sk, p->min_samples, &best, &frauds) != VIGIL_OK)
				snprintf(why, whylen, "precision %g not reached", p->param);
			else if (frauds == 0)
				snprintf(why, whylen, "no fraud labels among the %llu samples",
				    (unsigned long long)n);
			else
				snprintf(why, whylen, "precision %g not reached with min_samples %llu "
				    "alerts or more: at most %.4f (%llu frauds in %llu samples)",
				    p->param, (unsigned long long)p->min_samples, best,
				    (unsigned long long)frauds, (unsigned long long)n);
			return false;
		}
		break;
	default:
		rv = VIGIL_EINVAL;
		break;
	}
	if (rv != VIGIL_OK && why != NULL)
		snprintf(why, whylen, "%s", n == 0 ? "no samples" : vigil_strerror(rv));
	return rv == VIGIL_OK;
}

/* Appends to why the rows a tuning left out, if any: "; left out: 812
 * scored before a model, 3150 not mature". */
static void
why_left_out(const batch_tstate *t, char *why, size_t whylen)
{
	size_t n = strlen(why);

	if (t->left_no_model == 0 && t->left_immature == 0)
		return;
	snprintf(why + n, whylen - n, "; left out:");
	n = strlen(why);
	if (t->left_no_model > 0) {
		snprintf(why + n, whylen - n, " %llu scored before a model%s",
		    (unsigned long long)t->left_no_model, t->left_immature > 0 ? "," : "");
		n = strlen(why);
	}
	if (t->left_immature > 0)
		snprintf(why + n, whylen - n, " %llu not mature",
		    (unsigned long long)t->left_immature);
}

/*
 * What each tuned value means (rules_threshold_def), as the blob
 * APP_THRESHOLD_DEFS_BLOB: {"name": "definition", ...}; vigild binds a value
 * only to a threshold of the same definition. Written when every plan has
 * one (a merge without the rule file has none: its values bind by name).
 */
static vigil_err
put_defs(batch_run *r, store_diag *reterr)
{
	json_t *o = json_object();
	char *text = NULL;
	vigil_err rv = VIGIL_ENOMEM;

	for (uint32_t i = 0; o != NULL && i < r->nplans; i++) {
		if (r->plans[i].def[0] == '\0') {
			json_decref(o);
			return VIGIL_OK;
		}
		if (json_object_set_new(o, r->plans[i].name, json_string(r->plans[i].def)) != 0)
			goto out;
	}
	if (o == NULL || r->nplans == 0)
		goto done;
	text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	if (text == NULL)
		goto out;
	rv = store_genw_put_blob(r->gw, APP_THRESHOLD_DEFS_BLOB, text, strlen(text));
	if (rv == VIGIL_OK)
		goto done;
out:
	store_diag_set(reterr, "%s/features: generation %llu: writing the thresholds' "
	    "definitions: %s", r->opts.datadir, (unsigned long long)store_genw_generation(r->gw),
	    vigil_strerror(rv));
	json_decref(o);
	free(text);
	return rv;
done:
	json_decref(o);
	free(text);
	return VIGIL_OK;
}

vigil_err
batch_put_thresholds(batch_run *r, batch_tstate *ts, store_diag *reterr)
{
	vigil_err rv;

	for (uint32_t i = 0; i < r->nplans; i++) {
		const batch_plan *p = &r->plans[i];
		batch_thresh_summary *ts_sum = &r->sum.thresholds[r->sum.nthresholds++];
		store_threshold_val v;
		batch_group *g;

		memset(ts_sum, 0, sizeof *ts_sum);
		snprintf(ts_sum->name, sizeof ts_sum->name, "%s", p->name);
		ts_sum->kind = kind_name(p->kind);
		v.previous = prev_value(r, p->name, "");
		v.tuned = tune(p, ts[i].global, &v.value, &v.samples, ts_sum->why,
		    sizeof ts_sum->why);
		if (!v.tuned) {
			v.value = p->fallback;
			why_left_out(&ts[i], ts_sum->why, sizeof ts_sum->why);
		}
		rv = store_genw_put_threshold(r->gw, p->name, "", &v);
		if (rv != VIGIL_OK)
			goto fail;
		ts_sum->old_value = v.previous;
		ts_sum->new_value = v.value;
		ts_sum->samples = v.samples;
		ts_sum->tuned = v.tuned;
		HASH_SRT(hh, ts[i].groups, group_cmp);
		for (g = ts[i].groups; g != NULL; g = g->hh.next) {
			store_threshold_val gv;

			if (!tune(p, g->sk, &gv.value, &gv.samples, NULL, 0)) {
				ts_sum->groups_fallback++;
				continue;
			}
			gv.tuned = true;
			gv.previous = prev_value(r, p->name, g->key);
			rv = store_genw_put_threshold(r->gw, p->name, g->key, &gv);
			if (rv != VIGIL_OK)
				goto fail;
			ts_sum->groups++;
		}
		continue;
fail:
		store_diag_set(reterr, "%s/features: generation %llu: writing threshold %s: %s",
		    r->opts.datadir, (unsigned long long)store_genw_generation(r->gw), p->name,
		    vigil_strerror(rv));
		return rv;
	}
	return put_defs(r, reterr);
}

typedef struct carry_ctx {
	batch_run *r;
	vigil_err  rv;
} carry_ctx;

static void
carry_one(void *arg, const char *name, const char *group, const store_threshold_val *v)
{
	carry_ctx *c = arg;
	store_threshold_val nv = *v;

	if (c->rv != VIGIL_OK)
		return;
	nv.previous = v->value;
	c->rv = store_genw_put_threshold(c->r->gw, name, group, &nv);
}

/* Without a rule file the previous generation's thresholds carry over. */
vigil_err
batch_carry_thresholds(batch_run *r, store_diag *reterr)
{
	carry_ctx c = { r, VIGIL_OK };
	vigil_err rv;

	if (r->prev == NULL)
		return VIGIL_OK;
	rv = store_gen_thresholds_each(r->prev, carry_one, &c);
	if (rv == VIGIL_OK)
		rv = c.rv;
	if (rv == VIGIL_OK) { /* what they mean goes with them */
		void *defs = NULL;
		size_t len = 0;

		rv = store_gen_blob(r->prev, APP_THRESHOLD_DEFS_BLOB, &defs, &len);
		if (rv == VIGIL_OK)
			rv = store_genw_put_blob(r->gw, APP_THRESHOLD_DEFS_BLOB, defs, len);
		else if (rv == VIGIL_ENOTFOUND)
			rv = VIGIL_OK;
		free(defs);
	}
	if (rv != VIGIL_OK)
		store_diag_set(reterr, "%s/features: generation %llu: carrying thresholds over: %s",
		    r->opts.datadir, (unsigned long long)store_genw_generation(r->gw),
		    vigil_strerror(rv));
	return rv;
}

