/* SPDX-License-Identifier: MIT */
/*
 * tests/batch/test_batch_train.c - the nightly model's training (batch/
 * train.c, trainset.c, calib.c) on synthetic rows: AUC and average
 * precision on hand-computed cases, the sampling cap and its weights,
 * byte-identical models whatever the order rows arrive in or the
 * partitions they are merged from, cold start, the time-ordered split, the
 * set's codec (round trip, damage refused at its offset), and a planted
 * signal that the model must find (checked through XGBoost's own
 * prediction of the saved JSON).
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <xgboost/c_api.h>
#include <xxhash.h>

#include "rebuild.h"
#include "train.h"

/* cmocka 1.1 has no assert_double_equal. */
#define assert_near(a, b, eps) assert_true(fabs((double)(a) - (double)(b)) <= (eps))

#define DAY VIGIL_MS_PER_DAY
#define T0  (20454LL * DAY) /* 2026-01-01 00:00 UTC */
#define NF  6

static const char *const names[NF] = { "amount", "card.count_1h", "f2", "f3", "f4", "f5" };

typedef struct row {
	float    x[NF];
	bool     fraud;
	int64_t  t;
	uint64_t key;
} row;

static uint64_t
rng_next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static float
unif(uint64_t *s)
{
	return (float)(rng_next(s) >> 40) / (float)(1 << 24);
}

/*
 * n rows over `days` days from T0. Fraud depends on features 0 and 1 only:
 * x0 + x1 > 1.6 is fraud 80% of the time, anything else 1% (about 7% in
 * all); feature 5 is missing one time in ten.
 */
static row *
gen_rows(size_t n, uint32_t days, uint64_t seed)
{
	row     *r = calloc(n, sizeof *r);
	uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1;

	assert_non_null(r);
	for (size_t i = 0; i < n; i++) {
		for (int j = 0; j < NF; j++)
			r[i].x[j] = unif(&s);
		if (unif(&s) < 0.1f)
			r[i].x[5] = NAN;
		r[i].fraud = r[i].x[0] + r[i].x[1] > 1.6f ? unif(&s) < 0.8f : unif(&s) < 0.01f;
		r[i].t = T0 + (int64_t)(i % days) * DAY + (int64_t)(rng_next(&s) % DAY);
		r[i].key = rng_next(&s);
	}
	return r;
}

static batch_trainset *
new_set(uint64_t max_rows)
{
	batch_train_opts o;
	batch_trainset  *s = NULL;
	store_diag       d;

	batch_train_opts_default(&o);
	o.max_rows = max_rows;
	assert_int_equal(batch_trainset_new(NF, names, &o, &s, &d), VIGIL_OK);
	return s;
}

/* Adds r[0..n) forwards (order > 0) or backwards. */
static void
add_rows(batch_trainset *s, const row *r, size_t n, int order)
{
	for (size_t k = 0; k < n; k++) {
		size_t i = order > 0 ? k : n - 1 - k;

		assert_int_equal(batch_trainset_add(s, r[i].x, r[i].fraud, r[i].t, r[i].key),
		    VIGIL_OK);
	}
}

static void
small_opts(batch_train_opts *o)
{
	batch_train_opts_default(o);
	o->threads = 2;
	o->max_rounds = 40;
	o->early_stop = 10;
	o->max_depth = 4;
	o->eta = 0.3;
}

/* ---- Metrics ---- */

static void
test_auc_ap_simple(void **state)
{
	static const float s[] = { 0.9f, 0.8f, 0.7f, 0.6f };
	static const float l[] = { 1, 0, 1, 0 };

	(void)state;
	/* Positives beat 2 and 1 of the 2 negatives: 3/4. AP: 1 * 1/2 + 2/3 * 1/2. */
	assert_near(batch_metric_auc(s, l, NULL, 4), 0.75, 1e-12);
	assert_near(batch_metric_ap(s, l, NULL, 4), 0.5 + 1.0 / 3.0, 1e-12);
	/* Order of the input does not matter. */
	static const float s2[] = { 0.6f, 0.7f, 0.9f, 0.8f };
	static const float l2[] = { 0, 1, 1, 0 };
	assert_near(batch_metric_auc(s2, l2, NULL, 4), 0.75, 1e-12);
	assert_near(batch_metric_ap(s2, l2, NULL, 4), 0.5 + 1.0 / 3.0, 1e-12);
}

static void
test_auc_ap_ties(void **state)
{
	static const float s[] = { 0.5f, 0.5f, 0.5f, 0.1f };
	static const float l[] = { 1, 0, 0, 1 };

	(void)state;
	/* The tied positive counts half against each tied negative: (0.5 + 0.5
	 * + 0 + 0) / 4. AP: the tied group is one step (precision 1/3, recall
	 * 1/2), then 2/4 at recall 1: 1/6 + 1/4. */
	assert_near(batch_metric_auc(s, l, NULL, 4), 0.25, 1e-12);
	assert_near(batch_metric_ap(s, l, NULL, 4), 1.0 / 6.0 + 0.25, 1e-12);
	/* All tied: AUC 1/2, AP the positive share. */
	static const float st[] = { 1, 1, 1, 1 };
	assert_near(batch_metric_auc(st, l, NULL, 4), 0.5, 1e-12);
	assert_near(batch_metric_ap(st, l, NULL, 4), 0.5, 1e-12);
	/* NaN scores rank lowest: like a score below every other. */
	static const float sn[] = { 0.5f, 0.5f, 0.5f, NAN };
	assert_near(batch_metric_auc(sn, l, NULL, 4), 0.25, 1e-12);
}

static void
test_auc_ap_weights(void **state)
{
	static const float s[] = { 0.9f, 0.8f, 0.7f };
	static const float l[] = { 1, 0, 1 };
	static const float w[] = { 1, 3, 2 };
	/* The same with each row repeated weight times. */
	static const float rs[] = { 0.9f, 0.8f, 0.8f, 0.8f, 0.7f, 0.7f };
	static const float rl[] = { 1, 0, 0, 0, 1, 1 };

	(void)state;
	/* Positive weight 1 beats negative weight 3; weight 2 beats nothing:
	 * 3 / (3 * 3). AP: 1 * 1/3 + (3/6) * 2/3. */
	assert_near(batch_metric_auc(s, l, w, 3), 1.0 / 3.0, 1e-12);
	assert_near(batch_metric_ap(s, l, w, 3), 2.0 / 3.0, 1e-12);
	assert_near(batch_metric_auc(rs, rl, NULL, 6), 1.0 / 3.0, 1e-12);
	assert_near(batch_metric_ap(rs, rl, NULL, 6), 2.0 / 3.0, 1e-12);
}

static void
test_auc_ap_degenerate(void **state)
{
	static const float s[] = { 0.3f, 0.2f };
	static const float pos[] = { 1, 1 }, neg[] = { 0, 0 };

	(void)state;
	assert_true(isnan(batch_metric_auc(s, pos, NULL, 2)));
	assert_true(isnan(batch_metric_auc(s, neg, NULL, 2)));
	assert_near(batch_metric_ap(s, pos, NULL, 2), 1.0, 1e-12);
	assert_true(isnan(batch_metric_ap(s, neg, NULL, 2)));
	assert_true(isnan(batch_metric_auc(s, pos, NULL, 0)));
}

/* ---- The set ---- */

