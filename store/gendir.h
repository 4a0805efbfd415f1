/* SPDX-License-Identifier: MIT */
/*
 * store/gendir.h - a generation's files and LMDB layout, as gendir.c
 * (directories, CURRENT, the lock, keys), gencheck.c (the CHECKSUM of a
 * generation), genw.c (writing one) and, above store/, the reader
 * (features/db/genread.c) and store_db (features/db/db.c) share them.
 */
#ifndef VIGIL_STORE_GENDIR_H
#define VIGIL_STORE_GENDIR_H

#include <lmdb.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>

#include "gen.h"

/* Caps on what a generation may hold (input-driven sizes). */
#define STORE_THRESHOLD_NAME_MAX 128 /* name and group, bytes each */
#define STORE_GEN_MAP_BYTES      (64ULL << 30) /* LMDB map size (virtual) */

/* "<datadir>/features/CURRENT" (tests and db.c's cheap change check). */
vigil_err gen_current_path(const char *datadir, char *buf, size_t buflen);
/* Reads CURRENT (0 if there is none), with the diag store_gen_current
 * does not give: VIGIL_ECORRUPT for a malformed one. */
vigil_err gen_current_read(const char *datadir, uint64_t *ret_gen, store_diag *reterr);

/* (Re)writes gendir/CHECKSUM for gendir/data.mdb (store_genw_commit; tests
 * that edit a generation in place, as a newer build would have written it,
 * reseal it with it). */
vigil_err gen_checksum_write(const char *gendir, store_diag *reterr);

#define GEN_NDBI        5
#define GEN_POOL_MAX    64      /* idle read transactions kept per generation */
#define GEN_TXN_PUTS    16384   /* puts per write transaction while building */
#define GEN_DEFAULT_KEEP 3
#define GEN_PATH_MAX    4096
#define GEN_MAX_NUMBER  999999999ULL
#define GEN_DATA_FILE      "data.mdb"
#define GEN_CHECKSUM_FILE  "CHECKSUM"
#define GEN_CHECKSUMS_FROM "CHECKSUMS_FROM"
#define GEN_PENDING        "PENDING"   /* names a gen-N renamed in until CURRENT does */
#define GEN_CHECKSUM_HEX   32          /* XXH3-128 in hex */

/* A generation's error: store_diag_at with file "features/NAME" (name:
 * "gen-NNNNNN") and key (NULL: none) as its field. */
#define GEN_DIAG(d, name, key, ...)                                                     \
	do {                                                                             \
		char gen_diag_file_[48];                                                 \
		snprintf(gen_diag_file_, sizeof gen_diag_file_, "features/%s", (name));  \
		store_diag_at((d), gen_diag_file_, VIGIL_NOPOS, (key), __VA_ARGS__);     \
	} while (0)
#define GEN_VERIFY_BUF     (1u << 20)  /* read size while verifying */
#define GEN_BLOB_PREFIX    "blob/"     /* the blob keys' prefix in the meta table */

enum { DBI_CARD, DBI_MERCHANT, DBI_TERMINAL, DBI_THRESHOLD, DBI_META };
extern const char *const gen_dbi_names[GEN_NDBI]; /* the named databases, DBI_ order */
#define GEN_META_KEY "meta"                         /* the meta table's own key */

/* A value's bytes (a profile or threshold as features/codec.h encodes it)
 * under key (an id; a threshold's: features/db/genread.h) in table dbi
 * (DBI_CARD .. DBI_THRESHOLD); a second put of a key replaces the first.
 * VIGIL_EINVAL for another table or a key empty or over its cap (nothing
 * written; w stays usable). An LMDB failure (VIGIL_EIO, VIGIL_ENOMEM,
 * VIGIL_ELIMIT for a full map) is sticky: every later put and the commit
 * return it; abort. */
vigil_err store_genw_put(store_genw *w, int dbi, const void *key, size_t klen, const void *val,
    size_t vlen);

/* gendir.c: LMDB errors, paths, generation names, CURRENT, the rebuild
 * lock, listing and pruning generations; the table keys. */
vigil_err gen_err_from_mdb(int rc);
vigil_err gen_path_join(char *buf, size_t buflen, const char *a, const char *b);
void gen_name(uint64_t gen, char *buf, size_t buflen);
bool gen_parse_name(const char *s, uint64_t *ret_gen);
vigil_err gen_file_read_gen(const char *fdir, const char *file, uint64_t *ret_gen, store_diag *d);
#define gen_cur_read(fdir, ret, d) gen_file_read_gen((fdir), "CURRENT", (ret), (d))
vigil_err gen_cur_write(const char *fdir, uint64_t gen, store_diag *reterr);
vigil_err gen_lock_take(const char *fdir, int *ret_fd, store_diag *reterr);
vigil_err gen_dir_remove(const char *dir);
/* Under the lock: PENDING's gen-N (a commit died before CURRENT named it,
 * docs/storage.md) kept if it is cur, else removed; then PENDING. */
void gen_pending_settle(const char *fdir, uint64_t cur);
vigil_err gen_list(const char *fdir, bool clean_tmp, uint64_t **ret_gens, size_t *ret_n);
vigil_err gen_prune(const char *fdir, uint32_t keep, uint64_t current, store_diag *reterr);
vigil_err gen_file_replace(const char *dir, const char *name, const char *text, size_t len,
    store_diag *reterr);
/* gencheck.c: verifying data.mdb against CHECKSUM; marking the first
 * generation that has one. */
vigil_err gen_verify(const char *fdir, const char *gendir, const char *name, uint64_t generation,
    store_gen_check *ret_check, struct stat *ret_st, store_diag *reterr);
vigil_err gen_checksums_from_mark(const char *fdir, uint64_t gen, store_diag *reterr);
vigil_err gen_blob_key(const char *name, char *buf, size_t cap, size_t *ret_len);

#endif /* VIGIL_STORE_GEN_INT_H */
