/* SPDX-License-Identifier: MIT */
/*
 * tools/replay/replay.c - vigil-replay: back-tests rule files on history
 * (docs/vigil-replay.md).
 *
 * Input is a vigil CSV file or an archive range. Offline mode (the default)
 * scores in process with the same store/ and rules/ code as vigild: the
 * live velocity state sees exactly the earlier transactions of the replay;
 * with --nightly the replay keeps a real data directory, archives every
 * scored transaction and every label once its label time has passed, and at
 * each UTC day boundary runs batch_rebuild() as of that midnight and
 * switches to the new generation, so batch features and tuned thresholds
 * are those production would have had that day. Server mode sends the same
 * stream to running vigild replicas through the C client, with pacing,
 * concurrency (per-card order kept), labels at their label time and
 * vigil-rebuild between days.
 *
 * Outputs: JSON lines per transaction (--results), a terminal summary, a
 * JSON summary (--json) and an HTML report (--report); metrics.c and
 * report.c compute and draw them.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <jansson.h>
#include <uthash.h>
#include <xxhash.h>

#include "app.h"
#include "batch.h"
#include "csv.h"
#include "metrics.h"
#include "report.h"
#include "rules.h"
#include "store.h"
#include "vigil.h"
#include "vigil_client.h"
#include "vigil_config.h"

#define RP_MAX_SERVERS     64
#define RP_MAX_CONCURRENCY 256
#define RP_BATCH           8192
#define RP_MAX_HITS        64
#define RP_MAX_ERRORS_SHOWN 20

/* A build checked for leaks (ASan/LSan) frees the live state at exit;
 * others leave it to the exit (store_db_close_exiting): one free per card,
 * entity and idempotency record is tens of milliseconds of a replay. */
#if defined(__SANITIZE_ADDRESS__)
#define RP_FREE_LIVE_AT_EXIT 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(leak_sanitizer)
#define RP_FREE_LIVE_AT_EXIT 1
#endif
#endif
#ifndef RP_FREE_LIVE_AT_EXIT
#define RP_FREE_LIVE_AT_EXIT 0
#endif

/* ------------------------------- heap -------------------------------- */

/* The live state of an offline replay (cards, their events, idempotency
 * records: 145 MB for 30 days of 20,000 cards) is first written a page at
 * a time, one page fault each (36k on 30 days). The main thread's heap
 * grows in steps of RP_HEAP_PAD instead of 128 KiB, and each step's pages
 * are made present by one madvise(MADV_POPULATE_WRITE): the kernel fills
 * them in a loop instead of one trap per page (system time 0.11 -> 0.08 s
 * on 30 days, 0.29 -> 0.20 s on 90). The pad bounds the memory populated
 * ahead of use. Advising the steps as transparent huge pages instead cut
 * user time 3% but doubled system time on our VMs (d6de3de, reverted).
 * Results do not depend on where the allocator puts things; a build whose
 * allocator does not use brk (ASan) sees no step and populates nothing.
 * docs/BENCHMARKS.md, issue 7. */
#define RP_HEAP_PAD ((size_t)4 << 20)

static uintptr_t rp_heap_done; /* the break up to which the heap is populated */
static uintptr_t rp_heap_pg;

static void
rp_heap_setup(void)
{
#if defined(__GLIBC__) && defined(M_TOP_PAD) && defined(MADV_POPULATE_WRITE)
	long pg = sysconf(_SC_PAGESIZE);

	if (pg <= 0 || (pg & (pg - 1)) != 0)
		return;
	(void)mallopt(M_TOP_PAD, (int)RP_HEAP_PAD);
	rp_heap_pg = (uintptr_t)pg;
	rp_heap_done = (uintptr_t)sbrk(0);
#endif
}

/* Populates the heap grown since the last call (sbrk(0) only reads the
 * break glibc keeps: no system call unless it moved). */
static inline void
rp_heap_populate(void)
{
#if defined(__GLIBC__) && defined(M_TOP_PAD) && defined(MADV_POPULATE_WRITE)
	uintptr_t cur = (uintptr_t)sbrk(0), pg = rp_heap_pg, from, to;

	if (cur == rp_heap_done || cur == (uintptr_t)-1 || rp_heap_done == 0)
		return;
	from = (rp_heap_done + pg - 1) & ~(pg - 1);
	to = cur & ~(pg - 1);
	if (to > from)
		(void)madvise((void *)from, to - from, MADV_POPULATE_WRITE);
	rp_heap_done = cur;
#endif
}

/* ------------------------------ options ------------------------------ */

typedef struct rp_opts {
	const char *csv, *archive;
	int64_t     from_ms, to_ms;
	const char *rules, *compare;
	const char *servers[RP_MAX_SERVERS];
	size_t      nservers;
	double      rate, speed;
	uint32_t    concurrency;
	int64_t     label_delay_ms;
	bool        force_label_delay;
	bool        assume_legit;
	bool        fraud_labels_only;
	bool        nightly;
	const char *data;      /* server mode: the server's data dir, for vigil-rebuild */
	const char *work;      /* offline --nightly: where the data dir goes */
	bool        keep_work;
	const char *rebuild;   /* vigil-rebuild program (server mode) */
	const char *results, *json, *report;
	uint32_t    topk;
	bool        quiet, progress;
	bool        no_model;        /* offline --nightly: rebuilds train no model */
	int64_t     measure_from_ms; /* rows before this are scored but not measured */
} rp_opts;

/* ------------------------------ rows ------------------------------ */

typedef struct rp_row {
	vigil_txn txn;
	int       label;       /* -1, 0, 1 */
	int64_t   label_time;  /* 0 = none */
	char      pattern[CSV_PATTERN_MAX + 1];
	/* where it was read, for messages: a CSV line, or an archive segment
	 * (valid until the next row) and offset */
	uint64_t    line;
	const char *segment;
	uint64_t    offset;
} rp_row;

typedef struct rp_outcome {
	int32_t        score;
	vigil_decision decision;
	uint32_t       nhits, nshadow;
	uint16_t       hits[RP_MAX_HITS];  /* active, then shadow */
	uint32_t       latency_us;
	uint64_t       generation;
	bool           failed;
	bool           refused; /* offline: its txn_id was scored for another transaction */
	double         model_score; /* NaN: no model */
	uint32_t       nreasons;    /* the model's top features (a model rule fired) */
	struct {
		const char *feature; /* static schema name */
		double      value;
		float       contrib;
	} reasons[APP_REASONS_MAX];
} rp_outcome;

/* ------------------------------ labels ------------------------------ */

typedef struct rp_label {
	int64_t t;
	bool    fraud;
	char    txn_id[VIGIL_ID_MAX + 1];
	char    card_id[VIGIL_ID_MAX + 1];
} rp_label;

typedef struct rp_heap {
	rp_label *v;
	size_t    n, cap;
} rp_heap;

static vigil_err
rp_heap_push(rp_heap *h, const rp_label *l)
{
	size_t i;

	if (h->n == h->cap) {
		size_t nc = h->cap ? h->cap * 2 : 1024;
		rp_label *nv = realloc(h->v, nc * sizeof *nv);
		if (nv == NULL)
			return VIGIL_ENOMEM;
		h->v = nv;
		h->cap = nc;
	}
	i = h->n++;
	while (i > 0 && h->v[(i - 1) / 2].t > l->t) {
		h->v[i] = h->v[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	h->v[i] = *l;
	return VIGIL_OK;
}

static void
rp_heap_pop(rp_heap *h, rp_label *ret)
{
	rp_label last;
	size_t i = 0;

	*ret = h->v[0];
	last = h->v[--h->n];
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= h->n)
			break;
		if (c + 1 < h->n && h->v[c + 1].t < h->v[c].t)
			c++;
		if (h->v[c].t >= last.t)
			break;
		h->v[i] = h->v[c];
		i = c;
	}
	if (h->n > 0)
		h->v[i] = last;
}

/* ------------------------------ input ------------------------------ */

typedef struct rp_archlabel {
	char           txn_id[VIGIL_ID_MAX + 1];
	bool           fraud;
	int64_t        label_time;
	UT_hash_handle hh;
} rp_archlabel;

typedef struct rp_source {
	const char    *name;
	csv_reader    *csv;
	store_reader  *ar;
	store_scored  *scored;   /* archive decode buffer */
	rp_archlabel  *labels;   /* archive: txn_id -> label */
	uint64_t       bad, corrupt;
	bool           has_patterns, has_labels;
} rp_source;

static void
rp_on_corrupt(void *arg, const char *segment, uint64_t offset, uint64_t skipped, const char *what)
{
	rp_source *src = arg;

	src->corrupt++;
	fprintf(stderr, "vigil-replay: %s+%" PRIu64 ": %s (%" PRIu64 " bytes skipped)\n",
	    segment, offset, what, skipped);
}

