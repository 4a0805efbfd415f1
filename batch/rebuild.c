/* SPDX-License-Identifier: MIT */
/*
 * batch/rebuild.c - one nightly rebuild, start to finish:
 *
 *   1. take the rebuild lock (store_genw_begin) and stop early if the
 *      as-of date is already current (idempotency);
 *   2. pass 1: read the label records of [from, as_of] into a map txn_id ->
 *      latest label known at as_of (labels arrive after their transaction,
 *      so they must be known before the transactions are aggregated); the
 *      reader passes over the other records by their headers
 *      (store_reader_want), so pass 2 is the one that checks every CRC and
 *      counts corrupt stretches;
 *   3. pass 2: the score records of [from, as_of) are read once (the
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
 *      write every table in key order, tune the thresholds, write meta and
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

#define PROGRESS_EVERY 65536


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

static const char *
group_keyof(const void *n)
{
	return ((const batch_group *)n)->key;
}

static const char *
label_keyof(const void *n)
{
	return ((const batch_label *)n)->txn_id;
}

static const char *
card_keyof(const void *n)
{
	return ((const batch_card *)n)->key;
}

static const char *
ent_keyof(const void *n)
{
	return ((const batch_ent_node *)n)->key;
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
		rv = batch_index_put(&t->group_ix, h, g);
		if (rv != VIGIL_OK) {
			batch_sketch_free(g->sk);
			free(g);
			return rv;
		}
		HASH_ADD_KEYPTR(hh, t->groups, g->key, len, g);
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
static vigil_err
plans_from_prog(batch_run *r, store_diag *reterr)
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

/* ---- Pass 1: labels ---- */

static void
on_corrupt(void *arg, const char *segment, uint64_t offset, uint64_t skipped,
    const char *what)
{
	batch_reader_ctx *c = arg;

	c->corrupt++;
	if (c->where[0] == '\0')
		snprintf(c->where, sizeof c->where, "%.60s+%llu: %.100s (%llu bytes skipped)",
		    segment, (unsigned long long)offset, what, (unsigned long long)skipped);
}

static void
run_progress(batch_run *r, uint64_t records, uint64_t bytes_done)
{
	if (r->opts.progress_bytes != NULL)
		r->opts.progress_bytes(r->opts.progress_arg, records, bytes_done, r->bytes_est);
	else if (r->opts.progress != NULL)
		r->opts.progress(r->opts.progress_arg, records, r->bytes_est);
}

static void
labels_free(batch_run *r)
{
	batch_label *l, *tmp;

	HASH_ITER(hh, r->labels, l, tmp) {
		HASH_DEL(r->labels, l);
		free(l);
	}
	batch_index_fini(&r->label_ix);
}

static vigil_err
pass_labels(batch_run *r, store_diag *reterr)
{
	batch_src *rd = NULL;
	store_reader_stats st;
	store_record rec;
	store_label lab;
	vigil_err rv;

	/* Label records carry their label time as event time: [from, as_of].
	 * Corrupt stretches are counted by pass 2, which reads the same
	 * segments checking every frame (this pass skips most unchecked). */
	rv = batch_src_open(r->archive_dirs, r->narchive_dirs, r->w.from, r->w.as_of + 1, NULL,
	    NULL, &rd, reterr);
	if (rv != VIGIL_OK)
		goto out;
	batch_src_want(rd, 1u << STORE_REC_LABEL);
	for (;;) {
		batch_label *l;
		uint64_t lh;
		int64_t t;
		size_t len;

		rv = batch_src_next(rd, &rec, reterr);
		if (rv == VIGIL_ENOTFOUND) {
			rv = VIGIL_OK;
			break;
		}
		if (rv != VIGIL_OK)
			goto out;
		if (++r->pass1_records % PROGRESS_EVERY == 0) {
			batch_src_get_stats(rd, &st);
			run_progress(r, r->pass1_records, st.bytes + st.skipped_bytes);
		}
		if (rec.type != STORE_REC_LABEL)
			continue;
		if (store_label_decode(rec.payload, rec.len, &lab, reterr) != VIGIL_OK) {
			/* Every partition reads every label: partition 0 alone
			 * counts a bad one, so that a merge counts it once. */
			if (r->opts.part_count > 1 && r->opts.part_index != 0)
				continue;
			r->sum.records_bad++;
			if (r->sum.bad_where[0] == '\0')
				snprintf(r->sum.bad_where, sizeof r->sum.bad_where, "%.60s+%llu: %.160s",
				    rec.segment, (unsigned long long)rec.offset, reterr->msg);
			continue;
		}
		t = lab.label_time_ms > 0 ? lab.label_time_ms : rec.event_time_ms;
		if (t > r->w.as_of) {
			r->sum.labels_future++;
			continue;
		}
		len = strlen(lab.txn_id);
		lh = batch_index_hash(lab.txn_id, len);
		l = batch_index_find(&r->label_ix, lh, lab.txn_id, len, label_keyof);
		if (l == NULL) {
			if (r->nlabels >= r->max_labels) {
				store_diag_set(reterr, "%s:%llu: more than %llu labelled transactions "
				    "(raise the cap)", rec.segment, (unsigned long long)rec.offset,
				    (unsigned long long)r->max_labels);
				rv = VIGIL_ETOOBIG;
				goto out;
			}
			l = calloc(1, sizeof *l + len + 1);
			if (l == NULL) {
				rv = VIGIL_ENOMEM;
				goto out;
			}
			memcpy(l->txn_id, lab.txn_id, len + 1);
			l->time = t;
			l->fraud = lab.fraud;
			rv = batch_index_put(&r->label_ix, lh, l);
			if (rv != VIGIL_OK) {
				free(l);
				goto out;
			}
			HASH_ADD_KEYPTR(hh, r->labels, l->txn_id, len, l);
			r->nlabels++;
		} else if (t > l->time || (t == l->time && lab.fraud)) {
			/* The latest label known at as_of wins; of two at the same
			 * time, fraud (feeds stamp whole days: a chargeback and its
			 * reversal can tie). Never archive order: the labels, and so
			 * the model, must not depend on the order labels arrived in. */
			l->time = t;
			l->fraud = lab.fraud;
		}
	}
	batch_src_get_stats(rd, &st);
	r->pass1_bytes = st.bytes + st.skipped_bytes;
	/* Labelled transactions, not label records: a transaction labelled
	 * twice (a chargeback sent again, a label withdrawn) is one, so that
	 * read = used + unmatched. */
	r->sum.labels_read = r->nlabels;
out:
	batch_src_close(rd);
	return rv;
}

/* ---- Pass 2: workers ---- */

void
batch_worker_fini(batch_worker *wk)
{
	batch_ent_node *e, *et;

	/* Pooled cards go with the pool, all at once. */
	vigil_vec_fini(&wk->cards);
	batch_pool_fini(&wk->pool);
	HASH_ITER(hh, wk->merchants, e, et) {
		HASH_DEL(wk->merchants, e);
		batch_ent_node_free(e);
	}
	HASH_ITER(hh, wk->terminals, e, et) {
		HASH_DEL(wk->terminals, e);
		batch_ent_node_free(e);
	}
	if (wk->ts != NULL) {
		for (uint32_t i = 0; i < wk->nts; i++)
			batch_tstate_fini(&wk->ts[i]);
		free(wk->ts);
	}
	for (uint32_t i = 0; i < BATCH_PIPE; i++) {
		free(wk->payload[i].p);
		wk->payload[i].p = NULL;
	}
	free(wk->lean);
	wk->lean = NULL;
	free(wk->pvals);
	wk->pvals = NULL;
	batch_index_fini(&wk->card_ix);
	batch_index_fini(&wk->merchant_ix);
	batch_index_fini(&wk->terminal_ix);
	batch_trainset_free(wk->train);
	wk->train = NULL;
	wk->ts = NULL;
}

vigil_err
batch_ent_get(batch_ent_node **map, batch_index *ix, const char *key, size_t len,
    batch_ent **ret_a)
{
	return batch_ent_get_h(map, ix, batch_index_hash(key, len), key, len, ret_a);
}

