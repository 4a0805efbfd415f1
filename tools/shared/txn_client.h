/* SPDX-License-Identifier: MIT */
/*
 * tools/shared/txn_client.h - the C client's view of a transaction, for the
 * programs that read transactions as vigil_txn (CSV, JSON) and send them
 * through libvigil-client (vigil-score, vigil-replay --server).
 */
#ifndef VIGIL_TOOLS_TXN_CLIENT_H
#define VIGIL_TOOLS_TXN_CLIENT_H

#include <stdbool.h>
#include <string.h>

#include "cli.h"
#include "vigil.h"
#include "vigil_client.h"

/* The first of urls[0..n) that needs a CA (tls+tcp://), or NULL. */
static inline const char *
vigil_tools_url_tls(const char *const *urls, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strncmp(urls[i], "tls+tcp://", 10) == 0)
			return urls[i];
	return NULL;
}

/* *ret as the client sends t: its strings point into t, which must outlive
 * the call that sends it. */
static inline void
vigil_tools_txn_to_client(const vigil_txn *t, vigil_client_txn *ret)
{
	memset(ret, 0, sizeof *ret);
	ret->txn_id        = t->txn_id;
	ret->card_id       = t->card_id;
	ret->merchant_id   = t->merchant_id;
	ret->terminal_id   = t->terminal_id;
	ret->currency      = t->currency;
	ret->country       = t->country;
	ret->device_id     = t->device_id;
	ret->ip            = t->ip;
	ret->event_time_ms = t->event_time_ms;
	ret->amount_minor  = t->amount_minor;
	ret->mcc           = t->mcc;
	ret->channel       = (vigil_client_channel)t->channel;
	ret->has_location  = t->has_location;
	ret->latitude      = t->lat;
	ret->longitude     = t->lon;
}

#endif
