/* SPDX-License-Identifier: MIT */
/*
 * rules/eval.c - the evaluator: walks a compiled program's node tree over a
 * feature vector in slot order, with Kleene three-valued logic for missing
 * values (docs/rules.md, "Missing values"). It reads features by slot index,
 * compares strings by length and bytes, tests lists through precomputed
 * hash sets, looks tuned thresholds up by the hash of the group value, and
 * never allocates. Also here: rules_tvals (tuned threshold values) and the
 * explain output for tools.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "int.h"

#define EV_MAX_GROUPS (1u << 22) /* tuned values per threshold */

/* ======================= Tuned threshold values ======================= */

typedef struct tv_group {
	uint64_t h;
	double   key_num;
	char    *key_str;
	uint32_t key_len;
	bool     used;
	double   value;
} tv_group;

typedef struct tv_entry {
	double    global;
	bool      has_global;
	uint32_t  cap, count; /* cap: power of two, 0 = no table */
	tv_group *groups;
} tv_entry;

struct rules_tvals {
	const rules_prog *prog;
	uint32_t          n;
	tv_entry         *e;
};

rules_tvals *
rules_tvals_new(const rules_prog *prog)
{
	rules_tvals *tv;

	if (prog == NULL)
		return NULL;
	tv = calloc(1, sizeof *tv);
	if (tv == NULL)
		return NULL;
	tv->e = calloc(prog->nthresh + 1, sizeof *tv->e);
	if (tv->e == NULL) {
		free(tv);
		return NULL;
	}
	tv->prog = prog;
	tv->n = prog->nthresh;
	return tv;
}

void
rules_tvals_free(rules_tvals *tv)
{
	if (tv == NULL)
		return;
	for (uint32_t i = 0; i < tv->n; i++) {
		for (uint32_t k = 0; k < tv->e[i].cap; k++)
			free(tv->e[i].groups[k].key_str);
		free(tv->e[i].groups);
	}
	free(tv->e);
	free(tv);
}

static uint64_t
ev_group_hash(vigil_type t, const vigil_value *g)
{
	return t == VIGIL_T_STR ? rules_hash_str(g->str, g->len) : rules_hash_num(g->num);
}

static tv_group *
ev_group_find(const tv_entry *e, vigil_type t, const vigil_value *g, uint64_t h)
{
	uint32_t mask, p;

	if (e->cap == 0)
		return NULL;
	mask = e->cap - 1;
	for (p = (uint32_t)h & mask;; p = (p + 1) & mask) {
		tv_group *x = &e->groups[p];

		if (!x->used)
			return NULL;
		if (x->h != h)
			continue;
		if (t == VIGIL_T_STR ? (x->key_len == g->len && memcmp(x->key_str, g->str, g->len) == 0)
		                     : x->key_num == (g->num == 0 ? 0 : g->num))
			return x;
	}
}

static vigil_err
ev_group_grow(tv_entry *e)
{
	uint32_t  ncap = e->cap ? e->cap * 2 : 16;
	tv_group *ng = calloc(ncap, sizeof *ng);

	if (ng == NULL)
		return VIGIL_ENOMEM;
	for (uint32_t k = 0; k < e->cap; k++) {
		uint32_t p;

		if (!e->groups[k].used)
			continue;
		for (p = (uint32_t)e->groups[k].h & (ncap - 1); ng[p].used; p = (p + 1) & (ncap - 1))
			;
		ng[p] = e->groups[k];
	}
	free(e->groups);
	e->groups = ng;
	e->cap = ncap;
	return VIGIL_OK;
}

vigil_err
rules_tvals_set(rules_tvals *tv, uint32_t i, const vigil_value *group, double value)
{
	const rules_threshold_info *ti;
	tv_entry                   *e;
	tv_group                   *x;
	uint64_t                    h;
	vigil_err                   rv;

	if (tv == NULL || i >= tv->n || !isfinite(value))
		return VIGIL_EINVAL;
	ti = &tv->prog->thresh[i];
	e = &tv->e[i];
	if (ti->kind == RULES_TUNE_CONST)
		return VIGIL_OK; /* a constant stays what the file says (stale tuned data is ignored) */
	if (group == NULL) {
		e->global = value;
		e->has_global = true;
		return VIGIL_OK;
	}
	if (ti->group_by == NULL || !group->present ||
	    (ti->group_type == VIGIL_T_STR && group->str == NULL && group->len > 0))
		return VIGIL_EINVAL;
	h = ev_group_hash(ti->group_type, group);
	x = ev_group_find(e, ti->group_type, group, h);
	if (x != NULL) {
		x->value = value;
		return VIGIL_OK;
	}
	if (e->count >= EV_MAX_GROUPS)
		return VIGIL_ETOOBIG;
	if (2 * (e->count + 1) > e->cap) {
		rv = ev_group_grow(e);
		if (rv != VIGIL_OK)
			return rv;
	}
	{
		uint32_t p = (uint32_t)h & (e->cap - 1);

		while (e->groups[p].used)
			p = (p + 1) & (e->cap - 1);
		x = &e->groups[p];
	}
	if (ti->group_type == VIGIL_T_STR) {
		x->key_str = malloc(group->len + 1);
		if (x->key_str == NULL)
			return VIGIL_ENOMEM;
		if (group->len > 0)
			memcpy(x->key_str, group->str, group->len);
		x->key_str[group->len] = '\0';
		x->key_len = group->len;
	} else {
		x->key_num = group->num == 0 ? 0 : group->num;
	}
	x->h = h;
	x->value = value;
	x->used = true;
	e->count++;
	return VIGIL_OK;
}

