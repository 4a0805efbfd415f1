/* SPDX-License-Identifier: MIT */
/*
 * tests/store_archive/test_tool.c - the vigil-archive CLI (path in argv[1]):
 * verify on a clean and on a damaged archive (exit status and the
 * "vigil-archive: FILE:OFFSET:" line), dump as JSON lines with a time range,
 * stats, and the usage / I/O error exits: a directory that is not an
 * archive, an empty or inverted time range, a read that fails part-way.
 */
#include <dirent.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <zstd.h>

#include "tmpdir.h"
#include "archive_int.h"
#include "archive.h"

static const char *tool;
static char dir[256];

/* Runs the tool with args (shell words) and the shell redirections redir,
 * what reaches its stdout into out. Returns the exit status. */
static int
run_tool_redir(const char *args, const char *redir, char *out, size_t outlen)
{
	char cmd[1024];
	FILE *p;
	size_t n;
	int st;

	snprintf(cmd, sizeof cmd, "'%s' %s %s", tool, args, redir);
	p = popen(cmd, "r");
	assert_non_null(p);
	n = fread(out, 1, outlen - 1, p);
	out[n] = '\0';
	st = pclose(p);
	assert_true(WIFEXITED(st));
	return WEXITSTATUS(st);
}

/* stdout and (stderr_too) stderr into out. */
static int
run_tool_out(const char *args, bool stderr_too, char *out, size_t outlen)
{
	return run_tool_redir(args, stderr_too ? "2>&1" : "2>/dev/null", out, outlen);
}

/* stderr alone into out. */
static int
run_tool_err(const char *args, char *out, size_t outlen)
{
	return run_tool_redir(args, "2>&1 >/dev/null", out, outlen);
}

static int
run_tool(const char *args, char *out, size_t outlen)
{
	return run_tool_out(args, true, out, outlen);
}

/* In d: 11 records in a closed segment, 1 in the open one after it. */
static void
make_archive_in(const char *d)
{
	store_archive_opts o;
	store_archive *ar;
	static store_scored s;
	store_label l = { .fraud = true, .label_time_ms = 5, .received_at_ms = 6 };
	uint8_t buf[4096];
	size_t len;

	store_archive_opts_default(&o);
	o.fsync = STORE_FSYNC_NEVER;
	assert_int_equal(store_archive_open(d, &o, &ar, NULL, NULL), VIGIL_OK);
	strcpy(s.txn.txn_id, "t-1");
	strcpy(s.txn.card_id, "c-1");
	strcpy(s.txn.merchant_id, "m-1");
	strcpy(s.txn.currency, "EUR");
	s.txn.amount_minor = 500;
	s.decision = VIGIL_DECISION_DECLINE;
	s.score = 90;
	s.nhits = 1;
	strcpy(s.hits[0].rule, "big_amount");
	s.hits[0].points = 90;
	s.nfeats = 2;
	strcpy(s.feats[0].name, "amount");
	s.feats[0].val = vigil_value_num(5);
	strcpy(s.feats[1].name, "country");
	s.feats[1].val = vigil_value_missing();
	for (int i = 0; i < 10; i++) {
		s.txn.event_time_ms = 1763700000000LL + i * 1000;
		assert_int_equal(store_scored_encode(&s, buf, sizeof buf, &len), VIGIL_OK);
		assert_int_equal(store_archive_append(ar, STORE_REC_SCORE, s.txn.event_time_ms, buf, len,
		    NULL), VIGIL_OK);
	}
	strcpy(l.txn_id, "t-1");
	strcpy(l.source, "chargeback");
	assert_int_equal(store_label_encode(&l, buf, sizeof buf, &len), VIGIL_OK);
	assert_int_equal(store_archive_append(ar, STORE_REC_LABEL, 1763700020000LL, buf, len, NULL),
	    VIGIL_OK);
	assert_int_equal(store_archive_rotate(ar, NULL), VIGIL_OK);
	assert_int_equal(store_archive_append(ar, STORE_REC_LABEL, 1763700030000LL, buf, len, NULL),
	    VIGIL_OK);
	store_archive_close(ar);
}

