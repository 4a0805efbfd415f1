/* SPDX-License-Identifier: MIT */
/*
 * common/hashtab.h - uthash, the project's hash table, as every product
 * file includes it: with HASH_NONFATAL_OOM, so that a HASH_ADD* whose table
 * cannot be made or grown leaves the item out of the table (uthash 2.3
 * rolls the add back and clears the item's hh.tbl) instead of calling
 * uthash_fatal, which is exit(-1). A service answers the one request "out
 * of memory" and stays up; a batch program exits with its own code and
 * message. tests/files.sh refuses an <uthash.h> included anywhere else in
 * the product.
 *
 *     HASH_ADD_KEYPTR(hh, head, item->id, len, item);
 *     if (!VIGIL_HASH_ADDED(item)) {   // not in the table: the caller's still
 *             free(item);
 *             return VIGIL_ENOMEM;
 *     }
 *
 * A file that sets HASH_FUNCTION or another uthash option defines it before
 * including this header. HASH_FIND, HASH_DEL, HASH_SRT and HASH_ITER do not
 * allocate.
 */
#ifndef VIGIL_HASHTAB_H
#define VIGIL_HASHTAB_H

#ifdef UTHASH_H
#error "uthash.h was included before common/hashtab.h: its out-of-memory exit would stay"
#endif
#define HASH_NONFATAL_OOM 1
#include <uthash.h>

/* After a HASH_ADD* of item (its handle named hh): true if it is in the
 * table; false if memory ran out, the table then as it was before. */
#define VIGIL_HASH_ADDED(item) ((item)->hh.tbl != NULL)

#endif /* VIGIL_HASHTAB_H */
