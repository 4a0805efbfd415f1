/* SPDX-License-Identifier: MIT */
/*
 * tools/rulestool/main.c - vigil-rules, the fraud analyst's tool for rule
 * files (docs/vigil-rules.md): check, fmt, explain one transaction, and run
 * the regression cases kept next to the rules (test.c). Rule files compile
 * against the store feature schema (app_rules_schema). Exit codes
 * (common/cli.h, docs/tools.md): 0 ok; 1 findings (a failing case, an
 * unformatted file with --check) or a failed write; 2 usage: a bad command
 * line, or a rule or cases file that cannot be read or does not compile (the
 * same code as vigild and every other program gives a bad rule file).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "app.h"
#include "cli.h"
#include "db.h"
#include "rules.h"
#include "schema.h"
#include "tool.h"
#include "vec.h"
#include "vigil.h"
#include "vigil_json.h"
#include "vigil_config.h"

#define TOOL_MAX_READS  64

static const char *tool_usage =
    "usage: vigil-rules COMMAND [OPTIONS] ARGS\n"
    "\n"
    "Check, format, explain and test vigil rule files (docs/rules.md).\n"
    "\n"
    "commands:\n"
    "  check [-q] [--json] FILE...        compile each file; print every error\n"
    "  fmt [-w | --write | --check] FILE  print FILE in canonical form\n"
    "  explain [--json] [--data DIR] FILE --txn JSON\n"
    "                                     score one transaction, rule by rule\n"
    "  test [-q | -v] FILE CASES          run regression cases against FILE\n"
    "  features [--json | --markdown]     list every feature a rule or the model reads\n"
    "\n"
    "options:\n"
    "  -j, --json     (check, explain, features) JSON on stdout instead of text\n"
    "  -q, --quiet    (check, test) print only errors and failures\n"
    "  -v, --verbose  (test) print every case, not only failures\n"
    "  -w, --write    (fmt) rewrite FILE in place\n"
    "      --check    (fmt) print nothing; exit 1 if FILE is not in canonical form\n"
    "      --markdown (features) the list as a Markdown table\n"
    "  -t, --txn JSON (explain) the transaction: inline, @PATH or - for stdin\n"
    "  -d, --data DIR (explain) a vigild data directory, read only: its current\n"
    "                 generation's features, thresholds and model\n"
    "  -h, --help     this text; `vigil-rules COMMAND --help` describes a command\n"
    "  -V, --version  print the version\n"
    "\n";

static const char *const tool_exit[VIGIL_EXIT_COUNT_] = {
	"", "a failing case, a file not in canonical form (fmt --check), or a failed write",
	"bad command line, or a rule or cases file that cannot be read or does not compile",
	NULL,
};

static const char *check_usage =
    "usage: vigil-rules check [-q | --quiet] [-j | --json] FILE...\n"
    "\n"
    "Compiles each rule file against the feature schema, with its list files.\n"
    "Errors are printed as FILE:LINE:COL: error: MESSAGE, then the source line\n"
    "and a caret. With --json, one JSON document on stdout:\n"
    "  {\"ok\": bool, \"files\": [{\"file\", \"ok\", \"version\", \"hash\", \"rules\",\n"
    "   \"thresholds\", \"errors\": [{\"code\", \"message\", \"where\": {\"file\",\n"
    "   \"line\", \"column\"}}]}]}  (the error object of docs/tools.md)\n"
    "With --quiet, nothing is printed for a valid file.\n"
    "\n";

static const char *fmt_usage =
    "usage: vigil-rules fmt [-w | --write | --check] FILE\n"
    "\n"
    "Prints FILE in canonical form (comments kept; idempotent).\n"
    "  -w, --write   rewrite FILE in place (atomically) instead of printing; a\n"
    "                symbolic link's target is rewritten; not with FILE -\n"
    "  --check       exit 1, with one line saying so, if FILE is not in canonical form\n"
    "\n";

static const char *explain_usage =
    "usage: vigil-rules explain [-j | --json] [-d | --data DIR] FILE -t | --txn JSON\n"
    "\n"
    "Scores one transaction through the scoring pipeline vigild runs (a dry run:\n"
    "nothing is recorded) and shows each rule's outcome (fired, not fired, or\n"
    "unknown because a value was missing) with the value of every feature and\n"
    "threshold its condition read.\n"
    "  -t, --txn JSON  the input: inline JSON, @PATH to read a file, or - for stdin:\n"
    "                {\"txn\": {transaction fields}, \"features\": {\"card.count_7d\": 3, ...},\n"
    "                 \"thresholds\": {\"zscore_high\": 3.5,\n"
    "                                \"amount_high_for_mcc\": {\"5411\": 500}}}\n"
    "                \"features\" and \"thresholds\" are optional and override what the\n"
    "                data gives; a threshold without a value uses its fallback.\n"
    "                \"thresholds\" names tuned thresholds of FILE (the example's are\n"
    "                in rules/default.rules): a number is the global value, an\n"
    "                object the values of a `by` threshold's groups. Another\n"
    "                key than these three is an error.\n"
    "  -d, --data DIR  a vigild data directory, read only: the batch features,\n"
    "                tuned thresholds and model of its current generation (live\n"
    "                velocity is not read: give vel.* in \"features\"); the\n"
    "                model's score and top reasons are shown. Without it only\n"
    "                the transaction's fields and the input's values are known.\n"
    "  -j, --json    print one JSON document instead of text\n"
    "\n";

/* A command's --help: its text, then the exit-status table. */
int
tool_help(const char *text)
{
	fputs(text, stdout);
	vigil_cli_exit_help(stdout, tool_exit);
	return 0;
}

/* ---- files ---- */

/*
 * Reads path ("-" = stdin) into a NUL-terminated buffer; prints the error
 * as a whole-file diagnostic, "FILE: error: MESSAGE", the form the rules
 * library (and so vigild --check-config) gives the same problems. Pipes
 * are read (`<(...)`, stdin); a directory is not.
 */
