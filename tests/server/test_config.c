/* SPDX-License-Identifier: MIT */
/*
 * tests/server/test_config.c - unit tests of vigild's configuration
 * (server/config.c): defaults, INI keys, flags winning over the file, and
 * the one-line error for every bad value, down to the line number; listen
 * URLs checked as nng will parse them at start; the TLS settings and the
 * listen URLs agree; the exposure keys (issue 17).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "cli.h"
#include "srv.h"

static char ini_path[64];

/* The test's one file at a time: the one before goes when the next is made,
 * the last at exit, so no run leaves files in /tmp. */
static void
ini_remove(void)
{
	if (ini_path[0] != '\0')
		unlink(ini_path);
	ini_path[0] = '\0';
}

static void
write_ini(const char *text)
{
	static bool registered;
	FILE *f;

	if (!registered)
		registered = atexit(ini_remove) == 0;
	ini_remove();
	snprintf(ini_path, sizeof ini_path, "/tmp/vigild-cfg-XXXXXX");
	{
		int fd = mkstemp(ini_path);
		assert_true(fd >= 0);
		close(fd);
	}
	f = fopen(ini_path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* The detail of load's last error, beside the line it printed into err. */
static vigil_errinfo last_err;

static vigil_err
load(srv_config *cfg, srv_action *act, char *err, size_t errlen, ...)
{
	vigil_err rv;
	char *argv[32];
	int argc = 0;
	va_list ap;
	char *a;

	argv[argc++] = "vigild";
	va_start(ap, errlen);
	while ((a = va_arg(ap, char *)) != NULL && argc < 31)
		argv[argc++] = a;
	va_end(ap);
	argv[argc] = NULL;
	err[0] = '\0';
	memset(&last_err, 0, sizeof last_err);
	rv = srv_config_load(argc, argv, cfg, act, &last_err);
	if (rv != VIGIL_OK)
		srv_config_err_format(&last_err, err, errlen);
	return rv;
}

/* write_ini(text), then load with --config and that file alone. */
static vigil_err
load_ini(srv_config *cfg, srv_action *act, char *err, size_t errlen, const char *text)
{
	write_ini(text);
	return load(cfg, act, err, errlen, "--config", ini_path, NULL);
}

static void
test_defaults(void **state)
{
	srv_config c;
	srv_action act;
	char err[512];

	(void)state;
	assert_int_equal(load(&c, &act, err, sizeof err, "--rules", "r.rules", NULL), VIGIL_OK);
	assert_int_equal(act, SRV_RUN);
	assert_int_equal(c.nlisten, 1);
	assert_string_equal(c.listen[0], "tcp://127.0.0.1:9465");
	assert_string_equal(c.admin, "127.0.0.1:9466");
	assert_string_equal(c.rules_path, "r.rules");
	assert_true(c.rules_watch);
	assert_int_equal(c.fsync, STORE_FSYNC_INTERVAL);
	assert_int_equal(c.max_future_skew_ms, 300000);
	assert_int_equal(c.max_past_skew_ms, 0);
	assert_int_equal(c.queue_timeout_ms, 500);
	assert_int_equal(c.max_connections, 1024);
	assert_int_equal(c.admin_max_connections, 256);
	assert_int_equal(c.admin_max_per_address, 64);
	assert_string_equal(c.admin_token_file, "");
	assert_string_equal(c.tls_cert, "");
	assert_string_equal(c.user, "");
	assert_string_equal(c.ipc_group, "");
}

/*
 * tls+tcp:// needs a certificate and its key; a partial [tls] section, or
 * TLS settings without any tls+tcp:// URL, is refused: the operator would
 * believe the socket encrypted. Flags and keys are the same settings.
 */
static void
test_tls_settings(void **state)
{
	srv_config c;
	srv_action act;
	char err[512], want[600];

	(void)state;
	assert_int_equal(load(&c, &act, err, sizeof err, "--rules", "r", "--listen",
	    "tls+tcp://127.0.0.1:9465", NULL), VIGIL_EINVAL);
	assert_string_equal(err, "--listen: listen tls+tcp://127.0.0.1:9465: a tls+tcp:// URL needs "
	    "[tls] cert and key (--tls-cert, --tls-key)");
	assert_int_equal(load(&c, &act, err, sizeof err, "--rules", "r", "--listen",
	    "tls+tcp://127.0.0.1:9465", "--tls-cert", "c.pem", NULL), VIGIL_EINVAL);
	assert_non_null(strstr(err, "needs [tls] cert and key"));
	assert_int_equal(load(&c, &act, err, sizeof err, "--rules", "r", "--tls-cert", "c.pem",
	    "--tls-key", "k.pem", NULL), VIGIL_EINVAL);
	assert_string_equal(err, "--tls-cert: [tls] cert is set but no [server] listen URL (default) "
	    "is tls+tcp://: the scoring socket would not be encrypted");
	assert_int_equal(load(&c, &act, err, sizeof err, "--rules", "r", "--tls-ca", "ca.pem",
	    NULL), VIGIL_EINVAL);
	assert_string_equal(err, "--tls-ca: [tls] ca is set without cert and key: set cert and key "
	    "together (--tls-cert, --tls-key)");
	assert_int_equal(load(&c, &act, err, sizeof err, "--rules", "r", "--tls-crl", "crl.pem",
	    NULL), VIGIL_EINVAL);
	assert_string_equal(err, "--tls-crl: [tls] crl is set without cert and key: set cert and key "
	    "together (--tls-cert, --tls-key)");
	assert_int_equal(load(&c, &act, err, sizeof err, "--rules", "r", "--tls-key", "k.pem",
	    NULL), VIGIL_EINVAL);
	assert_string_equal(err, "--tls-key: [tls] key is set without cert: set cert and key together "
	    "(--tls-cert, --tls-key)");

	assert_int_equal(load(&c, &act, err, sizeof err, "--rules", "r", "--listen",
	    "tls+tcp://127.0.0.1:9465", "--listen", "ipc:///tmp/x.sock", "--tls-cert", "c.pem",
	    "--tls-key", "k.pem", "--tls-ca", "ca.pem", NULL), VIGIL_OK);
	assert_int_equal(c.nlisten, 2);
	assert_string_equal(c.tls_cert, "c.pem");
	assert_string_equal(c.tls_key, "k.pem");
	assert_string_equal(c.tls_ca, "ca.pem");
	assert_true(srv_config_url_tls(c.listen[0]));
	assert_false(srv_config_url_tls(c.listen[1]));
	assert_true(srv_config_url_tls("tls+tcp6://[::1]:1"));

	/* the same from the file; a tls URL with no port is named like a tcp one */
	assert_int_equal(load_ini(&c, &act, err, sizeof err,
	    "[server]\nlisten = tls+tcp4://0.0.0.0:9465\n[tls]\ncert = /etc/c.pem\n"
	    "key = /etc/k.pem\nca = /etc/ca.pem\n[rules]\npath = r\n"), VIGIL_OK);
	assert_string_equal(c.tls_ca, "/etc/ca.pem");
	unlink(ini_path);
	assert_int_equal(load_ini(&c, &act, err, sizeof err,
	    "[server]\nlisten = tls+tcp://h\n[rules]\npath = r\n"), VIGIL_EINVAL);
	snprintf(want, sizeof want, "config %s:2: listen: \"tls+tcp://h\" has no port "
	    "(tls+tcp://HOST:PORT)", ini_path);
	assert_string_equal(err, want);
	unlink(ini_path);
	assert_int_equal(load_ini(&c, &act, err, sizeof err,
	    "[tls]\ncrt = x\n[rules]\npath = r\n"), VIGIL_EINVAL);
	snprintf(want, sizeof want, "config %s:2: crt: unknown key in [tls]", ini_path);
	assert_string_equal(err, want);
	unlink(ini_path);
}

/* The other exposure keys: ranges, and flags over the file. */
static void
test_exposure_keys(void **state)
{
	srv_config c;
	srv_action act;
	char err[512], want[600];

	(void)state;
	write_ini("[server]\nmax_connections = 100\nadmin_max_connections = 8\n"
	    "admin_max_connections_per_address = 3\nqueue_timeout_ms = 250\nmax_past_skew_ms = 86400000\nadmin_token_file = /etc/t\n"
	    "ipc_group = vigil-clients\nuser = vigil\n[rules]\npath = r\n");
	assert_int_equal(load(&c, &act, err, sizeof err, "--config", ini_path,
	    "--max-past-skew", "3600000", "--admin-token-file", "/run/t", "--user", "nobody",
	    NULL), VIGIL_OK);
	assert_int_equal(c.max_connections, 100);
	assert_int_equal(c.admin_max_connections, 8);
	assert_int_equal(c.admin_max_per_address, 3);
	assert_int_equal(c.queue_timeout_ms, 250);
	assert_int_equal(c.max_past_skew_ms, 3600000);
	assert_string_equal(c.admin_token_file, "/run/t");
	assert_string_equal(c.ipc_group, "vigil-clients");
	assert_string_equal(c.user, "nobody");
	unlink(ini_path);

	assert_int_equal(load_ini(&c, &act, err, sizeof err,
	    "[server]\nmax_connections = 0\n[rules]\npath = r\n"), VIGIL_EINVAL);
	snprintf(want, sizeof want, "config %s:2: max_connections: 0 is outside [1, 1000000]",
	    ini_path);
	assert_string_equal(err, want);
	unlink(ini_path);
	assert_int_equal(load(&c, &act, err, sizeof err, "--rules", "r", "--max-past-skew",
	    "2592000001", NULL), VIGIL_EINVAL);
	assert_string_equal(err, "--max-past-skew: 2592000001 is outside [0, 2592000000] (see --help)");
	/* retention shorter than what a restart replays is refused; 15 and 0 are fine */
	assert_int_equal(load_ini(&c, &act, err, sizeof err,
	    "[store]\nretention_days = 14\n[rules]\npath = r\n"), VIGIL_EINVAL);
	snprintf(want, sizeof want, "config %s:2: retention_days: 14 is below 15: a restart "
	    "rebuilds the live state from the archive's last 14 days, so closed segments must be "
	    "kept at least 15 days (0 keeps them all)", ini_path);
	assert_string_equal(err, want);
	unlink(ini_path);
	assert_int_equal(load_ini(&c, &act, err, sizeof err,
	    "[store]\nretention_days = 15\n[rules]\npath = r\n"), VIGIL_OK);
	assert_int_equal(c.retention_days, 15);
	unlink(ini_path);
	assert_int_equal(load_ini(&c, &act, err, sizeof err,
	    "[store]\nretention_days = 0\n[rules]\npath = r\n"), VIGIL_OK);
	assert_int_equal(c.retention_days, 0);
	unlink(ini_path);
	assert_int_equal(load(&c, &act, err, sizeof err, "--rules", "r", "--admin-token-file", "",
	    NULL), VIGIL_EINVAL);
	assert_string_equal(err, "--admin-token-file: must not be empty (see --help)");
}

/* [server] huge_pages: auto by default, on, off, anything else named. */
static void
test_huge_pages(void **state)
{
	static const struct {
		const char    *value;
		srv_huge_pages want;
	} ok[] = { { "auto", SRV_HUGE_AUTO }, { "on", SRV_HUGE_ON }, { "off", SRV_HUGE_OFF } };
	srv_config c;
	srv_action act;
	char err[512], want[600], text[128];

	(void)state;
	assert_int_equal(load(&c, &act, err, sizeof err, "--rules", "r", NULL), VIGIL_OK);
	assert_int_equal(c.huge_pages, SRV_HUGE_AUTO);
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		snprintf(text, sizeof text, "[server]\nhuge_pages = %s\n[rules]\npath = r\n",
		    ok[i].value);
		assert_int_equal(load_ini(&c, &act, err, sizeof err, text), VIGIL_OK);
		assert_int_equal(c.huge_pages, ok[i].want);
		unlink(ini_path);
	}
	assert_int_equal(load_ini(&c, &act, err, sizeof err,
	    "[server]\nhuge_pages = yes\n[rules]\npath = r\n"), VIGIL_EINVAL);
	snprintf(want, sizeof want, "config %s:2: huge_pages: \"yes\" is not auto, on or off",
	    ini_path);
	assert_string_equal(err, want);
	unlink(ini_path);
}

/* [server] scheduling_policy: batch by default, normal, anything else named. */
static void
test_scheduling_policy(void **state)
{
	srv_config c;
	srv_action act;
	char err[512], want[600];

	(void)state;
	assert_int_equal(load(&c, &act, err, sizeof err, "--rules", "r", NULL), VIGIL_OK);
	assert_true(c.sched_batch);
	assert_int_equal(load_ini(&c, &act, err, sizeof err,
	    "[server]\nscheduling_policy = normal\n[rules]\npath = r\n"), VIGIL_OK);
	assert_false(c.sched_batch);
	unlink(ini_path);
	assert_int_equal(load_ini(&c, &act, err, sizeof err,
	    "[server]\nscheduling_policy = batch\n[rules]\npath = r\n"), VIGIL_OK);
	assert_true(c.sched_batch);
	unlink(ini_path);
	assert_int_equal(load_ini(&c, &act, err, sizeof err,
	    "[server]\nscheduling_policy = fifo\n[rules]\npath = r\n"), VIGIL_EINVAL);
	snprintf(want, sizeof want,
	    "config %s:2: scheduling_policy: \"fifo\" is not batch or normal", ini_path);
	assert_string_equal(err, want);
	unlink(ini_path);
}

/* Issue 28: [health] listen / --health-listen, [server] metrics_need_token,
 * [tls] check_interval_s. */
static void
test_probe_and_expiry_keys(void **state)
{
	srv_config c;
	srv_action act;
	char err[512], want[600];

	(void)state;
	assert_int_equal(load(&c, &act, err, sizeof err, "--rules", "r", NULL), VIGIL_OK);
	assert_string_equal(c.health_listen, "off");
	assert_false(c.metrics_need_token);
	assert_int_equal(c.tls_check_interval_s, 60);
	assert_int_equal(load_ini(&c, &act, err, sizeof err,
	    "[server]\nmetrics_need_token = true\n[health]\nlisten = 127.0.0.1:9467\n"
	    "[tls]\ncheck_interval_s = 5\n[rules]\npath = r\n"), VIGIL_OK);
	assert_string_equal(c.health_listen, "127.0.0.1:9467");
	assert_true(c.metrics_need_token);
	assert_int_equal(c.tls_check_interval_s, 5);
	assert_int_equal(load(&c, &act, err, sizeof err, "--config", ini_path, "--health-listen",
	    "unix:/run/vigil/health.sock", NULL), VIGIL_OK);
	assert_string_equal(c.health_listen, "unix:/run/vigil/health.sock");
	unlink(ini_path);

	assert_int_equal(load_ini(&c, &act, err, sizeof err,
	    "[tls]\ncheck_interval_s = 0\n[rules]\npath = r\n"), VIGIL_EINVAL);
	snprintf(want, sizeof want, "config %s:2: check_interval_s: 0 is outside [1, 86400]",
	    ini_path);
	assert_string_equal(err, want);
	unlink(ini_path);
	assert_int_equal(load(&c, &act, err, sizeof err, "--rules", "r", "--health-listen",
	    "9467", NULL), VIGIL_EINVAL);
	assert_string_equal(err, "--health-listen: \"9467\" is not HOST:PORT (port 1-65535, no "
	    "scheme: 127.0.0.1:9466), unix:/PATH or \"off\" (see --help)");
	assert_int_equal(load(&c, &act, err, sizeof err, "--rules", "r", "--health-listen",
	    "127.0.0.1:9466", NULL), VIGIL_EINVAL);
	assert_string_equal(err, "--health-listen: [health] listen \"127.0.0.1:9466\" is the same "
	    "address as [server] admin (default): the probes' listener needs an address of its own");
	assert_int_equal(load(&c, &act, err, sizeof err, "--rules", "r", "--admin", "off",
	    "--health-listen", "127.0.0.1:9467", NULL), VIGIL_EINVAL);
	assert_string_equal(err, "--health-listen: [health] listen is set but [server] admin is off "
	    "(--admin): the probes' listener runs beside the admin endpoint");
}

/* [tls] handshake_timeout_ms: 10 s by default, 0 turns the sweep off, past
 * 10 minutes refused with the file, line and range. */
static void
test_handshake_timeout_key(void **state)
{
	srv_config c;
	srv_action act;
	char err[512], want[600];

	(void)state;
	assert_int_equal(load(&c, &act, err, sizeof err, "--rules", "r", NULL), VIGIL_OK);
	assert_int_equal(c.tls_handshake_timeout_ms, 10000);
	assert_int_equal(load_ini(&c, &act, err, sizeof err,
	    "[tls]\nhandshake_timeout_ms = 0\n[rules]\npath = r\n"), VIGIL_OK);
	assert_int_equal(c.tls_handshake_timeout_ms, 0);
	unlink(ini_path);
	assert_int_equal(load_ini(&c, &act, err, sizeof err,
	    "[tls]\nhandshake_timeout_ms = 600001\n[rules]\npath = r\n"), VIGIL_EINVAL);
	snprintf(want, sizeof want, "config %s:2: handshake_timeout_ms: 600001 is outside "
	    "[0, 600000]", ini_path);
	assert_string_equal(err, want);
	unlink(ini_path);
}

/* [server] max_future_skew_ms and --max-future-skew: the clock-skew guard. */
static void
test_max_future_skew(void **state)
{
	srv_config c;
	srv_action act;
	char err[512], want[512];

	(void)state;
	assert_int_equal(load_ini(&c, &act, err, sizeof err,
	    "[server]\nmax_future_skew_ms = 60000\n[rules]\npath = r.rules\n"), VIGIL_OK);
	assert_int_equal(c.max_future_skew_ms, 60000);
	assert_int_equal(load(&c, &act, err, sizeof err, "--config", ini_path,
	    "--max-future-skew", "0", NULL), VIGIL_OK);
	assert_int_equal(c.max_future_skew_ms, 0); /* the flag wins; 0 = off */
	assert_int_equal(load(&c, &act, err, sizeof err, "--config", ini_path,
	    "--max-future-skew", "2592000000", NULL), VIGIL_OK);
	assert_int_equal(c.max_future_skew_ms, 2592000000u); /* 30 days, the cap */

	assert_int_equal(load_ini(&c, &act, err, sizeof err,
	    "[rules]\npath = r.rules\n[server]\nworkers = 2\nmax_future_skew_ms = 5min\n"), VIGIL_EINVAL);
	snprintf(want, sizeof want, "config %s:5: max_future_skew_ms: \"5min\" is not a "
	    "non-negative integer", ini_path);
	assert_string_equal(err, want);

	assert_int_equal(load_ini(&c, &act, err, sizeof err,
	    "[server]\nmax_future_skew_ms = -1\n"), VIGIL_EINVAL);
	snprintf(want, sizeof want, "config %s:2: max_future_skew_ms: \"-1\" is not a "
	    "non-negative integer", ini_path);
	assert_string_equal(err, want);

	assert_int_equal(load_ini(&c, &act, err, sizeof err,
	    "[server]\nmax_future_skew_ms = 2592000001\n"), VIGIL_EINVAL);
	snprintf(want, sizeof want, "config %s:2: max_future_skew_ms: 2592000001 is outside "
	    "[0, 2592000000]", ini_path);
	assert_string_equal(err, want);

	assert_int_equal(load_ini(&c, &act, err, sizeof err,
	    "[store]\nmax_future_skew_ms = 1000\n"), VIGIL_EINVAL);
	snprintf(want, sizeof want, "config %s:2: max_future_skew_ms: unknown key in [store]",
	    ini_path);
	assert_string_equal(err, want);
	unlink(ini_path);

	assert_int_equal(load(&c, &act, err, sizeof err, "--rules", "r", "--max-future-skew",
	    "soon", NULL), VIGIL_EINVAL);
	assert_string_equal(err, "--max-future-skew: \"soon\" is not a non-negative integer (see --help)");
	assert_int_equal(load(&c, &act, err, sizeof err, "--rules", "r", "--max-future-skew",
	    NULL), VIGIL_EINVAL);
	assert_non_null(strstr(err, "--max-future-skew"));
}

static void
test_ini_and_flag_override(void **state)
{
	srv_config c;
	srv_action act;
	char err[512];

	(void)state;
	write_ini("; vigild test\n"
	    "[server]\n"
	    "listen = ipc:///tmp/a.sock , tcp://127.0.0.1:7000\n"
	    "workers = 3\n"
	    "max_inflight = 64\n"
	    "admin = off\n"
	    "[store]\n"
	    "data_dir = /tmp/vd # a note, not part of the path\n"
	    "fsync = always\t# and after a tab\n"
	    "compress = no ; inih's own\n"
	    "  # an indented comment line\n"
	    "[rules]\n"
	    "path = /etc/vigil/a.rules\n"
	    "watch = false\n");
	assert_int_equal(load(&c, &act, err, sizeof err, "--workers", "5", "--config", ini_path,
	    "--check-config", NULL), VIGIL_OK);
	assert_int_equal(act, SRV_CHECK_CONFIG);
	assert_int_equal(c.workers, 5);          /* the flag wins, wherever it is */
	assert_int_equal(c.max_inflight, 64);
	assert_int_equal(c.nlisten, 2);
	assert_string_equal(c.listen[0], "ipc:///tmp/a.sock");
	assert_string_equal(c.listen[1], "tcp://127.0.0.1:7000");
	assert_string_equal(c.admin, "off");
	assert_string_equal(c.data_dir, "/tmp/vd");
	assert_int_equal(c.fsync, STORE_FSYNC_ALWAYS);
	assert_false(c.compress);
	assert_false(c.rules_watch);
	assert_string_equal(c.rules_path, "/etc/vigil/a.rules");

	/* Repeated --listen replaces the file's list. */
	assert_int_equal(load(&c, &act, err, sizeof err, "--config", ini_path, "--listen",
	    "ipc:///tmp/x", "--listen", "ipc:///tmp/y", "--fsync", "never", NULL), VIGIL_OK);
	assert_int_equal(c.nlisten, 2);
	assert_string_equal(c.listen[1], "ipc:///tmp/y");
	assert_int_equal(c.fsync, STORE_FSYNC_NEVER);
	unlink(ini_path);
}

static void
test_ini_errors_name_line(void **state)
{
	srv_config c;
	srv_action act;
	char err[512], want[512];

	(void)state;
	assert_int_equal(load_ini(&c, &act, err, sizeof err,
	    "[server]\nworkers = 2\nmax_inflight = lots\n"), VIGIL_EINVAL);
	snprintf(want, sizeof want, "config %s:3: max_inflight: \"lots\" is not a non-negative integer",
	    ini_path);
	assert_string_equal(err, want);
	/* the parts: the file and line, the key, what is wrong */
	assert_string_equal(last_err.file, ini_path);
	assert_int_equal(last_err.line, 3);
	assert_int_equal(last_err.col, 0);
	assert_string_equal(last_err.field, "max_inflight");
	assert_string_equal(last_err.msg, "\"lots\" is not a non-negative integer"); /* the key is field's */

	assert_int_equal(load_ini(&c, &act, err, sizeof err,
	    "[server]\nworkers = 0\n"), VIGIL_EINVAL);
	snprintf(want, sizeof want, "config %s:2: workers: 0 is outside [1, 256]", ini_path);
	assert_string_equal(err, want);

	assert_int_equal(load_ini(&c, &act, err, sizeof err,
	    "[rules]\npath = a.rules\n\n[store]\nfsync = sometimes\n"), VIGIL_EINVAL);
	snprintf(want, sizeof want, "config %s:5: fsync: \"sometimes\" is not always, interval or never",
	    ini_path);
	assert_string_equal(err, want);

	assert_int_equal(load_ini(&c, &act, err, sizeof err,
	    "[server]\nlisten = http://x\n"), VIGIL_EINVAL);
	assert_non_null(strstr(err, ":2: listen: \"http://x\" is not a URL vigild listens on: write tcp://"));

	assert_int_equal(load_ini(&c, &act, err, sizeof err,
	    "[server]\nwrokers = 2\n"), VIGIL_EINVAL);
	snprintf(want, sizeof want, "config %s:2: wrokers: unknown key in [server]", ini_path);
	assert_string_equal(err, want);

	/* an unknown section is named at its header, with keys or without */
	assert_int_equal(load_ini(&c, &act, err, sizeof err,
	    "[sever]\nworkers = 2\n"), VIGIL_EINVAL);
	snprintf(want, sizeof want, "config %s:1: unknown section [sever] (expected server, store, "
	    "rules, tls, health, cluster)", ini_path);
	assert_string_equal(err, want);
	assert_int_equal(load_ini(&c, &act, err, sizeof err,
	    "[server]\nworkers = 2\n\n[nosuch]\n"), VIGIL_EINVAL);
	assert_non_null(strstr(err, ":4: unknown section [nosuch] (expected "));

	write_ini("[server]\nthis line has no equals sign\n");
	assert_int_equal(load(&c, &act, err, sizeof err, "--config", ini_path, "--rules", "r", NULL),
	    VIGIL_EINVAL);
	assert_non_null(strstr(err, ":2: syntax error"));
	assert_int_equal(last_err.line, 2);
	assert_string_equal(last_err.field, "");
	unlink(ini_path);

	assert_int_equal(load(&c, &act, err, sizeof err, "--config", "/nonexistent/v.ini", NULL),
	    VIGIL_EINVAL);
	assert_non_null(strstr(err, "config /nonexistent/v.ini: cannot open"));

	/* a directory opens but does not read: not an empty configuration */
	assert_int_equal(load(&c, &act, err, sizeof err, "--config", "/tmp", "--rules", "r", NULL),
	    VIGIL_EINVAL);
	assert_string_equal(err, "config /tmp: cannot read: Is a directory");
	assert_string_equal(last_err.file, "/tmp");
	assert_int_equal(last_err.line, 0);
}

/* The line of an error is the line of the key at fault, even after an
 * earlier syntax error (inih numbers only the first error of either kind). */
static void
test_ini_error_line_after_syntax_error(void **state)
{
	srv_config c;
	srv_action act;
	char err[512], want[512];

	(void)state;
	assert_int_equal(load_ini(&c, &act, err, sizeof err,
	    "[rules]\npath = r.rules\n[server]\nworkers = 2\nmax_inflight = lots\nno equals\n"),
	    VIGIL_EINVAL);
	snprintf(want, sizeof want, "config %s:5: max_inflight: \"lots\" is not a non-negative integer",
	    ini_path);
	assert_string_equal(err, want);

	assert_int_equal(load_ini(&c, &act, err, sizeof err,
	    "[server]\nno equals\nworkers = x\n[rules]\npath = r.rules\n"), VIGIL_EINVAL);
	snprintf(want, sizeof want, "config %s:2: syntax error (expected [section] or key = value)",
	    ini_path);
	assert_string_equal(err, want);
	unlink(ini_path);
}

/* A key given twice in the file, or continued by an indented line (inih's
 * multi-line values), is an error, not a silent override. */
static void
test_ini_key_twice(void **state)
{
	srv_config c;
	srv_action act;
	char err[512], want[512];

	(void)state;
	assert_int_equal(load_ini(&c, &act, err, sizeof err,
	    "[server]\nworkers = 8\n[rules]\npath = r.rules\n[server]\nworkers = 2\n"), VIGIL_EINVAL);
	snprintf(want, sizeof want, "config %s:6: workers: set twice (first at line 2)", ini_path);
	assert_string_equal(err, want);

	assert_int_equal(load_ini(&c, &act, err, sizeof err,
	    "[rules]\npath = old.rules\n  new.rules\n"), VIGIL_EINVAL);
	snprintf(want, sizeof want, "config %s:3: path: an indented line continues the value "
	    "above (multi-line values are not supported)", ini_path);
	assert_string_equal(err, want);

	/* the same key name in two sections is two keys; an indented first key is fine */
	assert_int_equal(load_ini(&c, &act, err, sizeof err,
	    "[rules]\n  path = r.rules\nwatch = no\n[server]\nworkers = 3\n"), VIGIL_OK);
	assert_string_equal(c.rules_path, "r.rules");
	assert_false(c.rules_watch);
	assert_int_equal(c.workers, 3);

	/* the longest key name is remembered whole, not cut to a prefix that
	 * never matches it again */
	assert_int_equal(load_ini(&c, &act, err, sizeof err,
	    "[server]\nadmin_max_connections_per_address = 8\n[rules]\npath = r.rules\n"
	    "[server]\nadmin_max_connections_per_address = 0\n"), VIGIL_EINVAL);
	snprintf(want, sizeof want, "config %s:6: admin_max_connections_per_address: set twice "
	    "(first at line 2)", ini_path);
	assert_string_equal(err, want);

	/* a file setting every key: a key twice is found after the 32nd too */
	assert_int_equal(load_ini(&c, &act, err, sizeof err,
	    "[server]\nlisten = tls+tcp://127.0.0.1:9465\nadmin = 127.0.0.1:9466\n"
	    "admin_token_file = /t\nmetrics_need_token = no\nmax_connections = 9\n"
	    "admin_max_connections = 9\nadmin_max_connections_per_address = 9\n"
	    "queue_timeout_ms = 9\nipc_group = g\nuser = u\nhuge_pages = off\n"
	    "scheduling_policy = normal\nmax_past_skew_ms = 9\nworkers = 9\n"
	    "max_message_bytes = 999\nmax_inflight = 9\nmax_inflight_per_connection = 9\n"
	    "request_timeout_ms = 9\nmax_future_skew_ms = 9\n"
	    "[tls]\ncert = c\nkey = k\nca = a\ncrl = l\ncheck_interval_s = 9\n"
	    "[store]\ndata_dir = /d\nfsync = never\nfsync_interval_ms = 9\nsegment_max_mb = 9\n"
	    "retention_days = 99\ncompress = no\nship_command = true\nship_retry_max_s = 9\n"
	    "ship_timeout_s = 9\n[rules]\npath = r.rules\nwatch = no\n"
	    "[health]\nlisten = 127.0.0.1:9467\nready_when_degraded = yes\n"
	    "[cluster]\nnats = nats://127.0.0.1:4222\nreplica = r1\nname = n\nqueue = 9\n"
	    "stream_replicas = 2\nretain_hours = 99\n[rules]\nwatch = yes\n"), VIGIL_EINVAL);
	snprintf(want, sizeof want, "config %s:51: watch: set twice (first at line 39)", ini_path);
	assert_string_equal(err, want);

	/* a flag still overrides the file's one value */
	write_ini("[server]\nworkers = 8\n[rules]\npath = r.rules\n");
	assert_int_equal(load(&c, &act, err, sizeof err, "--config", ini_path, "--workers", "2",
	    NULL), VIGIL_OK);
	assert_int_equal(c.workers, 2);
	unlink(ini_path);
}

/* inih reads lines into a 200-byte buffer: a longer line is refused at its
 * own line, not cut in two with the rest read as a line of its own. */
static void
test_ini_long_line(void **state)
{
	srv_config c;
	srv_action act;
	char err[512], want[512], text[1024], dir[300];

	(void)state;
	memset(dir, 'd', 250);
	dir[0] = '/';
	dir[250] = '\0';
	snprintf(text, sizeof text, "[rules]\npath = r.rules\n[store]\ndata_dir = %s\n", dir);
	assert_int_equal(load_ini(&c, &act, err, sizeof err, text), VIGIL_EINVAL);
	snprintf(want, sizeof want, "config %s:4: line longer than 199 bytes", ini_path);
	assert_string_equal(err, want);

	/* the cut must not leave a shorter value behind: the rest, "#2", would
	 * read as a comment line and data_dir be the first 188 bytes */
	dir[199 - strlen("data_dir = ")] = '\0';
	snprintf(text, sizeof text, "[rules]\npath = r.rules\n[store]\ndata_dir = %s#2\n", dir);
	assert_int_equal(load_ini(&c, &act, err, sizeof err, text), VIGIL_EINVAL);
	snprintf(want, sizeof want, "config %s:4: line longer than 199 bytes", ini_path);
	assert_string_equal(err, want);

	/* 199 bytes is fine, with or without the last newline */
	dir[199 - strlen("data_dir = ")] = '\0';
	snprintf(text, sizeof text, "[rules]\npath = r.rules\n[store]\ndata_dir = %s", dir);
	assert_int_equal(load_ini(&c, &act, err, sizeof err, text), VIGIL_OK);
	assert_string_equal(c.data_dir, dir);
	strcat(text, "\n");
	assert_int_equal(load_ini(&c, &act, err, sizeof err, text), VIGIL_OK);
	assert_string_equal(c.data_dir, dir);
	text[strlen(text) - 1] = '\0';
	strcat(text, "\r\n");
	assert_int_equal(load_ini(&c, &act, err, sizeof err, text), VIGIL_OK);
	assert_string_equal(c.data_dir, dir);
	unlink(ini_path);
}

/* A NUL byte ends the line for inih: the rest of it would be dropped. */
static void
test_ini_nul_byte(void **state)
{
	static const char text[] = "[rules]\npath = r.rules\0.old\n[server]\nworkers = 3\n";
	srv_config c;
	srv_action act;
	char err[512], want[512];
	FILE *f;

	(void)state;
	write_ini("");
	f = fopen(ini_path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, sizeof text - 1, f), sizeof text - 1);
	fclose(f);
	assert_int_equal(load(&c, &act, err, sizeof err, "--config", ini_path, NULL), VIGIL_EINVAL);
	snprintf(want, sizeof want, "config %s:2: NUL byte in the line", ini_path);
	assert_string_equal(err, want);
	unlink(ini_path);
}

