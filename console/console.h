/* SPDX-License-Identifier: MIT */
/*
 * console/console.h - vigil-console's header: the analyst workbench
 * (docs/console.md), its options and its state (con_app), and the headers
 * of its parts that tests and bench/console use: auth.h, index.h,
 * casework.h, search.h, util.h (entities.h and tail.h beside them).
 * http.h and editor.h are private to console/.
 *
 * A consumer of vigild's archive that keeps its own LMDB indexes of the
 * review queue (index.c, index_query.c, tail.c) and of every entity's
 * transactions (entities.c), serves a JSON API and the web UI over evhttp (http.c,
 * api.c and the pages' files), authenticates analysts
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

#include "auth.h"
#include "casework.h"
#include "index.h"
#include "util.h"

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

#define CON_MODEL_CACHE 8 /* generations whose models the case page keeps */

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
	/* models by generation, the least recently used replaced: opening a
	 * generation reads all of its data.mdb (verification), so each is
	 * read once, not at every case of another day */
	struct {
		struct app_model *model; /* NULL: the generation has none */
		uint64_t          gen;   /* 0: an empty entry */
		uint64_t          used;
	} models[CON_MODEL_CACHE];
	uint64_t           model_tick;
	struct api_gen_entry *gen_entries; /* the Nights page's, by generation (api.c) */
	bool               ingest_more;
	bool               pruning;      /* a sweep is under way */
	int64_t            pruned_at_ms; /* when the last sweep ended */
	char               last_ingest_err[256];
} con_app;

#include "search.h"

/*
 * fetch.c: the model's explanation of an archived record, as JSON:
 * {"generation", "scored", "score", "reasons": [{"feature", "value",
 * "contrib"}]}, or null when there is no model to explain it with or no
 * vector. The model is the one of the generation that scored the record
 * (rec->features_gen; "scored": true): null when that generation had none
 * (rules alone decided). Only when that generation is no longer on disk is
 * the current generation's model used, "scored": false (what today's model
 * makes of the inputs, not what decided), unless the record's archived
 * model.score says no model scored it (null). *ret_kept: whether the
 * scoring generation is still on disk.
 */
/* api.c: frees the Nights page's entries (app->gen_entries). */
void con_api_gen_entries_free(con_app *app);
json_t *con_model_explain(con_app *app, const store_scored *rec, bool *ret_kept);
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

#endif
