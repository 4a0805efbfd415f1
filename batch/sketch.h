/* SPDX-License-Identifier: MIT */
/*
 * batch/sketch.h - private to batch/: the buckets of a value sketch
 * (sketch.c) and the inline per-record path that counts a value in its
 * bucket, an open-addressing table probed in place. batch.h has the
 * sketch's public half (new, add, quantiles, free).
 */
#ifndef VIGIL_BATCH_SKETCH_H
#define VIGIL_BATCH_SKETCH_H

#include <stddef.h>
#include <stdint.h>

#include "batch.h"

typedef struct batch_bucket {
	int32_t  key;      /* monotone in value: negative < 0 < positive */
	uint64_t n, labelled, fraud;
	double   min, max; /* exact extremes of the values that fell here */
} batch_bucket;

/* The buckets of sk sorted by key (ascending value) in a new array (free()).
 * *ret_n may be 0 (then *ret_b is NULL). */
vigil_err batch_sketch_sorted(const batch_sketch *sk, batch_bucket **ret_b, size_t *ret_n);
/* Adds one whole bucket (partial-file merge). */
vigil_err batch_sketch_add_bucket(batch_sketch *sk, const batch_bucket *b);
size_t    batch_sketch_nbuckets(const batch_sketch *sk);
/* The per-record path computes a value's bucket key once (a log) and uses
 * it for every sketch the value goes to: the global one and its group's.
 * v must be finite; batch_sketch_add_key(sk, batch_sketch_key(v), v, l)
 * is batch_sketch_add(sk, v, l). */
int32_t   batch_sketch_key(double v);
/* The general case of batch_sketch_add_key (a new bucket, growing). */
vigil_err batch_sketch_add_key_slow(batch_sketch *sk, int32_t key, double v, int label);

/* Inline for the per-record path: buckets live in one open-addressing
 * table (linear probing, at most half full). */
struct batch_sketch {
	batch_bucket *slots;
	size_t        cap, nbuckets; /* cap: a power of two, or 0 */
	uint64_t      n, labelled;
};

static inline size_t
batch_sketch_slot(int32_t key, size_t cap)
{
	return (size_t)(((uint64_t)(uint32_t)key * 0x9e3779b97f4a7c15ull) >> 32) & (cap - 1);
}

static inline void
batch_sketch_prefetch_key(const batch_sketch *sk, int32_t key)
{
	if (sk->cap != 0)
		__builtin_prefetch(&sk->slots[batch_sketch_slot(key, sk->cap)]);
}

/* Counts v (label: -1 none, 0 legitimate, 1 fraud) in bucket b of sk. */
static inline void
batch_bucket_count(batch_sketch *sk, batch_bucket *b, double v, int label)
{
	b->n++;
	if (v < b->min)
		b->min = v;
	if (v > b->max)
		b->max = v;
	if (label >= 0) {
		b->labelled++;
		sk->labelled++;
		if (label > 0)
			b->fraud++;
	}
	sk->n++;
}

/* batch_sketch_add for a finite v whose key is known; an existing bucket
 * is updated here, anything else by the out-of-line path. */
static inline vigil_err
batch_sketch_add_key(batch_sketch *sk, int32_t key, double v, int label)
{
	batch_bucket *b;

	if (sk->cap == 0 || v == 0.0)
		return batch_sketch_add_key_slow(sk, key, v, label);
	for (size_t j = batch_sketch_slot(key, sk->cap);; j = (j + 1) & (sk->cap - 1)) {
		b = &sk->slots[j];
		if (b->key == key)
			break;
		if (b->key == INT32_MIN) /* empty: a new bucket */
			return batch_sketch_add_key_slow(sk, key, v, label);
	}
	batch_bucket_count(sk, b, v, label);
	return VIGIL_OK;
}

#endif /* VIGIL_BATCH_SKETCH_H */