/* The last tool_read failure, for --json (file, message, code). */
static vigil_errinfo tool_read_err;
static vigil_err     tool_read_rv;

/* The flag the file being read was named by (--txn @FILE), or NULL for a
 * rule or cases file: their errors are the library's whole-file form, a
 * flag's file the form of a bad option value (docs/tools.md, "Messages"). */
static const char *tool_read_flag;

/* Prints "PATH: error: WHAT[: WHY]" (or "vigil-rules: FLAG PATH: WHY", WHAT
 * when no WHY) and keeps it in tool_read_err. */
static void
tool_read_fail(const char *path, vigil_err rv, const char *what, const char *why)
{
	vigil_errinfo_set(&tool_read_err, NULL, "%s%s%s", what, why != NULL ? ": " : "",
	    why != NULL ? why : "");
	snprintf(tool_read_err.file, sizeof tool_read_err.file, "%s", path);
	tool_read_rv = rv;
	if (tool_read_flag != NULL)
		fprintf(stderr, "vigil-rules: %s %s: %s\n", tool_read_flag, path,
		    strcmp(what, "cannot open") == 0 && why != NULL ? why : tool_read_err.msg);
	else
		fprintf(stderr, "%s: error: %s\n", path, tool_read_err.msg);
}

char *
tool_read(const char *path, size_t *ret_len)
{
	FILE       *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	vigil_vec   buf; /* the bytes and a NUL */
	char        chunk[16384], *res = NULL;
	size_t      got;
	struct stat st;
	vigil_err   rv = VIGIL_OK;

	vigil_vec_init(&buf, 1, TOOL_MAX_FILE + 1);
	if (f == NULL) {
		int e = errno;

		tool_read_fail(path, vigil_err_from_errno(e), "cannot open", strerror(e));
		return NULL;
	}
	if (fstat(fileno(f), &st) != 0) {
		tool_read_fail(path, VIGIL_EIO, "cannot stat", strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode) && !S_ISFIFO(st.st_mode) && !S_ISCHR(st.st_mode)) {
		tool_read_fail(path, VIGIL_EINVAL, "not a regular file", NULL);
		goto out;
	}
	while (rv == VIGIL_OK && (got = fread(chunk, 1, sizeof chunk, f)) > 0)
		rv = vigil_vec_append(&buf, chunk, got);
	if (rv == VIGIL_OK && ferror(f)) {
		tool_read_fail(path, VIGIL_EIO, "read failed", strerror(errno));
		goto out;
	}
	if (rv == VIGIL_OK)
		rv = vigil_vec_push(&buf, ""); /* the NUL */
	if (rv == VIGIL_ETOOBIG) {
		char lim[64];

		snprintf(lim, sizeof lim, "the limit is %u bytes", TOOL_MAX_FILE);
		tool_read_fail(path, VIGIL_ETOOBIG, "too large", lim);
		goto out;
	}
	if (rv != VIGIL_OK) {
		tool_read_fail(path, VIGIL_ENOMEM, "out of memory", NULL);
		goto out;
	}
	*ret_len = buf.len - 1;
	res = buf.data;
	buf.data = NULL; /* handed to the caller */
out:
	if (f != stdin)
		fclose(f);
	vigil_vec_fini(&buf);
	return res;
}

static char *
tool_dirname(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (slash == NULL)
		return strdup(".");
	if (slash == path)
		return strdup("/");
	return strndup(path, (size_t)(slash - path));
}

/*
 * Reads and compiles a rule file. Returns 0 (*ret_prog set), TOOL_BAD_RULES
 * (diags filled, *ret_src kept for printing) or EXIT_USAGE (I/O, printed).
 * A rule file that does not compile exits EXIT_USAGE, as in vigild.
 */
int
tool_compile(const char *path, const rules_schema *schema, rules_prog **ret_prog,
    rules_diags *diags, char **ret_src, size_t *ret_len)
{
	rules_opts opts = { 0 };
	char      *src, *dir;
	size_t     len = 0;
	vigil_err  rv;

	src = tool_read(path, &len);
	if (src == NULL)
		return EXIT_USAGE;
	dir = tool_dirname(path);
	if (dir == NULL) {
		free(src);
		fprintf(stderr, "vigil-rules: out of memory\n");
		return EXIT_USAGE;
	}
	opts.base_dir = dir;
	rv = rules_compile(path, src, len, schema, &opts, ret_prog, diags);
	free(dir);
	*ret_src = src;
	*ret_len = len;
	if (rv == VIGIL_OK)
		return 0;
	if (rv == VIGIL_ENOMEM) {
		fprintf(stderr, "vigil-rules: %s: out of memory\n", path);
		return EXIT_USAGE;
	}
	return TOOL_BAD_RULES;
}

/* ---- check ---- */

