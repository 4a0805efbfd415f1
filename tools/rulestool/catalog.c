/* SPDX-License-Identifier: MIT */
/*
 * tools/rulestool/catalog.c - vigil-rules features: the feature table of
 * features/schema.def as text, Markdown (docs/features.md) or JSON.
 */
#include <getopt.h>
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
	enum { OPT_MARKDOWN = 256 };
	static const struct option longopts[] = {
		VIGIL_CLI_JSON, { "markdown", no_argument, NULL, OPT_MARKDOWN }, VIGIL_CLI_HELP,
		{ NULL, 0, NULL, 0 },
	};
	bool json = false, md = false;
	int  c;

	/* the shared flag parser, so an unknown flag reads as in every command */
	while ((c = getopt_long(argc, argv, "jh", longopts, NULL)) != -1) {
		switch (c) {
		case 'j': json = true; break;
		case OPT_MARKDOWN: md = true; break;
		case 'h': return tool_help(features_usage);
		default: return vigil_cli_bad_option("vigil-rules features", argv);
		}
	}
	if (optind < argc)
		return vigil_cli_usage_error("vigil-rules features", "takes no argument ('%s')",
		    argv[optind]);
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
		if (a == NULL) {
			fprintf(stderr, "vigil-rules: out of memory\n");
			return VIGIL_EXIT_USAGE;
		}
		json_dumpf(a, stdout, JSON_INDENT(2)); /* a write error: main says so */
		fputc('\n', stdout);
		json_decref(a);
		return 0;
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
	return 0; /* standard output: main checks it */
}
