/* SPDX-License-Identifier: MIT */
/*
 * batch/src.h - private to batch/: what a rebuild reads (src.c), one
 * archive directory or several merged by event time with each txn_id's
 * score once, and the fast scan of a score record's ids without unpacking
 * it (scan.c). Included by int.h.
 */
#ifndef VIGIL_BATCH_SRC_H
#define VIGIL_BATCH_SRC_H

#include <stddef.h>
#include <stdint.h>

#include "archive.h"
#include "vigil.h"

/* ---- Fast scan (scan.c) ---- */

/* Finds Transaction.card_id inside an ArchivedScore payload without
 * unpacking it, as the decoder would read it (the last card_id of any
 * occurrence of txn, up to its first NUL). VIGIL_OK: *ret_p and *ret_len
 * point into payload; VIGIL_EPROTO if the wire bytes are malformed;
 * VIGIL_ENOTFOUND if absent. */
vigil_err batch_scan_card_id(const void *payload, size_t len, const char **ret_p,
    size_t *ret_len);

/* ---- What a rebuild reads (src.c) ---- */

/* Transaction.txn_id of an ArchivedScore payload, as batch_scan_card_id. */
vigil_err batch_scan_txn_id(const void *payload, size_t len, const char **ret_p,
    size_t *ret_len);

/*
 * The records of one archive directory (dirs[0], exactly as store_reader),
 * or of several merged by event time, ties to the earlier dir, each txn_id's
 * score once (the first), numbered 1.. in merged order, segment
 * "DIR-BASENAME/SEGMENT" (docs/vigil-rebuild.md, "Several archives").
 * Contracts as store_reader_open/_want/_next/_get_stats/_close; a record is
 * valid until the next call. dirs must outlive the source.
 */
typedef struct batch_src batch_src;
vigil_err batch_src_open(const char *const *dirs, uint32_t ndirs, int64_t from_ms,
    int64_t to_ms, store_corrupt_fn on_corrupt, void *arg, batch_src **ret_src,
    store_diag *reterr);
void      batch_src_want(batch_src *s, uint32_t type_mask);
vigil_err batch_src_next(batch_src *s, store_record *ret_rec, store_diag *reterr);
void      batch_src_get_stats(const batch_src *s, store_reader_stats *ret_stats);
/* Score records dropped so far: a txn_id already returned. */
uint64_t  batch_src_duplicates(const batch_src *s);
void      batch_src_close(batch_src *s); /* NULL is a no-op */

#endif
