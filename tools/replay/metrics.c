/* SPDX-License-Identifier: MIT */
/*
 * tools/replay/metrics.c - the replay's detection metrics. Scores are
 * integers (sums of rule points), so every curve is computed exactly from a
 * table of distinct scores with counts per class (legit, fraud, unlabelled,
 * each fraud pattern): AUC by the Mann-Whitney statistic with ties counted
 * half, average precision as the step sum over distinct thresholds. Card
 * precision keeps one entry per labelled card (its day, highest score that
 * day, fraud that day, caught) in an open-addressing table of 32-byte
 * entries (short ids inline), and the list of cards seen today, so a row
 * costs one cache line, which metrics_prefetch can start loading early, and
 * no allocation once the card is known. A day is closed by selecting its
 * top k cards (quickselect), not by sorting them. (Not uthash: the same
 * table in uthash, commit 271b368, took the replay with metrics from 430k
 * to 359k rows/s in bench-replay, metrics 0.50 us a row against 0.12,
 * 2026-11-26.)
 */
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "hashtab.h"
#include "metrics.h"
#include "vec.h"

#define MET_NPAT (METRICS_MAX_PATTERNS + 1) /* + "other" */
#define MET_LAT_BUCKETS 1728
#define MET_DIRECT_LO  (-1024) /* scores in [LO, HI) are found without hashing */
#define MET_DIRECT_HI  4096
#define MET_RANK_SUB   METRICS_RANK_SUB /* ranking bins (metrics_rank_sub) */

/* A bin: of the distribution (a whole-number score) or of a ranking. */
typedef struct met_score {
	int32_t        score;
	uint64_t       legit, fraud, unlabelled;
	uint64_t       pat[MET_NPAT];
	UT_hash_handle hh;
} met_score;

#define MET_ID_INLINE 8 /* ids shorter than this are kept in the entry */

/* A slot of the card table: 32 bytes, half a cache line (the table is
 * 64-byte aligned), the card's id included when short. */
typedef struct met_card {
	int64_t  day;       /* last day seen (UTC day number) */
	float    max_score; /* highest score that day */
	float    max_model; /* highest model.score that day (-1: none) */
	uint32_t tag;       /* high half of the id's XXH3 (the low bits pick the slot) */
	uint8_t  used : 1;
	uint8_t  fraud : 1;    /* a fraud that day */
	uint8_t  caught : 1;   /* in a top k by score with a fraud: left out from then on */
	uint8_t  caught_m : 1; /* the same by model.score (days a model scored) */
	uint8_t  caught_s : 1; /* the same by the score, days a model scored */
	uint8_t  pooled : 1;   /* id in the pool (at ids + id.off), else in id.inl */
	union {
		char     inl[MET_ID_INLINE]; /* NUL-terminated */
		uint32_t off;
	} id;
} met_card;

_Static_assert(sizeof(met_card) == 32, "met_card is half a cache line");

struct metrics {
	uint32_t   nrules;
	char     **rule_names;
	uint64_t  *rule_hits, *rule_fraud, *rule_legit;
	uint32_t   topk;
	/* patterns */
	char      *pat_names[MET_NPAT];
	uint32_t   npat;
	uint64_t   pat_rows[MET_NPAT], pat_alerts[MET_NPAT], pat_declines[MET_NPAT];
	/* confusion */
	uint64_t   total, labelled, frauds, tp, fp, tn, fn, alerts, declines, decline_tp;
	/* scores */
	met_score *scores;     /* hash by score */
	met_score *direct[MET_DIRECT_HI - MET_DIRECT_LO]; /* the same bins, by index */
	uint32_t   nscores;
	met_score **sorted;    /* ascending, built by finish */
	/* rankings (AUC, AP): bins by metrics_rank_sub, ascending (NULL: empty) */
	met_score *rank[METRICS_NRANKS][MET_RANK_SUB];
	uint64_t   modelled, modelled_labelled;
	bool       day_modelled; /* a model scored some row of the current day */
	/* card precision: every labelled card once, and the ones seen today */
	met_card  *cards;      /* open addressing, linear probing */
	uint32_t   ncards, cards_cap; /* cap: a power of two, 0 before the first */
	char      *ids;        /* ids of MET_ID_INLINE bytes or more */
	size_t     ids_len, ids_cap;
	uint32_t  *today;      /* slots of the cards */
	size_t     ntoday, today_cap;
	int64_t    day;        /* current UTC day number, INT64_MIN before the first */
	double     cp_sum, cp_best_sum; /* precision, and the best any ranking could do */
	uint32_t   cp_days;
	double     cp_sum_by[METRICS_NRANKS];  /* the same per ranking (metrics_card_precision_by) */
	uint32_t   cp_days_by[METRICS_NRANKS];
	/* latency */
	uint64_t   lat[MET_LAT_BUCKETS];
	uint64_t   lat_n;
	uint32_t   lat_max;
	bool       finished;
};

static double
met_ratio(uint64_t a, uint64_t b)
{
	return b == 0 ? NAN : (double)a / (double)b;
}

metrics *
metrics_new(const metrics_opts *opts)
{
	metrics *m;

	if (opts->nrules > METRICS_MAX_RULES)
		return NULL;
	m = calloc(1, sizeof *m);
	if (m == NULL)
		return NULL;
	m->nrules = opts->nrules;
	m->topk = opts->topk ? opts->topk : 100;
	m->day = INT64_MIN;
	m->rule_names = calloc(opts->nrules + 1, sizeof *m->rule_names);
	m->rule_hits = calloc(opts->nrules + 1, sizeof *m->rule_hits);
	m->rule_fraud = calloc(opts->nrules + 1, sizeof *m->rule_fraud);
	m->rule_legit = calloc(opts->nrules + 1, sizeof *m->rule_legit);
	if (m->rule_names == NULL || m->rule_hits == NULL || m->rule_fraud == NULL ||
	    m->rule_legit == NULL)
		goto fail;
	for (uint32_t i = 0; i < opts->nrules; i++) {
		m->rule_names[i] = strdup(opts->rule_names[i] ? opts->rule_names[i] : "");
		if (m->rule_names[i] == NULL)
			goto fail;
	}
	return m;
fail:
	metrics_free(m);
	return NULL;
}

