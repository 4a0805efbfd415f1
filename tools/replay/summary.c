/* SPDX-License-Identifier: MIT */
/*
 * tools/replay/summary.c - what vigil-replay shows of a whole run: the
 * progress line on a terminal, the text summary on standard output (with
 * the --compare section), the --json summary and the --report HTML page
 * (report.c draws it).
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"
#include "replay.h"

void
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

static json_t *
rp_summary_json(rp *r, double secs)
{
	json_t *o = json_object();
	static const char *const dn[4] = { "none", "allow", "review", "decline" };

	json_object_set_new(o, "input", json_string(r->src.name));
	json_object_set_new(o, "rules", r->o.rules ? json_string(r->o.rules) : json_null());
	json_object_set_new(o, "mode", json_string(r->o.nservers ? "server" : r->o.exact ? "exact" :
	    "offline"));
	json_object_set_new(o, "rows", json_integer((json_int_t)r->rows));
	json_object_set_new(o, "bad_rows", json_integer((json_int_t)r->src.bad));
	json_object_set_new(o, "corrupt_stretches", json_integer((json_int_t)r->src.corrupt));
	json_object_set_new(o, "corrupt_first", r->src.corrupt > 0 ?
	    json_string(r->src.corrupt_first) : json_null());
	json_object_set_new(o, "failed", json_integer((json_int_t)r->failed));
	json_object_set_new(o, "txn_id_conflicts", json_integer((json_int_t)r->conflicts));
	json_object_set_new(o, "rows_behind", json_integer((json_int_t)r->behind));
	if (r->o.nservers) {
		json_object_set_new(o, "refused", json_integer((json_int_t)r->refused));
		json_object_set_new(o, "not_sent", json_integer((json_int_t)r->not_sent));
		json_object_set_new(o, "labels_refused", json_integer((json_int_t)r->labels_refused));
		json_object_set_new(o, "labels_failed", json_integer((json_int_t)r->labels_failed));
		json_object_set_new(o, "late", json_integer((json_int_t)r->late));
		json_object_set_new(o, "past_dedupe_horizon", json_integer((json_int_t)r->past_horizon));
	}
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
		json_object_set_new(c, "rules", json_string(r->o.exact ? r->o.rules : r->o.compare));
		json_object_set_new(c, "rows", json_integer((json_int_t)r->compared));
		json_object_set_new(c, "refused", json_integer((json_int_t)r->conflicts));
		json_object_set_new(c, "changed", json_integer((json_int_t)r->changed));
		json_object_set_new(c, "transitions", t);
		json_object_set_new(c, "metrics", metrics_to_json(r->m2));
		json_object_set_new(o, "compare", c);
	}
	if (r->o.exact)
		json_object_set_new(o, "exact", rp_exact_json(r));
	return o;
}

/* One measure of the compare section, "LABEL A -> B": "n/a" for an
 * undefined one (0/0), as in the summary above it (metrics_print), never
 * "nan". */
static void
rp_print_pair(FILE *out, const char *label, double a, double b, int decimals,
    const char *unit)
{
	const double v[2] = { a, b };

	fprintf(out, "%s", label);
	for (int i = 0; i < 2; i++) {
		if (isnan(v[i]))
			fprintf(out, "n/a");
		else
			fprintf(out, "%.*f%s", decimals, v[i], unit);
		fprintf(out, "%s", i == 0 ? " -> " : "");
	}
}

