/* SPDX-License-Identifier: MIT */
/* store/record.c - (being written) */
