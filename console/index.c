/* SPDX-License-Identifier: MIT */
/*
 * console/index.c - the console's own LMDB index of the archive
 * (STATE/index; docs/console.md, "The index"). A consumer of the log: it
 * reads records past a committed position (tail.c's reader) and keeps
 *   cases   BE64(event time) + txn_id -> con_case   (reviews and declines)
 *   byid    txn_id -> BE64(event time)             (a case by its id)
 *   hits    txn_id -> day, label, rule ids         (any record with a hit:
 *                                                   per-rule precision as
 *                                                   labels arrive later)
 *   cards   card_id -> BE64(time) + summary, DUPSORT, last CON_CARD_HISTORY
 *   stats   BE32(day) + BE16(rule) -> con_stat
 *   rules   rule name -> u16 id
 *   claims  txn_id -> con_claim
 *   meta    "pos" -> con_tailpos (the committed position)
 * Each batch of records and the position after it are committed in one
 * write transaction, so a restart resumes exactly where it stopped and a
 * crash loses nothing but the uncommitted batch, which is read again.
 * Here: opening, the ingest, labels and retention; the queries are
 * index_query.c's.
 */
#include <errno.h>
#include <lmdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "index_int.h"

static vigil_err
ix_load_rules(con_index *ix, MDB_txn *txn)
{
	MDB_cursor *c;
	MDB_val k, v;
	int rc;

	for (uint32_t i = 0; i < ix->nrules; i++) {
		free(ix->rule_names[i]);
		ix->rule_names[i] = NULL;
	}
	ix->nrules = 0;
	rc = mdb_cursor_open(txn, ix->rules, &c);
	if (rc != 0)
		return ix_err(rc);
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		uint16_t id;
		if (v.mv_size != 2 || k.mv_size == 0 || k.mv_size > 63)
			continue;
		memcpy(&id, v.mv_data, 2);
		if (id >= CON_RULES_MAX)
			continue;
		free(ix->rule_names[id]);
		ix->rule_names[id] = strndup(k.mv_data, k.mv_size);
		if (id + 1u > ix->nrules)
			ix->nrules = id + 1u;
	}
	mdb_cursor_close(c);
	ix->nrules_committed = ix->nrules;
	return VIGIL_OK;
}

