/* SPDX-License-Identifier: MIT */
/*
 * server/reload.c - the rules vigild scores with, and how they change
 * without a restart. A srv_rules is one compiled rule file; a srv_ruleset
 * pairs it with the thresholds tuned for one feature generation. Scoring
 * takes a reference to the current ruleset under a read lock held for a
 * pointer copy, so a reload (new file) or a retune (new generation) is compiled
 * entirely off the scoring path and becomes visible in one swap; requests
 * in flight finish with the set they started with, and the last reference
 * frees it. A file that does not compile changes nothing but the error
 * report (log, /metrics, /v1/rules, health). Reloads and retunes are run by
 * the main thread only, so they never race each other.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "srv.h"

static void
rules_unref(srv_rules *r)
{
	if (r == NULL || atomic_fetch_sub(&r->refs, 1) != 1)
		return;
	rules_prog_free(r->prog);
	free(r->hits);
	free(r);
}

void
srv_ruleset_release(srv_ruleset *rs)
{
	if (rs == NULL || atomic_fetch_sub(&rs->refs, 1) != 1)
		return;
	rules_unref(rs->rules);
	rules_tvals_free(rs->tv);
	free(rs);
}

srv_ruleset *
srv_ruleset_acquire(srv_server *s)
{
	srv_ruleset *rs;

	pthread_rwlock_rdlock(&s->rs_lock);
	rs = s->rs;
	if (rs != NULL)
		atomic_fetch_add(&rs->refs, 1);
	pthread_rwlock_unlock(&s->rs_lock);
	return rs;
}

static void
ruleset_swap(srv_server *s, srv_ruleset *rs)
{
	srv_ruleset *old;

	pthread_rwlock_wrlock(&s->rs_lock);
	old = s->rs;
	s->rs = rs;
	pthread_rwlock_unlock(&s->rs_lock);
	srv_ruleset_release(old);
}

/* Adds a feature slot to the archived list once; false if the list is full. */
static bool
rules_arch_add(srv_rules *r, uint32_t slot)
{
	const store_field *f = store_schema_field(slot);

	if (f == NULL)
		return true;
	for (uint32_t i = 0; i < r->narch; i++)
		if (r->arch[i].slot == slot)
			return true;
	if (r->narch == STORE_MAX_FEATS)
		return false;
	r->arch[r->narch].name = f->name;
	r->arch[r->narch].slot = slot;
	r->narch++;
	return true;
}

/*
 * The features vigil-rebuild needs to tune this file's thresholds (the tuned
 * feature and its group of every non-constant threshold) go into every
 * archived score, by name.
 */
static vigil_err
rules_arch_build(srv_rules *r, char *errbuf, size_t errlen)
{
	uint32_t n = rules_prog_nthresholds(r->prog);

	for (uint32_t i = 0; i < n; i++) {
		rules_threshold_info ti;

		rules_prog_threshold(r->prog, i, &ti);
		if (ti.kind == RULES_TUNE_CONST)
			continue;
		/* By slot, not by name: the names may point into the compile
		 * schema, which app_rules_load has freed by now. */
		if (!rules_arch_add(r, ti.feature_slot) ||
		    (ti.group_by != NULL && !rules_arch_add(r, ti.group_slot))) {
			snprintf(errbuf, errlen, "tuned thresholds read more than %d distinct "
			    "features (the archive record's limit)", STORE_MAX_FEATS);
			return VIGIL_ETOOBIG;
		}
	}
	return VIGIL_OK;
}

/* Hit counters survive a reload for rules that keep their name. */
static void
rules_hits_inherit(srv_rules *r, const srv_rules *old)
{
	if (old == NULL)
		return;
	for (uint32_t i = 0; i < old->nrules; i++) {
		rules_rule_info oi;
		uint32_t j;

		rules_prog_rule(old->prog, i, &oi);
		if (rules_prog_rule_find(r->prog, oi.name, &j) == VIGIL_OK)
			atomic_store(&r->hits[j], atomic_load(&old->hits[i]));
	}
}

static void
rules_set_error(srv_server *s, const char *msg)
{
	pthread_mutex_lock(&s->info_lock);
	snprintf(s->last_error, sizeof s->last_error, "%s", msg);
	pthread_mutex_unlock(&s->info_lock);
}

void
srv_rules_last_error(srv_server *s, char *buf, size_t len)
{
	pthread_mutex_lock(&s->info_lock);
	snprintf(buf, len, "%s", s->last_error);
	pthread_mutex_unlock(&s->info_lock);
}

