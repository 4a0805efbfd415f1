/* SPDX-License-Identifier: MIT */
/*
 * features/profile.c - the features a batch profile gives: the fills of
 * schema.def's FP rows (a stored field read as a feature, generated), the
 * DERIVED card features computed from the profile and the request
 * (profile_fill_card_txn), store_profile_features for inspection, and the
 * JSON of a stored profile, every PC/PE field by its name, that
 * vigil-rebuild --dump and the console print. The structs are in
 * profile.h, the codec in codec.c; the reads and the profile cache
 * (features/db/fill.c, store/live.c) are features/db/'s and store/'s.
 */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include <xxhash.h>

#include "profile.h"
#include "slots.h"

#define FILL_(slot, field) f[STORE_SLOT_##slot] = vigil_value_num((double)p->field);
#define FILL_IGNORE_(slot, field)

void
profile_fill_card(const store_card_profile *p, vigil_value *f)
{
#define FP(slot, name, source, field, model, doc) FILL_CARD_##source(slot, field)
#define FILL_CARD_CARD     FILL_
#define FILL_CARD_MERCHANT FILL_IGNORE_
#define FILL_CARD_TERMINAL FILL_IGNORE_
#include "schema.def"
#undef FP
}

void
profile_fill_merchant(const store_entity_profile *p, vigil_value *f)
{
#define FP(slot, name, source, field, model, doc) FILL_MERCHANT_##source(slot, field)
#define FILL_MERCHANT_CARD     FILL_IGNORE_
#define FILL_MERCHANT_MERCHANT FILL_
#define FILL_MERCHANT_TERMINAL FILL_IGNORE_
#include "schema.def"
#undef FP
}

void
profile_fill_terminal(const store_entity_profile *p, vigil_value *f)
{
#define FP(slot, name, source, field, model, doc) FILL_TERMINAL_##source(slot, field)
#define FILL_TERMINAL_CARD     FILL_IGNORE_
#define FILL_TERMINAL_MERCHANT FILL_IGNORE_
#define FILL_TERMINAL_TERMINAL FILL_
#include "schema.def"
#undef FP
}

static bool
merchant_in(const store_card_profile *p, uint64_t h)
{
	for (unsigned i = 0; i < p->nmerchants && i < STORE_CARD_MAX_MERCHANTS; i++)
		if (p->merchants[i] == h)
			return true;
	return false;
}

static bool
country_in(const store_card_profile *p, const char *cc)
{
	for (unsigned i = 0; i < p->ncountries && i < STORE_CARD_MAX_COUNTRIES; i++)
		if (p->countries[i][0] == cc[0] && p->countries[i][1] == cc[1])
			return true;
	return false;
}

void
profile_fill_card_txn(const vigil_txn *txn, const store_card_profile *p, vigil_value *f)
{
	int64_t  t = txn->event_time_ms;
	double   amount = vigil_txn_amount(txn);
	uint64_t total = 0;

	profile_fill_card(p, f);
	/* A z-score needs a spread: at least two amounts that differ. */
	f[STORE_SLOT_CARD_AMOUNT_ZSCORE] = p->count_90d >= 2 && p->amount_std_90d > 0.0
	    ? vigil_value_num((amount - p->amount_mean_90d) / p->amount_std_90d)
	    : vigil_value_missing();
	if (p->first_seen_ms > 0) {
		double age = (double)(t - p->first_seen_ms) / (double)VIGIL_MS_PER_DAY;

		f[STORE_SLOT_CARD_FIRST_SEEN] = vigil_value_num((double)p->first_seen_ms / 1000.0);
		f[STORE_SLOT_CARD_AGE_DAYS] = vigil_value_num(age < 0.0 ? 0.0 : age);
	} else {
		f[STORE_SLOT_CARD_FIRST_SEEN] = vigil_value_missing();
		f[STORE_SLOT_CARD_AGE_DAYS] = vigil_value_missing();
	}
	for (int h = 0; h < 24; h++)
		total += p->hour_hist[h];
	if (total > 0) {
		uint32_t hour = store_hour_of(t);
		uint64_t near = (uint64_t)p->hour_hist[(hour + 23) % 24] + p->hour_hist[hour] +
		    p->hour_hist[(hour + 1) % 24];

		f[STORE_SLOT_CARD_HOUR_SHARE] = vigil_value_num((double)near / (double)total);
	} else {
		f[STORE_SLOT_CARD_HOUR_SHARE] = vigil_value_missing();
	}
	f[STORE_SLOT_CARD_COUNTRY_SEEN] = txn->country[0] != '\0'
	    ? vigil_value_bool(country_in(p, txn->country)) : vigil_value_missing();
	f[STORE_SLOT_CARD_MERCHANT_SEEN] = vigil_value_bool(
	    merchant_in(p, XXH64(txn->merchant_id, strlen(txn->merchant_id), 0)));
	/* The amount against the card's own month (issue 23; the week and the
	 * day are live: vel.card.amount_to_mean_7d, _24h). */
	f[STORE_SLOT_CARD_AMOUNT_TO_MEAN_30D] = p->count_30d > 0 && p->amount_mean_30d > 0.0
	    ? vigil_value_num(amount / p->amount_mean_30d) : vigil_value_missing();
}

