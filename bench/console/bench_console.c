/* SPDX-License-Identifier: MIT */
/*
 * bench/console/bench_console.c - how fast vigil-console's review queue
 * opens on a big archive (docs/console.md, "Performance"). Writes a
 * synthetic archive of N scored records over D days (a realistic mix:
 * ~0.6% reviews, ~0.1% declines, a fifth of the rest with a low-points hit,
 * 1M cards, chargeback labels a few days later) with the store's own
 * writer, or takes an existing data directory (--data, e.g. the demo's or
 * vigil-gen + vigil-replay --nightly --work), builds the console's index
 * from it (timed), then times the queue queries the UI makes.
 *
 * usage: bench-console [--records N] [--days D] [--dir DIR] [--data DATADIR] [--keep]
 *                      [--reuse-index] [--entity-only] [--rebuild-entities]
 *
 * --reuse-index: DIR/index and DIR/entities as a kept run left them (caught
 * up, not rebuilt). --entity-only: only the searches by an entity, each
 * timed by the entity index and, as the baseline in the same run, by the
 * bounded scan the console falls back to (and used before the index).
 * --rebuild-entities: with --reuse-index, the entity index built again.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench_stats.h"
#include "cli.h"
#include "console.h"
#include "entities.h"

static uint64_t rng = 88172645463325252ull;

static uint64_t
xr(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static const char *const rule_names[] = {
	"card_testing_repeat", "impossible_travel", "first_use_country", "country_hop_card_present",
	"risky_terminal", "device_burst", "amount_high_for_category", "card_spend_spike",
	"trusted_history", "risky_category_new_card", "local_spree", "sanctioned_country",
};

static int
write_archive(const char *datadir, uint64_t n, uint32_t days)
{
	char dir[4300];
	store_archive_opts o;
	store_archive *ar = NULL;
	store_diag d;
	store_scored *s = calloc(1, sizeof *s);
	uint8_t *buf = malloc(1 << 16), lbuf[512];
	int64_t start = 1704067200000; /* 2024-01-01 */
	int64_t span = (int64_t)days * VIGIL_MS_PER_DAY;
	uint64_t t0 = vigil_mono_ns(), labels = 0;
	uint64_t *frauds = calloc(1 << 16, sizeof *frauds);
	size_t nf = 0;

	mkdir(datadir, 0755);
	snprintf(dir, sizeof dir, "%s/archive", datadir);
	store_archive_opts_default(&o);
	o.fsync = STORE_FSYNC_NEVER;
	o.segment_max_bytes = 256ull << 20;
	if (s == NULL || buf == NULL || frauds == NULL ||
	    store_archive_open(dir, &o, &ar, NULL, &d) != VIGIL_OK) {
		fprintf(stderr, "bench-console: %s: %s\n", dir, d.msg);
		return 1;
	}
	for (uint64_t i = 0; i < n; i++) {
		uint64_t r = xr();
		size_t len;

		memset(s, 0, offsetof(store_scored, strbuf));
		snprintf(s->txn.txn_id, sizeof s->txn.txn_id, "t%012" PRIu64, i);
		snprintf(s->txn.card_id, sizeof s->txn.card_id, "c%07" PRIu64, r % 1000000);
		snprintf(s->txn.merchant_id, sizeof s->txn.merchant_id, "m%05" PRIu64, (r >> 20) % 20000);
		snprintf(s->txn.terminal_id, sizeof s->txn.terminal_id, "m%05" PRIu64 "-t%u",
		    (r >> 20) % 20000, (unsigned)((r >> 36) % 4));
		memcpy(s->txn.currency, "EUR", 4);
		memcpy(s->txn.country, "FR", 3);
		s->txn.event_time_ms = start + (int64_t)((double)i / (double)n * (double)span);
		s->txn.amount_minor = 100 + (int64_t)((r >> 8) % 20000);
		s->txn.mcc = 5411;
		s->txn.channel = VIGIL_CHANNEL_POS;
		s->scored_at_ms = s->txn.event_time_ms;
		snprintf(s->rules_version, sizeof s->rules_version, "bench");
		uint32_t roll = (uint32_t)((r >> 40) % 10000);
		if (roll < 70) { /* 0.6% review, 0.1% decline */
			s->decision = roll < 10 ? VIGIL_DECISION_DECLINE : VIGIL_DECISION_REVIEW;
			s->score = roll < 10 ? 80 + (int32_t)(roll % 40) : 40 + (int32_t)(roll % 40);
			s->nhits = 2 + (uint32_t)(roll % 2);
		} else {
			s->decision = VIGIL_DECISION_ALLOW;
			s->score = roll < 2000 ? 10 : 0;
			s->nhits = roll < 2000 ? 1 : 0;
		}
		for (uint32_t h = 0; h < s->nhits; h++) {
			snprintf(s->hits[h].rule, sizeof s->hits[h].rule, "%s",
			    rule_names[(r >> (8 * h)) % (sizeof rule_names / sizeof rule_names[0])]);
			s->hits[h].points = 20;
		}
		if (store_scored_encode(s, buf, 1 << 16, &len) != VIGIL_OK ||
		    store_archive_append(ar, STORE_REC_SCORE, s->txn.event_time_ms, buf, len, NULL) !=
		    VIGIL_OK) {
			fprintf(stderr, "bench-console: append failed at %" PRIu64 "\n", i);
			return 1;
		}
		/* a chargeback for ~0.2% of transactions, a few thousand records later */
		if ((r >> 56) == 0 && nf < (1 << 16))
			frauds[nf++] = i;
		if (nf > 0 && frauds[0] + 5000 < i) {
			store_label l = { .fraud = true, .label_time_ms = s->txn.event_time_ms,
				.received_at_ms = s->txn.event_time_ms };
			snprintf(l.txn_id, sizeof l.txn_id, "t%012" PRIu64, frauds[0]);
			snprintf(l.source, sizeof l.source, "chargeback");
			if (store_label_encode(&l, lbuf, sizeof lbuf, &len) == VIGIL_OK)
				(void)store_archive_append(ar, STORE_REC_LABEL, l.label_time_ms, lbuf, len, NULL);
			memmove(frauds, frauds + 1, --nf * sizeof *frauds);
			labels++;
		}
		if (isatty(2) && i % 500000 == 0)
			fprintf(stderr, "\rbench-console: writing %" PRIu64 "/%" PRIu64, i, n);
	}
	store_archive_close(ar);
	fprintf(stderr, "%sbench-console: archive: %" PRIu64 " scored + %" PRIu64 " labels in %.1f s\n",
	    isatty(2) ? "\r" : "", n, labels, (double)(vigil_mono_ns() - t0) / 1e9);
	free(s);
	free(buf);
	free(frauds);
	return 0;
}

