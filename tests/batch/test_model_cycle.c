/* SPDX-License-Identifier: MIT */
/*
 * tests/batch/test_model_cycle.c - the nightly model through vigil-rebuild,
 * on a data directory made by the real cycle (vigil-gen traffic scored,
 * archived with its model vectors and labelled by vigil-replay --nightly,
 * vigil-rebuild at every midnight): DESIGN.md contract 7 and issue 16's
 * tests "determinism", "leakage" and "cold start", each against the bytes
 * of the model.json blob the generation stores.
 *
 * The fixture (group setup): 300 cards, 20 days from 2024-01-01, fraud rate
 * 0.05: about 8,000 transactions, a model from the night of 2024-01-14 on.
 * Its last night's as-of (A) is where the rebuilds below run.
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
#include <jansson.h>

#include "harness.h"
#include "vt_model.h"
#include "vt_rebuild.h"

static char tmp[] = "/tmp/vigil-test-mcycle-XXXXXX";
static char fixture[512];
static int64_t as_of;         /* the fixture's last night */
static char as_of_day[16];    /* YYYY-MM-DD */
static int dirs;

#define MATURITY_MS (7 * VIGIL_MS_PER_DAY)

/* A fresh copy of the fixture (tmp/d<N>). */
static const char *
fixture_copy(void)
{
	static char bufs[4][512];
	char *d = bufs[dirs % 4];

	snprintf(d, sizeof bufs[0], "%s/d%d", tmp, dirs++);
	if (vt_copy_dir(fixture, d) != 0)
		fail_msg("cannot copy the fixture to %s", d);
	return d;
}

/* An empty data directory (tmp/d<N>) with an archive directory. */
static const char *
empty_datadir(void)
{
	static char bufs[4][512];
	char *d = bufs[dirs % 4];
	char sub[600];

	snprintf(d, sizeof bufs[0], "%s/d%d", tmp, dirs++);
	snprintf(sub, sizeof sub, "mkdir -p '%s/archive'", d);
	if (system(sub) != 0)
		fail_msg("mkdir %s", sub);
	return d;
}

/* The model.json of the generation the summary names (NULL: none). */
static void *
sum_model(const char *dir, json_t *sum, size_t *ret_len)
{
	return vt_gen_blob(dir, vt_sum_int(sum, NULL, "generation"), APP_MODEL_BLOB, ret_len);
}

static store_archive *
archive_open(const char *dir)
{
	char path[600];
	store_archive *ar = NULL;
	store_diag diag;
	vigil_err rv;

	snprintf(path, sizeof path, "%s/archive", dir);
	rv = store_archive_open(path, NULL, &ar, NULL, &diag);
	if (rv != VIGIL_OK)
		fail_msg("%s: %s: %s", path, vigil_strerror(rv), diag.msg);
	return ar;
}

/* Appends a label record whose event time is record_ms. */
static void
append_label(store_archive *ar, const char *txn_id, bool fraud, int64_t label_ms,
    int64_t record_ms)
{
	store_label l;
	uint8_t buf[512];
	size_t len = 0;

	memset(&l, 0, sizeof l);
	snprintf(l.txn_id, sizeof l.txn_id, "%s", txn_id);
	snprintf(l.source, sizeof l.source, "test");
	l.fraud = fraud;
	l.label_time_ms = label_ms;
	l.received_at_ms = record_ms;
	assert_int_equal(store_label_encode(&l, buf, sizeof buf, &len), VIGIL_OK);
	assert_int_equal(store_archive_append(ar, STORE_REC_LABEL, record_ms, buf, len, NULL),
	    VIGIL_OK);
}

/*
 * The label known at as-of for each scored record, as the contract states
 * it (the latest label time <= as-of), computed here independently of
 * batch/. -1: none; 0 legit; 1 fraud; 2: two labels known at the same
 * latest time (the caller avoids those). nlabels: labels of the txn.
 */
typedef struct known {
	int    label;
	int64_t time;
	int    nlabels;
} known;

static known *
labels_known(const vt_archive *a, int64_t at)
{
	known *k = calloc(a->nrecs > 0 ? a->nrecs : 1, sizeof *k);

	assert_non_null(k);
	for (size_t i = 0; i < a->nrecs; i++)
		k[i].label = -1;
	for (size_t j = 0; j < a->nlabels; j++) {
		const vt_labelrec *l = &a->labels[j];
		int64_t t = l->label_time_ms > 0 ? l->label_time_ms : l->record_time_ms;

		for (size_t i = 0; i < a->nrecs; i++) {
			known *x = &k[i];

			if (strcmp(a->recs[i].txn_id, l->txn_id) != 0)
				continue;
			x->nlabels++;
			if (t > at)
				break;
			if (x->label < 0 || t > x->time) {
				x->label = l->fraud;
				x->time = t;
			} else if (t == x->time && x->label != (int)l->fraud) {
				x->label = 2;
			}
			break;
		}
	}
	return k;
}

