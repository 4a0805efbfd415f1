/* SPDX-License-Identifier: MIT */
/*
 * tools/replay/labels.c - labels wait in a min-heap on their label time
 * (the row's label_time, or its event time plus --label-delay) until the
 * replay's clock passes it; then they are archived (offline, in label-time
 * order) or sent to the servers (spread over the --concurrency senders).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "replay.h"

static vigil_err
rp_label_heap_push(rp_label_heap *h, const rp_label *l)
{
	size_t i;

	if (h->n == h->cap) {
		size_t nc = h->cap ? h->cap * 2 : 1024;
		rp_label *nv = realloc(h->v, nc * sizeof *nv);
		if (nv == NULL)
			return VIGIL_ENOMEM;
		h->v = nv;
		h->cap = nc;
	}
	i = h->n++;
	while (i > 0 && h->v[(i - 1) / 2].t > l->t) {
		h->v[i] = h->v[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	h->v[i] = *l;
	return VIGIL_OK;
}

static void
rp_label_heap_pop(rp_label_heap *h, rp_label *ret)
{
	rp_label last;
	size_t i = 0;

	*ret = h->v[0];
	last = h->v[--h->n];
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= h->n)
			break;
		if (c + 1 < h->n && h->v[c + 1].t < h->v[c].t)
			c++;
		if (h->v[c].t >= last.t)
			break;
		h->v[i] = h->v[c];
		i = c;
	}
	if (h->n > 0)
		h->v[i] = last;
}

vigil_err
rp_label_queue(rp *r, const rp_row *row)
{
	rp_label l;

	if (row->label < 0)
		return VIGIL_OK;
	if (row->label == 0 && r->o.fraud_labels_only)
		return VIGIL_OK;
	l.t = row->label_time && !r->o.force_label_delay ? row->label_time
	    : row->txn.event_time_ms + r->o.label_delay_ms;
	l.fraud = row->label == 1;
	memcpy(l.txn_id, row->txn.txn_id, sizeof l.txn_id);
	memcpy(l.card_id, row->txn.card_id, sizeof l.card_id);
	return rp_label_heap_push(&r->labels, &l);
}

static vigil_err
rp_label_send(rp *r, const rp_label *l)
{
	if (r->db != NULL) {
		store_label sl;
		store_diag diag;
		vigil_err rv;

		memset(&sl, 0, sizeof sl);
		memcpy(sl.txn_id, l->txn_id, sizeof sl.txn_id);
		memcpy(sl.card_id, l->card_id, sizeof sl.card_id);
		snprintf(sl.source, sizeof sl.source, "replay");
		sl.fraud = l->fraud;
		sl.label_time_ms = l->t;
		sl.received_at_ms = l->t;
		rv = store_label_record(r->db, &sl, &diag);
		if (rv != VIGIL_OK)
			fprintf(stderr, "vigil-replay: label %s: %s\n", l->txn_id, diag.msg);
		return rv;
	}
	if (r->client != NULL) {
		vigil_client_label_req req = {
			.txn_id = l->txn_id, .fraud = l->fraud, .label_time_ms = l->t,
			.source = "replay", .card_id = l->card_id,
		};
		vigil_client_errinfo info;
		vigil_client_err e = vigil_client_label(r->client, &req, NULL, &info);
		if (e != VIGIL_CLIENT_OK) {
			fprintf(stderr, "vigil-replay: label %s: %s\n", l->txn_id, info.message);
			return VIGIL_EIO;
		}
	}
	return VIGIL_OK;
}

typedef struct rp_label_job {
	rp             *r;
	const rp_label *v;
	size_t          n;
	uint32_t        id, nthreads;
	vigil_err       rv;
	pthread_t       th;
} rp_label_job;


static void *
rp_label_worker(void *arg)
{
	rp_label_job *j = arg;

	for (size_t i = j->id; i < j->n && j->rv == VIGIL_OK; i += j->nthreads)
		j->rv = rp_label_send(j->r, &j->v[i]);
	return NULL;
}

/* Sends every queued label whose time is <= t. Offline they go to the
 * archive in label-time order; to servers, labels being independent facts,
 * they are spread over the --concurrency senders. */
vigil_err
rp_labels_due(rp *r, int64_t t)
{
	rp_label *due = NULL;
	size_t n = 0, cap = 0;
	vigil_err rv = VIGIL_OK;
	rp_label_job jobs[RP_MAX_CONCURRENCY];
	uint32_t nt;

	while (r->labels.n > 0 && r->labels.v[0].t <= t) {
		rp_label l;
		rp_label_heap_pop(&r->labels, &l);
		if (r->client == NULL || r->o.concurrency == 1) {
			rv = rp_label_send(r, &l);
			if (rv != VIGIL_OK)
				goto out;
			r->labels_sent++;
			continue;
		}
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 1024;
			rp_label *nd = realloc(due, nc * sizeof *nd);
			if (nd == NULL) {
				rv = VIGIL_ENOMEM;
				goto out;
			}
			due = nd;
			cap = nc;
		}
		due[n++] = l;
	}
	if (n == 0)
		goto out;
	nt = r->o.concurrency;
	for (uint32_t k = 0; k < nt; k++) {
		jobs[k] = (rp_label_job){ .r = r, .v = due, .n = n, .id = k, .nthreads = nt };
		if (pthread_create(&jobs[k].th, NULL, rp_label_worker, &jobs[k]) != 0) {
			nt = k;
			rv = VIGIL_ENOMEM;
			break;
		}
	}
	for (uint32_t k = 0; k < nt; k++) {
		pthread_join(jobs[k].th, NULL);
		if (rv == VIGIL_OK)
			rv = jobs[k].rv;
	}
	if (rv == VIGIL_OK)
		r->labels_sent += n;
out:
	free(due);
	return rv;
}

void
rp_labels_fini(rp *r)
{
	free(r->labels.v);
	r->labels.v = NULL;
	r->labels.n = r->labels.cap = 0;
}
