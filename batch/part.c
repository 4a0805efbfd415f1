/* SPDX-License-Identifier: MIT */
/*
 * batch/part.c - partial files of a partitioned rebuild, and batch_merge().
 *
 * `vigil-rebuild --partition i/N --out F` computes the cards whose key hash
 * falls in partition i: their final profiles, plus the partition's share of
 * every merchant and terminal counter and of every threshold sketch. Cards
 * are final because a card's records all belong to one partition; merchant,
 * terminal and sketch shares are integers (and exact min/max), so summing
 * the N shares gives exactly what a single run computes. `vigil-rebuild
 * --merge F0 .. FN-1` does that sum and writes the generation.
 *
 * Format (docs/vigil-rebuild.md), native byte order, for the same build on
 * the same architecture (the header records both and a reader refuses a
 * mismatch):
 *   header  "VGLPART1", u32 byte-order mark 0x01020304, u32 sizes of the
 *           card profile and entity counter, run fields, counters, plans
 *   items   'C' card | 'M' merchant | 'T' terminal: u16 key length, key, bytes
 *           'G' sketch: u32 plan, u16 group length (0xffff = global), group,
 *               u32 buckets, buckets
 *           'R' the model's training rows, once, last (files written before
 *               it existed have none: the merge then trains no model):
 *               u32 section version, u32 sizeof(part_train), part_train
 *               (the options that chose the rows, the row counts, or why
 *               there is no set), then part_train.set_len bytes of
 *               batch_trainset_encode (train.h)
 *   trailer 'E', u64 xxh64 of every byte before it
 * The file is written to F.tmp and renamed, so F is complete or absent.
 *
 * The training rows of a partition are those of its cards (a transaction
 * belongs to its card's partition), sampled as one reader would with the
 * partition's max_rows; the merge merges the N sets in partition order
 * (batch_trainset_merge re-applies the bound: the union's sample is the
 * one a single run keeps) and trains with the single run's options, so the
 * model is byte-identical to a single run's.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <xxhash.h>

#include "file.h"
#include "rebuild.h"

#define PART_MAGIC     "VGLPART1"
#define PART_BOM       0x01020304u
#define PART_GLOBAL    0xffffu
#define PART_MAX_BUCKETS (1u << 22)
#define PART_TRAIN_VERSION 1u

typedef struct part_hdr {
	uint32_t part_index, part_count;
	int64_t  as_of_ms, window_ms;
	char     rules_hash[72];
	uint32_t nplans;
	uint64_t records_read, records_bad, corrupt_records, labels_read, labels_used,
	    labels_future, first_seq, last_seq, state_bytes;
	char     bad_where[256];
} part_hdr;

/* The 'R' section's fixed part. Integers only (a damaged file must not
 * load a bool out of range). */
typedef struct part_train {
	uint32_t has_set;           /* 1: set_len bytes of set follow; 0: why_not says why not */
	uint32_t labelled_only;     /* the options that chose the rows ... */
	int64_t  train_from, train_to, label_maturity_ms;
	uint64_t layout;            /* store_schema_model_layout() of the writer */
	uint64_t max_rows;
	uint32_t min_frauds, reserved;
	uint64_t rows_seen, rows_other_layout, rows_no_vector; /* ... and what was read */
	uint64_t set_len;
	char     why_not[200];
} part_train;

typedef struct part_plan {
	char     name[129];
	uint32_t kind;
	double   param, fallback;
	uint64_t min_samples;
} part_plan;

/* ---- Writing ---- */

typedef struct part_w {
	FILE          *f;
	XXH64_state_t *xx;
	bool           err;
} part_w;

static void
pw_put(part_w *w, const void *p, size_t n)
{
	if (w->err || n == 0)
		return;
	if (fwrite(p, 1, n, w->f) != n) {
		w->err = true;
		return;
	}
	XXH64_update(w->xx, p, n);
}

static void
pw_u8(part_w *w, uint8_t v)  { pw_put(w, &v, 1); }
static void
pw_u16(part_w *w, uint16_t v) { pw_put(w, &v, 2); }
static void
pw_u32(part_w *w, uint32_t v) { pw_put(w, &v, 4); }

static void
pw_key(part_w *w, char tag, const char *key)
{
	size_t n = strlen(key);

	pw_u8(w, (uint8_t)tag);
	pw_u16(w, (uint16_t)n);
	pw_put(w, key, n);
}

static vigil_err
pw_sketch(part_w *w, uint32_t plan, const char *group, const batch_sketch *sk)
{
	batch_bucket *b = NULL;
	size_t nb = 0;
	vigil_err rv;

	rv = batch_sketch_sorted(sk, &b, &nb);
	if (rv != VIGIL_OK)
		return rv;
	pw_u8(w, 'G');
	pw_u32(w, plan);
	if (group == NULL) {
		pw_u16(w, PART_GLOBAL);
	} else {
		pw_u16(w, (uint16_t)strlen(group));
		pw_put(w, group, strlen(group));
	}
	pw_u32(w, (uint32_t)nb);
	for (size_t i = 0; i < nb; i++) {
		pw_put(w, &b[i].key, sizeof b[i].key);
		pw_put(w, &b[i].n, sizeof b[i].n);
		pw_put(w, &b[i].labelled, sizeof b[i].labelled);
		pw_put(w, &b[i].fraud, sizeof b[i].fraud);
		pw_put(w, &b[i].min, sizeof b[i].min);
		pw_put(w, &b[i].max, sizeof b[i].max);
	}
	free(b);
	return VIGIL_OK;
}

static int
ent_cmp(batch_ent_node *a, batch_ent_node *b)
{
	return strcmp(a->key, b->key);
}

static int
group_cmp(batch_group *a, batch_group *b)
{
	return strcmp(a->key, b->key);
}

/* The 'R' section: this partition's training rows (r->train, the workers'
 * sets merged by the caller) with the options that chose them, or why
 * there are none (r->sum.model.why_not). */
