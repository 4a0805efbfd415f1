/* SPDX-License-Identifier: MIT */
/*
 * store/live_view.h - the live state's objects as a lookup reads them: the
 * layouts of cards, entities and struct live, a card's and an entity's
 * window bounds and lookups (the tables themselves: table_view.h). For
 * features/db/ only (the velocity features, velocity.c, and the profile
 * cache, fill.c): tests/layout.sh fails if another component includes a
 * store/ *_view.h. store/ writes the objects (live.c: apply, expiry;
 * dedupe.c); its private headers add the table writes and the idempotency
 * records. A lookup takes the stripe locks it reads under (the card's is
 * the caller's) and writes only an entity's distinct-cards map (moved to
 * its window) and the profile cache entries. Inline: on the scoring path.
 */
#ifndef VIGIL_STORE_LIVE_VIEW_H
#define VIGIL_STORE_LIVE_VIEW_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "live.h"
#include "table_view.h"

#define MS_1M  60000LL
#define MS_10M (10 * MS_1M)
#define MS_1H  (60 * MS_1M)
#define MS_24H (24 * MS_1H)
#define MS_7D  LIVE_WINDOW_MAX_MS

/* ---------------------------------------------------------------------- */
/* Cards. */

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

/* What few cards need, out of the hot object: folded buckets (cards over
 * LIVE_CARD_CAP) and the batch profile cache (live_card_bcache). */
typedef struct live_card_x {
	live_bucket       *bk; /* ascending minute */
	uint32_t           capbk;
	profile_card_cache bc;
} live_card_x;

/* Hot fields first and the key last: a lookup's first cache line holds the
 * counters, the hash and the start of the id. */
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

/* ---------------------------------------------------------------------- */
/* Merchants, terminals, devices and IPs. */

enum { ENT_MERCHANT, ENT_TERMINAL, ENT_DEVICE, ENT_IP, ENT_KINDS };

typedef struct ent_event {
	int64_t  t;
	uint64_t ch; /* XXH3 of card_id */
} ent_event;

/* Most devices, IPs and terminals hold a few events in their window: up to
 * ENT_INLINE live inline, after the key, filling the object's 256 bytes
 * (ENT_LINES cache lines, prefetched together by vel_prefetch_objects). */
#define ENT_INLINE 8
#define ENT_LINES  4
/* Up to this many events in a distinct-cards window are simply scanned;
 * beyond, the entity keeps an ent_dmap (built on first need). */
#define ENT_SCAN_MAX 64

typedef struct live_ent {
	ent_event     *ev; /* inl, or a heap array once more are needed */
	uint32_t       head, n, cap;
	int64_t        newest;
	ent_dmap      *dm; /* NULL until a distinct window held > ENT_SCAN_MAX */
	okey           k;
	ent_event      inl[ENT_INLINE];
} live_ent;

/* Merchants and terminals also hold their batch profile cache entry
 * (features/db/fill.c), in two more lines prefetched with the rest. */
typedef struct live_ent_b {
	live_ent             e;
	profile_entity_cache bc;
} live_ent_b;

#define ENT_B_LINES ((int)((sizeof(live_ent_b) + 63) / 64))
#define ENT_HAS_B(kind) ((kind) == ENT_MERCHANT || (kind) == ENT_TERMINAL)

_Static_assert(sizeof(live_ent) <= 64 * ENT_LINES, "live_ent outgrew its cache lines");

#define ENT_OF(kp) ((live_ent *)(void *)((char *)(kp) - offsetof(live_ent, k)))

typedef struct ent_stripe {
	pthread_mutex_t mu;
	omap            map;
} __attribute__((aligned(64))) ent_stripe;

/* ---------------------------------------------------------------------- */
/* The live state. */

typedef struct dd_stripe {
	pthread_mutex_t mu;
	omap            map;
} __attribute__((aligned(64))) dd_stripe;

/* The idempotency stripe of a txn_id's hash. */
static inline uint32_t
dd_stripe_of(uint64_t h)
{
	return (uint32_t)h & (LIVE_DEDUPE_STRIPES - 1);
}

