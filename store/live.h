/* SPDX-License-Identifier: MIT */
/*
 * store/live.h - the speed layer (live.c, dedupe.c, keys.c) as store_db
 * (features/db/db.c) drives it: store/'s public interface to its live
 * state, for the serving object above it. The velocity features a lookup
 * computes from it are features/db/velocity.h's, on the objects' layouts
 * (live_view.h). The model, its windows and its exactness argument are in
 * docs/storage.md ("Live state"); in short:
 *
 *   - W, the watermark, is the largest event time applied so far. A
 *     transaction with event time t <= W - 7d is late: scored, archived,
 *     counted in late_events, not applied. The admit decision and the W
 *     update happen under one mutex that also orders the archive write, so
 *     replaying the archive in sequence order takes the same decisions.
 *   - Per card, events are kept in event-time order (ties by arrival);
 *     a lookup at time t sees the events with time <= t already applied,
 *     and an event is inside a window w when t - time < w (an event exactly
 *     1h old is outside the 1h window).
 *   - Everything with time <= W - 14d is unobservable by a transaction that
 *     is not late and is dropped by the sweep, so the live state after any
 *     crash equals a replay of the archive's last 14 days (or the dedupe
 *     horizon, if longer).
 */
#ifndef VIGIL_STORE_LIVE_H
#define VIGIL_STORE_LIVE_H

#include <stdbool.h>
#include <stdint.h>

#include "archive.h"
#include "observe.h"
#include "profile.h"
#include "schema.h"
#include "vigil.h"

#define LIVE_WINDOW_MAX_MS   (7 * VIGIL_MS_PER_DAY)  /* largest window = late horizon */
#define LIVE_RETAIN_MS       (2 * LIVE_WINDOW_MAX_MS) /* window + late horizon */
#define LIVE_CARD_STRIPES    4096
#define LIVE_DEDUPE_STRIPES  4096
#define LIVE_ENT_STRIPES     1024
#define LIVE_CARD_CAP        4096   /* exact events per card before folding (docs) */
#define LIVE_ENT_CAP         65536  /* events per merchant/terminal/device/IP (docs) */
#define LIVE_SWEEP_EVERY     512    /* commits per incremental sweep step */
#define LIVE_DD_EXPIRE_EVERY 64     /* commits per walk of the idempotency records' expiry */
#define LIVE_DD_EXPIRE_BUDGET 256   /* ... records it visits at most (live_sweep_maybe) */

typedef struct live live;

/* Entity kinds (live_opts.skip_kinds). */
#define LIVE_KIND_MERCHANT (1u << 0)
#define LIVE_KIND_TERMINAL (1u << 1)
#define LIVE_KIND_DEVICE   (1u << 2)
#define LIVE_KIND_IP       (1u << 3)
#define LIVE_KIND_ALL      0xfu

typedef struct live_opts {
	int64_t  dedupe_horizon_ms; /* >= LIVE_WINDOW_MAX_MS */
	uint64_t max_cards;         /* cap on cards, and on entities of each kind */
	uint32_t skip_kinds;        /* LIVE_KIND_*: entity kinds not kept (0: keep all) */
} live_opts;

typedef struct live_stats {
	uint64_t cards, entities, events, dedupe_entries, late_events;
} live_stats;

vigil_err live_new(const live_opts *opts, live **ret_lv);
void      live_free(live *lv); /* NULL is a no-op */

/* The hashes (XXH3) and lengths of a transaction's ids, computed once per
 * transaction and passed to every call below that keys on them (0 for an
 * absent terminal, device or IP). Ids are NUL-terminated, <= VIGIL_ID_MAX. */
typedef struct live_keys {
	uint64_t txn, card, merchant, terminal, device, ip;
	uint64_t fp; /* live_txn_fingerprint of the transaction */
	uint8_t  ltxn, lcard, lmerchant, lterminal, ldevice, lip;
} live_keys;

void live_keys_compute(live_keys *ret_k, const vigil_txn *txn);
/* What makes a txn_id's retry the same transaction (docs/protocol.md,
 * "Retries"): a hash of the card, merchant and terminal ids, the amount and
 * the currency. Event time, device, IP and location may differ in a retry.
 * k: the keys of txn (its id hashes are reused). */
