/* SPDX-License-Identifier: MIT */
/*
 * vigil_client.h - libvigil-client, the C client of the vigil fraud-scoring
 * service. Sends transactions to one or several vigild replicas over nng
 * REQ/REP (wire schema vigil.v1, docs/protocol.md) and returns plain C
 * results.
 *
 * Several replicas: each card_id is routed by a consistent hash (a ring of
 * XXH3 points, many virtual nodes per replica) so a card's live velocity
 * state stays on one replica; when that replica times out, disconnects or
 * answers "overloaded/unavailable/internal", the same request bytes are sent
 * to the next replica on the ring. This is safe because the server
 * de-duplicates by txn_id (a retried txn_id returns its first outcome).
 *
 * Thread safety: a vigil_client may be used from any number of threads at
 * once. Callbacks of asynchronous calls run on nng's internal threads.
 *
 * This header is self-contained (libc only); it is installed together with
 * vigil_client_types.h (the errors and the data of calls: transaction,
 * label, result), which it includes, and a pkg-config file:
 * `pkg-config --cflags --libs vigil-client`. The manual is docs/client.md.
 */
#ifndef VIGIL_CLIENT_H
#define VIGIL_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vigil_client_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Client options. Zero in any field means its default. */
typedef struct vigil_client_opts {
	int32_t  timeout_ms;      /* per attempt (send + reply); default 1000 */
	uint32_t max_attempts;    /* per call, counting the first; default 3 */
	int32_t  connect_wait_ms; /* vigil_client_open waits this long for every
	                           * replica to connect; default 1000; < 0: no wait */
	int32_t  backoff_ms;      /* pause before re-sending to a replica that was
	                           * already tried in this call; default 20 */
	uint32_t vnodes;          /* virtual nodes per replica on the ring; default 160 */
	uint32_t max_inflight;    /* concurrent calls; default 4096 */
	uint32_t max_reply_bytes; /* larger replies are dropped; default 1 MiB */
	/*
	 * Mutual TLS, for tls+tcp:// URLs (docs/client.md, docs/security.md):
	 * paths of PEM files, read by vigil_client_open only; NULL or "" = not
	 * set. tls_ca is required with a tls+tcp:// URL: the server's
	 * certificate is always verified against it. tls_cert and tls_key (not
	 * encrypted) are this client's certificate, which a vigild with
	 * [tls] ca requires. tls_server_name: the name the server's
	 * certificate must carry (a DNS name in its subjectAltName); NULL: the
	 * URL's host. Ignored for tcp:// and ipc:// URLs.
	 */
	const char *tls_cert;
	const char *tls_key;
	const char *tls_ca;
	const char *tls_server_name;
} vigil_client_opts;

/* Per-call options; NULL or zero fields mean the client's settings. */
typedef struct vigil_client_callopts {
	int32_t  timeout_ms;
	uint32_t max_attempts;
	bool     dry_run;         /* score only: evaluate, do not record */
} vigil_client_callopts;

typedef struct vigil_client vigil_client;

/*
 * Opens a client for nurls replica URLs (nng URLs: "tls+tcp://host:port"
 * with opts->tls_*, "tcp://host:port", "ipc:///path"; 1 <= nurls <= 64, no
 * duplicates). Dials every replica in the
 * background (reconnecting forever) and waits up to opts->connect_wait_ms for
 * all of them to connect; a replica that is down does not fail the open, its
 * calls fail over. The ring depends only on the set of URLs, not their order.
 * VIGIL_CLIENT_EINVAL: bad URL list (errinfo names the URL; one without a
 * "SCHEME://" is told the forms), a tls+tcp://
 * URL without opts->tls_ca, a TLS file that cannot be read or parsed
 * (errinfo names it); a TLS handshake that fails later (server certificate
 * not signed by tls_ca, or ours refused) shows as EUNREACHABLE on calls;
 * VIGIL_CLIENT_ENOMEM; VIGIL_CLIENT_ETRANSPORT: nng refused the URL.
 * On error *ret_client is untouched.
 */
