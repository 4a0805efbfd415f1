/* SPDX-License-Identifier: MIT */
/*
 * batch/agg.c - per-entity accumulators: what one card, merchant or
 * terminal needs to turn a stream of its scored transactions into the
 * profile store/ serves (store_card_profile, store_entity_profile).
 *
 * Memory is per entity and capped: a card keeps at most
 * BATCH_CARD_MAX_SAMPLES amounts (the ones with the smallest hash of their
 * txn_id, so the choice does not depend on order), BATCH_CARD_MAX_MERCH
 * distinct merchants and BATCH_CARD_MAX_COUNTRY countries. Card sums use
 * doubles in archive order, which every partitioning preserves (a card's
 * records all go to one partition, read in archive order); merchant and
 * terminal accumulators are integers so partial results merge exactly.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "days.h"
#include "int.h"
#include "vec.h"

_Static_assert(sizeof(batch_sample) == 16 && sizeof(batch_merch_cnt) == 16,
    "the card pool's arrays hold 16-byte elements");
_Static_assert((4u << (BATCH_POOL_CLASSES - 1)) >= BATCH_CARD_MAX_MERCH &&
    (4u << (BATCH_POOL_CLASSES - 1)) >= BATCH_CARD_MAX_SAMPLES, "pool classes too small");

static const int64_t window_days[BATCH_NW] = { 7, 30, 90 };
static const int64_t mature_days[BATCH_NM] = { 7, 30 };

void
batch_windows_init(batch_windows *w, int64_t as_of, int64_t window_ms)
{
	w->as_of = as_of;
	w->from = as_of - window_ms;
	for (int k = 0; k < BATCH_NW; k++) {
		int64_t s = as_of - window_days[k] * VIGIL_MS_PER_DAY;
		w->start[k] = s < w->from ? w->from : s;
	}
	batch_windows_mature(w, 0);
}

void
batch_windows_mature(batch_windows *w, int64_t maturity_ms)
{
	w->mature_to = w->as_of - maturity_ms;
	for (int k = 0; k < BATCH_NM; k++) {
		int64_t s = w->mature_to - mature_days[k] * VIGIL_MS_PER_DAY;
		w->mature_start[k] = s < w->from ? w->from : s;
	}
}

static size_t
big_round(size_t n)
{
	return (n + BATCH_BIG_ALIGN - 1) & ~(BATCH_BIG_ALIGN - 1);
}

void *
batch_big_alloc(size_t n)
{
	size_t len, head;
	uintptr_t a;
	void *m;

	if (n == 0 || n > SIZE_MAX - 2 * BATCH_BIG_ALIGN)
		return NULL;
	n = big_round(n);
	len = n + BATCH_BIG_ALIGN;
	m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return NULL;
	/* Keep the 2 MiB-aligned n bytes inside, return the rest. */
	a = ((uintptr_t)m + BATCH_BIG_ALIGN - 1) & ~(uintptr_t)(BATCH_BIG_ALIGN - 1);
	head = a - (uintptr_t)m;
	if (head > 0)
		munmap(m, head);
	if (len - head > n)
		munmap((char *)a + n, len - head - n);
#ifdef MADV_HUGEPAGE
	(void)madvise((void *)a, n, MADV_HUGEPAGE);
#endif
	return (void *)a;
}

void
batch_big_free(void *p, size_t n)
{
	if (p != NULL)
		munmap(p, big_round(n));
}

/* 16-aligned bytes from p's current slab (a new slab if it is short). */
static void *
pool_bump(batch_pool *p, size_t n)
{
	void *r;

	n = (n + 15) & ~(size_t)15;
	if (n > p->left) {
		unsigned char *slab = batch_big_alloc(BATCH_POOL_SLAB);

		if (slab == NULL)
			return NULL;
		memcpy(slab, &p->slabs, sizeof p->slabs);
		p->slabs = slab;
		p->cur = slab + 16; /* the link, kept 16-aligned */
		p->left = BATCH_POOL_SLAB - 16;
	}
	r = p->cur;
	p->cur += n;
	p->left -= n;
	return r;
}

void *
batch_pool_alloc(batch_pool *p, size_t n)
{
	if (n > BATCH_POOL_SLAB - 16)
		return NULL;
	return pool_bump(p, n);
}

