/* SPDX-License-Identifier: MIT */
/*
 * console/main.c - vigil-console: options, start-up, the event loop (HTTP,
 * the archive tail on a timer, signals) and an orderly stop. The manual is
 * docs/console.md.
 */
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/random.h>
#include <unistd.h>

#include "app.h"
#include "cli.h"
#include "console.h"
#include "editor.h"
#include "evconn.h"
#include "http.h"
#include "entities.h"
#include "vigil_client.h"
#include "vigil_config.h"

/* The web UI's files without --www: the source tree's when run from the
 * build directory, else the installed DATADIR/vigil/console/www (found
 * under a --destdir tree too: common/cli.h). */
static const char *
con_default_www(void)
{
	static char path[PATH_MAX];

	if (vigil_in_build_tree())
		return VIGIL_SOURCE_ROOT "/console/www";
	return vigil_installed_path(VIGIL_DATADIR "/vigil/console/www", path, sizeof path);
}
#define CON_CHARTJS_DIR "/usr/share/javascript/chart.js"
#define CON_INGEST_BATCH 20000

static void
usage(FILE *out)
{
	fprintf(out,
	    "usage: vigil-console --data DIR --rules FILE --tokens FILE --state DIR [options]\n"
	    "\n"
	    "The analyst workbench: review queue, case view, verdicts, rule editing with\n"
	    "back-tests, nights. Serves a web UI and a JSON API (docs/console.md).\n"
	    "\n"
	    "  -d, --data DIR      vigild's data directory (read only: archive/, features/)\n"
	    "  -r, --rules FILE    the deployed rule file (edited, written atomically)\n"
	    "  --tokens FILE       analysts: lines \"NAME ROLE TOKEN\" or \"NAME ROLE sha256:HEX\";\n"
	    "                      roles read-only, analyst, rule-editor, admin\n"
	    "  --state DIR         the console's own index, audit log and rule versions\n"
	    "  -l, --listen HOST:PORT  default 127.0.0.1:9480\n"
	    "  -s, --server URL    vigild (nng URL) to send verdicts to; without it labels are refused\n"
	    "  --tls-cert FILE --tls-key FILE --tls-ca FILE [--tls-server-name NAME]\n"
	    "                      this console's client certificate and vigild's CA, for tls+tcp://\n"
	    "  --https-cert FILE --https-key FILE [--https-client-ca FILE]\n"
	    "                      serve HTTPS (TLS 1.2+); with a CA, an analyst listed as\n"
	    "                      \"NAME ROLE cert:CN\" is identified by a client certificate\n"
	    "                      signed by it\n"
	    "  --vigild-admin HOST:PORT|unix:/PATH --vigild-admin-token-file FILE\n"
	    "                      vigild's admin endpoint and its token (read at each use), for\n"
	    "                      rolling a generation back (role admin); without them it is refused\n"
	    "  --replay PROGRAM    vigil-replay for back-tests (default: next to this program, or PATH)\n"
	    "  --www DIR           the web UI's files (default %s)\n"
	    "  --chartjs DIR       Chart.js (default " CON_CHARTJS_DIR ")\n"
	    "  --blocked-list NAME the rule file's list of blocked cards (default blocked_cards)\n"
	    "  --claim-minutes N   a claim expires after N minutes (default 30)\n"
	    "  --poll-ms N         archive poll interval (default 1000)\n"
	    "  --map-gib N         LMDB map size of the index (default 64)\n"
	    "  --keep-days N       per-transaction rule hits kept this long for late labels (default 180)\n"
	    "  --max-connections N HTTP connections at once (default 128; more wait to be accepted)\n"
	    "  --max-connections-per-address N  of them from one IP address (default 32; more\n"
	    "                      are closed at once; 0: no cap)\n"
	    "  --request-timeout S a request must be complete S seconds after its connection\n"
	    "                      opened or its previous request (default 10; idle or slow)\n"
	    "  --backtest-disk-mib N  a back-test's work directory under STATE/tmp, at most\n"
	    "                      (default 2048; over it the back-test is stopped)\n"
	    "  --backtest-reserve-mib N  free space a back-test leaves on STATE's filesystem,\n"
	    "                      checked before and while it runs (default 1024)\n"
	    "  --deploy-approvers N  1 (default): a rule-editor deploys; 2: a deploy is a\n"
	    "                      proposal another rule-editor or admin approves (four eyes)\n"
	    "  -q, --quiet         no start-up (listening) line and no stopping line\n"
	    "  -h, --help          this text\n"
	    "  -V, --version       print the version\n"
	    "\n"
	    "Signals: SIGHUP reopens STATE/audit.log (rotation) and reloads the tokens file;\n"
	    "SIGTERM or SIGINT stops.\n"
	    "\n", con_default_www());
	vigil_cli_exit_help(out, (const char *const[]){ "stopped cleanly (SIGTERM, SIGINT)",
	    "runtime failure", "bad command line, a tokens file that is missing or bad, a rule file "
	    "that cannot be read, or --www without the UI's files",
	    NULL });
}