static int
cmd_check(int argc, char **argv, const rules_schema *schema)
{
	static const struct option longopts[] = {
		VIGIL_CLI_JSON, VIGIL_CLI_QUIET, VIGIL_CLI_HELP, { NULL, 0, NULL, 0 },
	};
	bool    json = false, quiet = false;
	int     c, status = 0;
	json_t *jfiles = NULL;

	while ((c = getopt_long(argc, argv, "jqh", longopts, NULL)) != -1) {
		switch (c) {
		case 'j': json = true; break;
		case 'q': quiet = true; break;
		case 'h': return tool_help(check_usage);
		default: return vigil_cli_bad_option("vigil-rules check", argv);
		}
	}
	if (optind >= argc)
		return vigil_cli_usage_error("vigil-rules check", "no rule file given");
	if (json && (jfiles = json_array()) == NULL)
		return EXIT_USAGE;
	for (int i = optind; i < argc; i++) {
		rules_prog *prog = NULL;
		rules_diags diags;
		char       *src = NULL;
		size_t      len = 0;
		int         r = tool_compile(argv[i], schema, &prog, &diags, &src, &len);

		if (r == EXIT_USAGE && !json) {
			status = EXIT_USAGE;
		} else if (json) {
			json_t *jf = json_object(), *jerr = json_array();

			json_object_set_new(jf, "file", json_string(argv[i]));
			json_object_set_new(jf, "ok", json_boolean(r == 0));
			if (r == EXIT_USAGE) {
				/* unreadable: one error object, the file in where */
				status = EXIT_USAGE;
				json_array_append_new(jerr, vigil_error_json(vigil_error_code(tool_read_rv),
				    &tool_read_err));
			} else if (r == 0) {
				json_object_set_new(jf, "version", json_string(rules_prog_version(prog)));
				json_object_set_new(jf, "hash", json_string(rules_prog_hash(prog)));
				json_object_set_new(jf, "rules", json_integer(rules_prog_nrules(prog)));
				json_object_set_new(jf, "thresholds", json_integer(rules_prog_nthresholds(prog)));
			} else {
				/* the one error object of docs/tools.md, one per error */
				for (uint32_t k = 0; k < diags.count; k++) {
					vigil_errinfo ei;

					vigil_errinfo_set(&ei, NULL, "%s", diags.items[k].msg);
					snprintf(ei.file, sizeof ei.file, "%s", argv[i]);
					ei.line = diags.items[k].line;
					ei.col = diags.items[k].col;
					json_array_append_new(jerr, vigil_error_json("INVALID", &ei));
				}
				if (diags.dropped > 0)
					json_object_set_new(jf, "errors_not_shown", json_integer(diags.dropped));
			}
			json_object_set_new(jf, "errors", jerr);
			json_array_append_new(jfiles, jf);
		} else if (r == 0 && !quiet) {
			printf("%s: ok (version \"%s\", %u rules, %u thresholds, hash %s)\n", argv[i],
			    rules_prog_version(prog), rules_prog_nrules(prog), rules_prog_nthresholds(prog),
			    rules_prog_hash(prog));
		} else if (r != 0) {
			rules_diags_print(&diags, src, len, stderr);
		}
		if (r == TOOL_BAD_RULES)
			status = EXIT_USAGE;
		rules_prog_free(prog);
		free(src);
	}
	if (json) {
		json_t *doc = json_pack("{s:b,s:o}", "ok", status == 0, "files", jfiles);

		json_dumpf(doc, stdout, JSON_INDENT(2));
		fputc('\n', stdout);
		json_decref(doc);
	}
	return status;
}

/* ---- fmt ---- */

/*
 * Replaces the file at path by data[0..len): written to a temporary file
 * beside it, synced, then renamed over it, with its permissions. A symbolic
 * link is followed: its target is rewritten and the link stays a link
 * (renaming over the link itself would leave the target unformatted).
 */
static int
tool_write_atomic(const char *path, const char *data, size_t len)
{
	char        tmp[PATH_MAX + 16], *real;
	FILE       *f = NULL;
	struct stat st;
	int         status = VIGIL_EXIT_FAIL;

	real = realpath(path, NULL);
	if (real == NULL) {
		fprintf(stderr, "vigil-rules: %s: %s\n", path, strerror(errno));
		return VIGIL_EXIT_FAIL;
	}
	if (stat(real, &st) != 0) {
		fprintf(stderr, "vigil-rules: %s: %s\n", real, strerror(errno));
		goto out;
	}
	if ((size_t)snprintf(tmp, sizeof tmp, "%s.fmt-tmp", real) >= sizeof tmp) {
		fprintf(stderr, "vigil-rules: %s: path too long\n", real);
		goto out;
	}
	f = fopen(tmp, "wb");
	if (f == NULL) {
		fprintf(stderr, "vigil-rules: %s: %s\n", tmp, strerror(errno));
		goto out;
	}
	if (fchmod(fileno(f), st.st_mode & 07777) != 0) {
		fprintf(stderr, "vigil-rules: %s: cannot keep the mode of %s: %s\n", tmp, real,
		    strerror(errno));
		goto fail;
	}
	if (fwrite(data, 1, len, f) != len || fflush(f) != 0 || fsync(fileno(f)) != 0) {
		fprintf(stderr, "vigil-rules: %s: write failed: %s\n", tmp, strerror(errno));
		goto fail;
	}
	if (fclose(f) != 0) {
		f = NULL;
		fprintf(stderr, "vigil-rules: %s: write failed: %s\n", tmp, strerror(errno));
		goto fail;
	}
	f = NULL;
	if (rename(tmp, real) != 0) {
		fprintf(stderr, "vigil-rules: %s: %s\n", real, strerror(errno));
		goto fail;
	}
	status = 0;
	goto out;
fail:
	if (f != NULL)
		fclose(f);
	unlink(tmp);
out:
	free(real);
	return status;
}

