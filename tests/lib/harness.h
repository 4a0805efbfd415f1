/* SPDX-License-Identifier: MIT */
/*
 * tests/lib/harness.h - integration-test helpers: start the real vigild as a
 * child process on an ipc:// socket inside a fresh temporary data directory,
 * wait until it answers a health request, talk to it over nng REQ, stop it
 * with SIGTERM or SIGKILL. Paths come from VIGIL_BUILD_ROOT and
 * VIGIL_SOURCE_ROOT (set by tests/meson.build's test_env).
 */
#ifndef VIGIL_TEST_HARNESS_H
#define VIGIL_TEST_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "vigil.pb-c.h"

typedef struct vt_server {
	pid_t    pid;             /* 0 when not running */
	char     datadir[256];    /* temporary, created by vt_server_start */
	char     url[320];        /* ipc://<datadir>/vigild.sock */
	char     rules[512];      /* rule file the server was started with */
	uint16_t admin_port;      /* 127.0.0.1:admin_port (evhttp) */
	char     log[320];        /* <datadir>/vigild.log: the server's stderr */
} vt_server;

/* Absolute path of a file in the source tree / build tree (static buffer
 * per call slot: copy it if you need two at once). */
const char *vt_src_path(const char *rel);
const char *vt_build_path(const char *rel);

/*
 * Starts build/server/vigild with --data <tmp> --listen <url> --admin
 * 127.0.0.1:<free port> --rules <rules> (NULL: rules/default.rules) plus
 * extra_args (NULL-terminated, may be NULL), stderr to s->log. If
 * s->datadir is non-empty on entry it is reused (restart after a kill), else
 * a fresh mkdtemp directory is made. Waits up to 30 s for a ready health
 * reply. 0 on success, -1 with a message on stderr.
 */
int  vt_server_start(vt_server *s, const char *rules, const char *const *extra_args);
/* Start-up options beyond vt_server_start's (NULL or zeroed: its behaviour). */
typedef struct vt_opts {
	const char *admin_host; /* the admin HTTP address; NULL: 127.0.0.1 (the
	                         * vt_http* helpers still connect to 127.0.0.1) */
	unsigned    nofile;     /* RLIMIT_NOFILE (soft and hard) of vigild; 0: inherited */
	bool        not_ready;  /* wait for the "vigild: ready" log line, not for a ready
	                         * health reply: vigild started but answers not ready (a
	                         * refused generation or model, docs/security.md) */
} vt_opts;

/* vt_server_start with options o (may be NULL). */
int  vt_server_start_opts(vt_server *s, const char *rules, const char *const *extra_args,
    const vt_opts *o);
/* SIGTERM and wait; returns the exit status (0 = clean), -1 on error. */
int  vt_server_stop(vt_server *s);
/* SIGKILL and reap. */
void vt_server_kill(vt_server *s);
/* Whether the process is still alive (not exited). */
bool vt_server_alive(vt_server *s);
/* Removes the data directory (after stop/kill). */
void vt_server_cleanup(vt_server *s);

/* One raw REQ/REP exchange. *ret_reply is malloc'd. 0 or an nng error code. */
int  vt_request_raw(const char *url, const void *req, size_t len, void **ret_reply,
    size_t *ret_len, int timeout_ms);
/*
 * One exchange whose connection the server is expected to drop (a message
 * over the transport's size limit). nng 1.5.2's REQ socket can then hang in
 * nng_close(), and a socket left open keeps resending in the background and
 * stalls later closes; and nng 1.5.2 refuses to run in a forked child of a
 * process that used it. So the exchange runs in a program of its own,
 * tests/lib/vt-request, which exits without closing. Returns 0 if a reply
 * arrived, the nng error (NNG_ETIMEDOUT, ...) if none did, and -1 if the
 * program could not run, crashed or hung (killed after timeout_ms + 10 s).
 */
int  vt_request_dropped(const char *url, const void *req, size_t len, int timeout_ms);
/* Sends a Request envelope, decodes the Reply (free with
 * vigil__v1__reply__free_unpacked(r, NULL)). NULL on transport or decode error. */
Vigil__V1__Reply *vt_call(const char *url, const Vigil__V1__Request *req, int timeout_ms);

/* A valid transaction with the given ids and amount (EUR, mcc 5411, FR, ecom,
 * event time = base_ms); strings are copied into static storage owned by the
 * returned struct until the next vt_txn call on the same slot (0..7). */
Vigil__V1__Transaction *vt_txn(int slot, const char *txn_id, const char *card_id,
    int64_t amount_minor, int64_t event_time_ms);
/* Score one transaction; NULL on transport error. */
Vigil__V1__Reply *vt_score(const char *url, const Vigil__V1__Transaction *txn, bool dry_run);
/* Label one transaction; NULL on transport error. */
Vigil__V1__Reply *vt_label(const char *url, const char *txn_id, bool fraud, int64_t label_time_ms);

