/* SPDX-License-Identifier: MIT */
/*
 * model/decode.c - XGBoost 1.7 JSON model (XGBoosterSaveModelToBuffer with
 * {"format":"json"}) to a model_forest. jansson parses the text; this file
 * checks what the evaluator relies on, field by field, and lays every tree
 * out breadth first in the flat node array of forest.h.
 *
 * The parts of the document read, and what each must be (anything else in it
 * is ignored):
 *
 *   version                                   [1, 7, patch]
 *   learner.objective.name                    "binary:logistic"
 *   learner.learner_model_param               num_class "0", num_target "1" (if
 *                                             present), num_feature "N",
 *                                             base_score "P", 0 < P < 1
 *   learner.feature_names                     N distinct non-empty strings
 *   learner.feature_types                     absent, [] or N strings, not "c"
 *   learner.gradient_booster.name             "gbtree"
 *   learner.gradient_booster.model
 *     gbtree_model_param.num_trees            "T" = length of trees
 *     tree_info                               T zeros (one output group)
 *     trees[t]                                id t, tree_param {num_nodes,
 *                                             num_deleted}, and per node:
 *                                             left_children, right_children,
 *                                             split_indices, split_conditions,
 *                                             default_left, sum_hessian,
 *                                             split_type (0: numerical)
 *
 * A node is a leaf iff its left child is -1; a leaf's value is its
 * split_conditions entry (as in XGBoost's own loader). Only the nodes reached
 * from the root are checked and kept; the others are the deleted nodes of a
 * pruned tree (their count must be num_deleted).
 *
 * Numbers are read by jansson as double and rounded to float32. XGBoost
 * writes each float32 as its shortest round-trip decimal, which this rounding
 * gives back exactly (a double rounding could differ only for a decimal
 * within 2^-54 relative of a float32 halfway point, which a shortest
 * representation of 9 digits or fewer is not in practice).
 */
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "forest.h"
#include "model.h"
#include "vec.h"
#include "vigil.h"

#define P_MP "learner.learner_model_param"
#define P_GB "learner.gradient_booster"
#define P_M  "learner.gradient_booster.model"

struct dec {
	model_diag *diag;
	/* Output, grown tree by tree. */
	model_node *nodes;
	float      *mean;
	uint32_t   *term_start;
	uint32_t    nnodes, nodes_cap;
	model_term *term;
	uint32_t    nterms, terms_cap;
	/* Scratch for one tree, grown to the largest. */
	uint32_t    scratch_cap;
	uint32_t   *queue; /* breadth-first order: original index of each new node */
	uint8_t    *seen;  /* by original index */
	uint8_t    *depth; /* by new index */
	float      *hess;  /* by new index */
	uint32_t   *parent; /* by new index */
};

/* No array index: dec_failat about path.key itself. */
#define DEC_NOIDX UINT32_MAX

__attribute__((format(printf, 4, 0))) static vigil_err
dec_vfail(struct dec *d, vigil_err rv, const char *field, const char *fmt, va_list ap)
{
	char why[sizeof d->diag->msg];

	if (d->diag == NULL)
		return rv;
	vsnprintf(why, sizeof why, fmt, ap);
	vigil_errinfo_set(d->diag, field, "%s", why); /* (also makes a cut quote one line of UTF-8) */
	return rv;
}

/*
 * The one way a decode fails: fills the diag (if any) and returns rv. path is
 * the JSON path of the value at fault, from the document root (the diag's
 * field; NULL for none: a JSON syntax error, out of memory); the message is
 * the reason alone: vigil_errinfo_format prints "path: reason".
 */
__attribute__((format(printf, 4, 5))) static vigil_err
dec_fail(struct dec *d, vigil_err rv, const char *path, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	rv = dec_vfail(d, rv, path, fmt, ap);
	va_end(ap);
	return rv;
}

/* dec_fail about path.key[i]: key NULL for path[i], i DEC_NOIDX for path.key;
 * path "" is the document root (so the path is just key). */
__attribute__((format(printf, 6, 7))) static vigil_err
dec_failat(struct dec *d, vigil_err rv, const char *path, const char *key, uint32_t i,
    const char *fmt, ...)
{
	char field[sizeof d->diag->field + 32];
	size_t n = 0;
	va_list ap;

	if (d->diag == NULL)
		return rv;
	n = (size_t)snprintf(field, sizeof field, "%s", path);
	if (key != NULL && n < sizeof field)
		n += (size_t)snprintf(field + n, sizeof field - n, "%s%s", *path ? "." : "", key);
	if (i != DEC_NOIDX && n < sizeof field)
		snprintf(field + n, sizeof field - n, "[%u]", i);
	va_start(ap, fmt);
	rv = dec_vfail(d, rv, field, fmt, ap);
	va_end(ap);
	return rv;
}

static const char *
dec_kind(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "an object";
	case JSON_ARRAY: return "an array";
	case JSON_STRING: return "a string";
	case JSON_INTEGER: return "an integer";
	case JSON_REAL: return "a real";
	case JSON_TRUE:
	case JSON_FALSE: return "a boolean";
	case JSON_NULL: return "null";
	}
	return "a value";
}

static const char *
dec_want(json_type t)
{
	switch (t) {
	case JSON_OBJECT: return "an object";
	case JSON_ARRAY: return "an array";
	case JSON_STRING: return "a string";
	default: return "a number";
	}
}

/* obj.key, which must exist and have type t; path "" is the document root. */
static vigil_err
dec_member(struct dec *d, const json_t *obj, const char *path, const char *key, json_type t,
    json_t **ret)
{
	json_t *v = json_object_get(obj, key);

	*ret = NULL;
	if (v == NULL)
		return dec_failat(d, VIGIL_ECORRUPT, path, key, DEC_NOIDX, "missing");
	if (json_typeof(v) != t)
		return dec_failat(d, VIGIL_ECORRUPT, path, key, DEC_NOIDX,
		    "expected %s, not %s", dec_want(t), dec_kind(v));
	*ret = v;
	return VIGIL_OK;
}

