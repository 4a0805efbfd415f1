/* SPDX-License-Identifier: MIT */
/*
 * server/main.c - vigild's lifecycle: configuration, start-up order, the
 * main thread's loop and shutdown (docs/vigild.md).
 *
 * Start-up: listen first (health answers "not ready" while loading), compile
 * the rules (a bad file stops start-up with exit 2), open the store (which
 * rebuilds the live state from the archive), bind the thresholds of the
 * current generation, then mark ready and tell systemd.
 *
 * The main thread owns every slow, rare change: it waits for signals with a
 * 100 ms timeout and on each tick checks the feature generation (every
 * 200 ms), the rule file and the list files the loaded rules read
 * (watch.c: device, inode, size and mtime, debounced one tick so a file
 * being written is not compiled half-way) and the systemd watchdog,
 * and every 10 s wakes the housekeeping thread (store_db_maintain: archive
 * day rotation, compression, retention, live-state sweep). Housekeeping has
 * a thread of its own because compressing a closed segment can take seconds,
 * longer than signals and the watchdog may wait.
 * SIGHUP reloads the rules and re-reads the admin token file; SIGTERM/SIGINT
 * drain and exit 0, and during start-up stop the archive replay
 * (main_replay_tick).
 *
 * Exposure (docs/security.md): the umask is 027 from the first line, so
 * nothing vigild creates is readable by other users; the soft descriptor
 * limit is raised to the hard one and checked against the connection caps;
 * with [server] user, privileges are dropped once every socket is bound and
 * before any data is opened. vigild makes itself not dumpable
 * (main_no_dump), so another process of its user cannot reach its files,
 * memory or descriptors through /proc/PID.
 */
#include <errno.h>
#include <event2/thread.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "evconn.h"
#include "srv.h"
#include "vigil_config.h"
#include "watch.h"

#include "notify.h"

#define MAIN_TICK_MS      100
#define MAIN_REFRESH_MS   200
#define MAIN_MAINTAIN_MS  10000
/* A generation check running this long is logged once (a read that does
 * not end: a hung mount); at a stop, one is waited for this long, then left
 * to the exit (nothing it does needs finishing: the next start checks
 * again). */
#define MAIN_REFRESH_SLOW_S 60
#define MAIN_STOP_REFRESH_MS 2000
/* Descriptors kept for everything but connections: archive segments, LMDB
 * files, rule and list files, nng's and libevent's own (epoll, pipes). */
#define MAIN_FD_RESERVE   128

