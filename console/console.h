/* SPDX-License-Identifier: MIT */
/*
 * console/console.h - vigil-console's private header: the analyst
 * workbench (docs/console.md). A consumer of vigild's archive that keeps
 * its own LMDB index of the review queue (index.c, tail.c), serves a JSON
 * API and the web UI over evhttp (http.c, api_*.c), authenticates analysts
 * by token (auth.c), sends verdicts to vigild with libvigil-client, edits
 * the rule file with back-tests through vigil-replay (editor.c) and writes
 * every action to an append-only audit log (audit.c). Prefix con_.
 * Everything runs on one libevent thread; long work (a back-test) runs in
 * child processes the loop waits for without blocking.
 */
#ifndef VIGIL_CONSOLE_H
#define VIGIL_CONSOLE_H

#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "archive.h"
#include "gen.h"
#include "rules.h"
#include "vigil.h"

/* ============================ auth.c ============================ */

typedef enum con_role {
	CON_ROLE_NONE = 0,
	CON_ROLE_READONLY,
	CON_ROLE_ANALYST,
	CON_ROLE_EDITOR, /* "rule-editor" */
	CON_ROLE_ADMIN,
} con_role;

const char *con_role_name(con_role r);
vigil_err   con_role_parse(const char *s, con_role *ret_r);

#define CON_NAME_MAX   24  /* analyst names: [A-Za-z0-9._-], fits "analyst:NAME" in a label source */
#define CON_TOKENS_MAX 256

#define CON_CERT_CN_MAX 64 /* a certificate subject's CN (X.509 ub-common-name) */

typedef struct con_user {
	char     name[CON_NAME_MAX + 1];
	con_role role;
	uint8_t  sha256[32]; /* of the token; unused for a certificate analyst */
	bool     by_cert;    /* "cert:CN": identified by a client certificate (HTTPS) */
	char     cert_cn[CON_CERT_CN_MAX + 1];
} con_user;

typedef struct con_auth {
	con_user users[CON_TOKENS_MAX];
	uint32_t n;
} con_auth;

/*
 * Loads a tokens file: one analyst per line, "NAME ROLE TOKEN" or
 * "NAME ROLE sha256:HEX" (64 hex digits, the SHA-256 of the token);
 * '#' comments and blank lines ignored. A plain token must be at least 16
 * bytes. VIGIL_EINVAL/VIGIL_ETOOBIG with errbuf "FILE:LINE: reason";
 * VIGIL_ENOTFOUND/VIGIL_EIO if it cannot be read; VIGIL_EINVAL if it is not
 * a regular file or other users may read or write it (vigil_secret_open).
 */
vigil_err con_auth_load(const char *path, con_auth *ret_auth, char *errbuf, size_t errlen);
/* The user whose token this is, or NULL. Compares the SHA-256 of token
 * with every entry in constant time (no early exit, no length leak).
 * Certificate analysts ("cert:CN") never match a token. */
const con_user *con_auth_check(const con_auth *a, const char *token, size_t len);
/* The analyst listed as "cert:CN" for a verified client certificate's
 * subject CN, or NULL. */
const con_user *con_auth_cert(const con_auth *a, const char *cn);
void con_sha256(const void *data, size_t len, uint8_t ret_digest[32]);

/* ============================ audit.c ============================ */

typedef struct con_audit con_audit;

/* Opens (creates) STATE/audit.log for appending. */
vigil_err con_audit_open(const char *path, con_audit **ret_a, char *errbuf, size_t errlen);
void      con_audit_close(con_audit *a); /* NULL is a no-op */
/*
 * Opens the audit log's path again (O_APPEND, created 0640 if missing: the
 * old file was moved away for rotation) and, only if that works, writes to
 * the new file from then on and closes the old one. On failure the old file
 * stays open and in use, errbuf says "PATH: REASON", and the errno's
 * vigil_err is returned. Never logs. Same thread as every other call here.
 */
vigil_err con_audit_reopen(con_audit *a, char *errbuf, size_t errlen);
/* The path given to con_audit_open; valid until con_audit_close. */
const char *con_audit_path(const con_audit *a);
/*
 * Appends one JSON line {"ts","who","role","action","target","before",
 * "after"} and fdatasyncs it. before/after are stolen (may be NULL: null).
 * VIGIL_EIO if it cannot be written: the caller refuses the action's reply
 * (it has happened; the error says the audit line is missing).
 */
vigil_err con_audit_write(con_audit *a, const con_user *who, const char *action,
    const char *target, json_t *before, json_t *after);
