/* SPDX-License-Identifier: MIT */
/*
 * model/forest.h - the decoded forest as decode.c builds it and eval.c walks
 * it; private to model/.
 *
 * All trees live in one array of 8-byte nodes. Each tree is laid out breadth
 * first from its root, so a split's two children are adjacent and after it:
 * a split stores the distance to its first child, the second is one further.
 *
 * A step is one comparison, missing values included. The evaluator reads an
 * extended vector xx[0..2 nfeatures): xx[i] = x[i] and xx[nfeatures + i] =
 * -x[i] (NaN stays NaN), and goes to the second child iff xx[slot] > thr,
 * which is false for a NaN, so the first child is always XGBoost's default
 * child. XGBoost goes left iff x < t, missing to the default side:
 *   default left:  first = left, second = right, slot = f, thr = the float
 *                  just below t (x > thr <=> x >= t for every non-NaN x)
 *   default right: first = right, second = left, slot = nfeatures + f,
 *                  thr = -t (-x > -t <=> x < t, exactly)
 * A leaf has off == 0, slot 0 and thr NaN: it steps onto itself (xx[0] > NaN is
 * false), so eval.c walks a block of trees in lockstep for a fixed number of
 * levels without a branch per node. Its value is leaf[].mean at its index (a
 * leaf's mean is its value).
 *
 * The node array ends with one extra leaf of value 0, the root of the padding
 * trees that fill the last block.
 *
 * Contributions depend only on the leaf a tree reaches, so each leaf carries
 * its terms, computed once at decode time exactly as XGBoost computes them
 * per tree and row (the changes of mean along the path, summed per feature
 * in path order, in float32): evaluating them is the walk of the margin plus
 * a few additions per tree. Every leaf of a block has the same number of
 * terms, block_terms[b], padded with terms of value +0 on one of
 * MODEL_PAD_SLOTS scratch slots after the bias (nfeatures + 1 + (leaf + k)
 * % MODEL_PAD_SLOTS): a loop of a constant count per block, no branch that
 * depends on the data, and no false dependency on feature 0. The slots are
 * spread because the additions into one slot form one chain of dependent
 * loads and stores: all the padding on the bias slot was the longest chain
 * of the loop.
 */
#ifndef VIGIL_MODEL_FOREST_H
#define VIGIL_MODEL_FOREST_H

#include <stdint.h>

#include "model.h"

/* Trees walked together by model_forest_margin. */
#define MODEL_BLOCK 8u
/* Scratch slots the padding terms add into (after the bias). */
#define MODEL_PAD_SLOTS 8u

typedef struct model_node {
	uint16_t off;  /* to the first child; 0 for a leaf */
	uint16_t slot; /* index into xx: feature, or nfeatures + feature */
	float    thr;  /* second child iff xx[slot] > thr; NaN for a leaf */
} model_node;

/* A node's mean value and where its terms start, side by side: the margin
 * reads the mean of the leaf each tree reaches, which brings the leaf's
 * term offset into the cache for the contributions that may follow. */
typedef struct model_leaf {
	float    mean; /* leaf value, or hessian-weighted mean of the leaves below */
	uint32_t term; /* a leaf's terms: term[term ..], block_terms of them */
} model_leaf;

/* One leaf's contribution to one feature. */
typedef struct model_term {
	uint32_t feature;
	float    value;
} model_term;

struct model_forest {
	uint32_t    nfeatures;
	uint32_t    ntrees;
	uint32_t    nblocks;     /* ceil(ntrees / MODEL_BLOCK) */
	uint32_t    nnodes;      /* in nodes[], the padding leaf included */
	float       base_margin; /* logit(base_score), as XGBoost computes it */
	model_node *nodes;       /* [nnodes] */
	model_leaf *leaf;        /* [nnodes] mean and term offset */
	uint32_t   *root;        /* [nblocks * MODEL_BLOCK] index of each tree's root */
	uint8_t    *block_depth; /* [nblocks] deepest tree of the block, in splits */
	uint8_t    *block_terms; /* [nblocks] number of terms of every leaf of the block */
	model_term *term;        /* [nterms] */
	uint32_t    nterms;
	float       bias;        /* the bias contribution: the roots' means added in tree
	                            order, then base_margin */
	char      **names;       /* [nfeatures] NUL-terminated, in names_buf */
	char       *names_buf;
};

#endif
