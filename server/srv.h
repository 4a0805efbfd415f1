/* SPDX-License-Identifier: MIT */
/*
 * server/srv.h - private interfaces of vigild (docs/vigild.md), with
 * config.h, metrics.h, cluster.h and rep.h. The files are one stage each:
 * wire.c (decode, validate, encode; also the srv_core library the fuzz
 * target links), config.c (INI + flags), reload.c (rule sets: compile,
 * retune, swap), request.c (the request pipeline), rep.c (nng REP contexts
 * and the bounded work queue; rep_check.c, its TLS and ipc_group files
 * checked and its TLS configuration made), admin.c (evhttp), metrics.c
 * (Prometheus text), main.c (signals, timers, lifecycle).
 */
#ifndef VIGIL_SERVER_SRV_H
#define VIGIL_SERVER_SRV_H

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "app.h"
#include "cluster.h"
#include "config.h"
#include "db.h"
#include "metrics.h"
#include "ship.h"
#include "rules.h"
#include "vigil.h"
#include "vigil.pb-c.h"
#include "wire.h"

/* ============================ reload.c ============================ */

/* One compiled rule file (immutable, shared by rule sets). */
typedef struct srv_rules {
	atomic_uint       refs;
	app_rules        *ar;            /* the file bound for scoring (app.h) */
	rules_prog       *prog;          /* = ar->prog */
	uint32_t          nrules;
	_Atomic uint64_t **hits;         /* per rule index: its counter in s->hit_book */
	int64_t           loaded_at_ms;
	char              path[SRV_PATH_MAX];
} srv_rules;

/* The model of one generation (NULL app model: none, rules alone). */
typedef struct srv_model {
	atomic_uint refs;
	app_model  *m;
	uint64_t    generation; /* the generation it came from */
} srv_model;

/* What scoring reads: rules + thresholds tuned for one generation + the
 * model in force (normally that generation's; the previous one's if the
 * new one was refused). */
typedef struct srv_ruleset {
	atomic_uint  refs;
	srv_rules   *rules;
	rules_tvals *tv;
	srv_model   *model;      /* NULL: no model */
	store_db_gen *gen;       /* generation scoring reads (pinned), tv's and model's; or NULL */
	uint64_t     generation; /* its number */
} srv_ruleset;

/* ============================ the server ============================ */

typedef struct srv_server {
	srv_config       cfg;
	int64_t          started_ms;
	store_db        *db;        /* set once before ready */
	atomic_bool      ready;
	atomic_bool      draining;
	srv_metrics      metrics;

	pthread_rwlock_t rs_lock;   /* guards rs: read to take a reference, write to swap */
	srv_ruleset     *rs;

	pthread_mutex_t  info_lock; /* guards last_error, model_error */
	char             last_error[SRV_ERR_MAX];
	char             model_error[SRV_ERR_MAX]; /* why model_refused's model was refused */
	_Atomic uint64_t load_failures, loads;
	struct srv_hit  *hit_book;  /* rule hit counters by name, kept across reloads (reload.c) */
	_Atomic int64_t  gen_switched_ms;
	_Atomic uint64_t model_failures; /* generations whose model was refused */
	_Atomic uint64_t model_generation; /* generation of the model serving; 0: none */
	_Atomic int64_t  model_as_of_ms;   /* the as-of it was trained at; 0: none, unknown */
	_Atomic uint64_t model_refused; /* the current generation, if its model was refused; 0: not */

	/* store_db_maintain every 10 s (main.c) */
	_Atomic uint64_t maint_runs;
	_Atomic uint64_t maint_failures;
	_Atomic int64_t  maint_ok_ms;   /* last success, Unix ms; 0 = none yet */
	_Atomic int64_t  refresh_since_ms; /* store_db_refresh running since (srv_mono_ms); 0 = not */

	/* the loaded TLS material's expiry (tls_expiry.c): Unix ms, 0 = none */
	_Atomic int64_t  tls_end_ms[3];   /* by srv_tls_item */
	uint8_t          tls_state[3];    /* main thread: last state logged */
	struct srv_cluster *cluster;   /* NULL without [cluster]; set once before ready */
	struct srv_ship    *ship;      /* NULL without [store] ship_command; set once before ready */

	/* the admin bearer token (admin.c): loaded at start, again on SIGHUP */
	pthread_mutex_t  token_lock;
	char             admin_token[256];
	size_t           admin_token_len; /* 0 = no token configured */
} srv_server;

