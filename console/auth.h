/* SPDX-License-Identifier: MIT */
/*
 * console/auth.h - who the analysts are (auth.c: the tokens file, client
 * certificates, roles) and the append-only audit log of what they did
 * (audit.c). Prefix con_.
 */
#ifndef VIGIL_CONSOLE_AUTH_H
#define VIGIL_CONSOLE_AUTH_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vigil.h"

/* auth.c */

typedef enum con_role {
	CON_ROLE_NONE = 0,
	CON_ROLE_READONLY,
	CON_ROLE_ANALYST,
	CON_ROLE_EDITOR, /* "rule-editor" */
	CON_ROLE_ADMIN,
} con_role;

const char *con_role_name(con_role r);
vigil_err   con_role_parse(const char *s, con_role *ret_r);

/* analyst names: [A-Za-z0-9._-]; "analyst:NAME" is a label's source, at
 * most 31 bytes on the wire (docs/protocol.md; store_label.source) */
#define CON_NAME_MAX   23
#define CON_TOKENS_MAX 256

#define CON_CERT_CN_MAX 64 /* a certificate subject's CN (X.509 ub-common-name) */

typedef struct con_user {
	char     name[CON_NAME_MAX + 1];
	con_role role;
	uint8_t  sha256[32]; /* of the token; unused for a certificate analyst */
	bool     by_cert;    /* "cert:CN": identified by a client certificate (HTTPS) */
	char     cert_cn[CON_CERT_CN_MAX + 1];
} con_user;

typedef struct con_auth {
	con_user users[CON_TOKENS_MAX];
	uint32_t n;
} con_auth;

/*
 * Loads a tokens file: one analyst per line, "NAME ROLE TOKEN" or
 * "NAME ROLE sha256:HEX" (64 hex digits, the SHA-256 of the token);
 * '#' comments and blank lines ignored. A plain token must be at least 16
 * bytes. VIGIL_EINVAL/VIGIL_ETOOBIG with errbuf "FILE:LINE: reason";
 * VIGIL_ENOTFOUND/VIGIL_EIO if it cannot be read; VIGIL_EINVAL if it is not
 * a regular file or other users may read or write it (vigil_secret_open).
 */
vigil_err con_auth_load(const char *path, con_auth *ret_auth, char *errbuf, size_t errlen);
/* The user whose token this is, or NULL. Compares the SHA-256 of token
 * with every entry in constant time (no early exit, no length leak).
 * Certificate analysts ("cert:CN") never match a token. */
const con_user *con_auth_check(const con_auth *a, const char *token, size_t len);
/* The analyst listed as "cert:CN" for a verified client certificate's
 * subject CN, or NULL. */
const con_user *con_auth_cert(const con_auth *a, const char *cn);
void con_sha256(const void *data, size_t len, uint8_t ret_digest[32]);

/* audit.c */

typedef struct con_audit con_audit;

/* Opens (creates) STATE/audit.log for appending. */
vigil_err con_audit_open(const char *path, con_audit **ret_a, char *errbuf, size_t errlen);
void      con_audit_close(con_audit *a); /* NULL is a no-op */
/*
 * Opens the audit log's path again (O_APPEND, created 0640 if missing: the
 * old file was moved away for rotation) and, only if that works, writes to
 * the new file from then on and closes the old one. On failure the old file
 * stays open and in use, errbuf says "PATH: REASON", and the errno's
 * vigil_err is returned. Never logs. Same thread as every other call here.
 */
vigil_err con_audit_reopen(con_audit *a, char *errbuf, size_t errlen);
/* The path given to con_audit_open; valid until con_audit_close. */
const char *con_audit_path(const con_audit *a);
/*
 * Appends one JSON line {"ts","who","role","action","target","before",
 * "after"} and fdatasyncs it. before/after are stolen (may be NULL: null).
 * VIGIL_EIO if it cannot be written: the caller refuses the action's reply
 * (it has happened; the error says the audit line is missing).
 */
vigil_err con_audit_write(con_audit *a, const con_user *who, const char *action,
    const char *target, json_t *before, json_t *after);
/* The last n lines (newest first) as a JSON array (for the UI), from the
 * file being written: after a rotation, the new file only. */
json_t   *con_audit_tail(con_audit *a, uint32_t n);

#endif
