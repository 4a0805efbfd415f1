/* SPDX-License-Identifier: MIT */
/* rules/compile.c - (being written) */
