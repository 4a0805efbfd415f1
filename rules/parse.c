/* SPDX-License-Identifier: MIT */
/*
 * rules/parse.c - recursive-descent parser: tokens -> statements and an
 * expression node array (rules_ast). Each parse function opens with its
 * grammar rule. Like Lua's parser, a syntax error unwinds (longjmp) to the
 * statement loop, which records it and resumes at the next statement keyword
 * (rule, list, threshold, version, adjust, band), so one run reports every
 * independent error in a file. Names are not resolved here (check.c does).
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "int.h"
#include "vec.h"

typedef struct parser {
	const char      *src;
	const rules_tok *t;
	uint32_t         n, pos;
	rules_diag_sink *sink;
	rules_ast       *ast;
	uint32_t         max_depth;
	uint32_t         max_rules;
	uint32_t         max_items;
	vigil_err        fatal; /* ENOMEM / ETOOBIG: stop parsing */
	rules_pstr       decl;  /* name of the threshold or list being parsed */
	uint32_t         nest;  /* recursion depth of the expression parser */
	jmp_buf          jb;
} parser;

static const rules_tok *
parse_peek(parser *p)
{
	return &p->t[p->pos];
}

static void
parse_mark(parser *p, uint8_t mark)
{
	if (p->ast->marks != NULL)
		p->ast->marks[p->pos] = mark;
}

static const rules_tok *
parse_next(parser *p)
{
	const rules_tok *t = &p->t[p->pos];

	if (t->kind != TK_EOF)
		p->pos++;
	return t;
}

/* Describes token t for a message: 'word', number '12', string, ... */
static void
parse_tok_desc(parser *p, const rules_tok *t, char *buf, size_t n)
{
	switch ((rules_tok_kind)t->kind) {
	case TK_IDENT:
	case TK_NUM:
		snprintf(buf, n, "'%.*s'", (int)(t->len > 40 ? 40 : t->len), p->src + t->off);
		break;
	default:
		snprintf(buf, n, "%s", rules_lex_kind_name((rules_tok_kind)t->kind));
		break;
	}
}

/* Reports a syntax error at token t and unwinds to the statement loop. A
 * TK_ERROR token was already reported by the lexer: no second message. */
static _Noreturn void parse_error_at(parser *p, const rules_tok *t, const char *fmt, ...)
    RULES_PRINTF(3, 4);

static _Noreturn void
parse_error_at(parser *p, const rules_tok *t, const char *fmt, ...)
{
	if (t->kind != TK_ERROR) {
		char    msg[160];
		va_list ap;

		va_start(ap, fmt);
		vsnprintf(msg, sizeof msg, fmt, ap);
		va_end(ap);
		rules_diag_add(p->sink, t->off, VIGIL_ESYNTAX, "%s", msg);
	}
	longjmp(p->jb, 1);
}

static _Noreturn void
parse_fatal(parser *p, uint32_t off, vigil_err err)
{
	p->fatal = err;
	if (err == VIGIL_ETOOBIG)
		rules_diag_add(p->sink, off, err, "program too large (more than %u nodes)",
		    RULES_MAX_NODES);
	else
		rules_diag_add(p->sink, off, err, "out of memory");
	longjmp(p->jb, 1);
}

static _Noreturn void
parse_expected(parser *p, const char *what)
{
	char got[64];

	parse_tok_desc(p, parse_peek(p), got, sizeof got);
	parse_error_at(p, parse_peek(p), "expected %s, found %s", what, got);
}

static bool
parse_is_word(parser *p, const char *w)
{
	const rules_tok *t = parse_peek(p);

	return t->kind == TK_IDENT && t->kw == KW_NONE && strlen(w) == t->len &&
	    memcmp(p->src + t->off, w, t->len) == 0;
}

/* One of the words that open a rule clause (not reserved: a name may be one). */
static bool
parse_is_clause_word(parser *p, const rules_tok *t)
{
	static const char *const words[] = { "when", "score", "decide", "reason", "tags", "mode" };

	for (size_t i = 0; t->kind == TK_IDENT && t->kw == KW_NONE && i < 6; i++)
		if (strlen(words[i]) == t->len && memcmp(p->src + t->off, words[i], t->len) == 0)
			return true;
	return false;
}

/* The closer of the bracket `open` is missing: reported where it belongs,
 * right after the last token read (not at the next line's clause), with
 * where the bracket opened. */
static _Noreturn void
parse_unclosed(parser *p, const rules_tok *open, const char *what)
{
	const rules_tok *last = &p->t[p->pos - 1], *t = parse_peek(p);
	uint32_t         line, col;
	char             got[64];

	if (t->kind == TK_ERROR)
		parse_error_at(p, t, "%s", ""); /* reported by the lexer */
	rules_diag_linecol(p->src, (size_t)open->off + 1, open->off, &line, &col);
	parse_tok_desc(p, t, got, sizeof got);
	rules_diag_add(p->sink, last->off + last->len, VIGIL_ESYNTAX,
	    "expected %s to close the '%.*s' at %u:%u, found %s", what, (int)open->len,
	    p->src + open->off, line, col, got);
	longjmp(p->jb, 1);
}

static const rules_tok *
parse_expect(parser *p, rules_tok_kind k)
{
	if (parse_peek(p)->kind != k)
		parse_expected(p, rules_lex_kind_name(k));
	return parse_next(p);
}

