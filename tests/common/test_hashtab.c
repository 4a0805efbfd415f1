/* SPDX-License-Identifier: MIT */
/* tests/common/test_hashtab.c - uthash as common/hashtab.h includes it:
 * when memory runs out, making the table (its header, its buckets) or
 * doubling its buckets, a HASH_ADD leaves the item out, VIGIL_HASH_ADDED
 * says so, the table keeps every item it had and the process goes on (the
 * uthash default is exit(-1)). uthash's allocator is replaced here by one
 * that fails on demand. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

static int alloc_budget = -1; /* allocations that still succeed; -1: all */
static int alloc_calls;

static void *
test_alloc(size_t n)
{
	alloc_calls++;
	if (alloc_budget == 0)
		return NULL;
	if (alloc_budget > 0)
		alloc_budget--;
	return malloc(n);
}

#define uthash_malloc(sz) test_alloc(sz)
#include "hashtab.h"

typedef struct item {
	int            key;
	UT_hash_handle hh;
} item;

static item *
item_new(int key)
{
	item *it = calloc(1, sizeof *it);

	assert_non_null(it);
	it->key = key;
	return it;
}

static void
table_free(item **head)
{
	item *it, *tmp;

	HASH_ITER(hh, *head, it, tmp) {
		HASH_DEL(*head, it);
		free(it);
	}
}

/* The first add makes the table: two allocations (header, buckets). */
static void
test_no_table(void **state)
{
	item *head = NULL, *it, *found;

	(void)state;
	for (int budget = 0; budget < 2; budget++) {
		alloc_budget = budget;
		it = item_new(1);
		HASH_ADD_INT(head, key, it);
		assert_false(VIGIL_HASH_ADDED(it));
		assert_null(head);
		free(it);
	}
	alloc_budget = -1;
	it = item_new(1);
	HASH_ADD_INT(head, key, it);
	assert_true(VIGIL_HASH_ADDED(it));
	HASH_FIND_INT(head, &(int){ 1 }, found);
	assert_ptr_equal(found, it);
	table_free(&head);
}

/* Adds that need no allocation still succeed; the one that must double
 * the buckets and cannot is left out, and every earlier item is found. */
static void
test_no_growth(void **state)
{
	item *head = NULL, *it, *found;
	int   n = 0;

	(void)state;
	alloc_budget = -1;
	it = item_new(0);
	HASH_ADD_INT(head, key, it);
	assert_true(VIGIL_HASH_ADDED(it));
	n = 1;
	alloc_budget = 0;
	alloc_calls = 0;
	for (;;) {
		it = item_new(n);
		HASH_ADD_INT(head, key, it);
		if (!VIGIL_HASH_ADDED(it)) {
			free(it);
			break;
		}
		n++;
		assert_true(n < 100000); /* a table of 32 buckets must grow by then */
	}
	assert_int_equal(alloc_calls, 1);
	assert_int_equal((int)HASH_COUNT(head), n);
	for (int k = 0; k < n; k++) {
		HASH_FIND_INT(head, &k, found);
		assert_non_null(found);
		assert_int_equal(found->key, k);
	}
	HASH_FIND_INT(head, &n, found);
	assert_null(found);
	/* memory again: the same add goes in, and the table grows */
	alloc_budget = -1;
	it = item_new(n);
	HASH_ADD_INT(head, key, it);
	assert_true(VIGIL_HASH_ADDED(it));
	assert_int_equal((int)HASH_COUNT(head), n + 1);
	table_free(&head);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_table),
		cmocka_unit_test(test_no_growth),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
