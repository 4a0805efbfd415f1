/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_part.c - fuzz target for the partial-file reader of
 * `vigil-rebuild --merge` (batch/part.c), the one parser in batch/ that
 * reads files from outside the process.
 *
 * Set-up (once): a small archive, its three --partition files. Each input
 * replaces partition 1's file and batch_merge() runs over the three; it must
 * return an error naming the file or succeed, never crash, leak or read out
 * of bounds (ASan/UBSan), and never leave a generation from a failed merge.
 *
 * Built with -Dfuzz=true (clang) it is a libFuzzer target whose inputs are
 * edits to the valid file, the checksum recomputed (see below). Otherwise main()
 * below runs it in the `fuzz` suite over deterministic mutations of the
 * valid file: truncations (every length up to 600 bytes, then every 37th)
 * and 2000 seeded runs of 1-8 random bit flips, which the checksum must all
 * refuse; then 1500 runs of bit flips with the checksum recomputed, which
 * reach the structure checks and the generation writer.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <xxhash.h>

#include "batch.h"
#include "fixture.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char fz_dir[256], fz_paths[3][600], fz_rules[600];
static uint8_t *fz_valid;
static size_t fz_valid_len;

#define A (1772323200000LL)
#define D VIGIL_MS_PER_DAY

static void
fz_die(const char *what, const char *why)
{
	fprintf(stderr, "fuzz-part: %s: %s\n", what, why);
	exit(1);
}

static void
fz_setup(void)
{
	store_archive *ar;
	batch_opts o;
	batch_summary s;
	store_diag d;
	FILE *f;
	char tid[32], card[32];

	snprintf(fz_dir, sizeof fz_dir, "%s", fx_tmpdir(0));
	ar = fx_archive(fz_dir);
	for (int i = 0; i < 400; i++) {
		fx_txn t = { 0 };

		snprintf(tid, sizeof tid, "t%d", i);
		snprintf(card, sizeof card, "c%d", i % 37);
		t.txn_id = tid;
		t.card = card;
		t.merchant = i % 2 ? "m1" : "m2";
		t.terminal = i % 3 ? "t1" : NULL;
		t.country = "FR";
		t.currency = "EUR";
		t.amount_minor = 100 + i * 13;
		t.t = A - 10 * D + i * 60000;
		t.mcc = i % 2 ? 5411 : 5999;
		t.feat = "vel.card.count_1h";
		t.feat_val = i % 17;
		fx_score(ar, &t);
		if (i % 5 == 0)
			fx_label(ar, tid, i % 10 == 0, t.t + 1000);
	}
	store_archive_close(ar);
	snprintf(fz_rules, sizeof fz_rules, "%s/f.rules", fz_dir);
	f = fopen(fz_rules, "w");
	if (f == NULL)
		fz_die("rules", "fopen");
	fputs("threshold p = percentile(amount, 90) by mcc fallback 1 min_samples 5\n"
	    "threshold a = alert_rate(vel.card.count_1h, 0.1) fallback 1 min_samples 5\n"
	    "rule r { when amount > p and vel.card.count_1h > a score 1 reason \"r\" }\n", f);
	fclose(f);
	for (uint32_t i = 0; i < 3; i++) {
		snprintf(fz_paths[i], sizeof fz_paths[i], "%s/p%u.vpart", fz_dir, i);
		batch_opts_default(&o);
		o.datadir = fz_dir;
		o.as_of_ms = A;
		o.rules_path = fz_rules;
		o.part_index = i;
		o.part_count = 3;
		o.out_path = fz_paths[i];
		if (batch_rebuild(&o, &s, &d) != VIGIL_OK)
			fz_die("partition", d.msg);
	}
	f = fopen(fz_paths[1], "rb");
	if (f == NULL)
		fz_die(fz_paths[1], "fopen");
	fseek(f, 0, SEEK_END);
	fz_valid_len = (size_t)ftell(f);
	fseek(f, 0, SEEK_SET);
	fz_valid = malloc(fz_valid_len);
	if (fz_valid == NULL || fread(fz_valid, 1, fz_valid_len, f) != fz_valid_len)
		fz_die(fz_paths[1], "read");
	fclose(f);
	/* The fuzzed file replaces partition 1 from now on. */
	snprintf(fz_paths[1], sizeof fz_paths[1], "%s/fuzzed.vpart", fz_dir);
}