static void
make_archive(void)
{
	make_archive_in(dir);
}

/* Writes the segment seg to zpath compressed as one zstd frame with its
 * frame table (records: the frame's), the frame's magic number damaged if
 * damage. */
static void
write_zst(const char *seg, const char *zpath, uint32_t records, bool damage)
{
	store_zent z = { .records = records };
	uint8_t *log, *zb;
	size_t cap;
	int fd = open(seg, O_RDONLY);
	off_t len = lseek(fd, 0, SEEK_END);

	assert_true(len > 0);
	log = malloc((size_t)len);
	assert_int_equal(pread(fd, log, (size_t)len, 0), len);
	close(fd);
	cap = ZSTD_compressBound((size_t)len) + STORE_ZTAB_LEN(1);
	zb = malloc(cap);
	z.usize = (uint32_t)len;
	z.csize = (uint32_t)ZSTD_compress(zb, cap, log, (size_t)len, 3);
	assert_false(ZSTD_isError(z.csize));
	if (damage)
		zb[0] ^= 0xff;
	store_ztab_encode(&z, 1, zb + z.csize);
	fd = open(zpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_int_equal(write(fd, zb, z.csize + STORE_ZTAB_LEN(1)), z.csize + STORE_ZTAB_LEN(1));
	close(fd);
	free(zb);
	free(log);
}

/* A sealed (compressed) segment whose index is gone is "noidx" in stats,
 * scanned, not "open": only the segment being written has no index. */
static void
stats_zst_without_index(const char *seg, const char *base)
{
	char zdir[256], zpath[700], args[800], want[300], out[4096];

	assert_int_equal(vt_tmpdir_make("vigil-tool-zst", zdir, sizeof zdir), 0);
	snprintf(zpath, sizeof zpath, "%s/%s.log.zst", zdir, base);
	write_zst(seg, zpath, 11, false);
	snprintf(args, sizeof args, "stats '%s'", zdir);
	assert_int_equal(run_tool(args, out, sizeof out), 0);
	snprintf(want, sizeof want, "%-34s %-4s %-6s ", base, "zst", "noidx");
	assert_non_null(strstr(out, want));
	/* a compressed segment: disk_bytes its file's size, bytes uncompressed */
	snprintf(args, sizeof args, "stats --json '%s'", zdir);
	assert_int_equal(run_tool(args, out, sizeof out), 0);
	{
		json_t *o = json_loads(out, 0, NULL), *sg;
		struct stat st;

		assert_non_null(o);
		sg = json_array_get(json_object_get(o, "segments"), 0);
		assert_int_equal(stat(zpath, &st), 0);
		assert_int_equal(json_integer_value(json_object_get(sg, "disk_bytes")), st.st_size);
		assert_true(json_integer_value(json_object_get(sg, "bytes")) > st.st_size);
		json_decref(o);
	}
	vt_tmpdir_remove(zdir);
}

/* The segment seg compressed, its frame damaged: verify counts the frame's
 * records as lost, from the table, beside the stretch. */
static void
verify_lost_frame(const char *seg, char *out, size_t outsize)
{
	char zpath[600], args[700];

	snprintf(zpath, sizeof zpath, "%s/copy.log.zst", dir);
	write_zst(seg, zpath, 11, true);
	snprintf(args, sizeof args, "verify --quiet '%s'", zpath);
	assert_int_equal(run_tool(args, out, outsize), 1);
	assert_non_null(strstr(out, "copy.log.zst:0: damaged zstd frame 0 ("));
	assert_non_null(strstr(out, ": 0 records in 1 segments, 1 corrupt stretches"));
	assert_non_null(strstr(out, ", 11 records lost in damaged zstd frames: DAMAGED"));
	unlink(zpath);
}

/* 120 records whose payloads do not decode: 100 lines name them, one more
 * says how many were not printed, the summary counts all 120. */
static void
verify_many_lines(char *out, size_t outsize)
{
	uint8_t hdr[STORE_FRAME_HDR];
	char path[600], args[700];
	json_int_t n;
	int fd;

	snprintf(path, sizeof path, "%s/many.log", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	for (uint64_t seq = 1; seq <= 120; seq++) {
		store_frame_header(hdr, STORE_REC_SCORE, seq, 1763700000000LL, "", 0);
		assert_int_equal(write(fd, hdr, sizeof hdr), sizeof hdr);
	}
	close(fd);
	snprintf(args, sizeof args, "verify --quiet '%s'", path);
	assert_int_equal(run_tool(args, out, outsize), 1);
	snprintf(args, sizeof args, "vigil-archive: %s:3168: seq 100: ", path);
	assert_non_null(strstr(out, args));
	assert_null(strstr(out, "many.log:3200: seq 101: "));
	assert_non_null(strstr(out, "many.log: 20 more lines of damage not printed; the summary "
	    "counts them\n"));
	assert_non_null(strstr(out, ": 120 records in 1 segments, 0 corrupt stretches (0 bytes), "
	    "120 undecodable payloads, 0 records lost"));
	/* dump: a line each, its error the object of docs/tools.md ("JSON errors") */
	snprintf(args, sizeof args, "dump '%s'", path);
	assert_int_equal(run_tool_out(args, false, out, outsize), 1);
	n = 0;
	for (char *line = strtok(out, "\n"); line != NULL; line = strtok(NULL, "\n")) {
		json_t *o = json_loads(line, 0, NULL), *err, *where;

		assert_non_null(o);
		n++;
		err = json_object_get(o, "error");
		where = json_object_get(err, "where");
		assert_int_equal(json_integer_value(json_object_get(o, "seq")), n);
		assert_string_equal(json_string_value(json_object_get(err, "code")), "MALFORMED");
		assert_string_equal(json_string_value(json_object_get(err, "message")),
		    "ArchivedScore.txn: missing");
		assert_string_equal(json_string_value(json_object_get(where, "file")), "many.log");
		assert_int_equal(json_integer_value(json_object_get(where, "offset")),
		    (json_int_t)(n - 1) * STORE_FRAME_HDR);
		assert_int_equal(json_object_size(err), 3);
		json_decref(o);
	}
	assert_int_equal(n, 120);
	unlink(path);
}

/* verify --json's line at out: the counts, the status. */
static void
check_verify_json(const char *out, json_int_t records, json_int_t stretches, const char *status)
{
	json_error_t e;
	json_t *o = json_loadb(out, strcspn(out, "\n"), 0, &e);

	if (o == NULL)
		fail_msg("not JSON (%s): %s", e.text, out);
	assert_string_equal(json_string_value(json_object_get(o, "path")), dir);
	assert_int_equal(json_integer_value(json_object_get(o, "records")), records);
	assert_int_equal(json_integer_value(json_object_get(o, "segments")), 2);
	assert_int_equal(json_integer_value(json_object_get(o, "corrupt_stretches")), stretches);
	assert_true(json_is_integer(json_object_get(o, "corrupt_bytes")));
	assert_int_equal(json_integer_value(json_object_get(o, "undecodable")), 0);
	assert_int_equal(json_integer_value(json_object_get(o, "lost_records")), 0);
	assert_string_equal(json_string_value(json_object_get(o, "status")), status);
	json_decref(o);
}

/* What the seg-* files of archive directory d take on disk. */
static uint64_t
seg_files_bytes(const char *d)
{
	DIR *dp = opendir(d);
	struct dirent *e;
	uint64_t sum = 0;

	assert_non_null(dp);
	while ((e = readdir(dp)) != NULL) {
		char p[1024];
		struct stat st;

		if (strncmp(e->d_name, "seg-", 4) != 0)
			continue;
		snprintf(p, sizeof p, "%s/%s", d, e->d_name);
		assert_int_equal(stat(p, &st), 0);
		sum += (uint64_t)st.st_size;
	}
	closedir(dp);
	return sum;
}

/* stats --json of make_archive's directory: two segments and the total;
 * disk_bytes is what the segments' files take, the total their sum. */
static void
check_stats_json(const char *out)
{
	json_error_t e;
	json_t *o = json_loads(out, 0, &e), *segs, *tot;

	if (o == NULL)
		fail_msg("not one JSON document (%s): %s", e.text, out);
	segs = json_object_get(o, "segments");
	tot = json_object_get(o, "total");
	assert_int_equal(json_array_size(segs), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(segs, 0), "state")),
	    "closed");
	assert_string_equal(json_string_value(json_object_get(json_array_get(segs, 1), "state")),
	    "open");
	assert_string_equal(json_string_value(json_object_get(json_array_get(segs, 0), "form")),
	    "log");
	assert_int_equal(json_integer_value(json_object_get(json_array_get(segs, 0), "records")), 11);
	assert_int_equal(json_integer_value(json_object_get(tot, "records")), 12);
	assert_int_equal(json_integer_value(json_object_get(tot, "first_seq")), 1);
	assert_int_equal(json_integer_value(json_object_get(tot, "last_seq")), 12);
	assert_int_equal(json_integer_value(json_object_get(tot, "min_event_ms")), 1763700000000LL);
	assert_int_equal(json_integer_value(json_object_get(tot, "max_event_ms")), 1763700030000LL);
	assert_null(json_object_get(tot, "segment"));
	assert_true(json_integer_value(json_object_get(json_array_get(segs, 0), "disk_bytes")) > 0);
	assert_int_equal(json_integer_value(json_object_get(tot, "disk_bytes")),
	    json_integer_value(json_object_get(json_array_get(segs, 0), "disk_bytes")) +
	    json_integer_value(json_object_get(json_array_get(segs, 1), "disk_bytes")));
	assert_int_equal(json_integer_value(json_object_get(tot, "disk_bytes")),
	    (json_int_t)seg_files_bytes(dir));
	json_decref(o);
}

