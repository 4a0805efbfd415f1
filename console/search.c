/* SPDX-License-Identifier: MIT */
/*
 * console/search.c - any archived transaction, found and labelled
 * (docs/console.md, "Search and label any transaction"). The index keeps
 * reviews and declines only; chargebacks arrive mostly on allowed
 * transactions, so a search reads the archive itself: an entity's records
 * where the entity index says they are, over any range, or else a bounded
 * event time range (store_reader skips the segments outside it), each
 * scored record filtered; a label names the transaction by id and event time, which
 * the console looks up in the archive (the card routes the label) before
 * sending it to vigild like a case's.
 */
#include <event2/http.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "archive.h"
#include "console.h"
#include "http.h"
#include "vigil_client.h"

#define SEARCH_RANGE_MAX_MS (31 * VIGIL_MS_PER_DAY)
#define SEARCH_SCAN_MAX     CON_SEARCH_SCAN_MAX
#define SEARCH_LIMIT_MAX    200

typedef con_search_q search_q;

static const char *const search_reasons[] = {
	"chargeback", "cardholder_confirmed", "cardholder_denied", "false_positive",
	"first_party", "other", NULL,
};

static bool
search_id(const char *v, char *dst, size_t len)
{
	if (strlen(v) == 0 || strlen(v) >= len)
		return false;
	snprintf(dst, len, "%s", v);
	return true;
}

/* A search key other than from and to, into q. */
static con_qs
search_key(void *arg, const char *k, const char *v)
{
	search_q *q = arg;
	char *end;

	if (strcmp(k, "card") == 0)
		return search_id(v, q->card, sizeof q->card) ? CON_QS_OK : CON_QS_BAD_VALUE;
	if (strcmp(k, "merchant") == 0)
		return search_id(v, q->merchant, sizeof q->merchant) ? CON_QS_OK : CON_QS_BAD_VALUE;
	if (strcmp(k, "terminal") == 0)
		return search_id(v, q->terminal, sizeof q->terminal) ? CON_QS_OK : CON_QS_BAD_VALUE;
	if (strcmp(k, "device") == 0)
		return search_id(v, q->device, sizeof q->device) ? CON_QS_OK : CON_QS_BAD_VALUE;
	if (strcmp(k, "ip") == 0) { /* the archive's one spelling of an address (vigil.h) */
		if (!search_id(v, q->ip, sizeof q->ip))
			return CON_QS_BAD_VALUE;
		(void)vigil_ip_canonical(v, q->ip);
		return CON_QS_OK;
	}
	if (strcmp(k, "min_amount") == 0 || strcmp(k, "max_amount") == 0) {
		double d = strtod(v, &end);

		if (*v == '\0' || *end != '\0' || !(d >= 0) || !isfinite(d)) /* as the queue's */
			return CON_QS_BAD_VALUE;
		if (k[1] == 'i')
			q->min_amount = d;
		else
			q->max_amount = d;
		return CON_QS_OK;
	}
	if (strcmp(k, "decision") == 0) {
		vigil_decision d;

		if (vigil_decision_parse(v, &d) != VIGIL_OK)
			return CON_QS_BAD_VALUE;
		q->decision = (int)d;
		return CON_QS_OK;
	}
	if (strcmp(k, "label") == 0) {
		if (strcmp(v, "fraud") == 0)
			q->label = 1;
		else if (strcmp(v, "legit") == 0)
			q->label = 0;
		else if (strcmp(v, "none") == 0)
			q->label = -1;
		else
			return CON_QS_BAD_VALUE;
		return CON_QS_OK;
	}
	if (strcmp(k, "limit") == 0) {
		if (!con_query_uint(v, 1, SEARCH_LIMIT_MAX, &q->limit))
			return CON_QS_BAD_VALUE;
		return CON_QS_OK;
	}
	return CON_QS_UNKNOWN;
}