vigil_err
batch_ent_get_h(batch_ent_node **map, batch_index *ix, uint64_t h, const char *key,
    size_t len, batch_ent **ret_a)
{
	batch_ent_node *e;
	vigil_err rv;

	e = batch_index_find(ix, h, key, len, ent_keyof);
	if (e == NULL) {
		e = batch_ent_node_new(key, len);
		if (e == NULL)
			return VIGIL_ENOMEM;
		rv = batch_index_put(ix, h, e);
		if (rv != VIGIL_OK) {
			batch_ent_node_free(e);
			return rv;
		}
		HASH_ADD_KEYPTR(hh, *map, e->key, len, e);
	}
	*ret_a = &e->acc;
	return VIGIL_OK;
}

/* The value of a feature for a record: a transaction field, or the value
 * the server archived under that name. *hint remembers where the name was
 * last found: vigild archives the same features in the same order, so the
 * first comparison usually hits. */
static inline bool
feat_is(const store_lean_feat *f, const char *name, uint32_t len)
{
	return f->name.len == len && memcmp(f->name.p, name, len) == 0;
}

static vigil_value
worker_feature(const batch_run *r, const store_scored_lean *s, const vigil_value *txnf,
    bool is_txn, uint32_t slot, const char *name, uint32_t len, uint32_t *hint)
{
	uint32_t h = *hint;

	if (is_txn)
		return slot < r->ntxn ? txnf[slot] : vigil_value_missing();
	if (h < s->nfeats && feat_is(&s->feats[h], name, len))
		return s->feats[h].val;
	for (uint32_t i = 0; i < s->nfeats; i++) {
		if (feat_is(&s->feats[i], name, len)) {
			*hint = i;
			return s->feats[i].val;
		}
	}
	return vigil_value_missing();
}

/* Group key text: strings as their bytes, numbers "%.17g" (5411, 0.5),
 * bools "true"/"false" (docs/vigil-rebuild.md). */
