/* SPDX-License-Identifier: MIT */
/*
 * batch/int.h - private to batch/: the per-entity accumulators (agg.c), the
 * partial-file codec (part.c) and the shared run state that rebuild.c
 * drives, over the sketch buckets (sketch.h), the lookup index (index.h)
 * and what a rebuild reads (src.h: src.c, and scan.c's fast scan of
 * archived records). Nothing here is a contract outside batch/.
 */
#ifndef VIGIL_BATCH_INT_H
#define VIGIL_BATCH_INT_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <xxhash.h>

/* uthash with XXH3 instead of Jenkins: faster on the per-record path and as
 * well spread. Every table in batch/ is touched only by code including this. */
#define HASH_FUNCTION(keyptr, keylen, hashv) \
	((hashv) = (unsigned)XXH3_64bits((keyptr), (size_t)(keylen)))
#include "hashtab.h"

#include "batch.h"
#include "index.h"
#include "vec.h"
#include "rules.h"
#include "archive.h"
#include "gen.h"
#include "sketch.h"
#include "src.h"

#define BATCH_CARD_MAX_SAMPLES   256  /* amounts kept per card for percentiles */
#define BATCH_CARD_MAX_MERCH     512  /* distinct merchants tracked per card */
#define BATCH_CARD_MAX_COUNTRY   64   /* distinct countries tracked per card */
#define BATCH_CARD_INLINE_COUNTRY 4   /* of them in the card node (most cards have fewer) */
#define BATCH_PRIOR_WEIGHT       100.0 /* pseudo-transactions of the fraud-rate prior */
#define BATCH_ENT_CARD_SAMPLE    64    /* cards a merchant or terminal samples, 30 days */

/* ---- Windows ---- */

enum { BATCH_W7 = 0, BATCH_W30, BATCH_W90, BATCH_NW };

/* The mature windows: the 7 and 30 days before the label maturity. */
enum { BATCH_M7 = 0, BATCH_M30, BATCH_NM };

typedef struct batch_windows {
	int64_t as_of, from;      /* the whole window [from, as_of) */
	int64_t start[BATCH_NW];  /* start of 7/30/90 days, clipped to from */
	int64_t mature_to;        /* as_of - label maturity: labels before it are final */
	int64_t mature_start[BATCH_NM]; /* start of the mature 7/30 days, clipped to from */
} batch_windows;

/* Without batch_windows_mature the mature windows are the 7 and 30 days. */
void batch_windows_init(batch_windows *w, int64_t as_of, int64_t window_ms);
/* Shifts the mature windows by the label maturity (>= 0). */
void batch_windows_mature(batch_windows *w, int64_t maturity_ms);

/* ---- Big zeroed allocations (agg.c) ---- */

/*
 * The aggregation state (card slabs, the index slots) is a few hundred MB
 * read at random: with 4 KiB pages nearly every lookup also missed the TLB,
 * and faulting the pages in one by one cost ~7% of a rebuild. Regions from
 * batch_big_alloc are mapped directly, aligned to 2 MiB and advised as
 * transparent huge pages (a hint: without THP they are ordinary pages).
 */
#define BATCH_BIG_ALIGN ((size_t)2 << 20)

void *batch_big_alloc(size_t n);        /* n zeroed bytes, or NULL */
void  batch_big_free(void *p, size_t n); /* n as allocated; NULL is a no-op */

/* ---- Card memory pool (agg.c) ---- */

/*
 * A worker makes ~6 small allocations per card as its arrays grow (4, 8,
 * 16 ... elements) and frees them all at the end; malloc's bookkeeping for
 * that was ~8% of a rebuild. The pool carves card nodes and arrays from
 * 2 MiB slabs, keeps outgrown arrays on free lists by size class for the
 * next card, and frees only the slabs (batch_big_alloc: huge pages
 * where the kernel gives them). Arrays hold 16-byte elements
 * (batch_sample, batch_merch_cnt), 4 << k of them for class k.
 */
#define BATCH_POOL_CLASSES 8 /* 4 .. 512 elements */
#define BATCH_POOL_SLAB    BATCH_BIG_ALIGN

typedef struct batch_pool {
	unsigned char *cur;    /* bump region of the newest slab */
	size_t         left;
	void          *slabs;  /* each slab's first bytes link to the next */
	void          *free_[BATCH_POOL_CLASSES];
} batch_pool;

