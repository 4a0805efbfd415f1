/* SPDX-License-Identifier: MIT */
/*
 * bench/server/echo.c - vigil-echo, the physical limit vigild is measured
 * against: a bare nng REP socket with asynchronous contexts that sends every
 * request straight back from the nng callback (no decoding, no queue, no
 * threads of its own). Same transport and requests as vigild; the reply is
 * the request (94 bytes in cpu.sh's runs, where vigild's are about 292)
 * unless --reply-bytes pads it.
 *
 *   vigil-echo --listen tcp://127.0.0.1:9475 [--contexts 256] [--work-us N]
 *              [--reply-bytes N]
 *
 * --work-us N spends about N us of CPU in each callback before the reply
 * (a calibrated arithmetic loop): an echo whose callbacks hold an nng thread
 * as long as vigild's scoring does, to see how the transport's own cost per
 * request (context switches, nng's locks) grows with that time
 * (bench/server/cpu.sh, ECHO_WORK_US).
 *
 * --reply-bytes N pads a shorter reply with zeros to N bytes before it is
 * sent, growing the received message as vigild's reply does (nng 1.5.2
 * receives into a buffer of the request's size): what the larger reply
 * costs the transport (cpu.sh, ECHO_REPLY_BYTES).
 *
 * Runs until SIGTERM or SIGINT; exit 0. Exit 1 on a socket error, 2 on usage.
 */
#include <errno.h>
#include <getopt.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_stats.h"
#include "cli.h"
#include "stages.h"
#include "vigil.h"

#define ECHO_PROG "vigil-echo"

typedef struct echo_conn {
	nng_ctx  ctx;
	nng_aio *aio;
	bool     sending;
} echo_conn;

static uint64_t echo_spins; /* loop rounds per request (--work-us) */
static size_t   echo_reply_bytes; /* --reply-bytes: pad replies to this */
static const uint8_t echo_zeros[65536];
static volatile uint64_t echo_sink;

/* About n rounds of dependent arithmetic the compiler cannot drop. */
static void
echo_work(uint64_t n)
{
	uint64_t x = echo_sink;

	for (uint64_t i = 0; i < n; i++)
		x = x * 6364136223846793005u + 1442695040888963407u;
	echo_sink = x;
}

/* Rounds of echo_work per us of this thread's CPU time (about 50 ms measured). */
static double
echo_calibrate(void)
{
	uint64_t n = 1u << 16, done = 0;
	double t0 = bench_clock_s(CLOCK_THREAD_CPUTIME_ID), t;

	do {
		echo_work(n);
		done += n;
		t = bench_clock_s(CLOCK_THREAD_CPUTIME_ID) - t0;
	} while (t < 0.05);
	return (double)done / (t * 1e6);
}

static void
echo_cb(void *arg)
{
	echo_conn *c = arg;
	int rv = nng_aio_result(c->aio);

	if (c->sending) {
		c->sending = false;
		if (rv != 0)
			nng_msg_free(nng_aio_get_msg(c->aio));
		if (rv == NNG_ECLOSED)
			return;
		nng_ctx_recv(c->ctx, c->aio);
		return;
	}
	if (rv != 0) {
		if (rv != NNG_ECLOSED && rv != NNG_ECANCELED)
			nng_ctx_recv(c->ctx, c->aio);
		return;
	}
	/* The received message is already in the aio: send it back as is, or
	 * padded to --reply-bytes. */
	if (echo_spins > 0)
		echo_work(echo_spins);
	if (echo_reply_bytes > 0) {
		nng_msg *m = nng_aio_get_msg(c->aio);
		size_t len = nng_msg_len(m);

		/* without the memory to grow it, the reply goes unpadded */
		if (len < echo_reply_bytes)
			(void)nng_msg_append(m, echo_zeros, echo_reply_bytes - len);
	}
	c->sending = true;
	VIGIL_STAGE(VIGIL_ST_SEND);
	nng_ctx_send(c->ctx, c->aio);
	VIGIL_STAGE(VIGIL_ST_END);
	VIGIL_STAGE_DONE(VIGIL_ST_SEND, VIGIL_ST_END);
}

static void
echo_usage(FILE *out)
{
	static const char *const exits[VIGIL_EXIT_COUNT_] = {
		"stopped by SIGTERM or SIGINT", "a socket error (the message says which)", "", NULL,
	};

	fputs("usage: vigil-echo --listen URL [--contexts N] [--work-us N] [--reply-bytes N]\n"
	    "A bare nng REQ/REP echo server (the baseline of bench/server/run.sh).\n"
	    "  -l, --listen URL    tcp://HOST:PORT or ipc:///PATH to listen on\n"
	    "  -c, --contexts N    nng contexts, requests in flight (default 256, max 65536)\n"
	    "  -w, --work-us N     spend about N us of CPU per request before replying\n"
	    "                      (default 0, max 1000000)\n"
	    "  -r, --reply-bytes N pad each reply with zeros to N bytes (default 0: the\n"
	    "                      request as it came; max 65536)\n"
	    "  -h, --help          this text\n"
	    "  -V, --version       print the version\n"
	    "Runs until SIGTERM/SIGINT.\n", out);
	vigil_cli_exit_help(out, exits);
}

