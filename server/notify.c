/* SPDX-License-Identifier: MIT */
/*
 * server/notify.c - the service-manager notification protocol (notify.h):
 * libsystemd's sd_notify() when vigild is built with it, the same datagram
 * written here when not, so a Type=notify unit never waits for a READY=1
 * that a build without libsystemd would not send.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "notify.h"
#include "vigil_config.h"

#if VIGIL_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

int
srv_notify_direct(const char *state)
{
	struct sockaddr_un sa;
	const char *path = getenv("NOTIFY_SOCKET");
	size_t plen, len = strlen(state);
	socklen_t salen;
	ssize_t n;
	int fd, rv;

	if (path == NULL || path[0] == '\0')
		return 0;
	plen = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || plen < 2 || plen >= sizeof sa.sun_path)
		return -EINVAL; /* vsock: and relative paths are not for us */
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, plen);
	if (path[0] == '@') /* abstract: a leading NUL, no terminator counted */
		sa.sun_path[0] = '\0';
	salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen + (path[0] == '/'));
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	n = sendto(fd, state, len, MSG_NOSIGNAL, (const struct sockaddr *)&sa, salen);
	rv = n < 0 ? -errno : (size_t)n == len ? 1 : -EMSGSIZE;
	close(fd);
	return rv;
}

int
srv_notify_watchdog_direct(uint64_t *ret_usec)
{
	const char *us = getenv("WATCHDOG_USEC"), *pid = getenv("WATCHDOG_PID");
	unsigned long long v;
	char *end;

	if (us == NULL || us[0] == '\0')
		return 0;
	if (pid != NULL && pid[0] != '\0') {
		errno = 0;
		v = strtoull(pid, &end, 10);
		if (errno != 0 || *end != '\0' || v == 0)
			return -EINVAL;
		if (v != (unsigned long long)getpid())
			return 0; /* meant for another process */
	}
	errno = 0;
	v = strtoull(us, &end, 10);
	if (errno != 0 || *end != '\0' || v == 0 || us[0] == '-')
		return -EINVAL;
	*ret_usec = v;
	return 1;
}

int
srv_notify(const char *state)
{
#if VIGIL_HAVE_SYSTEMD
	return sd_notify(0, state);
#else
	return srv_notify_direct(state);
#endif
}

int
srv_notify_watchdog(uint64_t *ret_usec)
{
#if VIGIL_HAVE_SYSTEMD
	uint64_t us = 0;
	int rv = sd_watchdog_enabled(0, &us);

	if (rv > 0)
		*ret_usec = us;
	return rv;
#else
	return srv_notify_watchdog_direct(ret_usec);
#endif
}