vigil_err
con_index_open(const char *dir, uint32_t map_gib, con_index **ret_ix, char *errbuf, size_t errlen)
{
	con_index *ix = calloc(1, sizeof *ix);
	MDB_txn *txn = NULL;
	MDB_val k, v;
	int rc;
	vigil_err rv;

	if (ix == NULL)
		return VIGIL_ENOMEM;
	ix->rec = malloc(sizeof *ix->rec);
	ix->deltas = calloc(IX_STATS_SLOTS, sizeof *ix->deltas);
	if (ix->rec == NULL || ix->deltas == NULL) {
		rv = VIGIL_ENOMEM;
		goto fail;
	}
	if (mkdir(dir, 0750) != 0 && errno != EEXIST) {
		snprintf(errbuf, errlen, "%s: %s", dir, strerror(errno));
		rv = vigil_err_from_errno(errno);
		goto fail;
	}
	if ((rc = mdb_env_create(&ix->env)) != 0 ||
	    (rc = mdb_env_set_maxdbs(ix->env, 8)) != 0 ||
	    (rc = mdb_env_set_mapsize(ix->env, (size_t)map_gib << 30)) != 0 ||
	    /* No sync per commit: the index is rebuilt from the archive, and
	     * LMDB keeps it consistent (a crash only undoes the last commits,
	     * position included, which are then read again). Synced when the
	     * tail catches up (con_index_ingest). */
	    (rc = mdb_env_open(ix->env, dir, MDB_NOTLS | MDB_NOSYNC, 0640)) != 0) {
		snprintf(errbuf, errlen, "%s: %s", dir, mdb_strerror(rc));
		rv = ix_err(rc);
		goto fail;
	}
	if ((rc = mdb_txn_begin(ix->env, NULL, 0, &txn)) != 0 ||
	    (rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &ix->meta)) != 0 ||
	    (rc = mdb_dbi_open(txn, "cases", MDB_CREATE, &ix->cases)) != 0 ||
	    (rc = mdb_dbi_open(txn, "byid", MDB_CREATE, &ix->byid)) != 0 ||
	    (rc = mdb_dbi_open(txn, "hits", MDB_CREATE, &ix->hits)) != 0 ||
	    (rc = mdb_dbi_open(txn, "cards", MDB_CREATE | MDB_DUPSORT, &ix->cards)) != 0 ||
	    (rc = mdb_dbi_open(txn, "stats", MDB_CREATE, &ix->stats)) != 0 ||
	    (rc = mdb_dbi_open(txn, "rules", MDB_CREATE, &ix->rules)) != 0 ||
	    (rc = mdb_dbi_open(txn, "claims", MDB_CREATE, &ix->claims)) != 0) {
		snprintf(errbuf, errlen, "%s: %s", dir, mdb_strerror(rc));
		rv = ix_err(rc);
		goto fail;
	}
	k = ix_str("version");
	if (mdb_get(txn, ix->meta, &k, &v) == 0) {
		uint32_t ver = 0;
		if (v.mv_size == 4)
			memcpy(&ver, v.mv_data, 4);
		if (ver != CON_CASE_VERSION) {
			snprintf(errbuf, errlen, "%s: index layout %u, this build writes %u: remove the "
			    "directory and the console rebuilds it from the archive", dir, ver,
			    CON_CASE_VERSION);
			rv = VIGIL_EVERSION;
			goto fail;
		}
	} else {
		uint32_t ver = CON_CASE_VERSION;
		MDB_val vv = { 4, &ver };
		if ((rc = mdb_put(txn, ix->meta, &k, &vv, 0)) != 0) {
			snprintf(errbuf, errlen, "%s: %s", dir, mdb_strerror(rc));
			rv = ix_err(rc);
			goto fail;
		}
	}
	k = ix_str("pos");
	if (mdb_get(txn, ix->meta, &k, &v) == 0 && v.mv_size == sizeof ix->pos)
		memcpy(&ix->pos, v.mv_data, sizeof ix->pos);
	rv = ix_load_rules(ix, txn);
	if (rv != VIGIL_OK)
		goto fail;
	if ((rc = mdb_txn_commit(txn)) != 0) {
		txn = NULL;
		snprintf(errbuf, errlen, "%s: %s", dir, mdb_strerror(rc));
		rv = ix_err(rc);
		goto fail;
	}
	txn = NULL;
	*ret_ix = ix;
	return VIGIL_OK;
fail:
	if (txn != NULL)
		mdb_txn_abort(txn);
	con_index_close(ix);
	return rv;
}

void
con_index_close(con_index *ix)
{
	if (ix == NULL)
		return;
	con_tail_free(ix->tail);
	if (ix->env != NULL)
		mdb_env_close(ix->env);
	for (uint32_t i = 0; i < ix->nrules; i++)
		free(ix->rule_names[i]);
	free(ix->rec);
	free(ix->deltas);
	free(ix);
}

void
con_index_pos(con_index *ix, con_tailpos *ret_pos)
{
	*ret_pos = ix->pos;
}

const char *
con_index_rule_name(con_index *ix, uint16_t id)
{
	return id < ix->nrules ? ix->rule_names[id] : NULL;
}

vigil_err
con_index_rule_id(con_index *ix, const char *name, uint16_t *ret_id)
{
	for (uint32_t i = 0; i < ix->nrules; i++) {
		if (ix->rule_names[i] != NULL && strcmp(ix->rule_names[i], name) == 0) {
			*ret_id = (uint16_t)i;
			return VIGIL_OK;
		}
	}
	return VIGIL_ENOTFOUND;
}

static vigil_err
ix_rule_intern(con_index *ix, MDB_txn *txn, const char *name, uint16_t *ret_id)
{
	MDB_val k, v;
	uint16_t id;
	int rc;

	if (con_index_rule_id(ix, name, ret_id) == VIGIL_OK)
		return VIGIL_OK;
	if (ix->nrules >= CON_RULES_MAX)
		return VIGIL_ELIMIT;
	id = (uint16_t)ix->nrules;
	k = ix_str(name);
	v.mv_size = 2;
	v.mv_data = &id;
	rc = mdb_put(txn, ix->rules, &k, &v, 0);
	if (rc != 0)
		return ix_err(rc);
	ix->rule_names[id] = strdup(name);
	if (ix->rule_names[id] == NULL)
		return VIGIL_ENOMEM;
	ix->nrules++;
	*ret_id = id;
	return VIGIL_OK;
}

/* ---- per-day statistics, summed in memory per batch ---- */

