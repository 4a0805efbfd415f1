/* SPDX-License-Identifier: MIT */
/*
 * tests/lib/noalloc.c - the link-time wrappers behind noalloc.h.
 */
#include <stddef.h>

#include "noalloc.h"

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
void  __real_free(void *p);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t m);
void *__wrap_realloc(void *p, size_t n);
void  __wrap_free(void *p);

static unsigned long allocs;

unsigned long
vt_allocs(void)
{
	return allocs;
}

void *
__wrap_malloc(size_t n)
{
	allocs++;
	return __real_malloc(n);
}

void *
__wrap_calloc(size_t n, size_t m)
{
	allocs++;
	return __real_calloc(n, m);
}

void *
__wrap_realloc(void *p, size_t n)
{
	allocs++;
	return __real_realloc(p, n);
}

void
__wrap_free(void *p)
{
	if (p != NULL)
		allocs++;
	__real_free(p);
}
