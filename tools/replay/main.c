/* SPDX-License-Identifier: MIT */
/*
 * tools/replay/main.c - vigil-replay: back-tests rule files on history
 * (docs/vigil-replay.md). Reads the options, loads the rules, opens the
 * input (source.c) and one engine, offline (offline.c) or against vigild
 * replicas (remote.c), runs the stream through it and writes the outputs
 * (results.c, summary.c). replay.h lists what each file does.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "batch.h"
#include "cli.h"
#include "replay.h"
#include "txn_client.h"
#include "vigil_config.h"

/*
 * The rule file used without --rules: the source tree's rules/default.rules
 * when this program runs from its build directory, else the installed one,
 * SYSCONFDIR/vigil/rules/default.rules (where `meson install` puts it;
 * found under a --destdir tree too: common/cli.h). Never relative to the
 * working directory, which made the same command work in one directory and
 * fail in another.
 */
static const char *
rp_default_rules(void)
{
	static char path[PATH_MAX];

	if (vigil_in_build_tree())
		return VIGIL_SOURCE_ROOT "/rules/default.rules";
	return vigil_installed_path(VIGIL_SYSCONFDIR "/vigil/rules/default.rules", path,
	    sizeof path);
}

/* Whether the directory that would hold path can take a new file (errno
 * set when not). */
static bool
rp_dir_writable(const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');

	if (slash == NULL)
		return access(".", W_OK | X_OK) == 0;
	snprintf(dir, sizeof dir, "%.*s", slash == path ? 1 : (int)(slash - path), path);
	return access(dir, W_OK | X_OK) == 0;
}

/* --results - : the JSON lines are standard output, so the text summary is
 * left out there (as with --json) */