static void
time_query(con_index *ix, const char *name, const con_query *q, con_case *page)
{
	double ms[7];
	uint32_t n = 0;
	uint64_t total = 0;

	for (int i = 0; i < 7; i++) {
		uint64_t t0 = vigil_mono_ns();
		if (con_index_query(ix, q, page, 500, &n, &total, NULL) != VIGIL_OK) {
			printf("  %-40s failed\n", name);
			return;
		}
		ms[i] = (double)(vigil_mono_ns() - t0) / 1e6;
	}
	qsort(ms, 7, sizeof ms[0], bench_cmp_double);
	printf("  %-44s %8" PRIu64 " matches %4u rows   median %8.2f ms   max %8.2f ms\n", name, total,
	    n, ms[3], ms[6]);
}

/* The baseline: every record of the range decoded whole (protobuf-c), then
 * filtered, as the search did before the lean filter. */
typedef struct base_ctx {
	con_app            *app;
	const con_search_q *q;
	uint32_t            n;
} base_ctx;

static bool
base_each(void *arg, const store_scored *s)
{
	base_ctx *c = arg;
	const con_search_q *q = c->q;
	const vigil_txn *t = &s->txn;
	double amount = vigil_txn_amount(t);

	if ((q->card[0] && strcmp(q->card, t->card_id) != 0) ||
	    (q->merchant[0] && strcmp(q->merchant, t->merchant_id) != 0) ||
	    (q->decision != 0 && (int)s->decision != q->decision) ||
	    (q->min_amount >= 0 && amount < q->min_amount) ||
	    (q->max_amount >= 0 && amount > q->max_amount))
		return true;
	if (q->label != -2 && con_index_label_of(c->app->ix, t->txn_id) != q->label)
		return true;
	return ++c->n < q->limit + 1;
}

