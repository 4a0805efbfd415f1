/* SPDX-License-Identifier: MIT */
/*
 * console/index_query.c - the reading side of the console's index
 * (index.c; docs/console.md, "The index"): the review queue's pages and
 * cursors, every case of a time range, a case and a transaction's label
 * by id, a card's history, the per-rule daily counters and the claims on
 * cases. Each call is one LMDB transaction.
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "index_int.h"
#include "vec.h"

/* Cases a page ordered by score keeps in memory (offset + limit of them, in
 * a heap): past this the query is refused with VIGIL_ELIMIT. */
#define IX_MAX_MATCHES (16u << 20)

typedef struct ix_match {
	float   score;
	int64_t t;
	uint8_t key[8 + VIGIL_ID_MAX];
	uint8_t klen;
} ix_match;

static int
ix_match_cmp(const void *a, const void *b)
{
	const ix_match *x = a, *y = b;

	if (x->score != y->score)
		return x->score > y->score ? -1 : 1;
	if (x->t != y->t)
		return x->t > y->t ? -1 : 1;
	return memcmp(x->key, y->key, sizeof x->key);
}

/* Queue cursors, in hex: "t" and the cases key (time, txn id) of a page's
 * last row newest first; by score "s", its score's bits, then that key. */
static void
ix_cursor_format(const ix_match *m, bool by_score, char ret[CON_CURSOR_MAX])
{
	uint8_t b[4 + sizeof m->key];
	size_t n = 0;
	uint32_t bits;

	if (by_score) {
		memcpy(&bits, &m->score, 4);
		for (int i = 3; i >= 0; i--)
			b[n++] = (uint8_t)(bits >> (8 * i));
	}
	memcpy(b + n, m->key, m->klen);
	n += m->klen;
	ret[0] = by_score ? 's' : 't';
	for (size_t i = 0; i < n; i++)
		snprintf(ret + 1 + 2 * i, 3, "%02x", b[i]);
}

static bool
ix_cursor_parse(const char *c, bool by_score, ix_match *ret)
{
	size_t hl = strlen(c), n = hl / 2, skip = by_score ? 4 : 0;
	uint8_t b[4 + sizeof ret->key];
	uint32_t bits = 0;

	if (c[0] != (by_score ? 's' : 't') || hl % 2 == 0 || n < skip + 8 || n > skip +
	    sizeof ret->key)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned x;

		if (!isxdigit((unsigned char)c[1 + 2 * i]) ||
		    !isxdigit((unsigned char)c[2 + 2 * i]) || sscanf(c + 1 + 2 * i, "%2x", &x) != 1)
			return false;
		b[i] = (uint8_t)x;
	}
	memset(ret, 0, sizeof *ret);
	for (size_t i = 0; i < skip; i++)
		bits = bits << 8 | b[i];
	memcpy(&ret->score, &bits, 4);
	ret->klen = (uint8_t)(n - skip);
	memcpy(ret->key, b + skip, ret->klen);
	ret->t = (int64_t)(ix_get_be64(ret->key) ^ (1ull << 63));
	return true;
}

/* LMDB's order of keys: bytes, then the shorter first. */
static int
ix_key_cmp(const MDB_val *k, const ix_match *m)
{
	size_t l = k->mv_size < m->klen ? k->mv_size : m->klen;
	int d = memcmp(k->mv_data, m->key, l);

	return d != 0 ? d : (k->mv_size > m->klen) - (k->mv_size < m->klen);
}

static bool
ix_case_matches(const con_case *c, const con_query *q, int rule_id)
{
	if (q->decision != 0 && c->decision != q->decision)
		return false;
	if (q->status == 0 && c->label >= 0)
		return false;
	if (q->status == 1 && c->label < 0)
		return false;
	if (q->card[0] != '\0' && strcmp(c->card_id, q->card) != 0)
		return false;
	if (q->merchant[0] != '\0' && strcmp(c->merchant_id, q->merchant) != 0)
		return false;
	if (q->min_amount >= 0) {
		int e = vigil_currency_exponent(c->currency);
		double amt = (double)c->amount_minor / pow(10, e < 0 ? 2 : e);
		if (amt < q->min_amount)
			return false;
	}
	if (rule_id >= 0) {
		bool hit = false;
		for (uint32_t i = 0; i < c->nhits && !hit; i++)
			hit = c->hits[i] == rule_id;
		if (!hit)
			return false;
	}
	return true;
}

/*
 * Keeps the first `keep` matches in score order in h, a heap whose root is
 * the last of them: a page by score holds offset + limit matches, not every
 * match of the range (16M of them were 1.5 GB and a sort on the event loop).
 */