static bool
rp_results_stdout(const rp_opts *o)
{
	return o->results != NULL && strcmp(o->results, "-") == 0;
}

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: vigil-replay (--csv FILE | --archive DATADIR [--from T] [--to T]) [OPTIONS]\n"
	    "Replays historical transactions through a rule file and reports what it\n"
	    "would have decided (docs/vigil-replay.md).\n"
	    "\n"
	    "Input:\n"
	    "  --csv FILE           vigil CSV (docs/csv.md); \"-\" = standard input\n"
	    "  --archive DATADIR    the archive of a vigild data directory\n"
	    "  --from T, --to T     archive event-time range [from, to): YYYY-MM-DD or RFC 3339\n"
	    "  --exact              with --archive: evaluate --rules on the values archived\n"
	    "                       with each score (its generation's thresholds and model)\n"
	    "                       and compare with production's archived outcome\n"
	    "Offline mode (default):\n"
	    "  -r, --rules FILE     rule file (default: %s)\n"
	    "  --compare FILE       also evaluate FILE on the same stream and compare\n"
	    "  --nightly            rebuild batch features at each UTC midnight (needs labels\n"
	    "                       in the input to matter); uses a temporary data directory\n"
	    "  --work DIR           data directory for --nightly (kept; must be new or hold\n"
	    "                       no archive)\n"
	    "  --keep-work          keep the temporary data directory (with --nightly)\n"
	    "Server mode:\n"
	    "  -s, --server URL     send to vigild at URL (repeatable: replicas)\n"
	    "  --tls-ca FILE        with tls+tcp:// URLs: the CA the server's certificate is\n"
	    "                       checked against (required for them)\n"
	    "  --tls-cert FILE, --tls-key FILE  this client's certificate and key (when\n"
	    "                       vigild requires client certificates)\n"
	    "  --tls-server-name NAME\n"
	    "                       the name the server's certificate must carry\n"
	    "  --rate N             N transactions per second in total\n"
	    "  --speed X            X times the original pace of the event times\n"
	    "                       (neither: as fast as possible)\n"
	    "  --concurrency N      parallel senders, each card on one sender (default 1;\n"
	    "                       exact agreement with offline mode needs 1)\n"
	    "  --nightly            run vigil-rebuild --data DIR --as-of DAY between days\n"
	    "  -d, --data DIR       the server's data directory (for --nightly)\n"
	    "  --rebuild PROGRAM    vigil-rebuild to run (default: from the build tree or PATH)\n"
	    "Labels:\n"
	    "  --label-delay DUR    when a label is known if its row has no label_time\n"
	    "                       (default 7d; e.g. 36h, 30m)\n"
	    "  --force-label-delay  use --label-delay for every row, ignoring label_time\n"
	    "  --fraud-labels-only  send only fraud (1) labels, not legit (0) ones; thresholds\n"
	    "                       tuned for precision then see no false positives\n"
	    "  --assume-legit       count rows without a label as legitimate in the measures\n"
	    "                       (the usual convention for archives: no chargeback = legit)\n"
	    "Output:\n"
	    "  --results FILE       JSON lines: txn_id, score, decision, hits (\"-\": standard\n"
	    "                       output, without the text summary)\n"
	    "  -j, --json           print the summary as JSON on standard output (not text)\n"
	    "  --summary FILE       write the JSON summary to FILE (\"-\": as --json)\n"
	    "  --report FILE.html   self-contained HTML report with plots\n"
	    "  --top-k N            cards per day for card precision (default 100)\n"
	    "  --measure-from T     measure only rows from T on (all are scored; e.g. the\n"
	    "                       days after the first model): YYYY-MM-DD or RFC 3339\n"
	    "Model (--nightly; in server mode passed to vigil-rebuild):\n"
	    "  --no-model           the nightly rebuilds train no model: rules alone\n"
	    "  --train-every DUR    retrain the model every DUR (default 1d); the nights\n"
	    "                       between carry it over (features, thresholds nightly)\n"
	    "  --rebuild-threads N  threads of each nightly rebuild (default: online CPUs,\n"
	    "                       at most 8); the tables and the model do not depend on it\n"
	    "Common:\n"
	    "  -q, --quiet          no progress, no text summary on standard output\n"
	    "  -h, --help           this text\n"
	    "  -V, --version        print the version\n"
	    "\n"
	    "Environment: when neither OMP_WAIT_POLICY nor GOMP_SPINCOUNT is set, the\n"
	    "program runs itself again with OMP_WAIT_POLICY=passive: XGBoost's threads\n"
	    "sleep between parallel regions instead of spinning.\n"
	    "\n", rp_default_rules());
	vigil_cli_exit_help(f, (const char *const[]){ "",
	    "I/O or server errors, rows the server failed, or bad rows skipped",
	    "bad command line or rule file, an input that cannot be opened, or a CSV without a "
	    "required column",
	    NULL });
}

static int
usage_error(const char *msg, const char *arg)
{
	if (arg == NULL)
		return vigil_cli_usage_error("vigil-replay", "%s", msg);
	return vigil_cli_usage_error("vigil-replay", "%s \"%s\"", msg, arg);
}

static bool
rp_parse_time(const char *s, int64_t *ret)
{
	return vigil_date_parse(s, ret) == VIGIL_OK || vigil_time_parse_rfc3339(s, ret) == VIGIL_OK;
}

enum {
	OPT_CSV = 256, OPT_ARCHIVE, OPT_FROM, OPT_TO, OPT_RULES, OPT_COMPARE, OPT_NIGHTLY,
	OPT_WORK, OPT_KEEP, OPT_SERVER, OPT_RATE, OPT_SPEED, OPT_CONC, OPT_DATA, OPT_REBUILD,
	OPT_DELAY, OPT_FORCE_DELAY, OPT_LEGIT, OPT_ASSUME_LEGIT, OPT_RESULTS, OPT_JSON, OPT_REPORT, OPT_TOPK,
	OPT_TLS_CERT, OPT_TLS_KEY, OPT_TLS_CA, OPT_TLS_NAME,
	OPT_NO_MODEL, OPT_MEASURE_FROM, OPT_SUMMARY, OPT_TRAIN_EVERY, OPT_EXACT,
	OPT_REBUILD_THREADS,
};

