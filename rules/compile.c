/* SPDX-License-Identifier: MIT */
/*
 * rules/compile.c - the front door of the library: the feature schema,
 * rules_compile / rules_load_file driving lex -> parse -> check (errors
 * reported through diag.c, strings kept in arena.c's arena), and the
 * read-only introspection of a compiled program. Everything a prog owns
 * lives in its arena plus the node array and list tables, freed at once.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "hashtab.h"
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include "file.h"
#include "int.h"
#include "vec.h"

/* ======================= Schema ======================= */

typedef struct schema_ent {
	rules_field    f;
	UT_hash_handle hh;
} schema_ent;

struct rules_schema {
	schema_ent  *by_name; /* uthash on f.name */
	vigil_vec    all;     /* schema_ent *, insertion order */
	uint32_t     nslots;
};

/* Fields of a schema: one a slot at most, and slots are under 2^24. */
#define SCHEMA_MAX_FIELDS (1u << 24)

static schema_ent *
schema_at(const rules_schema *schema, uint32_t i)
{
	return ((schema_ent **)schema->all.data)[i];
}

rules_schema *
rules_schema_new(void)
{
	rules_schema *schema = calloc(1, sizeof(rules_schema));

	if (schema != NULL)
		vigil_vec_init(&schema->all, sizeof(schema_ent *), SCHEMA_MAX_FIELDS);
	return schema;
}

void
rules_schema_free(rules_schema *schema)
{
	if (schema == NULL)
		return;
	HASH_CLEAR(hh, schema->by_name);
	for (uint32_t i = 0; i < schema->all.len; i++) {
		free((char *)schema_at(schema, i)->f.name);
		free(schema_at(schema, i));
	}
	vigil_vec_fini(&schema->all);
	free(schema);
}

vigil_err
rules_schema_add(rules_schema *schema, const char *name, vigil_type type, uint32_t slot)
{
	schema_ent *e = NULL;
	size_t      len;
	vigil_err   rv = VIGIL_OK;

	if (schema == NULL || name == NULL || (len = strlen(name)) == 0 || len > RULES_MAX_NAME ||
	    (type != VIGIL_T_NUM && type != VIGIL_T_STR && type != VIGIL_T_BOOL) ||
	    slot >= (1u << 24))
		return VIGIL_EINVAL;
	if (rules_schema_lookup(schema, name, len) != NULL)
		return VIGIL_EEXIST;
	rv = vigil_vec_reserve(&schema->all, 1); /* the push below cannot fail */
	if (rv != VIGIL_OK)
		return rv;
	e = calloc(1, sizeof *e);
	if (e == NULL) {
		rv = VIGIL_ENOMEM;
		goto out;
	}
	e->f.name = strdup(name);
	if (e->f.name == NULL) {
		rv = VIGIL_ENOMEM;
		goto out;
	}
	e->f.type = type;
	e->f.slot = slot;
	HASH_ADD_KEYPTR(hh, schema->by_name, e->f.name, len, e);
	if (!VIGIL_HASH_ADDED(e)) {
		free((char *)e->f.name);
		rv = VIGIL_ENOMEM;
		goto out;
	}
	(void)vigil_vec_push(&schema->all, &e);
	if (slot + 1 > schema->nslots)
		schema->nslots = slot + 1;
	e = NULL;
out:
	free(e);
	return rv;
}

uint32_t
rules_schema_nslots(const rules_schema *schema)
{
	return schema != NULL ? schema->nslots : 0;
}

const rules_field *
rules_schema_lookup(const rules_schema *schema, const char *name, size_t len)
{
	schema_ent *e = NULL;

	HASH_FIND(hh, schema->by_name, name, len, e);
	return e != NULL ? &e->f : NULL;
}

uint32_t
rules_schema_count(const rules_schema *schema)
{
	return (uint32_t)schema->all.len;
}

const rules_field *
rules_schema_at(const rules_schema *schema, uint32_t i)
{
	return i < schema->all.len ? &schema_at(schema, i)->f : NULL;
}

/* ======================= Compile ======================= */

