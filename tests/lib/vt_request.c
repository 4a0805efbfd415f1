/* SPDX-License-Identifier: MIT */
/*
 * tests/lib/vt_request.c - vt-request: one nng REQ exchange in a process of
 * its own, for vt_request_dropped() (harness.c). nng 1.5.2 refuses to run in
 * a forked child of a process that already used it ("nng is not
 * fork-reentrant safe"), so the harness execs this program instead of
 * forking.
 *
 *   vt-request URL FILE TIMEOUT_MS
 *
 * Sends the bytes of FILE to URL and waits for a reply. Exit status: 0 if a
 * reply arrived, else the nng error number (NNG_ETIMEDOUT, ...), 100 on bad
 * usage or an unreadable FILE. It exits without nng_close(): closing a REQ
 * socket after a dropped exchange can hang in nng 1.5.2.
 */
#include <stdio.h>
#include <stdlib.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

int
main(int argc, char **argv)
{
	nng_socket sock;
	FILE *f;
	char *req = NULL;
	void *rep = NULL;
	size_t len = 0, cap = 0, sz = 0;
	long ms;
	int rv;

	if (argc != 4 || (ms = strtol(argv[3], NULL, 10)) <= 0) {
		fprintf(stderr, "usage: vt-request URL FILE TIMEOUT_MS\n");
		return 100;
	}
	if ((f = fopen(argv[2], "rb")) == NULL) {
		perror(argv[2]);
		return 100;
	}
	for (;;) {
		if (len == cap) {
			char *n = realloc(req, cap = cap != 0 ? 2 * cap : 65536);
			if (n == NULL) {
				fclose(f);
				return 100;
			}
			req = n;
		}
		size_t got = fread(req + len, 1, cap - len, f);
		if (got == 0)
			break;
		len += got;
	}
	fclose(f);
	if ((rv = nng_req0_open(&sock)) != 0)
		return rv;
	nng_socket_set_ms(sock, NNG_OPT_RECVTIMEO, (nng_duration)ms);
	nng_socket_set_ms(sock, NNG_OPT_SENDTIMEO, (nng_duration)ms);
	if ((rv = nng_dial(sock, argv[1], NULL, 0)) == 0 &&
	    (rv = nng_send(sock, req, len, 0)) == 0)
		rv = nng_recv(sock, &rep, &sz, NNG_FLAG_ALLOC);
	free(req);
	fflush(NULL);
	_Exit(rv > 0 && rv < 100 ? rv : rv == 0 ? 0 : 99);
}
