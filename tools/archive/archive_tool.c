/* SPDX-License-Identifier: MIT */
/*
 * tools/archive/archive_tool.c - vigil-archive: operators' view of an archive
 * directory or of one segment file (docs/vigil-archive.md):
 *   verify  read everything, check every CRC and decode every payload;
 *   dump    records as JSON lines (optionally an event-time range);
 *   stats   one line per segment from its index (or a scan), and totals;
 * verify and stats print JSON instead with --json.
 * Exit status (common/cli.h, docs/tools.md): 0 ok, 1 damage found (corrupt
 * bytes or undecodable payloads) or an I/O error, 2 usage error or a PATH
 * that does not exist or is not an archive.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "archive.h"
#include "segment.h"
#include "cli.h"
#include "vigil_json.h"

/* One failure code for damage and for an I/O error (docs/tools.md): the
 * one-line message on stderr tells which. */
#define EXIT_DAMAGED VIGIL_EXIT_FAIL
#define EXIT_USAGE   VIGIL_EXIT_USAGE
#define EXIT_ERROR   VIGIL_EXIT_FAIL
#define MAX_ERROR_LINES 100 /* per PATH; beyond that only counted */

/* A PATH that does not exist is "fix your input": nothing was read
 * (docs/tools.md, 2), as a missing input file in every program. */
static int
open_fail_code(vigil_err rv)
{
	return rv == VIGIL_ENOTFOUND ? EXIT_USAGE : EXIT_ERROR;
}

static const char *prog = "vigil-archive";

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: vigil-archive verify [-q | --quiet] [-j | --json] PATH...\n"
	    "       vigil-archive dump [--from TIME] [--to TIME] PATH\n"
	    "       vigil-archive stats [-j | --json] PATH\n"
	    "       vigil-archive [COMMAND] -h | --help\n"
	    "       vigil-archive -V | --version\n"
	    "\n"
	    "PATH is an archive directory (<datadir>/archive: seg-* files, JOURNAL or LOCK)\n"
	    "or one segment file (seg-*.log or seg-*.log.zst).\n"
	    "\n"
	    "  verify  read every record, check its CRC32C and decode its payload; report\n"
	    "          each corrupt stretch as FILE:OFFSET: WHAT (N bytes skipped)\n"
	    "  dump    print records as JSON lines (one object per record)\n"
	    "  stats   per segment: form, state, records, sequence and event-time range,\n"
	    "          uncompressed bytes and bytes on disk\n"
	    "\n"
	    "  --from TIME, --to TIME  event-time range [from, to), from before to:\n"
	    "                          YYYY-MM-DD (UTC), RFC 3339 or Unix milliseconds\n"
	    "  -q, --quiet             verify: no progress line on a terminal (the summary and\n"
	    "                          the damage lines are still printed)\n"
	    "  -j, --json              verify: one JSON object per PATH on stdout instead of\n"
	    "                          the summary line; stats: one JSON object, the segments\n"
	    "                          and the total\n"
	    "  -h, --help              this text\n"
	    "  -V, --version           print the version\n"
	    "\n");
	vigil_cli_exit_help(f, (const char *const[]){ "no damage",
	    "damage found, or an I/O error (the message says which)",
	    "bad command line, or a PATH that does not exist or is no archive", NULL });
}

static bool
is_dir(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* A date, RFC 3339, or Unix milliseconds: digits only, so never before
 * 1970 (docs/vigil-archive.md); "-1" or "+5" is not a time. */
static int
parse_time(const char *s, int64_t *ret)
{
	char *end;
	long long v;

	if (vigil_date_parse(s, ret) == VIGIL_OK || vigil_time_parse_rfc3339(s, ret) == VIGIL_OK)
		return 0;
	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno == 0 && *end == '\0') {
		*ret = v;
		return 0;
	}
	return -1;
}

