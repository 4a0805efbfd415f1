/* SPDX-License-Identifier: MIT */
/*
 * server/ship.c - ships the archive's sealed segments to a shared place
 * (docs/vigild.md, "Archive shipping"; docs/operations.md, "Running a
 * cluster"). As PostgreSQL's archive_command: for every sealed segment, in
 * sequence order, vigild runs [store] ship_command through /bin/sh, once for
 * the data file (.log or .log.zst) and once for its index (.idx), with %p
 * the file's path, %f its name, %r the replica's name (each substituted
 * single-quoted). Exit 0 means the file is at its destination whole
 * (the command's contract: copy to a temporary name, then rename; the
 * vigil-ship helper does that and verifies a SHA-256 sidecar). Anything
 * else is retried, the same segment first, with a doubling delay (1 s up to
 * ship_retry_max_s); nothing after it is shipped meanwhile.
 *
 * The thread runs beside scoring and touches nothing of it: it reads the
 * archive directory (a segment with an index is sealed: the writer renames
 * the index in last, and never changes a sealed segment's bytes; the one
 * change, compression, keeps the sequence number that names it), runs the
 * command and keeps in <datadir>/ship-state the sequence number of the last
 * segment shipped, so what was shipped is not shipped again after a
 * restart (a crash between the command's success and the state write ships
 * that segment once more: the command must accept a file that is already
 * there, as vigil-ship does).
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "file.h"
#include "srv.h"

extern char **environ;

#define SHIP_POLL_MS     2000u  /* a new sealed segment is seen within this */
#define SHIP_MAX_SEGS    65536u /* sealed segments considered per scan */
#define SHIP_CMD_MAX     (4 * SRV_PATH_MAX)

struct srv_ship {
	srv_server     *s;
	pthread_t       thread;
	pthread_mutex_t mu;
	pthread_cond_t  cv;
	bool            stop;
	char            dir[SRV_PATH_MAX + 16];        /* <datadir>/archive */
	char            state_path[SRV_PATH_MAX + 16]; /* <datadir>/ship-state */
	char            replica[64];
	ship_seg       *segs;                     /* scratch of one scan */
	uint64_t        gap_logged;               /* the unindexed segment last said */
	/* under mu */
	srv_ship_stats  st;
};

/* ---------------- state ---------------- */

/* Reads the state file: VIGIL_OK with *ret_seq (0 when there is none). */
static vigil_err
ship_state_load(const char *path, uint64_t *ret_seq, char *errbuf, size_t errlen)
{
	bool special = false;
	FILE *f = vigil_fopen_regular(path, &special, NULL); /* a FIFO would stall the start */
	unsigned long long v = 0;
	char line[128] = "", *end = NULL;
	int at = 1; /* the line being read */
	vigil_err rv = VIGIL_OK;

	if (f == NULL && !special && errno == ENOENT) {
		*ret_seq = 0;
		return VIGIL_OK;
	}
	if (f == NULL) {
		snprintf(errbuf, errlen, "archive shipping: %s: %s", path,
		    vigil_open_why(special, errno, line, sizeof line));
		return special ? VIGIL_EINVAL : VIGIL_EIO;
	}
	if (fgets(line, sizeof line, f) == NULL || strcmp(line, "vigil-ship-state 1\n") != 0 ||
	    (at = 2, fgets(line, sizeof line, f) == NULL) ||
	    strncmp(line, "shipped_through ", 16) != 0 || !isdigit((unsigned char)line[16]) ||
	    (errno = 0, v = strtoull(line + 16, &end, 10), errno != 0) ||
	    (*end != '\n' && *end != '\0')) {
		/* digits only: "-1" would read as 2^64-1 and ship nothing again */
		snprintf(errbuf, errlen, "archive shipping: %s:%d: not a ship state file "
		    "(\"vigil-ship-state 1\" then \"shipped_through SEQ\"); delete it to ship "
		    "every sealed segment again", path, at);
		rv = VIGIL_EINVAL;
	} else {
		*ret_seq = v;
	}
	fclose(f);
	return rv;
}