void batch_pool_fini(batch_pool *p); /* frees every slab; nothing from p stays valid */
/* n zeroed, 16-aligned bytes that live until batch_pool_fini (NULL on
 * ENOMEM or n over a slab): the labels of pass 1 (pass.c). */
void *batch_pool_alloc(batch_pool *p, size_t n);

/* ---- Card accumulator (agg.c) ---- */

typedef struct batch_sample {
	uint64_t h;   /* xxh64(txn_id): the kept samples are the smallest h */
	double   amount;
} batch_sample;

typedef struct batch_merch_cnt {
	uint64_t h;
	uint32_t n;
} batch_merch_cnt;

typedef struct batch_country_cnt {
	char     cc[2];
	uint32_t n;
} batch_country_cnt;

/*
 * A card's accumulator. Laid out for the per-record path: the key sits
 * right before the struct in the same allocation (batch_card_new), then
 * the fields every record updates, the first countries and the hour
 * histogram, so one record touches about five adjacent cache lines
 * (BATCH_CARD_HOT_BYTES from the struct's start, plus the key's line).
 * Countries beyond the first BATCH_CARD_INLINE_COUNTRY move to a grown
 * array like the samples (a node with room for all 64 was 752 bytes, most
 * of it never touched but zeroed by the kernel all the same).
 * A worker finds its cards through its index and lists them in an array
 * (no uthash handle: inserting into uthash touched a cold line per card,
 * and every table expansion all of them).
 */
typedef struct batch_card {
	char    *key;                  /* card_id; also the start of the allocation */
	uint32_t count[BATCH_NW];
	uint32_t fraud90;
	double   sum[BATCH_NW];
	double   mean30, m2_30, mean90, m2_90; /* Welford, archive order */
	double   max90;
	int64_t  first_seen;
	uint32_t nsamples, cap_samples;  /* max-heap on h */
	uint32_t nmerch, cap_merch;      /* sorted by h */
	batch_sample *samples;
	batch_merch_cnt *merch;
	uint32_t ncountry, cap_country;  /* in first-seen order */
	bool     merch_saturated;
	batch_pool *pool;              /* where the node and arrays live; NULL: malloc */
	batch_country_cnt *country;    /* country_inline, or grown (pool arrays, 2 per element) */
	batch_country_cnt country_inline[BATCH_CARD_INLINE_COUNTRY];
	uint32_t hour[24];
} batch_card;

#define BATCH_CARD_HOT_BYTES 288

/* One scored transaction reduced to what the profiles need. */
typedef struct batch_event {
	int64_t     t;
	double      amount;     /* major units */
	int64_t     amount_milli; /* amount * 1000, exact (4 decimals: rounded) */
	uint64_t    txn_h;      /* xxh64(txn_id) */
	uint64_t    merch_h;    /* xxh64(merchant_id) */
	const char *country;    /* "" if absent */
	int         label;      /* -1 none, 0 legit, 1 fraud (known at as_of) */
	uint64_t    card_h;     /* xxh64(card_id), seed 0 (batch_ent's card sample) */
} batch_event;

/* A card for key[0..len) (NULL on ENOMEM), from pool (NULL: malloc).
 * batch_card_free returns its memory (to the pool's free lists; a pooled
 * node itself goes with the pool). */
batch_card *batch_card_new(batch_pool *pool, const char *key, size_t len);
void        batch_card_free(batch_card *c);
vigil_err   batch_card_add(batch_card *c, const batch_windows *w, const batch_event *e);
/* For a loop computing the profiles of cards v[0..n) in order, at i:
 * starts loading the nodes a few cards ahead and, further along, the
 * arrays of the nodes loaded earlier (cards in key order are scattered). */
static inline void
batch_cards_prefetch(batch_card *const *v, size_t i, size_t n)
{
	const batch_card *c;

	if (i + 16 < n) {
		__builtin_prefetch((const char *)v[i + 16] - 1);
		for (size_t off = 0; off < BATCH_CARD_HOT_BYTES; off += 64)
			__builtin_prefetch((const char *)v[i + 16] + off);
	}
	if (i + 8 < n) {
		c = v[i + 8];
		if (c->samples != NULL)
			__builtin_prefetch(c->samples);
		if (c->merch != NULL)
			__builtin_prefetch(c->merch);
	}
}

/* Final profile (deterministic: depends only on the events and their order). */
void        batch_card_profile(const batch_card *c, store_card_profile *ret_p);
size_t      batch_card_bytes(const batch_card *c);

