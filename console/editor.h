/* SPDX-License-Identifier: MIT */
/*
 * console/editor.h - private to console/: the rule editor (editor.c) and
 * its back-tests (backtest.c), as main.c, api.c and each other call them.
 */
#ifndef VIGIL_CONSOLE_EDITOR_H
#define VIGIL_CONSOLE_EDITOR_H

#include <event2/http.h>
#include <jansson.h>

#include "console.h"
#include "rules.h"

/* diff.c: the line diff of a and b, ["-N: old", "+N: new", ...] with N the
 * line's number in its text; past 4,000 changed lines on either side, a
 * last entry says where it stops ("... lines N.. (old) and M.. (new) not
 * compared"). A JSON string "(diff too large)" without memory. */
json_t *con_diff_lines(const char *a, size_t alen, const char *b, size_t blen);

/* editor.c */
/* Reason and points of a rule of the current file. VIGIL_ENOTFOUND. */
vigil_err con_rules_rule_info(con_app *app, const char *name, const char **ret_reason,
    int32_t *ret_points);
vigil_err con_rules_init(con_app *app, char *errbuf, size_t errlen);
void con_api_rules(con_app *app, struct evhttp_request *req, const con_user *who);
void con_api_rules_check(con_app *app, struct evhttp_request *req, const con_user *who);
void con_api_rules_backtest(con_app *app, struct evhttp_request *req, const con_user *who);
void con_api_rules_deploy(con_app *app, struct evhttp_request *req, const con_user *who);
void con_api_rules_rollback(con_app *app, struct evhttp_request *req, const con_user *who);
void con_api_rules_diff(con_app *app, struct evhttp_request *req, const con_user *who);
void con_api_rules_mode(con_app *app, struct evhttp_request *req, const con_user *who);
void con_api_rules_approve(con_app *app, struct evhttp_request *req, const con_user *who);
void con_api_rules_reject(con_app *app, struct evhttp_request *req, const con_user *who);
void con_api_rules_versions(con_app *app, struct evhttp_request *req, const con_user *who,
    const char *version);
void con_rules_child_exited(con_app *app); /* SIGCHLD (backtest.c) */
void con_rules_abort(con_app *app);        /* shutdown: kill a back-test (backtest.c) */
/* backtest.c: removes what back-tests of an earlier run left (at start). */
void con_backtest_prune(con_app *app);
/* editor.c, for backtest.c: the request's {"text", ...} body (NULL: answered
 * 400/413), a text compiled as vigild would (list files next to the deployed
 * file), its diagnostics answered 422, the deployed file's directory and name. */
json_t     *con_rules_edit_body(struct evhttp_request *req, const char *const *allowed,
    const char **ret_text, size_t *ret_len);
vigil_err   con_rules_compile_text(con_app *app, const char *text, size_t len,
    rules_prog **ret_prog, rules_diags *ret_diags);
void        con_rules_send_diags(struct evhttp_request *req, const rules_diags *d,
    const char *text, size_t len);
const char *con_rules_dir(const con_app *app);
const char *con_rules_base(const con_app *app);
void con_rules_fini(con_app *app);

#endif