static uint32_t
parse_node(parser *p, rules_op op, uint32_t off)
{
	rules_ast *a = p->ast;

	if (a->nnodes == a->capnodes) {
		size_t ncap = vigil_array_grown(a->capnodes, (size_t)a->nnodes + 1, 256,
		    RULES_MAX_NODES);

		if (ncap == 0)
			parse_fatal(p, off, VIGIL_ETOOBIG);
		if (vigil_array_resize(&a->nodes, ncap, sizeof *a->nodes) != VIGIL_OK)
			parse_fatal(p, off, VIGIL_ENOMEM);
		a->capnodes = (uint32_t)ncap;
		if (a->nnodes == 0)
			memset(&a->nodes[a->nnodes++], 0, sizeof a->nodes[0]); /* NIL */
	}
	memset(&a->nodes[a->nnodes], 0, sizeof a->nodes[0]);
	a->nodes[a->nnodes].op = (uint8_t)op;
	a->nodes[a->nnodes].off = off;
	return a->nnodes++;
}

/* Sets node i's depth from its children; too deep is an error at the node. */
static void
parse_depth(parser *p, uint32_t i)
{
	rules_node *nd = &p->ast->nodes[i];
	uint16_t    d = 0;

	for (int k = 0; k < 4; k++)
		if (nd->kid[k] != RULES_NIL && p->ast->nodes[nd->kid[k]].pad > d)
			d = p->ast->nodes[nd->kid[k]].pad;
	for (uint32_t a = nd->op == OP_CALL ? nd->kid[0] : RULES_NIL; a != RULES_NIL;
	    a = p->ast->nodes[a].next)
		if (p->ast->nodes[a].pad > d)
			d = p->ast->nodes[a].pad;
	nd->pad = (uint16_t)(d + 1);
	if (nd->pad > p->max_depth) {
		rules_diag_add(p->sink, nd->off, VIGIL_ETOOBIG,
		    "expression nested deeper than %u levels", p->max_depth);
		longjmp(p->jb, 1);
	}
}

/* Bounds the parser's own recursion ("((((..." or "not not not ...")
 * before any node exists to measure: the stack must not be input-driven. */
static void
parse_enter(parser *p)
{
	if (++p->nest > p->max_depth) {
		rules_diag_add(p->sink, parse_peek(p)->off, VIGIL_ETOOBIG,
		    "expression nested deeper than %u levels", p->max_depth);
		longjmp(p->jb, 1);
	}
}

static uint32_t
parse_binary(parser *p, rules_op op, uint32_t off, uint32_t l, uint32_t r)
{
	uint32_t i = parse_node(p, op, off);

	p->ast->nodes[i].kid[0] = l;
	p->ast->nodes[i].kid[1] = r;
	parse_depth(p, i);
	return i;
}

/* A prefix operator at off, its token consumed: op over the operand that
 * `operand` parses (the calling rule itself, so "- - x" and "not not x"
 * nest, bounded by parse_enter). */
static uint32_t
parse_prefix(parser *p, rules_op op, uint32_t off, uint32_t (*operand)(parser *))
{
	uint32_t i, k;

	parse_enter(p);
	k = operand(p);
	p->nest--;
	i = parse_node(p, op, off);
	p->ast->nodes[i].kid[0] = k;
	parse_depth(p, i);
	return i;
}

static rules_pstr
parse_copy(parser *p, uint32_t off, const char *s, size_t n)
{
	rules_pstr ps = { 0 };

	ps.s = rules_arena_strndup(p->ast->arena, s, n);
	if (ps.s == NULL)
		parse_fatal(p, off, VIGIL_ENOMEM);
	ps.len = (uint32_t)n;
	ps.off = off;
	return ps;
}

/* name := IDENT, not reserved; dotted only if allow_dots. */
static rules_pstr
parse_name(parser *p, const char *what, bool allow_dots)
{
	const rules_tok *t = parse_peek(p);

	if (t->kind != TK_IDENT)
		parse_expected(p, what);
	if (t->kw != KW_NONE)
		parse_error_at(p, t, "'%.*s' is a reserved word and cannot be used as %s",
		    (int)t->len, p->src + t->off, what);
	if (!allow_dots && memchr(p->src + t->off, '.', t->len) != NULL)
		parse_error_at(p, t, "%s '%.*s' cannot contain '.' (dotted names are features)",
		    what, (int)t->len, p->src + t->off);
	parse_next(p);
	return parse_copy(p, t->off, p->src + t->off, t->len);
}

/* STRING := '"' { char | '\' ( '"' | '\' | 'n' | 't' ) } '"' */
static rules_pstr
parse_string(parser *p)
{
	const rules_tok *t = parse_peek(p);
	char             buf[RULES_MAX_STRING];
	size_t           n = 0;

	if (t->kind != TK_STR)
		parse_expected(p, "a string");
	for (uint32_t i = 1; i + 1 < t->len; i++) {
		unsigned char c = (unsigned char)p->src[t->off + i];

		if (c == '\\') {
			i++;
			switch (p->src[t->off + i]) {
			case '"': c = '"'; break;
			case '\\': c = '\\'; break;
			case 'n': c = '\n'; break;
			case 't': c = '\t'; break;
			default:
				rules_diag_add(p->sink, t->off + i - 1, VIGIL_ESYNTAX,
				    "unknown escape '\\%c' in string (use \\\" \\\\ \\n \\t)",
				    p->src[t->off + i]);
				longjmp(p->jb, 1);
			}
		} else if (c < 0x20 || c == 0x7f) {
			rules_diag_add(p->sink, t->off + i, VIGIL_ESYNTAX,
			    "control character 0x%02x in string (use \\t or \\n)", c);
			longjmp(p->jb, 1);
		}
		if (n == sizeof buf) {
			rules_diag_add(p->sink, t->off, VIGIL_ETOOBIG, "string longer than %d bytes",
			    RULES_MAX_STRING);
			longjmp(p->jb, 1);
		}
		buf[n++] = (char)c;
	}
	parse_next(p);
	return parse_copy(p, t->off, buf, n);
}