/* obj.key, a string holding an unsigned decimal integer (XGBoost writes its
 * parameters as strings). */
static vigil_err
dec_param_uint(struct dec *d, const json_t *obj, const char *path, const char *key,
    uint32_t *ret)
{
	json_t *v;
	const char *s;
	uint64_t n = 0;
	size_t i, len;
	vigil_err rv;

	rv = dec_member(d, obj, path, key, JSON_STRING, &v);
	if (rv != VIGIL_OK)
		return rv;
	s = json_string_value(v);
	len = json_string_length(v);
	for (i = 0; i < len && i < 11; i++) {
		if (s[i] < '0' || s[i] > '9')
			break;
		n = n * 10 + (uint64_t)(s[i] - '0');
	}
	if (len == 0 || i != len || n > UINT32_MAX)
		return dec_failat(d, VIGIL_ECORRUPT, path, key, DEC_NOIDX,
		    "\"%.40s\" is not an unsigned 32-bit integer", s);
	*ret = (uint32_t)n;
	return VIGIL_OK;
}

/* Element i of array a (named path.name) as an integer. */
static vigil_err
dec_elem_int(struct dec *d, const json_t *a, const char *path, const char *name, uint32_t i,
    json_int_t *ret)
{
	json_t *v = json_array_get(a, i);

	*ret = 0;
	if (!json_is_integer(v))
		return dec_failat(d, VIGIL_ECORRUPT, path, name, i,
		    "expected an integer, not %s", dec_kind(v));
	*ret = json_integer_value(v);
	return VIGIL_OK;
}

/* Element i of array a as a finite float32 (null: a NaN or an infinity in
 * the text, see dec_nonfinite). */
static vigil_err
dec_elem_float(struct dec *d, const json_t *a, const char *path, const char *name, uint32_t i,
    float *ret)
{
	json_t *v = json_array_get(a, i);
	double x;

	if (json_is_null(v))
		return dec_failat(d, VIGIL_ECORRUPT, path, name, i,
		    "NaN or infinite, not a finite float32");
	if (!json_is_number(v))
		return dec_failat(d, VIGIL_ECORRUPT, path, name, i,
		    "expected a number, not %s", dec_kind(v));
	x = json_number_value(v);
	if (!(fabs(x) <= FLT_MAX)) /* (converting a larger double to float is undefined) */
		return dec_failat(d, VIGIL_ECORRUPT, path, name, i,
		    "%g is not a finite float32", x);
	*ret = (float)x;
	return VIGIL_OK;
}

/* obj.key as an array of exactly n elements. */
static vigil_err
dec_node_array(struct dec *d, const json_t *obj, const char *path, const char *key, uint32_t n,
    json_t **ret)
{
	vigil_err rv = dec_member(d, obj, path, key, JSON_ARRAY, ret);

	if (rv != VIGIL_OK)
		return rv;
	if (json_array_size(*ret) != n)
		return dec_failat(d, VIGIL_ECORRUPT, path, key, DEC_NOIDX,
		    "%zu elements, tree_param.num_nodes is %u", json_array_size(*ret), n);
	return VIGIL_OK;
}

static vigil_err
dec_reserve(struct dec *d, uint32_t tree_nodes)
{
	uint64_t need = (uint64_t)d->nnodes + tree_nodes + 1; /* + the padding leaf */

	if (need > MODEL_MAX_NODES)
		return dec_fail(d, VIGIL_ETOOBIG, P_M ".trees", "more than %u nodes in all",
		    MODEL_MAX_NODES);
	if (need > d->nodes_cap) {
		/* Three arrays of one capacity (term_start one more). */
		size_t cap = vigil_array_grown(d->nodes_cap, need, 1024, MODEL_MAX_NODES);

		if (vigil_array_resize(&d->nodes, cap, sizeof *d->nodes) != VIGIL_OK ||
		    vigil_array_resize(&d->mean, cap, sizeof *d->mean) != VIGIL_OK ||
		    vigil_array_resize(&d->term_start, cap + 1, sizeof *d->term_start) != VIGIL_OK)
			return dec_fail(d, VIGIL_ENOMEM, NULL, "out of memory");
		d->nodes_cap = (uint32_t)cap;
	}
	if (tree_nodes > d->scratch_cap) {
		free(d->queue);
		free(d->seen);
		free(d->depth);
		free(d->hess);
		free(d->parent);
		d->parent = malloc((size_t)tree_nodes * sizeof *d->parent);
		d->queue = malloc((size_t)tree_nodes * sizeof *d->queue);
		d->seen = malloc(tree_nodes);
		d->depth = malloc(tree_nodes);
		d->hess = malloc((size_t)tree_nodes * sizeof *d->hess);
		d->scratch_cap = tree_nodes;
		if (d->queue == NULL || d->seen == NULL || d->depth == NULL || d->hess == NULL ||
		    d->parent == NULL) {
			d->scratch_cap = 0;
			return dec_fail(d, VIGIL_ENOMEM, NULL, "out of memory");
		}
	}
	return VIGIL_OK;
}

/* The per-node arrays of one tree. */
struct dec_tree_arrays {
	json_t *left, *right, *feat, *cond, *dleft, *hess, *stype;
};

/* Checks the split at original index o and fills its node (forest.h: the
 * slot and threshold of its default direction) but for the offset. */
