/* SPDX-License-Identifier: MIT */
/*
 * console/vigild.c - requests to vigild's admin HTTP endpoint, for what the
 * console may not do itself: it reads the data directory read-only, so a
 * generation roll-back is asked of vigild (POST /v1/generations/current,
 * docs/vigild.md), authenticated with vigild's admin token
 * (docs/security.md, "The console and vigild"). One blocking HTTP/1.0
 * exchange per call, bounded in time: these are rare operator actions,
 * answered from the event loop like a verdict.
 */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "console.h"
#include "file.h"
#include "http.h"

#define VA_CONNECT_MS 2000
#define VA_REPLY_MS   10000 /* vigild verifies the generation before it answers */
#define VA_REPLY_MAX  (64u << 10)
#define VA_TOKEN_MAX  255

/* The token file's one line (vigild's rules: 16-255 printable bytes). */
static vigil_err
va_token(const char *path, char *buf, size_t len, char *errbuf, size_t errlen)
{
	ssize_t r;
	size_t n;
	int fd;
	vigil_err rv;

	/* vigild's rule for its own token: a regular file others cannot read
	 * (a FIFO would stall the console's one thread) */
	rv = vigil_secret_open(path, "--vigild-admin-token-file", &fd, errbuf, errlen);
	if (rv != VIGIL_OK)
		return rv;
	do
		r = read(fd, buf, len - 1);
	while (r < 0 && errno == EINTR);
	if (r < 0) {
		snprintf(errbuf, errlen, "--vigild-admin-token-file %s: %s", path, strerror(errno));
		close(fd);
		return VIGIL_EIO;
	}
	close(fd);
	n = (size_t)r;
	buf[n] = '\0';
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	for (size_t i = 0; i < n; i++) {
		if (buf[i] <= ' ' || buf[i] > '~') {
			n = 0;
			break;
		}
	}
	if (n < 16) {
		explicit_bzero(buf, len);
		snprintf(errbuf, errlen, "--vigild-admin-token-file %s: not one line of 16-%d "
		    "printable characters", path, VA_TOKEN_MAX);
		return VIGIL_EINVAL;
	}
	return VIGIL_OK;
}

static int64_t
va_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for events on fd until deadline; false on timeout or error. */
static bool
va_wait(int fd, short events, int64_t deadline)
{
	struct pollfd p = { .fd = fd, .events = events };
	int64_t left = deadline - va_now_ms();

	if (left <= 0)
		return false;
	return poll(&p, 1, (int)left) == 1 && (p.revents & (events | POLLHUP | POLLERR)) != 0;
}

/* Connects to HOST:PORT or unix:/PATH, non-blocking, within VA_CONNECT_MS. */
static int
va_connect(const char *addr, char *errbuf, size_t errlen)
{
	int64_t deadline = va_now_ms() + VA_CONNECT_MS;
	int fd = -1, err = 0;
	socklen_t el = sizeof err;

	if (strncmp(addr, "unix:", 5) == 0) {
		struct sockaddr_un un = { .sun_family = AF_UNIX };

		if (strlen(addr + 5) >= sizeof un.sun_path) {
			snprintf(errbuf, errlen, "vigild admin %s: path too long", addr);
			return -1;
		}
		memcpy(un.sun_path, addr + 5, strlen(addr + 5) + 1);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&un, sizeof un) != 0) {
			snprintf(errbuf, errlen, "vigild admin %s: %s", addr, strerror(errno));
			if (fd >= 0)
				close(fd);
			return -1;
		}
		return fd;
	}
	{
		char host[256];
		const char *colon = strrchr(addr, ':');
		struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai = NULL;
		size_t hl;
		int grv;

		if (colon == NULL || colon == addr || (hl = (size_t)(colon - addr)) >= sizeof host) {
			snprintf(errbuf, errlen, "vigild admin %s: not HOST:PORT or unix:/PATH", addr);
			return -1;
		}
		memcpy(host, addr, hl);
		host[hl] = '\0';
		if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') { /* [::1]:9466 */
			memmove(host, host + 1, hl - 2);
			host[hl - 2] = '\0';
		}
		grv = getaddrinfo(host, colon + 1, &hints, &ai);
		if (grv != 0) {
			snprintf(errbuf, errlen, "vigild admin %s: %s", addr, gai_strerror(grv));
			return -1;
		}
		fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 &&
		    errno != EINPROGRESS) {
			err = errno;
		} else if (fd >= 0 && !va_wait(fd, POLLOUT, deadline)) {
			err = ETIMEDOUT;
		} else if (fd >= 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0) {
			err = errno;
		} else if (fd < 0) {
			err = errno;
		}
		freeaddrinfo(ai);
		if (err != 0) {
			snprintf(errbuf, errlen, "vigild admin %s: %s", addr, strerror(err));
			if (fd >= 0)
				close(fd);
			return -1;
		}
		return fd;
	}
}

