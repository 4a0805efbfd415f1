/* SPDX-License-Identifier: MIT */
/*
 * store/live.c - the speed layer: exact live velocity state per card, and
 * counts per merchant, terminal, device and IP (DESIGN.md contract 4).
 *
 * State is in memory; the archive is its write-ahead log (db.c rebuilds it
 * from there on open). Cards live in LIVE_CARD_STRIPES stripes, each a
 * mutex and an open-addressing table keyed by XXH3 of the id: the stripe
 * lock of a card is held by store_score_begin until commit or abort, which
 * is what makes the k-th transaction of a card see exactly the k-1 before
 * it. (Not uthash: a probe here touches one slot line and one object line,
 * where uthash's chains cost a dependent cache miss per element.) Merchants, terminals, devices and IPs have
 * their own stripes, locked briefly and one at a time (never two at once,
 * and always after the card stripe), so there is no lock-order cycle.
 * Idempotency records (txn_id -> first outcome) are a third striped table.
 *
 * Windows, lateness, retention and what "exact" means: live_int.h and
 * docs/storage.md.
 */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "live_int.h"
#include "schema_int.h"
#include "db.h"
#include "mask.h"


#define MS_1M  60000LL
#define MS_10M (10 * MS_1M)
#define MS_1H  (60 * MS_1M)
#define MS_24H (24 * MS_1H)
#define MS_7D  LIVE_WINDOW_MAX_MS

#define SMALL_AMOUNT 5.0 /* vel.card.small_count_10m: amount < 5.00 major units */

/* ---------------------------------------------------------------------- */
/* Keyed tables: linear probing over (hash, object) slots. Every keyed object
 * holds an okey (cards and entities first, idempotency records last, cut
 * after the id's NUL), so a probe compares 8-byte hashes in one contiguous
 * array and touches an object only on a full 64-bit hash match. Only h,
 * len and id[0..len] of an okey are ever read. */

typedef struct okey {
	uint64_t h; /* XXH3 of the id */
	uint8_t  len;
	char     id[VIGIL_ID_MAX + 1];
} okey;

typedef struct oslot {
	uint64_t h; /* slot hash, 0 = empty */
	okey    *v;
} oslot;

/* A copy of a table's array and mask, kept in a dense array per table
 * kind (16 bytes a stripe, not a stripe's 64) for live_prefetch, which
 * reads it without the lock: fewer lines to miss on before the slot
 * prefetches can start. */
typedef struct omap_dir {
	oslot   *sl;
	uint32_t mask;
} omap_dir;

typedef struct omap {
	oslot   *sl; /* hash and object side by side: one cache line per probe */
	uint32_t mask, n;
	omap_dir *dir; /* kept equal to sl and mask */
} omap;

static uint64_t
okey_slot_hash(uint64_t h)
{
	return h ? h : 1;
}

/* Stripes are chosen by the low bits; slots use the high half. */
static uint32_t
omap_home(const omap *m, uint64_t h)
{
	return (uint32_t)(h >> 32) & m->mask;
}

/* back: offset of the okey in its object. On a hash match the object's
 * first line (its hot fields) is prefetched before the key line is read,
 * so the two misses overlap. */
static okey *
omap_find(const omap *m, uint64_t h, const char *id, size_t len, size_t back)
{
	if (m->sl == NULL)
		return NULL;
	h = okey_slot_hash(h);
	for (uint32_t i = omap_home(m, h);; i = (i + 1) & m->mask) {
		uint64_t x = m->sl[i].h;

		if (x == 0)
			return NULL;
		if (x == h) {
			okey *k = m->sl[i].v;

			__builtin_prefetch((char *)k - back);
			__asm__ volatile("" ::: "memory"); /* issue it before the key load */
			if (k->len == len && memcmp(k->id, id, len) == 0)
				return k;
		}
	}
}

/* h: the slot hash of k (okey_slot_hash(k->h)); k itself is not read, so
 * a rehash does not touch every object. */
static void
omap_place(omap *m, uint64_t h, okey *k)
{
	uint32_t i = omap_home(m, h);

	while (m->sl[i].h != 0)
		i = (i + 1) & m->mask;
	m->sl[i].h = h;
	m->sl[i].v = k;
}

/* Inserts k (not present); grows at 3/4 load. VIGIL_ENOMEM leaves m as is. */
static vigil_err
omap_insert(omap *m, okey *k)
{
	if (m->sl == NULL || (uint64_t)(m->n + 1) * 4 > (uint64_t)(m->mask + 1) * 3) {
		uint64_t ncap = m->sl != NULL ? ((uint64_t)m->mask + 1) * 2 : 16;
		omap     nm = { 0 };

		if (ncap > (1ULL << 31))
			return VIGIL_ELIMIT;
		nm.sl = calloc(ncap, sizeof *nm.sl);
		if (nm.sl == NULL)
			return VIGIL_ENOMEM;
		nm.mask = (uint32_t)(ncap - 1);
		if (m->sl != NULL) {
			for (uint64_t i = 0; i <= m->mask; i++)
				if (m->sl[i].h != 0)
					omap_place(&nm, m->sl[i].h, m->sl[i].v);
		}
		nm.n = m->n;
		free(m->sl);
		/* Atomic stores: live_prefetch reads these two without the lock. */
		__atomic_store_n(&m->sl, nm.sl, __ATOMIC_RELAXED);
		__atomic_store_n(&m->mask, nm.mask, __ATOMIC_RELAXED);
		if (m->dir != NULL) {
			__atomic_store_n(&m->dir->sl, nm.sl, __ATOMIC_RELAXED);
			__atomic_store_n(&m->dir->mask, nm.mask, __ATOMIC_RELAXED);
		}
		m->n = nm.n;
	}
	omap_place(m, okey_slot_hash(k->h), k);
	m->n++;
	return VIGIL_OK;
}

/* Empties slot i, shifting later members of its cluster back (no tombstones). */
static void
omap_remove_at(omap *m, uint32_t i)
{
	uint32_t j = i;

	for (;;) {
		uint32_t k;
		bool     stays;

		j = (j + 1) & m->mask;
		if (m->sl[j].h == 0)
			break;
		k = omap_home(m, m->sl[j].h);
		/* Member j stays if its home lies cyclically in (i, j]. */
		stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
		if (!stays) {
			m->sl[i].h = m->sl[j].h;
			m->sl[i].v = m->sl[j].v;
			i = j;
		}
	}
	m->sl[i].h = 0;
	m->sl[i].v = NULL;
	m->n--;
}

static void
omap_remove(omap *m, const okey *k)
{
	for (uint32_t i = omap_home(m, okey_slot_hash(k->h));; i = (i + 1) & m->mask) {
		if (m->sl[i].v == k) {
			omap_remove_at(m, i);
			return;
		}
		if (m->sl[i].h == 0)
			return;
	}
}

/* Prefetches the slot where h's probe starts. Reads the table's array and
 * mask without its lock (relaxed atomics; they may be stale): the address
 * is only prefetched, never dereferenced, so a stale one costs nothing. */
static void
omap_prefetch(omap_dir *m, uint64_t h)
{
	oslot   *sl = __atomic_load_n(&m->sl, __ATOMIC_RELAXED);
	uint32_t mask = __atomic_load_n(&m->mask, __ATOMIC_RELAXED);

	if (sl != NULL)
		__builtin_prefetch(&sl[(uint32_t)(okey_slot_hash(h) >> 32) & mask]);
}

static void
omap_fini(omap *m)
{
	free(m->sl);
	if (m->dir != NULL)
		memset(m->dir, 0, sizeof *m->dir);
	memset(m, 0, sizeof *m);
}

static void
okey_set(okey *k, uint64_t h, const char *id, size_t len)
{
	k->h = h;
	k->len = (uint8_t)len;
	memcpy(k->id, id, len);
	k->id[len] = '\0';
}

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
static uint32_t
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

/* How long each kind keeps events, relative to the entity's newest event:
 * its largest window. */
static const int64_t ent_retain_ms[ENT_KINDS] = { MS_1H, MS_1H, MS_24H, MS_24H };

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
static void *
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

static uint8_t *
dd_model_at(dd_entry *d)
{
	return (uint8_t *)d + DD_SIZE(d->k.len, d->nhits);
}

static void
dd_model_put(dd_entry *d, const store_model_outcome *mo)
{
	uint8_t *p;

	d->model = 0;
	if (mo == NULL || !mo->present)
		return;
	d->model = (uint8_t)(DD_MODEL | mo->nreasons);
	p = dd_model_at(d);
	memcpy(p, &mo->score, 8);
	p += 8;
	for (uint32_t i = 0; i < mo->nreasons; i++, p += DD_REASON_BYTES) {
		memcpy(p, &mo->reasons[i].slot, 4);
		memcpy(p + 4, &mo->reasons[i].contrib, 4);
		memcpy(p + 8, &mo->reasons[i].value, 8);
	}
}

static void
dd_model_get(dd_entry *d, store_model_outcome *ret)
{
	const uint8_t *p;

	memset(ret, 0, sizeof *ret);
	if (!(d->model & DD_MODEL))
		return;
	ret->present = true;
	ret->nreasons = DD_NREASONS(d->model);
	p = dd_model_at(d);
	memcpy(&ret->score, p, 8);
	p += 8;
	for (uint32_t i = 0; i < ret->nreasons; i++, p += DD_REASON_BYTES) {
		memcpy(&ret->reasons[i].slot, p, 4);
		memcpy(&ret->reasons[i].contrib, p + 4, 4);
		memcpy(&ret->reasons[i].value, p + 8, 8);
	}
}

/* The points of a recorded outcome: its active hits' (not kept apart). */
static int32_t
dd_points(const store_hit *hits, uint32_t n)
{
	int32_t points = 0;

	for (uint32_t i = 0; i < n; i++)
		if (!hits[i].shadow)
			points += hits[i].points;
	return points;
}

static store_hit *
dd_hits(dd_entry *d)
{
	return (store_hit *)(void *)((char *)d + DD_KEY_END(d->k.len));
}

/* A rules version as the records share it (DD_VERSION_LEN bytes, the
 * last one NUL): the one last used, or one seen before, or a new copy.
 * Kept until live_free: one per rules version the live state has seen.
 * Under dd_chunk_mu. NULL on ENOMEM. */
typedef struct dd_version {
	struct dd_version *next;
	char               v[DD_VERSION_LEN];
} dd_version;

/* Idempotency records are carved in arrival order out of DD_CHUNK-byte
 * chunks (aligned to their size, so an entry finds its chunk by masking
 * its address); a chunk counts its live entries and is freed when the
 * last one goes, other than the chunk being filled. Records expire in
 * about the order they came, so a put and the sweep's frees cost no
 * malloc/free, and consecutive records share cache lines. */
#define DD_CHUNK ((size_t)64 * 1024)

typedef struct dd_chunk {
	_Atomic uint32_t nlive;
	uint32_t         used; /* bytes from the chunk's start, header included */
} dd_chunk;

typedef struct dd_stripe {
	pthread_mutex_t mu;
	omap            map;
} __attribute__((aligned(64))) dd_stripe;

_Static_assert(DD_SIZE(VIGIL_ID_MAX, STORE_MAX_HITS) + DD_MODEL_BYTES(STORE_MAX_REASONS) +
    sizeof(dd_chunk) <= DD_CHUNK,
    "a dedupe entry must fit a chunk");
_Static_assert(sizeof(((store_outcome *)0)->rules_version) == DD_VERSION_LEN &&
    sizeof(((store_scored *)0)->rules_version) == DD_VERSION_LEN, "rules_version length");
_Static_assert(_Alignof(store_hit) <= 8, "hits after the id, 8-aligned");

static void dd_release(live *lv, dd_entry *d);

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

/* ---------------------------------------------------------------------- */
/* Helpers. */

static uint64_t
id_hash(const char *id, size_t len)
{
	return XXH3_64bits(id, len);
}

