/* SPDX-License-Identifier: MIT */
/*
 * batch/days.c - day aggregates kept between the runs of one process
 * (batch_days, batch.h; docs/vigil-rebuild.md, "Day aggregates").
 *
 * A run with opts.days aggregates each UTC day of its window on its own,
 * with every window open (a day's card holds the day's count, sums,
 * Welford moments, kept amounts and merchants; a day's merchant its counts
 * in every window and mature window), and merges the days, oldest first,
 * into one worker as the 7/30/90-day windows of the run's as-of take them
 * (batch_card_merge_day, batch_ent_merge_day, the sketches and the
 * training rows as partitions merge). A day kept from an earlier run is
 * merged again without reading the archive when nothing it depends on
 * changed:
 *   - its records: no segment without an index (the open one) holds a
 *     record of the day, and the closed segments whose index overlaps the
 *     day are the ones it was read from (first seq, records, last seq,
 *     bytes);
 *   - its labels: the digest of the labels known now for its txn_ids
 *     (batch_label_mix) is the one it was read with;
 *   - where it stands: in the training window or not, mature or not;
 *   - the run's settings: data directory, rule file, model layout and
 *     options (a change drops every day).
 * Otherwise the day is read again (pass 2 over that day alone).
 */
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "rebuild.h"
#include "segment.h"

typedef struct day_agg {
	int64_t       day;          /* 00:00 UTC, ms */
	uint64_t      fp;           /* the closed segments it was read from */
	uint64_t      label_digest;
	uint32_t      status;       /* DAY_IN_TRAIN | DAY_MATURE */
	batch_worker *wk;           /* one worker: cards, entities, sketches, rows */
	/* its txn_ids, NUL-ended, and their xxh64 */
	char         *ids;
	uint64_t     *idh;
	size_t        nids;
	/* its share of the summary */
	uint64_t      records, bad, corrupt, first_seq, last_seq;
	char          bad_where[256];
	UT_hash_handle hh;
} day_agg;

/* The label records of one closed segment, decoded once (pass 1 replays
 * them every night the segment is unchanged). Entries, 8-aligned: a
 * seg_label, then the txn_id and its NUL. */
typedef struct seg_label {
	int64_t  ev, t;     /* the record's event time; the label's time */
	uint64_t offset;
	uint8_t  kind;      /* SL_LEGIT, SL_FRAUD, SL_BAD (did not decode) */
} seg_label;

enum { SL_LEGIT, SL_FRAUD, SL_BAD };

typedef struct seg_labels {
	char           base[STORE_SEG_BASE_LEN + 1];
	uint64_t       fp;
	vigil_vec      buf;
	bool           seen; /* listed this run */
	UT_hash_handle hh;
} seg_labels;

struct batch_days {
	uint64_t    config;  /* settings hash of the days kept (0: none yet) */
	day_agg    *days;    /* by day */
	seg_labels *segs;    /* by segment base name */
};

enum { DAY_IN_TRAIN = 1u, DAY_MATURE = 2u };

static int
day_cmp(day_agg *a, day_agg *b)
{
	return a->day < b->day ? -1 : a->day > b->day;
}

batch_days *
batch_days_new(void)
{
	return calloc(1, sizeof(batch_days));
}

static void
day_free(day_agg *d)
{
	if (d == NULL)
		return;
	if (d->wk != NULL) {
		batch_worker_fini(d->wk);
		free(d->wk);
	}
	free(d->ids);
	free(d->idh);
	free(d);
}

static void
seg_labels_free(seg_labels *sl)
{
	vigil_vec_fini(&sl->buf);
	free(sl);
}

static void
days_clear(batch_days *ds)
{
	day_agg *d, *dt;
	seg_labels *sl, *st;

	HASH_ITER(hh, ds->days, d, dt) {
		HASH_DEL(ds->days, d);
		day_free(d);
	}
	HASH_ITER(hh, ds->segs, sl, st) {
		HASH_DEL(ds->segs, sl);
		seg_labels_free(sl);
	}
}

void
batch_days_free(batch_days *ds)
{
	if (ds == NULL)
		return;
	days_clear(ds);
	free(ds);
}

