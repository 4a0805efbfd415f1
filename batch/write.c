/* SPDX-License-Identifier: MIT */
/*
 * batch/write.c - step 4 of a rebuild: the workers merged, cards,
 * merchants and terminals written in key order, the thresholds (tune.c),
 * meta and summary, and the commit.
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
			rv = batch_tstate_merge(r, i, &dst->ts[i], &src->ts[i], reterr);
			if (rv != VIGIL_OK)
				return rv;
		}
	}
	return VIGIL_OK;
}

vigil_err
batch_tstate_merge(batch_run *r, uint32_t i, batch_tstate *dst, const batch_tstate *src,
    store_diag *reterr)
{
	batch_group *g, *gt;
	vigil_err rv;

	dst->left_no_model += src->left_no_model;
	dst->left_immature += src->left_immature;
	rv = batch_sketch_merge(dst->global, src->global);
	if (rv != VIGIL_OK)
		return rv;
	HASH_ITER(hh, src->groups, g, gt) {
		batch_sketch *sk;

		rv = batch_tstate_group(dst, g->key, strlen(g->key), r->plans[i].name, &sk, reterr);
		if (rv != VIGIL_OK)
			return rv;
		rv = batch_sketch_merge(sk, g->sk);
		if (rv != VIGIL_OK)
			return rv;
	}
	return VIGIL_OK;
}

static int
ent_cmp(batch_ent_node *a, batch_ent_node *b)
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
	rv = r->sum.rules_hash[0] != '\0' ? batch_put_thresholds(r, ts, reterr)
	                                  : batch_carry_thresholds(r, reterr);
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

vigil_err
batch_put_cards(batch_run *r, store_diag *reterr)
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

