/* SPDX-License-Identifier: MIT */
/*
 * tests/batch/test_batch_kill.c - failure safety: a vigil-rebuild SIGKILLed
 * while it writes generation N+1 leaves CURRENT on generation N, N still
 * readable and no N+1 visible; the next run takes the lock again, clears
 * the leftover and commits. The kill lands mid-write by construction: the
 * test waits until the new generation's temporary LMDB file has grown past
 * its first committed batch of cards, which happens only between
 * store_genw_begin and the rename in store_genw_commit.
 */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "batch.h"
#include "genread.h"
#include "fixture.h"

#define A (1772323200000LL) /* 2026-03-01T00:00:00Z */
#define D VIGIL_MS_PER_DAY
#define NCARDS 100000

/* Size of data.mdb inside the features/.tmp-gen-* directory, 0 if none. */
static off_t
tmp_gen_bytes(const char *datadir, bool *ret_exists)
{
	char fdir[600], path[1200];
	DIR *d;
	struct dirent *de;
	struct stat sb;
	off_t n = 0;

	*ret_exists = false;
	snprintf(fdir, sizeof fdir, "%s/features", datadir);
	d = opendir(fdir);
	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, ".tmp-gen-", 9) != 0)
			continue;
		*ret_exists = true;
		snprintf(path, sizeof path, "%s/%s/data.mdb", fdir, de->d_name);
		if (stat(path, &sb) == 0)
			n = sb.st_size;
	}
	closedir(d);
	return n;
}

static bool
gen_dir_exists(const char *datadir, uint64_t gen)
{
	char path[700];
	struct stat sb;

	snprintf(path, sizeof path, "%s/features/gen-%06llu", datadir, (unsigned long long)gen);
	return stat(path, &sb) == 0;
}

static void
test_kill_mid_write_keeps_current(void **state)
{
	const char *dd = fx_tmpdir(0);
	store_archive *ar = fx_archive(dd);
	batch_opts o;
	batch_summary *s = calloc(1, sizeof *s);
	store_diag d;
	store_gen *g = NULL;
	store_gen_meta meta;
	store_card_profile cp;
	char tid[32], card[32], merch[32];
	uint64_t cur = 0, g1;
	pid_t pid;
	int st = 0;
	bool killed = false, exists;

	(void)state;
	for (int i = 0; i < NCARDS; i++) {
		fx_txn t = { 0 };

		snprintf(tid, sizeof tid, "t%d", i);
		snprintf(card, sizeof card, "card-%06d", i);
		snprintf(merch, sizeof merch, "m%d", i % 500);
		t.txn_id = tid;
		t.card = card;
		t.merchant = merch;
		t.country = "FR";
		t.currency = "EUR";
		t.amount_minor = 100 + i % 977;
		t.t = A - 3 * D + (int64_t)i * 1000;
		fx_score(ar, &t);
	}
	store_archive_close(ar);

	/* Generation 1: as of A - 1 day. */
	batch_opts_default(&o);
	o.datadir = dd;
	o.as_of_ms = A - D;
	o.window_ms = 90 * D;
	assert_int_equal(batch_rebuild(&o, s, &d), VIGIL_OK);
	g1 = s->generation;
	assert_int_equal(store_gen_current(dd, &cur), VIGIL_OK);
	assert_int_equal(cur, g1);

	/* Generation 2, as of A, killed while its tables are being written. */
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		const char *argv[] = { fx_rebuild_bin(), "--data", dd, "--as-of", "2026-03-01",
		    "--threads", "1", "-q", NULL };
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	for (int i = 0; i < 60000; i++) { /* at most ~60 s */
		struct timespec ts = { 0, 1000000 };

		if (tmp_gen_bytes(dd, &exists) > (off_t)(1 << 20)) {
			kill(pid, SIGKILL);
			killed = true;
			break;
		}
		if (waitpid(pid, &st, WNOHANG) == pid) {
			pid = 0;
			break;
		}
		nanosleep(&ts, NULL);
	}
	if (pid != 0)
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
	if (!killed)
		fail_msg("the rebuild finished (status %d) before it could be killed mid-write", st);
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);

	/* CURRENT still names generation 1, which serves as before. */
	assert_int_equal(store_gen_current(dd, &cur), VIGIL_OK);
	assert_int_equal(cur, g1);
	assert_false(gen_dir_exists(dd, g1 + 1));
	tmp_gen_bytes(dd, &exists);
	assert_true(exists); /* the half-written generation, invisible to readers */
	assert_int_equal(store_gen_open_current(dd, &g, &d), VIGIL_OK);
	assert_int_equal(store_gen_meta_get(g, &meta), VIGIL_OK);
	assert_int_equal(meta.generation, g1);
	assert_int_equal(meta.as_of_ms, A - D);
	assert_int_equal(store_gen_card(g, "card-000007", &cp), VIGIL_OK);
	assert_int_equal(cp.count_7d, 1);
	store_gen_close(g);
	g = NULL;

	/* The kill released the lock: the next run commits and clears the leftover. */
	o.as_of_ms = A;
	memset(s, 0, sizeof *s);
	assert_int_equal(batch_rebuild(&o, s, &d), VIGIL_OK);
	assert_false(s->skipped);
	assert_int_equal(store_gen_current(dd, &cur), VIGIL_OK);
	assert_int_equal(cur, s->generation);
	assert_true(cur > g1);
	tmp_gen_bytes(dd, &exists);
	assert_false(exists);
	assert_int_equal(store_gen_open_current(dd, &g, &d), VIGIL_OK);
	assert_int_equal(store_gen_card(g, "card-099999", &cp), VIGIL_OK);
	assert_int_equal(cp.count_90d, 1);
	store_gen_close(g);
	free(s);
	fx_rm_rf(dd);
}

