/* SPDX-License-Identifier: MIT */
/* store/frame.c - (being written) */
