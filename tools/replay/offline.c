/* SPDX-License-Identifier: MIT */
/*
 * tools/replay/offline.c - vigil-replay's offline engine (the default): each
 * row is scored in process by the one pipeline (app_score) at its event
 * time, so the live velocity state sees exactly the earlier transactions of
 * the replay. Without --nightly the live state is in memory and only the
 * entity kinds the rules read are kept. With --nightly the replay keeps a
 * real data directory (--work, or a temporary one removed at exit),
 * archives every scored transaction and every label once its label time
 * has passed, and at each UTC day boundary runs batch_rebuild() as of that
 * midnight and switches to the new generation (features, thresholds,
 * model), so they are those production would have had that day.
 */
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "batch.h"
#include "mask.h"
#include "replay.h"

/* A build checked for leaks (ASan/LSan) frees the live state at exit;
 * others leave it to the exit (store_db_close_exiting): one free per card,
 * entity and idempotency record is tens of milliseconds of a replay. */
#if defined(__SANITIZE_ADDRESS__)
#define RP_FREE_LIVE_AT_EXIT 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(leak_sanitizer)
#define RP_FREE_LIVE_AT_EXIT 1
#endif
#endif
#ifndef RP_FREE_LIVE_AT_EXIT
#define RP_FREE_LIVE_AT_EXIT 0
#endif

/* ------------------------- allocator tuning -------------------------- */

/* The live state of an offline replay (cards, their events, idempotency
 * records: 145 MB for 30 days of 20,000 cards) is first written a page at
 * a time, one page fault each (36k on 30 days). The main thread's heap
 * grows in steps of RP_HEAP_PAD instead of 128 KiB, and each step's pages
 * are made present by one madvise(MADV_POPULATE_WRITE): the kernel fills
 * them in a loop instead of one trap per page (system time 0.11 -> 0.08 s
 * on 30 days, 0.29 -> 0.20 s on 90). The pad bounds the memory populated
 * ahead of use. Advising the steps as transparent huge pages instead cut
 * user time 3% but doubled system time on our VMs (d6de3de, reverted).
 * Results do not depend on where the allocator puts things; a build whose
 * allocator does not use brk (ASan) sees no step and populates nothing.
 * docs/BENCHMARKS.md, issue 7. */
#define RP_HEAP_PAD ((size_t)4 << 20)

static uintptr_t rp_heap_done; /* the break up to which the heap is populated */
static uintptr_t rp_heap_pg;

void
rp_heap_setup(void)
{
#if defined(__GLIBC__) && defined(M_TOP_PAD) && defined(MADV_POPULATE_WRITE)
	long pg = sysconf(_SC_PAGESIZE);

	if (pg <= 0 || (pg & (pg - 1)) != 0)
		return;
	(void)mallopt(M_TOP_PAD, (int)RP_HEAP_PAD);
	rp_heap_pg = (uintptr_t)pg;
	rp_heap_done = (uintptr_t)sbrk(0);
#endif
}

/* Populates the heap grown since the last call (sbrk(0) only reads the
 * break glibc keeps: no system call unless it moved). */
static inline void
rp_heap_populate(void)
{
#if defined(__GLIBC__) && defined(M_TOP_PAD) && defined(MADV_POPULATE_WRITE)
	uintptr_t cur = (uintptr_t)sbrk(0), pg = rp_heap_pg, from, to;

	if (cur == rp_heap_done || cur == (uintptr_t)-1 || rp_heap_done == 0)
		return;
	from = (rp_heap_done + pg - 1) & ~(pg - 1);
	to = cur & ~(pg - 1);
	if (to > from)
		(void)madvise((void *)from, to - from, MADV_POPULATE_WRITE);
	rp_heap_done = cur;
#endif
}

/* ------------------------------ scoring ------------------------------ */

/*
 * The features offline scoring needs: the slots the rules read (each file's
 * conditions and the thresholds they use, with their group slots) and, with
 * --nightly, those archived for the rebuilds. The store computes only these
 * (the others stay missing, and no rule reads them), so the decisions are
 * those of vigild, which computes everything.
 */
