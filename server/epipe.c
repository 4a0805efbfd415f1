/* SPDX-License-Identifier: MIT */
/*
 * server/epipe.c - keeps vigild's listeners accepting on libnng 1.5.2.
 *
 * nng 1.5.2 (Debian 12's libnng) maps a write's EPIPE to NNG_ECLOSED. When
 * a new connection fails its handshake with that code, the transport hands
 * it to the listener's pending accept, and nng's socket core reads
 * NNG_ECLOSED there as "this listener was closed": it takes "no further
 * action" and never accepts again (nng issue 1518, fixed after 1.5.2 by
 * commit 9248ed74, which reports NNG_ECONNSHUT instead). So a peer that
 * closes its end while vigild writes the handshake, as a client giving up
 * in the middle of a TLS handshake does, or a few hundred connect-and-close
 * on the ipc socket (measured: 300 stopped it every time), left that
 * listener deaf for the rest of the process's life: connections queued in
 * the kernel, no error anywhere, and every new client without an answer.
 *
 * The executable's definition of a symbol comes first in the dynamic
 * linker's search, so libnng's sendmsg calls land here: a write to a
 * connection its peer has closed reports ECONNRESET, the other name of the
 * same fact (the first write after the peer's reset gets exactly that),
 * which nng maps to NNG_ECONNRESET and after which the listener accepts
 * again at once. Every other result, and every other caller (libsystemd's
 * sd_notify is the one other in vigild), is libc's. To go when the libnng
 * vigild builds against has 9248ed74 (nng >= 1.6.0).
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

typedef ssize_t (*epipe_sendmsg_fn)(int, const struct msghdr *, int);

static epipe_sendmsg_fn epipe_next;
static pthread_once_t epipe_once = PTHREAD_ONCE_INIT;

/* libc's sendmsg, or a sanitizer's interceptor loaded before it */
static void
epipe_resolve(void)
{
	epipe_next = (epipe_sendmsg_fn)dlsym(RTLD_NEXT, "sendmsg");
}

ssize_t
sendmsg(int fd, const struct msghdr *msg, int flags)
{
	ssize_t n;

	(void)pthread_once(&epipe_once, epipe_resolve);
	if (epipe_next != NULL)
		n = epipe_next(fd, msg, flags);
	else
		n = syscall(SYS_sendmsg, fd, msg, flags);
	if (n < 0 && errno == EPIPE)
		errno = ECONNRESET;
	return n;
}
