/* SPDX-License-Identifier: MIT */
/*
 * rules/check.c - the type checker and code generator. Resolves every name
 * (threshold, list, then feature: a slot index), checks types (number,
 * string, bool, list), rewrites calls into built-in ops, folds constant
 * subtrees, loads list files, and fills the rules_prog that eval.c runs.
 * Unknown names get a "did you mean" suggestion by edit distance. All errors
 * go to the sink; checking goes on after an error so one run reports them all.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "hashtab.h"
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include "file.h"
#include "int.h"

typedef enum ck_sym_kind { SYM_THRESH, SYM_LIST } ck_sym_kind;

typedef struct ck_sym {
	const char    *name;
	ck_sym_kind    kind;
	uint32_t       index;
	uint32_t       off;
	UT_hash_handle hh;
} ck_sym;

typedef struct ck {
	rules_ast          *ast;
	const rules_schema *schema;
	const rules_opts   *opts;
	const char         *src;
	rules_diag_sink    *sink;
	rules_prog         *prog;
	XXH3_state_t       *hs;
	ck_sym             *syms;   /* thresholds and lists by name */
	ck_sym             *rnames; /* rule names */
	uint32_t            caplists;
	uint64_t            file_nodes; /* cost of the rules so far (ck_cost) */
	bool                file_over;  /* the file budget was reported */
	bool                nomem;
} ck;

static const struct {
	const char *name;
	rules_op    op;
	uint8_t     min, max;
} ck_builtins[] = {
	{ "min", OP_MIN, 2, RULES_MAX_ARGS },
	{ "max", OP_MAX, 2, RULES_MAX_ARGS },
	{ "abs", OP_ABS, 1, 1 },
	{ "log", OP_LOG, 1, 1 },
	{ "sqrt", OP_SQRT, 1, 1 },
	{ "floor", OP_FLOOR, 1, 1 },
	{ "hour", OP_HOUR, 1, 1 },
	{ "weekday", OP_WEEKDAY, 1, 1 },
	{ "haversine", OP_HAVERSINE, 4, 4 },
	{ "starts_with", OP_STARTS_WITH, 2, 2 },
	{ "present", OP_PRESENT, 1, 1 },
	{ "coalesce", OP_COALESCE, 2, 2 },
};

#define CK_NBUILTINS (sizeof ck_builtins / sizeof ck_builtins[0])

const char *
rules_op_name(rules_op op)
{
	for (size_t i = 0; i < CK_NBUILTINS; i++)
		if (ck_builtins[i].op == op)
			return ck_builtins[i].name;
	return "?";
}

static const char *
ck_type_name(vigil_type t)
{
	switch (t) {
	case VIGIL_T_NUM: return "number";
	case VIGIL_T_STR: return "string";
	case VIGIL_T_BOOL: return "bool";
	case VIGIL_T_LIST: return "list";
	case VIGIL_T_NONE: break;
	}
	return "none";
}

/* ---- "did you mean" (rules_suggest, diag.c) ---- */

/* The closest name among features (want_features) and the symbols of
 * kind want_sym (CK_ANY: thresholds and lists): features first, then
 * symbols in declaration order. */
#define CK_NONE (-1)
#define CK_ANY  (-2)

static const char *
ck_suggest(ck *c, const char *name, size_t len, bool want_features, int want_sym,
    unsigned max_dist)
{
	uint32_t     nf = want_features ? rules_schema_count(c->schema) : 0;
	size_t       n = 0;
	const char **cands;
	const char  *best;

	cands = malloc(((size_t)nf + HASH_COUNT(c->syms) + 1) * sizeof *cands);
	if (cands == NULL) {
		c->nomem = true;
		return NULL;
	}
	for (uint32_t i = 0; i < nf; i++)
		cands[n++] = rules_schema_at(c->schema, i)->name;
	for (ck_sym *s = c->syms; s != NULL; s = s->hh.next)
		if (want_sym == CK_ANY || (int)s->kind == want_sym)
			cands[n++] = s->name;
	best = rules_suggest(name, len, cands, n, max_dist);
	free(cands);
	return best;
}

static void
ck_unknown(ck *c, uint32_t off, const char *what, const char *name, size_t len, bool features,
    bool syms)
{
	const char *s = ck_suggest(c, name, len, features, syms ? CK_ANY : CK_NONE,
	    RULES_SUGGEST_BY_LENGTH);

	if (s != NULL)
		rules_diag_add(c->sink, off, VIGIL_ETYPE, "unknown %s '%.*s' (did you mean '%s'?)", what,
		    (int)len, name, s);
	else
		rules_diag_add(c->sink, off, VIGIL_ETYPE, "unknown %s '%.*s'", what, (int)len, name);
}

/* ---- symbols ---- */

static bool
ck_declare(ck *c, const rules_pstr *name, ck_sym_kind kind, uint32_t index)
{
	ck_sym *s = NULL;

	HASH_FIND(hh, c->syms, name->s, name->len, s);
	if (s != NULL) {
		uint32_t line, col;

		rules_diag_linecol(c->src, c->sink->len, s->off, &line, &col);
		rules_diag_add(c->sink, name->off, VIGIL_ETYPE, "'%s' is already declared at line %u",
		    name->s, line);
		return false;
	}
	if (rules_schema_lookup(c->schema, name->s, name->len) != NULL) {
		rules_diag_add(c->sink, name->off, VIGIL_ETYPE,
		    "'%s' is the name of a feature; choose another name", name->s);
		return false;
	}
	s = calloc(1, sizeof *s);
	if (s == NULL) {
		c->nomem = true;
		return false;
	}
	s->name = name->s;
	s->kind = kind;
	s->index = index;
	s->off = name->off;
	HASH_ADD_KEYPTR(hh, c->syms, s->name, name->len, s);
	if (!VIGIL_HASH_ADDED(s)) {
		free(s);
		c->nomem = true;
		return false;
	}
	return true;
}

/* A name declared by a statement that failed to parse: its uses are not
 * reported again (the syntax error already was). */
static bool
ck_is_broken(ck *c, const char *name, size_t len)
{
	for (uint32_t i = 0; i < c->ast->nbroken; i++)
		if (c->ast->broken[i].len == len && memcmp(c->ast->broken[i].s, name, len) == 0)
			return true;
	return false;
}

