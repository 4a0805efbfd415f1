/* SPDX-License-Identifier: MIT */
/*
 * tools/score/main.c - vigil-score, the command-line client: scores one
 * transaction given by flags or --txn, or a stream of JSON lines on stdin
 * or of CSV rows (--csv, tools/csv: docs/csv.md) (pipelined: up to
 * --concurrency requests in flight, replies printed in input order), and
 * sends labels. Output is one JSON object per line on
 * stdout. The manual is docs/vigil-score.md.
 *
 * Exit status (common/cli.h, docs/tools.md): 0 every request succeeded; 1 at
 * least one failed (its line says why); 2 usage error.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "csv.h"
#include "txn_client.h"
#include "vigil.h"
#include "vigil_client.h"
#include "vigil_json.h"
#include "vigil_config.h"

#define SC_MAX_SERVERS  64
#define SC_MAX_LINE     (64 * 1024)
#define SC_MAX_WINDOW   4096
#define SC_DEFAULT_URL  "tcp://127.0.0.1:9465"

static const char sc_usage[] =
    "usage: vigil-score [OPTIONS] [TRANSACTION FLAGS | --txn JSON]\n"
    "       vigil-score [OPTIONS] < transactions.jsonl\n"
    "       vigil-score [OPTIONS] --csv FILE\n"
    "       vigil-score [OPTIONS] label TXN_ID --fraud|--legit [--card ID] [--source S]\n"
    "       vigil-score [OPTIONS] health\n"
    "\n"
    "Scores card transactions with vigild and prints one JSON reply per line.\n"
    "With no transaction flags and no --txn, reads JSON objects from stdin, one\n"
    "per line, keeps up to --concurrency requests in flight and prints the replies\n"
    "in input order; --csv reads the rows of a CSV file instead (the columns of\n"
    "vigil-replay, docs/csv.md). 'health' asks every replica whether it is ready\n"
    "(one line each).\n"
    "\n"
    "Options:\n"
    "  -s, --server URL   vigild replica (tls+tcp://host:port, tcp://host:port,\n"
    "                     ipc:///path); repeat for several replicas (cards are routed\n"
    "                     by consistent hash).\n"
    "                     Default: $VIGIL_SERVER (comma-separated) or " SC_DEFAULT_URL "\n"
    "  --tls-ca FILE      PEM CA that signed the servers' certificates (tls+tcp://)\n"
    "  --tls-cert FILE    this client's PEM certificate (mutual TLS) ...\n"
    "  --tls-key FILE     ... and its unencrypted PEM key\n"
    "  --tls-server-name NAME\n"
    "                     name the servers' certificates must carry (default: the\n"
    "                     URL's host)\n"
    "  --timeout MS       per-attempt timeout (default 1000)\n"
    "  --attempts N       attempts per request, failing over between replicas (default 3)\n"
    "  --dry-run          evaluate only: nothing is recorded by the server\n"
    "  --concurrency N    requests in flight when reading stdin (default 64, max 4096)\n"
    "  -j, --json         replies as JSON lines (the default and only output format)\n"
    "  -q, --quiet        no progress or summary on stderr\n"
    "  -h, --help         this text\n"
    "  -V, --version      print the version and exit\n"
    "\n"
    "Transaction flags (amount in major units of the currency):\n"
    "  --txn-id ID --card ID --merchant ID --amount 12.34 --currency EUR\n"
    "  [--amount-minor N] [--terminal ID] [--country CC] [--mcc N]\n"
    "  [--channel pos|ecom|atm|moto] [--device ID] [--ip ADDR]\n"
    "  [--time RFC3339 | --time-ms MS] (default: now) [--lat DEG --lon DEG]\n"
    "  -t, --txn JSON     the transaction as one JSON object (docs/protocol.md field\n"
    "                     names), inline or @FILE\n"
    "  --csv FILE         score every row of a CSV file (- = stdin; docs/csv.md),\n"
    "                     pipelined as JSON lines are; label columns are not sent\n"
    "\n"
    "Label flags: --fraud | --legit, [--card ID] (routes to the card's replica),\n"
    "  [--source S] (default \"cli\"), [--time RFC3339 | --time-ms MS]\n"
    "\n";

static const char *const sc_exit_detail[VIGIL_EXIT_COUNT_] = {
	"every request succeeded (health: every replica ready)",
	"at least one request failed or input line was refused (its line says why)",
	"bad command line, an input that cannot be opened, or a CSV without a required column",
	NULL,
};

/*
 * vigil-score's flags, a row each (VIGIL_CLI_OPT_ENUM, common/cli.h). Every long
 * flag returns a value of its own, above 255: its short letter (optstring,
 * shared table of common/cli.h) is a second case beside it.
 */
#define SC_OPTIONS(X) \
	X(OPT_SERVER,          "server",          required_argument, 0) \
	X(OPT_TLS_CA,          "tls-ca",          required_argument, 0) \
	X(OPT_TLS_CERT,        "tls-cert",        required_argument, 0) \
	X(OPT_TLS_KEY,         "tls-key",         required_argument, 0) \
	X(OPT_TLS_SERVER_NAME, "tls-server-name", required_argument, 0) \
	X(OPT_TIMEOUT,         "timeout",         required_argument, 0) \
	X(OPT_ATTEMPTS,        "attempts",        required_argument, 0) \
	X(OPT_DRY_RUN,         "dry-run",         no_argument,       0) \
	X(OPT_CONCURRENCY,     "concurrency",     required_argument, 0) \
	X(OPT_WINDOW,          "window",          required_argument, 0) /* deprecated: --concurrency */ \
	X(OPT_QUIET,           "quiet",           no_argument,       0) \
	X(OPT_JSON,            "json",            no_argument,       0) \
	X(OPT_TXN,             "txn",             required_argument, 0) \
	X(OPT_CSV,             "csv",             required_argument, 0) \
	X(OPT_TXN_ID,          "txn-id",          required_argument, 0) \
	X(OPT_CARD,            "card",            required_argument, 0) \
	X(OPT_MERCHANT,        "merchant",        required_argument, 0) \
	X(OPT_AMOUNT,          "amount",          required_argument, 0) \
	X(OPT_AMOUNT_MINOR,    "amount-minor",    required_argument, 0) \
	X(OPT_CURRENCY,        "currency",        required_argument, 0) \
	X(OPT_TERMINAL,        "terminal",        required_argument, 0) \
	X(OPT_COUNTRY,         "country",         required_argument, 0) \
	X(OPT_MCC,             "mcc",             required_argument, 0) \
	X(OPT_CHANNEL,         "channel",         required_argument, 0) \
	X(OPT_DEVICE,          "device",          required_argument, 0) \
	X(OPT_IP,              "ip",              required_argument, 0) \
	X(OPT_TIME,            "time",            required_argument, 0) \
	X(OPT_TIME_MS,         "time-ms",         required_argument, 0) \
	X(OPT_LAT,             "lat",             required_argument, 0) \
	X(OPT_LON,             "lon",             required_argument, 0) \
	X(OPT_FRAUD,           "fraud",           no_argument,       0) \
	X(OPT_LEGIT,           "legit",           no_argument,       0) \
	X(OPT_SOURCE,          "source",          required_argument, 0) \
	X(OPT_HELP,            "help",            no_argument,       0) \
	X(OPT_VERSION,         "version",         no_argument,       0)

