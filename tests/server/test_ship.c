/* SPDX-License-Identifier: MIT */
/*
 * tests/server/test_ship.c - archive shipping's pure parts: which data file
 * of a sealed segment is shipped (srv_ship_pick), compression finishing
 * between the scan's looks included, the expansion of ship_command
 * (srv_ship_expand), and which segments a scan keeps (srv_ship_keep).
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

/*
 * A scan keeps the lowest-numbered segments whatever order the directory
 * lists them in: 3,000 sealed segments offered in a scrambled order to a
 * scan that keeps 64 leave exactly 1..64, sorted; below the cap, all of
 * them. Keeping the first 64 listed would ship segment 2,999 and move past
 * segment 1 for good.
 */
static void
test_keep_lowest(void **state)
{
	enum { N = 3000, CAP = 64 };
	static ship_seg segs[CAP];
	uint32_t n = 0, i;

	(void)state;
	for (i = 0; i < N; i++) {
		ship_seg g = { .seq = (uint64_t)((i * 1733u) % N) + 1, .bytes = i, .zst = false };
		bool would = srv_ship_keep_would(segs, n, CAP, g.seq);

		srv_ship_keep(segs, &n, CAP, &g);
		/* would: it is in the heap now */
		bool in = false;
		for (uint32_t k = 0; k < n; k++)
			in = in || segs[k].seq == g.seq;
		assert_int_equal(in, would);
	}
	assert_int_equal(n, CAP);
	srv_ship_sort(segs, n);
	for (i = 0; i < CAP; i++)
		assert_int_equal(segs[i].seq, i + 1);

	n = 0;
	for (i = 0; i < 10; i++) {
		ship_seg g = { .seq = 100 - i * 7 };

		srv_ship_keep(segs, &n, CAP, &g);
	}
	assert_int_equal(n, 10);
	srv_ship_sort(segs, n);
	for (i = 0; i < 10; i++)
		assert_int_equal(segs[i].seq, 100 - (9 - i) * 7);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pick),
		cmocka_unit_test(test_expand),
		cmocka_unit_test(test_keep_lowest),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