vigil_err
con_vigild_post(con_app *app, const char *path, const char *body, int *ret_status,
    json_t **ret_json, char *errbuf, size_t errlen)
{
	char token[VA_TOKEN_MAX + 2], head[640], *resp = NULL, *p;
	int64_t deadline;
	size_t len = 0, blen = strlen(body);
	vigil_err rv = VIGIL_EIO;
	int fd = -1, n, code = 0;

	*ret_json = NULL;
	if (app->o.vigild_admin == NULL || app->o.vigild_admin_token == NULL) {
		snprintf(errbuf, errlen, "the console was started without --vigild-admin and "
		    "--vigild-admin-token-file");
		return VIGIL_ENOTFOUND;
	}
	/* read at each use: a rotated token is used at once */
	rv = va_token(app->o.vigild_admin_token, token, sizeof token, errbuf, errlen);
	if (rv != VIGIL_OK)
		return rv;
	rv = VIGIL_EIO;
	fd = va_connect(app->o.vigild_admin, errbuf, errlen);
	if (fd < 0)
		goto out;
	n = snprintf(head, sizeof head, "POST %s HTTP/1.0\r\nHost: vigild\r\nAuthorization: "
	    "Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n", path,
	    token, blen);
	explicit_bzero(token, sizeof token);
	deadline = va_now_ms() + VA_REPLY_MS;
	for (size_t off = 0, tot = (size_t)n + blen; off < tot;) {
		const char *src = off < (size_t)n ? head + off : body + (off - (size_t)n);
		size_t chunk = off < (size_t)n ? (size_t)n - off : tot - off;
		ssize_t w;

		if (!va_wait(fd, POLLOUT, deadline)) {
			snprintf(errbuf, errlen, "vigild admin %s: sending: timed out", app->o.vigild_admin);
			goto out;
		}
		w = send(fd, src, chunk, MSG_NOSIGNAL);
		if (w < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (w <= 0) {
			snprintf(errbuf, errlen, "vigild admin %s: sending: %s", app->o.vigild_admin,
			    strerror(errno));
			goto out;
		}
		off += (size_t)w;
	}
	explicit_bzero(head, sizeof head);
	resp = malloc(VA_REPLY_MAX + 1);
	if (resp == NULL) {
		snprintf(errbuf, errlen, "out of memory");
		rv = VIGIL_ENOMEM;
		goto out;
	}
	for (;;) {
		ssize_t r;

		if (len == VA_REPLY_MAX) {
			snprintf(errbuf, errlen, "vigild admin %s: reply over %u bytes",
			    app->o.vigild_admin, VA_REPLY_MAX);
			goto out;
		}
		if (!va_wait(fd, POLLIN, deadline)) {
			snprintf(errbuf, errlen, "vigild admin %s: no reply within %d s",
			    app->o.vigild_admin, VA_REPLY_MS / 1000);
			goto out;
		}
		r = recv(fd, resp + len, VA_REPLY_MAX - len, 0);
		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (r < 0) {
			snprintf(errbuf, errlen, "vigild admin %s: %s", app->o.vigild_admin,
			    strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	resp[len] = '\0';
	if (sscanf(resp, "HTTP/1.%*d %d", &code) != 1 || (p = strstr(resp, "\r\n\r\n")) == NULL) {
		snprintf(errbuf, errlen, "vigild admin %s: not an HTTP reply", app->o.vigild_admin);
		goto out;
	}
	*ret_json = json_loads(p + 4, 0, NULL);
	*ret_status = code;
	rv = VIGIL_OK;
out:
	explicit_bzero(token, sizeof token);
	explicit_bzero(head, sizeof head);
	if (fd >= 0)
		close(fd);
	free(resp);
	return rv;
}
