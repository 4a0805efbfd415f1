/* SPDX-License-Identifier: MIT */
/*
 * console/api.c - the review side of the JSON API: the queue, a case, the
 * analyst's actions on it (claim, verdict, block the card), the nights
 * (feature generations) and the console's own status. Formats:
 * docs/console.md, "API".
 */
#include <dirent.h>
#include <errno.h>
#include <sys/queue.h>
#include <event2/keyvalq_struct.h>
#include <math.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "console.h"
#include "editor.h"
#include "http.h"
#include "entities.h"
#include "hashtab.h"
#include "record.h"
#include "vigil_client.h"
#include "vigil_json.h"

_Static_assert(sizeof "analyst:" - 1 + CON_NAME_MAX < sizeof ((store_label *)0)->source,
    "CON_NAME_MAX: \"analyst:NAME\" must fit a label's source");

#define QUEUE_LIMIT_MAX 500

json_t *con_case_json(con_app *app, const con_case *c);

json_t *
con_case_json(con_app *app, const con_case *c)
{
	json_t *o = json_object(), *hits = json_array();
	con_claim cl;

	for (uint32_t i = 0; i < c->nhits; i++) {
		const char *name = con_index_rule_name(app->ix, c->hits[i]);
		bool shadow = (c->shadow_mask[i / 8] >> (i % 8)) & 1;
		json_array_append_new(hits, json_pack("{s:s, s:b}", "rule", name ? name : "?",
		    "shadow", shadow));
	}
	json_object_set_new(o, "txn_id", json_string(c->txn_id));
	json_object_set_new(o, "time", con_json_time(c->event_time_ms));
	json_object_set_new(o, "event_time_ms", json_integer(c->event_time_ms));
	json_object_set_new(o, "score", json_real(con_score_shown(c->score)));
	json_object_set_new(o, "decision", json_string(vigil_decision_name(c->decision)));
	json_object_set_new(o, "amount", con_json_amount(c->amount_minor, c->currency));
	json_object_set_new(o, "amount_minor", json_integer(c->amount_minor));
	json_object_set_new(o, "currency", json_string(c->currency));
	json_object_set_new(o, "card_id", json_string(c->card_id));
	json_object_set_new(o, "merchant_id", json_string(c->merchant_id));
	json_object_set_new(o, "terminal_id", json_string(c->terminal_id));
	json_object_set_new(o, "country", json_string(c->country));
	json_object_set_new(o, "mcc", json_integer(c->mcc));
	json_object_set_new(o, "channel", json_string(vigil_channel_name(c->channel)));
	json_object_set_new(o, "hits", hits);
	json_object_set_new(o, "label", con_json_label(c->label));
	json_object_set_new(o, "label_source", c->label >= 0 ? json_string(c->label_source) :
	    json_null());
	json_object_set_new(o, "seq", json_integer((json_int_t)c->seq));
	{
		json_t *w = con_casework_get(app->cw, c->txn_id);
		json_object_update(o, w); /* status, assignee, notes */
		json_decref(w);
	}
	if (con_index_claim_get(app->ix, c->txn_id, vigil_now_ms(), &cl) == VIGIL_OK)
		json_object_set_new(o, "claim", json_pack("{s:s, s:o}", "who", cl.who, "until",
		    con_json_time(cl.until_ms)));
	else
		json_object_set_new(o, "claim", json_null());
	return o;
}

/* ---- GET /api/queue ---- */

static bool
api_query_parse(struct evhttp_request *req, con_query *q)
{
	struct evkeyvalq kv;
	struct evkeyval *e;
	bool ok = true;

	memset(q, 0, sizeof *q);
	q->decision = VIGIL_DECISION_REVIEW;
	q->min_amount = -1;
	q->from_ms = INT64_MIN;
	q->to_ms = INT64_MAX;
	q->limit = 50;
	if (!con_query_parse(req, &kv))
		return false;
	TAILQ_FOREACH(e, &kv, next) {
		const char *k = e->key, *v = e->value;
		char *end;

		if (strcmp(k, "decision") == 0) {
			vigil_decision d;
			if (strcmp(v, "all") == 0)
				q->decision = 0;
			else if (vigil_decision_parse(v, &d) == VIGIL_OK &&
			    (d == VIGIL_DECISION_REVIEW || d == VIGIL_DECISION_DECLINE))
				q->decision = (int)d;
			else
				goto bad;
		} else if (strcmp(k, "status") == 0) {
			if (strcmp(v, "open") == 0)
				q->status = 0;
			else if (strcmp(v, "labelled") == 0)
				q->status = 1;
			else if (strcmp(v, "all") == 0)
				q->status = 2;
			else
				goto bad;
		} else if (strcmp(k, "sort") == 0) {
			if (strcmp(v, "score") == 0)
				q->by_score = true;
			else if (strcmp(v, "time") == 0)
				q->by_score = false;
			else
				goto bad;
		} else if (strcmp(k, "rule") == 0) {
			if (strlen(v) >= sizeof q->rule)
				goto bad;
			snprintf(q->rule, sizeof q->rule, "%s", v);
		} else if (strcmp(k, "card") == 0) {
			if (strlen(v) > VIGIL_ID_MAX)
				goto bad;
			snprintf(q->card, sizeof q->card, "%s", v);
		} else if (strcmp(k, "merchant") == 0) {
			if (strlen(v) > VIGIL_ID_MAX)
				goto bad;
			snprintf(q->merchant, sizeof q->merchant, "%s", v);
		} else if (strcmp(k, "min_amount") == 0) {
			if (*v == '\0')
				continue;
			q->min_amount = strtod(v, &end);
			if (*end != '\0' || !isfinite(q->min_amount) || q->min_amount < 0)
				goto bad;
		} else if (strcmp(k, "from") == 0 || strcmp(k, "to") == 0) {
			int64_t t;
			if (*v == '\0')
				continue;
			if (con_time_parse(v, &t) != VIGIL_OK)
				goto bad;
			if (k[0] == 'f')
				q->from_ms = t;
			else
				q->to_ms = t;
		} else if (strcmp(k, "after") == 0) {
			if (strlen(v) >= sizeof q->after)
				goto bad;
			snprintf(q->after, sizeof q->after, "%s", v);
		} else if (strcmp(k, "limit") == 0 || strcmp(k, "offset") == 0) {
			if (k[0] == 'l' ? !con_query_uint(v, 1, QUEUE_LIMIT_MAX, &q->limit) :
			    !con_query_uint(v, 0, 1000000, &q->offset))
				goto bad;
		} else {
			con_send_error(req, 400, k, "unknown parameter (decision, status, sort, rule, "
			    "card, merchant, min_amount, from, to, limit, offset, after)");
			ok = false;
			break;
		}
		continue;
bad:
		con_send_error(req, 400, k, "bad value \"%.80s\"", v);
		ok = false;
		break;
	}
	evhttp_clear_headers(&kv);
	return ok && con_range_ok(req, q->from_ms, q->to_ms);
}

