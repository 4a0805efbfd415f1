/* SPDX-License-Identifier: MIT */
/*
 * common/json.c - vigil_txn to and from JSON objects (jansson), with one
 * error (field and reason) for the first bad field. Semantics (required fields,
 * ranges) are left to vigil_txn_validate so every entry point agrees.
 */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "vigil.h"
#include "vigil_json.h"

/* field: the key (or path) the error is about, "" for the object itself;
 * the message says what is wrong, not where (vigil_errinfo_format prints
 * "currency: ..."). */
#define JFAIL(field, ...)                                \
	do {                                             \
		vigil_errinfo_set(reterr, field, __VA_ARGS__); \
		return VIGIL_EINVAL;                     \
	} while (0)

static vigil_err
get_str(const json_t *obj, const char *key, char *dst, size_t cap, vigil_errinfo *reterr)
{
	const json_t *v = json_object_get(obj, key);
	const char *s;
	size_t n;

	if (v == NULL || json_is_null(v))
		return VIGIL_OK;
	if (!json_is_string(v))
		JFAIL(key, "must be a string");
	s = json_string_value(v);
	n = json_string_length(v);
	if (n >= cap)
		JFAIL(key, "longer than %zu bytes", cap - 1);
	if (memchr(s, '\0', n) != NULL)
		JFAIL(key, "contains a NUL byte");
	memcpy(dst, s, n + 1);
	return VIGIL_OK;
}

/*
 * Numbers: every numeric field takes a JSON number or a string holding one
 * (exports often quote every value), read the same way for each field
 * (docs/protocol.md, "JSON"): the whole string must be the number, in
 * JSON's own number syntax (no blanks, no "+", no hex, no "inf"/"nan"), so
 * "60.2" is 60.2 wherever 60.2 is accepted, and "60.2x" is refused
 * everywhere.
 */
