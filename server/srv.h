/* SPDX-License-Identifier: MIT */
/*
 * server/srv.h - private interfaces of vigild (docs/vigild.md). The files
 * are one stage each: wire.c (decode, validate, encode; also the srv_core
 * library the fuzz target links), config.c (INI + flags), reload.c (rule
 * sets: compile, retune, swap), score.c (the request pipeline), rep.c (nng
 * REP contexts and the bounded work queue), admin.c (evhttp), metrics.c
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
#include "rules.h"
#include "db.h"
#include "vigil.h"
#include "vigil.pb-c.h"
#include "wire.h"

/* ============================ config.c ============================ */

#define SRV_MAX_LISTEN 8
#define SRV_PATH_MAX   1024 /* config, data and rule file paths */
#define SRV_ERR_MAX    (SRV_PATH_MAX + 512)
#define SRV_URL_MAX    256

typedef struct srv_config {
	char        config_path[SRV_PATH_MAX]; /* "" = no file */
	char        listen[SRV_MAX_LISTEN][SRV_URL_MAX];
	uint32_t    nlisten;
	char        admin[128];            /* "host:port", "unix:/path" or "off" */
	uint32_t    workers;
	uint32_t    max_message_bytes;
	uint32_t    max_inflight;
	uint32_t    max_inflight_per_connection; /* 0 = no per-connection cap */
	uint32_t    request_timeout_ms;
	uint32_t    max_future_skew_ms;  /* 0 = no clock-skew guard */
	uint32_t    max_past_skew_ms;    /* 0 = past event times always accepted */
	uint32_t    queue_timeout_ms;    /* longest wait in the work queue (every mode) */
	uint32_t    max_connections;     /* nng connections (pipes), all listeners */
	uint32_t    admin_max_connections;
	uint32_t    admin_max_per_address; /* of them from one IP address; 0: no cap */
	char        admin_token_file[SRV_PATH_MAX]; /* "" = no token */
	bool        metrics_need_token;    /* /metrics answers only with the admin token */
	char        health_listen[128];    /* [health] listen: the probes' own listener,
	                                    * "host:port", "unix:/path" or "off" */
	uint32_t    tls_check_interval_s;  /* [tls] check_interval_s: expiry check period */
	char        tls_cert[SRV_PATH_MAX]; /* PEM; "" = none (tls+tcp:// needs it) */
	char        tls_key[SRV_PATH_MAX];
	char        tls_ca[SRV_PATH_MAX];   /* set: client certificates signed by it required */
	char        tls_crl[SRV_PATH_MAX];  /* PEM CRL(s) of the CA: revoked client certificates
	                                     * refused; "" = none (needs tls_ca) */
	char        ipc_group[64];          /* ipc:// sockets' group; "" = vigild's */
	char        user[64];               /* drop to this user after binding; "" = stay */
	char        data_dir[SRV_PATH_MAX];
	store_fsync fsync;
	uint32_t    fsync_interval_ms;
	uint32_t    segment_max_mb;
	uint32_t    retention_days;
	bool        compress;
	char        rules_path[SRV_PATH_MAX];
	bool        rules_watch;
	bool        ready_when_degraded; /* [health]: refused generation/model keeps /readyz 200 */
	/* [cluster] (docs/vigild.md): off while nats is "" */
	char        cluster_nats[SRV_PATH_MAX]; /* comma-separated nats:// URLs */
	char        cluster_name[32];           /* subject vigil.<name>.obs.<replica> */
	char        cluster_replica[32];
	uint32_t    cluster_queue;              /* observations waiting to be published */
	uint32_t    cluster_stream_replicas;    /* JetStream replicas of the stream */
	uint32_t    cluster_retain_hours;       /* the stream's MaxAge */
	/* [store] ship_*: archive shipping (ship.c); off while ship_command is "" */
	char        ship_command[SRV_PATH_MAX];
	uint32_t    ship_retry_max_s;           /* longest delay between retries */
	uint32_t    ship_timeout_s;             /* a command running longer is killed; 0: never */
	bool        quiet;           /* --quiet: --check-config prints only problems */
} srv_config;

