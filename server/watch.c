/* SPDX-License-Identifier: MIT */
/*
 * server/watch.c - the rule-file watch (watch.h; docs/vigild.md, "Rules
 * hot reload"): the rule file and every list file the serving rules read
 * (rules_prog_list_file), each by device, inode, size and mtime, stat'ed
 * once a tick on the main thread. A change is reloaded once every file has
 * been stable for one tick, so a file being written is not compiled
 * half-way. After a reload (good or bad) the list set is the one of the
 * rules now serving: when a file does not compile, the last good set's
 * files stay watched. A SIGHUP reload syncs the watch first
 * (srv_watch_sync): what it compiles is not compiled again by the watch.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "srv.h"
#include "watch.h"

/* Stats f; true if it changed since the last stat (or was never stat'ed). */
static bool
srv_wfile_stat(srv_wfile *f)
{
	struct stat st;

	if (stat(f->path, &st) != 0) {
		if (!f->missing)
			srv_log("rules: %s: %s; the loaded rules keep serving", f->path,
			    strerror(errno));
		f->missing = true;
		return false;
	}
	f->missing = false;
	if (f->known && f->dev == st.st_dev && f->ino == st.st_ino && f->size == st.st_size &&
	    f->mtime.tv_sec == st.st_mtim.tv_sec && f->mtime.tv_nsec == st.st_mtim.tv_nsec)
		return false;
	f->known = true;
	f->dev = st.st_dev;
	f->ino = st.st_ino;
	f->size = st.st_size;
	f->mtime = st.st_mtim;
	return true;
}

void
srv_watch_free(srv_watch *w)
{
	for (uint32_t i = 0; i < w->n; i++)
		free(w->files[i].path);
	free(w->files);
	memset(w, 0, sizeof *w);
}

bool
srv_watch_init(srv_watch *w, const char *rules_path)
{
	memset(w, 0, sizeof *w);
	w->files = calloc(1, sizeof *w->files);
	if (w->files == NULL || (w->files[0].path = strdup(rules_path)) == NULL) {
		free(w->files);
		w->files = NULL;
		srv_log("rules: watch: out of memory");
		return false;
	}
	w->n = 1;
	/* quiet if missing: the load right after reports it, and stops start-up */
	w->files[0].missing = true;
	srv_wfile_stat(&w->files[0]);
	return true;
}

void
srv_watch_lists(srv_watch *w, const rules_prog *prog)
{
	srv_wfile *files = NULL;
	uint32_t n = 1, nl;

	if (w->files == NULL || prog == NULL)
		return;
	nl = rules_prog_nlist_files(prog);
	files = calloc((size_t)nl + 1, sizeof *files);
	if (files == NULL)
		goto nomem;
	files[0] = w->files[0];
	for (uint32_t i = 0; i < nl; i++) {
		const char *path = rules_prog_list_file(prog, i);
		uint32_t j;

		for (j = 0; j < n && strcmp(files[j].path, path) != 0; j++)
			;
		if (j < n) /* two lists of one file */
			continue;
		for (j = 1; j < w->n && strcmp(w->files[j].path, path) != 0; j++)
			;
		if (j < w->n) {
			files[n] = w->files[j];
			files[n].path = strdup(path);
		} else {
			memset(&files[n], 0, sizeof files[n]);
			files[n].path = strdup(path);
			if (files[n].path != NULL)
				srv_wfile_stat(&files[n]);
		}
		if (files[n].path == NULL)
			goto nomem;
		n++;
	}
	for (uint32_t i = 1; i < w->n; i++)
		free(w->files[i].path);
	free(w->files);
	w->files = files;
	w->n = n;
	return;
nomem:
	srv_log("rules: watch: out of memory; list files watched as before the load");
	for (uint32_t i = 1; files != NULL && i < n; i++)
		free(files[i].path);
	free(files);
}

/*
 * A list file that is gone does not hold the reload back: the new rules
 * may no longer read it (and if they do, the load says so).
 */
bool
srv_watch_tick(srv_watch *w, char *why, size_t len)
{
	bool changed = false;

	for (uint32_t i = 0; i < w->n; i++) {
		if (srv_wfile_stat(&w->files[i])) {
			changed = true;
			w->changed = i;
		}
	}
	if (changed) {
		w->pending = true;
		return false;
	}
	if (!w->pending || w->files[0].missing)
		return false;
	w->pending = false;
	if (w->changed == 0)
		snprintf(why, len, "file changed");
	else
		snprintf(why, len, "list file %s changed", w->files[w->changed].path);
	return true;
}

/*
 * Before the reload reads the files, not after: a change made while it
 * compiles is then seen on the next tick (compiled again at worst), never
 * taken for compiled.
 */
void
srv_watch_sync(srv_watch *w)
{
	for (uint32_t i = 0; i < w->n; i++)
		(void)srv_wfile_stat(&w->files[i]);
	w->pending = false;
}