static double
time_base(con_app *app, const con_search_q *q, store_scored *s)
{
	double ms[5];
	char err[600];

	for (int i = 0; i < 5; i++) {
		base_ctx c = { app, q, 0 };
		con_damage dmg = { 0 };
		uint64_t scanned, t0 = vigil_mono_ns();

		(void)con_search_scan(app, q->from_ms, q->to_ms, NULL, s, base_each, &c, &scanned, &dmg,
		    err, sizeof err);
		ms[i] = (double)(vigil_mono_ns() - t0) / 1e6;
	}
	qsort(ms, 5, sizeof ms[0], bench_cmp_double);
	return ms[2];
}

/* GET /api/search's work (con_search_run), 5 runs: the median and the max,
 * with what a run read and found; then the baseline's median: the scan
 * (app->ents NULL) for a search by an entity, the full decode otherwise. */
static bool full_base = true;

static double
run_search(con_app *app, const con_search_q *q, int runs, double *ret_max, size_t *ret_n,
    bool *ret_more, uint64_t *ret_scanned)
{
	double ms[7];
	char err[600];

	for (int i = 0; i < runs; i++) {
		json_t *items = json_array();
		con_damage dmg = { 0 };
		uint64_t t0 = vigil_mono_ns();

		if (con_search_run(app, q, items, ret_more, ret_scanned, &dmg, err, sizeof err) !=
		    VIGIL_OK) {
			printf("  search failed: %s\n", err);
			json_decref(items);
			return -1;
		}
		ms[i] = (double)(vigil_mono_ns() - t0) / 1e6;
		*ret_n = json_array_size(items);
		json_decref(items);
	}
	qsort(ms, (size_t)runs, sizeof ms[0], bench_cmp_double);
	*ret_max = ms[runs - 1];
	return ms[runs / 2];
}

static void
time_search(con_app *app, const char *name, const con_search_q *q)
{
	static store_scored s;
	double med, max, base = -1;
	uint64_t scanned = 0, bscanned = 0;
	size_t n = 0, bn = 0;
	bool more = false, bmore = false, indexed = con_search_by_index(app, q);

	med = run_search(app, q, 5, &max, &n, &more, &scanned);
	if (med < 0)
		return;
	if (indexed) {
		con_ents *e = app->ents;
		double bmax;

		app->ents = NULL; /* the scan: the baseline */
		base = run_search(app, q, 3, &bmax, &bn, &bmore, &bscanned);
		app->ents = e;
	} else if (full_base) {
		base = time_base(app, q, &s);
	}
	printf("  %-40s %3zu rows%s %8" PRIu64 " read%s  median %8.2f ms  max %8.2f ms", name, n,
	    more ? "+" : " ", scanned, scanned > CON_SEARCH_SCAN_MAX ? " (capped)" : "", med, max);
	if (indexed)
		printf("  (%s; scan: %zu rows%s %" PRIu64 " read%s, median %.2f ms)\n",
		    "entity index", bn, bmore ? "+" : "", bscanned,
		    bscanned > CON_SEARCH_SCAN_MAX ? " (capped: truncated)" : "", base);
	else if (base >= 0)
		printf("  (full decode: median %8.2f ms)\n", base);
	else
		printf("\n");
}