static int
cmd_fmt(int argc, char **argv)
{
	static const struct option longopts[] = {
		VIGIL_CLI_WRITE, { "check", no_argument, NULL, 'c' }, VIGIL_CLI_HELP,
		{ NULL, 0, NULL, 0 },
	};
	bool        write = false, check = false;
	int         c, status = 0;
	char       *src = NULL, *out = NULL;
	size_t      len = 0, olen = 0;
	rules_diags diags;
	vigil_err   rv;

	while ((c = getopt_long(argc, argv, "wh", longopts, NULL)) != -1) {
		switch (c) {
		case 'w': write = true; break;
		case 'c': check = true; break;
		case 'h': return tool_help(fmt_usage);
		default: return vigil_cli_bad_option("vigil-rules fmt", argv);
		}
	}
	if (optind + 1 != argc || (write && check))
		return vigil_cli_usage_error("vigil-rules fmt",
		    "give one FILE and at most one of -w, --check");
	/* "-" is standard input: there is no file to rewrite (it made one named "-") */
	if (write && strcmp(argv[optind], "-") == 0)
		return vigil_cli_usage_error("vigil-rules fmt",
		    "-w: standard input cannot be rewritten in place; give a FILE");
	src = tool_read(argv[optind], &len);
	if (src == NULL)
		return EXIT_USAGE;
	rv = rules_format(argv[optind], src, len, &out, &olen, &diags);
	if (rv == VIGIL_ESYNTAX || rv == VIGIL_ETOOBIG) {
		if (rv == VIGIL_ESYNTAX)
			rules_diags_print(&diags, src, len, stderr);
		else
			fprintf(stderr, "vigil-rules: %s: too large to format\n", argv[optind]);
		status = EXIT_USAGE;
		goto out;
	}
	if (rv != VIGIL_OK) {
		fprintf(stderr, "vigil-rules: %s: %s\n", argv[optind], vigil_strerror(rv));
		status = EXIT_USAGE;
		goto out;
	}
	if (check) {
		if (olen != len || memcmp(out, src, len) != 0) {
			fprintf(stderr, "%s: not in canonical form (run: vigil-rules fmt -w %s)\n",
			    argv[optind], argv[optind]);
			status = EXIT_FINDINGS;
		}
	} else if (write) {
		if (olen != len || memcmp(out, src, len) != 0)
			status = tool_write_atomic(argv[optind], out, olen);
	} else {
		fwrite(out, 1, olen, stdout); /* a failure is main's to report */
	}
out:
	free(src);
	free(out);
	return status;
}

/* ---- transaction input (explain, test) ---- */

/* The keys of explain's input (a test case's are test.c's). */
static const char *const tool_input_keys[] = { "txn", "features", "thresholds", NULL };

/*
 * Every key of the object obj is one of keys[]: a misspelt key would
 * otherwise be dropped and its check or value silently lost. err gets
 * "[PREFIX.]KEY: unknown key (one of ...)".
 */
int
tool_keys_check(const json_t *obj, const char *const *keys, const char *prefix, char *err,
    size_t errlen)
{
	char        known[200];
	const char *k = vigil_json_unknown_key(obj, keys, known, sizeof known);

	if (k == NULL)
		return 0;
	snprintf(err, errlen, "%s%s%s: unknown key (one of %s)", prefix != NULL ? prefix : "",
	    prefix != NULL ? "." : "", k, known);
	return -1;
}

/* Threshold values from {"name": number | {"group": number}}. */
static int
tool_thresholds(const json_t *obj, const rules_prog *prog, rules_tvals *tv, char *err,
    size_t errlen)
{
	const char *name;
	json_t     *v;

	if (!json_is_object(obj)) {
		snprintf(err, errlen, "thresholds: must be an object of name -> value");
		return -1;
	}
	json_object_foreach((json_t *)obj, name, v) {
		uint32_t             i, n = rules_prog_nthresholds(prog);
		rules_threshold_info ti;

		for (i = 0; i < n; i++) {
			rules_prog_threshold(prog, i, &ti);
			if (strcmp(ti.name, name) == 0)
				break;
		}
		if (i == n) {
			snprintf(err, errlen, "thresholds.%s: no such threshold in the rule file", name);
			return -1;
		}
		if (ti.kind == RULES_TUNE_CONST) {
			snprintf(err, errlen, "thresholds.%s: a constant threshold cannot be set", name);
			return -1;
		}
		if (json_is_number(v)) {
			if (rules_tvals_set(tv, i, NULL, json_number_value(v)) != VIGIL_OK) {
				snprintf(err, errlen, "thresholds.%s: invalid value", name);
				return -1;
			}
		} else if (json_is_object(v) && ti.group_by != NULL) {
			const char *g;
			json_t     *gv;

			json_object_foreach(v, g, gv) {
				vigil_value key;
				char       *end;

				if (!json_is_number(gv)) {
					snprintf(err, errlen, "thresholds.%s.%s: must be a number", name, g);
					return -1;
				}
				if (ti.group_type == VIGIL_T_STR) {
					key = vigil_value_str(g, (uint32_t)strlen(g));
				} else if (ti.group_type == VIGIL_T_BOOL) {
					if (strcmp(g, "true") != 0 && strcmp(g, "false") != 0) {
						snprintf(err, errlen, "thresholds.%s.%s: group of %s is true or false",
						    name, g, ti.group_by);
						return -1;
					}
					key = vigil_value_bool(strcmp(g, "true") == 0);
				} else {
					double d = strtod(g, &end);

					if (*g == '\0' || *end != '\0') {
						snprintf(err, errlen, "thresholds.%s.%s: group of %s must be a number", name,
						    g, ti.group_by);
						return -1;
					}
					key = vigil_value_num(d);
				}
				if (rules_tvals_set(tv, i, &key, json_number_value(gv)) != VIGIL_OK) {
					snprintf(err, errlen, "thresholds.%s.%s: invalid value", name, g);
					return -1;
				}
			}
		} else {
			snprintf(err, errlen, "thresholds.%s: must be a number%s", name,
			    ti.group_by != NULL ? " or an object of group -> number" : "");
			return -1;
		}
	}
	return 0;
}

/*
 * Fills features (and tv) from {"txn": {...}, "features": {...},
 * "thresholds": {...}}. String values point into txn and obj.
 */
