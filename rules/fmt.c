/* SPDX-License-Identifier: MIT */
/*
 * rules/fmt.c - canonical formatting (vigil-rules fmt). Works on the token
 * stream with comments: statements start at column 0, rule clauses are
 * indented two spaces, tokens are separated by one space except around
 * brackets, commas and calls, and the author's line breaks inside a
 * statement are kept (as continuation lines indented two more spaces).
 * Comments stay where they were, and runs of empty lines become one. The
 * output depends only on the tokens and on where line breaks were, both of
 * which the output reproduces, so formatting is idempotent.
 */
#include <stdlib.h>
#include <string.h>

#include "int.h"
#include "vec.h"

/* The output, NUL-terminated as it grows; the first error sticks. */
typedef struct fmt_buf {
	vigil_vec v;   /* char */
	vigil_err err;
} fmt_buf;

static void
fmt_put(fmt_buf *b, const char *s, size_t n)
{
	if (b->err != VIGIL_OK)
		return;
	b->err = vigil_vec_reserve(&b->v, n + 1);
	if (b->err != VIGIL_OK)
		return;
	memcpy((char *)b->v.data + b->v.len, s, n);
	b->v.len += n;
	((char *)b->v.data)[b->v.len] = '\0';
}

static void
fmt_puts(fmt_buf *b, const char *s)
{
	fmt_put(b, s, strlen(s));
}

static void
fmt_indent(fmt_buf *b, int n)
{
	for (int i = 0; i < n; i++)
		fmt_put(b, " ", 1);
}

static bool
fmt_is_stmt(const rules_tok *t)
{
	return t->kind == TK_IDENT && t->kw >= KW_RULE && t->kw <= KW_BAND;
}

/* Indent of a line starting with token t (mark: its parser role). */
static int
fmt_line_indent(const rules_tok *t, uint8_t mark, bool in_rule)
{
	if (t->kind == TK_EOF || fmt_is_stmt(t))
		return 0;
	if (mark == RULES_MARK_CLAUSE)
		return 2;
	if (t->kind == TK_RBRACE)
		return in_rule ? 2 : 0; /* only a comment before '}' asks this */
	return (in_rule ? 2 : 0) + (t->kind == TK_RBRACK || t->kind == TK_RPAREN ? 0 : 2);
}

/* Whether a space separates prev and t on one line. */
static bool
fmt_space(const rules_tok *prev, uint8_t prev_mark, const rules_tok *t)
{
	if (prev->kind == TK_LPAREN || prev->kind == TK_LBRACK || prev_mark == RULES_MARK_UNARY)
		return false;
	if (t->kind == TK_RPAREN || t->kind == TK_RBRACK || t->kind == TK_COMMA)
		return false;
	/* a call: a plain name right before '(' (a clause word is not a call) */
	if (t->kind == TK_LPAREN && prev->kind == TK_IDENT && prev->kw == KW_NONE &&
	    prev_mark != RULES_MARK_CLAUSE)
		return false;
	return true;
}

