/* SPDX-License-Identifier: MIT */
/*
 * tools/replay/report.c - writes the self-contained HTML report. Plots are
 * drawn as inline SVG from the metrics tables: no script, no external
 * stylesheet, font or image, so the page renders offline and in a mail
 * attachment. Every text from input (rule names, paths, pattern names) is
 * HTML-escaped.
 */
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"

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

static void
rep_svg_open(FILE *out, const char *title, const char *xlabel, const char *ylabel)
{
	fprintf(out, "<figure><figcaption>");
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
 * size by orders of magnitude, so each is normalised to its own total). */
static void
rep_score_hist(FILE *out, const metrics *m)
{
	enum { NB = 40 };
	uint32_t n = metrics_nscores(m);
	double legit[NB] = { 0 }, fraud[NB] = { 0 }, tl = 0, tf = 0, maxv = 0;
	int32_t lo, hi;
	double width;

	rep_svg_open(out, "Score histogram by label (share of each class)", "score", "share");
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
	width = (double)(hi - lo + 1) / NB;
	if (width < 1)
		width = 1;
	for (uint32_t i = 0; i < n; i++) {
		metrics_score_bin b;
		int k;
		metrics_get_score(m, i, &b);
		k = (int)((b.score - lo) / width);
		if (k >= NB)
			k = NB - 1;
		legit[k] += (double)b.legit;
		fraud[k] += (double)b.fraud;
		tl += (double)b.legit;
		tf += (double)b.fraud;
	}
	for (int k = 0; k < NB; k++) {
		legit[k] = tl > 0 ? legit[k] / tl : 0;
		fraud[k] = tf > 0 ? fraud[k] / tf : 0;
		if (legit[k] > maxv)
			maxv = legit[k];
		if (fraud[k] > maxv)
			maxv = fraud[k];
	}
	if (maxv <= 0)
		maxv = 1;
	{
		int nbins = (int)ceil((hi - lo + 1) / width);
		double bw = (double)(W - PADL - PADR) / (nbins > NB ? NB : nbins);
		for (int k = 0; k < NB && k < nbins; k++) {
			double x = PADL + k * bw;
			fprintf(out, "<rect class=\"legit\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\">"
			    "<title>score %.0f-%.0f legit %.2f%%</title></rect>\n",
			    x, rep_y(legit[k] / maxv), bw / 2 - 0.5, (H - PADB) - rep_y(legit[k] / maxv),
			    lo + k * width, lo + (k + 1) * width - 1, 100 * legit[k]);
			fprintf(out, "<rect class=\"fraud\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\">"
			    "<title>score %.0f-%.0f fraud %.2f%%</title></rect>\n",
			    x + bw / 2, rep_y(fraud[k] / maxv), bw / 2 - 0.5, (H - PADB) - rep_y(fraud[k] / maxv),
			    lo + k * width, lo + (k + 1) * width - 1, 100 * fraud[k]);
		}
		fprintf(out, "<text x=\"%d\" y=\"%d\" class=\"tick\">%d</text>\n", PADL, H - PADB + 14, (int)lo);
		fprintf(out, "<text x=\"%d\" y=\"%d\" class=\"tick\" text-anchor=\"end\">%d</text>\n",
		    W - PADR, H - PADB + 14, (int)hi);
		fprintf(out, "<text x=\"%d\" y=\"%d\" class=\"tick\" text-anchor=\"end\">%.0f%%</text>\n",
		    PADL - 4, PADT + 8, 100 * maxv);
		fprintf(out, "<rect class=\"legit\" x=\"%d\" y=\"%d\" width=\"10\" height=\"10\"/>"
		    "<text x=\"%d\" y=\"%d\" class=\"tick\">legit</text>\n", W - 120, PADT, W - 106, PADT + 9);
		fprintf(out, "<rect class=\"fraud\" x=\"%d\" y=\"%d\" width=\"10\" height=\"10\"/>"
		    "<text x=\"%d\" y=\"%d\" class=\"tick\">fraud</text>\n", W - 60, PADT, W - 46, PADT + 9);
	}
	rep_svg_close(out);
}

/* Precision-recall curve: one point per distinct score threshold. */
static void
rep_pr_curve(FILE *out, const metrics *m, const metrics *cmp)
{
	const metrics *ms[2] = { m, cmp };

	rep_svg_open(out, "Precision-recall curve (threshold on the score)", "recall", "precision");
	for (int j = 0; j < 2; j++) {
		uint32_t n;
		uint64_t P = 0, tp = 0, fp = 0;
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
			if (tp + fp == 0)
				continue;
			fprintf(out, "%.1f,%.1f ", rep_x((double)tp / (double)P),
			    rep_y((double)tp / (double)(tp + fp)));
		}
		fprintf(out, "\"/>\n");
	}
	for (int t = 0; t <= 4; t++) {
		fprintf(out, "<text x=\"%.1f\" y=\"%d\" class=\"tick\" text-anchor=\"middle\">%.2f</text>\n",
		    rep_x(t / 4.0), H - PADB + 14, t / 4.0);
		fprintf(out, "<text x=\"%d\" y=\"%.1f\" class=\"tick\" text-anchor=\"end\">%.2f</text>\n",
		    PADL - 4, rep_y(t / 4.0) + 4, t / 4.0);
	}
	if (cmp != NULL)
		fprintf(out, "<text x=\"%d\" y=\"%d\" class=\"tick curve2l\" text-anchor=\"end\">"
		    "dashed: --compare rules</text>\n", W - PADR, PADT + 10);
	rep_svg_close(out);
}