static vigil_err
dec_split(struct dec *d, const char *tp, const struct dec_tree_arrays *a, uint32_t o,
    uint32_t nfeatures, model_node *ret, int *ret_default_left)
{
	json_int_t feat, dl, st;
	json_t *v;
	float cond;
	vigil_err rv;

	rv = dec_elem_int(d, a->feat, tp, "split_indices", o, &feat);
	if (rv != VIGIL_OK)
		return rv;
	if (feat < 0 || feat >= (json_int_t)nfeatures)
		return dec_failat(d, VIGIL_ECORRUPT, tp, "split_indices", o,
		    "feature %" JSON_INTEGER_FORMAT
		    " out of range (num_feature %u)", feat, nfeatures);
	if (a->stype != NULL) { /* first: a categorical split has a NaN threshold */
		rv = dec_elem_int(d, a->stype, tp, "split_type", o, &st);
		if (rv != VIGIL_OK)
			return rv;
		if (st != 0)
			return dec_failat(d, VIGIL_EINVAL, tp, "split_type", o,
			    "%" JSON_INTEGER_FORMAT
			    " (categorical), only numerical splits are supported", st);
	}
	rv = dec_elem_float(d, a->cond, tp, "split_conditions", o, &cond);
	if (rv != VIGIL_OK)
		return rv;
	v = json_array_get(a->dleft, o);
	if (json_is_boolean(v)) {
		dl = json_is_true(v);
	} else {
		rv = dec_elem_int(d, a->dleft, tp, "default_left", o, &dl);
		if (rv != VIGIL_OK)
			return rv;
		if (dl != 0 && dl != 1)
			return dec_failat(d, VIGIL_ECORRUPT, tp, "default_left", o,
			    "%" JSON_INTEGER_FORMAT ", expected 0 or 1", dl);
	}
	if (dl) {
		ret->slot = (uint16_t)feat;
		ret->thr = nextafterf(cond, -INFINITY);
	} else {
		ret->slot = (uint16_t)(nfeatures + (uint32_t)feat);
		ret->thr = -cond;
	}
	*ret_default_left = dl != 0;
	return VIGIL_OK;
}

/*
 * The contribution terms of the leaves of the tree at d->nodes[base ..
 * base + n), in node order (forest.h): as XGBoost's
 * CalculateContributionsApprox for a row that reaches the leaf, each step's
 * change of mean added to its split feature in path order, in float32 (the
 * step into the leaf adds value - mean = 0). Zero sums are left out: adding
 * them changes nothing.
 */
static vigil_err
dec_terms(struct dec *d, const char *tp, uint32_t base, uint32_t n, uint32_t nfeatures)
{
	uint32_t path[MODEL_MAX_DEPTH + 1], feat[MODEL_MAX_DEPTH];
	float acc[MODEL_MAX_DEPTH];
	uint32_t p, k, j, u;

	for (p = 0; p < n; p++) {
		uint32_t len = 0, nacc = 0;

		d->term_start[base + p] = d->nterms;
		if (d->nodes[base + p].off != 0)
			continue;
		for (u = p; u != 0; u = d->parent[u])
			path[len++] = u;
		path[len++] = 0; /* leaf first, root last */
		for (k = len - 1; k > 0; k--) {
			uint32_t up = path[k], down = path[k - 1], slot = d->nodes[base + up].slot;
			uint32_t ft = slot < nfeatures ? slot : slot - nfeatures;
			float delta = d->mean[base + down] - d->mean[base + up];

			for (j = 0; j < nacc && feat[j] != ft; j++)
				;
			if (j == nacc) {
				feat[nacc] = ft;
				acc[nacc++] = delta;
			} else {
				acc[j] += delta;
			}
		}
		if ((uint64_t)d->nterms + nacc > MODEL_MAX_TERMS)
			return dec_fail(d, VIGIL_ETOOBIG, tp,
			    "more than %u contribution terms in all (leaves x distinct features "
			    "on their paths)", MODEL_MAX_TERMS);
		if (d->nterms + nacc > d->terms_cap) {
			size_t cap = vigil_array_grown(d->terms_cap, (size_t)d->nterms + nacc, 4096,
			    MODEL_MAX_TERMS);

			if (vigil_array_resize(&d->term, cap, sizeof *d->term) != VIGIL_OK)
				return dec_fail(d, VIGIL_ENOMEM, NULL, "out of memory");
			d->terms_cap = (uint32_t)cap;
		}
		for (j = 0; j < nacc; j++) {
			if (acc[j] == 0.0f)
				continue;
			d->term[d->nterms].feature = feat[j];
			d->term[d->nterms++].value = acc[j];
		}
	}
	return VIGIL_OK;
}

/*
 * trees[t]: lays the nodes reached from the root out breadth first at
 * d->nodes[d->nnodes...], computes their mean values, sets *ret_depth.
 */
