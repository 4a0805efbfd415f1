/* SPDX-License-Identifier: MIT */
/*
 * batch/summary.c - the run summary as JSON (what `vigil-rebuild --json`
 * prints and what the generation's meta keeps), and the small parsers of
 * the command line's values (durations, partitions).
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "int.h"

static json_t *
num_or_null(double v)
{
	return isfinite(v) ? json_real(v) : json_null();
}

/* A JSON string of s as one line of valid UTF-8: ids quoted in notes are
 * bytes (vigild does not require UTF-8), and jansson refuses anything else,
 * which would fail the whole summary. Bad bytes become '?'. */
static json_t *
text(const char *s)
{
	char buf[1024];

	snprintf(buf, sizeof buf, "%s", s);
	vigil_utf8_line(buf);
	return json_string(buf);
}

/* json_object_set_new that remembers a failure instead of ignoring it. */
static void
set(json_t *o, const char *k, json_t *v, bool *ok)
{
	if (v == NULL || json_object_set_new(o, k, v) != 0)
		*ok = false;
}

json_t *
batch_summary_json(const batch_summary *s)
{
	json_t *o = json_object(), *lab = json_object(), *th = json_array();
	char date[16], part[32];
	bool ok = o != NULL && lab != NULL && th != NULL;

	if (!ok)
		goto fail;
	vigil_date_format(s->as_of_ms, date, sizeof date);
	set(o, "as_of", json_string(date), &ok);
	set(o, "as_of_ms", json_integer(s->as_of_ms), &ok);
	set(o, "window_ms", json_integer(s->window_ms), &ok);
	set(o, "generation", json_integer((json_int_t)s->generation), &ok);
	set(o, "skipped", json_boolean(s->skipped), &ok);
	set(o, "partial", json_boolean(s->partial), &ok);
	snprintf(part, sizeof part, "%u/%u", s->part_index, s->part_count ? s->part_count : 1);
	set(o, "partition", json_string(part), &ok);
	set(o, "records_read", json_integer((json_int_t)s->records_read), &ok);
	set(o, "records_bad", json_integer((json_int_t)s->records_bad), &ok);
	set(o, "corrupt_records", json_integer((json_int_t)s->corrupt_records), &ok);
	set(o, "first_seq", json_integer((json_int_t)s->first_seq), &ok);
	set(o, "last_seq", json_integer((json_int_t)s->last_seq), &ok);
	if (s->archives > 1) { /* --archive several times (not carried by --merge) */
		set(o, "archives", json_integer((json_int_t)s->archives), &ok);
		set(o, "duplicates", json_integer((json_int_t)s->duplicates), &ok);
	}
	set(lab, "read", json_integer((json_int_t)s->labels_read), &ok);
	set(lab, "used", json_integer((json_int_t)s->labels_used), &ok);
	/* a partition's own "used" leaves out the other partitions' cards */
	set(lab, "unmatched", s->partial ? json_null() :
	    json_integer((json_int_t)s->labels_unmatched), &ok);
	set(lab, "future_ignored", json_integer((json_int_t)s->labels_future), &ok);
	set(o, "cards", json_integer((json_int_t)s->cards), &ok);
	set(o, "merchants", json_integer((json_int_t)s->merchants), &ok);
	set(o, "terminals", json_integer((json_int_t)s->terminals), &ok);
	set(o, "first_seen_carried", json_integer((json_int_t)s->first_seen_carried), &ok);
	if (s->first_seen_note[0] != '\0')
		set(o, "first_seen_note", text(s->first_seen_note), &ok);
	set(o, "rules_hash", text(s->rules_hash), &ok);
	set(o, "duration_s", json_real(s->duration_s), &ok);
	if (s->days_read + s->days_reused > 0) {
		json_t *d = json_object();

		ok = ok && d != NULL;
		set(d, "read", json_integer(s->days_read), &ok);
		set(d, "reused", json_integer(s->days_reused), &ok);
		set(o, "days", d, &ok);
	}
	set(o, "state_bytes", json_integer((json_int_t)s->peak_state_bytes), &ok);
	{
		json_t *m = json_object();
		char from[16], to[16];

		ok = ok && m != NULL;
		if (m != NULL) {
			vigil_date_format(s->model.train_from_ms, from, sizeof from);
			vigil_date_format(s->model.train_to_ms, to, sizeof to);
			set(m, "trained", json_boolean(s->model.trained), &ok);
			if (s->model.carried) {
				char at[16];

				vigil_date_format(s->model.trained_as_of_ms, at, sizeof at);
				set(m, "carried_from", json_integer((json_int_t)s->model.carried_from),
				    &ok);
				set(m, "trained_as_of", json_string(at), &ok);
			}
			if (s->model.read_again)
				set(m, "read_again", json_true(), &ok);
			if (!s->model.trained || s->model.why_not[0] != '\0')
				set(m, "why_not", text(s->model.why_not), &ok);
			set(m, "train_from", json_string(from), &ok);
			set(m, "train_to", json_string(to), &ok);
			set(m, "rows_seen", json_integer((json_int_t)s->model.rows_seen), &ok);
			set(m, "rows_no_vector", json_integer((json_int_t)s->model.rows_no_vector), &ok);
			set(m, "rows_other_layout",
			    json_integer((json_int_t)s->model.rows_other_layout), &ok);
			set(m, "rows", json_integer((json_int_t)s->model.rows), &ok);
			set(m, "frauds", json_integer((json_int_t)s->model.frauds), &ok);
			if (s->model.trained) {
				set(m, "valid_rows", json_integer((json_int_t)s->model.valid_rows), &ok);
				set(m, "valid_frauds", json_integer((json_int_t)s->model.valid_frauds),
				    &ok);
				set(m, "rounds", json_integer(s->model.rounds), &ok);
				set(m, "best_round", json_integer(s->model.best_round), &ok);
				set(m, "valid_auc", json_real(s->model.valid_auc), &ok);
				set(m, "valid_ap", json_real(s->model.valid_ap), &ok);
				set(m, "train_auc", json_real(s->model.train_auc), &ok);
				set(m, "seconds", json_real(s->model.seconds), &ok);
				set(m, "json_bytes", json_integer((json_int_t)s->model.json_bytes), &ok);
			}
			set(o, "model", m, &ok);
		}
	}
	if (s->bad_where[0] != '\0')
		set(o, "first_bad", text(s->bad_where), &ok);
	if (s->warning[0] != '\0')
		set(o, "warning", text(s->warning), &ok);
	for (uint32_t i = 0; i < s->nthresholds && i < BATCH_MAX_THRESHOLDS; i++) {
		const batch_thresh_summary *t = &s->thresholds[i];
		json_t *e = json_object();

		if (e == NULL || json_array_append_new(th, e) != 0) {
			json_decref(e);
			ok = false;
			break;
		}
		set(e, "name", text(t->name), &ok);
		set(e, "kind", json_string(t->kind ? t->kind : ""), &ok);
		set(e, "old", num_or_null(t->old_value), &ok);
		set(e, "new", num_or_null(t->new_value), &ok);
		set(e, "samples", json_integer((json_int_t)t->samples), &ok);
		set(e, "tuned", json_boolean(t->tuned), &ok);
		/* not tuned: why the fallback stands (a rule file's author reads it) */
		set(e, "why", t->tuned ? json_null() : text(t->why), &ok);
		set(e, "groups", json_integer(t->groups), &ok);
		set(e, "groups_fallback", json_integer(t->groups_fallback), &ok);
	}
	set(o, "labels", lab, &ok);
	lab = NULL;
	set(o, "thresholds", th, &ok);
	th = NULL;
	if (ok)
		return o;
fail:
	json_decref(o);
	json_decref(lab);
	json_decref(th);
	return NULL;
}

