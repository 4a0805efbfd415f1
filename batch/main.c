/* SPDX-License-Identifier: MIT */
/*
 * batch/main.c - vigil-rebuild, the command line of the nightly batch job
 * (docs/vigil-rebuild.md): parses options, shows progress on a terminal,
 * prints the summary (text, or JSON with --json) and maps errors to exit
 * codes scripts can trust (common/cli.h, docs/tools.md): 0 done or nothing
 * to do, 1 failure, 2 usage or rule file, 3 another rebuild holds the lock.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app.h"
#include "batch.h"
#include "cli.h"
#include "dump.h"
#include "vigil_config.h"

static const char usage_text[] =
"usage: vigil-rebuild --data DIR [options]\n"
"       vigil-rebuild --data DIR --partition I/N --output FILE [options]\n"
"       vigil-rebuild --data DIR --merge FILE...\n"
"       vigil-rebuild --data DIR --rollback [--generation GEN]\n"
"       vigil-rebuild --data DIR --dump card|merchant|terminal ID [--generation GEN]\n"
"\n"
"Rebuilds vigil's batch feature tables and tuned thresholds from the archive\n"
"window [as-of - window, as-of) and the labels known at as-of, writes them as a\n"
"new generation and makes it current atomically.\n"
"\n"
"  -d, --data DIR        data directory (archive/ and features/ inside)\n"
"      --archive DIR     read this archive instead of DIR/archive; repeat for\n"
"                        several replicas' archives (merged by event time, each\n"
"                        txn_id once); a directory holding no segments but\n"
"                        subdirectories that do stands for those subdirectories\n"
"      --as-of DATE      end of the window, YYYY-MM-DD (00:00 UTC) or RFC 3339;\n"
"                        default: today 00:00 UTC (covers all of yesterday)\n"
"      --window DUR      window length: 90d (default), 36h, 30m, 45s, 1500ms\n"
"  -r, --rules FILE      rule file whose batch-tuned thresholds to tune; without\n"
"                        it the current thresholds carry over unchanged\n"
"  -f, --force           rebuild even if this as-of date is already current, go\n"
"                        back to an as-of older than the current one, or build\n"
"                        an as-of after tomorrow\n"
"      --partition I/N   compute key-hash partition I of N into --output FILE\n"
"  -o, --output FILE     partial file written by --partition\n"
"      --merge           join the partial files given as arguments into a generation\n"
"      --threads N       worker threads (default: online CPUs, at most 8)\n"
"      --keep N          generations to keep (default 3)\n"
"      --no-model        train no model (the new generation has none: rules alone)\n"
"      --train-window DUR  mature days the model trains on (default 28d)\n"
"      --label-maturity DUR  a transaction's label is final after this (default 7d);\n"
"                        younger transactions are not trained on\n"
"      --labelled-only   train on labelled transactions only (default: a mature\n"
"                        transaction without a fraud label counts as legitimate)\n"
"      --train-every DUR carry the current model over until it was trained DUR\n"
"                        before as-of (e.g. 7d; default: train every run)\n"
"      --dump-model      write the current generation's model (XGBoost JSON) to stdout\n"
"      --dump-model-meta write how that model was trained (JSON) to stdout\n"
"      --dump KIND ID    print the card, merchant or terminal ID's profile (JSON)\n"
"      --generation GEN  the generation --dump, --dump-model(-meta) read\n"
"                        (default: the current one); with --rollback: the\n"
"                        generation to make current (default: the one before)\n"
"      --rollback        make the generation before the current one current again\n"
"  -j, --json            print the summary as JSON on stdout\n"
"  -q, --quiet           no progress, no text summary\n"
"  -h, --help            this text\n"
"  -V, --version         version\n"
"\n"
"Environment: when neither OMP_WAIT_POLICY nor GOMP_SPINCOUNT is set, the\n"
"program runs itself again with OMP_WAIT_POLICY=passive: XGBoost's threads\n"
"sleep between parallel regions instead of spinning.\n"
"\n";

static const char *const exit_detail[VIGIL_EXIT_COUNT_] = {
	"built, or nothing to do (as-of already current)",
	"the rebuild failed, the current generation untouched; or it completed and its "
	"summary could not be written (said on standard error)",
	"bad command line or rule file, or a missing input (--data, its archive/, --merge FILE)",
	"another rebuild is running (the lock is held)",
};

#define usage_error(...) vigil_cli_usage_error("vigil-rebuild", __VA_ARGS__)

/* The latest --as-of taken without --force: the end of tomorrow (UTC), so
 * tomorrow's date run by hand today is a night like any other. */
