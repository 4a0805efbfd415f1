/* SPDX-License-Identifier: MIT */
/*
 * console/lists.c - the rule file's list files (docs/console.md, "Lists"):
 * every `list NAME = [prefix|number] file "PATH"` of the deployed file,
 * viewed, an entry added or removed with a reason and an optional expiry.
 * A change rewrites the list file atomically (temporary file, fsync,
 * rename: vigild's watch reloads it whole) and is audited; who added an
 * entry, why and until when is kept in STATE/lists.json; an entry whose
 * expiry passed is removed by the console (con_lists_expire, from the
 * tick) and audited as such. The list file's own format stays vigild's:
 * one item a line, '#' comments and blank lines kept as they are.
 */
#include <ctype.h>
#include <event2/http.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>

#include "console.h"
#include "http.h"
#include "rules.h"
#include "vigil_json.h"

#define LIST_ITEM_MAX 128      /* bytes of an entry (vigild's RULES_MAX_ITEM is more) */
#define LIST_SHOW_MAX 1000     /* entries listed per list */
#define LIST_FILE_MAX (64u << 20)

static int64_t lists_next_expiry = INT64_MAX; /* earliest expiry known; INT64_MAX: none */

/* The deployed rule file's directory: relative list paths resolve there. */
static const char *
lists_dir(con_app *app, char *buf, size_t len)
{
	snprintf(buf, len, "%s", app->o.rules);
	return dirname(buf);
}

/* The path of list name's file in the rule file text, resolved next to the
 * rule file; *ret_kind "", "prefix" or "number". False: no such file list. */
static bool
lists_find(con_app *app, const char *text, const char *name, char *ret_path, size_t len,
    char *ret_kind, size_t klen)
{
	for (const char *p = text; p != NULL && *p != '\0';) {
		const char *nl = strchr(p, '\n');
		size_t l = nl ? (size_t)(nl - p) : strlen(p);
		char line[4200], n[64], kind[16] = "", f[1024];

		if (l < sizeof line) {
			memcpy(line, p, l);
			line[l] = '\0';
			if ((sscanf(line, " list %63[A-Za-z0-9_] = file \"%1023[^\"]\"", n, f) == 2 ||
			    sscanf(line, " list %63[A-Za-z0-9_] = %15[a-z] file \"%1023[^\"]\"", n, kind,
			    f) == 3) && (name == NULL || strcmp(n, name) == 0)) {
				if (f[0] == '/')
					snprintf(ret_path, len, "%s", f);
				else
					snprintf(ret_path, len, "%s/%s", lists_dir(app, line, sizeof line), f);
				snprintf(ret_kind, klen, "%s", kind);
				return true;
			}
		}
		p = nl ? nl + 1 : NULL;
	}
	return false;
}

/* Calls fn for each `list NAME = ... file` of text. */
static void
lists_each(con_app *app, const char *text, void (*fn)(void *arg, const char *name,
    const char *kind, const char *path), void *arg)
{
	for (const char *p = text; p != NULL && *p != '\0';) {
		const char *nl = strchr(p, '\n');
		size_t l = nl ? (size_t)(nl - p) : strlen(p);
		char line[4200], n[64], kind[16] = "", f[1024], path[5300];

		if (l < sizeof line) {
			memcpy(line, p, l);
			line[l] = '\0';
			if (sscanf(line, " list %63[A-Za-z0-9_] = file \"%1023[^\"]\"", n, f) == 2 ||
			    sscanf(line, " list %63[A-Za-z0-9_] = %15[a-z] file \"%1023[^\"]\"", n, kind,
			    f) == 3) {
				if (f[0] == '/')
					snprintf(path, sizeof path, "%s", f);
				else
					snprintf(path, sizeof path, "%s/%s", lists_dir(app, line, sizeof line), f);
				fn(arg, n, kind, path);
			}
		}
		p = nl ? nl + 1 : NULL;
	}
}

/*
 * STATE/lists.json, the records (who listed what, when, why). VIGIL_OK:
 * *ret_meta an object, empty when there is no file. Otherwise the file
 * cannot be read or is not a JSON object: *reterr_ei says where (the file,
 * jansson's line:col) and what, *ret_meta is untouched, and the edits that
 * would save the records are refused, since a save would write the file
 * without every record it holds. Said once in the log until it loads again.
 */