/* Up to n mature transactions (event time < as_of - maturity) with exactly
 * one label, known at as-of and equal to fraud; from the end of the
 * archive backwards when from_end. Returns how many were found. */
static size_t
pick_mature(const vt_archive *a, const known *k, bool fraud, size_t n, bool from_end,
    size_t *ret_idx)
{
	size_t m = 0;

	for (size_t c = 0; c < a->nrecs && m < n; c++) {
		size_t i = from_end ? a->nrecs - 1 - c : c;

		if (a->recs[i].event_time_ms < as_of - MATURITY_MS && k[i].nlabels == 1 &&
		    k[i].label == (int)fraud)
			ret_idx[m++] = i;
	}
	return m;
}

static int
group_setup(void **state)
{
	vt_nightly o = { .cards = 300, .days = 20, .seed = 1, .fraud_rate = 0.05,
		.start = "2024-01-01" };
	store_gen *g = NULL;
	store_gen_meta meta;

	(void)state;
	if (mkdtemp(tmp) == NULL)
		return -1;
	snprintf(fixture, sizeof fixture, "%s/fixture", tmp);
	if (vt_nightly_datadir(fixture, &o) != 0)
		return -1;
	if (store_gen_open_current(fixture, &g, NULL) != VIGIL_OK)
		return -1;
	store_gen_meta_get(g, &meta);
	store_gen_close(g);
	as_of = meta.as_of_ms;
	vigil_date_format(as_of, as_of_day, sizeof as_of_day);
	return 0;
}

static int
group_teardown(void **state)
{
	char cmd[600];

	(void)state;
	if (getenv("VIGIL_KEEP_TEST_DATA") != NULL) {
		fprintf(stderr, "keeping %s\n", tmp);
		return 0;
	}
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
	return system(cmd) == 0 ? 0 : -1;
}

/*
 * model.meta's calibration, as branch score reads it: exactly
 * {"method": "platt", "a": A, "b": B} with A > 0 (the fixture's validation
 * days hold frauds the model ranks high), and no calibration_why_not.
 */
static void
meta_check_calibration(const void *meta, size_t len)
{
	json_error_t je;
	json_t *m = json_loadb(meta, len, 0, &je), *c;
	double a, b;
	const char *method = NULL;

	if (m == NULL)
		fail_msg("model.meta is not JSON: %s", je.text);
	c = json_object_get(m, "calibration");
	assert_non_null(c);
	assert_int_equal(json_object_size(c), 3);
	assert_int_equal(json_unpack(c, "{s:s, s:F, s:F}", "method", &method, "a", &a, "b", &b), 0);
	assert_string_equal(method, "platt");
	assert_true(a > 0 && isfinite(a) && isfinite(b));
	assert_null(json_object_get(m, "calibration_why_not"));
	json_decref(m);
}

/*
 * Determinism: the same archive and as-of give a byte-identical model.json
 * (and model.meta): two forced rebuilds of one data directory, and a third
 * of a copy of that archive in another directory, with 2 worker threads
 * (so XGBoost and the rebuild's per-card workers both run in parallel).
 * Fails if anything order- or time-dependent (thread scheduling, hash
 * order, the clock, the path) reaches the model.
 */
