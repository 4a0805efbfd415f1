/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/replay_main.c - runs a libFuzzer target over saved inputs
 * without libFuzzer, so `meson test --suite fuzz` replays every corpus with
 * any compiler (and under ASan/UBSan in CI). Arguments are files or
 * directories; each regular file is one input. Exits 0 when every input ran
 * (a crash or sanitizer report fails the test), 1 on a usage or I/O error.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
run_file(const char *path, unsigned *count)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	long n;
	int rv = -1;

	if (f == NULL) {
		fprintf(stderr, "fuzz-replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
		fprintf(stderr, "fuzz-replay: %s: cannot size file\n", path);
		goto out;
	}
	buf = malloc(n > 0 ? (size_t)n : 1);
	if (buf == NULL || fread(buf, 1, (size_t)n, f) != (size_t)n) {
		fprintf(stderr, "fuzz-replay: %s: read failed\n", path);
		goto out;
	}
	LLVMFuzzerTestOneInput(buf, (size_t)n);
	(*count)++;
	rv = 0;
out:
	free(buf);
	fclose(f);
	return rv;
}

static int
run_path(const char *path, unsigned *count)
{
	struct stat st;
	DIR *d;
	struct dirent *de;
	int rv = 0;

	if (stat(path, &st) != 0) {
		fprintf(stderr, "fuzz-replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode))
		return run_file(path, count);
	d = opendir(path);
	if (d == NULL) {
		fprintf(stderr, "fuzz-replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		char sub[4096];
		if (de->d_name[0] == '.')
			continue;
		snprintf(sub, sizeof sub, "%s/%s", path, de->d_name);
		if (run_path(sub, count) != 0)
			rv = -1;
	}
	closedir(d);
	return rv;
}

int
main(int argc, char **argv)
{
	unsigned count = 0;
	int rv = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
		return 1;
	}
	for (int i = 1; i < argc; i++)
		if (run_path(argv[i], &count) != 0)
			rv = 1;
	if (count == 0) {
		fprintf(stderr, "fuzz-replay: no inputs found\n");
		return 1;
	}
	printf("fuzz-replay: %u inputs ran\n", count);
	return rv;
}
