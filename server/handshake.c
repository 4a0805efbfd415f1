/* SPDX-License-Identifier: MIT */
/*
 * server/handshake.c - closes TCP connections to a tls+tcp:// listener
 * that do not complete the TLS handshake (and nng's SP header exchange)
 * within [tls] handshake_timeout_ms.
 *
 * libnng 1.5.2 sets a 10 s timeout on that negotiation, but its TLS
 * cancel only aborts the TCP send, idle while the handshake waits to
 * read: a peer that connects and sends nothing (or part of a ClientHello)
 * is held forever, and enough of them take every descriptor vigild may
 * open. nng gives us no handle on a connection before it is a pipe, so
 * once a second (from rep.c's probe) we look at our own descriptors: a
 * connected TCP socket whose local address is a tls+tcp listener's and
 * whose peer is no pipe's (pipes are added at ADD_PRE with their
 * NNG_OPT_REMADDR) is remembered by its SO_COOKIE (Linux's id of the
 * socket, never reused, so a descriptor number reused for another socket
 * is another entry) with the time we first saw it; one first seen
 * timeout_ms ago or more is shut down. shutdown() makes nng's own read
 * fail, and nng cleans the connection up as for a peer that closed; we
 * never close() a descriptor of nng's.
 *
 * Race-free by construction: nng may close the descriptor and the number
 * be reused between our look and our shutdown. So the shutdown acts on a
 * private reference: dup3(fd, spare) makes our spare descriptor refer to
 * whatever fd refers to at that instant (a slot of our own, so it works
 * when the process is out of descriptors, which is the attack), and the
 * socket is judged again on that reference (local address, not a pipe's
 * peer, and the same cookie) before shutdown(spare). A reused number
 * fails the cookie check and is left alone; a socket that nng has closed
 * meanwhile is only ours, and the shutdown touches nobody. The judgement
 * and the shutdown hold the mutex that pipe additions take, so a pipe is
 * either known by then or added after its socket was shut down (its
 * first read fails; that connection took longer than the timeout).
 *
 * Cost: /proc/self/fd is opened once and reread each second (no new
 * descriptor); getsockname rejects what is not a socket or not on a TLS
 * port in one call; at most HS_SCAN_MAX descriptors per second, resuming
 * where the last step stopped (the directory lists them in order).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "handshake.h"
#include "hashtab.h"
#include "srv.h"

#define HS_SCAN_MAX 4096 /* descriptors looked at per sweep */

/* An address as one key: IPv4 as ::ffff:a.b.c.d, port in network order. */
typedef struct hs_addr {
	uint8_t  ip[16];
	uint16_t port;
	uint16_t zero; /* padding, kept 0 for hashing */
} hs_addr;

typedef struct hs_peer {   /* peers of open pipes, counted */
	hs_addr        addr;
	uint32_t       n;
	UT_hash_handle hh;
} hs_peer;

typedef struct hs_sock {   /* a connection not (yet) a pipe */
	uint64_t       cookie;
	int64_t        first_ms;
	uint64_t       pass;   /* the last pass that saw it */
	UT_hash_handle hh;
} hs_sock;

struct srv_hs {
	uint32_t        timeout_ms;
	hs_addr         local[SRV_MAX_LISTEN]; /* the tls+tcp listeners' bound addresses */
	uint32_t        nlocal;
	DIR            *dir;      /* /proc/self/fd */
	int             spare;    /* our slot for a private reference */
	int             devnull;  /* what spare refers to between uses */
	long            next_fd;  /* where the next sweep resumes */
	uint64_t        pass;
	hs_sock        *socks;    /* sweep only */
	pthread_mutex_t mu;       /* guards peers; held while shutting down */
	hs_peer        *peers;
};

static const uint8_t hs_v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

static bool
hs_addr_from_sa(const struct sockaddr_storage *ss, hs_addr *ret)
{
	memset(ret, 0, sizeof *ret);
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)ss;

		memcpy(ret->ip, hs_v4mapped, 12);
		memcpy(ret->ip + 12, &in->sin_addr, 4);
		ret->port = in->sin_port;
		return true;
	}
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;

		memcpy(ret->ip, &in6->sin6_addr, 16);
		ret->port = in6->sin6_port;
		return true;
	}
	return false;
}

static bool
hs_addr_from_nng(const nng_sockaddr *sa, hs_addr *ret)
{
	memset(ret, 0, sizeof *ret);
	if (sa->s_family == NNG_AF_INET) {
		memcpy(ret->ip, hs_v4mapped, 12);
		memcpy(ret->ip + 12, &sa->s_in.sa_addr, 4);
		ret->port = sa->s_in.sa_port;
		return true;
	}
	if (sa->s_family == NNG_AF_INET6) {
		memcpy(ret->ip, sa->s_in6.sa_addr, 16);
		ret->port = sa->s_in6.sa_port;
		return true;
	}
	return false;
}

