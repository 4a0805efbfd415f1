/* SPDX-License-Identifier: MIT */
/*
 * console/http.h - private to console/: the HTTP side of vigil-console,
 * the dispatcher and JSON helpers (http.c) and the handlers of each page's
 * API (api.c, lists.c, search.c, entity.c, overview.c, vigild.c).
 */
#ifndef VIGIL_CONSOLE_HTTP_H
#define VIGIL_CONSOLE_HTTP_H

#include <event2/http.h>
#include <jansson.h>

#include "console.h"

/* http.c: the dispatcher and JSON helpers for the api_*.c handlers. */
vigil_err con_http_start(con_app *app, char *errbuf, size_t errlen);
void      con_http_stop(con_app *app);
void      con_send_json(struct evhttp_request *req, int code, json_t *obj); /* steals obj */
/* The one error object of docs/tools.md, {"error": {"code", "message",
 * "where": {"field"}}}, for HTTP status code; field may be NULL. A reply
 * that adds keys of its own (claimed_by, current_hash) sets them on the
 * body; con_error_body never returns NULL but on ENOMEM. */
json_t   *con_error_body(int code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void      con_send_error(struct evhttp_request *req, int code, const char *field,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/*
 * A verdict's "expected", the label the analyst saw ("fraud", "legit", or
 * null for none), into *ret_label (1, 0, -1; -2 when absent: no check);
 * false after answering 400 naming it (anything else).
 */
bool      con_label_expected(struct evhttp_request *req, const json_t *body, int *ret_label);
/* Whether the label now (-1: none; source and time_ms when the index knows
 * them, else NULL) is the one expected (-2: any); else answers 409 naming
 * "expected", "labelled fraud by analyst:alice at T meanwhile", with label,
 * label_source and label_time: nothing is overridden unseen. */
bool      con_label_unchanged(struct evhttp_request *req, int expected, int now_label,
    const char *source, int64_t time_ms);
/* The request body as a JSON object, or NULL after replying 400/413
 * (MALFORMED, with where.line and where.column, when it is not JSON). */
json_t   *con_body_json(struct evhttp_request *req);
/* con_body_json whose every key is one of keys (NULL-terminated; NULL: no
 * key at all, an empty body being {}): another key is 400 INVALID naming
 * it, as a misspelt key must not pass for an absent one. */
json_t   *con_body_json_keys(struct evhttp_request *req, const char *const *keys);

/* Whether [from, to) holds a moment; else answers 400 INVALID naming "to"
 * ("from ... is not before to ...") and returns false: an inverted range
 * is a mistake, not an empty answer. */
bool      con_range_ok(struct evhttp_request *req, int64_t from_ms, int64_t to_ms);

/*
 * req's query string into kv (TAILQ_INIT'd here; evhttp_clear_headers it
 * after a true return; none is an empty kv). false: replied 400 already,
 * for a query string that does not parse or a key given twice
 * ("limit=1&limit=2" would leave one of them silently unread).
 */
bool con_query_parse(struct evhttp_request *req, struct evkeyvalq *kv);

/* Whether v is a count in [min, max] written in decimal digits only
 * (strtoul alone takes "+5", " 5" and "-1" as 2^64 - 1); into *ret. */
bool con_query_uint(const char *v, unsigned long min, unsigned long max, uint32_t *ret);

/* What con_query_walk found. */
typedef enum con_qs {
	CON_QS_OK = 0,
	CON_QS_BAD_VALUE, /* a known key with a value it refuses */
	CON_QS_UNKNOWN,   /* a key the page does not take */
	CON_QS_REPLIED,   /* con_query_parse refused the query string (replied) */
} con_qs;
/*
 * Walks req's query string: from and to (RFC 3339 or YYYY-MM-DD) parsed
 * into *from_ms and *to_ms (*ret_from: from was given), every other key
 * handed to fn, until fn refuses one. On a refusal the key is copied into
 * bad and its value into val (truncated to their sizes). Replies nothing
 * but for CON_QS_REPLIED: the page words its own error.
 */
con_qs con_query_walk(struct evhttp_request *req, int64_t *from_ms, int64_t *to_ms,
    bool *ret_from, con_qs (*fn)(void *arg, const char *k, const char *v), void *arg,
    char *bad, size_t badlen, char *val, size_t vallen);

/* api.c: the handlers. who is the authenticated user. */
void con_api_queue(con_app *app, struct evhttp_request *req, const con_user *who);
void con_api_case(con_app *app, struct evhttp_request *req, const con_user *who,
    const char *id);
void con_api_case_action(con_app *app, struct evhttp_request *req, const con_user *who,
    const char *id, const char *action);
void con_api_generations(con_app *app, struct evhttp_request *req, const con_user *who);
void con_api_status(con_app *app, struct evhttp_request *req, const con_user *who);
void con_api_audit(con_app *app, struct evhttp_request *req, const con_user *who);

/* lists.c: GET /api/lists; POST /api/lists/NAME/{add,remove}; expiry (tick). */
void con_api_lists(con_app *app, struct evhttp_request *req, const con_user *who);
void con_api_list_edit(con_app *app, struct evhttp_request *req, const con_user *who,
    const char *name, const char *action);
void con_lists_expire(con_app *app);
/* Block card: value in list name's file, for good, with a record (who, why)
 * as an add makes: the record goes first (one with an end date would
 * unblock the card), one without an end date is kept, and it is put back
 * if the file edit fails. *ret_added false: already in the file;
 * *ret_prior: the record before (NULL: none; a reference), for the audit.
 * VIGIL_EINVAL: a value no list file holds; VIGIL_ENOTFOUND: no such list. */
vigil_err con_lists_block(con_app *app, const char *name, const char *value,
    const con_user *who, const char *reason, bool *ret_added, json_t **ret_prior,
    char *ret_path, size_t pathlen, char *errbuf, size_t errlen);

/* search.c: GET /api/search over the archive (scan.c); POST /api/txns/ID/label. */
void con_api_search(con_app *app, struct evhttp_request *req, const con_user *who);
void con_api_txn_label(con_app *app, struct evhttp_request *req, const con_user *who,
    const char *id);

/* entity.c: GET /api/entity/KIND/ID (card, merchant, terminal, device, ip). */
void con_api_entity(con_app *app, struct evhttp_request *req, const con_user *who,
    const char *kind, const char *id);
/* overview.c: GET /api/overview, per UTC day. */
void con_api_overview(con_app *app, struct evhttp_request *req, const con_user *who);

/* vigild.c */

/*
 * POST body (JSON text) to path on vigild's admin endpoint (--vigild-admin)
 * with the token of --vigild-admin-token-file (read at each call). VIGIL_OK
 * with *ret_status (vigild's HTTP status) and *ret_json (its JSON body, or
 * NULL if it had none: json_decref it); VIGIL_ENOTFOUND without the two
 * options; otherwise errbuf has one line (no connection, timeout, a bad
 * token file). Blocks up to 2 s to connect and 10 s for the reply.
 */
vigil_err con_vigild_post(con_app *app, const char *path, const char *body, int *ret_status,
    json_t **ret_json, char *errbuf, size_t errlen);
/* POST /api/generations/current (role admin): a roll-back through vigild. */
void con_api_generation_set(con_app *app, struct evhttp_request *req, const con_user *who);

#endif
