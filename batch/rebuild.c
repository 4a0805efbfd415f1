/* SPDX-License-Identifier: MIT */
/*
 * batch/rebuild.c - one nightly rebuild, start to finish:
 *
 *   1. take the rebuild lock (store_genw_begin) and stop early if the
 *      as-of date is already current (idempotency);
 *   2. pass 1 (pass.c): read the label records of [from, as_of] into a map txn_id ->
 *      latest label known at as_of (labels arrive after their transaction,
 *      so they must be known before the transactions are aggregated); the
 *      reader passes over the other records by their headers
 *      (store_reader_want), so pass 2 is the one that checks every CRC and
 *      counts corrupt stretches;
 *   3. pass 2 (pass.c): the score records of [from, as_of) are read once (the
 *      segments of [from, as_of], as pass 1) and each goes to the worker
 *      that owns its card (key-hash partition of the card id, found
 *      without unpacking by scan.c). With one thread the worker reads the
 *      archive itself (worker_main); with T threads this thread reads it
 *      and hands each worker its records in chunks (feed_read,
 *      worker_fed_main). Each worker aggregates its cards: card profiles,
 *      merchant and terminal counters, threshold sketches; it decodes
 *      BATCH_PIPE records ahead and prefetches what they will touch, then
 *      applies them in archive order (the order, and so every double sum,
 *      is the same whatever the number of workers or partitions);
 *   4. merge the workers (merchants, terminals and sketches sum exactly),
 *      write every table in key order (write.c), train the model or carry
 *      it over (nightmodel.c), tune the thresholds (tune.c), write meta and
 *      commit; any error before the commit aborts the generation.
 *
 * A --partition run stops after 3 and writes its share to a partial file
 * (part.c); batch_merge() reads N of them and does 4.
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
batch_opts_default(batch_opts *ret)
{
	int64_t now = vigil_now_ms();

	memset(ret, 0, sizeof *ret);
	ret->as_of_ms = now - now % VIGIL_MS_PER_DAY;
	ret->window_ms = 90 * VIGIL_MS_PER_DAY;
	ret->part_count = 1;
	ret->threads = 1;
	ret->train_window_ms = 28 * VIGIL_MS_PER_DAY;
	ret->label_maturity_ms = 7 * VIGIL_MS_PER_DAY;
}

uint32_t
batch_key_partition(const char *key, size_t len, uint32_t count)
{
	if (count <= 1)
		return 0;
	return (uint32_t)(XXH64(key, len, 0) % count);
}

void
batch_run_fini(batch_run *r)
{
	batch_feed_fini(r); /* before the workers, whose chunk lists it walks */
	if (r->workers != NULL) {
		for (uint32_t i = 0; i < r->nworkers; i++)
			batch_worker_fini(&r->workers[i]);
		free(r->workers);
	}
	batch_labels_free(r);
	batch_trainset_free(r->train);
	free(r->carry_json);
	json_decref(r->carry_meta);
	free(r->carry_meta_raw);
	rules_prog_free(r->prog);
	free(r->plans);
	store_gen_cards_close(r->prev_cards);
	store_gen_close(r->prev);
	store_genw_abort(r->gw);
	batch_reported_fini(&r->reported);
	memset(r, 0, sizeof *r);
}

static int
run_archive_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* What the run reads: <datadir>/archive, or opts.archives sorted by path
 * (the merge's tie order must not depend on the command line's), each once. */
static vigil_err
run_archives(batch_run *r, store_diag *reterr)
{
	uint32_t n = 0;

	if (r->opts.narchives == 0) {
		r->archive_dirs[0] = r->archive_dir;
		r->narchive_dirs = 1;
		r->sum.archives = 1;
		return VIGIL_OK;
	}
	if (r->opts.narchives > BATCH_MAX_ARCHIVES) {
		store_diag_set(reterr, "%u archives is over the cap of %u", r->opts.narchives,
		    BATCH_MAX_ARCHIVES);
		return VIGIL_EINVAL;
	}
	memcpy(r->archive_dirs, r->opts.archives, r->opts.narchives * sizeof *r->archive_dirs);
	qsort(r->archive_dirs, r->opts.narchives, sizeof *r->archive_dirs, run_archive_cmp);
	for (uint32_t i = 0; i < r->opts.narchives; i++)
		if (n == 0 || strcmp(r->archive_dirs[n - 1], r->archive_dirs[i]) != 0)
			r->archive_dirs[n++] = r->archive_dirs[i];
	r->narchive_dirs = n;
	r->sum.archives = n;
	return VIGIL_OK;
}

