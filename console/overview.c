/* SPDX-License-Identifier: MIT */
/*
 * console/overview.c - GET /api/overview: the figures of the review work
 * per UTC day (docs/console.md, "Overview"):
 *   scored, alerts          the index's daily totals (every scored record;
 *                           reviews + declines)
 *   fraud, legit, precision the alerts of that day (event time) labelled
 *                           as known now; precision fraud / (fraud + legit)
 *   caught                  the money of the alerts labelled fraud, per
 *                           currency
 *   missed, missed_money    fraud labels given that day (label time) to
 *                           transactions vigild allowed (no case), the
 *                           newest label of each in the window deciding;
 *                           the money where the card's recent history in
 *                           the index has the transaction (missed_unknown
 *                           where it does not)
 *   labels, by_analyst      labels given that day by analysts (source
 *                           "analyst:NAME"): the analysts' throughput
 * Bounded work: at most OV_DAYS_MAX days, OV_CASES_MAX cases and
 * OV_LABELS_MAX label records read; the reply says when a bound was reached.
 */
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "archive.h"
#include "console.h"
#include "hashtab.h"
#include "http.h"

#define OV_DAYS_MAX   92
#define OV_DAYS_DEF   14
#define OV_CASES_MAX  2000000u
#define OV_LABELS_MAX 1000000u /* each kept in a hash: ~150 bytes */

typedef struct ov_day {
	uint64_t scored, alerts, fraud, legit, missed, missed_unknown, labels;
	json_t  *caught, *missed_money, *by_analyst; /* objects */
} ov_day;

typedef struct ov_seen {
	char           txn_id[VIGIL_ID_MAX + 1], card_id[VIGIL_ID_MAX + 1];
	bool           fraud;
	struct ov_day *day;
	UT_hash_handle hh;
} ov_seen;

typedef struct ov_ctx {
	con_app *app;
	int64_t  day0; /* first day (days since the epoch) */
	uint32_t ndays;
	ov_day   days[OV_DAYS_MAX];
	ov_seen *missed; /* labelled transactions: their newest label */
	con_damage dmg;  /* what the read of the labels passed over */
} ov_ctx;

static int64_t
ov_day_of(int64_t ms)
{
	return ms >= 0 ? ms / VIGIL_MS_PER_DAY : (ms - VIGIL_MS_PER_DAY + 1) / VIGIL_MS_PER_DAY;
}

static void
ov_money_add(json_t *o, const char *currency, int64_t minor)
{
	int e = vigil_currency_exponent(currency);
	double scale = pow(10, e < 0 ? 2 : e), v = (double)minor / scale; /* KWD: 3 decimals */
	json_t *cur = json_object_get(o, currency);

	v += cur != NULL ? json_real_value(cur) : 0;
	json_object_set_new(o, currency, json_real(rint(v * scale) / scale));
}

static ov_day *
ov_at(ov_ctx *c, int64_t ms)
{
	int64_t d = ov_day_of(ms) - c->day0;

	return d >= 0 && d < (int64_t)c->ndays ? &c->days[d] : NULL;
}

static bool
ov_case(void *arg, const con_case *cs)
{
	ov_ctx *c = arg;
	ov_day *d = ov_at(c, cs->event_time_ms);

	if (d == NULL)
		return true;
	if (cs->label == 1) {
		d->fraud++;
		ov_money_add(d->caught, cs->currency, cs->amount_minor);
	} else if (cs->label == 0) {
		d->legit++;
	}
	return true;
}

static void
ov_total(void *arg, uint16_t rule, const con_stat *st)
{
	ov_day *d = arg;

	if (rule == CON_STAT_TOTAL) {
		d->scored = st->n;
		d->alerts = st->alerts;
	}
}

/* Missed: fraud, as its newest label says, on a transaction that was no
 * alert (no case); its amount from the card's recent history in the
 * index when it is there. */
static void
ov_missed(ov_ctx *c)
{
	con_card_txn *hist = malloc(CON_CARD_HISTORY * sizeof *hist);
	ov_seen *x, *xt;
	con_case cs;

	HASH_ITER(hh, c->missed, x, xt) {
		uint32_t n = 0;
		bool known = false;

		if (!x->fraud || con_index_case(c->app->ix, x->txn_id, &cs) != VIGIL_ENOTFOUND)
			continue;
		x->day->missed++;
		if (hist != NULL && x->card_id[0] != '\0' && con_index_card_history(c->app->ix,
		    x->card_id, hist, CON_CARD_HISTORY, &n) == VIGIL_OK) {
			for (uint32_t i = 0; i < n && !known; i++) {
				if (strcmp(hist[i].txn_id, x->txn_id) != 0)
					continue;
				ov_money_add(x->day->missed_money, hist[i].currency, hist[i].amount_minor);
				known = true;
			}
		}
		if (!known)
			x->day->missed_unknown++;
	}
	free(hist);
}

