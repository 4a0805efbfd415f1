/* SPDX-License-Identifier: MIT */
/*
 * bench/rules/bench_rules.c - cost of rule evaluation per transaction and
 * allocations per evaluation (docs/BENCHMARKS.md, "Rules engine").
 * Evaluates (1) rules/default.rules and (2) a generated program of N rules
 * (default 200) over a pool of synthetic feature vectors against the store
 * feature schema, with tuned per-group threshold values bound. Each
 * configuration runs --runs times; the median ns/transaction is reported.
 * malloc/calloc/realloc/free are wrapped at link time to count allocations
 * made inside rules_prog_eval.
 *
 * Then the memory of a list (rules/list.c, hand-written rather than uthash
 * for it): a rule file whose list file holds --list-items distinct 12-byte
 * ids is compiled, and the heap it holds (glibc's mallinfo2) divided by the
 * items; beside it, the same ids in a uthash set as the project would write
 * one (an entry malloc'd per item, the strings in one buffer as list.c's
 * arena keeps them). Both figures include the strings' 13 bytes.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <uthash.h>

#include "bench_stats.h"
#include "app.h"
#include "cli.h"
#include "rules.h"
#include "schema.h"
#include "splitmix.h"
#include "vigil.h"

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
void  __real_free(void *p);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t m);
void *__wrap_realloc(void *p, size_t n);
void  __wrap_free(void *p);

static unsigned long long allocs;

void *__wrap_malloc(size_t n) { allocs++; return __real_malloc(n); }
void *__wrap_calloc(size_t n, size_t m) { allocs++; return __real_calloc(n, m); }
void *__wrap_realloc(void *p, size_t n) { allocs++; return __real_realloc(p, n); }
void  __wrap_free(void *p) { if (p != NULL) allocs++; __real_free(p); }

#define POOL 1024

static const char *usage =
    "usage: bench-rules [--iterations N] [--runs R] [--generated N] [--rules FILE]\n"
    "                   [--list-items N]\n"
    "\n"
    "Measures rule evaluation: thread CPU ns and wall ns per transaction\n"
    "(median of R runs of N evaluations each) and allocations per evaluation, for FILE (default\n"
    "$VIGIL_SOURCE_ROOT/rules/default.rules or ./rules/default.rules) and for a\n"
    "generated program of --generated rules (default 200).\n"
    "  --iterations N  evaluations per run (default 200000)\n"
    "  --runs R        runs per configuration (default 5, max 101)\n"
    "  --generated N   rules in the generated program (default 200)\n"
    "  --rules FILE    the rule file to measure\n"
    "  --list-items N  items of the list whose memory is measured (default 1000000; 0: none)\n"
    "  --help          this text\n"
    "  --version       print the version\n";

static void
print_usage(FILE *out)
{
	static const char *const exits[VIGIL_EXIT_COUNT_] = {
		"every configuration measured", "the generated program did not compile, or out of memory",
		"bad command line, or a rule file that does not load", NULL,
	};

	fputs(usage, out);
	vigil_cli_exit_help(out, exits);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

/* splitmix64: deterministic, so every run sees the same transactions */
static uint64_t
rng(void)
{
	return vigil_splitmix64(&rng_state);
}

static double
urand(void)
{
	return vigil_unit_double(rng());
}

static const char *countries[] = { "FR", "GB", "US", "DE", "BR", "NG", "IR", "JP" };
static const char *channels[] = { "pos", "ecom", "atm", "moto" };
static const double mccs[] = { 5411, 5812, 5999, 4829, 6051, 7995, 5732, 6011 };
static char card_ids[POOL][24];

