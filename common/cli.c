/* SPDX-License-Identifier: MIT */
/*
 * common/cli.c - the exit-status table and the --help / --version lines every
 * vigil program prints (cli.h; docs/tools.md), and where a program finds
 * its installed files.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "vigil_config.h"

static const char *const cli_meaning[VIGIL_EXIT_COUNT_] = {
	[VIGIL_EXIT_OK] = "success",
	[VIGIL_EXIT_FAIL] = "failure",
	[VIGIL_EXIT_USAGE] = "usage",
	[VIGIL_EXIT_BUSY] = "busy",
};

const char *
vigil_exit_meaning(int code)
{
	if (code < 0 || code >= VIGIL_EXIT_COUNT_)
		return NULL;
	return cli_meaning[code];
}

void
vigil_cli_exit_help(FILE *out, const char *const detail[VIGIL_EXIT_COUNT_])
{
	fprintf(out, "Exit status (docs/tools.md):\n");
	for (int i = 0; i < VIGIL_EXIT_COUNT_; i++) {
		if (detail[i] == NULL)
			continue;
		fprintf(out, "  %d  %s%s%s\n", i, cli_meaning[i], detail[i][0] != '\0' ? ": " : "",
		    detail[i]);
	}
}

void
vigil_cli_version(FILE *out, const char *prog)
{
	fprintf(out, "%s %s\n", prog, VIGIL_VERSION);
}

int
vigil_cli_stdout_status(const char *prog, int status)
{
	int e;

	errno = 0;
	if (fflush(stdout) == 0 && !ferror(stdout))
		return status;
	e = errno;
	fprintf(stderr, "%s: standard output: %s\n", prog, e != 0 ? strerror(e) : "write error");
	return status == VIGIL_EXIT_OK ? VIGIL_EXIT_FAIL : status;
}

int
vigil_cli_usage_error(const char *prog, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (see --help)\n");
	return VIGIL_EXIT_USAGE;
}

int
vigil_cli_parse_u64(const char *prog, const char *flag, const char *s, uint64_t lo, uint64_t hi,
    uint64_t *ret)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || s[0] < '0' || s[0] > '9' || v < lo || v > hi)
		return vigil_cli_usage_error(prog, "--%s: %s: not a whole number in [%llu, %llu]", flag,
		    s, (unsigned long long)lo, (unsigned long long)hi);
	*ret = v;
	return VIGIL_EXIT_OK;
}

int
vigil_cli_parse_u32(const char *prog, const char *flag, const char *s, uint32_t lo, uint32_t hi,
    uint32_t *ret)
{
	uint64_t v;
	int rc = vigil_cli_parse_u64(prog, flag, s, lo, hi, &v);

	if (rc == VIGIL_EXIT_OK)
		*ret = (uint32_t)v;
	return rc;
}

int
vigil_cli_parse_double(const char *prog, const char *flag, const char *s, double lo, bool open,
    double hi, double *ret)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (end == s || *end != '\0' || !isfinite(v) || !(open ? v > lo : v >= lo) || v > hi) {
		if (isinf(hi))
			return vigil_cli_usage_error(prog, "--%s: %s: not a number %s %g", flag, s,
			    open ? "above" : "of at least", lo);
		return vigil_cli_usage_error(prog, "--%s: %s: not a number in %c%g, %g]", flag, s,
		    open ? '(' : '[', lo, hi);
	}
	*ret = v;
	return VIGIL_EXIT_OK;
}

const char *
vigil_cli_bad_option_text(char *buf, size_t cap, char *const argv[])
{
	const char *arg = optind > 0 ? argv[optind - 1] : "?";
	/* A long flag whose value is missing (only possible as the last
	 * argument): getopt_long sets optopt to the flag's value, a letter that
	 * may be no short option of this program, so name the flag as given. */
	bool long_missing = optopt != 0 && argv[optind] == NULL && strncmp(arg, "--", 2) == 0;

	if (optopt == 0)
		snprintf(buf, cap, "%s: unknown option or missing value", arg);
	else if (long_missing || optopt >= 256)
		snprintf(buf, cap, "%s: missing its value", arg);
	else
		snprintf(buf, cap, "option -%c: unknown or missing its value", optopt);
	return buf;
}

int
vigil_cli_bad_option(const char *prog, char *const argv[])
{
	char text[256];

	fprintf(stderr, "%s: %s (see --help)\n", prog,
	    vigil_cli_bad_option_text(text, sizeof text, argv));
	return VIGIL_EXIT_USAGE;
}

/* This program's directory (resolved), into buf; false if unknown. */
static int
cli_self_dir(char *buf, size_t cap)
{
	char self[PATH_MAX], *slash;
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);

	if (n <= 0)
		return 0;
	self[n] = '\0';
	slash = strrchr(self, '/');
	if (slash == NULL)
		return 0;
	*slash = '\0';
	if (snprintf(buf, cap, "%s", self[0] != '\0' ? self : "/") >= (int)cap)
		return 0;
	return 1;
}

const char *
vigil_installed_path(const char *abs, char *buf, size_t cap)
{
	char dir[PATH_MAX];
	size_t dlen, blen = strlen(VIGIL_BINDIR);
	struct stat st;

	snprintf(buf, cap, "%s", abs);
	if (!cli_self_dir(dir, sizeof dir))
		return buf;
	dlen = strlen(dir);
	/* DIR = ROOT VIGIL_BINDIR with a non-empty ROOT: a relocated tree */
	if (dlen > blen && strcmp(dir + dlen - blen, VIGIL_BINDIR) == 0) {
		char moved[PATH_MAX];

		dir[dlen - blen] = '\0';
		if (snprintf(moved, sizeof moved, "%s%s", dir, abs) < (int)sizeof moved &&
		    stat(moved, &st) == 0)
			snprintf(buf, cap, "%s", moved);
	}
	return buf;
}

int
vigil_in_build_tree(void)
{
	char dir[PATH_MAX], *build;
	size_t n;
	int in;

	if (!cli_self_dir(dir, sizeof dir))
		return 0;
	build = realpath(VIGIL_BUILD_ROOT, NULL);
	if (build == NULL)
		return 0;
	n = strlen(build);
	in = strncmp(dir, build, n) == 0 && (dir[n] == '/' || dir[n] == '\0');
	free(build);
	return in;
}

bool
vigil_cli_hostport(const char *s, char *ret_host, size_t hostlen, uint16_t *ret_port)
{
	const char *colon = strrchr(s, ':');
	char host[64], *end;
	unsigned long port;
	size_t hl;
	bool bracketed = s[0] == '[';

	if (colon == NULL || colon == s)
		return false;
	hl = (size_t)(colon - s);
	if (bracketed) { /* [::1]:9466 */
		if (hl < 3 || s[hl - 1] != ']')
			return false;
		s++;
		hl -= 2;
	}
	if (hl >= sizeof host || hl >= hostlen)
		return false;
	memcpy(host, s, hl);
	host[hl] = '\0';
	if (hl == 0 || strspn(host, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789.-_:") != hl || (!bracketed && strchr(host, ':') != NULL))
		return false;
	if (colon[1] < '1' || colon[1] > '9')
		return false;
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (errno != 0 || *end != '\0' || port > 65535)
		return false;
	memcpy(ret_host, host, hl + 1);
	*ret_port = (uint16_t)port;
	return true;
}