static vigil_err
dec_tree(struct dec *d, const json_t *tree, uint32_t t, uint32_t nfeatures, uint8_t *ret_depth)
{
	char tp[64];
	json_t *param, *id, *cats;
	struct dec_tree_arrays a = { 0 };
	uint32_t n, ndeleted, head, tail, base, p;
	uint8_t maxdepth = 0;
	vigil_err rv;

	snprintf(tp, sizeof tp, P_M ".trees[%u]", t);
	if (!json_is_object(tree))
		return dec_fail(d, VIGIL_ECORRUPT, tp,
		    "expected an object, not %s", dec_kind(tree));
	id = json_object_get(tree, "id");
	if (id == NULL || !json_is_integer(id))
		return dec_failat(d, VIGIL_ECORRUPT, tp, "id", DEC_NOIDX, "%s",
		    id == NULL ? "missing" : "expected an integer");
	if (json_integer_value(id) != (json_int_t)t)
		return dec_failat(d, VIGIL_ECORRUPT, tp, "id", DEC_NOIDX,
		    "%" JSON_INTEGER_FORMAT ", expected %u (trees in id order)",
		    json_integer_value(id), t);

	rv = dec_member(d, tree, tp, "tree_param", JSON_OBJECT, &param);
	if (rv != VIGIL_OK)
		return rv;
	{
		char pp[80];

		snprintf(pp, sizeof pp, "%s.tree_param", tp);
		rv = dec_param_uint(d, param, pp, "num_nodes", &n);
		if (rv != VIGIL_OK)
			return rv;
		if (n > MODEL_MAX_TREE_NODES)
			return dec_failat(d, VIGIL_ETOOBIG, pp,
			    "num_nodes", DEC_NOIDX, "%u nodes, the cap is %u", n,
			    MODEL_MAX_TREE_NODES);
		if (n == 0)
			return dec_failat(d, VIGIL_ECORRUPT, pp,
			    "num_nodes", DEC_NOIDX, "0, a tree has a root");
		rv = dec_param_uint(d, param, pp, "num_deleted", &ndeleted);
		if (rv != VIGIL_OK)
			return rv;
		if (json_object_get(param, "size_leaf_vector") != NULL) {
			uint32_t slv;

			rv = dec_param_uint(d, param, pp, "size_leaf_vector", &slv);
			if (rv != VIGIL_OK)
				return rv;
			if (slv != 0)
				return dec_failat(d, VIGIL_EINVAL, pp,
				    "size_leaf_vector", DEC_NOIDX,
				    "%u, vector leaves are not supported", slv);
		}
	}
	if ((rv = dec_node_array(d, tree, tp, "left_children", n, &a.left)) != VIGIL_OK ||
	    (rv = dec_node_array(d, tree, tp, "right_children", n, &a.right)) != VIGIL_OK ||
	    (rv = dec_node_array(d, tree, tp, "split_indices", n, &a.feat)) != VIGIL_OK ||
	    (rv = dec_node_array(d, tree, tp, "split_conditions", n, &a.cond)) != VIGIL_OK ||
	    (rv = dec_node_array(d, tree, tp, "default_left", n, &a.dleft)) != VIGIL_OK ||
	    (rv = dec_node_array(d, tree, tp, "sum_hessian", n, &a.hess)) != VIGIL_OK)
		return rv;
	if (json_object_get(tree, "split_type") != NULL) {
		rv = dec_node_array(d, tree, tp, "split_type", n, &a.stype);
		if (rv != VIGIL_OK)
			return rv;
	}
	cats = json_object_get(tree, "categories_nodes");
	if (cats != NULL && (!json_is_array(cats) || json_array_size(cats) != 0))
		return dec_failat(d, VIGIL_EINVAL, tp, "categories_nodes", DEC_NOIDX,
		    "not empty, categorical splits are not supported");

	rv = dec_reserve(d, n);
	if (rv != VIGIL_OK)
		return rv;
	base = d->nnodes;
	memset(d->seen, 0, n);
	d->queue[0] = 0;
	d->seen[0] = 1;
	d->depth[0] = 0;
	tail = 1;
	for (head = 0; head < tail; head++) {
		uint32_t o = d->queue[head];
		model_node *node = &d->nodes[base + head];
		json_int_t l, r;
		int default_left = 0;

		if ((rv = dec_elem_int(d, a.left, tp, "left_children", o, &l)) != VIGIL_OK ||
		    (rv = dec_elem_int(d, a.right, tp, "right_children", o, &r)) != VIGIL_OK ||
		    (rv = dec_elem_float(d, a.hess, tp, "sum_hessian", o, &d->hess[head])) != VIGIL_OK)
			return rv;
		if (d->hess[head] < 0)
			return dec_failat(d, VIGIL_ECORRUPT, tp, "sum_hessian", o, "%g is negative",
			    (double)d->hess[head]);
		if (l == -1) {
			float *value = &d->mean[base + head];

			if (r != -1)
				return dec_failat(d, VIGIL_ECORRUPT, tp, "right_children", o,
				    "%" JSON_INTEGER_FORMAT
				    " for a leaf (left child -1)", r);
			rv = dec_elem_float(d, a.cond, tp, "split_conditions", o, value);
			if (rv != VIGIL_OK)
				return rv;
			if (fabsf(*value) > MODEL_MAX_VALUE)
				return dec_failat(d, VIGIL_ECORRUPT, tp, "split_conditions", o,
				    "leaf value %g out of range (|v| <= %g)", (double)*value, (double)MODEL_MAX_VALUE);
			node->off = 0;
			node->slot = 0;
			node->thr = NAN;
			if (d->depth[head] > maxdepth)
				maxdepth = d->depth[head];
			continue;
		}
		if (l < 0 || l >= (json_int_t)n)
			return dec_failat(d, VIGIL_ECORRUPT, tp, "left_children", o,
			    "child %" JSON_INTEGER_FORMAT
			    " out of range (num_nodes %u)", l, n);
		if (r < 0 || r >= (json_int_t)n)
			return dec_failat(d, VIGIL_ECORRUPT, tp, "right_children", o,
			    "child %" JSON_INTEGER_FORMAT
			    " out of range (num_nodes %u)", r, n);
		if (d->seen[l])
			return dec_failat(d, VIGIL_ECORRUPT, tp, "left_children", o,
			    "node %" JSON_INTEGER_FORMAT
			    " is reached twice (a cycle or a shared child)", l);
		d->seen[l] = 1;
		if (d->seen[r])
			return dec_failat(d, VIGIL_ECORRUPT, tp, "right_children", o,
			    "node %" JSON_INTEGER_FORMAT
			    " is reached twice (a cycle or a shared child)", r);
		d->seen[r] = 1;
		if (d->depth[head] >= MODEL_MAX_DEPTH)
			return dec_fail(d, VIGIL_ETOOBIG, tp, "deeper than %u splits",
			    MODEL_MAX_DEPTH);
		if (d->hess[head] == 0)
			return dec_failat(d, VIGIL_ECORRUPT, tp, "sum_hessian", o, "0 at a split");
		rv = dec_split(d, tp, &a, o, nfeatures, node, &default_left);
		if (rv != VIGIL_OK)
			return rv;
		/* tail <= n - 2 <= 65534 here */
		node->off = (uint16_t)(tail - head);
		d->depth[tail] = d->depth[tail + 1] = (uint8_t)(d->depth[head] + 1);
		d->parent[tail] = d->parent[tail + 1] = head;
		d->queue[tail++] = (uint32_t)(default_left ? l : r); /* first: the default child */
		d->queue[tail++] = (uint32_t)(default_left ? r : l);
	}
	if (n - tail != ndeleted)
		return dec_fail(d, VIGIL_ECORRUPT, tp,
		    "%u nodes unreachable from the root, tree_param.num_deleted is %u",
		    n - tail, ndeleted);

	/*
	 * Mean values, children before parents, in float32 and in the order of
	 * XGBoost's FillNodeMeanValue so that contributions match its own.
	 */
	for (p = tail; p-- > 0;) {
		const model_node *node = &d->nodes[base + p];

		if (node->off != 0) { /* (a leaf's mean is its value, set above) */
			uint32_t c = p + node->off;
			int default_left = node->slot < nfeatures;
			uint32_t left = default_left ? c : c + 1, right = default_left ? c + 1 : c;
			float m = d->mean[base + left] * d->hess[left];

			m += d->mean[base + right] * d->hess[right];
			m /= d->hess[p];
			if (!(fabsf(m) <= MODEL_MAX_VALUE))
				return dec_failat(d, VIGIL_ECORRUPT, tp, "sum_hessian", d->queue[p],
				    "gives the node a mean value of %g (|v| <= %g)", (double)m, (double)MODEL_MAX_VALUE);
			d->mean[base + p] = m;
		}
	}
	rv = dec_terms(d, tp, base, tail, nfeatures);
	if (rv != VIGIL_OK)
		return rv;
	d->nnodes += tail;
	*ret_depth = maxdepth;
	return VIGIL_OK;
}

