/* SPDX-License-Identifier: MIT */
/*
 * console/entity.c - GET /api/entity/KIND/ID: a card, merchant, terminal,
 * device or ip over a bounded event-time window of the archive
 * (docs/console.md, "Entity pages"): its transactions per UTC day, the
 * newest of them with decisions and labels, its profile in the current
 * generation, and the cards linked to it through shared devices or ips.
 *
 * Two passes: the first keeps the entity's own transactions and the
 * devices and ips they used; the second finds every card that used one of
 * those. Once the entity index (entities.c) has caught up, each pass reads
 * only the records of the entity, then of those devices and ips, where the
 * index says they are; before, each reads the window's scored records
 * (store_reader skips the segments outside it). Work is bounded: a window of at most ENT_RANGE_MAX_MS, at most
 * ENT_SCAN_MAX records read per pass, ENT_SHARED_MAX devices and ips,
 * ENT_CARDS_MAX linked cards; the reply says when a bound was reached.
 */
#include <event2/http.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "archive.h"
#include "genread.h"
#include "console.h"
#include "hashtab.h"
#include "http.h"
#include "entities.h"

#define ENT_RANGE_MAX_MS (31 * VIGIL_MS_PER_DAY)
#define ENT_RANGE_DEF_MS (7 * VIGIL_MS_PER_DAY)
#define ENT_SCAN_MAX     2000000u /* records read per pass, at most */
#define ENT_LIMIT_MAX    1000
#define ENT_SHARED_MAX   64  /* devices and ips followed to other cards */
#define ENT_CARDS_MAX    100 /* linked cards kept */

typedef enum ent_kind { ENT_CARD, ENT_MERCHANT, ENT_TERMINAL, ENT_DEVICE, ENT_IP } ent_kind;

static const char *const ent_kinds[] = { "card", "merchant", "terminal", "device", "ip", NULL };

typedef struct ent_txn {
	int64_t  event_time_ms, amount_minor;
	float    score;
	uint8_t  decision;
	char     currency[4];
	char     txn_id[VIGIL_ID_MAX + 1], card_id[VIGIL_ID_MAX + 1];
	char     merchant_id[VIGIL_ID_MAX + 1], terminal_id[VIGIL_ID_MAX + 1];
	char     device_id[VIGIL_ID_MAX + 1], ip[VIGIL_IP_MAX + 1];
} ent_txn;

typedef struct ent_day {
	uint64_t n, alerts, fraud, legit;
	double   amount; /* major units, every currency summed: a volume, not money */
} ent_day;

/* a device or ip of the entity's transactions ("d:ID" or "i:IP") */
typedef struct ent_shared {
	char           key[VIGIL_ID_MAX + 3];
	uint64_t       n;
	UT_hash_handle hh;
} ent_shared;

/* a card linked through them, and which of them it used */
typedef struct ent_card {
	char           card_id[VIGIL_ID_MAX + 1];
	uint64_t       n, fraud;
	uint64_t       via[(ENT_SHARED_MAX + 63) / 64]; /* bit i: shared[i] */
	UT_hash_handle hh;
} ent_card;

typedef struct ent_ctx {
	con_app     *app;
	ent_kind     kind;
	char         id[VIGIL_ID_MAX + 1];
	int64_t      from_ms, to_ms;
	uint32_t     limit;
	/* pass 1 */
	ent_txn     *ring;     /* the newest `limit` transactions */
	uint64_t     matched;
	ent_day      days[32]; /* per UTC day from the one of from_ms */
	ent_shared  *shared;   /* hash */
	ent_shared  *order[ENT_SHARED_MAX];
	uint32_t     nshared;
	bool         shared_truncated;
	/* pass 2 */
	ent_card    *cards;    /* hash */
	uint32_t     ncards;
	bool         cards_truncated;
	uint64_t     scanned;
	bool         scan_truncated;
	bool         oom;          /* a shared value or card could not be kept */
	con_damage   dmg;          /* what the reads passed over */
} ent_ctx;

/* UTC day number of ms (days since the epoch) */
static int64_t
ent_day_of(int64_t ms)
{
	return ms >= 0 ? ms / VIGIL_MS_PER_DAY : (ms - VIGIL_MS_PER_DAY + 1) / VIGIL_MS_PER_DAY;
}