static vigil_err
lists_meta_load(con_app *app, json_t **ret_meta, vigil_errinfo *reterr_ei)
{
	static bool said;
	char path[4200];
	json_t *o = NULL;
	vigil_err rv;

	snprintf(path, sizeof path, "%s/lists.json", app->o.state);
	rv = con_json_file_load(path, LIST_FILE_MAX, "the list records", true, &o, reterr_ei);
	if (rv == VIGIL_ENOTFOUND) {
		o = json_object();
		rv = o != NULL ? VIGIL_OK : VIGIL_ENOMEM;
	} else if (rv == VIGIL_OK && !json_is_object(o)) {
		vigil_errinfo_set(reterr_ei, NULL, "the list records are not a JSON object");
		rv = VIGIL_EINVAL;
	}
	if (rv != VIGIL_OK) {
		json_decref(o);
		if (rv != VIGIL_ENOMEM)
			con_say_once(&said, "lists", reterr_ei, path, "list edits are refused until "
			    "the file is repaired or removed");
		return rv;
	}
	said = false;
	*ret_meta = o;
	return VIGIL_OK;
}

static vigil_err
lists_meta_save(con_app *app, json_t *meta, char *errbuf, size_t errlen)
{
	char path[4200], *text = json_dumps(meta, JSON_INDENT(1) | JSON_SORT_KEYS);
	vigil_err rv;

	if (text == NULL)
		return VIGIL_ENOMEM;
	snprintf(path, sizeof path, "%s/lists.json", app->o.state);
	rv = con_file_write_atomic(path, text, strlen(text), errbuf, errlen);
	free(text);
	return rv;
}

/*
 * Adds (add true) or removes value in the list file at path. *ret_changed
 * false: it was already there (add) or not there (remove). Atomic rewrite.
 */
static vigil_err
lists_edit(const char *path, const char *value, bool add, bool *ret_changed, char *errbuf,
    size_t errlen)
{
	char *buf = NULL, *out = NULL;
	size_t len = 0, n = 0;
	vigil_err rv;

	*ret_changed = false;
	rv = con_file_read(path, LIST_FILE_MAX, &buf, &len);
	if (rv == VIGIL_ENOTFOUND && add) {
		buf = strdup("");
		rv = buf != NULL ? VIGIL_OK : VIGIL_ENOMEM;
	}
	if (rv != VIGIL_OK) {
		snprintf(errbuf, errlen, "%s: %s", path, vigil_strerror(rv));
		return rv;
	}
	rv = con_list_edit(buf, len, value, add, &out, &n, ret_changed);
	if (rv == VIGIL_OK && *ret_changed)
		rv = con_file_write_atomic(path, out, n, errbuf, errlen);
	else if (rv != VIGIL_OK)
		snprintf(errbuf, errlen, "%s: %s", path, vigil_strerror(rv));
	if (rv != VIGIL_OK)
		*ret_changed = false;
	free(out);
	free(buf);
	return rv;
}

static void
lists_note_expiry(json_t *meta)
{
	const char *ln, *v;
	json_t *entries, *e;

	lists_next_expiry = INT64_MAX;
	json_object_foreach(meta, ln, entries) {
		json_object_foreach(entries, v, e) {
			int64_t t;
			const char *ex = json_string_value(json_object_get(e, "expires"));
			if (ex != NULL && con_time_parse(ex, &t) == VIGIL_OK && t < lists_next_expiry)
				lists_next_expiry = t;
		}
	}
}

/* ---- GET /api/lists ---- */

typedef struct lists_ctx {
	json_t *arr, *meta;
} lists_ctx;