void
con_api_queue(con_app *app, struct evhttp_request *req, const con_user *who)
{
	con_query q;
	con_page pg;
	con_case *page = NULL;
	uint32_t n = 0;
	uint64_t total = 0;
	double ms = 0;
	json_t *o, *items;
	vigil_err rv;

	(void)who;
	if (!api_query_parse(req, &q))
		return;
	if (q.rule[0] != '\0') {
		/* a name that no case ever hit and the rule file does not have
		 * is a typo: say so rather than answer 0 rows */
		uint16_t rid;
		const char *reason;
		int32_t points;

		if (con_index_rule_id(app->ix, q.rule, &rid) != VIGIL_OK &&
		    con_rules_rule_info(app, q.rule, &reason, &points) != VIGIL_OK) {
			con_send_error(req, 400, "rule", "\"%s\" is no rule of the current file and "
			    "no case ever hit it", q.rule);
			return;
		}
	}
	page = malloc(QUEUE_LIMIT_MAX * sizeof *page);
	if (page == NULL) {
		con_send_error(req, 500, NULL, "out of memory");
		return;
	}
	rv = con_index_query_page(app->ix, &q, page, QUEUE_LIMIT_MAX, &n, &total, &ms, &pg);
	if (rv == VIGIL_EINVAL) {
		free(page);
		con_send_error(req, 400, "after", "not the next of a queue page in this sort");
		return;
	}
	if (rv != VIGIL_OK) {
		free(page);
		con_send_error(req, 500, NULL, "queue: %s", vigil_strerror(rv));
		return;
	}
	items = json_array();
	for (uint32_t i = 0; i < n; i++)
		json_array_append_new(items, con_case_json(app, &page[i]));
	free(page);
	o = json_pack("{s:I, s:I, s:i, s:f, s:o, s:s?}", "total", (json_int_t)total, "offset",
	    (json_int_t)pg.offset, "limit", (int)q.limit, "ms", ms, "items", items, "next",
	    pg.next[0] != '\0' ? pg.next : NULL);
	con_send_json(req, 200, o);
}

/* ---- GET /api/cases/ID ---- */

static json_t *
api_value_json(const vigil_value *v, vigil_type t)
{
	if (!v->present)
		return json_null();
	if (t == VIGIL_T_STR)
		return json_stringn(v->str != NULL ? v->str : "", v->len);
	if (t == VIGIL_T_BOOL)
		return json_boolean(v->num != 0);
	return isfinite(v->num) ? json_real(v->num) : json_null();
}

