/* SPDX-License-Identifier: MIT */
/*
 * clients/c/vc_int.h - private to libvigil-client: the client, replica and
 * call objects and the limits client.c (replicas, the call state machine)
 * and codec.c (request checks and encoding, reply decoding) share.
 */
#ifndef VIGIL_CLIENT_VC_INT_H
#define VIGIL_CLIENT_VC_INT_H

#include <pthread.h>
#include <stdalign.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nng/nng.h>
#include <nng/supplemental/util/platform.h>

#include "ring.h"
#include "vigil.pb-c.h"
#include "vigil_client.h"

#define VC_MAX_REPLICAS   64
#define VC_MAX_URL        1024
#define VC_ARENA_BYTES    8192
#define VC_ID_MAX         64      /* txn_id, card_id, ... (vigil.proto) */
#define VC_MAX_ATTRS      64
#define VC_MAX_REQUEST    65536   /* encoded request bytes */
#define VC_PEM_MAX        (1u << 20)
/* Attempts on one replica that timed out in a row, with no connection or
 * one that never answered, before its dialer is replaced (vc_replica_stall) */
#define VC_REDIAL_AFTER   3
/* A replica with no connection for this long has its dialer replaced too,
 * though no call tried it (calls go to the connected replicas): nng
 * redials a healthy dialer within RECONNMAXT (1 s), so only a stuck one
 * stays down this long while its vigild is back (vc_replica_watch). */
#define VC_REDIAL_IDLE_MS 5000

typedef enum vc_kind { VC_KIND_SCORE, VC_KIND_LABEL, VC_KIND_HEALTH } vc_kind;

typedef struct vc_call vc_call;

typedef struct vc_replica {
	vigil_client *c;
	char         *url;
	nng_socket    sock;
	bool          sock_open;
	int           npipes;   /* live connections (0 or 1); under c->mtx */
	vc_call      *inflight; /* calls with an attempt on this replica; under c->mtx */
	/* the stall watch (vc_replica_stall); under c->mtx */
	nng_dialer    dialer;
	uint32_t      stalls;   /* attempts timed out in a row */
	uint64_t      answers;  /* replies since the last connection was added */
	bool          redialing;
	uint64_t      redials;
	nng_time      down_since; /* no connection since (dialer started or last pipe gone) */
} vc_replica;

struct vigil_client {
	vigil_client_opts opts;
	size_t            nrep;
	vc_replica       *reps;
	vc_ring          *ring;
	pthread_mutex_t   mtx;
	pthread_cond_t    cv;       /* connections added, calls finished */
	bool              closing;
	uint32_t          ncalls;   /* call objects allocated (<= max_inflight + ndelivering) */
	uint32_t          nactive;  /* calls accepted and not yet finished */
	uint32_t          ndelivering; /* async calls whose callback runs: not counted
	                                * against max_inflight, so a callback can start
	                                * the next call at the cap */
	vc_call          *free_sync;
	vc_call          *free_async;
	vc_call          *all;      /* every call object, for close */
};

typedef enum vc_state {
	VC_IDLE,    /* between attempts */
	VC_BACKOFF, /* sleeping before re-sending to a replica already tried */
	VC_SEND,
	VC_RECV,
	VC_FINISH,  /* async call finished before its first aio: deliver from a callback */
} vc_state;

struct vc_call {
	vigil_client *c;
	vc_call      *next_free;
	vc_call      *next_all;
	vc_call      *prev_rep, *next_rep; /* on reps[rep].inflight while registered */
	bool          registered;
	bool          async;
	bool          delivering; /* its callback runs (c->ndelivering); under c->mtx */
	nng_aio      *aio;       /* send and receive */
	nng_aio      *aio_sleep; /* backoff and deferred delivery: nng 1.5 keeps an
	                          * aio's "sleep" mark into its next operation, so a
	                          * timed-out send would read as success */
	nng_ctx      *ctx;       /* [nrep] */
	bool         *ctx_open;  /* [nrep] */
	uint8_t      *order;     /* [nrep] ring preference list of this call's key */
	size_t        norder;

	uint8_t      *buf;       /* the encoded vigil.v1.Request */
	size_t        len, cap;
	vc_kind       kind;
	char          txn_id[VC_ID_MAX + 1];
	int32_t       timeout_ms;
	uint32_t      max_attempts;

	vc_state      state;
	uint32_t      attempts;
	uint64_t      tried;     /* bit per replica index */
	size_t        rep;       /* replica of the current attempt */
	nng_time      deadline;
	bool          disc;      /* its replica lost its connection during the attempt */
	bool          was_connected;

	vigil_client_err     err;
	vigil_client_errinfo info;
	vigil_client_result  res;
	vigil_client_health  health;  /* VC_KIND_HEALTH */
	vigil_client_score_cb cb;
	void                *cb_arg;

	/* protobuf-c allocator for decoding replies without malloc */
	ProtobufCAllocator alloc;
	size_t             arena_used;
	alignas(16) unsigned char arena[VC_ARENA_BYTES];
};

/* client.c */

/* Sets *info (if non-NULL) to code and a formatted one-line message. */
void vc_info_set(vigil_client_errinfo *info, vigil_client_err code, const char *field,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* protobuf-c allocator of a call's arena (data: the vc_call) */
void *vc_arena_alloc(void *data, size_t size);
void vc_arena_free(void *data, void *ptr);

/* codec.c */

vigil_client_err vc_call_reserve(vc_call *call, size_t len, vigil_client_errinfo *reterr_info);
vigil_client_err vc_encode_score(vc_call *call, const vigil_client_txn *txn, bool dry_run,
    vigil_client_errinfo *reterr_info);
vigil_client_err vc_encode_label(vc_call *call, const vigil_client_label_req *label,
    vigil_client_errinfo *reterr_info);
bool vc_retryable(vigil_client_err e);
void vc_call_fail(vc_call *call, vigil_client_err code, const char *field, const char *detail);
void vc_call_decode(vc_call *call, const uint8_t *body, size_t len);

#endif
