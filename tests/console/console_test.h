/* SPDX-License-Identifier: MIT */
/*
 * tests/console/console_test.h - the harness the console-api tests share
 * (test_console.c): one vigild (srv, with a mutual-TLS listener on
 * tls_port) and one vigil-console on console_port, in the temporary
 * directory tmp; HTTP requests with an analyst's token; the tests of
 * each test_console_*.c, run in test_console.c's main.
 */
#ifndef VIGIL_TEST_CONSOLE_H
#define VIGIL_TEST_CONSOLE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "harness.h"

/* the analysts of the tokens file (setup): two analysts, a read-only one,
 * a rule editor (stored as its SHA-256) and an admin */
#define ALICE "alice-analyst-token-0001"
#define BOB   "bob-analyst-token-000002"
#define EVE   "eve-readonly-token-00003"
#define RITA  "rita-editor-token-000004"
#define ADAM  "adam-admin-token-0000007"

extern vt_server srv;
extern char      tmp[256], rules_dir[300], rules_path[400], state[300], tokens[300];
extern pid_t     console_pid;
extern uint16_t  console_port;
extern char      pki[300];
extern uint16_t  tls_port;
extern int64_t   base_ms;         /* the event time of the first score */
extern int64_t   last_seq_scored; /* scored records sent to vigild so far */

/* The Content-Type http() sends ("" for none: a POST the console refuses). */
extern const char *http_ctype;
/* The Allow header of http()'s last answer ("" for none). */
extern char   http_allow[64];
extern size_t http_body_len; /* the last answer's body, in bytes */

/* The next console_start talks to vigild over mutual TLS; adds these
 * arguments (NULL-ended); is given vigild's admin endpoint. */
extern bool        console_tls;
extern const char *console_extra[8];
extern bool        console_vadmin;
/* Stops the console and starts it again with these arguments (console_extra,
 * NULL-ended, at most 7). */
void console_restart_with(const char *arg, ...);

/* method path to the console with token's bearer header (NULL: none) and
 * body; the status and the JSON body (NULL if none). 0, or -1 if the
 * console could not be reached. */
int http(const char *method, const char *path, const char *token, const char *body,
    int *ret_status, json_t **ret_json);
/* POST path with a chunked body of total bytes, in chunks of chunk bytes. */
int http_chunked(const char *path, const char *token, size_t total, size_t chunk,
    int *ret_status, json_t **ret_json);
/* http(), asserting status want and a JSON body, which it returns. */
json_t *http_ok(const char *method, const char *path, const char *token, const char *body,
    int want);
/* where.field and message of the one error object (NULL: none). */
const char *err_field(const json_t *o);
const char *err_msg(const json_t *o);
/* http_ok, asserting status want and where.field field of its error. */
void        http_refused(const char *method, const char *path, const char *token,
    const char *body, int want, const char *field);

void    copy_file(const char *from, const char *to);
/* The bytes of path, NUL-ended, in *ret_buf (free it) and *ret_len; writes
 * len bytes of text to path (test_console_entities.c). */
void    read_bytes(const char *path, char **ret_buf, size_t *ret_len);
void    write_bytes(const char *path, const char *text, size_t len);
int64_t ents_records(void);
int64_t status_field(const char *field);
void    console_start(void);
void    console_stop(void);
/* Waits until both of the console's indexes hold n scored records. */
void    wait_indexed(int64_t n);
/* Scores txn for card at t (country NULL: none) on the harness's slot,
 * asserting the decision. */
void    score(int slot, const char *txn, const char *card, int64_t amount, int64_t t,
    const char *country, int want_decision);
/* vigild's rules content_hash, to free (NULL: none); waits for it to
 * differ from old */
char   *vigild_hash(void);
char   *wait_vigild_hash_change(const char *old);
/* The label record of txn in the archive (its fraud flag and source), or
 * -1. */
int     archive_label(const char *txn, char *source, size_t slen);
/* The newest entry of the audit log, to json_decref. */
json_t *audit_newest(void);
/* The record GET /api/lists shows for value in list (NULL: not shown). */
json_t *list_entry(const char *list, const char *value);
/* Lines of the console's log that contain needle; waits for n of them. */
int     console_log_count(const char *needle);
void    console_log_wait(const char *needle, int n);

/* the tests, in test_console_*.c (main lists them in their order) */
void test_auth(void **s);
void test_queue(void **s);
void test_case_view(void **s);
void test_claim_conflict(void **s);
void test_case_work(void **s);
void test_label_reaches_archive(void **s);
void test_search_label_any(void **s);
void test_label_own_write(void **s);
void test_lists(void **s);
void test_entity(void **s);
void test_overview(void **s);
void test_unknown_filter(void **s);
void test_rules_band_in_force(void **s);
void test_generation_rollback(void **s);
void test_generations_reread(void **s);
void test_block_card(void **s);
void test_tls_verdict(void **s);
void test_restart_resumes(void **s);
void test_malformed(void **s);
void test_routes(void **s);
void test_connection_cap(void **s);
void test_usage(void **s);
void test_tokens_reload(void **s);
void test_audit_reopen(void **s);
void test_audit_reopen_unwritable(void **s);
void test_audit_tail_long(void **s);
void test_backtest(void **s);
void test_rules_check_and_deploy(void **s);
void test_rules_page_tools(void **s);
void test_rules_four_eyes(void **s);
void test_rules_versions_unloadable(void **s);
void test_rules_deploy_taken_back(void **s);
void test_rules_diff_long(void **s);
void test_rules_deploy_audit_huge(void **s);
void test_rules_not_utf8(void **s);
void test_rules_proposal_kept(void **s);
void test_rules_proposal_damaged(void **s);
void test_backtest_bounds(void **s);

#endif
