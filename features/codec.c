/* SPDX-License-Identifier: MIT */
/*
 * features/codec.c - the value codecs of a feature generation: card and
 * entity profiles (expanded from schema.def's PC and PE rows), thresholds
 * and meta, packed little-endian, each value starting with its uint16
 * layout version (docs/storage.md). store/ writes and reads them in
 * LMDB (features/db/genread.c, store/genw.c); gen_value_* expose them to the fuzz target
 * and the tests. And the model's input vector as archived with a score.
 */
#include <math.h>
#include <string.h>

#include "codec.h"

/* ---------------------------------------------------------------------- */
/* Little-endian packing. */


static void
w_bytes(wbuf *w, const void *p, size_t n)
{
	/* Callers size every layout well under the buffer; see the asserts. */
	memcpy(w->buf + w->len, p, n);
	w->len += n;
}

static void
w_u64(wbuf *w, uint64_t v, int nbytes)
{
	for (int i = 0; i < nbytes; i++)
		w->buf[w->len++] = (uint8_t)(v >> (8 * i));
}

static void w_u8(wbuf *w, uint8_t v) { w_u64(w, v, 1); }
static void w_u16(wbuf *w, uint16_t v) { w_u64(w, v, 2); }
static void w_u32(wbuf *w, uint32_t v) { w_u64(w, v, 4); }
static void w_i64(wbuf *w, int64_t v) { w_u64(w, (uint64_t)v, 8); }

static void
w_f64(wbuf *w, double v)
{
	uint64_t u;

	memcpy(&u, &v, sizeof u);
	w_u64(w, u, 8);
}

typedef struct rbuf {
	const uint8_t *p;
	size_t         len, off;
	bool           bad;
} rbuf;

static uint64_t
r_u64(rbuf *r, int nbytes)
{
	uint64_t v = 0;

	if (r->bad || r->len - r->off < (size_t)nbytes) {
		r->bad = true;
		return 0;
	}
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	memcpy(&v, r->p + r->off, (size_t)nbytes); /* the layout's byte order */
#else
	for (int i = 0; i < nbytes; i++)
		v |= (uint64_t)r->p[r->off + i] << (8 * i);
#endif
	r->off += (size_t)nbytes;
	return v;
}

static uint8_t r_u8(rbuf *r) { return (uint8_t)r_u64(r, 1); }
static uint16_t r_u16(rbuf *r) { return (uint16_t)r_u64(r, 2); }
static uint32_t r_u32(rbuf *r) { return (uint32_t)r_u64(r, 4); }
static int64_t r_i64(rbuf *r) { return (int64_t)r_u64(r, 8); }

static double
r_f64(rbuf *r)
{
	uint64_t u = r_u64(r, 8);
	double   v;

	memcpy(&v, &u, sizeof v);
	return v;
}

static void
r_bytes(rbuf *r, void *dst, size_t n)
{
	if (r->bad || r->len - r->off < n) {
		r->bad = true;
		return;
	}
	memcpy(dst, r->p + r->off, n);
	r->off += n;
}

/* The first two bytes of every value: its layout version (0 if too short). */
uint16_t
gen_val_version(const void *p, size_t len)
{
	const uint8_t *b = p;

	return len < 2 ? 0 : (uint16_t)(b[0] | b[1] << 8);
}

/* ---- card and entity profiles: schema.def's PC and PE rows, in order ----
 *
 * A value of layout v holds the rows whose SINCE is <= v: an older value
 * decodes with the fields added after it zero. */

#define W_U32(w, v)  w_u32(w, v)
#define W_F64(w, v)  w_f64(w, v)
#define W_I64(w, v)  w_i64(w, v)
#define W_TIME(w, v) w_i64(w, v)
#define R_U32(r)     r_u32(r)
#define R_F64(r)     r_f64(r)
#define R_I64(r)     r_i64(r)
#define R_TIME(r)    r_i64(r)

/* The layout of a stored value: 1 .. want, or 0 (unknown or too short). */
static uint16_t
val_layout(const void *val, size_t len, uint16_t want)
{
	uint16_t v = gen_val_version(val, len);

	return v >= 1 && v <= want ? v : 0;
}

