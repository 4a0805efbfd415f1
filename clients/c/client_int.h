/* SPDX-License-Identifier: MIT */
/*
 * clients/c/client_int.h - private test hooks of libvigil-client (not
 * installed, not exported by the shared library: see vigil_client.map).
 */
#ifndef VIGIL_CLIENT_INT_H
#define VIGIL_CLIENT_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vigil_client.h"

/*
 * Decodes data[0..len) exactly as a reply to a score (label false) or a
 * label (label true) request for txn_id is decoded on the wire path, with
 * "fuzz://replica" as the replica URL. VIGIL_CLIENT_OK: for a score,
 * *ret_result is filled (fini it). Otherwise *reterr_info says why.
 * For the fuzz target tests/fuzz/fuzz_reply.c.
 */
vigil_client_err vc_reply_decode_test(const uint8_t *data, size_t len, bool label,
    const char *txn_id, vigil_client_result *ret_result, vigil_client_errinfo *reterr_info);

#endif
