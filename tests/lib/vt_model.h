/* SPDX-License-Identifier: MIT */
/*
 * tests/lib/vt_model.h - what the nightly-model tests read back from a data
 * directory, through the same libraries the programs use: the scored
 * records of the archive with the model vector each one archived
 * (store_reader + store_scored_decode + store_model_vec_decode), the label
 * records, a generation's blobs and its model (store_gen_blob +
 * app_model_decode), and the model evaluated on an archived vector. Test
 * code: errors abort with a message on stderr, so a test never goes on with
 * half-read data.
 */
#ifndef VIGIL_TEST_VT_MODEL_H
#define VIGIL_TEST_VT_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "app.h"
#include "archive.h"
#include "gen.h"

/* One scored record as archived. */
typedef struct vt_scored {
	char     txn_id[VIGIL_ID_MAX + 1];
	char     card_id[VIGIL_ID_MAX + 1];
	int64_t  event_time_ms;
	uint64_t features_gen;
	uint64_t seq;
	uint64_t model_layout;                      /* 0: no vector */
	uint32_t nx;                                /* vector length (the layout's) */
	float    x[STORE_MODEL_MAX_INPUTS];         /* NaN: missing */
	uint32_t raw_len;                           /* the archived vector bytes */
	uint8_t  raw[STORE_MODEL_IN_MAX_BYTES];
} vt_scored;

/* One label record as archived. */
typedef struct vt_labelrec {
	char    txn_id[VIGIL_ID_MAX + 1];
	bool    fraud;
	int64_t label_time_ms;  /* as recorded (0: none) */
	int64_t record_time_ms; /* the record's event time */
	uint64_t seq;
} vt_labelrec;

typedef struct vt_archive {
	vt_scored *recs;   /* archive order */
	size_t     nrecs;
	vt_labelrec *labels; /* archive order */
	size_t     nlabels;
	uint64_t   corrupt;
} vt_archive;

/* Reads every record of <datadir>/archive (scores with event time in
 * [from_ms, to_ms), every label). Aborts on a read or decode error. */
void vt_archive_load(const char *datadir, int64_t from_ms, int64_t to_ms, vt_archive *ret);
void vt_archive_free(vt_archive *a);
/* The record of txn_id (the last one if several), NULL if none. */
const vt_scored *vt_archive_find(const vt_archive *a, const char *txn_id);

/* A generation's blob (malloc'd, caller frees), NULL if it has none of that
 * name; aborts if the generation cannot be opened. gen 0: CURRENT. */
void *vt_gen_blob(const char *datadir, uint64_t gen, const char *name, size_t *ret_len);
/* The CURRENT generation's number (0: none). */
uint64_t vt_gen_current(const char *datadir);
/* The generation's summary_json (what vigil-rebuild printed), malloc'd. */
char *vt_gen_summary(const char *datadir, uint64_t gen);
/* The generation's model (app_model_from_gen), NULL if it has none; aborts
 * if it is refused. Free with app_model_free. */
app_model *vt_gen_model(const char *datadir, uint64_t gen);

/* Index of feature name in the archived model layout, -1 if not in it. */
int vt_layout_index(const char *name);
/* The forest's input vector (its own feature order) from a vector in the
 * archived layout: exactly what app_score hands model_forest_*. */
void vt_model_inputs(const app_model *m, const float *layout_x, float *ret_x);
/* model_forest_predict on a vector in the archived layout. */
double vt_model_predict(const app_model *m, const float *layout_x);

/* Bytes equal (and both non-NULL). */
bool vt_bytes_equal(const void *a, size_t alen, const void *b, size_t blen);

#endif