static vigil_err
rp_source_open(rp_source *src, const rp_opts *o)
{
	vigil_err rv;

	memset(src, 0, sizeof *src);
	if (o->csv != NULL) {
		csv_diag diag;
		src->name = o->csv;
		rv = csv_reader_open(o->csv, NULL, &src->csv, &diag);
		if (rv != VIGIL_OK) {
			fprintf(stderr, "vigil-replay: %s\n", diag.msg);
			return rv;
		}
		if (csv_reader_warning(src->csv) != NULL)
			fprintf(stderr, "vigil-replay: warning: %s\n", csv_reader_warning(src->csv));
		src->has_patterns = csv_reader_has_col(src->csv, CSV_COL_FRAUD_PATTERN);
		src->has_labels = csv_reader_has_col(src->csv, CSV_COL_LABEL);
		return VIGIL_OK;
	}
	/* archive: labels first (a txn's label may be archived long after it) */
	{
		char dir[PATH_MAX];
		store_diag diag;
		store_reader *rd = NULL;
		store_record rec;
		store_label lab;

		src->name = o->archive;
		snprintf(dir, sizeof dir, "%s/archive", o->archive);
		rv = store_reader_open(dir, INT64_MIN, INT64_MAX, rp_on_corrupt, src, &rd, &diag);
		if (rv != VIGIL_OK) {
			fprintf(stderr, "vigil-replay: %s: %s\n", dir, diag.msg);
			return rv;
		}
		while ((rv = store_reader_next(rd, &rec, &diag)) == VIGIL_OK) {
			rp_archlabel *l;
			if (rec.type != STORE_REC_LABEL)
				continue;
			if (store_label_decode(rec.payload, rec.len, &lab, &diag) != VIGIL_OK) {
				fprintf(stderr, "vigil-replay: %s+%" PRIu64 ": label: %s\n", rec.segment,
				    rec.offset, diag.msg);
				src->bad++;
				continue;
			}
			HASH_FIND_STR(src->labels, lab.txn_id, l);
			if (l == NULL) {
				l = calloc(1, sizeof *l);
				if (l == NULL) {
					store_reader_close(rd);
					return VIGIL_ENOMEM;
				}
				snprintf(l->txn_id, sizeof l->txn_id, "%s", lab.txn_id);
				HASH_ADD_STR(src->labels, txn_id, l);
			}
			/* the latest verdict wins; its time is when the bank knew */
			l->fraud = lab.fraud;
			l->label_time = lab.label_time_ms ? lab.label_time_ms : lab.received_at_ms;
			src->has_labels = true;
		}
		store_reader_close(rd);
		if (rv != VIGIL_ENOTFOUND) {
			fprintf(stderr, "vigil-replay: %s: %s\n", dir, diag.msg);
			return rv;
		}
		src->scored = malloc(sizeof *src->scored);
		if (src->scored == NULL)
			return VIGIL_ENOMEM;
		rv = store_reader_open(dir, o->from_ms, o->to_ms, rp_on_corrupt, src, &src->ar, &diag);
		if (rv != VIGIL_OK) {
			fprintf(stderr, "vigil-replay: %s: %s\n", dir, diag.msg);
			return rv;
		}
	}
	return VIGIL_OK;
}

static void
rp_source_close(rp_source *src)
{
	rp_archlabel *l, *tmp;

	csv_reader_close(src->csv);
	store_reader_close(src->ar);
	free(src->scored);
	HASH_ITER(hh, src->labels, l, tmp) {
		HASH_DEL(src->labels, l);
		free(l);
	}
}

/* VIGIL_OK: a row; VIGIL_ENOTFOUND: end; other: fatal (message printed). */
static vigil_err
rp_source_next(rp_source *src, rp_row *row)
{
	vigil_err rv;

	if (src->csv != NULL) {
		csv_row cr;
		csv_diag diag;
		for (;;) {
			rv = csv_reader_next(src->csv, &cr, &diag);
			if (rv == VIGIL_EINVAL || rv == VIGIL_ETOOBIG) {
				if (src->bad++ < RP_MAX_ERRORS_SHOWN)
					fprintf(stderr, "vigil-replay: %s (row skipped)\n", diag.msg);
				continue;
			}
			if (rv == VIGIL_EIO)
				fprintf(stderr, "vigil-replay: %s\n", diag.msg);
			if (rv != VIGIL_OK)
				return rv;
			row->txn = cr.txn;
			row->line = cr.line;
			row->segment = NULL;
			row->label = cr.label;
			row->label_time = cr.label_time_ms;
			memcpy(row->pattern, cr.fraud_pattern, sizeof row->pattern);
			return VIGIL_OK;
		}
	}
	for (;;) {
		store_record rec;
		store_diag diag;
		rp_archlabel *l;

		rv = store_reader_next(src->ar, &rec, &diag);
		if (rv == VIGIL_ENOTFOUND)
			return rv;
		if (rv != VIGIL_OK) {
			fprintf(stderr, "vigil-replay: archive: %s\n", diag.msg);
			return rv;
		}
		if (rec.type != STORE_REC_SCORE)
			continue;
		if (store_scored_decode(rec.payload, rec.len, src->scored, &diag) != VIGIL_OK) {
			if (src->bad++ < RP_MAX_ERRORS_SHOWN)
				fprintf(stderr, "vigil-replay: %s+%" PRIu64 ": %s (record skipped)\n",
				    rec.segment, rec.offset, diag.msg);
			continue;
		}
		row->txn = src->scored->txn;
		row->line = 0;
		row->segment = rec.segment;
		row->offset = rec.offset;
		row->label = -1;
		row->label_time = 0;
		row->pattern[0] = '\0';
		HASH_FIND_STR(src->labels, row->txn.txn_id, l);
		if (l != NULL) {
			row->label = l->fraud ? 1 : 0;
			row->label_time = l->label_time;
		}
		return VIGIL_OK;
	}
}

/* ------------------------------ rule names ------------------------------ */

/* Rule index by name for server replies (hits come back as names). */
typedef struct rp_names {
	pthread_mutex_t mu;
	char           *names[METRICS_MAX_RULES];
	uint32_t        n;
} rp_names;

static int
rp_names_index(rp_names *t, const char *name)
{
	int idx = -1;

	pthread_mutex_lock(&t->mu);
	for (uint32_t i = 0; i < t->n; i++) {
		if (strcmp(t->names[i], name) == 0) {
			idx = (int)i;
			break;
		}
	}
	if (idx < 0 && t->n < METRICS_MAX_RULES) {
		t->names[t->n] = strdup(name);
		if (t->names[t->n] != NULL)
			idx = (int)t->n++;
	}
	pthread_mutex_unlock(&t->mu);
	return idx;
}

/* ------------------------------ the replay ------------------------------ */

typedef struct rp {
	rp_opts       o;
	rp_source     src;
	/* rules (offline always; server mode when --rules is given, for names) */
	rules_prog   *prog, *prog2;
	rules_tvals  *tv, *tv2;
	rp_names      names;
	/* offline engine: the one pipeline (app_score) over an in-memory or
	 * real data directory */
	store_db     *db;
	app_rules    *ar;     /* owns prog once the offline engine is open */
	app_model    *model;  /* the current generation's (--nightly), or NULL */
	uint64_t      model_gen;
	uint32_t      models_loaded; /* nights whose generation brought a model */
	json_t       *nights;        /* per nightly rebuild: the model's figures */
	char          first_model_day[16];
	app_work     *aw;
	char          workdir[PATH_MAX];
	bool          own_workdir;
	/* server engine */
	vigil_client *client;
	/* labels */
	rp_heap       labels;
	uint64_t      labels_sent;
	/* state */
	int64_t       day;          /* current UTC day number, INT64_MIN before the first row */
	uint32_t      nightly_runs;
	uint64_t      night_ns;     /* time spent in nightly rebuilds (not scoring) */
	uint64_t      last_generation;
	/* outputs */
	FILE         *results;
	metrics      *m, *m2;
	uint64_t      rows, failed, changed, trans[4][4];
	uint64_t      conflicts;    /* offline: rows refused, their txn_id reused (ECONFLICT) */
	uint64_t      t_start_ns;
	int64_t       first_event;
} rp;

static const char *
rp_rule_name(rp *r, uint16_t idx)
{
	if (r->prog != NULL && r->names.n == 0) {
		rules_rule_info info;
		rules_prog_rule(r->prog, idx, &info);
		return info.name;
	}
	return idx < r->names.n ? r->names.names[idx] : "?";
}

/* Writes one JSON line; names are rule identifiers and ids are validated
 * (no quote or backslash), so no escaping is needed beyond that guarantee. */
static void
rp_result_write(rp *r, const rp_row *row, const rp_outcome *out)
{
	FILE *f = r->results;

	fprintf(f, "{\"txn_id\":\"%s\",\"score\":%" PRId32 ",\"decision\":\"%s\",\"hits\":[",
	    row->txn.txn_id, out->score, vigil_decision_name(out->decision));
	for (uint32_t i = 0; i < out->nhits; i++)
		fprintf(f, "%s\"%s\"", i ? "," : "", rp_rule_name(r, out->hits[i]));
	fputc(']', f);
	if (out->nshadow > 0) {
		fputs(",\"shadow\":[", f);
		for (uint32_t i = 0; i < out->nshadow; i++)
			fprintf(f, "%s\"%s\"", i ? "," : "", rp_rule_name(r, out->hits[out->nhits + i]));
		fputc(']', f);
	}
	if (!isnan(out->model_score)) {
		/* the shape of vigild's /v1/score and vigil-score's "model" */
		fprintf(f, ",\"model\":{\"score\":%.9g,\"reasons\":[", out->model_score);
		for (uint32_t i = 0; i < out->nreasons; i++)
			fprintf(f, "%s{\"feature\":\"%s\",\"value\":%.9g,\"contribution\":%.6g}",
			    i ? "," : "", out->reasons[i].feature, out->reasons[i].value,
			    (double)out->reasons[i].contrib);
		fputs("]}", f);
	}
	fputs("}\n", f);
}

/* The model's score as the tie-break of equal scores (metrics_obs.rank_sub). */
static int32_t
rp_rank_sub(double model_score)
{
	double k;

	if (isnan(model_score))
		return -1;
	k = floor(model_score * 1024.0);
	return k < 0 ? 0 : k > 1023 ? 1023 : (int32_t)k;
}

