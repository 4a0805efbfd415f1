/* SPDX-License-Identifier: MIT */
/*
 * console/scan.c - the search of GET /api/search (search.c) over the
 * archive: the scored records of an event-time range (store_reader skips
 * the segments outside it), each filtered in place by the lean decoder
 * (features/db/lean.h: no protobuf-c, no copies) and decoded whole only when
 * it passes, its label looked up last. A search by an entity (card,
 * merchant, terminal, device, ip) reads instead only that entity's records,
 * where the entity index (entities.c) says they are: one pread(2) each in a
 * plain segment, one pass over a compressed one. What either passes over
 * (a damaged stretch, a record the index points at that cannot be read, one
 * that does not decode) is counted and the first named (con_damage): the
 * answer says it is incomplete. In the console library so that
 * bench/console times the same code.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "archive.h"
#include "console.h"
#include "entities.h"
#include "lean.h"
#include "segment.h"
#include "vec.h"

#define SEARCH_SCAN_MAX CON_SEARCH_SCAN_MAX

/* A view equals the NUL-terminated want ("" matches anything). */
static bool
search_view_is(const char *want, store_strview v)
{
	return want[0] == '\0' || (strlen(want) == v.len && memcmp(want, v.p, v.len) == 0);
}

/*
 * The filters that need no label, on a record decoded in place (the lean
 * decoder: no protobuf-c, no copies): most records of a search fail here,
 * and only those that pass are decoded whole. The same tests as
 * search_match's, so the two agree.
 */
static bool
search_match_lean(const con_search_q *q, const store_scored_lean *s)
{
	static const double scale[] = { 1, 10, 100, 1000, 10000 };
	double amount;
	int e;

	if (!search_view_is(q->card, s->card_id) || !search_view_is(q->merchant, s->merchant_id) ||
	    !search_view_is(q->terminal, s->terminal_id) ||
	    !search_view_is(q->device, s->device_id) || !search_view_is(q->ip, s->ip) ||
	    (q->decision != 0 && (int)s->decision != q->decision))
		return false;
	if (q->min_amount < 0 && q->max_amount < 0)
		return true;
	e = vigil_currency_exponent(s->currency);
	amount = (double)s->amount_minor / scale[e < 0 || e > 4 ? 2 : e];
	return !((q->min_amount >= 0 && amount < q->min_amount) ||
	    (q->max_amount >= 0 && amount > q->max_amount));
}

static bool
search_match(con_app *app, const con_search_q *q, const store_scored *s, int *ret_label)
{
	const vigil_txn *t = &s->txn;
	double amount;

	*ret_label = -1;
	if ((q->card[0] && strcmp(q->card, t->card_id) != 0) ||
	    (q->merchant[0] && strcmp(q->merchant, t->merchant_id) != 0) ||
	    (q->terminal[0] && strcmp(q->terminal, t->terminal_id) != 0) ||
	    (q->device[0] && strcmp(q->device, t->device_id) != 0) ||
	    (q->ip[0] && strcmp(q->ip, t->ip) != 0) ||
	    (q->decision != 0 && (int)s->decision != q->decision))
		return false;
	amount = vigil_txn_amount(t);
	if ((q->min_amount >= 0 && amount < q->min_amount) ||
	    (q->max_amount >= 0 && amount > q->max_amount))
		return false;
	*ret_label = con_index_label_of(app->ix, t->txn_id);
	return q->label == -2 || *ret_label == q->label;
}

static json_t *
search_json(const store_scored *s, int label)
{
	const vigil_txn *t = &s->txn;
	char time[32];

	vigil_time_format_rfc3339(t->event_time_ms, time, sizeof time);
	/* amount and score as the queue and the entity pages give them */
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:I, s:s, s:f, s:s, s:o}",
	    "txn_id", t->txn_id, "time", time, "card_id", t->card_id, "merchant_id", t->merchant_id,
	    "terminal_id", t->terminal_id, "device_id", t->device_id, "ip", t->ip,
	    "amount", con_json_amount(t->amount_minor, t->currency), "amount_minor",
	    (json_int_t)t->amount_minor, "currency", t->currency, "score", con_score_shown(s->score),
	    "decision", vigil_decision_name(s->decision),
	    "label", con_json_label(label));
}

/* A scored record at rec that did not decode (d: why), counted in dmg. */
static void
scan_undecodable(con_damage *dmg, const store_record *rec, const store_diag *d)
{
	con_damage_note(dmg, rec->segment, rec->offset, "scored record does not decode: %s", d->msg);
}

