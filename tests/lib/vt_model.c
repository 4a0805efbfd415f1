/* SPDX-License-Identifier: MIT */
/*
 * tests/lib/vt_model.c - reads back archives and generations for the
 * nightly-model tests (vt_model.h). Every failure aborts with a line on
 * stderr: the callers are tests that cannot go on without the data.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vt_model.h"

static void __attribute__((noreturn, format(printf, 1, 2)))
vt_die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "vt_model: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	abort();
}

static void *
vt_grow(void *p, size_t *cap, size_t n, size_t size)
{
	if (n < *cap)
		return p;
	*cap = *cap ? *cap * 2 : 1024;
	p = realloc(p, *cap * size);
	if (p == NULL)
		vt_die("out of memory");
	return p;
}

void
vt_archive_load(const char *datadir, int64_t from_ms, int64_t to_ms, vt_archive *ret)
{
	char dir[1024];
	store_reader *rd = NULL;
	store_reader_stats st;
	store_record rec;
	store_diag diag;
	size_t cap_r = 0, cap_l = 0;
	static store_scored s; /* large: not on the stack */
	vigil_err rv;

	memset(ret, 0, sizeof *ret);
	snprintf(dir, sizeof dir, "%s/archive", datadir);
	rv = store_reader_open(dir, INT64_MIN, INT64_MAX, NULL, NULL, &rd, &diag);
	if (rv != VIGIL_OK)
		vt_die("%s: %s: %s", dir, vigil_strerror(rv), diag.msg);
	while ((rv = store_reader_next(rd, &rec, &diag)) == VIGIL_OK) {
		if (rec.type == STORE_REC_LABEL) {
			store_label l;
			vt_labelrec *v;

			if (store_label_decode(rec.payload, rec.len, &l, &diag) != VIGIL_OK)
				vt_die("%s:%llu: label: %s", rec.segment,
				    (unsigned long long)rec.offset, diag.msg);
			ret->labels = vt_grow(ret->labels, &cap_l, ret->nlabels, sizeof *v);
			v = &ret->labels[ret->nlabels++];
			snprintf(v->txn_id, sizeof v->txn_id, "%s", l.txn_id);
			v->fraud = l.fraud;
			v->label_time_ms = l.label_time_ms;
			v->record_time_ms = rec.event_time_ms;
			v->seq = rec.seq;
			continue;
		}
		if (rec.type != STORE_REC_SCORE || rec.event_time_ms < from_ms ||
		    rec.event_time_ms >= to_ms)
			continue;
		if (store_scored_decode(rec.payload, rec.len, &s, &diag) != VIGIL_OK)
			vt_die("%s:%llu: score: %s", rec.segment, (unsigned long long)rec.offset,
			    diag.msg);
		ret->recs = vt_grow(ret->recs, &cap_r, ret->nrecs, sizeof *ret->recs);
		{
			vt_scored *v = &ret->recs[ret->nrecs++];

			memset(v, 0, sizeof *v);
			snprintf(v->txn_id, sizeof v->txn_id, "%s", s.txn.txn_id);
			snprintf(v->card_id, sizeof v->card_id, "%s", s.txn.card_id);
			v->event_time_ms = s.txn.event_time_ms;
			v->features_gen = s.features_gen;
			v->seq = rec.seq;
			v->model_layout = s.model_layout;
			v->raw_len = s.model_in_len;
			memcpy(v->raw, s.model_in, s.model_in_len);
			if (s.model_in_len > 0) {
				rv = store_model_vec_decode(s.model_in, s.model_in_len, v->x,
				    STORE_MODEL_MAX_INPUTS, &v->nx);
				if (rv != VIGIL_OK)
					vt_die("%s:%llu: model vector: %s", rec.segment,
					    (unsigned long long)rec.offset, vigil_strerror(rv));
			}
		}
	}
	if (rv != VIGIL_ENOTFOUND)
		vt_die("%s: %s: %s", dir, vigil_strerror(rv), diag.msg);
	store_reader_get_stats(rd, &st);
	ret->corrupt = st.corrupt_records;
	store_reader_close(rd);
}

