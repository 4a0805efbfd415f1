/* SPDX-License-Identifier: MIT */
/*
 * common/file.h - opening files that must be regular files (file.c): a
 * FIFO, device, socket or directory in a file's place is refused, not
 * waited on; and the directory fsync that makes a rename durable.
 */
#ifndef VIGIL_FILE_H
#define VIGIL_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/stat.h>

#include "vigil.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Opens a file that holds secrets (a token, a tokens file) for reading, the
 * one rule vigild and vigil-console share: a regular file (checked before
 * anything can block: a FIFO is refused, not waited on) that other users
 * can neither read nor write (mode & 006 == 0). what names it in errbuf
 * ("admin_token_file PATH: ..." or "PATH: ..." if what is NULL).
 * VIGIL_OK: *ret_fd is open (O_RDONLY | O_CLOEXEC, blocking), to close.
 * VIGIL_ENOTFOUND, VIGIL_EIO (cannot open or stat), VIGIL_EINVAL (not a
 * regular file, or its mode); *ret_fd untouched. Never logs.
 */
vigil_err vigil_secret_open(const char *path, const char *what, int *ret_fd, char *errbuf,
    size_t errlen);

/*
 * open(path, O_RDONLY | O_CLOEXEC) if path (links followed) is a regular
 * file: the descriptor and, if ret_st is not NULL, its fstat; or -1 with
 * errno set. A FIFO, device, socket or directory is refused before it is
 * opened (opening one can wait for ever): -1 with *ret_special set. Unlike
 * an O_NONBLOCK open, this waits on a regular file another process holds a
 * lease on, as on a slow disk.
 */
int vigil_open_regular(const char *path, bool *ret_special, struct stat *ret_st);
/* vigil_open_regular as a stdio stream ("rb"): NULL with errno set, or
 * with *ret_special set. */
FILE *vigil_fopen_regular(const char *path, bool *ret_special, struct stat *ret_st);
/* Why either failed, for a "PATH: WHY" message: "not a regular file" if
 * special, else "cannot open: " and strerror(err). Written into buf (64
 * bytes are enough); returns buf. */
const char *vigil_open_why(bool special, int err, char *buf, size_t len);

/*
 * The whole of regular file path (vigil_open_regular: a FIFO is refused,
 * not waited on), at most max bytes, NUL-terminated in *ret_buf (malloc'd;
 * *ret_len bytes before the NUL): 0. Else -1 with *ret_special set (not a
 * regular file) or errno set (EFBIG: larger than max); a partial read is
 * wiped before it is freed, as a key's would be.
 */
int vigil_read_regular(const char *path, size_t max, char **ret_buf, size_t *ret_len,
    bool *ret_special);

/* fsync(2) of directory dir, so that a rename, creation or unlink in it is
 * durable. VIGIL_OK, or the error (errno is left set to its cause). */
vigil_err vigil_fsync_dir(const char *dir);

#ifdef __cplusplus
}
#endif

#endif
