/* SPDX-License-Identifier: MIT */
/*
 * rules/int.h - private to rules/: tokens, the node array shared by parser,
 * checker and evaluator, the compiled program, and the helpers each stage
 * exports to the next. One prefix per stage: rules_lex_ (lex.c),
 * rules_parse_ (parse.c), rules_check_ (check.c), rules_list_ (list.c),
 * rules_fmt_ (fmt.c); the arena (arena.c) and diagnostics with the "did you
 * mean" rule (diag.c) serve them all; rules_compile, the schema and the
 * introspection API live in compile.c, evaluation in eval.c.
 */
#ifndef VIGIL_RULES_INT_H
#define VIGIL_RULES_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rules.h"

/* Caps that are not in rules_opts (every input-driven size has one). */
#define RULES_MAX_NAME     128     /* identifier bytes */
#define RULES_MAX_STRING   1024    /* string literal bytes after escapes */
#define RULES_MAX_NUMBER   64      /* bytes of a number literal */
#define RULES_MAX_TAGS     16      /* tags per rule */
#define RULES_MAX_NODES    (1u << 20)
#define RULES_MAX_LISTS    256
#define RULES_MAX_THRESH   256
#define RULES_MAX_ITEM     256     /* bytes of one list item */
#define RULES_MAX_LISTFILE (64u << 20)
#define RULES_MAX_ARGS     16      /* arguments of one call */

/* ---- Arena (arena.c): every string and table of a prog, freed at once ---- */

typedef struct rules_arena_chunk rules_arena_chunk;
typedef struct rules_arena {
	rules_arena_chunk *head;
	size_t             used, cap; /* in head */
} rules_arena;

void *rules_arena_alloc(rules_arena *a, size_t n); /* 16-aligned, zeroed; NULL on ENOMEM */
char *rules_arena_strndup(rules_arena *a, const char *s, size_t n);
void  rules_arena_fini(rules_arena *a);

/* ---- Lexer (lex.c) ---- */

typedef enum rules_tok_kind {
	TK_EOF = 0, TK_ERROR, TK_IDENT, TK_NUM, TK_STR, TK_COMMENT,
	TK_LBRACE, TK_RBRACE, TK_LPAREN, TK_RPAREN, TK_LBRACK, TK_RBRACK,
	TK_COMMA, TK_ASSIGN, TK_EQ, TK_NE, TK_LT, TK_LE, TK_GT, TK_GE,
	TK_PLUS, TK_MINUS, TK_STAR, TK_SLASH, TK_PERCENT,
} rules_tok_kind;

/* Reserved words (TK_IDENT with kw != KW_NONE). Words only meaningful in
 * one place (when, score, fallback, by, file, ...) are not reserved. */
typedef enum rules_kw {
	KW_NONE = 0,
	KW_RULE, KW_LIST, KW_THRESHOLD, KW_VERSION, KW_ADJUST, KW_BAND, /* statements (KW_BAND last) */
	KW_AND, KW_OR, KW_NOT, KW_IN, KW_BETWEEN, KW_IS, KW_MISSING,
	KW_TRUE, KW_FALSE,
} rules_kw;

typedef struct rules_tok {
	uint8_t  kind;     /* rules_tok_kind */
	uint8_t  kw;       /* rules_kw */
	uint8_t  nl;       /* a newline precedes the token */
	uint8_t  blank;    /* an empty line precedes the token */
	uint32_t off, len; /* bytes of the token in the source */
} rules_tok;

typedef struct rules_diag_sink rules_diag_sink;

/*
 * Tokenizes src into *ret_toks (malloc'd, ends with TK_EOF). With comments
 * false, comments are skipped. Lexical errors are reported to sink and give
 * a TK_ERROR token. VIGIL_ENOMEM / VIGIL_ETOOBIG only.
 */
vigil_err rules_lex_all(const char *src, size_t len, bool comments, rules_diag_sink *sink,
    rules_tok **ret_toks, uint32_t *ret_n);
const char *rules_lex_kind_name(rules_tok_kind k);

/* ---- Diagnostics (diag.c) ---- */

typedef struct rules_diag_item {
	uint32_t  off;  /* byte offset in src; line:col computed when reported */
	vigil_err code;
	char      msg[RULES_DIAG_MSG_MAX];
} rules_diag_item;

struct rules_diag_sink {
	const char     *src;
	size_t          len;
	uint32_t        n, dropped;
	rules_diag_item items[RULES_MAX_DIAGS];
};

#if defined(__GNUC__)
#define RULES_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define RULES_PRINTF(a, b)
#endif

void rules_diag_add(rules_diag_sink *sink, uint32_t off, vigil_err code, const char *fmt, ...)
    RULES_PRINTF(4, 5);
/* 1-based line and byte column of off in src. */
void rules_diag_linecol(const char *src, size_t len, uint32_t off, uint32_t *ret_line,
    uint32_t *ret_col);
/* Sorts the sink by offset, fills out (may be NULL) with line:col and the
 * file name (NULL: "<rules>"), and returns the code of the first item
 * (VIGIL_EINTERNAL for an empty sink). */
vigil_err rules_diag_emit(rules_diag_sink *sink, const char *name, rules_diags *out);
/* Fills out (may be NULL) with one whole-file diagnostic (line 0, col 0),
 * e.g. an I/O error. */
void rules_diag_file(rules_diags *out, const char *name, const char *fmt, ...)
    RULES_PRINTF(3, 4);

/* ---- Nodes: parse tree, then (after check) the evaluated program ---- */

