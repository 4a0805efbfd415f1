/* SPDX-License-Identifier: MIT */
/*
 * tests/lib/noalloc.h - count heap calls, for tests that prove a hot path
 * allocates nothing. Linking noalloc_dep wraps malloc, calloc, realloc and
 * free at link time (-Wl,--wrap); every call made through the wrapped
 * symbols of the test executable is counted (calls made inside shared
 * libraries are not: the path under test must be linked statically, as
 * vigil's own libraries are).
 *
 * Usage: n = vt_allocs(); ...path...; assert_int_equal(vt_allocs() - n, 0);
 * and show once that the counter moves (e.g. around a call that allocates),
 * so that the test can fail.
 */
#ifndef VIGIL_TESTS_NOALLOC_H
#define VIGIL_TESTS_NOALLOC_H

/* Heap calls counted so far (malloc, calloc, realloc, and free of non-NULL). */
unsigned long vt_allocs(void);

#endif