static const char *
ent_field(ent_kind k, const vigil_txn *t)
{
	switch (k) {
	case ENT_CARD: return t->card_id;
	case ENT_MERCHANT: return t->merchant_id;
	case ENT_TERMINAL: return t->terminal_id;
	case ENT_DEVICE: return t->device_id;
	default: return t->ip;
	}
}

static ent_shared *
ent_shared_find(ent_ctx *c, char type, const char *v)
{
	char key[VIGIL_ID_MAX + 3];
	ent_shared *s = NULL;

	snprintf(key, sizeof key, "%c:%s", type, v);
	HASH_FIND_STR(c->shared, key, s);
	return s;
}

static void
ent_shared_add(ent_ctx *c, char type, const char *v)
{
	ent_shared *s;

	if (v[0] == '\0')
		return;
	s = ent_shared_find(c, type, v);
	if (s != NULL) {
		s->n++;
		return;
	}
	if (c->nshared == ENT_SHARED_MAX) {
		c->shared_truncated = true;
		return;
	}
	s = calloc(1, sizeof *s);
	if (s == NULL) {
		c->oom = true;
		return;
	}
	snprintf(s->key, sizeof s->key, "%c:%s", type, v);
	s->n = 1;
	HASH_ADD_STR(c->shared, key, s);
	if (!VIGIL_HASH_ADDED(s)) {
		free(s);
		c->oom = true;
		return;
	}
	c->order[c->nshared++] = s;
}

static uint32_t
ent_shared_index(const ent_ctx *c, const ent_shared *s)
{
	for (uint32_t i = 0; i < c->nshared; i++)
		if (c->order[i] == s)
			return i;
	return 0;
}

/* Reads the scored records of the window, fn for each until it returns
 * false. The scan cap counts both passes together. */
static vigil_err
ent_scan(ent_ctx *c, store_scored *s, bool (*pre)(const ent_ctx *c, const void *p, size_t len),
    bool (*fn)(ent_ctx *c, const store_scored *s), char *errbuf, size_t errlen)
{
	store_reader *rd = NULL;
	store_record r;
	store_diag d;
	vigil_err rv;
	uint64_t n = 0;

	rv = store_reader_open(c->app->archive_dir, c->from_ms, c->to_ms, con_damage_on_corrupt,
	    &c->dmg, &rd, &d);
	if (rv == VIGIL_ENOTFOUND)
		return VIGIL_OK; /* no archive yet */
	if (rv != VIGIL_OK) {
		snprintf(errbuf, errlen, "archive: %s", d.msg);
		return rv;
	}
	store_reader_want(rd, 1u << STORE_REC_SCORE);
	while ((rv = store_reader_next(rd, &r, &d)) == VIGIL_OK) {
		if (r.type != STORE_REC_SCORE)
			continue;
		if (++n > ENT_SCAN_MAX) {
			c->scan_truncated = true;
			break;
		}
		c->scanned++;
		/* protobuf keeps strings as they are: a record whose bytes do not
		 * hold the id cannot match, and is not decoded (most are not) */
		if (!pre(c, r.payload, r.len))
			continue;
		if (store_scored_decode(r.payload, r.len, s, &d) != VIGIL_OK) {
			con_damage_note(&c->dmg, r.segment, r.offset, "scored record does not decode: %s",
			    d.msg);
			continue;
		}
		if (s->txn.event_time_ms < c->from_ms || s->txn.event_time_ms >= c->to_ms)
			continue;
		if (!fn(c, s))
			break;
	}
	if (rv == VIGIL_ENOTFOUND)
		rv = VIGIL_OK;
	if (rv != VIGIL_OK)
		snprintf(errbuf, errlen, "archive: %s", d.msg);
	store_reader_close(rd);
	return rv;
}

static bool
ent_pre1(const ent_ctx *c, const void *p, size_t len)
{
	return memmem(p, len, c->id, strlen(c->id)) != NULL;
}

static bool
ent_pre2(const ent_ctx *c, const void *p, size_t len)
{
	for (uint32_t i = 0; i < c->nshared; i++)
		if (memmem(p, len, c->order[i]->key + 2, strlen(c->order[i]->key + 2)) != NULL)
			return true;
	return false;
}

