/* SPDX-License-Identifier: MIT */
/*
 * tests/model/test_model_decode.c - model_forest_decode's checks and error
 * texts (each names the JSON path and what is wrong: the texts are part of
 * the interface), the caps, and the evaluation of small hand-built forests
 * whose predictions, contributions and reasons are worked out by hand below.
 * Equality with XGBoost on trained models is test_model_xgboost.c.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "model.h"

/*
 * Two trees over (amount, n_24h, risk):
 *   tree 0: amount < 100 (missing: left) ? -0.5
 *           : n_24h < 3 (missing: right) ? 0.2 : 0.9
 *           sum_hessian 10 = 6 + 4, 4 = 1 + 3
 *   tree 1: a single leaf, 0.1
 * Mean values: tree 0 node 2 (0.2 * 1 + 0.9 * 3) / 4 = 0.725, root
 * (-0.5 * 6 + 0.725 * 4) / 10 = -0.01; tree 1 0.1.
 */
static const char tiny[] =
    "{\"learner\":{\"attributes\":{},"
    "\"feature_names\":[\"amount\",\"n_24h\",\"risk\"],\"feature_types\":[\"float\",\"int\",\"float\"],"
    "\"gradient_booster\":{\"model\":{\"gbtree_model_param\":{\"num_parallel_tree\":\"1\","
    "\"num_trees\":\"2\",\"size_leaf_vector\":\"0\"},\"tree_info\":[0,0],\"trees\":["
    "{\"base_weights\":[0,0,0,0,0],\"categories\":[],\"categories_nodes\":[],"
    "\"categories_segments\":[],\"categories_sizes\":[],\"default_left\":[1,0,0,0,0],\"id\":0,"
    "\"left_children\":[1,-1,3,-1,-1],\"loss_changes\":[1,0,1,0,0],"
    "\"parents\":[2147483647,0,0,2,2],\"right_children\":[2,-1,4,-1,-1],"
    "\"split_conditions\":[1E2,-5E-1,3E0,2E-1,9E-1],\"split_indices\":[0,0,1,0,0],"
    "\"split_type\":[0,0,0,0,0],\"sum_hessian\":[1E1,6E0,4E0,1E0,3E0],"
    "\"tree_param\":{\"num_deleted\":\"0\",\"num_feature\":\"3\",\"num_nodes\":\"5\","
    "\"size_leaf_vector\":\"0\"}},"
    "{\"base_weights\":[0],\"categories\":[],\"categories_nodes\":[],\"categories_segments\":[],"
    "\"categories_sizes\":[],\"default_left\":[0],\"id\":1,\"left_children\":[-1],"
    "\"loss_changes\":[0],\"parents\":[2147483647],\"right_children\":[-1],"
    "\"split_conditions\":[1E-1],\"split_indices\":[0],\"split_type\":[0],\"sum_hessian\":[1E1],"
    "\"tree_param\":{\"num_deleted\":\"0\",\"num_feature\":\"3\",\"num_nodes\":\"1\","
    "\"size_leaf_vector\":\"0\"}}]},\"name\":\"gbtree\"},"
    "\"learner_model_param\":{\"base_score\":\"5E-1\",\"boost_from_average\":\"1\","
    "\"num_class\":\"0\",\"num_feature\":\"3\",\"num_target\":\"1\"},"
    "\"objective\":{\"name\":\"binary:logistic\",\"reg_loss_param\":{\"scale_pos_weight\":\"1\"}}},"
    "\"version\":[1,7,4]}";

#define T0 "learner.gradient_booster.model.trees[0]"

/* src with the one occurrence of from replaced by to (malloc'ed). */
static char *
replace(const char *src, const char *from, const char *to)
{
	const char *at = strstr(src, from);
	size_t lf = strlen(from), lt = strlen(to), ls = strlen(src);
	char *out;

	if (at == NULL || strstr(at + 1, from) != NULL)
		fail_msg("replace: \"%s\" is not in the text exactly once", from);
	out = malloc(ls - lf + lt + 1);
	assert_non_null(out);
	memcpy(out, src, (size_t)(at - src));
	memcpy(out + (at - src), to, lt);
	memcpy(out + (at - src) + lt, at + lf, ls - (size_t)(at - src) - lf + 1);
	return out;
}

static model_forest *
decode_ok(const char *json)
{
	model_forest *f = NULL;
	model_diag diag;
	vigil_err rv = model_forest_decode(json, strlen(json), &f, &diag);

	if (rv != VIGIL_OK)
		fail_msg("decode: %s: %s", vigil_errname(rv), diag.msg);
	return f;
}

/* Decodes json[0..len): must fail with want and print as want_msg, and
 * leave the result pointer alone. The diag's parts agree with it: the field
 * is the path want_msg starts with ("" for "JSON: ..."), the message the
 * rest, there is no file. */