static vigil_err
ix_top_add(vigil_vec *h, size_t keep, const ix_match *mt)
{
	ix_match *m = h->data;
	size_t i, n = h->len;
	vigil_err rv;

	if (n == keep) {
		if (n == 0 || ix_match_cmp(mt, &m[0]) >= 0)
			return VIGIL_OK;
		for (i = 0;;) { /* the root goes; mt sifts down from there */
			size_t ch = 2 * i + 1;

			if (ch >= n)
				break;
			if (ch + 1 < n && ix_match_cmp(&m[ch + 1], &m[ch]) > 0)
				ch++;
			if (ix_match_cmp(&m[ch], mt) <= 0)
				break;
			m[i] = m[ch];
			i = ch;
		}
		m[i] = *mt;
		return VIGIL_OK;
	}
	if ((rv = vigil_vec_push(h, mt)) != VIGIL_OK)
		return rv;
	m = h->data;
	for (i = n; i > 0 && ix_match_cmp(&m[(i - 1) / 2], &m[i]) < 0; i = (i - 1) / 2) {
		ix_match tmp = m[i];

		m[i] = m[(i - 1) / 2];
		m[(i - 1) / 2] = tmp;
	}
	return VIGIL_OK;
}

vigil_err
con_index_query(con_index *ix, const con_query *q, con_case *ret_cases, uint32_t cap,
    uint32_t *ret_n, uint64_t *ret_total, double *ret_ms)
{
	return con_index_query_page(ix, q, ret_cases, cap, ret_n, ret_total, ret_ms, NULL);
}

vigil_err
con_index_query_page(con_index *ix, const con_query *q, con_case *ret_cases, uint32_t cap,
    uint32_t *ret_n, uint64_t *ret_total, double *ret_ms, con_page *ret_page)
{
	uint64_t t0 = vigil_mono_ns();
	MDB_txn *txn = NULL;
	MDB_cursor *c = NULL;
	MDB_val k, v;
	uint8_t kb[8];
	int rule_id = -1;
	uint64_t total = 0;
	uint32_t n = 0, limit = q->limit < cap ? q->limit : cap;
	vigil_vec matches; /* ix_match, for an order by score */
	ix_match cur = { 0 }, last = { 0 };
	bool has_cur = q->after[0] != '\0';
	con_page pg = { 0, "" };
	vigil_err rv = VIGIL_OK;
	int rc;

	*ret_n = 0;
	*ret_total = 0;
	vigil_vec_init(&matches, sizeof(ix_match), IX_MAX_MATCHES);
	if (has_cur && !ix_cursor_parse(q->after, q->by_score, &cur)) {
		rv = VIGIL_EINVAL;
		goto out;
	}
	if (q->rule[0] != '\0') {
		uint16_t id;
		if (con_index_rule_id(ix, q->rule, &id) != VIGIL_OK)
			goto done; /* no case ever hit it */
		rule_id = id;
	}
	rc = mdb_txn_begin(ix->env, NULL, MDB_RDONLY, &txn);
	if (rc == 0)
		rc = mdb_cursor_open(txn, ix->cases, &c);
	if (rc != 0) {
		rv = ix_err(rc);
		goto out;
	}
	/* newest first: from the first key at or after `to`, step back */
	ix_be64(kb, ix_time_key(q->to_ms));
	k.mv_size = 8;
	k.mv_data = kb;
	rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
	rc = rc == 0 ? mdb_cursor_get(c, &k, &v, MDB_PREV) : mdb_cursor_get(c, &k, &v, MDB_LAST);
	for (; rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_PREV)) {
		con_case cs;

		if (k.mv_size < 8 || v.mv_size != sizeof cs)
			continue;
		int64_t t = (int64_t)(ix_get_be64(k.mv_data) ^ (1ull << 63));
		if (t < q->from_ms)
			break;
		memcpy(&cs, v.mv_data, sizeof cs);
		if (!ix_case_matches(&cs, q, rule_id))
			continue;
		total++;
		ix_match mt = { .score = cs.score, .t = t };

		mt.klen = (uint8_t)(k.mv_size < sizeof mt.key ? k.mv_size : sizeof mt.key);
		memcpy(mt.key, k.mv_data, mt.klen);
		if (!q->by_score) {
			if (has_cur ? ix_key_cmp(&k, &cur) >= 0 : total <= q->offset)
				pg.offset++; /* above the page */
			else if (n < limit) {
				ret_cases[n++] = cs;
				last = mt;
			}
			continue;
		}
		if (has_cur && ix_match_cmp(&mt, &cur) <= 0) {
			pg.offset++; /* above the page */
			continue;
		}
		rv = ix_top_add(&matches, has_cur ? limit : (size_t)q->offset + limit, &mt);
		if (rv != VIGIL_OK) {
			rv = rv == VIGIL_ETOOBIG ? VIGIL_ELIMIT : rv;
			goto out;
		}
	}
	if (q->by_score && matches.len > 0) {
		ix_match *m = matches.data;
		size_t from = has_cur ? 0 : q->offset < matches.len ? q->offset : matches.len;

		qsort(m, matches.len, sizeof *m, ix_match_cmp);
		if (!has_cur)
			pg.offset = q->offset < total ? q->offset : total;
		for (size_t i = from; i < matches.len && n < limit; i++) {
			MDB_val kk = { m[i].klen, m[i].key };
			if (mdb_get(txn, ix->cases, &kk, &v) == 0 && v.mv_size == sizeof(con_case)) {
				memcpy(&ret_cases[n++], v.mv_data, sizeof(con_case));
				last = m[i];
			}
		}
	}
	if (n > 0 && total > pg.offset + n)
		ix_cursor_format(&last, q->by_score, pg.next);