static ck_sym *
ck_sym_find(ck *c, const char *name, size_t len)
{
	ck_sym *s = NULL;

	HASH_FIND(hh, c->syms, name, len, s);
	return s;
}

/* ---- lists ---- */

static rules_list *
ck_list_new(ck *c, const char *name, rules_list_kind kind, uint32_t *ret_index)
{
	rules_list *l;

	if (c->prog->nlists == c->caplists)
		return NULL; /* sized in advance: cannot happen */
	l = &c->prog->lists[c->prog->nlists];
	memset(l, 0, sizeof *l);
	l->name = name;
	l->kind = kind;
	*ret_index = c->prog->nlists++;
	return l;
}

static void
ck_list_err(ck *c, uint32_t off, vigil_err err)
{
	if (err == VIGIL_ENOMEM)
		c->nomem = true;
	else if (err == VIGIL_ETOOBIG)
		rules_diag_add(c->sink, off, err, "list item longer than %d bytes", RULES_MAX_ITEM);
}

/* Fills l from the OP_LISTLIT at lit; the kind is inferred from the first
 * item unless explicit. */
static void
ck_list_inline(ck *c, rules_list *l, uint32_t lit, bool kind_explicit)
{
	uint32_t cap = 0;
	bool     first = true;

	for (uint32_t i = c->ast->nodes[lit].kid[0]; i != RULES_NIL; i = c->ast->nodes[i].next) {
		const rules_node *it = &c->ast->nodes[i];
		bool              isnum = it->type == VIGIL_T_NUM;
		vigil_err         rv;

		if (first && !kind_explicit)
			l->kind = isnum ? RULES_LIST_NUMBER : RULES_LIST_STRING;
		first = false;
		if (isnum != (l->kind == RULES_LIST_NUMBER)) {
			rules_diag_add(c->sink, it->off, VIGIL_ETYPE, "list%s%s%s holds %s, this item is a %s",
			    l->name[0] != '[' ? " '" : "", l->name[0] != '[' ? l->name : "",
			    l->name[0] != '[' ? "'" : "",
			    l->kind == RULES_LIST_NUMBER ? "numbers" : "strings", isnum ? "number" : "string");
			return;
		}
		if (!isnum && it->len == 0 && l->kind == RULES_LIST_PREFIX) {
			/* one stray "" would make `x in list` true for every x */
			rules_diag_add(c->sink, it->off, VIGIL_ETYPE,
			    "\"\" is a prefix of every value: remove it");
			return;
		}
		rv = isnum ? rules_list_add_num(l, it->num, &cap)
		           : rules_list_add_str(l, &c->prog->arena, it->str, it->len, &cap);
		if (rv != VIGIL_OK) {
			ck_list_err(c, it->off, rv);
			return;
		}
	}
	if (rules_list_seal(l) != VIGIL_OK)
		c->nomem = true;
}

/* Reads base_dir/path into a malloc'd buffer (capped). Errors reported at off. */
static char *
ck_read_list_file(ck *c, const rules_plist *pl, size_t *ret_len)
{
	const char *path = pl->path.s;
	char        full[4096];
	FILE       *f = NULL;
	struct stat st;
	char       *buf = NULL, *res = NULL;
	size_t      n;
	bool        special;

	if (path[0] == '\0' || path[0] == '/' || strstr(path, "..") != NULL ||
	    strlen(path) != pl->path.len) {
		rules_diag_add(c->sink, pl->path.off, VIGIL_EINVAL,
		    "list file '%s' must be a relative path below the rule file's directory, without '..'",
		    path);
		goto out;
	}
	if ((size_t)snprintf(full, sizeof full, "%s/%s", c->opts->base_dir, path) >= sizeof full) {
		rules_diag_add(c->sink, pl->path.off, VIGIL_ETOOBIG, "list file path too long");
		goto out;
	}
	f = vigil_fopen_regular(full, &special, &st); /* a FIFO is refused, not waited on */
	if (f == NULL && !special) {
		rules_diag_add(c->sink, pl->path.off, vigil_err_from_errno(errno),
		    "cannot open list file '%s': %s", path, strerror(errno));
		goto out;
	}
	/* recorded even if reading fails below: the prog is not kept then anyway */
	if ((c->prog->list_files[c->prog->nlist_files] =
	    rules_arena_strndup(&c->prog->arena, full, strlen(full))) == NULL) {
		c->nomem = true;
		goto out;
	}
	c->prog->nlist_files++;
	if (f == NULL) { /* special (another reason went above) */
		rules_diag_add(c->sink, pl->path.off, VIGIL_EIO, "list file '%s' is not a regular file",
		    path);
		goto out;
	}
	if ((uint64_t)st.st_size > RULES_MAX_LISTFILE) {
		rules_diag_add(c->sink, pl->path.off, VIGIL_ETOOBIG,
		    "list file '%s' is %lld bytes, over the limit of %u", path, (long long)st.st_size,
		    RULES_MAX_LISTFILE);
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL) {
		c->nomem = true;
		goto out;
	}
	n = fread(buf, 1, (size_t)st.st_size + 1, f);
	if (ferror(f) || n != (size_t)st.st_size) {
		rules_diag_add(c->sink, pl->path.off, VIGIL_EIO,
		    "list file '%s': read failed or file changed while reading", path);
		goto out;
	}
	buf[n] = '\0';
	*ret_len = n;
	res = buf;
	buf = NULL;
out:
	if (f != NULL)
		fclose(f);
	free(buf);
	return res;
}

bool
rules_list_number_parse(const char *s, double *ret)
{
	size_t i = s[0] == '-', n = strlen(s);
	char  *end;
	double d;
	bool   bad;

	/* the rule file's number token (the lexer's), a sign before it */
	if (!isdigit((unsigned char)s[i]) || rules_lex_number_len(s + i, n - i, &bad) != n - i ||
	    bad)
		return false;
	errno = 0;
	d = strtod(s, &end);
	if (*end != '\0' || errno != 0 || !isfinite(d))
		return false;
	if (ret != NULL)
		*ret = d;
	return true;
}