/* A listener on 0.0.0.0 or :: takes connections to any local address. */
static bool
hs_local_match(const srv_hs *hs, const hs_addr *a)
{
	static const uint8_t any6[16];

	for (uint32_t i = 0; i < hs->nlocal; i++) {
		const hs_addr *l = &hs->local[i];

		if (l->port != a->port)
			continue;
		if (memcmp(l->ip, a->ip, 16) == 0 || memcmp(l->ip, any6, 16) == 0 ||
		    (memcmp(l->ip, hs_v4mapped, 12) == 0 && memcmp(l->ip + 12, any6, 4) == 0))
			return true;
	}
	return false;
}

/* fd is a connected TCP socket on a tls+tcp listener's address: its peer
 * in *ret_peer. Listening sockets have no peer (ENOTCONN). */
static bool
hs_candidate(const srv_hs *hs, int fd, hs_addr *ret_peer)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	hs_addr a;
	int type;
	socklen_t tlen = sizeof type;

	if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0 || !hs_addr_from_sa(&ss, &a) ||
	    !hs_local_match(hs, &a))
		return false;
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) != 0 || type != SOCK_STREAM)
		return false;
	len = sizeof ss;
	if (getpeername(fd, (struct sockaddr *)&ss, &len) != 0)
		return false;
	return hs_addr_from_sa(&ss, ret_peer);
}

static bool
hs_cookie(int fd, uint64_t *ret_cookie)
{
	uint64_t c;
	socklen_t len = sizeof c;

	if (getsockopt(fd, SOL_SOCKET, SO_COOKIE, &c, &len) != 0 || len != sizeof c)
		return false;
	*ret_cookie = c;
	return true;
}

/* Under mu. */
static bool
hs_peer_known(srv_hs *hs, const hs_addr *peer)
{
	hs_peer *p;

	HASH_FIND(hh, hs->peers, peer, sizeof *peer, p);
	return p != NULL;
}

/* Shuts down the socket fd refers to if it is still the one of cookie and
 * still no pipe's (see the top of the file). */
static bool
hs_shut(srv_hs *hs, int fd, uint64_t cookie)
{
	hs_addr peer;
	uint64_t c;
	bool ok = false;

	pthread_mutex_lock(&hs->mu);
	if (dup3(fd, hs->spare, O_CLOEXEC) < 0)
		goto out;
	if (hs_candidate(hs, hs->spare, &peer) && !hs_peer_known(hs, &peer) &&
	    hs_cookie(hs->spare, &c) && c == cookie)
		ok = shutdown(hs->spare, SHUT_RDWR) == 0;
	/* drops our reference; should it fail, the next dup2 replaces it */
	(void)dup3(hs->devnull, hs->spare, O_CLOEXEC);
out:
	pthread_mutex_unlock(&hs->mu);
	return ok;
}

static void
hs_sweep_fd(srv_hs *hs, int fd, int64_t now_ms, uint32_t *closed)
{
	hs_addr peer;
	uint64_t cookie;
	hs_sock *e;
	bool pipe;

	if (!hs_candidate(hs, fd, &peer))
		return;
	pthread_mutex_lock(&hs->mu);
	pipe = hs_peer_known(hs, &peer);
	pthread_mutex_unlock(&hs->mu);
	if (pipe || !hs_cookie(fd, &cookie))
		return;
	HASH_FIND(hh, hs->socks, &cookie, sizeof cookie, e);
	if (e == NULL) {
		if ((e = malloc(sizeof *e)) == NULL)
			return; /* next second */
		e->cookie = cookie;
		e->first_ms = now_ms;
		HASH_ADD(hh, hs->socks, cookie, sizeof e->cookie, e);
		if (!VIGIL_HASH_ADDED(e)) {
			free(e);
			return;
		}
	}
	e->pass = hs->pass;
	if (now_ms - e->first_ms < (int64_t)hs->timeout_ms || !hs_shut(hs, fd, cookie))
		return;
	HASH_DEL(hs->socks, e);
	free(e);
	(*closed)++;
}

