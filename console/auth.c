/* SPDX-License-Identifier: MIT */
/*
 * console/auth.c - analysts and their tokens (docs/console.md, "Identity").
 * The tokens file names each analyst, a role and a token (or the SHA-256 of
 * one); a request carries "Authorization: Bearer TOKEN". Only digests are
 * kept in memory, and a presented token is checked against every entry in
 * constant time, so neither timing nor an early exit tells how much of it
 * matched or which entry it was compared with. The file itself must be
 * regular and closed to other users (vigil_secret_open, vigild's rule).
 */
#include <ctype.h>
#include <errno.h>
#include <mbedtls/sha256.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "console.h"
#include "file.h"

static const char *const con_role_names[] = {
	[CON_ROLE_NONE] = "none", [CON_ROLE_READONLY] = "read-only",
	[CON_ROLE_ANALYST] = "analyst", [CON_ROLE_EDITOR] = "rule-editor",
	[CON_ROLE_ADMIN] = "admin",
};

const char *
con_role_name(con_role r)
{
	return (unsigned)r <= CON_ROLE_ADMIN ? con_role_names[r] : "none";
}

vigil_err
con_role_parse(const char *s, con_role *ret_r)
{
	for (int r = CON_ROLE_READONLY; r <= CON_ROLE_ADMIN; r++) {
		if (strcmp(s, con_role_names[r]) == 0) {
			*ret_r = (con_role)r;
			return VIGIL_OK;
		}
	}
	return VIGIL_EINVAL;
}

void
con_sha256(const void *data, size_t len, uint8_t ret_digest[32])
{
	mbedtls_sha256_ret(data, len, ret_digest, 0);
}

static int
auth_hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static bool
auth_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > CON_NAME_MAX)
		return false;
	for (; *s != '\0'; s++)
		if (!isalnum((unsigned char)*s) && *s != '.' && *s != '_' && *s != '-')
			return false;
	return true;
}