#define usage_error(...) vigil_cli_usage_error("vigil-console", __VA_ARGS__)

static bool
parse_u32(const char *s, uint32_t lo, uint32_t hi, uint32_t *ret)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (*s == '\0' || *s == '-' || *end != '\0' || errno != 0 || v < lo || v > hi)
		return false;
	*ret = (uint32_t)v;
	return true;
}

enum { OPT_TOKENS = 256, OPT_STATE, OPT_WWW,
	OPT_CHARTJS, OPT_REPLAY, OPT_BLOCKED, OPT_CLAIM, OPT_POLL, OPT_MAP, OPT_KEEP,
	OPT_TLS_CERT, OPT_TLS_KEY, OPT_TLS_CA, OPT_TLS_NAME, OPT_MAXCONN, OPT_VADMIN,
	OPT_VADMIN_TOKEN, OPT_HTTPS_CERT, OPT_HTTPS_KEY, OPT_HTTPS_CA, OPT_MAXPERADDR,
	OPT_REQTIMEOUT, OPT_BTDISK, OPT_BTRESERVE, OPT_APPROVERS };

static int
parse_args(int argc, char **argv, con_opts *o)
{
	static const struct option lo[] = {
		VIGIL_CLI_DATA, VIGIL_CLI_LISTEN, VIGIL_CLI_RULES, VIGIL_CLI_SERVER,
		{ "tokens", required_argument, NULL, OPT_TOKENS },
		{ "state", required_argument, NULL, OPT_STATE },
		{ "www", required_argument, NULL, OPT_WWW },
		{ "chartjs", required_argument, NULL, OPT_CHARTJS },
		{ "replay", required_argument, NULL, OPT_REPLAY },
		{ "blocked-list", required_argument, NULL, OPT_BLOCKED },
		{ "claim-minutes", required_argument, NULL, OPT_CLAIM },
		{ "poll-ms", required_argument, NULL, OPT_POLL },
		{ "map-gib", required_argument, NULL, OPT_MAP },
		{ "keep-days", required_argument, NULL, OPT_KEEP },
		{ "max-connections", required_argument, NULL, OPT_MAXCONN },
		{ "max-connections-per-address", required_argument, NULL, OPT_MAXPERADDR },
		{ "request-timeout", required_argument, NULL, OPT_REQTIMEOUT },
		{ "backtest-disk-mib", required_argument, NULL, OPT_BTDISK },
		{ "backtest-reserve-mib", required_argument, NULL, OPT_BTRESERVE },
		{ "deploy-approvers", required_argument, NULL, OPT_APPROVERS },
		{ "tls-cert", required_argument, NULL, OPT_TLS_CERT },
		{ "tls-key", required_argument, NULL, OPT_TLS_KEY },
		{ "tls-ca", required_argument, NULL, OPT_TLS_CA },
		{ "tls-server-name", required_argument, NULL, OPT_TLS_NAME },
		{ "https-cert", required_argument, NULL, OPT_HTTPS_CERT },
		{ "https-key", required_argument, NULL, OPT_HTTPS_KEY },
		{ "https-client-ca", required_argument, NULL, OPT_HTTPS_CA },
		{ "vigild-admin", required_argument, NULL, OPT_VADMIN },
		{ "vigild-admin-token-file", required_argument, NULL, OPT_VADMIN_TOKEN },
		VIGIL_CLI_QUIET, VIGIL_CLI_HELP, VIGIL_CLI_VERSION,
		{ NULL, 0, NULL, 0 },
	};
	int c;

	memset(o, 0, sizeof *o);
	o->listen = "127.0.0.1:9480";
	o->www = con_default_www();
	o->chartjs = CON_CHARTJS_DIR;
	o->blocked_list = "blocked_cards";
	o->claim_minutes = 30;
	o->poll_ms = 1000;
	o->map_gib = 64;
	o->keep_days = 180;
	o->max_connections = 128;
	o->max_per_addr = 32;
	o->request_timeout_s = 10;
	o->backtest_disk_mib = 2048;
	o->backtest_reserve_mib = 1024;
	o->deploy_approvers = 1;
	opterr = 0;
	/* Short letters only from the shared table (common/cli.h, docs/tools.md). */
	while ((c = getopt_long(argc, argv, "d:l:r:s:qhV", lo, NULL)) != -1) {
		switch (c) {
		case 'd': o->data = optarg; break;
		case 'l': {
			char h[64];
			uint16_t port;

			if (!vigil_cli_hostport(optarg, h, sizeof h, &port))
				return usage_error("--listen \"%s\" is not HOST:PORT (port 1-65535, no "
				    "scheme: 127.0.0.1:9480)", optarg);
			o->listen = optarg;
			break;
		}
		case 'r': o->rules = optarg; break;
		case 's': o->server = optarg; break;
		case OPT_TOKENS: o->tokens = optarg; break;
		case OPT_STATE: o->state = optarg; break;
		case OPT_WWW: o->www = optarg; break;
		case OPT_CHARTJS: o->chartjs = optarg; break;
		case OPT_REPLAY: o->replay = optarg; break;
		case OPT_BLOCKED: o->blocked_list = optarg; break;
		case OPT_MAXCONN:
			if (!parse_u32(optarg, 1, 100000, &o->max_connections))
				return usage_error("--max-connections %s: 1-100000", optarg);
			break;
		case OPT_MAXPERADDR:
			if (!parse_u32(optarg, 0, 100000, &o->max_per_addr))
				return usage_error("--max-connections-per-address %s: 0-100000", optarg);
			break;
		case OPT_REQTIMEOUT:
			if (!parse_u32(optarg, 1, 3600, &o->request_timeout_s))
				return usage_error("--request-timeout %s: 1-3600", optarg);
			break;
		case OPT_BTDISK:
			if (!parse_u32(optarg, 1, 1u << 24, &o->backtest_disk_mib))
				return usage_error("--backtest-disk-mib %s: 1-16777216", optarg);
			break;
		case OPT_BTRESERVE:
			if (!parse_u32(optarg, 0, 1u << 30, &o->backtest_reserve_mib))
				return usage_error("--backtest-reserve-mib %s: 0-1073741824", optarg);
			break;
		case OPT_APPROVERS:
			if (!parse_u32(optarg, 1, 2, &o->deploy_approvers))
				return usage_error("--deploy-approvers %s: 1 or 2", optarg);
			break;
		case OPT_TLS_CERT: o->tls_cert = optarg; break;
		case OPT_TLS_KEY: o->tls_key = optarg; break;
		case OPT_TLS_CA: o->tls_ca = optarg; break;
		case OPT_TLS_NAME: o->tls_server_name = optarg; break;
		case OPT_HTTPS_CERT: o->https_cert = optarg; break;
		case OPT_HTTPS_KEY: o->https_key = optarg; break;
		case OPT_HTTPS_CA: o->https_client_ca = optarg; break;
		case OPT_VADMIN: o->vigild_admin = optarg; break;
		case OPT_VADMIN_TOKEN: o->vigild_admin_token = optarg; break;
		case OPT_CLAIM:
			if (!parse_u32(optarg, 1, 24 * 60, &o->claim_minutes))
				return usage_error("--claim-minutes %s: 1-1440", optarg);
			break;
		case OPT_POLL:
			if (!parse_u32(optarg, 10, 60000, &o->poll_ms))
				return usage_error("--poll-ms %s: 10-60000", optarg);
			break;
		case OPT_MAP:
			if (!parse_u32(optarg, 1, 4096, &o->map_gib))
				return usage_error("--map-gib %s: 1-4096", optarg);
			break;
		case OPT_KEEP:
			if (!parse_u32(optarg, 1, 3650, &o->keep_days))
				return usage_error("--keep-days %s: 1-3650", optarg);
			break;
		case 'q': o->quiet = true; break;
		case 'h': usage(stdout); return 0;
		case 'V': vigil_cli_version(stdout, "vigil-console"); return 0;
		default:
			return vigil_cli_bad_option("vigil-console", argv);
		}
	}
	if (optind < argc)
		return usage_error("%s: unexpected argument", argv[optind]);
	if (o->data == NULL)
		return usage_error("%s", "--data DIR is required");
	if (o->rules == NULL)
		return usage_error("%s", "--rules FILE is required");
	if (o->tokens == NULL)
		return usage_error("%s", "--tokens FILE is required (nothing is served without analysts)");
	if (o->state == NULL)
		return usage_error("%s", "--state DIR is required");
	{
		/* the UI's files are there, or nothing would be served: say so now */
		char index[PATH_MAX];

		snprintf(index, sizeof index, "%s/index.html", o->www);
		if (access(index, R_OK) != 0)
			return usage_error("--www %s: no readable index.html (the web UI's files)",
			    o->www);
	}
	if ((o->tls_cert != NULL) != (o->tls_key != NULL))
		return usage_error("%s", "--tls-cert and --tls-key go together");
	if ((o->tls_cert != NULL || o->tls_ca != NULL) && o->server == NULL)
		return usage_error("%s", "--tls-* options need --server URL");
	if ((o->https_cert != NULL) != (o->https_key != NULL))
		return usage_error("%s", "--https-cert and --https-key go together");
	if (o->https_client_ca != NULL && o->https_cert == NULL)
		return usage_error("%s", "--https-client-ca needs --https-cert and --https-key");
	if ((o->vigild_admin != NULL) != (o->vigild_admin_token != NULL))
		return usage_error("%s", "--vigild-admin and --vigild-admin-token-file go together");
	return -1; /* go on */
}