static int64_t
as_of_latest(void)
{
	int64_t now = vigil_now_ms();

	return now - now % VIGIL_MS_PER_DAY + 2 * VIGIL_MS_PER_DAY;
}

/* --archive: the directories read, owned here (freed at exit). */
static char    *g_archives[BATCH_MAX_ARCHIVES];
static uint32_t g_narchives;

static void
archives_free(void)
{
	for (uint32_t i = 0; i < g_narchives; i++)
		free(g_archives[i]);
	g_narchives = 0;
}

static bool
archive_has_segments(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	bool any = false;

	if (d == NULL)
		return false;
	while (!any && (e = readdir(d)) != NULL)
		any = strncmp(e->d_name, "seg-", 4) == 0;
	closedir(d);
	return any;
}

static bool
archive_push(const char *dir)
{
	if (g_narchives == BATCH_MAX_ARCHIVES)
		return false;
	g_archives[g_narchives] = strdup(dir);
	return g_archives[g_narchives++] != NULL;
}

/*
 * --archive DIR: DIR itself when it holds segments (or nothing at all: an
 * archive with no records yet); otherwise each of its subdirectories that
 * holds segments (a shipped location: one subdirectory per replica). 0, or
 * a usage error's exit code after its message.
 */
static int
archive_add(const char *dir)
{
	struct dirent **ents = NULL;
	struct stat st;
	char sub[4096];
	int n, added = 0;

	if (stat(dir, &st) != 0)
		return usage_error("--archive %s: %s", dir, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return usage_error("--archive %s: not a directory", dir);
	if (!archive_has_segments(dir)) {
		n = scandir(dir, &ents, NULL, alphasort);
		for (int i = 0; i < n; i++) {
			if (ents[i]->d_name[0] != '.' &&
			    (size_t)snprintf(sub, sizeof sub, "%s/%s", dir, ents[i]->d_name) <
			    sizeof sub && stat(sub, &st) == 0 && S_ISDIR(st.st_mode) &&
			    archive_has_segments(sub)) {
				if (!archive_push(sub)) {
					n = -2;
					break;
				}
				added++;
			}
		}
		for (int i = 0; i < n; i++)
			free(ents[i]);
		free(ents);
		if (n == -2)
			return usage_error("--archive: more than %d archives", BATCH_MAX_ARCHIVES);
	}
	if (added == 0 && !archive_push(dir))
		return usage_error("--archive: more than %d archives", BATCH_MAX_ARCHIVES);
	return 0;
}

typedef struct cli_progress {
	bool     tty;
	uint64_t t0, last;
} cli_progress;

static void
human(double v, char *buf, size_t n)
{
	if (v >= 1e9)
		snprintf(buf, n, "%.2fG", v / 1e9);
	else if (v >= 1e6)
		snprintf(buf, n, "%.2fM", v / 1e6);
	else if (v >= 1e3)
		snprintf(buf, n, "%.1fk", v / 1e3);
	else
		snprintf(buf, n, "%.0f", v);
}

static void
on_progress(void *arg, uint64_t records, uint64_t done, uint64_t total)
{
	cli_progress *p = arg;
	uint64_t now = vigil_mono_ns();
	double secs, rate;
	char rs[32], rr[32];

	if (!p->tty || now - p->last < 200000000ull)
		return;
	p->last = now;
	secs = (double)(now - p->t0) / 1e9;
	rate = secs > 0 ? (double)records / secs : 0;
	human((double)records, rs, sizeof rs);
	human(rate, rr, sizeof rr);
	if (total > 0 && done > 0 && done <= total) {
		double eta = secs * (double)(total - done) / (double)done;
		fprintf(stderr, "\r  %s records scanned  %s/s  %3.0f%%  ETA %.0fs   ", rs, rr,
		    100.0 * (double)done / (double)total, eta);
	} else {
		fprintf(stderr, "\r  %s records scanned  %s/s   ", rs, rr);
	}
	fflush(stderr);
}

static void
print_summary(const batch_summary *s, FILE *out)
{
	char date[16], rate[32];

	vigil_date_format(s->as_of_ms, date, sizeof date);
	if (s->skipped) {
		fprintf(out, "vigil-rebuild: as-of %s is already built (generation %llu); "
		    "nothing to do (use --force to rebuild)\n", date,
		    (unsigned long long)s->generation);
		return;
	}
	if (s->partial)
		fprintf(out, "vigil-rebuild: partition %u/%u for as-of %s written in %.1f s\n",
		    s->part_index, s->part_count, date, s->duration_s);
	else
		fprintf(out, "vigil-rebuild: generation %llu built for as-of %s "
		    "(window %.4g days) in %.1f s\n", (unsigned long long)s->generation, date,
		    (double)s->window_ms / VIGIL_MS_PER_DAY, s->duration_s);
	human(s->duration_s > 0 ? (double)s->records_read / s->duration_s : 0, rate, sizeof rate);
	fprintf(out, "  records    %llu in the window (%s/s), %llu undecodable, %llu corrupt skipped\n",
	    (unsigned long long)s->records_read, rate, (unsigned long long)s->records_bad,
	    (unsigned long long)s->corrupt_records);
	if (s->archives > 1)
		fprintf(out, "  archives   %u merged by event time, %llu duplicate txn_id(s) dropped\n",
		    s->archives, (unsigned long long)s->duplicates);
	if (s->bad_where[0] != '\0')
		fprintf(out, "  first bad  %s\n", s->bad_where);
	if (s->partial) /* the other partitions' labels are not unmatched */
		fprintf(out, "  labels     %llu known at as-of, %llu used by this partition "
		    "(--merge counts the unmatched), %llu after as-of ignored\n",
		    (unsigned long long)s->labels_read, (unsigned long long)s->labels_used,
		    (unsigned long long)s->labels_future);
	else
		fprintf(out, "  labels     %llu known at as-of, %llu used, %llu unmatched, "
		    "%llu after as-of ignored\n", (unsigned long long)s->labels_read,
		    (unsigned long long)s->labels_used, (unsigned long long)s->labels_unmatched,
		    (unsigned long long)s->labels_future);
	fprintf(out, "  tables     %llu cards (%llu first_seen from the previous generation), "
	    "%llu merchants, %llu terminals\n",
	    (unsigned long long)s->cards, (unsigned long long)s->first_seen_carried,
	    (unsigned long long)s->merchants, (unsigned long long)s->terminals);
	if (s->first_seen_note[0] != '\0')
		fprintf(out, "  first_seen %s\n", s->first_seen_note);
	for (uint32_t i = 0; i < s->nthresholds; i++) {
		const batch_thresh_summary *t = &s->thresholds[i];

		if (t->tuned && isnan(t->old_value)) /* the first value it has */
			fprintf(out, "  threshold  %s (%s): %.6g (new) from %llu samples",
			    t->name, t->kind, t->new_value, (unsigned long long)t->samples);
		else if (t->tuned)
			fprintf(out, "  threshold  %s (%s): %.6g -> %.6g from %llu samples",
			    t->name, t->kind, t->old_value, t->new_value,
			    (unsigned long long)t->samples);
		else
			fprintf(out, "  threshold  %s (%s): fallback %.6g kept: %s", t->name, t->kind,
			    t->new_value, t->why);
		if (t->groups || t->groups_fallback)
			fprintf(out, "; %u groups tuned, %u use the global value", t->groups,
			    t->groups_fallback);
		fputc('\n', out);
	}
	if (s->partial)
		return;
	if (s->model.carried) {
		char d[16];

		vigil_date_format(s->model.trained_as_of_ms, d, sizeof d);
		if (s->model.why_not[0] != '\0') /* this night could not train */
			fprintf(out, "  model      not trained: %s; the current model, trained as of "
			    "%s, carried over from generation %llu", s->model.why_not, d,
			    (unsigned long long)s->model.carried_from);
		else
			fprintf(out, "  model      carried over from generation %llu (trained as of "
			    "%s, --train-every)", (unsigned long long)s->model.carried_from, d);
		fprintf(out, ": %llu rows (%llu frauds); validation AUC %.4f, AP %.4f\n",
		    (unsigned long long)s->model.rows, (unsigned long long)s->model.frauds,
		    s->model.valid_auc, s->model.valid_ap);
	} else if (s->model.trained)
		fprintf(out, "  model      %llu rows (%llu frauds) trained in %.1f s, %u rounds; "
		    "validation %llu rows (%llu frauds): AUC %.4f, AP %.4f\n",
		    (unsigned long long)s->model.rows, (unsigned long long)s->model.frauds,
		    s->model.seconds, s->model.best_round, (unsigned long long)s->model.valid_rows,
		    (unsigned long long)s->model.valid_frauds, s->model.valid_auc, s->model.valid_ap);
	else
		fprintf(out, "  model      none: %s; rules alone decide\n", s->model.why_not);
}

static int
exit_code(vigil_err rv)
{
	return rv == VIGIL_OK ? VIGIL_EXIT_OK : rv == VIGIL_EBUSY ? VIGIL_EXIT_BUSY :
	    VIGIL_EXIT_FAIL;
}

/* A decimal number in 1..max, nothing else (no sign, no wrap past 2^64). */
static bool
parse_count(const char *s, unsigned long long max, unsigned long long *ret)
{
	char *end;
	unsigned long long v;

	if (*s < '1' || *s > '9')
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v > max)
		return false;
	*ret = v;
	return true;
}