static int
rp_parse_args(int argc, char **argv, rp_opts *o)
{
	static const struct option longopts[] = {
		{ "csv", required_argument, NULL, OPT_CSV },
		{ "archive", required_argument, NULL, OPT_ARCHIVE },
		{ "from", required_argument, NULL, OPT_FROM },
		{ "to", required_argument, NULL, OPT_TO },
		VIGIL_CLI_RULES,
		{ "compare", required_argument, NULL, OPT_COMPARE },
		{ "nightly", no_argument, NULL, OPT_NIGHTLY },
		{ "exact", no_argument, NULL, OPT_EXACT },
		{ "work", required_argument, NULL, OPT_WORK },
		{ "keep-work", no_argument, NULL, OPT_KEEP },
		VIGIL_CLI_SERVER,
		{ "rate", required_argument, NULL, OPT_RATE },
		{ "speed", required_argument, NULL, OPT_SPEED },
		{ "concurrency", required_argument, NULL, OPT_CONC },
		VIGIL_CLI_DATA,
		{ "rebuild", required_argument, NULL, OPT_REBUILD },
		{ "label-delay", required_argument, NULL, OPT_DELAY },
		{ "fraud-labels-only", no_argument, NULL, OPT_LEGIT },
		{ "force-label-delay", no_argument, NULL, OPT_FORCE_DELAY },
		{ "assume-legit", no_argument, NULL, OPT_ASSUME_LEGIT },
		{ "results", required_argument, NULL, OPT_RESULTS },
		VIGIL_CLI_JSON,
		{ "summary", required_argument, NULL, OPT_SUMMARY },
		{ "report", required_argument, NULL, OPT_REPORT },
		{ "top-k", required_argument, NULL, OPT_TOPK },
		{ "tls-cert", required_argument, NULL, OPT_TLS_CERT },
		{ "tls-key", required_argument, NULL, OPT_TLS_KEY },
		{ "tls-ca", required_argument, NULL, OPT_TLS_CA },
		{ "tls-server-name", required_argument, NULL, OPT_TLS_NAME },
		{ "no-model", no_argument, NULL, OPT_NO_MODEL },
		{ "rebuild-threads", required_argument, NULL, OPT_REBUILD_THREADS },
		{ "train-every", required_argument, NULL, OPT_TRAIN_EVERY },
		{ "measure-from", required_argument, NULL, OPT_MEASURE_FROM },
		VIGIL_CLI_QUIET, VIGIL_CLI_HELP, VIGIL_CLI_VERSION,
		{ NULL, 0, NULL, 0 },
	};
	int opt;
	const char *tls, *from_arg = NULL, *to_arg = NULL, *mfrom_arg = NULL;
	char *end;

	o->from_ms = INT64_MIN;
	o->to_ms = INT64_MAX;
	o->measure_from_ms = INT64_MIN;
	o->concurrency = 1;
	o->label_delay_ms = 7 * VIGIL_MS_PER_DAY;
	o->train_every_ms = VIGIL_MS_PER_DAY;
	{
		/* as vigil-rebuild's --threads: the rebuild's tables and model
		 * are the same at any count (docs/vigil-rebuild.md) */
		long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

		o->rebuild_threads = ncpu < 1 ? 1 : ncpu > 8 ? 8 : (uint32_t)ncpu;
	}
	o->topk = 100;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "r:s:d:jqhV", longopts, NULL)) != -1) {
		switch (opt) {
		case OPT_CSV: o->csv = optarg; break;
		case OPT_ARCHIVE: o->archive = optarg; break;
		case OPT_FROM:
			if (!rp_parse_time(optarg, &o->from_ms))
				return usage_error("--from: not YYYY-MM-DD or RFC 3339:", optarg);
			from_arg = optarg;
			break;
		case OPT_TO:
			if (!rp_parse_time(optarg, &o->to_ms))
				return usage_error("--to: not YYYY-MM-DD or RFC 3339:", optarg);
			to_arg = optarg;
			break;
		case 'r': o->rules = optarg; break;
		case OPT_COMPARE: o->compare = optarg; break;
		case OPT_NIGHTLY: o->nightly = true; break;
		case OPT_EXACT: o->exact = true; break;
		case OPT_WORK: o->work = optarg; break;
		case OPT_KEEP: o->keep_work = true; break;
		case 's':
			if (!vigil_cli_url_ok(optarg))
				return vigil_cli_usage_error("vigil-replay", "--server: \"%s\" is not a "
				    "URL: write " VIGIL_CLI_URL_FORMS, optarg);
			if (o->nservers == RP_MAX_SERVERS)
				return usage_error("--server: at most 64 replicas", NULL);
			o->servers[o->nservers++] = optarg;
			break;
		case OPT_RATE:
			errno = 0;
			o->rate = strtod(optarg, &end);
			if (*end != '\0' || errno != 0 || !(o->rate > 0 && o->rate <= 1e8))
				return usage_error("--rate: not a number in (0, 1e8]:", optarg);
			break;
		case OPT_SPEED:
			errno = 0;
			o->speed = strtod(optarg, &end);
			if (*end != '\0' || errno != 0 || !(o->speed > 0 && o->speed <= 1e9))
				return usage_error("--speed: not a number in (0, 1e9]:", optarg);
			break;
		case OPT_CONC: {
			unsigned long v;
			errno = 0;
			v = strtoul(optarg, &end, 10);
			if (*optarg == '-' || *end != '\0' || errno != 0 || v < 1 || v > RP_MAX_CONCURRENCY)
				return usage_error("--concurrency: not an integer in 1..256:", optarg);
			o->concurrency = (uint32_t)v;
			break;
		}
		case 'd': o->data = optarg; break;
		case OPT_REBUILD: o->rebuild = optarg; break;
		case OPT_DELAY:
			if (batch_duration_parse(optarg, &o->label_delay_ms) != VIGIL_OK)
				return usage_error("--label-delay: not a duration such as 7d, 36h, 30m:",
				    optarg);
			break;
		case OPT_LEGIT: o->fraud_labels_only = true; break;
		case OPT_FORCE_DELAY: o->force_label_delay = true; break;
		case OPT_ASSUME_LEGIT: o->assume_legit = true; break;
		case OPT_NO_MODEL: o->no_model = true; break;
		case OPT_REBUILD_THREADS: {
			unsigned long n;

			errno = 0;
			n = strtoul(optarg, &end, 10);
			if (errno != 0 || end == optarg || *end != '\0' || optarg[0] == '-' || n < 1 ||
			    n > BATCH_MAX_THREADS)
				return usage_error("--rebuild-threads: not an integer in 1..64:", optarg);
			o->rebuild_threads = (uint32_t)n;
			o->rebuild_threads_set = true;
			break;
		}
		case OPT_TRAIN_EVERY:
			if (batch_duration_parse(optarg, &o->train_every_ms) != VIGIL_OK)
				return usage_error("--train-every: not a duration such as 7d, 36h:",
				    optarg);
			o->train_every = optarg;
			break;
		case OPT_MEASURE_FROM:
			if (!rp_parse_time(optarg, &o->measure_from_ms))
				return usage_error("--measure-from: not YYYY-MM-DD or RFC 3339:", optarg);
			mfrom_arg = optarg;
			break;
		case OPT_RESULTS: o->results = optarg; break;
		case 'j': o->json_stdout = true; break;
		case OPT_SUMMARY:
			if (strcmp(optarg, "-") == 0)
				o->json_stdout = true;  /* as --json */
			else
				o->json = optarg;
			break;
		case OPT_REPORT: o->report = optarg; break;
		case OPT_TLS_CERT: o->tls_cert = optarg; break;
		case OPT_TLS_KEY: o->tls_key = optarg; break;
		case OPT_TLS_CA: o->tls_ca = optarg; break;
		case OPT_TLS_NAME: o->tls_server_name = optarg; break;
		case OPT_TOPK: {
			unsigned long v;
			errno = 0;
			v = strtoul(optarg, &end, 10);
			if (*optarg == '-' || *end != '\0' || errno != 0 || v < 1 || v > 1000000)
				return usage_error("--top-k: not an integer in 1..1000000:", optarg);
			o->topk = (uint32_t)v;
			break;
		}
		case 'q': o->quiet = true; break;
		case 'h': usage(stdout); exit(0);
		case 'V': vigil_cli_version(stdout, "vigil-replay"); exit(0);
		default: return vigil_cli_bad_option("vigil-replay", argv);
		}
	}
	if (rp_results_stdout(o) && o->json_stdout)
		return usage_error("--results - and the JSON summary cannot both go to standard output",
		    NULL);
	if (optind < argc && o->json_stdout)
		return usage_error("unexpected argument: --json prints the summary on standard "
		    "output and takes no file; --summary FILE writes it to a file:", argv[optind]);
	if (optind < argc)
		return usage_error("unexpected argument:", argv[optind]);
	if ((o->csv == NULL) == (o->archive == NULL))
		return usage_error("give exactly one of --csv FILE or --archive DATADIR", NULL);
	if ((o->from_ms != INT64_MIN || o->to_ms != INT64_MAX) && o->archive == NULL)
		return usage_error("--from/--to go with --archive", NULL);
	/* an empty range replayed nothing and said nothing of it */
	if (from_arg != NULL && to_arg != NULL && o->from_ms >= o->to_ms)
		return vigil_cli_usage_error("vigil-replay", "--from %s is not before --to %s: the "
		    "range [from, to) is empty", from_arg, to_arg);
	if (mfrom_arg != NULL && to_arg != NULL && o->measure_from_ms >= o->to_ms)
		return vigil_cli_usage_error("vigil-replay", "--measure-from %s is not before --to %s: "
		    "nothing would be measured", mfrom_arg, to_arg);
	if (o->rate > 0 && o->speed > 0)
		return usage_error("--rate and --speed exclude each other", NULL);
	if (o->nservers == 0 && (o->rate > 0 || o->speed > 0 || o->concurrency != 1 ||
	    o->data != NULL || o->rebuild != NULL))
		return usage_error("--rate, --speed, --concurrency, --data and --rebuild need --server",
		    NULL);
	if (o->nservers > 0 && o->compare != NULL)
		return usage_error("--compare works in offline mode only (no --server)", NULL);
	if (o->nservers > 0 && (o->work != NULL || o->keep_work))
		return usage_error("--work and --keep-work are for offline --nightly", NULL);
	if (o->nservers > 0 && o->nightly && o->data == NULL)
		return usage_error("--nightly in server mode needs --data DIR (the server's)", NULL);
	/* flags that only a nightly rebuild or a server connection reads: were
	 * accepted and ignored without them (--work DIR was never made) */
	if (!o->nightly && (o->work != NULL || o->keep_work || o->no_model || o->data != NULL ||
	    o->rebuild != NULL))
		return vigil_cli_usage_error("vigil-replay", "%s goes with --nightly",
		    o->work != NULL ? "--work" : o->keep_work ? "--keep-work" : o->no_model ?
		    "--no-model" : o->data != NULL ? "--data" : "--rebuild");
	if (o->nservers == 0 && (o->tls_ca != NULL || o->tls_cert != NULL || o->tls_key != NULL ||
	    o->tls_server_name != NULL))
		return vigil_cli_usage_error("vigil-replay", "%s goes with --server",
		    o->tls_ca != NULL ? "--tls-ca" : o->tls_cert != NULL ? "--tls-cert" :
		    o->tls_key != NULL ? "--tls-key" : "--tls-server-name");
	if (o->exact && (o->archive == NULL || o->nservers > 0 || o->nightly || o->compare != NULL ||
	    o->work != NULL || o->keep_work || o->no_model))
		return usage_error("--exact goes with --archive in offline mode, without --nightly, "
		    "--compare, --work or --no-model (production's outcome is the comparison)", NULL);
	if (o->train_every != NULL && !o->nightly)
		return usage_error("--train-every goes with --nightly", NULL);
	if (o->rebuild_threads_set && !o->nightly)
		return usage_error("--rebuild-threads goes with --nightly", NULL);
	if (o->tls_ca == NULL && (tls = vigil_tools_url_tls(o->servers, o->nservers)) != NULL)
		return vigil_cli_usage_error("vigil-replay", "%s: a tls+tcp:// URL needs "
		    "--tls-ca FILE", tls);
	if (o->nservers == 0 && o->rules == NULL)
		o->rules = rp_default_rules();
	o->progress = !o->quiet && isatty(STDERR_FILENO);
	return 0;
}

