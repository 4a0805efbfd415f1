/* SPDX-License-Identifier: MIT */
/*
 * tests/store_archive/test_vigild_fault.c - a real vigild whose archive
 * hits a full disk (ENOSPC from the LD_PRELOAD shim fault_shim.c, set for
 * the child only) and heals without a restart: while it fails, scores are
 * refused (never acknowledged), /readyz answers 503 with ready:false and
 * the reason ("No space left on device"), /metrics has
 * vigil_archive_error{errno="ENOSPC"} 1, and the log says so once; once
 * space is back, /readyz is 200 again within seconds without traffic, the
 * gauge is 0, the log says it healed, and a retry of the refused
 * transaction is scored (it was never archived) while a retry of an
 * acknowledged one is a duplicate. The archive then holds exactly the
 * acknowledged transactions and reads clean.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "archive.h"

#define T0 1767225600000LL

static char g_fault[320];

static void
flag(const char *name, bool on)
{
	char p[400];

	snprintf(p, sizeof p, "%s/%s", g_fault, name);
	if (on) {
		int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		assert_true(fd >= 0);
		close(fd);
	} else {
		assert_int_equal(unlink(p), 0);
	}
}

static unsigned
count_lines(const char *path, const char *needle)
{
	char line[2048];
	unsigned n = 0;
	FILE *fp = fopen(path, "r");

	if (fp == NULL)
		return 0;
	while (fgets(line, sizeof line, fp) != NULL)
		if (strstr(line, needle) != NULL)
			n++;
	fclose(fp);
	return n;
}

static Vigil__V1__Status
score(vt_server *s, const char *id, const char *card, bool *ret_dup, char *ret_msg, size_t mlen)
{
	Vigil__V1__Reply *r = vt_score(s->url, vt_txn(0, id, card, 1234, T0), false);
	Vigil__V1__Status st;

	assert_non_null(r);
	st = r->status;
	if (ret_dup != NULL)
		*ret_dup = st == VIGIL__V1__STATUS__STATUS_OK && r->score != NULL && r->score->duplicate;
	if (ret_msg != NULL)
		snprintf(ret_msg, mlen, "%s", r->message);
	vigil__v1__reply__free_unpacked(r, NULL);
	return st;
}

static int
http_status(vt_server *s, const char *path, char **ret_body)
{
	int code = 0;
	char *body = NULL;

	assert_int_equal(vt_http_get(s->admin_port, path, &code, &body), 0);
	if (ret_body != NULL)
		*ret_body = body;
	else
		free(body);
	return code;
}

static void
test_full_disk_heals(void **state)
{
	vt_server s;
	const char *shim = getenv("VIGIL_FAULT_SHIM");
	const char *args[] = { "--fsync", "always", NULL };
	char msg[512], path[400], *body = NULL;
	bool dup = false;
	unsigned ok = 0;
	int code = 0;

	(void)state;
	if (shim == NULL || access(shim, R_OK) != 0)
		skip();
	memset(&s, 0, sizeof s);
	snprintf(g_fault, sizeof g_fault, "%s/vigil-vfault-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	assert_non_null(mkdtemp(g_fault));
	/* the archive appends with write(2), so a write can fail at any time */
	flag("no-fallocate", true);
	setenv("VIGIL_FAULT_DIR", g_fault, 1);
	setenv("LD_PRELOAD", shim, 1);
	assert_int_equal(vt_server_start(&s, NULL, args), 0);
	unsetenv("LD_PRELOAD");

	assert_int_equal(score(&s, "ok-1", "card-1", NULL, NULL, 0), VIGIL__V1__STATUS__STATUS_OK);
	assert_int_equal(http_status(&s, "/readyz", NULL), 200);

	flag("write-enospc", true);
	assert_int_not_equal(score(&s, "full-1", "card-2", NULL, msg, sizeof msg),
	    VIGIL__V1__STATUS__STATUS_OK);
	if (strstr(msg, "No space left on device") == NULL)
		fail_msg("message: %s", msg);
	code = http_status(&s, "/readyz", &body);
	assert_int_equal(code, 503);
	assert_non_null(strstr(body, "\"ready\":false"));
	if (strstr(body, "No space left on device") == NULL || strstr(body, "ENOSPC") == NULL)
		fail_msg("/readyz: %s", body);
	free(body);
	assert_int_equal(http_status(&s, "/metrics", &body), 200);
	assert_non_null(strstr(body, "vigil_archive_error{errno=\"ENOSPC\"} 1\n"));
	free(body);
	/* a burst while full: nothing acknowledged, and no line per request */
	for (int i = 0; i < 200; i++) {
		char id[32];

		snprintf(id, sizeof id, "full-b%d", i);
		if (score(&s, id, "card-3", NULL, NULL, 0) == VIGIL__V1__STATUS__STATUS_OK)
			ok++;
	}
	assert_int_equal(ok, 0);
	assert_int_equal(score(&s, "full-1", "card-2", NULL, NULL, 0) == VIGIL__V1__STATUS__STATUS_OK,
	    0);
	usleep(300000); /* the main loop's watch: every 100 ms */
	assert_int_equal(count_lines(s.log, "archive: failing: write"), 1);
	assert_true(count_lines(s.log, "No space left on device (ENOSPC)") >= 1);

	/* space again: healed within a few seconds, without a request */
	flag("write-enospc", false);
	for (int i = 0; i < 100 && (code = http_status(&s, "/readyz", NULL)) != 200; i++)
		usleep(100000);
	assert_int_equal(code, 200);
	assert_int_equal(http_status(&s, "/metrics", &body), 200);
	assert_non_null(strstr(body, "vigil_archive_error 0\n"));
	free(body);
	usleep(300000);
	assert_int_equal(count_lines(s.log, "archive: healed after"), 1);
	assert_int_equal(score(&s, "ok-2", "card-4", &dup, NULL, 0), VIGIL__V1__STATUS__STATUS_OK);
	assert_false(dup);
	assert_int_equal(score(&s, "ok-1", "card-1", &dup, NULL, 0), VIGIL__V1__STATUS__STATUS_OK);
	assert_true(dup);
	/* never acknowledged, never archived: scored now, not a duplicate */
	assert_int_equal(score(&s, "full-1", "card-2", &dup, NULL, 0), VIGIL__V1__STATUS__STATUS_OK);
	assert_false(dup);
	assert_int_equal(vt_server_stop(&s), 0);

	{
		/* exactly ok-1, ok-2, full-1, and clean */
		char dir[400];
		store_reader *rd = NULL;
		store_record r;
		store_reader_stats st;
		store_diag d;
		unsigned n = 0;

		snprintf(dir, sizeof dir, "%s/archive", s.datadir);
		assert_int_equal(store_reader_open(dir, INT64_MIN, INT64_MAX, NULL, NULL, &rd, &d),
		    VIGIL_OK);
		while (store_reader_next(rd, &r, &d) == VIGIL_OK)
			n += r.type == STORE_REC_SCORE;
		store_reader_get_stats(rd, &st);
		store_reader_close(rd);
		assert_int_equal(n, 3);
		assert_int_equal(st.corrupt_records, 0);
	}
	vt_server_cleanup(&s);
	snprintf(path, sizeof path, "%s/no-fallocate", g_fault);
	unlink(path);
	rmdir(g_fault);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full_disk_heals),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
