/* SPDX-License-Identifier: MIT */
/*
 * store/diag.h - store_diag, the error detail of every store/ call (and of
 * features/'s readers of generations); implemented in util.c. The base of
 * store/'s headers:
 *
 *   diag.h     the one-line error detail
 *   archive.h  the append-only archive: writer, reader, frames (record.h: the record codecs;
 *              segment.h: the segment files, for vigil-archive in tools/archive/)
 *   gen.h      feature generations in LMDB: writing, reading, blobs, checksums
 *   db.h       store_db, the serving object: generation + live state + archive
 *
 * The feature schema these name slots of is features/schema.h.
 */
#ifndef VIGIL_STORE_DIAG_H
#define VIGIL_STORE_DIAG_H

#include <stdint.h>

#include "vigil.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * The detail of an error: msg, the one line to print (where and what, as it
 * has always read), and info, the same error in common's vigil_errinfo
 * parts, so that no caller cuts msg to find the place:
 *   archive damage       info.file the segment ("archive/NAME.log" or its
 *                        path), info.offset the record's byte offset in it
 *                        (VIGIL_NOPOS: the whole segment)
 *   feature-table damage info.file the generation ("features/gen-NNNNNN"),
 *                        info.field the LMDB key when one is at fault
 *                        ("c1"; the table is named in info.msg)
 *   anything else        no place: info.file "" and info.msg = msg
 * info.msg is what is wrong without the file (and offset) before it, so
 * vigil_errinfo_format(&d.info) prints msg again, except that an offset
 * is written FILE@OFFSET there and FILE:OFFSET in msg (the notation of
 * vigil-archive's damage lines). A zero-initialised diag has no place.
 * Functions that take a `store_diag *reterr` fill it when they return an
 * error (and say so where they fill it on success); reterr may be NULL.
 * The library never logs: the caller prints the message, once.
 */
typedef struct store_diag {
	char          msg[512];
	vigil_errinfo info;
} store_diag;

/* Formats a one-line message into d (nothing if d is NULL), about no
 * place. batch/ and the tools use it to report in the same shape. */
void store_diag_set(store_diag *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* About a file (a segment, a generation's directory or file) and, unless
 * offset is VIGIL_NOPOS, a byte offset in it; field: the key or NULL.
 * msg: "FILE: what" or "FILE:OFFSET: what" (what: fmt). */
void store_diag_at(store_diag *d, const char *file, uint64_t offset, const char *field,
    const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* The line a program prints for a failed call about path: d's message when
 * it names its file, else "PATH: message" (vigil_strerror(rv) when d has
 * none). Into buf (cap bytes); returns buf. */
const char *store_diag_text(const store_diag *d, const char *path, vigil_err rv, char *buf,
    size_t cap);

#ifdef __cplusplus
}
#endif

#endif /* VIGIL_STORE_DIAG_H */