/* snumber := [ '-' ] NUMBER */
static double
parse_number(parser *p, uint32_t *ret_off)
{
	const rules_tok *t = parse_peek(p);
	bool             neg = false;
	char             buf[RULES_MAX_NUMBER + 1];
	double           d;

	if (ret_off != NULL)
		*ret_off = t->off;
	if (t->kind == TK_MINUS) {
		neg = true;
		parse_mark(p, RULES_MARK_UNARY);
		parse_next(p);
		t = parse_peek(p);
	}
	if (t->kind == TK_STR)
		parse_error_at(p, t, "expected a number, found the string %.*s (a number has no quotes)",
		    (int)(t->len > 40 ? 40 : t->len), p->src + t->off);
	if (t->kind != TK_NUM)
		parse_expected(p, "a number");
	memcpy(buf, p->src + t->off, t->len); /* the lexer caps numbers at RULES_MAX_NUMBER */
	buf[t->len] = '\0';
	errno = 0;
	d = strtod(buf, NULL);
	/* too large, or so small that it would silently be 0 (a subnormal is kept) */
	if (!isfinite(d) || (errno == ERANGE && d == 0))
		parse_error_at(p, t, "number '%s' is out of range", buf);
	parse_next(p);
	return neg ? -d : d;
}

/* integer := snumber with no fraction, within [lo, hi] */
static int64_t
parse_integer(parser *p, double lo, double hi, const char *what)
{
	const rules_tok *t = parse_peek(p);
	double           d = parse_number(p, NULL);

	if (d != floor(d) || d < lo || d > hi)
		parse_error_at(p, t, "%s must be a whole number in [%.0f, %.0f]", what, lo, hi);
	return (int64_t)d;
}

static uint32_t parse_expr(parser *p);

/* listlit := '[' [ const { ',' const } [ ',' ] ] ']'    const := STRING | snumber */
static uint32_t
parse_listlit(parser *p)
{
	const rules_tok *open = parse_expect(p, TK_LBRACK);
	uint32_t         lit = parse_node(p, OP_LISTLIT, open->off);
	uint32_t         last = RULES_NIL, count = 0;

	while (parse_peek(p)->kind != TK_RBRACK) {
		const rules_tok *t = parse_peek(p);
		uint32_t         item;

		if (t->kind == TK_STR) {
			rules_pstr s = parse_string(p);

			item = parse_node(p, OP_CONST, t->off);
			p->ast->nodes[item].type = VIGIL_T_STR;
			p->ast->nodes[item].str = s.s;
			p->ast->nodes[item].len = s.len;
		} else if (t->kind == TK_NUM || t->kind == TK_MINUS) {
			double d = parse_number(p, NULL);

			item = parse_node(p, OP_CONST, t->off);
			p->ast->nodes[item].type = VIGIL_T_NUM;
			p->ast->nodes[item].num = d;
		} else {
			parse_expected(p, "a string or number list item");
		}
		if (++count > p->max_items)
			parse_error_at(p, t, "list has more than %u items", p->max_items);
		if (last == RULES_NIL)
			p->ast->nodes[lit].kid[0] = item;
		else
			p->ast->nodes[last].next = item;
		last = item;
		if (parse_peek(p)->kind != TK_COMMA)
			break;
		parse_next(p);
	}
	if (parse_peek(p)->kind != TK_RBRACK)
		parse_unclosed(p, open, "',' or ']'");
	parse_next(p);
	p->ast->nodes[lit].len = count;
	return lit;
}

/*
 * A name t that is a clause word followed by what only a clause takes (a
 * number, a string, '[' or a plain word: "and score 1", "> reason \"x\"")
 * ends an unfinished condition: said at the word, not at the token after
 * it. A name followed by anything else is left alone (a threshold may be
 * called `score`).
 */
static void
parse_clause_in_expr(parser *p, const rules_tok *t)
{
	const rules_tok *n = t + 1, *prev = t - 1;
	char             before[64];

	if (!parse_is_clause_word(p, t))
		return;
	if (n->kind != TK_NUM && n->kind != TK_STR && n->kind != TK_LBRACK &&
	    !(n->kind == TK_IDENT && n->kw == KW_NONE && !parse_is_clause_word(p, n)))
		return;
	parse_tok_desc(p, prev, before, sizeof before);
	parse_error_at(p, t, "expected an expression after %s, found '%.*s', which starts a clause "
	    "(the condition is unfinished)", before, (int)t->len, p->src + t->off);
}

/*
 * primary := NUMBER | STRING | 'true' | 'false' | '(' expr ')'
 *          | NAME '(' [ arg { ',' arg } ] ')' | NAME
 * arg     := expr | listlit
 */