VIGIL_CLI_OPT_ENUM(SC_OPTIONS);

static const struct option sc_options[] = {
	SC_OPTIONS(VIGIL_CLI_OPT_ENTRY) { NULL, 0, NULL, 0 },
};

typedef struct sc_args {
	const char *servers[SC_MAX_SERVERS];
	size_t      nservers;
	char       *env_servers; /* strdup of $VIGIL_SERVER, split in place */
	vigil_client_opts    opts;
	vigil_client_callopts callopts;
	uint32_t    window;
	bool        quiet;
	const char *json;
	const char *csv;         /* --csv FILE */
	json_t     *flags;       /* transaction fields given as flags */
	int         fraud;       /* label: -1 unset, 0 legit, 1 fraud */
	const char *source;
	const char *card;
	const char *time;
	const char *time_ms;
} sc_args;

/* ---- argument parsing ---- */

#define sc_usage_error(...) vigil_cli_usage_error("vigil-score", __VA_ARGS__)

/* Every exit: status, or 1 with one line if anything written to stdout was
 * lost (the printer thread's earlier flushes included: ferror decides). */
#define sc_stdout_close_status(status) vigil_cli_stdout_status("vigil-score", status)

/*
 * The client's close, bounded. nng 1.5.2's nng_close can hang for good when
 * a socket's reap races a pipe that a replica's death closed
 * (nanomsg/nng#1543, fixed after 1.5.2): seen once in CI, every reply
 * written and the process never exiting. Everything is answered and
 * written when this runs, so a close that takes over SC_CLOSE_WAIT_MS is
 * left to the process's exit: standard output is flushed and the process
 * ends with the status it has (_exit: nothing else is left to do).
 */
#define SC_CLOSE_WAIT_MS 5000

static void
sc_close(void *c)
{
	vigil_client_close(c);
}

static void
sc_close_bounded(vigil_client *c, int status)
{
	if (c == NULL || vigil_call_bounded(sc_close, c, SC_CLOSE_WAIT_MS))
		return;
	fprintf(stderr, "vigil-score: warning: closing the connections took over %d s "
	    "(nng 1.5.2); exiting without waiting\n", SC_CLOSE_WAIT_MS / 1000);
	_exit(sc_stdout_close_status(status));
}

static bool
sc_parse_i64(const char *s, int64_t min, int64_t max, int64_t *ret)
{
	char     *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
		return false;
	*ret = v;
	return true;
}

static bool
sc_parse_double(const char *s, double *ret)
{
	char  *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0')
		return false;
	*ret = v;
	return true;
}

/* Sets flags[key] = value (a new reference, stolen). 0 or 2 (usage error). */
static int
sc_flag_set(sc_args *a, const char *key, json_t *value)
{
	if (value == NULL || json_object_set_new(a->flags, key, value) != 0) {
		fprintf(stderr, "vigil-score: out of memory\n");
		return 2;
	}
	return 0;
}

/* flags[key] = the string given to --opt (json_string refuses bad UTF-8). */
static int
sc_flag_str(sc_args *a, const char *opt, const char *key, const char *value)
{
	json_t *v = json_string(value);

	if (v == NULL) {
		json_t *raw = json_stringn_nocheck(value, strlen(value));

		if (raw != NULL) {
			json_decref(raw);
			return sc_usage_error("--%s: not valid UTF-8", opt);
		}
	}
	return sc_flag_set(a, key, v);
}

