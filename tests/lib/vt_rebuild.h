/* SPDX-License-Identifier: MIT */
/*
 * tests/lib/vt_rebuild.h - run vigil-rebuild as a process and read its JSON
 * summary, for the tests of the nightly cycle. Test code: a failure ends
 * the test with a message (cmocka fail_msg), never a half-read summary.
 */
#ifndef VIGIL_TEST_VT_REBUILD_H
#define VIGIL_TEST_VT_REBUILD_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

/*
 * batch/vigil-rebuild --data dir --as-of day --force --json --quiet [extra]
 * (extra: NULL-terminated, may be NULL; at most 20 arguments); --threads 1
 * unless extra names --threads (the thread count is part of what makes a
 * model's bytes). Run from the build root (harness.h: vt_run). Returns the
 * parsed summary (json_decref it); fails the test on a non-zero exit or
 * output that is not JSON.
 */
json_t *vt_rebuild(const char *dir, const char *day, const char *const *extra);

/* summary[obj][key] (obj NULL: summary[key]) as an integer; fails the test
 * when it is missing or not an integer. */
uint64_t vt_sum_int(json_t *sum, const char *obj, const char *key);

/* summary.model.trained is true. */
bool vt_sum_trained(json_t *sum);

#endif