/* Size class of an array of cap elements (cap = 4 << k). */
static unsigned
pool_class(uint32_t cap)
{
	unsigned k = 0;

	while ((4u << k) < cap)
		k++;
	return k;
}

static void *
pool_array(batch_pool *p, uint32_t cap)
{
	unsigned k = pool_class(cap);
	void *b = p->free_[k];

	if (b != NULL) {
		memcpy(&p->free_[k], b, sizeof(void *));
		return b;
	}
	return pool_bump(p, (size_t)16 << (k + 2));
}

static void
pool_array_free(batch_pool *p, void *b, uint32_t cap)
{
	unsigned k;

	if (b == NULL)
		return;
	k = pool_class(cap);
	memcpy(b, &p->free_[k], sizeof(void *));
	p->free_[k] = b;
}

void
batch_pool_fini(batch_pool *p)
{
	void *s = p->slabs, *next;

	while (s != NULL) {
		memcpy(&next, s, sizeof next);
		batch_big_free(s, BATCH_POOL_SLAB);
		s = next;
	}
	memset(p, 0, sizeof *p);
}

batch_card *
batch_card_new(batch_pool *pool, const char *key, size_t len)
{
	/* The key lives right before the struct: one allocation, and the key
	 * compared on lookup shares a cache line with the first fields. */
	size_t room = batch_node_key_room(len);
	char *base;
	batch_card *c;

	if (pool != NULL) {
		base = pool_bump(pool, room + sizeof(batch_card)); /* zeroed: fresh slab bytes */
	} else {
		base = calloc(1, room + sizeof(batch_card));
	}
	if (base == NULL)
		return NULL;
	c = (batch_card *)(base + room);
	c->key = base;
	memcpy(c->key, key, len);
	c->key[len] = '\0';
	c->first_seen = INT64_MAX;
	c->max90 = -INFINITY;
	c->pool = pool;
	c->country = c->country_inline;
	c->cap_country = BATCH_CARD_INLINE_COUNTRY;
	return c;
}

void
batch_card_free(batch_card *c)
{
	if (c == NULL)
		return;
	if (c->pool != NULL) {
		pool_array_free(c->pool, c->samples, c->cap_samples);
		pool_array_free(c->pool, c->merch, c->cap_merch);
		if (c->country != c->country_inline)
			pool_array_free(c->pool, c->country, c->cap_country / 2);
		return;
	}
	free(c->samples);
	free(c->merch);
	if (c->country != c->country_inline)
		free(c->country);
	free(c->key);
}

batch_ent_node *
batch_ent_node_new(const char *key, size_t len)
{
	size_t room = batch_node_key_room(len);
	char *base = calloc(1, room + sizeof(batch_ent_node));
	batch_ent_node *e;

	if (base == NULL)
		return NULL;
	e = (batch_ent_node *)(base + room);
	e->key = base;
	memcpy(e->key, key, len);
	e->key[len] = '\0';
	return e;
}

void
batch_ent_node_free(batch_ent_node *e)
{
	if (e != NULL)
		free(e->key);
}

size_t
batch_card_bytes(const batch_card *c)
{
	return sizeof *c + strlen(c->key) + 1 +
	    c->cap_samples * sizeof(batch_sample) + c->cap_merch * sizeof(batch_merch_cnt) +
	    (c->country != c->country_inline ? c->cap_country * sizeof(batch_country_cnt) : 0);
}

/* Grows *arr (elements of size sz: 16 when pooled) to hold at least need,
 * at most cap (a power of two, as every capacity is). */
static vigil_err
card_grow(batch_pool *pool, void **arr, uint32_t *capp, uint32_t need, uint32_t cap,
    size_t sz)
{
	size_t nc;
	void  *p;

	if (need <= *capp)
		return VIGIL_OK;
	nc = vigil_array_grown(*capp, need, 4, cap);
	if (nc == 0)
		return VIGIL_ETOOBIG;
	if (pool != NULL) {
		p = pool_array(pool, nc);
		if (p == NULL)
			return VIGIL_ENOMEM;
		if (*capp > 0)
			memcpy(p, *arr, (size_t)*capp * sz);
		pool_array_free(pool, *arr, *capp);
		*arr = p;
	} else if (vigil_array_resize(arr, nc, sz) != VIGIL_OK) {
		return VIGIL_ENOMEM;
	}
	*capp = (uint32_t)nc;
	return VIGIL_OK;
}