static void
usage(FILE *out)
{
	static const char *const exits[VIGIL_EXIT_COUNT_] = {
		"every query timed", "writing the archive, indexing or a query failed", "", NULL,
	};

	fprintf(out, "usage: bench-console [--records N] [--days D] [--dir DIR] [--data DATADIR] "
	    "[--keep]\n"
	    "                     [--reuse-index] [--entity-only] [--rebuild-entities]\n"
	    "Times building vigil-console's index of an archive and the review queue's queries.\n"
	    "  --records N         synthetic scored records to write (default 1000000)\n"
	    "  --days D            days they span (default 7)\n"
	    "  --dir DIR           work directory (default: a new one under /tmp)\n"
	    "  --data DATADIR      index this data directory's archive instead of writing one\n"
	    "  --keep              keep DIR (always kept with --data)\n"
	    "  --reuse-index       DIR/index and DIR/entities as a kept run left them\n"
	    "  --entity-only       only the searches by an entity (index and bounded scan)\n"
	    "  --rebuild-entities  with --reuse-index, build the entity index again\n"
	    "  --help              this text\n"
	    "  --version           print the version\n");
	vigil_cli_exit_help(out, exits);
}

int
main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "records", required_argument, NULL, 'n' }, { "days", required_argument, NULL, 'd' },
		{ "dir", required_argument, NULL, 'o' }, { "data", required_argument, NULL, 'D' },
		{ "keep", no_argument, NULL, 'k' }, { "help", no_argument, NULL, 'h' },
		VIGIL_CLI_VERSION,
		{ "reuse-index", no_argument, NULL, 'R' },
		{ "entity-only", no_argument, NULL, 'E' },
		{ "rebuild-entities", no_argument, NULL, 'B' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t n = 1000000;
	uint32_t days = 7;
	const char *data = NULL;
	char dir[4096] = "", datadir[4200], ixdir[4200], archive[4300], err[512], cmd[8600];
	bool keep = false, reuse = false, entity_only = false, rebuild_ents = false;
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "hV", lo, NULL)) != -1) {
		int u = VIGIL_EXIT_OK;

		switch (c) {
		case 'n': u = vigil_cli_parse_u64("bench-console", "records", optarg,
		    1, UINT64_MAX, &n); break;
		case 'd': u = vigil_cli_parse_u32("bench-console", "days", optarg,
		    1, UINT32_MAX, &days); break;
		case 'o': snprintf(dir, sizeof dir, "%s", optarg); break;
		case 'D': data = optarg; break;
		case 'k': keep = true; break;
		case 'R': reuse = true; break;
		case 'E': entity_only = true; break;
		case 'B': rebuild_ents = true; break;
		case 'h': usage(stdout); return VIGIL_EXIT_OK;
		case 'V': vigil_cli_version(stdout, "bench-console"); return VIGIL_EXIT_OK;
		default: return vigil_cli_bad_option("bench-console", argv);
		}
		if (u != VIGIL_EXIT_OK)
			return u;
	}
	if (optind != argc)
		return vigil_cli_usage_error("bench-console", "%s: unexpected argument", argv[optind]);
	if (dir[0] == '\0') {
		snprintf(dir, sizeof dir, "/tmp/bench-console-XXXXXX");
		if (mkdtemp(dir) == NULL) {
			perror("mkdtemp");
			return 1;
		}
	} else {
		mkdir(dir, 0755);
	}
	if (data != NULL) {
		snprintf(datadir, sizeof datadir, "%s", data);
	} else {
		snprintf(datadir, sizeof datadir, "%s/data", dir);
		if (write_archive(datadir, n, days) != 0)
			return 1;
	}
	snprintf(ixdir, sizeof ixdir, "%s/index", dir);
	snprintf(archive, sizeof archive, "%s/archive", datadir);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", ixdir);
	if (!reuse && system(cmd) != 0)
		return 1;
	con_index *ix = NULL;
	if (con_index_open(ixdir, 64, &ix, err, sizeof err) != VIGIL_OK) {
		fprintf(stderr, "bench-console: %s\n", err);
		return 1;
	}
	uint64_t t0 = vigil_mono_ns(), total = 0;
	for (;;) {
		uint32_t got = 0;
		bool more = false;
		if (con_index_ingest(ix, archive, 20000, &got, &more, err, sizeof err) != VIGIL_OK) {
			fprintf(stderr, "bench-console: index: %s\n", err);
			return 1;
		}
		total += got;
		if (isatty(2))
			fprintf(stderr, "\rbench-console: indexing %" PRIu64, total);
		if (!more)
			break;
	}
	double secs = (double)(vigil_mono_ns() - t0) / 1e9;
	con_tailpos p;
	struct stat st;
	con_index_pos(ix, &p);
	snprintf(cmd, sizeof cmd, "%s/data.mdb", ixdir);
	stat(cmd, &st);
	printf("%sindex: %" PRIu64 " records (%" PRIu64 " scored, %" PRIu64 " labels, %" PRIu64
	    " cases) in %.1f s: %.0f records/s; data.mdb %.0f MiB\n", isatty(2) ? "\r" : "", total,
	    p.scored, p.labels, p.cases, secs, (double)total / secs, (double)st.st_blocks * 512 / 1048576);

	/* the entity index: its own tail of the archive */
	char entsdir[4200], note[4400];
	con_ents *ents = NULL;
	snprintf(entsdir, sizeof entsdir, "%s/entities", dir);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", entsdir);
	if ((!reuse || rebuild_ents) && system(cmd) != 0)
		return 1;
	if (con_ents_open(entsdir, 64, &ents, note, sizeof note, err, sizeof err) != VIGIL_OK) {
		fprintf(stderr, "bench-console: entity index: %s\n", err);
		return 1;
	}
	t0 = vigil_mono_ns();
	total = 0;
	for (;;) {
		uint32_t got = 0;
		bool more = false;
		if (con_ents_ingest(ents, archive, 20000, &got, &more, err, sizeof err) != VIGIL_OK) {
			fprintf(stderr, "bench-console: %s\n", err);
			return 1;
		}
		total += got;
		if (isatty(2))
			fprintf(stderr, "\rbench-console: entity index %" PRIu64, total);
		if (!more)
			break;
	}
	secs = (double)(vigil_mono_ns() - t0) / 1e9;
	con_ents_stats es;
	uint64_t efile, elive;
	con_ents_get_stats(ents, &es);
	con_ents_sizes(ents, &efile, &elive);
	snprintf(cmd, sizeof cmd, "%s/data.mdb", entsdir);
	stat(cmd, &st);
	printf("%sentity index: %" PRIu64 " records read (%" PRIu64 " scored, %" PRIu64 " entries) in "
	    "%.1f s: %.0f records/s (%u compaction); data.mdb %.0f MiB on disk, %.0f MiB in use "
	    "(%.1f MiB per 1M scored)\n", isatty(2) ? "\r" : "", total, es.records, es.entries, secs,
	    (double)total / secs, es.compactions, (double)st.st_blocks * 512 / 1048576,
	    (double)elive / 1048576,
	    es.records ? (double)st.st_blocks * 512 / 1048576 / ((double)es.records / 1e6) : 0.0);

	con_case *page = malloc(500 * sizeof *page);
	con_query q;
	if (entity_only)
		goto search;
	memset(&q, 0, sizeof q);
	q.decision = VIGIL_DECISION_REVIEW;
	q.min_amount = -1;
	q.from_ms = INT64_MIN;
	q.to_ms = INT64_MAX;
	q.limit = 50;
	printf("queue queries (7 runs each; the UI's default is the first):\n");
	time_query(ix, "review, open, newest first, 50", &q, page);
	q.by_score = true;
	time_query(ix, "review, open, highest score first, 50", &q, page);
	q.offset = 1000;
	time_query(ix, "  ... page at offset 1000", &q, page);
	q.offset = 0;
	q.decision = 0;
	q.status = 2;
	time_query(ix, "review+decline, any label, by score", &q, page);
	q.by_score = false;
	snprintf(q.rule, sizeof q.rule, "impossible_travel");
	time_query(ix, "rule = impossible_travel", &q, page);
	q.rule[0] = '\0';
	q.min_amount = 150;
	time_query(ix, "amount >= 150.00", &q, page);
	q.min_amount = -1;
	q.from_ms = 1704067200000 + (int64_t)(days - 1) * VIGIL_MS_PER_DAY;
	time_query(ix, "last day only", &q, page);
	q.from_ms = INT64_MIN;
	if (p.cases > 0 && q.limit > 0) {
		uint32_t got;
		uint64_t tot;
		q.limit = 1;
		(void)con_index_query(ix, &q, page, 1, &got, &tot, NULL);
		if (got == 1) {
			snprintf(q.card, sizeof q.card, "%s", page[0].card_id);
			q.limit = 50;
			time_query(ix, "card = (one card)", &q, page);
			con_card_txn h[20];
			uint32_t nh;
			uint64_t t1 = vigil_mono_ns();
			for (int i = 0; i < 100; i++)
				(void)con_index_card_history(ix, page[0].card_id, h, 20, &nh);
			printf("  card history (case view): %u transactions, %.1f us per lookup\n", nh,
			    (double)(vigil_mono_ns() - t1) / 1e3 / 100);
		}
	}