static bool
ent_pass1(ent_ctx *c, const store_scored *s)
{
	const vigil_txn *t = &s->txn;
	ent_txn *e;
	ent_day *d;
	int label;

	if (strcmp(ent_field(c->kind, t), c->id) != 0)
		return true;
	label = con_index_label_of(c->app->ix, t->txn_id);
	d = &c->days[(ent_day_of(t->event_time_ms) - ent_day_of(c->from_ms)) % 32];
	d->n++;
	d->alerts += s->decision == VIGIL_DECISION_REVIEW || s->decision == VIGIL_DECISION_DECLINE;
	d->fraud += label == 1;
	d->legit += label == 0;
	d->amount += vigil_txn_amount(t);
	e = &c->ring[c->matched++ % c->limit];
	e->event_time_ms = t->event_time_ms;
	e->amount_minor = t->amount_minor;
	e->score = (float)s->score;
	e->decision = (uint8_t)s->decision;
	memcpy(e->currency, t->currency, sizeof e->currency);
	memcpy(e->txn_id, t->txn_id, sizeof e->txn_id);
	memcpy(e->card_id, t->card_id, sizeof e->card_id);
	memcpy(e->merchant_id, t->merchant_id, sizeof e->merchant_id);
	memcpy(e->terminal_id, t->terminal_id, sizeof e->terminal_id);
	memcpy(e->device_id, t->device_id, sizeof e->device_id);
	memcpy(e->ip, t->ip, sizeof e->ip);
	ent_shared_add(c, 'd', t->device_id);
	ent_shared_add(c, 'i', t->ip);
	return true;
}

static void
ent_card_edge(ent_ctx *c, const store_scored *s, const ent_shared *sh)
{
	ent_card *k = NULL;
	uint32_t i = ent_shared_index(c, sh);

	HASH_FIND_STR(c->cards, s->txn.card_id, k);
	if (k == NULL) {
		if (c->ncards == ENT_CARDS_MAX) {
			c->cards_truncated = true;
			return;
		}
		k = calloc(1, sizeof *k);
		if (k == NULL) {
			c->oom = true;
			return;
		}
		memcpy(k->card_id, s->txn.card_id, sizeof k->card_id);
		HASH_ADD_STR(c->cards, card_id, k);
		if (!VIGIL_HASH_ADDED(k)) {
			free(k);
			c->oom = true;
			return;
		}
		c->ncards++;
	}
	k->via[i / 64] |= 1ull << (i % 64);
}

static bool
ent_pass2(ent_ctx *c, const store_scored *s)
{
	const vigil_txn *t = &s->txn;
	ent_shared *sd = t->device_id[0] ? ent_shared_find(c, 'd', t->device_id) : NULL;
	ent_shared *si = t->ip[0] ? ent_shared_find(c, 'i', t->ip) : NULL;
	ent_card *k = NULL;

	if (sd == NULL && si == NULL)
		return true;
	if (sd != NULL)
		ent_card_edge(c, s, sd);
	if (si != NULL)
		ent_card_edge(c, s, si);
	HASH_FIND_STR(c->cards, t->card_id, k);
	if (k != NULL) {
		k->n++;
		k->fraud += con_index_label_of(c->app->ix, t->txn_id) == 1;
	}
	return true;
}

typedef struct ent_each {
	ent_ctx *c;
	bool   (*fn)(ent_ctx *c, const store_scored *s);
} ent_each;

static bool
ent_each_fn(void *arg, const store_scored *s)
{
	ent_each *e = arg;

	return e->fn(e->c, s);
}

/* A pass by the entity index: the entity's records (pass 1) or those of
 * the devices and ips it used (pass 2). */
