/* SPDX-License-Identifier: MIT */
/* store/live.c - (being written) */
