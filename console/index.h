/* SPDX-License-Identifier: MIT */
/*
 * console/index.h - the console's LMDB index of the review queue
 * (index.c, index_query.c; docs/console.md, "The index"): cases, card
 * histories, per-rule daily counters, claims, fed by a tail of the archive
 * (tail.h).
 */
#ifndef VIGIL_CONSOLE_INDEX_H
#define VIGIL_CONSOLE_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "vigil.h"

#define CON_CASE_VERSION   2 /* 2: score is the 0-100 float */
#define CON_CASE_MAX_HITS  24
#define CON_CARD_HISTORY   50   /* transactions kept per card */
#define CON_RULES_MAX      1024 /* distinct rule names in the index */

/* A review or decline, as kept in the index (LMDB value; fixed layout,
 * version first: a layout change bumps CON_CASE_VERSION and the index is
 * rebuilt from the archive). */
typedef struct con_case {
	uint16_t version;
	uint8_t  decision;   /* vigil_decision */
	int8_t   label;      /* -1 none, 0 legitimate, 1 fraud */
	float    score;      /* 0-100 (store_scored.score) */
	int64_t  event_time_ms;
	int64_t  amount_minor;
	int64_t  label_time_ms;
	uint64_t seq;        /* archive sequence number */
	uint64_t seg_first;  /* first seq of its segment (the file name) */
	uint64_t offset;     /* byte offset in the (uncompressed) segment */
	uint32_t mcc;
	uint8_t  channel;
	uint8_t  nhits;
	uint8_t  shadow_mask[(CON_CASE_MAX_HITS + 7) / 8];
	uint16_t hits[CON_CASE_MAX_HITS]; /* rule ids (con_index_rule_name) */
	char     currency[4];
	char     country[3];
	char     txn_id[VIGIL_ID_MAX + 1];
	char     card_id[VIGIL_ID_MAX + 1];
	char     merchant_id[VIGIL_ID_MAX + 1];
	char     terminal_id[VIGIL_ID_MAX + 1];
	char     label_source[32];
} con_case;

/* One transaction of a card's recent history (any decision). */
typedef struct con_card_txn {
	int64_t  event_time_ms;
	int64_t  amount_minor;
	float    score;      /* 0-100 */
	uint8_t  decision;
	char     currency[4];
	char     txn_id[VIGIL_ID_MAX + 1];
	char     merchant_id[VIGIL_ID_MAX + 1];
} con_card_txn;

/* Per UTC day and rule: hits, and how many of those are labelled fraud /
 * legitimate as known now. Rule CON_STAT_TOTAL: all scored records (n),
 * reviews + declines (alerts). */
#define CON_STAT_TOTAL 0xFFFFu
typedef struct con_stat {
	uint64_t n, fraud, legit, alerts;
} con_stat;

typedef struct con_tailpos {
	uint64_t last_seq;   /* committed: every record <= this is in the index */
	uint64_t seg_first;  /* segment being read (its first seq; 0 none yet) */
	uint64_t seg_off;    /* next byte to read in it */
	int64_t  max_event_ms;
	uint64_t scored, labels, cases, corrupt;
} con_tailpos;

typedef struct con_index con_index;

/* Opens (creates) the index under dir (STATE/index). map_gib: LMDB map size. */
vigil_err con_index_open(const char *dir, uint32_t map_gib, con_index **ret_ix,
    char *errbuf, size_t errlen);
void      con_index_close(con_index *ix); /* NULL is a no-op */
void      con_index_pos(con_index *ix, con_tailpos *ret_pos);

/*
 * Reads up to max records of the archive under datadir/archive past the
 * committed position and indexes them in one write transaction (committed
 * with the new position: a restart resumes there). *ret_n: records read;
 * *ret_more: whether more were ready when it stopped. Corrupt stretches are
 * counted and reported to stderr once each, never fatal.
 */
vigil_err con_index_ingest(con_index *ix, const char *archive_dir, uint32_t max,
    uint32_t *ret_n, bool *ret_more, char *errbuf, size_t errlen);

/* A queue cursor: the order's letter, then its last row's sort key in hex. */
#define CON_CURSOR_MAX (2 + 2 * (4 + 8 + VIGIL_ID_MAX))
typedef struct con_query {
	int      decision;   /* VIGIL_DECISION_REVIEW, _DECLINE, or 0: both */
	int      status;     /* 0 open (no label), 1 labelled, 2 all */
	bool     by_score;   /* else newest first */
	char     rule[64];
	char     card[VIGIL_ID_MAX + 1];
	char     merchant[VIGIL_ID_MAX + 1];
	int64_t  min_amount_minor; /* compared in the case's minor units */
	double   min_amount;       /* major units (< 0: none) */
	int64_t  from_ms, to_ms;   /* event time [from, to) */
	uint32_t offset, limit;
	/* "": the page starts offset matches down; else the page after the row
	 * of this cursor (con_page.next, of the same order), which need not be
	 * there any more: rows coming or going above it move no row of it */
	char     after[CON_CURSOR_MAX];
} con_query;

/* Where a page is: offset the matches above its first row, next the cursor
 * of its last row when more follow ("" when none). */