void
metrics_free(metrics *m)
{
	met_score *s, *tmp;

	if (m == NULL)
		return;
	for (uint32_t i = 0; i < m->nrules && m->rule_names != NULL; i++)
		free(m->rule_names[i]);
	free(m->rule_names);
	free(m->rule_hits);
	free(m->rule_fraud);
	free(m->rule_legit);
	for (uint32_t i = 0; i < m->npat; i++)
		free(m->pat_names[i]);
	HASH_ITER(hh, m->scores, s, tmp) {
		HASH_DEL(m->scores, s);
		free(s);
	}
	free(m->sorted);
	for (int r = 0; r < METRICS_NRANKS; r++)
		for (uint32_t i = 0; i < MET_RANK_SUB; i++)
			free(m->rank[r][i]);
	free(m->cards);
	free(m->ids);
	free(m->today);
	free(m);
}

static int
met_pattern_index(metrics *m, const char *name, bool add)
{
	for (uint32_t i = 0; i < m->npat; i++)
		if (strcmp(m->pat_names[i], name) == 0)
			return (int)i;
	if (!add)
		return -1;
	if (m->npat == METRICS_MAX_PATTERNS) {
		if (m->npat == METRICS_MAX_PATTERNS && m->pat_names[m->npat] == NULL) {
			m->pat_names[m->npat] = strdup("other");
			if (m->pat_names[m->npat] == NULL)
				return -2;
		}
		return METRICS_MAX_PATTERNS;
	}
	m->pat_names[m->npat] = strdup(name);
	if (m->pat_names[m->npat] == NULL)
		return -2;
	return (int)m->npat++;
}

typedef struct met_rank {
	const char *id;
	float       score;
	uint32_t    card;
} met_rank;

/* The ranking of a day: highest score first, ties by id (a total order:
 * a card is once in a day). */
static inline int
met_rank_cmp(const met_rank *x, const met_rank *y)
{
	if (x->score != y->score)
		return x->score > y->score ? -1 : 1;
	return strcmp(x->id, y->id);
}

static inline void
met_rank_swap(met_rank *a, met_rank *b)
{
	met_rank t = *a;

	*a = *b;
	*b = t;
}

/* Reorders r[0..n) so that r[0..k) are its first k under met_rank_cmp, in
 * no particular order (k < n): quickselect, median of three pivots. The set
 * is the one a full sort would put first, since the order is total. */
static void
met_select(met_rank *r, size_t n, size_t k)
{
	size_t lo = 0, hi = n - 1;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2, st = lo;

		if (met_rank_cmp(&r[mid], &r[lo]) < 0)
			met_rank_swap(&r[mid], &r[lo]);
		if (met_rank_cmp(&r[hi], &r[lo]) < 0)
			met_rank_swap(&r[hi], &r[lo]);
		if (met_rank_cmp(&r[mid], &r[hi]) < 0)
			met_rank_swap(&r[mid], &r[hi]);
		/* r[hi] is the median of the three: the pivot */
		for (size_t i = lo; i < hi; i++)
			if (met_rank_cmp(&r[i], &r[hi]) < 0)
				met_rank_swap(&r[i], &r[st++]);
		met_rank_swap(&r[st], &r[hi]);
		/* r[lo..st) < r[st] < r(st..hi] */
		if (st == k)
			return;
		if (k < st)
			hi = st - 1;
		else
			lo = st + 1;
	}
}

static bool
met_caught(const met_card *c, metrics_rank by)
{
	return by == METRICS_BY_MODEL ? c->caught_m : by == METRICS_BY_SCORE_MODELLED ? c->caught_s
	                                                                              : c->caught;
}

/* The precision of the day's top k cards not caught before by one ranking,
 * marking the frauds in it caught (for that ranking); NaN if every card of
 * the day was caught. r has room for the day's cards. */
static double
met_day_topk(metrics *m, met_rank *r, metrics_rank by)
{
	size_t n = 0, k;
	uint32_t hits = 0;

	for (size_t i = 0; i < m->ntoday; i++) {
		const met_card *c = &m->cards[m->today[i]];

		if (met_caught(c, by))
			continue;
		r[n].id = c->pooled ? m->ids + c->id.off : c->id.inl;
		r[n].score = by == METRICS_BY_MODEL ? c->max_model : c->max_score;
		r[n].card = m->today[i];
		n++;
	}
	if (n == 0)
		return NAN;
	k = n < m->topk ? n : m->topk;
	if (k < n)
		met_select(r, n, k);
	for (size_t i = 0; i < k; i++) {
		met_card *c = &m->cards[r[i].card];

		if (c->fraud) {
			hits++;
			if (by == METRICS_BY_MODEL)
				c->caught_m = 1;
			else if (by == METRICS_BY_SCORE_MODELLED)
				c->caught_s = 1;
			else
				c->caught = 1;
		}
	}
	return (double)hits / (double)k;
}

/* Closes a day: precision of the top k cards not caught before, by the
 * score (and, on a day a model scored, by the score and by model.score
 * over those days alone: each ranking with its own caught cards, so the
 * two compare on the same days from the same start). */
