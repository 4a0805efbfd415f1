/* SPDX-License-Identifier: MIT */
/*
 * console/audit.c - the append-only audit log (STATE/audit.log): one JSON
 * line per action (who, when, what, before, after), written with O_APPEND
 * and synced before the action is reported done. Never rewritten. One fd
 * is kept open; on SIGHUP (main.c) con_audit_reopen opens the path anew and
 * swaps it in only if that works, so an operator rotates the file by
 * moving it and sending SIGHUP (logrotate: deploy/vigil-console.logrotate);
 * if the path cannot be opened the old file stays open and is written to.
 * Everything here runs on the event loop's one thread (console.h), so a
 * reopen never races a write or a tail: no lock.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "console.h"
#include "file.h"
#include "vec.h"

#define AUDIT_LINE_MAX  (4u << 20) /* a rule diff is the largest entry */
#define AUDIT_VALUE_MAX (64u << 10) /* a line over the cap: such values are left out */

struct con_audit {
	int  fd;
	char path[4096];
};

/*
 * Opens path for appending (created 0640), and syncs its directory so that
 * a file just created (the first start, a rotation) is not lost with its
 * synced lines in a crash. The descriptor, or -errno with errbuf set.
 */
static int
audit_open_file(const char *path, char *errbuf, size_t errlen)
{
	char dir[4096];
	char *slash;
	int fd, e;

	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (fd < 0) {
		e = errno;
		snprintf(errbuf, errlen, "%s: %s", path, strerror(e));
		return -e;
	}
	snprintf(dir, sizeof dir, "%s", path);
	slash = strrchr(dir, '/');
	if (slash == NULL)
		snprintf(dir, sizeof dir, ".");
	else if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';
	if (vigil_fsync_dir(dir) != VIGIL_OK) {
		e = errno;
		snprintf(errbuf, errlen, "%s: syncing its directory: %s", path, strerror(e));
		close(fd);
		return -e;
	}
	return fd;
}

vigil_err
con_audit_open(const char *path, con_audit **ret_a, char *errbuf, size_t errlen)
{
	con_audit *a = calloc(1, sizeof *a);

	if (a == NULL)
		return VIGIL_ENOMEM;
	snprintf(a->path, sizeof a->path, "%s", path);
	a->fd = audit_open_file(path, errbuf, errlen);
	if (a->fd < 0) {
		vigil_err rv = vigil_err_from_errno(-a->fd);

		free(a);
		return rv;
	}
	*ret_a = a;
	return VIGIL_OK;
}

vigil_err
con_audit_reopen(con_audit *a, char *errbuf, size_t errlen)
{
	int fd = audit_open_file(a->path, errbuf, errlen);

	if (fd < 0)
		return vigil_err_from_errno(-fd);
	close(a->fd); /* every line in it is already synced */
	a->fd = fd;
	return VIGIL_OK;
}

const char *
con_audit_path(const con_audit *a)
{
	return a->path;
}

void
con_audit_close(con_audit *a)
{
	if (a == NULL)
		return;
	close(a->fd);
	free(a);
}

/*
 * A line over AUDIT_LINE_MAX (a deploy's diff of a few MB of changed
 * comments: each non-ASCII character 6 bytes as \uXXXX) is written anyway:
 * each value of before and after over AUDIT_VALUE_MAX is replaced by
 * {"omitted_bytes": N}, and the hashes and version numbers that name the
 * texts stay. An action that has happened is never left without its line
 * for being large.
 */
static void
audit_shrink(json_t *side)
{
	const char *k;
	json_t *v;
	void *tmp;

	if (!json_is_object(side))
		return;
	json_object_foreach_safe(side, tmp, k, v) {
		char *t = json_dumps(v, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_ENCODE_ANY);
		size_t n = t != NULL ? strlen(t) : 0;

		free(t);
		if (n > AUDIT_VALUE_MAX)
			json_object_set_new(side, k, json_pack("{s:I}", "omitted_bytes", (json_int_t)n));
	}
}