/* The label records of the window (by label time). */
static vigil_err
ov_labels(ov_ctx *c, int64_t from, int64_t to, bool *ret_truncated, char *errbuf, size_t errlen)
{
	store_reader *rd = NULL;
	store_record r;
	store_diag dg;
	store_label l;
	uint64_t n = 0;
	vigil_err rv;

	*ret_truncated = false;
	rv = store_reader_open(c->app->archive_dir, from, to, con_damage_on_corrupt, &c->dmg, &rd,
	    &dg);
	if (rv == VIGIL_ENOTFOUND)
		return VIGIL_OK;
	if (rv != VIGIL_OK) {
		snprintf(errbuf, errlen, "archive: %s", dg.msg);
		return rv;
	}
	store_reader_want(rd, 1u << STORE_REC_LABEL);
	while ((rv = store_reader_next(rd, &r, &dg)) == VIGIL_OK) {
		ov_day *d;

		if (r.type != STORE_REC_LABEL)
			continue;
		if (++n > OV_LABELS_MAX) {
			*ret_truncated = true;
			break;
		}
		if (store_label_decode(r.payload, r.len, &l, &dg) != VIGIL_OK) {
			con_damage_note(&c->dmg, r.segment, r.offset, "label record does not decode: %s",
			    dg.msg);
			continue;
		}
		if ((d = ov_at(c, r.event_time_ms)) == NULL)
			continue;
		if (strncmp(l.source, "analyst:", 8) == 0) {
			json_t *a = json_object_get(d->by_analyst, l.source + 8);

			d->labels++;
			json_object_set_new(d->by_analyst, l.source + 8,
			    json_integer(a != NULL ? json_integer_value(a) + 1 : 1));
		}
		/* the newest label of each transaction decides (a fraud label
		 * corrected to legitimate is no fraud) */
		{
			ov_seen *x = NULL;

			HASH_FIND_STR(c->missed, l.txn_id, x);
			if (x == NULL) {
				/* no memory: an answer, not totals missing a label */
				x = calloc(1, sizeof *x);
				if (x == NULL) {
					rv = VIGIL_ENOMEM;
					break;
				}
				snprintf(x->txn_id, sizeof x->txn_id, "%s", l.txn_id);
				HASH_ADD_STR(c->missed, txn_id, x);
				if (!VIGIL_HASH_ADDED(x)) {
					free(x);
					rv = VIGIL_ENOMEM;
					break;
				}
			}
			snprintf(x->card_id, sizeof x->card_id, "%s", l.card_id);
			x->fraud = l.fraud;
			x->day = d;
		}
	}
	if (rv == VIGIL_ENOTFOUND)
		rv = VIGIL_OK;
	if (rv == VIGIL_ENOMEM)
		snprintf(errbuf, errlen, "out of memory counting the labels");
	else if (rv != VIGIL_OK)
		snprintf(errbuf, errlen, "archive: %s", dg.msg);
	store_reader_close(rd);
	if (rv == VIGIL_OK)
		ov_missed(c);
	return rv;
}

static bool
ov_parse(con_app *app, struct evhttp_request *req, int64_t *ret_from, int64_t *ret_to)
{
	struct evkeyvalq kv;
	struct evkeyval *e;
	con_tailpos pos;
	bool from = false, ok = true;

	con_index_pos(app->ix, &pos);
	/* default: the OV_DAYS_DEF days up to the newest indexed one */
	*ret_to = (ov_day_of(pos.max_event_ms > 0 ? pos.max_event_ms : vigil_now_ms()) + 1) *
	    VIGIL_MS_PER_DAY;
	if (!con_query_parse(req, &kv))
		return false;
	TAILQ_FOREACH(e, &kv, next) {
		int64_t t;

		if (strcmp(e->key, "from") != 0 && strcmp(e->key, "to") != 0) {
			con_send_error(req, 400, e->key, "unknown parameter (from, to)");
			ok = false;
			break;
		}
		if (vigil_date_parse(e->value, &t) != VIGIL_OK) {
			con_send_error(req, 400, e->key, "bad value \"%.80s\" (YYYY-MM-DD)", e->value);
			ok = false;
			break;
		}
		if (e->key[0] == 'f') {
			from = true;
			*ret_from = t;
		} else {
			*ret_to = t + VIGIL_MS_PER_DAY; /* to is a day, included */
		}
	}
	evhttp_clear_headers(&kv);
	if (!ok)
		return false;
	if (!from)
		*ret_from = *ret_to - OV_DAYS_DEF * VIGIL_MS_PER_DAY;
	if (!con_range_ok(req, *ret_from, *ret_to))
		return false;
	if (*ret_to - *ret_from > OV_DAYS_MAX * VIGIL_MS_PER_DAY) {
		con_send_error(req, 400, "to", "from..to must be 1 to %d days (default: the last %d "
		    "days indexed)", OV_DAYS_MAX, OV_DAYS_DEF);
		return false;
	}
	return true;
}