/*
 * Whether dir looks like an archive directory, else why not in d (the
 * caller exits 2). vigild's store_archive_open leaves LOCK there at once,
 * JOURNAL unless fsync is "always", and seg-* files from the first record;
 * shipped copies hold the seg-* files. A directory with none of them (the
 * data directory, /etc) would read as an empty, healthy archive: a wrong
 * path in a health check would pass. features/ has a LOCK too, but also
 * its generations.
 */
/* Whether dir/archive is a directory (dir a vigild data directory). */
static bool
data_dir_archive(const char *dir)
{
	char sub[PATH_MAX];
	struct stat st;
	int n = snprintf(sub, sizeof sub, "%s/archive", dir);

	return n > 0 && (size_t)n < sizeof sub && stat(sub, &st) == 0 && S_ISDIR(st.st_mode);
}

/* A seg-* name the archive's reader lists (or a temporary file of its
 * writer's): seg-YYYYMMDD-<20 digits> and a known suffix. */
static bool
seg_name_ok(const char *n)
{
	static const char *const sfx[] = { ".log", ".log.zst", ".idx", ".log.zst.tmp", ".idx.tmp" };

	if (strlen(n) < STORE_SEG_BASE_LEN || strspn(n + 4, "0123456789") != 8 || n[12] != '-' ||
	    strspn(n + 13, "0123456789") != 20)
		return false;
	for (size_t i = 0; i < sizeof sfx / sizeof sfx[0]; i++)
		if (strcmp(n + STORE_SEG_BASE_LEN, sfx[i]) == 0)
			return true;
	return false;
}

static bool
archive_dir_check(const char *dir, store_diag *d)
{
	DIR *dp = opendir(dir);
	struct dirent *e;
	bool marked = false, gens = false;

	if (dp == NULL)
		return true; /* the reader says why it cannot open it */
	while ((e = readdir(dp)) != NULL) {
		if (strncmp(e->d_name, "seg-", 4) == 0 && !seg_name_ok(e->d_name))
			/* a segment renamed by hand would hide its records: say so */
			fprintf(stderr, "vigil-archive: warning: %s/%s: not a segment file name "
			    "(seg-YYYYMMDD-<20 digits>.log, .log.zst or .idx): not read\n", dir,
			    e->d_name);
		if (strncmp(e->d_name, "seg-", 4) == 0 || strcmp(e->d_name, "JOURNAL") == 0 ||
		    strcmp(e->d_name, "LOCK") == 0)
			marked = true;
		else if (strncmp(e->d_name, "gen-", 4) == 0 || strcmp(e->d_name, "CURRENT") == 0)
			gens = true;
	}
	closedir(dp);
	if (gens)
		store_diag_at(d, dir, VIGIL_NOPOS, NULL, "not an archive directory (it holds "
		    "feature generations)");
	else if (!marked && data_dir_archive(dir))
		/* the data directory every other program takes: say where its archive is */
		store_diag_at(d, dir, VIGIL_NOPOS, NULL, "not an archive directory (a data "
		    "directory? its archive is %s/archive)", dir);
	else if (!marked)
		store_diag_at(d, dir, VIGIL_NOPOS, NULL, "not an archive directory (no seg-* "
		    "file, no JOURNAL, no LOCK)");
	return marked && !gens;
}

typedef struct run {
	bool        progress;
	const char *path; /* the PATH being read */
	bool        dir;  /* it is a directory: its segments are named inside it */
	uint64_t    records, corrupt, corrupt_bytes, undecodable, printed;
	/* how far it was read: the segment last read in, and the end of the
	 * last record or corrupt stretch in it (where a read error stopped) */
	char        seg[NAME_MAX + 1];
	uint64_t    seg_end;
} run;

/* Reading of r's PATH reached segment's byte end. */
static void
run_mark(run *r, const char *segment, uint64_t end)
{
	if (strcmp(r->seg, segment) != 0) {
		snprintf(r->seg, sizeof r->seg, "%s", segment);
		r->seg_end = end;
	} else if (end > r->seg_end) {
		r->seg_end = end;
	}
}

