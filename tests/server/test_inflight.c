/* SPDX-License-Identifier: MIT */
/*
 * tests/server/test_inflight.c - requests in flight on one nng connection
 * against a real vigild (integration; issue 17 finding 10, docs/security.md
 * "Caps"). A raw SP-over-TCP REQ peer written here (the 8-byte handshake,
 * then frames of a 64-bit length, a 4-byte request id and the body) sends
 * requests back to back without waiting for replies, as a client with
 * thousands in flight does:
 *
 * - max_inflight_per_connection: beyond it the connection gets OVERLOADED
 *   naming the limit, while another connection is scored meanwhile; the
 *   global max_inflight answers OVERLOADED too. vigild is made slow by a
 *   delayed fdatasync (fsync always, the LD_PRELOAD shim of
 *   tests/store_archive), so it reads requests faster than it scores them
 *   whatever the machine: the backlog is in vigild, where the caps see it.
 *   Before, one connection with 64 in flight got no OVERLOADED.
 * - a connection that sends without ever reading its replies (default fsync
 *   mode) is closed once it is over the cap and none of its replies was
 *   taken for a second, instead of holding every nng context (before: it
 *   held them all, and another client got no reply at all).
 * Nothing here asserts a duration: waits are bounded loops on conditions.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "vigil.h"

#define RAW_FRAME_MAX 4096

static void
sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static void
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

static bool
write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

static bool
read_full(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = recv(fd, p, len, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

/* A raw REQ peer on 127.0.0.1:port; rcvbuf > 0 shrinks its receive buffer
 * (set before connecting, so the window stays small). Fails the test if
 * the SP handshake does not complete with a REP peer. */
static int
raw_open(uint16_t port, int rcvbuf)
{
	static const uint8_t hello[8] = { 0, 'S', 'P', 0, 0, 0x30, 0, 0 }; /* REQ v0 */
	struct sockaddr_in sa = { .sin_family = AF_INET };
	struct timeval tv = { 10, 0 };
	uint8_t peer[8];
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	if (rcvbuf > 0)
		assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf), 0);
	/* bounds on every blocking call: a stuck server fails the test, not hangs it */
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv), 0);
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
	sa.sin_port = htons(port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	assert_true(write_all(fd, hello, sizeof hello));
	assert_true(read_full(fd, peer, sizeof peer));
	assert_memory_equal(peer, "\0SP\0", 4);
	assert_int_equal(peer[4] << 8 | peer[5], 0x31); /* REP v0 */
	return fd;
}

/* Appends one request frame (id, body) to buf at *off. */
static void
raw_frame(uint8_t *buf, size_t cap, size_t *off, uint32_t id, const uint8_t *body,
    size_t len)
{
	uint64_t n = len + 4;
	uint8_t *p = buf + *off;

	assert_true(*off + 12 + len <= cap);
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(n >> (56 - 8 * i));
	id |= 0x80000000u; /* the last (only) element of the backtrace */
	p[8] = (uint8_t)(id >> 24);
	p[9] = (uint8_t)(id >> 16);
	p[10] = (uint8_t)(id >> 8);
	p[11] = (uint8_t)id;
	memcpy(p + 12, body, len);
	*off += 12 + len;
}

/* The next reply frame, decoded; NULL at the end of the stream (or on a
 * timeout / malformed frame: the caller tells them apart by context). */
static Vigil__V1__Reply *
raw_reply(int fd, uint32_t *ret_id)
{
	uint8_t hdr[12], body[RAW_FRAME_MAX];
	uint64_t n = 0;

	if (!read_full(fd, hdr, sizeof hdr))
		return NULL;
	for (int i = 0; i < 8; i++)
		n = n << 8 | hdr[i];
	if (n < 4 || n - 4 > sizeof body || !read_full(fd, body, (size_t)(n - 4)))
		return NULL;
	*ret_id = ((uint32_t)hdr[8] << 24 | (uint32_t)hdr[9] << 16 | (uint32_t)hdr[10] << 8 |
	    hdr[11]) & 0x7fffffffu;
	return vigil__v1__reply__unpack(NULL, (size_t)(n - 4), body);
}

