/* SPDX-License-Identifier: MIT */
/*
 * store/gendir.c - the features/ directory of a data directory: LMDB
 * errors, generation names and paths, CURRENT, the rebuild lock, listing
 * and pruning generations, and the keys of the threshold and blob tables.
 * What features/db/genread.c (reading), genw.c (writing) and gencheck.c (checksums)
 * all need; it calls none of them.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <lmdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "file.h"
#include "gen.h"
#include "gendir.h"
#include "vec.h"

const char *const gen_dbi_names[GEN_NDBI] = {
	"card", "merchant", "terminal", "threshold", "meta",
};

vigil_err
gen_err_from_mdb(int rc)
{
	switch (rc) {
	case 0:
		return VIGIL_OK;
	case MDB_NOTFOUND:
		return VIGIL_ENOTFOUND;
	case MDB_MAP_FULL:
	case MDB_READERS_FULL:
	case MDB_TXN_FULL:
	case MDB_DBS_FULL:
		return VIGIL_ELIMIT;
	case MDB_CORRUPTED:
	case MDB_PAGE_NOTFOUND:
	case MDB_INVALID:
	case MDB_INCOMPATIBLE:
	case MDB_BAD_VALSIZE:
		return VIGIL_ECORRUPT;
	case MDB_VERSION_MISMATCH:
		return VIGIL_EVERSION;
	case ENOMEM:
		return VIGIL_ENOMEM;
	default:
		return rc > 0 ? vigil_err_from_errno(rc) : VIGIL_EIO;
	}
}

/* ---------------------------------------------------------------------- */
/* Paths, CURRENT, the rebuild lock. */

vigil_err
gen_path_join(char *buf, size_t buflen, const char *a, const char *b)
{
	int n = snprintf(buf, buflen, "%s/%s", a, b);

	return n < 0 || (size_t)n >= buflen ? VIGIL_ETOOBIG : VIGIL_OK;
}

void
gen_name(uint64_t gen, char *buf, size_t buflen)
{
	snprintf(buf, buflen, "gen-%06" PRIu64, gen);
}

/* Parses "gen-<digits>" (6 or more digits) exactly; false otherwise. */
bool
gen_parse_name(const char *s, uint64_t *ret_gen)
{
	uint64_t v = 0;
	size_t   n = 0;

	if (strncmp(s, "gen-", 4) != 0)
		return false;
	for (s += 4; *s >= '0' && *s <= '9'; s++, n++) {
		if (v > GEN_MAX_NUMBER)
			return false;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	if (*s != '\0' || n < 6 || v == 0 || v > GEN_MAX_NUMBER)
		return false;
	*ret_gen = v;
	return true;
}

vigil_err
gen_current_path(const char *datadir, char *buf, size_t buflen)
{
	int n = snprintf(buf, buflen, "%s/features/CURRENT", datadir);

	return n < 0 || (size_t)n >= buflen ? VIGIL_ETOOBIG : VIGIL_OK;
}


/* Reads fdir/file (CURRENT, PENDING, CHECKSUMS_FROM): *ret_gen = 0 if there is none. */
vigil_err
gen_file_read_gen(const char *fdir, const char *file, uint64_t *ret_gen, store_diag *reterr)
{
	char      path[GEN_PATH_MAX], buf[64];
	ssize_t   n;
	int       fd = -1;
	bool      special;
	vigil_err rv;
	uint64_t  gen;

	rv = gen_path_join(path, sizeof path, fdir, file);
	if (rv != VIGIL_OK)
		goto out;
	fd = vigil_open_regular(path, &special, NULL);
	if (fd < 0 && special) {
		rv = VIGIL_ECORRUPT;
		store_diag_set(reterr, "%s: not a regular file", path);
		goto out;
	}
	if (fd < 0) {
		if (errno == ENOENT) {
			*ret_gen = 0;
			rv = VIGIL_OK;
			goto out;
		}
		rv = vigil_err_from_errno(errno);
		store_diag_set(reterr, "%s: %s", path, strerror(errno));
		goto out;
	}
	n = read(fd, buf, sizeof buf - 1);
	if (n < 0) {
		rv = vigil_err_from_errno(errno);
		store_diag_set(reterr, "%s: %s", path, strerror(errno));
		goto out;
	}
	buf[n] = '\0';
	if (n < 2 || buf[n - 1] != '\n') {
		rv = VIGIL_ECORRUPT;
		store_diag_set(reterr, "%s: expected \"gen-NNNNNN\\n\", got %zd bytes", path, n);
		goto out;
	}
	buf[n - 1] = '\0';
	if (!gen_parse_name(buf, &gen)) {
		rv = VIGIL_ECORRUPT;
		store_diag_set(reterr, "%s: expected \"gen-NNNNNN\", got \"%.40s\"", path, buf);
		goto out;
	}
	*ret_gen = gen;
	rv = VIGIL_OK;
out:
	if (fd >= 0)
		close(fd);
	return rv;
}

/*
 * Replaces dir/name with text[0..len) atomically: dir/name.tmp written and
 * fsynced, closed, renamed over dir/name, dir fsynced. The one way this file
 * writes its small files (CURRENT, CHECKSUM, CHECKSUMS_FROM).
 */
vigil_err
gen_file_replace(const char *dir, const char *name, const char *text, size_t len,
    store_diag *reterr)
{
	char      path[GEN_PATH_MAX], tmp[GEN_PATH_MAX];
	int       fd, e = 0;
	vigil_err rv;

	if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path ||
	    snprintf(tmp, sizeof tmp, "%s/%s.tmp", dir, name) >= (int)sizeof tmp) {
		store_diag_set(reterr, "%s: path too long", dir);
		return VIGIL_ETOOBIG;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, text, len) != (ssize_t)len || fsync(fd) != 0)
		e = errno ? errno : EIO;
	if (fd >= 0 && close(fd) != 0 && e == 0)
		e = errno;
	if (e != 0) {
		store_diag_set(reterr, "%s: %s", tmp, strerror(e));
		return vigil_err_from_errno(e);
	}
	if (rename(tmp, path) != 0) {
		e = errno;
		store_diag_set(reterr, "%s: rename: %s", path, strerror(e));
		return vigil_err_from_errno(e);
	}
	rv = vigil_fsync_dir(dir);
	if (rv != VIGIL_OK)
		store_diag_set(reterr, "%s: fsync: %s", dir, vigil_strerror(rv));
	return rv;
}

