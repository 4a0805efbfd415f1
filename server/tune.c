/* SPDX-License-Identifier: MIT */
/*
 * server/tune.c - the process set up for vigild before it starts: glibc's
 * allocator (srv_malloc_tune; docs/vigild.md, "Memory") and the scheduling
 * policy (srv_sched_tune, at the end; docs/vigild.md, "Threads").
 *
 * Scoring grows the live state (cards' and entities' events) from nng's
 * threads, whose malloc arenas are extended a 4 KiB page at a time, each
 * page a fault when first written: 10-19 us on a virtual machine, about
 * 0.04 faults a score. With glibc.malloc.hugetlb=1 malloc asks for
 * transparent huge pages (madvise) and with a 32 MiB top pad its heaps
 * grow far enough for them to apply: a fault maps 2 MiB (vigild CPU per
 * score -0.95 us, docs/BENCHMARKS.md, "CPU per score"). glibc reads its
 * tunables only at start, so vigild executes itself again once with
 * GLIBC_TUNABLES set; the process id, arguments, descriptors and the rest
 * of the environment stay. A GLIBC_TUNABLES that already names
 * glibc.malloc.hugetlb is the operator's choice and is kept
 * (glibc.malloc.hugetlb=0 turns this off).
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "srv.h"

#define TUNE_SET    "glibc.malloc.hugetlb=1:glibc.malloc.top_pad=33554432"
#define TUNE_MARKER "VIGIL_MALLOC_TUNED" /* set across the one exec, then removed */

void
srv_malloc_tune(char **argv)
{
	const char *cur = getenv("GLIBC_TUNABLES");
	char buf[1024], self[4096];
	ssize_t k;
	int n;

	if (getenv(TUNE_MARKER) != NULL) { /* the second start: never a third */
		unsetenv(TUNE_MARKER);
		return;
	}
	if (cur != NULL && strstr(cur, "glibc.malloc.hugetlb") != NULL)
		return;
	if (cur != NULL && cur[0] != '\0')
		n = snprintf(buf, sizeof buf, "%s:%s", cur, TUNE_SET);
	else
		n = snprintf(buf, sizeof buf, "%s", TUNE_SET);
	if (n < 0 || (size_t)n >= sizeof buf)
		return;
	/* the binary's own path, not /proc/self/exe: the process's name
	 * (ps, pgrep, top) is the basename of what is executed */
	k = readlink("/proc/self/exe", self, sizeof self - 1);
	if (k <= 0 || (size_t)k >= sizeof self - 1)
		return;
	self[k] = '\0';
	if (setenv("GLIBC_TUNABLES", buf, 1) != 0 || setenv(TUNE_MARKER, "1", 1) != 0)
		return;
	(void)execv(self, argv);
	/* not executed again (no /proc, the binary replaced or removed since
	 * it started): go on as started, untuned */
	unsetenv(TUNE_MARKER);
	if (cur != NULL)
		(void)setenv("GLIBC_TUNABLES", cur, 1);
	else
		unsetenv("GLIBC_TUNABLES");
}

/*
 * SCHED_BATCH for vigild: a woken thread of vigild does not preempt the
 * one running (Linux's fair scheduler runs it when the CPU is next free or
 * at the tick). vigild's threads hand each request from one to the next
 * (nng's poller, its task threads, the reply), and under the normal policy
 * each hand-off could preempt a thread in the middle of a score: a context
 * switch each way. Set before any thread is created, so every thread, nng's
 * included, inherits it. A process started under another policy (a unit's
 * CPUSchedulingPolicy=, chrt) is left as it is: that is the operator's
 * choice. [server] scheduling_policy = normal keeps the normal policy.
 * Figures: docs/BENCHMARKS.md, "CPU per score"; docs/vigild.md, "Threads".
 */
void
srv_sched_tune(bool batch)
{
	struct sched_param sp = { .sched_priority = 0 };

	if (!batch || sched_getscheduler(0) != SCHED_OTHER)
		return;
	if (sched_setscheduler(0, SCHED_BATCH, &sp) != 0)
		fprintf(stderr, "vigild: scheduling_policy batch: %s; running under the "
		    "normal policy\n", strerror(errno));
}