static size_t
group_key(const batch_plan *p, const vigil_value *v, char *buf, size_t cap)
{
	int n;

	switch (p->group_type) {
	case VIGIL_T_STR:
		if (v->len >= cap)
			return 0;
		memcpy(buf, v->str, v->len);
		buf[v->len] = '\0';
		return v->len;
	case VIGIL_T_BOOL:
		n = snprintf(buf, cap, "%s", v->num != 0.0 ? "true" : "false");
		break;
	default:
		if (v->num == floor(v->num) && fabs(v->num) < 1e15) {
			/* Integers (mcc, counts): the same text as %.17g, without
			 * printf's floating-point path on every record. */
			long long x = (long long)v->num;
			char tmp[24];
			size_t k = 0, len = 0;
			bool neg = x < 0;
			unsigned long long u = neg ? 0ull - (unsigned long long)x : (unsigned long long)x;

			do {
				tmp[k++] = (char)('0' + u % 10);
				u /= 10;
			} while (u != 0);
			if (neg)
				tmp[k++] = '-';
			if (k >= cap)
				return 0;
			while (k > 0)
				buf[len++] = tmp[--k];
			buf[len] = '\0';
			return len;
		}
		n = snprintf(buf, cap, "%.17g", v->num);
		break;
	}
	return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

/* Whether the model gave s its score: model.score archived with a value.
 * A record without model.score at all (a vigild before it archived one
 * beside a band's score) counts as the model's, as it did. */
static bool
scored_by_model(const store_scored_lean *s, uint32_t *hint)
{
	static const char name[] = "model.score";
	const uint32_t len = sizeof name - 1;

	if (*hint < s->nfeats && feat_is(&s->feats[*hint], name, len))
		return s->feats[*hint].val.present;
	for (uint32_t i = 0; i < s->nfeats; i++) {
		if (feat_is(&s->feats[i], name, len)) {
			*hint = i;
			return s->feats[i].val.present;
		}
	}
	return true;
}

/* Stage 2 for the thresholds of pipeline slot i: reads each tuned
 * feature's value (and group) once, finds or makes the group's sketch, and
 * prefetches the buckets stage 3 will update. */
static vigil_err
worker_plan_values(batch_worker *wk, uint32_t i, store_diag *reterr)
{
	const batch_run *r = wk->run;
	const store_scored_lean *s = &wk->lean[i];
	batch_pval *pv = &wk->pvals[(size_t)i * r->nplans];
	vigil_value txnf[STORE_LEAN_TXN_SLOTS];
	bool have_txnf = false;
	vigil_err rv;

	for (uint32_t k = 0; k < r->nplans; k++) {
		const batch_plan *p = &r->plans[k];
		vigil_value v, g;
		char key[BATCH_GROUP_MAX + 1];
		size_t klen;

		pv[k].present = false;
		pv[k].gsk = NULL;
		if (p->mature_only && s->event_time_ms >= r->train_to) {
			wk->ts[k].left_immature++;
			continue;
		}
		if (p->model_only && !scored_by_model(s, &wk->ts[k].model_hint)) {
			wk->ts[k].left_no_model++;
			continue;
		}
		if ((p->feat_txn || (p->grouped && p->group_txn)) && !have_txnf) {
			store_lean_features_from_txn(s, txnf, r->ntxn_used);
			have_txnf = true;
		}
		v = p->feat_score ? vigil_value_num(s->score) : worker_feature(r, s, txnf,
		    p->feat_txn, p->feat_slot, p->feature, p->feature_len, &wk->ts[k].feat_hint);
		if (!v.present || v.str != NULL)
			continue;
		pv[k].present = true;
		pv[k].v = v.num;
		/* Sketches ignore NaN and infinities (its group is still made). */
		pv[k].finite = isfinite(v.num);
		if (pv[k].finite) {
			pv[k].key = batch_sketch_key(v.num);
			batch_sketch_prefetch_key(wk->ts[k].global, pv[k].key);
		}
		if (!p->grouped)
			continue;
		g = worker_feature(r, s, txnf, p->group_txn, p->group_slot, p->group_by,
		    p->group_by_len, &wk->ts[k].group_hint);
		if (!g.present)
			continue;
		klen = group_key(p, &g, key, sizeof key);
		if (klen == 0)
			continue;
		rv = batch_tstate_group(&wk->ts[k], key, klen, p->name, &pv[k].gsk, reterr);
		if (rv != VIGIL_OK)
			return rv;
		if (pv[k].finite)
			batch_sketch_prefetch_key(pv[k].gsk, pv[k].key);
	}
	return VIGIL_OK;
}

/* Stage 3 for the thresholds of pipeline slot i. */
static vigil_err
worker_thresholds(batch_worker *wk, uint32_t i, int label)
{
	const batch_run *r = wk->run;
	const batch_pval *pv = &wk->pvals[(size_t)i * r->nplans];
	vigil_err rv;

	for (uint32_t k = 0; k < r->nplans; k++) {
		if (!pv[k].present || !pv[k].finite)
			continue;
		rv = batch_sketch_add_key(wk->ts[k].global, pv[k].key, pv[k].v, label);
		if (rv != VIGIL_OK)
			return rv;
		if (pv[k].gsk != NULL) {
			rv = batch_sketch_add_key(pv[k].gsk, pv[k].key, pv[k].v, label);
			if (rv != VIGIL_OK)
				return rv;
		}
	}
	return VIGIL_OK;
}

/* Stage 1, as a record is read: keep it if it is this worker's, copy and
 * decode it into the next pipeline slot, hash its keys and prefetch their
 * index slots. The record's bytes are only valid until the next read, so
 * the slot's copy is what the lean decoding points into. */
static vigil_err
worker_stage(batch_worker *wk, const store_record *rec, const batch_entry *fed, bool *ret_kept,
    store_diag *reterr)
{
	batch_run *r = wk->run;
	store_scored_lean *s = &wk->lean[wk->npend];
	batch_payload *pl = &wk->payload[wk->npend];
	batch_pending *p = &wk->pend[wk->npend];
	const char *cid;
	const uint8_t *payload = rec->payload;
	size_t clen;
	uint64_t h;
	vigil_err rv;

	*ret_kept = false;
	if (r->nparts_total > 1 && fed == NULL) {
		/* Skip other workers' records before copying or decoding them. */
		rv = batch_scan_card_id(rec->payload, rec->len, &cid, &clen);
		if (rv == VIGIL_ENOTFOUND) {
			cid = "";
			clen = 0;
			rv = VIGIL_OK;
		}
		if (rv == VIGIL_OK) {
			h = XXH64(cid, clen, 0);
			if (h % r->nparts_total != wk->part)
				return VIGIL_OK;
		} else if (wk->index != 0) {
			/* Malformed: worker 0 alone decodes it to report the error once. */
			return VIGIL_OK;
		}
	}
	if (fed == NULL) {
		/* A fed record stays in its chunk until the pipeline is flushed;
		 * the reader's own buffer does not. */
		if (rec->len > pl->cap) {
			size_t ncap = pl->cap ? pl->cap : 4096;
			uint8_t *np;

			while (ncap < rec->len)
				ncap *= 2;
			np = realloc(pl->p, ncap);
			if (np == NULL)
				return VIGIL_ENOMEM;
			pl->p = np;
			pl->cap = ncap;
		}
		if (rec->len > 0)
			memcpy(pl->p, rec->payload, rec->len);
		payload = pl->p;
	}
	rv = store_scored_decode_lean(payload != NULL ? payload : (const uint8_t *)"", rec->len,
	    s, reterr);
	if (rv != VIGIL_OK) {
		if (r->opts.part_count > 1 && r->opts.part_index != 0)
			return VIGIL_OK; /* partition 0 reports it */
		wk->bad++;
		if (wk->bad_where[0] == '\0')
			snprintf(wk->bad_where, sizeof wk->bad_where, "%.60s+%llu: %.160s",
			    rec->segment, (unsigned long long)rec->offset, reterr->msg);
		return VIGIL_OK;
	}
	if (fed != NULL && fed->cid_len != BATCH_NO_CID && s->card_id.len == fed->cid_len &&
	    s->card_id.p == (const char *)payload + fed->cid_off) {
		p->ch = fed->ch; /* the reader routed it on these very bytes */
	} else {
		p->ch = XXH64(s->card_id.p, s->card_id.len, 0);
		if (p->ch % r->nparts_total != wk->part)
			return VIGIL_OK; /* the scan and the decoder disagree: trust the decoder */
	}
	if (s->card_id.len == 0 || s->merchant_id.len == 0) {
		/* vigild never archives these; a record without them has no key. */
		wk->bad++;
		if (wk->bad_where[0] == '\0')
			snprintf(wk->bad_where, sizeof wk->bad_where, "%.60s+%llu: %s is empty",
			    rec->segment, (unsigned long long)rec->offset,
			    s->card_id.len == 0 ? "txn.card_id" : "txn.merchant_id");
		return VIGIL_OK;
	}
	if (s->event_time_ms < r->w.from || s->event_time_ms >= r->w.as_of)
		return VIGIL_OK;
	p->seq = rec->seq;
	p->lh = XXH64(s->txn_id.p, s->txn_id.len, 0);
	p->mh = XXH64(s->merchant_id.p, s->merchant_id.len, 0);
	batch_index_prefetch(&r->label_ix, p->lh);
	batch_index_prefetch(&wk->card_ix, p->ch);
	batch_index_prefetch(&wk->merchant_ix, p->mh);
	if (s->terminal_id.len > 0) {
		p->th = XXH64(s->terminal_id.p, s->terminal_id.len, 0);
		batch_index_prefetch(&wk->terminal_ix, p->th);
	}
	wk->records++;
	if (rec->seq < wk->first_seq)
		wk->first_seq = rec->seq;
	if (rec->seq > wk->last_seq)
		wk->last_seq = rec->seq;
	*ret_kept = true;
	return VIGIL_OK;
}

/* Decimal places of a currency, remembering the last one asked: an archive
 * is mostly one or a few currencies. */
static int
worker_exponent(batch_worker *wk, const char *cur)
{
	if (wk->cur_exp == INT32_MIN || memcmp(wk->cur_currency, cur, sizeof wk->cur_currency) != 0) {
		memcpy(wk->cur_currency, cur, sizeof wk->cur_currency);
		wk->cur_exp = vigil_currency_exponent(cur);
	}
	return wk->cur_exp;
}

void
batch_train_opts_nightly(const batch_opts *opts, batch_train_opts *ret)
{
	batch_train_opts_default(ret);
	/* The nightly defaults: a night's training stays a few seconds on two
	 * cores (docs/model.md, "Training": 100k rows, eta 0.2, at most 200
	 * rounds, measured against 1M rows / eta 0.1 / 300 rounds). */
	ret->max_rows = 100000;
	ret->eta = 0.2;
	/* A leaf of a few frauds (one card's episode) gets a weight of
	 * G / (H + lambda) with H tiny at a 1% fraud rate: lambda 10 keeps it
	 * from memorising the card (docs/DETECTION.md: Sparkov AP). */
	ret->reg_lambda = 10;
	ret->max_rounds = 200;
	ret->early_stop = 20;
	ret->threads = opts->threads > 0 ? opts->threads : 1;
	if (opts->model_min_frauds > 0)
		ret->min_frauds = opts->model_min_frauds;
	if (opts->model_max_rows > 0)
		ret->max_rows = opts->model_max_rows;
}

/* A training set for the model's input layout. */
static vigil_err
train_set_new(batch_run *r, batch_trainset **ret, store_diag *reterr)
{
	const char *names[STORE_MODEL_MAX_INPUTS];
	const uint32_t *slots;
	uint32_t n = store_schema_model_inputs(&slots);

	for (uint32_t i = 0; i < n; i++)
		names[i] = store_schema_field(slots[i])->name;
	return batch_trainset_new(n, names, &r->topts, ret, reterr);
}

/*
 * One training row: the vector vigild archived when it scored the
 * transaction (not a recomputation: no train/serve skew) and its label as
 * known at as-of; a mature transaction without a fraud label is legitimate
 * unless labelled_only. Vectors of another build's layout are counted, not
 * read.
 */
static vigil_err
worker_train_row(batch_worker *wk, const store_scored_lean *s, const batch_pending *p,
    int label, store_diag *reterr)
{
	float x[STORE_MODEL_MAX_INPUTS];
	uint32_t n = 0;
	vigil_err rv;

	wk->train_seen++;
	if (s->model_in.len == 0) {
		wk->train_no_vector++;
		return VIGIL_OK;
	}
	if (s->model_layout != wk->run->layout) {
		wk->train_other_layout++;
		return VIGIL_OK;
	}
	if (label < 0 && wk->run->opts.labelled_only)
		return VIGIL_OK;
	rv = store_model_vec_decode(s->model_in.p, s->model_in.len, x, STORE_MODEL_MAX_INPUTS, &n);
	if (rv != VIGIL_OK || n != store_schema_model_inputs(&(const uint32_t *){ NULL })) {
		/* the layout id matched but the vector does not decode: damage */
		wk->train_other_layout++;
		return VIGIL_OK;
	}
	rv = batch_trainset_add(wk->train, x, label == 1, s->event_time_ms, p->lh);
	if (rv != VIGIL_OK)
		store_diag_set(reterr, "archive record %llu: training row: %s",
		    (unsigned long long)p->seq, vigil_strerror(rv));
	return rv;
}

/* Stage 3: applies pipeline slot i to the card, merchant, terminal and
 * sketches, in archive order. */
static vigil_err
worker_apply(batch_worker *wk, uint32_t i, store_diag *reterr)
{
	batch_run *r = wk->run;
	static const double scale[] = { 1, 10, 100, 1000, 10000 };
	const store_scored_lean *s = &wk->lean[i];
	const batch_pending *p = &wk->pend[i];
	batch_label *l;
	batch_card *c;
	batch_ent *ea;
	batch_event e;
	int exp;
	vigil_err rv;

	e.t = s->event_time_ms;
	exp = worker_exponent(wk, s->currency);
	/* The amount exactly as vigil_txn_amount computes it. */
	e.amount = (double)s->amount_minor / scale[exp < 0 ? 2 : exp];
	if (exp < 0 || exp > 3)
		exp = 2;
	e.amount_milli = s->amount_minor;
	for (int k = exp; k < 3; k++)
		e.amount_milli *= 10;
	e.txn_h = p->lh;
	e.merch_h = p->mh;
	e.card_h = p->ch;
	e.country = s->country;
	e.label = -1;
	l = batch_index_find(&r->label_ix, p->lh, s->txn_id.p, s->txn_id.len, label_keyof);
	if (l != NULL) {
		e.label = l->fraud ? 1 : 0;
		if (!atomic_exchange(&l->used, true))
			wk->labels_used++;
	}

	c = batch_index_find(&wk->card_ix, p->ch, s->card_id.p, s->card_id.len, card_keyof);
	if (c == NULL) {
		if (atomic_fetch_add(&r->entities, 1) >= r->max_entities) {
			store_diag_set(reterr, "archive record %llu: more than %llu cards (raise the cap)",
			    (unsigned long long)p->seq, (unsigned long long)r->max_entities);
			return VIGIL_ETOOBIG;
		}
		rv = vigil_vec_reserve(&wk->cards, 1); /* the push below cannot fail */
		if (rv != VIGIL_OK)
			return rv;
		c = batch_card_new(&wk->pool, s->card_id.p, s->card_id.len);
		if (c == NULL)
			return VIGIL_ENOMEM;
		rv = batch_index_put(&wk->card_ix, p->ch, c);
		if (rv != VIGIL_OK) {
			batch_card_free(c);
			return rv;
		}
		(void)vigil_vec_push(&wk->cards, &c);
	}
	rv = batch_card_add(c, &r->w, &e);
	if (rv != VIGIL_OK)
		return rv;
	if (wk->train != NULL && e.t >= r->train_from && e.t < r->train_to) {
		rv = worker_train_row(wk, s, p, e.label, reterr);
		if (rv != VIGIL_OK)
			return rv;
	}

	rv = batch_ent_get_h(&wk->merchants, &wk->merchant_ix, p->mh, s->merchant_id.p,
	    s->merchant_id.len, &ea);
	if (rv != VIGIL_OK)
		return rv;
	batch_ent_add(ea, &r->w, &e);
	if (s->terminal_id.len > 0) {
		rv = batch_ent_get_h(&wk->terminals, &wk->terminal_ix, p->th, s->terminal_id.p,
		    s->terminal_id.len, &ea);
		if (rv != VIGIL_OK)
			return rv;
		batch_ent_add(ea, &r->w, &e);
	}
	return worker_thresholds(wk, i, e.label);
}

/* Stage 2 for every pending record (prefetch the nodes the slots point to,
 * now that the slots are in cache), then stage 3 in order. */
static vigil_err
worker_flush(batch_worker *wk, store_diag *reterr)
{
	batch_run *r = wk->run;
	const batch_card *cards[BATCH_PIPE];
	vigil_err rv = VIGIL_OK;

	for (uint32_t i = 0; i < wk->npend; i++) {
		const batch_pending *p = &wk->pend[i];
		const char *n;

		/* The nodes' keys (stored before cards and entities, after
		 * labels) and the lines the record will update. */
		if ((n = batch_index_peek(&r->label_ix, p->lh)) != NULL)
			__builtin_prefetch(n + sizeof(batch_label));
		if ((n = batch_index_peek(&wk->card_ix, p->ch)) != NULL)
			batch_node_prefetch(n, wk->lean[i].card_id.len, BATCH_CARD_HOT_BYTES);
		cards[i] = (const batch_card *)n;
		if ((n = batch_index_peek(&wk->merchant_ix, p->mh)) != NULL)
			batch_node_prefetch(n, wk->lean[i].merchant_id.len, sizeof(batch_ent));
		if (wk->lean[i].terminal_id.len > 0 &&
		    (n = batch_index_peek(&wk->terminal_ix, p->th)) != NULL)
			batch_node_prefetch(n, wk->lean[i].terminal_id.len, sizeof(batch_ent));
		rv = worker_plan_values(wk, i, reterr);
		if (rv != VIGIL_OK)
			return rv;
	}
	/* The cards' own arrays (kept amounts, merchants), now that the nodes
	 * that point to them have had time to arrive. */
	for (uint32_t i = 0; i < wk->npend; i++) {
		const batch_card *c = cards[i];

		if (c == NULL)
			continue;
		for (uint32_t off = 0; off < 4 * 64 && off < c->cap_samples * sizeof(batch_sample);
		    off += 64)
			__builtin_prefetch((const char *)c->samples + off);
		for (uint32_t off = 0; off < 4 * 64 && off < c->cap_merch * sizeof(batch_merch_cnt);
		    off += 64)
			__builtin_prefetch((const char *)c->merch + off);
	}
	for (uint32_t i = 0; i < wk->npend && rv == VIGIL_OK; i++)
		rv = worker_apply(wk, i, reterr);
	wk->npend = 0;
	return rv;
}

static vigil_err
worker_record(batch_worker *wk, const store_record *rec, const batch_entry *fed,
    store_diag *reterr)
{
	bool kept;
	vigil_err rv;

	rv = worker_stage(wk, rec, fed, &kept, reterr);
	if (rv != VIGIL_OK || !kept)
		return rv;
	if (++wk->npend < BATCH_PIPE)
		return VIGIL_OK;
	return worker_flush(wk, reterr);
}

static void *
worker_main(void *arg)
{
	batch_worker *wk = arg;
	batch_run *r = wk->run;
	batch_src *rd = NULL;
	store_reader_stats st;
	store_record rec;
	batch_reader_ctx cc = { 0 };
	uint64_t n = 0;
	vigil_err rv;

	/* [from, as_of] as pass 1, so that both visit the same segments: this
	 * pass counts their corrupt stretches. Records at as_of are left out. */
	rv = batch_src_open(r->archive_dirs, r->narchive_dirs, r->w.from, r->w.as_of + 1,
	    on_corrupt, &cc, &rd, &wk->diag);
	if (rv != VIGIL_OK)
		goto out;
	for (;;) {
		if (atomic_load(&r->stop))
			break;
		rv = batch_src_next(rd, &rec, &wk->diag);
		if (rv == VIGIL_ENOTFOUND) {
			rv = VIGIL_OK;
			break;
		}
		if (rv != VIGIL_OK)
			goto out;
		if (wk->index == 0 && ++n % PROGRESS_EVERY == 0) {
			batch_src_get_stats(rd, &st);
			run_progress(r, r->pass1_records + n, r->pass1_bytes + st.bytes);
		}
		if (rec.type != STORE_REC_SCORE || rec.event_time_ms >= r->w.as_of)
			continue;
		rv = worker_record(wk, &rec, NULL, &wk->diag);
		if (rv != VIGIL_OK)
			goto out;
	}
	rv = worker_flush(wk, &wk->diag);
	if (rv != VIGIL_OK)
		goto out;
	wk->corrupt = cc.corrupt;
	snprintf(wk->corrupt_where, sizeof wk->corrupt_where, "%s", cc.where);
	if (wk->index == 0) /* every worker reads every record: one counts */
		r->sum.duplicates = batch_src_duplicates(rd);
out:
	batch_src_close(rd);
	wk->rv = rv;
	if (rv != VIGIL_OK)
		atomic_store(&r->stop, true);
	return NULL;
}

/* ---- Fed mode: one reader, T workers ---- */

static void
feed_stop(batch_run *r)
{
	pthread_mutex_lock(&r->feed.mu);
	atomic_store(&r->stop, true);
	pthread_cond_broadcast(&r->feed.not_empty);
	pthread_cond_broadcast(&r->feed.not_full);
	pthread_mutex_unlock(&r->feed.mu);
}

/* Applies every record of chunk c, then flushes the pipeline: the decoded
 * records point into c, which goes back to the reader afterwards. */
static vigil_err
worker_chunk(batch_worker *wk, const batch_chunk *c)
{
	size_t at = 0;
	vigil_err rv;

	while (at < c->used) {
		batch_entry e;
		store_record rec;

		memcpy(&e, c->buf + at, sizeof e);
		rec.type = STORE_REC_SCORE;
		rec.seq = e.seq;
		rec.event_time_ms = 0; /* unused: the decoded event time is */
		rec.payload = c->buf + at + sizeof e;
		rec.len = e.len;
		rec.segment = e.segment;
		rec.offset = e.offset;
		rv = worker_record(wk, &rec, &e, &wk->diag);
		if (rv != VIGIL_OK)
			return rv;
		at += (sizeof e + e.len + 7) & ~(size_t)7;
	}
	return worker_flush(wk, &wk->diag);
}

static void *
worker_fed_main(void *arg)
{
	batch_worker *wk = arg;
	batch_run *r = wk->run;
	batch_feed *f = &r->feed;
	batch_chunk *c;
	vigil_err rv = VIGIL_OK;

	for (;;) {
		pthread_mutex_lock(&f->mu);
		while (wk->q_head == NULL && !f->done && !atomic_load(&r->stop))
			pthread_cond_wait(&f->not_empty, &f->mu);
		if (atomic_load(&r->stop) || wk->q_head == NULL) {
			pthread_mutex_unlock(&f->mu);
			break;
		}
		c = wk->q_head;
		wk->q_head = c->next;
		if (wk->q_head == NULL)
			wk->q_tail = NULL;
		pthread_mutex_unlock(&f->mu);

		rv = worker_chunk(wk, c);

		pthread_mutex_lock(&f->mu);
		c->used = 0;
		c->next = wk->free_chunks;
		wk->free_chunks = c;
		wk->queued--;
		pthread_cond_broadcast(&f->not_full);
		pthread_mutex_unlock(&f->mu);
		if (rv != VIGIL_OK)
			break;
	}
	wk->rv = rv;
	if (rv != VIGIL_OK)
		feed_stop(r);
	return NULL;
}

/* Queues wk's filling chunk (if it holds anything). */
static void
feed_push(batch_run *r, batch_worker *wk)
{
	batch_chunk *c = wk->filling;

	if (c == NULL || c->used == 0)
		return;
	wk->filling = NULL;
	pthread_mutex_lock(&r->feed.mu);
	c->next = NULL;
	if (wk->q_tail != NULL)
		wk->q_tail->next = c;
	else
		wk->q_head = c;
	wk->q_tail = c;
	pthread_cond_broadcast(&r->feed.not_empty);
	pthread_mutex_unlock(&r->feed.mu);
}

/* A chunk for wk with room for need bytes: a returned one, or a new one
 * while fewer than BATCH_FEED_DEPTH are in flight, else waits for one. */
static vigil_err
feed_chunk(batch_run *r, batch_worker *wk, size_t need)
{
	batch_chunk *c = NULL;

	pthread_mutex_lock(&r->feed.mu);
	while (wk->free_chunks == NULL && wk->queued >= BATCH_FEED_DEPTH &&
	    !atomic_load(&r->stop))
		pthread_cond_wait(&r->feed.not_full, &r->feed.mu);
	if (atomic_load(&r->stop)) {
		pthread_mutex_unlock(&r->feed.mu);
		return VIGIL_ECLOSED;
	}
	if (wk->free_chunks != NULL) {
		c = wk->free_chunks;
		wk->free_chunks = c->next;
	}
	wk->queued++;
	pthread_mutex_unlock(&r->feed.mu);
	if (c == NULL) {
		c = calloc(1, sizeof *c);
		if (c == NULL)
			goto nomem;
	}
	if (c->cap < need) {
		size_t ncap = need > BATCH_CHUNK_BYTES ? need : BATCH_CHUNK_BYTES;
		uint8_t *nb = realloc(c->buf, ncap);

		if (nb == NULL)
			goto nomem;
		c->buf = nb;
		c->cap = ncap;
	}
	c->used = 0;
	wk->filling = c;
	return VIGIL_OK;
nomem:
	if (c != NULL) {
		free(c->buf);
		free(c);
	}
	pthread_mutex_lock(&r->feed.mu);
	wk->queued--;
	pthread_mutex_unlock(&r->feed.mu);
	return VIGIL_ENOMEM;
}

/* The segment name to store with a record: one copy per segment. */
static const char *
feed_segname(batch_run *r, const char *seg)
{
	batch_segname *n = r->feed.names;
	size_t len;

	if (n != NULL && strcmp(n->name, seg) == 0)
		return n->name;
	len = strlen(seg);
	/* several archives: the merge goes back and forth between segments */
	HASH_FIND(hh, r->feed.by_name, seg, len, n);
	if (n != NULL)
		return n->name;
	n = malloc(sizeof *n + len + 1);
	if (n == NULL)
		return NULL;
	memcpy(n->name, seg, len + 1);
	n->next = r->feed.names;
	r->feed.names = n;
	HASH_ADD(hh, r->feed.by_name, name[0], len, n);
	return n->name;
}

static vigil_err
feed_put(batch_run *r, batch_worker *wk, const store_record *rec, const char *seg,
    const char *cid, size_t clen, uint64_t ch)
{
	size_t need = (sizeof(batch_entry) + rec->len + 7) & ~(size_t)7;
	batch_entry e;
	vigil_err rv;

	if (wk->filling != NULL && wk->filling->cap - wk->filling->used < need)
		feed_push(r, wk);
	if (wk->filling == NULL) {
		rv = feed_chunk(r, wk, need);
		if (rv != VIGIL_OK)
			return rv;
	}
	memset(&e, 0, sizeof e);
	e.seq = rec->seq;
	e.offset = rec->offset;
	e.segment = seg;
	e.len = (uint32_t)rec->len;
	e.ch = ch;
	e.cid_off = cid != NULL ? (uint32_t)(cid - (const char *)rec->payload) : 0;
	e.cid_len = cid != NULL ? (uint32_t)clen : BATCH_NO_CID;
	memcpy(wk->filling->buf + wk->filling->used, &e, sizeof e);
	memcpy(wk->filling->buf + wk->filling->used + sizeof e, rec->payload, rec->len);
	wk->filling->used += need;
	return VIGIL_OK;
}

/* The reader: reads the window once and routes score records of this
 * partition to their worker (malformed ones to worker 0, which reports). */
static vigil_err
feed_read(batch_run *r, batch_reader_ctx *cc, store_diag *reterr)
{
	batch_src *rd = NULL;
	store_reader_stats st;
	store_record rec;
	uint64_t n = 0, pc = r->opts.part_count;
	vigil_err rv;

	/* [from, as_of] as pass 1 (worker_main) */
	rv = batch_src_open(r->archive_dirs, r->narchive_dirs, r->w.from, r->w.as_of + 1,
	    on_corrupt, cc, &rd, reterr);
	if (rv != VIGIL_OK)
		goto out;
	for (;;) {
		const char *cid, *seg;
		size_t clen = 0;
		uint64_t h, ch;
		uint32_t w = 0;

		if (atomic_load(&r->stop))
			break;
		rv = batch_src_next(rd, &rec, reterr);
		if (rv == VIGIL_ENOTFOUND) {
			rv = VIGIL_OK;
			break;
		}
		if (rv != VIGIL_OK)
			goto out;
		if (++n % PROGRESS_EVERY == 0) {
			batch_src_get_stats(rd, &st);
			run_progress(r, r->pass1_records + n, r->pass1_bytes + st.bytes);
		}
		if (rec.type != STORE_REC_SCORE || rec.event_time_ms >= r->w.as_of)
			continue;
		rv = batch_scan_card_id(rec.payload, rec.len, &cid, &clen);
		ch = 0;
		if (rv == VIGIL_ENOTFOUND) {
			h = XXH64("", 0, 0);
			cid = NULL; /* no id to match the decoder's against */
			rv = VIGIL_OK;
		} else if (rv == VIGIL_OK) {
			h = ch = XXH64(cid, clen, 0);
		} else {
			cid = NULL;
		}
		if (rv == VIGIL_OK) {
			/* Worker i owns hash % (N*T) == p + N*i (run_workers). */
			uint64_t k = h % r->nparts_total;

			if (pc == 1) {
				w = (uint32_t)k;
			} else {
				if (k % pc != r->opts.part_index)
					continue;
				w = (uint32_t)(k / pc);
			}
		}
		seg = feed_segname(r, rec.segment);
		if (seg == NULL) {
			rv = VIGIL_ENOMEM;
			goto out;
		}
		rv = feed_put(r, &r->workers[w], &rec, seg, cid, clen, ch);
		if (rv == VIGIL_ECLOSED) {
			rv = VIGIL_OK; /* a worker failed; its error is the one to report */
			break;
		}
		if (rv != VIGIL_OK)
			goto out;
	}
	for (uint32_t i = 0; i < r->nworkers; i++)
		feed_push(r, &r->workers[i]);
	r->sum.duplicates = batch_src_duplicates(rd);
out:
	batch_src_close(rd);
	return rv;
}

static void
feed_fini(batch_run *r)
{
	batch_segname *n, *next;

	if (!r->feed_ready)
		return;
	for (uint32_t i = 0; i < r->nworkers; i++) {
		batch_chunk *lists[3] = { r->workers[i].filling, r->workers[i].q_head,
			r->workers[i].free_chunks };

		for (int k = 0; k < 3; k++) {
			for (batch_chunk *c = lists[k], *cn; c != NULL; c = cn) {
				cn = c->next;
				free(c->buf);
				free(c);
				if (k == 0)
					break; /* filling is a single chunk */
			}
		}
		r->workers[i].filling = r->workers[i].q_head = r->workers[i].free_chunks = NULL;
		r->workers[i].q_tail = NULL;
	}
	HASH_CLEAR(hh, r->feed.by_name);
	for (n = r->feed.names; n != NULL; n = next) {
		next = n->next;
		free(n);
	}
	r->feed.names = NULL;
	pthread_cond_destroy(&r->feed.not_empty);
	pthread_cond_destroy(&r->feed.not_full);
	pthread_mutex_destroy(&r->feed.mu);
	r->feed_ready = false;
}

/* Runs the workers on threads fed by this thread reading the archive. */
static vigil_err
run_fed(batch_run *r, store_diag *reterr)
{
	batch_reader_ctx cc = { 0 };
	uint32_t started = 0;
	vigil_err rv = VIGIL_OK, rrv;

	if (pthread_mutex_init(&r->feed.mu, NULL) != 0)
		return VIGIL_ENOMEM;
	pthread_cond_init(&r->feed.not_empty, NULL);
	pthread_cond_init(&r->feed.not_full, NULL);
	r->feed_ready = true;
	for (uint32_t i = 0; i < r->nworkers; i++) {
		if (pthread_create(&r->workers[i].tid, NULL, worker_fed_main, &r->workers[i]) != 0) {
			store_diag_set(reterr, "cannot start worker thread %u: %s", i, strerror(errno));
			rv = VIGIL_ENOMEM;
			feed_stop(r);
			break;
		}
		started++;
	}
	rrv = rv == VIGIL_OK ? feed_read(r, &cc, reterr) : VIGIL_OK;
	if (rrv != VIGIL_OK) {
		rv = rrv;
		feed_stop(r);
	}
	pthread_mutex_lock(&r->feed.mu);
	r->feed.done = true;
	pthread_cond_broadcast(&r->feed.not_empty);
	pthread_mutex_unlock(&r->feed.mu);
	for (uint32_t i = 0; i < started; i++)
		pthread_join(r->workers[i].tid, NULL);
	/* The reader saw every corrupt stretch once; summed as worker 0's. */
	r->workers[0].corrupt = cc.corrupt;
	snprintf(r->workers[0].corrupt_where, sizeof r->workers[0].corrupt_where, "%s", cc.where);
	return rv;
}

static uint64_t
archive_bytes(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	struct stat sb;
	uint64_t total = 0;

	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (fstatat(dirfd(d), de->d_name, &sb, 0) == 0 && S_ISREG(sb.st_mode))
			total += (uint64_t)sb.st_size;
	}
	closedir(d);
	return total;
}