/* Max-heap on h: the root is the largest kept hash, evicted first. */
static void
heap_sift_down(batch_sample *s, uint32_t n, uint32_t i)
{
	for (;;) {
		uint32_t l = 2 * i + 1, r = l + 1, m = i;
		batch_sample t;

		if (l < n && s[l].h > s[m].h)
			m = l;
		if (r < n && s[r].h > s[m].h)
			m = r;
		if (m == i)
			return;
		t = s[i]; s[i] = s[m]; s[m] = t;
		i = m;
	}
}

static vigil_err
card_sample(batch_card *c, uint64_t h, double amount)
{
	vigil_err rv;
	uint32_t i;

	if (c->nsamples < BATCH_CARD_MAX_SAMPLES) {
		rv = card_grow(c->pool, (void **)&c->samples, &c->cap_samples, c->nsamples + 1,
		    BATCH_CARD_MAX_SAMPLES, sizeof(batch_sample));
		if (rv != VIGIL_OK)
			return rv;
		i = c->nsamples++;
		c->samples[i].h = h;
		c->samples[i].amount = amount;
		while (i > 0 && c->samples[(i - 1) / 2].h < c->samples[i].h) {
			batch_sample t = c->samples[i];
			c->samples[i] = c->samples[(i - 1) / 2];
			c->samples[(i - 1) / 2] = t;
			i = (i - 1) / 2;
		}
		return VIGIL_OK;
	}
	if (h >= c->samples[0].h)
		return VIGIL_OK;
	c->samples[0].h = h;
	c->samples[0].amount = amount;
	heap_sift_down(c->samples, c->nsamples, 0);
	return VIGIL_OK;
}

static vigil_err
card_merchant(batch_card *c, uint64_t h)
{
	uint32_t lo = 0, hi = c->nmerch;
	vigil_err rv;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (c->merch[mid].h < h)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < c->nmerch && c->merch[lo].h == h) {
		c->merch[lo].n++;
		return VIGIL_OK;
	}
	if (c->nmerch >= BATCH_CARD_MAX_MERCH) {
		c->merch_saturated = true;
		return VIGIL_OK;
	}
	rv = card_grow(c->pool, (void **)&c->merch, &c->cap_merch, c->nmerch + 1,
	    BATCH_CARD_MAX_MERCH, sizeof(batch_merch_cnt));
	if (rv != VIGIL_OK)
		return rv;
	memmove(&c->merch[lo + 1], &c->merch[lo], (c->nmerch - lo) * sizeof c->merch[0]);
	c->merch[lo].h = h;
	c->merch[lo].n = 1;
	c->nmerch++;
	return VIGIL_OK;
}

/* Doubles the room for countries (out of the node: pool arrays of 16-byte
 * elements hold two each). */
static vigil_err
card_country_grow(batch_card *c)
{
	uint32_t nc = c->cap_country * 2;
	batch_country_cnt *p = c->country;

	_Static_assert(sizeof(batch_country_cnt) == 8, "two countries per pool element");
	if (c->pool != NULL) {
		p = pool_array(c->pool, nc / 2);
		if (p == NULL)
			return VIGIL_ENOMEM;
		memcpy(p, c->country, c->ncountry * sizeof *p);
		if (c->country != c->country_inline)
			pool_array_free(c->pool, c->country, c->cap_country / 2);
	} else if (c->country == c->country_inline) {
		p = malloc(nc * sizeof *p);
		if (p == NULL)
			return VIGIL_ENOMEM;
		memcpy(p, c->country, c->ncountry * sizeof *p);
	} else if (vigil_array_resize(&p, nc, sizeof *p) != VIGIL_OK) {
		return VIGIL_ENOMEM;
	}
	c->country = p;
	c->cap_country = nc;
	return VIGIL_OK;
}

static vigil_err
card_country(batch_card *c, const char *cc)
{
	if (cc == NULL || cc[0] == '\0' || cc[1] == '\0')
		return VIGIL_OK;
	for (uint32_t i = 0; i < c->ncountry; i++) {
		if (c->country[i].cc[0] == cc[0] && c->country[i].cc[1] == cc[1]) {
			c->country[i].n++;
			return VIGIL_OK;
		}
	}
	if (c->ncountry >= BATCH_CARD_MAX_COUNTRY)
		return VIGIL_OK;
	if (c->ncountry == c->cap_country) {
		vigil_err rv = card_country_grow(c);

		if (rv != VIGIL_OK)
			return rv;
	}
	c->country[c->ncountry].cc[0] = cc[0];
	c->country[c->ncountry].cc[1] = cc[1];
	c->country[c->ncountry].n = 1;
	c->ncountry++;
	return VIGIL_OK;
}