static void
rp_feature_mask(const rp *r, store_feature_mask *ret_m)
{
	const rules_prog *progs[2] = { r->prog, r->prog2 };

	store_feature_mask_none(ret_m);
	for (int k = 0; k < 2; k++) {
		const uint32_t *slots;
		uint32_t n;

		if (progs[k] == NULL)
			continue;
		slots = rules_prog_slots_used(progs[k], &n);
		for (uint32_t i = 0; i < n; i++)
			store_feature_mask_set(ret_m, slots[i]);
	}
	for (uint32_t i = 0; i < r->ar->narch; i++)
		store_feature_mask_set(ret_m, r->ar->arch[i]);
	if (r->o.nightly) {
		/* the model's input vector is archived whole for the nightly
		 * training, and the model reads from it */
		const uint32_t *slots;
		uint32_t n = store_schema_model_inputs(&slots);

		for (uint32_t i = 0; i < n; i++)
			store_feature_mask_set(ret_m, slots[i]);
	}
}

vigil_err
rp_offline_open(rp *r)
{
	store_db_opts dbo;
	store_feature_mask mask;
	store_diag diag;
	vigil_err rv;

	{
		char err[256];

		rv = app_rules_new(r->prog, &r->ar, err, sizeof err); /* takes prog */
		r->prog = NULL;
		if (rv != VIGIL_OK) {
			fprintf(stderr, "vigil-replay: %s: %s\n", r->o.rules, err);
			return rv;
		}
		r->prog = r->ar->prog;
	}
	rp_feature_mask(r, &mask);
	store_db_opts_default(&dbo);
	if (!r->o.nightly) {
		/* live state kept only for the entity kinds the rules read */
		rv = store_db_new_memory_masked(&dbo, &mask, &r->db);
		if (rv != VIGIL_OK) {
			fprintf(stderr, "vigil-replay: live state: %s\n", vigil_strerror(rv));
			return rv;
		}
	} else {
		/* a real data directory, as production has: archive + generations */
		const char *base = r->o.work;
		if (base == NULL) {
			const char *tmp = getenv("TMPDIR");
			snprintf(r->workdir, sizeof r->workdir, "%s/vigil-replay-XXXXXX",
			    tmp && *tmp ? tmp : "/tmp");
			if (mkdtemp(r->workdir) == NULL) {
				fprintf(stderr, "vigil-replay: %s: %s\n", r->workdir, strerror(errno));
				return VIGIL_EIO;
			}
			r->own_workdir = !r->o.keep_work;
		} else {
			struct stat st;
			snprintf(r->workdir, sizeof r->workdir, "%s", base);
			if (stat(base, &st) == 0) {
				char p[PATH_MAX];
				snprintf(p, sizeof p, "%s/archive", base);
				if (stat(p, &st) == 0) {
					fprintf(stderr, "vigil-replay: --work %s: already holds an archive; "
					    "use an empty or new directory\n", base);
					return VIGIL_EEXIST;
				}
			} else if (mkdir(base, 0755) != 0) {
				fprintf(stderr, "vigil-replay: --work %s: %s\n", base, strerror(errno));
				return VIGIL_EIO;
			}
		}
		dbo.archive.fsync = STORE_FSYNC_NEVER;
		r->days = batch_days_new();
		if (r->days == NULL)
			return VIGIL_ENOMEM;
		rv = store_db_open(r->workdir, &dbo, &r->db, NULL, &diag);
		if (rv != VIGIL_OK) {
			fprintf(stderr, "vigil-replay: %s: %s\n", r->workdir, diag.msg);
			return rv;
		}
	}
	r->aw = app_work_new(r->db);
	if (r->aw == NULL)
		return VIGIL_ENOMEM;
	/* a data directory keeps every kind (it is vigild's); lookups need not */
	rv = app_work_set_features(r->aw, &mask);
	if (rv != VIGIL_OK) {
		fprintf(stderr, "vigil-replay: feature mask: %s\n", vigil_strerror(rv));
		return rv;
	}
	rv = app_tvals_from_db(r->prog, r->db, &r->tv);
	if (rv == VIGIL_OK && r->prog2 != NULL)
		rv = app_tvals_from_db(r->prog2, r->db, &r->tv2);
	return rv;
}