done:
	*ret_n = n;
	*ret_total = total;
	if (ret_page != NULL)
		*ret_page = pg;
out:
	vigil_vec_fini(&matches);
	if (c != NULL)
		mdb_cursor_close(c);
	if (txn != NULL)
		mdb_txn_abort(txn);
	if (ret_ms != NULL)
		*ret_ms = (double)(vigil_mono_ns() - t0) / 1e6;
	return rv;
}

vigil_err
con_index_cases_each(con_index *ix, int64_t from_ms, int64_t to_ms, uint64_t max,
    bool (*fn)(void *arg, const con_case *c), void *arg, bool *ret_truncated)
{
	MDB_txn *txn = NULL;
	MDB_cursor *c = NULL;
	MDB_val k, v;
	uint8_t kb[8];
	uint64_t n = 0;
	int rc;

	*ret_truncated = false;
	rc = mdb_txn_begin(ix->env, NULL, MDB_RDONLY, &txn);
	if (rc == 0)
		rc = mdb_cursor_open(txn, ix->cases, &c);
	ix_be64(kb, ix_time_key(from_ms));
	k.mv_size = 8;
	k.mv_data = kb;
	if (rc == 0)
		rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
	for (; rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		con_case cs;

		if (k.mv_size < 8 || v.mv_size != sizeof cs)
			continue;
		if ((int64_t)(ix_get_be64(k.mv_data) ^ (1ull << 63)) >= to_ms)
			break;
		if (n++ == max) {
			*ret_truncated = true;
			break;
		}
		memcpy(&cs, v.mv_data, sizeof cs);
		if (!fn(arg, &cs))
			break;
	}
	if (c != NULL)
		mdb_cursor_close(c);
	if (txn != NULL)
		mdb_txn_abort(txn);
	return rc == 0 || rc == MDB_NOTFOUND ? VIGIL_OK : ix_err(rc);
}

vigil_err
con_index_case(con_index *ix, const char *txn_id, con_case *ret_case)
{
	MDB_txn *txn;
	uint8_t kb[8 + VIGIL_ID_MAX];
	MDB_val tk, v;
	int rc;

	rc = mdb_txn_begin(ix->env, NULL, MDB_RDONLY, &txn);
	if (rc != 0)
		return ix_err(rc);
	rc = ix_case_key(ix, txn, txn_id, kb, &tk);
	if (rc == 0)
		rc = mdb_get(txn, ix->cases, &tk, &v);
	if (rc == 0 && v.mv_size != sizeof *ret_case)
		rc = MDB_CORRUPTED;
	if (rc == 0)
		memcpy(ret_case, v.mv_data, sizeof *ret_case);
	mdb_txn_abort(txn);
	return ix_err(rc);
}

vigil_err
con_index_txn_label(con_index *ix, const char *txn_id, int *ret_label, int64_t *ret_amount,
    char ret_currency[4])
{
	MDB_txn *txn;
	MDB_val k = ix_str(txn_id), v;
	int rc;

	*ret_label = -1;
	*ret_amount = -1;
	ret_currency[0] = '\0';
	if (k.mv_size == 0)
		return VIGIL_ENOTFOUND;
	rc = mdb_txn_begin(ix->env, NULL, MDB_RDONLY, &txn);
	if (rc != 0)
		return ix_err(rc);
	rc = mdb_get(txn, ix->hits, &k, &v);
	if (rc == 0 && v.mv_size >= 6) {
		const uint8_t *p = v.mv_data;
		size_t at = 6 + 2 * (size_t)p[5];
		*ret_label = (int8_t)p[4];
		if (v.mv_size >= at + 11) {
			memcpy(ret_amount, p + at, 8);
			memcpy(ret_currency, p + at + 8, 3);
			ret_currency[3] = '\0';
		}
	}
	mdb_txn_abort(txn);
	return ix_err(rc);
}

