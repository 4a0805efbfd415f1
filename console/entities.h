/* SPDX-License-Identifier: MIT */
/*
 * console/entities.h - the entity index (entities.c; docs/console.md,
 * "The entity index"): for every card, merchant, terminal, device and ip,
 * where its scored transactions are in the archive (segment, byte offset,
 * event second). Its own LMDB environment, STATE/entities, fed by its own
 * tail of the archive, so that it is built, resumed and rebuilt without
 * the queue's index. A search by an entity reads only that entity's
 * records (scan.c). Private to console/.
 */
#ifndef VIGIL_CONSOLE_ENTITIES_H
#define VIGIL_CONSOLE_ENTITIES_H

#include <stdbool.h>
#include <stdint.h>

#include "vigil.h"

typedef enum con_ent_kind {
	CON_ENT_CARD = 1,
	CON_ENT_MERCHANT,
	CON_ENT_TERMINAL,
	CON_ENT_DEVICE,
	CON_ENT_IP,
} con_ent_kind;

/* Where one transaction of an entity is. */
typedef struct con_ent_pos {
	uint64_t seg_first; /* its segment (the first seq, in the file name) */
	uint64_t offset;    /* byte offset of its frame in the uncompressed segment */
	uint32_t second;    /* its event time in whole seconds (0: before 1970, or unknown) */
} con_ent_pos;

/* An entity: its kind and id. */
typedef struct con_ent_key {
	con_ent_kind kind;
	const char  *id;
} con_ent_key;

/* How the index was found at open. */
typedef enum con_ents_origin {
	CON_ENTS_NEW = 0, /* absent: built from the archive */
	CON_ENTS_REUSED,  /* resumed from its committed position */
	CON_ENTS_REBUILT, /* damaged or of another layout: removed, built again */
} con_ents_origin;

typedef struct con_ents_stats {
	con_ents_origin origin;
	bool     ready;      /* caught up with the archive at least once since open */
	uint64_t last_seq;   /* every record <= this is indexed */
	uint64_t records;    /* scored records indexed (since built) */
	uint64_t entries;    /* entries (an entry per record and non-empty id) */
	uint64_t ingested;   /* records read since open (0 after a restart: reused) */
	uint64_t pruned;     /* entries dropped by retention since open */
	uint64_t corrupt;    /* undecodable scored records passed over */
	uint32_t compactions; /* since open: after a build, the free pages dropped */
} con_ents_stats;

typedef struct con_ents con_ents;

/*
 * Opens (creates) the entity index under dir. An environment that LMDB
 * refuses (damaged, not an LMDB file) or of another layout version is
 * removed and created empty, *ret_note saying why ("DIR: REASON: rebuilt
 * from the archive"); otherwise *ret_note is "". VIGIL_OK with *ret_e;
 * errors (a directory that cannot be made or removed) with errbuf.
 */
vigil_err con_ents_open(const char *dir, uint32_t map_gib, con_ents **ret_e, char *ret_note,
    size_t notelen, char *errbuf, size_t errlen);
void      con_ents_close(con_ents *e); /* NULL is a no-op */
/* Removes the environment's files under dir (closed first: a damaged one
 * found while in use is closed, removed and opened again). */
vigil_err con_ents_remove(const char *dir, char *errbuf, size_t errlen);
void      con_ents_get_stats(con_ents *e, con_ents_stats *ret_stats); /* no I/O */
/* The environment's pages, free ones included (*ret_file), and those in
 * use (*ret_live: free pages are reused, never given back), in bytes; 0
 * on error. Walks LMDB's free list. */
void      con_ents_sizes(con_ents *e, uint64_t *ret_file, uint64_t *ret_live);

/*
 * Indexes up to max archive records past the committed position in one
 * write transaction (with the new position). *ret_n records read;
 * *ret_more when more were ready. On error the batch is read again next
 * time (errbuf says why). VIGIL_ECORRUPT: LMDB found the environment
 * damaged (close it, con_ents_remove, open again).
 */
vigil_err con_ents_ingest(con_ents *e, const char *archive_dir, uint32_t max, uint32_t *ret_n,
    bool *ret_more, char *errbuf, size_t errlen);

/* Entries of kind/id (0 if none or on error). */
uint64_t  con_ents_count(con_ents *e, con_ent_kind kind, const char *id);

/*
 * The positions of kind/id whose event second is in [from_ms, to_ms)
 * (rounded outwards to whole seconds: the caller checks the exact time on
 * the record), in archive order, appended to out (a vigil_vec of
 * con_ent_pos) up to its cap: VIGIL_ETOOBIG when more were left. One read
 * transaction.
 */
struct vigil_vec;
vigil_err con_ents_positions(con_ents *e, con_ent_kind kind, const char *id, int64_t from_ms,
    int64_t to_ms, struct vigil_vec *out);

/*
 * Retention: drops the entries of segments that are gone from archive_dir
 * (those before its oldest segment), at most max_steps keys a call,
 * resuming where the last call stopped; *ret_done when a sweep ended (or
 * none was needed: the oldest segment has not changed since the last).
 */
vigil_err con_ents_prune(con_ents *e, const char *archive_dir, uint32_t max_steps,
    bool *ret_done, uint64_t *ret_deleted);

#endif