static void
lists_one(void *arg, const char *name, const char *kind, const char *path)
{
	lists_ctx *c = arg;
	char *buf = NULL;
	size_t len = 0;
	json_t *items, *shown = json_array(), *m = json_object_get(c->meta, name), *err = NULL;
	vigil_err rv = con_file_read(path, LIST_FILE_MAX, &buf, &len);
	vigil_errinfo ei;
	size_t count = 0;

	/* the shown ones only: the rest counted (a list of millions) */
	items = rv == VIGIL_OK ? con_list_items(buf, len, LIST_SHOW_MAX, &count) : json_array();
	for (size_t i = 0; i < json_array_size(items); i++) {
		const char *v = json_string_value(json_array_get(items, i));
		json_t *e = json_object_get(m, v);
		json_t *o = json_pack("{s:s}", "value", v);
		if (json_is_object(e))
			json_object_update(o, e);
		json_array_append_new(shown, o);
	}
	if (rv != VIGIL_OK && rv != VIGIL_ENOTFOUND) { /* docs/tools.md, "JSON errors" */
		if (rv == VIGIL_ETOOBIG)
			vigil_errinfo_set(&ei, NULL, "cannot read the list file: over %u MiB",
			    LIST_FILE_MAX >> 20);
		else
			vigil_errinfo_set(&ei, NULL, "cannot read the list file: %s", vigil_strerror(rv));
		snprintf(ei.file, sizeof ei.file, "%s", path);
		err = vigil_error_json(vigil_error_code(rv), &ei);
	}
	json_array_append_new(c->arr, json_pack("{s:s, s:s, s:s, s:I, s:o, s:o*}", "name", name,
	    "kind", kind[0] ? kind : "string", "path", path, "count",
	    (json_int_t)count, "entries", shown, "error", err));
	json_decref(items);
	free(buf);
}

static char *
lists_rule_text(con_app *app)
{
	char *text = NULL;
	size_t len;

	if (con_file_read(app->o.rules, 1u << 20, &text, &len) != VIGIL_OK)
		return NULL;
	return text;
}

void
con_api_lists(con_app *app, struct evhttp_request *req, const con_user *who)
{
	lists_ctx c = { json_array(), NULL };
	char *text = lists_rule_text(app);
	json_t *rerr = NULL;
	vigil_errinfo ei;

	(void)who;
	if (lists_meta_load(app, &c.meta, &ei) != VIGIL_OK) {
		/* the entries without who and why, and why not */
		c.meta = json_object();
		rerr = vigil_error_json("INTERNAL", &ei);
	}
	if (text == NULL) {
		con_send_error(req, 500, NULL, "%s: cannot read", app->o.rules);
		goto out;
	}
	lists_each(app, text, lists_one, &c);
	con_send_json(req, 200, json_pack("{s:o, s:o*}", "lists", c.arr, "records_error", rerr));
	c.arr = NULL;
	rerr = NULL;
out:
	json_decref(rerr);
	free(text);
	json_decref(c.arr);
	json_decref(c.meta);
}

/* ---- POST /api/lists/NAME/{add,remove} ---- */

/* A list entry's record: who listed it, why, when, and until when (exp_ms
 * 0: for good). */
static json_t *
lists_entry_new(const con_user *who, const char *reason, int64_t exp_ms)
{
	char now[32], ex[32];
	json_t *e;

	vigil_time_format_rfc3339(vigil_now_ms(), now, sizeof now);
	e = json_pack("{s:s, s:s, s:s}", "reason", reason, "who", who->name, "added", now);
	if (e != NULL && exp_ms > 0) {
		vigil_time_format_rfc3339(exp_ms, ex, sizeof ex);
		json_object_set_new(e, "expires", json_string(ex));
	}
	return e;
}

/* A value a list file can hold as one entry: 1-LIST_ITEM_MAX printable
 * bytes, no space, not starting with '#' (a comment to vigild). */
static bool
lists_value_ok(const char *v)
{
	size_t n = strlen(v);

	if (n == 0 || n > LIST_ITEM_MAX || v[0] == '#')
		return false;
	for (; *v != '\0'; v++)
		if (!isgraph((unsigned char)*v))
			return false;
	return true;
}