/* A plausible vector: every slot filled by type, ~10% missing. */
static void
fill_pool(vigil_value *pool, uint32_t nslots)
{
	for (uint32_t t = 0; t < POOL; t++) {
		vigil_value *f = pool + (size_t)t * nslots;

		snprintf(card_ids[t], sizeof card_ids[t], "%s%06llu", t % 50 == 0 ? "411111" : "tok_",
		    (unsigned long long)(rng() % 1000000));
		for (uint32_t s = 0; s < nslots; s++) {
			const store_field *fd = store_schema_field(s);

			if (fd == NULL || urand() < 0.1) {
				f[s] = vigil_value_missing();
				continue;
			}
			switch (fd->type) {
			case VIGIL_T_NUM: f[s] = vigil_value_num(urand() * (urand() < 0.5 ? 10 : 2000)); break;
			case VIGIL_T_BOOL: f[s] = vigil_value_bool(urand() < 0.8); break;
			default: {
				const char *c = countries[rng() % 8];

				f[s] = vigil_value_str(c, 2);
				break;
			}
			}
		}
		f[0] = vigil_value_num(urand() < 0.2 ? urand() * 5 : urand() * 3000); /* amount */
		f[3] = vigil_value_num(mccs[rng() % 8]);
		f[4] = vigil_value_str(countries[rng() % 8], 2);
		f[5] = vigil_value_str(channels[rng() % 4], strlen(channels[0]) - (rng() % 4 == 0 ? 0 : 0));
		f[5].len = (uint32_t)strlen(f[5].str);
		f[6] = vigil_value_str(card_ids[t], (uint32_t)strlen(card_ids[t]));
		f[13] = vigil_value_num(1795185000 + (double)(rng() % 86400 * 30));
	}
}

/* N rules over random number features, thresholds, lists and built-ins. */
static char *
gen_program(int n)
{
	size_t cap = (size_t)n * 400 + 4096, off = 0;
	char  *s = malloc(cap);
	int    nnum = 0;
	uint32_t numslots[128];

	if (s == NULL)
		return NULL;
	for (uint32_t i = 0; i < store_schema_nfields() && nnum < 128; i++)
		if (store_schema_field(i)->type == VIGIL_T_NUM)
			numslots[nnum++] = i;
	off += (size_t)snprintf(s + off, cap - off,
	    "version \"bench\"\nband review = 100\nband decline = 200\n"
	    "list cl = [\"NG\", \"IR\", \"KP\", \"RU\", \"BR\"]\n"
	    "list bins = prefix [\"411111\", \"5500\", \"37\"]\n"
	    "list mccl = [4829, 6051, 7995]\n");
	for (int t = 0; t < 20; t++)
		off += (size_t)snprintf(s + off, cap - off,
		    t % 2 ? "threshold t%d = percentile(%s, 99) by mcc fallback %d\n"
		          : "threshold t%d = alert_rate(%s, 0.01) fallback %d\n",
		    t, store_schema_field(numslots[rng() % (uint64_t)nnum])->name, (int)(rng() % 1000));
	for (int r = 0; r < n; r++) {
		const char *a = store_schema_field(numslots[rng() % (uint64_t)nnum])->name;
		const char *b = store_schema_field(numslots[rng() % (uint64_t)nnum])->name;

		switch (r % 5) {
		case 0:
			off += (size_t)snprintf(s + off, cap - off,
			    "rule r%d { when %s > t%d and %s < %d score %d reason \"r%d\" }\n", r, a,
			    (int)(rng() % 20), b, (int)(rng() % 500), (int)(rng() % 30), r);
			break;
		case 1:
			off += (size_t)snprintf(s + off, cap - off,
			    "rule r%d { when country in cl or (mcc in mccl and coalesce(%s, 0) >= %d) score %d reason \"r%d\" }\n",
			    r, a, (int)(rng() % 100), (int)(rng() % 30), r);
			break;
		case 2:
			off += (size_t)snprintf(s + off, cap - off,
			    "rule r%d { when card_id in bins and %s / max(%s, 1) > %d score %d reason \"r%d\" }\n",
			    r, a, b, (int)(rng() % 10), (int)(rng() % 30), r);
			break;
		case 3:
			off += (size_t)snprintf(s + off, cap - off,
			    "rule r%d { when hour(event_time) between %d and %d and channel == \"ecom\" and %s is not missing score %d reason \"r%d\" }\n",
			    r, (int)(rng() % 12), (int)(12 + rng() % 12), a, (int)(rng() % 30), r);
			break;
		default:
			off += (size_t)snprintf(s + off, cap - off,
			    "rule r%d { when abs(%s - %s) > %d * coalesce(%s, 1) or not coalesce(card.country_seen, true) score %d reason \"r%d\" mode %s }\n",
			    r, a, b, (int)(rng() % 50), b, (int)(rng() % 30), r, r % 10 == 9 ? "shadow" : "active");
			break;
		}
	}
	return s;
}