void
batch_run_fini(batch_run *r)
{
	feed_fini(r); /* before the workers, whose chunk lists it walks */
	if (r->workers != NULL) {
		for (uint32_t i = 0; i < r->nworkers; i++)
			batch_worker_fini(&r->workers[i]);
		free(r->workers);
	}
	labels_free(r);
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
		rv = plans_from_prog(r, reterr);
		if (rv != VIGIL_OK)
			return rv;
	}
	return VIGIL_OK;
}

/*
 * train_every_ms: keeps the current generation's model and meta in r when
 * the model is young enough to carry over (its meta's as-of less than
 * train_every_ms before this as-of, not after it, and this build's input
 * layout); batch_run_train then decides (model_carry_put). A model that
 * cannot be read or whose meta does not say when it was trained is not
 * kept: this run trains, as without the option.
 */
static void
model_carry_decide(batch_run *r)
{
	void *json = NULL, *meta = NULL;
	size_t json_len = 0, meta_len = 0;
	json_t *m = NULL;
	json_int_t as_of;
	const char *layout;
	char want[24];

	if (r->opts.train_every_ms <= 0 || r->opts.model_off || r->prev == NULL || !r->train_on)
		return;
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
	    r->w.as_of - as_of >= r->opts.train_every_ms)
		goto out;
	r->carry_json = json;
	r->carry_json_len = json_len;
	r->carry_meta = m;
	r->carry_meta_raw = meta;
	r->carry_meta_len = meta_len;
	json = meta = NULL;
	m = NULL;
