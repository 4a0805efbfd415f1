/* SPDX-License-Identifier: MIT */
/*
 * common/cli.c - the exit-status table and the --help / --version lines every
 * vigil program prints (cli.h; docs/tools.md).
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>

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
vigil_cli_bad_option(const char *prog, char *const argv[])
{
	if (optopt != 0 && optopt < 256)
		fprintf(stderr, "%s: option -%c: unknown or missing its value (see --help)\n",
		    prog, optopt);
	else
		fprintf(stderr, "%s: %s: unknown option or missing value (see --help)\n", prog,
		    optind > 0 ? argv[optind - 1] : "?");
	return VIGIL_EXIT_USAGE;
}
