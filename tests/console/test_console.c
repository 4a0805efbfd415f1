/* SPDX-License-Identifier: MIT */
/*
 * tests/console/test_console.c - vigil-console against a real vigild
 * (tests/lib/harness) on loopback with a temporary data directory and a
 * copy of the default rule file: the harness the console-api tests share
 * (console_test.h: the vigild and console processes, HTTP with headers,
 * the analysts' tokens) and the order they run in. The tests, by area:
 * test_console_cases.c (queue, claims, verdicts, search),
 * test_console_rules.c (back-tests, deploy and its guards, four eyes),
 * test_console_ops.c (blocking, malformed requests, routes, limits, TLS,
 * SIGHUP reloads, restart), test_console_nights.c (generations) and
 * test_console_entities.c (lists, entities, overview). They run in one
 * process against one vigild and one console, in main's order: a test may
 * rely on what an earlier one scored or changed.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "archive.h"
#include "console_test.h"
#include "vigil.h"

vt_server srv;
char      tmp[256], rules_dir[300], rules_path[400], state[300], tokens[300];
pid_t     console_pid;
uint16_t  console_port;
char      pki[300];
uint16_t  tls_port;
int64_t   base_ms = 1704103200000; /* 2024-01-01T10:00:00Z */

/* ---- HTTP with headers (the harness's helpers send none) ---- */

/* The Content-Type http() sends ("" for none: a POST the console refuses). */
const char *http_ctype = "Content-Type: application/json\r\n";
/* The Allow header of http()'s last answer ("" for none). */
char http_allow[64];
size_t http_body_len; /* the last answer's body, in bytes */

int
http(const char *method, const char *path, const char *token, const char *body, int *ret_status,
    json_t **ret_json)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(console_port) };
	char req[8192], *resp = NULL;
	size_t len = 0, cap = 0;
	int fd, n;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	n = snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
	    "%s%s%s%sContent-Length: %zu\r\n\r\n", method, path,
	    token ? "Authorization: Bearer " : "", token ? token : "", token ? "\r\n" : "",
	    http_ctype, body ? strlen(body) : 0);
	if (write(fd, req, (size_t)n) != n) {
		close(fd);
		return -1;
	}
	/* a server that refuses a body (413) may close before it is all sent:
	 * the answer is still there to read */
	for (size_t off = 0, bl = body ? strlen(body) : 0; off < bl;) {
		ssize_t w = send(fd, body + off, bl - off, MSG_NOSIGNAL);
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	for (;;) {
		if (len + 4096 > cap) {
			cap = cap ? cap * 2 : 65536;
			resp = realloc(resp, cap + 1);
		}
		ssize_t r = read(fd, resp + len, cap - len);
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	if (resp == NULL)
		return -1;
	resp[len] = '\0';
	*ret_status = 0;
	sscanf(resp, "HTTP/1.%*d %d", ret_status);
	char *b = strstr(resp, "\r\n\r\n");
	char *al = strstr(resp, "\r\nAllow: ");
	http_allow[0] = '\0';
	http_body_len = b != NULL ? len - (size_t)(b + 4 - resp) : 0;
	if (al != NULL && (b == NULL || al < b))
		sscanf(al + 9, "%63[^\r]", http_allow);
	if (ret_json != NULL)
		*ret_json = b != NULL ? json_loads(b + 4, 0, NULL) : NULL;
	free(resp);
	return 0;
}

/* POST path with a chunked body of total bytes ('x'), in chunks of chunk
 * bytes, as http() does otherwise (the answer is read even if the console
 * closes before the body is all sent). */
int
http_chunked(const char *path, const char *token, size_t total, size_t chunk, int *ret_status,
    json_t **ret_json)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(console_port) };
	size_t len = 0, cap = total + total / chunk * 16 + 1024, off = 0;
	char *req = malloc(cap), resp[8192];
	ssize_t r;
	int fd;

	assert_non_null(req);
	len = (size_t)snprintf(req, cap, "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: "
	    "close\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n", path, token);
	for (size_t done = 0; done < total; done += chunk) {
		size_t n = total - done < chunk ? total - done : chunk;

		len += (size_t)snprintf(req + len, cap - len, "%zx\r\n", n);
		memset(req + len, 'x', n);
		len += n;
		len += (size_t)snprintf(req + len, cap - len, "\r\n");
	}
	len += (size_t)snprintf(req + len, cap - len, "0\r\n\r\n");
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
		if (fd >= 0)
			close(fd);
		free(req);
		return -1;
	}
	while (off < len && (r = send(fd, req + off, len - off, MSG_NOSIGNAL)) > 0)
		off += (size_t)r;
	free(req);
	len = 0;
	while (len + 1 < sizeof resp && (r = read(fd, resp + len, sizeof resp - 1 - len)) > 0)
		len += (size_t)r;
	close(fd);
	resp[len] = '\0';
	*ret_status = 0;
	sscanf(resp, "HTTP/1.%*d %d", ret_status);
	*ret_json = strstr(resp, "\r\n\r\n") != NULL ? json_loads(strstr(resp, "\r\n\r\n") + 4,
	    0, NULL) : NULL;
	return 0;
}

