/* SPDX-License-Identifier: MIT */
/*
 * bench/store/bench_omap.c - the live state's keyed table (store/
 * table_view.h's omap: linear probing over (hash, object) slots) against
 * uthash, the project's library hash table, on the same objects and keys:
 * why the cards, entities and idempotency records are not in uthash
 * (store/live.c's head comment carries the figure).
 *
 * --keys objects of 192 bytes (a card's hot fields, then its okey), each
 * its own malloc in shuffled order, as live objects are, go into one omap
 * and one uthash table (XXH3 as uthash's hash function too, so the tables
 * differ and the hashing does not). A run then finds --lookups ids in
 * random order in one table and reads a field of the object found, as a
 * score does; the tables take turns, each figure the median of --runs runs
 * in ns per lookup. A miss costs what a table makes it cost: with a million
 * keys neither fits in this machine's caches.
 *
 * Run from a release build:
 *   ./build-bench/bench/store/bench-omap [--keys N] [--lookups N] [--runs N]
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#define HASH_FUNCTION(keyptr, keylen, hashv) \
	((hashv) = (unsigned)XXH3_64bits((keyptr), (keylen)))
#include <uthash.h>

#include "bench_stats.h"
#include "cli.h"
#include "omap_int.h"
#include "splitmix.h"
#include "table_view.h"

typedef struct obj {
	uint64_t       hot[8]; /* the object's first line, read after a find */
	okey           k;
	UT_hash_handle hh;
} obj;

static void
usage(FILE *out)
{
	static const char *const exits[VIGIL_EXIT_COUNT_] = {
		"every figure measured", "out of memory", "", NULL,
	};

	fprintf(out, "usage: bench-omap [--keys N (1000000)] [--lookups N (2000000)] "
	    "[--runs N (5, max 64)]\nTimes a lookup in the live state's keyed table (omap) "
	    "against uthash on the same objects.\n");
	vigil_cli_exit_help(out, exits);
}

int
main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "keys", required_argument, NULL, 'k' }, { "lookups", required_argument, NULL, 'l' },
		{ "runs", required_argument, NULL, 'r' }, { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	uint32_t  nkeys = 1000000, nlook = 2000000, runs = 5;
	uint64_t  rng = 42, sum = 0;
	obj     **objs, *head = NULL;
	uint32_t *order;
	omap      m = { 0 };
	double    t_omap[64], t_ut[64], med_omap, med_ut;
	int       o;

	opterr = 0;
	while ((o = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		int u = VIGIL_EXIT_OK;

		switch (o) {
		case 'k': u = vigil_cli_parse_u32("bench-omap", "keys", optarg, 1, 1u << 28, &nkeys);
			break;
		case 'l': u = vigil_cli_parse_u32("bench-omap", "lookups", optarg, 1, UINT32_MAX,
		    &nlook);
			break;
		case 'r': u = vigil_cli_parse_u32("bench-omap", "runs", optarg, 1, 64, &runs); break;
		case 'h': usage(stdout); return VIGIL_EXIT_OK;
		default: return vigil_cli_bad_option("bench-omap", argv);
		}
		if (u != VIGIL_EXIT_OK)
			return u;
	}
	if (optind != argc)
		return vigil_cli_usage_error("bench-omap", "%s: unexpected argument", argv[optind]);
	objs = calloc(nkeys, sizeof *objs);
	order = malloc((size_t)nlook * sizeof *order);
	if (objs == NULL || order == NULL)
		goto nomem;
	/* Objects allocated in shuffled order, so neighbours in key order are
	 * not neighbours in memory. */
	for (uint32_t i = 0; i < nkeys; i++) {
		char id[32];
		int  len = snprintf(id, sizeof id, "c%09u", i);

		if ((objs[i] = calloc(1, sizeof *objs[i])) == NULL)
			goto nomem;
		objs[i]->hot[0] = i;
		objs[i]->k.h = XXH3_64bits(id, (size_t)len);
		objs[i]->k.len = (uint8_t)len;
		memcpy(objs[i]->k.id, id, (size_t)len + 1);
	}
	for (uint32_t i = nkeys; i > 1; i--) {
		uint32_t j = (uint32_t)(vigil_splitmix64(&rng) % i);
		obj     *x = objs[i - 1];

		objs[i - 1] = objs[j];
		objs[j] = x;
	}
	for (uint32_t i = 0; i < nkeys; i++) {
		if (omap_insert(&m, &objs[i]->k) != VIGIL_OK)
			goto nomem;
		HASH_ADD_KEYPTR(hh, head, objs[i]->k.id, objs[i]->k.len, objs[i]);
	}
	for (uint32_t i = 0; i < nlook; i++)
		order[i] = (uint32_t)(vigil_splitmix64(&rng) % nkeys);
	fprintf(stderr, "%u keys, %u lookups a run, %u runs each, tables taking turns\n", nkeys,
	    nlook, runs);
	for (uint32_t r = 0; r < runs; r++) {
		for (int which = 0; which < 2; which++) {
			int    first = (int)(r & 1) ^ which; /* who goes first alternates */
			double t = (double)vigil_mono_ns();

			for (uint32_t i = 0; i < nlook; i++) {
				/* the key as a request brings it: its own bytes */
				const okey *want = &objs[order[i]]->k;
				obj        *f;

				if (first == 0) {
					okey *k = omap_find(&m, XXH3_64bits(want->id, want->len), want->id,
					    want->len, offsetof(obj, k));

					f = k != NULL ? (obj *)((char *)k - offsetof(obj, k)) : NULL;
				} else {
					HASH_FIND(hh, head, want->id, want->len, f);
				}
				sum += f != NULL ? f->hot[0] : 1ULL << 40;
			}
			t = ((double)vigil_mono_ns() - t) / nlook;
			if (first == 0)
				t_omap[r] = t;
			else
				t_ut[r] = t;
		}
	}
	med_omap = bench_median(t_omap, runs); /* sorts: [0] and [runs - 1] are min and max */
	med_ut = bench_median(t_ut, runs);
	printf("omap    %7.1f ns a lookup (median of %u; min %.1f, max %.1f)\n", med_omap, runs,
	    t_omap[0], t_omap[runs - 1]);
	printf("uthash  %7.1f ns a lookup (median of %u; min %.1f, max %.1f)\n", med_ut, runs,
	    t_ut[0], t_ut[runs - 1]);
	printf("memory  omap %.1f MB of slots, uthash %.1f MB of buckets and handles "
	    "(checksum %llu)\n", (double)(m.mask + 1) * sizeof(oslot) / 1e6,
	    ((double)head->hh.tbl->num_buckets * sizeof(UT_hash_bucket) +
	        (double)nkeys * sizeof(UT_hash_handle)) / 1e6, (unsigned long long)sum);
	HASH_CLEAR(hh, head);
	for (uint32_t i = 0; i < nkeys; i++)
		free(objs[i]);
	free(objs);
	free(order);
	free(m.sl);
	return VIGIL_EXIT_OK;
nomem:
	fprintf(stderr, "bench-omap: out of memory\n");
	return VIGIL_EXIT_FAIL;
}