static vigil_err
met_day_close(metrics *m)
{
	size_t n = m->ntoday, k, nfraud = 0, nscore = 0;
	met_rank *r;
	double p;

	if (n == 0) {
		m->day_modelled = false;
		return VIGIL_OK;
	}
	for (size_t i = 0; i < n; i++) {
		const met_card *c = &m->cards[m->today[i]];

		nscore += !c->caught;
		nfraud += c->fraud && !c->caught;
	}
	r = malloc(n * sizeof *r);
	if (r == NULL)
		return VIGIL_ENOMEM;
	if (nscore > 0) {
		k = nscore < m->topk ? nscore : m->topk;
		p = met_day_topk(m, r, METRICS_BY_SCORE);
		m->cp_sum += p;
		m->cp_best_sum += (double)(nfraud < k ? nfraud : k) / (double)k;
		m->cp_days++;
		m->cp_sum_by[METRICS_BY_SCORE] += p;
		m->cp_days_by[METRICS_BY_SCORE]++;
	}
	if (m->day_modelled) {
		for (int by = METRICS_BY_SCORE_MODELLED; by <= METRICS_BY_MODEL; by++) {
			p = met_day_topk(m, r, (metrics_rank)by);
			if (isnan(p))
				continue;
			m->cp_sum_by[by] += p;
			m->cp_days_by[by]++;
		}
	}
	m->ntoday = 0;
	m->day_modelled = false;
	free(r);
	return VIGIL_OK;
}

static uint32_t
met_lat_bucket(uint32_t v)
{
	int e;

	if (v < 128)
		return v;
	e = 31 - __builtin_clz(v);
	return 128 + (uint32_t)(e - 7) * 64 + ((v >> (e - 6)) & 63);
}

static uint32_t
met_lat_lo(uint32_t idx)
{
	uint32_t e, sub;

	if (idx < 128)
		return idx;
	e = (idx - 128) / 64 + 7;
	sub = (idx - 128) % 64;
	return (64 + sub) << (e - 6);
}

static inline const char *
met_card_id(const metrics *m, const met_card *c)
{
	return c->pooled ? m->ids + c->id.off : c->id.inl;
}

static inline uint64_t
met_hash(const char *id, size_t len)
{
	return XXH3_64bits(id, len);
}

/* Doubles the card table (the ids are hashed again: a rare event); today's
 * list follows its cards to their new slots. */
static vigil_err
met_cards_grow(metrics *m)
{
	uint32_t  ncap = m->cards_cap ? m->cards_cap * 2 : 4096, mask = ncap - 1;
	uint32_t *moved = NULL;
	met_card *nc;

	if (m->cards_cap >= (1u << 30))
		return VIGIL_ETOOBIG;
	nc = aligned_alloc(64, (size_t)ncap * sizeof *nc);
	if (nc == NULL || (m->ntoday > 0 && (moved = malloc(m->cards_cap * sizeof *moved)) == NULL)) {
		free(nc);
		return VIGIL_ENOMEM;
	}
	memset(nc, 0, (size_t)ncap * sizeof *nc);
	for (uint32_t i = 0; i < m->cards_cap; i++) {
		const char *id;
		uint32_t    p;

		if (!m->cards[i].used)
			continue;
		id = met_card_id(m, &m->cards[i]);
		for (p = (uint32_t)met_hash(id, strlen(id)) & mask; nc[p].used; p = (p + 1) & mask)
			;
		nc[p] = m->cards[i];
		if (moved != NULL)
			moved[i] = p;
	}
	for (size_t t = 0; t < m->ntoday; t++)
		m->today[t] = moved[m->today[t]];
	free(moved);
	free(m->cards);
	m->cards = nc;
	m->cards_cap = ncap;
	return VIGIL_OK;
}

void
metrics_prefetch(const metrics *m, const char *card_id)
{
	uint64_t h;

	if (m == NULL || card_id == NULL || m->cards_cap == 0)
		return;
	h = met_hash(card_id, strlen(card_id));
	__builtin_prefetch(&m->cards[(uint32_t)h & (m->cards_cap - 1)]);
}

/* The card's entry, added if new; NULL with *ret_err on failure. */
static met_card *
met_card_get(metrics *m, const char *id, vigil_err *ret_err)
{
	size_t    len = strlen(id);
	uint64_t  h = met_hash(id, len);
	uint32_t  tag = (uint32_t)(h >> 32), mask, p;
	met_card *c;

	if (m->cards_cap == 0 || 2 * ((uint64_t)m->ncards + 1) > m->cards_cap) {
		*ret_err = met_cards_grow(m);
		if (*ret_err != VIGIL_OK)
			return NULL;
	}
	mask = m->cards_cap - 1;
	for (p = (uint32_t)h & mask; m->cards[p].used; p = (p + 1) & mask) {
		c = &m->cards[p];
		if (c->tag != tag)
			continue;
		/* an inline id is NUL-terminated within MET_ID_INLINE bytes, so
		 * comparing len + 1 bytes also compares the lengths */
		if (len < MET_ID_INLINE ? !c->pooled && memcmp(c->id.inl, id, len + 1) == 0
		                        : c->pooled && strcmp(m->ids + c->id.off, id) == 0)
			return c;
	}
	/* new card in slot p, its id inline or into the pool */
	c = &m->cards[p];
	if (len < MET_ID_INLINE) {
		c->pooled = 0;
		memcpy(c->id.inl, id, len + 1);
	} else {
		vigil_err rv = vigil_array_reserve(&m->ids, &m->ids_cap, m->ids_len + len + 1, 1, 65536,
		    UINT32_MAX);

		if (rv != VIGIL_OK) {
			*ret_err = rv;
			return NULL;
		}
		c->pooled = 1;
		c->id.off = (uint32_t)m->ids_len;
		memcpy(m->ids + m->ids_len, id, len + 1);
		m->ids_len += len + 1;
	}
	c->used = 1;
	c->day = INT64_MIN;
	c->max_score = 0;
	c->max_model = -1;
	c->fraud = 0;
	c->caught = 0;
	c->caught_m = 0;
	c->caught_s = 0;
	c->tag = tag;
	m->ncards++;
	return c;
}

