/* SPDX-License-Identifier: MIT */
/*
 * common/vigil.h - the vocabulary every vigil component shares: the one error
 * enum, the typed feature value that rules/ evaluates and store/ fills, and
 * the flat C form of a card transaction.
 *
 * This is the bottom of the dependency graph (DESIGN.md): it includes only
 * libc. rules/ and store/ both build on it without knowing each other.
 */
#ifndef VIGIL_COMMON_H
#define VIGIL_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Errors. Functions return VIGIL_OK (0) or one of the codes listed, with
 * their names and texts, in err.def; raw errno, LMDB or nng codes are
 * translated at the component boundary (the raw code may be kept by the
 * caller for its log line).
 */
typedef enum vigil_err {
#define VIGIL_ERR(name, text) VIGIL_##name,
#include "err.def"
#undef VIGIL_ERR
	VIGIL_ERR_COUNT_
} vigil_err;

/* Static English text for err; never NULL (unknown codes give "unknown error"). */
const char *vigil_strerror(vigil_err err);

/* Short stable identifier ("EINVAL", "ECORRUPT", ...) for metrics labels and JSON. */
const char *vigil_errname(vigil_err err);

/* Maps an errno value to the closest vigil_err (ENOENT -> VIGIL_ENOTFOUND, ...). */
vigil_err vigil_err_from_errno(int errnum);

/* Makes a message one line of valid UTF-8 in place: control characters and
 * bytes of no well-formed sequence become '?'. For messages that quote
 * input and go into JSON or protobuf strings, which hold nothing else. */
void vigil_utf8_line(char *s);
/* The length (1-4) of the well-formed UTF-8 sequence at s[0..len), ASCII
 * included; 0 if none starts there (a stray continuation byte, overlong,
 * surrogate, over U+10FFFF, cut off). */
size_t vigil_utf8_seq(const char *s, size_t len);

/*
 * The detail of an input error, one shape in every component: what it is
 * about (field), where (file:line:col in a text, or file + byte offset in a
 * binary input), and what is wrong (msg). Whoever finds the error fills
 * the parts it knows, so no caller parses a message to recover the field
 * or the place. Filled by the JSON transaction decoder and
 * vigil_txn_validate (field), the rules compiler (rules_diag: file, line,
 * col), the CSV reader (csv_diag: file, line, field = column), vigild's
 * wire stage (srv_wire_err.info: field; the replies' field and message),
 * its configuration (srv_config_load: file, line, field = key or flag) and
 * the model decoder (model_diag: field = JSON path, offset of a syntax error).
 */
#define VIGIL_NOPOS UINT64_MAX
typedef struct vigil_errinfo {
	char     field[96];  /* "currency", "location.latitude"; "" if not about one field
	                        (96: a model's JSON paths run to about 70 bytes) */
	char     file[128];  /* the file or segment; "" if none (a request body) */
	uint32_t line, col;  /* 1-based text position in file; 0 = none (col 0: the whole line) */
	uint64_t offset;     /* byte offset in file or input; VIGIL_NOPOS if none */
	char     msg[320];   /* one line of UTF-8 (vigil_utf8_line), what is wrong; the
	                        place is in the fields above, not repeated here */
} vigil_errinfo;