vigil_err
batch_card_add(batch_card *c, const batch_windows *w, const batch_event *e)
{
	vigil_err rv;
	double d;

	if (e->t < c->first_seen)
		c->first_seen = e->t;
	for (int k = 0; k < BATCH_NW; k++) {
		if (e->t >= w->start[k]) {
			c->count[k]++;
			c->sum[k] += e->amount;
		}
	}
	if (e->t >= w->start[BATCH_W30]) {
		d = e->amount - c->mean30;
		c->mean30 += d / c->count[BATCH_W30];
		c->m2_30 += d * (e->amount - c->mean30);
	}
	if (e->t < w->start[BATCH_W90])
		return VIGIL_OK;
	d = e->amount - c->mean90;
	c->mean90 += d / c->count[BATCH_W90];
	c->m2_90 += d * (e->amount - c->mean90);
	if (e->amount > c->max90)
		c->max90 = e->amount;
	c->hour[(e->t % VIGIL_MS_PER_DAY + VIGIL_MS_PER_DAY) % VIGIL_MS_PER_DAY / 3600000]++;
	if (e->label == 1)
		c->fraud90++;
	rv = card_country(c, e->country);
	if (rv != VIGIL_OK)
		return rv;
	rv = card_sample(c, e->txn_h, e->amount);
	if (rv != VIGIL_OK)
		return rv;
	return card_merchant(c, e->merch_h);
}

/* Chan et al.'s pairwise update: (mean, m2) of na values and (mb, m2b)
 * of nb more become those of all na + nb. */
static void
welford_merge(double *mean, double *m2, uint32_t na, double mb, double m2b, uint32_t nb)
{
	double n = (double)na + (double)nb, d;

	if (nb == 0)
		return;
	if (na == 0) {
		*mean = mb;
		*m2 = m2b;
		return;
	}
	d = mb - *mean;
	*mean += d * (double)nb / n;
	*m2 += m2b + d * d * (double)na * (double)nb / n;
}

static vigil_err
card_merch_merge(batch_card *dst, const batch_card *src)
{
	vigil_err rv;

	if (src->merch_saturated)
		dst->merch_saturated = true;
	for (uint32_t i = 0; i < src->nmerch; i++) {
		uint32_t before = dst->nmerch, lo = 0, hi = dst->nmerch;

		while (lo < hi) {
			uint32_t mid = lo + (hi - lo) / 2;

			if (dst->merch[mid].h < src->merch[i].h)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo < dst->nmerch && dst->merch[lo].h == src->merch[i].h) {
			dst->merch[lo].n += src->merch[i].n;
			continue;
		}
		rv = card_merchant(dst, src->merch[i].h); /* inserts it with 1, or saturates */
		if (rv != VIGIL_OK)
			return rv;
		if (dst->nmerch > before)
			dst->merch[lo].n = src->merch[i].n;
	}
	return VIGIL_OK;
}

vigil_err
batch_card_merge_day(batch_card *dst, const batch_windows *w, int64_t day, const batch_card *src)
{
	uint32_t n = src->count[BATCH_W90]; /* every window of a day aggregate holds the day */
	vigil_err rv;

	if (src->first_seen < dst->first_seen)
		dst->first_seen = src->first_seen;
	for (int k = 0; k < BATCH_NW; k++) {
		if (day >= w->start[k]) {
			dst->count[k] += n;
			dst->sum[k] += src->sum[k];
		}
	}
	if (day >= w->start[BATCH_W30])
		welford_merge(&dst->mean30, &dst->m2_30, dst->count[BATCH_W30] - n, src->mean30,
		    src->m2_30, n);
	if (day < w->start[BATCH_W90])
		return VIGIL_OK;
	welford_merge(&dst->mean90, &dst->m2_90, dst->count[BATCH_W90] - n, src->mean90,
	    src->m2_90, n);
	if (src->max90 > dst->max90)
		dst->max90 = src->max90;
	for (int h = 0; h < 24; h++)
		dst->hour[h] += src->hour[h];
	dst->fraud90 += src->fraud90;
	for (uint32_t i = 0; i < src->ncountry; i++) {
		const batch_country_cnt *sc = &src->country[i];
		uint32_t j = 0;

		while (j < dst->ncountry && (dst->country[j].cc[0] != sc->cc[0] ||
		    dst->country[j].cc[1] != sc->cc[1]))
			j++;
		if (j == dst->ncountry) {
			if (dst->ncountry >= BATCH_CARD_MAX_COUNTRY)
				continue;
			if (dst->ncountry == dst->cap_country) {
				rv = card_country_grow(dst);
				if (rv != VIGIL_OK)
					return rv;
			}
			dst->country[j] = *sc;
			dst->country[j].n = 0;
			dst->ncountry++;
		}
		dst->country[j].n += sc->n;
	}
	for (uint32_t i = 0; i < src->nsamples; i++) {
		rv = card_sample(dst, src->samples[i].h, src->samples[i].amount);
		if (rv != VIGIL_OK)
			return rv;
	}
	return card_merch_merge(dst, src);
}