static void
test_determinism(void **state)
{
	const char *const two[] = { "--threads", "2", NULL };
	const char *d1 = fixture_copy(), *d2;
	json_t *s1, *s2, *s3;
	void *m1, *m2, *m3, *t1, *t2;
	size_t l1 = 0, l2 = 0, l3 = 0, tl1 = 0, tl2 = 0;
	char d1c[512];

	(void)state;
	snprintf(d1c, sizeof d1c, "%s", d1);
	d2 = fixture_copy();
	s1 = vt_rebuild(d1c, as_of_day, two);
	s2 = vt_rebuild(d1c, as_of_day, two);
	s3 = vt_rebuild(d2, as_of_day, two);
	assert_true(vt_sum_trained(s1));
	assert_true(vt_sum_trained(s2));
	assert_true(vt_sum_trained(s3));
	assert_int_equal(vt_sum_int(s2, NULL, "generation"), vt_sum_int(s1, NULL, "generation") + 1);
	m1 = sum_model(d1c, s1, &l1);
	m2 = sum_model(d1c, s2, &l2);
	m3 = sum_model(d2, s3, &l3);
	assert_non_null(m1);
	assert_true(l1 > 1000);
	if (!vt_bytes_equal(m1, l1, m2, l2))
		fail_msg("two rebuilds of one archive and as-of: model.json differs (%zu and %zu "
		    "bytes)", l1, l2);
	if (!vt_bytes_equal(m1, l1, m3, l3))
		fail_msg("the same archive in another directory: model.json differs");
	t1 = vt_gen_blob(d1c, vt_sum_int(s1, NULL, "generation"), APP_MODEL_META_BLOB, &tl1);
	t2 = vt_gen_blob(d1c, vt_sum_int(s2, NULL, "generation"), APP_MODEL_META_BLOB, &tl2);
	assert_true(vt_bytes_equal(t1, tl1, t2, tl2));
	meta_check_calibration(t1, tl1);
	free(m1);
	free(m2);
	free(m3);
	free(t1);
	free(t2);
	json_decref(s1);
	json_decref(s2);
	json_decref(s3);
}

/* Appends a copy of the score record seq of src_dir's archive with another
 * txn_id and event time t (payload re-encoded). */
static void
append_score_copy(store_archive *ar, const char *src_dir, uint64_t seq, const char *txn_id,
    int64_t t)
{
	char path[600];
	store_reader *rd = NULL;
	store_record rec;
	static store_scored s;
	static uint8_t buf[1 << 16];
	size_t len = 0;

	snprintf(path, sizeof path, "%s/archive", src_dir);
	assert_int_equal(store_reader_open(path, INT64_MIN, INT64_MAX, NULL, NULL, &rd, NULL),
	    VIGIL_OK);
	while (store_reader_next(rd, &rec, NULL) == VIGIL_OK) {
		if (rec.seq != seq)
			continue;
		assert_int_equal(store_scored_decode(rec.payload, rec.len, &s, NULL), VIGIL_OK);
		snprintf(s.txn.txn_id, sizeof s.txn.txn_id, "%s", txn_id);
		s.txn.event_time_ms = t;
		assert_int_equal(store_scored_encode(&s, buf, sizeof buf, &len), VIGIL_OK);
		assert_int_equal(store_archive_append(ar, STORE_REC_SCORE, t, buf, len, NULL),
		    VIGIL_OK);
		break;
	}
	store_reader_close(rd);
}

/*
 * Leakage: what is not known at as-of, or not mature, never reaches the
 * model. Appended to the archive: (a) fraud labels for 100 mature
 * transactions labelled legitimate, with label time after as-of, recorded
 * after as-of as vigild records them; (b) the same with a record time
 * before as-of (only the label time says it is not known yet); (c) 40
 * later transactions (copies of scored records): 20 in the window but not
 * mature, labelled fraud at as-of, and 20 after as-of. The model stays
 * byte-identical. The control: the same 100 fraud labels known at as-of
 * change the model and its fraud count by 100, so the first part can fail.
 */
