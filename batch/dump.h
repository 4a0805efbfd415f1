/* SPDX-License-Identifier: MIT */
/* batch/dump.h - vigil-rebuild --dump: one profile of a generation as JSON
 * (dump.c; private to the vigil-rebuild program). */
#ifndef VIGIL_BATCH_DUMP_H
#define VIGIL_BATCH_DUMP_H

#include <stdint.h>
#include <stdio.h>

/* Writes the profile of the card, merchant or terminal (kind) id in
 * generation gen of datadir (0: the current one) to out as one JSON object.
 * Returns 0; 1 after one line on stderr: no such generation, an id not in
 * it, a damaged generation, a write error; 2 (usage) for an unknown kind. */
int batch_dump_profile(const char *datadir, uint64_t gen, const char *kind, const char *id,
    FILE *out);

#endif
