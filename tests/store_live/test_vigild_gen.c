/* SPDX-License-Identifier: MIT */
/*
 * tests/store_live/test_vigild_gen.c - a real vigild and damaged feature
 * generations (issue 17, finding 6; docs/storage.md, "Verification"):
 * CURRENT naming a generation with damaged page headers, a truncated one
 * (a SIGBUS in mdb_get before checksums), or a missing one: vigild starts
 * on the newest older generation that verifies, logs a line naming both,
 * and /readyz and /metrics say so; with none good it starts on none, said
 * as such. CURRENT switched to a damaged generation while serving: refused
 * once (one log line), the served generation kept, and a later good
 * rebuild switched to. Readiness (DESIGN contract 8, docs/security.md
 * "Readiness"): while the generation CURRENT names is refused, /readyz
 * answers 503 naming it and the health reply says not ready, scoring goes
 * on; a good generation or a rollback heals it without a restart; with
 * [health] ready_when_degraded = true it stays 200 and "degraded". The
 * admin endpoint's POST /v1/generations/current (the console's roll-back),
 * which settles features/PENDING first as the next rebuild would.
 * The served generation truncated under vigild (issue 28): contained, not
 * a SIGBUS.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "gen.h"
#include "genread.h"

#define T0 1767225600000LL

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* Commits one generation (a few hundred cards, so it has branch pages). */
static uint64_t
gen_write(const char *datadir)
{
	store_genw *w = NULL;
	store_gen_meta meta;
	store_card_profile cp;
	store_diag d;
	uint64_t gen;
	char id[32];

	assert_int_equal(store_genw_begin(datadir, &w, &d), VIGIL_OK);
	gen = store_genw_generation(w);
	memset(&cp, 0, sizeof cp);
	cp.count_90d = (uint32_t)gen;
	for (int i = 0; i < 1500; i++) {
		snprintf(id, sizeof id, "card-%05d", i);
		assert_int_equal(store_genw_put_card(w, id, &cp), VIGIL_OK);
	}
	memset(&meta, 0, sizeof meta);
	meta.as_of_ms = T0;
	meta.window_ms = 90 * VIGIL_MS_PER_DAY;
	meta.built_at_ms = T0;
	if (store_genw_commit(w, &meta, 10, &d) != VIGIL_OK)
		fail_msg("genw commit: %s", d.msg);
	return gen;
}

static void
gen_file(char *buf, size_t len, const char *datadir, uint64_t gen, const char *file)
{
	snprintf(buf, len, "%s/features/gen-%06llu/%s", datadir, (unsigned long long)gen, file);
}

/* Overwrites flags and bounds of every page header after the meta pages
 * (after the CHECKSUM was written, as damage on disk would be). */
static void
gen_damage_pages(const char *datadir, uint64_t gen)
{
	char path[512];
	long ps = sysconf(_SC_PAGESIZE);
	struct stat st;
	uint8_t junk[8];
	int fd;

	memset(junk, 0xA5, sizeof junk);
	gen_file(path, sizeof path, datadir, gen, "data.mdb");
	fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	for (off_t off = 2 * ps; off + 16 <= st.st_size; off += ps)
		assert_int_equal(pwrite(fd, junk, sizeof junk, off + 8), (ssize_t)sizeof junk);
	close(fd);
}

/* Cuts the last 4 pages of data.mdb: the roots LMDB reads first are there. */
static void
gen_truncate_tail(const char *datadir, uint64_t gen)
{
	char path[512];
	struct stat st;

	gen_file(path, sizeof path, datadir, gen, "data.mdb");
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(truncate(path, st.st_size - 4 * sysconf(_SC_PAGESIZE)), 0);
}

/* Points CURRENT at gen by hand (store_gen_set_current refuses a bad one),
 * atomically, as a copy to a replica would. */