static void
expect_err_len(const char *json, size_t len, vigil_err want, const char *want_msg)
{
	model_forest *sentinel = (model_forest *)&sentinel, *f = sentinel;
	model_diag diag;
	vigil_err rv = model_forest_decode(json, len, &f, &diag);
	char line[sizeof diag.msg + 64];
	const char *colon = strstr(want_msg, ": ");

	if (rv != want)
		fail_msg("decode: %s (%s), expected %s", vigil_errname(rv), diag.msg,
		    vigil_errname(want));
	assert_ptr_equal(f, sentinel);
	/* the message is the reason; the path is the field's, printed first */
	assert_string_equal(diag.msg, strncmp(want_msg, "JSON: ", 6) == 0 || colon == NULL ?
	    want_msg : colon + 2);
	assert_string_equal(vigil_errinfo_format(&diag, line, sizeof line), want_msg);
	assert_string_equal(diag.file, "");
	assert_int_equal(diag.line, 0);
	if (strncmp(want_msg, "JSON: ", 6) == 0) {
		assert_string_equal(diag.field, "");
	} else {
		assert_non_null(colon);
		assert_int_equal(strlen(diag.field), (size_t)(colon - want_msg));
		assert_memory_equal(diag.field, want_msg, strlen(diag.field));
		assert_true(diag.offset == VIGIL_NOPOS);
	}
	/* and without a diag */
	assert_int_equal(model_forest_decode(json, len, &f, NULL), want);
	assert_ptr_equal(f, sentinel);
}

static void
expect_err(const char *json, vigil_err want, const char *want_msg)
{
	expect_err_len(json, strlen(json), want, want_msg);
}

/* src with from replaced by to must fail so. */
static void
expect_mutant_of(const char *src, const char *from, const char *to, vigil_err want,
    const char *want_msg)
{
	char *json = replace(src, from, to);

	expect_err(json, want, want_msg);
	free(json);
}

static void
expect_mutant(const char *from, const char *to, vigil_err want, const char *want_msg)
{
	expect_mutant_of(tiny, from, to, want, want_msg);
}

static double
sigmoid(float m)
{
	return 1.0 / (1.0 + exp(-(double)m));
}

static void
test_tiny_evaluates(void **state)
{
	model_forest *f = decode_ok(tiny);
	const float below[3] = { 50, 1, 0 }, above[3] = { 200, 5, 0 };
	const float miss_amount[3] = { NAN, 5, 0 }, miss_n[3] = { 200, NAN, 0 };
	const float edge[3] = { 100, 3, 0 }, all_missing[3] = { NAN, NAN, NAN };

	(void)state;
	assert_int_equal(model_forest_nfeatures(f), 3);
	assert_int_equal(model_forest_ntrees(f), 2);
	assert_string_equal(model_forest_feature(f, 0), "amount");
	assert_string_equal(model_forest_feature(f, 2), "risk");
	assert_null(model_forest_feature(f, 3));

	/* margins: sums in float32, in tree order */
	assert_true(model_forest_margin(f, below) == (double)(-0.5f + 0.1f));
	assert_true(model_forest_margin(f, above) == (double)(0.9f + 0.1f));
	/* missing amount: default left; missing n_24h: default right */
	assert_true(model_forest_margin(f, miss_amount) == (double)(-0.5f + 0.1f));
	assert_true(model_forest_margin(f, miss_n) == (double)(0.9f + 0.1f));
	assert_true(model_forest_margin(f, all_missing) == (double)(-0.5f + 0.1f));
	/* x == threshold goes right (left iff x < threshold) */
	assert_true(model_forest_margin(f, edge) == (double)(0.9f + 0.1f));

	assert_true(fabs(model_forest_predict(f, below) - sigmoid(-0.5f + 0.1f)) < 1e-7);
	assert_true(fabs(model_forest_predict(f, above) - sigmoid(0.9f + 0.1f)) < 1e-7);
	model_forest_free(f);
	model_forest_free(NULL);
}

