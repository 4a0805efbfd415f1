/* SPDX-License-Identifier: MIT */
/*
 * store/observe.h - observations from other replicas: what one scored,
 * applied transaction adds to the entity state of the live state (live.h;
 * store_db_observe in features/db/db.h applies one).
 */
#ifndef VIGIL_STORE_OBSERVE_H
#define VIGIL_STORE_OBSERVE_H

#include <stdint.h>

#include "vigil.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Cross-card observations (docs/storage.md, "Observations from other
 * replicas"). With several replicas each card is scored by one of them, but
 * the entity features (merchant, terminal, device, IP counts and distinct
 * cards) need every replica's transactions. An observation is what one
 * scored, applied transaction adds to the entity state: its event time,
 * the hash of its card id and its entity ids; nothing of the card's own
 * state, amount or outcome.
 *
 * store_observation_from_txn: the observation of txn (ids copied, cut to
 * their fields). store_db_observe (features/db/db.h) applies one; each
 * entity keeps its largest window behind its newest event, and one that
 * cannot be allocated is skipped, as for local transactions (live_observe).
 */
typedef struct store_observation {
	int64_t  event_time_ms;
	uint64_t card_hash;                     /* store_card_hash(card_id) */
	char     merchant_id[VIGIL_ID_MAX + 1]; /* required */
	char     terminal_id[VIGIL_ID_MAX + 1]; /* "" = none */
	char     device_id[VIGIL_ID_MAX + 1];   /* "" = none */
	char     ip[VIGIL_IP_MAX + 1];          /* "" = none */
} store_observation;

/* The 64-bit hash the live state keys a card by in entity events. */
uint64_t  store_card_hash(const char *card_id);
void      store_observation_from_txn(const vigil_txn *txn, store_observation *ret_obs);

#ifdef __cplusplus
}
#endif

#endif /* VIGIL_STORE_OBSERVE_H */