static uint32_t
parse_primary(parser *p)
{
	const rules_tok *t = parse_peek(p);
	uint32_t         i;

	switch ((rules_tok_kind)t->kind) {
	case TK_NUM:
		i = parse_node(p, OP_CONST, t->off);
		p->ast->nodes[i].type = VIGIL_T_NUM;
		p->ast->nodes[i].num = parse_number(p, NULL);
		break;
	case TK_STR: {
		rules_pstr s = parse_string(p);

		i = parse_node(p, OP_CONST, t->off);
		p->ast->nodes[i].type = VIGIL_T_STR;
		p->ast->nodes[i].str = s.s;
		p->ast->nodes[i].len = s.len;
		break;
	}
	case TK_LPAREN:
		parse_next(p);
		i = parse_expr(p);
		if (parse_peek(p)->kind != TK_RPAREN)
			parse_unclosed(p, t, "')'");
		parse_next(p);
		break;
	case TK_IDENT:
		if (t->kw == KW_TRUE || t->kw == KW_FALSE) {
			parse_next(p);
			i = parse_node(p, OP_CONST, t->off);
			p->ast->nodes[i].type = VIGIL_T_BOOL;
			p->ast->nodes[i].num = t->kw == KW_TRUE;
			break;
		}
		if (t->kw != KW_NONE)
			parse_expected(p, "an expression");
		parse_clause_in_expr(p, t);
		parse_next(p);
		if (parse_peek(p)->kind == TK_LPAREN) {
			uint32_t last = RULES_NIL, nargs = 0;

			parse_next(p);
			i = parse_node(p, OP_CALL, t->off);
			p->ast->nodes[i].str = p->src + t->off; /* name checked against the built-ins */
			p->ast->nodes[i].len = t->len;
			while (parse_peek(p)->kind != TK_RPAREN) {
				const rules_tok *at = parse_peek(p);
				/* a list literal for starts_with(); check.c refuses it elsewhere */
				uint32_t         a = at->kind == TK_LBRACK ? parse_listlit(p) : parse_expr(p);

				if (++nargs > RULES_MAX_ARGS)
					parse_error_at(p, at, "more than %d arguments", RULES_MAX_ARGS);
				if (last == RULES_NIL)
					p->ast->nodes[i].kid[0] = a;
				else
					p->ast->nodes[last].next = a;
				last = a;
				if (parse_peek(p)->kind != TK_COMMA)
					break;
				parse_next(p);
			}
			if (parse_peek(p)->kind != TK_RPAREN)
				parse_unclosed(p, &t[1], "',' or ')'");
			parse_next(p);
			p->ast->nodes[i].ix = nargs;
			parse_depth(p, i);
			break;
		}
		i = parse_node(p, OP_NAME, t->off);
		p->ast->nodes[i].str = p->src + t->off;
		p->ast->nodes[i].len = t->len;
		break;
	default:
		parse_expected(p, "an expression");
	}
	if (p->ast->nodes[i].pad == 0)
		p->ast->nodes[i].pad = 1;
	return i;
}

/* unary := '-' unary | primary */
static uint32_t
parse_unary(parser *p)
{
	const rules_tok *t = parse_peek(p);

	if (t->kind == TK_MINUS) {
		parse_mark(p, RULES_MARK_UNARY);
		parse_next(p);
		return parse_prefix(p, OP_NEG, t->off, parse_unary);
	}
	return parse_primary(p);
}

/* mul := unary { ( '*' | '/' | '%' ) unary } */
static uint32_t
parse_mul(parser *p)
{
	uint32_t l = parse_unary(p);

	for (;;) {
		const rules_tok *t = parse_peek(p);
		rules_op         op;

		if (t->kind == TK_STAR)
			op = OP_MUL;
		else if (t->kind == TK_SLASH)
			op = OP_DIV;
		else if (t->kind == TK_PERCENT)
			op = OP_MOD;
		else
			return l;
		parse_next(p);
		l = parse_binary(p, op, t->off, l, parse_unary(p));
	}
}

/* add := mul { ( '+' | '-' ) mul } */
static uint32_t
parse_add(parser *p)
{
	uint32_t l = parse_mul(p);

	for (;;) {
		const rules_tok *t = parse_peek(p);
		rules_op         op;

		if (t->kind == TK_PLUS)
			op = OP_ADD;
		else if (t->kind == TK_MINUS)
			op = OP_SUB;
		else
			return l;
		parse_next(p);
		l = parse_binary(p, op, t->off, l, parse_mul(p));
	}
}

/* inrhs := NAME | listlit */
static uint32_t
parse_inrhs(parser *p)
{
	const rules_tok *t = parse_peek(p);
	uint32_t         i;

	if (t->kind == TK_LBRACK)
		return parse_listlit(p);
	if (t->kind != TK_IDENT || t->kw != KW_NONE)
		parse_expected(p, "a list name or '[' after 'in'");
	parse_next(p);
	i = parse_node(p, OP_NAME, t->off);
	p->ast->nodes[i].str = p->src + t->off;
	p->ast->nodes[i].len = t->len;
	p->ast->nodes[i].pad = 1;
	return i;
}

/* Whether token t opens a comparison: an operator, 'in', 'not in',
 * 'between' or 'is'. */
static bool
parse_is_cmp(const rules_tok *t)
{
	if (t->kind >= TK_EQ && t->kind <= TK_GE)
		return true;
	return t->kind == TK_IDENT && (t->kw == KW_IN || t->kw == KW_BETWEEN || t->kw == KW_IS ||
	    (t->kw == KW_NOT && t[1].kind == TK_IDENT && t[1].kw == KW_IN));
}