static rules_opts
compile_opts(const rules_opts *opts)
{
	rules_opts o = { 0 };

	if (opts != NULL)
		o = *opts;
	if (o.base_dir == NULL)
		o.base_dir = ".";
	if (o.max_file_bytes == 0)
		o.max_file_bytes = 1u << 20;
	if (o.max_rules == 0 || o.max_rules > RULES_MAX_RULES)
		o.max_rules = o.max_rules == 0 ? 1000 : RULES_MAX_RULES;
	if (o.max_list_items == 0)
		o.max_list_items = 1000000;
	if (o.max_depth == 0)
		o.max_depth = 64;
	if (o.max_depth > 256)
		o.max_depth = 256; /* parse and eval recurse this deep: keep stacks small */
	if (o.max_rule_nodes == 0)
		o.max_rule_nodes = RULES_DEFAULT_RULE_NODES;
	if (o.max_file_nodes == 0)
		o.max_file_nodes = RULES_DEFAULT_FILE_NODES;
	return o;
}

/* int.h */
void
rules_hash_part(void *hs, const void *data, size_t len)
{
	uint8_t n[8];

	for (int i = 0; i < 8; i++)
		n[i] = (uint8_t)((uint64_t)len >> (8 * i));
	XXH3_128bits_update(hs, n, sizeof n);
	if (len > 0)
		XXH3_128bits_update(hs, data, len);
}

vigil_err
rules_compile(const char *name, const char *src, size_t len, const rules_schema *schema,
    const rules_opts *opts, rules_prog **ret_prog, rules_diags *reterr_diags)
{
	rules_opts       o = compile_opts(opts);
	rules_diag_sink *sink = NULL;
	rules_tok       *toks = NULL;
	uint32_t         ntoks = 0;
	rules_ast        ast = { 0 };
	rules_prog      *prog = NULL;
	XXH3_state_t    *hs = NULL;
	vigil_err        rv;

	if (src == NULL && len > 0)
		return VIGIL_EINVAL;
	if (schema == NULL || ret_prog == NULL)
		return VIGIL_EINVAL;
	if (len > o.max_file_bytes) {
		rules_diag_file(reterr_diags, name, "file is %zu bytes, over the limit of %zu",
		    len, o.max_file_bytes);
		return VIGIL_ETOOBIG;
	}
	sink = calloc(1, sizeof *sink);
	prog = calloc(1, sizeof *prog);
	hs = XXH3_createState();
	if (sink == NULL || prog == NULL || hs == NULL) {
		rv = VIGIL_ENOMEM;
		goto fail_nodiag;
	}
	sink->src = src;
	sink->len = len;
	XXH3_128bits_reset(hs);
	rules_hash_part(hs, src, len);
	rv = rules_lex_all(src != NULL ? src : "", len, false, sink, &toks, &ntoks);
	if (rv != VIGIL_OK)
		goto fail_nodiag;
	ast.arena = &prog->arena;
	ast.marks = calloc(ntoks + 1, 1);
	if (ast.marks == NULL) {
		rv = VIGIL_ENOMEM;
		goto fail_nodiag;
	}
	rv = rules_parse_file(src, toks, ntoks, &o, sink, &ast);
	if (rv != VIGIL_OK)
		goto fail_nodiag;
	/* statements that parsed are checked even after a syntax error elsewhere,
	 * so one run reports both kinds */
	rv = rules_check_program(&ast, schema, &o, src, sink, prog, hs);
	if (rv != VIGIL_OK)
		goto fail_nodiag;
	if (sink->n > 0 || sink->dropped > 0)
		goto fail;
	rv = rules_eval_prepare(prog);
	if (rv != VIGIL_OK)
		goto fail_nodiag;
	{
		XXH128_hash_t h = XXH3_128bits_digest(hs);

		snprintf(prog->hash, sizeof prog->hash, "%016llx%016llx",
		    (unsigned long long)h.high64, (unsigned long long)h.low64);
	}
	*ret_prog = prog;
	prog = NULL;
	rv = VIGIL_OK;
	goto out;
fail:
	rv = rules_diag_emit(sink, name, reterr_diags);
	goto out;
fail_nodiag:
	if (reterr_diags != NULL && rv == VIGIL_ENOMEM)
		rules_diag_file(reterr_diags, name, "out of memory");
out:
	free(ast.marks);
	rules_ast_fini(&ast);
	rules_prog_free(prog);
	XXH3_freeState(hs);
	free(toks);
	free(sink);
	return rv;
}