static void
test_tiny_contributions(void **state)
{
	model_forest *f = decode_ok(tiny);
	const float above[3] = { 200, 5, 0 }, below[3] = { 50, 1, 0 };
	float c[4];
	model_reason r[8];

	(void)state;
	model_forest_contrib(f, above, c);
	assert_float_equal(c[0], 0.725 - -0.01, 1e-6);
	assert_float_equal(c[1], 0.9 - 0.725, 1e-6);
	assert_true(c[2] == 0.0f);
	assert_float_equal(c[3], -0.01 + 0.1, 1e-6); /* bias: the means of the roots */
	assert_float_equal(c[0] + c[1] + c[2] + c[3], model_forest_margin(f, above), 1e-6);

	assert_int_equal(model_forest_top(f, above, 3, r), 2);
	assert_int_equal(r[0].feature, 0);
	assert_float_equal(r[0].contrib, c[0], 0);
	assert_int_equal(r[1].feature, 1);
	assert_int_equal(model_forest_top(f, above, 1, r), 1);
	assert_int_equal(r[0].feature, 0);
	assert_int_equal(model_forest_top(f, above, 0, r), 0);

	model_forest_contrib(f, below, c);
	assert_float_equal(c[0], -0.5 - -0.01, 1e-6);
	assert_true(c[1] == 0.0f);
	assert_int_equal(model_forest_top(f, below, 3, r), 0); /* nothing pushes up */
	model_forest_free(f);
}

/*
 * nf stumps, tree i on feature i: x_i < 0.5 ? -w_i : w_i, equal hessians
 * (mean 0), so with every x_i = 1 the contribution of feature i is w_i.
 */
static char *
stumps_json(uint32_t nf, const float *w)
{
	size_t cap = 4096 + (size_t)nf * 600, off = 0;
	char *s = malloc(cap);
	uint32_t i;

	assert_non_null(s);
	off += (size_t)snprintf(s + off, cap - off, "{\"version\":[1,7,4],\"learner\":{"
	    "\"objective\":{\"name\":\"binary:logistic\"},\"learner_model_param\":{\"base_score\":"
	    "\"5E-1\",\"num_class\":\"0\",\"num_feature\":\"%u\"},\"feature_names\":[", nf);
	for (i = 0; i < nf; i++)
		off += (size_t)snprintf(s + off, cap - off, "%s\"f%u\"", i ? "," : "", i);
	off += (size_t)snprintf(s + off, cap - off, "],\"gradient_booster\":{\"name\":\"gbtree\","
	    "\"model\":{\"gbtree_model_param\":{\"num_trees\":\"%u\"},\"tree_info\":[", nf);
	for (i = 0; i < nf; i++)
		off += (size_t)snprintf(s + off, cap - off, "%s0", i ? "," : "");
	off += (size_t)snprintf(s + off, cap - off, "],\"trees\":[");
	for (i = 0; i < nf; i++)
		off += (size_t)snprintf(s + off, cap - off,
		    "%s{\"id\":%u,\"tree_param\":{\"num_nodes\":\"3\",\"num_deleted\":\"0\"},"
		    "\"left_children\":[1,-1,-1],\"right_children\":[2,-1,-1],"
		    "\"split_indices\":[%u,0,0],\"split_conditions\":[0.5,%.9g,%.9g],"
		    "\"default_left\":[true,false,false],\"sum_hessian\":[2,1,1]}",
		    i ? "," : "", i, i, (double)-w[i], (double)w[i]);
	snprintf(s + off, cap - off, "]}}}}");
	return s;
}

static void
test_top_order_ties_and_cap(void **state)
{
	/* positive ones: f1 0.3, f2 0.7, f4 0.3 (tie with f1), f5..f11 0.1..0.7 */
	const float w[12] = { -0.2f, 0.3f, 0.7f, 0, 0.3f, 0.1f, 0.2f, 0.25f, 0.35f, 0.45f, 0.5f, 0.7f };
	char *json = stumps_json(12, w);
	model_forest *f = decode_ok(json);
	float x[12], c[13];
	model_reason r[MODEL_TOP_MAX];
	const uint32_t want[8] = { 2, 11, 10, 9, 8, 1, 4, 7 };

	(void)state;
	for (int i = 0; i < 12; i++)
		x[i] = 1;
	model_forest_contrib(f, x, c);
	for (int i = 0; i < 12; i++)
		assert_true(c[i] == w[i]);
	assert_true(c[12] == 0.0f);
	/* k over the cap returns at most MODEL_TOP_MAX, descending, ties by index */
	assert_int_equal(model_forest_top(f, x, 100, r), MODEL_TOP_MAX);
	for (int i = 0; i < 8; i++) {
		assert_int_equal(r[i].feature, want[i]);
		assert_true(r[i].contrib == w[want[i]]);
	}
	assert_int_equal(model_forest_top(f, x, 3, r), 3);
	assert_int_equal(r[2].feature, 10);
	model_forest_free(f);
	free(json);
}