static vigil_err
ent_by_index(ent_ctx *c, store_scored *s, bool pass2, char *errbuf, size_t errlen)
{
	static const con_ent_kind kinds[] = { CON_ENT_CARD, CON_ENT_MERCHANT, CON_ENT_TERMINAL,
		CON_ENT_DEVICE, CON_ENT_IP };
	con_ent_key keys[ENT_SHARED_MAX];
	ent_each e = { c, pass2 ? ent_pass2 : ent_pass1 };
	uint32_t n = 0;
	uint64_t scanned = 0;
	bool truncated = false;
	vigil_err rv;

	if (!pass2) {
		keys[n].kind = kinds[c->kind];
		keys[n++].id = c->id;
	} else {
		for (uint32_t i = 0; i < c->nshared; i++) {
			keys[n].kind = c->order[i]->key[0] == 'd' ? CON_ENT_DEVICE : CON_ENT_IP;
			keys[n++].id = c->order[i]->key + 2;
		}
	}
	rv = con_search_entities(c->app, keys, n, c->from_ms, c->to_ms, ENT_SCAN_MAX, s,
	    ent_each_fn, &e, &scanned, &truncated, &c->dmg, errbuf, errlen);
	c->scanned += scanned;
	c->scan_truncated = c->scan_truncated || truncated;
	return rv;
}

/* ent_parse's keys but from and to: limit. */
static con_qs
ent_key(void *arg, const char *k, const char *v)
{
	ent_ctx *c = arg;
	if (strcmp(k, "limit") != 0)
		return CON_QS_UNKNOWN;
	if (!con_query_uint(v, 1, ENT_LIMIT_MAX, &c->limit))
		return CON_QS_BAD_VALUE;
	return CON_QS_OK;
}

static bool
ent_parse(con_app *app, struct evhttp_request *req, ent_ctx *c)
{
	con_tailpos pos;
	char bad[64], val[81];
	bool from;
	con_qs r;

	con_index_pos(app->ix, &pos);
	c->to_ms = pos.max_event_ms + 1;
	c->limit = 200;
	r = con_query_walk(req, &c->from_ms, &c->to_ms, &from, ent_key, c, bad, sizeof bad, val,
	    sizeof val);
	if (r == CON_QS_REPLIED)
		return false;
	if (r == CON_QS_UNKNOWN) {
		con_send_error(req, 400, bad, "unknown parameter (from, to, limit)");
		return false;
	}
	if (r == CON_QS_BAD_VALUE) {
		con_send_error(req, 400, bad, "bad value \"%.80s\" (from, to: YYYY-MM-DD or "
		    "RFC 3339; limit: 1-%d)", val, ENT_LIMIT_MAX);
		return false;
	}
	if (!from)
		c->from_ms = c->to_ms - ENT_RANGE_DEF_MS;
	if (!con_range_ok(req, c->from_ms, c->to_ms))
		return false;
	if (c->to_ms - c->from_ms > ENT_RANGE_MAX_MS) {
		con_send_error(req, 400, "to", "from..to must be a range of at most 31 days (default: "
		    "the last 7 days indexed)");
		return false;
	}
	return true;
}