/*
 * cmp := cmp1 ; not followed by another comparison: "a < b < c" is an
 *        error at the second operator, not a chain
 */
static uint32_t parse_cmp1(parser *p, const rules_tok **ret_op);

static uint32_t
parse_cmp(parser *p)
{
	const rules_tok *first, *second;
	uint32_t         c = parse_cmp1(p, &first);

	second = parse_peek(p);
	if (!parse_is_cmp(second))
		return c;
	if (first->kind >= TK_EQ && first->kind <= TK_GE && second->kind >= TK_EQ &&
	    second->kind <= TK_GE)
		parse_error_at(p, second, "comparisons do not chain: write 'a %.*s b and b %.*s c'",
		    (int)first->len, p->src + first->off, (int)second->len, p->src + second->off);
	parse_error_at(p, second, "comparisons do not chain: join the two with 'and'");
}

/*
 * cmp1 := add [ ( '<' | '<=' | '>' | '>=' | '==' | '!=' ) add
 *             | [ 'not' ] 'in' inrhs
 *             | 'between' add 'and' add
 *             | 'is' [ 'not' ] 'missing' ]
 */
static uint32_t
parse_cmp1(parser *p, const rules_tok **ret_op)
{
	uint32_t         l = parse_add(p);
	const rules_tok *t = parse_peek(p);
	rules_op         op;

	*ret_op = t;

	switch ((rules_tok_kind)t->kind) {
	case TK_LT: op = OP_LT; break;
	case TK_LE: op = OP_LE; break;
	case TK_GT: op = OP_GT; break;
	case TK_GE: op = OP_GE; break;
	case TK_EQ: op = OP_EQ; break;
	case TK_NE: op = OP_NE; break;
	case TK_ASSIGN:
		parse_error_at(p, t, "'=' is not a comparison; use '=='");
	case TK_IDENT:
		if (t->kw == KW_IN) {
			parse_next(p);
			return parse_binary(p, OP_IN, t->off, l, parse_inrhs(p));
		}
		if (t->kw == KW_NOT && p->t[p->pos + 1].kind == TK_IDENT && p->t[p->pos + 1].kw == KW_IN) {
			parse_next(p);
			parse_next(p);
			return parse_binary(p, OP_NOTIN, t->off, l, parse_inrhs(p));
		}
		if (t->kw == KW_BETWEEN) {
			uint32_t lo, hi, i;

			parse_next(p);
			lo = parse_add(p);
			if (parse_peek(p)->kind != TK_IDENT || parse_peek(p)->kw != KW_AND)
				parse_expected(p, "'and' in 'between LOW and HIGH'");
			parse_next(p);
			hi = parse_add(p);
			i = parse_node(p, OP_BETWEEN, t->off);
			p->ast->nodes[i].kid[0] = l;
			p->ast->nodes[i].kid[1] = lo;
			p->ast->nodes[i].kid[2] = hi;
			parse_depth(p, i);
			return i;
		}
		if (t->kw == KW_IS) {
			bool     neg = false;
			uint32_t i;

			parse_next(p);
			if (parse_peek(p)->kind == TK_IDENT && parse_peek(p)->kw == KW_NOT) {
				parse_next(p);
				neg = true;
			}
			if (parse_peek(p)->kind != TK_IDENT || parse_peek(p)->kw != KW_MISSING)
				parse_expected(p, "'missing' after 'is'");
			parse_next(p);
			i = parse_node(p, neg ? OP_PRESENT : OP_ISMISSING, t->off);
			p->ast->nodes[i].kid[0] = l;
			parse_depth(p, i);
			return i;
		}
		return l;
	default:
		return l;
	}
	parse_next(p);
	return parse_binary(p, op, t->off, l, parse_add(p));
}

/* not := 'not' not | cmp */
static uint32_t
parse_not(parser *p)
{
	const rules_tok *t = parse_peek(p);

	if (t->kind == TK_IDENT && t->kw == KW_NOT) {
		parse_next(p);
		return parse_prefix(p, OP_NOT, t->off, parse_not);
	}
	return parse_cmp(p);
}

/* and := not { 'and' not } */
static uint32_t
parse_and(parser *p)
{
	uint32_t l = parse_not(p);

	while (parse_peek(p)->kind == TK_IDENT && parse_peek(p)->kw == KW_AND) {
		const rules_tok *t = parse_next(p);

		l = parse_binary(p, OP_AND, t->off, l, parse_not(p));
	}
	return l;
}

/* expr := and { 'or' and } */
static uint32_t
parse_expr(parser *p)
{
	uint32_t l;

	parse_enter(p);
	l = parse_and(p);
	while (parse_peek(p)->kind == TK_IDENT && parse_peek(p)->kw == KW_OR) {
		const rules_tok *t = parse_next(p);

		l = parse_binary(p, OP_OR, t->off, l, parse_and(p));
	}
	p->nest--;
	return l;
}

static void *
parse_grow(parser *p, void *arr, uint32_t n, uint32_t *cap, size_t size, uint32_t off)
{
	size_t ncap;

	if (n < *cap)
		return arr;
	ncap = vigil_array_grown(*cap, (size_t)n + 1, 16, UINT32_MAX);
	if (ncap == 0)
		parse_fatal(p, off, VIGIL_ETOOBIG);
	if (vigil_array_resize(&arr, ncap, size) != VIGIL_OK)
		parse_fatal(p, off, VIGIL_ENOMEM);
	*cap = (uint32_t)ncap;
	return arr;
}