/* --dump-model / --dump-model-meta: a blob of the current generation, as is. */
static int
dump_blob(const char *datadir, uint64_t gen, const char *name)
{
	store_gen *g = NULL;
	store_diag diag;
	void *data = NULL;
	size_t len = 0;
	vigil_err rv;

	diag.msg[0] = '\0';
	rv = gen == 0 ? store_gen_open_current(datadir, &g, &diag) :
	    store_gen_open(datadir, gen, &g, &diag);
	if (rv != VIGIL_OK) {
		fprintf(stderr, "vigil-rebuild: %s: %s\n", datadir, rv == VIGIL_ENOTFOUND && gen == 0 ?
		    "no generation yet" : diag.msg[0] ? diag.msg : vigil_strerror(rv));
		return 1;
	}
	rv = store_gen_blob(g, name, &data, &len);
	store_gen_close(g);
	if (rv != VIGIL_OK) {
		fprintf(stderr, "vigil-rebuild: %s: the %s generation has no %s%s\n", datadir,
		    gen == 0 ? "current" : "given", name, rv == VIGIL_ENOTFOUND ? " (no model: see the rebuild summary's why_not)" :
		    "");
		return 1;
	}
	if (fwrite(data, 1, len, stdout) != len || fputc('\n', stdout) == EOF ||
	    fflush(stdout) != 0) {
		fprintf(stderr, "vigil-rebuild: writing %s: %s\n", name, strerror(errno));
		free(data);
		return 1;
	}
	free(data);
	return 0;
}