static vigil_err
rp_observe(rp *r, const rp_row *row, const rp_outcome *out, const rp_outcome *out2)
{
	metrics_obs ob = {
		.card_id = row->txn.card_id,
		.event_time_ms = row->txn.event_time_ms,
		.score = out->score,
		.rank_sub = rp_rank_sub(out->model_score),
		.decision = out->decision,
		.label = row->label < 0 && r->o.assume_legit ? 0 : row->label,
		.pattern = row->pattern,
		.hits = out->hits,
		.nhits = out->nhits + out->nshadow,
		.latency_us = out->latency_us,
	};
	vigil_err rv;

	if (out->failed || out->refused)
		return VIGIL_OK;
	if (row->txn.event_time_ms < r->o.measure_from_ms) {
		if (r->results != NULL)
			rp_result_write(r, row, out);
		return VIGIL_OK;
	}
	rv = metrics_add(r->m, &ob);
	if (rv != VIGIL_OK)
		return rv;
	if (r->results != NULL)
		rp_result_write(r, row, out);
	if (out2 != NULL) {
		ob.score = out2->score;
		ob.decision = out2->decision;
		ob.hits = out2->hits;
		ob.nhits = out2->nhits + out2->nshadow;
		rv = metrics_add(r->m2, &ob);
		if (rv != VIGIL_OK)
			return rv;
		if (out->decision != out2->decision)
			r->changed++;
		r->trans[out->decision & 3][out2->decision & 3]++;
	}
	return VIGIL_OK;
}

/* Queues the row's label for when it becomes known. */
static vigil_err
rp_label_queue(rp *r, const rp_row *row)
{
	rp_label l;

	if (row->label < 0)
		return VIGIL_OK;
	if (row->label == 0 && r->o.fraud_labels_only)
		return VIGIL_OK;
	l.t = row->label_time && !r->o.force_label_delay ? row->label_time
	    : row->txn.event_time_ms + r->o.label_delay_ms;
	l.fraud = row->label == 1;
	memcpy(l.txn_id, row->txn.txn_id, sizeof l.txn_id);
	memcpy(l.card_id, row->txn.card_id, sizeof l.card_id);
	return rp_heap_push(&r->labels, &l);
}

static vigil_err
rp_label_send(rp *r, const rp_label *l)
{
	if (r->db != NULL) {
		store_label sl;
		store_diag diag;
		vigil_err rv;

		memset(&sl, 0, sizeof sl);
		memcpy(sl.txn_id, l->txn_id, sizeof sl.txn_id);
		memcpy(sl.card_id, l->card_id, sizeof sl.card_id);
		snprintf(sl.source, sizeof sl.source, "replay");
		sl.fraud = l->fraud;
		sl.label_time_ms = l->t;
		sl.received_at_ms = l->t;
		rv = store_label_record(r->db, &sl, &diag);
		if (rv != VIGIL_OK)
			fprintf(stderr, "vigil-replay: label %s: %s\n", l->txn_id, diag.msg);
		return rv;
	}
	if (r->client != NULL) {
		vigil_client_label_req req = {
			.txn_id = l->txn_id, .fraud = l->fraud, .label_time_ms = l->t,
			.source = "replay", .card_id = l->card_id,
		};
		vigil_client_errinfo info;
		vigil_client_err e = vigil_client_label(r->client, &req, NULL, &info);
		if (e != VIGIL_CLIENT_OK) {
			fprintf(stderr, "vigil-replay: label %s: %s\n", l->txn_id, info.message);
			return VIGIL_EIO;
		}
	}
	return VIGIL_OK;
}

typedef struct rp_label_job {
	rp             *r;
	const rp_label *v;
	size_t          n;
	uint32_t        id, nthreads;
	vigil_err       rv;
	pthread_t       th;
} rp_label_job;

static void *
rp_label_worker(void *arg)
{
	rp_label_job *j = arg;

	for (size_t i = j->id; i < j->n && j->rv == VIGIL_OK; i += j->nthreads)
		j->rv = rp_label_send(j->r, &j->v[i]);
	return NULL;
}

/* Sends every queued label whose time is <= t. Offline they go to the
 * archive in label-time order; to servers, labels being independent facts,
 * they are spread over the --concurrency senders. */
static vigil_err
rp_labels_due(rp *r, int64_t t)
{
	rp_label *due = NULL;
	size_t n = 0, cap = 0;
	vigil_err rv = VIGIL_OK;
	rp_label_job jobs[RP_MAX_CONCURRENCY];
	uint32_t nt;

	while (r->labels.n > 0 && r->labels.v[0].t <= t) {
		rp_label l;
		rp_heap_pop(&r->labels, &l);
		if (r->client == NULL || r->o.concurrency == 1) {
			rv = rp_label_send(r, &l);
			if (rv != VIGIL_OK)
				goto out;
			r->labels_sent++;
			continue;
		}
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 1024;
			rp_label *nd = realloc(due, nc * sizeof *nd);
			if (nd == NULL) {
				rv = VIGIL_ENOMEM;
				goto out;
			}
			due = nd;
			cap = nc;
		}
		due[n++] = l;
	}
	if (n == 0)
		goto out;
	nt = r->o.concurrency;
	for (uint32_t k = 0; k < nt; k++) {
		jobs[k] = (rp_label_job){ .r = r, .v = due, .n = n, .id = k, .nthreads = nt };
		if (pthread_create(&jobs[k].th, NULL, rp_label_worker, &jobs[k]) != 0) {
			nt = k;
			rv = VIGIL_ENOMEM;
			break;
		}
	}
	for (uint32_t k = 0; k < nt; k++) {
		pthread_join(jobs[k].th, NULL);
		if (rv == VIGIL_OK)
			rv = jobs[k].rv;
	}
	if (rv == VIGIL_OK)
		r->labels_sent += n;
out:
	free(due);
	return rv;
}

/* ---- offline engine ---- */

/*
 * The features offline scoring needs: the slots the rules read (each file's
 * conditions and the thresholds they use, with their group slots) and, with
 * --nightly, those archived for the rebuilds. The store computes only these
 * (the others stay missing, and no rule reads them), so the decisions are
 * those of vigild, which computes everything.
 */
static void
rp_feature_mask(const rp *r, store_feature_mask *ret_m)
{
	const rules_prog *progs[2] = { r->prog, r->prog2 };

	store_feature_mask_none(ret_m);
	for (int k = 0; k < 2; k++) {
		const uint32_t *slots;
		uint32_t n;

		if (progs[k] == NULL)
			continue;
		slots = rules_prog_slots_used(progs[k], &n);
		for (uint32_t i = 0; i < n; i++)
			store_feature_mask_set(ret_m, slots[i]);
	}
	for (uint32_t i = 0; i < r->ar->narch; i++)
		store_feature_mask_set(ret_m, r->ar->arch[i]);
	if (r->o.nightly) {
		/* the model's input vector is archived whole for the nightly
		 * training, and the model reads from it */
		const uint32_t *slots;
		uint32_t n = store_schema_model_inputs(&slots);

		for (uint32_t i = 0; i < n; i++)
			store_feature_mask_set(ret_m, slots[i]);
	}
}

static vigil_err
rp_offline_open(rp *r)
{
	store_db_opts dbo;
	store_feature_mask mask;
	store_diag diag;
	vigil_err rv;

	{
		char err[256];

		rv = app_rules_new(r->prog, &r->ar, err, sizeof err); /* takes prog */
		r->prog = NULL;
		if (rv != VIGIL_OK) {
			fprintf(stderr, "vigil-replay: %s: %s\n", r->o.rules, err);
			return rv;
		}
		r->prog = r->ar->prog;
	}
	rp_feature_mask(r, &mask);
	store_db_opts_default(&dbo);
	if (!r->o.nightly) {
		/* live state kept only for the entity kinds the rules read */
		dbo.features = mask;
		rv = store_db_new_memory(&dbo, &r->db);
		if (rv != VIGIL_OK) {
			fprintf(stderr, "vigil-replay: live state: %s\n", vigil_strerror(rv));
			return rv;
		}
	} else {
		/* a real data directory, as production has: archive + generations */
		const char *base = r->o.work;
		if (base == NULL) {
			const char *tmp = getenv("TMPDIR");
			snprintf(r->workdir, sizeof r->workdir, "%s/vigil-replay-XXXXXX",
			    tmp && *tmp ? tmp : "/tmp");
			if (mkdtemp(r->workdir) == NULL) {
				fprintf(stderr, "vigil-replay: %s: %s\n", r->workdir, strerror(errno));
				return VIGIL_EIO;
			}
			r->own_workdir = !r->o.keep_work;
		} else {
			struct stat st;
			snprintf(r->workdir, sizeof r->workdir, "%s", base);
			if (stat(base, &st) == 0) {
				char p[PATH_MAX];
				snprintf(p, sizeof p, "%s/archive", base);
				if (stat(p, &st) == 0) {
					fprintf(stderr, "vigil-replay: --work %s: already holds an archive; "
					    "use an empty or new directory\n", base);
					return VIGIL_EEXIST;
				}
			} else if (mkdir(base, 0755) != 0) {
				fprintf(stderr, "vigil-replay: --work %s: %s\n", base, strerror(errno));
				return VIGIL_EIO;
			}
		}
		dbo.archive.fsync = STORE_FSYNC_NEVER;
		rv = store_db_open(r->workdir, &dbo, &r->db, NULL, &diag);
		if (rv != VIGIL_OK) {
			fprintf(stderr, "vigil-replay: %s: %s\n", r->workdir, diag.msg);
			return rv;
		}
	}
	r->aw = app_work_new(r->db);
	if (r->aw == NULL)
		return VIGIL_ENOMEM;
	/* a data directory keeps every kind (it is vigild's); lookups need not */
	rv = app_work_set_features(r->aw, &mask);
	if (rv != VIGIL_OK) {
		fprintf(stderr, "vigil-replay: feature mask: %s\n", vigil_strerror(rv));
		return rv;
	}
	rv = app_tvals_from_db(r->prog, r->db, &r->tv);
	if (rv == VIGIL_OK && r->prog2 != NULL)
		rv = app_tvals_from_db(r->prog2, r->db, &r->tv2);
	return rv;
}

