/* SPDX-License-Identifier: MIT */
/*
 * store/private/live_obj_int.h - private to the live state: the objects
 * of struct live (cards, entities, idempotency records) as live.c (windows,
 * features, expiry) and dedupe.c (idempotency) share them.
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

#include "live.h"
#include "omap_int.h"

/* ---------------------------------------------------------------------- */
/* State. */

typedef struct live_event {
	int64_t  t;
	double   amount;
	uint64_t mh; /* XXH3 of merchant_id */
	double   lat, lon;
	char     cc[2]; /* country, "\0\0" if none */
	uint8_t  has_loc;
	uint32_t dh; /* live_device_tag of device_id, 0 if none (in the padding: 48 bytes) */
} live_event;

_Static_assert(sizeof(live_event) == 48, "live_event outgrew 48 bytes");

/* A card event's 32-bit tag of its device (the high half of the id's XXH3,
 * never 0; 0 = no device): enough to tell the handful of devices one card
 * uses in 7 days apart. */
static inline uint32_t
live_device_tag(const live_keys *k)
{
	uint32_t h = (uint32_t)(k->device >> 32);

	if (k->ldevice == 0)
		return 0;
	return h != 0 ? h : 1;
}

/* Events folded out of a card over LIVE_CARD_CAP, one per minute of event
 * time: counts and sums survive, merchant/country/location/device do not. */
typedef struct live_bucket {
	int64_t  minute; /* floor(t / 60000) */
	int64_t  last_ms;
	uint32_t count;
	double   sum;
} live_bucket;

/* Hot fields first and the key last: a lookup's first cache line holds the
 * counters, the hash and the start of the id. */
/* What few cards need, out of the hot object: folded buckets (cards over
 * LIVE_CARD_CAP) and the batch profile cache (live_card_bcache). */
typedef struct live_card_x {
	live_bucket *bk; /* ascending minute */
	uint32_t     capbk;
	live_bcard   bc;
} live_card_x;

typedef struct live_card {
	live_event    *ev; /* ev[head .. head+n), ascending time, ties by arrival */
	uint32_t       head, n, cap;
	uint32_t       nbk; /* buckets in x->bk; x != NULL when > 0 */
	live_card_x   *x;   /* NULL until needed */
	int64_t        newest;
	okey           k;
} live_card;

_Static_assert(sizeof(live_card) <= 128, "live_card outgrew its two cache lines");

#define CARD_OF(kp) ((live_card *)(void *)((char *)(kp) - offsetof(live_card, k)))

typedef struct card_stripe {
	pthread_mutex_t mu;
	omap            map;
} __attribute__((aligned(64))) card_stripe;

enum { ENT_MERCHANT, ENT_TERMINAL, ENT_DEVICE, ENT_IP, ENT_KINDS };


typedef struct ent_event {
	int64_t  t;
	uint64_t ch; /* XXH3 of card_id */
} ent_event;

/* Most devices, IPs and terminals hold a few events in their window: up to
 * ENT_INLINE live inline, after the key, filling the object's 256 bytes
 * (ENT_LINES cache lines, prefetched together by live_prefetch_objects). */
#define ENT_INLINE 8
#define ENT_LINES  4
/* Up to this many events in a distinct-cards window are simply scanned;
 * beyond, the entity keeps an ent_dmap (built on first need). */
#define ENT_SCAN_MAX 64

/*
 * Distinct cards among the entity's stored events with time in (lo, hi]:
 * a count per card hash (open addressing, a slot is empty when cnt is 0,
 * deletion by backward shift). A lookup at t moves the range to
 * (t - window, t] by adding and removing only the events that cross a
 * bound (found by binary search in the time-ordered array); applying an
 * event inside the range adds it, dropping one removes it. For traffic in
 * event-time order each event crosses each bound once.
 */
typedef struct dm_slot {
	uint64_t ch;
	uint32_t cnt;
} dm_slot;

typedef struct ent_dmap {
	int64_t  lo, hi;
	dm_slot *sl;
	uint32_t mask, ndistinct;
} ent_dmap;

typedef struct live_ent {
	ent_event     *ev; /* inl, or a heap array once more are needed */
	uint32_t       head, n, cap;
	int64_t        newest;
	ent_dmap      *dm; /* NULL until a distinct window held > ENT_SCAN_MAX */
	okey           k;
	ent_event      inl[ENT_INLINE];
} live_ent;

/* Merchants and terminals also hold their batch profile cache entry
 * (live_ent_bcache_get), in two more lines prefetched with the rest. */
typedef struct live_ent_b {
	live_ent  e;
	live_bent bc;
} live_ent_b;

#define ENT_B_LINES ((int)((sizeof(live_ent_b) + 63) / 64))
#define ENT_HAS_B(kind) ((kind) == ENT_MERCHANT || (kind) == ENT_TERMINAL)

_Static_assert(sizeof(live_ent) <= 64 * ENT_LINES, "live_ent outgrew its cache lines");

#define ENT_OF(kp) ((live_ent *)(void *)((char *)(kp) - offsetof(live_ent, k)))

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

typedef struct ent_stripe {
	pthread_mutex_t mu;
	omap            map;
} __attribute__((aligned(64))) ent_stripe;