vigil_err
store_profile_features(store_source src, const void *profile, vigil_value *f)
{
	vigil_value tmp[STORE_SLOT_COUNT_];
	vigil_txn txn;
	uint32_t i;

	/* profile_fill_card_txn also computes the DERIVED slots, which need a request: a
	 * blank one here, and only the src slots are copied out. */
	memset(&txn, 0, sizeof txn);
	for (i = 0; i < STORE_SLOT_COUNT_; i++)
		tmp[i] = vigil_value_missing();
	switch (src) {
	case STORE_SRC_CARD:
		profile_fill_card_txn(&txn, profile, tmp);
		break;
	case STORE_SRC_MERCHANT:
		profile_fill_merchant(profile, tmp);
		break;
	case STORE_SRC_TERMINAL:
		profile_fill_terminal(profile, tmp);
		break;
	default:
		return VIGIL_EINVAL;
	}
	for (i = 0; i < STORE_SLOT_COUNT_; i++)
		if (store_schema_field(i)->source == src)
			f[i] = tmp[i];
	return VIGIL_OK;
}

/* One field into o under its row's name; a TIME prints as RFC 3339 (null
 * if 0) under the name without its "_ms". */
static void
json_u32(json_t *o, const char *name, uint32_t v)
{
	json_object_set_new(o, name, json_integer((json_int_t)v));
}

static __attribute__((unused)) void /* no I64 row today */
json_i64(json_t *o, const char *name, int64_t v)
{
	json_object_set_new(o, name, json_integer((json_int_t)v));
}

static void
json_f64(json_t *o, const char *name, double v)
{
	json_object_set_new(o, name, json_real(v));
}

static void
json_time(json_t *o, const char *name, int64_t ms)
{
	char   key[64], ts[40];
	size_t n = strlen(name);

	if (n > 3 && n < sizeof key && strcmp(name + n - 3, "_ms") == 0)
		n -= 3;
	snprintf(key, sizeof key, "%.*s", (int)n, name);
	if (ms == 0) {
		json_object_set_new(o, key, json_null());
		return;
	}
	vigil_time_format_rfc3339(ms, ts, sizeof ts);
	json_object_set_new(o, key, json_string(ts));
}

#define JSON_U32  json_u32
#define JSON_F64  json_f64
#define JSON_I64  json_i64
#define JSON_TIME json_time

static json_t *
profile_card_json(const store_card_profile *p)
{
	json_t *o = json_object(), *a;
	char    hex[24];

#define PC(ctype, field, since, doc) JSON_##ctype(o, #field, p->field);
#include "schema.def"
#undef PC
	a = json_array();
	for (int h = 0; h < 24; h++)
		json_array_append_new(a, json_integer(p->hour_hist[h]));
	json_object_set_new(o, "hour_hist", a);
	a = json_array();
	for (unsigned i = 0; i < p->ncountries && i < STORE_CARD_MAX_COUNTRIES; i++)
		json_array_append_new(a, json_stringn(p->countries[i], 2));
	json_object_set_new(o, "countries", a);
	a = json_array(); /* xxh64 of the merchant ids, as the profile keeps them */
	for (unsigned i = 0; i < p->nmerchants && i < STORE_CARD_MAX_MERCHANTS; i++) {
		snprintf(hex, sizeof hex, "%016" PRIx64, p->merchants[i]);
		json_array_append_new(a, json_string(hex));
	}
	json_object_set_new(o, "merchant_hashes", a);
	return o;
}

static json_t *
profile_entity_json(const store_entity_profile *p)
{
	json_t *o = json_object();

#define PE(ctype, field, since, doc) JSON_##ctype(o, #field, p->field);
#include "schema.def"
#undef PE
	return o;
}

struct json_t *
store_profile_json(store_source src, const void *profile)
{
	switch (src) {
	case STORE_SRC_CARD:
		return profile_card_json(profile);
	case STORE_SRC_MERCHANT:
	case STORE_SRC_TERMINAL:
		return profile_entity_json(profile);
	default:
		return NULL;
	}
}
