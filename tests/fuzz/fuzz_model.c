/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_model.c - libFuzzer target for the served model's decoder
 * (model/): arbitrary bytes through model_forest_decode; when they decode,
 * the forest is evaluated on a few vectors (zeros, all missing, values around
 * the usual thresholds with some missing, infinities) and the invariants
 * checked: a finite margin (the decoder bounds the leaf values), a
 * probability in [0, 1], finite contributions, reasons positive and
 * descending. Any crash, sanitizer report or broken invariant (abort) is a
 * finding. On a failed decode the diag must print as one non-empty line, led
 * by its field (the JSON path) when it has one, which the message does not
 * repeat, and a syntax error's offset within the input.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static model_leaves path_buf; /* 16 KiB: not on the stack */

static void
check_vector(const model_forest *f, const float *x, model_leaves *path)
{
	uint32_t nf = model_forest_nfeatures(f), i, n;
	float c[MODEL_MAX_FEATURES + 1];
	model_reason r[MODEL_TOP_MAX], r2[MODEL_TOP_MAX];
	double m = model_forest_margin(f, x), p = model_forest_predict(f, x);

	if (!isfinite(m) || !(p >= 0.0 && p <= 1.0))
		abort();
	model_forest_contrib(f, x, c);
	for (i = 0; i <= nf; i++)
		if (!isfinite(c[i]))
			abort();
	n = model_forest_top(f, x, MODEL_TOP_MAX + 1, r);
	if (n > MODEL_TOP_MAX)
		abort();
	for (i = 0; i < n; i++) {
		if (r[i].feature >= nf || !(r[i].contrib > 0.0f))
			abort();
		if (i > 0 && r[i].contrib > r[i - 1].contrib)
			abort();
	}
	/* the one-walk pair gives the same, bit for bit */
	if (model_forest_predict_path(f, x, path) != p ||
	    model_forest_top_path(f, path, MODEL_TOP_MAX + 1, r2) != n ||
	    (n > 0 && memcmp(r, r2, n * sizeof r[0]) != 0))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	model_forest *f = NULL;
	model_diag diag;
	float x[MODEL_MAX_FEATURES];
	uint32_t nf, i;

	if (model_forest_decode(data, size, &f, &diag) != VIGIL_OK) {
		char line[sizeof diag.file + sizeof diag.msg + 32];
		size_t nfield = strlen(diag.field);

		vigil_errinfo_format(&diag, line, sizeof line);
		if (f != NULL || line[0] == '\0' || strchr(line, '\n') != NULL)
			abort();
		if (nfield > 0 && (strncmp(line, diag.field, nfield) != 0 || line[nfield] != ':' ||
		    (strncmp(diag.msg, diag.field, nfield) == 0 && diag.msg[nfield] == ':')))
			abort();
		if (diag.offset != VIGIL_NOPOS && (nfield > 0 || diag.offset > size))
			abort();
		return 0;
	}
	nf = model_forest_nfeatures(f);
	if (nf == 0 || nf > MODEL_MAX_FEATURES || model_forest_ntrees(f) > MODEL_MAX_TREES)
		abort();
	for (i = 0; i < nf; i++)
		if (model_forest_feature(f, i) == NULL || model_forest_feature(f, i)[0] == '\0')
			abort();
	if (model_forest_feature(f, nf) != NULL)
		abort();

	memset(x, 0, sizeof x);
	check_vector(f, x, &path_buf);
	for (i = 0; i < nf; i++)
		x[i] = NAN;
	check_vector(f, x, &path_buf);
	for (i = 0; i < nf; i++)
		x[i] = i % 5 == 0 ? NAN : (float)((int)(i * 7 % 11) - 5) * 0.5f;
	check_vector(f, x, &path_buf);
	for (i = 0; i < nf; i++)
		x[i] = i % 2 ? INFINITY : -INFINITY;
	check_vector(f, x, &path_buf);
	model_forest_free(f);
	return 0;
}
