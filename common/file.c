/* SPDX-License-Identifier: MIT */
/*
 * common/file.c - opening files that must be regular (file.h): any such
 * file (vigil_open_regular: stat, then a blocking open), and a file of
 * secrets (vigil_secret_open): the file-mode rule vigild's admin token and
 * vigil-console's tokens file share, opened O_NONBLOCK so that a FIFO (or
 * a device) put in the file's place is refused at fstat instead of
 * blocking the caller (a SIGHUP reload, --check-config) until someone
 * writes to it; a regular file reads the same either way, and the flag is
 * cleared before the descriptor is handed over. And vigil_fsync_dir, the
 * one directory fsync of the store, vigild and the console.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "file.h"

vigil_err
vigil_secret_open(const char *path, const char *what, int *ret_fd, char *errbuf, size_t errlen)
{
	char name[4200];
	struct stat st;
	int fd, fl;

	snprintf(name, sizeof name, "%s%s%s", what != NULL ? what : "", what != NULL ? " " : "",
	    path);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		int e = errno;
		snprintf(errbuf, errlen, "%s: cannot open: %s", name, strerror(e));
		return e == ENOENT ? VIGIL_ENOTFOUND : VIGIL_EIO;
	}
	if (fstat(fd, &st) != 0) {
		snprintf(errbuf, errlen, "%s: %s", name, strerror(errno));
		close(fd);
		return VIGIL_EIO;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(errbuf, errlen, "%s: not a regular file", name);
		close(fd);
		return VIGIL_EINVAL;
	}
	if ((st.st_mode & (S_IROTH | S_IWOTH)) != 0) {
		snprintf(errbuf, errlen, "%s: mode %04o lets every user read or write it; "
		    "chmod o-rw", name, (unsigned)(st.st_mode & 07777));
		close(fd);
		return VIGIL_EINVAL;
	}
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0) {
		snprintf(errbuf, errlen, "%s: %s", name, strerror(errno));
		close(fd);
		return VIGIL_EIO;
	}
	*ret_fd = fd;
	return VIGIL_OK;
}

int
vigil_open_regular(const char *path, bool *ret_special, struct stat *ret_st)
{
	struct stat st;
	int fd, e;

	*ret_special = false;
	if (stat(path, &st) != 0)
		return -1;
	if (!S_ISREG(st.st_mode)) {
		*ret_special = true;
		return -1;
	}
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) { /* replaced since the stat */
		e = errno;
		*ret_special = !S_ISREG(st.st_mode);
		close(fd);
		errno = e;
		return -1;
	}
	if (ret_st != NULL)
		*ret_st = st;
	return fd;
}

const char *
vigil_open_why(bool special, int err, char *buf, size_t len)
{
	if (special)
		snprintf(buf, len, "not a regular file");
	else
		snprintf(buf, len, "cannot open: %s", strerror(err));
	return buf;
}

FILE *
vigil_fopen_regular(const char *path, bool *ret_special, struct stat *ret_st)
{
	int fd = vigil_open_regular(path, ret_special, ret_st);
	FILE *f;

	if (fd < 0)
		return NULL;
	if ((f = fdopen(fd, "rb")) == NULL) {
		int e = errno;

		close(fd);
		errno = e;
	}
	return f;
}

int
vigil_read_regular(const char *path, size_t max, char **ret_buf, size_t *ret_len,
    bool *ret_special)
{
	int fd = vigil_open_regular(path, ret_special, NULL), e = 0;
	char *buf;
	size_t n = 0;

	if (fd < 0)
		return -1;
	if ((buf = malloc(max + 1)) == NULL)
		e = ENOMEM;
	while (e == 0 && n <= max) {
		ssize_t r = read(fd, buf + n, max + 1 - n);

		if (r < 0 && errno != EINTR)
			e = errno;
		else if (r == 0)
			break;
		else if (r > 0)
			n += (size_t)r;
	}
	close(fd);
	if (e == 0 && n > max)
		e = EFBIG;
	if (e != 0) {
		if (buf != NULL)
			explicit_bzero(buf, n); /* it may have held a key */
		free(buf);
		errno = e;
		return -1;
	}
	buf[n] = '\0';
	*ret_buf = buf;
	*ret_len = n;
	return 0;
}

vigil_err
vigil_fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), e = 0;

	if (fd < 0)
		return vigil_err_from_errno(errno);
	if (fsync(fd) != 0)
		e = errno;
	close(fd);
	errno = e;
	return e != 0 ? vigil_err_from_errno(e) : VIGIL_OK;
}
