/* SPDX-License-Identifier: MIT */
/*
 * batch/sketch.c - the threshold sketch: a mergeable summary of a stream of
 * numbers in log-spaced buckets (relative width BATCH_SKETCH_ALPHA), each
 * bucket holding its count, labelled and fraud counts and the exact
 * smallest and largest value it saw. Memory grows with the number of
 * occupied buckets (at most ~30k for any range of amounts), never with the
 * number of samples; merging two sketches is exact and order-independent,
 * which is what makes partitioned rebuilds equal a single run.
 *
 * Answers are sample values: exact when the bucket they fall in holds one
 * distinct value (discrete features, small data), else within ALPHA
 * relative error and always on the safe side documented per query.
 *
 * The buckets are a hand-written open-addressing table (sketch.h) rather
 * than uthash: bench/batch (bench-batch --records 1000000 --cards 100000
 * --threads 1 --runs 5, one archive, runs alternated, 2 cores shared with
 * other work) aggregates 692k and 770k records per CPU-second with it,
 * 528k and 613k with the buckets in a uthash table, about 1.3x slower.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "int.h"

#define SKETCH_OFF   (1 << 30)
#define SKETCH_EMPTY INT32_MIN /* never a key: keys stay within +-(OFF + 400k) */

/* log((1 + ALPHA) / (1 - ALPHA)) for ALPHA = 0.001: a constant, so that
 * concurrent sketches share no lazily initialised state. */
#define SKETCH_LNGAMMA 0.0020000006666670215
#if defined(__GNUC__) && !defined(__clang__) /* clang refuses a floating-point assertion */
_Static_assert(BATCH_SKETCH_ALPHA == 0.001, "recompute SKETCH_LNGAMMA");
#endif

/*
 * Buckets live in one open-addressing table (linear probing, at most half
 * full; struct batch_sketch in int.h, where the per-record update of an
 * existing bucket is inline): one cache line per lookup on the per-record
 * path, where a chained hash costs two or three misses.
 */
_Static_assert(SKETCH_EMPTY == INT32_MIN, "batch_sketch_add_key (int.h) tests INT32_MIN");

int32_t
batch_sketch_key(double v)
{
	double a;
	int32_t i;

	if (v == 0.0)
		return 0;
	a = fabs(v);
	/* |log(DBL_MIN..DBL_MAX)| / lngamma < 400k, far inside SKETCH_OFF. */
	i = (int32_t)ceil(log(a) / SKETCH_LNGAMMA);
	return v > 0 ? SKETCH_OFF + i : -(SKETCH_OFF + i);
}

#define sketch_slot batch_sketch_slot

batch_sketch *
batch_sketch_new(void)
{
	return calloc(1, sizeof(batch_sketch));
}

void
batch_sketch_free(batch_sketch *sk)
{
	if (sk == NULL)
		return;
	free(sk->slots);
	free(sk);
}

static vigil_err
sketch_grow(batch_sketch *sk)
{
	size_t ncap = sk->cap ? sk->cap * 2 : 64;
	batch_bucket *ns = malloc(ncap * sizeof *ns);

	if (ns == NULL)
		return VIGIL_ENOMEM;
	for (size_t i = 0; i < ncap; i++)
		ns[i].key = SKETCH_EMPTY;
	for (size_t i = 0; i < sk->cap; i++) {
		size_t j;

		if (sk->slots[i].key == SKETCH_EMPTY)
			continue;
		j = sketch_slot(sk->slots[i].key, ncap);
		while (ns[j].key != SKETCH_EMPTY)
			j = (j + 1) & (ncap - 1);
		ns[j] = sk->slots[i];
	}
	free(sk->slots);
	sk->slots = ns;
	sk->cap = ncap;
	return VIGIL_OK;
}

static vigil_err
sketch_bucket(batch_sketch *sk, int32_t key, double v, batch_bucket **ret_b)
{
	size_t j;
	vigil_err rv;

	if (sk->cap != 0) {
		j = sketch_slot(key, sk->cap);
		for (;;) {
			if (sk->slots[j].key == key) {
				*ret_b = &sk->slots[j];
				return VIGIL_OK;
			}
			if (sk->slots[j].key == SKETCH_EMPTY)
				break;
			j = (j + 1) & (sk->cap - 1);
		}
	}
	if (2 * (sk->nbuckets + 1) > sk->cap) {
		rv = sketch_grow(sk);
		if (rv != VIGIL_OK)
			return rv;
	}
	j = sketch_slot(key, sk->cap);
	while (sk->slots[j].key != SKETCH_EMPTY)
		j = (j + 1) & (sk->cap - 1);
	sk->slots[j].key = key;
	sk->slots[j].n = sk->slots[j].labelled = sk->slots[j].fraud = 0;
	sk->slots[j].min = v;
	sk->slots[j].max = v;
	sk->nbuckets++;
	*ret_b = &sk->slots[j];
	return VIGIL_OK;
}

