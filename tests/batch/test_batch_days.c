/* SPDX-License-Identifier: MIT */
/*
 * tests/batch/test_batch_days.c - day aggregates (batch_days, batch/days.c):
 * night after night, a data directory rebuilt with opts.days holds the
 * same generation as a copy of it rebuilt without (profiles to the
 * rounding of their sums, thresholds, counts), while days are reused; a
 * late record, a label changed after the fact and a day entering the
 * label maturity are each seen. Real archives with daily segments (the
 * writer rotated at each day boundary, as vigild's clock does), real LMDB
 * generations.
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

#include "batch.h"
#include "genread.h"
#include "fixture.h"

#define A (1772323200000LL) /* 2026-03-01T00:00:00Z */
#define D VIGIL_MS_PER_DAY
#define NIGHTS 16
#define NCARDS 30
#define NMERCH 6
#define NTERM 4
#define PER_DAY 60

static const char rules_text[] =
    "version \"days-test\"\n"
    "threshold big = percentile(amount, 90) fallback 100 min_samples 20\n"
    "threshold big_by_country = percentile(amount, 75) by country fallback 100 min_samples 5\n"
    "rule big_amount {\n"
    "  when amount > big and amount > big_by_country\n"
    "  score 10\n"
    "  reason \"big\"\n"
    "}\n";

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint32_t
next_u32(uint32_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng % n);
}

typedef struct pending_label {
	char    txn[32];
	bool    fraud;
	int64_t at;
} pending_label;

static pending_label labels[NIGHTS * PER_DAY + 8];
static size_t nlabels;

/* Day d's transactions (and the labels they will get, later). */
static void
write_day(store_archive *ar, int d)
{
	static const char *const cc[] = { "FR", "DE", "US", "GB" };

	for (int i = 0; i < PER_DAY; i++) {
		char txn[32], card[16], merch[16], term[16];
		fx_txn t;

		snprintf(txn, sizeof txn, "d%d-%d", d, i);
		snprintf(card, sizeof card, "c%u", next_u32(NCARDS));
		snprintf(merch, sizeof merch, "m%u", next_u32(NMERCH));
		snprintf(term, sizeof term, "t%u", next_u32(NTERM));
		memset(&t, 0, sizeof t);
		t.txn_id = txn;
		t.card = card;
		t.merchant = merch;
		t.terminal = next_u32(3) ? term : NULL;
		t.country = cc[next_u32(4)];
		t.currency = "EUR";
		t.amount_minor = 100 + next_u32(50000);
		t.t = A + (int64_t)d * D + (int64_t)i * (D / PER_DAY) + next_u32(1000);
		t.mcc = 5411 + next_u32(3);
		fx_score(ar, &t);
		if (next_u32(6) == 0) {
			pending_label *l = &labels[nlabels++];

			snprintf(l->txn, sizeof l->txn, "%s", txn);
			l->fraud = next_u32(2) == 0;
			l->at = t.t + (1 + next_u32(4)) * D; /* 1 to 4 days later */
		}
	}
}

/* The labels due by the night at `night` (each once). */
static void
write_labels_due(store_archive *ar, int64_t night)
{
	for (size_t i = 0; i < nlabels; i++) {
		if (labels[i].at > night || labels[i].at == 0)
			continue;
		fx_label(ar, labels[i].txn, labels[i].fraud, labels[i].at);
		labels[i].at = 0;
	}
}

static void
opts_for(batch_opts *o, const char *dd, const char *rules, int64_t as_of)
{
	batch_opts_default(o);
	o->datadir = dd;
	o->as_of_ms = as_of;
	o->window_ms = 8 * D;
	o->label_maturity_ms = 3 * D;
	o->train_window_ms = 3 * D;
	o->rules_path = rules;
	o->threads = 2;
}

static void
near(double a, double b, const char *what, const char *id)
{
	double tol = 1e-9 * (fabs(a) > 1 ? fabs(a) : 1);

	if (!((isnan(a) && isnan(b)) || fabs(a - b) <= tol)) {
		print_error("%s of %s: %.17g with day aggregates, %.17g without\n", what, id, a, b);
		fail();
	}
}

typedef struct thr_list {
	char   key[64][160];
	double value[64];
	size_t n;
} thr_list;

