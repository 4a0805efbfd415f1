/* SPDX-License-Identifier: MIT */
/* rules/lex.c - (being written) */