static double
ev_thresh(const rules_prog *prog, const rules_tvals *tv, const vigil_value *f, uint32_t i,
    rules_tval_src *ret_src)
{
	const rules_threshold_info *ti = &prog->thresh[i];
	const tv_entry             *e;

	*ret_src = RULES_TVAL_FALLBACK;
	if (tv == NULL)
		return ti->fallback;
	e = &tv->e[i];
	if (ti->group_by != NULL && f != NULL && f[ti->group_slot].present && e->count > 0) {
		const vigil_value *g = &f[ti->group_slot];
		const tv_group    *x = ev_group_find(e, ti->group_type, g, ev_group_hash(ti->group_type, g));

		if (x != NULL) {
			*ret_src = RULES_TVAL_GROUP;
			return x->value;
		}
	}
	if (e->has_global) {
		*ret_src = RULES_TVAL_GLOBAL;
		return e->global;
	}
	return ti->fallback;
}

/* ======================= Expressions ======================= */

/*
 * One evaluator per result type, so values travel in registers: numbers as
 * (present, double), strings as (present, bytes), bools three-valued
 * (EV_FALSE, EV_TRUE, EV_UNKNOWN). The operand helpers read feature and
 * constant leaves inline, without a call: most operands are leaves.
 */
enum { EV_FALSE = 0, EV_TRUE = 1, EV_UNKNOWN = 2 };

typedef struct ev_ctx {
	const rules_prog   *p;
	const rules_tvals  *tv;
	const vigil_value  *f;
} ev_ctx;

static bool ev_num(const ev_ctx *c, uint32_t i, double *ret);
static int  ev_bool(const ev_ctx *c, uint32_t i);
static bool ev_str(const ev_ctx *c, uint32_t i, const char **ret_s, uint32_t *ret_len);

static inline bool
ev_num_of(const ev_ctx *c, uint32_t i, double *ret)
{
	const rules_node *n = &c->p->nodes[i];

	if (n->op == OP_SLOT) {
		*ret = c->f[n->ix].num;
		return c->f[n->ix].present;
	}
	if (n->op == OP_CONST) {
		*ret = n->num;
		return true;
	}
	return ev_num(c, i, ret);
}

static inline bool
ev_str_of(const ev_ctx *c, uint32_t i, const char **ret_s, uint32_t *ret_len)
{
	const rules_node *n = &c->p->nodes[i];

	if (n->op == OP_SLOT) {
		*ret_s = c->f[n->ix].str;
		*ret_len = c->f[n->ix].len;
		return c->f[n->ix].present;
	}
	if (n->op == OP_CONST) {
		*ret_s = n->str;
		*ret_len = n->len;
		return true;
	}
	return ev_str(c, i, ret_s, ret_len);
}

static inline bool
ev_finite(double d, double *ret)
{
	/* a result that is not a finite number (overflow, 0/0) is missing */
	*ret = d;
	return isfinite(d);
}

/* Whether node i (of any type) has a value. */
static bool
ev_present(const ev_ctx *c, uint32_t i)
{
	double      d;
	const char *s;
	uint32_t    len;

	switch ((vigil_type)c->p->nodes[i].type) {
	case VIGIL_T_NUM: return ev_num_of(c, i, &d);
	case VIGIL_T_STR: return ev_str_of(c, i, &s, &len);
	case VIGIL_T_BOOL: return ev_bool(c, i) != EV_UNKNOWN;
	default: return false;
	}
}