typedef enum rules_op {
	OP_NIL = 0,
	/* parse-only forms, rewritten by check */
	OP_NAME,   /* str/len: a feature, threshold or list name */
	OP_CALL,   /* str/len: function name; kid[0]: first arg, args chained by next */
	OP_LISTLIT,/* kid[0]: first item (constants chained by next) */
	/* leaves */
	OP_CONST,  /* type + num / str,len */
	OP_SLOT,   /* ix: feature slot */
	OP_THRESH, /* ix: threshold */
	OP_LIST,   /* ix: list (operand of in / starts_with only) */
	/* arithmetic (number) */
	OP_NEG, OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_MOD,
	/* comparisons (ix = operand vigil_type) */
	OP_LT, OP_LE, OP_GT, OP_GE, OP_EQ, OP_NE,
	OP_BETWEEN, /* kid0 between kid1 and kid2, inclusive */
	OP_IN,      /* kid0 in list kid1 (prefix lists: starts with an item) */
	OP_NOTIN,
	/* logic (Kleene three-valued) */
	OP_AND, OP_OR, OP_NOT,
	OP_ISMISSING, OP_PRESENT, OP_COALESCE,
	/* built-ins */
	OP_MIN, OP_MAX, OP_ABS, OP_LOG, OP_SQRT, OP_FLOOR,
	OP_HOUR, OP_WEEKDAY, OP_HAVERSINE,
	OP_STARTS_WITH,      /* kid0 string, kid1 string */
	OP_STARTS_WITH_LIST, /* kid0 string, kid1 list: any item is a prefix */
	OP_COUNT_
} rules_op;

#define RULES_NIL 0u

typedef struct rules_node {
	uint8_t     op;     /* rules_op */
	uint8_t     type;   /* vigil_type of the result (after check) */
	uint16_t    pad;
	uint32_t    off;    /* source byte offset (for diagnostics) */
	uint32_t    len;    /* bytes of str */
	uint32_t    ix;     /* slot, threshold or list index; operand type for comparisons */
	uint32_t    kid[4];
	uint32_t    next;   /* next argument / list item (parse only) */
	double      num;
	const char *str;
} rules_node;

/* ---- Parse result (parse.c) ---- */

typedef struct rules_pstr {
	const char *s;   /* in the arena, NUL-terminated */
	uint32_t    len;
	uint32_t    off; /* source offset of the token */
} rules_pstr;

typedef struct rules_pthresh {
	rules_pstr      name;
	rules_tune_kind kind;
	rules_pstr      feature;  /* tuned kinds */
	rules_pstr      group;    /* optional */
	double          param;
	uint32_t        param_off;
	double          fallback;
	uint64_t        min_samples;
} rules_pthresh;

typedef enum rules_list_kind { RULES_LIST_STRING = 0, RULES_LIST_NUMBER, RULES_LIST_PREFIX } rules_list_kind;

typedef struct rules_plist {
	rules_pstr      name;
	rules_list_kind kind;
	bool            kind_explicit;
	bool            from_file;
	rules_pstr      path;  /* from_file */
	uint32_t        items; /* inline: OP_LISTLIT node */
} rules_plist;

typedef struct rules_prule {
	rules_pstr  name;
	uint32_t    cond;      /* node */
	uint32_t    cond_off, cond_end;
	const char *cond_text; /* the condition's tokens on one line (arena) */
	int32_t     points;
	uint8_t     decide;    /* vigil_decision: 'decide review|decline', ALLOW if none */
	bool        has_when, has_score, has_reason, has_decide;
	rules_pstr  reason;
	rules_pstr  tags[RULES_MAX_TAGS];
	uint32_t    ntags;
	rules_mode  mode;
} rules_prule;

typedef struct rules_ast {
	rules_arena   *arena;  /* strings (owned by the prog being built) */
	rules_node    *nodes;  /* [0] is the NIL node */
	uint32_t       nnodes, capnodes;
	rules_prule   *rules;
	uint32_t       nrules, caprules;
	rules_pthresh *thresh;
	uint32_t       nthresh, capthresh;
	rules_plist   *lists;
	uint32_t       nlists, caplists;
	rules_pstr     version;
	bool           has_version;
	int32_t        band_review, band_decline;
	rules_pstr     band_review_name, band_decline_name; /* 'band X = NAME' (s NULL: a number) */
	uint32_t       band_review_off, band_decline_off;
	bool           has_review, has_decline;
	int32_t        adjust_max;  /* 'adjust max N' */
	uint32_t       adjust_off;
	bool           has_adjust;
	uint8_t       *marks;  /* [ntoks]: token roles for fmt and condition text (RULES_MARK_*) */
	rules_pstr     broken[16]; /* names of declarations that failed to parse */
	uint32_t       nbroken;
} rules_ast;

#define RULES_MARK_CLAUSE 1 /* when / score / decide / reason / tags / mode opening a rule clause */
#define RULES_MARK_UNARY  2 /* a '-' that negates */

/*
 * Parses the token stream into ast (zeroed by the caller, arena set).
 * Syntax errors go to sink, recovering at the next statement keyword.
 * Returns VIGIL_ENOMEM or VIGIL_ETOOBIG for resource failures only; whether
 * the file is valid is told by sink->n.
 */
vigil_err rules_parse_file(const char *src, const rules_tok *toks, uint32_t ntoks,
    const rules_opts *opts, rules_diag_sink *sink, rules_ast *ast);
void      rules_ast_fini(rules_ast *ast); /* frees the arrays, not the arena */

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
	int32_t               review_at, decline_at; /* the bands' numbers (a tuned band: its fallback) */
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
