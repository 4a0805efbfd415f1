/* SPDX-License-Identifier: MIT */
/*
 * console/fetch.c - what a case view reads beyond the index: the full
 * archived record (by segment and offset: one pread for a plain segment,
 * a scan of the segment for a compressed one), the current feature
 * generation and its model, and the model's explanation of the record from
 * the input vector vigild archived with it (docs/model.md).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app.h"
#include "console.h"
#include "model.h"
#include "segment.h"

/* The case's record from the plain segment path, by its position: the
 * file, or the writer's journal for the open segment's newest records
 * (store_frame_at; docs/archive.md, "The journal"). */
static vigil_err
fetch_pread(const char *path, const con_case *c, store_scored *ret, char *errbuf, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	uint8_t *buf = NULL;
	size_t cap = 0;
	store_record r;
	store_diag d;
	vigil_err rv;

	if (fd < 0)
		return vigil_err_from_errno(errno);
	rv = store_frame_at(fd, path, c->offset, c->seq, &buf, &cap, &r);
	close(fd);
	if (rv == VIGIL_ENOTFOUND) {
		free(buf);
		snprintf(errbuf, errlen, "%s:%" PRIu64 ": cannot read", path, c->offset);
		return VIGIL_EIO;
	}
	if (rv == VIGIL_OK)
		rv = store_scored_decode(r.payload, r.len, ret, &d);
	if (rv != VIGIL_OK)
		snprintf(errbuf, errlen, "%s:%" PRIu64 ": %s", path, c->offset, vigil_strerror(rv));
	free(buf);
	return rv;
}

/* The segment whose name ends in suffix ("-S.log"), plain or .zst. */
static bool
fetch_find_segment(const char *dir, const char *suffix, char *ret_path, size_t len,
    bool *ret_zst)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	size_t sl = strlen(suffix);
	bool found = false;

	if (d == NULL)
		return false;
	while ((e = readdir(d)) != NULL) {
		size_t nl = strlen(e->d_name);
		bool zst = nl > 4 && strcmp(e->d_name + nl - 4, ".zst") == 0;
		size_t base = zst ? nl - 4 : nl;

		if (strncmp(e->d_name, "seg-", 4) != 0 || base < sl ||
		    memcmp(e->d_name + base - sl, suffix, sl) != 0)
			continue;
		if (found && zst)
			continue; /* prefer the plain file while both exist */
		snprintf(ret_path, len, "%s/%s", dir, e->d_name);
		*ret_zst = zst;
		found = true;
	}
	closedir(d);
	return found;
}

vigil_err
con_archive_fetch(const char *archive_dir, const con_case *c, store_scored *ret, char *errbuf,
    size_t errlen)
{
	char path[4300], pat[64];
	store_reader *rd = NULL;
	store_record r;
	store_diag d;
	con_damage dmg = { 0 };
	bool zst = false;
	vigil_err rv;

	/* the segment's name has its creation date, which the index does not
	 * keep: find it by its first sequence number */
	snprintf(pat, sizeof pat, "-%020" PRIu64 ".log", c->seg_first);
	if (!fetch_find_segment(archive_dir, pat, path, sizeof path, &zst)) {
		snprintf(errbuf, errlen, "segment %" PRIu64 " is gone from %s (retention?)",
		    c->seg_first, archive_dir);
		return VIGIL_ENOTFOUND;
	}
	if (!zst) {
		rv = fetch_pread(path, c, ret, errbuf, errlen);
		if (rv != VIGIL_ENOTFOUND)
			return rv;
		/* compressed and removed meanwhile */
		if (!fetch_find_segment(archive_dir, pat, path, sizeof path, &zst) || !zst)
			return rv;
	}
	rv = store_reader_open_segment(path, con_damage_on_corrupt, &dmg, &rd, &d);
	if (rv != VIGIL_OK) {
		snprintf(errbuf, errlen, "%s", d.msg);
		return rv;
	}
	while ((rv = store_reader_next(rd, &r, &d)) == VIGIL_OK) {
		if (r.seq == c->seq) {
			rv = r.type == STORE_REC_SCORE ? store_scored_decode(r.payload, r.len, ret, &d) :
			    VIGIL_ECORRUPT;
			break;
		}
		if (r.seq > c->seq) {
			rv = VIGIL_ENOTFOUND;
			break;
		}
	}
	if (rv == VIGIL_ENOTFOUND && dmg.n > 0) /* passed over with what was lost */
		snprintf(errbuf, errlen, "%s: record %" PRIu64 ": not readable: the segment is "
		    "damaged (%s)", path, c->seq, dmg.first);
	else if (rv != VIGIL_OK)
		snprintf(errbuf, errlen, "%s: record %" PRIu64 ": %s", path, c->seq, vigil_strerror(rv));
	store_reader_close(rd);
	return rv;
}

