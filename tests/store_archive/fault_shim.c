/* SPDX-License-Identifier: MIT */
/*
 * tests/store_archive/fault_shim.c - an LD_PRELOAD shim that makes the
 * archive's system calls fail on demand, for the fault tests of the store
 * and of vigild and vigil-archive (a disk that returns EIO on fdatasync, a
 * full disk without filling one, a sector that cannot be read). Inert
 * unless VIGIL_FAULT_DIR names a directory; while a file of one of these
 * names exists in it:
 *
 *   fdatasync-eio     fdatasync(2) fails with EIO
 *   fdatasync-delay   fdatasync(2) first sleeps the milliseconds the file holds
 *   write-enospc      write/writev/pwrite and posix_fallocate/fallocate of a
 *                     file whose path contains "/archive/" fail with ENOSPC
 *   no-fallocate      posix_fallocate/fallocate of such a file fail with
 *                     EOPNOTSUPP (the archive then appends with write(2))
 *   read-eio-at       read/pread of such a file fail with EIO when the bytes
 *                     asked for cover the offset N the file holds (decimal):
 *                     a bad sector at N, the bytes before it readable by a
 *                     read that ends before N (read(2) from the position of
 *                     the descriptor, lseek(fd, 0, SEEK_CUR))
 *
 * The files are looked up on every call (tests only), so a test switches a
 * fault on and off from outside the process too.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
/* Both names of each call are defined below (pwrite and pwrite64, ...): not
 * with the header's redirection of one to the other. */
#undef _FILE_OFFSET_BITS
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

static bool
shim_flag(const char *name)
{
	const char *dir = getenv("VIGIL_FAULT_DIR");
	char p[PATH_MAX];

	if (dir == NULL || dir[0] == '\0')
		return false;
	snprintf(p, sizeof p, "%s/%s", dir, name);
	return access(p, F_OK) == 0;
}

static long
shim_number(const char *name)
{
	const char *dir = getenv("VIGIL_FAULT_DIR");
	char p[PATH_MAX], buf[32];
	ssize_t n;
	int fd;

	if (dir == NULL || dir[0] == '\0')
		return 0;
	snprintf(p, sizeof p, "%s/%s", dir, name);
	fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	return strtol(buf, NULL, 10);
}

/* Whether fd is a file of an archive directory. */
static bool
shim_archive_fd(int fd)
{
	char link[64], target[PATH_MAX];
	ssize_t n;

	snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
	n = readlink(link, target, sizeof target - 1);
	if (n <= 0)
		return false;
	target[n] = '\0';
	return strstr(target, "/archive/") != NULL;
}

/* True (errno set) if a write to fd must fail now. */
static bool
shim_write_fails(int fd)
{
	int saved = errno;

	if (fd > 2 && shim_flag("write-enospc") && shim_archive_fd(fd)) {
		errno = ENOSPC;
		return true;
	}
	errno = saved;
	return false;
}

/* True (errno set) if a read of len bytes of fd at offset off (-1: at the
 * descriptor's position) must fail now. */
static bool
shim_read_fails(int fd, size_t len, off64_t off)
{
	int saved = errno;
	long at;

	if (fd > 2 && len > 0 && shim_flag("read-eio-at") && shim_archive_fd(fd)) {
		at = shim_number("read-eio-at");
		if (off < 0)
			off = lseek64(fd, 0, SEEK_CUR);
		if (off >= 0 && at >= off && (unsigned long long)(at - off) < len) {
			errno = EIO;
			return true;
		}
	}
	errno = saved;
	return false;
}

/* The error a preallocation of fd must fail with now, 0 if none. */
static int
shim_falloc_error(int fd)
{
	int saved = errno, rv = 0;

	if (shim_flag("write-enospc") && shim_archive_fd(fd))
		rv = ENOSPC;
	else if (shim_flag("no-fallocate") && shim_archive_fd(fd))
		rv = EOPNOTSUPP;
	errno = saved;
	return rv;
}

