/* SPDX-License-Identifier: MIT */
/*
 * model/eval.c - evaluation of a decoded forest (forest.h): the margin and
 * probability of one vector, its per-feature contributions, and the top
 * reasons. Nothing here allocates, locks or fails.
 *
 * The margin walks MODEL_BLOCK trees in lockstep for as many levels as the
 * deepest of them, one branch-free step per tree and level (a leaf steps onto
 * itself), so the trees' independent chains of loads overlap instead of
 * waiting on each other and no branch depends on the data. Leaf values are
 * then added in tree order in float32, which is how XGBoost adds them: the
 * result is bit-identical to XGBoost's margin, not merely close.
 */
#include <math.h>
#include <string.h>

#include "forest.h"
#include "model.h"

/*
 * One step from node n for the values x: to the left child iff x < value,
 * a missing (NaN) x to the side of its default direction; a leaf stays.
 * x >= value is false for a NaN, so a NaN goes right only where the node
 * says MISS_RIGHT; for any other x it is !(x < value).
 */
static inline const model_node *
eval_step(const model_node *n, const float *x)
{
	uint32_t m = n->meta;
	float v = x[(m >> MODEL_NODE_FEAT_SHIFT) & MODEL_NODE_FEAT_MASK];
	uint32_t off = m & MODEL_NODE_OFF_MASK;
	uint32_t right = (uint32_t)(v >= n->value) | ((uint32_t)(v != v) & (m >> 31));

	return n + ((off + right) & (0u - (uint32_t)(off != 0)));
}

static float
eval_margin(const model_forest *f, const float *x)
{
	const model_node *nodes = f->nodes;
	float sum = f->base_margin;
	uint32_t b;

	for (b = 0; b < f->nblocks; b++) {
		const uint32_t *r = f->root + (size_t)b * MODEL_BLOCK;
		const model_node *p0 = nodes + r[0], *p1 = nodes + r[1];
		const model_node *p2 = nodes + r[2], *p3 = nodes + r[3];
		const model_node *p4 = nodes + r[4], *p5 = nodes + r[5];
		const model_node *p6 = nodes + r[6], *p7 = nodes + r[7];
		uint32_t d;

		for (d = f->block_depth[b]; d > 0; d--) {
			p0 = eval_step(p0, x);
			p1 = eval_step(p1, x);
			p2 = eval_step(p2, x);
			p3 = eval_step(p3, x);
			p4 = eval_step(p4, x);
			p5 = eval_step(p5, x);
			p6 = eval_step(p6, x);
			p7 = eval_step(p7, x);
		}
		/* in tree order; a padding tree adds 0 */
		sum += p0->value;
		sum += p1->value;
		sum += p2->value;
		sum += p3->value;
		sum += p4->value;
		sum += p5->value;
		sum += p6->value;
		sum += p7->value;
	}
	return sum;
}

double
model_forest_margin(const model_forest *f, const float *x)
{
	return eval_margin(f, x);
}

double
model_forest_predict(const model_forest *f, const float *x)
{
	/* XGBoost 1.7's common::Sigmoid, in float32 (the clamp keeps expf finite) */
	float m = eval_margin(f, x);
	float e = expf(fminf(-m, 88.7f));

	return 1.0f / (e + 1.0f + 1e-16f);
}

/*
 * Saabas contributions as XGBoost's RegTree::CalculateContributionsApprox:
 * along the path, (mean of the child) - (mean of the node) goes to the split
 * feature; the root's mean goes to the bias. XGBoost sums each tree into a
 * zeroed row and adds the row to the total, so a feature split on twice in
 * one tree is summed first; the slots below keep that order of float32
 * additions.
 */
void
model_forest_contrib(const model_forest *f, const float *x, float *ret_contrib)
{
	const model_node *nodes = f->nodes;
	const float *mean = f->mean;
	uint32_t t;

	memset(ret_contrib, 0, ((size_t)f->nfeatures + 1) * sizeof *ret_contrib);
	for (t = 0; t < f->ntrees; t++) {
		uint32_t slot_feat[MODEL_MAX_DEPTH], nslots = 0, i = f->root[t], s;
		float slot_val[MODEL_MAX_DEPTH];
		float node_value = mean[i];

		while (nodes[i].meta != 0) {
			uint32_t feat = (nodes[i].meta >> MODEL_NODE_FEAT_SHIFT) & MODEL_NODE_FEAT_MASK;
			float delta;

			i = (uint32_t)(eval_step(&nodes[i], x) - nodes);
			delta = mean[i] - node_value;
			node_value = mean[i];
			for (s = 0; s < nslots && slot_feat[s] != feat; s++)
				;
			if (s == nslots) {
				slot_feat[nslots] = feat;
				slot_val[nslots++] = delta;
			} else {
				slot_val[s] += delta;
			}
		}
		/* (the leaf's own step, value - mean, is 0: a leaf's mean is its value) */
		for (s = 0; s < nslots; s++)
			ret_contrib[slot_feat[s]] += slot_val[s];
		ret_contrib[f->nfeatures] += mean[f->root[t]];
	}
	ret_contrib[f->nfeatures] += f->base_margin;
}

uint32_t
model_forest_top(const model_forest *f, const float *x, uint32_t k, model_reason *ret)
{
	float c[MODEL_MAX_FEATURES + 1];
	uint32_t i, n = 0;

	if (k > MODEL_TOP_MAX)
		k = MODEL_TOP_MAX;
	if (k == 0)
		return 0;
	model_forest_contrib(f, x, c);
	for (i = 0; i < f->nfeatures; i++) {
		uint32_t j;

		if (!(c[i] > 0.0f))
			continue;
		if (n == k && !(c[i] > ret[n - 1].contrib))
			continue;
		/* insertion: strictly greater moves ahead, so ties keep index order */
		j = n < k ? n++ : n - 1;
		while (j > 0 && c[i] > ret[j - 1].contrib) {
			ret[j] = ret[j - 1];
			j--;
		}
		ret[j].feature = i;
		ret[j].contrib = c[i];
	}
	return n;
}
