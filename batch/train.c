/* SPDX-License-Identifier: MIT */
/*
 * batch/train.c - the nightly model's training set and its training with
 * libxgboost (train.h, docs/model.md "Training").
 *
 * The set keeps rows in slots (one float block of nfeat per slot beside
 * parallel arrays of time, key and label) and the legitimate ones in a
 * max-heap on the remixed key, so that once max_rows slots are used a new
 * legitimate row replaces the largest one if it is smaller, and a new fraud
 * takes the largest one's slot: the legitimate rows kept are always the
 * bottom-(max_rows - frauds) by remixed key, a function of the rows added and
 * not of their order. Per-day counts of every row added give the weights.
 *
 * Training permutes the slots into the canonical order (event time, key,
 * label, feature bytes), so XGBoost sees the same matrix whatever the
 * history of the set, splits it at a day boundary (the rows of the last days
 * are a suffix of the sorted slots: no copy) and boosts one round at a time,
 * asking XGBoost for the validation figures after each (it keeps the
 * validation predictions cached, so a round costs one tree's worth).
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <xgboost/c_api.h>

#include "batch.h"
#include "train.h"

typedef struct train_day {
	int64_t  day;            /* floor(t / VIGIL_MS_PER_DAY) */
	uint64_t legit, fraud;   /* rows added that day */
	uint64_t kept;           /* legitimate rows of that day kept now */
} train_day;

struct batch_trainset {
	uint32_t  nfeat;
	char    **names;          /* nfeat, each its own allocation */
	uint64_t  max_rows;
	size_t    n, cap;         /* slots used / allocated (cap <= max_rows) */
	float    *x;              /* cap * nfeat */
	int64_t  *t;
	uint64_t *key;
	uint64_t *mix;            /* train_mix(key) */
	uint8_t  *fraud;
	uint32_t *heap;           /* slots of the legitimate rows, max-heap; cap entries */
	size_t    nheap;
	uint64_t  nfraud, legit_seen;
	train_day *days;          /* sorted by day */
	size_t    ndays, cap_days;
	float    *tmp;            /* one row: the row being added */
};

void
batch_train_opts_default(batch_train_opts *ret)
{
	memset(ret, 0, sizeof *ret);
	ret->threads = 1;
	ret->max_rounds = 300;
	ret->early_stop = 30;
	ret->stop_metric = BATCH_TRAIN_STOP_LOGLOSS;
	ret->min_rounds = 20;
	ret->max_depth = 6;
	ret->eta = 0.1;
	ret->min_child_weight = 5.0;
	ret->reg_lambda = 1.0;
	ret->max_bin = 256;
	ret->scale_pos_weight = 1.0;
	ret->min_frauds = 50;
	ret->max_rows = 1000000;
	ret->valid_share = 0.25;
	ret->refit = true;
	ret->balanced_bins = true;
	ret->calib_trust = 0.25;
}

/* splitmix64's finaliser: a bijection, so distinct keys stay distinct, and
 * the sample is independent of any other use of xxh64(txn_id). */
static uint64_t
train_mix(uint64_t k)
{
	k += 0x9e3779b97f4a7c15ull;
	k = (k ^ (k >> 30)) * 0xbf58476d1ce4e5b9ull;
	k = (k ^ (k >> 27)) * 0x94d049bb133111ebull;
	return k ^ (k >> 31);
}

static int64_t
train_day_of(int64_t t)
{
	int64_t d = t / VIGIL_MS_PER_DAY;

	return (t % VIGIL_MS_PER_DAY < 0) ? d - 1 : d;
}

/* ---- The set ---- */

void
batch_trainset_free(batch_trainset *s)
{
	if (s == NULL)
		return;
	if (s->names != NULL)
		for (uint32_t i = 0; i < s->nfeat; i++)
			free(s->names[i]);
	free(s->names);
	free(s->x);
	free(s->t);
	free(s->key);
	free(s->mix);
	free(s->fraud);
	free(s->heap);
	free(s->days);
	free(s->tmp);
	free(s);
}

vigil_err
batch_trainset_new(uint32_t nfeat, const char *const *names, const batch_train_opts *o,
    batch_trainset **ret_s, store_diag *reterr)
{
	batch_trainset *s = NULL;
	vigil_err rv = VIGIL_EINVAL;

	if (nfeat == 0 || nfeat > BATCH_TRAIN_MAX_FEATURES) {
		store_diag_set(reterr, "training set: %u features (1 to %u)", nfeat,
		    BATCH_TRAIN_MAX_FEATURES);
		goto out;
	}
	if (o->max_rows < 2 || o->max_rows > BATCH_TRAIN_MAX_ROWS) {
		store_diag_set(reterr, "training set: max_rows %llu (2 to %llu)",
		    (unsigned long long)o->max_rows, (unsigned long long)BATCH_TRAIN_MAX_ROWS);
		goto out;
	}
	for (uint32_t i = 0; i < nfeat; i++) {
		size_t len = names[i] != NULL ? strlen(names[i]) : 0;

		if (len == 0 || len > BATCH_TRAIN_MAX_NAME) {
			store_diag_set(reterr, "training set: feature %u: name of %zu bytes (1 to %d)",
			    i, len, BATCH_TRAIN_MAX_NAME);
			goto out;
		}
		for (uint32_t j = 0; j < i; j++) {
			if (strcmp(names[i], names[j]) == 0) {
				store_diag_set(reterr, "training set: feature %u: \"%s\" is also feature %u",
				    i, names[i], j);
				goto out;
			}
		}
	}
	rv = VIGIL_ENOMEM;
	s = calloc(1, sizeof *s);
	if (s == NULL)
		goto out;
	s->nfeat = nfeat;
	s->max_rows = o->max_rows;
	s->names = calloc(nfeat, sizeof *s->names);
	s->tmp = malloc(nfeat * sizeof *s->tmp);
	if (s->names == NULL || s->tmp == NULL)
		goto out;
	for (uint32_t i = 0; i < nfeat; i++) {
		s->names[i] = strdup(names[i]);
		if (s->names[i] == NULL)
			goto out;
	}
	*ret_s = s;
	s = NULL;
	rv = VIGIL_OK;
out:
	if (rv == VIGIL_ENOMEM)
		store_diag_set(reterr, "training set: out of memory");
	batch_trainset_free(s);
	return rv;
}

/* Room for want slots (want <= max_rows). Grows every array; cap changes
 * only once all of them have, so a failure leaves the set as it was. */
static vigil_err
trainset_reserve(batch_trainset *s, size_t want)
{
	size_t cap = s->cap ? s->cap : 1024;
	void  *p;

	if (want <= s->cap)
		return VIGIL_OK;
	while (cap < want)
		cap *= 2;
	if (cap > s->max_rows)
		cap = (size_t)s->max_rows;
#define GROW(field)                                                            \
	do {                                                                   \
		p = realloc(s->field, cap * sizeof *s->field);                 \
		if (p == NULL)                                                 \
			return VIGIL_ENOMEM;                                   \
		s->field = p;                                                  \
	} while (0)
	GROW(t);
	GROW(key);
	GROW(mix);
	GROW(fraud);
	GROW(heap);
#undef GROW
	p = realloc(s->x, cap * s->nfeat * sizeof *s->x);
	if (p == NULL)
		return VIGIL_ENOMEM;
	s->x = p;
	s->cap = cap;
	return VIGIL_OK;
}

/* Heap order of legitimate rows: remixed key, then time, then the feature
 * bytes (equal keys are the same txn_id; the rest only makes the order
 * total). a is a slot, the other row is given by its parts. */
static int
trainset_cmp_row(const batch_trainset *s, size_t a, uint64_t mix, int64_t t, const float *x)
{
	if (s->mix[a] != mix)
		return s->mix[a] < mix ? -1 : 1;
	if (s->t[a] != t)
		return s->t[a] < t ? -1 : 1;
	return memcmp(&s->x[a * s->nfeat], x, s->nfeat * sizeof *x);
}

static int
trainset_cmp_slots(const batch_trainset *s, size_t a, size_t b)
{
	return trainset_cmp_row(s, a, s->mix[b], s->t[b], &s->x[b * s->nfeat]);
}

static void
trainset_sift_up(batch_trainset *s, size_t i)
{
	uint32_t v = s->heap[i];

	while (i > 0) {
		size_t p = (i - 1) / 2;

		if (trainset_cmp_slots(s, s->heap[p], v) >= 0)
			break;
		s->heap[i] = s->heap[p];
		i = p;
	}
	s->heap[i] = v;
}

static void
trainset_sift_down(batch_trainset *s, size_t i)
{
	uint32_t v = s->heap[i];

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= s->nheap)
			break;
		if (c + 1 < s->nheap && trainset_cmp_slots(s, s->heap[c + 1], s->heap[c]) > 0)
			c++;
		if (trainset_cmp_slots(s, s->heap[c], v) <= 0)
			break;
		s->heap[i] = s->heap[c];
		i = c;
	}
	s->heap[i] = v;
}

