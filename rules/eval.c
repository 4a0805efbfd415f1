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

static inline vigil_value
ev_num(double d)
{
	/* a result that is not a finite number (overflow, 0/0) is missing */
	return isfinite(d) ? vigil_value_num(d) : vigil_value_missing();
}

static inline vigil_value
ev_bool(bool b)
{
	return vigil_value_bool(b);
}

static bool
ev_eq(const vigil_value *a, const vigil_value *b, uint32_t type)
{
	/* strings: length then bytes; a constant's length check rejects most
	 * non-matches before memcmp (a hash would cost more than it saves) */
	if (type == VIGIL_T_STR)
		return a->len == b->len && (a->len == 0 || memcmp(a->str, b->str, a->len) == 0);
	return a->num == b->num;
}

static bool
ev_in(const rules_list *l, const vigil_value *v)
{
	switch (l->kind) {
	case RULES_LIST_NUMBER: return rules_list_has_num(l, v->num);
	case RULES_LIST_PREFIX: return rules_list_has_prefix(l, v->str, v->len);
	case RULES_LIST_STRING: return rules_list_has_str(l, v->str, v->len);
	}
	return false;
}

vigil_value
rules_eval_node(const rules_prog *prog, const rules_tvals *tv, const vigil_value *f, uint32_t i)
{
	const rules_node *nd = &prog->nodes[i];
	vigil_value       a, b, c;
	rules_tval_src    src;

	switch ((rules_op)nd->op) {
	case OP_CONST:
		a.num = nd->num;
		a.str = nd->str;
		a.len = nd->len;
		a.present = true;
		return a;
	case OP_SLOT:
		return f[nd->ix];
	case OP_THRESH:
		return vigil_value_num(ev_thresh(prog, tv, f, nd->ix, &src));
	case OP_NEG:
		a = rules_eval_node(prog, tv, f, nd->kid[0]);
		return a.present ? ev_num(-a.num) : a;
	case OP_ADD:
	case OP_SUB:
	case OP_MUL:
	case OP_DIV:
	case OP_MOD:
		a = rules_eval_node(prog, tv, f, nd->kid[0]);
		b = rules_eval_node(prog, tv, f, nd->kid[1]);
		if (!a.present || !b.present)
			return vigil_value_missing();
		switch ((rules_op)nd->op) {
		case OP_ADD: return ev_num(a.num + b.num);
		case OP_SUB: return ev_num(a.num - b.num);
		case OP_MUL: return ev_num(a.num * b.num);
		case OP_DIV: return b.num == 0 ? vigil_value_missing() : ev_num(a.num / b.num);
		default: return b.num == 0 ? vigil_value_missing() : ev_num(fmod(a.num, b.num));
		}
	case OP_LT:
	case OP_LE:
	case OP_GT:
	case OP_GE:
	case OP_EQ:
	case OP_NE:
		a = rules_eval_node(prog, tv, f, nd->kid[0]);
		b = rules_eval_node(prog, tv, f, nd->kid[1]);
		if (!a.present || !b.present)
			return vigil_value_missing();
		switch ((rules_op)nd->op) {
		case OP_LT: return ev_bool(a.num < b.num);
		case OP_LE: return ev_bool(a.num <= b.num);
		case OP_GT: return ev_bool(a.num > b.num);
		case OP_GE: return ev_bool(a.num >= b.num);
		case OP_EQ: return ev_bool(ev_eq(&a, &b, nd->ix));
		default: return ev_bool(!ev_eq(&a, &b, nd->ix));
		}
	case OP_BETWEEN:
		a = rules_eval_node(prog, tv, f, nd->kid[0]);
		b = rules_eval_node(prog, tv, f, nd->kid[1]);
		c = rules_eval_node(prog, tv, f, nd->kid[2]);
		if (!a.present || !b.present || !c.present)
			return vigil_value_missing();
		return ev_bool(a.num >= b.num && a.num <= c.num);
	case OP_IN:
	case OP_NOTIN:
		a = rules_eval_node(prog, tv, f, nd->kid[0]);
		if (!a.present)
			return a;
		return ev_bool(ev_in(&prog->lists[prog->nodes[nd->kid[1]].ix], &a) == (nd->op == OP_IN));
	case OP_AND:
		/* Kleene: false wins over unknown; unknown wins over true */
		a = rules_eval_node(prog, tv, f, nd->kid[0]);
		if (a.present && a.num == 0)
			return a;
		b = rules_eval_node(prog, tv, f, nd->kid[1]);
		if (b.present && b.num == 0)
			return b;
		return a.present && b.present ? ev_bool(true) : vigil_value_missing();
	case OP_OR:
		/* Kleene: true wins over unknown; unknown wins over false */
		a = rules_eval_node(prog, tv, f, nd->kid[0]);
		if (a.present && a.num != 0)
			return a;
		b = rules_eval_node(prog, tv, f, nd->kid[1]);
		if (b.present && b.num != 0)
			return b;
		return a.present && b.present ? ev_bool(false) : vigil_value_missing();
	case OP_NOT:
		a = rules_eval_node(prog, tv, f, nd->kid[0]);
		return a.present ? ev_bool(a.num == 0) : a;
	case OP_ISMISSING:
		a = rules_eval_node(prog, tv, f, nd->kid[0]);
		return ev_bool(!a.present);
	case OP_PRESENT:
		a = rules_eval_node(prog, tv, f, nd->kid[0]);
		return ev_bool(a.present);
	case OP_COALESCE:
		a = rules_eval_node(prog, tv, f, nd->kid[0]);
		return a.present ? a : rules_eval_node(prog, tv, f, nd->kid[1]);
	case OP_MIN:
	case OP_MAX: {
		double acc = 0;
		bool   first = true;

		for (uint32_t k = nd->kid[0]; k != RULES_NIL; k = prog->nodes[k].next) {
			a = rules_eval_node(prog, tv, f, k);
			if (!a.present)
				return a;
			if (first || (nd->op == OP_MIN ? a.num < acc : a.num > acc))
				acc = a.num;
			first = false;
		}
		return ev_num(acc);
	}
	case OP_ABS:
	case OP_LOG:
	case OP_SQRT:
	case OP_FLOOR:
	case OP_HOUR:
	case OP_WEEKDAY:
		a = rules_eval_node(prog, tv, f, nd->kid[0]);
		if (!a.present)
			return a;
		switch ((rules_op)nd->op) {
		case OP_ABS: return ev_num(fabs(a.num));
		case OP_LOG: return a.num > 0 ? ev_num(log(a.num)) : vigil_value_missing();
		case OP_SQRT: return a.num >= 0 ? ev_num(sqrt(a.num)) : vigil_value_missing();
		case OP_FLOOR: return ev_num(floor(a.num));
		case OP_HOUR: return ev_num(floor((a.num - 86400.0 * floor(a.num / 86400.0)) / 3600.0));
		default: {
			/* ISO 8601: 1 = Monday ... 7 = Sunday; 1970-01-01 was a Thursday */
			double days = floor(a.num / 86400.0);

			return ev_num(fmod(fmod(days + 3, 7) + 7, 7) + 1);
		}
		}
	case OP_HAVERSINE: {
		vigil_value d;

		a = rules_eval_node(prog, tv, f, nd->kid[0]);
		b = rules_eval_node(prog, tv, f, nd->kid[1]);
		c = rules_eval_node(prog, tv, f, nd->kid[2]);
		d = rules_eval_node(prog, tv, f, nd->kid[3]);
		if (!a.present || !b.present || !c.present || !d.present)
			return vigil_value_missing();
		if (fabs(a.num) > 90 || fabs(c.num) > 90 || fabs(b.num) > 180 || fabs(d.num) > 180)
			return vigil_value_missing();
		return ev_num(vigil_haversine_km(a.num, b.num, c.num, d.num));
	}
	case OP_STARTS_WITH:
		a = rules_eval_node(prog, tv, f, nd->kid[0]);
		b = rules_eval_node(prog, tv, f, nd->kid[1]);
		if (!a.present || !b.present)
			return vigil_value_missing();
		return ev_bool(b.len <= a.len && (b.len == 0 || memcmp(a.str, b.str, b.len) == 0));
	case OP_STARTS_WITH_LIST:
		a = rules_eval_node(prog, tv, f, nd->kid[0]);
		if (!a.present)
			return a;
		return ev_bool(rules_list_has_prefix(&prog->lists[prog->nodes[nd->kid[1]].ix], a.str, a.len));
	case OP_NIL:
	case OP_NAME:
	case OP_CALL:
	case OP_LISTLIT:
	case OP_LIST:
	case OP_COUNT_:
		break;
	}
	return vigil_value_missing(); /* not reached for a checked program */
}

