/* SPDX-License-Identifier: MIT */
/*
 * common/mem.c - memory made present ahead of its first writes
 * (vigil_mem_populate, vigil.h).
 */
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vigil.h"

bool
vigil_mem_populate(void *p, size_t len)
{
	long      pg = sysconf(_SC_PAGESIZE);
	uintptr_t a, e;

	if (pg <= 0 || p == NULL)
		return false;
	a = ((uintptr_t)p + (uintptr_t)pg - 1) & ~(uintptr_t)(pg - 1);
	e = ((uintptr_t)p + len) & ~(uintptr_t)(pg - 1);
	if (e <= a)
		return true; /* no whole page: nothing to do */
	return madvise((void *)a, e - a, MADV_POPULATE_WRITE) == 0;
}
