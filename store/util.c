/* SPDX-License-Identifier: MIT */
/*
 * store/util.c - the one-line error detail (store_diag_set) and the
 * directory fsync, for every file of the store and for batch/.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#include "schema.h"
#include "util_int.h"

void
store_diag_set(store_diag *d, const char *fmt, ...)
{
	va_list ap;

	if (d == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(d->msg, sizeof d->msg, fmt, ap);
	va_end(ap);
}

vigil_err
store_fsync_dir(const char *dir)
{
	int       fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	vigil_err rv = VIGIL_OK;

	if (fd < 0)
		return vigil_err_from_errno(errno);
	if (fsync(fd) != 0)
		rv = vigil_err_from_errno(errno);
	close(fd);
	return rv;
}
