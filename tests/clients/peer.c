/* SPDX-License-Identifier: MIT */
/*
 * tests/clients/peer.c - REP peers for the client tests (see peer.h). They
 * poll their socket with a short receive timeout so tp_peer_stop can end
 * them; they decode requests with the same protobuf-c code as the server.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>

#include "tmpdir.h"
#include "peer.h"
#include "vigil.pb-c.h"

static char tp_dir[64];

const char *
tp_tmpdir(void)
{
	if (tp_dir[0] == '\0') {
		snprintf(tp_dir, sizeof tp_dir, "/tmp/vigil-clients-XXXXXX");
		if (mkdtemp(tp_dir) == NULL) {
			perror("mkdtemp");
			abort();
		}
	}
	return tp_dir;
}

void
tp_tmpdir_remove(void)
{
	if (tp_dir[0] == '\0')
		return;
	if (vt_tmpdir_remove(tp_dir) != 0)
		fprintf(stderr, "peer: could not remove %s\n", tp_dir);
	tp_dir[0] = '\0';
}

/* The reply of a TP_GOOD / TP_WRONGID / TP_BADTEXT / TP_STATUS / TP_EMPTY peer. */
static nng_msg *
tp_reply(tp_peer *p, const char *txn_id)
{
	Vigil__V1__Reply      rep = VIGIL__V1__REPLY__INIT;
	Vigil__V1__ScoreReply sr = VIGIL__V1__SCORE_REPLY__INIT;
	Vigil__V1__Hit        hit = VIGIL__V1__HIT__INIT;
	Vigil__V1__Hit       *hits[1] = { &hit };
	nng_msg              *msg;
	size_t                len;

	if (p->mode == TP_STATUS) {
		rep.status  = (Vigil__V1__Status) p->status;
		rep.message = "txn.currency: \"XXX\" is not an active ISO 4217 code";
		rep.field   = "txn.currency";
	} else if (p->mode != TP_EMPTY) {
		rep.message     = "ok";
		rep.kind_case   = VIGIL__V1__REPLY__KIND_SCORE;
		rep.score       = &sr;
		sr.txn_id       = p->mode == TP_WRONGID ? "someone-else" : (char *) txn_id;
		sr.score        = 50;
		sr.points       = 50;
		sr.decision     = VIGIL__V1__DECISION__REVIEW;
		sr.n_hits       = 1;
		sr.hits         = hits;
		sr.rules_version = "peer-rules";
		sr.features_generation = 7;
		sr.latency_us   = 3;
		hit.rule   = p->mode == TP_BADTEXT ? "big_\xc3" : "big_amount";
		hit.points = 50;
		hit.reason = p->mode == TP_BADTEXT ? "amount \xff over 1000" : "amount over 1000";
	}
	len = vigil__v1__reply__get_packed_size(&rep);
	if (nng_msg_alloc(&msg, len) != 0)
		return NULL;
	vigil__v1__reply__pack(&rep, nng_msg_body(msg));
	return msg;
}

static void *
tp_main(void *arg)
{
	tp_peer *p = arg;

	while (!atomic_load(&p->stop)) {
		nng_msg          *req, *rep = NULL;
		Vigil__V1__Request *rq;
		char              txn_id[80] = "";
		int               rv;

		rv = nng_recvmsg(p->sock, &req, 0);
		if (rv == NNG_ETIMEDOUT)
			continue;
		if (rv != 0)
			break;
		rq = vigil__v1__request__unpack(NULL, nng_msg_len(req), nng_msg_body(req));
		if (rq != NULL && rq->kind_case == VIGIL__V1__REQUEST__KIND_SCORE && rq->score->txn != NULL)
			snprintf(txn_id, sizeof txn_id, "%s", rq->score->txn->txn_id);
		else if (rq != NULL && rq->kind_case == VIGIL__V1__REQUEST__KIND_LABEL && rq->label->label != NULL)
			snprintf(txn_id, sizeof txn_id, "%s", rq->label->label->txn_id);
		if (rq != NULL)
			vigil__v1__request__free_unpacked(rq, NULL);
		nng_msg_free(req);
		snprintf(p->last_txn, sizeof p->last_txn, "%s", txn_id);
		atomic_fetch_add(&p->requests, 1);

		switch (p->mode) {
		case TP_SILENT:
			break;
		case TP_HANGUP:
			/* like a crash: the address goes away with the connection, so
			 * the client cannot reconnect while the socket shuts down */
			nng_listener_close(p->listener);
			nng_close(p->sock);
			return NULL;
		case TP_GARBAGE: {
			static const unsigned char junk[] = { 0x0a, 0xff, 0xff, 0xff, 0x7f, 'j', 'u', 'n', 'k' };

			if (nng_msg_alloc(&rep, sizeof junk) == 0)
				memcpy(nng_msg_body(rep), junk, sizeof junk);
			break;
		}
		default:
			rep = tp_reply(p, txn_id);
			break;
		}
		if (rep != NULL && nng_sendmsg(p->sock, rep, 0) != 0)
			nng_msg_free(rep);
	}
	return NULL;
}

int
tp_peer_start(tp_peer *p, tp_mode mode, const char *dir, const char *name)
{
	memset(p, 0, sizeof *p);
	p->mode = mode;
	snprintf(p->url, sizeof p->url, "ipc://%s/%s.sock", dir, name);
	if (nng_rep0_open(&p->sock) != 0)
		return -1;
	nng_socket_set_ms(p->sock, NNG_OPT_RECVTIMEO, 50);
	if (nng_listen(p->sock, p->url, &p->listener, 0) != 0) {
		nng_close(p->sock);
		return -1;
	}
	if (pthread_create(&p->thread, NULL, tp_main, p) != 0) {
		nng_close(p->sock);
		return -1;
	}
	return 0;
}

void
tp_peer_stop(tp_peer *p)
{
	atomic_store(&p->stop, true);
	pthread_join(p->thread, NULL);
	if (p->mode != TP_HANGUP || atomic_load(&p->requests) == 0)
		nng_close(p->sock);
}
