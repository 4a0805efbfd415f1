/* SPDX-License-Identifier: MIT */
/*
 * server/reload.c - the rules and the model vigild scores with, and how they
 * change without a restart. A srv_rules is one compiled rule file; a
 * srv_ruleset pairs it with the thresholds tuned for one feature generation
 * and that generation's model (a model the generation brings that does not
 * decode is refused: the previous one keeps serving, said in the log, in
 * /healthz (model_refused, model_error) and /metrics). Scoring
 * takes a reference to the current ruleset under a read lock held for a
 * pointer copy, so a reload (new file) or a retune (new generation) is compiled
 * entirely off the scoring path and becomes visible in one swap. A rule set
 * holds a reference on the feature generation its thresholds and model were
 * built from, and scoring reads features from that generation (pinned,
 * store_ctx_pin_gen), not from the db's current one: at a generation switch
 * the store installs the new generation first (store_db_refresh), but no
 * request sees it until the rule set built from it is swapped in, so
 * features, thresholds and model change together; requests
 * in flight finish with the set they started with, and the last reference
 * frees it. A file that does not compile changes nothing but the error
 * report (log, /metrics, /v1/rules, health). Reloads and retunes are run by
 * the main thread only, so they never race each other.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "hashtab.h"
#include "srv.h"

/*
 * A rule's hit counter, by name, in the server's book: every rule set
 * counts on the same counters, so one never goes down across a reload
 * (a copy at reload lost what requests still holding the old rules
 * counted after it, and a Prometheus rate() read the dip as a reset).
 * Entries are added by the main thread's reloads only and freed at exit.
 */
typedef struct srv_hit {
	UT_hash_handle   hh;
	_Atomic uint64_t n;
	char             name[];
} srv_hit;

static void
rules_unref(srv_rules *r)
{
	if (r == NULL || atomic_fetch_sub(&r->refs, 1) != 1)
		return;
	app_rules_free(r->ar);
	free(r->hits);
	free(r);
}

static void
model_unref(srv_model *m)
{
	if (m == NULL || atomic_fetch_sub(&m->refs, 1) != 1)
		return;
	app_model_free(m->m);
	free(m);
}

static srv_model *
model_ref(srv_model *m)
{
	if (m != NULL)
		atomic_fetch_add(&m->refs, 1);
	return m;
}

void
srv_ruleset_release(srv_ruleset *rs)
{
	if (rs == NULL || atomic_fetch_sub(&rs->refs, 1) != 1)
		return;
	rules_unref(rs->rules);
	rules_tvals_free(rs->tv);
	model_unref(rs->model);
	store_db_gen_release(rs->gen);
	free(rs);
}

/*
 * The model for generation g (the one a rule set is being built from):
 * cur's when it came from that generation already; a new one from the
 * generation's blob (NULL when it has none); cur's again, with a log line,
 * when the new one is refused.
 */