vigil_err
rules_load_file(const char *path, const rules_schema *schema, const rules_opts *opts,
    rules_prog **ret_prog, rules_diags *reterr_diags)
{
	rules_opts  o = compile_opts(opts);
	FILE       *f = NULL;
	char       *buf = NULL, *dir = NULL;
	struct stat st;
	size_t      n;
	bool        special;
	vigil_err   rv;

	if (path == NULL || schema == NULL || ret_prog == NULL)
		return VIGIL_EINVAL;
	/* a FIFO would hold the caller (vigild's reload) until someone wrote */
	if ((f = vigil_fopen_regular(path, &special, &st)) == NULL) {
		char why[128];

		rv = special ? VIGIL_EIO : vigil_err_from_errno(errno);
		rules_diag_file(reterr_diags, path, "%s", vigil_open_why(special, errno, why,
		    sizeof why));
		goto out;
	}
	if ((uint64_t)st.st_size > o.max_file_bytes) {
		rv = VIGIL_ETOOBIG;
		rules_diag_file(reterr_diags, path, "file is %lld bytes, over the limit of %zu",
		    (long long)st.st_size, o.max_file_bytes);
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL) {
		rv = VIGIL_ENOMEM;
		rules_diag_file(reterr_diags, path, "out of memory");
		goto out;
	}
	/* read one byte more than the size: a file that grew is caught */
	n = fread(buf, 1, (size_t)st.st_size + 1, f);
	if (ferror(f) || n != (size_t)st.st_size) {
		rv = VIGIL_EIO;
		rules_diag_file(reterr_diags, path, "read failed or file changed while reading");
		goto out;
	}
	if (opts == NULL || opts->base_dir == NULL) {
		const char *slash = strrchr(path, '/');

		dir = slash == NULL ? strdup(".") : strndup(path, (size_t)(slash - path + (slash == path)));
		if (dir == NULL) {
			rv = VIGIL_ENOMEM;
			rules_diag_file(reterr_diags, path, "out of memory");
			goto out;
		}
		o.base_dir = dir;
	}
	rv = rules_compile(path, buf, n, schema, &o, ret_prog, reterr_diags);
out:
	if (f != NULL)
		fclose(f);
	free(buf);
	free(dir);
	return rv;
}

void
rules_prog_free(rules_prog *prog)
{
	if (prog == NULL)
		return;
	for (uint32_t i = 0; i < prog->nlists; i++) {
		rules_list *l = &prog->lists[i];

		free(l->s);
		free(l->slen);
		free(l->d);
		free(l->h);
		free(l->table);
	}
	free(prog->lists);
	free(prog->nodes);
	free(prog->rules);
	free(prog->thresh);
	free(prog->slots_used);
	free(prog->slot_field);
	free(prog->fields);
	rules_arena_fini(&prog->arena);
	free(prog);
}

/* ======================= Introspection ======================= */

const char *
rules_mode_name(rules_mode mode)
{
	switch (mode) {
	case RULES_MODE_ACTIVE: return "active";
	case RULES_MODE_SHADOW: return "shadow";
	case RULES_MODE_DISABLED: return "disabled";
	}
	return "unknown";
}

const char *
rules_prog_version(const rules_prog *prog)
{
	return prog->version;
}

const char *
rules_prog_hash(const rules_prog *prog)
{
	return prog->hash;
}

uint32_t
rules_prog_nrules(const rules_prog *prog)
{
	return prog->nrules;
}

uint32_t
rules_prog_nlist_files(const rules_prog *prog)
{
	return prog->nlist_files;
}

const char *
rules_prog_list_file(const rules_prog *prog, uint32_t i)
{
	return i < prog->nlist_files ? prog->list_files[i] : NULL;
}

void
rules_prog_rule(const rules_prog *prog, uint32_t i, rules_rule_info *ret_info)
{
	if (i < prog->nrules)
		*ret_info = prog->rules[i].info;
}

const char *
rules_prog_rule_condition(const rules_prog *prog, uint32_t i)
{
	return i < prog->nrules ? prog->rules[i].cond_text : NULL;
}

vigil_err
rules_prog_rule_find(const rules_prog *prog, const char *name, uint32_t *ret_i)
{
	for (uint32_t i = 0; i < prog->nrules; i++) {
		if (strcmp(prog->rules[i].info.name, name) == 0) {
			*ret_i = i;
			return VIGIL_OK;
		}
	}
	return VIGIL_ENOTFOUND;
}

