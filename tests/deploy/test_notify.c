/* SPDX-License-Identifier: MIT */
/*
 * tests/deploy/test_notify.c - the service-manager notification written
 * directly (server/notify.c, the path of a vigild built without
 * libsystemd): the datagram reaches a socket named by $NOTIFY_SOCKET, by
 * path or abstract ("@name"); no variable means nothing sent; a relative
 * path is refused; $WATCHDOG_USEC/$WATCHDOG_PID are read as sd_notify(3)
 * says. tests/deploy/test_notify.py checks the real vigild.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <cmocka.h>

#include "notify.h"

/* Binds a datagram socket at name (a path, or "@name"); returns its fd. */
static int
listen_at(const char *name)
{
	struct sockaddr_un sa;
	size_t len = strlen(name);
	struct timeval tv = { 5, 0 };
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, name, len);
	if (name[0] == '@')
		sa.sun_path[0] = '\0';
	else
		unlink(name);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa,
	    (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (name[0] != '@'))), 0);
	/* a bound on a lost datagram, so the test fails instead of hanging */
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
	return fd;
}

static void
expect_datagram(int fd, const char *want)
{
	char buf[256];
	ssize_t n = recv(fd, buf, sizeof buf - 1, 0);

	assert_true(n >= 0);
	buf[n] = '\0';
	assert_string_equal(buf, want);
}

static void
test_path_socket(void **state)
{
	char path[64];
	int fd;

	(void)state;
	snprintf(path, sizeof path, "/tmp/vigil-notify-%d.sock", (int)getpid());
	fd = listen_at(path);
	setenv("NOTIFY_SOCKET", path, 1);
	assert_int_equal(srv_notify_direct("READY=1\nSTATUS=serving"), 1);
	expect_datagram(fd, "READY=1\nSTATUS=serving");
	assert_int_equal(srv_notify_direct("STOPPING=1"), 1);
	expect_datagram(fd, "STOPPING=1");
	/* what vigild calls: libsystemd's or this one, the datagram arrives */
	assert_int_equal(srv_notify("WATCHDOG=1"), 1);
	expect_datagram(fd, "WATCHDOG=1");
	close(fd);
	unlink(path);
	unsetenv("NOTIFY_SOCKET");
}

static void
test_abstract_socket(void **state)
{
	char name[64];
	int fd;

	(void)state;
	snprintf(name, sizeof name, "@vigil-notify-test-%d", (int)getpid());
	fd = listen_at(name);
	setenv("NOTIFY_SOCKET", name, 1);
	assert_int_equal(srv_notify_direct("READY=1"), 1);
	expect_datagram(fd, "READY=1");
	close(fd);
	unsetenv("NOTIFY_SOCKET");
}

static void
test_no_socket_or_bad_one(void **state)
{
	(void)state;
	unsetenv("NOTIFY_SOCKET");
	assert_int_equal(srv_notify_direct("READY=1"), 0);
	setenv("NOTIFY_SOCKET", "", 1);
	assert_int_equal(srv_notify_direct("READY=1"), 0);
	setenv("NOTIFY_SOCKET", "relative.sock", 1);
	assert_int_equal(srv_notify_direct("READY=1"), -EINVAL);
	/* nobody listening: an error, not a hang and not a crash */
	setenv("NOTIFY_SOCKET", "/nonexistent/vigil-notify.sock", 1);
	assert_true(srv_notify_direct("READY=1") < 0);
	unsetenv("NOTIFY_SOCKET");
}

static void
test_watchdog_env(void **state)
{
	char pid[32];
	uint64_t us = 7;

	(void)state;
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	assert_int_equal(srv_notify_watchdog_direct(&us), 0);
	assert_int_equal(us, 7); /* untouched */
	setenv("WATCHDOG_USEC", "10000000", 1);
	assert_int_equal(srv_notify_watchdog_direct(&us), 1);
	assert_int_equal(us, 10000000);
	snprintf(pid, sizeof pid, "%d", (int)getpid());
	setenv("WATCHDOG_PID", pid, 1);
	us = 7;
	assert_int_equal(srv_notify_watchdog_direct(&us), 1);
	assert_int_equal(us, 10000000);
	snprintf(pid, sizeof pid, "%d", (int)getpid() + 1);
	setenv("WATCHDOG_PID", pid, 1); /* another process's watchdog */
	us = 7;
	assert_int_equal(srv_notify_watchdog_direct(&us), 0);
	assert_int_equal(us, 7);
	unsetenv("WATCHDOG_PID");
	setenv("WATCHDOG_USEC", "10s", 1);
	assert_int_equal(srv_notify_watchdog_direct(&us), -EINVAL);
	setenv("WATCHDOG_USEC", "0", 1);
	assert_int_equal(srv_notify_watchdog_direct(&us), -EINVAL);
	assert_int_equal(us, 7);
	unsetenv("WATCHDOG_USEC");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_path_socket),
		cmocka_unit_test(test_abstract_socket),
		cmocka_unit_test(test_no_socket_or_bad_one),
		cmocka_unit_test(test_watchdog_env),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