static void
rp_outcome_from_result(rp_outcome *out, const rules_result *res)
{
	uint32_t n = 0;

	out->score = res->score;
	out->decision = res->decision;
	for (uint32_t i = 0; i < res->nhits && n < RP_MAX_HITS; i++)
		out->hits[n++] = res->hits[i];
	out->nhits = n;
	for (uint32_t i = 0; i < res->nshadow && n < RP_MAX_HITS; i++)
		out->hits[n++] = res->shadow[i];
	out->nshadow = n - out->nhits;
	out->latency_us = 0;
	out->failed = false;
	out->refused = false;
	out->model_score = NAN;
	out->nreasons = 0;
}

static vigil_err
rp_offline_score(rp *r, const rp_row *row, rp_outcome *out, rp_outcome *out2)
{
	app_scorer sc = { .rules = r->ar, .tv = r->tv, .model = r->model, .prog2 = r->prog2,
		.tv2 = r->tv2 };
	static app_outcome ao; /* large; one replay per process */
	vigil_err rv;

	/* scored at its event time: the nightly rebuild sees what production would */
	rv = app_score(r->db, r->aw, &sc, &row->txn, r->o.nightly ? 0 : APP_NO_ARCHIVE,
	    row->txn.event_time_ms, &ao);
	if (rv == VIGIL_EEXIST) {
		/* a repeated txn_id: the first outcome, as the server answers */
		out->score = ao.prior.score;
		out->decision = ao.prior.decision;
		out->nhits = out->nshadow = 0;
		for (uint32_t i = 0; i < ao.prior.nhits && i < RP_MAX_HITS; i++) {
			uint32_t idx;
			if (rules_prog_rule_find(r->prog, ao.prior.hits[i].rule, &idx) != VIGIL_OK)
				continue;
			out->hits[out->nhits++] = (uint16_t)idx;
		}
		out->latency_us = 0;
		out->failed = false;
		out->refused = false;
		out->model_score = NAN;
		out->nreasons = 0;
		if (out2 != NULL)
			*out2 = *out;
		return VIGIL_OK;
	}
	if (rv == VIGIL_ECONFLICT) {
		/* vigild refuses it (INVALID on txn.txn_id): not scored, not
		 * recorded, not counted in the metrics, its label not sent */
		if (r->conflicts++ < RP_MAX_ERRORS_SHOWN) {
			char where[PATH_MAX + 48];

			if (row->segment != NULL)
				snprintf(where, sizeof where, "%s+%" PRIu64, row->segment, row->offset);
			else
				snprintf(where, sizeof where, "%s:%" PRIu64, r->src.name, row->line);
			fprintf(stderr, "vigil-replay: %s: txn_id \"%s\": already scored for a different "
			    "transaction (card, merchant, terminal, amount or currency differ); "
			    "refused, as vigild refuses it%s\n", where, row->txn.txn_id,
			    r->conflicts == RP_MAX_ERRORS_SHOWN ? " (further ones are only counted)" : "");
		}
		memset(out, 0, sizeof *out);
		out->refused = true;
		out->model_score = NAN;
		if (out2 != NULL)
			*out2 = *out;
		return VIGIL_OK;
	}
	if (rv != VIGIL_OK) {
		fprintf(stderr, "vigil-replay: %s: %s: %s\n", row->txn.txn_id,
		    ao.step == APP_STEP_ARCHIVE ? "commit" : ao.step == APP_STEP_RULES ? "rules" :
		    "features", ao.diag.msg[0] ? ao.diag.msg : vigil_strerror(rv));
		return rv;
	}
	rp_outcome_from_result(out, ao.res);
	out->model_score = ao.model_score;
	out->nreasons = ao.nreasons;
	for (uint32_t i = 0; i < ao.nreasons; i++) {
		out->reasons[i].feature = ao.reasons[i].feature;
		out->reasons[i].value = ao.reasons[i].value.num;
		out->reasons[i].contrib = ao.reasons[i].contrib;
	}
	if (out2 != NULL) {
		rp_outcome_from_result(out2, ao.res2);
		out2->model_score = ao.model_score;
	}
	return VIGIL_OK;
}

/* One line of the JSON summary's "nights": the model each rebuild made. */
static void
rp_night_record(rp *r, const batch_summary *sum)
{
	json_t *n = json_object();
	char d[16];

	if (r->nights == NULL)
		r->nights = json_array();
	if (n == NULL || r->nights == NULL) {
		json_decref(n);
		return;
	}
	vigil_date_format(sum->as_of_ms, d, sizeof d);
	json_object_set_new(n, "as_of", json_string(d));
	json_object_set_new(n, "generation", json_integer((json_int_t)sum->generation));
	json_object_set_new(n, "records", json_integer((json_int_t)sum->records_read));
	json_object_set_new(n, "model_trained", json_boolean(sum->model.trained));
	if (sum->model.trained) {
		json_object_set_new(n, "model_rows", json_integer((json_int_t)sum->model.rows));
		json_object_set_new(n, "model_frauds", json_integer((json_int_t)sum->model.frauds));
		json_object_set_new(n, "valid_auc", json_real(sum->model.valid_auc));
		json_object_set_new(n, "valid_ap", json_real(sum->model.valid_ap));
		json_object_set_new(n, "rounds", json_integer(sum->model.best_round));
		json_object_set_new(n, "train_seconds", json_real(sum->model.seconds));
		if (r->first_model_day[0] == '\0')
			snprintf(r->first_model_day, sizeof r->first_model_day, "%s", d);
	} else {
		json_object_set_new(n, "why_not", json_string(sum->model.why_not));
	}
	json_array_append_new(r->nights, n);
}

/* The night before `day`: labels known by midnight, rebuild, switch. */
static vigil_err
rp_offline_night(rp *r, int64_t day)
{
	batch_opts bo;
	batch_summary *sum = NULL;
	store_diag diag;
	rules_tvals *tv = NULL, *tv2 = NULL;
	bool changed = false;
	vigil_err rv;

	uint64_t t0 = vigil_mono_ns();

	rv = rp_labels_due(r, day * VIGIL_MS_PER_DAY);
	if (rv != VIGIL_OK)
		return rv;
	sum = malloc(sizeof *sum);
	if (sum == NULL)
		return VIGIL_ENOMEM;
	batch_opts_default(&bo);
	bo.datadir = r->workdir;
	bo.as_of_ms = day * VIGIL_MS_PER_DAY;
	bo.rules_path = r->o.rules;
	bo.threads = 1;
	bo.model_off = r->o.no_model;
	rv = batch_rebuild(&bo, sum, &diag);
	if (rv != VIGIL_OK) {
		char d[16];
		vigil_date_format(day * VIGIL_MS_PER_DAY, d, sizeof d);
		fprintf(stderr, "vigil-replay: nightly rebuild as of %s: %s\n", d, diag.msg);
		goto out;
	}
	r->nightly_runs++;
	rp_night_record(r, sum);
	rv = store_db_refresh(r->db, &changed, &diag);
	if (rv != VIGIL_OK) {
		fprintf(stderr, "vigil-replay: switching generation: %s\n", diag.msg);
		goto out;
	}
	rv = app_tvals_from_db(r->prog, r->db, &tv);
	if (rv == VIGIL_OK && r->prog2 != NULL)
		rv = app_tvals_from_db(r->prog2, r->db, &tv2);
	if (rv != VIGIL_OK) {
		rules_tvals_free(tv);
		fprintf(stderr, "vigil-replay: thresholds: %s\n", vigil_strerror(rv));
		goto out;
	}
	rules_tvals_free(r->tv);
	rules_tvals_free(r->tv2);
	r->tv = tv;
	r->tv2 = tv2;
	if (store_db_generation(r->db) != r->model_gen) {
		/* the generation's model, as vigild switches to it; a refused one
		 * leaves the previous model serving */
		app_model *m = NULL;
		char err[512];

		if (app_model_from_db(r->db, &m, NULL, err, sizeof err) != VIGIL_OK) {
			fprintf(stderr, "vigil-replay: model: %s; the previous model keeps serving\n",
			    err);
		} else {
			app_model_free(r->model);
			r->model = m;
			if (m != NULL)
				r->models_loaded++;
		}
		r->model_gen = store_db_generation(r->db);
	}
out:
	free(sum);
	r->night_ns += vigil_mono_ns() - t0;
	return rv;
}

/* ---- server engine ---- */

typedef struct rp_batch {
	rp           *r;
	rp_row       *rows;
	rp_outcome   *outs;
	uint32_t     *part;
	size_t        n;
	uint64_t      first_index;  /* global index of rows[0] (for --rate) */
	uint64_t      t0_ns;        /* pacing origin */
	uint64_t      errors;
	atomic_uint_fast64_t consecutive; /* failures in a row, all senders */
	atomic_bool   give_up;
	pthread_mutex_t mu;
} rp_batch;

/* A run of failures this long means the servers are gone: stop, do not
 * time out row by row for hours. */
#define RP_GIVE_UP_AFTER 50

typedef struct rp_worker {
	rp_batch *b;
	uint32_t  id;
	pthread_t th;
} rp_worker;

static void
rp_sleep_until(uint64_t t_ns)
{
	uint64_t now = vigil_mono_ns();

	if (t_ns > now) {
		struct timespec ts = { (time_t)((t_ns - now) / 1000000000u),
			(long)((t_ns - now) % 1000000000u) };
		nanosleep(&ts, NULL);
	}
}