/* One item per line; blank lines and lines starting with '#' are skipped;
 * surrounding spaces and tabs are trimmed. */
static void
ck_list_file(ck *c, rules_list *l, const rules_plist *pl)
{
	size_t   len = 0, i = 0;
	uint32_t cap = 0, lineno = 0;
	char    *buf = ck_read_list_file(c, pl, &len);

	if (buf == NULL)
		return;
	rules_hash_part(c->hs, buf, len);
	if (len >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0) {
		/* it would be part of the first item, which then never matches */
		rules_diag_add(c->sink, pl->path.off, VIGIL_ESYNTAX, "list file '%s': line 1: starts "
		    "with a UTF-8 byte order mark (save the file without it)", pl->path.s);
		goto out;
	}
	while (i < len) {
		size_t b = i, e;

		lineno++;
		while (i < len && buf[i] != '\n')
			i++;
		e = i;
		if (i < len)
			i++;
		while (b < e && (buf[b] == ' ' || buf[b] == '\t'))
			b++;
		while (e > b && (buf[e - 1] == ' ' || buf[e - 1] == '\t' || buf[e - 1] == '\r'))
			e--;
		if (b == e || buf[b] == '#')
			continue;
		if (l->n >= c->opts->max_list_items) {
			rules_diag_add(c->sink, pl->path.off, VIGIL_ETOOBIG,
			    "list file '%s': more than %u items (line %u)", pl->path.s,
			    c->opts->max_list_items, lineno);
			goto out;
		}
		if (e - b > RULES_MAX_ITEM) {
			rules_diag_add(c->sink, pl->path.off, VIGIL_ETOOBIG,
			    "list file '%s': line %u: item longer than %d bytes", pl->path.s, lineno,
			    RULES_MAX_ITEM);
			goto out;
		}
		if (memchr(buf + b, '\0', e - b) != NULL) {
			rules_diag_add(c->sink, pl->path.off, VIGIL_ESYNTAX,
			    "list file '%s': line %u: NUL byte", pl->path.s, lineno);
			goto out;
		}
		for (size_t k = b, sn; k < e; k += sn) {
			if ((sn = vigil_utf8_seq(buf + k, e - k)) == 0) {
				/* items reach JSON (the console, explain) and replies */
				rules_diag_add(c->sink, pl->path.off, VIGIL_ESYNTAX, "list file '%s': "
				    "line %u: byte 0x%02x is not UTF-8 (save the file as UTF-8)",
				    pl->path.s, lineno, (unsigned char)buf[k]);
				goto out;
			}
		}
		if (l->kind == RULES_LIST_NUMBER) {
			char   tmp[RULES_MAX_ITEM + 1];
			double d;

			memcpy(tmp, buf + b, e - b);
			tmp[e - b] = '\0';
			if (!rules_list_number_parse(tmp, &d)) {
				/* the line, not its text: a rule text checked through
				 * the console may name any file under the rule file's
				 * directory as a list, and its error reaches users who
				 * may not read that file */
				rules_diag_add(c->sink, pl->path.off, VIGIL_ESYNTAX,
				    "list file '%s': line %u: not a number", pl->path.s, lineno);
				goto out;
			}
			if (rules_list_add_num(l, d, &cap) != VIGIL_OK) {
				c->nomem = true;
				goto out;
			}
		} else if (rules_list_add_str(l, &c->prog->arena, buf + b, (uint32_t)(e - b), &cap) !=
		    VIGIL_OK) {
			c->nomem = true;
			goto out;
		}
	}
	if (rules_list_seal(l) != VIGIL_OK)
		c->nomem = true;
out:
	free(buf);
}

/* ---- expressions ---- */

static bool
ck_is_const(const rules_node *n)
{
	return n->op == OP_CONST || n->op == OP_LIST;
}

/* Replaces node i by its value if every operand is constant. */
static void
ck_fold(ck *c, uint32_t i)
{
	rules_node *nd = &c->ast->nodes[i];
	vigil_value v;

	if (nd->op == OP_CONST || nd->op == OP_SLOT || nd->op == OP_THRESH || nd->op == OP_LIST)
		return; /* leaves: a feature or threshold is never constant */
	if (nd->op == OP_MIN || nd->op == OP_MAX) {
		for (uint32_t a = nd->kid[0]; a != RULES_NIL; a = c->ast->nodes[a].next)
			if (!ck_is_const(&c->ast->nodes[a]))
				return;
	} else {
		for (int k = 0; k < 4; k++)
			if (nd->kid[k] != RULES_NIL && !ck_is_const(&c->ast->nodes[nd->kid[k]]))
				return;
	}
	if (nd->op == OP_PRESENT || nd->op == OP_ISMISSING)
		return; /* constants are present: folding is right but hides intent in explain */
	v = rules_eval_node(c->prog, NULL, NULL, i);
	if (!v.present)
		return; /* keep the expression: a missing constant has no literal */
	nd->op = OP_CONST;
	nd->num = v.num;
	nd->str = v.str;
	nd->len = v.len;
	memset(nd->kid, 0, sizeof nd->kid);
}

static vigil_type ck_expr(ck *c, uint32_t i);

/* Resolves the right operand of in / starts_with to a list: OP_LIST. */
/* Whether a string list holds "" (a prefix of every string). */
static bool
ck_list_has_empty(const rules_list *l)
{
	if (l->kind == RULES_LIST_NUMBER)
		return false;
	for (uint32_t k = 0; k < l->n; k++)
		if (l->slen[k] == 0)
			return true;
	return false;
}

