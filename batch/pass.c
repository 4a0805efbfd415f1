/* SPDX-License-Identifier: MIT */
/*
 * batch/pass.c - the two passes over the archive of a rebuild (rebuild.c
 * has the order of the steps): pass 1 reads the labels known at as-of,
 * pass 2 hands each score record to the worker that owns its card and
 * aggregates it (cards, merchants, terminals, threshold sketches, training
 * rows), with one thread reading for itself or one reader feeding T
 * workers in chunks.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
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
#include "vec.h"

#define PROGRESS_EVERY 65536

static const char *
ent_keyof(const void *n)
{
	return ((const batch_ent_node *)n)->key;
}

/* int.h: the first bad record's place, as every batch summary spells it. */
void
batch_bad_where(char *where, size_t len, const char *seg, uint64_t off, const char *what)
{
	if (where[0] == '\0')
		snprintf(where, len, "%.60s:%" PRIu64 ": %.160s", seg, off, what);
}

/* Whether place a ("SEGMENT:OFFSET: ...") comes before place b. */
static bool
bad_before(const char *a, const char *b)
{
	const char *ca = strchr(a, ':'), *cb = strchr(b, ':');
	size_t la = ca != NULL ? (size_t)(ca - a) : strlen(a);
	size_t lb = cb != NULL ? (size_t)(cb - b) : strlen(b);
	int c = memcmp(a, b, la < lb ? la : lb);

	if (c != 0 || la != lb)
		return c != 0 ? c < 0 : la < lb;
	return strtoull(a + la + (ca != NULL), NULL, 10) < strtoull(b + lb + (cb != NULL), NULL, 10);
}

/* int.h */
void
batch_bad_keep(char *where, size_t len, const char *cand)
{
	if (cand[0] != '\0' && (where[0] == '\0' || bad_before(cand, where)))
		snprintf(where, len, "%s", cand);
}

/* ---- Pass 1: labels ---- */

static void
on_corrupt(void *arg, const char *segment, uint64_t offset, uint64_t skipped,
    const char *what)
{
	batch_reader_ctx *c = arg;

	c->corrupt++;
	if (c->where[0] == '\0')
		store_corrupt_text(c->where, sizeof c->where, segment, offset, skipped, what);
}

static void
run_progress(batch_run *r, uint64_t records, uint64_t bytes_done)
{
	if (r->opts.progress_bytes != NULL)
		r->opts.progress_bytes(r->opts.progress_arg, records, bytes_done, r->bytes_est);
	else if (r->opts.progress != NULL)
		r->opts.progress(r->opts.progress_arg, records, r->bytes_est);
}

void
batch_labels_free(batch_run *r)
{
	batch_index_fini(&r->label_ix);
	batch_pool_fini(&r->label_pool); /* every label at once */
}

