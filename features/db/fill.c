/* SPDX-License-Identifier: MIT */
/*
 * features/db/fill.c - the feature vector of a lookup (store_features_lookup,
 * store_score_begin): the transaction's own fields, its card, merchant and
 * terminal profiles from the served generation (through the live state's
 * profile cache, under the generation's SIGBUS guard) and, under a feature
 * mask (mask.h), only the slots asked for; and the transaction's slots of
 * a lean record (fill.h), for batch/. db.c adds the live velocity
 * features (velocity.c) and owns everything else of store_db.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "db_int.h"
#include "fill.h"
#include "genread.h"
#include "live_view.h"
#include "profile.h"
#include "slots.h"

/* ---------------------------------------------------------------------- */
/* Feature masks (the mask functions themselves are in schema.c). */

bool
fill_mask_subset(const store_feature_mask *a, const store_feature_mask *b)
{
	for (uint32_t i = 0; i < STORE_SLOT_COUNT_; i++)
		if (store_feature_mask_has(a, i) && !store_feature_mask_has(b, i))
			return false;
	return true;
}


/* The slots fill_txn_batch writes, one range per batch profile it reads
 * (store_ctx.need_bcard, need_bmerchant, need_bterminal): schema.def's
 * rows of that source and the DERIVED rows right after them (fill_card
 * computes those from the profile and the request). */
enum { BATCH_CARD, BATCH_MERCHANT, BATCH_TERMINAL, BATCH_COUNT_ };
typedef struct batch_range {
	uint32_t first, last;
} batch_range;

static batch_range
batch_slots(int b)
{
	static const store_source src[BATCH_COUNT_] = { STORE_SRC_CARD, STORE_SRC_MERCHANT,
		STORE_SRC_TERMINAL };
	batch_range r = { 1, 0 }; /* empty */
	uint32_t    i = 0;

	while (i < STORE_SLOT_COUNT_ && store_schema_field(i)->source != src[b])
		i++;
	if (i == STORE_SLOT_COUNT_)
		return r;
	r.first = i;
	while (i + 1 < STORE_SLOT_COUNT_ && (store_schema_field(i + 1)->source == src[b] ||
	    store_schema_field(i + 1)->source == STORE_SRC_DERIVED))
		i++;
	r.last = i;
	return r;
}

static bool
mask_any(const store_feature_mask *m, batch_range r)
{
	for (uint32_t i = r.first; i <= r.last; i++)
		if (store_feature_mask_has(m, i))
			return true;
	return false;
}

/* Every slot a lookup on ctx can write after store_features_from_txn (its
 * mask decided): the transaction's own slots, the batch profiles it reads
 * (fill_txn_batch) and what vel_features writes for ctx->plan. The
 * others keep the missing value store_features_from_txn put there. */
static void
mask_fillable(const store_ctx *ctx, store_feature_mask *ret)
{
	const bool batch[BATCH_COUNT_] = {
		[BATCH_CARD] = ctx->need_bcard,
		[BATCH_MERCHANT] = ctx->need_bmerchant,
		[BATCH_TERMINAL] = ctx->need_bterminal,
	};

	store_feature_mask_none(ret);
	for (uint32_t i = STORE_SLOT_AMOUNT; i <= STORE_SLOT_EVENT_TIME; i++)
		store_feature_mask_set(ret, i);
	store_feature_mask_set(ret, STORE_SLOT_HOUR);
	for (int b = 0; b < BATCH_COUNT_; b++) {
		batch_range r = batch_slots(b);

		for (uint32_t i = r.first; batch[b] && i <= r.last; i++)
			store_feature_mask_set(ret, i);
	}
	vel_plan_slots(ctx->plan, ret);
}