static void
test_set_rejects_bad_names(void **state)
{
	static const char *const dup[] = { "a", "b", "a" };
	static const char *const empty[] = { "a", "" };
	batch_train_opts o;
	batch_trainset  *s = NULL;
	store_diag       d;

	(void)state;
	batch_train_opts_default(&o);
	assert_int_equal(batch_trainset_new(3, dup, &o, &s, &d), VIGIL_EINVAL);
	assert_null(s);
	assert_string_equal(d.msg, "training set: feature 2: \"a\" is also feature 0");
	assert_int_equal(batch_trainset_new(2, empty, &o, &s, &d), VIGIL_EINVAL);
	assert_string_equal(d.msg, "training set: feature 1: name of 0 bytes (1 to 128)");
	assert_int_equal(batch_trainset_new(0, dup, &o, &s, &d), VIGIL_EINVAL);
	assert_string_equal(d.msg, "training set: 0 features (1 to 1024)");
	o.max_rows = 1;
	assert_int_equal(batch_trainset_new(2, dup, &o, &s, &d), VIGIL_EINVAL);
	assert_string_equal(d.msg, "training set: max_rows 1 (2 to 50000000)");
	assert_null(s);
}

static void
test_set_sampling_cap(void **state)
{
	enum { MAX = 1000, LEGIT = 3 * MAX, FRAUD = 60 };
	row *r = calloc(LEGIT + FRAUD, sizeof *r);
	batch_trainset *a = new_set(MAX), *b = new_set(MAX), *c = new_set(MAX);
	batch_trainset_stats sa, sb, sc;
	uint64_t rs = 7;

	(void)state;
	assert_non_null(r);
	for (size_t i = 0; i < LEGIT + FRAUD; i++) {
		r[i].x[0] = (float)i;
		r[i].fraud = i >= LEGIT;
		/* Five days of unequal traffic: 1/15, 2/15 ... 5/15 of the rows. */
		r[i].t = T0 + (int64_t)(i % 15 < 1 ? 0 : i % 15 < 3 ? 1 : i % 15 < 6 ? 2 :
		    i % 15 < 10 ? 3 : 4) * DAY + 1000;
		r[i].key = rng_next(&rs);
	}
	/* a: legitimate first, frauds last (each evicts one); b: backwards,
	 * frauds first; c: two halves merged. */
	add_rows(a, r, LEGIT + FRAUD, 1);
	add_rows(b, r, LEGIT + FRAUD, -1);
	{
		batch_trainset *c2 = new_set(MAX);
		store_diag d;

		for (size_t i = 0; i < LEGIT + FRAUD; i++)
			assert_int_equal(batch_trainset_add(i % 2 ? c : c2, r[i].x, r[i].fraud,
			    r[i].t, r[i].key), VIGIL_OK);
		assert_int_equal(batch_trainset_merge(c, c2, &d), VIGIL_OK);
		batch_trainset_free(c2);
	}
	batch_trainset_stats_get(a, &sa);
	batch_trainset_stats_get(b, &sb);
	batch_trainset_stats_get(c, &sc);
	assert_int_equal(sa.rows, MAX);
	assert_int_equal(sa.frauds, FRAUD);
	assert_int_equal(sa.legit_kept, MAX - FRAUD);
	assert_int_equal(sa.legit_seen, LEGIT);
	assert_int_equal(sa.days, 5);
	/* Every day kept some rows, so its weights sum to its count. */
	assert_near(sa.legit_weight, LEGIT, 1e-6);
	/* The same rows kept whatever the order (the weights are summed in
	 * slot order, which does depend on it). */
	assert_near(sb.legit_weight, LEGIT, 1e-6);
	assert_near(sc.legit_weight, LEGIT, 1e-6);
	sa.legit_weight = sb.legit_weight = sc.legit_weight = 0;
	assert_memory_equal(&sa, &sb, sizeof sa);
	assert_memory_equal(&sa, &sc, sizeof sa);

	/* Every fraud is kept: one more than max_rows does not fit. */
	{
		batch_trainset *f = new_set(10);
		batch_trainset_stats sf;

		for (int i = 0; i < 10; i++)
			assert_int_equal(batch_trainset_add(f, r[i].x, true, T0, (uint64_t)i),
			    VIGIL_OK);
		assert_int_equal(batch_trainset_add(f, r[0].x, false, T0, 99), VIGIL_OK);
		assert_int_equal(batch_trainset_add(f, r[0].x, true, T0 + DAY, 99), VIGIL_ETOOBIG);
		batch_trainset_stats_get(f, &sf);
		assert_int_equal(sf.rows, 10);
		assert_int_equal(sf.frauds, 10);
		assert_int_equal(sf.legit_seen, 1);
		assert_int_equal(sf.days, 1); /* the failed add counted nothing */
		batch_trainset_free(f);
	}
	batch_trainset_free(a);
	batch_trainset_free(b);
	batch_trainset_free(c);
	free(r);
}

static void
test_set_merge_mismatch(void **state)
{
	static const char *const other[NF] = { "amount", "card.count_1h", "f2", "f3", "x", "f5" };
	batch_train_opts o;
	batch_trainset  *a = new_set(100), *b = NULL, *c = new_set(200);
	store_diag       d;

	(void)state;
	batch_train_opts_default(&o);
	o.max_rows = 100;
	assert_int_equal(batch_trainset_new(NF, other, &o, &b, &d), VIGIL_OK);
	assert_int_equal(batch_trainset_merge(a, b, &d), VIGIL_EINVAL);
	assert_string_equal(d.msg, "training set merge: feature 4 is \"f4\" and \"x\"");
	assert_int_equal(batch_trainset_merge(a, c, &d), VIGIL_EINVAL);
	assert_string_equal(d.msg, "training set merge: max_rows 100 and 200");
	batch_trainset_free(a);
	batch_trainset_free(b);
	batch_trainset_free(c);
}

/* ---- Training ---- */

/* noinline: inlined, GCC 12 at -O3 without LTO takes the model it returns
 * for a pointer to its local json and fails -Werror (-Wdangling-pointer). */
__attribute__((noinline)) static char *
train(batch_trainset *s, const batch_train_opts *o, size_t *ret_len, batch_model_report *rep)
{
	char      *json = NULL;
	store_diag d;
	vigil_err  rv;

	d.msg[0] = '\0';
	rv = batch_train_run(s, o, &json, ret_len, rep, &d);
	if (rv != VIGIL_OK)
		fail_msg("batch_train_run: %s: %s", vigil_strerror(rv), d.msg);
	return json;
}