static int
dbl_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static int
merch_top_cmp(const void *a, const void *b)
{
	const batch_merch_cnt *x = a, *y = b;

	if (x->n != y->n)
		return x->n > y->n ? -1 : 1;
	return (x->h > y->h) - (x->h < y->h);
}

static int
country_top_cmp(const void *a, const void *b)
{
	const batch_country_cnt *x = a, *y = b;

	if (x->n != y->n)
		return x->n > y->n ? -1 : 1;
	return memcmp(x->cc, y->cc, 2);
}

/*
 * Sorts for batch_card_profile. Most cards hold a few dozen values at most,
 * where an insertion sort beats qsort's call per comparison; each order is
 * total (distinct hashes, distinct codes; amounts are never NaN), so the
 * result is the same whatever the algorithm.
 */
#define SMALL_SORT 32

static void
sort_amounts(double *v, uint32_t n)
{
	if (n > SMALL_SORT) {
		qsort(v, n, sizeof v[0], dbl_cmp);
		return;
	}
	for (uint32_t i = 1; i < n; i++) {
		double x = v[i];
		uint32_t j = i;

		for (; j > 0 && v[j - 1] > x; j--)
			v[j] = v[j - 1];
		v[j] = x;
	}
}

static void
sort_merch_top(batch_merch_cnt *v, uint32_t n)
{
	if (n > SMALL_SORT) {
		qsort(v, n, sizeof v[0], merch_top_cmp);
		return;
	}
	for (uint32_t i = 1; i < n; i++) {
		batch_merch_cnt x = v[i];
		uint32_t j = i;

		for (; j > 0 && merch_top_cmp(&v[j - 1], &x) > 0; j--)
			v[j] = v[j - 1];
		v[j] = x;
	}
}

static void
sort_country_top(batch_country_cnt *v, uint32_t n)
{
	if (n > SMALL_SORT) {
		qsort(v, n, sizeof v[0], country_top_cmp);
		return;
	}
	for (uint32_t i = 1; i < n; i++) {
		batch_country_cnt x = v[i];
		uint32_t j = i;

		for (; j > 0 && country_top_cmp(&v[j - 1], &x) > 0; j--)
			v[j] = v[j - 1];
		v[j] = x;
	}
}

/* Nearest rank over sorted v[0..n): smallest x with count(<= x) >= p% of n. */
static double
nearest_rank(const double *v, uint32_t n, double p)
{
	double r = ceil(p / 100.0 * n - 1e-9);
	uint32_t k = r < 1.0 ? 1 : (uint32_t)r;

	return v[(k > n ? n : k) - 1];
}

/* card.top_merchant_share_90d: the share of the card's 90 days spent at
 * the merchant it used most, top[0] of the merchants sorted by count (1 for
 * a card that only ever pays one merchant, near 0 for one spread over
 * many). A card past BATCH_CARD_MAX_MERCH merchants counts the ones it
 * tracks. */
static double
card_top_merchant_share(const batch_card *c, const batch_merch_cnt *top)
{
	if (c->nmerch == 0 || c->count[BATCH_W90] == 0)
		return 0.0;
	return (double)top[0].n / c->count[BATCH_W90];
}