void
vt_archive_free(vt_archive *a)
{
	free(a->recs);
	free(a->labels);
	memset(a, 0, sizeof *a);
}

const vt_scored *
vt_archive_find(const vt_archive *a, const char *txn_id)
{
	for (size_t i = a->nrecs; i > 0; i--)
		if (strcmp(a->recs[i - 1].txn_id, txn_id) == 0)
			return &a->recs[i - 1];
	return NULL;
}

static store_gen *
vt_gen_open(const char *datadir, uint64_t gen)
{
	store_gen *g = NULL;
	store_diag diag;
	vigil_err rv;

	rv = gen == 0 ? store_gen_open_current(datadir, &g, &diag) :
	    store_gen_open(datadir, gen, &g, &diag);
	if (rv != VIGIL_OK)
		vt_die("%s: generation %llu: %s: %s", datadir, (unsigned long long)gen,
		    vigil_strerror(rv), diag.msg);
	return g;
}

void *
vt_gen_blob(const char *datadir, uint64_t gen, const char *name, size_t *ret_len)
{
	store_gen *g = vt_gen_open(datadir, gen);
	void *data = NULL;
	size_t len = 0;
	vigil_err rv;

	rv = store_gen_blob(g, name, &data, &len);
	store_gen_close(g);
	if (rv == VIGIL_ENOTFOUND)
		return NULL;
	if (rv != VIGIL_OK)
		vt_die("%s: generation %llu: blob %s: %s", datadir, (unsigned long long)gen, name,
		    vigil_strerror(rv));
	*ret_len = len;
	return data;
}

uint64_t
vt_gen_current(const char *datadir)
{
	uint64_t gen = 0;
	vigil_err rv = store_gen_current(datadir, &gen);

	if (rv != VIGIL_OK)
		vt_die("%s: CURRENT: %s", datadir, vigil_strerror(rv));
	return gen;
}

char *
vt_gen_summary(const char *datadir, uint64_t gen)
{
	store_gen *g = vt_gen_open(datadir, gen);
	store_gen_meta meta;
	char *s;

	if (store_gen_meta_get(g, &meta) != VIGIL_OK)
		vt_die("%s: generation %llu: no meta", datadir, (unsigned long long)gen);
	store_gen_close(g);
	s = strdup(meta.summary_json);
	if (s == NULL)
		vt_die("out of memory");
	return s;
}

app_model *
vt_gen_model(const char *datadir, uint64_t gen)
{
	store_gen *g = vt_gen_open(datadir, gen);
	app_model *m = NULL;
	char err[512] = "";
	vigil_err rv;

	rv = app_model_from_gen(g, &m, err, sizeof err);
	store_gen_close(g);
	if (rv != VIGIL_OK)
		vt_die("%s: generation %llu: model refused: %s", datadir, (unsigned long long)gen,
		    err);
	return m;
}

int
vt_layout_index(const char *name)
{
	const uint32_t *slots;
	uint32_t n = store_schema_model_inputs(&slots);

	for (uint32_t i = 0; i < n; i++)
		if (strcmp(store_schema_field(slots[i])->name, name) == 0)
			return (int)i;
	return -1;
}

void
vt_model_inputs(const app_model *m, const float *layout_x, float *ret_x)
{
	const model_forest *f = app_model_forest(m);
	const uint32_t *slots;
	uint32_t nl = store_schema_model_inputs(&slots);

	for (uint32_t i = 0; i < model_forest_nfeatures(f); i++) {
		uint32_t slot = app_model_slot(m, i), j;

		for (j = 0; j < nl && slots[j] != slot; j++)
			;
		if (j == nl)
			vt_die("model input %s is not in the archived layout",
			    model_forest_feature(f, i));
		ret_x[i] = layout_x[j];
	}
}

double
vt_model_predict(const app_model *m, const float *layout_x)
{
	float x[MODEL_MAX_FEATURES];

	vt_model_inputs(m, layout_x, x);
	return model_forest_predict(app_model_forest(m), x);
}

bool
vt_bytes_equal(const void *a, size_t alen, const void *b, size_t blen)
{
	return a != NULL && b != NULL && alen == blen && memcmp(a, b, alen) == 0;
}
