/* SPDX-License-Identifier: MIT */
/*
 * rules/syntax.h - private to rules/: the front end's data, from the source
 * text to the parse tree. The caps on every input-driven size, the arena
 * that holds a prog's strings, tokens (lex.c), diagnostics (diag.c), the
 * node array shared by parser, checker and evaluator, and the parse result
 * (parse.c). int.h adds the lists and the compiled program on top.
 */
#ifndef VIGIL_RULES_SYNTAX_H
#define VIGIL_RULES_SYNTAX_H

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
/* Length of the number token at s[0..n): DIGITS [. DIGITS] [(e|E) [+-]
 * DIGITS]; *ret_bad when it is malformed (1., 1e, 12abc). */
size_t rules_lex_number_len(const char *s, size_t n, bool *ret_bad);

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

#endif /* VIGIL_RULES_SYNTAX_H */