static bool
ev_num(const ev_ctx *c, uint32_t i, double *ret)
{
	const rules_node *n = &c->p->nodes[i];
	double            a, b, x, y;
	rules_tval_src    src;

	switch ((rules_op)n->op) {
	case OP_CONST:
	case OP_SLOT:
		return ev_num_of(c, i, ret);
	case OP_THRESH:
		*ret = ev_thresh(c->p, c->tv, c->f, n->ix, &src);
		return true;
	case OP_NEG:
		if (!ev_num_of(c, n->kid[0], &a))
			return false;
		*ret = -a;
		return true;
	case OP_ADD:
	case OP_SUB:
	case OP_MUL:
	case OP_DIV:
	case OP_MOD:
		if (!ev_num_of(c, n->kid[0], &a) || !ev_num_of(c, n->kid[1], &b))
			return false;
		switch ((rules_op)n->op) {
		case OP_ADD: return ev_finite(a + b, ret);
		case OP_SUB: return ev_finite(a - b, ret);
		case OP_MUL: return ev_finite(a * b, ret);
		case OP_DIV: return b != 0 && ev_finite(a / b, ret);
		default: return b != 0 && ev_finite(fmod(a, b), ret);
		}
	case OP_COALESCE:
		return ev_num_of(c, n->kid[0], ret) || ev_num_of(c, n->kid[1], ret);
	case OP_MIN:
	case OP_MAX: {
		bool first = true;

		for (uint32_t k = n->kid[0]; k != RULES_NIL; k = c->p->nodes[k].next) {
			if (!ev_num_of(c, k, &a))
				return false;
			if (first || (n->op == OP_MIN ? a < b : a > b))
				b = a;
			first = false;
		}
		*ret = b;
		return true;
	}
	case OP_ABS:
	case OP_LOG:
	case OP_SQRT:
	case OP_FLOOR:
	case OP_HOUR:
	case OP_WEEKDAY:
		if (!ev_num_of(c, n->kid[0], &a))
			return false;
		switch ((rules_op)n->op) {
		case OP_ABS: *ret = fabs(a); return true;
		case OP_LOG: return a > 0 && ev_finite(log(a), ret);
		case OP_SQRT: return a >= 0 && ev_finite(sqrt(a), ret);
		case OP_FLOOR: *ret = floor(a); return true;
		case OP_HOUR: return ev_finite(floor((a - 86400.0 * floor(a / 86400.0)) / 3600.0), ret);
		default:
			/* ISO 8601: 1 = Monday ... 7 = Sunday; 1970-01-01 was a Thursday */
			a = floor(a / 86400.0);
			return ev_finite(fmod(fmod(a + 3, 7) + 7, 7) + 1, ret);
		}
	case OP_HAVERSINE:
		if (!ev_num_of(c, n->kid[0], &a) || !ev_num_of(c, n->kid[1], &b) ||
		    !ev_num_of(c, n->kid[2], &x) || !ev_num_of(c, n->kid[3], &y))
			return false;
		if (fabs(a) > 90 || fabs(x) > 90 || fabs(b) > 180 || fabs(y) > 180)
			return false;
		return ev_finite(vigil_haversine_km(a, b, x, y), ret);
	default:
		return false; /* not a number node: cannot happen in a checked program */
	}
}

static bool
ev_str(const ev_ctx *c, uint32_t i, const char **ret_s, uint32_t *ret_len)
{
	const rules_node *n = &c->p->nodes[i];

	switch ((rules_op)n->op) {
	case OP_CONST:
	case OP_SLOT:
		return ev_str_of(c, i, ret_s, ret_len);
	case OP_COALESCE:
		return ev_str_of(c, n->kid[0], ret_s, ret_len) || ev_str_of(c, n->kid[1], ret_s, ret_len);
	default:
		return false;
	}
}

static int
ev_cmp_num(const ev_ctx *c, const rules_node *n)
{
	double a, b;

	if (!ev_num_of(c, n->kid[0], &a) || !ev_num_of(c, n->kid[1], &b))
		return EV_UNKNOWN;
	switch ((rules_op)n->op) {
	case OP_LT: return a < b;
	case OP_LE: return a <= b;
	case OP_GT: return a > b;
	case OP_GE: return a >= b;
	case OP_EQ: return a == b;
	default: return a != b;
	}
}

static int
ev_eq(const ev_ctx *c, const rules_node *n)
{
	const char *s1, *s2;
	uint32_t    l1, l2;
	int         a, b;

	switch ((vigil_type)n->ix) {
	case VIGIL_T_NUM:
		return ev_cmp_num(c, n);
	case VIGIL_T_STR:
		/* length, then bytes: cheaper than hashing for a single comparison */
		if (!ev_str_of(c, n->kid[0], &s1, &l1) || !ev_str_of(c, n->kid[1], &s2, &l2))
			return EV_UNKNOWN;
		a = l1 == l2 && (l1 == 0 || memcmp(s1, s2, l1) == 0);
		return n->op == OP_EQ ? a : !a;
	default:
		a = ev_bool(c, n->kid[0]);
		b = ev_bool(c, n->kid[1]);
		if (a == EV_UNKNOWN || b == EV_UNKNOWN)
			return EV_UNKNOWN;
		return n->op == OP_EQ ? a == b : a != b;
	}
}

static int
ev_in(const ev_ctx *c, const rules_node *n)
{
	const rules_list *l = &c->p->lists[c->p->nodes[n->kid[1]].ix];
	const char       *s;
	uint32_t          len;
	double            d;
	bool              in;

	if (l->kind == RULES_LIST_NUMBER) {
		if (!ev_num_of(c, n->kid[0], &d))
			return EV_UNKNOWN;
		in = rules_list_has_num(l, d);
	} else {
		if (!ev_str_of(c, n->kid[0], &s, &len))
			return EV_UNKNOWN;
		in = l->kind == RULES_LIST_PREFIX ? rules_list_has_prefix(l, s, len)
		                                  : rules_list_has_str(l, s, len);
	}
	return n->op == OP_IN ? in : !in;
}

