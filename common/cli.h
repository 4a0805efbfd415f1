/* SPDX-License-Identifier: MIT */
/*
 * common/cli.h - the command-line vocabulary every vigil program shares: the
 * exit-status table, the common flags and the lines of --help that carry
 * them. docs/tools.md is the manual of both tables; tests/tools/cli_vocab.sh
 * checks every program's --help and behaviour against that page.
 *
 * Library code never prints; these functions print only to the stream they
 * are handed, for a program's main().
 */
#ifndef VIGIL_CLI_H
#define VIGIL_CLI_H

#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/* One meaning per code in every program (docs/tools.md, "Exit status"). */
typedef enum vigil_exit {
	VIGIL_EXIT_OK = 0,    /* success (nothing to do is success) */
	VIGIL_EXIT_FAIL = 1,  /* the work ran and failed, or found problems */
	VIGIL_EXIT_USAGE = 2, /* bad command line, configuration or rule file: nothing done */
	VIGIL_EXIT_BUSY = 3,  /* another run holds the lock: nothing done, try later */
	VIGIL_EXIT_COUNT_
} vigil_exit;

/* The table's one-line meaning of code ("success", "failure", ...); NULL for
 * a code outside the table. Static storage. */
const char *vigil_exit_meaning(int code);

/* Prints the exit-status block of --help:
 *
 *   Exit status (docs/tools.md):
 *     0  success: DETAIL
 *     1  failure: DETAIL
 *
 * detail[i] is this program's reading of code i ("" for none); NULL leaves
 * code i out (the program never returns it). */
void vigil_cli_exit_help(FILE *out, const char *const detail[VIGIL_EXIT_COUNT_]);

/* Prints "PROG VERSION" and a newline: the --version line of every program. */
void vigil_cli_version(FILE *out, const char *prog);

/* Flushes standard output and returns status; if anything written to it
 * was lost (the flush fails, or an earlier one did: ferror), prints
 * "PROG: standard output: REASON" on stderr, one line, and returns
 * VIGIL_EXIT_FAIL in place of VIGIL_EXIT_OK. Every program's last call. */
int vigil_cli_stdout_status(const char *prog, int status);

/* Prints "PROG: MESSAGE (see --help)" on stderr, one line, and returns
 * VIGIL_EXIT_USAGE. */
