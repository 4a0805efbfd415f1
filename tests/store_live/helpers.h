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

#include "store.h"

/* 2026-01-01T00:00:00Z, a fixed base for event times. */
#define T0 1767225600000LL
#define MIN_MS 60000LL
#define HOUR_MS 3600000LL
#define DAY_MS 86400000LL

static inline char *
tmpdir_new(void)
{
	char  tmpl[] = "/tmp/vigil-store-live-XXXXXX";
	char *d = mkdtemp(tmpl);

	assert_non_null(d);
	return strdup(d);
}

static inline void
tmpdir_free(char *dir)
{
	char cmd[4200];

	if (dir == NULL)
		return;
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
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

#endif
