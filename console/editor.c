/* SPDX-License-Identifier: MIT */
/*
 * console/editor.c - the rule file as analysts edit it (docs/console.md,
 * "Rules"): what is loaded, how each rule did over the last days (from the
 * index) and the thresholds it compares against (the current generation's
 * values, and why one kept its fallback), a mode toggle that rewrites a
 * rule's mode clause, the diff shown before Deploy, four eyes
 * (--deploy-approvers 2: a proposal another analyst approves), a check
 * that compiles an edited text exactly as vigild would
 * (rules_compile against app/'s schema, list files resolved next to the
 * deployed file), a deploy guarded by the hash the edit started from,
 * versions kept under STATE/rules for roll-back, and the blocked-cards
 * list. The back-test is backtest.c's.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <sys/queue.h>
#include <event2/keyvalq_struct.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <libgen.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "app.h"
#include "console.h"
#include "editor.h"
#include "http.h"
#include "evconn.h"
#include "rules.h"
#include "vigil_json.h"

#define RULES_TEXT_MAX   (1u << 20)

struct con_rulestate {
	char          dir[4096];      /* of the deployed file: list files resolve here */
	char          base[256];      /* its file name */
	char          vdir[4096];     /* STATE/rules */
	rules_schema *schema;
	rules_prog   *prog;           /* compiled current file, for reasons */
	char          prog_hash[33];
};

/* ---- helpers ---- */

static vigil_err
edit_read_current(con_app *app, char **ret_text, size_t *ret_len, char ret_hash[33])
{
	vigil_err rv = con_file_read(app->o.rules, RULES_TEXT_MAX, ret_text, ret_len);

	if (rv == VIGIL_OK)
		con_hash_hex(*ret_text, *ret_len, ret_hash);
	return rv;
}

static vigil_err
edit_compile_text(con_rulestate *rs, const char *text, size_t len, rules_prog **ret_prog,
    rules_diags *ret_diags)
{
	rules_opts o = { .base_dir = rs->dir };

	memset(ret_diags, 0, sizeof *ret_diags);
	return rules_compile(rs->base, text, len, rs->schema, &o, ret_prog, ret_diags);
}

/* The source line n (1-based) of text, into buf. */
static void
edit_line(const char *text, size_t len, uint32_t n, char *buf, size_t buflen)
{
	const char *p = text, *end = text + len;

	buf[0] = '\0';
	for (uint32_t i = 1; i < n && p < end; i++) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			return;
		p = nl + 1;
	}
	if (p >= end)
		return;
	const char *nl = memchr(p, '\n', (size_t)(end - p));
	size_t l = (size_t)((nl != NULL ? nl : end) - p);
	if (l >= buflen)
		l = buflen - 1;
	memcpy(buf, p, l);
	buf[l] = '\0';
	vigil_utf8_line(buf);
}

static json_t *
edit_diags_json(const rules_diags *d, const char *text, size_t len)
{
	json_t *arr = json_array();

	for (uint32_t i = 0; i < d->count; i++) {
		char src[256], where[300];
		const rules_diag *e = &d->items[i];
		edit_line(text, len, e->line, src, sizeof src);
		snprintf(where, sizeof where, "%s:%u:%u: %s", d->file, e->line, e->col, e->msg);
		json_array_append_new(arr, json_pack("{s:i, s:i, s:s, s:s, s:s}", "line", (int)e->line,
		    "col", (int)e->col, "message", e->msg, "where", where, "source", src));
	}
	return arr;
}

static void
edit_send_diags(struct evhttp_request *req, const rules_diags *d, const char *text, size_t len)
{
	json_t *errs = edit_diags_json(d, text, len);
	json_t *o = con_error_body(422, "text", "%s", d->count > 0 ? d->items[0].msg :
	    "does not compile");
	json_t *where = json_object_get(json_object_get(o, "error"), "where");

	/* the first error's place in the text, as where.line and column */
	if (d->count > 0 && d->items[0].line > 0) {
		json_object_set_new(where, "line", json_integer(d->items[0].line));
		if (d->items[0].col > 0)
			json_object_set_new(where, "column", json_integer(d->items[0].col));
	}
	json_object_set_new(o, "ok", json_false());
	json_object_set_new(o, "errors", errs);
	json_object_set_new(o, "dropped", json_integer((json_int_t)d->dropped));
	con_send_json(req, 422, o);
}

/* Reads {"text": "..."} (and the other keys allowed) from the body. */
static json_t *
edit_body(struct evhttp_request *req, const char *const *allowed, const char **ret_text,
    size_t *ret_len)
{
	json_t *b = con_body_json_keys(req, allowed), *t;

	if (b == NULL)
		return NULL;
	if (ret_text != NULL) {
		t = json_object_get(b, "text");
		if (!json_is_string(t)) {
			con_send_error(req, 400, "text", "the rule file's text (a string) is required");
			json_decref(b);
			return NULL;
		}
		*ret_text = json_string_value(t);
		*ret_len = json_string_length(t);
		if (*ret_len > RULES_TEXT_MAX) {
			con_send_error(req, 413, "text", "over %u bytes", RULES_TEXT_MAX);
			json_decref(b);
			return NULL;
		}
	}
	return b;
}

/* ---- versions (STATE/rules/NNNNNN.rules + versions.jsonl) ---- */

/*
 * STATE/rules/versions.jsonl, the history of deployed versions: a JSON
 * object a line, each with its "version" (1 to 999999) and a newline.
 * *ret_vs: an array of every line that loads, whatever is answered (the
 * listing shows them), to json_decref; *ret_next: the number the next
 * version takes, 1 + the highest. VIGIL_OK: each line loads, or there is
 * no file. Otherwise the file cannot be read, or a line does not parse,
 * is no version record or is cut short (no newline): *reterr_ei says the
 * first (the file, line:col) and nothing that numbers a version may run,
 * since a short history numbers the next one as an existing version.
 * Said once in the log until it loads again.
 */