bool
batch_days_usable(const batch_run *r)
{
	const batch_opts *o = &r->opts;

	return o->days != NULL && o->part_count <= 1 && r->narchive_dirs == 1 &&
	    o->as_of_ms % VIGIL_MS_PER_DAY == 0 && o->window_ms % VIGIL_MS_PER_DAY == 0 &&
	    o->label_maturity_ms % VIGIL_MS_PER_DAY == 0 &&
	    o->train_window_ms % VIGIL_MS_PER_DAY == 0;
}

static uint64_t
run_config(const batch_run *r)
{
	XXH64_state_t *st = XXH64_createState();
	uint64_t h, v[5];

	if (st == NULL)
		return 1;
	XXH64_reset(st, 0);
	XXH64_update(st, r->archive_dirs[0], strlen(r->archive_dirs[0]) + 1);
	XXH64_update(st, r->sum.rules_hash, strlen(r->sum.rules_hash) + 1);
	v[0] = r->layout;
	v[1] = r->topts.max_rows;
	v[2] = r->opts.labelled_only;
	v[3] = r->train_on;
	v[4] = r->nplans;
	XXH64_update(st, v, sizeof v);
	h = XXH64_digest(st);
	XXH64_freeState(st);
	return h ? h : 1;
}

static uint32_t
day_status(const batch_run *r, int64_t day)
{
	int64_t end = day + VIGIL_MS_PER_DAY;
	uint32_t s = 0;

	if (r->train_on && day >= r->train_from && end <= r->train_to)
		s |= DAY_IN_TRAIN;
	if (end <= r->train_to)
		s |= DAY_MATURE;
	return s;
}

/* What the archive holds for the window's days: each day's closed-segment
 * fingerprint, and the days with records in a segment without an index. */
typedef struct days_seen {
	int64_t   from;
	uint32_t  ndays;
	uint64_t *fp;
	bool     *open;
} days_seen;

static vigil_err
seen_open_segment(const batch_run *r, const char *base, days_seen *ds, store_diag *reterr)
{
	char path[4200];
	store_reader *rd = NULL;
	store_record rec;
	vigil_err rv;

	snprintf(path, sizeof path, "%s/%s.log", r->archive_dirs[0], base);
	rv = store_reader_open_segment(path, NULL, NULL, &rd, reterr);
	if (rv != VIGIL_OK)
		return rv;
	store_reader_want(rd, 1u << STORE_REC_SCORE);
	while ((rv = store_reader_next(rd, &rec, reterr)) == VIGIL_OK) {
		int64_t i;

		if (rec.event_time_ms < ds->from)
			continue;
		i = (rec.event_time_ms - ds->from) / VIGIL_MS_PER_DAY;
		if (i < ds->ndays)
			ds->open[i] = true;
	}
	store_reader_close(rd);
	return rv == VIGIL_ENOTFOUND ? VIGIL_OK : rv;
}

static vigil_err
seen_build(const batch_run *r, days_seen *ds, store_diag *reterr)
{
	store_seg_ent *ents = NULL;
	size_t n = 0;
	vigil_err rv;

	ds->from = r->w.from;
	ds->ndays = (uint32_t)((r->w.as_of - r->w.from) / VIGIL_MS_PER_DAY);
	ds->fp = calloc(ds->ndays ? ds->ndays : 1, sizeof *ds->fp);
	ds->open = calloc(ds->ndays ? ds->ndays : 1, sizeof *ds->open);
	if (ds->fp == NULL || ds->open == NULL)
		return VIGIL_ENOMEM;
	rv = store_seg_list(r->archive_dirs[0], &ents, &n, reterr);
	if (rv == VIGIL_ENOTFOUND)
		return VIGIL_OK;
	if (rv != VIGIL_OK)
		return rv;
	for (size_t k = 0; k < n && rv == VIGIL_OK; k++) {
		store_seg_index idx;
		int64_t lo, hi;

		if (!ents[k].has_idx || store_seg_index_read(r->archive_dirs[0], ents[k].base,
		    &idx) != VIGIL_OK) {
			/* open, or an index that does not read: look inside */
			if (ents[k].has_log)
				rv = seen_open_segment(r, ents[k].base, ds, reterr);
			else
				for (uint32_t i = 0; i < ds->ndays; i++)
					ds->open[i] = true; /* cannot tell: read every day */
			continue;
		}
		if (idx.records == 0 || idx.max_event_ms < ds->from || idx.min_event_ms >= r->w.as_of)
			continue;
		lo = idx.min_event_ms < ds->from ? 0 : (idx.min_event_ms - ds->from) / VIGIL_MS_PER_DAY;
		hi = (idx.max_event_ms - ds->from) / VIGIL_MS_PER_DAY;
		for (int64_t i = lo; i <= hi && i < ds->ndays; i++) {
			uint64_t v[4] = { idx.first_seq, idx.records, idx.last_seq, idx.bytes };

			ds->fp[i] = XXH64(v, sizeof v, ds->fp[i]);
		}
	}
	free(ents);
	return rv;
}

