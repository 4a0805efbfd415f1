/* SPDX-License-Identifier: MIT */
/*
 * tools/replay/results.c - what vigil-replay records per transaction: the
 * --results JSON line (txn_id, score, decision, hits, shadow hits, the
 * model's score and reasons) and the observation added to the metrics
 * (metrics.h), and to the --compare metrics with the decision changes.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "replay.h"

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

const char *
rp_rule_name_cb(void *arg, uint16_t idx)
{
	return rp_rule_name(arg, idx);
}

static int32_t
rp_rule_points(rp *r, uint16_t idx)
{
	if (r->prog != NULL && r->names.n == 0) {
		rules_rule_info info;
		rules_prog_rule(r->prog, idx, &info);
		return info.points;
	}
	return idx < r->names.n ? r->names.points[idx] : 0;
}

/*
 * Writes one JSON line. Hits are objects, as in every reply (/v1/score,
 * vigil-score: docs/protocol.md, "JSON"): rule, points, shadow, active
 * hits first; the rule's reason text is left out (it is the rule file's,
 * the same on every line). Names are rule identifiers and ids are
 * validated (no quote or backslash), so no escaping is needed beyond that
 * guarantee.
 */
static void
rp_result_write(rp *r, const rp_row *row, const rp_outcome *out, const store_scored *arch)
{
	FILE *f = r->results;

	fprintf(f, "{\"txn_id\":\"%s\",\"score\":%.9g,\"decision\":\"%s\",\"hits\":[",
	    row->txn.txn_id, out->score, vigil_decision_name(out->decision));
	for (uint32_t i = 0; i < out->nhits + out->nshadow; i++)
		fprintf(f, "%s{\"rule\":\"%s\",\"points\":%" PRId32 ",\"shadow\":%s}", i ? "," : "",
		    rp_rule_name(r, out->hits[i]), rp_rule_points(r, out->hits[i]),
		    i >= out->nhits ? "true" : "false");
	fputc(']', f);
	if (!isnan(out->model_score)) {
		/* the shape of vigild's /v1/score and vigil-score's "model" */
		fprintf(f, ",\"model\":{\"score\":%.9g,\"reasons\":[", out->model_score);
		for (uint32_t i = 0; i < out->nreasons; i++)
			fprintf(f, "%s{\"feature\":\"%s\",\"value\":%.9g,\"contribution\":%.6g}",
			    i ? "," : "", out->reasons[i].feature, out->reasons[i].value,
			    (double)out->reasons[i].contrib);
		fputs("]}", f);
	}
	if (arch != NULL) {
		/* --exact: production's outcome, its hits by name as archived */
		char t[40];

		vigil_time_format_rfc3339(arch->txn.event_time_ms, t, sizeof t);
		fprintf(f, ",\"archived\":{\"card_id\":\"%s\",\"event_time\":\"%s\",\"score\":%.9g,"
		    "\"decision\":\"%s\",\"rules_hash\":\"%s\",\"generation\":%" PRIu64 ",\"hits\":[",
		    arch->txn.card_id, t, arch->score, vigil_decision_name(arch->decision),
		    arch->rules_version, arch->features_gen);
		for (uint32_t i = 0; i < arch->nhits; i++)
			fprintf(f, "%s{\"rule\":\"%s\",\"points\":%" PRId32 ",\"shadow\":%s}",
			    i ? "," : "", arch->hits[i].rule, arch->hits[i].points,
			    arch->hits[i].shadow ? "true" : "false");
		fputs("]}", f);
	}
	fputs("}\n", f);
}

/* The line of a row: the outcome; with --exact the file's (out2), with
 * production's archived one beside it. */
static void
rp_result_write_row(rp *r, const rp_row *row, const rp_outcome *out, const rp_outcome *out2)
{
	if (r->o.exact)
		rp_result_write(r, row, out2, r->src.scored);
	else
		rp_result_write(r, row, out, NULL);
}

vigil_err
rp_observe(rp *r, const rp_row *row, const rp_outcome *out, const rp_outcome *out2)
{
	metrics_obs ob = {
		.card_id = row->txn.card_id,
		.event_time_ms = row->txn.event_time_ms,
		.score = out->score,
		.model_score = out->model_score,
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
			rp_result_write_row(r, row, out, out2);
		return VIGIL_OK;
	}
	rv = metrics_add(r->m, &ob);
	if (rv != VIGIL_OK)
		return rv;
	if (r->results != NULL)
		rp_result_write_row(r, row, out, out2);
	if (r->rd != NULL) {
		report_obs ro = {
			.txn_id = row->txn.txn_id, .card_id = row->txn.card_id,
			.currency = row->txn.currency, .pattern = row->pattern,
			.event_time_ms = row->txn.event_time_ms, .amount = vigil_txn_amount(&row->txn),
			.score = out->score, .decision = out->decision, .label = ob.label,
			.model_score = out->model_score, .hits = out->hits, .nhits = out->nhits,
			.nshadow = out->nshadow, .has_cmp = out2 != NULL,
			.score2 = out2 ? out2->score : 0,
			.decision2 = out2 ? out2->decision : VIGIL_DECISION_NONE,
		};
		report_data_add(r->rd, &ro);
	}
	if (out2 != NULL) {
		ob.score = out2->score;
		ob.decision = out2->decision;
		ob.hits = out2->hits;
		ob.nhits = out2->nhits + out2->nshadow;
		rv = metrics_add(r->m2, &ob);
		if (rv != VIGIL_OK)
			return rv;
		r->compared++;
		if (out->decision != out2->decision)
			r->changed++;
		r->trans[out->decision & 3][out2->decision & 3]++;
	}
	return VIGIL_OK;
}

vigil_err
rp_results_open(rp *r)
{
	if (r->o.report != NULL) {
		r->rd = report_data_new(rp_rule_name_cb, r);
		if (r->rd == NULL) {
			fprintf(stderr, "vigil-replay: out of memory\n");
			return VIGIL_ENOMEM;
		}
	}
	if (r->o.results == NULL)
		return VIGIL_OK;
	/* "-" is standard output, as for --csv and --summary (docs/tools.md) */
	r->results = strcmp(r->o.results, "-") == 0 ? stdout : fopen(r->o.results, "w");
	if (r->results == NULL) {
		fprintf(stderr, "vigil-replay: %s: %s\n", r->o.results, strerror(errno));
		return VIGIL_EIO;
	}
	setvbuf(r->results, NULL, _IOFBF, 1 << 20);
	return VIGIL_OK;
}

vigil_err
rp_results_close(rp *r)
{
	bool werr;

	if (r->results == NULL)
		return VIGIL_OK;
	werr = ferror(r->results) != 0;
	if ((r->results == stdout ? fflush(stdout) : fclose(r->results)) != 0 || werr) {
		r->results = NULL;
		fprintf(stderr, "vigil-replay: %s: %s\n", r->o.results, strerror(errno));
		return VIGIL_EIO;
	}
	r->results = NULL;
	return VIGIL_OK;
}

vigil_err
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
vigil_err
rp_metrics_server(rp *r, metrics **ret)
{
	static const char *names[METRICS_MAX_RULES];
	metrics_opts mo = { .topk = r->o.topk, .rule_names = names, .nrules = METRICS_MAX_RULES };

	*ret = metrics_new(&mo);
	return *ret == NULL ? VIGIL_ENOMEM : VIGIL_OK;
}