/* version := 'version' STRING */
static void
parse_version(parser *p)
{
	const rules_tok *kw = parse_next(p);
	rules_pstr       v = parse_string(p);

	if (p->ast->has_version)
		parse_error_at(p, kw, "version is declared twice");
	if (v.len == 0 || v.len > 64)
		parse_error_at(p, kw, "version must be 1 to 64 bytes");
	p->ast->version = v;
	p->ast->has_version = true;
}

/* band := 'band' ( 'review' | 'decline' ) '=' ( integer | threshold-name ) */
static void
parse_band(parser *p)
{
	const rules_tok *kw = parse_next(p);
	const rules_tok *which = parse_peek(p);
	rules_pstr       name = { 0 };
	bool             review;
	int64_t          v;

	if (parse_is_word(p, "review"))
		review = true;
	else if (parse_is_word(p, "decline"))
		review = false;
	else
		parse_expected(p, "'review' or 'decline'");
	parse_next(p);
	parse_expect(p, TK_ASSIGN);
	if (parse_peek(p)->kind == TK_IDENT) {
		name = parse_name(p, "a threshold name", false);
		v = 0;
	} else {
		v = parse_integer(p, -1000000, 1000000, "a band");
	}
	if (review ? p->ast->has_review : p->ast->has_decline)
		parse_error_at(p, which, "band %s is declared twice", review ? "review" : "decline");
	if (review) {
		p->ast->band_review_name = name;
		p->ast->band_review = (int32_t)v;
		p->ast->band_review_off = kw->off;
		p->ast->has_review = true;
	} else {
		p->ast->band_decline_name = name;
		p->ast->band_decline = (int32_t)v;
		p->ast->band_decline_off = kw->off;
		p->ast->has_decline = true;
	}
}

/*
 * adjust := 'adjust' 'max' integer
 * How far the points of the active rules that fire may move a model's score
 * (0-100), either way; without the statement they do not move it.
 */
static void
parse_adjust(parser *p)
{
	const rules_tok *kw = parse_next(p);

	if (!parse_is_word(p, "max"))
		parse_expected(p, "'max'");
	parse_next(p);
	p->ast->adjust_max = (int32_t)parse_integer(p, 0, 100, "adjust max");
	if (p->ast->has_adjust)
		parse_error_at(p, kw, "adjust is declared twice");
	p->ast->adjust_off = kw->off;
	p->ast->has_adjust = true;
}

/*
 * threshold := 'threshold' NAME '=' ( snumber | tune )
 * tune      := ( 'percentile' | 'alert_rate' | 'precision' ) '(' NAME ',' snumber ')'
 *              { 'by' NAME | 'fallback' snumber | 'min_samples' integer }
 */
static void
parse_threshold(parser *p)
{
	rules_pthresh th = { 0 };
	bool          has_fallback = false, has_min_samples = false;

	parse_next(p);
	th.name = parse_name(p, "a threshold name", false);
	p->decl = th.name;
	parse_expect(p, TK_ASSIGN);
	if (parse_peek(p)->kind == TK_NUM || parse_peek(p)->kind == TK_MINUS) {
		th.kind = RULES_TUNE_CONST;
		th.fallback = parse_number(p, NULL);
		goto done;
	}
	if (parse_is_word(p, "percentile"))
		th.kind = RULES_TUNE_PERCENTILE;
	else if (parse_is_word(p, "alert_rate"))
		th.kind = RULES_TUNE_ALERT_RATE;
	else if (parse_is_word(p, "precision"))
		th.kind = RULES_TUNE_PRECISION;
	else
		parse_expected(p, "a number, percentile(...), alert_rate(...) or precision(...)");
	parse_next(p);
	parse_expect(p, TK_LPAREN);
	th.feature = parse_name(p, "a feature name", true);
	parse_expect(p, TK_COMMA);
	th.param = parse_number(p, &th.param_off);
	parse_expect(p, TK_RPAREN);
	for (;;) {
		const rules_tok *t = parse_peek(p);

		if (parse_is_word(p, "by")) {
			if (th.group.s != NULL)
				parse_error_at(p, t, "'by' given twice");
			parse_next(p);
			th.group = parse_name(p, "a group feature name", true);
		} else if (parse_is_word(p, "fallback")) {
			if (has_fallback)
				parse_error_at(p, t, "'fallback' given twice");
			parse_next(p);
			th.fallback = parse_number(p, NULL);
			has_fallback = true;
		} else if (parse_is_word(p, "min_samples")) {
			if (has_min_samples)
				parse_error_at(p, t, "'min_samples' given twice");
			parse_next(p);
			th.min_samples = (uint64_t)parse_integer(p, 0, 1e15, "min_samples");
			has_min_samples = true;
		} else {
			break;
		}
	}
	if (!has_fallback)
		parse_expected(p, "'fallback NUMBER' (a tuned threshold needs a value until the first rebuild)");
done:
	if (p->ast->nthresh >= RULES_MAX_THRESH)
		parse_error_at(p, parse_peek(p), "more than %d thresholds", RULES_MAX_THRESH);
	p->ast->thresh = parse_grow(p, p->ast->thresh, p->ast->nthresh, &p->ast->capthresh,
	    sizeof th, th.name.off);
	p->ast->thresh[p->ast->nthresh++] = th;
}