void
con_api_case(con_app *app, struct evhttp_request *req, const con_user *who, const char *id)
{
	con_case c;
	con_card_txn hist[20];
	uint32_t nh = 0;
	store_scored *rec = NULL;
	store_gen *g;
	char err[256];
	json_t *o, *arr, *prof;

	(void)who;
	if (con_index_case(app->ix, id, &c) != VIGIL_OK) {
		con_send_error(req, 404, "txn_id", "no review or decline %s in the index",
		    id);
		return;
	}
	o = con_case_json(app, &c);
	/* reasons and points from the rule file loaded now */
	arr = json_object_get(o, "hits");
	for (size_t i = 0; i < json_array_size(arr); i++) {
		json_t *h = json_array_get(arr, i);
		const char *reason = NULL;
		int32_t points = 0;
		if (con_rules_rule_info(app, json_string_value(json_object_get(h, "rule")), &reason,
		    &points) == VIGIL_OK) {
			json_object_set_new(h, "reason", json_string(reason != NULL ? reason : ""));
			json_object_set_new(h, "points", json_integer(points));
		} else {
			json_object_set_new(h, "reason", json_string("(rule not in the current file)"));
		}
	}
	/* the archived record: the features it was scored with */
	rec = malloc(sizeof *rec);
	if (rec != NULL && con_archive_fetch(app->archive_dir, &c, rec, err, sizeof err) == VIGIL_OK) {
		json_t *feats = json_object();
		bool kept = false;

		for (uint32_t i = 0; i < rec->nfeats; i++) {
			uint32_t slot;
			vigil_type t = VIGIL_T_NUM;
			if (store_schema_find(rec->feats[i].name, &slot) == VIGIL_OK)
				t = store_schema_field(slot)->type;
			json_object_set_new(feats, rec->feats[i].name, api_value_json(&rec->feats[i].val, t));
		}
		json_object_set_new(o, "features", feats);
		/* the archive record's rules_hash (ArchivedScore field 5)
		 * (docs/protocol.md, "Rules identity"): named as the replies name it */
		json_object_set_new(o, "rules_hash", json_string(rec->rules_version));
		json_object_set_new(o, "features_generation", json_integer((json_int_t)rec->features_gen));
		json_object_set_new(o, "txn", vigil_txn_to_json(&rec->txn));
		json_object_set_new(o, "model", con_model_explain(app, rec, &kept));
		/* whether the generation that scored it is still on disk (a null
		 * model then means it had none: rules alone decided) */
		json_object_set_new(o, "features_generation_kept", json_boolean(kept));
	} else {
		json_object_set_new(o, "features", json_null());
		json_object_set_new(o, "archive_error", json_string(rec == NULL ? "out of memory" : err));
	}
	free(rec);
	/* the card's recent transactions */
	arr = json_array();
	if (con_index_card_history(app->ix, c.card_id, hist, 20, &nh) == VIGIL_OK) {
		for (uint32_t i = 0; i < nh; i++) {
			const con_card_txn *t = &hist[i];
			json_array_append_new(arr, json_pack("{s:s, s:o, s:o, s:s, s:s, s:f, s:s, s:o}",
			    "txn_id", t->txn_id, "time", con_json_time(t->event_time_ms),
			    "amount", con_json_amount(t->amount_minor, t->currency), "currency", t->currency,
			    "merchant_id", t->merchant_id, "score", con_score_shown(t->score),
			    "decision", vigil_decision_name(t->decision),
			    "label", con_json_label(con_index_label_of(app->ix, t->txn_id))));
		}
	}
	json_object_set_new(o, "card_history", arr);
	/* profiles of the current generation */
	prof = json_object();
	g = con_gen_current(app);
	if (g != NULL) {
		store_card_profile cp;
		store_entity_profile ep;
		json_object_set_new(prof, "generation", json_integer((json_int_t)app->gen_no));
		json_object_set_new(prof, "card", store_gen_card(g, c.card_id, &cp) == VIGIL_OK ?
		    store_profile_json(STORE_SRC_CARD, &cp) : json_null());
		json_object_set_new(prof, "merchant", store_gen_merchant(g, c.merchant_id, &ep) ==
		    VIGIL_OK ? store_profile_json(STORE_SRC_MERCHANT, &ep) : json_null());
		json_object_set_new(prof, "terminal", c.terminal_id[0] != '\0' &&
		    store_gen_terminal(g, c.terminal_id, &ep) == VIGIL_OK ?
		    store_profile_json(STORE_SRC_TERMINAL, &ep) : json_null());
	} else {
		json_object_set_new(prof, "generation", json_null());
	}
	json_object_set_new(o, "profiles", prof);
	con_send_json(req, 200, o);
}

/* ---- POST /api/cases/ID/{claim,unclaim,label,block} ---- */

/* A claim as the audit log records it; null for none (who ""). */
static json_t *
api_claim_json(const con_claim *cl)
{
	if (cl->who[0] == '\0')
		return json_null();
	return json_pack("{s:s, s:o}", "who", cl->who, "until", con_json_time(cl->until_ms));
}

static void
api_claim(con_app *app, struct evhttp_request *req, const con_user *who, const con_case *c)
{
	con_claim cl, prev;
	vigil_err rv;

	rv = con_index_claim(app->ix, c->txn_id, who->name, vigil_now_ms(),
	    (int64_t)app->o.claim_minutes * 60000, &cl, &prev);
	if (rv == VIGIL_EBUSY) {
		json_t *o = con_error_body(409, NULL, "claimed by another analyst");

		json_object_set_new(o, "claimed_by", json_string(cl.who));
		json_object_set_new(o, "until", con_json_time(cl.until_ms));
		con_send_json(req, 409, o);
		return;
	}
	if (rv != VIGIL_OK) {
		con_send_error(req, 500, NULL, "claim: %s", vigil_strerror(rv));
		return;
	}
	if (con_audit_write(app->audit, who, "claim", c->txn_id, api_claim_json(&prev),
	    api_claim_json(&cl)) != VIGIL_OK) {
		con_send_error(req, 500, NULL, "claimed, but the audit log could not be written");
		return;
	}
	con_send_json(req, 200, json_pack("{s:s, s:s, s:o}", "txn_id", c->txn_id, "claimed_by",
	    cl.who, "until", con_json_time(cl.until_ms)));
}

