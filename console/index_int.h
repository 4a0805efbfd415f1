/* SPDX-License-Identifier: MIT */
/*
 * console/index_int.h - what console/index.c (opening, the tail's ingest,
 * labels, retention) and console/index_query.c (the queue's queries, card
 * histories, counters, claims) share of the index: its struct and the
 * key codecs. Private to console/.
 */
#ifndef VIGIL_CONSOLE_INDEX_INT_H
#define VIGIL_CONSOLE_INDEX_INT_H

#include <errno.h>
#include <lmdb.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "console.h"
#include "tail.h"

#define IX_STATS_SLOTS 8192

typedef struct ix_stat_delta {
	uint64_t key; /* day << 16 | rule; 0 = empty (day 0 is 1970-01-01: never used) */
	int64_t  n, fraud, legit, alerts;
} ix_stat_delta;

/*
 * A label this console sent (vigild took it) that the index has not read
 * back from the archive yet: until then it is the label a verdict's
 * "expected" is checked against, whatever the archive's earlier records
 * say. In memory only; the oldest gives way past IX_OWN_MAX.
 */
#define IX_OWN_MAX 256
typedef struct ix_own {
	char    txn_id[VIGIL_ID_MAX + 1]; /* "": free */
	char    source[32];               /* as store_label keeps it */
	int64_t time_ms;
	int8_t  label;
	bool    is_case;
} ix_own;

struct con_index {
	MDB_env     *env;
	MDB_dbi      meta, cases, byid, hits, cards, stats, rules, claims;
	con_tailpos  pos;
	con_tail    *tail;
	char        *rule_names[CON_RULES_MAX];
	uint32_t     nrules;
	uint32_t     nrules_committed;
	store_scored *rec;      /* decode scratch (large) */
	ix_stat_delta *deltas;  /* IX_STATS_SLOTS */
	uint32_t     ndeltas;
	uint8_t      prune_key[VIGIL_ID_MAX]; /* where the hits sweep goes on */
	uint32_t     prune_klen;             /* 0: from the start */
	ix_own       own[IX_OWN_MAX];        /* con_index_case_label's, not read back */
	uint32_t     own_n, own_next;        /* slots in use; the next to take */
};

static inline vigil_err
ix_err(int rc)
{
	switch (rc) {
	case 0: return VIGIL_OK;
	case MDB_NOTFOUND: return VIGIL_ENOTFOUND;
	case MDB_MAP_FULL: return VIGIL_ELIMIT;
	case MDB_VERSION_MISMATCH: return VIGIL_EVERSION;
	case MDB_CORRUPTED: case MDB_INVALID: return VIGIL_ECORRUPT;
	case ENOMEM: return VIGIL_ENOMEM;
	default: return rc > 0 ? vigil_err_from_errno(rc) : VIGIL_EIO;
	}
}

static inline void
ix_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static inline uint64_t
ix_get_be64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

/* Event times are signed; flip the sign bit so byte order is time order. */
static inline uint64_t
ix_time_key(int64_t t)
{
	return (uint64_t)t ^ (1ull << 63);
}

static inline MDB_val
ix_str(const char *s)
{
	MDB_val v = { strlen(s), (void *)s };
	return v;
}

/* The cases key of txn_id (its time from byid, then the id) into kb
 * (8 + VIGIL_ID_MAX bytes); an LMDB code (MDB_NOTFOUND: no such case). */
int ix_case_key(con_index *ix, MDB_txn *txn, const char *txn_id, uint8_t *kb, MDB_val *ret_k);

#endif /* VIGIL_CONSOLE_INDEX_INT_H */