int
con_index_label_of(con_index *ix, const char *txn_id)
{
	MDB_txn *txn;
	MDB_val k = ix_str(txn_id), v;
	int label = -1;

	if (k.mv_size == 0 || mdb_txn_begin(ix->env, NULL, MDB_RDONLY, &txn) != 0)
		return -1;
	if (mdb_get(txn, ix->hits, &k, &v) == 0 && v.mv_size >= 6)
		label = (int8_t)((const uint8_t *)v.mv_data)[4];
	mdb_txn_abort(txn);
	return label;
}

vigil_err
con_index_card_history(con_index *ix, const char *card_id, con_card_txn *ret, uint32_t cap,
    uint32_t *ret_n)
{
	MDB_txn *txn = NULL;
	MDB_cursor *c = NULL;
	MDB_val k = ix_str(card_id), v;
	uint32_t n = 0;
	int rc;

	*ret_n = 0;
	if (k.mv_size == 0)
		return VIGIL_ENOTFOUND;
	rc = mdb_txn_begin(ix->env, NULL, MDB_RDONLY, &txn);
	if (rc == 0)
		rc = mdb_cursor_open(txn, ix->cards, &c);
	if (rc == 0)
		rc = mdb_cursor_get(c, &k, &v, MDB_SET);
	if (rc == 0)
		rc = mdb_cursor_get(c, &k, &v, MDB_LAST_DUP);
	for (; rc == 0 && n < cap; rc = mdb_cursor_get(c, &k, &v, MDB_PREV_DUP)) {
		const uint8_t *p = v.mv_data, *end = p + v.mv_size;
		con_card_txn *t = &ret[n];
		uint8_t l;

		if (v.mv_size < 8 + 8 + 4 + 1 + 3 + 2)
			continue;
		memset(t, 0, sizeof *t);
		t->event_time_ms = (int64_t)(ix_get_be64(p) ^ (1ull << 63)); p += 8;
		memcpy(&t->amount_minor, p, 8); p += 8;
		memcpy(&t->score, p, 4); p += 4;
		t->decision = *p++;
		memcpy(t->currency, p, 3); p += 3;
		l = *p++;
		if (l > VIGIL_ID_MAX || p + l + 1 > end)
			continue;
		memcpy(t->txn_id, p, l); p += l;
		l = *p++;
		if (l > VIGIL_ID_MAX || p + l > end)
			continue;
		memcpy(t->merchant_id, p, l);
		n++;
	}
	if (c != NULL)
		mdb_cursor_close(c);
	if (txn != NULL)
		mdb_txn_abort(txn);
	*ret_n = n;
	return rc == 0 || rc == MDB_NOTFOUND ? VIGIL_OK : ix_err(rc);
}

vigil_err
con_index_stats(con_index *ix, int64_t day_from, int64_t day_to,
    void (*fn)(void *arg, uint16_t rule, const con_stat *st), void *arg)
{
	MDB_txn *txn = NULL;
	MDB_cursor *c = NULL;
	MDB_val k, v;
	uint8_t kb[6] = { 0 };
	con_stat *sum = calloc(CON_RULES_MAX + 1, sizeof *sum);
	int rc;

	if (sum == NULL)
		return VIGIL_ENOMEM;
	uint32_t d = (uint32_t)(day_from < 0 ? 0 : day_from);
	kb[0] = (uint8_t)(d >> 24); kb[1] = (uint8_t)(d >> 16); kb[2] = (uint8_t)(d >> 8);
	kb[3] = (uint8_t)d;
	k.mv_size = 6;
	k.mv_data = kb;
	rc = mdb_txn_begin(ix->env, NULL, MDB_RDONLY, &txn);
	if (rc == 0)
		rc = mdb_cursor_open(txn, ix->stats, &c);
	if (rc == 0)
		rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
	for (; rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		const uint8_t *p = k.mv_data;
		con_stat st;
		uint32_t day;
		uint16_t rule;

		if (k.mv_size != 6 || v.mv_size != sizeof st)
			continue;
		day = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
		if ((int64_t)day > day_to)
			break;
		rule = (uint16_t)(p[4] << 8 | p[5]);
		memcpy(&st, v.mv_data, sizeof st);
		con_stat *s = &sum[rule == CON_STAT_TOTAL ? CON_RULES_MAX : rule % CON_RULES_MAX];
		s->n += st.n;
		s->fraud += st.fraud;
		s->legit += st.legit;
		s->alerts += st.alerts;
	}
	if (c != NULL)
		mdb_cursor_close(c);
	if (txn != NULL)
		mdb_txn_abort(txn);
	if (rc == 0 || rc == MDB_NOTFOUND) {
		for (uint32_t i = 0; i < ix->nrules; i++)
			fn(arg, (uint16_t)i, &sum[i]);
		fn(arg, CON_STAT_TOTAL, &sum[CON_RULES_MAX]);
		rc = 0;
	}
	free(sum);
	return ix_err(rc);
}

