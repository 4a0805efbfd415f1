/* SPDX-License-Identifier: MIT */
/*
 * console/entities.c - the entity index (entities.h; docs/console.md,
 * "The entity index"): its own LMDB environment, STATE/entities, with
 *   ents  kind (1 byte) + id -> DUPSORT|DUPFIXED 20-byte positions,
 *         BE64(segment's first seq) | BE64(offset) | BE32(event second),
 *         so an entity's positions sort in archive order
 *   meta  "version" -> u32, "pos" -> ents_pos (the committed position)
 * fed by a tail of its own (tail.c), each batch and the position after it
 * one write transaction, as the queue's index (index.c) is. Only the lean
 * decoder reads the records: the ids and the event time are all it keeps.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archive.h"
#include "entities.h"
#include "lean.h"
#include "tail.h"
#include "util.h"
#include "vec.h"

#define ENTS_VERSION 1u
#define ENTS_VAL     20
#define ENTS_KEY_MAX (1 + VIGIL_ID_MAX)

typedef struct ents_pos {
	uint64_t last_seq, seg_first, seg_off;
	uint64_t records, entries, corrupt;
	uint64_t pruned_below; /* entries of segments before this are gone */
} ents_pos;

/* An entry of the batch being read, put in key order when it is whole. */
typedef struct ents_pend {
	uint8_t klen;
	uint8_t key[ENTS_KEY_MAX];
	uint8_t val[ENTS_VAL];
} ents_pend;

struct con_ents {
	MDB_env          *env;
	MDB_dbi           meta, ents;
	ents_pos          pos;
	con_tail         *tail;
	con_ents_origin   origin;
	bool              ready;
	uint64_t          ingested, pruned;
	store_scored_lean lean;
	vigil_vec         pend;                    /* ents_pend of the batch */
	uint8_t           prune_key[ENTS_KEY_MAX]; /* where a sweep goes on */
	uint32_t          prune_klen;              /* 0: from the start */
	uint64_t          prune_below;             /* the sweep's bound */
	char              dir[4096];
	uint32_t          map_gib;
	uint32_t          compactions;
};

static vigil_err
ents_err(int rc)
{
	switch (rc) {
	case 0:             return VIGIL_OK;
	case MDB_NOTFOUND:  return VIGIL_ENOTFOUND;
	case MDB_MAP_FULL:  return VIGIL_ELIMIT;
	case ENOMEM:        return VIGIL_ENOMEM;
	case MDB_CORRUPTED:
	case MDB_PAGE_NOTFOUND:
	case MDB_INVALID:   return VIGIL_ECORRUPT;
	default:            return VIGIL_EIO;
	}
}

