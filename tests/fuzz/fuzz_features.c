/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_features.c - arbitrary bytes as an LMDB value of a feature
 * generation (read back from disk): through the card, entity, threshold and
 * meta decoders of features/codec.c (gen_value_decode). What decodes must
 * encode back to the same bytes (the layouts are fixed and every decoder
 * insists on the exact length), except a meta value whose summary holds a
 * NUL or whose recorded layouts differ from this build's, and a profile of
 * an older layout (re-encoded in the current one): those must at least
 * decode again to the same thing. And the same bytes as an archived model
 * input vector (store_model_vec_decode): what decodes encodes back to the
 * same bytes (one vector, one encoding). Must never crash, leak or read
 * out of bounds.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static gen_value v, v2;
static uint8_t   enc[8192];

static void
fuzz_kind(gen_value_kind kind, const uint8_t *data, size_t size)
{
	vigil_err rv;
	size_t n;
	bool exact = true;

	rv = gen_value_decode(kind, data, size, &v);
	if (rv == VIGIL_ECORRUPT || rv == VIGIL_EVERSION)
		return;
	if (rv != VIGIL_OK)
		abort();
	n = gen_value_encode(kind, &v, enc, sizeof enc);
	if (n == 0)
		abort();
	if (kind == GEN_VALUE_META)
		exact = strlen(v.meta.summary_json) == size - 64 &&
		    v.meta_card == STORE_CARD_LAYOUT && v.meta_entity == STORE_ENTITY_LAYOUT &&
		    v.meta_threshold == STORE_THRESHOLD_LAYOUT;
	if (kind == GEN_VALUE_CARD || kind == GEN_VALUE_ENTITY)
		exact = (unsigned)(data[0] | data[1] << 8) ==
		    (kind == GEN_VALUE_CARD ? STORE_CARD_LAYOUT : STORE_ENTITY_LAYOUT);
	if (exact && (n != size || memcmp(enc, data, size) != 0))
		abort();
	if (gen_value_decode(kind, enc, n, &v2) != VIGIL_OK)
		abort();
	if (kind == GEN_VALUE_META &&
	    (v2.meta.generation != v.meta.generation || v2.meta.last_seq != v.meta.last_seq ||
	    strcmp(v2.meta.summary_json, v.meta.summary_json) != 0))
		abort();
}

static void
fuzz_model_vec(const uint8_t *data, size_t size)
{
	static float x[STORE_MODEL_MAX_INPUTS];
	uint32_t     n;
	size_t       len;
	vigil_err    rv;

	rv = store_model_vec_decode(data, size, x, STORE_MODEL_MAX_INPUTS, &n);
	if (rv == VIGIL_EPROTO || rv == VIGIL_ETOOBIG)
		return;
	if (rv != VIGIL_OK || n > STORE_MODEL_MAX_INPUTS)
		abort();
	if (store_model_vec_encode(x, n, enc, sizeof enc, &len) != VIGIL_OK || len != size ||
	    memcmp(enc, data, size) != 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_kind(GEN_VALUE_CARD, data, size);
	fuzz_kind(GEN_VALUE_ENTITY, data, size);
	fuzz_kind(GEN_VALUE_THRESHOLD, data, size);
	fuzz_kind(GEN_VALUE_META, data, size);
	fuzz_model_vec(data, size);
	return 0;
}