static vigil_err
edit_versions_load(con_rulestate *rs, json_t **ret_vs, int *ret_next, vigil_errinfo *reterr_ei)
{
	static bool said;
	char path[4200], *buf = NULL;
	size_t len = 0;
	uint32_t line = 0;
	json_int_t next = 1, v;
	json_error_t jerr;
	json_t *o;
	vigil_err rv;

	*ret_vs = json_array();
	snprintf(path, sizeof path, "%s/versions.jsonl", rs->vdir);
	rv = con_file_read(path, 64u << 20, &buf, &len);
	if (rv == VIGIL_ENOTFOUND)
		rv = VIGIL_OK;
	else if (rv != VIGIL_OK)
		vigil_errinfo_set(reterr_ei, NULL, "cannot read the rule versions: %s",
		    rv == VIGIL_ETOOBIG ? "over 64 MiB" : vigil_strerror(rv));
	for (char *p = buf, *nl; buf != NULL && p < buf + len; p = nl + 1) {
		vigil_errinfo le;

		line++;
		nl = memchr(p, '\n', (size_t)(buf + len - p));
		o = json_loadb(p, (size_t)((nl != NULL ? nl : buf + len) - p), 0, &jerr);
		v = json_integer_value(json_object_get(o, "version"));
		if (o == NULL)
			vigil_errinfo_set(&le, NULL, "a rule version does not parse: %s", jerr.text);
		else if (!json_is_object(o) || v < 1 || v > 999999)
			vigil_errinfo_set(&le, NULL, "not a rule version (an object with its "
			    "\"version\", 1 to 999999)");
		else if (nl == NULL)
			vigil_errinfo_set(&le, NULL, "a rule version cut short (no newline)");
		else {
			next = v >= next ? v + 1 : next;
			json_array_append_new(*ret_vs, o);
			continue;
		}
		if (rv == VIGIL_OK) { /* the first one is said */
			le.line = line;
			le.col = o == NULL && jerr.column > 0 ? (uint32_t)jerr.column : 0;
			*reterr_ei = le;
			rv = VIGIL_EINVAL;
		}
		json_decref(o);
		if (nl == NULL)
			break;
	}
	free(buf);
	*ret_next = (int)next;
	if (rv != VIGIL_OK)
		con_say_once(&said, "rules", reterr_ei, path, "deploys and roll-backs are refused until "
		    "it is repaired");
	else
		said = false;
	return rv;
}
/*
 * Takes back version n, which edit_version_save just made: versions.jsonl
 * cut back to hist_size bytes, what it held before (-1: not appended to),
 * then n's file removed. A history that cannot be cut keeps the file it
 * lists.
 */
static void
edit_version_unsave(con_rulestate *rs, int n, off_t hist_size)
{
	char path[4200];

	snprintf(path, sizeof path, "%s/versions.jsonl", rs->vdir);
	if (hist_size >= 0 && truncate(path, hist_size) != 0) {
		fprintf(stderr, "vigil-console: rules: %s: cannot take version %d back: %s\n", path,
		    n, strerror(errno));
		return;
	}
	snprintf(path, sizeof path, "%s/%06d.rules", rs->vdir, n);
	if (unlink(path) != 0 && errno != ENOENT)
		fprintf(stderr, "vigil-console: rules: %s: %s\n", path, strerror(errno));
}

/*
 * Saves text as the next version; *ret_version its number and
 * *ret_hist_size the history's size before it (edit_version_unsave). A
 * history that does not load numbers nothing, and a version file is never
 * written over (VIGIL_EEXIST: the history and the files disagree):
 * *reterr_ei says why. A failed append takes the version's file back.
 */
static vigil_err
edit_version_save(con_rulestate *rs, const char *text, size_t len, const char *hash,
    const char *who, const char *action, const char *message, int *ret_version,
    off_t *ret_hist_size, vigil_errinfo *reterr_ei)
{
	json_t *vs, *o;
	char path[4200], ts[32], err[4400], *line;
	struct stat st;
	ssize_t w = -1;
	int n, fd;
	vigil_err rv;

	rv = edit_versions_load(rs, &vs, &n, reterr_ei);
	json_decref(vs);
	if (rv != VIGIL_OK)
		return rv;
	snprintf(path, sizeof path, "%s/%06d.rules", rs->vdir, n);
	rv = con_file_write_new(path, text, len, err, sizeof err);
	if (rv == VIGIL_EEXIST) {
		vigil_errinfo_set(reterr_ei, NULL, "version %d exists though versions.jsonl does "
		    "not list it: not written over (remove it if it was never deployed, else "
		    "list it in versions.jsonl)", n);
		snprintf(reterr_ei->file, sizeof reterr_ei->file, "%.*s",
		    (int)sizeof reterr_ei->file - 1, path);
		fprintf(stderr, "vigil-console: rules: %s\n", vigil_errinfo_format(reterr_ei, err,
		    sizeof err));
	} else if (rv != VIGIL_OK) {
		vigil_errinfo_set(reterr_ei, NULL, "%s", err);
	}
	if (rv != VIGIL_OK)
		return rv;
	vigil_time_format_rfc3339(vigil_now_ms(), ts, sizeof ts);
	o = json_pack("{s:i, s:s, s:s, s:s, s:s, s:s}", "version", n, "hash", hash, "who", who,
	    "at", ts, "action", action, "message", message != NULL ? message : "");
	line = o != NULL ? json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
	json_decref(o);
	if (line == NULL)
		return VIGIL_ENOMEM;
	snprintf(path, sizeof path, "%s/versions.jsonl", rs->vdir);
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	size_t l = strlen(line);
	line[l++] = '\n';
	/* its size before the line: what edit_version_unsave cuts back to */
	*ret_hist_size = fd >= 0 && fstat(fd, &st) == 0 ? st.st_size : -1;
	if (*ret_hist_size < 0 || (w = write(fd, line, l)) != (ssize_t)l || fdatasync(fd) != 0) {
		vigil_errinfo_set(reterr_ei, NULL, "%s: %s", path,
		    w >= 0 && w < (ssize_t)l ? "short write (file system full?)" : strerror(errno));
		rv = VIGIL_EIO;
	}
	if (fd >= 0)
		close(fd);
	free(line);
	*ret_version = n;
	/* Not in the history: its file goes, or it would refuse every deploy
	 * after this one (VIGIL_EEXIST above). */
	if (rv != VIGIL_OK)
		edit_version_unsave(rs, n, *ret_hist_size);
	return rv;
}

static const char *
edit_latest_hash(json_t *vs)
{
	json_t *last = json_array_get(vs, json_array_size(vs) - 1);
	return last != NULL ? json_string_value(json_object_get(last, "hash")) : NULL;
}


vigil_err
con_rules_init(con_app *app, char *errbuf, size_t errlen)
{
	con_rulestate *rs = calloc(1, sizeof *rs);
	char tmp[4096], hash[33], *text = NULL;
	size_t len;
	json_t *vs;
	vigil_errinfo ei;
	vigil_err rv;
	off_t hist_size;
	int v;

	if (rs == NULL)
		return VIGIL_ENOMEM;
	app->rs = rs;
	snprintf(tmp, sizeof tmp, "%s", app->o.rules);
	snprintf(rs->dir, sizeof rs->dir, "%s", dirname(tmp));
	snprintf(tmp, sizeof tmp, "%s", app->o.rules);
	snprintf(rs->base, sizeof rs->base, "%s", basename(tmp));
	snprintf(rs->vdir, sizeof rs->vdir, "%s/rules", app->o.state);
	if (getenv("VIGIL_CONSOLE_KEEP_BACKTEST") == NULL)
		con_backtest_prune(app);
	if (mkdir(rs->vdir, 0750) != 0 && errno != EEXIST) {
		snprintf(errbuf, errlen, "%s: %s", rs->vdir, strerror(errno));
		return vigil_err_from_errno(errno);
	}
	rv = app_rules_schema(&rs->schema);
	if (rv != VIGIL_OK) {
		snprintf(errbuf, errlen, "rules schema: %s", vigil_strerror(rv));
		return rv;
	}
	rv = edit_read_current(app, &text, &len, hash);
	if (rv != VIGIL_OK) {
		snprintf(errbuf, errlen, "%s: %s", app->o.rules, vigil_strerror(rv));
		return rv;
	}
	/* the file as found is a version: roll-back can return to it. A
	 * history that does not load, or a version file in the way, is logged
	 * and the console runs on: deploys are refused until it is repaired */
	const char *latest = edit_versions_load(rs, &vs, &v, &ei) == VIGIL_OK ?
	    edit_latest_hash(vs) : hash;

	if (latest == NULL || strcmp(latest, hash) != 0)
		rv = edit_version_save(rs, text, len, hash, "-", "found", "the file as the console "
		    "found it at start", &v, &hist_size, &ei);
	if (rv == VIGIL_EEXIST)
		rv = VIGIL_OK;
	else if (rv != VIGIL_OK)
		snprintf(errbuf, errlen, "%s", ei.msg);
	json_decref(vs);
	free(text);
	return rv;
}