/* Merges data[0..size) as partition 1 with partitions 0 and 2. */
static void
fz_merge(const uint8_t *data, size_t size)
{
	const char *paths[3] = { fz_paths[0], fz_paths[1], fz_paths[2] };
	batch_opts o;
	batch_summary *s;
	store_diag d;
	FILE *f;
	vigil_err rv;

	f = fopen(fz_paths[1], "wb");
	if (f == NULL || (size > 0 && fwrite(data, 1, size, f) != size) || fclose(f) != 0)
		fz_die(fz_paths[1], "write");
	s = calloc(1, sizeof *s);
	if (s == NULL)
		fz_die("calloc", "ENOMEM");
	batch_opts_default(&o);
	o.datadir = fz_dir;
	o.force = true;
	o.keep = 2;
	rv = batch_merge(&o, paths, 3, s, &d);
	if (rv != VIGIL_OK && strstr(d.msg, "fuzzed.vpart") == NULL && rv != VIGIL_ENOMEM &&
	    strstr(d.msg, "p0.vpart") == NULL) {
		fprintf(stderr, "fuzz-part: error does not name the file: %s\n", d.msg);
		abort();
	}
	free(s);
}

#ifdef VIGIL_LIBFUZZER
/*
 * libFuzzer would almost never write a file whose checksum holds, so here
 * an input is edits to the valid file: each 4 bytes, a 24-bit offset into
 * the bytes before the trailer and a byte XORed in there; the checksum is
 * then recomputed and the structure checks (header, merchant counters,
 * card profiles, the training section) are what it explores. Truncations
 * and unsummed damage are main()'s first phase.
 */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *buf;
	uint64_t digest;

	if (fz_valid == NULL)
		fz_setup();
	buf = malloc(fz_valid_len);
	if (buf == NULL)
		fz_die("malloc", "ENOMEM");
	memcpy(buf, fz_valid, fz_valid_len);
	for (size_t i = 0; i + 4 <= size; i += 4) {
		size_t off = ((size_t)data[i] | (size_t)data[i + 1] << 8 |
		    (size_t)data[i + 2] << 16) % (fz_valid_len - 9);

		buf[off] ^= data[i + 3];
	}
	digest = XXH64(buf, fz_valid_len - 8, 0);
	memcpy(buf + fz_valid_len - 8, &digest, 8);
	fz_merge(buf, fz_valid_len);
	free(buf);
	return 0;
}
#else
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (fz_valid == NULL)
		fz_setup();
	fz_merge(data, size);
	return 0;
}
#endif

#ifndef VIGIL_LIBFUZZER
static uint64_t fz_rng = 0x2545F4914F6CDD1Dull;

static uint64_t
fz_next(void)
{
	fz_rng ^= fz_rng << 13;
	fz_rng ^= fz_rng >> 7;
	fz_rng ^= fz_rng << 17;
	return fz_rng;
}

int
main(void)
{
	uint8_t *buf;
	uint64_t before = 0, after = 0;
	size_t ok = 0;
	char cmd[400];

	fz_setup();
	buf = malloc(fz_valid_len + 1);
	if (buf == NULL)
		return 1;
	/* The valid file merges. */
	LLVMFuzzerTestOneInput(fz_valid, fz_valid_len);
	if (store_gen_current(fz_dir, &before) != VIGIL_OK || before == 0)
		fz_die("valid partial file", "did not merge");
	for (size_t n = 0; n < fz_valid_len; n += n < 600 ? 1 : 37)
		LLVMFuzzerTestOneInput(fz_valid, n);
	for (int i = 0; i < 2000; i++) {
		int flips = 1 + (int)(fz_next() % 8);

		memcpy(buf, fz_valid, fz_valid_len);
		for (int k = 0; k < flips; k++)
			buf[fz_next() % fz_valid_len] ^= (uint8_t)(1u << (fz_next() % 8));
		LLVMFuzzerTestOneInput(buf, fz_valid_len);
	}
	/* Truncations and flips are all caught by structure checks or the
	 * checksum: no damaged input ever produced a generation. */
	if (store_gen_current(fz_dir, &after) != VIGIL_OK)
		fz_die("store_gen_current", "failed");
	if (after != before)
		fz_die("damaged input", "made a generation current");
	ok++;
	/* Phase 2: the same flips with the trailer recomputed, so the structure
	 * checks (lengths, tags, key order, partitions, buckets) and the
	 * generation writer see damaged content; any outcome but a crash or an
	 * error without the file's name is fine. */
	for (int i = 0; i < 1500; i++) {
		int flips = 1 + (int)(fz_next() % 4);
		uint64_t digest;

		memcpy(buf, fz_valid, fz_valid_len);
		for (int k = 0; k < flips; k++)
			buf[fz_next() % (fz_valid_len - 9)] ^= (uint8_t)(1u << (fz_next() % 8));
		digest = XXH64(buf, fz_valid_len - 8, 0);
		memcpy(buf + fz_valid_len - 8, &digest, 8);
		LLVMFuzzerTestOneInput(buf, fz_valid_len);
	}
	ok++;
	free(buf);
	free(fz_valid);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", fz_dir);
	if (system(cmd) != 0)
		return 1;
	printf("fuzz-part: %zu checks passed\n", ok);
	return 0;
}
#endif