out:
	json_decref(m);
	free(json);
	free(meta);
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
	model_carry_decide(r);
	return VIGIL_OK;
}

static vigil_err
run_workers(batch_run *r, store_diag *reterr)
{
	uint32_t t = r->opts.threads;
	vigil_err rv = VIGIL_OK;

	r->nparts_total = (uint64_t)r->opts.part_count * t;
	r->workers = calloc(t, sizeof *r->workers);
	if (r->workers == NULL)
		return VIGIL_ENOMEM;
	r->nworkers = t;
	for (uint32_t i = 0; i < t; i++) {
		batch_worker *wk = &r->workers[i];

		wk->run = r;
		wk->index = i;
		vigil_vec_init(&wk->cards, sizeof(batch_card *), r->max_entities);
		/* Partition p of N, thread i of T: hash % (N*T) == p + N*i, so the
		 * union over threads is exactly partition p. */
		wk->part = r->opts.part_index + (uint64_t)r->opts.part_count * i;
		wk->first_seq = UINT64_MAX;
		wk->lean = malloc(BATCH_PIPE * sizeof *wk->lean);
		wk->cur_exp = INT32_MIN;
		wk->pvals = calloc((size_t)BATCH_PIPE * (r->nplans ? r->nplans : 1),
		    sizeof *wk->pvals);
		if (wk->pvals == NULL)
			return VIGIL_ENOMEM;
		wk->nts = r->nplans;
		wk->ts = calloc(r->nplans ? r->nplans : 1, sizeof *wk->ts);
		if (wk->lean == NULL || wk->ts == NULL)
			return VIGIL_ENOMEM;
		for (uint32_t k = 0; k < r->nplans; k++) {
			wk->ts[k].global = batch_sketch_new();
			if (wk->ts[k].global == NULL)
				return VIGIL_ENOMEM;
		}
		if (r->train_on) {
			rv = train_set_new(r, &wk->train, reterr);
			if (rv != VIGIL_OK)
				return rv;
		}
	}
	if (t == 1)
		worker_main(&r->workers[0]);
	else
		rv = run_fed(r, reterr);
	if (rv != VIGIL_OK)
		return rv;
	for (uint32_t i = 0; i < t; i++) {
		batch_worker *wk = &r->workers[i];

		if (wk->rv != VIGIL_OK) {
			*reterr = wk->diag;
			return wk->rv;
		}
	}
	for (uint32_t i = 0; i < t; i++) {
		batch_worker *wk = &r->workers[i];

		r->sum.records_read += wk->records;
		r->sum.records_bad += wk->bad;
		r->sum.labels_used += wk->labels_used;
		if (wk->first_seq < r->sum.first_seq)
			r->sum.first_seq = wk->first_seq;
		if (wk->last_seq > r->sum.last_seq)
			r->sum.last_seq = wk->last_seq;
		if (r->sum.bad_where[0] == '\0' && wk->bad_where[0] != '\0')
			snprintf(r->sum.bad_where, sizeof r->sum.bad_where, "%s", wk->bad_where);
	}
	/* Corrupt stretches are counted once, by this pass (pass 1 skips
	 * frames unchecked and reports none). */
	r->sum.corrupt_records += r->workers[0].corrupt;
	if (r->workers[0].corrupt > 0 && r->sum.bad_where[0] == '\0')
		snprintf(r->sum.bad_where, sizeof r->sum.bad_where, "%s",
		    r->workers[0].corrupt_where);
	return VIGIL_OK;
}

