/* SPDX-License-Identifier: MIT */
/*
 * console/tail.h - follows vigild's archive from a position (sequence
 * number, segment, byte offset) as it grows: the open segment is read with
 * pread(2) from the last offset, so a poll costs only the new bytes;
 * closed and compressed segments, and any damaged stretch, go through the
 * store's reader (which reports and skips corruption).
 */
#ifndef VIGIL_CONSOLE_TAIL_H
#define VIGIL_CONSOLE_TAIL_H

#include <stdbool.h>

#include "archive.h"

typedef struct con_tail con_tail;

vigil_err con_tail_new(const char *archive_dir, uint64_t last_seq, uint64_t seg_first,
    uint64_t seg_off, con_tail **ret_t);
void      con_tail_free(con_tail *t); /* NULL is a no-op */
/*
 * The next record with seq > the last one returned (payload valid until
 * the next call). *ret_seg: first seq of its segment; *ret_next_off: the
 * byte offset after it (where a resume starts). VIGIL_EAGAIN: nothing more
 * for now. Other errors: VIGIL_EIO/VIGIL_ENOMEM with errbuf.
 */
vigil_err con_tail_next(con_tail *t, store_record *ret_rec, uint64_t *ret_seg,
    uint64_t *ret_next_off, char *errbuf, size_t errlen);
/*
 * Up to max records past the last one returned, each handed to fn with its
 * segment and the offset after it (a resume point) until fn fails:
 * *ret_n records handed over and accepted; *ret_more when max were.
 * VIGIL_OK at the end of what is there; fn's error (its message in
 * errbuf is fn's to write) or con_tail_next's.
 */
vigil_err con_tail_each(con_tail *t, uint32_t max,
    vigil_err (*fn)(void *arg, const store_record *r, uint64_t seg, uint64_t next_off),
    void *arg, uint32_t *ret_n, bool *ret_more, char *errbuf, size_t errlen);
/* quiet: corrupt stretches are counted, not printed (a second tail of the
 * same archive: the first reports them). */
void      con_tail_set_quiet(con_tail *t, bool quiet);
/* Corrupt stretches reported since the last call. */
uint64_t  con_tail_take_corrupt(con_tail *t);

#endif
