/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_obs.c - libFuzzer target for the cluster's observation
 * messages (server/obs.c): bytes -> srv_obs_decode; what decodes is
 * encoded again and must decode to the same records and the same bytes.
 * A refusal must say where (an "offset N:" line). Must never crash, read
 * out of bounds or hang.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "obs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static srv_obs a[SRV_OBS_BATCH_MAX], b[SRV_OBS_BATCH_MAX];
static uint8_t buf[SRV_OBS_MSG_MAX];

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[192];
	uint32_t n = 0, m = 0;
	size_t len;

	if (srv_obs_decode(data, size, a, &n, err, sizeof err) != VIGIL_OK) {
		if (strncmp(err, "offset ", 7) != 0)
			abort();
		return 0;
	}
	len = srv_obs_encode(a, n, buf);
	if (len != size || memcmp(buf, data, size) != 0)
		abort();
	if (srv_obs_decode(buf, len, b, &m, err, sizeof err) != VIGIL_OK || m != n ||
	    memcmp(a, b, n * sizeof a[0]) != 0)
		abort();
	return 0;
}
