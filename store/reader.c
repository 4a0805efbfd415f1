/* SPDX-License-Identifier: MIT */
/* store/reader.c - (being written) */
