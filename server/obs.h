/* SPDX-License-Identifier: MIT */
/*
 * server/obs.h - the bytes of one NATS message of observations
 * (docs/operations.md, "Running a cluster"): what a replica publishes for
 * the transactions it scored, so the others count them in their entity
 * features. No NATS here: the codec alone, for cluster.c and the fuzz
 * target.
 *
 * A message is a batch, all integers little-endian:
 *
 *   "VOB1"  u32 count (1..SRV_OBS_BATCH_MAX)
 *   count x { i64 event_time_ms, u64 card_hash, i64 committed_us,
 *             u8 len + merchant_id (1..64 bytes),
 *             u8 len + terminal_id (0..64), u8 len + device_id (0..64),
 *             u8 len + ip (0..45) }
 *
 * committed_us is the publisher's wall clock when the transaction was
 * committed (microseconds since the epoch): the receiver's propagation
 * delay is its own clock minus it. Ids hold no NUL byte. Nothing may follow
 * the last record.
 */
#ifndef VIGIL_SERVER_OBS_H
#define VIGIL_SERVER_OBS_H

#include <stddef.h>
#include <stdint.h>

#include "db.h"
#include "vigil.h"

#define SRV_OBS_BATCH_MAX 256
#define SRV_OBS_HEADER    8
/* The largest encoded record: three times 8 bytes, four length bytes, ids. */
#define SRV_OBS_REC_MAX   (24 + 4 + 3 * VIGIL_ID_MAX + VIGIL_IP_MAX)
#define SRV_OBS_MSG_MAX   (SRV_OBS_HEADER + SRV_OBS_BATCH_MAX * SRV_OBS_REC_MAX)

typedef struct srv_obs {
	store_observation obs;
	int64_t           committed_us;
} srv_obs;

/* Encodes recs[0..n) (1 <= n <= SRV_OBS_BATCH_MAX) into buf, which holds
 * SRV_OBS_MSG_MAX bytes; returns the length. Ids longer than their field
 * allows are cut there (store_observation's fields cannot hold more). */
size_t srv_obs_encode(const srv_obs *recs, uint32_t n, uint8_t *buf);

/*
 * Decodes buf[0..len) into recs (room for SRV_OBS_BATCH_MAX). VIGIL_OK with
 * *ret_n set; VIGIL_EINVAL with errbuf holding one line "offset N: what"
 * (bad magic, a count out of range, a truncated record, an id too long,
 * empty where required or holding a NUL, trailing bytes), *ret_n untouched.
 * Never reads outside buf.
 */
vigil_err srv_obs_decode(const void *buf, size_t len, srv_obs *recs, uint32_t *ret_n,
    char *errbuf, size_t errlen);

#endif