void
srv_log(const char *fmt, ...)
{
	char buf[1200];
	va_list ap;
	int n;

	memcpy(buf, "vigild: ", 8);
	va_start(ap, fmt);
	n = vsnprintf(buf + 8, sizeof buf - 9, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	n = n + 8 < (int)sizeof buf - 1 ? n + 8 : (int)sizeof buf - 2;
	buf[n++] = '\n';
	/* One write per line: lines from different threads never interleave. */
	if (write(STDERR_FILENO, buf, (size_t)n) < 0)
		return;
}

/* After a load: the watch follows the list files of the rules now serving. */
static void
main_watch_lists(srv_server *s, srv_watch *w)
{
	srv_ruleset *rs = srv_ruleset_acquire(s);

	if (rs != NULL)
		srv_watch_lists(w, rs->rules->prog);
	srv_ruleset_release(rs);
}

/* One tick of the watch (watch.c); reloads once a change has settled. */
static void
main_watch_tick(srv_server *s, srv_watch *w)
{
	char why[SRV_PATH_MAX + 32];

	if (!srv_watch_tick(w, why, sizeof why))
		return;
	srv_rules_reload(s, why);
	main_watch_lists(s, w);
}

/* "generation 42 (verified: 212.4 MB in 96 ms)" or "(unverified: ...)",
 * or "no generation (cold start: rules use their fallbacks)". */
static void
main_gen_describe(const store_db_health *h, char *buf, size_t len)
{
	if (h->generation == 0)
		snprintf(buf, len, "no generation (cold start: rules use their fallbacks)");
	else if (h->generation_verified)
		snprintf(buf, len, "generation %llu (verified: %.1f MB in %llu ms)",
		    (unsigned long long)h->generation, (double)h->generation_bytes / 1e6,
		    (unsigned long long)(h->generation_verify_us / 1000));
	else
		snprintf(buf, len, "generation %llu (unverified: no CHECKSUM, written before "
		    "checksums)", (unsigned long long)h->generation);
}

/* "generation 43" or "CURRENT" (when CURRENT itself is unreadable). */
static void
main_gen_refused_name(const store_db_health *h, char *buf, size_t len)
{
	if (h->refused_generation != 0)
		snprintf(buf, len, "generation %llu", (unsigned long long)h->refused_generation);
	else
		snprintf(buf, len, "CURRENT");
}

/* Start-up: which generation is served, and the one refused if any
 * (docs/storage.md, "Verification"). */
static void
main_gen_startup(srv_server *s)
{
	store_db_health h;
	char what[160], refused[48];

	store_db_get_health(s->db, &h);
	main_gen_describe(&h, what, sizeof what);
	if (!h.generation_refused) {
		if (h.generation != 0)
			srv_log("features: serving %s", what);
		return;
	}
	main_gen_refused_name(&h, refused, sizeof refused);
	srv_log("features: refused %s named by CURRENT: %s; serving %s instead%s; /readyz "
	    "(%s, generation_error) and /metrics say so until CURRENT names a generation that "
	    "opens", refused, h.generation_error, what,
	    h.generation != 0 ? ", the newest older generation that opens" : "",
	    s->cfg.ready_when_degraded ? "200, degraded" : "503");
}

/* What a refresh (store_db_refresh, on the refresh thread) did, told on
 * the main thread, where rule sets are swapped (srv_rules_retune, after a
 * rules reload or before it, never beside it). */
static void
main_refresh_done(srv_server *s, vigil_err rv, bool changed, const store_diag *d,
    char *lasterr, size_t lasterrlen)
{
	store_db_health h;
	char what[160], refused[48];

	if (rv != VIGIL_OK) {
		/* The db tries a refused generation again only once it or
		 * CURRENT changes, so this is once per bad generation; the
		 * comparison keeps a retried ENOMEM from logging each tick. */
		if (strcmp(lasterr, d->msg) != 0) {
			store_db_get_health(s->db, &h);
			main_gen_describe(&h, what, sizeof what);
			main_gen_refused_name(&h, refused, sizeof refused);
			srv_log("features: refused %s named by CURRENT: %s: %s; still serving %s",
			    refused, vigil_strerror(rv), d->msg, what);
			snprintf(lasterr, lasterrlen, "%s", d->msg);
		}
	} else {
		lasterr[0] = '\0';
		if (changed) {
			store_db_get_health(s->db, &h);
			main_gen_describe(&h, what, sizeof what);
			srv_log("features: switched to %s", what);
		}
	}
	/* A new generation, or the served one refused (changed under its
	 * mapping): another one, or none, serves now. */
	if (changed) {
		atomic_store(&s->gen_switched_ms, vigil_now_ms());
		srv_rules_retune(s);
	}
}

/*
 * The main thread's slow work, each on a thread of its own, so that the
 * main loop keeps answering signals and the service manager's watchdog
 * (WatchdogSec=) whatever they take: one run per wake-up from the main
 * thread's timer, never two at once, never after the stop request.
 *   maintenance: store_db_maintain (compression, retention, sweeps);
 *   refresh: store_db_refresh, which verifies a new generation by reading
 *     it whole (about 1 GB/s from a cold disk: a 10 GB generation outlasts
 *     a 10 s watchdog), and posts what it did for the main thread.
 */
typedef struct main_maint main_maint;
struct main_maint {
	srv_server     *s;
	const char     *what;          /* for the log */
	void          (*run)(main_maint *m);
	pthread_t       thread;
	pthread_mutex_t mu;
	pthread_cond_t  cv;
	bool            due;
	bool            stop;
	bool            started;
	store_diag      last;          /* maintenance: the failure last logged */
	/* refresh: its outcome since the main thread last took it (mu) */
	bool            posted;        /* not taken yet: no run starts */
	bool            changed;       /* the served generation changed */
	vigil_err       rv;
	store_diag      diag;
};

static void *
main_maint_thread(void *arg)
{
	main_maint *m = arg;

	for (;;) {
		pthread_mutex_lock(&m->mu);
		/* a refresh's outcome is taken by the main thread before the
		 * next run: a run right after a long one (the kicks meanwhile
		 * left it due) would overwrite a refusal before it is logged */
		while ((!m->due || m->posted) && !m->stop)
			pthread_cond_wait(&m->cv, &m->mu);
		if (m->stop) {
			pthread_mutex_unlock(&m->mu);
			break;
		}
		m->due = false;
		pthread_mutex_unlock(&m->mu);
		m->run(m);
	}
	return NULL;
}

static void
main_maintain_run(main_maint *m)
{
	srv_server *s = m->s;
	store_diag diag;
	vigil_err rv;

	diag.msg[0] = '\0';
	rv = store_db_maintain(s->db, &diag);
	atomic_fetch_add(&s->maint_runs, 1);
	if (rv != VIGIL_OK) {
		atomic_fetch_add(&s->maint_failures, 1);
		/* Every failure is counted; the same one is logged once. */
		if (strcmp(m->last.msg, diag.msg) != 0 || diag.msg[0] == '\0') {
			srv_log("maintenance: %s: %s; retrying every %d s", vigil_strerror(rv),
			    diag.msg[0] ? diag.msg : "(no detail)", MAIN_MAINTAIN_MS / 1000);
			m->last = diag;
		}
		return;
	}
	if (m->last.msg[0] != '\0') {
		srv_log("maintenance: ok again");
		m->last.msg[0] = '\0';
	}
	atomic_store(&s->maint_ok_ms, vigil_now_ms());
}

static void
main_refresh_run(main_maint *m)
{
	store_diag diag = { .msg = "" };
	bool changed = false;
	vigil_err rv;

	atomic_store(&m->s->refresh_since_ms, srv_mono_ms());
	rv = store_db_refresh(m->s->db, &changed, &diag);
	atomic_store(&m->s->refresh_since_ms, 0);
	pthread_mutex_lock(&m->mu);
	m->posted = true;
	m->changed = changed; /* the last outcome was taken: no run starts before */
	m->rv = rv;
	m->diag = diag;
	pthread_mutex_unlock(&m->mu);
}

/* On the main thread: what the refresh thread did since the last call. */
static void
main_refresh_take(main_maint *m, char *lasterr, size_t lasterrlen)
{
	store_diag diag;
	bool posted, changed;
	vigil_err rv;

	pthread_mutex_lock(&m->mu);
	posted = m->posted;
	changed = m->changed;
	rv = m->rv;
	diag = m->diag;
	m->posted = m->changed = false;
	if (posted)
		pthread_cond_signal(&m->cv); /* a due run may start */
	pthread_mutex_unlock(&m->mu);
	if (posted)
		main_refresh_done(m->s, rv, changed, &diag, lasterr, lasterrlen);
}

/* On the main thread: logs, once, a generation check that has run for
 * MAIN_REFRESH_SLOW_S (its end is logged by main_refresh_done).
 * *warned: the start of the check last logged. */
static void
main_refresh_watch(srv_server *s, int64_t *warned)
{
	int64_t since = atomic_load(&s->refresh_since_ms);
	store_db_health h;
	char what[160];

	if (since == 0 || since == *warned || srv_mono_ms() - since < MAIN_REFRESH_SLOW_S * 1000)
		return;
	*warned = since;
	store_db_get_health(s->db, &h);
	main_gen_describe(&h, what, sizeof what);
	srv_log("features: checking the generation named by CURRENT has taken %lld s so far "
	    "(a read that does not end: a hung mount, or a file another process holds a "
	    "lease on?); still serving %s", (long long)((srv_mono_ms() - since) / 1000),
	    what);
}

static bool
main_maint_start(main_maint *m, srv_server *s)
{
	int rv;

	m->s = s;
	m->due = m->stop = false;
	rv = pthread_create(&m->thread, NULL, main_maint_thread, m);
	if (rv != 0) {
		srv_log("%s: cannot start its thread: %s", m->what, strerror(rv));
		return false;
	}
	m->started = true;
	return true;
}

static void
main_maint_kick(main_maint *m)
{
	pthread_mutex_lock(&m->mu);
	m->due = true;
	pthread_cond_signal(&m->cv);
	pthread_mutex_unlock(&m->mu);
}

/* Waits for a run in progress to finish (before the store closes), at most
 * wait_ms when that is >= 0: false if it did not (the thread is left to the
 * exit). */
static bool
main_maint_stop(main_maint *m, int wait_ms)
{
	struct timespec until;

	if (!m->started)
		return true;
	pthread_mutex_lock(&m->mu);
	m->stop = true;
	pthread_cond_signal(&m->cv);
	pthread_mutex_unlock(&m->mu);
	if (wait_ms < 0) {
		pthread_join(m->thread, NULL);
	} else {
		vigil_deadline_after(CLOCK_REALTIME, &until, (uint64_t)wait_ms); /* timedjoin's clock */
		if (pthread_timedjoin_np(m->thread, NULL, &until) != 0)
			return false;
	}
	m->started = false;
	return true;
}

/* Whether a tcp or tls+tcp listen URL's host is a loopback address. */
static bool
main_url_loopback(const char *url)
{
	const char *h = strstr(url, "://");

	if (h == NULL)
		return false;
	h += 3;
	return strncmp(h, "127.", 4) == 0 || strncmp(h, "[::1]:", 6) == 0 ||
	    strncmp(h, "localhost:", 10) == 0;
}

/*
 * One line per listen URL that anyone on the network could use without
 * credentials. Written to out with "vigild: warning: " (--check-config's
 * stderr) or through srv_log at start.
 */
static void
main_warn_exposure(const srv_config *c, FILE *out)
{
	for (uint32_t i = 0; i < c->nlisten; i++) {
		const char *u = c->listen[i];
		char line[SRV_URL_MAX + 200];

		line[0] = '\0';
		if (strncmp(u, "tcp", 3) == 0 && !main_url_loopback(u))
			snprintf(line, sizeof line, "listen %s: plaintext and unauthenticated: "
			    "anyone who reaches it can score and send labels; use tls+tcp:// with "
			    "[tls] ca", u);
		else if (srv_config_url_tls(u) && c->tls_ca[0] == '\0')
			snprintf(line, sizeof line, "listen %s: TLS without [tls] ca: clients are "
			    "not authenticated", u);
		if (line[0] == '\0')
			continue;
		if (out != NULL)
			fprintf(out, "vigild: warning: %s\n", line);
		else
			srv_log("warning: %s", line);
	}
}

/*
 * Raises the soft descriptor limit to the hard one, then checks that the
 * connection caps leave MAIN_FD_RESERVE descriptors for the store: running
 * out in the middle of an archive rotation is what broke the archive
 * (issue 17). A warning, not an error: the caps are the operator's call.
 */
static void
main_fd_budget(const srv_config *c)
{
	struct rlimit rl;
	uint64_t need;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		rlim_t want = rl.rlim_max;

		rl.rlim_cur = want;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			getrlimit(RLIMIT_NOFILE, &rl);
	}
	need = (uint64_t)c->max_connections + MAIN_FD_RESERVE +
	    (strcmp(c->admin, "off") != 0 ? c->admin_max_connections : 0);
	if (rl.rlim_cur != RLIM_INFINITY && need > rl.rlim_cur)
		srv_log("warning: max_connections %u + admin_max_connections %u + %d for files "
		    "is more than the %llu descriptors allowed (RLIMIT_NOFILE; LimitNOFILE= in "
		    "the unit): a connection flood can leave the archive without descriptors",
		    c->max_connections, c->admin_max_connections, MAIN_FD_RESERVE,
		    (unsigned long long)rl.rlim_cur);
}