int32_t
metrics_rank_sub(double p)
{
	double k;

	if (isnan(p))
		return -1;
	if (p <= 0)
		return 0;
	if (p >= 1)
		return MET_RANK_SUB - 1;
	k = floor((log(p / (1 - p)) + 16.0) * 128.0);
	return k < 0 ? 0 : k > MET_RANK_SUB - 1 ? MET_RANK_SUB - 1 : (int32_t)k;
}

/* The bin of ranking r for key k (0..MET_RANK_SUB-1), made on first use. */
static met_score *
met_rank_bin(metrics *m, int r, int32_t k)
{
	met_score *b = m->rank[r][k];

	if (b == NULL) {
		b = calloc(1, sizeof *b);
		if (b == NULL)
			return NULL;
		b->score = k;
		m->rank[r][k] = b;
	}
	return b;
}

vigil_err
metrics_add(metrics *m, const metrics_obs *o)
{
	bool alert = o->decision >= VIGIL_DECISION_REVIEW;
	bool decline = o->decision >= VIGIL_DECISION_DECLINE;
	bool modelled = !isnan(o->model_score) && o->model_score >= 0;
	met_score *rb[METRICS_NRANKS] = { NULL };
	int pat = -1, nr = 1;
	met_score *s;
	int32_t whole;
	int64_t day;

	if (o->label == 1 && o->pattern != NULL && o->pattern[0] != '\0') {
		pat = met_pattern_index(m, o->pattern, true);
		if (pat == -2)
			return VIGIL_ENOMEM;
	}
	/* the distribution: whole-number scores */
	whole = isnan(o->score) ? 0 : o->score <= INT32_MIN ? INT32_MIN
	    : o->score >= INT32_MAX ? INT32_MAX : (int32_t)floor(o->score);
	if (whole >= MET_DIRECT_LO && whole < MET_DIRECT_HI)
		s = m->direct[whole - MET_DIRECT_LO];
	else
		HASH_FIND(hh, m->scores, &whole, sizeof whole, s);
	if (s == NULL) {
		if (m->nscores >= METRICS_MAX_SCORES)
			return VIGIL_ETOOBIG;
		s = calloc(1, sizeof *s);
		if (s == NULL)
			return VIGIL_ENOMEM;
		s->score = whole;
		HASH_ADD(hh, m->scores, score, sizeof s->score, s);
		if (!VIGIL_HASH_ADDED(s)) {
			free(s);
			return VIGIL_ENOMEM;
		}
		if (whole >= MET_DIRECT_LO && whole < MET_DIRECT_HI)
			m->direct[whole - MET_DIRECT_LO] = s;
		m->nscores++;
	}
	/* the rankings: the score (/ 100) and model.score, binned alike */
	{
		int32_t ks = metrics_rank_sub(o->score / 100.0);

		rb[METRICS_BY_SCORE] = met_rank_bin(m, METRICS_BY_SCORE, ks < 0 ? 0 : ks);
		if (modelled) {
			rb[METRICS_BY_SCORE_MODELLED] = met_rank_bin(m, METRICS_BY_SCORE_MODELLED,
			    ks < 0 ? 0 : ks);
			rb[METRICS_BY_MODEL] = met_rank_bin(m, METRICS_BY_MODEL,
			    metrics_rank_sub(o->model_score));
			nr = METRICS_NRANKS;
		}
		for (int r = 0; r < nr; r++)
			if (rb[r] == NULL)
				return VIGIL_ENOMEM;
	}
	/* card precision: per UTC day, the card's highest score (and model.score) */
	day = o->event_time_ms >= 0 ? o->event_time_ms / VIGIL_MS_PER_DAY
	    : -((-o->event_time_ms + VIGIL_MS_PER_DAY - 1) / VIGIL_MS_PER_DAY);
	if (day > m->day) {
		vigil_err rv = met_day_close(m);
		if (rv != VIGIL_OK)
			return rv;
		m->day = day;
	}
	m->day_modelled |= modelled;
	if (o->card_id != NULL && o->label != -1) {
		vigil_err rv = VIGIL_OK;
		met_card *c = met_card_get(m, o->card_id, &rv);
		float sc = (float)o->score, mc = modelled ? (float)o->model_score : -1;

		if (c == NULL)
			return rv;
		if (!(c->caught && c->caught_m && c->caught_s)) {
			if (c->day != m->day) {
				rv = vigil_array_reserve(&m->today, &m->today_cap, m->ntoday + 1,
				    sizeof *m->today, 4096, SIZE_MAX);
				if (rv != VIGIL_OK)
					return rv;
				m->today[m->ntoday++] = (uint32_t)(c - m->cards);
				c->day = m->day;
				c->max_score = sc;
				c->max_model = mc;
				c->fraud = 0;
			}
			if (sc > c->max_score)
				c->max_score = sc;
			if (mc > c->max_model)
				c->max_model = mc;
			if (o->label == 1)
				c->fraud = 1;
		}
	}
	if (modelled) {
		m->modelled++;
		m->modelled_labelled += o->label != -1;
	}
	m->total++;
	m->alerts += alert;
	m->declines += decline;
	switch (o->label) {
	case 1:
		s->fraud++;
		for (int r = 0; r < nr; r++)
			rb[r]->fraud++;
		m->labelled++;
		m->frauds++;
		if (alert)
			m->tp++;
		else
			m->fn++;
		m->decline_tp += decline;
		if (pat >= 0) {
			s->pat[pat]++;
			for (int r = 0; r < nr; r++)
				rb[r]->pat[pat]++;
			m->pat_rows[pat]++;
			m->pat_alerts[pat] += alert;
			m->pat_declines[pat] += decline;
		}
		break;
	case 0:
		s->legit++;
		for (int r = 0; r < nr; r++)
			rb[r]->legit++;
		m->labelled++;
		if (alert)
			m->fp++;
		else
			m->tn++;
		break;
	default:
		s->unlabelled++;
		for (int r = 0; r < nr; r++)
			rb[r]->unlabelled++;
		break;
	}
	for (uint32_t i = 0; i < o->nhits; i++) {
		uint16_t r = o->hits[i];
		if (r >= m->nrules)
			continue;
		m->rule_hits[r]++;
		if (o->label == 1)
			m->rule_fraud[r]++;
		else if (o->label == 0)
			m->rule_legit[r]++;
	}
	if (o->latency_us != 0) {
		m->lat[met_lat_bucket(o->latency_us)]++;
		m->lat_n++;
		if (o->latency_us > m->lat_max)
			m->lat_max = o->latency_us;
	}
	return VIGIL_OK;
}

