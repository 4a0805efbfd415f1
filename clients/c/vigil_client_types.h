/* SPDX-License-Identifier: MIT */
/*
 * vigil_client_types.h - libvigil-client's errors and the data of its calls:
 * the transaction, the label, the result of a score and its hits. Included
 * by vigil_client.h (the client and its calls; include that one), installed
 * beside it. Self-contained (libc only). The manual is docs/client.md.
 */
#ifndef VIGIL_CLIENT_TYPES_H
#define VIGIL_CLIENT_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Errors. Functions return VIGIL_CLIENT_OK (0) or one of these. The server's
 * reply statuses (vigil.v1.Status) map one to one onto the VIGIL_CLIENT_S*
 * codes; transport failures onto the others.
 */
typedef enum vigil_client_err {
	VIGIL_CLIENT_OK = 0,
	VIGIL_CLIENT_EINVAL,       /* bad argument: a required field is missing or too long */
	VIGIL_CLIENT_ENOMEM,       /* out of memory */
	VIGIL_CLIENT_ETIMEDOUT,    /* no reply within the timeout, on every attempt */
	VIGIL_CLIENT_EUNREACHABLE, /* no connection to the replica (server down, refused, lost) */
	VIGIL_CLIENT_ECLOSED,      /* the client is being closed */
	VIGIL_CLIENT_EPROTO,       /* the reply is not a valid vigil.v1.Reply for the request */
	VIGIL_CLIENT_ETRANSPORT,   /* another nng error (the message names it) */
	VIGIL_CLIENT_ELIMIT,       /* too many calls in flight (opts.max_inflight) */
	VIGIL_CLIENT_SINVALID,     /* server: a field failed validation (errinfo.field) */
	VIGIL_CLIENT_SMALFORMED,   /* server: the request bytes were not a vigil.v1.Request */
	VIGIL_CLIENT_STOOBIG,      /* server: request over the server's size cap */
	VIGIL_CLIENT_SUNSUPPORTED, /* server: unknown request kind */
	VIGIL_CLIENT_SOVERLOADED,  /* server: backpressure (retried on the next replica) */
	VIGIL_CLIENT_SUNAVAILABLE, /* server: not ready or draining (retried) */
	VIGIL_CLIENT_SINTERNAL,    /* server: internal failure (retried) */
	VIGIL_CLIENT_ERR_COUNT_
} vigil_client_err;

/* Static English text for err; never NULL ("unknown error" for unknown codes). */
const char *vigil_client_strerror(vigil_client_err err);
/* Short stable identifier ("ETIMEDOUT", "SINVALID", ...) for logs and JSON. */
const char *vigil_client_errname(vigil_client_err err);

/*
 * Details of a failed call, filled when a function returns an error and the
 * caller passed a non-NULL pointer.
 */
typedef struct vigil_client_errinfo {
	vigil_client_err code;
	uint32_t         attempts;     /* requests sent (or tried) before giving up */
	char             field[64];    /* offending field ("txn.currency"), or "" */
	char             message[256]; /* one line saying what, never repeating field
	                                * (vigil_client_errinfo_format prints both);
	                                * starts with the replica URL when one was
	                                * involved: "ipc:///x: timed out" */
} vigil_client_errinfo;

/*
 * The one-line form of info, "field: message" (or the message alone when no
 * field is set), written into buf (cut to cap - 1 bytes). Returns buf.
 * sizeof(info->field) + sizeof(info->message) + 2 bytes hold any of them.
 */
const char *vigil_client_errinfo_format(const vigil_client_errinfo *info, char *buf,
    size_t cap);

/* Decisions; numeric values match vigil.v1.Decision. */
typedef enum vigil_client_decision {
	VIGIL_CLIENT_DECISION_NONE    = 0,
	VIGIL_CLIENT_DECISION_ALLOW   = 1,
	VIGIL_CLIENT_DECISION_REVIEW  = 2,
	VIGIL_CLIENT_DECISION_DECLINE = 3,
} vigil_client_decision;

/* "allow", "review", "decline", "none". */
const char *vigil_client_decision_name(vigil_client_decision d);

/* Payment channels; numeric values match vigil.v1.Channel. */
typedef enum vigil_client_channel {
	VIGIL_CLIENT_CHANNEL_UNKNOWN = 0,
	VIGIL_CLIENT_CHANNEL_POS     = 1,
	VIGIL_CLIENT_CHANNEL_ECOM    = 2,
	VIGIL_CLIENT_CHANNEL_ATM     = 3,
	VIGIL_CLIENT_CHANNEL_MOTO    = 4,
} vigil_client_channel;

/* Free-form key/value attribute (checked by vigild, then dropped: not read
 * by rules, not archived). */
typedef struct vigil_client_attr {
	const char *key;
	const char *value;
} vigil_client_attr;