static void
test_leakage_future_labels(void **state)
{
	char d1[512], d2[512];
	vt_archive a;
	known *k;
	size_t idx[100], n;
	json_t *s0, *s1, *s2;
	void *m0, *m1, *m2;
	size_t l0 = 0, l1 = 0, l2 = 0;
	store_archive *ar;

	(void)state;
	snprintf(d1, sizeof d1, "%s", fixture_copy());
	snprintf(d2, sizeof d2, "%s", fixture_copy());
	vt_archive_load(fixture, INT64_MIN, INT64_MAX, &a);
	k = labels_known(&a, as_of);
	n = pick_mature(&a, k, false, 100, true, idx);
	assert_int_equal(n, 100);

	s0 = vt_rebuild(d1, as_of_day, NULL);
	assert_true(vt_sum_trained(s0));
	m0 = sum_model(d1, s0, &l0);
	assert_non_null(m0);

	ar = archive_open(d1);
	for (size_t i = 0; i < n; i++) {
		const char *id = a.recs[idx[i]].txn_id;

		append_label(ar, id, true, as_of + 3600000, as_of + 3600000);         /* (a) */
		append_label(ar, id, true, as_of + VIGIL_MS_PER_DAY, as_of - 3600000); /* (b) */
	}
	for (int i = 0; i < 40; i++) {                                               /* (c) */
		char id[32];
		int64_t t = i < 20 ? as_of - MATURITY_MS + (int64_t)i * 3600000 :
		    as_of + (int64_t)i * 60000;

		snprintf(id, sizeof id, "late-%d", i);
		append_score_copy(ar, fixture, a.recs[idx[i % n]].seq, id, t);
		if (i < 20)
			append_label(ar, id, true, as_of, as_of);
	}
	store_archive_close(ar);
	s1 = vt_rebuild(d1, as_of_day, NULL);
	assert_true(vt_sum_trained(s1));
	assert_int_equal(vt_sum_int(s1, "labels", "future_ignored"), n);
	assert_int_equal(vt_sum_int(s1, "model", "frauds"), vt_sum_int(s0, "model", "frauds"));
	assert_int_equal(vt_sum_int(s1, "model", "rows"), vt_sum_int(s0, "model", "rows"));
	/* the 20 immature ones were read (in the window), not trained on */
	assert_int_equal(vt_sum_int(s1, NULL, "records_read"), vt_sum_int(s0, NULL, "records_read") + 20);
	m1 = sum_model(d1, s1, &l1);
	if (!vt_bytes_equal(m0, l0, m1, l1))
		fail_msg("labels after as-of or later transactions changed the model");

	/* The control: the same labels, known at as-of (label time = as-of). */
	ar = archive_open(d2);
	for (size_t i = 0; i < n; i++)
		append_label(ar, a.recs[idx[i]].txn_id, true, as_of, as_of);
	store_archive_close(ar);
	s2 = vt_rebuild(d2, as_of_day, NULL);
	assert_true(vt_sum_trained(s2));
	assert_int_equal(vt_sum_int(s2, "model", "frauds"), vt_sum_int(s0, "model", "frauds") + n);
	m2 = sum_model(d2, s2, &l2);
	assert_non_null(m2);
	if (vt_bytes_equal(m0, l0, m2, l2))
		fail_msg("100 more frauds known at as-of did not change the model: the check "
		    "above proves nothing");

	free(m0);
	free(m1);
	free(m2);
	json_decref(s0);
	json_decref(s1);
	json_decref(s2);
	free(k);
	vt_archive_free(&a);
}

/* A label record's payload, kept for rewriting the archive. */
typedef struct rawrec {
	int64_t t;
	size_t  len;
	uint8_t *p;
} rawrec;

/*
 * Writes an archive in dst with every score record of src in its order,
 * then the label records lab[0..n) in the order perm gives.
 */
static void
write_archive(const char *src, const char *dst, const rawrec *lab, const size_t *perm,
    size_t n)
{
	char path[600];
	store_reader *rd = NULL;
	store_record rec;
	store_archive *ar = archive_open(dst);

	snprintf(path, sizeof path, "%s/archive", src);
	assert_int_equal(store_reader_open(path, INT64_MIN, INT64_MAX, NULL, NULL, &rd, NULL),
	    VIGIL_OK);
	while (store_reader_next(rd, &rec, NULL) == VIGIL_OK)
		if (rec.type == STORE_REC_SCORE)
			assert_int_equal(store_archive_append(ar, rec.type, rec.event_time_ms,
			    rec.payload, rec.len, NULL), VIGIL_OK);
	store_reader_close(rd);
	for (size_t i = 0; i < n; i++) {
		const rawrec *r = &lab[perm[i]];

		assert_int_equal(store_archive_append(ar, STORE_REC_LABEL, r->t, r->p, r->len,
		    NULL), VIGIL_OK);
	}
	store_archive_close(ar);
}

static void
rawrec_label(rawrec *r, const char *txn_id, bool fraud, int64_t label_ms)
{
	store_label l;

	memset(&l, 0, sizeof l);
	snprintf(l.txn_id, sizeof l.txn_id, "%s", txn_id);
	snprintf(l.source, sizeof l.source, "test");
	l.fraud = fraud;
	l.label_time_ms = label_ms;
	l.received_at_ms = label_ms;
	r->p = malloc(512);
	assert_non_null(r->p);
	assert_int_equal(store_label_encode(&l, r->p, 512, &r->len), VIGIL_OK);
	r->t = label_ms;
}

