/* SPDX-License-Identifier: MIT */
/*
 * tests/lib/tmpdir.h - the tests' one temporary-directory helper: make a
 * fresh directory, and remove a directory tree (nftw(3), depth first,
 * symbolic links removed, never followed). libc only, so unit tests link it
 * without the integration harness (tmpdir_dep; harness_dep includes it).
 */
#ifndef VIGIL_TEST_TMPDIR_H
#define VIGIL_TEST_TMPDIR_H

#include <stddef.h>

/*
 * Makes $TMPDIR/<prefix>-XXXXXX ($TMPDIR unset or empty: /tmp) with
 * mkdtemp(3) and writes its path to ret_path[len]. 0, or -1 with errno
 * (ENAMETOOLONG when the path does not fit; ret_path is then untouched).
 */
int vt_tmpdir_make(const char *prefix, char *ret_path, size_t len);

/*
 * Removes path and everything under it. A path that does not exist is not
 * an error. 0, or -1 with errno of the first entry that could not be
 * removed (the walk stops there).
 */
int vt_tmpdir_remove(const char *path);

#endif