static void
seen_fini(days_seen *ds)
{
	free(ds->fp);
	free(ds->open);
}

/* Reads the label records of segment base (ext ".log" or ".log.zst") into
 * out (entries as seg_labels.buf). */
static vigil_err
seg_read_labels(const batch_run *r, const char *base, const char *ext, vigil_vec *out,
    store_diag *reterr)
{
	char path[4200];
	store_reader *rd = NULL;
	store_record rec;
	store_label lab;
	vigil_err rv;

	snprintf(path, sizeof path, "%s/%s%s", r->archive_dirs[0], base, ext);
	rv = store_reader_open_segment(path, NULL, NULL, &rd, reterr);
	if (rv != VIGIL_OK)
		return rv;
	store_reader_want(rd, 1u << STORE_REC_LABEL);
	while ((rv = store_reader_next(rd, &rec, reterr)) == VIGIL_OK) {
		store_diag scratch;
		seg_label e = { .ev = rec.event_time_ms, .offset = rec.offset };
		const char *id = "";
		size_t len, pad;

		if (rec.type != STORE_REC_LABEL)
			continue;
		if (store_label_decode(rec.payload, rec.len, &lab, &scratch) != VIGIL_OK) {
			e.kind = SL_BAD;
			id = scratch.msg;
		} else {
			e.kind = lab.fraud ? SL_FRAUD : SL_LEGIT;
			e.t = lab.label_time_ms > 0 ? lab.label_time_ms : rec.event_time_ms;
			id = lab.txn_id;
		}
		len = strlen(id) + 1;
		pad = (8 - (sizeof e + len) % 8) % 8;
		if (vigil_vec_append(out, &e, sizeof e) != VIGIL_OK ||
		    vigil_vec_append(out, id, len) != VIGIL_OK ||
		    vigil_vec_append(out, "\0\0\0\0\0\0\0", pad) != VIGIL_OK) {
			rv = VIGIL_ENOMEM;
			break;
		}
	}
	store_reader_close(rd);
	return rv == VIGIL_ENOTFOUND ? VIGIL_OK : rv;
}

/* Pass 1 from a segment's label entries: what pass_labels does with the
 * records of [from, as_of]. */
static vigil_err
seg_replay_labels(batch_run *r, const char *base, const vigil_vec *buf, store_diag *reterr)
{
	const char *p = buf->data, *end = p + buf->len;
	vigil_err rv;

	while (p < end) {
		seg_label e;
		const char *id = p + sizeof e;
		size_t len;

		memcpy(&e, p, sizeof e);
		len = strlen(id) + 1;
		p += sizeof e + len + (8 - (sizeof e + len) % 8) % 8;
		if (e.ev < r->w.from || e.ev > r->w.as_of)
			continue;
		r->pass1_records++;
		if (e.kind == SL_BAD) {
			r->sum.records_bad++;
			batch_bad_where(r->sum.bad_where, sizeof r->sum.bad_where, base, e.offset, id);
			continue;
		}
		rv = batch_label_add(r, id, e.t, e.kind == SL_FRAUD, base, e.offset, reterr);
		if (rv != VIGIL_OK)
			return rv;
	}
	return VIGIL_OK;
}

/*
 * Pass 1 with day aggregates: the label records of each closed segment are
 * decoded once and kept while its index is unchanged; a segment without an
 * index (the open one) is read every run. The labels are the ones
 * pass_labels reads: records of [from, as_of], a bad one counted.
 */