static ix_stat_delta *
ix_delta(con_index *ix, int64_t day, uint16_t rule)
{
	uint64_t key = (uint64_t)day << 16 | rule;
	uint64_t h = key * 0x9E3779B97F4A7C15ull;

	for (uint32_t i = 0; i < IX_STATS_SLOTS; i++) {
		ix_stat_delta *d = &ix->deltas[(h + i) & (IX_STATS_SLOTS - 1)];
		if (d->key == key)
			return d;
		if (d->key == 0) {
			if (ix->ndeltas >= IX_STATS_SLOTS / 2)
				return NULL; /* caller flushes */
			d->key = key;
			ix->ndeltas++;
			return d;
		}
	}
	return NULL;
}

static vigil_err
ix_stats_flush(con_index *ix, MDB_txn *txn)
{
	for (uint32_t i = 0; i < IX_STATS_SLOTS; i++) {
		ix_stat_delta *d = &ix->deltas[i];
		uint8_t kb[6];
		MDB_val k = { 6, kb }, v;
		con_stat st = { 0 };
		int rc;

		if (d->key == 0)
			continue;
		uint32_t day = (uint32_t)(d->key >> 16);
		kb[0] = (uint8_t)(day >> 24); kb[1] = (uint8_t)(day >> 16);
		kb[2] = (uint8_t)(day >> 8);  kb[3] = (uint8_t)day;
		kb[4] = (uint8_t)(d->key >> 8); kb[5] = (uint8_t)d->key;
		rc = mdb_get(txn, ix->stats, &k, &v);
		if (rc == 0 && v.mv_size == sizeof st)
			memcpy(&st, v.mv_data, sizeof st);
		else if (rc != 0 && rc != MDB_NOTFOUND)
			return ix_err(rc);
		st.n = (uint64_t)((int64_t)st.n + d->n);
		st.fraud = (uint64_t)((int64_t)st.fraud + d->fraud);
		st.legit = (uint64_t)((int64_t)st.legit + d->legit);
		st.alerts = (uint64_t)((int64_t)st.alerts + d->alerts);
		v.mv_size = sizeof st;
		v.mv_data = &st;
		rc = mdb_put(txn, ix->stats, &k, &v, 0);
		if (rc != 0)
			return ix_err(rc);
	}
	memset(ix->deltas, 0, IX_STATS_SLOTS * sizeof *ix->deltas);
	ix->ndeltas = 0;
	return VIGIL_OK;
}

static vigil_err
ix_stat_add(con_index *ix, MDB_txn *txn, int64_t day, uint16_t rule, int64_t n, int64_t fraud,
    int64_t legit, int64_t alerts)
{
	ix_stat_delta *d = ix_delta(ix, day, rule);
	vigil_err rv;

	if (d == NULL) {
		rv = ix_stats_flush(ix, txn);
		if (rv != VIGIL_OK)
			return rv;
		d = ix_delta(ix, day, rule);
		if (d == NULL)
			return VIGIL_EINTERNAL;
	}
	d->n += n;
	d->fraud += fraud;
	d->legit += legit;
	d->alerts += alerts;
	return VIGIL_OK;
}

/* ---- records ---- */

/* hits value: u32 day | i8 label | u8 n | u16 ids[n] (host order), then,
 * when known, i64 amount_minor | char currency[3] (money caught in back-tests) */
#define IX_HITS_MAX (6 + 2 * 64 + 11)

