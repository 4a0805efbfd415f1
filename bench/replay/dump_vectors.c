/* SPDX-License-Identifier: MIT */
/*
 * bench/replay/dump_vectors.c - writes out the model input vectors a data
 * directory's archive holds, for offline experiments on the nightly model
 * (bench/replay/model_lab.py, docs/DETECTION.md "Rules and the nightly
 * model"). Not part of any product path: the rebuild reads the archive
 * itself.
 *
 *   dump-vectors DATADIR OUTPREFIX
 *
 * writes OUTPREFIX.names (the model's input names, one a line),
 * OUTPREFIX.meta (one line per scored record with a vector of the current
 * layout: txn_id, card_id, event time in ms, rule score, tab-separated) and
 * OUTPREFIX.f32 (the vectors, row after row, float32 little-endian, NaN =
 * missing), in archive order.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "archive.h"
#include "cli.h"
#include "schema.h"
#include "vigil.h"

static void
usage(FILE *f)
{
	fprintf(f, "usage: dump-vectors DATADIR OUTPREFIX\n"
	    "       dump-vectors --help | --version\n"
	    "Writes OUTPREFIX.names, OUTPREFIX.meta (txn_id, card_id, event time ms,\n"
	    "score; tab-separated) and OUTPREFIX.f32 (float32 vectors, NaN = missing)\n"
	    "for every scored record of DATADIR/archive with a vector of this build's\n"
	    "model layout.\n");
}

static FILE *
open_out(const char *prefix, const char *ext)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof path, "%s.%s", prefix, ext);
	f = fopen(path, "w");
	if (f == NULL) {
		perror(path);
		exit(1);
	}
	return f;
}

int
main(int argc, char **argv)
{
	static store_scored s; /* large: not on the stack */
	const uint32_t *slots;
	uint32_t nin = store_schema_model_inputs(&slots);
	uint64_t layout = store_schema_model_layout();
	char dir[4096];
	store_reader *rd = NULL;
	store_record rec;
	store_diag diag;
	FILE *fn, *fm, *fx;
	uint64_t rows = 0, skipped = 0;
	vigil_err rv;

	if (argc == 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
		usage(stdout);
		return 0;
	}
	if (argc == 2 && (strcmp(argv[1], "-V") == 0 || strcmp(argv[1], "--version") == 0)) {
		vigil_cli_version(stdout, "dump-vectors");
		return 0;
	}
	if (argc != 3) {
		usage(stderr);
		return 2;
	}
	snprintf(dir, sizeof dir, "%s/archive", argv[1]);
	rv = store_reader_open(dir, INT64_MIN, INT64_MAX, NULL, NULL, &rd, &diag);
	if (rv != VIGIL_OK) {
		fprintf(stderr, "dump-vectors: %s: %s: %s\n", dir, vigil_strerror(rv), diag.msg);
		return 1;
	}
	store_reader_want(rd, 1u << STORE_REC_SCORE);
	fn = open_out(argv[2], "names");
	fm = open_out(argv[2], "meta");
	fx = open_out(argv[2], "f32");
	for (uint32_t i = 0; i < nin; i++)
		fprintf(fn, "%s\n", store_schema_field(slots[i])->name);
	while ((rv = store_reader_next(rd, &rec, &diag)) == VIGIL_OK) {
		float x[STORE_MODEL_MAX_INPUTS];
		uint32_t n = 0;

		if (rec.type != STORE_REC_SCORE)
			continue;
		rv = store_scored_decode(rec.payload, rec.len, &s, &diag);
		if (rv != VIGIL_OK) {
			fprintf(stderr, "dump-vectors: %s:%llu: %s\n", rec.segment,
			    (unsigned long long)rec.offset, diag.msg);
			return 1;
		}
		if (s.model_in_len == 0 || s.model_layout != layout ||
		    store_model_vec_decode(s.model_in, s.model_in_len, x, STORE_MODEL_MAX_INPUTS,
			&n) != VIGIL_OK || n != nin) {
			skipped++;
			continue;
		}
		fprintf(fm, "%s\t%s\t%" PRId64 "\t%d\n", s.txn.txn_id, s.txn.card_id,
		    s.txn.event_time_ms, (int)s.score);
		if (fwrite(x, sizeof x[0], n, fx) != n) {
			perror("dump-vectors: write");
			return 1;
		}
		rows++;
	}
	if (rv != VIGIL_ENOTFOUND) {
		fprintf(stderr, "dump-vectors: %s: %s: %s\n", dir, vigil_strerror(rv), diag.msg);
		return 1;
	}
	store_reader_close(rd);
	if (fclose(fn) != 0 || fclose(fm) != 0 || fclose(fx) != 0) {
		perror("dump-vectors: close");
		return 1;
	}
	fprintf(stderr, "dump-vectors: %" PRIu64 " rows of %u inputs, %" PRIu64 " without a vector of this layout\n",
	    rows, nin, skipped);
	return 0;
}