#define SHIM_REAL(ret, name, args) \
	static ret (*real_##name) args; \
	if (real_##name == NULL) \
		real_##name = (ret (*) args)dlsym(RTLD_NEXT, #name)

int
fdatasync(int fd)
{
	long delay;

	SHIM_REAL(int, fdatasync, (int));
	delay = shim_number("fdatasync-delay");
	if (delay > 0) {
		struct timespec ts = { delay / 1000, (delay % 1000) * 1000000L };

		nanosleep(&ts, NULL);
	}
	if (shim_flag("fdatasync-eio")) {
		errno = EIO;
		return -1;
	}
	return real_fdatasync(fd);
}

ssize_t
write(int fd, const void *buf, size_t len)
{
	SHIM_REAL(ssize_t, write, (int, const void *, size_t));
	if (shim_write_fails(fd))
		return -1;
	return real_write(fd, buf, len);
}

ssize_t
writev(int fd, const struct iovec *iov, int iovcnt)
{
	SHIM_REAL(ssize_t, writev, (int, const struct iovec *, int));
	if (shim_write_fails(fd))
		return -1;
	return real_writev(fd, iov, iovcnt);
}

ssize_t
pwrite(int fd, const void *buf, size_t len, off_t off)
{
	SHIM_REAL(ssize_t, pwrite, (int, const void *, size_t, off_t));
	if (shim_write_fails(fd))
		return -1;
	return real_pwrite(fd, buf, len, off);
}

ssize_t
pwrite64(int fd, const void *buf, size_t len, off64_t off)
{
	SHIM_REAL(ssize_t, pwrite64, (int, const void *, size_t, off64_t));
	if (shim_write_fails(fd))
		return -1;
	return real_pwrite64(fd, buf, len, off);
}

ssize_t
read(int fd, void *buf, size_t len)
{
	SHIM_REAL(ssize_t, read, (int, void *, size_t));
	if (shim_read_fails(fd, len, -1))
		return -1;
	return real_read(fd, buf, len);
}

ssize_t
pread(int fd, void *buf, size_t len, off_t off)
{
	SHIM_REAL(ssize_t, pread, (int, void *, size_t, off_t));
	if (shim_read_fails(fd, len, off))
		return -1;
	return real_pread(fd, buf, len, off);
}

ssize_t
pread64(int fd, void *buf, size_t len, off64_t off)
{
	SHIM_REAL(ssize_t, pread64, (int, void *, size_t, off64_t));
	if (shim_read_fails(fd, len, off))
		return -1;
	return real_pread64(fd, buf, len, off);
}

int
posix_fallocate(int fd, off_t off, off_t len)
{
	int e;

	SHIM_REAL(int, posix_fallocate, (int, off_t, off_t));
	e = shim_falloc_error(fd);
	return e != 0 ? e : real_posix_fallocate(fd, off, len);
}

int
posix_fallocate64(int fd, off64_t off, off64_t len)
{
	int e;

	SHIM_REAL(int, posix_fallocate64, (int, off64_t, off64_t));
	e = shim_falloc_error(fd);
	return e != 0 ? e : real_posix_fallocate64(fd, off, len);
}

int
fallocate(int fd, int mode, off_t off, off_t len)
{
	int e;

	SHIM_REAL(int, fallocate, (int, int, off_t, off_t));
	e = shim_falloc_error(fd);
	if (e != 0) {
		errno = e;
		return -1;
	}
	return real_fallocate(fd, mode, off, len);
}

int
fallocate64(int fd, int mode, off64_t off, off64_t len)
{
	int e;

	SHIM_REAL(int, fallocate64, (int, int, off64_t, off64_t));
	e = shim_falloc_error(fd);
	if (e != 0) {
		errno = e;
		return -1;
	}
	return real_fallocate64(fd, mode, off, len);
}