static vigil_err
pw_train(part_w *w, const batch_run *r, store_diag *reterr)
{
	part_train t;
	uint8_t *set = NULL;
	size_t len = 0;
	vigil_err rv;

	memset(&t, 0, sizeof t);
	t.labelled_only = r->opts.labelled_only;
	t.train_from = r->train_from;
	t.train_to = r->train_to;
	t.label_maturity_ms = r->opts.label_maturity_ms;
	t.layout = r->layout;
	t.max_rows = r->topts.max_rows;
	t.min_frauds = r->topts.min_frauds;
	t.rows_seen = r->sum.model.rows_seen;
	t.rows_other_layout = r->sum.model.rows_other_layout;
	t.rows_no_vector = r->sum.model.rows_no_vector;
	if (r->train != NULL) {
		rv = batch_trainset_encode(r->train, &set, &len, reterr);
		if (rv != VIGIL_OK)
			return rv;
		t.has_set = 1;
		t.set_len = len;
	} else {
		snprintf(t.why_not, sizeof t.why_not, "%s", r->sum.model.why_not);
	}
	pw_u8(w, 'R');
	pw_u32(w, PART_TRAIN_VERSION);
	pw_u32(w, (uint32_t)sizeof t);
	pw_put(w, &t, sizeof t);
	pw_put(w, set, len);
	free(set);
	return VIGIL_OK;
}