/* Replaces fdir/CURRENT atomically (gen_file_replace). */
vigil_err
gen_cur_write(const char *fdir, uint64_t gen, store_diag *reterr)
{
	char line[32];
	size_t len;

	gen_name(gen, line, sizeof line);
	len = strlen(line);
	line[len++] = '\n';
	return gen_file_replace(fdir, "CURRENT", line, len, reterr);
}

/* Takes the rebuild lock fdir/LOCK (creating fdir); *ret_fd holds it. */
vigil_err
gen_lock_take(const char *fdir, int *ret_fd, store_diag *reterr)
{
	char path[GEN_PATH_MAX];
	int  fd;

	if (mkdir(fdir, 0755) != 0 && errno != EEXIST) {
		store_diag_set(reterr, "%s: mkdir: %s", fdir, strerror(errno));
		return vigil_err_from_errno(errno);
	}
	if (gen_path_join(path, sizeof path, fdir, "LOCK") != VIGIL_OK) {
		store_diag_set(reterr, "%s: path too long", fdir);
		return VIGIL_ETOOBIG;
	}
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		store_diag_set(reterr, "%s: %s", path, strerror(errno));
		return vigil_err_from_errno(errno);
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		int e = errno;

		close(fd);
		if (e == EWOULDBLOCK) {
			store_diag_set(reterr, "%s: another rebuild holds the lock", path);
			return VIGIL_EBUSY;
		}
		store_diag_set(reterr, "%s: flock: %s", path, strerror(e));
		return vigil_err_from_errno(e);
	}
	*ret_fd = fd;
	return VIGIL_OK;
}

void
gen_pending_settle(const char *fdir, uint64_t cur)
{
	char path[GEN_PATH_MAX], dir[GEN_PATH_MAX], name[32];
	uint64_t pend = 0;

	if (gen_file_read_gen(fdir, GEN_PENDING, &pend, NULL) != VIGIL_OK || pend == 0 ||
	    gen_path_join(path, sizeof path, fdir, GEN_PENDING) != VIGIL_OK)
		return;
	gen_name(pend, name, sizeof name);
	if (pend == cur || (gen_path_join(dir, sizeof dir, fdir, name) == VIGIL_OK &&
	    gen_dir_remove(dir) == VIGIL_OK))
		(void)unlink(path);
}

/* Removes a generation (or temp) directory and the files in it. */
vigil_err
gen_dir_remove(const char *dir)
{
	DIR           *d = opendir(dir);
	struct dirent *de;
	char           path[GEN_PATH_MAX];
	vigil_err      rv = VIGIL_OK;

	if (d == NULL)
		return errno == ENOENT ? VIGIL_OK : vigil_err_from_errno(errno);
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (gen_path_join(path, sizeof path, dir, de->d_name) != VIGIL_OK ||
		    unlink(path) != 0)
			rv = VIGIL_EIO;
	}
	closedir(d);
	if (rmdir(dir) != 0 && rv == VIGIL_OK)
		rv = vigil_err_from_errno(errno);
	return rv;
}

