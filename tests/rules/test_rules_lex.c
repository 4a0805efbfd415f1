/* SPDX-License-Identifier: MIT */
/*
 * tests/rules/test_rules_lex.c - the lexer (private API, rules/int.h):
 * token kinds and byte spans, dotted feature names, keywords, line-break
 * flags, comments kept only on request, and lexical errors as diagnostics.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "fixture.h"
#include "int.h"

static rules_tok *
lex(const char *src, bool comments, uint32_t *n, rules_diag_sink *sink)
{
	rules_tok *toks = NULL;

	memset(sink, 0, sizeof *sink);
	sink->src = src;
	sink->len = strlen(src);
	assert_int_equal(rules_lex_all(src, strlen(src), comments, sink, &toks, n), VIGIL_OK);
	assert_int_equal(toks[*n - 1].kind, TK_EOF);
	return toks;
}

static void
test_tokens(void **state)
{
	static const char src[] = "rule r { when vel.card.count_1h >= 3.5e2 and country != \"G\\\"B\" }";
	static const struct {
		rules_tok_kind kind;
		rules_kw       kw;
		uint32_t       off, len;
	} want[] = {
		{ TK_IDENT, KW_RULE, 0, 4 },  { TK_IDENT, KW_NONE, 5, 1 },   { TK_LBRACE, KW_NONE, 7, 1 },
		{ TK_IDENT, KW_NONE, 9, 4 },  { TK_IDENT, KW_NONE, 14, 17 }, { TK_GE, KW_NONE, 32, 2 },
		{ TK_NUM, KW_NONE, 35, 5 },   { TK_IDENT, KW_AND, 41, 3 },   { TK_IDENT, KW_NONE, 45, 7 },
		{ TK_NE, KW_NONE, 53, 2 },    { TK_STR, KW_NONE, 56, 6 },    { TK_RBRACE, KW_NONE, 63, 1 },
		{ TK_EOF, KW_NONE, 64, 0 },
	};
	rules_diag_sink sink;
	uint32_t        n;
	rules_tok      *t = lex(src, false, &n, &sink);

	(void)state;
	assert_int_equal(sink.n, 0);
	assert_int_equal(n, sizeof want / sizeof want[0]);
	for (uint32_t i = 0; i < n; i++) {
		assert_int_equal(t[i].kind, want[i].kind);
		assert_int_equal(t[i].kw, want[i].kw);
		assert_int_equal(t[i].off, want[i].off);
		assert_int_equal(t[i].len, want[i].len);
	}
	free(t);
}

static void
test_operators(void **state)
{
	static const char    src[] = "< <= > >= == != = + - * / % ( ) [ ] ,";
	static const uint8_t want[] = { TK_LT, TK_LE, TK_GT, TK_GE, TK_EQ, TK_NE, TK_ASSIGN, TK_PLUS,
		TK_MINUS, TK_STAR, TK_SLASH, TK_PERCENT, TK_LPAREN, TK_RPAREN, TK_LBRACK, TK_RBRACK, TK_COMMA,
		TK_EOF };
	rules_diag_sink sink;
	uint32_t        n;
	rules_tok      *t = lex(src, false, &n, &sink);

	(void)state;
	assert_int_equal(n, sizeof want);
	for (uint32_t i = 0; i < n; i++)
		assert_int_equal(t[i].kind, want[i]);
	free(t);
}

/* A dot continues a name only before a letter: "a.b" is one name, "a.1" is not. */
static void
test_dotted_names(void **state)
{
	rules_diag_sink sink;
	uint32_t        n;
	rules_tok      *t = lex("card.count_7d x. y.z9.w", false, &n, &sink);

	(void)state;
	assert_int_equal(t[0].len, 13);
	assert_int_equal(t[1].len, 1); /* "x", then '.' is an error */
	assert_int_equal(t[2].kind, TK_ERROR);
	assert_int_equal(t[3].len, 6);
	assert_int_equal(sink.n, 1);
	assert_string_equal(sink.items[0].msg, "unexpected character '.'");
	free(t);
}