static int
sc_parse_args(int argc, char **argv, sc_args *a, int *ret_optind)
{
	int     opt;
	int64_t iv;
	double  dv;
	int     rv;
	const char *tls;

	a->fraud  = -1;
	a->window = 64;
	a->flags  = json_object();
	if (a->flags == NULL)
		return 2;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "s:t:jqhV", sc_options, NULL)) != -1) {
		rv = 0;
		switch (opt) {
		case OPT_HELP:
		case 'h':
			fputs(sc_usage, stdout);
			vigil_cli_exit_help(stdout, sc_exit_detail);
			exit(sc_stdout_close_status(0));
		case OPT_VERSION:
		case 'V':
			vigil_cli_version(stdout, "vigil-score");
			exit(sc_stdout_close_status(0));
		case 's':
		case OPT_SERVER:
			if (!vigil_cli_url_ok(optarg))
				return sc_usage_error("--server: \"%s\" is not a URL: write "
				    VIGIL_CLI_URL_FORMS, optarg);
			if (a->nservers == SC_MAX_SERVERS)
				return sc_usage_error("more than 64 --server options");
			a->servers[a->nservers++] = optarg;
			break;
		case OPT_TLS_CA:
			a->opts.tls_ca = optarg;
			break;
		case OPT_TLS_CERT:
			a->opts.tls_cert = optarg;
			break;
		case OPT_TLS_KEY:
			a->opts.tls_key = optarg;
			break;
		case OPT_TLS_SERVER_NAME:
			a->opts.tls_server_name = optarg;
			break;
		case OPT_TIMEOUT:
			if (!sc_parse_i64(optarg, 1, 3600000, &iv))
				return sc_usage_error("--timeout: \"%s\" is not a number of milliseconds in [1, 3600000]", optarg);
			a->opts.timeout_ms = (int32_t) iv;
			break;
		case OPT_ATTEMPTS:
			if (!sc_parse_i64(optarg, 1, 100, &iv))
				return sc_usage_error("--attempts: \"%s\" is not a number in [1, 100]", optarg);
			a->opts.max_attempts = (uint32_t) iv;
			break;
		case OPT_DRY_RUN:
			a->callopts.dry_run = true;
			break;
		case OPT_CONCURRENCY:
		case OPT_WINDOW:
			if (!sc_parse_i64(optarg, 1, SC_MAX_WINDOW, &iv))
				return sc_usage_error("--concurrency: \"%s\" is not a number in [1, 4096]",
				    optarg);
			a->window = (uint32_t) iv;
			break;
		case 'q':
		case OPT_QUIET:
			a->quiet = true;
			break;
		case 'j':
		case OPT_JSON:
			break; /* JSON lines are the only output format */
		case 't':
		case OPT_TXN:
			a->json = optarg;
			break;
		case OPT_CSV:
			a->csv = optarg;
			break;
		case OPT_TXN_ID:
			rv = sc_flag_str(a, "txn-id", "txn_id", optarg);
			break;
		case OPT_CARD:
			a->card = optarg;
			rv = sc_flag_str(a, "card", "card_id", optarg);
			break;
		case OPT_MERCHANT:
			rv = sc_flag_str(a, "merchant", "merchant_id", optarg);
			break;
		case OPT_AMOUNT:
			/* a string: vigil_txn_from_json converts it exactly */
			rv = sc_flag_str(a, "amount", "amount", optarg);
			break;
		case OPT_AMOUNT_MINOR:
			if (!sc_parse_i64(optarg, 0, INT64_MAX, &iv))
				return sc_usage_error("--amount-minor: \"%s\" is not a non-negative integer", optarg);
			rv = sc_flag_set(a, "amount_minor", json_integer(iv));
			break;
		case OPT_CURRENCY:
			rv = sc_flag_str(a, "currency", "currency", optarg);
			break;
		case OPT_TERMINAL:
			rv = sc_flag_str(a, "terminal", "terminal_id", optarg);
			break;
		case OPT_COUNTRY:
			rv = sc_flag_str(a, "country", "country", optarg);
			break;
		case OPT_MCC:
			if (!sc_parse_i64(optarg, 0, 9999, &iv))
				return sc_usage_error("--mcc: \"%s\" is not a number in [0, 9999]", optarg);
			rv = sc_flag_set(a, "mcc", json_integer(iv));
			break;
		case OPT_CHANNEL:
			rv = sc_flag_str(a, "channel", "channel", optarg);
			break;
		case OPT_DEVICE:
			rv = sc_flag_str(a, "device", "device_id", optarg);
			break;
		case OPT_IP:
			rv = sc_flag_str(a, "ip", "ip", optarg);
			break;
		case OPT_TIME:
			a->time = optarg;
			rv = sc_flag_str(a, "time", "event_time", optarg);
			break;
		case OPT_TIME_MS:
			if (!sc_parse_i64(optarg, 1, INT64_MAX, &iv))
				return sc_usage_error("--time-ms: \"%s\" is not a positive integer", optarg);
			a->time_ms = optarg;
			rv = sc_flag_set(a, "event_time_ms", json_integer(iv));
			break;
		case OPT_LAT:
		case OPT_LON:
			if (!sc_parse_double(optarg, &dv) || !(fabs(dv) <= (opt == OPT_LAT ? 90 : 180)))
				return sc_usage_error("--%s: \"%s\" is not a number in [%s]",
				    opt == OPT_LAT ? "lat" : "lon", optarg,
				    opt == OPT_LAT ? "-90, 90" : "-180, 180");
			rv = sc_flag_set(a, opt == OPT_LAT ? "lat" : "lon", json_real(dv));
			break;
		case OPT_FRAUD:
		case OPT_LEGIT:
			if (a->fraud != -1)
				return sc_usage_error("--fraud and --legit: give exactly one");
			a->fraud = opt == OPT_FRAUD;
			break;
		case OPT_SOURCE:
			a->source = optarg;
			break;
		case '?':
		default:
			return vigil_cli_bad_option("vigil-score", argv);
		}
		if (rv != 0)
			return rv;
	}
	*ret_optind = optind;
	if (a->nservers == 0) {
		const char *env = getenv("VIGIL_SERVER");

		if (env != NULL && env[0] != '\0') {
			char *save = NULL, *tok;

			a->env_servers = strdup(env);
			if (a->env_servers == NULL)
				return 2;
			for (tok = strtok_r(a->env_servers, ",", &save); tok != NULL;
			    tok = strtok_r(NULL, ",", &save)) {
				size_t len;

				while (*tok == ' ' || *tok == '\t')
					tok++;
				len = strlen(tok);
				while (len > 0 && (tok[len - 1] == ' ' || tok[len - 1] == '\t'))
					tok[--len] = '\0';
				if (*tok == '\0')
					continue;
				if (a->nservers == SC_MAX_SERVERS)
					return sc_usage_error("VIGIL_SERVER: more than 64 URLs");
				if (!vigil_cli_url_ok(tok))
					return sc_usage_error("VIGIL_SERVER: \"%s\" is not a URL: write "
					    VIGIL_CLI_URL_FORMS, tok);
				a->servers[a->nservers++] = tok;
			}
			/* set but naming nobody: not the default server unseen */
			if (a->nservers == 0)
				return sc_usage_error("VIGIL_SERVER: \"%s\" names no URL: write "
				    VIGIL_CLI_URL_FORMS ", comma-separated", env);
		}
		if (a->nservers == 0)
			a->servers[a->nservers++] = SC_DEFAULT_URL;
	}
	if (a->opts.tls_ca == NULL && (tls = vigil_tools_url_tls(a->servers, a->nservers)) != NULL)
		return sc_usage_error("%s: a tls+tcp:// URL needs --tls-ca FILE", tls);
	return 0;
}

/* ---- replies as JSON ---- */

/* Length of the well-formed UTF-8 sequence at s (1 to 4 bytes), or 0. */
static size_t
sc_utf8_len(const unsigned char *s)
{
	unsigned c = s[0], cp, min;
	size_t   n;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2, cp = c & 0x1f, min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3, cp = c & 0x0f, min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4, cp = c & 0x07, min = 0x10000;
	} else {
		return 0;
	}
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80) /* also stops at the NUL */
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