static void
test_deleted_nodes_and_booleans(void **state)
{
	/* tree 0 pruned: node 2 became a leaf (it keeps its split index), nodes 3
	 * and 4 are deleted (XGBoost marks them with split index 2^31 - 1) */
	char *a = replace(tiny, "\"left_children\":[1,-1,3,-1,-1]", "\"left_children\":[1,-1,-1,-1,-1]");
	char *b = replace(a, "\"right_children\":[2,-1,4,-1,-1]", "\"right_children\":[2,-1,-1,-1,-1]");
	char *c = replace(b, "\"split_indices\":[0,0,1,0,0]",
	    "\"split_indices\":[0,0,1,2147483647,2147483647]");
	char *d = replace(c, "\"num_deleted\":\"0\",\"num_feature\":\"3\",\"num_nodes\":\"5\"",
	    "\"num_deleted\":\"2\",\"num_feature\":\"3\",\"num_nodes\":\"5\"");
	char *e = replace(d, "\"default_left\":[1,0,0,0,0]", "\"default_left\":[true,false,0,1,1]");
	const float above[3] = { 200, 5, 0 };
	model_forest *f = decode_ok(e);

	(void)state;
	/* node 2 is now the leaf 3E0 */
	assert_true(model_forest_margin(f, above) == (double)(3.0f + 0.1f));
	model_forest_free(f);
	/* the same tree claiming no deleted node */
	expect_mutant("\"num_deleted\":\"0\",\"num_feature\":\"3\",\"num_nodes\":\"5\"",
	    "\"num_deleted\":\"1\",\"num_feature\":\"3\",\"num_nodes\":\"5\"", VIGIL_ECORRUPT,
	    T0 ": 0 nodes unreachable from the root, tree_param.num_deleted is 1");
	expect_err(c, VIGIL_ECORRUPT,
	    T0 ": 2 nodes unreachable from the root, tree_param.num_deleted is 0");
	free(a);
	free(b);
	free(c);
	free(d);
	free(e);
}

/* NaN and Infinity where they do no harm, and as text inside strings */
static void
test_nonfinite_tokens_elsewhere(void **state)
{
	char *a = replace(tiny, "\"loss_changes\":[1,0,1,0,0]",
	    "\"loss_changes\":[NaN,-Infinity,Infinity,-NaN,0]");
	char *b = replace(a, "[\"amount\",\"n_24h\",\"risk\"]",
	    "[\"NaN\",\"n\\\"Infinity\",\"risk\\\\\"]");
	model_forest *f = decode_ok(b);
	const float above[3] = { 200, 5, 0 };

	(void)state;
	assert_string_equal(model_forest_feature(f, 0), "NaN");
	assert_string_equal(model_forest_feature(f, 1), "n\"Infinity");
	assert_string_equal(model_forest_feature(f, 2), "risk\\");
	assert_true(model_forest_margin(f, above) == (double)(0.9f + 0.1f));
	model_forest_free(f);
	free(a);
	free(b);
}

static void
test_err_json(void **state)
{
	char *dup;

	(void)state;
	expect_err_len(tiny, sizeof tiny / 2, VIGIL_ECORRUPT,
	    "JSON: line 1, column 687: premature end of input near '\"'");
	expect_err_len(tiny, sizeof tiny - 2, VIGIL_ECORRUPT,
	    "JSON: line 1, column 1373: '}' expected near end of file");
	expect_err_len("", 0, VIGIL_ECORRUPT,
	    "JSON: line 1, column 0: '[' or '{' expected near end of file");
	expect_err("[1,7,4]", VIGIL_ECORRUPT, "JSON: expected an object, not an array");
	expect_err_len(NULL, 0, VIGIL_ECORRUPT,
	    "JSON: line 1, column 0: '[' or '{' expected near end of file");
	dup = replace(tiny, "\"version\":[1,7,4]", "\"version\":[1,7,4],\"version\":[1,7,4]");
	expect_err(dup, VIGIL_ECORRUPT, "JSON: line 1, column 1383: duplicate object key near '\"version\"'");
	free(dup);
}

/* The parts of the diag, field and offset, where the message alone would
 * have to be parsed for them. */
