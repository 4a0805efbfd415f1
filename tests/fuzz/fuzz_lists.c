/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_lists.c - arbitrary bytes as a rule list file
 * (`list x = file "..."`, read next to the rule file; fuzz_rules never gets
 * one): the same bytes as a string, a prefix and a number list, each
 * compiled into a small rule set and evaluated. A refused list must say
 * why; an accepted one must be recorded as read and evaluate. Must never
 * crash, leak or read out of bounds.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tmpdir.h"
#include "rules.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { NSLOTS = 4 };

static const char *const fuzz_srcs[] = {
	"list l = file \"l.txt\"\n"
	"rule r { when country in l or card_id not in l score 1 reason \"r\" }\n",
	"list l = prefix file \"l.txt\"\n"
	"rule r { when card_id in l or starts_with(country, l) score 1 reason \"r\" }\n",
	"list l = number file \"l.txt\"\n"
	"rule r { when mcc in l or amount not in l score 1 reason \"r\" }\n",
};

static char fuzz_dir[64], fuzz_file[96];

static void
fuzz_cleanup(void)
{
	vt_tmpdir_remove(fuzz_dir);
}

static rules_schema *
fuzz_schema(void)
{
	static rules_schema *schema;

	if (schema == NULL) {
		schema = rules_schema_new();
		if (schema == NULL ||
		    rules_schema_add(schema, "amount", VIGIL_T_NUM, 0) != VIGIL_OK ||
		    rules_schema_add(schema, "country", VIGIL_T_STR, 1) != VIGIL_OK ||
		    rules_schema_add(schema, "mcc", VIGIL_T_NUM, 2) != VIGIL_OK ||
		    rules_schema_add(schema, "card_id", VIGIL_T_STR, 3) != VIGIL_OK)
			abort();
	}
	return schema;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static rules_result res;
	rules_opts opts = { .max_list_items = 1000 };
	vigil_value f[NSLOTS];
	rules_diags diags;
	FILE *fp;

	if (fuzz_dir[0] == '\0') {
		const char *tmp = getenv("TMPDIR");

		snprintf(fuzz_dir, sizeof fuzz_dir, "%s/vigil-fuzz-lists-XXXXXX",
		    tmp != NULL && strlen(tmp) < 32 ? tmp : "/tmp");
		if (mkdtemp(fuzz_dir) == NULL)
			abort();
		snprintf(fuzz_file, sizeof fuzz_file, "%s/l.txt", fuzz_dir);
		atexit(fuzz_cleanup);
	}
	fp = fopen(fuzz_file, "wb");
	if (fp == NULL || (size > 0 && fwrite(data, 1, size, fp) != size) || fclose(fp) != 0)
		abort();
	opts.base_dir = fuzz_dir;
	f[0] = vigil_value_num(123.45);
	f[1] = vigil_value_str("GB", 2);
	f[2] = vigil_value_num(5411);
	f[3] = vigil_value_str("411111abc", 9);
	for (size_t i = 0; i < sizeof fuzz_srcs / sizeof fuzz_srcs[0]; i++) {
		rules_prog *prog = NULL;
		vigil_err rv;

		rv = rules_compile("fuzz", fuzz_srcs[i], strlen(fuzz_srcs[i]), fuzz_schema(), &opts,
		    &prog, &diags);
		if (rv != VIGIL_OK) {
			if (prog != NULL || diags.count == 0 || diags.count > RULES_MAX_DIAGS)
				abort(); /* a refused list says why */
			continue;
		}
		if (rules_prog_nlist_files(prog) != 1 ||
		    rules_prog_eval(prog, NULL, f, NSLOTS, &res) != VIGIL_OK ||
		    res.nhits + res.nshadow > 1)
			abort();
		rules_prog_free(prog);
	}
	return 0;
}
