/* SPDX-License-Identifier: MIT */
/*
 * tests/tools/test_vigil_gen.c - vigil-gen: the same seed gives the same bytes, a
 * different seed different ones; every row it writes reads back through the
 * CSV reader without error, in event-time order, with every fraud pattern
 * present and every label time after its event. argv[1] is vigil-gen.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "tmpdir.h"
#include "csv.h"

static const char *gen_path;
static char tmpdir[] = "/tmp/vigil-test-gen-XXXXXX";

static int
run_gen(const char *seed, const char *out)
{
	pid_t pid = fork();
	int st;

	if (pid == 0) {
		execl(gen_path, gen_path, "--cards", "800", "--days", "20", "--seed", seed,
		    "--fraud-rate", "0.02", "--start", "2024-02-01", "-q", "-o", out, (char *)NULL);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char *
slurp(const char *path, size_t *ret_len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	rewind(f);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*ret_len = (size_t)n;
	return buf;
}

static void
test_same_seed_same_bytes(void **state)
{
	char a[128], b[128], c[128];
	size_t la, lb, lc;
	char *x, *y, *z;

	(void)state;
	snprintf(a, sizeof a, "%s/a.csv", tmpdir);
	snprintf(b, sizeof b, "%s/b.csv", tmpdir);
	snprintf(c, sizeof c, "%s/c.csv", tmpdir);
	assert_int_equal(run_gen("42", a), 0);
	assert_int_equal(run_gen("42", b), 0);
	assert_int_equal(run_gen("43", c), 0);
	x = slurp(a, &la);
	y = slurp(b, &lb);
	z = slurp(c, &lc);
	assert_true(la > 10000);
	assert_int_equal(la, lb);
	assert_memory_equal(x, y, la);
	assert_false(la == lc && memcmp(x, z, la) == 0);
	free(x);
	free(y);
	free(z);
}

static void
test_rows_are_valid_sorted_and_labelled(void **state)
{
	static const char *const patterns[] = { "card_testing", "account_takeover",
		"skimmed_card", "compromised_terminal", "impossible_travel", "stolen_card" };
	uint64_t seen[6] = { 0 }, frauds = 0, legit = 0;
	char a[128];
	csv_reader *rd = NULL;
	csv_row row;
	csv_diag diag;
	csv_stats st;
	vigil_err rv;
	int64_t last = 0;

	(void)state;
	snprintf(a, sizeof a, "%s/a.csv", tmpdir);
	assert_int_equal(csv_reader_open(a, NULL, &rd, &diag), VIGIL_OK);
	assert_null(csv_reader_warning(rd));
	while ((rv = csv_reader_next(rd, &row, &diag)) != VIGIL_ENOTFOUND) {
		if (rv != VIGIL_OK)
			fail_msg("%s", vigil_errinfo_format(&diag, (char[512]){ 0 }, 512));
		assert_true(row.txn.event_time_ms >= last);
		last = row.txn.event_time_ms;
		assert_true(row.label != CSV_LABEL_NONE);
		if (row.label == CSV_LABEL_FRAUD) {
			bool known = false;
			frauds++;
			assert_true(row.label_time_ms > row.txn.event_time_ms);
			for (int i = 0; i < 6; i++) {
				if (strcmp(row.fraud_pattern, patterns[i]) == 0) {
					seen[i]++;
					known = true;
				}
			}
			assert_true(known);
		} else {
			legit++;
			assert_int_equal(row.label_time_ms, 0);
			assert_string_equal(row.fraud_pattern, "");
		}
	}
	csv_reader_get_stats(rd, &st);
	assert_int_equal(st.bad_rows, 0);
	for (int i = 0; i < 6; i++)
		if (seen[i] == 0)
			fail_msg("no %s rows", patterns[i]);
	assert_true(frauds > 50);
	assert_true(legit > 10 * frauds);
	csv_reader_close(rd);
}

static void
test_usage_errors(void **state)
{
	pid_t pid;
	int st;

	(void)state;
	pid = fork();
	if (pid == 0) {
		freopen("/dev/null", "w", stderr);
		execl(gen_path, gen_path, "--cards", "0", (char *)NULL);
		_exit(127);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 2);
}

/* Runs vigil-gen FLAG VALUE on one day of ten cards, its stderr into err;
 * its exit status. */
