/* SPDX-License-Identifier: MIT */
/*
 * server/watch.h - the rule-file watch (watch.c): the rule file and every
 * list file the serving rules read, each known by its identity (device,
 * inode, size, mtime in ns). The main thread owns it; it tells when a
 * reload is due and is told when a SIGHUP reload is about to read the
 * files, so one change is compiled once whatever triggers it.
 */
#ifndef VIGIL_SERVER_WATCH_H
#define VIGIL_SERVER_WATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "rules.h"

typedef struct srv_wfile {
	char           *path;    /* malloc'd */
	bool            known;   /* stat'ed at least once */
	bool            missing; /* the last stat failed (logged once) */
	dev_t           dev;
	ino_t           ino;
	off_t           size;
	struct timespec mtime;
} srv_wfile;

typedef struct srv_watch {
	bool       pending; /* changed on the last tick; reload if still the same */
	uint32_t   changed; /* index of the file that changed last (for the log) */
	srv_wfile *files;   /* [0] the rule file, then the list files */
	uint32_t   n;
} srv_watch;

/* Starts watching rules_path (before the first load reads it). false
 * (logged) when out of memory. Free with srv_watch_free. */
bool srv_watch_init(srv_watch *w, const char *rules_path);
/* Frees the paths; *w is zeroed. A zeroed watch is a no-op. */
void srv_watch_free(srv_watch *w);
/* After a load (good or bad): watch the list files of prog, the rules now
 * serving (NULL: none). A file watched before keeps the identity taken
 * before the load read it, so a change during the load is seen next tick.
 * Out of memory keeps the previous set (logged). */
void srv_watch_lists(srv_watch *w, const rules_prog *prog);
/* One 100 ms tick: true when a change has settled (every file the same as
 * on the previous tick) and the rule file is there; why[0..len) then says
 * what changed, and the caller reloads. */
bool srv_watch_tick(srv_watch *w, char *why, size_t len);
/* A reload not triggered by the watch (SIGHUP) is about to read the files:
 * their identities now are the compiled ones, and a change seen before
 * and not yet reloaded is covered by that reload. */
void srv_watch_sync(srv_watch *w);

#endif