/*
 * Shuffled arrival of labels: the same label records archived in two
 * orders (as read, and reversed) give the same model. Besides the
 * fixture's labels (one per transaction), 60 mature legitimate
 * transactions get a second, fraud label at a later time known at as-of,
 * 40 mature frauds a later legitimate one (a withdrawn chargeback), and 60
 * more a second label of the other verdict at the very same label time
 * (chargeback feeds often stamp whole days): the transaction's label must
 * not depend on which of two equal-time labels was archived last.
 */
static void
test_leakage_label_order(void **state)
{
	const char *dx, *dy;
	char x[512], y[512];
	vt_archive a;
	known *k;
	rawrec *lab;
	size_t *fwd, *rev, n = 0, cap, idx[160], m;
	json_t *sx, *sy;
	void *mx, *my;
	size_t lx = 0, ly = 0;
	char path[600];
	store_reader *rd = NULL;
	store_record rec;

	(void)state;
	dx = empty_datadir();
	snprintf(x, sizeof x, "%s", dx);
	dy = empty_datadir();
	snprintf(y, sizeof y, "%s", dy);
	vt_archive_load(fixture, INT64_MIN, INT64_MAX, &a);
	k = labels_known(&a, as_of);
	cap = a.nlabels + 200;
	lab = calloc(cap, sizeof *lab);
	fwd = calloc(cap, sizeof *fwd);
	rev = calloc(cap, sizeof *rev);
	assert_non_null(lab);
	assert_non_null(fwd);
	assert_non_null(rev);

	/* the fixture's label records, bytes as archived */
	snprintf(path, sizeof path, "%s/archive", fixture);
	assert_int_equal(store_reader_open(path, INT64_MIN, INT64_MAX, NULL, NULL, &rd, NULL),
	    VIGIL_OK);
	while (store_reader_next(rd, &rec, NULL) == VIGIL_OK) {
		if (rec.type != STORE_REC_LABEL)
			continue;
		lab[n].t = rec.event_time_ms;
		lab[n].len = rec.len;
		lab[n].p = malloc(rec.len);
		assert_non_null(lab[n].p);
		memcpy(lab[n].p, rec.payload, rec.len);
		n++;
	}
	store_reader_close(rd);
	assert_int_equal(n, a.nlabels);

	m = pick_mature(&a, k, false, 120, false, idx);
	assert_int_equal(m, 120);
	for (size_t i = 0; i < 60; i++) {   /* later fraud label */
		const known *kk = &k[idx[i]];
		int64_t t = kk->time + 3600000 <= as_of ? kk->time + 3600000 : as_of;

		rawrec_label(&lab[n++], a.recs[idx[i]].txn_id, true, t);
	}
	for (size_t i = 60; i < 120; i++)   /* same-time fraud label */
		rawrec_label(&lab[n++], a.recs[idx[i]].txn_id, true, k[idx[i]].time);
	m = pick_mature(&a, k, true, 40, false, idx);
	assert_int_equal(m, 40);
	for (size_t i = 0; i < 40; i++) {   /* later legitimate label: withdrawn */
		const known *kk = &k[idx[i]];
		int64_t t = kk->time + 3600000 <= as_of ? kk->time + 3600000 : as_of;

		rawrec_label(&lab[n++], a.recs[idx[i]].txn_id, false, t);
	}
	for (size_t i = 0; i < n; i++) {
		fwd[i] = i;
		rev[i] = n - 1 - i;
	}
	write_archive(fixture, x, lab, fwd, n);
	write_archive(fixture, y, lab, rev, n);
	sx = vt_rebuild(x, as_of_day, NULL);
	sy = vt_rebuild(y, as_of_day, NULL);
	assert_true(vt_sum_trained(sx));
	assert_true(vt_sum_trained(sy));
	assert_int_equal(vt_sum_int(sx, "labels", "read"), vt_sum_int(sy, "labels", "read"));
	assert_int_equal(vt_sum_int(sx, "labels", "used"), vt_sum_int(sy, "labels", "used"));
	if (vt_sum_int(sx, "model", "frauds") != vt_sum_int(sy, "model", "frauds"))
		fail_msg("labels archived in another order: %llu training frauds, not %llu",
		    (unsigned long long)vt_sum_int(sy, "model", "frauds"),
		    (unsigned long long)vt_sum_int(sx, "model", "frauds"));
	mx = sum_model(x, sx, &lx);
	my = sum_model(y, sy, &ly);
	if (!vt_bytes_equal(mx, lx, my, ly))
		fail_msg("labels archived in another order: model.json differs");

	for (size_t i = 0; i < n; i++)
		free(lab[i].p);
	free(lab);
	free(fwd);
	free(rev);
	free(mx);
	free(my);
	json_decref(sx);
	json_decref(sy);
	free(k);
	vt_archive_free(&a);
}

