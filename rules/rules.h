/* SPDX-License-Identifier: MIT */
/*
 * rules/rules.h - compile and evaluate vigil rule files (docs/rules.md).
 *
 * Pipeline: lex.c (rules_lex_*) -> parse.c (rules_parse_*) -> check.c (names
 * resolved to slots, types, the compact program) -> eval.c (rules_prog_eval),
 * driven by compile.c (rules_compile); arena.c and diag.c serve every stage.
 * The library knows nothing of store/: it compiles against a rules_schema the
 * caller builds (name, type, slot), and evaluates over a flat vigil_value
 * vector in slot order. It never logs; errors come back as rules_diags.
 */
#ifndef VIGIL_RULES_H
#define VIGIL_RULES_H

#include <stdio.h>

#include "vigil.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Schema: the feature names a rule file may use ---- */

typedef struct rules_schema rules_schema;

rules_schema *rules_schema_new(void); /* NULL on ENOMEM */
void          rules_schema_free(rules_schema *schema); /* NULL is a no-op */
/* Adds a feature. name is copied. VIGIL_EEXIST if name is taken,
 * VIGIL_EINVAL for VIGIL_T_NONE/LIST or an empty name. */
vigil_err rules_schema_add(rules_schema *schema, const char *name,
    vigil_type type, uint32_t slot);
/* Highest slot + 1: the length of the vector rules_prog_eval reads. */
uint32_t rules_schema_nslots(const rules_schema *schema);

/* ---- Diagnostics ---- */

/*
 * One error, in common/'s shape (vigil_errinfo): line, col (1-based; col in
 * bytes; 0,0 = the whole file), offset (the byte offset line:col came
 * from; VIGIL_NOPOS for the whole file), file (the name given to the
 * compiler, cut at 127 bytes; rules_diags.file has it whole), msg (at most
 * RULES_DIAG_MSG_MAX - 1 bytes, one line). field is "".
 */
typedef vigil_errinfo rules_diag;
#define RULES_DIAG_MSG_MAX 160

#define RULES_MAX_DIAGS 32

typedef struct rules_diags {
	char       file[256]; /* the name given to the compiler */
	uint32_t   count;     /* recorded, <= RULES_MAX_DIAGS */
	uint32_t   dropped;   /* more errors than fit */
	rules_diag items[RULES_MAX_DIAGS];
} rules_diags;

/*
 * Prints every diagnostic as
 *     file:line:col: error: message
 *         <source line>
 *         ^
 * src/len is the compiled text (for the source line); may be NULL.
 */
void rules_diags_print(const rules_diags *diags, const char *src, size_t len,
    FILE *out);

#define RULES_SUGGEST_BY_LENGTH 0u /* max_dist: 1 edit under 6 bytes, 2 under 12, else 3 */

/*
 * "Did you mean": the candidate closest to name[0..len) among cands[0..n)
 * (NULL entries skipped), or NULL when none is within max_dist edits
 * (RULES_SUGGEST_BY_LENGTH: by the name's length). The distance is
 * Levenshtein's on bytes, except that a name equal to the part of a
 * candidate after its last '.' is one edit ("count_7d" for
 * "card.count_7d"). Ties go to the candidate whose length is closest to
 * the name's, then to the earlier one. Names or candidates over 128 bytes
 * never match. The result is one of cands; no allocation, never fails.
 */
const char *rules_suggest(const char *name, size_t len, const char *const *cands, size_t n,
    unsigned max_dist);

/* ---- Compilation ---- */

typedef struct rules_prog rules_prog; /* compiled, immutable, shareable across threads */

typedef struct rules_opts {
	const char *base_dir;      /* where `list x = file "..."` is resolved; NULL = "." */
	size_t      max_file_bytes; /* 0 = default 1 MiB */
	uint32_t    max_rules;      /* 0 = default 1000 (hard cap RULES_MAX_RULES) */
	uint32_t    max_list_items; /* 0 = default 1,000,000 per list */
	uint32_t    max_depth;      /* 0 = default 64 (expression nesting; at most 256) */
	/* The cost budget, in expression nodes (docs/rules.md, "Errors", **Cost
	 * budget**): of one rule's condition, and of every rule's together.
	 * Over it: VIGIL_ETOOBIG with a diag at the rule. */
	uint32_t    max_rule_nodes; /* 0 = default RULES_DEFAULT_RULE_NODES */
	uint32_t    max_file_nodes; /* 0 = default RULES_DEFAULT_FILE_NODES */
} rules_opts;

#define RULES_DEFAULT_RULE_NODES 256
#define RULES_DEFAULT_FILE_NODES 10000

#define RULES_MAX_RULES 1024