/* Writes the state: a temporary file, synced, renamed, the directory synced. */
static vigil_err
ship_state_save(srv_ship *sh, uint64_t seq, char *errbuf, size_t errlen)
{
	char tmp[SRV_PATH_MAX + 32], text[64];
	int fd, n;
	vigil_err rv = VIGIL_OK;

	snprintf(tmp, sizeof tmp, "%s.tmp", sh->state_path);
	n = snprintf(text, sizeof text, "vigil-ship-state 1\nshipped_through %" PRIu64 "\n", seq);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd < 0 || write(fd, text, (size_t)n) != n || fdatasync(fd) != 0) {
		snprintf(errbuf, errlen, "%s: %s", tmp, strerror(errno));
		rv = VIGIL_EIO;
	}
	if (fd >= 0)
		close(fd);
	if (rv == VIGIL_OK && rename(tmp, sh->state_path) != 0) {
		snprintf(errbuf, errlen, "%s: %s", sh->state_path, strerror(errno));
		rv = VIGIL_EIO;
	}
	if (rv == VIGIL_OK && vigil_fsync_dir(sh->s->cfg.data_dir) != VIGIL_OK) {
		snprintf(errbuf, errlen, "%s: syncing its directory: %s", sh->state_path,
		    strerror(errno));
		rv = VIGIL_EIO;
	}
	return rv;
}

/* ---------------- the archive directory ---------------- */

/* Parses "seg-YYYYMMDD-SSSSSSSSSSSSSSSSSSSS" + suffix. */
static bool
ship_name_parse(const char *name, const char *suffix, ship_seg *ret)
{
	size_t len = strlen(name), sl = strlen(suffix);
	char *end;

	if (len != 33 + sl || strncmp(name, "seg-", 4) != 0 || name[12] != '-' ||
	    strcmp(name + 33, suffix) != 0)
		return false;
	for (int i = 4; i < 33; i++)
		if (i != 12 && (name[i] < '0' || name[i] > '9'))
			return false;
	memcpy(ret->date, name + 4, 8);
	ret->date[8] = '\0';
	ret->seq = strtoull(name + 13, &end, 10);
	return end == name + 33;
}

static void
ship_data_name(const ship_seg *g, bool zst, char *buf, size_t cap)
{
	snprintf(buf, cap, "seg-%s-%020" PRIu64 ".log%s", g->date, g->seq, zst ? ".zst" : "");
}

typedef struct ship_look_arg {
	srv_ship       *sh;
	const ship_seg *g;
} ship_look_arg;

/* srv_ship_pick's look: stat of g's data file. */
static int
ship_look(void *arg, bool zst, uint64_t *ret_bytes)
{
	const ship_look_arg *a = arg;
	char name[96], path[SRV_PATH_MAX + 128];
	struct stat st;

	ship_data_name(a->g, zst, name, sizeof name);
	snprintf(path, sizeof path, "%s/%s", a->sh->dir, name);
	if (stat(path, &st) != 0)
		return -1;
	*ret_bytes = (uint64_t)st.st_size;
	return 0;
}

/* Whether segment g has its index. */
static bool
ship_has_idx(const srv_ship *sh, const ship_seg *g)
{
	char path[SRV_PATH_MAX + 128];
	struct stat st;

	snprintf(path, sizeof path, "%s/seg-%s-%020" PRIu64 ".idx", sh->dir, g->date, g->seq);
	return stat(path, &st) == 0;
}

/*
 * The sealed segments after `after`, in sequence order: those with an index
 * and a data file, the SHIP_MAX_SEGS lowest-numbered of them (srv_ship_keep).
 * Sizes are the data files'. VIGIL_OK with *ret_n, and *ret_more: how many
 * more wait beyond them.
 */