void
live_keys_compute(live_keys *ret_k, const vigil_txn *txn)
{
	size_t l;

	l = strnlen(txn->txn_id, sizeof txn->txn_id);
	ret_k->ltxn = (uint8_t)l;
	ret_k->txn = id_hash(txn->txn_id, l);
	l = strnlen(txn->card_id, sizeof txn->card_id);
	ret_k->lcard = (uint8_t)l;
	ret_k->card = id_hash(txn->card_id, l);
	l = strnlen(txn->merchant_id, sizeof txn->merchant_id);
	ret_k->lmerchant = (uint8_t)l;
	ret_k->merchant = id_hash(txn->merchant_id, l);
	l = strnlen(txn->terminal_id, sizeof txn->terminal_id);
	ret_k->lterminal = (uint8_t)l;
	ret_k->terminal = l ? id_hash(txn->terminal_id, l) : 0;
	l = strnlen(txn->device_id, sizeof txn->device_id);
	ret_k->ldevice = (uint8_t)l;
	ret_k->device = l ? id_hash(txn->device_id, l) : 0;
	l = strnlen(txn->ip, sizeof txn->ip);
	ret_k->lip = (uint8_t)l;
	ret_k->ip = l ? id_hash(txn->ip, l) : 0;
	ret_k->fp = live_txn_fingerprint(txn, ret_k);
}

uint64_t
live_txn_fingerprint(const vigil_txn *txn, const live_keys *k)
{
	struct {
		uint64_t card, merchant, terminal;
		int64_t  amount_minor;
		uint8_t  lcard, lmerchant, lterminal;
		char     currency[sizeof txn->currency];
	} f;

	memset(&f, 0, sizeof f); /* padding included: hashed as bytes */
	f.card = k->card;
	f.merchant = k->merchant;
	f.terminal = k->terminal;
	f.amount_minor = txn->amount_minor;
	f.lcard = k->lcard;
	f.lmerchant = k->lmerchant;
	f.lterminal = k->lterminal;
	memcpy(f.currency, txn->currency, strnlen(txn->currency, sizeof f.currency));
	return XXH3_64bits(&f, sizeof f);
}

/* Starts an empty set for at most n additions. */
static void
set_reset(live_scratch *sc, uint32_t n)
{
	uint32_t cap = 64;

	while (cap < LIVE_SET_SLOTS && cap < 2 * (uint64_t)n)
		cap *= 2;
	sc->mask = cap - 1;
	if (++sc->cur == 0) {
		for (uint32_t i = 0; i < LIVE_SET_SLOTS; i++)
			sc->slot[i].stamp = 0;
		sc->cur = 1;
	}
	sc->size = 0;
}

/* Adds k; the set saturates at 3/4 of its slots (distinct counts cap there:
 * 12288 with LIVE_SET_SLOTS slots). */
static void
set_add(live_scratch *sc, uint64_t k)
{
	uint32_t i = (uint32_t)(k ^ (k >> 29)) & sc->mask;

	if (sc->size >= (sc->mask + 1) / 4 * 3)
		return;
	while (sc->slot[i].stamp == sc->cur) {
		if (sc->slot[i].key == k)
			return;
		i = (i + 1) & sc->mask;
	}
	sc->slot[i].stamp = sc->cur;
	sc->slot[i].key = k;
	sc->size++;
}

static int
country_index(const char cc[2])
{
	if (cc[0] < 'A' || cc[0] > 'Z' || cc[1] < 'A' || cc[1] > 'Z')
		return -1;
	return (cc[0] - 'A') * 26 + (cc[1] - 'A');
}

typedef struct ccset {
	uint64_t w[11]; /* 26 * 26 = 676 bits */
	unsigned n;     /* bits set (counted as set: no popcount call per word) */
} ccset;

static void
ccset_add(ccset *s, int idx)
{
	if (idx >= 0) {
		uint64_t b = 1ULL << (idx & 63);

		s->n += (s->w[idx >> 6] & b) == 0;
		s->w[idx >> 6] |= b;
	}
}

static unsigned
ccset_count(const ccset *s)
{
	return s->n;
}