static void
trainset_heapify(batch_trainset *s)
{
	s->nheap = 0;
	for (size_t i = 0; i < s->n; i++)
		if (!s->fraud[i])
			s->heap[s->nheap++] = (uint32_t)i;
	for (size_t i = s->nheap / 2; i-- > 0;)
		trainset_sift_down(s, i);
}

static void
trainset_put(batch_trainset *s, size_t slot, const float *x, bool fraud, int64_t t,
    uint64_t key, uint64_t mix)
{
	memcpy(&s->x[slot * s->nfeat], x, s->nfeat * sizeof *x);
	s->t[slot] = t;
	s->key[slot] = key;
	s->mix[slot] = mix;
	s->fraud[slot] = fraud;
}

/* The index of day in s->days, or where it would go (*ret_found false). */
static size_t
trainset_day_find(const batch_trainset *s, int64_t day, bool *ret_found)
{
	size_t lo = 0, hi = s->ndays;

	/* Rows come mostly in time order: try the last day first. */
	if (hi > 0 && s->days[hi - 1].day == day) {
		*ret_found = true;
		return hi - 1;
	}
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (s->days[mid].day < day)
			lo = mid + 1;
		else
			hi = mid;
	}
	*ret_found = lo < s->ndays && s->days[lo].day == day;
	return lo;
}

/* The entry of a day known to be in s->days. */
static train_day *
trainset_day_of_row(batch_trainset *s, int64_t t)
{
	bool found;

	return &s->days[trainset_day_find(s, train_day_of(t), &found)];
}

/* The entry of day, inserted (zeroed) at its place if new. VIGIL_ETOOBIG
 * (BATCH_TRAIN_MAX_DAYS) or VIGIL_ENOMEM leave the set unchanged. */
static vigil_err
trainset_day_get(batch_trainset *s, int64_t day, train_day **ret_d)
{
	bool       found;
	size_t     i = trainset_day_find(s, day, &found), cap;
	train_day *p;

	if (!found) {
		if (s->ndays == BATCH_TRAIN_MAX_DAYS)
			return VIGIL_ETOOBIG;
		if (s->ndays == s->cap_days) {
			cap = s->cap_days ? 2 * s->cap_days : 64;
			p = realloc(s->days, cap * sizeof *p);
			if (p == NULL)
				return VIGIL_ENOMEM;
			s->days = p;
			s->cap_days = cap;
		}
		memmove(&s->days[i + 1], &s->days[i], (s->ndays - i) * sizeof *s->days);
		memset(&s->days[i], 0, sizeof *s->days);
		s->days[i].day = day;
		s->ndays++;
	}
	*ret_d = &s->days[i];
	return VIGIL_OK;
}

/* Whether trainset_keep can take a row: room to grow, or a fraud that
 * finds a legitimate row to replace (VIGIL_ETOOBIG if not). */
static vigil_err
trainset_prepare(batch_trainset *s, bool fraud)
{
	if (s->n < s->max_rows)
		return trainset_reserve(s, s->n + 1);
	return fraud && s->nheap == 0 ? VIGIL_ETOOBIG : VIGIL_OK;
}

/* Keeps or drops one (normalised) row by the sampling rule, after
 * trainset_prepare said yes and with the row's day in s->days, whose kept
 * counts it updates. */
static void
trainset_keep(batch_trainset *s, const float *x, bool fraud, int64_t t, uint64_t key)
{
	uint64_t mix = train_mix(key);
	size_t   slot;

	if (s->n < s->max_rows) {
		slot = s->n++;
		trainset_put(s, slot, x, fraud, t, key, mix);
		if (fraud) {
			s->nfraud++;
		} else {
			s->heap[s->nheap++] = (uint32_t)slot;
			trainset_sift_up(s, s->nheap - 1);
			trainset_day_of_row(s, t)->kept++;
		}
		return;
	}
	if (s->nheap == 0)
		return; /* legitimate, and every slot a fraud: dropped */
	slot = s->heap[0];
	if (!fraud && trainset_cmp_row(s, slot, mix, t, x) <= 0)
		return; /* not among the smallest: dropped */
	/* The largest legitimate row makes room. */
	trainset_day_of_row(s, s->t[slot])->kept--;
	trainset_put(s, slot, x, fraud, t, key, mix);
	if (fraud) {
		s->nfraud++;
		s->heap[0] = s->heap[--s->nheap];
	} else {
		trainset_day_of_row(s, t)->kept++;
	}
	if (s->nheap > 0)
		trainset_sift_down(s, 0);
}

vigil_err
batch_trainset_add(batch_trainset *s, const float *x, bool fraud, int64_t event_time_ms,
    uint64_t key)
{
	train_day *d;
	vigil_err  rv;

	/* Every NaN the same bytes, +-inf missing: the canonical order
	 * compares feature bytes. */
	for (uint32_t j = 0; j < s->nfeat; j++)
		s->tmp[j] = isfinite(x[j]) ? x[j] : NAN;
	rv = trainset_prepare(s, fraud);
	if (rv != VIGIL_OK)
		return rv;
	rv = trainset_day_get(s, train_day_of(event_time_ms), &d);
	if (rv != VIGIL_OK)
		return rv;
	if (fraud) {
		d->fraud++;
	} else {
		d->legit++;
		s->legit_seen++;
	}
	trainset_keep(s, s->tmp, fraud, event_time_ms, key);
	return VIGIL_OK;
}

vigil_err
batch_trainset_merge(batch_trainset *dst, const batch_trainset *src, store_diag *reterr)
{
	train_day *d;
	vigil_err  rv = VIGIL_EINVAL;

	if (dst->nfeat != src->nfeat) {
		store_diag_set(reterr, "training set merge: %u features and %u", dst->nfeat,
		    src->nfeat);
		goto out;
	}
	for (uint32_t j = 0; j < dst->nfeat; j++) {
		if (strcmp(dst->names[j], src->names[j]) != 0) {
			store_diag_set(reterr, "training set merge: feature %u is \"%s\" and \"%s\"",
			    j, dst->names[j], src->names[j]);
			goto out;
		}
	}
	if (dst->max_rows != src->max_rows) {
		store_diag_set(reterr, "training set merge: max_rows %llu and %llu",
		    (unsigned long long)dst->max_rows, (unsigned long long)src->max_rows);
		goto out;
	}
	for (size_t k = 0; k < src->ndays; k++) {
		rv = trainset_day_get(dst, src->days[k].day, &d);
		if (rv != VIGIL_OK)
			goto fail;
		d->legit += src->days[k].legit;
		d->fraud += src->days[k].fraud;
		dst->legit_seen += src->days[k].legit;
	}
	/* src kept the bottom-(max_rows - src frauds) of its legitimate rows;
	 * the union's bottom-(max_rows - all frauds) is among them. */
	for (size_t i = 0; i < src->n; i++) {
		rv = trainset_prepare(dst, src->fraud[i]);
		if (rv != VIGIL_OK)
			goto fail;
		trainset_keep(dst, &src->x[i * src->nfeat], src->fraud[i], src->t[i], src->key[i]);
	}
	rv = VIGIL_OK;
	goto out;
fail:
	store_diag_set(reterr, "training set merge: %s", rv == VIGIL_ETOOBIG ?
	    "more frauds than max_rows, or rows on too many days" : vigil_strerror(rv));
out:
	return rv;
}

/* The weight of each kept legitimate row of day d: n_d / k_d. */
static double
trainset_day_weight(const train_day *d)
{
	return d->kept ? (double)d->legit / (double)d->kept : 0.0;
}

void
batch_trainset_stats_get(const batch_trainset *s, batch_trainset_stats *ret)
{
	memset(ret, 0, sizeof *ret);
	ret->rows = s->n;
	ret->frauds = s->nfraud;
	ret->legit_seen = s->legit_seen;
	ret->legit_kept = s->nheap;
	ret->days = (uint32_t)s->ndays;
	/* Row by row, as batch_train_run weighs them (a check on the kept
	 * counts: the sum is each day's count only if they are right). */
	for (size_t i = 0; i < s->n; i++) {
		bool found;

		if (!s->fraud[i])
			ret->legit_weight += trainset_day_weight(
			    &s->days[trainset_day_find(s, train_day_of(s->t[i]), &found)]);
	}
}

/* ---- Canonical order ---- */

static int
trainset_cmp_canon(const batch_trainset *s, size_t a, size_t b)
{
	if (s->t[a] != s->t[b])
		return s->t[a] < s->t[b] ? -1 : 1;
	if (s->key[a] != s->key[b])
		return s->key[a] < s->key[b] ? -1 : 1;
	if (s->fraud[a] != s->fraud[b])
		return s->fraud[a] < s->fraud[b] ? -1 : 1;
	return memcmp(&s->x[a * s->nfeat], &s->x[b * s->nfeat], s->nfeat * sizeof *s->x);
}