static void
rp_txn_to_client(const vigil_txn *t, vigil_client_txn *c)
{
	memset(c, 0, sizeof *c);
	c->txn_id = t->txn_id;
	c->card_id = t->card_id;
	c->merchant_id = t->merchant_id;
	c->terminal_id = t->terminal_id;
	c->currency = t->currency;
	c->country = t->country;
	c->device_id = t->device_id;
	c->ip = t->ip;
	c->event_time_ms = t->event_time_ms;
	c->amount_minor = t->amount_minor;
	c->mcc = t->mcc;
	c->channel = (vigil_client_channel)t->channel;
	c->has_location = t->has_location;
	c->latitude = t->lat;
	c->longitude = t->lon;
}

static void *
rp_worker_main(void *arg)
{
	rp_worker *w = arg;
	rp_batch *b = w->b;
	rp *r = b->r;

	for (size_t i = 0; i < b->n; i++) {
		vigil_client_txn ct;
		vigil_client_result res;
		vigil_client_errinfo info;
		vigil_client_err e;
		rp_outcome *out = &b->outs[i];
		uint64_t t1;

		if (b->part[i] != w->id)
			continue;
		if (atomic_load(&b->give_up)) {
			out->failed = true;
			out->refused = false;
			continue;
		}
		if (r->o.rate > 0)
			rp_sleep_until(b->t0_ns + (uint64_t)((double)(b->first_index + i) * 1e9 / r->o.rate));
		else if (r->o.speed > 0)
			rp_sleep_until(b->t0_ns + (uint64_t)((double)(b->rows[i].txn.event_time_ms -
			    r->first_event) * 1e6 / r->o.speed));
		rp_txn_to_client(&b->rows[i].txn, &ct);
		memset(&res, 0, sizeof res);
		t1 = vigil_mono_ns();
		e = vigil_client_score(r->client, &ct, NULL, &res, &info);
		if (e != VIGIL_CLIENT_OK) {
			out->failed = true;
			out->refused = false;
			pthread_mutex_lock(&b->mu);
			if (b->errors++ < RP_MAX_ERRORS_SHOWN)
				fprintf(stderr, "vigil-replay: %s: %s%s%s\n", ct.txn_id, info.message,
				    info.field[0] ? " field " : "", info.field);
			if (!atomic_load(&b->give_up) && e != VIGIL_CLIENT_SINVALID) {
				bool any = false;
				for (size_t k = 0; k < vigil_client_nreplicas(r->client); k++)
					any |= vigil_client_replica_connected(r->client, k);
				if (!any) {
					atomic_store(&b->give_up, true);
					fprintf(stderr, "vigil-replay: no server is connected any more: "
					    "giving up\n");
				} else if (atomic_fetch_add(&b->consecutive, 1) + 1 >= RP_GIVE_UP_AFTER) {
					atomic_store(&b->give_up, true);
					fprintf(stderr, "vigil-replay: %d failures in a row: giving up\n",
					    RP_GIVE_UP_AFTER);
				}
			}
			pthread_mutex_unlock(&b->mu);
			continue;
		}
		if (atomic_load(&b->consecutive) != 0)
			atomic_store(&b->consecutive, 0);
		out->latency_us = (uint32_t)((vigil_mono_ns() - t1) / 1000u);
		if (out->latency_us == 0)
			out->latency_us = 1;
		out->score = res.score;
		out->decision = (vigil_decision)res.decision;
		out->generation = res.features_generation;
		out->model_score = NAN; /* not on the wire yet */
		out->nreasons = 0;
		out->nhits = out->nshadow = 0;
		for (size_t h = 0; h < res.nhits && out->nhits + out->nshadow < RP_MAX_HITS; h++) {
			int idx = rp_names_index(&r->names, res.hits[h].rule);
			if (idx < 0)
				continue;
			out->hits[out->nhits + out->nshadow] = (uint16_t)idx;
			if (res.hits[h].shadow)
				out->nshadow++;
			else
				out->nhits++;
		}
		out->failed = false;
		out->refused = false;
		vigil_client_result_fini(&res);
	}
	return NULL;
}

static vigil_err
rp_server_batch(rp *r, rp_batch *b)
{
	rp_worker w[RP_MAX_CONCURRENCY];
	uint32_t n = r->o.concurrency;

	for (size_t i = 0; i < b->n; i++)
		b->part[i] = n == 1 ? 0 : (uint32_t)(XXH3_64bits(b->rows[i].txn.card_id,
		    strlen(b->rows[i].txn.card_id)) % n);
	for (uint32_t k = 0; k < n; k++) {
		w[k].b = b;
		w[k].id = k;
		if (pthread_create(&w[k].th, NULL, rp_worker_main, &w[k]) != 0) {
			for (uint32_t j = 0; j < k; j++)
				pthread_join(w[j].th, NULL);
			fprintf(stderr, "vigil-replay: cannot start worker threads\n");
			return VIGIL_ENOMEM;
		}
	}
	for (uint32_t k = 0; k < n; k++)
		pthread_join(w[k].th, NULL);
	return VIGIL_OK;
}

static const char *
rp_find_rebuild(const rp_opts *o, char *buf, size_t len)
{
	char self[PATH_MAX];
	ssize_t n;

	if (o->rebuild != NULL)
		return o->rebuild;
	n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n > 0) {
		char *slash;
		self[n] = '\0';
		slash = strrchr(self, '/');
		if (slash != NULL) {
			*slash = '\0';
			/* the build tree, then installed side by side */
			if (snprintf(buf, len, "%s/../../batch/vigil-rebuild", self) < (int)len &&
			    access(buf, X_OK) == 0)
				return buf;
			if (snprintf(buf, len, "%s/vigil-rebuild", self) < (int)len &&
			    access(buf, X_OK) == 0)
				return buf;
		}
	}
	return "vigil-rebuild"; /* PATH */
}

/* Server mode night: labels, vigil-rebuild, wait until the server reads it. */
static vigil_err
rp_server_night(rp *r, int64_t day, const rp_row *probe)
{
	char date[16], rb[PATH_MAX];
	const char *prog = rp_find_rebuild(&r->o, rb, sizeof rb);
	const char *argv[12];
	int argc = 0, st;
	pid_t pid;
	vigil_err rv;
	uint64_t t0 = vigil_mono_ns();

	rv = rp_labels_due(r, day * VIGIL_MS_PER_DAY);
	if (rv != VIGIL_OK)
		return rv;
	vigil_date_format(day * VIGIL_MS_PER_DAY, date, sizeof date);
	argv[argc++] = prog;
	argv[argc++] = "--data";
	argv[argc++] = r->o.data;
	argv[argc++] = "--as-of";
	argv[argc++] = date;
	if (r->o.rules != NULL) {
		argv[argc++] = "--rules";
		argv[argc++] = r->o.rules;
	}
	argv[argc++] = "--quiet";
	argv[argc] = NULL;
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		execvp(prog, (char *const *)argv);
		fprintf(stderr, "vigil-replay: %s: %s\n", prog, strerror(errno));
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &st, 0) != pid) {
		fprintf(stderr, "vigil-replay: cannot run %s: %s\n", prog, strerror(errno));
		return VIGIL_EIO;
	}
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "vigil-replay: %s --as-of %s failed (status %d)\n", prog, date,
		    WIFEXITED(st) ? WEXITSTATUS(st) : -1);
		return VIGIL_EIO;
	}
	r->nightly_runs++;
	/* the server switches generation on its own timer: probe with dry runs */
	if (probe != NULL) {
		vigil_client_txn ct;
		vigil_client_callopts co = { .dry_run = true };
		uint64_t deadline = vigil_mono_ns() + 10000000000ull;
		rp_txn_to_client(&probe->txn, &ct);
		for (;;) {
			vigil_client_result res;
			vigil_client_errinfo info;
			uint64_t g = 0;
			memset(&res, 0, sizeof res);
			if (vigil_client_score(r->client, &ct, &co, &res, &info) == VIGIL_CLIENT_OK) {
				g = res.features_generation;
				vigil_client_result_fini(&res);
			}
			if (g > r->last_generation) {
				r->last_generation = g;
				break;
			}
			if (vigil_mono_ns() > deadline) {
				fprintf(stderr, "vigil-replay: warning: the server did not switch to the "
				    "generation built as of %s within 10 s\n", date);
				break;
			}
			rp_sleep_until(vigil_mono_ns() + 50000000u);
		}
	}
	r->night_ns += vigil_mono_ns() - t0;
	return VIGIL_OK;
}

/* ---- driver ---- */

static void
rp_progress(rp *r, const rp_row *row, bool final)
{
	double secs = (double)(vigil_mono_ns() - r->t_start_ns) / 1e9;
	char d[16] = "";

	if (!r->o.progress)
		return;
	if (row != NULL)
		vigil_date_format(row->txn.event_time_ms, d, sizeof d);
	fprintf(stderr, "\rvigil-replay: %" PRIu64 " rows, day %s, %.0f rows/s, %" PRIu32
	    " rebuilds   ", r->rows, d, secs > 0 ? (double)r->rows / secs : 0.0, r->nightly_runs);
	if (final)
		fputc('\n', stderr);
}

static vigil_err
rp_run_offline(rp *r)
{
	rp_row row;
	rp_outcome out, out2;
	vigil_err rv;

	while ((rv = rp_source_next(&r->src, &row)) == VIGIL_OK) {
		int64_t day = row.txn.event_time_ms / VIGIL_MS_PER_DAY;
		if (r->o.nightly) {
			if (day > r->day && r->day != INT64_MIN) {
				rv = rp_offline_night(r, day);
				if (rv != VIGIL_OK)
					return rv;
			}
			rv = rp_labels_due(r, row.txn.event_time_ms);
			if (rv != VIGIL_OK)
				return rv;
		}
		if (day > r->day)
			r->day = day;
		/* the card's metrics slot loads while the row is scored */
		metrics_prefetch(r->m, row.txn.card_id);
		metrics_prefetch(r->m2, row.txn.card_id);
		rv = rp_offline_score(r, &row, &out, r->prog2 ? &out2 : NULL);
		if (rv != VIGIL_OK)
			return rv;
		rp_heap_populate();
		rv = rp_observe(r, &row, &out, r->prog2 ? &out2 : NULL);
		if (rv != VIGIL_OK) {
			fprintf(stderr, "vigil-replay: metrics: %s\n", vigil_strerror(rv));
			return rv;
		}
		if (r->o.nightly && !out.refused) {
			rv = rp_label_queue(r, &row);
			if (rv != VIGIL_OK)
				return rv;
		}
		if ((++r->rows & 0xFFFF) == 0)
			rp_progress(r, &row, false);
	}
	return rv == VIGIL_ENOTFOUND ? VIGIL_OK : rv;
}