typedef enum srv_action {
	SRV_RUN = 0,
	SRV_CHECK_CONFIG,
	SRV_HELP,
	SRV_VERSION,
} srv_action;

void srv_config_defaults(srv_config *ret_cfg);

/*
 * Parses the command line, reads the INI file it names (if any) and lets
 * the flags override it. VIGIL_OK with *ret_action. VIGIL_EINVAL (or
 * VIGIL_ENOMEM) with *reterr filled: for an error in or of the config file,
 * file is its path and line its line (0 for the whole file); field is the
 * INI key or the flag ("workers", "--listen") when the error is about one;
 * msg says what is wrong, starting with that key or flag. Print it with
 * srv_config_err_format after "vigild: ".
 */
vigil_err srv_config_load(int argc, char **argv, srv_config *ret_cfg,
    srv_action *ret_action, vigil_errinfo *reterr);
/* The one line for e: "config FILE:LINE: msg" (or "config FILE: msg") for
 * the config file, msg alone otherwise; into buf (cut at cap), returns buf. */
const char *srv_config_err_format(const vigil_errinfo *e, char *buf, size_t cap);

void srv_config_usage(FILE *out);

/* Whether url is a tls+tcp:// (tls+tcp4, tls+tcp6) URL. */
bool srv_config_url_tls(const char *url);

/* Splits "host:port"; VIGIL_EINVAL if malformed. host is at most 63 bytes. */
vigil_err srv_config_hostport(const char *s, char *ret_host, size_t hostlen,
    uint16_t *ret_port);

/* ============================ reload.c ============================ */

/* One compiled rule file (immutable, shared by rule sets). */
typedef struct srv_rules {
	atomic_uint       refs;
	app_rules        *ar;            /* the file bound for scoring (app.h) */
	rules_prog       *prog;          /* = ar->prog */
	uint32_t          nrules;
	_Atomic uint64_t *hits;          /* per rule index */
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
	store_db_gen *gen;       /* the feature generation scoring reads (pinned), tv
	                          * and model were built from; NULL: none */
	uint64_t     generation; /* its number */
} srv_ruleset;

/* ============================ metrics.c ============================ */

typedef enum srv_req_type {
	SRV_REQ_SCORE = 0,
	SRV_REQ_LABEL,
	SRV_REQ_HEALTH,
	SRV_REQ_RULES_INFO,
	SRV_REQ_UNKNOWN, /* not decoded: malformed, too big, empty */
	SRV_REQ_COUNT_
} srv_req_type;

#define SRV_STATUS_COUNT 8
#define SRV_LAT_BUCKETS  16

typedef struct srv_metrics {
	_Atomic uint64_t requests[SRV_REQ_COUNT_][SRV_STATUS_COUNT];
	_Atomic uint64_t decisions[4];        /* vigil_decision */
	_Atomic uint64_t duplicates;
	_Atomic uint64_t id_conflicts; /* a txn_id reused for another transaction */
	_Atomic uint64_t dry_runs;
	_Atomic uint64_t lat_bucket[SRV_LAT_BUCKETS + 1]; /* score, last = +Inf */
	_Atomic uint64_t lat_sum_ns;
	_Atomic uint64_t lat_count;
	_Atomic uint64_t http_requests;
	_Atomic uint64_t queue_depth;
	/* exposure: connections and refusals per listener (rep.c, admin.c) */
	_Atomic uint64_t nng_connections;       /* gauge */
	_Atomic uint64_t nng_conn_refused;      /* over max_connections */
	_Atomic uint64_t http_connections;      /* gauge */
	_Atomic uint64_t http_conn_closed;      /* closed by vigild: request deadline, buffer cap */
	_Atomic uint64_t http_accept_paused;    /* accept paused: cap reached or no descriptors */
	_Atomic uint64_t http_unauthorized;     /* 401 answers */
	_Atomic uint64_t queue_timeouts;        /* waited longer than queue_timeout_ms */
	_Atomic uint64_t conn_overloaded;       /* over max_inflight_per_connection */
	_Atomic uint64_t nng_conn_unread;       /* closed: twice that, replies unread */
} srv_metrics;