/* ---- claims ---- */

vigil_err
con_index_claim_get(con_index *ix, const char *txn_id, int64_t now_ms, con_claim *ret_claim)
{
	MDB_txn *txn;
	MDB_val k = ix_str(txn_id), v;
	vigil_err rv = VIGIL_ENOTFOUND;

	if (k.mv_size == 0 || mdb_txn_begin(ix->env, NULL, MDB_RDONLY, &txn) != 0)
		return VIGIL_ENOTFOUND;
	if (mdb_get(txn, ix->claims, &k, &v) == 0 && v.mv_size == sizeof *ret_claim) {
		con_claim cl;
		memcpy(&cl, v.mv_data, sizeof cl);
		if (cl.until_ms > now_ms) {
			*ret_claim = cl;
			rv = VIGIL_OK;
		}
	}
	mdb_txn_abort(txn);
	return rv;
}

vigil_err
con_index_claim(con_index *ix, const char *txn_id, const char *who, int64_t now_ms,
    int64_t ttl_ms, con_claim *ret_claim, con_claim *ret_prev)
{
	MDB_txn *txn;
	MDB_val k = ix_str(txn_id), v;
	con_claim cl, prev;
	int rc;

	memset(&prev, 0, sizeof prev);
	rc = mdb_txn_begin(ix->env, NULL, 0, &txn);
	if (rc != 0)
		return ix_err(rc);
	if (mdb_get(txn, ix->claims, &k, &v) == 0 && v.mv_size == sizeof cl) {
		memcpy(&cl, v.mv_data, sizeof cl);
		if (cl.until_ms > now_ms && strcmp(cl.who, who) != 0) {
			mdb_txn_abort(txn);
			*ret_claim = cl;
			return VIGIL_EBUSY;
		}
		if (cl.until_ms > now_ms)
			prev = cl; /* a renewal */
	}
	memset(&cl, 0, sizeof cl);
	snprintf(cl.who, sizeof cl.who, "%s", who);
	cl.until_ms = now_ms + ttl_ms;
	v.mv_size = sizeof cl;
	v.mv_data = &cl;
	rc = mdb_put(txn, ix->claims, &k, &v, 0);
	if (rc != 0) {
		mdb_txn_abort(txn);
		return ix_err(rc);
	}
	rc = mdb_txn_commit(txn);
	if (rc == 0) {
		*ret_claim = cl;
		*ret_prev = prev;
	}
	return ix_err(rc);
}

vigil_err
con_index_unclaim(con_index *ix, const char *txn_id, const char *who, int64_t now_ms,
    bool any, con_claim *ret_prev)
{
	MDB_txn *txn;
	MDB_val k = ix_str(txn_id), v;
	con_claim cl, prev;
	int rc;

	memset(&prev, 0, sizeof prev);
	rc = mdb_txn_begin(ix->env, NULL, 0, &txn);
	if (rc != 0)
		return ix_err(rc);
	rc = mdb_get(txn, ix->claims, &k, &v);
	if (rc == 0 && v.mv_size == sizeof cl) {
		memcpy(&cl, v.mv_data, sizeof cl);
		if (cl.until_ms > now_ms && strcmp(cl.who, who) != 0 && !any) {
			mdb_txn_abort(txn);
			if (ret_prev != NULL)
				*ret_prev = cl;
			return VIGIL_EBUSY;
		}
		if (cl.until_ms > now_ms)
			prev = cl;
		rc = mdb_del(txn, ix->claims, &k, NULL); /* live and released, or expired */
	}
	if (rc != 0 && rc != MDB_NOTFOUND) {
		mdb_txn_abort(txn);
		return ix_err(rc);
	}
	rc = mdb_txn_commit(txn);
	if (rc == 0 && ret_prev != NULL)
		*ret_prev = prev;
	return ix_err(rc);
}