/* The field an error reply names: where.field of the one error object
 * (docs/tools.md); NULL when it names none. */
const char *
err_field(const json_t *o)
{
	return json_string_value(json_object_get(json_object_get(json_object_get(o, "error"),
	    "where"), "field"));
}

void
http_refused(const char *method, const char *path, const char *token, const char *body,
    int want, const char *field)
{
	json_t *o = http_ok(method, path, token, body, want);

	assert_non_null(err_field(o));
	assert_string_equal(err_field(o), field);
	json_decref(o);
}

/* The message of the one error object; NULL when the reply has none. */
const char *
err_msg(const json_t *o)
{
	return json_string_value(json_object_get(json_object_get(o, "error"), "message"));
}

json_t *
http_ok(const char *method, const char *path, const char *token, const char *body, int want)
{
	int st = 0;
	json_t *o = NULL;

	assert_int_equal(http(method, path, token, body, &st, &o), 0);
	if (st != want)
		fprintf(stderr, "%s %s: status %d, body %s\n", method, path, st,
		    o ? json_dumps(o, JSON_COMPACT) : "(none)");
	assert_int_equal(st, want);
	assert_non_null(o);
	return o;
}

/* ---- processes ---- */

void
copy_file(const char *from, const char *to)
{
	char buf[65536];
	int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	ssize_t n;

	assert_true(in >= 0 && out >= 0);
	while ((n = read(in, buf, sizeof buf)) > 0)
		assert_int_equal(write(out, buf, (size_t)n), n);
	close(in);
	close(out);
}

/* Scored records in the entity index (-1: unknown). */
int64_t
ents_records(void)
{
	int st = 0;
	json_t *o = NULL;
	int64_t v = -1;

	if (http("GET", "/api/status", RITA, NULL, &st, &o) == 0 && st == 200)
		v = json_integer_value(json_object_get(json_object_get(o, "entities"), "records"));
	json_decref(o);
	return v;
}

int64_t
status_field(const char *field)
{
	int st = 0;
	json_t *o = NULL;
	int64_t v = -1;

	if (http("GET", "/api/status", RITA, NULL, &st, &o) == 0 && st == 200)
		v = json_integer_value(json_object_get(json_object_get(o, "index"), field));
	json_decref(o);
	return v;
}

bool console_tls; /* the next console_start talks to vigild over mutual TLS */
const char *console_extra[8]; /* ... adds these arguments (NULL-ended) */
bool console_vadmin; /* ... is given vigild's admin endpoint (--vigild-admin) */

void
console_start(void)
{
	char log[400];

	console_port = vt_free_port();
	snprintf(log, sizeof log, "%s/console.log", tmp);
	fflush(NULL);
	console_pid = fork();
	if (console_pid == 0) {
		char listen[64];
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		snprintf(listen, sizeof listen, "127.0.0.1:%u", console_port);
		dup2(fd, 2);
		if (console_tls) {
			char url[64], st2[400], cert[400], key[400], ca[400];
			snprintf(url, sizeof url, "tls+tcp://127.0.0.1:%u", tls_port);
			snprintf(st2, sizeof st2, "%s-tls", state);
			snprintf(cert, sizeof cert, "%s/client.pem", pki);
			snprintf(key, sizeof key, "%s/client.key", pki);
			snprintf(ca, sizeof ca, "%s/ca.pem", pki);
			execl(vt_build_path("console/vigil-console"), "vigil-console", "--data",
			    srv.datadir, "--rules", rules_path, "--tokens", tokens, "--state", st2,
			    "--server", url, "--tls-cert", cert, "--tls-key", key, "--tls-ca", ca,
			    "--listen", listen, "--poll-ms", "50", (char *)NULL);
			_exit(127);
		}
		if (console_vadmin) {
			char admin[64], tokfile[400];

			snprintf(admin, sizeof admin, "127.0.0.1:%u", srv.admin_port);
			snprintf(tokfile, sizeof tokfile, "%s/vigild.token", tmp);
			execl(vt_build_path("console/vigil-console"), "vigil-console", "--data",
			    srv.datadir, "--rules", rules_path, "--tokens", tokens, "--state", state,
			    "--server", srv.url, "--listen", listen, "--poll-ms", "50",
			    "--vigild-admin", admin, "--vigild-admin-token-file", tokfile, (char *)NULL);
			_exit(127);
		}
		{
			const char *argv[40] = { "vigil-console", "--data", srv.datadir, "--rules",
			    rules_path, "--tokens", tokens, "--state", state, "--server", srv.url,
			    "--listen", listen, "--poll-ms", "50", "--claim-minutes", "5",
			    "--max-connections", "8" };
			int n = 19;

			for (int i = 0; console_extra[i] != NULL; i++)
				argv[n++] = console_extra[i];
			argv[n] = NULL;
			execv(vt_build_path("console/vigil-console"), (char *const *)argv);
		}
		_exit(127);
	}
	assert_true(console_pid > 0);
	for (int i = 0; i < 300; i++) {
		if (status_field("last_seq") >= 0)
			return;
		usleep(50000);
	}
	fail_msg("vigil-console did not answer within 15 s (log: %s)", log);
}