/*
 * PR_SET_DUMPABLE 0 (docs/security.md, "The console and vigild"): the
 * /proc/PID entries that give another process of the same user vigild's
 * files (root/, cwd/, fd/), memory (mem, environ) and ptrace are refused to
 * it, so that a compromised process of vigild's user cannot rewrite the
 * data through them. The cost: no core dump (the unit has LimitCORE=0
 * anyway: card ids are in memory); VIGIL_DUMPABLE=1 in the environment
 * keeps vigild dumpable, for debugging. Called at start and again after
 * the switch of user, which resets the flag to fs.suid_dumpable.
 */
static void
main_no_dump(bool say)
{
	const char *keep = getenv("VIGIL_DUMPABLE");

	if (keep != NULL && strcmp(keep, "1") == 0) {
		if (say)
			srv_log("warning: dumpable (VIGIL_DUMPABLE=1): core dumps are possible and "
			    "processes of this user can reach vigild's memory and files through /proc");
		(void)prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
		return;
	}
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
		srv_log("warning: prctl(PR_SET_DUMPABLE, 0): %s", strerror(errno));
}

/*
 * With [server] user: switches to that user and its groups (after binding,
 * before the data is opened). Without: a warning when running as root.
 * glibc applies set*id to every thread, the admin and nng threads included.
 */