/*
 * Cold start: a night with too few mature frauds trains no model, says why
 * in the summary ("model": {"trained": false, "why_not": "N frauds ...,
 * fewer than min_frauds 50"}), and its generation has neither model.json
 * nor model.meta, so vigild serves it with rules alone (served side:
 * tests/server/test_vigild_model.c). The fixture's own current generation
 * has both, so the absence is not vacuous.
 */
static void
test_cold_start(void **state)
{
	const char *d = fixture_copy();
	json_t *s, *m;
	const char *why;
	void *blob;
	size_t len = 0;
	uint64_t gen;

	(void)state;
	blob = vt_gen_blob(fixture, 0, APP_MODEL_BLOB, &len);
	assert_non_null(blob);
	free(blob);
	blob = vt_gen_blob(fixture, 0, APP_MODEL_META_BLOB, &len);
	assert_non_null(blob);
	free(blob);

	s = vt_rebuild(d, "2024-01-10", NULL);
	m = json_object_get(s, "model");
	assert_non_null(m);
	assert_false(json_is_true(json_object_get(m, "trained")));
	why = json_string_value(json_object_get(m, "why_not"));
	assert_non_null(why);
	if (strstr(why, "fewer than min_frauds 50") == NULL)
		fail_msg("why_not: \"%s\"", why);
	assert_true(vt_sum_int(s, "model", "frauds") < 50);
	assert_true(vt_sum_int(s, "model", "rows_seen") > 0);
	gen = vt_sum_int(s, NULL, "generation");
	assert_int_equal(vt_gen_current(d), gen);
	assert_null(vt_gen_blob(d, gen, APP_MODEL_BLOB, &len));
	assert_null(vt_gen_blob(d, gen, APP_MODEL_META_BLOB, &len));
	{
		app_model *am = vt_gen_model(d, gen);

		assert_null(am);
	}
	json_decref(s);
}

/* The day `days` after the fixture's last night, YYYY-MM-DD. */
static const char *
day_after(int days, char *buf, size_t cap)
{
	vigil_date_format(as_of + (int64_t)days * VIGIL_MS_PER_DAY, buf, cap);
	return buf;
}

/*
 * --train-every: a night within DUR of the current model's training as-of
 * carries that model over byte for byte (model.json and model.meta), and
 * its summary says from which generation and as of when; the same night
 * without the option trains a new model (other bytes: the control, so the
 * comparison can fail). A model DUR old or older is retrained (1d, one
 * night later), and so is one whose training window's frauds have grown by
 * a quarter or more (30d, labels added), however young it is. A night that
 * carries keeps only its fraud rows; one that retrains after all reads the
 * window again with every row: its model is the same night's without the
 * option, byte for byte.
 */