/*
 * XGBoost writes a non-finite float32 as NaN, Infinity or -Infinity (a
 * categorical split's threshold is NaN), which JSON has not and jansson
 * refuses. If json has such tokens outside strings, *ret is a copy with each
 * of them as null, which the field readers report as "NaN or infinite";
 * else *ret is NULL. (Error lines and columns of jansson then count in the
 * copy; dec_nonfinite_origin takes a position back to the input.)
 */
static size_t
dec_nonfinite_token(const char *s, size_t len, size_t i)
{
	static const char *const tokens[] = { "NaN", "-NaN", "Infinity", "-Infinity" };
	size_t t;

	for (t = 0; t < sizeof tokens / sizeof tokens[0]; t++) {
		size_t n = strlen(tokens[t]);

		if (len - i >= n && memcmp(s + i, tokens[t], n) == 0)
			return n;
	}
	return 0;
}

static vigil_err
dec_nonfinite(struct dec *d, const char *s, size_t len, char **ret, size_t *ret_len)
{
	char *copy = NULL;
	size_t i, n, out = 0, count = 0;
	int pass, in_str;

	*ret = NULL;
	for (pass = 0; pass < 2; pass++) { /* count, then copy */
		in_str = 0;
		for (i = 0; i < len; i++) {
			if (in_str) {
				if (s[i] == '\\' && i + 1 < len) {
					if (copy != NULL)
						copy[out++] = s[i];
					i++;
				} else if (s[i] == '"') {
					in_str = 0;
				}
			} else if (s[i] == '"') {
				in_str = 1;
			} else if ((s[i] == 'N' || s[i] == 'I' || s[i] == '-') &&
			    (n = dec_nonfinite_token(s, len, i)) > 0) {
				if (copy != NULL) {
					memcpy(copy + out, "null", 4);
					out += 4;
				} else {
					count++;
				}
				i += n - 1;
				continue;
			}
			if (copy != NULL)
				copy[out++] = s[i];
		}
		if (count == 0)
			return VIGIL_OK;
		if (copy == NULL) {
			copy = malloc(len + count); /* "NaN" grows by one, the others shrink */
			if (copy == NULL)
				return dec_fail(d, VIGIL_ENOMEM, NULL, "out of memory");
		}
	}
	*ret = copy;
	*ret_len = out;
	return VIGIL_OK;
}

/* The offset in s[0..len) of offset pos of dec_nonfinite's copy of it (a
 * position inside a token's "null" is taken into the token, capped at its end). */
static uint64_t
dec_nonfinite_origin(const char *s, size_t len, size_t pos)
{
	size_t i = 0, n, out = 0;
	int in_str = 0, esc = 0;

	while (i < len && out < pos) {
		if (in_str) {
			if (esc)
				esc = 0;
			else if (s[i] == '\\')
				esc = 1;
			else if (s[i] == '"')
				in_str = 0;
		} else if (s[i] == '"') {
			in_str = 1;
		} else if ((s[i] == 'N' || s[i] == 'I' || s[i] == '-') &&
		    (n = dec_nonfinite_token(s, len, i)) > 0) {
			if (pos - out < 4)
				return i + (pos - out < n ? pos - out : n);
			out += 4;
			i += n;
			continue;
		}
		i++;
		out++;
	}
	return i + (pos - out); /* (out <= pos: a position past the copy's end stays past) */
}

/* version: [1, 7, patch]. */
static vigil_err
dec_version(struct dec *d, const json_t *root)
{
	json_t *v;
	json_int_t x[3];
	size_t i;
	vigil_err rv;

	rv = dec_member(d, root, "", "version", JSON_ARRAY, &v);
	if (rv != VIGIL_OK)
		return rv;
	if (json_array_size(v) != 3)
		return dec_fail(d, VIGIL_ECORRUPT, "version", "%zu elements, expected 3",
		    json_array_size(v));
	for (i = 0; i < 3; i++) {
		json_t *e = json_array_get(v, i);

		if (!json_is_integer(e))
			return dec_failat(d, VIGIL_ECORRUPT,
			    "version", NULL, (uint32_t)i, "expected an integer, not %s", dec_kind(e));
		x[i] = json_integer_value(e);
	}
	if (x[0] != 1 || x[1] != 7)
		return dec_fail(d, VIGIL_EVERSION, "version",
		    "%" JSON_INTEGER_FORMAT ".%" JSON_INTEGER_FORMAT ".%" JSON_INTEGER_FORMAT
		    ", this evaluator reads XGBoost 1.7 models", x[0], x[1], x[2]);
	return VIGIL_OK;
}