static void
test_diag_field_and_offset(void **state)
{
	static const char bad[] = "{\"a\": x}";
	model_forest *f = NULL;
	model_diag diag;
	char *json, *json2;
	const char *at;

	(void)state;
	/* a syntax error: no field, the offset where jansson stopped (past 'x') */
	assert_int_equal(model_forest_decode(bad, sizeof bad - 1, &f, &diag), VIGIL_ECORRUPT);
	assert_string_equal(diag.field, "");
	assert_int_equal(diag.offset, 7);
	assert_string_equal(diag.msg, "JSON: line 1, column 7: invalid token near 'x'");

	/* after a NaN token (read in a copy where it is "null", one byte longer),
	 * the offset still counts in the input: just past the stray ']' */
	json = replace(tiny, "[1E2,-5E-1,3E0,2E-1,9E-1]", "[NaN,-5E-1,3E0,2E-1,9E-1]");
	json2 = replace(json, "\"version\":[1,7,4]", "\"version\":[1,7,4]]");
	at = strstr(json2, "[1,7,4]]");
	assert_int_equal(model_forest_decode(json2, strlen(json2), &f, &diag), VIGIL_ECORRUPT);
	assert_string_equal(diag.field, "");
	assert_int_equal(diag.offset, (uint64_t)(at - json2) + 8);
	free(json2);
	free(json);
	/* ... and after a "-Infinity" (9 bytes, read as the 4 of "null") */
	json = replace(tiny, "[1E2,-5E-1,3E0,2E-1,9E-1]", "[-Infinity]");
	json2 = replace(json, "\"version\":[1,7,4]", "\"version\":[1,7,4]]");
	at = strstr(json2, "[1,7,4]]");
	assert_int_equal(model_forest_decode(json2, strlen(json2), &f, &diag), VIGIL_ECORRUPT);
	assert_int_equal(diag.offset, (uint64_t)(at - json2) + 8);
	free(json2);
	free(json);

	/* a path longer than 64 bytes is the field whole */
	json = replace(tiny, "\"num_nodes\":\"5\",\"size_leaf_vector\":\"0\"",
	    "\"num_nodes\":\"5\",\"size_leaf_vector\":\"2\"");
	assert_int_equal(model_forest_decode(json, strlen(json), &f, &diag), VIGIL_EINVAL);
	assert_string_equal(diag.field, T0 ".tree_param.size_leaf_vector");
	assert_true(diag.offset == VIGIL_NOPOS);
	assert_string_equal(diag.msg, "2, vector leaves are not supported");
	free(json);

	/* an array element at the root: version[1] */
	json = replace(tiny, "\"version\":[1,7,4]", "\"version\":[1,\"7\",4]");
	assert_int_equal(model_forest_decode(json, strlen(json), &f, &diag), VIGIL_ECORRUPT);
	assert_string_equal(diag.field, "version[1]");
	assert_string_equal(diag.msg, "expected an integer, not a string");
	free(json);
	assert_null(f);
}

static void
test_err_version(void **state)
{
	(void)state;
	expect_mutant("\"version\":[1,7,4]", "\"version\":[2,0,3]", VIGIL_EVERSION,
	    "version: 2.0.3, this evaluator reads XGBoost 1.7 models");
	expect_mutant("\"version\":[1,7,4]", "\"version\":[1,6,2]", VIGIL_EVERSION,
	    "version: 1.6.2, this evaluator reads XGBoost 1.7 models");
	expect_mutant("\"version\":[1,7,4]", "\"version\":\"1.7.4\"", VIGIL_ECORRUPT,
	    "version: expected an array, not a string");
	expect_mutant(",\"version\":[1,7,4]", "", VIGIL_ECORRUPT, "version: missing");
	expect_mutant("\"version\":[1,7,4]", "\"version\":[1,7]", VIGIL_ECORRUPT,
	    "version: 2 elements, expected 3");
}

static void
test_err_unsupported(void **state)
{
	(void)state;
	expect_mutant("binary:logistic", "reg:squarederror", VIGIL_EINVAL,
	    "learner.objective.name: \"reg:squarederror\", only binary:logistic is served");
	expect_mutant("\"name\":\"gbtree\"", "\"name\":\"dart\"", VIGIL_EINVAL,
	    "learner.gradient_booster.name: \"dart\", only gbtree is served");
	expect_mutant("\"num_class\":\"0\"", "\"num_class\":\"3\"", VIGIL_EINVAL,
	    "learner.learner_model_param.num_class: 3, only binary models are served");
	expect_mutant("\"tree_info\":[0,0]", "\"tree_info\":[0,1]", VIGIL_EINVAL,
	    "learner.gradient_booster.model.tree_info[1]: group 1, only one output group is served");
	expect_mutant("\"split_type\":[0,0,0,0,0]", "\"split_type\":[0,0,1,0,0]", VIGIL_EINVAL,
	    T0 ".split_type[2]: 1 (categorical), only numerical splits are supported");
	/* as XGBoost writes a categorical split: threshold NaN */
	{
		char *a = replace(tiny, "\"split_type\":[0,0,0,0,0]", "\"split_type\":[1,0,0,0,0]");

		expect_mutant_of(a, "[1E2,-5E-1,3E0,2E-1,9E-1]", "[NaN,-5E-1,3E0,2E-1,9E-1]",
		    VIGIL_EINVAL,
		    T0 ".split_type[0]: 1 (categorical), only numerical splits are supported");
		free(a);
	}
	expect_mutant("\"feature_types\":[\"float\",\"int\",\"float\"]",
	    "\"feature_types\":[\"float\",\"c\",\"float\"]", VIGIL_EINVAL,
	    "learner.feature_types[1]: categorical (\"c\"), not supported");
}