/* Bottom-up merge sort of slot numbers (qsort has no context argument in
 * C11, and the order of equal rows does not matter: they are identical). */
static vigil_err
trainset_sort_perm(const batch_trainset *s, uint32_t **ret_perm)
{
	size_t    m = s->n ? s->n : 1;
	uint32_t *a = malloc(m * sizeof *a), *b = malloc(m * sizeof *b), *tmp;

	if (a == NULL || b == NULL) {
		free(a);
		free(b);
		return VIGIL_ENOMEM;
	}
	for (size_t i = 0; i < s->n; i++)
		a[i] = (uint32_t)i;
	for (size_t w = 1; w < s->n; w *= 2) {
		for (size_t lo = 0; lo < s->n; lo += 2 * w) {
			size_t mid = lo + w < s->n ? lo + w : s->n;
			size_t hi = lo + 2 * w < s->n ? lo + 2 * w : s->n;
			size_t i = lo, j = mid, k = lo;

			while (i < mid && j < hi)
				b[k++] = trainset_cmp_canon(s, a[j], a[i]) < 0 ? a[j++] : a[i++];
			while (i < mid)
				b[k++] = a[i++];
			while (j < hi)
				b[k++] = a[j++];
		}
		tmp = a;
		a = b;
		b = tmp;
	}
	free(b);
	*ret_perm = a;
	return VIGIL_OK;
}

/* Moves the rows so that slot i holds the row that was in slot perm[i]
 * (following each cycle once; perm is destroyed). */
static void
trainset_permute(batch_trainset *s, uint32_t *perm)
{
	size_t nf = s->nfeat;

	for (size_t i = 0; i < s->n; i++) {
		size_t   j = i;
		int64_t  t;
		uint64_t key, mix;
		uint8_t  fraud;

		if (perm[i] == i)
			continue;
		memcpy(s->tmp, &s->x[i * nf], nf * sizeof *s->tmp);
		t = s->t[i];
		key = s->key[i];
		mix = s->mix[i];
		fraud = s->fraud[i];
		while (perm[j] != i) {
			size_t k = perm[j];

			memcpy(&s->x[j * nf], &s->x[k * nf], nf * sizeof *s->x);
			s->t[j] = s->t[k];
			s->key[j] = s->key[k];
			s->mix[j] = s->mix[k];
			s->fraud[j] = s->fraud[k];
			perm[j] = (uint32_t)j;
			j = k;
		}
		memcpy(&s->x[j * nf], s->tmp, nf * sizeof *s->tmp);
		s->t[j] = t;
		s->key[j] = key;
		s->mix[j] = mix;
		s->fraud[j] = fraud;
		perm[j] = (uint32_t)j;
	}
}

/* ---- Codec (train.h: batch_trainset_encode / batch_trainset_decode) ---- */

/* Bytes of one encoded row. */
static size_t
codec_row_bytes(uint32_t nfeat)
{
	return 8 + 8 + 1 + 4 * (size_t)nfeat;
}

typedef struct codec_w {
	uint8_t *p;
	size_t   at;
} codec_w;

static void
cw_u8(codec_w *w, uint8_t v)
{
	w->p[w->at++] = v;
}

static void
cw_u32(codec_w *w, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		w->p[w->at++] = (uint8_t)(v >> (8 * i));
}

static void
cw_u64(codec_w *w, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		w->p[w->at++] = (uint8_t)(v >> (8 * i));
}

static void
cw_f32(codec_w *w, float v)
{
	uint32_t u;

	memcpy(&u, &v, sizeof u);
	cw_u32(w, u);
}

vigil_err
batch_trainset_encode(const batch_trainset *s, uint8_t **ret_buf, size_t *ret_len,
    store_diag *reterr)
{
	codec_w   w = { NULL, 0 };
	uint32_t *perm = NULL;
	size_t    len = 4 + 4 + 8 + 4 + 8;
	vigil_err rv = VIGIL_ENOMEM;

	for (uint32_t j = 0; j < s->nfeat; j++)
		len += 1 + strlen(s->names[j]);
	len += s->ndays * 24 + s->n * codec_row_bytes(s->nfeat);
	if (trainset_sort_perm(s, &perm) != VIGIL_OK)
		goto out;
	w.p = malloc(len);
	if (w.p == NULL)
		goto out;
	cw_u32(&w, BATCH_TRAINSET_VERSION);
	cw_u32(&w, s->nfeat);
	cw_u64(&w, s->max_rows);
	for (uint32_t j = 0; j < s->nfeat; j++) {
		size_t n = strlen(s->names[j]);

		cw_u8(&w, (uint8_t)n);
		memcpy(&w.p[w.at], s->names[j], n);
		w.at += n;
	}
	cw_u32(&w, (uint32_t)s->ndays);
	for (size_t k = 0; k < s->ndays; k++) {
		cw_u64(&w, (uint64_t)s->days[k].day);
		cw_u64(&w, s->days[k].legit);
		cw_u64(&w, s->days[k].fraud);
	}
	cw_u64(&w, s->n);
	for (size_t i = 0; i < s->n; i++) {
		size_t slot = perm[i];

		cw_u64(&w, (uint64_t)s->t[slot]);
		cw_u64(&w, s->key[slot]);
		cw_u8(&w, s->fraud[slot]);
		for (uint32_t j = 0; j < s->nfeat; j++)
			cw_f32(&w, s->x[slot * s->nfeat + j]);
	}
	*ret_buf = w.p;
	*ret_len = w.at;
	w.p = NULL;
	rv = VIGIL_OK;
out:
	if (rv == VIGIL_ENOMEM)
		store_diag_set(reterr, "training set: out of memory");
	free(w.p);
	free(perm);
	return rv;
}

typedef struct codec_r {
	const uint8_t *p;
	size_t         len, at;
	uint64_t       err_off;   /* where the fault is */
	store_diag    *reterr;
} codec_r;

