/* SPDX-License-Identifier: MIT */
/*
 * features/codec.h - the values of a feature generation and their codecs
 * (codec.c; layouts in docs/storage.md): card and entity profiles
 * (profile.h, from schema.def's PC and PE rows), tuned thresholds and the
 * generation's meta. store/ keeps them in LMDB as these bytes (features/db/genread.c,
 * genw.c). Encoders write into a wbuf (every layout fits); decoders copy out, insist on the exact length and return
 * VIGIL_OK, VIGIL_EVERSION (a layout newer than this build's, or another
 * version of threshold and meta) or VIGIL_ECORRUPT. And the model's input
 * vector as the archive keeps it with a score (store_model_vec_encode).
 */
#ifndef VIGIL_FEATURES_CODEC_H
#define VIGIL_FEATURES_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "profile.h"
#include "schema.h"
#include "vigil.h"

/* Value layout versions this build writes and reads (docs/storage.md); the
 * profiles' come from schema.def's LAYOUT rows. */
enum {
#define LAYOUT(kind, version) store_layout_##kind##_ = (version),
#include "schema.def"
#undef LAYOUT
};
#define STORE_CARD_LAYOUT      ((unsigned)store_layout_CARD_)
#define STORE_ENTITY_LAYOUT    ((unsigned)store_layout_ENTITY_)
#define STORE_THRESHOLD_LAYOUT 1
#define STORE_META_LAYOUT      1

/* A tuned threshold (vigil-rebuild) as the rules read it. */
typedef struct store_threshold_val {
	double   value;
	double   previous;   /* value in the previous generation (NaN if none) */
	uint64_t samples;    /* data behind it */
	bool     tuned;      /* false: fallback kept (too little data) */
} store_threshold_val;

/* What a generation says of itself (written last by store_genw_commit). */
typedef struct store_gen_meta {
	uint64_t generation;
	int64_t  as_of_ms;          /* exclusive end of the window */
	int64_t  window_ms;
	uint64_t first_seq, last_seq; /* archive range read */
	uint32_t schema_version;
	int64_t  built_at_ms;
	char     summary_json[4096]; /* what vigil-rebuild printed */
} store_gen_meta;

typedef struct wbuf {
	uint8_t buf[8192];
	size_t  len;
} wbuf;

typedef struct meta_layouts {
	uint16_t card, entity, threshold;
} meta_layouts;

/* The first two bytes of every value: its layout version (0 if too short). */
uint16_t  gen_val_version(const void *p, size_t len);

void      gen_card_encode(const store_card_profile *p, wbuf *w);
vigil_err gen_card_decode(const void *val, size_t len, store_card_profile *ret);
void      gen_entity_encode(const store_entity_profile *p, wbuf *w);
vigil_err gen_entity_decode(const void *val, size_t len, store_entity_profile *ret);
void      gen_threshold_encode(const store_threshold_val *v, wbuf *w);
vigil_err gen_threshold_decode(const void *val, size_t len, store_threshold_val *ret);
void      gen_meta_encode(const store_gen_meta *m, wbuf *w);
vigil_err gen_meta_decode(const void *val, size_t len, store_gen_meta *ret,
    meta_layouts *ret_lay);

/*
 * The codecs above by kind, for the fuzz target and tests. gen_value_decode fills the member of *ret that kind
 * names (for META also the three layout versions the value records) and
 * returns VIGIL_OK, VIGIL_EVERSION or VIGIL_ECORRUPT like a lookup.
 * gen_value_encode writes what a generation would store; 0 if cap is short.
 */
typedef enum gen_value_kind {
	GEN_VALUE_CARD, GEN_VALUE_ENTITY, GEN_VALUE_THRESHOLD, GEN_VALUE_META,
} gen_value_kind;

typedef struct gen_value {
	store_card_profile   card;
	store_entity_profile entity;
	store_threshold_val  threshold;
	store_gen_meta       meta;
	uint16_t             meta_card, meta_entity, meta_threshold;
} gen_value;

vigil_err gen_value_decode(gen_value_kind kind, const void *val, size_t len, gen_value *ret);
size_t    gen_value_encode(gen_value_kind kind, const gen_value *v, void *buf, size_t cap);

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

#endif