static void
rep_rules(FILE *out, const metrics *m)
{
	uint32_t n = metrics_nrules(m);
	int h = PADT + 18 * (int)(n ? n : 1) + 20;
	int lw = 200;

	fprintf(out, "<figure><figcaption>Per rule precision (bar) and hits</figcaption>\n"
	    "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\">\n",
	    W, h, W, h);
	for (uint32_t i = 0; i < n; i++) {
		metrics_rule r;
		int y = PADT + 18 * (int)i;
		double p;
		metrics_get_rule(m, i, &r);
		p = isnan(r.precision) ? 0 : r.precision;
		fprintf(out, "<text x=\"%d\" y=\"%d\" class=\"tick\" text-anchor=\"end\">", lw - 6, y + 12);
		rep_esc(out, r.name);
		fprintf(out, "</text><rect class=\"bar\" x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"14\">"
		    "<title>", lw, y, p * (W - lw - 140));
		rep_esc(out, r.name);
		fprintf(out, ": %" PRIu64 " hits, %" PRIu64 " fraud</title></rect>"
		    "<text x=\"%.1f\" y=\"%d\" class=\"tick\">", r.hits, r.fraud_hits,
		    lw + p * (W - lw - 140) + 4, y + 12);
		rep_pct(out, r.precision);
		fprintf(out, " of %" PRIu64 "</text>\n", r.hits);
	}
	fprintf(out, "</svg></figure>\n");
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
report_write_html(FILE *out, const report_info *info, const metrics *m, const metrics *cmp)
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
	    "</style></head><body>\n<h1>");
	rep_esc(out, info->title);
	fprintf(out, "</h1>\n<p>Input <code>");
	rep_esc(out, info->input);
	fprintf(out, "</code>, rules <code>");
	rep_esc(out, info->rules);
	fprintf(out, "</code>, %s mode, %.1f s, %.0f transactions/s, %" PRIu64
	    " bad input rows skipped, %" PRIu32 " nightly rebuilds.</p>\n",
	    info->mode, info->seconds, info->throughput, info->bad_rows, info->nightly_runs);

	fprintf(out, "<h2>Summary</h2>\n<table><tr><th>rules</th><th>rows</th><th>alert rate</th>"
	    "<th>decline rate</th><th>precision</th><th>recall</th><th>F1</th><th>ROC AUC</th>"
	    "<th>avg precision</th><th>card precision top-k/day</th></tr>\n");
	rep_summary_rows(out, m, info->rules);
	if (cmp != NULL) {
		rep_summary_rows(out, cmp, info->compare ? info->compare : "compare");
	}
	fprintf(out, "</table>\n");
	if (cmp != NULL)
		fprintf(out, "<p>%" PRIu64 " decisions differ between the two rule files.</p>\n",
		    info->changed);
	fprintf(out, "<h3>Confusion matrix (alert = review or decline)</h3>\n"
	    "<table><tr><th></th><th>alert</th><th>allow</th></tr>"
	    "<tr><th>fraud</th><td>%" PRIu64 "</td><td>%" PRIu64 "</td></tr>"
	    "<tr><th>legit</th><td>%" PRIu64 "</td><td>%" PRIu64 "</td></tr></table>\n",
	    c.tp, c.fn, c.fp, c.tn);

	if (metrics_npatterns(m) > 0) {
		fprintf(out, "<h3>Fraud patterns</h3>\n<table><tr><th>pattern</th><th>frauds</th>"
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
	fprintf(out, "<h2>Plots</h2>\n");
	rep_score_hist(out, m);
	rep_pr_curve(out, m, cmp);
	rep_rules(out, m);
	rep_latency(out, m);
	fprintf(out, "<p>Score percentiles: p50 %d, p90 %d, p99 %d, max %d.</p>\n",
	    (int)metrics_score_percentile(m, 50), (int)metrics_score_percentile(m, 90),
	    (int)metrics_score_percentile(m, 99), (int)metrics_score_percentile(m, 100));
	fprintf(out, "</body></html>\n");
	if (fflush(out) != 0 || ferror(out))
		return VIGIL_EIO;
	return VIGIL_OK;
}
