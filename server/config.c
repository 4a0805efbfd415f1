/* SPDX-License-Identifier: MIT */
/*
 * server/config.c - vigild's configuration: built-in defaults, then the INI
 * file (inih) named by --config, then the command-line flags, which win.
 * Every value is checked here, so the rest of the server can trust it; a bad
 * value is one line naming the place ("config FILE:LINE: key: reason" or
 * "--flag: reason"). Keys and defaults are documented in docs/vigild.md.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <ini.h>
#include <nng/nng.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <strings.h>

#include "cli.h"
#include "live.h" /* LIVE_RETAIN_MS */
#include "srv.h"

#define CFG_MAX_WORKERS      256
#define CFG_MAX_INFLIGHT     65536
#define CFG_MIN_MESSAGE      256
#define CFG_MAX_MESSAGE      (16u << 20)
#define CFG_MAX_TIMEOUT_MS   600000
#define CFG_MAX_SKEW_MS      (30u * 86400000u) /* 30 days */
#define CFG_MAX_CONNECTIONS  1000000
/* store/live.h's LIVE_RETAIN_MS (14 days: what a restart replays) and the
 * segment that spans its start */
#define CFG_RETENTION_MIN_DAYS 15
_Static_assert(LIVE_RETAIN_MS == 14 * VIGIL_MS_PER_DAY, "CFG_RETENTION_MIN_DAYS: 14 days + 1");

void
srv_config_defaults(srv_config *c)
{
	memset(c, 0, sizeof *c);
	snprintf(c->listen[0], sizeof c->listen[0], "tcp://127.0.0.1:9465");
	c->nlisten = 1;
	snprintf(c->admin, sizeof c->admin, "127.0.0.1:9466");
	c->workers = 4;
	c->max_message_bytes = 64 * 1024;
	c->max_inflight = 1024;
	c->max_inflight_per_connection = 256;
	c->request_timeout_ms = 5000;
	c->max_future_skew_ms = 300000;
	c->max_past_skew_ms = 0;
	c->queue_timeout_ms = 500;
	c->max_connections = 1024;
	c->admin_max_connections = 256;
	snprintf(c->health_listen, sizeof c->health_listen, "off");
	c->tls_check_interval_s = 60;
	c->tls_handshake_timeout_ms = 10000;
	c->admin_max_per_address = 64;
	snprintf(c->data_dir, sizeof c->data_dir, "/var/lib/vigil");
	c->fsync = STORE_FSYNC_INTERVAL;
	c->fsync_interval_ms = 50;
	c->segment_max_mb = 256;
	/* The rebuild reads 90 days back from midnight and the model waits 7
	 * for labels: 98 days keep everything the nightly job needs and no
	 * more (docs/vigild.md, retention). */
	c->retention_days = 98;
	c->compress = true;
	c->ship_retry_max_s = 300;
	c->ship_timeout_s = 3600;
	c->rules_path[0] = '\0';
	c->rules_watch = true;
	c->sched_batch = true;
	c->huge_pages = SRV_HUGE_AUTO;
	snprintf(c->cluster_name, sizeof c->cluster_name, "vigil");
	c->cluster_queue = 65536;
	c->cluster_stream_replicas = 1;
	c->cluster_retain_hours = 48; /* two of the longest entity window (24 h) */
}

void
srv_config_usage(FILE *out)
{
	fprintf(out,
	    "usage: vigild [--config FILE] [--data DIR] [--listen URL]...\n"
	    "              [--admin HOST:PORT|unix:/PATH|off]\n"
	    "              [--rules FILE] [--fsync always|interval|never] [--workers N]\n"
	    "              [--max-future-skew MS] [--max-past-skew MS]\n"
	    "              [--tls-cert FILE --tls-key FILE [--tls-ca FILE [--tls-crl FILE]]]\n"
	    "              [--admin-token-file FILE] [--health-listen HOST:PORT|unix:/PATH|off]\n"
	    "              [--user USER]\n"
	    "              [--nats URL[,URL...] --replica NAME [--cluster NAME]]\n"
	    "              [--check-config [--quiet]] [--help] [--version]\n"
	    "\n"
	    "vigil's real-time card-fraud scoring service: answers vigil.v1.Request\n"
	    "messages on nng REQ/REP sockets, serves /metrics and /v1/score over HTTP.\n"
	    "\n"
	    "  -c, --config FILE INI configuration file (flags below override it)\n"
	    "  -d, --data DIR    data directory: archive, feature generations ([store] data_dir)\n"
	    "  -l, --listen URL  nng URL to listen on, tls+tcp://, tcp:// or ipc://; repeatable\n"
	    "                    ([server] listen)\n"
	    "  --admin HOST:PORT|unix:/PATH|off\n"
	    "                    admin HTTP endpoint; unix:/PATH is a local socket (0660)\n"
	    "                    ([server] admin)\n"
	    "  -r, --rules FILE  rule file to serve ([rules] path)\n"
	    "  --fsync always|interval|never\n"
	    "                    archive durability ([store] fsync)\n"
	    "  --workers N       scoring threads with --fsync always ([server] workers)\n"
	    "  --max-future-skew MS\n"
	    "                    refuse transactions whose event time is more than MS ahead\n"
	    "                    of this server's clock; default 300000 (5 min), 0 disables\n"
	    "                    ([server] max_future_skew_ms)\n"
	    "  --max-past-skew MS\n"
	    "                    refuse transactions whose event time is more than MS behind\n"
	    "                    this server's clock; 0 (the default) disables ([server]\n"
	    "                    max_past_skew_ms)\n"
	    "  --tls-cert FILE   PEM certificate of tls+tcp:// listeners ([tls] cert)\n"
	    "  --tls-key FILE    its PEM private key, unencrypted ([tls] key)\n"
	    "  --tls-ca FILE     PEM CA(s): clients must present a certificate signed by one\n"
	    "                    ([tls] ca)\n"
	    "  --tls-crl FILE    PEM certificate revocation list(s) of that CA: a revoked\n"
	    "                    client certificate is refused ([tls] crl; reread on SIGHUP)\n"
	    "  --admin-token-file FILE\n"
	    "                    file holding the admin HTTP bearer token, re-read on SIGHUP\n"
	    "                    ([server] admin_token_file)\n"
	    "  --health-listen HOST:PORT|unix:/PATH|off\n"
	    "                    a second HTTP listener answering only /healthz, /readyz and\n"
	    "                    /livez (no token), for load balancers ([health] listen)\n"
	    "  --user USER       drop to this user (and its groups) once the sockets are bound\n"
	    "                    ([server] user)\n"
	    "  --nats URL[,URL...]\n"
	    "                    NATS server(s), nats:// or tls://HOST:PORT, comma-separated or\n"
	    "                    repeated: share cross-card state with the other replicas\n"
	    "                    ([cluster] nats)\n"
	    "  --replica NAME    this replica's name in the cluster ([cluster] replica)\n"
	    "  --cluster NAME    the cluster's name, default vigil ([cluster] name)\n"
	    "  --check-config    check the configuration and the rule file, then exit\n"
	    "  -q, --quiet       with --check-config: print only problems, not the settings\n"
	    "  -h, --help        show this help and exit\n"
	    "  -V, --version     show the version and exit\n"
	    "\n"
	    "Signals: SIGHUP reloads the rules, the admin token and the TLS certificate, key,\n"
	    "CA and CRL (for new connections); SIGTERM or SIGINT drains and exits 0.\n"
	    "Manual: docs/vigild.md.\n\n");
	vigil_cli_exit_help(out, (const char *const[]){
	    "clean stop (SIGTERM, SIGINT), or --check-config found no problem",
	    "runtime failure (the log says why)",
	    "bad command line, configuration, rule file or a file they name",
	    "another vigild holds the data directory's archive lock" });
}

