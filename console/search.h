/* SPDX-License-Identifier: MIT */
/*
 * console/search.h - the search over every archived transaction (scan.c;
 * docs/console.md, "Search and label any transaction"): by a scan of an
 * event-time range, or by the entity index (entities.h) for an entity.
 */
#ifndef VIGIL_CONSOLE_SEARCH_H
#define VIGIL_CONSOLE_SEARCH_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "archive.h"
#include "util.h"
#include "vigil.h"

typedef struct con_app con_app;

/* A search's filters (GET /api/search's keys, docs/console.md). */
typedef struct con_search_q {
	int64_t from_ms, to_ms;
	char    card[VIGIL_ID_MAX + 1], merchant[VIGIL_ID_MAX + 1], terminal[VIGIL_ID_MAX + 1];
	char    device[VIGIL_ID_MAX + 1], ip[VIGIL_IP_MAX + 1];
	double  min_amount, max_amount; /* major units; < 0: none */
	int     decision;               /* vigil_decision, 0: any */
	int     label;                  /* -2 any, -1 none, 0 legit, 1 fraud */
	uint32_t limit;
} con_search_q;
/* scan.c: the scored records of [from, to) of the archive, those passing
 * q's filters but the label (q NULL: all), decoded into s and handed to fn
 * until it returns false; *ret_scanned: records read, at most
 * CON_SEARCH_SCAN_MAX + 1; what was passed over counted in *dmg (util.h;
 * zero it first). VIGIL_OK, or the reader's error (errbuf). */
#define CON_SEARCH_SCAN_MAX 2000000u
vigil_err con_search_scan(con_app *app, int64_t from, int64_t to, const con_search_q *q,
    store_scored *s, bool (*fn)(void *arg, const store_scored *s), void *arg,
    uint64_t *ret_scanned, con_damage *dmg, char *errbuf, size_t errlen);
/* scan.c: the search itself (reads app->archive_dir and app->ix only): up to
 * q->limit matches appended to items, *ret_more when there were more,
 * *ret_scanned records read, *dmg what was passed over. The reader's error
 * in errbuf. */
vigil_err con_search_run(con_app *app, const con_search_q *q, json_t *items, bool *ret_more,
    uint64_t *ret_scanned, con_damage *dmg, char *errbuf, size_t errlen);
/* scan.c: whether con_search_run answers q from the entity index (q names
 * an entity and the index has caught up with the archive): then it reads
 * only that entity's records, over any range. */
bool con_search_by_index(con_app *app, const con_search_q *q);
/* scan.c: whether the entity index (app->ents) has caught up with the
 * archive once and is as far as the queue's index (app->ix). */
bool con_ents_usable(con_app *app);
/* scan.c: the scored records of the entities keys[0..nkeys) (entities.h;
 * app->ents ready) with event time in [from, to), each once, in archive
 * order, decoded into s and handed to fn until it returns false; at most
 * max positions (*ret_truncated past it). *ret_scanned records read, *dmg
 * what could not be. */
struct con_ent_key;
vigil_err con_search_entities(con_app *app, const struct con_ent_key *keys, uint32_t nkeys,
    int64_t from, int64_t to, uint64_t max, store_scored *s,
    bool (*fn)(void *arg, const store_scored *s), void *arg, uint64_t *ret_scanned,
    bool *ret_truncated, con_damage *dmg, char *errbuf, size_t errlen);

#endif