void
fill_plan(store_ctx *ctx)
{
	store_feature_mask all;

	store_feature_mask_all(&all);
	ctx->need_all = fill_mask_subset(&all, &ctx->need);
	/* A full mask (vigild) does not depend on vel_plan's grouping. */
	ctx->plan = ctx->need_all ? VEL_F_ALL : vel_plan(&ctx->need);
	ctx->need_bcard = mask_any(&ctx->need, batch_slots(BATCH_CARD));
	ctx->need_bmerchant = mask_any(&ctx->need, batch_slots(BATCH_MERCHANT));
	ctx->need_bterminal = mask_any(&ctx->need, batch_slots(BATCH_TERMINAL));
	mask_fillable(ctx, &ctx->clear);
	for (uint32_t w = 0; w < STORE_FEATURE_MASK_WORDS; w++)
		ctx->clear.w[w] &= ~ctx->need.w[w];
}

/* ---------------------------------------------------------------------- */
/* Feature vector. */

/* Transaction fields and batch features into f (ctx->txn set). A value that
 * is absent or unreadable leaves its slots missing: a lookup never fails.
 * The card stripe is locked when the db has a live state: a live card,
 * merchant or terminal keeps the profile last read for it
 * (live_card_bcache, ent_bcache_get), tagged with the generation
 * epoch it was read under, so one seen again under the same generation
 * costs no LMDB read (storage.md, "Reading"). */

/* The cache entry of txn's merchant or terminal (kind ENT_MERCHANT or
 * ENT_TERMINAL), under the entity's stripe lock (the card stripe may be
 * held). get: true with *ret filled if the entity is live and its entry's
 * tag is tag. put: stores rv and p (when rv is VIGIL_OK) under tag if the
 * entity is live. */
static bool
ent_bcache_get(live *lv, int kind, const vigil_txn *txn, const live_keys *k, uint64_t tag,
    profile_entity_cache *ret)
{
	ent_stripe           *s;
	live_ent             *e = ent_lock_find(lv, kind, txn, k, &s);
	profile_entity_cache *bc = e != NULL ? &((live_ent_b *)(void *)e)->bc : NULL;
	bool                  hit = bc != NULL && bc->tag == tag;

	if (hit)
		*ret = *bc;
	pthread_mutex_unlock(&s->mu);
	return hit;
}

static void
ent_bcache_put(live *lv, int kind, const vigil_txn *txn, const live_keys *k, uint64_t tag,
    vigil_err rv, const store_entity_profile *p)
{
	ent_stripe *s;
	live_ent   *e = ent_lock_find(lv, kind, txn, k, &s);

	if (e != NULL) {
		profile_entity_cache *bc = &((live_ent_b *)(void *)e)->bc;

		bc->tag = tag;
		bc->rv = rv;
		if (rv == VIGIL_OK)
			bc->p = *p;
	}
	pthread_mutex_unlock(&s->mu);
}

/* What fill_txn_batch still has to read from the generation. */
typedef struct batch_reads {
	bool                card, merchant, terminal;
	profile_card_cache *bc;
	uint64_t            tag;
} batch_reads;

/* The LMDB reads of fill_txn_batch, in session s (under its guard). */
static __attribute__((noinline)) void
fill_batch_read(store_ctx *ctx, store_gen *g, gen_session *s, const batch_reads *br,
    vigil_value *f)
{
	const vigil_txn     *txn = &ctx->txn;
	live                *lv = ctx->db->lv;
	profile_entity_cache be;

	if (br->card) {
		store_card_profile  cp;
		store_card_profile *p = br->bc != NULL ? &br->bc->p : &cp;
		vigil_err           rv = gen_session_card(g, s, txn->card_id, p);

		if (rv == VIGIL_OK)
			profile_fill_card_txn(txn, p, f);
		if (br->bc != NULL) {
			/* Other errors (ENOMEM, LMDB) are not remembered. */
			br->bc->rv = rv;
			br->bc->tag = rv == VIGIL_OK || rv == VIGIL_ENOTFOUND ? br->tag : 0;
		}
	}
	if (br->merchant) {
		vigil_err rv = gen_session_merchant(g, s, txn->merchant_id, &be.p);

		if (rv == VIGIL_OK)
			profile_fill_merchant(&be.p, f);
		if (lv != NULL && (rv == VIGIL_OK || rv == VIGIL_ENOTFOUND))
			ent_bcache_put(lv, ENT_MERCHANT, txn, &ctx->keys, br->tag, rv, &be.p);
	}
	if (br->terminal) {
		vigil_err rv = gen_session_terminal(g, s, txn->terminal_id, &be.p);

		if (rv == VIGIL_OK)
			profile_fill_terminal(&be.p, f);
		if (lv != NULL && (rv == VIGIL_OK || rv == VIGIL_ENOTFOUND))
			ent_bcache_put(lv, ENT_TERMINAL, txn, &ctx->keys, br->tag, rv, &be.p);
	}
}

