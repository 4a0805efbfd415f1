/* SPDX-License-Identifier: MIT */
/*
 * store/keys.c - the keys of a transaction in the live state's tables
 * (live_keys, live.h): the hash and length of each id, and the
 * fingerprint a retry is compared by. Computed once per transaction by
 * db.c and used by live.c, dedupe.c and features/db/velocity.c; and the card hash of
 * an observation (observe.h).
 */
#include <string.h>
#include <xxhash.h>

#include "live_obj_int.h"
#include "live.h"

void
live_keys_compute(live_keys *ret_k, const vigil_txn *txn)
{
	size_t l;

	l = strnlen(txn->txn_id, sizeof txn->txn_id);
	ret_k->ltxn = (uint8_t)l;
	ret_k->txn = id_hash(txn->txn_id, l);
	l = strnlen(txn->card_id, sizeof txn->card_id);
	ret_k->lcard = (uint8_t)l;
	ret_k->card = id_hash(txn->card_id, l);
	l = strnlen(txn->merchant_id, sizeof txn->merchant_id);
	ret_k->lmerchant = (uint8_t)l;
	ret_k->merchant = id_hash(txn->merchant_id, l);
	l = strnlen(txn->terminal_id, sizeof txn->terminal_id);
	ret_k->lterminal = (uint8_t)l;
	ret_k->terminal = l ? id_hash(txn->terminal_id, l) : 0;
	l = strnlen(txn->device_id, sizeof txn->device_id);
	ret_k->ldevice = (uint8_t)l;
	ret_k->device = l ? id_hash(txn->device_id, l) : 0;
	l = strnlen(txn->ip, sizeof txn->ip);
	ret_k->lip = (uint8_t)l;
	ret_k->ip = l ? id_hash(txn->ip, l) : 0;
	ret_k->fp = live_txn_fingerprint(txn, ret_k);
}

uint64_t
live_txn_fingerprint(const vigil_txn *txn, const live_keys *k)
{
	struct {
		uint64_t card, merchant, terminal;
		int64_t  amount_minor;
		uint8_t  lcard, lmerchant, lterminal;
		char     currency[sizeof txn->currency];
	} f;

	memset(&f, 0, sizeof f); /* padding included: hashed as bytes */
	f.card = k->card;
	f.merchant = k->merchant;
	f.terminal = k->terminal;
	f.amount_minor = txn->amount_minor;
	f.lcard = k->lcard;
	f.lmerchant = k->lmerchant;
	f.lterminal = k->lterminal;
	memcpy(f.currency, txn->currency, strnlen(txn->currency, sizeof f.currency));
	return XXH3_64bits(&f, sizeof f);
}

uint64_t
store_card_hash(const char *card_id)
{
	return XXH3_64bits(card_id, strnlen(card_id, VIGIL_ID_MAX + 1));
}

void
store_observation_from_txn(const vigil_txn *txn, store_observation *o)
{
	memset(o, 0, sizeof *o);
	o->event_time_ms = txn->event_time_ms;
	o->card_hash = store_card_hash(txn->card_id);
	memcpy(o->merchant_id, txn->merchant_id, strnlen(txn->merchant_id, VIGIL_ID_MAX));
	memcpy(o->terminal_id, txn->terminal_id, strnlen(txn->terminal_id, VIGIL_ID_MAX));
	memcpy(o->device_id, txn->device_id, strnlen(txn->device_id, VIGIL_ID_MAX));
	memcpy(o->ip, txn->ip, strnlen(txn->ip, VIGIL_IP_MAX));
}
