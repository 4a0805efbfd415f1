/* SPDX-License-Identifier: MIT */
/*
 * tests/clients/test_ring.c - the consistent-hash ring of libvigil-client:
 * routing is stable and independent of the order replicas are listed in,
 * load is spread, adding or removing a replica moves only the keys it gains
 * or loses, and the failover order of a key is what the ring would route to
 * if its owner were removed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "ring.h"

#define NKEYS 20000

static const char *const names4[] = {
	"tcp://10.0.0.1:9465", "tcp://10.0.0.2:9465", "tcp://10.0.0.3:9465", "tcp://10.0.0.4:9465",
};

static size_t
owner(const vc_ring *r, int k)
{
	char key[32];
	int  len = snprintf(key, sizeof key, "card-%d", k);

	return vc_ring_owner(r, key, (size_t) len);
}

static void
test_ring_bad_args(void **state)
{
	(void) state;
	assert_null(vc_ring_new(names4, 0, 160));
	assert_null(vc_ring_new(names4, 4, 0));
	assert_null(vc_ring_new(names4, 4, 5000));
	assert_null(vc_ring_new(NULL, 1, 160));
	vc_ring_free(NULL);
}

static void
test_ring_same_set_same_routes(void **state)
{
	const char *const shuffled[] = { names4[2], names4[0], names4[3], names4[1] };
	/* index i in names4 is index map[i] in shuffled */
	const size_t map[] = { 1, 3, 0, 2 };
	vc_ring *a = vc_ring_new(names4, 4, 160);
	vc_ring *b = vc_ring_new(shuffled, 4, 160);
	vc_ring *a2 = vc_ring_new(names4, 4, 160);

	(void) state;
	assert_non_null(a);
	assert_non_null(b);
	assert_non_null(a2);
	for (int k = 0; k < NKEYS; k++) {
		assert_int_equal(owner(a, k), owner(a2, k));
		assert_int_equal(map[owner(a, k)], owner(b, k));
	}
	vc_ring_free(a);
	vc_ring_free(b);
	vc_ring_free(a2);
}

static void
test_ring_spreads_load(void **state)
{
	size_t   count[4] = { 0 };
	vc_ring *r = vc_ring_new(names4, 4, 160);

	(void) state;
	assert_non_null(r);
	for (int k = 0; k < NKEYS; k++)
		count[owner(r, k)]++;
	for (int i = 0; i < 4; i++) {
		/* a fair share is 25%; 160 virtual nodes keep each within 15..35% */
		assert_in_range(count[i], NKEYS * 15 / 100, NKEYS * 35 / 100);
	}
	vc_ring_free(r);
}

static void
test_ring_add_moves_only_to_new(void **state)
{
	vc_ring *r3 = vc_ring_new(names4, 3, 160);
	vc_ring *r4 = vc_ring_new(names4, 4, 160);
	size_t   moved = 0;

	(void) state;
	assert_non_null(r3);
	assert_non_null(r4);
	for (int k = 0; k < NKEYS; k++) {
		size_t before = owner(r3, k), after = owner(r4, k);

		if (before != after) {
			assert_int_equal(after, 3); /* only to the new replica */
			moved++;
		}
	}
	/* about 1/4 of the keys move; never most of them */
	assert_in_range(moved, NKEYS * 15 / 100, NKEYS * 35 / 100);
	vc_ring_free(r3);
	vc_ring_free(r4);
}

static void
test_ring_failover_order_matches_removal(void **state)
{
	/* without names4[0]: ring of the other three, indices shifted by one */
	vc_ring *all = vc_ring_new(names4, 4, 160);
	vc_ring *rest = vc_ring_new(names4 + 1, 3, 160);
	uint8_t  order[4];
	int      checked = 0;

	(void) state;
	assert_non_null(all);
	assert_non_null(rest);
	for (int k = 0; k < NKEYS; k++) {
		char   key[32];
		int    len = snprintf(key, sizeof key, "card-%d", k);
		size_t n = vc_ring_order(all, key, (size_t) len, order);
		bool   seen[4] = { false };

		assert_int_equal(n, 4);
		assert_int_equal(order[0], vc_ring_owner(all, key, (size_t) len));
		for (size_t i = 0; i < n; i++) {
			assert_false(seen[order[i]]);
			seen[order[i]] = true;
		}
		if (order[0] == 0) {
			/* the owner is down: the next replica tried is the new owner */
			assert_int_equal(order[1], vc_ring_owner(rest, key, (size_t) len) + 1);
			checked++;
		} else {
			/* keys of surviving replicas do not move */
			assert_int_equal(order[0], vc_ring_owner(rest, key, (size_t) len) + 1);
		}
	}
	assert_true(checked > 0);
	vc_ring_free(all);
	vc_ring_free(rest);
}

static void
test_ring_single_node(void **state)
{
	vc_ring *r = vc_ring_new(names4, 1, 1);
	uint8_t  order[1];

	(void) state;
	assert_non_null(r);
	for (int k = 0; k < 100; k++)
		assert_int_equal(owner(r, k), 0);
	assert_int_equal(vc_ring_order(r, "x", 1, order), 1);
	assert_int_equal(order[0], 0);
	vc_ring_free(r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ring_bad_args),
		cmocka_unit_test(test_ring_same_set_same_routes),
		cmocka_unit_test(test_ring_spreads_load),
		cmocka_unit_test(test_ring_add_moves_only_to_new),
		cmocka_unit_test(test_ring_failover_order_matches_removal),
		cmocka_unit_test(test_ring_single_node),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
