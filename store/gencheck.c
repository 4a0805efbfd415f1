/* SPDX-License-Identifier: MIT */
/*
 * store/gencheck.c - the CHECKSUM of a feature generation (docs/storage.md,
 * "Verification"): written by store_genw_commit, verified by store_gen_open
 * before LMDB maps anything.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <lmdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "file.h"
#include "gen.h"
#include "gendir.h"

/* ---------------------------------------------------------------------- */
/*
 * Checksums (docs/storage.md, "Verification"). A generation directory
 * holds CHECKSUM, one line in xxh128sum(1)'s format:
 *
 *     <32 lowercase hex digits of XXH3-128 over data.mdb>  data.mdb\n
 *
 * written by store_genw_commit after the final sync and before the rename.
 * store_gen_open recomputes it by reading the file (1 MiB at a time) before
 * LMDB maps anything, so damaged pages are refused, never dereferenced.
 * features/CHECKSUMS_FROM ("gen-NNNNNN\n", written once by the first commit
 * that wrote a CHECKSUM) says from which generation on a CHECKSUM must
 * exist; older generations without one were written before checksums and
 * are opened unverified.
 */

static vigil_err
gen_io_err(int e)
{
	/* Resource limits of this process are not damage; everything else
	 * that stops a generation from being read is. */
	switch (e) {
	case ENOMEM: return VIGIL_ENOMEM;
	case EMFILE: case ENFILE: return VIGIL_ELIMIT;
	case EACCES: case EPERM: return vigil_err_from_errno(e);
	default: return VIGIL_ECORRUPT;
	}
}

static void
gen_hex(const XXH128_hash_t *h, char out[GEN_CHECKSUM_HEX + 1])
{
	static const char digits[] = "0123456789abcdef";
	XXH128_canonical_t c;

	XXH128_canonicalFromHash(&c, *h); /* high 64 bits first, big-endian */
	for (int i = 0; i < 16; i++) {
		out[2 * i] = digits[c.digest[i] >> 4];
		out[2 * i + 1] = digits[c.digest[i] & 15];
	}
	out[GEN_CHECKSUM_HEX] = '\0';
}

/* XXH3-128 of the open file fd from offset 0 to its end, read in
 * GEN_VERIFY_BUF pieces (bounded memory whatever the size). *ret_bytes:
 * bytes read. An errno on failure (ENOMEM if no buffer). */
static int
gen_hash_fd(int fd, XXH128_hash_t *ret_h, uint64_t *ret_bytes)
{
	XXH3_state_t *st = XXH3_createState();
	uint8_t      *buf = malloc(GEN_VERIFY_BUF);
	uint64_t      total = 0;
	ssize_t       n;
	int           e = 0;

	if (st == NULL || buf == NULL) {
		e = ENOMEM;
		goto out;
	}
	(void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	XXH3_128bits_reset(st);
	for (;;) {
		n = pread(fd, buf, GEN_VERIFY_BUF, (off_t)total);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			e = errno;
			goto out;
		}
		if (n == 0)
			break;
		XXH3_128bits_update(st, buf, (size_t)n);
		total += (uint64_t)n;
	}
	*ret_h = XXH3_128bits_digest(st);
	*ret_bytes = total;
out:
	free(buf);
	XXH3_freeState(st);
	return e;
}

/* Writes gendir/CHECKSUM for gendir/data.mdb: CHECKSUM.tmp, fsync, rename,
 * fsync gendir. */
vigil_err
gen_checksum_write(const char *gendir, store_diag *reterr)
{
	char          data[GEN_PATH_MAX];
	char          line[GEN_CHECKSUM_HEX + sizeof "  " GEN_DATA_FILE "\n"];
	char          hex[GEN_CHECKSUM_HEX + 1];
	XXH128_hash_t h;
	uint64_t      bytes;
	int           fd, e, len;

	if (gen_path_join(data, sizeof data, gendir, GEN_DATA_FILE) != VIGIL_OK) {
		store_diag_set(reterr, "%s: path too long", gendir);
		return VIGIL_ETOOBIG;
	}
	fd = open(data, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		e = errno;
		store_diag_set(reterr, "%s: checksum: %s", data, strerror(e));
		return vigil_err_from_errno(e);
	}
	e = gen_hash_fd(fd, &h, &bytes);
	close(fd);
	if (e != 0) {
		store_diag_set(reterr, "%s: checksum: %s", data, strerror(e));
		return vigil_err_from_errno(e);
	}
	gen_hex(&h, hex);
	len = snprintf(line, sizeof line, "%s  " GEN_DATA_FILE "\n", hex);
	return gen_file_replace(gendir, GEN_CHECKSUM_FILE, line, (size_t)len, reterr);
}