static void
test_tool(void **state)
{
	static char out[1 << 16];
	char args[600], seg[512], seg_base[64], *line;
	store_seg_ent *ents;
	size_t n, nlines = 0;
	uint8_t b;
	int fd;

	(void)state;
	make_archive();

	assert_int_equal(run_tool("--help", out, sizeof out), 0);
	assert_non_null(strstr(out, "usage: vigil-archive verify"));
	assert_int_equal(run_tool("frobnicate", out, sizeof out), 2);
	assert_string_equal(out, "vigil-archive: unknown command 'frobnicate' (see --help)\n");
	assert_int_equal(run_tool("dump --from yesterday x", out, sizeof out), 2);
	/* a PATH that does not exist is a missing input: 2 (docs/tools.md) */
	assert_int_equal(run_tool("verify /nonexistent/archive", out, sizeof out), 2);
	assert_string_equal(out, "vigil-archive: /nonexistent/archive: No such file or directory\n"
	    "/nonexistent/archive: not verified (no archive there): MISSING\n");

	snprintf(args, sizeof args, "verify '%s'", dir);
	assert_int_equal(run_tool(args, out, sizeof out), 0);
	assert_non_null(strstr(out, ": 12 records in 2 segments, 0 corrupt stretches (0 bytes), "
	    "0 undecodable payloads, 0 records lost in damaged zstd frames: OK"));
	snprintf(args, sizeof args, "verify --json '%s'", dir);
	assert_int_equal(run_tool(args, out, sizeof out), 0);
	check_verify_json(out, 12, 0, "ok");
	/* a missing PATH among others: said, summed up, the others verified;
	 * the missing input's code at the end */
	snprintf(args, sizeof args, "verify '%s' /nonexistent/archive '%s'", dir, dir);
	assert_int_equal(run_tool_out(args, false, out, sizeof out), 2);
	{
		char want[1400];
		const char *ok = ": 12 records in 2 segments, 0 corrupt stretches (0 bytes), 0 "
		    "undecodable payloads, 0 records lost in damaged zstd frames: OK\n";

		snprintf(want, sizeof want, "%s%s/nonexistent/archive: not verified (no archive "
		    "there): MISSING\n%s%s", dir, ok, dir, ok);
		assert_string_equal(out, want);
	}
	snprintf(args, sizeof args, "verify /nonexistent/archive '%s'", dir);
	assert_int_equal(run_tool_err(args, out, sizeof out), 2);
	assert_string_equal(out, "vigil-archive: /nonexistent/archive: No such file or directory\n");
	snprintf(args, sizeof args, "verify -j /nonexistent/archive '%s'", dir);
	assert_int_equal(run_tool_out(args, false, out, sizeof out), 2);
	assert_non_null(strstr(out, "{\"path\":\"/nonexistent/archive\",\"status\":\"missing\"}\n"));
	check_verify_json(strchr(out, '\n') + 1, 12, 0, "ok");

	/* dump: JSON lines, range applied */
	snprintf(args, sizeof args, "dump --from 1763700002000 --to 2025-11-21T04:40:05Z '%s'", dir);
	assert_int_equal(run_tool(args, out, sizeof out), 0);
	for (line = strtok(out, "\n"); line != NULL; line = strtok(NULL, "\n")) {
		json_error_t e;
		json_t *o = json_loads(line, 0, &e);
		assert_non_null(o);
		assert_string_equal(json_string_value(json_object_get(o, "type")), "score");
		assert_string_equal(json_string_value(json_object_get(o, "decision")), "decline");
		assert_true(json_is_null(json_object_get(json_object_get(o, "features"), "country")));
		assert_int_equal(json_integer_value(json_object_get(o, "seq")), 3 + (json_int_t)nlines);
		json_decref(o);
		nlines++;
	}
	assert_int_equal(nlines, 3); /* 1763700002000 .. 1763700004000 */

	snprintf(args, sizeof args, "stats '%s'", dir);
	assert_int_equal(run_tool(args, out, sizeof out), 0);
	assert_non_null(strstr(out, "closed"));
	assert_non_null(strstr(out, "open"));
	assert_non_null(strstr(out, "total"));
	snprintf(args, sizeof args, "stats --json '%s'", dir);
	assert_int_equal(run_tool(args, out, sizeof out), 0);
	check_stats_json(out);
	/* each command's --help is the program's, exit 0 */
	assert_int_equal(run_tool("stats --help", out, sizeof out), 0);
	assert_non_null(strstr(out, "usage: vigil-archive verify"));
	assert_int_equal(run_tool("verify -h", out, sizeof out), 0);
	assert_non_null(strstr(out, "       vigil-archive stats [-j | --json] PATH\n"));
	assert_int_equal(run_tool("dump --help", out, sizeof out), 0);
	assert_int_equal(run_tool("stats", out, sizeof out), 2);
	assert_string_equal(out, "vigil-archive: stats: exactly one PATH expected (see --help)\n");

	/* damage a payload byte of the first record: verify reports it, exit 1 */
	assert_int_equal(store_seg_list(dir, &ents, &n, NULL), VIGIL_OK);
	(void)n;
	snprintf(seg, sizeof seg, "%s/%s.log", dir, ents[0].base);
	snprintf(seg_base, sizeof seg_base, "%s", ents[0].base);
	{
		/* first, its index unreadable: stats scans the segment, says so, exit 1 */
		char idx[600], keep[64];
		ssize_t klen;

		snprintf(idx, sizeof idx, "%s/%s.idx", dir, ents[0].base);
		fd = open(idx, O_RDWR);
		assert_true(fd >= 0);
		klen = pread(fd, keep, sizeof keep, 0);
		assert_true(klen > 0);
		assert_int_equal(pwrite(fd, "garbage", 7, 0), 7);
		snprintf(args, sizeof args, "stats '%s'", dir);
		assert_int_equal(run_tool(args, out, sizeof out), 1);
		assert_non_null(strstr(out, ".idx: unreadable segment index; the segment was scanned"));
		assert_non_null(strstr(out, " badidx "));
		assert_int_equal(pwrite(fd, keep, (size_t)klen, 0), klen);
		close(fd);
		assert_int_equal(run_tool(args, out, sizeof out), 0);
	}
	free(ents);
	stats_zst_without_index(seg, seg_base);
	fd = open(seg, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &b, 1, 40), 1);
	b ^= 0x01;
	assert_int_equal(pwrite(fd, &b, 1, 40), 1);
	close(fd);
	snprintf(args, sizeof args, "verify --quiet '%s'", dir);
	assert_int_equal(run_tool(args, out, sizeof out), 1);
	/* the line begins with the program and names the file to open
	 * (docs/tools.md: FILE:OFFSET:), not the bare segment name */
	snprintf(args, sizeof args, "vigil-archive: %s/%s.log:0: CRC mismatch (", dir, seg_base);
	assert_non_null(strstr(out, args));
	assert_non_null(strstr(out, ": 11 records in 2 segments, 1 corrupt stretches"));
	assert_non_null(strstr(out, "DAMAGED"));
	snprintf(args, sizeof args, "verify -q -j '%s' '%s'", dir, dir);
	assert_int_equal(run_tool_out(args, false, out, sizeof out), 1);
	check_verify_json(out, 11, 1, "damaged");
	check_verify_json(strchr(out, '\n') + 1, 11, 1, "damaged"); /* one line per PATH */
	/* a single segment file works too */
	snprintf(args, sizeof args, "verify --quiet '%s'", seg);
	assert_int_equal(run_tool(args, out, sizeof out), 1);
	verify_lost_frame(seg, out, sizeof out);
	verify_many_lines(out, sizeof out);
}

