/* SPDX-License-Identifier: MIT */
/*
 * tests/model/test_model_noalloc.c - evaluation allocates nothing: malloc,
 * calloc, realloc and free are wrapped at link time (tests/lib/noalloc.h) and counted
 * around model_forest_predict, _margin, _contrib, _top, _predict_path and
 * _top_path over a model
 * XGBoost trained (the corpus file given as argument), on vectors with and
 * without missing values. Decoding, which does allocate, is outside the
 * count.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "noalloc.h"

#include "model.h"

static const char *model_file;
static model_leaves path_buf; /* 16 KiB: not on the stack */

static void
test_eval_allocates_nothing(void **state)
{
	FILE *fp = fopen(model_file, "rb");
	char buf[65536];
	size_t len;
	model_forest *f = NULL;
	model_diag diag;
	float x[MODEL_MAX_FEATURES], c[MODEL_MAX_FEATURES + 1];
	model_reason r[MODEL_TOP_MAX];
	model_leaves *path = &path_buf;
	double acc = 0;
	unsigned long before;
	uint32_t nf, i, row;

	(void)state;
	assert_non_null(fp);
	len = fread(buf, 1, sizeof buf, fp);
	fclose(fp);
	assert_true(len > 0 && len < sizeof buf);
	if (model_forest_decode(buf, len, &f, &diag) != VIGIL_OK)
		fail_msg("%s: %s", model_file, vigil_errinfo_format(&diag, (char[512]){ 0 }, 512));
	assert_true(model_forest_ntrees(f) > 0);
	nf = model_forest_nfeatures(f);

	before = vt_allocs();
	for (row = 0; row < 1000; row++) {
		for (i = 0; i < nf; i++)
			x[i] = (row + i) % 7 == 0 ? NAN : (float)((int)((row * 31 + i * 17) % 41) - 20) / 8.0f;
		acc += model_forest_predict(f, x) + model_forest_margin(f, x);
		model_forest_contrib(f, x, c);
		acc += c[nf];
		acc += model_forest_top(f, x, 3, r);
		acc += model_forest_predict_path(f, x, path);
		acc += model_forest_top_path(f, path, 3, r);
	}
	assert_int_equal(vt_allocs() - before, 0);
	assert_true(isfinite(acc));
	/* the counter works: freeing the decoded forest calls free */
	model_forest_free(f);
	assert_true(vt_allocs() > before);
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_eval_allocates_nothing),
	};

	if (argc != 2) {
		fprintf(stderr, "usage: test_model_noalloc MODEL.json\n");
		return 2;
	}
	model_file = argv[1];
	return cmocka_run_group_tests(tests, NULL, NULL);
}
