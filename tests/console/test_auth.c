/* SPDX-License-Identifier: MIT */
/*
 * tests/console/test_auth.c - the console's tokens file (console/auth.c):
 * both line forms, every error text down to its line, that a token
 * finds its analyst and nothing else does, and vigild's file rule (a
 * regular file others cannot read: 0644 and a FIFO are refused, the FIFO
 * without waiting for a writer); the audit log's lines stay whole when
 * a write is cut short.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "console.h"

static char path[64];

static vigil_err
load(const char *text, con_auth *a, char *err, size_t errlen)
{
	FILE *f;

	snprintf(path, sizeof path, "/tmp/vigil-tokens-XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	fputs(text, f);
	fclose(f);
	err[0] = '\0';
	vigil_err rv = con_auth_load(path, a, err, errlen);
	unlink(path);
	return rv;
}

static void
test_forms(void **state)
{
	static con_auth a;
	char err[256];
	const con_user *u;

	(void)state;
	/* sha256("rita-editor-token-000004") */
	assert_int_equal(load("# analysts\n\nalice analyst alice-analyst-token-0001\n"
	    "  rita rule-editor sha256:4F3C9D0A1E6F2B76C5E8C4E01C7A39E3C1C8D4B3F2A1E0D9C8B7A6F5E4D3C2B1\n"
	    "root admin root-admin-token-000005\n", &a, err, sizeof err), VIGIL_OK);
	assert_int_equal(a.n, 3);
	u = con_auth_check(&a, "alice-analyst-token-0001", 24);
	assert_non_null(u);
	assert_string_equal(u->name, "alice");
	assert_int_equal(u->role, CON_ROLE_ANALYST);
	assert_null(con_auth_check(&a, "alice-analyst-token-000", 23));
	assert_null(con_auth_check(&a, "alice-analyst-token-00011", 25));
	assert_null(con_auth_check(&a, "", 0));
	assert_null(con_auth_check(&a, NULL, 0));
	u = con_auth_check(&a, "root-admin-token-000005", 23);
	assert_non_null(u);
	assert_int_equal(u->role, CON_ROLE_ADMIN);
	assert_true(CON_ROLE_READONLY < CON_ROLE_ANALYST && CON_ROLE_ANALYST < CON_ROLE_EDITOR &&
	    CON_ROLE_EDITOR < CON_ROLE_ADMIN);
}

/* A token as long as a line allows is hashed whole: its 255-byte prefix
 * (once the cut the field's buffer made) is no token. */
static void
test_long_token(void **state)
{
	static con_auth a;
	char err[256], text[600], tok[400];

	(void)state;
	memset(tok, 'k', 300);
	tok[300] = '\0';
	snprintf(text, sizeof text, "kim analyst %s\n", tok);
	assert_int_equal(load(text, &a, err, sizeof err), VIGIL_OK);
	assert_non_null(con_auth_check(&a, tok, 300));
	assert_null(con_auth_check(&a, tok, 255));
	/* a line longer than the 511 bytes read is refused, not cut */
	memset(text, 'k', sizeof text - 2);
	memcpy(text, "kim analyst ", 12);
	text[sizeof text - 2] = '\n';
	text[sizeof text - 1] = '\0';
	assert_int_equal(load(text, &a, err, sizeof err), VIGIL_ETOOBIG);
	assert_non_null(strstr(err, ":1: line too long"));
}

static void
test_sha256_form(void **state)
{
	static con_auth a;
	char err[256], line[200], hex[65];
	uint8_t d[32];

	(void)state;
	con_sha256("s3cret-token-for-bob", 20, d);
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", d[i]);
	snprintf(line, sizeof line, "bob read-only sha256:%s\n", hex);
	assert_int_equal(load(line, &a, err, sizeof err), VIGIL_OK);
	assert_non_null(con_auth_check(&a, "s3cret-token-for-bob", 20));
	assert_null(con_auth_check(&a, hex, 64)); /* the digest itself is no token */
	/* SHA-256 of "abc" (FIPS 180-2) */
	con_sha256("abc", 3, d);
	assert_int_equal(d[0], 0xba);
	assert_int_equal(d[31], 0xad);
}

