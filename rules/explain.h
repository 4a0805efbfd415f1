/* SPDX-License-Identifier: MIT */
/*
 * rules/explain.h - the part of the rules API that tools use (vigil-rules,
 * vigil-console): the allocation-free building blocks of an explanation,
 * from which they build their own text or JSON, and the canonical
 * formatter. Included by rules.h; nothing on the scoring path calls it.
 */
#ifndef VIGIL_RULES_EXPLAIN_H
#define VIGIL_RULES_EXPLAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rules.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Explain building blocks (allocation-free; for tools) ---- */

typedef enum rules_outcome {
	RULES_OUTCOME_FALSE = 0, /* the condition is false */
	RULES_OUTCOME_TRUE,      /* the condition is true: the rule fires */
	RULES_OUTCOME_UNKNOWN,   /* a missing value left it undecided: does not fire */
} rules_outcome;

const char *rules_outcome_name(rules_outcome o); /* "false", "true", "unknown" */

/* Source text of rule i's `when` condition (lives as long as prog). */
const char *rules_prog_rule_condition(const rules_prog *prog, uint32_t i);

typedef struct rules_read {
	const char *name;      /* feature or threshold name (lives as long as prog) */
	bool        threshold; /* true: index is a threshold; false: a feature slot */
	uint32_t    index;
	vigil_type  type;      /* NUM for thresholds */
} rules_read;

/*
 * The features and thresholds rule i's condition reads, each once, in
 * source order. Fills ret_reads[0..min(total, cap)) and returns the total.
 */
uint32_t rules_prog_rule_reads(const rules_prog *prog, uint32_t i, rules_read *ret_reads,
    uint32_t cap);

/*
 * Evaluates rule i's condition alone (disabled rules too). VIGIL_EINVAL if
 * i is out of range or nfeatures is short (see rules_prog_eval).
 */
vigil_err rules_prog_rule_eval(const rules_prog *prog, const rules_tvals *tv,
    const vigil_value *features, uint32_t nfeatures, uint32_t i, rules_outcome *ret_outcome);

typedef enum rules_tval_src {
	RULES_TVAL_FALLBACK = 0, /* no tuned value: the declared fallback */
	RULES_TVAL_GLOBAL,       /* the tuned global value */
	RULES_TVAL_GROUP,        /* the tuned value of the transaction's group */
} rules_tval_src;

const char *rules_tval_src_name(rules_tval_src src); /* "fallback", "global", "group" */

/*
 * The value threshold i takes for this transaction and where it came from.
 * tv may be NULL. features is read only for the group feature; nfeatures
 * short or i out of range: VIGIL_EINVAL.
 */
vigil_err rules_tvals_value(const rules_prog *prog, const rules_tvals *tv, uint32_t i,
    const vigil_value *features, uint32_t nfeatures, double *ret_value,
    rules_tval_src *ret_src);

/* ---- Canonical formatting (vigil-rules fmt) ---- */

/*
 * Formats src[0..len) canonically (docs/rules.md, "Canonical form"):
 * comments and single blank lines kept, idempotent. The file must parse (no
 * schema needed); otherwise VIGIL_ESYNTAX with *reterr_diags filled.
 * VIGIL_OK: *ret_out is a malloc'd NUL-terminated text of *ret_len bytes
 * (free with free()).
 */
vigil_err rules_format(const char *name, const char *src, size_t len, char **ret_out,
    size_t *ret_len, rules_diags *reterr_diags);

/*
 * Whether s (NUL-terminated) is an item a number list file takes: a
 * decimal number as a rule file writes one ([-]DIGITS[.DIGITS][e[+-]DIGITS];
 * not "0x10", "5.", ".5" or "inf") and finite; its value into *ret (may be
 * NULL). The compiler reads list files with it; the console checks an
 * analyst's addition to a number list with it.
 */
bool rules_list_number_parse(const char *s, double *ret);

#ifdef __cplusplus
}
#endif

#endif /* VIGIL_RULES_EXPLAIN_H */
