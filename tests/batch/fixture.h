/* SPDX-License-Identifier: MIT */
/*
 * tests/batch/fixture.h - small archives for the vigil-rebuild tests: a
 * temporary data directory, scored transactions and labels appended with
 * the real archive writer (store_archive_append), and a recursive remove.
 */
#ifndef VIGIL_TEST_BATCH_FIXTURE_H
#define VIGIL_TEST_BATCH_FIXTURE_H

#include <stdbool.h>
#include <stdint.h>

#include "archive.h"

/* A fresh mkdtemp directory (static buffer per call slot 0..3). Aborts on error. */
const char *fx_tmpdir(int slot);
/* rm -rf dir. */
void        fx_rm_rf(const char *dir);
/* cp -r of the archive of src into dst/archive (dst created). */
void        fx_copy_archive(const char *src, const char *dst);

/* Opens <datadir>/archive for appending; aborts on error. */
store_archive *fx_archive(const char *datadir);

typedef struct fx_txn {
	const char *txn_id, *card, *merchant, *terminal, *country, *currency;
	int64_t     amount_minor, t;
	uint32_t    mcc;
	const char *feat;  /* archived feature name, or NULL */
	double      feat_val;  /* NaN: feat archived without a value (missing) */
} fx_txn;

/* Appends one scored transaction (score 0); aborts on error. */
void fx_score(store_archive *ar, const fx_txn *t);
/* The same with the given score. */
void fx_score_at(store_archive *ar, const fx_txn *t, double score);
/* Appends one label (record event time = label time); aborts on error. */
void fx_label(store_archive *ar, const char *txn_id, bool fraud, int64_t label_time);

/* Runs argv (argv[0] an absolute path) with stdout to *out (malloc'd, may
 * be NULL) and stderr to *err (may be NULL); returns the exit status, or
 * 128 + signal. */
int  fx_run(const char *const *argv, char **out, char **err);
/* Absolute path of the built vigil-rebuild. */
const char *fx_rebuild_bin(void);

#endif