void
batch_sketch_prefetch(const batch_sketch *sk, double v)
{
	if (isfinite(v))
		batch_sketch_prefetch_key(sk, batch_sketch_key(v));
}

vigil_err
batch_sketch_add(batch_sketch *sk, double v, int label)
{
	if (!isfinite(v))
		return VIGIL_OK;
	return batch_sketch_add_key(sk, batch_sketch_key(v), v, label);
}

vigil_err
batch_sketch_add_key_slow(batch_sketch *sk, int32_t key, double v, int label)
{
	batch_bucket *b;
	vigil_err rv;

	if (v == 0.0)
		v = 0.0; /* -0 and +0 are one value */
	rv = sketch_bucket(sk, key, v, &b);
	if (rv != VIGIL_OK)
		return rv;
	batch_bucket_count(sk, b, v, label);
	return VIGIL_OK;
}

vigil_err
batch_sketch_add_bucket(batch_sketch *sk, const batch_bucket *src)
{
	batch_bucket *b;
	vigil_err rv;

	if (src->n == 0 || src->labelled > src->n || src->fraud > src->labelled ||
	    !(src->min <= src->max) || batch_sketch_key(src->min) != src->key ||
	    batch_sketch_key(src->max) != src->key)
		return VIGIL_ECORRUPT;
	rv = sketch_bucket(sk, src->key, src->min, &b);
	if (rv != VIGIL_OK)
		return rv;
	b->n += src->n;
	b->labelled += src->labelled;
	b->fraud += src->fraud;
	if (src->min < b->min)
		b->min = src->min;
	if (src->max > b->max)
		b->max = src->max;
	sk->n += src->n;
	sk->labelled += src->labelled;
	return VIGIL_OK;
}

vigil_err
batch_sketch_merge(batch_sketch *dst, const batch_sketch *src)
{
	vigil_err rv;

	for (size_t i = 0; i < src->cap; i++) {
		if (src->slots[i].key == SKETCH_EMPTY)
			continue;
		rv = batch_sketch_add_bucket(dst, &src->slots[i]);
		if (rv != VIGIL_OK)
			return rv;
	}
	return VIGIL_OK;
}

uint64_t
batch_sketch_count(const batch_sketch *sk)
{
	return sk->n;
}

uint64_t
batch_sketch_labelled(const batch_sketch *sk)
{
	return sk->labelled;
}

size_t
batch_sketch_nbuckets(const batch_sketch *sk)
{
	return sk->nbuckets;
}

static int
bucket_cmp(const void *a, const void *b)
{
	int32_t x = ((const batch_bucket *)a)->key, y = ((const batch_bucket *)b)->key;

	return (x > y) - (x < y);
}

vigil_err
batch_sketch_sorted(const batch_sketch *sk, batch_bucket **ret_b, size_t *ret_n)
{
	batch_bucket *arr = NULL;
	size_t i = 0;

	if (sk->nbuckets > 0) {
		arr = malloc(sk->nbuckets * sizeof *arr);
		if (arr == NULL)
			return VIGIL_ENOMEM;
		for (size_t j = 0; j < sk->cap; j++)
			if (sk->slots[j].key != SKETCH_EMPTY)
				arr[i++] = sk->slots[j];
		qsort(arr, i, sizeof *arr, bucket_cmp);
	}
	*ret_b = arr;
	*ret_n = i;
	return VIGIL_OK;
}