static void
test_train_deterministic(void **state)
{
	enum { N = 8000, MAX = 6000 }; /* sampling at work: ~7400 legitimate rows */
	row *r = gen_rows(N, 8, 1);
	batch_trainset *a = new_set(MAX), *b = new_set(MAX), *c = new_set(MAX), *c2 = new_set(MAX);
	batch_model_report ra, rb, rc;
	batch_train_opts o;
	store_diag d;
	size_t la, lb, lc;
	char *ja, *jb, *jc, *ja2;

	(void)state;
	small_opts(&o);
	add_rows(a, r, N, 1);
	add_rows(b, r, N, -1);
	/* Two partitions by key, merged. */
	for (size_t i = 0; i < N; i++)
		assert_int_equal(batch_trainset_add(r[i].key % 2 ? c : c2, r[i].x, r[i].fraud,
		    r[i].t, r[i].key), VIGIL_OK);
	assert_int_equal(batch_trainset_merge(c2, c, &d), VIGIL_OK);

	ja = train(a, &o, &la, &ra);
	jb = train(b, &o, &lb, &rb);
	jc = train(c2, &o, &lc, &rc);
	assert_true(ra.trained);
	assert_int_equal(ra.rows, MAX);
	assert_non_null(ja);
	assert_int_equal(la, lb);
	assert_int_equal(la, lc);
	assert_memory_equal(ja, jb, la);
	assert_memory_equal(ja, jc, la);
	assert_int_equal(ra.best_round, rb.best_round);
	assert_int_equal(ra.best_round, rc.best_round);
	assert_true(ra.valid_auc == rc.valid_auc);
	/* Training the same set again gives the same bytes. */
	ja2 = train(a, &o, &la, &ra);
	assert_int_equal(la, lb);
	assert_memory_equal(ja2, jb, la);
	/* The best round only: rounds beyond it were boosted, not kept. */
	assert_true(ra.best_round <= ra.rounds);
	free(ja2);
	/* One thread or two: the same bytes with libxgboost 1.7.4 (measured
	 * up to 8 threads in docs/model.md; not promised by XGBoost, so this
	 * says when an upgrade changes it). */
	o.threads = 1;
	ja2 = train(a, &o, &la, &ra);
	assert_int_equal(la, lb);
	assert_memory_equal(ja2, jb, la);
	free(ja);
	free(ja2);
	free(jb);
	free(jc);
	batch_trainset_free(a);
	batch_trainset_free(b);
	batch_trainset_free(c);
	batch_trainset_free(c2);
	free(r);
}

/*
 * The model's bytes are pinned: a fixed set trained with the nightly
 * settings (batch/nightmodel.c: eta 0.2, lambda 10, at most 200 rounds,
 * early stop after 20; sampled rows, balanced bins, refit), stopping on
 * logloss and on AP, must give the JSON whose xxh64 was measured before
 * the training's speed-ups (metrics evaluated only when read). A change
 * meant to be a pure speed-up must keep these; a change of the model's
 * knobs changes them, and then needs its detection figures (docs/model.md).
 * Measured with libxgboost 1.7.4 (Debian 12): an upgrade may change them.
 */
static void
test_train_model_pinned(void **state)
{
	enum { N = 20000, MAX = 12000 };
	static const struct {
		batch_train_stop stop;
		uint64_t         h;
	} want[] = {
		{ BATCH_TRAIN_STOP_LOGLOSS, 0x11913872857a7e0dull },
		{ BATCH_TRAIN_STOP_AP, 0x9e8cf27e234526f1ull },
	};
	row *r = gen_rows(N, 14, 5);
	batch_model_report rep;
	batch_train_opts o;

	(void)state;
	for (size_t k = 0; k < sizeof want / sizeof want[0]; k++) {
		batch_trainset *s = new_set(MAX);
		size_t len;
		char  *json;

		add_rows(s, r, N, 1);
		batch_train_opts_default(&o);
		o.threads = 2;
		o.max_rows = MAX;
		o.eta = 0.2;
		o.reg_lambda = 10;
		o.max_rounds = 200;
		o.early_stop = 20;
		o.stop_metric = want[k].stop;
		json = train(s, &o, &len, &rep);
		assert_true(rep.trained);
		assert_true(rep.refit);
		print_message("stop %d: %zu bytes, rounds %u (best %u), xxh64 %016llx\n",
		    (int)want[k].stop, len, rep.rounds, rep.best_round,
		    (unsigned long long)XXH64(json, len, 0));
		assert_int_equal(XXH64(json, len, 0), want[k].h);
		free(json);
		batch_trainset_free(s);
	}
	free(r);
}

/* ---- The codec (batch_trainset_encode / batch_trainset_decode) ---- */

static uint8_t *
encode(const batch_trainset *s, size_t *ret_len)
{
	uint8_t   *b = NULL;
	store_diag d;

	if (batch_trainset_encode(s, &b, ret_len, &d) != VIGIL_OK)
		fail_msg("encode: %s", d.msg);
	return b;
}

/*
 * A set (sampled: more legitimate rows than room) encodes to the same
 * bytes whatever order its rows came in; decoded, it encodes to them
 * again, trains the same model byte for byte, and merges like the set
 * itself; an empty set round-trips too.
 */
static void
test_codec_round_trip(void **state)
{
	enum { N = 6000, MAX = 3000 };
	row *r = gen_rows(N, 8, 5);
	batch_trainset *a = new_set(MAX), *b = new_set(MAX), *dec = NULL, *half = new_set(MAX),
	    *rest = new_set(MAX), *e = new_set(MAX), *dh = NULL, *dr = NULL;
	batch_trainset_stats sa, sd;
	batch_model_report ra, rd;
	batch_train_opts o;
	store_diag d;
	uint8_t *ba, *bb, *bd, *bh, *br;
	size_t la, lb, ld, lh, lr, lja, ljd;
	char *ja, *jd;

	(void)state;
	small_opts(&o);
	add_rows(a, r, N, 1);
	add_rows(b, r, N, -1);
	ba = encode(a, &la);
	bb = encode(b, &lb);
	assert_int_equal(la, lb);
	assert_memory_equal(ba, bb, la);
	assert_int_equal(batch_trainset_decode(ba, la, &dec, NULL, &d), VIGIL_OK);
	bd = encode(dec, &ld);
	assert_int_equal(la, ld);
	assert_memory_equal(ba, bd, la);
	batch_trainset_stats_get(a, &sa);
	batch_trainset_stats_get(dec, &sd);
	assert_int_equal(sd.rows, MAX);
	assert_int_equal(sa.rows, sd.rows);
	assert_int_equal(sa.frauds, sd.frauds);
	assert_int_equal(sa.legit_seen, sd.legit_seen);
	assert_int_equal(sa.legit_kept, sd.legit_kept);
	assert_int_equal(sa.days, sd.days);
	/* summed in slot order, which the codec does not keep */
	assert_near(sa.legit_weight, sd.legit_weight, 1e-9 * sa.legit_weight);
	ja = train(a, &o, &lja, &ra);
	jd = train(dec, &o, &ljd, &rd);
	assert_true(ra.trained);
	assert_int_equal(lja, ljd);
	assert_memory_equal(ja, jd, lja);

	/* Two halves by key, each through the codec, merged: the whole. */
	for (size_t i = 0; i < N; i++)
		assert_int_equal(batch_trainset_add(r[i].key % 3 ? half : rest, r[i].x, r[i].fraud,
		    r[i].t, r[i].key), VIGIL_OK);
	bh = encode(half, &lh);
	br = encode(rest, &lr);
	assert_int_equal(batch_trainset_decode(bh, lh, &dh, NULL, &d), VIGIL_OK);
	assert_int_equal(batch_trainset_decode(br, lr, &dr, NULL, &d), VIGIL_OK);
	assert_int_equal(batch_trainset_merge(dh, dr, &d), VIGIL_OK);
	free(bd);
	bd = encode(dh, &ld);
	assert_int_equal(la, ld);
	assert_memory_equal(ba, bd, la);

	/* Empty. */
	free(bh);
	bh = encode(e, &lh);
	batch_trainset_free(dh);
	dh = NULL;
	assert_int_equal(batch_trainset_decode(bh, lh, &dh, NULL, &d), VIGIL_OK);
	batch_trainset_stats_get(dh, &sd);
	assert_int_equal(sd.rows, 0);
	assert_int_equal(sd.days, 0);

	free(ba);
	free(bb);
	free(bd);
	free(bh);
	free(br);
	free(ja);
	free(jd);
	batch_trainset_free(a);
	batch_trainset_free(b);
	batch_trainset_free(dec);
	batch_trainset_free(half);
	batch_trainset_free(rest);
	batch_trainset_free(e);
	batch_trainset_free(dh);
	batch_trainset_free(dr);
	free(r);
}

