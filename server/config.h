/* SPDX-License-Identifier: MIT */
/*
 * server/config.h - private to server/: vigild's configuration (config.c):
 * the settings, read from the INI file and the flags that override it,
 * the path and URL caps, and the helpers the other stages use on them.
 */
#ifndef VIGIL_SERVER_CONFIG_H
#define VIGIL_SERVER_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "vigil.h"

#define SRV_MAX_LISTEN 8
#define SRV_PATH_MAX   1024 /* config, data and rule file paths */
#define SRV_ERR_MAX    (SRV_PATH_MAX + 512)
#define SRV_URL_MAX    256

/* [server] huge_pages: whether vigild's heaps ask for transparent huge
 * pages (server/tune.c). */
typedef enum srv_huge_pages { SRV_HUGE_AUTO, SRV_HUGE_ON, SRV_HUGE_OFF } srv_huge_pages;

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
	uint32_t    tls_handshake_timeout_ms; /* [tls]: connections not a pipe by then closed */
	char        tls_cert[SRV_PATH_MAX]; /* PEM; "" = none (tls+tcp:// needs it) */
	char        tls_key[SRV_PATH_MAX];
	char        tls_ca[SRV_PATH_MAX];   /* set: client certificates signed by it required */
	char        tls_crl[SRV_PATH_MAX];  /* PEM CRL(s) of the CA: revoked client certificates
	                                     * refused; "" = none (needs tls_ca) */
	char        ipc_group[64];          /* ipc:// sockets' group; "" = vigild's */
	char        user[64];               /* drop to this user after binding; "" = stay */
	bool        sched_batch;            /* scheduling_policy = batch (server/tune.c) */
	srv_huge_pages huge_pages;          /* [server] huge_pages (server/tune.c) */
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
 * msg says what is wrong, without repeating it. An error about settings
 * that disagree is at the place of the one to change (file and line, or
 * field = its flag; neither for a default) and msg names both settings and
 * the other's place ("... as [server] admin (FILE:LINE)"). Print
 * it with srv_config_err_format after "vigild: ".
 */
vigil_err srv_config_load(int argc, char **argv, srv_config *ret_cfg,
    srv_action *ret_action, vigil_errinfo *reterr);
/* The one line for e: "config FILE:LINE: KEY: msg" (or "config FILE: msg")
 * for the config file, "FIELD: msg" or msg otherwise; into buf (cut at cap),
 * returns buf. */
const char *srv_config_err_format(const vigil_errinfo *e, char *buf, size_t cap);

void srv_config_usage(FILE *out);

/* Whether url is a tls+tcp:// (tls+tcp4, tls+tcp6) URL. */
bool srv_config_url_tls(const char *url);

#endif /* VIGIL_SERVER_CONFIG_H */