/* ======================= Programs ======================= */

static bool
ev_args_ok(const rules_prog *prog, const rules_tvals *tv, const vigil_value *features,
    uint32_t nfeatures)
{
	if (prog == NULL || (features == NULL && prog->nslots > 0) || nfeatures < prog->nslots)
		return false;
	return tv == NULL || tv->prog == prog;
}

vigil_err
rules_prog_eval(const rules_prog *prog, const rules_tvals *tv, const vigil_value *features,
    uint32_t nfeatures, rules_result *ret_result)
{
	int32_t  score = 0, shadow = 0;
	uint32_t nhits = 0, nshadow = 0;

	if (!ev_args_ok(prog, tv, features, nfeatures) || ret_result == NULL)
		return VIGIL_EINVAL;
	for (uint32_t i = 0; i < prog->nrules; i++) {
		const rules_crule *r = &prog->rules[i];
		vigil_value        v;

		if (r->info.mode == RULES_MODE_DISABLED)
			continue;
		v = rules_eval_node(prog, tv, features, r->cond);
		if (!v.present || v.num == 0)
			continue;
		if (r->info.mode == RULES_MODE_ACTIVE) {
			score += r->info.points;
			ret_result->hits[nhits++] = (uint16_t)i;
		} else {
			shadow += r->info.points;
			ret_result->shadow[nshadow++] = (uint16_t)i;
		}
	}
	ret_result->score = score;
	ret_result->shadow_score = shadow;
	ret_result->nhits = nhits;
	ret_result->nshadow = nshadow;
	ret_result->decision = score >= prog->decline_at ? VIGIL_DECISION_DECLINE
	    : score >= prog->review_at                   ? VIGIL_DECISION_REVIEW
	                                                 : VIGIL_DECISION_ALLOW;
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
	fprintf(out, "decision: %s  score: %d  (review at %d, decline at %d)  shadow score: %d\n",
	    vigil_decision_name(res->decision), res->score, prog->review_at, prog->decline_at,
	    res->shadow_score);
	fprintf(out, "rules: version \"%s\", hash %s\n", prog->version, prog->hash);
	for (uint32_t i = 0; i < prog->nrules; i++) {
		const rules_crule *r = &prog->rules[i];
		rules_outcome      o;
		uint32_t           n;

		rules_prog_rule_eval(prog, tv, features, nfeatures, i, &o);
		fprintf(out, "\n%-7s %s  (%+d, %s)\n",
		    o == RULES_OUTCOME_TRUE ? "FIRED" : o == RULES_OUTCOME_UNKNOWN ? "unknown" : "-",
		    r->info.name, r->info.points, rules_mode_name(r->info.mode));
		if (o == RULES_OUTCOME_TRUE)
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