void
con_api_list_edit(con_app *app, struct evhttp_request *req, const con_user *who,
    const char *name, const char *action)
{
	static const char *const keys[] = { "value", "reason", "expires", NULL };
	json_t *body = con_body_json_keys(req, keys), *meta = NULL, *entries, *before, *after,
	    *entry = NULL;
	const char *value, *reason, *expires;
	char path[4200], kind[16], err[4600], *text = NULL;
	int64_t exp_ms = 0;
	bool add = strcmp(action, "add") == 0, changed = false, unkept = false;
	vigil_errinfo ei;
	vigil_err rv;

	if (body == NULL)
		return;
	value = json_string_value(json_object_get(body, "value"));
	reason = json_string_value(json_object_get(body, "reason"));
	expires = json_string_value(json_object_get(body, "expires"));
	if (value == NULL || !lists_value_ok(value)) {
		con_send_error(req, 400, "value", "1-%d printable characters, no spaces, not "
		    "starting with '#'", LIST_ITEM_MAX);
		goto out;
	}
	if (reason == NULL || strlen(reason) == 0 || strlen(reason) > 200) {
		con_send_error(req, 400, "reason", "why, 1-200 bytes");
		goto out;
	}
	if (json_object_get(body, "expires") != NULL && !json_is_null(json_object_get(body,
	    "expires")) && (!add || expires == NULL || con_time_parse(expires, &exp_ms) != VIGIL_OK ||
	    exp_ms <= vigil_now_ms())) {
		con_send_error(req, 400, "expires", "a future time (RFC 3339 or YYYY-MM-DD), "
		    "on add only");
		goto out;
	}
	text = lists_rule_text(app);
	if (text == NULL || !lists_find(app, text, name, path, sizeof path, kind, sizeof kind)) {
		con_send_error(req, 404, "list", "no `list %s = ... file \"...\"` in %s", name,
		    app->o.rules);
		goto out;
	}
	/* an entry of a prefix list covers a range (one digit: a tenth of all
	 * cards), as a rule does: the rule editors' (docs/console.md, "Lists") */
	if (strcmp(kind, "prefix") == 0 && who->role < CON_ROLE_EDITOR) {
		con_send_error(req, 403, "list", "%s is a prefix list: an entry covers every value "
		    "that begins with it, so it is edited as rules are (rule-editor or admin)", name);
		goto out;
	}
	if (add && strcmp(kind, "number") == 0 && !rules_list_number_parse(value, NULL)) {
		con_send_error(req, 400, "value", "\"%s\" is not a number, and %s is a number "
		    "list (vigild would refuse the list file)", value, name);
		goto out;
	}
	if (lists_meta_load(app, &meta, &ei) != VIGIL_OK) {
		con_send_json(req, 500, vigil_error_body("INTERNAL", &ei));
		goto out;
	}
	entries = json_object_get(meta, name);
	if (!json_is_object(entries)) {
		entries = json_object();
		json_object_set_new(meta, name, entries);
	}
	if (!add) {
		/* the record goes first: a removal STATE/lists.json cannot record
		 * changes nothing, not even for the moment an undo of the list
		 * file would take (vigild would let the value through) */
		entry = json_incref(json_object_get(entries, value));
		json_object_del(entries, value);
		if (lists_meta_save(app, meta, err, sizeof err) != VIGIL_OK) {
			fprintf(stderr, "vigil-console: lists: %s\n", err);
			con_send_error(req, 500, NULL, "%s: not removed (its record could not be "
			    "dropped)", err);
			goto out;
		}
	}
	rv = lists_edit(path, value, add, &changed, err, sizeof err);
	if (rv != VIGIL_OK) {
		char err2[sizeof err];

		if (entry != NULL && (json_object_set(entries, value, entry) != 0 ||
		    lists_meta_save(app, meta, err2, sizeof err2) != VIGIL_OK))
			fprintf(stderr, "vigil-console: lists: %s stays in %s without its record\n",
			    value, path);
		con_send_error(req, 500, NULL, "%s", err);
		goto out;
	}
	before = add ? json_object_get(entries, value) : entry;
	if (add && !changed && exp_ms > 0 &&
	    (before == NULL || json_object_get(before, "expires") == NULL)) {
		/* an end date would unblock, when it passes, what someone listed for good */
		con_send_error(req, 409, "expires", "%s is already in %s without an end date; "
		    "remove it first to list it until a time", value, name);
		goto out;
	}
	if (add && !changed && exp_ms == 0 && before != NULL &&
	    json_object_get(before, "expires") == NULL) {
		/* listed for good already: its who and why stay (not the re-adder's) */
		con_send_json(req, 200, json_pack("{s:s, s:s, s:b, s:s, s:O}", "list", name, "value",
		    value, "changed", false, "path", path, "entry", before));
		goto out;
	}
	before = before != NULL ? json_incref(before) : json_null();
	if (add) {
		entry = lists_entry_new(who, reason, exp_ms);
		json_object_set(entries, value, entry);
		after = json_pack("{s:b, s:O}", "listed", true, "entry", entry);
	} else {
		after = json_pack("{s:b, s:s}", "listed", false, "reason", reason);
	}
	if (add && lists_meta_save(app, meta, err, sizeof err) != VIGIL_OK) {
		char err2[sizeof err];
		bool undone = false;

		fprintf(stderr, "vigil-console: lists: %s\n", err);
		/* nothing half-applied: without its record an entry loses who and
		 * why, and one with an end date would never leave */
		if (!changed || lists_edit(path, value, false, &undone, err2, sizeof err2) ==
		    VIGIL_OK) {
			json_decref(before);
			json_decref(after);
			con_send_error(req, 500, NULL, changed ? "%s: not added (its record could not "
			    "be kept)" : "%s: its record is not replaced (the new one could not be "
			    "kept)", err);
			goto out;
		}
		/* not undone either: audited (who, why), and said */
		unkept = true;
		fprintf(stderr, "vigil-console: lists: %s stays in %s without its record: %s\n",
		    value, path, err2);
	}
	lists_note_expiry(meta);
	{
		char target[200];
		snprintf(target, sizeof target, "%s:%s", name, value);
		if (con_audit_write(app->audit, who, add ? "list_add" : "list_remove", target,
		    json_pack("{s:b, s:o}", "listed", add ? !changed : changed, "entry", before),
		    after) != VIGIL_OK) {
			con_send_error(req, 500, NULL, "list changed, but the audit log could not be "
			    "written");
			goto out;
		}
	}
	if (unkept) {
		con_send_error(req, 500, NULL, "%s: %s is in %s, but its record could not be kept "
		    "(the audit log has it)", err, value, path);
		goto out;
	}
	con_send_json(req, 200, json_pack("{s:s, s:s, s:b, s:s}", "list", name, "value", value,
	    "changed", changed, "path", path));
out:
	json_decref(entry);
	json_decref(meta);
	free(text);
	json_decref(body);
}

