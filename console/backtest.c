/* SPDX-License-Identifier: MIT */
/*
 * console/backtest.c - POST /api/rules/backtest (docs/console.md, "Rules"):
 * what an edited rule file would have decided over the last N days of the
 * archive, against what was decided.
 *
 * Two modes, the reply's "mode" says which ran and "mode_reason" why:
 *   exact    a rules-only change (no tuned threshold differs, every feature
 *            the file reads is archived): one vigil-replay --exact, which
 *            evaluates the edited file on the values production archived
 *            with each score (its generation's thresholds and model) and
 *            compares with production's own archived outcome. The unchanged
 *            file gives 0 changes and production's decisions.
 *   nightly  otherwise, or when asked: the archive's transactions replayed
 *            with both files through vigil-replay --nightly, the features and
 *            thresholds rebuilt as of each day (two child processes).
 * The children run in a process group of their own, at a lower CPU and I/O
 * priority than vigild; the event loop goes on meanwhile.
 *
 * A back-test is bounded: its work directory under STATE/tmp may use
 * --backtest-disk-mib, and STATE's filesystem must keep --backtest-reserve-mib
 * free (vigild may share it: at ENOSPC it refuses every score), checked
 * before it starts and every second while it runs; over either, or when its
 * client goes away, its processes are killed and the directory removed.
 * Directories a crash left behind are removed at start.
 */
#include <dirent.h>
#include <errno.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
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

#define BT_CASES_MAX     200
#define BT_RULES_MAX     (1u << 20) /* the deployed file's size, as editor.c reads it */
#define BT_TIMEOUT_S     600
#define BT_NICE          10   /* CPU: below vigild's 0 */
#define BT_IOPRIO        7    /* I/O: best effort, its lowest level */
#define BT_CHECK_MS      1000 /* disk checked this often while it runs */

struct con_backtest {
	con_app                  *app;
	struct evhttp_request    *req;
	struct evhttp_connection *conn;
	con_user                  who;
	pid_t                     pid[2];
	int                       status[2];
	bool                      done[2];
	char                      tmp[4096];
	char                      edited[4500];
	int64_t                   from_ms, to_ms;
	uint32_t                  days;
	bool                      nightly;
	bool                      exact;  /* one vigil-replay --exact (child 1) */
	char                      why[600]; /* the mode's reason */
	json_t                   *inexact; /* exact: rows_inexact, missing_features */
	uint64_t                  t0;
	struct event             *timer;
	struct event             *check;  /* disk budget, free space, client gone */
	bool                      hooked; /* bt_conn_closed runs when conn closes */
};


static int
bt_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/*
 * What back-tests of an earlier run left (killed with the console, or a
 * crash): STATE/tmp/backtest-* directories and the edited copies
 * DIR/.BASE.backtest-PID next to the rule file. Removed at start; a
 * console has one back-test at a time and none is running yet.
 */
void
con_backtest_prune(con_app *app)
{
	char dir[4200], path[4600], prefix[300];
	struct dirent *e;
	DIR *d;

	snprintf(dir, sizeof dir, "%s/tmp", app->o.state);
	d = opendir(dir);
	while (d != NULL && (e = readdir(d)) != NULL) {
		if (strncmp(e->d_name, "backtest-", 9) != 0)
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		fprintf(stderr, "vigil-console: removing %s (a back-test of an earlier run)\n", path);
		(void)nftw(path, bt_rm_one, 16, FTW_DEPTH | FTW_PHYS);
	}
	if (d != NULL)
		closedir(d);
	snprintf(prefix, sizeof prefix, ".%s.backtest-", con_rules_base(app));
	d = opendir(con_rules_dir(app));
	while (d != NULL && (e = readdir(d)) != NULL) {
		if (strncmp(e->d_name, prefix, strlen(prefix)) != 0)
			continue;
		snprintf(path, sizeof path, "%s/%s", con_rules_dir(app), e->d_name);
		(void)unlink(path);
	}
	if (d != NULL)
		closedir(d);
}