static char con_replay_path[PATH_MAX];

static const char *
default_replay(void)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);

	if (n > 0) {
		self[n] = '\0';
		snprintf(con_replay_path, sizeof con_replay_path, "%s/../tools/replay/vigil-replay",
		    dirname(self));
		if (access(con_replay_path, X_OK) == 0)
			return con_replay_path;
		snprintf(self, sizeof self, "%s", con_replay_path);
		snprintf(con_replay_path, sizeof con_replay_path, "%s/vigil-replay", dirname(dirname(dirname(self))));
		if (access(con_replay_path, X_OK) == 0)
			return con_replay_path;
	}
	return "vigil-replay";
}

static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	con_app *app = arg;
	char err[256] = "";
	uint32_t n = 0;
	bool more = false;
	struct timeval tv;
	vigil_err rv;

	(void)fd;
	(void)what;
	rv = con_index_ingest(app->ix, app->archive_dir, CON_INGEST_BATCH, &n, &more, err, sizeof err);
	if (rv != VIGIL_OK) {
		if (strcmp(err, app->last_ingest_err) != 0)
			fprintf(stderr, "vigil-console: index: %s (retrying)\n", err);
		snprintf(app->last_ingest_err, sizeof app->last_ingest_err, "%s", err);
		more = false;
	} else if (app->last_ingest_err[0] != '\0') {
		fprintf(stderr, "vigil-console: index: ok again\n");
		app->last_ingest_err[0] = '\0';
	}
	/* the entity index follows the archive beside it (its own position) */
	if (app->ents != NULL) {
		static char ents_err[256];
		char eerr[256] = "";
		uint32_t en = 0;
		bool emore = false;

		vigil_err erv = con_ents_ingest(app->ents, app->archive_dir, CON_INGEST_BATCH, &en,
		    &emore, eerr, sizeof eerr);

		if (erv == VIGIL_ECORRUPT) {
			/* damaged in use: built again from the archive */
			char dir[4200], note[64];

			fprintf(stderr, "vigil-console: warning: %s: rebuilt from the archive\n", eerr);
			con_ents_close(app->ents);
			app->ents = NULL;
			snprintf(dir, sizeof dir, "%s/entities", app->o.state);
			if (con_ents_remove(dir, eerr, sizeof eerr) != VIGIL_OK ||
			    con_ents_open(dir, app->o.map_gib, &app->ents, note, sizeof note, eerr,
			    sizeof eerr) != VIGIL_OK)
				fprintf(stderr, "vigil-console: entity index: %s (searches scan)\n", eerr);
		} else if (erv != VIGIL_OK) {
			if (strcmp(eerr, ents_err) != 0)
				fprintf(stderr, "vigil-console: %s (retrying)\n", eerr);
			snprintf(ents_err, sizeof ents_err, "%s", eerr);
		} else {
			ents_err[0] = '\0';
			if (!emore) {
				/* entries of segments retention deleted, a slice per tick */
				bool edone;
				uint64_t edel;

				(void)con_ents_prune(app->ents, app->archive_dir, 20000, &edone, &edel);
			}
		}
		more = more || emore;
	}
	/* caught up: sweep old entries, a slice per tick, a sweep an hour */
	if (!more && rv == VIGIL_OK) {
		int64_t now = vigil_now_ms();
		if (app->pruning || now - app->pruned_at_ms > 3600 * 1000) {
			bool done = false;
			uint64_t deleted = 0;
			if (con_index_prune(app->ix, app->o.keep_days, now, 20000, &done, &deleted) ==
			    VIGIL_OK) {
				app->pruning = !done;
				if (done)
					app->pruned_at_ms = now;
			}
		}
	}
	con_lists_expire(app); /* list entries past their expiry (cheap when none is due) */
	/* more ready: come back at once, after the HTTP events queued meanwhile */
	tv.tv_sec = more ? 0 : app->o.poll_ms / 1000;
	tv.tv_usec = more ? 0 : (suseconds_t)(app->o.poll_ms % 1000) * 1000;
	evtimer_add(app->tick, &tv);
}