static bool
ck_list_operand(ck *c, uint32_t i, const char *op, rules_list_kind *ret_kind)
{
	rules_node *nd = &c->ast->nodes[i];

	if (nd->op == OP_LISTLIT) {
		uint32_t    ix;
		rules_list *l = ck_list_new(c, "[...]", RULES_LIST_STRING, &ix);

		if (l == NULL) {
			c->nomem = true;
			return false;
		}
		ck_list_inline(c, l, i, false);
		nd = &c->ast->nodes[i];
		nd->op = OP_LIST;
		nd->ix = ix;
		nd->type = VIGIL_T_LIST;
		memset(nd->kid, 0, sizeof nd->kid);
		*ret_kind = l->kind;
		return true;
	}
	if (nd->op == OP_NAME) {
		ck_sym *s = ck_sym_find(c, nd->str, nd->len);

		if (s != NULL && s->kind == SYM_LIST) {
			nd->op = OP_LIST;
			nd->ix = s->index;
			nd->type = VIGIL_T_LIST;
			*ret_kind = c->prog->lists[s->index].kind;
			return true;
		}
		if (s == NULL && ck_is_broken(c, nd->str, nd->len))
			return false;
		if (s == NULL && rules_schema_lookup(c->schema, nd->str, nd->len) == NULL) {
			const char *sug = ck_suggest(c, nd->str, nd->len, false, SYM_LIST, 3);

			if (sug != NULL)
				rules_diag_add(c->sink, nd->off, VIGIL_ETYPE,
				    "unknown list '%.*s' (did you mean '%s'?)", (int)nd->len, nd->str, sug);
			else
				rules_diag_add(c->sink, nd->off, VIGIL_ETYPE, "unknown list '%.*s'",
				    (int)nd->len, nd->str);
			return false;
		}
	}
	rules_diag_add(c->sink, nd->off, VIGIL_ETYPE, "the right side of %s must be a list", op);
	return false;
}

static vigil_type
ck_want(ck *c, uint32_t i, vigil_type want, const char *ctx)
{
	vigil_type t = ck_expr(c, i);

	if (t != VIGIL_T_NONE && t != want) {
		rules_diag_add(c->sink, c->ast->nodes[i].off, VIGIL_ETYPE, "%s needs a %s, got a %s", ctx,
		    ck_type_name(want), ck_type_name(t));
		return VIGIL_T_NONE;
	}
	return t;
}

static vigil_type
ck_call(ck *c, uint32_t i)
{
	rules_node *nd = &c->ast->nodes[i];
	uint32_t    nargs = nd->ix, args[RULES_MAX_ARGS], k = 0;
	size_t      b;
	char        ctx[64];
	vigil_type  t = VIGIL_T_NONE, rt;
	bool        bad = false;

	for (b = 0; b < CK_NBUILTINS; b++)
		if (strlen(ck_builtins[b].name) == nd->len && memcmp(ck_builtins[b].name, nd->str, nd->len) == 0)
			break;
	if (b == CK_NBUILTINS) {
		const char *names[CK_NBUILTINS], *best;

		for (size_t j = 0; j < CK_NBUILTINS; j++)
			names[j] = ck_builtins[j].name;
		best = rules_suggest(nd->str, nd->len, names, CK_NBUILTINS, 2);
		if (best != NULL)
			rules_diag_add(c->sink, nd->off, VIGIL_ETYPE, "unknown function '%.*s' (did you mean '%s'?)",
			    (int)nd->len, nd->str, best);
		else
			rules_diag_add(c->sink, nd->off, VIGIL_ETYPE, "unknown function '%.*s'", (int)nd->len,
			    nd->str);
		return VIGIL_T_NONE;
	}
	if (nargs < ck_builtins[b].min || nargs > ck_builtins[b].max) {
		if (ck_builtins[b].min == ck_builtins[b].max)
			rules_diag_add(c->sink, nd->off, VIGIL_ETYPE, "%s() takes %u argument%s, got %u",
			    ck_builtins[b].name, ck_builtins[b].min, ck_builtins[b].min == 1 ? "" : "s", nargs);
		else
			rules_diag_add(c->sink, nd->off, VIGIL_ETYPE, "%s() takes at least %u arguments, got %u",
			    ck_builtins[b].name, ck_builtins[b].min, nargs);
		return VIGIL_T_NONE;
	}
	for (uint32_t a = nd->kid[0]; a != RULES_NIL; a = c->ast->nodes[a].next)
		args[k++] = a;
	nd->op = (uint8_t)ck_builtins[b].op;
	memset(nd->kid, 0, sizeof nd->kid);
	nd->kid[0] = args[0];
	if (nd->op != OP_MIN && nd->op != OP_MAX)
		for (k = 1; k < nargs && k < 4; k++)
			nd->kid[k] = args[k];
	switch ((rules_op)nd->op) {
	case OP_MIN:
	case OP_MAX:
	case OP_ABS:
	case OP_LOG:
	case OP_SQRT:
	case OP_FLOOR:
	case OP_HOUR:
	case OP_WEEKDAY:
	case OP_HAVERSINE:
		for (k = 0; k < nargs; k++) {
			snprintf(ctx, sizeof ctx, "argument %u of %s()", k + 1, ck_builtins[b].name);
			if (ck_want(c, args[k], VIGIL_T_NUM, ctx) == VIGIL_T_NONE)
				bad = true;
		}
		t = VIGIL_T_NUM;
		break;
	case OP_STARTS_WITH:
		if (ck_want(c, args[0], VIGIL_T_STR, "argument 1 of starts_with()") == VIGIL_T_NONE)
			bad = true;
		{
			const rules_node *a1 = &c->ast->nodes[args[1]];
			ck_sym           *s = a1->op == OP_NAME ? ck_sym_find(c, a1->str, a1->len) : NULL;

			if (a1->op == OP_LISTLIT || (s != NULL && s->kind == SYM_LIST)) {
				rules_list_kind lk;

				if (!ck_list_operand(c, args[1], "starts_with()", &lk))
					return VIGIL_T_NONE;
				if (lk == RULES_LIST_NUMBER) {
					rules_diag_add(c->sink, c->ast->nodes[args[1]].off, VIGIL_ETYPE,
					    "starts_with() needs a list of strings; '%s' holds numbers",
					    c->prog->lists[c->ast->nodes[args[1]].ix].name);
					return VIGIL_T_NONE;
				}
				if (ck_list_has_empty(&c->prog->lists[c->ast->nodes[args[1]].ix])) {
					rules_diag_add(c->sink, c->ast->nodes[args[1]].off, VIGIL_ETYPE,
					    "starts_with(): the list holds \"\", a prefix of every value");
					return VIGIL_T_NONE;
				}
				c->ast->nodes[i].op = OP_STARTS_WITH_LIST;
			} else if (ck_want(c, args[1], VIGIL_T_STR, "argument 2 of starts_with()") ==
			    VIGIL_T_NONE) {
				bad = true;
			} else if (a1->op == OP_CONST && a1->len == 0) {
				rules_diag_add(c->sink, a1->off, VIGIL_ETYPE,
				    "starts_with(): \"\" is a prefix of every value");
				bad = true;
			}
		}
		t = VIGIL_T_BOOL;
		break;
	case OP_PRESENT:
		if (ck_expr(c, args[0]) == VIGIL_T_NONE)
			bad = true;
		t = VIGIL_T_BOOL;
		break;
	case OP_COALESCE:
		t = ck_expr(c, args[0]);
		rt = ck_expr(c, args[1]);
		if (t == VIGIL_T_NONE || rt == VIGIL_T_NONE)
			return VIGIL_T_NONE;
		if (t != rt) {
			rules_diag_add(c->sink, c->ast->nodes[args[1]].off, VIGIL_ETYPE,
			    "coalesce() needs two values of the same type, got %s and %s", ck_type_name(t),
			    ck_type_name(rt));
			return VIGIL_T_NONE;
		}
		break;
	default:
		return VIGIL_T_NONE;
	}
	return bad ? VIGIL_T_NONE : t;
}