static srv_model *
model_for_generation(srv_server *s, srv_model *cur, store_db_gen *g)
{
	uint64_t gen = store_db_gen_number(g);
	app_model *am = NULL;
	srv_model *m;
	char err[SRV_ERR_MAX];
	vigil_err rv;

	if (cur != NULL && cur->generation == gen) {
		/* back on the generation whose model serves (a rollback): a
		 * refusal of a later generation's model no longer applies */
		atomic_store(&s->model_refused, 0);
		return model_ref(cur);
	}
	if (g == NULL || gen == 0) {
		atomic_store(&s->model_refused, 0);
		atomic_store(&s->model_generation, 0);
		atomic_store(&s->model_as_of_ms, 0);
		return NULL;
	}
	err[0] = '\0';
	rv = app_model_from_gen(store_db_gen_get(g), &am, err, sizeof err);
	if (rv != VIGIL_OK) {
		atomic_fetch_add(&s->model_failures, 1);
		pthread_mutex_lock(&s->info_lock);
		snprintf(s->model_error, sizeof s->model_error, "%s (%s)", err, vigil_strerror(rv));
		pthread_mutex_unlock(&s->info_lock);
		atomic_store(&s->model_refused, gen);
		srv_log("model: %s: refused (%s)%s", err, vigil_strerror(rv),
		    cur != NULL ? "; the previous model keeps serving" : "; rules alone decide");
		return model_ref(cur);
	}
	atomic_store(&s->model_refused, 0);
	if (am == NULL) {
		if (cur != NULL)
			srv_log("model: generation %llu has no model; rules alone decide",
			    (unsigned long long)gen);
		atomic_store(&s->model_generation, 0);
		atomic_store(&s->model_as_of_ms, 0);
		return NULL;
	}
	m = calloc(1, sizeof *m);
	if (m == NULL) {
		app_model_free(am);
		srv_log("model: generation %llu: out of memory%s", (unsigned long long)gen,
		    cur != NULL ? "; the previous model keeps serving" : "");
		return model_ref(cur);
	}
	atomic_init(&m->refs, 1);
	m->m = am;
	m->generation = gen;
	atomic_store(&s->model_generation, gen);
	atomic_store(&s->model_as_of_ms, app_model_as_of_ms(am));
	srv_log("model: generation %llu: %u trees over %u features", (unsigned long long)gen,
	    model_forest_ntrees(app_model_forest(am)), model_forest_nfeatures(app_model_forest(am)));
	return m;
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

/* Points r's counters into the book, adding the names it lacks. */
static vigil_err
rules_hits_bind(srv_server *s, srv_rules *r)
{
	r->hits = calloc(r->nrules > 0 ? r->nrules : 1, sizeof *r->hits);
	if (r->hits == NULL)
		return VIGIL_ENOMEM;
	for (uint32_t i = 0; i < r->nrules; i++) {
		rules_rule_info ri;
		srv_hit *e;
		size_t len;

		rules_prog_rule(r->prog, i, &ri);
		len = strlen(ri.name);
		HASH_FIND(hh, s->hit_book, ri.name, len, e);
		if (e == NULL) {
			if ((e = calloc(1, sizeof *e + len + 1)) == NULL)
				return VIGIL_ENOMEM;
			memcpy(e->name, ri.name, len + 1);
			HASH_ADD_KEYPTR(hh, s->hit_book, e->name, len, e);
			if (!VIGIL_HASH_ADDED(e)) {
				free(e);
				return VIGIL_ENOMEM;
			}
		}
		r->hits[i] = &e->n;
	}
	return VIGIL_OK;
}

void
srv_rules_hits_free(srv_server *s)
{
	srv_hit *e, *tmp;

	HASH_ITER(hh, s->hit_book, e, tmp) {
		HASH_DEL(s->hit_book, e);
		free(e);
	}
}

static void
rules_set_error(srv_server *s, const char *msg)
{
	pthread_mutex_lock(&s->info_lock);
	snprintf(s->last_error, sizeof s->last_error, "%s", msg);
	pthread_mutex_unlock(&s->info_lock);
}

uint64_t
srv_model_refused(srv_server *s, char *buf, size_t len)
{
	uint64_t g;

	pthread_mutex_lock(&s->info_lock);
	g = atomic_load(&s->model_refused);
	snprintf(buf, len, "%s", g != 0 ? s->model_error : "");
	pthread_mutex_unlock(&s->info_lock);
	return g;
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
	rules_prog *prog = NULL;
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
	rv = app_rules_load(s->cfg.rules_path, &prog, &diags);
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
	rv = app_rules_new(prog, &r->ar, err, sizeof err); /* takes prog */
	prog = NULL;
	if (rv != VIGIL_OK)
		goto out;
	r->prog = r->ar->prog;
	r->nrules = rules_prog_nrules(r->prog);
	/* No rules where some serve is an empty or cut-short write (a tool that
	 * truncates, then writes slowly), not a decision to allow everything: a
	 * file of none starts a vigild, it does not replace rules. */
	if (r->nrules == 0 && cur != NULL && cur->rules->nrules > 0) {
		rv = VIGIL_EINVAL;
		snprintf(err, sizeof err, "%s: no rules, where %u serve (empty or cut short?); a "
		    "file of none is taken at start only", s->cfg.rules_path, cur->rules->nrules);
		goto out;
	}
	if (rules_hits_bind(s, r) != VIGIL_OK) {
		rv = VIGIL_ENOMEM;
		snprintf(err, sizeof err, "%s: out of memory", s->cfg.rules_path);
		goto out;
	}
	r->loaded_at_ms = vigil_now_ms();

	rs = calloc(1, sizeof *rs);
	if (rs == NULL) {
		rv = VIGIL_ENOMEM;
		snprintf(err, sizeof err, "%s: out of memory", s->cfg.rules_path);
		goto out;
	}
	atomic_init(&rs->refs, 1);
	rs->gen = s->db != NULL ? store_db_gen_acquire(s->db) : NULL;
	rs->generation = store_db_gen_number(rs->gen);
	rv = app_tvals_from_gen(r->prog, store_db_gen_get(rs->gen), &rs->tv);
	if (rv != VIGIL_OK) {
		snprintf(err, sizeof err, "%s: thresholds of generation %llu: %s",
		    s->cfg.rules_path, (unsigned long long)rs->generation, vigil_strerror(rv));
		goto out;
	}
	rs->model = model_for_generation(s, cur != NULL ? cur->model : NULL, rs->gen);
	rs->rules = r;
	r = NULL;
	/* Said once it serves: whoever reads the log line and then asks
	 * (/metrics, /v1/rules) gets these rules. The line's reference keeps
	 * rs while it is written. */
	atomic_fetch_add(&rs->refs, 1);
	ruleset_swap(s, rs);
	srv_log("rules: loaded %s (%s): rules_version \"%s\", rules_hash %s, %u rules, "
	    "generation %llu%s%s", rs->rules->path, why, rules_prog_version(rs->rules->prog),
	    rules_prog_hash(rs->rules->prog), rs->rules->nrules,
	    (unsigned long long)rs->generation,
	    cur != NULL ? ", replacing " : "", cur != NULL ? rules_prog_hash(cur->rules->prog) : "");
	srv_ruleset_release(rs);
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
		model_unref(rs->model);
		store_db_gen_release(rs->gen);
		free(rs);
	}
	rules_prog_free(prog);
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
	/* one reference: the thresholds, the model and the features scoring
	 * reads all come from it, whatever CURRENT does meanwhile */
	rs->gen = store_db_gen_acquire(s->db);
	rs->generation = store_db_gen_number(rs->gen);
	rv = app_tvals_from_gen(cur->rules->prog, store_db_gen_get(rs->gen), &rs->tv);
	if (rv != VIGIL_OK)
		goto out;
	atomic_fetch_add(&cur->rules->refs, 1);
	rs->rules = cur->rules;
	rs->model = model_for_generation(s, cur->model, rs->gen);
	ruleset_swap(s, rs);
	rs = NULL;
out:
	if (rv != VIGIL_OK)
		srv_log("features: thresholds for generation %llu not rebuilt: %s; "
		    "the previous generation, thresholds and model keep serving",
		    (unsigned long long)(rs != NULL ? rs->generation : 0), vigil_strerror(rv));
	if (rs != NULL)
		store_db_gen_release(rs->gen);
	free(rs);
	srv_ruleset_release(cur);
	return rv;
}

vigil_err
srv_rules_check(const char *path, FILE *out, bool quiet)
{
	rules_prog *prog = NULL;
	app_rules *ar = NULL;
	rules_diags diags;
	char err[SRV_ERR_MAX];
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
	/* what the start does with it too (srv_rules_reload): a file that
	 * compiles but cannot be served fails here, not only at start */
	rv = app_rules_new(prog, &ar, err, sizeof err); /* takes prog */
	if (rv != VIGIL_OK) {
		fprintf(out, "%s: %s\n", path, err);
		return rv;
	}
	prog = ar->prog;
	if (!quiet)
		fprintf(stdout, "vigild: rules %s: rules_version \"%s\", rules_hash %s, %u rules\n", path,
		    rules_prog_version(prog), rules_prog_hash(prog), rules_prog_nrules(prog));
	app_rules_free(ar);
	return VIGIL_OK;
}