store_gen *
con_gen_current(con_app *app)
{
	uint64_t cur = 0;
	store_diag d;

	if (store_gen_current(app->o.data, &cur) != VIGIL_OK || cur == 0)
		return app->gen;
	if (cur != app->gen_no || app->gen == NULL) {
		store_gen *g = NULL;
		if (store_gen_open(app->o.data, cur, &g, &d) != VIGIL_OK)
			return app->gen; /* keep the one we had */
		store_gen_close(app->gen);
		app->gen = g;
		app->gen_no = cur;
	}
	return app->gen;
}

/*
 * Generation gen's model in *ret (NULL: it has none, or it cannot be read),
 * from the cache or read and cached. false if gen is not on disk (any more)
 * and not cached.
 */
static bool
con_model_get(con_app *app, uint64_t gen, app_model **ret)
{
	store_gen *g = NULL, *cur;
	store_diag d;
	char err[256];
	int lru = 0;

	for (int i = 0; i < CON_MODEL_CACHE; i++) {
		if (app->models[i].gen == gen && gen != 0) {
			app->models[i].used = ++app->model_tick;
			*ret = app->models[i].model;
			return true;
		}
		if (app->models[i].used < app->models[lru].used)
			lru = i;
	}
	cur = con_gen_current(app);
	if (cur != NULL && app->gen_no == gen)
		g = cur;
	else if (gen == 0 || store_gen_open(app->o.data, gen, &g, &d) != VIGIL_OK)
		return false;
	app_model_free(app->models[lru].model);
	app->models[lru].model = NULL;
	if (app_model_from_gen(g, &app->models[lru].model, err, sizeof err) != VIGIL_OK)
		app->models[lru].model = NULL;
	app->models[lru].gen = gen;
	app->models[lru].used = ++app->model_tick;
	if (g != cur)
		store_gen_close(g);
	*ret = app->models[lru].model;
	return true;
}