static vigil_type
ck_name(ck *c, uint32_t i)
{
	rules_node        *nd = &c->ast->nodes[i];
	ck_sym            *s = ck_sym_find(c, nd->str, nd->len);
	const rules_field *f;

	if (s != NULL && s->kind == SYM_THRESH) {
		nd->op = OP_THRESH;
		nd->ix = s->index;
		return VIGIL_T_NUM;
	}
	if (s != NULL) {
		rules_diag_add(c->sink, nd->off, VIGIL_ETYPE,
		    "list '%s' can only be used after 'in' or as starts_with()'s second argument", s->name);
		return VIGIL_T_NONE;
	}
	f = rules_schema_lookup(c->schema, nd->str, nd->len);
	if (f == NULL) {
		bool dotted = memchr(nd->str, '.', nd->len) != NULL;

		if (ck_is_broken(c, nd->str, nd->len))
			return VIGIL_T_NONE;
		ck_unknown(c, nd->off, dotted ? "feature" : "name", nd->str, nd->len, true, !dotted);
		return VIGIL_T_NONE;
	}
	nd->op = OP_SLOT;
	nd->ix = f->slot;
	return f->type;
}

static const char *
ck_op_text(rules_op op)
{
	switch (op) {
	case OP_ADD: return "'+'";
	case OP_SUB: return "'-'";
	case OP_MUL: return "'*'";
	case OP_DIV: return "'/'";
	case OP_MOD: return "'%'";
	case OP_LT: return "'<'";
	case OP_LE: return "'<='";
	case OP_GT: return "'>'";
	case OP_GE: return "'>='";
	case OP_EQ: return "'=='";
	case OP_NE: return "'!='";
	case OP_AND: return "'and'";
	case OP_OR: return "'or'";
	case OP_NOT: return "'not'";
	case OP_NEG: return "unary '-'";
	case OP_BETWEEN: return "'between'";
	default: return "operator";
	}
}

/* expr: returns its type, VIGIL_T_NONE after reporting an error (callers
 * stay silent on NONE so one mistake gives one message). */
static vigil_type
ck_expr(ck *c, uint32_t i)
{
	rules_node *nd = &c->ast->nodes[i];
	rules_op    op = (rules_op)nd->op;
	vigil_type  t = VIGIL_T_NONE, l, r;
	char        ctx[64];

	switch (op) {
	case OP_CONST:
		return (vigil_type)nd->type;
	case OP_NAME:
		t = ck_name(c, i);
		break;
	case OP_CALL:
		t = ck_call(c, i);
		break;
	case OP_LISTLIT:
		rules_diag_add(c->sink, nd->off, VIGIL_ETYPE, "a list literal can only follow 'in' or be starts_with()'s second argument");
		return VIGIL_T_NONE;
	case OP_NEG:
		t = ck_want(c, nd->kid[0], VIGIL_T_NUM, "unary '-'");
		break;
	case OP_ADD:
	case OP_SUB:
	case OP_MUL:
	case OP_DIV:
	case OP_MOD:
	case OP_LT:
	case OP_LE:
	case OP_GT:
	case OP_GE:
		snprintf(ctx, sizeof ctx, "%s", ck_op_text(op));
		l = ck_want(c, nd->kid[0], VIGIL_T_NUM, ctx);
		/* one message per operator: after a bad left side, only resolve the right */
		r = l == VIGIL_T_NONE ? ck_expr(c, c->ast->nodes[i].kid[1])
		                      : ck_want(c, c->ast->nodes[i].kid[1], VIGIL_T_NUM, ctx);
		if (l == VIGIL_T_NONE || r == VIGIL_T_NONE)
			return VIGIL_T_NONE;
		nd = &c->ast->nodes[i];
		nd->ix = VIGIL_T_NUM;
		t = op >= OP_LT ? VIGIL_T_BOOL : VIGIL_T_NUM;
		break;
	case OP_EQ:
	case OP_NE:
		l = ck_expr(c, nd->kid[0]);
		r = ck_expr(c, nd->kid[1]);
		if (l == VIGIL_T_NONE || r == VIGIL_T_NONE)
			return VIGIL_T_NONE;
		nd = &c->ast->nodes[i];
		if (l != r) {
			rules_diag_add(c->sink, nd->off, VIGIL_ETYPE,
			    "%s compares values of one type, got %s and %s", ck_op_text(op), ck_type_name(l),
			    ck_type_name(r));
			return VIGIL_T_NONE;
		}
		nd->ix = l;
		t = VIGIL_T_BOOL;
		break;
	case OP_BETWEEN:
		l = ck_want(c, nd->kid[0], VIGIL_T_NUM, "'between'");
		r = ck_want(c, nd->kid[1], VIGIL_T_NUM, "'between'");
		t = ck_want(c, nd->kid[2], VIGIL_T_NUM, "'between'");
		if (l == VIGIL_T_NONE || r == VIGIL_T_NONE || t == VIGIL_T_NONE)
			return VIGIL_T_NONE;
		t = VIGIL_T_BOOL;
		break;
	case OP_IN:
	case OP_NOTIN: {
		rules_list_kind lk;

		l = ck_expr(c, nd->kid[0]);
		if (!ck_list_operand(c, c->ast->nodes[i].kid[1], "'in'", &lk) || l == VIGIL_T_NONE)
			return VIGIL_T_NONE;
		nd = &c->ast->nodes[i];
		if (l != (lk == RULES_LIST_NUMBER ? VIGIL_T_NUM : VIGIL_T_STR)) {
			const rules_list *lst = &c->prog->lists[c->ast->nodes[nd->kid[1]].ix];

			rules_diag_add(c->sink, c->ast->nodes[nd->kid[0]].off, VIGIL_ETYPE,
			    "'in' tests a %s here, but list '%s' holds %s", ck_type_name(l), lst->name,
			    lk == RULES_LIST_NUMBER ? "numbers" : "strings");
			return VIGIL_T_NONE;
		}
		t = VIGIL_T_BOOL;
		break;
	}
	case OP_AND:
	case OP_OR:
		snprintf(ctx, sizeof ctx, "%s", ck_op_text(op));
		l = ck_want(c, nd->kid[0], VIGIL_T_BOOL, ctx);
		r = l == VIGIL_T_NONE ? ck_expr(c, c->ast->nodes[i].kid[1])
		                      : ck_want(c, c->ast->nodes[i].kid[1], VIGIL_T_BOOL, ctx);
		if (l == VIGIL_T_NONE || r == VIGIL_T_NONE)
			return VIGIL_T_NONE;
		t = VIGIL_T_BOOL;
		break;
	case OP_NOT:
		t = ck_want(c, nd->kid[0], VIGIL_T_BOOL, "'not'");
		break;
	case OP_ISMISSING:
	case OP_PRESENT:
		t = ck_expr(c, nd->kid[0]) == VIGIL_T_NONE ? VIGIL_T_NONE : VIGIL_T_BOOL;
		break;
	default:
		rules_diag_add(c->sink, nd->off, VIGIL_EINTERNAL, "internal: unexpected node %d", op);
		return VIGIL_T_NONE;
	}
	if (t == VIGIL_T_NONE)
		return t;
	c->ast->nodes[i].type = (uint8_t)t;
	if (!c->nomem)
		ck_fold(c, i);
	return t;
}

