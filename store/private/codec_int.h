/* SPDX-License-Identifier: MIT */
/*
 * store/private/codec_int.h - private to store/: the value codecs of a feature
 * generation (codec.c; layouts in docs/storage.md), used by features.c to
 * write and read the LMDB values. Encoders write into a wbuf (every layout
 * fits); decoders copy out, insist on the exact length and return
 * VIGIL_OK, VIGIL_EVERSION (a layout newer than this build's, or another
 * version of threshold and meta) or VIGIL_ECORRUPT.
 */
#ifndef VIGIL_STORE_CODEC_INT_H
#define VIGIL_STORE_CODEC_INT_H

#include <stddef.h>
#include <stdint.h>

#include "gen.h"

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

#endif
