/* SPDX-License-Identifier: MIT */
/*
 * tests/lib/tmpdir.c - temporary directories for tests (tmpdir.h).
 */
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tmpdir.h"

int
vt_tmpdir_make(const char *prefix, char *ret_path, size_t len)
{
	const char *tmp = getenv("TMPDIR");
	char        buf[4096];
	int         n;

	n = snprintf(buf, sizeof buf, "%s/%s-XXXXXX", tmp != NULL && *tmp ? tmp : "/tmp", prefix);
	if (n < 0 || (size_t)n >= sizeof buf || (size_t)n >= len) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if (mkdtemp(buf) == NULL)
		return -1;
	memcpy(ret_path, buf, (size_t)n + 1);
	return 0;
}

static int
tmpdir_remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

int
vt_tmpdir_remove(const char *path)
{
	struct stat st;

	if (lstat(path, &st) != 0)
		return errno == ENOENT ? 0 : -1;
	return nftw(path, tmpdir_remove_one, 16, FTW_DEPTH | FTW_PHYS);
}