static void
current_force(const char *datadir, uint64_t gen)
{
	char tmp[512], path[512], line[32];
	FILE *f;

	snprintf(tmp, sizeof tmp, "%s/features/CURRENT.force", datadir);
	snprintf(path, sizeof path, "%s/features/CURRENT", datadir);
	snprintf(line, sizeof line, "gen-%06llu\n", (unsigned long long)gen);
	f = fopen(tmp, "w");
	assert_non_null(f);
	assert_int_equal(fputs(line, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(rename(tmp, path), 0);
}

static void
datadir_new(vt_server *s)
{
	memset(s, 0, sizeof *s);
	assert_int_equal(vt_server_datadir_new(s), 0);
}

static unsigned
count_lines(const char *path, const char *needle)
{
	char line[4096];
	unsigned n = 0;
	FILE *fp = fopen(path, "r");

	if (fp == NULL)
		return 0;
	while (fgets(line, sizeof line, fp) != NULL)
		if (strstr(line, needle) != NULL)
			n++;
	fclose(fp);
	return n;
}

/* The log line containing needle (static buffer), NULL if none. */
static const char *
log_line(const char *path, const char *needle)
{
	static char line[4096];
	FILE *fp = fopen(path, "r");
	const char *found = NULL;

	if (fp == NULL)
		return NULL;
	while (fgets(line, sizeof line, fp) != NULL)
		if (strstr(line, needle) != NULL) {
			found = line;
			break;
		}
	fclose(fp);
	return found;
}

static void
assert_log(vt_server *s, const char *needle)
{
	if (log_line(s->log, needle) == NULL) {
		char cmd[600];

		snprintf(cmd, sizeof cmd, "cat '%s' >&2", s->log);
		(void)system(cmd);
		fail_msg("no log line with \"%s\"", needle);
	}
}

static char *
http_get(vt_server *s, const char *path, int want_code)
{
	int code = 0;
	char *body = NULL;

	assert_int_equal(vt_http_get(s->admin_port, path, &code, &body), 0);
	if (code != want_code)
		fail_msg("%s: %d, not %d: %s", path, code, want_code, body ? body : "");
	assert_non_null(body);
	return body;
}

static void
assert_has(const char *body, const char *needle)
{
	if (body == NULL || strstr(body, needle) == NULL)
		fail_msg("\"%s\" not in: %s", needle, body != NULL ? body : "(no body)");
}

/* Scores one transaction; returns the generation it was scored with. */
static uint64_t
score_gen(vt_server *s, const char *id)
{
	Vigil__V1__Reply *r = vt_score(s->url, vt_txn(0, id, "card-00007", 1234, T0), false);
	uint64_t gen;

	assert_non_null(r);
	if (r->status != VIGIL__V1__STATUS__STATUS_OK || r->score == NULL)
		fail_msg("score %s: %s", id, r->message);
	gen = r->score->features_generation;
	vigil__v1__reply__free_unpacked(r, NULL);
	return gen;
}

/* The wire health reply's ready flag. */
static bool
wire_ready(vt_server *s)
{
	Vigil__V1__Request req = VIGIL__V1__REQUEST__INIT;
	Vigil__V1__HealthRequest h = VIGIL__V1__HEALTH_REQUEST__INIT;
	Vigil__V1__Reply *r;
	bool ready;

	req.kind_case = VIGIL__V1__REQUEST__KIND_HEALTH;
	req.health = &h;
	r = vt_call(s->url, &req, 5000);
	assert_non_null(r);
	assert_int_equal(r->kind_case, VIGIL__V1__REPLY__KIND_HEALTH);
	ready = r->health->ready;
	vigil__v1__reply__free_unpacked(r, NULL);
	return ready;
}

/* Starts vigild on s->datadir, which answers not ready (a refused generation). */
static void
start_not_ready(vt_server *s, const char *const *extra)
{
	vt_opts o = { .not_ready = true };

	assert_int_equal(vt_server_start_opts(s, NULL, extra, &o), 0);
}

/* Waits (up to 10 s) for /readyz to answer want_code; returns its body. */
static char *
readyz_wait(vt_server *s, int want_code)
{
	int code = 0;
	char *body = NULL;

	for (int i = 0; i < 100; i++) {
		free(body);
		body = NULL;
		assert_int_equal(vt_http_get(s->admin_port, "/readyz", &code, &body), 0);
		if (code == want_code)
			return body;
		sleep_ms(100);
	}
	fail_msg("/readyz: %d, not %d: %s", code, want_code, body ? body : "");
	return NULL;
}

/* Damaged page headers in the generation CURRENT names. */
static void
test_start_on_previous_when_current_damaged(void **state)
{
	vt_server s;
	char *body;

	(void)state;
	datadir_new(&s);
	assert_int_equal(gen_write(s.datadir), 1);
	assert_int_equal(gen_write(s.datadir), 2);
	gen_damage_pages(s.datadir, 2);
	start_not_ready(&s, NULL);
	assert_true(vt_server_alive(&s));
	assert_log(&s, "features: refused generation 2 named by CURRENT: features/gen-000002: "
	    "data.mdb (");
	assert_log(&s, "does not match CHECKSUM");
	assert_log(&s, "; serving generation 1 (verified: ");
	assert_log(&s, "/readyz (503, generation_error)");
	body = http_get(&s, "/readyz", 503);
	assert_has(body, "\"ready\":false");
	assert_has(body, "\"degraded\":true");
	assert_has(body, "\"reason\":\"generation 2 refused: features/gen-000002: data.mdb (");
	assert_has(body, "; serving generation 1 ([health] ready_when_degraded = false)\"");
	assert_has(body, "\"features_generation\":1");
	assert_has(body, "\"generation_refused\":2");
	assert_has(body, "\"generation_error\":\"features/gen-000002: data.mdb (");
	assert_has(body, "\"generation_verified\":true");
	free(body);
	body = http_get(&s, "/metrics", 200);
	assert_has(body, "\nvigil_features_generation 1\n");
	assert_has(body, "\nvigil_features_generation_refused{generation=\"2\"} 1\n");
	assert_has(body, "\nvigil_features_generation_verified 1\n");
	assert_has(body, "\nvigil_features_generation_refusals_total 1\n");
	assert_has(body, "\nvigil_ready 0\n");
	free(body);
	assert_false(wire_ready(&s));
	/* not ready, still scoring: clients that route by card keep their cards */
	assert_int_equal(score_gen(&s, "t-1"), 1);

	/* A good rebuild after it: switched to, the refusal cleared, ready
	 * again without a restart. */
	assert_int_equal(gen_write(s.datadir), 3);
	for (int i = 0; i < 50 && count_lines(s.log, "features: switched to generation 3") == 0; i++)
		sleep_ms(100);
	assert_log(&s, "features: switched to generation 3 (verified: ");
	body = readyz_wait(&s, 200);
	assert_has(body, "\"ready\":true");
	assert_has(body, "\"degraded\":false");
	assert_has(body, "\"generation_refused\":0");
	assert_has(body, "\"generation_error\":\"\"");
	if (strstr(body, "\"reason\"") != NULL)
		fail_msg("a reason while ready: %s", body);
	free(body);
	body = http_get(&s, "/metrics", 200);
	assert_has(body, "\nvigil_features_generation_refused 0\n");
	assert_has(body, "\nvigil_ready 1\n");
	free(body);
	assert_true(wire_ready(&s));
	assert_int_equal(score_gen(&s, "t-2"), 3);
	assert_int_equal(vt_server_stop(&s), 0);
	vt_server_cleanup(&s);
}

/* The tail of data.mdb lost: before checksums, LMDB mapped past the end of
 * the file and the first read of a root page was a SIGBUS, at every start. */
static void
test_start_survives_truncated_current(void **state)
{
	vt_server s;
	char *body;

	(void)state;
	datadir_new(&s);
	gen_write(s.datadir);
	gen_write(s.datadir);
	gen_truncate_tail(s.datadir, 2);
	start_not_ready(&s, NULL);
	assert_true(vt_server_alive(&s));
	assert_log(&s, "features: refused generation 2 named by CURRENT: features/gen-000002: "
	    "data.mdb (");
	body = http_get(&s, "/readyz", 503);
	assert_has(body, "\"generation_refused\":2");
	free(body);
	assert_int_equal(score_gen(&s, "t-1"), 1);
	assert_int_equal(vt_server_stop(&s), 0);
	vt_server_cleanup(&s);
}

/* CURRENT names a generation that is gone: not a silent generation 0. */
static void
test_start_on_previous_when_current_missing(void **state)
{
	vt_server s;
	char path[512], cmd[600], *body;

	(void)state;
	datadir_new(&s);
	gen_write(s.datadir);
	gen_write(s.datadir);
	snprintf(path, sizeof path, "%s/features/gen-000002", s.datadir);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
	assert_int_equal(system(cmd), 0);
	start_not_ready(&s, NULL);
	assert_log(&s, "features: refused generation 2 named by CURRENT: features/gen-000002: no "
	    "such generation (");
	assert_log(&s, "; serving generation 1 (verified: ");
	body = http_get(&s, "/readyz", 503);
	assert_has(body, "\"reason\":\"generation 2 refused: features/gen-000002: no such "
	    "generation (");
	assert_has(body, "\"features_generation\":1");
	assert_has(body, "\"generation_refused\":2");
	free(body);
	assert_int_equal(score_gen(&s, "t-1"), 1);
	assert_int_equal(vt_server_stop(&s), 0);
	vt_server_cleanup(&s);
}

/* No generation verifies: a cold start on none, with the line. */
static void
test_start_on_none_when_none_good(void **state)
{
	vt_server s;
	char *body;

	(void)state;
	datadir_new(&s);
	gen_write(s.datadir);
	gen_damage_pages(s.datadir, 1);
	start_not_ready(&s, NULL);
	assert_log(&s, "features: refused generation 1 named by CURRENT: features/gen-000001: "
	    "data.mdb (");
	assert_log(&s, "; serving no generation (cold start: rules use their fallbacks) instead;");
	body = http_get(&s, "/readyz", 503);
	assert_has(body, "; serving no generation ([health] ready_when_degraded = false)\"");
	assert_has(body, "\"features_generation\":0");
	assert_has(body, "\"generation_refused\":1");
	assert_has(body, "\"generation_verified\":false");
	free(body);
	body = http_get(&s, "/metrics", 200);
	assert_has(body, "\nvigil_features_generation 0\n");
	assert_has(body, "\nvigil_features_generation_refused{generation=\"1\"} 1\n");
	free(body);
	assert_int_equal(score_gen(&s, "t-1"), 0);
	assert_int_equal(vt_server_stop(&s), 0);
	vt_server_cleanup(&s);
}

/* CURRENT switched to a damaged generation while serving. */
static void
test_bad_switch_keeps_served(void **state)
{
	vt_server s;
	store_diag d;
	char *body;

	(void)state;
	datadir_new(&s);
	gen_write(s.datadir);
	gen_write(s.datadir);
	assert_int_equal(store_gen_set_current(s.datadir, 1, &d), VIGIL_OK);
	assert_int_equal(vt_server_start(&s, NULL, NULL), 0);
	assert_int_equal(score_gen(&s, "t-1"), 1);
	gen_damage_pages(s.datadir, 2);
	current_force(s.datadir, 2);
	for (int i = 0; i < 50 && count_lines(s.log, "features: refused generation 2") == 0; i++)
		sleep_ms(100);
	assert_log(&s, "features: refused generation 2 named by CURRENT: corrupt data: "
	    "features/gen-000002: data.mdb (");
	assert_log(&s, "; still serving generation 1 (verified: ");
	/* Refused once: not read (nor logged) again on later ticks. */
	sleep_ms(1200);
	assert_int_equal(count_lines(s.log, "features: refused generation 2"), 1);
	assert_true(vt_server_alive(&s));
	assert_true(wire_ready(&s) == false);
	body = http_get(&s, "/readyz", 503);
	assert_has(body, "\"features_generation\":1");
	assert_has(body, "\"generation_refused\":2");
	assert_has(body, "\"generation_error\":\"features/gen-000002: data.mdb (");
	assert_has(body, "\"reason\":\"generation 2 refused: ");
	free(body);
	body = http_get(&s, "/metrics", 200);
	assert_has(body, "\nvigil_features_generation 1\n");
	assert_has(body, "\nvigil_features_generation_refused{generation=\"2\"} 1\n");
	assert_has(body, "\nvigil_features_generation_refusals_total 1\n");
	free(body);
	assert_int_equal(score_gen(&s, "t-2"), 1);
	/* A rollback (CURRENT back on the generation served, as vigil-rebuild
	 * --rollback does): ready again, no restart. */
	current_force(s.datadir, 1);
	body = readyz_wait(&s, 200);
	assert_has(body, "\"generation_refused\":0");
	assert_has(body, "\"degraded\":false");
	free(body);
	assert_true(wire_ready(&s));
	/* The next rebuild is good: switched to it. */
	assert_int_equal(gen_write(s.datadir), 3);
	for (int i = 0; i < 50 && count_lines(s.log, "features: switched to generation 3") == 0; i++)
		sleep_ms(100);
	assert_log(&s, "features: switched to generation 3 (verified: ");
	assert_int_equal(score_gen(&s, "t-3"), 3);
	body = http_get(&s, "/readyz", 200);
	assert_has(body, "\"generation_refused\":0");
	free(body);
	assert_int_equal(vt_server_stop(&s), 0);
	vt_server_cleanup(&s);
}

/* [health] ready_when_degraded = true: the operator's choice for a
 * card-routed fleet (docs/security.md, "Readiness"): 200 and "degraded". */
static void
test_ready_when_degraded(void **state)
{
	vt_server s;
	char ini[600], *body;
	FILE *f;

	(void)state;
	datadir_new(&s);
	gen_write(s.datadir);
	gen_write(s.datadir);
	gen_damage_pages(s.datadir, 2);
	snprintf(ini, sizeof ini, "%s/vigild.ini", s.datadir);
	f = fopen(ini, "w");
	assert_non_null(f);
	fputs("[health]\nready_when_degraded = true\n", f);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(vt_server_start(&s, NULL, (const char *const[]){ "--config", ini,
	    NULL }), 0);
	assert_log(&s, "/readyz (200, degraded, generation_error)");
	body = http_get(&s, "/readyz", 200);
	assert_has(body, "\"ready\":true");
	assert_has(body, "\"degraded\":true");
	assert_has(body, "\"ready_when_degraded\":true");
	assert_has(body, "\"generation_refused\":2");
	free(body);
	assert_true(wire_ready(&s));
	assert_int_equal(score_gen(&s, "t-1"), 1);
	assert_int_equal(vt_server_stop(&s), 0);
	vt_server_cleanup(&s);
}

/* POST /v1/generations/current with the admin token; *ret_body malloc'd. */
static int
gen_post(vt_server *s, const char *token, const char *body, char **ret_body)
{
	char hdr[160];
	int code = 0;

	snprintf(hdr, sizeof hdr, "Authorization: Bearer %s\r\n", token);
	assert_int_equal(vt_http(s->admin_port, "POST", "/v1/generations/current",
	    token != NULL ? hdr : NULL, body, &code, ret_body), 0);
	assert_non_null(*ret_body);
	return code;
}

static void
gen_post_expect(vt_server *s, const char *token, const char *body, int want, const char *needle)
{
	char *out = NULL;
	int code = gen_post(s, token, body, &out);

	if (code != want || strstr(out, needle) == NULL)
		fail_msg("POST /v1/generations/current %s: %d %s (wanted %d with \"%s\")", body,
		    code, out, want, needle);
	free(out);
}

/*
 * The admin endpoint's roll-back (what the console's "roll back" calls):
 * behind the admin token; the body checked field by field; a stale
 * expect_current refused (409); a missing (404) or damaged (422)
 * generation refused, CURRENT untouched; a good one made current, and
 * vigild switches to it without a restart.
 */
static void
test_admin_rollback(void **state)
{
	static const char tok[] = "rollback-admin-token-0123456789";
	vt_server s;
	char tokfile[600], arg[640];
	uint64_t cur = 0;
	FILE *f;

	(void)state;
	datadir_new(&s);
	gen_write(s.datadir);
	gen_write(s.datadir);
	snprintf(tokfile, sizeof tokfile, "%s/admin.token", s.datadir);
	f = fopen(tokfile, "w");
	assert_non_null(f);
	fprintf(f, "%s\n", tok);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(tokfile, 0600), 0);
	snprintf(arg, sizeof arg, "%s", tokfile);
	assert_int_equal(vt_server_start(&s, NULL, (const char *const[]){ "--admin-token-file",
	    arg, NULL }), 0);
	assert_int_equal(score_gen(&s, "r-1"), 2);

	gen_post_expect(&s, NULL, "{\"generation\": 1}", 401, "\"UNAUTHENTICATED\"");
	gen_post_expect(&s, "wrong-token-wrong-token-wrong", "{\"generation\": 1}", 401,
	    "wrong bearer token");
	gen_post_expect(&s, tok, "{\"generation\": \"1\"}", 400, "\"field\":\"generation\"");
	gen_post_expect(&s, tok, "{}", 400, "\"field\":\"generation\"");
	gen_post_expect(&s, tok, "{\"generation\": 1, \"force\": true}", 400,
	    "\"field\":\"force\"");
	gen_post_expect(&s, tok, "{\"generation\": 1", 400, "\"MALFORMED\"");
	gen_post_expect(&s, tok, "{\"generation\": 1, \"expect_current\": 7}", 409,
	    "CURRENT names generation 2, not 7");
	gen_post_expect(&s, tok, "{\"generation\": 2}", 409, "generation 2 is already current");
	gen_post_expect(&s, tok, "{\"generation\": 9}", 404, "\"NOT_FOUND\"");
	assert_int_equal(store_gen_current(s.datadir, &cur), VIGIL_OK);
	assert_int_equal(cur, 2);

	gen_post_expect(&s, tok, "{\"generation\": 1, \"expect_current\": 2}", 200,
	    "\"previous\":2,\"current\":1");
	assert_log(&s, "features: CURRENT set to generation 1 (was 2) through the admin endpoint");
	for (int i = 0; i < 50 && count_lines(s.log, "features: switched to generation 1") == 0; i++)
		sleep_ms(100);
	assert_log(&s, "features: switched to generation 1 (verified: ");
	assert_int_equal(score_gen(&s, "r-2"), 1);

	/* a damaged generation is refused before CURRENT names it */
	gen_damage_pages(s.datadir, 2);
	gen_post_expect(&s, tok, "{\"generation\": 2}", 422, "\"REFUSED\"");
	assert_int_equal(store_gen_current(s.datadir, &cur), VIGIL_OK);
	assert_int_equal(cur, 1);
	assert_int_equal(score_gen(&s, "r-3"), 1);
	assert_int_equal(vt_server_stop(&s), 0);
	vt_server_cleanup(&s);
}

/* Writes features/PENDING naming gen, as a commit that died before it
 * removed the file leaves it. */
static void
pending_write(const char *datadir, uint64_t gen)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof path, "%s/features/PENDING", datadir);
	f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "gen-%06llu\n", (unsigned long long)gen);
	assert_int_equal(fclose(f), 0);
}