json_t *
con_model_explain(con_app *app, const store_scored *rec, bool *ret_kept)
{
	const uint32_t *layout;
	uint32_t nl = store_schema_model_inputs(&layout), n = 0;
	float xl[STORE_MODEL_MAX_INPUTS], *x = NULL;
	const model_forest *f;
	json_t *o = NULL, *reasons;
	app_model *m = NULL;
	uint64_t mgen = rec->features_gen;
	uint32_t nf;
	bool scored;

	/* the model of the generation that scored it; today's only when that
	 * one is gone. Generation 0: scored before any, so by rules alone. */
	*ret_kept = true;
	if (rec->features_gen == 0)
		return json_null();
	scored = *ret_kept = con_model_get(app, mgen, &m);
	if (!scored) {
		/* gone: model.score as archived, when the rules archived it,
		 * still says whether a model scored it at all */
		for (uint32_t i = 0; i < rec->nfeats; i++)
			if (strcmp(rec->feats[i].name, "model.score") == 0 &&
			    !rec->feats[i].val.present)
				return json_null();
		if (con_gen_current(app) == NULL || !con_model_get(app, mgen = app->gen_no, &m))
			return json_null();
	}
	if (rec->model_in_len == 0 || rec->model_layout != store_schema_model_layout())
		return json_null();
	if (store_model_vec_decode(rec->model_in, rec->model_in_len, xl, STORE_MODEL_MAX_INPUTS, &n) !=
	    VIGIL_OK || n != nl)
		return json_null();
	if (m == NULL)
		return json_null();
	f = app_model_forest(m);
	nf = model_forest_nfeatures(f);
	x = malloc((nf ? nf : 1) * sizeof *x);
	if (x == NULL)
		return json_null();
	for (uint32_t i = 0; i < nf; i++) {
		uint32_t slot = app_model_slot(m, i);
		x[i] = NAN;
		for (uint32_t j = 0; j < nl; j++) {
			if (layout[j] == slot) {
				x[i] = xl[j];
				break;
			}
		}
	}
	{
		float *contrib = malloc((nf + 1) * sizeof *contrib);
		const char **names = malloc((nf ? nf : 1) * sizeof *names);

		if (contrib == NULL || names == NULL) {
			free(contrib);
			free(names);
			free(x);
			return json_null();
		}
		model_forest_contrib(f, x, contrib);
		for (uint32_t i = 0; i < nf; i++)
			names[i] = model_forest_feature(f, i);
		reasons = con_reasons_json(names, x, contrib, nf, 5, 3, rec->txn.currency);
		free(contrib);
		free(names);
	}
	o = json_pack("{s:I, s:b, s:f, s:o}", "generation", (json_int_t)mgen, "scored",
	    (int)scored, "score", model_forest_predict(f, x), "reasons", reasons);
	free(x);
	return o;
}

/* A feature's value as a reader wants it: an integer as an integer, a
 * boolean as yes/no, missing as null. */
static json_t *
reason_value(const store_field *fd, float v)
{
	if (isnan(v))
		return json_null();
	if (fd != NULL && fd->type == VIGIL_T_BOOL)
		return json_string(v != 0 ? "yes" : "no");
	if (v == floorf(v) && fabsf(v) < 1e15f)
		return json_integer((json_int_t)v);
	return json_real(v);
}

/*
 * Features with a usual value of the card in the same vector: the amount
 * against the card's 90-day mean, a day's or a week's count and spend
 * against the card's 90-day average for that span.
 */
static const struct reason_usual_def {
	const char *feature, *base;
	double      scale; /* base x scale = the usual value */
	const char *what;
	bool        money;
} reason_usuals[] = {
	{ "amount", "card.amount_mean_90d", 1.0, "the card's 90-day mean", true },
	{ "vel.card.sum_1h", "card.amount_mean_90d", 1.0, "the card's 90-day mean amount", true },
	{ "vel.card.count_24h", "card.count_90d", 1.0 / 90, "the card's daily average over 90 days", false },
	{ "vel.card.sum_24h", "card.amount_sum_90d", 1.0 / 90, "the card's daily average over 90 days", true },
	{ "vel.card.count_7d", "card.count_90d", 7.0 / 90, "the card's weekly average over 90 days", false },
	{ "vel.card.sum_7d", "card.amount_sum_90d", 7.0 / 90, "the card's weekly average over 90 days", true },
};

/* v as a reader wants it: an integer as an integer, money with two
 * decimals and its currency, else up to 4 significant digits. */
static void
reason_num(double v, bool money, const char *currency, char *buf, size_t len)
{
	const char *cur = currency != NULL && currency[0] != '\0' ? currency : "";

	if (v == floor(v) && fabs(v) < 1e15)
		snprintf(buf, len, "%.0f%s%s", v, money && *cur ? " " : "", money ? cur : "");
	else if (money)
		snprintf(buf, len, "%.2f%s%s", v, *cur ? " " : "", cur);
	else
		snprintf(buf, len, "%.4g", v);
}

/* How x[i] compares with the card's usual value, when the vector has it:
 * ", 2.6x the card's 90-day mean (90 EUR)"; "" otherwise. */
