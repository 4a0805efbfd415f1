/* SPDX-License-Identifier: MIT */
/*
 * tools/gen/gen.c - vigil-gen: a deterministic generator of realistic card
 * traffic with ground-truth fraud, written as vigil CSV (docs/vigil-gen.md).
 *
 * The world: cities (country, location), merchants in them (a category
 * with its mcc, channel and amount distribution; point-of-sale merchants own
 * terminals with a location), cardholders with a home city, a spending level,
 * a daily rhythm, a weekly shape, favourite merchants, a device and an IP.
 * Each day every card draws its transactions; fraud incidents are drawn on
 * top (six patterns, see gen_pattern) and labelled with the delay after
 * which the bank learns of them (chargeback). The day's events are sorted by
 * time and written, so memory is bounded by one day (plus scheduled future
 * fraud), not by the length of the run.
 *
 * Determinism: one xoshiro256** state seeded from --seed through splitmix64,
 * advanced in a fixed order; no rand(), no clock, no hash-table iteration
 * order. Same seed and options give the same bytes.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "vec.h"
#include "csv.h"
#include "splitmix.h"
#include "vigil.h"
#include "vigil_config.h"

#define GEN_MAX_CARDS  50000000u
#define GEN_MAX_DAYS   3660u

/* ------------------------------ PRNG ------------------------------ */

typedef struct gen_rng {
	uint64_t s[4];
} gen_rng;

#define GEN_PROG "vigil-gen"
#define gen_usage_error(...) vigil_cli_usage_error(GEN_PROG, __VA_ARGS__)

static void
gen_rng_seed(gen_rng *r, uint64_t seed)
{
	for (int i = 0; i < 4; i++)
		r->s[i] = vigil_splitmix64(&seed);
}

static inline uint64_t
gen_rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static inline uint64_t
gen_next(gen_rng *r)
{
	uint64_t *s = r->s;
	uint64_t result = gen_rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = gen_rotl(s[3], 45);
	return result;
}

/* Uniform in [0, 1). */
static inline double
gen_unif(gen_rng *r)
{
	return (double)(gen_next(r) >> 11) * 0x1.0p-53;
}

/* Uniform integer in [0, n), n > 0 (Lemire's multiply; bias < 2^-32 for our n). */
static inline uint32_t
gen_below(gen_rng *r, uint32_t n)
{
	return (uint32_t)(((gen_next(r) >> 32) * (uint64_t)n) >> 32);
}

static inline int64_t
gen_range(gen_rng *r, int64_t lo, int64_t hi) /* [lo, hi] */
{
	return lo + (int64_t)(gen_unif(r) * (double)(hi - lo + 1));
}