static void
api_label(con_app *app, struct evhttp_request *req, const con_user *who, const con_case *c)
{
	static const char *const keys[] = { "fraud", "expected", NULL };
	json_t *body = con_body_json_keys(req, keys), *jf;
	vigil_client_label_req lr;
	vigil_client_errinfo ei;
	vigil_client_err cerr;
	char source[40], before_src[32];
	con_claim cl;
	int64_t now = vigil_now_ms(), before_ms;
	bool fraud;
	int expected, before;
	vigil_err rv;

	if (body == NULL)
		return;
	jf = json_object_get(body, "fraud");
	if (!json_is_boolean(jf)) {
		json_decref(body);
		con_send_error(req, 400, "fraud", "body must be {\"fraud\": true|false}");
		return;
	}
	fraud = json_is_true(jf);
	if (!con_label_expected(req, body, &expected)) {
		json_decref(body);
		return;
	}
	json_decref(body);
	if (con_index_claim_get(app->ix, c->txn_id, now, &cl) == VIGIL_OK &&
	    strcmp(cl.who, who->name) != 0) {
		json_t *o = con_error_body(409, NULL, "claimed by another analyst");

		json_object_set_new(o, "claimed_by", json_string(cl.who));
		json_object_set_new(o, "until", con_json_time(cl.until_ms));
		con_send_json(req, 409, o);
		return;
	}
	/* labelled meanwhile: not overridden unseen, the analyst decides again */
	before = con_index_label_now(app->ix, c->txn_id, before_src, &before_ms);
	if (!con_label_unchanged(req, expected, before, before_src[0] ? before_src : NULL,
	    before_ms))
		return;
	if (app->client == NULL) {
		con_send_error(req, 503, NULL, "no vigild to send labels to (start with --server URL)");
		return;
	}
	snprintf(source, sizeof source, "analyst:%s", who->name);
	memset(&lr, 0, sizeof lr);
	lr.txn_id = c->txn_id;
	lr.fraud = fraud;
	lr.label_time_ms = now;
	lr.source = source;
	lr.card_id = c->card_id;
	cerr = vigil_client_label(app->client, &lr, NULL, &ei);
	if (cerr != VIGIL_CLIENT_OK) {
		con_send_error(req, cerr == VIGIL_CLIENT_SINVALID ? 400 : 502,
		    ei.field[0] != '\0' ? ei.field : NULL, "vigild refused the label: %s: %s",
		    vigil_client_errname(cerr), ei.message);
		return;
	}
	rv = con_index_case_label(app->ix, c->txn_id, fraud, source, now);
	(void)con_index_unclaim(app->ix, c->txn_id, who->name, now, false, NULL);
	if (con_audit_write(app->audit, who, "label", c->txn_id,
	    json_pack("{s:o}", "label", con_json_label(before)),
	    json_pack("{s:s, s:s}", "label", fraud ? "fraud" : "legit", "source", source)) != VIGIL_OK) {
		con_send_error(req, 500, NULL, "label sent to vigild, but the audit log could not be "
		    "written");
		return;
	}
	con_send_json(req, 200, json_pack("{s:s, s:s, s:s, s:b}", "txn_id", c->txn_id, "label",
	    fraud ? "fraud" : "legit", "source", source, "indexed", rv == VIGIL_OK));
}

/* Block card: the case's card in --blocked-list, for good (con_lists_block). */
static void
api_block(con_app *app, struct evhttp_request *req, const con_user *who, const con_case *c)
{
	char err[512], path[4096], why[128];
	json_t *prior = NULL;
	bool added = false;
	vigil_err rv;

	snprintf(why, sizeof why, "blocked from case %s", c->txn_id);
	rv = con_lists_block(app, app->o.blocked_list, c->card_id, who, why, &added, &prior, path,
	    sizeof path, err, sizeof err);
	if (rv != VIGIL_OK) {
		con_send_error(req, rv == VIGIL_ENOTFOUND || rv == VIGIL_EINVAL ? 409 : 500, NULL,
		    "%s", err);
		return;
	}
	if (con_audit_write(app->audit, who, "block_card", c->card_id,
	    json_pack("{s:b, s:o}", "blocked", !added, "entry", prior != NULL ? prior : json_null()),
	    json_pack("{s:b, s:s, s:s}", "blocked", true, "list", path, "case", c->txn_id)) !=
	    VIGIL_OK) {
		con_send_error(req, 500, NULL, "card blocked, but the audit log could not be written");
		return;
	}
	con_send_json(req, 200, json_pack("{s:s, s:b, s:s}", "card_id", c->card_id, "added", added,
	    "list", path));
}

/* POST /api/cases/ID/note {"text"}: a note, appended (1-CON_NOTE_MAX bytes,
 * at most CON_NOTES_MAX per case). */