static vigil_err
rp_run_server(rp *r)
{
	rp_batch b;
	rp_row pending;
	bool have_pending = false, eof = false;
	vigil_err rv = VIGIL_OK;
	uint64_t index = 0;

	memset(&b, 0, sizeof b);
	b.r = r;
	b.rows = malloc(RP_BATCH * sizeof *b.rows);
	b.outs = malloc(RP_BATCH * sizeof *b.outs);
	b.part = malloc(RP_BATCH * sizeof *b.part);
	pthread_mutex_init(&b.mu, NULL);
	if (b.rows == NULL || b.outs == NULL || b.part == NULL) {
		rv = VIGIL_ENOMEM;
		goto out;
	}
	b.t0_ns = vigil_mono_ns();
	while (!eof) {
		int64_t batch_day = INT64_MIN;
		b.n = 0;
		b.first_index = index;
		/* fill a batch; it ends at a UTC day boundary when --nightly */
		while (b.n < RP_BATCH) {
			rp_row *row = &b.rows[b.n];
			int64_t day;
			if (have_pending) {
				*row = pending;
				have_pending = false;
			} else {
				rv = rp_source_next(&r->src, row);
				if (rv == VIGIL_ENOTFOUND) {
					rv = VIGIL_OK;
					eof = true;
					break;
				}
				if (rv != VIGIL_OK)
					goto out;
			}
			if (r->first_event == INT64_MIN)
				r->first_event = row->txn.event_time_ms;
			day = row->txn.event_time_ms / VIGIL_MS_PER_DAY;
			if (r->o.nightly && r->day != INT64_MIN && day > r->day) {
				if (b.n > 0) {
					pending = *row;
					have_pending = true;
					break;
				}
				rv = rp_server_night(r, day, row);
				if (rv != VIGIL_OK)
					goto out;
			}
			if (day > r->day)
				r->day = day;
			if (batch_day == INT64_MIN)
				batch_day = day;
			b.n++;
		}
		if (b.n == 0)
			break;
		rv = rp_labels_due(r, b.rows[0].txn.event_time_ms);
		if (rv != VIGIL_OK)
			goto out;
		rv = rp_server_batch(r, &b);
		if (rv != VIGIL_OK)
			goto out;
		if (atomic_load(&b.give_up)) {
			rv = VIGIL_ECLOSED;
			goto out;
		}
		for (size_t i = 0; i < b.n; i++) {
			rv = rp_observe(r, &b.rows[i], &b.outs[i], NULL);
			if (rv != VIGIL_OK)
				goto out;
			rv = rp_label_queue(r, &b.rows[i]);
			if (rv != VIGIL_OK)
				goto out;
		}
		r->rows += b.n;
		index += b.n;
		rp_progress(r, &b.rows[b.n - 1], false);
	}
	/* labels still pending belong to the future of the replay: send them, so
	 * the server's archive ends up with every known label */
	rv = rp_labels_due(r, INT64_MAX);
out:
	r->failed = b.errors;
	pthread_mutex_destroy(&b.mu);
	free(b.rows);
	free(b.outs);
	free(b.part);
	return rv;
}

/* ------------------------------ summary ------------------------------ */

static json_t *
rp_summary_json(rp *r, double secs)
{
	json_t *o = json_object();
	static const char *const dn[4] = { "none", "allow", "review", "decline" };

	json_object_set_new(o, "input", json_string(r->src.name));
	json_object_set_new(o, "rules", r->o.rules ? json_string(r->o.rules) : json_null());
	json_object_set_new(o, "mode", json_string(r->o.nservers ? "server" : "offline"));
	json_object_set_new(o, "rows", json_integer((json_int_t)r->rows));
	json_object_set_new(o, "bad_rows", json_integer((json_int_t)r->src.bad));
	json_object_set_new(o, "failed", json_integer((json_int_t)r->failed));
	json_object_set_new(o, "txn_id_conflicts", json_integer((json_int_t)r->conflicts));
	double rb = (double)r->night_ns / 1e9;

	json_object_set_new(o, "seconds", json_real(secs));
	json_object_set_new(o, "rebuild_seconds", json_real(rb));
	json_object_set_new(o, "throughput", json_real(secs - rb > 0 ? (double)r->rows / (secs - rb) : 0));
	json_object_set_new(o, "nightly_rebuilds", json_integer(r->nightly_runs));
	if (r->nights != NULL) {
		json_object_set_new(o, "first_model", r->first_model_day[0] ?
		    json_string(r->first_model_day) : json_null());
		json_object_set_new(o, "nights", json_incref(r->nights));
	}
	if (r->o.measure_from_ms != INT64_MIN) {
		char d[40];

		vigil_date_format(r->o.measure_from_ms, d, sizeof d);
		json_object_set_new(o, "measure_from", json_string(d));
	}
	json_object_set_new(o, "labels_sent", json_integer((json_int_t)r->labels_sent));
	json_object_set_new(o, "metrics", metrics_to_json(r->m));
	if (r->m2 != NULL) {
		json_t *c = json_object(), *t = json_object();
		for (int a = 1; a < 4; a++)
			for (int b = 1; b < 4; b++)
				if (a != b) {
					char k[32];
					snprintf(k, sizeof k, "%s->%s", dn[a], dn[b]);
					json_object_set_new(t, k, json_integer((json_int_t)r->trans[a][b]));
				}
		json_object_set_new(c, "rules", json_string(r->o.compare));
		json_object_set_new(c, "changed", json_integer((json_int_t)r->changed));
		json_object_set_new(c, "transitions", t);
		json_object_set_new(c, "metrics", metrics_to_json(r->m2));
		json_object_set_new(o, "compare", c);
	}
	return o;
}

static void
rp_print_compare(rp *r, FILE *out)
{
	static const char *const dn[4] = { "none", "allow", "review", "decline" };
	metrics_confusion a, b;

	metrics_get_confusion(r->m, &a);
	metrics_get_confusion(r->m2, &b);
	fprintf(out, "\ncompare       %s\n", r->o.compare);
	fprintf(out, "  decisions changed: %" PRIu64 " of %" PRIu64 "\n", r->changed, r->rows);
	for (int x = 1; x < 4; x++)
		for (int y = 1; y < 4; y++)
			if (x != y && r->trans[x][y] > 0)
				fprintf(out, "    %-8s -> %-8s %10" PRIu64 "\n", dn[x], dn[y], r->trans[x][y]);
	fprintf(out, "  precision %.2f%% -> %.2f%%   recall %.2f%% -> %.2f%%   alert rate %.3f%% -> %.3f%%\n",
	    100 * a.precision, 100 * b.precision, 100 * a.recall, 100 * b.recall,
	    100 * a.alert_rate, 100 * b.alert_rate);
	fprintf(out, "  ROC AUC %.4f -> %.4f   average precision %.4f -> %.4f\n",
	    metrics_auc(r->m, NULL), metrics_auc(r->m2, NULL), metrics_ap(r->m, NULL),
	    metrics_ap(r->m2, NULL));
}

/* ------------------------------ main ------------------------------ */

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: vigil-replay (--csv FILE | --archive DATADIR [--from T] [--to T]) [OPTIONS]\n"
	    "Replays historical transactions through a rule file and reports what it\n"
	    "would have decided (docs/vigil-replay.md).\n"
	    "\n"
	    "Input:\n"
	    "  --csv FILE           vigil CSV (docs/csv.md); \"-\" = standard input\n"
	    "  --archive DATADIR    the archive of a vigild data directory\n"
	    "  --from T, --to T     archive event-time range [from, to): YYYY-MM-DD or RFC 3339\n"
	    "Offline mode (default):\n"
	    "  --rules FILE         rule file (default rules/default.rules)\n"
	    "  --compare FILE       also evaluate FILE on the same stream and compare\n"
	    "  --nightly            rebuild batch features at each UTC midnight (needs labels\n"
	    "                       in the input to matter); uses a temporary data directory\n"
	    "  --work DIR           data directory for --nightly (kept; must be new or empty)\n"
	    "  --keep-work          keep the temporary data directory\n"
	    "Server mode:\n"
	    "  --server URL         send to vigild at URL (repeatable: replicas)\n"
	    "  --rate N             N transactions per second in total\n"
	    "  --speed X            X times the original pace of the event times\n"
	    "                       (neither: as fast as possible)\n"
	    "  --concurrency N      parallel senders, each card on one sender (default 1;\n"
	    "                       exact agreement with offline mode needs 1)\n"
	    "  --nightly            run vigil-rebuild --data DIR --as-of DAY between days\n"
	    "  --data DIR           the server's data directory (for --nightly)\n"
	    "  --rebuild PROGRAM    vigil-rebuild to run (default: from the build tree or PATH)\n"
	    "Labels:\n"
	    "  --label-delay DUR    when a label is known if its row has no label_time\n"
	    "                       (default 7d; e.g. 36h, 30m)\n"
	    "  --force-label-delay  use --label-delay for every row, ignoring label_time\n"
	    "  --fraud-labels-only  send only fraud (1) labels, not legit (0) ones; thresholds\n"
	    "                       tuned for precision then see no false positives\n"
	    "  --assume-legit       count rows without a label as legitimate in the measures\n"
	    "                       (the usual convention for archives: no chargeback = legit)\n"
	    "Output:\n"
	    "  --results FILE       JSON lines: txn_id, score, decision, hits\n"
	    "  --json FILE          the summary as JSON (\"-\" = standard output)\n"
	    "  --report FILE.html   self-contained HTML report with plots\n"
	    "  --top-k N            cards per day for card precision (default 100)\n"
	    "  --measure-from T     measure only rows from T on (all are scored; e.g. the\n"
	    "                       days after the first model): YYYY-MM-DD or RFC 3339\n"
	    "Model (offline --nightly):\n"
	    "  --no-model           the nightly rebuilds train no model: rules alone\n"
	    "  -q, --quiet          no progress, no summary on standard output\n"
	    "  -h, --help, -V, --version\n"
	    "\n"
	    "Exit status: 0 success; 1 failure (I/O, rule file, server errors);\n"
	    "2 usage error.\n");
}