static void
test_flag_errors(void **state)
{
	srv_config c;
	srv_action act;
	char err[512];

	(void)state;
	assert_int_equal(load(&c, &act, err, sizeof err, "--rules", "r", "--fsync", "maybe", NULL),
	    VIGIL_EINVAL);
	assert_string_equal(err, "--fsync: \"maybe\" is not always, interval or never (see --help)");
	/* a flag's error is about the flag, in no file */
	assert_string_equal(last_err.field, "--fsync");
	assert_string_equal(last_err.msg, "\"maybe\" is not always, interval or never (see --help)");
	assert_string_equal(last_err.file, "");
	assert_int_equal(last_err.line, 0);
	assert_int_equal(load(&c, &act, err, sizeof err, "--rules", "r", "--admin", "localhost",
	    NULL), VIGIL_EINVAL);
	assert_non_null(strstr(err, "--admin: \"localhost\" is not HOST:PORT"));
	assert_int_equal(load(&c, &act, err, sizeof err, "--rules", "r", "--workers", "-3", NULL),
	    VIGIL_EINVAL);
	assert_non_null(strstr(err, "--workers:"));
	assert_int_equal(load(&c, &act, err, sizeof err, "--bogus", NULL), VIGIL_EINVAL);
	assert_non_null(strstr(err, "--bogus"));
	assert_int_equal(load(&c, &act, err, sizeof err, NULL), VIGIL_EINVAL);
	assert_string_equal(err, "no rule file: set [rules] path or --rules");
	assert_int_equal(load(&c, &act, err, sizeof err, "--rules", "r", "stray", NULL),
	    VIGIL_EINVAL);
	assert_non_null(strstr(err, "unexpected argument \"stray\""));
	assert_int_equal(load(&c, &act, err, sizeof err, "--help", NULL), VIGIL_OK);
	assert_int_equal(act, SRV_HELP);
	assert_int_equal(load(&c, &act, err, sizeof err, "--version", NULL), VIGIL_OK);
	assert_int_equal(act, SRV_VERSION);
}

