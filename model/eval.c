/* SPDX-License-Identifier: MIT */
/*
 * model/eval.c - evaluation of a decoded forest (forest.h): the margin and
 * probability of one vector, its per-feature contributions, and the top
 * reasons. Nothing here allocates, locks or fails.
 *
 * The walk takes MODEL_BLOCK trees in lockstep for as many levels as the
 * deepest of them, one compare-and-add per tree and level (a leaf steps onto
 * itself, a missing value needs no test: forest.h), so the trees' chains of
 * dependent loads overlap instead of waiting on each other and no branch
 * depends on the data (8 trees at a time measured 3.5x faster than one tree
 * at a time to its leaf, and faster than 4 or 16). Leaf values are then added
 * in tree order in float32, which is how XGBoost adds them: the margin is
 * bit-identical to XGBoost's, not merely close; contributions keep XGBoost's
 * order of additions too. Contributions depend only on the leaves reached,
 * so a caller that predicts and then asks for reasons keeps predict's leaves
 * (model_leaves) and the trees are walked once.
 */
#include <math.h>
#include <string.h>

#include "forest.h"
#include "model.h"

/* model_leaves holds every block's leaves */
_Static_assert(MODEL_MAX_TREES % MODEL_BLOCK == 0, "MODEL_MAX_TREES: whole blocks");

/* xx = x, then -x (forest.h). */
static inline void
eval_extend(const model_forest *f, const float *x, float *xx)
{
	uint32_t nf = f->nfeatures, i;

	for (i = 0; i < nf; i++) {
		xx[i] = x[i];
		xx[nf + i] = -x[i];
	}
}

/* One level down from node i (a leaf stays). */
static inline uint32_t
eval_step(const model_node *nodes, const float *xx, uint32_t i)
{
	const model_node *n = &nodes[i];

	return i + n->off + (uint32_t)(xx[n->slot] > n->thr);
}

/* Walks block b's trees to their leaves (p[j]: tree j's leaf). */
static inline void
eval_block(const model_forest *f, const float *xx, uint32_t b, uint32_t *p)
{
	const model_node *nodes = f->nodes;
	const uint32_t *r = f->root + (size_t)b * MODEL_BLOCK;
	uint32_t d, j;

	for (j = 0; j < MODEL_BLOCK; j++)
		p[j] = r[j];
	for (d = f->block_depth[b]; d > 0; d--)
		for (j = 0; j < MODEL_BLOCK; j++)
			p[j] = eval_step(nodes, xx, p[j]);
}

/* The margin, and when path is not NULL the leaf each tree reaches. */
static float
eval_margin(const model_forest *f, const float *x, uint32_t *path)
{
	const model_leaf *leaf = f->leaf;
	float xx[2 * MODEL_MAX_FEATURES];
	float sum = f->base_margin;
	uint32_t b, j, p[MODEL_BLOCK];

	eval_extend(f, x, xx);
	for (b = 0; b < f->nblocks; b++) {
		eval_block(f, xx, b, p);
		for (j = 0; j < MODEL_BLOCK; j++) /* in tree order; a padding tree adds 0 */
			sum += leaf[p[j]].mean;
		if (path != NULL)
			memcpy(path + (size_t)b * MODEL_BLOCK, p, sizeof p);
	}
	return sum;
}

/* XGBoost 1.7's common::Sigmoid, in float32 (the clamp keeps expf finite) */
static double
eval_sigmoid(float m)
{
	float e = expf(fminf(-m, 88.7f));

	return 1.0f / (e + 1.0f + 1e-16f);
}

double
model_forest_margin(const model_forest *f, const float *x)
{
	return eval_margin(f, x, NULL);
}

double
model_forest_predict(const model_forest *f, const float *x)
{
	return eval_sigmoid(eval_margin(f, x, NULL));
}

double
model_forest_predict_path(const model_forest *f, const float *x, model_leaves *ret_path)
{
	return eval_sigmoid(eval_margin(f, x, ret_path->leaf));
}