/* The last n lines (newest first) as a JSON array (for the UI), from the
 * file being written: after a rotation, the new file only. */
json_t   *con_audit_tail(con_audit *a, uint32_t n);

/* ============================ index.c ============================ */

#define CON_CASE_VERSION   2 /* 2: score is the 0-100 float */
#define CON_CASE_MAX_HITS  24
#define CON_CARD_HISTORY   50   /* transactions kept per card */
#define CON_RULES_MAX      1024 /* distinct rule names in the index */

/* A review or decline, as kept in the index (LMDB value; fixed layout,
 * version first: a layout change bumps CON_CASE_VERSION and the index is
 * rebuilt from the archive). */
typedef struct con_case {
	uint16_t version;
	uint8_t  decision;   /* vigil_decision */
	int8_t   label;      /* -1 none, 0 legitimate, 1 fraud */
	float    score;      /* 0-100 (store_scored.score) */
	int64_t  event_time_ms;
	int64_t  amount_minor;
	int64_t  label_time_ms;
	uint64_t seq;        /* archive sequence number */
	uint64_t seg_first;  /* first seq of its segment (the file name) */
	uint64_t offset;     /* byte offset in the (uncompressed) segment */
	uint32_t mcc;
	uint8_t  channel;
	uint8_t  nhits;
	uint8_t  shadow_mask[(CON_CASE_MAX_HITS + 7) / 8];
	uint16_t hits[CON_CASE_MAX_HITS]; /* rule ids (con_index_rule_name) */
	char     currency[4];
	char     country[3];
	char     txn_id[VIGIL_ID_MAX + 1];
	char     card_id[VIGIL_ID_MAX + 1];
	char     merchant_id[VIGIL_ID_MAX + 1];
	char     terminal_id[VIGIL_ID_MAX + 1];
	char     label_source[32];
} con_case;

/* One transaction of a card's recent history (any decision). */
typedef struct con_card_txn {
	int64_t  event_time_ms;
	int64_t  amount_minor;
	float    score;      /* 0-100 */
	uint8_t  decision;
	char     currency[4];
	char     txn_id[VIGIL_ID_MAX + 1];
	char     merchant_id[VIGIL_ID_MAX + 1];
} con_card_txn;

/* Per UTC day and rule: hits, and how many of those are labelled fraud /
 * legitimate as known now. Rule CON_STAT_TOTAL: all scored records (n),
 * reviews + declines (alerts). */
#define CON_STAT_TOTAL 0xFFFFu
typedef struct con_stat {
	uint64_t n, fraud, legit, alerts;
} con_stat;

typedef struct con_tailpos {
	uint64_t last_seq;   /* committed: every record <= this is in the index */
	uint64_t seg_first;  /* segment being read (its first seq; 0 none yet) */
	uint64_t seg_off;    /* next byte to read in it */
	int64_t  max_event_ms;
	uint64_t scored, labels, cases, corrupt;
} con_tailpos;

typedef struct con_index con_index;

/* Opens (creates) the index under dir (STATE/index). map_gib: LMDB map size. */
vigil_err con_index_open(const char *dir, uint32_t map_gib, con_index **ret_ix,
    char *errbuf, size_t errlen);
void      con_index_close(con_index *ix); /* NULL is a no-op */
void      con_index_pos(con_index *ix, con_tailpos *ret_pos);

/*
 * Reads up to max records of the archive under datadir/archive past the
 * committed position and indexes them in one write transaction (committed
 * with the new position: a restart resumes there). *ret_n: records read;
 * *ret_more: whether more were ready when it stopped. Corrupt stretches are
 * counted and reported to stderr once each, never fatal.
 */
vigil_err con_index_ingest(con_index *ix, const char *archive_dir, uint32_t max,
    uint32_t *ret_n, bool *ret_more, char *errbuf, size_t errlen);

typedef struct con_query {
	int      decision;   /* VIGIL_DECISION_REVIEW, _DECLINE, or 0: both */
	int      status;     /* 0 open (no label), 1 labelled, 2 all */
	bool     by_score;   /* else newest first */
	char     rule[64];
	char     card[VIGIL_ID_MAX + 1];
	char     merchant[VIGIL_ID_MAX + 1];
	int64_t  min_amount_minor; /* compared in the case's minor units */
	double   min_amount;       /* major units (< 0: none) */
	int64_t  from_ms, to_ms;   /* event time [from, to) */
	uint32_t offset, limit;
} con_query;