static void
ents_be(uint8_t *p, uint64_t v, int n)
{
	for (int i = n - 1; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static uint64_t
ents_get_be(const uint8_t *p, int n)
{
	uint64_t v = 0;

	for (int i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

static MDB_val
ents_str(const char *s)
{
	MDB_val v = { strlen(s), (void *)s };
	return v;
}

/* The key of kind/id into kb; false for an empty or too long id. */
static bool
ents_key(con_ent_kind kind, const char *id, size_t len, uint8_t *kb, MDB_val *ret_k)
{
	if (len == 0 || len > VIGIL_ID_MAX)
		return false;
	kb[0] = (uint8_t)kind;
	memcpy(kb + 1, id, len);
	ret_k->mv_size = 1 + len;
	ret_k->mv_data = kb;
	return true;
}

static uint32_t
ents_second(int64_t ms)
{
	if (ms < 0)
		return 0;
	return ms / 1000 > UINT32_MAX ? UINT32_MAX : (uint32_t)(ms / 1000);
}

/* Opens the environment at dir; an LMDB error code (rc) or a layout that is
 * not ours (ENTS_VERSION) says it is damaged: *ret_why then says how. */
static int
ents_env_open(con_ents *e, const char *dir, uint32_t map_gib, char *why, size_t whylen)
{
	MDB_txn *txn = NULL;
	MDB_val k, v;
	int rc;

	if ((rc = mdb_env_create(&e->env)) != 0 ||
	    (rc = mdb_env_set_maxdbs(e->env, 4)) != 0 ||
	    (rc = mdb_env_set_mapsize(e->env, (size_t)map_gib << 30)) != 0 ||
	    /* not synced per commit, as the queue's index: rebuilt from the
	     * archive if need be; synced when the tail catches up */
	    (rc = mdb_env_open(e->env, dir, MDB_NOTLS | MDB_NOSYNC, 0640)) != 0 ||
	    (rc = mdb_txn_begin(e->env, NULL, 0, &txn)) != 0 ||
	    (rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &e->meta)) != 0 ||
	    (rc = mdb_dbi_open(txn, "ents", MDB_CREATE | MDB_DUPSORT | MDB_DUPFIXED, &e->ents)) != 0) {
		snprintf(why, whylen, "%s", mdb_strerror(rc));
		goto out;
	}
	k = ents_str("version");
	rc = mdb_get(txn, e->meta, &k, &v);
	if (rc == 0) {
		uint32_t ver = 0;

		if (v.mv_size == 4)
			memcpy(&ver, v.mv_data, 4);
		if (ver != ENTS_VERSION) {
			snprintf(why, whylen, "layout %u, this build writes %u", ver, ENTS_VERSION);
			rc = MDB_INCOMPATIBLE;
			goto out;
		}
		k = ents_str("pos");
		rc = mdb_get(txn, e->meta, &k, &v);
		if (rc != 0 || v.mv_size != sizeof e->pos) {
			snprintf(why, whylen, "no committed position");
			rc = MDB_CORRUPTED;
			goto out;
		}
		memcpy(&e->pos, v.mv_data, sizeof e->pos);
		e->origin = CON_ENTS_REUSED;
	} else if (rc == MDB_NOTFOUND) {
		uint32_t ver = ENTS_VERSION;
		MDB_val vv = { 4, &ver };

		memset(&e->pos, 0, sizeof e->pos);
		rc = mdb_put(txn, e->meta, &k, &vv, 0);
		if (rc == 0) {
			k = ents_str("pos");
			vv.mv_size = sizeof e->pos;
			vv.mv_data = &e->pos;
			rc = mdb_put(txn, e->meta, &k, &vv, 0);
		}
		if (rc != 0)
			snprintf(why, whylen, "%s", mdb_strerror(rc));
		e->origin = CON_ENTS_NEW;
	} else {
		snprintf(why, whylen, "%s", mdb_strerror(rc));
		goto out;
	}
	if (rc == 0) {
		rc = mdb_txn_commit(txn);
		txn = NULL;
		if (rc != 0)
			snprintf(why, whylen, "%s", mdb_strerror(rc));
	}
out:
	if (txn != NULL)
		mdb_txn_abort(txn);
	if (rc != 0 && e->env != NULL) {
		mdb_env_close(e->env);
		e->env = NULL;
	}
	return rc;
}

vigil_err
con_ents_remove(const char *dir, char *errbuf, size_t errlen)
{
	char path[4200];

	for (int i = 0; i < 2; i++) {
		snprintf(path, sizeof path, "%s/%s", dir, i == 0 ? "data.mdb" : "lock.mdb");
		if (unlink(path) != 0 && errno != ENOENT) {
			snprintf(errbuf, errlen, "%s: %s", path, strerror(errno));
			return vigil_err_from_errno(errno);
		}
	}
	return VIGIL_OK;
}

vigil_err
con_ents_open(const char *dir, uint32_t map_gib, con_ents **ret_e, char *ret_note,
    size_t notelen, char *errbuf, size_t errlen)
{
	con_ents *e = calloc(1, sizeof *e);
	char why[200];
	int rc;

	ret_note[0] = '\0';
	if (e == NULL)
		return VIGIL_ENOMEM;
	vigil_vec_init(&e->pend, sizeof(ents_pend), 64u << 20);
	snprintf(e->dir, sizeof e->dir, "%s", dir);
	e->map_gib = map_gib;
	if (mkdir(dir, 0750) != 0 && errno != EEXIST) {
		snprintf(errbuf, errlen, "%s: %s", dir, strerror(errno));
		free(e);
		return vigil_err_from_errno(errno);
	}
	rc = ents_env_open(e, dir, map_gib, why, sizeof why);
	if (rc == ENOMEM || rc == EACCES || rc == ENOSPC || rc == EROFS) {
		snprintf(errbuf, errlen, "%s: %s", dir, why);
		free(e);
		return ents_err(rc);
	}
	if (rc != 0) {
		vigil_err rv;

		/* damaged, or another layout: it is only a cache of the archive */
		snprintf(ret_note, notelen, "%s: %s: rebuilt from the archive", dir, why);
		rv = con_ents_remove(dir, errbuf, errlen);
		if (rv != VIGIL_OK) {
			free(e);
			return rv;
		}
		rc = ents_env_open(e, dir, map_gib, why, sizeof why);
		if (rc != 0) {
			snprintf(errbuf, errlen, "%s: %s", dir, why);
			free(e);
			return ents_err(rc);
		}
		e->origin = CON_ENTS_REBUILT;
	}
	*ret_e = e;
	return VIGIL_OK;
}

void
con_ents_close(con_ents *e)
{
	if (e == NULL)
		return;
	con_tail_free(e->tail);
	if (e->env != NULL)
		mdb_env_close(e->env);
	vigil_vec_fini(&e->pend);
	free(e);
}

void
con_ents_get_stats(con_ents *e, con_ents_stats *ret_stats)
{
	memset(ret_stats, 0, sizeof *ret_stats);
	ret_stats->origin = e->origin;
	ret_stats->ready = e->ready;
	ret_stats->last_seq = e->pos.last_seq;
	ret_stats->records = e->pos.records;
	ret_stats->entries = e->pos.entries;
	ret_stats->ingested = e->ingested;
	ret_stats->pruned = e->pruned;
	ret_stats->corrupt = e->pos.corrupt;
	ret_stats->compactions = e->compactions;
	if (e->env == NULL)
		ret_stats->ready = false; /* closed by a failed compaction */
}

void
con_ents_sizes(con_ents *e, uint64_t *ret_file, uint64_t *ret_live)
{
	MDB_txn *txn;
	MDB_cursor *c;
	MDB_envinfo ei;
	MDB_stat st;
	MDB_val k, v;
	uint64_t free_pages = 0;

	*ret_file = *ret_live = 0;
	/* pages in use: the file's high-water mark less the free list
	 * (sub-databases of long duplicate lists included) */
	if (e->env == NULL || mdb_env_info(e->env, &ei) != 0 || mdb_env_stat(e->env, &st) != 0 ||
	    mdb_txn_begin(e->env, NULL, MDB_RDONLY, &txn) != 0)
		return;
	if (mdb_cursor_open(txn, 0 /* FREE_DBI */, &c) == 0) {
		while (mdb_cursor_get(c, &k, &v, MDB_NEXT) == 0)
			if (v.mv_size >= sizeof(size_t))
				free_pages += *(const size_t *)v.mv_data;
		mdb_cursor_close(c);
	}
	mdb_txn_abort(txn);
	*ret_file = (uint64_t)(ei.me_last_pgno + 1) * st.ms_psize;
	*ret_live = *ret_file - (free_pages <= ei.me_last_pgno + 1 ? free_pages : 0) * st.ms_psize;
}

static int
ents_pend_cmp(const void *a, const void *b)
{
	const ents_pend *x = a, *y = b;
	int c = memcmp(x->key, y->key, x->klen < y->klen ? x->klen : y->klen);

	if (c != 0)
		return c;
	if (x->klen != y->klen)
		return x->klen < y->klen ? -1 : 1;
	return memcmp(x->val, y->val, ENTS_VAL);
}

/* A scored record's entries, into the batch. */
static int
ents_add(con_ents *e, const store_record *r, uint64_t seg)
{
	store_scored_lean *s = &e->lean;
	store_diag d;
	ents_pend p;

	if (store_scored_decode_lean(r->payload, r->len, s, &d) != VIGIL_OK) {
		e->pos.corrupt++;
		return 0;
	}
	ents_be(p.val, seg, 8);
	ents_be(p.val + 8, r->offset, 8);
	ents_be(p.val + 16, ents_second(s->event_time_ms), 4);
	const store_strview ids[] = { s->card_id, s->merchant_id, s->terminal_id, s->device_id,
		s->ip };
	for (int i = 0; i < 5; i++) {
		MDB_val k;

		if (!ents_key((con_ent_kind)(CON_ENT_CARD + i), ids[i].p, ids[i].len, p.key, &k))
			continue;
		p.klen = (uint8_t)k.mv_size;
		if (vigil_vec_push(&e->pend, &p) != VIGIL_OK)
			return ENOMEM;
	}
	e->pos.records++;
	return 0;
}

/*
 * The batch's entries, in key order: the entries of one page go in
 * together, and the batch's random keys cost fewer page copies.
 */
static int
ents_flush(con_ents *e, MDB_txn *txn)
{
	MDB_cursor *c = NULL;
	int rc;

	if (e->pend.len == 0)
		return 0;
	qsort(e->pend.data, e->pend.len, sizeof(ents_pend), ents_pend_cmp);
	rc = mdb_cursor_open(txn, e->ents, &c);
	for (size_t i = 0; rc == 0 && i < e->pend.len; i++) {
		ents_pend *p = vigil_vec_at(&e->pend, i);
		MDB_val k = { p->klen, p->key }, v = { ENTS_VAL, p->val };

		rc = mdb_cursor_put(c, &k, &v, MDB_NODUPDATA);
		if (rc == MDB_KEYEXIST) {
			rc = 0; /* read again after a crash undid the position only */
			continue;
		}
		if (rc == 0)
			e->pos.entries++;
	}
	if (c != NULL)
		mdb_cursor_close(c);
	vigil_vec_clear(&e->pend);
	return rc;
}

/*
 * Once caught up after a build: the batches' random writes leave many
 * free pages in the file (LMDB reuses them, never gives them back), so the
 * environment is copied without them
 * (mdb_env_copy2, MDB_CP_COMPACT) over the old file and opened again. A
 * failure keeps the old file: it is only larger.
 */
static void
ents_compact(con_ents *e)
{
	char tmp[4200], from[4300], to[4300];
	struct stat st;
	uint64_t file, live;
	con_ents_origin origin = e->origin;
	char why[200];

	snprintf(to, sizeof to, "%s/data.mdb", e->dir);
	con_ents_sizes(e, &file, &live);
	/* worth it past a quarter of free pages, and 64 MiB of them */
	if (stat(to, &st) != 0 || file - live < (64u << 20) || file - live < file / 4)
		return;
	snprintf(tmp, sizeof tmp, "%s/compact", e->dir);
	snprintf(from, sizeof from, "%s/data.mdb", tmp);
	(void)unlink(from);
	if ((mkdir(tmp, 0750) != 0 && errno != EEXIST) ||
	    mdb_env_copy2(e->env, tmp, MDB_CP_COMPACT) != 0) {
		(void)unlink(from);
		(void)rmdir(tmp);
		return;
	}
	mdb_env_close(e->env);
	e->env = NULL;
	if (rename(from, to) != 0)
		(void)unlink(from);
	(void)rmdir(tmp);
	if (ents_env_open(e, e->dir, e->map_gib, why, sizeof why) == 0)
		e->compactions++;
	e->origin = origin;
}

typedef struct ents_batch {
	con_ents *e;
	MDB_txn  *txn;
	char     *errbuf;
	size_t    errlen;
} ents_batch;

/* con_tail_each's function: a scored record's entries into the batch. */
static vigil_err
ents_add_record(void *arg, const store_record *r, uint64_t seg, uint64_t next_off)
{
	ents_batch *b = arg;
	int rc;

	if (r->type == STORE_REC_SCORE && (rc = ents_add(b->e, r, seg)) != 0) {
		snprintf(b->errbuf, b->errlen, "entity index: record %" PRIu64 ": %s", r->seq,
		    mdb_strerror(rc));
		return ents_err(rc);
	}
	b->e->pos.last_seq = r->seq;
	b->e->pos.seg_first = seg;
	b->e->pos.seg_off = next_off;
	return VIGIL_OK;
}

vigil_err
con_ents_ingest(con_ents *e, const char *archive_dir, uint32_t max, uint32_t *ret_n,
    bool *ret_more, char *errbuf, size_t errlen)
{
	MDB_txn *txn = NULL;
	ents_pos saved = e->pos;
	ents_batch b;
	MDB_val k, v;
	uint32_t n = 0;
	bool more = false;
	vigil_err rv;
	int rc;

	*ret_n = 0;
	*ret_more = false;
	if (e->tail == NULL) {
		rv = con_tail_new(archive_dir, e->pos.last_seq, e->pos.seg_first, e->pos.seg_off,
		    &e->tail);
		if (rv != VIGIL_OK) {
			snprintf(errbuf, errlen, "entity index: out of memory");
			return rv;
		}
		con_tail_set_quiet(e->tail, true); /* the queue's index reports damage */
	}
	rc = mdb_txn_begin(e->env, NULL, 0, &txn);
	if (rc != 0) {
		snprintf(errbuf, errlen, "entity index: %s", mdb_strerror(rc));
		return ents_err(rc);
	}
	b.e = e;
	b.txn = txn;
	b.errbuf = errbuf;
	b.errlen = errlen;
	rv = con_tail_each(e->tail, max, ents_add_record, &b, &n, &more, errbuf, errlen);
	if (rv != VIGIL_OK)
		goto fail;
	rc = ents_flush(e, txn);
	if (rc != 0) {
		snprintf(errbuf, errlen, "entity index: %s", mdb_strerror(rc));
		rv = ents_err(rc);
		goto fail;
	}
	(void)con_tail_take_corrupt(e->tail); /* the queue's index reports them */
	k = ents_str("pos");
	v.mv_size = sizeof e->pos;
	v.mv_data = &e->pos;
	rc = mdb_put(txn, e->meta, &k, &v, 0);
	if (rc == 0)
		rc = mdb_txn_commit(txn);
	txn = NULL;
	if (rc != 0) {
		snprintf(errbuf, errlen, "entity index: commit: %s", mdb_strerror(rc));
		rv = ents_err(rc);
		goto fail;
	}
	e->ingested += n;
	if (n < max) {
		if (!e->ready)
			ents_compact(e);
		if (e->env == NULL) {
			snprintf(errbuf, errlen, "entity index: %s: cannot be opened again after "
			    "compaction", e->dir);
			return VIGIL_ECORRUPT; /* the caller removes it and builds it again */
		}
		if (n > 0 || !e->ready)
			(void)mdb_env_sync(e->env, 1);
		e->ready = true;
	}
	*ret_n = n;
	*ret_more = more;
	return VIGIL_OK;
fail:
	if (txn != NULL)
		mdb_txn_abort(txn);
	vigil_vec_clear(&e->pend);
	e->pos = saved;
	con_tail_free(e->tail);
	e->tail = NULL;
	return rv;
}

uint64_t
con_ents_count(con_ents *e, con_ent_kind kind, const char *id)
{
	uint8_t kb[ENTS_KEY_MAX];
	MDB_txn *txn = NULL;
	MDB_cursor *c = NULL;
	MDB_val k, v;
	size_t n = 0;

	if (e->env == NULL || !ents_key(kind, id, strlen(id), kb, &k) ||
	    mdb_txn_begin(e->env, NULL, MDB_RDONLY, &txn) != 0)
		return 0;
	if (mdb_cursor_open(txn, e->ents, &c) == 0 &&
	    mdb_cursor_get(c, &k, &v, MDB_SET) == 0 && mdb_cursor_count(c, &n) != 0)
		n = 0;
	if (c != NULL)
		mdb_cursor_close(c);
	mdb_txn_abort(txn);
	return n;
}

vigil_err
con_ents_positions(con_ents *e, con_ent_kind kind, const char *id, int64_t from_ms,
    int64_t to_ms, vigil_vec *out)
{
	uint8_t kb[ENTS_KEY_MAX];
	MDB_txn *txn = NULL;
	MDB_cursor *c = NULL;
	MDB_val k, v;
	/* whole seconds, rounded outwards */
	uint32_t from_s = ents_second(from_ms);
	uint32_t to_s = to_ms <= 0 ? 0 : ents_second(to_ms - 1);
	vigil_err rv = VIGIL_OK;
	int rc;

	if (e->env == NULL)
		return VIGIL_ECORRUPT;
	if (!ents_key(kind, id, strlen(id), kb, &k))
		return VIGIL_OK;
	rc = mdb_txn_begin(e->env, NULL, MDB_RDONLY, &txn);
	if (rc == 0)
		rc = mdb_cursor_open(txn, e->ents, &c);
	if (rc == 0)
		rc = mdb_cursor_get(c, &k, &v, MDB_SET);
	/* the positions a page at a time (DUPFIXED) */
	if (rc == 0)
		rc = mdb_cursor_get(c, &k, &v, MDB_GET_MULTIPLE);
	while (rc == 0 && rv == VIGIL_OK) {
		const uint8_t *p = v.mv_data;

		for (size_t i = 0; i + ENTS_VAL <= v.mv_size; i += ENTS_VAL) {
			con_ent_pos ps;

			ps.second = (uint32_t)ents_get_be(p + i + 16, 4);
			/* 0 and UINT32_MAX are clamped times: always read */
			if (ps.second != 0 && ps.second != UINT32_MAX &&
			    (ps.second < from_s || ps.second > to_s))
				continue;
			ps.seg_first = ents_get_be(p + i, 8);
			ps.offset = ents_get_be(p + i + 8, 8);
			rv = vigil_vec_push(out, &ps);
			if (rv != VIGIL_OK)
				break;
		}
		rc = mdb_cursor_get(c, &k, &v, MDB_NEXT_MULTIPLE);
	}
	if (rc == MDB_NOTFOUND)
		rc = 0;
	if (c != NULL)
		mdb_cursor_close(c);
	if (txn != NULL)
		mdb_txn_abort(txn);
	return rv != VIGIL_OK ? rv : ents_err(rc);
}

/* The first seq of the oldest segment in dir (0: none). */
static uint64_t
ents_oldest_segment(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	uint64_t best = 0;

	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		unsigned long long s;
		char rest[16];

		/* seg-YYYYMMDD-S.log[.zst] */
		if (sscanf(de->d_name, "seg-%*8[0-9]-%20llu%15s", &s, rest) != 2 ||
		    (strcmp(rest, ".log") != 0 && strcmp(rest, ".log.zst") != 0))
			continue;
		if (best == 0 || s < best)
			best = s;
	}
	closedir(d);
	return best;
}

vigil_err
con_ents_prune(con_ents *e, const char *archive_dir, uint32_t max_steps, bool *ret_done,
    uint64_t *ret_deleted)
{
	MDB_txn *txn = NULL;
	MDB_cursor *c = NULL;
	MDB_val k, v;
	uint32_t steps = 0;
	uint64_t deleted = 0;
	int rc;

	*ret_done = false;
	*ret_deleted = 0;
	if (e->prune_klen == 0) {
		uint64_t oldest = ents_oldest_segment(archive_dir);

		/* nothing gone since the last sweep (or no archive to judge by) */
		if (oldest == 0 || oldest <= e->pos.pruned_below) {
			*ret_done = true;
			return VIGIL_OK;
		}
		e->prune_below = oldest;
	}
	rc = mdb_txn_begin(e->env, NULL, 0, &txn);
	if (rc == 0)
		rc = con_cursor_resume(txn, e->ents, e->prune_key, e->prune_klen, &c, &k, &v);
	if (rc != 0 && rc != MDB_NOTFOUND)
		goto out;
	/* per key: its positions sort by segment, the gone ones first */
	while (rc == 0 && steps < max_steps) {
		uint8_t cur[ENTS_KEY_MAX];
		size_t clen = k.mv_size < sizeof cur ? k.mv_size : sizeof cur;

		steps++;
		memcpy(cur, k.mv_data, clen);
		for (;;) {
			rc = mdb_cursor_get(c, &k, &v, MDB_FIRST_DUP);
			if (rc != 0 || v.mv_size != ENTS_VAL ||
			    ents_get_be(v.mv_data, 8) >= e->prune_below)
				break;
			rc = mdb_cursor_del(c, 0);
			if (rc != 0)
				goto out;
			deleted++;
			k.mv_size = clen;
			k.mv_data = cur;
			rc = mdb_cursor_get(c, &k, &v, MDB_SET); /* NOTFOUND: the key went */
			if (rc != 0)
				break;
		}
		if (rc != 0 && rc != MDB_NOTFOUND)
			goto out;
		k.mv_size = clen;
		k.mv_data = cur;
		rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
		if (rc == 0 && k.mv_size == clen && memcmp(k.mv_data, cur, clen) == 0)
			rc = mdb_cursor_get(c, &k, &v, MDB_NEXT_NODUP);
	}
	rc = con_cursor_suspend(rc, &k, e->prune_key, sizeof e->prune_key, &e->prune_klen,
	    ret_done);
	if (*ret_done)
		e->pos.pruned_below = e->prune_below;
	e->pos.entries -= deleted < e->pos.entries ? deleted : e->pos.entries;
	k = ents_str("pos");
	v.mv_size = sizeof e->pos;
	v.mv_data = &e->pos;
	if (rc == 0)
		rc = mdb_put(txn, e->meta, &k, &v, 0);
out:
	if (c != NULL)
		mdb_cursor_close(c);
	if (txn != NULL) {
		if (rc == 0)
			rc = mdb_txn_commit(txn);
		else
			mdb_txn_abort(txn);
	}
	if (rc == 0) {
		*ret_deleted = deleted;
		e->pruned += deleted;
	} else {
		/* the position in memory may be ahead of the aborted transaction:
		 * read it back */
		MDB_txn *rt;

		e->prune_klen = 0;
		if (mdb_txn_begin(e->env, NULL, MDB_RDONLY, &rt) == 0) {
			k = ents_str("pos");
			if (mdb_get(rt, e->meta, &k, &v) == 0 && v.mv_size == sizeof e->pos)
				memcpy(&e->pos, v.mv_data, sizeof e->pos);
			mdb_txn_abort(rt);
		}
	}
	return ents_err(rc);
}