void
con_rules_fini(con_app *app)
{
	if (app->rs == NULL)
		return;
	rules_prog_free(app->rs->prog);
	rules_schema_free(app->rs->schema);
	free(app->rs);
	app->rs = NULL;
}

/* The compiled current file (recompiled when its text changed). */
static const rules_prog *
edit_current_prog(con_app *app)
{
	con_rulestate *rs = app->rs;
	char hash[33], *text = NULL;
	size_t len;
	rules_diags d;
	rules_prog *p = NULL;

	if (edit_read_current(app, &text, &len, hash) != VIGIL_OK)
		return rs->prog;
	if (rs->prog == NULL || strcmp(hash, rs->prog_hash) != 0) {
		if (edit_compile_text(rs, text, len, &p, &d) == VIGIL_OK) {
			rules_prog_free(rs->prog);
			rs->prog = p;
			snprintf(rs->prog_hash, sizeof rs->prog_hash, "%s", hash);
		}
	}
	free(text);
	return rs->prog;
}

vigil_err
con_rules_rule_info(con_app *app, const char *name, const char **ret_reason, int32_t *ret_points)
{
	const rules_prog *p = edit_current_prog(app);
	rules_rule_info ri;
	uint32_t i;

	if (p == NULL || name == NULL || rules_prog_rule_find(p, name, &i) != VIGIL_OK)
		return VIGIL_ENOTFOUND;
	rules_prog_rule(p, i, &ri);
	*ret_reason = ri.reason;
	*ret_points = ri.points;
	return VIGIL_OK;
}

/* ---- GET /api/rules ---- */

typedef struct edit_stat_ctx {
	con_app *app;
	json_t  *by_name; /* name -> {hits, fraud, legit} */
	con_stat total;
} edit_stat_ctx;

static void
edit_stat_each(void *arg, uint16_t rule, const con_stat *st)
{
	edit_stat_ctx *c = arg;
	const char *name;

	if (rule == CON_STAT_TOTAL) {
		c->total = *st;
		return;
	}
	name = con_index_rule_name(c->app->ix, rule);
	if (name == NULL || st->n == 0)
		return;
	json_object_set_new(c->by_name, name, json_pack("{s:I, s:I, s:I}", "hits", (json_int_t)st->n,
	    "fraud", (json_int_t)st->fraud, "legit", (json_int_t)st->legit));
}

static json_t *
edit_ratio(uint64_t a, uint64_t b)
{
	return b > 0 ? json_real((double)a / (double)b) : json_null();
}

/* ?days=N of GET /api/rules (1-365; def without it). *ret_ok false: it
 * replied 400. */
static uint32_t
edit_days_param(struct evhttp_request *req, uint32_t def, bool *ret_ok)
{
	struct evkeyvalq kv;
	const struct evkeyval *e;
	uint32_t days = def;

	*ret_ok = false;
	if (!con_query_parse(req, &kv))
		return 0; /* replied */
	TAILQ_FOREACH(e, &kv, next) {
		char *end;
		unsigned long n = strtoul(e->value, &end, 10);

		if (strcmp(e->key, "days") != 0 || !isdigit((unsigned char)e->value[0]) ||
		    *end != '\0' || n < 1 || n > 365) {
			if (strcmp(e->key, "days") != 0)
				con_send_error(req, 400, e->key, "unknown parameter (days)");
			else
				con_send_error(req, 400, "days", "1-365");
			evhttp_clear_headers(&kv);
			return 0;
		}
		days = (uint32_t)n;
	}
	evhttp_clear_headers(&kv);
	*ret_ok = true;
	return days;
}

static vigil_err edit_proposal_load(con_rulestate *rs, json_t **ret_pr,
    vigil_errinfo *reterr_ei);
static json_t *edit_proposal_summary(const json_t *pr);

/* ---- the thresholds a rule compares against (GET /api/rules) ---- */

static const char *
edit_tune_kind_name(rules_tune_kind k)
{
	switch (k) {
	case RULES_TUNE_PERCENTILE: return "percentile";
	case RULES_TUNE_ALERT_RATE: return "alert_rate";
	case RULES_TUNE_PRECISION:  return "precision";
	default:                    return "constant";
	}
}

static void
edit_thr_each(void *arg, const char *name, const char *group, const store_threshold_val *v)
{
	json_t *by = arg;

	if (group[0] != '\0') /* per-group values: the page shows the global one */
		return;
	json_object_set_new(by, name, json_pack("{s:o, s:b, s:I}", "value", isfinite(v->value) ?
	    json_real(v->value) : json_null(), "tuned", v->tuned, "samples", (json_int_t)v->samples));
}

/*
 * The global values the current generation holds, by threshold name, with
 * the rebuild summary's "why" for those that kept their fallback; empty
 * without a generation.
 */
static json_t *
edit_gen_thresholds(con_app *app, uint64_t *ret_gen)
{
	store_gen *g = con_gen_current(app);
	json_t *by = json_object(), *sum, *e;
	store_gen_meta m;
	size_t i;

	*ret_gen = 0;
	if (g == NULL)
		return by;
	*ret_gen = app->gen_no;
	(void)store_gen_thresholds_each(g, edit_thr_each, by);
	if (store_gen_meta_get(g, &m) != VIGIL_OK)
		return by;
	sum = json_loads(m.summary_json, 0, NULL);
	json_array_foreach(json_object_get(sum, "thresholds"), i, e) {
		const char *name = json_string_value(json_object_get(e, "name"));
		json_t *why = json_object_get(e, "why"), *t;
		if (name != NULL && json_is_string(why) && (t = json_object_get(by, name)) != NULL)
			json_object_set(t, "why", why);
	}
	json_decref(sum);
	return by;
}

/*
 * Whether the rule text at path is UTF-8, which JSON strings and the page
 * need (the rules language takes any byte in a comment); if not, answers
 * 500 naming the file, line and column of the first byte that is not, and
 * returns false.
 */
