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
 * Then the busy entities' distinct-card counts (table_view.h's ent_dmap: a
 * count per card hash, open addressing) against a uthash table of counts
 * (one malloc'd entry per distinct card, freed at zero): --entities busy
 * entities, each with a sliding window of its last --window events over
 * cards drawn from a pool of 1M, take --lookups events at random entities;
 * an event leaves its entity's window (its card counted down) and a new
 * one enters (counted up), as velocity.c moves a window. The two keep the
 * same counts (checked at the end); each figure is ns per event.
 *
 * Last, the velocity features' distinct counts (features/db/velset.h: a
 * stamped set reused by every count, nothing to clear) against uthash (an
 * entry malloc'd per distinct key, then HASH_CLEAR and a free each), as a
 * score counts a card's distinct merchants: --sets counts a run, each of
 * --set-events keys drawn from --set-keys distinct ones (repeats are the
 * rule: a card pays the same merchants again). The two counts are checked
 * equal; each figure is ns per count.
 *
 * Run from a release build:
 *   ./build-bench/bench/store/bench-omap [--keys N] [--lookups N] [--runs N]
 *       [--entities N] [--window N] [--sets N] [--set-events N] [--set-keys N]
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
#include "velset.h"

typedef struct obj {
	uint64_t       hot[8]; /* the object's first line, read after a find */
	okey           k;
	UT_hash_handle hh;
} obj;

/* A distinct card's count in the uthash variant of ent_dmap. */
typedef struct ucount {
	uint64_t       ch;
	uint32_t       cnt;
	UT_hash_handle hh;
} ucount;

typedef struct uset {
	ucount  *head;
	uint32_t ndistinct;
} uset;

static int
uset_add(uset *u, uint64_t ch)
{
	ucount *c;

	HASH_FIND(hh, u->head, &ch, sizeof ch, c);
	if (c != NULL) {
		c->cnt++;
		return 0;
	}
	if ((c = malloc(sizeof *c)) == NULL)
		return -1;
	c->ch = ch;
	c->cnt = 1;
	HASH_ADD(hh, u->head, ch, sizeof c->ch, c);
	u->ndistinct++;
	return 0;
}

static void
uset_sub(uset *u, uint64_t ch)
{
	ucount *c;

	HASH_FIND(hh, u->head, &ch, sizeof ch, c);
	if (c == NULL || --c->cnt > 0)
		return;
	HASH_DEL(u->head, c);
	free(c);
	u->ndistinct--;
}

/*
 * The distinct-card figure: nent entities, each a ring of its last win
 * card hashes held in one ent_dmap and one uset; nev events a run.
 * Returns 0, or -1 out of memory, or -2 if the two disagree.
 */
static int
bench_dmap(uint32_t nent, uint32_t win, uint32_t nev, uint32_t runs, uint64_t *rng,
    double *ret_dm, double *ret_ut)
{
	uint64_t  *ring = calloc((size_t)nent * win, sizeof *ring), *pool;
	uint32_t  *pos = calloc(nent, sizeof *pos), *ent = malloc((size_t)nev * sizeof *ent);
	uint64_t  *card = malloc((size_t)nev * sizeof *card);
	uint64_t  *gone = malloc((size_t)nev * sizeof *gone);
	ent_dmap  *dm = calloc(nent, sizeof *dm);
	uset      *us = calloc(nent, sizeof *us);
	double     t_dm[64], t_ut[64];
	int        rv = -1;
	const uint32_t npool = 1u << 20;

	pool = malloc((size_t)npool * sizeof *pool);
	if (ring == NULL || pos == NULL || ent == NULL || card == NULL || gone == NULL || dm == NULL ||
	    us == NULL || pool == NULL)
		goto out;
	for (uint32_t i = 0; i < npool; i++)
		pool[i] = vigil_splitmix64(rng) | 1;
	for (uint32_t e = 0; e < nent; e++) {
		for (uint32_t i = 0; i < win; i++) {
			uint64_t ch = pool[vigil_splitmix64(rng) % npool];

			ring[(size_t)e * win + i] = ch;
			if (dmap_add(&dm[e], ch) != VIGIL_OK || uset_add(&us[e], ch) != 0)
				goto out;
		}
	}
	for (uint32_t r = 0; r < runs; r++) {
		/* The run's events, decided first: event i at entity ent[i]
		 * brings card[i] in and takes gone[i] out of its window. */
		for (uint32_t i = 0; i < nev; i++) {
			uint32_t  e = (uint32_t)(vigil_splitmix64(rng) % nent);
			uint64_t *slot = &ring[(size_t)e * win + pos[e]];

			ent[i] = e;
			card[i] = pool[vigil_splitmix64(rng) % npool];
			gone[i] = *slot;
			*slot = card[i];
			pos[e] = pos[e] + 1 == win ? 0 : pos[e] + 1;
		}
		for (int which = 0; which < 2; which++) {
			int    first = (int)(r & 1) ^ which; /* who goes first alternates */
			double t = (double)vigil_mono_ns();

			for (uint32_t i = 0; i < nev; i++) {
				if (first == 0) {
					dmap_sub(&dm[ent[i]], gone[i]);
					if (dmap_add(&dm[ent[i]], card[i]) != VIGIL_OK)
						goto out;
				} else {
					uset_sub(&us[ent[i]], gone[i]);
					if (uset_add(&us[ent[i]], card[i]) != 0)
						goto out;
				}
			}
			t = ((double)vigil_mono_ns() - t) / nev;
			if (first == 0)
				t_dm[r] = t;
			else
				t_ut[r] = t;
		}
	}
	rv = 0;
	for (uint32_t e = 0; e < nent; e++)
		if (dm[e].ndistinct != us[e].ndistinct)
			rv = -2;
	*ret_dm = bench_median(t_dm, runs);
	*ret_ut = bench_median(t_ut, runs);
out:
	for (uint32_t e = 0; us != NULL && e < nent; e++) {
		ucount *c, *tmp;

		HASH_ITER(hh, us[e].head, c, tmp) {
			HASH_DEL(us[e].head, c);
			free(c);
		}
	}
	for (uint32_t e = 0; dm != NULL && e < nent; e++)
		free(dm[e].sl);
	free(us);
	free(dm);
	free(card);
	free(gone);
	free(ent);
	free(pos);
	free(ring);
	free(pool);
	return rv;
}

/*
 * The distinct-set figure: nsets counts a run of nev keys each, drawn from
 * nkeys distinct ones per count, in one vel_set and in uthash. Returns 0,
 * -1 out of memory, -2 if the counts differ.
 */
static int
bench_set(uint32_t nsets, uint32_t nev, uint32_t nkeys, uint32_t runs, uint64_t *rng,
    double *ret_vs, double *ret_ut)
{
	uint64_t *keys = malloc((size_t)nsets * nev * sizeof *keys), sum_vs = 0, sum_ut = 0;
	vel_set  *vs = calloc(1, sizeof *vs);
	double    t_vs[64], t_ut[64];
	int       rv = -1;

	if (keys == NULL || vs == NULL)
		goto out;
	for (uint32_t i = 0; i < nsets; i++) {
		uint64_t base = vigil_splitmix64(rng);

		for (uint32_t j = 0; j < nev; j++) /* nkeys distinct hashes per set */
			keys[(size_t)i * nev + j] = XXH3_64bits_withSeed(&base, sizeof base,
			    vigil_splitmix64(rng) % nkeys);
	}
	for (uint32_t r = 0; r < runs; r++) {
		for (int which = 0; which < 2; which++) {
			int    first = (int)(r & 1) ^ which; /* who goes first alternates */
			double t = (double)vigil_mono_ns();

			for (uint32_t i = 0; i < nsets; i++) {
				const uint64_t *k = &keys[(size_t)i * nev];

				if (first == 0) {
					vel_set_reset(vs, nev);
					for (uint32_t j = 0; j < nev; j++)
						vel_set_add(vs, k[j]);
					sum_vs += vel_set_size(vs);
				} else {
					uset     u = { 0 };
					ucount  *c, *tmp;

					for (uint32_t j = 0; j < nev; j++)
						if (uset_add(&u, k[j]) != 0)
							goto out;
					sum_ut += u.ndistinct;
					HASH_ITER(hh, u.head, c, tmp) {
						HASH_DEL(u.head, c);
						free(c);
					}
				}
			}
			t = ((double)vigil_mono_ns() - t) / nsets;
			if (first == 0)
				t_vs[r] = t;
			else
				t_ut[r] = t;
		}
	}
	rv = sum_vs == sum_ut ? 0 : -2;
	*ret_vs = bench_median(t_vs, runs);
	*ret_ut = bench_median(t_ut, runs);
out:
	free(vs);
	free(keys);
	return rv;
}

/* Prints a hand-written structure's figure against uthash's from a bench_*
 * result rv (0, -1 out of memory, -2 the two disagreed): an exit status. */
static int
bench_report(int rv, const char *name, const char *per, const char *what, double mine,
    double ut, uint32_t runs)
{
	if (rv == -2) {
		fprintf(stderr, "bench-omap: %s: %s and uthash disagree\n", what, name);
		return VIGIL_EXIT_FAIL;
	}
	if (rv != 0) {
		fprintf(stderr, "bench-omap: out of memory\n");
		return VIGIL_EXIT_FAIL;
	}
	printf("%s %7.1f ns %s (median of %u)\nuthash  %7.1f ns %s (%s, median of %u)\n", name,
	    mine, per, runs, ut, per, what, runs);
	return VIGIL_EXIT_OK;
}

static void
usage(FILE *out)
{
	static const char *const exits[VIGIL_EXIT_COUNT_] = {
		"every figure measured", "out of memory", "", NULL,
	};

	fprintf(out, "usage: bench-omap [--keys N (1000000)] [--lookups N (2000000)] "
	    "[--runs N (5, max 64)]\n                  [--entities N (100)] [--window N (20000)]\n"
	    "                  [--sets N (100000)] [--set-events N (64)] [--set-keys N (24)]\n"
	    "       bench-omap --help | --version\n"
	    "Times a lookup in the live state's keyed table (omap) against uthash on the same "
	    "objects,\nthen a busy entity's distinct-card count (ent_dmap) against uthash, then "
	    "the velocity\nfeatures' distinct counts (vel_set) against uthash.\n");
	vigil_cli_exit_help(out, exits);
}

int
main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "keys", required_argument, NULL, 'k' }, { "lookups", required_argument, NULL, 'l' },
		{ "runs", required_argument, NULL, 'r' }, { "entities", required_argument, NULL, 'e' },
		{ "window", required_argument, NULL, 'w' }, { "sets", required_argument, NULL, 's' },
		{ "set-events", required_argument, NULL, 'E' },
		{ "set-keys", required_argument, NULL, 'K' }, { "help", no_argument, NULL, 'h' },
		VIGIL_CLI_VERSION,
		{ NULL, 0, NULL, 0 },
	};
	uint32_t  nkeys = 1000000, nlook = 2000000, runs = 5, nent = 100, win = 20000;
	uint32_t  nsets = 100000, set_ev = 64, set_keys = 24;
	double    med_vs = 0, med_vu = 0;
	int       rc;
	uint64_t  rng = 42, sum = 0;
	obj     **objs, *head = NULL;
	uint32_t *order;
	omap      m = { 0 };
	double    t_omap[64], t_ut[64], med_omap, med_ut, med_dm = 0, med_us = 0;
	int       o;

	opterr = 0;
	while ((o = getopt_long(argc, argv, "hV", lo, NULL)) != -1) {
		int u = VIGIL_EXIT_OK;

		switch (o) {
		case 'k': u = vigil_cli_parse_u32("bench-omap", "keys", optarg, 1, 1u << 28, &nkeys);
			break;
		case 'l': u = vigil_cli_parse_u32("bench-omap", "lookups", optarg, 1, UINT32_MAX,
		    &nlook);
			break;
		case 'r': u = vigil_cli_parse_u32("bench-omap", "runs", optarg, 1, 64, &runs); break;
		case 'e': u = vigil_cli_parse_u32("bench-omap", "entities", optarg, 1, 100000, &nent);
			break;
		case 'w': u = vigil_cli_parse_u32("bench-omap", "window", optarg, 1, 1u << 20, &win);
			break;
		case 's': u = vigil_cli_parse_u32("bench-omap", "sets", optarg, 1, 10000000, &nsets);
			break;
		case 'E': u = vigil_cli_parse_u32("bench-omap", "set-events", optarg, 1, 8192, &set_ev);
			break;
		case 'K': u = vigil_cli_parse_u32("bench-omap", "set-keys", optarg, 1, UINT32_MAX,
		    &set_keys);
			break;
		case 'h': usage(stdout); return VIGIL_EXIT_OK;
		case 'V': vigil_cli_version(stdout, "bench-omap"); return VIGIL_EXIT_OK;
		default: return vigil_cli_bad_option("bench-omap", argv);
		}
		if (u != VIGIL_EXIT_OK)
			return u;
	}
	if (optind != argc)
		return vigil_cli_usage_error("bench-omap", "%s: unexpected argument", argv[optind]);
	if ((uint64_t)nsets * set_ev > (1u << 28))
		return vigil_cli_usage_error("bench-omap", "--sets x --set-events: at most %u keys",
		    1u << 28);
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
	fprintf(stderr, "%u busy entities, a window of %u events each, %u events a run; then %u "
	    "distinct counts a run, %u events each over %u keys\n", nent, win, nlook, nsets, set_ev,
	    set_keys);
	rc = bench_dmap(nent, win, nlook, runs, &rng, &med_dm, &med_us);
	if ((rc = bench_report(rc, "dmap   ", "an event", "distinct-card counts", med_dm, med_us,
	    runs)) != VIGIL_EXIT_OK)
		return rc;
	rc = bench_set(nsets, set_ev, set_keys, runs, &rng, &med_vs, &med_vu);
	if ((rc = bench_report(rc, "vel_set", "a count", "distinct sets", med_vs, med_vu,
	    runs)) != VIGIL_EXIT_OK)
		return rc;
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