static void
on_stop(evutil_socket_t sig, short what, void *arg)
{
	con_app *app = arg;

	(void)what;
	if (!app->o.quiet)
		fprintf(stderr, "vigil-console: %s: stopping\n", strsignal((int)sig));
	event_base_loopbreak(app->base);
}

/* ["NAME ROLE", ...] of a token set, for the audit log. */
static json_t *
auth_roster(const con_auth *a)
{
	json_t *arr = json_array();
	char line[CON_NAME_MAX + 32];

	for (uint32_t i = 0; arr != NULL && i < a->n; i++) {
		snprintf(line, sizeof line, "%s %s", a->users[i].name, con_role_name(a->users[i].role));
		json_array_append_new(arr, json_string(line));
	}
	return arr;
}

/*
 * SIGHUP, part 2: the tokens file again. The new set replaces the old whole,
 * or not at all: a file that does not load keeps every token in use and says
 * why in one line. Requests copy what they keep of an analyst (the event
 * loop is one thread), so nothing points into the old set afterwards.
 */
static void
hup_tokens(con_app *app)
{
	con_auth *next = malloc(sizeof *next);
	char err[512] = "";

	if (next == NULL) {
		fprintf(stderr, "vigil-console: tokens: out of memory; the previous tokens stay in "
		    "use\n");
		return;
	}
	if (con_auth_load(app->o.tokens, next, err, sizeof err) != VIGIL_OK) {
		fprintf(stderr, "vigil-console: tokens: %s; the previous tokens stay in use\n", err);
	} else {
		uint32_t was = app->auth.n;
		json_t *before = auth_roster(&app->auth);

		app->auth = *next;
		fprintf(stderr, "vigil-console: tokens: reloaded %s (SIGHUP): %u analysts (were %u)\n",
		    app->o.tokens, app->auth.n, was);
		/* who may act, before and after (never the tokens) */
		if (con_audit_write(app->audit, NULL, "tokens-reload", app->o.tokens, before,
		    auth_roster(&app->auth)) != VIGIL_OK)
			fprintf(stderr, "vigil-console: audit: cannot record the tokens reload\n");
	}
	explicit_bzero(next, sizeof *next);
	free(next);
}