static void
api_note(con_app *app, struct evhttp_request *req, const con_user *who, const con_case *c)
{
	static const char *const keys[] = { "text", NULL };
	json_t *body = con_body_json_keys(req, keys), *jt, *w = NULL, *notes, *note = NULL;
	const char *text;
	size_t len;

	if (body == NULL)
		return;
	jt = json_object_get(body, "text");
	text = json_string_value(jt);
	if (text == NULL || json_object_size(body) != 1) {
		con_send_error(req, 400, "text", "body must be {\"text\": \"...\"}");
		goto out;
	}
	len = json_string_length(jt);
	if (len == 0 || len > CON_NOTE_MAX || strlen(text) != len) {
		con_send_error(req, 400, "text", "1-%d bytes, no NUL", CON_NOTE_MAX);
		goto out;
	}
	w = con_casework_get(app->cw, c->txn_id);
	notes = json_object_get(w, "notes");
	if (!json_is_array(notes)) {
		notes = json_array();
		json_object_set_new(w, "notes", notes);
	}
	if (json_array_size(notes) >= CON_NOTES_MAX) {
		con_send_error(req, 409, "text", "this case has %d notes, the most it keeps",
		    CON_NOTES_MAX);
		goto out;
	}
	note = json_pack("{s:o, s:s, s:s}", "ts", con_json_time(vigil_now_ms()), "who", who->name,
	    "text", text);
	json_array_append(notes, note);
	if (con_casework_put(app->cw, c->txn_id, w) != VIGIL_OK) {
		con_send_error(req, 500, NULL, "the note could not be stored");
		goto out;
	}
	if (con_audit_write(app->audit, who, "note", c->txn_id, NULL, json_incref(note)) !=
	    VIGIL_OK) {
		con_send_error(req, 500, NULL, "noted, but the audit log could not be written");
		goto out;
	}
	con_send_json(req, 200, json_pack("{s:s, s:O}", "txn_id", c->txn_id, "note", note));
out:
	json_decref(note);
	json_decref(w);
	json_decref(body);
}

/* POST /api/cases/ID/status {"status"?, "assignee"?}: open, investigating
 * or closed; an analyst of the tokens file (analyst role or above), or
 * null. Audited before and after. */
static void
api_status(con_app *app, struct evhttp_request *req, const con_user *who, const con_case *c)
{
	static const char *const states[] = { "open", "investigating", "closed" };
	static const char *const keys[] = { "status", "assignee", NULL };
	json_t *body = con_body_json_keys(req, keys), *js, *ja, *w = NULL, *before = NULL,
	    *after = NULL;
	bool ok = false;

	if (body == NULL)
		return;
	js = json_object_get(body, "status");
	ja = json_object_get(body, "assignee");
	if (js == NULL && ja == NULL) {
		con_send_error(req, 400, "status", "body must have status or assignee (or both)");
		goto out;
	}
	if (js != NULL) {
		for (size_t i = 0; i < sizeof states / sizeof states[0]; i++)
			ok = ok || (json_is_string(js) && strcmp(json_string_value(js), states[i]) == 0);
		if (!ok) {
			con_send_error(req, 400, "status", "open, investigating or closed");
			goto out;
		}
	}
	if (ja != NULL && !json_is_null(ja)) {
		const con_user *u = NULL;

		for (uint32_t i = 0; json_is_string(ja) && i < app->auth.n; i++)
			if (strcmp(app->auth.users[i].name, json_string_value(ja)) == 0)
				u = &app->auth.users[i];
		if (u == NULL || u->role < CON_ROLE_ANALYST) {
			con_send_error(req, 400, "assignee", "an analyst of the tokens file "
			    "(role analyst or above), or null");
			goto out;
		}
	}
	w = con_casework_get(app->cw, c->txn_id);
	before = json_pack("{s:O?, s:O?}", "status", json_object_get(w, "status"), "assignee",
	    json_object_get(w, "assignee"));
	if (js != NULL)
		json_object_set(w, "status", js);
	if (ja != NULL)
		json_object_set(w, "assignee", ja);
	after = json_pack("{s:O?, s:O?}", "status", json_object_get(w, "status"), "assignee",
	    json_object_get(w, "assignee"));
	if (con_casework_put(app->cw, c->txn_id, w) != VIGIL_OK) {
		con_send_error(req, 500, NULL, "the status could not be stored");
		goto out;
	}
	if (con_audit_write(app->audit, who, "case_status", c->txn_id, before,
	    json_incref(after)) != VIGIL_OK) {
		before = NULL;
		con_send_error(req, 500, NULL, "changed, but the audit log could not be written");
		goto out;
	}
	before = NULL;
	con_send_json(req, 200, json_pack("{s:s, s:O?, s:O?}", "txn_id", c->txn_id, "status",
	    json_object_get(after, "status"), "assignee", json_object_get(after, "assignee")));
out:
	json_decref(before);
	json_decref(after);
	json_decref(w);
	json_decref(body);
}