/*
 * Compiles src[0..len) named `name` (used in diagnostics) against schema.
 * VIGIL_OK: *ret_prog set (free with rules_prog_free), reterr untouched.
 * VIGIL_ESYNTAX / VIGIL_ETYPE / VIGIL_ETOOBIG / VIGIL_ENOTFOUND (list file):
 * *ret_prog untouched, *reterr_diags filled (all errors found, up to the cap).
 * opts may be NULL for defaults. Never logs.
 */
vigil_err rules_compile(const char *name, const char *src, size_t len,
    const rules_schema *schema, const rules_opts *opts, rules_prog **ret_prog,
    rules_diags *reterr_diags);

/* Reads path and compiles it; list files are resolved next to it (unless
 * opts->base_dir is set). I/O errors are reported as a diag at 0:0. */
vigil_err rules_load_file(const char *path, const rules_schema *schema,
    const rules_opts *opts, rules_prog **ret_prog, rules_diags *reterr_diags);

void rules_prog_free(rules_prog *prog); /* NULL is a no-op */

/* ---- Introspection (strings live as long as prog) ---- */

typedef enum rules_mode {
	RULES_MODE_ACTIVE = 0,
	RULES_MODE_SHADOW,
	RULES_MODE_DISABLED,
} rules_mode;

const char *rules_mode_name(rules_mode mode);

typedef struct rules_rule_info {
	const char        *name;
	const char        *reason;
	int32_t            points;
	vigil_decision     decide; /* 'decide review|decline': the decision floor; ALLOW if none */
	rules_mode         mode;
	const char *const *tags;
	uint32_t           ntags;
	uint32_t           line; /* where the rule starts in the file */
} rules_rule_info;

const char *rules_prog_version(const rules_prog *prog); /* declared `version "..."` */
const char *rules_prog_hash(const rules_prog *prog);    /* hex content hash of file + list files */
uint32_t    rules_prog_nrules(const rules_prog *prog);
/*
 * The list files prog read (`list x = file "..."`), one per such list, in
 * declaration order, as opened: base_dir "/" the name in the rule file. The
 * hash covers their bytes, so a file watch (vigild) watches these with the
 * rule file. rules_prog_list_file returns NULL for i out of range.
 */
uint32_t    rules_prog_nlist_files(const rules_prog *prog);
const char *rules_prog_list_file(const rules_prog *prog, uint32_t i);
void        rules_prog_rule(const rules_prog *prog, uint32_t i, rules_rule_info *ret_info);
/* Looks a rule up by name; VIGIL_ENOTFOUND if absent. */
vigil_err   rules_prog_rule_find(const rules_prog *prog, const char *name, uint32_t *ret_i);

/* Decision bands: score >= review_at -> review; >= decline_at -> decline.
 * A band set by a threshold ('band review = NAME') gives its fallback as
 * the file wrote it (50.4, not 50); rules_result's review_at and decline_at
 * are the bands a result was decided with (tuned values included). */
void rules_prog_bands(const rules_prog *prog, double *ret_review_at,
    double *ret_decline_at);
/* `adjust max N`: how far the points of the active rules that fire may move
 * a model's score, either way (0 when the file does not say). */
int32_t rules_prog_adjust_max(const rules_prog *prog);

/* Slots read by any non-disabled rule or threshold (sorted, unique). */
const uint32_t *rules_prog_slots_used(const rules_prog *prog, uint32_t *ret_n);

/* ---- Thresholds (constant or batch-tuned) ---- */

typedef enum rules_tune_kind {
	RULES_TUNE_CONST = 0,   /* a fixed number */
	RULES_TUNE_PERCENTILE,  /* param-th percentile of feature over the window */
	RULES_TUNE_ALERT_RATE,  /* smallest v with share(feature >= v) <= param */
	RULES_TUNE_PRECISION,   /* smallest v with precision(feature >= v) >= param vs labels */
} rules_tune_kind;

/* feature_slot of a threshold tuned on the score itself ('alert_rate(score,
 * 0.005)', for the bands): not a feature slot; vigil-rebuild reads the score
 * archived with each row. */
#define RULES_SLOT_SCORE UINT32_MAX

typedef struct rules_threshold_info {
	const char     *name;
	rules_tune_kind kind;
	double          fallback;     /* the constant, or the value before the first rebuild */
	const char     *feature;      /* tuned feature name (NULL for CONST) */
	uint32_t        feature_slot; /* RULES_SLOT_SCORE: the score */
	double          param;        /* percentile in (0,100); rate or precision in (0,1) */
	const char     *group_by;     /* feature name of the group, NULL = one global value */
	uint32_t        group_slot;
	vigil_type      group_type;
	uint64_t        min_samples;  /* fewer samples than this: keep fallback */
} rules_threshold_info;

uint32_t rules_prog_nthresholds(const rules_prog *prog);
void     rules_prog_threshold(const rules_prog *prog, uint32_t i,
    rules_threshold_info *ret_info);