static void
rp_print_compare(rp *r, FILE *out)
{
	static const char *const dn[4] = { "none", "allow", "review", "decline" };
	metrics_confusion a, b;

	metrics_get_confusion(r->m, &a);
	metrics_get_confusion(r->m2, &b);
	fprintf(out, "\ncompare       %s\n", r->o.exact ? r->o.rules : r->o.compare);
	/* out of the rows both sides scored: a refused row has a decision on
	 * neither, so it is counted apart */
	fprintf(out, "  decisions changed: %" PRIu64 " of %" PRIu64 " compared", r->changed,
	    r->compared);
	if (r->conflicts > 0)
		fprintf(out, "; %" PRIu64 " rows refused, scored by neither", r->conflicts);
	fputc('\n', out);
	for (int x = 1; x < 4; x++)
		for (int y = 1; y < 4; y++)
			if (x != y && r->trans[x][y] > 0)
				fprintf(out, "    %-8s -> %-8s %10" PRIu64 "\n", dn[x], dn[y], r->trans[x][y]);
	rp_print_pair(out, "  precision ", 100 * a.precision, 100 * b.precision, 2, "%");
	rp_print_pair(out, "   recall ", 100 * a.recall, 100 * b.recall, 2, "%");
	rp_print_pair(out, "   alert rate ", 100 * a.alert_rate, 100 * b.alert_rate, 3, "%");
	rp_print_pair(out, "\n  ROC AUC ", metrics_auc(r->m, NULL), metrics_auc(r->m2, NULL), 4, "");
	rp_print_pair(out, "   average precision ", metrics_ap(r->m, NULL), metrics_ap(r->m2, NULL),
	    4, "");
	fputc('\n', out);
}

void
rp_summary_print(rp *r, double secs)
{
	printf("vigil-replay: %s, %s mode, rules %s\n", r->src.name,
	    r->o.nservers ? "server" : r->o.exact ? "exact (production's outcome, then the file's)" :
	    "offline", r->o.rules ? r->o.rules : "(the server's)");
	double rb = (double)r->night_ns / 1e9;
	printf("throughput    %" PRIu64 " rows in %.2f s: %.0f rows/s scoring", r->rows,
	    secs, secs - rb > 0 ? (double)r->rows / (secs - rb) : 0.0);
	if (r->nightly_runs > 0)
		printf(" (%.1f s in %" PRIu32 " nightly rebuilds excluded)", rb, r->nightly_runs);
	printf("\ninput         %" PRIu64 " bad rows skipped; %" PRIu64 " labels sent\n",
	    r->src.bad, r->labels_sent);
	if (r->src.corrupt > 0)
		printf("damaged       %" PRIu64 " corrupt stretches of the archive skipped, the "
		    "first at %s\n", r->src.corrupt, r->src.corrupt_first);
	if (r->failed > 0)
		printf("failed        %" PRIu64 " transactions got no answer from the server: "
		    "not acknowledged, their labels not sent\n", r->failed);
	if (r->labels_refused > 0 || r->labels_failed > 0)
		printf("labels        %" PRIu64 " refused by the server, %" PRIu64 " got no answer: "
		    "not recorded there\n", r->labels_refused, r->labels_failed);
	if (r->not_sent > 0)
		printf("not sent      %" PRIu64 " rows after giving up (no server answering): not "
		    "scored, their labels and those still waiting not sent\n", r->not_sent);
	if (r->conflicts > 0)
		printf("refused       %" PRIu64 " rows reused the txn_id of a different "
		    "transaction (vigild refuses them)\n", r->conflicts);
	if (r->refused > 0)
		printf("refused       %" PRIu64 " rows the server refused: not scored, their "
		    "labels not sent\n", r->refused);
	if (r->behind > 0)
		printf("order         %" PRIu64 " rows of a UTC day before one already replayed: "
		    "scored as they came, with the features and model then in force (as vigild "
		    "scores a late arrival), measured in the day then open\n", r->behind);
	if (r->late > 0 || r->past_horizon > 0)
		printf("backfill      %" PRIu64 " replies said late (in no velocity window), %" PRIu64
		    " past the dedupe horizon: send history oldest first, before live traffic "
		    "(docs/operations.md)\n", r->late, r->past_horizon);
	metrics_print(r->m, stdout);
	if (r->m2 != NULL)
		rp_print_compare(r, stdout);
	if (r->o.exact)
		rp_exact_print(r, stdout);
	fflush(stdout);
}