/*
 * SIGHUP: the audit log reopened at its path (rotation: the old file was
 * moved away), then the tokens file reloaded, in that order so that the
 * reload is the new file's first line. A path that cannot be opened keeps
 * the old file in use. Signals reach us as events of the one loop thread
 * that also runs every audit write and read: nothing races the swap.
 */
static void
on_hup(evutil_socket_t sig, short what, void *arg)
{
	con_app *app = arg;
	char err[512] = "";

	(void)sig;
	(void)what;
	if (con_audit_reopen(app->audit, err, sizeof err) != VIGIL_OK)
		fprintf(stderr, "vigil-console: audit: cannot reopen %s; still writing to the "
		    "previous file\n", err);
	else
		fprintf(stderr, "vigil-console: audit: reopened %s (SIGHUP)\n",
		    con_audit_path(app->audit));
	hup_tokens(app);
}

static void
on_child(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	con_rules_child_exited(arg);
}

/* "what FILE: the first OpenSSL error" */
static void
https_error(char *errbuf, size_t errlen, const char *what, const char *file)
{
	char e[256] = "unknown error";
	unsigned long code = ERR_get_error();

	if (code != 0)
		ERR_error_string_n(code, e, sizeof e);
	ERR_clear_error();
	snprintf(errbuf, errlen, "%s %s: %s", what, file, e);
}