/*
 * A JSON string of s. The server's strings (and messages cut to the client's
 * buffer) need not be UTF-8, which json_string refuses: then each bad byte
 * becomes U+FFFD, so no key or hit goes missing from a line. NULL: ENOMEM.
 */
static json_t *
sc_json_str(const char *s)
{
	json_t *v = json_string(s);
	size_t  len = 0;
	char   *buf;

	if (v != NULL)
		return v;
	buf = malloc(strlen(s) * 3 + 1);
	if (buf == NULL)
		return NULL;
	for (const unsigned char *p = (const unsigned char *) s; *p != '\0';) {
		size_t n = sc_utf8_len(p);

		if (n == 0) {
			memcpy(buf + len, "\xef\xbf\xbd", 3);
			len += 3;
			p++;
		} else {
			memcpy(buf + len, p, n);
			len += n;
			p += n;
		}
	}
	buf[len] = '\0';
	v = json_string(buf);
	free(buf);
	return v;
}

static json_t *
sc_result_json(const vigil_client_result *res)
{
	json_t *o = json_object();
	json_t *hits = json_array();

	if (o == NULL || hits == NULL) {
		json_decref(o);
		json_decref(hits);
		return NULL;
	}
	for (size_t i = 0; i < res->nhits; i++)
		json_array_append_new(hits, json_pack("{s:o, s:i, s:o, s:b}",
		    "rule", sc_json_str(res->hits[i].rule), "points", (int) res->hits[i].points,
		    "reason", sc_json_str(res->hits[i].reason), "shadow", res->hits[i].shadow));
	json_object_set_new(o, "txn_id", sc_json_str(res->txn_id));
	json_object_set_new(o, "decision", json_string(vigil_client_decision_name(res->decision)));
	json_object_set_new(o, "score", json_real(res->score));
	json_object_set_new(o, "points", json_integer(res->points));
	json_object_set_new(o, "hits", hits);
	json_object_set_new(o, "rules_version", sc_json_str(res->rules_version));
	json_object_set_new(o, "rules_hash", sc_json_str(res->rules_hash != NULL ? res->rules_hash : ""));
	json_object_set_new(o, "features_generation", json_integer((json_int_t) res->features_generation));
	json_object_set_new(o, "latency_us", json_integer(res->latency_us));
	json_object_set_new(o, "duplicate", json_boolean(res->duplicate));
	json_object_set_new(o, "dry_run", json_boolean(res->dry_run));
	json_object_set_new(o, "late", json_boolean(res->late));
	json_object_set_new(o, "past_dedupe_horizon", json_boolean(res->past_dedupe_horizon));
	json_object_set_new(o, "replica", sc_json_str(res->replica));
	json_object_set_new(o, "attempts", json_integer(res->attempts));
	/* the envelope of /v1/score's replies (docs/protocol.md, "JSON") */
	json_object_set_new(o, "status", json_string("OK"));
	json_object_set_new(o, "message", json_string("ok"));
	if (res->has_model) {
		json_t *m = json_object(), *rs = json_array();

		for (size_t i = 0; i < res->nmodel_reasons; i++)
			json_array_append_new(rs, json_pack("{s:o, s:f, s:f}",
			    "feature", sc_json_str(res->model_reasons[i].feature),
			    "value", res->model_reasons[i].value,
			    "contribution", res->model_reasons[i].contribution));
		json_object_set_new(m, "score", json_real(res->model_score));
		json_object_set_new(m, "reasons", rs);
		json_object_set_new(o, "model", m);
	}
	return o;
}

/*
 * The status of an error line: the vigil.v1.Status name that /v1/score puts
 * in its "status" (docs/protocol.md, "JSON"), so one key tells every reply
 * apart. The server's refusals (S...) are their own status; a bad input
 * line is INVALID (a field) or MALFORMED (not JSON); a server that could
 * not be reached or did not answer, UNAVAILABLE; anything else (a reply
 * that is not one, out of memory), INTERNAL.
 */
static const char *
sc_status_name(const char *errname)
{
	static const char *const map[][2] = {
		{ "SINVALID", "INVALID" }, { "SMALFORMED", "MALFORMED" }, { "STOOBIG", "TOO_BIG" },
		{ "SUNSUPPORTED", "UNSUPPORTED" }, { "SOVERLOADED", "OVERLOADED" },
		{ "SUNAVAILABLE", "UNAVAILABLE" }, { "SINTERNAL", "INTERNAL" },
		{ "EINVAL", "INVALID" }, { "ESYNTAX", "MALFORMED" }, { "ETIMEDOUT", "UNAVAILABLE" },
		{ "EUNREACHABLE", "UNAVAILABLE" }, { "ECLOSED", "UNAVAILABLE" },
		{ "ETRANSPORT", "UNAVAILABLE" }, { "ELIMIT", "OVERLOADED" },
	};

	for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
		if (strcmp(errname, map[i][0]) == 0)
			return map[i][1];
	return "INTERNAL";
}

/*
 * {"txn_id":..,"status":"INVALID","error":{"code":"INVALID","message":..,
 * "where":{"field":..,"file":..,"line":..,"column":..}},"client_error":"SINVALID"}:
 * the one error object of docs/tools.md, its code the wire's status, as in
 * /v1/score's errors; "client_error" is the client's precise name
 * (docs/client.md). where holds what ei has.
 */
static json_t *
sc_error_obj(const char *txn_id, const char *errname, const vigil_errinfo *ei)
{
	json_t *o = json_object(), *err;
	const char *status = sc_status_name(errname);

	if (o == NULL)
		return NULL;
	if (txn_id != NULL && txn_id[0] != '\0')
		json_object_set_new(o, "txn_id", sc_json_str(txn_id));
	json_object_set_new(o, "status", json_string(status));
	err = vigil_error_json(status, ei);
	if (err == NULL) {
		json_decref(o);
		return NULL;
	}
	json_object_set_new(o, "error", err);
	json_object_set_new(o, "client_error", json_string(errname));
	return o;
}

/* sc_error_obj with a message, the field (NULL or "" for none) and the
 * input line (0 for none). */
static json_t *
sc_error_json(const char *txn_id, size_t line, const char *errname, const char *message,
    const char *field)
{
	vigil_errinfo ei;

	vigil_errinfo_set(&ei, field, "%s", message);
	ei.line = (uint32_t)line;
	return sc_error_obj(txn_id, errname, &ei);
}