static void
bt_free(con_backtest *bt)
{
	if (bt == NULL)
		return;
	if (bt->timer != NULL)
		event_free(bt->timer);
	if (bt->check != NULL)
		event_free(bt->check);
	if (bt->edited[0] != '\0')
		unlink(bt->edited);
	json_decref(bt->inexact);
	if (bt->tmp[0] != '\0' && getenv("VIGIL_CONSOLE_KEEP_BACKTEST") == NULL)
		nftw(bt->tmp, bt_rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(bt);
}

static void bt_kill(con_backtest *bt);

/* The client went away: nobody to answer, nothing to go on for. */
static void
bt_conn_closed(void *arg)
{
	con_backtest *bt = arg;
	con_app *app = bt->app;

	bt->req = NULL;
	bt->conn = NULL;
	bt_kill(bt);
	fprintf(stderr, "vigil-console: %s's back-test stopped: the client went away after %.1f s\n",
	    bt->who.name, (double)(vigil_mono_ns() - bt->t0) / 1e9);
	if (app->bt == bt)
		app->bt = NULL;
	bt_free(bt);
}

/* Bytes in use under the back-test's directory (nftw has no argument). */
static uint64_t bt_du_sum;

static int
bt_du_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)path;
	(void)flag;
	(void)ftw;
	bt_du_sum += (uint64_t)st->st_blocks * 512;
	return 0;
}

static uint64_t
bt_du(const char *dir)
{
	bt_du_sum = 0;
	(void)nftw(dir, bt_du_one, 16, FTW_PHYS);
	return bt_du_sum;
}

/* Free bytes for an unprivileged writer on path's filesystem; UINT64_MAX if
 * it cannot be told. */
static uint64_t
bt_free_bytes(const char *path)
{
	struct statvfs sv;

	if (statvfs(path, &sv) != 0)
		return UINT64_MAX;
	return (uint64_t)sv.f_bavail * sv.f_frsize;
}

static void
bt_reply(con_backtest *bt, int code, json_t *o)
{
	if (bt->conn != NULL)
		(void)vigil_evconn_on_close(bt->app->conns, bt->conn, NULL, NULL);
	if (bt->req != NULL) {
		vigil_evconn_seen(bt->app->conns, bt->req); /* its deadline runs again */
		con_send_json(bt->req, code, o);
	} else {
		json_decref(o);
	}
	bt->req = NULL;
	bt->conn = NULL;
}

static vigil_err
bt_spawn(con_backtest *bt, int i, const char *rules)
{
	con_app *app = bt->app;
	char from[32], to[32], res[4200], sum[4200], out[4200], work[4200];
	const char *argv[32];
	int n = 0, rc;
	pid_t pid;

	vigil_time_format_rfc3339(bt->from_ms, from, sizeof from);
	vigil_time_format_rfc3339(bt->to_ms, to, sizeof to);
	snprintf(res, sizeof res, "%s/results%d.jsonl", bt->tmp, i);
	snprintf(sum, sizeof sum, "%s/summary%d.json", bt->tmp, i);
	snprintf(out, sizeof out, "%s/replay%d.log", bt->tmp, i);
	snprintf(work, sizeof work, "%s/work%d", bt->tmp, i);
	argv[n++] = app->o.replay;
	argv[n++] = "--archive";
	argv[n++] = app->o.data;
	argv[n++] = "--from";
	argv[n++] = from;
	argv[n++] = "--to";
	argv[n++] = to;
	argv[n++] = "--rules";
	argv[n++] = rules;
	argv[n++] = "--assume-legit";
	argv[n++] = "--results";
	argv[n++] = res;
	argv[n++] = "--summary";
	argv[n++] = sum;
	argv[n++] = "-q";
	if (bt->exact)
		argv[n++] = "--exact";
	if (bt->nightly) {
		argv[n++] = "--nightly";
		argv[n++] = "--work";
		argv[n++] = work;
	}
	argv[n] = NULL;
	/* fork, not posix_spawn: the child lowers its CPU and I/O priority and
	 * leads a process group (what vigil-replay starts dies with it); only
	 * async-signal-safe calls until exec */
	/* what the log says if exec fails (made here: no snprintf after fork) */
	char noexec[PATH_MAX + 64];
	int nelen = snprintf(noexec, sizeof noexec, "cannot run %s: not found or not "
	    "executable (--replay)\n", app->o.replay);

	if (nelen < 0 || (size_t)nelen >= sizeof noexec)
		nelen = (int)sizeof noexec - 1;
	pid = fork();
	if (pid == 0) {
		int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
		int o = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);

		(void)setpgid(0, 0);
		(void)!nice(BT_NICE);
		/* IOPRIO_WHO_PROCESS 1; IOPRIO_CLASS_BE 2 << IOPRIO_CLASS_SHIFT 13 */
		(void)syscall(SYS_ioprio_set, 1, 0, (2 << 13) | BT_IOPRIO);
		if (in < 0 || o < 0 || dup2(in, 0) < 0 || dup2(o, 1) < 0 || dup2(o, 2) < 0)
			_exit(127);
		execvp(app->o.replay, (char *const *)argv);
		(void)!write(2, noexec, (size_t)nelen);
		_exit(127);
	}
	if (pid < 0) {
		rc = errno;
		bt->pid[i] = 0;
		bt->done[i] = true;
		bt->status[i] = -1;
		return vigil_err_from_errno(rc);
	}
	(void)setpgid(pid, pid); /* here too: set before any kill(-pid) */
	bt->pid[i] = pid;
	return VIGIL_OK;
}