int
tool_input(const json_t *obj, const rules_prog *prog, vigil_txn *txn, vigil_value *features,
    uint32_t nfeatures, rules_tvals *tv, char *err, size_t errlen)
{
	const json_t *jt, *jf, *jth;
	char          sub[200];
	vigil_errinfo ei;

	if (!json_is_object(obj)) {
		snprintf(err, errlen, "input must be a JSON object with \"txn\"");
		return -1;
	}
	jt = json_object_get(obj, "txn");
	if (jt == NULL) {
		snprintf(err, errlen, "txn: missing (the transaction object)");
		return -1;
	}
	if (vigil_txn_from_json_now(jt, vigil_now_ms(), txn, &ei) != VIGIL_OK) {
		snprintf(err, errlen, "txn%s%s: %s", ei.field[0] != '\0' ? "." : "", ei.field, ei.msg);
		return -1;
	}
	if (vigil_txn_validate(txn, &ei) != VIGIL_OK) {
		snprintf(err, errlen, "txn.%s: %s", ei.field, ei.msg);
		return -1;
	}
	store_features_from_txn(txn, features, nfeatures);
	jf = json_object_get(obj, "features");
	if (jf != NULL && app_features_from_json(jf, features, nfeatures, sub, sizeof sub) != VIGIL_OK) {
		snprintf(err, errlen, "features.%s", sub);
		return -1;
	}
	jth = json_object_get(obj, "thresholds");
	if (jth != NULL && tool_thresholds(jth, prog, tv, err, errlen) != 0)
		return -1;
	return 0;
}

/* ---- explain ---- */

static json_t *
tool_value_json(vigil_type t, const vigil_value *v)
{
	if (!v->present)
		return json_null();
	if (t == VIGIL_T_STR)
		return json_stringn(v->str, v->len);
	if (t == VIGIL_T_BOOL)
		return json_boolean(v->num != 0);
	return json_real(v->num);
}

/* What explain scored: the pipeline's outcome and where its data came from. */
typedef struct tool_scored {
	const char        *data;       /* --data DIR, or NULL */
	uint64_t           generation; /* served by the db; 0 = none */
	int64_t            as_of_ms;
	bool               model_run;  /* the pipeline evaluated a model */
	bool               model_given; /* model.score came from "features" */
	const app_model   *model;      /* the model evaluated, or NULL */
	const app_outcome *ao;
} tool_scored;

/* "features" of the input, set again on the pipeline's vector (app_scorer.amend).
 * tool_input checked it already, so an error here is not expected. */
static vigil_err
tool_amend(void *arg, vigil_value *features, uint32_t nfeatures)
{
	const json_t *jf = arg;
	char          err[200];

	if (jf == NULL)
		return VIGIL_OK;
	return app_features_from_json(jf, features, nfeatures, err, sizeof err);
}

static json_t *
tool_model_json(const tool_scored *sc)
{
	json_t *m = json_object(), *rs = json_array();

	/* the shape of vigild's /v1/score, vigil-score's and vigil-replay's "model" */
	for (uint32_t i = 0; rs != NULL && i < sc->ao->nreasons; i++)
		json_array_append_new(rs, json_pack("{s:s, s:f, s:f}", "feature",
		    sc->ao->reasons[i].feature, "value", sc->ao->reasons[i].value.num,
		    "contribution", (double)sc->ao->reasons[i].contrib));
	if (m == NULL || rs == NULL) {
		json_decref(m);
		json_decref(rs);
		return NULL;
	}
	json_object_set_new(m, "score", json_real(sc->ao->model_score));
	/* explain's own: the probability the score is made of (model.meta's
	 * calibration applied; the same as "score" without one) */
	if (sc->model != NULL)
		json_object_set_new(m, "calibrated", json_real(app_model_calibrate(sc->model,
		    sc->ao->model_score)));
	json_object_set_new(m, "reasons", rs);
	return m;
}

static json_t *
tool_explain_json(const char *path, const rules_prog *prog, const rules_tvals *tv,
    const tool_scored *sc)
{
	const rules_result *res = sc->ao->res;
	const vigil_value  *f = sc->ao->features;
	uint32_t            n = store_schema_nfields();
	json_t             *doc = NULL, *jr;

	/* the bands that decided (res): a band named by a threshold is its
	 * tuned value when the generation or the input has one */
	doc = json_pack("{s:s,s:s,s:s,s:s,s:f,s:i,s:i,s:{s:f,s:f}}", "file", path, "version",
	    rules_prog_version(prog), "hash", rules_prog_hash(prog), "decision",
	    vigil_decision_name(res->decision), "score", res->score, "points",
	    (json_int_t)res->points, "shadow_score",
	    (json_int_t)res->shadow_score, "bands", "review", res->review_at, "decline",
	    res->decline_at);
	jr = json_array();
	if (doc == NULL || jr == NULL) {
		json_decref(jr);
		json_decref(doc);
		return NULL;
	}
	if (sc->data != NULL) {
		char asof[40] = "";

		if (sc->generation != 0)
			vigil_time_format_rfc3339(sc->as_of_ms, asof, sizeof asof);
		json_object_set_new(doc, "data", json_pack("{s:s,s:I,s:o}", "dir", sc->data,
		    "generation", (json_int_t)sc->generation, "as_of",
		    sc->generation != 0 ? json_string(asof) : json_null()));
	}
	if (sc->model_run && !isnan(sc->ao->model_score))
		json_object_set_new(doc, "model", tool_model_json(sc));
	for (uint32_t i = 0; i < rules_prog_nrules(prog); i++) {
		rules_rule_info info;
		rules_outcome   o = RULES_OUTCOME_FALSE;
		rules_read      reads[TOOL_MAX_READS];
		uint32_t        nr;
		json_t         *jrule, *jreads = json_array();

		rules_prog_rule(prog, i, &info);
		rules_prog_rule_eval(prog, tv, f, n, i, &o);
		jrule = json_pack("{s:s,s:s,s:i,s:s,s:b,s:s,s:s}", "name", info.name, "mode",
		    rules_mode_name(info.mode), "points", (json_int_t)info.points, "outcome",
		    rules_outcome_name(o), "fired", o == RULES_OUTCOME_TRUE && info.mode != RULES_MODE_DISABLED,
		    "reason", info.reason, "condition", rules_prog_rule_condition(prog, i));
		nr = rules_prog_rule_reads(prog, i, reads, TOOL_MAX_READS);
		for (uint32_t k = 0; k < nr && k < TOOL_MAX_READS; k++) {
			if (reads[k].threshold) {
				double         v = 0;
				rules_tval_src src = RULES_TVAL_FALLBACK;

				rules_tvals_value(prog, tv, reads[k].index, f, n, &v, &src);
				json_array_append_new(jreads, json_pack("{s:s,s:s,s:f,s:s}", "name", reads[k].name,
				    "kind", "threshold", "value", v, "source", rules_tval_src_name(src)));
			} else {
				json_array_append_new(jreads, json_pack("{s:s,s:s,s:o}", "name", reads[k].name,
				    "kind", "feature", "value", tool_value_json(reads[k].type, &f[reads[k].index])));
			}
		}
		json_object_set_new(jrule, "reads", jreads);
		json_array_append_new(jr, jrule);
	}
	json_object_set_new(doc, "rules", jr);
	return doc;
}