/* Listen URLs are parsed as nng_listen will parse them: what passes here
 * does not fail at start for its form (only for the address itself). */
/* 105 characters: with /tmp/, 110, a path no Unix socket holds */
#define LONG_SOCK "vigil/replicas/eu-west-1/payments-scoring/primary/" \
	"this-directory-name-is-deliberately-so-long/vigild.sock"

static void
test_listen_urls(void **state)
{
	static const char *const good[] = {
		"tcp://127.0.0.1:9465", "tcp://localhost:1", "tcp://:9465", "tcp://*:65535",
		"tcp4://127.0.0.1:9465", "tcp6://[::1]:9465", "tcp://[::1]:9465",
		"ipc:///run/vigil/vigild.sock", "ipc://vigild.sock",
	};
	/* tls+tcp:// URLs need [tls] cert and key (test_tls_settings) */
	static const struct {
		const char *url, *reason;
	} bad[] = {
		{ "tcp://", "\"tcp://\" has no port (tcp://HOST:PORT)" },
		{ "tcp://127.0.0.1", "\"tcp://127.0.0.1\" has no port (tcp://HOST:PORT)" },
		{ "tcp://127.0.0.1:", "\"tcp://127.0.0.1:\" is not a URL vigild listens on: write tcp://HOST:PORT, tls+tcp://HOST:PORT or ipc:///PATH" },
		{ "tcp://127.0.0.1:0", "\"tcp://127.0.0.1:0\": port \"0\" is not a number from 1 to 65535" },
		{ "tcp://h:65536", "\"tcp://h:65536\": port \"65536\" is not a number from 1 to 65535" },
		{ "tcp://h:99999999999999999999", "\"tcp://h:99999999999999999999\": port "
		    "\"99999999999999999999\" is not a number from 1 to 65535" },
		{ "tcp://h:http", "\"tcp://h:http\": port \"http\" is not a number from 1 to 65535" },
		{ "tcp://h:9465/x", "\"tcp://h:9465/x\" has more than tcp://HOST:PORT" },
		{ "tcp://h:9465?a=b", "\"tcp://h:9465?a=b\" has more than tcp://HOST:PORT" },
		{ "tcp://u@h:9465", "\"tcp://u@h:9465\" has more than tcp://HOST:PORT" },
		{ "ipc://", "\"ipc://\" has no path (ipc:///PATH)" },
		/* nng refuses it only when listening: --check-config must say so */
		{ "ipc:///tmp/" LONG_SOCK, "\"ipc:///tmp/" LONG_SOCK "\": the socket path is 110 bytes, at most "
		    "107 fit a Unix socket" },
		{ "inproc://x", "\"inproc://x\" is not a URL vigild listens on: write tcp://HOST:PORT, tls+tcp://HOST:PORT or ipc:///PATH" },
		{ "ws://h:80/x", "\"ws://h:80/x\" is not a URL vigild listens on: write tcp://HOST:PORT, tls+tcp://HOST:PORT or ipc:///PATH" },
		{ "127.0.0.1:9465", "\"127.0.0.1:9465\" is not a URL vigild listens on: write tcp://HOST:PORT, tls+tcp://HOST:PORT or ipc:///PATH" },
	};
	srv_config c;
	srv_action act;
	char err[512], ini[256], want[512];

	(void)state;
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		if (load(&c, &act, err, sizeof err, "--rules", "r", "--listen", good[i], NULL) !=
		    VIGIL_OK)
			fail_msg("--listen %s: %s", good[i], err);
		assert_int_equal(c.nlisten, 1);
		assert_string_equal(c.listen[0], good[i]);
	}
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_int_equal(load(&c, &act, err, sizeof err, "--rules", "r", "--listen",
		    bad[i].url, NULL), VIGIL_EINVAL);
		snprintf(want, sizeof want, "--listen: %s (see --help)", bad[i].reason);
		assert_string_equal(err, want);
		/* the same from the file, with its line; the first bad URL of a list */
		snprintf(ini, sizeof ini, "[server]\nworkers = 2\nlisten = ipc:///tmp/a.sock, %s\n",
		    bad[i].url);
		write_ini(ini);
		assert_int_equal(load(&c, &act, err, sizeof err, "--config", ini_path, "--rules", "r",
		    NULL), VIGIL_EINVAL);
		snprintf(want, sizeof want, "config %s:3: listen: %s", ini_path, bad[i].reason);
		assert_string_equal(err, want);
		unlink(ini_path);
	}
}

