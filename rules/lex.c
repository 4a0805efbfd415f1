/* SPDX-License-Identifier: MIT */
/*
 * rules/lex.c - the rule-file lexer. Turns bytes into tokens that carry only
 * a kind and a byte span (jq-style): line and column are computed when a
 * diagnostic is reported, never while lexing. Comments run from `#` to the
 * end of the line; they are dropped for compilation and kept for fmt. Each
 * token records whether a newline / an empty line precedes it, which is all
 * the formatter needs to keep the author's line breaks.
 */
#include <stdlib.h>
#include <string.h>

#include "int.h"
#include "vec.h"

static const struct {
	const char *word;
	rules_kw    kw;
} lex_keywords[] = {
	{ "rule", KW_RULE },       { "list", KW_LIST },   { "threshold", KW_THRESHOLD },
	{ "version", KW_VERSION }, { "band", KW_BAND },   { "adjust", KW_ADJUST },
	{ "and", KW_AND },
	{ "or", KW_OR },           { "not", KW_NOT },     { "in", KW_IN },
	{ "between", KW_BETWEEN }, { "is", KW_IS },       { "missing", KW_MISSING },
	{ "true", KW_TRUE },       { "false", KW_FALSE },
};

const char *
rules_lex_kind_name(rules_tok_kind k)
{
	switch (k) {
	case TK_EOF: return "end of file";
	case TK_ERROR: return "invalid token";
	case TK_IDENT: return "name";
	case TK_NUM: return "number";
	case TK_STR: return "string";
	case TK_COMMENT: return "comment";
	case TK_LBRACE: return "'{'";
	case TK_RBRACE: return "'}'";
	case TK_LPAREN: return "'('";
	case TK_RPAREN: return "')'";
	case TK_LBRACK: return "'['";
	case TK_RBRACK: return "']'";
	case TK_COMMA: return "','";
	case TK_ASSIGN: return "'='";
	case TK_EQ: return "'=='";
	case TK_NE: return "'!='";
	case TK_LT: return "'<'";
	case TK_LE: return "'<='";
	case TK_GT: return "'>'";
	case TK_GE: return "'>='";
	case TK_PLUS: return "'+'";
	case TK_MINUS: return "'-'";
	case TK_STAR: return "'*'";
	case TK_SLASH: return "'/'";
	case TK_PERCENT: return "'%'";
	}
	return "token";
}

static bool
lex_is_alpha(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool
lex_is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static rules_kw
lex_keyword(const char *s, size_t n)
{
	for (size_t i = 0; i < sizeof lex_keywords / sizeof lex_keywords[0]; i++)
		if (strlen(lex_keywords[i].word) == n && memcmp(lex_keywords[i].word, s, n) == 0)
			return lex_keywords[i].kw;
	return KW_NONE;
}

/* Length of the identifier at s: NAME { '.' NAME }, NAME = [A-Za-z_][A-Za-z0-9_]*. */
static size_t
lex_ident_len(const char *s, size_t n)
{
	size_t i = 0;

	for (;;) {
		if (i >= n || !lex_is_alpha((unsigned char)s[i]))
			return i;
		while (i < n && (lex_is_alpha((unsigned char)s[i]) || lex_is_digit((unsigned char)s[i])))
			i++;
		if (i + 1 < n && s[i] == '.' && lex_is_alpha((unsigned char)s[i + 1]))
			i++;
		else
			return i;
	}
}

/* Length of the number at s: DIGITS [ '.' DIGITS ] [ (e|E) [+-] DIGITS ]. */
size_t
rules_lex_number_len(const char *s, size_t n, bool *ret_bad)
{
	size_t i = 0;

	*ret_bad = false;
	while (i < n && lex_is_digit((unsigned char)s[i]))
		i++;
	if (i < n && s[i] == '.') {
		i++;
		if (i >= n || !lex_is_digit((unsigned char)s[i]))
			*ret_bad = true;
		while (i < n && lex_is_digit((unsigned char)s[i]))
			i++;
	}
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < n && (s[i] == '+' || s[i] == '-'))
			i++;
		if (i >= n || !lex_is_digit((unsigned char)s[i]))
			*ret_bad = true;
		while (i < n && lex_is_digit((unsigned char)s[i]))
			i++;
	}
	/* 12abc or 1.2.3 is one bad token, not a number and a name */
	while (i < n && (lex_is_alpha((unsigned char)s[i]) || lex_is_digit((unsigned char)s[i]) ||
	    s[i] == '.')) {
		*ret_bad = true;
		i++;
	}
	return i;
}