/* Comparisons are most of a condition's leaves' parents: reach them with a
 * direct call instead of the dispatch of ev_bool. */
static inline int
ev_bool_of(const ev_ctx *c, uint32_t i)
{
	const rules_node *n = &c->p->nodes[i];

	if (n->op >= OP_LT && n->op <= OP_GE)
		return ev_cmp_num(c, n);
	return ev_bool(c, i);
}

static int
ev_bool(const ev_ctx *c, uint32_t i)
{
	const rules_node *n = &c->p->nodes[i];
	const char       *s1, *s2;
	uint32_t          l1, l2;
	double            a, b, x;
	int               u, v;

	switch ((rules_op)n->op) {
	case OP_CONST:
		return n->num != 0;
	case OP_SLOT:
		return c->f[n->ix].present ? c->f[n->ix].num != 0 : EV_UNKNOWN;
	case OP_LT:
	case OP_LE:
	case OP_GT:
	case OP_GE:
		return ev_cmp_num(c, n);
	case OP_EQ:
	case OP_NE:
		return ev_eq(c, n);
	case OP_BETWEEN:
		if (!ev_num_of(c, n->kid[0], &x) || !ev_num_of(c, n->kid[1], &a) || !ev_num_of(c, n->kid[2], &b))
			return EV_UNKNOWN;
		return x >= a && x <= b;
	case OP_IN:
	case OP_NOTIN:
		return ev_in(c, n);
	case OP_AND:
		/* Kleene: false wins over unknown; unknown wins over true */
		u = ev_bool_of(c, n->kid[0]);
		if (u == EV_FALSE)
			return EV_FALSE;
		v = ev_bool_of(c, n->kid[1]);
		if (v == EV_FALSE)
			return EV_FALSE;
		return u == EV_TRUE && v == EV_TRUE ? EV_TRUE : EV_UNKNOWN;
	case OP_OR:
		/* Kleene: true wins over unknown; unknown wins over false */
		u = ev_bool_of(c, n->kid[0]);
		if (u == EV_TRUE)
			return EV_TRUE;
		v = ev_bool_of(c, n->kid[1]);
		if (v == EV_TRUE)
			return EV_TRUE;
		return u == EV_FALSE && v == EV_FALSE ? EV_FALSE : EV_UNKNOWN;
	case OP_NOT:
		u = ev_bool_of(c, n->kid[0]);
		return u == EV_UNKNOWN ? EV_UNKNOWN : !u;
	case OP_ISMISSING:
		return !ev_present(c, n->kid[0]);
	case OP_PRESENT:
		return ev_present(c, n->kid[0]);
	case OP_COALESCE:
		u = ev_bool(c, n->kid[0]);
		return u != EV_UNKNOWN ? u : ev_bool(c, n->kid[1]);
	case OP_STARTS_WITH:
		if (!ev_str_of(c, n->kid[0], &s1, &l1) || !ev_str_of(c, n->kid[1], &s2, &l2))
			return EV_UNKNOWN;
		return l2 <= l1 && (l2 == 0 || memcmp(s1, s2, l2) == 0);
	case OP_STARTS_WITH_LIST:
		if (!ev_str_of(c, n->kid[0], &s1, &l1))
			return EV_UNKNOWN;
		return rules_list_has_prefix(&c->p->lists[c->p->nodes[n->kid[1]].ix], s1, l1);
	default:
		return EV_UNKNOWN; /* not a bool node: cannot happen in a checked program */
	}
}

/*
 * Whether node i is TRUE (ev_is) or FALSE (ev_is_not), for a caller that
 * needs no more than that: a rule fires only when its condition is TRUE.
 * By Kleene's tables, "a and b" is TRUE iff both are TRUE and FALSE iff one
 * is FALSE; "a or b" the other way round; "not a" is TRUE iff a is FALSE. So
 * these stop at the first operand that settles it, where ev_bool must go on
 * to tell FALSE from UNKNOWN (a missing feature on the left of an "and"
 * still makes ev_bool evaluate the right). Comparisons of numbers are done
 * inline. Same values as ev_bool, fewer steps: evaluation has no effects.
 */
static bool ev_is_not(const ev_ctx *c, uint32_t i);

/* A numeric comparison node: 1 TRUE, 0 FALSE, -1 UNKNOWN (a side missing). */
static inline int
ev_cmp_known(const ev_ctx *c, const rules_node *n)
{
	double a, b;

	if (!ev_num_of(c, n->kid[0], &a) || !ev_num_of(c, n->kid[1], &b))
		return -1;
	switch ((rules_op)n->op) {
	case OP_LT: return a < b;
	case OP_LE: return a <= b;
	case OP_GT: return a > b;
	default: return a >= b;
	}
}

