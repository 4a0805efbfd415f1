/* SPDX-License-Identifier: MIT */
/*
 * tests/lib/vt_rebuild.c - vigil-rebuild as a process, its summary as JSON
 * (vt_rebuild.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"
#include "vt_rebuild.h"

json_t *
vt_rebuild(const char *dir, const char *day, const char *const *extra)
{
	const char *argv[32];
	int argc = 0, rc, i;
	char *out = NULL;
	json_error_t jerr;
	json_t *sum;
	bool threads = false;

	argv[argc++] = "batch/vigil-rebuild";
	argv[argc++] = "--data";
	argv[argc++] = dir;
	argv[argc++] = "--as-of";
	argv[argc++] = day;
	argv[argc++] = "--force";
	argv[argc++] = "--json";
	argv[argc++] = "--quiet";
	for (i = 0; extra != NULL && extra[i] != NULL; i++) {
		if (argc >= 29)
			fail_msg("vt_rebuild: more than 20 extra arguments");
		threads |= strcmp(extra[i], "--threads") == 0;
		argv[argc++] = extra[i];
	}
	if (!threads) {
		argv[argc++] = "--threads";
		argv[argc++] = "1";
	}
	argv[argc] = NULL;
	rc = vt_run(argv, &out);
	if (rc != 0)
		fail_msg("vigil-rebuild --data %s --as-of %s exited %d: %s", dir, day, rc,
		    out != NULL ? out : "");
	sum = json_loads(out != NULL ? out : "", 0, &jerr);
	if (sum == NULL)
		fail_msg("vigil-rebuild --json: not JSON (%s): %s", jerr.text, out != NULL ? out : "");
	free(out);
	return sum;
}

uint64_t
vt_sum_int(json_t *sum, const char *obj, const char *key)
{
	json_t *o = obj != NULL ? json_object_get(sum, obj) : sum;
	json_t *v = json_object_get(o, key);

	if (!json_is_integer(v))
		fail_msg("summary: %s.%s missing", obj != NULL ? obj : "", key);
	return (uint64_t)json_integer_value(v);
}

bool
vt_sum_trained(json_t *sum)
{
	return json_is_true(json_object_get(json_object_get(sum, "model"), "trained"));
}
