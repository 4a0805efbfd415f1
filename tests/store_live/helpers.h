/* SPDX-License-Identifier: MIT */
/*
 * tests/store_live/helpers.h - small helpers shared by the feature
 * generation, live state and store_db tests: temporary directories,
 * transactions, feature slot access.
 */
#ifndef VIGIL_TEST_STORE_LIVE_HELPERS_H
#define VIGIL_TEST_STORE_LIVE_HELPERS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "tmpdir.h"
#include "db.h"

/* 2026-01-01T00:00:00Z, a fixed base for event times. */
#define T0 1767225600000LL
#define MIN_MS 60000LL
#define HOUR_MS 3600000LL
#define DAY_MS 86400000LL

static inline char *
tmpdir_new(void)
{
	char d[256];

	assert_int_equal(vt_tmpdir_make("vigil-store-live", d, sizeof d), 0);
	return strdup(d);
}

static inline void
tmpdir_free(char *dir)
{
	if (dir == NULL)
		return;
	assert_int_equal(vt_tmpdir_remove(dir), 0);
	free(dir);
}

static inline vigil_txn
txn_make(const char *txn_id, const char *card, const char *merchant, int64_t t,
    int64_t amount_minor)
{
	vigil_txn x;

	memset(&x, 0, sizeof x);
	snprintf(x.txn_id, sizeof x.txn_id, "%s", txn_id);
	snprintf(x.card_id, sizeof x.card_id, "%s", card);
	snprintf(x.merchant_id, sizeof x.merchant_id, "%s", merchant);
	memcpy(x.currency, "EUR", 4);
	memcpy(x.country, "FR", 3);
	x.event_time_ms = t;
	x.amount_minor = amount_minor;
	x.channel = VIGIL_CHANNEL_POS;
	return x;
}

static inline uint32_t
slot_of(const char *name)
{
	uint32_t slot = 0;

	assert_int_equal(store_schema_find(name, &slot), VIGIL_OK);
	return slot;
}

static inline double
num_of(const vigil_value *f, const char *name)
{
	const vigil_value *v = &f[slot_of(name)];

	if (!v->present)
		fail_msg("feature %s is missing", name);
	return v->num;
}

static inline bool
present_of(const vigil_value *f, const char *name)
{
	return f[slot_of(name)].present;
}

/* A scored record for txn with the given score (outcome fields filled). */
static inline void
scored_make(store_scored *s, const vigil_txn *txn, int32_t score)
{
	memset(s, 0, sizeof *s);
	s->txn = *txn;
	s->score = score;
	s->points = score;
	s->decision = score >= 50 ? VIGIL_DECISION_DECLINE : VIGIL_DECISION_ALLOW;
	snprintf(s->rules_version, sizeof s->rules_version, "test-rules-1");
	s->scored_at_ms = txn->event_time_ms;
	if (score > 0) {
		s->nhits = 1;
		snprintf(s->hits[0].rule, sizeof s->hits[0].rule, "r%d", score);
		s->hits[0].points = score;
	}
}

/* begin + commit in one step; returns begin's result (commit must succeed). */
static inline vigil_err
score_one(store_db *db, store_ctx *ctx, const vigil_txn *txn, int32_t score, vigil_value *f,
    store_outcome *prior)
{
	static store_scored s;
	store_diag          d;
	vigil_err           rv;

	rv = store_score_begin(db, ctx, txn, f, store_schema_nfields(), prior);
	if (rv != VIGIL_OK)
		return rv;
	scored_make(&s, txn, score);
	rv = store_score_commit(db, ctx, &s, &d);
	if (rv != VIGIL_OK)
		fail_msg("commit: %s: %s", vigil_strerror(rv), d.msg);
	return VIGIL_OK;
}

/*
 * A fresh in-memory db with every scored record of the archive under
 * datadir applied in archive order through begin/commit: the
 * "recomputation from the archive" that a reopened db must equal.
 * *ret_wmax = the largest event time seen.
 */
static inline void
replay_into_memory(const char *datadir, store_db **ret_db, int64_t *ret_wmax)
{
	char          dir[4200];
	store_reader *rd = NULL;
	store_record  r;
	store_diag    d;
	store_db     *db = NULL;
	store_ctx    *ctx;
	store_scored *s = malloc(sizeof *s);
	vigil_value   f[256];
	store_outcome prior;
	vigil_err     rv;
	int64_t       wmax = INT64_MIN;

	assert_non_null(s);
	assert_int_equal(store_db_new_memory(NULL, &db), VIGIL_OK);
	ctx = store_ctx_new(db);
	assert_non_null(ctx);
	snprintf(dir, sizeof dir, "%s/archive", datadir);
	assert_int_equal(store_reader_open(dir, INT64_MIN, INT64_MAX, NULL, NULL, &rd, &d),
	    VIGIL_OK);
	while ((rv = store_reader_next(rd, &r, &d)) == VIGIL_OK) {
		if (r.type != STORE_REC_SCORE)
			continue;
		if (store_scored_decode(r.payload, r.len, s, &d) != VIGIL_OK)
			fail_msg("decode: %s", d.msg);
		if (s->txn.event_time_ms > wmax)
			wmax = s->txn.event_time_ms;
		rv = store_score_begin(db, ctx, &s->txn, f, store_schema_nfields(), &prior);
		if (rv == VIGIL_EEXIST)
			continue;
		assert_int_equal(rv, VIGIL_OK);
		if (store_score_commit(db, ctx, s, &d) != VIGIL_OK)
			fail_msg("commit: %s", d.msg);
	}
	assert_int_equal(rv, VIGIL_ENOTFOUND);
	store_reader_close(rd);
	store_ctx_free(ctx);
	free(s);
	*ret_db = db;
	*ret_wmax = wmax;
}