/* rec, just read from rd (st: rd's stats before it, updated): reading of
 * r's PATH reached the end of its frame, header and payload. */
static void
run_mark_record(run *r, store_reader *rd, const store_record *rec, store_reader_stats *st)
{
	uint64_t read_before = st->bytes;

	store_reader_get_stats(rd, st);
	run_mark(r, rec->segment, rec->offset + (st->bytes - read_before));
}

/* The place of segment (a file name) as a path to open (docs/tools.md,
 * FILE:OFFSET:): PATH/segment in a directory, PATH for a segment file. */
static const char *
seg_place(const run *r, const char *segment, char *buf, size_t len)
{
	size_t n = strlen(r->path);

	if (!r->dir)
		return r->path;
	snprintf(buf, len, "%s%s%s", r->path, n > 0 && r->path[n - 1] == '/' ? "" : "/", segment);
	return buf;
}

static void
on_corrupt(void *arg, const char *segment, uint64_t offset, uint64_t skipped, const char *what)
{
	run *r = arg;
	char w[600], place[4352];

	r->corrupt++;
	r->corrupt_bytes += skipped;
	run_mark(r, segment, offset + skipped);
	if (r->printed++ < MAX_ERROR_LINES)
		fprintf(stderr, "%s%s: %s\n", r->progress ? "\r" : "", prog,
		    store_corrupt_text(w, sizeof w, seg_place(r, segment, place, sizeof place),
		    offset, skipped, what));
}

static vigil_err
open_path(const char *path, int64_t from, int64_t to, run *r, store_reader **ret_rd,
    store_diag *d)
{
	struct stat st;

	if (stat(path, &st) != 0) {
		int e = errno;
		store_diag_at(d, path, VIGIL_NOPOS, NULL, "%s", strerror(e));
		return vigil_err_from_errno(e);
	}
	r->path = path;
	r->dir = S_ISDIR(st.st_mode);
	if (r->dir && !archive_dir_check(path, d))
		return VIGIL_ENOTFOUND; /* no archive there: a missing input, 2 */
	if (r->dir)
		return store_reader_open(path, from, to, on_corrupt, r, ret_rd, d);
	return store_reader_open_segment(path, on_corrupt, r, ret_rd, d);
}

/* Decodes rec's payload; on failure d says why. */
static vigil_err
decode(const store_record *rec, store_scored *s, store_label *l, store_diag *d)
{
	if (rec->type == STORE_REC_SCORE)
		return store_scored_decode(rec->payload, rec->len, s, d);
	return store_label_decode(rec->payload, rec->len, l, d);
}

/*
 * A read of r's PATH that failed part-way (rv, d: a segment that cannot be
 * opened, a read error): the line on stderr names the place it stopped,
 * FILE:OFFSET: (the segment d names; the end of what was read of it, 0 if
 * nothing), and that the rest is not done ("verified", "dumped").
 * ret_info: the error, its file the segment's name (as dump's).
 */
static void
read_stop(const run *r, const store_diag *d, vigil_err rv, const char *done,
    vigil_errinfo *ret_info)
{
	const char *name = strrchr(d->info.file, '/');
	char place[4352];

	*ret_info = d->info;
	if (d->info.file[0] == '\0') {
		vigil_errinfo_set(ret_info, NULL, "%s", d->msg[0] ? d->msg : vigil_strerror(rv));
		fprintf(stderr, "%s: %s: %s; the rest of it is not %s\n", prog, r->path,
		    ret_info->msg, done);
		return;
	}
	name = name != NULL ? name + 1 : d->info.file;
	snprintf(ret_info->file, sizeof ret_info->file, "%s", name);
	if (d->info.offset == VIGIL_NOPOS)
		ret_info->offset = strcmp(name, r->seg) == 0 ? r->seg_end : 0;
	fprintf(stderr, "%s: %s:%" PRIu64 ": %s; the rest of %s is not %s\n", prog,
	    seg_place(r, name, place, sizeof place), ret_info->offset, d->info.msg, r->path, done);
}