static void
tool_print_value(FILE *out, vigil_type t, const vigil_value *v)
{
	if (!v->present)
		fputs("missing", out);
	else if (t == VIGIL_T_STR)
		fprintf(out, "\"%.*s\"", (int)v->len, v->str);
	else if (t == VIGIL_T_BOOL)
		fputs(v->num != 0 ? "true" : "false", out);
	else
		fprintf(out, "%.17g", v->num);
}

/*
 * The text form: where the features came from and the model's outcome
 * (only with --data), then the decision of the pipeline and every rule
 * with the values its condition read, as rules_explain_print lays them out.
 */
static void
tool_explain_print(const rules_prog *prog, const rules_tvals *tv, const tool_scored *sc,
    FILE *out)
{
	const rules_result *res = sc->ao->res;
	const vigil_value  *f = sc->ao->features;
	uint32_t            n = store_schema_nfields();
	rules_read          reads[TOOL_MAX_READS];

	if (sc->data != NULL) {
		char asof[40];

		if (sc->generation == 0) {
			fprintf(out, "data: %s, no feature generation (batch features missing)\n", sc->data);
		} else {
			vigil_time_format_rfc3339(sc->as_of_ms, asof, sizeof asof);
			fprintf(out, "data: %s, generation %" PRIu64 " (as of %s)\n", sc->data,
			    sc->generation, asof);
		}
		fputs("live velocity: not read from a data directory (vel.* missing unless given)\n",
		    out);
		if (sc->model_given)
			fputs("model: not evaluated (model.score given in the input)\n", out);
		else if (!sc->model_run)
			fputs("model: none in this generation\n", out);
		else if (isnan(sc->ao->model_score))
			fputs("model: no score\n", out);
		else {
			fprintf(out, "model: score %.6g", sc->ao->model_score);
			for (uint32_t i = 0; i < sc->ao->nreasons; i++)
				fprintf(out, "%s%s=%.6g %+.2f", i ? ", " : "  reasons: ",
				    sc->ao->reasons[i].feature, sc->ao->reasons[i].value.num,
				    (double)sc->ao->reasons[i].contrib);
			fputc('\n', out);
		}
		fputc('\n', out);
	}
	fprintf(out, "decision: %s  score: %.6g  points: %d  (review at %.6g, decline at %.6g)  "
	    "shadow score: %d\n", vigil_decision_name(res->decision), res->score, res->points,
	    res->review_at, res->decline_at, res->shadow_score);
	fprintf(out, "rules: version \"%s\", hash %s\n", rules_prog_version(prog),
	    rules_prog_hash(prog));
	for (uint32_t i = 0; i < rules_prog_nrules(prog); i++) {
		rules_rule_info info;
		rules_outcome   o = RULES_OUTCOME_FALSE;
		uint32_t        nr;
		bool            off;

		rules_prog_rule(prog, i, &info);
		rules_prog_rule_eval(prog, tv, f, n, i, &o);
		off = info.mode == RULES_MODE_DISABLED;
		/* a disabled rule never fires; show what its condition gives anyway */
		fprintf(out, "\n%-7s %s  (%+d, %s%s%s)\n",
		    off                          ? "off"
		    : o == RULES_OUTCOME_TRUE    ? "FIRED"
		    : o == RULES_OUTCOME_UNKNOWN ? "unknown"
		                                 : "-",
		    info.name, info.points, rules_mode_name(info.mode), off ? ", condition " : "",
		    off ? rules_outcome_name(o) : "");
		if (o == RULES_OUTCOME_TRUE && !off)
			fprintf(out, "        reason: %s\n", info.reason);
		fprintf(out, "        when %s\n", rules_prog_rule_condition(prog, i));
		nr = rules_prog_rule_reads(prog, i, reads, TOOL_MAX_READS);
		for (uint32_t k = 0; k < nr && k < TOOL_MAX_READS; k++) {
			fprintf(out, "          %s = ", reads[k].name);
			if (reads[k].threshold) {
				double         v = 0;
				rules_tval_src src = RULES_TVAL_FALLBACK;

				rules_tvals_value(prog, tv, reads[k].index, f, n, &v, &src);
				fprintf(out, "%.17g (threshold, %s)", v, rules_tval_src_name(src));
			} else {
				tool_print_value(out, reads[k].type, &f[reads[k].index]);
			}
			fputc('\n', out);
		}
	}
}