/* Adds the terms of block b's leaves p[0..MODEL_BLOCK) into c. */
static inline void
eval_contrib_block(const model_forest *f, uint32_t b, const uint32_t *p, float *c)
{
	uint32_t kb = f->block_terms[b], j, k;

	for (j = 0; j < MODEL_BLOCK; j++) { /* padding terms add 0 to a scratch slot */
		const model_term *t = f->term + f->leaf[p[j]].term;

		for (k = 0; k < kb; k++)
			c[t[k].feature] += t[k].value;
	}
}

/* Room for the contributions, the bias and the padding's scratch slots. */
#define EVAL_CONTRIB_SLOTS (MODEL_MAX_FEATURES + 1 + MODEL_PAD_SLOTS)

/*
 * Saabas contributions as XGBoost's pred_contribs with approx_contribs: the
 * terms of the leaf each tree reaches (forest.h), added tree by tree in tree
 * order as XGBoost adds each tree's row to the total; the bias, a constant,
 * was summed at decode time. leaf: the leaves of a model_leaves, or NULL to
 * walk x's. c[0..EVAL_CONTRIB_SLOTS): c[0..nfeatures] is the result.
 */
static void
eval_contrib(const model_forest *f, const float *x, const uint32_t *leaf, float *c)
{
	float xx[2 * MODEL_MAX_FEATURES];
	uint32_t b, p[MODEL_BLOCK];

	if (leaf == NULL)
		eval_extend(f, x, xx);
	memset(c, 0, ((size_t)f->nfeatures + 1 + MODEL_PAD_SLOTS) * sizeof *c);
	/* The leaves' terms are scattered and, in a server whose requests
	 * interleave with other work, seldom cached: ask for all of them
	 * first so the misses overlap (bench-pipeline -2.9%, vigild -0.3 us a
	 * score that wants reasons; docs/BENCHMARKS.md, "CPU per score"). */
	if (leaf != NULL)
		for (b = 0; b < f->nblocks * MODEL_BLOCK; b++)
			__builtin_prefetch(f->term + f->leaf[leaf[b]].term);
	for (b = 0; b < f->nblocks; b++) {
		if (leaf != NULL) {
			eval_contrib_block(f, b, leaf + (size_t)b * MODEL_BLOCK, c);
		} else {
			eval_block(f, xx, b, p);
			eval_contrib_block(f, b, p, c);
		}
	}
	c[f->nfeatures] = f->bias;
}

void
model_forest_contrib(const model_forest *f, const float *x, float *ret_contrib)
{
	float c[EVAL_CONTRIB_SLOTS];

	eval_contrib(f, x, NULL, c);
	memcpy(ret_contrib, c, ((size_t)f->nfeatures + 1) * sizeof *c);
}

/*
 * The top k (1 <= k <= MODEL_TOP_MAX) of c[0..nfeatures) (model_forest_top).
 * One comparison per feature against the smallest kept, or 0 until k are
 * kept, so the branch is taken only by a feature that enters the top.
 */
static uint32_t
eval_top(const model_forest *f, const float *c, uint32_t k, model_reason *ret)
{
	uint32_t i, n = 0;
	float floor = 0.0f;

	for (i = 0; i < f->nfeatures; i++) {
		uint32_t j;

		if (!(c[i] > floor))
			continue;
		/* insertion: strictly greater moves ahead, so ties keep index order */
		j = n < k ? n++ : n - 1;
		while (j > 0 && c[i] > ret[j - 1].contrib) {
			ret[j] = ret[j - 1];
			j--;
		}
		ret[j].feature = i;
		ret[j].contrib = c[i];
		if (n == k)
			floor = ret[k - 1].contrib;
	}
	return n;
}

uint32_t
model_forest_top(const model_forest *f, const float *x, uint32_t k, model_reason *ret)
{
	float c[EVAL_CONTRIB_SLOTS];

	if (k > MODEL_TOP_MAX)
		k = MODEL_TOP_MAX;
	if (k == 0)
		return 0;
	eval_contrib(f, x, NULL, c);
	return eval_top(f, c, k, ret);
}

uint32_t
model_forest_top_path(const model_forest *f, const model_leaves *path, uint32_t k,
    model_reason *ret)
{
	float c[EVAL_CONTRIB_SLOTS];

	if (k > MODEL_TOP_MAX)
		k = MODEL_TOP_MAX;
	if (k == 0)
		return 0;
	eval_contrib(f, NULL, path->leaf, c);
	return eval_top(f, c, k, ret);
}