void
con_api_case_action(con_app *app, struct evhttp_request *req, const con_user *who,
    const char *id, const char *action)
{
	con_case c;

	if (con_index_case(app->ix, id, &c) != VIGIL_OK) {
		con_send_error(req, 404, "txn_id", "no review or decline %s in the index",
		    id);
		return;
	}
	if (strcmp(action, "claim") == 0 || strcmp(action, "unclaim") == 0 ||
	    strcmp(action, "block") == 0) {
		/* these take no body keys: one sent is a mistake, not a no-op */
		json_t *b = con_body_json_keys(req, NULL);

		if (b == NULL)
			return;
		json_decref(b);
	}
	if (strcmp(action, "claim") == 0) {
		api_claim(app, req, who, &c);
	} else if (strcmp(action, "unclaim") == 0) {
		/* only its holder releases a claim, or an admin */
		con_claim prev;
		vigil_err rv = con_index_unclaim(app->ix, c.txn_id, who->name, vigil_now_ms(),
		    who->role >= CON_ROLE_ADMIN, &prev);
		if (rv == VIGIL_EBUSY) {
			json_t *o = con_error_body(409, NULL, "claimed by another analyst: only they "
			    "or an admin can release it");

			json_object_set_new(o, "claimed_by", json_string(prev.who));
			json_object_set_new(o, "until", con_json_time(prev.until_ms));
			con_send_json(req, 409, o);
			return;
		}
		if (rv != VIGIL_OK) {
			con_send_error(req, 500, NULL, "unclaim: %s", vigil_strerror(rv));
			return;
		}
		if (con_audit_write(app->audit, who, "unclaim", c.txn_id, api_claim_json(&prev),
		    json_null()) != VIGIL_OK) {
			con_send_error(req, 500, NULL, "released, but the audit log could not be "
			    "written");
			return;
		}
		con_send_json(req, 200, json_pack("{s:s, s:b}", "txn_id", c.txn_id, "released",
		    prev.who[0] != '\0'));
	} else if (strcmp(action, "label") == 0) {
		api_label(app, req, who, &c);
	} else if (strcmp(action, "note") == 0) {
		api_note(app, req, who, &c);
	} else if (strcmp(action, "status") == 0) {
		api_status(app, req, who, &c);
	} else {
		api_block(app, req, who, &c);
	}
}

/*
 * The confirm token of who: hex of SHA-256(per-run secret, name), 32
 * characters. GET /api/generations hands it to the page, POST
 * /api/generations/current must carry it: a request that did not read the
 * page as this analyst cannot know it (a second guard, after the
 * cross-site refusals of http.c).
 */
static void
api_confirm_token(con_app *app, const con_user *who, char ret_hex[33])
{
	uint8_t buf[32 + CON_NAME_MAX + 1], d[32];
	size_t n = strlen(who->name);

	memcpy(buf, app->secret, 32);
	memcpy(buf + 32, who->name, n);
	con_sha256(buf, 32 + n, d);
	for (int i = 0; i < 16; i++)
		snprintf(ret_hex + 2 * i, 3, "%02x", d[i]);
}

/* ---- GET /api/generations ---- */

typedef struct api_thr_ctx {
	json_t  *arr;
	uint32_t groups;
} api_thr_ctx;

static json_t *
api_num(double v)
{
	return isfinite(v) ? json_real(v) : json_null();
}

static void
api_thr_each(void *arg, const char *name, const char *group, const store_threshold_val *v)
{
	api_thr_ctx *c = arg;

	if (group[0] != '\0') {
		c->groups++;
		return;
	}
	json_array_append_new(c->arr, json_pack("{s:s, s:o, s:o, s:I, s:b, s:o}", "name", name,
	    "value", api_num(v->value), "previous", api_num(v->previous),
	    "samples", (json_int_t)v->samples, "tuned", v->tuned,
	    "moved", isfinite(v->previous) && isfinite(v->value) ? api_num(v->value - v->previous) :
	    json_null()));
}

static int
api_u64_desc(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? 1 : x > y ? -1 : 0;
}

/*
 * A generation's entry of the Nights page, kept by generation number with
 * the fingerprint of its files (gen_files_sig) taken before it was read:
 * opening a generation reads and hashes its whole data.mdb (about 450 MB a
 * million cards), so each is read once per console process and again only
 * once its files change (a damaged or replaced data.mdb is then opened,
 * and refused, again). Entries of generations no longer listed are dropped
 * at the next load.
 */
typedef struct api_gen_entry {
	uint64_t       gen;
	uint64_t       sig;
	json_t        *body; /* the page's object, without "current" */
	bool           listed;
	UT_hash_handle hh;
} api_gen_entry;

/* Generation gen's object for the page (a new reference). */
static json_t *
api_gen_body(con_app *app, uint64_t gen)
{
	store_gen *g = NULL;
	store_gen_meta m;
	store_diag dg;
	json_t *o = json_pack("{s:I}", "generation", (json_int_t)gen);
	void *blob = NULL;
	size_t blen = 0;
	vigil_err grv = store_gen_open(app->o.data, gen, &g, &dg);

	if (grv != VIGIL_OK) { /* docs/tools.md, "JSON errors" */
		json_object_set_new(o, "error", vigil_error_json(vigil_error_code(grv), &dg.info));
		return o;
	}
	if (store_gen_meta_get(g, &m) == VIGIL_OK) {
		json_t *summary = json_loads(m.summary_json, 0, NULL);
		json_object_set_new(o, "as_of", con_json_time(m.as_of_ms));
		json_object_set_new(o, "window_days", json_integer(m.window_ms / VIGIL_MS_PER_DAY));
		json_object_set_new(o, "built_at", con_json_time(m.built_at_ms));
		json_object_set_new(o, "first_seq", json_integer((json_int_t)m.first_seq));
		json_object_set_new(o, "last_seq", json_integer((json_int_t)m.last_seq));
		json_object_set_new(o, "summary", summary != NULL ? summary : json_null());
	}
	api_thr_ctx tc = { json_array(), 0 };
	(void)store_gen_thresholds_each(g, api_thr_each, &tc);
	json_object_set_new(o, "thresholds", tc.arr);
	json_object_set_new(o, "group_values", json_integer(tc.groups));
	if (store_gen_blob(g, APP_MODEL_META_BLOB, &blob, &blen) == VIGIL_OK) {
		json_t *mm = json_loadb(blob, blen, 0, NULL);
		json_object_set_new(o, "model", mm != NULL ? mm : json_string("(model.meta is not JSON)"));
		free(blob);
	} else {
		json_object_set_new(o, "model", json_null());
	}
	store_gen_close(g);
	return o;
}