vigil_err
rp_summary_write_json(rp *r, double secs, const char *path)
{
	json_t *j = rp_summary_json(r, secs);
	int jrc, e;

	errno = 0;
	jrc = j == NULL ? -1 : strcmp(path, "-") == 0
	    ? json_dumpf(j, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(10))
	    : json_dump_file(j, path, JSON_INDENT(2) | JSON_REAL_PRECISION(10));
	e = errno;
	json_decref(j);
	if (jrc != 0) {
		fprintf(stderr, "vigil-replay: %s: cannot write the JSON summary: %s\n", path,
		    j == NULL ? "out of memory" : e != 0 ? strerror(e) : "write error");
		return VIGIL_EIO;
	}
	if (strcmp(path, "-") == 0 && (putchar('\n') == EOF || fflush(stdout) != 0)) {
		fprintf(stderr, "vigil-replay: standard output: cannot write the JSON summary\n");
		return VIGIL_EIO;
	}
	return VIGIL_OK;
}

vigil_err
rp_report_write(rp *r, double secs)
{
	FILE *f = fopen(r->o.report, "w");
	char title[512];
	report_info ri = {
		.title = title, .input = r->src.name,
		.rules = r->o.rules ? r->o.rules : "(the server's)",
		.mode = r->o.nservers ? "server" : r->o.exact ? "exact" : "offline", .seconds = secs,
		.throughput = secs - (double)r->night_ns / 1e9 > 0
		    ? (double)r->rows / (secs - (double)r->night_ns / 1e9) : 0,
		.bad_rows = r->src.bad,
		.nightly_runs = r->nightly_runs, .compare = r->o.exact ? r->o.rules : r->o.compare,
		.changed = r->changed,
	};
	uint8_t *flags = NULL;
	int32_t *points = NULL;
	uint32_t n = metrics_nrules(r->m);
	vigil_err rv;

	snprintf(title, sizeof title, "vigil-replay report: %s", r->src.name);
	if (f == NULL) {
		fprintf(stderr, "vigil-replay: %s: %s\n", r->o.report, strerror(errno));
		return VIGIL_EIO;
	}
	/* The rule file's bands and, per measured rule (by name: server mode
	 * numbers rules as their names come back), its mode and points. */
	if (r->prog != NULL) {
		ri.have_bands = true;
		rules_prog_bands(r->prog, &ri.review_at, &ri.decline_at);
		ri.review_in_force = ri.review_at;
		ri.decline_in_force = ri.decline_at;
		if (r->tv != NULL)
			rules_prog_bands_in_force(r->prog, r->tv, &ri.review_in_force,
			    &ri.decline_in_force);
		flags = calloc(n ? n : 1, sizeof *flags);
		points = calloc(n ? n : 1, sizeof *points);
		for (uint32_t i = 0; flags != NULL && points != NULL && i < n; i++) {
			metrics_rule mr;
			rules_rule_info info;
			uint32_t k;

			metrics_get_rule(r->m, i, &mr);
			if (rules_prog_rule_find(r->prog, mr.name, &k) != VIGIL_OK)
				continue;
			rules_prog_rule(r->prog, k, &info);
			flags[i] = REPORT_RULE_KNOWN |
			    (info.mode == RULES_MODE_SHADOW ? REPORT_RULE_SHADOW : 0) |
			    (info.mode == RULES_MODE_DISABLED ? REPORT_RULE_DISABLED : 0);
			points[i] = info.points;
		}
		ri.rule_flags = flags;
		ri.rule_points = points;
	}
	ri.nights = r->nights;
	rv = report_write_html(f, &ri, r->m, r->m2, r->rd);
	free(flags);
	free(points);
	if (fclose(f) != 0 || rv != VIGIL_OK) {
		fprintf(stderr, "vigil-replay: %s: write failed\n", r->o.report);
		return VIGIL_EIO;
	}
	if (!r->o.quiet)
		printf("report        %s\n", r->o.report);
	return VIGIL_OK;
}
