/* SPDX-License-Identifier: MIT */
/*
 * tools/rulestool/tool.h - what vigil-rules' files share: main.c runs the
 * commands and reads rule files and transactions, test.c runs the
 * regression cases, catalog.c lists the features.
 */
#ifndef VIGIL_RULESTOOL_TOOL_H
#define VIGIL_RULESTOOL_TOOL_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "rules.h"
#include "vigil.h"

#define EXIT_FINDINGS VIGIL_EXIT_FAIL
#define EXIT_USAGE    VIGIL_EXIT_USAGE

#define TOOL_BAD_RULES  (-1)        /* tool_compile: diagnostics to print */
#define TOOL_MAX_FILE   (16u << 20) /* rule and cases files read by the tool */

/* A command's --help: its text, then the exit-status table; returns 0. */
int tool_help(const char *text);

/* Reads path ("-" = stdin) into a NUL-terminated buffer (*ret_len bytes,
 * the caller frees it); NULL after printing "PATH: error: WHAT". */
char *tool_read(const char *path, size_t *ret_len);

/* Reads and compiles a rule file: 0 (*ret_prog set), TOOL_BAD_RULES (diags
 * filled, *ret_src kept for printing; the caller frees it) or EXIT_USAGE
 * (I/O, printed). */
int tool_compile(const char *path, const rules_schema *schema, rules_prog **ret_prog,
    rules_diags *diags, char **ret_src, size_t *ret_len);

/* 0 if every key of obj is one of keys[]; else -1 and err gets
 * "[PREFIX.]KEY: unknown key (one of ...)". */
int tool_keys_check(const json_t *obj, const char *const *keys, const char *prefix, char *err,
    size_t errlen);

/* Fills txn, features (and tv) from {"txn": {...}, "features": {...},
 * "thresholds": {...}}: 0, or -1 with err set. String values point into
 * txn and obj. */
int tool_input(const json_t *obj, const rules_prog *prog, vigil_txn *txn, vigil_value *features,
    uint32_t nfeatures, rules_tvals *tv, char *err, size_t errlen);

/* vigil-rules features ARGS (argv[0] "features"): exit status. */
int cmd_features(int argc, char **argv);

/* vigil-rules test ARGS (argv[0] "test"): exit status. */
int cmd_test(int argc, char **argv, const rules_schema *schema);

#endif /* VIGIL_RULESTOOL_TOOL_H */