static void
test_err_feature_names(void **state)
{
	(void)state;
	expect_mutant("\"feature_names\":[\"amount\",\"n_24h\",\"risk\"],", "", VIGIL_EINVAL,
	    "learner.feature_names: missing (the model must be trained with feature names)");
	expect_mutant("[\"amount\",\"n_24h\",\"risk\"]", "[]", VIGIL_EINVAL,
	    "learner.feature_names: missing (the model must be trained with feature names)");
	expect_mutant("[\"amount\",\"n_24h\",\"risk\"]", "[\"amount\",\"n_24h\"]", VIGIL_ECORRUPT,
	    "learner.feature_names: 2 names, learner.learner_model_param.num_feature is 3");
	expect_mutant("[\"amount\",\"n_24h\",\"risk\"]", "[\"amount\",\"n_24h\",\"amount\"]",
	    VIGIL_EINVAL, "learner.feature_names[2]: \"amount\" is also feature_names[0]");
	expect_mutant("[\"amount\",\"n_24h\",\"risk\"]", "[\"amount\",7,\"risk\"]", VIGIL_ECORRUPT,
	    "learner.feature_names[1]: expected a string, not an integer");
	expect_mutant("[\"amount\",\"n_24h\",\"risk\"]", "[\"amount\",\"\",\"risk\"]", VIGIL_EINVAL,
	    "learner.feature_names[1]: 0 bytes, a name has 1 to 64");
	expect_mutant("[\"amount\",\"n_24h\",\"risk\"]", "[\"amount\",\"n\\t24h\",\"risk\"]",
	    VIGIL_EINVAL, "learner.feature_names[1]: control character at byte 1");
}

static void
test_err_tree_structure(void **state)
{
	(void)state;
	expect_mutant("[1,-1,3,-1,-1]", "[1,-1,7,-1,-1]", VIGIL_ECORRUPT,
	    T0 ".left_children[2]: child 7 out of range (num_nodes 5)");
	expect_mutant("[2,-1,4,-1,-1]", "[2,-1,-2,-1,-1]", VIGIL_ECORRUPT,
	    T0 ".right_children[2]: child -2 out of range (num_nodes 5)");
	/* node 2's left child is the root: a cycle */
	expect_mutant("[1,-1,3,-1,-1]", "[1,-1,0,-1,-1]", VIGIL_ECORRUPT,
	    T0 ".left_children[2]: node 0 is reached twice (a cycle or a shared child)");
	/* node 2 is its own right child */
	expect_mutant("[2,-1,4,-1,-1]", "[2,-1,2,-1,-1]", VIGIL_ECORRUPT,
	    T0 ".right_children[2]: node 2 is reached twice (a cycle or a shared child)");
	/* both children the same node */
	expect_mutant("[2,-1,4,-1,-1]", "[2,-1,3,-1,-1]", VIGIL_ECORRUPT,
	    T0 ".right_children[2]: node 3 is reached twice (a cycle or a shared child)");
	expect_mutant("[2,-1,4,-1,-1]", "[2,-1,4,1,-1]", VIGIL_ECORRUPT,
	    T0 ".right_children[3]: 1 for a leaf (left child -1)");
	expect_mutant("[2,-1,4,-1,-1]", "[2,-1,-1,-1,-1]", VIGIL_ECORRUPT,
	    T0 ".right_children[2]: child -1 out of range (num_nodes 5)");
	expect_mutant("\"split_indices\":[0,0,1,0,0]", "\"split_indices\":[0,0,3,0,0]",
	    VIGIL_ECORRUPT, T0 ".split_indices[2]: feature 3 out of range (num_feature 3)");
	expect_mutant("[1E2,-5E-1,3E0,2E-1,9E-1]", "[1E39,-5E-1,3E0,2E-1,9E-1]", VIGIL_ECORRUPT,
	    T0 ".split_conditions[0]: 1e+39 is not a finite float32");
	/* XGBoost writes non-finite floats as NaN and Infinity, outside JSON */
	expect_mutant("[1E2,-5E-1,3E0,2E-1,9E-1]", "[NaN,-5E-1,3E0,2E-1,9E-1]", VIGIL_ECORRUPT,
	    T0 ".split_conditions[0]: NaN or infinite, not a finite float32");
	expect_mutant("[1E2,-5E-1,3E0,2E-1,9E-1]", "[1E2,-5E-1,3E0,2E-1,-Infinity]", VIGIL_ECORRUPT,
	    T0 ".split_conditions[4]: NaN or infinite, not a finite float32");
	expect_mutant("[1E2,-5E-1,3E0,2E-1,9E-1]", "[1E2,-5E-1,3E0,\"x\",9E-1]", VIGIL_ECORRUPT,
	    T0 ".split_conditions[3]: expected a number, not a string");
	expect_mutant("[1E2,-5E-1,3E0,2E-1,9E-1]", "[1E2,-5E-1,3E0,2E-1]", VIGIL_ECORRUPT,
	    T0 ".split_conditions: 4 elements, tree_param.num_nodes is 5");
	expect_mutant("\"default_left\":[1,0,0,0,0]", "\"default_left\":[1,0,2,0,0]", VIGIL_ECORRUPT,
	    T0 ".default_left[2]: 2, expected 0 or 1");
	expect_mutant("[1E1,6E0,4E0,1E0,3E0]", "[1E1,6E0,0,1E0,3E0]", VIGIL_ECORRUPT,
	    T0 ".sum_hessian[2]: 0 at a split");
	expect_mutant("[1E1,6E0,4E0,1E0,3E0]", "[1E1,6E0,4E0,-1E0,3E0]", VIGIL_ECORRUPT,
	    T0 ".sum_hessian[3]: -1 is negative");
	expect_mutant("[1E2,-5E-1,3E0,2E-1,9E-1]", "[1E2,-5E-1,3E0,2E-1,2E18]", VIGIL_ECORRUPT,
	    T0 ".split_conditions[4]: leaf value 2e+18 out of range (|v| <= 1e+18)");
	/* hessians that do not add up can make a mean far out of its leaves' range */
	expect_mutant("[1E1,6E0,4E0,1E0,3E0]", "[1E1,6E0,1E-30,1E0,3E0]", VIGIL_ECORRUPT,
	    T0 ".sum_hessian[2]: gives the node a mean value of 2.9e+30 (|v| <= 1e+18)");
	expect_mutant(",\"sum_hessian\":[1E1,6E0,4E0,1E0,3E0]", "", VIGIL_ECORRUPT,
	    T0 ".sum_hessian: missing");
	expect_mutant("\"id\":0", "\"id\":1", VIGIL_ECORRUPT,
	    T0 ".id: 1, expected 0 (trees in id order)");
	expect_mutant("\"num_trees\":\"2\"", "\"num_trees\":\"3\"", VIGIL_ECORRUPT,
	    "learner.gradient_booster.model.gbtree_model_param.num_trees: 3, but trees has 2 elements");
	expect_mutant("\"num_feature\":\"3\",\"num_nodes\":\"5\"", "\"num_feature\":\"3\",\"num_nodes\":\"5x\"",
	    VIGIL_ECORRUPT, T0 ".tree_param.num_nodes: \"5x\" is not an unsigned 32-bit integer");
	expect_mutant("\"base_score\":\"5E-1\"", "\"base_score\":\"1\"", VIGIL_ECORRUPT,
	    "learner.learner_model_param.base_score: \"1\" is not a probability in (0, 1)");
	expect_mutant("\"base_score\":\"5E-1\"", "\"base_score\":\"1E-45\"", VIGIL_ECORRUPT,
	    "learner.learner_model_param.base_score: \"1E-45\" gives no finite margin");
}