void
gen_card_encode(const store_card_profile *p, wbuf *w)
{
	w->len = 0;
	w_u16(w, STORE_CARD_LAYOUT);
#define PC(ctype, field, since, doc) W_##ctype(w, p->field);
#include "schema.def"
#undef PC
	for (int h = 0; h < 24; h++)
		w_u32(w, p->hour_hist[h]);
	w_u8(w, p->ncountries);
	for (unsigned i = 0; i < p->ncountries; i++)
		w_bytes(w, p->countries[i], 2);
	w_u8(w, p->nmerchants);
	for (unsigned i = 0; i < p->nmerchants; i++)
		w_u64(w, p->merchants[i], 8);
}

vigil_err
gen_card_decode(const void *val, size_t len, store_card_profile *ret)
{
	rbuf               r = { .p = val, .len = len };
	store_card_profile p;
	uint16_t           ver = val_layout(val, len, STORE_CARD_LAYOUT);

	memset(&p, 0, sizeof p);
	if (ver == 0)
		return len < 2 ? VIGIL_ECORRUPT : VIGIL_EVERSION;
	(void)r_u16(&r);
#define PC(ctype, field, since, doc) if ((since) <= ver) p.field = R_##ctype(&r);
#include "schema.def"
#undef PC
	for (int h = 0; h < 24; h++)
		p.hour_hist[h] = r_u32(&r);
	p.ncountries = r_u8(&r);
	if (p.ncountries > STORE_CARD_MAX_COUNTRIES)
		return VIGIL_ECORRUPT;
	for (unsigned i = 0; i < p.ncountries; i++)
		r_bytes(&r, p.countries[i], 2);
	p.nmerchants = r_u8(&r);
	if (p.nmerchants > STORE_CARD_MAX_MERCHANTS)
		return VIGIL_ECORRUPT;
	for (unsigned i = 0; i < p.nmerchants; i++)
		p.merchants[i] = r_u64(&r, 8);
	if (r.bad || r.off != r.len)
		return VIGIL_ECORRUPT;
	*ret = p;
	return VIGIL_OK;
}

void
gen_entity_encode(const store_entity_profile *p, wbuf *w)
{
	w->len = 0;
	w_u16(w, STORE_ENTITY_LAYOUT);
#define PE(ctype, field, since, doc) W_##ctype(w, p->field);
#include "schema.def"
#undef PE
}

vigil_err
gen_entity_decode(const void *val, size_t len, store_entity_profile *ret)
{
	rbuf                 r = { .p = val, .len = len };
	store_entity_profile p;
	uint16_t             ver = val_layout(val, len, STORE_ENTITY_LAYOUT);

	memset(&p, 0, sizeof p);
	if (ver == 0)
		return len < 2 ? VIGIL_ECORRUPT : VIGIL_EVERSION;
	(void)r_u16(&r);
#define PE(ctype, field, since, doc) if ((since) <= ver) p.field = R_##ctype(&r);
#include "schema.def"
#undef PE
	if (r.bad || r.off != r.len)
		return VIGIL_ECORRUPT;
	*ret = p;
	return VIGIL_OK;
}

/* Every row's SINCE is a layout this build knows, and the newest layout
 * has a row (a layout bump comes with the rows it adds). */
enum {
	card_rows_newer_ = 0
#define PC(ctype, field, since, doc) + ((since) < 1 || (since) > STORE_CARD_LAYOUT)
#include "schema.def"
#undef PC
	, card_rows_newest_ = 0
#define PC(ctype, field, since, doc) + ((since) == STORE_CARD_LAYOUT)
#include "schema.def"
#undef PC
	, entity_rows_newer_ = 0
#define PE(ctype, field, since, doc) + ((since) < 1 || (since) > STORE_ENTITY_LAYOUT)
#include "schema.def"
#undef PE
	, entity_rows_newest_ = 0
#define PE(ctype, field, since, doc) + ((since) == STORE_ENTITY_LAYOUT)
#include "schema.def"
#undef PE
};
_Static_assert(card_rows_newer_ == 0 && card_rows_newest_ > 0,
    "schema.def PC rows and STORE_CARD_LAYOUT disagree");