static bool
main_drop_privileges(const srv_config *c)
{
	struct passwd *pw;

	if (c->user[0] == '\0') {
		if (geteuid() == 0)
			srv_log("warning: running as root: set [server] user (or User= in the unit) "
			    "to drop privileges once the sockets are bound");
		return true;
	}
	pw = getpwnam(c->user);
	if (pw == NULL) {
		srv_log("user %s: no such user", c->user);
		return false;
	}
	if (geteuid() != 0) {
		if (geteuid() == pw->pw_uid)
			return true;
		srv_log("user %s: cannot switch to it: not running as root", c->user);
		return false;
	}
	if (initgroups(pw->pw_name, pw->pw_gid) != 0 || setgid(pw->pw_gid) != 0 ||
	    setuid(pw->pw_uid) != 0) {
		srv_log("user %s: cannot switch to it: %s", c->user, strerror(errno));
		return false;
	}
	if (setuid(0) == 0) {
		srv_log("user %s: root could be regained after the switch; stopping", c->user);
		return false;
	}
	srv_log("running as %s (uid %u, gid %u)", c->user, (unsigned)pw->pw_uid,
	    (unsigned)pw->pw_gid);
	return true;
}

/* --check-config's listing of the effective settings (not with --quiet). */
static void
main_config_print(const srv_config *c)
{
	printf("vigild: config %s\n", c->config_path[0] ? c->config_path : "(defaults and flags)");
	for (uint32_t i = 0; i < c->nlisten; i++)
		printf("  listen              %s\n", c->listen[i]);
	printf("  admin               %s\n", c->admin);
	printf("  workers             %u\n", c->workers);
	printf("  max_message_bytes   %u\n", c->max_message_bytes);
	printf("  max_inflight        %u\n", c->max_inflight);
	printf("  max_inflight_per_connection %u%s\n", c->max_inflight_per_connection,
	    c->max_inflight_per_connection == 0 ? " (off)" : "");
	printf("  request_timeout_ms  %u\n", c->request_timeout_ms);
	printf("  max_future_skew_ms  %u%s\n", c->max_future_skew_ms,
	    c->max_future_skew_ms == 0 ? " (off)" : "");
	printf("  max_past_skew_ms    %u%s\n", c->max_past_skew_ms,
	    c->max_past_skew_ms == 0 ? " (off)" : "");
	printf("  queue_timeout_ms    %u\n", c->queue_timeout_ms);
	printf("  max_connections     %u\n", c->max_connections);
	printf("  admin_max_connections %u\n", c->admin_max_connections);
	printf("  admin_max_connections_per_address %u\n", c->admin_max_per_address);
	printf("  admin_token_file    %s\n", c->admin_token_file[0] ? c->admin_token_file :
	    "(none)");
	printf("  metrics_need_token  %s\n", c->metrics_need_token ? "true (/metrics needs the "
	    "token)" : "false (/metrics is open like the probes)");
	printf("  health listen       %s\n", c->health_listen);
	printf("  ipc_group           %s\n", c->ipc_group[0] ? c->ipc_group : "(vigild's)");
	printf("  user                %s\n", c->user[0] ? c->user : "(not switched)");
	printf("  scheduling_policy   %s\n", c->sched_batch ? "batch" : "normal");
	printf("  huge_pages          %s\n", c->huge_pages == SRV_HUGE_ON ? "on" :
	    c->huge_pages == SRV_HUGE_OFF ? "off" : "auto (measured at start)");
	printf("  tls cert            %s\n", c->tls_cert[0] ? c->tls_cert : "(none)");
	printf("  tls key             %s\n", c->tls_key[0] ? c->tls_key : "(none)");
	printf("  tls ca              %s%s\n", c->tls_ca[0] ? c->tls_ca : "(none)",
	    c->tls_ca[0] ? " (client certificates required)" : "");
	printf("  tls crl             %s\n", c->tls_crl[0] ? c->tls_crl : "(none)");
	printf("  tls check_interval_s %u\n", c->tls_check_interval_s);
	printf("  tls handshake_timeout_ms %u%s\n", c->tls_handshake_timeout_ms,
	    c->tls_handshake_timeout_ms == 0 ? " (off)" : "");
	printf("  data_dir            %s\n", c->data_dir);
	printf("  fsync               %s\n", c->fsync == STORE_FSYNC_ALWAYS ? "always" :
	    c->fsync == STORE_FSYNC_INTERVAL ? "interval" : "never");
	printf("  fsync_interval_ms   %u\n", c->fsync_interval_ms);
	printf("  segment_max_mb      %u\n", c->segment_max_mb);
	printf("  retention_days      %u\n", c->retention_days);
	printf("  compress            %s\n", c->compress ? "true" : "false");
	if (c->ship_command[0] != '\0')
		printf("  ship_command        %s (retry up to every %u s, timeout %u s)\n",
		    c->ship_command, c->ship_retry_max_s, c->ship_timeout_s);
	else
		printf("  ship_command        (off: sealed segments stay here only)\n");
	printf("  rules               %s (watch %s)\n", c->rules_path,
	    c->rules_watch ? "on" : "off");
	printf("  ready_when_degraded %s\n", c->ready_when_degraded ? "true (a refused "
	    "generation or model keeps /readyz 200)" : "false (a refused generation or model "
	    "makes /readyz 503)");
	if (c->cluster_nats[0] != '\0')
		printf("  cluster             %s, replica %s, nats %s, queue %u, stream replicas %u, "
		    "retain %u h\n", c->cluster_name, c->cluster_replica, c->cluster_nats,
		    c->cluster_queue, c->cluster_stream_replicas, c->cluster_retain_hours);
	else
		printf("  cluster             (off: a single replica)\n");
	fflush(stdout);
}