/* An archive store_archive_open made and nothing wrote (only LOCK, and
 * JOURNAL unless fsync is always) is an empty archive: OK, exit 0. */
static void
check_empty_archive(const char *d, store_fsync fsync)
{
	store_archive_opts o;
	store_archive *ar;
	char args[600], out[4096];

	store_archive_opts_default(&o);
	o.fsync = fsync;
	assert_int_equal(store_archive_open(d, &o, &ar, NULL, NULL), VIGIL_OK);
	store_archive_close(ar);
	snprintf(args, sizeof args, "verify -q '%s'", d);
	assert_int_equal(run_tool(args, out, sizeof out), 0);
	assert_non_null(strstr(out, ": 0 records in 0 segments, 0 corrupt stretches (0 bytes), "
	    "0 undecodable payloads, 0 records lost in damaged zstd frames: OK\n"));
	snprintf(args, sizeof args, "stats '%s'", d);
	assert_int_equal(run_tool(args, out, sizeof out), 0);
	assert_non_null(strstr(out, "total"));
	snprintf(args, sizeof args, "dump '%s'", d);
	assert_int_equal(run_tool(args, out, sizeof out), 0);
	assert_string_equal(out, "");
}

/*
 * A directory that is no archive (a data directory, /etc, features/) is a
 * wrong PATH, 2, with one line saying so; before, verify said "0 records
 * in 0 segments ... OK" and exited 0, so a health check on the wrong path
 * passed. An empty but real archive still passes.
 */