_Static_assert(entity_rows_newer_ == 0 && entity_rows_newest_ > 0,
    "schema.def PE rows and STORE_ENTITY_LAYOUT disagree");

/* ---- threshold value, layout 1 ---- */

void
gen_threshold_encode(const store_threshold_val *v, wbuf *w)
{
	w->len = 0;
	w_u16(w, STORE_THRESHOLD_LAYOUT);
	w_f64(w, v->value);
	w_f64(w, v->previous);
	w_u64(w, v->samples, 8);
	w_u8(w, v->tuned ? 1 : 0);
}

vigil_err
gen_threshold_decode(const void *val, size_t len, store_threshold_val *ret)
{
	rbuf                r = { .p = val, .len = len };
	store_threshold_val v;
	uint8_t             tuned;

	if (gen_val_version(val, len) != STORE_THRESHOLD_LAYOUT)
		return len < 2 ? VIGIL_ECORRUPT : VIGIL_EVERSION;
	(void)r_u16(&r);
	v.value = r_f64(&r);
	v.previous = r_f64(&r);
	v.samples = r_u64(&r, 8);
	tuned = r_u8(&r);
	if (r.bad || r.off != r.len || tuned > 1)
		return VIGIL_ECORRUPT;
	v.tuned = tuned == 1;
	*ret = v;
	return VIGIL_OK;
}

/* ---- meta, layout 1 ---- */


void
gen_meta_encode(const store_gen_meta *m, wbuf *w)
{
	size_t slen = strnlen(m->summary_json, sizeof m->summary_json - 1);

	w->len = 0;
	w_u16(w, STORE_META_LAYOUT);
	w_u64(w, m->generation, 8);
	w_i64(w, m->as_of_ms);
	w_i64(w, m->window_ms);
	w_u64(w, m->first_seq, 8);
	w_u64(w, m->last_seq, 8);
	w_u32(w, m->schema_version);
	w_i64(w, m->built_at_ms);
	w_u16(w, STORE_CARD_LAYOUT);
	w_u16(w, STORE_ENTITY_LAYOUT);
	w_u16(w, STORE_THRESHOLD_LAYOUT);
	w_u32(w, (uint32_t)slen);
	w_bytes(w, m->summary_json, slen);
}

vigil_err
gen_meta_decode(const void *val, size_t len, store_gen_meta *ret, meta_layouts *ret_lay)
{
	rbuf     r = { .p = val, .len = len };
	uint32_t slen;

	if (gen_val_version(val, len) != STORE_META_LAYOUT)
		return len < 2 ? VIGIL_ECORRUPT : VIGIL_EVERSION;
	memset(ret, 0, sizeof *ret);
	(void)r_u16(&r);
	ret->generation = r_u64(&r, 8);
	ret->as_of_ms = r_i64(&r);
	ret->window_ms = r_i64(&r);
	ret->first_seq = r_u64(&r, 8);
	ret->last_seq = r_u64(&r, 8);
	ret->schema_version = r_u32(&r);
	ret->built_at_ms = r_i64(&r);
	ret_lay->card = r_u16(&r);
	ret_lay->entity = r_u16(&r);
	ret_lay->threshold = r_u16(&r);
	slen = r_u32(&r);
	if (r.bad || slen >= sizeof ret->summary_json)
		return VIGIL_ECORRUPT;
	r_bytes(&r, ret->summary_json, slen);
	if (r.bad || r.off != r.len)
		return VIGIL_ECORRUPT;
	ret->summary_json[slen] = '\0';
	return VIGIL_OK;
}