vigil_err
batch_days_labels(batch_run *r, store_diag *reterr)
{
	batch_days *ds = r->opts.days;
	store_seg_ent *ents = NULL;
	seg_labels *sl, *st;
	size_t n = 0;
	vigil_err rv;

	/* Pass 1 runs first: it binds the days to this run's settings. */
	if (ds->config != run_config(r)) {
		days_clear(ds);
		ds->config = run_config(r);
	}
	HASH_ITER(hh, ds->segs, sl, st)
		sl->seen = false;
	rv = store_seg_list(r->archive_dirs[0], &ents, &n, reterr);
	if (rv == VIGIL_ENOTFOUND) {
		rv = VIGIL_OK;
		n = 0;
	}
	for (size_t k = 0; k < n && rv == VIGIL_OK; k++) {
		const char *ext = ents[k].has_log ? ".log" : ".log.zst";
		store_seg_index idx;
		uint64_t fp;

		if (!ents[k].has_log && !ents[k].has_zst)
			continue;
		if (!ents[k].has_idx ||
		    store_seg_index_read(r->archive_dirs[0], ents[k].base, &idx) != VIGIL_OK) {
			vigil_vec tmp;

			vigil_vec_init(&tmp, 1, SIZE_MAX);
			rv = seg_read_labels(r, ents[k].base, ext, &tmp, reterr);
			if (rv == VIGIL_OK)
				rv = seg_replay_labels(r, ents[k].base, &tmp, reterr);
			vigil_vec_fini(&tmp);
			continue;
		}
		if (idx.records == 0 || idx.max_event_ms < r->w.from || idx.min_event_ms > r->w.as_of)
			continue;
		{
			uint64_t v[4] = { idx.first_seq, idx.records, idx.last_seq, idx.bytes };

			fp = XXH64(v, sizeof v, 0);
		}
		HASH_FIND_STR(ds->segs, ents[k].base, sl);
		if (sl != NULL && sl->fp != fp) {
			HASH_DEL(ds->segs, sl);
			seg_labels_free(sl);
			sl = NULL;
		}
		if (sl == NULL) {
			sl = calloc(1, sizeof *sl);
			if (sl == NULL) {
				rv = VIGIL_ENOMEM;
				break;
			}
			snprintf(sl->base, sizeof sl->base, "%s", ents[k].base);
			sl->fp = fp;
			vigil_vec_init(&sl->buf, 1, SIZE_MAX);
			rv = seg_read_labels(r, ents[k].base, ext, &sl->buf, reterr);
			if (rv != VIGIL_OK) {
				seg_labels_free(sl);
				break;
			}
			HASH_ADD_STR(ds->segs, base, sl);
			if (!VIGIL_HASH_ADDED(sl)) {
				seg_labels_free(sl);
				rv = VIGIL_ENOMEM;
				break;
			}
		}
		sl->seen = true;
		rv = seg_replay_labels(r, sl->base, &sl->buf, reterr);
	}
	free(ents);
	/* Segments gone (retention) or outside the window go. */
	HASH_ITER(hh, ds->segs, sl, st) {
		if (!sl->seen) {
			HASH_DEL(ds->segs, sl);
			seg_labels_free(sl);
		}
	}
	r->sum.labels_read = r->nlabels;
	return rv;
}

/* The digest of the labels known now for d's transactions; the labels
 * found go to *found (for day_mark_used, if the day is reused). */
static vigil_err
day_digest(batch_run *r, const day_agg *d, vigil_vec *found, uint64_t *ret_sum)
{
	const char *id = d->ids;
	uint64_t sum = 0;

	vigil_vec_clear(found);
	for (size_t i = 0; i < d->nids; i++) {
		size_t len = strlen(id);
		batch_label *l = batch_index_find(&r->label_ix, d->idh[i], id, len, batch_label_keyof);

		if (l != NULL) {
			sum += batch_label_mix(d->idh[i], l->fraud);
			if (vigil_vec_push(found, &l) != VIGIL_OK)
				return VIGIL_ENOMEM;
		}
		id += len + 1;
	}
	*ret_sum = sum;
	return VIGIL_OK;
}

/* A reused day's labels count as used (the summary's labels_used), as
 * pass 2 counts those of a day it reads. */