/* Passes 1 and 2 (shared by a full run and a partition run). */
vigil_err
batch_run_aggregate(batch_run *r, store_diag *reterr)
{
	vigil_err rv;

	r->bytes_est = 0;
	for (uint32_t i = 0; i < r->narchive_dirs; i++)
		r->bytes_est += 2 * archive_bytes(r->archive_dirs[i]);
	rv = pass_labels(r, reterr);
	if (rv != VIGIL_OK)
		return rv;
	return run_workers(r, reterr);
}

/* ---- Writing ---- */

/* Cards sort by key (strcmp order). The first 16 bytes of each key,
 * NUL-padded and big-endian, decide most comparisons without touching the
 * scattered keys themselves. */
typedef struct card_sort_ent {
	uint64_t    pre0, pre1;
	batch_card *c;
} card_sort_ent;

static uint64_t
load_be64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static int
card_sort_cmp(const void *a, const void *b)
{
	const card_sort_ent *x = a, *y = b;
	size_t lx;

	if (x->pre0 != y->pre0)
		return x->pre0 < y->pre0 ? -1 : 1;
	if (x->pre1 != y->pre1)
		return x->pre1 < y->pre1 ? -1 : 1;
	/* Equal prefixes: both keys are at least 16 bytes long (keys are
	 * distinct and hold no NUL), or equal. */
	lx = strnlen(x->c->key, 16);
	if (lx < 16)
		return 0;
	return strcmp(x->c->key + 16, y->c->key + 16);
}