static bool
ev_is(const ev_ctx *c, uint32_t i)
{
	const rules_node *n = &c->p->nodes[i];

	switch ((rules_op)n->op) {
	case OP_LT:
	case OP_LE:
	case OP_GT:
	case OP_GE:
		return ev_cmp_known(c, n) == 1;
	case OP_AND:
		return ev_is(c, n->kid[0]) && ev_is(c, n->kid[1]);
	case OP_OR:
		return ev_is(c, n->kid[0]) || ev_is(c, n->kid[1]);
	case OP_NOT:
		return ev_is_not(c, n->kid[0]);
	default:
		return ev_bool(c, i) == EV_TRUE;
	}
}

static bool
ev_is_not(const ev_ctx *c, uint32_t i)
{
	const rules_node *n = &c->p->nodes[i];

	switch ((rules_op)n->op) {
	case OP_LT:
	case OP_LE:
	case OP_GT:
	case OP_GE:
		return ev_cmp_known(c, n) == 0;
	case OP_AND:
		return ev_is_not(c, n->kid[0]) || ev_is_not(c, n->kid[1]);
	case OP_OR:
		return ev_is_not(c, n->kid[0]) && ev_is_not(c, n->kid[1]);
	case OP_NOT:
		return ev_is(c, n->kid[0]);
	case OP_COALESCE:
		/* the first operand if it has a value, else the second */
		switch (ev_bool(c, n->kid[0])) {
		case EV_FALSE: return true;
		case EV_TRUE: return false;
		default: return ev_is_not(c, n->kid[1]);
		}
	default:
		return ev_bool(c, i) == EV_FALSE;
	}
}

vigil_value
rules_eval_node(const rules_prog *prog, const rules_tvals *tv, const vigil_value *f, uint32_t i)
{
	ev_ctx      c = { prog, tv, f };
	vigil_value v = vigil_value_missing();
	int         b;

	switch ((vigil_type)prog->nodes[i].type) {
	case VIGIL_T_NUM:
		v.present = ev_num_of(&c, i, &v.num);
		break;
	case VIGIL_T_STR:
		v.present = ev_str_of(&c, i, &v.str, &v.len);
		break;
	case VIGIL_T_BOOL:
		b = ev_bool(&c, i);
		if (b != EV_UNKNOWN)
			v = vigil_value_bool(b == EV_TRUE);
		break;
	default:
		break;
	}
	if (!v.present)
		v = vigil_value_missing();
	return v;
}

/* ======================= Programs ======================= */

/* A comparison's operand that is a constant: a literal or a constant
 * threshold (whose value is always its fallback: tuned values are never
 * stored for it, rules_tvals_set). */
static bool
ev_const_operand(const rules_prog *prog, uint32_t i, double *ret)
{
	const rules_node *n = &prog->nodes[i];

	if (n->op == OP_CONST && n->type == VIGIL_T_NUM) {
		*ret = n->num;
		return true;
	}
	if (n->op == OP_THRESH && prog->thresh[n->ix].kind == RULES_TUNE_CONST) {
		*ret = prog->thresh[n->ix].fallback;
		return true;
	}
	return false;
}

static bool
ev_num_slot(const rules_prog *prog, uint32_t i)
{
	const rules_node *n = &prog->nodes[i];

	return n->op == OP_SLOT && n->type == VIGIL_T_NUM;
}

/* One operand of a top-level "and" as a term. */
static void
ev_term(const rules_prog *prog, uint32_t i, rules_term *t)
{
	const rules_node *n = &prog->nodes[i];

	memset(t, 0, sizeof *t);
	t->kind = RULES_TERM_NODE;
	t->ix = i;
	if (n->op >= OP_LT && n->op <= OP_GE) {
		/* k < x is x > k: the same for every x, NaN included */
		uint8_t flip = n->op == OP_LT ? OP_GT : n->op == OP_LE ? OP_GE : n->op == OP_GT ? OP_LT : OP_LE;

		if (ev_num_slot(prog, n->kid[0]) && ev_const_operand(prog, n->kid[1], &t->k)) {
			t->kind = RULES_TERM_CMP;
			t->op = n->op;
			t->ix = prog->nodes[n->kid[0]].ix;
		} else if (ev_const_operand(prog, n->kid[0], &t->k) && ev_num_slot(prog, n->kid[1])) {
			t->kind = RULES_TERM_CMP;
			t->op = flip;
			t->ix = prog->nodes[n->kid[1]].ix;
		} else if (ev_num_slot(prog, n->kid[0]) && prog->nodes[n->kid[1]].op == OP_THRESH) {
			/* a threshold always has a value (ev_num) */
			t->kind = RULES_TERM_CMP_THRESH;
			t->op = n->op;
			t->ix = prog->nodes[n->kid[0]].ix;
			t->th = prog->nodes[n->kid[1]].ix;
		} else if (prog->nodes[n->kid[0]].op == OP_THRESH && ev_num_slot(prog, n->kid[1])) {
			t->kind = RULES_TERM_CMP_THRESH;
			t->op = flip;
			t->ix = prog->nodes[n->kid[1]].ix;
			t->th = prog->nodes[n->kid[0]].ix;
		}
	} else if (n->op == OP_IN || n->op == OP_NOTIN) {
		const rules_node *a = &prog->nodes[n->kid[0]];
		const rules_list *l = &prog->lists[prog->nodes[n->kid[1]].ix];

		/* the checker made the slot's type the list's */
		if (a->op == OP_SLOT && a->type == (l->kind == RULES_LIST_NUMBER ? VIGIL_T_NUM
		                                                             : VIGIL_T_STR)) {
			t->kind = RULES_TERM_IN;
			t->op = n->op;
			t->ix = a->ix;
			t->li = prog->nodes[n->kid[1]].ix;
		}
	} else if (n->op == OP_NOT) {
		const rules_node *co = &prog->nodes[n->kid[0]];

		if (co->op == OP_COALESCE && co->type == VIGIL_T_BOOL) {
			const rules_node *a = &prog->nodes[co->kid[0]], *b = &prog->nodes[co->kid[1]];

			if (a->op == OP_SLOT && a->type == VIGIL_T_BOOL && b->op == OP_CONST) {
				/* ev_is_not of the coalesce: the slot's value if present,
				 * else the constant's */
				t->kind = RULES_TERM_NOT_COAL;
				t->ix = a->ix;
				t->dflt = b->num == 0;
			}
		}
	}
}