/*
 * What a tuned value of the threshold means, as one line: its kind, the
 * feature tuned on, the parameter and the group feature ("percentile
 * card.amount_zscore 99.5 -"). vigil-rebuild stores it beside the values it
 * tunes; a value is bound only to a threshold of the same definition (a
 * threshold renamed to another feature or percentile takes its fallback
 * until the next rebuild instead of the old number). NUL-terminated in
 * buf[0..cap); cut to fit.
 */
void     rules_threshold_def(const rules_threshold_info *info, char *buf, size_t cap);

/*
 * Tuned values for one prog's thresholds, immutable once published. Built
 * by the program on top from a feature generation; eval reads it without
 * allocation. A threshold with no value for the transaction's group uses its
 * global value if set, else its fallback.
 */
typedef struct rules_tvals rules_tvals;

rules_tvals *rules_tvals_new(const rules_prog *prog); /* every value = fallback; NULL on ENOMEM */
void         rules_tvals_free(rules_tvals *tv);        /* NULL is a no-op */
/* Sets threshold i's value for group (NULL = the global value). The group
 * value must be present and of the threshold's group_type. VIGIL_EINVAL:
 * i out of range, value not finite, or a group for an ungrouped threshold;
 * VIGIL_ENOMEM; VIGIL_ETOOBIG past 4M groups. A constant threshold keeps its
 * constant: setting it is a no-op returning VIGIL_OK (a stored value may be
 * older than a file that turned a tuned threshold into a constant). */
vigil_err    rules_tvals_set(rules_tvals *tv, uint32_t i, const vigil_value *group,
    double value);
/* The bands a transaction is decided with under tv (rules_result's
 * review_at and decline_at): a band named by a threshold takes its tuned
 * value, else its fallback; rules_prog_bands gives the file's numbers. */
void         rules_prog_bands_in_force(const rules_prog *prog, const rules_tvals *tv,
    double *ret_review_at, double *ret_decline_at);

/* ---- Evaluation ---- */

/*
 * The score (docs/rules.md, "The score"): without a model (rules_prog_eval
 * alone) the points of the active rules that fired, clamped to [0, 100];
 * with one (rules_result_model after it) 100 x the model's calibrated
 * probability plus those points clamped to +-adjust_max, clamped to
 * [0, 100]. The decision is the band the score falls in, raised to the
 * strongest 'decide' of the active rules that fired (floor), which never
 * changes the score.
 */
typedef struct rules_result {
	double         score;        /* 0..100, the risk score (above) */
	int32_t        points;       /* sum of points of active rules that fired */
	int32_t        shadow_score; /* sum of points of shadow rules that fired */
	vigil_decision floor;        /* strongest 'decide' of active hits, ALLOW if none */
	vigil_decision decision;     /* from score and the bands, at least floor */
	double         review_at, decline_at; /* the bands applied (tuned, when set so) */
	uint32_t       nhits;        /* active rules that fired, in file order */
	uint32_t       nshadow;      /* shadow rules that fired, in file order */
	uint16_t       hits[RULES_MAX_RULES];
	uint16_t       shadow[RULES_MAX_RULES];
} rules_result;

/*
 * Evaluates every non-disabled rule over features[0..nfeatures) (slot order;
 * nfeatures must be >= rules_schema_nslots of the compile schema, else
 * VIGIL_EINVAL). tv may be NULL (fallbacks); otherwise it must come from
 * rules_tvals_new(prog) (else VIGIL_EINVAL). No allocation, no string
 * comparison of feature names; thread-safe for a shared prog and tv.
 * Semantics of missing values: docs/rules.md, "Missing values".
 */
vigil_err rules_prog_eval(const rules_prog *prog, const rules_tvals *tv,
    const vigil_value *features, uint32_t nfeatures, rules_result *ret_result);

/*
 * Makes res (filled by rules_prog_eval with the same prog) the score of a
 * transaction the model scored: p is the model's calibrated probability of
 * fraud in [0, 1]; res->score becomes 100 p plus res->points clamped to
 * +-rules_prog_adjust_max, clamped to [0, 100], and res->decision is
 * decided again from it. A p that is NaN (no model) leaves res as it is.
 */
void rules_result_model(const rules_prog *prog, double p, rules_result *res);

/*
 * Explains one evaluation as text on out: the decision, then for each rule
 * whether it fired and the value of each feature/threshold its condition
 * read. Allocates; for tools only. For JSON, tools build their own output
 * from rules_prog_rule_eval, rules_prog_rule_reads and rules_tvals_value
 * (below), which keeps this library free of a JSON dependency.
 */
void rules_explain_print(const rules_prog *prog, const rules_tvals *tv,
    const vigil_value *features, uint32_t nfeatures, FILE *out);

/* The tools' half (explain building blocks, canonical formatting). */
#include "explain.h"

#ifdef __cplusplus
}
#endif

#endif /* VIGIL_RULES_H */