struct srv_server;
struct evbuffer;

void srv_metrics_request(srv_metrics *m, srv_req_type type, Vigil__V1__Status status);
void srv_metrics_latency(srv_metrics *m, uint64_t ns);
/* Appends the Prometheus text exposition of everything to out. */
void srv_metrics_render(struct srv_server *s, struct evbuffer *out);

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
	_Atomic uint64_t load_failures;
	_Atomic uint64_t loads;
	_Atomic int64_t  gen_switched_ms;
	_Atomic uint64_t model_failures; /* generations whose model was refused */
	_Atomic uint64_t model_generation; /* generation of the model serving; 0: none */
	_Atomic uint64_t model_refused; /* the current generation, if its model was refused; 0: not */

	/* store_db_maintain every 10 s (main.c) */
	_Atomic uint64_t maint_runs;
	_Atomic uint64_t maint_failures;
	_Atomic int64_t  maint_ok_ms;   /* last success, Unix ms; 0 = none yet */

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

/* ============================ score.c ============================ */

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

/* ============================ rep.c ============================ */

typedef struct srv_rep srv_rep;

/*
 * Checks what the nng side's configuration names outside itself
 * (--check-config and start-up): the TLS certificate, key and CA files are
 * readable PEM, the key is the certificate's (nng would find out at the
 * first handshake), the certificates are within their validity; ipc_group
 * exists. VIGIL_OK, or VIGIL_EINVAL with the one line in errbuf. Warnings
 * (a certificate that expires within 30 days) go to warn (may be NULL), one
 * line each, prefixed "vigild: warning: ". mbedTLS is used directly for
 * this: the library nng's TLS is built on.
 */
vigil_err srv_rep_check_files(const srv_config *cfg, FILE *warn, char *errbuf,
    size_t errlen);

/*
 * SIGHUP: re-reads [tls] cert, key and ca (the same paths) and gives the
 * new configuration to every tls+tcp:// listener; connections accepted
 * from then on use it, connections already open keep theirs. The files
 * are checked as at start (srv_rep_check_files): on any failure nothing
 * changes and errbuf has the one line (VIGIL_EINVAL, VIGIL_EIO,
 * VIGIL_ENOMEM). VIGIL_ENOTFOUND (errbuf "") when there is no tls+tcp://
 * listener. Main thread only. Never logs (expiry warnings go to stderr).
 */
vigil_err srv_rep_tls_reload(srv_rep *rep, char *errbuf, size_t errlen);

/* Listens on every cfg URL with cfg.workers worker threads. */
vigil_err srv_rep_start(srv_server *s, srv_rep **ret_rep, char *errbuf, size_t errlen);
/* Stops accepting work, answers what is queued, waits up to timeout_ms for
 * in-flight replies, joins the workers and closes the socket. false if the
 * nng socket close did not finish in time: rep is then abandoned and the
 * process should _exit once the store is closed. NULL: true. */
bool      srv_rep_stop(srv_rep *rep, uint32_t timeout_ms);

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

/* ============================ cluster.c ============================ */

/*
 * Cross-card state between replicas through NATS JetStream (docs/operations.md,
 * "Running a cluster"). srv_cluster_start connects in the background (an
 * unreachable NATS is not an error: the replica scores with its own view and
 * says it is degraded) and starts the publisher thread. srv_cluster_publish
 * is called by a scoring thread after a commit that applied txn: it only
 * queues (a bounded queue; full: the observation is dropped and counted).
 * Received observations of other replicas go to store_db_observe, each
 * JetStream message once.
 */