static vigil_err
ix_add_scored(con_index *ix, MDB_txn *txn, const store_record *r, uint64_t seg_first)
{
	store_scored *s = ix->rec;
	store_diag d;
	int64_t day;
	uint8_t hb[IX_HITS_MAX];
	uint16_t ids[STORE_MAX_HITS];
	bool alert;
	vigil_err rv;
	int rc;

	rv = store_scored_decode(r->payload, r->len, s, &d);
	if (rv != VIGIL_OK) {
		ix->pos.corrupt++;
		return VIGIL_OK; /* reported by the caller's counter; not fatal */
	}
	day = s->txn.event_time_ms >= 0 ? s->txn.event_time_ms / VIGIL_MS_PER_DAY :
	    (s->txn.event_time_ms - VIGIL_MS_PER_DAY + 1) / VIGIL_MS_PER_DAY;
	alert = s->decision == VIGIL_DECISION_REVIEW || s->decision == VIGIL_DECISION_DECLINE;
	rv = ix_stat_add(ix, txn, day, CON_STAT_TOTAL, 1, 0, 0, alert ? 1 : 0);
	if (rv != VIGIL_OK)
		return rv;
	for (uint32_t i = 0; i < s->nhits && i < STORE_MAX_HITS; i++) {
		rv = ix_rule_intern(ix, txn, s->hits[i].rule, &ids[i]);
		if (rv != VIGIL_OK)
			return rv;
		rv = ix_stat_add(ix, txn, day, ids[i], 1, 0, 0, alert ? 1 : 0);
		if (rv != VIGIL_OK)
			return rv;
	}
	if (s->nhits > 0) {
		uint32_t d32 = (uint32_t)day;
		uint32_t n = s->nhits < 64 ? s->nhits : 64;
		MDB_val k = ix_str(s->txn.txn_id), v;
		int8_t known = -1;

		/* a label that came before its record (ix_add_label kept it) */
		if (mdb_get(txn, ix->hits, &k, &v) == 0 && v.mv_size >= 6)
			known = (int8_t)((const uint8_t *)v.mv_data)[4];
		for (uint32_t i = 0; known >= 0 && i < n; i++) {
			rv = ix_stat_add(ix, txn, day, ids[i], 0, known == 1, known == 0, 0);
			if (rv != VIGIL_OK)
				return rv;
		}
		v.mv_size = 6 + 2 * n + 11;
		v.mv_data = hb;
		memcpy(hb, &d32, 4);
		hb[4] = (uint8_t)known;
		hb[5] = (uint8_t)n;
		memcpy(hb + 6, ids, 2 * n);
		memcpy(hb + 6 + 2 * n, &s->txn.amount_minor, 8);
		memcpy(hb + 6 + 2 * n + 8, s->txn.currency, 3);
		rc = mdb_put(txn, ix->hits, &k, &v, 0);
		if (rc != 0)
			return ix_err(rc);
	}
	/* the card's history */
	{
		uint8_t cb[200], *p = cb;
		size_t tl = strlen(s->txn.txn_id), ml = strlen(s->txn.merchant_id);
		MDB_val k = ix_str(s->txn.card_id), v;
		MDB_cursor *c;
		size_t cnt = 0;

		ix_be64(p, ix_time_key(s->txn.event_time_ms)); p += 8;
		memcpy(p, &s->txn.amount_minor, 8); p += 8;
		{
			float sc = (float)s->score;

			memcpy(p, &sc, 4); p += 4;
		}
		*p++ = (uint8_t)s->decision;
		memcpy(p, s->txn.currency, 3); p += 3;
		*p++ = (uint8_t)tl; memcpy(p, s->txn.txn_id, tl); p += tl;
		*p++ = (uint8_t)ml; memcpy(p, s->txn.merchant_id, ml); p += ml;
		v.mv_size = (size_t)(p - cb);
		v.mv_data = cb;
		rc = mdb_put(txn, ix->cards, &k, &v, MDB_NODUPDATA);
		if (rc != 0 && rc != MDB_KEYEXIST)
			return ix_err(rc);
		rc = mdb_cursor_open(txn, ix->cards, &c);
		if (rc != 0)
			return ix_err(rc);
		rc = mdb_cursor_get(c, &k, &v, MDB_SET);
		if (rc == 0)
			rc = mdb_cursor_count(c, &cnt);
		while (rc == 0 && cnt > CON_CARD_HISTORY) {
			rc = mdb_cursor_get(c, &k, &v, MDB_FIRST_DUP);
			if (rc == 0)
				rc = mdb_cursor_del(c, 0);
			cnt--;
		}
		mdb_cursor_close(c);
		if (rc != 0 && rc != MDB_NOTFOUND)
			return ix_err(rc);
	}
	if (alert) {
		con_case cs;
		uint8_t kb[8 + VIGIL_ID_MAX];
		size_t tl = strlen(s->txn.txn_id);
		MDB_val k = { 8 + tl, kb }, v = { sizeof cs, &cs }, idk = ix_str(s->txn.txn_id);
		MDB_val idv = { 8, kb };

		memset(&cs, 0, sizeof cs);
		cs.version = CON_CASE_VERSION;
		cs.decision = (uint8_t)s->decision;
		cs.label = -1;
		cs.score = (float)s->score;
		cs.event_time_ms = s->txn.event_time_ms;
		cs.amount_minor = s->txn.amount_minor;
		cs.seq = r->seq;
		cs.seg_first = seg_first;
		cs.offset = r->offset;
		cs.mcc = s->txn.mcc;
		cs.channel = s->txn.channel;
		for (uint32_t i = 0; i < s->nhits && cs.nhits < CON_CASE_MAX_HITS; i++) {
			if (s->hits[i].shadow)
				cs.shadow_mask[cs.nhits / 8] |= (uint8_t)(1u << (cs.nhits % 8));
			cs.hits[cs.nhits++] = ids[i];
		}
		memcpy(cs.currency, s->txn.currency, sizeof cs.currency);
		memcpy(cs.country, s->txn.country, sizeof cs.country);
		memcpy(cs.txn_id, s->txn.txn_id, sizeof cs.txn_id);
		memcpy(cs.card_id, s->txn.card_id, sizeof cs.card_id);
		memcpy(cs.merchant_id, s->txn.merchant_id, sizeof cs.merchant_id);
		memcpy(cs.terminal_id, s->txn.terminal_id, sizeof cs.terminal_id);
		/* a label that arrived first (it happens in replays) */
		if (mdb_get(txn, ix->hits, &idk, &idv) == 0 && idv.mv_size >= 6)
			cs.label = (int8_t)((const uint8_t *)idv.mv_data)[4];
		idv.mv_size = 8;
		idv.mv_data = kb;
		ix_be64(kb, ix_time_key(s->txn.event_time_ms));
		memcpy(kb + 8, s->txn.txn_id, tl);
		rc = mdb_put(txn, ix->cases, &k, &v, 0);
		if (rc == 0)
			rc = mdb_put(txn, ix->byid, &idk, &idv, 0);
		if (rc != 0)
			return ix_err(rc);
		ix->pos.cases++;
	}
	if (s->txn.event_time_ms > ix->pos.max_event_ms)
		ix->pos.max_event_ms = s->txn.event_time_ms;
	ix->pos.scored++;
	return VIGIL_OK;
}