/* First index in ev[head .. head+n) whose time is > t (upper bound). */
static uint32_t
card_upper(const live_card *c, int64_t t)
{
	uint32_t lo = 0, hi = c->n;

	/* Most lookups and applies are at or after the newest event: one probe
	 * of the newest line instead of a search over cold ones. */
	if (hi == 0 || c->ev[c->head + hi - 1].t <= t)
		return hi;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (c->ev[c->head + mid].t <= t)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static uint32_t
ent_upper(const live_ent *e, int64_t t)
{
	uint32_t lo = 0, hi = e->n;

	if (hi == 0 || e->ev[e->head + hi - 1].t <= t)
		return hi;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (e->ev[e->head + mid].t <= t)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static live_card *
card_find(live *lv, uint32_t stripe, const char *id, size_t len, uint64_t h)
{
	okey *k = omap_find(&lv->cards[stripe].map, h, id, len, offsetof(live_card, k));

	return k != NULL ? CARD_OF(k) : NULL;
}

static void
card_free(live *lv, live_card *c)
{
	atomic_fetch_sub_explicit(&lv->nevents, c->n, memory_order_relaxed);
	free(c->ev);
	if (c->x != NULL)
		free(c->x->bk);
	free(c->x);
	free(c);
}

static void
dmap_free(ent_dmap *m)
{
	if (m == NULL)
		return;
	free(m->sl);
	free(m);
}

static void
ent_free(live *lv, live_ent *e)
{
	(void)lv;
	if (e->ev != e->inl)
		free(e->ev);
	dmap_free(e->dm);
	free(e);
}

static uint32_t
dmap_home(const ent_dmap *m, uint64_t ch)
{
	return (uint32_t)(ch ^ (ch >> 32)) & m->mask;
}

static vigil_err
dmap_grow(ent_dmap *m)
{
	uint64_t ncap = m->sl != NULL ? ((uint64_t)m->mask + 1) * 2 : 64;
	dm_slot *old = m->sl;
	uint32_t omask = m->mask;

	if (ncap > (1u << 24))
		return VIGIL_ELIMIT;
	m->sl = calloc(ncap, sizeof *m->sl);
	if (m->sl == NULL) {
		m->sl = old;
		return VIGIL_ENOMEM;
	}
	m->mask = (uint32_t)(ncap - 1);
	for (uint64_t i = 0; old != NULL && i <= omask; i++) {
		if (old[i].cnt != 0) {
			uint32_t j = dmap_home(m, old[i].ch);

			while (m->sl[j].cnt != 0)
				j = (j + 1) & m->mask;
			m->sl[j] = old[i];
		}
	}
	free(old);
	return VIGIL_OK;
}

/* One more event of card ch in the range. */
static vigil_err
dmap_add(ent_dmap *m, uint64_t ch)
{
	uint32_t i;

	if (m->sl == NULL || (uint64_t)(m->ndistinct + 1) * 4 > ((uint64_t)m->mask + 1) * 3) {
		vigil_err rv = dmap_grow(m);

		if (rv != VIGIL_OK)
			return rv;
	}
	for (i = dmap_home(m, ch); m->sl[i].cnt != 0; i = (i + 1) & m->mask) {
		if (m->sl[i].ch == ch) {
			m->sl[i].cnt++;
			return VIGIL_OK;
		}
	}
	m->sl[i].ch = ch;
	m->sl[i].cnt = 1;
	m->ndistinct++;
	return VIGIL_OK;
}

/* One event of card ch fewer in the range (it was counted). */
static void
dmap_sub(ent_dmap *m, uint64_t ch)
{
	uint32_t i, j;

	for (i = dmap_home(m, ch); m->sl[i].cnt != 0; i = (i + 1) & m->mask)
		if (m->sl[i].ch == ch)
			break;
	if (m->sl[i].cnt == 0)
		return; /* not counted: cannot happen while the map is consistent */
	if (--m->sl[i].cnt > 0)
		return;
	m->ndistinct--;
	/* Backward-shift deletion, as omap_remove_at. */
	for (j = i;;) {
		uint32_t k;
		bool     stays;

		j = (j + 1) & m->mask;
		if (m->sl[j].cnt == 0)
			break;
		k = dmap_home(m, m->sl[j].ch);
		stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
		if (!stays) {
			m->sl[i] = m->sl[j];
			i = j;
		}
	}
	m->sl[i].cnt = 0;
}

/* ---------------------------------------------------------------------- */
/* Lifecycle. */

vigil_err
live_new(const live_opts *opts, live **ret_lv)
{
	live *lv;

	if (opts->dedupe_horizon_ms < LIVE_WINDOW_MAX_MS || opts->max_cards == 0)
		return VIGIL_EINVAL;
	lv = aligned_alloc(64, (sizeof *lv + 63) / 64 * 64);
	if (lv == NULL)
		return VIGIL_ENOMEM;
	memset(lv, 0, sizeof *lv);
	lv->opts = *opts;
	for (int i = 0; i < LIVE_CARD_STRIPES; i++) {
		pthread_mutex_init(&lv->cards[i].mu, NULL);
		lv->cards[i].map.dir = &lv->card_dir[i];
	}
	for (int k = 0; k < ENT_KINDS; k++) {
		for (int i = 0; i < LIVE_ENT_STRIPES; i++) {
			pthread_mutex_init(&lv->ents[k][i].mu, NULL);
			lv->ents[k][i].map.dir = &lv->ent_dir[k][i];
		}
	}
	for (int i = 0; i < LIVE_DEDUPE_STRIPES; i++) {
		pthread_mutex_init(&lv->dd[i].mu, NULL);
		lv->dd[i].map.dir = &lv->dd_dir[i];
	}
	pthread_mutex_init(&lv->wm_mu, NULL);
	pthread_mutex_init(&lv->dd_chunk_mu, NULL);
	pthread_mutex_init(&lv->dd_wait_mu, NULL);
	{
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&lv->dd_wait_cv, &ca);
		pthread_condattr_destroy(&ca);
	}
	atomic_store(&lv->wm, INT64_MIN);
	*ret_lv = lv;
	return VIGIL_OK;
}

void
live_free(live *lv)
{
	if (lv == NULL)
		return;
	for (int i = 0; i < LIVE_CARD_STRIPES; i++) {
		omap *m = &lv->cards[i].map;

		for (uint64_t j = 0; m->sl != NULL && j <= m->mask; j++)
			if (m->sl[j].h != 0)
				card_free(lv, CARD_OF(m->sl[j].v));
		omap_fini(m);
		pthread_mutex_destroy(&lv->cards[i].mu);
	}
	for (int k = 0; k < ENT_KINDS; k++) {
		for (int i = 0; i < LIVE_ENT_STRIPES; i++) {
			omap *m = &lv->ents[k][i].map;

			for (uint64_t j = 0; m->sl != NULL && j <= m->mask; j++)
				if (m->sl[j].h != 0)
					ent_free(lv, ENT_OF(m->sl[j].v));
			omap_fini(m);
			pthread_mutex_destroy(&lv->ents[k][i].mu);
		}
	}
	for (int i = 0; i < LIVE_DEDUPE_STRIPES; i++) {
		omap *m = &lv->dd[i].map;

		for (uint64_t j = 0; m->sl != NULL && j <= m->mask; j++)
			if (m->sl[j].h != 0 && DD_OF(m->sl[j].v)->state != DD_CLAIM)
				dd_release(lv, DD_OF(m->sl[j].v));
		omap_fini(m);
		pthread_mutex_destroy(&lv->dd[i].mu);
	}
	free(lv->dd_cur);
	while (lv->dd_versions != NULL) {
		dd_version *v = lv->dd_versions;

		lv->dd_versions = v->next;
		free(v);
	}
	pthread_mutex_destroy(&lv->dd_chunk_mu);
	pthread_mutex_destroy(&lv->dd_wait_mu);
	pthread_cond_destroy(&lv->dd_wait_cv);
	pthread_mutex_destroy(&lv->wm_mu);
	free(lv);
}

live_scratch *
live_scratch_new(void)
{
	return calloc(1, sizeof(live_scratch));
}

void
live_scratch_free(live_scratch *sc)
{
	free(sc);
}

uint32_t
live_card_stripe(const char *card_id)
{
	return (uint32_t)id_hash(card_id, strlen(card_id)) & (LIVE_CARD_STRIPES - 1);
}

void
live_card_lock(live *lv, uint32_t stripe)
{
	pthread_mutex_lock(&lv->cards[stripe].mu);
}

void
live_card_unlock(live *lv, uint32_t stripe)
{
	pthread_mutex_unlock(&lv->cards[stripe].mu);
}

/* ---------------------------------------------------------------------- */
/* Watermark. */

void
live_wm_lock(live *lv)
{
	pthread_mutex_lock(&lv->wm_mu);
}

void
live_wm_unlock(live *lv)
{
	pthread_mutex_unlock(&lv->wm_mu);
}

bool
live_wm_admit_locked(live *lv, int64_t t)
{
	int64_t w = atomic_load_explicit(&lv->wm, memory_order_relaxed);

	/* t <= W - 7d, written so it cannot overflow. */
	if (w != INT64_MIN && t <= w - MS_7D) {
		atomic_fetch_add_explicit(&lv->nlate, 1, memory_order_relaxed);
		return false;
	}
	if (t > w)
		atomic_store_explicit(&lv->wm, t, memory_order_release);
	return true;
}

bool
live_wm_is_late(live *lv, int64_t t)
{
	int64_t w = atomic_load_explicit(&lv->wm, memory_order_acquire);

	return w != INT64_MIN && t <= w - MS_7D;
}

bool
live_wm_past_horizon(live *lv, int64_t t)
{
	int64_t w = atomic_load_explicit(&lv->wm, memory_order_acquire);

	/* dd_live's test, negated: t <= W - horizon (no overflow: W is an event
	 * time, the horizon at most 2^32 s) */
	return w != INT64_MIN && t <= w - lv->opts.dedupe_horizon_ms;
}

int64_t
live_watermark(live *lv)
{
	return atomic_load_explicit(&lv->wm, memory_order_acquire);
}

/* Events with time <= cutoff are unobservable by any transaction that is
 * not late (docs/storage.md); INT64_MIN before the first event. */
static int64_t
live_cutoff(live *lv)
{
	int64_t w = live_watermark(lv);

	return w == INT64_MIN ? INT64_MIN : w - LIVE_RETAIN_MS;
}

/* ---------------------------------------------------------------------- */
/* Idempotency. */

static uint32_t
dd_stripe_of(uint64_t h)
{
	return (uint32_t)h & (LIVE_DEDUPE_STRIPES - 1);
}

static bool
dd_live(live *lv, const dd_entry *d)
{
	int64_t w = live_watermark(lv);

	return w == INT64_MIN || d->t > w - lv->opts.dedupe_horizon_ms;
}

vigil_err
live_dedupe_find(live *lv, const char *txn_id, const live_keys *k, store_outcome *ret_prior)
{
	size_t    len = k->ltxn;
	uint64_t  h = k->txn;
	dd_stripe *s = &lv->dd[dd_stripe_of(h)];
	dd_entry  *d;
	okey      *ok;
	vigil_err  rv = VIGIL_ENOTFOUND;

	if (len == 0 || len > VIGIL_ID_MAX)
		return VIGIL_ENOTFOUND;
	pthread_mutex_lock(&s->mu);
	ok = omap_find(&s->map, h, txn_id, len, offsetof(dd_entry, k));
	d = ok != NULL ? DD_OF(ok) : NULL;
	if (d != NULL && d->state != DD_CLAIM && dd_live(lv, d)) {
		memset(ret_prior, 0, sizeof *ret_prior);
		ret_prior->score = d->score;
		ret_prior->decision = (vigil_decision)d->decision;
		ret_prior->features_gen = d->features_gen;
		ret_prior->nhits = d->nhits;
		memcpy(ret_prior->hits, dd_hits(d), d->nhits * sizeof ret_prior->hits[0]);
		ret_prior->points = dd_points(ret_prior->hits, d->nhits);
		memcpy(ret_prior->rules_version, d->rules_version, DD_VERSION_LEN);
		dd_model_get(d, &ret_prior->model);
		ret_prior->late = (d->model & DD_LATE) != 0;
		rv = d->fp == k->fp ? VIGIL_EEXIST : VIGIL_ECONFLICT;
	}
	pthread_mutex_unlock(&s->mu);
	return rv;
}

/* Under dd_chunk_mu: the shared copy of version (DD_VERSION_LEN bytes,
 * the last one taken as NUL), moved to the front. NULL on ENOMEM. */
static const char *
dd_version_locked(live *lv, const char *version)
{
	dd_version **pp, *v;

	for (pp = &lv->dd_versions; (v = *pp) != NULL; pp = &v->next) {
		if (memcmp(v->v, version, DD_VERSION_LEN - 1) == 0) {
			*pp = v->next;
			break;
		}
	}
	if (v == NULL) {
		v = malloc(sizeof *v);
		if (v == NULL)
			return NULL;
		memcpy(v->v, version, DD_VERSION_LEN - 1);
		v->v[DD_VERSION_LEN - 1] = '\0';
	}
	v->next = lv->dd_versions;
	lv->dd_versions = v;
	return v->v;
}

/* An entry for an id of len bytes and nhits hits, with its rules version
 * set. NULL on ENOMEM. */
static dd_entry *
dd_alloc(live *lv, size_t len, uint32_t nhits, size_t extra, const char *version)
{
	size_t      size = DD_SIZE(len, nhits) + extra;
	const char *ver;
	dd_chunk   *c;
	dd_entry   *d;

	pthread_mutex_lock(&lv->dd_chunk_mu);
	ver = lv->dd_versions != NULL &&
	    memcmp(lv->dd_versions->v, version, DD_VERSION_LEN - 1) == 0
	    ? lv->dd_versions->v : dd_version_locked(lv, version);
	if (ver == NULL) {
		pthread_mutex_unlock(&lv->dd_chunk_mu);
		return NULL;
	}
	c = lv->dd_cur;
	if (c == NULL || c->used + size > DD_CHUNK) {
		dd_chunk *nc = aligned_alloc(DD_CHUNK, DD_CHUNK);

		if (nc == NULL) {
			pthread_mutex_unlock(&lv->dd_chunk_mu);
			return NULL;
		}
		/* One count for being the chunk filled, dropped when it is left. */
		atomic_init(&nc->nlive, 1);
		nc->used = sizeof *nc;
		lv->dd_cur = nc;
		if (c != NULL && atomic_fetch_sub_explicit(&c->nlive, 1, memory_order_acq_rel) == 1)
			free(c);
		c = nc;
	}
	d = (dd_entry *)(void *)((char *)c + c->used);
	c->used += (uint32_t)size;
	atomic_fetch_add_explicit(&c->nlive, 1, memory_order_relaxed);
	pthread_mutex_unlock(&lv->dd_chunk_mu);
	d->rules_version = ver;
	return d;
}

/* Gives d back (no longer in its map). */
static void
dd_release(live *lv, dd_entry *d)
{
	dd_chunk *c = (dd_chunk *)(void *)((uintptr_t)d & ~(uintptr_t)(DD_CHUNK - 1));

	(void)lv;
	if (atomic_fetch_sub_explicit(&c->nlive, 1, memory_order_acq_rel) == 1)
		free(c);
}

/* Replaces the map's pointer to old's okey by nk's (same id, so the same
 * slot hash): a claim becomes a record, a record its successor, in place. */
static void
omap_swap(omap *m, const okey *old, okey *nk)
{
	for (uint32_t i = omap_home(m, okey_slot_hash(old->h));; i = (i + 1) & m->mask) {
		if (m->sl[i].v == old) {
			m->sl[i].v = nk;
			return;
		}
		if (m->sl[i].h == 0)
			return;
	}
}

/* How dd_put treats a live record already there for the id. */
enum { DD_KEEP_FIRST, DD_REPLACE_FAILED, DD_REPLACE };

/* Records an outcome (the fields of a store_outcome, passed apart so a
 * scored record is not first copied into a 4.7 KB store_outcome), in
 * state: replacing the claim c if it is held, an expired record always,
 * and a live one as mode says. */
static vigil_err
dd_put(live *lv, live_claim *c, const char *txn_id, size_t len, uint64_t h, uint64_t fp,
    int64_t event_time_ms, double score, vigil_decision decision, uint64_t features_gen,
    const char *rules_version, const store_hit *hits, uint32_t nhits,
    const store_model_outcome *mo, bool late, uint8_t state, int mode)
{
	dd_stripe *s;
	dd_entry  *d = NULL, *old = NULL;
	okey      *k;
	vigil_err  rv = VIGIL_OK;

	if (nhits > STORE_MAX_HITS)
		nhits = STORE_MAX_HITS;
	if (len == 0 || len > VIGIL_ID_MAX)
		return VIGIL_EINVAL;
	s = &lv->dd[dd_stripe_of(h)];

	pthread_mutex_lock(&s->mu);
	k = omap_find(&s->map, h, txn_id, len, offsetof(dd_entry, k));
	old = k != NULL ? DD_OF(k) : NULL;
	if (old != NULL && old->state == DD_CLAIM && (c == NULL || old != &c->d))
		goto out; /* another begin's claim (a misuse): leave it */
	if (old != NULL && old->state != DD_CLAIM && dd_live(lv, old) &&
	    (mode == DD_KEEP_FIRST || (mode == DD_REPLACE_FAILED && old->state != DD_FAILED)))
		goto out; /* the first outcome stays */
	if (mo != NULL && mo->nreasons > STORE_MAX_REASONS)
		mo = NULL; /* not from app_score: keep no model part rather than a wrong one */
	d = dd_alloc(lv, len, nhits, mo != NULL && mo->present ? DD_MODEL_BYTES(mo->nreasons) : 0,
	    rules_version);
	if (d == NULL) {
		rv = VIGIL_ENOMEM;
		goto out;
	}
	okey_set(&d->k, h, txn_id, len);
	d->t = event_time_ms;
	d->fp = fp;
	d->score = score;
	d->decision = (uint8_t)decision;
	d->nhits = (uint8_t)nhits;
	d->state = state;
	d->features_gen = features_gen;
	memcpy(dd_hits(d), hits, nhits * sizeof *hits);
	dd_model_put(d, mo);
	if (late)
		d->model |= DD_LATE;
	if (old != NULL) {
		omap_swap(&s->map, &old->k, &d->k);
		if (old->state == DD_CLAIM)
			atomic_fetch_add_explicit(&lv->ndd, 1, memory_order_relaxed);
		else
			dd_release(lv, old);
		old = NULL;
	} else {
		rv = omap_insert(&s->map, &d->k);
		if (rv != VIGIL_OK)
			dd_release(lv, d);
		else
			atomic_fetch_add_explicit(&lv->ndd, 1, memory_order_relaxed);
	}
out:
	/* A claim not turned into a record (ENOMEM, kept first) goes. */
	if (c != NULL && c->held && old == &c->d)
		omap_remove(&s->map, &c->d.k);
	if (c != NULL)
		c->held = false;
	pthread_mutex_unlock(&s->mu);
	return rv;
}

vigil_err
live_dedupe_put(live *lv, const vigil_txn *txn, const store_outcome *o)
{
	live_keys k;

	live_keys_compute(&k, txn);
	return dd_put(lv, NULL, txn->txn_id, k.ltxn, k.txn, k.fp, txn->event_time_ms, o->score,
	    o->decision, o->features_gen, o->rules_version, o->hits, o->nhits, &o->model,
	    o->late, DD_DURABLE, DD_KEEP_FIRST);
}

vigil_err
live_dedupe_put_scored(live *lv, const store_scored *rec, const live_keys *k, bool late)
{
	live_keys rk;

	if (k == NULL) {
		live_keys_compute(&rk, &rec->txn);
		k = &rk;
	}
	return dd_put(lv, NULL, rec->txn.txn_id, k->ltxn, k->txn, k->fp, rec->txn.event_time_ms,
	    rec->score, rec->decision, rec->features_gen, rec->rules_version, rec->hits,
	    rec->nhits, NULL, late, DD_DURABLE, DD_KEEP_FIRST); /* from the archive: no model part */
}

live_claim *
live_claim_new(void)
{
	return calloc(1, sizeof(live_claim));
}

void
live_claim_free(live_claim *c)
{
	free(c);
}

vigil_err
live_dedupe_begin(live *lv, const char *txn_id, const live_keys *k, live_claim *c,
    store_outcome *ret_prior, live_dd_verdict *ret_verdict)
{
	size_t     len = k->ltxn;
	uint64_t   h = k->txn;
	dd_stripe *s = &lv->dd[dd_stripe_of(h)];
	dd_entry  *d;
	okey      *ok;
	vigil_err  rv = VIGIL_OK;

	*ret_verdict = LIVE_DD_NEW;
	if (len == 0 || len > VIGIL_ID_MAX || c->held)
		return VIGIL_EINVAL;
	pthread_mutex_lock(&s->mu);
	ok = omap_find(&s->map, h, txn_id, len, offsetof(dd_entry, k));
	d = ok != NULL ? DD_OF(ok) : NULL;
	if (d != NULL && d->state == DD_CLAIM) {
		/* Another card's begin of this id is in flight (the same card's
		 * would hold the card lock): one of the two is scored. */
		memset(ret_prior, 0, sizeof *ret_prior);
		*ret_verdict = LIVE_DD_CONFLICT;
		goto out;
	}
	if (d != NULL && dd_live(lv, d)) {
		memset(ret_prior, 0, sizeof *ret_prior);
		ret_prior->score = d->score;
		ret_prior->decision = (vigil_decision)d->decision;
		ret_prior->features_gen = d->features_gen;
		ret_prior->nhits = d->nhits;
		memcpy(ret_prior->hits, dd_hits(d), d->nhits * sizeof ret_prior->hits[0]);
		ret_prior->points = dd_points(ret_prior->hits, d->nhits);
		memcpy(ret_prior->rules_version, d->rules_version, DD_VERSION_LEN);
		dd_model_get(d, &ret_prior->model);
		ret_prior->late = (d->model & DD_LATE) != 0;
		*ret_verdict = d->fp != k->fp ? LIVE_DD_CONFLICT : d->state == DD_PENDING ?
		    LIVE_DD_WAIT : d->state == DD_FAILED ? LIVE_DD_REDO : LIVE_DD_RETRY;
		goto out;
	}
	if (d != NULL) { /* expired: make room for the claim */
		omap_remove(&s->map, &d->k);
		dd_release(lv, d);
		atomic_fetch_sub_explicit(&lv->ndd, 1, memory_order_relaxed);
	}
	memset(&c->d, 0, offsetof(dd_entry, k));
	okey_set(&c->d.k, h, txn_id, len);
	c->d.fp = k->fp;
	c->d.state = DD_CLAIM;
	rv = omap_insert(&s->map, &c->d.k);
	c->held = rv == VIGIL_OK;
out:
	pthread_mutex_unlock(&s->mu);
	return rv;
}

void
live_dedupe_unclaim(live *lv, live_claim *c)
{
	dd_stripe *s;

	if (c == NULL || !c->held)
		return;
	s = &lv->dd[dd_stripe_of(c->d.k.h)];
	pthread_mutex_lock(&s->mu);
	omap_remove(&s->map, &c->d.k);
	c->held = false;
	pthread_mutex_unlock(&s->mu);
}

vigil_err
live_dedupe_commit(live *lv, live_claim *c, const store_scored *rec, const live_keys *k,
    bool pending, bool late)
{
	return dd_put(lv, c, rec->txn.txn_id, k->ltxn, k->txn, k->fp, rec->txn.event_time_ms,
	    rec->score, rec->decision, rec->features_gen, rec->rules_version, rec->hits,
	    rec->nhits, &rec->model, late, pending ? DD_PENDING : DD_DURABLE, DD_REPLACE_FAILED);
}

/* The state of txn_id's record, -1 if there is none (or only a claim). */
static int
dd_state(live *lv, const char *txn_id, const live_keys *k)
{
	dd_stripe *s = &lv->dd[dd_stripe_of(k->txn)];
	okey      *ok;
	int        st = -1;

	pthread_mutex_lock(&s->mu);
	ok = omap_find(&s->map, k->txn, txn_id, k->ltxn, offsetof(dd_entry, k));
	if (ok != NULL && DD_OF(ok)->state != DD_CLAIM)
		st = DD_OF(ok)->state;
	pthread_mutex_unlock(&s->mu);
	return st;
}

void
live_dedupe_settle(live *lv, const char *txn_id, const live_keys *k, bool durable)
{
	dd_stripe *s = &lv->dd[dd_stripe_of(k->txn)];
	okey      *ok;

	pthread_mutex_lock(&s->mu);
	ok = omap_find(&s->map, k->txn, txn_id, k->ltxn, offsetof(dd_entry, k));
	if (ok != NULL && DD_OF(ok)->state == DD_PENDING)
		DD_OF(ok)->state = durable ? DD_DURABLE : DD_FAILED;
	pthread_mutex_unlock(&s->mu);
	/* A waiter counts itself before it looks (seq_cst): either it sees
	 * the new state or this sees it and wakes it. */
	if (atomic_load(&lv->dd_waiters) > 0) {
		pthread_mutex_lock(&lv->dd_wait_mu);
		pthread_cond_broadcast(&lv->dd_wait_cv);
		pthread_mutex_unlock(&lv->dd_wait_mu);
	}
}

void
live_dedupe_wait(live *lv, const char *txn_id, const live_keys *k)
{
	atomic_fetch_add(&lv->dd_waiters, 1);
	pthread_mutex_lock(&lv->dd_wait_mu);
	while (dd_state(lv, txn_id, k) == DD_PENDING) {
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += 100 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		(void)pthread_cond_timedwait(&lv->dd_wait_cv, &lv->dd_wait_mu, &ts);
	}
	pthread_mutex_unlock(&lv->dd_wait_mu);
	atomic_fetch_sub(&lv->dd_waiters, 1);
}

/* ---------------------------------------------------------------------- */
/* Cards: reserve, apply, features. */

/* Ensures room for one more event at the end of ev[] (compacting first). */
static vigil_err
card_make_room(live_card *c)
{
	if (c->head + c->n < c->cap)
		return VIGIL_OK;
	if (c->head > 0) {
		memmove(c->ev, c->ev + c->head, c->n * sizeof c->ev[0]);
		c->head = 0;
		if (c->n < c->cap)
			return VIGIL_OK;
	}
	{
		uint32_t    ncap = c->cap ? c->cap * 2 : 4;
		live_event *ne;

		if (ncap > LIVE_CARD_CAP + 1)
			ncap = LIVE_CARD_CAP + 1;
		if (ncap <= c->cap)
			return VIGIL_OK; /* full size; apply folds before inserting */
		ne = realloc(c->ev, ncap * sizeof *ne);
		if (ne == NULL)
			return VIGIL_ENOMEM;
		c->ev = ne;
		c->cap = ncap;
	}
	return VIGIL_OK;
}

#define CARD_PREFETCH_EVENTS 12

vigil_err
live_card_reserve(live *lv, const vigil_txn *txn, const live_keys *k)
{
	size_t     len = k->lcard;
	uint64_t   h = k->card;
	uint32_t   stripe = (uint32_t)h & (LIVE_CARD_STRIPES - 1);
	live_card *c = card_find(lv, stripe, txn->card_id, len, h);

	if (c == NULL) {
		if (atomic_load_explicit(&lv->ncards, memory_order_relaxed) >= lv->opts.max_cards)
			return VIGIL_ELIMIT;
		vigil_err rv;

		c = obj_alloc(sizeof *c);
		if (c == NULL)
			return VIGIL_ENOMEM;
		okey_set(&c->k, h, txn->card_id, len);
		c->newest = INT64_MIN;
		rv = omap_insert(&lv->cards[stripe].map, &c->k);
		if (rv != VIGIL_OK) {
			free(c);
			return rv;
		}
		atomic_fetch_add_explicit(&lv->ncards, 1, memory_order_relaxed);
	}
	/* begin's batch read comes next: the cached profile's lines
	 * (live_card_bcache) are requested together rather than missed one
	 * after the other. */
	if (c->x != NULL) {
		for (size_t off = 0; off < sizeof *c->x; off += 64)
			__builtin_prefetch((const char *)c->x + off);
	}
	/* Folding needs one bucket at most; reserve it too. */
	if (c->n >= LIVE_CARD_CAP && (c->x == NULL || c->nbk == c->x->capbk)) {
		uint32_t     ncap;
		live_bucket *nb;

		if (c->x == NULL && (c->x = calloc(1, sizeof *c->x)) == NULL)
			return VIGIL_ENOMEM;
		ncap = c->x->capbk ? c->x->capbk * 2 : 16;
		nb = realloc(c->x->bk, ncap * sizeof *nb);
		if (nb == NULL)
			return VIGIL_ENOMEM;
		c->x->bk = nb;
		c->x->capbk = ncap;
	}
	/* The lookup that follows scans back from the newest event over the
	 * last 7 days (begin does the LMDB reads in between): its newest
	 * CARD_PREFETCH_EVENTS events are requested now, so their misses
	 * overlap instead of following each other. */
	if (c->n > 0) {
		const char *p = (const char *)&c->ev[c->head + c->n - 1];
		uint32_t    m = c->n < CARD_PREFETCH_EVENTS ? c->n : CARD_PREFETCH_EVENTS;
		const char *stop = (const char *)&c->ev[c->head + c->n - m];

		for (size_t off = 0; off < (size_t)(p - stop); off += 64)
			__builtin_prefetch(p - off);
		__builtin_prefetch(stop);
		/* commit's apply first looks at the oldest one (card_evict) */
		__builtin_prefetch(&c->ev[c->head]);
	}
	return card_make_room(c);
}

live_bcard *
live_card_bcache(live *lv, const vigil_txn *txn, const live_keys *k)
{
	live_card *c = card_find(lv, live_card_stripe_k(k), txn->card_id, k->lcard, k->card);

	if (c == NULL)
		return NULL;
	if (c->x == NULL && (c->x = calloc(1, sizeof *c->x)) == NULL)
		return NULL;
	return &c->x->bc;
}

static void
card_evict(live *lv, live_card *c, int64_t cutoff)
{
	uint32_t k = 0, j = 0;

	while (k < c->n && c->ev[c->head + k].t <= cutoff)
		k++;
	if (k > 0) {
		c->head += k;
		c->n -= k;
		atomic_fetch_sub_explicit(&lv->nevents, k, memory_order_relaxed);
		if (c->n == 0)
			c->head = 0;
	}
	while (j < c->nbk && c->x->bk[j].last_ms <= cutoff)
		j++;
	if (j > 0) {
		memmove(c->x->bk, c->x->bk + j, (c->nbk - j) * sizeof c->x->bk[0]);
		c->nbk -= j;
	}
}

/* Folds the oldest exact event into its minute bucket (room reserved). */
static void
card_fold_oldest(live *lv, live_card *c)
{
	const live_event *e = &c->ev[c->head];
	int64_t           minute = e->t >= 0 ? e->t / MS_1M : -((-e->t + MS_1M - 1) / MS_1M);
	uint32_t          i = c->nbk;

	while (i > 0 && c->x->bk[i - 1].minute > minute)
		i--;
	if (i > 0 && c->x->bk[i - 1].minute == minute) {
		live_bucket *b = &c->x->bk[i - 1];

		b->count++;
		b->sum += e->amount;
		if (e->t > b->last_ms)
			b->last_ms = e->t;
	} else if (c->x != NULL && c->nbk < c->x->capbk) {
		memmove(c->x->bk + i + 1, c->x->bk + i, (c->nbk - i) * sizeof c->x->bk[0]);
		c->x->bk[i] = (live_bucket){ .minute = minute, .last_ms = e->t, .count = 1,
			.sum = e->amount };
		c->nbk++;
	} /* else: no bucket room (allocation failed in reserve): the event is dropped */
	c->head++;
	c->n--;
	atomic_fetch_sub_explicit(&lv->nevents, 1, memory_order_relaxed);
}

static void
card_apply(live *lv, const vigil_txn *txn, const live_keys *k)
{
	uint32_t   stripe = (uint32_t)k->card & (LIVE_CARD_STRIPES - 1);
	live_card *c = card_find(lv, stripe, txn->card_id, k->lcard, k->card);
	live_event ev;
	uint32_t   pos;

	if (c == NULL || card_make_room(c) != VIGIL_OK)
		return; /* reserve failed; the caller did not admit */
	card_evict(lv, c, live_cutoff(lv));
	if (c->n >= LIVE_CARD_CAP) {
		card_fold_oldest(lv, c);
		if (card_make_room(c) != VIGIL_OK)
			return;
	}
	if (c->head + c->n >= c->cap)
		return;
	memset(&ev, 0, sizeof ev);
	ev.t = txn->event_time_ms;
	ev.amount = vigil_txn_amount(txn);
	ev.mh = k->merchant;
	ev.dh = live_device_tag(k);
	if (txn->country[0] != '\0') {
		ev.cc[0] = txn->country[0];
		ev.cc[1] = txn->country[1];
	}
	ev.has_loc = txn->has_location;
	if (txn->has_location) {
		ev.lat = txn->lat;
		ev.lon = txn->lon;
	}
	/* After every event with time <= t: ties are ordered by arrival. */
	pos = card_upper(c, ev.t);
	memmove(&c->ev[c->head + pos + 1], &c->ev[c->head + pos],
	    (c->n - pos) * sizeof c->ev[0]);
	c->ev[c->head + pos] = ev;
	c->n++;
	if (ev.t > c->newest)
		c->newest = ev.t;
	atomic_fetch_add_explicit(&lv->nevents, 1, memory_order_relaxed);
}

typedef struct card_agg {
	uint32_t count[5];
	double   sum[5];
	uint32_t small_10m;
	uint32_t dm_1h, dm_24h;
	ccset    cc_24h, cc_7d;
	bool     country_seen, merchant_seen, device_seen;
	bool     has_prev, has_prev_loc;
	int64_t  prev_t, prev_loc_t;
	int64_t  prev_merchant_t; /* the newest event at this merchant (merchant_seen) */
	double   prev_lat, prev_lon;
} card_agg;

static const int64_t card_windows[5] = { MS_1M, MS_10M, MS_1H, MS_24H, MS_7D };

static void
card_aggregate(const live_card *c, live_scratch *sc, const vigil_txn *txn, uint64_t mh,
    uint32_t dh, uint32_t plan, card_agg *a)
{
	int64_t  t = txn->event_time_ms;
	int      my_cc = txn->country[0] ? country_index(txn->country) : -1;
	bool     dm_1h_done = false;
	bool     want_dm = (plan & LIVE_F_CARD_DM) != 0, want_cc = (plan & LIVE_F_CARD_CC) != 0;
	uint32_t idx;

	memset(a, 0, sizeof *a);
	if (c == NULL) {
		set_reset(sc, 0);
		return;
	}
	idx = card_upper(c, t);
	set_reset(sc, want_dm ? idx : 0);
	for (uint32_t i = idx; i-- > 0;) {
		const live_event *e = &c->ev[c->head + i];
		int64_t           age = t - e->t;
		int               ci;

		if (age >= MS_7D)
			break;
		if (!a->has_prev) {
			a->has_prev = true;
			a->prev_t = e->t;
		}
		if (e->has_loc && !a->has_prev_loc) {
			a->has_prev_loc = true;
			a->prev_loc_t = e->t;
			a->prev_lat = e->lat;
			a->prev_lon = e->lon;
		}
		for (int w = 0; w < 5; w++) {
			if (age < card_windows[w]) {
				a->count[w]++;
				a->sum[w] += e->amount;
			}
		}
		if (age < MS_10M && e->amount < SMALL_AMOUNT)
			a->small_10m++;
		if (age >= MS_1H && !dm_1h_done) {
			a->dm_1h = sc->size;
			dm_1h_done = true;
		}
		if (want_dm && age < MS_24H)
			set_add(sc, e->mh);
		if (want_cc) {
			ci = country_index(e->cc);
			if (age < MS_24H)
				ccset_add(&a->cc_24h, ci);
			ccset_add(&a->cc_7d, ci);
			if (ci >= 0 && ci == my_cc)
				a->country_seen = true;
		}
		if (e->mh == mh && !a->merchant_seen) {
			a->merchant_seen = true;
			a->prev_merchant_t = e->t;
		}
		if (dh != 0 && e->dh == dh)
			a->device_seen = true;
	}
	if (!dm_1h_done)
		a->dm_1h = sc->size;
	a->dm_24h = sc->size;
	/* Folded minutes of a card over the cap: counts and sums only. */
	for (uint32_t j = c->nbk; j-- > 0;) {
		const live_bucket *b = &c->x->bk[j];
		int64_t            age = t - b->last_ms;

		if (b->last_ms > t)
			continue;
		if (age >= MS_7D)
			break;
		if (!a->has_prev || b->last_ms > a->prev_t) {
			a->has_prev = true;
			a->prev_t = b->last_ms;
		}
		for (int w = 0; w < 5; w++) {
			if (age < card_windows[w]) {
				a->count[w] += b->count;
				a->sum[w] += b->sum;
			}
		}
	}
}

/* Entity aggregation: count within w1 and w2, distinct cards within wd. */
typedef struct ent_agg {
	uint32_t c1, c2, distinct;
} ent_agg;

/* t - w, clamped (event times are not validated against overflow here). */
static int64_t
time_minus(int64_t t, int64_t w)
{
	return t < INT64_MIN + w ? INT64_MIN : t - w;
}

/* Events in (a, b] (a < b): indices [ent_upper(a), ent_upper(b)). */
static uint32_t
ent_count_range(const live_ent *e, int64_t a, int64_t b)
{
	return ent_upper(e, b) - ent_upper(e, a);
}

/* Adds (sign > 0) or removes the events with time in (a, b] to/from m. */
static vigil_err
dmap_range(ent_dmap *m, const live_ent *e, int64_t a, int64_t b, int sign)
{
	uint32_t i, end;

	if (a >= b)
		return VIGIL_OK;
	end = ent_upper(e, b);
	for (i = ent_upper(e, a); i < end; i++) {
		uint64_t ch = e->ev[e->head + i].ch;

		if (sign < 0) {
			dmap_sub(m, ch);
		} else {
			vigil_err rv = dmap_add(m, ch);

			if (rv != VIGIL_OK)
				return rv;
		}
	}
	return VIGIL_OK;
}

/* Moves e's distinct map to (lo, hi] (creating it if needed). VIGIL_ENOMEM:
 * the map is dropped (the caller scans instead; the next lookup retries). */
static vigil_err
ent_dmap_move(live_ent *e, int64_t lo, int64_t hi)
{
	ent_dmap *m = e->dm;
	vigil_err rv = VIGIL_OK;

	if (m != NULL && (lo >= m->hi || hi <= m->lo)) {
		/* Disjoint from the range held: start over. */
		if (m->sl != NULL)
			memset(m->sl, 0, ((size_t)m->mask + 1) * sizeof *m->sl);
		m->ndistinct = 0;
		m->lo = m->hi = lo;
	}
	if (m == NULL) {
		m = calloc(1, sizeof *m);
		if (m == NULL)
			return VIGIL_ENOMEM;
		m->lo = m->hi = lo;
		e->dm = m;
	}
	/* Grow first, then shrink, so (lo, hi] is always covered. */
	if (hi > m->hi) {
		rv = dmap_range(m, e, m->hi, hi, +1);
		m->hi = hi;
	}
	if (rv == VIGIL_OK && lo < m->lo) {
		rv = dmap_range(m, e, lo, m->lo, +1);
		m->lo = lo;
	}
	if (rv != VIGIL_OK) {
		dmap_free(m);
		e->dm = NULL;
		return rv;
	}
	if (hi < m->hi) {
		(void)dmap_range(m, e, hi, m->hi, -1);
		m->hi = hi;
	}
	if (lo > m->lo) {
		(void)dmap_range(m, e, m->lo, lo, -1);
		m->lo = lo;
	}
	return VIGIL_OK;
}

/* Distinct cards among e's events with time in (t - wd, t]. */
static uint32_t
ent_distinct(live_ent *e, live_scratch *sc, int64_t t, int64_t wd)
{
	int64_t  lo = time_minus(t, wd);
	uint32_t a = ent_upper(e, lo), b = ent_upper(e, t);

	if (e->dm == NULL && b - a <= ENT_SCAN_MAX) {
		set_reset(sc, b - a);
		for (uint32_t i = a; i < b; i++)
			set_add(sc, e->ev[e->head + i].ch);
		return sc->size;
	}
	if (ent_dmap_move(e, lo, t) == VIGIL_OK)
		return e->dm->ndistinct;
	set_reset(sc, b - a); /* out of memory: scan (saturates, storage.md) */
	for (uint32_t i = a; i < b; i++)
		set_add(sc, e->ev[e->head + i].ch);
	return sc->size;
}

/* The stripe (locked on return) and live object of txn's merchant or
 * terminal; NULL object if there is none. */
static live_ent *
ent_lock_find(live *lv, uint32_t kind, const vigil_txn *txn, const live_keys *k,
    ent_stripe **ret_s)
{
	bool        m = kind == LIVE_KIND_MERCHANT;
	uint64_t    h = m ? k->merchant : k->terminal;
	ent_stripe *s = &lv->ents[m ? ENT_MERCHANT : ENT_TERMINAL][h & (LIVE_ENT_STRIPES - 1)];
	okey       *o;

	pthread_mutex_lock(&s->mu);
	*ret_s = s;
	o = omap_find(&s->map, h, m ? txn->merchant_id : txn->terminal_id,
	    m ? k->lmerchant : k->lterminal, offsetof(live_ent, k));
	return o != NULL ? ENT_OF(o) : NULL;
}

bool
live_ent_bcache_get(live *lv, uint32_t kind, const vigil_txn *txn, const live_keys *k,
    uint64_t tag, live_bent *ret)
{
	ent_stripe *s;
	live_ent   *e = ent_lock_find(lv, kind, txn, k, &s);
	live_bent  *bc = e != NULL ? &((live_ent_b *)(void *)e)->bc : NULL;
	bool        hit = bc != NULL && bc->tag == tag;

	if (hit)
		*ret = *bc;
	pthread_mutex_unlock(&s->mu);
	return hit;
}

void
live_ent_bcache_put(live *lv, uint32_t kind, const vigil_txn *txn, const live_keys *k,
    uint64_t tag, vigil_err rv, const store_entity_profile *p)
{
	ent_stripe *s;
	live_ent   *e = ent_lock_find(lv, kind, txn, k, &s);

	if (e != NULL) {
		live_bent *bc = &((live_ent_b *)(void *)e)->bc;

		bc->tag = tag;
		bc->rv = rv;
		if (rv == VIGIL_OK)
			bc->p = *p;
	}
	pthread_mutex_unlock(&s->mu);
}

/* Counts are two binary searches in the time-ordered events; the distinct
 * count is kept by the entity's map: O(log n) per lookup however busy the
 * entity (amortized, for traffic roughly in event-time order). */
static void
ent_aggregate(live *lv, live_scratch *sc, int kind, const char *id, size_t len, uint64_t h,
    int64_t t, int64_t w1, int64_t w2, int64_t wd, ent_agg *a)
{
	ent_stripe *s = &lv->ents[kind][h & (LIVE_ENT_STRIPES - 1)];
	live_ent   *e;
	okey       *k;

	memset(a, 0, sizeof *a);
	pthread_mutex_lock(&s->mu);
	k = omap_find(&s->map, h, id, len, offsetof(live_ent, k));
	e = k != NULL ? ENT_OF(k) : NULL;
	if (e != NULL && e->n > 0) {
		if (w1 > 0)
			a->c1 = ent_count_range(e, time_minus(t, w1), t);
		if (w2 > 0)
			a->c2 = ent_count_range(e, time_minus(t, w2), t);
		if (wd > 0)
			a->distinct = ent_distinct(e, sc, t, wd);
	}
	pthread_mutex_unlock(&s->mu);
}

static void
ent_prefetch_slot(live *lv, int kind, uint64_t h)
{
	uint32_t i = (uint32_t)h & (LIVE_ENT_STRIPES - 1);

	__builtin_prefetch(&lv->ents[kind][i], 1);
	omap_prefetch(&lv->ent_dir[kind][i], h);
}

void
live_prefetch(live *lv, const live_keys *k)
{
	/* Kinds not kept have empty tables: reading their stripe would be a
	 * miss for nothing. Each stripe's own line (its lock, taken next) is
	 * only prefetched. */
	uint32_t skip = lv->opts.skip_kinds;
	uint32_t d = dd_stripe_of(k->txn), c = (uint32_t)k->card & (LIVE_CARD_STRIPES - 1);

	__builtin_prefetch(&lv->dd[d], 1);
	__builtin_prefetch(&lv->cards[c], 1);
	omap_prefetch(&lv->dd_dir[d], k->txn);
	omap_prefetch(&lv->card_dir[c], k->card);
	if (!(skip & LIVE_KIND_MERCHANT))
		ent_prefetch_slot(lv, ENT_MERCHANT, k->merchant);
	if (k->lterminal != 0 && !(skip & LIVE_KIND_TERMINAL))
		ent_prefetch_slot(lv, ENT_TERMINAL, k->terminal);
	if (k->ldevice != 0 && !(skip & LIVE_KIND_DEVICE))
		ent_prefetch_slot(lv, ENT_DEVICE, k->device);
	if (k->lip != 0 && !(skip & LIVE_KIND_IP))
		ent_prefetch_slot(lv, ENT_IP, k->ip);
}

uint32_t
live_plan(const store_feature_mask *m)
{
	static const struct {
		uint32_t first, last, flag;
	} groups[] = {
		{ STORE_SLOT_VEL_CARD_COUNT_1M, STORE_SLOT_VEL_CARD_SMALL_COUNT_10M, LIVE_F_CARD },
		{ STORE_SLOT_VEL_CARD_DISTINCT_MERCHANTS_1H, STORE_SLOT_VEL_CARD_DISTINCT_MERCHANTS_24H,
		  LIVE_F_CARD | LIVE_F_CARD_DM },
		{ STORE_SLOT_VEL_CARD_DISTINCT_COUNTRIES_24H, STORE_SLOT_VEL_CARD_COUNTRY_SEEN_7D,
		  LIVE_F_CARD | LIVE_F_CARD_CC },
		{ STORE_SLOT_VEL_CARD_MERCHANT_SEEN_7D, STORE_SLOT_VEL_CARD_AMOUNT_TO_MEAN_7D,
		  LIVE_F_CARD },
		{ STORE_SLOT_VEL_MERCHANT_COUNT_1M, STORE_SLOT_VEL_MERCHANT_COUNT_1H, LIVE_F_MERCHANT },
		{ STORE_SLOT_VEL_TERMINAL_COUNT_10M, STORE_SLOT_VEL_TERMINAL_COUNT_10M, LIVE_F_TERMINAL },
		{ STORE_SLOT_VEL_TERMINAL_DISTINCT_CARDS_1H, STORE_SLOT_VEL_TERMINAL_DISTINCT_CARDS_1H,
		  LIVE_F_TERMINAL_D },
		{ STORE_SLOT_VEL_DEVICE_COUNT_1H, STORE_SLOT_VEL_DEVICE_COUNT_1H, LIVE_F_DEVICE },
		{ STORE_SLOT_VEL_DEVICE_DISTINCT_CARDS_24H, STORE_SLOT_VEL_DEVICE_DISTINCT_CARDS_24H,
		  LIVE_F_DEVICE_D },
		{ STORE_SLOT_VEL_IP_COUNT_1H, STORE_SLOT_VEL_IP_COUNT_1H, LIVE_F_IP },
		{ STORE_SLOT_VEL_IP_DISTINCT_CARDS_24H, STORE_SLOT_VEL_IP_DISTINCT_CARDS_24H,
		  LIVE_F_IP_D },
	};
	uint32_t plan = 0;

	_Static_assert(STORE_SLOT_VEL_IP_DISTINCT_CARDS_24H + 1 == STORE_SLOT_HOUR, /* last vel.* row */
	    "a new vel.* slot needs a live_plan group");
	for (size_t g = 0; g < sizeof groups / sizeof groups[0]; g++)
		for (uint32_t i = groups[g].first; i <= groups[g].last; i++)
			if (store_feature_mask_has(m, i))
				plan |= groups[g].flag;
	return plan;
}

uint32_t
live_plan_kinds(uint32_t plan)
{
	return ((plan & LIVE_F_MERCHANT) ? LIVE_KIND_MERCHANT : 0) |
	    ((plan & (LIVE_F_TERMINAL | LIVE_F_TERMINAL_D)) ? LIVE_KIND_TERMINAL : 0) |
	    ((plan & (LIVE_F_DEVICE | LIVE_F_DEVICE_D)) ? LIVE_KIND_DEVICE : 0) |
	    ((plan & (LIVE_F_IP | LIVE_F_IP_D)) ? LIVE_KIND_IP : 0);
}

/* Under m's lock: prefetches the first nlines lines of every object whose
 * slot hash matches h (back: offset of the okey in the object). The probe
 * reads slots only, whose line live_prefetch requested. */
static void
omap_prefetch_objects(const omap *m, uint64_t h, size_t back, int nlines)
{
	uint64_t x = okey_slot_hash(h);

	if (m->sl == NULL)
		return;
	for (uint32_t i = omap_home(m, x); m->sl[i].h != 0; i = (i + 1) & m->mask) {
		if (m->sl[i].h == x) {
			const char *o = (const char *)m->sl[i].v - back;

			for (int l = 0; l < nlines; l++)
				__builtin_prefetch(o + 64 * l);
		}
	}
}

static void
ent_prefetch_object(live *lv, int kind, uint64_t h)
{
	ent_stripe *s = &lv->ents[kind][h & (LIVE_ENT_STRIPES - 1)];

	pthread_mutex_lock(&s->mu);
	omap_prefetch_objects(&s->map, h, offsetof(live_ent, k),
	    ENT_HAS_B(kind) ? ENT_B_LINES : ENT_LINES);
	pthread_mutex_unlock(&s->mu);
}

void
live_prefetch_card(live *lv, const live_keys *k)
{
	omap_prefetch_objects(&lv->cards[live_card_stripe_k(k)].map, k->card,
	    offsetof(live_card, k), 2);
}

void
live_prefetch_objects(live *lv, const live_keys *k, uint32_t plan)
{
	uint32_t kinds = live_plan_kinds(plan) & ~lv->opts.skip_kinds;

	if (kinds & LIVE_KIND_MERCHANT)
		ent_prefetch_object(lv, ENT_MERCHANT, k->merchant);
	if ((kinds & LIVE_KIND_TERMINAL) && k->lterminal != 0)
		ent_prefetch_object(lv, ENT_TERMINAL, k->terminal);
	if ((kinds & LIVE_KIND_DEVICE) && k->ldevice != 0)
		ent_prefetch_object(lv, ENT_DEVICE, k->device);
	if ((kinds & LIVE_KIND_IP) && k->lip != 0)
		ent_prefetch_object(lv, ENT_IP, k->ip);
}

/* vel.card.secs_since_merchant: a card back at a merchant it used within
 * the week (a regular) against one that never was there; the seconds also
 * separate a repeat at the same till (a retry, a split) from a weekly
 * habit. Missing when no live event of the card is at this merchant. */
static void
card_features_merchant(const card_agg *a, int64_t t, vigil_value *f)
{
	f[STORE_SLOT_VEL_CARD_SECS_SINCE_MERCHANT] = a->merchant_seen
	    ? vigil_value_num((double)(t - a->prev_merchant_t) / 1000.0) : vigil_value_missing();
}

/* vel.card.amount_to_mean_24h, _7d: this amount against the card's own
 * recent mean (a cash-out after small tests, a first large purchase on a
 * stolen card), fresher than the nightly card.amount_to_mean_30d. Missing
 * without an earlier transaction in the window or with a mean of 0. */
static void
card_features_amount(const card_agg *a, double amount, vigil_value *f)
{
	static const struct {
		uint32_t slot;
		int      w;
	} win[] = { { STORE_SLOT_VEL_CARD_AMOUNT_TO_MEAN_24H, 3 },
		{ STORE_SLOT_VEL_CARD_AMOUNT_TO_MEAN_7D, 4 } };

	for (size_t i = 0; i < sizeof win / sizeof win[0]; i++) {
		uint32_t n = a->count[win[i].w];
		double   mean = n > 0 ? a->sum[win[i].w] / n : 0.0;

		f[win[i].slot] = mean > 0.0 ? vigil_value_num(amount / mean) : vigil_value_missing();
	}
}

/* The vel.card.* slots of card c (NULL: none yet). */
static void
card_features(const live_card *c, live_scratch *sc, const vigil_txn *txn, const live_keys *k,
    vigil_value *f, uint32_t plan)
{
	card_agg   a;
	int64_t    t = txn->event_time_ms;

	card_aggregate(c, sc, txn, k->merchant, live_device_tag(k), plan, &a);
	for (int w = 0; w < 5; w++) {
		f[STORE_SLOT_VEL_CARD_COUNT_1M + w] = vigil_value_num(a.count[w]);
		f[STORE_SLOT_VEL_CARD_SUM_1M + w] = vigil_value_num(a.sum[w]);
	}
	f[STORE_SLOT_VEL_CARD_SMALL_COUNT_10M] = vigil_value_num(a.small_10m);
	f[STORE_SLOT_VEL_CARD_DISTINCT_MERCHANTS_1H] = vigil_value_num(a.dm_1h);
	f[STORE_SLOT_VEL_CARD_DISTINCT_MERCHANTS_24H] = vigil_value_num(a.dm_24h);
	f[STORE_SLOT_VEL_CARD_DISTINCT_COUNTRIES_24H] = vigil_value_num(ccset_count(&a.cc_24h));
	f[STORE_SLOT_VEL_CARD_DISTINCT_COUNTRIES_7D] = vigil_value_num(ccset_count(&a.cc_7d));
	f[STORE_SLOT_VEL_CARD_COUNTRY_SEEN_7D] = txn->country[0]
	    ? vigil_value_bool(a.country_seen) : vigil_value_missing();
	f[STORE_SLOT_VEL_CARD_MERCHANT_SEEN_7D] = vigil_value_bool(a.merchant_seen);
	f[STORE_SLOT_VEL_CARD_DEVICE_SEEN_7D] = k->ldevice != 0
	    ? vigil_value_bool(a.device_seen) : vigil_value_missing();
	f[STORE_SLOT_VEL_CARD_SECS_SINCE_LAST] = a.has_prev
	    ? vigil_value_num((double)(t - a.prev_t) / 1000.0) : vigil_value_missing();
	if (a.has_prev_loc && txn->has_location) {
		double km = vigil_haversine_km(a.prev_lat, a.prev_lon, txn->lat, txn->lon);
		int64_t dt = t - a.prev_loc_t;

		/* Same-second events: speed over one second, not a division by 0. */
		if (dt < 1000)
			dt = 1000;
		f[STORE_SLOT_VEL_CARD_KM_FROM_LAST] = vigil_value_num(km);
		f[STORE_SLOT_VEL_CARD_KMH_FROM_LAST] = vigil_value_num(km / ((double)dt / 3600000.0));
	} else {
		f[STORE_SLOT_VEL_CARD_KM_FROM_LAST] = vigil_value_missing();
		f[STORE_SLOT_VEL_CARD_KMH_FROM_LAST] = vigil_value_missing();
	}
	card_features_merchant(&a, t, f);
	card_features_amount(&a, vigil_txn_amount(txn), f);
}

/* What live_features below writes, kind by kind: keep the two in step. */
void
live_plan_slots(uint32_t plan, store_feature_mask *m)
{
	static const struct {
		uint32_t flags, first, last;
	} kinds[] = {
		{ LIVE_F_CARD | LIVE_F_CARD_DM | LIVE_F_CARD_CC,
		  STORE_SLOT_VEL_CARD_COUNT_1M, STORE_SLOT_VEL_CARD_AMOUNT_TO_MEAN_7D },
		{ LIVE_F_MERCHANT, STORE_SLOT_VEL_MERCHANT_COUNT_1M, STORE_SLOT_VEL_MERCHANT_COUNT_1H },
		{ LIVE_F_TERMINAL | LIVE_F_TERMINAL_D,
		  STORE_SLOT_VEL_TERMINAL_COUNT_10M, STORE_SLOT_VEL_TERMINAL_DISTINCT_CARDS_1H },
		{ LIVE_F_DEVICE | LIVE_F_DEVICE_D,
		  STORE_SLOT_VEL_DEVICE_COUNT_1H, STORE_SLOT_VEL_DEVICE_DISTINCT_CARDS_24H },
		{ LIVE_F_IP | LIVE_F_IP_D,
		  STORE_SLOT_VEL_IP_COUNT_1H, STORE_SLOT_VEL_IP_DISTINCT_CARDS_24H },
	};

	_Static_assert(STORE_SLOT_VEL_IP_DISTINCT_CARDS_24H + 1 == STORE_SLOT_HOUR, /* last vel.* row */
	    "a new vel.* slot needs a place in live_plan_slots");
	for (size_t g = 0; g < sizeof kinds / sizeof kinds[0]; g++)
		if (plan & kinds[g].flags)
			for (uint32_t i = kinds[g].first; i <= kinds[g].last; i++)
				store_feature_mask_set(m, i);
}

void
live_features(live *lv, live_scratch *sc, const vigil_txn *txn, const live_keys *k,
    vigil_value *f, uint32_t plan)
{
	ent_agg    e;
	int64_t    t = txn->event_time_ms;
	live_card *c = NULL;

	/* The card's newest events are requested first and arrive while the
	 * entities (prefetched by live_prefetch_objects) are aggregated. */
	if (plan & LIVE_F_CARD) {
		c = card_find(lv, live_card_stripe_k(k), txn->card_id, k->lcard, k->card);
		if (c != NULL && c->n > 0) {
			const char *p = (const char *)&c->ev[c->head + c->n - 1];

			__builtin_prefetch(p);
			__builtin_prefetch(p - 64);
		}
	}
	if (plan & LIVE_F_MERCHANT) {
		ent_aggregate(lv, sc, ENT_MERCHANT, txn->merchant_id, k->lmerchant, k->merchant, t,
		    MS_1M, MS_1H, 0, &e);
		f[STORE_SLOT_VEL_MERCHANT_COUNT_1M] = vigil_value_num(e.c1);
		f[STORE_SLOT_VEL_MERCHANT_COUNT_1H] = vigil_value_num(e.c2);
	}
	if ((plan & (LIVE_F_TERMINAL | LIVE_F_TERMINAL_D)) == 0) {
		/* not asked for */
	} else if (txn->terminal_id[0] != '\0') {
		ent_aggregate(lv, sc, ENT_TERMINAL, txn->terminal_id, k->lterminal, k->terminal, t,
		    (plan & LIVE_F_TERMINAL) ? MS_10M : 0, 0,
		    (plan & LIVE_F_TERMINAL_D) ? MS_1H : 0, &e);
		f[STORE_SLOT_VEL_TERMINAL_COUNT_10M] = vigil_value_num(e.c1);
		f[STORE_SLOT_VEL_TERMINAL_DISTINCT_CARDS_1H] = vigil_value_num(e.distinct);
	} else {
		f[STORE_SLOT_VEL_TERMINAL_COUNT_10M] = vigil_value_missing();
		f[STORE_SLOT_VEL_TERMINAL_DISTINCT_CARDS_1H] = vigil_value_missing();
	}
	if ((plan & (LIVE_F_DEVICE | LIVE_F_DEVICE_D)) == 0) {
		/* not asked for */
	} else if (txn->device_id[0] != '\0') {
		ent_aggregate(lv, sc, ENT_DEVICE, txn->device_id, k->ldevice, k->device, t,
		    (plan & LIVE_F_DEVICE) ? MS_1H : 0, 0,
		    (plan & LIVE_F_DEVICE_D) ? MS_24H : 0, &e);
		f[STORE_SLOT_VEL_DEVICE_COUNT_1H] = vigil_value_num(e.c1);
		f[STORE_SLOT_VEL_DEVICE_DISTINCT_CARDS_24H] = vigil_value_num(e.distinct);
	} else {
		f[STORE_SLOT_VEL_DEVICE_COUNT_1H] = vigil_value_missing();
		f[STORE_SLOT_VEL_DEVICE_DISTINCT_CARDS_24H] = vigil_value_missing();
	}
	if ((plan & (LIVE_F_IP | LIVE_F_IP_D)) == 0) {
		/* not asked for */
	} else if (txn->ip[0] != '\0') {
		ent_aggregate(lv, sc, ENT_IP, txn->ip, k->lip, k->ip, t,
		    (plan & LIVE_F_IP) ? MS_1H : 0, 0,
		    (plan & LIVE_F_IP_D) ? MS_24H : 0, &e);
		f[STORE_SLOT_VEL_IP_COUNT_1H] = vigil_value_num(e.c1);
		f[STORE_SLOT_VEL_IP_DISTINCT_CARDS_24H] = vigil_value_num(e.distinct);
	} else {
		f[STORE_SLOT_VEL_IP_COUNT_1H] = vigil_value_missing();
		f[STORE_SLOT_VEL_IP_DISTINCT_CARDS_24H] = vigil_value_missing();
	}
	if (plan & LIVE_F_CARD)
		card_features(c, sc, txn, k, f, plan);
}

/* ---------------------------------------------------------------------- */
/* Entities: apply. */

static void
ent_apply(live *lv, int kind, const char *id, size_t len, uint64_t h, int64_t t,
    uint64_t card_h)
{
	ent_stripe *s = &lv->ents[kind][h & (LIVE_ENT_STRIPES - 1)];
	live_ent   *e;
	okey       *k;
	uint32_t    drop = 0, pos;
	int64_t     cut;

	pthread_mutex_lock(&s->mu);
	k = omap_find(&s->map, h, id, len, offsetof(live_ent, k));
	e = k != NULL ? ENT_OF(k) : NULL;
	if (e == NULL) {
		if (atomic_load_explicit(&lv->nents, memory_order_relaxed) >=
		    lv->opts.max_cards * ENT_KINDS)
			goto out;
		e = obj_alloc(ENT_HAS_B(kind) ? sizeof(live_ent_b) : sizeof *e);
		if (e == NULL)
			goto out;
		okey_set(&e->k, h, id, len);
		e->newest = INT64_MIN;
		e->ev = e->inl;
		e->cap = ENT_INLINE;
		if (omap_insert(&s->map, &e->k) != VIGIL_OK) {
			free(e);
			goto out;
		}
		atomic_fetch_add_explicit(&lv->nents, 1, memory_order_relaxed);
	}
	if (t > e->newest)
		e->newest = t;
	/* Keep the kind's largest window behind the entity's newest event. */
	cut = e->newest - ent_retain_ms[kind];
	if (t <= cut)
		goto out;
	while (drop < e->n && e->ev[e->head + drop].t <= cut)
		drop++;
	/* Saturated: the oldest event makes room (docs/storage.md). */
	if (drop == 0 && e->n == LIVE_ENT_CAP)
		drop = 1;
	if (e->dm != NULL) {
		for (uint32_t i = 0; i < drop; i++) {
			const ent_event *x = &e->ev[e->head + i];

			if (x->t > e->dm->lo && x->t <= e->dm->hi)
				dmap_sub(e->dm, x->ch);
		}
	}
	e->head += drop;
	e->n -= drop;
	if (e->n == 0)
		e->head = 0;
	if (e->head + e->n >= e->cap) {
		/* Compact only when that frees at least half the array, else grow
		 * (up to twice the cap): a busy entity at steady state, dropping
		 * one event per event added, moves O(1) events per apply. */
		if (e->head > 0 && (e->n <= e->cap / 2 || e->cap >= 2 * LIVE_ENT_CAP)) {
			memmove(e->ev, e->ev + e->head, e->n * sizeof e->ev[0]);
			e->head = 0;
		} else {
			uint32_t   ncap = e->cap ? e->cap * 2 : 4;
			ent_event *ne;

			if (ncap > 2 * LIVE_ENT_CAP)
				ncap = 2 * LIVE_ENT_CAP;
			/* On ENOMEM the event is not recorded (storage.md). */
			if (e->ev == e->inl) {
				ne = malloc(ncap * sizeof *ne);
				if (ne == NULL)
					goto out;
				memcpy(ne, e->inl + e->head, e->n * sizeof *ne);
			} else {
				if (e->head > 0) {
					memmove(e->ev, e->ev + e->head, e->n * sizeof e->ev[0]);
					e->head = 0;
				}
				ne = realloc(e->ev, ncap * sizeof *ne);
				if (ne == NULL)
					goto out;
			}
			e->ev = ne;
			e->head = 0;
			e->cap = ncap;
		}
	}
	pos = ent_upper(e, t);
	memmove(&e->ev[e->head + pos + 1], &e->ev[e->head + pos], (e->n - pos) * sizeof e->ev[0]);
	e->ev[e->head + pos] = (ent_event){ .t = t, .ch = card_h };
	e->n++;
	if (e->dm != NULL && t > e->dm->lo && t <= e->dm->hi &&
	    dmap_add(e->dm, card_h) != VIGIL_OK) {
		dmap_free(e->dm); /* rebuilt by the next lookup */
		e->dm = NULL;
	}
out:
	pthread_mutex_unlock(&s->mu);
}

void
live_apply(live *lv, const vigil_txn *txn, const live_keys *k)
{
	int64_t  t = txn->event_time_ms;
	uint32_t skip = lv->opts.skip_kinds;
	uint64_t ch = k->card;

	card_apply(lv, txn, k);
	if ((skip & LIVE_KIND_MERCHANT) == 0)
		ent_apply(lv, ENT_MERCHANT, txn->merchant_id, k->lmerchant, k->merchant, t, ch);
	if ((skip & LIVE_KIND_TERMINAL) == 0 && k->lterminal != 0)
		ent_apply(lv, ENT_TERMINAL, txn->terminal_id, k->lterminal, k->terminal, t, ch);
	if ((skip & LIVE_KIND_DEVICE) == 0 && k->ldevice != 0)
		ent_apply(lv, ENT_DEVICE, txn->device_id, k->ldevice, k->device, t, ch);
	if ((skip & LIVE_KIND_IP) == 0 && k->lip != 0)
		ent_apply(lv, ENT_IP, txn->ip, k->lip, k->ip, t, ch);
}

/* Another replica's transaction: its entity events only (store_db_observe). */
void
live_observe(live *lv, const store_observation *o)
{
	int64_t  t = o->event_time_ms;
	uint32_t skip = lv->opts.skip_kinds;
	size_t   l;

	if ((skip & LIVE_KIND_MERCHANT) == 0) {
		l = strnlen(o->merchant_id, sizeof o->merchant_id);
		ent_apply(lv, ENT_MERCHANT, o->merchant_id, l, id_hash(o->merchant_id, l), t,
		    o->card_hash);
	}
	if ((skip & LIVE_KIND_TERMINAL) == 0 && o->terminal_id[0] != '\0') {
		l = strnlen(o->terminal_id, sizeof o->terminal_id);
		ent_apply(lv, ENT_TERMINAL, o->terminal_id, l, id_hash(o->terminal_id, l), t,
		    o->card_hash);
	}
	if ((skip & LIVE_KIND_DEVICE) == 0 && o->device_id[0] != '\0') {
		l = strnlen(o->device_id, sizeof o->device_id);
		ent_apply(lv, ENT_DEVICE, o->device_id, l, id_hash(o->device_id, l), t,
		    o->card_hash);
	}
	if ((skip & LIVE_KIND_IP) == 0 && o->ip[0] != '\0') {
		l = strnlen(o->ip, sizeof o->ip);
		ent_apply(lv, ENT_IP, o->ip, l, id_hash(o->ip, l), t, o->card_hash);
	}
}

/* ---------------------------------------------------------------------- */
/* Undo (a commit whose durability wait failed). */

/* Removes one event of txn from its card: the newest exact event equal to
 * it (time, amount, merchant, device), or else one count of the minute
 * bucket it was folded into. */
static void
card_unapply(live *lv, const vigil_txn *txn, const live_keys *k)
{
	uint32_t   stripe = (uint32_t)k->card & (LIVE_CARD_STRIPES - 1);
	live_card *c = card_find(lv, stripe, txn->card_id, k->lcard, k->card);
	int64_t    t = txn->event_time_ms;
	double     amount = vigil_txn_amount(txn);
	uint32_t   dh = live_device_tag(k);
	uint32_t   i;

	if (c == NULL)
		return;
	for (i = card_upper(c, t); i > 0 && c->ev[c->head + i - 1].t == t; i--) {
		const live_event *e = &c->ev[c->head + i - 1];

		if (e->amount == amount && e->mh == k->merchant && e->dh == dh) {
			memmove(&c->ev[c->head + i - 1], &c->ev[c->head + i],
			    (c->n - i) * sizeof c->ev[0]);
			c->n--;
			if (c->n == 0)
				c->head = 0;
			atomic_fetch_sub_explicit(&lv->nevents, 1, memory_order_relaxed);
			return;
		}
	}
	{
		int64_t minute = t >= 0 ? t / MS_1M : -((-t + MS_1M - 1) / MS_1M);

		for (i = 0; i < c->nbk; i++) {
			live_bucket *b = &c->x->bk[i];

			if (b->minute == minute && b->count > 0) {
				b->count--;
				b->sum -= amount;
				return;
			}
		}
	}
}

/* Removes one event of card card_h at time t from an entity. */
static void
ent_unapply(live *lv, int kind, const char *id, size_t len, uint64_t h, int64_t t,
    uint64_t card_h)
{
	ent_stripe *s = &lv->ents[kind][h & (LIVE_ENT_STRIPES - 1)];
	live_ent   *e;
	okey       *k;
	uint32_t    i;

	pthread_mutex_lock(&s->mu);
	k = omap_find(&s->map, h, id, len, offsetof(live_ent, k));
	e = k != NULL ? ENT_OF(k) : NULL;
	if (e == NULL)
		goto out;
	for (i = ent_upper(e, t); i > 0 && e->ev[e->head + i - 1].t == t; i--) {
		if (e->ev[e->head + i - 1].ch != card_h)
			continue;
		if (e->dm != NULL && t > e->dm->lo && t <= e->dm->hi)
			dmap_sub(e->dm, card_h);
		memmove(&e->ev[e->head + i - 1], &e->ev[e->head + i],
		    (e->n - i) * sizeof e->ev[0]);
		e->n--;
		if (e->n == 0)
			e->head = 0;
		break;
	}
out:
	pthread_mutex_unlock(&s->mu);
}

void
live_unapply(live *lv, const vigil_txn *txn, const live_keys *k)
{
	int64_t  t = txn->event_time_ms;
	uint32_t skip = lv->opts.skip_kinds;
	uint64_t ch = k->card;

	card_unapply(lv, txn, k);
	if ((skip & LIVE_KIND_MERCHANT) == 0)
		ent_unapply(lv, ENT_MERCHANT, txn->merchant_id, k->lmerchant, k->merchant, t, ch);
	if ((skip & LIVE_KIND_TERMINAL) == 0 && k->lterminal != 0)
		ent_unapply(lv, ENT_TERMINAL, txn->terminal_id, k->lterminal, k->terminal, t, ch);
	if ((skip & LIVE_KIND_DEVICE) == 0 && k->ldevice != 0)
		ent_unapply(lv, ENT_DEVICE, txn->device_id, k->ldevice, k->device, t, ch);
	if ((skip & LIVE_KIND_IP) == 0 && k->lip != 0)
		ent_unapply(lv, ENT_IP, txn->ip, k->lip, k->ip, t, ch);
}

/* ---------------------------------------------------------------------- */
/* Expiry. */

/* A sweep reads the slots in order and the objects they point to at
 * random: the object SWEEP_AHEAD slots on is requested, and for cards the
 * oldest event of the one SWEEP_AHEAD / 2 on (its object is in by then),
 * so the misses overlap instead of following each other. Slots shifted by
 * a removal only make a request useless. */
#define SWEEP_AHEAD 8

static void
sweep_cards(live *lv, uint32_t i, int64_t cutoff)
{
	card_stripe *s = &lv->cards[i];
	omap        *m = &s->map;

	pthread_mutex_lock(&s->mu);
	for (uint64_t j = 0; m->sl != NULL && j <= m->mask;) {
		live_card *c = m->sl[j].v != NULL ? CARD_OF(m->sl[j].v) : NULL;

		if (j + SWEEP_AHEAD <= m->mask && m->sl[j + SWEEP_AHEAD].v != NULL) {
			const char *o = (const char *)CARD_OF(m->sl[j + SWEEP_AHEAD].v);

			__builtin_prefetch(o);
			__builtin_prefetch(o + 64);
		}
		if (j + SWEEP_AHEAD / 2 <= m->mask && m->sl[j + SWEEP_AHEAD / 2].v != NULL) {
			const live_card *n = CARD_OF(m->sl[j + SWEEP_AHEAD / 2].v);

			if (n->n > 0)
				__builtin_prefetch(&n->ev[n->head]);
		}

		if (c != NULL) {
			card_evict(lv, c, cutoff);
			if (c->n == 0 && c->nbk == 0) {
				omap_remove_at(m, (uint32_t)j);
				card_free(lv, c);
				atomic_fetch_sub_explicit(&lv->ncards, 1, memory_order_relaxed);
				continue; /* slot j may now hold a shifted member */
			}
		}
		j++;
	}
	pthread_mutex_unlock(&s->mu);
}

static void
sweep_ents(live *lv, uint32_t i, int64_t cutoff)
{
	for (int k = 0; k < ENT_KINDS; k++) {
		ent_stripe *s = &lv->ents[k][i];
		omap       *m = &s->map;

		pthread_mutex_lock(&s->mu);
		for (uint64_t j = 0; m->sl != NULL && j <= m->mask;) {
			live_ent *e = m->sl[j].v != NULL ? ENT_OF(m->sl[j].v) : NULL;

			if (e != NULL && e->newest <= cutoff) {
				omap_remove_at(m, (uint32_t)j);
				ent_free(lv, e);
				atomic_fetch_sub_explicit(&lv->nents, 1, memory_order_relaxed);
				continue;
			}
			j++;
		}
		pthread_mutex_unlock(&s->mu);
	}
}

static void
sweep_dedupe(live *lv, uint32_t i)
{
	dd_stripe *s = &lv->dd[i];
	omap      *m = &s->map;

	pthread_mutex_lock(&s->mu);
	for (uint64_t j = 0; m->sl != NULL && j <= m->mask;) {
		dd_entry *d = m->sl[j].v != NULL ? DD_OF(m->sl[j].v) : NULL;

		if (j + SWEEP_AHEAD <= m->mask && m->sl[j + SWEEP_AHEAD].v != NULL) {
			const dd_entry *n = DD_OF(m->sl[j + SWEEP_AHEAD].v);

			__builtin_prefetch(&n->t);
			/* its chunk's count, which a release decrements */
			__builtin_prefetch((const void *)((uintptr_t)n & ~(uintptr_t)(DD_CHUNK - 1)), 1);
		}

		if (d != NULL && d->state != DD_CLAIM && !dd_live(lv, d)) {
			omap_remove_at(m, (uint32_t)j);
			dd_release(lv, d);
			atomic_fetch_sub_explicit(&lv->ndd, 1, memory_order_relaxed);
			continue;
		}
		j++;
	}
	pthread_mutex_unlock(&s->mu);
}

/* The next stripe of each table (the cursor is shared by all sweepers). */
static void
sweep_step(live *lv, int64_t cutoff)
{
	uint64_t i = atomic_fetch_add_explicit(&lv->sweep_cursor, 1, memory_order_relaxed);

	sweep_cards(lv, (uint32_t)(i % LIVE_CARD_STRIPES), cutoff);
	sweep_ents(lv, (uint32_t)(i % LIVE_ENT_STRIPES), cutoff);
	sweep_dedupe(lv, (uint32_t)(i % LIVE_DEDUPE_STRIPES));
}

/*
 * The idempotency records are most of the live state (one per transaction
 * of the dedupe horizon, the cards one per card), and one stripe of 4096
 * per step left a full pass to take 2M commits: records long past the
 * horizon stayed (an offline replay of 815k rows kept them all, ~75 MB of
 * its 120 MB peak). So each step also sweeps enough idempotency stripes
 * that every commit pays for about LIVE_DD_SWEEP_VISITS map slots: a pass
 * takes about (map slots / LIVE_DD_SWEEP_VISITS) commits, a fraction of
 * the records it keeps, whatever the traffic rate. Below
 * LIVE_DD_SWEEP_FROM records (a few MB) nothing extra: there the waste is
 * small and most stripes would be scanned empty. Between 0 and
 * LIVE_DEDUPE_STRIPES - 1 stripes besides sweep_step's one.
 */
static uint32_t
dd_sweep_extra(live *lv)
{
	uint64_t ndd = atomic_load_explicit(&lv->ndd, memory_order_relaxed);
	/* map slots per stripe (the maps stay under 3/4 full): 16 or more here */
	uint64_t per = 2 * ndd / LIVE_DEDUPE_STRIPES;
	uint64_t n;

	if (ndd < LIVE_DD_SWEEP_FROM)
		return 0;
	n = (uint64_t)LIVE_SWEEP_EVERY * LIVE_DD_SWEEP_VISITS / per;

	return n >= LIVE_DEDUPE_STRIPES ? LIVE_DEDUPE_STRIPES - 1 : (uint32_t)(n > 0 ? n - 1 : 0);
}

void
live_sweep_maybe(live *lv)
{
	uint64_t n = atomic_fetch_add_explicit(&lv->commits, 1, memory_order_relaxed);
	int64_t  cutoff;

	if (n % LIVE_SWEEP_EVERY != LIVE_SWEEP_EVERY - 1)
		return;
	cutoff = live_cutoff(lv);
	if (cutoff == INT64_MIN)
		return;
	sweep_step(lv, cutoff);
	for (uint32_t k = dd_sweep_extra(lv); k > 0; k--) {
		uint64_t i = atomic_fetch_add_explicit(&lv->dd_sweep_cursor, 1, memory_order_relaxed);

		sweep_dedupe(lv, (uint32_t)(i % LIVE_DEDUPE_STRIPES));
	}
}

void
live_sweep_steps(live *lv, uint32_t n)
{
	int64_t cutoff = live_cutoff(lv);

	if (cutoff == INT64_MIN)
		return;
	while (n-- > 0)
		sweep_step(lv, cutoff);
}

void
live_sweep_all(live *lv)
{
	int64_t cutoff = live_cutoff(lv);

	if (cutoff == INT64_MIN)
		return;
	for (uint32_t i = 0; i < LIVE_CARD_STRIPES; i++)
		sweep_cards(lv, i, cutoff);
	for (uint32_t i = 0; i < LIVE_ENT_STRIPES; i++)
		sweep_ents(lv, i, cutoff);
	for (uint32_t i = 0; i < LIVE_DEDUPE_STRIPES; i++)
		sweep_dedupe(lv, i);
}

/* ---------------------------------------------------------------------- */
/* Recovery and stats. */

vigil_err
live_replay(live *lv, const store_scored *rec)
{
	live_keys     k;
	uint32_t      stripe;
	vigil_err     rv;
	bool          admit;

	live_keys_compute(&k, &rec->txn);
	stripe = live_card_stripe_k(&k);
	live_prefetch(lv, &k);
	live_card_lock(lv, stripe);
	/* The same transaction again while its first record is live: written
	 * again by a retry after the first one's sync failed (a live commit
	 * never writes it otherwise: begin answers the retry). It was applied
	 * once, with the first; its outcome is the one acknowledged. */
	{
		store_outcome *prior = &lv->replay_prior;

		if (live_dedupe_find(lv, rec->txn.txn_id, &k, prior) == VIGIL_EEXIST) {
			live_card_unlock(lv, stripe);
			return dd_put(lv, NULL, rec->txn.txn_id, k.ltxn, k.txn, k.fp,
			    rec->txn.event_time_ms, rec->score, rec->decision, rec->features_gen,
			    rec->rules_version, rec->hits, rec->nhits, NULL, prior->late, DD_DURABLE,
			    DD_REPLACE);
		}
	}
	rv = live_card_reserve(lv, &rec->txn, &k);
	if (rv == VIGIL_ELIMIT)
		rv = VIGIL_OK; /* over max_cards: state cannot hold it, as live */
	if (rv != VIGIL_OK) {
		live_card_unlock(lv, stripe);
		return rv;
	}
	live_wm_lock(lv);
	admit = live_wm_admit_locked(lv, rec->txn.event_time_ms);
	live_wm_unlock(lv);
	if (admit)
		live_apply(lv, &rec->txn, &k);
	live_card_unlock(lv, stripe);
	rv = live_dedupe_put_scored(lv, rec, &k, !admit);
	live_sweep_maybe(lv);
	return rv;
}

void
live_get_stats(live *lv, live_stats *ret_stats)
{
	ret_stats->cards = atomic_load_explicit(&lv->ncards, memory_order_relaxed);
	ret_stats->entities = atomic_load_explicit(&lv->nents, memory_order_relaxed);
	ret_stats->events = atomic_load_explicit(&lv->nevents, memory_order_relaxed);
	ret_stats->dedupe_entries = atomic_load_explicit(&lv->ndd, memory_order_relaxed);
	ret_stats->late_events = atomic_load_explicit(&lv->nlate, memory_order_relaxed);
}
