/* SPDX-License-Identifier: MIT */
/* console/util.c - small file, time and LMDB helpers of vigil-console (util.h). */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "console.h"
#include "file.h"

vigil_err
con_time_parse(const char *s, int64_t *ret_ms)
{
	if (strlen(s) == 10)
		return vigil_date_parse(s, ret_ms);
	return vigil_time_parse_rfc3339(s, ret_ms);
}

vigil_err
con_file_read(const char *path, size_t max, char **ret_buf, size_t *ret_len)
{
	bool special = false;

	/* a FIFO in the rules' or a list's place is refused, not waited on:
	 * the console has one event loop for every analyst */
	if (vigil_read_regular(path, max, ret_buf, ret_len, &special) == 0)
		return VIGIL_OK;
	return special ? VIGIL_EINVAL : errno == EFBIG ? VIGIL_ETOOBIG :
	    vigil_err_from_errno(errno);
}

/* con_file_write_atomic, or with replace false con_file_write_new: the
 * temporary file is linked at path (link(2) never replaces), then removed */
static vigil_err
util_file_write(const char *path, const void *data, size_t len, bool replace, char *errbuf,
    size_t errlen)
{
	char tmp[4200], dir[4096];
	const char *p = data;
	size_t done = 0;
	int fd;
	struct stat st;
	mode_t mode = 0644;

	if (stat(path, &st) == 0)
		mode = st.st_mode & 07777;
	snprintf(tmp, sizeof tmp, "%s.tmp-%ld", path, (long)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0) {
		snprintf(errbuf, errlen, "%s: %s", tmp, strerror(errno));
		return vigil_err_from_errno(errno);
	}
	while (done < len) {
		ssize_t w = write(fd, p + done, len - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			snprintf(errbuf, errlen, "%s: %s", tmp, strerror(errno));
			close(fd);
			unlink(tmp);
			return VIGIL_EIO;
		}
		done += (size_t)w;
	}
	if (fsync(fd) != 0 || close(fd) != 0) {
		snprintf(errbuf, errlen, "%s: %s", tmp, strerror(errno));
		unlink(tmp);
		return VIGIL_EIO;
	}
	if (!replace && link(tmp, path) != 0) {
		int e = errno;

		snprintf(errbuf, errlen, "%s: %s", path, e == EEXIST ? "exists: not written over" :
		    strerror(e));
		unlink(tmp);
		return e == EEXIST ? VIGIL_EEXIST : VIGIL_EIO;
	}
	if (replace ? rename(tmp, path) != 0 : unlink(tmp) != 0) {
		snprintf(errbuf, errlen, "%s %s: %s", replace ? "rename" : "unlink", replace ? path :
		    tmp, strerror(errno));
		if (replace)
			unlink(tmp);
		return VIGIL_EIO;
	}
	snprintf(dir, sizeof dir, "%s", path);
	if (vigil_fsync_dir(dirname(dir)) != VIGIL_OK) {
		snprintf(errbuf, errlen, "%s: syncing its directory: %s", path, strerror(errno));
		return VIGIL_EIO;
	}
	return VIGIL_OK;
}

vigil_err
con_json_file_load(const char *path, size_t max, const char *what, bool plural,
    json_t **ret_o, vigil_errinfo *reterr_ei)
{
	char *buf = NULL;
	size_t len = 0;
	json_error_t jerr;
	vigil_err rv = con_file_read(path, max, &buf, &len);

	if (rv == VIGIL_ENOTFOUND)
		return rv;
	if (rv == VIGIL_ETOOBIG) {
		vigil_errinfo_set(reterr_ei, NULL, "cannot read %s: over %zu MiB", what, max >> 20);
	} else if (rv != VIGIL_OK) {
		vigil_errinfo_set(reterr_ei, NULL, "cannot read %s: %s", what, vigil_strerror(rv));
	} else if ((*ret_o = json_loadb(buf, len, 0, &jerr)) == NULL) {
		vigil_errinfo_set(reterr_ei, NULL, "%s %s not parse: %s", what, plural ? "do" : "does",
		    jerr.text);
		reterr_ei->line = jerr.line > 0 ? (uint32_t)jerr.line : 0;
		reterr_ei->col = jerr.column > 0 ? (uint32_t)jerr.column : 0;
		rv = VIGIL_EINVAL;
	}
	free(buf);
	if (rv != VIGIL_OK)
		snprintf(reterr_ei->file, sizeof reterr_ei->file, "%.*s",
		    (int)sizeof reterr_ei->file - 1, path);
	return rv;
}

void
con_say_once(bool *said, const char *area, vigil_errinfo *ei, const char *path,
    const char *consequence)
{
	char line[1024];

	snprintf(ei->file, sizeof ei->file, "%.*s", (int)sizeof ei->file - 1, path);
	if (!*said)
		fprintf(stderr, "vigil-console: %s: %s (%s)\n", area, vigil_errinfo_format(ei, line,
		    sizeof line), consequence);
	*said = true;
}

