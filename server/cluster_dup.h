/* SPDX-License-Identifier: MIT */
/*
 * server/cluster_dup.h - which stream messages are a second copy of a batch
 * already applied (server/cluster.c), kept apart so that tests can drive it.
 *
 * A replica publishes each batch under the message id
 * "<replica>-<nonce>-<batch>": the nonce is its process's, the batch number
 * counts from 0 and moves on only once JetStream acknowledged the batch,
 * which is retried unchanged until then. So the batches of one process are
 * stored in order, and a batch is stored twice only when an attempt was
 * stored but its acknowledgement lost, and the retry came after the
 * stream's duplicate window (2 minutes; NATS unreachable in between), or
 * went to a stream created again since. No other batch of that process
 * lies between the two copies (the next is published only once one copy
 * is acknowledged), so a message whose batch number is the last one
 * applied from its process is such a copy: skipped, not applied twice. A
 * lower one is applied: a stream created again is delivered out of order
 * once (a consumer re-attached to it past its start applies the end of it,
 * then the new subscription its start: cluster_seq.h), and its batches are
 * no copies. Only a pair of copies split by that boundary is applied twice.
 *
 * Exact, with no window of its own: every replica consumes the whole stream
 * from its start after a restart, so the table is rebuilt by the replay.
 * CLUSTER_DUP_MAX processes are remembered (each start of a replica is
 * one: far more than the stream keeps in retain_hours), and past that the
 * one seen longest ago is forgotten. A message with another id, or none
 * (not from a vigild), is applied as it is.
 */
#ifndef VIGIL_SERVER_CLUSTER_DUP_H
#define VIGIL_SERVER_CLUSTER_DUP_H

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hashtab.h"

#define CLUSTER_DUP_MAX 4096 /* processes remembered */
#define CLUSTER_DUP_KEY 64   /* "<replica>-<nonce>": 31 + 1 + 23, and the NUL */

typedef struct cluster_dup_origin {
	char           key[CLUSTER_DUP_KEY]; /* "<replica>-<nonce>" */
	uint64_t       last;                 /* the last batch applied */
	uint64_t       used;                 /* cluster_dup.tick when last seen */
	UT_hash_handle hh;
} cluster_dup_origin;

typedef struct cluster_dup {
	cluster_dup_origin *by_key;
	uint32_t            n;
	uint64_t            tick;
} cluster_dup;

typedef enum cluster_dup_verdict {
	CLUSTER_DUP_NEW,    /* another batch than the last of its process: apply it */
	CLUSTER_DUP_COPY,   /* the last applied again: a second copy */
	CLUSTER_DUP_ANY,    /* no id of ours (or no memory): apply it */
} cluster_dup_verdict;

/* Splits id into its process ("<replica>-<nonce>", into key) and its batch
 * number; false if id is not of that form. */
static inline bool
cluster_dup_parse(const char *id, char key[CLUSTER_DUP_KEY], uint64_t *ret_batch)
{
	const char *dash = id != NULL ? strrchr(id, '-') : NULL;
	const char *p;
	uint64_t    b = 0;
	size_t      kl;

	if (dash == NULL || dash == id || dash[1] == '\0' || dash[-1] == '-')
		return false;
	for (p = dash + 1; *p != '\0'; p++) {
		uint64_t digit = (uint64_t)(*p - '0');

		if (*p < '0' || *p > '9' || b > (UINT64_MAX - digit) / 10)
			return false;
		b = b * 10 + digit;
	}
	kl = (size_t)(dash - id);
	if (kl >= CLUSTER_DUP_KEY || memchr(id, '-', kl) == NULL)
		return false; /* no nonce */
	memcpy(key, id, kl);
	memset(key + kl, 0, CLUSTER_DUP_KEY - kl);
	*ret_batch = b;
	return true;
}

/* Forgets the process seen longest ago. */
static inline void
cluster_dup_evict(cluster_dup *d)
{
	cluster_dup_origin *o, *tmp, *old = NULL;

	HASH_ITER(hh, d->by_key, o, tmp)
		if (old == NULL || o->used < old->used)
			old = o;
	if (old != NULL) {
		HASH_DEL(d->by_key, old);
		free(old);
		d->n--;
	}
}

/* A message whose Nats-Msg-Id is id (NULL: none): is it a copy of a batch
 * applied already? Anything but a copy is recorded as applied. */
static inline cluster_dup_verdict
cluster_dup_take(cluster_dup *d, const char *id)
{
	char                key[CLUSTER_DUP_KEY];
	uint64_t            batch;
	cluster_dup_origin *o;

	if (!cluster_dup_parse(id, key, &batch))
		return CLUSTER_DUP_ANY;
	d->tick++;
	HASH_FIND(hh, d->by_key, key, CLUSTER_DUP_KEY, o);
	if (o != NULL) {
		o->used = d->tick;
		if (batch == o->last)
			return CLUSTER_DUP_COPY;
		if (batch > o->last)
			o->last = batch;
		return CLUSTER_DUP_NEW;
	}
	if (d->n >= CLUSTER_DUP_MAX)
		cluster_dup_evict(d);
	o = calloc(1, sizeof *o);
	if (o == NULL)
		return CLUSTER_DUP_ANY;
	memcpy(o->key, key, CLUSTER_DUP_KEY);
	o->last = batch;
	o->used = d->tick;
	HASH_ADD(hh, d->by_key, key, CLUSTER_DUP_KEY, o);
	if (!VIGIL_HASH_ADDED(o)) {
		free(o);
		return CLUSTER_DUP_ANY;
	}
	d->n++;
	return CLUSTER_DUP_NEW;
}

static inline void
cluster_dup_free(cluster_dup *d)
{
	cluster_dup_origin *o, *tmp;

	HASH_ITER(hh, d->by_key, o, tmp) {
		HASH_DEL(d->by_key, o);
		free(o);
	}
	d->n = 0;
}

#endif /* VIGIL_SERVER_CLUSTER_DUP_H */
