/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_wire.c - libFuzzer target for vigild's wire stage
 * (server/wire.c): bytes -> size cap + vigil.v1.Request decode -> field
 * validation of a transaction or label -> reply envelope encode -> decode of
 * that reply. Must never crash, leak or hang; a reply we encode that does
 * not decode back is a bug and traps, and so is a score request the lean
 * decoder (srv_wire_score_lean) takes whose transaction or dry_run differs
 * from what protobuf-c's decoding and srv_wire_txn give.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "txn_same.h"
#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The lean decoder takes data only if protobuf-c's path gives the same. */
static void
check_lean(const uint8_t *data, size_t size)
{
	Vigil__V1__Request *req = NULL;
	srv_wire_err err;
	vigil_txn lean, slow;
	bool dry;

	if (!srv_wire_score_lean(data, size, 64 * 1024, &lean, &dry))
		return;
	if (srv_wire_decode(data, size, 64 * 1024, &req, &err) != VIGIL_OK)
		__builtin_trap();
	if (req->kind_case != VIGIL__V1__REQUEST__KIND_SCORE ||
	    srv_wire_txn(req->score->txn, &slow, &err) != VIGIL_OK || !vt_txn_same(&lean, &slow) ||
	    dry != (req->score->dry_run != 0))
		__builtin_trap();
	vigil__v1__request__free_unpacked(req, NULL);
}

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

	check_lean(data, size);
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