vigil_err
rules_lex_all(const char *src, size_t len, bool comments, rules_diag_sink *sink,
    rules_tok **ret_toks, uint32_t *ret_n)
{
	vigil_vec  tv;          /* rules_tok; toks and n mirror its data and len */
	rules_tok *toks = NULL;
	uint32_t   n = 0;
	size_t     i = 0;
	int        newlines = 0;
	vigil_err  rv = VIGIL_OK;

	/* a token needs at least one byte, so len + 2 tokens always fit */
	vigil_vec_init(&tv, sizeof(rules_tok), len + 2);
	if (len >= UINT32_MAX) {
		rv = VIGIL_ETOOBIG;
		goto out;
	}
	for (;;) {
		rules_tok t = { 0 };
		size_t    k;
		int       c;

		/* whitespace; count newlines to know about line breaks and blank lines */
		while (i < len && (src[i] == ' ' || src[i] == '\t' || src[i] == '\r' || src[i] == '\n')) {
			if (src[i] == '\n')
				newlines++;
			i++;
		}
		tv.len = n;
		rv = vigil_vec_reserve(&tv, 1); /* room for this token */
		if (rv != VIGIL_OK)
			goto out;
		toks = tv.data;
		t.nl = newlines > 0 || n == 0;
		t.blank = newlines > 1;
		t.off = (uint32_t)i;
		newlines = 0;
		if (i >= len) {
			/* "found end of file" points just after the last token, on its
			 * line, rather than at an empty line below it */
			t.kind = TK_EOF;
			if (n > 0)
				t.off = toks[n - 1].off + toks[n - 1].len;
			toks[n++] = t;
			break;
		}
		c = (unsigned char)src[i];
		if (c == '#') {
			k = i;
			while (k < len && src[k] != '\n')
				k++;
			/* trim trailing spaces: fmt must not keep them */
			while (k > i && (src[k - 1] == ' ' || src[k - 1] == '\t' || src[k - 1] == '\r'))
				k--;
			t.kind = TK_COMMENT;
			t.len = (uint32_t)(k - i);
			while (i < len && src[i] != '\n')
				i++;
			if (comments)
				toks[n++] = t;
			continue;
		}
		if (lex_is_alpha(c)) {
			k = lex_ident_len(src + i, len - i);
			t.kind = TK_IDENT;
			t.len = (uint32_t)k;
			if (k > RULES_MAX_NAME) {
				rules_diag_add(sink, t.off, VIGIL_ESYNTAX, "name longer than %d bytes",
				    RULES_MAX_NAME);
				t.kind = TK_ERROR;
			} else {
				t.kw = (uint8_t)lex_keyword(src + i, k);
			}
			i += k;
			toks[n++] = t;
			continue;
		}
		if (lex_is_digit(c) || (c == '.' && i + 1 < len && lex_is_digit((unsigned char)src[i + 1]))) {
			bool bad;

			k = rules_lex_number_len(src + i, len - i, &bad);
			if (k == 0)
				k = 1;
			t.kind = TK_NUM;
			t.len = (uint32_t)k;
			if (bad || c == '.') {
				rules_diag_add(sink, t.off, VIGIL_ESYNTAX, "malformed number '%.*s'",
				    (int)(k > 32 ? 32 : k), src + i);
				t.kind = TK_ERROR;
			} else if (k > RULES_MAX_NUMBER) {
				rules_diag_add(sink, t.off, VIGIL_ETOOBIG, "number longer than %d bytes",
				    RULES_MAX_NUMBER);
				t.kind = TK_ERROR;
			}
			i += k;
			toks[n++] = t;
			continue;
		}
		if (c == '"') {
			size_t bad = 0; /* offset of a byte of no UTF-8 sequence, 0: none */

			k = i + 1;
			while (k < len && src[k] != '"' && src[k] != '\n') {
				size_t sn;

				if (src[k] == '\\' && k + 1 < len && src[k + 1] != '\n')
					k++;
				sn = (unsigned char)src[k] < 0x80 ? 1 : vigil_utf8_seq(src + k, len - k);
				if (sn == 0 && bad == 0)
					bad = k;
				k += sn > 0 ? sn : 1;
			}
			t.kind = TK_STR;
			if (bad != 0) {
				/* reasons and names go into JSON and protobuf strings,
				 * which hold only UTF-8: one would be dropped there */
				rules_diag_add(sink, (uint32_t)bad, VIGIL_ESYNTAX, "byte 0x%02x is not "
				    "UTF-8 (save the file as UTF-8)", (unsigned char)src[bad]);
				t.kind = TK_ERROR;
			}
			if (k >= len || src[k] != '"') {
				rules_diag_add(sink, t.off, VIGIL_ESYNTAX, "unterminated string");
				t.kind = TK_ERROR;
			} else {
				k++;
			}
			t.len = (uint32_t)(k - i);
			i = k;
			toks[n++] = t;
			continue;
		}
		t.len = 1;
		switch (c) {
		case '{': t.kind = TK_LBRACE; break;
		case '}': t.kind = TK_RBRACE; break;
		case '(': t.kind = TK_LPAREN; break;
		case ')': t.kind = TK_RPAREN; break;
		case '[': t.kind = TK_LBRACK; break;
		case ']': t.kind = TK_RBRACK; break;
		case ',': t.kind = TK_COMMA; break;
		case '+': t.kind = TK_PLUS; break;
		case '-': t.kind = TK_MINUS; break;
		case '*': t.kind = TK_STAR; break;
		case '/': t.kind = TK_SLASH; break;
		case '%': t.kind = TK_PERCENT; break;
		case '=':
			t.kind = TK_ASSIGN;
			if (i + 1 < len && src[i + 1] == '=') {
				t.kind = TK_EQ;
				t.len = 2;
			}
			break;
		case '!':
			if (i + 1 < len && src[i + 1] == '=') {
				t.kind = TK_NE;
				t.len = 2;
			} else {
				rules_diag_add(sink, t.off, VIGIL_ESYNTAX,
				    "unexpected '!' (use 'not' for negation, '!=' for inequality)");
				t.kind = TK_ERROR;
			}
			break;
		case '<':
			t.kind = TK_LT;
			if (i + 1 < len && src[i + 1] == '=') {
				t.kind = TK_LE;
				t.len = 2;
			}
			break;
		case '>':
			t.kind = TK_GT;
			if (i + 1 < len && src[i + 1] == '=') {
				t.kind = TK_GE;
				t.len = 2;
			}
			break;
		default:
			if (c >= 0x20 && c < 0x7f)
				rules_diag_add(sink, t.off, VIGIL_ESYNTAX, "unexpected character '%c'", c);
			else
				rules_diag_add(sink, t.off, VIGIL_ESYNTAX,
				    "unexpected byte 0x%02x (rule files are ASCII outside strings and comments)", c);
			t.kind = TK_ERROR;
			break;
		}
		i += t.len;
		toks[n++] = t;
	}
	*ret_toks = toks;
	*ret_n = n;
	tv.data = NULL; /* handed over */
out:
	vigil_vec_fini(&tv);
	return rv;
}