static int
met_score_cmp(const void *a, const void *b)
{
	const met_score *x = *(met_score *const *)a, *y = *(met_score *const *)b;

	return x->score < y->score ? -1 : x->score > y->score;
}

vigil_err
metrics_finish(metrics *m)
{
	vigil_err rv;
	met_score *s, *tmp;
	uint32_t i = 0;

	if (m->finished)
		return VIGIL_OK;
	rv = met_day_close(m);
	if (rv != VIGIL_OK)
		return rv;
	m->sorted = malloc((m->nscores ? m->nscores : 1) * sizeof *m->sorted);
	if (m->sorted == NULL)
		return VIGIL_ENOMEM;
	HASH_ITER(hh, m->scores, s, tmp)
		m->sorted[i++] = s;
	qsort(m->sorted, m->nscores, sizeof *m->sorted, met_score_cmp);
	m->finished = true;
	return VIGIL_OK;
}

void
metrics_get_confusion(const metrics *m, metrics_confusion *ret)
{
	memset(ret, 0, sizeof *ret);
	ret->total = m->total;
	ret->labelled = m->labelled;
	ret->frauds = m->frauds;
	ret->tp = m->tp;
	ret->fp = m->fp;
	ret->tn = m->tn;
	ret->fn = m->fn;
	ret->alerts = m->alerts;
	ret->declines = m->declines;
	ret->decline_tp = m->decline_tp;
	ret->precision = met_ratio(m->tp, m->tp + m->fp);
	ret->recall = met_ratio(m->tp, m->tp + m->fn);
	ret->f1 = (isnan(ret->precision) || isnan(ret->recall) || ret->precision + ret->recall == 0)
	    ? NAN : 2 * ret->precision * ret->recall / (ret->precision + ret->recall);
	ret->alert_rate = met_ratio(m->alerts, m->total);
	ret->decline_rate = met_ratio(m->declines, m->total);
}

/* Positives of bin s for pattern index pat (-1 = all frauds). */
static uint64_t
met_pos(const met_score *s, int pat)
{
	return pat < 0 ? s->fraud : s->pat[pat];
}

static int
met_pat_arg(const metrics *m, const char *pattern)
{
	if (pattern == NULL)
		return -1;
	for (uint32_t i = 0; i < m->npat; i++)
		if (strcmp(m->pat_names[i], pattern) == 0)
			return (int)i;
	if (m->pat_names[METRICS_MAX_PATTERNS] != NULL && strcmp(pattern, "other") == 0)
		return METRICS_MAX_PATTERNS;
	return -2;
}

double
metrics_auc_by(const metrics *m, metrics_rank by, const char *pattern)
{
	int pat = met_pat_arg(m, pattern);
	uint64_t P = 0, N = 0, neg_below = 0;
	double sum = 0;

	if (!m->finished || pat == -2 || (unsigned)by >= METRICS_NRANKS)
		return NAN;
	for (uint32_t i = 0; i < MET_RANK_SUB; i++) {
		const met_score *s = m->rank[by][i];

		if (s == NULL)
			continue;
		P += met_pos(s, pat);
		N += s->legit;
	}
	if (P == 0 || N == 0)
		return NAN;
	for (uint32_t i = 0; i < MET_RANK_SUB; i++) {
		const met_score *s = m->rank[by][i];

		if (s == NULL)
			continue;
		sum += (double)met_pos(s, pat) * ((double)neg_below + 0.5 * (double)s->legit);
		neg_below += s->legit;
	}
	return sum / ((double)P * (double)N);
}

double
metrics_ap_by(const metrics *m, metrics_rank by, const char *pattern)
{
	int pat = met_pat_arg(m, pattern);
	uint64_t P = 0, tp = 0, fp = 0;
	double ap = 0, prev_recall = 0;

	if (!m->finished || pat == -2 || (unsigned)by >= METRICS_NRANKS)
		return NAN;
	for (uint32_t i = 0; i < MET_RANK_SUB; i++)
		if (m->rank[by][i] != NULL)
			P += met_pos(m->rank[by][i], pat);
	if (P == 0)
		return NAN;
	for (uint32_t i = MET_RANK_SUB; i-- > 0;) {
		const met_score *s = m->rank[by][i];
		double recall;

		if (s == NULL)
			continue;
		tp += met_pos(s, pat);
		fp += s->legit;
		if (tp + fp == 0)
			continue;
		recall = (double)tp / (double)P;
		ap += (recall - prev_recall) * ((double)tp / (double)(tp + fp));
		prev_recall = recall;
	}
	return ap;
}