/* [store] data_dir exists as something other than a directory: a bad
 * configuration (exit 2, with --check-config too), not a failure at start. */
static bool
main_data_dir_bad(const srv_config *c)
{
	struct stat st;

	if (stat(c->data_dir, &st) != 0 || S_ISDIR(st.st_mode))
		return false; /* missing: made at start, which names any failure */
	fprintf(stderr, "vigild: [store] data_dir (--data) %s: not a directory\n", c->data_dir);
	return true;
}

static int
main_check_config(srv_server *s)
{
	const srv_config *c = &s->cfg;
	char errbuf[SRV_ERR_MAX];
	vigil_err rv;

	if (!c->quiet)
		main_config_print(c);
	if (srv_rep_check_files(c, stderr, errbuf, sizeof errbuf) != VIGIL_OK) {
		fprintf(stderr, "vigild: %s\n", errbuf);
		return 2;
	}
	if (srv_admin_token_load(s, errbuf, sizeof errbuf) != VIGIL_OK) {
		fprintf(stderr, "vigild: %s\n", errbuf);
		return 2;
	}
	if (c->user[0] != '\0' && getpwnam(c->user) == NULL) {
		fprintf(stderr, "vigild: [server] user %s: no such user\n", c->user);
		return 2;
	}
	if (main_data_dir_bad(c))
		return 2;
	main_warn_exposure(c, stderr);
	rv = srv_rules_check(c->rules_path, stderr, c->quiet);
	if (rv != VIGIL_OK)
		return 2;
	if (!c->quiet)
		printf("vigild: configuration ok\n");
	return 0;
}

/* Logs the archive's fault state when it changes (store_db_get_health):
 * one line when it starts failing, when its errno changes, when it heals,
 * and the same for a postponed rotation; never one per request. */
typedef struct main_archive {
	bool    failing, degraded;
	int     err;
	int64_t since_ms;
} main_archive;