int vigil_cli_usage_error(const char *prog, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The value s of --flag as a whole decimal in [lo, hi] into *ret, and
 * VIGIL_EXIT_OK; or a usage error naming the flag, the value and the range
 * ("PROG: --runs: 0: not a whole number in [1, 101] (see --help)"),
 * VIGIL_EXIT_USAGE, *ret untouched. A sign, a space or a suffix is refused. */
int vigil_cli_parse_u64(const char *prog, const char *flag, const char *s, uint64_t lo,
    uint64_t hi, uint64_t *ret);
int vigil_cli_parse_u32(const char *prog, const char *flag, const char *s, uint32_t lo,
    uint32_t hi, uint32_t *ret);

/* The same for a finite number from lo (above lo when open) to hi (HUGE_VAL:
 * no upper bound). */
int vigil_cli_parse_double(const char *prog, const char *flag, const char *s, double lo,
    bool open, double hi, double *ret);

/* After getopt_long returned '?' (opterr = 0): prints "PROG: TEXT (see
 * --help)" on stderr, TEXT as vigil_cli_bad_option_text makes it, and returns
 * VIGIL_EXIT_USAGE. */
int vigil_cli_bad_option(const char *prog, char *const argv[]);

/* The same TEXT into buf: "option -x: unknown or missing its value",
 * "--flag: missing its value" (a long flag ending the command line) or
 * "--flag: unknown option or missing value"; returns buf. */
const char *vigil_cli_bad_option_text(char *buf, size_t cap, char *const argv[]);

/*
 * The installed file at abs, an absolute path of this build's install layout
 * (VIGIL_SYSCONFDIR "/vigil/rules/default.rules", VIGIL_DATADIR
 * "/vigil/console/www"). A program run from an installed tree that is not
 * where it was configured to go (its own directory ends with VIGIL_BINDIR
 * under another root D, as after `meson install --destdir D`) reads
 * D + abs when that exists; otherwise abs. Writes the path into buf (cap
 * bytes) and returns buf.
 */
const char *vigil_installed_path(const char *abs, char *buf, size_t cap);

/*
 * Splits a listening address "HOST:PORT" or "[V6]:PORT" (no scheme: an
 * http:// would pass as a host name and fail only at bind time) into host
 * (at most hostlen - 1 and 63 bytes: a name or an address) and port
 * (1-65535). False if it is not one. vigild's [server] admin and
 * [cluster] peers, vigil-console's --listen.
 */
bool vigil_cli_hostport(const char *s, char *ret_host, size_t hostlen, uint16_t *ret_port);

/* The forms of a vigild URL (docs/tools.md, "Flags", --server), for the
 * error that refuses one. */
#define VIGIL_CLI_URL_FORMS "tcp://HOST:PORT, tls+tcp://HOST:PORT or ipc:///PATH"

/*
 * Whether url can be an nng address: it has a scheme. "127.0.0.1:9465"
 * alone would get nng's "Invalid argument" only at the dial or listen; nng
 * (or the client) judges the rest then. The one check of every program's
 * --server / --url / --listen and of vigil_client_open: inline, so that
 * libvigil-client, which links nothing of common/, calls this same code.
 */
static inline bool
vigil_cli_url_ok(const char *url)
{
	return strstr(url, "://") != NULL;
}

/* Whether this program runs from its build tree (its directory is under
 * VIGIL_BUILD_ROOT): it then reads the source tree's files, never relative
 * to the working directory. */
int vigil_in_build_tree(void);

/* The getopt_long entries of the shared flags (docs/tools.md, "Flags"). A
 * program lists those it has; a short letter in this table means the same
 * thing in every program, and no program gives it another meaning. */
#define VIGIL_CLI_HELP    { "help",    no_argument,       NULL, 'h' }
#define VIGIL_CLI_VERSION { "version", no_argument,       NULL, 'V' }
#define VIGIL_CLI_QUIET   { "quiet",   no_argument,       NULL, 'q' }
#define VIGIL_CLI_JSON    { "json",    no_argument,       NULL, 'j' }
#define VIGIL_CLI_VERBOSE { "verbose", no_argument,       NULL, 'v' }
#define VIGIL_CLI_FORCE   { "force",   no_argument,       NULL, 'f' }
#define VIGIL_CLI_DATA    { "data",    required_argument, NULL, 'd' }
#define VIGIL_CLI_RULES   { "rules",   required_argument, NULL, 'r' }
#define VIGIL_CLI_CONFIG  { "config",  required_argument, NULL, 'c' }
#define VIGIL_CLI_OUTPUT  { "output",  required_argument, NULL, 'o' }
#define VIGIL_CLI_SERVER  { "server",  required_argument, NULL, 's' }
#define VIGIL_CLI_LISTEN  { "listen",  required_argument, NULL, 'l' }
#define VIGIL_CLI_TXN     { "txn",     required_argument, NULL, 't' }
#define VIGIL_CLI_WRITE   { "write",   no_argument,       NULL, 'w' }

/*
 * A program's own flags, each named once. The program lists them
 *
 *   #define PROG_OPTIONS(X) \
 *           X(OPT_DATA,  "data",  required_argument, 'd') \
 *           X(OPT_CHECK, "check", no_argument,       0)
 *
 * (the last column is what getopt_long returns for the long flag: a letter,
 * or 0 for a value of the flag's own above 255), and makes from that list
 * its enum, OPT_DATA == 'd' and OPT_CHECK > 255, and its getopt_long table:
 *
 *   VIGIL_CLI_OPT_ENUM(PROG_OPTIONS);
 *   static const struct option opts[] = {
 *           PROG_OPTIONS(VIGIL_CLI_OPT_ENTRY) { NULL, 0, NULL, 0 },
 *   };
 *
 * The short letters getopt_long takes are still its optstring's.
 */
#define VIGIL_CLI_OPT_INDEX_(id, name, has_arg, letter) id##_INDEX_,
#define VIGIL_CLI_OPT_VALUE_(id, name, has_arg, letter) \
	id = (letter) != 0 ? (letter) : 256 + id##_INDEX_,
#define VIGIL_CLI_OPT_ENUM(list) \
	enum { list(VIGIL_CLI_OPT_INDEX_) }; \
	enum { list(VIGIL_CLI_OPT_VALUE_) }
#define VIGIL_CLI_OPT_ENTRY(id, name, has_arg, letter) { name, has_arg, NULL, id },

#ifdef __cplusplus
}
#endif

#endif /* VIGIL_CLI_H */
