/* SPDX-License-Identifier: MIT */
/*
 * store/schema.c - the feature schema: every name a rule file can read, its
 * type and its slot in the feature vector. Slot order is the order of the
 * table below; the STORE_SLOT_* constants in schema.h must follow it. Meaning
 * of each feature: docs/features.md. Adding a feature: append it here and in
 * schema.h, fill it in features.c (batch) or live.c (velocity), document it.
 */
#include <string.h>

#include "store.h"
#include "schema.h"

#define N VIGIL_T_NUM
#define S VIGIL_T_STR
#define B VIGIL_T_BOOL

static const store_field schema_fields[] = {
	/* transaction fields */
	{ "amount",        N, "amount in major units of its currency" },
	{ "amount_minor",  N, "amount in integer minor units" },
	{ "currency",      S, "ISO 4217 code" },
	{ "mcc",           N, "merchant category code (0 = unknown)" },
	{ "country",       S, "ISO 3166-1 alpha-2 country of the merchant" },
	{ "channel",       S, "pos, ecom, atm, moto or unknown" },
	{ "card_id",       S, "card token" },
	{ "merchant_id",   S, "merchant id" },
	{ "terminal_id",   S, "terminal id (missing if absent)" },
	{ "device_id",     S, "device id (missing if absent)" },
	{ "ip",            S, "client IP address (missing if absent)" },
	{ "lat",           N, "latitude in degrees (missing if unknown)" },
	{ "lon",           N, "longitude in degrees (missing if unknown)" },
	{ "event_time",    N, "event time, Unix seconds UTC" },

	/* batch card profile (vigil-rebuild, as of last night) */
	{ "card.count_7d",            N, "transactions of the card, last 7 days" },
	{ "card.count_30d",           N, "transactions of the card, last 30 days" },
	{ "card.count_90d",           N, "transactions of the card, last 90 days" },
	{ "card.amount_sum_7d",       N, "sum of amounts, 7 days" },
	{ "card.amount_sum_30d",      N, "sum of amounts, 30 days" },
	{ "card.amount_sum_90d",      N, "sum of amounts, 90 days" },
	{ "card.amount_mean_7d",      N, "mean amount, 7 days" },
	{ "card.amount_mean_30d",     N, "mean amount, 30 days" },
	{ "card.amount_mean_90d",     N, "mean amount, 90 days" },
	{ "card.amount_std_30d",      N, "standard deviation of amounts, 30 days" },
	{ "card.amount_std_90d",      N, "standard deviation of amounts, 90 days" },
	{ "card.amount_p50_90d",      N, "median amount, 90 days" },
	{ "card.amount_p95_90d",      N, "95th percentile of amounts, 90 days" },
	{ "card.amount_p99_90d",      N, "99th percentile of amounts, 90 days" },
	{ "card.amount_max_90d",      N, "largest amount, 90 days" },
	{ "card.amount_zscore",       N, "(amount - mean_90d) / std_90d of this card" },
	{ "card.distinct_merchants_90d", N, "distinct merchants, 90 days" },
	{ "card.distinct_countries_90d", N, "distinct countries, 90 days" },
	{ "card.first_seen",          N, "first transaction in the archive, Unix seconds" },
	{ "card.age_days",            N, "days between first_seen and this transaction" },
	{ "card.fraud_count_90d",     N, "confirmed frauds of this card known at as-of, 90 days" },
	{ "card.hour_share",          N, "share of the card's 90-day transactions in this hour of day (+-1h)" },
	{ "card.country_seen",        B, "this country among the card's usual countries (batch)" },
	{ "card.merchant_seen",       B, "this merchant among the card's usual merchants (batch)" },

	/* batch merchant and terminal profiles */
	{ "merchant.count_7d",        N, "transactions at the merchant, 7 days" },
	{ "merchant.count_30d",       N, "transactions at the merchant, 30 days" },
	{ "merchant.amount_mean_30d", N, "mean amount at the merchant, 30 days" },
	{ "merchant.fraud_count_30d", N, "frauds at the merchant known at as-of, 30 days" },
	{ "merchant.fraud_rate_7d",   N, "fraud rate at the merchant, 7 days (smoothed)" },
	{ "merchant.fraud_rate_30d",  N, "fraud rate at the merchant, 30 days (smoothed)" },
	{ "merchant.fraud_rate_90d",  N, "fraud rate at the merchant, 90 days (smoothed)" },
	{ "terminal.count_30d",       N, "transactions at the terminal, 30 days" },
	{ "terminal.fraud_count_30d", N, "frauds at the terminal known at as-of, 30 days" },
	{ "terminal.fraud_rate_7d",   N, "fraud rate at the terminal, 7 days (smoothed)" },
	{ "terminal.fraud_rate_30d",  N, "fraud rate at the terminal, 30 days (smoothed)" },

	/* live velocity of the card (speed layer; this transaction excluded) */
	{ "vel.card.count_1m",        N, "card transactions in the last minute" },
	{ "vel.card.count_10m",       N, "card transactions in the last 10 minutes" },
	{ "vel.card.count_1h",        N, "card transactions in the last hour" },
	{ "vel.card.count_24h",       N, "card transactions in the last 24 hours" },
	{ "vel.card.count_7d",        N, "card transactions in the last 7 days" },
	{ "vel.card.sum_1m",          N, "sum of card amounts, last minute" },
	{ "vel.card.sum_10m",         N, "sum of card amounts, last 10 minutes" },
	{ "vel.card.sum_1h",          N, "sum of card amounts, last hour" },
	{ "vel.card.sum_24h",         N, "sum of card amounts, last 24 hours" },
	{ "vel.card.sum_7d",          N, "sum of card amounts, last 7 days" },
	{ "vel.card.small_count_10m", N, "card transactions under 5.00 (major units), last 10 minutes" },
	{ "vel.card.distinct_merchants_1h",  N, "distinct merchants of the card, last hour" },
	{ "vel.card.distinct_merchants_24h", N, "distinct merchants of the card, last 24 hours" },
	{ "vel.card.distinct_countries_24h", N, "distinct countries of the card, last 24 hours" },
	{ "vel.card.distinct_countries_7d",  N, "distinct countries of the card, last 7 days" },
	{ "vel.card.country_seen_7d", B, "this country among the card's live 7-day countries" },
	{ "vel.card.merchant_seen_7d",B, "this merchant among the card's live 7-day merchants" },
	{ "vel.card.device_seen_7d",  B, "this device among the card's live 7-day devices" },
	{ "vel.card.secs_since_last", N, "seconds since the card's previous transaction" },
	{ "vel.card.km_from_last",    N, "km from the card's previous located transaction" },
	{ "vel.card.kmh_from_last",   N, "speed in km/h needed from the previous located transaction" },

	/* live velocity of other entities */
	{ "vel.merchant.count_1m",    N, "transactions at the merchant, last minute" },
	{ "vel.merchant.count_1h",    N, "transactions at the merchant, last hour" },
	{ "vel.terminal.count_10m",   N, "transactions at the terminal, last 10 minutes" },
	{ "vel.terminal.distinct_cards_1h", N, "distinct cards at the terminal, last hour" },
	{ "vel.device.count_1h",      N, "transactions from the device, last hour" },
	{ "vel.device.distinct_cards_24h", N, "distinct cards on the device, last 24 hours" },
	{ "vel.ip.count_1h",          N, "transactions from the IP, last hour" },
	{ "vel.ip.distinct_cards_24h",N, "distinct cards from the IP, last 24 hours" },
};

#undef N
#undef S
#undef B

_Static_assert(sizeof schema_fields / sizeof schema_fields[0] == STORE_SLOT_COUNT_,
    "schema.h slot enum and schema.c table disagree");

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
}