int
main(int argc, char **argv)
{
	enum { OPT_ROLLBACK = 256, OPT_TO, OPT_NO_MODEL, OPT_TRAIN_WINDOW, OPT_LABEL_MATURITY,
		OPT_LABELLED_ONLY, OPT_DUMP_MODEL, OPT_DUMP_META, OPT_AS_OF, OPT_WINDOW,
		OPT_PARTITION, OPT_MERGE, OPT_THREADS, OPT_KEEP, OPT_DUMP, OPT_TRAIN_EVERY,
		OPT_ARCHIVE };
	/* Short letters only from the shared table (common/cli.h, docs/tools.md). */
	static const struct option longopts[] = {
		VIGIL_CLI_DATA, VIGIL_CLI_RULES, VIGIL_CLI_FORCE, VIGIL_CLI_OUTPUT,
		{ "as-of", required_argument, NULL, OPT_AS_OF },
		{ "window", required_argument, NULL, OPT_WINDOW },
		{ "partition", required_argument, NULL, OPT_PARTITION },
		{ "archive", required_argument, NULL, OPT_ARCHIVE },
		{ "out", required_argument, NULL, 'o' },    /* deprecated: --output */
		{ "merge", no_argument, NULL, OPT_MERGE },
		{ "threads", required_argument, NULL, OPT_THREADS },
		{ "keep", required_argument, NULL, OPT_KEEP },
		{ "rollback", no_argument, NULL, OPT_ROLLBACK },
		{ "no-model", no_argument, NULL, OPT_NO_MODEL },
		{ "dump-model", no_argument, NULL, OPT_DUMP_MODEL },
		{ "dump-model-meta", no_argument, NULL, OPT_DUMP_META },
		{ "dump", required_argument, NULL, OPT_DUMP },
		{ "train-window", required_argument, NULL, OPT_TRAIN_WINDOW },
		{ "label-maturity", required_argument, NULL, OPT_LABEL_MATURITY },
		{ "labelled-only", no_argument, NULL, OPT_LABELLED_ONLY },
		{ "train-every", required_argument, NULL, OPT_TRAIN_EVERY },
		{ "generation", required_argument, NULL, OPT_TO },
		{ "to", required_argument, NULL, OPT_TO },  /* deprecated: --generation */
		VIGIL_CLI_JSON, VIGIL_CLI_QUIET, VIGIL_CLI_HELP, VIGIL_CLI_VERSION,
		{ NULL, 0, NULL, 0 },
	};
	batch_opts opts;
	batch_summary *sum = NULL;
	store_diag diag;
	cli_progress prog = { 0 };
	bool json = false, quiet = false, merge = false, rollback = false, have_part = false;
	bool dump_model = false, dump_meta = false;
	const char *dump = NULL, *dump_kind = NULL;
	const char *build_opt = NULL; /* the last option that only a build reads */
	const char *report_opt = NULL; /* the last of --json, --quiet: a dump ignores them */
	const char *merge_opt = NULL; /* the last option --merge would ignore */
	const char *part_opt = NULL;  /* the last option --partition would ignore */
	const char *mode;
	unsigned long long to = 0, gen = 0, num;
	long ncpu;
	int c, rc;
	vigil_err rv;

	batch_omp_passive(argv); /* first: it may execute the program again */
	batch_opts_default(&opts);
	ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	opts.threads = ncpu < 1 ? 1 : ncpu > 8 ? 8 : (uint32_t)ncpu;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "d:r:fo:jqhV", longopts, NULL)) != -1) {
		/* named in the refusal with a dump or --rollback, which ignore them */
		switch (c) {
		case OPT_ARCHIVE: build_opt = "--archive"; break;
		case OPT_AS_OF: build_opt = "--as-of"; break;
		case OPT_WINDOW: build_opt = "--window"; break;
		case 'r': build_opt = "--rules"; break;
		case 'f': build_opt = "--force"; break;
		case OPT_THREADS: build_opt = "--threads"; break;
		case OPT_KEEP: build_opt = "--keep"; break;
		case OPT_NO_MODEL: build_opt = "--no-model"; break;
		case OPT_TRAIN_WINDOW: build_opt = "--train-window"; break;
		case OPT_LABEL_MATURITY: build_opt = "--label-maturity"; break;
		case OPT_LABELLED_ONLY: build_opt = "--labelled-only"; break;
		case OPT_TRAIN_EVERY: build_opt = "--train-every"; break;
		}
		/* the partial files carry these; a partition makes no generation */
		switch (c) {
		case OPT_AS_OF:
		case OPT_WINDOW:
		case OPT_TRAIN_WINDOW:
		case OPT_LABEL_MATURITY:
		case OPT_LABELLED_ONLY:
			merge_opt = build_opt;
			break;
		case 'f':
		case OPT_KEEP:
			part_opt = build_opt;
			break;
		}
		switch (c) {
		case 'd':
			opts.datadir = optarg;
			break;
		case OPT_ARCHIVE:
			if (g_narchives == 0)
				atexit(archives_free);
			rc = archive_add(optarg);
			if (rc != 0)
				return rc;
			break;
		case OPT_AS_OF:
			if (vigil_date_parse(optarg, &opts.as_of_ms) != VIGIL_OK &&
			    vigil_time_parse_rfc3339(optarg, &opts.as_of_ms) != VIGIL_OK)
				return usage_error("--as-of: '%s' is not YYYY-MM-DD or RFC 3339", optarg);
			break;
		case OPT_WINDOW:
			if (batch_duration_parse(optarg, &opts.window_ms) != VIGIL_OK)
				return usage_error("--window: '%s' is not a duration such as 90d, "
				    "36h or 30m (at most 3660 days)", optarg);
			break;
		case 'r':
			opts.rules_path = optarg;
			break;
		case 'f':
			opts.force = true;
			break;
		case OPT_PARTITION:
			if (batch_partition_parse(optarg, &opts.part_index, &opts.part_count) != VIGIL_OK)
				return usage_error("--partition: '%s' is not I/N with 0 <= I < N <= 4096",
				    optarg);
			have_part = true;
			break;
		case 'o':
			opts.out_path = optarg;
			break;
		case OPT_MERGE:
			merge = true;
			break;
		case OPT_THREADS:
			if (!parse_count(optarg, BATCH_MAX_THREADS, &num))
				return usage_error("--threads: '%s' is not a number in 1..64", optarg);
			opts.threads = (uint32_t)num;
			break;
		case OPT_KEEP:
			if (!parse_count(optarg, 1000, &num))
				return usage_error("--keep: '%s' is not a number in 1..1000", optarg);
			opts.keep = (uint32_t)num;
			break;
		case OPT_ROLLBACK:
			rollback = true;
			break;
		case OPT_NO_MODEL:
			opts.model_off = true;
			break;
		case OPT_TRAIN_WINDOW:
			if (batch_duration_parse(optarg, &opts.train_window_ms) != VIGIL_OK)
				return usage_error("--train-window: '%s' is not a duration (e.g. 28d)",
				    optarg);
			break;
		case OPT_LABEL_MATURITY:
			if (strcmp(optarg, "0") == 0)
				opts.label_maturity_ms = 0;
			else if (batch_duration_parse(optarg, &opts.label_maturity_ms) != VIGIL_OK)
				return usage_error("--label-maturity: '%s' is not a duration (e.g. 7d)",
				    optarg);
			break;
		case OPT_LABELLED_ONLY:
			opts.labelled_only = true;
			break;
		case OPT_TRAIN_EVERY:
			if (batch_duration_parse(optarg, &opts.train_every_ms) != VIGIL_OK)
				return usage_error("--train-every: '%s' is not a duration (e.g. 7d)",
				    optarg);
			break;
		case OPT_DUMP_MODEL:
			dump = APP_MODEL_BLOB;
			dump_model = true;
			break;
		case OPT_DUMP_META:
			dump = APP_MODEL_META_BLOB;
			dump_meta = true;
			break;
		case OPT_DUMP:
			/* a second --dump would silently replace the first */
			if (dump_kind != NULL)
				return usage_error("%s", "--dump given twice: one profile per run");
			dump_kind = optarg;
			break;
		case OPT_TO: /* --generation (and the old --to) */
			if (!parse_count(optarg, 999999999, &gen))
				return usage_error("--generation: '%s' is not a generation number "
				    "(1..999999999)", optarg);
			break;
		case 'j':
			json = true;
			report_opt = "--json";
			break;
		case 'q':
			quiet = true;
			report_opt = "--quiet";
			break;
		case 'h':
			fputs(usage_text, stdout);
			vigil_cli_exit_help(stdout, exit_detail);
			return VIGIL_EXIT_OK;
		case 'V':
			vigil_cli_version(stdout, "vigil-rebuild");
			return VIGIL_EXIT_OK;
		default:
			return vigil_cli_bad_option("vigil-rebuild", argv);
		}
	}
	if (opts.datadir == NULL)
		return usage_error("%s", "--data DIR is required");
	{
		/* a data directory that does not exist is a missing input: nothing
		 * is done (docs/tools.md, 2), rather than a failed mkdir inside it */
		struct stat dst;

		if (stat(opts.datadir, &dst) != 0)
			return usage_error("--data %s: %s", opts.datadir, strerror(errno));
		if (!S_ISDIR(dst.st_mode))
			return usage_error("--data %s: not a directory", opts.datadir);
	}
	/*
	 * One thing per run. A dump only reads, and before, it returned ahead
	 * of these checks: `--rollback --dump card X` printed the card, exited
	 * 0 and did not roll back; of two dumps, the last won silently.
	 */
	if ((dump_kind != NULL) + dump_model + dump_meta + merge + rollback + have_part > 1)
		return usage_error("%s", "--dump, --dump-model, --dump-model-meta, --merge, "
		    "--partition and --rollback exclude each other");
	if (opts.out_path != NULL && build_opt == NULL)
		build_opt = "--output";
	mode = dump_kind != NULL ? "--dump" : dump_model ? "--dump-model" : dump_meta ?
	    "--dump-model-meta" : rollback ? "--rollback" : NULL;
	if (mode != NULL && build_opt != NULL)
		return usage_error("%s does not go with %s", build_opt, mode);
	/* a dump prints its JSON and nothing else, whatever these say;
	 * --rollback reads them (its one line, or JSON) */
	if (mode != NULL && !rollback && report_opt != NULL)
		return usage_error("%s does not go with %s", report_opt, mode);
	/* --merge takes as-of, window and the model's options from the partial
	 * files, and a --partition takes no lock and makes no generation: an
	 * option either would ignore is refused, not silently dropped (a merge
	 * "--as-of" of another night built the files' night and exited 0). */
	if (merge && merge_opt != NULL)
		return usage_error("%s does not go with --merge (the partial files carry it: "
		    "give it to the --partition runs)", merge_opt);
	if (have_part && part_opt != NULL)
		return usage_error("%s does not go with --partition (it writes no generation: "
		    "give it to the --merge)", part_opt);
	if (dump_kind != NULL) {
		if (optind + 1 != argc)
			return usage_error("%s", "--dump KIND needs one ID: --dump card ID");
		return batch_dump_profile(opts.datadir, gen, dump_kind, argv[optind], stdout);
	}
	if (dump != NULL)
		return dump_blob(opts.datadir, gen, dump);
	if (gen != 0 && !rollback)
		return usage_error("%s", "--generation only goes with --dump, --dump-model, "
		    "--dump-model-meta and --rollback");
	to = gen;
	if (!merge && optind < argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	if (g_narchives > 0 && (merge || rollback))
		return usage_error("%s", "--archive goes with a rebuild or --partition, not with "
		    "--merge or --rollback");
	opts.archives = (const char *const *)g_archives;
	opts.narchives = g_narchives;
	if (opts.train_every_ms > 0 && (merge || rollback || have_part))
		return usage_error("%s", "--train-every goes with a single rebuild, not with "
		    "--partition, --merge or --rollback");
	if (have_part && opts.part_count > 1 && opts.out_path == NULL)
		return usage_error("%s", "--partition needs --output FILE");
	if (opts.out_path != NULL && !(have_part && opts.part_count > 1))
		return usage_error("%s", "--output only goes with --partition I/N (N > 1)");
	if (!merge && !rollback && opts.as_of_ms <= opts.window_ms)
		return usage_error("--as-of: the window of %.4g days before it starts before 1970",
		    (double)opts.window_ms / VIGIL_MS_PER_DAY);
	if (!merge && !rollback && !opts.force && opts.as_of_ms > as_of_latest()) {
		/* A generation is current until a later as-of replaces it: one
		 * for a mistyped year refuses every night before it. */
		char want[40], today[40];

		vigil_date_format(opts.as_of_ms, want, sizeof want);
		vigil_date_format(vigil_now_ms(), today, sizeof today);
		return usage_error("--as-of %s is after tomorrow (the clock says %s): its generation "
		    "would refuse every nightly before it; check the date%s", want, today,
		    have_part ? "" : ", or --force");
	}

	if (!rollback && opts.rules_path != NULL) {
		/* A rule file that does not load is a usage error (exit 2) in every
		 * program (docs/tools.md); found before the lock and the archive. */
		rules_prog *check = NULL;
		rules_diags diags;

		memset(&diags, 0, sizeof diags);
		rv = app_rules_load(opts.rules_path, &check, &diags);
		rules_prog_free(check);
		if (rv != VIGIL_OK) {
			if (diags.count > 0)
				rules_diags_print(&diags, NULL, 0, stderr);
			else
				fprintf(stderr, "vigil-rebuild: %s: %s\n", opts.rules_path,
				    vigil_strerror(rv));
			return VIGIL_EXIT_USAGE;
		}
	}

	if (!merge && !rollback && g_narchives == 0) {
		/*
		 * DIR/archive that is not there is a missing input (docs/tools.md,
		 * "missing": 2, as vigil-replay says for the same directory), not a
		 * run that failed; the store reports every error of its own as 1.
		 */
		char adir[4096];
		struct stat ast;

		snprintf(adir, sizeof adir, "%s/archive", opts.datadir);
		if (stat(adir, &ast) != 0 && (errno == ENOENT || errno == ENOTDIR)) {
			fprintf(stderr, "vigil-rebuild: %s: cannot open archive directory: %s\n",
			    adir, strerror(errno));
			return VIGIL_EXIT_USAGE;
		}
	}

	diag.msg[0] = '\0';
	if (rollback) {
		uint64_t from = 0, dest = 0;

		rv = batch_rollback(opts.datadir, to, &from, &dest, &diag);
		if (rv != VIGIL_OK) {
			fprintf(stderr, "vigil-rebuild: rollback failed: %s\n", diag.msg[0] ?
			    diag.msg : vigil_strerror(rv));
			return exit_code(rv);
		}
		if (json)
			printf("{\"rolled_back_from\": %llu, \"current\": %llu}\n",
			    (unsigned long long)from, (unsigned long long)dest);
		else if (!quiet)
			printf("vigil-rebuild: generation %llu is current again (was %llu)\n",
			    (unsigned long long)dest, (unsigned long long)from);
		return 0;
	}

	sum = calloc(1, sizeof *sum);
	if (sum == NULL) {
		fprintf(stderr, "vigil-rebuild: out of memory\n");
		return 1;
	}
	prog.tty = !quiet && isatty(STDERR_FILENO);
	prog.t0 = vigil_mono_ns();
	opts.progress_bytes = on_progress;
	opts.progress_arg = &prog;
	diag.msg[0] = '\0';
	if (merge) {
		uint32_t n = (uint32_t)(argc - optind);

		if (argc - optind < 2 || argc - optind > BATCH_MAX_PARTS) {
			free(sum);
			return usage_error("--merge needs 2..%u partial files as arguments, got %u",
			    BATCH_MAX_PARTS, n);
		}
		for (int i = optind; i < argc; i++) {
			struct stat st;

			errno = 0;
			if (access(argv[i], R_OK) != 0 || stat(argv[i], &st) != 0 ||
			    !S_ISREG(st.st_mode)) { /* docs/tools.md, "missing" */
				fprintf(stderr, "vigil-rebuild: %s: %s\n", argv[i], errno != 0 ?
				    strerror(errno) : "not a regular file");
				free(sum);
				return VIGIL_EXIT_USAGE;
			}
		}
		rv = batch_merge(&opts, (const char *const *)&argv[optind],
		    (uint32_t)(argc - optind), sum, &diag);
	} else {
		rv = batch_rebuild(&opts, sum, &diag);
	}
	if (prog.tty && prog.last != 0)
		fputs("\r\033[K", stderr);
	if (rv != VIGIL_OK) {
		if (rv == VIGIL_EBUSY)
			fprintf(stderr, "vigil-rebuild: another rebuild is running on %s "
			    "(the lock is held): %s\n", opts.datadir, diag.msg[0] ? diag.msg :
			    vigil_strerror(rv));
		else
			fprintf(stderr, "vigil-rebuild: %s\n", diag.msg[0] ? diag.msg :
			    vigil_strerror(rv));
		free(sum);
		return exit_code(rv);
	}
	rc = 0;
	if (sum->warning[0] != '\0')
		fprintf(stderr, "vigil-rebuild: warning: %s\n", sum->warning);
	if (json) {
		json_t *js = batch_summary_json(sum);

		if (js == NULL || json_dumpf(js, stdout, JSON_INDENT(2) | JSON_SORT_KEYS) != 0) {
			fprintf(stderr, "vigil-rebuild: cannot print the summary\n");
			rc = 1;
		} else {
			fputc('\n', stdout);
		}
		json_decref(js);
	} else if (!quiet) {
		print_summary(sum, stdout);
	}
	free(sum);
	errno = 0;
	if (fflush(stdout) != 0 || ferror(stdout)) {
		/* after the commit: what is lost is the summary, not the work */
		fprintf(stderr, "vigil-rebuild: standard output: %s (the summary is lost; the "
		    "rebuild itself completed)\n", errno != 0 ? strerror(errno) : "write error");
		rc = 1;
	}
	return rc;
}