vigil_client_err vigil_client_open(const char *const *urls, size_t nurls,
    const vigil_client_opts *opts, vigil_client **ret_client,
    vigil_client_errinfo *reterr_info);

/*
 * Cancels calls in flight (their callbacks run with VIGIL_CLIENT_ECLOSED),
 * waits for every callback to return, closes the sockets and frees c.
 * NULL is a no-op. Must not be called from a callback.
 */
void vigil_client_close(vigil_client *c);

/*
 * Scores txn synchronously. VIGIL_CLIENT_OK: *ret_result filled (fini it).
 * Otherwise *ret_result is untouched and *reterr_info (may be NULL) says why:
 * VIGIL_CLIENT_EINVAL (client-side check), a VIGIL_CLIENT_S* server status,
 * or the error of the last attempt (ETIMEDOUT, EUNREACHABLE, EPROTO, ...).
 * Blocks at most about max_attempts * (timeout_ms + backoff_ms).
 */
vigil_client_err vigil_client_score(vigil_client *c, const vigil_client_txn *txn,
    const vigil_client_callopts *opts, vigil_client_result *ret_result,
    vigil_client_errinfo *reterr_info);

/*
 * Completion of an asynchronous score: err, the result (NULL unless err is
 * VIGIL_CLIENT_OK) and the error details (NULL when err is VIGIL_CLIENT_OK).
 * Both pointers are valid only during the callback; keep the result with
 * vigil_client_result_move(). Runs on an nng thread: do not block in it for
 * long and never call vigil_client_close or a synchronous call from it
 * (starting another vigil_client_score_async is fine).
 */
typedef void (*vigil_client_score_cb)(void *arg, vigil_client_err err,
    vigil_client_result *res, const vigil_client_errinfo *info);

/*
 * Starts scoring txn; returns at once. VIGIL_CLIENT_OK: cb will be called
 * exactly once, never from inside this function. Any other return (EINVAL,
 * ENOMEM, ELIMIT, ECLOSED): cb is never called, *reterr_info (may be NULL)
 * says why.
 */
vigil_client_err vigil_client_score_async(vigil_client *c, const vigil_client_txn *txn,
    const vigil_client_callopts *opts, vigil_client_score_cb cb, void *arg,
    vigil_client_errinfo *reterr_info);

/*
 * Sends a label synchronously. Routed by card_id when given, else by txn_id.
 * A retry may deliver a label twice (to the same or another replica); a
 * label is keyed by txn_id, so a repeat states the same fact. Errors as for
 * vigil_client_score.
 */
vigil_client_err vigil_client_label(vigil_client *c, const vigil_client_label_req *label,
    const vigil_client_callopts *opts, vigil_client_errinfo *reterr_info);

/* What one replica says about itself (vigil.v1.HealthReply). */
typedef struct vigil_client_health {
	bool     ready;               /* rules and store loaded, not draining */
	char     server_version[32];
	uint64_t uptime_s;
	char     rules_version[72];   /* the rule file's declared version */
	uint64_t features_generation;
	char     rules_hash[72];      /* its content hash (docs/protocol.md, "Rules identity") */
} vigil_client_health;

/*
 * Asks replica i (0 <= i < vigil_client_nreplicas) for its health. Not
 * routed and never failed over to another replica: the answer is about
 * that one (attempts are retried on it, per opts). Errors as for
 * vigil_client_score; VIGIL_CLIENT_EINVAL for a bad index.
 */
vigil_client_err vigil_client_replica_health(vigil_client *c, size_t i,
    const vigil_client_callopts *opts, vigil_client_health *ret_health,
    vigil_client_errinfo *reterr_info);

/* Number of replicas and the URL of replica i (valid until close). */
size_t      vigil_client_nreplicas(const vigil_client *c);
const char *vigil_client_replica_url(const vigil_client *c, size_t i);
/* Index of the replica that owns key (a card_id) on the ring. */
size_t      vigil_client_route(const vigil_client *c, const char *key);
/* Whether replica i currently has a live connection. */
bool        vigil_client_replica_connected(vigil_client *c, size_t i);

#ifdef __cplusplus
}
#endif

#endif /* VIGIL_CLIENT_H */