/* Parses an unsigned decimal in [lo, hi]; reason filled on failure. */
static bool
cfg_uint(const char *s, uint64_t lo, uint64_t hi, uint32_t *ret, char *reason, size_t rlen)
{
	char *end;
	unsigned long long v;

	errno = 0;
	if (*s == '-' || *s == '\0') {
		snprintf(reason, rlen, "\"%s\" is not a non-negative integer", s);
		return false;
	}
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0') {
		snprintf(reason, rlen, "\"%s\" is not a non-negative integer", s);
		return false;
	}
	if (v < lo || v > hi) {
		snprintf(reason, rlen, "%llu is outside [%llu, %llu]", v,
		    (unsigned long long)lo, (unsigned long long)hi);
		return false;
	}
	*ret = (uint32_t)v;
	return true;
}

static bool
cfg_bool(const char *s, bool *ret, char *reason, size_t rlen)
{
	if (strcasecmp(s, "true") == 0 || strcasecmp(s, "yes") == 0 ||
	    strcasecmp(s, "on") == 0 || strcmp(s, "1") == 0) {
		*ret = true;
		return true;
	}
	if (strcasecmp(s, "false") == 0 || strcasecmp(s, "no") == 0 ||
	    strcasecmp(s, "off") == 0 || strcmp(s, "0") == 0) {
		*ret = false;
		return true;
	}
	snprintf(reason, rlen, "\"%s\" is not a boolean (true/false, yes/no, on/off, 1/0)", s);
	return false;
}

static bool
cfg_str(const char *s, char *dst, size_t cap, bool nonempty, char *reason, size_t rlen)
{
	size_t n = strlen(s);

	if (nonempty && n == 0) {
		snprintf(reason, rlen, "must not be empty");
		return false;
	}
	if (n >= cap) {
		snprintf(reason, rlen, "is %zu bytes long, the limit is %zu", n, cap - 1);
		return false;
	}
	memcpy(dst, s, n + 1);
	return true;
}

static bool
cfg_scheme_tcp(const char *scheme)
{
	return strcmp(scheme, "tcp") == 0 || strcmp(scheme, "tcp4") == 0 ||
	    strcmp(scheme, "tcp6") == 0;
}

static bool
cfg_scheme_tls(const char *scheme)
{
	return strcmp(scheme, "tls+tcp") == 0 || strcmp(scheme, "tls+tcp4") == 0 ||
	    strcmp(scheme, "tls+tcp6") == 0;
}

bool
srv_config_url_tls(const char *url)
{
	return strncmp(url, "tls+tcp://", 10) == 0 || strncmp(url, "tls+tcp4://", 11) == 0 ||
	    strncmp(url, "tls+tcp6://", 11) == 0;
}

/*
 * A listen URL as nng_listen will take it, so that --check-config catches
 * what would otherwise fail only at start: tcp://HOST:PORT (tcp4://, tcp6://;
 * an empty HOST or * is every address) with a port from 1 to 65535 and
 * nothing after it, the same with tls+tcp:// (tls+tcp4://, tls+tcp6://), or
 * ipc:///PATH with a path. Host names are resolved at start, not here.
 */
static bool
cfg_url(const char *u, char *reason, size_t rlen)
{
	nng_url *url = NULL;
	bool ok = false;
	int rv;

	if (strlen(u) >= SRV_URL_MAX) {
		snprintf(reason, rlen, "URL is longer than %d bytes", SRV_URL_MAX - 1);
		return false;
	}
	rv = nng_url_parse(&url, u);
	if (rv == NNG_ENOMEM) {
		snprintf(reason, rlen, "out of memory");
		return false;
	}
	if (rv != 0 || (!cfg_scheme_tcp(url->u_scheme) && !cfg_scheme_tls(url->u_scheme) &&
	    strcmp(url->u_scheme, "ipc") != 0)) {
		snprintf(reason, rlen, "\"%s\" is not a URL vigild listens on: write "
		    VIGIL_CLI_URL_FORMS, u);
		goto out;
	}
	if (strcmp(url->u_scheme, "ipc") == 0) {
		if (url->u_path[0] == '\0') {
			snprintf(reason, rlen, "\"%s\" has no path (ipc:///PATH)", u);
			goto out;
		}
		/* a Unix socket's path: longer, nng refuses it only when listening */
		if (strlen(url->u_path) >= sizeof ((struct sockaddr_un *)0)->sun_path) {
			snprintf(reason, rlen, "\"%s\": the socket path is %zu bytes, at most %zu "
			    "fit a Unix socket", u, strlen(url->u_path),
			    sizeof ((struct sockaddr_un *)0)->sun_path - 1);
			goto out;
		}
	} else {
		const char *p = url->u_port;
		unsigned long port = 0;

		if (p[0] == '\0') {
			snprintf(reason, rlen, "\"%s\" has no port (%s://HOST:PORT)", u,
			    url->u_scheme);
			goto out;
		}
		for (; *p >= '0' && *p <= '9' && port <= 65535; p++)
			port = port * 10 + (unsigned long)(*p - '0');
		if (*p != '\0' || port == 0 || port > 65535) {
			snprintf(reason, rlen, "\"%s\": port \"%s\" is not a number from 1 to 65535", u,
			    url->u_port);
			goto out;
		}
		if (url->u_path[0] != '\0' || url->u_userinfo != NULL || url->u_query != NULL ||
		    url->u_fragment != NULL) {
			snprintf(reason, rlen, "\"%s\" has more than %s://HOST:PORT", u,
			    url->u_scheme);
			goto out;
		}
	}
	ok = true;
out:
	if (url != NULL)
		nng_url_free(url);
	return ok;
}