vigil_err
batch_run_init(batch_run *r, const batch_opts *opts, store_diag *reterr)
{
	vigil_err rv;

	memset(r, 0, sizeof *r);
	r->t0 = vigil_mono_ns();
	r->opts = *opts;
	if (opts->datadir == NULL || opts->datadir[0] == '\0') {
		store_diag_set(reterr, "no data directory given");
		return VIGIL_EINVAL;
	}
	if (opts->window_ms <= 0 || opts->window_ms > BATCH_MAX_WINDOW_MS) {
		store_diag_set(reterr, "window of %lld ms is out of range (1 ms .. 3660 days)",
		    (long long)opts->window_ms);
		return VIGIL_EINVAL;
	}
	if (opts->as_of_ms <= opts->window_ms) {
		store_diag_set(reterr, "as-of time %lld ms is before the epoch plus the window",
		    (long long)opts->as_of_ms);
		return VIGIL_EINVAL;
	}
	if (r->opts.part_count == 0)
		r->opts.part_count = 1;
	if (r->opts.part_count > BATCH_MAX_PARTS || r->opts.part_index >= r->opts.part_count) {
		store_diag_set(reterr, "partition %u/%u is out of range", r->opts.part_index,
		    r->opts.part_count);
		return VIGIL_EINVAL;
	}
	if (r->opts.threads == 0)
		r->opts.threads = 1;
	if (r->opts.threads > BATCH_MAX_THREADS) {
		store_diag_set(reterr, "%u threads is over the cap of %u", r->opts.threads,
		    BATCH_MAX_THREADS);
		return VIGIL_EINVAL;
	}
	r->max_labels = opts->max_labels ? opts->max_labels : 64ull << 20;
	r->max_entities = opts->max_entities ? opts->max_entities : 200ull * 1000 * 1000;
	snprintf(r->archive_dir, sizeof r->archive_dir, "%s/archive", opts->datadir);
	rv = run_archives(r, reterr);
	if (rv != VIGIL_OK)
		return rv;
	batch_windows_init(&r->w, opts->as_of_ms, opts->window_ms);
	r->sum.as_of_ms = opts->as_of_ms;
	r->sum.window_ms = opts->window_ms;
	r->sum.part_index = r->opts.part_index;
	r->sum.part_count = r->opts.part_count;
	r->sum.first_seq = UINT64_MAX;

	/* The nightly model's window: mature transactions only, inside the
	 * window read. */
	if (r->opts.train_window_ms <= 0 || r->opts.train_window_ms > BATCH_MAX_WINDOW_MS ||
	    r->opts.label_maturity_ms < 0 || r->opts.label_maturity_ms > BATCH_MAX_WINDOW_MS) {
		store_diag_set(reterr, "model training window or label maturity out of range");
		return VIGIL_EINVAL;
	}
	r->train_to = r->w.as_of - r->opts.label_maturity_ms;
	batch_windows_mature(&r->w, r->opts.label_maturity_ms); /* the entities' mature rates */
	r->train_from = r->train_to - r->opts.train_window_ms;
	if (r->train_from < r->w.from)
		r->train_from = r->w.from;
	r->layout = store_schema_model_layout();
	batch_train_opts_nightly(&r->opts, &r->topts);
	/* A partition keeps the training rows of its cards, bounded by
	 * max_rows like a single run's, for the merge (part.c). */
	r->train_on = !r->opts.model_off && r->train_from < r->train_to;
	r->sum.model.train_from_ms = r->train_from;
	r->sum.model.train_to_ms = r->train_to;
	if (r->opts.model_off)
		snprintf(r->sum.model.why_not, sizeof r->sum.model.why_not, "turned off (--no-model)");
	else if (!r->train_on)
		snprintf(r->sum.model.why_not, sizeof r->sum.model.why_not,
		    "no mature day in the window read (label maturity covers it)");

	if (opts->rules_path != NULL) {
		rules_diags diags;

		memset(&diags, 0, sizeof diags);
		rv = app_rules_load(opts->rules_path, &r->prog, &diags);
		if (rv != VIGIL_OK) {
			if (diags.count > 0)
				store_diag_set(reterr, "%s:%u:%u: %s", opts->rules_path,
				    diags.items[0].line, diags.items[0].col, diags.items[0].msg);
			else
				store_diag_set(reterr, "%s: %s", opts->rules_path, vigil_strerror(rv));
			return rv;
		}
		snprintf(r->sum.rules_hash, sizeof r->sum.rules_hash, "%s",
		    rules_prog_hash(r->prog));
		rv = batch_plans_from_prog(r, reterr);
		if (rv != VIGIL_OK)
			return rv;
	}
	return VIGIL_OK;
}

