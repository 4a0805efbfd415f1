/* SPDX-License-Identifier: MIT */
/*
 * common/txn.c - currencies (ISO 4217 minor units) and the validation of a
 * decoded transaction. Every entry point (nng, HTTP JSON, CSV) validates
 * through vigil_txn_validate, so the rules are the same everywhere, and so
 * is the one spelling of an ip that velocity counts and the archive keeps.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vigil.h"

/*
 * Active ISO 4217 codes with their minor-unit exponent, as a table indexed by
 * the three letters (26^3 bytes, each the exponent + 1; 0: not an active
 * code). Called for every transaction (validation, features): one load.
 */
#define CUR_IX(a, b, c) (((a) - 'A') * 26 * 26 + ((b) - 'A') * 26 + ((c) - 'A'))
#define C(a, b, c, e) [CUR_IX(a, b, c)] = (e) + 1
static const int8_t currency_exp1[26 * 26 * 26] = {
	C('A','E','D',2), C('A','F','N',2), C('A','L','L',2), C('A','M','D',2), C('A','N','G',2),
	C('A','O','A',2), C('A','R','S',2), C('A','U','D',2), C('A','W','G',2), C('A','Z','N',2),
	C('B','A','M',2), C('B','B','D',2), C('B','D','T',2), C('B','G','N',2), C('B','H','D',3),
	C('B','I','F',0), C('B','M','D',2), C('B','N','D',2), C('B','O','B',2), C('B','R','L',2),
	C('B','S','D',2), C('B','T','N',2), C('B','W','P',2), C('B','Y','N',2), C('B','Z','D',2),
	C('C','A','D',2), C('C','D','F',2), C('C','H','F',2), C('C','L','F',4), C('C','L','P',0),
	C('C','N','Y',2), C('C','O','P',2), C('C','R','C',2), C('C','U','P',2), C('C','V','E',2),
	C('C','Z','K',2), C('D','J','F',0), C('D','K','K',2), C('D','O','P',2), C('D','Z','D',2),
	C('E','G','P',2), C('E','R','N',2), C('E','T','B',2), C('E','U','R',2), C('F','J','D',2),
	C('F','K','P',2), C('G','B','P',2), C('G','E','L',2), C('G','H','S',2), C('G','I','P',2),
	C('G','M','D',2), C('G','N','F',0), C('G','T','Q',2), C('G','Y','D',2), C('H','K','D',2),
	C('H','N','L',2), C('H','T','G',2), C('H','U','F',2), C('I','D','R',2), C('I','L','S',2),
	C('I','N','R',2), C('I','Q','D',3), C('I','R','R',2), C('I','S','K',0), C('J','M','D',2),
	C('J','O','D',3), C('J','P','Y',0), C('K','E','S',2), C('K','G','S',2), C('K','H','R',2),
	C('K','M','F',0), C('K','P','W',2), C('K','R','W',0), C('K','W','D',3), C('K','Y','D',2),
	C('K','Z','T',2), C('L','A','K',2), C('L','B','P',2), C('L','K','R',2), C('L','R','D',2),
	C('L','S','L',2), C('L','Y','D',3), C('M','A','D',2), C('M','D','L',2), C('M','G','A',2),
	C('M','K','D',2), C('M','M','K',2), C('M','N','T',2), C('M','O','P',2), C('M','R','U',2),
	C('M','U','R',2), C('M','V','R',2), C('M','W','K',2), C('M','X','N',2), C('M','Y','R',2),
	C('M','Z','N',2), C('N','A','D',2), C('N','G','N',2), C('N','I','O',2), C('N','O','K',2),
	C('N','P','R',2), C('N','Z','D',2), C('O','M','R',3), C('P','A','B',2), C('P','E','N',2),
	C('P','G','K',2), C('P','H','P',2), C('P','K','R',2), C('P','L','N',2), C('P','Y','G',0),
	C('Q','A','R',2), C('R','O','N',2), C('R','S','D',2), C('R','U','B',2), C('R','W','F',0),
	C('S','A','R',2), C('S','B','D',2), C('S','C','R',2), C('S','D','G',2), C('S','E','K',2),
	C('S','G','D',2), C('S','H','P',2), C('S','L','E',2), C('S','O','S',2), C('S','R','D',2),
	C('S','S','P',2), C('S','T','N',2), C('S','V','C',2), C('S','Y','P',2), C('S','Z','L',2),
	C('T','H','B',2), C('T','J','S',2), C('T','M','T',2), C('T','N','D',3), C('T','O','P',2),
	C('T','R','Y',2), C('T','T','D',2), C('T','W','D',2), C('T','Z','S',2), C('U','A','H',2),
	C('U','G','X',0), C('U','S','D',2), C('U','Y','I',0), C('U','Y','U',2), C('U','Y','W',4),
	C('U','Z','S',2), C('V','E','S',2), C('V','N','D',0), C('V','U','V',0), C('W','S','T',2),
	C('X','A','F',0), C('X','C','D',2), C('X','O','F',0), C('X','P','F',0), C('Y','E','R',2),
	C('Z','A','R',2), C('Z','M','W',2), C('Z','W','L',2),
};
#undef C

