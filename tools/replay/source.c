/* SPDX-License-Identifier: MIT */
/*
 * tools/replay/source.c - vigil-replay's input: rows of a vigil CSV file
 * (csv.h) or the scored transactions of an archive range, each with its
 * label and label time when known (a CSV's label columns; an archive's
 * label records, read first and joined by txn_id, the latest verdict
 * winning).
 */
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "replay.h"

/* A corrupt stretch reported by the label pass, "SEGMENT:OFFSET": the
 * scores pass reads the same bytes again and does not report it twice. */
typedef struct rp_seen {
	char           key[NAME_MAX + 24];
	UT_hash_handle hh;
} rp_seen;

static void
rp_on_corrupt(void *arg, const char *segment, uint64_t offset, uint64_t skipped, const char *what)
{
	rp_source *src = arg;
	rp_seen   *seen;
	char       w[600], key[sizeof seen->key];

	snprintf(key, sizeof key, "%s:%" PRIu64, segment, offset);
	HASH_FIND_STR(src->seen, key, seen);
	if (seen != NULL)
		return; /* the label pass reported it */
	if ((seen = malloc(sizeof *seen)) != NULL) {
		memcpy(seen->key, key, sizeof key);
		HASH_ADD_STR(src->seen, key, seen);
		if (!VIGIL_HASH_ADDED(seen))
			free(seen);
	}
	if (src->corrupt++ == 0) /* kept for the summary (cut to its size) */
		store_corrupt_text(src->corrupt_first, sizeof src->corrupt_first, segment, offset,
		    skipped, what);
	fprintf(stderr, "vigil-replay: %s\n",
	    store_corrupt_text(w, sizeof w, segment, offset, skipped, what));
}

/* An archive reader's error, its place named once. */
static void
rp_store_error(const char *dir, const store_diag *d)
{
	char line[sizeof d->msg + PATH_MAX];

	fprintf(stderr, "vigil-replay: %s\n", store_diag_text(d, dir, VIGIL_EIO, line, sizeof line));
}

vigil_err
rp_source_open(rp_source *src, const rp_opts *o)
{
	vigil_err rv;

	memset(src, 0, sizeof *src);
	if (o->csv != NULL) {
		csv_diag diag;
		char line[sizeof diag.file + sizeof diag.msg + 32];

		src->name = o->csv;
		rv = csv_reader_open(o->csv, NULL, &src->csv, &diag);
		if (rv != VIGIL_OK) {
			fprintf(stderr, "vigil-replay: %s\n", vigil_errinfo_format(&diag, line, sizeof line));
			return rv;
		}
		if (csv_reader_warning(src->csv) != NULL)
			fprintf(stderr, "vigil-replay: warning: %s\n", csv_reader_warning(src->csv));
		src->has_patterns = csv_reader_has_col(src->csv, CSV_COL_FRAUD_PATTERN);
		src->has_labels = csv_reader_has_col(src->csv, CSV_COL_LABEL);
		return VIGIL_OK;
	}
	/* archive: labels first (a txn's label may be archived long after it) */
	{
		char dir[PATH_MAX];
		store_diag diag;
		store_reader *rd = NULL;
		store_record rec;
		store_label lab;

		src->name = o->archive;
		snprintf(dir, sizeof dir, "%s/archive", o->archive);
		rv = store_reader_open(dir, INT64_MIN, INT64_MAX, rp_on_corrupt, src, &rd, &diag);
		if (rv != VIGIL_OK) {
			rp_store_error(dir, &diag);
			return rv;
		}
		while ((rv = store_reader_next(rd, &rec, &diag)) == VIGIL_OK) {
			rp_archlabel *l;
			if (rec.type != STORE_REC_LABEL)
				continue;
			if (store_label_decode(rec.payload, rec.len, &lab, &diag) != VIGIL_OK) {
				fprintf(stderr, "vigil-replay: %s:%" PRIu64 ": label: %s\n", rec.segment,
				    rec.offset, diag.msg);
				src->bad++;
				continue;
			}
			HASH_FIND_STR(src->labels, lab.txn_id, l);
			if (l == NULL) {
				l = calloc(1, sizeof *l);
				if (l == NULL) {
					store_reader_close(rd);
					return VIGIL_ENOMEM;
				}
				snprintf(l->txn_id, sizeof l->txn_id, "%s", lab.txn_id);
				HASH_ADD_STR(src->labels, txn_id, l);
				if (!VIGIL_HASH_ADDED(l)) {
					free(l);
					store_reader_close(rd);
					return VIGIL_ENOMEM;
				}
			}
			/* the latest verdict wins; its time is when the bank knew */
			l->fraud = lab.fraud;
			l->label_time = lab.label_time_ms ? lab.label_time_ms : lab.received_at_ms;
			src->has_labels = true;
		}
		store_reader_close(rd);
		if (rv != VIGIL_ENOTFOUND) {
			rp_store_error(dir, &diag);
			return rv;
		}
		src->scored = malloc(sizeof *src->scored);
		if (src->scored == NULL)
			return VIGIL_ENOMEM;
		rv = store_reader_open(dir, o->from_ms, o->to_ms, rp_on_corrupt, src, &src->ar, &diag);
		if (rv != VIGIL_OK) {
			rp_store_error(dir, &diag);
			return rv;
		}
	}
	return VIGIL_OK;
}