/* Takes the lock and decides whether there is anything to do. */
vigil_err
batch_run_begin(batch_run *r, store_diag *reterr)
{
	store_gen_meta meta;
	vigil_err rv;

	rv = store_genw_begin(r->opts.datadir, &r->gw, reterr);
	if (rv != VIGIL_OK)
		return rv;
	/* Read the current generation under the lock: no other rebuild can
	 * replace it until this one commits or aborts. */
	rv = store_gen_open_current(r->opts.datadir, &r->prev, reterr);
	if (rv == VIGIL_ENOTFOUND) {
		uint64_t cur = 0;

		r->prev = NULL;
		rv = VIGIL_OK;
		/* No CURRENT is a first run; a CURRENT naming a generation that is
		 * gone is damage: go on (this run repairs it), but say that nothing
		 * could be carried over from it. */
		if (store_gen_current(r->opts.datadir, &cur) == VIGIL_OK && cur != 0)
			snprintf(r->sum.warning, sizeof r->sum.warning, "%s/features/CURRENT names "
			    "generation %llu, which is missing: nothing carried over from it "
			    "(first_seen from this window, %s)", r->opts.datadir,
			    (unsigned long long)cur, r->prog != NULL ? "no previous threshold values" :
			    "no thresholds: vigild uses the rule file's fallbacks");
		reterr->msg[0] = '\0';
	}
	if (rv != VIGIL_OK)
		return rv;
	/* Going back in time replaces newer tables with older ones: only on
	 * purpose (an older --as-of by mistake silently undid a night). */
	if (r->prev != NULL && !r->opts.force && store_gen_meta_get(r->prev, &meta) == VIGIL_OK &&
	    r->opts.as_of_ms < meta.as_of_ms) {
		char want[40], have[40];

		vigil_date_format(r->opts.as_of_ms, want, sizeof want);
		vigil_date_format(meta.as_of_ms, have, sizeof have);
		store_diag_set(reterr, "--as-of %s is before the current generation %llu's as-of %s: "
		    "building an older one needs --force (or use --rollback)", want,
		    (unsigned long long)meta.generation, have);
		return VIGIL_EINVAL;
	}
	/* A generation built before its as-of had not seen the end of its
	 * window: the same as-of again rebuilds it. */
	if (r->prev != NULL && !r->opts.force &&
	    store_gen_meta_get(r->prev, &meta) == VIGIL_OK &&
	    meta.as_of_ms == r->opts.as_of_ms && meta.window_ms == r->opts.window_ms &&
	    meta.built_at_ms >= meta.as_of_ms) {
		r->sum.skipped = true;
		r->sum.generation = meta.generation;
		store_genw_abort(r->gw);
		r->gw = NULL;
		return VIGIL_OK;
	}
	batch_model_carry_decide(r);
	return VIGIL_OK;
}
/*
 * One run of batch_rebuild. full_rows: keep every training row even with a
 * model to carry over; otherwise a run that carries keeps only the fraud
 * rows (the carry needs their count), and one that finds it must train
 * after all returns with *ret_rescan set and nothing written, for a run
 * with full_rows. t0: when the first run started (the summary's duration).
 */