/* The first generation that must have a CHECKSUM (fdir/CHECKSUMS_FROM): 0
 * if none must (no such file: every generation predates checksums, or none
 * was written since), 1 (all) if the file is unreadable or malformed. */
static uint64_t
gen_checksums_from(const char *fdir)
{
	uint64_t g;

	return gen_file_read_gen(fdir, GEN_CHECKSUMS_FROM, &g, NULL) == VIGIL_OK ? g : 1;
}

/* Creates fdir/CHECKSUMS_FROM naming gen unless it exists (under the
 * rebuild lock): write temp, fsync, rename, fsync fdir. */
vigil_err
gen_checksums_from_mark(const char *fdir, uint64_t gen, store_diag *reterr)
{
	char        path[GEN_PATH_MAX], line[32];
	struct stat st;
	size_t      len;

	if (gen_path_join(path, sizeof path, fdir, GEN_CHECKSUMS_FROM) != VIGIL_OK) {
		store_diag_set(reterr, "%s: path too long", fdir);
		return VIGIL_ETOOBIG;
	}
	if (stat(path, &st) == 0)
		return VIGIL_OK;
	gen_name(gen, line, sizeof line);
	len = strlen(line);
	line[len++] = '\n';
	return gen_file_replace(fdir, GEN_CHECKSUMS_FROM, line, len, reterr);
}

/* Reads gendir/CHECKSUM into hex: VIGIL_OK, VIGIL_ENOTFOUND (no file), or
 * VIGIL_ECORRUPT / an errno code with *reterr filled. */
static vigil_err
gen_checksum_read(const char *gendir, const char *name, char hex[GEN_CHECKSUM_HEX + 1],
    store_diag *reterr)
{
	static const char tail[] = "  " GEN_DATA_FILE "\n";
	char              path[GEN_PATH_MAX], buf[128];
	ssize_t           n;
	int               fd, e;
	bool              special;

	if (gen_path_join(path, sizeof path, gendir, GEN_CHECKSUM_FILE) != VIGIL_OK) {
		GEN_DIAG(reterr, name, NULL, "path too long");
		return VIGIL_ETOOBIG;
	}
	fd = vigil_open_regular(path, &special, NULL);
	if (fd < 0 && special) {
		GEN_DIAG(reterr, name, NULL, GEN_CHECKSUM_FILE " is not a regular file");
		return VIGIL_ECORRUPT;
	}
	if (fd < 0) {
		e = errno;
		if (e == ENOENT)
			return VIGIL_ENOTFOUND;
		GEN_DIAG(reterr, name, NULL, GEN_CHECKSUM_FILE ": %s", strerror(e));
		return gen_io_err(e);
	}
	n = read(fd, buf, sizeof buf - 1);
	e = errno;
	close(fd);
	if (n < 0) {
		GEN_DIAG(reterr, name, NULL, GEN_CHECKSUM_FILE ": %s", strerror(e));
		return gen_io_err(e);
	}
	buf[n] = '\0';
	if ((size_t)n != GEN_CHECKSUM_HEX + sizeof tail - 1 ||
	    strspn(buf, "0123456789abcdef") != GEN_CHECKSUM_HEX ||
	    memcmp(buf + GEN_CHECKSUM_HEX, tail, sizeof tail - 1) != 0) {
		vigil_utf8_line(buf);
		GEN_DIAG(reterr, name, NULL, GEN_CHECKSUM_FILE " is malformed: expected "
		    "\"<32 hex digits>  " GEN_DATA_FILE "\", got \"%.48s\"", buf);
		return VIGIL_ECORRUPT;
	}
	memcpy(hex, buf, GEN_CHECKSUM_HEX);
	hex[GEN_CHECKSUM_HEX] = '\0';
	return VIGIL_OK;
}

