/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_config.c - arbitrary bytes as vigild's INI configuration
 * file, through the public entry point (srv_config_load with --config on a
 * temporary file, as vigild --check-config reads it). A refused file must
 * say why in one line; an accepted one must hold a configuration within its
 * documented bounds. Must never crash, leak or read out of bounds.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "srv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char fuzz_path[64];

static void
fuzz_cleanup(void)
{
	unlink(fuzz_path);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *argv[] = { "vigild", "--config", fuzz_path, "--check-config", NULL };
	static srv_config cfg;
	srv_action act = SRV_RUN;
	char err[SRV_ERR_MAX];
	vigil_errinfo ei;
	vigil_err rv;
	FILE *f;

	if (fuzz_path[0] == '\0') {
		const char *tmp = getenv("TMPDIR");
		int fd;

		snprintf(fuzz_path, sizeof fuzz_path, "%s/vigil-fuzz-config-XXXXXX",
		    tmp != NULL && strlen(tmp) < 32 ? tmp : "/tmp");
		if ((fd = mkstemp(fuzz_path)) < 0)
			abort();
		close(fd);
		atexit(fuzz_cleanup);
	}
	f = fopen(fuzz_path, "wb");
	if (f == NULL || (size > 0 && fwrite(data, 1, size, f) != size) || fclose(f) != 0)
		abort();
	err[0] = '\0';
	memset(&ei, 0, sizeof ei);
	rv = srv_config_load(4, argv, &cfg, &act, &ei);
	if (rv != VIGIL_OK)
		srv_config_err_format(&ei, err, sizeof err);
	if (rv == VIGIL_OK) {
		if (act != SRV_CHECK_CONFIG || cfg.rules_path[0] == '\0' ||
		    cfg.nlisten > SRV_MAX_LISTEN || memchr(cfg.data_dir, '\0', sizeof cfg.data_dir) == NULL)
			abort();
		for (uint32_t i = 0; i < cfg.nlisten; i++)
			if (memchr(cfg.listen[i], '\0', sizeof cfg.listen[i]) == NULL)
				abort();
	} else if (rv == VIGIL_EINVAL) {
		if (err[0] == '\0' || strchr(err, '\n') != NULL)
			abort(); /* one line that says why */
	} else if (rv != VIGIL_ENOMEM) {
		abort();
	}
	return 0;
}