/* Prints o (taken) as one line of JSON, keys sorted; VIGIL_EIO if stdout
 * fails, VIGIL_ENOMEM if o could not be made (NULL). */
static vigil_err
print_json(json_t *o)
{
	vigil_err rv = VIGIL_OK;

	if (o == NULL) {
		fprintf(stderr, "%s: out of memory\n", prog);
		return VIGIL_ENOMEM;
	}
	if (json_dumpf(o, stdout, JSON_COMPACT | JSON_SORT_KEYS) != 0 || putchar('\n') == EOF) {
		fprintf(stderr, "%s: write to stdout failed\n", prog);
		rv = VIGIL_EIO;
	}
	json_decref(o);
	return rv;
}

static int
cmd_verify(int argc, char **argv)
{
	static store_scored s;
	store_label l;
	static const struct option longopts[] = { VIGIL_CLI_QUIET, VIGIL_CLI_JSON, VIGIL_CLI_HELP,
		{ NULL, 0, NULL, 0 } };
	bool quiet = false, json = false;
	int rc = 0, c;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "qjh", longopts, NULL)) != -1) {
		switch (c) {
		case 'q': quiet = true; break;
		case 'j': json = true; break;
		case 'h': usage(stdout); return 0;
		default: return vigil_cli_bad_option(prog, argv);
		}
	}
	argc -= optind;
	argv += optind;
	if (argc == 0)
		return vigil_cli_usage_error(prog, "verify: no PATH given");
	for (int i = 0; i < argc; i++) {
		run r = { .progress = !quiet && isatty(STDERR_FILENO) };
		store_reader *rd = NULL;
		store_reader_stats st = { 0 };
		store_record rec;
		store_diag d = { .msg = "" };
		vigil_errinfo stop;
		bool stopped, bad;
		json_t *o;
		vigil_err rv;

		rv = open_path(argv[i], INT64_MIN, INT64_MAX, &r, &rd, &d);
		if (rv != VIGIL_OK) {
			/* said, summed up like the others, and the next PATH verified;
			 * the worst code is returned (a missing input, 2, first) */
			bool missing = rv == VIGIL_ENOTFOUND;

			fprintf(stderr, "%s: %s\n", prog, d.msg[0] ? d.msg : vigil_strerror(rv));
			if (json && print_json(json_pack("{s:s, s:s}", "path", argv[i], "status",
			    missing ? "missing" : "error")) != VIGIL_OK)
				return EXIT_ERROR;
			if (!json)
				printf("%s: not verified (%s): %s\n", argv[i], missing ?
				    "no archive there" : "it cannot be read", missing ? "MISSING" : "ERROR");
			if (open_fail_code(rv) > rc)
				rc = open_fail_code(rv);
			continue;
		}
		while ((rv = store_reader_next(rd, &rec, &d)) == VIGIL_OK) {
			store_diag dd;
			char place[4352];

			run_mark_record(&r, rd, &rec, &st);
			r.records++;
			if (decode(&rec, &s, &l, &dd) != VIGIL_OK) {
				r.undecodable++;
				if (r.printed++ < MAX_ERROR_LINES)
					fprintf(stderr, "%s%s: %s:%" PRIu64 ": seq %" PRIu64 ": %s\n",
					    r.progress ? "\r" : "", prog, seg_place(&r, rec.segment,
					    place, sizeof place), rec.offset, rec.seq, dd.msg);
			}
			if (r.progress && r.records % 100000 == 0)
				fprintf(stderr, "\rverify: %" PRIu64 " records", r.records);
		}
		store_reader_get_stats(rd, &st);
		store_reader_close(rd);
		if (r.progress)
			fprintf(stderr, "\r\033[K");
		/* a read that failed part-way: said where, the PATH summed up as
		 * far as it was read, and the next PATH verified */
		stopped = rv != VIGIL_ENOTFOUND;
		if (stopped)
			read_stop(&r, &d, rv, "verified", &stop);
		bad = r.corrupt || r.undecodable;
		if (r.printed > MAX_ERROR_LINES)
			fprintf(stderr, "%s: %s: %" PRIu64 " more lines of damage not printed; the summary "
			    "counts them\n", prog, argv[i], r.printed - MAX_ERROR_LINES);
		o = !json ? NULL : json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:s}", "path",
		    argv[i], "records", (json_int_t)r.records, "segments", (json_int_t)st.segments,
		    "corrupt_stretches", (json_int_t)r.corrupt, "corrupt_bytes",
		    (json_int_t)r.corrupt_bytes, "undecodable", (json_int_t)r.undecodable,
		    "lost_records", (json_int_t)st.lost_records, "status", stopped ? "error" :
		    bad ? "damaged" : "ok");
		if (o != NULL && stopped)
			json_object_set_new(o, "error", vigil_error_json(vigil_error_code(rv), &stop));
		if (json && print_json(o) != VIGIL_OK)
			return EXIT_ERROR;
		if (!json)
			printf("%s: %" PRIu64 " records in %" PRIu64 " segments, %" PRIu64
			    " corrupt stretches (%" PRIu64 " bytes), %" PRIu64 " undecodable payloads, %"
			    PRIu64 " records lost in damaged zstd frames%s: %s\n", argv[i], r.records,
			    st.segments, r.corrupt, r.corrupt_bytes, r.undecodable, st.lost_records,
			    stopped ? ", not read to the end" : "", stopped ? "ERROR" : bad ? "DAMAGED" :
			    "OK");
		if ((stopped || bad) && EXIT_DAMAGED > rc)
			rc = EXIT_DAMAGED; /* damage and an I/O error: the same code, 1 */
	}
	if (fflush(stdout) != 0) {
		fprintf(stderr, "%s: verify: write to stdout failed\n", prog);
		return EXIT_ERROR;
	}
	return rc;
}