#ifndef __SIZEOF_INT128__
#error "batch/ needs __int128 (gcc or clang on a 64-bit target): batch_ent.sum30_milli"
#endif

/* Merchant / terminal accumulator: integers only, so partial results from
 * any partitioning merge exactly. The sum of amounts has 128 bits: one
 * amount is below 10^18 thousandths (vigil_txn_validate: amount_minor below
 * 10^15, in a currency without decimals), so ten of them pass INT64_MAX,
 * while 2^32 of them (the most count can hold) stay below 2^92. It comes
 * first, where its 16-byte alignment costs no padding. */
typedef struct batch_ent {
	__int128 sum30_milli;
	uint32_t count[BATCH_NW];
	uint32_t fraud[BATCH_NW];
	uint32_t labelled[BATCH_NW];
	uint32_t mcount[BATCH_NM], mfraud[BATCH_NM]; /* mature windows */
	uint32_t ncards;                   /* the card sample: ascending, distinct */
	uint64_t cards[BATCH_ENT_CARD_SAMPLE];
} batch_ent;

/* Key first in the allocation, then the counters: one or two cache lines
 * per lookup (batch_ent_node_new); the card sample after them is read
 * only at its last element unless a card enters it. */
typedef struct batch_ent_node {
	batch_ent acc;
	char     *key; /* also the start of the allocation */
	UT_hash_handle hh;
} batch_ent_node;

/* A zeroed node for key[0..len) (NULL on ENOMEM); free with batch_ent_node_free. */
batch_ent_node *batch_ent_node_new(const char *key, size_t len);
void            batch_ent_node_free(batch_ent_node *e); /* NULL is a no-op */

/* Bytes before a card or entity node for its key: len + NUL, rounded up
 * to 16 (batch_card_new, batch_ent_node_new). */
static inline size_t
batch_node_key_room(size_t len)
{
	return (len + 1 + 15) & ~(size_t)15;
}

/* Starts loading a card or entity node expected to hold a key of keylen
 * bytes (the one being looked up): the key before it and hot_bytes of the
 * node, each cache line once. Few prefetches matter: the core tracks only
 * so many misses, and a record's lookups already need several. */
static inline void
batch_node_prefetch(const void *node, size_t keylen, size_t hot_bytes)
{
	uintptr_t a = ((uintptr_t)node - batch_node_key_room(keylen)) & ~(uintptr_t)63;
	uintptr_t end = (uintptr_t)node + hot_bytes;

	for (; a < end; a += 64)
		__builtin_prefetch((const void *)a);
}

void batch_ent_add(batch_ent *a, const batch_windows *w, const batch_event *e);
void batch_ent_merge(batch_ent *dst, const batch_ent *src);
/* prior: the global fraud rate of the window (smoothing, docs).
 * reported: the cards with a fraud known at as-of (batch_reported), or
 * NULL (cards_reported_30d 0). */
typedef struct batch_reported batch_reported;
void batch_ent_profile(const batch_ent *a, double prior, const batch_reported *reported,
    store_entity_profile *ret_p);

/* The cards with a fraud known at as-of, by xxh64(card_id): added while
 * the cards are written (batch_card_put), sorted once, then looked up. */
struct batch_reported {
	vigil_vec h;      /* uint64_t; capped at BATCH_REPORTED_MAX */
	uint64_t *bits, mask; /* one bit per mixed hash: most lookups end here */
	bool      inited, sorted;
};
#define BATCH_REPORTED_MAX (64u << 20)
vigil_err batch_reported_add(batch_reported *r, uint64_t card_h); /* ENOMEM, ETOOBIG */
void      batch_reported_sort(batch_reported *r);
bool      batch_reported_has(const batch_reported *r, uint64_t card_h); /* after sort */
void      batch_reported_fini(batch_reported *r);

/* ---- Bad records (pass.c) ---- */

/* Notes the first bad record's place in where: "SEGMENT:OFFSET: WHAT". */
void batch_bad_where(char *where, size_t len, const char *seg, uint64_t off, const char *what);
/*
 * Of two such places, keeps in where the earlier in the archive (by
 * segment name, then offset; an empty one is no place): threads and
 * partitions each find their own first, and the summary names the first of
 * all, whatever --threads or --partition split the work.
 */
void batch_bad_keep(char *where, size_t len, const char *cand);

#endif