vigil_err
con_audit_write(con_audit *a, const con_user *who, const char *action, const char *target,
    json_t *before, json_t *after)
{
	char ts[32];
	json_t *o;
	char *text = NULL;
	vigil_err rv = VIGIL_OK;
	struct stat st;
	ssize_t w;
	size_t len;
	bool sized;

	vigil_time_format_rfc3339(vigil_now_ms(), ts, sizeof ts);
	o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:o}", "ts", ts,
	    "who", who != NULL ? who->name : "-", "role", who != NULL ? con_role_name(who->role) : "-",
	    "action", action, "target", target != NULL ? target : "",
	    "before", before != NULL ? before : json_null(),
	    "after", after != NULL ? after : json_null());
	if (o == NULL)
		return VIGIL_ENOMEM;
	text = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
	if (text != NULL && strlen(text) + 1 > AUDIT_LINE_MAX) {
		free(text);
		audit_shrink(json_object_get(o, "before"));
		audit_shrink(json_object_get(o, "after"));
		text = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
	}
	json_decref(o);
	if (text == NULL)
		return VIGIL_ENOMEM;
	len = strlen(text);
	if (len + 1 > AUDIT_LINE_MAX) {
		rv = VIGIL_ETOOBIG;
		goto out;
	}
	text[len++] = '\n'; /* replaces the NUL: write len bytes */
	/* One write(2) per line: with O_APPEND a line is never interleaved.
	 * A short one (a full disk) is cut off again: the next line appended
	 * to its fragment would make both unreadable. */
	sized = fstat(a->fd, &st) == 0;
	w = write(a->fd, text, len);
	if (w != (ssize_t)len) {
		if (w > 0 && sized && ftruncate(a->fd, st.st_size) != 0)
			fprintf(stderr, "vigil-console: audit log: a line cut short at byte %lld "
			    "stays: %s\n", (long long)st.st_size, strerror(errno));
		rv = VIGIL_EIO;
	} else if (fdatasync(a->fd) != 0) {
		rv = VIGIL_EIO;
	}
out:
	free(text);
	return rv;
}

/* The audit tail reads at most this much of the file's end: the newest
 * entries, however long the file has grown unrotated. */
#define AUDIT_TAIL_MAX ((off_t)64 << 20)

/* The last n entries of the file open on fd, newest first: reads a window
 * at the end, widened (x4, up to AUDIT_TAIL_MAX) until it holds n whole
 * lines or the start of the file. A line cut by the window's start is not
 * an entry. */
static json_t *
audit_tail_fd(int fd, uint32_t n)
{
	json_t *arr = json_array();
	struct stat st;
	off_t window = (off_t)1 << 20;
	char *buf = NULL;

	if (arr == NULL || fstat(fd, &st) != 0 || st.st_size <= 0)
		return arr;
	for (;;) {
		off_t from = st.st_size > window ? st.st_size - window : 0;
		size_t len = (size_t)(st.st_size - from), got = 0, end;
		if (vigil_array_resize(&buf, len, 1) != VIGIL_OK)
			break;
		while (got < len) {
			ssize_t r = pread(fd, buf + got, len - got, from + (off_t)got);

			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				break;
			got += (size_t)r;
		}
		json_array_clear(arr);
		end = got;
		while (end > 0 && json_array_size(arr) < n) {
			size_t s = end - 1;

			while (s > 0 && buf[s - 1] != '\n')
				s--;
			if (s == 0 && from > 0)
				break; /* cut by the window */
			if (end - s > 1) {
				json_t *o = json_loadb(buf + s, end - s, 0, NULL);

				if (o != NULL)
					json_array_append_new(arr, o);
			}
			end = s;
		}
		if (json_array_size(arr) >= n || from == 0 || window >= AUDIT_TAIL_MAX)
			break;
		window *= 4;
		if (window > AUDIT_TAIL_MAX)
			window = AUDIT_TAIL_MAX;
	}
	free(buf);
	return arr;
}

json_t *
con_audit_tail(con_audit *a, uint32_t n)
{
	char fdpath[64];
	json_t *arr;
	int fd;

	/* The file being written, whatever its name now (after a failed reopen
	 * the path may name nothing, or something else); the path without /proc. */
	snprintf(fdpath, sizeof fdpath, "/proc/self/fd/%d", a->fd);
	fd = open(fdpath, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		fd = open(a->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return json_array();
	arr = audit_tail_fd(fd, n);
	close(fd);
	return arr;
}