/* [cluster] and its flags: off by default; nats needs a replica name and
 * the other way round; names are NATS subject tokens; errors name the key
 * and line, or the flag. */
static void
test_cluster(void **state)
{
	srv_config c;
	srv_action act;
	char err[512], want[512];

	(void)state;
	assert_int_equal(load(&c, &act, err, sizeof err, "--rules", "r.rules", NULL), VIGIL_OK);
	assert_string_equal(c.cluster_nats, "");
	assert_string_equal(c.cluster_name, "vigil");
	assert_int_equal(c.cluster_queue, 65536);
	assert_int_equal(c.cluster_stream_replicas, 1);
	assert_int_equal(c.cluster_retain_hours, 48);

	assert_int_equal(load_ini(&c, &act, err, sizeof err,
	    "[rules]\npath = r.rules\n[cluster]\nnats = nats://127.0.0.1:4222,nats://10.0.0.2:4222\n"
	    "replica = r-1\nname = prod_eu\nqueue = 1000\nstream_replicas = 3\nretain_hours = 30\n"),
	    VIGIL_OK);
	assert_string_equal(c.cluster_nats, "nats://127.0.0.1:4222,nats://10.0.0.2:4222");
	assert_string_equal(c.cluster_replica, "r-1");
	assert_string_equal(c.cluster_name, "prod_eu");
	assert_int_equal(c.cluster_queue, 1000);
	assert_int_equal(c.cluster_stream_replicas, 3);
	assert_int_equal(c.cluster_retain_hours, 30);
	/* flags win; --nats repeated joins */
	assert_int_equal(load(&c, &act, err, sizeof err, "--config", ini_path, "--replica", "r-2",
	    "--nats", "nats://h1:1", "--nats", "tls://h2:2", "--cluster", "c2", NULL), VIGIL_OK);
	assert_string_equal(c.cluster_nats, "nats://h1:1,tls://h2:2");
	assert_string_equal(c.cluster_replica, "r-2");
	assert_string_equal(c.cluster_name, "c2");

	assert_int_equal(load_ini(&c, &act, err, sizeof err,
	    "[rules]\npath = r.rules\n[cluster]\nnats = http://127.0.0.1:4222\n"), VIGIL_EINVAL);
	snprintf(want, sizeof want, "config %s:4: nats: \"http://127.0.0.1:4222\" is not "
	    "nats://HOST:PORT or tls://HOST:PORT", ini_path);
	assert_string_equal(err, want);
	assert_int_equal(load_ini(&c, &act, err, sizeof err,
	    "[rules]\npath = r.rules\n[cluster]\nnats = nats://a:1,,nats://b:2\n"), VIGIL_EINVAL);
	assert_non_null(strstr(err, ":4: nats: URL 2: empty"));
	assert_int_equal(load_ini(&c, &act, err, sizeof err,
	    "[rules]\npath = r.rules\n[cluster]\nnats = nats://a:1\nreplica = r.1\n"), VIGIL_EINVAL);
	snprintf(want, sizeof want, "config %s:5: replica: \"r.1\": byte 2: only letters, digits, "
	    "'-' and '_' (a NATS subject token)", ini_path);
	assert_string_equal(err, want);
	assert_int_equal(load_ini(&c, &act, err, sizeof err,
	    "[rules]\npath = r.rules\n[cluster]\nstream_replicas = 7\n"), VIGIL_EINVAL);
	assert_non_null(strstr(err, ":4: stream_replicas: 7 is outside [1, 5]"));
	assert_int_equal(load_ini(&c, &act, err, sizeof err,
	    "[rules]\npath = r.rules\n[clusters]\nnats = nats://a:1\n"), VIGIL_EINVAL);
	assert_non_null(strstr(err, "unknown section [clusters] (expected server, store, rules, tls, "
	    "health, cluster)"));

	assert_int_equal(load(&c, &act, err, sizeof err, "--rules", "r.rules", "--nats",
	    "nats://127.0.0.1:4222", NULL), VIGIL_EINVAL);
	assert_string_equal(err, "--nats: [cluster] nats is set but not this replica's name: set "
	    "[cluster] replica or --replica");
	/* two settings disagree: the place is the flag's, the message names both settings */
	assert_string_equal(last_err.field, "--nats");
	assert_int_equal(load(&c, &act, err, sizeof err, "--rules", "r.rules", "--replica", "a",
	    NULL), VIGIL_EINVAL);
	assert_string_equal(err, "--replica: [cluster] replica is set but no NATS server: set "
	    "[cluster] nats or --nats");
	assert_int_equal(load(&c, &act, err, sizeof err, "--rules", "r.rules", "--nats", "h:1",
	    "--replica", "a", NULL), VIGIL_EINVAL);
	assert_string_equal(err, "--nats: \"h:1\" is not nats://HOST:PORT or tls://HOST:PORT (see --help)");
	assert_int_equal(load(&c, &act, err, sizeof err, "--rules", "r.rules", "--cluster", "a b",
	    NULL), VIGIL_EINVAL);
	assert_string_equal(err, "--cluster: \"a b\": byte 2: only letters, digits, '-' and '_' "
	    "(a NATS subject token) (see --help)");
	unlink(ini_path);
}