static uint32_t
ev_count_terms(const rules_prog *prog, uint32_t i)
{
	const rules_node *n = &prog->nodes[i];

	if (n->op == OP_AND)
		return ev_count_terms(prog, n->kid[0]) + ev_count_terms(prog, n->kid[1]);
	return 1;
}

static void
ev_add_terms(rules_prog *prog, uint32_t i)
{
	const rules_node *n = &prog->nodes[i];

	if (n->op == OP_AND) {
		ev_add_terms(prog, n->kid[0]);
		ev_add_terms(prog, n->kid[1]);
		return;
	}
	ev_term(prog, i, &prog->terms[prog->nterms++]);
}

/* What a term costs, in order: two loads; a threshold lookup; a list
 * lookup (hashing); a tree walk. */
static int
ev_term_cost(const rules_term *t)
{
	switch ((rules_term_kind)t->kind) {
	case RULES_TERM_CMP:
	case RULES_TERM_NOT_COAL: return 0;
	case RULES_TERM_CMP_THRESH: return 1;
	case RULES_TERM_IN: return 2;
	default: return 3;
	}
}

/*
 * A rule's terms, cheapest first, terms of equal cost in source order (a
 * stable insertion sort): a rule stops at its first term that is not TRUE.
 * The order cannot change a result: terms have no effects, and the rule
 * fires iff all are TRUE.
 */
static void
ev_order_terms(rules_term *t, uint32_t n)
{
	for (uint32_t i = 1; i < n; i++) {
		rules_term x = t[i];
		uint32_t   k = i;

		for (; k > 0 && ev_term_cost(&t[k - 1]) > ev_term_cost(&x); k--)
			t[k] = t[k - 1];
		t[k] = x;
	}
}

vigil_err
rules_eval_prepare(rules_prog *prog)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < prog->nrules; i++)
		n += ev_count_terms(prog, prog->rules[i].cond);
	prog->erules = rules_arena_alloc(&prog->arena, (prog->nrules + 1) * sizeof *prog->erules);
	prog->terms = rules_arena_alloc(&prog->arena, ((size_t)n + 1) * sizeof *prog->terms);
	if (prog->erules == NULL || prog->terms == NULL)
		return VIGIL_ENOMEM;
	prog->nterms = 0;
	for (uint32_t i = 0; i < prog->nrules; i++) {
		rules_erule *e = &prog->erules[i];

		e->first = prog->nterms;
		ev_add_terms(prog, prog->rules[i].cond);
		e->n = prog->nterms - e->first;
		ev_order_terms(&prog->terms[e->first], e->n);
		e->points = prog->rules[i].info.points;
		e->mode = (uint8_t)prog->rules[i].info.mode;
		e->decide = (uint8_t)prog->rules[i].info.decide;
	}
	return VIGIL_OK;
}

