/* SPDX-License-Identifier: MIT */
/*
 * bench/clients/client_overhead.c - what libvigil-client adds to one call:
 * vigil_client_score() against a bare nng request (REQ context + aio, the
 * same mechanism) with the same request bytes, to the same echo peer, in the
 * same run. The peer answers every request with one canned vigil.v1.Reply
 * (a review with two hits), so the difference is the client's own work:
 * field checks, protobuf encoding, routing, bookkeeping for failover,
 * decoding and building the result.
 *
 *   bench-clients [--calls N] [--rounds R] [--url URL]
 *
 * Calls alternate bare / client one by one, so both see the same machine
 * noise, and each call is timed: wall time (the round trip) and CPU time of
 * the calling thread (where the client's own work runs; nng's I/O threads do
 * the same for both sides). Each round reports the median per call of each
 * side; the summary is the median over rounds. Medians, not means: on a
 * shared machine a few calls are preempted for milliseconds.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>

#include "bench_stats.h"
#include "cli.h"
#include "vigil.pb-c.h"
#include "vigil_client.h"

#define MAX_ROUNDS 101

static atomic_bool g_stop;

/* ---- the echo peer ---- */

typedef struct peer {
	nng_socket sock;
	uint8_t    reply[512];
	size_t     reply_len;
} peer;

static void *
peer_main(void *arg)
{
	peer *p = arg;

	while (!atomic_load(&g_stop)) {
		nng_msg *m;
		int      rv = nng_recvmsg(p->sock, &m, 0);

		if (rv == NNG_ETIMEDOUT)
			continue;
		if (rv != 0)
			break;
		/* answer in place: same message, canned body */
		nng_msg_clear(m);
		if (nng_msg_append(m, p->reply, p->reply_len) != 0 || nng_sendmsg(p->sock, m, 0) != 0)
			nng_msg_free(m);
	}
	return NULL;
}

static size_t
canned_reply(uint8_t *buf, size_t cap)
{
	Vigil__V1__Reply      rep = VIGIL__V1__REPLY__INIT;
	Vigil__V1__ScoreReply sr = VIGIL__V1__SCORE_REPLY__INIT;
	Vigil__V1__Hit        h1 = VIGIL__V1__HIT__INIT, h2 = VIGIL__V1__HIT__INIT;
	Vigil__V1__Hit       *hits[2] = { &h1, &h2 };
	size_t                len;

	rep.message   = "ok";
	rep.kind_case = VIGIL__V1__REPLY__KIND_SCORE;
	rep.score     = &sr;
	sr.txn_id     = "bench-txn-000001";
	sr.score      = 60;
	sr.decision   = VIGIL__V1__DECISION__REVIEW;
	sr.n_hits     = 2;
	sr.hits       = hits;
	sr.rules_version = "41d64137bb8ed3d2ef74cf05a8ad7e0c";
	sr.features_generation = 12;
	sr.latency_us = 9;
	h1.rule = "big_amount";
	h1.points = 50;
	h1.reason = "amount over 1000";
	h2.rule = "new_country";
	h2.points = 10;
	h2.reason = "first transaction of the card in this country";
	len = vigil__v1__reply__get_packed_size(&rep);
	if (len > cap)
		abort();
	vigil__v1__reply__pack(&rep, buf);
	return len;
}

/* The request bytes vigil_client_score sends for txn (for the bare side). */
static size_t
request_bytes(const vigil_client_txn *t, uint8_t *buf, size_t cap)
{
	Vigil__V1__Transaction  tx = VIGIL__V1__TRANSACTION__INIT;
	Vigil__V1__ScoreRequest sr = VIGIL__V1__SCORE_REQUEST__INIT;
	Vigil__V1__Request      rq = VIGIL__V1__REQUEST__INIT;
	size_t                  len;

	tx.txn_id = (char *) t->txn_id;
	tx.card_id = (char *) t->card_id;
	tx.merchant_id = (char *) t->merchant_id;
	tx.currency = (char *) t->currency;
	tx.country = (char *) t->country;
	tx.event_time_ms = t->event_time_ms;
	tx.amount_minor = t->amount_minor;
	tx.mcc = t->mcc;
	tx.channel = (Vigil__V1__Channel) t->channel;
	sr.txn = &tx;
	rq.kind_case = VIGIL__V1__REQUEST__KIND_SCORE;
	rq.score = &sr;
	len = vigil__v1__request__get_packed_size(&rq);
	if (len > cap)
		abort();
	vigil__v1__request__pack(&rq, buf);
	return len;
}

static void
usage(FILE *out)
{
	static const char *const exits[VIGIL_EXIT_COUNT_] = {
		"every round measured", "a call failed, or the peer or client did not start", "",
		NULL,
	};

	fprintf(out, "usage: bench-clients [--calls N] [--rounds R] [--url URL]\n"
	    "       bench-clients --help | --version\n"
	    "Per-call overhead of vigil_client_score over a bare nng request of the\n"
	    "same bytes to the same in-process echo peer (default ipc:// in /tmp).\n"
	    "Defaults: 20000 calls per round, 7 rounds (at most 101).\n");
	vigil_cli_exit_help(out, exits);
}