static int
u64_cmp_desc(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? 1 : x > y ? -1 : 0;
}

/*
 * Lists generation numbers in fdir (sorted, newest first) into a malloc'd
 * array; also removes stale ".tmp-gen-*" directories when clean_tmp (only
 * under the rebuild lock, so they cannot belong to a live writer).
 */
vigil_err
gen_list(const char *fdir, bool clean_tmp, uint64_t **ret_gens, size_t *ret_n)
{
	DIR           *d = opendir(fdir);
	struct dirent *de;
	uint64_t      *gens = NULL, g;
	size_t         n = 0, cap = 0;
	char           path[GEN_PATH_MAX];
	vigil_err      rv = VIGIL_OK;

	if (d == NULL) {
		if (errno == ENOENT) {
			*ret_gens = NULL;
			*ret_n = 0;
			return VIGIL_OK;
		}
		return vigil_err_from_errno(errno);
	}
	while ((de = readdir(d)) != NULL) {
		if (clean_tmp && strncmp(de->d_name, ".tmp-gen-", 9) == 0) {
			if (gen_path_join(path, sizeof path, fdir, de->d_name) == VIGIL_OK)
				(void)gen_dir_remove(path);
			continue;
		}
		if (!gen_parse_name(de->d_name, &g))
			continue;
		rv = vigil_array_reserve(&gens, &cap, n + 1, sizeof *gens, 16, SIZE_MAX);
		if (rv != VIGIL_OK)
			goto out;
		gens[n++] = g;
	}
	if (n > 1)
		qsort(gens, n, sizeof *gens, u64_cmp_desc);
	*ret_gens = gens;
	*ret_n = n;
	gens = NULL;
out:
	closedir(d);
	free(gens);
	return rv;
}

/* Removes generations beyond the newest keep, never current. */
vigil_err
gen_prune(const char *fdir, uint32_t keep, uint64_t current, store_diag *reterr)
{
	uint64_t *gens = NULL;
	size_t    n = 0;
	char      name[32], path[GEN_PATH_MAX];
	vigil_err rv, r;

	rv = gen_list(fdir, false, &gens, &n);
	if (rv != VIGIL_OK) {
		store_diag_set(reterr, "%s: listing generations to prune: %s", fdir, vigil_strerror(rv));
		goto out;
	}
	for (size_t i = keep; i < n; i++) {
		if (gens[i] == current)
			continue;
		gen_name(gens[i], name, sizeof name);
		if (gen_path_join(path, sizeof path, fdir, name) != VIGIL_OK)
			continue;
		r = gen_dir_remove(path);
		if (r != VIGIL_OK && rv == VIGIL_OK) {
			rv = r;
			store_diag_set(reterr, "%s: pruning: %s", path, vigil_strerror(r));
		}
	}
out:
	free(gens);
	return rv;
}

/* ---------------------------------------------------------------------- */
/* Table keys. */

/* Blobs live in the meta table under "blob/NAME": no new table, so a
 * generation written before blobs existed simply has none. */

vigil_err
gen_blob_key(const char *name, char *buf, size_t cap, size_t *ret_len)
{
	size_t n;

	if (name == NULL)
		return VIGIL_EINVAL;
	n = strnlen(name, STORE_BLOB_NAME_MAX + 1);
	if (n == 0 || n > STORE_BLOB_NAME_MAX)
		return VIGIL_EINVAL;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
		    c == '-'))
			return VIGIL_EINVAL;
	}
	if (sizeof GEN_BLOB_PREFIX - 1 + n >= cap)
		return VIGIL_EINVAL;
	memcpy(buf, GEN_BLOB_PREFIX, sizeof GEN_BLOB_PREFIX - 1);
	memcpy(buf + sizeof GEN_BLOB_PREFIX - 1, name, n);
	*ret_len = sizeof GEN_BLOB_PREFIX - 1 + n;
	return VIGIL_OK;
}

vigil_err
store_gen_current(const char *datadir, uint64_t *ret_generation)
{
	char fdir[GEN_PATH_MAX];

	if (gen_path_join(fdir, sizeof fdir, datadir, "features") != VIGIL_OK)
		return VIGIL_ETOOBIG;
	return gen_cur_read(fdir, ret_generation, NULL);
}

vigil_err
gen_current_read(const char *datadir, uint64_t *ret_gen, store_diag *reterr)
{
	char fdir[GEN_PATH_MAX];

	if (gen_path_join(fdir, sizeof fdir, datadir, "features") != VIGIL_OK) {
		store_diag_set(reterr, "%s: path too long", datadir);
		return VIGIL_ETOOBIG;
	}
	return gen_cur_read(fdir, ret_gen, reterr);
}