/* Whether a rule's condition is TRUE: all of its terms are (Kleene "and"). */
static inline bool
ev_rule_is(const ev_ctx *c, const rules_erule *e)
{
	const rules_term *t = &c->p->terms[e->first], *end = t + e->n;

	for (; t < end; t++) {
		const vigil_value *f = &c->f[t->ix];

		switch ((rules_term_kind)t->kind) {
		case RULES_TERM_CMP:
			if (!f->present)
				return false;
			switch ((rules_op)t->op) {
			case OP_LT: if (!(f->num < t->k)) return false; break;
			case OP_LE: if (!(f->num <= t->k)) return false; break;
			case OP_GT: if (!(f->num > t->k)) return false; break;
			default: if (!(f->num >= t->k)) return false; break;
			}
			break;
		case RULES_TERM_NOT_COAL:
			if (!(f->present ? f->num == 0 : t->dflt))
				return false;
			break;
		case RULES_TERM_CMP_THRESH: {
			rules_tval_src src;
			double         k;

			if (!f->present)
				return false;
			k = ev_thresh(c->p, c->tv, c->f, t->th, &src);
			switch ((rules_op)t->op) {
			case OP_LT: if (!(f->num < k)) return false; break;
			case OP_LE: if (!(f->num <= k)) return false; break;
			case OP_GT: if (!(f->num > k)) return false; break;
			default: if (!(f->num >= k)) return false; break;
			}
			break;
		}
		case RULES_TERM_IN: {
			const rules_list *l = &c->p->lists[t->li];
			bool              in;

			if (!f->present)
				return false;
			in = l->kind == RULES_LIST_NUMBER ? rules_list_has_num(l, f->num)
			    : l->kind == RULES_LIST_PREFIX ? rules_list_has_prefix(l, f->str, f->len)
			                                   : rules_list_has_str(l, f->str, f->len);
			if (in != (t->op == OP_IN))
				return false;
			break;
		}
		default:
			if (!ev_is(c, t->ix))
				return false;
			break;
		}
	}
	return true;
}

static bool
ev_args_ok(const rules_prog *prog, const rules_tvals *tv, const vigil_value *features,
    uint32_t nfeatures)
{
	if (prog == NULL || (features == NULL && prog->nslots > 0) || nfeatures < prog->nslots)
		return false;
	return tv == NULL || tv->prog == prog;
}

/* A score within this of a band is at it: 100 x a probability is not
 * exact in binary (100 x 0.57 is 56.99999999999999), and docs/rules.md's
 * "band review = 40 reviews from a probability of 0.4" must hold at the
 * band itself. Points are whole numbers: unchanged. */
#define EV_BAND_EPS 1e-9

/* The band score falls in (res's bands), at least floor. */
static vigil_decision
ev_decide(const rules_result *res, double score, vigil_decision floor)
{
	vigil_decision d = score >= res->decline_at - EV_BAND_EPS ? VIGIL_DECISION_DECLINE
	    : score >= res->review_at - EV_BAND_EPS               ? VIGIL_DECISION_REVIEW
	                                                          : VIGIL_DECISION_ALLOW;

	return d > floor ? d : floor;
}

/* The bands into res: a number, or a threshold's value (tuned or its
 * fallback); decline is never below review. */
static void
ev_bands(const rules_prog *prog, const rules_tvals *tv, rules_result *res)
{
	rules_tval_src src;

	res->review_at = prog->review_thr != UINT32_MAX ?
	    ev_thresh(prog, tv, NULL, prog->review_thr, &src) : prog->review_at;
	res->decline_at = prog->decline_thr != UINT32_MAX ?
	    ev_thresh(prog, tv, NULL, prog->decline_thr, &src) : prog->decline_at;
	if (res->decline_at < res->review_at)
		res->decline_at = res->review_at;
}

void
rules_prog_bands_in_force(const rules_prog *prog, const rules_tvals *tv, double *ret_review_at,
    double *ret_decline_at)
{
	rules_result res;

	ev_bands(prog, tv, &res);
	*ret_review_at = res.review_at;
	*ret_decline_at = res.decline_at;
}