static bool
edit_text_utf8(struct evhttp_request *req, const char *path, const char *text, size_t len)
{
	uint32_t line = 1, col = 1;
	vigil_errinfo ei;

	for (size_t i = 0; i < len;) {
		size_t n = vigil_utf8_seq(text + i, len - i);

		if (n == 0) {
			vigil_errinfo_set(&ei, NULL, "byte 0x%02X is not UTF-8: the console shows and "
			    "edits UTF-8 text only (convert the file, e.g. iconv -f latin1 -t utf-8)",
			    (unsigned)(unsigned char)text[i]);
			snprintf(ei.file, sizeof ei.file, "%.*s", (int)sizeof ei.file - 1, path);
			ei.line = line;
			ei.col = col;
			con_send_json(req, 500, vigil_error_body("INTERNAL", &ei));
			return false;
		}
		if (text[i] == '\n') {
			line++;
			col = 1;
		} else {
			col++;
		}
		i += n;
	}
	return true;
}

/* What rule i compares against: each threshold its condition reads, its
 * declaration, and the value the current generation gives it. */
static json_t *
edit_rule_thresholds(const rules_prog *p, uint32_t i, json_t *gen_thr)
{
	rules_read reads[64];
	uint32_t n = rules_prog_rule_reads(p, i, reads, 64);
	json_t *arr = json_array();

	for (uint32_t k = 0; k < n && k < 64; k++) {
		rules_threshold_info ti;
		json_t *o, *g;

		if (!reads[k].threshold)
			continue;
		rules_prog_threshold(p, reads[k].index, &ti);
		o = json_pack("{s:s, s:s, s:f}", "name", ti.name, "kind",
		    edit_tune_kind_name(ti.kind), "fallback", ti.fallback);
		if (ti.kind == RULES_TUNE_CONST) {
			json_object_set_new(o, "value", json_real(ti.fallback));
			json_array_append_new(arr, o);
			continue;
		}
		json_object_set_new(o, "feature", json_string(ti.feature));
		json_object_set_new(o, "param", json_real(ti.param));
		json_object_set_new(o, "by", ti.group_by ? json_string(ti.group_by) : json_null());
		json_object_set_new(o, "min_samples", json_integer((json_int_t)ti.min_samples));
		g = json_object_get(gen_thr, ti.name);
		if (g != NULL) {
			json_object_update(o, g);
		} else {
			/* no generation has tuned it yet: the fallback is in force */
			json_object_set_new(o, "value", json_real(ti.fallback));
			json_object_set_new(o, "tuned", json_false());
			json_object_set_new(o, "why", json_string("no generation has a value for it "
			    "yet: the fallback is in force"));
		}
		json_array_append_new(arr, o);
	}
	return arr;
}

void
con_api_rules(con_app *app, struct evhttp_request *req, const con_user *who)
{
	con_rulestate *rs = app->rs;
	char hash[33], *text = NULL;
	size_t len;
	rules_diags d;
	rules_prog *p = NULL;
	con_tailpos pos;
	edit_stat_ctx sc = { app, json_object(), { 0 } };
	json_t *o, *rules, *vs, *gen_thr;
	uint64_t gen_no;
	uint32_t days;
	bool ok;
	vigil_err rv;

	(void)who;
	days = edit_days_param(req, 7, &ok);
	if (!ok) { /* replied */
		json_decref(sc.by_name);
		return;
	}
	rv = edit_read_current(app, &text, &len, hash);
	if (rv != VIGIL_OK) {
		con_send_error(req, 500, NULL, "%s: %s", app->o.rules, vigil_strerror(rv));
		json_decref(sc.by_name);
		return;
	}
	if (!edit_text_utf8(req, app->o.rules, text, len)) {
		free(text);
		json_decref(sc.by_name);
		return;
	}
	con_index_pos(app->ix, &pos);
	int64_t last_day = pos.max_event_ms > 0 ? pos.max_event_ms / VIGIL_MS_PER_DAY : 0;
	(void)con_index_stats(app->ix, last_day - days + 1, last_day, edit_stat_each, &sc);
	o = json_pack("{s:s, s:s, s:s%, s:i}", "path", app->o.rules, "hash", hash, "text", text, len,
	    "days", (int)days);
	json_object_set_new(o, "window", json_pack("{s:o, s:o}",
	    "from", last_day > 0 ? json_integer((last_day - days + 1) * VIGIL_MS_PER_DAY) : json_null(),
	    "to", last_day > 0 ? json_integer((last_day + 1) * VIGIL_MS_PER_DAY) : json_null()));
	json_object_set_new(o, "scored", json_integer((json_int_t)sc.total.n));
	json_object_set_new(o, "alerts", json_integer((json_int_t)sc.total.alerts));
	json_object_set_new(o, "alert_rate", edit_ratio(sc.total.alerts, sc.total.n));
	rules = json_array();
	gen_thr = edit_gen_thresholds(app, &gen_no);
	json_object_set_new(o, "generation", gen_no > 0 ? json_integer((json_int_t)gen_no) :
	    json_null());
	if (edit_compile_text(rs, text, len, &p, &d) == VIGIL_OK) {
		double review_at, decline_at, band_review, band_decline;
		rules_tvals *tv = NULL;

		rules_prog_bands(p, &review_at, &decline_at);
		/* the bands in force, as vigild gives them: a band named by a
		 * threshold takes the current generation's tuned value */
		if (app_tvals_from_gen(p, con_gen_current(app), &tv) == VIGIL_OK) {
			rules_prog_bands_in_force(p, tv, &band_review, &band_decline);
			rules_tvals_free(tv);
		} else {
			band_review = review_at;
			band_decline = decline_at;
		}
		json_object_set_new(o, "version", json_string(rules_prog_version(p)));
		json_object_set_new(o, "content_hash", json_string(rules_prog_hash(p)));
		json_object_set_new(o, "review_at", json_real(band_review));
		json_object_set_new(o, "decline_at", json_real(band_decline));
		json_object_set_new(o, "file_review_at", json_real(review_at));
		json_object_set_new(o, "file_decline_at", json_real(decline_at));
		json_object_set_new(o, "errors", json_array());
		for (uint32_t i = 0; i < rules_prog_nrules(p); i++) {
			rules_rule_info ri;
			json_t *st, *tags = json_array();
			rules_prog_rule(p, i, &ri);
			for (uint32_t t = 0; t < ri.ntags; t++)
				json_array_append_new(tags, json_string(ri.tags[t]));
			st = json_object_get(sc.by_name, ri.name);
			uint64_t hits = st ? (uint64_t)json_integer_value(json_object_get(st, "hits")) : 0;
			uint64_t fraud = st ? (uint64_t)json_integer_value(json_object_get(st, "fraud")) : 0;
			uint64_t legit = st ? (uint64_t)json_integer_value(json_object_get(st, "legit")) : 0;
			json_array_append_new(rules, json_pack("{s:s, s:i, s:s, s:s, s:o, s:i, s:b, s:I, "
			    "s:I, s:I, s:o}", "name", ri.name, "points", (int)ri.points,
			    "mode", rules_mode_name(ri.mode), "reason", ri.reason ? ri.reason : "",
			    "tags", tags, "line", (int)ri.line, "shadow", ri.mode == RULES_MODE_SHADOW,
			    "hits", (json_int_t)hits, "fraud", (json_int_t)fraud,
			    "labelled", (json_int_t)(fraud + legit),
			    "precision", edit_ratio(fraud, hits)));
			json_object_set_new(json_array_get(rules, i), "thresholds",
			    edit_rule_thresholds(p, i, gen_thr));
		}
		rules_prog_free(p);
	} else {
		json_object_set_new(o, "version", json_null());
		json_object_set_new(o, "errors", edit_diags_json(&d, text, len));
	}
	json_object_set_new(o, "rules", rules);
	json_decref(gen_thr);
	json_object_set_new(o, "approvers", json_integer((json_int_t)app->o.deploy_approvers));
	{
		json_t *pr = NULL, *ps, *pt;
		vigil_errinfo ei;

		if (edit_proposal_load(rs, &pr, &ei) != VIGIL_OK)
			json_object_set_new(o, "proposal_error", vigil_error_json("INTERNAL", &ei));
		ps = edit_proposal_summary(pr);
		pt = json_object_get(pr, "text");

		if (json_is_string(pt))
			json_object_set_new(ps, "diff", con_diff_lines(text, len, json_string_value(pt),
			    json_string_length(pt)));
		json_object_set_new(o, "proposal", ps);
		json_decref(pr);
	}
	{
		vigil_errinfo ei;
		int next;

		if (edit_versions_load(rs, &vs, &next, &ei) != VIGIL_OK)
			json_object_set_new(o, "versions_error", vigil_error_json("INTERNAL", &ei));
		json_object_set_new(o, "versions", json_integer((json_int_t)json_array_size(vs)));
		json_decref(vs);
	}
	json_decref(sc.by_name);
	free(text);
	con_send_json(req, 200, o);
}

