/* SPDX-License-Identifier: MIT */
/* tests/common/test_vec.c - the capped growable array (common/vec.h):
 * growth keeps the elements, the cap is hard (push, append, reserve), a
 * failed call changes nothing, fini empties for reuse, remove_swap moves
 * the last element into the hole. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vec.h"

typedef struct item {
	uint64_t k;
	char     name[12];
} item;

static void
test_push_grows_and_keeps(void **state)
{
	vigil_vec v;
	item      it = { 0 };

	(void)state;
	vigil_vec_init(&v, sizeof(item), 100000);
	assert_null(v.data);
	assert_int_equal(v.len, 0);
	for (uint64_t i = 0; i < 10000; i++) {
		it.k = i * 7;
		assert_int_equal(vigil_vec_push(&v, &it), VIGIL_OK);
	}
	assert_int_equal(v.len, 10000);
	assert_true(v.cap >= v.len && v.cap <= v.max);
	for (uint64_t i = 0; i < 10000; i++)
		assert_int_equal(((item *)v.data)[i].k, i * 7);
	assert_int_equal(((item *)vigil_vec_at(&v, 9999))->k, 9999 * 7);
	vigil_vec_clear(&v);
	assert_int_equal(v.len, 0);
	assert_non_null(v.data);
	vigil_vec_fini(&v);
	assert_null(v.data);
	assert_int_equal(v.len, 0);
	assert_int_equal(v.cap, 0);
	/* usable again after fini */
	assert_int_equal(vigil_vec_push(&v, &it), VIGIL_OK);
	assert_int_equal(v.len, 1);
	vigil_vec_fini(&v);
	vigil_vec_fini(NULL);
}

static void
test_cap_is_hard(void **state)
{
	vigil_vec v;
	uint32_t  x = 5, many[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };

	(void)state;
	vigil_vec_init(&v, sizeof x, 20);
	for (uint32_t i = 0; i < 20; i++)
		assert_int_equal(vigil_vec_push(&v, &i), VIGIL_OK);
	assert_int_equal(v.cap, 20); /* grown to the cap, not past it */
	assert_int_equal(vigil_vec_push(&v, &x), VIGIL_ETOOBIG);
	assert_int_equal(v.len, 20);
	assert_int_equal(((uint32_t *)v.data)[19], 19);
	assert_int_equal(vigil_vec_reserve(&v, 1), VIGIL_ETOOBIG);
	assert_int_equal(vigil_vec_reserve(&v, 0), VIGIL_OK);
	assert_int_equal(vigil_vec_reserve(&v, SIZE_MAX), VIGIL_ETOOBIG);
	vigil_vec_fini(&v);

	/* append is all or nothing */
	vigil_vec_init(&v, sizeof x, 10);
	assert_int_equal(vigil_vec_append(&v, many, 8), VIGIL_OK);
	assert_int_equal(vigil_vec_append(&v, many, 3), VIGIL_ETOOBIG);
	assert_int_equal(v.len, 8);
	assert_int_equal(vigil_vec_append(&v, many, 2), VIGIL_OK);
	assert_int_equal(v.len, 10);
	assert_int_equal(((uint32_t *)v.data)[9], 2);
	assert_int_equal(vigil_vec_append(&v, NULL, 0), VIGIL_OK);
	vigil_vec_fini(&v);

	/* a cap of 0 holds nothing */
	vigil_vec_init(&v, sizeof x, 0);
	assert_int_equal(vigil_vec_push(&v, &x), VIGIL_ETOOBIG);
	assert_null(v.data);
	vigil_vec_fini(&v);
}

static void
test_reserve_then_fill(void **state)
{
	vigil_vec v;

	(void)state;
	vigil_vec_init(&v, 1, 1000);
	assert_int_equal(vigil_vec_reserve(&v, 300), VIGIL_OK);
	assert_int_equal(v.len, 0);
	assert_true(v.cap >= 300 && v.cap <= 1000);
	memset(v.data, 'a', 300);
	v.len = 300;
	assert_int_equal(vigil_vec_append(&v, "bcd", 3), VIGIL_OK);
	assert_memory_equal((char *)v.data + 299, "abcd", 4);
	vigil_vec_fini(&v);
}

/* max_elems * elem_size never overflows: the cap is clamped at init. */
/* The last element takes the removed one's place; removing the last one
 * just shortens the array. */
static void
test_remove_swap(void **state)
{
	vigil_vec v;
	uint32_t  in[5] = { 10, 11, 12, 13, 14 };
	uint32_t *a;

	(void)state;
	vigil_vec_init(&v, sizeof in[0], 16);
	assert_int_equal(vigil_vec_append(&v, in, 5), VIGIL_OK);
	vigil_vec_remove_swap(&v, 1);
	a = v.data;
	assert_int_equal(v.len, 4);
	assert_int_equal(a[0], 10);
	assert_int_equal(a[1], 14);
	assert_int_equal(a[2], 12);
	assert_int_equal(a[3], 13);
	vigil_vec_remove_swap(&v, 3);
	assert_int_equal(v.len, 3);
	assert_int_equal(a[2], 12);
	vigil_vec_remove_swap(&v, 0);
	vigil_vec_remove_swap(&v, 0);
	vigil_vec_remove_swap(&v, 0);
	assert_int_equal(v.len, 0);
	vigil_vec_fini(&v);
}