void
batch_card_profile(const batch_card *c, store_card_profile *ret_p)
{
	store_card_profile p;
	double amounts[BATCH_CARD_MAX_SAMPLES];
	batch_merch_cnt top[BATCH_CARD_MAX_MERCH];
	batch_country_cnt ctop[BATCH_CARD_MAX_COUNTRY];

	memset(&p, 0, sizeof p);
	p.count_7d = c->count[BATCH_W7];
	p.count_30d = c->count[BATCH_W30];
	p.count_90d = c->count[BATCH_W90];
	p.amount_sum_7d = c->sum[BATCH_W7];
	p.amount_sum_30d = c->sum[BATCH_W30];
	p.amount_sum_90d = c->sum[BATCH_W90];
	p.amount_mean_7d = p.count_7d ? p.amount_sum_7d / p.count_7d : 0.0;
	p.amount_mean_30d = p.count_30d ? p.amount_sum_30d / p.count_30d : 0.0;
	p.amount_mean_90d = p.count_90d ? p.amount_sum_90d / p.count_90d : 0.0;
	/* Population standard deviation (n in the denominator). */
	p.amount_std_30d = p.count_30d ? sqrt(c->m2_30 / p.count_30d) : 0.0;
	p.amount_std_90d = p.count_90d ? sqrt(c->m2_90 / p.count_90d) : 0.0;
	if (c->nsamples > 0) {
		for (uint32_t i = 0; i < c->nsamples; i++)
			amounts[i] = c->samples[i].amount;
		sort_amounts(amounts, c->nsamples);
		p.amount_p50_90d = nearest_rank(amounts, c->nsamples, 50);
		p.amount_p95_90d = nearest_rank(amounts, c->nsamples, 95);
		p.amount_p99_90d = nearest_rank(amounts, c->nsamples, 99);
	}
	p.amount_max_90d = p.count_90d ? c->max90 : 0.0;
	p.distinct_merchants_90d = c->nmerch;
	p.distinct_countries_90d = c->ncountry;
	p.first_seen_ms = c->first_seen == INT64_MAX ? 0 : c->first_seen;
	p.fraud_count_90d = c->fraud90;
	memcpy(p.hour_hist, c->hour, sizeof p.hour_hist);

	memcpy(ctop, c->country, c->ncountry * sizeof ctop[0]);
	sort_country_top(ctop, c->ncountry);
	p.ncountries = (uint8_t)(c->ncountry < STORE_CARD_MAX_COUNTRIES ?
	    c->ncountry : STORE_CARD_MAX_COUNTRIES);
	for (uint32_t i = 0; i < p.ncountries; i++)
		memcpy(p.countries[i], ctop[i].cc, 2);

	if (c->nmerch > 0)
		memcpy(top, c->merch, c->nmerch * sizeof top[0]);
	sort_merch_top(top, c->nmerch);
	p.top_merchant_share_90d = card_top_merchant_share(c, top);
	p.nmerchants = (uint8_t)(c->nmerch < STORE_CARD_MAX_MERCHANTS ?
	    c->nmerch : STORE_CARD_MAX_MERCHANTS);
	for (uint32_t i = 0; i < p.nmerchants; i++)
		p.merchants[i] = top[i].h;
	*ret_p = p;
}

/*
 * Delay-aware fraud counts (issue 23): over the days whose labels are
 * final, [mature_to - 7d or 30d, mature_to). A 7-day window ending at
 * as-of with a 7-day label delay counts transactions whose fraud reports
 * have not arrived yet (nearly always 0); the same window shifted by the
 * maturity counts what is known.
 */
static void
ent_mature_add(batch_ent *a, const batch_windows *w, const batch_event *e)
{
	if (e->t >= w->mature_to)
		return;
	for (int k = 0; k < BATCH_NM; k++) {
		if (e->t < w->mature_start[k])
			continue;
		a->mcount[k]++;
		if (e->label == 1)
			a->mfraud[k]++;
	}
}

/*
 * The share of an entity's cards later reported (issue 23): a merchant
 * or terminal where skimming or a takeover happened has, among the cards
 * it saw, many that have a fraud known by as-of, wherever that fraud was.
 * Counting every distinct card would need a set per entity; the sample is
 * the BATCH_ENT_CARD_SAMPLE smallest card hashes of the 30 days (a
 * uniform sample of its distinct cards, the same whatever the order, and
 * merged exactly), looked up in the reported cards at the end
 * (batch_ent_profile).
 */