static vigil_err
rebuild_once(const batch_opts *opts, bool full_rows, uint64_t t0, batch_summary *ret_summary,
    bool *ret_rescan, store_diag *reterr)
{
	batch_run r;
	vigil_err rv;

	*ret_rescan = false;
	rv = batch_run_init(&r, opts, reterr);
	if (rv != VIGIL_OK)
		goto out;
	r.t0 = t0;
	/* Day aggregates keep every training row of a day: a later night
	 * that trains merges them without reading the day again. */
	r.full_rows = full_rows || batch_days_usable(&r);
	if (r.opts.part_count > 1) {
		if (r.opts.out_path == NULL) {
			store_diag_set(reterr, "a partition run needs an output file");
			rv = VIGIL_EINVAL;
			goto out;
		}
		rv = batch_run_aggregate(&r, reterr);
		if (rv != VIGIL_OK)
			goto out;
		batch_run_state_bytes(&r);
		rv = batch_run_merge_workers(&r, reterr);
		if (rv != VIGIL_OK)
			goto out;
		/* The partition's training rows go to the partial file; the
		 * merge trains on all of them. */
		rv = batch_train_collect(&r, reterr);
		if (rv != VIGIL_OK)
			goto out;
		if (r.train != NULL) {
			batch_trainset_stats st;

			batch_trainset_stats_get(r.train, &st);
			r.sum.model.rows = st.rows;
			r.sum.model.frauds = st.frauds;
			snprintf(r.sum.model.why_not, sizeof r.sum.model.why_not,
			    "a partition: --merge of the partial files trains the model");
		}
		rv = batch_part_write(&r, r.opts.out_path, reterr);
		if (rv != VIGIL_OK)
			goto out;
		r.sum.partial = true; /* labels_unmatched: only the merge can tell */
		r.sum.duration_s = (double)(vigil_mono_ns() - r.t0) / 1e9;
		goto done;
	}
	rv = batch_run_begin(&r, reterr);
	if (rv != VIGIL_OK || r.sum.skipped)
		goto done;
	rv = batch_run_aggregate(&r, reterr);
	if (rv != VIGIL_OK)
		goto out;
	batch_run_state_bytes(&r);
	rv = batch_put_cards(&r, reterr);
	if (rv != VIGIL_OK)
		goto out;
	rv = batch_run_merge_workers(&r, reterr);
	if (rv != VIGIL_OK)
		goto out;
	rv = batch_run_train(&r, reterr);
	if (rv != VIGIL_OK)
		goto out;
	if (r.rescan) {
		*ret_rescan = true; /* batch_run_fini aborts the generation */
		goto out;
	}
	rv = batch_run_finish(&r, &r.workers[0].merchants, &r.workers[0].terminals,
	    r.workers[0].ts, reterr);
done:
	if (rv == VIGIL_OK) {
		if (r.sum.first_seq == UINT64_MAX)
			r.sum.first_seq = 0;
		r.sum.duration_s = (double)(vigil_mono_ns() - r.t0) / 1e9;
		*ret_summary = r.sum;
	}
out:
	batch_run_fini(&r);
	return rv;
}

/*
 * A night that carries the model over (--train-every) reads its training
 * rows only to count the frauds (model_carry_put), so its workers keep the
 * fraud rows alone: the legitimate ones (99% of the window's training
 * rows) are neither decoded nor sampled. When the count says the model
 * must be retrained after all (its frauds grew by a quarter), that run
 * ends before writing anything and a second one reads the window again
 * with every row: the generation is then the one a single run with every
 * row would have written.
 */
vigil_err
batch_rebuild(const batch_opts *opts, batch_summary *ret_summary, store_diag *reterr)
{
	store_diag scratch;
	uint64_t t0 = vigil_mono_ns();
	bool rescan;
	vigil_err rv;

	if (reterr == NULL)
		reterr = &scratch;
	reterr->msg[0] = '\0';
	rv = rebuild_once(opts, false, t0, ret_summary, &rescan, reterr);
	if (rv == VIGIL_OK && rescan) {
		rv = rebuild_once(opts, true, t0, ret_summary, &rescan, reterr);
		if (rv == VIGIL_OK)
			ret_summary->model.read_again = true;
	}
	return rv;
}

vigil_err
batch_rollback(const char *datadir, uint64_t generation, uint64_t *ret_from,
    uint64_t *ret_to, store_diag *reterr)
{
	store_gen *g = NULL;
	store_diag scratch;
	uint64_t cur = 0, target = 0;
	vigil_err rv;

	if (reterr == NULL)
		reterr = &scratch;
	reterr->msg[0] = '\0';
	rv = store_gen_current(datadir, &cur);
	if (rv != VIGIL_OK) {
		store_diag_set(reterr, "%s/features/CURRENT: cannot read the current generation: %s",
		    datadir, vigil_strerror(rv));
		return rv;
	}
	if (cur == 0) {
		store_diag_set(reterr, "%s/features: no feature generation yet, nothing to roll back",
		    datadir);
		return VIGIL_ENOTFOUND;
	}
	if (generation != 0) {
		if (generation == cur) {
			store_diag_set(reterr, "generation %llu is already current",
			    (unsigned long long)cur);
			return VIGIL_EINVAL;
		}
		rv = store_gen_open(datadir, generation, &g, reterr);
		if (rv != VIGIL_OK)
			return rv;
		target = generation;
	} else {
		/* The newest kept generation older than the current one. */
		for (uint64_t k = cur; k > 1 && cur - k < 10000; k--) {
			if (store_gen_open(datadir, k - 1, &g, NULL) == VIGIL_OK) {
				target = k - 1;
				break;
			}
		}
		if (target == 0) {
			store_diag_set(reterr, "%s: no generation older than %llu is kept", datadir,
			    (unsigned long long)cur);
			return VIGIL_ENOTFOUND;
		}
	}
	store_gen_close(g);
	rv = store_gen_set_current(datadir, target, reterr);
	if (rv != VIGIL_OK)
		return rv;
	*ret_from = cur;
	*ret_to = target;
	return VIGIL_OK;
}