static void
test_not_archive(void **state)
{
	char top[256], sub[600], args[1400], want[1400], out[4096];
	static const char *const cmds[] = { "verify", "verify -q --json", "stats", "dump" };
	FILE *f;

	(void)state;
	assert_int_equal(vt_tmpdir_make("vigil-tool-na", top, sizeof top), 0);
	/* a data directory without its archive/ made yet: a file, a subdirectory */
	snprintf(sub, sizeof sub, "%s/vigild.ini", top);
	f = fopen(sub, "w");
	assert_non_null(f);
	fclose(f);
	snprintf(sub, sizeof sub, "%s/features", top);
	assert_int_equal(mkdir(sub, 0755), 0);
	for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
		/* the error line alone (verify also sums the PATH up on stdout) */
		snprintf(args, sizeof args, "%s '%s'", cmds[i], top);
		assert_int_equal(run_tool_err(args, out, sizeof out), 2);
		snprintf(want, sizeof want, "vigil-archive: %s: not an archive directory (no seg-* "
		    "file, no JOURNAL, no LOCK)\n", top);
		assert_string_equal(out, want);
	}
	/* features/ has a LOCK of its own, and its generations */
	snprintf(sub, sizeof sub, "%s/features/LOCK", top);
	f = fopen(sub, "w");
	assert_non_null(f);
	fclose(f);
	snprintf(sub, sizeof sub, "%s/features/CURRENT", top);
	f = fopen(sub, "w");
	assert_non_null(f);
	fclose(f);
	snprintf(sub, sizeof sub, "%s/features", top);
	snprintf(args, sizeof args, "verify '%s'", sub);
	assert_int_equal(run_tool_err(args, out, sizeof out), 2);
	snprintf(want, sizeof want, "vigil-archive: %s: not an archive directory (it holds feature "
	    "generations)\n", sub);
	assert_string_equal(out, want);

	snprintf(sub, sizeof sub, "%s/archive", top);
	check_empty_archive(sub, STORE_FSYNC_ALWAYS); /* LOCK alone */
	snprintf(sub, sizeof sub, "%s/archive2", top);
	check_empty_archive(sub, STORE_FSYNC_INTERVAL); /* LOCK and JOURNAL */
	/* the data directory, now with its archive/: refused, naming the archive */
	for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
		snprintf(args, sizeof args, "%s '%s'", cmds[i], top);
		assert_int_equal(run_tool_err(args, out, sizeof out), 2);
		snprintf(want, sizeof want, "vigil-archive: %s: not an archive directory (a data "
		    "directory? its archive is %s/archive)\n", top, top);
		assert_string_equal(out, want);
	}
	vt_tmpdir_remove(top);
}