/* tls_expiry.c (docs/security.md, "TLS expiry") */
typedef enum srv_tls_item {
	SRV_TLS_CERT = 0, /* [tls] cert: the server's certificate */
	SRV_TLS_CA,       /* [tls] ca: the clients' CA */
	SRV_TLS_CRL,      /* [tls] crl: its next update */
	SRV_TLS_COUNT_
} srv_tls_item;

const char *srv_tls_item_name(srv_tls_item i); /* "cert", "ca", "crl" */
/* Reads the dates of the configured [tls] files (those nng was just given:
 * start-up, a successful SIGHUP reload). An item not configured, or
 * unreadable, has none. Never logs. */
void srv_tls_expiry_load(srv_server *s);
/* Main thread, every [tls] check_interval_s: logs each item whose state
 * changed (warning: within 30 days, 7 for the CRL; error: past), once. */
void srv_tls_expiry_check(srv_server *s);
/* Seconds from now_ms to item i's date (negative: past); false without one. */
bool srv_tls_expiry_left(srv_server *s, srv_tls_item i, int64_t now_ms, int64_t *ret_s);
/* true when an item is past its date, with the one line for /readyz in why. */
bool srv_tls_expired(srv_server *s, char *why, size_t len);

/* reload.c */
/* The current rule set with a reference held (NULL before the first load). */
srv_ruleset *srv_ruleset_acquire(srv_server *s);
void         srv_ruleset_release(srv_ruleset *rs); /* NULL is a no-op */
void         srv_rules_hits_free(srv_server *s); /* once no rule set is left */
/*
 * Compiles cfg.rules_path and swaps it in with thresholds from the current
 * generation. On failure the previous rules stay; the error is logged,
 * counted and kept in s->last_error. VIGIL_OK or the compile error.
 */
vigil_err srv_rules_reload(srv_server *s, const char *why);
/* Rebuilds the thresholds for the db's current generation and swaps. */
vigil_err srv_rules_retune(srv_server *s);
/* Copies the last load error ("" if the last load succeeded). */
void      srv_rules_last_error(srv_server *s, char *buf, size_t len);
/* The generation whose model was refused while it is current (0: none),
 * and why into buf ("" when none). */
uint64_t  srv_model_refused(srv_server *s, char *buf, size_t len);
/* Checks a rule file without touching the server (--check-config); prints
 * diags on out, and the file's version line on stdout unless quiet. */
vigil_err srv_rules_check(const char *path, FILE *out, bool quiet);

/* =========================== request.c ============================ */

typedef struct srv_hitv {
	const char *rule;
	const char *reason;
	int32_t     points;
	bool        shadow;
} srv_hitv;

typedef struct srv_outcome {
	srv_wire_err   err;      /* status OK or why not */
	double         score;    /* 0-100 (rules_result.score) */
	int32_t        points;   /* sum of the active hits' points */
	vigil_decision decision;
	uint32_t       nhits;
	srv_hitv       hits[2 * RULES_MAX_RULES];
	const char    *rules_version; /* the rule file's declared version ("" unknown) */
	const char    *rules_hash;    /* rules_prog_hash: the content hash */
	uint64_t       generation;
	bool           duplicate;
	bool           dry_run;
	bool           late;     /* not applied to velocity (app_outcome.late) */
	bool           past_dedupe_horizon; /* its id is not remembered */
	store_outcome  prior;    /* storage for a duplicate's rule names */
	double         model_score; /* NaN: no model */
	uint32_t       nreasons;    /* the model's top features, when a model rule fired */
	app_reason     reasons[APP_REASONS_MAX];
	char           model_reason[320]; /* a model rule's reason with the top features */
} srv_outcome;