static void
rp_outcome_from_result(rp_outcome *out, const rules_result *res)
{
	uint32_t n = 0;

	out->score = res->score;
	out->decision = res->decision;
	for (uint32_t i = 0; i < res->nhits && n < RP_MAX_HITS; i++)
		out->hits[n++] = res->hits[i];
	out->nhits = n;
	for (uint32_t i = 0; i < res->nshadow && n < RP_MAX_HITS; i++)
		out->hits[n++] = res->shadow[i];
	out->nshadow = n - out->nhits;
	out->latency_us = 0;
	out->failed = false;
	out->refused = false;
	out->model_score = NAN;
	out->nreasons = 0;
}

static vigil_err
rp_offline_score(rp *r, const rp_row *row, rp_outcome *out, rp_outcome *out2)
{
	app_scorer sc = { .rules = r->ar, .tv = r->tv, .model = r->model, .prog2 = r->prog2,
		.tv2 = r->tv2 };
	static app_outcome ao; /* large; one replay per process */
	vigil_err rv;

	/* scored at its event time: the nightly rebuild sees what production would */
	rv = app_score(r->db, r->aw, &sc, &row->txn, r->o.nightly ? 0 : APP_NO_ARCHIVE,
	    row->txn.event_time_ms, &ao);
	if (rv == VIGIL_EEXIST) {
		/* a repeated txn_id: the first outcome, as the server answers */
		out->score = ao.prior.score;
		out->decision = ao.prior.decision;
		out->nhits = out->nshadow = 0;
		for (uint32_t i = 0; i < ao.prior.nhits && i < RP_MAX_HITS; i++) {
			uint32_t idx;
			if (rules_prog_rule_find(r->prog, ao.prior.hits[i].rule, &idx) != VIGIL_OK)
				continue;
			out->hits[out->nhits++] = (uint16_t)idx;
		}
		out->latency_us = 0;
		out->failed = false;
		out->refused = false;
		out->model_score = NAN;
		out->nreasons = 0;
		if (out2 != NULL)
			*out2 = *out;
		return VIGIL_OK;
	}
	if (rv == VIGIL_ECONFLICT) {
		/* vigild refuses it (INVALID on txn.txn_id): not scored, not
		 * recorded, not counted in the metrics, its label not sent */
		if (r->conflicts++ < RP_MAX_ERRORS_SHOWN) {
			char where[PATH_MAX + 48];

			if (row->segment[0] != '\0')
				snprintf(where, sizeof where, "%s:%" PRIu64, row->segment, row->offset);
			else
				snprintf(where, sizeof where, "%s:%" PRIu64, r->src.name, row->line);
			fprintf(stderr, "vigil-replay: %s: txn_id \"%s\": already scored for a different "
			    "transaction (card, merchant, terminal, amount or currency differ); "
			    "refused, as vigild refuses it%s\n", where, row->txn.txn_id,
			    r->conflicts == RP_MAX_ERRORS_SHOWN ? " (further ones are only counted)" : "");
		}
		memset(out, 0, sizeof *out);
		out->refused = true;
		out->model_score = NAN;
		if (out2 != NULL)
			*out2 = *out;
		return VIGIL_OK;
	}
	if (rv != VIGIL_OK) {
		fprintf(stderr, "vigil-replay: %s: %s: %s\n", row->txn.txn_id,
		    ao.step == APP_STEP_ARCHIVE ? "commit" : ao.step == APP_STEP_RULES ? "rules" :
		    "features", ao.diag.msg[0] ? ao.diag.msg : vigil_strerror(rv));
		return rv;
	}
	rp_outcome_from_result(out, ao.res);
	out->model_score = ao.model_score;
	out->nreasons = ao.nreasons;
	for (uint32_t i = 0; i < ao.nreasons; i++) {
		out->reasons[i].feature = ao.reasons[i].feature;
		out->reasons[i].value = ao.reasons[i].value.num;
		out->reasons[i].contrib = ao.reasons[i].contrib;
	}
	if (out2 != NULL) {
		rp_outcome_from_result(out2, ao.res2);
		out2->model_score = ao.model_score;
	}
	return VIGIL_OK;
}

/* ------------------------------ nights ------------------------------ */