static int
usage_error(const char *msg, const char *arg)
{
	fprintf(stderr, "vigil-replay: %s%s%s%s\n", msg, arg ? " \"" : "", arg ? arg : "",
	    arg ? "\"" : "");
	return 2;
}

static bool
rp_parse_time(const char *s, int64_t *ret)
{
	return vigil_date_parse(s, ret) == VIGIL_OK || vigil_time_parse_rfc3339(s, ret) == VIGIL_OK;
}

enum {
	OPT_CSV = 256, OPT_ARCHIVE, OPT_FROM, OPT_TO, OPT_RULES, OPT_COMPARE, OPT_NIGHTLY,
	OPT_WORK, OPT_KEEP, OPT_SERVER, OPT_RATE, OPT_SPEED, OPT_CONC, OPT_DATA, OPT_REBUILD,
	OPT_DELAY, OPT_FORCE_DELAY, OPT_LEGIT, OPT_ASSUME_LEGIT, OPT_RESULTS, OPT_JSON, OPT_REPORT, OPT_TOPK,
	OPT_NO_MODEL, OPT_MEASURE_FROM,
};

static int
rp_parse_args(int argc, char **argv, rp_opts *o)
{
	static const struct option longopts[] = {
		{ "csv", required_argument, NULL, OPT_CSV },
		{ "archive", required_argument, NULL, OPT_ARCHIVE },
		{ "from", required_argument, NULL, OPT_FROM },
		{ "to", required_argument, NULL, OPT_TO },
		{ "rules", required_argument, NULL, OPT_RULES },
		{ "compare", required_argument, NULL, OPT_COMPARE },
		{ "nightly", no_argument, NULL, OPT_NIGHTLY },
		{ "work", required_argument, NULL, OPT_WORK },
		{ "keep-work", no_argument, NULL, OPT_KEEP },
		{ "server", required_argument, NULL, OPT_SERVER },
		{ "rate", required_argument, NULL, OPT_RATE },
		{ "speed", required_argument, NULL, OPT_SPEED },
		{ "concurrency", required_argument, NULL, OPT_CONC },
		{ "data", required_argument, NULL, OPT_DATA },
		{ "rebuild", required_argument, NULL, OPT_REBUILD },
		{ "label-delay", required_argument, NULL, OPT_DELAY },
		{ "fraud-labels-only", no_argument, NULL, OPT_LEGIT },
		{ "force-label-delay", no_argument, NULL, OPT_FORCE_DELAY },
		{ "assume-legit", no_argument, NULL, OPT_ASSUME_LEGIT },
		{ "results", required_argument, NULL, OPT_RESULTS },
		{ "json", required_argument, NULL, OPT_JSON },
		{ "report", required_argument, NULL, OPT_REPORT },
		{ "top-k", required_argument, NULL, OPT_TOPK },
		{ "no-model", no_argument, NULL, OPT_NO_MODEL },
		{ "measure-from", required_argument, NULL, OPT_MEASURE_FROM },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int opt;
	char *end;

	o->from_ms = INT64_MIN;
	o->to_ms = INT64_MAX;
	o->measure_from_ms = INT64_MIN;
	o->concurrency = 1;
	o->label_delay_ms = 7 * VIGIL_MS_PER_DAY;
	o->topk = 100;
	while ((opt = getopt_long(argc, argv, "qhV", longopts, NULL)) != -1) {
		switch (opt) {
		case OPT_CSV: o->csv = optarg; break;
		case OPT_ARCHIVE: o->archive = optarg; break;
		case OPT_FROM:
			if (!rp_parse_time(optarg, &o->from_ms))
				return usage_error("--from: not YYYY-MM-DD or RFC 3339:", optarg);
			break;
		case OPT_TO:
			if (!rp_parse_time(optarg, &o->to_ms))
				return usage_error("--to: not YYYY-MM-DD or RFC 3339:", optarg);
			break;
		case OPT_RULES: o->rules = optarg; break;
		case OPT_COMPARE: o->compare = optarg; break;
		case OPT_NIGHTLY: o->nightly = true; break;
		case OPT_WORK: o->work = optarg; break;
		case OPT_KEEP: o->keep_work = true; break;
		case OPT_SERVER:
			if (o->nservers == RP_MAX_SERVERS)
				return usage_error("--server: at most 64 replicas", NULL);
			o->servers[o->nservers++] = optarg;
			break;
		case OPT_RATE:
			errno = 0;
			o->rate = strtod(optarg, &end);
			if (*end != '\0' || errno != 0 || !(o->rate > 0 && o->rate <= 1e8))
				return usage_error("--rate: not a number in (0, 1e8]:", optarg);
			break;
		case OPT_SPEED:
			errno = 0;
			o->speed = strtod(optarg, &end);
			if (*end != '\0' || errno != 0 || !(o->speed > 0 && o->speed <= 1e9))
				return usage_error("--speed: not a number in (0, 1e9]:", optarg);
			break;
		case OPT_CONC: {
			unsigned long v;
			errno = 0;
			v = strtoul(optarg, &end, 10);
			if (*optarg == '-' || *end != '\0' || errno != 0 || v < 1 || v > RP_MAX_CONCURRENCY)
				return usage_error("--concurrency: not an integer in 1..256:", optarg);
			o->concurrency = (uint32_t)v;
			break;
		}
		case OPT_DATA: o->data = optarg; break;
		case OPT_REBUILD: o->rebuild = optarg; break;
		case OPT_DELAY:
			if (batch_duration_parse(optarg, &o->label_delay_ms) != VIGIL_OK)
				return usage_error("--label-delay: not a duration such as 7d, 36h, 30m:",
				    optarg);
			break;
		case OPT_LEGIT: o->fraud_labels_only = true; break;
		case OPT_FORCE_DELAY: o->force_label_delay = true; break;
		case OPT_ASSUME_LEGIT: o->assume_legit = true; break;
		case OPT_NO_MODEL: o->no_model = true; break;
		case OPT_MEASURE_FROM:
			if (!rp_parse_time(optarg, &o->measure_from_ms))
				return usage_error("--measure-from: not YYYY-MM-DD or RFC 3339:", optarg);
			break;
		case OPT_RESULTS: o->results = optarg; break;
		case OPT_JSON: o->json = optarg; break;
		case OPT_REPORT: o->report = optarg; break;
		case OPT_TOPK: {
			unsigned long v;
			errno = 0;
			v = strtoul(optarg, &end, 10);
			if (*optarg == '-' || *end != '\0' || errno != 0 || v < 1 || v > 1000000)
				return usage_error("--top-k: not an integer in 1..1000000:", optarg);
			o->topk = (uint32_t)v;
			break;
		}
		case 'q': o->quiet = true; break;
		case 'h': usage(stdout); exit(0);
		case 'V': printf("vigil-replay %s\n", VIGIL_VERSION); exit(0);
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc)
		return usage_error("unexpected argument (see --help):", argv[optind]);
	if ((o->csv == NULL) == (o->archive == NULL))
		return usage_error("give exactly one of --csv FILE or --archive DATADIR", NULL);
	if ((o->from_ms != INT64_MIN || o->to_ms != INT64_MAX) && o->archive == NULL)
		return usage_error("--from/--to go with --archive", NULL);
	if (o->rate > 0 && o->speed > 0)
		return usage_error("--rate and --speed exclude each other", NULL);
	if (o->nservers == 0 && (o->rate > 0 || o->speed > 0 || o->concurrency != 1 ||
	    o->data != NULL || o->rebuild != NULL))
		return usage_error("--rate, --speed, --concurrency, --data and --rebuild need --server",
		    NULL);
	if (o->nservers > 0 && o->compare != NULL)
		return usage_error("--compare works in offline mode only (no --server)", NULL);
	if (o->nservers > 0 && (o->work != NULL || o->keep_work))
		return usage_error("--work and --keep-work are for offline --nightly", NULL);
	if (o->nservers > 0 && o->nightly && o->data == NULL)
		return usage_error("--nightly in server mode needs --data DIR (the server's)", NULL);
	if (o->nservers == 0 && o->rules == NULL)
		o->rules = "rules/default.rules";
	o->progress = !o->quiet && isatty(STDERR_FILENO);
	return 0;
}

static vigil_err
rp_load_rules(const char *path, rules_prog **ret)
{
	rules_diags diags;
	vigil_err rv;

	memset(&diags, 0, sizeof diags);
	rv = app_rules_load(path, ret, &diags);
	if (rv != VIGIL_OK) {
		if (diags.count > 0)
			rules_diags_print(&diags, NULL, 0, stderr);
		else
			fprintf(stderr, "vigil-replay: %s: %s\n", path, vigil_strerror(rv));
	}
	return rv;
}

static vigil_err
rp_metrics_new(rp *r, const rules_prog *prog, metrics **ret)
{
	const char *names[METRICS_MAX_RULES];
	metrics_opts mo = { .topk = r->o.topk, .rule_names = names };

	if (prog != NULL) {
		mo.nrules = rules_prog_nrules(prog);
		if (mo.nrules > METRICS_MAX_RULES)
			mo.nrules = METRICS_MAX_RULES;
		for (uint32_t i = 0; i < mo.nrules; i++) {
			rules_rule_info info;
			rules_prog_rule(prog, i, &info);
			names[i] = info.name;
		}
	} else {
		mo.nrules = 0;
	}
	*ret = metrics_new(&mo);
	return *ret == NULL ? VIGIL_ENOMEM : VIGIL_OK;
}

/* Server mode: hits come back by name and get indices as they are first
 * seen, so the metrics have room for every rule and are trimmed at the end. */
static vigil_err
rp_metrics_server(rp *r, metrics **ret)
{
	static const char *names[METRICS_MAX_RULES];
	metrics_opts mo = { .topk = r->o.topk, .rule_names = names, .nrules = METRICS_MAX_RULES };

	*ret = metrics_new(&mo);
	return *ret == NULL ? VIGIL_ENOMEM : VIGIL_OK;
}

static int
rp_rmtree(const char *dir)
{
	pid_t pid = fork();
	int st;

	if (pid == 0) {
		execlp("rm", "rm", "-rf", "--", dir, (char *)NULL);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

int
main(int argc, char **argv)
{
	rp *r;
	int status = 1, prc;
	vigil_err rv;
	double secs;

	rp_heap_setup();
	r = calloc(1, sizeof *r);
	if (r == NULL) {
		fprintf(stderr, "vigil-replay: out of memory\n");
		return 1;
	}
	pthread_mutex_init(&r->names.mu, NULL);
	r->day = INT64_MIN;
	r->first_event = INT64_MIN;
	prc = rp_parse_args(argc, argv, &r->o);
	if (prc != 0) {
		status = prc;
		goto out;
	}
	signal(SIGPIPE, SIG_IGN);
	if (r->o.rules != NULL && rp_load_rules(r->o.rules, &r->prog) != VIGIL_OK)
		goto out;
	if (r->o.compare != NULL && rp_load_rules(r->o.compare, &r->prog2) != VIGIL_OK)
		goto out;
	if (r->o.nservers > 0 && r->prog != NULL) {
		/* hits come back by name: index them like the rule file */
		for (uint32_t i = 0; i < rules_prog_nrules(r->prog); i++) {
			rules_rule_info info;
			rules_prog_rule(r->prog, i, &info);
			rp_names_index(&r->names, info.name);
		}
	}
	if (rp_source_open(&r->src, &r->o) != VIGIL_OK)
		goto out;
	if (r->o.results != NULL) {
		r->results = fopen(r->o.results, "w");
		if (r->results == NULL) {
			fprintf(stderr, "vigil-replay: %s: %s\n", r->o.results, strerror(errno));
			goto out;
		}
		setvbuf(r->results, NULL, _IOFBF, 1 << 20);
	}
	if (r->o.nservers > 0) {
		vigil_client_opts co = { .timeout_ms = 5000, .max_attempts = 3, .connect_wait_ms = 3000 };
		vigil_client_errinfo info;
		bool any = false;
		if (vigil_client_open(r->o.servers, r->o.nservers, &co, &r->client, &info) !=
		    VIGIL_CLIENT_OK) {
			fprintf(stderr, "vigil-replay: %s\n", info.message);
			goto out;
		}
		/* fail fast: a replay against nothing would time out row by row */
		for (size_t i = 0; i < r->o.nservers; i++)
			any |= vigil_client_replica_connected(r->client, i);
		if (!any) {
			fprintf(stderr, "vigil-replay: no server reachable at %s%s within 3 s\n",
			    r->o.servers[0], r->o.nservers > 1 ? " (nor the other replicas)" : "");
			goto out;
		}
	} else {
		if (rp_offline_open(r) != VIGIL_OK)
			goto out;
		if (rp_metrics_new(r, r->prog, &r->m) != VIGIL_OK ||
		    (r->prog2 != NULL && rp_metrics_new(r, r->prog2, &r->m2) != VIGIL_OK)) {
			fprintf(stderr, "vigil-replay: out of memory\n");
			goto out;
		}
	}
	r->t_start_ns = vigil_mono_ns();
	if (r->o.nservers > 0) {
		if (rp_metrics_server(r, &r->m) != VIGIL_OK) {
			fprintf(stderr, "vigil-replay: out of memory\n");
			goto out;
		}
		rv = rp_run_server(r);
		if (rv == VIGIL_OK)
			rv = metrics_set_rules(r->m, r->names.n, (const char *const *)r->names.names);
	} else {
		rv = rp_run_offline(r);
	}
	secs = (double)(vigil_mono_ns() - r->t_start_ns) / 1e9;
	rp_progress(r, NULL, true);
	if (rv != VIGIL_OK)
		goto out;
	if (metrics_finish(r->m) != VIGIL_OK || (r->m2 != NULL && metrics_finish(r->m2) != VIGIL_OK)) {
		fprintf(stderr, "vigil-replay: out of memory\n");
		goto out;
	}
	if (r->results != NULL) {
		bool werr = ferror(r->results) != 0;
		if (fclose(r->results) != 0 || werr) {
			r->results = NULL;
			fprintf(stderr, "vigil-replay: %s: %s\n", r->o.results, strerror(errno));
			goto out;
		}
		r->results = NULL;
	}
	if (!r->o.quiet) {
		printf("vigil-replay: %s, %s mode, rules %s\n", r->src.name,
		    r->o.nservers ? "server" : "offline", r->o.rules ? r->o.rules : "(the server's)");
		double rb = (double)r->night_ns / 1e9;
		printf("throughput    %" PRIu64 " rows in %.2f s: %.0f rows/s scoring", r->rows,
		    secs, secs - rb > 0 ? (double)r->rows / (secs - rb) : 0.0);
		if (r->nightly_runs > 0)
			printf(" (%.1f s in %" PRIu32 " nightly rebuilds excluded)", rb, r->nightly_runs);
		printf("\ninput         %" PRIu64 " bad rows skipped; %" PRIu64 " labels sent\n",
		    r->src.bad, r->labels_sent);
		if (r->failed > 0)
			printf("failed        %" PRIu64 " transactions got no answer from the server\n",
			    r->failed);
		if (r->conflicts > 0)
			printf("refused       %" PRIu64 " rows reused the txn_id of a different "
			    "transaction (vigild refuses them)\n", r->conflicts);
		metrics_print(r->m, stdout);
		if (r->m2 != NULL)
			rp_print_compare(r, stdout);
		fflush(stdout);
	}
	if (r->o.json != NULL) {
		json_t *j = rp_summary_json(r, secs);
		int jrc = j == NULL ? -1 : strcmp(r->o.json, "-") == 0
		    ? json_dumpf(j, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(10))
		    : json_dump_file(j, r->o.json, JSON_INDENT(2) | JSON_REAL_PRECISION(10));
		json_decref(j);
		if (jrc != 0) {
			fprintf(stderr, "vigil-replay: %s: cannot write the JSON summary\n", r->o.json);
			goto out;
		}
		if (strcmp(r->o.json, "-") == 0)
			putchar('\n');
	}
	if (r->o.report != NULL) {
		FILE *f = fopen(r->o.report, "w");
		char title[512];
		report_info ri = {
			.title = title, .input = r->src.name,
			.rules = r->o.rules ? r->o.rules : "(the server's)",
			.mode = r->o.nservers ? "server" : "offline", .seconds = secs,
			.throughput = secs - (double)r->night_ns / 1e9 > 0
			    ? (double)r->rows / (secs - (double)r->night_ns / 1e9) : 0,
			.bad_rows = r->src.bad,
			.nightly_runs = r->nightly_runs, .compare = r->o.compare, .changed = r->changed,
		};
		snprintf(title, sizeof title, "vigil-replay report: %s", r->src.name);
		if (f == NULL) {
			fprintf(stderr, "vigil-replay: %s: %s\n", r->o.report, strerror(errno));
			goto out;
		}
		rv = report_write_html(f, &ri, r->m, r->m2);
		if (fclose(f) != 0 || rv != VIGIL_OK) {
			fprintf(stderr, "vigil-replay: %s: write failed\n", r->o.report);
			goto out;
		}
		if (!r->o.quiet)
			printf("report        %s\n", r->o.report);
	}
	status = r->failed > 0 ? 1 : 0;
out:
	if (r->results != NULL)
		fclose(r->results);
	rp_source_close(&r->src);
	vigil_client_close(r->client);
	app_work_free(r->aw);
	if (RP_FREE_LIVE_AT_EXIT)
		store_db_close(r->db);
	else
		store_db_close_exiting(r->db);
	if (r->own_workdir && r->workdir[0] != '\0' && rp_rmtree(r->workdir) != 0)
		fprintf(stderr, "vigil-replay: could not remove %s\n", r->workdir);
	rules_tvals_free(r->tv);
	rules_tvals_free(r->tv2);
	if (r->ar != NULL)
		app_rules_free(r->ar); /* and prog */
	else
		rules_prog_free(r->prog);
	rules_prog_free(r->prog2);
	app_model_free(r->model);
	json_decref(r->nights);
	metrics_free(r->m);
	metrics_free(r->m2);
	free(r->labels.v);
	for (uint32_t i = 0; i < r->names.n; i++)
		free(r->names.names[i]);
	pthread_mutex_destroy(&r->names.mu);
	free(r);
	return status;
}