vigil_err
batch_sketch_percentile(const batch_sketch *sk, double p, double *ret_v)
{
	batch_bucket *b = NULL;
	size_t nb, i;
	uint64_t rank, cum = 0;
	double r;
	vigil_err rv;

	if (!(p > 0.0 && p <= 100.0))
		return VIGIL_EINVAL;
	if (sk->n == 0)
		return VIGIL_ENOTFOUND;
	rv = batch_sketch_sorted(sk, &b, &nb);
	if (rv != VIGIL_OK)
		return rv;
	/* Nearest rank; the small epsilon keeps p/100*n = 95.000000001 at 95. */
	r = ceil(p / 100.0 * (double)sk->n - 1e-9);
	rank = r < 1.0 ? 1 : (uint64_t)r;
	if (rank > sk->n)
		rank = sk->n;
	for (i = 0; i < nb; i++) {
		cum += b[i].n;
		if (cum >= rank)
			break;
	}
	/* The first rank in the bucket is its min; any other is at most its
	 * max (exact when the bucket holds one distinct value). */
	*ret_v = cum - b[i].n + 1 == rank ? b[i].min : b[i].max;
	free(b);
	return VIGIL_OK;
}

vigil_err
batch_sketch_alert_rate(const batch_sketch *sk, double rate, double *ret_v)
{
	batch_bucket *b = NULL;
	size_t nb, i;
	uint64_t allowed, tail = 0;
	double v;
	vigil_err rv;

	if (!(rate >= 0.0 && rate <= 1.0))
		return VIGIL_EINVAL;
	if (sk->n == 0)
		return VIGIL_ENOTFOUND;
	rv = batch_sketch_sorted(sk, &b, &nb);
	if (rv != VIGIL_OK)
		return rv;
	allowed = (uint64_t)floor(rate * (double)sk->n * (1.0 + 1e-12));
	/* Walk down from the top: candidate i is v = b[i].min, for which
	 * count(>= v) is the tail from i up. Stop at the first that is over. */
	i = nb;
	while (i > 0 && tail + b[i - 1].n <= allowed) {
		tail += b[i - 1].n;
		i--;
	}
	if (i == nb) {
		/* Even the largest value alone is over the rate: nothing passes. */
		v = nextafter(b[nb - 1].max, INFINITY);
	} else if (i > 0 && b[i - 1].min != b[i - 1].max) {
		/* The boundary lies inside bucket i-1, whose values we cannot split:
		 * just above its largest value, count(>= v) is still the tail. */
		v = nextafter(b[i - 1].max, INFINITY);
	} else {
		v = b[i].min;
	}
	*ret_v = v;
	free(b);
	return VIGIL_OK;
}

vigil_err
batch_sketch_precision(const batch_sketch *sk, double target, uint64_t min_alerts,
    double *ret_v)
{
	batch_bucket *b = NULL;
	size_t nb, i;
	uint64_t alerts = 0, fr = 0;
	bool found = false;
	double v = 0;
	vigil_err rv;

	if (!(target >= 0.0 && target <= 1.0))
		return VIGIL_EINVAL;
	rv = batch_sketch_sorted(sk, &b, &nb);
	if (rv != VIGIL_OK)
		return rv;
	/*
	 * Precision of "feature >= v" is frauds / all transactions with
	 * feature >= v (docs/rules.md): a transaction without a fraud label is
	 * legitimate, as chargebacks are the only labels most issuers get.
	 * Dividing by labelled transactions instead would make precision 1
	 * whenever only frauds are labelled, and tune v down to the minimum.
	 * Precision is not monotone in v: test every candidate, keep the lowest.
	 */
	for (i = nb; i > 0; i--) {
		alerts += b[i - 1].n;
		fr += b[i - 1].fraud;
		if (alerts > 0 && alerts >= min_alerts &&
		    (double)fr >= target * (double)alerts * (1.0 - 1e-12)) {
			found = true;
			v = b[i - 1].min;
		}
	}
	free(b);
	if (!found)
		return VIGIL_ENOTFOUND;
	*ret_v = v;
	return VIGIL_OK;
}

vigil_err
batch_sketch_precision_best(const batch_sketch *sk, uint64_t min_alerts, double *ret_best,
    uint64_t *ret_frauds)
{
	batch_bucket *b = NULL;
	size_t nb, i;
	uint64_t alerts = 0, fr = 0;
	double best = NAN;
	vigil_err rv;

	rv = batch_sketch_sorted(sk, &b, &nb);
	if (rv != VIGIL_OK)
		return rv;
	for (i = nb; i > 0; i--) {
		alerts += b[i - 1].n;
		fr += b[i - 1].fraud;
		if (alerts > 0 && alerts >= min_alerts &&
		    (isnan(best) || (double)fr / (double)alerts > best))
			best = (double)fr / (double)alerts;
	}
	free(b);
	*ret_best = best;
	*ret_frauds = fr;
	return VIGIL_OK;
}