static void
test_hostport(void **state)
{
	char host[64];
	uint16_t port;

	(void)state;
	assert_true(vigil_cli_hostport("127.0.0.1:9466", host, sizeof host, &port));
	assert_string_equal(host, "127.0.0.1");
	assert_int_equal(port, 9466);
	assert_true(vigil_cli_hostport("[::1]:80", host, sizeof host, &port));
	assert_string_equal(host, "::1");
	assert_false(vigil_cli_hostport("h:0", host, sizeof host, &port));
	assert_false(vigil_cli_hostport("h:70000", host, sizeof host, &port));
	assert_false(vigil_cli_hostport(":80", host, sizeof host, &port));
	assert_false(vigil_cli_hostport("http://127.0.0.1:9480", host, sizeof host, &port));
	assert_false(vigil_cli_hostport("h:080", host, sizeof host, &port));
	assert_false(vigil_cli_hostport("h:80x", host, sizeof host, &port));
	assert_false(vigil_cli_hostport("::1:80", host, sizeof host, &port));
	assert_true(vigil_cli_hostport("localhost:65535", host, sizeof host, &port));
	assert_int_equal(port, 65535);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_ini_and_flag_override),
		cmocka_unit_test(test_ini_errors_name_line),
		cmocka_unit_test(test_ini_error_line_after_syntax_error),
		cmocka_unit_test(test_ini_key_twice),
		cmocka_unit_test(test_ini_long_line),
		cmocka_unit_test(test_ini_nul_byte),
		cmocka_unit_test(test_max_future_skew),
		cmocka_unit_test(test_flag_errors),
		cmocka_unit_test(test_hostport),
		cmocka_unit_test(test_cluster),
		cmocka_unit_test(test_listen_urls),
		cmocka_unit_test(test_tls_settings),
		cmocka_unit_test(test_exposure_keys),
		cmocka_unit_test(test_probe_and_expiry_keys),
		cmocka_unit_test(test_handshake_timeout_key),
		cmocka_unit_test(test_scheduling_policy),
		cmocka_unit_test(test_huge_pages),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
