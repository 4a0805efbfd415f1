/* SPDX-License-Identifier: MIT */
/* tests/fuzz/fuzz_json.c - arbitrary bytes through the JSON transaction
 * decoder, validation and the encoder: must never crash or leak. A refusal
 * is a non-empty message that does not repeat its field (the place is the
 * field's: vigil_errinfo_format puts it first), and its JSON error object
 * builds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vigil.h"
#include "vigil_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_error_t jerr;
	json_t *o = json_loadb((const char *)data, size, 0, &jerr);
	vigil_txn t;
	vigil_errinfo ei;

	if (o == NULL)
		return 0;
	if (vigil_txn_from_json(o, &t, &ei) == VIGIL_OK) {
		json_t *back;
		(void)vigil_txn_validate(&t, &ei);
		back = vigil_txn_to_json(&t);
		json_decref(back);
	} else {
		size_t n = strlen(ei.field);
		json_t *err;

		if (ei.msg[0] == '\0' || (n > 0 && strncmp(ei.msg, ei.field, n) == 0 &&
		    ei.msg[n] == ':'))
			abort();
		err = vigil_error_json("INVALID", &ei);
		if (err == NULL)
			abort();
		json_decref(err);
	}
	json_decref(o);
	return 0;
}
