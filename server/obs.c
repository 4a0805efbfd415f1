/* SPDX-License-Identifier: MIT */
/*
 * server/obs.c - encode and decode a NATS message of observations (the
 * format is in obs.h). The decoder is what another process's bytes reach
 * first on the cluster path: it checks every length against what is left
 * and names the offset of what is wrong.
 */
#include <stdio.h>
#include <string.h>

#include "obs.h"

static const uint8_t obs_magic[4] = { 'V', 'O', 'B', '1' };

static uint8_t *
obs_put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		*p++ = (uint8_t)(v >> (8 * i));
	return p;
}

static uint8_t *
obs_put_id(uint8_t *p, const char *id, size_t cap)
{
	size_t l = strnlen(id, cap);

	*p++ = (uint8_t)l;
	memcpy(p, id, l);
	return p + l;
}

size_t
srv_obs_encode(const srv_obs *recs, uint32_t n, uint8_t *buf)
{
	uint8_t *p = buf;

	memcpy(p, obs_magic, 4);
	p += 4;
	for (int i = 0; i < 4; i++)
		*p++ = (uint8_t)(n >> (8 * i));
	for (uint32_t i = 0; i < n; i++) {
		const store_observation *o = &recs[i].obs;

		p = obs_put64(p, (uint64_t)o->event_time_ms);
		p = obs_put64(p, o->card_hash);
		p = obs_put64(p, (uint64_t)recs[i].committed_us);
		p = obs_put_id(p, o->merchant_id, VIGIL_ID_MAX);
		p = obs_put_id(p, o->terminal_id, VIGIL_ID_MAX);
		p = obs_put_id(p, o->device_id, VIGIL_ID_MAX);
		p = obs_put_id(p, o->ip, VIGIL_IP_MAX);
	}
	return (size_t)(p - buf);
}

typedef struct obs_rd {
	const uint8_t *b;
	size_t         len, off;
	char          *err;
	size_t         errlen;
} obs_rd;

static vigil_err
obs_fail(obs_rd *r, const char *what)
{
	snprintf(r->err, r->errlen, "offset %zu: %s", r->off, what);
	return VIGIL_EINVAL;
}

static vigil_err
obs_get64(obs_rd *r, uint64_t *ret, const char *what)
{
	uint64_t v = 0;

	if (r->len - r->off < 8) {
		snprintf(r->err, r->errlen, "offset %zu: %s: truncated (%zu of 8 bytes)", r->off,
		    what, r->len - r->off);
		return VIGIL_EINVAL;
	}
	for (int i = 0; i < 8; i++)
		v |= (uint64_t)r->b[r->off + (size_t)i] << (8 * i);
	r->off += 8;
	*ret = v;
	return VIGIL_OK;
}

/* One id into dst (cap + 1 bytes): its length byte, then its bytes. */
static vigil_err
obs_get_id(obs_rd *r, char *dst, size_t cap, bool required, const char *what)
{
	size_t l;

	if (r->off >= r->len) {
		snprintf(r->err, r->errlen, "offset %zu: %s: truncated (no length byte)", r->off,
		    what);
		return VIGIL_EINVAL;
	}
	l = r->b[r->off];
	if (l > cap) {
		snprintf(r->err, r->errlen, "offset %zu: %s: %zu bytes, at most %zu", r->off, what,
		    l, cap);
		return VIGIL_EINVAL;
	}
	if (l == 0 && required) {
		snprintf(r->err, r->errlen, "offset %zu: %s: empty", r->off, what);
		return VIGIL_EINVAL;
	}
	if (r->len - r->off - 1 < l) {
		snprintf(r->err, r->errlen, "offset %zu: %s: truncated (%zu of %zu bytes)",
		    r->off + 1, what, r->len - r->off - 1, l);
		return VIGIL_EINVAL;
	}
	if (memchr(r->b + r->off + 1, '\0', l) != NULL) {
		snprintf(r->err, r->errlen, "offset %zu: %s: holds a NUL byte", r->off + 1, what);
		return VIGIL_EINVAL;
	}
	memcpy(dst, r->b + r->off + 1, l);
	dst[l] = '\0';
	r->off += 1 + l;
	return VIGIL_OK;
}

vigil_err
srv_obs_decode(const void *buf, size_t len, srv_obs *recs, uint32_t *ret_n, char *errbuf,
    size_t errlen)
{
	obs_rd    r = { .b = buf, .len = len, .off = 0, .err = errbuf, .errlen = errlen };
	uint32_t  n = 0;
	vigil_err rv;

	if (len < SRV_OBS_HEADER)
		return obs_fail(&r, "truncated header (magic \"VOB1\" and count)");
	if (memcmp(r.b, obs_magic, 4) != 0)
		return obs_fail(&r, "bad magic (not \"VOB1\")");
	r.off = 4;
	for (int i = 0; i < 4; i++)
		n |= (uint32_t)r.b[4 + i] << (8 * i);
	if (n == 0 || n > SRV_OBS_BATCH_MAX) {
		snprintf(errbuf, errlen, "offset 4: count %u out of range 1..%d", n,
		    SRV_OBS_BATCH_MAX);
		return VIGIL_EINVAL;
	}
	r.off = SRV_OBS_HEADER;
	for (uint32_t i = 0; i < n; i++) {
		srv_obs *o = &recs[i];
		uint64_t v;

		memset(o, 0, sizeof *o);
		if ((rv = obs_get64(&r, &v, "event_time_ms")) != VIGIL_OK)
			return rv;
		o->obs.event_time_ms = (int64_t)v;
		if ((rv = obs_get64(&r, &o->obs.card_hash, "card_hash")) != VIGIL_OK)
			return rv;
		if ((rv = obs_get64(&r, &v, "committed_us")) != VIGIL_OK)
			return rv;
		o->committed_us = (int64_t)v;
		if ((rv = obs_get_id(&r, o->obs.merchant_id, VIGIL_ID_MAX, true, "merchant_id")) !=
		    VIGIL_OK)
			return rv;
		if ((rv = obs_get_id(&r, o->obs.terminal_id, VIGIL_ID_MAX, false, "terminal_id")) !=
		    VIGIL_OK)
			return rv;
		if ((rv = obs_get_id(&r, o->obs.device_id, VIGIL_ID_MAX, false, "device_id")) !=
		    VIGIL_OK)
			return rv;
		if ((rv = obs_get_id(&r, o->obs.ip, VIGIL_IP_MAX, false, "ip")) != VIGIL_OK)
			return rv;
	}
	if (r.off != len) {
		snprintf(errbuf, errlen, "offset %zu: %zu trailing byte(s) after %u record(s)", r.off,
		    len - r.off, n);
		return VIGIL_EINVAL;
	}
	*ret_n = n;
	return VIGIL_OK;
}
