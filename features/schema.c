/* SPDX-License-Identifier: MIT */
/*
 * features/schema.c - the feature schema: every name a rule file or the model
 * can read, its type, source and slot, all from the one table in
 * schema.def; the model's input layout; and the request-derived slots
 * (store_features_from_txn); and feature masks, sets of slots.
 * Meaning of each feature: docs/features.md.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "schema.h"
#include "slots.h"

static const store_field schema_fields[] = {
#define F(slot, name, type, source, model, doc) \
	{ name, VIGIL_T_##type, doc, STORE_SRC_##source, model },
#include "schema.def"
#undef F
};

_Static_assert(sizeof schema_fields / sizeof schema_fields[0] == STORE_SLOT_COUNT_,
    "schema.h slot enum and schema.c table disagree");
_Static_assert(STORE_SLOT_COUNT_ <= 64 * STORE_FEATURE_MASK_WORDS,
    "more features than a store_feature_mask holds");

uint32_t
store_schema_nfields(void)
{
	return STORE_SLOT_COUNT_;
}

const store_field *
store_schema_field(uint32_t slot)
{
	if (slot >= STORE_SLOT_COUNT_)
		return NULL;
	return &schema_fields[slot];
}

const char *
store_source_name(store_source src)
{
	static const char *const names[] = { "txn", "card", "merchant", "terminal", "derived",
		"live", "score" };

	return (unsigned)src < sizeof names / sizeof names[0] ? names[src] : "?";
}

static uint32_t schema_model_slots[STORE_MODEL_MAX_INPUTS];
static uint32_t schema_model_n;
static uint64_t schema_model_layout;
static pthread_once_t schema_model_once = PTHREAD_ONCE_INIT;

static void
schema_model_init(void)
{
	char   buf[STORE_SLOT_COUNT_ * 64];
	size_t len = 0;

	for (uint32_t i = 0; i < STORE_SLOT_COUNT_; i++) {
		size_t n;

		if (!schema_fields[i].model_input)
			continue;
		schema_model_slots[schema_model_n++] = i;
		n = strlen(schema_fields[i].name);
		memcpy(buf + len, schema_fields[i].name, n); /* names are < 63 bytes */
		buf[len + n] = '\n';
		len += n + 1;
	}
	schema_model_layout = XXH64(buf, len, 0);
}

uint32_t
store_schema_model_inputs(const uint32_t **ret_slots)
{
	pthread_once(&schema_model_once, schema_model_init);
	*ret_slots = schema_model_slots;
	return schema_model_n;
}

uint64_t
store_schema_model_layout(void)
{
	pthread_once(&schema_model_once, schema_model_init);
	return schema_model_layout;
}

vigil_err
store_schema_find(const char *name, uint32_t *ret_slot)
{
	for (uint32_t i = 0; i < STORE_SLOT_COUNT_; i++) {
		if (strcmp(schema_fields[i].name, name) == 0) {
			*ret_slot = i;
			return VIGIL_OK;
		}
	}
	return VIGIL_ENOTFOUND;
}

/* The name ids: by slot, and as (id, slot) pairs sorted by id for the
 * readers' lookup (a decoded record resolves each of its features). */
typedef struct schema_id {
	uint32_t id, slot;
} schema_id;

static uint32_t schema_ids[STORE_SLOT_COUNT_];
static schema_id schema_ids_sorted[STORE_SLOT_COUNT_];
static pthread_once_t schema_ids_once = PTHREAD_ONCE_INIT;

static int
schema_id_cmp(const void *a, const void *b)
{
	uint32_t x = ((const schema_id *)a)->id, y = ((const schema_id *)b)->id;

	return (x > y) - (x < y);
}

static void
schema_ids_init(void)
{
	for (uint32_t i = 0; i < STORE_SLOT_COUNT_; i++) {
		const char *name = schema_fields[i].name;

		schema_ids[i] = XXH32(name, strlen(name), 0);
		schema_ids_sorted[i] = (schema_id){ schema_ids[i], i };
	}
	qsort(schema_ids_sorted, STORE_SLOT_COUNT_, sizeof schema_ids_sorted[0], schema_id_cmp);
}

uint32_t
store_schema_name_id(uint32_t slot)
{
	if (slot >= STORE_SLOT_COUNT_)
		return 0;
	pthread_once(&schema_ids_once, schema_ids_init);
	return schema_ids[slot];
}

vigil_err
store_schema_find_id(uint32_t id, uint32_t *ret_slot)
{
	schema_id key = { id, 0 };
	const schema_id *hit;

	pthread_once(&schema_ids_once, schema_ids_init);
	hit = bsearch(&key, schema_ids_sorted, STORE_SLOT_COUNT_, sizeof key, schema_id_cmp);
	if (hit == NULL || id == 0)
		return VIGIL_ENOTFOUND;
	*ret_slot = hit->slot;
	return VIGIL_OK;
}

