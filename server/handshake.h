/* SPDX-License-Identifier: MIT */
/*
 * server/handshake.h - the handshake timeout of tls+tcp:// listeners
 * (server/handshake.c): TCP connections accepted by such a listener that
 * have not become an nng pipe within [tls] handshake_timeout_ms are shut
 * down. Used by server/rep.c only.
 */
#ifndef VIGIL_SERVER_HANDSHAKE_H
#define VIGIL_SERVER_HANDSHAKE_H

#include <nng/nng.h>
#include <stdbool.h>
#include <stdint.h>

#include "vigil.h"

typedef struct srv_hs srv_hs;

/* Makes the sweep, with no listener yet, before any listener starts (the
 * pipe callbacks use it from the first connection). VIGIL_OK: *ret_hs
 * set, free with srv_hs_free(); VIGIL_EIO (/proc/self/fd or /dev/null
 * cannot be opened) or VIGIL_ENOMEM: errbuf says why, *ret_hs untouched. */
vigil_err srv_hs_new(uint32_t timeout_ms, srv_hs **ret_hs, char *errbuf, size_t errlen);
void      srv_hs_free(srv_hs *hs); /* NULL is a no-op */

/* Adds the bound address of a started tls+tcp:// listener. Before the
 * first srv_hs_sweep only. VIGIL_EIO if nng gives no TCP address. */
vigil_err srv_hs_listener_add(srv_hs *hs, nng_listener l);

/* The peer address of an nng pipe (NNG_OPT_REMADDR, taken at ADD_PRE),
 * added when the pipe is counted and removed when it goes: connections
 * from a known peer are never shut down. Add returns false when there is
 * no memory to remember it (the caller refuses the pipe); any thread. */
bool srv_hs_pipe_add(srv_hs *hs, const nng_sockaddr *peer);
void srv_hs_pipe_remove(srv_hs *hs, const nng_sockaddr *peer);

/* One step of the sweep, once a second from one thread at a time (the
 * probe): looks at up to a bounded number of the process's descriptors and
 * shuts down the connections first seen timeout_ms ago or more. Returns
 * how many it shut down. */
uint32_t srv_hs_sweep(srv_hs *hs, int64_t now_ms);

#endif /* VIGIL_SERVER_HANDSHAKE_H */