static void
main_archive_watch(srv_server *s, main_archive *a)
{
	store_db_health h;
	const char *name;

	store_db_get_health(s->db, &h);
	name = strerrorname_np(h.archive.err) ? strerrorname_np(h.archive.err) : "?";
	if (h.archive.failing && (!a->failing || h.archive.err != a->err))
		srv_log("archive: failing: %s %s: %s (%s); scores and labels are refused and "
		    "/readyz says 503 until it heals; retrying", h.archive.op, h.archive.file,
		    strerror(h.archive.err), name);
	else if (!h.archive.failing && a->failing)
		srv_log("archive: healed after %.1f s (%llu failed attempt(s) since start)",
		    (double)(vigil_now_ms() - a->since_ms) / 1000.0,
		    (unsigned long long)h.archive.failures);
	if (h.archive.degraded && !h.archive.failing && (!a->degraded || h.archive.err != a->err))
		srv_log("archive: rotation postponed: %s %s: %s (%s); appends go on in the open "
		    "segment; retrying", h.archive.op, h.archive.file, strerror(h.archive.err), name);
	else if (!h.archive.degraded && a->degraded)
		srv_log("archive: rotation done, no longer postponed");
	if (h.archive.failing && !a->failing)
		a->since_ms = h.archive.since_ms;
	a->failing = h.archive.failing;
	a->degraded = h.archive.degraded;
	a->err = h.archive.failing || h.archive.degraded ? h.archive.err : 0;
}

/* SIGTERM or SIGINT during start-up: they stay blocked (only the main loop's
 * sigtimedwait takes them), so the archive replay, which can take minutes,
 * looks for one pending on its first record and every MAIN_REPLAY_POLL after
 * (a system call per record would slow it) and stops between two records:
 * it only reads, and what it read is in the archive. */
#define MAIN_REPLAY_POLL 1024

typedef struct main_replay {
	uint64_t n, seq, last_seq;
	int      sig;               /* the signal that stopped it, 0 if none */
} main_replay;

static bool
main_replay_tick(void *arg, uint64_t seq, uint64_t last_seq)
{
	main_replay *r = arg;
	sigset_t pending;

	r->seq = seq;
	r->last_seq = last_seq;
	if (r->n++ % MAIN_REPLAY_POLL != 0 || sigpending(&pending) != 0)
		return true;
	r->sig = sigismember(&pending, SIGTERM) ? SIGTERM :
	    sigismember(&pending, SIGINT) ? SIGINT : 0;
	return r->sig == 0;
}

static srv_server g_srv;
static main_maint g_maint = {
	.what = "maintenance", .run = main_maintain_run,
	.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER,
};
static main_maint g_refresh = {
	.what = "features: refresh", .run = main_refresh_run,
	.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER,
};