/* An empty or inverted --from/--to range, or a time before 1970, is a usage
 * error: before, dump took them and printed nothing, exit 0. */
static void
test_dump_range(void **state)
{
	char out[4096];

	(void)state;
	assert_int_equal(run_tool("dump --from 2026-11-22 --to 2026-11-20 x", out, sizeof out), 2);
	assert_string_equal(out, "vigil-archive: dump: --from 2026-11-22 is not before --to "
	    "2026-11-20: the range [from, to) is empty (see --help)\n");
	assert_int_equal(run_tool("dump --to 1000 --from 1000 x", out, sizeof out), 2);
	assert_string_equal(out, "vigil-archive: dump: --from 1000 is not before --to 1000: "
	    "the range [from, to) is empty (see --help)\n");
	assert_int_equal(run_tool("dump --from -1 x", out, sizeof out), 2);
	assert_string_equal(out, "vigil-archive: dump: --from -1: not a date, RFC 3339 time or "
	    "Unix ms (see --help)\n");
	assert_int_equal(run_tool("dump --to +5 x", out, sizeof out), 2);
	assert_string_equal(out, "vigil-archive: dump: --to +5: not a date, RFC 3339 time or "
	    "Unix ms (see --help)\n");
}

/* `verify -q a b` says on stderr that segment seg of a is not a regular
 * file and a's rest is not verified; exit 1. */