/* Prints o as one line and frees it. */
static void
sc_print(json_t *o)
{
	char *s = o != NULL ? json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;

	if (s == NULL) {
		fputs("{\"status\":\"INTERNAL\",\"error\":{\"code\":\"INTERNAL\",\"message\":"
		    "\"out of memory formatting a reply\"},\"client_error\":\"ENOMEM\"}\n", stdout);
	} else {
		fputs(s, stdout);
		fputc('\n', stdout);
	}
	free(s);
	json_decref(o);
}
/* ---- transactions ---- */


/*
 * obj -> client txn (strings point into *store). A missing event time is
 * "now" (vigil_txn_from_json_now, the rule of every JSON reader). VIGIL_OK or
 * VIGIL_EINVAL with *reterr (the field and what is wrong with it).
 */
static vigil_err
sc_txn_from_json(const json_t *obj, vigil_txn *store, vigil_client_txn *ret, vigil_errinfo *reterr)
{
	vigil_err rv;

	rv = vigil_txn_from_json_now(obj, vigil_now_ms(), store, reterr);
	if (rv != VIGIL_OK)
		return rv;
	vigil_tools_txn_to_client(store, ret);
	return VIGIL_OK;
}

/* The flag that sets transaction field key ("txn." prefix allowed), or
 * NULL. */
static const char *
sc_field_flag(const char *key)
{
	static const char *const map[][2] = {
		{ "txn_id", "txn-id" }, { "card_id", "card" }, { "merchant_id", "merchant" },
		{ "amount", "amount" }, { "amount_minor", "amount-minor" },
		{ "currency", "currency" }, { "terminal_id", "terminal" },
		{ "country", "country" }, { "mcc", "mcc" }, { "channel", "channel" },
		{ "device_id", "device" }, { "ip", "ip" }, { "event_time", "time" },
		{ "event_time_ms", "time-ms" }, { "lat", "lat" }, { "lon", "lon" },
	};

	if (strncmp(key, "txn.", 4) == 0)
		key += 4;
	for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
		if (strcmp(key, map[i][0]) == 0)
			return map[i][1];
	return NULL;
}

/* A transaction built from flags (or --json) is wrong: the usage error
 * names the flag ("--amount: ..."), not the JSON field the flag filled, or
 * that field when no flag fills it. */
static int
sc_flag_error(const char *field, const char *msg)
{
	const char *flag = sc_field_flag(field);

	if (flag != NULL)
		return sc_usage_error("--%s: %s", flag, msg);
	return sc_usage_error("%s%s%s", field, field[0] != '\0' ? ": " : "", msg);
}

/* One transaction from flags or --json. Exit status. */
static int
sc_score_one(vigil_client *c, const sc_args *a, json_t *obj)
{
	vigil_txn            store;
	vigil_client_txn     txn;
	vigil_client_result  res = { 0 };
	vigil_client_errinfo info;
	vigil_client_err     err;
	vigil_errinfo        ei;

	if (obj == a->flags && json_object_get(obj, "amount") != NULL &&
	    json_object_get(obj, "currency") == NULL)
		return sc_usage_error("--amount needs --currency (its minor units)");
	if (sc_txn_from_json(obj, &store, &txn, &ei) != VIGIL_OK) {
		char line[sizeof ei.field + sizeof ei.msg + 4];

		if (obj == a->flags)
			return sc_flag_error(ei.field, ei.msg);
		fprintf(stderr, "vigil-score: %s\n", vigil_errinfo_format(&ei, line, sizeof line));
		return 2;
	}
	err = vigil_client_score(c, &txn, &a->callopts, &res, &info);
	if (err == VIGIL_CLIENT_EINVAL) {
		/* a required flag or field is missing: the command line is wrong */
		char line[sizeof info.field + sizeof info.message + 2];

		if (obj == a->flags)
			return sc_flag_error(info.field, info.message);
		return sc_usage_error("%s", vigil_client_errinfo_format(&info, line, sizeof line));
	}
	if (err != VIGIL_CLIENT_OK) {
		sc_print(sc_error_json(txn.txn_id, 0, vigil_client_errname(err), info.message, info.field));
		return 1;
	}
	sc_print(sc_result_json(&res));
	vigil_client_result_fini(&res);
	return 0;
}

/* ---- the stdin pipeline ---- */

/*
 * Replies are printed in input order: slot seq % window holds the reply of
 * input number seq until every earlier one has been printed. The main
 * thread reads and submits, waiting while `window` replies are unprinted; a
 * printer thread prints the head of the window as soon as it is done, so
 * replies come out while stdin is idle too (a co-process that waits for each
 * reply before writing the next line works). stdout is flushed whenever the
 * printer has to wait, so a busy stream is written in large blocks.
 */
typedef struct sc_slot {
	bool    done;
	bool    failed;
	json_t *out;
	size_t  line; /* of the input */
	char    txn_id[VIGIL_ID_MAX + 1];
} sc_slot;

typedef struct sc_pipe {
	pthread_mutex_t mtx;
	pthread_cond_t  cv;
	sc_slot        *slots;
	uint32_t        window;
	uint64_t        next_print; /* seq of the next reply to print */
	uint64_t        next_seq;   /* seq of the next input */
	uint64_t        answered, failed;
	bool            eof;        /* no more input: the printer ends when all is printed */
	const char     *file;       /* --csv FILE, or NULL: standard input's JSON lines */
} sc_pipe;

typedef struct sc_ticket {
	sc_pipe *p;
	uint64_t seq;
} sc_ticket;

static void
sc_slot_complete(sc_pipe *p, uint64_t seq, json_t *out, bool failed)
{
	sc_slot *s;

	pthread_mutex_lock(&p->mtx);
	s = &p->slots[seq % p->window];
	s->out    = out;
	s->failed = failed;
	s->done   = true;
	p->answered++;
	if (failed)
		p->failed++;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mtx);
}

/* The error object of input seq, refused by the client or the server: where
 * is its input (file, line) and, when one is at fault, the field. */
static json_t *
sc_slot_error(const sc_pipe *p, uint64_t seq, vigil_client_err err,
    const vigil_client_errinfo *info)
{
	const sc_slot *s = &p->slots[seq % p->window];
	vigil_errinfo  ei;

	vigil_errinfo_set(&ei, info->field, "%s", info->message);
	ei.line = (uint32_t)s->line;
	if (p->file != NULL)
		snprintf(ei.file, sizeof ei.file, "%s", p->file);
	return sc_error_obj(s->txn_id, vigil_client_errname(err), &ei);
}

