/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_wire.c - libFuzzer target for vigild's wire stage
 * (server/wire.c): bytes -> size cap + vigil.v1.Request decode -> field
 * validation of a transaction or label -> reply envelope encode -> decode of
 * that reply. Must never crash, leak or hang; a reply we encode that does
 * not decode back is a bug and traps.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Vigil__V1__Request *req = NULL;
	Vigil__V1__Reply reply, *back;
	srv_wire_err err;
	vigil_txn txn;
	store_label label;
	uint8_t *buf;
	size_t n;

	srv_wire_err_set(&err, VIGIL__V1__STATUS__STATUS_OK, "", "ok");
	if (srv_wire_decode(data, size, 64 * 1024, &req, &err) == VIGIL_OK) {
		if (req->kind_case == VIGIL__V1__REQUEST__KIND_SCORE)
			(void)srv_wire_txn(req->score->txn, &txn, &err);
		else if (req->kind_case == VIGIL__V1__REQUEST__KIND_LABEL)
			(void)srv_wire_label(req->label->label, 1700000000000LL, &label, &err);
		vigil__v1__request__free_unpacked(req, NULL);
	}
	srv_wire_error_reply(&err, &reply);
	n = vigil__v1__reply__get_packed_size(&reply);
	buf = malloc(n > 0 ? n : 1);
	if (buf == NULL)
		return 0;
	if (vigil__v1__reply__pack(&reply, buf) != n)
		__builtin_trap();
	back = vigil__v1__reply__unpack(NULL, n, buf);
	if (back == NULL || back->status != err.status || strcmp(back->field, err.info.field) != 0)
		__builtin_trap();
	vigil__v1__reply__free_unpacked(back, NULL);
	free(buf);
	return 0;
}
