/* SPDX-License-Identifier: MIT */
/*
 * tests/store_live/test_hot.c - hot entities: one merchant, terminal and IP
 * (and two devices) shared by thousands of cards, with out-of-order event
 * times and backward jumps. Every entity feature of every checked
 * transaction is compared with a brute-force recomputation over all the
 * events applied so far (the model keeps the documented retention: an
 * entity holds the events newer than its newest event minus its largest
 * window), and afterwards lookups at arbitrary times are compared too.
 */
#include "helpers.h"

#define NCARDS 3000
#define NTXN   20000

enum { K_MERCHANT, K_TERMINAL, K_DEVICE0, K_DEVICE1, K_IP, K_N };

typedef struct model_ent {
	int64_t *t;
	int     *card;
	int      n;
	int64_t  newest;
	int64_t  retain;
} model_ent;

static uint32_t stamp[NCARDS];
static uint32_t stamp_cur;

/* Events of m in (t - w, t] that the entity still holds. */
static void
model_count(const model_ent *m, int64_t t, int64_t w, double *ret_count, double *ret_distinct)
{
	int64_t cut = m->n > 0 ? m->newest - m->retain : INT64_MIN;
	int     c = 0, d = 0;

	stamp_cur++;
	for (int i = 0; i < m->n; i++) {
		int64_t e = m->t[i];

		if (e <= cut || e > t || t - e >= w)
			continue;
		c++;
		if (stamp[m->card[i]] != stamp_cur) {
			stamp[m->card[i]] = stamp_cur;
			d++;
		}
	}
	*ret_count = c;
	*ret_distinct = d;
}

static void
model_apply(model_ent *m, int64_t t, int card)
{
	if (m->n == 0 || t > m->newest)
		m->newest = t;
	if (t <= m->newest - m->retain)
		return; /* not recorded by the entity */
	m->t[m->n] = t;
	m->card[m->n] = card;
	m->n++;
}

typedef struct check {
	const char *name;
	int         kind;
	int64_t     w;
	bool        distinct;
} check;

static const check checks[] = {
	{ "vel.merchant.count_1m", K_MERCHANT, MIN_MS, false },
	{ "vel.merchant.count_1h", K_MERCHANT, HOUR_MS, false },
	{ "vel.terminal.count_10m", K_TERMINAL, 10 * MIN_MS, false },
	{ "vel.terminal.distinct_cards_1h", K_TERMINAL, HOUR_MS, true },
	{ "vel.device.count_1h", -1, HOUR_MS, false },
	{ "vel.device.distinct_cards_24h", -1, DAY_MS, true },
	{ "vel.ip.count_1h", K_IP, HOUR_MS, false },
	{ "vel.ip.distinct_cards_24h", K_IP, DAY_MS, true },
};

static void
txn_fill(vigil_txn *x, int dev)
{
	snprintf(x->terminal_id, sizeof x->terminal_id, "T-hot");
	snprintf(x->device_id, sizeof x->device_id, "D-%d", dev);
	snprintf(x->ip, sizeof x->ip, "203.0.113.9");
}

/* Compares f (features of a transaction at t from device dev) with the
 * model; returns how many distinct counts went past the scan limit. */
static int
compare(const vigil_value *f, model_ent *m, int64_t t, int dev, int i)
{
	int big = 0;

	for (size_t c = 0; c < sizeof checks / sizeof checks[0]; c++) {
		int    kind = checks[c].kind >= 0 ? checks[c].kind : K_DEVICE0 + dev;
		double cnt, dis, want, got = num_of(f, checks[c].name);

		model_count(&m[kind], t, checks[c].w, &cnt, &dis);
		want = checks[c].distinct ? dis : cnt;
		if (got != want)
			fail_msg("txn %d at %+lld ms: %s = %g, brute force %g", i,
			    (long long)(t - T0), checks[c].name, got, want);
		if (checks[c].distinct && want > 64)
			big++;
	}
	return big;
}

static void
test_hot_entities_exact(void **state)
{
	store_db     *db = NULL;
	store_ctx    *ctx;
	model_ent     m[K_N];
	vigil_value   f[256];
	store_outcome prior;
	uint64_t      rng = 0x9e3779b97f4a7c15ULL;
	int64_t       tmin = INT64_MAX, tmax = INT64_MIN;
	int           big = 0;
	static const int64_t retain[K_N] = { HOUR_MS, HOUR_MS, DAY_MS, DAY_MS, DAY_MS };

	(void)state;
	assert_int_equal(store_db_new_memory(NULL, &db), VIGIL_OK);
	ctx = store_ctx_new(db);
	assert_non_null(ctx);
	for (int k = 0; k < K_N; k++) {
		m[k].t = calloc(NTXN, sizeof *m[k].t);
		m[k].card = calloc(NTXN, sizeof *m[k].card);
		assert_non_null(m[k].t);
		assert_non_null(m[k].card);
		m[k].n = 0;
		m[k].retain = retain[k];
	}
	for (int i = 0; i < NTXN; i++) {
		char      id[32], card[32];
		int       cn, dev;
		int64_t   t;
		vigil_txn x;

		rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
		cn = (int)(rng % NCARDS);
		dev = (int)((rng >> 20) & 1);
		/* ~1 per second, +-90 s out of order, and every 1000th 40 min back. */
		t = T0 + (int64_t)i * 1000 + (int64_t)((rng >> 24) % 180001) - 90000;
		if (i % 1000 == 999)
			t -= 40 * MIN_MS;
		if (i % 1500 == 1499)
			t = t - (t - T0) % 60000; /* ties on a minute boundary */
		snprintf(id, sizeof id, "h-%d", i);
		snprintf(card, sizeof card, "card-%d", cn);
		x = txn_make(id, card, "M-hot", t, 100);
		txn_fill(&x, dev);
		assert_int_equal(store_score_begin(db, ctx, &x, f, store_schema_nfields(), &prior),
		    VIGIL_OK);
		if (i % 3 == 0 || i % 1000 >= 998)
			big += compare(f, m, t, dev, i);
		{
			store_scored *s = malloc(sizeof *s);
			store_diag    d;

			assert_non_null(s);
			scored_make(s, &x, 0);
			assert_int_equal(store_score_commit(db, ctx, s, &d), VIGIL_OK);
			free(s);
		}
		model_apply(&m[K_MERCHANT], t, cn);
		model_apply(&m[K_TERMINAL], t, cn);
		model_apply(&m[K_DEVICE0 + dev], t, cn);
		model_apply(&m[K_IP], t, cn);
		if (t < tmin)
			tmin = t;
		if (t > tmax)
			tmax = t;
	}
	/* The incremental structures were exercised, not only the scan. */
	assert_true(big > 1000);
	/* Lookups at arbitrary times, back and forth (the distinct maps move
	 * both ways and restart when the range jumps). */
	for (int i = 0; i < 400; i++) {
		int64_t   t;
		int       dev = i & 1;
		vigil_txn x;

		rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
		t = tmin + (int64_t)(rng % (uint64_t)(tmax - tmin + 2 * HOUR_MS));
		if (i % 10 == 0)
			t = tmax; /* ties with the newest */
		x = txn_make("probe", "card-probe", "M-hot", t, 100);
		txn_fill(&x, dev);
		assert_int_equal(store_features_lookup(db, ctx, &x, f, store_schema_nfields()),
		    VIGIL_OK);
		compare(f, m, t, dev, -i);
	}
	for (int k = 0; k < K_N; k++) {
		free(m[k].t);
		free(m[k].card);
	}
	store_ctx_free(ctx);
	store_db_close(db);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hot_entities_exact),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
