/* SPDX-License-Identifier: MIT */
/* app/app.c - (being written) */