/* Median CPU ns per evaluation over runs (*ret_wall: median wall ns);
 * *ret_allocs: allocations per evaluation. */
static double
measure(const rules_prog *prog, const rules_tvals *tv, const vigil_value *pool, uint32_t nslots,
    long iters, int runs, double *ret_allocs, double *ret_hits, double *ret_wall)
{
	rules_result      *res = malloc(sizeof *res);
	double            *ns = calloc((size_t)runs, sizeof *ns);
	double            *wall = calloc((size_t)runs, sizeof *wall);
	unsigned long long a0, hits = 0;
	double             med;

	if (res == NULL || ns == NULL || wall == NULL)
		exit(2);
	for (long i = 0; i < 10000; i++) /* warm-up */
		rules_prog_eval(prog, tv, pool + (size_t)(i % POOL) * nslots, nslots, res);
	a0 = allocs;
	for (int r = 0; r < runs; r++) {
		uint64_t t0 = vigil_mono_ns(), c0 = bench_clock_ns(CLOCK_THREAD_CPUTIME_ID);

		for (long i = 0; i < iters; i++) {
			rules_prog_eval(prog, tv, pool + (size_t)(i % POOL) * nslots, nslots, res);
			hits += res->nhits;
		}
		ns[r] = (double)(bench_clock_ns(CLOCK_THREAD_CPUTIME_ID) - c0) / (double)iters;
		wall[r] = (double)(vigil_mono_ns() - t0) / (double)iters;
	}
	*ret_allocs = (double)(allocs - a0) / ((double)iters * runs);
	*ret_hits = (double)hits / ((double)iters * runs);
	qsort(ns, (size_t)runs, sizeof *ns, bench_cmp_double);
	qsort(wall, (size_t)runs, sizeof *wall, bench_cmp_double);
	med = ns[runs / 2];
	*ret_wall = wall[runs / 2];
	free(ns);
	free(wall);
	free(res);
	return med;
}

static rules_tvals *
bind_tvals(const rules_prog *prog)
{
	rules_tvals *tv = rules_tvals_new(prog);

	if (tv == NULL)
		exit(2);
	for (uint32_t i = 0; i < rules_prog_nthresholds(prog); i++) {
		rules_threshold_info ti;

		rules_prog_threshold(prog, i, &ti);
		if (ti.kind == RULES_TUNE_CONST)
			continue;
		rules_tvals_set(tv, i, NULL, ti.fallback * 1.1);
		if (ti.group_by != NULL && ti.group_type == VIGIL_T_NUM)
			for (int k = 0; k < 8; k++) {
				vigil_value g = vigil_value_num(mccs[k]);

				rules_tvals_set(tv, i, &g, ti.fallback * (0.5 + k * 0.1));
			}
	}
	return tv;
}

/* Heap bytes in use: glibc's arenas and its mmap'd blocks. */
static size_t
heap_used(void)
{
	struct mallinfo2 mi = mallinfo2();

	return mi.uordblks + mi.hblkhd;
}

typedef struct lset_item {
	const char    *s;
	uint32_t       len;
	UT_hash_handle hh;
} lset_item;

/*
 * The list figure: bytes an item of a compiled list of n ids (*ret_list)
 * and of a uthash set of the same ids (*ret_ut). 0, -1 on I/O or memory
 * failure, -2 if the rule file did not compile.
 */
