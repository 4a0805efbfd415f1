/* SPDX-License-Identifier: MIT */
/* rules/eval.c - (being written) */