static void
test_lines_and_comments(void **state)
{
	static const char src[] = "a # one\nb\n\n\n  # two\nc";
	rules_diag_sink   sink;
	uint32_t          n;
	rules_tok        *t = lex(src, true, &n, &sink);

	(void)state;
	assert_int_equal(n, 6);
	assert_int_equal(t[0].kind, TK_IDENT);
	assert_true(t[0].nl); /* the first token starts a line */
	assert_int_equal(t[1].kind, TK_COMMENT);
	assert_false(t[1].nl);
	assert_int_equal(t[1].len, 5);
	assert_true(t[2].nl);
	assert_false(t[2].blank);
	assert_int_equal(t[3].kind, TK_COMMENT);
	assert_true(t[3].blank);
	assert_false(t[4].blank);
	free(t);
	t = lex(src, false, &n, &sink);
	assert_int_equal(n, 4);
	free(t);
}

static void
test_lex_errors(void **state)
{
	static const char src[] = "a 12abc \"open\n@ 1.\x01";
	rules_diag_sink   sink;
	uint32_t          n, line, col;
	rules_tok        *t = lex(src, false, &n, &sink);

	(void)state;
	assert_int_equal(sink.n, 5);
	assert_string_equal(sink.items[0].msg, "malformed number '12abc'");
	assert_string_equal(sink.items[1].msg, "unterminated string");
	assert_string_equal(sink.items[2].msg, "unexpected character '@'");
	assert_string_equal(sink.items[3].msg, "malformed number '1.'");
	assert_string_equal(sink.items[4].msg,
	    "unexpected byte 0x01 (rule files are ASCII outside strings and comments)");
	rules_diag_linecol(src, sizeof src - 1, sink.items[2].off, &line, &col);
	assert_int_equal(line, 2);
	assert_int_equal(col, 1);
	free(t);
}

/* Strings are UTF-8 (reasons and names go into JSON and protobuf, which
 * hold nothing else: jansson dropped a Latin-1 reason silently): a byte of
 * no sequence is an error at its column; escapes and 2- to 4-byte
 * characters pass. */
static void
test_string_utf8(void **state)
{
	static const char good[] = "\"caf\xc3\xa9 \xf0\x9f\x92\xb3 \\\"q\\\"\"";
	static const char *const bad[] = {
		"\"caf\xe9\"",         /* Latin-1 */
		"\"x\xc3\"",           /* cut off */
		"\"\xc0\xaf\"",       /* overlong */
		"\"\xed\xa0\x80\"",  /* a surrogate */
		"\"\x80\"",            /* a stray continuation byte */
	};
	static const uint32_t col[] = { 5, 3, 2, 2, 2 };
	rules_diag_sink sink;
	uint32_t        n, line, c;
	rules_tok      *t = lex(good, false, &n, &sink);

	(void)state;
	assert_int_equal(sink.n, 0);
	assert_int_equal(t[0].kind, TK_STR);
	free(t);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char want[64];

		t = lex(bad[i], false, &n, &sink);
		assert_int_equal(sink.n, 1);
		assert_int_equal(t[0].kind, TK_ERROR);
		snprintf(want, sizeof want, "byte 0x%02x is not UTF-8 (save the file as UTF-8)",
		    (unsigned char)bad[i][col[i] - 1]);
		assert_string_equal(sink.items[0].msg, want);
		rules_diag_linecol(bad[i], strlen(bad[i]), sink.items[0].off, &line, &c);
		assert_int_equal(line, 1);
		assert_int_equal(c, col[i]);
		free(t);
	}
}

static void
test_long_name(void **state)
{
	char            src[300];
	rules_diag_sink sink;
	uint32_t        n;
	rules_tok      *t;

	(void)state;
	memset(src, 'a', 200);
	src[200] = '\0';
	t = lex(src, false, &n, &sink);
	assert_int_equal(t[0].kind, TK_ERROR);
	assert_string_equal(sink.items[0].msg, "name longer than 128 bytes");
	free(t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tokens),
		cmocka_unit_test(test_operators),
		cmocka_unit_test(test_dotted_names),
		cmocka_unit_test(test_lines_and_comments),
		cmocka_unit_test(test_lex_errors),
		cmocka_unit_test(test_string_utf8),
		cmocka_unit_test(test_long_name),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