/* Fails a decode: the field at offset off is at fault. */
static vigil_err codec_fail(codec_r *r, uint64_t off, vigil_err rv, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static vigil_err
codec_fail(codec_r *r, uint64_t off, vigil_err rv, const char *fmt, ...)
{
	char    msg[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	r->err_off = off;
	store_diag_set(r->reterr, "training set: %s", msg);
	return rv;
}

/* Whether n more bytes are there; if not, fails naming what was read. */
static vigil_err
cr_need(codec_r *r, size_t n, const char *what)
{
	if (r->len - r->at >= n)
		return VIGIL_OK;
	return codec_fail(r, r->at, VIGIL_ECORRUPT, "truncated in %s (%zu bytes left, %zu needed)",
	    what, r->len - r->at, n);
}

static uint32_t
cr_u32(codec_r *r)
{
	uint32_t v = 0;

	for (int i = 0; i < 4; i++)
		v |= (uint32_t)r->p[r->at++] << (8 * i);
	return v;
}

static uint64_t
cr_u64(codec_r *r)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v |= (uint64_t)r->p[r->at++] << (8 * i);
	return v;
}

static float
cr_f32(codec_r *r)
{
	uint32_t u = cr_u32(r);
	float    v;

	memcpy(&v, &u, sizeof v);
	return v;
}

/* Days whose start in ms (day * VIGIL_MS_PER_DAY) is an int64: what
 * floor(t / day) gives for any int64 t, and what training multiplies. */
#define CODEC_DAY_MAX (INT64_MAX / VIGIL_MS_PER_DAY)

/* The header and names: a new empty set. */
static vigil_err
codec_read_head(codec_r *r, batch_trainset **ret_s)
{
	char     *names[BATCH_TRAIN_MAX_FEATURES];
	char      name[BATCH_TRAIN_MAX_NAME + 1];
	uint32_t  version, nfeat = 0;
	uint64_t  at;
	batch_train_opts o;
	store_diag d;
	vigil_err rv;

	memset(names, 0, sizeof names);
	if ((rv = cr_need(r, 16, "the header")) != VIGIL_OK)
		goto out;
	version = cr_u32(r);
	if (version != BATCH_TRAINSET_VERSION) {
		rv = codec_fail(r, 0, VIGIL_EVERSION, "version %u (this build reads %d)", version,
		    BATCH_TRAINSET_VERSION);
		goto out;
	}
	nfeat = cr_u32(r);
	if (nfeat == 0 || nfeat > BATCH_TRAIN_MAX_FEATURES) {
		rv = codec_fail(r, 4, VIGIL_ECORRUPT, "%u features (1 to %d)", nfeat,
		    BATCH_TRAIN_MAX_FEATURES);
		nfeat = 0;
		goto out;
	}
	batch_train_opts_default(&o);
	o.max_rows = cr_u64(r);
	if (o.max_rows < 2 || o.max_rows > BATCH_TRAIN_MAX_ROWS) {
		rv = codec_fail(r, 8, VIGIL_ECORRUPT, "max_rows %llu (2 to %llu)",
		    (unsigned long long)o.max_rows, (unsigned long long)BATCH_TRAIN_MAX_ROWS);
		nfeat = 0;
		goto out;
	}
	for (uint32_t j = 0; j < nfeat; j++) {
		size_t n;

		at = r->at;
		if ((rv = cr_need(r, 1, "a feature name")) != VIGIL_OK)
			goto out;
		n = r->p[r->at++];
		if (n == 0 || n > BATCH_TRAIN_MAX_NAME) {
			rv = codec_fail(r, at, VIGIL_ECORRUPT, "feature %u: name of %zu bytes (1 to %d)",
			    j, n, BATCH_TRAIN_MAX_NAME);
			goto out;
		}
		if ((rv = cr_need(r, n, "a feature name")) != VIGIL_OK)
			goto out;
		memcpy(name, &r->p[r->at], n);
		name[n] = '\0';
		r->at += n;
		/* Names are vigil's feature names: no control bytes (and a
		 * message quoting one stays one line). */
		for (size_t k = 0; k < n; k++) {
			if ((unsigned char)name[k] < 0x20 || name[k] == 0x7f) {
				rv = codec_fail(r, at + 1 + k, VIGIL_ECORRUPT,
				    "feature %u: name holds the control byte 0x%02x", j,
				    (unsigned)(unsigned char)name[k]);
				goto out;
			}
		}
		names[j] = strdup(name);
		if (names[j] == NULL) {
			rv = VIGIL_ENOMEM;
			goto out;
		}
	}
	rv = batch_trainset_new(nfeat, (const char *const *)names, &o, ret_s, &d);
	if (rv == VIGIL_EINVAL) /* two names alike */
		rv = codec_fail(r, 16, VIGIL_ECORRUPT, "%s", d.msg + strlen("training set: "));
out:
	for (uint32_t j = 0; j < nfeat; j++)
		free(names[j]);
	return rv;
}

/* The days: s->days, kept counts zero. */
static vigil_err
codec_read_days(codec_r *r, batch_trainset *s, size_t *ret_days_at)
{
	uint32_t ndays;
	uint64_t legit_seen = 0;
	vigil_err rv;

	if ((rv = cr_need(r, 4, "the day count")) != VIGIL_OK)
		return rv;
	ndays = cr_u32(r);
	if (ndays > BATCH_TRAIN_MAX_DAYS)
		return codec_fail(r, r->at - 4, VIGIL_ECORRUPT, "%u days (at most %d)", ndays,
		    BATCH_TRAIN_MAX_DAYS);
	if ((rv = cr_need(r, (size_t)ndays * 24, "the days")) != VIGIL_OK)
		return rv;
	*ret_days_at = r->at;
	if (ndays > 0) {
		s->days = calloc(ndays, sizeof *s->days);
		if (s->days == NULL)
			return VIGIL_ENOMEM;
		s->cap_days = ndays;
	}
	for (uint32_t k = 0; k < ndays; k++) {
		uint64_t   at = r->at;
		train_day *d = &s->days[k];

		d->day = (int64_t)cr_u64(r);
		d->legit = cr_u64(r);
		d->fraud = cr_u64(r);
		if (d->day < -CODEC_DAY_MAX || d->day > CODEC_DAY_MAX)
			return codec_fail(r, at, VIGIL_ECORRUPT, "day %u: %lld is out of range", k,
			    (long long)d->day);
		if (k > 0 && d->day <= s->days[k - 1].day)
			return codec_fail(r, at, VIGIL_ECORRUPT, "day %u: %lld is not after %lld", k,
			    (long long)d->day, (long long)s->days[k - 1].day);
		/* A day is there because a row of it was added; counts add up
		 * without wrapping (far beyond any archive). */
		if ((d->legit == 0 && d->fraud == 0) || d->legit > (UINT64_MAX >> 2) ||
		    d->fraud > s->max_rows || legit_seen + d->legit > (UINT64_MAX >> 2))
			return codec_fail(r, at, VIGIL_ECORRUPT,
			    "day %u: %llu legitimate rows and %llu frauds out of range", k,
			    (unsigned long long)d->legit, (unsigned long long)d->fraud);
		legit_seen += d->legit;
		s->ndays++;
	}
	s->legit_seen = legit_seen;
	return VIGIL_OK;
}

/* The rows, then the per-day checks. */
static vigil_err
codec_read_rows(codec_r *r, batch_trainset *s, size_t days_at)
{
	uint64_t  nrows, *frauds = NULL;
	size_t    rb = codec_row_bytes(s->nfeat);
	vigil_err rv;

	if ((rv = cr_need(r, 8, "the row count")) != VIGIL_OK)
		return rv;
	nrows = cr_u64(r);
	if (nrows > s->max_rows)
		return codec_fail(r, r->at - 8, VIGIL_ECORRUPT, "%llu rows, over max_rows %llu",
		    (unsigned long long)nrows, (unsigned long long)s->max_rows);
	if (nrows > (r->len - r->at) / rb)
		return codec_fail(r, r->at - 8, VIGIL_ECORRUPT,
		    "%llu rows of %zu bytes, %zu bytes left", (unsigned long long)nrows, rb,
		    r->len - r->at);
	if (nrows > 0 && (rv = trainset_reserve(s, (size_t)nrows)) != VIGIL_OK)
		return rv;
	frauds = calloc(s->ndays ? s->ndays : 1, sizeof *frauds);
	if (frauds == NULL)
		return VIGIL_ENOMEM;
	for (uint64_t i = 0; i < nrows; i++) {
		uint64_t at = r->at;
		size_t   di;
		bool     found;
		uint8_t  fraud;
		float   *x = &s->x[i * s->nfeat];

		s->t[i] = (int64_t)cr_u64(r);
		s->key[i] = cr_u64(r);
		s->mix[i] = train_mix(s->key[i]);
		fraud = r->p[r->at++];
		for (uint32_t j = 0; j < s->nfeat; j++) {
			float v = cr_f32(r);

			x[j] = isfinite(v) ? v : NAN;
		}
		if (fraud > 1) {
			rv = codec_fail(r, at + 16, VIGIL_ECORRUPT, "row %llu: label byte %u",
			    (unsigned long long)i, fraud);
			goto out;
		}
		s->fraud[i] = fraud;
		di = trainset_day_find(s, train_day_of(s->t[i]), &found);
		if (!found) {
			rv = codec_fail(r, at, VIGIL_ECORRUPT, "row %llu: time %lld is on none of the "
			    "set's days", (unsigned long long)i, (long long)s->t[i]);
			goto out;
		}
		if (fraud) {
			frauds[di]++;
			s->nfraud++;
		} else {
			s->days[di].kept++;
		}
		s->n++;
	}
	for (size_t k = 0; k < s->ndays; k++) {
		const train_day *d = &s->days[k];
		uint64_t at = days_at + 24 * k;

		if (frauds[k] != d->fraud) {
			rv = codec_fail(r, at, VIGIL_ECORRUPT, "day %zu: %llu frauds counted, %llu "
			    "among the rows (every fraud is kept)", k, (unsigned long long)d->fraud,
			    (unsigned long long)frauds[k]);
			goto out;
		}
		/* Below max_rows nothing was ever dropped. */
		if (d->kept > d->legit || (s->n < s->max_rows && d->kept != d->legit)) {
			rv = codec_fail(r, at, VIGIL_ECORRUPT, "day %zu: %llu legitimate rows counted, "
			    "%llu kept (of at most %llu rows)", k, (unsigned long long)d->legit,
			    (unsigned long long)d->kept, (unsigned long long)s->max_rows);
			goto out;
		}
	}
	if (r->at != r->len) {
		rv = codec_fail(r, r->at, VIGIL_ECORRUPT, "%zu bytes after the last row",
		    r->len - r->at);
		goto out;
	}
	trainset_heapify(s);
	rv = VIGIL_OK;
out:
	free(frauds);
	return rv;
}

vigil_err
batch_trainset_decode(const void *buf, size_t len, batch_trainset **ret_s,
    uint64_t *reterr_off, store_diag *reterr)
{
	codec_r r = { .p = buf, .len = len, .reterr = reterr };
	batch_trainset *s = NULL;
	size_t days_at = 0;
	vigil_err rv;

	rv = codec_read_head(&r, &s);
	if (rv == VIGIL_OK)
		rv = codec_read_days(&r, s, &days_at);
	if (rv == VIGIL_OK)
		rv = codec_read_rows(&r, s, days_at);
	if (rv == VIGIL_OK) {
		*ret_s = s;
		s = NULL;
	} else if (rv == VIGIL_ENOMEM) {
		store_diag_set(reterr, "training set: out of memory");
	} else if (reterr_off != NULL) {
		*reterr_off = r.err_off;
	}
	batch_trainset_free(s);
	return rv;
}

/* ---- Metrics ---- */

typedef struct train_scored {
	float  s;
	size_t i;
} train_scored;

/* Highest score first, NaN last; ties in index order (no effect on the
 * results: a tied group is summed whole). */
static int
train_scored_cmp(const void *pa, const void *pb)
{
	const train_scored *a = pa, *b = pb;
	bool na = isnan(a->s), nb = isnan(b->s);

	if (na != nb)
		return na ? 1 : -1;
	if (!na && a->s != b->s)
		return a->s > b->s ? -1 : 1;
	return (a->i > b->i) - (a->i < b->i);
}

static train_scored *
train_scored_sort(const float *score, size_t n)
{
	train_scored *v = malloc((n ? n : 1) * sizeof *v);

	if (v == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		v[i].s = score[i];
		v[i].i = i;
	}
	qsort(v, n, sizeof *v, train_scored_cmp);
	return v;
}

static bool
train_same_score(float a, float b)
{
	return (isnan(a) && isnan(b)) || a == b;
}

double
batch_metric_auc(const float *score, const float *label, const float *w, size_t n)
{
	train_scored *v;
	double ptot = 0, ntot = 0, nabove = 0, sum = 0;

	for (size_t i = 0; i < n; i++) {
		double wi = w ? w[i] : 1.0;

		if (label[i] != 0)
			ptot += wi;
		else
			ntot += wi;
	}
	if (ptot <= 0 || ntot <= 0)
		return NAN;
	v = train_scored_sort(score, n);
	if (v == NULL)
		return NAN;
	for (size_t g = 0; g < n;) {
		double pg = 0, ng = 0;
		size_t e = g;

		for (; e < n && train_same_score(v[e].s, v[g].s); e++) {
			double wi = w ? w[v[e].i] : 1.0;

			if (label[v[e].i] != 0)
				pg += wi;
			else
				ng += wi;
		}
		/* Each positive of the group beats the negatives below it and
		 * ties with the group's own. */
		sum += pg * (ntot - nabove - ng) + 0.5 * pg * ng;
		nabove += ng;
		g = e;
	}
	free(v);
	return sum / (ptot * ntot);
}

double
batch_metric_ap(const float *score, const float *label, const float *w, size_t n)
{
	train_scored *v;
	double ptot = 0, tp = 0, fp = 0, ap = 0;

	for (size_t i = 0; i < n; i++)
		if (label[i] != 0)
			ptot += w ? w[i] : 1.0;
	if (ptot <= 0)
		return NAN;
	v = train_scored_sort(score, n);
	if (v == NULL)
		return NAN;
	for (size_t g = 0; g < n;) {
		double pg = 0;
		size_t e = g;

		for (; e < n && train_same_score(v[e].s, v[g].s); e++) {
			double wi = w ? w[v[e].i] : 1.0;

			if (label[v[e].i] != 0)
				pg += wi;
			else
				fp += wi;
		}
		tp += pg;
		if (pg > 0)
			ap += (pg / ptot) * (tp / (tp + fp));
		g = e;
	}
	free(v);
	return ap;
}

/* ---- Calibration ---- */

/* log(1 + e^m) without overflow. */
static double
train_softplus(double m)
{
	return m > 0 ? m + log1p(exp(-m)) : log1p(exp(m));
}

/* The probability as the consumer turns it into log-odds (train.h). */
static double
train_logit(float p)
{
	double q = p;

	if (!(q >= BATCH_CALIB_P_MIN)) /* NaN too */
		q = BATCH_CALIB_P_MIN;
	if (q > 1.0 - BATCH_CALIB_P_MIN)
		q = 1.0 - BATCH_CALIB_P_MIN;
	return log(q) - log1p(-q);
}

/* The weighted mean of 1 / (1 + e^-(a logit(p) + b)) over p[0..n). */
static double
train_calib_mean(const float *p, const float *w, size_t n, double a, double b)
{
	double sum = 0, wsum = 0;

	for (size_t i = 0; i < n; i++) {
		sum += w[i] / (1 + exp(-(a * train_logit(p[i]) + b)));
		wsum += w[i];
	}
	return sum / wsum;
}

/* The b at which train_calib_mean(p, w, n, a, b) is target (in (0, 1)),
 * by bisection from b0 (the mean rises with b): 200 halvings of a bracket
 * found by doubling steps, which reach the double next to it. */
static double
train_calib_match(const float *p, const float *w, size_t n, double a, double b0, double target)
{
	double lo = b0, hi = b0, step = 1;

	while (train_calib_mean(p, w, n, a, lo) > target && step < 1e3) {
		lo -= step;
		step *= 2;
	}
	step = 1;
	while (train_calib_mean(p, w, n, a, hi) < target && step < 1e3) {
		hi += step;
		step *= 2;
	}
	for (int it = 0; it < 200 && lo < hi; it++) {
		double mid = lo + (hi - lo) / 2;

		if (mid <= lo || mid >= hi)
			break;
		if (train_calib_mean(p, w, n, a, mid) < target)
			lo = mid;
		else
			hi = mid;
	}
	return lo + (hi - lo) / 2;
}

/* Platt's objective at (a, b): the weighted cross-entropy against targets
 * t1 (frauds) and t0 (the rest). */
static double
calib_loss(const float *p, const float *label, const float *w, size_t n, double t1, double t0,
    const batch_calib_prior *pr, double a, double b)
{
	double f = 0;

	for (size_t i = 0; i < n; i++) {
		double m = a * train_logit(p[i]) + b;

		f += (w ? w[i] : 1.0) * (train_softplus(m) - (label[i] > 0.5f ? t1 : t0) * m);
	}
	if (pr != NULL)
		f += 0.5 * ((a - pr->a) * (a - pr->a) / (pr->sd_a * pr->sd_a) +
		    (b - pr->b) * (b - pr->b) / (pr->sd_b * pr->sd_b));
	return f;
}

bool
batch_calib_platt(const float *p, const float *label, const float *w, size_t n,
    const batch_calib_prior *pr, double *ret_a, double *ret_b, char *why, size_t whylen)
{
	double n1 = 0, n0 = 0, t1, t0, a = pr ? pr->a : 1.0, b = pr ? pr->b : 0.0, f;
	bool   done = false;

	for (size_t i = 0; i < n; i++) {
		double wi = w ? w[i] : 1.0;

		if (!(wi >= 0) || !isfinite(wi)) {
			snprintf(why, whylen, "weight of row %zu is %g", i, wi);
			return false;
		}
		if (label[i] > 0.5f)
			n1 += wi;
		else
			n0 += wi;
	}
	if (pr != NULL && (!isfinite(pr->a) || !isfinite(pr->b) || !(pr->sd_a > 0) ||
	    !(pr->sd_b > 0) || !isfinite(pr->sd_a) || !isfinite(pr->sd_b))) {
		snprintf(why, whylen, "the prior (a %g sd %g, b %g sd %g) is not finite and "
		    "positive", pr->a, pr->sd_a, pr->b, pr->sd_b);
		return false;
	}
	if (!(n1 > 0) || !(n0 > 0)) {
		snprintf(why, whylen, "no %s weight in the validation rows",
		    n1 > 0 ? "legitimate" : "fraud");
		return false;
	}
	/* Platt's targets: a perfectly separated validation set would
	 * otherwise drive a to infinity. */
	t1 = (n1 + 1) / (n1 + 2);
	t0 = 1 / (n0 + 2);
	f = calib_loss(p, label, w, n, t1, t0, pr, a, b);
	for (int it = 0; it < BATCH_CALIB_MAX_ITER && !done; it++) {
		double gz = 0, g1 = 0, hzz = 0, hz = 0, h11 = 0, det, da, db, step, fn = f;

		for (size_t i = 0; i < n; i++) {
			double z = train_logit(p[i]), wi = w ? w[i] : 1.0;
			double q = 1 / (1 + exp(-(a * z + b)));
			double r = wi * (q - (label[i] > 0.5f ? t1 : t0)), h = wi * q * (1 - q);

			gz += r * z;
			g1 += r;
			hzz += h * z * z;
			hz += h * z;
			h11 += h;
		}
		if (pr != NULL) {
			gz += (a - pr->a) / (pr->sd_a * pr->sd_a);
			g1 += (b - pr->b) / (pr->sd_b * pr->sd_b);
			hzz += 1 / (pr->sd_a * pr->sd_a);
			h11 += 1 / (pr->sd_b * pr->sd_b);
		}
		det = hzz * h11 - hz * hz;
		if (!(det > 1e-12 * hzz * h11)) {
			snprintf(why, whylen, "the validation predictions do not vary "
			    "(Newton step %d)", it + 1);
			return false;
		}
		da = (h11 * gz - hz * g1) / det;
		db = (hzz * g1 - hz * gz) / det;
		/* Halve the Newton step until the objective does not rise. */
		for (step = 1.0; step >= 1.0 / 1024; step /= 2) {
			fn = calib_loss(p, label, w, n, t1, t0, pr, a - step * da, b - step * db);
			if (fn <= f)
				break;
		}
		if (step < 1.0 / 1024) {
			done = true; /* no step lowers it: at the minimum to rounding */
			break;
		}
		a -= step * da;
		b -= step * db;
		done = fabs(step * da) < 1e-9 * (1 + fabs(a)) && fabs(step * db) < 1e-9 * (1 + fabs(b));
		f = fn;
	}
	if (!done) {
		snprintf(why, whylen, "no convergence in %d Newton steps (a %g, b %g)",
		    BATCH_CALIB_MAX_ITER, a, b);
		return false;
	}
	if (!isfinite(a) || !isfinite(b)) {
		snprintf(why, whylen, "the fit is not finite (a %g, b %g)", a, b);
		return false;
	}
	if (!(a > 0)) {
		snprintf(why, whylen, "a %g is not positive: the validation frauds do not score "
		    "above the legitimate rows", a);
		return false;
	}
	*ret_a = a;
	*ret_b = b;
	return true;
}

/* ---- Training ---- */

static void
train_fmt_day(char *buf, size_t len, int64_t day)
{
	time_t    secs = (time_t)(day * (VIGIL_MS_PER_DAY / 1000));
	struct tm tm;

	if (gmtime_r(&secs, &tm) == NULL || strftime(buf, len, "%Y-%m-%d", &tm) == 0)
		snprintf(buf, len, "day %lld", (long long)day);
}

static vigil_err
train_check_opts(const batch_train_opts *o, store_diag *reterr)
{
	if (o->threads > BATCH_MAX_THREADS) {
		store_diag_set(reterr, "training: threads %u (at most %d)", o->threads,
		    BATCH_MAX_THREADS);
		return VIGIL_EINVAL;
	}
	if (o->max_rounds == 0 || o->max_rounds > BATCH_TRAIN_MAX_ROUNDS) {
		store_diag_set(reterr, "training: max_rounds %u (1 to %d)", o->max_rounds,
		    BATCH_TRAIN_MAX_ROUNDS);
		return VIGIL_EINVAL;
	}
	if (o->min_rounds > o->max_rounds) {
		store_diag_set(reterr, "training: min_rounds %u above max_rounds %u", o->min_rounds,
		    o->max_rounds);
		return VIGIL_EINVAL;
	}
	if (o->max_depth == 0 || o->max_depth > BATCH_TRAIN_MAX_DEPTH) {
		store_diag_set(reterr, "training: max_depth %u (1 to %d)", o->max_depth,
		    BATCH_TRAIN_MAX_DEPTH);
		return VIGIL_EINVAL;
	}
	if (!(o->eta > 0 && o->eta <= 1)) {
		store_diag_set(reterr, "training: eta %g (over 0, at most 1)", o->eta);
		return VIGIL_EINVAL;
	}
	if (!(o->min_child_weight >= 0 && isfinite(o->min_child_weight))) {
		store_diag_set(reterr, "training: min_child_weight %g", o->min_child_weight);
		return VIGIL_EINVAL;
	}
	if (!(o->reg_lambda >= 0 && isfinite(o->reg_lambda))) {
		store_diag_set(reterr, "training: reg_lambda %g", o->reg_lambda);
		return VIGIL_EINVAL;
	}
	if (o->max_bin < 2 || o->max_bin > 65536) {
		store_diag_set(reterr, "training: max_bin %u (2 to 65536)", o->max_bin);
		return VIGIL_EINVAL;
	}
	if (!(o->scale_pos_weight > 0 && isfinite(o->scale_pos_weight))) {
		store_diag_set(reterr, "training: scale_pos_weight %g", o->scale_pos_weight);
		return VIGIL_EINVAL;
	}
	if (!(o->calib_trust >= 0 && o->calib_trust <= 1)) {
		store_diag_set(reterr, "training: calib_trust %g (0 to 1)", o->calib_trust);
		return VIGIL_EINVAL;
	}
	if (!(o->valid_share > 0 && o->valid_share < 1)) {
		store_diag_set(reterr, "training: valid_share %g (between 0 and 1)", o->valid_share);
		return VIGIL_EINVAL;
	}
	if (o->stop_metric != BATCH_TRAIN_STOP_AP && o->stop_metric != BATCH_TRAIN_STOP_LOGLOSS) {
		store_diag_set(reterr, "training: stop_metric %d", (int)o->stop_metric);
		return VIGIL_EINVAL;
	}
	return VIGIL_OK;
}

/* "name:value" in XGBoost's evaluation line, NaN if absent. */
static double
train_eval_value(const char *line, const char *name)
{
	const char *p = strstr(line, name);

	return p != NULL ? strtod(p + strlen(name), NULL) : NAN;
}

/* XGBoost's last error, first line only (a stack trace may follow). */
static void
train_xgb_err(store_diag *reterr, const char *what)
{
	const char *e = XGBGetLastError();

	store_diag_set(reterr, "training: xgboost %s: %.*s", what, (int)strcspn(e, "\r\n"), e);
}

/* Calls XGBoost; on failure sets rv and *reterr and leaves through out. */
#define XGB(call, what)                                                        \
	do {                                                                   \
		if ((call) != 0) {                                             \
			train_xgb_err(reterr, (what));                         \
			rv = VIGIL_EINTERNAL;                                  \
			goto out;                                              \
		}                                                              \
	} while (0)

/*
 * XGBoost's training matrix for rows [at, at + rows) of s: a quantile
 * matrix, which keeps only each value's histogram bin (a byte for up to 256
 * bins) where a plain one copies every value with its column index (8 bytes;
 * 1.0 GB peak against 0.55 for the bench's million rows of 60 features).
 * It is fed by a callback, TRAIN_BATCH rows at a time (a fixed size: the
 * bins depend on the batches).
 */
#define TRAIN_BATCH 65536

typedef struct train_iter {
	DMatrixHandle proxy;
	const float  *x, *label, *weight;
	size_t        nfeat, rows, at;
	bool          failed;
} train_iter;

static void
train_iter_reset(DataIterHandle h)
{
	((train_iter *)h)->at = 0;
}

static int
train_iter_next(DataIterHandle h)
{
	train_iter *it = h;
	size_t m = it->rows - it->at < TRAIN_BATCH ? it->rows - it->at : TRAIN_BATCH;
	char   js[192];

	if (m == 0 || it->failed)
		return 0;
	snprintf(js, sizeof js, "{\"data\": [%llu, true], \"shape\": [%zu, %zu], "
	    "\"typestr\": \"<f4\", \"version\": 3}",
	    (unsigned long long)(uintptr_t)&it->x[it->at * it->nfeat], m, it->nfeat);
	if (XGProxyDMatrixSetDataDense(it->proxy, js) != 0 ||
	    XGDMatrixSetFloatInfo(it->proxy, "label", &it->label[it->at], m) != 0 ||
	    XGDMatrixSetFloatInfo(it->proxy, "weight", &it->weight[it->at], m) != 0) {
		it->failed = true;
		return 0;
	}
	it->at += m;
	return 1;
}

static vigil_err
train_matrix_pass(train_iter *it, DMatrixHandle ref, const char *cfg, DMatrixHandle *ret_dm,
    store_diag *reterr)
{
	DMatrixHandle dm = NULL;
	bst_ulong n;
	vigil_err rv = VIGIL_OK;

	it->at = 0;
	it->failed = false;
	XGB(XGQuantileDMatrixCreateFromCallback(it, it->proxy, ref, train_iter_reset,
	    train_iter_next, cfg, &dm), "matrix");
	XGB(XGDMatrixNumRow(dm, &n), "matrix rows");
	if (it->failed || n != it->rows) {
		if (it->failed)
			train_xgb_err(reterr, "matrix batch");
		else
			store_diag_set(reterr, "training: xgboost matrix: %llu rows of %zu",
			    (unsigned long long)n, it->rows);
		rv = VIGIL_EINTERNAL;
		goto out;
	}
	*ret_dm = dm;
	dm = NULL;
out:
	if (dm != NULL)
		XGDMatrixFree(dm);
	return rv;
}

/*
 * With sketch_weight (not NULL), the bins are cut from a first matrix whose
 * rows weigh sketch_weight instead of weight, and the training matrix takes
 * its cuts from that one (XGBoost's `ref`). The sketch puts a bin boundary
 * every 1/max_bin of the weight: with the training weights, frauds (under 1%
 * of it) get almost no boundary of their own, and a fraud group beyond
 * every legitimate value of a feature shares its bin with the legitimate
 * tail, so no split can isolate it (docs/model.md, "Bins").
 */
static vigil_err
train_matrix(const batch_trainset *s, size_t at, size_t rows, const float *label,
    const float *weight, const float *sketch_weight, uint32_t threads, uint32_t max_bin,
    DMatrixHandle *ret_dm, store_diag *reterr)
{
	train_iter it = { .x = &s->x[at * s->nfeat], .label = label, .weight = weight,
	    .nfeat = s->nfeat, .rows = rows };
	DMatrixHandle dm = NULL, ref = NULL;
	char cfg[128];
	vigil_err rv = VIGIL_OK;

	snprintf(cfg, sizeof cfg, "{\"missing\": NaN, \"nthread\": %u, \"max_bin\": %u}",
	    threads, max_bin);
	XGB(XGProxyDMatrixCreate(&it.proxy), "proxy matrix");
	if (sketch_weight != NULL) {
		it.weight = sketch_weight;
		rv = train_matrix_pass(&it, NULL, cfg, &ref, reterr);
		if (rv != VIGIL_OK)
			goto out;
		it.weight = weight;
	}
	rv = train_matrix_pass(&it, ref, cfg, &dm, reterr);
	if (rv != VIGIL_OK)
		goto out;
	XGB(XGDMatrixSetStrFeatureInfo(dm, "feature_name", (const char **)s->names, s->nfeat),
	    "feature names");
	*ret_dm = dm;
	dm = NULL;
out:
	if (dm != NULL)
		XGDMatrixFree(dm);
	if (ref != NULL)
		XGDMatrixFree(ref);
	if (it.proxy != NULL)
		XGDMatrixFree(it.proxy);
	return rv;
}

/*
 * Weights for the bins' sketch of rows [0, n): the training weights with the
 * frauds' scaled so that frauds and legitimate rows weigh the same in all.
 * Only where the boundaries fall depends on them; the trees are fitted with
 * the training weights.
 */
static void
train_sketch_weights(const float *label, const float *weight, size_t n, float *ret)
{
	double wl = 0, wf = 0, k;

	for (size_t i = 0; i < n; i++) {
		if (label[i] > 0.5f)
			wf += weight[i];
		else
			wl += weight[i];
	}
	k = wf > 0 && wl > 0 ? wl / wf : 1.0;
	for (size_t i = 0; i < n; i++)
		ret[i] = label[i] > 0.5f ? (float)(weight[i] * k) : weight[i];
}

/* b's probabilities for rows [at, at + rows) of s, predicted in place from
 * the floats (no matrix); *ret_p valid until b's next call. */
static vigil_err
train_predict(BoosterHandle b, const batch_trainset *s, size_t at, size_t rows,
    const float **ret_p, store_diag *reterr)
{
	static const char cfg[] = "{\"type\": 0, \"training\": false, \"iteration_begin\": 0, "
	    "\"iteration_end\": 0, \"strict_shape\": false, \"missing\": NaN, \"cache_id\": 0}";
	const bst_ulong *shape;
	bst_ulong dim;
	char      js[192];
	vigil_err rv = VIGIL_OK;

	snprintf(js, sizeof js, "{\"data\": [%llu, true], \"shape\": [%zu, %u], "
	    "\"typestr\": \"<f4\", \"version\": 3}",
	    (unsigned long long)(uintptr_t)&s->x[at * s->nfeat], rows, s->nfeat);
	XGB(XGBoosterPredictFromDense(b, js, cfg, NULL, &shape, &dim, ret_p), "predict");
	if (dim != 1 || shape[0] != rows) {
		store_diag_set(reterr, "training: xgboost predict: %llu values for %zu rows",
		    dim == 1 ? (unsigned long long)shape[0] : 0ULL, rows);
		rv = VIGIL_EINTERNAL;
	}
out:
	return rv;
}

/* A booster over dms[0..ndm) with the training parameters of o. */
static vigil_err
train_booster_new(DMatrixHandle *dms, bst_ulong ndm, const batch_train_opts *o,
    double base_score, BoosterHandle *ret_b, store_diag *reterr)
{
	BoosterHandle bst = NULL;
	char pbuf[64];
	vigil_err rv = VIGIL_OK;

	XGB(XGBoosterCreate(dms, ndm, &bst), "booster");
	XGB(XGBoosterSetParam(bst, "verbosity", "0"), "verbosity");
	XGB(XGBoosterSetParam(bst, "validate_parameters", "1"), "validate_parameters");
	XGB(XGBoosterSetParam(bst, "objective", "binary:logistic"), "objective");
	XGB(XGBoosterSetParam(bst, "tree_method", "hist"), "tree_method");
	XGB(XGBoosterSetParam(bst, "seed", "0"), "seed");
	XGB(XGBoosterSetParam(bst, "eval_metric", "aucpr"), "eval_metric");
	XGB(XGBoosterSetParam(bst, "eval_metric", "logloss"), "eval_metric");
#define PARAM(name, fmt, v)                                                    \
	do {                                                                   \
		snprintf(pbuf, sizeof pbuf, fmt, (double)(v));                 \
		XGB(XGBoosterSetParam(bst, (name), pbuf), (name));             \
	} while (0)
	PARAM("nthread", "%.0f", o->threads ? o->threads : 1);
	PARAM("max_depth", "%.0f", o->max_depth);
	PARAM("max_bin", "%.0f", o->max_bin);
	PARAM("eta", "%.17g", o->eta);
	PARAM("min_child_weight", "%.17g", o->min_child_weight);
	PARAM("lambda", "%.17g", o->reg_lambda);
	PARAM("scale_pos_weight", "%.17g", o->scale_pos_weight);
	PARAM("base_score", "%.17g", base_score);
#undef PARAM
	*ret_b = bst;
	bst = NULL;
out:
	if (bst != NULL)
		XGBoosterFree(bst);
	return rv;
}

vigil_err
batch_train_run(batch_trainset *s, const batch_train_opts *o, char **ret_json,
    size_t *ret_len, batch_model_report *ret_rep, store_diag *reterr)
{
	batch_model_report rep;
	uint64_t t0 = vigil_mono_ns();
	uint32_t *perm = NULL;
	float    *label = NULL, *weight = NULL, *sketch = NULL;
	DMatrixHandle dm[2] = { NULL, NULL };
	BoosterHandle bst = NULL, best = NULL, fit = NULL, saved;
	const char *names[] = { "valid" };
	const char *buf;
	const float *pred;
	bst_ulong blen;
	char     *json = NULL, d0[32], d1[32];
	size_t    ntrain, nvalid, n = s->n;
	int64_t   first, last, span, vdays, split_day;
	uint32_t  min_frauds = o->min_frauds < 2 ? 2 : o->min_frauds;
	double    best_v = NAN, wsum = 0, wfraud = 0;
	batch_calib_prior prior;
	vigil_err rv;

	memset(&rep, 0, sizeof rep);
	rep.valid_auc = rep.valid_ap = rep.valid_logloss = rep.train_auc = NAN;
	rep.calib_a = rep.calib_b = NAN;
	rv = train_check_opts(o, reterr);
	if (rv != VIGIL_OK)
		goto out;
	rep.rows = n;
	rep.frauds = s->nfraud;
	if (s->nfraud < min_frauds) {
		snprintf(rep.why_not, sizeof rep.why_not,
		    "%llu frauds in the window, fewer than min_frauds %u",
		    (unsigned long long)s->nfraud, min_frauds);
		goto done;
	}
	first = s->days[0].day;
	last = s->days[s->ndays - 1].day;
	span = last - first + 1;
	if (span < 2) {
		snprintf(rep.why_not, sizeof rep.why_not,
		    "rows on one day only: nothing to validate on");
		goto done;
	}
	vdays = llround(o->valid_share * (double)span);
	vdays = vdays < 1 ? 1 : vdays > span - 1 ? span - 1 : vdays;
	split_day = last - vdays + 1;
	rep.split_ms = split_day * VIGIL_MS_PER_DAY;

	rv = VIGIL_ENOMEM;
	if (trainset_sort_perm(s, &perm) != VIGIL_OK)
		goto out;
	trainset_permute(s, perm);
	trainset_heapify(s);
	label = malloc((n ? n : 1) * sizeof *label);
	weight = malloc((n ? n : 1) * sizeof *weight);
	if (o->balanced_bins)
		sketch = malloc((n ? n : 1) * sizeof *sketch);
	if (label == NULL || weight == NULL || (o->balanced_bins && sketch == NULL))
		goto out;
	rv = VIGIL_OK;

	ntrain = 0;
	for (size_t i = 0, di = 0; i < n; i++) {
		int64_t day = train_day_of(s->t[i]);

		while (s->days[di].day != day) /* rows and days both ascend */
			di++;
		label[i] = s->fraud[i] ? 1.0f : 0.0f;
		weight[i] = s->fraud[i] ? 1.0f : (float)trainset_day_weight(&s->days[di]);
		if (day < split_day) {
			ntrain = i + 1;
			rep.train_frauds += s->fraud[i];
			wsum += weight[i];
			wfraud += s->fraud[i] ? weight[i] : 0.0;
		} else {
			rep.valid_frauds += s->fraud[i];
		}
	}
	nvalid = n - ntrain;
	rep.train_rows = ntrain;
	rep.valid_rows = nvalid;
	if (ntrain > 0) {
		rep.train_from_ms = s->t[0];
		rep.train_to_ms = s->t[ntrain - 1];
	}
	if (nvalid > 0) {
		rep.valid_from_ms = s->t[ntrain];
		rep.valid_to_ms = s->t[n - 1];
	}
	train_fmt_day(d0, sizeof d0, split_day);
	train_fmt_day(d1, sizeof d1, last);
	if (rep.train_frauds == 0 || rep.train_frauds == ntrain) {
		snprintf(rep.why_not, sizeof rep.why_not, "no %s row before %s",
		    rep.train_frauds == 0 ? "fraud" : "legitimate", d0);
		goto done;
	}
	if (rep.valid_frauds == 0 || rep.valid_frauds == nvalid) {
		snprintf(rep.why_not, sizeof rep.why_not, "no %s row in the validation days %s to %s",
		    rep.valid_frauds == 0 ? "fraud" : "legitimate", d0, d1);
		goto done;
	}
	rep.base_score = wfraud / wsum;

	if (sketch != NULL)
		train_sketch_weights(label, weight, ntrain, sketch);
	rv = train_matrix(s, 0, ntrain, label, weight, sketch, o->threads ? o->threads : 1,
	    o->max_bin, &dm[0], reterr);
	if (rv != VIGIL_OK)
		goto out;
	/* Validation: a plain matrix, from which XGBoost evaluates each round
	 * fast (from a quantile one it looks every value's bin up: 5 times the
	 * whole training's time for the bench). */
	XGB(XGDMatrixCreateFromMat_omp(&s->x[ntrain * s->nfeat], nvalid, s->nfeat, NAN, &dm[1],
	    o->threads ? (int)o->threads : 1), "validation matrix");
	XGB(XGDMatrixSetFloatInfo(dm[1], "label", &label[ntrain], nvalid), "labels");
	XGB(XGDMatrixSetFloatInfo(dm[1], "weight", &weight[ntrain], nvalid), "weights");
	XGB(XGDMatrixSetStrFeatureInfo(dm[1], "feature_name", (const char **)s->names, s->nfeat),
	    "feature names");
	rv = train_booster_new(dm, 2, o, rep.base_score, &bst, reterr);
	if (rv != VIGIL_OK)
		goto out;

	for (uint32_t it = 0; it < o->max_rounds; it++) {
		const char *line;
		double ap, ll, v;
		bool   better;

		XGB(XGBoosterUpdateOneIter(bst, (int)it, dm[0]), "boost");
		XGB(XGBoosterEvalOneIter(bst, (int)it, &dm[1], names, 1, &line), "evaluate");
		ap = train_eval_value(line, "valid-aucpr:");
		ll = train_eval_value(line, "valid-logloss:");
		v = o->stop_metric == BATCH_TRAIN_STOP_AP ? ap : ll;
		better = !isnan(v) && (isnan(best_v) ||
		    (o->stop_metric == BATCH_TRAIN_STOP_AP ? v > best_v : v < best_v));
		rep.rounds = it + 1;
		if (better) {
			best_v = v;
			rep.best_round = it + 1;
			rep.valid_logloss = ll;
		} else if (o->early_stop > 0 && it + 1 - rep.best_round >= o->early_stop &&
		    it + 1 >= o->min_rounds) {
			break;
		}
	}
	/* A validation figure from few frauds may peak by chance in the first
	 * rounds: the model keeps at least min_rounds. */
	if (rep.best_round > 0 && rep.best_round < o->min_rounds)
		rep.best_round = o->min_rounds < rep.rounds ? o->min_rounds : rep.rounds;
	if (rep.best_round == 0) {
		store_diag_set(reterr, "training: xgboost's validation figure is not a number");
		rv = VIGIL_EINTERNAL;
		goto out;
	}
	XGB(XGBoosterSlice(bst, 0, (int)rep.best_round, 1, &best), "slice");
	if (o->refit) {
		/* The same number of rounds again on every row: the validation
		 * days are the freshest mature labels, and a model that skips
		 * them serves fraud a week older than it could know. */
		/* The first booster, its matrices and their caches go first:
		 * the peak stays one training matrix (the slice is a copy). */
		XGBoosterFree(bst);
		bst = NULL;
		for (int k = 0; k < 2; k++) {
			XGDMatrixFree(dm[k]);
			dm[k] = NULL;
		}
		if (sketch != NULL)
			train_sketch_weights(label, weight, n, sketch);
		rv = train_matrix(s, 0, n, label, weight, sketch, o->threads ? o->threads : 1,
		    o->max_bin, &dm[0], reterr);
		if (rv != VIGIL_OK)
			goto out;
		for (size_t i = ntrain; i < n; i++) {
			wsum += weight[i];
			wfraud += s->fraud[i] ? weight[i] : 0.0;
		}
		rep.base_score = wfraud / wsum;
		rv = train_booster_new(&dm[0], 1, o, rep.base_score, &fit, reterr);
		if (rv != VIGIL_OK)
			goto out;
		for (uint32_t it = 0; it < rep.best_round; it++)
			XGB(XGBoosterUpdateOneIter(fit, (int)it, dm[0]), "boost (refit)");
		rep.refit = true;
	}
	saved = fit != NULL ? fit : best;
	/* Slicing (and training) does not carry the names: set on the model. */
	XGB(XGBoosterSetStrFeatureInfo(saved, "feature_name", (const char **)s->names, s->nfeat),
	    "feature names");
	XGB(XGBoosterSaveModelToBuffer(saved, "{\"format\": \"json\"}", &blen, &buf), "save");
	json = malloc(blen + 1);
	if (json == NULL) {
		rv = VIGIL_ENOMEM;
		goto out;
	}
	memcpy(json, buf, blen);
	json[blen] = '\0';

	rv = train_predict(best, s, ntrain, nvalid, &pred, reterr);
	if (rv != VIGIL_OK)
		goto out;
	rep.valid_auc = batch_metric_auc(pred, &label[ntrain], &weight[ntrain], nvalid);
	rep.valid_ap = batch_metric_ap(pred, &label[ntrain], &weight[ntrain], nvalid);
	/* Calibrated on days the model never saw, with the sampling weights:
	 * the legitimate rows count as the traffic they stand for, so the
	 * calibrated probability is a real-world fraud frequency. The prior
	 * is the model as it stands (a 1, b undoing scale_pos_weight): few
	 * validation frauds move it little. */
	prior.a = 1.0;
	prior.b = -log(o->scale_pos_weight);
	prior.sd_a = BATCH_CALIB_PRIOR_SD_A;
	prior.sd_b = BATCH_CALIB_PRIOR_SD_B;
	rep.calibrated = batch_calib_platt(pred, &label[ntrain], &weight[ntrain], nvalid, &prior,
	    &rep.calib_a, &rep.calib_b, rep.calib_why_not, sizeof rep.calib_why_not);
	if (!rep.calibrated) {
		rep.calib_a = rep.calib_b = NAN;
	} else if (rep.refit) {
		/* The fit is of the first booster's log-odds; the saved one
		 * starts from another base_score and was trained on the
		 * validation days too, so its log-odds there are others. The
		 * slope stays; b is moved so that the saved model's mean
		 * calibrated probability over the validation rows is the
		 * fitted one's (the validation days' fraud frequency). */
		double target = train_calib_mean(pred, &weight[ntrain], nvalid, rep.calib_a,
		    rep.calib_b);

		rv = train_predict(saved, s, ntrain, nvalid, &pred, reterr);
		if (rv != VIGIL_OK)
			goto out;
		rep.calib_b = train_calib_match(pred, &weight[ntrain], nvalid, rep.calib_a,
		    rep.calib_b, target);
	}
	if (rep.calibrated) {
		/* Trusted only so far: the served score ranks as the model
		 * across nights as much as within one. */
		rep.calib_a = prior.a + o->calib_trust * (rep.calib_a - prior.a);
		rep.calib_b = prior.b + o->calib_trust * (rep.calib_b - prior.b);
	}
	rv = train_predict(saved, s, 0, rep.refit ? n : ntrain, &pred, reterr);
	if (rv != VIGIL_OK)
		goto out;
	rep.train_auc = batch_metric_auc(pred, label, weight, rep.refit ? n : ntrain);
	rep.trained = true;
done:
	rep.seconds = (double)(vigil_mono_ns() - t0) / 1e9;
	*ret_json = json;
	*ret_len = json ? blen : 0;
	json = NULL;
	*ret_rep = rep;
	rv = VIGIL_OK;
out:
	if (rv == VIGIL_ENOMEM)
		store_diag_set(reterr, "training: out of memory");
	if (fit != NULL)
		XGBoosterFree(fit);
	if (best != NULL)
		XGBoosterFree(best);
	if (bst != NULL)
		XGBoosterFree(bst);
	for (int k = 0; k < 2; k++)
		if (dm[k] != NULL)
			XGDMatrixFree(dm[k]);
	free(json);
	free(perm);
	free(label);
	free(weight);
	free(sketch);
	return rv;
}
