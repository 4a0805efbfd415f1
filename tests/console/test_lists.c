/* SPDX-License-Identifier: MIT */
/*
 * tests/console/test_lists.c - a list file as the console shows and edits
 * it (console/util.c, con_list_items and con_list_edit), in vigild's format:
 * one item a line, trimmed, blank and '#' lines not items. An item that
 * vigild would refuse shows as a placeholder (not UTF-8, or holding a NUL
 * byte), and an edit matches items byte for byte, so "c" is not "c\0".
 */
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "console.h"

static void
expect_items(const char *buf, size_t len, const char *const *want, size_t n)
{
	size_t count = 0;
	json_t *a = con_list_items(buf, len, SIZE_MAX, &count);

	assert_non_null(a);
	assert_int_equal(json_array_size(a), n);
	assert_int_equal(count, n);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(json_string_value(json_array_get(a, i)), want[i]);
	json_decref(a);
	/* the first two made, all counted */
	a = con_list_items(buf, len, 2, &count);
	assert_int_equal(json_array_size(a), n < 2 ? n : 2);
	assert_int_equal(count, n);
	for (size_t i = 0; i < json_array_size(a); i++)
		assert_string_equal(json_string_value(json_array_get(a, i)), want[i]);
	json_decref(a);
}

static void
test_items(void **state)
{
	static const char text[] = "# blocked\n  c1 \n\n\tc2\r\n#c3\nc\xff\nc\0x\nlast";
	static const char *const want[] = { "c1", "c2", "(not UTF-8)", "(contains a NUL byte)",
		"last" };

	(void)state;
	expect_items(text, sizeof text - 1, want, 5);
	expect_items("", 0, want, 0);
}

static void
test_edit(void **state)
{
	static const char text[] = "# blocked\nc1\n c2 \nc\0\n";
	char *out = NULL;
	size_t n = 0;
	bool changed = false;

	(void)state;
	/* removing c2 drops its line; the others stay byte for byte */
	assert_int_equal(con_list_edit(text, sizeof text - 1, "c2", false, &out, &n, &changed),
	    VIGIL_OK);
	assert_true(changed);
	assert_int_equal(n, sizeof text - 1 - 5);
	assert_memory_equal(out, "# blocked\nc1\nc\0\n", n);
	free(out);
	/* "c" is not the item "c\0": nothing to remove, and adding appends it */
	assert_int_equal(con_list_edit(text, sizeof text - 1, "c", false, &out, &n, &changed),
	    VIGIL_OK);
	assert_false(changed);
	assert_int_equal(n, sizeof text - 1);
	free(out);
	assert_int_equal(con_list_edit(text, sizeof text - 1, "c", true, &out, &n, &changed),
	    VIGIL_OK);
	assert_true(changed);
	assert_int_equal(n, sizeof text - 1 + 2);
	assert_memory_equal(out + n - 2, "c\n", 2);
	free(out);
	/* an item already there is not added twice */
	assert_int_equal(con_list_edit(text, sizeof text - 1, "c1", true, &out, &n, &changed),
	    VIGIL_OK);
	assert_false(changed);
	free(out);
	assert_int_equal(con_list_edit(text, sizeof text - 1, "a\nb", true, &out, &n, &changed),
	    VIGIL_EINVAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_items),
		cmocka_unit_test(test_edit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
