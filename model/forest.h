/* SPDX-License-Identifier: MIT */
/*
 * model/forest.h - the decoded forest as decode.c builds it and eval.c walks
 * it; private to model/.
 *
 * All trees live in one array of 8-byte nodes. Each tree is laid out breadth
 * first from its root, so a split's two children are adjacent (left, then
 * right) and always after it: a split stores the distance to its left child
 * and the right child is one further. A leaf has meta == 0 and holds its
 * value; stepping from a leaf stays on it, which lets eval.c walk a block of
 * trees in lockstep for a fixed number of levels without a branch per node.
 * The node array ends with one extra leaf of value 0, the root of the
 * padding trees that fill the last block.
 */
#ifndef VIGIL_MODEL_FOREST_H
#define VIGIL_MODEL_FOREST_H

#include <stdint.h>

#include "model.h"

/* Trees walked together by model_forest_margin. */
#define MODEL_BLOCK 8u

#define MODEL_NODE_OFF_MASK   0xffffu     /* bits 0-15: offset to the left child (0: leaf) */
#define MODEL_NODE_FEAT_SHIFT 16          /* bits 16-30: split feature */
#define MODEL_NODE_FEAT_MASK  0x7fffu
#define MODEL_NODE_MISS_RIGHT 0x80000000u /* bit 31: a missing value goes right */

typedef struct model_node {
	uint32_t meta;  /* 0 for a leaf; else offset | feature << 16 | MISS_RIGHT */
	float    value; /* split: threshold (x < value goes left); leaf: leaf value */
} model_node;

struct model_forest {
	uint32_t    nfeatures;
	uint32_t    ntrees;
	uint32_t    nblocks;     /* ceil(ntrees / MODEL_BLOCK) */
	uint32_t    nnodes;      /* in nodes[], the padding leaf included */
	float       base_margin; /* logit(base_score), as XGBoost computes it */
	model_node *nodes;       /* [nnodes] */
	float      *mean;        /* [nnodes] hessian-weighted mean leaf value under each node */
	uint32_t   *root;        /* [nblocks * MODEL_BLOCK] index of each tree's root */
	uint8_t    *block_depth; /* [nblocks] deepest tree of the block, in splits */
	char      **names;       /* [nfeatures] NUL-terminated, in names_buf */
	char       *names_buf;
};

#endif