static int
run_gen_flag(const char *flag, const char *value, char *err, size_t errlen)
{
	int fd[2], st;
	ssize_t n;
	size_t got = 0;
	pid_t pid;

	assert_int_equal(pipe(fd), 0);
	pid = fork();
	if (pid == 0) {
		dup2(fd[1], STDERR_FILENO);
		close(fd[0]);
		execl(gen_path, gen_path, "--cards", "10", "--days", "1", flag, value, "-q", "-o",
		    "/dev/null", (char *)NULL);
		_exit(127);
	}
	close(fd[1]);
	while (got + 1 < errlen && (n = read(fd[0], err + got, errlen - 1 - got)) > 0)
		got += (size_t)n;
	err[got] = '\0';
	close(fd[0]);
	if (pid < 0 || waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A value that is not the number a flag takes is a usage error naming the
 * flag: a seed with a space and a sign is not wrapped round to 2^64 - 5
 * (it gave that seed's traffic), an empty --fraud-rate is not 0. */
static void
test_number_flags(void **state)
{
	char err[512];

	(void)state;
	assert_int_equal(run_gen_flag("--seed", " -5", err, sizeof err), 2);
	assert_string_equal(err, "vigil-gen: --seed:  -5: not a whole number in "
	    "[0, 18446744073709551615] (see --help)\n");
	assert_int_equal(run_gen_flag("--fraud-rate", "", err, sizeof err), 2);
	assert_string_equal(err, "vigil-gen: --fraud-rate: : not a number in [0, 0.2] "
	    "(see --help)\n");
	assert_int_equal(run_gen_flag("--cards", "+5", err, sizeof err), 2);
	assert_string_equal(err, "vigil-gen: --cards: +5: not a whole number in [1, 50000000] "
	    "(see --help)\n");
	assert_int_equal(run_gen_flag("--seed", "18446744073709551615", err, sizeof err), 0);
	assert_int_equal(run_gen_flag("--fraud-rate", "0.2", err, sizeof err), 0);
}

/* Runs vigil-gen with --start start on one day of ten cards; its exit status. */
static int
run_gen_start(const char *start)
{
	pid_t pid = fork();
	int st;

	if (pid == 0) {
		freopen("/dev/null", "w", stderr);
		execl(gen_path, gen_path, "--cards", "10", "--days", "1", "--start", start,
		    "-q", "-o", "/dev/null", (char *)NULL);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* --start takes the years its message names, 2000..2096, to their last day. */
static void
test_start_range(void **state)
{
	(void)state;
	assert_int_equal(run_gen_start("2000-01-01"), 0);
	assert_int_equal(run_gen_start("2096-12-31"), 0);
	assert_int_equal(run_gen_start("1999-12-31"), 2);
	assert_int_equal(run_gen_start("2097-01-01"), 2);
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_same_seed_same_bytes),
		cmocka_unit_test(test_rows_are_valid_sorted_and_labelled),
		cmocka_unit_test(test_usage_errors),
		cmocka_unit_test(test_start_range),
		cmocka_unit_test(test_number_flags),
	};
	int rv;

	if (argc != 2) {
		fprintf(stderr, "usage: test-gen PATH-TO-vigil-gen\n");
		return 1;
	}
	gen_path = argv[1];
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	rv = cmocka_run_group_tests(tests, NULL, NULL);
	if (vt_tmpdir_remove(tmpdir) != 0)
		fprintf(stderr, "test-gen: could not remove %s\n", tmpdir);
	return rv;
}