/* ---- POST /api/rules/check ---- */

void
con_api_rules_check(con_app *app, struct evhttp_request *req, const con_user *who)
{
	static const char *const keys[] = { "text", NULL };
	const char *text;
	size_t len;
	rules_prog *p = NULL;
	rules_diags d;
	json_t *b;

	(void)who;
	b = edit_body(req, keys, &text, &len);
	if (b == NULL)
		return;
	if (edit_compile_text(app->rs, text, len, &p, &d) != VIGIL_OK) {
		edit_send_diags(req, &d, text, len);
	} else {
		char hash[33];
		con_hash_hex(text, len, hash);
		con_send_json(req, 200, json_pack("{s:b, s:s, s:i, s:s, s:s}", "ok", true,
		    "version", rules_prog_version(p), "rules", (int)rules_prog_nrules(p),
		    "hash", hash, "content_hash", rules_prog_hash(p)));
		rules_prog_free(p);
	}
	json_decref(b);
}

/* ---- deploy, roll-back ---- */

/* ---- POST /api/rules/diff, /api/rules/mode ---- */

/*
 * The line diff of the deployed file and an edited text, computed here (as
 * the audit log records it), for the page to show before Deploy.
 */
void
con_api_rules_diff(con_app *app, struct evhttp_request *req, const con_user *who)
{
	static const char *const keys[] = { "text", NULL };
	char cur_hash[33], new_hash[33], *cur = NULL;
	const char *text;
	size_t len, cur_len = 0, added = 0, removed = 0, i;
	json_t *b, *diff, *l;
	vigil_err rv;

	(void)who;
	b = edit_body(req, keys, &text, &len);
	if (b == NULL)
		return;
	rv = edit_read_current(app, &cur, &cur_len, cur_hash);
	if (rv != VIGIL_OK) {
		con_send_error(req, 500, NULL, "%s: %s", app->o.rules, vigil_strerror(rv));
		goto out;
	}
	con_hash_hex(text, len, new_hash);
	diff = con_diff_lines(cur, cur_len, text, len);
	json_array_foreach(diff, i, l) {
		const char *s = json_string_value(l);
		added += s != NULL && s[0] == '+';
		removed += s != NULL && s[0] == '-';
	}
	con_send_json(req, 200, json_pack("{s:s, s:s, s:b, s:I, s:I, s:o}", "base_hash", cur_hash,
	    "hash", new_hash, "changed", strcmp(cur_hash, new_hash) != 0, "added",
	    (json_int_t)added, "removed", (json_int_t)removed, "diff", diff));
out:
	free(cur);
	json_decref(b);
}

/*
 * {"text", "rule", "mode"}: the text with the rule's mode set (active,
 * shadow, disabled; promoting a shadow rule is setting it active), and the
 * diff against the deployed file. Nothing is written: the edit goes through
 * Check, Back-test and Deploy like any other.
 */
void
con_api_rules_mode(con_app *app, struct evhttp_request *req, const con_user *who)
{
	static const char *const keys[] = { "text", "rule", "mode", NULL };
	const char *text, *rule, *mode;
	char *out = NULL, *cur = NULL, cur_hash[33];
	size_t len, olen = 0, cur_len = 0;
	rules_prog *p = NULL, *q = NULL;
	rules_diags d;
	rules_rule_info ri;
	uint32_t i;
	json_t *b;
	vigil_err rv;

	(void)who;
	b = edit_body(req, keys, &text, &len);
	if (b == NULL)
		return;
	rule = json_string_value(json_object_get(b, "rule"));
	mode = json_string_value(json_object_get(b, "mode"));
	if (rule == NULL) {
		con_send_error(req, 400, "rule", "the rule's name is required");
		goto out;
	}
	if (mode == NULL || (strcmp(mode, "active") != 0 && strcmp(mode, "shadow") != 0 &&
	    strcmp(mode, "disabled") != 0)) {
		con_send_error(req, 400, "mode", "active, shadow or disabled");
		goto out;
	}
	if (edit_compile_text(app->rs, text, len, &p, &d) != VIGIL_OK) {
		edit_send_diags(req, &d, text, len);
		goto out;
	}
	if (rules_prog_rule_find(p, rule, &i) != VIGIL_OK) {
		con_send_error(req, 404, "rule", "rule %s: no such rule in the text", rule);
		goto out;
	}
	rules_prog_rule(p, i, &ri);
	rv = con_rules_set_mode(text, len, ri.line, mode, &out, &olen);
	if (rv == VIGIL_OK && edit_compile_text(app->rs, out, olen, &q, &d) == VIGIL_OK &&
	    rules_prog_rule_find(q, rule, &i) == VIGIL_OK) {
		rules_prog_rule(q, i, &ri);
		rv = strcmp(rules_mode_name(ri.mode), mode) == 0 ? VIGIL_OK : VIGIL_EINVAL;
	} else if (rv == VIGIL_OK) {
		rv = VIGIL_EINVAL;
	}
	if (rv != VIGIL_OK) {
		con_send_error(req, 422, "rule", "rule %s (line %u): its mode clause could not be "
		    "edited; edit the text", rule, ri.line);
		goto out;
	}
	if (edit_read_current(app, &cur, &cur_len, cur_hash) != VIGIL_OK) {
		cur = NULL;
		cur_len = 0;
	}
	con_send_json(req, 200, json_pack("{s:s%, s:s, s:s, s:o}", "text", out, olen, "rule", rule,
	    "mode", mode, "diff", con_diff_lines(cur != NULL ? cur : "", cur_len, out, olen)));
out:
	rules_prog_free(p);
	rules_prog_free(q);
	free(out);
	free(cur);
	json_decref(b);
}