vigil_err
batch_part_write(batch_run *r, const char *path, store_diag *reterr)
{
	part_w w = { 0 };
	part_hdr h;
	batch_card **cards = NULL;
	size_t ncards = 0;
	char tmp[4200];
	batch_worker *wk = &r->workers[0];
	uint64_t digest;
	vigil_err rv;

	if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp) {
		store_diag_set(reterr, "%s: path too long", path);
		return VIGIL_EINVAL;
	}
	w.xx = XXH64_createState();
	if (w.xx == NULL)
		return VIGIL_ENOMEM;
	XXH64_reset(w.xx, 0);
	w.f = fopen(tmp, "wb");
	if (w.f == NULL) {
		rv = vigil_err_from_errno(errno);
		store_diag_set(reterr, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	memset(&h, 0, sizeof h);
	h.part_index = r->opts.part_index;
	h.part_count = r->opts.part_count;
	h.as_of_ms = r->opts.as_of_ms;
	h.window_ms = r->opts.window_ms;
	memcpy(h.rules_hash, r->sum.rules_hash, sizeof h.rules_hash);
	h.nplans = r->nplans;
	h.records_read = r->sum.records_read;
	h.records_bad = r->sum.records_bad;
	h.corrupt_records = r->sum.corrupt_records;
	h.labels_read = r->sum.labels_read;
	h.labels_used = r->sum.labels_used;
	h.labels_future = r->sum.labels_future;
	h.first_seq = r->sum.first_seq;
	h.last_seq = r->sum.last_seq;
	h.state_bytes = r->sum.peak_state_bytes;
	memcpy(h.bad_where, r->sum.bad_where, sizeof h.bad_where);
	pw_put(&w, PART_MAGIC, 8);
	pw_u32(&w, PART_BOM);
	pw_u32(&w, (uint32_t)sizeof(store_card_profile));
	pw_u32(&w, (uint32_t)sizeof(batch_ent));
	pw_u32(&w, (uint32_t)sizeof(part_hdr));
	pw_put(&w, &h, sizeof h);
	for (uint32_t i = 0; i < r->nplans; i++) {
		part_plan pp;

		memset(&pp, 0, sizeof pp);
		memcpy(pp.name, r->plans[i].name, sizeof pp.name);
		pp.kind = (uint32_t)r->plans[i].kind;
		pp.param = r->plans[i].param;
		pp.fallback = r->plans[i].fallback;
		pp.min_samples = r->plans[i].min_samples;
		pw_put(&w, &pp, sizeof pp);
	}

	rv = batch_run_sorted_cards(r, &cards, &ncards);
	if (rv != VIGIL_OK)
		goto out;
	for (size_t i = 0; i < ncards && !w.err; i++) {
		store_card_profile p;

		batch_cards_prefetch(cards, i, ncards);
		batch_card_profile(cards[i], &p);
		pw_key(&w, 'C', cards[i]->key);
		pw_put(&w, &p, sizeof p);
		r->sum.cards++;
	}
	for (int k = 0; k < 2; k++) {
		batch_ent_node **map = k ? &wk->terminals : &wk->merchants;

		HASH_SRT(hh, *map, ent_cmp);
		for (batch_ent_node *e = *map; e != NULL && !w.err; e = e->hh.next) {
			pw_key(&w, k ? 'T' : 'M', e->key);
			pw_put(&w, &e->acc, sizeof e->acc);
			if (k)
				r->sum.terminals++;
			else
				r->sum.merchants++;
		}
	}
	for (uint32_t i = 0; i < r->nplans; i++) {
		rv = pw_sketch(&w, i, NULL, wk->ts[i].global);
		if (rv != VIGIL_OK)
			goto out;
		HASH_SRT(hh, wk->ts[i].groups, group_cmp);
		for (batch_group *g = wk->ts[i].groups; g != NULL; g = g->hh.next) {
			rv = pw_sketch(&w, i, g->key, g->sk);
			if (rv != VIGIL_OK)
				goto out;
		}
	}
	rv = pw_train(&w, r, reterr);
	if (rv != VIGIL_OK)
		goto out;
	pw_u8(&w, 'E');
	digest = XXH64_digest(w.xx);
	if (!w.err && fwrite(&digest, 1, sizeof digest, w.f) != sizeof digest)
		w.err = true;
	if (w.err || fflush(w.f) != 0 || fdatasync(fileno(w.f)) != 0) {
		rv = vigil_err_from_errno(errno);
		if (rv == VIGIL_OK)
			rv = VIGIL_EIO;
		store_diag_set(reterr, "%s: write failed: %s", tmp, strerror(errno));
		goto out;
	}
	if (fclose(w.f) != 0) {
		w.f = NULL;
		rv = VIGIL_EIO;
		store_diag_set(reterr, "%s: close failed: %s", tmp, strerror(errno));
		goto out;
	}
	w.f = NULL;
	if (rename(tmp, path) != 0) {
		rv = vigil_err_from_errno(errno);
		store_diag_set(reterr, "%s: rename to %s failed: %s", tmp, path, strerror(errno));
		goto out;
	}
	rv = VIGIL_OK;
out:
	if (w.f != NULL) {
		fclose(w.f);
		unlink(tmp);
	} else if (rv != VIGIL_OK) {
		unlink(tmp);
	}
	free(cards);
	XXH64_freeState(w.xx);
	return rv;
}

/* ---- Reading and merging ---- */

typedef struct part_r {
	const char    *path;
	FILE          *f;
	XXH64_state_t *xx;
	uint64_t       off;
	uint64_t       size;  /* of the file, when opened */
	part_hdr       h;
	part_plan     *plans;
} part_r;

/* What the merge gathers from the partitions' training sections. */
typedef struct part_tm {
	part_train      first;      /* the first section read, if have_first */
	const char     *first_path;
	bool            have_first;
	const char     *missing;    /* the first file without a section, or NULL */
	batch_trainset *set;        /* the partitions' sets merged so far */
	uint64_t        rows_seen, rows_other_layout, rows_no_vector;
} part_tm;

static vigil_err
pr_get(part_r *p, void *buf, size_t n, const char *what, store_diag *reterr)
{
	if (n == 0)
		return VIGIL_OK;
	if (fread(buf, 1, n, p->f) != n) {
		store_diag_set(reterr, "%s:%llu: %s while reading %s", p->path,
		    (unsigned long long)p->off, ferror(p->f) ? strerror(errno) : "truncated",
		    what);
		return ferror(p->f) ? VIGIL_EIO : VIGIL_ECORRUPT;
	}
	XXH64_update(p->xx, buf, n);
	p->off += n;
	return VIGIL_OK;
}

static void
pr_close(part_r *p)
{
	if (p->f != NULL)
		fclose(p->f);
	XXH64_freeState(p->xx);
	free(p->plans);
	memset(p, 0, sizeof *p);
}

/* A partial file, opened for reading only if it is a regular file (a FIFO
 * named by mistake would wait for ever): the stream, or NULL with *ret_rv
 * and reterr set. */
static FILE *
pr_fopen(const char *path, struct stat *ret_st, store_diag *reterr, vigil_err *ret_rv)
{
	bool special = false;
	FILE *f = vigil_fopen_regular(path, &special, ret_st);
	char why[128];

	if (f == NULL) {
		*ret_rv = special ? VIGIL_EINVAL : vigil_err_from_errno(errno);
		store_diag_set(reterr, "%s: %s", path, vigil_open_why(special, errno, why,
		    sizeof why));
	}
	return f;
}

static vigil_err
pr_open(part_r *p, const char *path, store_diag *reterr)
{
	char magic[8];
	uint32_t bom, csz, esz, hsz;
	struct stat st;
	vigil_err rv;

	memset(p, 0, sizeof *p);
	p->path = path;
	p->xx = XXH64_createState();
	if (p->xx == NULL)
		return VIGIL_ENOMEM;
	XXH64_reset(p->xx, 0);
	p->f = pr_fopen(path, &st, reterr, &rv);
	if (p->f == NULL)
		return rv;
	p->size = (uint64_t)st.st_size;
	if ((rv = pr_get(p, magic, 8, "magic", reterr)) != VIGIL_OK)
		return rv;
	if (memcmp(magic, PART_MAGIC, 8) != 0) {
		store_diag_set(reterr, "%s:0: not a vigil-rebuild partial file", path);
		return VIGIL_ECORRUPT;
	}
	if ((rv = pr_get(p, &bom, 4, "header", reterr)) != VIGIL_OK ||
	    (rv = pr_get(p, &csz, 4, "header", reterr)) != VIGIL_OK ||
	    (rv = pr_get(p, &esz, 4, "header", reterr)) != VIGIL_OK ||
	    (rv = pr_get(p, &hsz, 4, "header", reterr)) != VIGIL_OK)
		return rv;
	if (bom != PART_BOM || csz != sizeof(store_card_profile) ||
	    esz != sizeof(batch_ent) || hsz != sizeof(part_hdr)) {
		store_diag_set(reterr, "%s:8: written by a different build or architecture "
		    "(re-run the partitions with this binary)", path);
		return VIGIL_EVERSION;
	}
	if ((rv = pr_get(p, &p->h, sizeof p->h, "header", reterr)) != VIGIL_OK)
		return rv;
	p->h.rules_hash[sizeof p->h.rules_hash - 1] = '\0';
	p->h.bad_where[sizeof p->h.bad_where - 1] = '\0';
	if (p->h.part_count < 2 || p->h.part_count > BATCH_MAX_PARTS ||
	    p->h.part_index >= p->h.part_count || p->h.nplans > BATCH_MAX_THRESHOLDS ||
	    p->h.window_ms <= 0 || p->h.window_ms > BATCH_MAX_WINDOW_MS) {
		store_diag_set(reterr, "%s:28: header fields out of range", path);
		return VIGIL_ECORRUPT;
	}
	p->plans = calloc(p->h.nplans ? p->h.nplans : 1, sizeof *p->plans);
	if (p->plans == NULL)
		return VIGIL_ENOMEM;
	for (uint32_t i = 0; i < p->h.nplans; i++) {
		if ((rv = pr_get(p, &p->plans[i], sizeof p->plans[i], "threshold", reterr)) != VIGIL_OK)
			return rv;
		p->plans[i].name[sizeof p->plans[i].name - 1] = '\0';
		if (p->plans[i].kind < RULES_TUNE_PERCENTILE || p->plans[i].kind > RULES_TUNE_PRECISION) {
			store_diag_set(reterr, "%s: threshold %u: unknown kind %u", path, i,
			    p->plans[i].kind);
			return VIGIL_ECORRUPT;
		}
	}
	return VIGIL_OK;
}

/* Checks the trailer ('E' + xxh64 of every byte before the digest) over
 * the whole file before anything of it is used: a damaged file is refused
 * whole, never half-merged. */
static vigil_err
pr_verify(const char *path, store_diag *reterr)
{
	vigil_err rv = VIGIL_OK;
	FILE *f = pr_fopen(path, NULL, reterr, &rv);
	XXH64_state_t *xx = XXH64_createState();
	uint8_t *buf = malloc(1 << 20);
	uint8_t tail[9];
	uint64_t off = 0, digest;
	size_t n, keep = 0;

	if (f == NULL)
		goto out;
	if (xx == NULL || buf == NULL) {
		rv = VIGIL_ENOMEM;
		store_diag_set(reterr, "%s: out of memory", path);
		goto out;
	}
	XXH64_reset(xx, 0);
	/* Hash everything but the last 8 bytes, which hold the digest. */
	while ((n = fread(buf + keep, 1, (1 << 20) - keep, f)) > 0) {
		if (off == 0 && keep == 0 && (n < 8 || memcmp(buf, PART_MAGIC, 8) != 0)) {
			/* another file given by mistake: say so, not "damaged" */
			rv = VIGIL_ECORRUPT;
			store_diag_set(reterr, "%s:0: not a vigil-rebuild partial file", path);
			goto out;
		}
		n += keep;
		if (n > 9) {
			XXH64_update(xx, buf, n - 9);
			off += n - 9;
			memmove(buf, buf + n - 9, 9);
			keep = 9;
		} else {
			keep = n;
		}
	}
	if (ferror(f)) {
		rv = VIGIL_EIO;
		store_diag_set(reterr, "%s:%llu: %s", path, (unsigned long long)off,
		    strerror(errno));
		goto out;
	}
	if (keep < 9) {
		rv = VIGIL_ECORRUPT;
		store_diag_set(reterr, "%s:%llu: truncated (no trailer)", path,
		    (unsigned long long)off);
		goto out;
	}
	memcpy(tail, buf, 9);
	XXH64_update(xx, tail, 1);
	memcpy(&digest, tail + 1, 8);
	if (tail[0] != 'E' || digest != XXH64_digest(xx)) {
		rv = VIGIL_ECORRUPT;
		store_diag_set(reterr, "%s:%llu: checksum mismatch (file damaged or truncated)",
		    path, (unsigned long long)off);
	}
out:
	if (f != NULL)
		fclose(f);
	XXH64_freeState(xx);
	free(buf);
	return rv;
}

/* Partial files must describe the same run: checks p against the first. */
static vigil_err
pr_check_same(const part_r *p, const part_r *first, store_diag *reterr)
{
	if (p->h.part_count != first->h.part_count || p->h.as_of_ms != first->h.as_of_ms ||
	    p->h.window_ms != first->h.window_ms ||
	    strcmp(p->h.rules_hash, first->h.rules_hash) != 0 ||
	    p->h.nplans != first->h.nplans ||
	    p->h.labels_read != first->h.labels_read) {
		store_diag_set(reterr, "%s: from a different run than %s (partition count, as-of, "
		    "window, rule file or labels differ)", p->path, first->path);
		return VIGIL_EINVAL;
	}
	for (uint32_t i = 0; i < p->h.nplans; i++) {
		if (memcmp(&p->plans[i], &first->plans[i], sizeof p->plans[i]) != 0) {
			store_diag_set(reterr, "%s: threshold %s differs from %s", p->path,
			    p->plans[i].name, first->path);
			return VIGIL_EINVAL;
		}
	}
	return VIGIL_OK;
}

static vigil_err
pr_key(part_r *p, char *key, size_t cap, const char *what, store_diag *reterr)
{
	uint16_t n;
	vigil_err rv;

	if ((rv = pr_get(p, &n, 2, what, reterr)) != VIGIL_OK)
		return rv;
	if (n == 0 || n >= cap) {
		store_diag_set(reterr, "%s:%llu: %s key length %u out of range (1..%zu)",
		    p->path, (unsigned long long)p->off - 2, what, n, cap - 1);
		return VIGIL_ECORRUPT;
	}
	if ((rv = pr_get(p, key, n, what, reterr)) != VIGIL_OK)
		return rv;
	key[n] = '\0';
	if (memchr(key, '\0', n) != NULL) {
		store_diag_set(reterr, "%s:%llu: %s key holds a NUL byte", p->path,
		    (unsigned long long)p->off - n, what);
		return VIGIL_ECORRUPT;
	}
	return VIGIL_OK;
}

static vigil_err
pr_sketch(part_r *p, batch_run *r, batch_worker *wk, store_diag *reterr)
{
	uint32_t plan, nb;
	uint16_t glen;
	char group[BATCH_GROUP_MAX + 1];
	batch_sketch *sk;
	vigil_err rv;

	if ((rv = pr_get(p, &plan, 4, "sketch", reterr)) != VIGIL_OK ||
	    (rv = pr_get(p, &glen, 2, "sketch", reterr)) != VIGIL_OK)
		return rv;
	if (plan >= r->nplans || (glen != PART_GLOBAL && (glen == 0 || glen > BATCH_GROUP_MAX))) {
		store_diag_set(reterr, "%s:%llu: sketch for threshold %u / group length %u "
		    "out of range", p->path, (unsigned long long)p->off - 6, plan, glen);
		return VIGIL_ECORRUPT;
	}
	if (glen == PART_GLOBAL) {
		sk = wk->ts[plan].global;
	} else {
		if ((rv = pr_get(p, group, glen, "sketch group", reterr)) != VIGIL_OK)
			return rv;
		group[glen] = '\0';
		rv = batch_tstate_group(&wk->ts[plan], group, glen, r->plans[plan].name, &sk, reterr);
		if (rv != VIGIL_OK)
			return rv;
	}
	if ((rv = pr_get(p, &nb, 4, "sketch", reterr)) != VIGIL_OK)
		return rv;
	if (nb > PART_MAX_BUCKETS) {
		store_diag_set(reterr, "%s:%llu: %u buckets is over the cap of %u", p->path,
		    (unsigned long long)p->off - 4, nb, PART_MAX_BUCKETS);
		return VIGIL_ECORRUPT;
	}
	for (uint32_t i = 0; i < nb; i++) {
		batch_bucket b;
		uint64_t at = p->off;

		if ((rv = pr_get(p, &b.key, sizeof b.key, "bucket", reterr)) != VIGIL_OK ||
		    (rv = pr_get(p, &b.n, sizeof b.n, "bucket", reterr)) != VIGIL_OK ||
		    (rv = pr_get(p, &b.labelled, sizeof b.labelled, "bucket", reterr)) != VIGIL_OK ||
		    (rv = pr_get(p, &b.fraud, sizeof b.fraud, "bucket", reterr)) != VIGIL_OK ||
		    (rv = pr_get(p, &b.min, sizeof b.min, "bucket", reterr)) != VIGIL_OK ||
		    (rv = pr_get(p, &b.max, sizeof b.max, "bucket", reterr)) != VIGIL_OK)
			return rv;
		rv = batch_sketch_add_bucket(sk, &b);
		if (rv != VIGIL_OK) {
			if (rv == VIGIL_ECORRUPT)
				store_diag_set(reterr, "%s:%llu: inconsistent sketch bucket",
				    p->path, (unsigned long long)at);
			return rv;
		}
	}
	return VIGIL_OK;
}

/*
 * What is wrong with a partition's merchant or terminal counters a, to be
 * added to dst, or NULL: each window's fraud within its labelled within
 * its count, the windows nested, the card sample ascending and no longer
 * than kept, and no sum past its type. The checksum catches damage, not a
 * file written wrong; a sum that wrapped would serve as a small count.
 */
static const char *
pr_ent_check(const batch_ent *dst, const batch_ent *a)
{
	const __int128 lim = (__int128)a->count[BATCH_W30] * INT64_MAX;

	for (int k = 0; k < BATCH_NW; k++) {
		if (a->fraud[k] > a->labelled[k] || a->labelled[k] > a->count[k])
			return "more frauds than labels or labels than transactions";
		if (k > 0 && a->count[k - 1] > a->count[k])
			return "a shorter window counts more than a longer one";
		if (dst->count[k] > UINT32_MAX - a->count[k])
			return "the merged count overflows";
	}
	for (int k = 0; k < BATCH_NM; k++) {
		if (a->mfraud[k] > a->mcount[k] || (k > 0 && a->mcount[k - 1] > a->mcount[k]))
			return "mature-window frauds over their count";
		if (dst->mcount[k] > UINT32_MAX - a->mcount[k])
			return "the merged count overflows";
	}
	if (a->sum30_milli > lim || a->sum30_milli < -lim)
		return "the 30-day amount is over what its count can sum to";
	if (a->ncards > BATCH_ENT_CARD_SAMPLE || a->ncards > a->count[BATCH_W30])
		return "card sample longer than kept";
	for (uint32_t i = 1; i < a->ncards; i++)
		if (a->cards[i - 1] >= a->cards[i])
			return "card sample out of order";
	return NULL;
}

/* A value each of schema.def's PC types cannot hold, and what it is. */
#define PR_CARD_BAD_U32(v)  0
#define PR_CARD_BAD_I64(v)  0
#define PR_CARD_BAD_TIME(v) ((v) < 0)
#define PR_CARD_BAD_F64(v)  (!isfinite(v))
#define PR_CARD_WHY_U32     ""
#define PR_CARD_WHY_I64     ""
#define PR_CARD_WHY_TIME    " is before 1970"
#define PR_CARD_WHY_F64     " is NaN or infinite"

/*
 * What is wrong with a partition's card profile, or NULL: every number
 * finite, the windows nested, its frauds and its hour histogram within its
 * 90 days, the top merchant's share a share, the kept countries and
 * merchants within their arrays and within the distinct counts, each
 * country two capital letters (as a request's). The encoder reads
 * ncountries and nmerchants entries: a file that claims more would have it
 * read past the profile.
 */
static const char *
pr_card_check(const store_card_profile *p)
{
	uint64_t hours = 0;

#define PC(ctype, field, since, doc) \
	if (PR_CARD_BAD_##ctype(p->field)) \
		return #field PR_CARD_WHY_##ctype;
#include "schema.def"
#undef PC
	if (p->count_7d > p->count_30d || p->count_30d > p->count_90d)
		return "a shorter window counts more than a longer one";
	if (p->fraud_count_90d > p->count_90d)
		return "more frauds than transactions";
	for (int h = 0; h < 24; h++)
		hours += p->hour_hist[h];
	if (hours > p->count_90d)
		return "the hour histogram counts more than the 90 days";
	if (!(p->top_merchant_share_90d >= 0.0 && p->top_merchant_share_90d <= 1.0))
		return "top merchant share outside [0, 1]";
	if (p->ncountries > STORE_CARD_MAX_COUNTRIES || p->ncountries > p->distinct_countries_90d)
		return "more countries kept than there is room for or than were seen";
	if (p->nmerchants > STORE_CARD_MAX_MERCHANTS || p->nmerchants > p->distinct_merchants_90d)
		return "more merchants kept than there is room for or than were seen";
	for (uint32_t i = 0; i < p->ncountries; i++)
		if (p->countries[i][0] < 'A' || p->countries[i][0] > 'Z' ||
		    p->countries[i][1] < 'A' || p->countries[i][1] > 'Z')
			return "a country that is not two capital letters";
	return NULL;
}

/* An empty set of this build's model inputs, keeping max_rows. */
static vigil_err
pr_train_set_new(const batch_run *r, uint64_t max_rows, batch_trainset **ret_s,
    store_diag *reterr)
{
	const char *names[STORE_MODEL_MAX_INPUTS];
	const uint32_t *slots;
	uint32_t n = store_schema_model_inputs(&slots);
	batch_train_opts o = r->topts;

	for (uint32_t i = 0; i < n; i++)
		names[i] = store_schema_field(slots[i])->name;
	o.max_rows = max_rows;
	return batch_trainset_new(n, names, &o, ret_s, reterr);
}

/*
 * The 'R' section (at: its tag's offset): checks it against this build and
 * the first partition's, adds its counts to tm and merges its rows into
 * tm->set.
 */
static vigil_err
pr_train(part_r *p, const batch_run *r, part_tm *tm, uint64_t at, store_diag *reterr)
{
	part_train t;
	uint32_t version, size;
	uint8_t *buf = NULL;
	batch_trainset *set = NULL;
	uint64_t set_at, bad_off = 0, left;
	char why[sizeof reterr->msg];
	vigil_err rv;

	if ((rv = pr_get(p, &version, 4, "training section", reterr)) != VIGIL_OK)
		goto out;
	if (version != PART_TRAIN_VERSION) {
		store_diag_set(reterr, "%s:%llu: training section version %u (this build reads "
		    "%u): re-run the partitions with this binary", p->path,
		    (unsigned long long)p->off - 4, version, PART_TRAIN_VERSION);
		rv = VIGIL_EVERSION;
		goto out;
	}
	if ((rv = pr_get(p, &size, 4, "training section", reterr)) != VIGIL_OK)
		goto out;
	if (size != sizeof t) {
		store_diag_set(reterr, "%s:%llu: training section of %u bytes, %zu in this "
		    "build: re-run the partitions with this binary", p->path,
		    (unsigned long long)p->off - 4, size, sizeof t);
		rv = VIGIL_EVERSION;
		goto out;
	}
	if ((rv = pr_get(p, &t, sizeof t, "training section", reterr)) != VIGIL_OK)
		goto out;
	t.why_not[sizeof t.why_not - 1] = '\0';
	for (char *c = t.why_not; *c != '\0'; c++) /* it becomes the summary's one line */
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = '?';
	left = p->size >= p->off + 9 ? p->size - p->off - 9 : 0; /* before 'E' + digest */
	if (t.has_set > 1 || t.labelled_only > 1 || (t.has_set == 1) != (t.set_len > 0) ||
	    t.set_len > left || t.max_rows < 2 || t.max_rows > BATCH_TRAIN_MAX_ROWS ||
	    (t.has_set && t.train_from >= t.train_to)) {
		store_diag_set(reterr, "%s:%llu: training section fields out of range", p->path,
		    (unsigned long long)at);
		rv = VIGIL_ECORRUPT;
		goto out;
	}
	if (t.layout != r->layout) {
		store_diag_set(reterr, "%s:%llu: training rows of another model input layout "
		    "(%016llx; this build's is %016llx): re-run the partitions with this binary",
		    p->path, (unsigned long long)at, (unsigned long long)t.layout,
		    (unsigned long long)r->layout);
		rv = VIGIL_EVERSION;
		goto out;
	}
	if (!tm->have_first) {
		tm->first = t;
		tm->first_path = p->path;
		tm->have_first = true;
	} else if (t.has_set != tm->first.has_set || t.labelled_only != tm->first.labelled_only ||
	    t.train_from != tm->first.train_from || t.train_to != tm->first.train_to ||
	    t.label_maturity_ms != tm->first.label_maturity_ms ||
	    t.max_rows != tm->first.max_rows || t.min_frauds != tm->first.min_frauds) {
		store_diag_set(reterr, "%s: the model's training options differ from %s's (training "
		    "window, label maturity, --labelled-only, --no-model, max rows or min frauds)",
		    p->path, tm->first_path);
		rv = VIGIL_EINVAL;
		goto out;
	}
	tm->rows_seen += t.rows_seen;
	tm->rows_other_layout += t.rows_other_layout;
	tm->rows_no_vector += t.rows_no_vector;
	if (!t.has_set)
		goto out;

	set_at = p->off;
	buf = malloc((size_t)t.set_len);
	if (buf == NULL) {
		rv = VIGIL_ENOMEM;
		goto out;
	}
	if ((rv = pr_get(p, buf, (size_t)t.set_len, "training set", reterr)) != VIGIL_OK)
		goto out;
	rv = batch_trainset_decode(buf, (size_t)t.set_len, &set, &bad_off, reterr);
	free(buf);
	buf = NULL;
	if (rv == VIGIL_ECORRUPT || rv == VIGIL_EVERSION) {
		snprintf(why, sizeof why, "%s", reterr->msg);
		store_diag_set(reterr, "%s:%llu: %s", p->path,
		    (unsigned long long)(set_at + bad_off), why);
	}
	if (rv != VIGIL_OK)
		goto out;
	if (tm->set == NULL) {
		rv = pr_train_set_new(r, t.max_rows, &tm->set, reterr);
		if (rv != VIGIL_OK)
			goto out;
	}
	/* Checks the set's names and max_rows against the merged one's (this
	 * build's inputs): a mismatch is refused. */
	rv = batch_trainset_merge(tm->set, set, reterr);
	if (rv != VIGIL_OK) {
		snprintf(why, sizeof why, "%s", reterr->msg);
		store_diag_set(reterr, "%s:%llu: %s", p->path, (unsigned long long)set_at, why);
		if (rv == VIGIL_EINVAL)
			rv = VIGIL_ECORRUPT;
	}
out:
	free(buf);
	batch_trainset_free(set);
	return rv;
}

/* Streams one partial file: cards into the generation, the training rows
 * into tm, the rest into wk. */
static vigil_err
pr_body(part_r *p, batch_run *r, batch_worker *wk, part_tm *tm, store_diag *reterr)
{
	char key[VIGIL_ID_MAX + 1], prev[VIGIL_ID_MAX + 1] = "";
	uint8_t tag, last = 0;
	uint64_t digest, want;
	bool trained = false;
	int c;
	vigil_err rv;

	for (;;) {
		uint64_t at = p->off;

		if ((rv = pr_get(p, &tag, 1, "item tag", reterr)) != VIGIL_OK)
			return rv;
		if (tag == 'E')
			break;
		if (tag != 'C' && tag != 'M' && tag != 'T' && tag != 'G' && tag != 'R') {
			store_diag_set(reterr, "%s:%llu: unknown item tag 0x%02x", p->path,
			    (unsigned long long)at, tag);
			return VIGIL_ECORRUPT;
		}
		if (trained) {
			store_diag_set(reterr, "%s:%llu: item 0x%02x after the training section",
			    p->path, (unsigned long long)at, tag);
			return VIGIL_ECORRUPT;
		}
		if (tag != last)
			prev[0] = '\0';
		last = tag;
		if (tag == 'R') {
			rv = pr_train(p, r, tm, at, reterr);
			if (rv != VIGIL_OK)
				return rv;
			trained = true;
			continue;
		}
		if (tag == 'G') {
			rv = pr_sketch(p, r, wk, reterr);
			if (rv != VIGIL_OK)
				return rv;
			continue;
		}
		if ((rv = pr_key(p, key, sizeof key, tag == 'C' ? "card" : tag == 'M' ?
		    "merchant" : "terminal", reterr)) != VIGIL_OK)
			return rv;
		/* Keys are written sorted: a repeat or a step back is damage. */
		if (prev[0] != '\0' && strcmp(prev, key) >= 0) {
			store_diag_set(reterr, "%s:%llu: key %s out of order", p->path,
			    (unsigned long long)at, key);
			return VIGIL_ECORRUPT;
		}
		memcpy(prev, key, sizeof prev);
		if (tag == 'C') {
			store_card_profile prof;
			const char *why;

			if ((rv = pr_get(p, &prof, sizeof prof, "card profile", reterr)) != VIGIL_OK)
				return rv;
			if ((why = pr_card_check(&prof)) != NULL) {
				store_diag_set(reterr, "%s:%llu: card %s: profile out of range (%s)",
				    p->path, (unsigned long long)at, key, why);
				return VIGIL_ECORRUPT;
			}
			if (batch_key_partition(key, strlen(key), p->h.part_count) != p->h.part_index) {
				store_diag_set(reterr, "%s:%llu: card %s is not in partition %u/%u",
				    p->path, (unsigned long long)at, key, p->h.part_index,
				    p->h.part_count);
				return VIGIL_ECORRUPT;
			}
			rv = batch_card_put(r, key, &prof);
			if (rv != VIGIL_OK) {
				store_diag_set(reterr, "%s:%llu: card %s: writing it to "
				    "%s/features generation %llu: %s", p->path, (unsigned long long)at,
				    key, r->opts.datadir,
				    (unsigned long long)store_genw_generation(r->gw), vigil_strerror(rv));
				return rv;
			}
		} else {
			batch_ent acc, *a;
			const char *why;

			if ((rv = pr_get(p, &acc, sizeof acc, "counters", reterr)) != VIGIL_OK)
				return rv;
			rv = batch_ent_get(tag == 'M' ? &wk->merchants : &wk->terminals,
			    tag == 'M' ? &wk->merchant_ix : &wk->terminal_ix, key, strlen(key), &a);
			if (rv != VIGIL_OK)
				return rv;
			if ((why = pr_ent_check(a, &acc)) != NULL) {
				store_diag_set(reterr, "%s:%llu: %s %s: counters out of range (%s)",
				    p->path, (unsigned long long)at, tag == 'M' ? "merchant" :
				    "terminal", key, why);
				return VIGIL_ECORRUPT;
			}
			batch_ent_merge(a, &acc);
		}
	}
	if (!trained && tm->missing == NULL)
		tm->missing = p->path;
	want = XXH64_digest(p->xx);
	if (fread(&digest, 1, sizeof digest, p->f) != sizeof digest || digest != want) {
		store_diag_set(reterr, "%s:%llu: checksum mismatch (file damaged)", p->path,
		    (unsigned long long)p->off);
		return VIGIL_ECORRUPT;
	}
	if ((c = fgetc(p->f)) != EOF) {
		store_diag_set(reterr, "%s:%llu: trailing bytes after the checksum", p->path,
		    (unsigned long long)p->off + sizeof digest);
		return VIGIL_ECORRUPT;
	}
	return VIGIL_OK;
}

/*
 * The merged generation's model: the partitions' sets, merged in
 * partition order, trained with the options the partitions chose their
 * rows with (recorded in their files, as as-of and window are) and the
 * merge's thread count; or no model, and why not.
 */
static vigil_err
pr_model(batch_run *r, const batch_opts *opts, part_tm *tm, store_diag *reterr)
{
	r->sum.model.rows_seen = tm->rows_seen;
	r->sum.model.rows_other_layout = tm->rows_other_layout;
	r->sum.model.rows_no_vector = tm->rows_no_vector;
	if (tm->have_first) {
		r->train_from = tm->first.train_from;
		r->train_to = tm->first.train_to;
		r->sum.model.train_from_ms = r->train_from;
		r->sum.model.train_to_ms = r->train_to;
		r->opts.label_maturity_ms = tm->first.label_maturity_ms;
		r->opts.labelled_only = tm->first.labelled_only != 0;
		r->topts.max_rows = tm->first.max_rows;
		r->topts.min_frauds = tm->first.min_frauds;
	}
	if (opts->model_off) {
		snprintf(r->sum.model.why_not, sizeof r->sum.model.why_not,
		    "turned off (--no-model)");
		return VIGIL_OK;
	}
	if (tm->missing != NULL) {
		snprintf(r->sum.model.why_not, sizeof r->sum.model.why_not,
		    "%s has no training rows (an older vigil-rebuild wrote it)", tm->missing);
		return VIGIL_OK;
	}
	if (!tm->first.has_set) {
		snprintf(r->sum.model.why_not, sizeof r->sum.model.why_not, "%s",
		    tm->first.why_not[0] ? tm->first.why_not : "the partitions kept no training rows");
		return VIGIL_OK;
	}
	r->train = tm->set;
	tm->set = NULL;
	r->sum.model.why_not[0] = '\0';
	return batch_run_train(r, reterr);
}

vigil_err
batch_merge(const batch_opts *opts, const char *const *paths, uint32_t n,
    batch_summary *ret_summary, store_diag *reterr)
{
	batch_run r;
	batch_opts o = *opts;
	part_r *parts = NULL;
	uint32_t *order = NULL;
	part_tm tm;
	bool run_ready = false;
	store_diag scratch;
	vigil_err rv;

	if (reterr == NULL)
		reterr = &scratch;
	reterr->msg[0] = '\0';
	memset(&r, 0, sizeof r);
	memset(&tm, 0, sizeof tm);
	if (n < 2 || n > BATCH_MAX_PARTS) {
		store_diag_set(reterr, "merging needs 2..%u partial files, got %u", BATCH_MAX_PARTS, n);
		return VIGIL_EINVAL;
	}
	if (opts->threads > BATCH_MAX_THREADS) {
		store_diag_set(reterr, "%u threads is over the cap of %u", opts->threads,
		    BATCH_MAX_THREADS);
		return VIGIL_EINVAL;
	}
	parts = calloc(n, sizeof *parts);
	order = calloc(n, sizeof *order);
	if (parts == NULL || order == NULL) {
		rv = VIGIL_ENOMEM;
		goto out;
	}
	for (uint32_t i = 0; i < n; i++) {
		rv = pr_verify(paths[i], reterr);
		if (rv != VIGIL_OK)
			goto out;
		rv = pr_open(&parts[i], paths[i], reterr);
		if (rv != VIGIL_OK)
			goto out;
		if (i > 0 && (rv = pr_check_same(&parts[i], &parts[0], reterr)) != VIGIL_OK)
			goto out;
		for (uint32_t j = 0; j < i; j++) {
			if (parts[j].h.part_index == parts[i].h.part_index) {
				store_diag_set(reterr, "%s and %s are both partition %u", paths[j],
				    paths[i], parts[i].h.part_index);
				rv = VIGIL_EINVAL;
				goto out;
			}
		}
	}
	if (parts[0].h.part_count != n) {
		store_diag_set(reterr, "the partial files are %u of %u partitions",
		    n, parts[0].h.part_count);
		rv = VIGIL_EINVAL;
		goto out;
	}
	/* Each index 0..n-1 once: read them in partition order. */
	for (uint32_t i = 0; i < n; i++)
		order[parts[i].h.part_index] = i;
	o.as_of_ms = parts[0].h.as_of_ms;
	o.window_ms = parts[0].h.window_ms;
	o.part_index = 0;
	o.part_count = 1;
	o.threads = 1;
	rv = batch_run_init(&r, &o, reterr);
	run_ready = true;
	if (rv != VIGIL_OK)
		goto out;
	/* One reader merges, but the model trains on as many threads as a
	 * single run would (the bytes do not depend on it: docs/model.md). */
	r.topts.threads = opts->threads ? opts->threads : 1;
	if (r.prog != NULL && strcmp(r.sum.rules_hash, parts[0].h.rules_hash) != 0) {
		store_diag_set(reterr, "%s differs from the rule file the partitions used", o.rules_path);
		rv = VIGIL_EINVAL;
		goto out;
	}
	if (r.prog == NULL) {
		/* Thresholds as the partitions described them. */
		snprintf(r.sum.rules_hash, sizeof r.sum.rules_hash, "%s", parts[0].h.rules_hash);
		r.plans = calloc(parts[0].h.nplans ? parts[0].h.nplans : 1, sizeof *r.plans);
		if (r.plans == NULL) {
			rv = VIGIL_ENOMEM;
			goto out;
		}
		for (uint32_t i = 0; i < parts[0].h.nplans; i++) {
			const part_plan *pp = &parts[0].plans[i];

			memcpy(r.plans[i].name, pp->name, sizeof r.plans[i].name);
			r.plans[i].kind = (rules_tune_kind)pp->kind;
			r.plans[i].param = pp->param;
			r.plans[i].fallback = pp->fallback;
			r.plans[i].min_samples = pp->min_samples;
		}
		r.nplans = parts[0].h.nplans;
	} else if (r.nplans != parts[0].h.nplans) {
		store_diag_set(reterr, "%s: %u tuned thresholds, the partitions have %u",
		    o.rules_path, r.nplans, parts[0].h.nplans);
		rv = VIGIL_EINVAL;
		goto out;
	}
	r.full_rows = true; /* the partial files hold every kept row */
	rv = batch_run_begin(&r, reterr);
	if (rv != VIGIL_OK || r.sum.skipped)
		goto done;

	r.workers = calloc(1, sizeof *r.workers);
	if (r.workers == NULL) {
		rv = VIGIL_ENOMEM;
		goto out;
	}
	r.nworkers = 1;
	r.workers[0].run = &r;
	r.workers[0].nts = r.nplans;
	r.workers[0].ts = calloc(r.nplans ? r.nplans : 1, sizeof *r.workers[0].ts);
	if (r.workers[0].ts == NULL) {
		rv = VIGIL_ENOMEM;
		goto out;
	}
	for (uint32_t i = 0; i < r.nplans; i++) {
		r.workers[0].ts[i].global = batch_sketch_new();
		if (r.workers[0].ts[i].global == NULL) {
			rv = VIGIL_ENOMEM;
			goto out;
		}
	}
	r.sum.labels_read = parts[0].h.labels_read;
	r.sum.labels_future = parts[0].h.labels_future;
	r.sum.corrupt_records = parts[0].h.corrupt_records;
	r.sum.first_seq = UINT64_MAX;
	for (uint32_t k = 0; k < n; k++) {
		uint32_t i = order[k];
		const part_hdr *h = &parts[i].h;

		rv = pr_body(&parts[i], &r, &r.workers[0], &tm, reterr);
		if (rv != VIGIL_OK)
			goto out;
		r.sum.records_read += h->records_read;
		r.sum.records_bad += h->records_bad;
		r.sum.labels_used += h->labels_used;
		if (h->records_read > 0 && h->first_seq < r.sum.first_seq)
			r.sum.first_seq = h->first_seq;
		if (h->last_seq > r.sum.last_seq)
			r.sum.last_seq = h->last_seq;
		if (h->state_bytes > r.sum.peak_state_bytes)
			r.sum.peak_state_bytes = h->state_bytes;
		batch_bad_keep(r.sum.bad_where, sizeof r.sum.bad_where, h->bad_where);
	}
	rv = pr_model(&r, opts, &tm, reterr);
	if (rv != VIGIL_OK)
		goto out;
	rv = batch_run_finish(&r, &r.workers[0].merchants, &r.workers[0].terminals,
	    r.workers[0].ts, reterr);
done:
	if (rv == VIGIL_OK) {
		if (r.sum.first_seq == UINT64_MAX)
			r.sum.first_seq = 0;
		r.sum.duration_s = (double)(vigil_mono_ns() - r.t0) / 1e9;
		r.sum.part_count = n;
		*ret_summary = r.sum;
	}
out:
	if (run_ready)
		batch_run_fini(&r);
	if (parts != NULL) {
		for (uint32_t i = 0; i < n; i++)
			pr_close(&parts[i]);
		free(parts);
	}
	free(order);
	batch_trainset_free(tm.set);
	return rv;
}