static json_t *
scored_json(const store_scored *s)
{
	json_t *o = json_object(), *hits = json_array(), *feats = json_object();

	json_object_set_new(o, "txn", vigil_txn_to_json(&s->txn));
	json_object_set_new(o, "score", json_real(s->score));
	json_object_set_new(o, "points", json_integer(s->points));
	json_object_set_new(o, "decision", json_string(vigil_decision_name(s->decision)));
	for (uint32_t i = 0; i < s->nhits; i++)
		json_array_append_new(hits, json_pack("{s:s, s:i, s:b}", "rule", s->hits[i].rule,
		    "points", (int)s->hits[i].points, "shadow", (int)s->hits[i].shadow));
	json_object_set_new(o, "hits", hits);
	json_object_set_new(o, "rules_hash", json_string(s->rules_version));
	json_object_set_new(o, "features_generation", json_integer((json_int_t)s->features_gen));
	json_object_set_new(o, "scored_at_ms", json_integer(s->scored_at_ms));
	for (uint32_t i = 0; i < s->nfeats; i++) {
		const vigil_value *v = &s->feats[i].val;
		json_object_set_new(feats, s->feats[i].name, !v->present ? json_null() :
		    v->str != NULL ? json_stringn(v->str, v->len) : json_real(v->num));
	}
	json_object_set_new(o, "features", feats);
	return o;
}

static json_t *
label_json(const store_label *l)
{
	return json_pack("{s:s, s:s, s:b, s:s, s:I, s:I}", "txn_id", l->txn_id, "card_id",
	    l->card_id, "fraud", (int)l->fraud, "source", l->source, "label_time_ms",
	    (json_int_t)l->label_time_ms, "received_at_ms", (json_int_t)l->received_at_ms);
}