/* learner.learner_model_param and learner.objective. */
static vigil_err
dec_params(struct dec *d, const json_t *learner, model_forest *f)
{
	json_t *obj, *mp, *v;
	const char *s;
	char *end;
	float base;
	uint32_t u;
	vigil_err rv;

	rv = dec_member(d, learner, "learner", "objective", JSON_OBJECT, &obj);
	if (rv != VIGIL_OK)
		return rv;
	rv = dec_member(d, obj, "learner.objective", "name", JSON_STRING, &v);
	if (rv != VIGIL_OK)
		return rv;
	if (strcmp(json_string_value(v), "binary:logistic") != 0)
		return dec_fail(d, VIGIL_EINVAL, "learner.objective.name",
		    "\"%.40s\", only binary:logistic is served",
		    json_string_value(v));

	rv = dec_member(d, learner, "learner", "learner_model_param", JSON_OBJECT, &mp);
	if (rv != VIGIL_OK)
		return rv;
	rv = dec_param_uint(d, mp, P_MP, "num_class", &u);
	if (rv != VIGIL_OK)
		return rv;
	if (u != 0)
		return dec_fail(d, VIGIL_EINVAL, P_MP
		    ".num_class", "%u, only binary models are served",
		    u);
	if (json_object_get(mp, "num_target") != NULL) {
		rv = dec_param_uint(d, mp, P_MP, "num_target", &u);
		if (rv != VIGIL_OK)
			return rv;
		if (u != 1)
			return dec_fail(d, VIGIL_EINVAL, P_MP ".num_target",
			    "%u, only single-target models are served", u);
	}
	rv = dec_param_uint(d, mp, P_MP, "num_feature", &u);
	if (rv != VIGIL_OK)
		return rv;
	if (u > MODEL_MAX_FEATURES)
		return dec_fail(d, VIGIL_ETOOBIG, P_MP
		    ".num_feature", "%u features, the cap is %u", u,
		    MODEL_MAX_FEATURES);
	if (u == 0)
		return dec_fail(d, VIGIL_EINVAL, P_MP ".num_feature", "0, a model needs a feature");
	f->nfeatures = u;

	rv = dec_member(d, mp, P_MP, "base_score", JSON_STRING, &v);
	if (rv != VIGIL_OK)
		return rv;
	s = json_string_value(v);
	base = strtof(s, &end);
	if (*s == '\0' || *end != '\0' || !(base > 0.0f && base < 1.0f))
		return dec_fail(d, VIGIL_ECORRUPT, P_MP ".base_score",
		    "\"%.40s\" is not a probability in (0, 1)", s);
	/* XGBoost's LogisticClassification::ProbToMargin, in float32 */
	f->base_margin = -logf(1.0f / base - 1.0f);
	if (!(fabsf(f->base_margin) <= MODEL_MAX_VALUE)) /* a denormal base_score */
		return dec_fail(d, VIGIL_ECORRUPT, P_MP ".base_score",
		    "\"%.40s\" gives no finite margin", s);
	return VIGIL_OK;
}

/* learner.feature_names (required) and learner.feature_types (optional). */
static vigil_err
dec_features(struct dec *d, const json_t *learner, model_forest *f)
{
	json_t *names, *types;
	size_t total = 0, off = 0;
	uint32_t i, j;

	names = json_object_get(learner, "feature_names");
	if (names == NULL || (json_is_array(names) && json_array_size(names) == 0))
		return dec_fail(d, VIGIL_EINVAL, "learner.feature_names",
		    "missing (the model must be trained with feature names)");
	if (!json_is_array(names))
		return dec_fail(d, VIGIL_ECORRUPT,
		    "learner.feature_names", "expected an array, not %s",
		    dec_kind(names));
	if (json_array_size(names) != f->nfeatures)
		return dec_fail(d, VIGIL_ECORRUPT, "learner.feature_names",
		    "%zu names, " P_MP ".num_feature is %u",
		    json_array_size(names), f->nfeatures);
	for (i = 0; i < f->nfeatures; i++) {
		json_t *v = json_array_get(names, i);
		const char *s;
		size_t len;

		if (!json_is_string(v))
			return dec_failat(d, VIGIL_ECORRUPT, "learner.feature_names", NULL, i,
			    "expected a string, not %s", dec_kind(v));
		s = json_string_value(v);
		len = json_string_length(v);
		if (len == 0 || len > MODEL_MAX_NAME)
			return dec_failat(d, VIGIL_EINVAL, "learner.feature_names", NULL, i,
			    "%zu bytes, a name has 1 to %u", len,
			    MODEL_MAX_NAME);
		for (j = 0; j < len; j++)
			if ((unsigned char)s[j] < 0x20 || s[j] == 0x7f)
				return dec_failat(d, VIGIL_EINVAL, "learner.feature_names", NULL, i,
				    "control character at byte %u", j);
		for (j = 0; j < i; j++)
			if (strcmp(s, json_string_value(json_array_get(names, j))) == 0)
				return dec_failat(d, VIGIL_EINVAL, "learner.feature_names", NULL, i,
				    "\"%s\" is also feature_names[%u]", s,
				    j);
		total += len + 1;
	}

	types = json_object_get(learner, "feature_types");
	if (types != NULL) {
		if (!json_is_array(types))
			return dec_fail(d, VIGIL_ECORRUPT, "learner.feature_types",
			    "expected an array, not %s", dec_kind(types));
		if (json_array_size(types) != 0 && json_array_size(types) != f->nfeatures)
			return dec_fail(d, VIGIL_ECORRUPT, "learner.feature_types",
			    "%zu types, " P_MP ".num_feature is %u",
			    json_array_size(types), f->nfeatures);
		for (i = 0; i < json_array_size(types); i++) {
			json_t *v = json_array_get(types, i);

			if (!json_is_string(v))
				return dec_failat(d, VIGIL_ECORRUPT,
				    "learner.feature_types", NULL, i,
				    "expected a string, not %s",
				    dec_kind(v));
			if (strcmp(json_string_value(v), "c") == 0)
				return dec_failat(d, VIGIL_EINVAL, "learner.feature_types", NULL, i,
				    "categorical (\"c\"), not supported");
		}
	}

	f->names = calloc(f->nfeatures, sizeof *f->names);
	f->names_buf = malloc(total);
	if (f->names == NULL || f->names_buf == NULL)
		return dec_fail(d, VIGIL_ENOMEM, NULL, "out of memory");
	for (i = 0; i < f->nfeatures; i++) {
		json_t *v = json_array_get(names, i);
		size_t len = json_string_length(v);

		memcpy(f->names_buf + off, json_string_value(v), len + 1);
		f->names[i] = f->names_buf + off;
		off += len + 1;
	}
	return VIGIL_OK;
}