vigil_err
batch_duration_parse(const char *s, int64_t *ret_ms)
{
	static const struct { const char *suffix; int64_t ms; } units[] = {
		{ "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 },
		{ "d", VIGIL_MS_PER_DAY }, { "", VIGIL_MS_PER_DAY },
	};
	char *end;
	long long v;

	if (s == NULL || *s < '0' || *s > '9')
		return VIGIL_EINVAL;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || v <= 0)
		return VIGIL_EINVAL;
	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
		if (strcmp(end, units[i].suffix) != 0)
			continue;
		if (v > BATCH_MAX_WINDOW_MS / units[i].ms)
			return VIGIL_EINVAL;
		*ret_ms = v * units[i].ms;
		return VIGIL_OK;
	}
	return VIGIL_EINVAL;
}

vigil_err
batch_partition_parse(const char *s, uint32_t *ret_index, uint32_t *ret_count)
{
	char *end;
	unsigned long i, n;

	if (s == NULL || *s < '0' || *s > '9')
		return VIGIL_EINVAL;
	errno = 0;
	i = strtoul(s, &end, 10);
	if (errno != 0 || *end != '/' || end[1] < '0' || end[1] > '9')
		return VIGIL_EINVAL;
	n = strtoul(end + 1, &end, 10);
	if (errno != 0 || *end != '\0' || n == 0 || n > BATCH_MAX_PARTS || i >= n)
		return VIGIL_EINVAL;
	*ret_index = (uint32_t)i;
	*ret_count = (uint32_t)n;
	return VIGIL_OK;
}
