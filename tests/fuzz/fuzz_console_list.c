/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_console_list.c - the console's list-file editing
 * (console/util.c: con_list_items, con_list_edit), which reads and rewrites
 * the rule file's list files. Input: one flag byte (bit 0: add), a value up
 * to the first newline, then the file. Checked: after an add the value is an
 * item, after a remove it is not; doing it again changes nothing; the items
 * of the file that are not the value are kept, in order.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "console.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Item i is value, byte for byte (an item may hold a NUL, where strcmp
 * would stop). */
static bool
is(json_t *items, size_t i, const char *value)
{
	json_t *it = json_array_get(items, i);
	size_t  n = strlen(value);

	return json_string_length(it) == n && memcmp(json_string_value(it), value, n) == 0;
}

static json_t *
items_without(json_t *items, const char *value)
{
	json_t *a = json_array();

	for (size_t i = 0; i < json_array_size(items); i++)
		if (!is(items, i, value))
			json_array_append(a, json_array_get(items, i));
	return a;
}

static bool
has(json_t *items, const char *value)
{
	for (size_t i = 0; i < json_array_size(items); i++)
		if (is(items, i, value))
			return true;
	return false;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char value[64], *out = NULL, *out2 = NULL;
	size_t vl = 0, pos = 1, n = 0, n2 = 0;
	bool add, changed = false, changed2 = true;
	json_t *before, *after, *kb, *ka;

	if (size < 2)
		return 0;
	add = (data[0] & 1) != 0;
	while (pos < size && data[pos] != '\n' && vl < sizeof value - 1)
		value[vl++] = (char)data[pos++];
	value[vl] = '\0';
	if (pos < size)
		pos++;
	/* values the console accepts: printable, no spaces, not '#' first */
	if (vl == 0 || value[0] == '#')
		return 0;
	for (size_t i = 0; i < vl; i++)
		if (value[i] <= ' ' || value[i] > '~')
			return 0;
	if (con_list_edit((const char *)data + pos, size - pos, value, add, &out, &n, &changed) !=
	    VIGIL_OK)
		return 0;
	before = con_list_items((const char *)data + pos, size - pos, SIZE_MAX, NULL);
	after = con_list_items(out, n, SIZE_MAX, NULL);
	if (has(after, value) != add || changed != (has(before, value) != add))
		abort();
	kb = items_without(before, value);
	ka = items_without(after, value);
	if (!json_equal(kb, ka))
		abort();
	if (con_list_edit(out, n, value, add, &out2, &n2, &changed2) != VIGIL_OK || changed2 ||
	    n2 != n || memcmp(out, out2, n) != 0)
		abort();
	json_decref(before);
	json_decref(after);
	json_decref(kb);
	json_decref(ka);
	free(out);
	free(out2);
	return 0;
}