uint64_t live_txn_fingerprint(const vigil_txn *txn, const live_keys *k);

/* The card's stripe; hold its lock from begin to commit/abort. */
static inline uint32_t
live_card_stripe_k(const live_keys *k)
{
	return (uint32_t)k->card & (LIVE_CARD_STRIPES - 1);
}
void     live_card_lock(live *lv, uint32_t stripe);
void     live_card_unlock(live *lv, uint32_t stripe);

/* VIGIL_EEXIST with *ret_prior filled if txn_id (hashed in k) was recorded
 * within the horizon of W for a transaction with the same fingerprint
 * (k->fp: a retry); VIGIL_ECONFLICT, *ret_prior filled too, if it was
 * recorded for a different one (the id reused); VIGIL_ENOTFOUND otherwise. */
vigil_err live_dedupe_find(live *lv, const char *txn_id, const live_keys *k,
    store_outcome *ret_prior);
/* Records the first outcome of a scored record (its txn_id, event time,
 * fingerprint and outcome; a second put keeps the first); k:
 * the keys of rec->txn, or NULL to hash here; late: the record was late
 * when applied (store_commit_info.late), for a retry's reply. */
vigil_err live_dedupe_put_scored(live *lv, const store_scored *rec, const live_keys *k,
    bool late);

/*
 * Idempotency under concurrency and durability (storage.md,
 * "Idempotency"). A begin claims its txn_id (live_dedupe_begin: the claim
 * sits in the table like a record), so a begin of the same id for another
 * card, in flight at the same time, gets LIVE_DD_CONFLICT; commit turns the
 * claim into the record (live_dedupe_commit), abort drops it. With fsync
 * always the record is pending until the sync covering it returns
 * (live_dedupe_settle): a retry meanwhile waits (live_dedupe_wait), and a
 * retry of a record whose sync failed scores and writes it again (redo)
 * instead of being answered with an outcome that was never durable.
 */
typedef struct live_claim live_claim;

typedef enum live_dd_verdict {
	LIVE_DD_NEW,      /* unknown: claimed for this begin */
	LIVE_DD_RETRY,    /* recorded (durable), same transaction: *ret_prior (EEXIST) */
	LIVE_DD_CONFLICT, /* recorded for another transaction (*ret_prior), or claimed by
	                   * another begin in flight (*ret_prior zeroed) (ECONFLICT) */
	LIVE_DD_WAIT,     /* recorded, same transaction, its sync not yet returned */
	LIVE_DD_REDO,     /* recorded, same transaction, its sync failed: score and
	                   * write it again, not applied again (nothing claimed) */
} live_dd_verdict;

live_claim *live_claim_new(void); /* NULL on ENOMEM */
void        live_claim_free(live_claim *c); /* not held; NULL is a no-op */
/* With the card lock held. VIGIL_OK with *ret_verdict; VIGIL_ENOMEM (the
 * claim could not be inserted); VIGIL_EINVAL (c already held, bad id). */
vigil_err live_dedupe_begin(live *lv, const char *txn_id, const live_keys *k, live_claim *c,
    store_outcome *ret_prior, live_dd_verdict *ret_verdict);
/* Drops a held claim (abort, failed commit); not held: no-op. */
void      live_dedupe_unclaim(live *lv, live_claim *c);
/* Records rec's outcome (k: rec->txn's keys), pending (until settled) or
 * durable: in place of the claim c (held), or of a record whose sync
 * failed (redo, c NULL); a live record otherwise stays. The claim is
 * released whatever happens. ENOMEM only loses the retry shortcut. late:
 * store_commit_info.late of this commit, answered again to a retry. */
vigil_err live_dedupe_commit(live *lv, live_claim *c, const store_scored *rec, const live_keys *k,
    bool pending, bool late);
/* The sync covering txn_id's pending record returned: durable or failed.
 * Wakes the waiters. */