/* ---- Block card (api.c) ---- */

/* Sets list name's record of value to entry (NULL: drops it) unless keep and
 * the record there has no end date; *ret_prior (if not NULL): the one before. */
static vigil_err
lists_record_set(con_app *app, const char *name, const char *value, json_t *entry, bool keep,
    json_t **ret_prior, char *errbuf, size_t errlen)
{
	json_t *meta = NULL, *entries, *prior;
	vigil_errinfo ei;
	vigil_err rv;

	if ((rv = lists_meta_load(app, &meta, &ei)) != VIGIL_OK) {
		snprintf(errbuf, errlen, "%s", ei.msg);
		return rv;
	}
	entries = json_object_get(meta, name);
	if (!json_is_object(entries)) {
		entries = json_object();
		json_object_set_new(meta, name, entries);
	}
	prior = json_object_get(entries, value);
	if (ret_prior != NULL)
		*ret_prior = json_incref(prior);
	if (keep && prior != NULL && json_object_get(prior, "expires") == NULL) {
		json_decref(meta);
		return VIGIL_OK;
	}
	if (entry != NULL ? json_object_set(entries, value, entry) : json_object_del(entries, value))
		rv = entry != NULL ? VIGIL_ENOMEM : VIGIL_OK;
	if (rv == VIGIL_OK && (rv = lists_meta_save(app, meta, errbuf, errlen)) == VIGIL_OK)
		lists_note_expiry(meta);
	else if (rv == VIGIL_ENOMEM)
		snprintf(errbuf, errlen, "out of memory");
	json_decref(meta);
	return rv;
}