/* Runs q: *ret_total matches, ret_cases[0..*ret_n) the page (limit <= cap). */
vigil_err con_index_query(con_index *ix, const con_query *q, con_case *ret_cases, uint32_t cap,
    uint32_t *ret_n, uint64_t *ret_total, double *ret_ms);
/* Calls fn for each case with event time in [from_ms, to_ms), oldest
 * first, until fn returns false or max cases were read (then
 * *ret_truncated). One read transaction. */
vigil_err con_index_cases_each(con_index *ix, int64_t from_ms, int64_t to_ms, uint64_t max,
    bool (*fn)(void *arg, const con_case *c), void *arg, bool *ret_truncated);
/* VIGIL_ENOTFOUND if txn_id is no case. */
vigil_err con_index_case(con_index *ix, const char *txn_id, con_case *ret_case);
/* Sets a case's label at once (the archive's label record confirms it). */
vigil_err con_index_case_label(con_index *ix, const char *txn_id, bool fraud,
    const char *source, int64_t when_ms);
/* The card's recent transactions, newest first. */
vigil_err con_index_card_history(con_index *ix, const char *card_id, con_card_txn *ret,
    uint32_t cap, uint32_t *ret_n);
/* Rule name of an id (NULL if unknown); id of a name (VIGIL_ENOTFOUND). */
const char *con_index_rule_name(con_index *ix, uint16_t id);
vigil_err   con_index_rule_id(con_index *ix, const char *name, uint16_t *ret_id);
/* Sums per-rule stats over UTC days [day_from, day_to]; fn per rule
 * (CON_STAT_TOTAL for the totals). */
vigil_err con_index_stats(con_index *ix, int64_t day_from, int64_t day_to,
    void (*fn)(void *arg, uint16_t rule, const con_stat *st), void *arg);
/* A transaction's label as known (-1 none), from the index. */
int       con_index_label_of(con_index *ix, const char *txn_id);
/* Its label and, when the index knows it, its amount (*ret_amount -1 if
 * not). VIGIL_ENOTFOUND: neither a hit nor a label was seen for it. */
vigil_err con_index_txn_label(con_index *ix, const char *txn_id, int *ret_label,
    int64_t *ret_amount, char ret_currency[4]);

/*
 * Retention: deletes `hits` entries of transactions scored more than
 * keep_days before the newest one indexed (their labels no longer move a
 * figure anyone reads), at most max_steps entries per call, resuming where
 * the last call stopped; *ret_done when a sweep reached the end (then also
 * claims expired a day before now_ms are deleted). Cases, card histories
 * (capped per card) and daily stats are small and kept.
 */
vigil_err con_index_prune(con_index *ix, uint32_t keep_days, int64_t now_ms, uint32_t max_steps,
    bool *ret_done, uint64_t *ret_deleted);

/* Claims: who works a case, until when. */
typedef struct con_claim {
	char    who[CON_NAME_MAX + 1];
	int64_t until_ms;
} con_claim;
/* VIGIL_OK: claimed (or renewed) by who, *ret_claim the new claim and
 * *ret_prev the live claim it replaced (who's own: a renewal; who[0] '\0':
 * none). VIGIL_EBUSY: *ret_claim is the other analyst's live claim. */
vigil_err con_index_claim(con_index *ix, const char *txn_id, const char *who, int64_t now_ms,
    int64_t ttl_ms, con_claim *ret_claim, con_claim *ret_prev);
/* Releases the live claim on txn_id if who holds it, or anyone's if any (an
 * admin). VIGIL_OK: *ret_prev (may be NULL) is the claim released, who[0]
 * '\0' if there was none live. VIGIL_EBUSY: another analyst holds it,
 * *ret_prev is that claim, nothing changed. */
vigil_err con_index_unclaim(con_index *ix, const char *txn_id, const char *who, int64_t now_ms,
    bool any, con_claim *ret_prev);
/* VIGIL_ENOTFOUND when nobody holds a live claim. */
vigil_err con_index_claim_get(con_index *ix, const char *txn_id, int64_t now_ms,
    con_claim *ret_claim);

/* ============================ casework.c ============================ */

#define CON_NOTE_MAX   2000 /* bytes of one note */
#define CON_NOTES_MAX  200  /* notes on one case */

typedef struct con_casework con_casework;

/* Opens (creates) STATE/casework, the analysts' status, assignee and notes
 * of each case. */