/* Asserts both dbs give the same full feature vector for txn. */
static inline void
assert_same_features(store_db *a, store_db *b, const vigil_txn *txn)
{
	store_ctx  *ca = store_ctx_new(a), *cb = store_ctx_new(b);
	vigil_value fa[256], fb[256];
	uint32_t    n = store_schema_nfields();

	assert_non_null(ca);
	assert_non_null(cb);
	assert_int_equal(store_features_lookup(a, ca, txn, fa, n), VIGIL_OK);
	assert_int_equal(store_features_lookup(b, cb, txn, fb, n), VIGIL_OK);
	for (uint32_t i = 0; i < n; i++) {
		const char *name = store_schema_field(i)->name;

		if (fa[i].present != fb[i].present)
			fail_msg("card %s at %lld: %s present %d vs %d", txn->card_id,
			    (long long)txn->event_time_ms, name, fa[i].present, fb[i].present);
		if (!fa[i].present)
			continue;
		if (store_schema_field(i)->type == VIGIL_T_STR) {
			assert_int_equal(fa[i].len, fb[i].len);
			assert_memory_equal(fa[i].str, fb[i].str, fa[i].len);
		} else if (fa[i].num != fb[i].num) {
			fail_msg("card %s at %lld: %s = %.17g vs %.17g", txn->card_id,
			    (long long)txn->event_time_ms, name, fa[i].num, fb[i].num);
		}
	}
	store_ctx_free(ca);
	store_ctx_free(cb);
}

/* Probe transactions of every card in cards[] after, and inside, the
 * stream (W = wmax), with the terminal, device and IP used by gen_txn. */
static inline void
assert_same_probes(store_db *a, store_db *b, int ncards, int64_t wmax)
{
	const int64_t at[] = { 1000, -30 * MIN_MS, -20 * HOUR_MS };

	for (int c = 0; c < ncards; c++) {
		for (size_t k = 0; k < sizeof at / sizeof at[0]; k++) {
			char      card[16];
			vigil_txn x;

			snprintf(card, sizeof card, "card-%d", c);
			x = txn_make("probe", card, "merchant-1", wmax + at[k], 1234);
			snprintf(x.terminal_id, sizeof x.terminal_id, "term-%d", c % 3);
			snprintf(x.device_id, sizeof x.device_id, "dev-%d", c % 4);
			snprintf(x.ip, sizeof x.ip, "10.0.0.%d", c % 5);
			x.has_location = true;
			x.lat = 45.0;
			x.lon = 5.0;
			assert_same_features(a, b, &x);
		}
	}
}

/* A pseudo-random transaction of a small population (deterministic in
 * *seed): mostly in event-time order around base, some out of order, a
 * few older than the largest window (late). */
static inline vigil_txn
gen_txn(unsigned *seed, const char *id, int64_t base, int i, int ncards)
{
	int       c = rand_r(seed) % ncards;
	int       kind = rand_r(seed) % 100;
	int64_t   t = base + (int64_t)i * 1000;
	char      card[16], merchant[16];
	vigil_txn x;

	if (kind < 20)
		t -= (rand_r(seed) % 3600) * 1000LL;      /* out of order, within the hour */
	else if (kind < 22)
		t -= 8 * DAY_MS;                           /* late */
	else if (kind < 30)
		t -= (rand_r(seed) % 72) * HOUR_MS;        /* out of order, days */
	snprintf(card, sizeof card, "card-%d", c);
	snprintf(merchant, sizeof merchant, "merchant-%d", rand_r(seed) % 5);
	x = txn_make(id, card, merchant, t, 100 + rand_r(seed) % 50000);
	snprintf(x.terminal_id, sizeof x.terminal_id, "term-%d", rand_r(seed) % 3);
	if (rand_r(seed) % 2)
		snprintf(x.device_id, sizeof x.device_id, "dev-%d", rand_r(seed) % 4);
	snprintf(x.ip, sizeof x.ip, "10.0.0.%d", rand_r(seed) % 5);
	if (rand_r(seed) % 3) {
		x.has_location = true;
		x.lat = -60.0 + rand_r(seed) % 120;
		x.lon = -170.0 + rand_r(seed) % 340;
	}
	memcpy(x.country, (const char *[]){ "FR", "DE", "US", "GB" }[rand_r(seed) % 4], 3);
	return x;
}

#endif
