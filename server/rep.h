/* SPDX-License-Identifier: MIT */
/*
 * server/rep.h - vigild's nng side (rep.c): the REP listeners, their
 * contexts, the worker threads and the drain at stop; rep_check.c: the
 * TLS files it names, checked before anything listens. Included by srv.h.
 */
#ifndef VIGIL_SERVER_REP_H
#define VIGIL_SERVER_REP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "config.h"
#include "vigil.h"

typedef struct srv_server srv_server;
typedef struct srv_rep srv_rep;

/* rep_check.c */

/*
 * Checks what the nng side's configuration names outside itself
 * (--check-config and start-up): the TLS certificate, key and CA files are
 * readable PEM, the key is the certificate's (nng would find out at the
 * first handshake), the certificates are within their validity; ipc_group
 * exists. VIGIL_OK, or VIGIL_EINVAL with the one line in errbuf. Warnings
 * (a certificate that expires within 30 days) go to warn (may be NULL), one
 * line each, prefixed "vigild: warning: ". mbedTLS is used directly for
 * this: the library nng's TLS is built on.
 */
vigil_err srv_rep_check_files(const srv_config *cfg, FILE *warn, char *errbuf,
    size_t errlen);

struct nng_tls_config;

/*
 * The server TLS configuration of tls+tcp:// listeners from [tls] cert,
 * key, ca and crl, each file read once and checked as srv_rep_check_files
 * checks it (warnings to warn, may be NULL) before nng is given that same
 * text. VIGIL_OK with *ret_tls the caller's; else VIGIL_EINVAL or
 * VIGIL_ENOMEM and the one line in errbuf.
 */
vigil_err srv_rep_tls_config(const srv_config *cfg, FILE *warn,
    struct nng_tls_config **ret_tls, char *errbuf, size_t errlen);

/* rep.c */

/*
 * SIGHUP: re-reads [tls] cert, key and ca (the same paths) and gives the
 * new configuration to every tls+tcp:// listener; connections accepted
 * from then on use it, connections already open keep theirs. The files
 * are checked as at start (srv_rep_tls_config): on any failure nothing
 * changes and errbuf has the one line (VIGIL_EINVAL, VIGIL_EIO,
 * VIGIL_ENOMEM). VIGIL_ENOTFOUND (errbuf "") when there is no tls+tcp://
 * listener. Main thread only. Never logs (expiry warnings go to stderr).
 */
vigil_err srv_rep_tls_reload(srv_rep *rep, char *errbuf, size_t errlen);

/* Listens on every cfg URL with cfg.workers worker threads. */
vigil_err srv_rep_start(srv_server *s, srv_rep **ret_rep, char *errbuf, size_t errlen);
/* Stops accepting work, answers what is queued, waits up to timeout_ms for
 * in-flight replies, joins the workers and closes the socket. false if the
 * nng socket close did not finish in time: rep is then abandoned and the
 * process should _exit once the store is closed. NULL: true. */
bool      srv_rep_stop(srv_rep *rep, uint32_t timeout_ms);

#endif
