/* SPDX-License-Identifier: MIT */
/*
 * common/vigil_json.h - transactions as JSON (jansson), shared by every
 * JSON-speaking entry point: the HTTP gateway /v1/score, vigil-score,
 * vigil-rules explain/test and replay results. Field names are those of
 * vigil.v1.Transaction (docs/protocol.md), plus two conveniences on input:
 * "amount" (decimal major units, instead of amount_minor: a string, read
 * exactly, or a number, which may not have more decimals than the currency
 * has) and "event_time"
 * (RFC 3339, instead of event_time_ms); "channel" is "pos", "ecom", ...;
 * "location": {"latitude": .., "longitude": ..} or "lat"/"lon". Both
 * spellings of one field may be given only if they agree (else EINVAL).
 * Every numeric field takes a JSON number or a string holding one in
 * JSON's number syntax, read the same way for each (docs/protocol.md,
 * "JSON"); integer fields take integers only, amount no exponent.
 */
#ifndef VIGIL_COMMON_JSON_H
#define VIGIL_COMMON_JSON_H

#include <jansson.h>

#include "vigil.h"

/*
 * Fills *ret from obj (a JSON object). Does not validate semantics (use
 * vigil_txn_validate); checks JSON types and string caps. VIGIL_EINVAL on
 * the first bad field, *reterr (may be NULL) filled: field = its key or
 * path ("currency", "location.latitude"; "" when obj is not an object),
 * msg = what is wrong (never repeating the field). *ret is written only on
 * VIGIL_OK. An unknown key is refused (named in field).
 */
vigil_err vigil_txn_from_json(const json_t *obj, vigil_txn *ret, vigil_errinfo *reterr);

/*
 * The key of the JSON transaction obj to name for a field of the decoded
 * transaction (vigil_txn_validate's "event_time_ms", "amount_minor"): the
 * second spelling ("event_time", "amount") when obj gave only that one, so
 * an error names what the sender wrote; field itself otherwise.
 */
const char *vigil_txn_json_key(const json_t *obj, const char *field);

/*
 * The event-time rule of every JSON reader (docs/protocol.md, "The
 * transaction"): vigil_txn_from_json, then a transaction that has neither
 * "event_time" nor "event_time_ms" (absent or null) gets now_ms, the time
 * it was read. An explicit 0 is kept (and refused by vigil_txn_validate).
 * /v1/score, vigil-score and the Python client all apply it. And the
 * amount rule: neither "amount_minor" nor "amount" (absent or null) is
 * VIGIL_EINVAL on amount_minor, "required" (docs/protocol.md), where the
 * wire, which cannot tell absent from 0, takes 0.
 */
vigil_err vigil_txn_from_json_now(const json_t *obj, int64_t now_ms, vigil_txn *ret,
    vigil_errinfo *reterr);

/* A new JSON object for txn (amount_minor and event_time_ms, plus readable
 * "event_time"). NULL on ENOMEM. */
json_t *vigil_txn_to_json(const vigil_txn *txn);

/*
 * The one JSON error object of every vigil program and endpoint
 * (docs/tools.md, "JSON errors"):
 *
 *   {"code": "INVALID", "message": "...",
 *    "where": {"field": "txn.currency", "file": "t.csv", "line": 3,
 *              "column": 7, "offset": 40960}}
 *
 * code is one of the table's names (vigil_error_code gives the one of a
 * vigil_err); message is e->msg; where holds only the parts e has (field,
 * file, line, column when line has one, offset when not VIGIL_NOPOS) and
 * is left out when e has none. A new object, NULL on ENOMEM; e may be NULL
 * (message "" then, no where).
 */
json_t *vigil_error_json(const char *code, const vigil_errinfo *e);

/* {"error": vigil_error_json(code, e)}: the body of an error reply. */
json_t *vigil_error_body(const char *code, const vigil_errinfo *e);

/* The code of docs/tools.md's table for err: EINVAL, ESYNTAX, ETYPE and
 * ECORRUPT are "INVALID", ENOTFOUND "NOT_FOUND", ETOOBIG "TOO_BIG", EPROTO
 * "MALFORMED", ELIMIT "OVERLOADED", EAGAIN, ECLOSED and ETIMEDOUT
 * "UNAVAILABLE", EBUSY "BUSY", EEXIST and ECONFLICT "CONFLICT", anything
 * else "INTERNAL". Static storage. */
const char *vigil_error_code(vigil_err err);

/* Where a jansson load of name failed: "NAME:LINE:COLUMN", or NAME alone
 * when jansson has no position (a file that does not open). Into buf (cap
 * bytes); returns buf. */
const char *vigil_json_err_where(const char *name, const json_error_t *e, char *buf, size_t cap);

/* json_load_file(path, flags, err) for a file a user names (--txn @FILE):
 * a directory, FIFO or device is refused before it is read, with
 * err->text the reason ("Is a directory", "not a regular file") and no
 * position, where jansson would say "'[' or '{' expected near end of file"
 * or wait on a FIFO. */
json_t *vigil_json_load_path(const char *path, size_t flags, json_error_t *err);

/* The first key of object o that is not one of keys[] (NULL-terminated; NULL
 * or empty: none is), or NULL when every key is (or o is no object): a
 * misspelt key must be refused, not dropped with what it meant. When one is
 * found and known is not NULL, known[0..cap) gets keys[] as "a, b, c" for
 * the message that refuses it. The key points into o. */
const char *vigil_json_unknown_key(const json_t *o, const char *const *keys, char *known,
    size_t cap);

#endif
