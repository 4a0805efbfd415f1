/* SPDX-License-Identifier: MIT */
/*
 * tests/batch/fixture.c - see fixture.h.
 */
#define _XOPEN_SOURCE 700
#include <math.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"
#include "tmpdir.h"

static void
fx_die(const char *what, const char *detail)
{
	fprintf(stderr, "fixture: %s: %s\n", what, detail);
	abort();
}

/* Every directory fx_tmpdir made, removed at exit (a test that fails, or
 * forgets fx_rm_rf, leaves nothing in /tmp) unless VIGIL_KEEP_TEST_DATA is
 * set. */
#define FX_TMP_MAX 64
static char  fx_made[FX_TMP_MAX][256];
static int   fx_nmade;
static pid_t fx_owner; /* a forked child that exits removes nothing */

static void
fx_tmp_cleanup(void)
{
	if (getpid() != fx_owner)
		return;
	for (int i = 0; i < fx_nmade; i++) {
		if (getenv("VIGIL_KEEP_TEST_DATA") != NULL)
			fprintf(stderr, "fixture: keeping %s\n", fx_made[i]);
		else
			vt_tmpdir_remove(fx_made[i]);
	}
	fx_nmade = 0;
}

const char *
fx_tmpdir(int slot)
{
	static char bufs[4][256];
	char *b = bufs[slot & 3];

	if (vt_tmpdir_make("vigil-batch", b, sizeof bufs[0]) != 0)
		fx_die("mkdtemp", strerror(errno));
	if (fx_owner == 0) {
		fx_owner = getpid();
		if (atexit(fx_tmp_cleanup) != 0)
			fx_die("atexit", "cannot register");
	}
	if (fx_nmade < FX_TMP_MAX)
		snprintf(fx_made[fx_nmade++], sizeof fx_made[0], "%s", b);
	return b;
}

void
fx_rm_rf(const char *dir)
{
	vt_tmpdir_remove(dir);
}

void
fx_copy_archive(const char *src, const char *dst)
{
	char cmd[1200];

	snprintf(cmd, sizeof cmd, "mkdir -p '%s' && cp -r '%s/archive' '%s/archive'", dst, src, dst);
	if (system(cmd) != 0)
		fx_die("copy archive", cmd);
}

store_archive *
fx_archive(const char *datadir)
{
	store_archive_opts o;
	store_archive *ar = NULL;
	store_diag d;
	char dir[512];

	store_archive_opts_default(&o);
	o.fsync = STORE_FSYNC_NEVER;
	snprintf(dir, sizeof dir, "%s/archive", datadir);
	mkdir(datadir, 0755);
	if (store_archive_open(dir, &o, &ar, NULL, &d) != VIGIL_OK)
		fx_die("store_archive_open", d.msg);
	return ar;
}

void
fx_score(store_archive *ar, const fx_txn *t)
{
	fx_score_at(ar, t, 0);
}

void
fx_score_at(store_archive *ar, const fx_txn *t, double score)
{
	static store_scored s;
	uint8_t buf[16384];
	size_t len;
	vigil_err rv;

	memset(&s, 0, sizeof s);
	snprintf(s.txn.txn_id, sizeof s.txn.txn_id, "%s", t->txn_id);
	snprintf(s.txn.card_id, sizeof s.txn.card_id, "%s", t->card);
	snprintf(s.txn.merchant_id, sizeof s.txn.merchant_id, "%s", t->merchant);
	snprintf(s.txn.terminal_id, sizeof s.txn.terminal_id, "%s", t->terminal ? t->terminal : "");
	snprintf(s.txn.country, sizeof s.txn.country, "%s", t->country ? t->country : "");
	snprintf(s.txn.currency, sizeof s.txn.currency, "%s", t->currency ? t->currency : "EUR");
	s.txn.amount_minor = t->amount_minor;
	s.txn.event_time_ms = t->t;
	s.txn.mcc = t->mcc;
	s.txn.channel = VIGIL_CHANNEL_ECOM;
	s.decision = VIGIL_DECISION_ALLOW;
	s.score = score;
	snprintf(s.rules_version, sizeof s.rules_version, "test");
	s.scored_at_ms = t->t;
	if (t->feat != NULL) {
		s.nfeats = 1;
		snprintf(s.feats[0].name, sizeof s.feats[0].name, "%s", t->feat);
		s.feats[0].val = isnan(t->feat_val) ? vigil_value_missing() : vigil_value_num(t->feat_val);
	}
	rv = store_scored_encode(&s, buf, sizeof buf, &len);
	if (rv != VIGIL_OK)
		fx_die("store_scored_encode", vigil_strerror(rv));
	rv = store_archive_append(ar, STORE_REC_SCORE, t->t, buf, len, NULL);
	if (rv != VIGIL_OK)
		fx_die("store_archive_append", vigil_strerror(rv));
}

void
fx_label(store_archive *ar, const char *txn_id, bool fraud, int64_t label_time)
{
	store_label l;
	uint8_t buf[1024];
	size_t len;
	vigil_err rv;

	memset(&l, 0, sizeof l);
	snprintf(l.txn_id, sizeof l.txn_id, "%s", txn_id);
	snprintf(l.source, sizeof l.source, "chargeback");
	l.fraud = fraud;
	l.label_time_ms = label_time;
	l.received_at_ms = label_time;
	rv = store_label_encode(&l, buf, sizeof buf, &len);
	if (rv != VIGIL_OK)
		fx_die("store_label_encode", vigil_strerror(rv));
	rv = store_archive_append(ar, STORE_REC_LABEL, label_time, buf, len, NULL);
	if (rv != VIGIL_OK)
		fx_die("store_archive_append", vigil_strerror(rv));
}

static char *
slurp_fd(int fd)
{
	size_t cap = 4096, n = 0;
	char *b = malloc(cap);
	ssize_t r;

	if (b == NULL)
		return NULL;
	lseek(fd, 0, SEEK_SET);
	while ((r = read(fd, b + n, cap - n - 1)) > 0) {
		n += (size_t)r;
		if (cap - n < 2) {
			char *nb = realloc(b, cap * 2);
			if (nb == NULL)
				break;
			b = nb;
			cap *= 2;
		}
	}
	b[n] = '\0';
	return b;
}

int
fx_run(const char *const *argv, char **out, char **err)
{
	FILE *fo = tmpfile(), *fe = tmpfile();
	pid_t pid;
	int st = 0;

	if (fo == NULL || fe == NULL)
		fx_die("tmpfile", strerror(errno));
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		fx_die("fork", strerror(errno));
	if (pid == 0) {
		dup2(fileno(fo), 1);
		dup2(fileno(fe), 2);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (out != NULL)
		*out = slurp_fd(fileno(fo));
	if (err != NULL)
		*err = slurp_fd(fileno(fe));
	fclose(fo);
	fclose(fe);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

const char *
fx_rebuild_bin(void)
{
	static char path[1024];
	const char *root = getenv("VIGIL_BUILD_ROOT");

	snprintf(path, sizeof path, "%s/batch/vigil-rebuild", root ? root : ".");
	return path;
}