static vigil_err
ship_scan(srv_ship *sh, uint64_t after, uint32_t *ret_n, uint64_t *ret_more, char *errbuf,
    size_t errlen)
{
	DIR *d = opendir(sh->dir);
	struct dirent *e;
	uint32_t n = 0;
	uint64_t seen = 0, top = 0, gap = UINT64_MAX;

	if (d == NULL) {
		snprintf(errbuf, errlen, "%s: %s", sh->dir, strerror(errno));
		return VIGIL_EIO;
	}
	while ((e = readdir(d)) != NULL) {
		ship_seg      g;
		ship_look_arg look;

		if (ship_name_parse(e->d_name, ".log", &g) ||
		    ship_name_parse(e->d_name, ".log.zst", &g)) {
			/* a data file: the open segment (the highest), or a closed
			 * one whose index is not written yet (a failed write that
			 * the archive retries) */
			if (g.seq > top)
				top = g.seq;
			if (g.seq > after && g.seq < gap && !ship_has_idx(sh, &g))
				gap = g.seq;
			continue;
		}
		if (!ship_name_parse(e->d_name, ".idx", &g))
			continue;
		if (g.seq > top)
			top = g.seq;
		if (g.seq <= after)
			continue;
		seen++;
		if (!srv_ship_keep_would(sh->segs, n, SHIP_MAX_SEGS, g.seq))
			continue;
		look.sh = sh;
		look.g = &g;
		if (srv_ship_pick(ship_look, &look, &g.zst, &g.bytes))
			srv_ship_keep(sh->segs, &n, SHIP_MAX_SEGS, &g);
		else
			seen--; /* an index without its data: not a sealed segment */
	}
	closedir(d);
	srv_ship_sort(sh->segs, n);
	/* Nothing past a closed segment without its index: shipping moves
	 * past every number below what it ships, so one sealed late would be
	 * left behind for good. (The highest is the open segment.) */
	if (gap < top) {
		uint32_t k = 0;

		while (k < n && sh->segs[k].seq < gap)
			k++;
		if (k < n && sh->gap_logged != gap)
			srv_log("archive shipping: segment %" PRIu64 " is closed without its index "
			    "yet (the archive writes it again): the %u sealed after it wait for it",
			    gap, n - k);
		sh->gap_logged = gap;
		n = k;
	}
	*ret_n = n;
	*ret_more = seen > n ? seen - n : 0;
	return VIGIL_OK;
}

/* ---------------- running the command ---------------- */

/* Sleeps up to ms unless stopped; true when stopped. */
static bool
ship_wait(srv_ship *sh, uint64_t ms)
{
	struct timespec ts;
	bool stop;

	vigil_deadline_after(CLOCK_REALTIME, &ts, ms);
	pthread_mutex_lock(&sh->mu);
	while (!sh->stop && pthread_cond_timedwait(&sh->cv, &sh->mu, &ts) != ETIMEDOUT)
		;
	stop = sh->stop;
	pthread_mutex_unlock(&sh->mu);
	return stop;
}

static bool
ship_stopping(srv_ship *sh)
{
	bool stop;

	pthread_mutex_lock(&sh->mu);
	stop = sh->stop;
	pthread_mutex_unlock(&sh->mu);
	return stop;
}

/*
 * Runs the command for one file. VIGIL_OK when it exited 0; otherwise the
 * reason in errbuf: its exit status or signal, over ship_timeout_s (killed),
 * or vigild stopping (VIGIL_ECLOSED: killed, not a failure).
 */
