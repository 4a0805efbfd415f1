/* SPDX-License-Identifier: MIT */
/*
 * features/db/health.h - what a store_db (db.h, which includes this header)
 * reports: its counters and whether it can acknowledge transactions now.
 */
#ifndef VIGIL_STORE_HEALTH_H
#define VIGIL_STORE_HEALTH_H

#include <stdbool.h>
#include <stdint.h>

#include "archive.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct store_db store_db;

typedef struct store_db_stats {
	uint64_t live_cards, live_entities, live_events, dedupe_entries;
	uint64_t late_events;    /* older than the largest window: counted, not applied */
	store_archive_stats archive;
} store_db_stats;
/* A snapshot of the counters (cheap; zeros for the parts the db lacks). */
void store_db_get_stats(store_db *db, store_db_stats *ret_stats);

/* Whether the db can acknowledge transactions now: ok is false while the
 * archive is failing (archive.failing; archive says why and since when).
 * Cheap (uncontended mutexes): a health endpoint or a timer may call it
 * often. A memory or read-only db is always ok.
 * The generation fields say which feature generation is served and whether
 * the one CURRENT names was refused (docs/storage.md, "Verification"). A
 * refusal does not make ok false: the db scores on the generation it kept
 * or fell back to (or none: a cold start) and says so here. */
typedef struct store_db_health {
	bool                 ok;
	store_archive_health archive;
	uint64_t             generation;          /* served; 0 = none */
	bool                 generation_verified; /* it matched its CHECKSUM (false: written before checksums, or none) */
	uint64_t             generation_bytes;    /* its data.mdb's size */
	uint64_t             generation_verify_us; /* time its verification took */
	bool                 generation_refused;  /* CURRENT names a generation that is not served */
	uint64_t             refused_generation;  /* which; 0 if CURRENT itself is malformed */
	char                 generation_error[512]; /* one line, why ("" unless refused) */
	uint64_t             generation_refusals; /* refusals since open, start-up included */
	/* Damage the live-state recovery at open found in the archive (the
	 * reader skipped it and went on, docs/archive.md "Corruption"):
	 * stretches skipped, their bytes, records known lost (damaged zstd
	 * frames, by their frame tables), and the first stretch as
	 * "archive/SEGMENT:OFFSET: what" ("" if none). */
	uint64_t             archive_corrupt_stretches, archive_corrupt_bytes;
	uint64_t             archive_lost_records;
	char                 archive_corrupt_first[200];
} store_db_health;
void store_db_get_health(store_db *db, store_db_health *ret_health);

#ifdef __cplusplus
}
#endif

#endif /* VIGIL_STORE_HEALTH_H */
