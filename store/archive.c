/* SPDX-License-Identifier: MIT */
/* store/archive.c - (being written) */