/* HTTP GET http://127.0.0.1:port/path with a plain socket; body malloc'd,
 * *ret_status the HTTP status. 0 on success. */
int  vt_http_get(uint16_t port, const char *path, int *ret_status, char **ret_body);
int  vt_http_post(uint16_t port, const char *path, const char *body, int *ret_status,
    char **ret_body);

/* Any method, with extra header lines (each ending "\r\n"; may be NULL) and a
 * body (may be NULL). HTTP/1.0, Connection: close. 0 on success. */
int  vt_http(uint16_t port, const char *method, const char *path, const char *headers,
    const char *body, int *ret_status, char **ret_body);

/*
 * Sends req (len bytes, sent as they are: a request that does not parse, or
 * several) on a new connection to 127.0.0.1:port and reads until the
 * server closes it (a reset counts: a server closes with part of a refused
 * request unread). The answers, NUL-terminated (at most 64 KiB), malloc'd;
 * NULL if the connection could not be made. *ret_closed is false if the
 * server still held the connection open after 20 s (a safety bound, not a
 * measurement).
 */
char *vt_http_raw(uint16_t port, const char *req, size_t len, bool *ret_closed);

/*
 * The next answer in the text at *p (what vt_http_raw read), split: its
 * status, its head (status line and headers, each line ending "\r\n"; cut
 * to headcap - 1 bytes) and its body (*ret_body, the *ret_blen bytes its
 * Content-Length counts); *p moves past it. -1 (nothing moved) if *p holds
 * no whole answer with a Content-Length.
 */
int vt_http_next(const char **p, int *ret_status, char *head, size_t headcap,
    const char **ret_body, size_t *ret_blen);

/* Writes text into a new file made with mkstemp(3) from the template in
 * path (its XXXXXX replaced): a --config file, say; unlink it after. 0, or
 * -1 (errno set). */
int vt_file_temp(char *path, const char *text);

/* A TCP port to listen on that no other test running now is given
 * (tests/lib/vt_port.py), 0 if none. */
uint16_t vt_free_port(void);

/* VmRSS of a process in KiB (/proc/PID/status), -1 if unknown. */
long vt_proc_rss_kb(pid_t pid);

/*
 * Makes a throwaway PKI in dir with openssl (tests/lib/mkpki.sh): ca.pem
 * (+ .key), server.pem/.key signed by it (subjectAltName DNS:localhost,
 * DNS:127.0.0.1, IP:127.0.0.1), client.pem/.key signed by it, and
 * evil-ca.pem with evil.pem/.key signed by that other CA. 0 on success.
 */
int  vt_pki_make(const char *dir);

/* Runs a program from the build tree synchronously (argv[0] relative to the
 * build root), captures stdout into *ret_out (malloc'd, may be NULL) and
 * returns its exit status (-1 if it could not run). */
int  vt_run(const char *const *argv, char **ret_out);

/* ---- Data directories and logs (the model tests) ---- */

/* cp -a src/. dst (dst created if needed). 0 on success. */
int  vt_copy_dir(const char *src, const char *dst);
/* The harness's data directories; vt_server_cleanup removes only these. */
#define VT_DATADIR_TEMPLATE "/tmp/vigil-test-XXXXXX"

/* Makes s->datadir a fresh, empty VT_DATADIR_TEMPLATE directory, to fill
 * before vt_server_start serves it; vt_server_cleanup removes it. 0, or -1
 * (said on stderr). */
int  vt_server_datadir_new(vt_server *s);
/*
 * Makes s->datadir a fresh /tmp/vigil-test-XXXXXX directory holding a copy of
 * src (a data directory: archive/, features/), so that vt_server_start then
 * serves it and vt_server_cleanup removes it. 0 on success.
 */
int  vt_server_datadir_from(vt_server *s, const char *src);

/* How many lines of the server's log contain needle (0 if no log). */
int  vt_log_count(const vt_server *s, const char *needle);
/* Waits up to timeout_ms until at least n lines of the log contain needle;
 * true if they do. */
bool vt_log_wait(const vt_server *s, const char *needle, int n, int timeout_ms);

/*
 * A data directory made by the real nightly cycle, offline: vigil-gen
 * (cards, days from start, fraud_rate, seed) piped through vigil-replay
 * --nightly --work dir --rules rules (NULL: rules/default.rules): every
 * transaction scored and archived by the one pipeline with its model
 * vector, labels archived as they become known, vigil-rebuild run at every
 * UTC midnight (models trained once enough labels are mature). dir must not
 * exist or be empty. extra: more vigil-replay arguments (NULL-terminated,
 * may be NULL). 0 on success, else -1 with the reason on stderr.
 */
typedef struct vt_nightly {
	unsigned    cards, days, seed;
	double      fraud_rate;
	const char *start;   /* YYYY-MM-DD */
	const char *rules;
	const char *const *extra;
} vt_nightly;
int  vt_nightly_datadir(const char *dir, const vt_nightly *o);

#endif