typedef struct bt_row {
	char    txn_id[VIGIL_ID_MAX + 1];
	json_t *o;
} bt_row;

/* Next JSON line of f, or NULL at the end. A line is read whole, however
 * long (an exact back-test's line carries both sides' hits). */
static json_t *
bt_next(FILE *f)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	json_t *o = NULL;

	while (o == NULL && (n = getline(&line, &cap, f)) > 0)
		o = json_loadb(line, (size_t)n, 0, NULL);
	free(line);
	return o;
}

/* --exact: the next line's production side (its "archived", with the
 * txn_id) in *ret_a and the edited file's in *ret_b; false at the end. */
static bool
bt_next_exact(FILE *f, json_t **ret_a, json_t **ret_b)
{
	json_t *b = bt_next(f), *a;

	if (b == NULL)
		return false;
	a = json_object_get(b, "archived");
	a = a != NULL ? json_copy(a) : json_object();
	json_object_set(a, "txn_id", json_object_get(b, "txn_id"));
	*ret_a = a;
	*ret_b = b;
	return true;
}

static json_t *
bt_side(json_t *o)
{
	json_t *hits = json_object_get(o, "hits");
	return json_pack("{s:O, s:O, s:O}", "decision", json_object_get(o, "decision"),
	    "score", json_object_get(o, "score"), "hits", hits != NULL ? hits : json_null());
}

/* Child i's JSON summary was written: the run went to its end. */
static bool
bt_summary_ok(const con_backtest *bt, int i)
{
	char path[4200];
	json_t *s;

	snprintf(path, sizeof path, "%s/summary%d.json", bt->tmp, i);
	s = json_load_file(path, 0, NULL);
	json_decref(s);
	return s != NULL;
}

/* The last 4 KiB of the log at path, NUL-terminated (its last line says why
 * a replay failed, however long the log), or NULL. The caller frees it. */
static char *
bt_log_tail(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	char *buf = NULL;
	ssize_t r = -1;

	if (fd >= 0 && fstat(fd, &st) == 0 && (buf = malloc(4097)) != NULL)
		r = pread(fd, buf, 4096, st.st_size > 4096 ? st.st_size - 4096 : 0);
	if (fd >= 0)
		close(fd);
	if (r < 0) {
		free(buf);
		return NULL;
	}
	buf[r] = '\0';
	return buf;
}