double
metrics_auc(const metrics *m, const char *pattern)
{
	return metrics_auc_by(m, METRICS_BY_SCORE, pattern);
}

double
metrics_ap(const metrics *m, const char *pattern)
{
	return metrics_ap_by(m, METRICS_BY_SCORE, pattern);
}

uint64_t
metrics_modelled(const metrics *m, uint64_t *ret_labelled)
{
	if (ret_labelled != NULL)
		*ret_labelled = m->modelled_labelled;
	return m->modelled;
}

double
metrics_card_precision_by(const metrics *m, metrics_rank by, uint32_t *ret_days)
{
	if ((unsigned)by >= METRICS_NRANKS) {
		if (ret_days != NULL)
			*ret_days = 0;
		return NAN;
	}
	if (ret_days != NULL)
		*ret_days = m->cp_days_by[by];
	return m->cp_days_by[by] == 0 ? NAN : m->cp_sum_by[by] / m->cp_days_by[by];
}

double
metrics_card_precision(const metrics *m, uint32_t *ret_days)
{
	if (ret_days != NULL)
		*ret_days = m->cp_days;
	return m->cp_days == 0 ? NAN : m->cp_sum / m->cp_days;
}

double
metrics_card_precision_best(const metrics *m)
{
	return m->cp_days == 0 ? NAN : m->cp_best_sum / m->cp_days;
}

uint32_t
metrics_nrules(const metrics *m)
{
	return m->nrules;
}

vigil_err
metrics_set_rules(metrics *m, uint32_t n, const char *const *names)
{
	if (n > m->nrules)
		return VIGIL_EINVAL;
	for (uint32_t i = 0; i < n; i++) {
		char *s = strdup(names[i]);
		if (s == NULL)
			return VIGIL_ENOMEM;
		free(m->rule_names[i]);
		m->rule_names[i] = s;
	}
	for (uint32_t i = n; i < m->nrules; i++)
		free(m->rule_names[i]);
	m->nrules = n;
	return VIGIL_OK;
}

void
metrics_get_rule(const metrics *m, uint32_t i, metrics_rule *ret)
{
	ret->name = m->rule_names[i];
	ret->hits = m->rule_hits[i];
	ret->fraud_hits = m->rule_fraud[i];
	ret->legit_hits = m->rule_legit[i];
	ret->precision = met_ratio(ret->fraud_hits, ret->fraud_hits + ret->legit_hits);
}

uint32_t
metrics_npatterns(const metrics *m)
{
	return m->npat + (m->pat_names[METRICS_MAX_PATTERNS] != NULL);
}

void
metrics_get_pattern(const metrics *m, uint32_t i, metrics_pattern *ret)
{
	uint32_t idx = i < m->npat ? i : METRICS_MAX_PATTERNS;

	ret->name = m->pat_names[idx];
	ret->rows = m->pat_rows[idx];
	ret->alerts = m->pat_alerts[idx];
	ret->declines = m->pat_declines[idx];
	ret->recall = met_ratio(ret->alerts, ret->rows);
	ret->precision_vs_legit = met_ratio(ret->alerts, ret->alerts + m->fp);
	ret->auc = metrics_auc(m, ret->name);
	ret->ap = metrics_ap(m, ret->name);
}

uint32_t
metrics_nscores(const metrics *m)
{
	return m->finished ? m->nscores : 0;
}

void
metrics_get_score(const metrics *m, uint32_t i, metrics_score_bin *ret)
{
	const met_score *s = m->sorted[i];

	ret->score = s->score;
	ret->legit = s->legit;
	ret->fraud = s->fraud;
	ret->unlabelled = s->unlabelled;
}

int32_t
metrics_score_percentile(const metrics *m, double p)
{
	uint64_t rank, seen = 0;

	if (!m->finished || m->total == 0)
		return 0;
	rank = (uint64_t)ceil(p / 100.0 * (double)m->total);
	if (rank < 1)
		rank = 1;
	for (uint32_t i = 0; i < m->nscores; i++) {
		const met_score *s = m->sorted[i];
		seen += s->legit + s->fraud + s->unlabelled;
		if (seen >= rank)
			return s->score;
	}
	return m->sorted[m->nscores - 1]->score;
}

uint64_t
metrics_latency_count(const metrics *m)
{
	return m->lat_n;
}

uint32_t
metrics_latency_percentile(const metrics *m, double p)
{
	uint64_t rank, seen = 0;

	if (m->lat_n == 0)
		return 0;
	rank = (uint64_t)ceil(p / 100.0 * (double)m->lat_n);
	if (rank < 1)
		rank = 1;
	for (uint32_t i = 0; i < MET_LAT_BUCKETS; i++) {
		seen += m->lat[i];
		if (seen >= rank) {
			uint32_t lo = met_lat_lo(i);
			return lo < m->lat_max ? lo : m->lat_max;
		}
	}
	return m->lat_max;
}

uint32_t
metrics_latency_max(const metrics *m)
{
	return m->lat_max;
}

uint32_t
metrics_latency_nbuckets(void)
{
	return MET_LAT_BUCKETS;
}

void
metrics_latency_bucket(const metrics *m, uint32_t i, uint32_t *ret_lo, uint64_t *ret_n)
{
	*ret_lo = met_lat_lo(i);
	*ret_n = m->lat[i];
}

/* ------------------------------ output ------------------------------ */

static json_t *
met_num(double v)
{
	return isnan(v) || isinf(v) ? json_null() : json_real(v);
}

