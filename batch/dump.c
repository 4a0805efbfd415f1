/* SPDX-License-Identifier: MIT */
/*
 * batch/dump.c - vigil-rebuild --dump card|merchant|terminal ID: one
 * profile of a feature generation, readable (mdb_dump shows only the
 * encoded struct). Two views of the same stored record:
 *   "features": what the rules and the model read from it, named as in
 *               features/schema.def (the card.*, merchant.*, terminal.* rows
 *               whose source is the profile; DERIVED ones need a request),
 *               computed by the scoring path's own code
 *               (store_profile_features); null = missing;
 *   "profile":  every stored field by its name in schema.def's PC/PE rows
 *               (store_profile_json, as the console prints it), including
 *               those no feature reads (hour histogram, top countries and
 *               merchant hashes, 90-day entity counts).
 * Numbers are printed with 15 significant digits (amounts read as typed).
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <string.h>

#include "cli.h"
#include "dump.h"
#include "gen.h"
#include "genread.h"
#include "schema.h"

static int dump_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int
dump_fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "vigil-rebuild: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

static json_t *
dump_features(store_source src, const void *profile)
{
	vigil_value f[128];
	json_t *o = json_object();
	uint32_t i, n = store_schema_nfields();

	if (n > 128 || store_profile_features(src, profile, f) != VIGIL_OK)
		return o;
	for (i = 0; i < n; i++) {
		const store_field *fld = store_schema_field(i);

		if (fld->source != src)
			continue;
		if (!f[i].present)
			json_object_set_new(o, fld->name, json_null());
		else if (fld->type == VIGIL_T_BOOL)
			json_object_set_new(o, fld->name, json_boolean(f[i].num != 0.0));
		else if (fld->type == VIGIL_T_STR)
			json_object_set_new(o, fld->name, json_stringn(f[i].str, f[i].len));
		else if (f[i].num == (double)(json_int_t)f[i].num) /* counts read as counts */
			json_object_set_new(o, fld->name, json_integer((json_int_t)f[i].num));
		else
			json_object_set_new(o, fld->name, json_real(f[i].num));
	}
	return o;
}

int
batch_dump_profile(const char *datadir, uint64_t gen, const char *kind, const char *id,
    FILE *out)
{
	store_card_profile card;
	store_entity_profile ent;
	store_source src;
	store_gen *g = NULL;
	store_gen_meta meta;
	store_diag diag;
	json_t *root = NULL;
	char date[16], genbuf[24];
	int rc = 1;
	vigil_err rv;

	if (strcmp(kind, "card") == 0)
		src = STORE_SRC_CARD;
	else if (strcmp(kind, "merchant") == 0)
		src = STORE_SRC_MERCHANT;
	else if (strcmp(kind, "terminal") == 0)
		src = STORE_SRC_TERMINAL;
	else
		return vigil_cli_usage_error("vigil-rebuild", "--dump: '%s' is not card, merchant "
		    "or terminal", kind);
	diag.msg[0] = '\0';
	rv = gen == 0 ? store_gen_open_current(datadir, &g, &diag) :
	    store_gen_open(datadir, gen, &g, &diag);
	if (rv != VIGIL_OK) {
		if (rv == VIGIL_ENOTFOUND && gen == 0)
			return dump_fail("%s: no generation yet", datadir);
		return dump_fail("%s: %s", datadir, diag.msg[0] ? diag.msg : vigil_strerror(rv));
	}
	rv = store_gen_meta_get(g, &meta);
	if (rv != VIGIL_OK) {
		rc = dump_fail("%s: generation meta: %s", datadir, vigil_strerror(rv));
		goto out;
	}
	snprintf(genbuf, sizeof genbuf, "%" PRIu64, meta.generation);
	rv = src == STORE_SRC_CARD ? store_gen_card(g, id, &card) :
	    src == STORE_SRC_MERCHANT ? store_gen_merchant(g, id, &ent) :
	    store_gen_terminal(g, id, &ent);
	if (rv == VIGIL_ENOTFOUND) {
		fprintf(stderr, "vigil-rebuild: %s '%s' is not in generation %s (no transaction "
		    "of it in that night's window)\n", kind, id, genbuf);
		goto out;
	}
	if (rv != VIGIL_OK) {
		fprintf(stderr, "vigil-rebuild: %s '%s' in generation %s: %s\n", kind, id, genbuf,
		    vigil_strerror(rv));
		goto out;
	}
	vigil_date_format(meta.as_of_ms, date, sizeof date);
	root = json_object();
	json_object_set_new(root, "kind", json_string(kind));
	json_object_set_new(root, "id", json_string(id));
	json_object_set_new(root, "generation", json_integer((json_int_t)meta.generation));
	json_object_set_new(root, "as_of", json_string(date));
	json_object_set_new(root, "features", dump_features(src,
	    src == STORE_SRC_CARD ? (const void *)&card : (const void *)&ent));
	json_object_set_new(root, "profile", store_profile_json(src,
	    src == STORE_SRC_CARD ? (const void *)&card : (const void *)&ent));
	if (json_dumpf(root, out, JSON_INDENT(2) | JSON_REAL_PRECISION(15)) != 0 ||
	    fputc('\n', out) == EOF || fflush(out) != 0) {
		fprintf(stderr, "vigil-rebuild: writing the dump: %s\n", strerror(errno));
		goto out;
	}
	rc = 0;
out:
	json_decref(root);
	store_gen_close(g);
	return rc;
}