static void
thr_collect(void *arg, const char *name, const char *group, const store_threshold_val *v)
{
	thr_list *l = arg;

	if (l->n >= 64)
		return;
	snprintf(l->key[l->n], sizeof l->key[0], "%s/%s", name, group);
	l->value[l->n++] = v->value;
}

/* The current generations of a (day aggregates) and b (without) hold the
 * same profiles and thresholds. */
static void
same_generation(const char *a, const char *b)
{
	store_gen *ga = NULL, *gb = NULL;
	store_diag diag;
	static thr_list ta, tb;

	assert_int_equal(store_gen_open_current(a, &ga, &diag), VIGIL_OK);
	assert_int_equal(store_gen_open_current(b, &gb, &diag), VIGIL_OK);
	for (int i = 0; i < NCARDS; i++) {
		char id[16];
		store_card_profile pa, pb;
		vigil_err ra, rb;

		snprintf(id, sizeof id, "c%d", i);
		ra = store_gen_card(ga, id, &pa);
		rb = store_gen_card(gb, id, &pb);
		assert_int_equal(ra, rb);
		if (ra != VIGIL_OK)
			continue;
#define PC(ctype, field, since, doc) near((double)pa.field, (double)pb.field, #field, id);
#include "schema.def"
#undef PC
		assert_memory_equal(pa.hour_hist, pb.hour_hist, sizeof pa.hour_hist);
		assert_int_equal(pa.ncountries, pb.ncountries);
		assert_memory_equal(pa.countries, pb.countries, sizeof pa.countries[0] * pa.ncountries);
		assert_int_equal(pa.nmerchants, pb.nmerchants);
		assert_memory_equal(pa.merchants, pb.merchants, sizeof pa.merchants[0] * pa.nmerchants);
	}
	for (int k = 0; k < 2; k++) {
		for (int i = 0; i < (k ? NTERM : NMERCH); i++) {
			char id[16];
			store_entity_profile pa, pb;
			vigil_err ra, rb;

			snprintf(id, sizeof id, "%c%d", k ? 't' : 'm', i);
			ra = k ? store_gen_terminal(ga, id, &pa) : store_gen_merchant(ga, id, &pa);
			rb = k ? store_gen_terminal(gb, id, &pb) : store_gen_merchant(gb, id, &pb);
			assert_int_equal(ra, rb);
			if (ra != VIGIL_OK)
				continue;
#define PE(ctype, field, since, doc) near((double)pa.field, (double)pb.field, #field, id);
#include "schema.def"
#undef PE
		}
	}
	memset(&ta, 0, sizeof ta);
	memset(&tb, 0, sizeof tb);
	assert_int_equal(store_gen_thresholds_each(ga, thr_collect, &ta), VIGIL_OK);
	assert_int_equal(store_gen_thresholds_each(gb, thr_collect, &tb), VIGIL_OK);
	assert_int_equal(ta.n, tb.n);
	assert_true(ta.n >= 2);
	for (size_t i = 0; i < ta.n; i++) {
		assert_string_equal(ta.key[i], tb.key[i]);
		near(ta.value[i], tb.value[i], "threshold", ta.key[i]);
	}
	store_gen_close(ga);
	store_gen_close(gb);
}