json_t *
metrics_to_json(const metrics *m)
{
	metrics_confusion c;
	json_t *o = json_object(), *rules = json_array(), *pats = json_array(), *hist = json_array();
	uint32_t days;
	double cp;

	if (o == NULL || rules == NULL || pats == NULL || hist == NULL) {
		json_decref(o);
		json_decref(rules);
		json_decref(pats);
		json_decref(hist);
		return NULL;
	}
	metrics_get_confusion(m, &c);
	cp = metrics_card_precision(m, &days);
	json_object_set_new(o, "rows", json_integer((json_int_t)c.total));
	json_object_set_new(o, "labelled", json_integer((json_int_t)c.labelled));
	json_object_set_new(o, "frauds", json_integer((json_int_t)c.frauds));
	json_object_set_new(o, "alerts", json_integer((json_int_t)c.alerts));
	json_object_set_new(o, "declines", json_integer((json_int_t)c.declines));
	json_object_set_new(o, "alert_rate", met_num(c.alert_rate));
	json_object_set_new(o, "decline_rate", met_num(c.decline_rate));
	json_object_set_new(o, "confusion", json_pack("{s:I,s:I,s:I,s:I}",
	    "tp", (json_int_t)c.tp, "fp", (json_int_t)c.fp, "tn", (json_int_t)c.tn,
	    "fn", (json_int_t)c.fn));
	json_object_set_new(o, "precision", met_num(c.precision));
	json_object_set_new(o, "recall", met_num(c.recall));
	json_object_set_new(o, "f1", met_num(c.f1));
	json_object_set_new(o, "roc_auc", met_num(metrics_auc(m, NULL)));
	json_object_set_new(o, "average_precision", met_num(metrics_ap(m, NULL)));
	json_object_set_new(o, "card_precision_topk", json_pack("{s:I,s:o,s:o,s:I}",
	    "k", (json_int_t)m->topk, "value", met_num(cp),
	    "best_possible", met_num(metrics_card_precision_best(m)), "days", (json_int_t)days));
	{
		/* the rows a model scored, ranked by the score and by model.score alone */
		uint64_t ml = 0, mn = metrics_modelled(m, &ml);
		json_t *mo = json_pack("{s:I,s:I}", "rows", (json_int_t)mn, "labelled", (json_int_t)ml);
		static const struct {
			const char  *name;
			metrics_rank by;
		} rk[] = { { "by_score", METRICS_BY_SCORE_MODELLED }, { "by_model_score", METRICS_BY_MODEL } };

		for (size_t i = 0; mo != NULL && i < sizeof rk / sizeof rk[0]; i++) {
			uint32_t d = 0;
			double v = metrics_card_precision_by(m, rk[i].by, &d);

			json_object_set_new(mo, rk[i].name, json_pack("{s:o,s:o,s:{s:I,s:o,s:I}}",
			    "roc_auc", met_num(metrics_auc_by(m, rk[i].by, NULL)),
			    "average_precision", met_num(metrics_ap_by(m, rk[i].by, NULL)),
			    "card_precision_topk", "k", (json_int_t)m->topk, "value", met_num(v),
			    "days", (json_int_t)d));
		}
		json_object_set_new(o, "modelled", mo);
	}
	for (uint32_t i = 0; i < m->nrules; i++) {
		metrics_rule r;
		metrics_get_rule(m, i, &r);
		json_array_append_new(rules, json_pack("{s:s,s:I,s:I,s:I,s:o}", "name", r.name,
		    "hits", (json_int_t)r.hits, "fraud_hits", (json_int_t)r.fraud_hits,
		    "legit_hits", (json_int_t)r.legit_hits, "precision", met_num(r.precision)));
	}
	json_object_set_new(o, "rules", rules);
	for (uint32_t i = 0; i < metrics_npatterns(m); i++) {
		metrics_pattern p;
		metrics_get_pattern(m, i, &p);
		json_array_append_new(pats, json_pack("{s:s,s:I,s:I,s:I,s:o,s:o,s:o,s:o,s:o,s:o}",
		    "name", p.name, "rows", (json_int_t)p.rows, "alerts", (json_int_t)p.alerts,
		    "declines", (json_int_t)p.declines, "recall", met_num(p.recall),
		    "precision_vs_legit", met_num(p.precision_vs_legit), "roc_auc", met_num(p.auc),
		    "average_precision", met_num(p.ap),
		    "model_roc_auc", met_num(metrics_auc_by(m, METRICS_BY_MODEL, p.name)),
		    "model_average_precision", met_num(metrics_ap_by(m, METRICS_BY_MODEL, p.name))));
	}
	json_object_set_new(o, "patterns", pats);
	for (uint32_t i = 0; i < metrics_nscores(m); i++) {
		metrics_score_bin b;
		metrics_get_score(m, i, &b);
		json_array_append_new(hist, json_pack("{s:i,s:I,s:I,s:I}", "score", (int)b.score,
		    "legit", (json_int_t)b.legit, "fraud", (json_int_t)b.fraud,
		    "unlabelled", (json_int_t)b.unlabelled));
	}
	json_object_set_new(o, "score", json_pack("{s:i,s:i,s:i,s:i,s:o}",
	    "p50", (int)metrics_score_percentile(m, 50), "p90", (int)metrics_score_percentile(m, 90),
	    "p99", (int)metrics_score_percentile(m, 99), "max", (int)metrics_score_percentile(m, 100),
	    "histogram", hist));
	if (m->lat_n > 0)
		json_object_set_new(o, "latency_us", json_pack("{s:I,s:i,s:i,s:i,s:i,s:i}",
		    "count", (json_int_t)m->lat_n,
		    "p50", (int)metrics_latency_percentile(m, 50),
		    "p90", (int)metrics_latency_percentile(m, 90),
		    "p99", (int)metrics_latency_percentile(m, 99),
		    "p999", (int)metrics_latency_percentile(m, 99.9),
		    "max", (int)m->lat_max));
	return o;
}