static void
put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* Expects decode(b[0..len)) to fail with rv at offset off, its message
 * starting with want. */
static void
expect_refused(const uint8_t *b, size_t len, vigil_err rv, uint64_t off, const char *want)
{
	batch_trainset *s = NULL;
	store_diag d;
	uint64_t at = UINT64_MAX;
	vigil_err got = batch_trainset_decode(b, len, &s, &at, &d);

	if (got != rv || at != off || strncmp(d.msg, want, strlen(want)) != 0)
		fail_msg("got %s at %llu: \"%s\"; want %s at %llu: \"%s...\"", vigil_strerror(got),
		    (unsigned long long)at, d.msg, vigil_strerror(rv), (unsigned long long)off, want);
	assert_null(s);
}

/*
 * Damaged input is refused with the offset of the field at fault: every
 * truncation, trailing bytes, an unknown version, counts over the caps or
 * over the bytes left, and broken invariants (a fraud missing from its
 * day, a row on no day, a legitimate row dropped below max_rows).
 */
static void
test_codec_refuses_damage(void **state)
{
	enum { N = 200 };
	row *r = gen_rows(N, 4, 9);
	batch_trainset *s = new_set(1000);
	static uint8_t c[16384]; /* the damaged copy */
	uint8_t *b;
	size_t len, names_len = 0, days_at, rows_at, rb = 8 + 8 + 1 + 4 * NF;
	uint32_t ndays;

	(void)state;
	add_rows(s, r, N, 1);
	b = encode(s, &len);
	assert_true(len < sizeof c);
	for (int j = 0; j < NF; j++)
		names_len += 1 + strlen(names[j]);
	days_at = 16 + names_len + 4;
	ndays = (uint32_t)b[days_at - 4];
	assert_int_equal(ndays, 4);
	rows_at = days_at + 24 * ndays + 8;
	assert_int_equal(len, rows_at + N * rb);

	/* Every truncation. */
	for (size_t n = 0; n < len; n++) {
		batch_trainset *t = NULL;
		uint64_t at = UINT64_MAX;

		assert_int_equal(batch_trainset_decode(b, n, &t, &at, NULL), VIGIL_ECORRUPT);
		assert_true(at <= n);
		assert_null(t);
	}
	expect_refused(b, 15, VIGIL_ECORRUPT, 0, "training set: truncated in the header");
	memcpy(c, b, len);
	c[len] = 0;
	expect_refused(c, len + 1, VIGIL_ECORRUPT, len, "training set: 1 bytes after the last row");
	put_le32(c, 2);
	expect_refused(c, len, VIGIL_EVERSION, 0, "training set: version 2 (this build reads 1)");
	memcpy(c, b, len);
	put_le32(c + 4, 1025);
	expect_refused(c, len, VIGIL_ECORRUPT, 4, "training set: 1025 features (1 to 1024)");
	memcpy(c, b, len);
	memset(c + 8, 0xff, 8);
	expect_refused(c, len, VIGIL_ECORRUPT, 8, "training set: max_rows 18446744073709551615");
	/* Feature 3 named like feature 2 ("f3" -> "f2"). */
	memcpy(c, b, len);
	c[16 + names_len - 3 * (1 + 2) + 2] = '2'; /* "f3", "f4", "f5" end the names */
	expect_refused(c, len, VIGIL_ECORRUPT, 16,
	    "training set: feature 3: \"f2\" is also feature 2");
	/* A control byte in a name (a message quoting it stays one line). */
	memcpy(c, b, len);
	c[16 + 1 + 2] = '\n';
	expect_refused(c, len, VIGIL_ECORRUPT, 16 + 1 + 2,
	    "training set: feature 0: name holds the control byte 0x0a");
	/* A name of 0 bytes. */
	memcpy(c, b, len);
	c[16] = 0;
	expect_refused(c, len, VIGIL_ECORRUPT, 16, "training set: feature 0: name of 0 bytes");
	memcpy(c, b, len);
	put_le32(c + days_at - 4, 4097);
	expect_refused(c, len, VIGIL_ECORRUPT, days_at - 4, "training set: 4097 days (at most 4096)");
	/* Day 1 before day 0. */
	memcpy(c, b, len);
	memcpy(c + days_at + 24, c + days_at, 8);
	expect_refused(c, len, VIGIL_ECORRUPT, days_at + 24, "training set: day 1: ");
	/* More rows than bytes left. */
	memcpy(c, b, len);
	c[rows_at - 8] = N + 1;
	expect_refused(c, len, VIGIL_ECORRUPT, rows_at - 8, "training set: 201 rows of 41 bytes");
	/* A label byte out of range. */
	memcpy(c, b, len);
	c[rows_at + 16] = 2;
	expect_refused(c, len, VIGIL_ECORRUPT, rows_at + 16, "training set: row 0: label byte 2");
	/* The first row a century later: on none of the days. */
	memcpy(c, b, len);
	c[rows_at + 6] ^= 0x10;
	expect_refused(c, len, VIGIL_ECORRUPT, rows_at, "training set: row 0: time ");
	/* A row's label flipped: its day's frauds no longer add up. */
	memcpy(c, b, len);
	c[rows_at + 16] ^= 1;
	expect_refused(c, len, VIGIL_ECORRUPT, days_at, "training set: day 0: ");
	/* One legitimate row fewer on day 0 than counted, below max_rows. */
	memcpy(c, b, len);
	c[days_at + 8]++;
	expect_refused(c, len, VIGIL_ECORRUPT, days_at, "training set: day 0: ");
	free(b);
	batch_trainset_free(s);
	free(r);
}

