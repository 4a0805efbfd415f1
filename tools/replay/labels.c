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

/* VIGIL_ETOOBIG past RP_MAX_LABELS waiting, VIGIL_ENOMEM. */
static vigil_err
rp_label_heap_push(rp_label_heap *h, const rp_label *l)
{
	rp_label *v;
	size_t i;
	vigil_err rv;

	rv = vigil_vec_reserve(&h->v, 1);
	if (rv != VIGIL_OK)
		return rv;
	v = h->v.data;
	i = h->v.len++;
	while (i > 0 && v[(i - 1) / 2].t > l->t) {
		v[i] = v[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	v[i] = *l;
	return VIGIL_OK;
}

static void
rp_label_heap_pop(rp_label_heap *h, rp_label *ret)
{
	rp_label *v = h->v.data, last;
	size_t i = 0, n;

	*ret = v[0];
	n = --h->v.len;
	last = v[n];
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= n)
			break;
		if (c + 1 < n && v[c + 1].t < v[c].t)
			c++;
		if (v[c].t >= last.t)
			break;
		v[i] = v[c];
		i = c;
	}
	if (n > 0)
		v[i] = last;
}

/* Whether the earliest label waiting is due at t. */
static bool
rp_label_heap_due(const rp_label_heap *h, int64_t t)
{
	return h->v.len > 0 && ((const rp_label *)h->v.data)[0].t <= t;
}

void
rp_labels_init(rp *r)
{
	vigil_vec_init(&r->labels.v, sizeof(rp_label), RP_MAX_LABELS);
}

vigil_err
rp_label_queue(rp *r, const rp_row *row)
{
	rp_label l;
	vigil_err rv;

	if (row->label < 0)
		return VIGIL_OK;
	if (row->label == 0 && r->o.fraud_labels_only)
		return VIGIL_OK;
	l.t = row->label_time && !r->o.force_label_delay ? row->label_time
	    : row->txn.event_time_ms + r->o.label_delay_ms;
	l.fraud = row->label == 1;
	memcpy(l.txn_id, row->txn.txn_id, sizeof l.txn_id);
	memcpy(l.card_id, row->txn.card_id, sizeof l.card_id);
	rv = rp_label_heap_push(&r->labels, &l);
	if (rv == VIGIL_ETOOBIG)
		fprintf(stderr, "vigil-replay: more than %u labels waiting for their label time\n",
		    RP_MAX_LABELS);
	return rv;
}

/*
 * Sends one label: offline into the work archive, else to the servers.
 * A server's refusal (vigild validates a label as it does a transaction:
 * a label time more than a day ahead of its clock, say) is VIGIL_EINVAL
 * and no answer VIGIL_EIO: the caller counts both and goes on, and the
 * first few of each sender are said, one line each. Offline, a failure is
 * the work archive's and ends the run.
 */
static vigil_err
rp_label_send(rp *r, const rp_label *l, uint32_t *shown)
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
			char line[sizeof info.field + sizeof info.message + 2];

			if ((*shown)++ < RP_MAX_ERRORS_SHOWN)
				fprintf(stderr, "vigil-replay: label %s: %s\n", l->txn_id,
				    vigil_client_errinfo_format(&info, line, sizeof line));
			return rp_refusal(e) ? VIGIL_EINVAL : VIGIL_EIO;
		}
	}
	return VIGIL_OK;
}

typedef struct rp_label_job {
	rp             *r;
	const rp_label *v;
	size_t          n;
	uint32_t        id, nthreads, shown;
	uint64_t        sent, refused, failed;
	pthread_t       th;
} rp_label_job;

/* Counts one label's outcome in the job's totals. */
static void
rp_label_count(rp_label_job *j, vigil_err rv)
{
	j->sent += rv == VIGIL_OK;
	j->refused += rv == VIGIL_EINVAL;
	j->failed += rv != VIGIL_OK && rv != VIGIL_EINVAL;
}

static void *
rp_label_worker(void *arg)
{
	rp_label_job *j = arg;

	for (size_t i = j->id; i < j->n; i += j->nthreads)
		rp_label_count(j, rp_label_send(j->r, &j->v[i], &j->shown));
	return NULL;
}

vigil_err
rp_labels_due(rp *r, int64_t t)
{
	vigil_vec due; /* of rp_label, for the senders */
	vigil_err rv = VIGIL_OK;
	rp_label_job jobs[RP_MAX_CONCURRENCY];
	rp_label_job one = { .r = r, .shown = (uint32_t)(r->labels_refused + r->labels_failed) };
	uint32_t nt;

	vigil_vec_init(&due, sizeof(rp_label), RP_MAX_LABELS);
	while (rp_label_heap_due(&r->labels, t)) {
		rp_label l;
		rp_label_heap_pop(&r->labels, &l);
		if (r->client == NULL || r->o.concurrency == 1) {
			rv = rp_label_send(r, &l, &one.shown);
			if (r->client == NULL && rv != VIGIL_OK)
				goto out;
			rp_label_count(&one, rv);
			rv = VIGIL_OK;
			continue;
		}
		rv = vigil_vec_push(&due, &l); /* the heap held it: within the cap */
		if (rv != VIGIL_OK)
			goto out;
	}
	if (due.len == 0)
		goto out;
	nt = r->o.concurrency;
	for (uint32_t k = 0; k < nt; k++) {
		jobs[k] = (rp_label_job){ .r = r, .v = due.data, .n = due.len, .id = k,
			.nthreads = nt, .shown = one.shown };
		if (pthread_create(&jobs[k].th, NULL, rp_label_worker, &jobs[k]) != 0) {
			nt = k;
			rv = VIGIL_ENOMEM;
			break;
		}
	}
	for (uint32_t k = 0; k < nt; k++) {
		pthread_join(jobs[k].th, NULL);
		one.sent += jobs[k].sent;
		one.refused += jobs[k].refused;
		one.failed += jobs[k].failed;
	}
out:
	r->labels_sent += one.sent;
	r->labels_refused += one.refused;
	r->labels_failed += one.failed;
	vigil_vec_fini(&due);
	return rv;
}

void
rp_labels_fini(rp *r)
{
	vigil_vec_fini(&r->labels.v);
}