/*
 * Reads the scored records of [from, to) of the archive, calling fn for
 * each until it returns false. *ret_scanned: records read; dmg: what was
 * passed over. VIGIL_OK, or the reader's error (errbuf).
 */
vigil_err
con_search_scan(con_app *app, int64_t from, int64_t to, const con_search_q *q, store_scored *s,
    bool (*fn)(void *arg, const store_scored *s), void *arg, uint64_t *ret_scanned,
    con_damage *dmg, char *errbuf, size_t errlen)
{
	store_scored_lean *lean = NULL;
	store_reader *rd = NULL;
	const char *needle = NULL;
	size_t nlen = 0;
	store_record r;
	store_diag d;
	vigil_err rv;

	*ret_scanned = 0;
	if (q != NULL) {
		/* the longest id asked for: the rarest bytes */
		const char *ids[] = { q->card, q->merchant, q->terminal, q->device, q->ip };

		for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
			if (strlen(ids[i]) > nlen) {
				needle = ids[i];
				nlen = strlen(ids[i]);
			}
	}
	if (q != NULL && (lean = malloc(sizeof *lean)) == NULL) {
		snprintf(errbuf, errlen, "out of memory");
		return VIGIL_ENOMEM;
	}
	rv = store_reader_open(app->archive_dir, from, to, con_damage_on_corrupt, dmg, &rd, &d);
	if (rv == VIGIL_ENOTFOUND) {
		free(lean);
		return VIGIL_OK; /* no archive yet: nothing */
	}
	if (rv != VIGIL_OK) {
		snprintf(errbuf, errlen, "archive: %s", d.msg);
		free(lean);
		return rv;
	}
	store_reader_want(rd, 1u << STORE_REC_SCORE);
	while ((rv = store_reader_next(rd, &r, &d)) == VIGIL_OK) {
		if (r.type != STORE_REC_SCORE || ++*ret_scanned > SEARCH_SCAN_MAX)
			break;
		if (lean != NULL) {
			store_diag ld;

			/* a record with the id holds its bytes: most records have
			 * not, and are passed over without decoding */
			if (needle != NULL && memmem(r.payload, r.len, needle, nlen) == NULL)
				continue;

			/* a record the lean decoder refuses, the full one refuses too */
			if (store_scored_decode_lean(r.payload, r.len, lean, &ld) != VIGIL_OK) {
				scan_undecodable(dmg, &r, &ld);
				continue;
			}
			if (!search_match_lean(q, lean))
				continue;
		}
		if (store_scored_decode(r.payload, r.len, s, &d) != VIGIL_OK) {
			scan_undecodable(dmg, &r, &d);
			continue;
		}
		if (!fn(arg, s))
			break;
	}
	if (rv == VIGIL_ENOTFOUND)
		rv = VIGIL_OK;
	if (rv != VIGIL_OK)
		snprintf(errbuf, errlen, "archive: %s", d.msg);
	store_reader_close(rd);
	free(lean);
	return rv;
}

/* ---- by the entity index ---- */

typedef struct scan_seg {
	uint64_t first;
	bool     zst;
	char     name[64];
} scan_seg;

static int
scan_seg_cmp(const void *a, const void *b)
{
	const scan_seg *x = a, *y = b;

	if (x->first != y->first)
		return x->first < y->first ? -1 : 1;
	return (int)x->zst - (int)y->zst; /* the plain file first while both exist */
}

/* The segments of dir, "seg-YYYYMMDD-S.log[.zst]", by S. */
static vigil_err
scan_segments(const char *dir, vigil_vec *out)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	vigil_err rv = VIGIL_OK;

	vigil_vec_clear(out);
	if (d == NULL)
		return errno == ENOENT ? VIGIL_OK : vigil_err_from_errno(errno);
	while (rv == VIGIL_OK && (de = readdir(d)) != NULL) {
		unsigned long long first;
		char rest[16];
		scan_seg sg;

		if (strlen(de->d_name) >= sizeof sg.name ||
		    sscanf(de->d_name, "seg-%*8[0-9]-%20llu%15s", &first, rest) != 2 ||
		    (strcmp(rest, ".log") != 0 && strcmp(rest, ".log.zst") != 0))
			continue;
		sg.first = first;
		sg.zst = rest[4] != '\0';
		snprintf(sg.name, sizeof sg.name, "%s", de->d_name);
		rv = vigil_vec_push(out, &sg);
	}
	closedir(d);
	if (out->len > 0)
		qsort(out->data, out->len, sizeof(scan_seg), scan_seg_cmp);
	return rv;
}