static void
bt_finish(con_backtest *bt)
{
	con_app *app = bt->app;
	char path[4200], log[4200], *text = NULL;
	json_t *sum[2] = { NULL, NULL }, *o, *cases, *trans;
	FILE *f0 = NULL, *f1 = NULL;
	uint64_t rows = 0, changed = 0, unknown = 0;
	uint64_t tr[4][4] = { { 0 } };
	json_t *money[2] = { json_object(), json_object() };
	con_damage dmg = { 0 }; /* the archive's damaged stretches the replays skipped */
	static const char *const dn[4] = { "none", "allow", "review", "decline" };

	for (int i = bt->exact ? 1 : 0; i < 2; i++) {
		/* vigil-replay exits 1 when it skipped damaged records: the run
		 * is whole otherwise, and what it skipped is in its summary */
		if (bt->status[i] != 0 && !(bt->status[i] == 1 && bt_summary_ok(bt, i))) {
			snprintf(log, sizeof log, "%s/replay%d.log", bt->tmp, i);
			text = bt_log_tail(log);
			/* the last line says why */
			char *last = text;
			for (char *p = text; p != NULL && *p != '\0'; p++)
				if (*p == '\n' && p[1] != '\0')
					last = p + 1;
			json_t *eo = con_error_body(500, NULL, "%s", last != NULL && *last ? last :
			    "vigil-replay failed");

			json_object_set_new(eo, "file", json_string(i == 0 ? "current" : "edited"));
			json_object_set_new(eo, "status", json_integer(bt->status[i]));
			bt_reply(bt, 500, eo);
			free(text);
			json_decref(money[0]);
			json_decref(money[1]);
			json_decref(sum[0]);
			return;
		}
		snprintf(path, sizeof path, "%s/summary%d.json", bt->tmp, i);
		sum[i] = json_load_file(path, 0, NULL);
		/* both runs read the same archive: what one skipped, the other did */
		json_int_t nc = json_integer_value(json_object_get(sum[i], "corrupt_stretches"));
		const char *fc = json_string_value(json_object_get(sum[i], "corrupt_first"));
		if (nc > 0 && (uint64_t)nc > dmg.n) {
			dmg.n = (uint64_t)nc;
			snprintf(dmg.first, sizeof dmg.first, "%s", fc != NULL ? fc : "");
		}
	}
	if (bt->exact && sum[1] != NULL) {
		/* one run: production's measures and the edited file's */
		json_t *ex = json_object_get(sum[1], "exact");

		sum[0] = json_pack("{s:O?}", "metrics", json_object_get(sum[1], "metrics"));
		json_object_set(sum[1], "metrics",
		    json_object_get(json_object_get(sum[1], "compare"), "metrics"));
		bt->inexact = json_pack("{s:O?, s:O?, s:O?}", "rows_inexact",
		    json_object_get(ex, "rows_inexact"), "missing_features",
		    json_object_get(ex, "missing_features"), "generations_missing",
		    json_object_get(ex, "generations_missing"));
	}
	snprintf(path, sizeof path, "%s/results%d.jsonl", bt->tmp, bt->exact ? 1 : 0);
	f0 = fopen(path, "r");
	snprintf(path, sizeof path, "%s/results1.jsonl", bt->tmp);
	f1 = fopen(path, "r");
	cases = json_array();
	while (f0 != NULL && f1 != NULL) {
		json_t *a = NULL, *b = NULL;

		if (bt->exact) {
			if (!bt_next_exact(f1, &a, &b))
				a = b = NULL;
		} else {
			a = bt_next(f0);
			b = bt_next(f1);
		}
		if (a == NULL || b == NULL) {
			json_decref(a);
			json_decref(b);
			break;
		}
		rows++;
		const char *ia = json_string_value(json_object_get(a, "txn_id"));
		const char *ib = json_string_value(json_object_get(b, "txn_id"));
		if (ia == NULL || ib == NULL || strcmp(ia, ib) != 0) {
			json_decref(a);
			json_decref(b);
			fclose(f0);
			fclose(f1);
			json_decref(cases);
			json_decref(sum[0]);
			json_decref(sum[1]);
			json_decref(money[0]);
			json_decref(money[1]);
			json_t *eo = con_error_body(500, NULL, "the two replays read different "
			    "transactions (the archive changed under them?)");

			json_object_set_new(eo, "row", json_integer((json_int_t)rows));
			bt_reply(bt, 500, eo);
			return;
		}
		const char *da = json_string_value(json_object_get(a, "decision"));
		const char *db = json_string_value(json_object_get(b, "decision"));
		vigil_decision xa = VIGIL_DECISION_NONE, xb = VIGIL_DECISION_NONE;
		if (da != NULL)
			(void)vigil_decision_parse(da, &xa);
		if (db != NULL)
			(void)vigil_decision_parse(db, &xb);
		tr[xa & 3][xb & 3]++;
		bool aa = xa == VIGIL_DECISION_REVIEW || xa == VIGIL_DECISION_DECLINE;
		bool ab = xb == VIGIL_DECISION_REVIEW || xb == VIGIL_DECISION_DECLINE;
		if (aa || ab) {
			/* money caught: alerted frauds, in their currencies */
			int label;
			int64_t amount;
			char cur[4];
			if (con_index_txn_label(app->ix, ia, &label, &amount, cur) == VIGIL_OK &&
			    label == 1) {
				if (amount < 0) {
					unknown++;
				} else {
					int e = vigil_currency_exponent(cur);
					double major = (double)amount / pow(10, e < 0 ? 2 : e);
					for (int f = 0; f < 2; f++) {
						if (!(f == 0 ? aa : ab))
							continue;
						json_t *m = json_object_get(money[f], cur);
						json_object_set_new(money[f], cur, json_real(major +
						    (m != NULL ? json_real_value(m) : 0)));
					}
				}
			}
		}
		if (xa != xb) {
			changed++;
			if (json_array_size(cases) < BT_CASES_MAX) {
				const char *id = json_string_value(json_object_get(a, "txn_id"));
				int label = id != NULL ? con_index_label_of(app->ix, id) : -1;
				json_t *c = json_pack("{s:s?, s:o, s:o, s:o}", "txn_id", id,
				    "before", bt_side(a), "after", bt_side(b), "label",
				    con_json_label(label));

				/* exact: where the transaction is, for its link (a search) */
				if (json_object_get(a, "card_id") != NULL) {
					json_object_set(c, "card_id", json_object_get(a, "card_id"));
					json_object_set(c, "time", json_object_get(a, "event_time"));
				}
				json_array_append_new(cases, c);
			}
		}
		json_decref(a);
		json_decref(b);
	}
	if (f0 != NULL)
		fclose(f0);
	if (f1 != NULL)
		fclose(f1);
	trans = json_object();
	for (int a = 1; a < 4; a++)
		for (int b = 1; b < 4; b++)
			if (a != b) {
				char k[32];
				snprintf(k, sizeof k, "%s->%s", dn[a], dn[b]);
				json_object_set_new(trans, k, json_integer((json_int_t)tr[a][b]));
			}
	char from[32], to[32];
	vigil_time_format_rfc3339(bt->from_ms, from, sizeof from);
	vigil_time_format_rfc3339(bt->to_ms, to, sizeof to);
	o = json_pack("{s:s, s:s, s:i, s:b, s:I, s:I, s:o, s:o, s:o, s:o, s:f}",
	    "from", from, "to", to, "days", (int)bt->days, "nightly", bt->nightly,
	    "rows", (json_int_t)rows, "changed", (json_int_t)changed, "transitions", trans,
	    "current", sum[0] != NULL ? json_incref(json_object_get(sum[0], "metrics")) : json_null(),
	    "edited", sum[1] != NULL ? json_incref(json_object_get(sum[1], "metrics")) : json_null(),
	    "cases", cases, "seconds", (double)(vigil_mono_ns() - bt->t0) / 1e9);
	json_object_set_new(o, "money_caught", json_pack("{s:o, s:o, s:I}", "current", money[0],
	    "edited", money[1], "frauds_amount_unknown", (json_int_t)unknown));
	json_object_set_new(o, "mode", json_string(bt->exact ? "exact" : "nightly"));
	json_object_set_new(o, "mode_reason", json_string(bt->why));
	if (bt->inexact != NULL)
		json_object_set(o, "exact", bt->inexact);
	(void)con_damage_json(o, &dmg, "/api/rules/backtest");
	money[0] = money[1] = NULL;
	json_decref(sum[0]);
	json_decref(sum[1]);
	/* A back-test changes nothing: its answer stands without the line, and
	 * the operator is told */
	if (con_audit_write(app->audit, &bt->who, "backtest", app->o.rules, NULL,
	    json_pack("{s:s, s:s, s:I, s:I}", "from", from, "to", to, "rows", (json_int_t)rows,
	    "changed", (json_int_t)changed)) != VIGIL_OK)
		fprintf(stderr, "vigil-console: audit: cannot record %s's back-test of %s\n",
		    bt->who.name, app->o.rules);
	bt_reply(bt, 200, o);
}