static void
test_train_cold_start(void **state)
{
	batch_trainset *s = new_set(100000), *one = new_set(100000), *late = new_set(100000);
	batch_model_report rep;
	batch_train_opts o;
	float x[NF] = { 0 };
	char *json = (char *)"untouched";
	size_t len = 7;
	store_diag d;

	(void)state;
	small_opts(&o);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(batch_trainset_add(s, x, i < 30, T0 + (i % 10) * DAY,
		    (uint64_t)i), VIGIL_OK);
	assert_int_equal(batch_train_run(s, &o, &json, &len, &rep, &d), VIGIL_OK);
	assert_false(rep.trained);
	assert_null(json);
	assert_int_equal(len, 0);
	assert_int_equal(rep.frauds, 30);
	assert_string_equal(rep.why_not, "30 frauds in the window, fewer than min_frauds 50");

	/* Enough frauds, but one day: nothing to validate on. */
	for (int i = 0; i < 1000; i++)
		assert_int_equal(batch_trainset_add(one, x, i < 100, T0 + i, (uint64_t)i),
		    VIGIL_OK);
	assert_int_equal(batch_train_run(one, &o, &json, &len, &rep, &d), VIGIL_OK);
	assert_false(rep.trained);
	assert_string_equal(rep.why_not, "rows on one day only: nothing to validate on");

	/* Frauds only in the first days: none to validate on. */
	for (int i = 0; i < 1000; i++)
		assert_int_equal(batch_trainset_add(late, x, i % 4 == 0 && i % 8 < 6,
		    T0 + (i % 8) * DAY, (uint64_t)i), VIGIL_OK);
	assert_int_equal(batch_train_run(late, &o, &json, &len, &rep, &d), VIGIL_OK);
	assert_false(rep.trained);
	assert_string_equal(rep.why_not,
	    "no fraud row in the validation days 2026-01-07 to 2026-01-08");
	assert_null(json);

	/* Options are checked. */
	o.valid_share = 1.0;
	assert_int_equal(batch_train_run(s, &o, &json, &len, &rep, &d), VIGIL_EINVAL);
	assert_string_equal(d.msg, "training: valid_share 1 (between 0 and 1)");
	o.valid_share = 0.25;
	o.reg_lambda = -1;
	assert_int_equal(batch_train_run(s, &o, &json, &len, &rep, &d), VIGIL_EINVAL);
	assert_string_equal(d.msg, "training: reg_lambda -1");
	o.reg_lambda = NAN;
	assert_int_equal(batch_train_run(s, &o, &json, &len, &rep, &d), VIGIL_EINVAL);
	assert_string_equal(d.msg, "training: reg_lambda nan");
	batch_trainset_free(s);
	batch_trainset_free(one);
	batch_trainset_free(late);
}

static void
test_train_time_split(void **state)
{
	enum { N = 4000 };
	row *r = gen_rows(N, 8, 2);
	batch_trainset *s = new_set(N);
	batch_model_report rep;
	batch_train_opts o;
	size_t len, nvalid = 0;
	char *json;

	(void)state;
	small_opts(&o);
	add_rows(s, r, N, -1);
	for (size_t i = 0; i < N; i++)
		nvalid += r[i].t >= T0 + 6 * DAY;

	/* 8 days, a quarter validated: days 7 and 8. */
	json = train(s, &o, &len, &rep);
	assert_true(rep.trained);
	assert_int_equal(rep.split_ms, T0 + 6 * DAY);
	assert_true(rep.train_to_ms < rep.split_ms);
	assert_true(rep.valid_from_ms >= rep.split_ms);
	assert_true(rep.train_from_ms >= T0 && rep.valid_to_ms < T0 + 8 * DAY);
	assert_int_equal(rep.valid_rows, nvalid);
	assert_int_equal(rep.train_rows + rep.valid_rows, N);
	assert_int_equal(rep.train_frauds + rep.valid_frauds, rep.frauds);
	free(json);

	/* At least one day, and at least one left to train on. */
	o.valid_share = 0.01;
	json = train(s, &o, &len, &rep);
	assert_int_equal(rep.split_ms, T0 + 7 * DAY);
	free(json);
	o.valid_share = 0.99;
	json = train(s, &o, &len, &rep);
	assert_int_equal(rep.split_ms, T0 + 1 * DAY);
	assert_true(rep.train_to_ms < rep.split_ms);
	free(json);
	batch_trainset_free(s);
	free(r);
}

static void
test_train_learns_planted_signal(void **state)
{
	enum { N = 20000 };
	row *r = gen_rows(N, 10, 3);
	batch_trainset *s = new_set(N);
	batch_model_report rep;
	batch_train_opts o;
	BoosterHandle b = NULL;
	DMatrixHandle dm = NULL;
	const bst_ulong *shape;
	bst_ulong dim;
	const float *pred;
	float *vx, *vl;
	size_t len, nv = 0;
	char *json;

	(void)state;
	small_opts(&o);
	o.refit = false; /* the saved model is the validated one */
	add_rows(s, r, N, 1);
	json = train(s, &o, &len, &rep);
	assert_true(rep.trained);
	assert_false(rep.refit);
	assert_true(rep.valid_auc > 0.9);
	assert_true(rep.train_auc > 0.9);
	assert_true(rep.valid_ap > 0.5);
	assert_non_null(strstr(json, "\"feature_names\":[\"amount\",\"card.count_1h\",\"f2\","));
	assert_non_null(strstr(json, "\"objective\":{\"name\":\"binary:logistic\""));

	/* XGBoost's own prediction of the saved model on the validation days. */
	vx = malloc(N * NF * sizeof *vx);
	vl = malloc(N * sizeof *vl);
	assert_non_null(vx);
	assert_non_null(vl);
	for (size_t i = 0; i < N; i++) {
		if (r[i].t < rep.split_ms)
			continue;
		memcpy(&vx[nv * NF], r[i].x, sizeof r[i].x);
		vl[nv++] = r[i].fraud;
	}
	assert_int_equal(nv, rep.valid_rows);
	assert_int_equal(XGBoosterCreate(NULL, 0, &b), 0);
	assert_int_equal(XGBoosterLoadModelFromBuffer(b, json, len), 0);
	assert_int_equal(XGDMatrixCreateFromMat(vx, nv, NF, NAN, &dm), 0);
	assert_int_equal(XGBoosterPredictFromDMatrix(b, dm, "{\"type\": 0, \"training\": false, "
	    "\"iteration_begin\": 0, \"iteration_end\": 0, \"strict_shape\": false}",
	    &shape, &dim, &pred), 0);
	assert_int_equal(dim, 1);
	assert_int_equal(shape[0], nv);
	assert_true(batch_metric_auc(pred, vl, NULL, nv) > 0.9);
	/* Every row was kept (weight 1): the report's figure is this one. */
	assert_near(batch_metric_auc(pred, vl, NULL, nv), rep.valid_auc, 1e-9);
	XGDMatrixFree(dm);
	XGBoosterFree(b);
	free(vx);
	free(vl);
	free(json);
	batch_trainset_free(s);
	free(r);
}

/* The trees of an XGBoost JSON model: one "split_indices" array each. */
static int
json_trees(const char *json)
{
	int n = 0;

	for (const char *p = strstr(json, "\"split_indices\""); p != NULL;
	    p = strstr(p + 1, "\"split_indices\""))
		n++;
	return n;
}

/* o.refit: the saved model is trained again on every row for the rounds
 * early stopping chose, so it differs from the validated one (which the
 * report's validation figures still describe), holds the same number of
 * trees, and is as deterministic as the other. */
static void
test_train_refit_on_every_row(void **state)
{
	enum { N = 20000 };
	row *r = gen_rows(N, 10, 3);
	batch_trainset *s = new_set(N);
	batch_model_report ra, rb, rc;
	batch_train_opts o;
	size_t la, lb, lc;
	char *a, *b, *c;

	(void)state;
	small_opts(&o);
	add_rows(s, r, N, 1);
	o.refit = false;
	a = train(s, &o, &la, &ra);
	o.refit = true;
	b = train(s, &o, &lb, &rb);
	c = train(s, &o, &lc, &rc);
	assert_true(ra.trained && rb.trained);
	assert_false(ra.refit);
	assert_true(rb.refit);
	/* the same rounds chosen, the same validation figures reported */
	assert_int_equal(ra.best_round, rb.best_round);
	assert_true(ra.valid_auc == rb.valid_auc);
	assert_true(ra.valid_ap == rb.valid_ap);
	/* another model: the validation days were trained on */
	assert_false(la == lb && memcmp(a, b, la) == 0);
	assert_true(rb.base_score != ra.base_score);
	/* best_round trees */
	assert_int_equal(json_trees(b), (int)rb.best_round);
	/* byte-identical when trained again */
	assert_int_equal(lb, lc);
	assert_memory_equal(b, c, lb);
	free(a);
	free(b);
	free(c);
	batch_trainset_free(s);
	free(r);
}