vigil_err con_casework_open(const char *dir, con_casework **ret_cw, char *errbuf,
    size_t errlen);
void      con_casework_close(con_casework *cw); /* NULL is a no-op */
/* The case's record {"status","assignee","notes":[{"ts","who","text"}]}: a
 * new reference (status "open", assignee null, no notes if none yet). */
json_t   *con_casework_get(con_casework *cw, const char *txn_id);
/* Replaces it. VIGIL_ELIMIT when the store is full, VIGIL_EIO. */
vigil_err con_casework_put(con_casework *cw, const char *txn_id, const json_t *o);

/* Reads the full archived record of a case (features, model vector). */
vigil_err con_archive_fetch(const char *archive_dir, const con_case *c, store_scored *ret,
    char *errbuf, size_t errlen);

/* ============================ the program ============================ */

typedef struct con_opts {
	const char *data;      /* vigild's data directory (read only) */
	const char *listen;    /* HOST:PORT */
	const char *rules;     /* the deployed rule file */
	const char *server;    /* vigild nng URL, NULL: labels refused */
	const char *tls_cert, *tls_key, *tls_ca, *tls_server_name; /* tls+tcp:// */
	const char *tokens;
	const char *state;
	const char *www;       /* the web UI's files */
	const char *chartjs;   /* directory of Debian's Chart.js */
	const char *replay;    /* vigil-replay program */
	const char *blocked_list; /* list name in the rule file */
	const char *https_cert, *https_key; /* serve HTTPS with this certificate */
	const char *https_client_ca;    /* client certificates signed by it identify analysts */
	const char *vigild_admin;       /* vigild's admin HTTP HOST:PORT or unix:/PATH */
	const char *vigild_admin_token; /* file with vigild's admin token */
	uint32_t    claim_minutes;
	uint32_t    poll_ms;
	uint32_t    map_gib;
	uint32_t    keep_days;
	uint32_t    max_connections;
	uint32_t    max_per_addr;      /* connections from one address; 0: no cap */
	uint32_t    request_timeout_s; /* to complete a request */
	uint32_t    backtest_disk_mib;    /* a back-test's STATE/tmp directory, at most */
	uint32_t    backtest_reserve_mib; /* free space a back-test leaves on STATE's filesystem */
	uint32_t    deploy_approvers;     /* 2: a deploy is proposed, another analyst approves */
	bool        quiet;
} con_opts;

typedef struct con_backtest con_backtest; /* backtest.c */
typedef struct con_rulestate con_rulestate; /* editor.c */
typedef struct vigil_client vigil_client;
struct vigil_evconn_set; /* common/evconn.h */

typedef struct con_app {
	con_opts           o;
	char               archive_dir[4096];
	con_auth           auth;
	con_audit         *audit;
	con_index         *ix;
	struct con_ents   *ents;   /* the entity index (entities.h), or NULL */
	con_casework      *cw;     /* status, assignee, notes of cases */
	uint8_t            secret[32]; /* per run, random: confirm tokens (api.c) */
	vigil_client      *client;
	struct event_base *base;
	struct evhttp     *http;
	struct event      *tick, *sigint, *sigterm, *sigchld, *sighup;
	con_backtest      *bt;     /* the back-test running, or NULL */
	con_rulestate     *rs;
	struct vigil_evconn_set *conns; /* the connection cap (http.c) */
	struct ssl_ctx_st *ssl;    /* HTTPS (--https-cert), or NULL */
	store_gen         *gen;    /* current feature generation (cached) */
	uint64_t           gen_no;
	struct app_model  *model;  /* its model (NULL: none), cached */
	uint64_t           model_gen;
	bool               model_loaded;
	bool               ingest_more;
	bool               pruning;      /* a sweep is under way */
	int64_t            pruned_at_ms; /* when the last sweep ended */
	char               last_ingest_err[256];
} con_app;

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
/* The request body as a JSON object, or NULL after replying 400/413. */
json_t   *con_body_json(struct evhttp_request *req);

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