/* The cases key of txn_id (its time from byid, then the id) into kb. */
int
ix_case_key(con_index *ix, MDB_txn *txn, const char *txn_id, uint8_t *kb, MDB_val *ret_k)
{
	MDB_val k = ix_str(txn_id), tk;
	int rc;

	if (k.mv_size == 0 || k.mv_size > VIGIL_ID_MAX)
		return MDB_NOTFOUND;
	rc = mdb_get(txn, ix->byid, &k, &tk);
	if (rc != 0)
		return rc;
	if (tk.mv_size != 8)
		return MDB_CORRUPTED;
	memcpy(kb, tk.mv_data, 8);
	memcpy(kb + 8, txn_id, k.mv_size);
	ret_k->mv_size = 8 + k.mv_size;
	ret_k->mv_data = kb;
	return 0;
}

static vigil_err
ix_set_case_label(con_index *ix, MDB_txn *txn, const char *txn_id, int label,
    const char *source, int64_t when_ms)
{
	uint8_t kb[8 + VIGIL_ID_MAX];
	MDB_val tk, v;
	con_case cs;
	int rc;

	rc = ix_case_key(ix, txn, txn_id, kb, &tk);
	if (rc != 0)
		return ix_err(rc);
	rc = mdb_get(txn, ix->cases, &tk, &v);
	if (rc != 0)
		return ix_err(rc);
	if (v.mv_size != sizeof cs)
		return VIGIL_ECORRUPT;
	memcpy(&cs, v.mv_data, sizeof cs);
	cs.label = (int8_t)label;
	cs.label_time_ms = when_ms;
	snprintf(cs.label_source, sizeof cs.label_source, "%s", source);
	v.mv_size = sizeof cs;
	v.mv_data = &cs;
	return ix_err(mdb_put(txn, ix->cases, &tk, &v, 0));
}

/* The amount of txn_id from its card's history (0), or MDB_NOTFOUND. */
static int
ix_card_amount(con_index *ix, MDB_txn *txn, const char *card_id, const char *txn_id,
    int64_t *ret_amount, char ret_cur[4])
{
	MDB_cursor *c;
	MDB_val k = ix_str(card_id), v;
	size_t tl = strlen(txn_id);
	int rc;

	rc = mdb_cursor_open(txn, ix->cards, &c);
	if (rc != 0)
		return rc;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_SET); rc == 0;
	    rc = mdb_cursor_get(c, &k, &v, MDB_NEXT_DUP)) {
		const uint8_t *p = v.mv_data;
		if (v.mv_size < 25 || p[24] != tl || v.mv_size < 25 + tl ||
		    memcmp(p + 25, txn_id, tl) != 0)
			continue;
		memcpy(ret_amount, p + 8, 8);
		memcpy(ret_cur, p + 21, 3);
		ret_cur[3] = '\0';
		break;
	}
	mdb_cursor_close(c);
	return rc;
}

