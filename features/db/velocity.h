/* SPDX-License-Identifier: MIT */
/*
 * features/db/velocity.h - the live velocity features of a lookup: the
 * vel.* slots of schema.def, computed by velocity.c from the live state's
 * objects (store/live_view.h) as of the transaction's event time. A plan
 * (VEL_F_*) says which aggregates a feature mask needs; store_db makes it
 * once per mask (db.c, fill.c). And the prefetches that start a lookup's
 * cache misses early. Windows and exactness: store/live.h and
 * docs/storage.md ("Live state").
 */
#ifndef VIGIL_FEATURES_DB_VELOCITY_H
#define VIGIL_FEATURES_DB_VELOCITY_H

#include <stdint.h>

#include "live.h"
#include "schema.h"
#include "vigil.h"

/* Each flag covers the vel.* slots that one aggregate fills. */
#define VEL_F_CARD        (1u << 0)  /* card counts, sums, small, last, km */
#define VEL_F_CARD_DM     (1u << 1)  /* card distinct merchants 1h/24h */
#define VEL_F_CARD_CC     (1u << 2)  /* card distinct countries, country seen */
#define VEL_F_MERCHANT    (1u << 3)  /* merchant counts */
#define VEL_F_TERMINAL    (1u << 4)  /* terminal count */
#define VEL_F_TERMINAL_D  (1u << 5)  /* terminal distinct cards */
#define VEL_F_DEVICE      (1u << 6)
#define VEL_F_DEVICE_D    (1u << 7)
#define VEL_F_IP          (1u << 8)
#define VEL_F_IP_D        (1u << 9)
#define VEL_F_ALL         0x3ffu

/* The plan for the slots of m (0 if none is a vel.* slot). */
uint32_t vel_plan(const store_feature_mask *m);
/* The entity kinds (LIVE_KIND_*) a plan reads. */
uint32_t vel_plan_kinds(uint32_t plan);
/* Adds to m every slot vel_features may write for plan (a value or
 * missing): the whole vel.* range of each kind the plan touches. */
void     vel_plan_slots(uint32_t plan, store_feature_mask *m);

/* Per-thread scratch of vel_features (distinct counts). NULL on ENOMEM;
 * free: NULL is a no-op. */
typedef struct vel_scratch vel_scratch;
vel_scratch *vel_scratch_new(void);
void         vel_scratch_free(vel_scratch *sc);

/* Starts loading what a begin, lookup or live_replay of the transaction
 * with keys k will touch: its idempotency, card and entity table slots
 * (no lock needed; tables are read with relaxed atomics and only ever
 * prefetched from). Call it first, before taking locks. */
void vel_prefetch(live *lv, const live_keys *k);
/* Then, with the card stripe locked (begin): prefetches the card's object. */
void vel_prefetch_card(live *lv, const live_keys *k);
/* The second step, once the slots are on their way: takes each entity
 * stripe of plan's kinds briefly (one at a time; the card stripe may be
 * held) and prefetches the objects its slots point to, so the entity
 * misses of vel_features overlap instead of following each other. */
void vel_prefetch_objects(live *lv, const live_keys *k, uint32_t plan);

/* Fills the vel.* slots of f (a full schema vector) as of txn's event time,
 * computing the aggregates of plan (others' slots are left unspecified:
 * the caller masks them). The plan's kinds must be kept (not in
 * live_opts.skip_kinds). The card stripe must be locked by the caller. */
void vel_features(live *lv, vel_scratch *sc, const vigil_txn *txn, const live_keys *k,
    vigil_value *f, uint32_t plan);

#endif /* VIGIL_FEATURES_DB_VELOCITY_H */