void      live_dedupe_settle(live *lv, const char *txn_id, const live_keys *k, bool durable);
/* Returns once txn_id's record is not pending (no lock may be held). */
void      live_dedupe_wait(live *lv, const char *txn_id, const live_keys *k);

/* With the card stripe locked: the profile cache entry (profile.h) of
 * txn's card, allocated empty on first use; NULL if the card has no live
 * object (nothing cached) or on ENOMEM. Valid until the card stripe is
 * unlocked. Merchants and terminals hold theirs in live_ent_b. */
profile_card_cache *live_card_bcache(live *lv, const vigil_txn *txn, const live_keys *k);

/* Makes room to apply txn's card event later without allocating (card
 * stripe locked). VIGIL_ELIMIT if the card is new and max_cards is reached;
 * VIGIL_ENOMEM. */
vigil_err live_card_reserve(live *lv, const vigil_txn *txn, const live_keys *k);

/* The watermark lock; hold it around the archive enqueue (sequence
 * number) + admit. */
void live_wm_lock(live *lv);
void live_wm_unlock(live *lv);
/* True: t is not late, W advanced to max(W, t). False: late (counted). */
bool live_wm_admit_locked(live *lv, int64_t t);
/* Whether an outcome recorded at event time t is past the dedupe horizon
 * of the watermark now (t <= W - horizon): live_dedupe_find would not see
 * it, so a repeat of its txn_id is scored again. Watermark lock held (for
 * a commit's answer) or not (a lookup's estimate). */
bool live_wm_past_horizon(live *lv, int64_t t);
/* Whether t would be late now (t <= W - 7 d), without counting it or
 * moving W (a lookup's estimate; no lock needed). */
bool live_wm_is_late(live *lv, int64_t t);
int64_t live_watermark(live *lv); /* INT64_MIN before the first event */

/* Applies an admitted transaction: its card event (card stripe locked,
 * reserved with live_card_reserve) and its merchant/terminal/device/IP
 * events (their own locks, taken one at a time). Never fails: an entity
 * that cannot be allocated is skipped (counted in docs as a degradation). */
void live_apply(live *lv, const vigil_txn *txn, const live_keys *k);
/* Takes back what live_apply added for txn (the card stripe locked again
 * by the caller): a commit whose durability wait failed was never
 * acknowledged, so a retry, or the card's next transaction, must not count
 * it. Removes the card's event equal to txn (or one count of the minute
 * bucket it was folded into) and one event of this card at txn's time from
 * each entity. What applying it changed besides (the watermark, events
 * expired or folded to make room) stays: docs/storage.md, "Known
 * limitations". */
void live_unapply(live *lv, const vigil_txn *txn, const live_keys *k);

/* Applies another replica's observation (store_db_observe): its merchant/
 * terminal/device/IP events (their own locks, one at a time), not the
 * card's; the watermark does not move. Never fails, as live_apply. */
void live_observe(live *lv, const store_observation *o);

/* Counts a commit; every LIVE_DD_EXPIRE_EVERY-th expires idempotency
 * records in arrival order (up to LIVE_DD_EXPIRE_BUDGET), every
 * LIVE_SWEEP_EVERY-th runs one incremental step of the stripe sweep (no
 * locks held by the caller). */
void live_sweep_maybe(live *lv);
/* Expires every idempotency record past the horizon, in arrival order,
 * then n incremental steps at once (store_db_maintain, from a timer): each
 * sweeps the next stripe of every table, locking one stripe at a time. */
void live_sweep_steps(live *lv, uint32_t n);
/* Expires everything expirable now, every stripe (tests, tools). */
void live_sweep_all(live *lv);

/* Replays one archived scored record (single-threaded recovery): admit,
 * apply, record outcome, exactly as a live commit did. k: the keys of
 * rec->txn (prefetched first: features/db/velocity.h, vel_prefetch). A
 * record of a transaction whose record is live already (same txn_id and
 * fingerprint: written again after its first sync failed) only replaces
 * the outcome. */
vigil_err live_replay(live *lv, const store_scored *rec, const live_keys *k);

void live_get_stats(live *lv, live_stats *ret_stats);

#endif