static void
ent_card_sample(batch_ent *a, const batch_windows *w, const batch_event *e)
{
	uint32_t lo = 0, hi = a->ncards;

	if (e->t < w->start[BATCH_W30] ||
	    (a->ncards == BATCH_ENT_CARD_SAMPLE && e->card_h >= a->cards[a->ncards - 1]))
		return;
	while (lo < hi) {
		uint32_t mid = (lo + hi) / 2;

		if (a->cards[mid] < e->card_h)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < a->ncards && a->cards[lo] == e->card_h)
		return;
	if (a->ncards < BATCH_ENT_CARD_SAMPLE)
		a->ncards++;
	memmove(&a->cards[lo + 1], &a->cards[lo], (a->ncards - 1 - lo) * sizeof a->cards[0]);
	a->cards[lo] = e->card_h;
}

static void
ent_card_sample_merge(batch_ent *dst, const batch_ent *src)
{
	uint64_t out[BATCH_ENT_CARD_SAMPLE];
	uint32_t i = 0, j = 0, n = 0;

	while (n < BATCH_ENT_CARD_SAMPLE && (i < dst->ncards || j < src->ncards)) {
		uint64_t v;

		if (j >= src->ncards || (i < dst->ncards && dst->cards[i] < src->cards[j]))
			v = dst->cards[i++];
		else if (i >= dst->ncards || src->cards[j] < dst->cards[i])
			v = src->cards[j++];
		else {
			v = dst->cards[i++];
			j++;
		}
		out[n++] = v;
	}
	memcpy(dst->cards, out, n * sizeof out[0]);
	dst->ncards = n;
}

void
batch_ent_add(batch_ent *a, const batch_windows *w, const batch_event *e)
{
	for (int k = 0; k < BATCH_NW; k++) {
		if (e->t < w->start[k])
			continue;
		a->count[k]++;
		if (e->label >= 0)
			a->labelled[k]++;
		if (e->label == 1)
			a->fraud[k]++;
	}
	if (e->t >= w->start[BATCH_W30])
		a->sum30_milli += e->amount_milli;
	ent_mature_add(a, w, e);
	ent_card_sample(a, w, e);
}

void
batch_ent_merge(batch_ent *dst, const batch_ent *src)
{
	for (int k = 0; k < BATCH_NW; k++) {
		dst->count[k] += src->count[k];
		dst->fraud[k] += src->fraud[k];
		dst->labelled[k] += src->labelled[k];
	}
	for (int k = 0; k < BATCH_NM; k++) {
		dst->mcount[k] += src->mcount[k];
		dst->mfraud[k] += src->mfraud[k];
	}
	dst->sum30_milli += src->sum30_milli;
	ent_card_sample_merge(dst, src);
}

void
batch_ent_merge_day(batch_ent *dst, const batch_windows *w, int64_t day, const batch_ent *src)
{
	int64_t end = day + VIGIL_MS_PER_DAY;

	/* A day aggregate holds the day in every window and mature window. */
	for (int k = 0; k < BATCH_NW; k++) {
		if (day < w->start[k])
			continue;
		dst->count[k] += src->count[0];
		dst->fraud[k] += src->fraud[0];
		dst->labelled[k] += src->labelled[0];
	}
	if (day >= w->start[BATCH_W30]) {
		dst->sum30_milli += src->sum30_milli;
		ent_card_sample_merge(dst, src);
	}
	for (int k = 0; k < BATCH_NM; k++) {
		if (end > w->mature_to || day < w->mature_start[k])
			continue;
		dst->mcount[k] += src->mcount[k];
		dst->mfraud[k] += src->mfraud[k];
	}
}

/* Smoothed rate: (frauds + W * prior) / (count + W), W = BATCH_PRIOR_WEIGHT. */
static double
ent_rate(uint32_t fraud, uint32_t count, double prior)
{
	return ((double)fraud + BATCH_PRIOR_WEIGHT * prior) / ((double)count + BATCH_PRIOR_WEIGHT);
}