static bool
gen_exists(const char *datadir, uint64_t gen)
{
	char path[512];
	struct stat st;

	snprintf(path, sizeof path, "%s/features/gen-%06llu", datadir, (unsigned long long)gen);
	return stat(path, &st) == 0;
}

/*
 * A roll-back through the admin endpoint settles features/PENDING as the
 * next rebuild would, against the CURRENT it was written beside.
 * Generation 2 committed, CURRENT naming it, PENDING (naming it too) left
 * by a commit that died before removing it: rolled back to 1, a rebuild
 * (generation 3) and a roll-forward to 2 still find 2. Generation 4
 * renamed into place but never named by CURRENT (PENDING names it): a
 * roll-back removes it, so no roll-forward can serve it.
 */
static void
test_admin_rollback_settles_pending(void **state)
{
	static const char tok[] = "rollback-admin-token-0123456789";
	vt_server s;
	char tokfile[600], arg[640], path[600];
	uint64_t cur = 0;
	struct stat st;
	FILE *f;

	(void)state;
	datadir_new(&s);
	gen_write(s.datadir);
	gen_write(s.datadir);
	pending_write(s.datadir, 2);
	snprintf(tokfile, sizeof tokfile, "%s/admin.token", s.datadir);
	f = fopen(tokfile, "w");
	assert_non_null(f);
	fprintf(f, "%s\n", tok);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(tokfile, 0600), 0);
	snprintf(arg, sizeof arg, "%s", tokfile);
	snprintf(path, sizeof path, "%s/features/PENDING", s.datadir);
	assert_int_equal(vt_server_start(&s, NULL, (const char *const[]){ "--admin-token-file",
	    arg, NULL }), 0);
	assert_int_equal(score_gen(&s, "p-1"), 2);

	gen_post_expect(&s, tok, "{\"generation\": 1}", 200, "\"previous\":2,\"current\":1");
	assert_int_equal(gen_write(s.datadir), 3);
	gen_post_expect(&s, tok, "{\"generation\": 2}", 200, "\"previous\":3,\"current\":2");
	for (int i = 0; i < 50 && count_lines(s.log, "features: switched to generation 2") == 0; i++)
		sleep_ms(100);
	assert_int_equal(score_gen(&s, "p-2"), 2);

	/* generation 4 renamed in, CURRENT still naming 2 */
	assert_int_equal(gen_write(s.datadir), 4);
	current_force(s.datadir, 2);
	pending_write(s.datadir, 4);
	gen_post_expect(&s, tok, "{\"generation\": 1}", 200, "\"previous\":2,\"current\":1");
	gen_post_expect(&s, tok, "{\"generation\": 4}", 404, "no generation 4 in features/");
	assert_false(gen_exists(s.datadir, 4));
	assert_int_equal(stat(path, &st), -1);
	assert_int_equal(store_gen_current(s.datadir, &cur), VIGIL_OK);
	assert_int_equal(cur, 1);
	assert_int_equal(vt_server_stop(&s), 0);
	vt_server_cleanup(&s);
}