static void
test_train_every(void **state)
{
	const char *const every7[] = { "--train-every", "7d", NULL };
	const char *const every1[] = { "--train-every", "1d", NULL };
	const char *const every30[] = { "--train-every", "30d", NULL };
	uint64_t cur = vt_gen_current(fixture);
	void *m0, *t0, *m1, *t1, *m2;
	size_t l0 = 0, tl0 = 0, l1 = 0, tl1 = 0, l2 = 0, l4 = 0, l5 = 0;
	json_t *s1, *s2, *s3, *s4, *s5, *m;
	char day1[16], at[16], d2[512];
	const char *d, *d3;
	void *m4, *m5;
	uint64_t frauds0;

	(void)state;
	m0 = vt_gen_blob(fixture, cur, APP_MODEL_BLOB, &l0);
	t0 = vt_gen_blob(fixture, cur, APP_MODEL_META_BLOB, &tl0);
	assert_non_null(m0);
	assert_non_null(t0);
	day_after(1, day1, sizeof day1);

	d = fixture_copy();
	s1 = vt_rebuild(d, day1, every7);
	assert_true(vt_sum_trained(s1));
	m = json_object_get(s1, "model");
	assert_int_equal(vt_sum_int(s1, "model", "carried_from"), cur);
	snprintf(at, sizeof at, "%s", json_string_value(json_object_get(m, "trained_as_of")));
	assert_string_equal(at, as_of_day);
	m1 = sum_model(d, s1, &l1);
	t1 = vt_gen_blob(d, vt_sum_int(s1, NULL, "generation"), APP_MODEL_META_BLOB, &tl1);
	if (!vt_bytes_equal(m0, l0, m1, l1) || !vt_bytes_equal(t0, tl0, t1, tl1))
		fail_msg("--train-every 7d one night later: the model was not carried byte for byte");
	frauds0 = vt_sum_int(s1, "model", "frauds");

	/* the control: the same night without the option trains another model */
	snprintf(d2, sizeof d2, "%s", fixture_copy());
	s2 = vt_rebuild(d2, day1, NULL);
	assert_true(vt_sum_trained(s2));
	assert_null(json_object_get(json_object_get(s2, "model"), "carried_from"));
	/* the carrying night kept only its fraud rows, but saw every one */
	assert_null(json_object_get(m, "read_again"));
	assert_true(vt_sum_int(s1, "model", "rows_seen") > 0);
	assert_int_equal(vt_sum_int(s1, "model", "rows_seen"), vt_sum_int(s2, "model", "rows_seen"));
	m2 = sum_model(d2, s2, &l2);
	assert_non_null(m2);
	if (vt_bytes_equal(m0, l0, m2, l2))
		fail_msg("one night later without --train-every: the same model (the check "
		    "cannot fail)");
	free(m2);

	/* a model as old as --train-every is retrained */
	s3 = vt_rebuild(fixture_copy(), day1, every1);
	assert_true(vt_sum_trained(s3));
	assert_null(json_object_get(json_object_get(s3, "model"), "carried_from"));

	/* young, but its window's frauds grew by a quarter: retrained. The
	 * fixture's replay archived no label after its last night, so the
	 * growth is made: fraud labels known at as-of for mature transactions
	 * labelled legitimate. */
	{
		vt_archive a;
		known *k;
		size_t need = (size_t)frauds0 / 4 + 1, *idx = calloc(need, sizeof *idx);
		store_archive *ar;

		assert_non_null(idx);
		vt_archive_load(fixture, INT64_MIN, INT64_MAX, &a);
		k = labels_known(&a, as_of);
		assert_int_equal(pick_mature(&a, k, false, need, true, idx), need);
		snprintf(d2, sizeof d2, "%s", fixture_copy());
		ar = archive_open(d2);
		for (size_t i = 0; i < need; i++)
			append_label(ar, a.recs[idx[i]].txn_id, true, as_of, as_of);
		store_archive_close(ar);
		s4 = vt_rebuild(d2, day1, every30);
		assert_true(vt_sum_trained(s4));
		assert_null(json_object_get(json_object_get(s4, "model"), "carried_from"));
		assert_true((double)vt_sum_int(s4, "model", "frauds") >= 1.25 * (double)frauds0);
		/* That night's first read kept the fraud rows only (a model to
		 * carry) and read again with every row: the model is the one
		 * of the same night without --train-every, byte for byte, in
		 * the same generation number. */
		d3 = fixture_copy();
		ar = archive_open(d3);
		for (size_t i = 0; i < need; i++)
			append_label(ar, a.recs[idx[i]].txn_id, true, as_of, as_of);
		store_archive_close(ar);
		s5 = vt_rebuild(d3, day1, NULL);
		assert_true(json_is_true(json_object_get(json_object_get(s4, "model"),
		    "read_again")));
		assert_null(json_object_get(json_object_get(s5, "model"), "read_again"));
		assert_int_equal(vt_sum_int(s5, NULL, "generation"),
		    vt_sum_int(s4, NULL, "generation"));
		assert_int_equal(vt_sum_int(s5, "model", "rows_seen"),
		    vt_sum_int(s4, "model", "rows_seen"));
		m4 = sum_model(d2, s4, &l4);
		m5 = sum_model(d3, s5, &l5);
		assert_non_null(m4);
		if (!vt_bytes_equal(m4, l4, m5, l5))
			fail_msg("retrained after the frauds grew: model.json differs from the same "
			    "night's without --train-every (%zu and %zu bytes)", l4, l5);
		free(m4);
		free(m5);
		json_decref(s5);
		free(idx);
		free(k);
		vt_archive_free(&a);
	}

	free(m0);
	free(t0);
	free(m1);
	free(t1);
	json_decref(s1);
	json_decref(s2);
	json_decref(s3);
	json_decref(s4);
}