/*
 * Deploys text over the file whose hash is base_hash and answers req; the
 * HTTP status it answered. proposed_by: the analyst who proposed it (four
 * eyes; who approves), NULL for a deploy by one analyst.
 */
static int
edit_deploy_text(con_app *app, struct evhttp_request *req, const con_user *who,
    const char *text, size_t len, const char *base_hash, const char *action,
    const char *message, int from_version, const char *proposed_by)
{
	con_rulestate *rs = app->rs;
	char cur_hash[33], new_hash[33], err[512], *cur = NULL;
	size_t cur_len = 0;
	rules_prog *p = NULL;
	rules_diags d;
	json_t *before, *after;
	int version = 0, status = 500;
	off_t hist_size = -1;
	vigil_errinfo ei;
	vigil_err rv;

	rv = edit_read_current(app, &cur, &cur_len, cur_hash);
	if (rv != VIGIL_OK) {
		con_send_error(req, 500, NULL, "%s: %s", app->o.rules, vigil_strerror(rv));
		return 500;
	}
	if (strcmp(cur_hash, base_hash) != 0) {
		json_t *o = con_error_body(409, "base_hash", "the rule file changed since this edit "
		    "started (base_hash is stale): reload, merge and try again");

		json_object_set_new(o, "current_hash", json_string(cur_hash));
		con_send_json(req, 409, o);
		status = 409;
		goto out;
	}
	if (edit_compile_text(rs, text, len, &p, &d) != VIGIL_OK) {
		edit_send_diags(req, &d, text, len);
		status = 422;
		goto out;
	}
	con_hash_hex(text, len, new_hash);
	if (strcmp(new_hash, cur_hash) == 0) {
		con_send_json(req, 200, json_pack("{s:b, s:s, s:s, s:b}", "ok", true, "hash", new_hash,
		    "content_hash", rules_prog_hash(p), "changed", false));
		status = 200;
		goto out;
	}
	rv = edit_version_save(rs, text, len, new_hash, who->name, action, message, &version,
	    &hist_size, &ei);
	if (rv != VIGIL_OK) {
		con_send_json(req, 500, vigil_error_body("INTERNAL", &ei));
		goto out;
	}
	rv = con_file_write_atomic(app->o.rules, text, len, err, sizeof err);
	if (rv != VIGIL_OK) {
		/* not deployed: not in the history of deployed versions either */
		edit_version_unsave(rs, version, hist_size);
		con_send_error(req, 500, NULL, "deploy: %s", err);
		goto out;
	}
	before = json_pack("{s:s}", "hash", cur_hash);
	after = json_pack("{s:s, s:s, s:i, s:o}", "hash", new_hash, "content_hash",
	    rules_prog_hash(p), "version", version, "diff", con_diff_lines(cur, cur_len, text, len));
	if (from_version > 0)
		json_object_set_new(after, "rolled_back_to", json_integer(from_version));
	if (message != NULL)
		json_object_set_new(after, "message", json_string(message));
	if (proposed_by != NULL) {
		json_object_set_new(after, "proposed_by", json_string(proposed_by));
		json_object_set_new(after, "approved_by", json_string(who->name));
	}
	if (con_audit_write(app->audit, who, action, app->o.rules, before, after) != VIGIL_OK) {
		con_send_error(req, 500, NULL, "deployed, but the audit log could not be written");
		goto out;
	}
	con_send_json(req, 200, json_pack("{s:b, s:s, s:s, s:i, s:s, s:b}", "ok", true, "hash",
	    new_hash, "content_hash", rules_prog_hash(p), "version", version, "rules_version",
	    rules_prog_version(p), "changed", true));
out:
	rules_prog_free(p);
	free(cur);
	return status;
}

/* ---- four eyes: --deploy-approvers 2 ---- */

/*
 * With --deploy-approvers 2 a deploy is a proposal, kept in
 * STATE/rules/proposal.json (one at a time: a new one replaces it) until an
 * analyst other than its author, with the role, approves it (it is then
 * deployed over the file it was proposed against) or one rejects it. The
 * author cannot approve their own. Roll-back stays one analyst's action:
 * it returns to a version that was deployed before.
 */
static void
edit_proposal_path(con_rulestate *rs, char *buf, size_t len)
{
	snprintf(buf, len, "%s/proposal.json", rs->vdir);
}

/*
 * The pending proposal. VIGIL_OK: *ret_pr the proposal, NULL when there is
 * none. Otherwise the file cannot be read or is no proposal (a JSON object
 * with its "hash"): *reterr_ei says where and what, *ret_pr is untouched.
 * Said once in the log until it loads again.
 */
static vigil_err
edit_proposal_load(con_rulestate *rs, json_t **ret_pr, vigil_errinfo *reterr_ei)
{
	static bool said;
	char path[4200];
	json_t *o = NULL;
	vigil_err rv;

	edit_proposal_path(rs, path, sizeof path);
	rv = con_json_file_load(path, 16u << 20, "the pending proposal", false, &o, reterr_ei);
	if (rv == VIGIL_ENOTFOUND) {
		rv = VIGIL_OK;
	} else if (rv == VIGIL_OK && !json_is_string(json_object_get(o, "hash"))) {
		vigil_errinfo_set(reterr_ei, NULL, "not a proposal (an object with its \"hash\")");
		rv = VIGIL_EINVAL;
	}
	if (rv != VIGIL_OK) {
		json_decref(o);
		con_say_once(&said, "rules", reterr_ei, path, "it cannot be approved; a new "
		    "proposal moves it to proposal.json.damaged");
		return rv;
	}
	said = false;
	*ret_pr = o;
	return VIGIL_OK;
}

/* The proposal as the page and the audit log show it: no text. */
static json_t *
edit_proposal_summary(const json_t *pr)
{
	if (pr == NULL)
		return json_null();
	return json_pack("{s:O, s:O, s:O, s:O, s:O}", "hash", json_object_get(pr, "hash"),
	    "base_hash", json_object_get(pr, "base_hash"), "proposed_by",
	    json_object_get(pr, "proposed_by"), "at", json_object_get(pr, "at"), "message",
	    json_object_get(pr, "message"));
}

