/* SPDX-License-Identifier: MIT */
/*
 * common/txn.c - currencies (ISO 4217 minor units) and the validation of a
 * decoded transaction. Every entry point (nng, HTTP JSON, CSV) validates
 * through vigil_txn_validate, so the rules are the same everywhere.
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vigil.h"

/* Active ISO 4217 codes, sorted, with their minor-unit exponent. */
static const struct currency {
	char code[4];
	int8_t exp;
} currencies[] = {
	{"AED",2},{"AFN",2},{"ALL",2},{"AMD",2},{"ANG",2},{"AOA",2},{"ARS",2},{"AUD",2},
	{"AWG",2},{"AZN",2},{"BAM",2},{"BBD",2},{"BDT",2},{"BGN",2},{"BHD",3},{"BIF",0},
	{"BMD",2},{"BND",2},{"BOB",2},{"BRL",2},{"BSD",2},{"BTN",2},{"BWP",2},{"BYN",2},
	{"BZD",2},{"CAD",2},{"CDF",2},{"CHF",2},{"CLF",4},{"CLP",0},{"CNY",2},{"COP",2},
	{"CRC",2},{"CUP",2},{"CVE",2},{"CZK",2},{"DJF",0},{"DKK",2},{"DOP",2},{"DZD",2},
	{"EGP",2},{"ERN",2},{"ETB",2},{"EUR",2},{"FJD",2},{"FKP",2},{"GBP",2},{"GEL",2},
	{"GHS",2},{"GIP",2},{"GMD",2},{"GNF",0},{"GTQ",2},{"GYD",2},{"HKD",2},{"HNL",2},
	{"HTG",2},{"HUF",2},{"IDR",2},{"ILS",2},{"INR",2},{"IQD",3},{"IRR",2},{"ISK",0},
	{"JMD",2},{"JOD",3},{"JPY",0},{"KES",2},{"KGS",2},{"KHR",2},{"KMF",0},{"KPW",2},
	{"KRW",0},{"KWD",3},{"KYD",2},{"KZT",2},{"LAK",2},{"LBP",2},{"LKR",2},{"LRD",2},
	{"LSL",2},{"LYD",3},{"MAD",2},{"MDL",2},{"MGA",2},{"MKD",2},{"MMK",2},{"MNT",2},
	{"MOP",2},{"MRU",2},{"MUR",2},{"MVR",2},{"MWK",2},{"MXN",2},{"MYR",2},{"MZN",2},
	{"NAD",2},{"NGN",2},{"NIO",2},{"NOK",2},{"NPR",2},{"NZD",2},{"OMR",3},{"PAB",2},
	{"PEN",2},{"PGK",2},{"PHP",2},{"PKR",2},{"PLN",2},{"PYG",0},{"QAR",2},{"RON",2},
	{"RSD",2},{"RUB",2},{"RWF",0},{"SAR",2},{"SBD",2},{"SCR",2},{"SDG",2},{"SEK",2},
	{"SGD",2},{"SHP",2},{"SLE",2},{"SOS",2},{"SRD",2},{"SSP",2},{"STN",2},{"SVC",2},
	{"SYP",2},{"SZL",2},{"THB",2},{"TJS",2},{"TMT",2},{"TND",3},{"TOP",2},{"TRY",2},
	{"TTD",2},{"TWD",2},{"TZS",2},{"UAH",2},{"UGX",0},{"USD",2},{"UYI",0},{"UYU",2},
	{"UYW",4},{"UZS",2},{"VES",2},{"VND",0},{"VUV",0},{"WST",2},{"XAF",0},{"XCD",2},
	{"XOF",0},{"XPF",0},{"YER",2},{"ZAR",2},{"ZMW",2},{"ZWL",2},
};

/* The three bytes as one number that orders as strncmp(a, b, 3) does. */
static inline uint32_t
currency_key(const char *c)
{
	return (uint32_t)(unsigned char)c[0] << 16 | (uint32_t)(unsigned char)c[1] << 8 |
	    (unsigned char)c[2];
}

/* Called for every transaction (validation, features): a binary search on
 * integers, no strlen or strncmp. */