static void
verify_names_segment(const char *a, const char *b, const char *seg)
{
	char args[1400], want[1400], out[8192];

	snprintf(args, sizeof args, "verify -q '%s' '%s'", a, b);
	assert_int_equal(run_tool_err(args, out, sizeof out), 1);
	snprintf(want, sizeof want, "vigil-archive: %s:0: not a regular file; the rest of %s is not "
	    "verified\n", seg, a);
	assert_string_equal(out, want);
}

/*
 * A PATH whose reading fails part-way (its second segment a directory: the
 * reader's error, not damage) is named with the place reading stopped,
 * summed up as far as it was read, ERROR, and the next PATH is verified;
 * exit 1. Before, verify stopped at the error: no summary line for it, the
 * next PATH never verified. A FIFO there is refused the same way.
 */
static void
test_verify_read_error(void **state)
{
	char top[256], a[300], b[300], seg[600], args[1400], want[1400], out[8192];
	const char *rest = ", 0 corrupt stretches (0 bytes), 0 undecodable payloads, 0 records "
	    "lost in damaged zstd frames";
	store_seg_ent *ents;
	json_t *o, *err, *where;
	size_t n;

	(void)state;
	assert_int_equal(vt_tmpdir_make("vigil-tool-rd", top, sizeof top), 0);
	snprintf(a, sizeof a, "%s/a", top);
	snprintf(b, sizeof b, "%s/b", top);
	make_archive_in(a);
	make_archive_in(b);
	assert_int_equal(store_seg_list(a, &ents, &n, NULL), VIGIL_OK);
	assert_int_equal(n, 2);
	snprintf(seg, sizeof seg, "%s/%s.log", a, ents[1].base);
	assert_int_equal(unlink(seg), 0);
	assert_int_equal(mkdir(seg, 0755), 0);

	verify_names_segment(a, b, seg);
	snprintf(args, sizeof args, "verify -q '%s' '%s'", a, b);
	assert_int_equal(run_tool_out(args, false, out, sizeof out), 1);
	snprintf(want, sizeof want, "%s: 11 records in 1 segments%s, not read to the end: ERROR\n"
	    "%s: 12 records in 2 segments%s: OK\n", a, rest, b, rest);
	assert_string_equal(out, want);

	snprintf(args, sizeof args, "verify -q -j '%s' '%s'", a, b);
	assert_int_equal(run_tool_out(args, false, out, sizeof out), 1);
	o = json_loadb(out, strcspn(out, "\n"), 0, NULL);
	assert_non_null(o);
	assert_string_equal(json_string_value(json_object_get(o, "status")), "error");
	assert_int_equal(json_integer_value(json_object_get(o, "records")), 11);
	err = json_object_get(o, "error");
	where = json_object_get(err, "where");
	assert_string_equal(json_string_value(json_object_get(err, "message")),
	    "not a regular file");
	snprintf(want, sizeof want, "%s.log", ents[1].base);
	assert_string_equal(json_string_value(json_object_get(where, "file")), want);
	assert_int_equal(json_integer_value(json_object_get(where, "offset")), 0);
	json_decref(o);
	o = json_loads(strchr(out, '\n') + 1, 0, NULL);
	assert_non_null(o);
	assert_string_equal(json_string_value(json_object_get(o, "status")), "ok");
	json_decref(o);

	/* the same segment a FIFO: the same answer, not an open(2) that waits
	 * for a writer */
	assert_int_equal(rmdir(seg), 0);
	assert_int_equal(mkfifo(seg, 0600), 0);
	verify_names_segment(a, b, seg);
	free(ents);
	vt_tmpdir_remove(top);
}

static int
rm_dir(void **state)
{
	(void)state;
	vt_tmpdir_remove(dir);
	return 0;
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_tool, rm_dir),
		cmocka_unit_test(test_not_archive),
		cmocka_unit_test(test_dump_range),
		cmocka_unit_test(test_verify_read_error),
	};
	if (argc != 2) {
		fprintf(stderr, "usage: %s PATH-TO-vigil-archive\n", argv[0]);
		return 2;
	}
	tool = argv[1];
	if (vt_tmpdir_make("vigil-tool", dir, sizeof dir) != 0)
		return 2;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