void
con_rules_child_exited(con_app *app)
{
	con_backtest *bt = app->bt;
	int st;

	if (bt == NULL)
		return;
	for (int i = 0; i < 2; i++) {
		if (bt->done[i] || bt->pid[i] <= 0)
			continue;
		pid_t r = waitpid(bt->pid[i], &st, WNOHANG);
		if (r == bt->pid[i]) {
			bt->done[i] = true;
			bt->status[i] = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		}
	}
	if (bt->done[0] && bt->done[1]) {
		bt_finish(bt);
		app->bt = NULL;
		bt_free(bt);
	}
}

static void
bt_kill(con_backtest *bt)
{
	for (int i = 0; i < 2; i++) {
		if (!bt->done[i] && bt->pid[i] > 0) {
			kill(-bt->pid[i], SIGKILL); /* its group: what it started too */
			kill(bt->pid[i], SIGKILL);
			(void)waitpid(bt->pid[i], NULL, 0);
			bt->done[i] = true;
		}
	}
}

/*
 * Whether the back-test's client has gone: evhttp (2.1) does not read a
 * connection whose request is being answered, so it would learn of a close
 * only when the answer is written. The peer's FIN or a reset is seen on the
 * socket itself (POLLRDHUP, TLS or not; a client that half-closes after
 * its request counts as gone).
 */
