/* SPDX-License-Identifier: MIT */
/*
 * tests/clients/peer.h - misbehaving (and well-behaved) REP peers for the
 * client tests, each on its own thread and ipc:// socket: one that never
 * answers, one that answers bytes that are not a Reply, one that answers a
 * fixed status, one that answers like a tiny vigild, one that hangs up.
 */
#ifndef VIGIL_TEST_CLIENTS_PEER_H
#define VIGIL_TEST_CLIENTS_PEER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include <nng/nng.h>

typedef enum tp_mode {
	TP_SILENT,   /* receives and never answers */
	TP_GARBAGE,  /* answers bytes that are not a vigil.v1.Reply */
	TP_EMPTY,    /* answers an empty Reply (status OK, no score) */
	TP_STATUS,   /* answers status `status` with message and field */
	TP_GOOD,     /* answers a score reply for the request's txn_id */
	TP_HANGUP,   /* receives one request, then closes its socket */
	TP_WRONGID,  /* answers a score reply for another txn_id */
	TP_BADTEXT,  /* a score reply whose rule and reason are not UTF-8 */
} tp_mode;

typedef struct tp_peer {
	tp_mode        mode;
	int            status;        /* TP_STATUS */
	char           url[160];
	nng_socket     sock;
	nng_listener   listener;
	pthread_t      thread;
	atomic_bool    stop;
	atomic_int     requests;      /* requests received */
	char           last_txn[80];  /* txn_id of the last request (TP_GOOD, TP_HANGUP) */
} tp_peer;

/* Starts a peer listening on ipc://<dir>/<name>.sock. 0 or -1. */
int  tp_peer_start(tp_peer *p, tp_mode mode, const char *dir, const char *name);
void tp_peer_stop(tp_peer *p);

/* A fresh temporary directory for sockets (static buffer). */
const char *tp_tmpdir(void);
void        tp_tmpdir_remove(void);

#endif