static bool
num_text_ok(const char *s, bool integer)
{
	const char *p = s;

	if (*p == '-')
		p++;
	if (*p < '0' || *p > '9')
		return false;
	while (*p >= '0' && *p <= '9')
		p++;
	if (integer)
		return *p == '\0';
	if (*p == '.') {
		p++;
		if (*p < '0' || *p > '9')
			return false;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	if (*p == 'e' || *p == 'E') {
		p++;
		if (*p == '+' || *p == '-')
			p++;
		if (*p < '0' || *p > '9')
			return false;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	return *p == '\0';
}

static vigil_err
get_int(const json_t *obj, const char *key, int64_t *dst, bool *ret_found, vigil_errinfo *reterr)
{
	const json_t *v = json_object_get(obj, key);

	*ret_found = false;
	if (v == NULL || json_is_null(v))
		return VIGIL_OK;
	if (json_is_string(v)) {
		const char *s = json_string_value(v);
		long long x;

		errno = 0;
		x = num_text_ok(s, true) ? strtoll(s, NULL, 10) : 0;
		if (!num_text_ok(s, true) || errno != 0)
			JFAIL(key, "\"%.40s%s\" is not an integer", s,
			    strlen(s) > 40 ? "..." : "");
		*dst = x;
		*ret_found = true;
		return VIGIL_OK;
	}
	if (!json_is_integer(v))
		JFAIL(key, "must be an integer (a JSON number or a string of digits)");
	*dst = json_integer_value(v);
	*ret_found = true;
	return VIGIL_OK;
}

/* name: the field's path in errors ("location.latitude"). */
static vigil_err
get_double(const json_t *obj, const char *key, const char *name, double *dst, bool *ret_found,
    vigil_errinfo *reterr)
{
	const json_t *v = json_object_get(obj, key);

	*ret_found = false;
	if (v == NULL || json_is_null(v))
		return VIGIL_OK;
	if (json_is_string(v)) {
		const char *s = json_string_value(v);
		double x;

		errno = 0;
		x = num_text_ok(s, false) ? strtod(s, NULL) : 0;
		if (!num_text_ok(s, false) || errno != 0 || !isfinite(x))
			JFAIL(name, "\"%.40s%s\" is not a number", s,
			    strlen(s) > 40 ? "..." : "");
		*dst = x;
		*ret_found = true;
		return VIGIL_OK;
	}
	if (!json_is_number(v))
		JFAIL(name, "must be a number (a JSON number or a string holding one)");
	*dst = json_number_value(v);
	*ret_found = true;
	return VIGIL_OK;
}

/* "12.34" in major units -> minor units, exactly (no binary floating point). */
static vigil_err
decimal_to_minor(const char *s, int exp, int64_t *ret)
{
	int64_t whole = 0, frac = 0, scale = 1;
	int nfrac = 0;
	const char *p = s;

	if (*p == '\0')
		return VIGIL_EINVAL;
	if (*p == '-')
		return VIGIL_EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (whole > 100000000000000LL)
			return VIGIL_ETOOBIG;
		whole = whole * 10 + (*p - '0');
	}
	if (p == s)
		return VIGIL_EINVAL;
	if (*p == '.') {
		p++;
		for (; *p >= '0' && *p <= '9'; p++) {
			if (nfrac >= exp) {
				if (*p != '0')
					return VIGIL_EINVAL; /* more precision than the currency has */
				continue;
			}
			frac = frac * 10 + (*p - '0');
			nfrac++;
		}
	}
	if (*p != '\0')
		return VIGIL_EINVAL;
	for (; nfrac < exp; nfrac++)
		frac *= 10;
	for (int i = 0; i < exp; i++)
		scale *= 10;
	/* whole < 10^15 + 10 here; with 4 decimals (CLF, UYW) that times 10^4
	 * would not fit in int64. */
	if (whole > (INT64_MAX - frac) / scale)
		return VIGIL_ETOOBIG;
	*ret = whole * scale + frac;
	return VIGIL_OK;
}

/* "amount" (v, not null) in major units of currency -> minor units. */
static vigil_err
get_amount(const json_t *v, const char *currency, int64_t *ret, vigil_errinfo *reterr)
{
	int exp = vigil_currency_exponent(currency);
	char buf[64];
	const char *src = buf;
	vigil_err rv;

	if (currency[0] == '\0')
		JFAIL("currency", "required to read amount (its minor units)");
	if (exp < 0)
		JFAIL("currency", "\"%s\" is not an active ISO 4217 code (needed to read amount)",
		    currency);
	if (json_is_string(v)) {
		src = json_string_value(v); /* read whole, never cut to buf */
	} else if (json_is_integer(v)) {
		snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(v));
	} else if (json_is_real(v)) {
		/* A JSON real is binary floating point: 12.34 arrives as
		 * 12.339999...; only that representation error is rounded away.
		 * A real with more decimals than the currency has (12.345 EUR,
		 * 0.001 EUR) is refused, as the same text in a string is, instead
		 * of being rounded to another amount. The tolerance is a
		 * millionth of a minor unit, or the double's own precision at
		 * that size. Send a string for exact decimal input. */
		double x = json_real_value(v), d = x * pow(10, exp), r;

		if (!isfinite(d) || d < 0 || d >= 1e15)
			JFAIL("amount", "out of range");
		r = nearbyint(d);
		if (fabs(d - r) > fmax(1e-6, d * 4 * DBL_EPSILON))
			JFAIL("amount", "%.17g has more decimals than %s has (%d); send the amount as "
			    "a string for exact decimals", x, currency, exp);
		*ret = (int64_t)r;
		return VIGIL_OK;
	} else {
		JFAIL("amount", "must be a decimal number or string in major units");
	}
	/* JSON's number syntax, as every other field ("12." and ".5" are not
	 * numbers anywhere), without an exponent: a decimal read exactly */
	rv = num_text_ok(src, false) && strpbrk(src, "eE") == NULL ?
	    decimal_to_minor(src, exp, ret) : VIGIL_EINVAL;
	if (rv == VIGIL_ETOOBIG)
		JFAIL("amount", "\"%.40s\" is too large", src);
	if (rv != VIGIL_OK)
		JFAIL("amount", "\"%.40s%s\" is not a non-negative decimal with at most %d "
		    "decimals", src, strlen(src) > 40 ? "..." : "", exp);
	return VIGIL_OK;
}

/* "attributes": {"key": "value", ...}, checked as vigild checks
 * Transaction.attributes (vigil_txn_attr_check) and then dropped, as vigild drops
 * them: no reader keeps what vigild would not. */
static vigil_err
check_attributes(const json_t *obj, vigil_errinfo *reterr)
{
	const json_t *a = json_object_get(obj, "attributes"), *v;
	const char *key;
	size_t kl;

	if (a == NULL || json_is_null(a))
		return VIGIL_OK;
	if (!json_is_object(a))
		JFAIL("attributes", "must be an object of strings ({\"key\": \"value\"})");
	if (vigil_txn_attrs_count_check(json_object_size(a), reterr) != VIGIL_OK)
		return VIGIL_EINVAL;
	json_object_keylen_foreach((json_t *)a, key, kl, v) {
		bool str = json_is_string(v);

		/* the key first, as the Python client does */
		if (vigil_txn_attr_check(key, kl, str ? json_string_value(v) : "",
		        str ? json_string_length(v) : 0, reterr) != VIGIL_OK)
			return VIGIL_EINVAL;
		if (!str)
			JFAIL("attributes.value", "\"%.64s\": value must be a string", key);
	}
	return VIGIL_OK;
}