/* All workers' cards in key order in a new array (free()). */
vigil_err
batch_run_sorted_cards(batch_run *r, batch_card ***ret_v, size_t *ret_n)
{
	size_t n = 0, i = 0;
	batch_card **v, *c;
	card_sort_ent *se;

	for (uint32_t w = 0; w < r->nworkers; w++)
		n += r->workers[w].cards.len;
	v = malloc((n ? n : 1) * sizeof *v);
	se = malloc((n ? n : 1) * sizeof *se);
	if (v == NULL || se == NULL) {
		free(v);
		free(se);
		return VIGIL_ENOMEM;
	}
	for (uint32_t w = 0; w < r->nworkers; w++) {
		for (size_t k = 0; k < r->workers[w].cards.len; k++, i++) {
			uint8_t pre[16] = { 0 };

			c = ((batch_card **)r->workers[w].cards.data)[k];
			memcpy(pre, c->key, strnlen(c->key, sizeof pre));
			se[i].pre0 = load_be64(pre);
			se[i].pre1 = load_be64(pre + 8);
			se[i].c = c;
		}
	}
	qsort(se, n, sizeof *se, card_sort_cmp);
	for (i = 0; i < n; i++)
		v[i] = se[i].c;
	free(se);
	*ret_v = v;
	*ret_n = n;
	return VIGIL_OK;
}

/* Moves every worker's merchants, terminals and sketches into worker 0. */
vigil_err
batch_run_merge_workers(batch_run *r, store_diag *reterr)
{
	batch_worker *dst = &r->workers[0];
	vigil_err rv;

	for (uint32_t w = 1; w < r->nworkers; w++) {
		batch_worker *src = &r->workers[w];
		batch_ent_node *e, *et;
		batch_group *g, *gt;

		for (int k = 0; k < 2; k++) {
			batch_ent_node **sm = k ? &src->terminals : &src->merchants;
			batch_ent_node **dm = k ? &dst->terminals : &dst->merchants;
			batch_index *dix = k ? &dst->terminal_ix : &dst->merchant_ix;

			HASH_ITER(hh, *sm, e, et) {
				batch_ent *a;

				rv = batch_ent_get(dm, dix, e->key, strlen(e->key), &a);
				if (rv != VIGIL_OK)
					return rv;
				batch_ent_merge(a, &e->acc);
				HASH_DEL(*sm, e);
				batch_ent_node_free(e);
			}
		}
		for (uint32_t i = 0; i < r->nplans; i++) {
			dst->ts[i].left_no_model += src->ts[i].left_no_model;
			dst->ts[i].left_immature += src->ts[i].left_immature;
			rv = batch_sketch_merge(dst->ts[i].global, src->ts[i].global);
			if (rv != VIGIL_OK)
				return rv;
			HASH_ITER(hh, src->ts[i].groups, g, gt) {
				batch_sketch *sk;

				rv = batch_tstate_group(&dst->ts[i], g->key, strlen(g->key),
				    r->plans[i].name, &sk, reterr);
				if (rv != VIGIL_OK)
					return rv;
				rv = batch_sketch_merge(sk, g->sk);
				if (rv != VIGIL_OK)
					return rv;
			}
		}
	}
	return VIGIL_OK;
}

static int
ent_cmp(batch_ent_node *a, batch_ent_node *b)
{
	return strcmp(a->key, b->key);
}

static int
group_cmp(batch_group *a, batch_group *b)
{
	return strcmp(a->key, b->key);
}

