/* SPDX-License-Identifier: MIT */
/* rules/parse.c - (being written) */