/* fill_batch_read with the generation's SIGBUS guard armed: data.mdb
 * changed under the mapping (truncated, overwritten) makes the read that
 * faults come back here instead of killing the process (features/db/genread.h);
 * g is marked faulted and store_db_refresh stops serving it. A bcache
 * entry the fault interrupted keeps its old tag, so it is read again.
 * sigsetjmp without the signal mask (no system call): the handler runs
 * with SA_NODEFER. */
static vigil_err
fill_batch_guarded(store_ctx *ctx, store_gen *g, const batch_reads *br, vigil_value *f)
{
	gen_session *volatile s = NULL;
	sigjmp_buf            jb;

	if (sigsetjmp(jb, 0) != 0) {
		gen_guard_disarm();
		gen_session_discard(g, s);
		gen_fault_set(g);
		return VIGIL_ECORRUPT;
	}
	gen_guard_arm(g, &jb);
	s = gen_session_begin(g);
	if (s != NULL)
		fill_batch_read(ctx, g, s, br, f);
	gen_guard_disarm();
	gen_session_end(g, s);
	return VIGIL_OK;
}

vigil_err
fill_txn_batch(store_ctx *ctx, store_gen *g, vigil_value *f, uint32_t n)
{
	const vigil_txn     *txn = &ctx->txn;
	live                *lv = ctx->db->lv;
	profile_entity_cache be;
	batch_reads          br = { .card = ctx->need_bcard, .merchant = ctx->need_bmerchant,
		.terminal = ctx->need_bterminal && txn->terminal_id[0] != '\0' };

	store_features_from_txn(txn, f, n);
	if (!br.card && !br.merchant && !br.terminal)
		return VIGIL_OK;
	if (g == NULL)
		return VIGIL_OK;
	br.tag = ctx->epoch + 1;
	if (br.card && lv != NULL) {
		br.bc = live_card_bcache(lv, txn, &ctx->keys);
		if (br.bc != NULL && br.bc->tag == br.tag) {
			if (br.bc->rv == VIGIL_OK)
				profile_fill_card_txn(txn, &br.bc->p, f);
			br.card = false;
		}
	}
	if (br.merchant && lv != NULL &&
	    ent_bcache_get(lv, ENT_MERCHANT, txn, &ctx->keys, br.tag, &be)) {
		if (be.rv == VIGIL_OK)
			profile_fill_merchant(&be.p, f);
		br.merchant = false;
	}
	if (br.terminal && lv != NULL &&
	    ent_bcache_get(lv, ENT_TERMINAL, txn, &ctx->keys, br.tag, &be)) {
		if (be.rv == VIGIL_OK)
			profile_fill_terminal(&be.p, f);
		br.terminal = false;
	}
	if (!br.card && !br.merchant && !br.terminal)
		return VIGIL_OK;
	return fill_batch_guarded(ctx, g, &br, f);
}

