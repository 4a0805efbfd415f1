/* SPDX-License-Identifier: MIT */
/*
 * bench/server/loadgen.c - load generator for vigild (and for vigil-echo,
 * the bare nng REQ/REP baseline): N asynchronous REQ contexts on one socket.
 * Closed loop (default): each context sends a score request as soon as the
 * previous reply arrives. Open loop (--rate R): requests are due at R per
 * second whatever the replies do, each sent on an idle context (at most N
 * outstanding). Latency counts from the send, except for a request that
 * found all N contexts busy: it counts from the time it was due, so waiting
 * for the server is charged to the server (no coordinated omission), while
 * the pacing thread's own sleep overshoot on a busy machine is not. Every request has a fresh txn_id; cards are drawn
 * from a pool so the live state sees repeat cards. Reports replies/s and
 * latency percentiles (docs/BENCHMARKS.md, "vigild end to end").
 *
 *   vigil-loadgen --url tcp://127.0.0.1:9465 --concurrency 32 --duration 3
 *   vigil-loadgen --url tcp://127.0.0.1:9465 --rate 20000 --concurrency 256
 *
 * Exit status: 0 when every reply was STATUS_OK (or, with --echo, any
 * reply), 1 when some replies were errors or lost, 2 on a usage error.
 */
#include <errno.h>
#include <float.h>
#include <getopt.h>
#include <math.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_stats.h"
#include "cli.h"
#include "txngen.h"
#include "vigil.h"
#include "vigil.pb-c.h"

#define LG_PROG        "vigil-loadgen"
/* Every numeric flag's limits, in each of their usage errors (tests/server/loadgen.sh
 * reads "--rate >= 0" in that of --connections). */
#define LG_MAX_CONC    4096
#define LG_MAX_SAMPLES (10u * 1000 * 1000)
#define LG_REQ_MAX     512

typedef struct lg_conn {
	nng_ctx  ctx;
	nng_aio *aio;
	uint64_t sent_ns;
	bool     sending;
	bool     busy;
	uint32_t id;
	uint32_t next_idle; /* open loop: the idle stack's link (index + 1, 0 = end) */
	uint8_t  buf[LG_REQ_MAX];
} lg_conn;

static struct {
	const char      *url;
	uint32_t         conc;
	uint32_t         nconn;     /* connections (dials) the socket spreads requests over */
	double           duration_s;
	double           warmup_s;
	uint64_t         requests;
	txngen_opts      tg;        /* the stream: pools, event time step, alert share */
	double           rate;      /* open loop: requests due per second; 0 = closed loop */
	bool             echo;
	bool             dry_run;
	bool             json;
	nng_socket       sock;
	lg_conn         *conns;
	atomic_bool      stop;
	atomic_bool      measuring;
	_Atomic uint64_t seq;
	_Atomic uint64_t done, errors, lost;
	_Atomic uint32_t err_status; /* the status of an error reply (0: none yet) */
	_Atomic uint32_t busy;
	_Atomic uint32_t pipes;     /* connections established (nng pipe add events) */
	_Atomic uint64_t nsamples;
	uint32_t        *samples; /* latency in units of 100 ns */
	uint32_t         pid;
	char             run[16];
	pthread_mutex_t  idle_mu;   /* open loop: contexts without a request */
	uint32_t         idle_top;  /* index + 1 of the top idle context, 0 = none */
	uint64_t         late;      /* open loop: sent 1 ms or more after due */
	uint64_t         waited;    /* open loop: found all contexts busy */
} lg;

/* A score request with a fresh txn_id, packed into c->buf. */
static size_t
lg_pack(lg_conn *c)
{
	Vigil__V1__Request req = VIGIL__V1__REQUEST__INIT;
	Vigil__V1__ScoreRequest sr = VIGIL__V1__SCORE_REQUEST__INIT;
	Vigil__V1__Transaction t = VIGIL__V1__TRANSACTION__INIT;
	txngen g;

	txngen_make(&g, lg.run, atomic_fetch_add(&lg.seq, 1), &lg.tg);
	t.txn_id = g.txn_id;
	t.card_id = g.card_id;
	t.merchant_id = g.merchant_id;
	t.terminal_id = g.terminal_id;
	t.amount_minor = g.amount_minor;
	t.currency = TXNGEN_CURRENCY;
	t.mcc = TXNGEN_MCC;
	t.country = (char *)g.country;
	t.channel = VIGIL__V1__CHANNEL__ECOM;
	t.event_time_ms = g.event_time_ms;
	sr.txn = &t;
	sr.dry_run = lg.dry_run;
	req.kind_case = VIGIL__V1__REQUEST__KIND_SCORE;
	req.score = &sr;
	return vigil__v1__request__pack(&req, c->buf);
}

