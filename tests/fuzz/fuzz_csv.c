/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_csv.c - libFuzzer target for the CSV reader
 * (tools/csv/csv.h): any bytes as a whole file. Every good row is
 * written back with csv_row_format and read again; the round trip must give
 * the same transaction (else abort, which the fuzzer reports).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "csv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_roundtrip(const csv_row *row)
{
	char line[4096], buf[8192];
	size_t hl = strlen(csv_header_line()), n;
	csv_reader *rd = NULL;
	csv_diag diag;
	csv_row back;

	n = csv_row_format(row, line, sizeof line);
	if (n == 0)
		abort();
	memcpy(buf, csv_header_line(), hl);
	memcpy(buf + hl, line, n);
	if (csv_reader_open_mem("roundtrip", buf, hl + n, NULL, &rd, &diag) != VIGIL_OK)
		abort();
	if (csv_reader_next(rd, &back, &diag) != VIGIL_OK)
		abort();
	/* lat/lon are written with 5 decimals: compare the rest exactly */
	if (strcmp(back.txn.txn_id, row->txn.txn_id) != 0 ||
	    strcmp(back.txn.card_id, row->txn.card_id) != 0 ||
	    strcmp(back.txn.merchant_id, row->txn.merchant_id) != 0 ||
	    strcmp(back.txn.terminal_id, row->txn.terminal_id) != 0 ||
	    strcmp(back.txn.currency, row->txn.currency) != 0 ||
	    back.txn.event_time_ms != row->txn.event_time_ms ||
	    back.txn.amount_minor != row->txn.amount_minor ||
	    back.txn.mcc != row->txn.mcc || back.txn.channel != row->txn.channel ||
	    back.label != row->label || back.label_time_ms != row->label_time_ms ||
	    back.txn.has_location != row->txn.has_location)
		abort();
	csv_reader_close(rd);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	csv_opts opts = { .max_record_bytes = 1024, .max_fields = 32 };
	csv_reader *rd = NULL;
	csv_diag diag;
	csv_row row;
	vigil_err rv;
	int guard = 0;

	if (csv_reader_open_mem("fuzz", data, size, &opts, &rd, &diag) != VIGIL_OK)
		return 0;
	while ((rv = csv_reader_next(rd, &row, &diag)) != VIGIL_ENOTFOUND && rv != VIGIL_EIO) {
		if (rv == VIGIL_OK)
			fuzz_roundtrip(&row);
		else if (diag.msg[0] == '\0')
			abort(); /* every bad row must say why */
		if (++guard > 1000000)
			abort(); /* no progress: a tokenizer loop */
	}
	csv_reader_close(rd);
	return 0;
}