/* list := 'list' NAME '=' [ 'string' | 'number' | 'prefix' ] ( listlit | 'file' STRING ) */
static void
parse_list(parser *p)
{
	rules_plist l = { 0 };

	parse_next(p);
	l.name = parse_name(p, "a list name", false);
	p->decl = l.name;
	parse_expect(p, TK_ASSIGN);
	l.kind_explicit = true;
	if (parse_is_word(p, "string"))
		l.kind = RULES_LIST_STRING;
	else if (parse_is_word(p, "number"))
		l.kind = RULES_LIST_NUMBER;
	else if (parse_is_word(p, "prefix"))
		l.kind = RULES_LIST_PREFIX;
	else
		l.kind_explicit = false;
	if (l.kind_explicit)
		parse_next(p);
	if (parse_is_word(p, "file")) {
		parse_next(p);
		l.from_file = true;
		l.path = parse_string(p);
	} else if (parse_peek(p)->kind == TK_LBRACK) {
		l.items = parse_listlit(p);
	} else {
		parse_expected(p, "'[' or 'file'");
	}
	if (p->ast->nlists >= RULES_MAX_LISTS)
		parse_error_at(p, parse_peek(p), "more than %d lists", RULES_MAX_LISTS);
	p->ast->lists = parse_grow(p, p->ast->lists, p->ast->nlists, &p->ast->caplists,
	    sizeof l, l.name.off);
	p->ast->lists[p->ast->nlists++] = l;
}

/* The tokens from the one at byte off up to token end, on one line with
 * canonical spacing (explain shows conditions written over several lines). */
static const char *
parse_join(parser *p, uint32_t off, uint32_t end)
{
	uint32_t b = end;
	size_t   n = 0, cap = 0;
	char    *s;

	while (b > 0 && p->t[b - 1].off >= off)
		b--;
	for (uint32_t i = b; i < end; i++)
		cap += p->t[i].len + 1;
	s = rules_arena_alloc(p->ast->arena, cap + 1);
	if (s == NULL)
		parse_fatal(p, off, VIGIL_ENOMEM);
	for (uint32_t i = b; i < end; i++) {
		const rules_tok *t = &p->t[i], *pr = i > b ? &p->t[i - 1] : NULL;
		bool             space = pr != NULL;

		if (pr != NULL && (pr->kind == TK_LPAREN || pr->kind == TK_LBRACK ||
		    (p->ast->marks != NULL && p->ast->marks[i - 1] == RULES_MARK_UNARY)))
			space = false;
		if (t->kind == TK_RPAREN || t->kind == TK_RBRACK || t->kind == TK_COMMA)
			space = false;
		if (t->kind == TK_LPAREN && pr != NULL && pr->kind == TK_IDENT && pr->kw == KW_NONE)
			space = false;
		if (space)
			s[n++] = ' ';
		memcpy(s + n, p->src + t->off, t->len);
		n += t->len;
	}
	s[n] = '\0';
	return s;
}

/*
 * rule   := 'rule' NAME '{' { clause } '}'
 * clause := 'when' expr | 'score' integer | 'decide' ( 'review' | 'decline' ) | 'reason' STRING
 *         | 'tags' '[' [ STRING { ',' STRING } ] ']' | 'mode' ( 'active' | 'shadow' | 'disabled' )
 */