static ix_own *
ix_own_find(con_index *ix, const char *txn_id)
{
	for (uint32_t i = 0; ix->own_n > 0 && i < IX_OWN_MAX; i++)
		if (txn_id[0] != '\0' && strcmp(ix->own[i].txn_id, txn_id) == 0)
			return &ix->own[i];
	return NULL;
}

static vigil_err
ix_add_label(con_index *ix, MDB_txn *txn, const store_record *r)
{
	store_label l;
	store_diag d;
	MDB_val k, v;
	vigil_err rv;
	int rc;

	rv = store_label_decode(r->payload, r->len, &l, &d);
	if (rv != VIGIL_OK) {
		ix->pos.corrupt++;
		return VIGIL_OK;
	}
	ix->pos.labels++;
	k = ix_str(l.txn_id);
	rc = mdb_get(txn, ix->hits, &k, &v);
	if (rc == 0 && v.mv_size >= 6) {
		uint8_t hb[IX_HITS_MAX];
		uint32_t day;
		int old;
		size_t n = v.mv_size < sizeof hb ? v.mv_size : sizeof hb;

		memcpy(hb, v.mv_data, n);
		memcpy(&day, hb, 4);
		old = (int8_t)hb[4];
		if (old != (int)l.fraud) {
			for (uint32_t i = 0; i < hb[5] && 6 + 2 * i + 2 <= n; i++) {
				uint16_t id;
				memcpy(&id, hb + 6 + 2 * i, 2);
				rv = ix_stat_add(ix, txn, day, id, 0, (l.fraud ? 1 : 0) - (old == 1),
				    (l.fraud ? 0 : 1) - (old == 0), 0);
				if (rv != VIGIL_OK)
					return rv;
			}
			hb[4] = (uint8_t)(int8_t)l.fraud;
			v.mv_size = n;
			v.mv_data = hb;
			rc = mdb_put(txn, ix->hits, &k, &v, 0);
			if (rc != 0)
				return ix_err(rc);
		}
	} else if (rc == MDB_NOTFOUND) {
		/* a label before its record (or for a record with no hit): keep
		 * it as a hit entry with no rules, so a case that comes later
		 * starts labelled; with the amount when the card's history has
		 * the transaction (back-tests sum the money caught) */
		uint8_t hb[6 + 11] = { 0 };
		/* dated by the label's own day: retention keeps it keep_days
		 * after it arrived (day 0 went on the first sweep, and with it
		 * the label of every allowed transaction) */
		int64_t lt = l.label_time_ms > 0 ? l.label_time_ms : l.received_at_ms;
		uint32_t d32 = lt > 0 ? (uint32_t)(lt / VIGIL_MS_PER_DAY) : 0;

		memcpy(hb, &d32, 4);
		hb[4] = (uint8_t)(int8_t)l.fraud;
		v.mv_size = 6;
		v.mv_data = hb;
		if (l.card_id[0] != '\0') {
			int64_t amount;
			char cur[4];
			if (ix_card_amount(ix, txn, l.card_id, l.txn_id, &amount, cur) == 0) {
				memcpy(hb + 6, &amount, 8);
				memcpy(hb + 14, cur, 3);
				v.mv_size = sizeof hb;
			}
		}
		(void)mdb_put(txn, ix->hits, &k, &v, 0);
	}
	rv = ix_set_case_label(ix, txn, l.txn_id, l.fraud ? 1 : 0, l.source,
	    l.label_time_ms);
	/* our own label read back: the index has it and what came before it
	 * (a batch that fails after this is read again, the check on the
	 * index's label meanwhile) */
	{
		ix_own *o = ix_own_find(ix, l.txn_id);

		if (o != NULL && o->label == (int8_t)l.fraud && o->time_ms == l.label_time_ms &&
		    strcmp(o->source, l.source) == 0) {
			o->txn_id[0] = '\0';
			ix->own_n--;
		}
	}
	return rv == VIGIL_ENOTFOUND ? VIGIL_OK : rv;
}

