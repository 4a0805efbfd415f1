/* SPDX-License-Identifier: MIT */
/*
 * console/casework.h - the analysts' status, assignee and notes of each
 * case (casework.c), and the full archived record of a case (fetch.c).
 */
#ifndef VIGIL_CONSOLE_CASEWORK_H
#define VIGIL_CONSOLE_CASEWORK_H

#include <jansson.h>
#include <stddef.h>

#include "archive.h"
#include "index.h"

#define CON_NOTE_MAX   2000 /* bytes of one note */
#define CON_NOTES_MAX  200  /* notes on one case */

typedef struct con_casework con_casework;

/* Opens (creates) STATE/casework, the analysts' status, assignee and notes
 * of each case. */
vigil_err con_casework_open(const char *dir, con_casework **ret_cw, char *errbuf,
    size_t errlen);
void      con_casework_close(con_casework *cw); /* NULL is a no-op */
/* The case's record {"status","assignee","notes":[{"ts","who","text"}]}: a
 * new reference (status "open", assignee null, no notes if none yet). */
json_t   *con_casework_get(con_casework *cw, const char *txn_id);
/* Replaces it. VIGIL_ELIMIT when the store is full, VIGIL_EIO. */
vigil_err con_casework_put(con_casework *cw, const char *txn_id, const json_t *o);

/* Reads the full archived record of a case (features, model vector). */
vigil_err con_archive_fetch(const char *archive_dir, const con_case *c, store_scored *ret,
    char *errbuf, size_t errlen);

#endif