static void
sc_on_score(void *arg, vigil_client_err err, vigil_client_result *res,
    const vigil_client_errinfo *info)
{
	sc_ticket *t = arg;
	sc_pipe   *p = t->p;
	uint64_t   seq = t->seq;
	json_t    *out;

	free(t);
	out = err == VIGIL_CLIENT_OK ? sc_result_json(res) : sc_slot_error(p, seq, err, info);
	sc_slot_complete(p, seq, out, err != VIGIL_CLIENT_OK || out == NULL);
}

/* Waits until fewer than `window` inputs are unprinted. Caller holds p->mtx. */
static void
sc_pipe_wait_room(sc_pipe *p)
{
	while (p->next_seq - p->next_print >= p->window)
		pthread_cond_wait(&p->cv, &p->mtx);
}

static void *
sc_printer_main(void *arg)
{
	sc_pipe *p = arg;

	pthread_mutex_lock(&p->mtx);
	for (;;) {
		sc_slot *s = &p->slots[p->next_print % p->window];

		if (p->next_print < p->next_seq && s->done) {
			json_t *out = s->out;

			s->out  = NULL;
			s->done = false;
			p->next_print++;
			pthread_cond_broadcast(&p->cv); /* room for the reader */
			pthread_mutex_unlock(&p->mtx);
			sc_print(out);
			pthread_mutex_lock(&p->mtx);
			continue;
		}
		if (p->eof && p->next_print == p->next_seq)
			break;
		pthread_mutex_unlock(&p->mtx);
		fflush(stdout);
		pthread_mutex_lock(&p->mtx);
		/* re-check: a reply may have completed while we flushed */
		if (!(p->next_print < p->next_seq && p->slots[p->next_print % p->window].done) &&
		    !(p->eof && p->next_print == p->next_seq))
			pthread_cond_wait(&p->cv, &p->mtx);
	}
	pthread_mutex_unlock(&p->mtx);
	fflush(stdout);
	return NULL;
}

/* The counts on standard error: over the line before on a terminal (tty),
 * and a line of its own at the end (final), wherever standard error goes. */
static void
sc_progress(sc_pipe *p, bool final, bool tty)
{
	uint64_t sent, answered, failed;

	pthread_mutex_lock(&p->mtx);
	sent = p->next_seq;
	answered = p->answered;
	failed = p->failed;
	pthread_mutex_unlock(&p->mtx);
	fprintf(stderr, "%svigil-score: %" PRIu64 " sent, %" PRIu64 " answered, %" PRIu64
	    " failed%s", tty ? "\r" : "", sent, answered, failed, final ? "\n" : "");
	fflush(stderr);
}

/* Reads a line of at most SC_MAX_LINE bytes. 1: got one (*ret_toolong set if
 * it was cut); 0: EOF; -1: read error. */
static int
sc_read_line(FILE *in, char *buf, size_t cap, size_t *ret_len, bool *ret_toolong)
{
	size_t len = 0;
	int    ch;

	*ret_toolong = false;
	while ((ch = getc_unlocked(in)) != EOF && ch != '\n') {
		if (len + 1 < cap)
			buf[len++] = (char) ch;
		else
			*ret_toolong = true;
	}
	if (ch == EOF && ferror(in))
		return -1;
	if (ch == EOF && len == 0 && !*ret_toolong)
		return 0;
	if (len > 0 && buf[len - 1] == '\r')
		len--;
	buf[len] = '\0';
	*ret_len = len;
	return 1;
}

/*
 * Where the stream's transactions come from: JSON lines (stdin) or a CSV
 * file (--csv, the reader and columns of vigil-replay: docs/csv.md).
 */
typedef struct sc_source {
	FILE       *in;    /* JSON lines, or NULL */
	char       *line;
	size_t      lineno;
	csv_reader *csv;   /* or CSV */
} sc_source;

/*
 * The next transaction: 1 with *store and *txn filled (txn's strings point
 * into store) and *ret_line its line; 2 for a bad record, *ret_err its
 * error object (NULL on ENOMEM); 0 at the end; -1 on a read error (errno,
 * or the CSV reader's message printed).
 */
static int
sc_source_next(sc_source *src, vigil_txn *store, vigil_client_txn *txn, size_t *ret_line,
    json_t **ret_err)
{
	char errbuf[640];

	*ret_err = NULL;
	if (src->csv != NULL) {
		csv_row  row;
		csv_diag d;
		vigil_err rv = csv_reader_next(src->csv, &row, &d);

		if (rv == VIGIL_ENOTFOUND)
			return 0;
		if (rv == VIGIL_EIO) {
			fprintf(stderr, "vigil-score: %s\n", vigil_errinfo_format(&d, errbuf, sizeof errbuf));
			return -1;
		}
		*ret_line = rv == VIGIL_OK ? row.line : d.line;
		if (rv != VIGIL_OK) {
			/* the reader's place (file, line, column) and reason */
			*ret_err = sc_error_obj(NULL, "EINVAL", &d);
			return 2;
		}
		*store = row.txn;
		vigil_tools_txn_to_client(store, txn);
		return 1;
	}
	for (;;) {
		vigil_errinfo ei;
		json_error_t jerr;
		json_t      *obj;
		size_t       len;
		bool         toolong;
		int          r = sc_read_line(src->in, src->line, SC_MAX_LINE + 1, &len, &toolong);

		if (r <= 0)
			return r;
		*ret_line = ++src->lineno;
		if (!toolong && strspn(src->line, " \t") == len)
			continue; /* blank lines get no reply */
		/* the message says what, where says the line (docs/tools.md) */
		if (toolong) {
			snprintf(errbuf, sizeof errbuf, "longer than %d bytes", SC_MAX_LINE);
			*ret_err = sc_error_json(NULL, src->lineno, "EINVAL", errbuf, NULL);
			return 2;
		}
		obj = json_loadb(src->line, len, JSON_REJECT_DUPLICATES, &jerr);
		if (obj == NULL) {
			vigil_errinfo_set(&ei, NULL, "%s", jerr.text);
			ei.line = (uint32_t)src->lineno;
			ei.col = jerr.column > 0 ? (uint32_t)jerr.column : 0;
			*ret_err = sc_error_obj(NULL, "ESYNTAX", &ei);
			return 2;
		}
		if (sc_txn_from_json(obj, store, txn, &ei) != VIGIL_OK) {
			char field[sizeof ei.field + 8];

			snprintf(field, sizeof field, "txn%s%s", ei.field[0] ? "." : "", ei.field);
			*ret_err = sc_error_json(json_string_value(json_object_get(obj, "txn_id")),
			    src->lineno, "EINVAL", ei.msg, field);
			json_decref(obj);
			return 2;
		}
		json_decref(obj);
		return 1;
	}
}