/* "a, b ,c" -> listen[]; replaces the list. */
static bool
cfg_listen_list(srv_config *c, const char *value, char *reason, size_t rlen)
{
	char buf[SRV_MAX_LISTEN * SRV_URL_MAX];
	char *save = NULL, *tok;
	uint32_t n = 0;

	if (!cfg_str(value, buf, sizeof buf, true, reason, rlen))
		return false;
	for (tok = strtok_r(buf, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
		char *e;

		while (*tok == ' ' || *tok == '\t')
			tok++;
		e = tok + strlen(tok);
		while (e > tok && (e[-1] == ' ' || e[-1] == '\t'))
			*--e = '\0';
		if (*tok == '\0')
			continue;
		if (n == SRV_MAX_LISTEN) {
			snprintf(reason, rlen, "more than %d URLs", SRV_MAX_LISTEN);
			return false;
		}
		if (!cfg_url(tok, reason, rlen))
			return false;
		snprintf(c->listen[n++], SRV_URL_MAX, "%s", tok);
	}
	if (n == 0) {
		snprintf(reason, rlen, "no URL given");
		return false;
	}
	c->nlisten = n;
	return true;
}

static bool
cfg_admin(const char *value, char *dst, size_t cap, char *reason, size_t rlen)
{
	char host[64];
	uint16_t port;

	if (strncmp(value, "unix:", 5) == 0) {
		/* a local socket: reachable through its file's permissions only */
		if (value[5] != '/' || strlen(value + 5) >= sizeof ((struct sockaddr_un *)0)->sun_path) {
			snprintf(reason, rlen, "\"%s\": a unix socket needs an absolute path of at "
			    "most %zu bytes (unix:/run/vigil/admin.sock)", value,
			    sizeof ((struct sockaddr_un *)0)->sun_path - 1);
			return false;
		}
		return cfg_str(value, dst, cap, true, reason, rlen);
	}
	if (strcmp(value, "off") != 0 &&
	    !vigil_cli_hostport(value, host, sizeof host, &port)) {
		snprintf(reason, rlen, "\"%s\" is not HOST:PORT (port 1-65535, no scheme: "
		    "127.0.0.1:9466), unix:/PATH or \"off\"", value);
		return false;
	}
	return cfg_str(value, dst, cap, true, reason, rlen);
}

/* [store] ship_command: a /bin/sh command line with %p, %f, %r, %% (ship.c). */
static bool
cfg_ship_command(const char *value, char *dst, size_t cap, char *reason, size_t rlen)
{
	char probe[4 * SRV_PATH_MAX];

	if (!cfg_str(value, dst, cap, true, reason, rlen))
		return false;
	if (srv_ship_expand(value, "p", "f", "r", probe, sizeof probe) == VIGIL_EINVAL) {
		snprintf(reason, rlen, "a %% not followed by p (path), f (file name), r (replica) "
		    "or %% in \"%s\"", value);
		return false;
	}
	return true;
}

/* A cluster or replica name: a NATS subject token and part of a stream
 * name, so letters, digits, '-' and '_' only. */
static bool
cfg_name(const char *value, char *dst, size_t cap, char *reason, size_t rlen)
{
	size_t n = strspn(value, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_");

	if (value[n] != '\0') {
		snprintf(reason, rlen, "\"%s\": byte %zu: only letters, digits, '-' and '_' (a NATS "
		    "subject token)", value, n + 1);
		return false;
	}
	return cfg_str(value, dst, cap, true, reason, rlen);
}

/* nats://HOST:PORT (or tls://), comma-separated, at most 16. */
static bool
cfg_nats_urls(const char *value, char *dst, size_t cap, char *reason, size_t rlen)
{
	const char *p = value;
	uint32_t n = 0;

	for (;;) {
		size_t len = strcspn(p, ","), skip;
		char one[SRV_URL_MAX], host[64];
		uint16_t port;

		if (len == 0 || len >= sizeof one) {
			snprintf(reason, rlen, "URL %u: %s (nats://HOST:PORT, comma-separated)", n + 1,
			    len == 0 ? "empty" : "too long");
			return false;
		}
		memcpy(one, p, len);
		one[len] = '\0';
		skip = strncmp(one, "nats://", 7) == 0 ? 7 : strncmp(one, "tls://", 6) == 0 ? 6 : 0;
		if (skip == 0 || !vigil_cli_hostport(one + skip, host, sizeof host, &port)) {
			snprintf(reason, rlen, "\"%.120s\" is not nats://HOST:PORT or tls://HOST:PORT", one);
			return false;
		}
		if (++n > 16) {
			snprintf(reason, rlen, "more than 16 URLs");
			return false;
		}
		if (p[len] == '\0')
			break;
		p += len + 1;
	}
	return cfg_str(value, dst, cap, true, reason, rlen);
}

#define CFG_SECTIONS "server, store, rules, tls, health, cluster"

/* Whether section is one of CFG_SECTIONS. */
static bool
cfg_section_known(const char *section)
{
	static const char *const known[] = {
		"server", "store", "rules", "tls", "health", "cluster",
	};

	for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
		if (strcmp(section, known[i]) == 0)
			return true;
	return false;
}

/* Applies one key; false with reason if the value is bad or the key unknown. */
static bool
cfg_apply(srv_config *c, const char *section, const char *key, const char *value,
    char *reason, size_t rlen)
{
#define IS(sec, k) (strcmp(section, sec) == 0 && strcmp(key, k) == 0)
	if (IS("server", "listen"))
		return cfg_listen_list(c, value, reason, rlen);
	if (IS("server", "admin"))
		return cfg_admin(value, c->admin, sizeof c->admin, reason, rlen);
	if (IS("server", "workers"))
		return cfg_uint(value, 1, CFG_MAX_WORKERS, &c->workers, reason, rlen);
	if (IS("server", "max_message_bytes"))
		return cfg_uint(value, CFG_MIN_MESSAGE, CFG_MAX_MESSAGE, &c->max_message_bytes,
		    reason, rlen);
	if (IS("server", "max_inflight"))
		return cfg_uint(value, 1, CFG_MAX_INFLIGHT, &c->max_inflight, reason, rlen);
	if (IS("server", "max_inflight_per_connection"))
		return cfg_uint(value, 0, CFG_MAX_INFLIGHT, &c->max_inflight_per_connection,
		    reason, rlen);
	if (IS("server", "request_timeout_ms"))
		return cfg_uint(value, 1, CFG_MAX_TIMEOUT_MS, &c->request_timeout_ms, reason, rlen);
	if (IS("server", "max_future_skew_ms"))
		return cfg_uint(value, 0, CFG_MAX_SKEW_MS, &c->max_future_skew_ms, reason, rlen);
	if (IS("server", "max_past_skew_ms"))
		return cfg_uint(value, 0, CFG_MAX_SKEW_MS, &c->max_past_skew_ms, reason, rlen);
	if (IS("server", "queue_timeout_ms"))
		return cfg_uint(value, 1, CFG_MAX_TIMEOUT_MS, &c->queue_timeout_ms, reason, rlen);
	if (IS("server", "max_connections"))
		return cfg_uint(value, 1, CFG_MAX_CONNECTIONS, &c->max_connections, reason, rlen);
	if (IS("server", "admin_max_connections"))
		return cfg_uint(value, 1, CFG_MAX_CONNECTIONS, &c->admin_max_connections, reason,
		    rlen);
	if (IS("server", "admin_max_connections_per_address"))
		return cfg_uint(value, 0, CFG_MAX_CONNECTIONS, &c->admin_max_per_address, reason,
		    rlen);
	if (IS("server", "admin_token_file"))
		return cfg_str(value, c->admin_token_file, sizeof c->admin_token_file, true, reason,
		    rlen);
	if (IS("server", "ipc_group"))
		return cfg_str(value, c->ipc_group, sizeof c->ipc_group, true, reason, rlen);
	if (IS("server", "user"))
		return cfg_str(value, c->user, sizeof c->user, true, reason, rlen);
	if (IS("server", "huge_pages")) {
		if (strcmp(value, "auto") == 0)
			c->huge_pages = SRV_HUGE_AUTO;
		else if (strcmp(value, "on") == 0)
			c->huge_pages = SRV_HUGE_ON;
		else if (strcmp(value, "off") == 0)
			c->huge_pages = SRV_HUGE_OFF;
		else {
			snprintf(reason, rlen, "\"%s\" is not auto, on or off", value);
			return false;
		}
		return true;
	}
	if (IS("server", "scheduling_policy")) {
		if (strcmp(value, "batch") != 0 && strcmp(value, "normal") != 0) {
			snprintf(reason, rlen, "\"%s\" is not batch or normal", value);
			return false;
		}
		c->sched_batch = strcmp(value, "batch") == 0;
		return true;
	}
	if (IS("tls", "cert"))
		return cfg_str(value, c->tls_cert, sizeof c->tls_cert, true, reason, rlen);
	if (IS("tls", "key"))
		return cfg_str(value, c->tls_key, sizeof c->tls_key, true, reason, rlen);
	if (IS("tls", "ca"))
		return cfg_str(value, c->tls_ca, sizeof c->tls_ca, true, reason, rlen);
	if (IS("tls", "crl"))
		return cfg_str(value, c->tls_crl, sizeof c->tls_crl, true, reason, rlen);
	if (IS("store", "data_dir"))
		return cfg_str(value, c->data_dir, sizeof c->data_dir, true, reason, rlen);
	if (IS("store", "fsync")) {
		if (store_fsync_parse(value, &c->fsync) != VIGIL_OK) {
			snprintf(reason, rlen, "\"%s\" is not always, interval or never", value);
			return false;
		}
		return true;
	}
	if (IS("store", "fsync_interval_ms"))
		return cfg_uint(value, 1, 60000, &c->fsync_interval_ms, reason, rlen);
	if (IS("store", "segment_max_mb"))
		return cfg_uint(value, 1, 65536, &c->segment_max_mb, reason, rlen);
	if (IS("store", "retention_days")) {
		uint32_t d;

		if (!cfg_uint(value, 0, 36500, &d, reason, rlen))
			return false;
		/* a restart rebuilds the live state and the idempotency records
		 * from the archive's last LIVE_RETAIN_MS (and the dedupe horizon,
		 * shorter): a segment closed that long ago still holds some of it */
		if (d > 0 && d < CFG_RETENTION_MIN_DAYS) {
			snprintf(reason, rlen, "%u is below %u: a restart rebuilds the live state "
			    "from the archive's last 14 days, so closed segments must be kept at "
			    "least %u days (0 keeps them all)", d, CFG_RETENTION_MIN_DAYS,
			    CFG_RETENTION_MIN_DAYS);
			return false;
		}
		c->retention_days = d;
		return true;
	}
	if (IS("store", "compress"))
		return cfg_bool(value, &c->compress, reason, rlen);
	if (IS("store", "ship_command"))
		return cfg_ship_command(value, c->ship_command, sizeof c->ship_command, reason, rlen);
	if (IS("store", "ship_retry_max_s"))
		return cfg_uint(value, 1, 86400, &c->ship_retry_max_s, reason, rlen);
	if (IS("store", "ship_timeout_s"))
		return cfg_uint(value, 0, 86400, &c->ship_timeout_s, reason, rlen);
	if (IS("rules", "path"))
		return cfg_str(value, c->rules_path, sizeof c->rules_path, true, reason, rlen);
	if (IS("rules", "watch"))
		return cfg_bool(value, &c->rules_watch, reason, rlen);
	if (IS("health", "listen"))
		return cfg_admin(value, c->health_listen, sizeof c->health_listen, reason, rlen);
	if (IS("server", "metrics_need_token"))
		return cfg_bool(value, &c->metrics_need_token, reason, rlen);
	if (IS("tls", "check_interval_s"))
		return cfg_uint(value, 1, 86400, &c->tls_check_interval_s, reason, rlen);
	if (IS("tls", "handshake_timeout_ms"))
		return cfg_uint(value, 0, 600000, &c->tls_handshake_timeout_ms, reason, rlen);
	if (IS("health", "ready_when_degraded"))
		return cfg_bool(value, &c->ready_when_degraded, reason, rlen);
	if (IS("cluster", "nats"))
		return cfg_nats_urls(value, c->cluster_nats, sizeof c->cluster_nats, reason, rlen);
	if (IS("cluster", "name"))
		return cfg_name(value, c->cluster_name, sizeof c->cluster_name, reason, rlen);
	if (IS("cluster", "replica"))
		return cfg_name(value, c->cluster_replica, sizeof c->cluster_replica, reason, rlen);
	if (IS("cluster", "queue"))
		return cfg_uint(value, 1, 16u << 20, &c->cluster_queue, reason, rlen);
	if (IS("cluster", "stream_replicas"))
		return cfg_uint(value, 1, 5, &c->cluster_stream_replicas, reason, rlen);
	if (IS("cluster", "retain_hours"))
		return cfg_uint(value, 25, 24 * 365, &c->cluster_retain_hours, reason, rlen);
#undef IS
	if (!cfg_section_known(section))
		snprintf(reason, rlen, "unknown section [%s] (expected %s)", section,
		    CFG_SECTIONS);
	else
		snprintf(reason, rlen, "unknown key in [%s]", section);
	return false;
}

typedef struct cfg_ini_ctx {
	srv_config *cfg;
	FILE       *f;
	int         line;      /* of the line inih is parsing (counted by cfg_ini_reader) */
	int         err_line;  /* of the first error found by the handler */
	bool        indented;  /* the line starts with a space or tab */
	int         bad_line;  /* the first line inih cannot be given whole */
	char        bad[160];
	struct {
		char section[16], key[40]; /* the longest key, whole */
		int  line;
	}           seen[64];  /* keys set so far: one value per key (43 known) */
	uint32_t    nseen;
	char        key[64];
	char        reason[256];
	bool        failed;
} cfg_ini_ctx;

/*
 * inih's line reader, counting lines so that the handler knows where it is:
 * ini_parse returns the line of the first error of any kind, so a syntax
 * error above a bad value would otherwise be reported with the bad value's
 * key and reason.
 */
static char *
cfg_ini_reader(char *str, int num, void *stream)
{
	cfg_ini_ctx *ctx = stream;
	bool too_long = false, nul = false;
	int c, n = 0;

	if ((c = getc(ctx->f)) == EOF)
		return NULL;
	ctx->line++;
	for (; c != EOF && c != '\n'; c = getc(ctx->f)) {
		/* Longer than inih's buffer (INI_MAX_LINE, fixed when libinih was
		 * built): inih would parse the rest as a line of its own, leaving a
		 * cut value behind. A CR there is the end of a CRLF line. */
		if (n == num - 1) {
			if (c != '\r')
				too_long = true;
			continue;
		}
		if (c == '\0')
			nul = true; /* inih would stop the line there */
		str[n++] = (char)c;
	}
	str[n] = '\0';
	/* "key = value # note": '#' after a blank starts a comment, as ';' does
	 * in inih (built with ';' alone); kept, it became part of the value
	 * (data_dir "/srv/vigil # x": a new, empty data directory) */
	for (char *p = str + 1; *p != '\0'; p++)
		if (*p == '#' && (p[-1] == ' ' || p[-1] == '\t')) {
			*p = '\0';
			break;
		}
	ctx->indented = str[0] == ' ' || str[0] == '\t';
	/* inih calls the handler for keys only: a section with none would
	 * pass unseen, so a header's name is checked here */
	if (!too_long && !nul && ctx->bad_line == 0) {
		const char *h = str + strspn(str, " \t"), *e;

		if (*h == '[' && (e = strchr(h, ']')) != NULL) {
			char name[48];

			snprintf(name, sizeof name, "%.*s", (int)(e - h - 1), h + 1);
			if (!cfg_section_known(name)) {
				ctx->bad_line = ctx->line;
				snprintf(ctx->bad, sizeof ctx->bad, "unknown section [%s] "
				    "(expected %s)", name, CFG_SECTIONS);
			}
		}
	}
	if (too_long || nul) {
		/* skip the line as blank and report it */
		if (ctx->bad_line == 0) {
			ctx->bad_line = ctx->line;
			if (nul)
				snprintf(ctx->bad, sizeof ctx->bad, "NUL byte in the line");
			else
				snprintf(ctx->bad, sizeof ctx->bad, "line longer than %d bytes", num - 1);
		}
		str[0] = '\0';
	}
	return str;
}

static int
cfg_ini_handler(void *user, const char *section, const char *name, const char *value)
{
	cfg_ini_ctx *ctx = user;
	char reason[256];

	if (name == NULL) /* a bare section header (INI_CALL_HANDLER_ON_NEW_SECTION) */
		return 1;
	/* A key set twice would silently take its last value, and so would one
	 * continued by an indented line (inih calls us again for it). */
	for (uint32_t i = 0; i < ctx->nseen; i++) {
		if (strcmp(ctx->seen[i].section, section) != 0 || strcmp(ctx->seen[i].key, name) != 0)
			continue;
		if (ctx->indented)
			snprintf(reason, sizeof reason, "an indented line continues the value above "
			    "(multi-line values are not supported)");
		else
			snprintf(reason, sizeof reason, "set twice (first at line %d)",
			    ctx->seen[i].line);
		goto fail;
	}
	if (cfg_apply(ctx->cfg, section, name, value != NULL ? value : "", reason,
	    sizeof reason)) {
		/* known keys only, all shorter than the fields */
		if (ctx->nseen < sizeof ctx->seen / sizeof ctx->seen[0]) {
			snprintf(ctx->seen[ctx->nseen].section, sizeof ctx->seen[0].section, "%s",
			    section);
			snprintf(ctx->seen[ctx->nseen].key, sizeof ctx->seen[0].key, "%s", name);
			ctx->seen[ctx->nseen].line = ctx->line;
			ctx->nseen++;
		}
		return 1;
	}
fail:
	if (!ctx->failed) {
		ctx->failed = true;
		ctx->err_line = ctx->line;
		snprintf(ctx->key, sizeof ctx->key, "%s", name);
		snprintf(ctx->reason, sizeof ctx->reason, "%s", reason);
	}
	return 0;
}

/* A flag that sets an INI key, collected by srv_config_load. */
typedef struct cfg_flag {
	const char *section, *key, *value, *flag;
} cfg_flag;

/* Where each setting's value came from, for the errors of settings that
 * disagree: the last flag that set it (flags win), else its line of the
 * file, else the default. */
typedef struct cfg_where {
	const cfg_ini_ctx *ini;   /* NULL: no file */
	const char        *path;  /* the file's */
	const cfg_flag    *flags;
	uint32_t           nflags;
	bool               listen_flag, nats_flag; /* --listen, --nats given */
} cfg_where;

/* "--flag", or the line of the file ("" for the default) into *ret_line. */
static const char *
cfg_where_find(const cfg_where *w, const char *section, const char *key, int *ret_line)
{
	*ret_line = 0;
	if (strcmp(section, "server") == 0 && strcmp(key, "listen") == 0 && w->listen_flag)
		return "--listen";
	if (strcmp(section, "cluster") == 0 && strcmp(key, "nats") == 0 && w->nats_flag)
		return "--nats";
	for (uint32_t i = w->nflags; i-- > 0;)
		if (strcmp(w->flags[i].section, section) == 0 && strcmp(w->flags[i].key, key) == 0)
			return w->flags[i].flag;
	for (uint32_t i = 0; w->ini != NULL && i < w->ini->nseen; i++)
		if (strcmp(w->ini->seen[i].section, section) == 0 &&
		    strcmp(w->ini->seen[i].key, key) == 0)
			*ret_line = w->ini->seen[i].line;
	return "";
}

/* "FILE:LINE", "--flag" or "default": the other setting's place in a message. */
static const char *
cfg_where_text(const cfg_where *w, const char *section, const char *key, char *buf, size_t cap)
{
	int line;
	const char *flag = cfg_where_find(w, section, key, &line);

	if (flag[0] != '\0')
		snprintf(buf, cap, "%s", flag);
	else if (line > 0)
		snprintf(buf, cap, "%s:%d", w->path, line);
	else
		snprintf(buf, cap, "default");
	return buf;
}

static void
cfg_file_err(vigil_errinfo *e, const char *path, int line, const char *field, const char *fmt,
    ...) __attribute__((format(printf, 5, 6)));

/* The error of settings that disagree, at the place of [section] key (the
 * one to change): "config FILE:LINE: msg", "--flag: msg", or msg alone for
 * a default. msg names the other setting and its place (cfg_where_text). */
static void
cfg_cross_err(vigil_errinfo *e, const cfg_where *w, const char *section, const char *key,
    const char *msg)
{
	int line;
	const char *flag = cfg_where_find(w, section, key, &line);

	if (line > 0)
		cfg_file_err(e, w->path, line, NULL, "%s", msg);
	else
		vigil_errinfo_set(e, flag[0] != '\0' ? flag : NULL, "%s", msg);
}

/*
 * The TLS settings and the listen URLs agree: a tls+tcp:// URL needs a
 * certificate and its key; a key, a CA or a certificate alone is an
 * incomplete setting; TLS settings without any tls+tcp:// URL would leave
 * an operator believing the socket is encrypted.
 */
static bool
cfg_tls_consistent(const srv_config *c, const cfg_where *w, vigil_errinfo *reterr)
{
	const char *tls_url = NULL, *first;
	bool any = c->tls_cert[0] != '\0' || c->tls_key[0] != '\0' || c->tls_ca[0] != '\0' ||
	    c->tls_crl[0] != '\0';
	char msg[2 * sizeof reterr->msg], other[sizeof reterr->file];

	first = c->tls_cert[0] != '\0' ? "cert" : c->tls_key[0] != '\0' ? "key" :
	    c->tls_ca[0] != '\0' ? "ca" : "crl";
	for (uint32_t i = 0; i < c->nlisten && tls_url == NULL; i++)
		if (srv_config_url_tls(c->listen[i]))
			tls_url = c->listen[i];
	if (tls_url != NULL && (c->tls_cert[0] == '\0' || c->tls_key[0] == '\0')) {
		snprintf(msg, sizeof msg, "listen %s: a tls+tcp:// URL needs [tls] cert and key "
		    "(--tls-cert, --tls-key)", tls_url);
		cfg_cross_err(reterr, w, "server", "listen", msg);
		return false;
	}
	if (any && (c->tls_cert[0] == '\0' || c->tls_key[0] == '\0')) {
		snprintf(msg, sizeof msg, "[tls] %s is set without %s: set cert and key together "
		    "(--tls-cert, --tls-key)", first, c->tls_cert[0] != '\0' ? "key" :
		    c->tls_key[0] != '\0' ? "cert" : "cert and key");
		cfg_cross_err(reterr, w, "tls", first, msg);
		return false;
	}
	if (c->tls_crl[0] != '\0' && c->tls_ca[0] == '\0') {
		snprintf(msg, sizeof msg, "[tls] crl is set without ca: a revocation list needs the "
		    "CA whose client certificates it revokes (--tls-ca)");
		cfg_cross_err(reterr, w, "tls", "crl", msg);
		return false;
	}
	if (any && tls_url == NULL) {
		snprintf(msg, sizeof msg, "[tls] %s is set but no [server] listen URL (%s) is "
		    "tls+tcp://: the scoring socket would not be encrypted", first,
		    cfg_where_text(w, "server", "listen", other, sizeof other));
		cfg_cross_err(reterr, w, "tls", first, msg);
		return false;
	}
	return true;
}

/* vigild's flags, a row each (VIGIL_CLI_OPT_ENUM, common/cli.h). --admin,
 * --fsync and --workers have no short form: their letter is only what
 * getopt_long returns for them. */
#define SRV_OPTIONS(X) \
	X(OPT_CONFIG,        "config",           required_argument, 'c') \
	X(OPT_DATA,          "data",             required_argument, 'd') \
	X(OPT_LISTEN,        "listen",           required_argument, 'l') \
	X(OPT_ADMIN,         "admin",            required_argument, 'a') \
	X(OPT_RULES,         "rules",            required_argument, 'r') \
	X(OPT_FSYNC,         "fsync",            required_argument, 'f') \
	X(OPT_WORKERS,       "workers",          required_argument, 'w') \
	X(OPT_SKEW,          "max-future-skew",  required_argument, 0) \
	X(OPT_PAST_SKEW,     "max-past-skew",    required_argument, 0) \
	X(OPT_TLS_CERT,      "tls-cert",         required_argument, 0) \
	X(OPT_TLS_KEY,       "tls-key",          required_argument, 0) \
	X(OPT_TLS_CA,        "tls-ca",           required_argument, 0) \
	X(OPT_TLS_CRL,       "tls-crl",          required_argument, 0) \
	X(OPT_TOKEN_FILE,    "admin-token-file", required_argument, 0) \
	X(OPT_USER,          "user",             required_argument, 0) \
	X(OPT_HEALTH_LISTEN, "health-listen",    required_argument, 0) \
	X(OPT_NATS,          "nats",             required_argument, 0) \
	X(OPT_REPLICA,       "replica",          required_argument, 0) \
	X(OPT_CLUSTER,       "cluster",          required_argument, 0) \
	X(OPT_CHECK,         "check-config",     no_argument,       0) \
	X(OPT_QUIET,         "quiet",            no_argument,       'q') \
	X(OPT_HELP,          "help",             no_argument,       'h') \
	X(OPT_VERSION,       "version",          no_argument,       'V')

VIGIL_CLI_OPT_ENUM(SRV_OPTIONS);

/* An error in or about the config file: file set (line when known). */
static void
cfg_file_err(vigil_errinfo *e, const char *path, int line, const char *field, const char *fmt,
    ...)
{
	va_list ap;

	vigil_errinfo_set(e, field, "%s", "");
	snprintf(e->file, sizeof e->file, "%s", path);
	e->line = line > 0 ? (uint32_t)line : 0;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof e->msg, fmt, ap);
	va_end(ap);
	vigil_utf8_line(e->msg);
}

const char *
srv_config_err_format(const vigil_errinfo *e, char *buf, size_t cap)
{
	char line[sizeof e->file + sizeof e->msg + 32];

	snprintf(buf, cap, "%s%s", e->file[0] != '\0' ? "config " : "",
	    vigil_errinfo_format(e, line, sizeof line));
	return buf;
}

vigil_err
srv_config_load(int argc, char **argv, srv_config *ret_cfg, srv_action *ret_action,
    vigil_errinfo *reterr)
{
	static const struct option longopts[] = {
		SRV_OPTIONS(VIGIL_CLI_OPT_ENTRY) { NULL, 0, NULL, 0 },
	};
	/* Flags are collected first and applied after the file, so they win
	 * wherever they appear on the line. */
	cfg_flag flags[64];
	cfg_ini_ctx ictx = { .cfg = NULL };
	cfg_where where = { .flags = flags };
	char listen_join[SRV_MAX_LISTEN * SRV_URL_MAX] = "";
	char nats_join[SRV_PATH_MAX] = "";
	const char *config_path = NULL;
	srv_action action = SRV_RUN;
	uint32_t nflags = 0, nlisten = 0;
	bool quiet = false;
	srv_config c;
	char reason[256];
	int opt;

	srv_config_defaults(&c);
	optind = 1;
	opterr = 0;
	/* Short letters only from the shared table (common/cli.h, docs/tools.md). */
	while ((opt = getopt_long(argc, argv, "+c:d:l:r:qhV", longopts, NULL)) != -1) {
		const char *section = NULL, *key = NULL, *flag = NULL;

		switch (opt) {
		case OPT_CONFIG:  config_path = optarg; continue;
		case OPT_CHECK:   action = SRV_CHECK_CONFIG; continue;
		case OPT_QUIET:   quiet = true; continue;
		case OPT_HELP:    *ret_action = SRV_HELP; return VIGIL_OK;
		case OPT_VERSION: *ret_action = SRV_VERSION; return VIGIL_OK;
		case OPT_LISTEN:
			if (nlisten == SRV_MAX_LISTEN) {
				vigil_errinfo_set(reterr, "--listen", "more than %d URLs (see --help)",
				    SRV_MAX_LISTEN);
				return VIGIL_EINVAL;
			}
			if (strlen(listen_join) + strlen(optarg) + 2 > sizeof listen_join) {
				vigil_errinfo_set(reterr, "--listen", "URL list too long (see --help)");
				return VIGIL_EINVAL;
			}
			if (nlisten++ > 0)
				strcat(listen_join, ",");
			strcat(listen_join, optarg);
			continue;
		case OPT_DATA:    section = "store";  key = "data_dir"; flag = "--data"; break;
		case OPT_ADMIN:   section = "server"; key = "admin";    flag = "--admin"; break;
		case OPT_RULES:   section = "rules";  key = "path";     flag = "--rules"; break;
		case OPT_FSYNC:   section = "store";  key = "fsync";    flag = "--fsync"; break;
		case OPT_WORKERS: section = "server"; key = "workers";  flag = "--workers"; break;
		case OPT_SKEW:    section = "server"; key = "max_future_skew_ms";
			flag = "--max-future-skew"; break;
		case OPT_PAST_SKEW: section = "server"; key = "max_past_skew_ms";
			flag = "--max-past-skew"; break;
		case OPT_TLS_CERT: section = "tls"; key = "cert"; flag = "--tls-cert"; break;
		case OPT_TLS_KEY:  section = "tls"; key = "key";  flag = "--tls-key"; break;
		case OPT_TLS_CA:   section = "tls"; key = "ca";   flag = "--tls-ca"; break;
		case OPT_TLS_CRL:  section = "tls"; key = "crl";  flag = "--tls-crl"; break;
		case OPT_TOKEN_FILE: section = "server"; key = "admin_token_file";
			flag = "--admin-token-file"; break;
		case OPT_USER:     section = "server"; key = "user"; flag = "--user"; break;
		case OPT_HEALTH_LISTEN: section = "health"; key = "listen";
			flag = "--health-listen"; break;
		case OPT_NATS:
			/* repeated: joined, then applied as one list */
			if (strlen(nats_join) + strlen(optarg) + 2 > sizeof nats_join) {
				vigil_errinfo_set(reterr, "--nats", "URL list too long (see --help)");
				return VIGIL_EINVAL;
			}
			if (nats_join[0] != '\0')
				strcat(nats_join, ",");
			strcat(nats_join, optarg);
			continue;
		case OPT_REPLICA:  section = "cluster"; key = "replica"; flag = "--replica"; break;
		case OPT_CLUSTER:  section = "cluster"; key = "name"; flag = "--cluster"; break;
		case '?':
		default:
		{
			char text[256];

			vigil_errinfo_set(reterr, NULL, "%s (see --help)",
			    vigil_cli_bad_option_text(text, sizeof text, argv));
			return VIGIL_EINVAL;
		}
		}
		if (nflags == sizeof flags / sizeof flags[0]) {
			vigil_errinfo_set(reterr, NULL, "too many options");
			return VIGIL_EINVAL;
		}
		flags[nflags].section = section;
		flags[nflags].key = key;
		flags[nflags].value = optarg;
		flags[nflags].flag = flag;
		nflags++;
	}
	if (optind < argc) {
		vigil_errinfo_set(reterr, NULL, "unexpected argument \"%s\" (see --help)",
		    argv[optind]);
		return VIGIL_EINVAL;
	}

	if (config_path != NULL) {
		int line;

		if (!cfg_str(config_path, c.config_path, sizeof c.config_path, true, reason,
		    sizeof reason)) {
			vigil_errinfo_set(reterr, "--config", "%s", reason);
			return VIGIL_EINVAL;
		}
		ictx.cfg = &c;
		where.ini = &ictx;
		where.path = config_path;
		ictx.f = fopen(config_path, "r");
		if (ictx.f == NULL) {
			cfg_file_err(reterr, config_path, 0, NULL, "cannot open: %s", strerror(errno));
			return VIGIL_EINVAL;
		}
		errno = 0;
		line = ini_parse_stream(cfg_ini_reader, &ictx, cfg_ini_handler, &ictx);
		if (ferror(ictx.f)) {
			cfg_file_err(reterr, config_path, 0, NULL, "cannot read: %s",
			    strerror(errno != 0 ? errno : EIO));
			fclose(ictx.f);
			return VIGIL_EINVAL;
		}
		fclose(ictx.f);
		if (line == -2) {
			cfg_file_err(reterr, config_path, 0, NULL, "out of memory");
			return VIGIL_ENOMEM;
		}
		if (ictx.bad_line > 0 && (line <= 0 || ictx.bad_line < line)) {
			cfg_file_err(reterr, config_path, ictx.bad_line, NULL, "%s", ictx.bad);
			return VIGIL_EINVAL;
		}
		/* line is the first error of either kind: the handler's, or a syntax error above it */
		if (ictx.failed && line == ictx.err_line) {
			cfg_file_err(reterr, config_path, line, ictx.key, "%s", ictx.reason);
			return VIGIL_EINVAL;
		}
		if (line > 0) {
			cfg_file_err(reterr, config_path, line, NULL, "syntax error (expected "
			    "[section] or key = value)");
			return VIGIL_EINVAL;
		}
	}

	for (uint32_t i = 0; i < nflags; i++) {
		if (!cfg_apply(&c, flags[i].section, flags[i].key, flags[i].value, reason,
		    sizeof reason)) {
			vigil_errinfo_set(reterr, flags[i].flag, "%s (see --help)", reason);
			return VIGIL_EINVAL;
		}
	}
	if (nlisten > 0 && !cfg_listen_list(&c, listen_join, reason, sizeof reason)) {
		vigil_errinfo_set(reterr, "--listen", "%s (see --help)", reason);
		return VIGIL_EINVAL;
	}
	if (nats_join[0] != '\0' && !cfg_nats_urls(nats_join, c.cluster_nats,
	    sizeof c.cluster_nats, reason, sizeof reason)) {
		vigil_errinfo_set(reterr, "--nats", "%s (see --help)", reason);
		return VIGIL_EINVAL;
	}
	where.nflags = nflags;
	where.listen_flag = nlisten > 0;
	where.nats_flag = nats_join[0] != '\0';
	/* Settings that disagree: the error is at the place of the one to change */
	if (c.cluster_nats[0] != '\0' && c.cluster_replica[0] == '\0') {
		cfg_cross_err(reterr, &where, "cluster", "nats", "[cluster] nats is set but not "
		    "this replica's name: set [cluster] replica or --replica");
		return VIGIL_EINVAL;
	}
	if (c.cluster_nats[0] == '\0' && c.cluster_replica[0] != '\0') {
		cfg_cross_err(reterr, &where, "cluster", "replica", "[cluster] replica is set but "
		    "no NATS server: set [cluster] nats or --nats");
		return VIGIL_EINVAL;
	}
	if (c.rules_path[0] == '\0') {
		vigil_errinfo_set(reterr, NULL, "no rule file: set [rules] path or --rules");
		return VIGIL_EINVAL;
	}
	if (!cfg_tls_consistent(&c, &where, reterr))
		return VIGIL_EINVAL;
	if (strcmp(c.health_listen, "off") != 0 && (strcmp(c.admin, "off") == 0 ||
	    strcmp(c.health_listen, c.admin) == 0)) {
		char msg[2 * sizeof reterr->msg], other[sizeof reterr->file];

		cfg_where_text(&where, "server", "admin", other, sizeof other);
		if (strcmp(c.admin, "off") == 0)
			snprintf(msg, sizeof msg, "[health] listen is set but [server] admin is off "
			    "(%s): the probes' listener runs beside the admin endpoint", other);
		else
			snprintf(msg, sizeof msg, "[health] listen \"%s\" is the same address as "
			    "[server] admin (%s): the probes' listener needs an address of its own",
			    c.health_listen, other);
		cfg_cross_err(reterr, &where, "health", "listen", msg);
		return VIGIL_EINVAL;
	}
	if (quiet && action != SRV_CHECK_CONFIG) {
		vigil_errinfo_set(reterr, "--quiet", "goes with --check-config (see --help)");
		return VIGIL_EINVAL;
	}
	c.quiet = quiet;
	*ret_cfg = c;
	*ret_action = action;
	return VIGIL_OK;
}