static int
cmd_dump(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "from", required_argument, NULL, 'f' },
		{ "to", required_argument, NULL, 't' },
		VIGIL_CLI_HELP,
		{ NULL, 0, NULL, 0 },
	};
	static store_scored s;
	store_label l;
	int64_t from = INT64_MIN, to = INT64_MAX;
	const char *from_arg = NULL, *to_arg = NULL;
	run r = { 0 };
	store_reader *rd = NULL;
	store_reader_stats st = { 0 };
	store_record rec;
	store_diag d = { .msg = "" };
	vigil_errinfo stop;
	vigil_err rv;
	int c;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		int64_t *dst = c == 'f' ? &from : &to;
		if (c == 'h') {
			usage(stdout);
			return 0;
		}
		if (c != 'f' && c != 't')
			return vigil_cli_bad_option(prog, argv);
		if (parse_time(optarg, dst) != 0)
			return vigil_cli_usage_error(prog, "dump: --%s %s: not a date, RFC 3339 time or "
			    "Unix ms", c == 'f' ? "from" : "to", optarg);
		*(c == 'f' ? &from_arg : &to_arg) = optarg;
	}
	if (optind != argc - 1)
		return vigil_cli_usage_error(prog, "dump: exactly one PATH expected");
	/* an empty or inverted range selects nothing: a mistake, not a query */
	if (from_arg != NULL && to_arg != NULL && from >= to)
		return vigil_cli_usage_error(prog, "dump: --from %s is not before --to %s: the "
		    "range [from, to) is empty", from_arg, to_arg);
	rv = open_path(argv[optind], from, to, &r, &rd, &d);
	if (rv != VIGIL_OK) {
		fprintf(stderr, "%s: %s\n", prog, d.msg[0] ? d.msg : vigil_strerror(rv));
		return open_fail_code(rv);
	}
	while ((rv = store_reader_next(rd, &rec, &d)) == VIGIL_OK) {
		json_t *o;
		store_diag dd;
		vigil_err drv;

		run_mark_record(&r, rd, &rec, &st);
		/* a single segment has no range selection of its own */
		if (rec.event_time_ms < from || rec.event_time_ms >= to)
			continue;
		r.records++;
		if ((drv = decode(&rec, &s, &l, &dd)) != VIGIL_OK) {
			/* docs/tools.md, "JSON errors": the record's place in where */
			snprintf(dd.info.file, sizeof dd.info.file, "%s", rec.segment);
			dd.info.offset = rec.offset;
			r.undecodable++;
			o = json_pack("{s:o}", "error", vigil_error_json(vigil_error_code(drv), &dd.info));
		} else {
			o = rec.type == STORE_REC_SCORE ? scored_json(&s) : label_json(&l);
		}
		if (o == NULL) {
			rv = VIGIL_ENOMEM;
			break;
		}
		json_object_set_new(o, "seq", json_integer((json_int_t)rec.seq));
		json_object_set_new(o, "type", json_string(rec.type == STORE_REC_SCORE ? "score" : "label"));
		json_object_set_new(o, "event_time_ms", json_integer(rec.event_time_ms));
		json_object_set_new(o, "segment", json_string(rec.segment));
		json_object_set_new(o, "offset", json_integer((json_int_t)rec.offset));
		if (print_json(o) != VIGIL_OK) {
			store_reader_close(rd);
			return EXIT_ERROR;
		}
	}
	store_reader_close(rd);
	if (fflush(stdout) != 0) {
		fprintf(stderr, "%s: dump: write to stdout failed\n", prog);
		return EXIT_ERROR;
	}
	if (rv != VIGIL_ENOTFOUND) {
		/* the records before it printed; the place it stopped, as verify's */
		read_stop(&r, &d, rv, "dumped", &stop);
		return EXIT_ERROR;
	}
	return r.corrupt || r.undecodable ? EXIT_DAMAGED : 0;
}

/* A segment's counts (x) as an object: records, sequence and event-time
 * range (null without records), bytes (uncompressed) and disk_bytes (its
 * files' sizes). */