static int
sc_score_stream(vigil_client *c, const sc_args *a, sc_source *src)
{
	sc_pipe  p = { .window = a->window, .file = a->csv };
	pthread_t printer;
	bool     tty = !a->quiet && isatty(STDERR_FILENO);
	uint64_t last_progress = 0;
	int      r, status = 0;

	p.slots = calloc(a->window, sizeof *p.slots);
	if (p.slots == NULL) {
		fprintf(stderr, "vigil-score: out of memory\n");
		return 1;
	}
	pthread_mutex_init(&p.mtx, NULL);
	pthread_cond_init(&p.cv, NULL);
	if (pthread_create(&printer, NULL, sc_printer_main, &p) != 0) {
		fprintf(stderr, "vigil-score: cannot start the printer thread\n");
		free(p.slots);
		return 1;
	}

	for (;;) {
		vigil_txn            store;
		vigil_client_txn     txn;
		vigil_client_errinfo info;
		json_t              *bad;
		size_t               lineno = 0;
		uint64_t             seq;
		sc_slot             *slot;

		r = sc_source_next(src, &store, &txn, &lineno, &bad);
		if (r <= 0)
			break;
		pthread_mutex_lock(&p.mtx);
		sc_pipe_wait_room(&p);
		seq = p.next_seq++;
		slot = &p.slots[seq % p.window];
		slot->txn_id[0] = '\0';
		slot->line = lineno;
		pthread_mutex_unlock(&p.mtx);

		if (r == 2) {
			sc_slot_complete(&p, seq, bad, true);
			continue;
		}
		snprintf(slot->txn_id, sizeof slot->txn_id, "%s", txn.txn_id);

		sc_ticket *t = malloc(sizeof *t);
		vigil_client_err err = VIGIL_CLIENT_ENOMEM;

		if (t != NULL) {
			t->p = &p;
			t->seq = seq;
			err = vigil_client_score_async(c, &txn, &a->callopts, sc_on_score, t, &info);
		} else {
			snprintf(info.message, sizeof info.message, "out of memory");
			info.field[0] = '\0';
		}
		if (err != VIGIL_CLIENT_OK) {
			free(t);
			sc_slot_complete(&p, seq, sc_slot_error(&p, seq, err, &info), true);
		}
		if (tty && p.next_seq - last_progress >= 1000) {
			last_progress = p.next_seq;
			sc_progress(&p, false, true);
		}
	}
	if (r < 0) {
		if (src->csv == NULL)
			fprintf(stderr, "vigil-score: stdin: %s\n", strerror(errno));
		status = 1;
	}
	pthread_mutex_lock(&p.mtx);
	p.eof = true;
	pthread_cond_broadcast(&p.cv);
	pthread_mutex_unlock(&p.mtx);
	pthread_join(printer, NULL);
	if (!a->quiet)
		sc_progress(&p, true, tty);
	if (p.failed > 0)
		status = 1;
	pthread_cond_destroy(&p.cv);
	pthread_mutex_destroy(&p.mtx);
	free(p.slots);
	return status;
}

/* ---- health ---- */

/* One line per replica; 0 when every replica answers ready. */
static int
sc_health(vigil_client *c, const sc_args *a)
{
	int status = 0;

	for (size_t i = 0; i < vigil_client_nreplicas(c); i++) {
		vigil_client_health  h;
		vigil_client_errinfo info;
		vigil_client_err     err;
		json_t              *o;

		err = vigil_client_replica_health(c, i, &a->callopts, &h, &info);
		if (err != VIGIL_CLIENT_OK) {
			o = sc_error_json(NULL, 0, vigil_client_errname(err), info.message, info.field);
			if (o != NULL)
				json_object_set_new(o, "replica", sc_json_str(vigil_client_replica_url(c, i)));
			sc_print(o);
			status = 1;
			continue;
		}
		o = json_pack("{s:o, s:b, s:o, s:I, s:o, s:o, s:I}",
		    "replica", sc_json_str(vigil_client_replica_url(c, i)), "ready", h.ready,
		    "server_version", sc_json_str(h.server_version), "uptime_s", (json_int_t) h.uptime_s,
		    "rules_version", sc_json_str(h.rules_version), "rules_hash", sc_json_str(h.rules_hash),
		    "features_generation", (json_int_t) h.features_generation);
		sc_print(o);
		if (!h.ready)
			status = 1;
	}
	return status;
}

/* ---- labels ---- */

static int
sc_label(vigil_client *c, const sc_args *a, const char *txn_id)
{
	vigil_client_label_req label = {
		.txn_id = txn_id, .fraud = a->fraud == 1, .card_id = a->card,
		.source = a->source != NULL ? a->source : "cli",
	};
	vigil_client_errinfo info;
	vigil_client_err     err;
	json_t              *o;

	/* Refused here, like the server would, so that the id can be echoed in
	 * the (JSON, UTF-8) error line: bytes outside the id charset are not. */
	if (txn_id[0] == '\0' || strlen(txn_id) > VIGIL_ID_MAX ||
	    !vigil_id_chars_ok(txn_id, strlen(txn_id)))
		return sc_usage_error("label: TXN_ID must be 1..%d printable ASCII characters "
		    "without spaces, quotes, commas or backslashes", VIGIL_ID_MAX);
	if (a->time != NULL) {
		if (vigil_time_parse_rfc3339(a->time, &label.label_time_ms) != VIGIL_OK)
			return sc_usage_error("--time: \"%s\" is not an RFC 3339 time", a->time);
	} else if (a->time_ms != NULL) {
		label.label_time_ms = strtoll(a->time_ms, NULL, 10);
	}
	err = vigil_client_label(c, &label, &a->callopts, &info);
	if (err != VIGIL_CLIENT_OK) {
		sc_print(sc_error_json(txn_id, 0, vigil_client_errname(err), info.message, info.field));
		return 1;
	}
	o = json_pack("{s:s, s:s, s:s}", "txn_id", txn_id, "label", a->fraud == 1 ? "fraud" : "legit",
	    "status", "OK");
	sc_print(o);
	return 0;
}