/* min_rounds: early stopping neither stops nor chooses before it, and it
 * cannot exceed max_rounds. */
static void
test_train_min_rounds(void **state)
{
	enum { N = 20000 };
	row *r = gen_rows(N, 10, 3);
	batch_trainset *s = new_set(N);
	batch_model_report rep;
	batch_train_opts o;
	store_diag d;
	size_t len;
	char *json = NULL;

	(void)state;
	small_opts(&o);
	add_rows(s, r, N, 1);
	o.early_stop = 1;
	o.min_rounds = 25;
	json = train(s, &o, &len, &rep);
	assert_true(rep.trained);
	assert_true(rep.rounds >= 25);
	assert_true(rep.best_round >= 25);
	assert_int_equal(json_trees(json), (int)rep.best_round);
	free(json);
	json = NULL;
	o.min_rounds = o.max_rounds + 1;
	assert_int_equal(batch_train_run(s, &o, &json, &len, &rep, &d), VIGIL_EINVAL);
	assert_string_equal(d.msg, "training: min_rounds 41 above max_rounds 40");
	assert_null(json);
	batch_trainset_free(s);
	free(r);
}

/* The nightly options train every model for BATCH_NIGHTLY_ROUNDS rounds,
 * whatever its validation days say: the same rows with their validation
 * labels as the rest, then with them noise, give that many trees both
 * times (the options before them, early stopping with patience 20 and at
 * most 200 rounds, kept 20 on the first), so that two nights' models are
 * alike in confidence. */
static void
test_train_nightly_rounds(void **state)
{
	enum { N = 20000, DAYS = 10 };
	row *r = gen_rows(N, DAYS, 3);
	uint64_t rs = 7;
	batch_opts bo;
	batch_train_opts o;
	batch_model_report rep;

	(void)state;
	batch_opts_default(&bo);
	bo.threads = 1;
	batch_train_opts_nightly(&bo, &o);
	for (int noise = 0; noise < 2; noise++) {
		batch_trainset *s = new_set(N);
		size_t len;
		char *json;

		for (size_t i = 0; noise && i < N; i++)
			if (r[i].t >= T0 + 7 * DAY)
				r[i].fraud = unif(&rs) < 0.05f;
		add_rows(s, r, N, 1);
		json = train(s, &o, &len, &rep);
		print_message("validation labels %s: rounds %u, kept %u, validation AP %.4f\n",
		    noise ? "noise" : "as the rest", rep.rounds, rep.best_round, rep.valid_ap);
		assert_true(rep.trained);
		assert_int_equal(rep.split_ms, T0 + 7 * DAY);
		assert_int_equal(rep.best_round, BATCH_NIGHTLY_ROUNDS);
		assert_int_equal(json_trees(json), BATCH_NIGHTLY_ROUNDS);
		free(json);
		batch_trainset_free(s);
	}
	free(r);
}

/* ---- Calibration ---- */

static double
sigmoid(double m)
{
	return 1 / (1 + exp(-m));
}

/*
 * n scores p = sigmoid(z), z ~ uniform(-6, 2), with labels drawn with
 * probability sigmoid(a * z + b): the calibration that fits them is (a, b).
 * With keep_legit < 1, only that share of the legitimate rows is kept, each
 * weighing 1 / keep_legit (the sampling of the training set).
 */
static size_t
calib_rows(size_t n, double a, double b, double keep_legit, uint64_t seed, float *p, float *y,
    float *w)
{
	uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1;
	size_t   m = 0;

	for (size_t i = 0; i < n; i++) {
		double z = -6 + 8 * (double)unif(&s);
		bool   fraud = unif(&s) < sigmoid(a * z + b);

		if (!fraud && unif(&s) >= keep_legit)
			continue;
		p[m] = (float)sigmoid(z);
		y[m] = fraud;
		w[m] = fraud ? 1.0f : (float)(1 / keep_legit);
		m++;
	}
	return m;
}

/* Known a and b come back, with the legitimate rows sampled and weighted
 * as the training set does; the fit is deterministic. */
static void
test_calib_platt_recovers(void **state)
{
	enum { N = 400000 };
	static const double ab[][2] = { { 0.6, -1.5 }, { 1.0, 0.0 }, { 1.8, 2.0 } };
	float *p = malloc(N * sizeof *p), *y = malloc(N * sizeof *y), *w = malloc(N * sizeof *w);
	char why[160];

	(void)state;
	assert_non_null(p);
	assert_non_null(y);
	assert_non_null(w);
	for (size_t k = 0; k < sizeof ab / sizeof ab[0]; k++) {
		for (int sampled = 0; sampled < 2; sampled++) {
			size_t m = calib_rows(N, ab[k][0], ab[k][1], sampled ? 0.2 : 1.0, k + 1,
			    p, y, w);
			double a = NAN, b = NAN, a2 = NAN, b2 = NAN;

			assert_true(batch_calib_platt(p, y, w, m, NULL, &a, &b, why, sizeof why));
			print_message("a %.4f b %.4f (true %.1f %.1f, %s)\n", a, b, ab[k][0],
			    ab[k][1], sampled ? "legitimate rows sampled 1 in 5" : "every row");
			assert_near(a, ab[k][0], 0.05);
			assert_near(b, ab[k][1], 0.15);
			assert_true(batch_calib_platt(p, y, w, m, NULL, &a2, &b2, why, sizeof why));
			assert_true(a == a2 && b == b2);
		}
	}
	free(p);
	free(y);
	free(w);
}

/* A calibration that is not strictly increasing, or has nothing to fit,
 * is refused with the reason; the outputs stay untouched. */
static void
test_calib_platt_refuses(void **state)
{
	enum { N = 20000 };
	float *p = malloc(N * sizeof *p), *y = malloc(N * sizeof *y), *w = malloc(N * sizeof *w);
	double a = 7, b = 7;
	char why[160];
	size_t m;

	(void)state;
	assert_non_null(p);
	assert_non_null(y);
	assert_non_null(w);
	/* frauds where the score is low: a < 0 */
	m = calib_rows(N, -1.0, -2.0, 1.0, 9, p, y, w);
	assert_false(batch_calib_platt(p, y, w, m, NULL, &a, &b, why, sizeof why));
	assert_non_null(strstr(why, "is not positive"));
	assert_true(a == 7 && b == 7);
	/* every prediction the same */
	for (size_t i = 0; i < m; i++)
		p[i] = 0.25f;
	assert_false(batch_calib_platt(p, y, w, m, NULL, &a, &b, why, sizeof why));
	assert_non_null(strstr(why, "do not vary"));
	/* no fraud */
	for (size_t i = 0; i < m; i++)
		y[i] = 0;
	assert_false(batch_calib_platt(p, y, w, m, NULL, &a, &b, why, sizeof why));
	assert_string_equal(why, "no fraud weight in the validation rows");
	/* a perfectly separated set still fits (Platt's targets): a > 0, finite */
	for (size_t i = 0; i < m; i++) {
		y[i] = i % 10 == 0;
		p[i] = y[i] > 0 ? 0.9f : 0.01f + 0.001f * (float)(i % 7);
	}
	assert_true(batch_calib_platt(p, y, NULL, m, NULL, &a, &b, why, sizeof why));
	assert_true(a > 0 && isfinite(a) && isfinite(b));
	assert_true(a != 7);
	free(p);
	free(y);
	free(w);
}