static void
edit_propose(con_app *app, struct evhttp_request *req, const con_user *who, const char *text,
    size_t len, const char *base_hash, const char *message)
{
	con_rulestate *rs = app->rs;
	char cur_hash[33], new_hash[33], path[4200], aside[4300], ts[32], err[512], *cur = NULL;
	char *dump = NULL, *old = NULL;
	size_t cur_len = 0, old_len = 0;
	rules_prog *p = NULL;
	rules_diags d;
	json_t *prev = NULL, *pr = NULL, *prev_err = NULL, *diff, *after, *o;
	vigil_errinfo ei;
	vigil_err rv;

	rv = edit_read_current(app, &cur, &cur_len, cur_hash);
	if (rv != VIGIL_OK) {
		con_send_error(req, 500, NULL, "%s: %s", app->o.rules, vigil_strerror(rv));
		return;
	}
	if (strcmp(cur_hash, base_hash) != 0) {
		o = con_error_body(409, "base_hash", "the rule file changed since this edit "
		    "started (base_hash is stale): reload, merge and try again");
		json_object_set_new(o, "current_hash", json_string(cur_hash));
		con_send_json(req, 409, o);
		goto out;
	}
	if (edit_compile_text(rs, text, len, &p, &d) != VIGIL_OK) {
		edit_send_diags(req, &d, text, len);
		goto out;
	}
	con_hash_hex(text, len, new_hash);
	if (strcmp(new_hash, cur_hash) == 0) {
		con_send_json(req, 200, json_pack("{s:b, s:s, s:s, s:b}", "ok", true, "hash", new_hash,
		    "content_hash", rules_prog_hash(p), "changed", false));
		goto out;
	}
	edit_proposal_path(rs, path, sizeof path);
	snprintf(aside, sizeof aside, "%s.damaged", path);
	if (edit_proposal_load(rs, &prev, &ei) != VIGIL_OK) {
		/* a damaged draft is not written over unseen: kept aside, and said */
		if (rename(path, aside) != 0) {
			con_send_error(req, 500, NULL, "%s: %s", path, strerror(errno));
			goto out;
		}
		prev_err = vigil_error_json("INTERNAL", &ei);
		fprintf(stderr, "vigil-console: rules: the damaged proposal is kept as %s\n", aside);
	}
	vigil_time_format_rfc3339(vigil_now_ms(), ts, sizeof ts);
	pr = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s%}", "hash", new_hash, "base_hash", cur_hash,
	    "proposed_by", who->name, "at", ts, "message", message != NULL ? message : "",
	    "text", text, len);
	dump = pr != NULL ? json_dumps(pr, JSON_COMPACT) : NULL;
	/* the pending proposal's bytes, put back if this one is not recorded */
	if (prev != NULL && con_file_read(path, 16u << 20, &old, &old_len) != VIGIL_OK) {
		con_send_error(req, 500, NULL, "%s: cannot be read to replace it", path);
		goto out;
	}
	if (dump == NULL || con_file_write_atomic(path, dump, strlen(dump), err, sizeof err) !=
	    VIGIL_OK) {
		con_send_error(req, 500, NULL, "proposal: %s", dump == NULL ? "out of memory" : err);
		goto out;
	}
	diff = con_diff_lines(cur, cur_len, text, len);
	after = edit_proposal_summary(pr);
	json_object_set_new(after, "diff", json_incref(diff));
	if (con_audit_write(app->audit, who, "propose_rules", app->o.rules,
	    json_pack("{s:s, s:o, s:O*}", "hash", cur_hash, "proposal", edit_proposal_summary(prev),
	    "proposal_error", prev_err), after) != VIGIL_OK) {
		json_decref(diff);
		/* not proposed: what was pending is again */
		if (old != NULL)
			(void)con_file_write_atomic(path, old, old_len, err, sizeof err);
		else if (prev_err != NULL)
			(void)rename(aside, path);
		else
			(void)unlink(path);
		con_send_error(req, 500, NULL, "the audit log could not be written: not proposed");
		goto out;
	}
	o = edit_proposal_summary(pr);
	json_object_set_new(o, "diff", diff);
	con_send_json(req, 202, json_pack("{s:b, s:b, s:i, s:o, s:o, s:O*}", "ok", true, "pending",
	    true, "approvers", (int)app->o.deploy_approvers, "proposal", o, "replaced",
	    edit_proposal_summary(prev), "replaced_error", prev_err));
out:
	json_decref(prev_err);
	free(old);
	free(dump);
	json_decref(pr);
	json_decref(prev);
	rules_prog_free(p);
	free(cur);
}

static void
edit_propose_or_deploy(con_app *app, struct evhttp_request *req, const con_user *who,
    const char *text, size_t len, const char *base_hash, const char *message)
{
	if (app->o.deploy_approvers >= 2)
		edit_propose(app, req, who, text, len, base_hash, message);
	else
		(void)edit_deploy_text(app, req, who, text, len, base_hash, "deploy_rules", message,
		    0, NULL);
}

/* The pending proposal whose hash the body names, or an error answered. */
static json_t *
edit_proposal_named(con_app *app, struct evhttp_request *req, json_t *b)
{
	const char *hash = json_string_value(json_object_get(b, "hash"));
	json_t *pr = NULL;
	vigil_errinfo ei;

	if (hash == NULL) {
		con_send_error(req, 400, "hash", "the hash of the proposed text "
		    "(GET /api/rules: proposal) is required");
		return NULL;
	}
	if (edit_proposal_load(app->rs, &pr, &ei) != VIGIL_OK) {
		con_send_json(req, 500, vigil_error_body("INTERNAL", &ei));
		return NULL;
	}
	if (pr == NULL || !json_is_string(json_object_get(pr, "text")) ||
	    strcmp(hash, json_string_value(json_object_get(pr, "hash"))) != 0) {
		con_send_error(req, 404, "hash", "no pending proposal with hash %s", hash);
		json_decref(pr);
		return NULL;
	}
	return pr;
}

void
con_api_rules_approve(con_app *app, struct evhttp_request *req, const con_user *who)
{
	static const char *const keys[] = { "hash", NULL };
	json_t *b = edit_body(req, keys, NULL, NULL), *pr = NULL;
	const char *author, *base, *msg;
	char path[4200], hash[33], *text = NULL;
	size_t len;
	int status;

	if (b == NULL)
		return;
	if (app->o.deploy_approvers < 2) {
		con_send_error(req, 403, NULL, "turned off: deploys need no approval here "
		    "(--deploy-approvers 1)");
		goto out;
	}
	pr = edit_proposal_named(app, req, b);
	if (pr == NULL)
		goto out;
	author = json_string_value(json_object_get(pr, "proposed_by"));
	base = json_string_value(json_object_get(pr, "base_hash"));
	msg = json_string_value(json_object_get(pr, "message"));
	if (author == NULL || base == NULL) {
		con_send_error(req, 500, NULL, "the pending proposal is damaged: reject it");
		goto out;
	}
	if (strcmp(author, who->name) == 0) {
		con_send_error(req, 403, "who", "%s proposed this change: a different analyst must "
		    "approve it", author);
		goto out;
	}
	status = edit_deploy_text(app, req, who, json_string_value(json_object_get(pr, "text")),
	    json_string_length(json_object_get(pr, "text")), base, "deploy_rules", msg, 0, author);
	/* deployed (audited as such), or stale for good (the file moved on:
	 * 409), which is said in the audit log before the proposal goes */
	edit_proposal_path(app->rs, path, sizeof path);
	if (edit_read_current(app, &text, &len, hash) == VIGIL_OK && (strcmp(hash, base) != 0)) {
		if (status == 409 && con_audit_write(app->audit, who, "drop_proposal",
		    app->o.rules, edit_proposal_summary(pr), json_pack("{s:s, s:s}", "hash", hash,
		    "why", "the rule file changed since it was proposed: not deployed")) != VIGIL_OK)
			fprintf(stderr, "vigil-console: audit: cannot record dropping stale proposal "
			    "%s: kept\n", json_string_value(json_object_get(pr, "hash")));
		else
			(void)unlink(path);
	}
out:
	free(text);
	json_decref(pr);
	json_decref(b);
}