static void
lg_pipe_added(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	(void)p;
	(void)ev;
	(void)arg;
	atomic_fetch_add(&lg.pipes, 1);
}

/* Packs a fresh request and sends it on c; latency counts from due_ns. */
static void
lg_send_now(lg_conn *c, uint64_t due_ns)
{
	nng_msg *m;
	size_t n;

	n = lg_pack(c);
	if (nng_msg_alloc(&m, 0) != 0 || nng_msg_append(m, c->buf, n) != 0) {
		fprintf(stderr, "vigil-loadgen: out of memory\n");
		exit(1);
	}
	c->sending = true;
	c->sent_ns = due_ns != 0 ? due_ns : bench_clock_ns(CLOCK_MONOTONIC);
	nng_aio_set_msg(c->aio, m);
	nng_ctx_send(c->ctx, c->aio);
}

/* Open loop: c has no request now. */
static void
lg_idle_push(lg_conn *c)
{
	pthread_mutex_lock(&lg.idle_mu);
	c->next_idle = lg.idle_top;
	lg.idle_top = c->id + 1;
	pthread_mutex_unlock(&lg.idle_mu);
}

static lg_conn *
lg_idle_pop(void)
{
	lg_conn *c = NULL;

	pthread_mutex_lock(&lg.idle_mu);
	if (lg.idle_top != 0) {
		c = &lg.conns[lg.idle_top - 1];
		lg.idle_top = c->next_idle;
	}
	pthread_mutex_unlock(&lg.idle_mu);
	return c;
}

/* A context is done with its request: closed loop, send the next one. */
static void
lg_send(lg_conn *c)
{
	if (atomic_load(&lg.stop) ||
	    (lg.requests > 0 && atomic_load(&lg.seq) >= lg.requests)) {
		c->busy = false;
		atomic_fetch_sub(&lg.busy, 1);
		return;
	}
	if (lg.rate > 0) {
		c->busy = false;
		atomic_fetch_sub(&lg.busy, 1);
		lg_idle_push(c);
		return;
	}
	lg_send_now(c, 0);
}

/*
 * Open loop, on the main thread until end_ns: request k is due at
 * t0 + k / rate and goes out on an idle context as soon as one is free.
 * Sleeps until the next request is due (at least 20 us), so at high rates
 * requests leave in small bursts.
 */
static void
lg_pace(uint64_t t0, uint64_t end_ns)
{
	uint64_t k = 0;
	bool stalled = false; /* request k found no idle context */

	for (;;) {
		uint64_t now = bench_clock_ns(CLOCK_MONOTONIC), due;
		struct timespec ts;

		if (now >= end_ns)
			break;
		for (;;) {
			lg_conn *c;

			due = t0 + (uint64_t)((double)k * 1e9 / lg.rate);
			if (due > now || (lg.requests > 0 && k >= lg.requests))
				break;
			if ((c = lg_idle_pop()) == NULL) {
				if (!stalled)
					lg.waited++;
				stalled = true; /* k stays due, and is charged the wait */
				break;
			}
			if (now - due >= 1000000u)
				lg.late++;
			c->busy = true;
			atomic_fetch_add(&lg.busy, 1);
			lg_send_now(c, stalled ? due : 0);
			stalled = false;
			k++;
		}
		if (lg.requests > 0 && k >= lg.requests)
			break;
		if (due < now + 20000u || stalled)
			due = now + 20000u;
		ts.tv_sec = (time_t)(due / 1000000000u);
		ts.tv_nsec = (long)(due % 1000000000u);
		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
	}
}

/* The reply's status is field 1 (tag 0x08); proto3 omits it when OK. */
static bool
lg_reply_ok(nng_msg *m)
{
	const uint8_t *b = nng_msg_body(m);

	return nng_msg_len(m) == 0 || b[0] != 0x08;
}