vigil_err
srv_rules_reload(srv_server *s, const char *why)
{
	srv_rules *r = NULL;
	srv_ruleset *rs = NULL, *cur = NULL;
	rules_diags diags;
	char err[SRV_ERR_MAX];
	vigil_err rv;

	memset(&diags, 0, sizeof diags);
	cur = srv_ruleset_acquire(s);
	r = calloc(1, sizeof *r);
	if (r == NULL) {
		rv = VIGIL_ENOMEM;
		snprintf(err, sizeof err, "%s: out of memory", s->cfg.rules_path);
		goto out;
	}
	atomic_init(&r->refs, 1);
	snprintf(r->path, sizeof r->path, "%s", s->cfg.rules_path);
	rv = app_rules_load(s->cfg.rules_path, &r->prog, &diags);
	if (rv != VIGIL_OK) {
		if (diags.count > 0)
			snprintf(err, sizeof err, "%s:%u:%u: %s", diags.file[0] ? diags.file :
			    s->cfg.rules_path, diags.items[0].line, diags.items[0].col,
			    diags.items[0].msg);
		else
			snprintf(err, sizeof err, "%s: %s", s->cfg.rules_path, vigil_strerror(rv));
		/* Every further error on its own line: operators fix them all at once. */
		for (uint32_t i = 1; i < diags.count; i++)
			srv_log("rules: %s:%u:%u: %s", diags.file[0] ? diags.file :
			    s->cfg.rules_path, diags.items[i].line, diags.items[i].col,
			    diags.items[i].msg);
		goto out;
	}
	r->nrules = rules_prog_nrules(r->prog);
	r->hits = calloc(r->nrules > 0 ? r->nrules : 1, sizeof *r->hits);
	if (r->hits == NULL) {
		rv = VIGIL_ENOMEM;
		snprintf(err, sizeof err, "%s: out of memory", s->cfg.rules_path);
		goto out;
	}
	rv = rules_arch_build(r, err, sizeof err);
	if (rv != VIGIL_OK)
		goto out;
	r->loaded_at_ms = vigil_now_ms();

	rs = calloc(1, sizeof *rs);
	if (rs == NULL) {
		rv = VIGIL_ENOMEM;
		snprintf(err, sizeof err, "%s: out of memory", s->cfg.rules_path);
		goto out;
	}
	atomic_init(&rs->refs, 1);
	rs->generation = s->db != NULL ? store_db_generation(s->db) : 0;
	rv = app_tvals_from_db(r->prog, s->db, &rs->tv);
	if (rv != VIGIL_OK) {
		snprintf(err, sizeof err, "%s: thresholds of generation %llu: %s",
		    s->cfg.rules_path, (unsigned long long)rs->generation, vigil_strerror(rv));
		goto out;
	}
	rules_hits_inherit(r, cur != NULL ? cur->rules : NULL);
	rs->rules = r;
	r = NULL;
	srv_log("rules: loaded %s (%s): version \"%s\", hash %s, %u rules, "
	    "generation %llu%s%s", rs->rules->path, why, rules_prog_version(rs->rules->prog),
	    rules_prog_hash(rs->rules->prog), rs->rules->nrules,
	    (unsigned long long)rs->generation,
	    cur != NULL ? ", replacing " : "", cur != NULL ? rules_prog_hash(cur->rules->prog) : "");
	ruleset_swap(s, rs);
	rs = NULL;
	atomic_fetch_add(&s->loads, 1);
	rules_set_error(s, "");
out:
	if (rv != VIGIL_OK) {
		atomic_fetch_add(&s->load_failures, 1);
		rules_set_error(s, err);
		srv_log("rules: rejected %s (%s): %s%s", s->cfg.rules_path, why, err,
		    cur != NULL ? "; the previous rules keep serving" : "");
	}
	srv_ruleset_release(cur);
	if (rs != NULL) {
		rules_tvals_free(rs->tv);
		free(rs);
	}
	rules_unref(r);
	return rv;
}

vigil_err
srv_rules_retune(srv_server *s)
{
	srv_ruleset *cur, *rs = NULL;
	vigil_err rv = VIGIL_OK;

	cur = srv_ruleset_acquire(s);
	if (cur == NULL)
		goto out;
	rs = calloc(1, sizeof *rs);
	if (rs == NULL) {
		rv = VIGIL_ENOMEM;
		goto out;
	}
	atomic_init(&rs->refs, 1);
	rs->generation = store_db_generation(s->db);
	rv = app_tvals_from_db(cur->rules->prog, s->db, &rs->tv);
	if (rv != VIGIL_OK)
		goto out;
	atomic_fetch_add(&cur->rules->refs, 1);
	rs->rules = cur->rules;
	ruleset_swap(s, rs);
	rs = NULL;
out:
	if (rv != VIGIL_OK)
		srv_log("features: thresholds for generation %llu not rebuilt: %s; "
		    "the previous thresholds keep serving",
		    (unsigned long long)store_db_generation(s->db), vigil_strerror(rv));
	free(rs);
	srv_ruleset_release(cur);
	return rv;
}

vigil_err
srv_rules_check(const char *path, FILE *out)
{
	rules_prog *prog = NULL;
	rules_diags diags;
	vigil_err rv;

	memset(&diags, 0, sizeof diags);
	rv = app_rules_load(path, &prog, &diags);
	if (rv != VIGIL_OK) {
		if (diags.count > 0)
			rules_diags_print(&diags, NULL, 0, out);
		else
			fprintf(out, "%s: %s\n", path, vigil_strerror(rv));
		return rv;
	}
	fprintf(stdout, "vigild: rules %s: version \"%s\", hash %s, %u rules\n", path,
	    rules_prog_version(prog), rules_prog_hash(prog), rules_prog_nrules(prog));
	rules_prog_free(prog);
	return VIGIL_OK;
}