void
batch_ent_profile(const batch_ent *a, double prior, const batch_reported *reported,
    store_entity_profile *ret_p)
{
	store_entity_profile p;

	memset(&p, 0, sizeof p);
	p.count_7d = a->count[BATCH_W7];
	p.count_30d = a->count[BATCH_W30];
	p.count_90d = a->count[BATCH_W90];
	/* the 128-bit sum rounds to a double as an int64_t of its value would */
	p.amount_mean_30d = p.count_30d ? (double)a->sum30_milli / 1000.0 / p.count_30d : 0.0;
	p.fraud_count_7d = a->fraud[BATCH_W7];
	p.fraud_count_30d = a->fraud[BATCH_W30];
	p.fraud_count_90d = a->fraud[BATCH_W90];
	p.labeled_7d = a->labelled[BATCH_W7];
	p.labeled_30d = a->labelled[BATCH_W30];
	p.labeled_90d = a->labelled[BATCH_W90];
	p.fraud_rate_7d = ent_rate(p.fraud_count_7d, p.count_7d, prior);
	p.fraud_rate_30d = ent_rate(p.fraud_count_30d, p.count_30d, prior);
	p.fraud_rate_90d = ent_rate(p.fraud_count_90d, p.count_90d, prior);
	p.count_mature_7d = a->mcount[BATCH_M7];
	p.count_mature_30d = a->mcount[BATCH_M30];
	p.fraud_count_mature_7d = a->mfraud[BATCH_M7];
	p.fraud_count_mature_30d = a->mfraud[BATCH_M30];
	p.fraud_rate_mature_7d = ent_rate(p.fraud_count_mature_7d, p.count_mature_7d, prior);
	p.fraud_rate_mature_30d = ent_rate(p.fraud_count_mature_30d, p.count_mature_30d, prior);
	p.cards_sampled_30d = a->ncards;
	for (uint32_t i = 0; reported != NULL && i < a->ncards; i++)
		if (batch_reported_has(reported, a->cards[i]))
			p.cards_reported_30d++;
	p.reported_card_share_30d = a->ncards > 0
	    ? (double)p.cards_reported_30d / (double)a->ncards : 0.0;
	*ret_p = p;
}

vigil_err
batch_reported_add(batch_reported *r, uint64_t card_h)
{
	if (!r->inited) {
		vigil_vec_init(&r->h, sizeof(uint64_t), BATCH_REPORTED_MAX);
		r->inited = true;
	}
	r->sorted = false;
	return vigil_vec_push(&r->h, &card_h);
}

static int
u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The filter's bit for h: the sampled hashes are an entity's smallest,
 * so their high bits are mostly 0; a Fibonacci mix spreads them all. */
static inline uint64_t
reported_bit(const batch_reported *r, uint64_t h)
{
	return ((h * UINT64_C(0x9e3779b97f4a7c15)) >> 40) & r->mask;
}

/* Sorts the hashes and builds the filter: 16 bits a card (one bit set of
 * 16 gives 94% of absent cards their answer without a search), at most
 * 2^24 bits; without memory for it every lookup searches. The filter
 * took put_entities' binary searches (4% of a rebuild's CPU, bench-batch)
 * off the path. */
void
batch_reported_sort(batch_reported *r)
{
	uint64_t nbits = 64;

	if (r->inited && r->h.len > 1)
		qsort(r->h.data, r->h.len, sizeof(uint64_t), u64_cmp);
	r->sorted = true;
	free(r->bits);
	r->bits = NULL;
	if (!r->inited || r->h.len == 0)
		return;
	while (nbits < 16 * (uint64_t)r->h.len && nbits < (UINT64_C(1) << 24))
		nbits <<= 1;
	r->bits = calloc(nbits / 64, sizeof(uint64_t));
	if (r->bits == NULL)
		return;
	r->mask = nbits - 1;
	for (size_t i = 0; i < r->h.len; i++) {
		uint64_t b = reported_bit(r, ((const uint64_t *)r->h.data)[i]);

		r->bits[b / 64] |= UINT64_C(1) << (b % 64);
	}
}

bool
batch_reported_has(const batch_reported *r, uint64_t card_h)
{
	if (!r->inited || !r->sorted || r->h.len == 0)
		return false;
	if (r->bits != NULL) {
		uint64_t b = reported_bit(r, card_h);

		if (!(r->bits[b / 64] & (UINT64_C(1) << (b % 64))))
			return false;
	}
	return bsearch(&card_h, r->h.data, r->h.len, sizeof(uint64_t), u64_cmp) != NULL;
}

void
batch_reported_fini(batch_reported *r)
{
	if (r->inited)
		vigil_vec_fini(&r->h);
	free(r->bits);
	r->bits = NULL;
	r->inited = false;
	r->sorted = false;
}