static void
parse_rule(parser *p)
{
	const rules_tok *kw = parse_next(p);
	rules_prule     *r;
	bool             has_tags = false, has_mode = false;

	if (p->ast->nrules >= p->max_rules)
		parse_error_at(p, kw, "more than %u rules", p->max_rules);
	p->ast->rules = parse_grow(p, p->ast->rules, p->ast->nrules, &p->ast->caprules,
	    sizeof *r, kw->off);
	r = &p->ast->rules[p->ast->nrules];
	memset(r, 0, sizeof *r);
	r->name = parse_name(p, "a rule name", false);
	parse_expect(p, TK_LBRACE);
	while (parse_peek(p)->kind != TK_RBRACE) {
		const rules_tok *t = parse_peek(p);
		char             dup[80];

		snprintf(dup, sizeof dup, "'%.*s' given twice in rule '%s'",
		    (int)(t->len > 16 ? 16 : t->len), p->src + t->off, r->name.s);
		if (parse_is_word(p, "when") || parse_is_word(p, "score") || parse_is_word(p, "reason") ||
		    parse_is_word(p, "tags") || parse_is_word(p, "mode") || parse_is_word(p, "decide"))
			parse_mark(p, RULES_MARK_CLAUSE);
		if (parse_is_word(p, "when")) {
			if (r->has_when)
				parse_error_at(p, t, "%s", dup);
			parse_next(p);
			r->cond_off = parse_peek(p)->off;
			r->cond = parse_expr(p);
			r->cond_end = p->t[p->pos - 1].off + p->t[p->pos - 1].len;
			r->cond_text = parse_join(p, r->cond_off, p->pos);
			r->has_when = true;
		} else if (parse_is_word(p, "score")) {
			if (r->has_score)
				parse_error_at(p, t, "%s", dup);
			parse_next(p);
			r->points = (int32_t)parse_integer(p, -1000000, 1000000, "score");
			r->has_score = true;
		} else if (parse_is_word(p, "decide")) {
			if (r->has_decide)
				parse_error_at(p, t, "%s", dup);
			parse_next(p);
			if (parse_is_word(p, "review"))
				r->decide = VIGIL_DECISION_REVIEW;
			else if (parse_is_word(p, "decline"))
				r->decide = VIGIL_DECISION_DECLINE;
			else
				parse_expected(p, "'review' or 'decline'");
			parse_next(p);
			r->has_decide = true;
		} else if (parse_is_word(p, "reason")) {
			if (r->has_reason)
				parse_error_at(p, t, "%s", dup);
			parse_next(p);
			r->reason = parse_string(p);
			if (r->reason.len == 0)
				parse_error_at(p, t, "reason must not be empty");
			r->has_reason = true;
		} else if (parse_is_word(p, "tags")) {
			if (has_tags)
				parse_error_at(p, t, "%s", dup);
			parse_next(p);
			has_tags = true;
			parse_expect(p, TK_LBRACK);
			while (parse_peek(p)->kind == TK_STR) {
				if (r->ntags == RULES_MAX_TAGS)
					parse_error_at(p, parse_peek(p), "more than %d tags", RULES_MAX_TAGS);
				r->tags[r->ntags++] = parse_string(p);
				if (parse_peek(p)->kind != TK_COMMA)
					break;
				parse_next(p);
			}
			if (parse_peek(p)->kind != TK_RBRACK)
				parse_expected(p, "a tag string or ']'");
			parse_next(p);
		} else if (parse_is_word(p, "mode")) {
			if (has_mode)
				parse_error_at(p, t, "%s", dup);
			parse_next(p);
			has_mode = true;
			if (parse_is_word(p, "active"))
				r->mode = RULES_MODE_ACTIVE;
			else if (parse_is_word(p, "shadow"))
				r->mode = RULES_MODE_SHADOW;
			else if (parse_is_word(p, "disabled"))
				r->mode = RULES_MODE_DISABLED;
			else
				parse_expected(p, "'active', 'shadow' or 'disabled'");
			parse_next(p);
		} else if (t->kind == TK_RPAREN) {
			parse_error_at(p, t, "')' closes no '('");
		} else {
			parse_expected(p, "'when', 'score', 'decide', 'reason', 'tags', 'mode' or '}'");
		}
	}
	if (!r->has_when)
		parse_error_at(p, parse_peek(p), "rule '%s' has no 'when' condition", r->name.s);
	if (!r->has_score && !r->has_decide)
		parse_error_at(p, parse_peek(p), "rule '%s' has no 'score' or 'decide'", r->name.s);
	if (!r->has_reason)
		parse_error_at(p, parse_peek(p), "rule '%s' has no 'reason'", r->name.s);
	parse_next(p);
	p->ast->nrules++;
}

static bool
parse_at_stmt(const rules_tok *t)
{
	return t->kind == TK_EOF || (t->kind == TK_IDENT && t->kw >= KW_RULE && t->kw <= KW_BAND);
}

/* file := { version | adjust | band | threshold | list | rule } EOF */
vigil_err
rules_parse_file(const char *src, const rules_tok *toks, uint32_t ntoks, const rules_opts *opts,
    rules_diag_sink *sink, rules_ast *ast)
{
	parser            p = { 0 };
	volatile uint32_t stmt_start = 0;

	p.src = src;
	p.t = toks;
	p.n = ntoks;
	p.sink = sink;
	p.ast = ast;
	p.max_depth = opts->max_depth;
	p.max_rules = opts->max_rules;
	p.max_items = opts->max_list_items;
	if (setjmp(p.jb) != 0) {
		/* a syntax error unwound to here: resume at the next statement */
		if (p.fatal != VIGIL_OK)
			return p.fatal == VIGIL_ETOOBIG ? VIGIL_OK : p.fatal;
		if (p.decl.s != NULL && ast->nbroken < sizeof ast->broken / sizeof ast->broken[0])
			ast->broken[ast->nbroken++] = p.decl;
		if (p.pos == stmt_start)
			parse_next(&p);
		while (!parse_at_stmt(parse_peek(&p)))
			parse_next(&p);
	}
	for (;;) {
		const rules_tok *t = parse_peek(&p);

		stmt_start = p.pos;
		p.decl.s = NULL;
		p.nest = 0;
		if (t->kind == TK_EOF)
			break;
		if (t->kind == TK_IDENT && t->kw == KW_RULE)
			parse_rule(&p);
		else if (t->kind == TK_IDENT && t->kw == KW_LIST)
			parse_list(&p);
		else if (t->kind == TK_IDENT && t->kw == KW_THRESHOLD)
			parse_threshold(&p);
		else if (t->kind == TK_IDENT && t->kw == KW_VERSION)
			parse_version(&p);
		else if (t->kind == TK_IDENT && t->kw == KW_BAND)
			parse_band(&p);
		else if (t->kind == TK_IDENT && t->kw == KW_ADJUST)
			parse_adjust(&p);
		else
			parse_expected(&p, "'rule', 'list', 'threshold', 'band', 'adjust' or 'version'");
	}
	return VIGIL_OK;
}

void
rules_ast_fini(rules_ast *ast)
{
	free(ast->nodes);
	free(ast->rules);
	free(ast->thresh);
	free(ast->lists);
	ast->nodes = NULL;
	ast->rules = NULL;
	ast->thresh = NULL;
	ast->lists = NULL;
}
