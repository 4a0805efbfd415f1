/* SPDX-License-Identifier: MIT */
/*
 * tools/replay/report.c - writes the self-contained HTML report (report.h).
 * Plots are drawn as inline SVG from the metrics and report_data: no
 * script, no external stylesheet, font or image, so the page renders
 * offline and in a mail attachment, and nothing from the input can run in
 * it. Every text from input (rule names, ids, paths, pattern names) is
 * HTML-escaped. Each section has an id (summary, money, score-histogram,
 * pr-curve, rules, patterns, trend, top-alerts, compare-diff, latency)
 * that tests/tools/test_report_ui.py looks for.
 */
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "report_int.h"

#define W 640
#define H 260
#define PADL 56
#define PADB 36
#define PADT 16
#define PADR 16

static void
rep_esc(FILE *out, const char *s)
{
	for (; s != NULL && *s != '\0'; s++) {
		switch (*s) {
		case '<': fputs("&lt;", out); break;
		case '>': fputs("&gt;", out); break;
		case '&': fputs("&amp;", out); break;
		case '"': fputs("&quot;", out); break;
		case '\'': fputs("&#39;", out); break;
		default: fputc(*s, out); break;
		}
	}
}

static void
rep_pct(FILE *out, double v)
{
	if (isnan(v))
		fputs("n/a", out);
	else
		fprintf(out, "%.2f%%", 100.0 * v);
}

static void
rep_num(FILE *out, double v)
{
	if (isnan(v))
		fputs("n/a", out);
	else
		fprintf(out, "%.4f", v);
}

/* The rule file's number as the file wrote it: the shortest of %.15g,
 * %.16g and %.17g that reads back as v (50.4, not 50.399999999999999). */