vigil_err
con_file_write_atomic(const char *path, const void *data, size_t len, char *errbuf,
    size_t errlen)
{
	return util_file_write(path, data, len, true, errbuf, errlen);
}

vigil_err
con_file_write_new(const char *path, const void *data, size_t len, char *errbuf,
    size_t errlen)
{
	return util_file_write(path, data, len, false, errbuf, errlen);
}

void
con_hash_hex(const void *data, size_t len, char ret_hex[33])
{
	XXH128_hash_t h = XXH3_128bits(data, len);

	snprintf(ret_hex, 33, "%016llx%016llx", (unsigned long long)h.high64,
	    (unsigned long long)h.low64);
}

/* ---- list files (vigild's format: one item a line, trimmed; blank lines
 * and '#' lines are not items) ---- */

/* The next line of buf[*i..len): [*ret_b, *ret_e) its item (trimmed), the
 * line itself [start, *i after). */
static void
con_list_line(const char *buf, size_t len, size_t *i, size_t *ret_b, size_t *ret_e)
{
	size_t b = *i, e;

	while (*i < len && buf[*i] != '\n')
		(*i)++;
	e = *i;
	if (*i < len)
		(*i)++;
	while (b < e && (buf[b] == ' ' || buf[b] == '\t'))
		b++;
	while (e > b && (buf[e - 1] == ' ' || buf[e - 1] == '\t' || buf[e - 1] == '\r'))
		e--;
	*ret_b = b;
	*ret_e = e;
}

json_t *
con_list_items(const char *buf, size_t len, size_t max, size_t *ret_count)
{
	json_t *a = json_array();
	size_t n = 0;

	for (size_t i = 0; a != NULL && i < len;) {
		size_t b, e;

		con_list_line(buf, len, &i, &b, &e);
		if (b == e || buf[b] == '#')
			continue;
		if (n++ >= max)
			continue;
		json_t *s;

		if (memchr(buf + b, 0, e - b) != NULL) { /* vigild refuses the file */
			json_array_append_new(a, json_string("(contains a NUL byte)"));
			continue;
		}
		s = json_stringn(buf + b, e - b); /* NULL if not UTF-8 */
		json_array_append_new(a, s != NULL ? s : json_string("(not UTF-8)"));
	}
	if (ret_count != NULL)
		*ret_count = n;
	return a;
}

vigil_err
con_list_edit(const char *buf, size_t len, const char *value, bool add, char **ret_out,
    size_t *ret_len, bool *ret_changed)
{
	size_t vl = strlen(value), n = 0;
	bool found = false;
	char *out;

	if (vl == 0 || memchr(value, '\n', vl) != NULL)
		return VIGIL_EINVAL;
	out = malloc(len + vl + 3);
	if (out == NULL)
		return VIGIL_ENOMEM;
	for (size_t i = 0; i < len;) {
		size_t s = i, b, e;

		con_list_line(buf, len, &i, &b, &e);
		if (b != e && buf[b] != '#' && e - b == vl && memcmp(buf + b, value, vl) == 0) {
			found = true;
			if (!add)
				continue; /* the line is dropped */
		}
		memcpy(out + n, buf + s, i - s);
		n += i - s;
	}
	if (add && !found) {
		if (n > 0 && out[n - 1] != '\n')
			out[n++] = '\n';
		memcpy(out + n, value, vl);
		n += vl;
		out[n++] = '\n';
	}
	*ret_out = out;
	*ret_len = n;
	*ret_changed = add != found;
	return VIGIL_OK;
}

/* ---- a rule's mode clause (the rules page's toggle) ---- */

/* Skips a string literal ("...", backslash escapes) or a # comment at *p. */
static const char *
util_skip_lexeme(const char *p, const char *end)
{
	if (*p == '"') {
		for (p++; p < end && *p != '"' && *p != '\n'; p++)
			if (*p == '\\' && p + 1 < end)
				p++;
		return p < end ? p + 1 : end;
	}
	if (*p == '#') {
		while (p < end && *p != '\n')
			p++;
		return p;
	}
	return p + 1;
}

static bool
util_ident_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	    c == '_' || c == '.';
}