void
rules_prog_bands(const rules_prog *prog, double *ret_review_at, double *ret_decline_at)
{
	*ret_review_at = prog->review_at;
	*ret_decline_at = prog->decline_at;
}

int32_t
rules_prog_adjust_max(const rules_prog *prog)
{
	return prog->adjust_max;
}

const uint32_t *
rules_prog_slots_used(const rules_prog *prog, uint32_t *ret_n)
{
	*ret_n = prog->nslots_used;
	return prog->slots_used;
}

uint32_t
rules_prog_nthresholds(const rules_prog *prog)
{
	return prog->nthresh;
}

void
rules_prog_threshold(const rules_prog *prog, uint32_t i, rules_threshold_info *ret_info)
{
	if (i < prog->nthresh)
		*ret_info = prog->thresh[i];
}

void
rules_threshold_def(const rules_threshold_info *info, char *buf, size_t cap)
{
	static const char *const kinds[] = { "constant", "percentile", "alert_rate", "precision" };
	const char *k = (unsigned)info->kind < sizeof kinds / sizeof kinds[0] ? kinds[info->kind] :
	    "?";

	snprintf(buf, cap, "%s %s %.17g %s", k, info->feature != NULL ? info->feature : "-",
	    info->param, info->group_by != NULL ? info->group_by : "-");
}

static bool
compile_is_read(const rules_node *nd)
{
	return nd->op == OP_SLOT || nd->op == OP_THRESH;
}

/* The k-th operand slot of node nd, in source order, into *ret (RULES_NIL
 * for an unused one); false past the last. min() and max() chain their
 * arguments from kid[0] (check.c), other nodes have up to four kids. */
static bool
compile_kid(const rules_prog *prog, const rules_node *nd, uint32_t k, uint32_t *ret)
{
	uint32_t a;

	if (nd->op != OP_MIN && nd->op != OP_MAX) {
		*ret = k < 4 ? nd->kid[k] : RULES_NIL;
		return k < 4;
	}
	for (a = nd->kid[0]; a != RULES_NIL && k > 0; k--)
		a = prog->nodes[a].next;
	*ret = a;
	return a != RULES_NIL;
}

/* Whether a leaf equal to target is met before node target in a
 * left-to-right walk from i. *done is set when target is reached. */
static bool
compile_seen_before(const rules_prog *prog, uint32_t i, uint32_t target, bool *done)
{
	const rules_node *nd = &prog->nodes[i];
	const rules_node *t = &prog->nodes[target];
	uint32_t          a;

	if (i == target) {
		*done = true;
		return false;
	}
	if (compile_is_read(nd))
		return nd->op == t->op && nd->ix == t->ix;
	for (uint32_t k = 0; !*done && compile_kid(prog, nd, k, &a); k++)
		if (a != RULES_NIL && compile_seen_before(prog, a, target, done))
			return true;
	return false;
}

static void
compile_reads(const rules_prog *prog, uint32_t root, uint32_t i, rules_read *ret, uint32_t cap,
    uint32_t *n)
{
	const rules_node *nd = &prog->nodes[i];
	bool              done = false;

	if (!compile_is_read(nd)) {
		uint32_t a;

		/* children in source order: operands were parsed left to right */
		for (uint32_t k = 0; compile_kid(prog, nd, k, &a); k++)
			if (a != RULES_NIL)
				compile_reads(prog, root, a, ret, cap, n);
		return;
	}
	if (compile_seen_before(prog, root, i, &done))
		return;
	if (*n < cap) {
		rules_read r = { 0 };

		if (nd->op == OP_SLOT) {
			const rules_field *f = nd->ix < prog->nslots ? prog->slot_field[nd->ix] : NULL;

			r.name = f != NULL ? f->name : "?";
			r.type = f != NULL ? f->type : VIGIL_T_NONE;
		} else {
			r.name = prog->thresh[nd->ix].name;
			r.threshold = true;
			r.type = VIGIL_T_NUM;
		}
		r.index = nd->ix;
		ret[*n] = r;
	}
	(*n)++;
}

uint32_t
rules_prog_rule_reads(const rules_prog *prog, uint32_t i, rules_read *ret_reads, uint32_t cap)
{
	uint32_t n = 0;

	if (i >= prog->nrules)
		return 0;
	compile_reads(prog, prog->rules[i].cond, prog->rules[i].cond, ret_reads, cap, &n);
	return n;
}