typedef struct dd_chunk dd_chunk;     /* dedupe.c */
typedef struct dd_str dd_str;         /* dedupe.c */

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
	_Atomic uint64_t commits, sweep_cursor;
	store_outcome   replay_prior; /* live_replay's scratch (single-threaded) */
	pthread_mutex_t dd_wait_mu;  /* live_dedupe_wait sleeps on dd_wait_cv */
	pthread_cond_t  dd_wait_cv;
	_Atomic uint32_t dd_waiters;
	pthread_mutex_t dd_chunk_mu; /* carving from dd_cur, dd_strs, the chunk list */
	dd_chunk       *dd_cur;      /* the chunk being filled, NULL before the first */
	dd_chunk       *dd_head;     /* the chunks in arrival order, oldest first ... */
	dd_chunk       *dd_tail;     /* ... to dd_cur, the newest */
	pthread_mutex_t dd_exp_mu;   /* the expiry cursor (dd_expire): */
	uint32_t        dd_exp_off;  /* the next record's offset in dd_head */
	dd_str         *dd_strs;     /* uthash: rules versions and rule names, interned */
};

/* First index in ev[head .. head+n) whose time is > t (upper bound), over
 * events of `size` bytes whose first field is their int64_t time (a card's
 * live_event, an entity's ent_event). Inline with a constant size, it
 * compiles as if written for the one type. */
static inline uint32_t
ev_upper(const void *ev, size_t size, uint32_t head, uint32_t n, int64_t t)
{
	/* A pointer to an event, converted, points to its first field. */
#define EV_T(i) (*(const int64_t *)(const void *)((const char *)ev + (size_t)(i) * size))
	uint32_t lo = 0, hi = n;

	/* Most lookups and applies are at or after the newest event: one probe
	 * of the newest line instead of a search over cold ones. */
	if (hi == 0 || EV_T(head + hi - 1) <= t)
		return hi;
	/* An entity keeps its events for its longest window, so the bound of
	 * that window is usually before the oldest: one probe of the oldest
	 * line (prefetched with the newest, ent_lock_find). */
	if (EV_T(head) > t)
		return 0;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (EV_T(head + mid) <= t)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
#undef EV_T
}

_Static_assert(offsetof(live_event, t) == 0 && offsetof(ent_event, t) == 0,
    "ev_upper reads an event's time at its start");

static inline uint32_t
card_upper(const live_card *c, int64_t t)
{
	return ev_upper(c->ev, sizeof *c->ev, c->head, c->n, t);
}

static inline uint32_t
ent_upper(const live_ent *e, int64_t t)
{
	return ev_upper(e->ev, sizeof *e->ev, e->head, e->n, t);
}

static inline live_card *
card_find(live *lv, uint32_t stripe, const char *id, size_t len, uint64_t h)
{
	okey *k = omap_find(&lv->cards[stripe].map, h, id, len, offsetof(live_card, k));

	return k != NULL ? CARD_OF(k) : NULL;
}

/* The stripe (locked on return) and live object of txn's entity of kind
 * ENT_MERCHANT or ENT_TERMINAL; NULL object if there is none. The fill
 * reads the object here first (its batch profile entry), before the
 * velocity lookup: so the lines of its newest and oldest events, where
 * that lookup's window bounds begin (ev_upper), are requested here, and
 * their misses overlap the fill. */
static inline live_ent *
ent_lock_find(live *lv, int kind, const vigil_txn *txn, const live_keys *k, ent_stripe **ret_s)
{
	bool        m = kind == ENT_MERCHANT;
	uint64_t    h = m ? k->merchant : k->terminal;
	ent_stripe *s = &lv->ents[kind][h & (LIVE_ENT_STRIPES - 1)];
	okey       *o;
	live_ent   *e;

	pthread_mutex_lock(&s->mu);
	*ret_s = s;
	o = omap_find(&s->map, h, m ? txn->merchant_id : txn->terminal_id,
	    m ? k->lmerchant : k->lterminal, offsetof(live_ent, k));
	if (o == NULL)
		return NULL;
	e = ENT_OF(o);
	if (e->n > 0) {
		__builtin_prefetch(&e->ev[e->head + e->n - 1]);
		__builtin_prefetch(&e->ev[e->head]);
	}
	return e;
}

#endif /* VIGIL_STORE_LIVE_VIEW_H */