static bool
search_parse(con_app *app, struct evhttp_request *req, search_q *q)
{
	con_tailpos pos;
	char bad[64], val[8];
	bool from, indexed;
	con_qs r;

	memset(q, 0, sizeof *q);
	q->min_amount = q->max_amount = -1;
	q->label = -2;
	q->limit = 50;
	con_index_pos(app->ix, &pos);
	q->to_ms = pos.max_event_ms + 1;
	r = con_query_walk(req, &q->from_ms, &q->to_ms, &from, search_key, q, bad, sizeof bad, val,
	    sizeof val);
	if (r == CON_QS_REPLIED)
		return false;
	if (r != CON_QS_OK) {
		con_send_error(req, 400, bad, "not a valid value or not a search key (from, to, "
		    "card, merchant, terminal, device, ip, min_amount, max_amount, decision, label, "
		    "limit)");
		return false;
	}
	/* by the entity index, an entity's records over any range: by
	 * default, the whole archive */
	indexed = con_search_by_index(app, q);
	if (!from)
		q->from_ms = indexed ? INT64_MIN : q->to_ms - VIGIL_MS_PER_DAY;
	if (!con_range_ok(req, q->from_ms, q->to_ms))
		return false;
	if (q->min_amount >= 0 && q->max_amount >= 0 && q->min_amount > q->max_amount) {
		con_send_error(req, 400, "max_amount", "min_amount is over max_amount: no amount "
		    "is between");
		return false;
	}
	if (!indexed && q->to_ms - q->from_ms > SEARCH_RANGE_MAX_MS) {
		con_send_error(req, 400, "to", "from..to must be a range of at most 31 days (default: "
		    "the last day indexed)");
		return false;
	}
	return true;
}

void
con_api_search(con_app *app, struct evhttp_request *req, const con_user *who)
{
	json_t *items = json_array();
	search_q q;
	uint64_t scanned = 0;
	uint64_t t0 = vigil_mono_ns();
	con_damage dmg = { 0 };
	char err[600], from[32], to[32];
	bool more = false, by_index;

	(void)who;
	if (items == NULL) {
		con_send_error(req, 500, NULL, "out of memory");
		goto out;
	}
	if (!search_parse(app, req, &q))
		goto out;
	by_index = con_search_by_index(app, &q);
	if (con_search_run(app, &q, items, &more, &scanned, &dmg, err, sizeof err) != VIGIL_OK) {
		con_send_error(req, 500, NULL, "%s", err);
		goto out;
	}
	if (q.from_ms != INT64_MIN)
		vigil_time_format_rfc3339(q.from_ms, from, sizeof from);
	vigil_time_format_rfc3339(q.to_ms, to, sizeof to);
	/* from null: the whole archive (an entity's search with no from) */
	con_send_json(req, 200, con_damage_json(json_pack("{s:s?, s:s, s:o, s:b, s:I, s:b, s:s, "
	    "s:f}", "from", q.from_ms == INT64_MIN ? NULL : from, "to", to, "items", items,
	    "more", more, "scanned", (json_int_t)scanned, "truncated", scanned > SEARCH_SCAN_MAX,
	    "via", by_index ? "entity_index" : "scan", "ms", (double)(vigil_mono_ns() - t0) / 1e6),
	    &dmg, "/api/search"));
	items = NULL;
out:
	json_decref(items);
}

typedef struct find_ctx {
	const char *txn_id;
	bool        found;
	vigil_txn   txn;
	vigil_decision decision;
} find_ctx;

static bool
find_each(void *arg, const store_scored *s)
{
	find_ctx *f = arg;

	if (strcmp(s->txn.txn_id, f->txn_id) != 0)
		return true;
	f->found = true;
	f->txn = s->txn;
	f->decision = s->decision;
	return false;
}

/*
 * POST /api/txns/ID/label {"fraud", "reason", "time", "expected"}: time is
 * the transaction's event time as a search returned it; reason one of
 * search_reasons; expected, optional, the label the row showed (409 if it
 * changed meanwhile). The label goes to vigild (source analyst:NAME) like
 * a case's; the audit line has the reason.
 */