/* A chain tree: node i splits to a leaf (left) and node i + 1, depth deep. */
static char *
chain_json(uint32_t depth)
{
	uint32_t n = 2 * depth + 1, i;
	size_t cap = 1024 + (size_t)n * 40, off = 0;
	char *s = malloc(cap);

	assert_non_null(s);
	off += (size_t)snprintf(s + off, cap - off, "{\"version\":[1,7,4],\"learner\":{"
	    "\"objective\":{\"name\":\"binary:logistic\"},\"learner_model_param\":{\"base_score\":"
	    "\"5E-1\",\"num_class\":\"0\",\"num_feature\":\"1\"},\"feature_names\":[\"x\"],"
	    "\"gradient_booster\":{\"name\":\"gbtree\",\"model\":{\"gbtree_model_param\":"
	    "{\"num_trees\":\"1\"},\"tree_info\":[0],\"trees\":[{\"id\":0,\"tree_param\":"
	    "{\"num_nodes\":\"%u\",\"num_deleted\":\"0\"},\"left_children\":[", n);
	/* splits are nodes 0..depth-1, leaves depth..2*depth */
	for (i = 0; i < n; i++)
		off += (size_t)snprintf(s + off, cap - off, "%s%d", i ? "," : "",
		    i < depth ? (int)(depth + i) : -1);
	off += (size_t)snprintf(s + off, cap - off, "],\"right_children\":[");
	for (i = 0; i < n; i++)
		off += (size_t)snprintf(s + off, cap - off, "%s%d", i ? "," : "",
		    i + 1 < depth ? (int)(i + 1) : i + 1 == depth ? (int)(2 * depth) : -1);
	off += (size_t)snprintf(s + off, cap - off, "],\"split_indices\":[");
	for (i = 0; i < n; i++)
		off += (size_t)snprintf(s + off, cap - off, "%s0", i ? "," : "");
	off += (size_t)snprintf(s + off, cap - off, "],\"split_conditions\":[");
	for (i = 0; i < n; i++)
		off += (size_t)snprintf(s + off, cap - off, "%s%u", i ? "," : "", i);
	off += (size_t)snprintf(s + off, cap - off, "],\"default_left\":[");
	for (i = 0; i < n; i++)
		off += (size_t)snprintf(s + off, cap - off, "%s0", i ? "," : "");
	off += (size_t)snprintf(s + off, cap - off, "],\"sum_hessian\":[");
	for (i = 0; i < n; i++)
		off += (size_t)snprintf(s + off, cap - off, "%s1", i ? "," : "");
	snprintf(s + off, cap - off, "]}]}}}}");
	return s;
}