static void
day_mark_used(batch_run *r, const vigil_vec *found)
{
	for (size_t i = 0; i < found->len; i++) {
		batch_label *l = *(batch_label **)vigil_vec_at(found, i);

		if (!atomic_exchange(&l->used, true))
			r->sum.labels_used++;
	}
}

/* Pass 2 over one day, with every window open, into d. */
static vigil_err
day_read(batch_run *r, day_agg *d, store_diag *reterr)
{
	batch_windows saved = r->w;
	batch_worker *wk;
	uint64_t records = r->sum.records_read, bad = r->sum.records_bad;
	uint64_t corrupt = r->sum.corrupt_records;
	vigil_err rv;

	r->w.from = d->day;
	r->w.as_of = d->day + VIGIL_MS_PER_DAY;
	for (int k = 0; k < BATCH_NW; k++)
		r->w.start[k] = d->day;
	r->w.mature_to = r->w.as_of;
	for (int k = 0; k < BATCH_NM; k++)
		r->w.mature_start[k] = d->day;
	r->sum.first_seq = UINT64_MAX;
	r->sum.last_seq = 0;
	r->sum.bad_where[0] = '\0';
	r->collect_ids = true;
	rv = batch_run_workers(r, 1, true, reterr);
	r->collect_ids = false;
	r->w = saved;
	wk = r->workers;
	r->workers = NULL;
	r->nworkers = 0;
	d->wk = wk;
	if (rv != VIGIL_OK)
		return rv;
	d->records = r->sum.records_read - records;
	d->bad = r->sum.records_bad - bad;
	d->corrupt = r->sum.corrupt_records - corrupt;
	d->first_seq = r->sum.first_seq;
	d->last_seq = r->sum.last_seq;
	snprintf(d->bad_where, sizeof d->bad_where, "%s", r->sum.bad_where);
	r->sum.records_read = records;
	r->sum.records_bad = bad;
	r->sum.corrupt_records = corrupt;
	/* What the merge does not need. */
	for (uint32_t i = 0; i < BATCH_PIPE; i++) {
		free(wk->payload[i].p);
		wk->payload[i].p = NULL;
		wk->payload[i].cap = 0;
	}
	free(wk->lean);
	wk->lean = NULL;
	free(wk->pvals);
	wk->pvals = NULL;
	d->nids = wk->idh.len;
	d->ids = wk->ids.data;
	d->idh = wk->idh.data;
	wk->ids.data = wk->idh.data = NULL;
	wk->ids.len = wk->idh.len = wk->ids.cap = wk->idh.cap = 0;
	d->label_digest = wk->label_digest;
	return VIGIL_OK;
}

/* Merges day d into the run's one worker. */
static vigil_err
day_merge(batch_run *r, batch_worker *dst, const day_agg *d, store_diag *reterr)
{
	const batch_worker *src = d->wk;
	batch_ent_node *e, *et;
	vigil_err rv;

	for (size_t i = 0; i < src->cards.len; i++) {
		const batch_card *sc = *(batch_card *const *)vigil_vec_at(&src->cards, i);
		size_t len = strlen(sc->key);
		uint64_t h = batch_index_hash(sc->key, len);
		batch_card *c = batch_index_find(&dst->card_ix, h, sc->key, len, batch_card_keyof);

		if (c == NULL) {
			if (atomic_fetch_add(&r->entities, 1) >= r->max_entities) {
				store_diag_set(reterr, "more than %llu cards (raise the cap)",
				    (unsigned long long)r->max_entities);
				return VIGIL_ETOOBIG;
			}
			rv = vigil_vec_reserve(&dst->cards, 1);
			if (rv != VIGIL_OK)
				return rv;
			c = batch_card_new(&dst->pool, sc->key, len);
			if (c == NULL)
				return VIGIL_ENOMEM;
			rv = batch_index_put(&dst->card_ix, h, c);
			if (rv != VIGIL_OK)
				return rv;
			(void)vigil_vec_push(&dst->cards, &c);
		}
		rv = batch_card_merge_day(c, &r->w, d->day, sc);
		if (rv != VIGIL_OK)
			return rv;
	}
	for (int k = 0; k < 2; k++) {
		batch_ent_node *sm = k ? src->terminals : src->merchants;
		batch_ent_node **dm = k ? &dst->terminals : &dst->merchants;
		batch_index *dix = k ? &dst->terminal_ix : &dst->merchant_ix;

		HASH_ITER(hh, sm, e, et) {
			batch_ent *a;

			rv = batch_ent_get(dm, dix, e->key, strlen(e->key), &a);
			if (rv != VIGIL_OK)
				return rv;
			batch_ent_merge_day(a, &r->w, d->day, &e->acc);
		}
	}
	for (uint32_t i = 0; i < r->nplans; i++) {
		rv = batch_tstate_merge(r, i, &dst->ts[i], &src->ts[i], reterr);
		if (rv != VIGIL_OK)
			return rv;
	}
	if (dst->train != NULL && src->train != NULL) {
		rv = batch_trainset_merge(dst->train, src->train, reterr);
		if (rv != VIGIL_OK)
			return rv;
	}
	dst->train_seen += src->train_seen;
	dst->train_other_layout += src->train_other_layout;
	dst->train_no_vector += src->train_no_vector;
	r->sum.records_read += d->records;
	r->sum.records_bad += d->bad;
	r->sum.corrupt_records += d->corrupt;
	if (d->records > 0 && d->first_seq < r->sum.first_seq)
		r->sum.first_seq = d->first_seq;
	if (d->records > 0 && d->last_seq > r->sum.last_seq)
		r->sum.last_seq = d->last_seq;
	batch_bad_keep(r->sum.bad_where, sizeof r->sum.bad_where, d->bad_where);
	return VIGIL_OK;
}