/* Generation gen's entry, read again if its files changed; NULL: no memory. */
static api_gen_entry *
api_gen_entry_get(con_app *app, uint64_t gen)
{
	uint64_t sig = gen_files_sig(app->o.data, gen);
	api_gen_entry *e = NULL;

	HASH_FIND(hh, app->gen_entries, &gen, sizeof gen, e);
	if (e != NULL && e->sig == sig)
		return e;
	if (e == NULL) {
		e = calloc(1, sizeof *e);
		if (e == NULL)
			return NULL;
		e->gen = gen;
		HASH_ADD(hh, app->gen_entries, gen, sizeof e->gen, e);
		if (!VIGIL_HASH_ADDED(e)) {
			free(e);
			return NULL;
		}
	}
	json_decref(e->body);
	e->body = api_gen_body(app, gen);
	e->sig = sig;
	return e;
}

/* Drops the entries not listed (all: every entry). */
static void
api_gen_entries_drop(con_app *app, bool all)
{
	api_gen_entry *e, *t;

	HASH_ITER(hh, app->gen_entries, e, t) {
		if (all || !e->listed) {
			HASH_DEL(app->gen_entries, e);
			json_decref(e->body);
			free(e);
		}
	}
}

void
con_api_gen_entries_free(con_app *app)
{
	api_gen_entries_drop(app, true);
}

void
con_api_generations(con_app *app, struct evhttp_request *req, const con_user *who)
{
	char dir[4200];
	DIR *d;
	struct dirent *e;
	uint64_t gens[256], cur = 0;
	size_t n = 0;
	json_t *arr = json_array();
	api_gen_entry *ge, *gt;

	snprintf(dir, sizeof dir, "%s/features", app->o.data);
	(void)store_gen_current(app->o.data, &cur);
	d = opendir(dir);
	while (d != NULL && (e = readdir(d)) != NULL) {
		unsigned long long g;
		char tail;
		if (sscanf(e->d_name, "gen-%llu%c", &g, &tail) == 1) {
			if (n < sizeof gens / sizeof gens[0])
				gens[n++] = g;
		}
	}
	if (d != NULL)
		closedir(d);
	qsort(gens, n, sizeof gens[0], api_u64_desc);
	HASH_ITER(hh, app->gen_entries, ge, gt)
		ge->listed = false;
	for (size_t i = 0; i < n && i < 60; i++) {
		json_t *o;

		ge = api_gen_entry_get(app, gens[i]);
		if (ge == NULL) {
			json_decref(arr);
			con_send_error(req, 500, NULL, "out of memory");
			return;
		}
		ge->listed = true;
		o = json_copy(ge->body); /* shallow: the values are shared */
		json_object_set_new(o, "current", json_boolean(gens[i] == cur));
		json_array_append_new(arr, o);
	}
	api_gen_entries_drop(app, false);
	/* set_current: whether "make current" can work (vigild's admin endpoint
	 * given; the demo runs vigild without one) */
	char tok[33];

	api_confirm_token(app, who, tok);
	con_send_json(req, 200, json_pack("{s:I, s:b, s:s, s:o}", "current", (json_int_t)cur,
	    "set_current", app->o.vigild_admin != NULL, "confirm_token", tok, "generations", arr));
}

/* ---- POST /api/generations/current ---- */


/*
 * {"generation": N, "expect_current": M, "confirm": true}: asks vigild
 * (POST /v1/generations/current, with its admin token) to point CURRENT at
 * generation N. The console itself never writes the data directory:
 * vigild verifies N, refuses a stale M (another operator, a nightly run
 * meanwhile; M is 0 when the page showed none current) and switches.
 * Audited with the generation before and after; vigild's refusals are
 * passed on with its status, message and field.
 */