/*
 * The terms of d (each leaf's, at d->term_start[i] .. d->term_start[i + 1])
 * laid out in f with every leaf of a block padded to the block's largest
 * count with terms of value 0 on the scratch slots (forest.h). The padding
 * leaf, root of the last block's padding trees, gets that block's count.
 * Fills f->leaf too: every node's mean beside its terms' offset.
 */
static vigil_err
dec_pad_terms(struct dec *d, model_forest *f)
{
	uint32_t pad_leaf = d->nnodes - 1, b, i, k, pos = 0;
	uint64_t total = 0;

	f->block_terms = calloc(f->nblocks ? f->nblocks : 1, 1);
	f->leaf = malloc((size_t)d->nnodes * sizeof *f->leaf);
	if (f->block_terms == NULL || f->leaf == NULL)
		return dec_fail(d, VIGIL_ENOMEM, NULL, "out of memory");
	for (b = 0; b < f->nblocks; b++) {
		uint32_t first = f->root[b * MODEL_BLOCK];
		uint32_t end = b + 1 < f->nblocks ? f->root[(b + 1) * MODEL_BLOCK] : pad_leaf;
		uint32_t kmax = 0, leaves = 0;

		for (i = first; i < end; i++) {
			uint32_t cnt = d->term_start[i + 1] - d->term_start[i];

			if (d->nodes[i].off == 0) {
				leaves++;
				kmax = cnt > kmax ? cnt : kmax;
			}
		}
		f->block_terms[b] = (uint8_t)kmax; /* <= MODEL_MAX_DEPTH */
		total += (uint64_t)kmax * leaves;
	}
	if (f->nblocks > 0)
		total += f->block_terms[f->nblocks - 1];
	if (total > MODEL_MAX_TERMS)
		return dec_fail(d, VIGIL_ETOOBIG, P_M ".trees",
		    "more than %u contribution terms in all (leaves x distinct features "
		    "on their paths)", MODEL_MAX_TERMS);
	f->term = malloc((size_t)(total ? total : 1) * sizeof *f->term);
	if (f->term == NULL)
		return dec_fail(d, VIGIL_ENOMEM, NULL, "out of memory");
	for (b = 0; b <= f->nblocks; b++) {
		uint32_t first = b < f->nblocks ? f->root[b * MODEL_BLOCK] : pad_leaf;
		uint32_t end = b + 1 < f->nblocks ? f->root[(b + 1) * MODEL_BLOCK] :
		    b < f->nblocks ? pad_leaf : pad_leaf + 1;
		uint32_t kb = f->nblocks == 0 ? 0 : f->block_terms[b < f->nblocks ? b : b - 1];

		for (i = first; i < end; i++) {
			uint32_t cnt = d->term_start[i + 1] - d->term_start[i];

			f->leaf[i].mean = d->mean[i];
			f->leaf[i].term = pos;
			if (d->nodes[i].off != 0)
				continue;
			for (k = 0; k < kb; k++) {
				const model_term *t = &d->term[d->term_start[i] + k];

				f->term[pos + k].feature = k < cnt ? t->feature :
				    f->nfeatures + 1 + (i + k) % MODEL_PAD_SLOTS;
				f->term[pos + k].value = k < cnt ? t->value : 0.0f;
			}
			pos += kb;
		}
	}
	f->nterms = pos;
	return VIGIL_OK;
}