static void
rep_file_num(FILE *out, double v)
{
	char buf[32];

	for (int prec = 15; prec <= 17; prec++) {
		snprintf(buf, sizeof buf, "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			break;
	}
	fputs(buf, out);
}

/* A band as it decided: its value in force ("%.4g"), and the rule file's
 * number beside it when a tuned value differs ("35.06 (file: 40.5)"). */
static void
rep_band(FILE *out, double in_force, double file)
{
	if (in_force == file) {
		rep_file_num(out, file);
		return;
	}
	fprintf(out, "%.4g (file: ", in_force);
	rep_file_num(out, file);
	fputc(')', out);
}

/* A "nice" tick step (1, 2 or 5 times a power of ten) giving about n ticks
 * over range. */
static double
rep_step(double range, int n)
{
	double raw = range / (n > 0 ? n : 1), p, f;

	if (!(raw > 0))
		return 1;
	p = pow(10, floor(log10(raw)));
	f = raw / p;
	return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p;
}

static void
rep_money(FILE *out, double v)
{
	fprintf(out, "%.2f", v);
}

static void
rep_time(FILE *out, int64_t ms)
{
	char buf[40];

	vigil_time_format_rfc3339(ms, buf, sizeof buf);
	buf[16] = '\0'; /* YYYY-MM-DDTHH:MM */
	buf[10] = ' ';
	fputs(buf, out);
}

static void
rep_svg_open_id(FILE *out, const char *id, const char *title, const char *xlabel,
    const char *ylabel)
{
	fprintf(out, "<figure id=\"%s\"><figcaption>", id);
	rep_esc(out, title);
	fprintf(out, "</figcaption>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
	    "height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\">\n", W, H, W, H);
	fprintf(out, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" class=\"axis\"/>\n",
	    PADL, H - PADB, W - PADR, H - PADB);
	fprintf(out, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" class=\"axis\"/>\n",
	    PADL, PADT, PADL, H - PADB);
	fprintf(out, "<text x=\"%d\" y=\"%d\" class=\"lbl\" text-anchor=\"middle\">", (W + PADL) / 2, H - 4);
	rep_esc(out, xlabel);
	fprintf(out, "</text>\n<text x=\"12\" y=\"%d\" class=\"lbl\" text-anchor=\"middle\" "
	    "transform=\"rotate(-90 12 %d)\">", (H - PADB) / 2, (H - PADB) / 2);
	rep_esc(out, ylabel);
	fprintf(out, "</text>\n");
}

static void
rep_svg_open(FILE *out, const char *title, const char *xlabel, const char *ylabel)
{
	rep_svg_open_id(out, "latency", title, xlabel, ylabel);
}

static void
rep_svg_close(FILE *out)
{
	fprintf(out, "</svg></figure>\n");
}

static double
rep_x(double f)
{
	return PADL + f * (W - PADL - PADR);
}

static double
rep_y(double f)
{
	return (H - PADB) - f * (H - PADB - PADT);
}

/* Score histogram: share of each class per score bin (classes differ in
 * size by orders of magnitude, so each is normalised to its own total; the
 * share axis is logarithmic, or the legitimate rows' pile at 0 would flatten
 * everything else), on bins of a round width with ticks at round scores,
 * the review and decline bands shaded and their thresholds named. */
static double
rep_logy(double v, double lmin)
{
	return v <= 0 ? 0 : (log10(v) - lmin) / -lmin;
}

static void
rep_score_hist(FILE *out, const report_info *info, const metrics *m)
{
	enum { MAXB = 60 };
	uint32_t n = metrics_nscores(m);
	double legit[MAXB] = { 0 }, fraud[MAXB] = { 0 }, tl = 0, tf = 0, minv = 1;
	double lo, hi, width, xs, lmin;
	int nb;

	rep_svg_open_id(out, "score-histogram", "Score histogram by label (share of each class, "
	    "log scale), with the review and decline bands", "score", "share of the class");
	if (n == 0) {
		rep_svg_close(out);
		return;
	}
	{
		metrics_score_bin b;

		metrics_get_score(m, 0, &b);
		lo = b.score;
		metrics_get_score(m, n - 1, &b);
		hi = b.score;
	}
	if (info->have_bands) { /* the bands are always on the axis */
		lo = fmin(lo, floor(info->review_in_force) - 1);
		hi = fmax(hi, ceil(info->decline_in_force) + 1);
	}
	width = rep_step(hi - lo + 1, 40);
	if (width < 1)
		width = 1;
	lo = floor(lo / width) * width;
	nb = (int)ceil((hi + 1 - lo) / width);
	if (nb > MAXB)
		nb = MAXB;
	if (nb < 1)
		nb = 1;
	for (uint32_t i = 0; i < n; i++) {
		metrics_score_bin b;
		int k;

		metrics_get_score(m, i, &b);
		k = (int)((b.score - lo) / width);
		k = k < 0 ? 0 : k >= nb ? nb - 1 : k;
		legit[k] += (double)b.legit;
		fraud[k] += (double)b.fraud;
		tl += (double)b.legit;
		tf += (double)b.fraud;
	}
	for (int k = 0; k < nb; k++) {
		legit[k] = tl > 0 ? legit[k] / tl : 0;
		fraud[k] = tf > 0 ? fraud[k] / tf : 0;
		if (legit[k] > 0)
			minv = fmin(minv, legit[k]);
		if (fraud[k] > 0)
			minv = fmin(minv, fraud[k]);
	}
	/* from the power of ten below the smallest share (at most 4 decades) */
	lmin = floor(log10(minv)) - (minv == 1 ? 1 : 0);
	if (lmin < -4)
		lmin = -4;
	xs = (double)(W - PADL - PADR) / (nb * width); /* pixels per score point */
#define SX(v) (PADL + ((v) - lo) * xs)
	if (info->have_bands) {
		double r0 = SX(info->review_in_force), d0 = SX(info->decline_in_force);
		double end = W - PADR;

		if (d0 > end)
			d0 = end;
		fprintf(out, "<rect class=\"band-review\" x=\"%.1f\" y=\"%d\" width=\"%.1f\" "
		    "height=\"%d\"><title>review: score &gt;= %.4g</title></rect>\n", r0, PADT,
		    d0 - r0 > 0 ? d0 - r0 : 0, H - PADB - PADT, info->review_in_force);
		fprintf(out, "<rect class=\"band-decline\" x=\"%.1f\" y=\"%d\" width=\"%.1f\" "
		    "height=\"%d\"><title>decline: score &gt;= %.4g</title></rect>\n", d0, PADT,
		    end - d0 > 0 ? end - d0 : 0, H - PADB - PADT, info->decline_in_force);
		fprintf(out, "<text x=\"%.1f\" y=\"%d\" class=\"tick bandl\">review &#8805; ",
		    r0 + 3, PADT + 22);
		rep_band(out, info->review_in_force, info->review_at);
		fprintf(out, "</text>\n<text x=\"%.1f\" y=\"%d\" class=\"tick bandl\">"
		    "decline &#8805; ", d0 + 3, PADT + 34);
		rep_band(out, info->decline_in_force, info->decline_at);
		fputs("</text>\n", out);
	}
	for (int k = 0; k < nb; k++) {
		double x = PADL + k * width * xs, bw = width * xs;

		double yl = rep_logy(legit[k], lmin), yf = rep_logy(fraud[k], lmin);

		fprintf(out, "<rect class=\"legit\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\">"
		    "<title>score %.0f to %.0f: %.3g%% of legit</title></rect>\n",
		    x, rep_y(yl), bw / 2 - 0.5 > 0.5 ? bw / 2 - 0.5 : 0.5,
		    (H - PADB) - rep_y(yl), lo + k * width, lo + (k + 1) * width - 1,
		    100 * legit[k]);
		fprintf(out, "<rect class=\"fraud\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\">"
		    "<title>score %.0f to %.0f: %.3g%% of fraud</title></rect>\n",
		    x + bw / 2, rep_y(yf), bw / 2 - 0.5 > 0.5 ? bw / 2 - 0.5 : 0.5,
		    (H - PADB) - rep_y(yf), lo + k * width, lo + (k + 1) * width - 1,
		    100 * fraud[k]);
	}
	/* x ticks at round scores, y ticks at round shares */
	double tick = rep_step(nb * width, 8);

	for (double v = ceil(lo / tick) * tick; v <= lo + nb * width + 1e-9; v += tick) {
		fprintf(out, "<line class=\"grid\" x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\"/>"
		    "<text x=\"%.1f\" y=\"%d\" class=\"tick xtick\" text-anchor=\"middle\">%.0f</text>\n",
		    SX(v), H - PADB, SX(v), H - PADB + 4, SX(v), H - PADB + 15, v);
	}
	for (double e = lmin; e <= 0; e += 1) { /* a tick per decade: 0.1%, 1%, 10%, 100% */
		double y = rep_y((e - lmin) / -lmin);

		fprintf(out, "<line class=\"grid\" x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\"/>"
		    "<text x=\"%d\" y=\"%.1f\" class=\"tick ytick\" text-anchor=\"end\">%g%%</text>\n",
		    PADL - 3, y, W - PADR, y, PADL - 5, y + 4, 100 * pow(10, e));
	}
#undef SX
	fprintf(out, "<rect class=\"legit\" x=\"%d\" y=\"%d\" width=\"10\" height=\"10\"/>"
	    "<text x=\"%d\" y=\"%d\" class=\"tick\">legit</text>\n", W - 120, PADT, W - 106, PADT + 9);
	fprintf(out, "<rect class=\"fraud\" x=\"%d\" y=\"%d\" width=\"10\" height=\"10\"/>"
	    "<text x=\"%d\" y=\"%d\" class=\"tick\">fraud</text>\n", W - 60, PADT, W - 46, PADT + 9);
	rep_svg_close(out);
}

/* The curve's point at score >= t, the review band (scores are binned by
 * their whole part, so a band with a fraction is taken at the next whole
 * score): tp frauds and fp legitimate of P frauds in all, as the curve's
 * loop summed them. A hollow circle, its threshold in its title. */
static void
rep_pr_band_point(FILE *out, uint64_t tp, uint64_t fp, uint64_t P, int32_t t, double band)
{
	if (tp + fp == 0)
		return;
	fprintf(out, "<circle id=\"band-point\" class=\"bandp\" cx=\"%.1f\" cy=\"%.1f\" r=\"4\">"
	    "<title>score &#8805; %d alone (the review band at the end, %.4g, at the curve's "
	    "whole scores): precision %.2f%%, recall %.2f%%</title></circle>\n",
	    rep_x((double)tp / (double)P), rep_y((double)tp / (double)(tp + fp)), (int)t, band,
	    100.0 * (double)tp / (double)(tp + fp), 100.0 * (double)tp / (double)P);
	fprintf(out, "<text x=\"%.1f\" y=\"%.1f\" class=\"tick\">score &#8805; %d</text>\n",
	    rep_x((double)tp / (double)P) + 7, rep_y((double)tp / (double)(tp + fp)) + 14, (int)t);
}

/* Precision-recall curve: one point per distinct score threshold; the
 * decisions made (alert = review or decline) marked, and the point of the
 * review band in force at the end on the curve. The decisions follow each
 * night's bands and the rules' own decisions, so their point need not lie
 * on the curve. */
static void
rep_pr_curve(FILE *out, const report_info *info, const metrics *m, const metrics *cmp)
{
	const metrics *ms[2] = { m, cmp };
	metrics_confusion c;

	rep_svg_open_id(out, "pr-curve", "Precision-recall curve (threshold on the score), with "
	    "the decisions made (each night's bands and the rules' own decisions: not a single "
	    "threshold, so not always on the curve)", "recall", "precision");
	for (int t = 0; t <= 4; t++) {
		fprintf(out, "<line class=\"grid\" x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\"/>"
		    "<line class=\"grid\" x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\"/>\n",
		    rep_x(t / 4.0), PADT, rep_x(t / 4.0), H - PADB, PADL, rep_y(t / 4.0), W - PADR,
		    rep_y(t / 4.0));
		fprintf(out, "<text x=\"%.1f\" y=\"%d\" class=\"tick xtick\" text-anchor=\"middle\">"
		    "%.0f%%</text>\n", rep_x(t / 4.0), H - PADB + 15, 25.0 * t);
		fprintf(out, "<text x=\"%d\" y=\"%.1f\" class=\"tick ytick\" text-anchor=\"end\">"
		    "%.0f%%</text>\n", PADL - 5, rep_y(t / 4.0) + 4, 25.0 * t);
	}
	for (int j = 0; j < 2; j++) {
		uint32_t n;
		uint64_t P = 0, tp = 0, fp = 0, btp = 0, bfp = 0;
		/* the review band at the curve's whole scores */
		int32_t band = (int32_t)ceil(info->have_bands ? info->review_in_force : 0);

		if (ms[j] == NULL)
			continue;
		n = metrics_nscores(ms[j]);
		for (uint32_t i = 0; i < n; i++) {
			metrics_score_bin b;

			metrics_get_score(ms[j], i, &b);
			P += b.fraud;
		}
		if (P == 0)
			continue;
		fprintf(out, "<polyline class=\"%s\" points=\"", j == 0 ? "curve" : "curve2");
		for (uint32_t i = n; i-- > 0;) {
			metrics_score_bin b;

			metrics_get_score(ms[j], i, &b);
			tp += b.fraud;
			fp += b.legit;
			if (b.score >= band) { /* the bins at or above the band, so far */
				btp = tp;
				bfp = fp;
			}
			if (tp + fp == 0)
				continue;
			fprintf(out, "%.1f,%.1f ", rep_x((double)tp / (double)P),
			    rep_y((double)tp / (double)(tp + fp)));
		}
		fprintf(out, "\"/>\n");
		if (j == 0 && info->have_bands)
			rep_pr_band_point(out, btp, bfp, P, band, info->review_in_force);
	}
	metrics_get_confusion(m, &c);
	if (!isnan(c.precision) && !isnan(c.recall)) {
		fprintf(out, "<circle id=\"operating-point\" class=\"op\" cx=\"%.1f\" cy=\"%.1f\" r=\"5\">"
		    "<title>the decisions made (review or decline): precision %.2f%%, recall %.2f%%"
		    "</title></circle>\n", rep_x(c.recall), rep_y(c.precision), 100 * c.precision,
		    100 * c.recall);
		fprintf(out, "<text x=\"%.1f\" y=\"%.1f\" class=\"tick opl\">decisions: P %.1f%%, "
		    "R %.1f%%</text>\n", rep_x(c.recall) + (c.recall > 0.6 ? -130 : 8),
		    rep_y(c.precision) - 8, 100 * c.precision, 100 * c.recall);
	}
	if (cmp != NULL)
		fprintf(out, "<text x=\"%d\" y=\"%d\" class=\"tick curve2l\" text-anchor=\"end\">"
		    "dashed: --compare rules</text>\n", W - PADR, PADT + 10);
	rep_svg_close(out);
}

/* Per rule: hits and the fraud share of its hits, as bars. Shadow rules
 * (evaluated, adding no points) and negative-points rules (lowering the
 * score: a low fraud share is what they are for) are marked as such. */
static void
rep_rules(FILE *out, const report_info *info, const metrics *m)
{
	uint32_t n = metrics_nrules(m);
	int h = PADT + 18 * (int)(n ? n : 1) + 20;
	int lw = 300, bw = W + 60 - lw - 220;

	fprintf(out, "<figure id=\"rules\"><figcaption>Per rule: share of its hits that are "
	    "fraud (bar), hits; <span class=\"shadow-key\">shadow</span> rules add no points, "
	    "<span class=\"negative-key\">negative</span> rules lower the score</figcaption>\n"
	    "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
	    "viewBox=\"0 0 %d %d\">\n", W + 60, h, W + 60, h);
	for (uint32_t i = 0; i < n; i++) {
		metrics_rule r;
		int y = PADT + 18 * (int)i;
		bool known = info->rule_flags != NULL && (info->rule_flags[i] & REPORT_RULE_KNOWN);
		bool shadow = known && (info->rule_flags[i] & REPORT_RULE_SHADOW);
		int32_t pts = known && info->rule_points ? info->rule_points[i] : 0;
		const char *cls = shadow ? "rule-shadow" : pts < 0 ? "rule-negative" : "rule-active";
		double p;

		metrics_get_rule(m, i, &r);
		p = isnan(r.precision) ? 0 : r.precision;
		fprintf(out, "<g class=\"rule %s\"><text x=\"%d\" y=\"%d\" class=\"tick\" "
		    "text-anchor=\"end\">", cls, lw - 6, y + 12);
		rep_esc(out, r.name);
		if (shadow)
			fputs(" (shadow)", out);
		else if (pts < 0)
			fprintf(out, " (%d points)", (int)pts);
		fprintf(out, "</text><rect class=\"bar\" x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"14\">"
		    "<title>", lw, y, p * bw);
		rep_esc(out, r.name);
		fprintf(out, ": %" PRIu64 " hits, %" PRIu64 " fraud, %" PRIu64 " legit</title></rect>"
		    "<text x=\"%.1f\" y=\"%d\" class=\"tick\">", r.hits, r.fraud_hits, r.legit_hits,
		    lw + p * bw + 4, y + 12);
		if (r.hits == 0) {
			fputs("no hits", out);
		} else {
			rep_pct(out, r.precision);
			fprintf(out, " fraud of %" PRIu64 " hits", r.hits);
			if (shadow)
				fputs(" (would have)", out);
			else if (pts < 0)
				fputs(": clears, low is good", out);
		}
		fprintf(out, "</text></g>\n");
	}
	fprintf(out, "</svg></figure>\n");
}

/* Money: what was caught and what the alerts cost legitimate customers. */
static void
rep_money_table(FILE *out, const report_data *d)
{
	fprintf(out, "<h2>Money</h2>\n<table id=\"money\"><tr><th></th><th>amount</th>"
	    "<th>share</th><th>transactions</th></tr>\n");
	fprintf(out, "<tr><th>fraud, all</th><td>");
	rep_money(out, d->fraud_amount);
	fprintf(out, "</td><td>100%%</td><td>%" PRIu64 "</td></tr>\n", d->fraud_rows);
	fprintf(out, "<tr class=\"caught\"><th>fraud caught (review or decline)</th><td>");
	rep_money(out, d->fraud_caught);
	fprintf(out, "</td><td>");
	rep_pct(out, d->fraud_amount > 0 ? d->fraud_caught / d->fraud_amount : NAN);
	fprintf(out, "</td><td></td></tr>\n<tr><th>fraud declined</th><td>");
	rep_money(out, d->fraud_declined);
	fprintf(out, "</td><td>");
	rep_pct(out, d->fraud_amount > 0 ? d->fraud_declined / d->fraud_amount : NAN);
	fprintf(out, "</td><td></td></tr>\n<tr class=\"cost\"><th>legitimate declined</th><td>");
	rep_money(out, d->legit_declined);
	fprintf(out, "</td><td>");
	rep_pct(out, d->legit_amount > 0 ? d->legit_declined / d->legit_amount : NAN);
	fprintf(out, "</td><td>%" PRIu64 "</td></tr>\n<tr class=\"cost\"><th>legitimate sent to "
	    "review</th><td>", d->legit_declined_rows);
	rep_money(out, d->legit_reviewed);
	fprintf(out, "</td><td>");
	rep_pct(out, d->legit_amount > 0 ? d->legit_reviewed / d->legit_amount : NAN);
	fprintf(out, "</td><td>%" PRIu64 "</td></tr>\n</table>\n<p class=\"note\">Amounts in "
	    "major units of ", d->legit_reviewed_rows);
	if (d->mixed_currency)
		fputs("their currencies, summed as they are (the input mixes currencies)", out);
	else
		rep_esc(out, d->currency[0] ? d->currency : "the input's currency");
	fputs("; shares are of the fraud, or legitimate, amount of labelled rows.</p>\n", out);
}

/* The night whose as_of is day (YYYY-MM-DD) in info->nights, or NULL. */
static const json_t *
rep_night(const report_info *info, const char *day)
{
	size_t i;
	json_t *n;

	if (info->nights == NULL)
		return NULL;
	json_array_foreach(info->nights, i, n) {
		const char *a = json_string_value(json_object_get(n, "as_of"));

		if (a != NULL && strcmp(a, day) == 0)
			return n;
	}
	return NULL;
}

static double
rep_div(uint64_t a, uint64_t b)
{
	return b ? (double)a / (double)b : NAN;
}

/* Day by day: alert rate, precision and recall of that day's rows (their
 * final labels), and the model each night's rebuild trained. */
static void
rep_trend(FILE *out, const report_info *info, const report_data *d)
{
	static const char *cls[3] = { "alert-rate", "precision", "recall" };
	static const char *name[3] = { "alert rate", "precision", "recall" };
	double maxr = 0;
	uint32_t n = d->ndays;

	fprintf(out, "<h2>Day by day</h2>\n");
	if (n == 0) {
		fprintf(out, "<p id=\"trend\">No day measured.</p>\n");
		return;
	}
	for (uint32_t i = 0; i < n; i++)
		maxr = fmax(maxr, rep_div(d->days[i].alerts, d->days[i].rows));
	rep_svg_open_id(out, "trend-chart", "Per day: precision and recall (left axis), alert rate "
	    "(right axis); nightly rebuilds switch the features and the model between days",
	    "day", "precision, recall");
	for (int t = 0; t <= 4; t++) {
		fprintf(out, "<line class=\"grid\" x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\"/>"
		    "<text x=\"%d\" y=\"%.1f\" class=\"tick ytick\" text-anchor=\"end\">%.0f%%</text>"
		    "<text x=\"%d\" y=\"%.1f\" class=\"tick ytick alert-rate-l\">%.2g%%</text>\n",
		    PADL, rep_y(t / 4.0), W - PADR, rep_y(t / 4.0), PADL - 5, rep_y(t / 4.0) + 4,
		    25.0 * t, W - PADR + 2, rep_y(t / 4.0) + 4, 100 * maxr * t / 4.0);
	}
	for (int s = 0; s < 3; s++) {
		fprintf(out, "<polyline class=\"trend %s\" points=\"", cls[s]);
		for (uint32_t i = 0; i < n; i++) {
			const report_day *dy = &d->days[i];
			double v = s == 0 ? rep_div(dy->alerts, dy->rows) / (maxr > 0 ? maxr : 1) :
			    s == 1 ? rep_div(dy->tp, dy->tp + dy->fp) : rep_div(dy->tp, dy->frauds);

			if (!isnan(v))
				fprintf(out, "%.1f,%.1f ", rep_x(n > 1 ? (double)i / (n - 1) : 0.5),
				    rep_y(v));
		}
		fprintf(out, "\"/><text x=\"%d\" y=\"%d\" class=\"tick %s-l\">%s</text>\n",
		    PADL + 10 + 110 * s, PADT + 10, cls[s], name[s]);
	}
	{
		int step = (int)ceil(n / 8.0);

		for (uint32_t i = 0; i < n; i += (uint32_t)step) {
			char day[16];

			vigil_date_format(d->days[i].day * VIGIL_MS_PER_DAY, day, sizeof day);
			fprintf(out, "<text x=\"%.1f\" y=\"%d\" class=\"tick xtick\" "
			    "text-anchor=\"middle\">%s</text>\n",
			    rep_x(n > 1 ? (double)i / (n - 1) : 0.5), H - PADB + 15, day + 5);
		}
	}
	rep_svg_close(out);
	fprintf(out, "<table id=\"trend\"><tr><th>day</th><th>rows</th><th>alerts</th>"
	    "<th>alert rate</th><th>frauds</th><th>precision</th><th>recall</th>"
	    "<th>fraud amount caught</th><th>generation</th><th>bands (review / decline)</th>"
	    "<th>model (validation AUC / AP)</th></tr>\n");
	for (uint32_t i = 0; i < n; i++) {
		const report_day *dy = &d->days[i];
		const json_t *night;
		char day[16];

		vigil_date_format(dy->day * VIGIL_MS_PER_DAY, day, sizeof day);
		night = rep_night(info, day);
		fprintf(out, "<tr><th>%s</th><td>%" PRIu64 "</td><td>%" PRIu64 "</td><td>", day,
		    dy->rows, dy->alerts);
		rep_pct(out, rep_div(dy->alerts, dy->rows));
		fprintf(out, "</td><td>%" PRIu64 "</td><td>", dy->frauds);
		rep_pct(out, rep_div(dy->tp, dy->tp + dy->fp));
		fprintf(out, "</td><td>");
		rep_pct(out, rep_div(dy->tp, dy->frauds));
		fprintf(out, "</td><td>");
		rep_money(out, dy->fraud_caught);
		fprintf(out, " of ");
		rep_money(out, dy->fraud_amount);
		fprintf(out, "</td>");
		if (night == NULL) {
			fprintf(out, "<td></td><td></td><td>%s</td></tr>\n",
			    info->nights ? "no rebuild before this day" :
			    info->nightly_runs > 0 ? "not recorded (server mode: see vigil-rebuild)" :
			    "no nightly rebuilds");
			continue;
		}
		fprintf(out, "<td>%" PRId64 "</td><td class=\"bands\">",
		    (int64_t)json_integer_value(json_object_get(night, "generation")));
		if (json_is_number(json_object_get(night, "review_at")) && info->have_bands) {
			rep_band(out, json_number_value(json_object_get(night, "review_at")),
			    info->review_at);
			fputs(" / ", out);
			rep_band(out, json_number_value(json_object_get(night, "decline_at")),
			    info->decline_at);
		}
		fputs("</td><td class=\"model\">", out);
		if (json_is_true(json_object_get(night, "model_trained"))) {
			rep_num(out, json_number_value(json_object_get(night, "valid_auc")));
			fputs(" / ", out);
			rep_num(out, json_number_value(json_object_get(night, "valid_ap")));
		} else {
			fputs("no model: ", out);
			rep_esc(out, json_string_value(json_object_get(night, "why_not")));
		}
		fprintf(out, "</td></tr>\n");
	}
	fprintf(out, "</table>\n<p class=\"note\">A day's precision and recall use its rows' "
	    "final labels; the model columns are the validation figures of the model the rebuild "
	    "before that day trained (it scores that day's rows).</p>\n");
}

static void
rep_label(FILE *out, const report_row *r)
{
	if (r->label == 1) {
		fputs("<span class=\"lab-fraud\">fraud</span>", out);
		if (r->pattern[0] != '\0') {
			fputs(" (", out);
			rep_esc(out, r->pattern);
			fputc(')', out);
		}
	} else {
		fputs(r->label == 0 ? "legit" : "unknown", out);
	}
}

static void
rep_reasons(FILE *out, const report_row *r)
{
	for (uint32_t k = 0; k < r->nnames; k++) {
		fprintf(out, "%s<span class=\"%s\">", k ? ", " : "", r->shadow[k] ? "hit-shadow" : "hit");
		rep_esc(out, r->names[k]);
		fprintf(out, "%s</span>", r->shadow[k] ? " (shadow)" : "");
	}
	if (r->nmore > 0)
		fprintf(out, " and %u more", r->nmore);
}

static int
rep_row_cmp(const void *a, const void *b)
{
	const report_row *x = a, *y = b;

	return x->key < y->key ? 1 : x->key > y->key ? -1 : strcmp(x->txn_id, y->txn_id);
}

/* The cells every row table starts with: time, txn_id, card, amount. */
static void
rep_row_lead(FILE *out, const report_row *r)
{
	rep_time(out, r->t);
	fprintf(out, "</td><td>");
	rep_esc(out, r->txn_id);
	fprintf(out, "</td><td>");
	rep_esc(out, r->card_id);
	fprintf(out, "</td><td>");
	rep_money(out, r->amount);
	fputc(' ', out);
	rep_esc(out, r->currency);
}

/* The highest scored alerts, with the rules that fired. */
static void
rep_top(FILE *out, const report_data *d)
{
	report_row rows[REPORT_TOP];

	memcpy(rows, d->top, d->ntop * sizeof rows[0]);
	qsort(rows, d->ntop, sizeof rows[0], rep_row_cmp);
	fprintf(out, "<h2>Top alerted transactions</h2>\n<table id=\"top-alerts\"><tr>"
	    "<th>time (UTC)</th><th>txn_id</th><th>card</th><th>amount</th><th>score</th>"
	    "<th>model</th><th>decision</th><th>label</th><th>reasons (rules that fired)</th></tr>\n");
	for (uint32_t i = 0; i < d->ntop; i++) {
		const report_row *r = &rows[i];

		fprintf(out, "<tr class=\"top-row\"><td>");
		rep_row_lead(out, r);
		fprintf(out, "</td><td>%.1f</td><td>", r->score);
		if (isnan(r->model_score))
			fputs("-", out);
		else
			fprintf(out, "%.3f", r->model_score);
		fprintf(out, "</td><td class=\"dec-%s\">%s</td><td>", vigil_decision_name(r->decision),
		    vigil_decision_name(r->decision));
		rep_label(out, r);
		fprintf(out, "</td><td class=\"reasons\">");
		rep_reasons(out, r);
		fprintf(out, "</td></tr>\n");
	}
	fprintf(out, "</table>\n");
}

/* --compare: decisions of the two rule files side by side. */
static void
rep_diff(FILE *out, const report_info *info, const report_data *d)
{
	static const vigil_decision dec[3] = { VIGIL_DECISION_ALLOW, VIGIL_DECISION_REVIEW,
		VIGIL_DECISION_DECLINE };
	report_row rows[REPORT_TOP];

	fprintf(out, "<h2>Decision diff: ");
	rep_esc(out, info->rules);
	fputs(" against ", out);
	rep_esc(out, info->compare ? info->compare : "--compare");
	fprintf(out, "</h2>\n<div id=\"compare-diff\">\n<table class=\"transitions\"><tr>"
	    "<th>rules &#8595; / compare &#8594;</th>");
	for (int j = 0; j < 3; j++)
		fprintf(out, "<th>%s</th>", vigil_decision_name(dec[j]));
	fprintf(out, "</tr>\n");
	for (int i = 0; i < 3; i++) {
		fprintf(out, "<tr><th>%s</th>", vigil_decision_name(dec[i]));
		for (int j = 0; j < 3; j++) {
			const uint64_t *t = d->trans[dec[i]][dec[j]];

			fprintf(out, "<td class=\"%s\">%" PRIu64 "<br><small>%" PRIu64 " fraud, %" PRIu64
			    " legit</small></td>", i == j ? "same" : "changed", t[0] + t[1] + t[2], t[1],
			    t[0]);
		}
		fprintf(out, "</tr>\n");
	}
	fprintf(out, "</table>\n");
	memcpy(rows, d->diff, d->ndiff * sizeof rows[0]);
	qsort(rows, d->ndiff, sizeof rows[0], rep_row_cmp);
	fprintf(out, "<table class=\"changed-rows\"><tr><th>time (UTC)</th><th>txn_id</th>"
	    "<th>card</th><th>amount</th><th>label</th><th>rules: decision (score)</th>"
	    "<th>compare: decision (score)</th><th>reasons under the rules</th></tr>\n");
	for (uint32_t i = 0; i < d->ndiff; i++) {
		const report_row *r = &rows[i];

		fprintf(out, "<tr class=\"diff-row\"><td>");
		rep_row_lead(out, r);
		fprintf(out, "</td><td>");
		rep_label(out, r);
		fprintf(out, "</td><td class=\"dec-%s\">%s (%.1f)</td><td class=\"dec-%s\">%s (%.1f)"
		    "</td><td class=\"reasons\">", vigil_decision_name(r->decision),
		    vigil_decision_name(r->decision), r->score, vigil_decision_name(r->decision2),
		    vigil_decision_name(r->decision2), r->score2);
		rep_reasons(out, r);
		fprintf(out, "</td></tr>\n");
	}
	fprintf(out, "</table>\n<p class=\"note\">%s changed decisions shown: frauds first, "
	    "then the largest score change.</p></div>\n", d->ndiff ? "The" : "No");
}

static void
rep_latency(FILE *out, const metrics *m)
{
	enum { NB = 48 };
	uint32_t nb = metrics_latency_nbuckets(), first = UINT32_MAX, last = 0;
	double cnt[NB] = { 0 }, maxv = 0;

	if (metrics_latency_count(m) == 0)
		return;
	for (uint32_t i = 0; i < nb; i++) {
		uint32_t lo;
		uint64_t c;
		metrics_latency_bucket(m, i, &lo, &c);
		if (c > 0) {
			if (first == UINT32_MAX)
				first = i;
			last = i;
		}
	}
	for (uint32_t i = first; i <= last; i++) {
		uint32_t lo;
		uint64_t c;
		uint32_t k = (uint32_t)((uint64_t)(i - first) * NB / (last - first + 1));
		metrics_latency_bucket(m, i, &lo, &c);
		cnt[k] += (double)c;
	}
	for (int k = 0; k < NB; k++) {
		if (cnt[k] > maxv)
			maxv = cnt[k];
	}
	rep_svg_open(out, "Latency histogram (client-side round trip)", "microseconds (log scale)",
	    "transactions");
	{
		double bw = (double)(W - PADL - PADR) / NB;
		uint32_t lo0, lo1;
		uint64_t c;
		for (int k = 0; k < NB; k++) {
			if (cnt[k] == 0)
				continue;
			fprintf(out, "<rect class=\"bar\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\">"
			    "<title>%.0f</title></rect>\n", PADL + k * bw, rep_y(cnt[k] / maxv), bw - 1,
			    (H - PADB) - rep_y(cnt[k] / maxv), cnt[k]);
		}
		metrics_latency_bucket(m, first, &lo0, &c);
		metrics_latency_bucket(m, last, &lo1, &c);
		fprintf(out, "<text x=\"%d\" y=\"%d\" class=\"tick\">%u</text>\n", PADL, H - PADB + 14, lo0);
		fprintf(out, "<text x=\"%d\" y=\"%d\" class=\"tick\" text-anchor=\"end\">%u</text>\n",
		    W - PADR, H - PADB + 14, lo1);
	}
	rep_svg_close(out);
}

static void
rep_summary_rows(FILE *out, const metrics *m, const char *label)
{
	metrics_confusion c;
	uint32_t days;

	metrics_get_confusion(m, &c);
	fprintf(out, "<tr><th>");
	rep_esc(out, label);
	fprintf(out, "</th><td>%" PRIu64 "</td><td>", c.total);
	rep_pct(out, c.alert_rate);
	fprintf(out, "</td><td>");
	rep_pct(out, c.decline_rate);
	fprintf(out, "</td><td>");
	rep_pct(out, c.precision);
	fprintf(out, "</td><td>");
	rep_pct(out, c.recall);
	fprintf(out, "</td><td>");
	rep_num(out, c.f1);
	fprintf(out, "</td><td>");
	rep_num(out, metrics_auc(m, NULL));
	fprintf(out, "</td><td>");
	rep_num(out, metrics_ap(m, NULL));
	fprintf(out, "</td><td>");
	rep_pct(out, metrics_card_precision(m, &days));
	fprintf(out, "</td></tr>\n");
}

vigil_err
report_write_html(FILE *out, const report_info *info, const metrics *m, const metrics *cmp,
    const report_data *d)
{
	metrics_confusion c;

	metrics_get_confusion(m, &c);
	fprintf(out, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>");
	rep_esc(out, info->title);
	fprintf(out, "</title>\n<style>\n"
	    "body{font-family:sans-serif;margin:24px;color:#222;max-width:980px}\n"
	    "table{border-collapse:collapse;margin:8px 0 16px}\n"
	    "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right;font-size:13px}\n"
	    "th{background:#f3f3f3}\n"
	    "figure{margin:16px 0}figcaption{font-weight:bold;margin-bottom:4px}\n"
	    ".axis{stroke:#444;stroke-width:1}.lbl{font-size:12px;fill:#333}.tick{font-size:11px;fill:#333}\n"
	    ".legit{fill:#7aa6d8}.fraud{fill:#d8584a}.bar{fill:#5b8c5a}\n"
	    ".curve{fill:none;stroke:#d8584a;stroke-width:2}\n"
	    ".curve2{fill:none;stroke:#3060a0;stroke-width:2;stroke-dasharray:6 4}\n"
	    ".grid{stroke:#ddd;stroke-width:1}.band-review{fill:#f6e7b0;opacity:.6}"
	    ".band-decline{fill:#f2b8b0;opacity:.6}.bandl{font-weight:bold}\n"
	    ".op{fill:#222}.opl{font-weight:bold}.bandp{fill:#fff;stroke:#222;stroke-width:1.5}\n"
	    ".rule-shadow text{fill:#777;font-style:italic}.rule-shadow .bar{fill:#b9b9b9}"
	    ".rule-negative .bar{fill:#7aa6d8}.shadow-key{color:#777;font-style:italic}"
	    ".negative-key{color:#3f6fa8}\n"
	    ".trend{fill:none;stroke-width:2}.trend.alert-rate{stroke:#b08020}"
	    ".trend.precision{stroke:#3060a0}.trend.recall{stroke:#d8584a}"
	    ".alert-rate-l{fill:#b08020}.precision-l{fill:#3060a0}.recall-l{fill:#d8584a}\n"
	    "td,th{white-space:nowrap}td.reasons,td.model{white-space:normal;text-align:left}"
	    "td.reasons{min-width:260px}.hit-shadow{color:#777;font-style:italic}"
	    ".lab-fraud{color:#b02a1a;font-weight:bold}.dec-decline{color:#b02a1a}"
	    ".dec-review{color:#8a6500}td.changed{background:#fff4d6}.note{font-size:12px;color:#555}\n"
	    "</style></head><body>\n<h1>");
	rep_esc(out, info->title);
	fprintf(out, "</h1>\n<p>Input <code>");
	rep_esc(out, info->input);
	fprintf(out, "</code>, rules <code>");
	rep_esc(out, info->rules);
	fprintf(out, "</code>, %s mode, %.1f s, %.0f transactions/s, %" PRIu64
	    " bad input rows skipped, %" PRIu32 " nightly rebuilds.</p>\n",
	    info->mode, info->seconds, info->throughput, info->bad_rows, info->nightly_runs);

	fprintf(out, "<h2>Summary</h2>\n<table id=\"summary\"><tr><th>rules</th><th>rows</th><th>alert rate</th>"
	    "<th>decline rate</th><th>precision</th><th>recall</th><th>F1</th><th>ROC AUC</th>"
	    "<th>avg precision</th><th>card precision top-k/day</th></tr>\n");
	rep_summary_rows(out, m, info->rules);
	if (cmp != NULL) {
		rep_summary_rows(out, cmp, info->compare ? info->compare : "compare");
	}
	fprintf(out, "</table>\n");
	if (info->have_bands) {
		fputs("<p id=\"bands\">Decision bands in force at the end: review at score &#8805; ",
		    out);
		rep_band(out, info->review_in_force, info->review_at);
		fputs(", decline at &#8805; ", out);
		rep_band(out, info->decline_in_force, info->decline_at);
		fputs(" (a band tuned by the nightly rebuild is the value its last night set, the "
		    "rule file's number beside it; each day's bands are in the day-by-day table); "
		    "an alert is a review or a decline.</p>\n", out);
	}
	if (cmp != NULL)
		fprintf(out, "<p>%" PRIu64 " decisions differ between the two rule files "
		    "(side by side below).</p>\n", info->changed);
	fprintf(out, "<h3>Confusion matrix (alert = review or decline)</h3>\n"
	    "<table><tr><th></th><th>alert</th><th>allow</th></tr>"
	    "<tr><th>fraud</th><td>%" PRIu64 "</td><td>%" PRIu64 "</td></tr>"
	    "<tr><th>legit</th><td>%" PRIu64 "</td><td>%" PRIu64 "</td></tr></table>\n",
	    c.tp, c.fn, c.fp, c.tn);

	if (metrics_npatterns(m) > 0) {
		fprintf(out, "<h3>Fraud patterns</h3>\n<table id=\"patterns\"><tr><th>pattern</th><th>frauds</th>"
		    "<th>alerted</th><th>recall</th><th>precision vs legit</th><th>ROC AUC</th>"
		    "<th>avg precision</th></tr>\n");
		for (uint32_t i = 0; i < metrics_npatterns(m); i++) {
			metrics_pattern p;
			metrics_get_pattern(m, i, &p);
			fprintf(out, "<tr><th>");
			rep_esc(out, p.name);
			fprintf(out, "</th><td>%" PRIu64 "</td><td>%" PRIu64 "</td><td>", p.rows, p.alerts);
			rep_pct(out, p.recall);
			fprintf(out, "</td><td>");
			rep_pct(out, p.precision_vs_legit);
			fprintf(out, "</td><td>");
			rep_num(out, p.auc);
			fprintf(out, "</td><td>");
			rep_num(out, p.ap);
			fprintf(out, "</td></tr>\n");
		}
		fprintf(out, "</table>\n");
	}
	if (d != NULL)
		rep_money_table(out, d);
	fprintf(out, "<h2>Scores</h2>\n");
	rep_score_hist(out, info, m);
	rep_pr_curve(out, info, m, cmp);
	fprintf(out, "<h2>Rules</h2>\n");
	rep_rules(out, info, m);
	if (d != NULL) {
		rep_trend(out, info, d);
		rep_top(out, d);
		if (cmp != NULL && d->has_cmp)
			rep_diff(out, info, d);
	}
	rep_latency(out, m);
	fprintf(out, "<p>Score percentiles: p50 %d, p90 %d, p99 %d, max %d.</p>\n",
	    (int)metrics_score_percentile(m, 50), (int)metrics_score_percentile(m, 90),
	    (int)metrics_score_percentile(m, 99), (int)metrics_score_percentile(m, 100));
	fprintf(out, "</body></html>\n");
	if (fflush(out) != 0 || ferror(out))
		return VIGIL_EIO;
	return VIGIL_OK;
}