vigil_err
rules_format(const char *name, const char *src, size_t len, char **ret_out, size_t *ret_len,
    rules_diags *reterr_diags)
{
	rules_diag_sink *sink = NULL;
	rules_tok       *toks = NULL, *ptoks = NULL;
	uint32_t         ntoks = 0, nptoks = 0;
	rules_ast        ast = { 0 };
	rules_arena      arena = { 0 };
	rules_opts       o = { .max_depth = 256, .max_rules = RULES_MAX_RULES,
		       .max_list_items = 1000000 };
	fmt_buf          b = { .err = VIGIL_OK };
	const rules_tok *prev = NULL;
	uint8_t          prev_mark = 0;
	bool             in_rule = false;
	vigil_err        rv;

	if ((src == NULL && len > 0) || ret_out == NULL)
		return VIGIL_EINVAL;
	if (len > RULES_MAX_LISTFILE)
		return VIGIL_ETOOBIG;
	/* the output normalises spacing and indents: well under 8 bytes a byte */
	vigil_vec_init(&b.v, 1, (size_t)8 * len + 4096);
	sink = calloc(1, sizeof *sink);
	if (sink == NULL)
		return VIGIL_ENOMEM;
	if (src == NULL)
		src = "";
	sink->src = src;
	sink->len = len;
	/* the file must parse: formatting a broken file would guess at structure */
	rv = rules_lex_all(src, len, false, sink, &ptoks, &nptoks);
	if (rv != VIGIL_OK)
		goto out;
	ast.marks = calloc(nptoks + 1, 1);
	if (ast.marks == NULL) {
		rv = VIGIL_ENOMEM;
		goto out;
	}
	ast.arena = &arena;
	rv = rules_parse_file(src, ptoks, nptoks, &o, sink, &ast);
	if (rv != VIGIL_OK)
		goto out;
	if (sink->n > 0) {
		/* the compiler's own ordering, line:col, offset and file name
		 * (this copy used to read past each message since the items
		 * became vigil_errinfo: fuzz-rules under ASan) */
		(void)rules_diag_emit(sink, name, reterr_diags);
		rv = VIGIL_ESYNTAX;
		goto out;
	}
	rv = rules_lex_all(src, len, true, sink, &toks, &ntoks);
	if (rv != VIGIL_OK)
		goto out;
	for (uint32_t i = 0, j = 0; i < ntoks && toks[i].kind != TK_EOF; i++) {
		const rules_tok *t = &toks[i];
		uint8_t          mark = 0;
		bool             brk = false;
		int              indent = 0;

		if (t->kind != TK_COMMENT) {
			/* the parse tokens are the same tokens without comments */
			mark = j < nptoks && ptoks[j].off == t->off ? ast.marks[j] : 0;
			j++;
		}
		if (prev == NULL) {
			brk = false;
		} else if (t->kind == TK_COMMENT && !t->nl) {
			brk = false; /* a trailing comment stays on its line */
		} else if (fmt_is_stmt(t) || mark == RULES_MARK_CLAUSE || t->kind == TK_RBRACE) {
			brk = true;
			indent = fmt_line_indent(t, mark, false);
		} else if (t->nl || prev->kind == TK_COMMENT || prev->kind == TK_LBRACE) {
			brk = true;
			if (t->kind == TK_COMMENT) {
				/* an own-line comment is indented like the line it precedes */
				uint32_t k = i + 1, jj = j;

				while (k < ntoks && toks[k].kind == TK_COMMENT)
					k++;
				indent = fmt_line_indent(&toks[k < ntoks ? k : ntoks - 1],
				    k < ntoks && jj < nptoks && ptoks[jj].off == toks[k].off ? ast.marks[jj] : 0,
				    in_rule);
			} else {
				indent = fmt_line_indent(t, mark, in_rule);
			}
		}
		if (brk) {
			fmt_puts(&b, t->blank ? "\n\n" : "\n");
			fmt_indent(&b, indent);
		} else if (prev != NULL && (t->kind == TK_COMMENT || fmt_space(prev, prev_mark, t))) {
			fmt_puts(&b, " ");
		}
		fmt_put(&b, src + t->off, t->len);
		if (t->kind == TK_LBRACE)
			in_rule = true;
		else if (t->kind == TK_RBRACE)
			in_rule = false;
		prev_mark = mark;
		prev = t;
	}
	fmt_puts(&b, "\n");
	if (b.err != VIGIL_OK) {
		rv = b.err;
		goto out;
	}
	if (b.v.len == 1)
		b.v.len = 0, ((char *)b.v.data)[0] = '\0'; /* an empty file stays empty */
	*ret_out = b.v.data;
	if (ret_len != NULL)
		*ret_len = b.v.len;
	b.v.data = NULL;
	rv = VIGIL_OK;
out:
	vigil_vec_fini(&b.v);
	free(toks);
	free(ptoks);
	free(sink);
	free(ast.marks);
	rules_ast_fini(&ast);
	rules_arena_fini(&arena);
	return rv;
}