static bool
json_has(const json_t *obj, const char *key)
{
	const json_t *v = json_object_get(obj, key);

	return v != NULL && !json_is_null(v);
}

vigil_err
vigil_txn_from_json(const json_t *obj, vigil_txn *ret, vigil_errinfo *reterr)
{
	vigil_txn t;
	vigil_err rv;
	bool found;
	int64_t iv;
	const json_t *v;

	if (!json_is_object(obj))
		JFAIL("", "the transaction must be a JSON object");
	memset(&t, 0, sizeof t);
	/* a misspelt key ("channnel") must not pass for an absent one: the
	 * transaction would be scored and recorded without it */
	{
		static const char *const keys[] = {
			"txn_id", "card_id", "merchant_id", "terminal_id", "device_id", "ip",
			"currency", "country", "event_time_ms", "event_time", "amount_minor",
			"amount", "mcc", "channel", "location", "lat", "lon", "attributes", NULL,
		};
		const char *key = vigil_json_unknown_key(obj, keys, NULL, 0);

		if (key != NULL)
			JFAIL(key, "unknown key (docs/protocol.md lists a transaction's)");
	}

#define STR(key, dst)                                                             \
	if ((rv = get_str(obj, key, dst, sizeof dst, reterr)) != VIGIL_OK) \
		return rv;
	STR("txn_id", t.txn_id)
	STR("card_id", t.card_id)
	STR("merchant_id", t.merchant_id)
	STR("terminal_id", t.terminal_id)
	STR("device_id", t.device_id)
	STR("ip", t.ip)
	STR("currency", t.currency)
	STR("country", t.country)
#undef STR

	/* "event_time" and "amount" are second spellings: given with the
	 * first, they must agree (never one picked silently). */
	if ((rv = get_int(obj, "event_time_ms", &t.event_time_ms, &found, reterr)) != VIGIL_OK)
		return rv;
	if ((v = json_object_get(obj, "event_time")) != NULL && !json_is_null(v)) {
		int64_t ms;

		if (!json_is_string(v) || vigil_time_parse_rfc3339(json_string_value(v), &ms) != VIGIL_OK)
			JFAIL("event_time", "must be an RFC 3339 time such as \"2026-11-21T10:00:00Z\"");
		if (found && ms != t.event_time_ms)
			JFAIL("event_time", "\"%.40s\" is not event_time_ms %lld; give one or the same time",
			    json_string_value(v), (long long)t.event_time_ms);
		t.event_time_ms = ms;
	}

	if ((rv = get_int(obj, "amount_minor", &t.amount_minor, &found, reterr)) != VIGIL_OK)
		return rv;
	if ((v = json_object_get(obj, "amount")) != NULL && !json_is_null(v)) {
		int64_t minor;

		if ((rv = get_amount(v, t.currency, &minor, reterr)) != VIGIL_OK)
			return rv;
		if (found && minor != t.amount_minor)
			JFAIL("amount", "%lld minor units, not amount_minor %lld; give one or the same "
			    "amount", (long long)minor, (long long)t.amount_minor);
		t.amount_minor = minor;
	}

	if ((rv = get_int(obj, "mcc", &iv, &found, reterr)) != VIGIL_OK)
		return rv;
	if (found) {
		if (iv < 0 || iv > 9999) /* in the words of the wire's check (txn.c) */
			JFAIL("mcc", "mcc %lld is not a 4-digit merchant category code", (long long)iv);
		t.mcc = (uint32_t)iv;
	}

	v = json_object_get(obj, "channel");
	if (v != NULL && !json_is_null(v)) {
		vigil_channel ch;
		if (json_is_string(v)) {
			const char *cs = json_string_value(v);

			/* a word, or its number as a string like any number */
			if (num_text_ok(cs, true) && strlen(cs) == 1 && cs[0] - '0' < VIGIL_CHANNEL_COUNT_)
				ch = (vigil_channel)(cs[0] - '0');
			else if (vigil_channel_parse(cs, &ch) != VIGIL_OK)
				JFAIL("channel", "must be one of pos, ecom, atm, moto, unknown");
		} else if (json_is_integer(v)) {
			if (json_integer_value(v) < 0 || json_integer_value(v) >= VIGIL_CHANNEL_COUNT_)
				JFAIL("channel", "channel %lld is not a known channel (0-%d)",
				    (long long)json_integer_value(v), VIGIL_CHANNEL_COUNT_ - 1);
			ch = (vigil_channel)json_integer_value(v);
		} else {
			JFAIL("channel", "must be one of pos, ecom, atm, moto, unknown");
		}
		t.channel = (uint8_t)ch;
	}

	{
		double lat = 0, lon = 0;
		bool flat, flon;
		const json_t *loc = json_object_get(obj, "location");

		if ((rv = get_double(obj, "lat", "lat", &lat, &flat, reterr)) != VIGIL_OK)
			return rv;
		if ((rv = get_double(obj, "lon", "lon", &lon, &flon, reterr)) != VIGIL_OK)
			return rv;
		if (loc != NULL && !json_is_null(loc)) {
			double la = 0, lo = 0;
			bool fla, flo;

			static const char *const lkeys[] = { "latitude", "longitude", NULL };
			const char *lkey;

			if (!json_is_object(loc))
				JFAIL("location", "must be an object {\"latitude\": .., \"longitude\": ..}");
			if ((lkey = vigil_json_unknown_key(loc, lkeys, NULL, 0)) != NULL) {
				char path[sizeof reterr->field];

				snprintf(path, sizeof path, "location.%.64s", lkey);
				JFAIL(path, "unknown key (location holds latitude and longitude)");
			}
			if ((rv = get_double(loc, "latitude", "location.latitude", &la, &fla, reterr)) != VIGIL_OK)
				return rv;
			if ((rv = get_double(loc, "longitude", "location.longitude", &lo, &flo, reterr)) != VIGIL_OK)
				return rv;
			/* lat/lon beside it: the same point or refused. */
			if ((flat || flon) && (flat != fla || flon != flo || lat != la || lon != lo))
				JFAIL("location", "lat/lon is another point than location; give one");
			lat = la;
			lon = lo;
			flat = fla;
			flon = flo;
		}
		if (flat != flon)
			JFAIL("location", "latitude and longitude go together");
		if (flat) {
			t.has_location = true;
			t.lat = lat;
			t.lon = lon;
		}
	}
	if ((rv = check_attributes(obj, reterr)) != VIGIL_OK)
		return rv;
	*ret = t;
	return VIGIL_OK;
}