typedef struct srv_cluster srv_cluster;

#define SRV_CLUSTER_DELAY_BUCKETS 17

typedef struct srv_cluster_stats {
	uint64_t published;       /* observations acknowledged by JetStream */
	uint64_t applied;         /* observations of other replicas applied */
	uint64_t dropped;         /* not published: the queue was full */
	uint64_t publish_failures; /* publish attempts that failed (retried) */
	uint64_t bad_messages;    /* messages that did not decode (skipped, logged) */
	uint64_t queued;          /* waiting to be published */
	uint64_t lag;             /* messages of the stream not yet delivered here */
	uint64_t last_seq;        /* last stream sequence handled */
	bool     connected;
	uint64_t delay_bucket[SRV_CLUSTER_DELAY_BUCKETS + 1]; /* last: +Inf */
	double   delay_sum_s;
	uint64_t delay_count;
} srv_cluster_stats;

/* The histogram's upper bounds, seconds. */
extern const double srv_cluster_delay_le[SRV_CLUSTER_DELAY_BUCKETS];

vigil_err srv_cluster_start(srv_server *s, srv_cluster **ret_c, char *errbuf, size_t errlen);
/* Publishes what is queued (up to 2 s), then disconnects. NULL: no-op. */
void      srv_cluster_stop(srv_cluster *c);
void      srv_cluster_publish(srv_cluster *c, const vigil_txn *txn);
void      srv_cluster_get_stats(srv_cluster *c, srv_cluster_stats *ret_stats);
/* Whether the cross-card features lack other replicas' traffic now: NATS
 * unreachable, publishing failing, observations dropped in the last 24
 * hours (the longest entity window), or the start-up replay not at the end
 * of the stream yet. why: one line. */
bool      srv_cluster_degraded(srv_cluster *c, char *why, size_t len);

/* ============================ ship.c ============================ */

/*
 * Archive shipping (docs/vigild.md, "Archive shipping"): a thread that runs
 * cfg.ship_command for each sealed segment of <datadir>/archive in sequence
 * order (data file, then index), retries a failure with a doubling delay,
 * and keeps the last segment shipped in <datadir>/ship-state. Never on the
 * scoring path.
 */
typedef struct srv_ship srv_ship;

typedef struct srv_ship_stats {
	uint64_t shipped_through;    /* sequence number of the last segment shipped; 0: none */
	uint64_t shipped;            /* segments shipped since start */
	uint64_t failures;           /* command runs that failed (each retried) */
	uint64_t unshipped_segments; /* sealed, not shipped yet (as of the last scan) */
	uint64_t unshipped_bytes;    /* their data files' bytes */
	int64_t  last_ok_ms;         /* last segment shipped, Unix ms; 0: none yet */
	bool     failing;            /* the last attempt failed */
	char     last_error[SRV_ERR_MAX]; /* why ("" while not failing) */
} srv_ship_stats;

/* Expands tmpl into buf: %p path, %f file, %r replica, each single-quoted
 * for /bin/sh; %% a %. VIGIL_OK; VIGIL_EINVAL for % followed by anything
 * else; VIGIL_ETOOBIG when buf (cap bytes) is too small. */
vigil_err srv_ship_expand(const char *tmpl, const char *path, const char *file,
    const char *replica, char *buf, size_t cap);
/* Reads <datadir>/ship-state and starts the thread; errbuf says why not
 * (a damaged state file: VIGIL_EINVAL). */
vigil_err srv_ship_start(srv_server *s, srv_ship **ret_sh, char *errbuf, size_t errlen);
/* Kills a command that runs (the segment is shipped again at the next start)
 * and joins the thread. NULL: no-op. */
void      srv_ship_stop(srv_ship *sh);
void      srv_ship_get_stats(srv_ship *sh, srv_ship_stats *ret_stats);

/* ============================ main.c ============================ */

/* One line on stderr, prefixed "vigild: ". */
void srv_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