void
con_api_overview(con_app *app, struct evhttp_request *req, const con_user *who)
{
	ov_ctx *c = calloc(1, sizeof *c);
	int64_t from = 0, to = 0;
	uint64_t t0 = vigil_mono_ns();
	bool cases_trunc = false, labels_trunc = false;
	char err[600];
	json_t *days = NULL;
	vigil_err rv;

	(void)who;
	if (c == NULL) {
		con_send_error(req, 500, NULL, "out of memory");
		return;
	}
	if (!ov_parse(app, req, &from, &to))
		goto out;
	c->app = app;
	c->day0 = ov_day_of(from);
	c->ndays = (uint32_t)((to - from) / VIGIL_MS_PER_DAY);
	for (uint32_t i = 0; i < c->ndays; i++) {
		c->days[i].caught = json_object();
		c->days[i].missed_money = json_object();
		c->days[i].by_analyst = json_object();
		rv = con_index_stats(app->ix, c->day0 + i, c->day0 + i, ov_total, &c->days[i]);
		if (rv != VIGIL_OK) {
			con_send_error(req, 500, NULL, "index: %s", vigil_strerror(rv));
			goto out;
		}
	}
	rv = con_index_cases_each(app->ix, from, to, OV_CASES_MAX, ov_case, c, &cases_trunc);
	if (rv != VIGIL_OK) {
		con_send_error(req, 500, NULL, "index: %s", vigil_strerror(rv));
		goto out;
	}
	rv = ov_labels(c, from, to, &labels_trunc, err, sizeof err);
	if (rv != VIGIL_OK) {
		con_send_error(req, 500, NULL, "%s", err);
		goto out;
	}
	days = json_array();
	for (uint32_t i = 0; i < c->ndays; i++) {
		ov_day *d = &c->days[i];
		char day[32];

		vigil_time_format_rfc3339((c->day0 + i) * VIGIL_MS_PER_DAY, day, sizeof day);
		day[10] = '\0';
		json_array_append_new(days, json_pack("{s:s, s:I, s:I, s:I, s:I, s:o, s:o, s:I, s:o, "
		    "s:I, s:I, s:o}", "day", day, "scored", (json_int_t)d->scored,
		    "alerts", (json_int_t)d->alerts, "fraud", (json_int_t)d->fraud,
		    "legit", (json_int_t)d->legit,
		    "precision", d->fraud + d->legit > 0 ?
		    json_real((double)d->fraud / (double)(d->fraud + d->legit)) : json_null(),
		    "caught", d->caught, "missed", (json_int_t)d->missed,
		    "missed_money", d->missed_money, "missed_unknown", (json_int_t)d->missed_unknown,
		    "labels", (json_int_t)d->labels, "by_analyst", d->by_analyst));
		d->caught = d->missed_money = d->by_analyst = NULL;
	}
	{
		char f[32], t[32];

		vigil_time_format_rfc3339(from, f, sizeof f);
		vigil_time_format_rfc3339(to - VIGIL_MS_PER_DAY, t, sizeof t);
		f[10] = t[10] = '\0';
		con_send_json(req, 200, con_damage_json(json_pack("{s:s, s:s, s:o, s:b, s:f}",
		    "from", f, "to", t, "days", days, "truncated", cases_trunc || labels_trunc,
		    "ms", (double)(vigil_mono_ns() - t0) / 1e6), &c->dmg, "/api/overview"));
	}
out:
	{
		ov_seen *s, *st;

		HASH_ITER(hh, c->missed, s, st) {
			HASH_DEL(c->missed, s);
			free(s);
		}
	}
	for (uint32_t i = 0; i < OV_DAYS_MAX; i++) {
		json_decref(c->days[i].caught);
		json_decref(c->days[i].missed_money);
		json_decref(c->days[i].by_analyst);
	}
	free(c);
}
