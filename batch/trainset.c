/* SPDX-License-Identifier: MIT */
/*
 * batch/trainset.c - the nightly model's training set: its sampling, its
 * canonical order and its codec (train.h, docs/model.md "Training"); the
 * training itself is train.c.
 *
 * The set keeps rows in slots (one float block of nfeat per slot beside
 * parallel arrays of time, key and label) and the legitimate ones in a
 * max-heap on the remixed key, so that once max_rows slots are used a new
 * legitimate row replaces the largest one if it is smaller, and a new fraud
 * takes the largest one's slot: the legitimate rows kept are always the
 * bottom-(max_rows - frauds) by remixed key, a function of the rows added and
 * not of their order. Per-day counts of every row added give the weights.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "splitmix.h"
#include "train.h"
#include "train_int.h"
#include "vec.h"

/* One splitmix64 step from k: a bijection, so distinct keys stay distinct,
 * and the sample is independent of any other use of xxh64(txn_id). */
static uint64_t
train_mix(uint64_t k)
{
	return vigil_splitmix64(&k);
}

int64_t
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
	size_t cap;

	if (want <= s->cap)
		return VIGIL_OK;
	cap = vigil_array_grown(s->cap, want, 1024, (size_t)s->max_rows);
	if (cap == 0)
		return VIGIL_ETOOBIG; /* more rows than --max-rows */
	if (cap > SIZE_MAX / s->nfeat ||
	    vigil_array_resize(&s->t, cap, sizeof *s->t) != VIGIL_OK ||
	    vigil_array_resize(&s->key, cap, sizeof *s->key) != VIGIL_OK ||
	    vigil_array_resize(&s->mix, cap, sizeof *s->mix) != VIGIL_OK ||
	    vigil_array_resize(&s->fraud, cap, sizeof *s->fraud) != VIGIL_OK ||
	    vigil_array_resize(&s->heap, cap, sizeof *s->heap) != VIGIL_OK ||
	    vigil_array_resize(&s->x, cap * s->nfeat, sizeof *s->x) != VIGIL_OK)
		return VIGIL_ENOMEM;
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

void
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
	size_t     i = trainset_day_find(s, day, &found);

	if (!found) {
		if (s->ndays == BATCH_TRAIN_MAX_DAYS)
			return VIGIL_ETOOBIG;
		if (vigil_array_reserve(&s->days, &s->cap_days, s->ndays + 1, sizeof *s->days, 64,
		        BATCH_TRAIN_MAX_DAYS) != VIGIL_OK)
			return VIGIL_ENOMEM;
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
double
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
vigil_err
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
void
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
