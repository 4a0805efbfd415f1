/* SPDX-License-Identifier: MIT */
/*
 * store/private/live_obj_int.h - private to the live state: what live.c
 * (apply, expiry) and dedupe.c (idempotency) share besides the objects a
 * lookup reads (live_view.h): the id hash, object allocation, the
 * idempotency records and claims.
 */
#ifndef VIGIL_STORE_LIVE_OBJ_INT_H
#define VIGIL_STORE_LIVE_OBJ_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "live_view.h"
#include "omap_int.h"

/* The hash the tables key an id by (keys.c, live_observe). */
static inline uint64_t
id_hash(const char *id, size_t len)
{
	return XXH3_64bits(id, len);
}

/* Cards and entities start on a 128-byte boundary: their cache lines come
 * in adjacent pairs the CPU fetches together. */
static inline void *
obj_alloc(size_t size)
{
	size_t sz = (size + 127) / 128 * 128;
	void  *p = aligned_alloc(128, sz);

	if (p != NULL)
		memset(p, 0, sz);
	return p;
}

/* An idempotency record takes DD_SIZE(id length, nhits) bytes: the okey is
 * cut after the id's NUL and the hits follow it (dd_hits), so a record of
 * a short id without hits is 64 bytes, not 176 (most of a replay's memory
 * was these). The rules version is shared (dd_str, dedupe.c). */
typedef struct dd_entry {
	int64_t        t;
	uint64_t       features_gen;
	const char    *rules_version; /* DD_VERSION_LEN bytes, NUL-terminated */
	uint64_t       fp; /* live_txn_fingerprint of the recorded transaction */
	double         score; /* 0-100 (points: the sum of the active hits') */
	uint8_t        decision;
	uint8_t        nhits;
	uint8_t        state; /* DD_* (in what was padding) */
	uint8_t        model; /* DD_MODEL: the model's outcome follows the hits; DD_LATE;
	                       * low bits (DD_NREASONS): reasons */
	uint16_t       size;   /* bytes it takes in its chunk (in what was padding) */
	uint16_t       stripe; /* dd_stripe_of(k.h) */
	okey           k; /* last: only DD_KEY_END(len) bytes of it exist */
} dd_entry;

_Static_assert(offsetof(dd_entry, k) == 48, "size and stripe in the padding before the key");

/* dd_entry.state. A record is DD_PENDING from its commit until the sync
 * covering it returned (fsync always), then DD_DURABLE or DD_FAILED; a
 * DD_CLAIM is not a record but a begin in flight (a live_claim in its
 * store_ctx, not in a chunk); DD_GONE, a record no longer in its table
 * (dd_release), its bytes left in the chunk for the expiry cursor to step
 * over. */
enum { DD_DURABLE = 0, DD_PENDING = 1, DD_FAILED = 2, DD_CLAIM = 3, DD_GONE = 4 };

/* A claim on a txn_id between begin and commit/abort: in the map like a
 * record, so a begin of the same id for another card finds it. */
struct live_claim {
	dd_entry d; /* state DD_CLAIM; its okey is whole (VIGIL_ID_MAX + 1 bytes of id) */
	bool     held;
};

#define DD_OF(kp) ((dd_entry *)(void *)((char *)(kp) - offsetof(dd_entry, k)))
#define DD_VERSION_LEN 72 /* sizeof store_outcome.rules_version */
#define DD_KEY_END(len) ((offsetof(dd_entry, k) + offsetof(okey, id) + (len) + 1 + 7) / 8 * 8)
#define DD_SIZE(len, nhits) (DD_KEY_END(len) + (size_t)(nhits) * sizeof(dd_hit))
/* After the hits, when a model scored: the score (a double), then the
 * reasons, packed (copied in and out with memcpy: not aligned). */
#define DD_MODEL 0x80u
/* The transaction was late when first scored (store_commit_info.late):
 * a retry's reply says so too. */
#define DD_LATE  0x40u
#define DD_NREASONS(m) ((uint32_t)((m) & 0x3fu))
_Static_assert(STORE_MAX_REASONS <= 0x3f, "reasons fit under DD_LATE");
#define DD_REASON_BYTES (4 + 4 + 8)
#define DD_MODEL_BYTES(nreasons) (8 + (size_t)(nreasons) * DD_REASON_BYTES)

/* A hit as a record keeps it: the rule's name interned (dd_str), 16 bytes
 * where a store_hit is 72 (most of an alerting record was its hits'
 * names). */
typedef struct dd_hit {
	const char *rule; /* interned (dd_str, dedupe.c) */
	int32_t     points;
	uint8_t     shadow;
} dd_hit;

_Static_assert(sizeof(((store_outcome *)0)->rules_version) == DD_VERSION_LEN &&
    sizeof(((store_scored *)0)->rules_version) == DD_VERSION_LEN, "rules_version length");
_Static_assert(_Alignof(dd_hit) <= 8, "hits after the id, 8-aligned");
_Static_assert(sizeof(((store_hit *)0)->rule) <= DD_VERSION_LEN, "a rule name fits a dd_str");

/* The watermark (live_watermark, live.h). */
static inline int64_t
live_wm_load(live *lv)
{
	return atomic_load_explicit(&lv->wm, memory_order_acquire);
}

/* A sweep requests the object SWEEP_AHEAD slots on (live.c, "Expiry"). */
#define SWEEP_AHEAD 8

/* dedupe.c: dd_put records an outcome for txn_id (mode: what to do with a
 * live record already there), dd_release drops a record removed from its
 * table (its stripe locked), dd_expire drops up to budget records past the
 * horizon in arrival order (live.c's sweep), dd_sweep_stripe expires one
 * stripe's records wherever they are, dd_chunks_free frees the chunks
 * once every record is released (live_free). */
enum { DD_KEEP_FIRST, DD_REPLACE_FAILED, DD_REPLACE };
vigil_err dd_put(live *lv, live_claim *c, const char *txn_id, size_t len, uint64_t h, uint64_t fp,
    int64_t event_time_ms, double score, vigil_decision decision, uint64_t features_gen,
    const char *rules_version, const store_hit *hits, uint32_t nhits,
    const store_model_outcome *mo, bool late, uint8_t state, int mode);
void dd_release(live *lv, dd_entry *d);
void dd_expire(live *lv, uint32_t budget);
void dd_chunks_free(live *lv);
/* Frees the interned strings (live_free, after the last record). */
void dd_strs_free(live *lv);
void dd_sweep_stripe(live *lv, uint32_t i);

#endif /* VIGIL_STORE_LIVE_OBJ_INT_H */