static int
list_memory(const rules_schema *schema, uint32_t n, double *ret_list, double *ret_ut)
{
	const char *base = getenv("TMPDIR");
	char dir[256], items[300], rules[300];
	static const char src[] = "list big = file \"items.txt\"\n"
	    "rule on_list {\n  when card_id in big\n  score 1\n  reason \"listed\"\n}\n";
	rules_prog *prog = NULL;
	rules_diags diags;
	lset_item *head = NULL, *it, *tmp;
	char *buf = NULL;
	size_t h0;
	FILE *f;
	int rv = -1;

	snprintf(dir, sizeof dir, "%s/vigil-bench-rules-XXXXXX",
	    base != NULL && base[0] != '\0' ? base : "/tmp");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(items, sizeof items, "%s/items.txt", dir);
	snprintf(rules, sizeof rules, "%s/l.rules", dir);
	if ((f = fopen(items, "w")) == NULL)
		goto out;
	for (uint32_t i = 0; i < n; i++)
		fprintf(f, "c%011u\n", i);
	if (fclose(f) != 0 || (f = fopen(rules, "w")) == NULL)
		goto out;
	fputs(src, f);
	if (fclose(f) != 0)
		goto out;
	h0 = heap_used();
	if (rules_load_file(rules, schema, NULL, &prog, &diags) != VIGIL_OK) {
		rules_diags_print(&diags, NULL, 0, stderr);
		rv = -2;
		goto out;
	}
	*ret_list = heap_used() > h0 ? (double)(heap_used() - h0) / n : 0;
	rules_prog_free(prog);
	h0 = heap_used();
	if ((buf = malloc((size_t)n * 13)) == NULL)
		goto out;
	for (uint32_t i = 0; i < n; i++) {
		char *p = buf + (size_t)i * 13;

		snprintf(p, 13, "c%011u", i);
		if ((it = malloc(sizeof *it)) == NULL)
			goto out;
		it->s = p;
		it->len = 12;
		HASH_ADD_KEYPTR(hh, head, it->s, it->len, it);
	}
	*ret_ut = heap_used() > h0 ? (double)(heap_used() - h0) / n : 0;
	rv = 0;
out:
	HASH_ITER(hh, head, it, tmp) {
		HASH_DEL(head, it);
		free(it);
	}
	free(buf);
	unlink(items);
	unlink(rules);
	rmdir(dir);
	return rv;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "iterations", required_argument, NULL, 'i' },
		{ "runs", required_argument, NULL, 'r' },
		{ "generated", required_argument, NULL, 'g' },
		{ "rules", required_argument, NULL, 'f' },
		{ "list-items", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		VIGIL_CLI_VERSION,
		{ NULL, 0, NULL, 0 },
	};
	long          iters = 200000;
	uint64_t      v = 0;
	int           runs = 5, ngen = 200, c;
	uint32_t      nlist = 1000000;
	double        list_b = 0, ut_b = 0;
	char          path[4096];
	const char   *root = getenv("VIGIL_SOURCE_ROOT");
	rules_schema *schema = NULL;
	rules_prog   *prog = NULL, *gprog = NULL;
	rules_diags   diags;
	vigil_value  *pool;
	uint32_t      nslots;
	char         *gsrc;
	double        ns, al, hits, wall;

	snprintf(path, sizeof path, "%s/rules/default.rules", root != NULL ? root : ".");
	opterr = 0;
	while ((c = getopt_long(argc, argv, "i:r:g:f:l:hV", longopts, NULL)) != -1) {
		int u = VIGIL_EXIT_OK;

		switch (c) {
		case 'i':
			u = vigil_cli_parse_u64("bench-rules", "iterations", optarg,
			    1, LONG_MAX, &v);
			iters = (long)v;
			break;
		case 'r': u = vigil_cli_parse_u64("bench-rules", "runs", optarg,
		    1, 101, &v); runs = (int)v; break;
		case 'g':
			u = vigil_cli_parse_u64("bench-rules", "generated", optarg,
			    1, RULES_MAX_RULES, &v);
			ngen = (int)v;
			break;
		case 'f': snprintf(path, sizeof path, "%s", optarg); break;
		case 'l':
			u = vigil_cli_parse_u32("bench-rules", "list-items", optarg, 0, 1000000, &nlist);
			break;
		case 'h': print_usage(stdout); return VIGIL_EXIT_OK;
		case 'V': vigil_cli_version(stdout, "bench-rules"); return VIGIL_EXIT_OK;
		default: return vigil_cli_bad_option("bench-rules", argv);
		}
		if (u != VIGIL_EXIT_OK)
			return u;
	}
	if (optind != argc)
		return vigil_cli_usage_error("bench-rules", "%s: unexpected argument", argv[optind]);
	if (app_rules_schema(&schema) != VIGIL_OK) {
		fprintf(stderr, "bench-rules: the feature schema did not load\n");
		return VIGIL_EXIT_FAIL;
	}
	nslots = rules_schema_nslots(schema);
	pool = calloc((size_t)POOL * nslots, sizeof *pool);
	if (pool == NULL) {
		fprintf(stderr, "bench-rules: out of memory\n");
		return VIGIL_EXIT_FAIL;
	}
	fill_pool(pool, nslots);
	if (rules_load_file(path, schema, NULL, &prog, &diags) != VIGIL_OK) {
		rules_diags_print(&diags, NULL, 0, stderr);
		return VIGIL_EXIT_USAGE;
	}
	gsrc = gen_program(ngen);
	if (gsrc == NULL ||
	    rules_compile("generated", gsrc, strlen(gsrc), schema, NULL, &gprog, &diags) != VIGIL_OK) {
		rules_diags_print(&diags, gsrc, gsrc != NULL ? strlen(gsrc) : 0, stderr);
		return 1;
	}
	printf("%-28s %6s %12s %12s %12s %10s\n", "program", "rules", "cpu ns/txn", "wall ns/txn",
	    "allocs/txn", "hits/txn");
	{
		rules_tvals *tv = bind_tvals(prog);

		ns = measure(prog, tv, pool, nslots, iters, runs, &al, &hits, &wall);
		printf("%-28s %6u %12.1f %12.1f %12.3f %10.2f\n", "default.rules", rules_prog_nrules(prog), ns,
		    wall, al, hits);
		rules_tvals_free(tv);
	}
	{
		rules_tvals *tv = bind_tvals(gprog);
		char         label[64];

		snprintf(label, sizeof label, "generated (%d rules)", ngen);
		ns = measure(gprog, tv, pool, nslots, iters / 4 > 0 ? iters / 4 : 1, runs, &al, &hits, &wall);
		printf("%-28s %6u %12.1f %12.1f %12.3f %10.2f\n", label, rules_prog_nrules(gprog), ns, wall, al,
		    hits);
		rules_tvals_free(tv);
	}
	printf("(median of %d runs; %ld evaluations per run for default.rules, %ld for generated)\n", runs,
	    iters, iters / 4 > 0 ? iters / 4 : 1);
	if (nlist > 0) {
		switch (list_memory(schema, nlist, &list_b, &ut_b)) {
		case 0:
			if (list_b == 0 || ut_b == 0) { /* e.g. a sanitizer's allocator */
				printf("list of %u ids: no heap figure (mallinfo2 counts nothing "
				    "in this build)\n", nlist);
				break;
			}
			printf("list of %u 12-byte ids: %.1f bytes an item (rules/list.c), %.1f in uthash "
			    "(both with the strings)\n", nlist, list_b, ut_b);
			break;
		case -2:
			return VIGIL_EXIT_FAIL;
		default:
			fprintf(stderr, "bench-rules: the list's files or memory failed\n");
			return VIGIL_EXIT_FAIL;
		}
	}
	rules_prog_free(prog);
	rules_prog_free(gprog);
	rules_schema_free(schema);
	free(gsrc);
	free(pool);
	return 0;
}
