/* SPDX-License-Identifier: MIT */
/*
 * store/store.h - vigil's data contracts (DESIGN.md "Contracts" 2-4):
 *   - the feature schema (names, types, slots) that rules/ compiles against
 *     (schema.c, from the table schema.def);
 *   - the archive: append-only, checksummed segment files (archive.c writes,
 *     frame.c frames, reader.c reads, record.c encodes and decodes records);
 *   - batch feature generations in LMDB, switched atomically (features.c);
 *   - the speed layer: exact live velocity state per card (live.c);
 *   - store_db, the server-facing object that joins the three (db.c).
 * Formats are documented in docs/storage.md. The library never logs; it
 * returns vigil_err and fills a store_diag with the one-line detail.
 * Depends on common/ and proto/ (archive payloads are vigil.v1 messages).
 */
#ifndef VIGIL_STORE_H
#define VIGIL_STORE_H

#include <stdio.h>

#include "vigil.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One-line detail of an error: which file, which offset, what. */
typedef struct store_diag {
	char msg[512];
} store_diag;

/* Formats a one-line message into d (nothing if d is NULL). */
void store_diag_set(store_diag *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ======================= Feature schema ======================= */

/*
 * The feature vector is fixed at build time: transaction fields, batch
 * profile features (card.*, merchant.*, terminal.*) and live velocity
 * features (vel.*). STORE_SLOT_* name the slots; store_schema_field() gives
 * name and type. See docs/features.md for the meaning of each one.
 */
/* Where a feature's value comes from (schema.def's SOURCE column). */
typedef enum store_source {
	STORE_SRC_TXN = 0,  /* a request field */
	STORE_SRC_CARD,     /* the card's batch profile (current generation) */
	STORE_SRC_MERCHANT, /* the merchant's batch profile */
	STORE_SRC_TERMINAL, /* the terminal's batch profile */
	STORE_SRC_DERIVED,  /* computed from the request and a profile */
	STORE_SRC_LIVE,     /* the speed layer */
	STORE_SRC_SCORE,    /* a scoring step (the model), filled by app/ */
} store_source;

typedef struct store_field {
	const char  *name;
	vigil_type   type;
	const char  *doc; /* one line */
	store_source source;
	bool         model_input; /* part of the model's input vector */
} store_field;

/* "txn", "card", "merchant", "terminal", "derived", "live", "score". */
const char *store_source_name(store_source src);

uint32_t           store_schema_nfields(void);
const store_field *store_schema_field(uint32_t slot); /* NULL if out of range */
/* VIGIL_ENOTFOUND if no such feature. */
vigil_err          store_schema_find(const char *name, uint32_t *ret_slot);
/*
 * The model's input layout: the slots marked model_input, in slot order.
 * Every scored record archives its vector in this layout (as float32,
 * missing = NaN) whether or not a model is loaded, so the nightly rebuild
 * trains on exactly what was served. *ret_slots is static.
 */
#define STORE_MODEL_MAX_INPUTS 128
uint32_t           store_schema_model_inputs(const uint32_t **ret_slots);
/* XXH64 of the layout's names joined by '\n': archived with each vector;
 * a vector of another layout (another build) is not read as this one. */
uint64_t           store_schema_model_layout(void);
/* Fills the request slots (amount .. event_time, hour) from txn and marks
 * every other slot missing. String values point into txn. */
void               store_features_from_txn(const vigil_txn *txn, vigil_value *features,
    uint32_t nfeatures);

/* ========================= Archive ========================= */

typedef enum store_fsync {
	STORE_FSYNC_ALWAYS = 0, /* ack after fdatasync; concurrent appends share one sync (group commit) */
	STORE_FSYNC_INTERVAL,   /* ack after write(2); fdatasync every interval_ms */
	STORE_FSYNC_NEVER,      /* ack after write(2); the kernel flushes when it likes */
} store_fsync;

vigil_err store_fsync_parse(const char *s, store_fsync *ret); /* "always"|"interval"|"never" */

typedef struct store_archive_opts {
	store_fsync fsync;             /* default STORE_FSYNC_INTERVAL */
	uint32_t    fsync_interval_ms; /* default 50 */
	uint64_t    segment_max_bytes; /* rotate above this; default 256 MiB */
	uint32_t    retention_days;    /* delete closed segments older; 0 = keep forever */
	bool        compress_closed;   /* zstd-compress segments once closed */
	uint32_t    max_record_bytes;  /* default 1 MiB */
} store_archive_opts;

void store_archive_opts_default(store_archive_opts *ret_opts);

typedef enum store_rec_type {
	STORE_REC_SCORE = 1, /* payload: vigil.v1.ArchivedScore */
	STORE_REC_LABEL = 2, /* payload: vigil.v1.ArchivedLabel */
} store_rec_type;

/* What recovery found when an archive was opened for writing. */
typedef struct store_recovery {
	uint64_t torn_records;   /* incomplete records truncated at the tail */
	uint64_t torn_bytes;
	uint64_t last_seq;       /* highest sequence number on disk */
	uint32_t segments;       /* segment files found */
} store_recovery;

typedef struct store_archive store_archive;

/*
 * Opens (creates) the archive under dir ("<datadir>/archive"; the parent
 * must exist), for writing: one writer per directory (an flock on dir/LOCK;
 * VIGIL_EBUSY if held, even by this process). opts NULL = defaults.
 * Recovers a torn tail of the open segment and reports it in *ret_recovery
 * (may be NULL); corruption followed by valid records is left alone (readers
 * report it). Format and guarantees: docs/archive.md.
 * Errors: VIGIL_EINVAL (opts out of range), VIGIL_EBUSY, VIGIL_EIO and
 * errno-mapped codes with reterr naming the file, VIGIL_ENOMEM.
 */
vigil_err store_archive_open(const char *dir, const store_archive_opts *opts,
    store_archive **ret_ar, store_recovery *ret_recovery, store_diag *reterr);
/* Syncs the open segment (whatever the policy) and closes; the segment
 * stays open on disk and the next open continues it. No append may run
 * concurrently. NULL is a no-op. */
void      store_archive_close(store_archive *ar);

/*
 * Appends one record (thread-safe; many threads may append at once). When
 * it returns VIGIL_OK the record is written to the file (survives kill -9)
 * and, with STORE_FSYNC_ALWAYS, synced; *ret_seq (may be NULL) is its
 * sequence number (increasing in file order: 1, 2, ... with a gap only
 * where appends failed). VIGIL_ETOOBIG over max_record_bytes, VIGIL_EINVAL
 * for an unknown type, VIGIL_EIO on write or sync failure, VIGIL_EAGAIN
 * while the archive is failing and waits before trying again (nothing was
 * written; store_archive_get_health says why). The payload is copied to
 * the file before the call returns.
 */
vigil_err store_archive_append(store_archive *ar, store_rec_type type,
    int64_t event_time_ms, const void *payload, size_t len, uint64_t *ret_seq);

/*
 * Split append for callers that must order the write under their own lock
 * but wait for durability outside it: _write puts the record in the file
 * and returns its seq (errors as for append); _wait_durable(seq) returns once
 * the fsync policy is satisfied for it (immediately for interval/never):
 * VIGIL_EIO if a sync failed, VIGIL_EINVAL for a seq not yet written.
 */
vigil_err store_archive_write(store_archive *ar, store_rec_type type,
    int64_t event_time_ms, const void *payload, size_t len, uint64_t *ret_seq);
vigil_err store_archive_wait_durable(store_archive *ar, uint64_t seq);

/* Periodic upkeep, called by the owner (e.g. every minute); cheap if nothing
 * to do: closes the open segment if its UTC day is over (even with no
 * appends), zstd-compresses closed segments (compress_closed) and deletes
 * closed segments older than retention_days. Never touches the open
 * segment. Runs outside the append lock: appends go on meanwhile. */
vigil_err store_archive_maintain(store_archive *ar, store_diag *reterr);
/* Closes the open segment now (syncs it, writes its index); the next append
 * starts a new one. For tools, tests and an operator's "rotate" command. */
vigil_err store_archive_rotate(store_archive *ar, store_diag *reterr);

typedef struct store_archive_stats {
	uint64_t records, bytes, segments, syncs, last_seq;
} store_archive_stats;
void store_archive_get_stats(store_archive *ar, store_archive_stats *ret_stats);

/*
 * Faults that heal (docs/archive.md, "Errors"). A failed write, sync,
 * segment creation or truncation (ENOSPC, EFBIG, EMFILE, EIO, ...) leaves
 * no partial frame in the file and makes the archive *failing*: appends
 * are refused at once (VIGIL_EAGAIN) for a backoff that doubles from
 * 100 ms to 5 s, then the next append (or store_archive_maintain) repairs
 * and retries; a write that succeeds (after a failed sync: a sync of a new
 * segment) ends the episode, without reopening. A rotation that cannot
 * create the next segment is *degraded* only: appends go on in the open
 * segment and the rotation is retried. Records whose append failed are
 * not in the archive, except records whose sync failed (policy always):
 * they are written, not known to be durable, and their append fails.
 */
typedef struct store_archive_health {
	bool     failing;      /* appends are refused until a retry succeeds */
	bool     degraded;     /* appends work; a rotation is postponed by err */
	int      err;          /* errno of the fault (failing, else degraded); 0 if neither */
	char     op[24];       /* "write", "sync", "create segment", "sync directory", "truncate" */
	char     file[64];     /* the segment file concerned ("" if none) */
	int64_t  since_ms;     /* wall clock of the episode's first failure */
	int64_t  retry_in_ms;  /* until appends are tried again (0: the next one) */
	uint64_t failures;     /* failed attempts since open */
	uint64_t recoveries;   /* episodes ended since open */
	uint64_t refused;      /* appends refused or dropped unwritten since open */
} store_archive_health;
void store_archive_get_health(store_archive *ar, store_archive_health *ret_health);

/* ---- Reading ---- */

typedef struct store_reader store_reader;

typedef struct store_record {
	store_rec_type type;
	uint64_t       seq;
	int64_t        event_time_ms;
	const void    *payload; /* valid until the next store_reader_next/close */
	size_t         len;
	const char    *segment; /* file name of the segment it came from */
	uint64_t       offset;  /* byte offset of the record in the (uncompressed) segment */
} store_record;

/* Called for every corrupt stretch a reader skips; the reader goes on. */
typedef void (*store_corrupt_fn)(void *arg, const char *segment,
    uint64_t offset, uint64_t skipped_bytes, const char *what);

/*
 * Opens a reader over records with event time in [from_ms, to_ms) (use
 * INT64_MIN/INT64_MAX for all), in segment order, using each segment's index
 * to skip segments outside the range. Read-only; safe while a writer appends
 * (it sees records written before it reached them). on_corrupt may be NULL;
 * it is called from store_reader_next (segment and what valid during the
 * call only). VIGIL_ENOTFOUND if dir does not exist. One thread at a time
 * per reader; any number of readers at once.
 */
vigil_err store_reader_open(const char *dir, int64_t from_ms, int64_t to_ms,
    store_corrupt_fn on_corrupt, void *arg, store_reader **ret_rd, store_diag *reterr);
/* Reads one segment file only, "*.log" or "*.log.zst" (tools, fuzzing). A
 * partial record at its end is reported as corruption only if the segment
 * has an index beside it (is closed). */
vigil_err store_reader_open_segment(const char *path, store_corrupt_fn on_corrupt,
    void *arg, store_reader **ret_rd, store_diag *reterr);
/* VIGIL_OK with *ret_rec filled (payload and segment valid until the next
 * call or close); VIGIL_ENOTFOUND at the end; VIGIL_EIO (reterr names the
 * file), VIGIL_ENOMEM. Corrupt stretches are reported and skipped, not
 * returned as errors. */
vigil_err store_reader_next(store_reader *rd, store_record *ret_rec, store_diag *reterr);
/*
 * Returns only records whose type's bit (1u << type) is in type_mask (0:
 * every type, the default); call before the first store_reader_next.
 * Frames of other types are passed over by their headers without checking
 * their CRC, so damage inside their payload goes unseen; a stretch that
 * breaks the frame sequence (header, length, sequence number) is still
 * found and reported as by a reader checking every frame, and the records
 * returned are the same. For a reader that only wants the few labels.
 */
void store_reader_want(store_reader *rd, uint32_t type_mask);
typedef struct store_reader_stats {
	uint64_t records, bytes, corrupt_records, corrupt_bytes, segments;
	uint64_t skipped_bytes; /* frames of unwanted types passed over (store_reader_want) */
	/* records known lost in damaged zstd frames of compressed segments
	 * (from their frame tables; corrupt_records counts stretches) */
	uint64_t lost_records;
} store_reader_stats;
void store_reader_get_stats(const store_reader *rd, store_reader_stats *ret_stats);
void store_reader_close(store_reader *rd); /* NULL is a no-op */

/* Frame codec (exposed for the fuzz target and tests): parses one record at
 * buf[0..len). VIGIL_OK: *ret_rec filled, *ret_used = bytes consumed.
 * VIGIL_EAGAIN: need more bytes. VIGIL_ECORRUPT: bad header or CRC. */
vigil_err store_frame_decode(const void *buf, size_t len, store_record *ret_rec,
    size_t *ret_used);
uint32_t  store_crc32c(uint32_t crc, const void *buf, size_t len);

/* ---- Decoded records (payload -> C structs) ---- */

#define STORE_MAX_HITS 64
#define STORE_MAX_FEATS 32
#define STORE_MODEL_IN_MAX_BYTES (3 + STORE_MODEL_MAX_INPUTS / 8 + 4 * STORE_MODEL_MAX_INPUTS)

typedef struct store_hit {
	char    rule[64];
	int32_t points;
	bool    shadow;
} store_hit;

typedef struct store_featval {
	char        name[48];
	vigil_value val; /* str points into the record's storage */
} store_featval;

typedef struct store_scored {
	vigil_txn      txn;
	int32_t        score;
	vigil_decision decision;
	uint32_t       nhits;
	store_hit      hits[STORE_MAX_HITS];
	char           rules_version[72];
	uint64_t       features_gen;
	int64_t        scored_at_ms;
	uint32_t       nfeats;
	store_featval  feats[STORE_MAX_FEATS];
	char           strbuf[1024]; /* backing bytes for feats[].val.str */
	uint64_t       model_layout; /* store_schema_model_layout() when scored; 0: no vector */
	uint32_t       model_in_len; /* bytes of model_in used (0: no vector) */
	uint8_t        model_in[STORE_MODEL_IN_MAX_BYTES]; /* store_model_vec_encode */
} store_scored;

/*
 * The archived model vector x[0..n), float32 with NaN = missing, encoded as
 *   u8 format (1) | u16 LE n | ceil(n/8) bytes presence bitmap (bit i%8 of
 *   byte i/8 set: x[i] present) | float32 LE of each present x[i], in order.
 * encode: a NaN is stored as missing; VIGIL_EINVAL if n > STORE_MODEL_MAX_INPUTS,
 * VIGIL_ETOOBIG if cap is short. decode: VIGIL_EPROTO if malformed (unknown
 * format, length not matching the bitmap), VIGIL_ETOOBIG if n > cap; *ret_n = n.
 */
vigil_err store_model_vec_encode(const float *x, uint32_t n, void *buf, size_t cap,
    size_t *ret_len);
vigil_err store_model_vec_decode(const void *buf, size_t len, float *ret_x, uint32_t cap,
    uint32_t *ret_n);

typedef struct store_label {
	char    txn_id[VIGIL_ID_MAX + 1];
	char    card_id[VIGIL_ID_MAX + 1];
	char    source[32];
	bool    fraud;
	int64_t label_time_ms;
	int64_t received_at_ms;
} store_label;

/* Encode into buf (cap bytes); *ret_len = encoded size; VIGIL_ETOOBIG if it does not fit. */
vigil_err store_scored_encode(const store_scored *s, void *buf, size_t cap, size_t *ret_len);
vigil_err store_label_encode(const store_label *l, void *buf, size_t cap, size_t *ret_len);
/* Decode a payload; VIGIL_EPROTO if malformed (reterr says which field). */
vigil_err store_scored_decode(const void *payload, size_t len, store_scored *ret, store_diag *reterr);
vigil_err store_label_decode(const void *payload, size_t len, store_label *ret, store_diag *reterr);

/*
 * Lean decoding for bulk readers (vigil-rebuild): reads an ArchivedScore
 * payload in place, without protobuf-c, filling only what aggregation needs.
 * Strings are views into the payload (NOT NUL-terminated; valid as long as
 * the payload bytes are), except currency and country, which are copied.
 * It accepts exactly the payloads store_scored_decode accepts (same caps,
 * same protobuf-c merge rules for repeated singular fields) and, for those,
 * every field below equals the one store_scored_decode gives; hits and
 * rules_version are validated but not returned. VIGIL_EPROTO if malformed
 * (reterr says why); *ret is then unspecified. Never allocates.
 */
typedef struct store_strview {
	const char *p;   /* not NUL-terminated; never NULL ("" when empty) */
	uint32_t    len; /* bytes before the first NUL of the wire string */
} store_strview;

typedef struct store_lean_feat {
	store_strview name;
	vigil_value   val; /* val.str/len: a view into the payload, or NULL/0 */
} store_lean_feat;

typedef struct store_scored_lean {
	store_strview  txn_id, card_id, merchant_id, terminal_id, device_id, ip;
	char           currency[4], country[3]; /* NUL-padded to the end */
	int64_t        event_time_ms, amount_minor;
	uint32_t       mcc;
	uint8_t        channel;
	bool           has_location;
	double         lat, lon;
	int32_t        score;
	vigil_decision decision;
	uint64_t       features_gen;
	int64_t        scored_at_ms;
	uint32_t       nfeats;
	store_lean_feat feats[STORE_MAX_FEATS];
	uint64_t       model_layout;
	store_strview  model_in;   /* bytes (store_model_vec_decode); len 0: none */
} store_scored_lean;

vigil_err store_scored_decode_lean(const void *payload, size_t len, store_scored_lean *ret,
    store_diag *reterr);
/* store_features_from_txn for a lean record: the same values (string
 * values are views into the payload); computes only the nfeatures slots
 * asked for, so a caller needing the first few slots asks for those. */
void      store_lean_features_from_txn(const store_scored_lean *s, vigil_value *features,
    uint32_t nfeatures);

/* ===================== Feature generations (LMDB) ===================== */

/*
 * Value layouts (little-endian, packed, each starting with a uint16 layout
 * version; docs/storage.md). A reader refuses unknown versions with
 * VIGIL_EVERSION.
 */
#define STORE_CARD_MAX_COUNTRIES 16
#define STORE_CARD_MAX_MERCHANTS 32

typedef struct store_card_profile {
	uint32_t count_7d, count_30d, count_90d;
	double   amount_sum_7d, amount_sum_30d, amount_sum_90d;
	double   amount_mean_7d, amount_mean_30d, amount_mean_90d;
	double   amount_std_30d, amount_std_90d;
	double   amount_p50_90d, amount_p95_90d, amount_p99_90d, amount_max_90d;
	uint32_t distinct_merchants_90d, distinct_countries_90d;
	int64_t  first_seen_ms;
	uint32_t fraud_count_90d;
	uint32_t hour_hist[24]; /* transactions per UTC hour of day, 90d */
	uint8_t  ncountries;    /* most frequent countries, 90d */
	char     countries[STORE_CARD_MAX_COUNTRIES][2];
	uint8_t  nmerchants;    /* xxh64 of most frequent merchant ids, 90d */
	uint64_t merchants[STORE_CARD_MAX_MERCHANTS];
} store_card_profile;

typedef struct store_entity_profile { /* merchants and terminals */
	uint32_t count_7d, count_30d, count_90d;
	double   amount_mean_30d;
	uint32_t fraud_count_7d, fraud_count_30d, fraud_count_90d;
	uint32_t labeled_7d, labeled_30d, labeled_90d; /* txns with any label */
	double   fraud_rate_7d, fraud_rate_30d, fraud_rate_90d; /* frauds / count, smoothed (docs) */
} store_entity_profile;

typedef struct store_threshold_val {
	double   value;
	double   previous;   /* value in the previous generation (NaN if none) */
	uint64_t samples;    /* data behind it */
	bool     tuned;      /* false: fallback kept (too little data) */
} store_threshold_val;

typedef struct store_gen_meta {
	uint64_t generation;
	int64_t  as_of_ms;          /* exclusive end of the window */
	int64_t  window_ms;
	uint64_t first_seq, last_seq; /* archive range read */
	uint32_t schema_version;
	int64_t  built_at_ms;
	char     summary_json[4096]; /* what vigil-rebuild printed */
} store_gen_meta;

/* ---- Writing a generation (batch/) ---- */

typedef struct store_genw store_genw;

/*
 * Starts generation N+1 under "<datadir>/features/" in a temporary directory
 * invisible to readers. Takes the rebuild lock (VIGIL_EBUSY if another
 * rebuild holds it).
 */
vigil_err store_genw_begin(const char *datadir, store_genw **ret_w, store_diag *reterr);
uint64_t  store_genw_generation(const store_genw *w);
vigil_err store_genw_put_card(store_genw *w, const char *card_id, const store_card_profile *p);
vigil_err store_genw_put_merchant(store_genw *w, const char *merchant_id, const store_entity_profile *p);
vigil_err store_genw_put_terminal(store_genw *w, const char *terminal_id, const store_entity_profile *p);
/* group "" = the global value. */
vigil_err store_genw_put_threshold(store_genw *w, const char *name, const char *group,
    const store_threshold_val *v);
/*
 * Opaque named blobs (the model, in app/'s format; store/ never looks
 * inside). name: 1..STORE_BLOB_NAME_MAX bytes of [a-z0-9_.-]; a second put
 * of a name replaces the first. VIGIL_EINVAL for a bad name, VIGIL_ETOOBIG
 * over STORE_BLOB_MAX_BYTES; otherwise as the other puts.
 */
#define STORE_BLOB_NAME_MAX  32
#define STORE_BLOB_MAX_BYTES (256u << 20)
vigil_err store_genw_put_blob(store_genw *w, const char *name, const void *data, size_t len);
/* Writes meta, syncs, writes the CHECKSUM of data.mdb (synced), renames
 * into place, creates features/CHECKSUMS_FROM if there is none, switches
 * CURRENT atomically, prunes old generations beyond keep (0 = default 3).
 * Frees w.
 * meta->generation is ignored (the generation number of w is stored).
 * VIGIL_OK with reterr->msg non-empty: committed, but pruning an old
 * generation failed (the message says which). */
vigil_err store_genw_commit(store_genw *w, const store_gen_meta *meta, uint32_t keep,
    store_diag *reterr);
/* Discards everything; CURRENT untouched. Frees w. NULL is a no-op. */
void      store_genw_abort(store_genw *w);

/* ---- Reading a generation ---- */

typedef struct store_gen store_gen;

/*
 * Opens generation n read-only, verified before anything is mapped
 * (docs/storage.md, "Verification"): data.mdb is read whole (1 MiB at a
 * time) and its XXH3-128 compared with the generation's CHECKSUM file, then
 * LMDB maps that file and no more. A generation written before checksums
 * (no CHECKSUM, numbered below features/CHECKSUMS_FROM or with no such
 * file) is opened unverified: store_gen_check_get says so.
 * Errors, each with a one-line *reterr naming "features/gen-NNNNNN" and why:
 * VIGIL_ENOTFOUND (no such generation directory), VIGIL_ECORRUPT (data.mdb
 * missing, damaged, truncated or replaced while verified; CHECKSUM missing
 * where one is required, or malformed; any LMDB error at open; a table or
 * the meta value missing or malformed), VIGIL_EVERSION (a value layout this
 * build does not read), VIGIL_ENOMEM, VIGIL_ELIMIT (no descriptors), and
 * errno codes for a permission error. Nothing is left mapped on error.
 * store_gen_open_current opens the generation CURRENT names (VIGIL_ENOTFOUND
 * if there is no CURRENT yet, VIGIL_ECORRUPT if it is malformed).
 */
vigil_err store_gen_open_current(const char *datadir, store_gen **ret_g, store_diag *reterr);
vigil_err store_gen_open(const char *datadir, uint64_t generation, store_gen **ret_g, store_diag *reterr);
void      store_gen_close(store_gen *g); /* NULL is a no-op */
vigil_err store_gen_meta_get(store_gen *g, store_gen_meta *ret_meta);

/* How an open generation was checked by store_gen_open. */
typedef struct store_gen_check {
	bool     verified;  /* data.mdb matched CHECKSUM; false: written before checksums */
	uint64_t bytes;     /* size of data.mdb */
	uint64_t verify_us; /* time spent reading and hashing it */
} store_gen_check;
void      store_gen_check_get(const store_gen *g, store_gen_check *ret_check);
/* VIGIL_ENOTFOUND if the key is absent. */
vigil_err store_gen_card(store_gen *g, const char *card_id, store_card_profile *ret_p);
vigil_err store_gen_merchant(store_gen *g, const char *merchant_id, store_entity_profile *ret_p);
vigil_err store_gen_terminal(store_gen *g, const char *terminal_id, store_entity_profile *ret_p);
/* Many card lookups, fastest in ascending id order (vigil-rebuild reads the
 * previous generation's cards this way): one read transaction for all of
 * them. get: VIGIL_ENOTFOUND if absent, VIGIL_ECORRUPT if the value does
 * not decode. Close before store_gen_close; NULL is a no-op. */
typedef struct store_gen_cards store_gen_cards;
vigil_err store_gen_cards_open(store_gen *g, store_gen_cards **ret_c);
vigil_err store_gen_cards_get(store_gen_cards *c, const char *card_id, store_card_profile *ret_p);
void      store_gen_cards_close(store_gen_cards *c);
vigil_err store_gen_threshold(store_gen *g, const char *name, const char *group,
    store_threshold_val *ret_v);
/* A blob written by store_genw_put_blob: *ret_data is a malloc'd copy (free
 * it), valid after the generation is closed. VIGIL_ENOTFOUND if the
 * generation has none of that name (or the name is invalid), VIGIL_ECORRUPT
 * if its stored size is over the cap, VIGIL_ENOMEM, VIGIL_EIO. */
vigil_err store_gen_blob(store_gen *g, const char *name, void **ret_data, size_t *ret_len);
/* Calls fn for every stored threshold value (name, group, value). */
vigil_err store_gen_thresholds_each(store_gen *g,
    void (*fn)(void *arg, const char *name, const char *group, const store_threshold_val *v),
    void *arg);
/* The batch features one stored profile gives, named as the rules read them
 * (schema.def): sets every slot of f[0..store_schema_nfields()) whose source
 * is src, from profile (a store_card_profile for STORE_SRC_CARD, a
 * store_entity_profile for _MERCHANT and _TERMINAL), by the code the
 * scoring path uses; other slots are untouched. For inspection (vigil-rebuild
 * --dump). VIGIL_EINVAL for another source. */
vigil_err store_profile_features(store_source src, const void *profile, vigil_value *f);
/* Reads CURRENT: the generation number it names, 0 if none. */
vigil_err store_gen_current(const char *datadir, uint64_t *ret_generation);
/* Points CURRENT at an existing generation (operators' roll-back). */
vigil_err store_gen_set_current(const char *datadir, uint64_t generation, store_diag *reterr);

/* ===================== Speed layer + serving (store_db) ===================== */

/*
 * Feature masks (offline use: replay computes only what its rules read).
 * Bit s set = schema slot s is needed. A lookup under a mask fills the
 * needed slots exactly as an unmasked lookup would and sets every other
 * slot missing; it skips the batch reads and live aggregates that no
 * needed slot depends on. Build one with store_feature_mask_none() and
 * store_feature_mask_set() per slot (e.g. from rules_prog_slots_used());
 * store_feature_mask_all() is the default everywhere.
 */
#define STORE_FEATURE_MASK_WORDS 2 /* slots 0..127 (store_schema_nfields() <= 128) */

typedef struct store_feature_mask {
	uint64_t w[STORE_FEATURE_MASK_WORDS];
} store_feature_mask;

void store_feature_mask_all(store_feature_mask *ret_m);  /* every schema slot */
void store_feature_mask_none(store_feature_mask *ret_m);
/* Slots >= store_schema_nfields() are ignored (set) or absent (has). */
void store_feature_mask_set(store_feature_mask *m, uint32_t slot);
bool store_feature_mask_has(const store_feature_mask *m, uint32_t slot);

typedef struct store_db_opts {
	store_archive_opts archive;
	uint32_t dedupe_horizon_s; /* >= largest window; default 8 days */
	uint32_t max_cards;        /* cap on live entities; default 10M */
	bool     read_only;        /* tools: no archive writer, no live state */
	/* store_db_new_memory only (store_db_open wants all, else VIGIL_EINVAL):
	 * the slots this db serves. Its contexts start with this mask, and the
	 * live state keeps no merchant, terminal, device or IP windows of a kind
	 * none of whose vel.* slots is in it (card windows, idempotency records
	 * and max_cards are kept as always). Default: all. */
	store_feature_mask features;
} store_db_opts;

void store_db_opts_default(store_db_opts *ret_opts);

typedef struct store_db store_db;

/*
 * Opens a data directory: the archive for writing, the current feature
 * generation (if any) and the live state, rebuilt from the archive (so after
 * any crash it equals a recomputation from the archive). *ret_recovery may
 * be NULL. On VIGIL_OK, reterr->msg is empty unless the replay skipped
 * corrupt archive records (then it says how many and where the first was:
 * log it). The generation CURRENT names is verified (store_gen_open); if it
 * is refused (missing, damaged, of an unknown layout, CURRENT malformed),
 * the newest older generation that opens is served instead, or none, and
 * store_db_get_health says which and why: a damaged generation never stops
 * the open. Errors: the archive's (VIGIL_EBUSY, VIGIL_EIO, ...), a scored
 * record that does not decode (VIGIL_EPROTO, reterr names segment:offset),
 * VIGIL_EINVAL for options (dedupe_horizon_s below 7 days, max_cards 0),
 * VIGIL_ENOMEM.
 */
vigil_err store_db_open(const char *datadir, const store_db_opts *opts, store_db **ret_db,
    store_recovery *ret_recovery, store_diag *reterr);
/* Flushes and syncs the archive; NULL is a no-op. */
void      store_db_close(store_db *db);
/* store_db_close for a process that exits next: the archive and the
 * generation are closed the same way, but the live state's memory (one
 * free per card, entity and idempotency record: tens of milliseconds for
 * millions) is left to the exit. A build checked for leaks (sanitizers)
 * calls store_db_close instead. */
void      store_db_close_exiting(store_db *db);

/* Checks CURRENT and switches to the generation it names if that is not
 * the one served. Cheap (a stat) unless CURRENT changed: then the new
 * generation is verified (store_gen_open reads it whole); call it from a
 * timer, not per request. In-flight lookups keep the generation they
 * started with. *ret_changed may be NULL. If the generation CURRENT names
 * is refused (VIGIL_ECORRUPT, VIGIL_EVERSION, ...; a malformed CURRENT
 * too), the error and reterr are returned once, the served generation
 * stays, and store_db_get_health reports the refusal; later calls return
 * VIGIL_OK without trying again until CURRENT or that generation's files
 * change (after VIGIL_ENOMEM or VIGIL_ELIMIT: at the next call). */
vigil_err store_db_refresh(store_db *db, bool *ret_changed, store_diag *reterr);
/*
 * Housekeeping for a long-running owner (vigild calls it from a timer, e.g.
 * every 10 s): closes the archive segment at the UTC day boundary,
 * compresses closed segments and applies retention (store_archive_maintain),
 * and sweeps expired live state. Cheap when there is nothing to do. Never
 * blocks scoring for long. VIGIL_OK, or an error with *reterr filled; the
 * db stays usable either way.
 */
vigil_err store_db_maintain(store_db *db, store_diag *reterr);
uint64_t  store_db_generation(store_db *db); /* 0 = none */
int64_t   store_db_generation_as_of(store_db *db);
/* store_gen_blob on the current generation; *ret_generation (may be NULL)
 * is the generation it came from. VIGIL_ENOTFOUND without a generation. */
vigil_err store_db_blob(store_db *db, const char *name, void **ret_data, size_t *ret_len,
    uint64_t *ret_generation);
/* Calls fn for every threshold value of the current generation. */
vigil_err store_db_thresholds_each(store_db *db,
    void (*fn)(void *arg, const char *name, const char *group, const store_threshold_val *v),
    void *arg);

/* Per-thread scratch for scoring; holds strings the feature vector points to. */
typedef struct store_ctx store_ctx;
store_ctx *store_ctx_new(store_db *db); /* NULL on ENOMEM; mask: the db's features */
void       store_ctx_free(store_ctx *ctx);
/* The slots store_score_begin and store_features_lookup fill on ctx from now
 * on (others missing; see store_feature_mask). NULL = the db's mask.
 * VIGIL_EINVAL (ctx unchanged) if m asks for a slot outside the db's mask
 * or a begin is open on ctx. Applying (commit) is not affected. */
vigil_err  store_ctx_set_features(store_ctx *ctx, const store_feature_mask *m);

/* The first outcome of a transaction, returned for retries. */
typedef struct store_outcome {
	int32_t        score;
	vigil_decision decision;
	uint64_t       features_gen;
	uint32_t       nhits;
	store_hit      hits[STORE_MAX_HITS];
	char           rules_version[72];
} store_outcome;

/*
 * Scoring, in three steps so the live state is exact under concurrency:
 *
 * store_score_begin: if txn->txn_id was seen within the horizon, returns
 *   VIGIL_EEXIST with *ret_prior filled and nothing locked: a retry (the
 *   same card, merchant, terminal, amount and currency as the recorded
 *   transaction); or VIGIL_ECONFLICT, *ret_prior filled and nothing locked,
 *   if any of those differ: the id was reused for another transaction,
 *   which must be refused, not answered with the first outcome. The id is
 *   claimed from begin to commit/abort: a begin of it for another card
 *   meanwhile gets VIGIL_ECONFLICT with *ret_prior zeroed, so concurrent
 *   uses of one id are scored once. With fsync always a transaction is a
 *   retry only once its record is durable: a retry while its sync runs
 *   waits for it, and one after the sync failed is scored again (begin
 *   returns VIGIL_OK; commit writes the record again, not applying it
 *   twice). Otherwise locks
 *   the card's live entry and fills features[0..store_schema_nfields()) with
 *   the transaction fields, the batch profile and the live velocity as of
 *   txn->event_time_ms (the transaction itself excluded). The strings in
 *   features stay valid until the next call on ctx.
 * store_score_commit: archives the scored record (store_archive_write),
 *   applies it to the live state, records the outcome for dedupe, unlocks,
 *   then waits for durability per the fsync policy. On error nothing is
 *   applied and the lock is released; the one exception is a failure of
 *   the durability wait itself (its error is returned after the record was
 *   written and applied; the transaction is then not a duplicate for a
 *   retry, which writes it again). VIGIL_EINVAL (with
 *   reterr) if rec is not for the begun txn_id/card_id/event time. The
 *   diag of an archive error names what failed with the errno's text.
 *   Errors of begin: VIGIL_EINVAL (nfeatures < store_schema_nfields(),
 *   empty or unterminated ids, a begin already open on ctx, a read-only
 *   db), VIGIL_ELIMIT (a new card over max_cards), VIGIL_EAGAIN (the
 *   archive is failing and refuses appends for now: store_db_get_health),
 *   VIGIL_ENOMEM.
 * store_score_abort: unlocks without applying.
 * Exactly one of commit/abort must follow a VIGIL_OK begin on the same ctx.
 */
vigil_err store_score_begin(store_db *db, store_ctx *ctx, const vigil_txn *txn,
    vigil_value *features, uint32_t nfeatures, store_outcome *ret_prior);
vigil_err store_score_commit(store_db *db, store_ctx *ctx, const store_scored *rec,
    store_diag *reterr);
void      store_score_abort(store_db *db, store_ctx *ctx);

/* Features only, nothing locked or applied (dry runs, replay, explain). */
vigil_err store_features_lookup(store_db *db, store_ctx *ctx, const vigil_txn *txn,
    vigil_value *features, uint32_t nfeatures);

/* Archives a label (durable per policy when it returns). VIGIL_EAGAIN
 * while the archive refuses appends; the diag has the errno's text. */
vigil_err store_label_record(store_db *db, const store_label *label, store_diag *reterr);

typedef struct store_db_stats {
	uint64_t live_cards, live_entities, live_events, dedupe_entries;
	uint64_t late_events;    /* older than the largest window: counted, not applied */
	store_archive_stats archive;
} store_db_stats;
void store_db_get_stats(store_db *db, store_db_stats *ret_stats);

/* Whether the db can acknowledge transactions now: ok is false while the
 * archive is failing (archive.failing; archive says why and since when).
 * Cheap (uncontended mutexes): a health endpoint or a timer may call it
 * often. A memory or read-only db is always ok.
 * The generation fields say which feature generation is served and whether
 * the one CURRENT names was refused (docs/storage.md, "Verification"). A
 * refusal does not make ok false: the db scores on the generation it kept
 * or fell back to (or none: a cold start) and says so here. */
typedef struct store_db_health {
	bool                 ok;
	store_archive_health archive;
	uint64_t             generation;          /* served; 0 = none */
	bool                 generation_verified; /* it matched its CHECKSUM (false: written before checksums, or none) */
	uint64_t             generation_bytes;    /* its data.mdb's size */
	uint64_t             generation_verify_us; /* time its verification took */
	bool                 generation_refused;  /* CURRENT names a generation that is not served */
	uint64_t             refused_generation;  /* which; 0 if CURRENT itself is malformed */
	char                 generation_error[512]; /* one line, why ("" unless refused) */
	uint64_t             generation_refusals; /* refusals since open, start-up included */
} store_db_health;
void store_db_get_health(store_db *db, store_db_health *ret_health);

/*
 * Offline use (replay, tests): a live state with no archive and no data
 * directory. Same begin/commit/abort API; commit applies without archiving.
 * gen may be NULL (no batch features) and may be swapped with
 * store_db_set_gen (the db does not take ownership).
 */
vigil_err store_db_new_memory(const store_db_opts *opts, store_db **ret_db);
void      store_db_set_gen(store_db *db, store_gen *gen);

#ifdef __cplusplus
}
#endif

#endif /* VIGIL_STORE_H */