/* One line of the JSON summary's "nights": the model each rebuild made. */
static void
rp_night_record(rp *r, const batch_summary *sum)
{
	json_t *n = json_object();
	char d[16];

	if (r->nights == NULL)
		r->nights = json_array();
	if (n == NULL || r->nights == NULL) {
		json_decref(n);
		return;
	}
	vigil_date_format(sum->as_of_ms, d, sizeof d);
	json_object_set_new(n, "as_of", json_string(d));
	json_object_set_new(n, "generation", json_integer((json_int_t)sum->generation));
	json_object_set_new(n, "records", json_integer((json_int_t)sum->records_read));
	json_object_set_new(n, "days_read", json_integer(sum->days_read));
	json_object_set_new(n, "days_reused", json_integer(sum->days_reused));
	json_object_set_new(n, "model_trained", json_boolean(sum->model.trained));
	if (sum->model.carried) {
		char at[16];

		vigil_date_format(sum->model.trained_as_of_ms, at, sizeof at);
		json_object_set_new(n, "model_carried", json_true());
		json_object_set_new(n, "trained_as_of", json_string(at));
	}
	if (sum->model.trained) {
		json_object_set_new(n, "model_rows", json_integer((json_int_t)sum->model.rows));
		json_object_set_new(n, "model_frauds", json_integer((json_int_t)sum->model.frauds));
		json_object_set_new(n, "valid_auc", json_real(sum->model.valid_auc));
		json_object_set_new(n, "valid_ap", json_real(sum->model.valid_ap));
		json_object_set_new(n, "rounds", json_integer(sum->model.best_round));
		json_object_set_new(n, "train_seconds", json_real(sum->model.seconds));
		if (r->first_model_day[0] == '\0')
			snprintf(r->first_model_day, sizeof r->first_model_day, "%s", d);
	} else {
		json_object_set_new(n, "why_not", json_string(sum->model.why_not));
	}
	json_array_append_new(r->nights, n);
}

/* The bands in force after the night just recorded (a tuned band's value
 * as the generation set it, else the rule file's number), on its line of
 * "nights": the report shows what decided each day. */
static void
rp_night_bands(rp *r)
{
	json_t *n = r->nights ? json_array_get(r->nights, json_array_size(r->nights) - 1) : NULL;
	double review_at, decline_at;

	if (n == NULL || r->prog == NULL || r->tv == NULL)
		return;
	rules_prog_bands_in_force(r->prog, r->tv, &review_at, &decline_at);
	json_object_set_new(n, "review_at", json_real(review_at));
	json_object_set_new(n, "decline_at", json_real(decline_at));
}

/* The night before `day`: labels known by midnight, rebuild, switch. */
static vigil_err
rp_offline_night(rp *r, int64_t day)
{
	batch_opts bo;
	batch_summary *sum = NULL;
	store_diag diag;
	rules_tvals *tv = NULL, *tv2 = NULL;
	bool changed = false;
	vigil_err rv;

	uint64_t t0 = vigil_mono_ns();

	rv = rp_labels_due(r, day * VIGIL_MS_PER_DAY);
	if (rv != VIGIL_OK)
		return rv;
	/* The day's segment closes, as vigild's at midnight: the rebuild's day
	 * aggregates read a closed day once (vigil-rebuild(1), "Day
	 * aggregates"). */
	rv = store_db_rotate(r->db, &diag);
	if (rv != VIGIL_OK) {
		fprintf(stderr, "vigil-replay: closing the day's archive segment: %s\n", diag.msg);
		return rv;
	}
	sum = malloc(sizeof *sum);
	if (sum == NULL)
		return VIGIL_ENOMEM;
	batch_opts_default(&bo);
	bo.datadir = r->workdir;
	bo.as_of_ms = day * VIGIL_MS_PER_DAY;
	bo.rules_path = r->o.rules;
	bo.threads = r->o.rebuild_threads;
	bo.model_off = r->o.no_model;
	bo.train_every_ms = r->o.train_every_ms;
	bo.days = r->days;
	rv = batch_rebuild(&bo, sum, &diag);
	if (rv != VIGIL_OK) {
		char d[16];
		vigil_date_format(day * VIGIL_MS_PER_DAY, d, sizeof d);
		fprintf(stderr, "vigil-replay: nightly rebuild as of %s: %s\n", d, diag.msg);
		goto out;
	}
	r->nightly_runs++;
	rp_night_record(r, sum);
	rv = store_db_refresh(r->db, &changed, &diag);
	if (rv != VIGIL_OK) {
		fprintf(stderr, "vigil-replay: switching generation: %s\n", diag.msg);
		goto out;
	}
	rv = app_tvals_from_db(r->prog, r->db, &tv);
	if (rv == VIGIL_OK && r->prog2 != NULL)
		rv = app_tvals_from_db(r->prog2, r->db, &tv2);
	if (rv != VIGIL_OK) {
		rules_tvals_free(tv);
		fprintf(stderr, "vigil-replay: thresholds: %s\n", vigil_strerror(rv));
		goto out;
	}
	rules_tvals_free(r->tv);
	rules_tvals_free(r->tv2);
	r->tv = tv;
	r->tv2 = tv2;
	rp_night_bands(r);
	if (store_db_generation(r->db) != r->model_gen) {
		/* the generation's model, as vigild switches to it; a refused one
		 * leaves the previous model serving */
		app_model *m = NULL;
		char err[512];

		if (app_model_from_db(r->db, &m, NULL, err, sizeof err) != VIGIL_OK) {
			fprintf(stderr, "vigil-replay: model: %s; the previous model keeps serving\n",
			    err);
		} else {
			app_model_free(r->model);
			r->model = m;
			if (m != NULL)
				r->models_loaded++;
		}
		r->model_gen = store_db_generation(r->db);
	}
out:
	free(sum);
	r->night_ns += vigil_mono_ns() - t0;
	return rv;
}

