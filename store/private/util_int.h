/* SPDX-License-Identifier: MIT */
/*
 * store/private/util_int.h - small helpers shared by the store's own files (not
 * part of store/'s headers). store_diag_set, which batch/ and the tools use
 * too, is declared in schema.h; both live in util.c.
 */
#ifndef VIGIL_STORE_UTIL_INT_H
#define VIGIL_STORE_UTIL_INT_H

#include "vigil.h"

/* fsync(2) of a directory, so that a rename, creation or unlink in it is
 * durable. */
vigil_err store_fsync_dir(const char *dir);

#endif