static inline bool
currency_letter(char c)
{
	return c >= 'A' && c <= 'Z';
}

int
vigil_currency_exponent(const char *code)
{
	if (code == NULL || !currency_letter(code[0]) || !currency_letter(code[1]) ||
	    !currency_letter(code[2]) || code[3] != '\0')
		return -1;
	return currency_exp1[CUR_IX(code[0], code[1], code[2])] - 1;
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

/*
 * Bytes allowed in ids (CL_ID: printable ASCII, no space, quote, comma or
 * backslash; ids end up in CSV, JSON and log lines), one row per 16 bytes.
 * NUL is not in the class.
 */
enum { CL_ID = 1 };
static const uint8_t byte_class[256] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
};

/* Whether s (an array of max + 1 bytes) holds a NUL-terminated string of at
 * most max bytes of class cl; reads at most max + 1 bytes. */
static inline bool
class_ok(const char *s, size_t max, uint8_t cl, size_t *ret_len)
{
	size_t i;

	for (i = 0; i <= max && (byte_class[(unsigned char)s[i]] & cl); i++)
		;
	*ret_len = i;
	return i <= max && s[i] == '\0';
}

bool
vigil_id_chars_ok(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (!(byte_class[(unsigned char)s[i]] & CL_ID))
			return false;
	return true;
}

static bool
id_ok(const char *s, bool required)
{
	size_t n;

	return class_ok(s, VIGIL_ID_MAX, CL_ID, &n) && (n > 0 || !required);
}

/* q as a dotted quad, NUL-terminated, at out (at most 16 bytes). */
static void
ip_put_quad(char *out, const uint8_t q[4])
{
	for (int j = 0; j < 4; j++) {
		if (q[j] >= 100)
			*out++ = (char)('0' + q[j] / 100);
		if (q[j] >= 10)
			*out++ = (char)('0' + q[j] / 10 % 10);
		*out++ = (char)('0' + q[j] % 10);
		*out++ = j < 3 ? '.' : '\0';
	}
}

/*
 * a (network order) as glibc's inet_ntop(AF_INET6) writes it: RFC 5952
 * (lower-case hex without leading zeros, the longest run of two or more
 * zero groups, the first of equals, as "::"), and ::a.b.c.d when the first
 * six groups are zero and the seventh is not. An IPv4-mapped address is
 * not passed here. Hand-written because inet_ntop, a sprintf per group,
 * costs about 340 ns more per IPv6 address on this path (vigil_ip_canonical
 * ~240 ns, ip6_format ~40 of them): `bench-ip --runs 7` (bench/common,
 * docs/BENCHMARKS.md, "Common"), release build, 2026-11-28.
 * tests/common checks it against inet_ntop on 70,000 addresses.
 */
static void
ip6_format(const uint8_t a[16], char *out)
{
	static const char hex[] = "0123456789abcdef";
	unsigned w[8];
	int best = -1, best_len = 0, run = 0;

	for (int i = 0; i < 8; i++) {
		w[i] = (unsigned)a[2 * i] << 8 | a[2 * i + 1];
		run = w[i] == 0 ? run + 1 : 0;
		if (run > best_len) {
			best_len = run;
			best = i - run + 1;
		}
	}
	if (best_len < 2)
		best = -1;
	for (int i = 0; i < 8; i++) {
		if (best >= 0 && i >= best && i < best + best_len) {
			if (i == best)
				*out++ = ':';
			continue;
		}
		if (i != 0)
			*out++ = ':';
		if (i == 6 && best == 0 && best_len == 6) {
			ip_put_quad(out, &a[12]);
			return;
		}
		for (int sh = 12; sh >= 0; sh -= 4)
			if ((w[i] >> sh) != 0 || sh == 0)
				*out++ = hex[(w[i] >> sh) & 15];
	}
	if (best >= 0 && best + best_len == 8)
		*out++ = ':';
	*out = '\0';
}

