/* SPDX-License-Identifier: MIT */
/*
 * tests/server/test_watch.c - the rule-file watch (server/watch.c) on real
 * files: an edit is due once, after one stable tick; an edit and a SIGHUP
 * (srv_watch_sync, then the reload) in either order are compiled once,
 * by the SIGHUP, whichever of the two saw the edit first; an edit made
 * after the SIGHUP's reload read the file is still due.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "srv.h"
#include "watch.h"

/* vigild's log (server/main.c): the watch logs a file that disappears. */
void
srv_log(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static char dir[64];
static char path[128];

/* Replaces the rule file as editors and deploy tools do (a new inode). */
static void
edit(const char *text)
{
	char tmp[160];
	FILE *f;

	snprintf(tmp, sizeof tmp, "%s/.live.rules.tmp", dir);
	assert_non_null(f = fopen(tmp, "w"));
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(rename(tmp, path), 0);
}

static int
setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof dir, "/tmp/vigil-watch-XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(path, sizeof path, "%s/live.rules", dir);
	edit("version \"1\"\n");
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	unlink(path);
	rmdir(dir);
	return 0;
}

/* Ticks until the watch says a reload is due (at most 3 ticks). */
static int
ticks_to_due(srv_watch *w, char *why, size_t len)
{
	for (int i = 1; i <= 3; i++)
		if (srv_watch_tick(w, why, len))
			return i;
	return 0;
}

static void
test_edit_is_due_once(void **state)
{
	srv_watch w;
	char why[64];

	(void)state;
	assert_true(srv_watch_init(&w, path));
	assert_int_equal(ticks_to_due(&w, why, sizeof why), 0);
	edit("version \"2\"\nrule r { when amount > score 1 }\n");
	assert_int_equal(ticks_to_due(&w, why, sizeof why), 2); /* seen, then stable */
	assert_string_equal(why, "file changed");
	assert_int_equal(ticks_to_due(&w, why, sizeof why), 0);
	srv_watch_free(&w);
}

/* The SIGHUP before the watch's next stat: the watch must not reload. */
static void
test_sighup_then_watch_compiles_once(void **state)
{
	srv_watch w;
	char why[64];

	(void)state;
	assert_true(srv_watch_init(&w, path));
	edit("version \"3\"\nrule r { when amount > score 1 }\n");
	srv_watch_sync(&w); /* SIGHUP: its reload compiles the edit */
	assert_int_equal(ticks_to_due(&w, why, sizeof why), 0);
	srv_watch_free(&w);
}

/* The watch saw the edit (pending) when the SIGHUP came: that reload
 * covers it, the pending one is dropped. */
static void
test_watch_then_sighup_compiles_once(void **state)
{
	srv_watch w;
	char why[64];

	(void)state;
	assert_true(srv_watch_init(&w, path));
	edit("version \"4\"\nrule r { when amount > score 1 }\n");
	assert_false(srv_watch_tick(&w, why, sizeof why)); /* seen, pending */
	srv_watch_sync(&w);
	assert_int_equal(ticks_to_due(&w, why, sizeof why), 0);
	srv_watch_free(&w);
}

/* An edit after the SIGHUP's reload read the file is reloaded by the watch. */
static void
test_edit_after_sighup_is_due(void **state)
{
	srv_watch w;
	char why[64];

	(void)state;
	assert_true(srv_watch_init(&w, path));
	srv_watch_sync(&w);
	edit("version \"5\"\n");
	assert_int_equal(ticks_to_due(&w, why, sizeof why), 2);
	srv_watch_free(&w);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_edit_is_due_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sighup_then_watch_compiles_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_watch_then_sighup_compiles_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_edit_after_sighup_is_due, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