static void
met_pct(FILE *out, double v)
{
	if (isnan(v))
		fprintf(out, "     n/a");
	else
		fprintf(out, " %6.2f%%", 100.0 * v);
}

static void
met_num4(FILE *out, double v)
{
	if (isnan(v))
		fprintf(out, "   n/a");
	else
		fprintf(out, "%.4f", v);
}

/* The rows a model scored: the score beside model.score alone. */
static void
met_print_modelled(const metrics *m, FILE *out)
{
	static const struct {
		const char  *name;
		metrics_rank by;
	} rk[] = { { "score", METRICS_BY_SCORE_MODELLED }, { "model.score", METRICS_BY_MODEL } };
	uint64_t ml = 0, mn = metrics_modelled(m, &ml);

	if (mn == 0) {
		fprintf(out, "model         no row scored by a model\n");
		return;
	}
	fprintf(out, "model         %" PRIu64 " rows scored by a model (%" PRIu64 " labelled), ranked by\n",
	    mn, ml);
	for (size_t i = 0; i < sizeof rk / sizeof rk[0]; i++) {
		uint32_t d = 0;
		double v = metrics_card_precision_by(m, rk[i].by, &d);

		fprintf(out, "  %-12s ROC AUC ", rk[i].name);
		met_num4(out, metrics_auc_by(m, rk[i].by, NULL));
		fprintf(out, "   average precision ");
		met_num4(out, metrics_ap_by(m, rk[i].by, NULL));
		fprintf(out, "   card precision top %" PRIu32 "/day", m->topk);
		met_pct(out, v);
		fprintf(out, " (%" PRIu32 " days)\n", d);
	}
}

void
metrics_print(const metrics *m, FILE *out)
{
	metrics_confusion c;
	uint32_t days;
	double cp = metrics_card_precision(m, &days), auc = metrics_auc(m, NULL),
	    ap = metrics_ap(m, NULL);

	metrics_get_confusion(m, &c);
	fprintf(out, "decisions     %" PRIu64 " rows: alert rate", c.total);
	met_pct(out, c.alert_rate);
	fprintf(out, " (%" PRIu64 "), decline rate", c.alerts);
	met_pct(out, c.decline_rate);
	fprintf(out, " (%" PRIu64 ")\n", c.declines);
	if (c.labelled == 0) {
		fprintf(out, "labels        none: no detection metrics\n");
	} else {
		fprintf(out, "labels        %" PRIu64 " labelled, %" PRIu64 " fraudulent\n",
		    c.labelled, c.frauds);
		fprintf(out, "confusion     (alert = review or decline)\n"
		    "                     alert     allow\n"
		    "  fraud        %10" PRIu64 " %9" PRIu64 "\n"
		    "  legit        %10" PRIu64 " %9" PRIu64 "\n", c.tp, c.fn, c.fp, c.tn);
		fprintf(out, "precision    ");
		met_pct(out, c.precision);
		fprintf(out, "   recall");
		met_pct(out, c.recall);
		fprintf(out, "   F1 ");
		if (isnan(c.f1))
			fprintf(out, "n/a\n");
		else
			fprintf(out, "%.4f\n", c.f1);
		fprintf(out, "score         ROC AUC ");
		if (isnan(auc))
			fprintf(out, "n/a (one class only)");
		else
			fprintf(out, "%.4f", auc);
		fprintf(out, "   average precision ");
		if (isnan(ap))
			fprintf(out, "n/a\n");
		else
			fprintf(out, "%.4f\n", ap);
		fprintf(out, "card precision top %" PRIu32 "/day", m->topk);
		met_pct(out, cp);
		fprintf(out, " (mean over %" PRIu32 " days; best possible", days);
		met_pct(out, metrics_card_precision_best(m));
		fprintf(out, ")\n");
		met_print_modelled(m, out);
	}
	fprintf(out, "score dist    p50 %d  p90 %d  p99 %d  max %d\n",
	    (int)metrics_score_percentile(m, 50), (int)metrics_score_percentile(m, 90),
	    (int)metrics_score_percentile(m, 99), (int)metrics_score_percentile(m, 100));
	if (m->lat_n > 0)
		fprintf(out, "latency (us)  p50 %u  p90 %u  p99 %u  p99.9 %u  max %u (%" PRIu64 " samples)\n",
		    metrics_latency_percentile(m, 50), metrics_latency_percentile(m, 90),
		    metrics_latency_percentile(m, 99), metrics_latency_percentile(m, 99.9),
		    m->lat_max, m->lat_n);
	if (m->nrules > 0) {
		fprintf(out, "rules         %-32s %10s %10s %10s\n", "", "hits", "fraud", "precision");
		for (uint32_t i = 0; i < m->nrules; i++) {
			metrics_rule r;
			metrics_get_rule(m, i, &r);
			fprintf(out, "  %-43s %10" PRIu64 " %10" PRIu64 "  ", r.name, r.hits, r.fraud_hits);
			met_pct(out, r.precision);
			fputc('\n', out);
		}
	}
	if (metrics_npatterns(m) > 0) {
		fprintf(out, "fraud patterns%-31s %10s %10s %9s %8s %8s\n", "", "frauds", "alerted",
		    "recall", "AUC", "AP");
		for (uint32_t i = 0; i < metrics_npatterns(m); i++) {
			metrics_pattern p;
			metrics_get_pattern(m, i, &p);
			fprintf(out, "  %-43s %10" PRIu64 " %10" PRIu64 " ", p.name, p.rows, p.alerts);
			met_pct(out, p.recall);
			if (isnan(p.auc))
				fprintf(out, "      n/a      n/a\n");
			else
				fprintf(out, " %8.4f %8.4f\n", p.auc, p.ap);
		}
	}
}