/*
 * The HTTPS configuration (libevent_openssl, OpenSSL 3): TLS 1.2 or later,
 * the certificate (chain) and its key, checked as a pair; with a client CA,
 * a certificate is asked for and, if one is sent, must verify (an analyst
 * without one signs in with a token as before).
 */
static vigil_err
https_setup(con_app *app, char *errbuf, size_t errlen)
{
	const con_opts *o = &app->o;
	SSL_CTX *ctx;

	if (o->https_cert == NULL)
		return VIGIL_OK;
	ctx = SSL_CTX_new(TLS_server_method());
	if (ctx == NULL) {
		snprintf(errbuf, errlen, "https: out of memory");
		return VIGIL_ENOMEM;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	if (SSL_CTX_use_certificate_chain_file(ctx, o->https_cert) != 1) {
		https_error(errbuf, errlen, "--https-cert", o->https_cert);
		goto fail;
	}
	/* OpenSSL checks the pair as it loads the key (X509_R_KEY_VALUES_MISMATCH) */
	if (SSL_CTX_use_PrivateKey_file(ctx, o->https_key, SSL_FILETYPE_PEM) != 1 &&
	    ERR_GET_REASON(ERR_peek_error()) != X509_R_KEY_VALUES_MISMATCH) {
		https_error(errbuf, errlen, "--https-key", o->https_key);
		goto fail;
	}
	if (ERR_peek_error() != 0 || SSL_CTX_check_private_key(ctx) != 1) {
		ERR_clear_error();
		snprintf(errbuf, errlen, "--https-key %s is not the key of --https-cert %s",
		    o->https_key, o->https_cert);
		goto fail;
	}
	if (o->https_client_ca != NULL) {
		STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(o->https_client_ca);

		if (names == NULL ||
		    SSL_CTX_load_verify_locations(ctx, o->https_client_ca, NULL) != 1) {
			if (names != NULL)
				sk_X509_NAME_pop_free(names, X509_NAME_free);
			https_error(errbuf, errlen, "--https-client-ca", o->https_client_ca);
			goto fail;
		}
		SSL_CTX_set_client_CA_list(ctx, names); /* takes names */
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	}
	app->ssl = ctx;
	return VIGIL_OK;
fail:
	SSL_CTX_free(ctx);
	return VIGIL_EINVAL;
}

static int
mkdir_p1(const char *path)
{
	if (mkdir(path, 0750) == 0 || errno == EEXIST)
		return 0;
	return -1;
}

int
main(int argc, char **argv)
{
	con_app app;
	char err[512] = "", path[4300], note[4400];
	struct timeval now = { 0, 0 };
	struct stat st;
	vigil_err rv;
	int ret = 1;

	memset(&app, 0, sizeof app);
	ret = parse_args(argc, argv, &app.o);
	if (ret >= 0)
		return ret;
	ret = 1;
	if (app.o.replay == NULL)
		app.o.replay = default_replay();
	signal(SIGPIPE, SIG_IGN);
	snprintf(app.archive_dir, sizeof app.archive_dir, "%s/archive", app.o.data);
	if (stat(app.o.data, &st) != 0) { /* docs/tools.md, "missing" */
		fprintf(stderr, "vigil-console: --data %s: %s\n", app.o.data, strerror(errno));
		return VIGIL_EXIT_USAGE;
	}
	if (!S_ISDIR(st.st_mode)) {
		fprintf(stderr, "vigil-console: --data %s: not a directory\n", app.o.data);
		return VIGIL_EXIT_USAGE;
	}
	/* Not refused: the console may start before vigild's first write
	 * (one install, both services), but a mistyped --data must not read
	 * as "no alerts" in silence. */
	if (stat(app.archive_dir, &st) != 0)
		fprintf(stderr, "vigil-console: warning: --data %s has no archive/ (%s): the queue "
		    "stays empty until vigild writes one there\n", app.o.data, strerror(errno));
	/* The deployed rule file may not compile (the console is where it gets
	 * fixed), but it must be there: a usage error, as in vigild. */
	if (stat(app.o.rules, &st) != 0 || access(app.o.rules, R_OK) != 0) {
		fprintf(stderr, "vigil-console: --rules %s: %s\n", app.o.rules, strerror(errno));
		return VIGIL_EXIT_USAGE;
	}
	if (!S_ISREG(st.st_mode)) {
		fprintf(stderr, "vigil-console: --rules %s: not a regular file\n", app.o.rules);
		return VIGIL_EXIT_USAGE;
	}
	/* Every input is checked before STATE is made: a usage error leaves
	 * nothing behind. The client dials in the background. */
	rv = con_auth_load(app.o.tokens, &app.auth, err, sizeof err);
	if (rv != VIGIL_OK) {
		fprintf(stderr, "vigil-console: tokens: %s\n", err);
		/* a missing tokens file is a missing input: 2 (docs/tools.md) */
		return rv == VIGIL_EINVAL || rv == VIGIL_ETOOBIG || rv == VIGIL_ENOTFOUND ? 2 : 1;
	}
	if (app.o.server != NULL) {
		const char *urls[1] = { app.o.server };
		vigil_client_opts co = { .connect_wait_ms = -1, .timeout_ms = 2000, .max_attempts = 2,
			.tls_cert = app.o.tls_cert, .tls_key = app.o.tls_key, .tls_ca = app.o.tls_ca,
			.tls_server_name = app.o.tls_server_name };
		vigil_client_errinfo ei;
		if (vigil_client_open(urls, 1, &co, &app.client, &ei) != VIGIL_CLIENT_OK) {
			/* the message starts with the URL */
			fprintf(stderr, "vigil-console: --server %s%s\n", ei.message,
			    ei.code == VIGIL_CLIENT_EINVAL || ei.code == VIGIL_CLIENT_ETRANSPORT ?
			    " (see --help)" : "");
			return ei.code == VIGIL_CLIENT_ENOMEM ? 1 : 2;
		}
	}
	if (mkdir_p1(app.o.state) != 0) {
		fprintf(stderr, "vigil-console: --state %s: %s\n", app.o.state, strerror(errno));
		goto out;
	}
	snprintf(path, sizeof path, "%s/tmp", app.o.state);
	if (mkdir_p1(path) != 0) {
		fprintf(stderr, "vigil-console: %s: %s\n", path, strerror(errno));
		goto out;
	}
	if (getrandom(app.secret, sizeof app.secret, 0) != (ssize_t)sizeof app.secret) {
		fprintf(stderr, "vigil-console: getrandom: %s\n", strerror(errno));
		goto out;
	}
	snprintf(path, sizeof path, "%s/index", app.o.state);
	rv = con_index_open(path, app.o.map_gib, &app.ix, err, sizeof err);
	if (rv != VIGIL_OK) {
		fprintf(stderr, "vigil-console: %s\n", err);
		goto out;
	}
	snprintf(path, sizeof path, "%s/entities", app.o.state);
	rv = con_ents_open(path, app.o.map_gib, &app.ents, note, sizeof note, err, sizeof err);
	if (rv != VIGIL_OK) {
		fprintf(stderr, "vigil-console: entity index: %s\n", err);
		goto out;
	}
	if (note[0] != '\0')
		fprintf(stderr, "vigil-console: warning: entity index %s\n", note);
	snprintf(path, sizeof path, "%s/casework", app.o.state);
	rv = con_casework_open(path, &app.cw, err, sizeof err);
	if (rv != VIGIL_OK) {
		fprintf(stderr, "vigil-console: %s\n", err);
		goto out;
	}
	snprintf(path, sizeof path, "%s/audit.log", app.o.state);
	rv = con_audit_open(path, &app.audit, err, sizeof err);
	if (rv != VIGIL_OK) {
		fprintf(stderr, "vigil-console: audit log: %s\n", err);
		goto out;
	}
	rv = con_rules_init(&app, err, sizeof err);
	if (rv != VIGIL_OK) {
		fprintf(stderr, "vigil-console: rules: %s\n", err);
		goto out;
	}
	vigil_evconn_log_to_stderr("vigil-console");
	app.base = event_base_new();
	if (app.base == NULL) {
		fprintf(stderr, "vigil-console: out of memory\n");
		goto out;
	}
	rv = https_setup(&app, err, sizeof err);
	if (rv != VIGIL_OK) {
		fprintf(stderr, "vigil-console: %s\n", err);
		ret = rv == VIGIL_EINVAL ? 2 : 1;
		goto out;
	}
	rv = con_http_start(&app, err, sizeof err);
	if (rv != VIGIL_OK) {
		fprintf(stderr, "vigil-console: %s\n", err);
		ret = rv == VIGIL_EINVAL ? 2 : 1;
		goto out;
	}
	app.tick = evtimer_new(app.base, on_tick, &app);
	app.sigint = evsignal_new(app.base, SIGINT, on_stop, &app);
	app.sigterm = evsignal_new(app.base, SIGTERM, on_stop, &app);
	app.sigchld = evsignal_new(app.base, SIGCHLD, on_child, &app);
	app.sighup = evsignal_new(app.base, SIGHUP, on_hup, &app);
	if (app.tick == NULL || app.sigint == NULL || app.sigterm == NULL || app.sigchld == NULL ||
	    app.sighup == NULL ||
	    evsignal_add(app.sigint, NULL) != 0 || evsignal_add(app.sigterm, NULL) != 0 ||
	    evsignal_add(app.sigchld, NULL) != 0 || evsignal_add(app.sighup, NULL) != 0) {
		fprintf(stderr, "vigil-console: cannot set up the event loop\n");
		goto out;
	}
	evtimer_add(app.tick, &now);
	if (!app.o.quiet) {
		con_tailpos p;
		con_ents_stats es;
		con_index_pos(app.ix, &p);
		con_ents_get_stats(app.ents, &es);
		fprintf(stderr, "vigil-console: listening on %s://%s/ (data %s, www %s, index at "
		    "archive seq %llu, entity index %s at seq %llu, %u analysts)\n",
		    app.ssl != NULL ? "https" : "http", app.o.listen, app.o.data, app.o.www,
		    (unsigned long long)p.last_seq, es.origin == CON_ENTS_REUSED ? "reused" :
		    es.origin == CON_ENTS_REBUILT ? "rebuilt" : "new",
		    (unsigned long long)es.last_seq, app.auth.n);
	}
	event_base_dispatch(app.base);
	ret = 0;
out:
	con_rules_abort(&app);
	con_http_stop(&app);
	if (app.tick != NULL)
		event_free(app.tick);
	if (app.sigint != NULL)
		event_free(app.sigint);
	if (app.sigterm != NULL)
		event_free(app.sigterm);
	if (app.sigchld != NULL)
		event_free(app.sigchld);
	if (app.sighup != NULL)
		event_free(app.sighup);
	if (app.base != NULL)
		event_base_free(app.base);
	SSL_CTX_free(app.ssl); /* after the connections that used it */
	vigil_client_close(app.client);
	for (int i = 0; i < CON_MODEL_CACHE; i++)
		app_model_free(app.models[i].model);
	con_api_gen_entries_free(&app);
	store_gen_close(app.gen);
	con_rules_fini(&app);
	con_audit_close(app.audit);
	con_index_close(app.ix);
	con_ents_close(app.ents);
	con_casework_close(app.cw);
	return ret;
}