/*
 * Checks gendir/data.mdb against gendir/CHECKSUM before anything maps it.
 * VIGIL_OK: *ret_check says whether it was verified (false: no CHECKSUM, and
 * the generation predates CHECKSUMS_FROM) and *ret_st is the file checked.
 * Otherwise (VIGIL_ECORRUPT for damage, a missing data file or CHECKSUM, a
 * read error; VIGIL_ENOMEM, VIGIL_ELIMIT, VIGIL_EPERM-like codes for this
 * process's limits) *reterr names the generation and says why.
 */
vigil_err
gen_verify(const char *fdir, const char *gendir, const char *name, uint64_t generation,
    store_gen_check *ret_check, struct stat *ret_st, store_diag *reterr)
{
	char          data[GEN_PATH_MAX], want[GEN_CHECKSUM_HEX + 1], got[GEN_CHECKSUM_HEX + 1];
	struct stat   st;
	XXH128_hash_t h;
	uint64_t      bytes = 0, from, t0 = vigil_mono_ns();
	int           fd = -1, e;
	bool          verified = false, special;
	vigil_err     rv;

	if (gen_path_join(data, sizeof data, gendir, GEN_DATA_FILE) != VIGIL_OK) {
		GEN_DIAG(reterr, name, NULL, "path too long");
		return VIGIL_ETOOBIG;
	}
	fd = vigil_open_regular(data, &special, &st);
	if (fd < 0 && special) {
		rv = VIGIL_ECORRUPT;
		GEN_DIAG(reterr, name, NULL, GEN_DATA_FILE " is not a regular file");
		goto out;
	}
	if (fd < 0) {
		e = errno;
		rv = gen_io_err(e);
		GEN_DIAG(reterr, name, NULL, GEN_DATA_FILE ": %s", strerror(e));
		goto out;
	}
	rv = gen_checksum_read(gendir, name, want, reterr);
	if (rv == VIGIL_ENOTFOUND) {
		from = gen_checksums_from(fdir);
		if (from != 0 && generation >= from) {
			char fname[32];

			gen_name(from, fname, sizeof fname);
			rv = VIGIL_ECORRUPT;
			GEN_DIAG(reterr, name, NULL, GEN_CHECKSUM_FILE " is missing (every "
			    "generation from %s on has one: features/" GEN_CHECKSUMS_FROM ")",
			    fname);
			goto out;
		}
		/* Written before checksums: opened unverified (the caller says so). */
		rv = VIGIL_OK;
		goto done;
	}
	if (rv != VIGIL_OK)
		goto out;
	e = gen_hash_fd(fd, &h, &bytes);
	if (e != 0) {
		rv = gen_io_err(e);
		GEN_DIAG(reterr, name, NULL, GEN_DATA_FILE ": read: %s", strerror(e));
		goto out;
	}
	gen_hex(&h, got);
	if (strcmp(got, want) != 0) {
		rv = VIGIL_ECORRUPT;
		store_diag_set(reterr, "features/%s: " GEN_DATA_FILE " (%" PRIu64 " bytes) does not "
		    "match " GEN_CHECKSUM_FILE ": xxh128 %s, expected %s; damaged", name, bytes, got,
		    want);
		goto out;
	}
	if ((uint64_t)st.st_size != bytes || fstat(fd, &st) != 0 ||
	    (uint64_t)st.st_size != bytes) {
		rv = VIGIL_ECORRUPT;
		GEN_DIAG(reterr, name, NULL, GEN_DATA_FILE " changed size while it was "
		    "verified");
		goto out;
	}
	verified = true;
done:
	memset(ret_check, 0, sizeof *ret_check);
	ret_check->verified = verified;
	ret_check->bytes = (uint64_t)st.st_size;
	ret_check->verify_us = (vigil_mono_ns() - t0) / 1000;
	*ret_st = st;
out:
	if (fd >= 0)
		close(fd);
	return rv;
}