/* The trained model carries a calibration fitted on its validation days,
 * the same in every run. */
static void
test_train_calibrated(void **state)
{
	enum { N = 20000 };
	row *r = gen_rows(N, 10, 3);
	batch_trainset *s = new_set(N / 2);
	batch_model_report ra, rb;
	batch_train_opts o;
	size_t la, lb;
	char *a, *b;

	(void)state;
	small_opts(&o);
	add_rows(s, r, N, 1);
	a = train(s, &o, &la, &ra);
	b = train(s, &o, &lb, &rb);
	assert_true(ra.trained);
	assert_true(ra.calibrated);
	assert_string_equal(ra.calib_why_not, "");
	assert_true(ra.calib_a > 0 && isfinite(ra.calib_a) && isfinite(ra.calib_b));
	assert_true(ra.calib_a == rb.calib_a && ra.calib_b == rb.calib_b);
	assert_int_equal(la, lb);
	assert_memory_equal(a, b, la);
	free(a);
	free(b);
	batch_trainset_free(s);
	free(r);
}

/* ---- A sharp pattern ---- */

/*
 * Rows with fraud at a low rate: 0.3% everywhere, 3% more where x0 > 0.9
 * and x1 > 0.5 (a smooth, noisy pattern), and a sharp one, one row in 2000:
 * a fraud group with x2 in [2, 3), where no legitimate row goes (x2 is
 * below 1 for every other row). *ret_group[i] marks the group's rows.
 */
static row *
gen_sharp_rows(size_t n, uint32_t days, uint64_t seed, bool **ret_group)
{
	row     *r = calloc(n, sizeof *r);
	bool    *g = calloc(n, sizeof *g);
	uint64_t s = seed * 0x9e3779b97f4a7c15ull + 7;

	assert_non_null(r);
	assert_non_null(g);
	for (size_t i = 0; i < n; i++) {
		for (int j = 0; j < NF; j++)
			r[i].x[j] = unif(&s);
		if (unif(&s) < 0.1f)
			r[i].x[5] = NAN;
		r[i].fraud = unif(&s) < (r[i].x[0] > 0.9f && r[i].x[1] > 0.5f ? 0.033f : 0.003f);
		if (unif(&s) < 0.0005f) {
			g[i] = true;
			r[i].fraud = true;
			r[i].x[2] = 2 + unif(&s);
		}
		r[i].t = T0 + (int64_t)(i % days) * DAY + (int64_t)(rng_next(&s) % DAY);
		r[i].key = rng_next(&s);
	}
	*ret_group = g;
	return r;
}

/* XGBoost's own prediction of a saved model for r[0..n). */
static float *
xgb_predict(const char *json, size_t len, const row *r, size_t n)
{
	BoosterHandle b = NULL;
	DMatrixHandle dm = NULL;
	const bst_ulong *shape;
	bst_ulong dim;
	const float *pred;
	float *x = malloc(n * NF * sizeof *x), *out = malloc(n * sizeof *out);

	assert_non_null(x);
	assert_non_null(out);
	for (size_t i = 0; i < n; i++)
		memcpy(&x[i * NF], r[i].x, sizeof r[i].x);
	assert_int_equal(XGBoosterCreate(NULL, 0, &b), 0);
	assert_int_equal(XGBoosterLoadModelFromBuffer(b, json, len), 0);
	assert_int_equal(XGDMatrixCreateFromMat(x, n, NF, NAN, &dm), 0);
	assert_int_equal(XGBoosterPredictFromDMatrix(b, dm, "{\"type\": 0, \"training\": false, "
	    "\"iteration_begin\": 0, \"iteration_end\": 0, \"strict_shape\": false}",
	    &shape, &dim, &pred), 0);
	assert_int_equal(dim, 1);
	assert_int_equal(shape[0], n);
	memcpy(out, pred, n * sizeof *out);
	XGDMatrixFree(dm);
	XGBoosterFree(b);
	free(x);
	return out;
}

/* AP of the group's frauds against the legitimate rows (other frauds left
 * out), as vigil-replay reports a pattern. */
static double
group_ap(const float *pred, const row *r, const bool *g, size_t n)
{
	float *p = malloc(n * sizeof *p), *y = malloc(n * sizeof *y);
	size_t m = 0;
	double ap;

	assert_non_null(p);
	assert_non_null(y);
	for (size_t i = 0; i < n; i++) {
		if (r[i].fraud && !g[i])
			continue;
		p[m] = pred[i];
		y[m++] = g[i];
	}
	ap = batch_metric_ap(p, y, NULL, m);
	free(p);
	free(y);
	return ap;
}

/*
 * A fraud group that one feature separates from every legitimate row is
 * ranked above them, with the nightly settings (legitimate rows sampled,
 * eta 0.2, lambda 10, early stopping). With the bins cut by the training
 * weights (balanced_bins false, what every model was trained with before)
 * the group's values share the top bin of x2 with hundreds of legitimate
 * rows, no split isolates it, and its AP on new rows stays low.
 */
static void
test_train_sharp_pattern(void **state)
{
	enum { N = 120000, NT = 200000 };
	bool *g, *gt;
	row *r = gen_sharp_rows(N, 20, 11, &g);
	row *rt = gen_sharp_rows(NT, 20, 12, &gt);
	batch_trainset *s = new_set(N / 3);
	batch_model_report rep;
	batch_train_opts o;
	double ap[2];
	size_t len;

	(void)state;
	add_rows(s, r, N, 1);
	for (int balanced = 0; balanced < 2; balanced++) {
		char *json;
		float *pred;

		batch_train_opts_default(&o);
		o.threads = 2;
		o.eta = 0.2; /* the nightly rebuild's settings (batch/nightmodel.c) */
		o.reg_lambda = 10;
		o.max_rounds = 200;
		o.early_stop = 20;
		o.balanced_bins = balanced;
		json = train(s, &o, &len, &rep);
		assert_true(rep.trained);
		pred = xgb_predict(json, len, rt, NT);
		ap[balanced] = group_ap(pred, rt, gt, NT);
		print_message("balanced_bins %d: %u rounds (best %u), validation AP %.4f, "
		    "the group's AP on new rows %.4f\n", balanced, rep.rounds, rep.best_round,
		    rep.valid_ap, ap[balanced]);
		free(pred);
		free(json);
	}
	assert_true(ap[1] >= 0.9);
	assert_true(ap[0] < 0.5);
	batch_trainset_free(s);
	free(r);
	free(g);
	free(rt);
	free(gt);
}

/* ---- Calibration of the saved model ---- */

/* Mean calibrated probability of the saved model (json) over the rows of
 * r[0..n) from t_from on, and their fraud rate in *ret_rate. */