static vigil_err
put_entities(batch_run *r, batch_ent_node **map, bool terminals, store_diag *reterr)
{
	batch_ent_node *e;
	store_entity_profile p;
	vigil_err rv;

	HASH_SRT(hh, *map, ent_cmp);
	for (e = *map; e != NULL; e = e->hh.next) {
		batch_ent_profile(&e->acc, r->prior, &r->reported, &p);
		rv = terminals ? store_genw_put_terminal(r->gw, e->key, &p)
		               : store_genw_put_merchant(r->gw, e->key, &p);
		if (rv != VIGIL_OK) {
			store_diag_set(reterr, "%s/features: generation %llu: writing %s %s: %s",
			    r->opts.datadir, (unsigned long long)store_genw_generation(r->gw),
			    terminals ? "terminal" : "merchant", e->key, vigil_strerror(rv));
			return rv;
		}
		if (terminals)
			r->sum.terminals++;
		else
			r->sum.merchants++;
	}
	return VIGIL_OK;
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

static vigil_err
put_thresholds(batch_run *r, batch_tstate *ts, store_diag *reterr)
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
	return VIGIL_OK;
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
static vigil_err
carry_thresholds(batch_run *r, store_diag *reterr)
{
	carry_ctx c = { r, VIGIL_OK };
	vigil_err rv;

	if (r->prev == NULL)
		return VIGIL_OK;
	rv = store_gen_thresholds_each(r->prev, carry_one, &c);
	if (rv == VIGIL_OK)
		rv = c.rv;
	if (rv != VIGIL_OK)
		store_diag_set(reterr, "%s/features: generation %llu: carrying thresholds over: %s",
		    r->opts.datadir, (unsigned long long)store_genw_generation(r->gw),
		    vigil_strerror(rv));
	return rv;
}

/* Merchants, terminals, thresholds, meta, commit. Cards are already in. */
vigil_err
batch_run_finish(batch_run *r, batch_ent_node **merchants, batch_ent_node **terminals,
    batch_tstate *ts, store_diag *reterr)
{
	store_gen_meta meta;
	batch_ent_node *e;
	uint64_t fr = 0, cnt = 0;
	json_t *js = NULL;
	char *txt = NULL;
	vigil_err rv;

	/* The smoothing prior: the global fraud rate of the last 90 days. */
	for (e = *merchants; e != NULL; e = e->hh.next) {
		fr += e->acc.fraud[BATCH_W90];
		cnt += e->acc.count[BATCH_W90];
	}
	r->prior = cnt ? (double)fr / (double)cnt : 0.0;
	batch_reported_sort(&r->reported); /* every card is in (batch_card_put) */
	rv = put_entities(r, merchants, false, reterr);
	if (rv != VIGIL_OK)
		goto out;
	rv = put_entities(r, terminals, true, reterr);
	if (rv != VIGIL_OK)
		goto out;
	/* With a rule file its thresholds are tuned (even if it has none);
	 * without one the previous generation's values carry over. */
	rv = r->sum.rules_hash[0] != '\0' ? put_thresholds(r, ts, reterr)
	                                  : carry_thresholds(r, reterr);
	if (rv != VIGIL_OK)
		goto out;

	if (r->sum.records_read == 0) {
		/* Built, but from nothing: say so (a wrong as-of or archive). */
		size_t k = strlen(r->sum.warning);
		char from[16], to[16];

		vigil_date_format(r->w.from, from, sizeof from);
		vigil_date_format(r->w.as_of, to, sizeof to);
		snprintf(r->sum.warning + k, sizeof r->sum.warning - k, "%sno transaction in "
		    "the window [%s, %s): the generation is empty (every card is new to "
		    "vigild%s)", k ? "; " : "", from, to, r->prog != NULL ?
		    ", tuned thresholds at their fallbacks" : "");
	}
	if (r->sum.first_seq == UINT64_MAX)
		r->sum.first_seq = 0;
	r->sum.generation = store_genw_generation(r->gw);
	r->sum.labels_unmatched = r->sum.labels_read >= r->sum.labels_used ?
	    r->sum.labels_read - r->sum.labels_used : 0;
	r->sum.duration_s = (double)(vigil_mono_ns() - r->t0) / 1e9;
	memset(&meta, 0, sizeof meta);
	meta.generation = r->sum.generation;
	meta.as_of_ms = r->sum.as_of_ms;
	meta.window_ms = r->sum.window_ms;
	meta.first_seq = r->sum.first_seq;
	meta.last_seq = r->sum.last_seq;
	meta.schema_version = store_schema_nfields();
	meta.built_at_ms = vigil_now_ms();
	js = batch_summary_json(&r->sum);
	if (js == NULL) {
		rv = VIGIL_ENOMEM;
		goto out;
	}
	txt = json_dumps(js, JSON_COMPACT | JSON_SORT_KEYS);
	if (txt != NULL && strlen(txt) >= sizeof meta.summary_json) {
		/* Too many thresholds to fit: keep the totals, drop the detail. */
		free(txt);
		json_object_del(js, "thresholds");
		txt = json_dumps(js, JSON_COMPACT | JSON_SORT_KEYS);
	}
	if (txt == NULL) {
		rv = VIGIL_ENOMEM;
		goto out;
	}
	snprintf(meta.summary_json, sizeof meta.summary_json, "%s", txt);
	rv = store_genw_commit(r->gw, &meta, r->opts.keep, reterr);
	r->gw = NULL; /* commit frees it, on success or failure */
	if (rv == VIGIL_OK && reterr->msg[0] != '\0') {
		/* Committed, but an old generation could not be pruned: the
		 * caller must hear of it (disk space), the run still succeeded. */
		size_t k = strlen(r->sum.warning);

		snprintf(r->sum.warning + k, sizeof r->sum.warning - k, "%s%s", k ? "; " : "",
		    reterr->msg);
		reterr->msg[0] = '\0';
	}
out:
	free(txt);
	json_decref(js);
	return rv;
}

/*
 * card.first_seen is the card's first transaction in the archive, and the
 * window alone only knows the first one inside it: the previous
 * generation's value is kept when it is earlier, so a card's age keeps
 * growing across rebuilds for as long as the card has a transaction in
 * every window (features.md). A previous value that cannot be read stops the
 * carrying for the rest of the run and is noted in the summary; the rebuild
 * goes on, since it is what replaces a damaged generation.
 */
vigil_err
batch_card_put(batch_run *r, const char *key, store_card_profile *p)
{
	store_card_profile old;
	vigil_err rv;

	if (r->prev != NULL && !r->prev_cards_off) {
		rv = r->prev_cards != NULL ? VIGIL_OK : store_gen_cards_open(r->prev, &r->prev_cards);
		if (rv == VIGIL_OK)
			rv = store_gen_cards_get(r->prev_cards, key, &old);
		if (rv == VIGIL_OK && old.first_seen_ms > 0 &&
		    (p->first_seen_ms == 0 || old.first_seen_ms < p->first_seen_ms)) {
			p->first_seen_ms = old.first_seen_ms;
			r->sum.first_seen_carried++;
		} else if (rv != VIGIL_OK && rv != VIGIL_ENOTFOUND) {
			store_gen_meta meta;

			(void)store_gen_meta_get(r->prev, &meta);
			r->prev_cards_off = true;
			snprintf(r->sum.first_seen_note, sizeof r->sum.first_seen_note,
			    "previous generation %llu: card %.64s: %s; first_seen of this card "
			    "and the ones after it comes from this window only",
			    (unsigned long long)meta.generation, key, vigil_strerror(rv));
		}
	}
	rv = store_genw_put_card(r->gw, key, p);
	if (rv == VIGIL_OK)
		r->sum.cards++;
	/* The cards the merchants' and terminals' samples are looked up in
	 * (reported_card_share_30d). */
	if (rv == VIGIL_OK && p->fraud_count_90d > 0)
		rv = batch_reported_add(&r->reported, XXH64(key, strlen(key), 0));
	return rv;
}

static vigil_err
put_cards(batch_run *r, store_diag *reterr)
{
	batch_card **v = NULL;
	store_card_profile p;
	size_t n = 0;
	vigil_err rv;

	rv = batch_run_sorted_cards(r, &v, &n);
	if (rv != VIGIL_OK)
		return rv;
	for (size_t i = 0; i < n; i++) {
		batch_cards_prefetch(v, i, n);
		batch_card_profile(v[i], &p);
		rv = batch_card_put(r, v[i]->key, &p);
		if (rv != VIGIL_OK) {
			store_diag_set(reterr, "%s/features: generation %llu: writing card %s: %s",
			    r->opts.datadir, (unsigned long long)store_genw_generation(r->gw),
			    v[i]->key, vigil_strerror(rv));
			break;
		}
	}
	free(v);
	return rv;
}

void
batch_run_state_bytes(batch_run *r)
{
	uint64_t b = 0;

	for (uint32_t w = 0; w < r->nworkers; w++) {
		batch_worker *wk = &r->workers[w];

		for (size_t k = 0; k < wk->cards.len; k++)
			b += batch_card_bytes(((batch_card **)wk->cards.data)[k]) +
			    16; /* + index slots and list */
		b += (uint64_t)(HASH_COUNT(wk->merchants) + HASH_COUNT(wk->terminals)) *
		    (sizeof(batch_ent_node) + 32);
		for (uint32_t i = 0; i < wk->nts; i++) {
			b += batch_sketch_nbuckets(wk->ts[i].global) * 96;
			b += (uint64_t)wk->ts[i].ngroups * 256;
		}
	}
	b += r->nlabels * (sizeof(batch_label) + 40);
	r->sum.peak_state_bytes = b;
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
static vigil_err
train_collect(batch_run *r, store_diag *reterr)
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
 * The model model_carry_decide kept is carried over unless the training
 * window now holds BATCH_RETRAIN_GROWTH times the frauds it was trained on
 * or more (a young deployment's models are retrained as their labels
 * grow). *ret_carried: whether it was; its blobs then go into the new
 * generation as they are, and the summary's figures are its meta's.
 */
#define BATCH_RETRAIN_GROWTH 1.25

static vigil_err
model_carry_put(batch_run *r, bool *ret_carried, store_diag *reterr)
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
	if ((double)st.frauds >= BATCH_RETRAIN_GROWTH * (double)frauds ||
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
	r->sum.model.why_not[0] = '\0';
	return VIGIL_OK;
}

vigil_err
batch_run_train(batch_run *r, store_diag *reterr)
{
	batch_model_report rep;
	char *json = NULL, *meta = NULL;
	size_t len = 0;
	vigil_err rv = VIGIL_OK;

	rv = train_collect(r, reterr);
	if (rv != VIGIL_OK)
		return rv;
	if (r->carry_json != NULL) {
		bool carried;

		rv = model_carry_put(r, &carried, reterr);
		if (rv != VIGIL_OK || carried)
			return rv;
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
		snprintf(r->sum.model.why_not, sizeof r->sum.model.why_not, "%s", rep.why_not);
		return VIGIL_OK;
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

vigil_err
batch_rebuild(const batch_opts *opts, batch_summary *ret_summary, store_diag *reterr)
{
	batch_run r;
	store_diag scratch;
	vigil_err rv;

	if (reterr == NULL)
		reterr = &scratch;
	reterr->msg[0] = '\0';
	rv = batch_run_init(&r, opts, reterr);
	if (rv != VIGIL_OK)
		goto out;
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
		rv = train_collect(&r, reterr);
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
		r.sum.partial = true;
		r.sum.labels_unmatched = r.sum.labels_read >= r.sum.labels_used ?
		    r.sum.labels_read - r.sum.labels_used : 0;
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
	rv = put_cards(&r, reterr);
	if (rv != VIGIL_OK)
		goto out;
	rv = batch_run_merge_workers(&r, reterr);
	if (rv != VIGIL_OK)
		goto out;
	rv = batch_run_train(&r, reterr);
	if (rv != VIGIL_OK)
		goto out;
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