void
rp_source_close(rp_source *src)
{
	rp_archlabel *l, *tmp;
	rp_seen *seen, *stmp;

	HASH_ITER(hh, src->seen, seen, stmp) {
		HASH_DEL(src->seen, seen);
		free(seen);
	}
	csv_reader_close(src->csv);
	store_reader_close(src->ar);
	free(src->scored);
	HASH_ITER(hh, src->labels, l, tmp) {
		HASH_DEL(src->labels, l);
		free(l);
	}
}

/* The end of the input: the bad rows not shown one by one, counted on
 * standard error (the summary, which -q turns off, is not the only place). */
static vigil_err
rp_source_end(rp_source *src, vigil_err rv)
{
	if (rv == VIGIL_ENOTFOUND && src->bad > RP_MAX_ERRORS_SHOWN && !src->end_said)
		fprintf(stderr, "vigil-replay: %" PRIu64 " bad %s skipped in all, the first %d "
		    "shown\n", src->bad, src->csv != NULL ? "rows" : "records", RP_MAX_ERRORS_SHOWN);
	src->end_said |= rv == VIGIL_ENOTFOUND;
	return rv;
}

vigil_err
rp_source_next(rp_source *src, rp_row *row)
{
	vigil_err rv;

	if (src->csv != NULL) {
		csv_row cr;
		csv_diag diag;
		char line[sizeof diag.file + sizeof diag.msg + 32];

		for (;;) {
			rv = csv_reader_next(src->csv, &cr, &diag);
			if (rv == VIGIL_EINVAL || rv == VIGIL_ETOOBIG) {
				if (src->bad++ < RP_MAX_ERRORS_SHOWN)
					fprintf(stderr, "vigil-replay: %s (row skipped)\n",
					    vigil_errinfo_format(&diag, line, sizeof line));
				continue;
			}
			if (rv == VIGIL_EIO)
				fprintf(stderr, "vigil-replay: %s\n",
				    vigil_errinfo_format(&diag, line, sizeof line));
			if (rv != VIGIL_OK)
				return rp_source_end(src, rv);
			row->txn = cr.txn;
			row->line = cr.line;
			row->segment[0] = '\0';
			row->label = cr.label;
			row->label_time = cr.label_time_ms;
			memcpy(row->pattern, cr.fraud_pattern, sizeof row->pattern);
			return VIGIL_OK;
		}
	}
	for (;;) {
		store_record rec;
		store_diag diag;
		rp_archlabel *l;

		rv = store_reader_next(src->ar, &rec, &diag);
		if (rv == VIGIL_ENOTFOUND)
			return rp_source_end(src, rv);
		if (rv != VIGIL_OK) {
			fprintf(stderr, "vigil-replay: archive: %s\n", diag.msg);
			return rv;
		}
		if (rec.type != STORE_REC_SCORE)
			continue;
		if (store_scored_decode(rec.payload, rec.len, src->scored, &diag) != VIGIL_OK) {
			if (src->bad++ < RP_MAX_ERRORS_SHOWN)
				fprintf(stderr, "vigil-replay: %s:%" PRIu64 ": %s (record skipped)\n",
				    rec.segment, rec.offset, diag.msg);
			continue;
		}
		row->txn = src->scored->txn;
		row->line = 0;
		{
			size_t n = strnlen(rec.segment, sizeof row->segment - 1);

			memcpy(row->segment, rec.segment, n); /* a copy a row, so no snprintf */
			row->segment[n] = '\0';
		}
		row->offset = rec.offset;
		row->label = -1;
		row->label_time = 0;
		row->pattern[0] = '\0';
		HASH_FIND_STR(src->labels, row->txn.txn_id, l);
		if (l != NULL) {
			row->label = l->fraud ? 1 : 0;
			row->label_time = l->label_time;
		}
		return VIGIL_OK;
	}
}