static json_t *
ent_profile(con_app *app, const ent_ctx *c)
{
	store_gen *g = con_gen_current(app);
	store_card_profile cp;
	store_entity_profile ep;
	json_t *o = json_object(), *p = json_null();

	json_object_set_new(o, "generation", g != NULL ? json_integer((json_int_t)app->gen_no) :
	    json_null());
	if (g != NULL && c->kind == ENT_CARD && store_gen_card(g, c->id, &cp) == VIGIL_OK) {
		p = json_pack("{s:i, s:i, s:i, s:f, s:f, s:f, s:f, s:f, s:f, s:i, s:i, s:i, s:o}",
		    "count_7d", (int)cp.count_7d, "count_30d", (int)cp.count_30d,
		    "count_90d", (int)cp.count_90d, "amount_mean_30d", cp.amount_mean_30d,
		    "amount_mean_90d", cp.amount_mean_90d, "amount_std_90d", cp.amount_std_90d,
		    "amount_p95_90d", cp.amount_p95_90d, "amount_p99_90d", cp.amount_p99_90d,
		    "amount_max_90d", cp.amount_max_90d,
		    "distinct_merchants_90d", (int)cp.distinct_merchants_90d,
		    "distinct_countries_90d", (int)cp.distinct_countries_90d,
		    "fraud_count_90d", (int)cp.fraud_count_90d,
		    "first_seen", cp.first_seen_ms > 0 ? con_json_time(cp.first_seen_ms) : json_null());
	} else if (g != NULL && (c->kind == ENT_MERCHANT || c->kind == ENT_TERMINAL) &&
	    (c->kind == ENT_MERCHANT ? store_gen_merchant(g, c->id, &ep) :
	    store_gen_terminal(g, c->id, &ep)) == VIGIL_OK) {
		p = json_pack("{s:i, s:i, s:i, s:f, s:i, s:i, s:i, s:f, s:f, s:f}",
		    "count_7d", (int)ep.count_7d, "count_30d", (int)ep.count_30d,
		    "count_90d", (int)ep.count_90d, "amount_mean_30d", ep.amount_mean_30d,
		    "fraud_count_7d", (int)ep.fraud_count_7d, "fraud_count_30d", (int)ep.fraud_count_30d,
		    "fraud_count_90d", (int)ep.fraud_count_90d, "fraud_rate_7d", ep.fraud_rate_7d,
		    "fraud_rate_30d", ep.fraud_rate_30d, "fraud_rate_90d", ep.fraud_rate_90d);
	}
	json_object_set_new(o, "values", p);
	if (c->kind == ENT_DEVICE || c->kind == ENT_IP)
		json_object_set_new(o, "note", json_string("a generation keeps no profile of devices "
		    "and ips"));
	else if (g == NULL)
		json_object_set_new(o, "note", json_string("no current generation"));
	else if (json_is_null(p))
		json_object_set_new(o, "note", json_string("not in the current generation (no "
		    "transaction in its window)"));
	return o;
}

static json_t *
ent_linked(const ent_ctx *c)
{
	json_t *shared = json_array(), *cards = json_array();
	ent_card *k, *tmp;

	for (uint32_t i = 0; i < c->nshared; i++)
		json_array_append_new(shared, json_pack("{s:s, s:s, s:I}", "kind",
		    c->order[i]->key[0] == 'd' ? "device" : "ip", "id", c->order[i]->key + 2,
		    "n", (json_int_t)c->order[i]->n));
	HASH_ITER(hh, c->cards, k, tmp) {
		json_t *via = json_array();

		for (uint32_t i = 0; i < c->nshared; i++)
			if (k->via[i / 64] >> (i % 64) & 1)
				json_array_append_new(via, json_integer(i));
		json_array_append_new(cards, json_pack("{s:s, s:b, s:I, s:I, s:o}", "card_id",
		    k->card_id, "self", c->kind == ENT_CARD && strcmp(k->card_id, c->id) == 0,
		    "n", (json_int_t)k->n, "fraud", (json_int_t)k->fraud, "via", via));
	}
	return json_pack("{s:o, s:o, s:b}", "shared", shared, "cards", cards, "truncated",
	    c->shared_truncated || c->cards_truncated);
}

static int
ent_card_cmp(const ent_card *a, const ent_card *b)
{
	return strcmp(a->card_id, b->card_id);
}

