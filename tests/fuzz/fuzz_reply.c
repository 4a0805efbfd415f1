/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_reply.c - libFuzzer target for the client's reply
 * decoding: whatever a peer answers, the client returns a result or an
 * error, never crashes, never reads out of bounds. The first input byte
 * picks the request the bytes answer (even: a score for txn_id "t-1", odd:
 * a label); the rest is the reply. Every string of a decoded result is read
 * in full so the sanitizers see any bad pointer.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "client_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	vigil_client_result  res = { 0 };
	vigil_client_errinfo info;
	vigil_client_err     err;
	volatile size_t      sink = 0;

	if (size == 0)
		return 0;
	err = vc_reply_decode_test(data + 1, size - 1, data[0] & 1, "t-1", &res, &info);
	if (err == VIGIL_CLIENT_OK && !(data[0] & 1)) {
		sink += strlen(res.txn_id) + strlen(res.rules_version) + strlen(res.replica);
		for (size_t i = 0; i < res.nhits; i++)
			sink += strlen(res.hits[i].rule) + strlen(res.hits[i].reason);
		sink += strlen(vigil_client_decision_name(res.decision));
		vigil_client_result_fini(&res);
	} else if (err != VIGIL_CLIENT_OK) {
		sink += strlen(info.message) + strlen(info.field) + strlen(vigil_client_errname(err));
	}
	(void) sink;
	return 0;
}