/* An idempotency record takes DD_SIZE(id length, nhits) bytes: the okey is
 * cut after the id's NUL and the hits follow it (dd_hits), so a record of
 * a short id without hits is 64 bytes, not 176 (most of a replay's memory
 * was these). The rules version is shared (dd_version). */
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
	okey           k; /* last: only DD_KEY_END(len) bytes of it exist */
} dd_entry;

/* dd_entry.state. A record is DD_PENDING from its commit until the sync
 * covering it returned (fsync always), then DD_DURABLE or DD_FAILED; a
 * DD_CLAIM is not a record but a begin in flight (a live_claim in its
 * store_ctx, not in a chunk). */
enum { DD_DURABLE = 0, DD_PENDING = 1, DD_FAILED = 2, DD_CLAIM = 3 };

/* A claim on a txn_id between begin and commit/abort: in the map like a
 * record, so a begin of the same id for another card finds it. */
struct live_claim {
	dd_entry d; /* state DD_CLAIM; its okey is whole (VIGIL_ID_MAX + 1 bytes of id) */
	bool     held;
};

#define DD_OF(kp) ((dd_entry *)(void *)((char *)(kp) - offsetof(dd_entry, k)))
#define DD_VERSION_LEN 72 /* sizeof store_outcome.rules_version */
#define DD_KEY_END(len) ((offsetof(dd_entry, k) + offsetof(okey, id) + (len) + 1 + 7) / 8 * 8)
#define DD_SIZE(len, nhits) (DD_KEY_END(len) + (size_t)(nhits) * sizeof(store_hit))
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

/* A rules version as the records share it (DD_VERSION_LEN bytes, the
 * last one NUL): the one last used, or one seen before, or a new copy.
 * Kept until live_free: one per rules version the live state has seen.
 * Under dd_chunk_mu. NULL on ENOMEM. */
typedef struct dd_version {
	struct dd_version *next;
	char               v[DD_VERSION_LEN];
} dd_version;

typedef struct dd_chunk dd_chunk; /* dedupe.c */

typedef struct dd_stripe {
	pthread_mutex_t mu;
	omap            map;
} __attribute__((aligned(64))) dd_stripe;

_Static_assert(sizeof(((store_outcome *)0)->rules_version) == DD_VERSION_LEN &&
    sizeof(((store_scored *)0)->rules_version) == DD_VERSION_LEN, "rules_version length");
_Static_assert(_Alignof(store_hit) <= 8, "hits after the id, 8-aligned");


struct live {
	live_opts       opts;
	card_stripe     cards[LIVE_CARD_STRIPES];
	ent_stripe      ents[ENT_KINDS][LIVE_ENT_STRIPES];
	dd_stripe       dd[LIVE_DEDUPE_STRIPES];
	omap_dir        card_dir[LIVE_CARD_STRIPES];
	omap_dir        ent_dir[ENT_KINDS][LIVE_ENT_STRIPES];
	omap_dir        dd_dir[LIVE_DEDUPE_STRIPES];
	pthread_mutex_t wm_mu;
	_Atomic int64_t wm;
	_Atomic uint64_t ncards, nents, nevents, ndd, nlate;
	_Atomic uint64_t commits, sweep_cursor, dd_sweep_cursor;
	store_outcome   replay_prior; /* live_replay's scratch (single-threaded) */
	pthread_mutex_t dd_wait_mu;  /* live_dedupe_wait sleeps on dd_wait_cv */
	pthread_cond_t  dd_wait_cv;
	_Atomic uint32_t dd_waiters;
	pthread_mutex_t dd_chunk_mu; /* carving from dd_cur, dd_versions */
	dd_chunk       *dd_cur;      /* the chunk being filled, NULL before the first */
	dd_version     *dd_versions; /* most recently used first */
};

/* A distinct-count set reused by every lookup of a thread: a slot is in
 * the current set when its stamp is the current one, so starting a new set
 * costs nothing; only the first 2n slots (n = events that may be added) are
 * used, so a small set stays in L1. */
struct live_scratch {
	struct {
		uint64_t key;
		uint32_t stamp;
	} slot[LIVE_SET_SLOTS];
	uint32_t cur, size, mask;
};

/* The watermark (live_watermark, live.h). */
static inline int64_t
live_wm_load(live *lv)
{
	return atomic_load_explicit(&lv->wm, memory_order_acquire);
}

/* A sweep requests the object SWEEP_AHEAD slots on (live.c, "Expiry"). */
#define SWEEP_AHEAD 8

/* The idempotency stripe of a txn_id's hash. */
static inline uint32_t
dd_stripe_of(uint64_t h)
{
	return (uint32_t)h & (LIVE_DEDUPE_STRIPES - 1);
}

/* dedupe.c: dd_put records an outcome for txn_id (mode: what to do with a
 * live record already there), dd_release drops a record removed from its
 * table, dd_sweep_stripe expires one stripe's records (live.c's sweep). */
enum { DD_KEEP_FIRST, DD_REPLACE_FAILED, DD_REPLACE };
vigil_err dd_put(live *lv, live_claim *c, const char *txn_id, size_t len, uint64_t h, uint64_t fp,
    int64_t event_time_ms, double score, vigil_decision decision, uint64_t features_gen,
    const char *rules_version, const store_hit *hits, uint32_t nhits,
    const store_model_outcome *mo, bool late, uint8_t state, int mode);
void dd_release(live *lv, dd_entry *d);
void dd_sweep_stripe(live *lv, uint32_t i);

#endif /* VIGIL_STORE_LIVE_OBJ_INT_H */
