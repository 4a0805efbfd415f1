/* SPDX-License-Identifier: MIT */
/*
 * tests/lib/harness.c - start and stop a real vigild for integration tests,
 * and talk to it: nng REQ for the wire protocol, a plain TCP socket for the
 * admin HTTP endpoint. Errors go to stderr: this is test code, and a test
 * that cannot start its server must say why.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "tmpdir.h"
#include "harness.h"

static const char *
root_path(const char *env, const char *rel)
{
	static char bufs[8][1024];
	static unsigned next;
	const char *root = getenv(env);
	char *buf = bufs[next++ % 8];

	if (rel[0] == '/') {
		snprintf(buf, sizeof bufs[0], "%s", rel);
		return buf;
	}
	snprintf(buf, sizeof bufs[0], "%s/%s", root != NULL ? root : ".", rel);
	return buf;
}

const char *
vt_src_path(const char *rel)
{
	return root_path("VIGIL_SOURCE_ROOT", rel);
}

const char *
vt_build_path(const char *rel)
{
	return root_path("VIGIL_BUILD_ROOT", rel);
}

/* A port from tests/lib/vt_port.py: outside the kernel's ephemeral range
 * and not given to another test running now (its head says why). */
static uint16_t
free_port(void)
{
	char cmd[1100];
	unsigned port = 0;
	FILE *p;

	snprintf(cmd, sizeof cmd, "python3 '%s'", vt_src_path("tests/lib/vt_port.py"));
	p = popen(cmd, "r");
	if (p == NULL)
		return 0;
	if (fscanf(p, "%u", &port) != 1 || port > 65535)
		port = 0;
	if (pclose(p) != 0)
		port = 0;
	if (port == 0)
		fprintf(stderr, "harness: tests/lib/vt_port.py gave no port\n");
	return (uint16_t)port;
}

static void
sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* Seconds on the monotonic clock. */
static double
mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
print_log_tail(const vt_server *s)
{
	FILE *f = fopen(s->log, "r");
	char line[512];

	if (f == NULL)
		return;
	fprintf(stderr, "---- %s ----\n", s->log);
	while (fgets(line, sizeof line, f) != NULL)
		fputs(line, stderr);
	fprintf(stderr, "----\n");
	fclose(f);
}

/*
 * Servers still running when the test process exits (a failed cmocka
 * assertion skips the test's own stop) are killed: children also get
 * PR_SET_PDEATHSIG so a test killed by its timeout takes its vigild along.
 */
#define VT_MAX_CHILDREN 64
static pid_t vt_children[VT_MAX_CHILDREN];
static bool  vt_atexit_set;

static void
vt_kill_children(void)
{
	for (int i = 0; i < VT_MAX_CHILDREN; i++) {
		if (vt_children[i] > 0) {
			kill(vt_children[i], SIGKILL);
			waitpid(vt_children[i], NULL, 0);
			vt_children[i] = 0;
		}
	}
}

static void
vt_child_track(pid_t pid, bool add)
{
	for (int i = 0; i < VT_MAX_CHILDREN; i++) {
		if (add ? vt_children[i] == 0 : vt_children[i] == pid) {
			vt_children[i] = add ? pid : 0;
			return;
		}
	}
}

int
vt_server_start(vt_server *s, const char *rules, const char *const *extra_args)
{
	return vt_server_start_opts(s, rules, extra_args, NULL);
}

