/* SPDX-License-Identifier: MIT */
/* store/db.c - (being written) */