static void
echo_close(void *sock)
{
	nng_close(*(nng_socket *)sock);
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "contexts", required_argument, NULL, 'c' },
		{ "work-us", required_argument, NULL, 'w' },
		{ "reply-bytes", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		VIGIL_CLI_VERSION,
		{ NULL, 0, NULL, 0 },
	};
	const char *url = NULL;
	unsigned long nctx = 256, nrep;
	double work_us = 0;
	char *end;
	echo_conn *conns;
	nng_socket sock;
	sigset_t sigs;
	int opt, rv, sig;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, "l:c:w:r:hV", opts, NULL)) != -1) {
		switch (opt) {
		case 'l': url = optarg; break;
		case 'c':
			errno = 0;
			nctx = strtoul(optarg, &end, 10);
			if (errno != 0 || end == optarg || *end != '\0' || optarg[0] == '-' ||
			    nctx == 0 || nctx > 65536)
				return vigil_cli_usage_error(ECHO_PROG, "--contexts: \"%s\" is not a "
				    "whole number in [1, 65536]", optarg);
			break;
		case 'w':
			work_us = strtod(optarg, &end);
			if (end == optarg || *end != '\0' || !(work_us >= 0 && work_us <= 1e6))
				return vigil_cli_usage_error(ECHO_PROG, "--work-us: \"%s\" is not a "
				    "number of microseconds in [0, 1000000]", optarg);
			break;
		case 'r':
			errno = 0;
			nrep = strtoul(optarg, &end, 10);
			if (errno != 0 || end == optarg || *end != '\0' || optarg[0] == '-' ||
			    nrep > sizeof echo_zeros)
				return vigil_cli_usage_error(ECHO_PROG, "--reply-bytes: \"%s\" is not a "
				    "whole number in [0, 65536]", optarg);
			echo_reply_bytes = nrep;
			break;
		case 'h': echo_usage(stdout); return VIGIL_EXIT_OK;
		case 'V': vigil_cli_version(stdout, ECHO_PROG); return VIGIL_EXIT_OK;
		default: return vigil_cli_bad_option(ECHO_PROG, argv);
		}
	}
	if (optind != argc)
		return vigil_cli_usage_error(ECHO_PROG, "%s: unexpected argument", argv[optind]);
	if (url == NULL)
		return vigil_cli_usage_error(ECHO_PROG, "--listen URL is required");
	if (!vigil_cli_url_ok(url))
		return vigil_cli_usage_error(ECHO_PROG, "--listen: \"%s\" is not a URL: write "
		    "tcp://HOST:PORT or ipc:///PATH", url);
	if (work_us > 0)
		echo_spins = (uint64_t)(work_us * echo_calibrate() + 0.5);
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);

	conns = calloc(nctx, sizeof *conns);
	if (conns == NULL) {
		fprintf(stderr, "vigil-echo: out of memory\n");
		return 1;
	}
	if ((rv = nng_rep0_open(&sock)) != 0 ||
	    (rv = nng_socket_set_size(sock, NNG_OPT_RECVMAXSZ, 1 << 20)) != 0) {
		fprintf(stderr, "vigil-echo: socket: %s\n", nng_strerror(rv));
		return 1;
	}
	for (unsigned long i = 0; i < nctx; i++) {
		if ((rv = nng_aio_alloc(&conns[i].aio, echo_cb, &conns[i])) != 0 ||
		    (rv = nng_ctx_open(&conns[i].ctx, sock)) != 0) {
			fprintf(stderr, "vigil-echo: context: %s\n", nng_strerror(rv));
			return 1;
		}
	}
	if ((rv = nng_listen(sock, url, NULL, 0)) != 0) {
		if (rv == NNG_EINVAL || rv == NNG_EADDRINVAL || rv == NNG_ENOTSUP)
			return vigil_cli_usage_error(ECHO_PROG, "--listen: %s: %s", url,
			    nng_strerror(rv));
		fprintf(stderr, "vigil-echo: %s: %s\n", url, nng_strerror(rv));
		return 1;
	}
	for (unsigned long i = 0; i < nctx; i++)
		nng_ctx_recv(conns[i].ctx, conns[i].aio);
	fprintf(stderr, "vigil-echo: listening on %s with %lu contexts\n", url, nctx);
	sigwait(&sigs, &sig);
	/* bounded: nng 1.5.2's nng_close can hang for good (nanomsg/nng#1543) */
	if (!vigil_call_bounded(echo_close, &sock, 5000)) {
		fprintf(stderr, "vigil-echo: warning: closing the socket took over 5 s; exiting\n");
		_exit(0);
	}
	for (unsigned long i = 0; i < nctx; i++)
		nng_aio_free(conns[i].aio);
	free(conns);
	return 0;
}