int
vt_server_start_opts(vt_server *s, const char *rules, const char *const *extra_args,
    const vt_opts *o)
{
	const char *argv[64];
	char admin[64];
	int argc = 0, ready0;
	pid_t pid;

	if (s->datadir[0] == '\0' && vt_server_datadir_new(s) != 0)
		return -1;
	snprintf(s->url, sizeof s->url, "ipc://%s/vigild.sock", s->datadir);
	snprintf(s->log, sizeof s->log, "%s/vigild.log", s->datadir);
	snprintf(s->rules, sizeof s->rules, "%s",
	    rules != NULL ? rules : vt_src_path("rules/default.rules"));
	s->admin_port = free_port();
	if (s->admin_port == 0) {
		fprintf(stderr, "harness: no free loopback port\n");
		return -1;
	}
	snprintf(admin, sizeof admin, "%s:%u", o != NULL && o->admin_host != NULL ?
	    o->admin_host : "127.0.0.1", s->admin_port);

	argv[argc++] = vt_build_path("server/vigild");
	argv[argc++] = "--data";
	argv[argc++] = s->datadir;
	argv[argc++] = "--listen";
	argv[argc++] = s->url;
	argv[argc++] = "--admin";
	argv[argc++] = admin;
	argv[argc++] = "--rules";
	argv[argc++] = s->rules;
	for (int i = 0; extra_args != NULL && extra_args[i] != NULL && argc < 62; i++)
		argv[argc++] = extra_args[i];
	argv[argc] = NULL;

	ready0 = vt_log_count(s, "vigild: ready\n"); /* a restart appends to the log */
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "harness: fork: %s\n", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		int fd = open(s->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (o != NULL && o->nofile > 0) {
			struct rlimit rl = { o->nofile, o->nofile };

			if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
				_exit(126);
		}
		if (fd >= 0) {
			dup2(fd, STDERR_FILENO);
			dup2(fd, STDOUT_FILENO);
			close(fd);
		}
		execv(argv[0], (char *const *)argv);
		fprintf(stderr, "harness: exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	s->pid = pid;
	if (!vt_atexit_set) {
		atexit(vt_kill_children);
		vt_atexit_set = true;
	}
	vt_child_track(pid, true);

	/* Wait for a ready health reply (rules compiled, store open), 120 s at
	 * most however long each try takes. */
	for (double until = mono_s() + 120; mono_s() < until;) {
		Vigil__V1__Request req = VIGIL__V1__REQUEST__INIT;
		Vigil__V1__HealthRequest h = VIGIL__V1__HEALTH_REQUEST__INIT;
		Vigil__V1__Reply *rep;
		int status;

		if (waitpid(pid, &status, WNOHANG) == pid) {
			fprintf(stderr, "harness: vigild exited during start-up (status %d)\n",
			    WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status));
			vt_child_track(pid, false);
			s->pid = 0;
			print_log_tail(s);
			return -1;
		}
		if (o != NULL && o->not_ready) {
			if (vt_log_count(s, "vigild: ready\n") > ready0)
				return 0;
			sleep_ms(100);
			continue;
		}
		req.kind_case = VIGIL__V1__REQUEST__KIND_HEALTH;
		req.health = &h;
		rep = vt_call(s->url, &req, 500);
		if (rep != NULL) {
			bool ready = rep->kind_case == VIGIL__V1__REPLY__KIND_HEALTH &&
			    rep->health->ready;
			vigil__v1__reply__free_unpacked(rep, NULL);
			if (ready)
				return 0;
		}
		sleep_ms(100);
	}
	fprintf(stderr, "harness: vigild not ready after 120 s\n");
	print_log_tail(s);
	vt_server_kill(s);
	return -1;
}

int
vt_server_stop(vt_server *s)
{
	int status;

	if (s->pid == 0)
		return -1;
	kill(s->pid, SIGTERM);
	/* A liveness bound, far above any drain (vigild bounds its own
	 * shutdown): a vigild that never exits fails the test with its log
	 * instead of hanging it until meson's timeout. */
	for (int waited_ms = 0;; waited_ms += 100) {
		pid_t w = waitpid(s->pid, &status, WNOHANG);

		if (w == s->pid)
			break;
		if (w < 0)
			return -1;
		if (waited_ms >= 120000) {
			fprintf(stderr, "harness: vigild (pid %d) did not exit within 120 s of "
			    "SIGTERM: killed\n", (int)s->pid);
			print_log_tail(s);
			vt_server_kill(s);
			return -1;
		}
		sleep_ms(100);
	}
	vt_child_track(s->pid, false);
	s->pid = 0;
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	print_log_tail(s);
	return 128 + WTERMSIG(status);
}

void
vt_server_kill(vt_server *s)
{
	if (s->pid == 0)
		return;
	kill(s->pid, SIGKILL);
	waitpid(s->pid, NULL, 0);
	vt_child_track(s->pid, false);
	s->pid = 0;
}

bool
vt_server_alive(vt_server *s)
{
	if (s->pid == 0)
		return false;
	if (waitpid(s->pid, NULL, WNOHANG) == 0)
		return true;
	vt_child_track(s->pid, false);
	s->pid = 0;
	return false;
}

void
vt_server_cleanup(vt_server *s)
{
	/* only a directory the harness made (VT_DATADIR_TEMPLATE) */
	if (s->datadir[0] == '\0' ||
	    strncmp(s->datadir, VT_DATADIR_TEMPLATE, sizeof VT_DATADIR_TEMPLATE - 7) != 0)
		return;
	if (getenv("VIGIL_KEEP_TEST_DATA") != NULL) {
		fprintf(stderr, "harness: keeping %s\n", s->datadir);
		return;
	}
	if (vt_tmpdir_remove(s->datadir) != 0)
		fprintf(stderr, "harness: could not remove %s: %s\n", s->datadir, strerror(errno));
	s->datadir[0] = '\0';
}

int
vt_request_raw(const char *url, const void *req, size_t len, void **ret_reply, size_t *ret_len,
    int timeout_ms)
{
	nng_socket sock;
	void *buf = NULL;
	size_t sz = 0;
	int rv;

	if ((rv = nng_req0_open(&sock)) != 0)
		return rv;
	nng_socket_set_ms(sock, NNG_OPT_RECVTIMEO, timeout_ms);
	nng_socket_set_ms(sock, NNG_OPT_SENDTIMEO, timeout_ms);
	nng_socket_set_size(sock, NNG_OPT_RECVMAXSZ, 0);
	if ((rv = nng_dial(sock, url, NULL, 0)) != 0)
		goto out;
	if ((rv = nng_send(sock, (void *)req, len, 0)) != 0)
		goto out;
	if ((rv = nng_recv(sock, &buf, &sz, NNG_FLAG_ALLOC)) != 0)
		goto out;
	*ret_reply = malloc(sz > 0 ? sz : 1);
	if (*ret_reply == NULL) {
		rv = NNG_ENOMEM;
		goto out;
	}
	memcpy(*ret_reply, buf, sz);
	*ret_len = sz;
out:
	if (buf != NULL)
		nng_free(buf, sz);
	nng_close(sock);
	return rv;
}

int
vt_request_dropped(const char *url, const void *req, size_t len, int timeout_ms)
{
	char path[] = "/tmp/vigil-test-req-XXXXXX", ms[16];
	const char *prog = vt_build_path("tests/lib/vt-request");
	int fd, status = 0, result = -1;
	pid_t pid;

	/* nng 1.5.2 panics in a forked child of a process that used it, so
	 * the exchange runs in a program of its own (tests/lib/vt_request.c). */
	if ((fd = mkstemp(path)) < 0)
		return -1;
	if (write(fd, req, len) != (ssize_t)len) {
		close(fd);
		unlink(path);
		return -1;
	}
	close(fd);
	snprintf(ms, sizeof ms, "%d", timeout_ms);
	pid = fork();
	if (pid == 0) {
		execl(prog, prog, url, path, ms, (char *)NULL);
		fprintf(stderr, "harness: exec %s: %s\n", prog, strerror(errno));
		_exit(100);
	}
	if (pid > 0) {
		/* The program's own timeouts end it well before this deadline;
		 * one that is still running after it is hung and is killed. */
		for (int waited = 0; waited < timeout_ms + 10000; waited += 10) {
			pid_t w = waitpid(pid, &status, WNOHANG);
			if (w == pid) {
				if (WIFEXITED(status) && WEXITSTATUS(status) < 100)
					result = WEXITSTATUS(status);
				else
					fprintf(stderr, "harness: vt-request ended with status %#x\n",
					    (unsigned)status);
				pid = 0;
				break;
			}
			usleep(10000);
		}
		if (pid > 0) {
			fprintf(stderr, "harness: vt-request hung; killed\n");
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
		}
	}
	unlink(path);
	return result;
}

Vigil__V1__Reply *
vt_call(const char *url, const Vigil__V1__Request *req, int timeout_ms)
{
	size_t len = vigil__v1__request__get_packed_size(req);
	uint8_t *buf = malloc(len > 0 ? len : 1);
	void *rep = NULL;
	size_t rlen = 0;
	Vigil__V1__Reply *r = NULL;

	if (buf == NULL)
		return NULL;
	vigil__v1__request__pack(req, buf);
	if (vt_request_raw(url, buf, len, &rep, &rlen, timeout_ms) == 0)
		r = vigil__v1__reply__unpack(NULL, rlen, rep);
	free(rep);
	free(buf);
	return r;
}

static struct vt_txn_slot {
	Vigil__V1__Transaction txn;
	char txn_id[80], card_id[80];
} txn_slots[8];

Vigil__V1__Transaction *
vt_txn(int slot, const char *txn_id, const char *card_id, int64_t amount_minor,
    int64_t event_time_ms)
{
	struct vt_txn_slot *s = &txn_slots[(unsigned)slot % 8];
	Vigil__V1__Transaction init = VIGIL__V1__TRANSACTION__INIT;

	s->txn = init;
	snprintf(s->txn_id, sizeof s->txn_id, "%s", txn_id);
	snprintf(s->card_id, sizeof s->card_id, "%s", card_id);
	s->txn.txn_id = s->txn_id;
	s->txn.card_id = s->card_id;
	s->txn.merchant_id = "m-test-1";
	s->txn.terminal_id = "t-test-1";
	s->txn.amount_minor = amount_minor;
	s->txn.currency = "EUR";
	s->txn.mcc = 5411;
	s->txn.country = "FR";
	s->txn.channel = VIGIL__V1__CHANNEL__ECOM;
	s->txn.event_time_ms = event_time_ms;
	return &s->txn;
}

/* How long vt_score and vt_label wait for a reply: only a guard against a
 * server that never answers (a hang fails the test); an ASan build under a
 * full parallel suite on 2 CPUs has taken over 5 s for one reply. */
#define VT_REPLY_MS 30000

Vigil__V1__Reply *
vt_score(const char *url, const Vigil__V1__Transaction *txn, bool dry_run)
{
	Vigil__V1__Request req = VIGIL__V1__REQUEST__INIT;
	Vigil__V1__ScoreRequest sr = VIGIL__V1__SCORE_REQUEST__INIT;

	sr.txn = (Vigil__V1__Transaction *)txn;
	sr.dry_run = dry_run;
	req.kind_case = VIGIL__V1__REQUEST__KIND_SCORE;
	req.score = &sr;
	return vt_call(url, &req, VT_REPLY_MS);
}

Vigil__V1__Reply *
vt_label(const char *url, const char *txn_id, bool fraud, int64_t label_time_ms)
{
	Vigil__V1__Request req = VIGIL__V1__REQUEST__INIT;
	Vigil__V1__LabelRequest lr = VIGIL__V1__LABEL_REQUEST__INIT;
	Vigil__V1__Label l = VIGIL__V1__LABEL__INIT;

	l.txn_id = (char *)txn_id;
	l.fraud = fraud;
	l.label_time_ms = label_time_ms;
	l.source = "test";
	lr.label = &l;
	req.kind_case = VIGIL__V1__REQUEST__KIND_LABEL;
	req.label = &lr;
	return vt_call(url, &req, VT_REPLY_MS);
}

static int
http_do(uint16_t port, const char *method, const char *path, const char *headers,
    const char *body, int *ret_status, char **ret_body)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	char head[1024];
	char *resp = NULL, *p;
	size_t len = 0, cap = 0;
	int fd, n, rv = -1;
	size_t blen = body != NULL ? strlen(body) : 0;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
		goto out;
	n = snprintf(head, sizeof head,
	    "%s %s HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
	    "Content-Length: %zu\r\nConnection: close\r\n%s\r\n", method, path, blen,
	    headers != NULL ? headers : "");
	if (n < 0 || (size_t)n >= sizeof head)
		goto out;
	if (write(fd, head, (size_t)n) != n)
		goto out;
	if (blen > 0 && write(fd, body, blen) != (ssize_t)blen)
		goto out;
	for (;;) {
		ssize_t r;
		if (len + 4096 + 1 > cap) {
			char *nb = realloc(resp, cap = (cap ? cap * 2 : 8192));
			if (nb == NULL)
				goto out;
			resp = nb;
		}
		r = read(fd, resp + len, cap - len - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	if (resp == NULL)
		goto out;
	resp[len] = '\0';
	if (sscanf(resp, "HTTP/%*d.%*d %d", ret_status) != 1)
		goto out;
	p = strstr(resp, "\r\n\r\n");
	*ret_body = strdup(p != NULL ? p + 4 : "");
	rv = *ret_body != NULL ? 0 : -1;
out:
	free(resp);
	close(fd);
	return rv;
}

int
vt_http_get(uint16_t port, const char *path, int *ret_status, char **ret_body)
{
	return http_do(port, "GET", path, NULL, NULL, ret_status, ret_body);
}

int
vt_http_post(uint16_t port, const char *path, const char *body, int *ret_status,
    char **ret_body)
{
	return http_do(port, "POST", path, NULL, body, ret_status, ret_body);
}

int
vt_http_next(const char **p, int *ret_status, char *head, size_t headcap,
    const char **ret_body, size_t *ret_blen)
{
	const char *end = strstr(*p, "\r\n\r\n"), *cl;
	size_t hlen, blen;
	char *e;

	if (end == NULL || headcap == 0)
		return -1;
	hlen = (size_t)(end - *p) + 2;
	snprintf(head, headcap, "%.*s", (int)hlen, *p);
	cl = strstr(head, "\r\nContent-Length: ");
	if (cl == NULL || sscanf(head, "HTTP/1.%*d %d ", ret_status) != 1)
		return -1;
	blen = strtoul(cl + 18, &e, 10);
	if (e == cl + 18 || *e != '\r' || strlen(end + 4) < blen)
		return -1;
	*ret_body = end + 4;
	*ret_blen = blen;
	*p = end + 4 + blen;
	return 0;
}

int
vt_file_temp(char *path, const char *text)
{
	int fd = mkstemp(path);
	FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;

	if (f == NULL) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (fputs(text, f) == EOF) {
		fclose(f);
		return -1;
	}
	return fclose(f) == 0 ? 0 : -1;
}

char *
vt_http_raw(uint16_t port, const char *req, size_t len, bool *ret_closed)
{
	enum { RAW_MAX = 64 * 1024 };
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	struct timeval tv = { 20, 0 };
	char *resp = calloc(1, RAW_MAX);
	size_t n = 0, off = 0;
	ssize_t r = 0;
	int fd = -1;

	*ret_closed = false;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (resp == NULL || (fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0 ||
	    connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
		if (fd >= 0)
			close(fd);
		free(resp);
		return NULL;
	}
	while (off < len && (r = send(fd, req + off, len - off, MSG_NOSIGNAL)) > 0)
		off += (size_t)r;
	while (n + 1 < RAW_MAX && (r = read(fd, resp + n, RAW_MAX - 1 - n)) > 0)
		n += (size_t)r;
	close(fd);
	*ret_closed = r == 0 || (r < 0 && errno == ECONNRESET);
	return resp;
}

int
vt_http(uint16_t port, const char *method, const char *path, const char *headers,
    const char *body, int *ret_status, char **ret_body)
{
	return http_do(port, method, path, headers, body, ret_status, ret_body);
}

uint16_t
vt_free_port(void)
{
	return free_port();
}

long
vt_proc_rss_kb(pid_t pid)
{
	char path[64], line[256];
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof line, f) != NULL)
		if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

int
vt_pki_make(const char *dir)
{
	const char *argv[] = { "/bin/sh", vt_src_path("tests/lib/mkpki.sh"), dir, NULL };
	int rv = vt_run(argv, NULL);

	if (rv != 0)
		fprintf(stderr, "harness: tests/lib/mkpki.sh %s: exit %d\n", dir, rv);
	return rv == 0 ? 0 : -1;
}

int
vt_run(const char *const *argv, char **ret_out)
{
	int pfd[2], status;
	pid_t pid;
	char *out = NULL;
	size_t len = 0, cap = 0;
	const char *prog = argv[0][0] == '/' ? argv[0] : vt_build_path(argv[0]);

	if (pipe(pfd) != 0)
		return -1;
	pid = fork();
	if (pid < 0) {
		close(pfd[0]);
		close(pfd[1]);
		return -1;
	}
	if (pid == 0) {
		dup2(pfd[1], STDOUT_FILENO);
		close(pfd[0]);
		close(pfd[1]);
		execv(prog, (char *const *)argv);
		fprintf(stderr, "harness: exec %s: %s\n", prog, strerror(errno));
		_exit(127);
	}
	close(pfd[1]);
	for (;;) {
		ssize_t r;
		if (len + 4096 + 1 > cap) {
			char *nb = realloc(out, cap = (cap ? cap * 2 : 8192));
			if (nb == NULL)
				break;
			out = nb;
		}
		r = read(pfd[0], out + len, cap - len - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	close(pfd[0]);
	if (out != NULL)
		out[len] = '\0';
	if (waitpid(pid, &status, 0) != pid) {
		free(out);
		return -1;
	}
	if (ret_out != NULL)
		*ret_out = out;
	else
		free(out);
	if (!WIFEXITED(status)) {
		/* Its stderr is the test's: say here which program died. */
		fprintf(stderr, "harness: %s killed by signal %d\n", prog, WTERMSIG(status));
		return 128 + WTERMSIG(status);
	}
	return WEXITSTATUS(status);
}

/* ---- Data directories and logs ---- */

int
vt_copy_dir(const char *src, const char *dst)
{
	const char *argv[] = { "/bin/cp", "-a", "--", NULL, NULL, NULL };
	char from[1024];
	int rv;

	if (mkdir(dst, 0750) != 0 && errno != EEXIST) {
		fprintf(stderr, "harness: mkdir %s: %s\n", dst, strerror(errno));
		return -1;
	}
	snprintf(from, sizeof from, "%s/.", src);
	argv[3] = from;
	argv[4] = dst;
	rv = vt_run(argv, NULL);
	if (rv != 0)
		fprintf(stderr, "harness: cp -a %s %s: exit %d\n", from, dst, rv);
	return rv == 0 ? 0 : -1;
}

int
vt_server_datadir_new(vt_server *s)
{
	snprintf(s->datadir, sizeof s->datadir, "%s", VT_DATADIR_TEMPLATE);
	if (mkdtemp(s->datadir) == NULL) {
		fprintf(stderr, "harness: mkdtemp: %s\n", strerror(errno));
		s->datadir[0] = '\0';
		return -1;
	}
	return 0;
}

int
vt_server_datadir_from(vt_server *s, const char *src)
{
	if (vt_server_datadir_new(s) != 0)
		return -1;
	return vt_copy_dir(src, s->datadir);
}

int
vt_log_count(const vt_server *s, const char *needle)
{
	FILE *f = fopen(s->log, "r");
	char line[2048];
	int n = 0;

	if (f == NULL)
		return 0;
	while (fgets(line, sizeof line, f) != NULL)
		if (strstr(line, needle) != NULL)
			n++;
	fclose(f);
	return n;
}

bool
vt_log_wait(const vt_server *s, const char *needle, int n, int timeout_ms)
{
	for (int waited = 0;; waited += 20) {
		if (vt_log_count(s, needle) >= n)
			return true;
		if (waited >= timeout_ms)
			return false;
		sleep_ms(20);
	}
}

int
vt_nightly_datadir(const char *dir, const vt_nightly *o)
{
	char csv[1024], cards[16], days[16], seed[16], rate[32];
	const char *gen[] = { "tools/gen/vigil-gen", "--cards", cards, "--days", days,
		"--seed", seed, "--fraud-rate", rate, "--start", o->start, "--output", csv,
		"--quiet", NULL };
	const char *argv[48];
	int argc = 0, rv;

	snprintf(csv, sizeof csv, "%s.csv", dir);
	snprintf(cards, sizeof cards, "%u", o->cards);
	snprintf(days, sizeof days, "%u", o->days);
	snprintf(seed, sizeof seed, "%u", o->seed);
	snprintf(rate, sizeof rate, "%g", o->fraud_rate);
	rv = vt_run(gen, NULL);
	if (rv != 0) {
		fprintf(stderr, "harness: vigil-gen: exit %d\n", rv);
		return -1;
	}
	argv[argc++] = "tools/replay/vigil-replay";
	argv[argc++] = "--csv";
	argv[argc++] = csv;
	argv[argc++] = "--nightly";
	argv[argc++] = "--work";
	argv[argc++] = dir;
	argv[argc++] = "--rules";
	argv[argc++] = o->rules != NULL ? o->rules : vt_src_path("rules/default.rules");
	argv[argc++] = "--quiet";
	for (int i = 0; o->extra != NULL && o->extra[i] != NULL && argc < 46; i++)
		argv[argc++] = o->extra[i];
	argv[argc] = NULL;
	rv = vt_run(argv, NULL);
	unlink(csv);
	if (rv != 0) {
		fprintf(stderr, "harness: vigil-replay --nightly --work %s: exit %d\n", dir, rv);
		return -1;
	}
	return 0;
}