vigil_err
batch_label_add(batch_run *r, const char *txn_id, int64_t t, bool fraud, const char *segment,
    uint64_t offset, store_diag *reterr)
{
	batch_label *l;
	uint64_t lh;
	size_t len;

	if (t > r->w.as_of) {
		r->sum.labels_future++;
		return VIGIL_OK;
	}
	len = strlen(txn_id);
	lh = batch_index_hash(txn_id, len);
	l = batch_index_find(&r->label_ix, lh, txn_id, len, batch_label_keyof);
	if (l == NULL) {
		vigil_err rv;

		if (r->nlabels >= r->max_labels) {
			store_diag_set(reterr, "%s:%llu: more than %llu labelled transactions "
			    "(raise the cap)", segment, (unsigned long long)offset,
			    (unsigned long long)r->max_labels);
			return VIGIL_ETOOBIG;
		}
		l = batch_pool_alloc(&r->label_pool, sizeof *l + len + 1);
		if (l == NULL)
			return VIGIL_ENOMEM;
		memcpy(l->txn_id, txn_id, len + 1);
		l->time = t;
		l->fraud = fraud;
		rv = batch_index_put(&r->label_ix, lh, l);
		if (rv != VIGIL_OK)
			return rv; /* l goes with the pool */
		r->nlabels++;
	} else if (t > l->time || (t == l->time && fraud)) {
		/* The latest label known at as_of wins; of two at the same
		 * time, fraud (feeds stamp whole days: a chargeback and its
		 * reversal can tie). Never archive order: the labels, and so
		 * the model, must not depend on the order labels arrived in. */
		l->time = t;
		l->fraud = fraud;
	}
	return VIGIL_OK;
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
		int64_t t;

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
			batch_bad_where(r->sum.bad_where, sizeof r->sum.bad_where, rec.segment,
			    rec.offset, reterr->msg);
			continue;
		}
		t = lab.label_time_ms > 0 ? lab.label_time_ms : rec.event_time_ms;
		rv = batch_label_add(r, lab.txn_id, t, lab.fraud, rec.segment, rec.offset, reterr);
		if (rv != VIGIL_OK)
			goto out;
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
	vigil_vec_fini(&wk->ids);
	vigil_vec_fini(&wk->idh);
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
		HASH_ADD_KEYPTR(hh, *map, e->key, len, e);
		if (!VIGIL_HASH_ADDED(e)) {
			batch_ent_node_free(e);
			return VIGIL_ENOMEM;
		}
		rv = batch_index_put(ix, h, e);
		if (rv != VIGIL_OK) {
			HASH_DEL(*map, e);
			batch_ent_node_free(e);
			return rv;
		}
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
		rv = vigil_array_reserve(&pl->p, &pl->cap, rec->len, 1, 4096, SIZE_MAX);
		if (rv != VIGIL_OK)
			return rv;
		if (rec->len > 0)
			memcpy(pl->p, rec->payload, rec->len);
		payload = pl->p;
	}
	rv = store_scored_decode_lean(payload != NULL ? payload : (const uint8_t *)"", rec->len,
	    s, reterr);
	if (rv != VIGIL_OK) {
		const char *c2;
		size_t l2;
		vigil_err srv = batch_scan_card_id(payload != NULL ? payload : (const uint8_t *)"",
		    rec->len, &c2, &l2);

		/* Routed by its card id (or by the empty one), it reached its
		 * owner alone, which reports it; one the scan cannot read
		 * reached every partition's worker 0: partition 0 reports it. */
		if (srv != VIGIL_OK && srv != VIGIL_ENOTFOUND && r->opts.part_count > 1 &&
		    r->opts.part_index != 0)
			return VIGIL_OK;
		wk->bad++;
		batch_bad_where(wk->bad_where, sizeof wk->bad_where, rec->segment, rec->offset,
		    reterr->msg);
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
		batch_bad_where(wk->bad_where, sizeof wk->bad_where, rec->segment, rec->offset,
		    s->card_id.len == 0 ? "txn.card_id is empty" : "txn.merchant_id is empty");
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
	if (wk->run->frauds_only && label != 1)
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
	if (exp < 0)
		exp = 2;
	e.amount_milli = s->amount_minor;
	for (int k = exp; k < 3; k++)
		e.amount_milli *= 10;
	if (exp > 3) /* CLF, UYW: to the nearest thousandth, not as 2 decimals */
		e.amount_milli = s->amount_minor / 10 + (s->amount_minor % 10 >= 5);
	e.txn_h = p->lh;
	e.merch_h = p->mh;
	e.card_h = p->ch;
	e.country = s->country;
	e.label = -1;
	l = batch_index_find(&r->label_ix, p->lh, s->txn_id.p, s->txn_id.len, batch_label_keyof);
	if (l != NULL) {
		e.label = l->fraud ? 1 : 0;
		if (!atomic_exchange(&l->used, true))
			wk->labels_used++;
	}
	if (r->collect_ids) {
		/* a day aggregate's transactions: their labels decide its reuse */
		if (vigil_vec_append(&wk->ids, s->txn_id.p, s->txn_id.len) != VIGIL_OK ||
		    vigil_vec_push(&wk->ids, "") != VIGIL_OK || vigil_vec_push(&wk->idh, &p->lh) != VIGIL_OK)
			return VIGIL_ENOMEM;
		if (l != NULL)
			wk->label_digest += batch_label_mix(p->lh, l->fraud);
	}

	c = batch_index_find(&wk->card_ix, p->ch, s->card_id.p, s->card_id.len, batch_card_keyof);
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

/* A merchant's or terminal's node: its key, its counters and the last line
 * of its card sample, what batch_ent_add reads unless a card enters the
 * sample (the whole node is 10 lines, and the core tracks only so many
 * misses at once). */
static inline void
ent_prefetch(const char *n, size_t keylen)
{
	const batch_ent *a = (const batch_ent *)n;

	batch_node_prefetch(n, keylen, offsetof(batch_ent, cards));
	__builtin_prefetch(&a->cards[BATCH_ENT_CARD_SAMPLE - 1]);
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
			ent_prefetch(n, wk->lean[i].merchant_id.len);
		if (wk->lean[i].terminal_id.len > 0 &&
		    (n = batch_index_peek(&wk->terminal_ix, p->th)) != NULL)
			ent_prefetch(n, wk->lean[i].terminal_id.len);
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
	if (vigil_buf_reserve(&c->buf, &c->cap, need > BATCH_CHUNK_BYTES ? need : BATCH_CHUNK_BYTES) !=
	    VIGIL_OK)
		goto nomem;
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
	HASH_ADD(hh, r->feed.by_name, name[0], len, n);
	if (!VIGIL_HASH_ADDED(n)) {
		free(n);
		return NULL;
	}
	n->next = r->feed.names;
	r->feed.names = n;
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

void
batch_feed_fini(batch_run *r)
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
vigil_err
batch_run_workers(batch_run *r, uint32_t t, bool run, store_diag *reterr)
{
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
		if (r->collect_ids) {
			vigil_vec_init(&wk->ids, 1, SIZE_MAX);
			vigil_vec_init(&wk->idh, sizeof(uint64_t), SIZE_MAX);
		}
	}
	if (!run)
		return VIGIL_OK;
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
		batch_bad_keep(r->sum.bad_where, sizeof r->sum.bad_where, wk->bad_where);
	}
	/* Corrupt stretches are counted once, by this pass (pass 1 skips
	 * frames unchecked and reports none). */
	r->sum.corrupt_records += r->workers[0].corrupt;
	if (r->workers[0].corrupt > 0)
		batch_bad_keep(r->sum.bad_where, sizeof r->sum.bad_where, r->workers[0].corrupt_where);
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
	if (batch_days_usable(r)) {
		rv = batch_days_labels(r, reterr);
		if (rv != VIGIL_OK)
			return rv;
		return batch_days_aggregate(r, reterr);
	}
	rv = pass_labels(r, reterr);
	if (rv != VIGIL_OK)
		return rv;
	return batch_run_workers(r, r->opts.threads, true, reterr);
}