static double
calib_mean_from(const char *json, size_t len, const batch_model_report *rep, const row *r,
    size_t n, int64_t t_from, double *ret_rate)
{
	float *pred = xgb_predict(json, len, r, n);
	double sum = 0, frauds = 0, m = 0;

	for (size_t i = 0; i < n; i++) {
		double q = pred[i], z;

		if (r[i].t < t_from)
			continue;
		q = q < BATCH_CALIB_P_MIN ? BATCH_CALIB_P_MIN : q > 1 - BATCH_CALIB_P_MIN ?
		    1 - BATCH_CALIB_P_MIN : q;
		z = rep->calib_a * (log(q) - log1p(-q)) + rep->calib_b;
		sum += 1 / (1 + exp(-z));
		frauds += r[i].fraud;
		m++;
	}
	free(pred);
	*ret_rate = frauds / m;
	return sum / m;
}

/*
 * The calibration is of the model that is saved. The validation days have
 * four times the fraud of the days before (x0 + x1 > 1.6 is fraud half the
 * time everywhere; the rest 0.2% before the split, 15% after), so the
 * refitted model's base_score, over every row, is well above the first
 * model's: a calibration fitted to the first model and applied unchanged
 * to the refitted one overstates every probability (the validation days'
 * mean calibrated probability 0.25 for a fraud rate of 0.18).
 */
static void
test_train_calibrated_saved_model(void **state)
{
	enum { N = 40000, DAYS = 12 };
	row *r = gen_rows(N, DAYS, 5);
	uint64_t rs = 99;
	batch_trainset *s = new_set(N);
	batch_model_report rep;
	batch_train_opts o;
	size_t len;
	char *json;
	double mean, rate;

	(void)state;
	for (size_t i = 0; i < N; i++) {
		bool late = r[i].t >= T0 + 9 * DAY;

		r[i].fraud = r[i].x[0] + r[i].x[1] > 1.6f ? unif(&rs) < 0.5f :
		    unif(&rs) < (late ? 0.15f : 0.002f);
	}
	small_opts(&o);
	o.calib_trust = 1;
	add_rows(s, r, N, 1);
	for (int refit = 0; refit < 2; refit++) {
		o.refit = refit;
		json = train(s, &o, &len, &rep);
		assert_true(rep.trained && rep.calibrated);
		assert_int_equal(rep.split_ms, T0 + 9 * DAY);
		mean = calib_mean_from(json, len, &rep, r, N, rep.split_ms, &rate);
		print_message("refit %d: base_score %.4f, a %.3f b %.3f, validation days' mean "
		    "calibrated p %.4f, fraud rate %.4f\n", refit, rep.base_score, rep.calib_a,
		    rep.calib_b, mean, rate);
		assert_near(mean, rate, 0.1 * rate);
		free(json);
	}
	batch_trainset_free(s);
	free(r);
}

/* calib_trust moves the served calibration from the identity (0) to the
 * fitted one (1) in proportion; out of [0, 1] it is refused. */
static void
test_train_calib_trust(void **state)
{
	enum { N = 20000 };
	row *r = gen_rows(N, 10, 3);
	batch_trainset *s = new_set(N);
	batch_model_report r0, rq, r1;
	batch_train_opts o;
	store_diag d;
	size_t len;
	char *json = NULL;

	(void)state;
	small_opts(&o);
	add_rows(s, r, N, 1);
	o.calib_trust = 0;
	free(train(s, &o, &len, &r0));
	o.calib_trust = 0.25;
	free(train(s, &o, &len, &rq));
	o.calib_trust = 1;
	free(train(s, &o, &len, &r1));
	assert_true(r0.calibrated && rq.calibrated && r1.calibrated);
	assert_true(r0.calib_a == 1 && r0.calib_b == 0);
	assert_true(r1.calib_a != 1);
	assert_near(rq.calib_a, 1 + 0.25 * (r1.calib_a - 1), 1e-12);
	assert_near(rq.calib_b, 0.25 * r1.calib_b, 1e-12);
	o.calib_trust = 1.5;
	assert_int_equal(batch_train_run(s, &o, &json, &len, &r1, &d), VIGIL_EINVAL);
	assert_non_null(strstr(d.msg, "calib_trust"));
	assert_null(json);
	batch_trainset_free(s);
	free(r);
}

/* A prior holds a and b near its centre when the validation rows say
 * little (a handful of frauds), and moves them little when they say much;
 * a prior with a zero or infinite sd is refused. */
static void
test_calib_platt_prior(void **state)
{
	enum { N = 400000 };
	float *p = malloc(N * sizeof *p), *y = malloc(N * sizeof *y), *w = malloc(N * sizeof *w);
	batch_calib_prior pr = { 1.0, BATCH_CALIB_PRIOR_SD_A, 0.0, BATCH_CALIB_PRIOR_SD_B };
	double a0, b0, a1, b1;
	char why[160];
	size_t m, nf = 0, k;

	(void)state;
	assert_non_null(p);
	assert_non_null(y);
	assert_non_null(w);
	/* much to say: the prior moves (0.6, -1.5) by little */
	m = calib_rows(N, 0.6, -1.5, 1.0, 4, p, y, w);
	assert_true(batch_calib_platt(p, y, w, m, &pr, &a1, &b1, why, sizeof why));
	assert_near(a1, 0.6, 0.05);
	assert_near(b1, -1.5, 0.15);
	/* little to say: 6 frauds; without the prior the fit swings far */
	for (k = 0; k < m && nf < 6; k++)
		nf += y[k] > 0.5f;
	assert_true(batch_calib_platt(p, y, w, k, NULL, &a0, &b0, why, sizeof why));
	assert_true(batch_calib_platt(p, y, w, k, &pr, &a1, &b1, why, sizeof why));
	print_message("%zu rows, 6 frauds: no prior a %.3f b %.3f; prior a %.3f b %.3f\n", k,
	    a0, b0, a1, b1);
	assert_true(fabs(a1 - 1) < fabs(a0 - 1));
	assert_true(fabs(a1 - 1) <= 0.5 && fabs(b1) <= 2.0);
	pr.sd_b = 0;
	assert_false(batch_calib_platt(p, y, w, k, &pr, &a1, &b1, why, sizeof why));
	assert_non_null(strstr(why, "prior"));
	pr.sd_b = INFINITY;
	assert_false(batch_calib_platt(p, y, w, k, &pr, &a1, &b1, why, sizeof why));
	free(p);
	free(y);
	free(w);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_auc_ap_simple),
		cmocka_unit_test(test_train_refit_on_every_row),
		cmocka_unit_test(test_auc_ap_ties),
		cmocka_unit_test(test_auc_ap_weights),
		cmocka_unit_test(test_auc_ap_degenerate),
		cmocka_unit_test(test_set_rejects_bad_names),
		cmocka_unit_test(test_set_sampling_cap),
		cmocka_unit_test(test_set_merge_mismatch),
		cmocka_unit_test(test_train_deterministic),
		cmocka_unit_test(test_train_model_pinned),
		cmocka_unit_test(test_codec_round_trip),
		cmocka_unit_test(test_codec_refuses_damage),
		cmocka_unit_test(test_train_cold_start),
		cmocka_unit_test(test_train_time_split),
		cmocka_unit_test(test_train_learns_planted_signal),
		cmocka_unit_test(test_train_min_rounds),
		cmocka_unit_test(test_train_nightly_rounds),
		cmocka_unit_test(test_calib_platt_recovers),
		cmocka_unit_test(test_calib_platt_refuses),
		cmocka_unit_test(test_train_calibrated),
		cmocka_unit_test(test_train_sharp_pattern),
		cmocka_unit_test(test_train_calibrated_saved_model),
		cmocka_unit_test(test_calib_platt_prior),
		cmocka_unit_test(test_train_calib_trust),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