/* Clears e (every part empty, offset VIGIL_NOPOS). NULL is a no-op. */
void vigil_errinfo_clear(vigil_errinfo *e);
/* Clears e, then sets field (NULL = none) and the message. NULL e is a no-op. */
void vigil_errinfo_set(vigil_errinfo *e, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* "file:line:col: field: msg" (or the parts e has: "file:line: msg",
 * "file: msg", "file:offset: msg", "field: msg", "msg") into buf, truncated
 * to cap; returns buf. A
 * binary input (an archive segment, a model blob) has offsets and never
 * lines, a text one lines: every vigil program writes a byte offset as
 * FILE:OFFSET, as vigil-archive verify does (docs/tools.md). */
const char *vigil_errinfo_format(const vigil_errinfo *e, char *buf, size_t cap);

/*
 * Feature values. The type of a slot is fixed by the feature schema at rule
 * compile time, so a value carries only presence and payload.
 *   NUM: num. BOOL: num is 0 or 1. STR: str[0..len), not NUL-terminated;
 *   the bytes are owned by whoever filled the vector and stay valid for as
 *   long as it documents (for store/: until the next lookup on the same
 *   context).
 * A value with present == false is "missing" (rules.md defines how every
 * operator treats it).
 */
typedef enum vigil_type {
	VIGIL_T_NONE = 0,
	VIGIL_T_NUM,
	VIGIL_T_STR,
	VIGIL_T_BOOL,
	VIGIL_T_LIST, /* only in rules: a named list */
} vigil_type;

typedef struct vigil_value {
	double      num;
	const char *str;
	uint32_t    len;
	bool        present;
} vigil_value;

static inline vigil_value
vigil_value_num(double v)
{
	vigil_value x = { .num = v, .present = true };
	return x;
}

static inline vigil_value
vigil_value_bool(bool v)
{
	vigil_value x = { .num = v ? 1.0 : 0.0, .present = true };
	return x;
}

static inline vigil_value
vigil_value_str(const char *s, uint32_t len)
{
	vigil_value x = { .str = s, .len = len, .present = true };
	return x;
}

static inline vigil_value
vigil_value_missing(void)
{
	vigil_value x = { .present = false };
	return x;
}

const char *vigil_type_name(vigil_type t); /* "number", "string", "bool", "list" */

/* Decisions, in increasing severity. Numeric values match vigil.v1.Decision. */
typedef enum vigil_decision {
	VIGIL_DECISION_NONE    = 0,
	VIGIL_DECISION_ALLOW   = 1,
	VIGIL_DECISION_REVIEW  = 2,
	VIGIL_DECISION_DECLINE = 3,
} vigil_decision;

const char *vigil_decision_name(vigil_decision d); /* "allow", "review", "decline", "none" */
/* Parses "allow" / "review" / "decline" (case-insensitive); VIGIL_EINVAL otherwise. */
vigil_err vigil_decision_parse(const char *s, vigil_decision *ret_d);

/* Payment channels. Numeric values match vigil.v1.Channel. */
typedef enum vigil_channel {
	VIGIL_CHANNEL_UNKNOWN = 0,
	VIGIL_CHANNEL_POS     = 1, /* card present, point of sale */
	VIGIL_CHANNEL_ECOM    = 2, /* card not present, online */
	VIGIL_CHANNEL_ATM     = 3,
	VIGIL_CHANNEL_MOTO    = 4, /* mail / telephone order */
	VIGIL_CHANNEL_COUNT_
} vigil_channel;

const char *vigil_channel_name(vigil_channel c); /* "unknown", "pos", "ecom", "atm", "moto" */
vigil_err   vigil_channel_parse(const char *s, vigil_channel *ret_c);

/*
 * A card transaction in flat C form, decoded and validated. Every string is
 * NUL-terminated and within its cap; optional strings are "" when absent.
 */
#define VIGIL_ID_MAX 64 /* txn_id, card_id, merchant_id, terminal_id, device_id */
#define VIGIL_IP_MAX 45 /* textual IPv6 */
/* Attributes (Transaction.attributes): checked by every reader and by
 * vigild, never kept (vigil_txn has none; rules do not read them). */
#define VIGIL_ATTR_MAX       64  /* per transaction */
#define VIGIL_ATTR_KEY_MAX   64  /* bytes, at least 1 */
#define VIGIL_ATTR_VALUE_MAX 256 /* bytes */

typedef struct vigil_txn {
	char     txn_id[VIGIL_ID_MAX + 1];      /* required */
	char     card_id[VIGIL_ID_MAX + 1];     /* required */
	char     merchant_id[VIGIL_ID_MAX + 1]; /* required */
	char     terminal_id[VIGIL_ID_MAX + 1];
	char     device_id[VIGIL_ID_MAX + 1];
	char     ip[VIGIL_IP_MAX + 1];          /* one spelling: vigil_txn_validate */
	char     currency[4]; /* ISO 4217 alpha code, upper case; required */
	char     country[3];  /* ISO 3166-1 alpha-2, upper case, or "" */
	int64_t  event_time_ms; /* Unix ms, UTC; required, > 0 */
	int64_t  amount_minor;  /* integer minor units of currency; >= 0 */
	uint32_t mcc;           /* ISO 18245 merchant category code, 0 if unknown */
	uint8_t  channel;       /* vigil_channel */
	bool     has_location;
	double   lat, lon; /* degrees; valid only if has_location */
} vigil_txn;

/*
 * Number of decimal places of an ISO 4217 currency (2 for EUR, 0 for JPY, 3
 * for KWD). Returns -1 for a code that is not a known active currency.
 */
int vigil_currency_exponent(const char *code);

/* amount_minor converted to major units using the currency's exponent. */
double vigil_txn_amount(const vigil_txn *txn);

/*
 * Checks every field of txn against the rules above (required fields, caps,
 * charset of ids: printable ASCII without spaces, ip "" or an IPv4 or IPv6
 * address, currency known, country two upper-case letters, amount in
 * [0, 10^15), event time within [2000-01-01, 2100-01-01), lat in [-90, 90],
 * lon in [-180, 180]), and rewrites ip in its one spelling, so that every
 * entry point keys an address alike: IPv4 dotted decimal, IPv6 inet_ntop's
 * (RFC 5952: lower case, longest zero run as "::"), an IPv4-mapped IPv6
 * address (::ffff:a.b.c.d) as its IPv4. VIGIL_OK (*reterr untouched), or
 * VIGIL_EINVAL with txn untouched and *reterr (may be NULL) filled: field
 * the offending field's wire name ("card_id", "currency",
 * "location.latitude", ...), msg a one-line reason; no position.
 */
vigil_err vigil_txn_validate(vigil_txn *txn, vigil_errinfo *reterr);
/* s ("" or an IPv4/IPv6 address) in that one spelling, into ret_canon
 * (VIGIL_IP_MAX + 1 bytes): true, or false (not an address; untouched). */
bool      vigil_ip_canonical(const char *s, char *ret_canon);

/*
 * Attributes against the VIGIL_ATTR_* limits, the same words for every
 * reader (nng, JSON, the Python client). vigil_txn_attrs_count_check: at
 * most VIGIL_ATTR_MAX. vigil_txn_attr_check: one key (klen bytes, 1 to
 * VIGIL_ATTR_KEY_MAX, no NUL) and its value (vlen bytes, at most
 * VIGIL_ATTR_VALUE_MAX, no NUL). VIGIL_OK, or VIGIL_EINVAL with *reterr
 * (may be NULL): field "attributes", "attributes.key" or "attributes.value",
 * msg naming the key.
 */
vigil_err vigil_txn_attrs_count_check(size_t n, vigil_errinfo *reterr);
vigil_err vigil_txn_attr_check(const char *key, size_t klen, const char *value,
    size_t vlen, vigil_errinfo *reterr);

/* Whether the len bytes at s are all in the id charset of vigil_txn_validate
 * (printable ASCII without spaces, quotes, commas or backslashes). */
bool vigil_id_chars_ok(const char *s, size_t len);

/* Time helpers (UTC). */
#define VIGIL_MS_PER_DAY 86400000LL
/* The event and label times vigil takes: [2000-01-01, 2100-01-01) in Unix ms. */
#define VIGIL_TIME_MIN_MS 946684800000LL
#define VIGIL_TIME_MAX_MS 4102444800000LL
/* Parses "YYYY-MM-DD" to Unix ms at 00:00 UTC. */
vigil_err vigil_date_parse(const char *s, int64_t *ret_ms);
/* Parses RFC 3339 "YYYY-MM-DDTHH:MM:SS[.fff](Z|+hh:mm)" to Unix ms. */
vigil_err vigil_time_parse_rfc3339(const char *s, int64_t *ret_ms);
/* Formats Unix ms as "YYYY-MM-DDTHH:MM:SS.mmmZ" into buf (>= 25 bytes). */
void vigil_time_format_rfc3339(int64_t ms, char *buf, size_t buflen);
/* Formats Unix ms as "YYYY-MM-DD" into buf (>= 11 bytes). */
void vigil_date_format(int64_t ms, char *buf, size_t buflen);
/* Current wall-clock time, Unix ms. */
int64_t vigil_now_ms(void);
/* Monotonic clock in ns, for latency measurement. */
uint64_t vigil_mono_ns(void);
/* clk's now + ms into *ret: a deadline for pthread_cond_timedwait, whose
 * condition variable waits on clk (CLOCK_REALTIME unless its condattr set
 * CLOCK_MONOTONIC). */
void vigil_deadline_after(clockid_t clk, struct timespec *ret, uint64_t ms);
/* Runs fn(arg) on a thread of its own and waits up to ms for it: true if it
 * returned (or ran on the caller, no thread to be had); false if not, and
 * it is left to finish, or not, alone. For teardown that may hang for good,
 * such as nng 1.5.2's nng_close (nanomsg/nng#1543). */
bool vigil_call_bounded(void (*fn)(void *), void *arg, int ms);

/*
 * Makes the whole pages inside [p, p + len) present and writable in one
 * system call (MADV_POPULATE_WRITE), for memory about to be written bit by
 * bit: a page fault costs 10-19 us on a virtual machine, the call about
 * 0.6 us a page (docs/BENCHMARKS.md, "CPU per score"). Advice only: false
 * if the kernel refused (before Linux 5.14: EINVAL; ENOMEM), and the pages
 * then fault in as they are written, as without the call.
 */
bool vigil_mem_populate(void *p, size_t len);

/* Great-circle distance in km between two points given in degrees. */
double vigil_haversine_km(double lat1, double lon1, double lat2, double lon2);

#ifdef __cplusplus
}
#endif

#endif /* VIGIL_COMMON_H */