vigil_err
con_lists_block(con_app *app, const char *name, const char *value, const con_user *who,
    const char *reason, bool *ret_added, json_t **ret_prior, char *ret_path, size_t pathlen,
    char *errbuf, size_t errlen)
{
	char *text = lists_rule_text(app), kind[16], err2[512];
	json_t *entry = NULL;
	vigil_err rv;

	*ret_added = false;
	*ret_prior = NULL;
	if (!lists_value_ok(value)) {
		snprintf(errbuf, errlen, "%s cannot be an entry of a list file (vigild reads a line "
		    "starting with '#' as a comment): not blocked", value);
		rv = VIGIL_EINVAL;
	} else if (text == NULL || !lists_find(app, text, name, ret_path, pathlen, kind,
	    sizeof kind)) {
		snprintf(errbuf, errlen, "%s has no `list %s = file \"...\"`: nowhere to block a "
		    "card", app->o.rules, name);
		rv = VIGIL_ENOTFOUND;
	} else if (kind[0] != '\0') {
		/* a prefix list's entry would block every card beginning with
		 * it, and a number list takes numbers: card ids go in a plain one */
		snprintf(errbuf, errlen, "%s is a %s list in %s: blocked cards go in a plain list "
		    "(`list %s = file \"...\"`): not blocked", name, kind, app->o.rules, name);
		rv = VIGIL_EINVAL;
	} else if ((entry = lists_entry_new(who, reason, 0)) == NULL) {
		snprintf(errbuf, errlen, "out of memory");
		rv = VIGIL_ENOMEM;
	} else if ((rv = lists_record_set(app, name, value, entry, true, ret_prior, errbuf,
	    errlen)) != VIGIL_OK) {
		/* the record first: one with an end date would unblock the card */
		snprintf(errbuf + strlen(errbuf), errlen - strlen(errbuf), ": not blocked (its record "
		    "could not be kept)");
	} else if ((rv = lists_edit(ret_path, value, true, ret_added, errbuf, errlen)) != VIGIL_OK &&
	    lists_record_set(app, name, value, *ret_prior, false, NULL, err2, sizeof err2) !=
	    VIGIL_OK) {
		fprintf(stderr, "vigil-console: lists: the record of %s in %s could not be put back: "
		    "%s\n", value, name, err2);
	}
	if (rv != VIGIL_OK) {
		json_decref(*ret_prior);
		*ret_prior = NULL;
	}
	json_decref(entry);
	free(text);
	return rv;
}

/* ---- expiry ---- */

void
con_lists_expire(con_app *app)
{
	static bool loaded;
	int64_t now = vigil_now_ms();
	json_t *meta;
	const char *ln, *v;
	json_t *entries, *e, *tmp;
	char *text = NULL, path[4200], kind[16], err[4600];
	bool dirty = false;
	vigil_errinfo ei;

	/* records that do not load expire nothing: read again each tick (said
	 * once) until they do */
	if (!loaded) {
		if (lists_meta_load(app, &meta, &ei) != VIGIL_OK)
			return;
		lists_note_expiry(meta);
		json_decref(meta);
		loaded = true;
	}
	if (lists_next_expiry > now || lists_meta_load(app, &meta, &ei) != VIGIL_OK)
		return;
	text = lists_rule_text(app);
	json_object_foreach(meta, ln, entries) {
		json_object_foreach_safe(entries, tmp, v, e) {
			int64_t t;
			const char *ex = json_string_value(json_object_get(e, "expires"));
			bool changed = false;

			if (ex == NULL || con_time_parse(ex, &t) != VIGIL_OK || t > now)
				continue;
			if (text != NULL && lists_find(app, text, ln, path, sizeof path, kind,
			    sizeof kind) && lists_edit(path, v, false, &changed, err, sizeof err) !=
			    VIGIL_OK) {
				fprintf(stderr, "vigil-console: lists: expiry of %s:%s: %s\n", ln, v, err);
				continue;
			}
			{
				char target[200];
				snprintf(target, sizeof target, "%s:%s", ln, v);
				if (con_audit_write(app->audit, NULL, "list_expire", target,
				    json_pack("{s:b, s:O}", "listed", changed, "entry", e),
				    json_pack("{s:b}", "listed", false)) != VIGIL_OK)
					fprintf(stderr, "vigil-console: audit: cannot record the expiry of "
					    "%s:%s\n", ln, v);
			}
			json_object_del(entries, v);
			dirty = true;
		}
	}
	if (dirty && lists_meta_save(app, meta, err, sizeof err) != VIGIL_OK)
		fprintf(stderr, "vigil-console: lists: %s\n", err);
	lists_note_expiry(meta);
	free(text);
	json_decref(meta);
}