static void
reason_usual(const char *const *names, const float *x, uint32_t n, uint32_t i,
    const char *currency, char *buf, size_t len)
{
	buf[0] = '\0';
	if (isnan(x[i]))
		return;
	for (size_t d = 0; d < sizeof reason_usuals / sizeof reason_usuals[0]; d++) {
		const struct reason_usual_def *u = &reason_usuals[d];

		if (strcmp(names[i], u->feature) != 0)
			continue;
		for (uint32_t j = 0; j < n; j++) {
			if (strcmp(names[j], u->base) == 0 && !isnan(x[j]) && x[j] > 0) {
				double usual = (double)x[j] * u->scale;
				char us[48];

				reason_num(usual, u->money, currency, us, sizeof us);
				snprintf(buf, len, ", %.1fx %s (%s)", (double)x[i] / usual, u->what, us);
				return;
			}
		}
		return;
	}
}

json_t *
con_reasons_json(const char *const *names, const float *x, const float *contrib, uint32_t n,
    uint32_t kup, uint32_t kdown, const char *currency)
{
	json_t *arr = json_array();
	bool *used = calloc(n ? n : 1, sizeof *used);

	if (arr == NULL || used == NULL) {
		free(used);
		return arr;
	}
	/* the largest pushes up, then the largest pushes down */
	for (int dir = 1; dir >= -1; dir -= 2) {
		uint32_t k = dir > 0 ? kup : kdown;

		for (uint32_t r = 0; r < k; r++) {
			uint32_t best = n;
			for (uint32_t i = 0; i < n; i++) {
				float c = contrib[i] * (float)dir;
				if (!used[i] && c > 0 && (best == n || c > contrib[best] * (float)dir))
					best = i;
			}
			if (best == n)
				break;
			used[best] = true;

			uint32_t slot;
			const store_field *fd = store_schema_find(names[best], &slot) == VIGIL_OK ?
			    store_schema_field(slot) : NULL;
			json_t *val = reason_value(fd, x[best]);
			/* money: the amount, sums, means, quantiles and spreads of
			 * amounts; not a ratio of two (_to_) or a z-score */
			bool money = (strcmp(names[best], "amount") == 0 ||
			    strncmp(names[best], "vel.card.sum_", 13) == 0 ||
			    strncmp(names[best], "card.amount_", 12) == 0) &&
			    strstr(names[best], "_to_") == NULL &&
			    strcmp(names[best], "card.amount_zscore") != 0;
			char vs[64], text[400], usual[128];
			int dl;

			if (json_is_null(val))
				snprintf(vs, sizeof vs, "missing");
			else if (json_is_string(val))
				snprintf(vs, sizeof vs, "%s", json_string_value(val));
			else
				reason_num((double)x[best], money, currency, vs, sizeof vs);
			reason_usual(names, x, n, best, currency, usual, sizeof usual);
			/* the amount is read at a glance: "amount 220.50 EUR, 2.5x ..." */
			if (strcmp(names[best], "amount") == 0)
				snprintf(text, sizeof text, "amount %s%s (%s the risk)", vs, usual,
				    dir > 0 ? "raises" : "lowers");
			else {
				/* a doc's "(missing: when)" is for a missing value only */
				const char *doc = fd != NULL ? fd->doc : names[best];
				const char *m = json_is_null(val) ? NULL : strstr(doc, " (missing:");

				dl = m != NULL ? (int)(m - doc) : (int)strlen(doc);
				snprintf(text, sizeof text, "%.*s: %s%s (%s the risk)", dl, doc, vs, usual,
				    dir > 0 ? "raises" : "lowers");
			}
			json_array_append_new(arr, json_pack("{s:s, s:o, s:f, s:s, s:s}", "feature",
			    names[best], "value", val, "contrib", (double)contrib[best], "push",
			    dir > 0 ? "up" : "down", "text", text));
		}
	}
	free(used);
	return arr;
}
