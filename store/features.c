/* SPDX-License-Identifier: MIT */
/* store/features.c - (being written) */