int
main(int argc, char **argv)
{
	sc_args              a = { 0 };
	sc_source            src = { 0 };
	vigil_client        *c = NULL;
	vigil_client_errinfo info;
	json_t              *obj = NULL;
	const char          *label_txn = NULL;
	int                  first = 0, status;
	bool                 have_flags, health = false;

	status = sc_parse_args(argc, argv, &a, &first);
	if (status != 0)
		goto out;
	have_flags = json_object_size(a.flags) > 0;

	if (first < argc && strcmp(argv[first], "label") == 0) {
		size_t txn_keys = json_object_size(a.flags);

		if (first + 1 >= argc) {
			status = sc_usage_error("label: missing TXN_ID");
			goto out;
		}
		label_txn = argv[first + 1];
		if (first + 2 < argc) {
			status = sc_usage_error("label: unexpected argument \"%s\"", argv[first + 2]);
			goto out;
		}
		if (a.fraud == -1) {
			status = sc_usage_error("label: give --fraud or --legit");
			goto out;
		}
		if (a.time != NULL && a.time_ms != NULL) {
			status = sc_usage_error("label: give --time or --time-ms, not both");
			goto out;
		}
		txn_keys -= json_object_get(a.flags, "card_id") != NULL;
		txn_keys -= json_object_get(a.flags, "event_time") != NULL;
		txn_keys -= json_object_get(a.flags, "event_time_ms") != NULL;
		if (a.json != NULL || a.csv != NULL || txn_keys > 0 || a.callopts.dry_run) {
			status = sc_usage_error("label: transaction flags, --txn, --csv and --dry-run do "
			    "not apply");
			goto out;
		}
	} else if (first < argc && strcmp(argv[first], "health") == 0) {
		if (first + 1 < argc) {
			status = sc_usage_error("health: unexpected argument \"%s\"", argv[first + 1]);
			goto out;
		}
		if (have_flags || a.json != NULL || a.csv != NULL || a.fraud != -1 ||
		    a.source != NULL || a.callopts.dry_run) {
			status = sc_usage_error("health: transaction and label flags do not apply");
			goto out;
		}
		health = true;
	} else if (first < argc && argv[first][0] == '{') {
		status = sc_usage_error("unexpected argument \"%s\": a transaction goes with "
		    "--txn JSON (--json is the output format)", argv[first]);
		goto out;
	} else if (first < argc) {
		status = sc_usage_error("unexpected argument \"%s\"", argv[first]);
		goto out;
	} else if (a.fraud != -1 || a.source != NULL) {
		status = sc_usage_error("--fraud, --legit and --source go with 'label'");
		goto out;
	} else if (a.json != NULL && have_flags) {
		status = sc_usage_error("--txn and transaction flags do not mix");
		goto out;
	} else if (a.csv != NULL && (have_flags || a.json != NULL)) {
		status = sc_usage_error("--csv and %s do not mix", a.json != NULL ? "--txn" :
		    "transaction flags");
		goto out;
	} else if (a.csv != NULL) {
		csv_diag d;

		/* the header is read now: a file that cannot be read is a usage
		 * error, before any connection (nothing was sent) */
		if (csv_reader_open(a.csv, NULL, &src.csv, &d) != VIGIL_OK) {
			char line[640];

			fprintf(stderr, "vigil-score: %s\n", vigil_errinfo_format(&d, line, sizeof line));
			status = VIGIL_EXIT_USAGE;
			goto out;
		}
		if (csv_reader_warning(src.csv) != NULL && !a.quiet)
			fprintf(stderr, "vigil-score: warning: %s\n", csv_reader_warning(src.csv));
	} else if (a.json != NULL && a.json[0] == '@') {
		json_error_t jerr;
		char where[4200];

		obj = vigil_json_load_path(a.json + 1, JSON_REJECT_DUPLICATES, &jerr);
		if (obj == NULL) {
			fprintf(stderr, "vigil-score: --txn %s: %s\n", vigil_json_err_where(a.json + 1,
			    &jerr, where, sizeof where), jerr.text);
			status = VIGIL_EXIT_USAGE;
			goto out;
		}
	} else if (a.json != NULL) {
		json_error_t jerr;
		char where[64];

		obj = json_loads(a.json, JSON_REJECT_DUPLICATES, &jerr);
		if (obj == NULL) {
			fprintf(stderr, "vigil-score: %s: %s\n", vigil_json_err_where("--txn", &jerr,
			    where, sizeof where), jerr.text);
			status = VIGIL_EXIT_USAGE;
			goto out;
		}
	} else if (have_flags) {
		obj = json_incref(a.flags);
	}

	/* a one-shot tool: wait for connections no longer than one attempt */
	a.opts.connect_wait_ms = a.opts.timeout_ms > 0 && a.opts.timeout_ms < 1000 ?
	    a.opts.timeout_ms : 1000;
	if (vigil_client_open(a.servers, a.nservers, &a.opts, &c, &info) != VIGIL_CLIENT_OK) {
		/* EINVAL: a bad or repeated --server; ETRANSPORT: one that nng
		 * refuses (unknown scheme, no port): both bad option values */
		fprintf(stderr, "vigil-score: %s\n", info.message);
		status = info.code == VIGIL_CLIENT_EINVAL || info.code == VIGIL_CLIENT_ETRANSPORT ? 2 : 1;
		goto out;
	}
	if (health)
		status = sc_health(c, &a);
	else if (label_txn != NULL)
		status = sc_label(c, &a, label_txn);
	else if (obj != NULL)
		status = sc_score_one(c, &a, obj);
	else if (src.csv != NULL)
		status = sc_score_stream(c, &a, &src);
	else if ((src.line = malloc(SC_MAX_LINE + 1)) == NULL) {
		fprintf(stderr, "vigil-score: out of memory\n");
		status = 1;
	} else {
		src.in = stdin;
		status = sc_score_stream(c, &a, &src);
	}
out:
	sc_close_bounded(c, status);
	csv_reader_close(src.csv);
	free(src.line);
	json_decref(obj);
	json_decref(a.flags);
	free(a.env_servers);
	return sc_stdout_close_status(status);
}