static void
lg_cb(void *arg)
{
	lg_conn *c = arg;
	int rv = nng_aio_result(c->aio);

	if (c->sending) {
		c->sending = false;
		if (rv != 0) {
			nng_msg_free(nng_aio_get_msg(c->aio));
			atomic_fetch_add(&lg.lost, 1);
			c->busy = false;
			atomic_fetch_sub(&lg.busy, 1);
			return;
		}
		nng_ctx_recv(c->ctx, c->aio);
		return;
	}
	if (rv != 0) {
		atomic_fetch_add(&lg.lost, 1);
		c->busy = false;
		atomic_fetch_sub(&lg.busy, 1);
		return;
	}
	{
		nng_msg *m = nng_aio_get_msg(c->aio);
		uint64_t lat = bench_clock_ns(CLOCK_MONOTONIC) - c->sent_ns;
		bool ok = lg.echo || lg_reply_ok(m);

		if (atomic_load(&lg.measuring)) {
			uint64_t i = atomic_fetch_add(&lg.nsamples, 1);

			if (i < LG_MAX_SAMPLES)
				lg.samples[i] = lat / 100 > UINT32_MAX ? UINT32_MAX : (uint32_t)(lat / 100);
			atomic_fetch_add(&lg.done, 1);
			if (!ok) {
				const uint8_t *b = nng_msg_body(m);

				atomic_fetch_add(&lg.errors, 1);
				/* field 1's varint; the statuses fit in one byte */
				atomic_store(&lg.err_status, nng_msg_len(m) > 1 ? b[1] & 0x7fu : 0u);
			}
		}
		nng_msg_free(m);
	}
	lg_send(c);
}

static int
lg_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static double
lg_pct(const uint32_t *s, uint64_t n, double p)
{
	uint64_t i;

	if (n == 0)
		return 0;
	i = (uint64_t)ceil(p / 100.0 * (double)n);
	i = i == 0 ? 0 : i - 1;
	if (i >= n)
		i = n - 1;
	return s[i] / 10.0; /* microseconds */
}

static void
lg_usage(FILE *out)
{
	static const char *const exits[VIGIL_EXIT_COUNT_] = {
		"every reply was OK (with --echo: every request had a reply)",
		"error replies or lost replies, or the socket failed", "", NULL,
	};

	fprintf(out,
	    "usage: vigil-loadgen --url URL [--concurrency N] [--connections N]\n"
	    "                         [--duration S | --requests N] [--warmup S] [--rate R]\n"
	    "                         [--cards N] [--merchants N] [--step-us N]\n"
	    "                         [--alert-every N] [--dry-run] [--echo] [--json]\n"
	    "\n"
	    "Closed-loop load: N REQ contexts each send a vigil.v1 score request as soon as\n"
	    "the previous reply arrives. With --rate, open loop: R requests are due per\n"
	    "second, each sent on an idle context (at most N in flight), latency counted\n"
	    "from when it was due. Prints replies/s and latency percentiles.\n"
	    "\n"
	    "  -u, --url URL          tcp://HOST:PORT or ipc:///PATH of vigild or vigil-echo\n"
	    "  -c, --concurrency N    requests in flight (default 1, max %d; the cap with --rate)\n"
	    "  -C, --connections N    connections (nng pipes) the contexts share, as N client\n"
	    "                         processes would open; capped at --concurrency (default 1:\n"
	    "                         every request on one connection)\n"
	    "  -r, --rate R           open loop at R requests/s (default: closed loop)\n"
	    "  -d, --duration S       measure for S seconds (default 3)\n"
	    "  -n, --requests N       stop after N requests instead (warm-up included)\n"
	    "  -w, --warmup S         run S seconds before measuring (default 0.5)\n"
	    "  -k, --cards N          size of the card pool (default 10000)\n"
	    "  -m, --merchants N      size of the merchant pool, 4 terminals each (default 1000)\n"
	    "  -S, --step-us N        event time between consecutive requests, microseconds\n"
	    "                         (default 125: nothing of a short run expires; 60000000,\n"
	    "                         a minute, with --cards 1000: the live state expires as\n"
	    "                         fast as it grows after 20,160 requests, a steady state);\n"
	    "                         event times start at 2025-11-21, and vigild refuses\n"
	    "                         those ahead of its clock (max_future_skew_ms)\n"
	    "  -A, --alert-every N    every N-th request from a sanctioned country (IR, a\n"
	    "                         hard stop of rules/default.rules), so about 1/N of the\n"
	    "                         scores alert and carry reasons (default 0: none; with\n"
	    "                         the default step every score alerts on velocity)\n"
	    "  -D, --dry-run          ask for dry runs (no archive, no live update)\n"
	    "  -e, --echo             the peer is vigil-echo: do not check reply status\n"
	    "  -j, --json             one JSON object on stdout instead of text\n"
	    "  -h, --help             this text\n"
	    "  -V, --version          print the version\n",
	    LG_MAX_CONC);
	vigil_cli_exit_help(out, exits);
}