void
console_restart_with(const char *arg, ...)
{
	va_list ap;
	int n = 0;

	console_stop();
	va_start(ap, arg);
	for (const char *a = arg; a != NULL; a = va_arg(ap, const char *)) {
		assert_true(n < 7);
		console_extra[n++] = a;
	}
	va_end(ap);
	console_extra[n] = NULL;
	console_start();
}

void
console_stop(void)
{
	int st = 0;

	if (console_pid <= 0)
		return;
	kill(console_pid, SIGTERM);
	waitpid(console_pid, &st, 0);
	console_pid = 0;
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/*
 * Waits until both of the console's indexes hold n scored records (the
 * archive's sequence numbers count labels too: a count of scored records
 * is not a sequence number).
 */
void
wait_indexed(int64_t n)
{
	for (int i = 0; i < 200; i++) {
		if (status_field("scored") >= n && ents_records() >= n)
			return;
		usleep(50000);
	}
	fail_msg("the console did not index %lld scored records", (long long)n);
}

/* scored records sent to vigild so far (score, score_dev) */
int64_t last_seq_scored;

void
score(int slot, const char *txn, const char *card, int64_t amount, int64_t t, const char *country,
    int want_decision)
{
	Vigil__V1__Transaction *x = vt_txn(slot, txn, card, amount, t);
	Vigil__V1__Reply *r;

	if (country != NULL)
		x->country = (char *)country;
	r = vt_score(srv.url, x, false);
	assert_non_null(r);
	assert_int_equal(r->status, VIGIL__V1__STATUS__STATUS_OK);
	assert_int_equal(r->score->decision, want_decision);
	vigil__v1__reply__free_unpacked(r, NULL);
	last_seq_scored++;
}

/* ---- shared by tests of several areas ---- */

/* vigild's rules content_hash (GET /v1/rules), to free; NULL if none. */
char *
vigild_hash(void)
{
	int st = 0;
	char *body = NULL, *h = NULL;
	json_t *o;

	if (vt_http_get(srv.admin_port, "/v1/rules", &st, &body) != 0 || st != 200)
		return NULL;
	o = json_loads(body, 0, NULL);
	free(body);
	if (o != NULL)
		h = strdup(json_string_value(json_object_get(o, "content_hash")));
	json_decref(o);
	return h;
}

/* Waits up to 10 s for vigild's rules hash to differ from old: the new
 * one, to free, or NULL. */
char *
wait_vigild_hash_change(const char *old)
{
	for (int i = 0; i < 100; i++) {
		char *h = vigild_hash();
		if (h != NULL && strcmp(h, old) != 0)
			return h;
		free(h);
		usleep(100000);
	}
	return NULL;
}

/* The label record with this txn_id in the archive, or -1. */
int
archive_label(const char *txn, char *source, size_t slen)
{
	char dir[400];
	store_reader *rd;
	store_record r;
	store_diag d;
	int found = -1;

	snprintf(dir, sizeof dir, "%s/archive", srv.datadir);
	if (store_reader_open(dir, INT64_MIN, INT64_MAX, NULL, NULL, &rd, &d) != VIGIL_OK)
		return -1;
	while (store_reader_next(rd, &r, &d) == VIGIL_OK) {
		store_label l;
		if (r.type == STORE_REC_LABEL && store_label_decode(r.payload, r.len, &l, &d) == VIGIL_OK &&
		    strcmp(l.txn_id, txn) == 0) {
			found = l.fraud;
			snprintf(source, slen, "%s", l.source);
		}
	}
	store_reader_close(rd);
	return found;
}

/* The newest entry of the audit log (GET /api/audit), to json_decref. */
json_t *
audit_newest(void)
{
	json_t *o = http_ok("GET", "/api/audit", ADAM, NULL, 200);
	json_t *e = json_incref(json_array_get(json_object_get(o, "entries"), 0));

	json_decref(o);
	assert_non_null(e);
	return e;
}

/* The record GET /api/lists shows for value in list (NULL: not shown), to
 * json_decref. */
json_t *
list_entry(const char *list, const char *value)
{
	json_t *o = http_ok("GET", "/api/lists", EVE, NULL, 200), *l, *e, *ret = NULL;

	for (size_t i = 0; i < json_array_size(json_object_get(o, "lists")); i++) {
		l = json_array_get(json_object_get(o, "lists"), i);
		if (strcmp(json_string_value(json_object_get(l, "name")), list) != 0)
			continue;
		for (size_t k = 0; k < json_array_size(json_object_get(l, "entries")); k++) {
			e = json_array_get(json_object_get(l, "entries"), k);
			if (strcmp(json_string_value(json_object_get(e, "value")), value) == 0)
				ret = json_incref(e);
		}
	}
	json_decref(o);
	return ret;
}

/* how many lines of the console's log contain needle */
int
console_log_count(const char *needle)
{
	char path[400], line[2048];
	FILE *f;
	int n = 0;

	snprintf(path, sizeof path, "%s/console.log", tmp);
	f = fopen(path, "r");
	if (f == NULL)
		return 0;
	while (fgets(line, sizeof line, f) != NULL)
		n += strstr(line, needle) != NULL;
	fclose(f);
	return n;
}

/* Waits until n lines of the console's log contain needle. */
void
console_log_wait(const char *needle, int n)
{
	for (int i = 0; i < 200; i++) {
		if (console_log_count(needle) >= n)
			return;
		usleep(50000);
	}
	fail_msg("no %d line(s) \"%s\" in %s/console.log", n, needle, tmp);
}

static int
setup(void **state_)
{
	FILE *f;
	char tls_url[64], cert[400], key[400], ca[400], ini[300];
	/* vigild writes its journal into the segment only every 256 KiB or
	 * 60 s, so the records these tests score are in the journal alone
	 * (docs/archive.md, "The journal"), and every page that reads them
	 * back by position (cases, entities, search) reads them from there */
	const char *extra[] = { "--config", ini, "--fsync", "never", "--listen", tls_url,
		"--tls-cert", cert, "--tls-key", key, "--tls-ca", ca, NULL };

	(void)state_;
	snprintf(tmp, sizeof tmp, "/tmp/vigil-console-test-XXXXXX");
	assert_non_null(mkdtemp(tmp));
	snprintf(ini, sizeof ini, "%s/vigild.ini", tmp);
	assert_non_null(f = fopen(ini, "w"));
	fputs("[store]\nfsync_interval_ms = 60000\n", f);
	fclose(f);
	snprintf(rules_dir, sizeof rules_dir, "%s/rules", tmp);
	mkdir(rules_dir, 0755);
	snprintf(rules_path, sizeof rules_path, "%s/default.rules", rules_dir);
	copy_file(vt_src_path("rules/default.rules"), rules_path);
	{
		char p[400];
		snprintf(p, sizeof p, "%s/blocked_cards.txt", rules_dir);
		copy_file(vt_src_path("rules/blocked_cards.txt"), p);
		snprintf(p, sizeof p, "%s/test_bins.txt", rules_dir);
		copy_file(vt_src_path("rules/test_bins.txt"), p);
	}
	snprintf(state, sizeof state, "%s/state", tmp);
	snprintf(tokens, sizeof tokens, "%s/tokens", tmp);
	f = fopen(tokens, "w");
	assert_non_null(f);
	fprintf(f, "# name role token\nalice analyst " ALICE "\nbob analyst " BOB "\n"
	    "eve read-only " EVE "\nadam admin " ADAM "\nrita rule-editor sha256:");
	{
		/* rita's line holds only the SHA-256 of her token */
		FILE *p = popen("printf %s '" RITA "' | sha256sum", "r");
		char hex[65] = "";
		assert_non_null(p);
		assert_int_equal(fscanf(p, "%64s", hex), 1);
		pclose(p);
		fprintf(f, "%s\n", hex);
	}
	fclose(f);
	chmod(tokens, 0600); /* the console refuses a tokens file others can read */
	/* vigild also listens on tls+tcp:// with client certificates required */
	snprintf(pki, sizeof pki, "%s/pki", tmp);
	mkdir(pki, 0700);
	if (vt_pki_make(pki) != 0)
		return -1;
	tls_port = vt_free_port();
	snprintf(tls_url, sizeof tls_url, "tls+tcp://127.0.0.1:%u", tls_port);
	snprintf(cert, sizeof cert, "%s/server.pem", pki);
	snprintf(key, sizeof key, "%s/server.key", pki);
	snprintf(ca, sizeof ca, "%s/ca.pem", pki);
	if (vt_server_start(&srv, rules_path, extra) != 0)
		return -1;
	/* c1: a small amount, then another within ten minutes: the second is a
	 * review (card_testing_repeat); c2: a sanctioned country, declined */
	score(0, "t1", "c1", 100, base_ms, NULL, VIGIL__V1__DECISION__ALLOW);
	score(0, "t2", "c1", 200, base_ms + 60000, NULL, VIGIL__V1__DECISION__REVIEW);
	score(0, "t3", "c2", 5000, base_ms + 120000, "IR", VIGIL__V1__DECISION__DECLINE);
	console_start();
	wait_indexed(last_seq_scored);
	return 0;
}

static int
teardown(void **state_)
{
	char cmd[700];

	int st = 0, rv = 0;

	(void)state_;
	if (console_pid > 0) {
		kill(console_pid, SIGTERM);
		waitpid(console_pid, &st, 0);
		/* a clean stop: under ASan a leak or an error would make it non-zero */
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			fprintf(stderr, "vigil-console did not stop cleanly (status %d; log %s/console.log)\n",
			    st, tmp);
			rv = -1;
		}
	}
	vt_server_stop(&srv);
	vt_server_cleanup(&srv);
	if (getenv("VIGIL_KEEP_TMP") == NULL && rv == 0) {
		/* a test that failed between setting and clearing an immutable
		 * flag (test_rules_deploy_taken_back) leaves it set */
		snprintf(cmd, sizeof cmd, "chattr -R -i '%s' 2>/dev/null; rm -rf '%s'", tmp, tmp);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", tmp);
	}
	return rv;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_usage),
		cmocka_unit_test(test_auth),
		cmocka_unit_test(test_queue),
		cmocka_unit_test(test_case_view),
		cmocka_unit_test(test_claim_conflict),
		cmocka_unit_test(test_case_work),
		cmocka_unit_test(test_label_reaches_archive),
		cmocka_unit_test(test_search_label_any),
		cmocka_unit_test(test_backtest),
		cmocka_unit_test(test_backtest_bounds),
		cmocka_unit_test(test_rules_check_and_deploy),
		cmocka_unit_test(test_rules_page_tools),
		cmocka_unit_test(test_rules_four_eyes),
		cmocka_unit_test(test_rules_versions_unloadable),
		cmocka_unit_test(test_rules_deploy_taken_back),
		cmocka_unit_test(test_rules_diff_long),
		cmocka_unit_test(test_rules_deploy_audit_huge),
		cmocka_unit_test(test_rules_not_utf8),
		cmocka_unit_test(test_rules_proposal_damaged),
		cmocka_unit_test(test_block_card),
		cmocka_unit_test(test_lists),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_routes),
		cmocka_unit_test(test_connection_cap),
		cmocka_unit_test(test_tls_verdict),
		cmocka_unit_test(test_tokens_reload),
		cmocka_unit_test(test_audit_reopen),
		cmocka_unit_test(test_audit_reopen_unwritable),
		cmocka_unit_test(test_audit_tail_long),
		cmocka_unit_test(test_restart_resumes),
		cmocka_unit_test(test_generation_rollback),
		cmocka_unit_test(test_generations_reread),
		cmocka_unit_test(test_entity),
		cmocka_unit_test(test_overview),
		cmocka_unit_test(test_unknown_filter),
		cmocka_unit_test(test_rules_band_in_force),
		/* after the SIGHUP tests: it reopens the audit log twice */
		cmocka_unit_test(test_rules_proposal_kept),
		cmocka_unit_test(test_label_own_write), /* last: it labels t1 again */
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, setup, teardown);
}