/* ---- the two sides, one call each ---- */

static void
call_bare(nng_ctx ctx, nng_aio *aio, const uint8_t *req, size_t len)
{
	nng_msg *m;

	if (nng_msg_alloc(&m, len) != 0)
		abort();
	memcpy(nng_msg_body(m), req, len);
	nng_aio_set_msg(aio, m);
	nng_ctx_send(ctx, aio);
	nng_aio_wait(aio);
	if (nng_aio_result(aio) != 0) {
		fprintf(stderr, "bench-clients: bare send: %s\n", nng_strerror(nng_aio_result(aio)));
		exit(VIGIL_EXIT_FAIL);
	}
	nng_ctx_recv(ctx, aio);
	nng_aio_wait(aio);
	if (nng_aio_result(aio) != 0) {
		fprintf(stderr, "bench-clients: bare receive: %s\n",
		    nng_strerror(nng_aio_result(aio)));
		exit(VIGIL_EXIT_FAIL);
	}
	nng_msg_free(nng_aio_get_msg(aio));
}

static void
call_client(vigil_client *c, const vigil_client_txn *t)
{
	vigil_client_result  r;
	vigil_client_errinfo info;

	if (vigil_client_score(c, t, NULL, &r, &info) != VIGIL_CLIENT_OK) {
		fprintf(stderr, "bench-clients: %s\n", info.message);
		exit(1);
	}
	vigil_client_result_fini(&r);
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "calls", required_argument, NULL, 'n' },
		{ "rounds", required_argument, NULL, 'r' },
		{ "url", required_argument, NULL, 'u' },
		{ "help", no_argument, NULL, 'h' },
		VIGIL_CLI_VERSION,
		{ NULL, 0, NULL, 0 },
	};
	long         calls = 20000;
	uint64_t     v = 0;
	int          rounds = 7, opt;
	char         url[256] = "";
	char         dir[] = "/tmp/vigil-bench-clients-XXXXXX";
	bool         tmpdir = false;
	peer         p;
	pthread_t    th;
	nng_socket   req;
	nng_ctx      ctx;
	nng_aio     *aio;
	vigil_client *c = NULL;
	vigil_client_errinfo info;
	uint8_t      reqbuf[512];
	size_t       reqlen;
	double       bare[MAX_ROUNDS], client[MAX_ROUNDS], diff[MAX_ROUNDS];
	double       bcpu[MAX_ROUNDS], ccpu[MAX_ROUNDS], dcpu[MAX_ROUNDS];
	double      *lat;
	vigil_client_txn t = {
		.txn_id = "bench-txn-000001", .card_id = "card-000042", .merchant_id = "merchant-0007",
		.currency = "EUR", .country = "FR", .amount_minor = 123456, .mcc = 5411,
		.channel = VIGIL_CLIENT_CHANNEL_ECOM, .event_time_ms = 1795000000000LL,
	};

	opterr = 0;
	while ((opt = getopt_long(argc, argv, "hV", opts, NULL)) != -1) {
		int u = VIGIL_EXIT_OK;

		switch (opt) {
		case 'n':
			u = vigil_cli_parse_u64("bench-clients", "calls", optarg, 1, 1000000, &v);
			calls = (long) v;
			break;
		case 'r':
			u = vigil_cli_parse_u64("bench-clients", "rounds", optarg,
			    1, MAX_ROUNDS, &v);
			rounds = (int) v;
			break;
		case 'u':
			snprintf(url, sizeof url, "%s", optarg);
			break;
		case 'h':
			usage(stdout);
			return VIGIL_EXIT_OK;
		case 'V':
			vigil_cli_version(stdout, "bench-clients");
			return VIGIL_EXIT_OK;
		default:
			return vigil_cli_bad_option("bench-clients", argv);
		}
		if (u != VIGIL_EXIT_OK)
			return u;
	}
	if (optind != argc)
		return vigil_cli_usage_error("bench-clients", "%s: unexpected argument", argv[optind]);
	if (url[0] != '\0' && !vigil_cli_url_ok(url))
		return vigil_cli_usage_error("bench-clients", "--url: \"%s\" is not a URL: write "
		    "tcp://HOST:PORT or ipc:///PATH", url);
	if (url[0] == '\0') {
		if (mkdtemp(dir) == NULL) {
			perror("bench-clients: mkdtemp");
			return 1;
		}
		tmpdir = true;
		snprintf(url, sizeof url, "ipc://%s/echo.sock", dir);
	}

	p.reply_len = canned_reply(p.reply, sizeof p.reply);
	reqlen = request_bytes(&t, reqbuf, sizeof reqbuf);
	if (nng_rep0_open(&p.sock) != 0 || nng_socket_set_ms(p.sock, NNG_OPT_RECVTIMEO, 100) != 0 ||
	    nng_listen(p.sock, url, NULL, 0) != 0) {
		fprintf(stderr, "bench-clients: cannot listen on %s\n", url);
		return 1;
	}
	pthread_create(&th, NULL, peer_main, &p);

	/* the bare side gets the client's socket options too: without them REQ
	 * arms a 60 s resend timer per request, which costs a timer-thread wakeup */
	if (nng_req0_open(&req) != 0 ||
	    nng_socket_set_ms(req, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE) != 0 ||
	    nng_dial(req, url, NULL, 0) != 0 ||
	    nng_ctx_open(&ctx, req) != 0 || nng_aio_alloc(&aio, NULL, NULL) != 0) {
		fprintf(stderr, "bench-clients: cannot dial %s\n", url);
		return 1;
	}
	nng_aio_set_timeout(aio, 5000);
	if (vigil_client_open((const char *const[]) { url }, 1, NULL, &c, &info) != VIGIL_CLIENT_OK) {
		fprintf(stderr, "bench-clients: %s\n", info.message);
		return 1;
	}

	printf("request %zu bytes, reply %zu bytes, %ld calls x %d rounds, %s\n",
	    reqlen, p.reply_len, calls, rounds, url);
	lat = malloc(sizeof *lat * 4 * (size_t) calls);
	if (lat == NULL) {
		fprintf(stderr, "bench-clients: out of memory\n");
		return 1;
	}
	/* warm-up: pools, contexts, caches */
	for (long i = 0; i < calls / 10 + 1; i++) {
		call_bare(ctx, aio, reqbuf, reqlen);
		call_client(c, &t);
	}
	for (int r = 0; r < rounds; r++) {
		double *bw = lat, *cw = lat + calls, *bc = lat + 2 * calls, *cc = lat + 3 * calls;

		for (long i = 0; i < calls; i++) {
			/* which side goes first alternates, so neither always follows the other */
			bool     bare_first = (i & 1) == 0;
			uint64_t w0 = bench_clock_ns(CLOCK_MONOTONIC), c0 = bench_clock_ns(CLOCK_THREAD_CPUTIME_ID);
			uint64_t w1, c1, w2, c2;

			if (bare_first)
				call_bare(ctx, aio, reqbuf, reqlen);
			else
				call_client(c, &t);
			w1 = bench_clock_ns(CLOCK_MONOTONIC);
			c1 = bench_clock_ns(CLOCK_THREAD_CPUTIME_ID);
			if (bare_first)
				call_client(c, &t);
			else
				call_bare(ctx, aio, reqbuf, reqlen);
			w2 = bench_clock_ns(CLOCK_MONOTONIC);
			c2 = bench_clock_ns(CLOCK_THREAD_CPUTIME_ID);
			bw[i] = (double) (bare_first ? w1 - w0 : w2 - w1);
			cw[i] = (double) (bare_first ? w2 - w1 : w1 - w0);
			bc[i] = (double) (bare_first ? c1 - c0 : c2 - c1);
			cc[i] = (double) (bare_first ? c2 - c1 : c1 - c0);
		}
		bare[r] = bench_median(bw, (int) calls);
		client[r] = bench_median(cw, (int) calls);
		diff[r] = client[r] - bare[r];
		bcpu[r] = bench_median(bc, (int) calls);
		ccpu[r] = bench_median(cc, (int) calls);
		dcpu[r] = ccpu[r] - bcpu[r];
		printf("round %d: wall bare %.2f client %.2f (%+.2f) us/call; "
		    "caller CPU bare %.2f client %.2f (%+.2f) us/call\n", r + 1,
		    bare[r] / 1000, client[r] / 1000, diff[r] / 1000,
		    bcpu[r] / 1000, ccpu[r] / 1000, dcpu[r] / 1000);
		fflush(stdout);
	}
	printf("median wall:       bare %.2f us, client %.2f us, overhead %+.2f us/call (target < 5 us)\n",
	    bench_median(bare, rounds) / 1000, bench_median(client, rounds) / 1000, bench_median(diff, rounds) / 1000);
	printf("median caller CPU: bare %.2f us, client %.2f us, overhead %+.2f us/call\n",
	    bench_median(bcpu, rounds) / 1000, bench_median(ccpu, rounds) / 1000, bench_median(dcpu, rounds) / 1000);
	free(lat);

	vigil_client_close(c);
	nng_aio_free(aio);
	nng_close(req);
	atomic_store(&g_stop, true);
	pthread_join(th, NULL);
	nng_close(p.sock);
	if (tmpdir) {
		char path[300];

		snprintf(path, sizeof path, "%s/echo.sock", dir);
		remove(path);
		remove(dir);
	}
	return 0;
}