search:
	free(page);

	/* GET /api/search over the whole span (the archive, or the entity index) */
	{
		static con_app app;
		con_search_q sq;
		int64_t start = 1704067200000, end = start + (int64_t)days * VIGIL_MS_PER_DAY;

		app.ix = ix;
		app.ents = ents;
		full_base = !entity_only;
		snprintf(app.archive_dir, sizeof app.archive_dir, "%.4000s", archive);
		memset(&sq, 0, sizeof sq);
		sq.min_amount = sq.max_amount = -1;
		sq.label = -2;
		sq.limit = 50;
		sq.from_ms = end - VIGIL_MS_PER_DAY;
		sq.to_ms = end;
		printf("search (5 runs each, 3 for a scan baseline; %u days; a scan reads at most "
		    "2000000 records):\n", days);
		sq.from_ms = start;
		snprintf(sq.card, sizeof sq.card, "c0004242");
		time_search(&app, "card = c0004242, all days", &sq);
		sq.decision = VIGIL_DECISION_ALLOW;
		sq.min_amount = 50;
		time_search(&app, "  ... allow, amount >= 50.00", &sq);
		sq.decision = 0;
		sq.min_amount = -1;
		sq.card[0] = '\0';
		snprintf(sq.merchant, sizeof sq.merchant, "m04242");
		time_search(&app, "merchant = m04242, all days", &sq);
		sq.merchant[0] = '\0';
		snprintf(sq.terminal, sizeof sq.terminal, "m04242-t1");
		time_search(&app, "terminal = m04242-t1, all days", &sq);
		sq.terminal[0] = '\0';
		snprintf(sq.card, sizeof sq.card, "c9999999");
		time_search(&app, "card = (none such), all days", &sq);
		sq.card[0] = '\0';
		if (entity_only)
			goto done;
		sq.from_ms = end - VIGIL_MS_PER_DAY;
		time_search(&app, "the last day, no filter (the default)", &sq);
		sq.from_ms = start;
		sq.min_amount = 150.00;
		sq.max_amount = 150.02;
		time_search(&app, "amount 150.00-150.02, all days", &sq);
		sq.min_amount = sq.max_amount = -1;
		sq.from_ms = end - VIGIL_MS_PER_DAY / 24;
		time_search(&app, "time: the last hour", &sq);
		sq.from_ms = start;
		sq.decision = VIGIL_DECISION_DECLINE;
		time_search(&app, "decision = decline, all days", &sq);
		sq.decision = 0;
		sq.label = 1;
		time_search(&app, "label = fraud, all days", &sq);
		sq.label = -2;
	}
done:
	con_ents_close(ents);
	con_index_close(ix);
	if (!keep && data == NULL) {
		snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "bench-console: could not remove %s\n", dir);
	} else {
		printf("kept: %s\n", dir);
	}
	return 0;
}