/* The codecs above by kind, for the fuzz target and tests (codec.h). */
vigil_err
gen_value_decode(gen_value_kind kind, const void *val, size_t len, gen_value *ret)
{
	meta_layouts lay;
	vigil_err    rv;

	switch (kind) {
	case GEN_VALUE_CARD:      return gen_card_decode(val, len, &ret->card);
	case GEN_VALUE_ENTITY:    return gen_entity_decode(val, len, &ret->entity);
	case GEN_VALUE_THRESHOLD: return gen_threshold_decode(val, len, &ret->threshold);
	case GEN_VALUE_META:
		rv = gen_meta_decode(val, len, &ret->meta, &lay);
		ret->meta_card = lay.card;
		ret->meta_entity = lay.entity;
		ret->meta_threshold = lay.threshold;
		return rv;
	}
	return VIGIL_EINVAL;
}

size_t
gen_value_encode(gen_value_kind kind, const gen_value *v, void *buf, size_t cap)
{
	wbuf w;

	switch (kind) {
	case GEN_VALUE_CARD:      gen_card_encode(&v->card, &w); break;
	case GEN_VALUE_ENTITY:    gen_entity_encode(&v->entity, &w); break;
	case GEN_VALUE_THRESHOLD: gen_threshold_encode(&v->threshold, &w); break;
	case GEN_VALUE_META:      gen_meta_encode(&v->meta, &w); break;
	default:                  return 0;
	}
	if (w.len > cap)
		return 0;
	memcpy(buf, w.buf, w.len);
	return w.len;
}

/* ---------------------------------------------------------------------- */
/* The model's input vector as archived (store/record.h: model_in). */

#define REC_MVEC_FORMAT 1

vigil_err
store_model_vec_encode(const float *x, uint32_t n, void *buf, size_t cap, size_t *ret_len)
{
	uint8_t *p = buf, *bits;
	size_t nb = (n + 7) / 8, need = 3 + nb;

	if (n > STORE_MODEL_MAX_INPUTS)
		return VIGIL_EINVAL;
	for (uint32_t i = 0; i < n; i++)
		if (!isnan(x[i]))
			need += 4;
	if (need > cap)
		return VIGIL_ETOOBIG;
	p[0] = REC_MVEC_FORMAT;
	p[1] = (uint8_t)(n & 0xff);
	p[2] = (uint8_t)(n >> 8);
	bits = p + 3;
	memset(bits, 0, nb);
	p = bits + nb;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t u;

		if (isnan(x[i]))
			continue;
		bits[i / 8] |= (uint8_t)(1u << (i % 8));
		memcpy(&u, &x[i], 4);
		p[0] = (uint8_t)u;
		p[1] = (uint8_t)(u >> 8);
		p[2] = (uint8_t)(u >> 16);
		p[3] = (uint8_t)(u >> 24);
		p += 4;
	}
	*ret_len = need;
	return VIGIL_OK;
}

vigil_err
store_model_vec_decode(const void *buf, size_t len, float *ret_x, uint32_t cap, uint32_t *ret_n)
{
	const uint8_t *p = buf, *bits;
	uint32_t n, present = 0;
	size_t nb;

	if (len < 3 || p[0] != REC_MVEC_FORMAT)
		return VIGIL_EPROTO;
	n = (uint32_t)p[1] | (uint32_t)p[2] << 8;
	nb = (n + 7) / 8;
	if (n > cap)
		return VIGIL_ETOOBIG;
	if (len < 3 + nb)
		return VIGIL_EPROTO;
	bits = p + 3;
	for (uint32_t i = 0; i < n; i++)
		present += (bits[i / 8] >> (i % 8)) & 1u;
	/* bits past n must be clear: one vector, one encoding */
	if ((n % 8) != 0 && (bits[nb - 1] >> (n % 8)) != 0)
		return VIGIL_EPROTO;
	if (len != 3 + nb + 4 * (size_t)present)
		return VIGIL_EPROTO;
	p = bits + nb;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t u;

		if (((bits[i / 8] >> (i % 8)) & 1u) == 0) {
			ret_x[i] = NAN;
			continue;
		}
		u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
		memcpy(&ret_x[i], &u, 4);
		if (isnan(ret_x[i]))
			return VIGIL_EPROTO; /* present values are numbers */
		p += 4;
	}
	*ret_n = n;
	return VIGIL_OK;
}