const char *
vigil_txn_json_key(const json_t *obj, const char *field)
{
	static const char *const second[][2] = {
		{ "event_time_ms", "event_time" },
		{ "amount_minor", "amount" },
	};

	for (size_t i = 0; i < sizeof second / sizeof second[0]; i++)
		if (strcmp(field, second[i][0]) == 0 && !json_has(obj, second[i][0]) &&
		    json_has(obj, second[i][1]))
			return second[i][1];
	return field;
}

vigil_err
vigil_txn_from_json_now(const json_t *obj, int64_t now_ms, vigil_txn *ret, vigil_errinfo *reterr)
{
	vigil_err rv = vigil_txn_from_json(obj, ret, reterr);

	if (rv == VIGIL_OK && !json_has(obj, "event_time") && !json_has(obj, "event_time_ms"))
		ret->event_time_ms = now_ms;
	/* required (docs/protocol.md): only JSON tells an absent amount from 0,
	 * which would be scored and archived as a transaction of 0.00 */
	if (rv == VIGIL_OK && !json_has(obj, "amount_minor") && !json_has(obj, "amount")) {
		vigil_errinfo_set(reterr, "amount_minor", "required (or amount, in major units)");
		rv = VIGIL_EINVAL;
	}
	return rv;
}

json_t *
vigil_txn_to_json(const vigil_txn *txn)
{
	json_t *o = json_object();
	char ts[40];

	if (o == NULL)
		return NULL;
	vigil_time_format_rfc3339(txn->event_time_ms, ts, sizeof ts);
	json_object_set_new(o, "txn_id", json_string(txn->txn_id));
	json_object_set_new(o, "event_time_ms", json_integer(txn->event_time_ms));
	json_object_set_new(o, "event_time", json_string(ts));
	json_object_set_new(o, "card_id", json_string(txn->card_id));
	json_object_set_new(o, "merchant_id", json_string(txn->merchant_id));
	if (txn->terminal_id[0])
		json_object_set_new(o, "terminal_id", json_string(txn->terminal_id));
	json_object_set_new(o, "amount_minor", json_integer(txn->amount_minor));
	json_object_set_new(o, "currency", json_string(txn->currency));
	if (txn->mcc)
		json_object_set_new(o, "mcc", json_integer(txn->mcc));
	if (txn->country[0])
		json_object_set_new(o, "country", json_string(txn->country));
	json_object_set_new(o, "channel", json_string(vigil_channel_name((vigil_channel)txn->channel)));
	if (txn->device_id[0])
		json_object_set_new(o, "device_id", json_string(txn->device_id));
	if (txn->ip[0])
		json_object_set_new(o, "ip", json_string(txn->ip));
	if (txn->has_location) {
		json_t *loc = json_object();
		json_object_set_new(loc, "latitude", json_real(txn->lat));
		json_object_set_new(loc, "longitude", json_real(txn->lon));
		json_object_set_new(o, "location", loc);
	}
	return o;
}