static void
lg_close(void *sock)
{
	nng_close(*(nng_socket *)sock);
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "url", required_argument, NULL, 'u' },
		{ "concurrency", required_argument, NULL, 'c' },
		{ "connections", required_argument, NULL, 'C' },
		{ "duration", required_argument, NULL, 'd' },
		{ "requests", required_argument, NULL, 'n' },
		{ "warmup", required_argument, NULL, 'w' },
		{ "cards", required_argument, NULL, 'k' },
		{ "merchants", required_argument, NULL, 'm' },
		{ "step-us", required_argument, NULL, 'S' },
		{ "alert-every", required_argument, NULL, 'A' },
		{ "rate", required_argument, NULL, 'r' },
		{ "dry-run", no_argument, NULL, 'D' },
		{ "echo", no_argument, NULL, 'e' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		VIGIL_CLI_VERSION,
		{ NULL, 0, NULL, 0 },
	};
	uint64_t t0 = 0, t1, n, done, errors, lost;
	double secs;
	int opt, rv;

	lg.conc = 1;
	lg.nconn = 1;
	lg.duration_s = 3;
	lg.warmup_s = 0.5;
	lg.tg = (txngen_opts)TXNGEN_OPTS_DEFAULT;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "u:c:C:d:n:w:k:m:S:A:r:DejhV", opts, NULL)) != -1) {
		int u = VIGIL_EXIT_OK;

		switch (opt) {
		case 'u': lg.url = optarg; break;
		case 'c':
			u = vigil_cli_parse_u32(LG_PROG, "concurrency", optarg,
			    1, LG_MAX_CONC, &lg.conc);
			break;
		case 'C':
			u = vigil_cli_parse_u32(LG_PROG, "connections", optarg,
			    1, UINT32_MAX, &lg.nconn);
			break;
		case 'd':
			u = vigil_cli_parse_double(LG_PROG, "duration", optarg,
			    0, true, 1e6, &lg.duration_s);
			break;
		case 'n':
			u = vigil_cli_parse_u64(LG_PROG, "requests", optarg,
			    1, UINT64_MAX, &lg.requests);
			break;
		case 'w':
			u = vigil_cli_parse_double(LG_PROG, "warmup", optarg,
			    0, false, 3600, &lg.warmup_s);
			break;
		case 'k':
			u = vigil_cli_parse_u32(LG_PROG, "cards", optarg, 1, UINT32_MAX, &lg.tg.cards);
			break;
		case 'm':
			u = vigil_cli_parse_u32(LG_PROG, "merchants", optarg,
			    1, UINT32_MAX, &lg.tg.merchants);
			break;
		case 'S':
			u = vigil_cli_parse_u32(LG_PROG, "step-us", optarg,
			    1, TXNGEN_STEP_US_MAX, &lg.tg.step_us);
			break;
		case 'A':
			u = vigil_cli_parse_u32(LG_PROG, "alert-every", optarg,
			    0, UINT32_MAX, &lg.tg.alert_every);
			break;
		case 'r':
			u = vigil_cli_parse_double(LG_PROG, "rate", optarg,
			    0, false, HUGE_VAL, &lg.rate);
			break;
		case 'D': lg.dry_run = true; break;
		case 'e': lg.echo = true; break;
		case 'j': lg.json = true; break;
		case 'h': lg_usage(stdout); return VIGIL_EXIT_OK;
		case 'V': vigil_cli_version(stdout, LG_PROG); return VIGIL_EXIT_OK;
		default: return vigil_cli_bad_option(LG_PROG, argv);
		}
		if (u != VIGIL_EXIT_OK)
			return u;
	}
	if (optind != argc)
		return vigil_cli_usage_error(LG_PROG, "%s: unexpected argument", argv[optind]);
	if (lg.url == NULL)
		return vigil_cli_usage_error(LG_PROG, "--url URL is required");
	if (!vigil_cli_url_ok(lg.url))
		return vigil_cli_usage_error(LG_PROG, "--url: \"%s\" is not a URL: write "
		    "tcp://HOST:PORT or ipc:///PATH", lg.url);
	snprintf(lg.run, sizeof lg.run, "%x%x", (unsigned)getpid(), (unsigned)time(NULL));
	lg.samples = malloc(LG_MAX_SAMPLES * sizeof *lg.samples);
	lg.conns = calloc(lg.conc, sizeof *lg.conns);
	if (lg.samples == NULL || lg.conns == NULL) {
		fprintf(stderr, "vigil-loadgen: out of memory\n");
		return 1;
	}
	if (lg.nconn > lg.conc)
		lg.nconn = lg.conc;
	if ((rv = nng_req0_open(&lg.sock)) != 0 ||
	    (rv = nng_socket_set_ms(lg.sock, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE)) != 0 ||
	    (rv = nng_pipe_notify(lg.sock, NNG_PIPE_EV_ADD_POST, lg_pipe_added, NULL)) != 0) {
		fprintf(stderr, "vigil-loadgen: %s: %s\n", lg.url, nng_strerror(rv));
		return 1;
	}
	/* Each dial is one more connection (pipe); REQ sends every request on
	 * a ready pipe, so the load spreads over them. */
	for (uint32_t i = 0; i < lg.nconn; i++)
		if ((rv = nng_dial(lg.sock, lg.url, NULL, 0)) != 0) {
			if (rv == NNG_EINVAL || rv == NNG_EADDRINVAL || rv == NNG_ENOTSUP)
				return vigil_cli_usage_error(LG_PROG, "--url: %s: %s", lg.url,
				    nng_strerror(rv));
			fprintf(stderr, "vigil-loadgen: %s (connection %u): %s\n", lg.url, i + 1,
			    nng_strerror(rv));
			return 1;
		}
	for (uint32_t i = 0; i < lg.conc; i++) {
		lg_conn *c = &lg.conns[i];

		c->id = i;
		if ((rv = nng_aio_alloc(&c->aio, lg_cb, c)) != 0 ||
		    (rv = nng_ctx_open(&c->ctx, lg.sock)) != 0) {
			fprintf(stderr, "vigil-loadgen: context %u: %s\n", i, nng_strerror(rv));
			return 1;
		}
		nng_aio_set_timeout(c->aio, 10000);
	}
	pthread_mutex_init(&lg.idle_mu, NULL);
	atomic_store(&lg.measuring, lg.warmup_s == 0);
	if (lg.rate > 0) {
		for (uint32_t i = lg.conc; i-- > 0;)
			lg_idle_push(&lg.conns[i]);
	} else {
		atomic_store(&lg.busy, lg.conc);
		for (uint32_t i = 0; i < lg.conc; i++) {
			lg.conns[i].busy = true;
			lg_send(&lg.conns[i]);
		}
	}
	if (lg.rate > 0) {
		uint64_t start = bench_clock_ns(CLOCK_MONOTONIC);
		uint64_t warm = lg.requests == 0 ? (uint64_t)(lg.warmup_s * 1e9) : 0;

		if (warm > 0)
			lg_pace(start, start + warm);
		atomic_store(&lg.measuring, true);
		t0 = bench_clock_ns(CLOCK_MONOTONIC);
		/* The measured schedule starts afresh (what the warm-up left due is dropped). */
		lg_pace(t0, lg.requests > 0 ? UINT64_MAX : t0 + (uint64_t)(lg.duration_s * 1e9));
		if (lg.requests == 0) /* else the replies still due count too (below) */
			atomic_store(&lg.measuring, false);
	} else if (lg.warmup_s > 0 && lg.requests == 0) {
		usleep((useconds_t)(lg.warmup_s * 1e6));
		atomic_store(&lg.measuring, true);
	} else {
		atomic_store(&lg.measuring, true);
	}
	if (lg.rate == 0)
		t0 = bench_clock_ns(CLOCK_MONOTONIC);
	if (lg.requests > 0) {
		while (atomic_load(&lg.busy) > 0)
			usleep(1000);
	} else if (lg.rate == 0) {
		uint64_t end = t0 + (uint64_t)(lg.duration_s * 1e9);
		uint64_t last_report = t0;

		while (bench_clock_ns(CLOCK_MONOTONIC) < end) {
			usleep(10000);
			if (isatty(STDERR_FILENO) && bench_clock_ns(CLOCK_MONOTONIC) - last_report > 1000000000u) {
				last_report = bench_clock_ns(CLOCK_MONOTONIC);
				fprintf(stderr, "\rvigil-loadgen: %llu replies",
				    (unsigned long long)atomic_load(&lg.done));
			}
		}
		atomic_store(&lg.measuring, false);
	}
	t1 = bench_clock_ns(CLOCK_MONOTONIC);
	atomic_store(&lg.measuring, false);
	atomic_store(&lg.stop, true);
	for (int i = 0; i < 11000 && atomic_load(&lg.busy) > 0; i++)
		usleep(1000);
	if (isatty(STDERR_FILENO) && lg.requests == 0)
		fprintf(stderr, "\r\033[K");

	done = atomic_load(&lg.done);
	errors = atomic_load(&lg.errors);
	lost = atomic_load(&lg.lost);
	n = atomic_load(&lg.nsamples);
	if (n > LG_MAX_SAMPLES)
		n = LG_MAX_SAMPLES;
	qsort(lg.samples, n, sizeof *lg.samples, lg_cmp);
	secs = (double)(t1 - t0) / 1e9;
	if (lg.json)
		printf("{\"url\":\"%s\",\"concurrency\":%u,\"connections\":%u,\"pipes\":%u,\"replies\":%llu,\"errors\":%llu,"
		    "\"lost\":%llu,\"seconds\":%.3f,\"rate\":%.1f,\"p50_us\":%.1f,\"p99_us\":%.1f,"
		    "\"p999_us\":%.1f,\"max_us\":%.1f,\"target_rate\":%.1f,\"late\":%llu,"
		    "\"waited\":%llu,\"error_status\":%u}\n",
		    lg.url, lg.conc, lg.nconn, atomic_load(&lg.pipes),
		    (unsigned long long)done, (unsigned long long)errors, (unsigned long long)lost,
		    secs, done / secs, lg_pct(lg.samples, n, 50), lg_pct(lg.samples, n, 99),
		    lg_pct(lg.samples, n, 99.9), n > 0 ? lg.samples[n - 1] / 10.0 : 0.0, lg.rate,
		    (unsigned long long)lg.late, (unsigned long long)lg.waited,
		    (unsigned)atomic_load(&lg.err_status));
	else
		printf("%s c=%u conn=%u: %llu replies in %.2f s = %.0f/s, p50 %.1f us, p99 %.1f us, "
		    "p999 %.1f us, errors %llu, lost %llu", lg.url, lg.conc, lg.nconn,
		    (unsigned long long)done, secs, done / secs, lg_pct(lg.samples, n, 50),
		    lg_pct(lg.samples, n, 99), lg_pct(lg.samples, n, 99.9),
		    (unsigned long long)errors, (unsigned long long)lost);
	if (!lg.json && lg.rate > 0)
		printf(", open loop at %.0f/s: %llu sent 1 ms or more late, %llu waited for a context",
		    lg.rate, (unsigned long long)lg.late, (unsigned long long)lg.waited);
	if (!lg.json)
		printf("\n");
	fflush(stdout);
	/* nng 1.5.2's nng_close can hang for good (nanomsg/nng#1543): the
	 * figures are out, so a close over 5 s is left to the exit */
	if (!vigil_call_bounded(lg_close, &lg.sock, 5000)) {
		fprintf(stderr, "vigil-loadgen: warning: closing the socket took over 5 s "
		    "(nng 1.5.2); exiting without waiting\n");
		_exit(errors == 0 && lost == 0 ? 0 : 1);
	}
	for (uint32_t i = 0; i < lg.conc; i++)
		nng_aio_free(lg.conns[i].aio);
	free(lg.conns);
	free(lg.samples);
	return errors == 0 && lost == 0 ? 0 : 1;
}