static double
ev_clamp(double v, double lo, double hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

void
rules_result_model(const rules_prog *prog, double p, rules_result *res)
{
	double adj = prog->adjust_max;

	if (isnan(p))
		return;
	res->score = ev_clamp(100.0 * p + ev_clamp(res->points, -adj, adj), 0, 100);
	res->decision = ev_decide(res, res->score, res->floor);
}

vigil_err
rules_prog_eval(const rules_prog *prog, const rules_tvals *tv, const vigil_value *features,
    uint32_t nfeatures, rules_result *ret_result)
{
	int32_t  score = 0, shadow = 0;
	uint8_t  floor = VIGIL_DECISION_ALLOW;
	uint32_t nhits = 0, nshadow = 0;
	ev_ctx   c = { prog, tv, features };

	if (!ev_args_ok(prog, tv, features, nfeatures) || ret_result == NULL)
		return VIGIL_EINVAL;
	for (uint32_t i = 0; i < prog->nrules; i++) {
		const rules_erule *r = &prog->erules[i];

		if (r->mode == RULES_MODE_DISABLED)
			continue;
		if (!ev_rule_is(&c, r))
			continue;
		if (r->mode == RULES_MODE_ACTIVE) {
			score += r->points;
			if (r->decide > floor)
				floor = r->decide;
			ret_result->hits[nhits++] = (uint16_t)i;
		} else {
			shadow += r->points;
			ret_result->shadow[nshadow++] = (uint16_t)i;
		}
	}
	ret_result->points = score;
	ret_result->score = ev_clamp(score, 0, 100);
	ret_result->shadow_score = shadow;
	ret_result->floor = (vigil_decision)floor;
	ret_result->nhits = nhits;
	ret_result->nshadow = nshadow;
	ev_bands(prog, tv, ret_result);
	ret_result->decision = ev_decide(ret_result, ret_result->score, ret_result->floor);
	return VIGIL_OK;
}

const char *
rules_outcome_name(rules_outcome o)
{
	switch (o) {
	case RULES_OUTCOME_FALSE: return "false";
	case RULES_OUTCOME_TRUE: return "true";
	case RULES_OUTCOME_UNKNOWN: return "unknown";
	}
	return "?";
}

vigil_err
rules_prog_rule_eval(const rules_prog *prog, const rules_tvals *tv, const vigil_value *features,
    uint32_t nfeatures, uint32_t i, rules_outcome *ret_outcome)
{
	vigil_value v;

	if (!ev_args_ok(prog, tv, features, nfeatures) || i >= prog->nrules || ret_outcome == NULL)
		return VIGIL_EINVAL;
	v = rules_eval_node(prog, tv, features, prog->rules[i].cond);
	*ret_outcome = !v.present ? RULES_OUTCOME_UNKNOWN : v.num != 0 ? RULES_OUTCOME_TRUE
	                                                               : RULES_OUTCOME_FALSE;
	return VIGIL_OK;
}

const char *
rules_tval_src_name(rules_tval_src src)
{
	switch (src) {
	case RULES_TVAL_FALLBACK: return "fallback";
	case RULES_TVAL_GLOBAL: return "global";
	case RULES_TVAL_GROUP: return "group";
	}
	return "?";
}

vigil_err
rules_tvals_value(const rules_prog *prog, const rules_tvals *tv, uint32_t i,
    const vigil_value *features, uint32_t nfeatures, double *ret_value, rules_tval_src *ret_src)
{
	rules_tval_src src;
	double         v;

	if (!ev_args_ok(prog, tv, features, nfeatures) || i >= prog->nthresh || ret_value == NULL)
		return VIGIL_EINVAL;
	v = ev_thresh(prog, tv, features, i, &src);
	*ret_value = v;
	if (ret_src != NULL)
		*ret_src = src;
	return VIGIL_OK;
}

/* ======================= Explain (text) ======================= */

static void
ev_print_value(FILE *out, vigil_type t, const vigil_value *v)
{
	if (!v->present)
		fputs("missing", out);
	else if (t == VIGIL_T_STR)
		fprintf(out, "\"%.*s\"", (int)v->len, v->str);
	else if (t == VIGIL_T_BOOL)
		fputs(v->num != 0 ? "true" : "false", out);
	else
		fprintf(out, "%.17g", v->num);
}

void
rules_explain_print(const rules_prog *prog, const rules_tvals *tv, const vigil_value *features,
    uint32_t nfeatures, FILE *out)
{
	rules_result *res = NULL;
	rules_read    reads[32];

	if (!ev_args_ok(prog, tv, features, nfeatures)) {
		fputs("explain: feature vector shorter than the schema\n", out);
		return;
	}
	res = malloc(sizeof *res);
	if (res == NULL) {
		fputs("explain: out of memory\n", out);
		return;
	}
	rules_prog_eval(prog, tv, features, nfeatures, res);
	fprintf(out, "decision: %s  score: %.6g  points: %d  (review at %.6g, decline at %.6g)  "
	    "shadow score: %d\n", vigil_decision_name(res->decision), res->score, res->points,
	    res->review_at, res->decline_at, res->shadow_score);
	fprintf(out, "rules: version \"%s\", hash %s\n", prog->version, prog->hash);
	for (uint32_t i = 0; i < prog->nrules; i++) {
		const rules_crule *r = &prog->rules[i];
		rules_outcome      o;
		uint32_t           n;

		rules_prog_rule_eval(prog, tv, features, nfeatures, i, &o);
		/* a disabled rule never fires; show what its condition gives anyway */
		fprintf(out, "\n%-7s %s  (%+d, %s%s%s)\n",
		    r->info.mode == RULES_MODE_DISABLED ? "off"
		    : o == RULES_OUTCOME_TRUE           ? "FIRED"
		    : o == RULES_OUTCOME_UNKNOWN        ? "unknown"
		                                        : "-",
		    r->info.name, r->info.points, rules_mode_name(r->info.mode),
		    r->info.mode == RULES_MODE_DISABLED ? ", condition " : "",
		    r->info.mode == RULES_MODE_DISABLED ? rules_outcome_name(o) : "");
		if (o == RULES_OUTCOME_TRUE && r->info.mode != RULES_MODE_DISABLED)
			fprintf(out, "        reason: %s\n", r->info.reason);
		fprintf(out, "        when %s\n", r->cond_text);
		n = rules_prog_rule_reads(prog, i, reads, 32);
		for (uint32_t k = 0; k < n && k < 32; k++) {
			fprintf(out, "          %s = ", reads[k].name);
			if (reads[k].threshold) {
				rules_tval_src src;
				double         v = ev_thresh(prog, tv, features, reads[k].index, &src);

				fprintf(out, "%.17g (threshold, %s)", v, rules_tval_src_name(src));
			} else {
				ev_print_value(out, reads[k].type, &features[reads[k].index]);
			}
			fputc('\n', out);
		}
	}
	free(res);
}
