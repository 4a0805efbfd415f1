/* SPDX-License-Identifier: MIT */
/*
 * store/profile.c - what schema.def's profile rows generate besides the
 * structs (gen.h) and the codec (features.c): the fills of the FP rows
 * (a stored field read as a feature) and the JSON of a stored profile,
 * every PC/PE field by its name, that vigil-rebuild --dump and the console
 * print.
 */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "gen.h"
#include "profile_int.h"
#include "schema_int.h"

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