/* ------------------------------ the run ------------------------------ */

vigil_err
rp_run_offline(rp *r)
{
	rp_row row;
	rp_outcome out, out2;
	vigil_err rv;

	while ((rv = rp_source_next(&r->src, &row)) == VIGIL_OK) {
		int64_t day = row.txn.event_time_ms / VIGIL_MS_PER_DAY;
		if (r->o.nightly) {
			if (day > r->day && r->day != INT64_MIN) {
				rv = rp_offline_night(r, day);
				if (rv != VIGIL_OK)
					return rv;
			}
			rv = rp_labels_due(r, row.txn.event_time_ms);
			if (rv != VIGIL_OK)
				return rv;
		}
		if (day > r->day)
			r->day = day;
		else if (day < r->day)
			r->behind++; /* scored as it comes, as vigild scores a late one */
		/* the card's metrics slot loads while the row is scored */
		metrics_prefetch(r->m, row.txn.card_id);
		metrics_prefetch(r->m2, row.txn.card_id);
		rv = rp_offline_score(r, &row, &out, r->prog2 ? &out2 : NULL);
		if (rv != VIGIL_OK)
			return rv;
		rp_heap_populate();
		rv = rp_observe(r, &row, &out, r->prog2 ? &out2 : NULL);
		if (rv != VIGIL_OK) {
			fprintf(stderr, "vigil-replay: metrics: %s\n", vigil_strerror(rv));
			return rv;
		}
		if (r->o.nightly && !out.refused) {
			rv = rp_label_queue(r, &row);
			if (rv != VIGIL_OK)
				return rv;
		}
		if ((++r->rows & 0xFFFF) == 0)
			rp_progress(r, &row, false);
	}
	return rv == VIGIL_ENOTFOUND ? VIGIL_OK : rv;
}

/* Removes the temporary data directory: depth first, links not followed. */
static int
rp_rmtree_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

static int
rp_rmtree(const char *dir)
{
	return nftw(dir, rp_rmtree_one, 16, FTW_DEPTH | FTW_PHYS);
}

void
rp_offline_close(rp *r)
{
	app_work_free(r->aw);
	r->aw = NULL;
	if (RP_FREE_LIVE_AT_EXIT) {
		batch_days_free(r->days);
		r->days = NULL;
		store_db_close(r->db);
	} else {
		store_db_close_exiting(r->db);
	}
	r->db = NULL;
	if (r->own_workdir && r->workdir[0] != '\0' && rp_rmtree(r->workdir) != 0)
		fprintf(stderr, "vigil-replay: could not remove %s\n", r->workdir);
}
