/* SPDX-License-Identifier: MIT */
/*
 * tools/csv/csv.h - the vigil CSV interchange format (docs/csv.md):
 * transactions with optional ground-truth labels, one per row, as written by
 * vigil-gen and read by vigil-replay. RFC 4180 quoting; a header row names
 * the columns (any order); txn_id, event_time, card_id, merchant_id and
 * amount are required, the rest optional, unknown columns ignored (one
 * warning). Amounts are exact decimals in major units, converted to integer
 * minor units with the currency's exponent, never through a double.
 *
 * The reader streams (bounded memory: one record at a time, capped in bytes
 * and fields). A bad row is returned as VIGIL_EINVAL with the diagnostic
 * "FILE:LINE: column: reason"; the caller counts it and calls next again.
 * The library never prints.
 */
#ifndef VIGIL_CSV_H
#define VIGIL_CSV_H

#include <stdio.h>

#include "vigil.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CSV_PATTERN_MAX 31        /* fraud_pattern bytes */
#define CSV_DEFAULT_MAX_RECORD 4096 /* bytes of one record as read, its line ending excluded */
#define CSV_DEFAULT_MAX_FIELDS 64
#define CSV_HARD_MAX_RECORD (1u << 20)
#define CSV_HARD_MAX_FIELDS 1024

/* Ground-truth label of a row. */
typedef enum csv_label {
	CSV_LABEL_NONE  = -1, /* empty or no label column */
	CSV_LABEL_LEGIT = 0,
	CSV_LABEL_FRAUD = 1,
} csv_label;

/* The columns, in the order vigil-gen writes them. */
typedef enum csv_col {
	CSV_COL_TXN_ID = 0,
	CSV_COL_EVENT_TIME,
	CSV_COL_CARD_ID,
	CSV_COL_MERCHANT_ID,
	CSV_COL_TERMINAL_ID,
	CSV_COL_AMOUNT,
	CSV_COL_CURRENCY,
	CSV_COL_MCC,
	CSV_COL_COUNTRY,
	CSV_COL_CHANNEL,
	CSV_COL_DEVICE_ID,
	CSV_COL_IP,
	CSV_COL_LAT,
	CSV_COL_LON,
	CSV_COL_LABEL,
	CSV_COL_LABEL_TIME,
	CSV_COL_FRAUD_PATTERN,
	CSV_COL_COUNT_
} csv_col;

/* The column's header name ("txn_id", ...); NULL if out of range. */
const char *csv_col_name(csv_col col);

typedef struct csv_row {
	vigil_txn txn;               /* validated with vigil_txn_validate */
	csv_label label;
	int64_t   label_time_ms;     /* 0 = not given */
	char      fraud_pattern[CSV_PATTERN_MAX + 1]; /* "" = none */
	uint64_t  line;              /* 1-based line where the record starts */
} csv_row;

/*
 * An error, in common/'s shape (vigil_errinfo): file (the name given to the
 * reader), line (1-based; 0 when the error is about the file as a whole),
 * field (the column's header name; "" for the record, the header or the
 * file) and msg, the reason without the place: "amount: not a decimal
 * number", led by the column, "record" or "header" it is about. Print it
 * with vigil_errinfo_format: "FILE:LINE: reason" or "FILE: reason". col
 * and offset are not set (0, VIGIL_NOPOS). (A line past 2^32 - 1 does not
 * fit: line is 0 and the reason starts "line N: ".)
 */
typedef vigil_errinfo csv_diag;

typedef struct csv_opts {
	uint32_t max_record_bytes; /* 0 = CSV_DEFAULT_MAX_RECORD; capped at CSV_HARD_MAX_RECORD */
	uint32_t max_fields;       /* 0 = CSV_DEFAULT_MAX_FIELDS; capped at CSV_HARD_MAX_FIELDS */
	const char *default_currency; /* when the column is absent or empty; NULL = "EUR" */
} csv_opts;

typedef struct csv_reader csv_reader;

/*
 * Opens path ("-" = stdin) and reads its header row. name is used in
 * diagnostics (the path itself). VIGIL_OK: *ret_rd set.
 * VIGIL_ENOTFOUND / VIGIL_EIO: cannot open or read (reterr says why).
 * VIGIL_ESYNTAX: bad header ("FILE:1: header: missing required column amount",
 * duplicate column, empty file). opts may be NULL.
 */
vigil_err csv_reader_open(const char *path, const csv_opts *opts, csv_reader **ret_rd,
    csv_diag *reterr);

/* Same over buf[0..len) (copied); for tests and the fuzz target. */
vigil_err csv_reader_open_mem(const char *name, const void *buf, size_t len,
    const csv_opts *opts, csv_reader **ret_rd, csv_diag *reterr);

/*
 * Reads the next record.
 * VIGIL_OK: *ret_row filled.
 * VIGIL_ENOTFOUND: end of input (not an error).
 * VIGIL_EINVAL: the record is bad; reterr prints "FILE:LINE: column: reason"; the
 *   reader has skipped it and is positioned at the next record.
 * VIGIL_ETOOBIG: the record is over max_record_bytes (its bytes as read:
 *   commas, quotes and quoted line breaks, not its line ending) or
 *   max_fields ("FILE:LINE: record: longer than N bytes", "... record: more
 *   than N fields"); skipped, reading may go on.
 * VIGIL_EIO: read error; stop.
 */
vigil_err csv_reader_next(csv_reader *rd, csv_row *ret_row, csv_diag *reterr);

/* The one warning about the header (unknown columns ignored), or NULL. Lives
 * as long as rd. */
const char *csv_reader_warning(const csv_reader *rd);

/* Whether the file has the column (so reports can tell "no labels" apart). */
bool csv_reader_has_col(const csv_reader *rd, csv_col col);

typedef struct csv_stats {
	uint64_t rows;      /* good rows returned */
	uint64_t bad_rows;  /* rows skipped (EINVAL or ETOOBIG) */
	uint64_t lines;     /* physical lines consumed */
	uint64_t bytes;     /* bytes consumed */
} csv_stats;

void csv_reader_get_stats(const csv_reader *rd, csv_stats *ret_stats);
void csv_reader_close(csv_reader *rd); /* NULL is a no-op */

/*
 * Parses an exact decimal amount in major units ("12", "12.5", "0.07") for a
 * currency with exponent exp (0..4) into minor units. No sign, no exponent
 * notation, at most exp fractional digits, value < 10^15 minor units.
 * VIGIL_EINVAL with reason (a static string) on anything else.
 */
vigil_err csv_amount_parse(const char *s, size_t len, int exp, int64_t *ret_minor,
    const char **reterr_reason);
/* Formats minor units as a decimal with exp places into buf (>= 24 bytes). */
void      csv_amount_format(int64_t minor, int exp, char *buf, size_t buflen);

/* The header line vigil-gen writes (all columns, in csv_col order), with "\n". */
const char *csv_header_line(void);

/*
 * Formats row as one CSV line (all columns, csv_col order, "\n"-terminated;
 * fields with a comma, quote or newline are quoted) into buf. Returns the
 * length, or 0 if it does not fit in buflen.
 */
size_t csv_row_format(const csv_row *row, char *buf, size_t buflen);

#ifdef __cplusplus
}
#endif

#endif /* VIGIL_CSV_H */
