/* SPDX-License-Identifier: MIT */
/*
 * store/util.c - the one-line error detail (store_diag_set, store_diag_at,
 * store_diag_text), for every file of the store and for batch/.
 */
#include <stdarg.h>
#include <stdio.h>

#include "diag.h"

void
store_diag_set(store_diag *d, const char *fmt, ...)
{
	va_list ap;

	if (d == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(d->msg, sizeof d->msg, fmt, ap);
	va_end(ap);
	vigil_errinfo_set(&d->info, NULL, "%s", d->msg);
}

void
store_diag_at(store_diag *d, const char *file, uint64_t offset, const char *field,
    const char *fmt, ...)
{
	va_list ap;

	if (d == NULL)
		return;
	vigil_errinfo_clear(&d->info);
	va_start(ap, fmt);
	vsnprintf(d->info.msg, sizeof d->info.msg, fmt, ap);
	va_end(ap);
	vigil_utf8_line(d->info.msg);
	snprintf(d->info.file, sizeof d->info.file, "%s", file);
	if (field != NULL)
		snprintf(d->info.field, sizeof d->info.field, "%s", field);
	d->info.offset = offset;
	vigil_errinfo_format(&d->info, d->msg, sizeof d->msg);
}

const char *
store_diag_text(const store_diag *d, const char *path, vigil_err rv, char *buf, size_t cap)
{
	if (d->info.file[0] != '\0')
		snprintf(buf, cap, "%s", d->msg);
	else
		snprintf(buf, cap, "%s: %s", path, d->msg[0] ? d->msg : vigil_strerror(rv));
	return buf;
}