static vigil_err
ix_put_pos(con_index *ix, MDB_txn *txn)
{
	MDB_val k = ix_str("pos"), v = { sizeof ix->pos, &ix->pos };
	return ix_err(mdb_put(txn, ix->meta, &k, &v, 0));
}

typedef struct ix_batch {
	con_index *ix;
	MDB_txn   *txn;
	char      *errbuf;
	size_t     errlen;
} ix_batch;

/* con_tail_each's function: one record into the batch's transaction. */
static vigil_err
ix_add_record(void *arg, const store_record *r, uint64_t seg, uint64_t next_off)
{
	ix_batch *b = arg;
	vigil_err rv = VIGIL_OK;

	if (r->type == STORE_REC_SCORE)
		rv = ix_add_scored(b->ix, b->txn, r, seg);
	else if (r->type == STORE_REC_LABEL)
		rv = ix_add_label(b->ix, b->txn, r);
	if (rv != VIGIL_OK) {
		snprintf(b->errbuf, b->errlen, "index: record %llu: %s", (unsigned long long)r->seq,
		    vigil_strerror(rv));
		return rv;
	}
	b->ix->pos.last_seq = r->seq;
	b->ix->pos.seg_first = seg;
	b->ix->pos.seg_off = next_off;
	return VIGIL_OK;
}

vigil_err
con_index_ingest(con_index *ix, const char *archive_dir, uint32_t max, uint32_t *ret_n,
    bool *ret_more, char *errbuf, size_t errlen)
{
	MDB_txn *txn = NULL;
	con_tailpos saved = ix->pos;
	ix_batch b;
	uint32_t n = 0;
	bool more = false;
	vigil_err rv;
	int rc;

	*ret_n = 0;
	*ret_more = false;
	if (ix->tail == NULL) {
		rv = con_tail_new(archive_dir, ix->pos.last_seq, ix->pos.seg_first, ix->pos.seg_off,
		    &ix->tail);
		if (rv != VIGIL_OK) {
			snprintf(errbuf, errlen, "out of memory");
			return rv;
		}
	}
	rc = mdb_txn_begin(ix->env, NULL, 0, &txn);
	if (rc != 0) {
		snprintf(errbuf, errlen, "index: %s", mdb_strerror(rc));
		return ix_err(rc);
	}
	b.ix = ix;
	b.txn = txn;
	b.errbuf = errbuf;
	b.errlen = errlen;
	rv = con_tail_each(ix->tail, max, ix_add_record, &b, &n, &more, errbuf, errlen);
	if (rv != VIGIL_OK)
		goto fail;
	ix->pos.corrupt += con_tail_take_corrupt(ix->tail);
	rv = ix_stats_flush(ix, txn);
	if (rv == VIGIL_OK)
		rv = ix_put_pos(ix, txn);
	if (rv != VIGIL_OK) {
		snprintf(errbuf, errlen, "index: %s", vigil_strerror(rv));
		goto fail;
	}
	rc = mdb_txn_commit(txn);
	txn = NULL;
	if (rc != 0) {
		snprintf(errbuf, errlen, "index: commit: %s", mdb_strerror(rc));
		rv = ix_err(rc);
		goto fail;
	}
	ix->nrules_committed = ix->nrules;
	if (!more && n > 0)
		(void)mdb_env_sync(ix->env, 1);
	*ret_n = n;
	*ret_more = more;
	return VIGIL_OK;
fail:
	if (txn != NULL)
		mdb_txn_abort(txn);
	/* Back to the committed state: the batch is read again next time. */
	ix->pos = saved;
	con_tail_free(ix->tail);
	ix->tail = NULL;
	memset(ix->deltas, 0, IX_STATS_SLOTS * sizeof *ix->deltas);
	ix->ndeltas = 0;
	if (ix->nrules != ix->nrules_committed) {
		MDB_txn *rt;
		if (mdb_txn_begin(ix->env, NULL, MDB_RDONLY, &rt) == 0) {
			(void)ix_load_rules(ix, rt);
			mdb_txn_abort(rt);
		}
	}
	return rv;
}