void
con_api_generation_set(con_app *app, struct evhttp_request *req, const con_user *who)
{
	static const char *const keys[] = {
		"generation", "expect_current", "confirm", "confirm_token", NULL,
	};
	json_t *body = con_body_json_keys(req, keys), *jg, *je, *jc, *reply = NULL, *fwd = NULL;
	char err[512], *text = NULL, target[48];
	int status = 0;
	vigil_err rv;

	if (body == NULL)
		return;
	jg = json_object_get(body, "generation");
	je = json_object_get(body, "expect_current");
	jc = json_object_get(body, "confirm");
	if (!json_is_integer(jg) || json_integer_value(jg) <= 0) {
		con_send_error(req, 400, "generation", "the generation to make current "
		    "(a positive integer)");
		goto out;
	}
	if (!json_is_integer(je) || json_integer_value(je) < 0) {
		con_send_error(req, 400, "expect_current", "the generation the page "
		    "showed as current (an integer, 0 for none)");
		goto out;
	}
	if (!json_is_true(jc)) {
		con_send_error(req, 400, "confirm", "must be true (the UI asks first)");
		goto out;
	}
	/* (without vigild's admin endpoint nothing can be done: 503 below) */
	if (app->o.vigild_admin != NULL) {
		char tok[33];
		const char *got = json_string_value(json_object_get(body, "confirm_token"));
		unsigned diff = got == NULL || strlen(got) != 32;

		api_confirm_token(app, who, tok);
		/* every byte compared, whatever the first that differs */
		if (diff == 0)
			diff = (unsigned)CRYPTO_memcmp(got, tok, 32);
		if (diff != 0) {
			con_send_error(req, 403, "confirm_token", "the one GET "
			    "/api/generations gave this analyst (reload the page)");
			goto out;
		}
	}
	fwd = json_pack("{s:I, s:I}", "generation", (json_int_t)json_integer_value(jg),
	    "expect_current", (json_int_t)json_integer_value(je));
	text = fwd != NULL ? json_dumps(fwd, JSON_COMPACT) : NULL;
	if (text == NULL) {
		con_send_error(req, 500, NULL, "out of memory");
		goto out;
	}
	rv = con_vigild_post(app, "/v1/generations/current", text, &status, &reply, err,
	    sizeof err);
	if (rv != VIGIL_OK) {
		con_send_error(req, rv == VIGIL_ENOTFOUND ? 503 : 502, NULL, "%s", err);
		goto out;
	}
	if (status != 200) {
		/* vigild's error object (docs/tools.md) */
		const json_t *e = json_object_get(reply, "error");
		const char *m = json_string_value(json_object_get(e, "message"));
		const char *f = json_string_value(json_object_get(json_object_get(e, "where"), "field"));

		/* vigild's 4xx keep their meaning (409 stale, 404, 422 damaged);
		 * its 401/403 and 5xx are the console's configuration or vigild's
		 * trouble: 502 */
		const char *c = json_string_value(json_object_get(e, "code"));
		bool keep = status >= 400 && status < 500 && status != 401 && status != 403 &&
		    c != NULL;
		vigil_errinfo ei;

		/* a kept status keeps vigild's code too (422 is REFUSED there, a
		 * damaged generation, not a bad request) */
		vigil_errinfo_set(&ei, f, "vigild refused the roll-back (%d): %s", status,
		    m != NULL ? m : "(no message)");
		con_send_json(req, keep ? status : 502, vigil_error_body(keep ? c : "UNAVAILABLE",
		    &ei));
		goto out;
	}
	snprintf(target, sizeof target, "generation %lld", (long long)json_integer_value(jg));
	if (con_audit_write(app->audit, who, "generation_current", target,
	    json_pack("{s:I}", "current", (json_int_t)json_integer_value(je)),
	    json_pack("{s:I}", "current", (json_int_t)json_integer_value(jg))) != VIGIL_OK) {
		con_send_error(req, 500, NULL, "vigild switched the generation, but the audit log "
		    "could not be written");
		goto out;
	}
	con_send_json(req, 200, json_pack("{s:O?, s:O?, s:O?}", "previous",
	    json_object_get(reply, "previous"), "current", json_object_get(reply, "current"),
	    "message", json_object_get(reply, "message")));
out:
	free(text);
	json_decref(fwd);
	json_decref(reply);
	json_decref(body);
}

/* ---- GET /api/status, /api/audit ---- */

void
con_api_status(con_app *app, struct evhttp_request *req, const con_user *who)
{
	static const char *const origins[] = { "new", "reused", "rebuilt" };
	con_tailpos p;
	con_ents_stats es;
	json_t *ents = json_null();

	con_index_pos(app->ix, &p);
	if (app->ents != NULL) {
		con_ents_get_stats(app->ents, &es);
		/* origin and ingested say whether a restart reused the index */
		ents = json_pack("{s:s, s:b, s:I, s:I, s:I, s:I, s:I}", "origin", origins[es.origin],
		    "ready", es.ready, "last_seq", (json_int_t)es.last_seq,
		    "records", (json_int_t)es.records, "entries", (json_int_t)es.entries,
		    "ingested", (json_int_t)es.ingested, "pruned", (json_int_t)es.pruned);
	}
	con_send_json(req, 200, json_pack("{s:s, s:s, s:{s:I, s:I, s:I, s:I, s:I, s:o}, s:o, s:s, "
	    "s:s?, s:s, s:b}",
	    "user", who->name, "role", con_role_name(who->role),
	    "index", "last_seq", (json_int_t)p.last_seq, "scored", (json_int_t)p.scored,
	    "labels", (json_int_t)p.labels, "cases", (json_int_t)p.cases,
	    "corrupt", (json_int_t)p.corrupt,
	    "newest_event", p.max_event_ms > 0 ? con_json_time(p.max_event_ms) : json_null(),
	    "entities", ents,
	    "rules", app->o.rules, "server", app->o.server,
	    "ingest_error", app->last_ingest_err, "backtest_running", app->bt != NULL));
}

void
con_api_audit(con_app *app, struct evhttp_request *req, const con_user *who)
{
	(void)who;
	con_send_json(req, 200, json_pack("{s:o}", "entries", con_audit_tail(app->audit, 200)));
}