/* Per-thread scratch (one per worker and one for the admin thread). */
typedef struct srv_worker srv_worker;

srv_worker *srv_worker_new(srv_server *s); /* NULL on ENOMEM */
void        srv_worker_free(srv_worker *w);

/*
 * Scores a validated transaction with rule set rs (held by the caller until
 * it has used the outcome: strings point into rs). Fills *ret (status OK;
 * INVALID on txn.event_time_ms when it is more than cfg.max_future_skew_ms
 * ahead of the wall clock, dry runs included; UNAVAILABLE; OVERLOADED;
 * INTERNAL) and counts decisions.
 */
void srv_score_txn(srv_server *s, srv_worker *w, const srv_ruleset *rs,
    const vigil_txn *txn, bool dry_run, srv_outcome *ret);

/* Records a label; VIGIL_OK or the store error (message in *reterr). */
void srv_label_txn(srv_server *s, const store_label *label, srv_wire_err *reterr);

/*
 * The whole pipeline for one wire request buf[0..len): decode, validate,
 * dispatch, metrics. Returns the reply, valid until srv_request_done(w).
 */
const Vigil__V1__Reply *srv_request_handle(srv_server *s, srv_worker *w,
    const void *buf, size_t len);
void srv_request_done(srv_worker *w);

/*
 * Whether vigild should be sent traffic (HealthReply.ready, /readyz;
 * docs/security.md, "Readiness"): false while starting or draining, while
 * the archive fails, and, unless cfg.ready_when_degraded, while the
 * generation CURRENT names or the current generation's model is refused
 * and something older (or nothing) serves. why: one line saying why not
 * ("" when ready). Recomputed on every call: heals with the state.
 */
bool srv_ready(srv_server *s, char *why, size_t len);

/* Health fields (shared by the wire and HTTP). features_generation is the
 * generation the serving rule set scores with. */
/* hashbuf (SRV_RULES_ID_MAX bytes) holds h->rules_hash and h->rules_version. */
#define SRV_RULES_ID_MAX 128
void srv_health_fill(srv_server *s, Vigil__V1__HealthReply *h, char *errbuf, size_t errlen,
    char *hashbuf, size_t hashlen);

/* rep.c, rep_check.c: the nng side (rep.h) */
#include "rep.h"

/* ============================ admin.c ============================ */

typedef struct srv_admin srv_admin;

vigil_err srv_admin_start(srv_server *s, srv_admin **ret_admin, char *errbuf, size_t errlen);
void      srv_admin_stop(srv_admin *a); /* NULL is a no-op */
/*
 * (Re)reads cfg.admin_token_file into s->admin_token (start-up and SIGHUP;
 * no-op without a token file). On failure the token in use stays and errbuf
 * says why. Never logs.
 */
vigil_err srv_admin_token_load(srv_server *s, char *errbuf, size_t errlen);

/* ============================ main.c ============================ */

/* One line on stderr, prefixed "vigild: ". */
void srv_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The monotonic clock in ms, never 0 (refresh_since_ms: 0 is "none"). */
static inline int64_t
srv_mono_ms(void)
{
	return (int64_t)(vigil_mono_ns() / 1000000u) + 1;
}

/* How long the refresh thread's store_db_refresh has been running, ms; 0
 * when none runs. */
static inline int64_t
srv_refresh_running_ms(srv_server *s)
{
	int64_t since = atomic_load(&s->refresh_since_ms);

	return since != 0 ? srv_mono_ms() - since : 0;
}

/* tune.c (docs/vigild.md, "Memory"): before vigild creates anything,
 * executes it again with glibc's huge-page tunables for mode (auto: unless
 * srv_page_reporting, a virtio balloon under sysfs reporting free pages),
 * unless GLIBC_TUNABLES names glibc.malloc.hugetlb; note: what applies. */
void srv_malloc_tune(char **argv, srv_huge_pages mode, char *note, size_t nlen);
bool srv_page_reporting(const char *sysfs);
/* SCHED_BATCH for vigild and its threads to come, if batch and SCHED_OTHER. */
void srv_sched_tune(bool batch);

#endif