void
con_api_txn_label(con_app *app, struct evhttp_request *req, const con_user *who,
    const char *id)
{
	static const char *const keys[] = { "fraud", "reason", "time", "expected", NULL };
	json_t *body = con_body_json_keys(req, keys), *jf, *jr, *jt, *w = NULL;
	store_scored *s = NULL;
	find_ctx f;
	vigil_client_label_req lr;
	vigil_client_errinfo ei;
	vigil_client_err cerr;
	char source[40], err[600], before_src[32];
	const char *reason;
	con_claim cl;
	int64_t t, now = vigil_now_ms(), before_ms;
	uint64_t scanned;
	con_damage dmg = { 0 };
	int before, expected;
	bool ok = false;

	memset(&f, 0, sizeof f);
	f.txn_id = id;
	if (body == NULL)
		return;
	jf = json_object_get(body, "fraud");
	jr = json_object_get(body, "reason");
	jt = json_object_get(body, "time");
	/* each key is named when it is the one missing or wrong (a missing
	 * reason was named "fraud"); unknown keys were refused above */
	if (!json_is_boolean(jf)) {
		con_send_error(req, 400, "fraud", "must be true or false");
		goto out;
	}
	reason = json_string_value(jr);
	for (int i = 0; reason != NULL && search_reasons[i] != NULL; i++)
		ok = ok || strcmp(reason, search_reasons[i]) == 0;
	if (!ok) {
		con_send_error(req, 400, "reason", "chargeback, cardholder_confirmed, "
		    "cardholder_denied, false_positive, first_party or other");
		goto out;
	}
	if (!json_is_string(jt) || con_time_parse(json_string_value(jt), &t) != VIGIL_OK) {
		con_send_error(req, 400, "time", "the transaction's event time (RFC 3339), as "
		    "a search returns it");
		goto out;
	}
	if (!con_label_expected(req, body, &expected))
		goto out;
	s = malloc(sizeof *s);
	if (s == NULL) {
		con_send_error(req, 500, NULL, "out of memory");
		goto out;
	}
	if (con_search_scan(app, t, t + 1, NULL, s, find_each, &f, &scanned, &dmg, err,
	    sizeof err) != VIGIL_OK) {
		con_send_error(req, 500, NULL, "%s", err);
		goto out;
	}
	if (!f.found && dmg.n > 0) { /* it may be what could not be read */
		con_send_error(req, 500, "txn_id", "%s: not found at %s, and the archive there is "
		    "damaged: %s", id, json_string_value(jt), dmg.first);
		goto out;
	}
	if (!f.found) {
		con_send_error(req, 404, "txn_id", "%s: no transaction with this id at %s in the "
		    "archive", id, json_string_value(jt));
		goto out;
	}
	if (con_index_claim_get(app->ix, id, now, &cl) == VIGIL_OK && strcmp(cl.who, who->name) != 0) {
		json_t *o = con_error_body(409, NULL, "claimed by another analyst");

		json_object_set_new(o, "claimed_by", json_string(cl.who));
		json_object_set_new(o, "until", con_json_time(cl.until_ms));
		con_send_json(req, 409, o);
		goto out;
	}
	/* labelled meanwhile (a case's label with who and when) */
	before = con_index_label_now(app->ix, id, before_src, &before_ms);
	if (!con_label_unchanged(req, expected, before, before_src[0] ? before_src : NULL,
	    before_ms))
		goto out;
	if (app->client == NULL) {
		con_send_error(req, 503, NULL, "no vigild to send labels to (start with --server URL)");
		goto out;
	}
	snprintf(source, sizeof source, "analyst:%s", who->name);
	memset(&lr, 0, sizeof lr);
	lr.txn_id = id;
	lr.fraud = json_is_true(jf);
	lr.label_time_ms = now;
	lr.source = source;
	lr.card_id = f.txn.card_id;
	cerr = vigil_client_label(app->client, &lr, NULL, &ei);
	if (cerr != VIGIL_CLIENT_OK) {
		con_send_error(req, cerr == VIGIL_CLIENT_SINVALID ? 400 : 502,
		    ei.field[0] != '\0' ? ei.field : NULL, "vigild refused the label: %s: %s",
		    vigil_client_errname(cerr), ei.message);
		goto out;
	}
	/* a case's at once; for any, what "expected" is checked against */
	(void)con_index_case_label(app->ix, id, lr.fraud, source, now);
	w = con_casework_get(app->cw, id);
	json_object_set_new(w, "label_reason", json_string(reason));
	(void)con_casework_put(app->cw, id, w);
	if (con_audit_write(app->audit, who, "label", id,
	    json_pack("{s:o}", "label", before < 0 ? json_null() : json_string(before ? "fraud" :
	    "legit")), json_pack("{s:s, s:s, s:s, s:s}", "label", lr.fraud ? "fraud" : "legit",
	    "source", source, "reason", reason, "decision", vigil_decision_name(f.decision))) !=
	    VIGIL_OK) {
		con_send_error(req, 500, NULL, "label sent to vigild, but the audit log could not be "
		    "written");
		goto out;
	}
	con_send_json(req, 200, json_pack("{s:s, s:s, s:s, s:s, s:s}", "txn_id", id, "label",
	    lr.fraud ? "fraud" : "legit", "source", source, "reason", reason, "card_id",
	    f.txn.card_id));
out:
	json_decref(w);
	free(s);
	json_decref(body);
}
