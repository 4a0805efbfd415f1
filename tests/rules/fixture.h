/* SPDX-License-Identifier: MIT */
/*
 * tests/rules/fixture.h - a small feature schema and helpers shared by the
 * rules unit tests (the library never sees store/: tests build their own).
 */
#ifndef VIGIL_TEST_RULES_FIXTURE_H
#define VIGIL_TEST_RULES_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules.h"

enum {
	FX_AMOUNT, FX_COUNTRY, FX_MCC, FX_COUNT_7D, FX_SEEN, FX_CARD_ID, FX_EVENT_TIME,
	FX_LAT, FX_LON, FX_LAT2, FX_LON2, FX_ZSCORE, FX_MERCHANT_RATE, FX_EMPTY, FX_NSLOTS
};

static inline rules_schema *
fx_schema(void)
{
	rules_schema *s = rules_schema_new();

	if (s == NULL)
		abort();
	if (rules_schema_add(s, "amount", VIGIL_T_NUM, FX_AMOUNT) != VIGIL_OK ||
	    rules_schema_add(s, "country", VIGIL_T_STR, FX_COUNTRY) != VIGIL_OK ||
	    rules_schema_add(s, "mcc", VIGIL_T_NUM, FX_MCC) != VIGIL_OK ||
	    rules_schema_add(s, "card.count_7d", VIGIL_T_NUM, FX_COUNT_7D) != VIGIL_OK ||
	    rules_schema_add(s, "card.country_seen", VIGIL_T_BOOL, FX_SEEN) != VIGIL_OK ||
	    rules_schema_add(s, "card_id", VIGIL_T_STR, FX_CARD_ID) != VIGIL_OK ||
	    rules_schema_add(s, "event_time", VIGIL_T_NUM, FX_EVENT_TIME) != VIGIL_OK ||
	    rules_schema_add(s, "lat", VIGIL_T_NUM, FX_LAT) != VIGIL_OK ||
	    rules_schema_add(s, "lon", VIGIL_T_NUM, FX_LON) != VIGIL_OK ||
	    rules_schema_add(s, "vel.card.last_lat", VIGIL_T_NUM, FX_LAT2) != VIGIL_OK ||
	    rules_schema_add(s, "vel.card.last_lon", VIGIL_T_NUM, FX_LON2) != VIGIL_OK ||
	    rules_schema_add(s, "card.amount_zscore", VIGIL_T_NUM, FX_ZSCORE) != VIGIL_OK ||
	    rules_schema_add(s, "merchant.fraud_rate_30d", VIGIL_T_NUM, FX_MERCHANT_RATE) != VIGIL_OK ||
	    rules_schema_add(s, "device_id", VIGIL_T_STR, FX_EMPTY) != VIGIL_OK)
		abort();
	return s;
}

/*
 * The standard transaction of the semantics table: 120.5 EUR at mcc 5411
 * in "GB" by card "411111abc" on 2026-11-20 (a Friday) 14:30:00 UTC, from
 * Paris; card.count_7d and device_id missing, card.country_seen false.
 */
static inline void
fx_features(vigil_value *f)
{
	for (int i = 0; i < FX_NSLOTS; i++)
		f[i] = vigil_value_missing();
	f[FX_AMOUNT] = vigil_value_num(120.5);
	f[FX_COUNTRY] = vigil_value_str("GB", 2);
	f[FX_MCC] = vigil_value_num(5411);
	f[FX_SEEN] = vigil_value_bool(false);
	f[FX_CARD_ID] = vigil_value_str("411111abc", 9);
	f[FX_EVENT_TIME] = vigil_value_num(1795185000); /* 2026-11-20T14:30:00Z */
	f[FX_LAT] = vigil_value_num(48.8566);
	f[FX_LON] = vigil_value_num(2.3522);
	f[FX_LAT2] = vigil_value_num(51.5074);
	f[FX_LON2] = vigil_value_num(-0.1278);
	f[FX_ZSCORE] = vigil_value_num(2.5);
	f[FX_MERCHANT_RATE] = vigil_value_num(0.04);
}

/* Reads a whole file relative to VIGIL_SOURCE_ROOT (or the cwd). */
static inline char *
fx_read_source(const char *rel, size_t *ret_len)
{
	const char *root = getenv("VIGIL_SOURCE_ROOT");
	char        path[4096];
	FILE       *f;
	char       *buf;
	long        n;

	snprintf(path, sizeof path, "%s/%s", root != NULL ? root : ".", rel);
	f = fopen(path, "rb");
	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
		fclose(f);
		return NULL;
	}
	buf = malloc((size_t)n + 1);
	if (buf == NULL || fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		fclose(f);
		return NULL;
	}
	buf[n] = '\0';
	fclose(f);
	*ret_len = (size_t)n;
	return buf;
}

#endif