/* Issue 28, row 7: data.mdb of the generation being served cut to 64 KiB
 * under vigild (`truncate -s 64K`). Before: SIGBUS, exit 135, at the next
 * score that read it. Now: every reply is an answer (an error for a score
 * whose read faulted, or scored on the previous generation once the
 * refresh refused the damaged one), vigild stays up, /readyz says 503
 * naming the generation, and scoring goes on with generation 1. */
static void
test_truncated_while_serving(void **state)
{
	vt_server s;
	char path[512], id[32], card[32], *body;
	unsigned errors = 0, fallback = 0;

	(void)state;
	datadir_new(&s);
	assert_int_equal(gen_write(s.datadir), 1);
	assert_int_equal(gen_write(s.datadir), 2);
	assert_int_equal(vt_server_start(&s, NULL, NULL), 0);
	assert_int_equal(score_gen(&s, "w-0"), 2);
	gen_file(path, sizeof path, s.datadir, 2, "data.mdb");
	assert_int_equal(truncate(path, 64 << 10), 0);
	for (int i = 0; i < 40; i++) {
		Vigil__V1__Reply *r;

		/* cards never seen: their profiles are read from LMDB */
		snprintf(id, sizeof id, "w-%d", i + 1);
		snprintf(card, sizeof card, "card-%05d", 100 + 31 * i);
		r = vt_score(s.url, vt_txn(0, id, card, 1234, T0), false);
		if (r == NULL)
			fail_msg("score %d after the truncation: no reply (vigild alive: %d)", i,
			    vt_server_alive(&s));
		if (r->status == VIGIL__V1__STATUS__STATUS_OK) {
			assert_non_null(r->score);
			if (r->score->features_generation == 1)
				fallback++;
		} else {
			assert_int_equal(r->status, VIGIL__V1__STATUS__STATUS_INTERNAL);
			errors++;
		}
		vigil__v1__reply__free_unpacked(r, NULL);
		sleep_ms(20);
	}
	assert_true(vt_server_alive(&s));
	print_message("after the truncation: %u error replies, %u scored on generation 1\n",
	    errors, fallback);
	body = readyz_wait(&s, 503);
	assert_has(body, "\"generation_refused\":2");
	assert_has(body, "\"generation_error\":\"features/gen-000002: data.mdb ");
	assert_has(body, "\"features_generation\":1");
	free(body);
	assert_log(&s, "features: refused generation 2 named by CURRENT: ");
	assert_int_equal(score_gen(&s, "w-last"), 1);
	assert_int_equal(vt_server_stop(&s), 0);
	vt_server_cleanup(&s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_start_on_previous_when_current_damaged),
		cmocka_unit_test(test_start_survives_truncated_current),
		cmocka_unit_test(test_start_on_previous_when_current_missing),
		cmocka_unit_test(test_start_on_none_when_none_good),
		cmocka_unit_test(test_bad_switch_keeps_served),
		cmocka_unit_test(test_ready_when_degraded),
		cmocka_unit_test(test_admin_rollback),
		cmocka_unit_test(test_admin_rollback_settles_pending),
		cmocka_unit_test(test_truncated_while_serving),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
