/* SPDX-License-Identifier: MIT */
/*
 * rules/int.h - private to rules/: the lists, the compiled program and the
 * helpers each stage exports to the next, over syntax.h (caps, arena,
 * tokens, diagnostics, nodes, parse result). One prefix per stage:
 * rules_lex_ (lex.c), rules_parse_ (parse.c), rules_check_ (check.c),
 * rules_list_ (list.c), rules_fmt_ (fmt.c); the arena (arena.c) and diagnostics with the "did you
 * mean" rule (diag.c) serve them all; rules_compile, the schema and the
 * introspection API live in compile.c, evaluation in eval.c.
 */
#ifndef VIGIL_RULES_INT_H
#define VIGIL_RULES_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "syntax.h"

/* ---- Lists (list.c) ---- */

typedef struct rules_list {
	const char      *name;
	rules_list_kind  kind;
	uint32_t         n;
	const char     **s;    /* strings (STRING, PREFIX) */
	uint32_t        *slen;
	double          *d;    /* numbers (NUMBER) */
	uint64_t        *h;    /* xxh3 of each item */
	uint32_t        *table;/* open addressing: item index + 1, 0 = empty */
	uint32_t         mask;
	uint32_t         nlens;
	uint32_t         lens[RULES_MAX_ITEM + 1]; /* distinct item lengths, ascending (prefix lookups) */
} rules_list;

uint64_t rules_hash_str(const char *s, size_t len);
uint64_t rules_hash_num(double d);
/* Adds an item (copied into arena); duplicates are ignored. Tables are built
 * by rules_list_seal. */
vigil_err rules_list_add_str(rules_list *l, rules_arena *a, const char *s, uint32_t len,
    uint32_t *cap);
vigil_err rules_list_add_num(rules_list *l, double d, uint32_t *cap);
vigil_err rules_list_seal(rules_list *l);
bool      rules_list_has_str(const rules_list *l, const char *s, uint32_t len);
bool      rules_list_has_prefix(const rules_list *l, const char *s, uint32_t len);
bool      rules_list_has_num(const rules_list *l, double d);

/* ---- Compiled program ---- */

typedef struct rules_crule {
	rules_rule_info info;
	uint32_t        cond;      /* node index */
	const char     *cond_text; /* source of the condition */
} rules_crule;

/*
 * The evaluator's form of a rule (eval.c, rules_eval_prepare): the
 * operands of its condition's top-level "and" chain as terms, the common
 * shapes specialized, so a rule costs a short array walk and stops at the
 * first term that is not TRUE.
 */
typedef enum rules_term_kind {
	RULES_TERM_NODE = 0,  /* any condition: ev_is(node) */
	RULES_TERM_CMP,       /* feature slot <, <=, >, >= constant k (op) */
	RULES_TERM_NOT_COAL,  /* not coalesce(bool slot, constant): missing -> dflt */
	RULES_TERM_CMP_THRESH,/* feature slot <, <=, >, >= tuned threshold th (op) */
	RULES_TERM_IN,        /* slot in / not in (op) list li, of the slot's type */
} rules_term_kind;

typedef struct rules_term {
	uint8_t  kind; /* rules_term_kind */
	uint8_t  op;   /* CMP, CMP_THRESH: OP_LT .. OP_GE; IN: OP_IN or OP_NOTIN */
	uint8_t  dflt; /* RULES_TERM_NOT_COAL: the term's value when the slot is missing */
	uint32_t ix;   /* slot, or node for RULES_TERM_NODE */
	union {
		double   k;  /* CMP */
		uint32_t th; /* CMP_THRESH: threshold index */
		uint32_t li; /* IN: list index */
	};
} rules_term;

typedef struct rules_erule {
	uint32_t first, n; /* terms */
	int32_t  points;
	uint8_t  mode;     /* rules_mode */
	uint8_t  decide;   /* vigil_decision floor of the rule, ALLOW if none */
} rules_erule;

typedef struct rules_field {
	const char *name;
	vigil_type  type;
	uint32_t    slot;
} rules_field;

struct rules_prog {
	rules_arena           arena;
	const char           *version;
	char                  hash[33];
	double                review_at, decline_at; /* the bands' numbers (a tuned band: its fallback) */
	uint32_t              review_thr, decline_thr; /* threshold of a tuned band, else UINT32_MAX */
	int32_t               adjust_max; /* bound of the points' move of a model's score */
	rules_node           *nodes;
	uint32_t              nnodes;
	rules_crule          *rules;
	uint32_t              nrules;
	rules_threshold_info *thresh;
	uint32_t              nthresh;
	rules_list           *lists;
	uint32_t              nlists;
	const char          **list_files; /* [nlist_files] base_dir/name as opened (arena) */
	uint32_t              nlist_files;
	uint32_t             *slots_used;
	uint32_t              nslots_used;
	uint32_t              nslots;   /* rules_schema_nslots of the compile schema */
	const rules_field   **slot_field; /* [nslots]: field by slot (NULL if none) */
	rules_field          *fields;   /* copies of the schema's fields */
	uint32_t              nfields;
	rules_erule          *erules;   /* [nrules], rules_eval_prepare (arena) */
	rules_term           *terms;
	uint32_t              nterms;
};

/*
 * Resolves names, checks types, folds constants, loads list files and
 * fills prog (arena already holds the AST strings). Errors go to sink.
 */
/*
 * One part of the content hash (rules_prog_hash): its length (8 bytes,
 * little-endian), then its bytes: the rule file, then each list file it
 * reads, in order. Without the lengths, bytes moved from one list file to
 * the next (a card moved from a watch list to the blocked list) hashed
 * alike. hs is an XXH3_state_t *.
 */
void rules_hash_part(void *hs, const void *data, size_t len);

vigil_err rules_check_program(rules_ast *ast, const rules_schema *schema, const rules_opts *opts,
    const char *src, rules_diag_sink *sink, rules_prog *prog, void *hash_state);

/* Schema access for check.c. */
const rules_field *rules_schema_lookup(const rules_schema *schema, const char *name, size_t len);
uint32_t           rules_schema_count(const rules_schema *schema);
const rules_field *rules_schema_at(const rules_schema *schema, uint32_t i);

/* Builds erules and terms of a checked, error-free prog (eval.c). */
vigil_err rules_eval_prepare(rules_prog *prog);

/* Evaluates node i (eval.c). features may be NULL for constant subtrees. */
vigil_value rules_eval_node(const rules_prog *prog, const rules_tvals *tv,
    const vigil_value *features, uint32_t i);

/* Name of a built-in op for messages and explain. */
const char *rules_op_name(rules_op op);

#endif /* VIGIL_RULES_INT_H */
