/* SPDX-License-Identifier: MIT */
/*
 * tools/rulestool/catalog.c - vigil-rules features: the feature table of
 * features/schema.def as text, Markdown (docs/features.md) or JSON.
 */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "schema.h"
#include "tool.h"
#include "vigil.h"

static const char *const features_usage =
    "usage: vigil-rules features [--json | --markdown]\n"
    "\n"
    "Lists the feature table (features/schema.def): name, type, source (txn, card,\n"
    "merchant, terminal, derived, live, score), whether the nightly model reads\n"
    "it, and its one-line meaning. --markdown prints the table docs/features.md\n"
    "carries (a test compares the two); --json one array of objects.\n"
    "\n";

int
cmd_features(int argc, char **argv)
{
	bool json = false, md = false;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0 || strcmp(argv[i], "-j") == 0) {
			json = true;
		} else if (strcmp(argv[i], "--markdown") == 0) {
			md = true;
		} else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			return tool_help(features_usage);
		} else {
			return vigil_cli_usage_error("vigil-rules features", "unknown option '%s'",
			    argv[i]);
		}
	}
	if (json && md) {
		return vigil_cli_usage_error("vigil-rules features",
		    "--json and --markdown exclude each other");
	}
	if (json) {
		json_t *a = json_array();

		for (uint32_t i = 0; a != NULL && i < store_schema_nfields(); i++) {
			const store_field *f = store_schema_field(i);

			json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:b, s:s}", "name", f->name,
			    "type", vigil_type_name(f->type), "source", store_source_name(f->source),
			    "model", f->model_input, "doc", f->doc));
		}
		if (a == NULL || json_dumpf(a, stdout, JSON_INDENT(2)) != 0) {
			json_decref(a);
			fprintf(stderr, "vigil-rules: out of memory\n");
			return VIGIL_EXIT_USAGE;
		}
		fputc('\n', stdout);
		json_decref(a);
		return fflush(stdout) == 0 ? 0 : VIGIL_EXIT_FAIL;
	}
	if (md) {
		printf("| name | type | source | model | meaning |\n");
		printf("|------|------|--------|-------|---------|\n");
	}
	for (uint32_t i = 0; i < store_schema_nfields(); i++) {
		const store_field *f = store_schema_field(i);

		if (md)
			printf("| `%s` | %s | %s | %s | %s |\n", f->name, vigil_type_name(f->type),
			    store_source_name(f->source), f->model_input ? "yes" : "", f->doc);
		else
			printf("%-36s %-6s %-9s %-5s %s\n", f->name, vigil_type_name(f->type),
			    store_source_name(f->source), f->model_input ? "model" : "-", f->doc);
	}
	return fflush(stdout) == 0 ? 0 : VIGIL_EXIT_FAIL;
}
