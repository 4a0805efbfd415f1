/* SPDX-License-Identifier: MIT */
/*
 * clients/examples/score_one.c - the smallest complete use of
 * libvigil-client: score one transaction synchronously, score a few more
 * asynchronously, then label the first one as fraud.
 *
 *   vigil-client-example URL [URL...]
 *   cc score_one.c $(pkg-config --cflags --libs vigil-client)
 *
 * Exit status: 0 when every call succeeded, 1 otherwise, 2 on usage error.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "vigil_client.h"

#define NASYNC 8

/* Shared with the callbacks, which run on nng threads. */
static pthread_mutex_t g_mtx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t  g_cv  = PTHREAD_COND_INITIALIZER;
static int             g_pending;
static int             g_failed;

static void
on_score(void *arg, vigil_client_err err, vigil_client_result *res,
    const vigil_client_errinfo *info)
{
	const char *txn_id = arg;

	pthread_mutex_lock(&g_mtx);
	if (err == VIGIL_CLIENT_OK) {
		printf("%s: %s (score %.1f, %zu hits)\n", res->txn_id,
		    vigil_client_decision_name(res->decision), res->score, res->nhits);
	} else {
		printf("%s: failed: %s\n", txn_id, info->message);
		g_failed++;
	}
	if (--g_pending == 0)
		pthread_cond_signal(&g_cv);
	pthread_mutex_unlock(&g_mtx);
}

int
main(int argc, char **argv)
{
	vigil_client        *c = NULL;
	vigil_client_errinfo info;
	vigil_client_result  res = { 0 };
	vigil_client_err     err;
	static char          ids[NASYNC][32];
	int64_t              now_ms = (int64_t) time(NULL) * 1000;
	int                  status = 1;

	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		fprintf(argc < 2 ? stderr : stdout,
		    "usage: vigil-client-example URL [URL...]\n"
		    "Scores one transaction, then %d more asynchronously, then labels the first.\n",
		    NASYNC);
		return argc < 2 ? 2 : 0;
	}
	for (int i = 1; i < argc; i++) {
		if (argv[i][0] == '-') { /* a URL never starts with '-' */
			fprintf(stderr, "vigil-client-example: %s: unknown option (see --help)\n",
			    argv[i]);
			return 2;
		}
	}

	err = vigil_client_open((const char *const *) argv + 1, (size_t) argc - 1, NULL, &c, &info);
	if (err != VIGIL_CLIENT_OK) {
		fprintf(stderr, "vigil-client-example: %s\n", info.message);
		return 1;
	}

	vigil_client_txn txn = {
		.txn_id = "example-1", .card_id = "card-42", .merchant_id = "m-7",
		.currency = "EUR", .country = "FR", .amount_minor = 12345, .mcc = 5411,
		.channel = VIGIL_CLIENT_CHANNEL_ECOM, .event_time_ms = now_ms,
	};
	err = vigil_client_score(c, &txn, NULL, &res, &info);
	if (err != VIGIL_CLIENT_OK) {
		fprintf(stderr, "vigil-client-example: score: %s\n", info.message);
		goto out;
	}
	printf("%s: %s (score %.1f, rules %s, replica %s%s)\n", res.txn_id,
	    vigil_client_decision_name(res.decision), res.score, res.rules_version, res.replica,
	    res.duplicate ? ", duplicate" : "");
	for (size_t i = 0; i < res.nhits; i++)
		printf("  %s%s +%d: %s\n", res.hits[i].rule, res.hits[i].shadow ? " (shadow)" : "",
		    res.hits[i].points, res.hits[i].reason);
	vigil_client_result_fini(&res);

	pthread_mutex_lock(&g_mtx);
	for (int i = 0; i < NASYNC; i++) {
		snprintf(ids[i], sizeof ids[i], "example-async-%d", i);
		txn.txn_id = ids[i];
		txn.event_time_ms = now_ms + i;
		err = vigil_client_score_async(c, &txn, NULL, on_score, ids[i], &info);
		if (err != VIGIL_CLIENT_OK) {
			fprintf(stderr, "vigil-client-example: %s: %s\n", ids[i], info.message);
			g_failed++;
			continue;
		}
		g_pending++;
	}
	while (g_pending > 0)
		pthread_cond_wait(&g_cv, &g_mtx);
	pthread_mutex_unlock(&g_mtx);

	vigil_client_label_req label = {
		.txn_id = "example-1", .card_id = "card-42", .fraud = true, .source = "example",
	};
	err = vigil_client_label(c, &label, NULL, &info);
	if (err != VIGIL_CLIENT_OK) {
		fprintf(stderr, "vigil-client-example: label: %s\n", info.message);
		goto out;
	}
	printf("example-1: labelled fraud\n");
	status = g_failed == 0 ? 0 : 1;
out:
	vigil_client_close(c);
	return status;
}
