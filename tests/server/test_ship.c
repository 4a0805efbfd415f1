/* SPDX-License-Identifier: MIT */
/*
 * tests/server/test_ship.c - archive shipping's pure parts: which data file
 * of a sealed segment is shipped (srv_ship_pick), compression finishing
 * between the scan's looks included, and the expansion of ship_command
 * (srv_ship_expand).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "srv.h" /* ship.h, and what its config.h needs */

/* A segment's data files as compression changes them: .log.zst renamed in
 * after the look number zst_at (0: there from the start; -1: never), .log
 * removed after the look number log_gone (-1: never). */
typedef struct seg_files {
	int looks;
	int zst_at, log_gone;
	int seen[4]; /* what each look asked for: 1 .log.zst, 0 .log */
} seg_files;

static int
look(void *arg, bool zst, uint64_t *ret_bytes)
{
	seg_files *f = arg;
	int        n = f->looks++;
	bool       has_zst = f->zst_at >= 0 && n >= f->zst_at;
	bool       has_log = f->log_gone < 0 || n < f->log_gone;

	if (n < 4)
		f->seen[n] = zst;
	if (zst ? !has_zst : !has_log)
		return -1;
	*ret_bytes = zst ? 100 : 1000;
	return 0;
}

static void
test_pick(void **state)
{
	seg_files f;
	bool zst;
	uint64_t bytes;

	(void)state;
	/* not compressed: the .log, after one look for .log.zst */
	f = (seg_files){ .zst_at = -1, .log_gone = -1 };
	assert_true(srv_ship_pick(look, &f, &zst, &bytes));
	assert_false(zst);
	assert_true(bytes == 1000);
	assert_int_equal(f.looks, 2);
	/* compressed: the .log.zst, looked at first */
	f = (seg_files){ .zst_at = 0, .log_gone = 0 };
	assert_true(srv_ship_pick(look, &f, &zst, &bytes));
	assert_true(zst);
	assert_true(bytes == 100);
	assert_int_equal(f.looks, 1);
	/* compression running: both there, the .log.zst shipped */
	f = (seg_files){ .zst_at = 0, .log_gone = -1 };
	assert_true(srv_ship_pick(look, &f, &zst, &bytes));
	assert_true(zst);
	/* compression finished between the two looks: no .log.zst at the
	 * first, no .log at the second; the third finds the .log.zst */
	f = (seg_files){ .zst_at = 1, .log_gone = 1 };
	assert_true(srv_ship_pick(look, &f, &zst, &bytes));
	assert_true(zst);
	assert_true(bytes == 100);
	assert_int_equal(f.looks, 3);
	assert_int_equal(f.seen[0], 1);
	assert_int_equal(f.seen[1], 0);
	assert_int_equal(f.seen[2], 1);
	/* neither (the segment is being removed): skipped */
	f = (seg_files){ .zst_at = -1, .log_gone = 0 };
	assert_false(srv_ship_pick(look, &f, &zst, &bytes));
	assert_int_equal(f.looks, 3);
}

static void
test_expand(void **state)
{
	char buf[128];

	(void)state;
	assert_int_equal(srv_ship_expand("cp %p /mnt/%r/%f && echo 100%%", "/d/a b's", "a b's",
	    "eu-1", buf, sizeof buf), VIGIL_OK);
	assert_string_equal(buf, "cp '/d/a b'\\''s' /mnt/'eu-1'/'a b'\\''s' && echo 100%");
	assert_int_equal(srv_ship_expand("cp %x", "p", "f", "r", buf, sizeof buf), VIGIL_EINVAL);
	assert_int_equal(srv_ship_expand("cp %", "p", "f", "r", buf, sizeof buf), VIGIL_EINVAL);
	assert_int_equal(srv_ship_expand("cp %p", "/a/long/path", "f", "r", buf, 10),
	    VIGIL_ETOOBIG);
	assert_int_equal(srv_ship_expand("", "p", "f", "r", buf, 1), VIGIL_OK);
	assert_string_equal(buf, "");
	assert_int_equal(srv_ship_expand("x", "p", "f", "r", buf, 0), VIGIL_ETOOBIG);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pick),
		cmocka_unit_test(test_expand),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
