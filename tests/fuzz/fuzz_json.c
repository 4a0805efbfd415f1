/* SPDX-License-Identifier: MIT */
/* tests/fuzz/fuzz_json.c - arbitrary bytes through the JSON transaction
 * decoder, validation and the encoder: must never crash or leak. */
#include <stdint.h>
#include <stdlib.h>

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
	}
	json_decref(o);
	return 0;
}