static void
expect_error(const char *text, vigil_err want, const char *msg_after_path)
{
	static con_auth a;
	char err[256], want_msg[300];

	assert_int_equal(load(text, &a, err, sizeof err), want);
	snprintf(want_msg, sizeof want_msg, "%s%s", path, msg_after_path);
	assert_string_equal(err, want_msg);
}

static void
test_errors(void **state)
{
	(void)state;
	expect_error("alice analyst\n", VIGIL_EINVAL, ":1: expected \"NAME ROLE TOKEN\"");
	expect_error("alice analyst tok-0123456789abcdef extra\n", VIGIL_EINVAL,
	    ":1: expected \"NAME ROLE TOKEN\"");
	expect_error("# c\nalice boss alice-analyst-token-0001\n", VIGIL_EINVAL,
	    ":2: role \"boss\": one of read-only, analyst, rule-editor, admin");
	expect_error("al/ice analyst alice-analyst-token-0001\n", VIGIL_EINVAL,
	    ":1: name \"al/ice\": 1-23 of [A-Za-z0-9._-]");
	/* 24 characters: "analyst:NAME" would not fit a label's source */
	expect_error("abcdefghijklmnopqrstuvwx analyst long-name-token-00000001\n", VIGIL_EINVAL,
	    ":1: name \"abcdefghijklmnopqrstuvwx\": 1-23 of [A-Za-z0-9._-]");
	/* one token per analyst, plain or as its digest */
	expect_error("alice analyst alice-analyst-token-0001\nrob admin alice-analyst-token-0001\n",
	    VIGIL_EINVAL, ":2: rob's token is also alice's");
	expect_error("bob read-only sha256:f8d2b05d6bd2e7d4c4d54a4a8b3d0c1e1dea6c0e4d8e2f64fc5f0c2e8b1a0e30\n"
	    "rob admin sha256:F8D2B05D6BD2E7D4C4D54A4A8B3D0C1E1DEA6C0E4D8E2F64FC5F0C2E8B1A0E30\n",
	    VIGIL_EINVAL, ":2: rob's token is also bob's");
	expect_error("alice analyst short\n", VIGIL_EINVAL, ":1: token shorter than 16 characters");
	expect_error("alice analyst sha256:abcd\n", VIGIL_EINVAL, ":1: sha256: needs 64 hex digits");
	expect_error("alice analyst sha256:zz3c9d0a1e6f2b76c5e8c4e01c7a39e3c1c8d4b3f2a1e0d9c8b7a6f5e4d3c2b1\n",
	    VIGIL_EINVAL, ":1: sha256: not hex");
	expect_error("alice analyst alice-analyst-token-0001\nalice admin other-token-000000001\n",
	    VIGIL_EINVAL, ":2: analyst \"alice\" listed twice");
	expect_error("# nobody\n", VIGIL_EINVAL, ": no analysts");
}

/* "cert:CN": an analyst identified by a client certificate, never by a token */
static void
test_cert_form(void **state)
{
	static con_auth a;
	char err[256];
	const con_user *u;

	(void)state;
	assert_int_equal(load("carol analyst cert:carol.example\n"
	    "alice analyst alice-analyst-token-0001\n", &a, err, sizeof err), VIGIL_OK);
	u = con_auth_cert(&a, "carol.example");
	assert_non_null(u);
	assert_string_equal(u->name, "carol");
	assert_int_equal(u->role, CON_ROLE_ANALYST);
	assert_null(con_auth_cert(&a, "carol"));
	assert_null(con_auth_cert(&a, "alice"));
	assert_null(con_auth_cert(&a, ""));
	assert_null(con_auth_cert(&a, NULL));
	/* the CN is not a token, nor is anything that hashes like an unset digest */
	assert_null(con_auth_check(&a, "cert:carol.example", 18));
	assert_null(con_auth_check(&a, "carol.example", 13));
	assert_non_null(con_auth_check(&a, "alice-analyst-token-0001", 24));
	expect_error("carol analyst cert:\n", VIGIL_EINVAL,
	    ":1: cert: needs the certificate's CN, 1-64 characters");
	expect_error("carol analyst cert:c\ndave admin cert:c\n", VIGIL_EINVAL,
	    ":2: cert:c is also carol's");
}