static vigil_err
rp_load_rules(const char *path, rules_prog **ret)
{
	rules_diags diags;
	vigil_err rv;

	memset(&diags, 0, sizeof diags);
	rv = app_rules_load(path, ret, &diags);
	if (rv != VIGIL_OK) {
		if (diags.count > 0)
			rules_diags_print(&diags, NULL, 0, stderr);
		else
			fprintf(stderr, "vigil-replay: %s: %s\n", path, vigil_strerror(rv));
	}
	return rv;
}

int
main(int argc, char **argv)
{
	rp *r;
	int status = 1, prc;
	vigil_err rv;
	double secs;

	batch_omp_passive(argv); /* first: it may execute the program again */
	rp_heap_setup();
	r = calloc(1, sizeof *r);
	if (r == NULL) {
		fprintf(stderr, "vigil-replay: out of memory\n");
		return 1;
	}
	pthread_mutex_init(&r->names.mu, NULL);
	rp_labels_init(r);
	r->day = INT64_MIN;
	r->first_event = INT64_MIN;
	prc = rp_parse_args(argc, argv, &r->o);
	if (prc != 0) {
		status = prc;
		goto out;
	}
	signal(SIGPIPE, SIG_IGN);
	/* A rule file that does not load is a usage error in every program
	 * (docs/tools.md): nothing was replayed. */
	if (r->o.rules != NULL && rp_load_rules(r->o.rules, &r->prog) != VIGIL_OK) {
		status = VIGIL_EXIT_USAGE;
		goto out;
	}
	if (r->o.compare != NULL && rp_load_rules(r->o.compare, &r->prog2) != VIGIL_OK) {
		status = VIGIL_EXIT_USAGE;
		goto out;
	}
	if (r->o.nservers > 0 && r->prog != NULL) {
		/* hits come back by name: index them like the rule file */
		for (uint32_t i = 0; i < rules_prog_nrules(r->prog); i++) {
			rules_rule_info info;
			rules_prog_rule(r->prog, i, &info);
			rp_names_index(&r->names, info.name, info.points);
		}
	}
	/* An input that cannot be opened, or a CSV without a required column,
	 * is "fix your input": nothing was replayed (docs/tools.md, 2). */
	if (rp_source_open(&r->src, &r->o) != VIGIL_OK) {
		status = VIGIL_EXIT_USAGE;
		goto out;
	}
	if (rp_results_open(r) != VIGIL_OK)
		goto out;
	/* --summary FILE is written at the end: a path that cannot be
	 * written fails now, not after the run */
	if (r->o.json != NULL && access(r->o.json, W_OK) != 0 &&
	    (errno != ENOENT || !rp_dir_writable(r->o.json))) {
		fprintf(stderr, "vigil-replay: --summary %s: %s\n", r->o.json, strerror(errno));
		goto out;
	}
	if (r->o.nservers > 0) {
		/* a bad URL or a TLS file that cannot be read or parsed is
		 * fix-your-input, as in vigil-score; a server not reached is 1 */
		rv = rp_server_open(r);
		if (rv == VIGIL_EINVAL)
			status = VIGIL_EXIT_USAGE;
		if (rv != VIGIL_OK)
			goto out;
	} else if (r->o.exact) {
		/* production's outcome (m) and the file's (m2), the file's rules */
		if (rp_exact_open(r) != VIGIL_OK || rp_metrics_new(r, r->prog, &r->m) != VIGIL_OK ||
		    rp_metrics_new(r, r->prog, &r->m2) != VIGIL_OK) {
			fprintf(stderr, "vigil-replay: out of memory\n");
			goto out;
		}
	} else {
		if (rp_offline_open(r) != VIGIL_OK)
			goto out;
		if (rp_metrics_new(r, r->prog, &r->m) != VIGIL_OK ||
		    (r->prog2 != NULL && rp_metrics_new(r, r->prog2, &r->m2) != VIGIL_OK)) {
			fprintf(stderr, "vigil-replay: out of memory\n");
			goto out;
		}
	}
	r->t_start_ns = vigil_mono_ns();
	if (r->o.nservers > 0) {
		if (rp_metrics_server(r, &r->m) != VIGIL_OK) {
			fprintf(stderr, "vigil-replay: out of memory\n");
			goto out;
		}
		rv = rp_run_server(r);
		if (rv == VIGIL_OK)
			rv = metrics_set_rules(r->m, r->names.n, (const char *const *)r->names.names);
	} else if (r->o.exact) {
		rv = rp_run_exact(r);
	} else {
		rv = rp_run_offline(r);
	}
	secs = (double)(vigil_mono_ns() - r->t_start_ns) / 1e9;
	rp_progress(r, NULL, true);
	if (rv != VIGIL_OK)
		goto out;
	if (metrics_finish(r->m) != VIGIL_OK || (r->m2 != NULL && metrics_finish(r->m2) != VIGIL_OK)) {
		fprintf(stderr, "vigil-replay: out of memory\n");
		goto out;
	}
	if (rp_results_close(r) != VIGIL_OK)
		goto out;
	if (!r->o.quiet && !r->o.json_stdout && !rp_results_stdout(&r->o))
		rp_summary_print(r, secs);
	if (r->o.json != NULL && rp_summary_write_json(r, secs, r->o.json) != VIGIL_OK)
		goto out;
	if (r->o.json_stdout && rp_summary_write_json(r, secs, "-") != VIGIL_OK)
		goto out;
	if (r->o.report != NULL && rp_report_write(r, secs) != VIGIL_OK)
		goto out;
	/* rows refused and skipped (bad rows, damaged archive records, txn_ids
	 * reused for another transaction), labels a server refused or did not
	 * answer: the run finished, the input had faults (docs/tools.md, 1), as
	 * for requests the server refused */
	status = r->failed > 0 || r->not_sent > 0 || r->refused > 0 || r->src.bad > 0 ||
	    r->src.corrupt > 0 || r->conflicts > 0 || r->labels_refused > 0 ||
	    r->labels_failed > 0 ? VIGIL_EXIT_FAIL : VIGIL_EXIT_OK;
out:
	if (r->results != NULL && r->results != stdout)
		fclose(r->results);
	rp_source_close(&r->src);
	vigil_client_close(r->client);
	rp_offline_close(r);
	rp_exact_close(r);
	json_decref(r->changes);
	rules_tvals_free(r->tv);
	rules_tvals_free(r->tv2);
	if (r->ar != NULL)
		app_rules_free(r->ar); /* and prog */
	else
		rules_prog_free(r->prog);
	rules_prog_free(r->prog2);
	app_model_free(r->model);
	json_decref(r->nights);
	metrics_free(r->m);
	metrics_free(r->m2);
	report_data_free(r->rd);
	rp_labels_fini(r);
	for (uint32_t i = 0; i < r->names.n; i++)
		free(r->names.names[i]);
	pthread_mutex_destroy(&r->names.mu);
	free(r);
	return vigil_cli_stdout_status("vigil-replay", status);
}
