/* SPDX-License-Identifier: MIT */
/*
 * tests/server/test_obs.c - the cluster's observation messages
 * (server/obs.c): a batch round-trips, ids at their longest fit, and every
 * refusal names its offset and what is wrong.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "obs.h"

static srv_obs in[SRV_OBS_BATCH_MAX], out[SRV_OBS_BATCH_MAX];
static uint8_t buf[SRV_OBS_MSG_MAX];

static void
fill(srv_obs *o, int i)
{
	memset(o, 0, sizeof *o);
	o->obs.event_time_ms = 1795371656980 + i;
	o->obs.card_hash = 0x1234567890abcdefull * (uint64_t)(i + 1);
	o->committed_us = -5 + i; /* any value, negative included */
	snprintf(o->obs.merchant_id, sizeof o->obs.merchant_id, "m-%d", i);
	if (i % 2 == 0) {
		snprintf(o->obs.device_id, sizeof o->obs.device_id, "dev-%d", i);
		snprintf(o->obs.ip, sizeof o->obs.ip, "192.0.2.%d", i % 250);
	}
}

static void
test_round_trip(void **state)
{
	char err[192];
	uint32_t n = 0;
	size_t len;

	(void)state;
	for (int i = 0; i < SRV_OBS_BATCH_MAX; i++)
		fill(&in[i], i);
	/* the longest ids */
	memset(in[1].obs.merchant_id, 'm', VIGIL_ID_MAX);
	memset(in[1].obs.terminal_id, 't', VIGIL_ID_MAX);
	memset(in[1].obs.device_id, 'd', VIGIL_ID_MAX);
	memset(in[1].obs.ip, 'i', VIGIL_IP_MAX);
	len = srv_obs_encode(in, SRV_OBS_BATCH_MAX, buf);
	assert_true(len <= SRV_OBS_MSG_MAX);
	assert_int_equal(srv_obs_decode(buf, len, out, &n, err, sizeof err), VIGIL_OK);
	assert_int_equal(n, SRV_OBS_BATCH_MAX);
	assert_memory_equal(in, out, sizeof in);
}

static void
expect(const void *b, size_t len, const char *want)
{
	char err[192];
	uint32_t n = 77;

	assert_int_equal(srv_obs_decode(b, len, out, &n, err, sizeof err), VIGIL_EINVAL);
	assert_string_equal(err, want);
	assert_int_equal(n, 77); /* untouched */
}

static void
test_errors_name_the_offset(void **state)
{
	size_t len;

	(void)state;
	fill(&in[0], 0);
	fill(&in[1], 1);
	len = srv_obs_encode(in, 2, buf); /* record 0: 45 bytes from 8; record 1: 31 from 53 */
	assert_int_equal(len, 84);
	expect(buf, 5, "offset 0: truncated header (magic \"VOB1\" and count)");
	buf[3] = '2';
	expect(buf, len, "offset 0: bad magic (not \"VOB1\")");
	buf[3] = '1';
	buf[4] = 0;
	expect(buf, len, "offset 4: count 0 out of range 1..256");
	buf[4] = 2;
	expect(buf, 70, "offset 69: committed_us: truncated (1 of 8 bytes)");
	expect(buf, 80, "offset 78: merchant_id: truncated (2 of 3 bytes)");
	expect(buf, len - 1, "offset 83: ip: truncated (no length byte)");
	buf[len] = 'x';
	expect(buf, len + 1, "offset 84: 1 trailing byte(s) after 2 record(s)");
	buf[77] = 0; /* record 1's merchant length */
	expect(buf, len, "offset 77: merchant_id: empty");
	buf[77] = 65;
	expect(buf, len, "offset 77: merchant_id: 65 bytes, at most 64");
	buf[77] = 3;
	buf[79] = '\0';
	expect(buf, len, "offset 78: merchant_id: holds a NUL byte");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_errors_name_the_offset),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