static void
test_days_equal_full_rebuild(void **state)
{
	const char *da = fx_tmpdir(0), *db = fx_tmpdir(1);
	char rules[600], barch[600];
	batch_days *days = batch_days_new();
	store_archive *ar = fx_archive(da);
	uint32_t reused = 0;
	FILE *f;

	(void)state;
	assert_non_null(days);
	snprintf(rules, sizeof rules, "%s/rules.vgl", db);
	f = fopen(rules, "w");
	assert_non_null(f);
	fputs(rules_text, f);
	fclose(f);
	snprintf(barch, sizeof barch, "%s/archive", db);
	for (int n = 1; n <= NIGHTS; n++) {
		int64_t night = A + (int64_t)n * D;
		batch_opts oa, ob;
		batch_summary *sa = calloc(1, sizeof *sa), *sb = calloc(1, sizeof *sb);
		store_diag diag;

		assert_non_null(sa);
		assert_non_null(sb);
		/* the first record of a new day closes yesterday's segment */
		if (n > 1)
			assert_int_equal(store_archive_rotate(ar, &diag), VIGIL_OK);
		write_day(ar, n - 1);
		if (n == 13) {
			/* a late record for day 7, whose labels all came and which
			 * is mature: nothing else would make it read again */
			fx_txn t = { "late-1", "c3", "m2", "t1", "FR", "EUR", 77700, A + 7 * D + 5,
				5411, NULL, 0 };
			fx_score(ar, &t);
		}
		if (n == 12)
			fx_label(ar, "d5-5", true, night - 1); /* long after: day 5 changes */
		write_labels_due(ar, night);
		fx_rm_rf(barch);
		fx_copy_archive(da, db);

		opts_for(&oa, da, rules, night);
		oa.days = days;
		opts_for(&ob, db, rules, night);
		assert_int_equal(batch_rebuild(&oa, sa, &diag), VIGIL_OK);
		assert_int_equal(batch_rebuild(&ob, sb, &diag), VIGIL_OK);
		assert_int_equal(sa->generation, sb->generation);
		assert_int_equal(sb->days_read + sb->days_reused, 0);
		assert_int_equal(sa->days_read + sa->days_reused, 8);
		assert_int_equal(sa->records_read, sb->records_read);
		assert_int_equal(sa->records_bad, sb->records_bad);
		assert_int_equal(sa->labels_read, sb->labels_read);
		assert_int_equal(sa->labels_used, sb->labels_used);
		assert_int_equal(sa->cards, sb->cards);
		assert_int_equal(sa->merchants, sb->merchants);
		assert_int_equal(sa->terminals, sb->terminals);
		assert_int_equal(sa->first_seq, sb->first_seq);
		assert_int_equal(sa->last_seq, sb->last_seq);
		if (n == 12 || n == 13)
			assert_true(sa->days_read >= 3); /* the changed day, yesterday, the one maturing */
		reused += sa->days_reused;
		/* Night 14 reads every day: the segment closed then holds the late
		 * record of day 7 and day 12's, and its index spans them all. */
		if (n >= 3 && n != 14)
			assert_true(sa->days_reused > 0);
		same_generation(da, db);
		free(sa);
		free(sb);
	}
	/* Labels arrive over 4 days here, so a day is read about 6 times in
	 * its 8 nights; still, days were merged rather than read. */
	assert_true(reused >= NIGHTS);
	/* Nothing new: once its segment is closed, yesterday is not read again. */
	{
		store_diag diag;

		assert_int_equal(store_archive_rotate(ar, &diag), VIGIL_OK);
	}
	store_archive_close(ar);
	for (int k = 0; k < 2; k++) {
		batch_opts oa;
		batch_summary *sa = calloc(1, sizeof *sa);
		store_diag diag;

		assert_non_null(sa);
		opts_for(&oa, da, rules, A + (int64_t)NIGHTS * D);
		oa.days = days;
		oa.force = true;
		assert_int_equal(batch_rebuild(&oa, sa, &diag), VIGIL_OK);
		assert_int_equal(sa->days_read, k == 0 ? 1 : 0);
		assert_int_equal(sa->days_reused, k == 0 ? 7 : 8);
		same_generation(da, db);
		free(sa);
	}
	batch_days_free(days);
	fx_rm_rf(da);
	fx_rm_rf(db);
}

/* An as-of that is not a day boundary reads everything, as without. */
static void
test_days_unaligned_reads_all(void **state)
{
	const char *da = fx_tmpdir(2);
	batch_days *days = batch_days_new();
	store_archive *ar = fx_archive(da);
	batch_opts o;
	batch_summary *s = calloc(1, sizeof *s);
	store_diag diag;

	(void)state;
	assert_non_null(s);
	nlabels = 0;
	write_day(ar, 0);
	write_day(ar, 1);
	store_archive_close(ar);
	opts_for(&o, da, NULL, A + 2 * D + 3600000);
	o.days = days;
	assert_int_equal(batch_rebuild(&o, s, &diag), VIGIL_OK);
	assert_int_equal(s->days_read + s->days_reused, 0);
	assert_int_equal(s->records_read, 2 * PER_DAY);
	free(s);
	batch_days_free(days);
	fx_rm_rf(da);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_days_equal_full_rebuild),
		cmocka_unit_test(test_days_unaligned_reads_all),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
