/* SPDX-License-Identifier: MIT */
/*
 * server/ship.h - private to server/: archive shipping (ship.c, shipcmd.c)
 * and the counters /metrics shows of it.
 */
#ifndef VIGIL_SERVER_SHIP_H
#define VIGIL_SERVER_SHIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "vigil.h"

struct srv_server;

/*
 * Archive shipping (docs/vigild.md, "Archive shipping"): a thread that runs
 * cfg.ship_command for each sealed segment of <datadir>/archive in sequence
 * order (data file, then index), retries a failure with a doubling delay,
 * and keeps the last segment shipped in <datadir>/ship-state. Never on the
 * scoring path.
 */
typedef struct srv_ship srv_ship;

typedef struct srv_ship_stats {
	uint64_t shipped_through;    /* sequence number of the last segment shipped; 0: none */
	uint64_t shipped;            /* segments shipped since start */
	uint64_t failures;           /* command runs that failed (each retried) */
	uint64_t unshipped_segments; /* sealed, not shipped yet (as of the last scan) */
	uint64_t unshipped_bytes;    /* their data files' bytes (of the first 65,536 when more wait) */
	int64_t  last_ok_ms;         /* last segment shipped, Unix ms; 0: none yet */
	bool     failing;            /* the last attempt failed */
	char     last_error[SRV_ERR_MAX]; /* why ("" while not failing) */
} srv_ship_stats;

/*
 * Which data file of a sealed segment to ship: look(arg, zst, &bytes) is 0
 * when the segment's .log.zst (zst) or .log is there, with its size.
 * Compressed first: while compression runs both exist, and .log.zst
 * appears only whole (renamed in). It is renamed in before .log goes, so a
 * .log gone between the two looks means .log.zst is there now: it is
 * looked at once more, and the segment is not skipped (shipping a later
 * one would move past it for good). false: neither is there.
 */
static inline bool
srv_ship_pick(int (*look)(void *arg, bool zst, uint64_t *ret_bytes), void *arg,
    bool *ret_zst, uint64_t *ret_bytes)
{
	for (int k = 0; k < 3; k++) {
		bool z = k != 1;

		if (look(arg, z, ret_bytes) == 0) {
			*ret_zst = z;
			return true;
		}
	}
	return false;
}

/* A sealed segment found by a scan. */
typedef struct ship_seg {
	uint64_t seq;        /* the number in its name */
	uint64_t bytes;      /* the data file's size */
	bool     zst;        /* the data file is .log.zst */
	char     date[9];    /* YYYYMMDD of its name */
} ship_seg;

/*
 * A scan keeps the cap lowest-numbered segments it finds (more may wait:
 * a long outage of the shared place, a small segment_max_mb), in whatever
 * order the directory lists them, as a max-heap on seq in segs[0..*n):
 * srv_ship_keep_would tells whether a segment numbered seq would be kept
 * (so that its files are looked at only then), srv_ship_keep adds g,
 * pushing out the highest when full. Keeping the first cap listed instead
 * would ship a later segment before an earlier one left out, and shipping
 * moves past every number below what it shipped, for good. srv_ship_sort
 * orders segs[0..n) by seq (the heap is then gone).
 */
bool srv_ship_keep_would(const ship_seg *segs, uint32_t n, uint32_t cap, uint64_t seq);
void srv_ship_keep(ship_seg *segs, uint32_t *n, uint32_t cap, const ship_seg *g);
void srv_ship_sort(ship_seg *segs, uint32_t n);

/* Expands tmpl into buf: %p path, %f file, %r replica, each single-quoted
 * for /bin/sh; %% a %. VIGIL_OK; VIGIL_EINVAL for % followed by anything
 * else; VIGIL_ETOOBIG when buf (cap bytes) is too small. */
vigil_err srv_ship_expand(const char *tmpl, const char *path, const char *file,
    const char *replica, char *buf, size_t cap);
/* Reads <datadir>/ship-state and starts the thread; errbuf says why not
 * (a damaged state file: VIGIL_EINVAL). */
vigil_err srv_ship_start(struct srv_server *s, srv_ship **ret_sh, char *errbuf, size_t errlen);
/* Kills a command that runs (the segment is shipped again at the next start)
 * and joins the thread. NULL: no-op. */
void      srv_ship_stop(srv_ship *sh);
void      srv_ship_get_stats(srv_ship *sh, srv_ship_stats *ret_stats);

#endif