static const scan_seg *
scan_seg_find(const vigil_vec *segs, uint64_t first)
{
	scan_seg key = { .first = first, .zst = false };
	size_t lo = 0, hi = segs->len;

	/* the first entry >= (first, plain) */
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (scan_seg_cmp(vigil_vec_at(segs, mid), &key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < segs->len && ((const scan_seg *)vigil_vec_at(segs, lo))->first == first)
		return vigil_vec_at(segs, lo);
	return NULL;
}

/* Where the records of one segment are read from: a file descriptor for a
 * plain segment, a reader for a compressed one. */
typedef struct scan_cur {
	uint64_t      first; /* segment open, or that failed to (0: none) */
	vigil_err     bad;   /* why it failed to open (VIGIL_OK: open) */
	store_diag    bad_why;
	int           fd;
	store_reader *rd;
	store_record  last;  /* the reader's current record */
	bool          have_last;
	uint8_t      *buf;   /* a plain segment's record (store_frame_at) */
	size_t        cap;
	con_damage   *dmg;   /* what a compressed segment's reader skips */
	char          name[64];   /* the segment open, its file name */
	char          path[4200]; /* and its path */
} scan_cur;

static void
scan_cur_close(scan_cur *c)
{
	if (c->fd >= 0)
		close(c->fd);
	store_reader_close(c->rd);
	c->fd = -1;
	c->rd = NULL;
	c->first = 0;
	c->bad = VIGIL_OK;
	c->have_last = false;
}

/* Opens sg. A failure is kept (c->bad, c->bad_why: the reader's words, or
 * ""), and each read of the segment returns it: VIGIL_ENOTFOUND when the
 * segment is gone, else why it cannot be read. */
static vigil_err
scan_cur_open(scan_cur *c, const char *dir, const scan_seg *sg)
{
	scan_cur_close(c);
	c->first = sg->first;
	c->bad_why.msg[0] = '\0';
	snprintf(c->name, sizeof c->name, "%s", sg->name);
	snprintf(c->path, sizeof c->path, "%s/%s", dir, sg->name);
	if (!sg->zst) {
		c->fd = open(c->path, O_RDONLY | O_CLOEXEC);
		if (c->fd < 0)
			c->bad = vigil_err_from_errno(errno);
	} else {
		c->bad = store_reader_open_segment(c->path, con_damage_on_corrupt, c->dmg, &c->rd,
		    &c->bad_why);
	}
	return c->bad;
}

/*
 * The record at off of the open segment. VIGIL_ENOTFOUND if there is none
 * (a stale position, one inside a damaged stretch the reader of a
 * compressed segment reported, a segment gone: the caller goes on); another
 * error if it cannot be read (a damaged frame, EIO, a segment that would
 * not open: *why says so when the reader did).
 */
static vigil_err
scan_cur_read(scan_cur *c, uint64_t off, store_record *ret, store_diag *why)
{
	vigil_err rv;

	why->msg[0] = '\0';
	if (c->bad != VIGIL_OK) {
		*why = c->bad_why;
		return c->bad;
	}
	if (c->rd != NULL) {
		/* positions come in offset order: one pass over the segment */
		while (!c->have_last || c->last.offset < off) {
			rv = store_reader_next(c->rd, &c->last, why);
			if (rv != VIGIL_OK) {
				c->have_last = false;
				return rv;
			}
			c->have_last = true;
		}
		if (c->last.offset != off)
			return VIGIL_ENOTFOUND;
		*ret = c->last;
		return VIGIL_OK;
	}
	/* the newest records of the open segment may be only in the writer's
	 * journal (store_frame_at; docs/archive.md, "The journal") */
	return store_frame_at(c->fd, c->path, off, 0, &c->buf, &c->cap, ret);
}

/* A position that could not be read (rv, why), counted in dmg. */
static void
scan_unreadable(con_damage *dmg, const char *segment, uint64_t off, vigil_err rv,
    const store_diag *why)
{
	if (why->msg[0] != '\0')
		con_damage_note(dmg, segment, off, "%s", why->msg);
	else
		con_damage_note(dmg, segment, off, "record the entity index points at: %s",
		    vigil_strerror(rv));
}

/* The id of q the index has the fewest entries for (its kind in *ret_kind),
 * or NULL when q names no entity. */
static const char *
search_entity_pick(con_ents *ents, const con_search_q *q, con_ent_kind *ret_kind)
{
	const char *ids[] = { q->card, q->merchant, q->terminal, q->device, q->ip };
	const char *best = NULL;
	uint64_t bestn = 0;

	for (int i = 0; i < 5; i++) {
		uint64_t n;

		if (ids[i][0] == '\0')
			continue;
		n = con_ents_count(ents, (con_ent_kind)(CON_ENT_CARD + i), ids[i]);
		if (best == NULL || n < bestn) {
			best = ids[i];
			bestn = n;
			*ret_kind = (con_ent_kind)(CON_ENT_CARD + i);
		}
	}
	return best;
}

bool
con_ents_usable(con_app *app)
{
	con_ents_stats st;
	con_tailpos pos;

	if (app->ents == NULL)
		return false;
	con_ents_get_stats(app->ents, &st);
	if (app->ix != NULL)
		con_index_pos(app->ix, &pos);
	/* as far as the queue's index, whose newest time is a search's default
	 * end: else the search would miss what that index already shows */
	return st.ready && (app->ix == NULL || st.last_seq >= pos.last_seq);
}

bool
con_search_by_index(con_app *app, const con_search_q *q)
{
	con_ent_kind kind;

	return con_ents_usable(app) && search_entity_pick(app->ents, q, &kind) != NULL;
}

static int
scan_pos_cmp(const void *a, const void *b)
{
	const con_ent_pos *x = a, *y = b;

	if (x->seg_first != y->seg_first)
		return x->seg_first < y->seg_first ? -1 : 1;
	return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/*
 * The scored records at pos[0..n) (in archive order, each once) with event
 * time in [from, to), those passing q's lean filters (q NULL: all), decoded
 * into s and handed to fn until it returns false. A position whose segment
 * is gone (retention) or that holds no scored record is passed over.
 */
static vigil_err
scan_positions(con_app *app, vigil_vec *pos, int64_t from, int64_t to, const con_search_q *q,
    store_scored *s, bool (*fn)(void *arg, const store_scored *s), void *arg,
    uint64_t *ret_scanned, con_damage *dmg, char *errbuf, size_t errlen)
{
	store_scored_lean *lean = malloc(sizeof *lean);
	scan_cur cur = { .fd = -1, .dmg = dmg };
	vigil_vec segs;
	bool relisted = false;
	store_diag d;
	vigil_err rv;

	vigil_vec_init(&segs, sizeof(scan_seg), 1u << 20);
	if (lean == NULL) {
		rv = VIGIL_ENOMEM;
		snprintf(errbuf, errlen, "out of memory");
		goto out;
	}
	rv = scan_segments(app->archive_dir, &segs);
	if (rv != VIGIL_OK) {
		snprintf(errbuf, errlen, "%s: %s", app->archive_dir, vigil_strerror(rv));
		goto out;
	}
	if (pos->len > 1)
		qsort(pos->data, pos->len, sizeof(con_ent_pos), scan_pos_cmp);
	for (size_t i = 0; i < pos->len; i++) {
		const con_ent_pos *p = vigil_vec_at(pos, i);
		const scan_seg *sg;
		store_record r;

		if (i > 0 && scan_pos_cmp(p, vigil_vec_at(pos, i - 1)) == 0)
			continue; /* one record, two of the ids asked for */
		if (cur.first != p->seg_first) {
			sg = scan_seg_find(&segs, p->seg_first);
			if (sg == NULL)
				continue; /* gone (retention): no longer in the archive */
			if (scan_cur_open(&cur, app->archive_dir, sg) != VIGIL_OK && !relisted) {
				/* compressed (and the plain file removed) meanwhile */
				relisted = true;
				if (scan_segments(app->archive_dir, &segs) == VIGIL_OK &&
				    (sg = scan_seg_find(&segs, p->seg_first)) != NULL)
					(void)scan_cur_open(&cur, app->archive_dir, sg);
				else
					cur.bad = VIGIL_ENOTFOUND; /* removed by retention since */
			}
		}
		rv = scan_cur_read(&cur, p->offset, &r, &d);
		if (rv != VIGIL_OK) {
			if (rv != VIGIL_ENOTFOUND) /* not a stale position or a segment gone */
				scan_unreadable(dmg, cur.name, p->offset, rv, &d);
			continue;
		}
		if (r.type != STORE_REC_SCORE)
			continue;
		++*ret_scanned;
		r.segment = cur.name;
		r.offset = p->offset;
		/* the position is checked by the record itself: its ids and time */
		if (store_scored_decode_lean(r.payload, r.len, lean, &d) != VIGIL_OK) {
			scan_undecodable(dmg, &r, &d);
			continue;
		}
		if (lean->event_time_ms < from || lean->event_time_ms >= to ||
		    (q != NULL && !search_match_lean(q, lean)))
			continue;
		if (store_scored_decode(r.payload, r.len, s, &d) != VIGIL_OK) {
			scan_undecodable(dmg, &r, &d);
			continue;
		}
		if (!fn(arg, s))
			break;
	}
	rv = VIGIL_OK;
out:
	scan_cur_close(&cur);
	free(cur.buf);
	free(lean);
	vigil_vec_fini(&segs);
	return rv;
}

vigil_err
con_search_entities(con_app *app, const con_ent_key *keys, uint32_t nkeys, int64_t from,
    int64_t to, uint64_t max, store_scored *s, bool (*fn)(void *arg, const store_scored *s),
    void *arg, uint64_t *ret_scanned, bool *ret_truncated, con_damage *dmg, char *errbuf,
    size_t errlen)
{
	vigil_vec pos;
	vigil_err rv = VIGIL_OK;

	*ret_scanned = 0;
	*ret_truncated = false;
	vigil_vec_init(&pos, sizeof(con_ent_pos), max);
	for (uint32_t i = 0; i < nkeys && rv == VIGIL_OK; i++)
		rv = con_ents_positions(app->ents, keys[i].kind, keys[i].id, from, to, &pos);
	if (rv == VIGIL_ETOOBIG) {
		*ret_truncated = true; /* read what fits, say it was cut */
		rv = VIGIL_OK;
	}
	if (rv != VIGIL_OK)
		snprintf(errbuf, errlen, "entity index: %s", vigil_strerror(rv));
	else
		rv = scan_positions(app, &pos, from, to, NULL, s, fn, arg, ret_scanned, dmg,
		    errbuf, errlen);
	vigil_vec_fini(&pos);
	return rv;
}

/*
 * con_search_scan's work for a q that names an entity, by the entity index:
 * the records at the entity's positions, in archive order, filtered as a
 * scan filters them.
 */
static vigil_err
search_entity(con_app *app, const con_search_q *q, store_scored *s,
    bool (*fn)(void *arg, const store_scored *s), void *arg, uint64_t *ret_scanned,
    con_damage *dmg, char *errbuf, size_t errlen)
{
	vigil_vec pos;
	con_ent_kind kind = CON_ENT_CARD;
	const char *id = search_entity_pick(app->ents, q, &kind);
	bool capped = false;
	vigil_err rv;

	vigil_vec_init(&pos, sizeof(con_ent_pos), SEARCH_SCAN_MAX);
	rv = con_ents_positions(app->ents, kind, id, q->from_ms, q->to_ms, &pos);
	if (rv == VIGIL_ETOOBIG) {
		capped = true; /* read what fits, say it was cut */
	} else if (rv != VIGIL_OK) {
		snprintf(errbuf, errlen, "entity index: %s", vigil_strerror(rv));
		goto out;
	}
	rv = scan_positions(app, &pos, q->from_ms, q->to_ms, q, s, fn, arg, ret_scanned, dmg,
	    errbuf, errlen);
	if (rv == VIGIL_OK && capped)
		*ret_scanned = SEARCH_SCAN_MAX + 1ull;
out:
	vigil_vec_fini(&pos);
	return rv;
}

typedef struct search_ctx {
	con_app        *app;
	const con_search_q *q;
	json_t         *items;
	bool            more;
} search_ctx;

static bool
search_each(void *arg, const store_scored *s)
{
	search_ctx *c = arg;
	int label;

	if (!search_match(c->app, c->q, s, &label))
		return true;
	if (json_array_size(c->items) == c->q->limit) {
		c->more = true;
		return false;
	}
	json_array_append_new(c->items, search_json(s, label));
	return true;
}

vigil_err
con_search_run(con_app *app, const con_search_q *q, json_t *items, bool *ret_more,
    uint64_t *ret_scanned, con_damage *dmg, char *errbuf, size_t errlen)
{
	store_scored *s = malloc(sizeof *s);
	search_ctx c = { app, q, items, false };
	vigil_err rv = VIGIL_ENOMEM;

	*ret_scanned = 0;
	if (s == NULL)
		snprintf(errbuf, errlen, "out of memory");
	else if (con_search_by_index(app, q))
		rv = search_entity(app, q, s, search_each, &c, ret_scanned, dmg, errbuf, errlen);
	else
		rv = con_search_scan(app, q->from_ms, q->to_ms, q, s, search_each, &c, ret_scanned,
		    dmg, errbuf, errlen);
	*ret_more = c.more;
	free(s);
	return rv;
}