/* learner.gradient_booster: the trees, laid out in d, then moved into f. */
static vigil_err
dec_booster(struct dec *d, const json_t *learner, model_forest *f)
{
	json_t *gb, *name, *model, *mparam, *info, *trees;
	uint32_t ntrees, t, nslots;
	vigil_err rv;

	rv = dec_member(d, learner, "learner", "gradient_booster", JSON_OBJECT, &gb);
	if (rv != VIGIL_OK)
		return rv;
	rv = dec_member(d, gb, P_GB, "name", JSON_STRING, &name);
	if (rv != VIGIL_OK)
		return rv;
	if (strcmp(json_string_value(name), "gbtree") != 0)
		return dec_fail(d, VIGIL_EINVAL, P_GB ".name", "\"%.40s\", only gbtree is served",
		    json_string_value(name));
	if ((rv = dec_member(d, gb, P_GB, "model", JSON_OBJECT, &model)) != VIGIL_OK ||
	    (rv = dec_member(d, model, P_M, "gbtree_model_param", JSON_OBJECT, &mparam)) != VIGIL_OK ||
	    (rv = dec_member(d, model, P_M, "trees", JSON_ARRAY, &trees)) != VIGIL_OK ||
	    (rv = dec_member(d, model, P_M, "tree_info", JSON_ARRAY, &info)) != VIGIL_OK)
		return rv;
	if (json_array_size(trees) > MODEL_MAX_TREES)
		return dec_fail(d, VIGIL_ETOOBIG, P_M ".trees", "%zu trees, the cap is %u",
		    json_array_size(trees), MODEL_MAX_TREES);
	ntrees = (uint32_t)json_array_size(trees);
	rv = dec_param_uint(d, mparam, P_M ".gbtree_model_param", "num_trees", &t);
	if (rv != VIGIL_OK)
		return rv;
	if (t != ntrees)
		return dec_fail(d, VIGIL_ECORRUPT, P_M ".gbtree_model_param.num_trees",
		    "%u, but trees has %u elements", t, ntrees);
	if (json_array_size(info) != ntrees)
		return dec_fail(d, VIGIL_ECORRUPT, P_M ".tree_info", "%zu elements, expected %u",
		    json_array_size(info), ntrees);
	for (t = 0; t < ntrees; t++) {
		json_int_t g;

		rv = dec_elem_int(d, info, P_M, "tree_info", t, &g);
		if (rv != VIGIL_OK)
			return rv;
		if (g != 0)
			return dec_failat(d, VIGIL_EINVAL, P_M ".tree_info", NULL, t,
			    "group %" JSON_INTEGER_FORMAT
			    ", only one output group is served", g);
	}

	f->ntrees = ntrees;
	f->nblocks = (ntrees + MODEL_BLOCK - 1) / MODEL_BLOCK;
	nslots = f->nblocks * MODEL_BLOCK;
	f->root = malloc((size_t)(nslots ? nslots : 1) * sizeof *f->root);
	f->block_depth = calloc(f->nblocks ? f->nblocks : 1, 1);
	if (f->root == NULL || f->block_depth == NULL)
		return dec_fail(d, VIGIL_ENOMEM, NULL, "out of memory");
	for (t = 0; t < ntrees; t++) {
		uint8_t depth = 0;
		uint8_t *bd = &f->block_depth[t / MODEL_BLOCK];

		f->root[t] = d->nnodes;
		rv = dec_tree(d, json_array_get(trees, t), t, f->nfeatures, &depth);
		if (rv != VIGIL_OK)
			return rv;
		if (depth > *bd)
			*bd = depth;
	}
	/* The padding leaf (value 0) roots the empty slots of the last block. */
	rv = dec_reserve(d, 0);
	if (rv != VIGIL_OK)
		return rv;
	d->nodes[d->nnodes].off = 0;
	d->nodes[d->nnodes].slot = 0;
	d->nodes[d->nnodes].thr = NAN;
	d->mean[d->nnodes] = 0.0f;
	d->term_start[d->nnodes] = d->nterms; /* no terms */
	for (t = ntrees; t < nslots; t++)
		f->root[t] = d->nnodes;
	d->nnodes++;
	d->term_start[d->nnodes] = d->nterms;

	/* the bias as XGBoost sums it: every tree's root mean, then the base */
	f->bias = 0.0f;
	for (t = 0; t < ntrees; t++)
		f->bias += d->mean[f->root[t]];
	f->bias += f->base_margin;

	rv = dec_pad_terms(d, f);
	if (rv != VIGIL_OK)
		return rv;
	f->nnodes = d->nnodes;
	f->nodes = d->nodes;
	d->nodes = NULL;
	return VIGIL_OK;
}

vigil_err
model_forest_decode(const void *json, size_t len, model_forest **ret_forest,
    model_diag *reterr_diag)
{
	struct dec d = { .diag = reterr_diag };
	json_error_t jerr;
	json_t *root = NULL, *learner;
	model_forest *f = NULL;
	char *copy = NULL;
	size_t copy_len = 0;
	vigil_err rv;

	vigil_errinfo_clear(reterr_diag);
	if ((json == NULL && len > 0) || ret_forest == NULL)
		return dec_fail(&d, VIGIL_EINVAL, NULL,
		    "model_forest_decode: no input or no result pointer");
	if (len > MODEL_MAX_JSON)
		return dec_fail(&d, VIGIL_ETOOBIG, NULL, "JSON: %zu bytes, the cap is %u", len,
		    MODEL_MAX_JSON);
	rv = dec_nonfinite(&d, json != NULL ? json : "", len, &copy, &copy_len);
	if (rv != VIGIL_OK)
		goto out;
	if (copy != NULL)
		root = json_loadb(copy, copy_len, JSON_REJECT_DUPLICATES, &jerr);
	else
		root = json_loadb(json != NULL ? json : "", len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		rv = dec_fail(&d, json_error_code(&jerr) == json_error_out_of_memory ?
		    VIGIL_ENOMEM : VIGIL_ECORRUPT, NULL, "JSON: line %d, column %d: %s", jerr.line,
		    jerr.column, jerr.text);
		if (reterr_diag != NULL && jerr.position >= 0)
			reterr_diag->offset = copy == NULL ? (uint64_t)jerr.position :
			    dec_nonfinite_origin(json, len, (size_t)jerr.position);
		goto out;
	}
	if (!json_is_object(root)) {
		rv = dec_fail(&d, VIGIL_ECORRUPT, NULL,
		    "JSON: expected an object, not %s", dec_kind(root));
		goto out;
	}
	rv = dec_version(&d, root);
	if (rv != VIGIL_OK)
		goto out;
	rv = dec_member(&d, root, "", "learner", JSON_OBJECT, &learner);
	if (rv != VIGIL_OK)
		goto out;
	f = calloc(1, sizeof *f);
	if (f == NULL) {
		rv = dec_fail(&d, VIGIL_ENOMEM, NULL, "out of memory");
		goto out;
	}
	if ((rv = dec_params(&d, learner, f)) != VIGIL_OK ||
	    (rv = dec_features(&d, learner, f)) != VIGIL_OK ||
	    (rv = dec_booster(&d, learner, f)) != VIGIL_OK)
		goto out;
	*ret_forest = f;
	f = NULL;
out:
	model_forest_free(f);
	free(copy);
	free(d.nodes);
	free(d.mean);
	free(d.queue);
	free(d.seen);
	free(d.depth);
	free(d.hess);
	free(d.parent);
	free(d.term_start);
	free(d.term);
	json_decref(root);
	return rv;
}

void
model_forest_free(model_forest *f)
{
	if (f == NULL)
		return;
	free(f->nodes);
	free(f->leaf);
	free(f->block_terms);
	free(f->term);
	free(f->root);
	free(f->block_depth);
	free(f->names);
	free(f->names_buf);
	free(f);
}

uint32_t
model_forest_nfeatures(const model_forest *f)
{
	return f->nfeatures;
}

const char *
model_forest_feature(const model_forest *f, uint32_t i)
{
	return i < f->nfeatures ? f->names[i] : NULL; /* NULL: a caller's bug, not a crash */
}

uint32_t
model_forest_ntrees(const model_forest *f)
{
	return f->ntrees;
}