/*
 * A full disk while the new generation is written (RLIMIT_FSIZE with
 * SIGXFSZ ignored: every write past 512 KiB fails with EFBIG, as on a full
 * file system, even for root): vigil-rebuild exits 1 with one line naming
 * the place, CURRENT still names the previous generation, which serves as
 * before, and the next run (with room) clears the leftover and commits.
 */
static void
test_disk_full_keeps_current(void **state)
{
	const char *dd = fx_tmpdir(0);
	store_archive *ar = fx_archive(dd);
	batch_opts o;
	batch_summary *s = calloc(1, sizeof *s);
	store_diag d;
	store_gen *g = NULL;
	store_card_profile cp;
	char tid[32], card[32], merch[32], errbuf[4096];
	uint64_t cur = 0, g1;
	FILE *fe = tmpfile();
	size_t n;
	pid_t pid;
	int st = 0;
	bool exists;

	(void)state;
	assert_non_null(s);
	assert_non_null(fe);
	for (int i = 0; i < 20000; i++) {
		fx_txn t = { 0 };

		snprintf(tid, sizeof tid, "t%d", i);
		snprintf(card, sizeof card, "card-%06d", i);
		snprintf(merch, sizeof merch, "m%d", i % 500);
		t.txn_id = tid;
		t.card = card;
		t.merchant = merch;
		t.country = "FR";
		t.currency = "EUR";
		t.amount_minor = 100 + i % 977;
		t.t = A - 3 * D + (int64_t)i * 1000;
		fx_score(ar, &t);
	}
	store_archive_close(ar);
	batch_opts_default(&o);
	o.datadir = dd;
	o.as_of_ms = A - D;
	o.window_ms = 90 * D;
	assert_int_equal(batch_rebuild(&o, s, &d), VIGIL_OK);
	g1 = s->generation;

	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		const char *argv[] = { fx_rebuild_bin(), "--data", dd, "--as-of", "2026-03-01",
		    "-q", NULL };
		struct rlimit rl = { 512 << 10, 512 << 10 };

		dup2(fileno(fe), 2);
		signal(SIGXFSZ, SIG_IGN);
		if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
			_exit(126);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	rewind(fe);
	n = fread(errbuf, 1, sizeof errbuf - 1, fe);
	errbuf[n] = '\0';
	fclose(fe);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 1)
		fail_msg("vigil-rebuild on a full disk: status %d, stderr: %s", st, errbuf);
	/* One line, that says where. */
	assert_true(n > 0 && errbuf[n - 1] == '\n');
	assert_null(memchr(errbuf, '\n', n - 1));
	assert_non_null(strstr(errbuf, "vigil-rebuild: "));
	if (strstr(errbuf, dd) == NULL)
		fail_msg("the error does not say where: %s", errbuf);

	assert_int_equal(store_gen_current(dd, &cur), VIGIL_OK);
	assert_int_equal(cur, g1);
	assert_false(gen_dir_exists(dd, g1 + 1));
	assert_int_equal(store_gen_open_current(dd, &g, &d), VIGIL_OK);
	assert_int_equal(store_gen_card(g, "card-000007", &cp), VIGIL_OK);
	assert_int_equal(cp.count_7d, 1);
	store_gen_close(g);

	o.as_of_ms = A;
	memset(s, 0, sizeof *s);
	assert_int_equal(batch_rebuild(&o, s, &d), VIGIL_OK);
	assert_int_equal(store_gen_current(dd, &cur), VIGIL_OK);
	assert_int_equal(cur, s->generation);
	tmp_gen_bytes(dd, &exists);
	assert_false(exists);
	free(s);
	fx_rm_rf(dd);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kill_mid_write_keeps_current),
		cmocka_unit_test(test_disk_full_keeps_current),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
