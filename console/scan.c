/* SPDX-License-Identifier: MIT */
/*
 * console/scan.c - the search of GET /api/search (search.c) over the
 * archive: the scored records of an event-time range (store_reader skips
 * the segments outside it), each filtered in place by the lean decoder
 * (store/lean.h: no protobuf-c, no copies) and decoded whole only when
 * it passes, its label looked up last. In the console library so that
 * bench/console times the same code.
 */
#include <stdlib.h>
#include <string.h>

#include "archive.h"
#include "console.h"
#include "lean.h"

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
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:f, s:s, s:i, s:s, s:o}",
	    "txn_id", t->txn_id, "time", time, "card_id", t->card_id, "merchant_id", t->merchant_id,
	    "terminal_id", t->terminal_id, "device_id", t->device_id, "ip", t->ip,
	    "amount", vigil_txn_amount(t), "currency", t->currency, "score", (int)s->score,
	    "decision", vigil_decision_name(s->decision),
	    "label", con_json_label(label));
}

/*
 * Reads the scored records of [from, to) of the archive, calling fn for
 * each until it returns false. *ret_scanned: records read. VIGIL_OK, or
 * the reader's error (errbuf).
 */
vigil_err
con_search_scan(con_app *app, int64_t from, int64_t to, const con_search_q *q, store_scored *s,
    bool (*fn)(void *arg, const store_scored *s), void *arg, uint64_t *ret_scanned,
    char *errbuf, size_t errlen)
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
	rv = store_reader_open(app->archive_dir, from, to, NULL, NULL, &rd, &d);
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
			if (store_scored_decode_lean(r.payload, r.len, lean, &ld) != VIGIL_OK ||
			    !search_match_lean(q, lean))
				continue;
		}
		if (store_scored_decode(r.payload, r.len, s, &d) != VIGIL_OK)
			continue;
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
    uint64_t *ret_scanned, char *errbuf, size_t errlen)
{
	store_scored *s = malloc(sizeof *s);
	search_ctx c = { app, q, items, false };
	vigil_err rv = VIGIL_ENOMEM;

	*ret_scanned = 0;
	if (s == NULL)
		snprintf(errbuf, errlen, "out of memory");
	else
		rv = con_search_scan(app, q->from_ms, q->to_ms, q, s, search_each, &c, ret_scanned,
		    errbuf, errlen);
	*ret_more = c.more;
	free(s);
	return rv;
}