/*
 * A transaction to score. Strings are NUL-terminated and borrowed only for
 * the duration of the call (also of vigil_client_score_async: the request
 * is encoded before it returns). NULL and "" both mean "absent".
 * Required: txn_id, card_id, merchant_id, currency, event_time_ms > 0.
 * The client checks only that these are present and that ids fit in 64
 * bytes; every other check is the server's (VIGIL_CLIENT_SINVALID).
 */
typedef struct vigil_client_txn {
	const char *txn_id;        /* idempotency key */
	const char *card_id;       /* routing key; a token, never a PAN */
	const char *merchant_id;
	const char *terminal_id;
	const char *currency;      /* ISO 4217 alpha code, "EUR" */
	const char *country;       /* ISO 3166-1 alpha-2 of the merchant */
	const char *device_id;
	const char *ip;
	int64_t     event_time_ms; /* Unix ms, UTC */
	int64_t     amount_minor;  /* integer minor units of currency */
	uint32_t    mcc;
	vigil_client_channel channel;
	bool        has_location;
	double      latitude, longitude;
	const vigil_client_attr *attrs;
	size_t      nattrs;
} vigil_client_txn;

/* A label (chargeback, analyst verdict) for a scored transaction. */
typedef struct vigil_client_label_req {
	const char *txn_id;        /* required */
	bool        fraud;         /* true: confirmed fraud; false: legit */
	int64_t     label_time_ms; /* when it became known; 0 = server's clock */
	const char *source;        /* "chargeback", "analyst", ...; may be NULL */
	const char *card_id;       /* optional: routes to the card's replica; without
	                            * it the label is routed by txn_id */
} vigil_client_label_req;

/* One rule that fired. Strings are owned by the result. */
typedef struct vigil_client_hit {
	const char *rule;
	const char *reason;
	int32_t     points;
	bool        shadow;        /* shadow rules do not change the decision */
} vigil_client_hit;

/*
 * The outcome of a score call. Strings and hits point into one block owned
 * by the result; release it with vigil_client_result_fini().
 */
/* A feature that pushed the model's score up. */
typedef struct vigil_client_model_reason {
	const char *feature;      /* schema name */
	double      value;        /* as scored */
	double      contribution; /* log-odds, > 0 */
} vigil_client_model_reason;

typedef struct vigil_client_result {
	const char            *txn_id;
	int32_t                points;      /* sum of the points of the active hits */
	vigil_client_decision  decision;
	const vigil_client_hit *hits;       /* active hits, then shadow hits */
	size_t                 nhits;
	const char            *rules_version;
	uint64_t               features_generation;
	/* The server's own time, decode to reply: latency_us, the name of the
	 * wire and of every JSON reply; server_latency_us is its name before
	 * issue 18, kept for old code (the same storage). */
	union {
		uint32_t           latency_us;
		uint32_t           server_latency_us;
	};
	bool                   duplicate;   /* first outcome of an earlier request */
	bool                   dry_run;
	uint32_t               attempts;    /* 1 unless the call was retried */
	const char            *replica;     /* URL of the replica that answered */
	void                  *block_;      /* private */
	/* The nightly model (docs/model.md): has_model false when the server's
	 * generation has none (rules alone decided). model_reasons: when a rule
	 * reading model.score fired, the features that pushed the score up. */
	bool                   has_model;
	double                 model_score; /* P(fraud), 0..1 */
	const vigil_client_model_reason *model_reasons;
	size_t                 nmodel_reasons;
	/* Backfill (docs/protocol.md, ScoreReply; docs/operations.md): late:
	 * the event time was 7 days or more before the newest event the server
	 * applied, so the transaction was archived but is in no velocity
	 * feature; past_dedupe_horizon: older than the dedupe horizon (8 days
	 * by default), so the server does not remember its txn_id and a repeat
	 * is scored again, not answered as a duplicate. */
	bool                   late;
	bool                   past_dedupe_horizon;
	/* The risk score, 0-100, the decision was made from (docs/protocol.md,
	 * ScoreReply.score): 100 x the model's calibrated probability of fraud
	 * when the server has a model, the points clamped to 0-100 before. */
	double                 score;
	/* The rules that decided: rules_version above is the rule file's
	 * declared version, rules_hash the XXH3-128 content hash of the file
	 * and its list files (docs/protocol.md, "Rules identity"); "" from a
	 * server that sends none. */
	const char            *rules_hash;
} vigil_client_result;

/* Frees what res owns and zeroes it; a zeroed result is a no-op. */
void vigil_client_result_fini(vigil_client_result *res);
/* Moves src into dst (dst must not own anything); src is zeroed. */
void vigil_client_result_move(vigil_client_result *dst, vigil_client_result *src);

#ifdef __cplusplus
}
#endif

#endif /* VIGIL_CLIENT_TYPES_H */
