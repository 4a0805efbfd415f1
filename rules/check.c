/* SPDX-License-Identifier: MIT */
/* rules/check.c - (being written) */
