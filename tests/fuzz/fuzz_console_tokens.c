/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_console_tokens.c - arbitrary bytes as vigil-console's
 * tokens file (console/auth.c: con_auth_load), written to a file of mode
 * 0600. Checked: a refused file names itself first in the error; an
 * accepted one holds 1 to CON_TOKENS_MAX analysts with valid, distinct
 * names and a known role, and every line of three fields whose third is a
 * plain token signs its analyst in with that token (and a certificate
 * analyst with its CN). Must never crash, leak or read out of bounds.
 */
#include <ctype.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth.h"
#include "tmpdir.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char fuzz_dir[256], fuzz_file[288];

static void
fuzz_cleanup(void)
{
	(void)vt_tmpdir_remove(fuzz_dir);
}

static bool
fuzz_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > CON_NAME_MAX)
		return false;
	for (; *s != '\0'; s++)
		if (!isalnum((unsigned char)*s) && *s != '.' && *s != '_' && *s != '-')
			return false;
	return true;
}

/* Each line of three fields signs in as its analyst (data: the accepted
 * file's bytes, NUL-terminated). */
static void
fuzz_check_lines(const con_auth *a, char *text)
{
	char *save = NULL;

	for (char *l = strtok_r(text, "\n", &save); l != NULL; l = strtok_r(NULL, "\n", &save)) {
		char name[512], role[512], tok[512];
		const con_user *u;

		if (l[strspn(l, " \t")] == '#' ||
		    sscanf(l, "%511s %511s %511s", name, role, tok) != 3)
			continue;
		if (strncmp(tok, "cert:", 5) == 0)
			u = con_auth_cert(a, tok + 5);
		else if (strncmp(tok, "sha256:", 7) == 0)
			continue;
		else
			u = con_auth_check(a, tok, strlen(tok));
		if (u == NULL || strcmp(u->name, name) != 0)
			abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static con_auth a;
	char err[300], *text;
	vigil_err rv;
	int fd;

	if (fuzz_dir[0] == '\0') {
		if (vt_tmpdir_make("vigil-fuzz-tokens", fuzz_dir, sizeof fuzz_dir) != 0)
			abort();
		snprintf(fuzz_file, sizeof fuzz_file, "%s/tokens", fuzz_dir);
		atexit(fuzz_cleanup);
	}
	fd = open(fuzz_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || (size > 0 && write(fd, data, size) != (ssize_t)size) || close(fd) != 0)
		abort();
	err[0] = '\0';
	rv = con_auth_load(fuzz_file, &a, err, sizeof err);
	if (rv != VIGIL_OK) {
		if (strncmp(err, fuzz_file, strlen(fuzz_file)) != 0 || strchr(err, '\n') != NULL)
			abort(); /* a refusal names the file, in one line */
		return 0;
	}
	if (a.n == 0 || a.n > CON_TOKENS_MAX)
		abort();
	for (uint32_t i = 0; i < a.n; i++) {
		if (!fuzz_name_ok(a.users[i].name) || a.users[i].role < CON_ROLE_READONLY ||
		    a.users[i].role > CON_ROLE_ADMIN ||
		    (a.users[i].by_cert && a.users[i].cert_cn[0] == '\0'))
			abort();
		for (uint32_t j = 0; j < i; j++)
			if (strcmp(a.users[i].name, a.users[j].name) == 0)
				abort();
	}
	/* accepted: no NUL inside a line (fgets would have cut it) is needed
	 * by the oracle, which reads the text as C strings */
	if (memchr(data, '\0', size) != NULL)
		return 0;
	text = malloc(size + 1);
	if (text == NULL)
		abort();
	memcpy(text, data, size);
	text[size] = '\0';
	fuzz_check_lines(&a, text);
	free(text);
	return 0;
}