vigil_err
con_rules_set_mode(const char *text, size_t len, uint32_t line, const char *mode, char **ret_text,
    size_t *ret_len)
{
	const char *end = text + len, *p = text, *open = NULL, *close = NULL;
	const char *wfrom = NULL, *wto = NULL, *ins;
	char add[64];
	size_t alen;
	char *out;

	for (uint32_t l = 1; l < line && p < end; p++)
		if (*p == '\n')
			l++;
	while (p < end && open == NULL) {
		if (*p == '{')
			open = p;
		p = util_skip_lexeme(p, end);
	}
	if (open == NULL)
		return VIGIL_ENOTFOUND;
	for (p = open + 1; p < end && close == NULL;) {
		if (*p == '}') {
			close = p;
		} else if (util_ident_char(*p) && !util_ident_char(p[-1])) {
			const char *w = p;
			while (p < end && util_ident_char(*p))
				p++;
			if (p - w == 4 && memcmp(w, "mode", 4) == 0 && wfrom == NULL) {
				while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
					p++;
				wfrom = p;
				while (p < end && util_ident_char(*p))
					p++;
				wto = p;
			}
		} else {
			p = util_skip_lexeme(p, end);
		}
	}
	if (close == NULL)
		return VIGIL_ENOTFOUND;
	if (wfrom != NULL) {
		/* replace the word (or put one, spaced, where `mode` has none) */
		snprintf(add, sizeof add, wto == wfrom ? " %s " : "%s", mode);
		alen = strlen(add);
		out = malloc(len - (size_t)(wto - wfrom) + alen + 1);
		if (out == NULL)
			return VIGIL_ENOMEM;
		size_t a = (size_t)(wfrom - text);
		memcpy(out, text, a);
		memcpy(out + a, add, alen);
		memcpy(out + a + alen, wto, (size_t)(end - wto));
		*ret_len = len - (size_t)(wto - wfrom) + alen;
		out[*ret_len] = '\0';
		*ret_text = out;
		return VIGIL_OK;
	}
	/* add a clause: on its own line when the brace is alone on its line */
	ins = close;
	while (ins > open + 1 && (ins[-1] == ' ' || ins[-1] == '\t'))
		ins--;
	if (ins[-1] == '\n')
		snprintf(add, sizeof add, "  mode %s\n", mode);
	else {
		ins = close;
		snprintf(add, sizeof add, " mode %s ", mode);
	}
	alen = strlen(add);
	out = malloc(len + alen + 1);
	if (out == NULL)
		return VIGIL_ENOMEM;
	memcpy(out, text, (size_t)(ins - text));
	memcpy(out + (ins - text), add, alen);
	memcpy(out + (ins - text) + alen, ins, (size_t)(end - ins));
	*ret_len = len + alen;
	out[*ret_len] = '\0';
	*ret_text = out;
	return VIGIL_OK;
}

json_t *
con_json_amount(int64_t minor, const char *currency)
{
	int e = vigil_currency_exponent(currency);
	char buf[48];

	if (e < 0)
		e = 2;
	snprintf(buf, sizeof buf, "%.*f", e, (double)minor / pow(10, e));
	return json_string(buf);
}

double
con_score_shown(double score)
{
	return rint(score * 1000.0) / 1000.0;
}

json_t *
con_json_time(int64_t ms)
{
	char buf[32];

	vigil_time_format_rfc3339(ms, buf, sizeof buf);
	return json_string(buf);
}

json_t *
con_json_label(int label)
{
	return label < 0 ? json_null() : json_string(label ? "fraud" : "legit");
}

int
con_cursor_resume(MDB_txn *txn, MDB_dbi dbi, const void *key, uint32_t klen,
    MDB_cursor **ret_c, MDB_val *ret_k, MDB_val *ret_v)
{
	int rc = mdb_cursor_open(txn, dbi, ret_c);

	if (rc != 0)
		return rc;
	if (klen == 0)
		return mdb_cursor_get(*ret_c, ret_k, ret_v, MDB_FIRST);
	ret_k->mv_size = klen;
	ret_k->mv_data = (void *)key;
	return mdb_cursor_get(*ret_c, ret_k, ret_v, MDB_SET_RANGE);
}

int
con_cursor_suspend(int rc, const MDB_val *k, void *key, size_t cap, uint32_t *klen,
    bool *ret_done)
{
	if (rc == 0 && k->mv_size <= cap) {
		memcpy(key, k->mv_data, k->mv_size);
		*klen = (uint32_t)k->mv_size;
	} else if (rc == MDB_NOTFOUND) {
		*klen = 0;
		*ret_done = true;
		rc = 0;
	}
	return rc;
}

void
con_damage_note(con_damage *d, const char *segment, uint64_t offset, const char *fmt, ...)
{
	va_list ap;
	int     n;

	if (d->n++ != 0)
		return;
	n = snprintf(d->first, sizeof d->first, "%s:%" PRIu64 ": ", segment, offset);
	if (n < 0 || (size_t)n >= sizeof d->first)
		return;
	va_start(ap, fmt);
	vsnprintf(d->first + n, sizeof d->first - (size_t)n, fmt, ap);
	va_end(ap);
}

void
con_damage_on_corrupt(void *arg, const char *segment, uint64_t offset, uint64_t skipped,
    const char *what)
{
	con_damage *d = arg;

	if (d->n++ == 0)
		store_corrupt_text(d->first, sizeof d->first, segment, offset, skipped, what);
}

json_t *
con_damage_json(json_t *o, const con_damage *d, const char *page)
{
	if (o == NULL)
		return NULL;
	json_object_set_new(o, "unreadable", json_integer((json_int_t)d->n));
	json_object_set_new(o, "unreadable_first", d->n > 0 ? json_string(d->first) : json_null());
	if (d->n > 0)
		fprintf(stderr, "vigil-console: %s: passed over %" PRIu64 " unreadable part(s) of "
		    "the archive, the first at %s\n", page, d->n, d->first);
	return o;
}