int
main(int argc, char **argv)
{
	srv_server *s = &g_srv;
	srv_rep *rep = NULL;
	srv_admin *admin = NULL;
	store_db_opts dbopts;
	store_recovery recovery;
	store_diag diag;
	srv_watch watch;
	main_archive archive = { 0 };
	main_replay replay = { 0 };
	sigset_t sigs;
	srv_action action;
	char errbuf[SRV_ERR_MAX], refresh_err[512] = "", memnote[256];
	vigil_errinfo cfgerr;
	uint64_t wd_usec = 0, last_wd = 0, last_refresh = 0, last_maint = 0, last_tls = 0;
	int64_t refresh_warned = 0;
	int status = 1;
	bool clean, refresh_left = false;
	vigil_err rv;

	/* Before anything is created: the archive, LMDB files, sockets. */
	umask(027);
	vigil_evconn_log_to_stderr("vigild");
	if (srv_config_load(argc, argv, &s->cfg, &action, &cfgerr) != VIGIL_OK) {
		fprintf(stderr, "vigild: %s\n", srv_config_err_format(&cfgerr, errbuf, sizeof errbuf));
		return 2;
	}
	switch (action) {
	case SRV_HELP:
		srv_config_usage(stdout);
		return 0;
	case SRV_VERSION:
		vigil_cli_version(stdout, "vigild");
		return 0;
	case SRV_CHECK_CONFIG:
		pthread_mutex_init(&s->token_lock, NULL);
		return main_check_config(s);
	case SRV_RUN:
		break;
	}
	if (main_data_dir_bad(&s->cfg))
		return 2;
	srv_malloc_tune(argv, s->cfg.huge_pages, memnote, sizeof memnote);
	srv_sched_tune(s->cfg.sched_batch); /* before any thread: they inherit it */

	main_no_dump(true);
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	/* Blocked before any thread starts, so only sigtimedwait below sees them. */
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* A file size limit (LimitFSIZE=) makes an archive write fail with
	 * EFBIG, which heals like a full disk, instead of killing vigild. */
	signal(SIGXFSZ, SIG_IGN);
	evthread_use_pthreads();

	pthread_rwlock_init(&s->rs_lock, NULL);
	pthread_mutex_init(&s->info_lock, NULL);
	pthread_mutex_init(&s->token_lock, NULL);
	atomic_init(&s->ready, false);
	atomic_init(&s->draining, false);
	s->started_ms = vigil_now_ms();
	memset(&watch, 0, sizeof watch);

	if (s->cfg.fsync == STORE_FSYNC_ALWAYS)
		snprintf(errbuf, sizeof errbuf, "%u workers", s->cfg.workers);
	else
		snprintf(errbuf, sizeof errbuf, "scoring on nng's threads");
	srv_log("starting %s: %u listen URL(s) (first %s), admin %s, data %s, rules %s, "
	    "%s, fsync %s", VIGIL_VERSION, s->cfg.nlisten, s->cfg.listen[0],
	    s->cfg.admin, s->cfg.data_dir, s->cfg.rules_path, errbuf,
	    s->cfg.fsync == STORE_FSYNC_ALWAYS ? "always" :
	    s->cfg.fsync == STORE_FSYNC_INTERVAL ? "interval" : "never");
	srv_log("memory: %s", memnote);

	/* Files the configuration names: a bad certificate or token file is a
	 * configuration error (exit 2), found before anything listens. */
	if (srv_rep_check_files(&s->cfg, stderr, errbuf, sizeof errbuf) != VIGIL_OK ||
	    srv_admin_token_load(s, errbuf, sizeof errbuf) != VIGIL_OK) {
		srv_log("%s", errbuf);
		status = 2;
		goto out;
	}
	main_warn_exposure(&s->cfg, NULL);
	main_fd_budget(&s->cfg);
	srv_tls_expiry_load(s);
	srv_tls_expiry_check(s);

	if (srv_rep_start(s, &rep, errbuf, sizeof errbuf) != VIGIL_OK) {
		srv_log("%s", errbuf);
		goto out;
	}
	if (strcmp(s->cfg.admin, "off") != 0 &&
	    srv_admin_start(s, &admin, errbuf, sizeof errbuf) != VIGIL_OK) {
		srv_log("%s", errbuf);
		goto out;
	}
	if (!main_drop_privileges(&s->cfg))
		goto out;
	main_no_dump(false);

	/* Rules before the store: a bad file fails in milliseconds, not after
	 * the live state has been rebuilt. */
	if (s->cfg.rules_watch && !srv_watch_init(&watch, s->cfg.rules_path))
		goto out;
	if (srv_rules_reload(s, "startup") != VIGIL_OK) {
		status = 2;
		goto out;
	}
	if (s->cfg.rules_watch)
		main_watch_lists(s, &watch);

	srv_notify("STATUS=opening the store: replaying the archive into the live state");
	store_db_opts_default(&dbopts);
	dbopts.archive.fsync = s->cfg.fsync;
	dbopts.archive.fsync_interval_ms = s->cfg.fsync_interval_ms;
	dbopts.archive.segment_max_bytes = (uint64_t)s->cfg.segment_max_mb << 20;
	dbopts.archive.retention_days = s->cfg.retention_days;
	dbopts.archive.compress_closed = s->cfg.compress;
	dbopts.archive.max_record_bytes = s->cfg.max_message_bytes * 2 > (1u << 20) ?
	    s->cfg.max_message_bytes * 2 : (1u << 20);
	dbopts.replay_tick = main_replay_tick;
	dbopts.replay_arg = &replay;
	memset(&recovery, 0, sizeof recovery);
	diag.msg[0] = '\0';
	rv = store_db_open(s->cfg.data_dir, &dbopts, &s->db, &recovery, &diag);
	if (rv == VIGIL_ECLOSED && replay.sig != 0) {
		srv_log("stopping: %s during start-up, at archive record %llu of %llu "
		    "(replaying the archive into the live state)",
		    replay.sig == SIGTERM ? "SIGTERM" : "SIGINT", (unsigned long long)replay.seq,
		    (unsigned long long)replay.last_seq);
		status = 0;
		goto out;
	}
	if (rv != VIGIL_OK) {
		srv_log("store %s: %s: %s", s->cfg.data_dir, vigil_strerror(rv), diag.msg);
		if (rv == VIGIL_EBUSY) /* another vigild on this data directory */
			status = VIGIL_EXIT_BUSY;
		goto out;
	}
	if (diag.msg[0] != '\0') /* opened, with a note: corrupt records skipped */
		srv_log("store: %s", diag.msg);
	if (recovery.torn_records > 0)
		srv_log("archive: truncated a torn tail of %llu record(s), %llu bytes",
		    (unsigned long long)recovery.torn_records,
		    (unsigned long long)recovery.torn_bytes);
	srv_log("store: opened %s: %u segment(s), last seq %llu, generation %llu",
	    s->cfg.data_dir, recovery.segments, (unsigned long long)recovery.last_seq,
	    (unsigned long long)store_db_generation(s->db));
	main_gen_startup(s);
	if (srv_rules_retune(s) != VIGIL_OK)
		goto out;
	if (!main_maint_start(&g_maint, s) || !main_maint_start(&g_refresh, s))
		goto out;
	/* After the archive replay: other replicas' observations are applied
	 * on top of the local live state (docs/operations.md, "Running a
	 * cluster"). An unreachable NATS is no error here: degraded. */
	if (s->cfg.cluster_nats[0] != '\0' &&
	    srv_cluster_start(s, &s->cluster, errbuf, sizeof errbuf) != VIGIL_OK) {
		srv_log("%s", errbuf);
		goto out;
	}
	/* Off the scoring path: reads the archive directory, runs a command. */
	if (s->cfg.ship_command[0] != '\0' &&
	    srv_ship_start(s, &s->ship, errbuf, sizeof errbuf) != VIGIL_OK) {
		srv_log("%s", errbuf);
		goto out;
	}
	atomic_store(&s->ready, true);
	snprintf(errbuf, sizeof errbuf, "READY=1\nSTATUS=serving, feature generation %llu",
	    (unsigned long long)store_db_generation(s->db));
	srv_notify(errbuf);
	if (srv_notify_watchdog(&wd_usec) <= 0)
		wd_usec = 0;
	srv_log("ready");

	for (;;) {
		struct timespec tick = { 0, MAIN_TICK_MS * 1000000L };
		uint64_t now;
		int sig = sigtimedwait(&sigs, NULL, &tick);

		if (sig == SIGTERM || sig == SIGINT) {
			srv_log("%s: draining in-flight requests", sig == SIGTERM ? "SIGTERM" : "SIGINT");
			break;
		}
		if (sig == SIGHUP) {
			/* what this reload reads, the watch does not reload again */
			if (s->cfg.rules_watch)
				srv_watch_sync(&watch);
			srv_rules_reload(s, "SIGHUP");
			if (s->cfg.rules_watch)
				main_watch_lists(s, &watch);
			rv = srv_rep_tls_reload(rep, errbuf, sizeof errbuf);
			if (rv == VIGIL_OK) {
				srv_log("tls: certificate %s, key %s%s%s%s%s reloaded (SIGHUP): new "
				    "connections use them, open ones keep theirs", s->cfg.tls_cert,
				    s->cfg.tls_key, s->cfg.tls_ca[0] ? ", ca " : "", s->cfg.tls_ca,
				    s->cfg.tls_crl[0] ? ", crl " : "", s->cfg.tls_crl);
				srv_tls_expiry_load(s);
				srv_tls_expiry_check(s);
			} else if (rv != VIGIL_ENOTFOUND)
				srv_log("%s; the previous certificate, key and CA stay in use", errbuf);
			if (s->cfg.admin_token_file[0] != '\0') {
				if (srv_admin_token_load(s, errbuf, sizeof errbuf) == VIGIL_OK)
					srv_log("admin: token reloaded from %s (SIGHUP)",
					    s->cfg.admin_token_file);
				else
					srv_log("%s; the previous token stays in use", errbuf);
			}
		}
		now = vigil_mono_ns() / 1000;
		if (now - last_refresh >= MAIN_REFRESH_MS * 1000u) {
			last_refresh = now;
			main_maint_kick(&g_refresh);
		}
		main_refresh_take(&g_refresh, refresh_err, sizeof refresh_err);
		main_refresh_watch(s, &refresh_warned);
		/* The first pass right away: a day-old segment closes, leftovers
		 * compress. Every second while the archive fails: its retry, so an
		 * idle (or drained) server heals too. */
		main_archive_watch(s, &archive);
		if (last_maint == 0 || now - last_maint >= MAIN_MAINTAIN_MS * 1000u ||
		    (archive.failing && now - last_maint >= 1000000u)) {
			last_maint = now;
			main_maint_kick(&g_maint);
		}
		if (s->cfg.rules_watch)
			main_watch_tick(s, &watch);
		if (now - last_tls >= (uint64_t)s->cfg.tls_check_interval_s * 1000000u) {
			last_tls = now;
			srv_tls_expiry_check(s);
		}
		if (wd_usec != 0 && now - last_wd >= wd_usec / 2) {
			last_wd = now;
			srv_notify("WATCHDOG=1");
		}
	}
	status = 0;
out:
	atomic_store(&s->draining, true);
	srv_notify("STOPPING=1\nSTATUS=stopping: draining in-flight requests");
	clean = srv_rep_stop(rep, s->cfg.request_timeout_ms + 1000);
	srv_admin_stop(admin);
	/* nothing scores or reads it any more: publish what is queued, stop applying */
	srv_cluster_stop(s->cluster);
	s->cluster = NULL;
	srv_ship_stop(s->ship);
	s->ship = NULL;
	main_maint_stop(&g_maint, -1);
	if (!main_maint_stop(&g_refresh, MAIN_STOP_REFRESH_MS)) {
		refresh_left = true;
		srv_log("features: the generation check running for %lld s does not end; "
		    "stopping without it (the archive is closed as always; the next start "
		    "checks CURRENT again)", (long long)(srv_refresh_running_ms(s) / 1000));
	}
	/* the rule set holds a generation reference: released before the db */
	srv_ruleset_release(s->rs);
	s->rs = NULL;
	if (clean) /* else nng's threads may still hold a rule set counting on it */
		srv_rules_hits_free(s);
	if (s->db != NULL) {
		if (refresh_left) /* the refresh thread is still in it */
			store_db_abandon(s->db);
		else
			store_db_close(s->db);
		s->db = NULL;
	}
	srv_watch_free(&watch);
	if (status == 0)
		srv_log("stopped");
	else
		srv_log("exiting after an error (status %d)", status);
	/* nng threads still hold the abandoned socket, or the refresh thread
	 * the store: skip atexit */
	if (!clean || refresh_left)
		_exit(status);
	return status;
}