/* search.c: GET /api/search over the archive; POST /api/txns/ID/label. */
void con_api_search(con_app *app, struct evhttp_request *req, const con_user *who);
/* A search's filters (GET /api/search's keys, docs/console.md). */
typedef struct con_search_q {
	int64_t from_ms, to_ms;
	char    card[VIGIL_ID_MAX + 1], merchant[VIGIL_ID_MAX + 1], terminal[VIGIL_ID_MAX + 1];
	char    device[VIGIL_ID_MAX + 1], ip[VIGIL_IP_MAX + 1];
	double  min_amount, max_amount; /* major units; < 0: none */
	int     decision;               /* vigil_decision, 0: any */
	int     label;                  /* -2 any, -1 none, 0 legit, 1 fraud */
	uint32_t limit;
} con_search_q;
/* scan.c: the scored records of [from, to) of the archive, those passing
 * q's filters but the label (q NULL: all), decoded into s and handed to fn
 * until it returns false; *ret_scanned: records read, at most
 * CON_SEARCH_SCAN_MAX + 1. VIGIL_OK, or the reader's error (errbuf). */
#define CON_SEARCH_SCAN_MAX 2000000u
vigil_err con_search_scan(con_app *app, int64_t from, int64_t to, const con_search_q *q,
    store_scored *s, bool (*fn)(void *arg, const store_scored *s), void *arg,
    uint64_t *ret_scanned, char *errbuf, size_t errlen);
/* scan.c: the search itself (reads app->archive_dir and app->ix only): up to
 * q->limit matches appended to items, *ret_more when there were more,
 * *ret_scanned records read. The reader's error in errbuf. */
vigil_err con_search_run(con_app *app, const con_search_q *q, json_t *items, bool *ret_more,
    uint64_t *ret_scanned, char *errbuf, size_t errlen);
/* scan.c: whether con_search_run answers q from the entity index (q names
 * an entity and the index has caught up with the archive): then it reads
 * only that entity's records, over any range. */
bool con_search_by_index(con_app *app, const con_search_q *q);
/* scan.c: the scored records of the entities keys[0..nkeys) (entities.h;
 * app->ents ready) with event time in [from, to), each once, in archive
 * order, decoded into s and handed to fn until it returns false; at most
 * max positions (*ret_truncated past it). *ret_scanned records read. */
struct con_ent_key;
vigil_err con_search_entities(con_app *app, const struct con_ent_key *keys, uint32_t nkeys,
    int64_t from, int64_t to, uint64_t max, store_scored *s,
    bool (*fn)(void *arg, const store_scored *s), void *arg, uint64_t *ret_scanned,
    bool *ret_truncated, char *errbuf, size_t errlen);
void con_api_txn_label(con_app *app, struct evhttp_request *req, const con_user *who,
    const char *id);

/* entity.c: GET /api/entity/KIND/ID (card, merchant, terminal, device, ip). */
void con_api_entity(con_app *app, struct evhttp_request *req, const con_user *who,
    const char *kind, const char *id);
/* overview.c: GET /api/overview, per UTC day. */
void con_api_overview(con_app *app, struct evhttp_request *req, const con_user *who);

/* fetch.c: the model's explanation of an archived record, as JSON:
 * {"generation", "score", "reasons": [{"feature", "value", "contrib"}]}, or
 * null when there is no model or no vector. */
json_t *con_model_explain(con_app *app, const store_scored *rec);
store_gen *con_gen_current(con_app *app); /* cached; NULL if none */
/*
 * The model's reasons in words: the kup features with the largest positive
 * contributions (pushing the score up), then the kdown with the largest
 * negative ones, each {"feature", "value" (an integer as an integer, a
 * boolean as "yes"/"no", missing as null), "contrib", "push": "up"|"down",
 * "text": "<the feature's doc>: <value> (raises|lowers the risk)"}; money
 * (the amount, spend) with two decimals and currency (may be NULL), and
 * compared with the card's usual value when the vector has it: "amount
 * 220.50 EUR, 2.5x the card's 90-day mean (90 EUR) (raises the risk)"; a
 * day's or week's count or spend against the card's 90-day average.
 * names[i], x[i], contrib[i] for i < n (contrib may have the bias at n).
 */
json_t *con_reasons_json(const char *const *names, const float *x, const float *contrib,
    uint32_t n, uint32_t kup, uint32_t kdown, const char *currency);

/* editor.c */
/* Reason and points of a rule of the current file. VIGIL_ENOTFOUND. */
vigil_err con_rules_rule_info(con_app *app, const char *name, const char **ret_reason,
    int32_t *ret_points);
/* Adds card_id to the blocked-cards list file of the rule file (atomic
 * rewrite). *ret_added false: already there. VIGIL_ENOTFOUND: the rule file
 * has no such list (errbuf says so). */
vigil_err con_rules_block_card(con_app *app, const char *card_id, bool *ret_added,
    char *ret_path, size_t pathlen, char *errbuf, size_t errlen);