int
vigil_currency_exponent(const char *code)
{
	size_t   lo = 0, hi = sizeof currencies / sizeof currencies[0];
	uint32_t key;

	if (code == NULL || code[0] == '\0' || code[1] == '\0' || code[2] == '\0' ||
	    code[3] != '\0')
		return -1;
	key = currency_key(code);
	while (lo < hi) {
		size_t   mid = lo + (hi - lo) / 2;
		uint32_t k = currency_key(currencies[mid].code);

		if (k == key)
			return currencies[mid].exp;
		if (k < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

double
vigil_txn_amount(const vigil_txn *txn)
{
	static const double scale[] = { 1, 10, 100, 1000, 10000 };
	int e = vigil_currency_exponent(txn->currency);

	if (e < 0)
		e = 2;
	return (double)txn->amount_minor / scale[e];
}

/* Printable ASCII, no spaces, no quotes or backslashes (ids end up in CSV,
 * JSON and log lines). */
static bool
id_ok(const char *s, bool required)
{
	size_t n = strnlen(s, VIGIL_ID_MAX + 1);

	if (n == 0)
		return !required;
	if (n > VIGIL_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == ',')
			return false;
	}
	return true;
}

static bool
ip_ok(const char *s)
{
	size_t n = strnlen(s, VIGIL_IP_MAX + 1);

	if (n > VIGIL_IP_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isxdigit((unsigned char)s[i]) && s[i] != '.' && s[i] != ':')
			return false;
	return true;
}

#define FAIL(field, ...)                                          \
	do {                                                      \
		if (reterr_field != NULL)                         \
			*reterr_field = (field);                  \
		if (reterr_msg != NULL && msglen > 0)             \
			snprintf(reterr_msg, msglen, __VA_ARGS__); \
		return VIGIL_EINVAL;                              \
	} while (0)

vigil_err
vigil_txn_validate(const vigil_txn *txn, const char **reterr_field, char *reterr_msg,
    size_t msglen)
{
	/* 2000-01-01 and 2100-01-01 in Unix ms. */
	const int64_t t_min = 946684800000LL, t_max = 4102444800000LL;

	if (txn->txn_id[0] == '\0')
		FAIL("txn_id", "txn_id is required");
	if (!id_ok(txn->txn_id, true))
		FAIL("txn_id", "txn_id must be 1-%d printable ASCII characters without spaces, quotes, commas or backslashes", VIGIL_ID_MAX);
	if (txn->card_id[0] == '\0')
		FAIL("card_id", "card_id is required");
	if (!id_ok(txn->card_id, true))
		FAIL("card_id", "card_id must be 1-%d printable ASCII characters without spaces, quotes, commas or backslashes", VIGIL_ID_MAX);
	if (txn->merchant_id[0] == '\0')
		FAIL("merchant_id", "merchant_id is required");
	if (!id_ok(txn->merchant_id, true))
		FAIL("merchant_id", "merchant_id must be 1-%d printable ASCII characters without spaces, quotes, commas or backslashes", VIGIL_ID_MAX);
	if (!id_ok(txn->terminal_id, false))
		FAIL("terminal_id", "terminal_id must be at most %d printable ASCII characters without spaces, quotes, commas or backslashes", VIGIL_ID_MAX);
	if (!id_ok(txn->device_id, false))
		FAIL("device_id", "device_id must be at most %d printable ASCII characters without spaces, quotes, commas or backslashes", VIGIL_ID_MAX);
	if (!ip_ok(txn->ip))
		FAIL("ip", "ip must be a textual IPv4 or IPv6 address");
	if (txn->event_time_ms <= 0)
		FAIL("event_time_ms", "event_time_ms is required (Unix milliseconds, UTC)");
	if (txn->event_time_ms < t_min || txn->event_time_ms >= t_max)
		FAIL("event_time_ms", "event_time_ms %lld is outside [2000-01-01, 2100-01-01)", (long long)txn->event_time_ms);
	if (txn->currency[0] == '\0')
		FAIL("currency", "currency is required (ISO 4217 code such as \"EUR\")");
	if (vigil_currency_exponent(txn->currency) < 0)
		FAIL("currency", "currency \"%.3s\" is not an active ISO 4217 code", txn->currency);
	if (txn->amount_minor < 0)
		FAIL("amount_minor", "amount_minor must not be negative");
	if (txn->amount_minor >= 1000000000000000LL)
		FAIL("amount_minor", "amount_minor %lld is implausibly large (>= 10^15)", (long long)txn->amount_minor);
	if (txn->country[0] != '\0' &&
	    (!isupper((unsigned char)txn->country[0]) || !isupper((unsigned char)txn->country[1]) ||
	        txn->country[2] != '\0'))
		FAIL("country", "country must be an ISO 3166-1 alpha-2 code in upper case (\"FR\")");
	if (txn->mcc > 9999)
		FAIL("mcc", "mcc %u is not a 4-digit merchant category code", txn->mcc);
	if (txn->channel >= VIGIL_CHANNEL_COUNT_)
		FAIL("channel", "channel %u is not a known channel", txn->channel);
	if (txn->has_location) {
		if (!isfinite(txn->lat) || txn->lat < -90.0 || txn->lat > 90.0)
			FAIL("location.latitude", "latitude must be in [-90, 90]");
		if (!isfinite(txn->lon) || txn->lon < -180.0 || txn->lon > 180.0)
			FAIL("location.longitude", "longitude must be in [-180, 180]");
	}
	return VIGIL_OK;
}
