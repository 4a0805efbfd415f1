/* SPDX-License-Identifier: MIT */
/*
 * rules/diag.c - diagnostics, kept out of the stages as Lua keeps ldebug.c
 * out of its pipeline: the sink every stage reports to (byte offsets),
 * turned into file:line:col only here, when reported; whole-file errors;
 * printing with the source line and a caret; and the one "did you mean"
 * rule (rules_suggest) that check.c and app/ share.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "int.h"

/* Messages go through vigil_utf8_line: vigil-rules --json and vigild's
 * /v1/rules put them in JSON, which holds only valid UTF-8. */
void
rules_diag_add(rules_diag_sink *sink, uint32_t off, vigil_err code, const char *fmt, ...)
{
	va_list ap;

	if (sink->n == RULES_MAX_DIAGS) {
		sink->dropped++;
		return;
	}
	sink->items[sink->n].off = off;
	sink->items[sink->n].code = code;
	va_start(ap, fmt);
	vsnprintf(sink->items[sink->n].msg, sizeof sink->items[0].msg, fmt, ap);
	va_end(ap);
	vigil_utf8_line(sink->items[sink->n].msg);
	sink->n++;
}

void
rules_diag_linecol(const char *src, size_t len, uint32_t off, uint32_t *ret_line,
    uint32_t *ret_col)
{
	uint32_t line = 1, col = 1;

	for (size_t i = 0; i < off && i < len; i++) {
		if (src[i] == '\n') {
			line++;
			col = 1;
		} else {
			col++;
		}
	}
	*ret_line = line;
	*ret_col = col;
}

/* Insertion sort: at most RULES_MAX_DIAGS items. */
/* The file name into an item, cut to fit (rules_diags.file keeps it whole). */
static void
diag_name_copy(char *dst, size_t cap, const char *name)
{
	size_t n = strnlen(name, cap - 1);

	memcpy(dst, name, n);
	dst[n] = '\0';
}

vigil_err
rules_diag_emit(rules_diag_sink *sink, const char *name, rules_diags *out)
{
	for (uint32_t i = 1; i < sink->n; i++) {
		rules_diag_item tmp = sink->items[i];
		uint32_t        j = i;

		while (j > 0 && sink->items[j - 1].off > tmp.off) {
			sink->items[j] = sink->items[j - 1];
			j--;
		}
		sink->items[j] = tmp;
	}
	if (out != NULL) {
		memset(out, 0, sizeof *out);
		snprintf(out->file, sizeof out->file, "%s", name != NULL ? name : "<rules>");
		out->count = sink->n;
		out->dropped = sink->dropped;
		for (uint32_t i = 0; i < sink->n; i++) {
			rules_diag *d = &out->items[i];

			vigil_errinfo_clear(d);
			diag_name_copy(d->file, sizeof d->file, out->file);
			if (sink->src != NULL) {
				rules_diag_linecol(sink->src, sink->len, sink->items[i].off,
				    &d->line, &d->col);
				d->offset = sink->items[i].off;
			}
			_Static_assert(sizeof d->msg >= sizeof sink->items[i].msg, "msg sizes");
			memcpy(d->msg, sink->items[i].msg, sizeof sink->items[i].msg);
		}
	}
	return sink->n > 0 ? sink->items[0].code : VIGIL_EINTERNAL;
}

void
rules_diag_file(rules_diags *out, const char *name, const char *fmt, ...)
{
	va_list ap;

	if (out == NULL)
		return;
	memset(out, 0, sizeof *out);
	snprintf(out->file, sizeof out->file, "%s", name != NULL ? name : "<rules>");
	out->count = 1;
	vigil_errinfo_clear(&out->items[0]);
	diag_name_copy(out->items[0].file, sizeof out->items[0].file, out->file);
	va_start(ap, fmt);
	vsnprintf(out->items[0].msg, RULES_DIAG_MSG_MAX, fmt, ap);
	va_end(ap);
	vigil_utf8_line(out->items[0].msg);
}

void
rules_diags_print(const rules_diags *diags, const char *src, size_t len, FILE *out)
{
	for (uint32_t i = 0; i < diags->count; i++) {
		const rules_diag *d = &diags->items[i];
		size_t            b = 0, e;
		uint32_t          line = 1;

		if (d->line == 0) {
			fprintf(out, "%s: error: %s\n", diags->file, d->msg);
			continue;
		}
		fprintf(out, "%s:%u:%u: error: %s\n", diags->file, d->line, d->col, d->msg);
		if (src == NULL)
			continue;
		while (b < len && line < d->line) {
			if (src[b] == '\n')
				line++;
			b++;
		}
		if (line != d->line)
			continue;
		for (e = b; e < len && src[e] != '\n' && src[e] != '\r'; e++)
			;
		fprintf(out, "    %.*s\n    ", (int)(e - b), src + b);
		/* keep tabs so the caret lines up under the column; a UTF-8
		 * character (in a string or comment) is one space, not one per byte */
		for (size_t k = b; k < b + d->col - 1 && k < e; k++)
			if (((unsigned char)src[k] & 0xc0) != 0x80)
				fputc(src[k] == '\t' ? '\t' : ' ', out);
		fputs("^\n", out);
	}
	if (diags->dropped > 0)
		fprintf(out, "%s: %u more errors not shown\n", diags->file, diags->dropped);
}

/* ---- "did you mean" ---- */

/* Levenshtein distance on bytes; SIZE_MAX past RULES_MAX_NAME. */
static size_t
diag_edit_distance(const char *a, size_t la, const char *b, size_t lb)
{
	size_t row[RULES_MAX_NAME + 2];

	if (la > RULES_MAX_NAME || lb > RULES_MAX_NAME)
		return SIZE_MAX;
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];

		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j], best = diag + (a[i - 1] != b[j - 1]);

			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			diag = up;
			row[j] = best;
		}
	}
	return row[lb];
}

static size_t
diag_len_gap(size_t a, size_t b)
{
	return a > b ? a - b : b - a;
}

const char *
rules_suggest(const char *name, size_t len, const char *const *cands, size_t n,
    unsigned max_dist)
{
	const char *best = NULL;
	size_t      bestd = SIZE_MAX, bestl = 0;

	if (name == NULL)
		return NULL;
	if (max_dist == RULES_SUGGEST_BY_LENGTH)
		max_dist = len < 6 ? 1 : len < 12 ? 2 : 3;
	for (size_t i = 0; i < n; i++) {
		const char *cand = cands[i], *dot;
		size_t      cl, d;

		if (cand == NULL)
			continue;
		cl = strlen(cand);
		dot = strrchr(cand, '.');
		d = diag_edit_distance(name, len, cand, cl);
		/* "count_7d" for "card.count_7d": the missing prefix is one fix, not five */
		if (dot != NULL && strlen(dot + 1) == len && memcmp(dot + 1, name, len) == 0)
			d = 1;
		/* ties go to the length closest to the name's: "card.count_97d"
		 * (one edit from either) means "card.count_90d", not "card.count_7d" */
		if (d < bestd || (d == bestd && diag_len_gap(cl, len) < diag_len_gap(bestl, len))) {
			bestd = d;
			best = cand;
			bestl = cl;
		}
	}
	if (best == NULL || bestd > max_dist)
		return NULL;
	return best;
}