/* ---- declarations ---- */

static void
ck_thresholds(ck *c)
{
	rules_prog *prog = c->prog;

	for (uint32_t i = 0; i < c->ast->nthresh; i++) {
		const rules_pthresh  *pt = &c->ast->thresh[i];
		rules_threshold_info *ti = &prog->thresh[prog->nthresh];

		ck_declare(c, &pt->name, SYM_THRESH, prog->nthresh);
		memset(ti, 0, sizeof *ti);
		ti->name = pt->name.s;
		ti->kind = pt->kind;
		ti->fallback = pt->fallback;
		ti->param = pt->param;
		ti->min_samples = pt->min_samples;
		prog->nthresh++;
		if (pt->kind == RULES_TUNE_CONST)
			continue;
		{
			const rules_field *f = rules_schema_lookup(c->schema, pt->feature.s, pt->feature.len);

			if (f == NULL && pt->feature.len == 5 && memcmp(pt->feature.s, "score", 5) == 0) {
				/* The score itself (archived with every row): for the
				 * bands; vigil-rebuild tunes it like a feature. */
				ti->feature = "score";
				ti->feature_slot = RULES_SLOT_SCORE;
			} else if (f == NULL) {
				ck_unknown(c, pt->feature.off, "feature", pt->feature.s, pt->feature.len, true, false);
			} else if (f->type != VIGIL_T_NUM) {
				rules_diag_add(c->sink, pt->feature.off, VIGIL_ETYPE,
				    "a tuned threshold needs a number feature; '%s' is a %s", f->name,
				    ck_type_name(f->type));
			} else {
				/* Copied: the schema may be freed before the prog. */
				ti->feature = rules_arena_strndup(&prog->arena, f->name, strlen(f->name));
				ti->feature_slot = f->slot;
				if (ti->feature == NULL)
					rules_diag_add(c->sink, pt->feature.off, VIGIL_ENOMEM, "out of memory");
			}
		}
		if (pt->kind == RULES_TUNE_PERCENTILE && !(pt->param > 0 && pt->param < 100))
			rules_diag_add(c->sink, pt->param_off, VIGIL_ETYPE,
			    "percentile must be between 0 and 100 (exclusive), got %g", pt->param);
		else if (pt->kind != RULES_TUNE_PERCENTILE && !(pt->param > 0 && pt->param < 1))
			rules_diag_add(c->sink, pt->param_off, VIGIL_ETYPE,
			    "%s must be between 0 and 1 (exclusive), got %g",
			    pt->kind == RULES_TUNE_ALERT_RATE ? "an alert rate" : "a precision target", pt->param);
		if (pt->group.s != NULL) {
			const rules_field *g = rules_schema_lookup(c->schema, pt->group.s, pt->group.len);

			if (g == NULL) {
				ck_unknown(c, pt->group.off, "feature", pt->group.s, pt->group.len, true, false);
			} else {
				ti->group_by = rules_arena_strndup(&prog->arena, g->name, strlen(g->name));
				ti->group_slot = g->slot;
				ti->group_type = g->type;
				if (ti->group_by == NULL)
					rules_diag_add(c->sink, pt->group.off, VIGIL_ENOMEM, "out of memory");
			}
		}
	}
}

/* A band set by a threshold ('band review = NAME'): the threshold must be
 * declared, ungrouped (the band is one number), and its fallback is the
 * band's number until a rebuild tunes it. */