static double
gen_normal(gen_rng *r)
{
	double u1 = gen_unif(r), u2 = gen_unif(r);

	if (u1 < 1e-300)
		u1 = 1e-300;
	return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

static double
gen_lognormal(gen_rng *r, double median, double sigma)
{
	return median * exp(sigma * gen_normal(r));
}

static uint32_t
gen_poisson(gen_rng *r, double lambda)
{
	if (lambda <= 0)
		return 0;
	if (lambda > 30) {
		double v = lambda + sqrt(lambda) * gen_normal(r) + 0.5;
		return v < 0 ? 0 : (uint32_t)v;
	}
	double l = exp(-lambda), p = 1.0;
	uint32_t k = 0;
	do {
		k++;
		p *= gen_unif(r);
	} while (p > l);
	return k - 1;
}

/* ------------------------------ the world ------------------------------ */

typedef struct gen_city {
	const char *name;
	char        country[3];
	double      lat, lon;
	double      weight; /* share of cardholders living there */
} gen_city;

/* Home cities first (weight > 0); the rest only see travellers and fraud. */
static const gen_city gen_cities[] = {
	{ "Paris", "FR", 48.8566, 2.3522, 14 },
	{ "Lyon", "FR", 45.7640, 4.8357, 6 },
	{ "Marseille", "FR", 43.2965, 5.3698, 5 },
	{ "Berlin", "DE", 52.5200, 13.4050, 10 },
	{ "Munich", "DE", 48.1351, 11.5820, 6 },
	{ "Hamburg", "DE", 53.5511, 9.9937, 5 },
	{ "Madrid", "ES", 40.4168, -3.7038, 8 },
	{ "Barcelona", "ES", 41.3874, 2.1686, 6 },
	{ "Rome", "IT", 41.9028, 12.4964, 7 },
	{ "Milan", "IT", 45.4642, 9.1900, 6 },
	{ "Amsterdam", "NL", 52.3676, 4.9041, 6 },
	{ "Brussels", "BE", 50.8503, 4.3517, 4 },
	{ "Vienna", "AT", 48.2082, 16.3738, 4 },
	{ "Lisbon", "PT", 38.7223, -9.1393, 4 },
	{ "Dublin", "IE", 53.3498, -6.2603, 3 },
	{ "Helsinki", "FI", 60.1699, 24.9384, 2 },
	{ "Athens", "GR", 37.9838, 23.7275, 3 },
	{ "London", "GB", 51.5072, -0.1276, 0 },
	{ "New York", "US", 40.7128, -74.0060, 0 },
	{ "Miami", "US", 25.7617, -80.1918, 0 },
	{ "Sao Paulo", "BR", -23.5505, -46.6333, 0 },
	{ "Lagos", "NG", 6.5244, 3.3792, 0 },
	{ "Bangkok", "TH", 13.7563, 100.5018, 0 },
	{ "Dubai", "AE", 25.2048, 55.2708, 0 },
	{ "Istanbul", "TR", 41.0082, 28.9784, 0 },
	{ "Singapore", "SG", 1.3521, 103.8198, 0 },
};
#define GEN_NCITIES (sizeof gen_cities / sizeof gen_cities[0])
#define GEN_NHOME 17u /* the first 17 have weight > 0 */

typedef struct gen_category {
	const char *name;
	uint16_t    mcc;
	uint8_t     channel;   /* vigil_channel */
	double      median;    /* amount median, EUR */
	double      sigma;     /* lognormal spread */
	double      share;     /* share of merchants */
	double      use;       /* how often cardholders shop there */
} gen_category;

static const gen_category gen_cats[] = {
	{ "grocery", 5411, VIGIL_CHANNEL_POS, 32, 0.7, 0.22, 0.30 },
	{ "restaurant", 5812, VIGIL_CHANNEL_POS, 24, 0.6, 0.18, 0.18 },
	{ "fuel", 5541, VIGIL_CHANNEL_POS, 55, 0.4, 0.07, 0.08 },
	{ "pharmacy", 5912, VIGIL_CHANNEL_POS, 18, 0.7, 0.06, 0.05 },
	{ "department", 5311, VIGIL_CHANNEL_POS, 60, 0.8, 0.06, 0.05 },
	{ "electronics", 5732, VIGIL_CHANNEL_POS, 180, 0.9, 0.03, 0.015 },
	{ "jewelry", 5944, VIGIL_CHANNEL_POS, 250, 0.9, 0.02, 0.005 },
	{ "taxi", 4121, VIGIL_CHANNEL_POS, 22, 0.5, 0.04, 0.04 },
	{ "hotel", 7011, VIGIL_CHANNEL_POS, 140, 0.6, 0.03, 0.01 },
	{ "atm", 6011, VIGIL_CHANNEL_ATM, 80, 0.6, 0.05, 0.05 },
	{ "online_retail", 5999, VIGIL_CHANNEL_ECOM, 45, 0.9, 0.10, 0.12 },
	{ "digital_goods", 5815, VIGIL_CHANNEL_ECOM, 9, 0.8, 0.06, 0.06 },
	{ "online_electronics", 5732, VIGIL_CHANNEL_ECOM, 220, 0.9, 0.03, 0.015 },
	{ "airline", 4511, VIGIL_CHANNEL_ECOM, 260, 0.6, 0.02, 0.01 },
	{ "money_transfer", 4829, VIGIL_CHANNEL_ECOM, 200, 0.8, 0.03, 0.005 },
};
#define GEN_NCATS (sizeof gen_cats / sizeof gen_cats[0])
enum { CAT_GROCERY, CAT_RESTAURANT, CAT_FUEL, CAT_PHARMACY, CAT_DEPARTMENT,
	CAT_ELECTRONICS, CAT_JEWELRY, CAT_TAXI, CAT_HOTEL, CAT_ATM, CAT_ONLINE,
	CAT_DIGITAL, CAT_ONLINE_ELEC, CAT_AIRLINE, CAT_TRANSFER };

typedef struct gen_merchant {
	uint8_t  cat;
	uint8_t  city;
	uint16_t nterm;
	uint32_t first_term; /* index into terminals */
} gen_merchant;

typedef struct gen_terminal {
	uint32_t merchant;
	float    lat, lon;
} gen_terminal;

#define GEN_FAVS 10
typedef struct gen_card {
	uint8_t  city;
	uint8_t  peak_hour;
	uint8_t  ndevices;
	float    rate;      /* transactions per day */
	float    spend;     /* multiplier of category medians */
	float    ecom;      /* share of online purchases */
	float    night;     /* share of night-time activity */
	uint32_t favs[GEN_FAVS];
	uint32_t ip;        /* home IPv4 */
	int32_t  trip_city; /* -1 at home */
	uint32_t id;        /* card number printed; changes when the card is reissued */
	uint32_t trip_left; /* days */
} gen_card;

/* Fraud patterns (fraud_pattern column). */
typedef enum gen_pattern {
	PAT_NONE = 0,
	PAT_CARD_TESTING,      /* bursts of tiny online amounts, then a big one */
	PAT_ACCOUNT_TAKEOVER,  /* new device and IP, spending spike online */
	PAT_SKIMMED_CARD,      /* card skimmed at a breached merchant, cloned later abroad */
	PAT_TERMINAL,          /* compromised terminal pushing stolen cards through */
	PAT_IMPOSSIBLE_TRAVEL, /* cloned card used far away hours after a home purchase */
	PAT_STOLEN_CARD,       /* lost/stolen card: a quick local spree, ATM cash */
	PAT_COUNT_
} gen_pattern;

static const char *const gen_pattern_names[PAT_COUNT_] = {
	"", "card_testing", "account_takeover", "skimmed_card", "compromised_terminal",
	"impossible_travel", "stolen_card",
};

/* Relative share of fraud transactions by pattern (before calibration). */
static const double gen_pattern_share[PAT_COUNT_] = {
	0, 0.22, 0.18, 0.20, 0.12, 0.14, 0.14,
};
/* Mean fraud transactions per incident (for turning rates into incidents). */
static const double gen_pattern_size[PAT_COUNT_] = {
	1, 8.0, 4.0, 2.5, 1.0, 2.0, 5.0,
};

typedef struct gen_ev {
	int64_t  t_ms;
	uint64_t ord;        /* tiebreak: creation order */
	int64_t  amount;     /* minor units (EUR cents) */
	int64_t  label_time; /* 0 = legitimate */
	uint32_t card;
	uint32_t cid;        /* the card's number at the time (cards are reissued) */
	uint32_t merchant;
	int32_t  terminal;   /* -1: none */
	uint32_t device;     /* 0 none; 1..: card device (card*4+k+1); >= 1<<31: fraud pool */
	uint32_t ip;         /* 0 none */
	float    lat, lon;
	bool     has_loc;
	uint8_t  pattern;
} gen_ev;

/* The generator's arrays are common/vec.h's; these caps only stop a
 * runaway: a day of 50 million cards is under 2^28 events. */
#define GEN_MAX_EVENTS    (1u << 30)
#define GEN_MAX_INCIDENTS (1u << 24) /* active breaches, compromised terminals, reissues */

typedef struct gen_breach {
	uint32_t merchant;
	uint32_t days_left;
	double   p_skim;
} gen_breach;

typedef struct gen_term_comp {
	uint32_t terminal;
	uint32_t days_left;
	double   per_day;
} gen_term_comp;

/* After a fraud is reported the bank blocks the card and issues a new one. */
typedef struct gen_reissue {
	uint32_t card;
	int64_t  t_ms;
} gen_reissue;

typedef struct gen_opts {
	uint32_t    cards, days;
	int64_t     start_ms;
	uint64_t    seed;
	double      fraud_rate;
	const char *out;
	bool        progress;
} gen_opts;

typedef struct gen_world {
	gen_opts      o;
	gen_rng       rng;
	gen_card     *cards;
	gen_merchant *merchants;
	uint32_t      nmerchants;
	gen_terminal *terms;
	uint32_t      nterms;
	uint32_t     *by_cat_city; /* merchant indices grouped by (cat, city) */
	uint32_t      cat_city_off[GEN_NCATS][GEN_NCITIES + 1];
	uint32_t     *term_pos;    /* POS terminals (for compromise) */
	uint32_t      nterm_pos;
	vigil_vec     day, future; /* gen_ev: today's, and scheduled later */
	vigil_vec     breaches;    /* gen_breach */
	vigil_vec     tcomp;       /* gen_term_comp */
	vigil_vec     reissues;    /* gen_reissue */
	uint32_t      next_card_id;
	uint64_t      reissued;
	uint64_t      ord, txn_seq;
	uint64_t      rows, fraud_rows, pat_rows[PAT_COUNT_], pat_incidents[PAT_COUNT_];
	double        incidents_per_day[PAT_COUNT_];
	double        hour_w[24], dow_w[7];
} gen_world;

/* The events of v (a vigil_vec of gen_ev); valid until v grows. */
static inline gen_ev *
gen_evs(const vigil_vec *v)
{
	return v->data;
}

static void gen_reissue_at(gen_world *w, uint32_t card, int64_t t_ms);

/* Pushes e stamped with its card's current number. */
static vigil_err
gen_push(gen_world *w, vigil_vec *v, gen_ev *e)
{
	e->cid = w->cards[e->card].id;
	return vigil_vec_push(v, e);
}

static uint32_t
gen_pick_weighted(gen_rng *r, const double *w, size_t n, double total)
{
	double x = gen_unif(r) * total;

	for (size_t i = 0; i < n; i++) {
		if (x < w[i])
			return (uint32_t)i;
		x -= w[i];
	}
	return (uint32_t)(n - 1);
}

/* A merchant of category cat in city (or any city if none there). */
static uint32_t
gen_merchant_of(gen_world *w, uint32_t cat, uint32_t city)
{
	uint32_t lo = w->cat_city_off[cat][city], hi = w->cat_city_off[cat][city + 1];

	if (hi == lo) {
		lo = w->cat_city_off[cat][0];
		hi = w->cat_city_off[cat][GEN_NCITIES];
	}
	return w->by_cat_city[lo + gen_below(&w->rng, hi - lo)];
}

static bool
gen_cat_online(uint32_t cat)
{
	return gen_cats[cat].channel == VIGIL_CHANNEL_ECOM;
}

static vigil_err
gen_world_build(gen_world *w)
{
	gen_rng *r = &w->rng;
	double cat_share[GEN_NCATS], city_w[GEN_NCITIES], tot_share = 0, tot_city = 0;
	uint32_t *count;

	vigil_vec_init(&w->day, sizeof(gen_ev), GEN_MAX_EVENTS);
	vigil_vec_init(&w->future, sizeof(gen_ev), GEN_MAX_EVENTS);
	vigil_vec_init(&w->breaches, sizeof(gen_breach), GEN_MAX_INCIDENTS);
	vigil_vec_init(&w->tcomp, sizeof(gen_term_comp), GEN_MAX_INCIDENTS);
	vigil_vec_init(&w->reissues, sizeof(gen_reissue), GEN_MAX_INCIDENTS);

	static const double hours[24] = { /* share of activity by local hour */
		0.4, 0.25, 0.15, 0.1, 0.1, 0.2, 0.6, 1.6, 3.2, 4.6, 5.4, 6.0,
		7.6, 7.2, 5.8, 5.6, 6.0, 6.8, 7.4, 7.0, 5.2, 3.6, 2.0, 1.0 };
	static const double dows[7] = { 1.0, 0.97, 1.0, 1.02, 1.12, 1.25, 0.78 }; /* Mon..Sun */
	memcpy(w->hour_w, hours, sizeof hours);
	memcpy(w->dow_w, dows, sizeof dows);

	for (size_t i = 0; i < GEN_NCATS; i++)
		tot_share += cat_share[i] = gen_cats[i].share;
	for (size_t i = 0; i < GEN_NCITIES; i++)
		tot_city += city_w[i] = gen_cities[i].weight > 0 ? gen_cities[i].weight : 1.5;

	w->nmerchants = w->o.cards / 25 + 400;
	w->merchants = calloc(w->nmerchants, sizeof *w->merchants);
	w->terms = calloc((size_t)w->nmerchants * 4, sizeof *w->terms);
	w->by_cat_city = calloc(w->nmerchants, sizeof *w->by_cat_city);
	w->term_pos = calloc((size_t)w->nmerchants * 4, sizeof *w->term_pos);
	count = calloc(GEN_NCATS * GEN_NCITIES, sizeof *count);
	if (w->merchants == NULL || w->terms == NULL || w->by_cat_city == NULL ||
	    w->term_pos == NULL || count == NULL) {
		free(count);
		return VIGIL_ENOMEM;
	}
	for (uint32_t m = 0; m < w->nmerchants; m++) {
		gen_merchant *me = &w->merchants[m];
		/* every (category, home city) gets at least one merchant */
		if (m < GEN_NCATS * GEN_NHOME) {
			me->cat = (uint8_t)(m % GEN_NCATS);
			me->city = (uint8_t)(m / GEN_NCATS);
		} else {
			me->cat = (uint8_t)gen_pick_weighted(r, cat_share, GEN_NCATS, tot_share);
			me->city = (uint8_t)gen_pick_weighted(r, city_w, GEN_NCITIES, tot_city);
		}
		me->first_term = w->nterms;
		if (!gen_cat_online(me->cat)) {
			const gen_city *c = &gen_cities[me->city];
			double mlat = c->lat + gen_normal(r) * 0.04, mlon = c->lon + gen_normal(r) * 0.06;
			me->nterm = (uint16_t)(1 + gen_below(r, me->cat == CAT_GROCERY ? 4 : 2));
			for (uint32_t t = 0; t < me->nterm; t++) {
				w->terms[w->nterms].merchant = m;
				w->terms[w->nterms].lat = (float)(mlat + gen_normal(r) * 0.0005);
				w->terms[w->nterms].lon = (float)(mlon + gen_normal(r) * 0.0005);
				if (gen_cats[me->cat].channel == VIGIL_CHANNEL_POS)
					w->term_pos[w->nterm_pos++] = w->nterms;
				w->nterms++;
			}
		}
		count[me->cat * GEN_NCITIES + me->city]++;
	}
	/* group merchants by (category, city) for O(1) picks */
	{
		uint32_t off = 0;
		for (size_t c = 0; c < GEN_NCATS; c++) {
			for (size_t ci = 0; ci < GEN_NCITIES; ci++) {
				w->cat_city_off[c][ci] = off;
				off += count[c * GEN_NCITIES + ci];
			}
			w->cat_city_off[c][GEN_NCITIES] = off;
		}
		memset(count, 0, GEN_NCATS * GEN_NCITIES * sizeof *count);
		for (uint32_t m = 0; m < w->nmerchants; m++) {
			gen_merchant *me = &w->merchants[m];
			size_t k = (size_t)me->cat * GEN_NCITIES + me->city;
			w->by_cat_city[w->cat_city_off[me->cat][me->city] + count[k]++] = m;
		}
		/* cat_city_off[c][GEN_NCITIES] must equal the next category's start */
	}
	free(count);

	w->next_card_id = w->o.cards;
	w->cards = calloc(w->o.cards, sizeof *w->cards);
	if (w->cards == NULL)
		return VIGIL_ENOMEM;
	{
		double home_w[GEN_NHOME], tot_home = 0, use[GEN_NCATS], tot_use = 0;
		for (size_t i = 0; i < GEN_NHOME; i++)
			tot_home += home_w[i] = gen_cities[i].weight;
		for (size_t i = 0; i < GEN_NCATS; i++)
			tot_use += use[i] = gen_cats[i].use;
		for (uint32_t c = 0; c < w->o.cards; c++) {
			gen_card *k = &w->cards[c];
			k->city = (uint8_t)gen_pick_weighted(r, home_w, GEN_NHOME, tot_home);
			k->rate = (float)gen_lognormal(r, 1.1, 0.6);
			if (k->rate > 12)
				k->rate = 12;
			k->spend = (float)gen_lognormal(r, 1.0, 0.45);
			k->ecom = (float)(0.05 + 0.4 * gen_unif(r));
			k->night = (float)(gen_unif(r) < 0.1 ? 0.15 : 0.02);
			k->peak_hour = (uint8_t)(10 + gen_below(r, 10));
			k->ndevices = (uint8_t)(1 + gen_below(r, 2));
			k->ip = (uint32_t)(80 + k->city) << 24 | (gen_below(r, 1u << 24));
			k->trip_city = -1;
			k->id = c;
			for (int f = 0; f < GEN_FAVS; f++) {
				uint32_t cat = gen_pick_weighted(r, use, GEN_NCATS, tot_use);
				k->favs[f] = gen_merchant_of(w, cat, k->city);
			}
		}
	}
	/* incidents per day so that fraud rows ~ fraud_rate of all rows */
	{
		double mean_rate = 0, tot = 0;
		for (uint32_t c = 0; c < w->o.cards; c++)
			mean_rate += w->cards[c].rate;
		for (int p = 1; p < PAT_COUNT_; p++)
			tot += gen_pattern_share[p];
		for (int p = 1; p < PAT_COUNT_; p++)
			w->incidents_per_day[p] = mean_rate * w->o.fraud_rate *
			    gen_pattern_share[p] / tot / gen_pattern_size[p];
	}
	return VIGIL_OK;
}

/* --------------------------- transactions --------------------------- */

static int64_t
gen_amount(gen_world *w, uint32_t cat, double mult)
{
	const gen_category *c = &gen_cats[cat];
	double a = gen_lognormal(&w->rng, c->median * mult, c->sigma);

	if (cat == CAT_ATM) {
		int64_t notes = (int64_t)(a / 20.0 + 0.5);
		if (notes < 1)
			notes = 1;
		if (notes > 50)
			notes = 50;
		return notes * 2000;
	}
	if (a < 0.5)
		a = 0.5;
	if (a > 20000)
		a = 20000;
	return (int64_t)(a * 100.0 + 0.5);
}

/* Fills merchant, terminal, location and channel-dependent ids of e. */
static void
gen_place(gen_world *w, gen_ev *e, uint32_t merchant, bool own_device)
{
	const gen_merchant *m = &w->merchants[merchant];

	e->merchant = merchant;
	if (m->nterm > 0) {
		const gen_terminal *t;
		e->terminal = (int32_t)(m->first_term + gen_below(&w->rng, m->nterm));
		t = &w->terms[e->terminal];
		e->lat = t->lat;
		e->lon = t->lon;
		e->has_loc = true;
		e->device = 0;
		e->ip = 0;
	} else {
		e->terminal = -1;
		e->has_loc = false;
		if (own_device) {
			const gen_card *k = &w->cards[e->card];
			e->device = e->card * 4 + 1 + gen_below(&w->rng, k->ndevices);
			e->ip = k->ip;
		}
	}
}

/* A time within day_ms following the card's rhythm. */
static int64_t
gen_time_of_day(gen_world *w, const gen_card *k, int64_t day_ms)
{
	double h;

	if (gen_unif(&w->rng) < k->night) {
		h = gen_unif(&w->rng) * 6.0; /* 00:00-06:00 */
	} else if (gen_unif(&w->rng) < 0.6) {
		h = k->peak_hour + gen_normal(&w->rng) * 2.5;
	} else {
		h = gen_pick_weighted(&w->rng, w->hour_w, 24, 100.0) + gen_unif(&w->rng);
	}
	if (h < 0)
		h += 24;
	if (h >= 24)
		h -= 24;
	/* local hour to UTC: the home cities are UTC+1 (winter) or so */
	h -= 1.0;
	if (h < 0)
		h += 24;
	return day_ms + (int64_t)(h * 3600000.0);
}

static vigil_err
gen_legit_day(gen_world *w, uint32_t c, int64_t day_ms, int dow)
{
	gen_card *k = &w->cards[c];
	uint32_t n;
	vigil_err rv;

	/* trips: a few days in another city, now and then */
	if (k->trip_city < 0 && gen_unif(&w->rng) < 0.004) {
		k->trip_city = (int32_t)gen_below(&w->rng, GEN_NCITIES);
		k->trip_left = 2 + gen_below(&w->rng, 6);
		if (k->trip_city == k->city)
			k->trip_city = -1;
	} else if (k->trip_city >= 0 && k->trip_left-- == 0) {
		k->trip_city = -1;
	}
	n = gen_poisson(&w->rng, k->rate * w->dow_w[dow]);
	for (uint32_t i = 0; i < n; i++) {
		gen_ev e = { 0 };
		uint32_t merchant, cat;
		bool away = k->trip_city >= 0;

		e.card = c;
		e.t_ms = gen_time_of_day(w, k, day_ms);
		if (gen_unif(&w->rng) < k->ecom) {
			static const double ecw[] = { 0.60, 0.25, 0.07, 0.06, 0.02 };
			static const uint8_t ecc[] = { CAT_ONLINE, CAT_DIGITAL, CAT_ONLINE_ELEC,
				CAT_AIRLINE, CAT_TRANSFER };
			cat = ecc[gen_pick_weighted(&w->rng, ecw, 5, 1.0)];
			merchant = gen_merchant_of(w, cat, k->city);
		} else if (!away && gen_unif(&w->rng) < 0.7) {
			merchant = k->favs[gen_below(&w->rng, GEN_FAVS)];
			cat = w->merchants[merchant].cat;
		} else {
			static const double pw[] = { 0.3, 0.25, 0.08, 0.05, 0.07, 0.02, 0.005,
				0.06, 0.03, 0.06 };
			cat = gen_pick_weighted(&w->rng, pw, 10, 0.925);
			if (away && gen_unif(&w->rng) < 0.15)
				cat = CAT_HOTEL;
			merchant = gen_merchant_of(w, cat, away ? (uint32_t)k->trip_city : k->city);
		}
		if (gen_cat_online(cat) && !gen_cat_online(w->merchants[merchant].cat))
			cat = w->merchants[merchant].cat;
		e.amount = gen_amount(w, w->merchants[merchant].cat, k->spend);
		gen_place(w, &e, merchant, true);
		e.ord = w->ord++;
		rv = gen_push(w, &w->day, &e);
		if (rv != VIGIL_OK)
			return rv;
		/* skimming: a card used at a breached merchant may be cloned */
		for (size_t b = 0; b < w->breaches.len; b++) {
			const gen_breach *br = vigil_vec_at(&w->breaches, b);

			if (br->merchant == merchant && gen_unif(&w->rng) < br->p_skim) {
				/* the clone is used abroad 2-20 days later (scheduled) */
				int64_t when = e.t_ms + gen_range(&w->rng, 2, 20) * VIGIL_MS_PER_DAY;
				uint32_t city = GEN_NHOME + gen_below(&w->rng, GEN_NCITIES - GEN_NHOME);
				uint32_t nf = 1 + gen_below(&w->rng, 4);
				int64_t report = 0;
				size_t first = w->future.len;
				w->pat_incidents[PAT_SKIMMED_CARD]++;
				for (uint32_t j = 0; j < nf; j++) {
					gen_ev f = { 0 };
					uint32_t fc = gen_unif(&w->rng) < 0.5 ? CAT_ATM
					    : (gen_unif(&w->rng) < 0.5 ? CAT_ELECTRONICS : CAT_JEWELRY);
					f.card = c;
					f.t_ms = when + gen_range(&w->rng, 0, 8 * 3600) * 1000;
					f.amount = gen_amount(w, fc, 2.5);
					gen_place(w, &f, gen_merchant_of(w, fc, city), false);
					f.pattern = PAT_SKIMMED_CARD;
					f.ord = w->ord++;
					if (f.t_ms > report)
						report = f.t_ms;
					rv = gen_push(w, &w->future, &f);
					if (rv != VIGIL_OK)
						return rv;
				}
				report += (int64_t)(gen_lognormal(&w->rng, 5.0, 0.6) * VIGIL_MS_PER_DAY);
				for (size_t j = first; j < w->future.len; j++)
					gen_evs(&w->future)[j].label_time = report;
				gen_reissue_at(w, c, report);
				break;
			}
		}
	}
	return VIGIL_OK;
}

/* The fraud pool: devices and IPs fraudsters reuse across victims. */
static uint32_t
gen_fraud_device(gen_world *w)
{
	return 0x80000000u + gen_below(&w->rng, 200 + w->o.cards / 500);
}

static uint32_t
gen_fraud_ip(gen_world *w)
{
	return (uint32_t)(185 + gen_below(&w->rng, 10)) << 24 | gen_below(&w->rng, 4096);
}

static void
gen_reissue_at(gen_world *w, uint32_t card, int64_t t_ms)
{
	gen_reissue ri = { .card = card, .t_ms = t_ms };

	/* ENOMEM or over the cap: the card just keeps its number */
	(void)vigil_vec_push(&w->reissues, &ri);
}

/* Labels the events of one incident [first, v->len): the bank learns of it
 * median_days (lognormal) after the last fraudulent transaction. */
static void
gen_label_incident(gen_world *w, vigil_vec *v, size_t first, double median_days)
{
	int64_t last = 0, report;

	for (size_t i = first; i < v->len; i++)
		if (gen_evs(v)[i].t_ms > last)
			last = gen_evs(v)[i].t_ms;
	report = last + (int64_t)(gen_lognormal(&w->rng, median_days, 0.7) * VIGIL_MS_PER_DAY);
	if (report < last + 3600000)
		report = last + 3600000;
	for (size_t i = first; i < v->len; i++)
		gen_evs(v)[i].label_time = report;
	gen_reissue_at(w, gen_evs(v)[first].card, report);
}

static vigil_err
gen_fraud_push(gen_world *w, vigil_vec *v, gen_ev *e, gen_pattern p)
{
	e->pattern = (uint8_t)p;
	e->ord = w->ord++;
	return gen_push(w, v, e);
}

static vigil_err
gen_incident(gen_world *w, gen_pattern p, int64_t day_ms)
{
	gen_rng *r = &w->rng;
	uint32_t card = gen_below(r, w->o.cards);
	gen_card *k = &w->cards[card];
	int64_t t = day_ms + gen_range(r, 0, VIGIL_MS_PER_DAY - 1);
	vigil_vec *v = &w->future; /* may spill into the next days */
	size_t first = v->len;
	vigil_err rv = VIGIL_OK;

	w->pat_incidents[p]++;
	switch (p) {
	case PAT_CARD_TESTING: {
		uint32_t dev = gen_fraud_device(w), ip = gen_fraud_ip(w);
		uint32_t n = 3 + gen_below(r, 10);
		for (uint32_t i = 0; i < n && rv == VIGIL_OK; i++) {
			gen_ev e = { .card = card };
			e.t_ms = t;
			t += gen_range(r, 15, 240) * 1000;
			e.amount = gen_range(r, 50, 299);
			gen_place(w, &e, gen_merchant_of(w, CAT_DIGITAL, gen_below(r, GEN_NCITIES)), false);
			e.device = dev;
			e.ip = ip;
			rv = gen_fraud_push(w, v, &e, p);
		}
		for (uint32_t i = 0, big = gen_unif(r) < 0.6 ? 1 + gen_below(r, 3) : 0;
		    i < big && rv == VIGIL_OK; i++) {
			gen_ev e = { .card = card };
			t += gen_range(r, 60, 3600) * 1000;
			e.t_ms = t;
			e.amount = gen_amount(w, CAT_ONLINE_ELEC, 2.0);
			gen_place(w, &e, gen_merchant_of(w, CAT_ONLINE_ELEC, gen_below(r, GEN_NCITIES)), false);
			e.device = dev;
			e.ip = ip;
			rv = gen_fraud_push(w, v, &e, p);
		}
		if (rv == VIGIL_OK)
			gen_label_incident(w, v, first, 12.0);
		break;
	}
	case PAT_ACCOUNT_TAKEOVER: {
		uint32_t dev = gen_fraud_device(w), ip = gen_fraud_ip(w);
		uint32_t n = 2 + gen_below(r, 5);
		for (uint32_t i = 0; i < n && rv == VIGIL_OK; i++) {
			static const uint8_t cats[] = { CAT_ONLINE_ELEC, CAT_TRANSFER, CAT_ONLINE, CAT_AIRLINE };
			uint32_t cat = cats[gen_below(r, 4)];
			gen_ev e = { .card = card };
			e.t_ms = t;
			t += gen_range(r, 120, 2 * 3600) * 1000;
			e.amount = gen_amount(w, cat, k->spend * (4.0 + 8.0 * gen_unif(r)));
			gen_place(w, &e, gen_merchant_of(w, cat, k->city), false);
			e.device = dev;
			e.ip = ip;
			rv = gen_fraud_push(w, v, &e, p);
		}
		if (rv == VIGIL_OK)
			gen_label_incident(w, v, first, 6.0);
		break;
	}
	case PAT_IMPOSSIBLE_TRAVEL: {
		/* a clone used far away within hours of a genuine home purchase */
		uint32_t city = GEN_NHOME + gen_below(r, GEN_NCITIES - GEN_NHOME);
		uint32_t n = 1 + gen_below(r, 3);
		gen_ev home = { .card = card };
		home.t_ms = t;
		home.amount = gen_amount(w, CAT_GROCERY, k->spend);
		gen_place(w, &home, k->favs[0], true);
		home.ord = w->ord++;
		rv = gen_push(w, v, &home);
		first = v->len;
		t += gen_range(r, 30 * 60, 4 * 3600) * 1000;
		for (uint32_t i = 0; i < n && rv == VIGIL_OK; i++) {
			static const uint8_t cats[] = { CAT_ELECTRONICS, CAT_ATM, CAT_JEWELRY, CAT_HOTEL };
			uint32_t cat = cats[gen_below(r, 4)];
			gen_ev e = { .card = card };
			e.t_ms = t;
			t += gen_range(r, 300, 3 * 3600) * 1000;
			e.amount = gen_amount(w, cat, 2.0);
			gen_place(w, &e, gen_merchant_of(w, cat, city), false);
			rv = gen_fraud_push(w, v, &e, p);
		}
		if (rv == VIGIL_OK)
			gen_label_incident(w, v, first, 4.0);
		break;
	}
	case PAT_STOLEN_CARD: {
		uint32_t n = 3 + gen_below(r, 5);
		t = day_ms + gen_range(r, 0, 5 * 3600) * 1000 + (gen_unif(r) < 0.5 ? 0 : 16 * 3600000LL);
		for (uint32_t i = 0; i < n && rv == VIGIL_OK; i++) {
			static const uint8_t cats[] = { CAT_ATM, CAT_ELECTRONICS, CAT_JEWELRY, CAT_FUEL,
				CAT_DEPARTMENT };
			uint32_t cat = i == 0 ? CAT_ATM : cats[gen_below(r, 5)];
			gen_ev e = { .card = card };
			e.t_ms = t;
			t += gen_range(r, 5 * 60, 40 * 60) * 1000;
			e.amount = gen_amount(w, cat, 1.8);
			gen_place(w, &e, gen_merchant_of(w, cat, k->city), false);
			rv = gen_fraud_push(w, v, &e, p);
		}
		if (rv == VIGIL_OK)
			gen_label_incident(w, v, first, 2.0);
		break;
	}
	case PAT_SKIMMED_CARD: {
		/* a breach at a local merchant: its customers are cloned later */
		gen_breach b;
		uint32_t pick = gen_below(r, w->nterm_pos);
		w->pat_incidents[p]--; /* counted per cloned card instead */
		b.merchant = w->terms[w->term_pos[pick]].merchant;
		b.days_left = 3 + gen_below(r, 8);
		b.p_skim = 0.5;
		rv = vigil_vec_push(&w->breaches, &b);
		break;
	}
	case PAT_TERMINAL: {
		gen_term_comp tc;
		w->pat_incidents[p]--; /* counted per fraudulent transaction */
		tc.terminal = w->term_pos[gen_below(r, w->nterm_pos)];
		tc.days_left = 5 + gen_below(r, 20);
		tc.per_day = 1.0 + 4.0 * gen_unif(r);
		rv = vigil_vec_push(&w->tcomp, &tc);
		break;
	}
	default:
		break;
	}
	return rv;
}

/* Compromised terminals: stolen cards pushed through, each its own incident. */
static vigil_err
gen_terminal_day(gen_world *w, int64_t day_ms)
{
	for (size_t i = 0; i < w->tcomp.len; i++) {
		const gen_term_comp *tc = vigil_vec_at(&w->tcomp, i);
		uint32_t n = gen_poisson(&w->rng, tc->per_day);
		for (uint32_t j = 0; j < n; j++) {
			gen_ev e = { .card = gen_below(&w->rng, w->o.cards) };
			const gen_terminal *t = &w->terms[tc->terminal];
			size_t first = w->future.len;
			vigil_err rv;
			e.t_ms = gen_time_of_day(w, &w->cards[e.card], day_ms);
			e.amount = gen_amount(w, w->merchants[t->merchant].cat, 3.0);
			e.merchant = t->merchant;
			e.terminal = (int32_t)tc->terminal;
			e.lat = t->lat;
			e.lon = t->lon;
			e.has_loc = true;
			rv = gen_fraud_push(w, &w->future, &e, PAT_TERMINAL);
			if (rv != VIGIL_OK)
				return rv;
			w->pat_incidents[PAT_TERMINAL]++;
			gen_label_incident(w, &w->future, first, 8.0);
		}
	}
	for (size_t i = 0; i < w->tcomp.len;) {
		if (((gen_term_comp *)vigil_vec_at(&w->tcomp, i))->days_left-- == 0)
			vigil_vec_remove_swap(&w->tcomp, i);
		else
			i++;
	}
	for (size_t i = 0; i < w->breaches.len;) {
		if (((gen_breach *)vigil_vec_at(&w->breaches, i))->days_left-- == 0)
			vigil_vec_remove_swap(&w->breaches, i);
		else
			i++;
	}
	return VIGIL_OK;
}

/* ------------------------------ output ------------------------------ */

static int
gen_ev_cmp(const void *a, const void *b)
{
	const gen_ev *x = a, *y = b;

	if (x->t_ms != y->t_ms)
		return x->t_ms < y->t_ms ? -1 : 1;
	return x->ord < y->ord ? -1 : x->ord > y->ord;
}

static vigil_err
gen_write_day(gen_world *w, FILE *out)
{
	char line[1024];

	qsort(w->day.data, w->day.len, w->day.elem_size, gen_ev_cmp);
	for (size_t i = 0; i < w->day.len; i++) {
		const gen_ev *e = &gen_evs(&w->day)[i];
		const gen_merchant *m = &w->merchants[e->merchant];
		csv_row row = { 0 };
		size_t n;

		snprintf(row.txn.txn_id, sizeof row.txn.txn_id, "t%010" PRIu64, ++w->txn_seq);
		snprintf(row.txn.card_id, sizeof row.txn.card_id, "c%08" PRIu32, e->cid);
		snprintf(row.txn.merchant_id, sizeof row.txn.merchant_id, "m%06" PRIu32, e->merchant);
		if (e->terminal >= 0)
			snprintf(row.txn.terminal_id, sizeof row.txn.terminal_id, "m%06" PRIu32 "-t%u",
			    e->merchant, (unsigned)(e->terminal - (int32_t)m->first_term));
		if (e->device >= 0x80000000u)
			snprintf(row.txn.device_id, sizeof row.txn.device_id, "x%06" PRIu32,
			    e->device - 0x80000000u);
		else if (e->device != 0)
			snprintf(row.txn.device_id, sizeof row.txn.device_id, "d%09" PRIu32, e->device);
		if (e->ip != 0)
			snprintf(row.txn.ip, sizeof row.txn.ip, "%u.%u.%u.%u", e->ip >> 24,
			    (e->ip >> 16) & 255, (e->ip >> 8) & 255, e->ip & 255);
		memcpy(row.txn.currency, "EUR", 4);
		memcpy(row.txn.country, gen_cities[m->city].country, 3);
		row.txn.event_time_ms = e->t_ms;
		row.txn.amount_minor = e->amount;
		row.txn.mcc = gen_cats[m->cat].mcc;
		row.txn.channel = gen_cats[m->cat].channel;
		row.txn.has_location = e->has_loc;
		row.txn.lat = e->lat;
		row.txn.lon = e->lon;
		if (e->pattern != PAT_NONE) {
			row.label = CSV_LABEL_FRAUD;
			row.label_time_ms = e->label_time;
			snprintf(row.fraud_pattern, sizeof row.fraud_pattern, "%s",
			    gen_pattern_names[e->pattern]);
			w->fraud_rows++;
			w->pat_rows[e->pattern]++;
		} else {
			row.label = CSV_LABEL_LEGIT;
		}
		n = csv_row_format(&row, line, sizeof line);
		if (n == 0 || fwrite(line, 1, n, out) != n)
			return VIGIL_EIO;
		w->rows++;
	}
	vigil_vec_clear(&w->day);
	return VIGIL_OK;
}

static vigil_err
gen_run(gen_world *w, FILE *out)
{
	vigil_err rv;
	int64_t start_day = w->o.start_ms / VIGIL_MS_PER_DAY;

	if (fputs(csv_header_line(), out) == EOF)
		return VIGIL_EIO;
	for (uint32_t d = 0; d < w->o.days; d++) {
		int64_t day_ms = w->o.start_ms + (int64_t)d * VIGIL_MS_PER_DAY;
		int64_t day_end = day_ms + VIGIL_MS_PER_DAY;
		int dow = (int)(((start_day + d) % 7 + 3) % 7); /* 1970-01-01 was a Thursday */

		/* cards whose fraud was reported before today were replaced */
		for (size_t i = 0; i < w->reissues.len;) {
			const gen_reissue *ri = vigil_vec_at(&w->reissues, i);

			if (ri->t_ms < day_ms) {
				w->cards[ri->card].id = w->next_card_id++;
				w->reissued++;
				vigil_vec_remove_swap(&w->reissues, i);
			} else {
				i++;
			}
		}
		/* fraud first: breaches must be active for today's shoppers */
		for (int p = 1; p < PAT_COUNT_; p++) {
			double lambda = w->incidents_per_day[p];
			if (p == PAT_SKIMMED_CARD)
				lambda = lambda / (0.5 * 4.0 * 6.5); /* breaches: ~4 shoppers/day, 6.5 days */
			else if (p == PAT_TERMINAL)
				lambda = lambda / (3.0 * 14.5);      /* compromise: ~3 frauds/day, 14.5 days */
			uint32_t n = gen_poisson(&w->rng, lambda);
			for (uint32_t i = 0; i < n; i++) {
				rv = gen_incident(w, (gen_pattern)p, day_ms);
				if (rv != VIGIL_OK)
					return rv;
			}
		}
		rv = gen_terminal_day(w, day_ms);
		if (rv != VIGIL_OK)
			return rv;
		for (uint32_t c = 0; c < w->o.cards; c++) {
			rv = gen_legit_day(w, c, day_ms, dow);
			if (rv != VIGIL_OK)
				return rv;
		}
		/* due future events (scheduled fraud) join the day */
		for (size_t i = 0; i < w->future.len;) {
			if (gen_evs(&w->future)[i].t_ms < day_end) {
				rv = vigil_vec_push(&w->day, &gen_evs(&w->future)[i]);
				if (rv != VIGIL_OK)
					return rv;
				vigil_vec_remove_swap(&w->future, i);
			} else {
				i++;
			}
		}
		rv = gen_write_day(w, out);
		if (rv != VIGIL_OK)
			return rv;
		if (w->o.progress)
			fprintf(stderr, "\rvigil-gen: day %" PRIu32 "/%" PRIu32 ", %" PRIu64 " rows",
			    d + 1, w->o.days, w->rows);
	}
	if (w->o.progress)
		fputc('\n', stderr);
	return VIGIL_OK;
}

static void
gen_world_fini(gen_world *w)
{
	free(w->cards);
	free(w->merchants);
	free(w->terms);
	free(w->by_cat_city);
	free(w->term_pos);
	vigil_vec_fini(&w->day);
	vigil_vec_fini(&w->future);
	vigil_vec_fini(&w->breaches);
	vigil_vec_fini(&w->tcomp);
	vigil_vec_fini(&w->reissues);
}

/* ------------------------------ main ------------------------------ */

/* vigil-gen's own flags, a row each (VIGIL_CLI_OPT_ENUM, common/cli.h); the
 * shared ones are common/cli.h's entries. */
#define GEN_OPTIONS(X) \
	X(GEN_OPT_CARDS,      "cards",      required_argument, 0) \
	X(GEN_OPT_DAYS,       "days",       required_argument, 0) \
	X(GEN_OPT_START,      "start",      required_argument, 0) \
	X(GEN_OPT_SEED,       "seed",       required_argument, 0) \
	X(GEN_OPT_FRAUD_RATE, "fraud-rate", required_argument, 0)

VIGIL_CLI_OPT_ENUM(GEN_OPTIONS);

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: vigil-gen [OPTIONS]\n"
	    "Writes deterministic synthetic card traffic with ground-truth fraud labels\n"
	    "as vigil CSV (docs/csv.md, docs/vigil-gen.md).\n"
	    "\n"
	    "      --cards N        cardholders (default 10000; max %u)\n"
	    "      --days N         days of traffic (default 30; max %u)\n"
	    "      --start DATE     first day, YYYY-MM-DD (default 2024-01-01)\n"
	    "      --seed N         random seed (default 1); same seed, same bytes\n"
	    "      --fraud-rate R   approximate share of fraudulent transactions\n"
	    "                       (default 0.003; 0 to 0.2)\n"
	    "  -o, --output FILE    output file (default: standard output)\n"
	    "  -q, --quiet          no progress or summary on standard error\n"
	    "  -h, --help           this help\n"
	    "  -V, --version        print the version\n"
	    "\n", GEN_MAX_CARDS, GEN_MAX_DAYS);
	vigil_cli_exit_help(f, (const char *const[]){ "", "I/O or resource error",
	    "bad command line", NULL });
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		/* Short letters only from the shared table (common/cli.h). */
		GEN_OPTIONS(VIGIL_CLI_OPT_ENTRY)
		VIGIL_CLI_OUTPUT, VIGIL_CLI_QUIET, VIGIL_CLI_HELP, VIGIL_CLI_VERSION,
		{ NULL, 0, NULL, 0 },
	};
	gen_world w;
	FILE *out = stdout;
	bool quiet = false;
	int opt, status = 1;
	vigil_err rv;

	memset(&w, 0, sizeof w);
	w.o.cards = 10000;
	w.o.days = 30;
	w.o.seed = 1;
	w.o.fraud_rate = 0.003;
	vigil_date_parse("2024-01-01", &w.o.start_ms);
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "o:qhV", longopts, NULL)) != -1) {
		switch (opt) {
		/* the shared parsers (common/cli.h): a sign, a space or an empty
		 * value is refused, never read as 0 or wrapped round */
		case GEN_OPT_CARDS:
			if (vigil_cli_parse_u32(GEN_PROG, "cards", optarg, 1, GEN_MAX_CARDS, &w.o.cards))
				return VIGIL_EXIT_USAGE;
			break;
		case GEN_OPT_DAYS:
			if (vigil_cli_parse_u32(GEN_PROG, "days", optarg, 1, GEN_MAX_DAYS, &w.o.days))
				return VIGIL_EXIT_USAGE;
			break;
		case GEN_OPT_START:
			if (vigil_date_parse(optarg, &w.o.start_ms) != VIGIL_OK ||
			    w.o.start_ms < 946684800000LL /* 2000-01-01 */ ||
			    w.o.start_ms >= 4007836800000LL /* 2097-01-01 */)
				return gen_usage_error("--start: \"%s\" is not a date YYYY-MM-DD in 2000..2096",
				    optarg);
			break;
		case GEN_OPT_SEED:
			if (vigil_cli_parse_u64(GEN_PROG, "seed", optarg, 0, UINT64_MAX, &w.o.seed))
				return VIGIL_EXIT_USAGE;
			break;
		case GEN_OPT_FRAUD_RATE:
			if (vigil_cli_parse_double(GEN_PROG, "fraud-rate", optarg, 0, false, 0.2,
			    &w.o.fraud_rate))
				return VIGIL_EXIT_USAGE;
			break;
		case 'o':
			w.o.out = optarg;
			break;
		case 'q':
			quiet = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			vigil_cli_version(stdout, "vigil-gen");
			return 0;
		default:
			return vigil_cli_bad_option("vigil-gen", argv);
		}
	}
	if (optind < argc)
		return gen_usage_error("unexpected argument \"%s\"", argv[optind]);
	if (w.o.start_ms + (int64_t)w.o.days * VIGIL_MS_PER_DAY + 90 * VIGIL_MS_PER_DAY >= 4102444800000LL)
		return gen_usage_error("--start + --days (+ label delays) must end before 2100");
	w.o.progress = !quiet && isatty(STDERR_FILENO);
	gen_rng_seed(&w.rng, w.o.seed);

	if (w.o.out != NULL && strcmp(w.o.out, "-") != 0) {
		out = fopen(w.o.out, "wb");
		if (out == NULL) {
			fprintf(stderr, "vigil-gen: %s: cannot create: %s\n", w.o.out, strerror(errno));
			return 1;
		}
	}
	setvbuf(out, NULL, _IOFBF, 1 << 20);
	rv = gen_world_build(&w);
	if (rv != VIGIL_OK) {
		fprintf(stderr, "vigil-gen: building the world: %s\n", vigil_strerror(rv));
		goto out;
	}
	rv = gen_run(&w, out);
	if (rv == VIGIL_OK && fflush(out) != 0)
		rv = VIGIL_EIO;
	if (rv != VIGIL_OK) {
		fprintf(stderr, "vigil-gen: %s: %s\n", w.o.out ? w.o.out : "stdout",
		    rv == VIGIL_EIO ? strerror(errno) : vigil_strerror(rv));
		goto out;
	}
	if (!quiet) {
		fprintf(stderr, "vigil-gen: %" PRIu64 " rows, %" PRIu32 " cards, %" PRIu32
		    " merchants, %" PRIu32 " days, %" PRIu64 " fraudulent (%.3f%%)\n",
		    w.rows, w.o.cards, w.nmerchants, w.o.days, w.fraud_rows,
		    w.rows ? 100.0 * (double)w.fraud_rows / (double)w.rows : 0.0);
		fprintf(stderr, "vigil-gen: %" PRIu64 " cards reissued after a reported fraud\n",
		    w.reissued);
		for (int p = 1; p < PAT_COUNT_; p++)
			fprintf(stderr, "vigil-gen:   %-22s %8" PRIu64 " rows %7" PRIu64 " incidents\n",
			    gen_pattern_names[p], w.pat_rows[p], w.pat_incidents[p]);
	}
	status = 0;
out:
	if (out != stdout) {
		if (fclose(out) != 0 && status == 0) {
			fprintf(stderr, "vigil-gen: %s: %s\n", w.o.out, strerror(errno));
			status = 1;
		}
	}
	gen_world_fini(&w);
	return status;
}