/*
 * ip: "" (absent), or an address inet_pton reads as AF_INET or AF_INET6, into
 * its one spelling (vigil.h) in ret_canon (VIGIL_IP_MAX + 1 bytes, left
 * untouched on failure), so that every spelling of an address is one entity.
 * inet_pton's dotted quad has no other spelling (no leading zeros, octets
 * to 255, four of them), so it is kept as it came; IPv6 is inet_ntop's
 * (ip6_format), an IPv4-mapped address the IPv4 it maps. A zone id
 * ("%eth0") does not parse. Reads at most VIGIL_IP_MAX + 1 bytes of s.
 */
bool
vigil_ip_canonical(const char *s, char *ret_canon)
{
	struct in6_addr a;
	size_t n = strnlen(s, VIGIL_IP_MAX + 1);

	if (n > VIGIL_IP_MAX)
		return false;
	if (n == 0 || inet_pton(AF_INET, s, &a) == 1) {
		memcpy(ret_canon, s, n + 1);
		return true;
	}
	if (inet_pton(AF_INET6, s, &a) != 1)
		return false;
	if (IN6_IS_ADDR_V4MAPPED(&a))
		ip_put_quad(ret_canon, &a.s6_addr[12]);
	else
		ip6_format(a.s6_addr, ret_canon);
	return true;
}

#define FAIL(field, ...)                                   \
	do {                                               \
		vigil_errinfo_set(reterr, (field), __VA_ARGS__); \
		return VIGIL_EINVAL;                       \
	} while (0)

vigil_err
vigil_txn_validate(vigil_txn *txn, vigil_errinfo *reterr)
{
	const int64_t t_min = VIGIL_TIME_MIN_MS, t_max = VIGIL_TIME_MAX_MS;
	char ip[VIGIL_IP_MAX + 1] = { 0 }; /* zero-padded: callers compare whole structs */

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
	if (!vigil_ip_canonical(txn->ip, ip))
		FAIL("ip", "ip \"%.*s\" is not an IPv4 or IPv6 address", VIGIL_IP_MAX, txn->ip);
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
		FAIL("channel", "channel %u is not a known channel (0-%d)", txn->channel,
		    VIGIL_CHANNEL_COUNT_ - 1);
	if (txn->has_location) {
		if (!isfinite(txn->lat) || txn->lat < -90.0 || txn->lat > 90.0)
			FAIL("location.latitude", "latitude must be a finite number in [-90, 90]");
		if (!isfinite(txn->lon) || txn->lon < -180.0 || txn->lon > 180.0)
			FAIL("location.longitude", "longitude must be a finite number in [-180, 180]");
	}
	memcpy(txn->ip, ip, sizeof ip);
	return VIGIL_OK;
}

vigil_err
vigil_txn_attrs_count_check(size_t n, vigil_errinfo *reterr)
{
	if (n > VIGIL_ATTR_MAX)
		FAIL("attributes", "%zu attributes, the limit is %d", n, VIGIL_ATTR_MAX);
	return VIGIL_OK;
}

vigil_err
vigil_txn_attr_check(const char *key, size_t klen, const char *value, size_t vlen,
    vigil_errinfo *reterr)
{
	/* the key is quoted as far as its first NUL and 64 bytes at most */
	if (klen == 0 || klen > VIGIL_ATTR_KEY_MAX)
		FAIL("attributes.key", "\"%.64s\": key must be 1-%d bytes", key,
		    VIGIL_ATTR_KEY_MAX);
	if (memchr(key, '\0', klen) != NULL)
		FAIL("attributes.key", "\"%.64s\": contains a NUL byte", key);
	if (vlen > VIGIL_ATTR_VALUE_MAX)
		FAIL("attributes.value", "\"%.64s\": value is %zu bytes, the limit is %d", key,
		    vlen, VIGIL_ATTR_VALUE_MAX);
	if (memchr(value, '\0', vlen) != NULL)
		FAIL("attributes.value", "\"%.64s\": contains a NUL byte", key);
	return VIGIL_OK;
}