static void
ck_band(ck *c, const rules_pstr *name, const char *which, double *at, uint32_t *thr)
{
	const ck_sym *s;
	const rules_threshold_info *ti;

	*thr = UINT32_MAX;
	if (name->s == NULL)
		return;
	s = ck_sym_find(c, name->s, name->len);
	if (s == NULL || s->kind != SYM_THRESH) {
		ck_unknown(c, name->off, "threshold", name->s, name->len, false, true);
		return;
	}
	ti = &c->prog->thresh[s->index];
	if (ti->group_by != NULL) {
		rules_diag_add(c->sink, name->off, VIGIL_ETYPE,
		    "band %s = %s: a band is one number; threshold '%s' is tuned by %s", which,
		    name->s, name->s, ti->group_by);
		return;
	}
	if (!(ti->fallback >= -1e6 && ti->fallback <= 1e6)) {
		rules_diag_add(c->sink, name->off, VIGIL_ETYPE,
		    "band %s = %s: the threshold's fallback %g is outside [-1000000, 1000000]",
		    which, name->s, ti->fallback);
		return;
	}
	*thr = s->index;
	*at = ti->fallback;
}

static void
ck_lists(ck *c)
{
	for (uint32_t i = 0; i < c->ast->nlists; i++) {
		const rules_plist *pl = &c->ast->lists[i];
		uint32_t           ix;
		rules_list        *l = ck_list_new(c, pl->name.s, pl->kind, &ix);

		if (l == NULL) {
			c->nomem = true;
			return;
		}
		ck_declare(c, &pl->name, SYM_LIST, ix);
		if (pl->from_file)
			ck_list_file(c, l, pl);
		else
			ck_list_inline(c, l, pl->items, pl->kind_explicit);
	}
}

/*
 * The cost of evaluating node i: the nodes of its tree, as the evaluator
 * visits them (min/max arguments by their chain; a list, inline or named,
 * is one node: membership is one lookup whatever its size). Depth is
 * bounded by max_depth (parse.c).
 */
static uint64_t
ck_cost(const ck *c, uint32_t i)
{
	const rules_node *nd = &c->ast->nodes[i];
	uint64_t          n = 1;

	if (nd->op == OP_LISTLIT || nd->op == OP_LIST)
		return 1;
	if (nd->op == OP_MIN || nd->op == OP_MAX) {
		for (uint32_t a = nd->kid[0]; a != RULES_NIL; a = c->ast->nodes[a].next)
			n += ck_cost(c, a);
		return n;
	}
	for (int k = 0; k < 4; k++)
		if (nd->kid[k] != RULES_NIL)
			n += ck_cost(c, nd->kid[k]);
	return n;
}

/* The cost budget (docs/rules.md, "Errors", **Cost budget**): a rule's
 * condition and the file's rules together, in nodes, so that a file that
 * passes check cannot make every evaluation slow. Reported at the rule
 * that goes over. */
static void
ck_budget(ck *c, const rules_prule *pr)
{
	uint64_t n = ck_cost(c, pr->cond);

	if (n > c->opts->max_rule_nodes)
		rules_diag_add(c->sink, pr->name.off, VIGIL_ETOOBIG, "rule '%s' costs %llu nodes, "
		    "over the budget of %u per rule (max_rule_nodes)",
		    pr->name.s, (unsigned long long)n, c->opts->max_rule_nodes);
	c->file_nodes += n;
	if (c->file_nodes > c->opts->max_file_nodes && !c->file_over) {
		c->file_over = true;
		rules_diag_add(c->sink, pr->name.off, VIGIL_ETOOBIG, "rule '%s' brings the file "
		    "to %llu nodes, over the budget of %u per file (max_file_nodes)",
		    pr->name.s, (unsigned long long)c->file_nodes, c->opts->max_file_nodes);
	}
}

static void
ck_rules(ck *c)
{
	rules_prog *prog = c->prog;

	for (uint32_t i = 0; i < c->ast->nrules; i++) {
		const rules_prule *pr = &c->ast->rules[i];
		rules_crule       *cr = &prog->rules[prog->nrules++];
		ck_sym            *s = NULL;
		vigil_type         t;
		uint32_t           col;

		HASH_FIND(hh, c->rnames, pr->name.s, pr->name.len, s);
		if (s != NULL) {
			uint32_t line;

			rules_diag_linecol(c->src, c->sink->len, s->off, &line, &col);
			rules_diag_add(c->sink, pr->name.off, VIGIL_ETYPE,
			    "rule '%s' is already defined at line %u", pr->name.s, line);
		} else if ((s = calloc(1, sizeof *s)) != NULL) {
			s->name = pr->name.s;
			s->off = pr->name.off;
			HASH_ADD_KEYPTR(hh, c->rnames, s->name, pr->name.len, s);
			if (!VIGIL_HASH_ADDED(s)) {
				free(s);
				c->nomem = true;
				return;
			}
		} else {
			c->nomem = true;
			return;
		}
		t = ck_expr(c, pr->cond);
		if (t != VIGIL_T_NONE && t != VIGIL_T_BOOL)
			rules_diag_add(c->sink, pr->cond_off, VIGIL_ETYPE,
			    "the condition of rule '%s' must be a bool, got a %s", pr->name.s, ck_type_name(t));
		if (pr->cond != RULES_NIL)
			ck_budget(c, pr);
		cr->cond = pr->cond;
		cr->cond_text = pr->cond_text;
		cr->info.name = pr->name.s;
		cr->info.reason = pr->reason.s;
		cr->info.points = pr->points;
		cr->info.decide = pr->has_decide ? (vigil_decision)pr->decide : VIGIL_DECISION_ALLOW;
		cr->info.mode = pr->mode;
		cr->info.ntags = pr->ntags;
		rules_diag_linecol(c->src, c->sink->len, pr->name.off, &cr->info.line, &col);
		if (pr->ntags > 0) {
			const char **tags = rules_arena_alloc(&prog->arena, pr->ntags * sizeof *tags);

			if (tags == NULL) {
				c->nomem = true;
				return;
			}
			for (uint32_t k = 0; k < pr->ntags; k++)
				tags[k] = pr->tags[k].s;
			cr->info.tags = tags;
		}
		if (cr->cond_text == NULL)
			c->nomem = true;
	}
}