vigil_err
con_auth_load(const char *path, con_auth *ret_auth, char *errbuf, size_t errlen)
{
	FILE *f;
	char line[512];
	/* each as long as a line: a field is never cut short unseen (a token
	 * cut to fit would be hashed and never match) */
	char name[sizeof line], role[sizeof line], tok[sizeof line], extra[8];
	uint32_t lineno = 0;
	vigil_err rv;
	int fd;

	/* vigild's rule for its admin token: regular, not readable by others */
	rv = vigil_secret_open(path, NULL, &fd, errbuf, errlen);
	if (rv != VIGIL_OK)
		return rv;
	f = fdopen(fd, "r");
	if (f == NULL) {
		snprintf(errbuf, errlen, "%s: %s", path, strerror(errno));
		close(fd);
		return VIGIL_ENOMEM;
	}
	memset(ret_auth, 0, sizeof *ret_auth);
	while (fgets(line, sizeof line, f) != NULL) {
		con_user *u;
		int k;

		lineno++;
		if (strchr(line, '\n') == NULL && !feof(f)) {
			snprintf(errbuf, errlen, "%s:%u: line too long", path, lineno);
			rv = VIGIL_ETOOBIG;
			goto out;
		}
		char *p = line + strspn(line, " \t");
		if (*p == '#' || *p == '\n' || *p == '\0')
			continue;
		_Static_assert(sizeof line == 512, "the widths of the sscanf below");
		k = sscanf(p, "%511s %511s %511s %7s", name, role, tok, extra);
		if (k != 3) {
			snprintf(errbuf, errlen, "%s:%u: expected \"NAME ROLE TOKEN\"", path, lineno);
			rv = VIGIL_EINVAL;
			goto out;
		}
		if (ret_auth->n == CON_TOKENS_MAX) {
			snprintf(errbuf, errlen, "%s:%u: more than %d analysts", path, lineno,
			    CON_TOKENS_MAX);
			rv = VIGIL_ETOOBIG;
			goto out;
		}
		u = &ret_auth->users[ret_auth->n];
		if (!auth_name_ok(name)) {
			snprintf(errbuf, errlen, "%s:%u: name \"%.32s\": 1-%d of [A-Za-z0-9._-]", path,
			    lineno, name, CON_NAME_MAX);
			rv = VIGIL_EINVAL;
			goto out;
		}
		if (con_role_parse(role, &u->role) != VIGIL_OK) {
			snprintf(errbuf, errlen, "%s:%u: role \"%.32s\": one of read-only, analyst, "
			    "rule-editor, admin", path, lineno, role);
			rv = VIGIL_EINVAL;
			goto out;
		}
		for (uint32_t i = 0; i < ret_auth->n; i++) {
			if (strcmp(ret_auth->users[i].name, name) == 0) {
				snprintf(errbuf, errlen, "%s:%u: analyst \"%s\" listed twice", path,
				    lineno, name);
				rv = VIGIL_EINVAL;
				goto out;
			}
		}
		snprintf(u->name, sizeof u->name, "%s", name);
		if (strncmp(tok, "cert:", 5) == 0) {
			/* identified by a client certificate's subject CN (HTTPS) */
			const char *cn = tok + 5;
			size_t cl = strlen(cn);

			if (cl == 0 || cl > CON_CERT_CN_MAX) {
				snprintf(errbuf, errlen, "%s:%u: cert: needs the certificate's CN, 1-%d "
				    "characters", path, lineno, CON_CERT_CN_MAX);
				rv = VIGIL_EINVAL;
				goto out;
			}
			for (uint32_t i = 0; i < ret_auth->n; i++) {
				if (ret_auth->users[i].by_cert && strcmp(ret_auth->users[i].cert_cn, cn) == 0) {
					snprintf(errbuf, errlen, "%s:%u: cert:%s is also %s's", path, lineno, cn,
					    ret_auth->users[i].name);
					rv = VIGIL_EINVAL;
					goto out;
				}
			}
			u->by_cert = true;
			snprintf(u->cert_cn, sizeof u->cert_cn, "%s", cn);
		} else if (strncmp(tok, "sha256:", 7) == 0) {
			const char *h = tok + 7;
			if (strlen(h) != 64) {
				snprintf(errbuf, errlen, "%s:%u: sha256: needs 64 hex digits", path, lineno);
				rv = VIGIL_EINVAL;
				goto out;
			}
			for (int i = 0; i < 32; i++) {
				int hi = auth_hexval(h[2 * i]), lo = auth_hexval(h[2 * i + 1]);
				if (hi < 0 || lo < 0) {
					snprintf(errbuf, errlen, "%s:%u: sha256: not hex", path, lineno);
					rv = VIGIL_EINVAL;
					goto out;
				}
				u->sha256[i] = (uint8_t)(hi << 4 | lo);
			}
		} else {
			if (strlen(tok) < 16) {
				snprintf(errbuf, errlen, "%s:%u: token shorter than 16 characters", path,
				    lineno);
				rv = VIGIL_EINVAL;
				goto out;
			}
			con_sha256(tok, strlen(tok), u->sha256);
		}
		/* one token, one analyst: a shared one would sign in as whichever
		 * is listed last, and the audit log would name the wrong one */
		for (uint32_t i = 0; i < ret_auth->n && !u->by_cert; i++) {
			if (!ret_auth->users[i].by_cert &&
			    memcmp(ret_auth->users[i].sha256, u->sha256, sizeof u->sha256) == 0) {
				snprintf(errbuf, errlen, "%s:%u: %s's token is also %s's", path, lineno,
				    u->name, ret_auth->users[i].name);
				rv = VIGIL_EINVAL;
				goto out;
			}
		}
		ret_auth->n++;
	}
	if (ferror(f)) {
		snprintf(errbuf, errlen, "%s: read error", path);
		rv = VIGIL_EIO;
	} else if (ret_auth->n == 0) {
		snprintf(errbuf, errlen, "%s: no analysts", path);
		rv = VIGIL_EINVAL;
	}
out:
	explicit_bzero(line, sizeof line); /* plain tokens: not left on the stack */
	explicit_bzero(tok, sizeof tok);
	fclose(f);
	return rv;
}

const con_user *
con_auth_check(const con_auth *a, const char *token, size_t len)
{
	uint8_t d[32];
	const con_user *found = NULL;

	if (token == NULL || len == 0)
		return NULL;
	con_sha256(token, len, d);
	for (uint32_t i = 0; i < a->n; i++) {
		unsigned diff = 0;
		for (int k = 0; k < 32; k++)
			diff |= (unsigned)(d[k] ^ a->users[i].sha256[k]);
		/* branch-free select; names are unique, digests too in practice */
		uintptr_t mask = (uintptr_t)0 - (uintptr_t)(diff == 0 && !a->users[i].by_cert);
		found = (const con_user *)(((uintptr_t)&a->users[i] & mask) |
		    ((uintptr_t)found & ~mask));
	}
	return found;
}

const con_user *
con_auth_cert(const con_auth *a, const char *cn)
{
	if (cn == NULL || cn[0] == '\0')
		return NULL;
	for (uint32_t i = 0; i < a->n; i++)
		if (a->users[i].by_cert && strcmp(a->users[i].cert_cn, cn) == 0)
			return &a->users[i];
	return NULL;
}
