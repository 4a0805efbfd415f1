/* SPDX-License-Identifier: MIT */
/*
 * server/tune.c - the process set up for vigild before it starts: glibc's
 * allocator (srv_malloc_tune; docs/vigild.md, "Memory") and the scheduling
 * policy (srv_sched_tune, at the end; docs/vigild.md, "Threads").
 *
 * Scoring grows the live state (cards' and entities' events, idempotency
 * records) from nng's threads, whose malloc arenas are extended a page at
 * a time, each page a fault when first written. With
 * glibc.malloc.hugetlb=1 malloc asks for transparent huge pages (madvise)
 * and with a 32 MiB top pad its heaps grow far enough for them to apply:
 * a fault maps 2 MiB. Which costs less depends on the host. On bare metal
 * and where the hypervisor keeps a guest's memory backed, one fault of
 * 2 MiB is cheaper than 512 of 4 KiB; on a virtual machine that reports
 * free memory back to its host (virtio-balloon free page reporting), a
 * huge page is taken from the blocks that were handed back and the host
 * backs all of it again: measured there 2.6-3.1 ms of CPU per MiB, against
 * 0.42-0.59 ms as 4 KiB pages, and a scoring thread stalled for the 6 ms
 * of each huge fault (docs/BENCHMARKS.md, "CPU per score").
 *
 * [server] huge_pages = auto (the default) asks for huge pages unless free
 * page reporting is on (srv_page_reporting); on and off choose. glibc
 * reads its tunables only at start, so with huge pages vigild executes
 * itself again once with GLIBC_TUNABLES set; the process id, arguments,
 * descriptors and the rest of the environment stay. A GLIBC_TUNABLES that
 * already names glibc.malloc.hugetlb is the operator's choice and is kept.
 */
#include <dirent.h>
#include <errno.h>
#include <linux/virtio_balloon.h>
#include <linux/virtio_ids.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "srv.h"

#define TUNE_SET    "glibc.malloc.hugetlb=1:glibc.malloc.top_pad=33554432"
#define TUNE_MARKER "VIGIL_MALLOC_TUNED" /* the second start's note, then removed */

/* The first line of sysfs/bus/virtio/devices/dev/file, newline cut. */
static bool
tune_read(const char *sysfs, const char *dev, const char *file, char *buf, size_t len)
{
	char path[1024];
	FILE *f;
	bool ok;

	snprintf(path, sizeof path, "%s/bus/virtio/devices/%s/%s", sysfs, dev, file);
	if ((f = fopen(path, "re")) == NULL)
		return false;
	ok = fgets(buf, (int)len, f) != NULL;
	fclose(f);
	if (ok)
		buf[strcspn(buf, "\n")] = '\0';
	return ok;
}

bool
srv_page_reporting(const char *sysfs)
{
	char path[1024], buf[256];
	struct dirent *de;
	bool on = false;
	DIR *d;

	snprintf(path, sizeof path, "%s/bus/virtio/devices", sysfs);
	if ((d = opendir(path)) == NULL)
		return false;
	while (!on && (de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' ||
		    !tune_read(sysfs, de->d_name, "device", buf, sizeof buf) ||
		    strtol(buf, NULL, 0) != VIRTIO_ID_BALLOON)
			continue;
		/* features: one character per bit, '0' or '1', bit 0 first */
		if (!tune_read(sysfs, de->d_name, "features", buf, sizeof buf) ||
		    strlen(buf) <= VIRTIO_BALLOON_F_REPORTING ||
		    buf[VIRTIO_BALLOON_F_REPORTING] != '1')
			continue;
		snprintf(path, sizeof path, "%s/bus/virtio/devices/%s/driver", sysfs, de->d_name);
		on = access(path, F_OK) == 0; /* bound: the driver reports */
	}
	closedir(d);
	return on;
}

void
srv_malloc_tune(char **argv, srv_huge_pages mode, char *note, size_t nlen)
{
	const char *cur = getenv("GLIBC_TUNABLES"), *mark = getenv(TUNE_MARKER);
	char buf[1024], self[4096], why[160] = "huge_pages = on", mnote[192];
	ssize_t k;
	int n;

	note[0] = '\0';
	if (mark != NULL) { /* the second start: never a third */
		snprintf(note, nlen, "%.*s", (int)strcspn(mark, "\n"), mark);
		unsetenv(TUNE_MARKER);
		return;
	}
	if (cur != NULL && strstr(cur, "glibc.malloc.hugetlb") != NULL) {
		snprintf(note, nlen, "GLIBC_TUNABLES names glibc.malloc.hugetlb: kept as given");
		return;
	}
	if (mode == SRV_HUGE_OFF) {
		snprintf(note, nlen, "4 KiB pages (huge_pages = off)");
		return;
	}
	if (mode == SRV_HUGE_AUTO) {
		if (srv_page_reporting("/sys")) {
			snprintf(note, nlen, "4 KiB pages (huge_pages = auto: free page reporting "
			    "is on, so the host would back each huge page again when first "
			    "written)");
			return;
		}
		snprintf(why, sizeof why, "huge_pages = auto: no free page reporting");
	}
	if (cur != NULL && cur[0] != '\0')
		n = snprintf(buf, sizeof buf, "%s:%s", cur, TUNE_SET);
	else
		n = snprintf(buf, sizeof buf, "%s", TUNE_SET);
	/* what is logged if this process goes on: not executed again */
	snprintf(note, nlen, "4 KiB pages: huge pages chosen (%s) but vigild could not "
	    "execute itself again with GLIBC_TUNABLES set", why);
	if (n < 0 || (size_t)n >= sizeof buf)
		return;
	/* the binary's own path, not /proc/self/exe: the process's name
	 * (ps, pgrep, top) is the basename of what is executed */
	k = readlink("/proc/self/exe", self, sizeof self - 1);
	if (k <= 0 || (size_t)k >= sizeof self - 1)
		return;
	self[k] = '\0';
	snprintf(mnote, sizeof mnote, "huge pages (%s)", why);
	if (setenv("GLIBC_TUNABLES", buf, 1) != 0 || setenv(TUNE_MARKER, mnote, 1) != 0)
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