typedef struct con_page {
	uint64_t offset;
	char     next[CON_CURSOR_MAX];
} con_page;

/* Runs q: *ret_total matches, ret_cases[0..*ret_n) the page (limit <= cap),
 * *ret_page (may be NULL) where it is. VIGIL_EINVAL: q->after is no cursor
 * of q's order. */
vigil_err con_index_query_page(con_index *ix, const con_query *q, con_case *ret_cases,
    uint32_t cap, uint32_t *ret_n, uint64_t *ret_total, double *ret_ms, con_page *ret_page);
/* con_index_query_page without where the page is. */
vigil_err con_index_query(con_index *ix, const con_query *q, con_case *ret_cases, uint32_t cap,
    uint32_t *ret_n, uint64_t *ret_total, double *ret_ms);
/* Calls fn for each case with event time in [from_ms, to_ms), oldest
 * first, until fn returns false or max cases were read (then
 * *ret_truncated). One read transaction. */
vigil_err con_index_cases_each(con_index *ix, int64_t from_ms, int64_t to_ms, uint64_t max,
    bool (*fn)(void *arg, const con_case *c), void *arg, bool *ret_truncated);
/* VIGIL_ENOTFOUND if txn_id is no case. */
vigil_err con_index_case(con_index *ix, const char *txn_id, con_case *ret_case);
/* A label this console sent and vigild took: a case's is set at once (the
 * archive's label record confirms it), and for any transaction it is what
 * con_index_label_now answers until the index reads that record back.
 * VIGIL_ENOTFOUND if txn_id is no case. */
vigil_err con_index_case_label(con_index *ix, const char *txn_id, bool fraud,
    const char *source, int64_t when_ms);
/* The label a verdict's "expected" is checked against (-1 none): this
 * console's own not yet read back, else the index's. A case's source and
 * time in ret_source and *ret_time_ms ("" and 0 when none or no case). */
int       con_index_label_now(con_index *ix, const char *txn_id, char ret_source[32],
    int64_t *ret_time_ms);
/* The card's recent transactions, newest first. */
vigil_err con_index_card_history(con_index *ix, const char *card_id, con_card_txn *ret,
    uint32_t cap, uint32_t *ret_n);
/* Rule name of an id (NULL if unknown); id of a name (VIGIL_ENOTFOUND). */
const char *con_index_rule_name(con_index *ix, uint16_t id);
vigil_err   con_index_rule_id(con_index *ix, const char *name, uint16_t *ret_id);
/* Sums per-rule stats over UTC days [day_from, day_to]; fn per rule
 * (CON_STAT_TOTAL for the totals). */
vigil_err con_index_stats(con_index *ix, int64_t day_from, int64_t day_to,
    void (*fn)(void *arg, uint16_t rule, const con_stat *st), void *arg);
/* A transaction's label as known (-1 none), from the index. */
int       con_index_label_of(con_index *ix, const char *txn_id);
/* Its label and, when the index knows it, its amount (*ret_amount -1 if
 * not). VIGIL_ENOTFOUND: neither a hit nor a label was seen for it. */
vigil_err con_index_txn_label(con_index *ix, const char *txn_id, int *ret_label,
    int64_t *ret_amount, char ret_currency[4]);

/*
 * Retention: deletes `hits` entries of transactions scored more than
 * keep_days before the newest one indexed (their labels no longer move a
 * figure anyone reads), at most max_steps entries per call, resuming where
 * the last call stopped; *ret_done when a sweep reached the end (then also
 * claims expired a day before now_ms are deleted). Cases, card histories
 * (capped per card) and daily stats are small and kept.
 */
vigil_err con_index_prune(con_index *ix, uint32_t keep_days, int64_t now_ms, uint32_t max_steps,
    bool *ret_done, uint64_t *ret_deleted);

/* Claims: who works a case, until when. */
typedef struct con_claim {
	char    who[CON_NAME_MAX + 1];
	int64_t until_ms;
} con_claim;
/* VIGIL_OK: claimed (or renewed) by who, *ret_claim the new claim and
 * *ret_prev the live claim it replaced (who's own: a renewal; who[0] '\0':
 * none). VIGIL_EBUSY: *ret_claim is the other analyst's live claim. */
vigil_err con_index_claim(con_index *ix, const char *txn_id, const char *who, int64_t now_ms,
    int64_t ttl_ms, con_claim *ret_claim, con_claim *ret_prev);
/* Releases the live claim on txn_id if who holds it, or anyone's if any (an
 * admin). VIGIL_OK: *ret_prev (may be NULL) is the claim released, who[0]
 * '\0' if there was none live. VIGIL_EBUSY: another analyst holds it,
 * *ret_prev is that claim, nothing changed. */
vigil_err con_index_unclaim(con_index *ix, const char *txn_id, const char *who, int64_t now_ms,
    bool any, con_claim *ret_prev);
/* VIGIL_ENOTFOUND when nobody holds a live claim. */
vigil_err con_index_claim_get(con_index *ix, const char *txn_id, int64_t now_ms,
    con_claim *ret_claim);

#endif