const char *
store_schema_name_of(uint32_t id, char buf[STORE_UNKNOWN_NAME_LEN])
{
	uint32_t slot;

	if (store_schema_find_id(id, &slot) == VIGIL_OK)
		return schema_fields[slot].name;
	snprintf(buf, STORE_UNKNOWN_NAME_LEN, "#%08x", id);
	return buf;
}

uint32_t
store_hour_of(int64_t ms)
{
	int64_t h = ms / 3600000;

	if (ms < 0 && ms % 3600000 != 0)
		h--;
	h %= 24;
	return (uint32_t)(h < 0 ? h + 24 : h);
}

void
store_features_from_txn(const vigil_txn *txn, vigil_value *f, uint32_t n)
{
	vigil_value tmp[STORE_SLOT_EVENT_TIME + 1];

	/* Build into tmp so a short vector still gets a consistent prefix. */
	tmp[STORE_SLOT_AMOUNT] = vigil_value_num(vigil_txn_amount(txn));
	tmp[STORE_SLOT_AMOUNT_MINOR] = vigil_value_num((double)txn->amount_minor);
	tmp[STORE_SLOT_CURRENCY] = vigil_value_str(txn->currency, (uint32_t)strlen(txn->currency));
	tmp[STORE_SLOT_MCC] = txn->mcc ? vigil_value_num(txn->mcc) : vigil_value_missing();
	tmp[STORE_SLOT_COUNTRY] = txn->country[0]
	    ? vigil_value_str(txn->country, (uint32_t)strlen(txn->country)) : vigil_value_missing();
	{
		const char *ch = vigil_channel_name((vigil_channel)txn->channel);
		tmp[STORE_SLOT_CHANNEL] = vigil_value_str(ch, (uint32_t)strlen(ch));
	}
	tmp[STORE_SLOT_CARD_ID] = vigil_value_str(txn->card_id, (uint32_t)strlen(txn->card_id));
	tmp[STORE_SLOT_MERCHANT_ID] = vigil_value_str(txn->merchant_id, (uint32_t)strlen(txn->merchant_id));
	tmp[STORE_SLOT_TERMINAL_ID] = txn->terminal_id[0]
	    ? vigil_value_str(txn->terminal_id, (uint32_t)strlen(txn->terminal_id)) : vigil_value_missing();
	tmp[STORE_SLOT_DEVICE_ID] = txn->device_id[0]
	    ? vigil_value_str(txn->device_id, (uint32_t)strlen(txn->device_id)) : vigil_value_missing();
	tmp[STORE_SLOT_IP] = txn->ip[0]
	    ? vigil_value_str(txn->ip, (uint32_t)strlen(txn->ip)) : vigil_value_missing();
	tmp[STORE_SLOT_LAT] = txn->has_location ? vigil_value_num(txn->lat) : vigil_value_missing();
	tmp[STORE_SLOT_LON] = txn->has_location ? vigil_value_num(txn->lon) : vigil_value_missing();
	tmp[STORE_SLOT_EVENT_TIME] = vigil_value_num((double)txn->event_time_ms / 1000.0);

	if (n <= STORE_SLOT_EVENT_TIME) {
		memcpy(f, tmp, n * sizeof *f);
		return;
	}
	memcpy(f, tmp, sizeof tmp);
	/* A missing value is all zero bytes (present false, no number, no
	 * string); one memset of the rest costs a fraction of a store per slot. */
	memset(f + STORE_SLOT_EVENT_TIME + 1, 0, (n - STORE_SLOT_EVENT_TIME - 1) * sizeof *f);
	if (n > STORE_SLOT_HOUR)
		f[STORE_SLOT_HOUR] = vigil_value_num((double)store_hour_of(txn->event_time_ms));
}

/* Feature masks (mask.h): sets of schema slots. */

void
store_feature_mask_none(store_feature_mask *ret_m)
{
	memset(ret_m, 0, sizeof *ret_m);
}

void
store_feature_mask_set(store_feature_mask *m, uint32_t slot)
{
	if (slot < STORE_SLOT_COUNT_)
		m->w[slot >> 6] |= 1ULL << (slot & 63);
}

bool
store_feature_mask_has(const store_feature_mask *m, uint32_t slot)
{
	return slot < STORE_SLOT_COUNT_ && (m->w[slot >> 6] >> (slot & 63) & 1) != 0;
}

void
store_feature_mask_all(store_feature_mask *ret_m)
{
	store_feature_mask_none(ret_m);
	for (uint32_t i = 0; i < STORE_SLOT_COUNT_; i++)
		store_feature_mask_set(ret_m, i);
}