vigil_err
batch_days_aggregate(batch_run *r, store_diag *reterr)
{
	batch_days *ds = r->opts.days;
	days_seen seen = { 0 };
	vigil_vec found;
	day_agg *d, *dt;
	vigil_err rv;

	/* Days that left the window go (batch_days_labels dropped them all
	 * if the settings changed). */
	HASH_ITER(hh, ds->days, d, dt) {
		if (d->day < r->w.from || d->day >= r->w.as_of) {
			HASH_DEL(ds->days, d);
			day_free(d);
		}
	}
	vigil_vec_init(&found, sizeof(batch_label *), SIZE_MAX);
	rv = seen_build(r, &seen, reterr);
	if (rv != VIGIL_OK)
		goto out;
	for (uint32_t i = 0; i < seen.ndays; i++) {
		int64_t day = seen.from + (int64_t)i * VIGIL_MS_PER_DAY;
		uint32_t status = day_status(r, day);
		uint64_t digest = 0;

		HASH_FIND(hh, ds->days, &day, sizeof day, d);
		if (d != NULL && !seen.open[i] && d->fp == seen.fp[i] && d->status == status) {
			rv = day_digest(r, d, &found, &digest);
			if (rv != VIGIL_OK)
				goto out;
			if (digest == d->label_digest) {
				day_mark_used(r, &found);
				r->sum.days_reused++;
				continue;
			}
		}
		if (d != NULL) {
			HASH_DEL(ds->days, d);
			day_free(d);
		}
		d = calloc(1, sizeof *d);
		if (d == NULL) {
			rv = VIGIL_ENOMEM;
			goto out;
		}
		d->day = day;
		d->fp = seen.fp[i];
		d->status = status;
		rv = day_read(r, d, reterr);
		if (rv != VIGIL_OK) {
			day_free(d);
			goto out;
		}
		HASH_ADD(hh, ds->days, day, sizeof d->day, d);
		if (!VIGIL_HASH_ADDED(d)) {
			day_free(d);
			rv = VIGIL_ENOMEM;
			goto out;
		}
		r->sum.days_read++;
	}
	/* One worker, the days merged into it oldest first. */
	rv = batch_run_workers(r, 1, false, reterr);
	if (rv != VIGIL_OK)
		goto out;
	r->sum.first_seq = UINT64_MAX;
	r->sum.last_seq = 0;
	HASH_SORT(ds->days, day_cmp);
	HASH_ITER(hh, ds->days, d, dt) {
		rv = day_merge(r, &r->workers[0], d, reterr);
		if (rv != VIGIL_OK)
			goto out;
	}
out:
	vigil_vec_fini(&found);
	seen_fini(&seen);
	if (rv != VIGIL_OK) {
		/* what failed may be half-merged into a kept day: keep none */
		days_clear(ds);
		ds->config = 0;
	}
	return rv;
}