vigil_err con_rules_init(con_app *app, char *errbuf, size_t errlen);
void con_api_rules(con_app *app, struct evhttp_request *req, const con_user *who);
void con_api_rules_check(con_app *app, struct evhttp_request *req, const con_user *who);
void con_api_rules_backtest(con_app *app, struct evhttp_request *req, const con_user *who);
void con_api_rules_deploy(con_app *app, struct evhttp_request *req, const con_user *who);
void con_api_rules_rollback(con_app *app, struct evhttp_request *req, const con_user *who);
void con_api_rules_diff(con_app *app, struct evhttp_request *req, const con_user *who);
void con_api_rules_mode(con_app *app, struct evhttp_request *req, const con_user *who);
void con_api_rules_approve(con_app *app, struct evhttp_request *req, const con_user *who);
void con_api_rules_reject(con_app *app, struct evhttp_request *req, const con_user *who);
void con_api_rules_versions(con_app *app, struct evhttp_request *req, const con_user *who,
    const char *version);
void con_rules_child_exited(con_app *app); /* SIGCHLD (backtest.c) */
void con_rules_abort(con_app *app);        /* shutdown: kill a back-test (backtest.c) */
/* backtest.c: removes what back-tests of an earlier run left (at start). */
void con_backtest_prune(con_app *app);
/* editor.c, for backtest.c: the request's {"text", ...} body (NULL: answered
 * 400/413), a text compiled as vigild would (list files next to the deployed
 * file), its diagnostics answered 422, the deployed file's directory and name. */
json_t     *con_rules_edit_body(struct evhttp_request *req, const char *const *allowed,
    const char **ret_text, size_t *ret_len);
vigil_err   con_rules_compile_text(con_app *app, const char *text, size_t len,
    rules_prog **ret_prog, rules_diags *ret_diags);
void        con_rules_send_diags(struct evhttp_request *req, const rules_diags *d,
    const char *text, size_t len);
const char *con_rules_dir(const con_app *app);
const char *con_rules_base(const con_app *app);
void con_rules_fini(con_app *app);

/* util */
/* JSON of the pages: an amount in its currency's units ("220.50"), an
 * RFC 3339 time, a label ("fraud", "legit", or null for -1). */
json_t     *con_json_amount(int64_t minor, const char *currency);
json_t     *con_json_time(int64_t ms);
json_t     *con_json_label(int label);
/* Parses "YYYY-MM-DD" or RFC 3339 into ms. */
vigil_err con_time_parse(const char *s, int64_t *ret_ms);
/* Reads a whole file (malloc'd, NUL-terminated) of at most max bytes. */
vigil_err con_file_read(const char *path, size_t max, char **ret_buf, size_t *ret_len);
/*
 * Sets the `mode` clause of the rule that starts on line `line` (1-based) of
 * text[0..len): the word after its first `mode` replaced by mode, or `mode
 * MODE` added before its closing brace (on a line of its own when the brace
 * is). Strings and # comments are skipped. Only scans: the caller compiles
 * the result to make sure of it (editor.c). VIGIL_OK: *ret_text malloc'd,
 * NUL-terminated, *ret_len bytes; VIGIL_ENOTFOUND: no rule body from that
 * line on; VIGIL_ENOMEM.
 */
vigil_err con_rules_set_mode(const char *text, size_t len, uint32_t line, const char *mode,
    char **ret_text, size_t *ret_len);
/* Writes path atomically: PATH.tmp-PID, fsync, rename, fsync the dir. */
vigil_err con_file_write_atomic(const char *path, const void *data, size_t len,
    char *errbuf, size_t errlen);
/* The items of a list file's text (vigild's format: trimmed lines, not
 * blank, not starting with '#'), a JSON array of strings ("(not UTF-8)"
 * for an item that is not). */
json_t   *con_list_items(const char *buf, size_t len);
/* buf[0..len) with value added as a last line (add) or every line whose
 * item is value removed; other lines byte for byte. VIGIL_OK: *ret_out
 * (malloc'd, *ret_len bytes) and *ret_changed (false: value was already
 * there, or not there). VIGIL_EINVAL: value empty or with a newline;
 * VIGIL_ENOMEM. */
vigil_err con_list_edit(const char *buf, size_t len, const char *value, bool add,
    char **ret_out, size_t *ret_len, bool *ret_changed);
/* Hex of the XXH3-128 of data (33 bytes). */
void con_hash_hex(const void *data, size_t len, char ret_hex[33]);

/* ============================ vigild.c ============================ */

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