static void
test_missing_file(void **state)
{
	static con_auth a;
	char err[256];

	(void)state;
	assert_int_equal(con_auth_load("/nonexistent/tokens", &a, err, sizeof err), VIGIL_ENOTFOUND);
	assert_string_equal(err, "/nonexistent/tokens: cannot open: No such file or directory");
}

/* A tokens file every user can read is refused, as vigild refuses its
 * admin token file; 0640 (the documented group mode) is accepted. */
static void
test_file_mode(void **state)
{
	static con_auth a;
	char p[64], err[512], want[600];
	FILE *f;
	int fd;

	(void)state;
	snprintf(p, sizeof p, "/tmp/vigil-tokens-XXXXXX");
	fd = mkstemp(p);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	fputs("alice analyst alice-analyst-token-0001\n", f);
	fclose(f);
	assert_int_equal(chmod(p, 0644), 0);
	assert_int_equal(con_auth_load(p, &a, err, sizeof err), VIGIL_EINVAL);
	snprintf(want, sizeof want, "%s: mode 0644 lets every user read or write it; chmod o-rw", p);
	assert_string_equal(err, want);
	assert_int_equal(chmod(p, 0602), 0);
	assert_int_equal(con_auth_load(p, &a, err, sizeof err), VIGIL_EINVAL);
	assert_int_equal(chmod(p, 0640), 0);
	assert_int_equal(con_auth_load(p, &a, err, sizeof err), VIGIL_OK);
	assert_int_equal(a.n, 1);
	unlink(p);
}

/* A FIFO in the file's place is refused at once (opening it to read would
 * wait for a writer: a SIGHUP reload would hang the console). */
static void
test_fifo(void **state)
{
	static con_auth a;
	char p[64], err[512], want[600];

	(void)state;
	snprintf(p, sizeof p, "/tmp/vigil-tokens-XXXXXX");
	assert_non_null(mkdtemp(p));
	strcat(p, "/t");
	assert_int_equal(mkfifo(p, 0600), 0);
	assert_int_equal(con_auth_load(p, &a, err, sizeof err), VIGIL_EINVAL);
	snprintf(want, sizeof want, "%s: not a regular file", p);
	assert_string_equal(err, want);
	unlink(p);
	*strrchr(p, '/') = '\0';
	rmdir(p);
}

/* A write of the audit log cut short (the file system full; here the
 * file size limit, RLIMIT_FSIZE, stops it a few bytes in) is cut back off:
 * the next line starts at a line's start, so every line stays readable. */
static void
test_audit_short_write(void **state)
{
	char dir[64], p[80], line[1024];
	con_audit *a;
	struct rlimit old, lim;
	struct stat st;
	off_t whole;
	json_t *tail;
	FILE *f;
	int n = 0;

	(void)state;
	snprintf(dir, sizeof dir, "/tmp/vigil-audit-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(p, sizeof p, "%s/audit.log", dir);
	assert_int_equal(con_audit_open(p, &a, line, sizeof line), VIGIL_OK);
	assert_int_equal(con_audit_write(a, NULL, "label", "t-1", NULL, NULL), VIGIL_OK);
	assert_int_equal(stat(p, &st), 0);
	whole = st.st_size;
	signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = (rlim_t)whole + 20; /* 20 bytes of the next line fit */
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	assert_int_equal(con_audit_write(a, NULL, "label", "t-2", NULL, NULL), VIGIL_EIO);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, SIG_DFL);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_size, whole);
	assert_int_equal(con_audit_write(a, NULL, "label", "t-3", NULL, NULL), VIGIL_OK);
	f = fopen(p, "r");
	assert_non_null(f);
	while (fgets(line, sizeof line, f) != NULL) {
		json_t *o = json_loads(line, 0, NULL);

		assert_non_null(o); /* a fragment glued to t-3 would not parse */
		json_decref(o);
		n++;
	}
	fclose(f);
	assert_int_equal(n, 2);
	tail = con_audit_tail(a, 10);
	assert_int_equal(json_array_size(tail), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(tail, 0), "target")),
	    "t-3");
	json_decref(tail);
	con_audit_close(a);
	unlink(p);
	rmdir(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_forms),
		cmocka_unit_test(test_sha256_form),
		cmocka_unit_test(test_long_token),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_cert_form),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_file_mode),
		cmocka_unit_test(test_fifo),
		cmocka_unit_test(test_audit_short_write),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
