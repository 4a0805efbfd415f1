/* SPDX-License-Identifier: MIT */
/*
 * tools/rulestool/tool.h - what vigil-rules' files share: main.c runs the
 * commands, catalog.c lists the features.
 */
#ifndef VIGIL_RULESTOOL_TOOL_H
#define VIGIL_RULESTOOL_TOOL_H

/* A command's --help: its text, then the exit-status table; returns 0. */
int tool_help(const char *text);

/* vigil-rules features ARGS (argv[0] "features"): exit status. */
int cmd_features(int argc, char **argv);

#endif /* VIGIL_RULESTOOL_TOOL_H */