static size_t
pack_score(uint8_t *buf, const char *txn_id, const char *card, int64_t t)
{
	Vigil__V1__Request req = VIGIL__V1__REQUEST__INIT;
	Vigil__V1__ScoreRequest sr = VIGIL__V1__SCORE_REQUEST__INIT;

	sr.txn = vt_txn(0, txn_id, card, 1234, t);
	req.kind_case = VIGIL__V1__REQUEST__KIND_SCORE;
	req.score = &sr;
	return vigil__v1__request__pack(&req, buf);
}

/* The value of the metric line starting with name (exactly), or -1. */
static long long
metric(const vt_server *s, const char *name)
{
	char *body = NULL, *p;
	int code = 0;
	long long v = -1;
	size_t n = strlen(name);

	if (vt_http_get(s->admin_port, "/metrics", &code, &body) != 0 || code != 200) {
		free(body);
		return -1;
	}
	for (p = body; p != NULL && *p != '\0'; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (strncmp(p, name, n) == 0 && p[n] == ' ') {
			v = strtoll(p + n + 1, NULL, 10);
			break;
		}
	free(body);
	return v;
}

static uint16_t
free_port(void)
{
	uint16_t p = vt_free_port();

	assert_true(p != 0);
	return p;
}

/*
 * Starts vigild with the fault shim preloaded (fdatasync delayed by
 * delay_ms), fsync always, a TCP listener on port and ini as its config.
 * Skips when the shim is not built.
 */
static void
start_slow(vt_server *s, char *faultdir, size_t flen, uint16_t port, const char *ini_text,
    int delay_ms)
{
	const char *shim = getenv("VIGIL_FAULT_SHIM");
	const char *asan = getenv("ASAN_OPTIONS");
	char listen[64], ini[400], path[400], num[16], saved[1024] = "", opts[1200];
	const char *args[] = { "--fsync", "always", "--listen", listen, "--config", ini, NULL };
	int rv;

	if (shim == NULL || access(shim, R_OK) != 0) {
		print_message("skipped: VIGIL_FAULT_SHIM (tests/store_archive/fault_shim.c) "
		    "not built\n");
		skip();
	}
	snprintf(faultdir, flen, "/tmp/vigil-inflight-XXXXXX");
	assert_non_null(mkdtemp(faultdir));
	snprintf(path, sizeof path, "%s/fdatasync-delay", faultdir);
	snprintf(num, sizeof num, "%d", delay_ms);
	write_file(path, num);
	snprintf(ini, sizeof ini, "%s/vigild.ini", faultdir);
	write_file(ini, ini_text);
	snprintf(listen, sizeof listen, "tcp://127.0.0.1:%u", port);
	/* the shim comes before the sanitizer runtime in the library list */
	if (asan != NULL)
		snprintf(saved, sizeof saved, "%s", asan);
	snprintf(opts, sizeof opts, "%s%sverify_asan_link_order=0", saved, saved[0] ? ":" : "");
	setenv("ASAN_OPTIONS", opts, 1);
	setenv("VIGIL_FAULT_DIR", faultdir, 1);
	setenv("LD_PRELOAD", shim, 1);
	rv = vt_server_start(s, vt_src_path("tests/server/rules/velocity.rules"), args);
	unsetenv("LD_PRELOAD");
	if (asan != NULL)
		setenv("ASAN_OPTIONS", saved, 1);
	else
		unsetenv("ASAN_OPTIONS");
	assert_int_equal(rv, 0);
}

static void
rm_rf(const char *dir)
{
	char cmd[600];

	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		print_message("could not remove %s\n", dir);
}

/*
 * n score requests sent in one write on a new raw connection, then every
 * reply read: counts OK, OVERLOADED whose message contains want, and fails
 * on anything else or a missing reply.
 */
static void
burst(uint16_t port, const char *tag, int n, const char *want, int *ret_ok, int *ret_over)
{
	static uint8_t buf[256 * 512];
	size_t off = 0;
	bool seen[256] = { false };
	int fd = raw_open(port, 0);

	assert_true(n <= 256);
	*ret_ok = *ret_over = 0;
	for (int i = 0; i < n; i++) {
		uint8_t req[512];
		char id[48], card[48];
		size_t len;

		snprintf(id, sizeof id, "%s-%d", tag, i);
		snprintf(card, sizeof card, "card-%s-%d", tag, i % 16);
		len = pack_score(req, id, card, vigil_now_ms());
		raw_frame(buf, sizeof buf, &off, (uint32_t)i, req, len);
	}
	assert_true(write_all(fd, buf, off));
	for (int i = 0; i < n; i++) {
		uint32_t id = 0;
		Vigil__V1__Reply *r = raw_reply(fd, &id);

		if (r == NULL)
			fail_msg("%s: %d of %d replies, then none", tag, i, n);
		assert_true(id < (uint32_t)n);
		assert_false(seen[id]);
		seen[id] = true;
		if (r->status == VIGIL__V1__STATUS__STATUS_OK)
			(*ret_ok)++;
		else if (r->status == VIGIL__V1__STATUS__STATUS_OVERLOADED &&
		    strstr(r->message, want) != NULL)
			(*ret_over)++;
		else
			fail_msg("%s: request %u: status %d: %s", tag, id, r->status, r->message);
		vigil__v1__reply__free_unpacked(r, NULL);
	}
	close(fd);
}

/* One score on the server's ipc:// socket: its status. */
static int
score_one(const vt_server *s, const char *txn_id)
{
	Vigil__V1__Reply *r = vt_score(s->url, vt_txn(1, txn_id, "card-polite", 500,
	    vigil_now_ms()), false);
	int status;

	if (r == NULL)
		return -1;
	status = r->status;
	vigil__v1__reply__free_unpacked(r, NULL);
	return status;
}

/* A connection polite enough to wait for its reply, while a burst is in
 * flight on another. */
typedef struct polite_arg {
	const vt_server *s;
	int              status;
} polite_arg;

static void *
polite_main(void *arg)
{
	polite_arg *a = arg;

	a->status = score_one(a->s, "polite-1");
	return NULL;
}

/*
 * One connection, n requests in flight, no per-connection cap, vigild slow:
 * at most max_inflight are admitted, each scored; the rest are answered
 * OVERLOADED by the global limit (not the per-connection one); vigild
 * still scores afterwards.
 */
static void
global_burst(int max_inflight, int n)
{
	char faultdir[64], ini[256], tag[32];
	vt_server s = { 0 };
	uint16_t port = free_port();
	int ok = 0, over = 0;

	snprintf(ini, sizeof ini, "[server]\nmax_inflight_per_connection = 0\nmax_inflight = %d\n"
	    "workers = 2\nqueue_timeout_ms = 600000\nrequest_timeout_ms = 600000\n", max_inflight);
	snprintf(tag, sizeof tag, "global%d", max_inflight);
	start_slow(&s, faultdir, sizeof faultdir, port, ini, 40);
	burst(port, tag, n, "work queue full", &ok, &over);
	print_message("one connection, %d in flight, max_inflight %d, no per-connection cap: "
	    "%d scored, %d OVERLOADED\n", n, max_inflight, ok, over);
	assert_true(over > 0);
	assert_true(ok >= max_inflight);
	assert_int_equal(ok + over, n);
	assert_int_equal(metric(&s, "vigil_connection_overloaded_total"), 0);
	assert_int_equal(score_one(&s, "after-global"), VIGIL__V1__STATUS__STATUS_OK);
	assert_int_equal(vt_server_stop(&s), 0);
	vt_server_cleanup(&s);
	rm_rf(faultdir);
}

/*
 * max_inflight_per_connection 8, vigild slow (each fdatasync 40 ms, two
 * workers): 64 requests on one connection. What is over the cap is
 * answered OVERLOADED at once, naming the limit; what was admitted is
 * scored; a second connection scoring meanwhile is not refused (the cap is
 * per connection, the global max_inflight is far away). With the cap off
 * and max_inflight 8, the same burst meets the global limit, and with
 * max_inflight 100 a burst of 256 meets it too. Before the
 * per-connection cap, the 64 were all scored, one after the other, 40 ms
 * each: the client's latency grew with its own backlog and nothing told it.
 */
static void
test_inflight_per_connection(void **state)
{
	char faultdir[64];
	vt_server s = { 0 };
	uint16_t port = free_port();
	polite_arg pa = { &s, -1 };
	pthread_t t;
	int ok = 0, over = 0;

	(void)state;
	start_slow(&s, faultdir, sizeof faultdir, port,
	    "[server]\nmax_inflight_per_connection = 8\nworkers = 2\n"
	    "queue_timeout_ms = 600000\nrequest_timeout_ms = 600000\n", 40);
	assert_int_equal(pthread_create(&t, NULL, polite_main, &pa), 0);
	burst(port, "conn", 64, "max_inflight_per_connection", &ok, &over);
	assert_int_equal(pthread_join(t, NULL), 0);
	print_message("one connection, 64 in flight, cap 8: %d scored, %d OVERLOADED; "
	    "another connection meanwhile: status %d\n", ok, over, pa.status);
	assert_true(over > 0);
	assert_true(ok >= 8);
	assert_int_equal(ok + over, 64);
	assert_int_equal(pa.status, VIGIL__V1__STATUS__STATUS_OK);
	assert_int_equal(metric(&s, "vigil_connection_overloaded_total"), over);
	assert_int_equal(vt_server_stop(&s), 0);
	vt_server_cleanup(&s);
	rm_rf(faultdir);

	/* the global limit, the per-connection one off */
	global_burst(8, 64);
	/* max_inflight 100: more than the 64 contexts armed at a time (rep.c,
	 * "Parked contexts"). Each request the burst brings arms a parked one,
	 * so 100 are admitted and the rest refused; were the parked never
	 * armed, no more than 64 would be in flight and none refused. */
	global_burst(100, 256);
}

/*
 * The default fsync mode with no per-connection cap: bursts of 256
 * pipelined requests keep every nng thread busy, so some requests arrive
 * while every inline slot is taken and wait in the work queue, which the
 * threads scoring inline drain when they finish, with no worker woken.
 * Every request must be answered and scored; one left in the queue with no
 * thread to take it would fail the burst (no reply). The first client of
 * another connection is scored afterwards.
 */
static void
test_inline_overflow(void **state)
{
	char listen[64], ini[400];
	const char *args[] = { "--listen", listen, "--config", ini, NULL };
	vt_server s = { 0 };
	uint16_t port = free_port();
	int ok, over, bursts = 0;
	long long queued = 0;

	(void)state;
	assert_int_equal(vt_server_datadir_new(&s), 0);
	snprintf(ini, sizeof ini, "%s/overflow.ini", s.datadir);
	write_file(ini, "[server]\nmax_inflight_per_connection = 0\n"
	    "queue_timeout_ms = 600000\nrequest_timeout_ms = 600000\n");
	snprintf(listen, sizeof listen, "tcp://127.0.0.1:%u", port);
	assert_int_equal(vt_server_start(&s, vt_src_path("tests/server/rules/velocity.rules"),
	    args), 0);
	/* until some requests were queued (bounded: 64 bursts) */
	while (bursts < 64 && (queued = metric(&s, "vigil_queued_total")) < 1) {
		char tag[16];

		snprintf(tag, sizeof tag, "ovf%d", bursts++);
		burst(port, tag, 256, "(none expected)", &ok, &over);
		assert_int_equal(ok, 256);
		assert_int_equal(over, 0);
	}
	print_message("%d bursts of 256 pipelined requests: all scored; %lld waited in the "
	    "work queue\n", bursts, queued);
	assert_true(queued > 0);
	assert_int_equal(score_one(&s, "after-overflow"), VIGIL__V1__STATUS__STATUS_OK);
	assert_true(vt_server_alive(&s));
	assert_int_equal(vt_server_stop(&s), 0);
	vt_server_cleanup(&s);
}

/* The hog: sends score requests on fd until a send fails (vigild closed
 * the connection, or stopped reading for 10 s) or stop is set. Not a fixed
 * count: loopback's autotuned send buffer takes about 4 MB of replies
 * (some 50,000) before one waits, and a count near that passed or failed
 * with the machine's speed. */
typedef struct hog_arg {
	int fd;
	atomic_bool stop;
	long sent;
} hog_arg;

static void *
hog_main(void *arg)
{
	hog_arg *h = arg;
	static uint8_t buf[64 * 300];

	for (long i = 0; !atomic_load(&h->stop);) {
		size_t off = 0;

		for (int k = 0; k < 64; k++) {
			uint8_t req[300];
			char id[48], card[48];
			size_t len;

			snprintf(id, sizeof id, "hog-%ld", i + k);
			snprintf(card, sizeof card, "card-hog-%ld", (i + k) % 64);
			len = pack_score(req, id, card, vigil_now_ms());
			raw_frame(buf, sizeof buf, &off, (uint32_t)(i + k), req, len);
		}
		if (!write_all(h->fd, buf, off))
			break;
		i += 64;
		h->sent = i;
	}
	return NULL;
}

/*
 * The default fsync mode, max_inflight_per_connection 16: a peer that
 * pipelines requests and never reads a reply (its receive buffer 4 KiB).
 * Once the socket buffers are full its replies stay in vigild, each
 * holding an nng context; vigild answers OVERLOADED over 16 and, when none
 * of the replies was taken for a second, closes the connection, logs it
 * and counts it; another client is scored then. Before, the peer's unsent
 * replies took every context (max_inflight + 64) and the other client got
 * no reply at all.
 */
static void
test_unread_replies(void **state)
{
	char listen[64], ini[400];
	const char *args[] = { "--listen", listen, "--config", ini, NULL };
	vt_server s = { 0 };
	uint16_t port = free_port();
	hog_arg h = { .fd = -1 };
	pthread_t t;
	long long closed = 0;
	int status, nrep = 0;
	uint32_t id;
	Vigil__V1__Reply *r;

	(void)state;
	assert_int_equal(vt_server_datadir_new(&s), 0);
	snprintf(ini, sizeof ini, "%s/hog.ini", s.datadir);
	write_file(ini, "[server]\nmax_inflight_per_connection = 16\n");
	snprintf(listen, sizeof listen, "tcp://127.0.0.1:%u", port);
	assert_int_equal(vt_server_start(&s, vt_src_path("tests/server/rules/velocity.rules"),
	    args), 0);

	h.fd = raw_open(port, 4096);
	assert_int_equal(pthread_create(&t, NULL, hog_main, &h), 0);
	/* until vigild closed it (bounded: 240 s; then the hog is stopped) */
	for (int i = 0; i < 2400 && (closed = metric(&s,
	    "vigil_connections_closed_total{listener=\"nng\"}")) < 1; i++)
		sleep_ms(100);
	/* another client is served meanwhile */
	status = score_one(&s, "polite-2");
	atomic_store(&h.stop, true);
	assert_int_equal(pthread_join(t, NULL), 0);
	print_message("hog: %ld requests sent without reading; closed by vigild: %lld; "
	    "another client: status %d\n", h.sent, closed, status);
	assert_int_equal(closed, 1);
	assert_int_equal(status, VIGIL__V1__STATUS__STATUS_OK);
	assert_true(metric(&s, "vigil_connection_overloaded_total") > 0);
	assert_int_equal(vt_log_count(&s, "connection(s) not reading their replies"), 1);
	/* what reached the hog's buffers before the close is whole replies */
	while ((r = raw_reply(h.fd, &id)) != NULL) {
		assert_true(r->status == VIGIL__V1__STATUS__STATUS_OK ||
		    r->status == VIGIL__V1__STATUS__STATUS_OVERLOADED);
		vigil__v1__reply__free_unpacked(r, NULL);
		nrep++;
	}
	print_message("hog: %d replies were in its buffers\n", nrep);
	close(h.fd);
	assert_true(vt_server_alive(&s));
	assert_int_equal(vt_server_stop(&s), 0);
	vt_server_cleanup(&s);
}

/*
 * POST /v1/score while vigild drains (SIGTERM, an nng score still in its
 * 5 s fdatasync): refused 503 UNAVAILABLE in the words nng uses, as the
 * docs say of every request arriving then (docs/vigild.md, "Shutdown").
 * The admin endpoint went on scoring new work while /readyz said
 * "draining".
 */
static void
test_http_score_while_draining(void **state)
{
	char faultdir[64], *body = NULL;
	vt_server s = { 0 };
	uint16_t port = free_port();
	uint8_t req[512], buf[1024];
	size_t off = 0, len;
	int fd, code = 0;

	(void)state;
	start_slow(&s, faultdir, sizeof faultdir, port, "[server]\nworkers = 1\n"
	    "queue_timeout_ms = 60000\nrequest_timeout_ms = 60000\n", 5000);
	fd = raw_open(port, 0);
	len = pack_score(req, "drain-1", "card-drain", vigil_now_ms());
	raw_frame(buf, sizeof buf, &off, 1, req, len);
	assert_true(write_all(fd, buf, off));
	sleep_ms(500); /* received, and in its fdatasync */
	kill(s.pid, SIGTERM);
	assert_true(vt_log_wait(&s, "draining in-flight requests", 1, 10000));
	assert_int_equal(vt_http_post(s.admin_port, "/v1/score", "{\"txn_id\": \"drain-2\","
	    " \"card_id\": \"card-drain\", \"merchant_id\": \"m-1\", \"amount_minor\": 100,"
	    " \"currency\": \"EUR\"}", &code, &body), 0);
	if (code != 503 || strstr(body, "{\"status\":\"UNAVAILABLE\",\"error\":{\"code\":"
	    "\"UNAVAILABLE\",\"message\":\"server shutting down: retry on another replica "
	    "(same txn_id is safe)\"}") == NULL)
		fail_msg("POST /v1/score while draining: HTTP %d %s", code, body);
	free(body);
	/* the nng score accepted before SIGTERM is answered: the drain keeps
	 * the connections it waits for (closing the listeners first closed
	 * them, and the reply went nowhere) */
	{
		uint32_t id = 0;
		Vigil__V1__Reply *r = raw_reply(fd, &id);

		if (r == NULL)
			fail_msg("the request in flight at SIGTERM got no reply");
		assert_int_equal(id, 1);
		assert_int_equal(r->status, VIGIL__V1__STATUS__STATUS_OK);
		vigil__v1__reply__free_unpacked(r, NULL);
	}
	close(fd);
	assert_int_equal(vt_server_stop(&s), 0);
	vt_server_cleanup(&s);
	rm_rf(faultdir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_inflight_per_connection),
		cmocka_unit_test(test_unread_replies),
		cmocka_unit_test(test_inline_overflow),
		cmocka_unit_test(test_http_score_while_draining),
	};

	signal(SIGPIPE, SIG_IGN);
	if (getenv("VIGIL_TEST_FILTER") != NULL)
		cmocka_set_test_filter(getenv("VIGIL_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