/* Under a partial mask, every slot not asked for is missing. */
void
fill_mask_apply(const store_ctx *ctx, vigil_value *f)
{
	if (ctx->need_all)
		return;
	/* Word by word, visiting only the slots not asked for that a lookup
	 * may have filled (ctx->clear). */
	for (uint32_t w = 0; w * 64 < STORE_SLOT_COUNT_; w++) {
		uint64_t miss = ctx->clear.w[w];

		while (miss != 0) {
			f[w * 64 + (uint32_t)__builtin_ctzll(miss)] = vigil_value_missing();
			miss &= miss - 1;
		}
	}
}

/* ---------------------------------------------------------------------- */
/* A lean record's transaction slots (fill.h). */

void
store_lean_features_from_txn(const store_scored_lean *s, vigil_value *f, uint32_t n)
{
	/* Mirrors store_features_from_txn (schema.c; tests check they agree),
	 * computing only the n slots asked for. The bound is the contract, and
	 * it lets the compiler see that a caller's STORE_LEAN_TXN_SLOTS-value
	 * buffer is never written past (gcc -flto warned on batch's, when the
	 * derived hour slot, far past it, was computed here too). */
	static const double scale[] = { 1, 10, 100, 1000, 10000 };
	const char *ch;
	int e;

	_Static_assert(STORE_LEAN_TXN_SLOTS == STORE_SLOT_EVENT_TIME + 1,
	    "the transaction's fields are the first slots, event_time the last");
	if (n > STORE_LEAN_TXN_SLOTS)
		n = STORE_LEAN_TXN_SLOTS;
	for (uint32_t i = 0; i < n; i++) {
		switch (i) {
		case STORE_SLOT_AMOUNT:
			e = vigil_currency_exponent(s->currency);
			f[i] = vigil_value_num((double)s->amount_minor / scale[e < 0 ? 2 : e]);
			break;
		case STORE_SLOT_AMOUNT_MINOR:
			f[i] = vigil_value_num((double)s->amount_minor);
			break;
		case STORE_SLOT_CURRENCY:
			f[i] = vigil_value_str(s->currency, (uint32_t)strlen(s->currency));
			break;
		case STORE_SLOT_MCC:
			f[i] = s->mcc ? vigil_value_num(s->mcc) : vigil_value_missing();
			break;
		case STORE_SLOT_COUNTRY:
			f[i] = s->country[0] ? vigil_value_str(s->country, (uint32_t)strlen(s->country))
			                     : vigil_value_missing();
			break;
		case STORE_SLOT_CHANNEL:
			ch = vigil_channel_name((vigil_channel)s->channel);
			f[i] = vigil_value_str(ch, (uint32_t)strlen(ch));
			break;
		case STORE_SLOT_CARD_ID:
			f[i] = vigil_value_str(s->card_id.p, s->card_id.len);
			break;
		case STORE_SLOT_MERCHANT_ID:
			f[i] = vigil_value_str(s->merchant_id.p, s->merchant_id.len);
			break;
		case STORE_SLOT_TERMINAL_ID:
			f[i] = s->terminal_id.len ? vigil_value_str(s->terminal_id.p, s->terminal_id.len)
			                          : vigil_value_missing();
			break;
		case STORE_SLOT_DEVICE_ID:
			f[i] = s->device_id.len ? vigil_value_str(s->device_id.p, s->device_id.len)
			                        : vigil_value_missing();
			break;
		case STORE_SLOT_IP:
			f[i] = s->ip.len ? vigil_value_str(s->ip.p, s->ip.len) : vigil_value_missing();
			break;
		case STORE_SLOT_LAT:
			f[i] = s->has_location ? vigil_value_num(s->lat) : vigil_value_missing();
			break;
		case STORE_SLOT_LON:
			f[i] = s->has_location ? vigil_value_num(s->lon) : vigil_value_missing();
			break;
		case STORE_SLOT_EVENT_TIME:
			f[i] = vigil_value_num((double)s->event_time_ms / 1000.0);
			break;
		default:
			f[i] = vigil_value_missing();
			break;
		}
	}
}