static vigil_err
ship_run(srv_ship *sh, const char *name, char *errbuf, size_t errlen)
{
	char path[SRV_PATH_MAX + 128], cmd[SHIP_CMD_MAX];
	char *argv[] = { "/bin/sh", "-c", cmd, NULL };
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	uint64_t waited_ms = 0, limit_ms = (uint64_t)sh->s->cfg.ship_timeout_s * 1000u;
	pid_t pid;
	int rc, st;
	vigil_err rv;

	snprintf(path, sizeof path, "%s/%s", sh->dir, name);
	rv = srv_ship_expand(sh->s->cfg.ship_command, path, name, sh->replica, cmd, sizeof cmd);
	if (rv != VIGIL_OK) {
		snprintf(errbuf, errlen, "ship_command for %s: %s", name,
		    rv == VIGIL_ETOOBIG ? "longer than 4096 bytes once expanded" :
		    "a %% not followed by p, f, r or %");
		return rv;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawnattr_init(&at);
	/* its own process group: a timeout or a stop kills the whole pipeline */
	posix_spawnattr_setpgroup(&at, 0);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP);
	rc = posix_spawn(&pid, "/bin/sh", &fa, &at, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	if (rc != 0) {
		snprintf(errbuf, errlen, "ship_command for %s: cannot start /bin/sh: %s", name,
		    strerror(rc));
		return VIGIL_EIO;
	}
	for (;;) {
		pid_t w = waitpid(pid, &st, WNOHANG);

		if (w == pid)
			break;
		if (w < 0 && errno != EINTR) {
			snprintf(errbuf, errlen, "ship_command for %s: waitpid: %s", name,
			    strerror(errno));
			return VIGIL_EIO;
		}
		if (ship_stopping(sh) || (limit_ms > 0 && waited_ms >= limit_ms)) {
			bool stop = ship_stopping(sh);

			kill(-pid, SIGKILL);
			while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
				;
			if (stop) {
				snprintf(errbuf, errlen, "ship_command for %s: killed: vigild stopping",
				    name);
				return VIGIL_ECLOSED;
			}
			snprintf(errbuf, errlen, "ship_command for %s: killed after ship_timeout_s "
			    "(%u s)", name, sh->s->cfg.ship_timeout_s);
			return VIGIL_ETIMEDOUT;
		}
		struct timespec ts = { 0, 20 * 1000000L };
		nanosleep(&ts, NULL);
		waited_ms += 20;
	}
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return VIGIL_OK;
	if (WIFEXITED(st))
		snprintf(errbuf, errlen, "ship_command for %s: exit %d", name, WEXITSTATUS(st));
	else
		snprintf(errbuf, errlen, "ship_command for %s: killed by signal %d", name,
		    WIFSIGNALED(st) ? WTERMSIG(st) : 0);
	return VIGIL_EIO;
}

/* ---------------- the thread ---------------- */

static void
ship_set_pending(srv_ship *sh, const ship_seg *segs, uint32_t n, uint32_t from, uint64_t more)
{
	uint64_t bytes = 0;

	for (uint32_t i = from; i < n; i++)
		bytes += segs[i].bytes;
	pthread_mutex_lock(&sh->mu);
	sh->st.unshipped_segments = n - from + more;
	sh->st.unshipped_bytes = bytes;
	pthread_mutex_unlock(&sh->mu);
}

static void
ship_fail(srv_ship *sh, const char *why, uint64_t retry_ms)
{
	bool same;

	pthread_mutex_lock(&sh->mu);
	same = sh->st.failing && strcmp(sh->st.last_error, why) == 0;
	sh->st.failures++;
	sh->st.failing = true;
	snprintf(sh->st.last_error, sizeof sh->st.last_error, "%s", why);
	pthread_mutex_unlock(&sh->mu);
	/* Every failure is counted; the same one is logged once. */
	if (!same)
		srv_log("archive shipping: %s; retrying in %llu s, then with a doubling delay up "
		    "to %u s", why, (unsigned long long)(retry_ms / 1000), sh->s->cfg.ship_retry_max_s);
}

static void *
ship_thread(void *arg)
{
	srv_ship *sh = arg;
	uint64_t backoff_ms = 0, max_ms = (uint64_t)sh->s->cfg.ship_retry_max_s * 1000u;
	char why[SRV_ERR_MAX];

	for (;;) {
		uint64_t through;
		uint32_t n = 0, i;
		uint64_t more = 0;
		vigil_err rv;

		pthread_mutex_lock(&sh->mu);
		through = sh->st.shipped_through;
		pthread_mutex_unlock(&sh->mu);
		rv = ship_scan(sh, through, &n, &more, why, sizeof why);
		if (rv != VIGIL_OK) {
			backoff_ms = backoff_ms == 0 ? 1000 : backoff_ms * 2 > max_ms ? max_ms :
			    backoff_ms * 2;
			ship_fail(sh, why, backoff_ms);
			if (ship_wait(sh, backoff_ms))
				break;
			continue;
		}
		ship_set_pending(sh, sh->segs, n, 0, more);
		for (i = 0; i < n; i++) {
			const ship_seg *g = &sh->segs[i];
			char data[96], idx[96];
			struct stat st;

			ship_data_name(g, g->zst, data, sizeof data);
			snprintf(idx, sizeof idx, "seg-%s-%020" PRIu64 ".idx", g->date, g->seq);
			rv = ship_run(sh, data, why, sizeof why);
			if (rv == VIGIL_OK)
				rv = ship_run(sh, idx, why, sizeof why);
			if (rv == VIGIL_ECLOSED)
				goto out;
			if (rv != VIGIL_OK) {
				char path[SRV_PATH_MAX + 128];

				/* compressed (or deleted by retention) under us: scan again */
				snprintf(path, sizeof path, "%s/%s", sh->dir, data);
				if (stat(path, &st) != 0 && errno == ENOENT)
					break;
				backoff_ms = backoff_ms == 0 ? 1000 : backoff_ms * 2 > max_ms ?
				    max_ms : backoff_ms * 2;
				ship_fail(sh, why, backoff_ms);
				break;
			}
			rv = ship_state_save(sh, g->seq, why, sizeof why);
			pthread_mutex_lock(&sh->mu);
			sh->st.shipped_through = g->seq;
			sh->st.shipped++;
			sh->st.last_ok_ms = vigil_now_ms();
			if (sh->st.failing)
				srv_log("archive shipping: ok again (%s shipped)", data);
			sh->st.failing = false;
			sh->st.last_error[0] = '\0';
			pthread_mutex_unlock(&sh->mu);
			if (rv != VIGIL_OK) /* shipped; after a restart it is shipped again */
				srv_log("archive shipping: cannot record %s as shipped: %s", data, why);
			backoff_ms = 0;
			ship_set_pending(sh, sh->segs, n, i + 1, more);
			if (ship_stopping(sh))
				goto out;
		}
		if (ship_wait(sh, i < n && backoff_ms > 0 ? backoff_ms : i < n ? 0 : SHIP_POLL_MS))
			break;
	}
out:
	return NULL;
}

vigil_err
srv_ship_start(srv_server *s, srv_ship **ret_sh, char *errbuf, size_t errlen)
{
	srv_ship *sh;
	uint64_t through = 0;
	vigil_err rv;
	int rc;

	sh = calloc(1, sizeof *sh);
	if (sh == NULL || (sh->segs = calloc(SHIP_MAX_SEGS, sizeof *sh->segs)) == NULL) {
		free(sh);
		snprintf(errbuf, errlen, "archive shipping: out of memory");
		return VIGIL_ENOMEM;
	}
	sh->s = s;
	snprintf(sh->dir, sizeof sh->dir, "%s/archive", s->cfg.data_dir);
	snprintf(sh->state_path, sizeof sh->state_path, "%s/ship-state", s->cfg.data_dir);
	if (s->cfg.cluster_replica[0] != '\0')
		snprintf(sh->replica, sizeof sh->replica, "%s", s->cfg.cluster_replica);
	else if (gethostname(sh->replica, sizeof sh->replica - 1) != 0)
		snprintf(sh->replica, sizeof sh->replica, "vigild");
	rv = ship_state_load(sh->state_path, &through, errbuf, errlen);
	if (rv != VIGIL_OK)
		goto fail;
	sh->st.shipped_through = through;
	pthread_mutex_init(&sh->mu, NULL);
	pthread_cond_init(&sh->cv, NULL);
	rc = pthread_create(&sh->thread, NULL, ship_thread, sh);
	if (rc != 0) {
		snprintf(errbuf, errlen, "archive shipping: cannot start its thread: %s",
		    strerror(rc));
		pthread_mutex_destroy(&sh->mu);
		pthread_cond_destroy(&sh->cv);
		rv = VIGIL_EIO;
		goto fail;
	}
	srv_log("archive shipping: on, as replica %s, segments after %llu", sh->replica,
	    (unsigned long long)through);
	*ret_sh = sh;
	return VIGIL_OK;
fail:
	free(sh->segs);
	free(sh);
	return rv;
}

void
srv_ship_stop(srv_ship *sh)
{
	if (sh == NULL)
		return;
	pthread_mutex_lock(&sh->mu);
	sh->stop = true;
	pthread_cond_signal(&sh->cv);
	pthread_mutex_unlock(&sh->mu);
	pthread_join(sh->thread, NULL);
	if (sh->st.unshipped_segments > 0)
		srv_log("archive shipping: stopping with %llu sealed segment(s) not shipped",
		    (unsigned long long)sh->st.unshipped_segments);
	pthread_mutex_destroy(&sh->mu);
	pthread_cond_destroy(&sh->cv);
	free(sh->segs);
	free(sh);
}

void
srv_ship_get_stats(srv_ship *sh, srv_ship_stats *ret_stats)
{
	pthread_mutex_lock(&sh->mu);
	*ret_stats = sh->st;
	pthread_mutex_unlock(&sh->mu);
}