void
con_api_rules_reject(con_app *app, struct evhttp_request *req, const con_user *who)
{
	static const char *const keys[] = { "hash", "message", NULL };
	json_t *b = edit_body(req, keys, NULL, NULL), *pr = NULL;
	const char *msg;
	char path[4200], aside[4220];

	if (b == NULL)
		return;
	msg = json_string_value(json_object_get(b, "message"));
	if (json_object_get(b, "message") != NULL && msg == NULL) {
		con_send_error(req, 400, "message", "a string (why the proposal is rejected)");
		goto out;
	}
	pr = edit_proposal_named(app, req, b);
	if (pr == NULL)
		goto out;
	/* set aside, audited, then removed: an audit line that cannot be
	 * written puts it back (rejected with a line, or not at all) */
	edit_proposal_path(app->rs, path, sizeof path);
	snprintf(aside, sizeof aside, "%s.rejecting", path);
	if (rename(path, aside) != 0) {
		con_send_error(req, 500, NULL, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (con_audit_write(app->audit, who, "reject_rules", app->o.rules,
	    edit_proposal_summary(pr), json_pack("{s:s}", "message", msg != NULL ? msg : "")) !=
	    VIGIL_OK) {
		if (rename(aside, path) != 0)
			fprintf(stderr, "vigil-console: %s: cannot put it back as %s: %s\n", aside,
			    path, strerror(errno));
		con_send_error(req, 500, NULL, "the audit log could not be written: not rejected");
		goto out;
	}
	(void)unlink(aside);
	con_send_json(req, 200, json_pack("{s:b, s:O}", "ok", true, "hash",
	    json_object_get(pr, "hash")));
out:
	json_decref(pr);
	json_decref(b);
}

void
con_api_rules_deploy(con_app *app, struct evhttp_request *req, const con_user *who)
{
	static const char *const keys[] = { "text", "base_hash", "message", NULL };
	const char *text, *base, *msg;
	size_t len;
	json_t *b = edit_body(req, keys, &text, &len);

	if (b == NULL)
		return;
	base = json_string_value(json_object_get(b, "base_hash"));
	msg = json_string_value(json_object_get(b, "message"));
	if (base == NULL)
		con_send_error(req, 400, "base_hash", "the hash of the file the edit started "
		    "from (GET /api/rules) is required");
	else if (json_object_get(b, "message") != NULL && (msg == NULL || strlen(msg) > 500))
		con_send_error(req, 400, "message", "a string of at most 500 bytes");
	else
		edit_propose_or_deploy(app, req, who, text, len, base, msg);
	json_decref(b);
}

void
con_api_rules_rollback(con_app *app, struct evhttp_request *req, const con_user *who)
{
	static const char *const keys[] = { "version", "base_hash", NULL };
	json_t *b = edit_body(req, keys, NULL, NULL), *jv;
	const char *base;
	char path[4200], *text = NULL, msg[64];
	size_t len;
	json_int_t v;

	if (b == NULL)
		return;
	jv = json_object_get(b, "version");
	base = json_string_value(json_object_get(b, "base_hash"));
	v = json_is_integer(jv) ? json_integer_value(jv) : 0;
	if (v < 1 || v > 999999) {
		con_send_error(req, 400, "version", "a version number (GET /api/rules/versions)");
	} else if (base == NULL) {
		con_send_error(req, 400, "base_hash", "the hash of the current file is required");
	} else {
		snprintf(path, sizeof path, "%s/%06d.rules", app->rs->vdir, (int)v);
		if (con_file_read(path, RULES_TEXT_MAX, &text, &len) != VIGIL_OK) {
			con_send_error(req, 404, "version", "version %d: no such version", (int)v);
		} else {
			snprintf(msg, sizeof msg, "roll back to version %d", (int)v);
			(void)edit_deploy_text(app, req, who, text, len, base, "rollback_rules", msg,
			    (int)v, NULL);
		}
	}
	free(text);
	json_decref(b);
}

void
con_api_rules_versions(con_app *app, struct evhttp_request *req, const con_user *who,
    const char *version)
{
	char path[4200], *text = NULL, *end;
	size_t len;
	long v;

	(void)who;
	if (version == NULL) {
		/* a history that does not load: the versions that do, and why */
		json_t *vs, *verr = NULL;
		vigil_errinfo ei;
		int next;

		if (edit_versions_load(app->rs, &vs, &next, &ei) != VIGIL_OK)
			verr = vigil_error_json("INTERNAL", &ei);
		con_send_json(req, 200, json_pack("{s:o, s:o*}", "versions", vs, "versions_error",
		    verr));
		return;
	}
	/* versions are named 1, 2, ...: any other name ("abc", "+5", "007")
	 * names none, as an unknown number does */
	v = strtol(version, &end, 10);
	if (!isdigit((unsigned char)version[0]) || version[0] == '0' || *end != '\0' || v < 1 ||
	    v > 999999) {
		con_send_error(req, 404, "version", "\"%.64s\": no such version (versions are "
		    "numbered 1, 2, ...)", version);
		return;
	}
	snprintf(path, sizeof path, "%s/%06ld.rules", app->rs->vdir, v);
	if (con_file_read(path, RULES_TEXT_MAX, &text, &len) != VIGIL_OK) {
		con_send_error(req, 404, "version", "version %ld: no such version", v);
		return;
	}
	char hash[33];
	con_hash_hex(text, len, hash);
	if (edit_text_utf8(req, path, text, len))
		con_send_json(req, 200, json_pack("{s:i, s:s, s:s%}", "version", (int)v, "hash", hash,
		    "text", text, len));
	free(text);
}

/* ---- for the back-test (backtest.c) ---- */

json_t *
con_rules_edit_body(struct evhttp_request *req, const char *const *allowed,
    const char **ret_text, size_t *ret_len)
{
	return edit_body(req, allowed, ret_text, ret_len);
}

vigil_err
con_rules_compile_text(con_app *app, const char *text, size_t len, rules_prog **ret_prog,
    rules_diags *ret_diags)
{
	return edit_compile_text(app->rs, text, len, ret_prog, ret_diags);
}

void
con_rules_send_diags(struct evhttp_request *req, const rules_diags *d, const char *text,
    size_t len)
{
	edit_send_diags(req, d, text, len);
}

const char *
con_rules_dir(const con_app *app)
{
	return app->rs->dir;
}

const char *
con_rules_base(const con_app *app)
{
	return app->rs->base;
}