/* Marks every slot node i reads (and the group slot of thresholds it reads). */
static void
ck_mark_slots(ck *c, uint32_t i, bool *used)
{
	const rules_node *nd = &c->ast->nodes[i];

	if (nd->op == OP_SLOT && nd->ix < c->prog->nslots)
		used[nd->ix] = true;
	if (nd->op == OP_THRESH) {
		const rules_threshold_info *ti = &c->prog->thresh[nd->ix];

		if (ti->group_by != NULL)
			used[ti->group_slot] = true;
		if (ti->feature != NULL && ti->feature_slot != RULES_SLOT_SCORE)
			used[ti->feature_slot] = true;
	}
	if (nd->op == OP_MIN || nd->op == OP_MAX) {
		for (uint32_t a = nd->kid[0]; a != RULES_NIL; a = c->ast->nodes[a].next)
			ck_mark_slots(c, a, used);
		return;
	}
	for (int k = 0; k < 4; k++)
		if (nd->kid[k] != RULES_NIL)
			ck_mark_slots(c, nd->kid[k], used);
}

static vigil_err
ck_finish(ck *c)
{
	rules_prog *prog = c->prog;
	bool       *used = calloc(prog->nslots + 1, sizeof *used);
	uint32_t    n = 0;

	if (used == NULL)
		return VIGIL_ENOMEM;
	for (uint32_t i = 0; i < prog->nrules; i++)
		if (prog->rules[i].info.mode != RULES_MODE_DISABLED)
			ck_mark_slots(c, prog->rules[i].cond, used);
	for (uint32_t s = 0; s < prog->nslots; s++)
		n += used[s];
	prog->slots_used = malloc(((size_t)n + 1) * sizeof *prog->slots_used);
	if (prog->slots_used == NULL) {
		free(used);
		return VIGIL_ENOMEM;
	}
	for (uint32_t s = 0; s < prog->nslots; s++)
		if (used[s])
			prog->slots_used[prog->nslots_used++] = s;
	free(used);
	return VIGIL_OK;
}

static vigil_err
ck_fields(ck *c)
{
	rules_prog *prog = c->prog;
	uint32_t    n = rules_schema_count(c->schema);

	prog->nslots = rules_schema_nslots(c->schema);
	prog->fields = calloc(n + 1, sizeof *prog->fields);
	prog->slot_field = calloc(prog->nslots + 1, sizeof *prog->slot_field);
	if (prog->fields == NULL || prog->slot_field == NULL)
		return VIGIL_ENOMEM;
	for (uint32_t i = 0; i < n; i++) {
		const rules_field *f = rules_schema_at(c->schema, i);

		prog->fields[i] = *f;
		prog->fields[i].name = rules_arena_strndup(&prog->arena, f->name, strlen(f->name));
		if (prog->fields[i].name == NULL)
			return VIGIL_ENOMEM;
		prog->slot_field[f->slot] = &prog->fields[i];
	}
	prog->nfields = n;
	return VIGIL_OK;
}

vigil_err
rules_check_program(rules_ast *ast, const rules_schema *schema, const rules_opts *opts,
    const char *src, rules_diag_sink *sink, rules_prog *prog, void *hash_state)
{
	ck        c = { 0 };
	uint32_t  nlit = 0;
	vigil_err rv;

	c.ast = ast;
	c.schema = schema;
	c.opts = opts;
	c.src = src;
	c.sink = sink;
	c.prog = prog;
	c.hs = hash_state;
	for (uint32_t i = 1; i < ast->nnodes; i++)
		nlit += ast->nodes[i].op == OP_LISTLIT;
	c.caplists = ast->nlists + nlit;
	prog->lists = calloc(c.caplists + 1, sizeof *prog->lists);
	prog->thresh = calloc(ast->nthresh + 1, sizeof *prog->thresh);
	prog->rules = calloc(ast->nrules + 1, sizeof *prog->rules);
	prog->list_files = rules_arena_alloc(&prog->arena,
	    (ast->nlists + 1) * sizeof *prog->list_files);
	if (prog->lists == NULL || prog->thresh == NULL || prog->rules == NULL ||
	    prog->list_files == NULL) {
		rv = VIGIL_ENOMEM;
		goto out;
	}
	rv = ck_fields(&c);
	if (rv != VIGIL_OK)
		goto out;
	/* nodes are shared with the prog from here on: folding evaluates them */
	prog->nodes = ast->nodes;
	prog->nnodes = ast->nnodes;
	prog->version = ast->has_version ? ast->version.s : "";
	prog->review_at = ast->has_review ? ast->band_review : 50;
	prog->decline_at = ast->has_decline ? ast->band_decline : 100;
	prog->adjust_max = ast->has_adjust ? ast->adjust_max : 0;
	ck_thresholds(&c);
	ck_band(&c, &ast->band_review_name, "review", &prog->review_at, &prog->review_thr);
	ck_band(&c, &ast->band_decline_name, "decline", &prog->decline_at, &prog->decline_thr);
	{
		/* a band whose threshold did not resolve was reported already */
		bool unresolved = (ast->band_review_name.s != NULL && prog->review_thr == UINT32_MAX) ||
		    (ast->band_decline_name.s != NULL && prog->decline_thr == UINT32_MAX);

		if (!unresolved && prog->review_at > prog->decline_at)
			rules_diag_add(sink, ast->has_decline ? ast->band_decline_off : ast->band_review_off,
			    VIGIL_ETYPE, "band decline (%.15g) is below band review (%.15g)%s",
			    prog->decline_at, prog->review_at,
			    prog->review_thr != UINT32_MAX || prog->decline_thr != UINT32_MAX ?
			    " (a tuned band: its fallback)" : "");
	}
	ck_lists(&c);
	ck_rules(&c);
	if (c.nomem) {
		rv = VIGIL_ENOMEM;
		goto out;
	}
	rv = ck_finish(&c);
out:
	/* the prog owns the node array now (freed with it even on failure) */
	if (prog->nodes == ast->nodes)
		ast->nodes = NULL;
	{
		ck_sym *s, *tmp;

		HASH_ITER(hh, c.syms, s, tmp) {
			HASH_DEL(c.syms, s);
			free(s);
		}
		HASH_ITER(hh, c.rnames, s, tmp) {
			HASH_DEL(c.rnames, s);
			free(s);
		}
	}
	return rv;
}
