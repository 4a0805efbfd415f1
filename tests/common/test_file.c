/* SPDX-License-Identifier: MIT */
/*
 * tests/common/test_file.c - common/file.h on real files in a temporary
 * directory: a FIFO is refused without blocking, a secrets file's mode
 * rule, the reason text, and the directory fsync.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "file.h"
#include "tmpdir.h"

static char dir[256];

static int
setup(void **state)
{
	(void)state;
	return vt_tmpdir_make("vigil-file", dir, sizeof dir);
}

static int
teardown(void **state)
{
	(void)state;
	return vt_tmpdir_remove(dir);
}

static void
path_in(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", dir, name);
}

static void
write_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

/* A regular file opens; a FIFO and a directory are refused before open(2)
 * could wait (a FIFO with no writer would block this test for ever);
 * a missing file fails with errno and no special flag. */
static void
test_open_regular(void **state)
{
	char p[320], why[64];
	struct stat st;
	bool special = true;
	FILE *f;
	int fd;

	(void)state;
	path_in(p, sizeof p, "plain");
	write_file(p, "abc", 0600);
	fd = vigil_open_regular(p, &special, &st);
	assert_true(fd >= 0);
	assert_false(special);
	assert_int_equal(st.st_size, 3);
	close(fd);
	f = vigil_fopen_regular(p, &special, NULL);
	assert_non_null(f);
	assert_int_equal(fgetc(f), 'a');
	fclose(f);

	path_in(p, sizeof p, "fifo");
	assert_int_equal(mkfifo(p, 0600), 0);
	assert_int_equal(vigil_open_regular(p, &special, NULL), -1);
	assert_true(special);
	assert_null(vigil_fopen_regular(p, &special, NULL));
	assert_true(special);
	assert_string_equal(vigil_open_why(special, 0, why, sizeof why), "not a regular file");

	assert_int_equal(vigil_open_regular(dir, &special, NULL), -1);
	assert_true(special);

	path_in(p, sizeof p, "missing");
	errno = 0;
	assert_int_equal(vigil_open_regular(p, &special, NULL), -1);
	assert_false(special);
	assert_int_equal(errno, ENOENT);
	assert_string_equal(vigil_open_why(special, ENOENT, why, sizeof why),
	    "cannot open: No such file or directory");
}

/* A whole regular file, NUL-terminated; exactly max bytes is taken, one
 * more is EFBIG; a FIFO is refused (special), not waited on; a missing
 * file is its errno. */
static void
test_read_regular(void **state)
{
	char p[320], *buf = NULL;
	size_t n = 0;
	bool special = true;

	(void)state;
	path_in(p, sizeof p, "whole");
	write_file(p, "abcdef", 0600);
	assert_int_equal(vigil_read_regular(p, 6, &buf, &n, &special), 0);
	assert_false(special);
	assert_int_equal(n, 6);
	assert_string_equal(buf, "abcdef");
	free(buf);
	buf = NULL;
	errno = 0;
	assert_int_equal(vigil_read_regular(p, 5, &buf, &n, &special), -1);
	assert_false(special);
	assert_int_equal(errno, EFBIG);
	assert_null(buf);

	path_in(p, sizeof p, "fifo2");
	assert_int_equal(mkfifo(p, 0600), 0);
	assert_int_equal(vigil_read_regular(p, 64, &buf, &n, &special), -1);
	assert_true(special);

	path_in(p, sizeof p, "missing2");
	errno = 0;
	assert_int_equal(vigil_read_regular(p, 64, &buf, &n, &special), -1);
	assert_false(special);
	assert_int_equal(errno, ENOENT);
}

/* The secrets rule: regular, and no access for other users. */
static void
test_secret_open(void **state)
{
	char p[320], err[512];
	int fd = -1;

	(void)state;
	path_in(p, sizeof p, "token");
	write_file(p, "s3cret\n", 0600);
	assert_int_equal(vigil_secret_open(p, "admin_token_file", &fd, err, sizeof err), VIGIL_OK);
	assert_true(fd >= 0);
	/* handed over blocking */
	assert_int_equal(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
	close(fd);

	fd = -1;
	assert_int_equal(chmod(p, 0644), 0);
	assert_int_equal(vigil_secret_open(p, "admin_token_file", &fd, err, sizeof err),
	    VIGIL_EINVAL);
	assert_int_equal(fd, -1);
	assert_non_null(strstr(err, "admin_token_file "));
	assert_non_null(strstr(err, "mode 0644"));

	path_in(p, sizeof p, "token-fifo");
	assert_int_equal(mkfifo(p, 0600), 0);
	assert_int_equal(vigil_secret_open(p, NULL, &fd, err, sizeof err), VIGIL_EINVAL);
	assert_non_null(strstr(err, "not a regular file"));
	assert_int_equal(strncmp(err, p, strlen(p)), 0);

	path_in(p, sizeof p, "no-token");
	assert_int_equal(vigil_secret_open(p, NULL, &fd, err, sizeof err), VIGIL_ENOTFOUND);
	assert_int_equal(fd, -1);
}

/* A directory syncs; a missing one and a regular file fail with the
 * error mapped and errno left at its cause. */
static void
test_fsync_dir(void **state)
{
	char p[320];

	(void)state;
	assert_int_equal(vigil_fsync_dir(dir), VIGIL_OK);
	path_in(p, sizeof p, "gone");
	errno = 0;
	assert_int_equal(vigil_fsync_dir(p), VIGIL_ENOTFOUND);
	assert_int_equal(errno, ENOENT);
	path_in(p, sizeof p, "afile");
	write_file(p, "x", 0600);
	errno = 0;
	assert_int_not_equal(vigil_fsync_dir(p), VIGIL_OK);
	assert_int_equal(errno, ENOTDIR);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_open_regular, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_regular, setup, teardown),
		cmocka_unit_test_setup_teardown(test_secret_open, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fsync_dir, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
