/* SPDX-License-Identifier: MIT */
/*
 * features/db/genwrite.c - a feature generation's profiles and thresholds
 * as vigil-rebuild writes them (genread.h): checked against their caps,
 * encoded (features/codec.h) and handed to store/ as bytes (store_genw_put,
 * store/gendir.h), and the threshold table's keys (genread.c reads by
 * them). The generation itself (begin, blobs, commit) is store/genw.c's.
 */
#include <string.h>

#include "codec.h"
#include "gendir.h"
#include "genread.h"

/* An id of a profile table: 1..VIGIL_ID_MAX bytes, NUL-terminated. */
static vigil_err
genw_put_id(store_genw *w, int dbi, const char *id, const wbuf *val)
{
	size_t n = id != NULL ? strnlen(id, VIGIL_ID_MAX + 1) : 0;

	if (n == 0 || n > VIGIL_ID_MAX)
		return VIGIL_EINVAL;
	return store_genw_put(w, dbi, id, n, val->buf, val->len);
}

/* Threshold key (genread.h): name '\0' group (group may be empty). */
vigil_err
gen_threshold_key(const char *name, const char *group, char *buf, size_t *ret_len)
{
	size_t nl, gl;

	if (name == NULL || group == NULL)
		return VIGIL_EINVAL;
	nl = strnlen(name, STORE_THRESHOLD_NAME_MAX + 1);
	gl = strnlen(group, STORE_THRESHOLD_NAME_MAX + 1);
	if (nl == 0 || nl > STORE_THRESHOLD_NAME_MAX || gl > STORE_THRESHOLD_NAME_MAX)
		return VIGIL_EINVAL;
	memcpy(buf, name, nl);
	buf[nl] = '\0';
	memcpy(buf + nl + 1, group, gl);
	*ret_len = nl + 1 + gl;
	return VIGIL_OK;
}

vigil_err
store_genw_put_card(store_genw *w, const char *card_id, const store_card_profile *p)
{
	wbuf val;

	if (p->ncountries > STORE_CARD_MAX_COUNTRIES || p->nmerchants > STORE_CARD_MAX_MERCHANTS)
		return VIGIL_EINVAL;
	gen_card_encode(p, &val);
	return genw_put_id(w, DBI_CARD, card_id, &val);
}

vigil_err
store_genw_put_merchant(store_genw *w, const char *merchant_id, const store_entity_profile *p)
{
	wbuf val;

	gen_entity_encode(p, &val);
	return genw_put_id(w, DBI_MERCHANT, merchant_id, &val);
}

vigil_err
store_genw_put_terminal(store_genw *w, const char *terminal_id, const store_entity_profile *p)
{
	wbuf val;

	gen_entity_encode(p, &val);
	return genw_put_id(w, DBI_TERMINAL, terminal_id, &val);
}

vigil_err
store_genw_put_threshold(store_genw *w, const char *name, const char *group,
    const store_threshold_val *v)
{
	char      key[2 * STORE_THRESHOLD_NAME_MAX + 1];
	size_t    klen;
	wbuf      val;
	vigil_err rv;

	rv = gen_threshold_key(name, group, key, &klen);
	if (rv != VIGIL_OK)
		return rv;
	gen_threshold_encode(v, &val);
	return store_genw_put(w, DBI_THRESHOLD, key, klen, val.buf, val.len);
}