const char *
vigil_error_code(vigil_err err)
{
	switch (err) {
	case VIGIL_EINVAL:
	case VIGIL_ESYNTAX:
	case VIGIL_ETYPE:
	case VIGIL_ECORRUPT:   return "INVALID";
	case VIGIL_ENOTFOUND:  return "NOT_FOUND";
	case VIGIL_ETOOBIG:    return "TOO_BIG";
	case VIGIL_EPROTO:     return "MALFORMED";
	case VIGIL_ELIMIT:     return "OVERLOADED";
	case VIGIL_EAGAIN:
	case VIGIL_ECLOSED:
	case VIGIL_ETIMEDOUT:  return "UNAVAILABLE";
	case VIGIL_EBUSY:      return "BUSY";
	case VIGIL_EEXIST:
	case VIGIL_ECONFLICT:  return "CONFLICT";
	default:               return "INTERNAL";
	}
}

json_t *
vigil_error_json(const char *code, const vigil_errinfo *e)
{
	json_t *o = json_object(), *where = json_object();
	char msg[sizeof e->msg];

	if (o == NULL || where == NULL)
		goto fail;
	/* one line of UTF-8 whatever the filler did: jansson refuses others */
	snprintf(msg, sizeof msg, "%s", e != NULL ? e->msg : "");
	vigil_utf8_line(msg);
	if (json_object_set_new(o, "code", json_string(code)) != 0 ||
	    json_object_set_new(o, "message", json_string(msg)) != 0)
		goto fail;
	if (e != NULL) {
		if (e->field[0] != '\0')
			json_object_set_new(where, "field", json_stringn(e->field, strnlen(e->field,
			    sizeof e->field)));
		if (e->file[0] != '\0')
			json_object_set_new(where, "file", json_stringn(e->file, strnlen(e->file,
			    sizeof e->file)));
		if (e->line > 0)
			json_object_set_new(where, "line", json_integer(e->line));
		if (e->line > 0 && e->col > 0)
			json_object_set_new(where, "column", json_integer(e->col));
		if (e->offset != VIGIL_NOPOS)
			json_object_set_new(where, "offset", json_integer((json_int_t)e->offset));
	}
	if (json_object_size(where) > 0)
		json_object_set_new(o, "where", where);
	else
		json_decref(where);
	return o;
fail:
	json_decref(where);
	json_decref(o);
	return NULL;
}

json_t *
vigil_error_body(const char *code, const vigil_errinfo *e)
{
	json_t *err = vigil_error_json(code, e);

	return err != NULL ? json_pack("{s:o}", "error", err) : NULL;
}

const char *
vigil_json_err_where(const char *name, const json_error_t *e, char *buf, size_t cap)
{
	if (e->line >= 1 && e->column >= 1)
		snprintf(buf, cap, "%s:%d:%d", name, e->line, e->column);
	else
		snprintf(buf, cap, "%s", name);
	return buf;
}

json_t *
vigil_json_load_path(const char *path, size_t flags, json_error_t *err)
{
	struct stat st;

	if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
		memset(err, 0, sizeof *err);
		err->line = err->column = -1;
		snprintf(err->text, sizeof err->text, "%s",
		    S_ISDIR(st.st_mode) ? strerror(EISDIR) : "not a regular file");
		snprintf(err->source, sizeof err->source, "%s", path);
		return NULL;
	}
	return json_load_file(path, flags, err);
}

const char *
vigil_json_unknown_key(const json_t *o, const char *const *keys, char *known, size_t cap)
{
	const char *key;
	json_t *val;

	json_object_foreach((json_t *)o, key, val) {
		size_t i = 0, n = 0;

		while (keys != NULL && keys[i] != NULL && strcmp(key, keys[i]) != 0)
			i++;
		if (keys != NULL && keys[i] != NULL)
			continue;
		if (known != NULL && cap > 0) {
			known[0] = '\0';
			for (i = 0; keys != NULL && keys[i] != NULL && n < cap; i++)
				n += (size_t)snprintf(known + n, cap - n, "%s%s", i > 0 ? ", " : "",
				    keys[i]);
		}
		return key;
	}
	return NULL;
}