/*
 * A night that cannot train (docs/model.md, "No model is made": here a
 * two-day training window, too few frauds) keeps the current model: the
 * new generation's model.json and model.meta are the fixture's byte for
 * byte, the exit status is 0, and both summaries say it was not trained,
 * why, and which model was carried over (JSON: "trained": true, the
 * generation has a model, with "why_not", "carried_from" and
 * "trained_as_of"; text: "not trained: WHY; the current model, trained as
 * of DATE, carried over from generation N"). The same night with
 * --no-model has none; and with no model to carry (the current generation
 * made with --no-model) it has none either, as before the first model.
 */
static void
test_cannot_train_keeps_model(void **state)
{
	const char *const short_window[] = { "--train-window", "2d", NULL };
	const char *const no_model[] = { "--no-model", NULL };
	uint64_t cur = vt_gen_current(fixture);
	void *m0, *t0, *m1, *t1;
	size_t l0 = 0, tl0 = 0, l1 = 0, tl1 = 0, len = 0;
	json_t *s, *m;
	char day1[16], want[400];
	const char *d, *why;
	char *out = NULL;

	(void)state;
	m0 = vt_gen_blob(fixture, cur, APP_MODEL_BLOB, &l0);
	t0 = vt_gen_blob(fixture, cur, APP_MODEL_META_BLOB, &tl0);
	assert_non_null(m0);
	assert_non_null(t0);
	day_after(1, day1, sizeof day1);

	d = fixture_copy();
	s = vt_rebuild(d, day1, short_window);
	m = json_object_get(s, "model");
	assert_true(vt_sum_trained(s));
	why = json_string_value(json_object_get(m, "why_not"));
	if (why == NULL || strstr(why, "fewer than min_frauds 50") == NULL)
		fail_msg("why_not: \"%s\"", why != NULL ? why : "(none)");
	assert_int_equal(vt_sum_int(s, "model", "carried_from"), cur);
	assert_string_equal(json_string_value(json_object_get(m, "trained_as_of")), as_of_day);
	m1 = sum_model(d, s, &l1);
	t1 = vt_gen_blob(d, vt_sum_int(s, NULL, "generation"), APP_MODEL_META_BLOB, &tl1);
	if (!vt_bytes_equal(m0, l0, m1, l1) || !vt_bytes_equal(t0, tl0, t1, tl1))
		fail_msg("a night that cannot train: the current model was not carried byte for "
		    "byte");
	/* The text summary, from the same night again (exit status 0): the
	 * model is the one carried just now, still trained as of A. */
	snprintf(want, sizeof want, "  model      not trained: %s; the current model, trained "
	    "as of %s, carried over from generation %llu: ", why, as_of_day,
	    (unsigned long long)vt_sum_int(s, NULL, "generation"));
	json_decref(s);
	{
		const char *argv[] = { "batch/vigil-rebuild", "--data", d, "--as-of", day1,
			"--force", "--threads", "1", "--train-window", "2d", NULL };

		assert_int_equal(vt_run(argv, &out), 0);
		assert_non_null(out);
		if (strstr(out, want) == NULL)
			fail_msg("text summary: no line \"%s...\" in:\n%s", want, out);
		free(out);
	}

	/* --no-model still means no model. */
	s = vt_rebuild(d, day1, no_model);
	assert_false(vt_sum_trained(s));
	assert_null(json_object_get(json_object_get(s, "model"), "carried_from"));
	assert_string_equal(json_string_value(json_object_get(json_object_get(s, "model"),
	    "why_not")), "turned off (--no-model)");
	assert_null(sum_model(d, s, &len));
	json_decref(s);

	/* No model to carry (the current generation has none): none. */
	s = vt_rebuild(d, day1, short_window);
	assert_false(vt_sum_trained(s));
	assert_null(json_object_get(json_object_get(s, "model"), "carried_from"));
	why = json_string_value(json_object_get(json_object_get(s, "model"), "why_not"));
	if (why == NULL || strstr(why, "fewer than min_frauds 50") == NULL)
		fail_msg("cold start: why_not: \"%s\"", why != NULL ? why : "(none)");
	assert_null(sum_model(d, s, &len));
	assert_null(vt_gen_blob(d, vt_sum_int(s, NULL, "generation"), APP_MODEL_META_BLOB, &len));
	json_decref(s);

	free(m0);
	free(t0);
	free(m1);
	free(t1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_determinism),
		cmocka_unit_test(test_leakage_future_labels),
		cmocka_unit_test(test_leakage_label_order),
		cmocka_unit_test(test_cold_start),
		cmocka_unit_test(test_train_every),
		cmocka_unit_test(test_cannot_train_keeps_model),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