static void
test_caps(void **state)
{
	char *json, *big;
	model_forest *f;
	float x;
	size_t len, off;

	(void)state;
	/* depth: 64 splits decode, 65 do not */
	json = chain_json(MODEL_MAX_DEPTH);
	f = decode_ok(json);
	x = 1000; /* right all the way: the last leaf, numbered 2 * depth */
	assert_true(model_forest_margin(f, &x) == 2.0 * MODEL_MAX_DEPTH);
	x = 5.5f; /* left at split 6 (x < 6): leaf depth + 6 */
	assert_true(model_forest_margin(f, &x) == MODEL_MAX_DEPTH + 6);
	model_forest_free(f);
	free(json);
	json = chain_json(MODEL_MAX_DEPTH + 1);
	expect_err(json, VIGIL_ETOOBIG, T0 ": deeper than 64 splits");
	free(json);

	expect_mutant("\"num_feature\":\"3\",\"num_target\"", "\"num_feature\":\"300\",\"num_target\"",
	    VIGIL_ETOOBIG, "learner.learner_model_param.num_feature: 300 features, the cap is 256");
	expect_mutant("\"num_feature\":\"3\",\"num_nodes\":\"5\"",
	    "\"num_feature\":\"3\",\"num_nodes\":\"65537\"", VIGIL_ETOOBIG,
	    T0 ".tree_param.num_nodes: 65537 nodes, the cap is 65536");

	/* MODEL_MAX_TREES + 1 single-leaf trees */
	len = 4096 + (MODEL_MAX_TREES + 1) * 200;
	big = malloc(len);
	assert_non_null(big);
	off = (size_t)snprintf(big, len, "{\"version\":[1,7,4],\"learner\":{\"objective\":{\"name\":"
	    "\"binary:logistic\"},\"learner_model_param\":{\"base_score\":\"5E-1\",\"num_class\":"
	    "\"0\",\"num_feature\":\"1\"},\"feature_names\":[\"x\"],\"gradient_booster\":{\"name\":"
	    "\"gbtree\",\"model\":{\"gbtree_model_param\":{\"num_trees\":\"4097\"},\"tree_info\":[],"
	    "\"trees\":[");
	for (uint32_t t = 0; t <= MODEL_MAX_TREES; t++)
		off += (size_t)snprintf(big + off, len - off, "%s{\"id\":%u,\"tree_param\":{\"num_nodes\":"
		    "\"1\",\"num_deleted\":\"0\"},\"left_children\":[-1],\"right_children\":[-1],"
		    "\"split_indices\":[0],\"split_conditions\":[0],\"default_left\":[0],"
		    "\"sum_hessian\":[1]}", t ? "," : "", t);
	snprintf(big + off, len - off, "]}}}}");
	expect_err(big, VIGIL_ETOOBIG, "learner.gradient_booster.model.trees: 4097 trees, the cap is 4096");
	free(big);

	/* the JSON size is checked before anything is read */
	big = calloc(1, (size_t)MODEL_MAX_JSON + 1);
	assert_non_null(big);
	expect_err_len(big, (size_t)MODEL_MAX_JSON + 1, VIGIL_ETOOBIG,
	    "JSON: 33554433 bytes, the cap is 33554432");
	free(big);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tiny_evaluates),
		cmocka_unit_test(test_tiny_contributions),
		cmocka_unit_test(test_top_order_ties_and_cap),
		cmocka_unit_test(test_deleted_nodes_and_booleans),
		cmocka_unit_test(test_nonfinite_tokens_elsewhere),
		cmocka_unit_test(test_err_json),
		cmocka_unit_test(test_diag_field_and_offset),
		cmocka_unit_test(test_err_version),
		cmocka_unit_test(test_err_unsupported),
		cmocka_unit_test(test_err_feature_names),
		cmocka_unit_test(test_err_tree_structure),
		cmocka_unit_test(test_caps),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