static bool
bt_client_gone(con_backtest *bt)
{
	struct bufferevent *bev = bt->conn != NULL ?
	    evhttp_connection_get_bufferevent(bt->conn) : NULL;
	struct pollfd p = { .fd = bev != NULL ? bufferevent_getfd(bev) : -1,
	    .events = POLLRDHUP };

	if (p.fd < 0)
		return false;
	return poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

/*
 * Every BT_CHECK_MS while it runs: a client that went away stops it; over
 * --backtest-disk-mib in its directory,
 * or under --backtest-reserve-mib free on the filesystem, the back-test is
 * stopped (507) before it can fill the disk it shares with vigild.
 */
static void
bt_check(evutil_socket_t fd, short what, void *arg)
{
	con_app *app = arg;
	con_backtest *bt = app->bt;
	const struct timeval tv = { 0, BT_CHECK_MS * 1000 };
	uint64_t used, avail, budget, reserve;
	char msg[4600];

	(void)fd;
	(void)what;
	if (bt == NULL)
		return;
	if (bt_client_gone(bt)) {
		struct evhttp_connection *conn = bt->conn;

		if (!bt->hooked)
			bt_conn_closed(bt); /* bt is freed */
		evhttp_connection_free(conn); /* if hooked, runs bt_conn_closed */
		return;
	}
	used = bt_du(bt->tmp);
	avail = bt_free_bytes(bt->tmp);
	budget = (uint64_t)app->o.backtest_disk_mib << 20;
	reserve = (uint64_t)app->o.backtest_reserve_mib << 20;
	if (used <= budget && avail >= reserve) {
		event_add(bt->check, &tv);
		return;
	}
	if (used > budget)
		snprintf(msg, sizeof msg, "back-test stopped: its work directory reached %llu MiB, "
		    "over --backtest-disk-mib %u (a shorter period, or without nightly)",
		    (unsigned long long)(used >> 20), app->o.backtest_disk_mib);
	else
		snprintf(msg, sizeof msg, "back-test stopped: %llu MiB left free on the filesystem "
		    "of %s, under --backtest-reserve-mib %u", (unsigned long long)(avail >> 20),
		    bt->tmp, app->o.backtest_reserve_mib);
	fprintf(stderr, "vigil-console: %s's %s\n", bt->who.name, msg);
	bt_kill(bt);
	bt_reply(bt, 507, con_error_body(507, NULL, "%s", msg));
	app->bt = NULL;
	bt_free(bt);
}

static void
bt_timeout(evutil_socket_t fd, short what, void *arg)
{
	con_app *app = arg;
	con_backtest *bt = app->bt;

	(void)fd;
	(void)what;
	if (bt == NULL)
		return;
	bt_kill(bt);
	bt_reply(bt, 504, con_error_body(504, NULL, "back-test took longer than 600 s: stopped"));
	app->bt = NULL;
	bt_free(bt);
}

void
con_rules_abort(con_app *app)
{
	if (app->bt == NULL)
		return;
	bt_kill(app->bt);
	bt_reply(app->bt, 503, con_error_body(503, NULL, "vigil-console is stopping"));
	bt_free(app->bt);
	app->bt = NULL;
}

/* Whether the tuned threshold t of ed is defined in cur exactly so (the
 * archive's generations then hold its values). */
static bool
bt_threshold_same(const rules_prog *cur, const rules_threshold_info *t)
{
	for (uint32_t i = 0; i < rules_prog_nthresholds(cur); i++) {
		rules_threshold_info c;

		rules_prog_threshold(cur, i, &c);
		if (strcmp(c.name, t->name) != 0)
			continue;
		return c.kind == t->kind && c.feature_slot == t->feature_slot &&
		    c.param == t->param && c.min_samples == t->min_samples &&
		    c.fallback == t->fallback && (c.group_by == NULL) == (t->group_by == NULL) &&
		    (c.group_by == NULL || c.group_slot == t->group_slot);
	}
	return false;
}

/*
 * The mode of a back-test of ed against the deployed cur: exact when ed
 * can be evaluated on what the archive holds - every tuned threshold as cur
 * defines it (the generations tuned it), and every feature it reads a
 * request field, a model input, model.score, or one cur's tuned thresholds
 * read (archived by name) - else nightly. why says which and why.
 */
static bool
bt_exact_ok(const rules_prog *cur, const rules_prog *ed, char *why, size_t len)
{
	const uint32_t *used;
	uint32_t n, mslot = UINT32_MAX;

	for (uint32_t i = 0; i < rules_prog_nthresholds(ed); i++) {
		rules_threshold_info t;

		rules_prog_threshold(ed, i, &t);
		if (t.kind != RULES_TUNE_CONST && !bt_threshold_same(cur, &t)) {
			snprintf(why, len, "threshold %s, which the nightly tunes, is new or changed: "
			    "the archive's generations do not hold its values", t.name);
			return false;
		}
	}
	(void)store_schema_find("model.score", &mslot);
	used = rules_prog_slots_used(ed, &n);
	for (uint32_t i = 0; i < n; i++) {
		const store_field *f = store_schema_field(used[i]);
		bool ok = f == NULL || f->source == STORE_SRC_TXN || f->model_input ||
		    used[i] == mslot;

		for (uint32_t k = 0; k < rules_prog_nthresholds(cur) && !ok; k++) {
			rules_threshold_info c;

			rules_prog_threshold(cur, k, &c);
			ok = c.kind != RULES_TUNE_CONST && (c.feature_slot == used[i] ||
			    (c.group_by != NULL && c.group_slot == used[i]));
		}
		if (!ok) {
			snprintf(why, len, "the file reads %s, which the archive does not hold "
			    "(not a model input, nor read by a tuned threshold of the deployed file)",
			    f->name);
			return false;
		}
	}
	/* the page says what exact means; this says why it applies */
	snprintf(why, len, "a rules-only change: every feature the edited file reads is one production archived");
	return true;
}

void
con_api_rules_backtest(con_app *app, struct evhttp_request *req, const con_user *who)
{
	static const char *const keys[] = { "text", "days", "nightly", NULL };
	const char *text;
	size_t len;
	rules_prog *p = NULL;
	rules_diags d;
	con_tailpos pos;
	con_backtest *bt = NULL;
	json_t *b, *jd, *jn;
	char err[4700];
	struct timeval tv = { BT_TIMEOUT_S, 0 };
	const struct timeval check = { 0, BT_CHECK_MS * 1000 };
	uint64_t avail;
	int fd;

	b = con_rules_edit_body(req, keys, &text, &len);
	if (b == NULL)
		return;
	jd = json_object_get(b, "days");
	jn = json_object_get(b, "nightly");
	if (jd != NULL && (!json_is_integer(jd) || json_integer_value(jd) < 1 ||
	    json_integer_value(jd) > 90)) {
		con_send_error(req, 400, "days", "1-90");
		goto out;
	}
	if (jn != NULL && !json_is_boolean(jn)) {
		con_send_error(req, 400, "nightly", "true or false");
		goto out;
	}
	if (app->bt != NULL) {
		con_send_error(req, 429, NULL, "a back-test by %s is running; one at a time",
		    app->bt->who.name);
		goto out;
	}
	if (con_rules_compile_text(app, text, len, &p, &d) != VIGIL_OK) {
		con_rules_send_diags(req, &d, text, len);
		goto out;
	}
	con_index_pos(app->ix, &pos);
	if (pos.max_event_ms <= 0) {
		con_send_error(req, 409, NULL, "no transactions indexed yet: nothing to back-test on");
		goto out;
	}
	snprintf(err, sizeof err, "%s/tmp", app->o.state);
	avail = bt_free_bytes(err);
	if (avail < ((uint64_t)app->o.backtest_reserve_mib << 20)) {
		con_send_error(req, 507, NULL, "%llu MiB free on the filesystem of %s; a back-test "
		    "must leave --backtest-reserve-mib %u free: not started",
		    (unsigned long long)(avail >> 20), err, app->o.backtest_reserve_mib);
		goto out;
	}
	bt = calloc(1, sizeof *bt);
	if (bt == NULL) {
		con_send_error(req, 500, NULL, "out of memory");
		goto out;
	}
	bt->app = app;
	bt->who = *who;
	bt->days = jd != NULL ? (uint32_t)json_integer_value(jd) : 7;
	bt->nightly = json_is_true(jn);
	if (bt->nightly) {
		snprintf(bt->why, sizeof bt->why, "asked for: the archive's transactions replayed "
		    "with both files, features and thresholds rebuilt as of each day");
	} else {
		char *ctext = NULL;
		size_t clen;
		rules_prog *cur = NULL;
		rules_diags cd;

		if (con_file_read(app->o.rules, BT_RULES_MAX, &ctext, &clen) == VIGIL_OK &&
		    con_rules_compile_text(app, ctext, clen, &cur, &cd) == VIGIL_OK)
			bt->exact = bt_exact_ok(cur, p, bt->why, sizeof bt->why);
		else
			snprintf(bt->why, sizeof bt->why, "the deployed file %s does not load: "
			    "nothing to compare the thresholds with", app->o.rules);
		rules_prog_free(cur);
		free(ctext);
		/* the as-of nightly replay of both files */
		bt->nightly = !bt->exact;
	}
	bt->to_ms = pos.max_event_ms + 1;
	bt->from_ms = bt->to_ms - (int64_t)bt->days * VIGIL_MS_PER_DAY;
	bt->t0 = vigil_mono_ns();
	snprintf(bt->tmp, sizeof bt->tmp, "%s/tmp/backtest-XXXXXX", app->o.state);
	if (mkdtemp(bt->tmp) == NULL) {
		con_send_error(req, 500, NULL, "%s: %s", bt->tmp, strerror(errno));
		bt->tmp[0] = '\0';
		goto out;
	}
	/* next to the deployed file, so its list files resolve the same way */
	snprintf(bt->edited, sizeof bt->edited, "%s/.%s.backtest-%ld", con_rules_dir(app),
	    con_rules_base(app),
	    (long)getpid());
	fd = open(bt->edited, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, text, len) != (ssize_t)len) {
		snprintf(err, sizeof err, "%s: %s", bt->edited, strerror(errno));
		if (fd >= 0)
			close(fd);
		con_send_error(req, 500, NULL, "%s", err);
		goto out;
	}
	close(fd);
	if (bt->exact) {
		/* production's side is the archive's: one child */
		bt->done[0] = true;
		bt->status[0] = 0;
	}
	if ((!bt->exact && bt_spawn(bt, 0, app->o.rules) != VIGIL_OK) ||
	    bt_spawn(bt, 1, bt->edited) != VIGIL_OK) {
		bt_kill(bt);
		con_send_error(req, 500, NULL, "cannot run %s: %s", app->o.replay, strerror(errno));
		goto out;
	}
	bt->req = req;
	bt->conn = evhttp_request_get_connection(req);
	if (bt->conn != NULL) {
		bt->hooked = vigil_evconn_on_close(app->conns, bt->conn, bt_conn_closed, bt) ==
		    VIGIL_OK;
		vigil_evconn_hold(app->conns, req); /* answered when the replays end */
		evhttp_connection_set_timeout(bt->conn, BT_TIMEOUT_S + 60);
	}
	bt->timer = evtimer_new(app->base, bt_timeout, app);
	if (bt->timer != NULL)
		evtimer_add(bt->timer, &tv);
	bt->check = evtimer_new(app->base, bt_check, app);
	if (bt->check != NULL)
		evtimer_add(bt->check, &check);
	app->bt = bt;
	bt = NULL;
	/* a child may have exited before the SIGCHLD event was armed for it */
	con_rules_child_exited(app);
out:
	rules_prog_free(p);
	bt_free(bt);
	json_decref(b);
}