void
con_api_entity(con_app *app, struct evhttp_request *req, const con_user *who,
    const char *kind, const char *id)
{
	ent_ctx c;
	store_scored *s = NULL;
	uint64_t t0 = vigil_mono_ns();
	char err[600];
	json_t *days, *txns, *o;
	uint64_t kept;
	int k = -1;
	bool indexed;
	vigil_err rv;

	(void)who;
	memset(&c, 0, sizeof c);
	for (int i = 0; ent_kinds[i] != NULL; i++)
		if (strcmp(kind, ent_kinds[i]) == 0)
			k = i;
	if (k < 0) {
		con_send_error(req, 404, "kind", "%.40s: not an entity kind (card, merchant, terminal, "
		    "device, ip)", kind);
		return;
	}
	if (id[0] == '\0' || strlen(id) > (k == ENT_IP ? VIGIL_IP_MAX : VIGIL_ID_MAX)) {
		con_send_error(req, 404, "id", "not a %s id (1-%d bytes)", kind,
		    k == ENT_IP ? VIGIL_IP_MAX : VIGIL_ID_MAX);
		return;
	}
	c.app = app;
	c.kind = (ent_kind)k;
	snprintf(c.id, sizeof c.id, "%s", id);
	if (k == ENT_IP) /* the archive holds one spelling of an address (vigil.h) */
		(void)vigil_ip_canonical(id, c.id);
	if (!ent_parse(app, req, &c))
		return;
	s = malloc(sizeof *s);
	c.ring = calloc(c.limit, sizeof *c.ring);
	if (s == NULL || c.ring == NULL) {
		con_send_error(req, 500, NULL, "out of memory");
		goto out;
	}
	indexed = con_ents_usable(app);
	if (indexed) {
		rv = ent_by_index(&c, s, false, err, sizeof err);
		if (rv == VIGIL_OK && c.nshared > 0)
			rv = ent_by_index(&c, s, true, err, sizeof err);
	} else {
		rv = ent_scan(&c, s, ent_pre1, ent_pass1, err, sizeof err);
		if (rv == VIGIL_OK && c.nshared > 0)
			rv = ent_scan(&c, s, ent_pre2, ent_pass2, err, sizeof err);
	}
	if (rv != VIGIL_OK) {
		con_send_error(req, 500, NULL, "%s", err);
		goto out;
	}
	if (c.oom) { /* an answer, not a page missing a linked card */
		con_send_error(req, 500, NULL, "out of memory linking the cards");
		goto out;
	}
	HASH_SORT(c.cards, ent_card_cmp);
	days = json_array();
	/* the UTC days the window touches (at most 32 for 31 days) */
	for (int64_t d = 0; d <= ent_day_of(c.to_ms - 1) - ent_day_of(c.from_ms) && d < 32; d++) {
		const ent_day *x = &c.days[d];
		char day[32];

		vigil_time_format_rfc3339((ent_day_of(c.from_ms) + d) * VIGIL_MS_PER_DAY, day,
		    sizeof day);
		day[10] = '\0';
		json_array_append_new(days, json_pack("{s:s, s:I, s:I, s:I, s:I, s:f}", "day", day,
		    "n", (json_int_t)x->n, "alerts", (json_int_t)x->alerts, "fraud",
		    (json_int_t)x->fraud, "legit", (json_int_t)x->legit, "amount",
		    rint(x->amount * 100) / 100));
	}
	/* newest first, from the ring */
	txns = json_array();
	kept = c.matched < c.limit ? c.matched : c.limit;
	for (uint64_t i = 0; i < kept; i++) {
		const ent_txn *e = &c.ring[(c.matched - 1 - i) % c.limit];

		json_array_append_new(txns, json_pack("{s:s, s:o, s:s, s:s, s:s, s:s, s:s, s:o, s:s, "
		    "s:f, s:s, s:o}", "txn_id", e->txn_id, "time", con_json_time(e->event_time_ms),
		    "card_id", e->card_id, "merchant_id", e->merchant_id, "terminal_id", e->terminal_id,
		    "device_id", e->device_id, "ip", e->ip,
		    "amount", con_json_amount(e->amount_minor, e->currency), "currency", e->currency,
		    "score", con_score_shown(e->score),
		    "decision", vigil_decision_name(e->decision),
		    "label", con_json_label(con_index_label_of(app->ix, e->txn_id))));
	}
	o = json_pack("{s:s, s:s, s:o, s:o, s:I, s:o, s:o, s:o, s:o, s:I, s:b, s:s, s:f}",
	    "kind", ent_kinds[k], "id", c.id, "from", con_json_time(c.from_ms), "to", con_json_time(c.to_ms),
	    "matched", (json_int_t)c.matched, "days", days, "transactions", txns,
	    "profile", ent_profile(app, &c), "linked", ent_linked(&c),
	    "scanned", (json_int_t)c.scanned, "truncated", c.scan_truncated,
	    "via", indexed ? "entity_index" : "scan", "ms", (double)(vigil_mono_ns() - t0) / 1e6);
	con_send_json(req, 200, con_damage_json(o, &c.dmg, "/api/entity"));
out:
	{
		ent_shared *x, *xt;
		ent_card *y, *yt;

		HASH_ITER(hh, c.shared, x, xt) {
			HASH_DEL(c.shared, x);
			free(x);
		}
		HASH_ITER(hh, c.cards, y, yt) {
			HASH_DEL(c.cards, y);
			free(y);
		}
	}
	free(c.ring);
	free(s);
}