static void
test_cap_clamped_to_size(void **state)
{
	vigil_vec v;

	(void)state;
	vigil_vec_init(&v, 1024, SIZE_MAX);
	assert_int_equal(v.max, SIZE_MAX / 1024);
	assert_int_equal(vigil_vec_reserve(&v, SIZE_MAX / 1024 + 1), VIGIL_ETOOBIG);
	vigil_vec_fini(&v);
}

static void
test_buf_reserve(void **state)
{
	uint8_t *buf = NULL, *was;
	size_t cap = 0;

	(void)state;
	assert_int_equal(vigil_buf_reserve(&buf, &cap, 10), VIGIL_OK);
	assert_int_equal(cap, 10);
	memcpy(buf, "0123456789", 10);
	/* no smaller than it is: untouched */
	was = buf;
	assert_int_equal(vigil_buf_reserve(&buf, &cap, 4), VIGIL_OK);
	assert_ptr_equal(buf, was);
	assert_int_equal(cap, 10);
	/* grown: the bytes kept */
	assert_int_equal(vigil_buf_reserve(&buf, &cap, 100000), VIGIL_OK);
	assert_int_equal(cap, 100000);
	assert_memory_equal(buf, "0123456789", 10);
	free(buf);
}

static void
test_array_reserve(void **state)
{
	uint32_t *a = NULL, *was;
	size_t cap = 0;

	(void)state;
	/* need 0: nothing allocated */
	assert_int_equal(vigil_array_reserve(&a, &cap, 0, sizeof *a, 8, 100), VIGIL_OK);
	assert_null(a);
	assert_int_equal(cap, 0);
	/* the first growth is first, or need when larger */
	assert_int_equal(vigil_array_reserve(&a, &cap, 3, sizeof *a, 8, 100), VIGIL_OK);
	assert_int_equal(cap, 8);
	for (uint32_t i = 0; i < 8; i++)
		a[i] = i * 7;
	was = a;
	assert_int_equal(vigil_array_reserve(&a, &cap, 8, sizeof *a, 8, 100), VIGIL_OK);
	assert_ptr_equal(a, was);
	assert_int_equal(cap, 8);
	/* doubling, the elements kept */
	assert_int_equal(vigil_array_reserve(&a, &cap, 9, sizeof *a, 8, 100), VIGIL_OK);
	assert_int_equal(cap, 16);
	assert_int_equal(vigil_array_reserve(&a, &cap, 40, sizeof *a, 8, 100), VIGIL_OK);
	assert_int_equal(cap, 64);
	for (uint32_t i = 0; i < 8; i++)
		assert_int_equal(a[i], i * 7);
	/* never past max; past it an error with the array as it was */
	assert_int_equal(vigil_array_reserve(&a, &cap, 65, sizeof *a, 8, 100), VIGIL_OK);
	assert_int_equal(cap, 100);
	was = a;
	assert_int_equal(vigil_array_reserve(&a, &cap, 101, sizeof *a, 8, 100), VIGIL_ETOOBIG);
	assert_ptr_equal(a, was);
	assert_int_equal(cap, 100);
	assert_int_equal(a[7], 49);
	free(a);
}

static void
test_array_grown_and_resize(void **state)
{
	double *x = NULL;
	char   *y = NULL;
	size_t  cap = 0, ncap;

	(void)state;
	assert_int_equal(vigil_array_grown(0, 1, 4, 10), 4);
	assert_int_equal(vigil_array_grown(4, 3, 4, 10), 4);
	assert_int_equal(vigil_array_grown(4, 5, 4, 10), 8);
	assert_int_equal(vigil_array_grown(8, 9, 4, 10), 10);
	assert_int_equal(vigil_array_grown(10, 11, 4, 10), 0);
	assert_int_equal(vigil_array_grown(0, 3, 0, 10), 4);
	/* a capacity near SIZE_MAX does not wrap */
	assert_int_equal(vigil_array_grown(SIZE_MAX / 2 + 1, SIZE_MAX, 1, SIZE_MAX), SIZE_MAX);
	/* parallel arrays grown to one capacity */
	ncap = vigil_array_grown(cap, 5, 4, 10);
	assert_int_equal(vigil_array_resize(&x, ncap, sizeof *x), VIGIL_OK);
	assert_int_equal(vigil_array_resize(&y, ncap, sizeof *y), VIGIL_OK);
	cap = ncap;
	x[7] = 1.5;
	y[7] = 'z';
	assert_int_equal(cap, 8);
	/* an element count whose bytes overflow: refused, the array kept */
	assert_int_equal(vigil_array_resize(&x, SIZE_MAX / 2, sizeof *x), VIGIL_ENOMEM);
	assert_non_null(x);
	assert_true(x[7] == 1.5);
	free(x);
	free(y);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_push_grows_and_keeps),
		cmocka_unit_test(test_cap_is_hard),
		cmocka_unit_test(test_reserve_then_fill),
		cmocka_unit_test(test_remove_swap),
		cmocka_unit_test(test_cap_clamped_to_size),
		cmocka_unit_test(test_buf_reserve),
		cmocka_unit_test(test_array_reserve),
		cmocka_unit_test(test_array_grown_and_resize),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
