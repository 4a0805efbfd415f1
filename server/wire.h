/* SPDX-License-Identifier: MIT */
/*
 * server/wire.h - the wire stage of vigild (wire.c): size cap, decoding of
 * the vigil.v1.Request envelope, conversion and validation of transactions
 * and labels, error replies. This is the srv_core library, linked by vigild
 * and by the wire fuzz target; it needs only common/, proto/ and store/archive.h's
 * store_label struct (no store code).
 */
#ifndef VIGIL_SERVER_WIRE_H
#define VIGIL_SERVER_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "archive.h"
#include "vigil.h"
#include "vigil.pb-c.h"

#define SRV_LABEL_SOURCE_MAX 31 /* bytes (store_label.source) */
/* UNAVAILABLE's message while draining, over nng (rep.c) and HTTP (admin.c) */
#define SRV_MSG_DRAINING "server shutting down: retry on another replica (same txn_id is safe)"

/* Why a request cannot be served: the reply's status, and common's error
 * detail (vigil_errinfo): info.field the request field it is about
 * ("txn.currency"; "" when not about one), info.msg the reply's message,
 * one line of at most SRV_WIRE_MSG_MAX - 1 bytes. A request has no text
 * position: file, line and col stay empty, offset VIGIL_NOPOS. */
#define SRV_WIRE_MSG_MAX 240 /* bytes with the NUL */
typedef struct srv_wire_err {
	Vigil__V1__Status status;
	vigil_errinfo     info;
} srv_wire_err;

/*
 * Decodes buf[0..len) as a vigil.v1.Request. len is checked against
 * max_bytes before any decoding (STATUS_TOO_BIG). VIGIL_OK: *ret_req set
 * (free with vigil__v1__request__free_unpacked(req, NULL)), and the
 * envelope holds a known kind. VIGIL_ETOOBIG / VIGIL_EPROTO: *reterr filled
 * (TOO_BIG, MALFORMED or UNSUPPORTED), *ret_req untouched. VIGIL_EINVAL: a
 * string field holds a NUL byte (INVALID, the field named), which the C
 * string protobuf-c hands over would silently cut off.
 */
vigil_err srv_wire_decode(const void *buf, size_t len, size_t max_bytes,
    Vigil__V1__Request **ret_req, srv_wire_err *reterr);
/* The same with protobuf-c allocator alloc (NULL = malloc); free the
 * request with vigil__v1__request__free_unpacked(req, alloc). */
vigil_err srv_wire_decode_with(const void *buf, size_t len, size_t max_bytes,
    ProtobufCAllocator *alloc, Vigil__V1__Request **ret_req, srv_wire_err *reterr);

/*
 * Converts a wire Transaction to the flat C form and validates every field
 * (vigil_txn_validate plus the wire-only checks: string caps before
 * copying, channel range, finite coordinates, attribute caps). in may be
 * NULL (a ScoreRequest without txn). VIGIL_EINVAL: *reterr names the field
 * ("txn.currency"), *ret_txn unspecified.
 */
vigil_err srv_wire_txn(const Vigil__V1__Transaction *in, vigil_txn *ret_txn,
    srv_wire_err *reterr);

/*
 * The score request's lean decoder: buf[0..len) straight to the flat
 * transaction, without protobuf-c's message tree (docs/BENCHMARKS.md,
 * "Where a score's CPU goes"). true: buf is a Request whose only field is
 * a ScoreRequest holding a Transaction, in the shape clients send (each
 * Transaction field once, with its declared wire type, no field this
 * version does not know, no attributes), within max_bytes, and
 * valid as srv_wire_txn checks it: *ret_txn and *ret_dry_run are what
 * srv_wire_decode_with plus srv_wire_txn give for these bytes. false:
 * anything else, valid or not; the caller decodes with protobuf-c, which
 * says what is wrong. Reads buf only; fuzz_wire.c checks the two agree.
 */
bool srv_wire_score_lean(const void *buf, size_t len, size_t max_bytes, vigil_txn *ret_txn,
    bool *ret_dry_run);

/*
 * The clock-skew guard: refuses a transaction whose event time is more than
 * max_future_ms ahead of now_ms (the server's wall clock), or more than
 * max_past_ms behind it. One event from the future would move the live
 * state's event-time watermark ahead and make every later transaction
 * "late" (archived but not counted); events from far in the past are late
 * themselves, so a client whose clock is days behind silently disables every
 * velocity rule. Past times are accepted by default (max_past_ms 0):
 * replaying history is a feature; live deployments set a limit. 0 disables
 * either check. VIGIL_EINVAL: *reterr is STATUS_INVALID on
 * "txn.event_time_ms" with how far ahead or behind it is and the limit.
 */
vigil_err srv_wire_txn_window(const vigil_txn *txn, int64_t now_ms, uint64_t max_future_ms,
    uint64_t max_past_ms, srv_wire_err *reterr);

/*
 * The future side of srv_wire_txn_window for an observation another
 * replica published (server/cluster.c): judged against when the stream
 * stored it (stored_ms, JetStream's timestamp), not against this replica's
 * clock when it applies it, so that every replica, and one replaying the
 * stream hours later, decides alike; slack_ms is allowed for the clocks of
 * the replica that scored it and of the NATS server. max_future_ms 0
 * disables the check. VIGIL_EINVAL: *reterr says how far ahead, on
 * "event_time_ms".
 */
vigil_err srv_wire_obs_window(int64_t event_time_ms, int64_t stored_ms, uint64_t max_future_ms,
    uint64_t slack_ms, srv_wire_err *reterr);


/* Same for a Label; label_time_ms 0 becomes now_ms. */
vigil_err srv_wire_label(const Vigil__V1__Label *in, int64_t now_ms,
    store_label *ret_label, srv_wire_err *reterr);

/* Fills an error reply envelope (no payload) from err; strings point into err. */
void srv_wire_error_reply(const srv_wire_err *err, Vigil__V1__Reply *ret_reply);

/*
 * Reply encoding: the packed size of r, and r packed into out (which holds
 * at least that many bytes; returns the bytes written). Error replies and
 * score replies are encoded directly, byte for byte what protobuf-c's
 * vigil__v1__reply__pack writes (fields in number order, proto3 defaults
 * left out), without its generic per-field descriptor walk and the
 * nested size passes; other kinds go through protobuf-c.
 */
size_t srv_wire_reply_size(const Vigil__V1__Reply *r);
size_t srv_wire_reply_pack(const Vigil__V1__Reply *r, uint8_t *out);

/* Fills err (vigil_errinfo_set, the message cut at SRV_WIRE_MSG_MAX);
 * printf-style message. */
void srv_wire_err_set(srv_wire_err *err, Vigil__V1__Status status, const char *field,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Stable upper-case name of a status ("OK", "INVALID", ...), for metrics and JSON. */
const char *srv_status_name(Vigil__V1__Status status);

#endif