uint32_t
srv_hs_sweep(srv_hs *hs, int64_t now_ms)
{
	struct dirent *de;
	uint32_t seen = 0, closed = 0;
	bool end = true;
	hs_sock *e, *tmp;

	rewinddir(hs->dir);
	while ((de = readdir(hs->dir)) != NULL) {
		char *p;
		long fd = strtol(de->d_name, &p, 10);

		if (p == de->d_name || *p != '\0' || fd < hs->next_fd)
			continue;
		if (seen == HS_SCAN_MAX) {
			hs->next_fd = fd;
			end = false;
			break;
		}
		seen++;
		if (fd != dirfd(hs->dir) && fd != hs->spare && fd != hs->devnull)
			hs_sweep_fd(hs, (int)fd, now_ms, &closed);
	}
	if (end) { /* a whole pass: forget the sockets it did not see */
		HASH_ITER(hh, hs->socks, e, tmp) {
			if (e->pass != hs->pass) {
				HASH_DEL(hs->socks, e);
				free(e);
			}
		}
		hs->pass++;
		hs->next_fd = 0;
	}
	return closed;
}

bool
srv_hs_pipe_add(srv_hs *hs, const nng_sockaddr *peer)
{
	hs_addr a;
	hs_peer *p;
	bool ok = true;

	if (!hs_addr_from_nng(peer, &a))
		return true; /* not TCP: never a candidate */
	pthread_mutex_lock(&hs->mu);
	HASH_FIND(hh, hs->peers, &a, sizeof a, p);
	if (p != NULL) {
		p->n++;
	} else if ((p = malloc(sizeof *p)) == NULL) {
		ok = false;
	} else {
		p->addr = a;
		p->n = 1;
		HASH_ADD(hh, hs->peers, addr, sizeof p->addr, p);
		if (!VIGIL_HASH_ADDED(p)) {
			free(p);
			ok = false;
		}
	}
	pthread_mutex_unlock(&hs->mu);
	return ok;
}

void
srv_hs_pipe_remove(srv_hs *hs, const nng_sockaddr *peer)
{
	hs_addr a;
	hs_peer *p;

	if (!hs_addr_from_nng(peer, &a))
		return;
	pthread_mutex_lock(&hs->mu);
	HASH_FIND(hh, hs->peers, &a, sizeof a, p);
	if (p != NULL && --p->n == 0) {
		HASH_DEL(hs->peers, p);
		free(p);
	}
	pthread_mutex_unlock(&hs->mu);
}

vigil_err
srv_hs_listener_add(srv_hs *hs, nng_listener l)
{
	nng_sockaddr sa;

	if (hs->nlocal == SRV_MAX_LISTEN) /* one a listener: config.c caps them */
		return VIGIL_ETOOBIG;
	if (nng_listener_get_addr(l, NNG_OPT_LOCADDR, &sa) != 0)
		return VIGIL_EIO;
	if (!hs_addr_from_nng(&sa, &hs->local[hs->nlocal]))
		return VIGIL_EIO;
	hs->nlocal++;
	return VIGIL_OK;
}

vigil_err
srv_hs_new(uint32_t timeout_ms, srv_hs **ret_hs, char *errbuf, size_t errlen)
{
	srv_hs *hs = calloc(1, sizeof *hs);

	if (hs == NULL) {
		snprintf(errbuf, errlen, "tls: out of memory");
		return VIGIL_ENOMEM;
	}
	hs->timeout_ms = timeout_ms;
	hs->spare = hs->devnull = -1;
	pthread_mutex_init(&hs->mu, NULL);
	hs->dir = opendir("/proc/self/fd");
	if (hs->dir == NULL ||
	    (hs->devnull = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0 ||
	    (hs->spare = fcntl(hs->devnull, F_DUPFD_CLOEXEC, 0)) < 0) {
		snprintf(errbuf, errlen, "tls: handshake_timeout_ms: cannot open %s: %s",
		    hs->dir == NULL ? "/proc/self/fd" : "/dev/null", strerror(errno));
		srv_hs_free(hs);
		return VIGIL_EIO;
	}
	*ret_hs = hs;
	return VIGIL_OK;
}

void
srv_hs_free(srv_hs *hs)
{
	hs_sock *e, *tmp;
	hs_peer *p, *ptmp;

	if (hs == NULL)
		return;
	HASH_ITER(hh, hs->socks, e, tmp) {
		HASH_DEL(hs->socks, e);
		free(e);
	}
	HASH_ITER(hh, hs->peers, p, ptmp) {
		HASH_DEL(hs->peers, p);
		free(p);
	}
	if (hs->dir != NULL)
		closedir(hs->dir);
	if (hs->spare >= 0)
		close(hs->spare);
	if (hs->devnull >= 0)
		close(hs->devnull);
	pthread_mutex_destroy(&hs->mu);
	free(hs);
}