static bool
tool_has_subdir(const char *dir, const char *name)
{
	char        path[PATH_MAX];
	struct stat st;

	return snprintf(path, sizeof path, "%s/%s", dir, name) < (int)sizeof path &&
	    stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/*
 * The store explain scores on: with --data, the data directory opened
 * read-only (its current generation's features, thresholds and model; no
 * archive writer, no live state: nothing in DIR is written); without, an
 * in-memory db with no generation and no live state, so only the
 * transaction's own fields are present. Returns 0 or EXIT_USAGE (printed).
 */
static int
tool_explain_db(const char *data, store_db **ret_db)
{
	store_db_opts o;
	store_diag    d = { .msg = "" };
	struct stat   st;
	vigil_err     rv;

	store_db_opts_default(&o);
	o.read_only = true;
	if (data == NULL) {
		rv = store_db_new_memory(&o, ret_db);
		if (rv != VIGIL_OK) {
			fprintf(stderr, "vigil-rules: in-memory store: %s\n", vigil_strerror(rv));
			return EXIT_USAGE;
		}
		return 0;
	}
	if (stat(data, &st) != 0) {
		fprintf(stderr, "vigil-rules: --data %s: %s\n", data, strerror(errno));
		return EXIT_USAGE;
	}
	if (!S_ISDIR(st.st_mode)) {
		fprintf(stderr, "vigil-rules: --data %s: not a directory\n", data);
		return EXIT_USAGE;
	}
	/* vigild makes archive/ when it starts, vigil-rebuild features/: a
	 * directory with neither is a mistyped path, not "no generation yet" */
	if (!tool_has_subdir(data, "features") && !tool_has_subdir(data, "archive")) {
		fprintf(stderr, "vigil-rules: --data %s: not a vigild data directory (no features/ "
		    "or archive/ in it)\n", data);
		return EXIT_USAGE;
	}
	rv = store_db_open(data, &o, ret_db, NULL, &d);
	if (rv != VIGIL_OK) {
		fprintf(stderr, "vigil-rules: --data %s: %s\n", data,
		    d.msg[0] != '\0' ? d.msg : vigil_strerror(rv));
		return EXIT_USAGE;
	}
	return 0;
}

static int
cmd_explain(int argc, char **argv, const rules_schema *schema)
{
	static const struct option longopts[] = {
		VIGIL_CLI_JSON, VIGIL_CLI_TXN, VIGIL_CLI_DATA, VIGIL_CLI_HELP, { NULL, 0, NULL, 0 },
	};
	bool          json = false;
	const char   *txnarg = NULL, *data = NULL;
	int           c, status = 0;
	rules_prog   *prog = NULL;
	app_rules    *ar = NULL;
	app_model    *model = NULL;
	app_work     *aw = NULL;
	store_db     *db = NULL;
	rules_tvals  *tv = NULL;
	rules_diags   diags;
	char         *src = NULL, *input = NULL;
	size_t        len = 0;
	json_t       *obj = NULL, *jf;
	json_error_t  jerr;
	vigil_value  *features = NULL;
	uint32_t      nfeatures = rules_schema_nslots(schema);
	vigil_txn     txn;
	app_scorer    scorer;
	app_outcome  *ao = NULL;
	tool_scored   sc = { 0 };
	char          err[512];
	vigil_err     rv;

	while ((c = getopt_long(argc, argv, "jt:d:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'j': json = true; break;
		case 't': txnarg = optarg; break;
		case 'd': data = optarg; break;
		case 'h': return tool_help(explain_usage);
		default: return vigil_cli_bad_option("vigil-rules explain", argv);
		}
	}
	if (optind + 1 != argc || txnarg == NULL)
		return vigil_cli_usage_error("vigil-rules explain", "give one FILE and --txn JSON");
	status = tool_compile(argv[optind], schema, &prog, &diags, &src, &len);
	if (status == TOOL_BAD_RULES) {
		rules_diags_print(&diags, src, len, stderr);
		status = EXIT_USAGE;
	}
	if (status != 0)
		goto out;
	rv = app_rules_new(prog, &ar, err, sizeof err); /* takes prog */
	prog = NULL;
	if (rv != VIGIL_OK) {
		fprintf(stderr, "%s: error: %s\n", argv[optind], err);
		status = rv == VIGIL_ENOMEM ? EXIT_USAGE : EXIT_FINDINGS;
		goto out;
	}
	if (txnarg[0] == '@' || strcmp(txnarg, "-") == 0) {
		size_t ilen;

		tool_read_flag = "--txn";
		input = tool_read(txnarg[0] == '@' ? txnarg + 1 : "-", &ilen);
		tool_read_flag = NULL;
		if (input == NULL) {
			status = EXIT_USAGE;
			goto out;
		}
		obj = json_loadb(input, ilen, JSON_REJECT_DUPLICATES, &jerr);
	} else {
		obj = json_loads(txnarg, JSON_REJECT_DUPLICATES, &jerr);
	}
	if (obj == NULL) {
		char where[4200];

		if (txnarg[0] == '@' || strcmp(txnarg, "-") == 0)
			fprintf(stderr, "vigil-rules: --txn %s: %s\n", vigil_json_err_where(txnarg[0] ==
			    '@' ? txnarg + 1 : "-", &jerr, where, sizeof where), jerr.text);
		else
			fprintf(stderr, "vigil-rules: %s: %s\n", vigil_json_err_where("--txn", &jerr,
			    where, sizeof where), jerr.text);
		status = EXIT_USAGE;
		goto out;
	}
	/* --txn takes the one transaction shape of every program (vigil-score,
	 * /v1/score): the transaction itself, or {"txn": {...}, "features":
	 * {...}, "thresholds": {...}} to give features and thresholds too */
	if (json_is_object(obj) && json_object_get(obj, "txn") == NULL) {
		json_t *env = json_pack("{s:o}", "txn", obj);

		obj = env;
		if (obj == NULL) {
			fprintf(stderr, "vigil-rules: out of memory\n");
			status = EXIT_USAGE;
			goto out;
		}
	}
	/* a misspelt "features" would drop the values and explain another case */
	if (tool_keys_check(obj, tool_input_keys, NULL, err, sizeof err) != 0) {
		fprintf(stderr, "vigil-rules: --txn: %s\n", err);
		status = EXIT_USAGE;
		goto out;
	}
	status = tool_explain_db(data, &db);
	if (status != 0)
		goto out;
	/* the thresholds the generation tuned (fallbacks without one), then
	 * the input's on top */
	rv = app_tvals_from_db(ar->prog, db, &tv);
	features = calloc(nfeatures + 1, sizeof *features);
	ao = malloc(sizeof *ao);
	aw = app_work_new(db);
	if (rv != VIGIL_OK || features == NULL || ao == NULL || aw == NULL) {
		fprintf(stderr, "vigil-rules: %s\n", vigil_strerror(rv != VIGIL_OK ? rv : VIGIL_ENOMEM));
		status = EXIT_USAGE;
		goto out;
	}
	if (tool_input(obj, ar->prog, &txn, features, nfeatures, tv, err, sizeof err) != 0) {
		fprintf(stderr, "vigil-rules: --txn: %s\n", err);
		status = EXIT_USAGE;
		goto out;
	}
	jf = json_object_get(obj, "features");
	sc.data = data;
	sc.generation = store_db_generation(db);
	sc.as_of_ms = store_db_generation_as_of(db);
	/* a model.score the input gives is the score rules read: the model is
	 * not run over it */
	sc.model_given = json_object_get(jf, "model.score") != NULL;
	if (data != NULL && !sc.model_given &&
	    app_model_from_db(db, &model, NULL, err, sizeof err) != VIGIL_OK) {
		fprintf(stderr, "vigil-rules: --data %s: %s\n", data, err);
		status = EXIT_USAGE;
		goto out;
	}
	sc.model_run = model != NULL;
	sc.model = model;
	scorer = (app_scorer){ .rules = ar, .tv = tv, .model = model, .amend = tool_amend,
		.amend_arg = jf };
	rv = app_score(db, aw, &scorer, &txn, APP_DRY_RUN | APP_ALL_REASONS, vigil_now_ms(), ao);
	if (rv != VIGIL_OK) {
		fprintf(stderr, "vigil-rules: scoring failed at %s: %s\n",
		    ao->step == APP_STEP_RULES ? "the rules" : ao->step == APP_STEP_MODEL ? "the model"
		    : "the features", vigil_strerror(rv));
		status = EXIT_USAGE;
		goto out;
	}
	sc.ao = ao;
	if (json) {
		json_t *doc = tool_explain_json(argv[optind], ar->prog, tv, &sc);

		if (doc == NULL) {
			fprintf(stderr, "vigil-rules: out of memory\n");
			status = EXIT_USAGE;
			goto out;
		}
		json_dumpf(doc, stdout, JSON_INDENT(2));
		fputc('\n', stdout);
		json_decref(doc);
	} else {
		tool_explain_print(ar->prog, tv, &sc, stdout);
	}
out:
	json_decref(obj);
	free(features);
	free(ao);
	rules_tvals_free(tv);
	app_work_free(aw);
	app_model_free(model);
	store_db_close(db);
	app_rules_free(ar);
	rules_prog_free(prog);
	free(src);
	free(input);
	return status;
}

/* ---- test ---- */

/*
 * Options may come before the command, as git and systemctl take them
 * (`vigil-rules --json check f`): the command word moves to argv[1] and
 * the options before it follow it, so that the command's getopt sees them
 * (and, permuting, those after its files too: `check f --json`). The word
 * after an option that takes a value (-t/--txn, -d/--data) is that value,
 * not the command. --help and --version first are left where they are.
 */
static void
tool_command_first(int argc, char **argv)
{
	int i = 1;

	while (i < argc && argv[i][0] == '-' && argv[i][1] != '\0') {
		const char *a = argv[i];

		if (strcmp(a, "--") == 0 || strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0 ||
		    strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0)
			return;
		if (strcmp(a, "-t") == 0 || strcmp(a, "--txn") == 0 || strcmp(a, "-d") == 0 ||
		    strcmp(a, "--data") == 0)
			i++;
		i++;
	}
	if (i == 1 || i >= argc)
		return;
	/* rotate argv[1..i] right by one: the command first */
	{
		char *word = argv[i];

		memmove(&argv[2], &argv[1], (size_t)(i - 1) * sizeof argv[0]);
		argv[1] = word;
	}
}

int
main(int argc, char **argv)
{
	rules_schema *schema = NULL;
	const char   *cmd;
	int           status;
	vigil_err     rv;

	if (argc < 2)
		return vigil_cli_usage_error("vigil-rules", "no command given (check, fmt, explain, "
		    "test or features)");
	tool_command_first(argc, argv);
	cmd = argv[1];
	opterr = 0;
	if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0)
		return tool_help(tool_usage);
	if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0) {
		vigil_cli_version(stdout, "vigil-rules");
		return 0;
	}
	if (strcmp(cmd, "features") == 0)
		return vigil_cli_stdout_status("vigil-rules", cmd_features(argc - 1, argv + 1));
	if (strcmp(cmd, "check") != 0 && strcmp(cmd, "fmt") != 0 && strcmp(cmd, "explain") != 0 &&
	    strcmp(cmd, "test") != 0) {
		return vigil_cli_usage_error("vigil-rules", "unknown command '%s'", cmd);
	}
	rv = app_rules_schema(&schema);
	if (rv != VIGIL_OK) {
		fprintf(stderr, "vigil-rules: cannot build the feature schema: %s\n", vigil_strerror(rv));
		return EXIT_USAGE;
	}
	argc--;
	argv++;
	if (strcmp(cmd, "check") == 0)
		status = cmd_check(argc, argv, schema);
	else if (strcmp(cmd, "fmt") == 0)
		status = cmd_fmt(argc, argv);
	else if (strcmp(cmd, "explain") == 0)
		status = cmd_explain(argc, argv, schema);
	else
		status = cmd_test(argc, argv, schema);
	rules_schema_free(schema);
	return vigil_cli_stdout_status("vigil-rules", status);
}