vigil_err
con_index_case_label(con_index *ix, const char *txn_id, bool fraud, const char *source,
    int64_t when_ms)
{
	MDB_txn *txn;
	ix_own *o = ix_own_find(ix, txn_id);
	vigil_err rv;
	int rc;

	if (o == NULL) {
		o = &ix->own[ix->own_next];
		ix->own_next = (ix->own_next + 1) % IX_OWN_MAX;
		ix->own_n += o->txn_id[0] == '\0';
		snprintf(o->txn_id, sizeof o->txn_id, "%s", txn_id);
	}
	snprintf(o->source, sizeof o->source, "%s", source);
	o->time_ms = when_ms;
	o->label = fraud ? 1 : 0;
	o->is_case = false;
	rc = mdb_txn_begin(ix->env, NULL, 0, &txn);
	if (rc != 0)
		return ix_err(rc);
	rv = ix_set_case_label(ix, txn, txn_id, fraud ? 1 : 0, source, when_ms);
	if (rv != VIGIL_OK) {
		mdb_txn_abort(txn);
		return rv;
	}
	rv = ix_err(mdb_txn_commit(txn));
	o->is_case = rv == VIGIL_OK;
	return rv;
}

int
con_index_label_now(con_index *ix, const char *txn_id, char ret_source[32], int64_t *ret_time_ms)
{
	ix_own *o = ix_own_find(ix, txn_id);
	con_case c;

	ret_source[0] = '\0';
	*ret_time_ms = 0;
	if (o != NULL) {
		if (o->is_case) {
			snprintf(ret_source, 32, "%s", o->source);
			*ret_time_ms = o->time_ms;
		}
		return o->label;
	}
	if (con_index_case(ix, txn_id, &c) != VIGIL_OK)
		return con_index_label_of(ix, txn_id);
	if (c.label >= 0) {
		snprintf(ret_source, 32, "%s", c.label_source);
		*ret_time_ms = c.label_time_ms;
	}
	return c.label;
}

/* ---- retention ---- */

vigil_err
con_index_prune(con_index *ix, uint32_t keep_days, int64_t now_ms, uint32_t max_steps,
    bool *ret_done, uint64_t *ret_deleted)
{
	MDB_txn *txn = NULL;
	MDB_cursor *c = NULL;
	MDB_val k, v;
	int64_t cutoff;
	uint32_t steps = 0;
	uint64_t deleted = 0;
	int rc;

	*ret_done = false;
	*ret_deleted = 0;
	if (ix->pos.max_event_ms <= 0) {
		*ret_done = true;
		return VIGIL_OK;
	}
	/* days of the archive's own clock: replayed history is not "old" */
	cutoff = ix->pos.max_event_ms / VIGIL_MS_PER_DAY - (int64_t)keep_days;
	rc = mdb_txn_begin(ix->env, NULL, 0, &txn);
	if (rc == 0)
		rc = con_cursor_resume(txn, ix->hits, ix->prune_key, ix->prune_klen, &c, &k, &v);
	if (rc != 0 && rc != MDB_NOTFOUND)
		goto out;
	while (rc == 0 && steps < max_steps) {
		uint32_t day;

		steps++;
		if (v.mv_size >= 6) {
			memcpy(&day, v.mv_data, 4);
			/* a label-only entry (no rules) is dated by its label's day */
			if ((int64_t)day < cutoff) {
				rc = mdb_cursor_del(c, 0);
				if (rc != 0)
					goto out;
				deleted++;
				/* after a delete, NEXT is the record that followed it */
				rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
				continue;
			}
		}
		rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
	}
	rc = con_cursor_suspend(rc, &k, ix->prune_key, sizeof ix->prune_key, &ix->prune_klen,
	    ret_done);
	mdb_cursor_close(c);
	c = NULL;
	if (rc != 0)
		goto out;
	/* expired claims (a day after their end) */
	if (*ret_done) {
		rc = mdb_cursor_open(txn, ix->claims, &c);
		for (rc = rc == 0 ? mdb_cursor_get(c, &k, &v, MDB_FIRST) : rc; rc == 0;
		    rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
			con_claim cl;
			if (v.mv_size != sizeof cl)
				continue;
			memcpy(&cl, v.mv_data, sizeof cl);
			if (cl.until_ms + VIGIL_MS_PER_DAY < now_ms && mdb_cursor_del(c, 0) == 0)
				deleted++;
		}
		if (rc == MDB_NOTFOUND)
			rc = 0;
	}
out:
	if (c != NULL)
		mdb_cursor_close(c);
	if (txn != NULL) {
		if (rc == 0)
			rc = mdb_txn_commit(txn);
		else
			mdb_txn_abort(txn);
	}
	if (rc == 0)
		*ret_deleted = deleted;
	return ix_err(rc);
}
