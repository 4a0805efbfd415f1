/* SPDX-License-Identifier: MIT */
/*
 * console/diff.c - the line diff of two rule texts that the rules page
 * shows before a deploy, a proposal carries and the audit log records
 * (editor.h, con_diff_lines).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "editor.h"

/* Changed lines compared, on each side (the LCS table is their product). */
#define DIFF_LINES_MAX 4000

/* The lines of s[0..len): *ret_l[i] and *ret_n[i] (no newline); the count,
 * or -1 without memory. The caller frees both arrays. */
static long
diff_split(const char *s, size_t len, const char ***ret_l, size_t **ret_n)
{
	size_t n = 0, k = 0;

	for (const char *p = s, *e = s + len; p < e; n++) {
		const char *nl = memchr(p, '\n', (size_t)(e - p));
		p = nl ? nl + 1 : e;
	}
	*ret_l = malloc((n + 1) * sizeof **ret_l);
	*ret_n = malloc((n + 1) * sizeof **ret_n);
	if (*ret_l == NULL || *ret_n == NULL)
		return -1;
	for (const char *p = s, *e = s + len; p < e; k++) {
		const char *nl = memchr(p, '\n', (size_t)(e - p));
		(*ret_l)[k] = p;
		(*ret_n)[k] = (size_t)((nl ? nl : e) - p);
		p = nl ? nl + 1 : e;
	}
	return (long)n;
}

/* "-N: line" or "+N: line", made valid UTF-8, onto out. */
static void
diff_emit(json_t *out, char sign, size_t no, const char *l, size_t n)
{
	char line[1024];

	snprintf(line, sizeof line, "%c%zu: %.*s", sign, no, (int)(n < 900 ? n : 900), l);
	vigil_utf8_line(line);
	json_array_append_new(out, json_string(line));
}

/*
 * Line diff of a and b: ["-N: old", "+N: new", ...], N the line's number
 * in its text. The lines both texts start and end with are set aside, the
 * LCS runs on what lies between; over DIFF_LINES_MAX lines there on either
 * side, the first DIFF_LINES_MAX are compared and a last entry says where
 * the diff stops ("... lines N.. and M.. not compared"), never silently.
 */
json_t *
con_diff_lines(const char *a, size_t alen, const char *b, size_t blen)
{
	const char **al = NULL, **bl = NULL;
	size_t *aln = NULL, *bln = NULL, pre = 0, suf = 0, na, nb, ma, mb;
	long la = diff_split(a, alen, &al, &aln), lb = diff_split(b, blen, &bl, &bln);
	json_t *out = NULL;
	uint16_t *t = NULL;

	if (la < 0 || lb < 0)
		goto out;
	na = (size_t)la;
	nb = (size_t)lb;
#define SAME(i, j) (aln[i] == bln[j] && memcmp(al[i], bl[j], aln[i]) == 0)
	while (pre < na && pre < nb && SAME(pre, pre))
		pre++;
	while (suf < na - pre && suf < nb - pre && SAME(na - 1 - suf, nb - 1 - suf))
		suf++;
	ma = na - pre - suf;
	mb = nb - pre - suf;
	if (ma > DIFF_LINES_MAX)
		ma = DIFF_LINES_MAX;
	if (mb > DIFF_LINES_MAX)
		mb = DIFF_LINES_MAX;
	/* suffix LCS table of the middle, (ma+1) x (mb+1) uint16 */
	t = calloc((ma + 1) * (mb + 1), sizeof *t);
	out = json_array();
	if (t == NULL || out == NULL)
		goto out;
#define T(i, j) t[(size_t)(i) * (mb + 1) + (j)]
	for (size_t i = ma; i-- > 0;)
		for (size_t j = mb; j-- > 0;)
			T(i, j) = SAME(pre + i, pre + j) ? (uint16_t)(T(i + 1, j + 1) + 1) :
			    (T(i + 1, j) >= T(i, j + 1) ? T(i + 1, j) : T(i, j + 1));
	for (size_t i = 0, j = 0; i < ma || j < mb;) {
		if (i < ma && j < mb && SAME(pre + i, pre + j)) {
			i++;
			j++;
		} else if (i < ma && (j == mb || T(i + 1, j) >= T(i, j + 1))) {
			/* removals first, as diff(1) prints them */
			diff_emit(out, '-', pre + i + 1, al[pre + i], aln[pre + i]);
			i++;
		} else {
			diff_emit(out, '+', pre + j + 1, bl[pre + j], bln[pre + j]);
			j++;
		}
	}
#undef T
#undef SAME
	if (ma < na - pre - suf || mb < nb - pre - suf) {
		char line[200];

		snprintf(line, sizeof line, "... lines %zu.. (old) and %zu.. (new) not compared: "
		    "over %d changed lines", pre + ma + 1, pre + mb + 1, DIFF_LINES_MAX);
		json_array_append_new(out, json_string(line));
	}
out:
	free(t);
	free(al);
	free(aln);
	free(bl);
	free(bln);
	if (t == NULL) {
		json_decref(out);
		return json_string("(diff too large)");
	}
	return out;
}