static json_t *
seg_json(const store_seg_index *x, uint64_t disk)
{
	return json_pack("{s:I, s:I, s:I, s:o, s:o, s:I, s:I}", "records", (json_int_t)x->records,
	    "first_seq", (json_int_t)x->first_seq, "last_seq", (json_int_t)x->last_seq,
	    "min_event_ms", x->records > 0 ? json_integer(x->min_event_ms) : json_null(),
	    "max_event_ms", x->records > 0 ? json_integer(x->max_event_ms) : json_null(),
	    "bytes", (json_int_t)x->bytes, "disk_bytes", (json_int_t)disk);
}

/* The size of file path; 0 if it cannot be stat'ed (gone meanwhile: the
 * segment was compressed while stats ran). */
static uint64_t
file_bytes(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

/* What segment e of directory dir takes on disk: its files (both forms
 * while it is being compressed) and its index. */
static uint64_t
seg_disk_bytes(const char *dir, const store_seg_ent *e)
{
	static const char *const suffix[] = { ".log", ".log.zst", ".idx" };
	const bool has[] = { e->has_log, e->has_zst, e->has_idx };
	char path[4200];
	uint64_t sum = 0;

	for (int i = 0; i < 3; i++) {
		snprintf(path, sizeof path, "%s/%s%s", dir, e->base, suffix[i]);
		sum += has[i] ? file_bytes(path) : 0;
	}
	return sum;
}

/* One segment's row: a line of the table, or (segs, --json) an object with
 * its name, form and state appended to segs. */
static void
print_seg(json_t *segs, const char *name, const char *form, const char *state,
    const store_seg_index *x, uint64_t disk)
{
	char a[32] = "-", b[32] = "-";
	json_t *o;

	if (segs != NULL) {
		o = seg_json(x, disk);
		if (o == NULL)
			return;
		json_object_set_new(o, "segment", json_string(name));
		json_object_set_new(o, "form", json_string(form));
		json_object_set_new(o, "state", json_string(state));
		json_array_append_new(segs, o);
		return;
	}
	if (x->records > 0) {
		vigil_time_format_rfc3339(x->min_event_ms, a, sizeof a);
		vigil_time_format_rfc3339(x->max_event_ms, b, sizeof b);
	}
	printf("%-34s %-4s %-6s %10" PRIu64 " %20" PRIu64 " %20" PRIu64 " %-24s %-24s %12" PRIu64
	    " %12" PRIu64 "\n", name, form, state, x->records, x->first_seq, x->last_seq, a, b,
	    x->bytes, disk);
}

static int
cmd_stats(int argc, char **argv)
{
	static const struct option longopts[] = { VIGIL_CLI_JSON, VIGIL_CLI_HELP,
		{ NULL, 0, NULL, 0 } };
	store_seg_ent *ents = NULL;
	store_seg_index x, tot = { .min_event_ms = INT64_MAX, .max_event_ms = INT64_MIN };
	store_diag d = { .msg = "" };
	char path[4096];
	uint64_t valid_end, disk, tot_disk = 0;
	size_t n = 0;
	vigil_err rv;
	json_t *segs = NULL; /* --json: the rows; without, NULL (text) */
	bool one;
	int rc = 0, c;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "jh", longopts, NULL)) != -1) {
		switch (c) {
		case 'j': segs = json_array(); break;
		case 'h': usage(stdout); return 0;
		default: return vigil_cli_bad_option(prog, argv);
		}
	}
	if (optind != argc - 1)
		return vigil_cli_usage_error(prog, "stats: exactly one PATH expected");
	argv += optind;
	one = !is_dir(argv[0]);
	if (!one && !archive_dir_check(argv[0], &d)) {
		fprintf(stderr, "%s: %s\n", prog, d.msg);
		json_decref(segs);
		return EXIT_USAGE;
	}
	rv = one ? store_seg_scan(argv[0], &tot, &valid_end, &d) :
	    store_seg_list(argv[0], &ents, &n, &d);
	if (rv != VIGIL_OK) {
		fprintf(stderr, "%s: %s\n", prog, d.msg[0] ? d.msg : vigil_strerror(rv));
		json_decref(segs);
		return open_fail_code(rv);
	}
	if (segs == NULL)
		printf("%-34s %-4s %-6s %10s %20s %20s %-24s %-24s %12s %12s\n", "segment", "form",
		    "state", "records", "first_seq", "last_seq", "min_event_time", "max_event_time",
		    "bytes", "disk_bytes");
	if (one) { /* one segment file: its row; the total is the same */
		const char *name = strrchr(argv[0], '/');
		tot_disk = file_bytes(argv[0]);
		print_seg(segs, name != NULL ? name + 1 : argv[0],
		    strstr(argv[0], ".zst") ? "zst" : "log", "-", &tot, tot_disk);
	}
	for (size_t i = 0; i < n; i++) {
		const store_seg_ent *e = &ents[i];
		const char *state = "closed";

		if (!e->has_log && !e->has_zst)
			continue;
		rv = e->has_idx ? store_seg_index_read(argv[0], e->base, &x) : VIGIL_ENOTFOUND;
		if (rv != VIGIL_OK) {
			/* only the segment being written has no index: a sealed
			 * (compressed) one without is missing it */
			state = e->has_idx ? "badidx" : e->has_log ? "open" : "noidx";
			snprintf(path, sizeof path, "%s/%s%s", argv[0], e->base,
			    e->has_log ? ".log" : ".log.zst");
			rv = store_seg_scan(path, &x, &valid_end, &d);
			if (rv != VIGIL_OK) {
				fprintf(stderr, "%s: %s\n", prog, d.msg[0] ? d.msg : vigil_strerror(rv));
				rc = EXIT_ERROR;
				break;
			}
			if (e->has_idx) {
				fprintf(stderr, "%s: %s/%s.idx: unreadable segment index; the segment "
				    "was scanned instead (verify checks it)\n", prog, argv[0], e->base);
				rc = EXIT_DAMAGED;
			}
		}
		disk = seg_disk_bytes(argv[0], e);
		print_seg(segs, e->base, e->has_log ? "log" : "zst", state, &x, disk);
		tot_disk += disk;
		tot.records += x.records;
		tot.bytes += x.bytes;
		if (x.records > 0) {
			if (tot.first_seq == 0)
				tot.first_seq = x.first_seq;
			tot.last_seq = x.last_seq;
			if (x.min_event_ms < tot.min_event_ms)
				tot.min_event_ms = x.min_event_ms;
			if (x.max_event_ms > tot.max_event_ms)
				tot.max_event_ms = x.max_event_ms;
		}
	}
	free(ents);
	if (rc == EXIT_ERROR) {
		json_decref(segs);
		return rc;
	}
	if (segs == NULL) {
		if (!one)
			print_seg(NULL, "total", "", "", &tot, tot_disk);
	} else if (print_json(json_pack("{s:o, s:o}", "segments", segs, "total",
	    seg_json(&tot, tot_disk))) != VIGIL_OK) {
		return EXIT_ERROR;
	}
	if (fflush(stdout) != 0) {
		fprintf(stderr, "%s: stats: write to stdout failed\n", prog);
		return EXIT_ERROR;
	}
	return rc;
}

int
main(int argc, char **argv)
{
	if (argc < 2)
		return vigil_cli_usage_error(prog, "no command given (verify, dump or stats)");
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0) {
		vigil_cli_version(stdout, prog);
		return 0;
	}
	if (strcmp(argv[1], "verify") == 0)
		return cmd_verify(argc - 1, argv + 1);
	if (strcmp(argv[1], "dump") == 0)
		return cmd_dump(argc - 1, argv + 1);
	if (strcmp(argv[1], "stats") == 0)
		return cmd_stats(argc - 1, argv + 1);
	return vigil_cli_usage_error(prog, "unknown command '%s'", argv[1]);
}
